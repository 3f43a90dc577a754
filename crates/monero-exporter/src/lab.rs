//! The lab mode of a MoneroNetwork node's sidecar: what a research or
//! wallet-CI network needs done inside each pod, through monerod's unrestricted
//! RPC on the pod's loopback.
//!
//! - Blocks on a schedule: every `everySeconds`, `generateblocks` to `address`.
//! - `/peers`: the node's connections, for the operator to compare the graph
//!   the nodes form with the one the network asks for.
//!
//! What to do is a small JSON file (`--lab-config`) the operator writes into the
//! pod's config Secret. It is read again before every round, so a change
//! reaches the pod when the kubelet updates the volume, without a restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monero_rpc::DaemonClient;
use serde::{Deserialize, Serialize};

/// What the lab file asks of this node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabConfig {
    /// Produce blocks, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<Mining>,
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
}

fn one() -> u64 {
    1
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

/// How long to wait before the next look at the file when there is nothing
/// to mine (or the file cannot be read): a new schedule starts within this.
const IDLE: Duration = Duration::from_secs(5);

/// Mines as the lab file says, until the process ends. A failed round (monerod
/// busy, restarting) is logged and the schedule goes on.
pub async fn run(client: DaemonClient, path: PathBuf) {
    loop {
        let wait = match read_config(&path) {
            Ok(LabConfig { mine: Some(m) }) => {
                mine_once(&client, &m).await;
                Duration::from_secs(m.every_seconds.max(1))
            }
            Ok(LabConfig { mine: None }) => IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "lab: no schedule");
                IDLE
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn mine_once(client: &DaemonClient, m: &Mining) {
    match client.generate_blocks(m.blocks, &m.address).await {
        Ok(r) => tracing::info!(height = r.height, blocks = m.blocks, "lab: mined"),
        Err(e) => tracing::warn!(error = %e, "lab: generateblocks failed"),
    }
}

/// One of the node's connections, as `/peers` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The peer's IP address: the pod it came from (incoming) or the
    /// Service it was reached at (outgoing).
    pub ip: String,
    /// The peer connected to this node.
    pub incoming: bool,
}

/// `/peers`: the node's connections, for the operator. Served only with
/// `--lab-config`: a public node's peers are nobody's business.
pub fn routes(client: DaemonClient) -> Router {
    Router::new().route("/peers", get(peers)).with_state(client)
}

async fn peers(State(client): State<DaemonClient>) -> Response {
    match client.get_connections().await {
        Ok(c) => {
            let peers: Vec<Peer> = c
                .connections
                .into_iter()
                .map(|c| Peer {
                    ip: if c.ip.is_empty() { c.host } else { c.ip },
                    incoming: c.incoming,
                })
                .collect();
            let body = serde_json::to_string(&peers).unwrap_or_else(|_| "[]".into());
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
        std::fs::write(&f, r#"{"mine":{"everySeconds":30,"address":"4abc"}}"#).unwrap();
        let c = read_config(&f).unwrap();
        assert_eq!(
            c.mine,
            Some(Mining {
                every_seconds: 30,
                blocks: 1,
                address: "4abc".into()
            })
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
}
