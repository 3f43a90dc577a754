#!/usr/bin/env bash
# Builds a monerod image for each Debian suite named, from the packages
# hack/monerod-versions.sh unpacked (.cache/monerod/SUITE/root): scratch plus
# Debian's monero and the libraries it loads, as unpacked, with the usrmerge links
# base-files would make; uid 1000, monerod as the entrypoint, like images/monerod.
# Tagged $REGISTRY/monerod:v<release> (its tag names its release, which is how the
# operator learns it). Prints one image name per line. For the tests that run the
# pods on other monerod releases than the one images/monerod ships (the pod tests'
# and the node tier's version steps).
#
#   hack/monerod-images.sh sid [bullseye ...]
#   REGISTRY   default ghcr.io/monero-operator
# Needs a Docker engine; exits 4 when Debian's mirror cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY=${REGISTRY:-ghcr.io/monero-operator}
[ $# -gt 0 ] || { echo "usage: hack/monerod-images.sh SUITE..." >&2; exit 2; }

dirs=$(MONEROD_SUITES="$*" bash hack/monerod-versions.sh dirs)
while read -r version dir; do
  image="$REGISTRY/monerod:v$version"
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    continue
  fi
  ctx=$(mktemp -d)
  cp -a "$(dirname "$dir")/root" "$ctx/root"
  for d in lib lib64 bin sbin; do [ -e "$ctx/root/$d" ] || ln -s "usr/$d" "$ctx/root/$d"; done
  mkdir -p "$ctx/root/tmp" && chmod 1777 "$ctx/root/tmp"
  printf 'FROM scratch\nCOPY root/ /\nUSER 1000:1000\nENTRYPOINT ["/usr/bin/monerod"]\n' >"$ctx/Dockerfile"
  if ! docker build -q -t "$image" "$ctx" >"$ctx.log" 2>&1; then
    tail -20 "$ctx.log" >&2
    rm -rf "$ctx" "$ctx.log"
    echo "monerod-images: building $image failed" >&2
    exit 1
  fi
  rm -rf "$ctx" "$ctx.log"
  echo "$image"
done <<<"$dirs"
