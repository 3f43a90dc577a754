//! The operator's own metrics: reconciles by kind and result, their
//! durations, and errors by kind of failure.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use monero_crd::{MoneroMiningNodeSet, MoneroNetwork, MoneroNodeSet};

use super::Managed;
use crate::error::Error;

/// Reconcile metrics, registered in one registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    stalled_restarts: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics in a fresh registry.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "monero_operator_reconciles_total",
                "Reconciles, by kind and result (ok or error).",
            ),
            &["kind", "result"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "monero_operator_reconcile_errors_total",
                "Failed reconciles, by kind and reason.",
            ),
            &["kind", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "monero_operator_reconcile_duration_seconds",
                "Time one reconcile took, by kind.",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["kind"],
        )?;
        let stalled_restarts = IntCounterVec::new(
            Opts::new(
                "monero_operator_stalled_restarts_total",
                "Replicas restarted because their height stopped while the set's went on, by kind.",
            ),
            &["kind"],
        )?;
        // Every kind's counts from zero, so the first reconcile (or error) is an
        // increase Prometheus can see, and /metrics is not empty before it.
        for kind in [
            <MoneroNodeSet as Managed>::KIND,
            <MoneroNetwork as Managed>::KIND,
            <MoneroMiningNodeSet as Managed>::KIND,
        ] {
            for result in ["ok", "error"] {
                reconciles.with_label_values(&[kind, result]);
            }
        }
        for kind in [
            <MoneroNodeSet as Managed>::KIND,
            <MoneroNetwork as Managed>::KIND,
        ] {
            stalled_restarts.with_label_values(&[kind]);
        }
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(stalled_restarts.clone()))?;
        Ok(Metrics {
            registry,
            reconciles,
            errors,
            duration,
            stalled_restarts,
        })
    }

    /// Counts one stalled replica restarted.
    pub fn stalled_restart(&self, kind: &str) {
        self.stalled_restarts.with_label_values(&[kind]).inc();
    }

    /// Records one reconcile.
    pub fn observe(&self, kind: &str, took: Duration, error: Option<&Error>) {
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciles.with_label_values(&[kind, result]).inc();
        if let Some(e) = error {
            self.errors
                .with_label_values(&[kind, e.metric_label()])
                .inc();
        }
        self.duration
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }

    /// The registry, for the /metrics endpoint.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
