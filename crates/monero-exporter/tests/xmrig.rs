//! The exporter binary in xmrig mode (`--xmrig-address`), on loopback.
//!
//! xmrig itself is not packaged for this machine's Debian (bookworm); the pod
//! tests (`make pods`) run the real xmrig 6.22 image with this exporter beside
//! it. Here: what the binary does when xmrig is down, its flags, and that it
//! sends the access token the way xmrig checks it (a one-request HTTP server
//! that answers like xmrig's API does: 401 without the right Bearer token).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use monero_testkit::{Process, TempDir, free_port, http_get, metric_value, wait_until};

fn start(extra: &[&str], tmp: &TempDir) -> (u16, Process) {
    let port = free_port().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monero-exporter"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--timeout", "2s"])
        .args(extra);
    let process = Process::spawn("monero-exporter", cmd, tmp.path().join("log")).unwrap();
    wait_until("the exporter's /healthz", Duration::from_secs(30), || {
        http_get(port, "/healthz").is_ok_and(|(s, _)| s == 200)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", process.log_tail(4000)));
    (port, process)
}

fn promtool_accepts(text: &str) {
    if let Err(e) = monero_testkit::promtool_check_metrics(text) {
        panic!("{e}");
    }
}

#[test]
fn xmrig_down_is_xmrig_up_zero_and_not_ready() {
    let tmp = TempDir::new("xmrig-down").unwrap();
    let dead = free_port().unwrap();
    let (port, _p) = start(
        &["--xmrig-address", &format!("http://127.0.0.1:{dead}")],
        &tmp,
    );
    let (status, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(metric_value(&body, "xmrig_up"), Some(0.0), "{body}");
    assert!(
        !body.contains("monero_up"),
        "no monerod metrics in xmrig mode"
    );
    promtool_accepts(&body);
    let (status, body) = http_get(port, "/ready").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&format!("127.0.0.1:{dead}")), "{body}");
}

/// Serves `answers` requests like xmrig's API: 401 unless the request carries
/// `Authorization: Bearer <token>`, else `summary`. Returns the port.
fn xmrig_like_api(token: &'static str, summary: &'static str, answers: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(answers) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut authorized = false;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if line.to_ascii_lowercase().trim() == format!("authorization: bearer {token}") {
                    authorized = true;
                }
            }
            let (status, body) = if authorized {
                ("200 OK", summary)
            } else {
                ("401 Unauthorized", "{\"status\":401}")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.read(&mut [0u8; 1]);
        }
    });
    port
}

const SUMMARY: &str = r#"{"version":"6.22.2","kind":"miner","algo":"rx/0","uptime":12,"paused":false,
"hashrate":{"total":[250.25,null,null],"highest":260.0},
"results":{"diff_current":1,"shares_good":3,"shares_total":3,"avg_time_ms":4000,"hashes_total":3000},
"connection":{"pool":"solo.default.svc.cluster.local:18089","uptime":11,"ping":0,"failures":0},
"hugepages":[0,1168]}"#;

/// The exporter for the xmrig-like API on `api`, with `token` in its token file.
fn start_with_token(tmp: &TempDir, token: &str, api: u16) -> (u16, Process, PathBuf) {
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let (port, process) = start(
        &[
            "--xmrig-address",
            &format!("http://127.0.0.1:{api}"),
            "--xmrig-access-token-file",
            token_file.to_str().unwrap(),
        ],
        tmp,
    );
    (port, process, token_file)
}

#[test]
fn the_token_comes_from_its_file_and_is_sent_as_xmrig_wants_it() {
    let tmp = TempDir::new("xmrig-token").unwrap();
    let api = xmrig_like_api("t0ken", SUMMARY, 1);
    let (port, _p, _) = start_with_token(&tmp, "t0ken", api);
    let (_, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(metric_value(&body, "xmrig_up"), Some(1.0), "{body}");
    assert_eq!(
        metric_value(&body, "xmrig_hashrate_hashes_per_second{window=\"10s\"}"),
        Some(250.25)
    );
    assert_eq!(
        metric_value(&body, "xmrig_shares_accepted_total"),
        Some(3.0)
    );
    promtool_accepts(&body);

    // Without the token the API refuses, and the exporter says so.
    let api = xmrig_like_api("t0ken", SUMMARY, 1);
    let tmp2 = TempDir::new("xmrig-notoken").unwrap();
    let (port, _p2) = start(
        &["--xmrig-address", &format!("http://127.0.0.1:{api}")],
        &tmp2,
    );
    let (_, body) = http_get(port, "/ready").unwrap();
    assert!(body.contains("access token"), "{body}");
}

#[test]
fn a_replaced_token_file_is_read_at_the_next_scrape() {
    let tmp = TempDir::new("xmrig-rotate").unwrap();
    let api = xmrig_like_api("new", SUMMARY, 2);
    let (port, _p, token_file) = start_with_token(&tmp, "old", api);
    let (_, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(metric_value(&body, "xmrig_up"), Some(0.0), "{body}");
    // As the kubelet does for a mounted Secret: a new file put in place.
    let next = tmp.path().join("token.new");
    std::fs::write(&next, "new\n").unwrap();
    std::fs::rename(&next, &token_file).unwrap();
    let (_, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(metric_value(&body, "xmrig_up"), Some(1.0), "{body}");
}

#[test]
fn bad_xmrig_flags_name_the_flag() {
    let tmp = TempDir::new("xmrig-flags").unwrap();
    let fails = |args: &[&str]| {
        let args = [&["--listen", "127.0.0.1:0"], args].concat();
        monero_testkit::refused(env!("CARGO_BIN_EXE_monero-exporter"), &args).unwrap()
    };
    let e = fails(&["--xmrig-address", "https://127.0.0.1:1"]);
    assert!(
        e.contains("--xmrig-address") && e.contains("http://"),
        "{e}"
    );
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let e = fails(&[
        "--xmrig-address",
        "http://127.0.0.1:1",
        "--xmrig-access-token-file",
        empty.to_str().unwrap(),
    ]);
    assert!(
        e.contains("empty") && e.contains("--xmrig-access-token-file"),
        "{e}"
    );
    let e = fails(&[
        "--xmrig-address",
        "http://127.0.0.1:1",
        "--monerod-address",
        "http://127.0.0.1:18081",
    ]);
    assert!(e.contains("--monerod-address"), "{e}");
    let e = fails(&["--xmrig-access-token-file", empty.to_str().unwrap()]);
    assert!(e.contains("--xmrig-address"), "{e}");
}
