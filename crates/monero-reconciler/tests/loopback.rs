//! The builders' monerod command line and config files, run by a real regtest monerod
//! (Debian package `monero`) on loopback. Skipped, with a message, when `monerod` is not
//! on PATH.
//!
//! Each test builds a custom resource, takes the monerod container's `args` and the
//! config Secret's files, and moves them onto loopback the way a pod would give them to
//! monerod (see [`loopback_args`]). Only the flags the design's network rule needs and the
//! builder does not give are added, each with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Secret};
use monero_crd::{MoneroNetwork, MoneroNodeSet, Network};
use monero_reconciler::build::{self, Child, Context, Desired, Images};
use monero_rpc::{DaemonClient, Error};
use monero_testkit::{
    Process, START_DEADLINE, TEST_ADDRESS, TempDir, free_port, monerod_at_least, monerod_release,
    skip_unless_installed,
};
use serde_json::json;

/// How long monerod may take to open its ports, find its peers or sync.
const DEADLINE: Duration = START_DEADLINE;

// ---------------------------------------------------------------------------
// From the built objects to a loopback monerod. This mirrors what a pod gives
// monerod: the config Secret mounted at /etc/monerod, the data volume at /data,
// $(POD_NAME) expanded by the kubelet, the pod's own IP for 0.0.0.0 binds and
// its own ports. On loopback the volumes become temporary directories, 0.0.0.0
// becomes 127.0.0.1, each pod port becomes a free port and each node's Service
// name becomes 127.0.0.1 with that node's P2P port.
// ---------------------------------------------------------------------------

const DATA_MOUNT: &str = "/data";
const CONFIG_MOUNT: &str = "/etc/monerod";

/// One pod's ports moved to free loopback ports.
#[derive(Clone, Copy, Debug)]
struct PodPorts {
    p2p: u16,
    rpc: u16,
    restricted: u16,
    zmq: u16,
}

impl PodPorts {
    /// Ports for `n` pods, all distinct.
    fn free(n: usize) -> Vec<PodPorts> {
        let mut seen = BTreeSet::new();
        let mut p = Vec::new();
        while p.len() < 4 * n {
            let port = free_port().unwrap();
            if seen.insert(port) {
                p.push(port);
            }
        }
        p.chunks(4)
            .map(|c| PodPorts {
                p2p: c[0],
                rpc: c[1],
                restricted: c[2],
                zmq: c[3],
            })
            .collect()
    }

    /// The loopback port for a port the pod's monerod would listen on.
    fn map(&self, pod_port: u16) -> u16 {
        let pod = Network::Regtest.ports();
        match pod_port {
            p if p == pod.p2p => self.p2p,
            p if p == pod.rpc => self.rpc,
            p if p == pod.restricted_rpc => self.restricted,
            p if p == pod.zmq => self.zmq,
            other => panic!("the args name port {other}, which the test does not map"),
        }
    }
}

/// The monerod container's args, as the pod gives them, rewritten for loopback.
fn loopback_args(
    args: &[String],
    pod_name: &str,
    data_dir: &Path,
    config_dir: &Path,
    ports: PodPorts,
) -> Vec<String> {
    args.iter()
        .map(|arg| {
            let arg = arg.replace("$(POD_NAME)", pod_name);
            let Some((flag, value)) = arg.split_once('=') else {
                return arg;
            };
            let value = if value == DATA_MOUNT {
                data_dir.display().to_string()
            } else if let Some(file) = value.strip_prefix(&format!("{CONFIG_MOUNT}/")) {
                config_dir.join(file).display().to_string()
            } else if value == "0.0.0.0" {
                "127.0.0.1".to_string()
            } else if flag.ends_with("-port") {
                ports.map(value.parse().unwrap()).to_string()
            } else {
                value.to_string()
            };
            format!("{flag}={value}")
        })
        .collect()
}

/// Writes every file of the config Secret into `dir`, as the Secret volume does,
/// with each `add-exclusive-node=<Service name>:<port>` pointed at that node's
/// loopback P2P port.
fn write_config(secret: &Secret, dir: &Path, p2p_by_host: &BTreeMap<String, u16>) {
    let pod_p2p = Network::Regtest.ports().p2p.to_string();
    for (key, value) in secret.data.as_ref().unwrap() {
        let text = String::from_utf8(value.0.clone()).unwrap();
        let text: String = text
            .lines()
            .map(|line| match line.strip_prefix("add-exclusive-node=") {
                Some(peer) => {
                    let (host, port) = peer.rsplit_once(':').unwrap();
                    assert_eq!(port, pod_p2p, "{key}: {line}");
                    let port = p2p_by_host
                        .get(host)
                        .unwrap_or_else(|| panic!("{key} names {host}, which is no node"));
                    format!("add-exclusive-node=127.0.0.1:{port}\n")
                }
                None => format!("{line}\n"),
            })
            .collect();
        std::fs::write(dir.join(key), text).unwrap();
    }
}

/// A network's rendered nodes running on loopback.
struct Started {
    ports: Vec<PodPorts>,
    nodes: Vec<Node>,
    clients: Vec<DaemonClient>,
    /// The config Secret's files, as mounted (each Service name pointed at
    /// its node's loopback P2P port).
    etc: TempDir,
}

/// Starts one monerod per pod with the rendered args and files, each node's
/// Service name in the files pointed at that node's P2P port.
fn start_network(args: &[String], secret: &Secret, pods: &[String], namespace: &str) -> Started {
    let ports = PodPorts::free(pods.len());
    let p2p_by_host: BTreeMap<String, u16> = pods
        .iter()
        .map(|p| format!("{p}.{namespace}.svc.cluster.local"))
        .zip(ports.iter().map(|p| p.p2p))
        .collect();
    let etc = TempDir::new("loopback-etc").unwrap();
    write_config(secret, etc.path(), &p2p_by_host);
    // Added for loopback: every node is 127.0.0.1 here, and monerod allows one
    // connection per IP by default, so a 3-node mesh stalls at 1-2 connections
    // without it. In a cluster each pod has its own address.
    let extra = &["--max-connections-per-ip=5"];
    let nodes: Vec<Node> = pods
        .iter()
        .zip(&ports)
        .map(|(pod, p)| Node::start(pod, args, etc.path(), extra, *p))
        .collect();
    let clients = nodes.iter().map(|n| n.client(n.ports.rpc, None)).collect();
    Started {
        ports,
        nodes,
        clients,
        etc,
    }
}

/// The builders' context for the monerod on PATH: flags rendered for its
/// release, as the operator renders them for the image's (hack/test.sh runs
/// these tests once per release).
fn release_ctx() -> Context {
    Context::new(Images {
        monerod_version: Some(monerod_release().unwrap()),
        ..Images::default()
    })
}

/// One running monerod "pod".
#[derive(Debug)]
struct Node {
    pod: String,
    ports: PodPorts,
    // Declared before the directory so the process stops before its data is removed.
    process: Process,
    dir: TempDir,
}

impl Node {
    /// Starts monerod with the pod's args moved onto loopback, plus `extra`.
    fn start(
        pod: &str,
        args: &[String],
        config_dir: &Path,
        extra: &[&str],
        ports: PodPorts,
    ) -> Node {
        let dir = TempDir::new(&format!("loopback-{pod}")).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = Command::new("monerod");
        cmd.args(loopback_args(args, pod, &data, config_dir, ports))
            .args(extra);
        let process = Process::spawn(pod, cmd, dir.path().join("stdout.log")).unwrap();
        Node {
            pod: pod.into(),
            ports,
            process,
            dir,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn client(&self, port: u16, login: Option<(&str, &str)>) -> DaemonClient {
        let mut b = DaemonClient::builder(format!("http://127.0.0.1:{port}"))
            .timeout(Duration::from_secs(10));
        if let Some((u, p)) = login {
            b = b.login(u, p);
        }
        b.build().unwrap()
    }
}

/// Polls `check` until it answers Ok, failing with every node's output when a
/// monerod exits or `DEADLINE` passes (the last Err says what was seen).
async fn wait_for(
    what: &str,
    nodes: &mut [Node],
    mut check: impl AsyncFnMut() -> Result<(), String>,
) {
    let start = Instant::now();
    loop {
        let seen = match check().await {
            Ok(()) => return,
            Err(seen) => seen,
        };
        for n in nodes.iter_mut() {
            if !n.process.is_running() {
                panic!(
                    "{} exited while waiting for {what}\n{}",
                    n.pod,
                    n.process.log_tail(6000)
                );
            }
        }
        if start.elapsed() > DEADLINE {
            let tails: Vec<String> = nodes.iter().map(|n| n.process.log_tail(3000)).collect();
            panic!(
                "timed out after {DEADLINE:?} waiting for {what}; last seen: {seen}\n{}",
                tails.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn config_secret(d: &Desired, name: &str) -> Secret {
    d.children
        .iter()
        .find_map(|c| match c {
            Child::Secret(s) if s.metadata.name.as_deref() == Some(name) => Some((**s).clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Secret {name} among {:?}", d.names_of(|_| true)))
}

fn monerod_container(d: &Desired) -> Container {
    let pod = d.stateful_set().unwrap().spec.as_ref().unwrap();
    pod.template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .find(|c| c.name == "monerod")
        .unwrap()
        .clone()
}

fn secret_text(s: &Secret, key: &str) -> String {
    let data = s.data.as_ref().unwrap();
    let v = data
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", data.keys()));
    String::from_utf8(v.0.clone()).unwrap()
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_set_args_and_config_run_monerod_with_its_login() {
    if skip_unless_installed(&[("monerod", "monero")]) {
        return;
    }
    let (user, password) = ("operator-test", "pa55-w0rd:with colon");
    let set: MoneroNodeSet = serde_json::from_value(json!({
        "apiVersion": "utxo.com.br/v1alpha1",
        "kind": "MoneroNodeSet",
        "metadata": {"name": "solo", "namespace": "test"},
        "spec": {
            "replicas": 1,
            "network": "regtest",
            "monerod": {
                "args": ["--out-peers=8", "--in-peers=16"],
                "rpc": {"login": {"secretName": "rpc-user"}}
            }
        }
    }))
    .unwrap();
    let mut ctx = release_ctx();
    ctx.secrets.insert(
        "rpc-user".into(),
        BTreeMap::from([
            ("username".to_string(), user.as_bytes().to_vec()),
            // A trailing newline, as `kubectl create secret --from-file` leaves.
            ("password".to_string(), format!("{password}\n").into_bytes()),
        ]),
    );
    let desired = build::node_set(&set, &ctx).unwrap();
    let args = monerod_container(&desired).args.unwrap();
    let secret = config_secret(&desired, "solo-monerod");
    let conf = secret_text(&secret, "monerod.conf");
    for expected in [
        "--config-file=/etc/monerod/monerod.conf",
        "--data-dir=/data",
        "--log-file=/dev/null",
        "--max-log-file-size=0",
        "--rpc-restricted-bind-ip=0.0.0.0",
        "--p2p-bind-ip=0.0.0.0",
        "--out-peers=8",
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.contains(password)),
        "the password stays out of the args"
    );
    assert!(
        conf.contains(&format!("rpc-login={user}:{password}\n")),
        "{conf}"
    );

    let etc = TempDir::new("loopback-etc").unwrap();
    write_config(&secret, etc.path(), &BTreeMap::new());
    // Added for loopback: a NodeSet is an open node (no exclusive peers), so only
    // --offline keeps it from reaching for seed nodes and its peer list; the
    // builder gives --disable-dns-checkpoints to networks only, and the network
    // rule wants it always.
    let mut nodes = vec![Node::start(
        "solo-0",
        &args,
        etc.path(),
        &["--offline", "--disable-dns-checkpoints"],
        PodPorts::free(1)[0],
    )];
    let ports = nodes[0].ports;
    let restricted = nodes[0].client(ports.restricted, Some((user, password)));
    wait_for(
        "the restricted RPC port to answer get_info",
        &mut nodes,
        async || {
            restricted
                .get_info()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )
    .await;

    let info = restricted.get_info().await.unwrap();
    assert!(info.is_restricted(), "{info:?}");
    assert_eq!(info.network(), "regtest");
    assert!(info.offline);
    // Synchronized even offline at height 1: on regtest the flag says nothing.
    assert!(info.synchronized, "{info:?}");
    eprintln!(
        "node set: restricted get_info: height {} synchronized {} offline {}",
        info.height, info.synchronized, info.offline
    );

    // rpc-login from the config file guards both RPC ports: the restricted one
    // too, so a public node with a login is public only to holders of the login.
    let node = &nodes[0];
    for (port, what) in [
        (ports.restricted, "restricted"),
        (ports.rpc, "unrestricted"),
    ] {
        let anonymous = node.client(port, None).get_info().await;
        assert!(
            matches!(anonymous, Err(Error::Unauthorized { .. })),
            "{what} port without login: {anonymous:?}"
        );
        let wrong = node
            .client(port, Some((user, "not-the-password")))
            .get_info()
            .await;
        assert!(
            matches!(wrong, Err(Error::Unauthorized { .. })),
            "{what} port with a wrong password: {wrong:?}"
        );
    }
    let full = node.client(ports.rpc, Some((user, password)));
    let info = full.get_info().await.unwrap();
    assert!(!info.is_restricted());
    assert_eq!(
        full.generate_blocks(2, TEST_ADDRESS).await.unwrap().height,
        2
    );

    // The user's args reached monerod.
    let out: serde_json::Value = full
        .other("/out_peers", &json!({"set": false}))
        .await
        .unwrap();
    let inp: serde_json::Value = full
        .other("/in_peers", &json!({"set": false}))
        .await
        .unwrap();
    assert_eq!(out["out_peers"], 8, "{out}");
    assert_eq!(inp["in_peers"], 16, "{inp}");

    // --log-file=/dev/null: the log reaches stdout once (monerod's console
    // copy; the file-format copy, with tab-separated fields, is gone), and no
    // log file grows on the data volume.
    let log = std::fs::read_to_string(node.dir.path().join("stdout.log")).unwrap();
    assert!(
        log.contains("Core RPC server initialized") || log.contains("core RPC server initialized"),
        "{}",
        node.process.log_tail(2000)
    );
    assert!(!log.contains("\tINFO\t"), "{}", node.process.log_tail(2000));
    let data_files: Vec<String> = std::fs::read_dir(node.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !data_files.iter().any(|f| f.ends_with(".log")),
        "no log file on the data volume: {data_files:?}"
    );

    // Stop by PID; the port closes.
    let mut node = nodes.pop().unwrap();
    node.process.stop(Duration::from_secs(20));
    assert!(!node.process.is_running());
    assert!(matches!(
        restricted.get_info().await,
        Err(Error::Connect { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_per_pod_configs_form_a_closed_mesh_that_syncs() {
    if skip_unless_installed(&[("monerod", "monero")]) {
        return;
    }
    if !monerod_at_least(&[0, 18]) {
        // Found by the version matrix: 0.17 takes one peer connection per
        // address, with no flag to raise it, and here every node is 127.0.0.1
        // (in a cluster each pod has its own). tests/releases.rs still starts
        // a network node's rendering on 0.17.
        eprintln!(
            "SKIPPED: monerod {} allows one connection per address; a loopback mesh needs 0.18",
            monerod_release().unwrap_or_default()
        );
        return;
    }
    const N: usize = 3;
    // As config/samples/utxo_v1alpha1_moneronetwork.yaml, with 3 nodes.
    let net: MoneroNetwork = serde_json::from_value(json!({
        "apiVersion": "utxo.com.br/v1alpha1",
        "kind": "MoneroNetwork",
        "metadata": {"name": "regtest", "namespace": "test"},
        "spec": {
            "replicas": N,
            "template": {"spec": {"monerod": {"args": ["--regtest", "--fixed-difficulty=1"]}}}
        }
    }))
    .unwrap();
    let desired = build::network(&net, &release_ctx()).unwrap();
    let args = monerod_container(&desired).args.unwrap();
    assert!(
        args.iter()
            .any(|a| a == "--config-file=/etc/monerod/$(POD_NAME).conf"),
        "{args:?}"
    );
    let secret = config_secret(&desired, "regtest-monerod");
    let services = desired.names_of(|c| matches!(c, Child::Service(_)));
    let pods: Vec<String> = (0..N).map(|i| format!("regtest-{i}")).collect();
    let hosts: Vec<String> = pods
        .iter()
        .map(|p| {
            assert!(services.contains(p), "a Service per node: {services:?}");
            format!("{p}.test.svc.cluster.local")
        })
        .collect();
    // Each pod's file names exactly the others.
    for (i, pod) in pods.iter().enumerate() {
        let conf = secret_text(&secret, &format!("{pod}.conf"));
        let named: BTreeSet<&str> = conf
            .lines()
            .filter_map(|l| l.strip_prefix("add-exclusive-node="))
            .collect();
        let others: BTreeSet<String> = (0..N)
            .filter(|j| *j != i)
            .map(|j| format!("{}:18080", hosts[j]))
            .collect();
        assert_eq!(
            named,
            others.iter().map(String::as_str).collect(),
            "{pod}.conf:\n{conf}"
        );
    }

    let Started {
        ports: all_ports,
        mut nodes,
        clients,
        etc: _etc,
    } = start_network(&args, &secret, &pods, "test");

    // Every node's outgoing peers are exactly the others' P2P ports: monerod read
    // its own per-pod file, every add-exclusive-node line of it, and nothing else.
    let expected: Vec<BTreeSet<String>> = (0..N)
        .map(|i| {
            (0..N)
                .filter(|j| *j != i)
                .map(|j| all_ports[j].p2p.to_string())
                .collect()
        })
        .collect();
    wait_for(
        "every node to connect to exactly the others",
        &mut nodes,
        async || {
            let mut seen = Vec::new();
            for (i, c) in clients.iter().enumerate() {
                let conns = c.get_connections().await.map_err(|e| e.to_string())?;
                let out: BTreeSet<String> = conns
                    .connections
                    .iter()
                    .filter(|c| !c.incoming)
                    .map(|c| c.port.clone())
                    .collect();
                let incoming = conns.connections.iter().filter(|c| c.incoming).count();
                seen.push(format!("node {i}: out {out:?}, {incoming} in"));
                if out != expected[i] {
                    return Err(seen.join("; "));
                }
            }
            eprintln!("network: {}", seen.join("; "));
            Ok(())
        },
    )
    .await;

    for c in &clients {
        let info = c.get_info().await.unwrap();
        assert_eq!(info.outgoing_connections_count, (N - 1) as u64);
        // monerod 0.18 reports a regtest node synchronized from the start, with
        // only the genesis block and before any peer sent anything.
        assert!(info.synchronized, "{info:?}");
    }

    let mined = clients[0].generate_blocks(5, TEST_ADDRESS).await.unwrap();
    let top = mined.blocks.last().unwrap().clone();
    wait_for(
        "all nodes to reach node 0's height",
        &mut nodes,
        async || {
            let mut seen = Vec::new();
            for c in &clients {
                let h = c.get_height().await.map_err(|e| e.to_string())?;
                seen.push(format!("{} {}", h.height, h.hash));
            }
            if seen.iter().all(|s| *s == format!("6 {top}")) {
                Ok(())
            } else {
                Err(seen.join("; "))
            }
        },
    )
    .await;
    for c in &clients {
        let info = c.get_info().await.unwrap();
        assert!(info.synchronized);
        assert_eq!(info.height, 6);
    }

    for mut n in nodes {
        n.process.stop(Duration::from_secs(20));
        assert!(!n.process.is_running(), "{} stopped", n.pod);
    }
}

/// A 5-node Ring with blocks on a schedule and `readyAtHeight`, from the
/// rendered per-pod files: each node connects to exactly its two neighbours,
/// node 0's lab file (run by monero-exporter's lab mode, in this process)
/// makes a block a second, every node reaches the height, and the status the
/// operator computes from what the nodes report is Ready, with the topology
/// matched.
#[tokio::test(flavor = "multi_thread")]
async fn a_ring_makes_blocks_on_its_schedule_and_is_ready_at_its_height() {
    if skip_unless_installed(&[("monerod", "monero")]) {
        return;
    }
    if !monerod_at_least(&[0, 18]) {
        eprintln!(
            "SKIPPED: monerod 0.17 allows one connection per address; a loopback ring needs 0.18"
        );
        return;
    }
    const N: usize = 5;
    const READY_AT: u64 = 10;
    let net: MoneroNetwork = serde_json::from_value(json!({
        "apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
        "metadata": {"name": "ring", "namespace": "test"},
        "spec": {"replicas": N, "topology": {"type": "Ring"}, "readyAtHeight": READY_AT,
                 "blocks": {"interval": "1s", "miners": [0]},
                 "template": {"spec": {"network": "regtest", "monerod": {"args": ["--fixed-difficulty=1"]}}}}
    }))
    .unwrap();
    let desired = build::network(&net, &release_ctx()).unwrap();
    let args = monerod_container(&desired).args.unwrap();
    let secret = config_secret(&desired, "ring-monerod");
    let pods: Vec<String> = (0..N).map(|i| format!("ring-{i}")).collect();
    let Started {
        ports: all_ports,
        mut nodes,
        clients,
        etc,
    } = start_network(&args, &secret, &pods, "test");
    let node_of_port: BTreeMap<String, String> = all_ports
        .iter()
        .zip(&pods)
        .map(|(p, pod)| (p.p2p.to_string(), pod.clone()))
        .collect();

    // Each node's outgoing connections are its two ring neighbours.
    let reported = async || {
        let mut peers = BTreeMap::new();
        for (pod, c) in pods.iter().zip(&clients) {
            let conns = c.get_connections().await.map_err(|e| e.to_string())?;
            let mut out: Vec<String> = conns
                .connections
                .iter()
                .filter(|c| !c.incoming)
                .filter_map(|c| node_of_port.get(&c.port).cloned())
                .collect();
            out.sort();
            peers.insert(pod.clone(), out);
        }
        Ok::<_, String>(peers)
    };
    wait_for(
        "every node to connect to its two neighbours",
        &mut nodes,
        async || {
            let peers = reported().await?;
            if peers == desired.peers {
                Ok(())
            } else {
                Err(format!("{peers:?}"))
            }
        },
    )
    .await;

    // Node 0's lab file: a block a second, no restart needed.
    let lab = etc.path().join("ring-0.lab.json");
    let lab_client = nodes[0].client(nodes[0].ports.rpc, None);
    let mining = tokio::spawn(monero_exporter::lab::Lab::new(lab_client).unwrap().run(lab));
    wait_for("every node at readyAtHeight", &mut nodes, async || {
        let mut seen = Vec::new();
        for c in &clients {
            seen.push(c.get_height().await.map_err(|e| e.to_string())?.height);
        }
        if seen.iter().all(|h| *h >= READY_AT) {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
    mining.abort();

    // The operator's status from what the nodes report.
    let mut rows = Vec::new();
    for (pod, c) in pods.iter().zip(&clients) {
        let info = c.get_info().await.unwrap();
        let observed = monero_reconciler::controller::status::Observed {
            height: Some(info.height),
            target_height: Some(info.height),
            synchronized: Some(info.synchronized),
            ..Default::default()
        };
        rows.push((pod.clone(), true, Some(observed)));
    }
    let status = monero_reconciler::controller::status::compute(
        monero_reconciler::controller::status::StatusInput {
            generation: Some(1),
            desired: N as i32,
            selector: desired.selector.clone(),
            pods: rows,
            network: true,
            peers: reported().await.unwrap(),
            expected_peers: desired.peers.clone(),
            ready_at_height: Some(READY_AT),
            now: k8s_openapi::jiff::Timestamp::now(),
            ..Default::default()
        },
    );
    for (type_, want) in [
        ("Ready", "True"),
        ("TopologyMatches", "True"),
        ("Connected", "True"),
    ] {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        assert_eq!(c.status, want, "{type_}: {}", c.message);
    }
    assert_eq!(status.nodes[0].peers.as_deref(), Some("1,4"));

    for mut n in nodes {
        n.process.stop(Duration::from_secs(20));
        assert!(!n.process.is_running(), "{} stopped", n.pod);
    }
}

/// The wallets' pod on loopback: each rendered monero-wallet-rpc container
/// run with its args and config file (the daemon's Service name pointed at
/// that node's restricted port, the wallet ports from `base`), and the
/// sidecar's lab file with `firstPort` moved to `base`.
struct WalletPod {
    processes: Vec<Process>,
    lab: PathBuf,
    _dir: TempDir,
}

impl WalletPod {
    fn start(d: &Desired, name: &str, restricted_by_host: &BTreeMap<String, u16>) -> WalletPod {
        let dir = TempDir::new("loopback-wallets").unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        // The volume's mount point, which the pod always has.
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let secret = config_secret(d, name);
        for (key, value) in secret.data.as_ref().unwrap() {
            std::fs::write(etc.join(key), &value.0).unwrap();
        }
        // Two consecutive free ports: wallet i serves base + i, as in the pod.
        let base = loop {
            let p = free_port().unwrap();
            if std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
                break p;
            }
        };
        let lab = etc.join(build::WALLETS_LAB_KEY);
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&lab).unwrap()).unwrap();
        cfg["firstPort"] = json!(base);
        std::fs::write(&lab, cfg.to_string()).unwrap();
        let sts = d
            .children
            .iter()
            .find_map(|c| match c {
                Child::StatefulSet(s) if s.metadata.name.as_deref() == Some(name) => Some(s),
                _ => None,
            })
            .unwrap();
        let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let mut processes = Vec::new();
        for c in pod
            .containers
            .iter()
            .filter(|c| c.name.starts_with("wallet-"))
        {
            assert_eq!(
                c.command.as_deref(),
                Some(&["/usr/bin/monero-wallet-rpc".to_string()][..])
            );
            let i: u16 = c.name["wallet-".len()..].parse().unwrap();
            let args: Vec<String> = c
                .args
                .as_ref()
                .unwrap()
                .iter()
                .map(|a| {
                    let Some((flag, value)) = a.split_once('=') else {
                        return a.clone();
                    };
                    let value = match flag {
                        "--daemon-address" => {
                            let (host, _) = value.rsplit_once(':').unwrap();
                            format!("127.0.0.1:{}", restricted_by_host[host])
                        }
                        "--rpc-bind-ip" => "127.0.0.1".into(),
                        "--rpc-bind-port" => (base + i).to_string(),
                        "--config-file" => etc
                            .join(value.rsplit('/').next().unwrap())
                            .display()
                            .to_string(),
                        "--wallet-dir" | "--shared-ringdb-dir" => dir
                            .path()
                            .join(value.trim_start_matches('/'))
                            .display()
                            .to_string(),
                        _ => value.to_string(),
                    };
                    format!("{flag}={value}")
                })
                .collect();
            assert!(
                !args.iter().any(|a| a.contains("secret-pass")),
                "no login in the args: {args:?}"
            );
            let mut cmd = Command::new("monero-wallet-rpc");
            cmd.args(&args);
            let log = dir.path().join(format!("{}.log", c.name));
            processes.push(Process::spawn(&c.name, cmd, log).unwrap());
        }
        WalletPod {
            processes,
            lab,
            _dir: dir,
        }
    }
}

/// A network with wallets, from the rendered objects: two nodes, the miner's
/// lab sidecar, two real monero-wallet-rpc with a login, and the wallets'
/// sidecar (monero-exporter's wallets mode, in this process). The wallets are
/// made, their addresses go through the status into the miner's lab file (as
/// the operator does), the coinbase funds them, they send each other
/// transfers, and every node has those transactions in its chain.
#[tokio::test(flavor = "multi_thread")]
async fn wallets_are_funded_by_the_miners_and_pay_each_other() {
    if skip_unless_installed(&[("monerod", "monero"), ("monero-wallet-rpc", "monero")]) {
        return;
    }
    if !monerod_at_least(&[0, 18]) {
        eprintln!(
            "SKIPPED: monerod 0.17 allows one connection per address; two loopback nodes need 0.18"
        );
        return;
    }
    let mut net: MoneroNetwork = serde_json::from_value(json!({
        "apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
        "metadata": {"name": "lab", "namespace": "test"},
        "spec": {"replicas": 2,
                 "blocks": {"interval": "1s", "blocksPerRound": 5, "miners": [0]},
                 "wallets": {"count": 2, "transactionsPerMinute": 30,
                             "login": {"secretName": "wallet-login"}},
                 "template": {"spec": {"network": "regtest", "monerod": {"args": ["--fixed-difficulty=1"]}}}}
    }))
    .unwrap();
    let mut ctx = release_ctx();
    ctx.secrets.insert(
        "wallet-login".into(),
        BTreeMap::from([
            ("username".to_string(), b"lab".to_vec()),
            ("password".to_string(), b"secret-pass".to_vec()),
        ]),
    );
    let desired = build::network(&net, &ctx).unwrap();
    let args = monerod_container(&desired).args.unwrap();
    let secret = config_secret(&desired, "lab-monerod");
    let pods: Vec<String> = (0..2).map(|i| format!("lab-{i}")).collect();
    let Started {
        ports,
        mut nodes,
        clients,
        etc,
    } = start_network(&args, &secret, &pods, "test");
    let restricted_by_host: BTreeMap<String, u16> = pods
        .iter()
        .zip(&ports)
        .map(|(p, ports)| (format!("{p}.test.svc.cluster.local"), ports.restricted))
        .collect();
    let mut wallets = WalletPod::start(&desired, "lab-wallets", &restricted_by_host);

    // The miner's sidecar, and the wallets' sidecar with the rendered login.
    let miner_lab = etc.path().join("lab-0.lab.json");
    let miner = tokio::spawn(
        monero_exporter::lab::Lab::new(nodes[0].client(ports[0].rpc, None))
            .unwrap()
            .run(miner_lab.clone()),
    );
    let cfg = monero_exporter::wallets::read_config(&wallets.lab).unwrap();
    let lab = monero_exporter::wallets::WalletsLab::new(
        &cfg,
        "127.0.0.1",
        Some(("lab".into(), "secret-pass".into())),
    )
    .unwrap();
    let driver = tokio::spawn(lab.clone().run(wallets.lab.clone()));

    let check_wallets = |wallets: &mut WalletPod| {
        for p in &mut wallets.processes {
            assert!(p.is_running(), "a wallet-rpc exited:\n{}", p.log_tail(4000));
        }
    };
    // The wallets are made; their addresses reach the status, and from it the
    // miner's lab file, through the builder (the operator's loop).
    wait_for("both wallets made", &mut nodes, async || {
        check_wallets(&mut wallets);
        let r = lab.reports();
        if r.iter().all(|w| w.address.is_some()) {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
    let status_of = |reports: &[monero_exporter::wallets::WalletReport]| {
        let seen: Vec<monero_crd::WalletStatus> =
            serde_json::from_value(serde_json::to_value(reports).unwrap()).unwrap();
        let rows = pods.iter().map(|p| (p.clone(), true, None)).collect();
        monero_reconciler::controller::status::compute(
            monero_reconciler::controller::status::StatusInput {
                generation: Some(1),
                desired: 2,
                pods: rows,
                network: true,
                wallets: Some(monero_reconciler::controller::status::WalletsInput {
                    count: 2,
                    funded_by_blocks: true,
                    seen,
                    message: None,
                }),
                now: k8s_openapi::jiff::Timestamp::now(),
                ..Default::default()
            },
        )
    };
    let early = status_of(&lab.reports());
    net.status = Some(early.clone());
    let desired = build::network(&net, &ctx).unwrap();
    let miner_file = secret_text(&config_secret(&desired, "lab-monerod"), "lab-0.lab.json");
    for w in &early.wallets {
        let a = w.address.as_deref().unwrap();
        assert!(miner_file.contains(a), "{a} not in {miner_file}");
    }
    std::fs::write(&miner_lab, &miner_file).unwrap();

    wait_for(
        "both wallets funded from coinbase",
        &mut nodes,
        async || {
            check_wallets(&mut wallets);
            let r = lab.reports();
            if r.iter().all(|w| w.unlocked_balance.unwrap_or(0) > 0) {
                Ok(())
            } else {
                Err(format!("{r:?}"))
            }
        },
    )
    .await;
    let funded = status_of(&lab.reports());
    let cond = |s: &monero_crd::SetStatus, t: &str| {
        let c = s.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        (c.status, c.reason)
    };
    if early.wallets.iter().all(|w| w.unlocked_balance == Some(0)) {
        assert_eq!(
            cond(&early, "Ready"),
            ("False".into(), "WalletsNotFunded".into())
        );
    }
    assert_eq!(
        cond(&funded, "WalletsFunded"),
        ("True".into(), "Funded".into())
    );
    assert_eq!(cond(&funded, "Ready").0, "True");

    // Each sends to the other; the transactions reach every node's chain
    // (get_info's tx_count leaves coinbase out).
    wait_for("transfers in every node's chain", &mut nodes, async || {
        check_wallets(&mut wallets);
        let r = lab.reports();
        if !r.iter().all(|w| w.transfers.unwrap_or(0) >= 1) {
            return Err(format!("{r:?}"));
        }
        let mut seen = Vec::new();
        for c in &clients {
            seen.push(c.get_info().await.map_err(|e| e.to_string())?.tx_count);
        }
        if seen.iter().all(|n| *n >= 2) {
            Ok(())
        } else {
            Err(format!("non-coinbase transactions per node: {seen:?}"))
        }
    })
    .await;

    driver.abort();
    miner.abort();
    for p in &mut wallets.processes {
        p.stop(Duration::from_secs(20));
        assert!(!p.is_running());
    }
    for mut n in nodes {
        n.process.stop(Duration::from_secs(20));
        assert!(!n.process.is_running(), "{} stopped", n.pod);
    }
}
