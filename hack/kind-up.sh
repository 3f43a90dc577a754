#!/usr/bin/env bash
# A kind cluster for `make e2e`, with this tree's images loaded (no registry needed):
#   make kind && make e2e
# Needs kind (https://kind.sigs.k8s.io), kubectl and a Docker engine. kind's node image
# comes from a registry, so this cannot run on a machine with none (such as the
# project's CI); everything the e2e run needs after that is loaded from here.
#
#   KIND_CLUSTER  cluster name (default monero-operator)
#   REGISTRY, TAG as for make images
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${KIND_CLUSTER:-monero-operator}
REGISTRY=${REGISTRY:-ghcr.io/monero-operator}
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}

for tool in kind kubectl docker; do
  command -v "$tool" >/dev/null 2>&1 || { echo "kind-up: $tool is not installed" >&2; exit 1; }
done
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 120s
fi
REGISTRY=$REGISTRY TAG=$TAG bash hack/images.sh
# e2e/run.sh changes the monerod image to this second tag of the same image, to see a
# rollout keep the chain data.
docker tag "$REGISTRY/monerod:$TAG" "$REGISTRY/monerod:$TAG-e2e"
for name in operator exporter podconfig monerod tor i2pd xmrig; do
  kind load docker-image --name "$CLUSTER" "$REGISTRY/$name:$TAG"
done
kind load docker-image --name "$CLUSTER" "$REGISTRY/monerod:$TAG-e2e"
echo "kind cluster $CLUSTER is ready with the images loaded; kubectl context kind-$CLUSTER."
echo "Run: make e2e"
