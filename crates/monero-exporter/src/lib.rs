//! A Prometheus exporter for monerod, usable standalone against any daemon or as the
//! sidecar the operator puts next to each monerod.
//!
//! Collection happens at scrape time: each `/metrics` request calls monerod
//! concurrently under one deadline, so a scrape costs about the slowest call, not their
//! sum, and no value is older than the scrape. `monero_up` is always present and the
//! endpoint answers 200 even when monerod is down, so Prometheus keeps a series to alert
//! on. A restricted RPC port is detected and what it does not serve is skipped, not
//! counted as an error, and its placeholder values are never published.

pub mod collect;
pub mod lab;
mod render;
pub mod wallets;
pub mod xmrig;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monero_rpc::DaemonClient;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

use crate::collect::{Outcome, Snapshot, collect};

/// How the exporter behaves, beyond which daemon it talks to.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deadline for all of one scrape's calls to monerod together.
    pub timeout: Duration,
    /// `/ready` answers 200 for a node that answers but is not synchronized yet.
    pub ready_allow_unsynced: bool,
    /// More metrics served with every scrape (lab mode's).
    pub extra: Option<Registry>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(5),
            ready_allow_unsynced: false,
            extra: None,
        }
    }
}

/// Errors the exporter's library side can return while setting up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot register the exporter's own metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The exporter: one monerod client and the exporter's own counters.
#[derive(Debug, Clone)]
pub struct Exporter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: DaemonClient,
    options: Options,
    /// Whether the last successful `get_info` came from a restricted port.
    restricted: AtomicBool,
    own: Registry,
    collector_errors: IntCounterVec,
    scrapes: IntCounterVec,
}

impl Exporter {
    pub fn new(client: DaemonClient, options: Options) -> Result<Self, Error> {
        let own = Registry::new();
        let collector_errors = IntCounterVec::new(
            Opts::new(
                "monero_exporter_collector_errors_total",
                "Failed monerod calls, per collector, since the exporter started.",
            ),
            &["collector"],
        )?;
        let scrapes = IntCounterVec::new(
            Opts::new(
                "monero_exporter_scrapes_total",
                "Scrapes served, by whether monerod answered get_info.",
            ),
            &["monerod_up"],
        )?;
        // Every series from zero, not from its first event: increase() and rate()
        // cannot see the step from "absent" to 1.
        for name in collect::COLLECTORS {
            collector_errors.with_label_values(&[name]);
        }
        for up in ["0", "1"] {
            scrapes.with_label_values(&[up]);
        }
        own.register(Box::new(collector_errors.clone()))?;
        own.register(Box::new(scrapes.clone()))?;
        Ok(Exporter {
            inner: Arc::new(Inner {
                client,
                options,
                restricted: AtomicBool::new(false),
                own,
                collector_errors,
                scrapes,
            }),
        })
    }

    pub fn client(&self) -> &DaemonClient {
        &self.inner.client
    }

    /// Collects one snapshot and updates the exporter's own state from it.
    pub async fn scrape(&self) -> Snapshot {
        let inner = &self.inner;
        let snapshot = collect(
            &inner.client,
            inner.options.timeout,
            inner.restricted.load(Ordering::Relaxed),
        )
        .await;
        if let Some(r) = snapshot.restricted() {
            inner.restricted.store(r, Ordering::Relaxed);
        }
        for (name, outcome, _) in snapshot.collectors() {
            if let Outcome::Failed(message) = outcome {
                inner.collector_errors.with_label_values(&[name]).inc();
                tracing::debug!(collector = name, error = %message, "monerod call failed");
            }
        }
        let up = if snapshot.info.outcome.ok().is_some() {
            "1"
        } else {
            "0"
        };
        inner.scrapes.with_label_values(&[up]).inc();
        snapshot
    }

    /// One scrape rendered in the Prometheus text format.
    pub async fn metrics_text(&self) -> String {
        let snapshot = self.scrape().await;
        self.render(&snapshot)
    }

    /// Renders a snapshot plus the exporter's own metrics.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut families = render::Families::default();
        render::render(snapshot, &mut families);
        families.gauge(
            "monero_exporter_scrape_duration_seconds",
            "Time this scrape took to collect from monerod.",
            &[],
            snapshot.duration.as_secs_f64(),
        );
        for (name, outcome, duration) in snapshot.collectors() {
            let success = match outcome {
                Outcome::Ok(()) => 1.0,
                Outcome::Failed(_) => 0.0,
                Outcome::Skipped => continue,
            };
            families.gauge(
                "monero_exporter_collector_success",
                "1 if the collector's monerod call succeeded in this scrape; absent when skipped on a restricted port.",
                &[("collector", name)],
                success,
            );
            families.gauge(
                "monero_exporter_collector_duration_seconds",
                "Time the collector's monerod call took in this scrape.",
                &[("collector", name)],
                duration.as_secs_f64(),
            );
        }
        build_info(&mut families);
        let mut all = families.into_vec();
        all.extend(self.inner.own.gather());
        if let Some(extra) = &self.inner.options.extra {
            all.extend(extra.gather());
        }
        encode(&all)
    }

    /// Whether a readiness probe should pass: monerod answers and, unless relaxed, is
    /// synchronized. The `Err` text says why not.
    pub async fn ready(&self) -> Result<(), String> {
        let info = tokio::time::timeout(self.inner.options.timeout, self.inner.client.get_info())
            .await
            .map_err(|_| "monerod did not answer get_info in time".to_owned())?
            .map_err(|e| e.to_string())?;
        if info.synchronized || self.inner.options.ready_allow_unsynced {
            Ok(())
        } else {
            Err(format!(
                "monerod is not synchronized yet: height {} of {}",
                info.height, info.target_height
            ))
        }
    }

    /// The HTTP routes: `/metrics`, `/healthz`, `/ready` and an index page.
    pub fn router(self) -> Router {
        routes(self)
    }
}

impl Target for Exporter {
    fn metrics_text(&self) -> impl Future<Output = String> + Send {
        Exporter::metrics_text(self)
    }
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send {
        Exporter::ready(self)
    }
    fn describe(&self) -> (String, &'static str) {
        (
            format!("monerod at {}", self.client().address()),
            "monerod answers and is synchronized",
        )
    }
}

/// One thing the exporter stands in front of (monerod or xmrig): both are
/// served by the same routes.
pub(crate) trait Target: Clone + Send + Sync + 'static {
    /// One scrape, in the Prometheus text format.
    fn metrics_text(&self) -> impl Future<Output = String> + Send;
    /// Whether a readiness probe should pass; the `Err` says why not.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// For the index page: what is exported, and what `/ready` means.
    fn describe(&self) -> (String, &'static str);
}

/// `/metrics`, `/healthz`, `/ready` and an index page for `target`.
pub(crate) fn routes<T: Target>(target: T) -> Router {
    Router::new()
        .route("/metrics", get(metrics::<T>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/ready", get(ready::<T>))
        .route("/", get(index::<T>))
        .with_state(target)
}

async fn metrics<T: Target>(State(target): State<T>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        target.metrics_text().await,
    )
        .into_response()
}

/// `/ready`: 200, or 503 with the reason, which `kubectl describe pod` shows.
async fn ready<T: Target>(State(target): State<T>) -> Response {
    match target.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn index<T: Target>(State(target): State<T>) -> String {
    let (what, ready) = target.describe();
    format!(
        "monero-exporter {} for {what}\n/metrics  Prometheus metrics\n/healthz  the exporter lives\n/ready    {ready}\n",
        env!("CARGO_PKG_VERSION"),
    )
}

/// The exporter's own version, in every exposition whatever the target.
pub(crate) fn build_info(families: &mut render::Families) {
    families.gauge(
        "monero_exporter_build_info",
        "Always 1; the label carries the exporter's version.",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
}

/// Families in the Prometheus text format.
pub(crate) fn encode(families: &[prometheus::proto::MetricFamily]) -> String {
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = TextEncoder::new().encode(families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}
