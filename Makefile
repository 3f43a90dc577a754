# The two commands a newcomer needs, on a fresh Debian machine as root:
#   make demo   a 3-node regtest network on loopback, mined, scraped by the exporter
#   make test   every test: format, lints, unit tests, tests against real monerod
# Both install what they need (hack/deps.sh) when it is missing.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build test fmt fmt-check lint unit validate crds prometheus-rules deploy undeploy demo bench clean

all: build

deps:
	@bash hack/deps.sh

build:
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Tests that start monerod, monero-wallet-rpc and the exporter run in the same
# `cargo test`; they bind 127.0.0.1 only and stop every process they start.
unit: deps
	CARGO=$(CARGO) bash hack/test.sh

# Offline checks of everything sent to an API server: rendered samples and
# `kubectl kustomize config/default` against the Kubernetes OpenAPI schemas (oldest
# supported and newest known version), samples against the CRDs, CRD YAML up to date.
# Installs its own Python venv (.venv) with kubernetes-validate.
validate:
	CARGO=$(CARGO) bash hack/validate.sh

# Under `make test`, validate leaves its count here and hack/test.sh adds it to the total;
# when it must build the operator it builds what `cargo test` builds next (same
# features), so nothing is compiled twice.
test: export VALIDATE_SUMMARY := $(CURDIR)/target/validate-summary.txt
test: export VALIDATE_CARGO_BUILD_ARGS := --workspace --lib --bins --tests --examples
test: deps fmt-check lint validate unit

# Regenerates the CRDs from the Rust types (commit the result).
crds:
	$(CARGO) run -q -p monero-operator -- crd > config/crd/monero-operator.crds.yaml.tmp || { rm -f config/crd/monero-operator.crds.yaml.tmp; exit 1; }
	mv config/crd/monero-operator.crds.yaml.tmp config/crd/monero-operator.crds.yaml

# Regenerates the PrometheusRule from config/prometheus/rules.yaml (commit the result).
prometheus-rules:
	bash hack/prometheusrule.sh > config/prometheus/prometheusrule.yaml

# Installs or removes the CRDs, RBAC and the operator in the current kubectl context.
deploy:
	kubectl apply -k config/default

undeploy:
	kubectl delete -k config/default --ignore-not-found

demo: deps
	$(CARGO) build -p monero-exporter
	bash hack/demo.sh

# Benchmarks (not timed tests): see crates/monero-rpc/README.md,
# crates/monero-exporter/README.md and crates/monero-reconciler/README.md for what
# they report and the last results. The last step builds the release operator and
# runs it against a stand-in API server on loopback (needs python3).
bench: deps
	$(CARGO) build --release -p monero-exporter --bins
	$(CARGO) bench -p monero-rpc --bench rpc_overhead
	$(CARGO) bench -p monero-exporter --bench scrape
	$(CARGO) bench -p monero-reconciler --bench operator
	CARGO=$(CARGO) bash hack/bench-operator-idle.sh

clean:
	$(CARGO) clean
