#!/usr/bin/env bash
# End-to-end tests against a real cluster: the one KUBECONFIG (or ~/.kube/config) points
# at, when it answers. Without one, says so and counts every check as skipped.
#
# What it does, in namespace $E2E_NAMESPACE (default monero-e2e, created and deleted):
#   1. make deploy (kubectl apply -k config/default) and waits for the operator;
#   2. every sample in config/samples passes the API server's validation (server-side
#      dry run: the CRD schemas and CEL rules, for real);
#   3. applies e2e/manifests/e2e.yaml (a 2-replica regtest MoneroNodeSet, a 3-node
#      MoneroNetwork, and a miner solo-mining into a third, offline node) and waits for
#      Ready; checks status (replicas, heights, Synced, Connected, the miner's hashrate
#      and accepted shares) and the exporter's metrics through the API server's pod proxy;
#   4. mines blocks on the network (port-forward to monerod's unrestricted RPC) and sees
#      every node reach the new height;
#   5. scales the MoneroNodeSet to 3 and back to 2 through the scale subresource;
#   6. changes the MoneroNodeSet's monerod image (same image, second tag) and sees the
#      StatefulSet roll while the chain data on the PVCs survives (height kept);
#   7. deletes both and sees their children collected and their PVCs retained (the
#      default retention), then removes the PVCs itself.
# The images must be pullable by the cluster: `make kind` (hack/kind-up.sh) loads them into
# a kind cluster, with the second monerod tag ($TAG-e2e) that step 6 uses.
#
#   E2E_KEEP=1     leave the namespace and the operator in place
#   E2E_TIMEOUT    seconds to wait for each condition (default 300)
# Ends with "e2e: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

NS=${E2E_NAMESPACE:-monero-e2e}
TIMEOUT=${E2E_TIMEOUT:-300}
REGISTRY=${REGISTRY:-ghcr.io/monero-operator}
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}
CHECKS=$(grep -c "^check " "$0")
passed=0
failed=0

if command -v kubectl >/dev/null 2>&1; then KUBECTL=kubectl
elif [ -x .venv/bin/kubectl ]; then KUBECTL=.venv/bin/kubectl
else KUBECTL=; fi
skip() {
  echo "SKIPPED e2e: $1"
  echo "e2e: 0 passed, 0 failed, $CHECKS skipped"
  exit 0
}
[ -n "$KUBECTL" ] || skip "no kubectl (make validate installs one into .venv)"
if [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ]; then
  skip "no cluster configured (set KUBECONFIG; make kind brings up a kind cluster)"
fi
if ! $KUBECTL version --request-timeout=10s >/dev/null 2>&1; then
  skip "the cluster in KUBECONFIG does not answer ($($KUBECTL config current-context 2>/dev/null || echo 'no context'))"
fi
k() { $KUBECTL "$@"; }
kn() { $KUBECTL -n "$NS" "$@"; }

check() { # check DESCRIPTION COMMAND...: counts, prints what failed
  local what=$1
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    echo "PASS $what"
  else
    failed=$((failed + 1))
    echo "FAIL $what"
    echo "$out" | tail -20 | sed 's/^/  /'
  fi
}
until_true() { # until_true SECONDS COMMAND...: polls every 2 s
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $end ] || return 1
    sleep 2
  done
}
jp() { kn get "$1" -o "jsonpath=$2"; }
rpc() { # rpc LOCALPORT METHOD PARAMS
  curl -s --max-time 60 "http://127.0.0.1:$1/json_rpc" -d "{\"jsonrpc\":\"2.0\",\"id\":\"0\",\"method\":\"$2\",\"params\":${3:-\{\}}}"
}
height() { jp "$1" '{.status.nodes[*].height}'; }
min_height() { height "$1" | tr ' ' '\n' | sort -n | head -1; }

pf_pid=
cleanup() {
  [ -n "$pf_pid" ] && kill "$pf_pid" 2>/dev/null
  if [ "${E2E_KEEP:-}" != 1 ]; then
    kn delete moneronodesets,moneronetworks,monerominingnodesets --all --wait=false >/dev/null 2>&1
    kn delete pvc --all --wait=false >/dev/null 2>&1
    k delete namespace "$NS" --wait=false >/dev/null 2>&1
  fi
}
trap cleanup EXIT

echo "== cluster: $($KUBECTL config current-context), namespace $NS, images $REGISTRY/*:$TAG"
# 1. the operator
check "make deploy (kubectl apply -k config/default)" k apply -k config/default
check "the operator becomes Available" k -n monero-system wait deployment/monero-operator --for=condition=Available --timeout="${TIMEOUT}s"

# 2. the samples, validated by the API server itself
k create namespace "$NS" >/dev/null 2>&1
k label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
check "config/samples pass server-side validation (schemas and CEL)" kn apply --dry-run=server -k config/samples

# 3. up, Ready, status, metrics
kn apply -f e2e/manifests/e2e.yaml >/dev/null
check "MoneroNodeSet e2e-nodes becomes Ready" kn wait moneronodeset/e2e-nodes --for=condition=Ready --timeout="${TIMEOUT}s"
check "MoneroNetwork e2e-net becomes Ready" kn wait moneronetwork/e2e-net --for=condition=Ready --timeout="${TIMEOUT}s"
check "status: 2 ready replicas with heights" until_true 120 bash -c "[ \"\$($KUBECTL -n $NS get moneronodeset/e2e-nodes -o jsonpath='{.status.readyReplicas}')\" = 2 ] && [ \"\$($KUBECTL -n $NS get moneronodeset/e2e-nodes -o jsonpath='{.status.nodes[*].height}' | wc -w)\" = 2 ]"
check "the network's nodes are Connected" kn wait moneronetwork/e2e-net --for=condition=Connected --timeout="${TIMEOUT}s"
check "the exporter reports monero_up 1 (pod proxy)" bash -c "$KUBECTL get --raw /api/v1/namespaces/$NS/pods/e2e-nodes-0:18090/proxy/metrics | grep -qx 'monero_up 1'"

check "the miner's status shows a hashrate and an accepted block" until_true "$TIMEOUT" bash -c "
  [ \"\$($KUBECTL -n $NS get monerominingnodeset/e2e-miners -o jsonpath='{.status.hashrate}')\" -gt 0 ] &&
  [ \"\$($KUBECTL -n $NS get monerominingnodeset/e2e-miners -o jsonpath='{.status.nodes[0].sharesAccepted}')\" -ge 1 ]"
check "the miner's exporter reports xmrig_up 1 (pod proxy)" bash -c "$KUBECTL get --raw /api/v1/namespaces/$NS/pods/e2e-miners-0:18090/proxy/metrics | grep -qx 'xmrig_up 1'"
kn delete monerominingnodeset/e2e-miners moneronodeset/e2e-solo --wait=false >/dev/null

# 4. blocks mined on one node reach all
kn port-forward pod/e2e-net-0 28081:18081 >/dev/null 2>&1 &
pf_pid=$!
until_true 30 curl -s --max-time 2 -o /dev/null http://127.0.0.1:28081/get_info
before=$(min_height moneronetwork/e2e-net)
check "blocks mined on e2e-net-0 reach every node" until_true "$TIMEOUT" bash -c "
  curl -s --max-time 60 http://127.0.0.1:28081/json_rpc -d '{\"jsonrpc\":\"2.0\",\"id\":\"0\",\"method\":\"generateblocks\",\"params\":{\"amount_of_blocks\":5,\"wallet_address\":\"42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm\"}}' >/dev/null
  h=\$($KUBECTL -n $NS get moneronetwork/e2e-net -o jsonpath='{.status.nodes[*].height}' | tr ' ' '\n' | sort -n | head -1)
  [ \"\${h:-0}\" -ge $((${before:-1} + 5)) ]"
kill "$pf_pid" 2>/dev/null
pf_pid=

# 5. scale through the scale subresource
kn scale moneronodeset/e2e-nodes --replicas=3 >/dev/null
check "scaled to 3: 3 ready replicas" until_true "$TIMEOUT" bash -c "[ \"\$($KUBECTL -n $NS get moneronodeset/e2e-nodes -o jsonpath='{.status.readyReplicas}')\" = 3 ]"
kn scale moneronodeset/e2e-nodes --replicas=2 >/dev/null
check "scaled back to 2: the StatefulSet follows" until_true "$TIMEOUT" bash -c "[ \"\$($KUBECTL -n $NS get statefulset/e2e-nodes -o jsonpath='{.spec.replicas}')\" = 2 ]"

# 6. a new monerod image rolls the pods; the chain on the PVC survives
kn port-forward pod/e2e-nodes-0 28082:18081 >/dev/null 2>&1 &
pf_pid=$!
until_true 30 curl -s --max-time 2 -o /dev/null http://127.0.0.1:28082/get_info
until_true 60 bash -c "rpc() { curl -s --max-time 60 http://127.0.0.1:28082/json_rpc -d \"\$1\"; }; rpc '{\"jsonrpc\":\"2.0\",\"id\":\"0\",\"method\":\"generateblocks\",\"params\":{\"amount_of_blocks\":10,\"wallet_address\":\"42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm\"}}' | grep -q '\"OK\"'"
kill "$pf_pid" 2>/dev/null
pf_pid=
mined=$(until_true 60 bash -c "[ \"\$($KUBECTL -n $NS get moneronodeset/e2e-nodes -o jsonpath='{.status.nodes[0].height}')\" -ge 11 ]" && jp moneronodeset/e2e-nodes '{.status.nodes[0].height}')
kn patch moneronodeset/e2e-nodes --type=merge -p "{\"spec\":{\"monerod\":{\"image\":\"$REGISTRY/monerod:$TAG-e2e\"}}}" >/dev/null
check "the StatefulSet rolls to the new image" until_true "$TIMEOUT" bash -c "
  [ \"\$($KUBECTL -n $NS get pod/e2e-nodes-0 -o jsonpath='{.spec.containers[?(@.name==\"monerod\")].image}')\" = '$REGISTRY/monerod:$TAG-e2e' ] &&
  [ \"\$($KUBECTL -n $NS get moneronodeset/e2e-nodes -o jsonpath='{.status.readyReplicas}')\" = 2 ]"
check "the chain survived the rollout (height still >= ${mined:-11})" until_true 120 bash -c "[ \"\$($KUBECTL -n $NS get moneronodeset/e2e-nodes -o jsonpath='{.status.nodes[0].height}')\" -ge ${mined:-11} ]"

# 7. delete: children collected, PVCs retained (retention Retain by default)
kn delete moneronodeset/e2e-nodes moneronetwork/e2e-net --wait=true --timeout="${TIMEOUT}s" >/dev/null
check "children collected (StatefulSets, Services)" until_true "$TIMEOUT" bash -c "[ -z \"\$($KUBECTL -n $NS get statefulsets,services -l app.kubernetes.io/managed-by=monero-operator -o name)\" ]"
check "PVCs retained (2 + 3, and the solo node's)" bash -c "[ \"\$($KUBECTL -n $NS get pvc -o name | wc -l)\" -ge 6 ]"

echo "e2e: $passed passed, $failed failed, $((CHECKS - passed - failed)) skipped"
[ "$failed" -eq 0 ]
