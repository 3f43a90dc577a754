#!/usr/bin/env bash
# The release monero-operator's resident memory at idle: `monero-operator run` against
# a stand-in API server on loopback (hack/bench-apiserver.py) that serves empty lists
# of every watched kind and holds the watches open. Waits (with deadlines) until
# /readyz answers 200 and all 15 watches are open (3 controllers x the custom
# resource + 4 owned kinds), idles IDLE_SECONDS (default 10), reads VmRSS and VmHWM
# from /proc, and stops both processes by PID. Prints numbers; asserts nothing about
# them. Run by `make bench`; see crates/monero-reconciler/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
IDLE_SECONDS=${IDLE_SECONDS:-10}
EXPECTED_WATCHES=21
# OPERATOR_BIN measures another build of the binary (then nothing is built here).
bin=${OPERATOR_BIN:-target/release/monero-operator}

if [ -z "${OPERATOR_BIN:-}" ]; then
  $CARGO build --release -p monero-operator
fi

tmp=$(mktemp -d)
api_pid=
op_pid=
stop() { # stop PID NAME: SIGTERM, then SIGKILL after 10 s
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "$2 did not stop on SIGTERM within 10 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$op_pid" monero-operator
  stop "$api_pid" bench-apiserver
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
status_kib() { # status_kib PID FIELD
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
stats() { curl -sf --max-time 5 "http://127.0.0.1:$api_port/__bench/stats"; }
stat_field() { # stat_field EXPR (a Python expression over s, the stats JSON)
  stats | python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"
}

python3 hack/bench-apiserver.py --port-file "$tmp/port" --bookmark-interval 5 \
  2>"$tmp/apiserver.log" &
api_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "the stand-in API server did not start:" >&2; cat "$tmp/apiserver.log" >&2; exit 1; }
api_port=$(cat "$tmp/port")

cat >"$tmp/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: http://127.0.0.1:$api_port
users:
- name: bench
  user: {}
contexts:
- name: bench
  context:
    cluster: bench
    user: bench
    namespace: default
current-context: bench
EOF

op_port=$(free_port)
start=$(date +%s.%N)
env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT \
  KUBECONFIG="$tmp/kubeconfig" RUST_LOG=info NO_COLOR=1 NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 \
  "$bin" run --no-leader-election --listen "127.0.0.1:$op_port" >"$tmp/operator.log" 2>&1 &
op_pid=$!

ready=
for _ in $(seq 300); do # 30 s
  kill -0 "$op_pid" 2>/dev/null || break
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$op_port/readyz" || true)
  if [ "$code" = 200 ] && [ "$(stat_field 's["watches_total"]')" -ge "$EXPECTED_WATCHES" ]; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  if kill -0 "$op_pid" 2>/dev/null; then
    echo "the operator did not become ready with $EXPECTED_WATCHES watches open within 30 s" >&2
  else
    rc=0
    wait "$op_pid" || rc=$?
    op_pid=
    echo "the operator exited with status $rc before it was ready" >&2
  fi
  echo "--- operator log" >&2; cat "$tmp/operator.log" >&2
  echo "--- stand-in stats" >&2; stats >&2 || true
  exit 1
fi
ready_s=$(since "$start")
rss_ready=$(status_kib "$op_pid" VmRSS)

sleep "$IDLE_SECONDS"
kill -0 "$op_pid" 2>/dev/null || { echo "the operator exited while idle:" >&2; cat "$tmp/operator.log" >&2; exit 1; }
rss=$(status_kib "$op_pid" VmRSS)
hwm=$(status_kib "$op_pid" VmHWM)
threads=$(status_kib "$op_pid" Threads)
stats >"$tmp/stats.json"

t0=$(date +%s.%N)
stop "$op_pid" monero-operator
stop_s=$(since "$t0")
op_pid=

py() { python3 -c "import json; s = json.load(open('$tmp/stats.json')); $1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "## monero-operator idle (release, no custom resources, stand-in API server on loopback)"
echo
echo "| measure | value |"
echo "| --- | ---: |"
echo "| start to /readyz 200 with all $EXPECTED_WATCHES watches open | $ready_s s |"
echo "| resident memory when ready (VmRSS) | $(mib "$rss_ready") MiB |"
echo "| resident memory after ${IDLE_SECONDS} s idle (VmRSS) | **$(mib "$rss") MiB** |"
echo "| peak resident memory (VmHWM) | $(mib "$hwm") MiB |"
echo "| threads | $threads |"
echo "| list requests / watch requests | $(py 'print(s["lists_total"])') / $(py 'print(s["watches_total"])') |"
echo "| BOOKMARKs received while idle | $(py 'print(s["bookmarks_sent"])') |"
echo "| other requests (answered 404) | $(py 'print(len(s["unexpected"]))') |"
echo "| stop on SIGTERM | $stop_s s |"
echo
echo "requests per path (lists, watches, label selector):"
py 'print("\n".join("  %-50s %d %d %s" % (p, s["lists"].get(p, 0), s["watches"].get(p, 0), ",".join(s["selectors"].get(p, [])) or "-") for p in sorted(set(s["lists"]) | set(s["watches"]))))'
py '[print("  unexpected: " + u) for u in s["unexpected"]]'
sed -i 's/\x1b\[[0-9;]*m//g' "$tmp/operator.log"
warnings=$(grep -cE ' (WARN|ERROR) ' "$tmp/operator.log" || true)
echo "operator log: $(wc -l <"$tmp/operator.log") lines, $warnings WARN/ERROR"
if [ "$(wc -l <"$tmp/operator.log")" -le 10 ]; then
  sed 's/^/  /' "$tmp/operator.log"
elif [ "$warnings" -gt 0 ]; then
  grep -E ' (WARN|ERROR) ' "$tmp/operator.log" | head -20 | sed 's/^/  /'
fi
