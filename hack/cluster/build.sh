#!/usr/bin/env bash
# Builds the Kubernetes components the cluster and node tiers run, from the Go modules
# pinned in hack/cluster/go.mod (Kubernetes and etcd), hack/cluster/kwok/go.mod (kwok)
# and hack/cluster/coredns/ (CoreDNS with a few plugins), into
# .cache/cluster/bin/<key>/, where <key> is a hash of the pins and the Go version: a
# changed pin builds a new folder, an unchanged one builds nothing. Go's own build
# cache (GOCACHE) makes a rebuild after a small pin change cheap.
#
# Prints the folder on stdout (everything else goes to stderr). Exits 3 when no Go
# toolchain is there, 4 when the module proxy cannot be reached, so callers can skip
# with the reason.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

command -v go >/dev/null 2>&1 || { echo "no Go toolchain (go not on PATH)" >&2; exit 3; }
key=$( { go version; cat "$here/go.mod" "$here/go.sum" "$here"/kwok/go.* "$here"/coredns/go.* "$here/coredns/main.go"; } | sha256sum | cut -c1-16)
k8s=$(sed -n 's/^\tk8s.io\/kubernetes \(v[^ ]*\).*/\1/p' "$here/go.mod")
bin="$root/.cache/cluster/bin/$k8s-$key"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kubelet kube-proxy coredns)
# kwok-stages.yaml is written last, so its presence means a complete folder.
missing=0
for t in "${tools[@]}"; do [ -x "$bin/$t" ] || missing=1; done
[ -s "$bin/kwok-stages.yaml" ] || missing=1
if [ "$missing" = 0 ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin.tmp"
# One package at a time: these machines have 2 cores, and one link of kube-apiserver
# takes most of the memory a parallel build would share.
build() { # build DIR OUT PACKAGE
  local dir=$1 out=$2 pkg=$3
  [ -x "$bin.tmp/$out" ] && return 0
  echo "building $out ($pkg)" >&2
  local log
  log=$(mktemp)
  if ! (cd "$dir" && go build -trimpath -ldflags="-s -w $version_flags" -o "$bin.tmp/$out" "$pkg") >"$log" 2>&1; then
    cat "$log" >&2
    if grep -qE 'dial tcp|proxy.golang.org|no such host|i/o timeout|connection refused' "$log"; then
      rm -f "$log"
      exit 4
    fi
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}
# Kubernetes' release builds stamp the version; without it the components report
# v0.0.0-master and kubectl warns of a version skew that is not there.
major=${k8s#v}; major=${major%%.*}
minor=${k8s#v*.}; minor=${minor%%.*}
version_flags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $p.gitVersion=$k8s -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
start=$SECONDS
build "$here" etcd go.etcd.io/etcd/server/v3
build "$here" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build "$here" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build "$here" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build "$here" kubectl k8s.io/kubernetes/cmd/kubectl
build "$here/kwok" kwok sigs.k8s.io/kwok/cmd/kwok
build "$here" kubelet k8s.io/kubernetes/cmd/kubelet
build "$here" kube-proxy k8s.io/kubernetes/cmd/kube-proxy
build "$here/coredns" coredns .
# kwok needs its stages (how fake nodes and pods move through their lifecycle) in a
# config file; they are the ones kwokctl uses, from the pinned kwok module.
kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  echo "---"
  cat "$kwok_dir/kustomize/stage/$f"
done >"$bin.tmp/kwok-stages.yaml"
rm -rf "$bin"
mv "$bin.tmp" "$bin"
echo "built ${tools[*]} in $((SECONDS - start))s into $bin" >&2
echo "$bin"
