# A real node for hack/cluster.sh up --node (sourced by it; not run on its own):
# containerd (Debian's), the CNI plugins (Debian's containernetworking-plugins),
# kubelet, kube-proxy and CoreDNS, with volumes made ahead for two StorageClasses.
#
# The network rule, and how this keeps it:
# - The pod network is one bridge, $node_bridge, made here with the address
#   $node_ip/24 and no other port: nothing on it leads off the machine.
# - Pods get routes to the bridge's subnet and the Service range only, no default
#   route: a connect to any other address fails in the pod ("Network is unreachable").
# - The host forwards nothing from or to the bridge except bridge to bridge (chain
#   MONERO-NODE-FWD), and takes from pods only the API server, DNS and replies
#   (chain MONERO-NODE-IN). No masquerade leads out.
# - What pods must reach listens on $node_ip, which exists only on that bridge: the
#   API server, kubelet and CoreDNS. Every other listener is on 127.0.0.1.
# - CoreDNS serves cluster.local and its reverse zone only (REFUSED for any other
#   name), and pods get no host resolver or search domain (kubelet's resolvConf is
#   an empty file).
# - No image is pulled: the images are imported from the Docker engine that built
#   them, every pod here uses them as IfNotPresent, and containerd sends any pull for
#   the usual registries to 127.0.0.1:9, where nothing answers.

node_name=monero-node-0
node_bridge=mo-cni0
node_ip=${NODE_IP:-10.244.0.1}
node_subnet=${node_ip%.*}.0/24
node_run=/run/monero-operator-node # short: a unix socket path has a 108-byte limit
node_sock=$node_run/containerd.sock
node_pause_image=monero-operator.local/node-tools:1
# Sysctls kubelet sets on the host (its "kernel tunables"); `down` puts them back.
node_sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# Why the node cannot start here, or nothing when it can: the tier skips with this.
node_preflight() {
  [ "$(id -u)" -eq 0 ] || { echo "the node needs root (kubelet, containerd, iptables)"; return; }
  local c
  for c in containerd runc ctr iptables ip docker gcc; do
    command -v "$c" >/dev/null 2>&1 || { echo "$c is not installed (hack/deps.sh installs it)"; return; }
  done
  [ -x /usr/lib/cni/bridge ] || { echo "no CNI plugins in /usr/lib/cni (Debian containernetworking-plugins)"; return; }
  docker info >/dev/null 2>&1 || { echo "no Docker engine answers (the images are built and exported with it)"; return; }
  [ -e /dev/kmsg ] || { echo "no /dev/kmsg (kubelet's OOM watcher reads it)"; return; }
  [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "no cgroup hierarchy under /sys/fs/cgroup"; return; }
}

node_pki() {
  local p=$dir/pki
  cert kubelet "/CN=system:node:$node_name" "subjectAltName=IP:$node_ip,DNS:$node_name"
  cert kubelet-client "/O=system:nodes/CN=system:node:$node_name"
  cert kube-proxy "/CN=system:kube-proxy"
  cert coredns "/CN=system:coredns"
  kubeconfig_for kubelet-client "$dir/kubelet.kubeconfig"
  kubeconfig_for kube-proxy "$dir/kube-proxy.kubeconfig"
  kubeconfig_for coredns "$dir/coredns.kubeconfig"
  [ -s "$p/kubelet.crt" ]
}

# The bridge and the host's rules for it, before the API server binds its address.
node_network_up() {
  ip link show "$node_bridge" >/dev/null 2>&1 || ip link add "$node_bridge" type bridge
  ip addr replace "$node_ip/24" dev "$node_bridge"
  ip link set "$node_bridge" up
  # Pod to pod through a Service: the reply is bridged, and must pass conntrack.
  modprobe br_netfilter 2>/dev/null || true
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
  sysctl -qw net.ipv4.ip_forward=1
  node_rules_down
  iptables -N MONERO-NODE-FWD
  iptables -A MONERO-NODE-FWD -i "$node_bridge" -o "$node_bridge" -j ACCEPT
  iptables -A MONERO-NODE-FWD -i "$node_bridge" -j DROP
  iptables -A MONERO-NODE-FWD -o "$node_bridge" -j DROP
  iptables -I FORWARD 1 -j MONERO-NODE-FWD
  iptables -N MONERO-NODE-IN
  iptables -A MONERO-NODE-IN -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  iptables -A MONERO-NODE-IN -d "$node_ip" -p tcp --dport "$api_port" -j ACCEPT
  iptables -A MONERO-NODE-IN -d "$node_ip" -p udp --dport 53 -j ACCEPT
  iptables -A MONERO-NODE-IN -d "$node_ip" -p tcp --dport 53 -j ACCEPT
  iptables -A MONERO-NODE-IN -j DROP
  iptables -I INPUT 1 -i "$node_bridge" -j MONERO-NODE-IN
}

node_rules_down() {
  local chain hook
  for chain in MONERO-NODE-FWD:FORWARD MONERO-NODE-IN:INPUT; do
    hook=${chain#*:}
    chain=${chain%:*}
    iptables -L "$chain" -n >/dev/null 2>&1 || continue
    while iptables -D "$hook" -j "$chain" 2>/dev/null || iptables -D "$hook" -i "$node_bridge" -j "$chain" 2>/dev/null; do :; done
    iptables -F "$chain"
    iptables -X "$chain"
  done
}

# The KUBE-* chains kubelet and kube-proxy made (IPv4 and IPv6, every table), and
# every jump to them.
node_kube_rules_down() {
  local ipt t rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for t in filter nat mangle; do
      "$ipt" -t "$t" -S 2>/dev/null | grep -E '^-A [^ ]+ .*-j KUBE-' | grep -v '^-A KUBE-' | sed 's/^-A /-D /' |
        while read -r rule; do eval "$ipt -t $t $rule" 2>/dev/null; done
      for chain in $("$ipt" -t "$t" -S 2>/dev/null | awk '/^-N KUBE-/ { print $2 }'); do "$ipt" -t "$t" -F "$chain" 2>/dev/null; done
      for chain in $("$ipt" -t "$t" -S 2>/dev/null | awk '/^-N KUBE-/ { print $2 }'); do "$ipt" -t "$t" -X "$chain" 2>/dev/null; done
    done
  done
}

# containerd: its own instance (not Docker's), its own root, state and socket.
node_containerd() {
  local c=$dir/node/containerd
  mkdir -p "$c/certs.d" "$node_run" "$dir/node/cni" "$dir/node/cni-ipam"
  local host
  for host in ghcr.io docker.io registry-1.docker.io registry.k8s.io quay.io; do
    mkdir -p "$c/certs.d/$host"
    printf 'server = "http://127.0.0.1:9"\n' >"$c/certs.d/$host/hosts.toml"
  done
  cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$node_run/state"
[grpc]
  address = "$node_sock"
[ttrpc]
  address = "$node_run/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$node_pause_image"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # A machine may deny root CAP_SYS_RESOURCE (this one does): kubelet's negative OOM
  # scores for the sandboxes cannot be set there, and runc fails the whole pod. This
  # raises them to containerd's own (0) instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/node/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
EOF
  # Routes to the bridge's subnet (implicit) and the Service range; no default route.
  cat >"$dir/node/cni/10-monero-node.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "monero-node",
  "plugins": [
    {
      "type": "bridge", "bridge": "$node_bridge", "isGateway": true,
      "isDefaultGateway": false, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$dir/node/cni-ipam",
        "ranges": [[{"subnet": "$node_subnet", "gateway": "$node_ip"}]],
        "routes": [{"dst": "$service_cidr"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  log "containerd on $node_sock"
  start containerd containerd --config "$c/config.toml"
  wait_for 60 containerd ctr --address "$node_sock" version || { tail -20 "$dir/containerd.log" >&2; return 1; }
}

ctr_() { ctr --address "$node_sock" -n k8s.io "$@"; }

# The node's own image (sandbox process and connect probe), built from hack/cluster/node-image.
node_tools_image() {
  local src=$root/hack/cluster/node-image out=$dir/node/node-image
  mkdir -p "$out"
  gcc -static -O2 -o "$out/pause" "$src/pause.c"
  gcc -static -O2 -o "$out/connect" "$src/connect.c"
  cp "$src/Dockerfile" "$out/"
  docker build -q -t "$node_pause_image" "$out" >"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; return 1; }
}

# node_load_images IMAGE...: from the Docker engine into containerd, with no registry.
node_load_images() {
  log "loading ${#@} images into containerd"
  docker save "$@" | ctr_ images import - >/dev/null
}

node_kubelet() {
  local k=$dir/node/kubelet p=$dir/pki
  mkdir -p "$k" "$dir/node/pod-logs"
  : >"$dir/node/resolv.conf"
  local s
  for s in "${node_sysctls[@]}"; do sysctl -n "$s"; done >"$dir/node/sysctls.saved" 2>/dev/null || true
  cat >"$dir/node/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$node_sock
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $p/kubelet.crt
tlsPrivateKeyFile: $p/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $p/ca.crt}
authorization: {mode: Webhook}
# This machine has cgroup v1 and no systemd; kubelet refuses v1 unless told.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$node_ip]
resolvConf: $dir/node/resolv.conf
podLogsDir: $dir/node/pod-logs
# The imported images cannot be pulled again: never collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%"}
serializeImagePulls: true
# A changed Secret reaches the pods' volumes at the next pod sync: every 10 s here
# instead of every minute, so that the e2e steps that change a network's lab files
# (partitions) wait less.
syncFrequency: 10s
shutdownGracePeriod: 0s
EOF
  log "kubelet, node $node_name at $node_ip"
  start kubelet "$CLUSTER_BIN/kubelet" --config "$dir/node/kubelet.yaml" \
    --kubeconfig "$dir/kubelet.kubeconfig" --root-dir "$k" \
    --hostname-override "$node_name" --node-ip "$node_ip"
}

node_kube_proxy() {
  cat >"$dir/node/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $dir/kube-proxy.kubeconfig}
hostnameOverride: $node_name
clusterCIDR: $node_subnet
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$node_ip/32"]
# Leave the host's conntrack limits and timeouts as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  log "kube-proxy (iptables)"
  start kube-proxy "$CLUSTER_BIN/kube-proxy" --config "$dir/node/kube-proxy.yaml"
}

node_coredns() {
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}]
EOF
  cat >"$dir/node/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 {
    bind $node_ip
    errors
    health 127.0.0.1:18180
    ready 127.0.0.1:18181
    cache 5
    kubernetes cluster.local in-addr.arpa {
        kubeconfig $dir/coredns.kubeconfig
        pods insecure
    }
}
EOF
  log "CoreDNS on $node_ip:53 (cluster.local only)"
  start coredns "$CLUSTER_BIN/coredns" -conf "$dir/node/Corefile"
  wait_for 60 CoreDNS curl -fsS http://127.0.0.1:18181/ready || { tail -20 "$dir/coredns.log" >&2; return 1; }
}

# Volumes made ahead: local PersistentVolumes on the node, in two classes.
# local-expand (the default) allows expansion, local-fixed does not. Nothing resizes a
# local volume on disk: on local-expand the claim's request grows and the API server
# accepts it; on local-fixed the API server refuses it. Claims take the first free volume;
# a released one is not reused (its data stays, as Retain says), so there are plenty.
node_storage() {
  local pv=$dir/node/volumes n cls
  {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-expand
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local-fixed}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
EOF
    for cls in local-expand:${NODE_VOLUMES:-32} local-fixed:4; do
      for n in $(seq 1 "${cls#*:}"); do
        mkdir -p "$pv/${cls%:*}-$n"
        cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: ${cls%:*}-$n}
spec:
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ${cls%:*}
  local: {path: $pv/${cls%:*}-$n}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$node_name]}]
EOF
      done
    done
  } | kubectl_ apply -f - >/dev/null
}

node_up() {
  mkdir -p "$dir/node"
  node_containerd
  node_tools_image
  node_load_images "$node_pause_image"
  node_kubelet
  wait_for 120 "node $node_name Ready" node_ready "$node_name" || { tail -30 "$dir/kubelet.log" >&2; return 1; }
  node_kube_proxy
  node_coredns
  node_storage
}

# Stops the pods' containers (by their PIDs, through containerd), then kubelet,
# kube-proxy, CoreDNS and containerd, then removes the mounts, network namespaces,
# rules and the bridge the node made, and puts back the sysctls kubelet changed.
node_down() {
  local - # what fails here is left behind, not a reason to stop cleaning up
  set +e
  stop_pid kubelet
  if ctr --address "$node_sock" version >/dev/null 2>&1; then
    local id
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
    for id in $(ctr_ tasks ls -q 2>/dev/null); do
      wait_for 15 "task $id to stop" bash -c "! ctr --address '$node_sock' -n k8s.io tasks ls | grep -q '^$id .*RUNNING'"
      ctr_ tasks delete -f "$id" >/dev/null 2>&1
    done
  fi
  stop_pid kube-proxy
  node_kube_rules_down
  stop_pid coredns
  stop_pid containerd
  local m
  findmnt -rn -o TARGET | grep -E "^($dir/node|$node_run)/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$ns" 2>/dev/null; done
  node_rules_down 2>/dev/null
  ip link delete "$node_bridge" 2>/dev/null
  if [ -s "$dir/node/sysctls.saved" ]; then
    local i=0 v
    while read -r v; do sysctl -qw "${node_sysctls[$i]}=$v" 2>/dev/null; i=$((i + 1)); done <"$dir/node/sysctls.saved"
    rm -f "$dir/node/sysctls.saved"
  fi
  rm -rf "$node_run"
}
