#!/usr/bin/env bash
# `make bench-cluster`: hack/bench_cluster.py (N MoneroNodeSets at once on the real
# control plane) against a fresh cluster, with a release build of the operator.
#   BENCH_SETS  how many MoneroNodeSets (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests' Python (PyYAML in .venv), as the pod tests make it.
PY=.venv/bin/python
bash hack/pods.sh --venv-only
${CARGO:-cargo} build -q --release -p monero-operator --bin monero-operator
bin=$(bash hack/cluster/build.sh)
trap 'CLUSTER_BIN=$bin bash hack/cluster.sh down' EXIT
CLUSTER_BIN=$bin bash hack/cluster.sh down
CLUSTER_BIN=$bin bash hack/cluster.sh up
CLUSTER_BIN=$bin CLUSTER_OPERATOR=target/release/monero-operator "$PY" hack/bench_cluster.py
