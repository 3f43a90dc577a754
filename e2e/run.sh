#!/usr/bin/env bash
# End-to-end tests against a real cluster: the one KUBECONFIG (or ~/.kube/config) points
# at, when it answers. Without one, says so and counts every check as skipped.
# `make e2e-local` (hack/e2e-local.sh) runs it against a real node on this machine.
#
# What it does, in namespace $E2E_NAMESPACE (default monero-e2e, created and deleted):
#   1. make deploy (kubectl apply -k config/default), waits for the operator, and runs
#      it with two replicas: one holds the Lease;
#   2. every sample in config/samples passes the API server's validation (server-side
#      dry run: the CRD schemas and CEL rules, for real);
#   3. applies e2e/manifests/e2e.yaml (a 2-replica regtest MoneroNodeSet, a 3-node
#      MoneroNetwork, and a miner solo-mining into a third, offline node) and waits for
#      Ready; checks status (replicas, heights, Synced, Connected, the miner's hashrate
#      and accepted shares), the exporter's metrics through the API server's pod proxy,
#      and the PodMonitor when its CRD is installed;
#   4. with E2E_ANON=1: a MoneroNodeSet with Tor, I2P and an RPC login (the login
#      asked for, and accepted, through a port-forward); with E2E_KUBELET_DIR, the keys
#      tor and i2pd loaded, read from the pod's volumes on the node, are those status shows;
#   5. mines blocks on the network (port-forward to monerod's unrestricted RPC) and sees
#      every node reach the new height;
#   6. scales the MoneroNodeSet to 3 and back to 2 through the scale subresource;
#   7. volumes: on a class that allows expansion the claims are asked to grow; with
#      E2E_FIXED_CLASS (a class that does not), a condition names the claim refused,
#      and `retention.whenDeleted: Delete` removes the claim with the set;
#   8. the operator's leader pod is deleted and the other replica takes over;
#   9. changes the MoneroNodeSet's monerod image (same image, second tag) and removes a
#      pod annotation and a nodeSelector from its spec: the StatefulSet rolls, the
#      fields leave the pods, and the chain data on the PVCs survives (height kept);
#  10. with E2E_UPGRADE_FROM, E2E_UPGRADE_TO and E2E_BROKEN_IMAGE (three monerod images:
#      a release, the next, one that cannot start): a public MoneroNodeSet on the newest
#      (per-replica node ports reached from a pod, their addresses in status, a ban list
#      from a ConfigMap, ZMQ RPC and publisher), then the network upgraded from the first
#      to the second through the sync gate (one node at a time, heights kept), halted by
#      the third (the first node moved stops there, the others serve), resumed by a revert;
#  11. a research MoneroNetwork: a Ring of 4 with blocks from nodes 0 and 2 every 2 s
#      and readyAtHeight 15 becomes Ready only there, and its nodes report their ring
#      neighbours (TopologyMatches); partitioned in two halves at run time (no restart),
#      both mining, the status says Forked naming the sides; healed with one miner left,
#      one chain again and the other side's reorganization in status;
#  12. deletes both and sees their children collected and their PVCs retained (the
#      default retention), then removes the PVCs itself.
# After each step, the operator's logs since that step began are checked (the way
# Strimzi's system tests check theirs): no panic, no restart, no terminal colour codes,
# no error storm (more than
# E2E_MAX_ERRORS error lines), and no reconcile loop (over a quiet 10 s window, no more
# than a few reconciles per object).
# With E2E_PROBE_IMAGE (an image with /connect, as hack/cluster/node-image makes), a pod
# must fail to reach an address outside the cluster and reach the API server's Service.
# The images must be pullable by the cluster: `make kind` (hack/kind-up.sh) loads them into
# a kind cluster, with the second monerod tag ($TAG-e2e) that step 9 uses.
#
#   E2E_KEEP=1     leave the namespace and the operator in place
#   E2E_TIMEOUT    seconds to wait for each condition (default 300)
#   e2e/run.sh --count   prints the number of checks
# Ends with "e2e: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

NS=${E2E_NAMESPACE:-monero-e2e}
TIMEOUT=${E2E_TIMEOUT:-300}
REGISTRY=${REGISTRY:-ghcr.io/monero-operator}
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}
MAX_ERRORS=${E2E_MAX_ERRORS:-20}
OPNS=monero-system
# Every check is a line `check "..."`, at any indentation; those a setting leaves out
# count as skipped.
CHECKS=$(grep -cE '^ *check "' "$0")
if [ "${1:-}" = --count ]; then
  echo "$CHECKS"
  exit 0
fi
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
export KUBECTL NS
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
is() { # is RESOURCE JSONPATH VALUE: the field has that value now
  [ "$(jp "$1" "$2" 2>/dev/null)" = "$3" ]
}
height() { jp "$1" '{.status.nodes[*].height}'; }
min_height() { height "$1" | tr ' ' '\n' | sort -n | head -1; }
ADDRESS=42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm
mine() { # mine LOCALPORT N: generateblocks through a port-forward to the unrestricted RPC
  curl -s --max-time 60 "http://127.0.0.1:$1/json_rpc" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":\"0\",\"method\":\"generateblocks\",\"params\":{\"amount_of_blocks\":$2,\"wallet_address\":\"$ADDRESS\"}}"
}
# The helpers, for the `bash -c` of checks that poll.
export -f k kn jp is until_true mine height min_height
export ADDRESS

work_dir=$(mktemp -d)
pf_pid=
forward() { # forward POD LOCAL:REMOTE: a port-forward in the background, until it answers
  kn port-forward "pod/$1" "$2" >/dev/null 2>&1 &
  pf_pid=$!
  until_true 30 curl -s --max-time 2 -o /dev/null "http://127.0.0.1:${2%%:*}/"
}
unforward() {
  [ -n "$pf_pid" ] && kill "$pf_pid" 2>/dev/null
  pf_pid=
}
cleanup() {
  unforward
  [ -n "${watch_pid:-}" ] && kill "$watch_pid" 2>/dev/null
  rm -rf "$work_dir"
  if [ "${E2E_KEEP:-}" != 1 ]; then
    kn delete moneronodesets,moneronetworks,monerominingnodesets --all --wait=false >/dev/null 2>&1
    kn delete pvc --all --wait=false >/dev/null 2>&1
    k delete namespace "$NS" --wait=false >/dev/null 2>&1
  fi
}
trap cleanup EXIT

# The operator's logs, after each step; `mark` starts a step.
mark() { mark_time=$(date -u +%Y-%m-%dT%H:%M:%SZ); }
operator_pods() { k -n "$OPNS" get pods -l app.kubernetes.io/name=monero-operator -o jsonpath='{.items[*].metadata.name}'; }
leader() { k -n "$OPNS" get lease monero-operator -o jsonpath='{.spec.holderIdentity}'; }
reconciles() { # every reconcile the leader has made, from its /metrics
  k get --raw "/api/v1/namespaces/$OPNS/pods/$(leader):8080/proxy/metrics" |
    awk '/^monero_operator_reconciles_total/ { s += $2 } END { print s + 0 }'
}
operator_log_clean() {
  local p out n
  for p in $(operator_pods); do
    out=$(k -n "$OPNS" logs "$p" --since-time="$mark_time" 2>&1) || { echo "logs of $p: $out"; return 1; }
    if grep -q "panicked at" <<<"$out"; then
      echo "$p panicked:"
      grep -A5 "panicked at" <<<"$out"
      return 1
    fi
    if grep -q $'\e\[' <<<"$out"; then
      echo "$p writes terminal colour codes into a log that is not a terminal"
      return 1
    fi
    n=$(grep -c "ERROR" <<<"$out")
    if [ "$n" -gt "$MAX_ERRORS" ]; then
      echo "$p: $n error lines since $mark_time (more than $MAX_ERRORS); the last:"
      grep "ERROR" <<<"$out" | tail -5
      return 1
    fi
    n=$(k -n "$OPNS" get pod "$p" -o jsonpath='{.status.containerStatuses[0].restartCount}')
    if [ "${n:-0}" != 0 ]; then
      echo "$p restarted $n times; before that:"
      k -n "$OPNS" logs "$p" --previous 2>&1 | tail -5
      return 1
    fi
  done
  # A reconcile loop: with nothing changing, each object reconciles about once per
  # status interval (30 s); a loop makes that many in a second. This is a measurement
  # over a fixed window, not a wait for something to happen.
  local objects before after
  objects=$(kn get moneronodesets,moneronetworks,monerominingnodesets -o name 2>/dev/null | wc -l)
  before=$(reconciles) || return 1
  sleep 10
  after=$(reconciles) || return 1
  if [ $((after - before)) -gt $((3 * objects + 5)) ]; then
    echo "$((after - before)) reconciles in a quiet 10 s window with $objects objects: a reconcile loop"
    return 1
  fi
}

# probe NAME ADDRESS PORT: a restricted pod makes one TCP connect; prints what it got
# ("connected" or the error).
probe() {
  kn apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 65535, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: connect
    image: $E2E_PROBE_IMAGE
    imagePullPolicy: Never
    command: [/connect, "$2", "$3"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
EOF
  until_true 60 bash -c "kn get pod/$1 -o jsonpath='{.status.phase}' | grep -qE 'Succeeded|Failed'" || return 1
  kn logs "pod/$1"
}

# A rollout's order, from one watch of the set's pods: a watch delivers the changes in
# the order the API server made them, so "node HI was Ready on the new revision before
# node LO got it" is read off the lines' order, whatever a later readiness flap says.
watch_pid=
watch_rollout() { # watch_rollout INSTANCE FILE: records the pods' changes in the background
  # kubectl itself in the background (not the kn function, whose subshell would be
  # $!), so that stop_watch stops the watch by its PID.
  $KUBECTL -n "$NS" get pods -l "app.kubernetes.io/instance=$1" -w \
    -o jsonpath='{.metadata.name} {.metadata.labels.controller-revision-hash} {.status.conditions[?(@.type=="Ready")].status}{"\n"}' \
    >"$2" 2>/dev/null &
  watch_pid=$!
}
stop_watch() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
  watch_pid=
}
gated() { # gated FILE REVISION HI LO: LO took REVISION only after HI was Ready on it
  local ready new
  ready=$(awk -v p="$3" -v r="$2" '$1 == p && $2 == r && $3 == "True" { print NR; exit }' "$1")
  new=$(awk -v p="$4" -v r="$2" '$1 == p && $2 == r { print NR; exit }' "$1")
  if [ -n "$ready" ] && [ -n "$new" ] && [ "$ready" -lt "$new" ]; then return 0; fi
  echo "$4 took $2 at line ${new:-never}, $3 was Ready on it at line ${ready:-never}:"
  cat "$1"
  return 1
}
export -f gated

echo "== cluster: $($KUBECTL config current-context), namespace $NS, images $REGISTRY/*:$TAG"
# 1. the operator, then two replicas of it
mark
check "make deploy (kubectl apply -k config/default)" k apply -k config/default
check "the operator becomes Available" k -n "$OPNS" wait deployment/monero-operator --for=condition=Available --timeout="${TIMEOUT}s"
k -n "$OPNS" scale deployment/monero-operator --replicas=2 >/dev/null
check "two operator replicas Ready, one of them holding the Lease" until_true "$TIMEOUT" bash -c "
  [ \"\$(k -n $OPNS get deployment/monero-operator -o jsonpath='{.status.readyReplicas}')\" = 2 ] &&
  k -n $OPNS get pods -l app.kubernetes.io/name=monero-operator -o name |
    grep -qx \"pod/\$(k -n $OPNS get lease monero-operator -o jsonpath='{.spec.holderIdentity}')\""

# 2. the samples, validated by the API server itself
k create namespace "$NS" >/dev/null 2>&1
k label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
check "config/samples pass server-side validation (schemas and CEL)" kn apply --dry-run=server -k config/samples
check "operator log after deploy: no panic, restart, error storm or reconcile loop" operator_log_clean

# 3. up, Ready, status, metrics
mark
kn apply -f e2e/manifests/e2e.yaml >/dev/null
check "MoneroNodeSet e2e-nodes becomes Ready" kn wait moneronodeset/e2e-nodes --for=condition=Ready --timeout="${TIMEOUT}s"
check "MoneroNetwork e2e-net becomes Ready" kn wait moneronetwork/e2e-net --for=condition=Ready --timeout="${TIMEOUT}s"
check "status: 2 ready replicas with heights" until_true 120 bash -c "
  is moneronodeset/e2e-nodes '{.status.readyReplicas}' 2 &&
  [ \"\$(jp moneronodeset/e2e-nodes '{.status.nodes[*].height}' | wc -w)\" = 2 ]"
check "the network's nodes are Connected (peers found by their Service names)" kn wait moneronetwork/e2e-net --for=condition=Connected --timeout="${TIMEOUT}s"
check "the exporter reports monero_up 1 (pod proxy)" bash -c "k get --raw /api/v1/namespaces/$NS/pods/e2e-nodes-0:18090/proxy/metrics | grep -qx 'monero_up 1'"
check "the exporter's log has no terminal colour codes" bash -c "! kn logs e2e-nodes-0 -c exporter | grep -q \$'\\e\\['"
check "StatefulSet pods carry their index label" is pod/e2e-nodes-1 '{.metadata.labels.apps\.kubernetes\.io/pod-index}' 1
if k get crd podmonitors.monitoring.coreos.com >/dev/null 2>&1; then
  check "the PodMonitor selects the set's pods (its CRD is installed)" until_true 60 bash -c "
    jp podmonitor/e2e-nodes '{.spec.selector.matchLabels}' | grep -q e2e-nodes"
fi

check "the miner's status shows a hashrate and an accepted block" until_true "$TIMEOUT" bash -c "
  [ \"\$(jp monerominingnodeset/e2e-miners '{.status.hashrate}')\" -gt 0 ] &&
  [ \"\$(jp monerominingnodeset/e2e-miners '{.status.nodes[0].sharesAccepted}')\" -ge 1 ]"
check "the miner's exporter reports xmrig_up 1 (pod proxy)" bash -c "k get --raw /api/v1/namespaces/$NS/pods/e2e-miners-0:18090/proxy/metrics | grep -qx 'xmrig_up 1'"
kn delete monerominingnodeset/e2e-miners moneronodeset/e2e-solo --wait=false >/dev/null

if [ -n "${E2E_PROBE_IMAGE:-}" ]; then
  api_ip=$(k -n default get service kubernetes -o jsonpath='{.spec.clusterIP}')
  check "a pod reaches the API server through its Service ($api_ip:443)" bash -c "$(declare -f probe); E2E_PROBE_IMAGE=$E2E_PROBE_IMAGE probe e2e-probe-in $api_ip 443 | grep -x connected"
  check "a pod cannot reach an address outside the cluster (198.51.100.1:443)" bash -c "$(declare -f probe); E2E_PROBE_IMAGE=$E2E_PROBE_IMAGE probe e2e-probe-out 198.51.100.1 443 | grep -x 'Network is unreachable'"
  kn delete pod e2e-probe-in e2e-probe-out --wait=false >/dev/null 2>&1
fi
check "operator log after the sets came up" operator_log_clean

# 4. Tor, I2P and an RPC login
if [ "${E2E_ANON:-0}" = 1 ]; then
  mark
  kn apply -f e2e/manifests/e2e-anon.yaml >/dev/null
  check "MoneroNodeSet e2e-anon (Tor, I2P, RPC login) becomes Ready" kn wait moneronodeset/e2e-anon --for=condition=Ready --timeout="${TIMEOUT}s"
  check "status shows the replica's onion and I2P addresses and the RPC onion" until_true 60 bash -c "
    jp moneronodeset/e2e-anon '{.status.nodes[0].onionAddress}' | grep -qE '^[a-z2-7]{56}\.onion' &&
    jp moneronodeset/e2e-anon '{.status.nodes[0].i2pAddress}' | grep -qE '^[a-z2-7]{52}\.b32\.i2p' &&
    jp moneronodeset/e2e-anon '{.status.rpcOnionAddress}' | grep -qE '^[a-z2-7]{56}\.onion'"
  check "tor, i2pd and monerod run and are ready, with no restart" bash -c "
    [ \"\$(jp pod/e2e-anon-0 '{.status.containerStatuses[*].restartCount}' | tr ' ' '\n' | sort -u)\" = 0 ] &&
    [ \"\$(jp pod/e2e-anon-0 '{.status.containerStatuses[*].ready}' | tr ' ' '\n' | sort -u)\" = true ]"
  forward e2e-anon-0 28089:18089
  check "the restricted RPC asks for the login" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://127.0.0.1:28089/get_info)\" = 401 ]"
  check "the restricted RPC answers with the login" bash -c "curl -sf --max-time 10 --digest -u e2e:e2e-login-password http://127.0.0.1:28089/get_info | grep -q '\"status\": \"OK\"'"
  unforward
  if [ -n "${E2E_KUBELET_DIR:-}" ]; then
    # The pod's in-memory volumes, seen from the node: what tor and i2pd loaded.
    vol=$E2E_KUBELET_DIR/pods/$(jp pod/e2e-anon-0 '{.metadata.uid}')/volumes/kubernetes.io~empty-dir
    onion=$(jp moneronodeset/e2e-anon '{.status.nodes[0].onionAddress}')
    check "tor serves the onion address status shows (its hostname file; key 0600 in a 0700 dir)" bash -c "
      [ \"\$(cat '$vol/anon-tor/p2p/hostname')\" = '${onion%%:*}' ] &&
      [ \"\$(stat -c %a '$vol/anon-tor/p2p')\" = 700 ] &&
      [ \"\$(stat -c %a '$vol/anon-tor/p2p/hs_ed25519_secret_key')\" = 600 ]"
    check "i2pd loads the I2P key of the identity Secret" bash -c "
      key=\$(sed -n 's/^keys = //p' '$vol/anon-i2pd/tunnels.conf' | head -1) &&
      cmp <(kn get secret e2e-anon-identities -o jsonpath='{.data.e2e-anon-0\.i2p}' | base64 -d) '$vol/anon-i2pd/data/'\"\$key\""
  fi
  kn delete moneronodeset/e2e-anon --wait=false >/dev/null
  check "operator log after Tor and I2P" operator_log_clean
fi

# 5. blocks mined on one node reach all
mark
forward e2e-net-0 28081:18081
before=$(min_height moneronetwork/e2e-net)
check "blocks mined on e2e-net-0 reach every node" until_true "$TIMEOUT" bash -c "
  mine 28081 5 >/dev/null
  h=\$(jp moneronetwork/e2e-net '{.status.nodes[*].height}' | tr ' ' '\n' | sort -n | head -1)
  [ \"\${h:-0}\" -ge $((${before:-1} + 5)) ]"
unforward

# 6. scale through the scale subresource
kn scale moneronodeset/e2e-nodes --replicas=3 >/dev/null
check "scaled to 3: 3 ready replicas" until_true "$TIMEOUT" is moneronodeset/e2e-nodes '{.status.readyReplicas}' 3
kn scale moneronodeset/e2e-nodes --replicas=2 >/dev/null
check "scaled back to 2: the StatefulSet follows" until_true "$TIMEOUT" is statefulset/e2e-nodes '{.spec.replicas}' 2
check "operator log after mining and scaling" operator_log_clean

# 7. volumes: growth where the class allows it, a condition where it does not, and
# claims deleted with their set when its retention says so
mark
class=$(jp pvc/data-e2e-nodes-0 '{.spec.storageClassName}')
if [ "$(k get storageclass "$class" -o jsonpath='{.allowVolumeExpansion}' 2>/dev/null)" = true ]; then
  kn patch moneronodeset/e2e-nodes --type=merge -p '{"spec":{"storage":{"size":"2Gi"}}}' >/dev/null
  check "on $class (expandable) both claims are asked to grow to 2Gi" until_true 120 bash -c "
    [ \"\$(kn get pvc/data-e2e-nodes-0 pvc/data-e2e-nodes-1 -o jsonpath='{.items[*].spec.resources.requests.storage}')\" = '2Gi 2Gi' ]"
fi
if [ -n "${E2E_FIXED_CLASS:-}" ]; then
  kn apply -f - >/dev/null <<EOF
kind: MoneroNodeSet
apiVersion: utxo.com.br/v1alpha1
metadata: {name: e2e-fixed}
spec:
  network: regtest
  storage: {size: 1Gi, storageClassName: $E2E_FIXED_CLASS, retention: {whenDeleted: Delete}}
  monerod: {args: [--fixed-difficulty=1]}
EOF
  check "MoneroNodeSet e2e-fixed on $E2E_FIXED_CLASS becomes Ready" kn wait moneronodeset/e2e-fixed --for=condition=Ready --timeout="${TIMEOUT}s"
  kn patch moneronodeset/e2e-fixed --type=merge -p '{"spec":{"storage":{"size":"2Gi"}}}' >/dev/null
  check "growing on $E2E_FIXED_CLASS gives VolumesResized=False naming the claim, which stays 1Gi" until_true 120 bash -c "
    jp moneronodeset/e2e-fixed '{.status.conditions[?(@.type==\"VolumesResized\")].status} {.status.conditions[?(@.type==\"VolumesResized\")].message}' |
      grep -q '^False .*data-e2e-fixed-0' &&
    is pvc/data-e2e-fixed-0 '{.spec.resources.requests.storage}' 1Gi"
  kn delete moneronodeset/e2e-fixed --wait=true --timeout="${TIMEOUT}s" >/dev/null
  check "retention whenDeleted Delete: the claim goes with the set" until_true 120 bash -c "! kn get pvc/data-e2e-fixed-0 >/dev/null 2>&1"
fi
check "operator log after the volume changes" operator_log_clean

# 8. the leader goes; the other replica takes over
mark
old=$(leader)
k -n "$OPNS" delete pod "$old" --wait=false >/dev/null
check "another operator replica takes the Lease from $old" until_true 120 bash -c "
  h=\$(k -n $OPNS get lease monero-operator -o jsonpath='{.spec.holderIdentity}')
  [ -n \"\$h\" ] && [ \"\$h\" != '$old' ] && k -n $OPNS get pod \"\$h\" >/dev/null 2>&1"

# 9. a new monerod image rolls the pods, removed fields leave them, the chain survives
forward e2e-nodes-0 28082:18081
until_true 60 bash -c "mine 28082 10 | grep -q '\"OK\"'"
unforward
mined=$(until_true 60 bash -c "[ \"\$(jp moneronodeset/e2e-nodes '{.status.nodes[0].height}')\" -ge 11 ]" && jp moneronodeset/e2e-nodes '{.status.nodes[0].height}')
watch_rollout e2e-nodes "$work_dir/nodes-rollout"
kn patch moneronodeset/e2e-nodes --type=merge -p "{\"spec\":{\"monerod\":{\"image\":\"$REGISTRY/monerod:$TAG-e2e\"},\"pod\":{\"annotations\":null,\"nodeSelector\":null}}}" >/dev/null
check "the new leader rolls the StatefulSet to the new image" until_true "$TIMEOUT" bash -c "
  is pod/e2e-nodes-0 '{.spec.containers[?(@.name==\"monerod\")].image}' '$REGISTRY/monerod:$TAG-e2e' &&
  is pod/e2e-nodes-1 '{.spec.containers[?(@.name==\"monerod\")].image}' '$REGISTRY/monerod:$TAG-e2e' &&
  is moneronodeset/e2e-nodes '{.status.readyReplicas}' 2"
stop_watch
# The status counts the updated replicas at its next write: wait for it, then read the order.
check "the sync gate moved e2e-nodes-1 first and e2e-nodes-0 only once it was Ready" bash -c "
  until_true 60 is moneronodeset/e2e-nodes '{.status.updatedReplicas}' 2 >/dev/null &&
  gated '$work_dir/nodes-rollout' \"\$(jp statefulset/e2e-nodes '{.status.updateRevision}')\" e2e-nodes-1 e2e-nodes-0"
check "the removed pod annotation and nodeSelector are gone from the pods" bash -c "
  ! kn get pod/e2e-nodes-0 pod/e2e-nodes-1 -o json | grep -qE 'e2e.utxo.com.br/note|\"nodeSelector\"'"
check "the chain survived the rollout (height still >= ${mined:-11})" until_true 120 bash -c "[ \"\$(jp moneronodeset/e2e-nodes '{.status.nodes[0].height}')\" -ge ${mined:-11} ]"
check "operator log after the hand-over and the rollout" operator_log_clean

# 10. fleet operations: a public set (per-replica node ports, a ban list, ZMQ on the
# newest monerod), then the network upgraded from one monerod release to the next
# through the sync gate, halted by an image that cannot start, resumed by a revert.
if [ -n "${E2E_UPGRADE_TO:-}" ]; then
  mark
  newest=${E2E_UPGRADE_TO##*:v}
  node_ip=$(k get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
  kn create configmap e2e-bans --from-literal=list=$'# spy nodes\n198.51.100.7\n203.0.113.0/24\n' >/dev/null
  kn apply -f - >/dev/null <<EOF
kind: MoneroNodeSet
apiVersion: utxo.com.br/v1alpha1
metadata: {name: e2e-public}
spec:
  replicas: 2
  network: regtest
  storage: {size: 1Gi, retention: {whenDeleted: Delete}}
  service:
    perReplica: {type: NodePort, nodePortBase: 30080}
  monerod:
    image: $E2E_UPGRADE_TO
    zmq: true
    zmqPub: Cluster
    banList: {name: e2e-bans, key: list}
    rpc: {limits: {perPublicIp: 5}}
    # Not --offline: that closes the P2P port the node ports lead to.
    args: [--fixed-difficulty=1]
EOF
  check "MoneroNodeSet e2e-public (node ports, ban list, ZMQ on monerod $newest) becomes Ready" kn wait moneronodeset/e2e-public --for=condition=Ready --timeout="${TIMEOUT}s"
  check "status shows each replica's public P2P address ($node_ip:30080, :30081) and the release" until_true 60 bash -c "
    is moneronodeset/e2e-public '{.status.nodes[0].p2pAddress}' '$node_ip:30080' &&
    is moneronodeset/e2e-public '{.status.nodes[1].p2pAddress}' '$node_ip:30081' &&
    jp moneronodeset/e2e-public '{.status.monerodVersion}' | grep -qx '$newest from the image tag'"
  check "monerod $newest read the ban list from the ConfigMap" bash -c "kn logs e2e-public-0 -c monerod | grep -q 'Host 198.51.100.7 blocked'"
  if [ -n "${E2E_PROBE_IMAGE:-}" ]; then
    check "a pod reaches replica 1 at its node port ($node_ip:30081)" bash -c "$(declare -f probe); E2E_PROBE_IMAGE=$E2E_PROBE_IMAGE probe e2e-probe-np $node_ip 30081 | grep -x connected"
    zmq_ip=$(jp pod/e2e-public-0 '{.status.podIP}')
    check "a pod reaches the ZMQ publisher in the cluster ($zmq_ip:18084)" bash -c "$(declare -f probe); E2E_PROBE_IMAGE=$E2E_PROBE_IMAGE probe e2e-probe-zmq $zmq_ip 18084 | grep -x connected"
    kn delete pod e2e-probe-np e2e-probe-zmq --wait=false >/dev/null 2>&1
  fi
  kn delete moneronodeset/e2e-public --wait=false >/dev/null
  check "operator log after the public set" operator_log_clean

  mark
  net_image() { # net_image IMAGE: the network's monerod image becomes IMAGE
    kn patch moneronetwork/e2e-net --type=merge -p "{\"spec\":{\"template\":{\"spec\":{\"monerod\":{\"image\":\"$1\"}}}}}" >/dev/null
  }
  all_on() { # all_on IMAGE: every node runs IMAGE and is Ready
    [ "$(jp moneronetwork/e2e-net '{range .status.nodes[*]}{.image} {end}')" = "$1 $1 $1 " ] &&
      is moneronetwork/e2e-net '{.status.readyReplicas}' 3
  }
  export -f all_on
  net_image "$E2E_UPGRADE_FROM"
  check "e2e-net on ${E2E_UPGRADE_FROM##*:}, all Ready" until_true "$TIMEOUT" all_on "$E2E_UPGRADE_FROM"
  before=$(min_height moneronetwork/e2e-net)
  watch_rollout e2e-net "$work_dir/net-rollout"
  net_image "$E2E_UPGRADE_TO"
  check "upgraded to monerod $newest: every node runs it, reports it and is Ready" until_true "$TIMEOUT" bash -c "
    all_on '$E2E_UPGRADE_TO' &&
    [ \"\$(jp moneronetwork/e2e-net '{.status.nodes[*].version}' | tr ' ' '\n' | grep -c '^$newest')\" = 3 ]"
  stop_watch
  check "one node at a time, highest first, each once the one before was Ready" bash -c "
    rev=\$(jp statefulset/e2e-net '{.status.updateRevision}')
    gated '$work_dir/net-rollout' \"\$rev\" e2e-net-2 e2e-net-1 && gated '$work_dir/net-rollout' \"\$rev\" e2e-net-1 e2e-net-0"
  check "every height kept through the upgrade (>= ${before:-1})" until_true 120 bash -c "[ \"\$(min_height moneronetwork/e2e-net)\" -ge ${before:-1} ]"
  kn patch moneronetwork/e2e-net --type=merge -p '{"spec":{"updateStrategy":{"progressDeadline":"45s"}}}' >/dev/null
  net_image "$E2E_BROKEN_IMAGE"
  check "an image that cannot start halts the rollout at e2e-net-2 (Progressing=False, RolloutHalted)" until_true "$TIMEOUT" bash -c "
    jp moneronetwork/e2e-net '{.status.conditions[?(@.type==\"Progressing\")].status} {.status.conditions[?(@.type==\"Progressing\")].reason} {.status.conditions[?(@.type==\"Progressing\")].message}' |
      grep -q '^False RolloutHalted e2e-net-2 '"
  check "the other two keep monerod $newest and keep serving" bash -c "
    is pod/e2e-net-0 '{.spec.containers[?(@.name==\"monerod\")].image}' '$E2E_UPGRADE_TO' &&
    is pod/e2e-net-1 '{.spec.containers[?(@.name==\"monerod\")].image}' '$E2E_UPGRADE_TO' &&
    is pod/e2e-net-0 '{.status.conditions[?(@.type==\"Ready\")].status}' True &&
    is pod/e2e-net-1 '{.status.conditions[?(@.type==\"Ready\")].status}' True &&
    [ \"\$(jp moneronetwork/e2e-net '{.status.nodes[0].height}')\" -ge ${before:-1} ]"
  check "a Warning Event says the rollout halted" bash -c "kn get events --field-selector reason=RolloutHalted -o name | grep -q ."
  net_image "$E2E_UPGRADE_TO"
  check "reverting the image resumes: all three Ready on monerod $newest" until_true "$TIMEOUT" bash -c "
    all_on '$E2E_UPGRADE_TO' && is moneronetwork/e2e-net '{.status.conditions[?(@.type==\"Progressing\")].reason}' Stable"
  check "operator log after the upgrade" operator_log_clean
fi

# 11. a research network: a Ring of 4, blocks on a schedule from node 0's lab sidecar,
# Ready only at its height, and the graph the nodes report compared with the ring's
mark
kn apply -f - >/dev/null <<EOF
kind: MoneroNetwork
apiVersion: utxo.com.br/v1alpha1
metadata: {name: e2e-lab}
spec:
  replicas: 4
  topology: {type: Ring}
  blocks: {interval: 2s, miners: [0, 2]}
  readyAtHeight: 15
  template:
    spec:
      network: regtest
      storage: {size: 1Gi, retention: {whenDeleted: Delete}}
      monerod: {args: [--fixed-difficulty=1]}
EOF
check "MoneroNetwork e2e-lab (a Ring of 4, a block every 2 s) becomes Ready at height 15" kn wait moneronetwork/e2e-lab --for=condition=Ready --timeout="${TIMEOUT}s"
check "every node reaches height 15 before Ready" bash -c "
  for h in \$(jp moneronetwork/e2e-lab '{.status.nodes[*].height}'); do [ \"\$h\" -ge 15 ] || exit 1; done"
check "each node reports its two ring neighbours, by pod and Service (TopologyMatches)" until_true 120 bash -c "
  is moneronetwork/e2e-lab '{.status.conditions[?(@.type==\"TopologyMatches\")].status}' True &&
  is moneronetwork/e2e-lab '{.status.nodes[0].peers}' '1,3' && is moneronetwork/e2e-lab '{.status.nodes[2].peers}' '1,3'"
forked() { jp moneronetwork/e2e-lab '{.status.conditions[?(@.type=="Forked")].status} {.status.conditions[?(@.type=="Forked")].message}'; }
export -f forked
kn patch moneronetwork/e2e-lab --type=merge -p '{"spec":{"partitions":[[0,1],[2,3]]}}' >/dev/null
check "partitioned at run time: both halves mine and Forked names the two sides" until_true "$TIMEOUT" bash -c "
  forked | grep -E '^True 2 chains at height [0-9]+: ' | grep 'e2e-lab-0, e2e-lab-1 on' | grep -q 'e2e-lab-2, e2e-lab-3 on'"
check "no node restarted for the partition" bash -c "
  [ \"\$(kn get pods -l app.kubernetes.io/instance=e2e-lab -o jsonpath='{.items[*].status.containerStatuses[*].restartCount}' | tr ' ' '\n' | sort -u)\" = 0 ]"
# Still apart, only node 0 mines on, until its half is ahead: healed then, the other
# half's chain is the shorter one and it alone reorganizes.
kn patch moneronetwork/e2e-lab --type=merge -p '{"spec":{"blocks":{"miners":[0]}}}' >/dev/null
heights() { jp moneronetwork/e2e-lab '{.status.nodes[0].height} {.status.nodes[2].height}'; }
export -f heights
until_true "$TIMEOUT" bash -c 'set -- $(heights); [ "${1:-0}" -gt $(( ${2:-0} + 2 )) ]' >/dev/null
reorgs() { jp moneronetwork/e2e-lab '{range .status.nodes[*]}{.reorganizations}{" "}{end}'; }
export -f reorgs
before=$(reorgs)
kn patch moneronetwork/e2e-lab --type=merge -p '{"spec":{"partitions":null}}' >/dev/null
check "healed: one chain again; the half that fell behind reorganized onto it, the other did not" until_true "$TIMEOUT" bash -c "
  forked | grep -q '^False one chain' || exit 1
  b=($before) a=(\$(reorgs))
  [ \$(( \${a[2]:-0} - \${b[2]:-0} )) -ge 1 ] && [ \$(( \${a[3]:-0} - \${b[3]:-0} )) -ge 1 ] &&
  [ \$(( \${a[0]:-0} - \${b[0]:-0} )) -eq 0 ] && [ \$(( \${a[1]:-0} - \${b[1]:-0} )) -eq 0 ] &&
  [ \"\$(jp moneronetwork/e2e-lab '{.status.nodes[2].lastReorganizationDepth}')\" -ge 1 ]"
kn delete moneronetwork/e2e-lab --wait=false >/dev/null
check "operator log after the research network" operator_log_clean

# 11b. a network for a wallet's CI: wallets made, funded from coinbase, paying each
# other, behind a login, kept across a restart of their pod
mark
kn create secret generic e2e-wallet-login --from-literal=username=dev \
  --from-literal=password=e2e-wallet-password >/dev/null 2>&1 || true
kn apply -f - >/dev/null <<EOF
kind: MoneroNetwork
apiVersion: utxo.com.br/v1alpha1
metadata: {name: e2e-ci}
spec:
  replicas: 1
  blocks: {interval: 2s, blocksPerRound: 2}
  wallets: {count: 2, transactionsPerMinute: 6, login: {secretName: e2e-wallet-login}}
  template:
    spec:
      network: regtest
      storage: {size: 1Gi, retention: {whenDeleted: Delete}}
      monerod: {args: [--fixed-difficulty=1]}
EOF
check "MoneroNetwork e2e-ci becomes Ready once both wallets can spend (WalletsFunded)" kn wait moneronetwork/e2e-ci --for=condition=Ready --timeout="${TIMEOUT}s"
# Balances, not unlocked ones: a wallet that has just sent waits 10 blocks for its change.
check "status shows two wallets with distinct addresses and balances" bash -c "
  set -- \$(jp moneronetwork/e2e-ci '{range .status.wallets[*]}{.address}{\" \"}{.balance}{\" \"}{end}')
  [ \$# = 4 ] && [ \"\$1\" != \"\$3\" ] && [ \"\$2\" -gt 0 ] && [ \"\$4\" -gt 0 ] &&
  is moneronetwork/e2e-ci '{.status.conditions[?(@.type==\"WalletsFunded\")].status}' True"
check "each wallet sends transfers, and the node's chain holds them" until_true "$TIMEOUT" bash -c "
  set -- \$(jp moneronetwork/e2e-ci '{.status.wallets[*].transfers}')
  [ \"\${1:-0}\" -ge 1 ] && [ \"\${2:-0}\" -ge 1 ] &&
  [ \"\$(k get --raw /api/v1/namespaces/$NS/pods/e2e-ci-0:18089/proxy/get_info | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"tx_count\"])')\" -ge 2 ]"
check "the wallets' exporter reports monero_wallet_up 1 for each (pod proxy)" bash -c "
  [ \"\$(k get --raw /api/v1/namespaces/$NS/pods/e2e-ci-wallets-0:18090/proxy/metrics | grep -c '^monero_wallet_up{wallet=\"[01]\"} 1')\" = 2 ]"
check "no login in the wallets pod's spec" bash -c "! kn get pod/e2e-ci-wallets-0 -o json | grep -q e2e-wallet-password"
forward e2e-ci-wallets-0 28083:18084
check "wallet 1's RPC asks for the login" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 http://127.0.0.1:28083/json_rpc -d '{\"jsonrpc\":\"2.0\",\"id\":\"0\",\"method\":\"get_balance\"}')\" = 401 ]"
check "wallet 1's RPC answers get_balance with the login" bash -c "
  curl -sf --max-time 30 --digest -u dev:e2e-wallet-password http://127.0.0.1:28083/json_rpc \
    -d '{\"jsonrpc\":\"2.0\",\"id\":\"0\",\"method\":\"get_balance\"}' | grep -q '\"balance\": [1-9]'"
unforward
addresses=$(jp moneronetwork/e2e-ci '{.status.wallets[*].address}')
kn delete pod/e2e-ci-wallets-0 --wait=true --timeout=120s >/dev/null
check "the wallets pod comes back with the same wallets (kept on its volume)" until_true "$TIMEOUT" bash -c "
  is pod/e2e-ci-wallets-0 '{.status.conditions[?(@.type==\"Ready\")].status}' True &&
  [ \"\$(k get --raw /api/v1/namespaces/$NS/pods/e2e-ci-wallets-0:18090/proxy/wallets | python3 -c 'import json, sys; print(\" \".join(w[\"address\"] for w in json.load(sys.stdin)))')\" = '$addresses' ]"
kn delete moneronetwork/e2e-ci --wait=false >/dev/null
check "operator log after the wallets network" operator_log_clean

# 12. delete: children collected, PVCs retained (retention Retain by default)
mark
kn delete moneronodeset/e2e-nodes moneronetwork/e2e-net --wait=true --timeout="${TIMEOUT}s" >/dev/null
check "children collected (StatefulSets, Services)" until_true "$TIMEOUT" bash -c "[ -z \"\$(kn get statefulsets,services -l app.kubernetes.io/managed-by=monero-operator -o name)\" ]"
check "PVCs retained (2 + 3, and the solo node's)" bash -c "[ \"\$(kn get pvc -o name | grep -cE 'data-e2e-(nodes|net|solo)-')\" -ge 6 ]"
check "operator log after deletion" operator_log_clean

echo "e2e: $passed passed, $failed failed, $((CHECKS - passed - failed)) skipped"
[ "$failed" -eq 0 ]
