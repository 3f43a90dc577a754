//! Status: what each replica reports, folded into the custom resource's
//! status with conditions whose transition times only move on a real change.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use monero_crd::{ReplicaStatus, RolloutStatus, SetStatus, WalletStatus};

/// What polling one pod found (absent fields were not readable).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Height from the restricted RPC.
    pub height: Option<u64>,
    /// Target height.
    pub target_height: Option<u64>,
    /// Synchronized flag.
    pub synchronized: Option<bool>,
    /// Inbound peers (from the exporter).
    pub incoming: Option<u64>,
    /// Outbound peers (from the exporter).
    pub outgoing: Option<u64>,
    /// monerod's or xmrig's version (from the exporter).
    pub version: Option<String>,
    /// Miners: hashes per second (from the exporter).
    pub hashrate: Option<f64>,
    /// Miners: accepted shares (from the exporter).
    pub shares_accepted: Option<u64>,
    /// Miners: rejected shares (from the exporter).
    pub shares_rejected: Option<u64>,
    /// Networks: the IP addresses of the node's connections (its exporter's `/lab`).
    pub peer_ips: Option<Vec<String>>,
    /// Networks: the top block's hash (restricted RPC).
    pub top_hash: Option<String>,
    /// Networks: reorganizations its lab sidecar saw.
    pub reorganizations: Option<u64>,
    /// Networks: blocks the last one replaced.
    pub last_reorganization_depth: Option<u64>,
    /// Networks: the hashes of the node's last blocks, by height (its lab
    /// sidecar's chain watch): where chains part.
    pub recent_hashes: Option<BTreeMap<u64, String>>,
    /// A network's wallets pod: what its sidecar's `/wallets` reports.
    pub wallets: Option<Vec<WalletStatus>>,
    /// Why something could not be read.
    pub message: Option<String>,
}

/// A condition beyond the standard ones, such as `PodMonitor`.
#[derive(Clone, Debug, PartialEq)]
pub struct Extra {
    /// Condition type.
    pub type_: String,
    /// True or False.
    pub ok: bool,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

impl Extra {
    /// A condition.
    pub fn new(type_: &str, ok: bool, reason: &str, message: &str) -> Extra {
        Extra {
            type_: type_.into(),
            ok,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Why the desired state cannot be reached at all: an invalid spec, a child
/// whose name another object holds, a child the API server refused. It turns
/// Ready False and Degraded True with its reason, so that the cause shows in
/// `kubectl get` and `kubectl describe`, not only in the operator's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// Condition reason, such as `InvalidSpec`, `NameConflict`, `ApplyFailed`.
    pub reason: String,
    /// What is wrong, naming the object and, where there is one, the server's message.
    pub message: String,
}

impl Blocked {
    /// A blocker.
    pub fn new(reason: &str, message: impl Into<String>) -> Blocked {
        Blocked {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Whether a pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Where peers on the Internet reach a replica's own P2P Service: its load
/// balancer's address once the cloud gives one, or the address of the node
/// its pod runs on with its node port (the Local traffic policy sends that
/// node's traffic to the replica on it).
pub fn p2p_address(
    desired: &Service,
    live: Option<&Service>,
    host_ip: Option<&str>,
) -> Option<String> {
    let spec = desired.spec.as_ref()?;
    let port = spec.ports.as_ref()?.first()?;
    match spec.type_.as_deref()? {
        "NodePort" => Some(format!("{}:{}", host_ip?, port.node_port?)),
        "LoadBalancer" => {
            let ingress = live?
                .status
                .as_ref()?
                .load_balancer
                .as_ref()?
                .ingress
                .as_ref()?
                .first()?;
            let host = ingress.ip.as_ref().or(ingress.hostname.as_ref())?;
            Some(format!("{host}:{}", port.port))
        }
        _ => None,
    }
}

/// The inputs of a status computation. `Default` is a resource with nothing
/// yet: no pods, no previous status, at the Unix epoch.
#[derive(Debug, Default)]
pub struct StatusInput<'a> {
    /// The status currently stored (for stable transition times).
    pub previous: Option<&'a SetStatus>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.replicas`.
    pub desired: i32,
    /// Pod selector string.
    pub selector: String,
    /// The pods, with what polling found (None for kinds that are not polled).
    pub pods: Vec<(String, bool, Option<Observed>)>,
    /// Why the spec could not be applied, if it could not.
    pub blocked: Option<Blocked>,
    /// Whether the nodes are expected to connect to each other (a network).
    pub network: bool,
    /// Whether the replicas are xmrig miners: no chain, no sync; a hashrate.
    pub miners: bool,
    /// Onion and I2P addresses by pod name.
    pub addresses: BTreeMap<String, (Option<String>, Option<String>)>,
    /// The set-wide RPC onion address.
    pub rpc_onion: Option<String>,
    /// Conditions beyond the standard ones.
    pub extra: Vec<Extra>,
    /// Each pod's main image and StatefulSet revision, by pod name.
    pub versions: BTreeMap<String, (Option<String>, Option<String>)>,
    /// Where the rollout of the latest template stands.
    pub rollout: Option<RolloutStatus>,
    /// Pods on the latest template.
    pub updated: Option<i32>,
    /// Each replica's public P2P address, by pod name, where known.
    pub p2p: BTreeMap<String, String>,
    /// Networks: each node's connections as node names, as it reports them.
    pub peers: BTreeMap<String, Vec<String>>,
    /// Networks: each node's peers as the topology asks.
    pub expected_peers: BTreeMap<String, Vec<String>>,
    /// Networks: Ready waits for every node to reach this height.
    pub ready_at_height: Option<u64>,
    /// The monerod release the flags are made for, described.
    pub monerod_version: Option<String>,
    /// Networks: the wallets `spec.wallets` asks for, and whether blocks are
    /// made for them (then Ready waits until every one can spend).
    pub wallets: Option<WalletsInput>,
    /// Now, for new transition times.
    pub now: Timestamp,
}

/// A network's wallets, for the status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WalletsInput {
    /// How many `spec.wallets` asks for.
    pub count: i32,
    /// Whether the network mines to them (`spec.blocks`).
    pub funded_by_blocks: bool,
    /// What the wallets' sidecar reports, in wallet order (empty when it
    /// could not be read, with why in `message`).
    pub seen: Vec<WalletStatus>,
    /// Why the wallets could not be read, when they could not.
    pub message: Option<String>,
}

impl WalletsInput {
    /// The wallets that cannot spend yet, described; all of them, while they
    /// cannot be read.
    fn unfunded(&self) -> Vec<String> {
        if let Some(m) = &self.message {
            return vec![m.clone()];
        }
        (0..self.count)
            .filter_map(|i| {
                let w = self.seen.iter().find(|w| w.index == i);
                // A wallet that has sent has had money to spend: its unlocked
                // balance drops to 0 while its change waits 10 blocks, and
                // Ready should not flap with it.
                if w.is_some_and(|w| w.transfers.unwrap_or(0) > 0) {
                    return None;
                }
                match w.map(|w| (w.unlocked_balance, &w.message)) {
                    Some((Some(b), _)) if b > 0 => None,
                    Some((Some(_), _)) => Some(format!("wallet-{i} has no unlocked balance")),
                    Some((None, Some(m))) => Some(format!("wallet-{i}: {m}")),
                    _ => Some(format!("wallet-{i} not read yet")),
                }
            })
            .collect()
    }

    /// `WalletsFunded`: every wallet has something to spend.
    fn condition(&self, cond: &impl Fn(&str, bool, &str, String) -> Condition) -> Condition {
        let unfunded = self.unfunded();
        match (&self.message, unfunded.is_empty()) {
            (Some(m), _) => cond("WalletsFunded", false, "WalletsUnreadable", m.clone()),
            (None, true) => cond(
                "WalletsFunded",
                true,
                "Funded",
                format!("{} wallets have an unlocked balance", self.count),
            ),
            (None, false) => cond("WalletsFunded", false, "Unfunded", clipped(&unfunded)),
        }
    }
}

/// Computes the new status. Pure: the same inputs give the same status, and a
/// condition keeps its lastTransitionTime unless its status changes.
pub fn compute(input: StatusInput<'_>) -> SetStatus {
    let replicas = input.pods.len() as i32;
    let ready = input.pods.iter().filter(|(_, r, _)| *r).count() as i32;
    // Height and sync belong to monerod; a miner's observations are its hashrate.
    let polled = !input.miners && input.pods.iter().any(|(_, _, o)| o.is_some());
    // Every pod, and every replica with an identity but no pod yet (its
    // addresses are known before it runs), in replica order.
    let mut rows: Vec<(String, bool, Option<Observed>)> = input.pods.clone();
    for name in input.addresses.keys() {
        if !rows.iter().any(|(n, _, _)| n == name) {
            rows.push((name.clone(), false, None));
        }
    }
    rows.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
    let nodes: Vec<ReplicaStatus> = rows
        .iter()
        .map(|(name, ready, o)| {
            let o = o.clone().unwrap_or_default();
            let (onion, b32) = input.addresses.get(name).cloned().unwrap_or_default();
            let (image, revision) = input.versions.get(name).cloned().unwrap_or_default();
            let latest = input
                .rollout
                .as_ref()
                .and_then(|r| r.update_revision.as_ref());
            ReplicaStatus {
                image,
                updated: latest.zip(revision.as_ref()).map(|(l, r)| l == r),
                p2p_address: input.p2p.get(name).cloned(),
                peers: input.peers.get(name).map(|p| ranges(p)),
                reorganizations: o.reorganizations,
                last_reorganization_depth: o.last_reorganization_depth,
                onion_address: onion,
                i2p_address: b32,
                name: name.clone(),
                ready: *ready,
                height: o.height,
                target_height: o.target_height,
                synchronized: o.synchronized,
                incoming_connections: o.incoming,
                outgoing_connections: o.outgoing,
                version: o.version,
                hashrate: o.hashrate.map(|h| h.round() as u64),
                shares_accepted: o.shares_accepted,
                shares_rejected: o.shares_rejected,
                message: o.message,
            }
        })
        .collect();
    let synced = nodes
        .iter()
        .filter(|n| n.synchronized == Some(true))
        .count();
    let height = nodes.iter().filter_map(|n| n.height).max();
    let hashrates: Vec<u64> = nodes.iter().filter_map(|n| n.hashrate).collect();
    let hashrate = (input.miners && !hashrates.is_empty()).then(|| hashrates.iter().sum());

    let old: BTreeMap<&str, &Condition> = input
        .previous
        .map(|s| s.conditions.iter().map(|c| (c.type_.as_str(), c)).collect())
        .unwrap_or_default();
    let generation = input.generation;
    let cond = |type_: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        let since = old
            .get(type_)
            .filter(|c| c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(input.now));
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time: since,
        }
    };

    let mut conditions = Vec::new();
    let blocked = input.blocked.as_ref();
    let all_ready = blocked.is_none() && ready == input.desired && replicas == input.desired;
    let below = input.ready_at_height.map(|h| {
        let at = nodes
            .iter()
            .filter(|n| n.height.is_some_and(|x| x >= h))
            .count();
        (h, at)
    });
    let high_enough = below.is_none_or(|(_, at)| at as i32 == input.desired);
    let unfunded = input
        .wallets
        .as_ref()
        .filter(|w| w.funded_by_blocks)
        .map(WalletsInput::unfunded)
        .filter(|u| !u.is_empty());
    let (reason, message) = match (blocked, below) {
        (Some(b), _) => (b.reason.as_str(), b.message.clone()),
        (None, _) if !all_ready => (
            "ReplicasNotReady",
            format!("{ready}/{} replicas ready", input.desired),
        ),
        (None, Some((h, at))) if !high_enough => (
            "BelowReadyHeight",
            format!(
                "{at}/{} nodes at height {h} or above (spec.readyAtHeight)",
                input.desired
            ),
        ),
        (None, _) if unfunded.is_some() => (
            "WalletsNotFunded",
            format!(
                "{} (spec.wallets with spec.blocks)",
                clipped(unfunded.as_deref().unwrap_or_default())
            ),
        ),
        (None, _) => (
            "AllReplicasReady",
            format!("{ready}/{} replicas ready", input.desired),
        ),
    };
    let funded = unfunded.is_none();
    conditions.push(cond(
        "Ready",
        all_ready && high_enough && funded,
        reason,
        message,
    ));
    let (progressing, reason, message) = progress(&input, replicas, ready);
    conditions.push(cond("Progressing", progressing, reason, message));
    let degraded = blocked.is_some() || (replicas > 0 && ready == 0);
    let (reason, message) = match blocked {
        Some(b) => (b.reason.as_str(), b.message.clone()),
        None if degraded => ("NoReplicaReady", "no replica can serve".into()),
        None => ("AsExpected", "at least one replica serves".into()),
    };
    conditions.push(cond("Degraded", degraded, reason, message));
    if polled {
        let all_synced = replicas > 0 && synced == nodes.len();
        conditions.push(cond(
            "Synced",
            all_synced,
            if all_synced {
                "Synchronized"
            } else {
                "Syncing"
            },
            format!("{synced}/{} replicas synchronized", nodes.len()),
        ));
        if input.network {
            conditions.push(connected(&input, &nodes, replicas, &cond));
            if let Some(c) = topology_matches(&input, &nodes, &cond) {
                conditions.push(c);
            }
            if let Some(c) = forked(&rows, &cond) {
                conditions.push(c);
            }
        }
    }

    if let Some(w) = &input.wallets {
        conditions.push(w.condition(&cond));
    }
    for e in &input.extra {
        conditions.push(cond(&e.type_, e.ok, &e.reason, e.message.clone()));
    }

    SetStatus {
        observed_generation: generation,
        replicas,
        ready_replicas: ready,
        selector: input.selector,
        height: if polled { height } else { None },
        rpc_onion_address: input.rpc_onion,
        synchronized: polled.then(|| format!("{synced}/{}", nodes.len())),
        hashrate,
        conditions,
        nodes,
        updated_replicas: input.updated,
        rollout: input.rollout,
        monerod_version: input.monerod_version,
        wallets: input.wallets.map(|w| w.seen).unwrap_or_default(),
    }
}

/// In a closed network each node should have as many peers as its topology
/// gives it (every other node in a full mesh): counted from the peers it
/// reports, or from its connection counts where it reports none.
fn connected(
    input: &StatusInput<'_>,
    nodes: &[ReplicaStatus],
    replicas: i32,
    cond: &impl Fn(&str, bool, &str, String) -> Condition,
) -> Condition {
    let full_mesh = (replicas - 1).max(0) as usize;
    let want = |name: &str| input.expected_peers.get(name).map_or(full_mesh, Vec::len);
    let have = |n: &ReplicaStatus| match input.peers.get(&n.name) {
        Some(p) => p.len(),
        None => {
            (n.incoming_connections.unwrap_or(0) + n.outgoing_connections.unwrap_or(0)) as usize
        }
    };
    let short: Vec<String> = nodes
        .iter()
        .filter(|n| have(n) < want(&n.name))
        .map(|n| format!("{} has {} of {}", n.name, have(n), want(&n.name)))
        .collect();
    let ok = short.is_empty() && replicas > 0;
    let message = if input.expected_peers.is_empty() {
        format!("each node needs {full_mesh} peers")
    } else if short.is_empty() {
        "every node has as many peers as the topology gives it".into()
    } else {
        format!("peers missing: {}", clipped(&short))
    };
    let reason = if ok { "AllPeered" } else { "MissingPeers" };
    cond("Connected", ok, reason, message)
}

/// Whether the graph the nodes report is the one the topology asks for:
/// only once every node reports its peers.
fn topology_matches(
    input: &StatusInput<'_>,
    nodes: &[ReplicaStatus],
    cond: &impl Fn(&str, bool, &str, String) -> Condition,
) -> Option<Condition> {
    if input.expected_peers.is_empty() || nodes.is_empty() {
        return None;
    }
    let mut differences = Vec::new();
    for n in nodes {
        let want: std::collections::BTreeSet<&String> = input
            .expected_peers
            .get(&n.name)
            .into_iter()
            .flatten()
            .collect();
        let have: std::collections::BTreeSet<&String> = input.peers.get(&n.name)?.iter().collect();
        for missing in want.difference(&have) {
            differences.push(format!("{} lacks {missing}", n.name));
        }
        for extra in have.difference(&want) {
            differences.push(format!("{} also has {extra}", n.name));
        }
    }
    let ok = differences.is_empty();
    let (reason, message) = if ok {
        (
            "AsAsked",
            "the nodes' peers are the topology's edges".to_string(),
        )
    } else {
        ("Differs", clipped(&differences))
    };
    Some(cond("TopologyMatches", ok, reason, message))
}

/// Peers by index in ranges (`0-2,5`), then any that are no node as they are.
pub fn ranges(peers: &[String]) -> String {
    let mut indices: Vec<i32> = Vec::new();
    let mut others: Vec<&str> = Vec::new();
    for p in peers {
        match crate::rollout::ordinal(p) {
            Some(i) => indices.push(i),
            None => others.push(p),
        }
    }
    indices.sort_unstable();
    indices.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut k = 0;
    while k < indices.len() {
        let start = indices[k];
        while k + 1 < indices.len() && indices[k + 1] == indices[k] + 1 {
            k += 1;
        }
        parts.push(if indices[k] == start {
            start.to_string()
        } else {
            format!("{start}-{}", indices[k])
        });
        k += 1;
    }
    parts.extend(others.iter().map(|o| o.to_string()));
    parts.join(",")
}

/// Whether the nodes are on more than one chain: the hashes they report at
/// the highest height all of them have seen differ. Only once every node's
/// lab sidecar reports its last blocks.
fn forked(
    rows: &[(String, bool, Option<Observed>)],
    cond: &impl Fn(&str, bool, &str, String) -> Condition,
) -> Option<Condition> {
    let chains: Vec<(&String, &BTreeMap<u64, String>)> = rows
        .iter()
        .map(|(name, _, o)| Some((name, o.as_ref()?.recent_hashes.as_ref()?)))
        .collect::<Option<_>>()?;
    let common = chains
        .iter()
        .map(|(_, h)| h.keys().next_back().copied())
        .min()??;
    // A node far above the others may no longer name that height: it is not counted.
    let mut by_hash: BTreeMap<&String, Vec<&str>> = BTreeMap::new();
    for (name, hashes) in &chains {
        if let Some(hash) = hashes.get(&common) {
            by_hash.entry(hash).or_default().push(name.as_str());
        }
    }
    let apart = by_hash.len() > 1;
    let message = if apart {
        let sides: Vec<String> = by_hash
            .iter()
            .map(|(hash, names)| {
                let short: String = hash.chars().take(8).collect();
                format!("{} on {short}", names.join(", "))
            })
            .collect();
        format!(
            "{} chains at height {common}: {}",
            by_hash.len(),
            sides.join("; ")
        )
    } else {
        format!("one chain at height {common}")
    };
    let reason = if apart { "ChainsDiffer" } else { "OneChain" };
    Some(cond("Forked", apart, reason, message))
}

/// The first few items, and how many more.
fn clipped(items: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut out = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > SHOWN {
        out.push_str(&format!("; and {} more", items.len() - SHOWN));
    }
    out
}

/// The Progressing condition: a gated rollout says which replica it waits
/// on and why, or that it halted; otherwise pods are still coming.
fn progress(input: &StatusInput<'_>, replicas: i32, ready: i32) -> (bool, &'static str, String) {
    let waiting = input.rollout.as_ref().and_then(|r| {
        let name = r.waiting_for.as_deref()?;
        Some((r, name, r.message.as_deref().unwrap_or_default()))
    });
    let updated = input
        .updated
        .map(|u| format!(" ({u}/{} updated)", input.desired))
        .unwrap_or_default();
    match waiting {
        _ if input.blocked.is_some() => (
            false,
            "Stable",
            format!("{replicas} pods for {} desired", input.desired),
        ),
        Some((r, name, why)) if r.halted => (
            false,
            "RolloutHalted",
            format!(
                "{name} did not get there within progressDeadline: {why}{updated}; the replicas below it keep the old template; fix or revert the change"
            ),
        ),
        Some((_, name, why)) => (
            true,
            "RollingOut",
            format!("waiting for {name}: {why}{updated}"),
        ),
        None if replicas != input.desired || ready != replicas => (
            true,
            "RollingOut",
            format!("{replicas} pods for {} desired", input.desired),
        ),
        None => (
            false,
            "Stable",
            format!("{replicas} pods for {} desired", input.desired),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(
        pods: Vec<(String, bool, Option<Observed>)>,
        previous: Option<&SetStatus>,
        now: i64,
    ) -> StatusInput<'_> {
        StatusInput {
            previous,
            generation: Some(3),
            desired: 2,
            selector: "a=b".into(),
            pods,
            network: true,
            now: Timestamp::from_second(now).unwrap(),
            ..StatusInput::default()
        }
    }

    fn obs(h: u64, synced: bool, peers: u64) -> Option<Observed> {
        Some(Observed {
            height: Some(h),
            target_height: Some(h),
            synchronized: Some(synced),
            incoming: Some(0),
            outgoing: Some(peers),
            version: Some("0.18.0.0-release".into()),
            ..Observed::default()
        })
    }

    fn cond<'a>(s: &'a SetStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn counts_heights_and_conditions() {
        let s = compute(input(
            vec![
                ("n-0".into(), true, obs(10, true, 1)),
                ("n-1".into(), false, obs(7, false, 1)),
            ],
            None,
            100,
        ));
        assert_eq!((s.replicas, s.ready_replicas), (2, 1));
        assert_eq!(s.height, Some(10));
        assert_eq!(s.synchronized.as_deref(), Some("1/2"));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "Ready").message, "1/2 replicas ready");
        assert_eq!(cond(&s, "Synced").status, "False");
        assert_eq!(cond(&s, "Connected").status, "True");
        assert_eq!(cond(&s, "Degraded").status, "False");
        assert_eq!(s.nodes[1].height, Some(7));
        assert_eq!(s.nodes[0].version.as_deref(), Some("0.18.0.0-release"));
    }

    #[test]
    fn transition_times_move_only_on_a_change() {
        let first = compute(input(
            vec![
                ("n-0".into(), true, obs(1, true, 1)),
                ("n-1".into(), false, obs(1, true, 0)),
            ],
            None,
            100,
        ));
        let t_ready = cond(&first, "Ready").last_transition_time.clone();
        // Same state later: every time stays.
        let again = compute(input(
            vec![
                ("n-0".into(), true, obs(2, true, 1)),
                ("n-1".into(), false, obs(2, true, 0)),
            ],
            Some(&first),
            200,
        ));
        assert_eq!(cond(&again, "Ready").last_transition_time, t_ready);
        assert_eq!(
            again
                .conditions
                .iter()
                .map(|c| &c.last_transition_time)
                .collect::<Vec<_>>(),
            first
                .conditions
                .iter()
                .map(|c| &c.last_transition_time)
                .collect::<Vec<_>>()
        );
        // Ready flips: only Ready (and what really changed) moves.
        let later = compute(input(
            vec![
                ("n-0".into(), true, obs(3, true, 1)),
                ("n-1".into(), true, obs(3, true, 1)),
            ],
            Some(&again),
            300,
        ));
        assert_eq!(cond(&later, "Ready").status, "True");
        assert_eq!(
            cond(&later, "Ready").last_transition_time,
            Time(Timestamp::from_second(300).unwrap())
        );
        assert_eq!(
            cond(&later, "Synced").last_transition_time,
            cond(&first, "Synced").last_transition_time
        );
        assert_eq!(
            cond(&later, "Connected").last_transition_time,
            Time(Timestamp::from_second(300).unwrap())
        );
    }

    #[test]
    fn an_invalid_spec_is_not_ready_and_degraded_with_the_reason() {
        let mut i = input(vec![], None, 1);
        i.blocked = Some(Blocked::new(
            "InvalidSpec",
            "MoneroNodeSet a/b: spec.monerod.args: bad",
        ));
        let s = compute(i);
        let r = cond(&s, "Ready");
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(
            r.message.contains("spec.monerod.args: bad"),
            "{}",
            r.message
        );
        let d = cond(&s, "Degraded");
        assert_eq!(
            (d.status.as_str(), d.reason.as_str()),
            ("True", "InvalidSpec")
        );
        assert!(
            d.message.contains("spec.monerod.args: bad"),
            "{}",
            d.message
        );
        assert!(
            s.conditions.iter().all(|c| c.type_ != "Synced"),
            "nothing polled, no Synced"
        );
    }

    #[test]
    fn a_replicas_public_address_is_its_node_and_node_port_or_its_load_balancer() {
        use k8s_openapi::api::core::v1::{
            LoadBalancerIngress, LoadBalancerStatus, ServicePort, ServiceSpec, ServiceStatus,
        };
        let svc = |type_: &str, node_port: Option<i32>| Service {
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                ports: Some(vec![ServicePort {
                    port: 18080,
                    node_port,
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        };
        let np = svc("NodePort", Some(30080));
        assert_eq!(
            p2p_address(&np, None, Some("203.0.113.7")).as_deref(),
            Some("203.0.113.7:30080")
        );
        assert_eq!(p2p_address(&np, None, None), None, "not scheduled yet");
        let lb = svc("LoadBalancer", None);
        assert_eq!(
            p2p_address(&lb, Some(&lb), Some("10.0.0.1")),
            None,
            "no address yet"
        );
        let mut live = lb.clone();
        live.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    hostname: Some("node-1.example.org".into()),
                    ..LoadBalancerIngress::default()
                }]),
            }),
            ..ServiceStatus::default()
        });
        assert_eq!(
            p2p_address(&lb, Some(&live), None).as_deref(),
            Some("node-1.example.org:18080")
        );
    }

    #[test]
    fn peers_show_as_index_ranges() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ranges(&names(&["n-3", "n-1", "n-2", "n-7", "n-5"])),
            "1-3,5,7"
        );
        assert_eq!(ranges(&names(&["n-0", "10.0.0.9"])), "0,10.0.0.9");
        assert_eq!(ranges(&[]), "");
    }

    fn ring_input(
        peers: &[(&str, &[&str])],
    ) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>) {
        let to_map = |v: &[(&str, &[&str])]| {
            v.iter()
                .map(|(n, p)| (n.to_string(), p.iter().map(|s| s.to_string()).collect()))
                .collect::<BTreeMap<_, _>>()
        };
        let expected = to_map(&[
            ("n-0", &["n-1", "n-2"][..]),
            ("n-1", &["n-0", "n-2"][..]),
            ("n-2", &["n-0", "n-1"][..]),
        ]);
        (to_map(peers), expected)
    }

    #[test]
    fn the_reported_graph_is_compared_with_the_topology() {
        let pods = vec![
            ("n-0".into(), true, obs(5, true, 2)),
            ("n-1".into(), true, obs(5, true, 2)),
            ("n-2".into(), true, obs(5, true, 2)),
        ];
        let (reported, expected) = ring_input(&[
            ("n-0", &["n-1", "n-2"]),
            ("n-1", &["n-0", "n-2"]),
            ("n-2", &["n-0", "n-1"]),
        ]);
        let mut i = input(pods.clone(), None, 1);
        i.desired = 3;
        i.peers = reported;
        i.expected_peers = expected.clone();
        let s = compute(i);
        assert_eq!(cond(&s, "TopologyMatches").status, "True");
        assert_eq!(cond(&s, "Connected").status, "True");
        assert_eq!(s.nodes[0].peers.as_deref(), Some("1-2"));
        // n-2 lost n-0 and found 10.9.9.9: both named.
        let (reported, _) = ring_input(&[
            ("n-0", &["n-1", "n-2"]),
            ("n-1", &["n-0", "n-2"]),
            ("n-2", &["n-1", "10.9.9.9"]),
        ]);
        let mut i = input(pods.clone(), None, 1);
        i.desired = 3;
        i.peers = reported;
        i.expected_peers = expected.clone();
        let s = compute(i);
        let t = cond(&s, "TopologyMatches");
        assert_eq!((t.status.as_str(), t.reason.as_str()), ("False", "Differs"));
        assert_eq!(t.message, "n-2 lacks n-0; n-2 also has 10.9.9.9");
        // Until every node reports its peers, there is nothing to compare.
        let mut i = input(pods, None, 1);
        i.desired = 3;
        i.expected_peers = expected;
        let s = compute(i);
        assert!(s.conditions.iter().all(|c| c.type_ != "TopologyMatches"));
        assert_eq!(
            cond(&s, "Connected").status,
            "True",
            "counted from in + out"
        );
    }

    #[test]
    fn a_ring_node_needs_two_peers_not_all() {
        let (_, expected) = ring_input(&[]);
        let mut i = input(
            vec![
                ("n-0".into(), true, obs(5, true, 2)),
                ("n-1".into(), true, obs(5, true, 1)),
                ("n-2".into(), true, obs(5, true, 2)),
            ],
            None,
            1,
        );
        i.desired = 3;
        i.expected_peers = expected;
        let s = compute(i);
        let c = cond(&s, "Connected");
        assert_eq!(c.status, "False");
        assert_eq!(c.message, "peers missing: n-1 has 1 of 2");
    }

    fn chain(hashes: &[(u64, &str)], reorgs: u64) -> Option<Observed> {
        Some(Observed {
            height: hashes.first().map(|(h, _)| *h),
            recent_hashes: Some(hashes.iter().map(|(h, s)| (*h, s.to_string())).collect()),
            reorganizations: Some(reorgs),
            last_reorganization_depth: (reorgs > 0).then_some(3),
            ..Observed::default()
        })
    }

    #[test]
    fn a_fork_shows_where_the_chains_part_and_its_end_shows_the_reorganization() {
        // Two sides at different heights: compared at the highest height both saw.
        let mut i = input(
            vec![
                (
                    "n-0".into(),
                    true,
                    chain(&[(12, "aaaa1111"), (11, "aaaa0000"), (10, "common")], 0),
                ),
                (
                    "n-1".into(),
                    true,
                    chain(&[(11, "bbbb0000"), (10, "common")], 0),
                ),
            ],
            None,
            1,
        );
        i.expected_peers = BTreeMap::from([
            ("n-0".into(), vec!["n-1".into()]),
            ("n-1".into(), vec!["n-0".into()]),
        ]);
        let s = compute(i);
        let f = cond(&s, "Forked");
        assert_eq!(
            (f.status.as_str(), f.reason.as_str()),
            ("True", "ChainsDiffer")
        );
        assert_eq!(
            f.message,
            "2 chains at height 11: n-0 on aaaa0000; n-1 on bbbb0000"
        );
        // Healed: one chain; n-1 went through a reorganization of 3 blocks.
        let s = compute(input(
            vec![
                (
                    "n-0".into(),
                    true,
                    chain(&[(13, "aaaa2222"), (12, "aaaa1111")], 0),
                ),
                (
                    "n-1".into(),
                    true,
                    chain(&[(13, "aaaa2222"), (12, "aaaa1111")], 1),
                ),
            ],
            Some(&s),
            2,
        ));
        let f = cond(&s, "Forked");
        assert_eq!(
            (f.status.as_str(), f.message.as_str()),
            ("False", "one chain at height 13")
        );
        assert_eq!(s.nodes[1].reorganizations, Some(1));
        assert_eq!(s.nodes[1].last_reorganization_depth, Some(3));
        // Nodes without a chain watch (no lab sidecar yet): no verdict.
        let s = compute(input(vec![("n-0".into(), true, obs(5, true, 1))], None, 3));
        assert!(s.conditions.iter().all(|c| c.type_ != "Forked"));
    }

    #[test]
    fn ready_waits_for_every_node_to_reach_ready_at_height() {
        let pods = |h: u64| {
            vec![
                ("n-0".to_string(), true, obs(h + 1, true, 1)),
                ("n-1".to_string(), true, obs(h, true, 1)),
            ]
        };
        let mut i = input(pods(99), None, 1);
        i.ready_at_height = Some(100);
        let s = compute(i);
        let r = cond(&s, "Ready");
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "BelowReadyHeight")
        );
        assert_eq!(
            r.message,
            "1/2 nodes at height 100 or above (spec.readyAtHeight)"
        );
        let mut i = input(pods(100), Some(&s), 2);
        i.ready_at_height = Some(100);
        let s = compute(i);
        assert_eq!(cond(&s, "Ready").status, "True");
    }

    #[test]
    fn with_blocks_ready_waits_for_every_wallet_to_have_funds() {
        let pods = vec![
            ("n-0".to_string(), true, obs(70, true, 1)),
            ("n-1".to_string(), true, obs(70, true, 1)),
        ];
        let wallet = |i: i32, unlocked: Option<u64>, message: Option<&str>| WalletStatus {
            index: i,
            address: Some(format!("4w{i}")),
            unlocked_balance: unlocked,
            message: message.map(str::to_string),
            ..WalletStatus::default()
        };
        let with = |seen: Vec<WalletStatus>, funded_by_blocks: bool| {
            let mut i = input(pods.clone(), None, 1);
            i.wallets = Some(WalletsInput {
                count: 2,
                funded_by_blocks,
                seen,
                message: None,
            });
            compute(i)
        };
        let s = with(
            vec![wallet(0, Some(5), None), wallet(1, Some(0), None)],
            true,
        );
        let r = cond(&s, "Ready");
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "WalletsNotFunded")
        );
        assert!(
            r.message.contains("wallet-1 has no unlocked balance"),
            "{}",
            r.message
        );
        assert_eq!(cond(&s, "WalletsFunded").reason, "Unfunded");
        assert_eq!(s.wallets.len(), 2);
        // A wallet not reported at all, or with a problem, is named too.
        let s = with(
            vec![wallet(0, None, Some("opening the wallet: refused"))],
            true,
        );
        let m = &cond(&s, "WalletsFunded").message;
        assert!(
            m.contains("wallet-0: opening the wallet: refused")
                && m.contains("wallet-1 not read yet"),
            "{m}"
        );
        // Without blocks nothing funds them: Ready does not wait, the condition tells.
        let s = with(
            vec![wallet(0, Some(0), None), wallet(1, Some(0), None)],
            false,
        );
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "WalletsFunded").status, "False");
        let s = with(
            vec![wallet(0, Some(1), None), wallet(1, Some(2), None)],
            true,
        );
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "WalletsFunded").reason, "Funded");
        // One that has sent everything it could unlock is still funded.
        let spent = WalletStatus {
            transfers: Some(3),
            ..wallet(1, Some(0), None)
        };
        let s = with(vec![wallet(0, Some(1), None), spent], true);
        assert_eq!(cond(&s, "Ready").status, "True");
    }

    #[test]
    fn miners_have_no_sync_fields() {
        let mut i = input(
            vec![("m-0".into(), true, None), ("m-1".into(), true, None)],
            None,
            1,
        );
        i.network = false;
        i.miners = true;
        let s = compute(i);
        assert_eq!(s.height, None);
        assert_eq!(s.synchronized, None);
        assert_eq!(s.hashrate, None);
        assert_eq!(cond(&s, "Ready").status, "True");
    }

    #[test]
    fn miners_hashrates_add_up_and_each_replica_shows_its_shares() {
        let miner = |h: Option<f64>, good: u64| {
            Some(Observed {
                hashrate: h,
                shares_accepted: Some(good),
                shares_rejected: Some(0),
                version: Some("6.22.2".into()),
                ..Observed::default()
            })
        };
        let mut i = input(
            vec![
                ("m-0".into(), true, miner(Some(100.4), 3)),
                ("m-1".into(), true, miner(Some(50.0), 1)),
                ("m-2".into(), false, miner(None, 0)),
            ],
            None,
            1,
        );
        i.network = false;
        i.miners = true;
        let s = compute(i);
        assert_eq!(s.hashrate, Some(150));
        assert_eq!(s.nodes[0].hashrate, Some(100));
        assert_eq!(s.nodes[0].shares_accepted, Some(3));
        assert_eq!(s.nodes[2].hashrate, None);
        assert!(s.conditions.iter().all(|c| c.type_ != "Synced"));
        assert_eq!(s.synchronized, None);
    }
}
