//! Scrape latency of the exporter binary against the RPC calls it makes, and its
//! resident memory.
//!
//! Run: `cargo bench -p monero-exporter --bench scrape` (builds the release binary,
//! starts a regtest monerod and the exporter on loopback, stops both at the end).
//! Targets: scrape p50 within 1.5x the slowest single call (the calls run
//! concurrently), resident memory under 15 MiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use monero_rpc::DaemonClient;
use monero_testkit::{Monerod, Process, TempDir, free_port, http_get, wait_until};

const SCRAPES: usize = 300;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn status_kib(pid: u32, field: &str) -> u64 {
    monero_testkit::proc_status_kib(pid, field).unwrap()
}

/// Median latency of each RPC the exporter makes, called one at a time.
async fn rpc_medians(c: &DaemonClient) -> Vec<(&'static str, Duration)> {
    macro_rules! time {
        ($name:expr, $call:expr) => {{
            let mut v = Vec::with_capacity(SCRAPES);
            for _ in 0..SCRAPES {
                let t = Instant::now();
                let _ = $call.await.unwrap();
                v.push(t.elapsed());
            }
            ($name, percentile(&mut v, 0.5))
        }};
    }
    vec![
        time!("get_info", c.get_info()),
        time!("get_last_block_header", c.get_last_block_header()),
        time!("get_transaction_pool_stats", c.get_transaction_pool_stats()),
        time!("get_txpool_backlog", c.get_txpool_backlog()),
        time!("get_connections", c.get_connections()),
        time!("hard_fork_info", c.hard_fork_info()),
        time!("get_fee_estimate", c.get_fee_estimate(None)),
        time!("get_bans", c.get_bans()),
        time!("get_alternate_chains", c.get_alternate_chains()),
        time!("get_net_stats", c.get_net_stats()),
        time!("get_limit", c.get_limit()),
        time!("mining_status", c.mining_status()),
    ]
}

/// Median time of the exporter's own collection (every call at once, no HTTP server
/// or rendering): the floor for any exporter design, set by monerod's own RPC
/// concurrency and the machine.
async fn concurrent_floor(c: &DaemonClient) -> Duration {
    let mut v = Vec::with_capacity(SCRAPES);
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let snapshot = monero_exporter::collect::collect(c, Duration::from_secs(10), false).await;
        v.push(t.elapsed());
        assert!(snapshot.info.outcome.ok().is_some());
    }
    percentile(&mut v, 0.5)
}

/// A loopback TCP relay that holds every chunk for `delay` in each direction, so monerod
/// looks like a node across a network (round trip = 2 x delay).
async fn delay_proxy(target: u16, delay: Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let outbound = tokio::net::TcpStream::connect(("127.0.0.1", target))
                .await
                .unwrap();
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (mut ri, mut wi) = inbound.into_split();
            let (mut ro, mut wo) = outbound.into_split();
            async fn pump(
                r: &mut tokio::net::tcp::OwnedReadHalf,
                w: &mut tokio::net::tcp::OwnedWriteHalf,
                delay: Duration,
            ) {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = r.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    if w.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = w.shutdown().await;
            }
            tokio::spawn(async move { pump(&mut ri, &mut wo, delay).await });
            tokio::spawn(async move { pump(&mut ro, &mut wi, delay).await });
        }
    });
    port
}

struct Run {
    p50: Duration,
    p99: Duration,
    sum: Duration,
    slowest: (&'static str, Duration),
    floor: Duration,
    calls: usize,
}

fn scrape_run(rt: &tokio::runtime::Runtime, rpc_url: &str) -> (Run, u64, u64, u64) {
    let tmp = TempDir::new("exporter-bench").unwrap();
    let port = free_port().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monero-exporter"));
    cmd.args([
        "--monerod-address",
        rpc_url,
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    let exporter = Process::spawn("monero-exporter", cmd, tmp.path().join("log")).unwrap();
    wait_until("the exporter", Duration::from_secs(30), || {
        http_get(port, "/healthz").is_ok()
    })
    .unwrap();
    let pid = exporter.pid().unwrap();
    let idle_rss = status_kib(pid, "VmRSS:");
    for _ in 0..20 {
        http_get(port, "/metrics").unwrap();
    }
    let mut scrapes = Vec::with_capacity(SCRAPES);
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let (status, body) = http_get(port, "/metrics").unwrap();
        scrapes.push(t.elapsed());
        assert!(status == 200 && body.contains("monero_up 1"), "{body}");
    }
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    drop(exporter);

    let client = DaemonClient::builder(rpc_url)
        .max_idle_connections(16)
        .build()
        .unwrap();
    let medians = rt.block_on(rpc_medians(&client));
    let floor = rt.block_on(concurrent_floor(&client));
    let run = Run {
        p50: percentile(&mut scrapes, 0.5),
        p99: percentile(&mut scrapes, 0.99),
        sum: medians.iter().map(|(_, d)| *d).sum(),
        slowest: medians.iter().max_by_key(|(_, d)| *d).copied().unwrap(),
        floor,
        calls: medians.len(),
    };
    (run, idle_rss, rss, hwm)
}

fn main() {
    let daemon = Monerod::start_default().unwrap();
    daemon.generate_blocks(50).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let (direct, idle_rss, rss, hwm) = scrape_run(&rt, &daemon.rpc_url());
    let proxy = rt.block_on(delay_proxy(daemon.ports.rpc, Duration::from_millis(1)));
    let (remote, _, _, _) = scrape_run(&rt, &format!("http://127.0.0.1:{proxy}"));

    println!(
        "monero-exporter scrape: {SCRAPES} scrapes of a regtest monerod, a new HTTP connection per scrape"
    );
    println!("| measure | monerod on loopback | monerod 2 ms round trip away |");
    println!("| --- | ---: | ---: |");
    let row = |name: &str, f: &dyn Fn(&Run) -> String| {
        println!("| {name} | {} | {} |", f(&direct), f(&remote))
    };
    row("RPC calls per scrape", &|r| r.calls.to_string());
    row("scrape p50", &|r| format!("{:.2} ms", ms(r.p50)));
    row("scrape p99", &|r| format!("{:.2} ms", ms(r.p99)));
    row("slowest single call (median)", &|r| {
        format!("{:.2} ms ({})", ms(r.slowest.1), r.slowest.0)
    });
    row("sum of the calls' medians (sequential cost)", &|r| {
        format!("{:.2} ms", ms(r.sum))
    });
    row("all calls at once, collection only, median (floor)", &|r| {
        format!("{:.2} ms", ms(r.floor))
    });
    row("scrape p50 / slowest call (target <= 1.5)", &|r| {
        format!("{:.2}", ms(r.p50) / ms(r.slowest.1))
    });
    row("scrape p50 / sum of calls", &|r| {
        format!("{:.2}", ms(r.p50) / ms(r.sum))
    });
    row("scrape p50 / floor", &|r| {
        format!("{:.2}", ms(r.p50) / ms(r.floor))
    });
    println!();
    println!("| exporter resident memory | MiB |");
    println!("| --- | ---: |");
    println!("| idle | {:.1} |", idle_rss as f64 / 1024.0);
    println!(
        "| after {} scrapes | {:.1} |",
        SCRAPES + 20,
        rss as f64 / 1024.0
    );
    println!("| peak (VmHWM, target < 15) | {:.1} |", hwm as f64 / 1024.0);
}
