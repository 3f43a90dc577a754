#!/usr/bin/env bash
# Makes the base image the Dockerfiles in images/ start from, when the Docker engine
# does not have it and no registry can be reached: Debian trixie, minbase variant, by
# debootstrap from Debian's package mirror, trimmed like the official slim image and
# imported with `docker import` under the name the Dockerfiles use. Where a registry
# is reachable the real debian:trixie-slim does the same job and this is not needed.
#
#   BASE_IMAGE   tag to create (default debian:trixie-slim)
#   BASE_SUITE   Debian suite (default trixie)
#   BASE_MIRROR  mirror (default http://deb.debian.org/debian)
#   MONERO_OPERATOR_CACHE  where the root filesystem tarball is kept between runs
#                (default ~/.cache/monero-operator), so a machine whose engine lost
#                its images imports it again in seconds instead of re-bootstrapping.
#
# Does nothing when the image exists. Needs root (debootstrap), installs debootstrap
# when missing.
set -euo pipefail

image=${BASE_IMAGE:-debian:trixie-slim}
suite=${BASE_SUITE:-trixie}
mirror=${BASE_MIRROR:-http://deb.debian.org/debian}
cache=${MONERO_OPERATOR_CACHE:-$HOME/.cache/monero-operator}
tarball=$cache/debian-$suite-slim.tar

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image: present"
  exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "installing: debootstrap" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  root=$(mktemp -d /tmp/base-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap --variant=minbase $suite from $mirror (about a minute)"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
  }
  rm -f "$root.log"
  # What the official slim image leaves out, so later package installs stay small too.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
CFG
  echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/{man,info,locale}/* "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
docker import --change 'CMD ["bash"]' "$tarball" "$image" >/dev/null
echo "base image $image: imported from $tarball ($(du -h "$tarball" | cut -f1))"
