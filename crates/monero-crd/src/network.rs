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
    /// What every node looks like.
    #[serde(default)]
    pub template: NodeTemplate,
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
