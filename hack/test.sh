#!/usr/bin/env bash
# Runs every test once (benchmarks excluded: they are measured by `make bench`; the
# tests that run monerod once more per monerod release, see below) and
# ends with one line totalling all test binaries, so a reader of CI output sees the
# whole count at the end.
set -uo pipefail
log=$(mktemp)
status=0
${CARGO:-cargo} test --workspace --doc 2>&1 | tee -a "$log" || status=1
${CARGO:-cargo} test --workspace --lib --bins --tests --examples 2>&1 | tee -a "$log" || status=1
# The monerod version matrix: the tests that run monerod and monero-wallet-rpc for real
# (the RPC client, the exporter, the rendered command lines and config files on loopback
# and in network namespaces, one pod's tor, i2pd and monerod) again with each release
# hack/monerod-versions.sh unpacks from Debian: 0.17.2 (the proposal's image), 0.18.4
# (what images/monerod ships) and 0.18.5 (the newest). The run above used bookworm's
# 0.18.0. MONEROD_MATRIX=0 leaves it out.
if [ "${MONEROD_MATRIX:-1}" != 0 ]; then
  releases=$(bash hack/monerod-versions.sh dirs)
  fetched=$?
  if [ "$fetched" -eq 4 ]; then
    echo "SKIPPED the monerod version matrix: Debian's mirror cannot be reached (hack/monerod-versions.sh)"
  elif [ "$fetched" -ne 0 ]; then
    echo "the monerod version matrix: hack/monerod-versions.sh failed" >&2
    status=1
  else
    while read -r version dir; do
      echo "== monerod $version ($dir)"
      # --workspace, as the run above: the same features, so nothing is built again.
      PATH="$dir:$PATH" MONEROD_EXPECT_VERSION=$version ${CARGO:-cargo} test --workspace \
        --test live --test pod --test loopback --test releases --test partition 2>&1 | tee -a "$log" || status=1
    done <<<"$releases"
  fi
fi
# Scripts whose checks join the total through their closing line:
#   hack/observability-test.sh  the dashboard, docs/metrics.md and the alerts' metrics
#                               against a real Prometheus scraping real exporters
#   hack/pods.sh                builds the images and runs the rendered pods in Docker
#                               (counted as skipped, and said so, with no Docker engine)
#   hack/cluster-test.sh        the operator against a real control plane on loopback,
#                               built from Kubernetes' Go modules (skipped, and said so,
#                               with no Go toolchain or module proxy)
#   hack/e2e-local.sh           e2e/run.sh against a real node on this machine: kubelet,
#                               containerd, kube-proxy, CoreDNS (`make e2e-local`;
#                               skipped, and said why, where the node cannot start)
#   e2e/run.sh                  instead of the above with E2E=1: against the cluster in
#                               KUBECONFIG, where it deploys the operator (`make e2e`)
# PODS=0 leaves the images and pod tests out (they are `make pods` on their own);
# CLUSTER=0 leaves the cluster tier out (`make test-cluster`); NODE=0 leaves
# e2e-local out.
counts=$(mktemp -d)
trap 'rm -rf "$log" "$counts"' EXIT
run_counted() { # run_counted NAME SCRIPT: runs it, keeps its closing "NAME: ..." line
  local name=$1 script=$2
  echo "== $script"
  bash "$script" 2>&1 | tee "$counts/$name.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  grep -E "^$name: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped\$" "$counts/$name.log" | tail -1 >"$counts/$name"
  if [ ! -s "$counts/$name" ]; then
    echo "$script ended without its closing count line" >&2
    echo "$name: 0 passed, 1 failed, 0 skipped" >"$counts/$name"
    status=1
  fi
}
run_counted observability hack/observability-test.sh
if [ "${PODS:-1}" != 0 ]; then
  run_counted pods hack/pods.sh
fi
if [ "${CLUSTER:-1}" != 0 ]; then
  run_counted cluster hack/cluster-test.sh
fi
if [ "${E2E:-0}" = 1 ]; then
  run_counted e2e e2e/run.sh
elif [ "${NODE:-1}" != 0 ]; then
  run_counted e2e hack/e2e-local.sh
else
  echo "e2e/run.sh not run (NODE=0): make e2e-local, or E2E=1 for the cluster in KUBECONFIG"
fi
# `make test` runs hack/validate.sh first and names its count file in VALIDATE_SUMMARY
# ("validate: N passed, N failed, N skipped"); its checks join the total.
extra=("$counts"/observability)
for f in pods cluster e2e; do [ -f "$counts/$f" ] && extra+=("$counts/$f"); done
if [ -n "${VALIDATE_SUMMARY:-}" ] && [ -f "$VALIDATE_SUMMARY" ]; then
  echo "hack/validate.sh, counted below: $(cat "$VALIDATE_SUMMARY")"
  extra+=("$VALIDATE_SUMMARY")
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1); if ($(i) ~ /^ignored/) s += $(i-1) } }
     FILENAME != ARGV[1] && /^[a-z0-9]+: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ { p += $2; f += $4; s += $6 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log" "${extra[@]}"
exit $status
