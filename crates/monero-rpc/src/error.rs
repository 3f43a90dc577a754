use std::time::Duration;

/// Everything a call to monerod can end in, so that callers can match on the cause
/// instead of parsing messages.
///
/// `address` is the daemon's `host:port` as configured; `method` the RPC method or path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client was configured with something it cannot use.
    #[error("invalid monerod client configuration: {0}")]
    Config(String),

    /// No TCP (or SOCKS5) connection could be made: monerod is down, the port is wrong,
    /// or the proxy refused.
    #[error("cannot connect to monerod at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },

    /// The connection broke while a request was in flight.
    #[error("connection to monerod at {address} failed during {method}: {source}")]
    Transport {
        address: String,
        method: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The whole call, connecting included, did not finish within the configured timeout.
    #[error("monerod at {address} did not answer {method} within {timeout:?}")]
    Timeout {
        address: String,
        method: String,
        timeout: Duration,
    },

    /// monerod demands a login and the configured one is missing or wrong.
    #[error("monerod at {address} refused the RPC login for {method}")]
    Unauthorized { address: String, method: String },

    /// The method does not exist on this RPC port, typically because the port is
    /// restricted (`--restricted-rpc` or `--rpc-restricted-bind-port`): monerod answers
    /// JSON-RPC code -32601 or HTTP 404.
    #[error(
        "{method} is not available on the RPC of {address} (restricted RPC or an older monerod)"
    )]
    MethodUnavailable { address: String, method: String },

    /// monerod answered with a JSON-RPC `error` object.
    #[error("monerod returned JSON-RPC error {code} for {method}: {message}")]
    Rpc {
        method: String,
        code: i64,
        message: String,
    },

    /// monerod answered, but with a `status` other than `OK`, such as `BUSY` while it syncs.
    #[error("monerod answered {method} with status {status:?}")]
    Status { method: String, status: String },

    /// An HTTP status that none of the cases above explains.
    #[error("monerod answered {method} with HTTP {status}: {snippet}")]
    Http {
        method: String,
        status: u16,
        snippet: String,
    },

    /// The body is larger than the configured cap; it was not read further.
    #[error("response to {method} is larger than the cap of {limit} bytes")]
    ResponseTooLarge { method: String, limit: usize },

    /// The body could not be decoded into the expected type.
    #[error("cannot decode the response to {method}: {source}; body starts with {snippet:?}")]
    Decode {
        method: String,
        #[source]
        source: serde_json::Error,
        snippet: String,
    },
}

impl Error {
    /// True when retrying the same call later may succeed (daemon down, busy or slow).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Transport { .. } | Error::Timeout { .. }
        ) || matches!(self, Error::Status { status, .. } if status == "BUSY")
    }
}

/// The longest part of a body an error message carries, so that a garbage response of
/// megabytes does not end up in a log line.
pub(crate) const SNIPPET_LEN: usize = 200;

pub(crate) fn snippet(body: &[u8]) -> String {
    let end = body.len().min(SNIPPET_LEN);
    let mut s = String::from_utf8_lossy(&body[..end]).into_owned();
    if body.len() > SNIPPET_LEN {
        s.push('…');
    }
    s
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
