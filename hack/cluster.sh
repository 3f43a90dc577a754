#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, built from Go modules (hack/cluster/):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and either kwok for
# fake nodes whose pods "run" without a container runtime, or (--node) a real node.
#
#   hack/cluster.sh up       start everything; returns once the API answers and a node is Ready
#   hack/cluster.sh up --node  the same with a real node instead of kwok: containerd,
#                            kubelet, kube-proxy, CoreDNS, a pod bridge, local volumes
#                            (hack/cluster/node.sh says how the network rule holds there)
#   hack/cluster.sh down     stop every process `up` started, by PID, and remove its state
#   hack/cluster.sh status   what runs, and the admin kubeconfig
#   hack/cluster.sh env      KUBECONFIG=... and PATH=... lines for `eval`
#   hack/cluster.sh preflight  why the node cannot start here (exit 1), or nothing
#   hack/cluster.sh load IMAGE...  copies images from the Docker engine into the node's
#                            containerd (no registry involved)
#
# With kwok, everything listens on 127.0.0.1 only. kwok gives its fake pods addresses
# in 127.244.0.0/16 (loopback), so an operator that polls pod IPs only ever reaches
# loopback, where nothing answers: the network rule holds without a pod network. With
# the node, the API server listens on the pod bridge's own address instead, so that
# pods reach it; that bridge leads nowhere else.
#
#   CLUSTER_DIR   state: certificates, etcd data, logs, PIDs, and audit.log (every request
#                 of the monero-operator ServiceAccount) (default .cache/cluster/run)
#   APISERVER_PORT (default 16443), ETCD_PORT (default 12379)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${CLUSTER_DIR:-$root/.cache/cluster/run}
api_port=${APISERVER_PORT:-16443}
etcd_port=${ETCD_PORT:-12379}
etcd_peer_port=$((etcd_port + 1))
kubeconfig=$root/.cache/cluster/admin.kubeconfig
service_cidr=10.96.0.0/16
pod_cidr=127.244.0.0/16
mode=kwok
[ "${2:-}" = --node ] && mode=node
[ "$mode" = kwok ] && [ -f "$dir/mode" ] && [ "${1:-}" != up ] && mode=$(cat "$dir/mode")
# shellcheck source=cluster/node.sh
. "$root/hack/cluster/node.sh"
api_host=127.0.0.1
[ "$mode" = node ] && api_host=$node_ip

log() { echo "cluster: $*" >&2; }

# wait_for SECONDS WHAT COMMAND...: runs COMMAND until it succeeds or the deadline passes.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# start NAME BINARY ARGS...: runs a component in the background, its PID in $dir/NAME.pid.
start() {
  local name=$1
  shift
  "$@" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

running() { # running NAME: whether the process of NAME.pid is alive
  [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null
}

# The PKI: one CA signs the serving certificate and every client certificate;
# a separate key pair signs ServiceAccount tokens.
pki() {
  local p=$dir/pki
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=monero-operator-test-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:$node_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=admin"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kwok "/O=system:masters/CN=kwok"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
}

cert() { # cert NAME SUBJECT [EXTENSION]
  local p=$dir/pki name=$1 subj=$2 ext=${3:-}
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$p/$name.key" -out "$p/$name.csr" 2>/dev/null
  local extfile=$p/$name.ext
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    if [ -n "$ext" ]; then echo "extendedKeyUsage=serverAuth"; echo "$ext"; else echo "extendedKeyUsage=clientAuth"; fi
  } >"$extfile"
  openssl x509 -req -in "$p/$name.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 30 -extfile "$extfile" -out "$p/$name.crt" 2>/dev/null
}

kubeconfig_for() { # kubeconfig_for NAME FILE: a kubeconfig with NAME's client certificate
  local p=$dir/pki name=$1 file=$2
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$api_host:$api_port
    certificate-authority: $p/ca.crt
users:
- name: $name
  user:
    client-certificate: $p/$name.crt
    client-key: $p/$name.key
contexts:
- name: local
  context: {cluster: local, user: $name}
current-context: local
EOF
}

bin_dir() {
  if [ -z "${CLUSTER_BIN:-}" ]; then
    CLUSTER_BIN=$(bash "$root/hack/cluster/build.sh")
  fi
  echo "$CLUSTER_BIN"
}

up() {
  local bin
  bin=$(bin_dir)
  CLUSTER_BIN=$bin
  if running kube-apiserver; then
    log "already up (hack/cluster.sh down first)"
    return 0
  fi
  if [ "$mode" = node ]; then
    local why
    why=$(node_preflight)
    [ -z "$why" ] || { log "the node cannot start here: $why"; return 1; }
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$mode" >"$dir/mode"
  echo "$bin" >"$dir/bin"
  pki
  local p=$dir/pki
  kubeconfig_for admin "$kubeconfig"
  kubeconfig_for controller-manager "$dir/controller-manager.kubeconfig"
  kubeconfig_for scheduler "$dir/scheduler.kubeconfig"
  kubeconfig_for kwok "$dir/kwok.kubeconfig"
  local endpoints=(--endpoint-reconciler-type none)
  if [ "$mode" = node ]; then
    node_pki
    node_network_up
    endpoints=()
  fi

  log "etcd on 127.0.0.1:$etcd_port"
  start etcd "$bin/etcd" --name local --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "local=http://127.0.0.1:$etcd_peer_port" --listen-metrics-urls "" \
    --quota-backend-bytes 4294967296 --unsafe-no-fsync
  wait_for 30 etcd curl -fsS "http://127.0.0.1:$etcd_port/health" || { tail -20 "$dir/etcd.log" >&2; return 1; }

  # The audit log records every request of the operator's ServiceAccount (and nothing
  # else), so tests and benchmarks can count what a reconcile costs on the real server.
  cat >"$dir/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["system:serviceaccount:monero-system:monero-operator"]
- level: None
EOF
  log "kube-apiserver on https://$api_host:$api_port"
  # The default admission plugins (PodSecurity, ResourceQuota, ServiceAccount, ...) are
  # on. With kwok the endpoint reconciler is off, because the API server's only address
  # is loopback, which an Endpoints object may not hold; with the node, the `kubernetes`
  # Service leads to the bridge address, for the operator's pod.
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$api_host" --advertise-address "$api_host" --secure-port "$api_port" \
    "${endpoints[@]}" \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$p/ca.crt" --kubelet-preferred-address-types InternalIP \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --client-ca-file "$p/ca.crt" \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC \
    --service-cluster-ip-range "$service_cidr" \
    --enable-admission-plugins NodeRestriction \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --audit-log-format json --audit-log-mode blocking \
    --profiling=false
  wait_for 120 kube-apiserver kubectl_ get --raw /readyz || { tail -30 "$dir/kube-apiserver.log" >&2; return 1; }

  log "kube-controller-manager and kube-scheduler"
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 \
    --use-service-account-credentials \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
    --service-cluster-ip-range "$service_cidr" \
    --leader-elect=false --concurrent-gc-syncs 5
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false

  if [ "$mode" = node ]; then
    node_up || return 1
    wait_for 60 "the default ServiceAccount" kubectl_ -n default get serviceaccount default
    log "up with node $node_name: KUBECONFIG=$kubeconfig"
    return 0
  fi
  log "kwok and a fake node"
  start kwok "$bin/kwok" --kubeconfig "$dir/kwok.kubeconfig" --config "$bin/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-label-selector kwok.x-k8s.io/node=fake \
    --cidr "$pod_cidr" --node-ip 127.0.0.1 --node-port 0
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  labels:
    kwok.x-k8s.io/node: fake
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
spec:
  podCIDR: $pod_cidr
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "2000"}
  capacity: {cpu: "32", memory: 256Gi, pods: "2000"}
EOF
  wait_for 120 "node kwok-node-0 Ready" node_ready kwok-node-0 || { tail -30 "$dir/kwok.log" >&2; return 1; }
  # The default namespace's ServiceAccount appears once the controller-manager runs.
  wait_for 60 "the default ServiceAccount" kubectl_ -n default get serviceaccount default
  log "up: KUBECONFIG=$kubeconfig"
}

node_ready() {
  [ "$(kubectl_ get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

kubectl_() { "$(bin_dir)/kubectl" --kubeconfig "$kubeconfig" "$@"; }

stop_pid() { # stop_pid NAME: TERM (then KILL after 15 s) the process of NAME.pid
  local name=$1
  [ -f "$dir/$name.pid" ] || return 0
  local pid
  pid=$(cat "$dir/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$name.pid"
}

down() {
  local name
  # The binaries `up` ran (kube-proxy cleans up its rules), without building anything.
  [ -z "${CLUSTER_BIN:-}" ] && [ -f "$dir/bin" ] && CLUSTER_BIN=$(cat "$dir/bin")
  [ "$mode" = node ] && node_down
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop_pid "$name"
  done
  rm -rf "$dir/etcd"
  log "down"
}

status() {
  local name any=0
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler kwok containerd kubelet kube-proxy coredns; do
    if running "$name"; then echo "$name: running (pid $(cat "$dir/$name.pid"))"; any=1; else echo "$name: stopped"; fi
  done
  echo "kubeconfig: $kubeconfig"
  [ "$any" = 1 ]
}

case "${1:-}" in
  # A start that fails half-way leaves nothing running.
  up) up || { down; exit 1; } ;;
  down) down ;;
  status) status ;;
  env) echo "export KUBECONFIG=$kubeconfig PATH=$(bin_dir):\$PATH" ;;
  load) shift; node_load_images "$@" ;;
  kubelet-dir) echo "$dir/node/kubelet" ;;
  probe-image) echo "$node_pause_image" ;;
  preflight) why=$(node_preflight); [ -z "$why" ] || { echo "$why"; exit 1; } ;;
  *) echo "usage: hack/cluster.sh up [--node]|down|status|env|preflight|load IMAGE..." >&2; exit 2 ;;
esac
