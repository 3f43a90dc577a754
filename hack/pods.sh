#!/usr/bin/env bash
# The pod-faithful tests (hack/pods_test.py): builds the images (hack/images.sh, which
# makes the Debian base image when no registry can be reached), then runs the pods that
# `monero-operator render` prints with hack/podrun.py on internal Docker networks.
#
# With no Docker engine answering, says so plainly and counts the tests as skipped.
# Ends with "pods: N passed, N failed, N skipped"; with PODS_SUMMARY=FILE that line is
# also written to FILE (hack/test.sh adds it to the whole run's total).
set -uo pipefail
cd "$(dirname "$0")/.."

summary() {
  echo "$1"
  if [ -n "${PODS_SUMMARY:-}" ]; then echo "$1" >"$PODS_SUMMARY"; fi
}
# The tests' Python (PyYAML) in .venv, made when missing; --venv-only stops there.
PY=.venv/bin/python
if ! "$PY" -c 'import yaml' >/dev/null 2>&1; then
  [ -x "$PY" ] || python3 -m venv .venv
  "$PY" -m pip install -q --disable-pip-version-check pyyaml
fi
[ "${1:-}" = --venv-only ] && exit 0
tests=$(grep -c '^    def test_' hack/pods_test.py)
# ... and NodeSetWithTorAndI2p's again for each other release (below).
anon_tests=$(awk '/^class /{in_class = ($2 ~ /^NodeSetWithTorAndI2p/)} in_class && /^    def test_/{n++} END {print n + 0}' hack/pods_test.py)
[ "${PODS_RELEASES:-1}" = 0 ] || tests=$((tests + 2 * anon_tests))
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "SKIPPED the pod tests: no Docker engine answers (docker info failed); they need one to run the images"
  summary "pods: 0 passed, 0 failed, $tests skipped"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED the pod tests: they need root (podrun sets the pods' volume ownership and routes)"
  summary "pods: 0 passed, 0 failed, $tests skipped"
  exit 0
fi
start=$SECONDS
if ! bash hack/images.sh; then
  summary "pods: 0 passed, $tests failed, 0 skipped"
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$PY" hack/pods_test.py 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The pod with Tor and I2P again on the releases images/monerod does not ship: the
# proposal's 0.17.2 (Debian bullseye) and the newest (sid), from Debian's packages.
# PODS_RELEASES=0 leaves them out.
if [ "${PODS_RELEASES:-1}" != 0 ]; then
  if releases=$(bash hack/monerod-images.sh bullseye sid); then
    for image in $releases; do
      echo "== the pod with Tor and I2P on $image"
      PODS_MONEROD_IMAGE=$image "$PY" hack/pods_test.py NodeSetWithTorAndI2p 2>&1 | tee -a "$log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    done
  else
    echo "the pod tests on other monerod releases: their images could not be made" >&2
    status=1
  fi
fi
line=$(grep -E '^pods: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" |
  awk '{ p += $2; f += $4; s += $6 } END { if (NR) printf "pods: %d passed, %d failed, %d skipped\n", p, f, s }')
[ -n "$line" ] || { line="pods: 0 passed, $tests failed, 0 skipped"; status=1; }
echo "images and pod tests took $((SECONDS - start))s"
summary "$line"
exit "$status"
