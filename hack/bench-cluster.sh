#!/usr/bin/env bash
# `make bench-cluster`: hack/bench_cluster.py (N MoneroNodeSets at once on the real
# control plane) against a fresh cluster, with a release build of the operator.
#   BENCH_SETS  how many MoneroNodeSets (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if ! "$PY" -c 'import yaml' >/dev/null 2>&1; then
  [ -x "$PY" ] || python3 -m venv .venv
  "$PY" -m pip install -q --disable-pip-version-check pyyaml
fi
${CARGO:-cargo} build -q --release -p monero-operator --bin monero-operator
bin=$(bash hack/cluster/build.sh)
trap 'CLUSTER_BIN=$bin bash hack/cluster.sh down' EXIT
CLUSTER_BIN=$bin bash hack/cluster.sh down
CLUSTER_BIN=$bin bash hack/cluster.sh up
CLUSTER_BIN=$bin CLUSTER_OPERATOR=target/release/monero-operator "$PY" hack/bench_cluster.py
