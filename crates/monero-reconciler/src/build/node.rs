//! monerod workloads: a MoneroNodeSet (identical public nodes) and a
//! MoneroNetwork (a closed mesh of nodes that only know each other).
//!
//! Both become one StatefulSet with a volume per replica, a headless Service,
//! a client Service, a Secret holding monerod's config file (a large
//! network's n² of peer lines continue in further Secrets), and a
//! PodDisruptionBudget when there is more than one replica. A network also gets
//! one ClusterIP Service per node: monerod resolves `--add-exclusive-node`
//! names once, at start, so a peer must have a name that resolves before its
//! pod exists and an address that survives its pod being rescheduled. A
//! public MoneroNodeSet may get one P2P Service per replica.
//!
//! The spec is checked first ([`check`]), into a [`Spec`] the other steps read:
//! the config files and flags ([`super::monerod`]), the Services
//! ([`super::services`]) and the pod template here.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe,
    TCPSocketAction, Volume, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use monero_crd::{
    Blocks, Clearnet, MoneroNetwork, MoneroNodeSet, Network, NodeSpec, PerReplicaType, Ports,
    Readiness, RpcLogin, Topology, TopologyType, UpdateStrategy, ZmqPub, parse_duration,
};

use super::graph::Graph;
use super::limits::{self, check_annotation_size, check_labels, check_sizes, config_volume};
use super::monerod::{
    CONFIG_DIR, DATA_DIR, LAB_SUFFIX, LOGIN_FILE_KEY, base_config_file, clean_ban_list,
    config_files, monerod_args,
};
use super::pod::{
    EXPORTER_PORT, anti_affinity, apply_overrides, container_security, exporter_container,
    exporter_readiness, field_env, mount, pod_labels, pod_monitor, pod_security, port, requests,
    scrape_annotations, tmp_volume,
};
use super::version::{MonerodVersion, Resolved};
use super::{
    CONFIG_HASH_ANNOTATION, Child, Context, Desired, Owner, check_name, config_hash, invalid,
};
use crate::error::InvalidSpec;
use crate::rollout::{TEMPLATE_HASH_ANNOTATION, sts_strategy};

/// The `app.kubernetes.io/name` of monerod pods.
pub const MONEROD_WORKLOAD: &str = "monerod";
/// Default grace period: time for monerod to flush and close its LMDB database.
pub const MONEROD_GRACE_SECONDS: i64 = 300;
/// The longest RPC user name, and password, taken from a user's Secret. A
/// network repeats the login in every node's file, so an unbounded one would
/// multiply into more config than Secrets hold.
pub const MAX_LOGIN_BYTES: usize = 1024;

/// Which kind a node workload is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A MoneroNodeSet.
    NodeSet,
    /// A MoneroNetwork.
    Network,
}

/// The network a node spec runs on: `spec.network`, else a network flag in the
/// args, else mainnet. A contradiction between the two is refused.
pub fn effective_network(
    owner: &Owner,
    node: &NodeSpec,
    field: &str,
) -> Result<Network, InvalidSpec> {
    let from_args: Vec<Network> = node
        .monerod
        .args
        .iter()
        .filter_map(|a| Network::from_flag(a))
        .collect();
    if from_args.len() > 1 {
        return Err(invalid(
            owner,
            &format!("{field}.monerod.args"),
            "names more than one network flag (--testnet, --stagenet, --regtest)",
        ));
    }
    match (node.network, from_args.first().copied()) {
        (Some(n), Some(a)) if n != a => Err(invalid(
            owner,
            &format!("{field}.monerod.args"),
            format!(
                "{} contradicts {field}.network: {}",
                a.flag().unwrap_or(""),
                n.as_str()
            ),
        )),
        (Some(n), _) => Ok(n),
        (None, Some(a)) => Ok(a),
        (None, None) => Ok(Network::Mainnet),
    }
}

/// The monerod release a node spec runs, as far as the operator can tell.
pub fn monerod_version(node: &NodeSpec, ctx: &Context) -> Resolved {
    Resolved::of(
        &node.monerod,
        &ctx.images.monerod,
        ctx.images.monerod_version.as_deref(),
    )
}

/// Builds the objects of a MoneroNodeSet.
pub fn node_set(set: &MoneroNodeSet, ctx: &Context) -> Result<Desired, InvalidSpec> {
    let owner = Owner::of("MoneroNodeSet", &set.metadata);
    let spec = check(
        &owner,
        NodeKind::NodeSet,
        set.spec.replicas,
        &set.spec.node,
        None,
        ctx,
    )?;
    build(&spec, &set.spec.update_strategy, ctx)
}

/// Builds the objects of a MoneroNetwork.
pub fn network(net: &MoneroNetwork, ctx: &Context) -> Result<Desired, InvalidSpec> {
    let owner = Owner::of("MoneroNetwork", &net.metadata);
    let extra = net
        .spec
        .template
        .metadata
        .as_ref()
        .map(|m| (&m.labels, &m.annotations));
    let node = &net.spec.template.spec.node;
    let mut spec = check(
        &owner,
        NodeKind::Network,
        net.spec.replicas,
        node,
        extra,
        ctx,
    )?;
    spec.graph = Some(peer_graph(&owner, &net.spec.topology, net.spec.replicas)?);
    spec.blocks = net.spec.blocks.as_ref();
    spec.partitions = &net.spec.partitions;
    spec.wallet_addresses = wallet_addresses(net);
    check_blocks(&spec)?;
    check_partitions(&spec)?;
    let mut desired = build(&spec, &net.spec.update_strategy, ctx)?;
    if let Some(w) = &net.spec.wallets {
        super::wallets::check(&spec, w)?;
        let wallets = super::wallets::children(&spec, w, ctx)?;
        check_sizes(&owner, &wallets)?;
        desired.children.extend(wallets);
        super::wallets::widen_pod_monitor(&mut desired.children, &owner);
    }
    Ok(desired)
}

/// The wallets' addresses the status knows, in wallet order: only while
/// `spec.wallets` asks for them.
fn wallet_addresses(net: &MoneroNetwork) -> Vec<String> {
    let Some(w) = &net.spec.wallets else {
        return Vec::new();
    };
    let mut known: Vec<(i32, String)> = net
        .status
        .iter()
        .flat_map(|s| &s.wallets)
        .filter(|s| s.index < w.count)
        .filter_map(|s| Some((s.index, s.address.clone()?)))
        .collect();
    known.sort();
    known.into_iter().map(|(_, a)| a).collect()
}

/// Partitions are made by the exporter sidecar, of nodes that exist, each in
/// one group at most.
fn check_partitions(spec: &Spec<'_>) -> Result<(), InvalidSpec> {
    if spec.partitions.is_empty() {
        return Ok(());
    }
    if !spec.node.exporter.enabled {
        return Err(invalid(
            spec.owner,
            "spec.partitions",
            "partitions are made by the exporter sidecar, which spec.template.spec.exporter.enabled turns off",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (g, group) in spec.partitions.iter().enumerate() {
        for i in group {
            let field = format!("spec.partitions[{g}]");
            if *i < 0 || *i >= spec.replicas {
                let why = format!("{i} is not a node (0 to {})", spec.replicas - 1);
                return Err(invalid(spec.owner, &field, why));
            }
            if !seen.insert(*i) {
                let why = format!("node {i} is in more than one group");
                return Err(invalid(spec.owner, &field, why));
            }
        }
    }
    Ok(())
}

/// Blocks are made by the exporter sidecar, on nodes that exist.
fn check_blocks(spec: &Spec<'_>) -> Result<(), InvalidSpec> {
    let Some(b) = spec.blocks else {
        return Ok(());
    };
    if !spec.node.exporter.enabled {
        return Err(invalid(
            spec.owner,
            "spec.blocks",
            "blocks are made by the exporter sidecar, which spec.template.spec.exporter.enabled turns off",
        ));
    }
    if let Some(m) = b.miners.iter().find(|m| **m < 0 || **m >= spec.replicas) {
        return Err(invalid(
            spec.owner,
            "spec.blocks.miners",
            format!("{m} is not a node (0 to {})", spec.replicas - 1),
        ));
    }
    if parse_duration(&b.interval).is_none_or(|s| s == 0) {
        return Err(invalid(
            spec.owner,
            "spec.blocks.interval",
            "must be a positive number with s, m or h",
        ));
    }
    Ok(())
}

/// A network's peer graph, from `spec.topology`.
fn peer_graph(owner: &Owner, t: &Topology, replicas: i32) -> Result<Graph, InvalidSpec> {
    let n = usize::try_from(replicas).unwrap_or(0);
    let field = |f: &str| format!("spec.topology.{f}");
    let graph = match t.type_ {
        TopologyType::FullMesh => Ok(Graph::full_mesh(n)),
        TopologyType::Ring => Ok(Graph::ring(n)),
        TopologyType::Star => {
            let hub = usize::try_from(t.hub.unwrap_or(0)).unwrap_or(usize::MAX);
            Graph::star(n, hub).map_err(|m| (field("hub"), m))
        }
        TopologyType::RandomRegular => {
            let degree = usize::try_from(t.degree.unwrap_or(0)).unwrap_or(0);
            let seed = u64::try_from(t.seed).unwrap_or(0);
            Graph::random_regular(n, degree, seed).map_err(|m| (field("degree"), m))
        }
        TopologyType::Edges => Graph::from_edges(n, &t.edges).map_err(|m| (field("edges"), m)),
    };
    graph.map_err(|(f, m)| invalid(owner, &f, m))
}

type ExtraMeta<'a> = Option<(&'a BTreeMap<String, String>, &'a BTreeMap<String, String>)>;

/// A node spec, checked, with what it refers to read: everything the objects
/// are made from.
#[derive(Debug)]
pub(super) struct Spec<'a> {
    pub owner: &'a Owner,
    pub kind: NodeKind,
    pub replicas: i32,
    pub node: &'a NodeSpec,
    /// Where the node settings sit in the spec, for messages.
    pub field: &'static str,
    /// The template's extra labels and annotations (a network's).
    pub extra: ExtraMeta<'a>,
    pub net: Network,
    pub ports: Ports,
    pub version: Resolved,
    /// The RPC login from the user's Secret.
    pub login: Option<(String, String)>,
    /// The ban list from the user's ConfigMap, cleaned.
    pub ban_list: Option<String>,
    /// A network's peer graph (`spec.topology`).
    pub graph: Option<Graph>,
    /// A network's block schedule (`spec.blocks`).
    pub blocks: Option<&'a Blocks>,
    /// A network's partitions (`spec.partitions`).
    pub partitions: &'a [Vec<i32>],
    /// The addresses of a network's wallets, as its status reports them:
    /// the miners mine to them in turn.
    pub wallet_addresses: Vec<String>,
}

impl Spec<'_> {
    /// With per-replica NodePort Services, the first replica's node port.
    pub fn node_port_base(&self) -> Option<i32> {
        let per = self.node.service.per_replica.as_ref()?;
        (per.type_ == PerReplicaType::NodePort)
            .then_some(per.node_port_base)
            .flatten()
    }

    fn path(&self, rest: &str) -> String {
        format!("{}.{rest}", self.field)
    }
}

/// Checks a node spec and reads what it refers to. Every refusal names the
/// field, as the user wrote it.
fn check<'a>(
    owner: &'a Owner,
    kind: NodeKind,
    replicas: i32,
    node: &'a NodeSpec,
    extra: ExtraMeta<'a>,
    ctx: &Context,
) -> Result<Spec<'a>, InvalidSpec> {
    let field = match kind {
        NodeKind::NodeSet => "spec",
        NodeKind::Network => "spec.template.spec",
    };
    // Longest child suffix: "-headless" (9), "-<index>" for a network's node
    // Services, "-p2p-<index>" for per-replica Services.
    let digits = replicas.max(1).to_string().len();
    check_name(owner, 9.max(5 + digits))?;
    if replicas < 0 {
        return Err(invalid(owner, "spec.replicas", "must not be negative"));
    }
    let net = effective_network(owner, node, field)?;
    let mut spec = Spec {
        owner,
        kind,
        replicas,
        node,
        field,
        extra,
        net,
        ports: net.ports(),
        version: monerod_version(node, ctx),
        login: None,
        ban_list: None,
        graph: None,
        blocks: None,
        partitions: &[],
        wallet_addresses: Vec::new(),
    };
    check_clearnet(&spec)?;
    check_per_replica(&spec)?;
    check_release(&spec)?;
    spec.login = login(&spec, ctx)?;
    spec.ban_list = ban_list(&spec, ctx)?;
    check_user_metadata(&spec)?;
    Ok(spec)
}

fn check_clearnet(spec: &Spec<'_>) -> Result<(), InvalidSpec> {
    if spec.node.clearnet != Clearnet::ThroughTor {
        return Ok(());
    }
    let field = spec.path("clearnet");
    if spec.kind == NodeKind::Network {
        return Err(invalid(
            spec.owner,
            &field,
            "a closed network's peers are cluster addresses that Tor cannot reach; only Direct",
        ));
    }
    if !spec.node.tor.enabled {
        let why = format!("ThroughTor needs {}", spec.path("tor.enabled"));
        return Err(invalid(spec.owner, &field, why));
    }
    match spec
        .version
        .lacks(MonerodVersion::V0_18_0, "ThroughTor (--proxy)")
    {
        Some(why) => Err(invalid(spec.owner, &field, why)),
        None => Ok(()),
    }
}

fn check_per_replica(spec: &Spec<'_>) -> Result<(), InvalidSpec> {
    let Some(per) = &spec.node.service.per_replica else {
        return Ok(());
    };
    let field = spec.path("service.perReplica");
    if spec.kind == NodeKind::Network {
        return Err(invalid(
            spec.owner,
            &field,
            "a closed network's nodes are not served to the Internet; only a MoneroNodeSet has per-replica Services",
        ));
    }
    if spec.node.clearnet != Clearnet::Direct {
        return Err(invalid(
            spec.owner,
            &field,
            "a node that reaches peers only through Tor has no clearnet P2P port to serve",
        ));
    }
    match (per.type_, per.node_port_base) {
        (PerReplicaType::NodePort, None) => Err(invalid(
            spec.owner,
            &format!("{field}.nodePortBase"),
            "is required with type NodePort: each replica advertises its own port, which must be known before its pod starts",
        )),
        (PerReplicaType::NodePort, Some(base)) if base + spec.replicas.max(1) - 1 > 65535 => {
            Err(invalid(
                spec.owner,
                &format!("{field}.nodePortBase"),
                format!("{base} + {} replicas goes past port 65535", spec.replicas),
            ))
        }
        _ => Ok(()),
    }
}

/// What the set's monerod release cannot take. An unknown release gets
/// only what every release since 0.17.2 takes, so a feature whose flag
/// depends on the release is refused until `monerod.version` says which.
fn check_release(spec: &Spec<'_>) -> Result<(), InvalidSpec> {
    let m = &spec.node.monerod;
    let l = &m.rpc.limits;
    let limits_asked =
        l.max_connections.is_some() || l.per_public_ip.is_some() || l.per_private_ip.is_some();
    if limits_asked
        && let Some(why) = spec
            .version
            .lacks(MonerodVersion::V0_18_4, "RPC connection limits")
    {
        return Err(invalid(spec.owner, &spec.path("monerod.rpc.limits"), why));
    }
    if m.zmq && spec.version.version().is_none() {
        let why = format!(
            "ZMQ RPC on the pod's address takes --confirm-zmq-rpc-external-bind from monerod 0.18.5 on, a flag older releases refuse, and the operator cannot tell which monerod {} runs: set {}",
            spec.version.image,
            spec.path("monerod.version")
        );
        return Err(invalid(spec.owner, &spec.path("monerod.zmq"), why));
    }
    Ok(())
}

/// The user's labels, annotations, node selector and topology key reach the
/// pods, the Services and the PodMonitor as they are; refuse what the API
/// server would refuse there.
fn check_user_metadata(spec: &Spec<'_>) -> Result<(), InvalidSpec> {
    let (owner, node) = (spec.owner, spec.node);
    if let Some((labels, annotations)) = spec.extra {
        check_labels(owner, "spec.template.metadata.labels", labels)?;
        limits::check_annotation_keys(owner, "spec.template.metadata.annotations", annotations)?;
    }
    limits::check_pod_overrides(owner, &spec.path("pod"), &node.pod)?;
    if let Some(why) = limits::qualified_name_problem(&node.topology_key) {
        return Err(invalid(owner, &spec.path("topologyKey"), why));
    }
    let mut annotated = vec![("service.annotations", &node.service.annotations)];
    if let Some(per) = &node.service.per_replica {
        annotated.push(("service.perReplica.annotations", &per.annotations));
    }
    for (path, annotations) in annotated {
        let field = spec.path(path);
        limits::check_annotation_keys(owner, &field, annotations)?;
        check_annotation_size(owner, &field, annotations)?;
    }
    check_labels(
        owner,
        &spec.path("exporter.podMonitor.labels"),
        &node.exporter.pod_monitor.labels,
    )?;
    Ok(())
}

fn build(
    spec: &Spec<'_>,
    strategy: &UpdateStrategy,
    ctx: &Context,
) -> Result<Desired, InvalidSpec> {
    let owner = spec.owner;
    let files = config_files(spec, &ctx.cluster_domain);
    // A network's files grow as n², one peer list per node: past one Secret's
    // worth they continue in `NAME-monerod-1`, ... (a 256-node network with the
    // longest names needs 24), all mounted at the same directory.
    let config = config_volume(
        owner,
        MONEROD_WORKLOAD,
        &format!("{}-monerod", owner.name),
        "config",
        files
            .files
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect(),
        "spec.replicas",
    )?;
    let headless_name = format!("{}-headless", owner.name);
    let mut children: Vec<Child> = config
        .secrets
        .into_iter()
        .map(|s| Child::Secret(Box::new(s)))
        .collect();
    children.extend(super::services::services(spec, &headless_name));
    let args = monerod_args(spec);
    let template = pod_template(spec, ctx, &args, config.volume, &files.hash)?;
    children.push(Child::StatefulSet(Box::new(stateful_set(
        spec,
        strategy,
        headless_name,
        template,
    ))));
    if spec.replicas > 1 {
        children.push(Child::PodDisruptionBudget(Box::new(pdb(owner))));
    }
    let exporter = &spec.node.exporter;
    if exporter.enabled && exporter.pod_monitor.enabled {
        children.push(Child::PodMonitor(Box::new(pod_monitor(
            owner,
            &exporter.pod_monitor,
            MONEROD_WORKLOAD,
        ))));
    }
    check_sizes(owner, &children)?;
    Ok(Desired {
        children,
        selector: owner.selector_string(MONEROD_WORKLOAD),
        peers: expected_peers(spec),
    })
}

/// Each network node's peers by pod name, as the graph says.
fn expected_peers(spec: &Spec<'_>) -> BTreeMap<String, Vec<String>> {
    let Some(g) = &spec.graph else {
        return BTreeMap::new();
    };
    let name = |i: usize| pod_name(spec.owner, i32::try_from(i).unwrap_or(i32::MAX));
    (0..g.len())
        .map(|i| (name(i), g.neighbours(i).map(name).collect()))
        .collect()
}

fn stateful_set(
    spec: &Spec<'_>,
    strategy: &UpdateStrategy,
    service_name: String,
    template: PodTemplateSpec,
) -> StatefulSet {
    let (owner, node, replicas) = (spec.owner, spec.node, spec.replicas);
    StatefulSet {
        metadata: with_template_hash(owner.child_meta(&owner.name, MONEROD_WORKLOAD), &template),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(owner.selector_labels(MONEROD_WORKLOAD)),
                ..LabelSelector::default()
            },
            service_name: Some(service_name),
            // Replicas sync independently; OrderedReady would hold node 1
            // until node 0 finished a multi-day initial sync.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(sts_strategy(strategy.effective(replicas), replicas)),
            persistent_volume_claim_retention_policy: Some(retention(node)),
            template,
            volume_claim_templates: Some(vec![data_claim(node, spec.net)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// Marks the StatefulSet with the hash of its pod template, so that the
/// rollout gate sees a new template before the StatefulSet controller does.
fn with_template_hash(mut meta: ObjectMeta, template: &PodTemplateSpec) -> ObjectMeta {
    let json = serde_json::to_vec(template).unwrap_or_default();
    meta.annotations.get_or_insert_with(BTreeMap::new).insert(
        TEMPLATE_HASH_ANNOTATION.into(),
        config_hash([("template", json.as_slice())]),
    );
    meta
}

/// The pod name of replica `i`.
pub fn pod_name(owner: &Owner, i: i32) -> String {
    format!("{}-{i}", owner.name)
}

/// The stable DNS name of network node `i` (its own ClusterIP Service).
pub fn node_host(owner: &Owner, i: i32, cluster_domain: &str) -> String {
    format!(
        "{}.{}.svc.{cluster_domain}",
        pod_name(owner, i),
        owner.namespace
    )
}

fn login(spec: &Spec<'_>, ctx: &Context) -> Result<Option<(String, String)>, InvalidSpec> {
    let field = spec.path("monerod.rpc.login");
    read_login(
        spec.owner,
        spec.node.monerod.rpc.login.as_ref(),
        &field,
        ctx,
    )
}

/// An RPC login from the user's Secret, checked for what a config file line
/// can hold. `f` is the field the reference sits at, for messages.
pub(super) fn read_login(
    owner: &Owner,
    l: Option<&RpcLogin>,
    f: &str,
    ctx: &Context,
) -> Result<Option<(String, String)>, InvalidSpec> {
    let Some(l) = l else {
        return Ok(None);
    };
    let user = ctx
        .secret_value(&l.secret_name, &l.username_key)
        .map_err(|m| invalid(owner, &format!("{f}.usernameKey"), m))?;
    let pass = ctx
        .secret_value(&l.secret_name, &l.password_key)
        .map_err(|m| invalid(owner, &format!("{f}.passwordKey"), m))?;
    if user.is_empty() || user.contains([':', '\n', '\r']) {
        return Err(invalid(
            owner,
            &format!("{f}.usernameKey"),
            format!(
                "the user name in Secret {} must be non-empty, one line, without ':'",
                l.secret_name
            ),
        ));
    }
    for (what, value, key) in [
        ("user name", &user, "usernameKey"),
        ("password", &pass, "passwordKey"),
    ] {
        if value.len() > MAX_LOGIN_BYTES {
            return Err(invalid(
                owner,
                &format!("{f}.{key}"),
                format!(
                    "the {what} in Secret {} is {} bytes; at most {MAX_LOGIN_BYTES}",
                    l.secret_name,
                    value.len()
                ),
            ));
        }
    }
    if pass.contains(['\n', '\r']) {
        return Err(invalid(
            owner,
            &format!("{f}.passwordKey"),
            format!("the password in Secret {} must be one line", l.secret_name),
        ));
    }
    Ok(Some((user, pass)))
}

/// The ban list from the user's ConfigMap, cleaned for monerod.
fn ban_list(spec: &Spec<'_>, ctx: &Context) -> Result<Option<String>, InvalidSpec> {
    let Some(r) = &spec.node.monerod.ban_list else {
        return Ok(None);
    };
    let field = spec.path("monerod.banList.key");
    let text = ctx
        .config_map_value(&r.name, &r.key)
        .map_err(|m| invalid(spec.owner, &field, m))?;
    clean_ban_list(&text).map(Some).map_err(|m| {
        invalid(
            spec.owner,
            &field,
            format!("ConfigMap {} key {}: {m}", r.name, r.key),
        )
    })
}

fn pod_template(
    spec: &Spec<'_>,
    ctx: &Context,
    args: &[String],
    config: Volume,
    hash: &str,
) -> Result<PodTemplateSpec, InvalidSpec> {
    let (owner, node) = (spec.owner, spec.node);
    let mut containers = vec![monerod_container(spec, args)];
    if node.exporter.enabled {
        containers.push(exporter(spec, ctx));
    }
    let mut pod = PodSpec {
        containers,
        security_context: Some(pod_security()),
        affinity: Some(anti_affinity(
            node.hard_anti_affinity,
            &node.topology_key,
            owner.selector_labels(MONEROD_WORKLOAD),
        )),
        termination_grace_period_seconds: Some(MONEROD_GRACE_SECONDS),
        // monerod needs no API access; 20-node networks would otherwise get a
        // pile of service-link env vars.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        volumes: Some(vec![config, tmp_volume()]),
        ..PodSpec::default()
    };
    let base_config = base_config_file(spec);
    if let Some(parts) = super::anon::parts(owner, node, &spec.ports, &base_config, CONFIG_DIR, ctx)
    {
        if let Some(monerod) = pod.containers.first_mut() {
            monerod
                .volume_mounts
                .get_or_insert_with(Vec::new)
                .push(parts.monerod_mount);
        }
        pod.containers.extend(parts.sidecars);
        pod.init_containers = Some(vec![parts.init]);
        pod.volumes
            .get_or_insert_with(Vec::new)
            .extend(parts.volumes);
    }
    apply_overrides(&mut pod, &node.pod);
    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(
                &node.pod,
                spec.extra.map(|(l, _)| l),
                owner.labels(MONEROD_WORKLOAD),
            )),
            annotations: Some(pod_annotations(spec, hash)?),
            ..ObjectMeta::default()
        }),
        spec: Some(pod),
    })
}

fn pod_annotations(spec: &Spec<'_>, hash: &str) -> Result<BTreeMap<String, String>, InvalidSpec> {
    let node = spec.node;
    let mut annotations: BTreeMap<String, String> =
        spec.extra.map(|(_, a)| a.clone()).unwrap_or_default();
    annotations.extend(node.pod.annotations.clone());
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), hash.into());
    if node.exporter.enabled {
        annotations.extend(scrape_annotations());
    }
    let field = match spec.kind {
        NodeKind::NodeSet => "spec.pod.annotations",
        NodeKind::Network => "spec.template.metadata.annotations",
    };
    check_annotation_size(spec.owner, field, &annotations)?;
    Ok(annotations)
}

fn monerod_container(spec: &Spec<'_>, args: &[String]) -> Container {
    let ports = &spec.ports;
    let m = &spec.node.monerod;
    let mut container_ports = vec![port("p2p", ports.p2p), port("rpc", ports.restricted_rpc)];
    if m.zmq {
        container_ports.push(port("zmq", ports.zmq));
    }
    if m.zmq_pub == ZmqPub::Cluster {
        container_ports.push(port("zmq-pub", ports.zmq_pub));
    }
    let rpc_open = Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(ports.restricted_rpc.into()),
            ..TCPSocketAction::default()
        }),
        ..Probe::default()
    };
    let readiness = if spec.node.exporter.enabled {
        exporter_readiness()
    } else {
        Probe {
            period_seconds: Some(10),
            ..rpc_open.clone()
        }
    };
    // A regtest node holds a toy chain; twenty of them fit on a laptop.
    let default_resources = if spec.net == Network::Regtest {
        requests("100m", "256Mi")
    } else {
        requests("1", "2Gi")
    };
    Container {
        name: "monerod".into(),
        image: Some(spec.version.image.clone()),
        image_pull_policy: Some(
            m.image_pull_policy
                .map_or("IfNotPresent", |p| p.as_str())
                .into(),
        ),
        args: Some(args.to_vec()),
        env: Some(vec![field_env("POD_NAME", "metadata.name")]),
        ports: Some(container_ports),
        resources: Some(m.resources.clone().unwrap_or(default_resources)),
        security_context: Some(container_security()),
        volume_mounts: Some(vec![
            mount("data", DATA_DIR, false),
            mount("config", CONFIG_DIR, true),
            mount("tmp", "/tmp", false),
        ]),
        // Opening a large database can take minutes: allow up to an hour
        // before liveness starts counting. The initial sync itself does not
        // block RPC, so it needs no allowance here.
        startup_probe: Some(Probe {
            period_seconds: Some(10),
            failure_threshold: Some(360),
            ..rpc_open.clone()
        }),
        // A node busy verifying blocks may answer slowly: five minutes of
        // silence before a restart.
        liveness_probe: Some(Probe {
            period_seconds: Some(30),
            timeout_seconds: Some(10),
            failure_threshold: Some(10),
            ..rpc_open
        }),
        readiness_probe: Some(readiness),
        ..Container::default()
    }
}

fn exporter(spec: &Spec<'_>, ctx: &Context) -> Container {
    let node = spec.node;
    let mut eargs = vec![
        format!("--monerod-address=http://127.0.0.1:{}", spec.ports.rpc),
        format!("--listen=0.0.0.0:{EXPORTER_PORT}"),
    ];
    if spec.login.is_some() {
        eargs.push(format!("--rpc-login-file={CONFIG_DIR}/{LOGIN_FILE_KEY}"));
    }
    // A regtest chain has nowhere to sync from: monerod 0.18.4 reports a lone
    // regtest node unsynchronized (target height 0) for ever, which would keep
    // it unready. There, answering RPC is all readiness can mean.
    if node.readiness == Readiness::RpcAnswers || spec.net == Network::Regtest {
        eargs.push("--ready-allow-unsynced".into());
    }
    let lab = spec.kind == NodeKind::Network;
    if lab {
        // The node's own file: blocks to make, whom to ban; /lab for the status.
        eargs.push(format!(
            "--lab-config={CONFIG_DIR}/$(POD_NAME).{LAB_SUFFIX}"
        ));
    }
    let mut c = exporter_container(
        &node.exporter,
        ctx,
        eargs,
        vec![mount("config", CONFIG_DIR, true)],
    );
    if lab {
        c.env = Some(vec![field_env("POD_NAME", "metadata.name")]);
    }
    c
}

/// Default volume size by network and pruning, with headroom for a year of growth.
pub fn default_storage(net: Network, pruned: bool) -> &'static str {
    match (net, pruned) {
        (Network::Mainnet, false) => "350Gi",
        (Network::Mainnet, true) => "150Gi",
        (Network::Testnet, false) => "100Gi",
        (Network::Testnet, true) => "40Gi",
        (Network::Stagenet, false) => "60Gi",
        (Network::Stagenet, true) => "25Gi",
        (Network::Regtest, _) => "2Gi",
    }
}

fn data_claim(node: &NodeSpec, net: Network) -> PersistentVolumeClaim {
    let size = node
        .storage
        .size
        .clone()
        .unwrap_or_else(|| Quantity(default_storage(net, node.monerod.pruning).into()));
    claim(size, node.storage.storage_class_name.clone())
}

/// The `data` volume claim template of a StatefulSet.
pub(super) fn claim(size: Quantity, class: Option<String>) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: class,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), size)])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// `storage.retention`, as the StatefulSet's claim retention policy.
pub(super) fn retention(node: &NodeSpec) -> StatefulSetPersistentVolumeClaimRetentionPolicy {
    StatefulSetPersistentVolumeClaimRetentionPolicy {
        when_scaled: Some(node.storage.retention.when_scaled.as_str().into()),
        when_deleted: Some(node.storage.retention.when_deleted.as_str().into()),
    }
}

/// At most one Ready replica evicted at a time. A replica that is not Ready
/// may always be evicted: during a days-long initial sync every replica is
/// unready, and the default policy (IfHealthyBudget) would then block every
/// `kubectl drain` and the cluster autoscaler, to protect pods that serve nothing.
fn pdb(owner: &Owner) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: owner.child_meta(&owner.name, MONEROD_WORKLOAD),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            selector: Some(LabelSelector {
                match_labels: Some(owner.selector_labels(MONEROD_WORKLOAD)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
