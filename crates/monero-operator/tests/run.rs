//! `monero-operator run` as a process, against a stand-in API server on
//! loopback (hack/bench-apiserver.py: empty lists, watches held open): it
//! connects, opens its watches, reports ready, and stops on SIGTERM; with no
//! API server it is not ready and still stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let port = free_port().unwrap();
        let log = dir.join("operator.log");
        let child = Command::new(env!("CARGO_BIN_EXE_monero-operator"))
            .args([
                "run",
                "--no-leader-election",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
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
    wait_until("/readyz 200 and 15 open watches", DEADLINE, || {
        http_get(op.port, "/readyz").is_ok_and(|(code, _)| code == 200)
            && stats(api_port)["open_watches"] == 15
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", op.log(), stats(api_port)));
    let s = stats(api_port);
    assert_eq!(s["unexpected"], serde_json::json!([]), "{s}");
    // Each controller watches only its own kind's children.
    let secret_selectors = s["selectors"]["/api/v1/secrets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(secret_selectors.len(), 3, "{s}");
    for sel in &secret_selectors {
        let sel = sel.as_str().unwrap();
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
