//! The lab mode of a MoneroNetwork node's sidecar: what a research or
//! wallet-CI network needs done inside each pod, through monerod's unrestricted
//! RPC on the pod's loopback.
//!
//! - Blocks on a schedule: every `everySeconds`, `generateblocks` to `address`.
//! - A partition: the nodes on other sides banned (`set_bans`), by the
//!   addresses their names resolve to now; bans lifted when they are no longer
//!   asked for, so removing a partition heals the network without a restart.
//! - The chain watched: each new top block's propagation delay (its arrival
//!   here against its timestamp), and every reorganization with its depth, as
//!   metrics and in `/lab`.
//! - `/lab`: the node's connections and what the chain watch saw, for the
//!   operator's status.
//!
//! What to do is a small JSON file (`--lab-config`) the operator writes into the
//! pod's config Secret. It is read again at every tick, so a change reaches the
//! pod when the kubelet updates the volume, without a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monero_rpc::{DaemonClient, SetBan};
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, Registry};
use serde::{Deserialize, Serialize};

/// What the lab file asks of this node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabConfig {
    /// Produce blocks, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<Mining>,
    /// Who this node may not see, when the network knows its nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
}

/// Blocks on a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mining {
    /// Seconds between two rounds.
    pub every_seconds: u64,
    /// Blocks per round.
    #[serde(default = "one")]
    pub blocks: u64,
    /// Where the coinbase goes (a mainnet-format address works on regtest).
    pub address: String,
    /// Where the coinbase goes instead, when given: each round to the next
    /// (a network's wallets, funded in turn).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

impl Mining {
    /// Round `n`'s coinbase address.
    pub fn address_for(&self, n: usize) -> &str {
        match self.addresses.len() {
            0 => &self.address,
            len => &self.addresses[n % len],
        }
    }
}

fn one() -> u64 {
    1
}

/// The network's nodes, by the names that resolve to them, and which of
/// them are on another side of a partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Partition {
    /// Node i's names, with `{}` for i: its Service's
    /// (`net-{}.ns.svc.cluster.local`) and its pod's
    /// (`net-{}.net-headless.ns.svc.cluster.local`).
    pub names: Vec<String>,
    /// How many nodes the network has.
    pub nodes: u32,
    /// This node's index.
    pub me: u32,
    /// The nodes this one may not see. A ban on any other node's address
    /// that is not asked for here is lifted.
    #[serde(default)]
    pub ban: Vec<u32>,
}

impl Partition {
    /// Every other node's names, and whether it is to be banned.
    fn others(&self) -> Vec<(String, bool)> {
        (0..self.nodes)
            .filter(|j| *j != self.me)
            .flat_map(|j| {
                let banned = self.ban.contains(&j);
                self.names
                    .iter()
                    .map(move |n| (n.replace("{}", &j.to_string()), banned))
            })
            .collect()
    }
}

/// Why the lab file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The file could not be read.
    #[error("cannot read the lab config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a lab config.
    #[error("the lab config {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The lab's metrics could not be registered.
    #[error("cannot register the lab's metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Reads the lab file.
pub fn read_config(path: &Path) -> Result<LabConfig, LabError> {
    let text = std::fs::read_to_string(path).map_err(|source| LabError::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LabError::Parse {
        path: path.into(),
        source,
    })
}

/// How often the file, the bans and the chain are looked at.
const TICK: Duration = Duration::from_secs(1);
/// How long a partition's ban lasts; renewed well before it ends.
const BAN_SECONDS: u64 = 3600;
/// Heights of the chain remembered, to find where a reorganization forked.
const REMEMBERED: u64 = 256;

/// The lab: its monerod, what the chain watch saw, and its metrics.
#[derive(Clone, Debug)]
pub struct Lab {
    client: DaemonClient,
    chain: Arc<Mutex<Chain>>,
    metrics: LabMetrics,
}

#[derive(Clone, Debug)]
struct LabMetrics {
    registry: Registry,
    reorganizations: IntCounter,
    depth: Gauge,
    propagation: Histogram,
}

/// What the chain watch remembers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainReport {
    /// The top block's height, when known.
    pub height: Option<u64>,
    /// The top block's hash.
    pub top_hash: Option<String>,
    /// Reorganizations seen since the sidecar started.
    pub reorganizations: u64,
    /// How many blocks the last one replaced.
    pub last_reorganization_depth: Option<u64>,
    /// The hashes of the last blocks seen, by height, highest first: where
    /// two nodes' chains part.
    pub hashes: Vec<(u64, String)>,
}

/// How many of the last blocks `/lab` names.
const REPORTED: usize = 16;

#[derive(Debug, Default)]
struct Chain {
    /// Height to hash of the chain as last seen, the last REMEMBERED heights.
    seen: BTreeMap<u64, String>,
    report: ChainReport,
}

impl Lab {
    /// A lab for `client`, with its metrics registered in a registry of its
    /// own ([`Lab::registry`]) for the exporter to serve with each scrape.
    pub fn new(client: DaemonClient) -> Result<Lab, LabError> {
        let registry = Registry::new();
        let reorganizations = IntCounter::new(
            "monero_reorganizations_total",
            "Chain reorganizations this node went through since its sidecar started (lab mode).",
        )?;
        let depth = Gauge::new(
            "monero_reorganization_depth_blocks",
            "Blocks the last reorganization replaced (lab mode; 0 before the first).",
        )?;
        let propagation = Histogram::with_opts(
            HistogramOpts::new(
                "monero_block_propagation_seconds",
                "Time from a new top block's timestamp to its arrival at this node (lab mode): block propagation across the network, on one machine's clock.",
            )
            .buckets(vec![0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0]),
        )?;
        registry.register(Box::new(reorganizations.clone()))?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(propagation.clone()))?;
        Ok(Lab {
            client,
            chain: Arc::new(Mutex::new(Chain::default())),
            metrics: LabMetrics {
                registry,
                reorganizations,
                depth,
                propagation,
            },
        })
    }

    /// The lab's metrics, for the exporter's `/metrics`.
    pub fn registry(&self) -> Registry {
        self.metrics.registry.clone()
    }

    /// What the chain watch saw.
    pub fn report(&self) -> ChainReport {
        self.chain
            .lock()
            .map(|c| c.report.clone())
            .unwrap_or_default()
    }

    /// Does what the lab file says, until the process ends. A failed step
    /// (monerod busy, restarting) is logged and the next tick tries again.
    pub async fn run(self, path: PathBuf) {
        let mut next_round = Instant::now();
        let mut round = 0usize;
        let mut last_error = String::new();
        loop {
            match read_config(&path) {
                Ok(cfg) => {
                    last_error.clear();
                    if let Some(p) = &cfg.partition {
                        self.enforce(p).await;
                    }
                    if let Some(m) = &cfg.mine
                        && Instant::now() >= next_round
                    {
                        self.mine(m, m.address_for(round)).await;
                        round = round.wrapping_add(1);
                        next_round = Instant::now() + Duration::from_secs(m.every_seconds.max(1));
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    if text != last_error {
                        tracing::warn!(error = %text, "lab: nothing to do");
                        last_error = text;
                    }
                }
            }
            self.watch_chain().await;
            tokio::time::sleep(TICK).await;
        }
    }

    async fn mine(&self, m: &Mining, address: &str) {
        match self.client.generate_blocks(m.blocks, address).await {
            Ok(r) => tracing::info!(height = r.height, blocks = m.blocks, "lab: mined"),
            Err(e) => tracing::warn!(error = %e, "lab: generateblocks failed"),
        }
    }

    /// Bans the addresses of the nodes on other sides, renews bans about to
    /// end, and lifts bans on the network's nodes that are no longer asked for.
    async fn enforce(&self, p: &Partition) {
        let mut want: BTreeSet<IpAddr> = BTreeSet::new();
        let mut known: BTreeSet<IpAddr> = BTreeSet::new();
        for (name, banned) in p.others() {
            for ip in resolve(&name).await {
                known.insert(ip);
                if banned {
                    want.insert(ip);
                }
            }
        }
        let current = match self.client.get_bans().await {
            Ok(b) => b.bans,
            Err(e) => {
                tracing::warn!(error = %e, "lab: get_bans failed");
                return;
            }
        };
        let changes = ban_changes(&want, &known, &current);
        if changes.is_empty() {
            return;
        }
        match self.client.set_bans(&changes).await {
            Ok(()) => {
                tracing::info!(changes = ?changes.iter().map(|b| (&b.host, b.ban)).collect::<Vec<_>>(), "lab: partition")
            }
            Err(e) => tracing::warn!(error = %e, "lab: set_bans failed"),
        }
    }

    /// Looks at the top block: a new one is timed against its timestamp; one
    /// that does not extend what was seen is a reorganization, whose depth is
    /// found by walking down to the last height where both chains agree.
    async fn watch_chain(&self) {
        let Ok(top) = self.client.get_last_block_header().await else {
            return;
        };
        let h = top.block_header;
        let last = {
            let Ok(chain) = self.chain.lock() else { return };
            if chain.seen.get(&h.height) == Some(&h.hash) {
                return;
            }
            chain.seen.last_key_value().map(|(k, v)| (*k, v.clone()))
        };
        let depth = match &last {
            // The sidecar just started: nothing to compare with.
            None => None,
            Some((height, hash)) if height + 1 == h.height && *hash == h.prev_hash => None,
            // Blocks came faster than the ticks: is the old top still below?
            Some((height, hash)) if *height < h.height => {
                match self.client.get_block_header_by_height(*height).await {
                    Ok(b) if b.block_header.hash == *hash => None,
                    Ok(_) => Some(self.fork_depth(*height).await),
                    Err(_) => return,
                }
            }
            // A new top at or below the old one: it replaced blocks.
            Some((height, _)) => Some(self.fork_depth(*height).await),
        };
        if depth.is_none() && last.is_some() && h.timestamp > 0 {
            let arrived = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            self.metrics
                .propagation
                .observe((arrived - h.timestamp as f64).max(0.0));
        }
        let below = self.headers_below(h.height).await;
        self.record(h.height, h.hash, last.map(|(t, _)| t), depth, below);
    }

    /// The hashes of the blocks just below `top` (REPORTED of them), so the
    /// window stays whole when blocks come faster than the ticks.
    async fn headers_below(&self, top: u64) -> Vec<(u64, String)> {
        if top == 0 {
            return Vec::new();
        }
        let start = top.saturating_sub(REPORTED as u64);
        match self.client.get_block_headers_range(start, top - 1).await {
            Ok(r) => r.headers.into_iter().map(|b| (b.height, b.hash)).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Remembers the new top, and a reorganization when there was one.
    fn record(
        &self,
        height: u64,
        hash: String,
        old_top: Option<u64>,
        depth: Option<u64>,
        below: Vec<(u64, String)>,
    ) {
        let Ok(mut chain) = self.chain.lock() else {
            return;
        };
        if let Some(d) = depth {
            chain.report.reorganizations += 1;
            chain.report.last_reorganization_depth = Some(d);
            self.metrics.reorganizations.inc();
            self.metrics.depth.set(d as f64);
            tracing::info!(depth = d, height, "lab: reorganization");
            // What was seen above the fork is no longer the chain.
            let keep = old_top.unwrap_or(0).saturating_sub(d);
            chain.seen.retain(|h, _| *h <= keep);
        }
        chain.seen.extend(below);
        chain.seen.insert(height, hash.clone());
        // Nothing above the top: after a reorganization to a shorter chain.
        chain.seen.retain(|h, _| *h <= height);
        let low = height.saturating_sub(REMEMBERED);
        chain.seen.retain(|h, _| *h >= low);
        chain.report.height = Some(height);
        chain.report.top_hash = Some(hash);
        chain.report.hashes = chain
            .seen
            .iter()
            .rev()
            .take(REPORTED)
            .map(|(h, s)| (*h, s.clone()))
            .collect();
    }

    /// How many of the blocks seen up to `old_top` the current chain replaced:
    /// down from there, the first height where it still has the block seen is
    /// where the chains forked.
    async fn fork_depth(&self, old_top: u64) -> u64 {
        let seen: Vec<(u64, String)> = self
            .chain
            .lock()
            .map(|c| {
                c.seen
                    .range(..=old_top)
                    .rev()
                    .map(|(h, s)| (*h, s.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let lowest = seen.last().map_or(old_top, |(h, _)| *h);
        for (height, hash) in seen {
            if let Ok(b) = self.client.get_block_header_by_height(height).await
                && b.block_header.hash == hash
            {
                return old_top - height;
            }
        }
        // Deeper than what is remembered: at least that deep.
        old_top - lowest + 1
    }
}

/// The `set_bans` entries that make the bans on the network's addresses what
/// the partition wants: new bans, renewals of bans with under half their time
/// left, and lifts. Bans on addresses that are no node of the network are left
/// alone (a user's, or monerod's own).
fn ban_changes(
    want: &BTreeSet<IpAddr>,
    known: &BTreeSet<IpAddr>,
    current: &[monero_rpc::Ban],
) -> Vec<SetBan> {
    let active: BTreeMap<IpAddr, u64> = current
        .iter()
        .filter_map(|b| Some((b.host.parse().ok()?, b.seconds)))
        .collect();
    let ban = |ip: &IpAddr, ban: bool| SetBan {
        host: ip.to_string(),
        ban,
        seconds: BAN_SECONDS,
    };
    let mut out: Vec<SetBan> = want
        .iter()
        .filter(|ip| active.get(ip).is_none_or(|left| *left < BAN_SECONDS / 2))
        .map(|ip| ban(ip, true))
        .collect();
    out.extend(
        active
            .keys()
            .filter(|ip| known.contains(ip) && !want.contains(ip))
            .map(|ip| ban(ip, false)),
    );
    out
}

/// A name's addresses now; one that does not resolve (a node not scheduled
/// yet) has none.
async fn resolve(name: &str) -> Vec<IpAddr> {
    match tokio::net::lookup_host((name, 0)).await {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        Err(_) => Vec::new(),
    }
}

/// One of the node's connections, as `/lab` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The peer's IP address: the pod it came from (incoming) or the
    /// Service it was reached at (outgoing).
    pub ip: String,
    /// The peer connected to this node.
    pub incoming: bool,
}

/// What `/lab` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabReport {
    /// The node's connections.
    pub peers: Vec<Peer>,
    /// What the chain watch saw.
    pub chain: ChainReport,
}

/// `/lab`: the node's connections and its chain watch, for the operator.
/// Served only in lab mode: a public node's peers are nobody's business.
pub fn routes(lab: Lab) -> Router {
    Router::new().route("/lab", get(report)).with_state(lab)
}

async fn report(State(lab): State<Lab>) -> Response {
    match lab.client.get_connections().await {
        Ok(c) => {
            let report = LabReport {
                peers: c
                    .connections
                    .into_iter()
                    .map(|c| Peer {
                        ip: if c.ip.is_empty() { c.host } else { c.ip },
                        incoming: c.incoming,
                    })
                    .collect(),
                chain: lab.report(),
            };
            let body = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("monerod: {e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_file_is_read_strictly() {
        let dir = std::env::temp_dir().join(format!("lab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("lab.json");
        std::fs::write(
            &f,
            r#"{"mine":{"everySeconds":30,"address":"4abc"},"partition":{"names":["n-{}.ns","n-{}.h.ns"],"nodes":3,"me":0,"ban":[2]}}"#,
        )
        .unwrap();
        let c = read_config(&f).unwrap();
        assert_eq!(
            c.mine,
            Some(Mining {
                every_seconds: 30,
                blocks: 1,
                address: "4abc".into(),
                addresses: Vec::new(),
            })
        );
        assert_eq!(
            c.partition.unwrap().others(),
            [
                ("n-1.ns".to_string(), false),
                ("n-1.h.ns".to_string(), false),
                ("n-2.ns".to_string(), true),
                ("n-2.h.ns".to_string(), true)
            ]
        );
        std::fs::write(&f, "{}").unwrap();
        assert_eq!(read_config(&f).unwrap(), LabConfig::default());
        std::fs::write(&f, r#"{"mine":{"everySecond":30,"address":"4"}}"#).unwrap();
        let e = read_config(&f).unwrap_err().to_string();
        assert!(e.contains("everySecond") && e.contains("lab.json"), "{e}");
        let e = read_config(&dir.join("none.json")).unwrap_err().to_string();
        assert!(e.contains("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_coinbase_goes_to_each_wallet_in_turn() {
        let mut m = Mining {
            every_seconds: 1,
            blocks: 1,
            address: "4default".into(),
            addresses: Vec::new(),
        };
        assert_eq!(m.address_for(3), "4default");
        m.addresses = vec!["4a".into(), "4b".into()];
        let got: Vec<&str> = (0..4).map(|n| m.address_for(n)).collect();
        assert_eq!(got, ["4a", "4b", "4a", "4b"]);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn banned(host: &str, seconds: u64) -> monero_rpc::Ban {
        monero_rpc::Ban {
            host: host.into(),
            ip: 0,
            seconds,
        }
    }

    #[test]
    fn bans_follow_the_partition_and_leave_others_alone() {
        let known: BTreeSet<IpAddr> = [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.96.0.2")].into();
        let want: BTreeSet<IpAddr> = [ip("10.0.0.2"), ip("10.96.0.2")].into();
        let changes = ban_changes(
            &want,
            &known,
            &[
                banned("10.96.0.2", 3500),     // banned, plenty left: kept
                banned("10.0.0.3", 3000),      // a node no longer on the other side: lifted
                banned("198.51.100.7", 10000), // not a node: left alone
            ],
        );
        let summary: Vec<(String, bool)> =
            changes.iter().map(|b| (b.host.clone(), b.ban)).collect();
        assert_eq!(
            summary,
            [
                ("10.0.0.2".to_string(), true),
                ("10.0.0.3".to_string(), false)
            ]
        );
        // A ban about to end is renewed.
        let changes = ban_changes(
            &want,
            &known,
            &[banned("10.0.0.2", 100), banned("10.96.0.2", 3600)],
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].host.as_str(), changes[0].seconds),
            ("10.0.0.2", BAN_SECONDS)
        );
        // Healed: every network ban lifted.
        let changes = ban_changes(&BTreeSet::new(), &known, &[banned("10.0.0.2", 3000)]);
        assert_eq!(
            (changes[0].host.as_str(), changes[0].ban),
            ("10.0.0.2", false)
        );
    }
}
