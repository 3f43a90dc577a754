#!/usr/bin/env bash
# Builds every image in images/ and tags it REGISTRY/NAME:TAG, the names config/manager
# and the operator's defaults use. Rust binaries are built here by cargo (release) and
# copied in; monerod, tor, i2pd and xmrig come from Debian's packages. When no registry
# can be reached, hack/base-image.sh makes the base image from Debian's mirror first.
#
#   REGISTRY  default ghcr.io/monero-operator
#   TAG       default the workspace version (Cargo.toml)
#   IMAGES    which to build (default: all, in dependency-free order)
#   BASE      base image the Dockerfiles start from (default debian:trixie-slim)
#
# Prints each image's size at the end. Pushing is left to `docker push` (make push).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
REGISTRY=${REGISTRY:-ghcr.io/monero-operator}
TAG=${TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}
IMAGES=${IMAGES:-operator exporter podconfig monerod tor i2pd xmrig}
BASE=${BASE:-debian:trixie-slim}

if ! docker info >/dev/null 2>&1; then
  echo "images: no Docker engine answers (docker info failed)" >&2
  exit 1
fi
BASE_IMAGE=$BASE bash hack/base-image.sh

# The context: rootfs.sh and the release binaries. Only the ones asked for are built.
declare -A bin_of=([operator]=monero-operator [exporter]=monero-exporter [podconfig]=monero-anon)
ctx=target/images/context
rm -rf "$ctx"
mkdir -p "$ctx/bin"
cp images/rootfs.sh "$ctx/"
packages=()
for name in $IMAGES; do
  if [ -n "${bin_of[$name]:-}" ]; then packages+=(-p "${bin_of[$name]}"); fi
done
if [ ${#packages[@]} -gt 0 ]; then
  echo "cargo build --release ${packages[*]} --bins"
  "$CARGO" build -q --release "${packages[@]}" --bins
  for name in $IMAGES; do
    if [ -n "${bin_of[$name]:-}" ]; then cp "target/release/${bin_of[$name]}" "$ctx/bin/"; fi
  done
fi

for name in $IMAGES; do
  [ -f "images/$name/Dockerfile" ] || { echo "images: no images/$name/Dockerfile" >&2; exit 1; }
  echo "docker build $REGISTRY/$name:$TAG"
  log=target/images/build-$name.log
  if ! docker build --build-arg "BASE=$BASE" -t "$REGISTRY/$name:$TAG" -f "images/$name/Dockerfile" "$ctx" >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "images: building $name failed (whole log: $log)" >&2
    exit 1
  fi
done
echo "images built:"
for name in $IMAGES; do
  docker image inspect -f "{{.Size}}" "$REGISTRY/$name:$TAG" |
    awk -v n="$REGISTRY/$name:$TAG" '{ printf "  %-50s %6.1f MB\n", n, $1 / 1e6 }'
done
