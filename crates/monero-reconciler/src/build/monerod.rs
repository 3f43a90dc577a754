//! monerod's command line and config files, for the release a set runs.
//!
//! The flags every release since 0.17.2 accepts come first; what a release
//! added is given only to that release and later ones (see [`super::version`]).
//! Secrets never appear here: the RPC login reaches monerod through a config
//! file in the operator's config Secret.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use monero_crd::{Clearnet, Network, ZmqPub};

use super::node::{NodeKind, Spec, pod_name};
use super::version::MonerodVersion;
use crate::args::merge_args;

/// Where the data volume is mounted.
pub const DATA_DIR: &str = "/data";
/// Where the config Secret is mounted.
pub const CONFIG_DIR: &str = "/etc/monerod";
/// The config Secret's key holding `user:password` for the exporter.
pub const LOGIN_FILE_KEY: &str = "rpc-login";
/// The config Secret's key holding the ban list, cleaned of comments.
pub const BAN_LIST_KEY: &str = "ban-list.txt";
/// The end of each network node's lab file in the config Secret
/// (`<pod>.lab.json`): what its exporter sidecar does in the pod.
pub const LAB_SUFFIX: &str = "lab.json";
/// `--rpc-max-connections-per-private-ip` when nothing else is asked: as many
/// as monerod allows in all (its default), since in a cluster one private
/// address (kube-proxy's translation, an ingress, the Tor sidecar on the
/// pod's loopback) stands for many clients.
pub const DEFAULT_PER_PRIVATE_IP: u32 = 100;

/// The config Secret's files and the hash that rolls the pods when they change.
#[derive(Debug)]
pub(super) struct ConfigFiles {
    /// File name to content.
    pub files: BTreeMap<String, String>,
    /// Hash for the pod template annotation.
    pub hash: String,
}

/// The config Secret: monerod.conf (a NodeSet), or one file per pod (a
/// network's peers, or a NodeSet's per-replica external port), the login
/// for the exporter, and the ban list.
///
/// A NodeSet's per-pod files differ only by a port derived from the replica's
/// index, so they are hashed by that rule rather than by content: scaling adds
/// a file and rolls nobody. A network's files name every peer, so scaling
/// changes each node's file and rolls them all (monerod reads peers at start).
pub(super) fn config_files(spec: &Spec<'_>, cluster_domain: &str) -> ConfigFiles {
    let header = "# written by monero-operator; edit the custom resource instead\n";
    let login_line = spec
        .login
        .as_ref()
        .map(|(u, p)| format!("rpc-login={u}:{p}\n"))
        .unwrap_or_default();
    let shared = format!("{header}{login_line}");
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let per_pod = |i: i32| format!("{}.conf", pod_name(spec.owner, i));
    match (spec.kind, spec.node_port_base()) {
        (NodeKind::Network, _) => {
            for i in 0..spec.replicas {
                let peers = peer_lines(spec, i, cluster_domain);
                files.insert(per_pod(i), format!("{shared}{peers}"));
                let lab = format!("{}.{LAB_SUFFIX}", pod_name(spec.owner, i));
                files.insert(lab, lab_file(spec, i, cluster_domain));
            }
        }
        (NodeKind::NodeSet, Some(base)) => {
            for i in 0..spec.replicas {
                let line = format!("p2p-external-port={}\n", base + i);
                files.insert(per_pod(i), format!("{shared}{line}"));
            }
        }
        (NodeKind::NodeSet, None) => {
            files.insert("monerod.conf".into(), shared.clone());
        }
    }
    if let Some((u, p)) = &spec.login {
        files.insert(LOGIN_FILE_KEY.into(), format!("{u}:{p}\n"));
    }
    if let Some(list) = &spec.ban_list {
        files.insert(BAN_LIST_KEY.into(), list.clone());
    }
    // The exporter re-reads its lab file: a new schedule restarts nobody.
    let mut hashed: BTreeMap<String, String> = files.clone();
    hashed.retain(|k, _| !k.ends_with(LAB_SUFFIX));
    if let (NodeKind::NodeSet, Some(base)) = (spec.kind, spec.node_port_base()) {
        // Every `.conf` here is a pod's own file.
        hashed.retain(|k, _| !k.ends_with(".conf"));
        hashed.insert("per-pod.conf".into(), shared);
        hashed.insert("p2p-external-port-base".into(), base.to_string());
    }
    let hash = super::config_hash(hashed.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    ConfigFiles { files, hash }
}

/// Node `i`'s lab file: its part of the block schedule, and the network's
/// nodes by name with those it may not see (none without partitions: then
/// the sidecar lifts any ban a partition left).
fn lab_file(spec: &Spec<'_>, i: i32, cluster_domain: &str) -> String {
    let mut lab = serde_json::Map::new();
    if let Some(b) = spec.blocks.filter(|b| b.miners.contains(&i)) {
        lab.insert(
            "mine".into(),
            serde_json::json!({
                "everySeconds": monero_crd::parse_duration(&b.interval).unwrap_or(30),
                "blocks": b.blocks_per_round,
                "address": b.address,
            }),
        );
        if !spec.wallet_addresses.is_empty()
            && let Some(mine) = lab.get_mut("mine")
        {
            mine["addresses"] = serde_json::json!(spec.wallet_addresses);
        }
    }
    let owner = spec.owner;
    let names = [
        format!(
            "{}-{{}}.{}.svc.{cluster_domain}",
            owner.name, owner.namespace
        ),
        format!(
            "{}-{{}}.{}-headless.{}.svc.{cluster_domain}",
            owner.name, owner.name, owner.namespace
        ),
    ];
    lab.insert(
        "partition".into(),
        serde_json::json!({
            "names": names,
            "nodes": spec.replicas,
            "me": i,
            "ban": banned_by(spec.partitions, spec.replicas, i),
        }),
    );
    format!("{}\n", serde_json::Value::Object(lab))
}

/// The nodes node `i` may not see: those of every other group. The nodes no
/// group names form one more group.
fn banned_by(groups: &[Vec<i32>], replicas: i32, i: i32) -> Vec<i32> {
    if groups.is_empty() {
        return Vec::new();
    }
    let group_of = |n: i32| {
        groups
            .iter()
            .position(|g| g.contains(&n))
            .unwrap_or(groups.len())
    };
    (0..replicas)
        .filter(|j| group_of(*j) != group_of(i))
        .collect()
}

/// Node `i`'s exclusive peers, by their Service names: its neighbours in the
/// network's graph (every other node without one).
fn peer_lines(spec: &Spec<'_>, i: i32, cluster_domain: &str) -> String {
    let peers: Vec<i32> = match &spec.graph {
        Some(g) => g
            .neighbours(usize::try_from(i).unwrap_or(usize::MAX))
            .filter_map(|j| i32::try_from(j).ok())
            .collect(),
        None => (0..spec.replicas).filter(|j| *j != i).collect(),
    };
    peers
        .into_iter()
        .map(|j| {
            format!(
                "add-exclusive-node={}:{}\n",
                super::node::node_host(spec.owner, j, cluster_domain),
                spec.ports.p2p
            )
        })
        .collect()
}

/// Whether each pod reads its own file (`$(POD_NAME).conf`).
pub(super) fn per_pod_files(spec: &Spec<'_>) -> bool {
    spec.kind == NodeKind::Network || spec.node_port_base().is_some()
}

/// monerod's config file in the config Secret's mount.
pub(super) fn base_config_file(spec: &Spec<'_>) -> String {
    if per_pod_files(spec) {
        // Kubernetes expands $(POD_NAME) from the env var of that name.
        format!("{CONFIG_DIR}/$(POD_NAME).conf")
    } else {
        format!("{CONFIG_DIR}/monerod.conf")
    }
}

/// The operator's monerod flags, then the user's (see [`merge_args`]).
pub(super) fn monerod_args(spec: &Spec<'_>) -> Vec<String> {
    let mut d = base_flags(spec);
    d.extend(network_flags(spec));
    d.extend(rpc_flags(spec));
    d.extend(zmq_flags(spec));
    d.extend(tor_flags(spec));
    let m = &spec.node.monerod;
    if spec.ban_list.is_some() {
        d.push(format!("--ban-list={CONFIG_DIR}/{BAN_LIST_KEY}"));
    }
    if m.pruning {
        d.push("--prune-blockchain".into());
    }
    if let Some(level) = m.log_level {
        d.push(format!("--log-level={level}"));
    }
    merge_args(&d, &m.args)
}

/// Paths, binds, and what keeps a pod quiet: no UPnP, no update checks, no
/// log file.
fn base_flags(spec: &Spec<'_>) -> Vec<String> {
    let config_file = if spec.node.tor.enabled || spec.node.i2p.enabled {
        // podconfig's copy of the base config, with the Tor and I2P lines added.
        super::MONEROD_CONFIG.to_string()
    } else {
        base_config_file(spec)
    };
    let through_tor = spec.node.clearnet == Clearnet::ThroughTor;
    let p = &spec.ports;
    vec![
        format!("--data-dir={DATA_DIR}"),
        format!("--config-file={config_file}"),
        "--non-interactive".into(),
        format!(
            "--p2p-bind-ip={}",
            if through_tor { "127.0.0.1" } else { "0.0.0.0" }
        ),
        format!("--p2p-bind-port={}", p.p2p),
        // Unrestricted RPC stays on the pod's loopback, for the exporter.
        "--rpc-bind-ip=127.0.0.1".into(),
        format!("--rpc-bind-port={}", p.rpc),
        "--rpc-restricted-bind-ip=0.0.0.0".into(),
        format!("--rpc-restricted-bind-port={}", p.restricted_rpc),
        // 0.18.5 no longer maps ports by UPnP unless asked, and still takes the flag.
        "--no-igd".into(),
        "--check-updates=disabled".into(),
        // monerod always logs to its stdout; the log file would repeat every
        // line there, or grow on the volume.
        "--log-file=/dev/null".into(),
        "--max-log-file-size=0".into(),
    ]
}

fn network_flags(spec: &Spec<'_>) -> Vec<String> {
    let mut d: Vec<String> = spec.net.flag().map(String::from).into_iter().collect();
    if spec.net == Network::Regtest {
        // The chain lives on a volume; without this monerod wipes it at each start.
        d.push("--keep-fakechain".into());
    }
    if spec.kind == NodeKind::Network {
        // Peers are cluster addresses, which monerod skips unless told otherwise,
        // and a closed network has no DNS checkpoints to ask for.
        d.push("--allow-local-ip".into());
        d.push("--disable-dns-checkpoints".into());
        // A lone node has no peer to sync with, so monerod never considers
        // itself synchronized and answers BUSY to generateblocks for ever:
        // offline, it is synchronized with itself. Scaling up rolls it online.
        if spec.replicas == 1 {
            d.push("--offline".into());
        }
    }
    d
}

/// Bans and connection limits for an RPC reached through Services and
/// sidecars, where one address stands for many clients.
fn rpc_flags(spec: &Spec<'_>) -> Vec<String> {
    let rpc = &spec.node.monerod.rpc;
    let mut d = Vec::new();
    if !rpc.ban_on_errors {
        d.push("--disable-rpc-ban".into());
    }
    if spec.version.at_least(MonerodVersion::V0_18_4) {
        let l = &rpc.limits;
        if let Some(n) = l.max_connections {
            d.push(format!("--rpc-max-connections={n}"));
        }
        if let Some(n) = l.per_public_ip {
            d.push(format!("--rpc-max-connections-per-public-ip={n}"));
        }
        let private = l
            .per_private_ip
            .or(l.max_connections)
            .unwrap_or(DEFAULT_PER_PRIVATE_IP);
        d.push(format!("--rpc-max-connections-per-private-ip={private}"));
    }
    d
}

/// ZMQ RPC (on the pod's address when asked, else on its loopback when the
/// publisher needs the ZMQ server, else off) and the publisher.
fn zmq_flags(spec: &Spec<'_>) -> Vec<String> {
    let m = &spec.node.monerod;
    let p = &spec.ports;
    let mut d = Vec::new();
    match (m.zmq, m.zmq_pub) {
        (true, _) => {
            d.push("--zmq-rpc-bind-ip=0.0.0.0".into());
            d.push(format!("--zmq-rpc-bind-port={}", p.zmq));
            if spec.version.at_least(MonerodVersion::V0_18_5) {
                d.push("--confirm-zmq-rpc-external-bind".into());
            }
        }
        // --zmq-pub does nothing under --no-zmq.
        (false, ZmqPub::Loopback | ZmqPub::Cluster) => {
            d.push("--zmq-rpc-bind-ip=127.0.0.1".into());
            d.push(format!("--zmq-rpc-bind-port={}", p.zmq));
        }
        (false, ZmqPub::Off) => d.push("--no-zmq".into()),
    }
    match m.zmq_pub {
        ZmqPub::Off => {}
        ZmqPub::Loopback => d.push(format!("--zmq-pub=tcp://127.0.0.1:{}", p.zmq_pub)),
        ZmqPub::Cluster => d.push(format!("--zmq-pub=tcp://0.0.0.0:{}", p.zmq_pub)),
    }
    d
}

fn tor_flags(spec: &Spec<'_>) -> Vec<String> {
    if spec.node.clearnet != Clearnet::ThroughTor {
        return Vec::new();
    }
    // Every connection through the tor sidecar; nothing announced or bound outside the pod.
    let socks = monero_anon::render::Ports::pod_defaults(None)
        .tor_socks
        .port();
    vec![
        format!("--proxy=127.0.0.1:{socks}"),
        "--hide-my-port".into(),
    ]
}

/// A ban list as monerod should read it: one address or subnet per line,
/// comments and blank lines dropped (monerod before 0.18.5 logs an error for
/// each). Refuses, naming the line, what no monerod can read. IPv6 addresses
/// are kept; monerod reads them from 0.18.5 on and skips them before.
pub fn clean_ban_list(text: &str) -> Result<String, String> {
    let mut out = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if !ban_entry_ok(line) {
            return Err(format!(
                "line {}: {line:?} is neither an IP address nor an IPv4 subnet (a.b.c.d/n)",
                n + 1
            ));
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

fn ban_entry_ok(entry: &str) -> bool {
    let bare = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    if bare.parse::<IpAddr>().is_ok() {
        return true;
    }
    let Some((ip, prefix)) = entry.split_once('/') else {
        return false;
    };
    ip.parse::<Ipv4Addr>().is_ok() && prefix.parse::<u8>().is_ok_and(|p| p <= 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ban_list_keeps_addresses_and_subnets_and_drops_comments() {
        let list =
            "# spy nodes, v2\n1.2.3.4\n\n10.0.0.0/8  # a subnet\n2001:db8::1\n[2001:db8::2]\n";
        assert_eq!(
            clean_ban_list(list).unwrap(),
            "1.2.3.4\n10.0.0.0/8\n2001:db8::1\n[2001:db8::2]\n"
        );
        assert_eq!(clean_ban_list("").unwrap(), "");
    }

    #[test]
    fn a_ban_list_line_monerod_cannot_read_is_refused_by_number() {
        for (list, line) in [
            ("1.2.3.4\nnot-an-ip\n", 2),
            ("1.2.3.4/33\n", 1),
            ("\n\n2001:db8::/32\n", 3),
            ("1.2.3\n", 1),
        ] {
            let e = clean_ban_list(list).unwrap_err();
            assert!(e.starts_with(&format!("line {line}:")), "{list:?}: {e}");
        }
    }
}
