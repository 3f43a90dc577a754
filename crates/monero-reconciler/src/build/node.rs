//! monerod workloads: a MoneroNodeSet (identical public nodes) and a
//! MoneroNetwork (a closed mesh of nodes that only know each other).
//!
//! Both become one StatefulSet with a volume per replica, a headless Service,
//! a client Service, a Secret holding monerod's config file (a large
//! network's n² of peer lines continue in further Secrets), and a
//! PodDisruptionBudget when there is more than one replica. A network also gets
//! one ClusterIP Service per node: monerod resolves `--add-exclusive-node`
//! names once, at start, so a peer must have a name that resolves before its
//! pod exists and an address that survives its pod being rescheduled.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec,
    PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use monero_crd::{
    Clearnet, MoneroNetwork, MoneroNodeSet, Network, NodeSpec, Ports, Readiness, UpdateStrategy,
};

use super::limits::{self, check_annotation_size, check_labels, check_sizes, config_volume};
use super::pod::{
    EXPORTER_PORT, anti_affinity, apply_overrides, container_security, exporter_container,
    exporter_readiness, field_env, mount, pod_labels, pod_monitor, pod_security, port, requests,
    scrape_annotations,
};
use super::{
    CONFIG_HASH_ANNOTATION, Child, Context, Desired, Owner, check_name, config_hash, invalid,
};
use crate::args::merge_args;
use crate::error::InvalidSpec;
use crate::rollout::{TEMPLATE_HASH_ANNOTATION, sts_strategy};

/// The `app.kubernetes.io/name` of monerod pods.
pub const MONEROD_WORKLOAD: &str = "monerod";
/// Where the data volume is mounted.
pub const DATA_DIR: &str = "/data";
/// Where the config Secret is mounted.
pub const CONFIG_DIR: &str = "/etc/monerod";
/// The config Secret's key holding `user:password` for the exporter.
pub const LOGIN_FILE_KEY: &str = "rpc-login";
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

/// Builds the objects of a MoneroNodeSet.
pub fn node_set(set: &MoneroNodeSet, ctx: &Context) -> Result<Desired, InvalidSpec> {
    let owner = Owner::of("MoneroNodeSet", &set.metadata);
    build(
        &owner,
        NodeKind::NodeSet,
        set.spec.replicas,
        &set.spec.update_strategy,
        &set.spec.node,
        None,
        ctx,
    )
}

/// Builds the objects of a MoneroNetwork.
pub fn network(net: &MoneroNetwork, ctx: &Context) -> Result<Desired, InvalidSpec> {
    let owner = Owner::of("MoneroNetwork", &net.metadata);
    let extra = net.spec.template.metadata.as_ref();
    build(
        &owner,
        NodeKind::Network,
        net.spec.replicas,
        &net.spec.update_strategy,
        &net.spec.template.spec.node,
        extra.map(|m| (&m.labels, &m.annotations)),
        ctx,
    )
}

type ExtraMeta<'a> = Option<(&'a BTreeMap<String, String>, &'a BTreeMap<String, String>)>;

fn build(
    owner: &Owner,
    kind: NodeKind,
    replicas: i32,
    strategy: &UpdateStrategy,
    node: &NodeSpec,
    extra: ExtraMeta<'_>,
    ctx: &Context,
) -> Result<Desired, InvalidSpec> {
    let field = match kind {
        NodeKind::NodeSet => "spec",
        NodeKind::Network => "spec.template.spec",
    };
    // Longest child suffix: "-headless" (9), or "-<index>" for a network's node Services.
    check_name(owner, 9.max(1 + replicas.max(1).to_string().len()))?;
    if replicas < 0 {
        return Err(invalid(owner, "spec.replicas", "must not be negative"));
    }
    let net = effective_network(owner, node, field)?;
    if node.clearnet == Clearnet::ThroughTor {
        if kind == NodeKind::Network {
            return Err(invalid(
                owner,
                &format!("{field}.clearnet"),
                "a closed network's peers are cluster addresses that Tor cannot reach; only Direct",
            ));
        }
        if !node.tor.enabled {
            return Err(invalid(
                owner,
                &format!("{field}.clearnet"),
                format!("ThroughTor needs {field}.tor.enabled"),
            ));
        }
    }
    let ports = net.ports();
    let login = login(owner, node, field, ctx)?;

    check_user_metadata(owner, node, extra, field)?;

    // The config Secret: monerod.conf (NodeSet) or one file per node (Network).
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let login_line = login
        .as_ref()
        .map(|(u, p)| format!("rpc-login={u}:{p}\n"))
        .unwrap_or_default();
    let header = "# written by monero-operator; edit the custom resource instead\n";
    match kind {
        NodeKind::NodeSet => {
            files.insert("monerod.conf".into(), format!("{header}{login_line}"));
        }
        NodeKind::Network => {
            for i in 0..replicas {
                let mut conf = format!("{header}{login_line}");
                for j in (0..replicas).filter(|j| *j != i) {
                    conf.push_str(&format!(
                        "add-exclusive-node={}:{}\n",
                        node_host(owner, j, &ctx.cluster_domain),
                        ports.p2p
                    ));
                }
                files.insert(format!("{}.conf", pod_name(owner, i)), conf);
            }
        }
    }
    if let Some((u, p)) = &login {
        files.insert(LOGIN_FILE_KEY.into(), format!("{u}:{p}\n"));
    }
    let hash = config_hash(files.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    // A network's files grow as n², one peer list per node: past one Secret's
    // worth they continue in `NAME-monerod-1`, ... (a 256-node network with the
    // longest names needs 24), all mounted at the same directory.
    let config = config_volume(
        owner,
        MONEROD_WORKLOAD,
        &format!("{}-monerod", owner.name),
        "config",
        files
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect(),
        "spec.replicas",
    )?;

    let selector = owner.selector_labels(MONEROD_WORKLOAD);
    let headless_name = format!("{}-headless", owner.name);
    let mut children: Vec<Child> = config
        .secrets
        .into_iter()
        .map(|s| Child::Secret(Box::new(s)))
        .collect();
    children.push(Child::Service(Box::new(headless_service(
        owner,
        &headless_name,
        &ports,
    ))));
    // A node reachable only through Tor, with private RPC, has nothing to serve here.
    if let Some(svc) = client_service(owner, node, &ports) {
        children.push(Child::Service(Box::new(svc)));
    }
    if kind == NodeKind::Network {
        for i in 0..replicas {
            children.push(Child::Service(Box::new(node_service(owner, i, &ports))));
        }
    }

    let args = monerod_args(kind, node, net, &ports);
    let template = pod_template(
        owner,
        kind,
        node,
        extra,
        ctx,
        &args,
        net,
        config.volume,
        &hash,
        login.is_some(),
    )?;
    let sts = StatefulSet {
        metadata: with_template_hash(owner.child_meta(&owner.name, MONEROD_WORKLOAD), &template),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            service_name: Some(headless_name),
            // Replicas sync independently; OrderedReady would hold node 1
            // until node 0 finished a multi-day initial sync.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(sts_strategy(strategy.effective(replicas), replicas)),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some(node.storage.retention.when_scaled.as_str().into()),
                    when_deleted: Some(node.storage.retention.when_deleted.as_str().into()),
                },
            ),
            template,
            volume_claim_templates: Some(vec![data_claim(node, net)]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };
    children.push(Child::StatefulSet(Box::new(sts)));
    if replicas > 1 {
        children.push(Child::PodDisruptionBudget(Box::new(pdb(owner))));
    }
    if node.exporter.enabled && node.exporter.pod_monitor.enabled {
        children.push(Child::PodMonitor(Box::new(pod_monitor(
            owner,
            &node.exporter.pod_monitor,
            MONEROD_WORKLOAD,
        ))));
    }
    check_sizes(owner, &children)?;
    Ok(Desired {
        children,
        selector: owner.selector_string(MONEROD_WORKLOAD),
    })
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

/// The user's labels, annotations, node selector and topology key reach the
/// pods, the client Service and the PodMonitor as they are; refuse what the
/// API server would refuse there.
fn check_user_metadata(
    owner: &Owner,
    node: &NodeSpec,
    extra: ExtraMeta<'_>,
    field: &str,
) -> Result<(), InvalidSpec> {
    if let Some((labels, annotations)) = extra {
        check_labels(owner, "spec.template.metadata.labels", labels)?;
        limits::check_annotation_keys(owner, "spec.template.metadata.annotations", annotations)?;
    }
    limits::check_pod_overrides(owner, &format!("{field}.pod"), &node.pod)?;
    if let Some(why) = limits::qualified_name_problem(&node.topology_key) {
        return Err(invalid(owner, &format!("{field}.topologyKey"), why));
    }
    let service = format!("{field}.service.annotations");
    limits::check_annotation_keys(owner, &service, &node.service.annotations)?;
    check_annotation_size(owner, &service, &node.service.annotations)?;
    check_labels(
        owner,
        &format!("{field}.exporter.podMonitor.labels"),
        &node.exporter.pod_monitor.labels,
    )?;
    Ok(())
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

fn login(
    owner: &Owner,
    node: &NodeSpec,
    field: &str,
    ctx: &Context,
) -> Result<Option<(String, String)>, InvalidSpec> {
    let Some(l) = &node.monerod.rpc.login else {
        return Ok(None);
    };
    let f = format!("{field}.monerod.rpc.login");
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

/// monerod's config file in the config Secret's mount.
fn base_config_file(kind: NodeKind) -> String {
    match kind {
        NodeKind::NodeSet => format!("{CONFIG_DIR}/monerod.conf"),
        // Kubernetes expands $(POD_NAME) from the env var of that name.
        NodeKind::Network => format!("{CONFIG_DIR}/$(POD_NAME).conf"),
    }
}

/// The operator's monerod flags, then the user's (see [`merge_args`]).
pub fn monerod_args(kind: NodeKind, node: &NodeSpec, net: Network, ports: &Ports) -> Vec<String> {
    let through_tor = node.clearnet == Clearnet::ThroughTor;
    let config_file = if node.tor.enabled || node.i2p.enabled {
        // podconfig's copy of the base config, with the Tor and I2P lines added.
        super::MONEROD_CONFIG.to_string()
    } else {
        base_config_file(kind)
    };
    let mut d: Vec<String> = vec![
        format!("--data-dir={DATA_DIR}"),
        format!("--config-file={config_file}"),
        "--non-interactive".into(),
        format!(
            "--p2p-bind-ip={}",
            if through_tor { "127.0.0.1" } else { "0.0.0.0" }
        ),
        format!("--p2p-bind-port={}", ports.p2p),
        // Unrestricted RPC stays on the pod's loopback, for the exporter.
        "--rpc-bind-ip=127.0.0.1".into(),
        format!("--rpc-bind-port={}", ports.rpc),
        "--rpc-restricted-bind-ip=0.0.0.0".into(),
        format!("--rpc-restricted-bind-port={}", ports.restricted_rpc),
        "--no-igd".into(),
        "--check-updates=disabled".into(),
        // monerod always logs to its stdout; the log file would repeat every
        // line there, or grow on the volume.
        "--log-file=/dev/null".into(),
        "--max-log-file-size=0".into(),
    ];
    if let Some(flag) = net.flag() {
        d.push(flag.into());
    }
    if net == Network::Regtest {
        // The chain lives on a volume; without this monerod wipes it at each start.
        d.push("--keep-fakechain".into());
    }
    if kind == NodeKind::Network {
        // Peers are cluster addresses, which monerod skips unless told otherwise,
        // and a closed network has no DNS checkpoints to ask for.
        d.push("--allow-local-ip".into());
        d.push("--disable-dns-checkpoints".into());
    }
    if node.monerod.zmq {
        d.push("--zmq-rpc-bind-ip=0.0.0.0".into());
        d.push(format!("--zmq-rpc-bind-port={}", ports.zmq));
    } else {
        d.push("--no-zmq".into());
    }
    if through_tor {
        // Every connection through the tor sidecar; nothing announced or bound outside the pod.
        d.push(format!(
            "--proxy=127.0.0.1:{}",
            monero_anon::render::Ports::pod_defaults(None)
                .tor_socks
                .port()
        ));
        d.push("--hide-my-port".into());
    }
    if node.monerod.pruning {
        d.push("--prune-blockchain".into());
    }
    if let Some(level) = node.monerod.log_level {
        d.push(format!("--log-level={level}"));
    }
    // A network flag in the user's args means the network already chosen above.
    let user: Vec<String> = node.monerod.args.clone();
    merge_args(&d, &user)
}

#[allow(clippy::too_many_arguments)]
fn pod_template(
    owner: &Owner,
    kind: NodeKind,
    node: &NodeSpec,
    extra: ExtraMeta<'_>,
    ctx: &Context,
    args: &[String],
    net: Network,
    config: Volume,
    hash: &str,
    has_login: bool,
) -> Result<PodTemplateSpec, InvalidSpec> {
    let ports = &net.ports();
    let m = &node.monerod;
    let mut container_ports = vec![port("p2p", ports.p2p), port("rpc", ports.restricted_rpc)];
    if m.zmq {
        container_ports.push(port("zmq", ports.zmq));
    }
    let rpc_open = Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(ports.restricted_rpc.into()),
            ..TCPSocketAction::default()
        }),
        ..Probe::default()
    };
    let exporter_on = node.exporter.enabled;
    let readiness = if exporter_on {
        exporter_readiness()
    } else {
        Probe {
            period_seconds: Some(10),
            ..rpc_open.clone()
        }
    };
    // A regtest node holds a toy chain; twenty of them fit on a laptop.
    let default_resources = if net == Network::Regtest {
        requests("100m", "256Mi")
    } else {
        requests("1", "2Gi")
    };
    let monerod = Container {
        name: "monerod".into(),
        image: Some(
            m.image
                .clone()
                .unwrap_or_else(|| ctx.images.monerod.clone()),
        ),
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
    };
    let mut containers = vec![monerod];
    if exporter_on {
        let mut eargs = vec![
            format!("--monerod-address=http://127.0.0.1:{}", ports.rpc),
            format!("--listen=0.0.0.0:{EXPORTER_PORT}"),
        ];
        if has_login {
            eargs.push(format!("--rpc-login-file={CONFIG_DIR}/{LOGIN_FILE_KEY}"));
        }
        // A regtest chain has nowhere to sync from: monerod 0.18.4 reports a lone
        // regtest node unsynchronized (target height 0) for ever, which would keep
        // it unready. There, answering RPC is all readiness can mean.
        if node.readiness == Readiness::RpcAnswers || net == Network::Regtest {
            eargs.push("--ready-allow-unsynced".into());
        }
        containers.push(exporter_container(
            &node.exporter,
            ctx,
            eargs,
            vec![mount("config", CONFIG_DIR, true)],
        ));
    }
    let mut spec = PodSpec {
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
        volumes: Some(vec![
            config,
            Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    };
    if let Some(parts) =
        super::anon::parts(owner, node, ports, &base_config_file(kind), CONFIG_DIR, ctx)
    {
        if let Some(monerod) = spec.containers.first_mut() {
            monerod
                .volume_mounts
                .get_or_insert_with(Vec::new)
                .push(parts.monerod_mount);
        }
        spec.containers.extend(parts.sidecars);
        spec.init_containers = Some(vec![parts.init]);
        spec.volumes
            .get_or_insert_with(Vec::new)
            .extend(parts.volumes);
    }
    apply_overrides(&mut spec, &node.pod);
    let mut annotations: BTreeMap<String, String> =
        extra.map(|(_, a)| a.clone()).unwrap_or_default();
    annotations.extend(node.pod.annotations.clone());
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), hash.into());
    if exporter_on {
        annotations.extend(scrape_annotations());
    }
    let field = match kind {
        NodeKind::NodeSet => "spec.pod.annotations",
        NodeKind::Network => "spec.template.metadata.annotations",
    };
    check_annotation_size(owner, field, &annotations)?;
    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(
                &node.pod,
                extra.map(|(l, _)| l),
                owner.labels(MONEROD_WORKLOAD),
            )),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(spec),
    })
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
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: node.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), size)])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

fn service_port(name: &str, p: u16) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: p.into(),
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// The StatefulSet's governing Service. It publishes addresses of pods that
/// are not ready yet, since a syncing node still needs peers.
fn headless_service(owner: &Owner, name: &str, ports: &Ports) -> Service {
    Service {
        metadata: owner.child_meta(name, MONEROD_WORKLOAD),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(owner.selector_labels(MONEROD_WORKLOAD)),
            ports: Some(vec![
                service_port("p2p", ports.p2p),
                service_port("rpc", ports.restricted_rpc),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Service clients use: P2P, and the restricted RPC unless it is private.
fn client_service(owner: &Owner, node: &NodeSpec, ports: &Ports) -> Option<Service> {
    let mut meta = owner.child_meta(&owner.name, MONEROD_WORKLOAD);
    if !node.service.annotations.is_empty() {
        meta.annotations = Some(node.service.annotations.clone());
    }
    let mut sp = Vec::new();
    if node.clearnet == Clearnet::Direct {
        sp.push(service_port("p2p", ports.p2p));
    }
    if node.monerod.rpc.public {
        sp.push(service_port("rpc", ports.restricted_rpc));
    }
    if sp.is_empty() {
        return None;
    }
    Some(Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some(node.service.type_.as_str().into()),
            selector: Some(owner.selector_labels(MONEROD_WORKLOAD)),
            ports: Some(sp),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// One network node's own Service: a name that resolves before the pod exists
/// and an address that outlives it.
fn node_service(owner: &Owner, i: i32, ports: &Ports) -> Service {
    let name = pod_name(owner, i);
    let mut selector = owner.selector_labels(MONEROD_WORKLOAD);
    selector.insert("statefulset.kubernetes.io/pod-name".into(), name.clone());
    Service {
        metadata: owner.child_meta(&name, MONEROD_WORKLOAD),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector),
            ports: Some(vec![
                service_port("p2p", ports.p2p),
                service_port("rpc", ports.restricted_rpc),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
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
