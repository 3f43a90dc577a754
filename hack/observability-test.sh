#!/usr/bin/env bash
# The observability kit against real programs on loopback: docs/metrics.md, the
# exporter and the operator, the Grafana dashboards (config/grafana/monero-nodes.json
# and monero-network.json), their ConfigMaps (config/grafana) and the metric names the
# alerts use.
#
# Starts, all bound to 127.0.0.1 and talking only to 127.0.0.1:
#   - two regtest monerod that peer only with each other (--add-exclusive-node, no seed
#     nodes, DNS checkpoints, UPnP or update checks), unrestricted RPC; blocks are mined
#     on the first to the test wallet's address (generateblocks) and monero-wallet-rpc
#     puts one real transaction in the pool (so the pool metrics have values);
#   - four target/debug/monero-exporter: one per node (pods nodes-0 and nodes-1, the
#     latter in lab mode, whose chain watch times the blocks' arrival), one
#     pointed at a closed port (nodes-2, a node whose monerod is down: monero_up 0 and
#     the error counters), and one in wallets mode beside a second monero-wallet-rpc
#     (net-wallets-0, a MoneroNetwork's wallets pod, which makes its wallet);
#   - target/debug/monero-operator run against the stand-in API server
#     hack/bench-apiserver.py serving one MoneroNodeSet (the stand-in refuses writes, so
#     each reconcile fails with reason kube_api: the reconcile metrics get series);
#   - Prometheus (temporary storage) scraping all five every second, with the labels the
#     operator's PodMonitor gives (job monero-test/nodes, namespace, pod, container).
# Waits with deadlines (polling Prometheus, no fixed sleeps) until Prometheus holds
# enough samples, then checks (hack/observability-check.py does most):
#   - every exporter metric in docs/metrics.md is exposed with the documented type and
#     labels and Prometheus holds its series, and every exposed metric is documented;
#     the same for the operator, whose names must also be those metrics.rs registers;
#     `promtool check metrics` accepts each /metrics; the exporter README's table names
#     the same metrics as the doc;
#   - every metric the alerts in config/prometheus/rules.yaml use exists;
#   - each dashboard: structure, its variables resolve through Prometheus, and every panel
#     query, with the variables set to the real label values, runs through
#     /api/v1/query and returns series (operator, lab-mode and wallets panels included);
#   - `kubectl kustomize config/grafana` has a ConfigMap holding each dashboard unchanged.
# Each check counts. Ends with exactly one line "observability: N passed, N failed,
# 0 skipped" (after stopping everything it started, by PID, so nothing prints after
# it); exits non-zero when anything fails.
#
# Needs: target/debug/monero-exporter and target/debug/monero-operator (cargo build;
# EXPORTER_BIN / OPERATOR_BIN override them), monerod, monero-wallet-rpc, prometheus and
# promtool (hack/deps.sh), python3, curl, and kubectl (on PATH, or .venv/bin/kubectl as
# hack/validate.sh installs it). About 20 s on two cores, most of it mining.
#
#   OBS_KEEP_WORKDIR=1   keep the work directory (logs, Prometheus config) for a look
#   OBS_DASHBOARD=FILE   check this dashboard instead of the two in config/grafana
#   OBS_DOCS=FILE        check this metrics table instead of docs/metrics.md
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s.%N)

# Loopback only, whatever the environment says about proxies.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

exporter=${EXPORTER_BIN:-target/debug/monero-exporter}
operator=${OPERATOR_BIN:-target/debug/monero-operator}
# generateblocks' address and its seed: monero's functional-test wallet
# (crates/monero-testkit). A coinbase unlocks after 60 blocks and a ring needs 16 unlocked
# outputs: 80 blocks leave 20.
address=42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm
seed="velvet lymph giddy number token physics poetry unquoted nibs useful sabotage limits benches lifestyle eden nitrogen anvil fewest avoid batch vials washing fences goat unquoted"
blocks=80
deadline=60 # seconds for each wait

work=$(mktemp -d /tmp/monero-observability.XXXXXX)
pids=()
names=()
passed=0
failed=0

summary() {
  cleanup
  echo "observability took $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
  echo "observability: $passed passed, $failed failed, 0 skipped"
}
cleanup() { # idempotent: summary calls it, and the EXIT trap again
  [ -n "$work" ] || return 0
  local i pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "${names[$i]} (pid $pid) did not stop within 20 s of SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  pids=()
  names=()
  if [ "${OBS_KEEP_WORKDIR:-0}" = 1 ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
  work=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

spawn() { # spawn NAME LOG COMMAND...: runs it in the background, remembered for cleanup
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  names+=("$name")
}
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
# A setup step failed: no check can run. Counted as one failure, with the logs.
fatal() {
  fail "$1"
  local f
  for f in "$work"/*.log; do
    [ -s "$f" ] || continue
    echo "--- $(basename "$f") (last 15 lines)"
    sed 's/\x1b\[[0-9;]*m//g' "$f" | tail -15 | sed 's/^/  /'
  done
  summary
  exit 1
}
wait_for() { # wait_for WHAT COMMAND...: polls every 0.2 s until it succeeds or $deadline
  local what=$1 end=$((SECONDS + deadline))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fatal "timed out after ${deadline}s waiting for $what"
    sleep 0.2
  done
}

for f in "$exporter" "$operator"; do
  [ -x "$f" ] || fatal "$f is missing: build it first (cargo build -p monero-exporter -p monero-operator)"
done
for p in monerod monero-wallet-rpc prometheus promtool python3 curl; do
  command -v "$p" >/dev/null 2>&1 || fatal "$p is not installed (hack/deps.sh installs it)"
done
if command -v kubectl >/dev/null 2>&1; then
  kubectl=$(command -v kubectl)
elif [ -x .venv/bin/kubectl ]; then
  kubectl=.venv/bin/kubectl
else
  fatal "kubectl is not installed (hack/validate.sh installs it into .venv)"
fi

# Distinct free ports, all asked for at once.
read -r p2p_a rpc_a p2p_b rpc_b closed ex_a ex_b ex_dead wallet op_port prom_port wallet_b ex_w < <(
  PYTHONPATH=hack python3 -c 'from testlib import free_ports; print(*free_ports(13))')

rpc() { # rpc PORT METHOD [PARAMS]: a JSON-RPC call; fails on an "error" answer
  local out
  out=$(curl -sf --max-time 60 "http://127.0.0.1:$1/json_rpc" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":\"0\",\"method\":\"$2\",\"params\":${3:-{\}}}") || return 1
  case $out in *'"error"'*) echo "$out" >&2; return 1 ;; esac
  echo "$out"
}
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

echo "== starting two regtest monerod, the stand-in API server, monero-operator and Prometheus on 127.0.0.1"
monerod_flags=(--regtest --non-interactive --no-igd --no-zmq --check-updates=disabled
  --disable-dns-checkpoints --fixed-difficulty=1 --allow-local-ip --max-connections-per-ip=5
  --p2p-bind-ip=127.0.0.1 --rpc-bind-ip=127.0.0.1 --log-level=0)
spawn monerod-a "$work/monerod-a.log" monerod "${monerod_flags[@]}" --data-dir="$work/node-a" \
  --p2p-bind-port="$p2p_a" --rpc-bind-port="$rpc_a" --add-exclusive-node="127.0.0.1:$p2p_b"
spawn monerod-b "$work/monerod-b.log" monerod "${monerod_flags[@]}" --data-dir="$work/node-b" \
  --p2p-bind-port="$p2p_b" --rpc-bind-port="$rpc_b" --add-exclusive-node="127.0.0.1:$p2p_a"

cat >"$work/moneronodeset.json" <<EOF
{"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNodeSet",
 "metadata": {"name": "nodes", "namespace": "monero-test"},
 "spec": {"network": "regtest", "replicas": 3}}
EOF
spawn bench-apiserver "$work/apiserver.log" python3 hack/bench-apiserver.py \
  --port-file "$work/apiserver.port" --bookmark-interval 5 --object "$work/moneronodeset.json"
wait_for "the stand-in API server" test -s "$work/apiserver.port"
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: 'http://127.0.0.1:$(cat "$work/apiserver.port")'}}]
users: [{name: t, user: {}}]
contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]
current-context: t
EOF
spawn monero-operator "$work/operator.log" env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT \
  KUBECONFIG="$work/kubeconfig" RUST_LOG=info NO_COLOR=1 \
  "$operator" run --no-leader-election --listen "127.0.0.1:$op_port"

# The exporter of a node whose monerod is down: nothing listens on $closed.
spawn exporter-dead "$work/exporter-dead.log" "$exporter" \
  --monerod-address "http://127.0.0.1:$closed" --listen "127.0.0.1:$ex_dead"

cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  # The labels the operator's PodMonitor gives a node set's pods.
  - job_name: monero-test/nodes
    static_configs:
      - targets: ['127.0.0.1:$ex_a']
        labels: {namespace: monero-test, pod: nodes-0, container: exporter, endpoint: metrics}
      - targets: ['127.0.0.1:$ex_b']
        labels: {namespace: monero-test, pod: nodes-1, container: exporter, endpoint: metrics}
      - targets: ['127.0.0.1:$ex_dead']
        labels: {namespace: monero-test, pod: nodes-2, container: exporter, endpoint: metrics}
      # A MoneroNetwork's wallets pod, which its PodMonitor selects with the nodes.
      - targets: ['127.0.0.1:$ex_w']
        labels: {namespace: monero-test, pod: net-wallets-0, container: exporter, endpoint: metrics}
  - job_name: monero-operator-metrics
    static_configs:
      - targets: ['127.0.0.1:$op_port']
        labels: {namespace: monero-system, pod: monero-operator-0}
EOF
promtool check config "$work/prometheus.yml" >"$work/promtool-config.log" 2>&1 ||
  fatal "promtool check config rejects the test's prometheus.yml"
spawn prometheus "$work/prometheus.log" prometheus --config.file="$work/prometheus.yml" \
  --storage.tsdb.path="$work/prometheus-data" --web.listen-address="127.0.0.1:$prom_port" \
  --log.level=warn
spawn monero-wallet-rpc "$work/wallet.log" monero-wallet-rpc --daemon-address="127.0.0.1:$rpc_a" \
  --trusted-daemon --disable-rpc-login --rpc-bind-ip=127.0.0.1 --rpc-bind-port="$wallet" \
  --rpc-ssl=disabled --daemon-ssl=disabled --non-interactive --wallet-dir="$work/wallet" \
  --shared-ringdb-dir="$work/wallet/ringdb" --log-file="$work/wallet-rpc.log"
# A network's wallets pod: one monero-wallet-rpc on node b and the exporter in wallets
# mode, which makes its wallet.
mkdir -p "$work/wallets"
spawn monero-wallet-rpc-b "$work/wallet-b.log" monero-wallet-rpc --daemon-address="127.0.0.1:$rpc_b" \
  --disable-rpc-login --rpc-bind-ip=127.0.0.1 --rpc-bind-port="$wallet_b" \
  --rpc-ssl=disabled --daemon-ssl=disabled --non-interactive --wallet-dir="$work/wallets" \
  --shared-ringdb-dir="$work/wallets/ringdb" --log-file="$work/wallet-rpc-b.log"
echo "{\"wallets\": 1, \"firstPort\": $wallet_b}" >"$work/wallets.lab.json"
spawn exporter-wallets "$work/exporter-wallets.log" "$exporter" \
  --wallets-lab "$work/wallets.lab.json" --listen "127.0.0.1:$ex_w"

wait_for "monerod a's RPC" rpc "$rpc_a" get_block_count
wait_for "monerod b's RPC" rpc "$rpc_b" get_block_count
spawn exporter-a "$work/exporter-a.log" "$exporter" \
  --monerod-address "http://127.0.0.1:$rpc_a" --listen "127.0.0.1:$ex_a"
# nodes-1's exporter in lab mode, as a MoneroNetwork node's is: its chain watch times
# the blocks mined on a as they arrive (nothing to mine or ban: an empty lab file).
echo '{}' >"$work/lab.json"
spawn exporter-b "$work/exporter-b.log" "$exporter" \
  --monerod-address "http://127.0.0.1:$rpc_b" --listen "127.0.0.1:$ex_b" --lab-config "$work/lab.json"

echo "== mining $blocks blocks on monerod a, and one transaction into the pool"
# monerod answers BUSY (with no error) until it has decided it is synchronized.
mine() {
  rpc "$rpc_a" generateblocks "{\"amount_of_blocks\":$blocks,\"wallet_address\":\"$address\"}" \
    >"$work/generateblocks.json" && [ "$(json 'd["result"]["status"]' <"$work/generateblocks.json")" = OK ]
}
wait_for "generateblocks on monerod a" mine
wait_for "monero-wallet-rpc" rpc "$wallet" get_version
rpc "$wallet" restore_deterministic_wallet \
  "{\"filename\":\"test\",\"password\":\"\",\"seed\":\"$seed\",\"restore_height\":0,\"language\":\"English\",\"autosave_current\":false}" \
  >/dev/null || fatal "restoring the test wallet"
# Refreshed until it can spend: the wallet may see the new blocks a moment late.
unlocked() {
  rpc "$wallet" refresh >"$work/refresh.json" &&
    rpc "$wallet" get_balance >"$work/balance.json" &&
    [ "$(json 'd["result"]["unlocked_balance"] > 2 * 10**12' <"$work/balance.json")" = True ]
}
wait_for "the test wallet to hold unlocked coinbase outputs" unlocked
rpc "$wallet" transfer \
  "{\"destinations\":[{\"amount\":1000000000000,\"address\":\"$address\"}],\"do_not_relay\":true,\"get_tx_hex\":true}" \
  >"$work/transfer.json" || fatal "making a transaction with monero-wallet-rpc"
tx=$(json 'd["result"]["tx_blob"]' <"$work/transfer.json")
curl -sf --max-time 30 "http://127.0.0.1:$rpc_a/send_raw_transaction" \
  -d "{\"tx_as_hex\":\"$tx\",\"do_not_relay\":false}" >"$work/sent.json" || fatal "send_raw_transaction"
[ "$(json 'd["status"]' <"$work/sent.json")" = OK ] || fatal "monerod a refused the transaction: $(cat "$work/sent.json")"

echo "== waiting for Prometheus to hold the samples the checks need"
check=(python3 hack/observability-check.py)
prom_url=http://127.0.0.1:$prom_port
wait_for "Prometheus to answer" curl -sf "$prom_url/-/ready"
# Three samples within the 10 s that $__rate_interval becomes, for each kind of target,
# and the transaction and the peering seen in the latest scrape.
"${check[@]}" wait --prometheus "$prom_url" --deadline "$deadline" \
  'monero_txpool_transactions{pod="nodes-0"} > 0' \
  'sum(monero_connections{pod="nodes-0"}) > 0' \
  'monero_peers{pod="nodes-0"}' \
  'count_over_time(monero_network_received_bytes_total{pod="nodes-0"}[10s]) >= 3' \
  'count_over_time(monero_network_received_bytes_total{pod="nodes-1"}[10s]) >= 3' \
  'count_over_time(monero_exporter_collector_errors_total{pod="nodes-2"}[10s]) >= 3' \
  'monero_block_propagation_seconds_count{pod="nodes-1"} > 0' \
  'monero_wallet_up{pod="net-wallets-0"} == 1' \
  'count_over_time(monero_wallet_transfers_total{pod="net-wallets-0", result="sent"}[10s]) >= 3' \
  'count_over_time(monero_operator_reconciles_total[10s]) >= 3' ||
  fatal "Prometheus did not get the samples in time"

echo "== checks"
for target in "exporter nodes-0=$ex_a" "exporter nodes-1=$ex_b" "exporter nodes-2 (monerod down)=$ex_dead" "exporter net-wallets-0 (wallets mode)=$ex_w" "operator=$op_port"; do
  name=${target%=*}
  if curl -sf --max-time 10 "http://127.0.0.1:${target##*=}/metrics" >"$work/metrics.txt" &&
    promtool check metrics <"$work/metrics.txt" >"$work/promtool.log" 2>&1; then
    pass "promtool check metrics: $name"
  else
    fail "promtool check metrics: $name"
    sed 's/^/  /' "$work/promtool.log"
  fi
done

kustomized=()
if "$kubectl" kustomize config/grafana >"$work/grafana.yaml" 2>"$work/kustomize.log"; then
  kustomized=(--kustomized "$work/grafana.yaml") # checked below
else
  fail "kubectl kustomize config/grafana"
  sed 's/^/  /' "$work/kustomize.log"
fi

status=0
"${check[@]}" check --prometheus "$prom_url" \
  --exporter "http://127.0.0.1:$ex_a/metrics" \
  --exporter "http://127.0.0.1:$ex_b/metrics" \
  --exporter "http://127.0.0.1:$ex_dead/metrics" \
  --exporter "http://127.0.0.1:$ex_w/metrics" \
  --operator "http://127.0.0.1:$op_port/metrics" \
  ${OBS_DASHBOARD:+--dashboard "$OBS_DASHBOARD"} --docs "${OBS_DOCS:-docs/metrics.md}" \
  "${kustomized[@]}" --counts "$work/counts" || status=$?
if [ -s "$work/counts" ]; then
  read -r p f <"$work/counts"
  passed=$((passed + p))
  failed=$((failed + f))
else
  fail "hack/observability-check.py exited $status before counting"
fi

summary
[ "$failed" -eq 0 ]
