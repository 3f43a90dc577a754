#!/usr/bin/env bash
# Prints config/prometheus/prometheusrule.yaml: the Prometheus Operator's
# PrometheusRule carrying config/prometheus/rules.yaml's groups unchanged, so
# plain Prometheus (rule_files) and the Prometheus Operator get the same alerts.
# `make prometheus-rules` writes it; hack/validate.sh fails when it is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'HEAD'
# Generated from rules.yaml by hack/prometheusrule.sh (`make prometheus-rules`); edit rules.yaml.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: monero
  labels:
    app.kubernetes.io/name: monero-operator
    app.kubernetes.io/component: alerts
spec:
HEAD
# rules.yaml without its leading comment, indented under spec.
awk 'started || !/^#/ { started = 1; print "  " $0 }' config/prometheus/rules.yaml
