//! MoneroNodeSet: a set of identical monerod replicas, and the node settings it
//! shares with a MoneroNetwork's template.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{
    AnonymitySpec, Clearnet, ExporterSpec, MonerodSpec, Network, PodOverrides, Readiness,
    ServiceSpec, SetStatus, StorageSpec, UpdateStrategy, default_stall_timeout,
    default_topology_key,
};

/// A set of identical Monero full nodes, each with its own volume. Scaling,
/// image upgrades and config changes roll one pod at a time and keep the data.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "utxo.com.br",
    version = "v1alpha1",
    kind = "MoneroNodeSet",
    namespaced,
    status = "SetStatus",
    derive = "PartialEq",
    shortname = "mns",
    category = "monero",
    doc = "A set of identical Monero full nodes (monerod), each with its own volume.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Desired replicas"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Ready replicas"
    ),
    printcolumn(
        name = "Up-to-date",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "Replicas on the latest pod template"
    ),
    printcolumn(
        name = "Height",
        type_ = "integer",
        json_path = ".status.height",
        description = "Highest block height among the replicas"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.synchronized",
        description = "Synchronized replicas"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.network) || (has(self.network) && self.network == oldSelf.network)").message("spec.network is immutable once set").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new("!has(self.clearnet) || self.clearnet != 'ThroughTor' || (has(self.tor) && self.tor.enabled)").message("spec.clearnet: ThroughTor needs spec.tor.enabled").reason(Reason::FieldValueInvalid))]
pub struct MoneroNodeSetSpec {
    /// Number of monerod replicas. Default 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// How a new pod template (image, args, config) reaches the replicas.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    /// Restart a replica (by deleting its pod) whose height has not moved for
    /// this long while other replicas are ahead of it: a monerod stuck on a
    /// bad peer or a wedged database. At most once per stallTimeout per
    /// replica, with an Event. Not on a regtest MoneroNodeSet, whose replicas
    /// keep separate chains. A number with s, m or h; 0s turns it off.
    /// Default 30m.
    #[serde(default = "default_stall_timeout")]
    #[schemars(regex(pattern = r"^[0-9]{1,7}(s|m|h)$"))]
    pub stall_timeout: String,
    /// The node settings.
    #[serde(flatten)]
    pub node: NodeSpec,
}

/// Settings of one monerod node, shared by a MoneroNodeSet and a MoneroNetwork's template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    /// Network the nodes join: mainnet, testnet, stagenet or regtest. Immutable.
    /// When unset, a network flag in monerod.args decides, else mainnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// monerod settings.
    #[serde(default)]
    pub monerod: MonerodSpec,
    /// Volumes.
    #[serde(default)]
    pub storage: StorageSpec,
    /// The client Service for P2P and restricted RPC.
    #[serde(default)]
    pub service: ServiceSpec,
    /// Require replicas on different topology domains (required pod
    /// anti-affinity); with fewer domains than replicas, the extra pods stay Pending.
    #[serde(default)]
    pub hard_anti_affinity: bool,
    /// Node label that defines a topology domain for hardAntiAffinity. Default
    /// kubernetes.io/hostname (one replica per node).
    #[serde(default = "default_topology_key")]
    #[schemars(length(min = 1, max = 316))]
    pub topology_key: String,
    /// When a replica counts as ready: Synchronized (default) or RpcAnswers.
    /// On regtest, with no chain to sync from, RPC answering is enough either way.
    #[serde(default)]
    pub readiness: Readiness,
    /// Serve the nodes over Tor.
    #[serde(default)]
    pub tor: AnonymitySpec,
    /// How monerod reaches clearnet peers: Direct (default) or ThroughTor.
    #[serde(default)]
    pub clearnet: Clearnet,
    /// Serve the nodes over I2P.
    #[serde(default)]
    pub i2p: AnonymitySpec,
    /// The metrics exporter sidecar.
    #[serde(default)]
    pub exporter: ExporterSpec,
    /// Pod-level settings passed through to every replica.
    #[serde(default)]
    pub pod: PodOverrides,
}

/// By hand, not derived: the default is also the schema's default for an omitted
/// MoneroNetwork template, and a derived one would put `topologyKey: ""` there,
/// which the API server refuses (minLength 1).
impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            network: None,
            monerod: MonerodSpec::default(),
            storage: StorageSpec::default(),
            service: ServiceSpec::default(),
            hard_anti_affinity: false,
            topology_key: default_topology_key(),
            readiness: Readiness::default(),
            tor: AnonymitySpec::default(),
            clearnet: Clearnet::default(),
            i2p: AnonymitySpec::default(),
            exporter: ExporterSpec::default(),
            pod: PodOverrides::default(),
        }
    }
}

pub(crate) fn default_replicas() -> i32 {
    1
}
