# The two commands a newcomer needs, on a fresh Debian machine as root:
#   make demo   a 3-node regtest network on loopback, mined, scraped by the exporter
#   make test   every test: format, lints, unit tests, tests against real monerod
# Both install what they need (hack/deps.sh) when it is missing.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build test fmt fmt-check lint unit demo bench clean

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

test: deps fmt-check lint unit

demo: deps
	$(CARGO) build -p monero-exporter
	bash hack/demo.sh

# Benchmarks (not timed tests): see crates/monero-rpc/README.md and
# crates/monero-exporter/README.md for what they report and the last results.
bench: deps
	$(CARGO) build --release -p monero-exporter --bins
	$(CARGO) bench -p monero-rpc --bench rpc_overhead
	$(CARGO) bench -p monero-exporter --bench scrape

clean:
	$(CARGO) clean
