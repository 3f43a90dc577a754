use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, snippet};
use crate::transport::{Endpoint, Password, Transport};

/// Default time a whole call may take, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on a response body. A full `get_block_headers_range` of 1,000 headers is
/// about 0.7 MiB; a large mempool in `get_transaction_pool` can be tens of MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// An async client for one monerod's RPC.
///
/// Cheap to clone: clones share one connection pool. Every typed method is named after
/// the RPC it calls; [`DaemonClient::json_rpc`] and [`DaemonClient::other`] reach any
/// method this crate has no type for.
///
/// ```no_run
/// # async fn run() -> Result<(), monero_rpc::Error> {
/// let client = monero_rpc::DaemonClient::new("http://127.0.0.1:18081")?;
/// let info = client.get_info().await?;
/// println!("height {} of {}", info.height, info.target_height);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DaemonClient {
    transport: Arc<Transport>,
}

/// Configures a [`DaemonClient`]; start from [`DaemonClient::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DaemonClientBuilder {
    url: String,
    timeout: Duration,
    login: Option<(String, Password)>,
    proxy: Option<String>,
    max_response_bytes: usize,
    max_idle_connections: usize,
}

impl DaemonClientBuilder {
    /// The time a whole call may take, connecting and reading the body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `--rpc-login` of the daemon, answered with HTTP digest authentication.
    pub fn login(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.login = Some((username.into(), Password(password.into())));
        self
    }

    /// Reach monerod through a SOCKS5 proxy such as tor's `socks5h://127.0.0.1:9050`.
    /// The daemon's host name is always resolved by the proxy, so `.onion` works and no
    /// DNS query leaves around it (`socks5://` is treated like `socks5h://`).
    pub fn socks5_proxy(mut self, proxy_url: impl Into<String>) -> Self {
        self.proxy = Some(proxy_url.into());
        self
    }

    /// Refuse response bodies larger than this, without reading them whole.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// How many idle keep-alive connections the pool keeps for reuse.
    pub fn max_idle_connections(mut self, n: usize) -> Self {
        self.max_idle_connections = n;
        self
    }

    /// Checks the configuration; connects lazily, on the first call.
    pub fn build(self) -> Result<DaemonClient> {
        let url = url::Url::parse(&self.url).map_err(|e| {
            Error::Config(format!("monerod address {:?} is not a URL: {e}", self.url))
        })?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(Error::Config(format!(
                    "monerod address {:?}: https is not supported yet; reach the daemon over http, through a SOCKS5 proxy, or a local TLS terminator",
                    self.url
                )));
            }
            other => {
                return Err(Error::Config(format!(
                    "monerod address {:?}: scheme {other:?} is not http",
                    self.url
                )));
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::Config(format!("monerod address {:?} has no host", self.url)))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(18081);
        let mut login = self.login;
        if !url.username().is_empty() {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            login = Some((
                decode(url.username()),
                Password(decode(url.password().unwrap_or_default())),
            ));
        }
        let proxy = self.proxy.as_deref().map(parse_proxy).transpose()?;
        if self.timeout.is_zero() {
            return Err(Error::Config("timeout must be greater than zero".into()));
        }
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(DaemonClient {
            transport: Arc::new(Transport::new(Endpoint {
                host,
                port,
                base_path,
                proxy,
                login,
                timeout: self.timeout,
                max_response_bytes: self.max_response_bytes,
                max_idle_connections: self.max_idle_connections,
            })),
        })
    }
}

fn parse_proxy(proxy: &str) -> Result<(String, u16)> {
    let url = url::Url::parse(proxy)
        .map_err(|e| Error::Config(format!("SOCKS5 proxy {proxy:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "socks5" | "socks5h") {
        return Err(Error::Config(format!(
            "SOCKS5 proxy {proxy:?}: scheme must be socks5h or socks5"
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| Error::Config(format!("SOCKS5 proxy {proxy:?} has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((host, url.port().unwrap_or(1080)))
}

/// A response that may carry monerod's `status` field; anything but `OK` is an error.
pub trait RpcResponse: DeserializeOwned {
    /// The `status` string, when the response has one.
    fn status(&self) -> Option<&str>;
}

impl RpcResponse for String {
    fn status(&self) -> Option<&str> {
        None
    }
}

impl RpcResponse for serde_json::Value {
    fn status(&self) -> Option<&str> {
        self.get("status").and_then(|s| s.as_str())
    }
}

#[derive(serde::Deserialize)]
struct Envelope<R> {
    result: Option<R>,
    error: Option<RpcErrorObject>,
}

#[derive(serde::Deserialize)]
struct RpcErrorObject {
    code: i64,
    #[serde(default)]
    message: String,
}

/// JSON-RPC code monerod sends for a method that this port does not serve.
const METHOD_NOT_FOUND: i64 = -32601;

impl DaemonClient {
    /// A client with default settings for the daemon at `url`, such as
    /// `http://127.0.0.1:18081` (a `user:pass@` in the URL sets the login).
    pub fn new(url: &str) -> Result<Self> {
        Self::builder(url).build()
    }

    pub fn builder(url: impl Into<String>) -> DaemonClientBuilder {
        DaemonClientBuilder {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            login: None,
            proxy: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_idle_connections: 8,
        }
    }

    /// The daemon's `host:port`.
    pub fn address(&self) -> &str {
        self.transport.address()
    }

    /// The configured timeout for one call.
    pub fn timeout(&self) -> Duration {
        self.transport.endpoint().timeout
    }

    /// HTTP round trips made so far by this client and its clones. With a login the
    /// steady state is one per call; this makes that measurable.
    pub fn round_trips(&self) -> u64 {
        self.transport.round_trips()
    }

    /// Calls a JSON-RPC method (the `/json_rpc` endpoint) with `params` (pass `()` for
    /// none) and decodes its `result`.
    pub async fn json_rpc<P: Serialize, R: RpcResponse>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R> {
        #[derive(Serialize)]
        struct Call<'a, P> {
            jsonrpc: &'static str,
            id: &'static str,
            method: &'a str,
            #[serde(skip_serializing_if = "is_unit")]
            params: P,
        }
        let body = encode(
            method,
            &Call {
                jsonrpc: "2.0",
                id: "0",
                method,
                params,
            },
        )?;
        let reply = self.transport.post(method, "/json_rpc", body).await?;
        self.check_http(method, reply.status, &reply.body)?;
        let envelope: Envelope<R> = decode(method, &reply.body)?;
        if let Some(err) = envelope.error {
            if err.code == METHOD_NOT_FOUND {
                return Err(self.unavailable(method));
            }
            return Err(Error::Rpc {
                method: method.to_owned(),
                code: err.code,
                message: err.message,
            });
        }
        let result = envelope.result.ok_or_else(|| Error::Decode {
            method: method.to_owned(),
            source: serde::de::Error::custom("neither result nor error in the JSON-RPC answer"),
            snippet: snippet(&reply.body),
        })?;
        check_status(method, &result)?;
        Ok(result)
    }

    /// Calls one of monerod's "other" endpoints, such as `/get_height`, with a JSON body.
    pub async fn other<P: Serialize, R: RpcResponse>(&self, path: &str, body: &P) -> Result<R> {
        let reply = self.other_raw(path, body).await?;
        let result: R = decode(path, &reply)?;
        check_status(path, &result)?;
        Ok(result)
    }

    /// Like [`DaemonClient::other`], but returns the body undecoded after the HTTP checks.
    pub(crate) async fn other_raw<P: Serialize>(&self, path: &str, body: &P) -> Result<Bytes> {
        let request = encode(path, body)?;
        let reply = self.transport.post(path, path, request).await?;
        self.check_http(path, reply.status, &reply.body)?;
        Ok(reply.body)
    }

    /// Like [`DaemonClient::json_rpc`], but returns the body undecoded after the HTTP checks.
    pub(crate) async fn json_rpc_raw(&self, method: &str) -> Result<Bytes> {
        let body = Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":"0","method":"{method}"}}"#
        ));
        let reply = self.transport.post(method, "/json_rpc", body).await?;
        self.check_http(method, reply.status, &reply.body)?;
        Ok(reply.body)
    }

    fn check_http(&self, method: &str, status: StatusCode, body: &[u8]) -> Result<()> {
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(self.unavailable(method)),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Unauthorized {
                address: self.address().to_owned(),
                method: method.to_owned(),
            }),
            s => Err(Error::Http {
                method: method.to_owned(),
                status: s.as_u16(),
                snippet: snippet(body),
            }),
        }
    }

    pub(crate) fn unavailable(&self, method: &str) -> Error {
        Error::MethodUnavailable {
            address: self.address().to_owned(),
            method: method.to_owned(),
        }
    }
}

fn is_unit<P: Serialize>(p: &P) -> bool {
    // `()` serializes to JSON null; monerod wants such params left out.
    serde_json::to_value(p).is_ok_and(|v| v.is_null())
}

fn encode<T: Serialize>(method: &str, value: &T) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Config(format!("cannot encode the parameters of {method}: {e}")))
}

pub(crate) fn decode<R: DeserializeOwned>(method: &str, body: &[u8]) -> Result<R> {
    serde_json::from_slice(body).map_err(|source| Error::Decode {
        method: method.to_owned(),
        source,
        snippet: snippet(body),
    })
}

pub(crate) fn check_status<R: RpcResponse>(method: &str, result: &R) -> Result<()> {
    match result.status() {
        None | Some("OK") => Ok(()),
        Some(status) => Err(Error::Status {
            method: method.to_owned(),
            status: status.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_rejects_bad_urls_with_the_url_in_the_message() {
        let e = DaemonClient::new("not a url").unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        assert!(e.to_string().contains("not a url"), "{e}");
        let e = DaemonClient::new("ftp://127.0.0.1:18081").unwrap_err();
        assert!(e.to_string().contains("ftp"), "{e}");
        let e = DaemonClient::builder("http://127.0.0.1:18081")
            .socks5_proxy("http://127.0.0.1:9050")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("SOCKS5"), "{e}");
        let e = DaemonClient::builder("http://127.0.0.1:1")
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("timeout"), "{e}");
    }

    #[test]
    fn builder_reads_port_path_and_login_from_the_url() {
        let c = DaemonClient::new("http://u:p%40ss@[::1]:28081/monero/").unwrap();
        assert_eq!(c.address(), "[::1]:28081");
        let e = c.transport.endpoint();
        assert_eq!(e.base_path, "/monero");
        assert_eq!(e.login, Some(("u".into(), Password("p@ss".into()))));
        let c = DaemonClient::new("http://node.example").unwrap();
        assert_eq!(c.address(), "node.example:18081");
        assert_eq!(c.transport.endpoint().base_path, "");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = DaemonClient::builder("http://127.0.0.1:1")
            .login("alice", "s3cret-pass")
            .build()
            .unwrap();
        let s = format!("{c:?}");
        assert!(s.contains("alice"));
        assert!(!s.contains("s3cret-pass"), "{s}");
        let b = DaemonClient::builder("http://127.0.0.1:1").login("alice", "s3cret-pass");
        assert!(!format!("{b:?}").contains("s3cret-pass"));
    }
}
