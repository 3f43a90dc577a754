//! The exporter binary against a real regtest monerod, checked with promtool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use monero_rpc::DaemonClient;
use monero_testkit::{
    Monerod, MonerodConfig, Process, TempDir, free_port, http_get, metric_value, wait_until,
};

/// A running `monero-exporter` on a loopback port.
struct ExporterProcess {
    port: u16,
    _process: Process,
    _tmp: TempDir,
}

fn start_exporter(monerod_url: &str, extra: &[&str]) -> ExporterProcess {
    let tmp = TempDir::new("exporter").unwrap();
    let port = free_port().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monero-exporter"));
    cmd.arg("--monerod-address")
        .arg(monerod_url)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--timeout")
        .arg("10s")
        .args(extra)
        .env("RUST_LOG", "debug");
    let process = Process::spawn("monero-exporter", cmd, tmp.path().join("log")).unwrap();
    wait_until(
        "the exporter to serve /healthz",
        Duration::from_secs(30),
        || http_get(port, "/healthz").is_ok_and(|(s, _)| s == 200),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", process.log_tail(4000)));
    ExporterProcess {
        port,
        _process: process,
        _tmp: tmp,
    }
}

fn scrape(port: u16) -> String {
    let (status, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(
        status, 200,
        "/metrics must answer 200 whatever monerod does: {body}"
    );
    body
}

/// `promtool check metrics` (Debian package `prometheus`) must accept the exposition.
fn promtool_accepts(text: &str) {
    if let Err(e) = monero_testkit::promtool_check_metrics(text) {
        panic!("{e}");
    }
}

/// Every collector's error counter is there, from zero, and still zero.
fn assert_no_collector_failed(text: &str, why: &str) {
    let counters: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("monero_exporter_collector_errors_total{"))
        .collect();
    assert_eq!(
        counters.len(),
        monero_exporter::collect::COLLECTORS.len(),
        "{why}:\n{text}"
    );
    assert!(counters.iter().all(|l| l.ends_with(" 0")), "{why}:\n{text}");
}

fn value(text: &str, series: &str) -> f64 {
    metric_value(text, series).unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_match_the_rpc_and_promtool_accepts_them() {
    let daemon = Monerod::start_default().unwrap();
    daemon.generate_blocks(7).unwrap();
    let exporter = start_exporter(&daemon.rpc_url(), &[]);
    let text = scrape(exporter.port);
    promtool_accepts(&text);

    let rpc = DaemonClient::new(&daemon.rpc_url()).unwrap();
    let info = rpc.get_info().await.unwrap();
    let header = rpc.get_last_block_header().await.unwrap().block_header;
    assert_eq!(value(&text, "monero_up"), 1.0);
    assert_eq!(value(&text, "monero_rpc_restricted"), 0.0);
    assert_eq!(
        value(&text, "monero_blockchain_height"),
        rpc.get_block_count().await.unwrap().count as f64
    );
    assert_eq!(value(&text, "monero_blockchain_height"), 8.0);
    assert_eq!(value(&text, "monero_blockchain_target_height"), 8.0);
    assert_eq!(value(&text, "monero_synchronized"), 1.0);
    assert_eq!(value(&text, "monero_difficulty"), info.difficulty as f64);
    assert_eq!(
        value(&text, "monero_last_block_timestamp_seconds"),
        header.timestamp as f64
    );
    assert_eq!(
        value(&text, "monero_last_block_reward_xmr"),
        header.reward as f64 / 1e12
    );
    assert_eq!(value(&text, "monero_txpool_transactions"), 0.0);
    assert_eq!(value(&text, "monero_txpool_bytes"), 0.0);
    assert_eq!(value(&text, r#"monero_connections{direction="in"}"#), 0.0);
    assert_eq!(value(&text, r#"monero_connections{direction="out"}"#), 0.0);
    assert_eq!(value(&text, "monero_offline"), 1.0);
    assert!(value(&text, "monero_free_space_bytes") > 0.0);
    assert!(value(&text, "monero_database_size_bytes") > 0.0);
    assert_eq!(
        value(&text, "monero_hardfork_version"),
        rpc.hard_fork_info().await.unwrap().version as f64
    );
    let series = format!(
        r#"monero_build_info{{network="regtest",version="{}"}}"#,
        info.version
    );
    assert_eq!(value(&text, &series), 1.0);
    assert!(value(&text, "monero_network_received_bytes_total") >= 0.0);
    assert_eq!(value(&text, "monero_bans"), 0.0);
    assert_eq!(value(&text, "monero_mining_active"), 0.0);
    for collector in monero_exporter::collect::COLLECTORS {
        let s = format!(r#"monero_exporter_collector_success{{collector="{collector}"}}"#);
        assert_eq!(value(&text, &s), 1.0, "{collector}");
    }
    assert_no_collector_failed(&text, "no collector failed");

    // Values follow the chain from one scrape to the next: nothing is cached.
    daemon.generate_blocks(3).unwrap();
    assert_eq!(
        value(&scrape(exporter.port), "monero_blockchain_height"),
        11.0
    );

    let (status, body) = http_get(exporter.port, "/ready").unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_port_is_detected_and_placeholders_stay_out() {
    let daemon = Monerod::start_default().unwrap();
    let exporter = start_exporter(&daemon.restricted_url(), &[]);
    // The first scrape learns that the port is restricted; the second skips what it cannot read.
    for _ in 0..2 {
        let text = scrape(exporter.port);
        promtool_accepts(&text);
        assert_eq!(value(&text, "monero_up"), 1.0);
        assert_eq!(value(&text, "monero_rpc_restricted"), 1.0);
        assert_eq!(value(&text, "monero_blockchain_height"), 1.0);
        assert_eq!(
            value(
                &text,
                r#"monero_build_info{network="regtest",version="unknown"}"#
            ),
            1.0
        );
        for hidden in [
            "monero_free_space_bytes",
            "monero_database_size_bytes",
            "monero_connections{",
            "monero_peerlist_size",
            "monero_start_time_seconds",
            "monero_network_received_bytes_total",
            "monero_bans",
            r#"monero_exporter_collector_success{collector="connections"}"#,
        ] {
            assert!(
                !text.contains(hidden),
                "{hidden} must not be published for a restricted port:\n{text}"
            );
        }
        assert_no_collector_failed(&text, "skips are not errors");
        assert_eq!(
            value(
                &text,
                r#"monero_exporter_collector_success{collector="fee"}"#
            ),
            1.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_login_from_a_file() {
    let daemon = Monerod::start(MonerodConfig {
        login: Some(("prom".into(), "s3cret".into())),
        ..Default::default()
    })
    .unwrap();
    let tmp = TempDir::new("login").unwrap();
    let login = tmp.path().join("login");
    std::fs::write(&login, "prom:s3cret\n").unwrap();
    let with_login = start_exporter(
        &daemon.rpc_url(),
        &["--rpc-login-file", login.to_str().unwrap()],
    );
    let text = scrape(with_login.port);
    assert_eq!(value(&text, "monero_up"), 1.0);
    assert_eq!(value(&text, "monero_blockchain_height"), 1.0);

    let without = start_exporter(&daemon.rpc_url(), &[]);
    let text = scrape(without.port);
    assert_eq!(value(&text, "monero_up"), 0.0);
    assert!(
        value(
            &text,
            r#"monero_exporter_collector_errors_total{collector="info"}"#
        ) >= 1.0
    );
    promtool_accepts(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monerod_stopped_then_restarted() {
    let mut daemon = Monerod::start_default().unwrap();
    daemon.generate_blocks(2).unwrap();
    let exporter = start_exporter(&daemon.rpc_url(), &[]);
    assert_eq!(value(&scrape(exporter.port), "monero_up"), 1.0);

    daemon.stop();
    let text = scrape(exporter.port);
    promtool_accepts(&text);
    assert_eq!(value(&text, "monero_up"), 0.0);
    assert_eq!(
        metric_value(&text, "monero_blockchain_height"),
        None,
        "no stale values:\n{text}"
    );
    assert_eq!(http_get(exporter.port, "/healthz").unwrap().0, 200);
    let (status, body) = http_get(exporter.port, "/ready").unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("not ready"), "{body}");

    daemon.restart().unwrap();
    wait_until(
        "monero_up 1 after monerod restarts",
        Duration::from_secs(60),
        || metric_value(&scrape(exporter.port), "monero_up") == Some(1.0),
    )
    .unwrap();
    let text = scrape(exporter.port);
    assert_eq!(
        value(&text, "monero_blockchain_height"),
        3.0,
        "the chain survived the restart"
    );
    assert_eq!(http_get(exporter.port, "/ready").unwrap().0, 200);
}

/// Runs the binary expecting it to fail at start-up; returns its stderr.
fn fails_with(args: &[&str]) -> String {
    monero_testkit::refused(env!("CARGO_BIN_EXE_monero-exporter"), args).unwrap()
}

#[test]
fn bad_input_gets_a_clear_message_and_a_nonzero_exit() {
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let e = fails_with(&["--monerod-address", "not a url", "--listen", &listen]);
    assert!(
        e.contains("--monerod-address") && e.contains("not a url"),
        "{e}"
    );

    let e = fails_with(&[
        "--rpc-login-file",
        "/nonexistent/login",
        "--listen",
        &listen,
    ]);
    assert!(e.contains("/nonexistent/login"), "{e}");

    let tmp = TempDir::new("badlogin").unwrap();
    let bad = tmp.path().join("login");
    std::fs::write(&bad, "just-a-password\n").unwrap();
    let e = fails_with(&[
        "--rpc-login-file",
        bad.to_str().unwrap(),
        "--listen",
        &listen,
    ]);
    assert!(e.contains("user:password"), "{e}");

    let e = fails_with(&["--timeout", "soon", "--listen", &listen]);
    assert!(e.contains("soon"), "{e}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let e = fails_with(&["--listen", &taken_addr]);
    assert!(
        e.contains("cannot listen") && e.contains(&taken_addr),
        "{e}"
    );
}

#[test]
fn every_flag_reads_its_environment_variable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_monero-exporter"))
        .env("MONERO_EXPORTER_LISTEN", &taken_addr)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&taken_addr),
        "the listen address came from the environment: {stderr}"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_monero-exporter"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for var in [
        "MONERO_EXPORTER_MONEROD_ADDRESS",
        "MONERO_EXPORTER_LISTEN",
        "MONERO_EXPORTER_RPC_LOGIN_FILE",
        "MONERO_EXPORTER_TIMEOUT",
        "MONERO_EXPORTER_READY_ALLOW_UNSYNCED",
    ] {
        assert!(help.contains(var), "{var} missing from --help:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lab_mode_mines_on_the_schedule_its_file_says_and_watches_the_chain() {
    let daemon = Monerod::start_default().unwrap();
    let client = DaemonClient::builder(daemon.rpc_url()).build().unwrap();
    let tmp = TempDir::new("lab").unwrap();
    let lab = tmp.path().join("lab.json");
    let schedule = |blocks: u64| {
        format!(
            r#"{{"mine":{{"everySeconds":1,"blocks":{blocks},"address":"{}"}}}}"#,
            monero_testkit::TEST_ADDRESS
        )
    };
    std::fs::write(&lab, schedule(1)).unwrap();
    let exporter = start_exporter(&daemon.rpc_url(), &["--lab-config", lab.to_str().unwrap()]);
    let reached = |height: u64| {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move { client.get_height().await.is_ok_and(|h| h.height >= height) }
        }
    };
    let start = client.get_height().await.unwrap().height;
    monero_testkit::wait_until_async(
        "two rounds of one block",
        Duration::from_secs(60),
        reached(start + 2),
    )
    .await
    .unwrap();
    // A new schedule, read from the file, with no restart: ten blocks a round.
    std::fs::write(&lab, schedule(10)).unwrap();
    let before = client.get_height().await.unwrap().height;
    monero_testkit::wait_until_async(
        "a round of ten blocks",
        Duration::from_secs(60),
        reached(before + 10),
    )
    .await
    .unwrap();
    // /lab: an offline node has no peers; the chain watch saw the blocks come,
    // one after the other, and no reorganization.
    let (status, body) = http_get(exporter.port, "/lab").unwrap();
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["peers"], serde_json::json!([]));
    assert!(
        report["chain"]["height"].as_u64().unwrap() >= before + 9,
        "{report}"
    );
    assert_eq!(report["chain"]["reorganizations"], 0);
    let text = scrape(exporter.port);
    promtool_accepts(&text);
    assert_eq!(value(&text, "monero_reorganizations_total"), 0.0);
    assert!(
        value(&text, "monero_block_propagation_seconds_count") >= 1.0,
        "{text}"
    );
}

#[test]
fn lab_mode_refuses_a_file_it_cannot_use_and_serves_no_peers_without_it() {
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let tmp = TempDir::new("badlab").unwrap();
    let bad = tmp.path().join("lab.json");
    std::fs::write(&bad, r#"{"mine":{"every":"30s"}}"#).unwrap();
    let e = fails_with(&["--lab-config", bad.to_str().unwrap(), "--listen", &listen]);
    assert!(e.contains("--lab-config") && e.contains("lab.json"), "{e}");
    let e = fails_with(&["--lab-config", "/nonexistent/lab.json", "--listen", &listen]);
    assert!(e.contains("/nonexistent/lab.json"), "{e}");
    // Without lab mode, a node's peers are not served, and there are no lab metrics.
    let daemon = Monerod::start_default().unwrap();
    let exporter = start_exporter(&daemon.rpc_url(), &[]);
    let (status, _) = http_get(exporter.port, "/lab").unwrap();
    assert_eq!(status, 404);
    assert!(!scrape(exporter.port).contains("monero_reorganizations_total"));
}
