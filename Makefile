# The two commands a newcomer needs, on a fresh Debian machine as root:
#   make demo   a 3-node regtest network on loopback, mined, scraped by the exporter
#   make test   every test: format, lints, unit tests, tests against real monerod
# Both install what they need (hack/deps.sh) when it is missing.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build test fmt fmt-check lint unit validate crds prometheus-rules docs deploy undeploy demo demo-local images push pods e2e e2e-local kind bench clean cluster cluster-node cluster-down test-cluster bench-cluster

# Where `make images` tags (and `make push` pushes) the images; TAG defaults to the
# workspace version, the tag config/manager and the operator's defaults name.
REGISTRY ?= ghcr.io/monero-operator
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE_NAMES := operator exporter podconfig monerod tor i2pd xmrig

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

# Regenerates the API reference pages docs/api/*.md from the CRDs and samples
# (commit the result; `make validate` fails when they are stale). Needs PyYAML, which
# the .venv of `make validate` has; made here when missing.
docs:
	@[ -x .venv/bin/python ] || python3 -m venv .venv
	@.venv/bin/python -c 'import yaml' 2>/dev/null || .venv/bin/python -m pip install -q --disable-pip-version-check pyyaml
	.venv/bin/python hack/crd-docs.py

# Installs or removes the CRDs, RBAC and the operator in the current kubectl context.
deploy:
	kubectl apply -k config/default

undeploy:
	kubectl delete -k config/default --ignore-not-found

# The 3-node regtest MoneroNetwork with Tor from the rendered pods, in Docker
# (hack/demo.py); without a Docker engine, the same network as plain processes on
# loopback (hack/demo-local.sh).
demo: deps
	@if docker info >/dev/null 2>&1; then \
	  REGISTRY=$(REGISTRY) TAG=$(TAG) bash hack/images.sh && bash hack/pods.sh --venv-only && .venv/bin/python hack/demo.py; \
	else \
	  echo "no Docker engine answers: running the loopback demo instead (make demo-local)"; \
	  $(MAKE) demo-local; \
	fi

demo-local: deps
	$(CARGO) build -p monero-exporter
	bash hack/demo-local.sh

# Builds every image (images/*/Dockerfile) as $(REGISTRY)/NAME:$(TAG); see images/README.md.
images:
	REGISTRY=$(REGISTRY) TAG=$(TAG) bash hack/images.sh

push: images
	for n in $(IMAGE_NAMES); do docker push $(REGISTRY)/$$n:$(TAG) || exit 1; done

# The rendered pods run in Docker from those images (also part of `make test`).
pods: deps
	REGISTRY=$(REGISTRY) TAG=$(TAG) bash hack/pods.sh

# A real control plane on loopback (etcd, kube-apiserver, controller-manager, scheduler,
# kwok), built from the Go modules pinned in hack/cluster/ (first build: about 15 min on
# 2 cores; cached under .cache/cluster/). `make cluster` leaves it up; its kubeconfig is
# .cache/cluster/admin.kubeconfig (`eval $$(hack/cluster.sh env)`).
cluster:
	bash hack/cluster.sh up

# The same control plane with a real node instead of kwok (containerd, kubelet,
# kube-proxy, CoreDNS, a pod bridge with no way off the machine, local volumes); needs
# root. Pods run the images `make images` built once `hack/cluster.sh load` copies them in.
cluster-node:
	bash hack/cluster.sh up --node

cluster-down:
	bash hack/cluster.sh down

# The cluster tier: the operator with only its ServiceAccount's rights against that
# control plane (also part of `make test`).
test-cluster: deps
	CARGO=$(CARGO) bash hack/cluster-test.sh

# End-to-end tests against the cluster KUBECONFIG points at; skip without one.
e2e:
	bash e2e/run.sh

# The same end-to-end tests against a real node on this machine: builds the images,
# starts `hack/cluster.sh up --node`, loads the images, runs e2e/run.sh with every step,
# stops everything (also part of `make test`).
e2e-local: deps
	REGISTRY=$(REGISTRY) TAG=$(TAG) bash hack/e2e-local.sh

# A kind cluster with the images loaded, for `make e2e` (needs kind and a registry).
kind:
	bash hack/kind-up.sh

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

# 1,000 MoneroNodeSets at once on the real control plane (hack/bench_cluster.py):
# time to every StatefulSet and status, API requests per no-op reconcile from the API
# server's audit log, the operator's memory. About 10 minutes; not part of `make bench`.
bench-cluster: deps
	CARGO=$(CARGO) bash hack/bench-cluster.sh

clean:
	$(CARGO) clean
