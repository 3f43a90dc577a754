#!/usr/bin/env bash
# The cluster tier (`make test-cluster`): builds the Kubernetes components from their Go
# modules when they are not cached (hack/cluster/build.sh), starts the control plane on
# loopback (hack/cluster.sh up), runs hack/cluster_test.py against it with the operator
# as a host process holding only its ServiceAccount's rights, and stops everything.
#
# Ends with "cluster: N passed, N failed, N skipped"; with CLUSTER_SUMMARY=FILE that
# line is also written to FILE. Where no Go toolchain or module proxy can be had, the
# tests are counted as skipped and the reason is said.
#
#   CLUSTER_OPERATOR  the monero-operator binary (default target/debug/monero-operator,
#                     built when missing)
#   CLUSTER_KEEP=1    leave the cluster up afterwards (hack/cluster.sh down ends it)
set -uo pipefail
cd "$(dirname "$0")/.."

summary() {
  echo "$1"
  if [ -n "${CLUSTER_SUMMARY:-}" ]; then echo "$1" >"$CLUSTER_SUMMARY"; fi
}
# The tests' Python (PyYAML in .venv), as the pod tests make it.
PY=.venv/bin/python
bash hack/pods.sh --venv-only
tests=$("$PY" hack/cluster_test.py --count)

start=$SECONDS
bin=$(bash hack/cluster/build.sh)
rc=$?
case $rc in
  0) ;;
  3 | 4)
    why=$([ $rc = 3 ] && echo "no Go toolchain" || echo "the Go module proxy cannot be reached")
    echo "SKIPPED the cluster tests: $why, so Kubernetes cannot be built from its modules"
    summary "cluster: 0 passed, 0 failed, $tests skipped"
    exit 0
    ;;
  *)
    echo "building the Kubernetes components failed (exit $rc)" >&2
    summary "cluster: 0 passed, $tests failed, 0 skipped"
    exit 1
    ;;
esac
echo "Kubernetes components ready in $((SECONDS - start))s: $bin"

operator=${CLUSTER_OPERATOR:-target/debug/monero-operator}
if [ ! -x "$operator" ]; then
  ${CARGO:-cargo} build -q -p monero-operator --bin monero-operator || {
    summary "cluster: 0 passed, $tests failed, 0 skipped"
    exit 1
  }
fi

stop_cluster() {
  if [ "${CLUSTER_KEEP:-0}" != 1 ]; then CLUSTER_BIN=$bin bash hack/cluster.sh down; fi
}
trap stop_cluster EXIT
if ! CLUSTER_BIN=$bin bash hack/cluster.sh up; then
  summary "cluster: 0 passed, $tests failed, 0 skipped"
  exit 1
fi
log=$(mktemp)
CLUSTER_BIN=$bin CLUSTER_OPERATOR=$operator "$PY" hack/cluster_test.py 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
line=$(grep -E '^cluster: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
rm -f "$log"
[ -n "$line" ] || { line="cluster: 0 passed, $tests failed, 0 skipped"; status=1; }
echo "cluster tier took $((SECONDS - start))s"
summary "$line"
exit "$status"
