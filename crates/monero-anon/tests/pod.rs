//! One pod's processes, on loopback, from what `monero-anon podconfig` writes:
//! tor (a dead loopback bridge, so its SOCKS port opens but no circuit can be
//! built), i2pd (private netid, loopback only), and a regtest monerod with the
//! config file podconfig wrote. monerod must accept the Tor and I2P flags and
//! listen on the anonymous inbound ports, and no process may hold a connection
//! to anything but loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use monero_anon::i2p::Destination;
use monero_anon::podconfig;
use monero_anon::tor::OnionKey;
use monero_testkit::{
    Process, TempDir, free_port, monerod_at_least, skip_unless_installed, wait_until,
};

const DEADLINE: Duration = Duration::from_secs(90);

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

/// Remote addresses of the TCP and UDP sockets a process holds (ss output).
fn peers_of(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for proto in ["-tanpH", "-uanpH"] {
        let o = Command::new("ss").arg(proto).output().unwrap();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if line.contains(&format!("pid={pid},")) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                if cols.len() >= 5 {
                    out.push(cols[4].to_string());
                }
            }
        }
    }
    out
}

fn only_loopback(peers: &[String]) -> bool {
    peers.iter().all(|p| {
        p.starts_with("127.")
            || p.starts_with("0.0.0.0:")
            || p.starts_with("*:")
            || p.starts_with("[::]:")
            || p.starts_with("[::ffff:127.")
            || p == "*"
    })
}

#[test]
fn a_pods_tor_i2pd_and_monerod_run_from_podconfigs_output() {
    if skip_unless_installed(&[
        ("tor", "tor"),
        ("i2pd", "i2pd"),
        ("monerod", "monero"),
        ("ss", "iproute2"),
    ]) {
        return;
    }
    let dir = TempDir::new("anon-pod").unwrap();
    let pod = "nodes-0";
    let ids = dir.path().join("identities");
    fs::create_dir_all(&ids).unwrap();
    let onion = OnionKey::generate().unwrap();
    let rpc_onion = OnionKey::generate().unwrap();
    let dest = Destination::generate().unwrap();
    fs::write(ids.join(podconfig::tor_key_name(pod)), onion.secret_file()).unwrap();
    fs::write(ids.join(podconfig::RPC_TOR_KEY), rpc_onion.secret_file()).unwrap();
    fs::write(ids.join(podconfig::i2p_key_name(pod)), dest.keys_file()).unwrap();
    let base = dir.path().join("base.conf");
    fs::write(&base, "# the operator's config Secret\n").unwrap();
    let run = dir.path().join("run");

    let [
        tor_socks,
        i2p_socks,
        tor_in,
        i2p_in,
        rpc,
        restricted,
        p2p,
        ntcp2,
        dead,
    ] = std::array::from_fn(|_| free_port().unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_monero-anon"))
        .arg("podconfig")
        .args([
            "--pod-name",
            pod,
            "--tor",
            "--i2p",
            "--rpc-onion",
            "--no-ssu2",
        ])
        .arg("--identities")
        .arg(&ids)
        .arg("--base-config")
        .arg(&base)
        .arg("--out")
        .arg(&run)
        .args([
            "--rpc-port",
            &restricted.to_string(),
            "--tor-inbound-port",
            &tor_in.to_string(),
        ])
        .args([
            "--i2p-inbound-port",
            &i2p_in.to_string(),
            "--tor-socks-port",
            &tor_socks.to_string(),
        ])
        .args([
            "--i2p-socks-port",
            &i2p_socks.to_string(),
            "--ntcp2-port",
            &ntcp2.to_string(),
        ])
        // A bridge nobody answers on loopback: tor opens its SOCKS port and never reaches the Tor network.
        .args([
            "--torrc-line",
            "UseBridges 1",
            "--torrc-line",
            "Bridge 127.0.0.1:9",
        ])
        .args([
            "--torrc-line",
            "ReachableAddresses accept 127.0.0.1:*, reject *:*",
        ])
        .args([
            "--i2pd-line",
            "netid = 99",
            "--i2pd-line",
            "host = 127.0.0.1",
            "--i2pd-line",
            "address4 = 127.0.0.1",
        ])
        .args([
            "--i2pd-line",
            "nat = false",
            "--i2pd-line",
            "reseed.verify = false",
            "--i2pd-line",
            "reseed.urls = https://127.0.0.1:1/",
        ])
        .args([
            "--i2pd-line",
            "addressbook.enabled = false",
            "--i2pd-line",
            "nettime.enabled = false",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed,
        format!(
            "tor {}\ntor-rpc {}\ni2p {}\n",
            onion.address(),
            rpc_onion.address(),
            dest.address()
        )
    );
    for d in ["tor/p2p", "tor/rpc", "tor/data", "i2pd/data"] {
        assert_eq!(
            fs::metadata(run.join(d)).unwrap().permissions().mode() & 0o777,
            0o700,
            "{d}"
        );
    }

    let mut cmd = Command::new("tor");
    cmd.arg("-f").arg(run.join("tor/torrc"));
    let mut tor = Process::spawn("tor", cmd, dir.path().join("tor.log")).unwrap();
    let mut cmd = Command::new("i2pd");
    cmd.arg(format!("--datadir={}", run.join("i2pd/data").display()))
        .arg(format!("--conf={}", run.join("i2pd/i2pd.conf").display()))
        .arg(format!(
            "--tunconf={}",
            run.join("i2pd/tunnels.conf").display()
        ));
    let mut i2pd = Process::spawn("i2pd", cmd, dir.path().join("i2pd.log")).unwrap();
    let data = dir.path().join("monerod");
    fs::create_dir_all(&data).unwrap();
    let mut cmd = Command::new("monerod");
    cmd.arg("--regtest")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!(
            "--config-file={}",
            run.join("monerod/monerod.conf").display()
        ))
        .args([
            "--non-interactive",
            "--no-igd",
            "--no-zmq",
            "--check-updates=disabled",
            "--disable-dns-checkpoints",
        ])
        .args(["--p2p-bind-ip=127.0.0.1", &format!("--p2p-bind-port={p2p}")])
        .args(["--rpc-bind-ip=127.0.0.1", &format!("--rpc-bind-port={rpc}")])
        .args([
            "--rpc-restricted-bind-ip=127.0.0.1",
            &format!("--rpc-restricted-bind-port={restricted}"),
        ])
        // Clearnet peers only on loopback (a port nobody answers), per the network rule,
        // and, as the operator's `clearnet: ThroughTor` mode does, only through tor.
        .arg(format!("--add-exclusive-node=127.0.0.1:{dead}"));
    // --proxy came with 0.18, and the operator refuses ThroughTor before it.
    if monerod_at_least(&[0, 18]) {
        cmd.args([
            format!("--proxy=127.0.0.1:{tor_socks}"),
            "--hide-my-port".to_string(),
        ]);
    }
    let mut monerod = Process::spawn("monerod", cmd, dir.path().join("monerod.log")).unwrap();

    let logs = |tor: &Process, i2pd: &Process, monerod: &Process| {
        format!(
            "tor:\n{}\ni2pd:\n{}\nmonerod:\n{}",
            tor.log_tail(2000),
            i2pd.log_tail(2000),
            monerod.log_tail(4000)
        )
    };
    wait_until(
        "tor's and i2pd's SOCKS ports, and monerod's Tor and I2P inbound ports",
        DEADLINE,
        || {
            listening(tor_socks)
                && listening(i2p_socks)
                && listening(tor_in)
                && listening(i2p_in)
                && listening(restricted)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&tor, &i2pd, &monerod)));
    assert_eq!(
        fs::read_to_string(run.join("tor/p2p/hostname")).unwrap(),
        onion.hostname_file()
    );
    let mlog = monerod.log_tail(200_000);
    assert!(!mlog.contains("Failed to parse"), "{mlog}");

    for (name, p) in [("tor", &tor), ("i2pd", &i2pd), ("monerod", &monerod)] {
        let peers = peers_of(p.pid().unwrap());
        assert!(
            only_loopback(&peers),
            "{name} holds a non-loopback socket: {peers:?}"
        );
    }
    monerod.stop(Duration::from_secs(30));
    i2pd.stop(Duration::from_secs(10));
    tor.stop(Duration::from_secs(10));
    assert!(!monerod.is_running() && !i2pd.is_running() && !tor.is_running());
}

/// Runs `script` in a new network namespace that has only loopback (so
/// nothing it starts can reach anything else), or None when this machine
/// does not allow one (not root).
fn in_isolated_netns(script: &str) -> Option<std::process::Output> {
    let probe = Command::new("unshare").args(["-n", "true"]).output().ok()?;
    if !probe.status.success() {
        return None;
    }
    Some(
        Command::new("timeout")
            .args(["60", "unshare", "-n", "bash", "-c"])
            .arg(format!("ip link set lo up\n{script}"))
            .output()
            .unwrap(),
    )
}

#[test]
fn the_production_configs_start_tor_and_i2pd_in_an_isolated_network_namespace() {
    if skip_unless_installed(&[
        ("tor", "tor"),
        ("i2pd", "i2pd"),
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
    ]) {
        return;
    }
    let dir = TempDir::new("anon-prod").unwrap();
    let pod = "nodes-0";
    let ids = dir.path().join("identities");
    fs::create_dir_all(&ids).unwrap();
    fs::write(
        ids.join(podconfig::tor_key_name(pod)),
        OnionKey::generate().unwrap().secret_file(),
    )
    .unwrap();
    fs::write(
        ids.join(podconfig::i2p_key_name(pod)),
        Destination::generate().unwrap().keys_file(),
    )
    .unwrap();
    let run = dir.path().join("run");
    // Exactly what the operator's pod runs: no test lines, default ports.
    let out = Command::new(env!("CARGO_BIN_EXE_monero-anon"))
        .args(["podconfig", "--pod-name", pod, "--tor", "--i2p"])
        .arg("--identities")
        .arg(&ids)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = run.display();
    let script = format!(
        r#"tor -f {r}/tor/torrc > {r}/tor.log 2>&1 & t=$!
i2pd --datadir={r}/i2pd/data --conf={r}/i2pd/i2pd.conf --tunconf={r}/i2pd/tunnels.conf --certsdir=/usr/share/i2pd/certificates --loglevel=info > {r}/i2pd.log 2>&1 & i=$!
up() {{ (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null; }}
for n in $(seq 300); do if up 9050 && up 4447; then echo BOTH-UP; break; fi; sleep 0.1; done
kill -0 $t && echo TOR-ALIVE; kill -0 $i && echo I2PD-ALIVE
kill $t $i; wait $t $i
"#
    );
    let Some(result) = in_isolated_netns(&script) else {
        eprintln!("SKIPPED: no network namespace can be made here (needs root)");
        return;
    };
    let stdout = String::from_utf8_lossy(&result.stdout);
    let logs = format!(
        "{stdout}\n{}\ntor:\n{}\ni2pd:\n{}",
        String::from_utf8_lossy(&result.stderr),
        fs::read_to_string(run.join("tor.log")).unwrap_or_default(),
        fs::read_to_string(run.join("i2pd.log")).unwrap_or_default()
    );
    assert!(
        stdout.contains("BOTH-UP") && stdout.contains("TOR-ALIVE") && stdout.contains("I2PD-ALIVE"),
        "{logs}"
    );
    let i2pd_log = fs::read_to_string(run.join("i2pd.log")).unwrap();
    assert!(!i2pd_log.contains("unrecognised option"), "{i2pd_log}");
}
