//! A partitioned network, for real: four monerod from a MoneroNetwork's rendered
//! args and files, each in a network namespace of its own on a bridge this test
//! makes (10.77.j.1/16, no route beyond it), and each node's rendered lab file run
//! by monero-exporter's lab mode (in this process, as the sidecar would). Split
//! into two halves that both mine, the chains part and the status the operator
//! computes says Forked; healed, one chain wins and the other half reorganizes.
//! Skipped, with a message, without root, `ip netns` or a bridge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use monero_exporter::lab::Lab;
use monero_reconciler::build::{self, Child, Context, Desired, Images};
use monero_reconciler::controller::status::{self, Observed, StatusInput};
use monero_rpc::DaemonClient;
use monero_testkit::{Process, TempDir, monerod_at_least, monerod_release, skip_unless_installed};
use serde_json::{Value, json};

const N: usize = 4;
const DEADLINE: Duration = Duration::from_secs(180);

fn ip(cmd: &[&str]) -> bool {
    Command::new("ip")
        .args(cmd)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn iptables(action: &str, bridge: &str) -> bool {
    Command::new("iptables")
        .args([
            action, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The bridge and a namespace per node: node j is 10.77.j.1 in `mop-<pid>-j`.
/// Everything is removed when dropped.
struct Lan {
    bridge: String,
    netns: Vec<String>,
    forward: bool,
}

impl Lan {
    fn new() -> Option<Lan> {
        let pid = std::process::id();
        let mut lan = Lan {
            bridge: format!("mob{}", pid % 100_000),
            netns: Vec::new(),
            forward: false,
        };
        let br = lan.bridge.clone();
        if !(ip(&["link", "add", &br, "type", "bridge"])
            && ip(&["addr", "add", "10.77.255.254/16", "dev", &br])
            && ip(&["link", "set", &br, "up"]))
        {
            return None;
        }
        // Docker sets the FORWARD policy to DROP: bridged traffic between the
        // namespaces must be let through, and only that.
        lan.forward = iptables("-I", &br);
        for j in 0..N {
            let ns = format!("mop-{pid}-{j}");
            let veth = format!("mov{}{j}", pid % 10_000);
            let addr = format!("10.77.{j}.1/16");
            let ok = ip(&["netns", "add", &ns])
                && ip(&[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ])
                && ip(&["link", "set", &veth, "master", &br, "up"])
                && ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])
                && ip(&["-n", &ns, "link", "set", "eth0", "up"])
                && ip(&["-n", &ns, "link", "set", "lo", "up"]);
            lan.netns.push(ns);
            if !ok {
                return None;
            }
        }
        Some(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.netns {
            ip(&["netns", "delete", ns]);
        }
        if self.forward {
            iptables("-D", &self.bridge);
        }
        ip(&["link", "delete", &self.bridge]);
    }
}

fn render(partitions: Value, miners: Value) -> Desired {
    let net = json!({
        "apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
        "metadata": {"name": "part", "namespace": "test"},
        "spec": {"replicas": N, "partitions": partitions,
                 "blocks": {"interval": "1s", "miners": miners},
                 "template": {"spec": {"network": "regtest", "monerod": {"args": ["--fixed-difficulty=1"]}}}}
    });
    let ctx = Context::new(Images {
        monerod_version: Some(monerod_release().unwrap()),
        ..Images::default()
    });
    build::network(&serde_json::from_value(net).unwrap(), &ctx).unwrap()
}

fn files(d: &Desired) -> BTreeMap<String, String> {
    d.children
        .iter()
        .filter_map(|c| match c {
            Child::Secret(s) => Some(s.as_ref()),
            _ => None,
        })
        .flat_map(|s: &Secret| s.data.clone().unwrap_or_default())
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

/// The rendered files as a node sees them here: peers' Service names become
/// their addresses on the bridge, and so do the names in the lab files.
fn write_files(d: &Desired, etc: &Path) {
    for (key, text) in files(d) {
        let text = if key.ends_with(".lab.json") {
            let mut lab: Value = serde_json::from_str(&text).unwrap();
            lab["partition"]["names"] = json!(["10.77.{}.1"]);
            lab.to_string()
        } else {
            text.lines()
                .map(|l| match l.strip_prefix("add-exclusive-node=part-") {
                    Some(rest) => {
                        let j = rest.split('.').next().unwrap();
                        format!("add-exclusive-node=10.77.{j}.1:18080\n")
                    }
                    None => format!("{l}\n"),
                })
                .collect()
        };
        std::fs::write(etc.join(&key), text).unwrap();
    }
}

/// The monerod args of pod `j`, with its volumes in `dir` and its unrestricted
/// RPC on the bridge, where this test (the sidecar's stand-in) reaches it.
fn args(d: &Desired, j: usize, dir: &Path, etc: &Path) -> Vec<String> {
    let sts = d.stateful_set().unwrap();
    let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let c = pod.containers.iter().find(|c| c.name == "monerod").unwrap();
    let mut a: Vec<String> = c
        .args
        .clone()
        .unwrap()
        .iter()
        .map(|a| {
            a.replace("$(POD_NAME)", &format!("part-{j}"))
                .replace("/etc/monerod", &etc.display().to_string())
                .replace("=/data", &format!("={}", dir.display()))
                .replace("--rpc-bind-ip=127.0.0.1", "--rpc-bind-ip=0.0.0.0")
        })
        .collect();
    a.push("--confirm-external-bind".into());
    a
}

fn client(j: usize) -> DaemonClient {
    DaemonClient::builder(format!("http://10.77.{j}.1:18081"))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The status the operator computes from what the labs report.
fn status(labs: &[Lab]) -> monero_crd::SetStatus {
    let pods = labs
        .iter()
        .enumerate()
        .map(|(j, lab)| {
            let r = lab.report();
            let observed = Observed {
                height: r.height,
                recent_hashes: Some(r.hashes.into_iter().collect()),
                reorganizations: Some(r.reorganizations),
                last_reorganization_depth: r.last_reorganization_depth,
                ..Observed::default()
            };
            (format!("part-{j}"), true, Some(observed))
        })
        .collect();
    status::compute(StatusInput {
        desired: N as i32,
        pods,
        network: true,
        now: k8s_openapi::jiff::Timestamp::now(),
        ..StatusInput::default()
    })
}

fn forked(s: &monero_crd::SetStatus) -> Option<(String, String)> {
    s.conditions
        .iter()
        .find(|c| c.type_ == "Forked")
        .map(|c| (c.status.clone(), c.message.clone()))
}

async fn wait_status(
    what: &str,
    labs: &[Lab],
    nodes: &mut [Process],
    ok: impl Fn(&monero_crd::SetStatus) -> bool,
) -> monero_crd::SetStatus {
    let start = Instant::now();
    loop {
        let s = status(labs);
        if ok(&s) {
            return s;
        }
        for n in nodes.iter_mut() {
            assert!(
                n.is_running(),
                "a monerod exited while waiting for {what}\n{}",
                n.log_tail(4000)
            );
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}: {:?}\n{}",
            forked(&s),
            nodes
                .iter()
                .map(|n| n.log_tail(1500))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_halves_fork_and_one_chain_wins_when_the_partition_heals() {
    if skip_unless_installed(&[
        ("monerod", "monero"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
    ]) {
        return;
    }
    if !monerod_at_least(&[0, 18]) {
        eprintln!("SKIPPED: the rendered network's flags need monerod 0.18 here");
        return;
    }
    let Some(lan) = Lan::new() else {
        eprintln!("SKIPPED: no bridge and network namespaces here (needs root and ip netns)");
        return;
    };
    // Connected, both halves' first nodes mining.
    let together = render(json!([]), json!([0, 2]));
    let etc = TempDir::new("part-etc").unwrap();
    write_files(&together, etc.path());
    let data: Vec<TempDir> = (0..N)
        .map(|j| TempDir::new(&format!("part-{j}")).unwrap())
        .collect();
    let mut nodes: Vec<Process> = (0..N)
        .map(|j| {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &lan.netns[j], "monerod"])
                .args(args(&together, j, data[j].path(), etc.path()));
            Process::spawn(&format!("part-{j}"), cmd, data[j].path().join("log")).unwrap()
        })
        .collect();
    let labs: Vec<Lab> = (0..N).map(|j| Lab::new(client(j)).unwrap()).collect();
    let tasks: Vec<_> = labs
        .iter()
        .enumerate()
        .map(|(j, lab)| {
            tokio::spawn(
                lab.clone()
                    .run(etc.path().join(format!("part-{j}.lab.json"))),
            )
        })
        .collect();
    wait_status("one chain past height 5", &labs, &mut nodes, |s| {
        forked(s).is_some_and(|(st, _)| st == "False")
            && s.nodes.iter().all(|n| n.height.is_some_and(|h| h > 5))
    })
    .await;

    // Partitioned: each half bans the other and mines on.
    write_files(&render(json!([[0, 1], [2, 3]]), json!([0, 2])), etc.path());
    let s = wait_status("the halves' chains to part", &labs, &mut nodes, |s| {
        forked(s).is_some_and(|(st, m)| {
            st == "True"
                && m.starts_with("2 chains")
                && m.contains("part-0, part-1 on")
                && m.contains("part-2, part-3 on")
        })
    })
    .await;
    eprintln!("partitioned: {:?}", forked(&s));

    // Still apart, only node 0 mines on until its half is ahead: healed then,
    // the other half's chain is the shorter one, and it alone reorganizes.
    write_files(&render(json!([[0, 1], [2, 3]]), json!([0])), etc.path());
    let s = wait_status("node 0's half ahead", &labs, &mut nodes, |s| {
        s.nodes[0].height.unwrap_or(0) > s.nodes[2].height.unwrap_or(0) + 2
    })
    .await;
    let before: Vec<u64> = s
        .nodes
        .iter()
        .map(|n| n.reorganizations.unwrap_or(0))
        .collect();
    write_files(&render(json!([]), json!([0])), etc.path());
    let since =
        |s: &monero_crd::SetStatus, i: usize| s.nodes[i].reorganizations.unwrap_or(0) - before[i];
    let s = wait_status(
        "one chain again, the half behind reorganized",
        &labs,
        &mut nodes,
        |s| forked(s).is_some_and(|(st, _)| st == "False") && since(s, 2) >= 1 && since(s, 3) >= 1,
    )
    .await;
    for n in &s.nodes[2..] {
        assert!(n.last_reorganization_depth.is_some_and(|d| d >= 1), "{n:?}");
    }
    assert_eq!(
        (since(&s, 0), since(&s, 1)),
        (0, 0),
        "the half ahead kept its chain"
    );
    eprintln!(
        "healed: {:?}; {:?}",
        forked(&s),
        s.nodes
            .iter()
            .map(|n| (n.reorganizations, n.last_reorganization_depth))
            .collect::<Vec<_>>()
    );

    for t in tasks {
        t.abort();
    }
    for mut n in nodes {
        n.stop(Duration::from_secs(20));
        assert!(!n.is_running());
    }
    drop(lan);
}
