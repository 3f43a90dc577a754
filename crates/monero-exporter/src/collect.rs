//! Scrape-time collection: every RPC the exporter needs, called concurrently under one
//! deadline, gathered into a [`Snapshot`] that rendering turns into metrics.

use std::future::Future;
use std::time::{Duration, Instant};

use monero_rpc::{
    AlternateChains, BlockHeaderResponse, DaemonClient, Error, FeeEstimate, GetBans,
    GetConnections, GetInfo, HardForkInfo, Limit, MiningStatus, NetStats, TransactionPoolStats,
    TxpoolBacklog,
};

/// What became of one collector in one scrape.
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    Ok(T),
    /// Not served by this RPC port (restricted): left out, not counted as an error.
    Skipped,
    /// Failed; the message is logged and counted per collector.
    Failed(String),
}

impl<T> Outcome<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Outcome::Ok(v) => Some(v),
            _ => None,
        }
    }
}

/// One collector's result and how long it took.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    pub outcome: Outcome<T>,
    pub duration: Duration,
}

/// Everything one scrape learned from monerod. Pure data, so rendering can be tested
/// from hand-made snapshots.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub info: Timed<GetInfo>,
    pub last_block: Timed<BlockHeaderResponse>,
    pub txpool: Timed<TransactionPoolStats>,
    pub backlog: Timed<TxpoolBacklog>,
    pub connections: Timed<GetConnections>,
    pub hard_fork: Timed<HardForkInfo>,
    pub fee: Timed<FeeEstimate>,
    pub bans: Timed<GetBans>,
    pub alt_chains: Timed<AlternateChains>,
    pub net_stats: Timed<NetStats>,
    pub limit: Timed<Limit>,
    pub mining: Timed<MiningStatus>,
    /// Wall time of the whole collection.
    pub duration: Duration,
}

/// Every collector's name, in the order of [`Snapshot::collectors`]: the
/// exporter starts each one's error counter at zero, so that the first failure
/// is an increase Prometheus can see.
pub const COLLECTORS: [&str; 12] = [
    "info",
    "last_block",
    "txpool",
    "backlog",
    "connections",
    "hard_fork",
    "fee",
    "bans",
    "alt_chains",
    "net_stats",
    "limit",
    "mining",
];

impl Snapshot {
    /// `(collector name, outcome without payload, duration)` for each collector, for the
    /// exporter's own metrics and logs.
    pub fn collectors(&self) -> Vec<(&'static str, Outcome<()>, Duration)> {
        fn strip<T>(name: &'static str, t: &Timed<T>) -> (&'static str, Outcome<()>, Duration) {
            let o = match &t.outcome {
                Outcome::Ok(_) => Outcome::Ok(()),
                Outcome::Skipped => Outcome::Skipped,
                Outcome::Failed(m) => Outcome::Failed(m.clone()),
            };
            (name, o, t.duration)
        }
        vec![
            strip("info", &self.info),
            strip("last_block", &self.last_block),
            strip("txpool", &self.txpool),
            strip("backlog", &self.backlog),
            strip("connections", &self.connections),
            strip("hard_fork", &self.hard_fork),
            strip("fee", &self.fee),
            strip("bans", &self.bans),
            strip("alt_chains", &self.alt_chains),
            strip("net_stats", &self.net_stats),
            strip("limit", &self.limit),
            strip("mining", &self.mining),
        ]
    }

    /// Whether this scrape's `get_info` came from a restricted port; `None` when
    /// `get_info` failed (the exporter then keeps what an earlier scrape learned).
    pub fn restricted(&self) -> Option<bool> {
        self.info.outcome.ok().map(|i| i.is_restricted())
    }
}

/// Runs `call` until `deadline`; a method the port does not serve becomes `Skipped`.
async fn timed<T, F>(deadline: tokio::time::Instant, skip: bool, call: F) -> Timed<T>
where
    F: Future<Output = Result<T, Error>>,
{
    let start = Instant::now();
    if skip {
        return Timed {
            outcome: Outcome::Skipped,
            duration: Duration::ZERO,
        };
    }
    let outcome = match tokio::time::timeout_at(deadline, call).await {
        Ok(Ok(v)) => Outcome::Ok(v),
        Ok(Err(Error::MethodUnavailable { .. })) => Outcome::Skipped,
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
        Err(_) => Outcome::Failed("scrape deadline exceeded".into()),
    };
    Timed {
        outcome,
        duration: start.elapsed(),
    }
}

/// How many monerod calls one scrape makes at most, all at once: one per collector
/// (a test keeps the two equal).
pub const CALLS_PER_SCRAPE: usize = 12;

/// Calls monerod for one scrape. `known_restricted` is what the last scrape learned:
/// when true, the methods a restricted port never serves are not even asked for.
pub async fn collect(client: &DaemonClient, timeout: Duration, known_restricted: bool) -> Snapshot {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let r = known_restricted;
    let (
        info,
        last_block,
        txpool,
        backlog,
        connections,
        hard_fork,
        fee,
        bans,
        alt_chains,
        net_stats,
        limit,
        mining,
    ) = tokio::join!(
        timed(deadline, false, client.get_info()),
        timed(deadline, false, client.get_last_block_header()),
        timed(deadline, false, client.get_transaction_pool_stats()),
        timed(deadline, false, client.get_txpool_backlog()),
        timed(deadline, r, client.get_connections()),
        timed(deadline, false, client.hard_fork_info()),
        timed(deadline, false, client.get_fee_estimate(None)),
        timed(deadline, r, client.get_bans()),
        timed(deadline, r, client.get_alternate_chains()),
        timed(deadline, r, client.get_net_stats()),
        timed(deadline, false, client.get_limit()),
        timed(deadline, r, client.mining_status()),
    );
    Snapshot {
        info,
        last_block,
        txpool,
        backlog,
        connections,
        hard_fork,
        fee,
        bans,
        alt_chains,
        net_stats,
        limit,
        mining,
        duration: start.elapsed(),
    }
}
