//! Per-call overhead of `DaemonClient` against the barest HTTP request to the same
//! monerod, and round trips per call with a digest login.
//!
//! Run: `cargo bench -p monero-rpc --bench rpc_overhead` (starts two regtest monerod on
//! loopback, stops them at the end). Reports medians and ratios, which stay meaningful
//! on a shared, noisy machine where absolute times do not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use monero_rpc::DaemonClient;
use monero_testkit::{Monerod, MonerodConfig};

const CALLS: usize = 2_000;
const BODY: &str = r#"{"jsonrpc":"2.0","id":"0","method":"get_block_count"}"#;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The floor: one keep-alive TCP connection, a fixed request, the body read by length.
fn bare_http(port: u16, n: usize) -> Vec<Duration> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let request = format!(
        "POST /json_rpc HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        loop {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0, "monerod closed the connection");
            got.extend_from_slice(&buf[..k]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap();
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
        out.push(t.elapsed());
    }
    out
}

async fn client_calls(client: &DaemonClient, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        client.get_block_count().await.unwrap();
        out.push(t.elapsed());
    }
    out
}

fn main() {
    let plain = Monerod::start_default().unwrap();
    let login = Monerod::start(MonerodConfig {
        login: Some(("bench".into(), "bench".into())),
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Warm both paths up before measuring.
    bare_http(plain.ports.rpc, 200);
    let client = DaemonClient::new(&plain.rpc_url()).unwrap();
    rt.block_on(client_calls(&client, 200));

    let mut bare = bare_http(plain.ports.rpc, CALLS);
    let mut typed = rt.block_on(client_calls(&client, CALLS));

    let authed = DaemonClient::builder(login.rpc_url())
        .login("bench", "bench")
        .build()
        .unwrap();
    rt.block_on(client_calls(&authed, 10));
    let before = authed.round_trips();
    let mut with_login = rt.block_on(client_calls(&authed, CALLS));
    let trips = (authed.round_trips() - before) as f64 / CALLS as f64;

    let (b50, t50, l50) = (
        percentile(&mut bare, 0.5),
        percentile(&mut typed, 0.5),
        percentile(&mut with_login, 0.5),
    );
    let (b99, t99, l99) = (
        percentile(&mut bare, 0.99),
        percentile(&mut typed, 0.99),
        percentile(&mut with_login, 0.99),
    );
    println!("monero-rpc overhead, get_block_count x {CALLS}, one connection, sequential");
    println!("| path | p50 µs | p99 µs | p50 ratio to bare HTTP |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| bare HTTP/1.1 keep-alive | {:.0} | {:.0} | 1.00 |",
        micros(b50),
        micros(b99)
    );
    println!(
        "| DaemonClient | {:.0} | {:.0} | {:.2} |",
        micros(t50),
        micros(t99),
        micros(t50) / micros(b50)
    );
    println!(
        "| DaemonClient + digest login | {:.0} | {:.0} | {:.2} |",
        micros(l50),
        micros(l99),
        micros(l50) / micros(b50)
    );
    println!("round trips per call with digest login, steady state: {trips:.3}");
}
