//! Starts real Monero programs for tests and benchmarks, on loopback only, and stops
//! them by PID when dropped.
//!
//! Every daemon runs regtest with the flags that keep it off the network: no seed
//! nodes, no DNS checkpoints, no UPnP, no update checks, loopback binds only. Several
//! daemons reach each other only through `--add-exclusive-node 127.0.0.1:PORT`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mainnet-format address that regtest `generateblocks` accepts. Its keys come from
/// the mnemonic in [`TEST_WALLET_SEED`] (monero's own functional tests use this wallet).
pub const TEST_ADDRESS: &str = "42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm";

/// The 25-word seed of [`TEST_ADDRESS`].
pub const TEST_WALLET_SEED: &str = "velvet lymph giddy number token physics poetry unquoted nibs useful sabotage limits benches lifestyle eden nitrogen anvil fewest avoid batch vials washing fences goat unquoted";

/// How long a program may take to open its ports before the harness gives up.
pub const START_DEADLINE: Duration = Duration::from_secs(90);

/// Errors are strings with context: this crate only runs in tests.
pub type Result<T> = std::result::Result<T, String>;

/// A free TCP port on 127.0.0.1 for a program the test starts next, taken from below
/// the kernel's ephemeral range.
///
/// A port-0 bind hands out an ephemeral port, and between the test releasing it and
/// the program binding it any outgoing connection on the machine (tor retrying its
/// bridge, i2pd, another test) may take it as its source port: monerod then exits with
/// "Failed to bind". Ports below `ip_local_port_range` are never given to outgoing
/// connections. Each process walks its own stretch of that window (its PID picks
/// where it starts) and never hands out a port twice, so parallel tests in one binary
/// and test binaries running side by side do not collide either.
pub fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (low, high) = port_window();
    let span = u32::from(high - low);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(613)) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let port = low + u16::try_from(offset).map_err(|e| e.to_string())?;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!("no free loopback port in {low}..{high}"))
}

/// The ports [`free_port`] hands out: from 10000 up to the start of the kernel's
/// ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 by default).
fn port_window() -> (u16, u16) {
    const LOW: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32_768);
    if ephemeral_start > LOW + 1000 {
        (LOW, ephemeral_start)
    } else {
        // An unusual range leaves no room below it: fall back to the ports above 61000.
        (61_000, 65_000)
    }
}

/// The release of the `monerod` on PATH, as `monerod --version` prints it
/// (`0.18.4.0`), read once. With `MONEROD_EXPECT_VERSION` set (the version
/// matrix of hack/test.sh sets it), a different release is an error, so a
/// matrix run cannot test the wrong daemon without saying so.
pub fn monerod_release() -> Result<String> {
    static RELEASE: std::sync::OnceLock<Result<String>> = std::sync::OnceLock::new();
    RELEASE
        .get_or_init(|| {
            let out = Command::new("monerod")
                .arg("--version")
                .output()
                .map_err(|e| format!("running monerod --version: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let release = text
                .split("(v")
                .nth(1)
                .and_then(|rest| rest.split(['-', ')']).next())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("monerod --version printed no release: {text}"))?
                .to_string();
            match std::env::var("MONEROD_EXPECT_VERSION") {
                Ok(want) if !want.is_empty() && want != release => Err(format!(
                    "MONEROD_EXPECT_VERSION is {want}, but the monerod on PATH is {release}"
                )),
                _ => Ok(release),
            }
        })
        .clone()
}

/// Whether the monerod on PATH (and the monero-wallet-rpc of its package) is
/// at least `release` (`[0, 18, 4]`): a test harness must not give a flag the
/// release refuses (0.17 has no `--max-connections-per-ip`, 0.18.0 no
/// `--allow-mismatched-daemon-version`).
pub fn monerod_at_least(release: &[u16]) -> bool {
    monerod_release().ok().is_some_and(|r| {
        let have: Vec<u16> = r.split('.').filter_map(|p| p.parse().ok()).collect();
        have.as_slice() >= release
    })
}

/// True when `program` can be found on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// For a test that needs real programs: true (and a `SKIPPED:` line naming the
/// first missing program and its Debian package) when one of `programs`, given
/// as (program, package), is not on PATH. `hack/deps.sh` installs them all.
pub fn skip_unless_installed(programs: &[(&str, &str)]) -> bool {
    match programs.iter().find(|(program, _)| !have(program)) {
        Some((program, package)) => {
            eprintln!(
                "SKIPPED: {program} is not on PATH (Debian package `{package}`, installed by hack/deps.sh)"
            );
            true
        }
        None => false,
    }
}

/// A memory field of a process from /proc (`VmRSS:`, `VmHWM:`), in KiB, for the
/// benchmarks; `None` when the process or the field is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let path = if pid == std::process::id() {
        "/proc/self/status".to_string()
    } else {
        format!("/proc/{pid}/status")
    };
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Waits until `condition` is true, polling every 100 ms, or fails after `deadline`
/// with `what` in the message.
pub fn wait_until(
    what: &str,
    deadline: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if condition() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("timed out after {deadline:?} waiting for {what}"))
}

/// Async flavour of [`wait_until`] for tests that run inside tokio.
pub async fn wait_until_async<F, Fut>(
    what: &str,
    deadline: Duration,
    mut condition: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < deadline {
        if condition().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("timed out after {deadline:?} waiting for {what}"))
}

/// One HTTP/1.1 POST with a JSON body over a fresh connection; returns status and body.
/// Deliberately minimal: the harness must not depend on the crates it tests.
pub fn http_post(port: u16, path: &str, body: &str) -> Result<(u16, String)> {
    http_request("POST", port, path, body)
}

/// One HTTP/1.1 GET over a fresh connection; returns status and body.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    http_request("GET", port, path, "")
}

fn http_request(method: &str, port: u16, path: &str, body: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// The value of one series, e.g. `monero_up` or `monero_connections{direction="in"}`,
/// in a Prometheus text exposition.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            l.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Runs `promtool check metrics` (Debian package `prometheus`) on an exposition;
/// the `Err` holds promtool's complaints and the exposition.
pub fn promtool_check_metrics(text: &str) -> Result<()> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("promtool must be installed (Debian package prometheus; `make test` installs it): {e}")
        })?;
    child
        .stdin
        .take()
        .ok_or("promtool's stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| format!("writing to promtool: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for promtool: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `program` with `args` expecting it to refuse them at start-up: a
/// non-zero exit and no panic. Returns its stderr, where the message is.
pub fn refused(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        return Err(format!("{program} {args:?} must fail, and exited 0"));
    }
    if stderr.contains("panicked") {
        return Err(format!("{program} {args:?} panicked: {stderr}"));
    }
    Ok(stderr)
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let base = std::env::var_os("MONERO_TESTKIT_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process stopped by PID on drop: SIGTERM, then SIGKILL if it lingers.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    name: String,
    log: PathBuf,
}

impl Process {
    /// Spawns `cmd` with stdout and stderr to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Result<Self> {
        let out =
            std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        Ok(Process {
            child: Some(child),
            name: name.to_owned(),
            log,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What the process wrote so far, for failure messages.
    pub fn log_tail(&self, bytes: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(bytes);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        format!("--- last output of {} ---\n{}", self.name, &text[start..])
    }

    /// Sends SIGTERM and waits up to `grace` for exit, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < grace {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// How to start a regtest monerod.
#[derive(Debug, Clone, Default)]
pub struct MonerodConfig {
    /// Also open a restricted RPC port.
    pub restricted_port: bool,
    /// `--rpc-login user:pass`.
    pub login: Option<(String, String)>,
    /// P2P ports of other local daemons to peer with exclusively. Empty means `--offline`.
    pub exclusive_peers: Vec<u16>,
    /// Appended last.
    pub extra_args: Vec<String>,
    /// Reuse this data directory instead of a fresh one (with `--keep-fakechain`).
    pub data_dir: Option<PathBuf>,
    /// Use these ports instead of fresh ones, e.g. to restart a daemon on the same ports.
    pub ports: Option<MonerodPorts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonerodPorts {
    pub p2p: u16,
    pub rpc: u16,
    pub restricted: u16,
}

/// A running regtest monerod on loopback.
#[derive(Debug)]
pub struct Monerod {
    pub ports: MonerodPorts,
    pub config: MonerodConfig,
    process: Process,
    data_dir: PathBuf,
    _tmp: Option<TempDir>,
}

impl Monerod {
    /// Starts an offline regtest monerod with an unrestricted and a restricted port.
    pub fn start_default() -> Result<Self> {
        Self::start(MonerodConfig {
            restricted_port: true,
            ..Default::default()
        })
    }

    pub fn start(config: MonerodConfig) -> Result<Self> {
        if !have("monerod") {
            return Err("monerod is not installed (Debian package `monero`)".into());
        }
        let (tmp, data_dir) = match &config.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = TempDir::new("monerod")?;
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let ports = match config.ports {
            Some(p) => p,
            None => MonerodPorts {
                p2p: free_port()?,
                rpc: free_port()?,
                restricted: free_port()?,
            },
        };
        monerod_release()?;
        let mut cmd = Command::new("monerod");
        cmd.args(Self::args(&config, ports, &data_dir));
        let process = Process::spawn("monerod", cmd, data_dir.join("stdout.log"))?;
        let mut d = Monerod {
            ports,
            config,
            process,
            data_dir,
            _tmp: tmp,
        };
        d.wait_ready()?;
        Ok(d)
    }

    /// The full command line for `config`: the flags that keep monerod on loopback.
    pub fn args(config: &MonerodConfig, ports: MonerodPorts, data_dir: &Path) -> Vec<String> {
        let mut a: Vec<String> = [
            "--regtest",
            "--non-interactive",
            "--no-igd",
            "--no-zmq",
            "--check-updates=disabled",
            "--disable-dns-checkpoints",
            "--p2p-bind-ip=127.0.0.1",
            "--rpc-bind-ip=127.0.0.1",
            "--log-level=0",
            "--fixed-difficulty=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(format!("--data-dir={}", data_dir.display()));
        a.push(format!("--p2p-bind-port={}", ports.p2p));
        a.push(format!("--rpc-bind-port={}", ports.rpc));
        if config.restricted_port {
            a.push("--rpc-restricted-bind-ip=127.0.0.1".into());
            a.push(format!("--rpc-restricted-bind-port={}", ports.restricted));
        }
        if let Some((u, p)) = &config.login {
            a.push(format!("--rpc-login={u}:{p}"));
        }
        if config.exclusive_peers.is_empty() {
            a.push("--offline".into());
        } else {
            a.push("--allow-local-ip".into());
            if monerod_at_least(&[0, 18]) {
                a.push("--max-connections-per-ip=5".into());
            }
            for p in &config.exclusive_peers {
                a.push(format!("--add-exclusive-node=127.0.0.1:{p}"));
            }
        }
        if config.data_dir.is_some() {
            a.push("--keep-fakechain".into());
        }
        a.extend(config.extra_args.iter().cloned());
        a
    }

    fn wait_ready(&mut self) -> Result<()> {
        let port = self.ports.rpc;
        let start = Instant::now();
        while start.elapsed() < START_DEADLINE {
            if !self.process.is_running() {
                return Err(format!(
                    "monerod exited during start-up\n{}",
                    self.process.log_tail(4000)
                ));
            }
            // Any HTTP answer (200, or 401 with a login) means the RPC server is up.
            if http_post(port, "/get_height", "{}").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "monerod did not open RPC port {port} within {START_DEADLINE:?}\n{}",
            self.process.log_tail(4000)
        ))
    }

    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.rpc)
    }

    pub fn restricted_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.restricted)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail(4000)
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 20 s).
    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(20));
    }

    /// Starts a daemon again on the same ports and data, after [`Monerod::stop`].
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let mut config = self.config.clone();
        config.data_dir = Some(self.data_dir.clone());
        let mut cmd = Command::new("monerod");
        cmd.args(Self::args(&config, self.ports, &self.data_dir));
        self.process = Process::spawn("monerod", cmd, self.data_dir.join("stdout-restart.log"))?;
        self.wait_ready()
    }

    /// Calls a JSON-RPC method on the unrestricted port without a login; for setting
    /// up test state without the crate under test.
    pub fn json_rpc(&self, method: &str, params: &str) -> Result<String> {
        let body = format!(r#"{{"jsonrpc":"2.0","id":"0","method":"{method}","params":{params}}}"#);
        let (status, body) = http_post(self.ports.rpc, "/json_rpc", &body)?;
        if status != 200 || body.contains("\"error\"") {
            return Err(format!("{method} answered HTTP {status}: {body}"));
        }
        Ok(body)
    }

    /// Mines `n` blocks to [`TEST_ADDRESS`].
    pub fn generate_blocks(&self, n: u64) -> Result<()> {
        self.json_rpc(
            "generateblocks",
            &format!(r#"{{"amount_of_blocks":{n},"wallet_address":"{TEST_ADDRESS}"}}"#),
        )
        .map(|_| ())
    }
}

/// A running `monero-wallet-rpc` without login, attached to a local daemon.
#[derive(Debug)]
pub struct WalletRpc {
    pub port: u16,
    process: Process,
    _tmp: TempDir,
}

impl WalletRpc {
    pub fn start(daemon_rpc_port: u16) -> Result<Self> {
        if !have("monero-wallet-rpc") {
            return Err("monero-wallet-rpc is not installed (Debian package `monero`)".into());
        }
        let tmp = TempDir::new("wallet")?;
        let port = free_port()?;
        let mut cmd = Command::new("monero-wallet-rpc");
        cmd.arg(format!("--daemon-address=127.0.0.1:{daemon_rpc_port}"))
            .arg("--trusted-daemon")
            .arg("--disable-rpc-login")
            .arg("--rpc-bind-ip=127.0.0.1")
            .arg(format!("--rpc-bind-port={port}"))
            .arg("--rpc-ssl=disabled")
            .arg("--daemon-ssl=disabled")
            .arg("--non-interactive")
            .arg(format!("--wallet-dir={}", tmp.path().display()))
            .arg(format!(
                "--shared-ringdb-dir={}",
                tmp.path().join("ringdb").display()
            ))
            .arg(format!(
                "--log-file={}",
                tmp.path().join("wallet.log").display()
            ));
        // From 0.18.4 the wallet checks the daemon's hard fork versions against
        // mainnet's table, which a regtest chain (every fork at height 1) fails.
        if monerod_at_least(&[0, 18, 4]) {
            cmd.arg("--allow-mismatched-daemon-version");
        }
        let mut process = Process::spawn("monero-wallet-rpc", cmd, tmp.path().join("stdout.log"))?;
        let start = Instant::now();
        loop {
            if !process.is_running() {
                return Err(format!(
                    "monero-wallet-rpc exited during start-up\n{}",
                    process.log_tail(4000)
                ));
            }
            if http_post(
                port,
                "/json_rpc",
                r#"{"jsonrpc":"2.0","id":"0","method":"get_version"}"#,
            )
            .is_ok()
            {
                break;
            }
            if start.elapsed() > START_DEADLINE {
                return Err(format!(
                    "monero-wallet-rpc did not open port {port}\n{}",
                    process.log_tail(4000)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(WalletRpc {
            port,
            process,
            _tmp: tmp,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn json_rpc(&self, method: &str, params: &str) -> Result<String> {
        let body = format!(r#"{{"jsonrpc":"2.0","id":"0","method":"{method}","params":{params}}}"#);
        let (status, body) = http_post(self.port, "/json_rpc", &body)?;
        if status != 200 || body.contains("\"error\"") {
            return Err(format!("wallet {method} answered HTTP {status}: {body}"));
        }
        Ok(body)
    }

    /// Restores the wallet of [`TEST_WALLET_SEED`] and opens it.
    pub fn restore_test_wallet(&self) -> Result<()> {
        self.json_rpc(
            "restore_deterministic_wallet",
            &format!(
                r#"{{"filename":"test","password":"","seed":"{TEST_WALLET_SEED}","restore_height":0,"language":"English","autosave_current":false}}"#
            ),
        )
        .map(|_| ())
    }

    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_below_the_ephemeral_range() {
        let (low, high) = port_window();
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        assert!(ports.iter().all(|p| (low..high).contains(p)), "{ports:?}");
        // A port someone holds is skipped.
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, ports[49] + 1)).ok();
        let next = free_port().unwrap();
        if held.is_some() {
            assert_ne!(next, ports[49] + 1);
        }
    }

    #[test]
    fn args_keep_monerod_on_loopback_and_offline() {
        let ports = MonerodPorts {
            p2p: 1,
            rpc: 2,
            restricted: 3,
        };
        let a = Monerod::args(&MonerodConfig::default(), ports, Path::new("/d"));
        for flag in [
            "--offline",
            "--no-igd",
            "--disable-dns-checkpoints",
            "--p2p-bind-ip=127.0.0.1",
            "--rpc-bind-ip=127.0.0.1",
        ] {
            assert!(a.iter().any(|x| x == flag), "{flag} missing from {a:?}");
        }
        let peered = MonerodConfig {
            exclusive_peers: vec![7, 8],
            ..Default::default()
        };
        let a = Monerod::args(&peered, ports, Path::new("/d"));
        assert!(!a.iter().any(|x| x == "--offline"));
        assert!(a.iter().any(|x| x == "--add-exclusive-node=127.0.0.1:8"));
    }

    #[test]
    fn wait_until_reports_what_it_waited_for() {
        let e = wait_until("the impossible", Duration::from_millis(200), || false).unwrap_err();
        assert!(e.contains("the impossible"));
        let mut n = 0;
        wait_until("a counter", Duration::from_secs(5), || {
            n += 1;
            n > 2
        })
        .unwrap();
    }
}
