//! Pure builders: a custom resource plus the little state it refers to (user
//! Secrets, other sets' networks) in, the Kubernetes objects to apply out.
//! Nothing here talks to the API server, so every output can be tested field
//! by field and printed by `monero-operator render`.

mod anon;
mod graph;
mod limits;
mod meta;
mod mining;
mod monerod;
mod node;
mod pod;
mod services;
mod version;
mod wallets;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use anon::{MONEROD_CONFIG, generated_identities, identity_secret_name};
pub use graph::Graph;
pub use limits::{
    CONFIG_SECRET_BYTES, MAX_ANNOTATION_BYTES, MAX_CONFIG_SECRETS, MAX_OBJECT_BYTES,
    MAX_SECRET_BYTES,
};
pub use meta::{CONFIG_HASH_ANNOTATION, INSTANCE_LABEL, MANAGER, NAME_LABEL, Owner, PART_OF_LABEL};
pub use mining::{
    XMRIG_API_CONFIG_KEY, XMRIG_API_PORT, XMRIG_API_TOKEN_KEY, xmrig_api_secret,
    xmrig_api_secret_name,
};
pub use mining::{XMRIG_WORKLOAD, mining_set};
pub use monerod::{BAN_LIST_KEY, DEFAULT_PER_PRIVATE_IP, clean_ban_list};
pub use node::{MONEROD_WORKLOAD, NodeKind, effective_network, monerod_version, network, node_set};
pub use pod::EXPORTER_PORT;
pub use services::{POD_NAME_LABEL, per_replica_service_name};
pub use version::{MonerodVersion, Resolved as ResolvedVersion, Source as VersionSource};
pub use wallets::{WALLET_RPC_PORT, WALLET_WORKLOAD, WALLETS_LAB_KEY, wallet_port, wallets_name};

use crate::error::InvalidSpec;

/// The images the operator uses when a resource does not name its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// monerod.
    pub monerod: String,
    /// monero-exporter.
    pub exporter: String,
    /// xmrig.
    pub xmrig: String,
    /// monero-anon (the podconfig init container).
    pub podconfig: String,
    /// tor.
    pub tor: String,
    /// i2pd.
    pub i2pd: String,
    /// The monerod release the default monerod image runs, which decides its
    /// flags; None when the operator cannot tell (another image, untagged).
    pub monerod_version: Option<String>,
}

/// The monerod release `images/monerod` packages (Debian trixie's `monero`).
pub const DEFAULT_MONEROD_VERSION: &str = "0.18.4.0";

impl Default for Images {
    fn default() -> Self {
        let tag = env!("CARGO_PKG_VERSION");
        Images {
            monerod: format!("ghcr.io/monero-operator/monerod:{tag}"),
            exporter: format!("ghcr.io/monero-operator/exporter:{tag}"),
            xmrig: format!("ghcr.io/monero-operator/xmrig:{tag}"),
            podconfig: format!("ghcr.io/monero-operator/podconfig:{tag}"),
            tor: format!("ghcr.io/monero-operator/tor:{tag}"),
            i2pd: format!("ghcr.io/monero-operator/i2pd:{tag}"),
            monerod_version: Some(DEFAULT_MONEROD_VERSION.into()),
        }
    }
}

/// Everything a builder needs besides the custom resource itself.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Default images.
    pub images: Images,
    /// The cluster's DNS domain, for fully qualified peer names. Default cluster.local.
    pub cluster_domain: String,
    /// Data of the user Secrets the resource refers to, by Secret name.
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Networks of the MoneroNodeSets in the namespace, by name (for solo mining).
    pub node_sets: BTreeMap<String, monero_crd::Network>,
    /// Data of the user ConfigMaps the resource refers to (a ban list), by name.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Context {
    /// A context with the given images and the default cluster domain.
    pub fn new(images: Images) -> Context {
        Context {
            images,
            cluster_domain: "cluster.local".into(),
            ..Context::default()
        }
    }

    /// The value of `key` in the user Secret `name`, as UTF-8 text.
    pub(crate) fn secret_value(&self, name: &str, key: &str) -> Result<String, String> {
        let data = self
            .secrets
            .get(name)
            .ok_or_else(|| format!("Secret {name} not found"))?;
        let bytes = data
            .get(key)
            .ok_or_else(|| format!("Secret {name} has no key {key}"))?;
        String::from_utf8(bytes.clone())
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|_| format!("Secret {name} key {key} is not UTF-8 text"))
    }
}

impl Context {
    /// The value of `key` in the user ConfigMap `name`.
    pub(crate) fn config_map_value(&self, name: &str, key: &str) -> Result<String, String> {
        let data = self
            .config_maps
            .get(name)
            .ok_or_else(|| format!("ConfigMap {name} not found"))?;
        data.get(key)
            .cloned()
            .ok_or_else(|| format!("ConfigMap {name} has no key {key}"))
    }
}

/// One object to apply.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Child {
    /// Config files the pods read (they may hold a login).
    Secret(Box<Secret>),
    /// A Service.
    Service(Box<Service>),
    /// The workload.
    StatefulSet(Box<StatefulSet>),
    /// Keeps all but one replica up during voluntary disruptions.
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    /// The Prometheus Operator's PodMonitor (a custom resource of its own, so untyped).
    PodMonitor(Box<kube::api::DynamicObject>),
}

impl Child {
    /// Kind and name, for logs and Events.
    pub fn describe(&self) -> String {
        let (kind, meta) = match self {
            Child::Secret(o) => ("Secret", &o.metadata),
            Child::Service(o) => ("Service", &o.metadata),
            Child::StatefulSet(o) => ("StatefulSet", &o.metadata),
            Child::PodDisruptionBudget(o) => ("PodDisruptionBudget", &o.metadata),
            Child::PodMonitor(o) => ("PodMonitor", &o.metadata),
        };
        format!("{kind}/{}", meta.name.as_deref().unwrap_or(""))
    }
}

/// The objects one custom resource should have, in the order to apply them
/// (config before the workload that reads it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    /// The objects.
    pub children: Vec<Child>,
    /// The pods' label selector, for the status and the scale subresource.
    pub selector: String,
    /// A network's nodes' peers by pod name, as its topology says (empty
    /// for other kinds): what status compares the reported peers with.
    pub peers: BTreeMap<String, Vec<String>>,
}

impl Desired {
    /// The StatefulSet, if any.
    pub fn stateful_set(&self) -> Option<&StatefulSet> {
        self.children.iter().find_map(|c| match c {
            Child::StatefulSet(s) => Some(s.as_ref()),
            _ => None,
        })
    }

    /// Names of the children of one kind.
    pub fn names_of(&self, pick: fn(&Child) -> bool) -> Vec<String> {
        self.children
            .iter()
            .filter(|c| pick(c))
            .filter_map(|c| c.describe().split_once('/').map(|(_, n)| n.to_string()))
            .collect()
    }
}

/// The API resource of the Prometheus Operator's PodMonitor.
pub fn pod_monitor_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: "PodMonitor".into(),
        plural: "podmonitors".into(),
    }
}

/// A short, stable hash of config data, for the pod template annotation.
pub(crate) fn config_hash<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (k, v) in parts {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Secret's contents as the pods would see them: `data`, with `stringData`
/// (which the API server folds into `data` on write) taking precedence.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

/// An InvalidSpec for `owner`.
pub(crate) fn invalid(owner: &Owner, field: &str, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        kind: owner.kind.clone(),
        namespace: owner.namespace.clone(),
        name: owner.name.clone(),
        field: field.into(),
        message: message.into(),
    }
}

/// The resource's name becomes the name of its Services (`NAME`,
/// `NAME-headless`, `NAME-i`) and a label value, so it must be a DNS-1035
/// label: the API server accepts a custom resource named `1nodes` or
/// `my.nodes`, and would then refuse every Service apply. It must also leave
/// room for the children's suffixes within 63 characters (Service names and
/// the StatefulSet's pod labels).
pub(crate) fn check_name(owner: &Owner, longest_suffix: usize) -> Result<(), InvalidSpec> {
    if let Some(why) = limits::dns1035_problem(&owner.name) {
        return Err(invalid(
            owner,
            "metadata.name",
            format!(
                "{why} (its Services are named after it, and a Service name is a DNS-1035 label)"
            ),
        ));
    }
    // StatefulSet pods get a controller-revision-hash label of name + 11 characters.
    let max = 63 - longest_suffix.max(11);
    if owner.name.len() > max {
        return Err(invalid(
            owner,
            "metadata.name",
            format!(
                "is {} characters; at most {max} fit the names of its children",
                owner.name.len()
            ),
        ));
    }
    Ok(())
}
