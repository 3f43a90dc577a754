//! A MoneroNetwork's wallets (`spec.wallets`): one pod, `<name>-wallets-0`,
//! with a monero-wallet-rpc container per wallet (wallet i serves port
//! 18083 + i and talks to node i modulo the nodes, through the node's own
//! Service and restricted RPC) and the exporter in wallets mode beside them,
//! which makes each wallet on first start, reports addresses and balances at
//! `/wallets` for the status, and sends the transfers asked for.
//!
//! One pod rather than a StatefulSet of wallets: a wallet-rpc holds one open
//! wallet, a wallet needs a sidecar to make it and to send, and a sidecar per
//! wallet would cost a process and a probe each for what one does for all.
//! The login reaches monero-wallet-rpc in a config file, never its arguments.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, PodSpec, PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec, TCPSocketAction,
    Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use monero_crd::{Network, Wallets};

use super::limits::config_volume;
use super::monerod::LOGIN_FILE_KEY;
use super::node::{MONEROD_WORKLOAD, Spec, claim, node_host, read_login, retention};
use super::pod::scrape_annotations;
use super::pod::{
    EXPORTER_PORT, apply_overrides, container_security, exporter_container, exporter_readiness,
    mount, pod_security, port, requests, tmp_volume,
};
use super::version::MonerodVersion;
use super::{
    CONFIG_HASH_ANNOTATION, Child, Context, INSTANCE_LABEL, NAME_LABEL, Owner, check_name,
    config_hash, invalid,
};
use crate::error::InvalidSpec;

/// The `app.kubernetes.io/name` of the wallets' pod.
pub const WALLET_WORKLOAD: &str = "monero-wallet-rpc";
/// Wallet 0's RPC port; wallet i serves this plus i.
pub const WALLET_RPC_PORT: u16 = 18083;
/// The lab file of the wallets' sidecar, in their config Secret.
pub const WALLETS_LAB_KEY: &str = "wallets.lab.json";
/// monero-wallet-rpc's config file: the logins, which must stay out of args.
const WALLET_CONF_KEY: &str = "wallet-rpc.conf";
const CONFIG_DIR: &str = "/etc/monero-wallets";
const DATA_DIR: &str = "/data";

/// The name of a network's wallets' StatefulSet, Service and Secret.
pub fn wallets_name(network: &str) -> String {
    format!("{network}-wallets")
}

/// The wallets' objects: a config Secret, a Service, a one-pod StatefulSet.
pub(super) fn children(
    spec: &Spec<'_>,
    wallets: &Wallets,
    ctx: &Context,
) -> Result<Vec<Child>, InvalidSpec> {
    let owner = spec.owner;
    // `<name>-wallets` plus the 11 characters of the pods' revision label.
    check_name(owner, "-wallets".len() + 11)?;
    let login = read_login(owner, wallets.login.as_ref(), "spec.wallets.login", ctx)?;
    let name = wallets_name(&owner.name);
    let files = files(spec, wallets, login.as_ref());
    let hash = config_hash(
        files
            .iter()
            .filter(|(k, _)| k.as_str() != WALLETS_LAB_KEY)
            .map(|(k, v)| (k.as_str(), v.as_slice())),
    );
    let config = config_volume(
        owner,
        WALLET_WORKLOAD,
        &name,
        "config",
        files,
        "spec.wallets",
    )?;
    let mut out: Vec<Child> = config
        .secrets
        .into_iter()
        .map(|s| Child::Secret(Box::new(s)))
        .collect();
    out.push(Child::Service(Box::new(service(spec, wallets.count))));
    let template = template(spec, wallets, ctx, config.volume, &hash, login.is_some());
    out.push(Child::StatefulSet(Box::new(stateful_set(spec, template))));
    Ok(out)
}

/// The wallets' config files: monero-wallet-rpc's (the logins), the login
/// for the sidecar, and the sidecar's lab file.
fn files(
    spec: &Spec<'_>,
    wallets: &Wallets,
    login: Option<&(String, String)>,
) -> Vec<(String, Vec<u8>)> {
    let mut conf = String::new();
    if let Some((u, p)) = login {
        conf.push_str(&format!("rpc-login={u}:{p}\n"));
    }
    if let Some((u, p)) = &spec.login {
        conf.push_str(&format!("daemon-login={u}:{p}\n"));
    }
    let lab = serde_json::json!({
        "wallets": wallets.count,
        "firstPort": WALLET_RPC_PORT,
        "transactionsPerMinute": wallets.transactions_per_minute,
        "amount": wallets.amount,
    });
    let mut files = vec![
        (WALLET_CONF_KEY.to_string(), conf.into_bytes()),
        (WALLETS_LAB_KEY.to_string(), format!("{lab}\n").into_bytes()),
    ];
    if let Some((u, p)) = login {
        files.push((LOGIN_FILE_KEY.into(), format!("{u}:{p}\n").into_bytes()));
    }
    files
}

fn service(spec: &Spec<'_>, count: i32) -> Service {
    let owner = spec.owner;
    Service {
        metadata: owner.child_meta(wallets_name(&owner.name), WALLET_WORKLOAD),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(owner.selector_labels(WALLET_WORKLOAD)),
            ports: Some(
                (0..count)
                    .map(|i| ServicePort {
                        name: Some(format!("wallet-{i}")),
                        port: wallet_port(i).into(),
                        target_port: Some(IntOrString::Int(wallet_port(i).into())),
                        protocol: Some("TCP".into()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Wallet `i`'s RPC port.
pub fn wallet_port(i: i32) -> u16 {
    WALLET_RPC_PORT + u16::try_from(i).unwrap_or(0)
}

fn template(
    spec: &Spec<'_>,
    wallets: &Wallets,
    ctx: &Context,
    config: Volume,
    hash: &str,
    login: bool,
) -> PodTemplateSpec {
    let owner = spec.owner;
    let mut containers: Vec<Container> = (0..wallets.count)
        .map(|i| wallet_container(spec, wallets, ctx, i, login))
        .collect();
    containers.push(sidecar(spec, ctx, login));
    let mut pod = PodSpec {
        containers,
        security_context: Some(pod_security()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        volumes: Some(vec![config, tmp_volume()]),
        ..PodSpec::default()
    };
    apply_overrides(&mut pod, &spec.node.pod);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(owner.labels(WALLET_WORKLOAD)),
            annotations: Some(
                scrape_annotations()
                    .into_iter()
                    .chain([(CONFIG_HASH_ANNOTATION.to_string(), hash.to_string())])
                    .collect(),
            ),
            ..ObjectMeta::default()
        }),
        spec: Some(pod),
    }
}

/// monero-wallet-rpc for wallet `i`, against node `i` modulo the nodes.
fn wallet_container(
    spec: &Spec<'_>,
    wallets: &Wallets,
    ctx: &Context,
    i: i32,
    login: bool,
) -> Container {
    let rpc = wallet_port(i);
    let image = wallets
        .image
        .clone()
        .unwrap_or_else(|| spec.version.image.clone());
    Container {
        name: format!("wallet-{i}"),
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["/usr/bin/monero-wallet-rpc".into()]),
        args: Some(wallet_args(spec, ctx, i, login)),
        ports: Some(vec![port(&format!("wallet-{i}"), rpc)]),
        resources: Some(
            wallets
                .resources
                .clone()
                .unwrap_or_else(|| requests("20m", "64Mi")),
        ),
        security_context: Some(container_security()),
        volume_mounts: Some(vec![
            mount("data", DATA_DIR, false),
            mount("config", CONFIG_DIR, true),
            mount("tmp", "/tmp", false),
        ]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(rpc.into()),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(10),
            ..Probe::default()
        }),
        ..Container::default()
    }
}

/// Wallet `i`'s arguments: no secret here (the logins are in the config file).
pub(super) fn wallet_args(spec: &Spec<'_>, ctx: &Context, i: i32, login: bool) -> Vec<String> {
    let node = i % spec.replicas.max(1);
    // One level under the volume each: monero-wallet-rpc makes a missing
    // directory, but not its parents.
    let dir = format!("{DATA_DIR}/wallet-{i}");
    let mut args = vec![
        format!("--config-file={CONFIG_DIR}/{WALLET_CONF_KEY}"),
        format!(
            "--daemon-address={}:{}",
            node_host(spec.owner, node, &ctx.cluster_domain),
            spec.ports.restricted_rpc
        ),
        "--daemon-ssl=disabled".into(),
        "--rpc-bind-ip=0.0.0.0".into(),
        "--confirm-external-bind".into(),
        format!("--rpc-bind-port={}", wallet_port(i)),
        "--rpc-ssl=disabled".into(),
        format!("--wallet-dir={dir}"),
        format!("--shared-ringdb-dir={DATA_DIR}/ringdb-{i}"),
        "--non-interactive".into(),
        "--log-file=/dev/null".into(),
        "--max-log-file-size=0".into(),
    ];
    if !login {
        args.push("--disable-rpc-login".into());
    }
    match spec.net {
        Network::Testnet => args.push("--testnet".into()),
        Network::Stagenet => args.push("--stagenet".into()),
        Network::Mainnet | Network::Regtest => {}
    }
    // From 0.18.4 the wallet checks the daemon's hard forks against the
    // network's table, which a regtest chain (every fork at height 1) fails.
    if spec.net == Network::Regtest && spec.version.at_least(MonerodVersion::V0_18_4) {
        args.push("--allow-mismatched-daemon-version".into());
    }
    args
}

/// The exporter in wallets mode: makes the wallets, reports, sends.
fn sidecar(spec: &Spec<'_>, ctx: &Context, login: bool) -> Container {
    let mut args = vec![
        format!("--wallets-lab={CONFIG_DIR}/{WALLETS_LAB_KEY}"),
        format!("--listen=0.0.0.0:{EXPORTER_PORT}"),
    ];
    if login {
        args.push(format!("--rpc-login-file={CONFIG_DIR}/{LOGIN_FILE_KEY}"));
    }
    let mut c = exporter_container(
        &spec.node.exporter,
        ctx,
        args,
        vec![mount("config", CONFIG_DIR, true)],
    );
    c.readiness_probe = Some(exporter_readiness());
    c
}

fn stateful_set(spec: &Spec<'_>, template: PodTemplateSpec) -> StatefulSet {
    let (owner, node) = (spec.owner, spec.node);
    let name = wallets_name(&owner.name);
    StatefulSet {
        metadata: owner.child_meta(&name, WALLET_WORKLOAD),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(owner.selector_labels(WALLET_WORKLOAD)),
                ..LabelSelector::default()
            },
            service_name: Some(name),
            persistent_volume_claim_retention_policy: Some(retention(node)),
            template,
            // A wallet file is a few hundred kilobytes; 1Gi is room for their caches.
            volume_claim_templates: Some(vec![claim(
                Quantity("1Gi".into()),
                node.storage.storage_class_name.clone(),
            )]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The network's PodMonitor scrapes its wallets' pod too, under the same job
/// (`<namespace>/<network>`), so the network's dashboard finds them together.
pub(super) fn widen_pod_monitor(children: &mut [Child], owner: &Owner) {
    for c in children {
        if let Child::PodMonitor(pm) = c {
            pm.data["spec"]["selector"] = serde_json::json!({
                "matchLabels": {INSTANCE_LABEL: owner.name},
                "matchExpressions": [{
                    "key": NAME_LABEL,
                    "operator": "In",
                    "values": [MONEROD_WORKLOAD, WALLET_WORKLOAD],
                }],
            });
        }
    }
}

/// A wallet needs a node to talk to and the exporter to be made.
pub(super) fn check(spec: &Spec<'_>, wallets: &Wallets) -> Result<(), InvalidSpec> {
    if !spec.node.exporter.enabled {
        return Err(invalid(
            spec.owner,
            "spec.wallets",
            "wallets are made and driven by the exporter sidecar, which spec.template.spec.exporter.enabled turns off",
        ));
    }
    if spec.replicas < 1 {
        return Err(invalid(
            spec.owner,
            "spec.wallets",
            "needs at least one node to connect to (spec.replicas > 0)",
        ));
    }
    if !(1..=16).contains(&wallets.count) {
        return Err(invalid(spec.owner, "spec.wallets.count", "must be 1 to 16"));
    }
    Ok(())
}
