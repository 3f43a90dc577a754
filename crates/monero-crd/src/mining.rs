//! MoneroMiningNodeSet: xmrig replicas.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    ExporterSpec, PodOverrides, PullPolicy, SecretKeyRef, SetStatus, default_topology_key,
};
use crate::nodeset::default_replicas;

/// A set of xmrig miners. `$(id)` in the args or in the typed config is each
/// replica's index (0, 1, ...), so workers can be told apart at the pool.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "utxo.com.br",
    version = "v1alpha1",
    kind = "MoneroMiningNodeSet",
    namespaced,
    status = "SetStatus",
    derive = "PartialEq",
    shortname = "mmns",
    category = "monero",
    doc = "A set of xmrig miners.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Desired miners"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Running miners"
    ),
    printcolumn(
        name = "Hashrate",
        type_ = "integer",
        json_path = ".status.hashrate",
        description = "Hashes per second of all miners (xmrig's 60 s average)"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MoneroMiningNodeSetSpec {
    /// Number of miners. The status lists every miner, in the same object
    /// as the spec, which must stay under the 1.5 MiB the API server stores:
    /// hence at most 1000; split a larger farm into several sets. Default 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// Require miners on different topology domains (required pod anti-affinity).
    #[serde(default)]
    pub hard_anti_affinity: bool,
    /// Node label that defines a topology domain for hardAntiAffinity. Default
    /// kubernetes.io/hostname.
    #[serde(default = "default_topology_key")]
    #[schemars(length(min = 1, max = 316))]
    pub topology_key: String,
    /// xmrig settings.
    #[serde(default)]
    pub xmrig: XmrigSpec,
    /// The exporter sidecar, which reads xmrig's HTTP API (served on the pod's
    /// loopback only, behind an access token the operator makes) and publishes
    /// hashrate and shares as metrics and in this object's status.
    #[serde(default)]
    pub exporter: ExporterSpec,
    /// Pod-level settings passed through to every replica.
    #[serde(default)]
    pub pod: PodOverrides,
}

/// xmrig settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct XmrigSpec {
    /// xmrig image; the operator's default (its `--xmrig-image` flag) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy. Default IfNotPresent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// xmrig flags, appended after the operator's (`$(id)` is the replica index).
    /// A flag replaces the operator's flag of the same name. At most 128
    /// flags of 1024 characters each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128), inner(length(max = 1024)))]
    pub args: Vec<String>,
    /// CPU and memory. Default: requests of 1 CPU and 2600Mi (RandomX fast mode),
    /// no limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// Typed xmrig configuration, written to a config file (in a Secret, since
    /// it may hold a pool password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<XmrigConfig>,
}

/// The parts of xmrig's config.json the operator types.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct XmrigConfig {
    /// Pools, tried in order.
    #[schemars(length(min = 1, max = 16))]
    pub pools: Vec<Pool>,
    /// CPU settings.
    #[serde(default)]
    pub cpu: CpuConfig,
    /// RandomX settings.
    #[serde(default)]
    pub randomx: RandomxConfig,
    /// Percentage of time donated to xmrig's developers (xmrig's default is 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 99))]
    pub donate_level: Option<u8>,
}

/// A pool, or a MoneroNodeSet in the namespace for solo mining.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.url) != has(self.nodeSet)").message("a pool needs exactly one of url and nodeSet").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new("!(has(self.user) && has(self.userSecretRef))").message("a pool takes user or userSecretRef, not both").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new("!(has(self.pass) && has(self.passSecretRef))").message("a pool takes pass or passSecretRef, not both").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new("!has(self.nodeSet) || has(self.user) || has(self.userSecretRef)").message("solo mining against a nodeSet needs the wallet address in user or userSecretRef").reason(Reason::FieldValueRequired))]
pub struct Pool {
    /// Pool address, host:port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub url: Option<String>,
    /// Name of a MoneroNodeSet in the same namespace to solo-mine against
    /// (xmrig's daemon mode, through the set's restricted RPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub node_set: Option<String>,
    /// Pool login, usually a wallet address (`$(id)` is the replica index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub user: Option<String>,
    /// The login from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_secret_ref: Option<SecretKeyRef>,
    /// Pool password (`$(id)` is the replica index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub pass: Option<String>,
    /// The password from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_secret_ref: Option<SecretKeyRef>,
    /// Rig identifier (`$(id)` is the replica index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub rig_id: Option<String>,
    /// Connect with TLS.
    #[serde(default)]
    pub tls: bool,
    /// Send keepalives.
    #[serde(default)]
    pub keepalive: bool,
}

/// CPU settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuConfig {
    /// Percentage of the CPU threads to mine with (xmrig's max-threads-hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_threads_hint: Option<u8>,
    /// Thread priority, 0 (idle) to 5 (highest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 5))]
    pub priority: Option<u8>,
}

/// RandomX settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RandomxConfig {
    /// auto (default), fast (2 GiB dataset) or light (256 MiB, slower).
    #[serde(default)]
    pub mode: RandomxMode,
    /// Use 1 GiB huge pages (needs them on the node).
    #[serde(default)]
    pub one_gb_pages: bool,
}

/// RandomX mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RandomxMode {
    /// Let xmrig choose.
    #[default]
    Auto,
    /// Full dataset, fastest.
    Fast,
    /// Cache only.
    Light,
}

impl RandomxMode {
    /// xmrig's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RandomxMode::Auto => "auto",
            RandomxMode::Fast => "fast",
            RandomxMode::Light => "light",
        }
    }
}
