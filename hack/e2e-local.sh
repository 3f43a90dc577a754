#!/usr/bin/env bash
# `make e2e-local`: e2e/run.sh against a real node on this machine. Builds the
# Kubernetes components (hack/cluster/build.sh, cached), builds the images (make
# images), starts the control plane with a real node (hack/cluster.sh up --node:
# containerd, kubelet, kube-proxy, CoreDNS, a pod bridge with no way out), copies the
# images into the node's containerd, runs e2e/run.sh with every step the node allows,
# and stops everything.
#
# Ends with e2e/run.sh's "e2e: N passed, N failed, N skipped". Where the node cannot
# start here (no root, no Go toolchain or module proxy, no Docker engine, or a component
# that does not come up), every check is counted as skipped and the reason is said,
# with the failing component's last log lines.
#
#   E2E_LOCAL_KEEP=1  leave the cluster up afterwards (hack/cluster.sh down ends it)
#   REGISTRY, TAG     as for make images
set -uo pipefail
cd "$(dirname "$0")/.."
REGISTRY=${REGISTRY:-ghcr.io/monero-operator}
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}
checks=$(bash e2e/run.sh --count)
skip() {
  echo "SKIPPED e2e-local: $1"
  echo "e2e: 0 passed, 0 failed, $checks skipped"
  exit 0
}
# monerod_images: prints "FROM TO BROKEN", three monerod images for the fleet steps:
# the release images/monerod ships (trixie's 0.18.4.0, tagged as such), the newest
# (sid's, hack/monerod-images.sh) and one that cannot start (monerod refuses a flag).
monerod_images() {
  local from to broken ctx
  from="$REGISTRY/monerod:v0.18.4.0"
  to=$(REGISTRY=$REGISTRY bash hack/monerod-images.sh sid) || return 1
  broken="$REGISTRY/monerod:v0.18.6.0-cannot-start"
  docker tag "$REGISTRY/monerod:$TAG" "$from" || return 1
  ctx=$(mktemp -d)
  printf 'FROM %s\nENTRYPOINT ["/usr/bin/monerod", "--no-such-flag"]\n' "$to" >"$ctx/Dockerfile"
  docker build -q -t "$broken" "$ctx" >/dev/null || { rm -rf "$ctx"; return 1; }
  rm -rf "$ctx"
  echo "$from $to $broken"
}

start=$SECONDS
bin=$(bash hack/cluster/build.sh)
case $? in
  0) ;;
  3) skip "no Go toolchain, so Kubernetes cannot be built from its modules" ;;
  4) skip "the Go module proxy cannot be reached, so Kubernetes cannot be built from its modules" ;;
  *) echo "building the Kubernetes components failed" >&2; echo "e2e: 0 passed, $checks failed, 0 skipped"; exit 1 ;;
esac
why=$(bash hack/cluster.sh preflight --node) || skip "the node cannot start here: $why"

if ! REGISTRY=$REGISTRY TAG=$TAG bash hack/images.sh; then
  echo "make images failed" >&2
  echo "e2e: 0 passed, $checks failed, 0 skipped"
  exit 1
fi
# Step 9 of e2e/run.sh rolls monerod to this second tag of the same image.
docker tag "$REGISTRY/monerod:$TAG" "$REGISTRY/monerod:$TAG-e2e"
images=("$REGISTRY/monerod:$TAG-e2e")
for name in operator exporter podconfig monerod tor i2pd xmrig; do images+=("$REGISTRY/$name:$TAG"); done
# The fleet steps: a public set on the newest monerod, and an upgrade to it.
if upgrade=$(monerod_images); then
  read -r from to broken <<<"$upgrade"
  images+=("$from" "$to" "$broken")
  export E2E_UPGRADE_FROM=$from E2E_UPGRADE_TO=$to E2E_BROKEN_IMAGE=$broken
else
  echo "the fleet steps' monerod images could not be made: they are skipped" >&2
fi
echo "images ready after $((SECONDS - start))s"

stop() {
  if [ "${E2E_LOCAL_KEEP:-0}" != 1 ]; then CLUSTER_BIN=$bin bash hack/cluster.sh down; fi
}
trap stop EXIT
up_log=$(mktemp)
if ! CLUSTER_BIN=$bin bash hack/cluster.sh up --node 2>&1 | tee "$up_log"; then
  reason=$(grep -E 'timed out|cannot|failed|error|Error' "$up_log" | tail -8)
  rm -f "$up_log"
  skip "the node did not start: ${reason:-see above}"
fi
rm -f "$up_log"
echo "cluster with a node up after $((SECONDS - start))s"
CLUSTER_BIN=$bin bash hack/cluster.sh load "${images[@]}" || {
  echo "e2e: 0 passed, $checks failed, 0 skipped"
  exit 1
}
eval "$(CLUSTER_BIN=$bin bash hack/cluster.sh env)"
# The PodMonitor step needs its CRD (the operator only makes PodMonitors where it exists).
kubectl apply -f hack/cluster/podmonitor-crd-stub.yaml >/dev/null
echo "images loaded after $((SECONDS - start))s; running e2e/run.sh"
E2E_ANON=1 E2E_FIXED_CLASS=local-fixed E2E_KUBELET_DIR=$(CLUSTER_BIN=$bin bash hack/cluster.sh kubelet-dir) \
  E2E_PROBE_IMAGE=$(CLUSTER_BIN=$bin bash hack/cluster.sh probe-image) \
  REGISTRY=$REGISTRY TAG=$TAG bash e2e/run.sh
status=$?
echo "e2e-local took $((SECONDS - start))s"
exit $status
