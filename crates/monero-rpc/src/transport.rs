//! A small HTTP/1.1 connection pool in which every connection carries its own digest
//! session.
//!
//! General-purpose clients (reqwest, hyper-util's pool) hide which pooled connection a
//! request goes out on, but monerod binds each digest nonce to one TCP connection and
//! wants `nc` to grow by exactly one on it. Answering the challenge on the connection
//! that issued it is what keeps a logged-in call at one round trip; so this module keeps
//! the pool itself, on top of hyper's connection-level API.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::digest::{self, Session};
use crate::error::{Error, Result};

/// Where and how to reach monerod; fixed when the client is built.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: u16,
    /// A path prefix for a monerod behind a reverse proxy; empty or starting with `/`.
    pub base_path: String,
    pub proxy: Option<(String, u16)>,
    pub login: Option<(String, Password)>,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    pub max_idle_connections: usize,
}

impl Endpoint {
    /// `host:port`, as named in errors and sent as the Host header.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A password that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    session: Option<Session>,
    reused: bool,
}

pub(crate) struct Transport {
    endpoint: Endpoint,
    address: String,
    idle: Mutex<Vec<Conn>>,
    round_trips: AtomicU64,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("address", &self.address)
            .field("proxy", &self.endpoint.proxy)
            .field("login", &self.endpoint.login.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

/// A whole HTTP answer: status and body, the body read up to the size cap.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Transport {
    pub fn new(endpoint: Endpoint) -> Self {
        Transport {
            address: endpoint.address(),
            endpoint,
            idle: Mutex::new(Vec::new()),
            round_trips: AtomicU64::new(0),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// POSTs `body` to `path` under the configured timeout, connecting included.
    pub async fn post(&self, method: &str, path: &str, body: Bytes) -> Result<Reply> {
        let uri = format!("{}{}", self.endpoint.base_path, path);
        match tokio::time::timeout(self.endpoint.timeout, self.post_inner(method, &uri, body)).await
        {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                address: self.address.clone(),
                method: method.to_owned(),
                timeout: self.endpoint.timeout,
            }),
        }
    }

    async fn post_inner(&self, method: &str, uri: &str, body: Bytes) -> Result<Reply> {
        let mut conn = match self.take_idle().await {
            Some(c) => c,
            None => self.connect().await?,
        };
        // At most: one retry on a fresh connection if a pooled one was closed under us,
        // one to answer a challenge, one more if the server calls the nonce stale.
        let mut answered_challenge = false;
        for _ in 0..4 {
            // hyper takes a second request on a connection only once its dispatcher is
            // ready again, which may lag behind reading the previous (401) body; sending
            // early fails as "not ready", which must not pass for a closed connection
            // (that would drop the digest session and end in a spurious Unauthorized).
            if conn.sender.ready().await.is_err() && conn.reused {
                conn = self.connect().await?;
            }
            let request = self.request(&mut conn, uri, body.clone())?;
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let response = match conn.sender.send_request(request).await {
                Ok(r) => r,
                Err(e)
                    if conn.reused
                        && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) =>
                {
                    // The server closed an idle connection; the request never reached it.
                    conn = self.connect().await?;
                    continue;
                }
                Err(e) => return Err(self.transport_error(method, e)),
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                let Some((user, pass)) = &self.endpoint.login else {
                    return Err(self.unauthorized(method));
                };
                let challenge = digest::choose_challenge(
                    response
                        .headers()
                        .get_all(header::WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok()),
                );
                // Drain the small 401 body so the connection can carry the retry.
                let _ = self.read_body(method, response.into_body()).await?;
                let Some(challenge) = challenge else {
                    return Err(self.unauthorized(method));
                };
                // Credentials just computed for a fresh nonce that come back refused
                // without `stale` are wrong; a stale nonce earns one more try.
                if answered_challenge && !challenge.stale {
                    return Err(self.unauthorized(method));
                }
                answered_challenge = true;
                conn.session = Some(Session::new(challenge, user, &pass.0, digest::new_cnonce()));
                conn.reused = true;
                continue;
            }
            let body = self.read_body(method, response.into_body()).await?;
            conn.reused = true;
            self.put_idle(conn);
            return Ok(Reply { status, body });
        }
        Err(self.unauthorized(method))
    }

    fn request(&self, conn: &mut Conn, uri: &str, body: Bytes) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::post(uri)
            .header(header::HOST, &self.address)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_LENGTH, body.len());
        if let (Some(session), Some((user, _))) = (conn.session.as_mut(), &self.endpoint.login) {
            builder = builder.header(header::AUTHORIZATION, session.authorize(user, "POST", uri));
        }
        builder
            .body(Full::new(body))
            .map_err(|e| Error::Config(format!("cannot build a request for {uri}: {e}")))
    }

    async fn read_body(&self, method: &str, mut body: hyper::body::Incoming) -> Result<Bytes> {
        let limit = self.endpoint.max_response_bytes;
        let too_large = || Error::ResponseTooLarge {
            method: method.to_owned(),
            limit,
        };
        if let Some(len) = hyper::body::Body::size_hint(&body).exact()
            && len > limit as u64
        {
            return Err(too_large());
        }
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.transport_error(method, e))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limit {
                    return Err(too_large());
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(out))
    }

    async fn take_idle(&self) -> Option<Conn> {
        loop {
            let conn = self.idle.lock().ok()?.pop()?;
            let mut conn = conn;
            if conn.sender.ready().await.is_ok() {
                return Some(conn);
            }
        }
    }

    fn put_idle(&self, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.endpoint.max_idle_connections
        {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<Conn> {
        let connect_error = |source| Error::Connect {
            address: self.address.clone(),
            source,
        };
        let stream = match &self.endpoint.proxy {
            None => TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
                .await
                .map_err(connect_error)?,
            // The target's name goes to the proxy unresolved, so an .onion works and no
            // DNS query leaks around the proxy.
            Some((proxy_host, proxy_port)) => tokio_socks::tcp::Socks5Stream::connect(
                (proxy_host.as_str(), *proxy_port),
                (self.endpoint.host.as_str(), self.endpoint.port),
            )
            .await
            .map_err(|e| {
                connect_error(std::io::Error::other(format!(
                    "through SOCKS5 proxy {proxy_host}:{proxy_port}: {e}"
                )))
            })?
            .into_inner(),
        };
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_error(std::io::Error::other(e)))?;
        tokio::spawn(async move {
            // Ends when the connection closes; the error, if any, reaches the caller
            // through the request that was in flight.
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            session: None,
            reused: false,
        })
    }

    fn transport_error(&self, method: &str, e: hyper::Error) -> Error {
        Error::Transport {
            address: self.address.clone(),
            method: method.to_owned(),
            source: Box::new(e),
        }
    }

    fn unauthorized(&self, method: &str) -> Error {
        Error::Unauthorized {
            address: self.address.clone(),
            method: method.to_owned(),
        }
    }
}
