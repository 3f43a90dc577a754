//! `monero-operator run` as a process, against a stand-in API server on
//! loopback (hack/bench-apiserver.py: empty lists, watches held open): it
//! connects, opens its watches, reports ready, and stops on SIGTERM; with no
//! API server it is not ready and still stops. With leader election, against
//! a stand-in that also serves the Lease ([`LeaseApi`]): a leader whose API
//! server stops answering steps down within its renew deadline, and one that
//! stops on SIGTERM releases the Lease.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use monero_testkit::{Process, TempDir, free_port, http_get, skip_unless_installed, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\n\
             users:\n- name: t\n  user: {{}}\ncontexts:\n- name: t\n  context: {{cluster: t, user: t}}\ncurrent-context: t\n"
        ),
    )
    .unwrap();
    path
}

struct Operator {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Operator {
    fn start(dir: &Path, kubeconfig: &Path) -> Operator {
        Operator::start_with(dir, kubeconfig, &["--no-leader-election"])
    }

    fn start_with(dir: &Path, kubeconfig: &Path, flags: &[&str]) -> Operator {
        let port = free_port().unwrap();
        let log = dir.join("operator.log");
        let child = Command::new(env!("CARGO_BIN_EXE_monero-operator"))
            .args(["run", "--listen", &format!("127.0.0.1:{port}")])
            .args(flags)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        Operator { child, port, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit by itself: how it exited, and when.
    fn exited(&mut self, within: Duration) -> (ExitStatus, Instant) {
        let mut exit = None;
        wait_until("monero-operator to exit", within, || {
            exit = self
                .child
                .try_wait()
                .unwrap()
                .map(|status| (status, Instant::now()));
            exit.is_some()
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.log()));
        exit.unwrap()
    }

    /// SIGTERM, then the time it took to exit and whether it exited cleanly.
    fn terminate(&mut self) -> (Duration, bool) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (start.elapsed(), status.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "monero-operator did not stop within {DEADLINE:?} of SIGTERM:\n{}",
            self.log()
        );
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn stats(port: u16) -> serde_json::Value {
    let (_, body) = http_get(port, "/__bench/stats").unwrap();
    serde_json::from_str(&body).unwrap()
}

#[test]
fn run_connects_watches_its_children_reports_ready_and_stops_on_sigterm() {
    // python3 runs the stand-in API server.
    if skip_unless_installed(&[("python3", "python3")]) {
        return;
    }
    let dir = TempDir::new("operator-run").unwrap();
    let port_file = dir.path().join("port");
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("hack/bench-apiserver.py")).args([
        "--port-file",
        port_file.to_str().unwrap(),
        "--bookmark-interval",
        "1",
    ]);
    let _api = Process::spawn("bench-apiserver", cmd, dir.path().join("api.log")).unwrap();
    wait_until("the stand-in API server", DEADLINE, || {
        std::fs::read_to_string(&port_file).is_ok_and(|s| !s.trim().is_empty())
    })
    .unwrap();
    let api_port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let mut op = Operator::start(dir.path(), &kubeconfig(dir.path(), api_port));
    // 3 controllers x (their kind + 4 owned kinds), and the 6 caches the
    // reconciles read from (StatefulSets, Services, Secrets, PDBs, Pods with
    // the managed-by label; the Secrets the operator made once).
    wait_until("/readyz 200 and 21 open watches", DEADLINE, || {
        http_get(op.port, "/readyz").is_ok_and(|(code, _)| code == 200)
            && stats(api_port)["open_watches"] == 21
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", op.log(), stats(api_port)));
    let s = stats(api_port);
    assert_eq!(s["unexpected"], serde_json::json!([]), "{s}");
    // Each controller watches only its own kind's children.
    let secret_selectors = s["selectors"]["/api/v1/secrets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(secret_selectors.len(), 5, "{s}");
    let caches = [
        "app.kubernetes.io/managed-by=monero-operator",
        "app.kubernetes.io/created-by=monero-operator",
    ];
    for sel in &secret_selectors {
        let sel = sel.as_str().unwrap();
        if caches.contains(&sel) {
            continue;
        }
        assert!(
            sel.contains("app.kubernetes.io/managed-by=monero-operator")
                && sel.contains("utxo.com.br/kind="),
            "{sel}"
        );
    }
    assert_eq!(http_get(op.port, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(op.port, "/metrics").unwrap().0, 200);

    let (took, clean) = op.terminate();
    assert!(clean, "{}", op.log());
    assert!(took < Duration::from_secs(25), "took {took:?}");
    assert!(!op.log().contains("panicked"), "{}", op.log());
}

#[test]
fn without_an_api_server_it_is_not_ready_and_still_stops() {
    let dir = TempDir::new("operator-noapi").unwrap();
    // A port nothing listens on.
    let dead = free_port().unwrap();
    let mut op = Operator::start(dir.path(), &kubeconfig(dir.path(), dead));
    wait_until("/healthz", DEADLINE, || {
        http_get(op.port, "/healthz").is_ok_and(|(c, _)| c == 200)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log()));
    wait_until("a failed attempt to reach the API server", DEADLINE, || {
        op.log().contains("cannot reach the API server")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log()));
    assert_eq!(http_get(op.port, "/readyz").unwrap().0, 503);
    let (_, clean) = op.terminate();
    assert!(clean, "{}", op.log());
}

/// What [`LeaseApi`] has seen and holds.
#[derive(Default)]
struct LeaseState {
    lease: Option<Value>,
    version: u64,
    /// Once set, every Lease request is read and never answered.
    hang: bool,
    /// When each write of the Lease was answered.
    writes: Vec<Instant>,
    /// Lease requests left hanging.
    hung: usize,
}

/// A stand-in API server: `/version`, empty lists, watches held open, and the
/// Lease, in memory, until [`LeaseApi::hang`]; then it accepts each Lease
/// request and never replies, as an API server paused with SIGSTOP does.
/// (hack/bench-apiserver.py serves no Lease.)
struct LeaseApi {
    port: u16,
    state: Arc<Mutex<LeaseState>>,
}

impl LeaseApi {
    fn start() -> LeaseApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(LeaseState::default()));
        let s = state.clone();
        // Threads left behind end with the test process.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        LeaseApi { port, state }
    }

    fn hang(&self) {
        self.state.lock().unwrap().hang = true;
    }

    fn writes(&self) -> usize {
        self.state.lock().unwrap().writes.len()
    }

    fn last_write(&self) -> Instant {
        *self.state.lock().unwrap().writes.last().unwrap()
    }

    fn hung(&self) -> usize {
        self.state.lock().unwrap().hung
    }

    fn lease(&self) -> Option<Value> {
        self.state.lock().unwrap().lease.clone()
    }
}

/// One keep-alive connection: requests in order, each answered before the next is read.
fn serve(conn: TcpStream, state: &Mutex<LeaseState>) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path.contains("/leases") {
            if state.lock().unwrap().hang {
                state.lock().unwrap().hung += 1;
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            let (code, value) = lease_request(state, &method, path, &body);
            respond(&mut out, code, &value);
        } else if path == "/version" {
            respond(
                &mut out,
                200,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}),
            );
        } else if method == "GET"
            && query
                .split('&')
                .any(|q| q == "watch=true" || q == "watch=1")
        {
            // Held open with nothing to say, well within its timeoutSeconds.
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        } else if method == "GET" {
            respond(
                &mut out,
                200,
                &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}),
            );
        } else {
            respond(&mut out, 404, &not_found(path));
        }
    }
}

fn lease_request(state: &Mutex<LeaseState>, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    match method {
        "GET" => match &s.lease {
            Some(lease) => (200, lease.clone()),
            None => (404, not_found(path)),
        },
        "POST" | "PUT" => {
            let mut lease: Value = serde_json::from_slice(body).unwrap();
            s.version += 1;
            lease["metadata"]["resourceVersion"] = json!(s.version.to_string());
            s.lease = Some(lease.clone());
            s.writes.push(Instant::now());
            (if method == "POST" { 201 } else { 200 }, lease)
        }
        _ => (404, not_found(path)),
    }
}

fn not_found(path: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("{path} not found"), "reason": "NotFound", "code": 404})
}

fn respond(out: &mut TcpStream, code: u16, value: &Value) {
    let body = serde_json::to_vec(value).unwrap();
    let head = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = out
        .write_all(head.as_bytes())
        .and_then(|()| out.write_all(&body));
}

/// Short enough for a test, in the proportions of the defaults (15, 10, 2).
const LEASE_DURATION: Duration = Duration::from_secs(6);
const RENEW_DEADLINE: Duration = Duration::from_secs(3);
const ELECTION_FLAGS: [&str; 6] = [
    "--lease-duration",
    "6",
    "--renew-deadline",
    "3",
    "--retry-period",
    "1",
];

#[test]
fn a_leader_whose_api_server_stops_answering_steps_down_within_its_renew_deadline() {
    let api = LeaseApi::start();
    let dir = TempDir::new("operator-lease-hang").unwrap();
    let mut op = Operator::start_with(
        dir.path(),
        &kubeconfig(dir.path(), api.port),
        &ELECTION_FLAGS,
    );
    // Taken, then renewed three times: it leads past its renew deadline while renewals succeed.
    wait_until("the lease taken and renewed three times", DEADLINE, || {
        op.log().contains("leading") && api.writes() >= 4
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log()));
    assert!(op.child.try_wait().unwrap().is_none(), "{}", op.log());
    assert_eq!(
        api.lease().unwrap()["spec"]["holderIdentity"],
        "monero-operator"
    );

    api.hang();
    let (status, at) = op.exited(DEADLINE);
    let log = op.log();
    // The renewal clock starts before each renewal is sent, so no later than the stand-in answered it.
    let since = at.duration_since(api.last_write());
    assert!(!status.success(), "{status:?}\n{log}");
    assert!(
        since <= RENEW_DEADLINE + Duration::from_millis(1500) && since < LEASE_DURATION,
        "exited {since:?} after its last renewal, renew deadline {RENEW_DEADLINE:?}:\n{log}"
    );
    assert!(
        since > RENEW_DEADLINE - Duration::from_secs(1),
        "exited {since:?} after its last renewal, before its renew deadline:\n{log}"
    );
    assert!(api.hung() >= 1, "a Lease request was left hanging");
    assert!(
        log.contains("lost the lease") && log.contains("renew deadline"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_leader_stopped_by_sigterm_releases_the_lease() {
    let api = LeaseApi::start();
    let dir = TempDir::new("operator-lease-release").unwrap();
    let mut op = Operator::start_with(
        dir.path(),
        &kubeconfig(dir.path(), api.port),
        &ELECTION_FLAGS,
    );
    wait_until("the lease taken and renewed", DEADLINE, || {
        op.log().contains("leading") && api.writes() >= 2
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log()));
    let (took, clean) = op.terminate();
    assert!(clean, "{}", op.log());
    // The controllers may finish only within the renew deadline, then the release.
    assert!(
        took < RENEW_DEADLINE + Duration::from_secs(5),
        "took {took:?}"
    );
    let lease = api.lease().unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease}");
}
