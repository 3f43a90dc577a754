#!/usr/bin/env bash
# A 3-node private regtest network on loopback, blocks mined on one node and seen by
# all, and monero-exporter scraping one of them. Contacts nothing beyond 127.0.0.1:
# each monerod peers only with the others (--add-exclusive-node), with no seed nodes,
# DNS checkpoints, UPnP or update checks. Everything started is stopped by PID on exit.
#
#   DEMO_KEEP=1      keep the network and exporter running until Ctrl-C
#   DEMO_PORT_BASE   first port to use (default 38080; uses base .. base+29, and base+90)
#   DEMO_BLOCKS      blocks to mine (default 20)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
exporter=${EXPORTER_BIN:-$here/target/debug/monero-exporter}
base=${DEMO_PORT_BASE:-38080}
blocks=${DEMO_BLOCKS:-20}
address=42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm
work=$(mktemp -d /tmp/monero-demo.XXXXXX)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

p2p() { echo $((base + 10 * $1)); }
rpc() { echo $((base + 10 * $1 + 1)); }

rpc_call() { # node method params
  curl -s --max-time 10 "http://127.0.0.1:$(rpc "$1")/json_rpc" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":\"0\",\"method\":\"$2\",\"params\":${3:-{\}}}"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }

wait_for() { # description seconds command...
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.2
  done
}

echo "== starting 3 regtest monerod on 127.0.0.1 (ports $base-$((base + 29)))"
for i in 0 1 2; do
  peers=()
  for j in 0 1 2; do [ "$i" = "$j" ] || peers+=("--add-exclusive-node=127.0.0.1:$(p2p "$j")"); done
  mkdir -p "$work/node$i"
  monerod --regtest --non-interactive --no-igd --no-zmq --check-updates=disabled \
    --disable-dns-checkpoints --allow-local-ip --max-connections-per-ip=5 --fixed-difficulty=1 \
    --p2p-bind-ip=127.0.0.1 --p2p-bind-port="$(p2p "$i")" \
    --rpc-bind-ip=127.0.0.1 --rpc-bind-port="$(rpc "$i")" \
    --data-dir="$work/node$i" --log-level=0 "${peers[@]}" >"$work/node$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do wait_for "node $i RPC" 90 rpc_call "$i" get_block_count; done

echo "== waiting for the nodes to connect to each other"
connected() { for i in 0 1 2; do
  n=$(rpc_call "$i" get_info | json "d['result']['outgoing_connections_count'] + d['result']['incoming_connections_count']")
  [ "$n" -ge 2 ] || return 1; done; }
wait_for "a full mesh" 120 connected

echo "== mining $blocks blocks on node 0"
rpc_call 0 generateblocks "{\"amount_of_blocks\":$blocks,\"wallet_address\":\"$address\"}" >/dev/null
target=$((blocks + 1))
synced() { for i in 0 1 2; do
  [ "$(rpc_call "$i" get_block_count | json "d['result']['count']")" -eq "$target" ] || return 1; done; }
wait_for "every node to reach height $target" 120 synced

printf '%-6s %-8s %-6s %-6s %s\n' node height in out top_block
for i in 0 1 2; do
  rpc_call "$i" get_info | json "'%-6s %-8s %-6s %-6s %s' % ('$i', d['result']['height'], d['result']['incoming_connections_count'], d['result']['outgoing_connections_count'], d['result']['top_block_hash'][:16])"
done

echo "== monero-exporter against node 1"
metrics_port=$((base + 90))
"$exporter" --monerod-address "http://127.0.0.1:$(rpc 1)" --listen "127.0.0.1:$metrics_port" >"$work/exporter.log" 2>&1 &
pids+=($!)
wait_for "the exporter" 30 curl -sf "http://127.0.0.1:$metrics_port/healthz"
curl -s "http://127.0.0.1:$metrics_port/metrics" | grep -E '^monero_(up|blockchain_height|synchronized|connections|peers_by_zone|txpool_transactions|difficulty|build_info|exporter_scrape_duration_seconds) '
curl -s "http://127.0.0.1:$metrics_port/metrics" | grep -E '^monero_(connections|peers_by_zone|build_info)\{'
echo "ready: $(curl -s "http://127.0.0.1:$metrics_port/ready")"

if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo "== running; metrics at http://127.0.0.1:$metrics_port/metrics, node RPC at 127.0.0.1:$(rpc 0) $(rpc 1) $(rpc 2). Ctrl-C stops."
  wait
fi
echo "== done; stopping every process"
