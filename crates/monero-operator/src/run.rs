//! `monero-operator run`: the HTTP endpoints, leader election and the controllers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use monero_reconciler::controller::leader::{LeaseConfig, Outcome, release, try_acquire};
use monero_reconciler::controller::metrics::Metrics;
use monero_reconciler::controller::probe::RpcProbe;
use monero_reconciler::controller::{self, Config, State};
use prometheus::{Encoder, TextEncoder};
use tokio::sync::watch;

use crate::{LogFormat, RunArgs};

/// How long the controllers get to finish after SIGTERM (the Deployment's
/// grace period is 30 s).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

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
    let b = tracing_subscriber::fmt().with_env_filter(filter);
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

pub async fn run(args: &RunArgs) -> Result<()> {
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

    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster or KUBECONFIG)")?;
    // Ready once the API server answers, not merely once a client is configured.
    loop {
        if *stop_rx.borrow() {
            server.await.ok();
            return Ok(());
        }
        match client.apiserver_version().await {
            Ok(v) => {
                tracing::info!(version = %v.git_version, "connected to the API server");
                break;
            }
            Err(e) => tracing::warn!(error = %e, "cannot reach the API server yet"),
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
        duration: Duration::from_secs(15),
        renew: Duration::from_secs(5),
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), &lease.namespace);
    if !args.no_leader_election {
        tracing::info!(lease = %lease.name, identity = %lease.identity, "waiting to lead");
        loop {
            if *stop_rx.borrow() {
                server.await.ok();
                return Ok(());
            }
            match try_acquire(&leases, &lease, Timestamp::now()).await {
                Ok(Outcome::Leader) => break,
                Ok(Outcome::Follower) => {}
                Err(e) => tracing::warn!(error = %e, "leader election"),
            }
            let mut rx = stop_rx.clone();
            tokio::select! {
                _ = tokio::time::sleep(lease.renew) => {},
                _ = rx.wait_for(|s| *s) => {},
            }
        }
        tracing::info!("leading");
    }

    let probe = Arc::new(RpcProbe::new(Duration::from_secs(3)).context("creating the RPC probe")?);
    let config = Config {
        build: args.defaults.context(),
        status_interval: Duration::from_secs(args.status_interval.max(5)),
        ..Config::default()
    };
    let state = State::new(client, config, metrics, probe, args.identity.clone());
    let controllers = tokio::spawn(controller::run(state, stop_rx.clone()));

    // Keep the lease while running; losing it means another replica leads, so stop.
    let mut lost = false;
    if !args.no_leader_election {
        let mut last_renewed = tokio::time::Instant::now();
        let mut rx = stop_rx.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(lease.renew) => {},
                _ = rx.wait_for(|s| *s) => break,
            }
            match try_acquire(&leases, &lease, Timestamp::now()).await {
                Ok(Outcome::Leader) => last_renewed = tokio::time::Instant::now(),
                Ok(Outcome::Follower) => {
                    lost = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the lease");
                    if last_renewed.elapsed() > lease.duration {
                        lost = true;
                        break;
                    }
                }
            }
        }
    }
    if lost {
        tracing::error!("lost the lease; exiting so that one replica leads");
        std::process::exit(1);
    }
    // Reconciles in flight finish; a watch stuck retrying an unreachable API
    // server must not keep the process past its grace period.
    if tokio::time::timeout(SHUTDOWN_DEADLINE, controllers)
        .await
        .is_err()
    {
        tracing::warn!("controllers did not stop within {SHUTDOWN_DEADLINE:?}; exiting anyway");
    }
    if !args.no_leader_election
        && let Err(e) = release(&leases, &lease).await
    {
        tracing::warn!(error = %e, "releasing the lease");
    }
    server.await.ok();
    tracing::info!("stopped");
    Ok(())
}
