//! xmrig's hashrate and shares, from its HTTP API (`GET /2/summary`).
//!
//! The operator runs this next to each xmrig replica (`monero-exporter
//! --xmrig-address`): xmrig serves its API on the pod's loopback only, behind
//! an access token, and this exporter is what Prometheus and the operator read
//! from outside the pod. Like the monerod side, collection happens at scrape
//! time, `xmrig_up` is always present and `/metrics` answers 200 when xmrig is
//! down, so there is a series to alert on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::Future;

use axum::Router;
use axum::http::header;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::render::Families;

/// The largest summary accepted; a real one is a few KiB.
const MAX_BODY: usize = 1 << 20;

/// Why xmrig's summary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum XmrigError {
    /// The address is not `http://host:port`.
    #[error("xmrig address {address:?}: {why}")]
    Address { address: String, why: String },
    /// No TCP connection, or the HTTP exchange broke.
    #[error("xmrig at {address}: {message}")]
    Transport { address: String, message: String },
    /// xmrig answered 401 or 403: the access token is missing or wrong.
    #[error("xmrig refused the access token (HTTP {status}); check --xmrig-access-token-file")]
    Unauthorized { status: u16 },
    /// Any other non-200 answer.
    #[error("xmrig answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The body is not a summary.
    #[error("xmrig's summary is not the expected JSON: {0}")]
    Decode(String),
    /// No answer within the deadline.
    #[error("xmrig did not answer within {0:?}")]
    Timeout(Duration),
    /// The access token file cannot be used.
    #[error("xmrig access token file {path}: {why}")]
    Token { path: String, why: String },
}

/// Where the access token comes from.
#[derive(Clone)]
enum Token {
    None,
    Value(String),
    /// Read at every request, so a replaced Secret (which the kubelet updates
    /// in the mounted file) is picked up without a restart.
    File(std::path::PathBuf),
}

/// A client of one xmrig's HTTP API.
#[derive(Clone)]
pub struct XmrigClient {
    /// `host:port` to connect to.
    authority: String,
    token: Token,
    timeout: Duration,
}

impl std::fmt::Debug for XmrigClient {
    // The token stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = match &self.token {
            Token::None => "none".to_owned(),
            Token::Value(_) => "<hidden>".to_owned(),
            Token::File(p) => format!("from {}", p.display()),
        };
        f.debug_struct("XmrigClient")
            .field("authority", &self.authority)
            .field("token", &token)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl XmrigClient {
    /// `address` is `http://host:port` (xmrig serves its API over plain HTTP).
    pub fn new(address: &str, timeout: Duration) -> Result<XmrigClient, XmrigError> {
        let bad = |why: &str| XmrigError::Address {
            address: address.to_owned(),
            why: why.to_owned(),
        };
        let url = url::Url::parse(address).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad("xmrig's HTTP API speaks plain http://"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
        if url.path() != "/" && !url.path().is_empty() {
            return Err(bad("give only scheme, host and port"));
        }
        Ok(XmrigClient {
            authority: format!("{host}:{port}"),
            token: Token::None,
            timeout,
        })
    }

    /// Sends `token` (xmrig's `http.access-token`) as a Bearer token.
    pub fn token(mut self, token: impl Into<String>) -> XmrigClient {
        self.token = Token::Value(token.into());
        self
    }

    /// Sends the first line of `path` as a Bearer token, read at every request.
    pub fn token_file(mut self, path: impl Into<std::path::PathBuf>) -> XmrigClient {
        self.token = Token::File(path.into());
        self
    }

    /// `host:port` this client reads.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// `GET /2/summary`, under the client's deadline.
    pub async fn summary(&self) -> Result<Summary, XmrigError> {
        match tokio::time::timeout(self.timeout, self.get("/2/summary")).await {
            Ok(r) => {
                let body = r?;
                serde_json::from_slice(&body).map_err(|e| XmrigError::Decode(e.to_string()))
            }
            Err(_) => Err(XmrigError::Timeout(self.timeout)),
        }
    }

    async fn get(&self, path: &str) -> Result<Bytes, XmrigError> {
        let transport = |e: &dyn std::fmt::Display| XmrigError::Transport {
            address: self.authority.clone(),
            message: e.to_string(),
        };
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| transport(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport(&e))?;
        // One request per connection: the driver ends when the request does.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let token = match &self.token {
            Token::None => None,
            Token::Value(t) => Some(t.clone()),
            Token::File(p) => Some(read_token(p)?),
        };
        let mut req = http::Request::get(path).header(header::HOST, self.authority.as_str());
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| transport(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| transport(&e))?
            .to_bytes();
        match status {
            200 => Ok(body),
            401 | 403 => Err(XmrigError::Unauthorized { status }),
            _ => Err(XmrigError::Status {
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            }),
        }
    }
}

/// The first line of a token file, which must not be empty.
pub fn read_token(path: &std::path::Path) -> Result<String, XmrigError> {
    let fail = |why: String| XmrigError::Token {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(fail("it is empty".into()));
    }
    Ok(token.to_owned())
}

/// The parts of xmrig's `/2/summary` that become metrics. Every field is
/// optional: xmrig leaves some out (no pool yet, a hashrate window not yet
/// filled) and its versions differ.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Summary {
    pub version: Option<String>,
    pub kind: Option<String>,
    pub algo: Option<String>,
    /// Seconds since xmrig started.
    pub uptime: Option<f64>,
    pub paused: Option<bool>,
    pub hashrate: Hashrate,
    pub results: Results,
    pub connection: Connection,
    /// `[allocated, total]` huge pages; older versions send a boolean.
    pub hugepages: Option<serde_json::Value>,
}

/// Hashes per second.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Hashrate {
    /// Averages over 10 s, 60 s and 15 min; `null` until the window has filled.
    pub total: Vec<Option<f64>>,
    pub highest: Option<f64>,
}

/// Work results since xmrig started.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Results {
    pub diff_current: Option<f64>,
    /// Accepted shares (in solo mining: accepted blocks).
    pub shares_good: Option<u64>,
    /// Accepted and rejected shares.
    pub shares_total: Option<u64>,
    pub avg_time_ms: Option<f64>,
    pub hashes_total: Option<f64>,
}

/// The current pool connection.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Connection {
    pub pool: Option<String>,
    /// Seconds connected.
    pub uptime: Option<f64>,
    /// Milliseconds.
    pub ping: Option<f64>,
    pub failures: Option<u64>,
}

/// The names of the hashrate windows, in the order xmrig sends them.
pub const HASHRATE_WINDOWS: [&str; 3] = ["10s", "60s", "15m"];

/// Every xmrig metric one summary yields (`None`: xmrig did not answer).
pub(crate) fn render(summary: Option<&Summary>, out: &mut Families) {
    out.gauge(
        "xmrig_up",
        "1 if xmrig's HTTP API answered this scrape, else 0.",
        &[],
        if summary.is_some() { 1.0 } else { 0.0 },
    );
    let Some(s) = summary else { return };
    out.gauge(
        "xmrig_info",
        "Always 1; the labels carry xmrig's version, algorithm and pool.",
        &[
            ("version", s.version.as_deref().unwrap_or("unknown")),
            ("algo", s.algo.as_deref().unwrap_or("")),
            ("pool", s.connection.pool.as_deref().unwrap_or("")),
        ],
        1.0,
    );
    for (window, value) in HASHRATE_WINDOWS.iter().zip(&s.hashrate.total) {
        if let Some(v) = value {
            out.gauge(
                "xmrig_hashrate_hashes_per_second",
                "Hashes per second, averaged over the window; absent until the window has filled.",
                &[("window", window)],
                *v,
            );
        }
    }
    if let Some(v) = s.hashrate.highest {
        out.gauge(
            "xmrig_hashrate_highest_hashes_per_second",
            "Highest 10-second hashrate since xmrig started.",
            &[],
            v,
        );
    }
    let r = &s.results;
    if let Some(v) = r.hashes_total {
        out.counter(
            "xmrig_hashes_total",
            "Hashes computed since xmrig started.",
            &[],
            v,
        );
    }
    if let Some(good) = r.shares_good {
        out.counter(
            "xmrig_shares_accepted_total",
            "Shares the pool accepted (solo mining: blocks monerod accepted) since xmrig started.",
            &[],
            good as f64,
        );
        if let Some(total) = r.shares_total {
            out.counter(
                "xmrig_shares_rejected_total",
                "Shares the pool rejected since xmrig started.",
                &[],
                total.saturating_sub(good) as f64,
            );
        }
    }
    if let Some(v) = r.diff_current {
        out.gauge(
            "xmrig_share_difficulty",
            "Difficulty of the current job.",
            &[],
            v,
        );
    }
    if let Some(v) = r.avg_time_ms {
        out.gauge(
            "xmrig_share_time_average_seconds",
            "Average time between accepted shares.",
            &[],
            v / 1e3,
        );
    }
    let c = &s.connection;
    if let Some(v) = c.uptime {
        out.gauge(
            "xmrig_pool_connection_seconds",
            "Time the current pool connection has been up.",
            &[],
            v,
        );
    }
    if let Some(v) = c.ping {
        out.gauge(
            "xmrig_pool_ping_seconds",
            "Round trip to the pool.",
            &[],
            v / 1e3,
        );
    }
    if let Some(v) = c.failures {
        out.counter(
            "xmrig_pool_failures_total",
            "Pool connection failures since xmrig started.",
            &[],
            v as f64,
        );
    }
    if let Some(v) = s.uptime {
        out.gauge("xmrig_uptime_seconds", "Time since xmrig started.", &[], v);
    }
    if let Some(p) = s.paused {
        out.gauge(
            "xmrig_paused",
            "1 while xmrig is paused.",
            &[],
            if p { 1.0 } else { 0.0 },
        );
    }
    if let Some(pages) = s.hugepages.as_ref().and_then(|v| v.as_array()) {
        for (state, v) in ["allocated", "total"].iter().zip(pages) {
            if let Some(n) = v.as_f64() {
                out.gauge(
                    "xmrig_hugepages",
                    "Huge pages xmrig allocated, and how many it wanted (total).",
                    &[("state", state)],
                    n,
                );
            }
        }
    }
}

/// The exporter in front of one xmrig.
#[derive(Debug, Clone)]
pub struct XmrigExporter {
    inner: Arc<XmrigClient>,
}

impl XmrigExporter {
    pub fn new(client: XmrigClient) -> XmrigExporter {
        XmrigExporter {
            inner: Arc::new(client),
        }
    }

    /// One scrape in the Prometheus text format.
    pub async fn metrics_text(&self) -> String {
        let start = Instant::now();
        let summary = self.inner.summary().await;
        if let Err(e) = &summary {
            tracing::debug!(error = %e, "xmrig summary failed");
        }
        let mut families = Families::default();
        render(summary.as_ref().ok(), &mut families);
        families.gauge(
            "monero_exporter_scrape_duration_seconds",
            "Time this scrape took to collect from xmrig.",
            &[],
            start.elapsed().as_secs_f64(),
        );
        crate::build_info(&mut families);
        crate::encode(&families.into_vec())
    }

    /// `/metrics`, `/healthz`, `/ready` (xmrig's API answers) and an index page.
    pub fn router(self) -> Router {
        crate::routes(self)
    }
}

impl crate::Target for XmrigExporter {
    fn metrics_text(&self) -> impl Future<Output = String> + Send {
        XmrigExporter::metrics_text(self)
    }
    async fn ready(&self) -> Result<(), String> {
        self.inner
            .summary()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    fn describe(&self) -> (String, &'static str) {
        (
            format!("xmrig at {}", self.inner.authority()),
            "xmrig's API answers",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn text(s: Option<&Summary>) -> String {
        let mut f = Families::default();
        render(s, &mut f);
        let mut out = Vec::new();
        TextEncoder::new().encode(&f.into_vec(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn down_is_only_xmrig_up_zero() {
        assert_eq!(
            text(None)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["xmrig_up 0"]
        );
    }

    #[test]
    fn unfilled_windows_are_left_out_and_rejected_is_total_minus_good() {
        let s: Summary = serde_json::from_value(serde_json::json!({
            "version": "6.22.2", "algo": "rx/0", "uptime": 30, "paused": false,
            "hashrate": {"total": [120.5, null, null], "highest": 130.0},
            "results": {"shares_good": 7, "shares_total": 9, "hashes_total": 4000, "diff_current": 1, "avg_time_ms": 2500},
            "connection": {"pool": "solo.default.svc.cluster.local:18089", "uptime": 29, "ping": 3, "failures": 1},
            "hugepages": [0, 1168],
        }))
        .unwrap();
        let t = text(Some(&s));
        for line in [
            "xmrig_up 1",
            "xmrig_hashrate_hashes_per_second{window=\"10s\"} 120.5",
            "xmrig_shares_accepted_total 7",
            "xmrig_shares_rejected_total 2",
            "xmrig_share_time_average_seconds 2.5",
            "xmrig_pool_ping_seconds 0.003",
            "xmrig_hugepages{state=\"total\"} 1168",
            "xmrig_info{algo=\"rx/0\",pool=\"solo.default.svc.cluster.local:18089\",version=\"6.22.2\"} 1",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing from\n{t}");
        }
        assert!(!t.contains("window=\"60s\""), "{t}");
    }

    /// What xmrig 6.22.2 (Debian trixie) answered, connected to no pool yet:
    /// nulls where there is no algorithm or best hashrate yet.
    #[test]
    fn a_real_xmrig_summary_decodes() {
        let s: Summary =
            serde_json::from_str(include_str!("../tests/data/xmrig-6.22.2-summary.json")).unwrap();
        assert_eq!(s.version.as_deref(), Some("6.22.2"));
        assert_eq!(s.algo, None);
        assert_eq!(s.hashrate.total, vec![Some(0.0), Some(0.0), Some(0.0)]);
        assert_eq!(s.hashrate.highest, None);
        assert_eq!(s.results.shares_good, Some(0));
        assert_eq!(s.paused, Some(false));
        let t = text(Some(&s));
        assert!(
            t.contains("xmrig_info{algo=\"\",pool=\"\",version=\"6.22.2\"} 1"),
            "{t}"
        );
        assert!(t.contains("xmrig_hugepages{state=\"allocated\"} 0"), "{t}");
        assert!(!t.contains("xmrig_hashrate_highest"), "{t}");
    }

    #[test]
    fn addresses_are_checked() {
        let t = Duration::from_secs(1);
        assert!(XmrigClient::new("http://127.0.0.1:18092", t).is_ok());
        for bad in [
            "https://127.0.0.1:1",
            "127.0.0.1:18092",
            "http://127.0.0.1:1/2/summary",
        ] {
            let e = XmrigClient::new(bad, t).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let c = XmrigClient::new("http://127.0.0.1:1", Duration::from_secs(1))
            .unwrap()
            .token("s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
