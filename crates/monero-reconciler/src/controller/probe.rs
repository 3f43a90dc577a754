//! Reading each replica: height and sync from monerod's restricted RPC (what
//! the pod serves to clients), peers and version from the exporter sidecar
//! (which reads the unrestricted RPC inside the pod).

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
}

/// Reads a replica. A trait so the reconcile tests can run without pods.
pub trait Probe: Send + Sync {
    /// What the replica reports; errors end up in [`Observed::message`].
    fn observe(&self, target: ProbeTarget) -> BoxFuture<'static, Observed>;
}

/// The real probe, over the pod network.
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
                    }
                    Err(e) => o.message = Some(format!("restricted RPC: {e}")),
                },
                Err(e) => o.message = Some(format!("restricted RPC: {e}")),
            }
            if t.exporter {
                let url = format!("http://{}:{}/metrics", t.ip, crate::build::EXPORTER_PORT);
                match http.get(&url).send().await {
                    Ok(r) => match r.text().await {
                        Ok(text) => read_exporter(&text, &mut o),
                        Err(e) => {
                            o.message.get_or_insert(format!("exporter: {e}"));
                        }
                    },
                    Err(e) => {
                        o.message.get_or_insert(format!("exporter: {e}"));
                    }
                }
            }
            o
        })
    }
}

/// Peers and version from the exporter's exposition text.
pub fn read_exporter(text: &str, o: &mut Observed) {
    for line in text.lines() {
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
}
