//! `monero-operator run`: the HTTP endpoints, leader election and the controllers.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use monero_reconciler::controller::leader::{LeaseConfig, acquire, hold, release};
use monero_reconciler::controller::metrics::Metrics;
use monero_reconciler::controller::probe::RpcProbe;
use monero_reconciler::controller::{self, Config, State};
use prometheus::{Encoder, TextEncoder};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Election, LogFormat, RunArgs};

/// How long the controllers get to finish after SIGTERM (the Deployment's
/// grace period is 30 s).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// kube's default (30 s) would hold up readiness and every retry for long
/// after an API server has stopped accepting connections.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest silence on a connection before its request fails, so that no API
/// request hangs forever on a hung API server (kube sets none). It must exceed
/// the 295 s after which kube's watcher gives up on a silent watch itself (the
/// server ends a watch after 290 s, plus a 5 s margin): a shorter one would cut
/// healthy, idle watches and turn each into an error and a relist.
const READ_TIMEOUT: Duration = Duration::from_secs(330);

const _: () = assert!(READ_TIMEOUT.as_secs() > 295, "would cut idle watches");

/// kube's default is 295 s; a request body the API server does not take
/// within this is not going to be taken.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one check that the API server answers may take before it is tried again.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A release is a GET and a PUT; within the Deployment's grace period after
/// the controllers' share of it.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for aborted controllers after a lost lease; the step-down
/// must end before the Lease can expire for the other replica.
const STEP_DOWN_GRACE: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Http {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
}

async fn serve_metrics(AxumState(h): AxumState<Http>) -> (StatusCode, String) {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&h.metrics.registry().gather(), &mut buf) {
        Ok(()) => (StatusCode::OK, String::from_utf8_lossy(&buf).into_owned()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn readyz(AxumState(h): AxumState<Http>) -> (StatusCode, &'static str) {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "connecting to the API server\n",
        )
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    // Colour only for a terminal: in a pod, `kubectl logs` and log collectors would get
    // the escape codes as text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Bounds every API request of the operator (watches included), not only the
/// Lease's, whose own deadline is enforced by the election.
fn with_timeouts(mut config: kube::Config) -> kube::Config {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
    // Counts the read timeout from each request, not from when its pooled
    // connection went idle (the tradeoff is only for exec/attach, unused here).
    config.reset_reader_on_write = true;
    config
}

pub async fn run(args: &RunArgs, election: Election) -> Result<()> {
    init_logs(args.log_format);
    let metrics = Metrics::new().context("creating metrics")?;
    let ready = Arc::new(AtomicBool::new(false));
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Http {
            metrics: metrics.clone(),
            ready: ready.clone(),
        });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen {}: cannot bind", args.listen))?;

    // One shutdown signal, seen by the HTTP server, the lease loop and the controllers.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = {
        let rx = stop_rx.clone();
        move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        }
    };
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped())
            .into_future(),
    );

    let kube_config = kube::Config::infer()
        .await
        .context("no Kubernetes configuration (in-cluster or KUBECONFIG)")?;
    let client =
        Client::try_from(with_timeouts(kube_config)).context("creating the Kubernetes client")?;
    // Ready once the API server answers, not merely once a client is configured.
    loop {
        if *stop_rx.borrow() {
            server.await.ok();
            return Ok(());
        }
        let mut rx = stop_rx.clone();
        let answer = tokio::select! {
            r = tokio::time::timeout(VERSION_TIMEOUT, client.apiserver_version()) => r,
            _ = rx.wait_for(|s| *s) => continue,
        };
        match answer {
            Ok(Ok(v)) => {
                tracing::info!(version = %v.git_version, "connected to the API server");
                break;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot reach the API server yet"),
            Err(_) => tracing::warn!(
                timeout = ?VERSION_TIMEOUT,
                "cannot reach the API server yet: no answer"
            ),
        }
        let mut rx = stop_rx.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {},
            _ = rx.wait_for(|s| *s) => {},
        }
    }
    ready.store(true, Ordering::Relaxed);

    let lease = LeaseConfig {
        name: args.lease_name.clone(),
        namespace: args.lease_namespace.clone(),
        identity: args.identity.clone(),
        duration: election.lease_duration,
        renew: election.retry_period,
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), &lease.namespace);
    let mut renewed = None;
    if !args.no_leader_election {
        tracing::info!(
            lease = %lease.name,
            identity = %lease.identity,
            duration = ?election.lease_duration,
            renew_deadline = ?election.renew_deadline,
            retry_period = ?election.retry_period,
            "waiting to lead"
        );
        // An attempt that outlasts the renew deadline would leave no time to lead.
        let Some(at) = acquire(&leases, &lease, election.renew_deadline, stopped()).await else {
            server.await.ok();
            return Ok(());
        };
        renewed = Some(at);
        tracing::info!("leading");
    }

    let probe = Arc::new(RpcProbe::new(Duration::from_secs(3)).context("creating the RPC probe")?);
    let config = Config {
        build: args.defaults.context(),
        status_interval: Duration::from_secs(args.status_interval.max(5)),
        ..Config::default()
    };
    let state = State::new(client, config, metrics, probe, args.identity.clone());
    let mut controllers = tokio::spawn(controller::run(state, stop_rx.clone()));

    // Keep the lease while running; losing it means another replica leads, or
    // soon may, so stop at once.
    let mut grace = SHUTDOWN_DEADLINE;
    if let Some(at) = renewed {
        match hold(&leases, &lease, election.renew_deadline, at, stopped()).await {
            Ok(last) => {
                // Nothing renews the Lease while the controllers finish: they
                // may go on only until the renew deadline of the last renewal.
                let left =
                    (last + election.renew_deadline).saturating_duration_since(Instant::now());
                grace = grace.min(left);
            }
            Err(lost) => {
                tracing::error!(
                    reason = %lost,
                    "lost the lease; stopping the controllers and exiting so that one replica leads"
                );
                controllers.abort();
                let wait = STEP_DOWN_GRACE.min(
                    election
                        .lease_duration
                        .saturating_sub(election.renew_deadline)
                        / 2,
                );
                let _ = tokio::time::timeout(wait, &mut controllers).await;
                std::process::exit(1);
            }
        }
    } else {
        stopped().await;
    }
    // Reconciles in flight finish; a watch stuck retrying an unreachable API
    // server must not keep the process past its grace period, nor a leader
    // past its renew deadline.
    if tokio::time::timeout(grace, &mut controllers).await.is_err() {
        tracing::warn!("controllers did not stop within {grace:?}; exiting anyway");
        // Before the Lease is released: the next leader must not race them.
        controllers.abort();
        let _ = tokio::time::timeout(STEP_DOWN_GRACE, &mut controllers).await;
    }
    if renewed.is_some() {
        match tokio::time::timeout(RELEASE_TIMEOUT, release(&leases, &lease)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the lease"),
            Err(_) => tracing::warn!("releasing the lease: the API server did not answer"),
        }
    }
    server.await.ok();
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_is_bounded_and_counted_from_when_it_is_sent() {
        let c = with_timeouts(kube::Config::new("http://127.0.0.1:1".parse().unwrap()));
        assert_eq!(c.connect_timeout, Some(CONNECT_TIMEOUT));
        assert_eq!(c.read_timeout, Some(READ_TIMEOUT));
        assert_eq!(c.write_timeout, Some(WRITE_TIMEOUT));
        assert!(c.reset_reader_on_write);
    }
}
