//! Reading each replica: height and sync from monerod's restricted RPC (what
//! the pod serves to clients), peers and version from the exporter sidecar
//! (which reads the unrestricted RPC inside the pod). A miner is read from its
//! exporter alone, since xmrig's own API is bound to the pod's loopback.

use std::time::Duration;

use futures::future::BoxFuture;

use super::status::Observed;

/// Where one replica can be reached.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    /// Pod IP.
    pub ip: String,
    /// Restricted RPC port.
    pub rpc_port: u16,
    /// Whether the exporter sidecar runs (on [`crate::build::EXPORTER_PORT`]).
    pub exporter: bool,
    /// RPC login, when the set requires one.
    pub login: Option<(String, String)>,
    /// The replica is an xmrig miner: only its exporter is read.
    pub xmrig: bool,
    /// Read the replica's connections and chain watch from its exporter's
    /// `/lab` (a network node's lab mode).
    pub peers: bool,
    /// The pod is a network's wallets: only its sidecar's `/wallets` is read.
    pub wallets: bool,
}

/// Reads a replica. A trait so the reconcile tests can run without pods.
pub trait Probe: Send + Sync {
    /// What the replica reports; errors end up in [`Observed::message`].
    fn observe(&self, target: ProbeTarget) -> BoxFuture<'static, Observed>;
}

/// The real probe, over the pod network, in plain HTTP (pods serve nothing else), so it
/// needs no CA store: the operator's image has none.
#[derive(Clone, Debug)]
pub struct RpcProbe {
    timeout: Duration,
    http: reqwest::Client,
}

impl RpcProbe {
    /// A probe whose every call gives up after `timeout`.
    pub fn new(timeout: Duration) -> Result<RpcProbe, reqwest::Error> {
        Ok(RpcProbe {
            timeout,
            http: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }
}

impl Probe for RpcProbe {
    fn observe(&self, t: ProbeTarget) -> BoxFuture<'static, Observed> {
        let timeout = self.timeout;
        let http = self.http.clone();
        Box::pin(async move {
            let mut o = Observed::default();
            if t.xmrig {
                read_metrics(&http, &t.ip, &mut o).await;
                return o;
            }
            if t.wallets {
                read_wallets(&http, &t.ip, &mut o).await;
                return o;
            }
            let mut builder =
                monero_rpc::DaemonClient::builder(format!("http://{}:{}", t.ip, t.rpc_port))
                    .timeout(timeout);
            if let Some((u, p)) = &t.login {
                builder = builder.login(u.clone(), p.clone());
            }
            match builder.build() {
                Ok(client) => match client.get_info().await {
                    Ok(info) => {
                        o.height = Some(info.height);
                        o.target_height = Some(info.target_height.max(info.height));
                        o.synchronized = Some(info.synchronized);
                        o.top_hash = Some(info.top_block_hash).filter(|h| !h.is_empty());
                    }
                    Err(e) => o.message = Some(format!("restricted RPC: {e}")),
                },
                Err(e) => o.message = Some(format!("restricted RPC: {e}")),
            }
            if t.exporter {
                read_metrics(&http, &t.ip, &mut o).await;
            }
            if t.exporter && t.peers {
                read_lab(&http, &t.ip, &mut o).await;
            }
            o
        })
    }
}

/// Reads the lab sidecar's `/lab`: the node's connections and what its chain
/// watch saw.
async fn read_lab(http: &reqwest::Client, ip: &str, o: &mut Observed) {
    let url = format!("http://{ip}:{}/lab", crate::build::EXPORTER_PORT);
    let report = async {
        let r = http.get(&url).send().await?.error_for_status()?;
        r.json::<lab::Report>().await
    };
    match report.await {
        Ok(r) => {
            o.peer_ips = Some(r.peers.into_iter().map(|p| p.ip).collect());
            o.reorganizations = Some(r.chain.reorganizations);
            o.last_reorganization_depth = r.chain.last_reorganization_depth;
            o.recent_hashes = Some(r.chain.hashes.into_iter().collect());
        }
        Err(e) => {
            o.message.get_or_insert(format!("exporter /lab: {e}"));
        }
    }
}

/// Reads the wallets sidecar's `/wallets`: each wallet's address and balance.
async fn read_wallets(http: &reqwest::Client, ip: &str, o: &mut Observed) {
    let url = format!("http://{ip}:{}/wallets", crate::build::EXPORTER_PORT);
    let report = async {
        let r = http.get(&url).send().await?.error_for_status()?;
        r.json::<Vec<monero_crd::WalletStatus>>().await
    };
    match report.await {
        Ok(w) => o.wallets = Some(w),
        Err(e) => o.message = Some(format!("wallets sidecar /wallets: {e}")),
    }
}

/// What `/lab` answers (monero-exporter's lab mode), read here without
/// depending on the exporter crate.
mod lab {
    /// The report.
    #[derive(serde::Deserialize)]
    pub struct Report {
        /// The node's connections.
        pub peers: Vec<Peer>,
        /// Its chain watch.
        pub chain: Chain,
    }

    /// One connection.
    #[derive(serde::Deserialize)]
    pub struct Peer {
        /// The peer's IP address.
        pub ip: String,
    }

    /// What the chain watch saw.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Chain {
        /// Reorganizations since the sidecar started.
        pub reorganizations: u64,
        /// The depth of the last one.
        pub last_reorganization_depth: Option<u64>,
        /// The last blocks' hashes by height.
        #[serde(default)]
        pub hashes: Vec<(u64, String)>,
    }
}

/// Reads the exporter sidecar's `/metrics` into `o`.
async fn read_metrics(http: &reqwest::Client, ip: &str, o: &mut Observed) {
    let url = format!("http://{ip}:{}/metrics", crate::build::EXPORTER_PORT);
    match http.get(&url).send().await {
        Ok(r) => match r.text().await {
            Ok(text) => read_exporter(&text, o),
            Err(e) => {
                o.message.get_or_insert(format!("exporter: {e}"));
            }
        },
        Err(e) => {
            o.message.get_or_insert(format!("exporter: {e}"));
        }
    }
}

/// The value of a sample line whose series is exactly `series`.
fn sample(line: &str, series: &str) -> Option<f64> {
    line.strip_prefix(series)?
        .strip_prefix(' ')?
        .trim()
        .parse()
        .ok()
}

/// Peers and version (monerod), or hashrate, shares and version (xmrig), from
/// the exporter's exposition text.
pub fn read_exporter(text: &str, o: &mut Observed) {
    let mut hashrate_10s = None;
    for line in text.lines() {
        if let Some(v) = sample(line, "xmrig_hashrate_hashes_per_second{window=\"60s\"}") {
            o.hashrate = Some(v);
            continue;
        }
        if let Some(v) = sample(line, "xmrig_hashrate_hashes_per_second{window=\"10s\"}") {
            hashrate_10s = Some(v);
            continue;
        }
        if let Some(v) = sample(line, "xmrig_shares_accepted_total") {
            o.shares_accepted = Some(v as u64);
            continue;
        }
        if let Some(v) = sample(line, "xmrig_shares_rejected_total") {
            o.shares_rejected = Some(v as u64);
            continue;
        }
        if sample(line, "xmrig_up") == Some(0.0) {
            o.message = Some("xmrig's HTTP API does not answer its exporter".into());
            continue;
        }
        if line.starts_with("xmrig_info{")
            && let Some(rest) = line.split("version=\"").nth(1)
            && let Some(v) = rest.split('"').next()
            && v != "unknown"
        {
            o.version = Some(v.to_string());
            continue;
        }
        if let Some(v) = line.strip_prefix("monero_connections{direction=\"in\"} ") {
            o.incoming = v.trim().parse::<f64>().ok().map(|f| f as u64);
        } else if let Some(v) = line.strip_prefix("monero_connections{direction=\"out\"} ") {
            o.outgoing = v.trim().parse::<f64>().ok().map(|f| f as u64);
        } else if line.starts_with("monero_build_info{")
            && let Some(rest) = line.split("version=\"").nth(1)
            && let Some(v) = rest.split('"').next()
            && v != "unknown"
        {
            o.version = Some(v.to_string());
        }
    }
    if o.hashrate.is_none() {
        o.hashrate = hashrate_10s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_and_version_come_from_the_exposition() {
        let text = "# HELP x\nmonero_connections{direction=\"in\"} 3\nmonero_connections{direction=\"out\"} 8\nmonero_build_info{network=\"mainnet\",version=\"0.18.0.0-release\"} 1\n";
        let mut o = Observed::default();
        read_exporter(text, &mut o);
        assert_eq!((o.incoming, o.outgoing), (Some(3), Some(8)));
        assert_eq!(o.version.as_deref(), Some("0.18.0.0-release"));
        let mut o = Observed::default();
        read_exporter(
            "monero_build_info{network=\"mainnet\",version=\"unknown\"} 1\n",
            &mut o,
        );
        assert_eq!(o.version, None);
    }

    #[test]
    fn a_miners_hashrate_prefers_the_minute_average_and_shares_are_read() {
        let text = "xmrig_up 1\nxmrig_info{algo=\"rx/0\",pool=\"p:1\",version=\"6.22.2\"} 1\nxmrig_hashrate_hashes_per_second{window=\"10s\"} 120\nxmrig_hashrate_hashes_per_second{window=\"60s\"} 99.5\nxmrig_shares_accepted_total 4\nxmrig_shares_rejected_total 1\n";
        let mut o = Observed::default();
        read_exporter(text, &mut o);
        assert_eq!(o.hashrate, Some(99.5));
        assert_eq!((o.shares_accepted, o.shares_rejected), (Some(4), Some(1)));
        assert_eq!(o.version.as_deref(), Some("6.22.2"));
        assert_eq!(o.message, None);

        let mut o = Observed::default();
        read_exporter(
            "xmrig_up 1\nxmrig_hashrate_hashes_per_second{window=\"10s\"} 120\n",
            &mut o,
        );
        assert_eq!(
            o.hashrate,
            Some(120.0),
            "the 10 s average until the minute fills"
        );

        let mut o = Observed::default();
        read_exporter("xmrig_up 0\n", &mut o);
        assert_eq!(o.hashrate, None);
        assert!(o.message.unwrap().contains("xmrig"));
    }
}
