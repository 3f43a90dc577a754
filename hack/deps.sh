#!/usr/bin/env bash
# Installs what `make test` and `make demo` need and are missing: monerod and
# monero-wallet-rpc (Debian `monero`), promtool (Debian `prometheus`), tor, i2pd, curl,
# openssl (the cluster tier's certificates), containerd, runc and the CNI plugins (the
# node tier's container runtime and pod network), and a Docker engine: when no engine
# answers, Debian's `docker.io` is installed if missing and `dockerd` is started
# (hack/dockerd.sh). Idempotent; does nothing when everything is present.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need=()
command -v monerod >/dev/null 2>&1 || need+=(monero)
command -v monero-wallet-rpc >/dev/null 2>&1 || need+=(monero)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v tor >/dev/null 2>&1 || need+=(tor)
command -v i2pd >/dev/null 2>&1 || need+=(i2pd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
fi

if [ ${#need[@]} -eq 0 ]; then
  bash "$here/dockerd.sh" start
  exit 0
fi
# De-duplicate.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "installing: ${need[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# tor and i2pd would join their networks if their packages started them: forbid any
# service start for the length of the install (Debian's policy-rc.d convention).
created_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
trap 'if [ -n "$created_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi' EXIT
# --no-install-recommends keeps the prometheus server's extras out; only promtool is used.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian may start services on install where an init system runs; none of them may
# reach the network from a test machine.
for svc in prometheus prometheus-node-exporter monerod tor i2pd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done
bash "$here/dockerd.sh" start
