#!/usr/bin/env bash
# Runs every test once (benchmarks excluded: they are measured by `make bench`) and
# ends with one line totalling all test binaries, so a reader of CI output sees the
# whole count at the end.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
${CARGO:-cargo} test --workspace --doc 2>&1 | tee -a "$log" || status=1
${CARGO:-cargo} test --workspace --lib --bins --tests --examples 2>&1 | tee -a "$log" || status=1
# `make test` runs hack/validate.sh first and names its count file in VALIDATE_SUMMARY
# ("validate: N passed, N failed, N skipped"); its checks join the total.
extra=()
if [ -n "${VALIDATE_SUMMARY:-}" ] && [ -f "$VALIDATE_SUMMARY" ]; then
  echo "hack/validate.sh, counted below: $(cat "$VALIDATE_SUMMARY")"
  extra=("$VALIDATE_SUMMARY")
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1); if ($(i) ~ /^ignored/) s += $(i-1) } }
     FILENAME != ARGV[1] && /^validate: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ { p += $2; f += $4; s += $6 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log" "${extra[@]}"
exit $status
