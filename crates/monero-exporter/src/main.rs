use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use monero_exporter::xmrig::{self, XmrigClient, XmrigExporter};
use monero_exporter::{Exporter, Options, lab, wallets};
use monero_rpc::DaemonClient;

/// Prometheus exporter for monerod. Every flag can also be set from the environment
/// variable shown in its help.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// monerod RPC URL (the unrestricted port shows the most; a restricted one works).
    #[arg(
        long,
        env = "MONERO_EXPORTER_MONEROD_ADDRESS",
        default_value = "http://127.0.0.1:18081"
    )]
    monerod_address: String,

    /// Address to serve /metrics, /healthz and /ready on.
    #[arg(long, env = "MONERO_EXPORTER_LISTEN", default_value = "0.0.0.0:18090")]
    listen: SocketAddr,

    /// File holding monerod's RPC login as `user:password` on one line, so that no
    /// secret appears on the command line.
    #[arg(long, env = "MONERO_EXPORTER_RPC_LOGIN_FILE")]
    rpc_login_file: Option<PathBuf>,

    /// Deadline for one scrape's calls to monerod, e.g. `5s` or `500ms` (plain number:
    /// seconds).
    #[arg(long, env = "MONERO_EXPORTER_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,

    /// Let /ready pass while monerod answers but is still synchronizing.
    #[arg(long, env = "MONERO_EXPORTER_READY_ALLOW_UNSYNCED")]
    ready_allow_unsynced: bool,

    /// Reach monerod through this SOCKS5 proxy, e.g. `socks5h://127.0.0.1:9050` for Tor.
    #[arg(long, env = "MONERO_EXPORTER_SOCKS5_PROXY")]
    socks5_proxy: Option<String>,

    /// Export an xmrig miner instead of monerod: its HTTP API's URL, e.g.
    /// `http://127.0.0.1:18092`. The monerod flags do not apply then.
    #[arg(
        long,
        env = "MONERO_EXPORTER_XMRIG_ADDRESS",
        conflicts_with_all = ["monerod_address", "rpc_login_file", "socks5_proxy", "ready_allow_unsynced"]
    )]
    xmrig_address: Option<String>,

    /// File holding xmrig's HTTP API access token (its `http.access-token`) on one
    /// line, so that the token appears on no command line.
    #[arg(
        long,
        env = "MONERO_EXPORTER_XMRIG_ACCESS_TOKEN_FILE",
        requires = "xmrig_address"
    )]
    xmrig_access_token_file: Option<PathBuf>,

    /// Lab mode, for a MoneroNetwork node: a JSON file saying what to do in the pod
    /// (`{"mine": {"everySeconds": 30, "blocks": 1, "address": "4..."}, "partition":
    /// {"network": [...], "ban": [...]}}`), read again every second; the chain watched
    /// (reorganizations, block propagation) and `/lab` served.
    #[arg(
        long,
        env = "MONERO_EXPORTER_LAB_CONFIG",
        conflicts_with = "xmrig_address"
    )]
    lab_config: Option<PathBuf>,

    /// Wallets mode, for a MoneroNetwork's wallets pod: a JSON file naming the
    /// monero-wallet-rpc instances on this host (`{"wallets": 2, "firstPort": 18083,
    /// "transactionsPerMinute": 0, "amount": 1000000000}`). Each wallet is made on
    /// first start and opened after, its balance kept fresh, transfers sent between
    /// them; `/wallets` and `/metrics` report them. `--rpc-login-file` is then the
    /// wallets' RPC login; the monerod flags do not apply.
    #[arg(
        long,
        env = "MONERO_EXPORTER_WALLETS_LAB",
        conflicts_with_all = ["xmrig_address", "lab_config", "monerod_address", "socks5_proxy", "ready_allow_unsynced"]
    )]
    wallets_lab: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "MONERO_EXPORTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 5s, 500ms or 2m"))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// Reads `user:password` from `path`, with a message that names the file on any problem.
fn read_login(path: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the RPC login file {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default().trim();
    let Some((user, pass)) = line.split_once(':') else {
        bail!(
            "RPC login file {}: expected `user:password` on the first line",
            path.display()
        );
    };
    if user.is_empty() {
        bail!("RPC login file {}: the user name is empty", path.display());
    }
    Ok((user.to_owned(), pass.to_owned()))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a terminal: in a pod, `kubectl logs` would show the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    if let Some(address) = &args.xmrig_address {
        let mut client = XmrigClient::new(address, args.timeout)
            .with_context(|| format!("--xmrig-address {address:?}"))?;
        if let Some(path) = &args.xmrig_access_token_file {
            // Read now to fail fast on a bad file; read again at every scrape.
            xmrig::read_token(path).context("--xmrig-access-token-file")?;
            client = client.token_file(path);
        }
        let what = format!("xmrig at {}", client.authority());
        return serve(args.listen, XmrigExporter::new(client).router(), &what).await;
    }

    if let Some(path) = &args.wallets_lab {
        let cfg = wallets::read_config(path).context("--wallets-lab")?;
        let login = match &args.rpc_login_file {
            Some(f) => Some(read_login(f)?),
            None => None,
        };
        let lab = wallets::WalletsLab::new(&cfg, "127.0.0.1", login)?;
        let what = format!("{} wallets from port {}", cfg.wallets, cfg.first_port);
        tokio::spawn(lab.clone().run(path.clone()));
        return serve(args.listen, lab.router(), &what).await;
    }

    // A scrape makes a dozen concurrent calls: keep that many connections warm between
    // scrapes instead of reopening (and, with a login, re-authenticating) them each time.
    let mut builder = DaemonClient::builder(&args.monerod_address)
        .timeout(args.timeout)
        .max_idle_connections(monero_exporter::collect::CALLS_PER_SCRAPE);
    if let Some(path) = &args.rpc_login_file {
        let (user, pass) = read_login(path)?;
        builder = builder.login(user, pass);
    }
    if let Some(proxy) = &args.socks5_proxy {
        builder = builder.socks5_proxy(proxy);
    }
    let client = builder
        .build()
        .with_context(|| format!("--monerod-address {:?}", args.monerod_address))?;
    let lab = match &args.lab_config {
        Some(path) => {
            // Read now to fail fast on a bad file; read again at every tick.
            lab::read_config(path).context("--lab-config")?;
            Some(lab::Lab::new(client.clone())?)
        }
        None => None,
    };
    let exporter = Exporter::new(
        client,
        Options {
            timeout: args.timeout,
            ready_allow_unsynced: args.ready_allow_unsynced,
            extra: lab.as_ref().map(lab::Lab::registry),
        },
    )?;

    let what = format!("monerod at {}", exporter.client().address());
    let mut router = exporter.router();
    if let (Some(lab), Some(path)) = (lab, args.lab_config) {
        router = router.merge(lab::routes(lab.clone()));
        tokio::spawn(lab.run(path));
    }
    serve(args.listen, router, &what).await
}

/// Serves `router` on `listen` until SIGTERM or Ctrl-C.
async fn serve(listen: SocketAddr, router: axum::Router, what: &str) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on --listen {listen}"))?;
    tracing::info!(
        listen = %listener.local_addr().unwrap_or(listen),
        target = what,
        "serving /metrics, /healthz and /ready"
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn login_file_problems_name_the_file() {
        let dir = std::env::temp_dir().join(format!("login-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "monero:pa:ss\n").unwrap();
        assert_eq!(
            read_login(&good).unwrap(),
            ("monero".into(), "pa:ss".into())
        );
        let bad = dir.join("bad");
        std::fs::write(&bad, "no-colon\n").unwrap();
        let e = read_login(&bad).unwrap_err().to_string();
        assert!(e.contains("bad") && e.contains("user:password"), "{e}");
        let e = read_login(&dir.join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
