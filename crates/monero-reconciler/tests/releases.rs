//! Every command line the builders render, started by the real monerod of the
//! release it was rendered for. monerod exits on a flag or config key it does
//! not know, and 0.18.5 refuses a ZMQ bind beyond loopback without a flag 0.18.4
//! refuses, so only the real daemon can say whether a rendering is right.
//!
//! The release is the `monerod` on PATH (`hack/test.sh` runs this file once per
//! release it fetched: 0.17.2, 0.18.0, 0.18.4, 0.18.5), and each custom resource
//! says so in `monerod.version`. Each daemon runs in a network namespace of its
//! own that holds only a loopback interface, with the binds the pod would have
//! (0.0.0.0 and the network's ports): nothing it opens can reach beyond it.
//! Skipped, with a message, without root or `ip netns`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use monero_reconciler::build::{self, Child, Context, Desired, Images};
use monero_testkit::{
    Process, START_DEADLINE, TempDir, monerod_release, skip_unless_installed, wait_until,
};
use serde_json::{Value, json};

/// A named network namespace with only `lo`, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Option<Netns> {
        let name = format!("mo-rel-{}-{name}", std::process::id());
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !ok(&["netns", "add", &name]) {
            return None;
        }
        let ns = Netns(name);
        ok(&["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"]).then_some(ns)
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }

    /// The HTTP status of a GET inside the namespace, when anything answers.
    fn http_status(&self, port: u16, path: &str) -> Option<u16> {
        let out = self
            .command("curl")
            .args(["-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .parse()
            .ok()
            .filter(|c| *c != 0)
    }

    /// The listening TCP sockets inside the namespace (`ss -ltn`).
    fn listening(&self) -> String {
        self.command("ss")
            .arg("-ltnH")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn skip() -> bool {
    if skip_unless_installed(&[
        ("monerod", "monero"),
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("ss", "iproute2"),
    ]) {
        return true;
    }
    match Netns::new("probe") {
        Some(_) => false,
        None => {
            eprintln!(
                "SKIPPED: `ip netns add` failed (needs root): the release tests run each monerod in a network namespace of its own"
            );
            true
        }
    }
}

fn ctx() -> Context {
    let mut c = Context::new(Images::default());
    c.secrets.insert(
        "login".into(),
        BTreeMap::from([
            ("username".to_string(), b"ops".to_vec()),
            ("password".to_string(), b"pa55:word".to_vec()),
        ]),
    );
    c.config_maps.insert(
        "bans".into(),
        BTreeMap::from([(
            "list".to_string(),
            "# the community list, v2\n198.51.100.7\n203.0.113.0/24\n".to_string(),
        )]),
    );
    c
}

/// Builds a custom resource for the release on PATH.
fn build(kind: &str, spec: Value, release: &str) -> Result<Desired, String> {
    let mut spec = spec;
    let node = if kind == "MoneroNetwork" {
        &mut spec["template"]["spec"]
    } else {
        &mut spec
    };
    node["monerod"]["version"] = json!(release);
    let obj = json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": kind,
        "metadata": {"name": "rel", "namespace": "test"}, "spec": spec});
    let c = ctx();
    let built = match kind {
        "MoneroNodeSet" => build::node_set(&serde_json::from_value(obj).unwrap(), &c),
        _ => build::network(&serde_json::from_value(obj).unwrap(), &c),
    };
    built.map_err(|e| e.to_string())
}

fn monerod_args(d: &Desired) -> Vec<String> {
    let sts = d.stateful_set().unwrap();
    let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let c = pod.containers.iter().find(|c| c.name == "monerod").unwrap();
    c.args.clone().unwrap()
}

fn config_files(d: &Desired) -> BTreeMap<String, Vec<u8>> {
    d.children
        .iter()
        .filter_map(|c| match c {
            Child::Secret(s) => Some(s.as_ref()),
            _ => None,
        })
        .flat_map(|s: &Secret| s.data.clone().unwrap_or_default())
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// The pod's paths moved into `dir`, as the volumes would give them;
/// everything else (binds, ports, flags) exactly as rendered.
fn pod_args(args: &[String], dir: &Path) -> Vec<String> {
    let etc = dir.join("etc");
    args.iter()
        .map(|a| {
            a.replace("$(POD_NAME)", "rel-0")
                .replace(
                    "/run/monero-anon/monerod/monerod.conf",
                    &etc.join("rel-0.conf").display().to_string(),
                )
                .replace("/etc/monerod", &etc.display().to_string())
                .replace("=/data", &format!("={}", dir.join("data").display()))
        })
        .collect()
}

/// A network node's peers are cluster names, which do not resolve here and
/// which monerod resolves at start: they become loopback addresses.
fn write_files(files: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for (k, v) in files {
        let text = String::from_utf8(v.clone()).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix("add-exclusive-node=") {
                Some(peer) => format!(
                    "add-exclusive-node=127.0.0.2:{}\n",
                    peer.rsplit_once(':').unwrap().1
                ),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(etc.join(k), text).unwrap();
    }
    // With Tor, monerod reads podconfig's copy of its pod's file; the Tor
    // lines podconfig adds are run for real in monero-anon's pod test.
    if !files.contains_key("rel-0.conf") && files.contains_key("monerod.conf") {
        std::fs::copy(etc.join("monerod.conf"), etc.join("rel-0.conf")).unwrap();
    }
}

/// One rendered monerod running in its namespace.
struct Running {
    name: String,
    process: Process,
    ns: Netns,
    log: String,
    _dir: TempDir,
}

impl Running {
    /// Stops monerod by its PID, then the namespace and the files go.
    fn stop(mut self) {
        self.process.stop(Duration::from_secs(30));
        assert!(
            !self.process.is_running(),
            "{}: monerod did not stop",
            self.name
        );
    }
}

/// Starts the rendered monerod in a namespace of its own and waits until its
/// restricted RPC answers. Panics with the log when it exits or never answers.
fn run(name: &str, d: &Desired, rpc_port: u16) -> Running {
    let dir = TempDir::new(&format!("release-{name}")).unwrap();
    write_files(&config_files(d), dir.path());
    let args = pod_args(&monerod_args(d), dir.path());
    let ns = Netns::new(name).expect("a network namespace");
    let mut cmd = ns.command("monerod");
    cmd.args(&args);
    let log = dir.path().join("monerod.log");
    let mut p = Process::spawn(&format!("monerod ({name})"), cmd, log).unwrap();
    let answered = wait_until(
        &format!("{name}: monerod's restricted RPC on {rpc_port}"),
        START_DEADLINE,
        || {
            !p.is_running()
                || ns
                    .http_status(rpc_port, "/get_height")
                    .is_some_and(|c| c == 200 || c == 401)
        },
    );
    let text = p.log_tail(1 << 20);
    assert!(
        answered.is_ok() && p.is_running(),
        "{name}: monerod {} did not run with\n{args:?}\n{text}",
        monerod_release().unwrap()
    );
    for bad in [
        "unrecognised option",
        "Failed to parse",
        "Exception in main",
    ] {
        assert!(!text.contains(bad), "{name}: {bad}\n{text}");
    }
    Running {
        name: name.into(),
        process: p,
        ns,
        log: text,
        _dir: dir,
    }
}

#[test]
fn every_rendering_starts_the_release_it_was_rendered_for() {
    if skip() {
        return;
    }
    let release = monerod_release().unwrap();
    let at_least = |major: u16, minor: u16, patch: u16| {
        let v: Vec<u16> = release.split('.').map(|p| p.parse().unwrap()).collect();
        (v[0], v[1], v[2]) >= (major, minor, patch)
    };
    eprintln!("monerod {release}");

    // The proposal's public mainnet node (no peer can be reached from here).
    let d = build(
        "MoneroNodeSet",
        json!({"monerod": {"args": ["--public", "--enable-dns-blocklist", "--enforce-dns-checkpointing",
            "--out-peers=1024", "--in-peers=1024", "--limit-rate=128000"]}}),
        &release,
    )
    .unwrap();
    run("proposal", &d, 18089).stop();

    // A public regtest node with every typed option the release takes.
    let d = build(
        "MoneroNodeSet",
        json!({"network": "regtest", "monerod": {"zmq": true, "zmqPub": "Cluster", "pruning": true, "logLevel": 1,
            "banList": {"name": "bans", "key": "list"},
            "rpc": {"login": {"secretName": "login"}, "limits": if at_least(0, 18, 4) { json!({"maxConnections": 200, "perPublicIp": 5}) } else { json!({}) }}},
            "service": {"perReplica": {"type": "NodePort", "nodePortBase": 30080}}}),
        &release,
    )
    .unwrap();
    let typed = run("typed", &d, 18089);
    let listening = typed.ns.listening();
    for bind in [
        "0.0.0.0:18082",
        "0.0.0.0:18084",
        "0.0.0.0:18089",
        "0.0.0.0:18080",
    ] {
        assert!(
            listening.contains(bind),
            "typed: {bind} not bound\n{listening}"
        );
    }
    let log = &typed.log;
    assert!(
        log.contains("Host 198.51.100.7 blocked"),
        "the ban list was not read\n{log}"
    );
    assert_eq!(
        typed.ns.http_status(18089, "/get_height"),
        Some(401),
        "the login guards the restricted RPC"
    );
    typed.stop();

    // Clearnet through Tor: from 0.18.0, which has --proxy; refused before it.
    let tor = json!({"network": "regtest", "tor": {"enabled": true}, "clearnet": "ThroughTor"});
    match build("MoneroNodeSet", tor, &release) {
        Ok(d) => {
            assert!(
                at_least(0, 18, 0),
                "{release} has no --proxy, yet it was rendered"
            );
            run("through-tor", &d, 18089).stop();
        }
        Err(e) => {
            assert!(!at_least(0, 18, 0), "refused for {release}: {e}");
            assert!(e.contains("spec.clearnet") && e.contains("0.18.0.0"), "{e}");
        }
    }

    // A node of a closed stagenet network (its own ports).
    let d = build(
        "MoneroNetwork",
        json!({"replicas": 2, "template": {"spec": {"network": "stagenet", "monerod": {"zmqPub": "Loopback"}}}}),
        &release,
    )
    .unwrap();
    let node = run("network", &d, 38089);
    let listening = node.ns.listening();
    assert!(listening.contains("127.0.0.1:38084"), "{listening}");
    node.stop();
}
