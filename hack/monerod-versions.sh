#!/usr/bin/env bash
# Gets the monerod releases the version tests run, from Debian's packages, without
# touching the system: apt with its own lists, cache and an empty dpkg status downloads
# `monero` and every library it needs for a suite, dpkg-deb unpacks them into a folder,
# and a wrapper runs monerod (and monero-wallet-rpc) through that folder's own dynamic
# loader and libraries. Nothing is installed; nothing outside .cache/monerod is written.
#
#   hack/monerod-versions.sh            fetch every suite below (once; cached)
#   hack/monerod-versions.sh dirs       print the wrapper directory of each release
#                                       (one per line: VERSION DIR), fetching first
#
# The suites and what they carry (read from their packages, 2026-12):
#   bullseye  0.17.2.0   the proposal's example image (utxobr/monerod:v0.17.2.0)
#   trixie    0.18.4.0   what images/monerod ships
#   sid       0.18.5.x   the newest
# bookworm's 0.18.0.0 (with the CVE-2025-26819 connection limits backported) is the
# one hack/deps.sh installs, on PATH for every other test.
#
#   MONEROD_SUITES   suites to fetch (default: bullseye trixie sid)
#   DEBIAN_MIRROR    default http://deb.debian.org/debian
# Exits 4 (and says why) when the mirror cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."

suites=${MONEROD_SUITES:-bullseye trixie sid}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=$PWD/.cache/monerod

fetch() { # fetch SUITE: unpacks monero of SUITE into $cache/SUITE/root, once
  local suite=$1 dir=$cache/$1
  [ -x "$dir/bin/monerod" ] && return 0
  rm -rf "$dir"
  mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/root" "$dir/bin"
  echo "deb $mirror $suite main" >"$dir/apt/sources.list"
  : >"$dir/apt/status"
  local apt=(-q -o "Dir::Etc::SourceList=$dir/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$dir/apt/lists" -o "Dir::Cache=$dir/apt/cache"
    -o "Dir::State::Status=$dir/apt/status" -o APT::Architecture=amd64
    -o Debug::NoLocking=1 -o APT::Install-Recommends=false)
  if ! apt-get "${apt[@]}" update >"$dir/apt.log" 2>&1; then
    tail -5 "$dir/apt.log" >&2
    echo "monerod-versions: cannot read $suite from $mirror" >&2
    rm -rf "$dir"
    exit 4
  fi
  apt-get "${apt[@]}" -y install --download-only monero >>"$dir/apt.log" 2>&1 || {
    tail -5 "$dir/apt.log" >&2
    echo "monerod-versions: cannot download monero of $suite" >&2
    rm -rf "$dir"
    exit 4
  }
  for deb in "$dir"/apt/cache/archives/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
  rm -rf "$dir/apt/cache/archives" "$dir/apt/lists"
  local loader libs
  # The loader under its multiarch name: a regular file or a link relative to its
  # folder (the lib64 one may link to the host's absolute path).
  for loader in lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 ""; do
    [ -e "$dir/root/$loader" ] && break
  done
  [ -n "$loader" ] || { echo "monerod-versions: no dynamic loader in $suite's packages" >&2; exit 1; }
  libs="$dir/root/lib/x86_64-linux-gnu:$dir/root/usr/lib/x86_64-linux-gnu"
  for prog in monerod monero-wallet-rpc; do
    cat >"$dir/bin/$prog" <<EOF
#!/bin/sh
# $prog of Debian $suite's monero, through that suite's own loader and libraries.
exec "$dir/root/$loader" --library-path "$libs" "$dir/root/usr/bin/$prog" "\$@"
EOF
    chmod +x "$dir/bin/$prog"
  done
  "$dir/bin/monerod" --version | sed -n 's/.*(v\([0-9.]*\).*/\1/p' >"$dir/version"
  [ -s "$dir/version" ] || { echo "monerod-versions: $suite's monerod does not run" >&2; exit 1; }
  echo "monerod $(cat "$dir/version") from Debian $suite: $dir/bin" >&2
}

for s in $suites; do fetch "$s"; done
if [ "${1:-}" = dirs ]; then
  for s in $suites; do echo "$(cat "$cache/$s/version") $cache/$s/bin"; done
fi
