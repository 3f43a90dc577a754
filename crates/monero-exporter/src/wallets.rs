//! Wallets mode, for a MoneroNetwork's wallets pod: beside N monero-wallet-rpc
//! (wallet i on the pod's loopback at `firstPort + i`), this makes each
//! wallet on first start (the file stays on the pod's volume and is opened
//! again after a restart), keeps its balance fresh, sends the transfers the
//! lab file asks for, and reports it all at `/wallets` (for the operator's
//! status) and `/metrics`.
//!
//! The lab file (`--wallets-lab`) is read again at every tick, so a new
//! transfer rate needs no restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monero_rpc::{DaemonClient, Destination, WalletClient};
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};

/// What the wallets lab file asks.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WalletsConfig {
    /// How many wallets (monero-wallet-rpc containers) the pod has.
    pub wallets: u16,
    /// Wallet 0's RPC port on the pod's loopback; wallet i's is this plus i.
    pub first_port: u16,
    /// Transfers each wallet sends per minute, to the others in turn.
    #[serde(default)]
    pub transactions_per_minute: u32,
    /// Atomic units per transfer.
    #[serde(default = "default_amount")]
    pub amount: u64,
}

fn default_amount() -> u64 {
    1_000_000_000
}

/// Why the wallets mode cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WalletsError {
    /// The lab file could not be read.
    #[error("cannot read the wallets lab file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The lab file is not a wallets lab file.
    #[error("the wallets lab file {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A client could not be made.
    #[error("wallet RPC client: {0}")]
    Client(#[from] monero_rpc::Error),
    /// The metrics could not be registered.
    #[error("cannot register the wallets' metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Reads the wallets lab file.
pub fn read_config(path: &Path) -> Result<WalletsConfig, WalletsError> {
    let text = std::fs::read_to_string(path).map_err(|source| WalletsError::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| WalletsError::Parse {
        path: path.into(),
        source,
    })
}

/// One wallet, as `/wallets` reports it (the shape of the operator's
/// `status.wallets[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletReport {
    /// The wallet's index.
    pub index: i32,
    /// Its main address, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Balance, atomic units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<u64>,
    /// Spendable now, atomic units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlocked_balance: Option<u64>,
    /// Transfers sent since the sidecar started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfers: Option<u64>,
    /// The last problem, while there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The file name of every wallet in its own `--wallet-dir`.
const WALLET_FILE: &str = "wallet";
/// The throwaway wallet a new wallet's seed comes from.
const SEED_FILE: &str = "seed-source";
/// How often balances are refreshed and transfers considered.
const TICK: Duration = Duration::from_secs(3);
/// A wallet call may scan many blocks or build a transaction.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Atomic units per XMR.
const ATOMIC: f64 = 1e12;

/// The wallets, what they last reported, and their metrics.
#[derive(Clone, Debug)]
pub struct WalletsLab {
    clients: Vec<WalletClient>,
    reports: Arc<Mutex<Vec<WalletReport>>>,
    metrics: Metrics,
}

#[derive(Clone, Debug)]
struct Metrics {
    registry: Registry,
    up: GaugeVec,
    balance: GaugeVec,
    unlocked: GaugeVec,
    transfers: IntCounterVec,
}

impl Metrics {
    fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["wallet"]);
        let up = gauge(
            "monero_wallet_up",
            "Whether the wallet's monero-wallet-rpc answered and its wallet is open (wallets mode).",
        )?;
        let balance = gauge(
            "monero_wallet_balance_xmr",
            "The wallet's balance in XMR (wallets mode).",
        )?;
        let unlocked = gauge(
            "monero_wallet_unlocked_balance_xmr",
            "The part of the wallet's balance it can spend now, in XMR (wallets mode).",
        )?;
        let transfers = IntCounterVec::new(
            Opts::new(
                "monero_wallet_transfers_total",
                "Transfers the wallet tried since the sidecar started, by result: sent or failed (wallets mode).",
            ),
            &["wallet", "result"],
        )?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(balance.clone()))?;
        registry.register(Box::new(unlocked.clone()))?;
        registry.register(Box::new(transfers.clone()))?;
        Ok(Metrics {
            registry,
            up,
            balance,
            unlocked,
            transfers,
        })
    }
}

impl WalletsLab {
    /// Clients for the wallets `cfg` names, on `host` (the pod's loopback),
    /// with the wallets' RPC login when they have one.
    pub fn new(
        cfg: &WalletsConfig,
        host: &str,
        login: Option<(String, String)>,
    ) -> Result<WalletsLab, WalletsError> {
        let mut clients = Vec::new();
        for i in 0..cfg.wallets {
            let port = cfg.first_port.saturating_add(i);
            let mut b =
                DaemonClient::builder(format!("http://{host}:{port}")).timeout(CALL_TIMEOUT);
            if let Some((u, p)) = &login {
                b = b.login(u.clone(), p.clone());
            }
            clients.push(WalletClient::new(b.build()?));
        }
        let reports = (0..cfg.wallets)
            .map(|i| WalletReport {
                index: i.into(),
                ..WalletReport::default()
            })
            .collect();
        let metrics = Metrics::new()?;
        // Every series from the start, so that a rate over the first transfer
        // has a zero to start from.
        for i in 0..cfg.wallets {
            let label = i.to_string();
            metrics.up.with_label_values(&[&label]).set(0.0);
            for result in ["sent", "failed"] {
                metrics
                    .transfers
                    .with_label_values(&[&label, result])
                    .inc_by(0);
            }
        }
        Ok(WalletsLab {
            clients,
            reports: Arc::new(Mutex::new(reports)),
            metrics,
        })
    }

    /// What the wallets last reported.
    pub fn reports(&self) -> Vec<WalletReport> {
        self.reports.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Keeps the wallets open and fresh and sends the transfers asked for,
    /// until the process ends. A failed call is reported and tried again at
    /// the next tick.
    pub async fn run(self, path: PathBuf) {
        let mut open = vec![false; self.clients.len()];
        let mut next_send = vec![Instant::now(); self.clients.len()];
        let mut turn = vec![0usize; self.clients.len()];
        loop {
            let cfg = match read_config(&path) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "wallets: lab file");
                    None
                }
            };
            for i in 0..self.clients.len() {
                self.tick(i, &mut open[i]).await;
                let Some(cfg) = &cfg else { continue };
                if cfg.transactions_per_minute > 0 && Instant::now() >= next_send[i] {
                    let every = 60.0 / f64::from(cfg.transactions_per_minute);
                    next_send[i] = Instant::now() + Duration::from_secs_f64(every);
                    self.send(i, cfg.amount, &mut turn[i]).await;
                }
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// Opens (or makes) wallet `i` when it is not open, then reads it.
    async fn tick(&self, i: usize, open: &mut bool) {
        let Some(c) = self.clients.get(i) else { return };
        let label = i.to_string();
        if !*open {
            match open_or_make(c).await {
                Ok(()) => {
                    tracing::info!(wallet = i, "wallets: wallet open");
                    *open = true;
                }
                Err(e) => {
                    self.metrics.up.with_label_values(&[&label]).set(0.0);
                    self.update(i, |r| r.message = Some(format!("opening the wallet: {e}")));
                    return;
                }
            }
        }
        match read_wallet(c).await {
            Ok((address, b)) => {
                self.metrics.up.with_label_values(&[&label]).set(1.0);
                let xmr = |a: u64| a as f64 / ATOMIC;
                self.metrics
                    .balance
                    .with_label_values(&[&label])
                    .set(xmr(b.balance));
                self.metrics
                    .unlocked
                    .with_label_values(&[&label])
                    .set(xmr(b.unlocked_balance));
                self.update(i, |r| {
                    r.address = Some(address);
                    r.balance = Some(b.balance);
                    r.unlocked_balance = Some(b.unlocked_balance);
                    r.message = None;
                });
            }
            Err(e) => {
                // A restarted wallet-rpc has no wallet open: open it again.
                *open = false;
                self.metrics.up.with_label_values(&[&label]).set(0.0);
                self.update(i, |r| r.message = Some(format!("reading the wallet: {e}")));
            }
        }
    }

    /// Sends `amount` from wallet `i` to the next other wallet whose address
    /// is known, when its unlocked balance covers it with room for the fee.
    async fn send(&self, i: usize, amount: u64, turn: &mut usize) {
        let reports = self.reports();
        let others: Vec<String> = reports
            .iter()
            .filter(|r| r.index as usize != i)
            .filter_map(|r| r.address.clone())
            .collect();
        let (Some(c), Some(me)) = (self.clients.get(i), reports.get(i)) else {
            return;
        };
        if others.is_empty() || me.unlocked_balance.unwrap_or(0) < amount.saturating_mul(2) {
            return;
        }
        let to = others[*turn % others.len()].clone();
        *turn += 1;
        let label = i.to_string();
        match c
            .transfer(&[Destination {
                amount,
                address: to.clone(),
            }])
            .await
        {
            Ok(t) => {
                tracing::info!(wallet = i, tx = %t.tx_hash, fee = t.fee, "wallets: sent");
                self.metrics
                    .transfers
                    .with_label_values(&[&label, "sent"])
                    .inc();
                self.update(i, |r| r.transfers = Some(r.transfers.unwrap_or(0) + 1));
            }
            Err(e) => {
                tracing::warn!(wallet = i, error = %e, "wallets: transfer failed");
                self.metrics
                    .transfers
                    .with_label_values(&[&label, "failed"])
                    .inc();
            }
        }
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut WalletReport)) {
        if let Ok(mut reports) = self.reports.lock()
            && let Some(r) = reports.get_mut(i)
        {
            f(r);
        }
    }

    /// `/wallets`, `/metrics`, `/healthz`, and `/ready` (every wallet open).
    pub fn router(self) -> Router {
        Router::new()
            .route("/wallets", get(wallets))
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/ready", get(ready))
            .with_state(self)
    }
}

/// Opens the wallet, or makes it scanning from the genesis block.
///
/// A wallet made with `create_wallet` starts scanning at the height its
/// wallet-rpc believes the chain has: the daemon's when it answers, otherwise
/// an estimate of mainnet's from the date (3.3 million in 2026), which a
/// private chain never reaches, so such a wallet never sees a block. So a new
/// wallet's seed comes from a throwaway one, and the wallet itself is restored
/// from it at height 0, whatever the daemon said.
async fn open_or_make(c: &WalletClient) -> Result<(), monero_rpc::Error> {
    match c.open_wallet(WALLET_FILE, "").await {
        Err(monero_rpc::Error::Rpc { .. }) => {}
        other => return other,
    }
    c.open_or_create(SEED_FILE, "").await?;
    let seed = c.query_key("mnemonic").await?;
    c.restore_deterministic_wallet(WALLET_FILE, &seed, 0, "")
        .await
}

/// Scans new blocks, then reads the address and balance.
async fn read_wallet(
    c: &WalletClient,
) -> Result<(String, monero_rpc::WalletBalance), monero_rpc::Error> {
    c.refresh().await?;
    let address = c.get_address(0).await?.address;
    let balance = c.get_balance(0).await?;
    Ok((address, balance))
}

async fn wallets(State(lab): State<WalletsLab>) -> Response {
    let body = serde_json::to_string(&lab.reports()).unwrap_or_else(|_| "[]".into());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn metrics(State(lab): State<WalletsLab>) -> Response {
    let body = crate::encode(&lab.metrics.registry.gather());
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response()
}

async fn ready(State(lab): State<WalletsLab>) -> Response {
    let reports = lab.reports();
    let waiting: Vec<String> = reports
        .iter()
        .filter(|r| r.address.is_none() || r.message.is_some())
        .map(|r| {
            format!(
                "wallet {}: {}",
                r.index,
                r.message.as_deref().unwrap_or("not read yet")
            )
        })
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let text = format!("{}\n", waiting.join("\n"));
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wallets_file_is_read_strictly() {
        let dir = std::env::temp_dir().join(format!("wallets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("wallets.lab.json");
        std::fs::write(
            &f,
            r#"{"wallets":2,"firstPort":18083,"transactionsPerMinute":6}"#,
        )
        .unwrap();
        let c = read_config(&f).unwrap();
        assert_eq!(
            c,
            WalletsConfig {
                wallets: 2,
                first_port: 18083,
                transactions_per_minute: 6,
                amount: 1_000_000_000
            }
        );
        std::fs::write(&f, r#"{"wallets":2,"firstport":18083}"#).unwrap();
        let e = read_config(&f).unwrap_err().to_string();
        assert!(
            e.contains("firstport") && e.contains("wallets.lab.json"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reports_have_the_status_shape() {
        let r = WalletReport {
            index: 1,
            address: Some("4a".into()),
            unlocked_balance: Some(5),
            ..WalletReport::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"index": 1, "address": "4a", "unlockedBalance": 5})
        );
    }
}
