//! What monerod never sends: each case against a tiny HTTP (or SOCKS5) server in this
//! file, bound to 127.0.0.1 only. Spawned tasks end when each test's runtime drops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use monero_rpc::{DaemonClient, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the test server read it.
#[derive(Debug, Clone)]
struct Request {
    /// Which accepted connection (0, 1, ...) carried it.
    conn: usize,
    method: String,
    path: String,
    /// Header names lowercased.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Answers a request with raw HTTP bytes, or `None` to never answer.
type Handler = Arc<dyn Fn(&Request) -> Option<Vec<u8>> + Send + Sync>;

/// A canned HTTP/1.1 server with keep-alive; returns its address and the requests seen.
async fn serve(handler: Handler) -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut conn = 0;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(handle_connection(
                stream,
                conn,
                handler.clone(),
                log.clone(),
            ));
            conn += 1;
        }
    });
    (addr, seen)
}

async fn handle_connection(
    mut stream: TcpStream,
    conn: usize,
    handler: Handler,
    log: Arc<Mutex<Vec<Request>>>,
) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf, conn).await else {
            return;
        };
        log.lock().unwrap().push(request.clone());
        match handler(&request) {
            Some(response) => {
                if stream.write_all(&response).await.is_err() {
                    return;
                }
            }
            None => {
                // Hold the connection open and never answer.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Reads one request (headers, then a Content-Length body) from `stream`; `buf` keeps
/// bytes that arrived past it.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, conn: usize) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let method = start.next()?.to_owned();
    let path = start.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(Request {
        conn,
        method,
        path,
        headers,
        body,
    })
}

fn response(status: &str, extra_headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for h in extra_headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn ok_json(body: &str) -> Vec<u8> {
    response(
        "200 OK",
        &["Content-Type: application/json"],
        body.as_bytes(),
    )
}

/// A server that answers every request with the same bytes.
async fn canned(reply: Vec<u8>) -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    serve(Arc::new(move |_: &Request| Some(reply.clone()))).await
}

fn client(addr: SocketAddr) -> DaemonClient {
    DaemonClient::builder(format!("http://{addr}"))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn assert_names(e: &Error, method: &str) {
    let s = e.to_string();
    assert!(s.contains(method), "{s:?} does not name {method:?}");
}

#[tokio::test]
async fn garbage_body_is_a_decode_error_with_the_start_of_the_body() {
    let (addr, seen) = canned(ok_json("not json at all")).await;
    let e = client(addr).get_info().await.unwrap_err();
    match &e {
        Error::Decode {
            method, snippet, ..
        } => {
            assert_eq!(method, "get_info");
            assert!(snippet.contains("not json"), "{snippet:?}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert_names(&e, "get_info");
    assert!(!e.is_transient());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/json_rpc");
    let call: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(call["method"], "get_info");
    assert_eq!(call["jsonrpc"], "2.0");
    assert!(call.get("params").is_none(), "no params for (): {call}");
}

#[tokio::test]
async fn body_over_the_cap_by_content_length_is_refused() {
    let big = vec![b'x'; 10 * 1024];
    let (addr, _) = canned(response("200 OK", &[], &big)).await;
    let c = DaemonClient::builder(format!("http://{addr}"))
        .timeout(Duration::from_secs(5))
        .max_response_bytes(1024)
        .build()
        .unwrap();
    let e = c.get_info().await.unwrap_err();
    assert!(
        matches!(e, Error::ResponseTooLarge { limit: 1024, ref method } if method == "get_info"),
        "{e:?}"
    );
    assert_names(&e, "get_info");
}

#[tokio::test]
async fn chunked_body_over_the_cap_is_refused_while_streaming() {
    // 10 chunks of 1 KiB, no Content-Length: only the streaming cap can catch it.
    let mut raw =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..10 {
        raw.extend_from_slice(b"400\r\n");
        raw.extend_from_slice(&[b' '; 1024]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let (addr, _) = canned(raw).await;
    let c = DaemonClient::builder(format!("http://{addr}"))
        .timeout(Duration::from_secs(5))
        .max_response_bytes(1024)
        .build()
        .unwrap();
    let e = c.get_height().await.unwrap_err();
    assert!(
        matches!(e, Error::ResponseTooLarge { limit: 1024, ref method } if method == "/get_height"),
        "{e:?}"
    );
    assert_names(&e, "/get_height");
}

#[tokio::test]
async fn chunked_body_under_the_cap_is_read_whole() {
    // The control for the case above: the same framing, small enough, decodes.
    let body = br#"{"height":7,"hash":"ab","status":"OK","untrusted":false}"#;
    let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(10) {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let (addr, _) = canned(raw).await;
    let c = DaemonClient::builder(format!("http://{addr}"))
        .max_response_bytes(1024)
        .build()
        .unwrap();
    let h = c.get_height().await.unwrap();
    assert_eq!((h.height, h.hash.as_str()), (7, "ab"));
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    let (addr, seen) = serve(Arc::new(|_: &Request| None)).await;
    let c = DaemonClient::builder(format!("http://{addr}"))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(5), c.get_info())
        .await
        .expect("the client's own 300 ms timeout did not fire within 5 s")
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e, Error::Timeout { ref method, timeout, .. }
            if method == "get_info" && timeout == Duration::from_millis(300)),
        "{e:?}"
    );
    assert!(
        took >= Duration::from_millis(250),
        "gave up early: {took:?}"
    );
    assert_names(&e, "get_info");
    assert!(e.is_transient());
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the request did reach the server"
    );
}

#[tokio::test]
async fn http_500_is_an_http_error() {
    let (addr, _) = canned(response(
        "500 Internal Server Error",
        &[],
        b"something broke",
    ))
    .await;
    let e = client(addr).get_info().await.unwrap_err();
    match &e {
        Error::Http {
            method,
            status,
            snippet,
        } => {
            assert_eq!((method.as_str(), *status), ("get_info", 500));
            assert!(snippet.contains("something broke"), "{snippet:?}");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_names(&e, "get_info");
}

#[tokio::test]
async fn json_rpc_error_object_is_an_rpc_error() {
    let (addr, seen) = canned(ok_json(
        r#"{"id":"0","jsonrpc":"2.0","error":{"code":-7,"message":"Block not accepted"}}"#,
    ))
    .await;
    let e = client(addr).submit_block(&["0011"]).await.unwrap_err();
    match &e {
        Error::Rpc {
            method,
            code,
            message,
        } => {
            assert_eq!(method, "submit_block");
            assert_eq!(*code, -7);
            assert_eq!(message, "Block not accepted");
        }
        other => panic!("expected Rpc, got {other:?}"),
    }
    assert_names(&e, "submit_block");
    assert!(e.to_string().contains("Block not accepted"), "{e}");
    let call: serde_json::Value = serde_json::from_slice(&seen.lock().unwrap()[0].body).unwrap();
    assert_eq!(call["params"], serde_json::json!(["0011"]));
}

#[tokio::test]
async fn json_rpc_method_not_found_is_method_unavailable() {
    let (addr, _) = canned(ok_json(
        r#"{"id":"0","jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"}}"#,
    ))
    .await;
    let e = client(addr).get_connections().await.unwrap_err();
    assert!(
        matches!(e, Error::MethodUnavailable { ref method, ref address }
            if method == "get_connections" && *address == addr.to_string()),
        "{e:?}"
    );
    assert_names(&e, "get_connections");
}

#[tokio::test]
async fn busy_status_is_a_transient_status_error() {
    let (addr, _) = canned(ok_json(
        r#"{"id":"0","jsonrpc":"2.0","result":{"status":"BUSY"}}"#,
    ))
    .await;
    let e = client(addr).get_info().await.unwrap_err();
    assert!(
        matches!(e, Error::Status { ref method, ref status } if method == "get_info" && status == "BUSY"),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_names(&e, "get_info");
}

#[tokio::test]
async fn http_404_on_an_other_endpoint_is_method_unavailable() {
    let (addr, seen) = canned(response("404 Not Found", &[], b"")).await;
    let e = client(addr).get_height().await.unwrap_err();
    assert!(
        matches!(e, Error::MethodUnavailable { ref method, .. } if method == "/get_height"),
        "{e:?}"
    );
    assert_names(&e, "/get_height");
    assert_eq!(seen.lock().unwrap()[0].path, "/get_height");
}

#[tokio::test]
async fn refused_connection_is_a_connect_error_naming_the_address() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let c = DaemonClient::builder(format!("http://127.0.0.1:{port}"))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let e = c.get_info().await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.is_transient());
}

// ---- digest login ----------------------------------------------------------------

const USER: &str = "alice";
const PASS: &str = "s3cret";
const REALM: &str = "monero-rpc";

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `k="v", k2=v2` into a map; the test values hold no quotes or commas.
fn auth_params(header: &str) -> HashMap<String, String> {
    let rest = header
        .strip_prefix("Digest ")
        .unwrap_or_else(|| panic!("not a digest header: {header}"));
    rest.split(',')
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

fn challenge(nonce: &str, stale: bool) -> Vec<u8> {
    let h = format!(
        r#"WWW-authenticate: Digest qop="auth",algorithm=MD5,realm="{REALM}",nonce="{nonce}",stale={stale}"#
    );
    response("401 Unauthorized", &[&h], b"")
}

/// What a digest server saw and decided, per request.
#[derive(Debug, Default)]
struct DigestState {
    nonce: String,
    /// The next `nc` the current nonce accepts.
    next_nc: u32,
    /// Answer request number N (0-based) with a stale challenge and a new nonce.
    stale_at: Option<usize>,
    requests: usize,
    /// Problems found in Authorization headers; must stay empty.
    problems: Vec<String>,
}

/// Checks an Authorization header per RFC 2617 with qop=auth.
fn check_authorization(req: &Request, st: &DigestState) -> Result<(), String> {
    let header = req.header("authorization").ok_or("no Authorization")?;
    let p = auth_params(header);
    let get = |k: &str| p.get(k).cloned().ok_or(format!("no {k} in {header}"));
    if get("username")? != USER || get("realm")? != REALM {
        return Err(format!("wrong username or realm in {header}"));
    }
    if get("qop")? != "auth" || !get("algorithm")?.eq_ignore_ascii_case("MD5") {
        return Err(format!("wrong qop or algorithm in {header}"));
    }
    let uri = get("uri")?;
    if uri != req.path {
        return Err(format!("uri {uri} is not the request path {}", req.path));
    }
    let (nonce, nc, cnonce) = (get("nonce")?, get("nc")?, get("cnonce")?);
    if cnonce.is_empty() {
        return Err("empty cnonce".into());
    }
    let ha1 = md5_hex(&format!("{USER}:{REALM}:{PASS}"));
    let ha2 = md5_hex(&format!("{}:{uri}", req.method));
    let expected = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    if get("response")? != expected {
        return Err(format!("response should be {expected} in {header}"));
    }
    if nonce != st.nonce {
        return Err(format!("nonce {nonce} is not the current {}", st.nonce));
    }
    if nc != format!("{:08x}", st.next_nc) {
        return Err(format!("nc {nc}, expected {:08x}", st.next_nc));
    }
    Ok(())
}

async fn digest_server(
    stale_at: Option<usize>,
) -> (
    SocketAddr,
    Arc<Mutex<Vec<Request>>>,
    Arc<Mutex<DigestState>>,
) {
    let state = Arc::new(Mutex::new(DigestState {
        nonce: "abc".into(),
        next_nc: 1,
        stale_at,
        ..Default::default()
    }));
    let st = state.clone();
    let (addr, seen) = serve(Arc::new(move |req: &Request| {
        let mut st = st.lock().unwrap();
        let n = st.requests;
        st.requests += 1;
        if req.header("authorization").is_none() {
            return Some(challenge(&st.nonce.clone(), false));
        }
        if let Err(problem) = check_authorization(req, &st) {
            st.problems.push(format!("request {n}: {problem}"));
            return Some(challenge(&st.nonce.clone(), false));
        }
        if st.stale_at == Some(n) {
            st.nonce = "def".into();
            st.next_nc = 1;
            return Some(challenge("def", true));
        }
        st.next_nc += 1;
        Some(ok_json(
            r#"{"id":"0","jsonrpc":"2.0","result":{"count":5,"status":"OK","untrusted":false}}"#,
        ))
    }))
    .await;
    (addr, seen, state)
}

fn login_client(addr: SocketAddr) -> DaemonClient {
    DaemonClient::builder(format!("http://{addr}"))
        .timeout(Duration::from_secs(5))
        .login(USER, PASS)
        .build()
        .unwrap()
}

fn nc_of(req: &Request) -> Option<String> {
    req.header("authorization")
        .map(|h| auth_params(h)["nc"].clone())
}

#[tokio::test]
async fn digest_login_answers_the_challenge_then_reuses_the_session() {
    let (addr, seen, state) = digest_server(None).await;
    let c = login_client(addr);

    assert_eq!(c.get_block_count().await.unwrap().count, 5);
    assert_eq!(c.round_trips(), 2, "challenge, then the answered request");

    assert_eq!(c.get_block_count().await.unwrap().count, 5);
    assert_eq!(c.round_trips(), 3, "one round trip once logged in");

    let st = state.lock().unwrap();
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|r| r.conn == 0), "all on one connection");
    assert_eq!(nc_of(&seen[0]), None);
    assert_eq!(nc_of(&seen[1]).as_deref(), Some("00000001"));
    assert_eq!(nc_of(&seen[2]).as_deref(), Some("00000002"));
    let cnonce = |r: &Request| auth_params(r.header("authorization").unwrap())["cnonce"].clone();
    assert_eq!(cnonce(&seen[1]), cnonce(&seen[2]));
}

#[tokio::test]
async fn digest_stale_nonce_makes_the_client_log_in_again() {
    // Requests: 0 no login -> 401; 1 nc=1 -> 200; 2 nc=2 -> 401 stale, new nonce;
    // 3 new nonce nc=1 -> 200.
    let (addr, seen, state) = digest_server(Some(2)).await;
    let c = login_client(addr);
    assert_eq!(c.get_block_count().await.unwrap().count, 5);
    assert_eq!(c.round_trips(), 2);
    assert_eq!(c.get_block_count().await.unwrap().count, 5);
    assert_eq!(
        c.round_trips(),
        4,
        "the stale answer costs one extra round trip"
    );

    let st = state.lock().unwrap();
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    assert_eq!(st.nonce, "def");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    let nonce = |r: &Request| auth_params(r.header("authorization").unwrap())["nonce"].clone();
    assert_eq!(nonce(&seen[2]), "abc");
    assert_eq!(nonce(&seen[3]), "def");
    assert_eq!(nc_of(&seen[3]).as_deref(), Some("00000001"));
}

#[tokio::test]
async fn digest_wrong_password_is_unauthorized() {
    let (addr, _, state) = digest_server(None).await;
    let c = DaemonClient::builder(format!("http://{addr}"))
        .timeout(Duration::from_secs(5))
        .login(USER, "wrong")
        .build()
        .unwrap();
    let e = c.get_block_count().await.unwrap_err();
    assert!(
        matches!(e, Error::Unauthorized { ref method, .. } if method == "get_block_count"),
        "{e:?}"
    );
    assert_names(&e, "get_block_count");
    assert_eq!(c.round_trips(), 2, "no retry loop on a plain refusal");
    assert_eq!(state.lock().unwrap().problems.len(), 1);
}

// ---- SOCKS5 --------------------------------------------------------------------

/// What the SOCKS5 proxy was asked to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SocksTarget {
    atyp: u8,
    host: String,
    port: u16,
}

/// A no-auth, CONNECT-only SOCKS5 proxy that relays every connection to `upstream`
/// (never to the requested destination) and records what was requested.
async fn socks5_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<SocksTarget>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let targets = Arc::new(Mutex::new(Vec::new()));
    let log = targets.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let _ = socks5_session(stream, upstream, log).await;
            });
        }
    });
    (addr, targets)
}

async fn socks5_session(
    mut client: TcpStream,
    upstream: SocketAddr,
    log: Arc<Mutex<Vec<SocksTarget>>>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    assert_eq!(head[0], 5, "SOCKS version");
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    if !methods.contains(&0) {
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    assert_eq!(&req[..3], &[5, 1, 0], "CONNECT request");
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await?;
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    log.lock().unwrap().push(SocksTarget {
        atyp: req[3],
        host,
        port: u16::from_be_bytes(port),
    });
    let mut server = TcpStream::connect(upstream).await?;
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

#[tokio::test]
async fn socks5_proxy_gets_the_host_name_unresolved() {
    let (http, seen) = canned(ok_json(
        r#"{"height":42,"hash":"ff","status":"OK","untrusted":false}"#,
    ))
    .await;
    let (proxy, targets) = socks5_proxy(http).await;
    let c = DaemonClient::builder("http://monerod.invalid:18081")
        .timeout(Duration::from_secs(5))
        .socks5_proxy(format!("socks5h://{proxy}"))
        .build()
        .unwrap();
    assert_eq!(c.get_height().await.unwrap().height, 42);
    assert_eq!(
        *targets.lock().unwrap(),
        vec![SocksTarget {
            atyp: 3,
            host: "monerod.invalid".into(),
            port: 18081,
        }]
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].path, "/get_height");
    assert_eq!(seen[0].header("host"), Some("monerod.invalid:18081"));
}

#[tokio::test]
async fn socks5_proxy_down_is_a_connect_error_naming_socks5() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let c = DaemonClient::builder("http://monerod.invalid:18081")
        .timeout(Duration::from_secs(5))
        .socks5_proxy(format!("socks5h://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let e = c.get_height().await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    let s = e.to_string();
    assert!(s.contains("SOCKS5"), "{s}");
    assert!(s.contains(&format!("127.0.0.1:{port}")), "{s}");
    assert!(s.contains("monerod.invalid:18081"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_login_on_fresh_connections_never_races_the_retry() {
    // The answer to a challenge goes out on the connection that got the 401, right after
    // its body was read; it must wait for that connection to be ready again rather than
    // take "not ready" for a closed connection and lose the session.
    let (addr, seen, state) = digest_server(None).await;
    for i in 0..200 {
        let c = login_client(addr);
        let r = c.get_block_count().await;
        if let Err(e) = &r {
            let seen = seen.lock().unwrap();
            let tail: Vec<_> = seen[seen.len().saturating_sub(4)..]
                .iter()
                .map(|r| (r.conn, r.header("authorization").is_some()))
                .collect();
            panic!("call {i}: {e:?}; last requests (connection, with login): {tail:?}");
        }
        assert_eq!(c.round_trips(), 2, "call {i}");
        // Each fresh client is a fresh connection, hence a fresh server nonce state.
        let mut st = state.lock().unwrap();
        st.next_nc = 1;
    }
    assert!(state.lock().unwrap().problems.is_empty());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 400);
}
