//! MoneroNetwork: a closed network of monerod nodes that only peer with each other.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{SetStatus, UpdateStrategy, default_stall_timeout};
use crate::nodeset::NodeSpec;

/// A closed network of monerod nodes: each node is an exclusive peer of every
/// other, addressed by a stable DNS name, so the network reaches nothing else.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "utxo.com.br",
    version = "v1alpha1",
    kind = "MoneroNetwork",
    namespaced,
    status = "SetStatus",
    derive = "PartialEq",
    shortname = "mnet",
    category = "monero",
    doc = "A closed network of monerod nodes that only peer with each other.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Desired nodes"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Ready nodes"
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
        description = "Highest block height among the nodes"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.synchronized",
        description = "Synchronized nodes"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.topology) || !has(self.topology.hub) || self.topology.hub < self.replicas").message("spec.topology.hub must be the index of a node, below spec.replicas").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new("!has(self.wallets) || self.replicas > 0").message("spec.wallets needs at least one node to connect to (spec.replicas > 0)").reason(Reason::FieldValueInvalid))]
pub struct MoneroNetworkSpec {
    /// Number of nodes. Scaling rewires every node's peers (and so rolls
    /// them). Every node's config file lists every other node, so a large
    /// network's files continue from the Secret `<name>-monerod` into
    /// `<name>-monerod-1`, `-2`, ..., all mounted together. Default 2.
    #[serde(default = "default_network_replicas")]
    #[schemars(range(min = 0, max = 256))]
    pub replicas: i32,
    /// How a new pod template (image, args, peers) reaches the nodes.
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
    /// Who is whose peer. Default FullMesh: every node an exclusive peer of
    /// every other.
    #[serde(default)]
    pub topology: Topology,
    /// Produce blocks on a schedule (regtest): each node in `miners` mines
    /// `blocksPerRound` blocks every `interval`, from the exporter sidecar
    /// through its unrestricted RPC. Changing it restarts nothing. Off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Blocks>,
    /// Groups of node indices that cannot see each other, for as long as
    /// this is set: each node's lab sidecar bans (monerod's `set_bans`) the
    /// nodes of every other group, at run time, without a restart. The nodes
    /// no group names form one more group. Removing it heals the network, and
    /// the sides' chains compete: status shows the fork while it lasts
    /// (`Forked`) and each node's reorganizations after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 256)))]
    pub partitions: Vec<Vec<i32>>,
    /// The network is Ready only once every node is at or above this height,
    /// so that a CI job can `kubectl wait --for=condition=Ready` and start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100_000_000))]
    pub ready_at_height: Option<u64>,
    /// Wallets for tests: monero-wallet-rpc instances in one pod
    /// (`<name>-wallets-0`), each with a wallet made on first start and kept
    /// on its volume, served in the cluster at `<name>-wallets:18083+i`. With
    /// `blocks`, the miners mine to the wallets in turn, so they are funded
    /// from coinbase (spendable 60 blocks later), and the network is Ready
    /// only once every wallet has an unlocked balance. Off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallets: Option<Wallets>,
    /// What every node looks like.
    #[serde(default)]
    pub template: NodeTemplate,
}

/// Wallets with funds and, when asked, traffic between them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wallets {
    /// How many wallets. Wallet i talks to node i modulo the number of nodes,
    /// through its restricted RPC. Default 2.
    #[serde(default = "default_wallet_count")]
    #[schemars(range(min = 1, max = 16))]
    pub count: i32,
    /// Transfers each wallet sends per minute, to the other wallets in turn,
    /// whenever its unlocked balance allows. 0 (the default) sends none.
    #[serde(default)]
    #[schemars(range(min = 0, max = 600))]
    pub transactions_per_minute: u32,
    /// The amount of each transfer, in atomic units (1 XMR = 10^12).
    /// Default 10^9 (0.001 XMR).
    #[serde(default = "default_transfer_amount")]
    #[schemars(range(min = 1, max = 1_000_000_000_000_000u64))]
    pub amount: u64,
    /// Require HTTP digest login on every wallet's RPC, from this Secret
    /// (given to monero-wallet-rpc in a config file, never in its arguments).
    /// Without it the wallets' RPC is open to anything in the cluster that
    /// can reach the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<crate::RpcLogin>,
    /// The image with `/usr/bin/monero-wallet-rpc`. Default: the nodes'
    /// monerod image (the operator's monerod image ships it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Resources of each monero-wallet-rpc container. Default: requests of
    /// 20m CPU and 64Mi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
}

fn default_wallet_count() -> i32 {
    2
}

fn default_transfer_amount() -> u64 {
    1_000_000_000
}

/// Blocks on a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Blocks {
    /// Time between two rounds: a number with s, m or h. Default 30s.
    #[serde(default = "default_block_interval")]
    #[schemars(regex(pattern = r"^[0-9]{1,7}(s|m|h)$"))]
    pub interval: String,
    /// Blocks each miner makes per round. Default 1.
    #[serde(default = "default_blocks_per_round")]
    #[schemars(range(min = 1, max = 1000))]
    pub blocks_per_round: u32,
    /// The indices of the nodes that mine. Default [0]. Several miners make
    /// competing blocks, as a real network does.
    #[serde(default = "default_miners")]
    #[schemars(length(max = 256), inner(range(min = 0, max = 255)))]
    pub miners: Vec<i32>,
    /// Where the coinbase goes: a mainnet-format address (monerod's
    /// generateblocks asks for one even on regtest). Default: the address of
    /// the wallet monero's own functional tests use, whose seed is public, so
    /// that anyone can spend it on this private chain.
    #[serde(default = "default_block_address")]
    #[schemars(length(min = 95, max = 106))]
    pub address: String,
}

fn default_block_interval() -> String {
    "30s".into()
}

fn default_blocks_per_round() -> u32 {
    1
}

fn default_miners() -> Vec<i32> {
    vec![0]
}

/// The address of the wallet monero's functional tests use (its seed is public).
pub const PUBLIC_TEST_ADDRESS: &str = "42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm";

fn default_block_address() -> String {
    PUBLIC_TEST_ADDRESS.into()
}

/// The shape of a network's peer graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TopologyType {
    /// Every node a peer of every other. Default.
    #[default]
    FullMesh,
    /// Node i a peer of i-1 and i+1, the last of the first.
    Ring,
    /// Every node a peer of the hub only (`hub`, default 0).
    Star,
    /// Every node with `degree` peers, drawn at random from `seed`: the same
    /// seed gives the same graph. Always connected.
    RandomRegular,
    /// Exactly the pairs in `edges`.
    Edges,
}

/// Who is whose peer in a MoneroNetwork. Each edge makes the two nodes each
/// other's exclusive peers (`add-exclusive-node`), so a node reaches only its
/// neighbours, and blocks travel along the edges. Changing it rewires the
/// nodes (and so rolls them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'RandomRegular' || has(self.degree)").message("topology.degree is required with type RandomRegular").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new("self.type != 'Edges' || (has(self.edges) && size(self.edges) > 0)").message("topology.edges is required with type Edges").reason(Reason::FieldValueRequired))]
pub struct Topology {
    /// FullMesh (default), Ring, Star, RandomRegular or Edges.
    #[serde(default, rename = "type")]
    pub type_: TopologyType,
    /// Star: the index of the node every other is a peer of. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 255))]
    pub hub: Option<i32>,
    /// RandomRegular: peers per node. The number of nodes times the degree
    /// must be even, and the degree below the number of nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255))]
    pub degree: Option<i32>,
    /// RandomRegular: the seed the graph is drawn from. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 2_147_483_647))]
    pub seed: i64,
    /// Edges: pairs of node indices that are each other's peers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32640))]
    pub edges: Vec<[i32; 2]>,
}

/// The template of each node of a network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeTemplate {
    /// Labels and annotations for every node's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// The node settings, as in a MoneroNodeSet's spec (without replicas).
    #[serde(default)]
    pub spec: NetworkNodeSpec,
}

/// A MoneroNodeSet's node settings, with the network made immutable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.network) || (has(self.network) && self.network == oldSelf.network)").message("spec.template.spec.network is immutable once set").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new("!has(self.clearnet) || self.clearnet == 'Direct'").message("spec.template.spec.clearnet: a closed network's peers are cluster addresses that Tor cannot reach; only Direct").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new("!has(self.service) || !has(self.service.perReplica)").message("spec.template.spec.service.perReplica: a closed network's nodes are not served to the Internet; only a MoneroNodeSet has per-replica Services").reason(Reason::FieldValueForbidden))]
pub struct NetworkNodeSpec {
    /// The node settings.
    #[serde(flatten)]
    pub node: NodeSpec,
}

/// Labels and annotations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels added to each pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to each pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn default_network_replicas() -> i32 {
    2
}
