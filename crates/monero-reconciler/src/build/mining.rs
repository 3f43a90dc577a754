//! xmrig workloads (MoneroMiningNodeSet).
//!
//! A StatefulSet rather than a Deployment, because `$(id)` must be a stable
//! replica index: each pod gets the env var `id` from its
//! `apps.kubernetes.io/pod-index` label, and Kubernetes expands `$(id)` in the
//! args. The typed config becomes one xmrig config file per index in a Secret
//! (it may hold pool passwords); the pod picks its own with `$(id)`. Scaling
//! adds files without changing the others, so it rolls no running miner.
//! Files that outgrow one Secret continue in further Secrets, unless they
//! would all be the same (no `$(id)` in the config): then the replicas share
//! one, since a thousand copies of a config buy nothing.
//!
//! xmrig serves its HTTP API on the pod's loopback only, behind an access
//! token, and the exporter sidecar reads it from there: hashrate and shares
//! become metrics on the pod IP, which Prometheus scrapes and the operator
//! reads for the status. The token lives in `<name>-xmrig-api`, which the
//! controller makes once ([`xmrig_api_secret`]). xmrig reads that Secret's
//! `http.json` as its last config file (`-c`, after the user's flags): xmrig
//! merges its config files and flags with the last one winning per top-level
//! key, so the typed config and a user's own `--config` keep everything but
//! the `http` section, which the operator owns. A user `--http-*` flag would
//! half-merge with it, so it is refused.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, KeyToPath, PodSpec, PodTemplateSpec, Secret,
    SecretVolumeSource, Service, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use monero_crd::{MoneroMiningNodeSet, Pool, XmrigConfig};
use serde_json::{Value, json};

use super::limits::{
    CONFIG_SECRET_BYTES, check_annotation_size, check_labels, check_pod_overrides, check_sizes,
    config_volume, qualified_name_problem,
};
use super::pod::{
    anti_affinity, apply_overrides, container_security, exporter_container, exporter_readiness,
    field_env, mount, pod_labels, pod_monitor, pod_security, requests, scrape_annotations,
};
use super::{
    CONFIG_HASH_ANNOTATION, Child, Context, Desired, Owner, check_name, config_hash, invalid,
};
use crate::args::merge_args;
use crate::error::InvalidSpec;

/// The `app.kubernetes.io/name` of xmrig pods.
pub const XMRIG_WORKLOAD: &str = "xmrig";
const CONFIG_DIR: &str = "/etc/xmrig";
const ID_PLACEHOLDER: &str = "$(id)";
/// The one config file of a large set whose config has no `$(id)`.
const SHARED_CONFIG: &str = "config.json";
/// Port of xmrig's HTTP API, bound to the pod's 127.0.0.1.
pub const XMRIG_API_PORT: u16 = 18092;
/// Where the API Secret is mounted, in xmrig (its `http.json`) and in the
/// exporter (its `token`).
const API_DIR: &str = "/etc/xmrig-api";
/// The API Secret's key holding xmrig's `http` config section.
pub const XMRIG_API_CONFIG_KEY: &str = "http.json";
/// The API Secret's key holding the bare token, for the exporter.
pub const XMRIG_API_TOKEN_KEY: &str = "token";
/// Label on the API Secret. Not the children's labels: the builder does not
/// return that Secret (its token is made once, at random), so pruning must
/// never select it; its owner reference collects it with the set.
pub const XMRIG_API_LABEL: &str = "utxo.com.br/xmrig-api-of";

/// Name of the Secret holding a set's xmrig API token.
pub fn xmrig_api_secret_name(owner: &Owner) -> String {
    format!("{}-xmrig-api", owner.name)
}

/// The API Secret as the operator first creates it: the `token` for the
/// exporter and `http.json`, the `http` section of xmrig's config with that
/// token, restricted (read-only) and bound to the pod's loopback.
pub fn xmrig_api_secret(owner: &Owner, token: &str) -> Secret {
    // autosave off: xmrig would otherwise write back into the last config
    // file it read, this read-only one, when it has only flags besides.
    let http = json!({"autosave": false, "http": {
        "enabled": true,
        "host": "127.0.0.1",
        "port": XMRIG_API_PORT,
        "access-token": token,
        "restricted": true,
    }});
    Secret {
        metadata: ObjectMeta {
            name: Some(xmrig_api_secret_name(owner)),
            namespace: Some(owner.namespace.clone()),
            labels: Some(BTreeMap::from([
                (XMRIG_API_LABEL.to_string(), owner.name.clone()),
                (
                    "app.kubernetes.io/created-by".to_string(),
                    super::MANAGER.to_string(),
                ),
            ])),
            owner_references: owner.owner_reference().map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (
                XMRIG_API_TOKEN_KEY.to_string(),
                ByteString(token.as_bytes().to_vec()),
            ),
            (
                XMRIG_API_CONFIG_KEY.to_string(),
                ByteString(http.to_string().into_bytes()),
            ),
        ])),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// A volume of the API Secret that shows only `key`: xmrig gets the config
/// section, the exporter the bare token.
fn api_volume(owner: &Owner, name: &str, key: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(xmrig_api_secret_name(owner)),
            default_mode: Some(0o440),
            items: Some(vec![KeyToPath {
                key: key.into(),
                path: key.into(),
                ..KeyToPath::default()
            }]),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Builds the objects of a MoneroMiningNodeSet.
pub fn mining_set(set: &MoneroMiningNodeSet, ctx: &Context) -> Result<Desired, InvalidSpec> {
    let owner = Owner::of("MoneroMiningNodeSet", &set.metadata);
    check_name(&owner, 9)?;
    let spec = &set.spec;
    if spec.replicas < 0 {
        return Err(invalid(&owner, "spec.replicas", "must not be negative"));
    }
    check_pod_overrides(&owner, "spec.pod", &spec.pod)?;
    if let Some(why) = qualified_name_problem(&spec.topology_key) {
        return Err(invalid(&owner, "spec.topologyKey", why));
    }
    check_labels(
        &owner,
        "spec.exporter.podMonitor.labels",
        &spec.exporter.pod_monitor.labels,
    )?;
    let x = &spec.xmrig;
    let selector = owner.selector_labels(XMRIG_WORKLOAD);
    let secret_name = format!("{}-xmrig", owner.name);
    let headless_name = format!("{}-headless", owner.name);
    let mut children = Vec::new();

    let exporter_on = spec.exporter.enabled;
    let mut defaults: Vec<String> = vec!["--no-color".into()];
    if exporter_on && let Some(flag) = x.args.iter().find(|a| a.starts_with("--http-")) {
        return Err(invalid(
            &owner,
            "spec.xmrig.args",
            format!(
                "{flag}: the operator runs xmrig's HTTP API for the exporter; leave the --http-* flags out, or set spec.exporter.enabled: false"
            ),
        ));
    }
    let mut hash = String::new();
    let mut config_vol = None;
    if let Some(config) = &x.config {
        let template = xmrig_config(&owner, config, ctx)?;
        let text = serde_json::to_string_pretty(&template).map_err(|e| {
            invalid(
                &owner,
                "spec.xmrig.config",
                format!("cannot be written as JSON: {e}"),
            )
        })?;
        // The hash covers the config before $(id) is filled in, so adding
        // replicas does not roll the running ones.
        hash = config_hash([("config.json", text.as_bytes())]);
        let replicas = usize::try_from(spec.replicas).unwrap_or_default();
        // Identical files for every replica would only multiply the config
        // by the replicas: past one Secret's worth, they share one file.
        let shared = !text.contains(ID_PLACEHOLDER)
            && replicas.saturating_mul(text.len()) > CONFIG_SECRET_BYTES;
        let files: Vec<(String, Vec<u8>)> = if shared {
            defaults.push(format!("--config={CONFIG_DIR}/{SHARED_CONFIG}"));
            vec![(SHARED_CONFIG.to_string(), text.into_bytes())]
        } else {
            defaults.push(format!("--config={CONFIG_DIR}/config-$(id).json"));
            (0..spec.replicas)
                .map(|i| {
                    (
                        format!("config-{i}.json"),
                        text.replace(ID_PLACEHOLDER, &i.to_string()).into_bytes(),
                    )
                })
                .collect()
        };
        // In replica order, so that scaling up only appends to the last Secret.
        let config = config_volume(
            &owner,
            XMRIG_WORKLOAD,
            &secret_name,
            "config",
            files,
            "spec.xmrig.config",
        )?;
        children.extend(
            config
                .secrets
                .into_iter()
                .map(|s| Child::Secret(Box::new(s))),
        );
        config_vol = Some(config.volume);
    }
    children.push(Child::Service(Box::new(Service {
        metadata: owner.child_meta(&headless_name, XMRIG_WORKLOAD),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector.clone()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })));

    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    }];
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    if exporter_on {
        mounts.push(mount("xmrig-api", API_DIR, true));
        volumes.push(api_volume(&owner, "xmrig-api", XMRIG_API_CONFIG_KEY));
        volumes.push(api_volume(&owner, "xmrig-api-token", XMRIG_API_TOKEN_KEY));
    }
    if let Some(volume) = config_vol {
        mounts.push(VolumeMount {
            name: "config".into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        volumes.push(volume);
    }
    let container = Container {
        name: "xmrig".into(),
        image: Some(x.image.clone().unwrap_or_else(|| ctx.images.xmrig.clone())),
        image_pull_policy: Some(
            x.image_pull_policy
                .map_or("IfNotPresent", |p| p.as_str())
                .into(),
        ),
        args: Some(xmrig_args(&defaults, &x.args, exporter_on)),
        env: Some(vec![field_env(
            "id",
            "metadata.labels['apps.kubernetes.io/pod-index']",
        )]),
        resources: Some(
            x.resources
                .clone()
                .unwrap_or_else(|| requests("1", "2600Mi")),
        ),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        readiness_probe: exporter_on.then(exporter_readiness),
        ..Container::default()
    };
    let mut containers = vec![container];
    if exporter_on {
        containers.push(exporter_container(
            &spec.exporter,
            ctx,
            vec![
                format!("--xmrig-address=http://127.0.0.1:{XMRIG_API_PORT}"),
                format!("--xmrig-access-token-file={API_DIR}/{XMRIG_API_TOKEN_KEY}"),
                format!("--listen=0.0.0.0:{}", super::EXPORTER_PORT),
            ],
            vec![mount("xmrig-api-token", API_DIR, true)],
        ));
    }
    let mut pod = PodSpec {
        containers,
        security_context: Some(pod_security()),
        affinity: Some(anti_affinity(
            spec.hard_anti_affinity,
            &spec.topology_key,
            selector.clone(),
        )),
        termination_grace_period_seconds: Some(30),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    apply_overrides(&mut pod, &spec.pod);
    let mut annotations = spec.pod.annotations.clone();
    if !hash.is_empty() {
        annotations.insert(CONFIG_HASH_ANNOTATION.into(), hash);
    }
    if exporter_on {
        annotations.extend(scrape_annotations());
    }
    check_annotation_size(&owner, "spec.pod.annotations", &annotations)?;
    let sts = StatefulSet {
        metadata: owner.child_meta(&owner.name, XMRIG_WORKLOAD),
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            service_name: Some(headless_name),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels(&spec.pod, None, owner.labels(XMRIG_WORKLOAD))),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };
    children.push(Child::StatefulSet(Box::new(sts)));
    if exporter_on && spec.exporter.pod_monitor.enabled {
        children.push(Child::PodMonitor(Box::new(pod_monitor(
            &owner,
            &spec.exporter.pod_monitor,
            XMRIG_WORKLOAD,
        ))));
    }
    check_sizes(&owner, &children)?;
    Ok(Desired {
        children,
        selector: owner.selector_string(XMRIG_WORKLOAD),
        peers: BTreeMap::new(),
    })
}

/// The operator's flags, then the user's, then (with the exporter) the API's
/// config file, last so that its `http` section wins.
fn xmrig_args(defaults: &[String], user: &[String], api: bool) -> Vec<String> {
    let mut args = merge_args(defaults, user);
    if api {
        args.push(format!("-c{API_DIR}/{XMRIG_API_CONFIG_KEY}"));
    }
    args
}

/// xmrig's config.json for the typed config, with `$(id)` still in place.
/// Secrets are resolved here; autosave is off because the file is read-only.
pub fn xmrig_config(owner: &Owner, c: &XmrigConfig, ctx: &Context) -> Result<Value, InvalidSpec> {
    let mut pools = Vec::new();
    for (i, p) in c.pools.iter().enumerate() {
        pools.push(pool(owner, i, p, ctx)?);
    }
    let mut cpu = json!({"enabled": true, "huge-pages": true});
    if let Some(h) = c.cpu.max_threads_hint {
        cpu["max-threads-hint"] = json!(h);
    }
    if let Some(p) = c.cpu.priority {
        cpu["priority"] = json!(p);
    }
    let mut out = json!({
        "autosave": false,
        "background": false,
        "colors": false,
        "cpu": cpu,
        "opencl": {"enabled": false},
        "cuda": {"enabled": false},
        "randomx": {"mode": c.randomx.mode.as_str(), "1gb-pages": c.randomx.one_gb_pages},
        "pools": pools,
    });
    if let Some(d) = c.donate_level {
        out["donate-level"] = json!(d);
        out["donate-over-proxy"] = json!(d);
    }
    Ok(out)
}

fn pool(owner: &Owner, i: usize, p: &Pool, ctx: &Context) -> Result<Value, InvalidSpec> {
    let field = format!("spec.xmrig.config.pools[{i}]");
    let secret = |r: &monero_crd::SecretKeyRef, sub: &str| {
        ctx.secret_value(&r.name, &r.key)
            .map_err(|m| invalid(owner, &format!("{field}.{sub}"), m))
    };
    let user = match (&p.user, &p.user_secret_ref) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(r)) => Some(secret(r, "userSecretRef")?),
        (None, None) => None,
    };
    let pass = match (&p.pass, &p.pass_secret_ref) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(r)) => Some(secret(r, "passSecretRef")?),
        (None, None) => None,
    };
    let mut v = json!({"tls": p.tls, "keepalive": p.keepalive});
    match (&p.url, &p.node_set) {
        (Some(url), None) => v["url"] = json!(url),
        (None, Some(ns)) => {
            let net = ctx.node_sets.get(ns).ok_or_else(|| {
                invalid(
                    owner,
                    &format!("{field}.nodeSet"),
                    format!(
                        "MoneroNodeSet {ns} not found in namespace {}",
                        owner.namespace
                    ),
                )
            })?;
            v["url"] = json!(format!(
                "{ns}.{}.svc.{}:{}",
                owner.namespace,
                ctx.cluster_domain,
                net.ports().restricted_rpc
            ));
            v["daemon"] = json!(true);
            v["coin"] = json!("monero");
        }
        _ => {
            return Err(invalid(
                owner,
                &field,
                "needs exactly one of url and nodeSet",
            ));
        }
    }
    if let Some(u) = user {
        v["user"] = json!(u);
    }
    if let Some(p) = pass {
        v["pass"] = json!(p);
    }
    if let Some(r) = &p.rig_id {
        v["rig-id"] = json!(r);
    }
    Ok(v)
}
