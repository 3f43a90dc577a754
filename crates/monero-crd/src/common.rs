//! Types shared by the three kinds: network, storage, service, pod overrides, status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Monero network a node joins. It decides the default ports, the storage
/// default and the network flag given to monerod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The main Monero network.
    #[default]
    Mainnet,
    /// The public test network for protocol changes (`--testnet`).
    Testnet,
    /// The public network for wallet and service testing (`--stagenet`).
    Stagenet,
    /// A private chain with no seed nodes (`--regtest`), for closed test networks.
    Regtest,
}

impl Network {
    /// Every network, in a stable order.
    pub const ALL: [Network; 4] = [
        Network::Mainnet,
        Network::Testnet,
        Network::Stagenet,
        Network::Regtest,
    ];

    /// The name used in the API and in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Stagenet => "stagenet",
            Network::Regtest => "regtest",
        }
    }

    /// The monerod flag that selects this network, if any (mainnet needs none).
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Network::Mainnet => None,
            Network::Testnet => Some("--testnet"),
            Network::Stagenet => Some("--stagenet"),
            Network::Regtest => Some("--regtest"),
        }
    }

    /// The network a monerod flag selects, so that `args: [--regtest]` (the
    /// proposal's MoneroNetwork example) means the same as `network: regtest`.
    pub fn from_flag(flag: &str) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.flag() == Some(flag))
    }

    /// monerod's default ports for this network. Regtest runs on mainnet's
    /// ports, as monerod itself does.
    pub fn ports(self) -> Ports {
        let base = match self {
            Network::Mainnet | Network::Regtest => 18080,
            Network::Testnet => 28080,
            Network::Stagenet => 38080,
        };
        Ports {
            p2p: base,
            rpc: base + 1,
            zmq: base + 2,
            tor_inbound: base + 3,
            zmq_pub: base + 4,
            i2p_inbound: base + 5,
            restricted_rpc: base + 9,
        }
    }
}

/// The ports one monerod listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// Peer-to-peer.
    pub p2p: u16,
    /// Unrestricted RPC, bound to the pod's loopback only.
    pub rpc: u16,
    /// ZMQ RPC, off unless asked for.
    pub zmq: u16,
    /// Inbound connections from Tor.
    pub tor_inbound: u16,
    /// ZMQ publisher (`--zmq-pub`), off unless asked for. Not monerod's own
    /// default (P2P + 3), which Tor inbound holds here.
    pub zmq_pub: u16,
    /// Inbound connections from I2P.
    pub i2p_inbound: u16,
    /// Restricted RPC, the one served to clients.
    pub restricted_rpc: u16,
}

/// What happens to the volumes (and, with Tor or I2P, the identity keys) of a
/// replica that goes away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RetentionPolicy {
    /// Keep it, so a later scale-up or a re-created resource finds its data.
    #[default]
    Retain,
    /// Delete it.
    Delete,
}

impl RetentionPolicy {
    /// The value Kubernetes uses in a StatefulSet's PVC retention policy.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionPolicy::Retain => "Retain",
            RetentionPolicy::Delete => "Delete",
        }
    }
}

/// What happens to a replica's data when the set scales down or is deleted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// On scale-down, for the replicas removed. Default Retain.
    #[serde(default)]
    pub when_scaled: RetentionPolicy,
    /// When the resource is deleted. Default Retain.
    #[serde(default)]
    pub when_deleted: RetentionPolicy,
}

/// The blockchain volume of each replica.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.size) || (has(self.size) && quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0)").message("storage.size may grow but not shrink").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("storage.storageClassName is immutable").reason(Reason::FieldValueForbidden))]
pub struct StorageSpec {
    /// Size of each replica's volume. The default depends on the network and on
    /// pruning (for example 350Gi for a full mainnet node, 2Gi for regtest). It
    /// may grow (when the storage class allows expansion) but never shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// Storage class of the volumes; the cluster's default class when unset.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// What happens to the volumes on scale-down and on deletion (kept by default).
    #[serde(default)]
    pub retention: Retention,
}

/// How the P2P and restricted RPC ports are exposed to clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster.
    #[default]
    ClusterIP,
    /// Also on a port of every node.
    NodePort,
    /// Also through the cloud's load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The client Service in front of the replicas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type for P2P and restricted RPC. Default ClusterIP.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations for the Service, for example a cloud load balancer's settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// One P2P Service per replica, so each public node is reachable on its
    /// own address and advertises it: through one shared Service every
    /// replica would announce the same address. MoneroNodeSet only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_replica: Option<PerReplicaService>,
}

/// How each replica's own P2P Service is exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PerReplicaType {
    /// On a port of every node: replica *i* on `nodePortBase + i`, which its
    /// monerod advertises (`--p2p-external-port`). With the Local traffic
    /// policy a peer that learned the node's address from the replica's own
    /// outgoing connections reaches that replica.
    NodePort,
    /// Through a cloud load balancer per replica, on the P2P port.
    LoadBalancer,
}

impl PerReplicaType {
    /// The Kubernetes name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            PerReplicaType::NodePort => "NodePort",
            PerReplicaType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Where a Service sends traffic that reaches a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TrafficPolicy {
    /// Only to a replica on that node, keeping the client's address (so
    /// monerod's per-address limits and bans see real peers). Default.
    #[default]
    Local,
    /// To the replica wherever it runs, through the node's address translation.
    Cluster,
}

impl TrafficPolicy {
    /// The Kubernetes name of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficPolicy::Local => "Local",
            TrafficPolicy::Cluster => "Cluster",
        }
    }
}

/// Each replica's own P2P Service, `<name>-p2p-<i>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'NodePort' || has(self.nodePortBase)").message("service.perReplica.nodePortBase is required with type NodePort: each replica advertises its own port, which must be known before its pod starts").reason(Reason::FieldValueRequired))]
pub struct PerReplicaService {
    /// NodePort or LoadBalancer.
    #[serde(rename = "type")]
    pub type_: PerReplicaType,
    /// NodePort: replica *i* listens on `nodePortBase + i` on every node (the
    /// range must lie in the cluster's node port range, 30000-32767 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub node_port_base: Option<i32>,
    /// Local (default) or Cluster.
    #[serde(default)]
    pub external_traffic_policy: TrafficPolicy,
    /// Annotations for each of these Services, for example a load balancer's settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Serving the node over an anonymity network (Tor or I2P).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnonymitySpec {
    /// Serve P2P over this network and relay transactions through it. Each
    /// replica gets its own identity (an onion address, an I2P destination),
    /// made once by the operator, kept in the Secret `<name>-identities` and
    /// shown in status; with Tor the restricted RPC is also served at one
    /// onion address shared by every replica.
    #[serde(default)]
    pub enabled: bool,
    /// Bring your own keys: a Secret in the namespace holding, for every
    /// replica, `<pod-name>.tor` (tor's hs_ed25519_secret_key file) or
    /// `<pod-name>.i2p` (an i2pd keys file), and optionally `rpc.tor`. The
    /// operator reads it, refuses a malformed key with a condition and an
    /// Event, and never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub keys_secret: Option<String>,
}

/// How monerod reaches clearnet peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Clearnet {
    /// Directly: P2P on the pod's address, reachable through the Service.
    #[default]
    Direct,
    /// Only through Tor (`--proxy` to the tor sidecar, P2P bound to the pod's
    /// loopback, port hidden): the node never opens a clearnet connection
    /// itself, and still syncs blocks (through Tor exits) and serves peers at
    /// its onion address. Needs `tor.enabled`. Not for a MoneroNetwork, whose
    /// peers are cluster addresses Tor cannot reach. There is no I2P-only
    /// mode: monerod syncs blocks from clearnet peers, and I2P has no exits.
    ThroughTor,
}

/// The Prometheus exporter sidecar (monero-exporter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExporterSpec {
    /// Run the exporter next to monerod (or xmrig). It also serves the
    /// readiness probe. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Exporter image; the operator's default (its `--exporter-image` flag) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Resources of the exporter container. Default: requests of 10m CPU and
    /// 32Mi memory, limit of 64Mi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// A PodMonitor for the Prometheus Operator, selecting these pods' metrics port.
    #[serde(default)]
    pub pod_monitor: PodMonitorSpec,
}

impl Default for ExporterSpec {
    fn default() -> Self {
        ExporterSpec {
            enabled: true,
            image: None,
            resources: None,
            pod_monitor: PodMonitorSpec::default(),
        }
    }
}

/// The Prometheus Operator's PodMonitor for a set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    /// Create it. Only when the PodMonitor CRD is installed in the cluster;
    /// otherwise the `PodMonitor` condition says why none was made.
    #[serde(default)]
    pub enabled: bool,
    /// Labels on the PodMonitor, for a Prometheus whose podMonitorSelector wants them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Scrape interval, such as 30s; Prometheus's own when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub interval: Option<String>,
}

/// When a replica counts as ready (and so receives Service traffic and counts
/// for the PodDisruptionBudget).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Readiness {
    /// RPC answers and monerod reports itself synchronized (the exporter's
    /// `/ready`). Clients only reach nodes that know the chain tip.
    #[default]
    Synchronized,
    /// RPC answers, synchronized or not.
    RpcAnswers,
}

/// Pod-level settings passed through to every replica's pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Extra labels on each pod (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on each pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Node labels a pod's node must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Secrets used to pull private images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Seconds Kubernetes waits after SIGTERM before killing the main process.
    /// Default 300 for monerod (time to close its database) and 30 for xmrig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub termination_grace_period_seconds: Option<i64>,
}

/// A key in a Secret in the resource's namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// What a user sees of one replica.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// Pod name.
    pub name: String,
    /// The pod is Ready.
    #[serde(default)]
    pub ready: bool,
    /// Blockchain height, from monerod's restricted RPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Height monerod believes the network is at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_height: Option<u64>,
    /// monerod reports itself synchronized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronized: Option<bool>,
    /// Inbound peer connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_connections: Option<u64>,
    /// Outbound peer connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing_connections: Option<u64>,
    /// monerod's (or xmrig's) version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The image of the pod's main container (monerod or xmrig).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The pod runs the latest template (the StatefulSet's update revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<bool>,
    /// The address peers on the Internet reach this replica's P2P port at,
    /// with `service.perReplica`, once known: the load balancer's address, or
    /// the address of the node the replica runs on with its node port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_address: Option<String>,
    /// Networks: the nodes this node is connected to, as it reports them, by
    /// index in ranges (`0-2,5`), so that a 256-node mesh fits in the status;
    /// an address that is no node of the network is listed as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<String>,
    /// Onion address, when served over Tor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onion_address: Option<String>,
    /// I2P address, when served over I2P.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i2p_address: Option<String>,
    /// Miners: hashes per second, xmrig's 60 s average (its 10 s one until
    /// a minute has passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashrate: Option<u64>,
    /// Miners: shares the pool accepted since xmrig started (solo mining:
    /// blocks monerod accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares_accepted: Option<u64>,
    /// Miners: shares the pool rejected since xmrig started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares_rejected: Option<u64>,
    /// Networks: chain reorganizations the node went through since its lab
    /// sidecar started (after a partition heals, the side whose chain lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorganizations: Option<u64>,
    /// Networks: how many blocks the last reorganization replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reorganization_depth: Option<u64>,
    /// Why the replica could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed state of a MoneroNodeSet, MoneroNetwork or MoneroMiningNodeSet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods that exist.
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are Ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods on the latest template (the StatefulSet's update revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// Label selector of the pods, for the scale subresource (HorizontalPodAutoscaler).
    #[serde(default)]
    pub selector: String,
    /// Highest blockchain height among the replicas (absent for miners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// The onion address serving the restricted RPC of every replica, when
    /// served over Tor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_onion_address: Option<String>,
    /// Replicas that report themselves synchronized, as "n/m" (absent for miners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronized: Option<String>,
    /// Miners: hashes per second of every replica that reports one, added up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashrate: Option<u64>,
    /// Ready, Progressing, Degraded, and Synced (nodes) or Connected (networks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// One entry per replica.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<ReplicaStatus>,
    /// The rollout of the latest pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    /// The monerod version the pods' flags are made for, and where the
    /// operator learned it ("0.18.4.0 from the image tag"), or why it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monerod_version: Option<String>,
    /// A network's wallets (`spec.wallets`), as their lab sidecar reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wallets: Vec<WalletStatus>,
}

/// One wallet of a network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletStatus {
    /// The wallet's index: its RPC is port 18083 plus this.
    pub index: i32,
    /// Its main address, once the wallet is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Balance in atomic units (1 XMR = 10^12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<u64>,
    /// The part of the balance that can be spent now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlocked_balance: Option<u64>,
    /// Transfers sent since the sidecar started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfers: Option<u64>,
    /// Why the wallet could not be read or used, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a change to the pods' template (image, args, config, login, peers)
/// reaches the replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UpdateStrategyType {
    /// One replica at a time, highest ordinal first; the next one moves only
    /// once the last one is Ready, synchronized and within `maxHeightLag`
    /// blocks of the highest replica. Default with more than one replica.
    SyncGated,
    /// The StatefulSet's own rolling update: the next replica moves once the
    /// last one is Ready. Default with one replica.
    RollingUpdate,
    /// Nothing moves until a pod is deleted (by hand); it comes back updated.
    OnDelete,
}

/// How the replicas of a set move to a new pod template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    /// SyncGated, RollingUpdate or OnDelete. When unset, SyncGated with more
    /// than one replica and RollingUpdate with one (gating a lone replica
    /// would have nothing to compare it with).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<UpdateStrategyType>,
    /// SyncGated: how many blocks below the highest replica an updated
    /// replica may be and still let the rollout go on. Default 2.
    #[serde(default = "default_max_height_lag")]
    #[schemars(range(max = 1_000_000))]
    pub max_height_lag: u32,
    /// SyncGated: how long one replica may take to get there (a new monerod
    /// may migrate its database first) before the rollout halts, leaving the
    /// other replicas on the old template. A number with s, m or h. Default 6h.
    #[serde(default = "default_progress_deadline")]
    #[schemars(regex(pattern = r"^[0-9]{1,7}(s|m|h)$"))]
    pub progress_deadline: String,
}

impl Default for UpdateStrategy {
    fn default() -> Self {
        UpdateStrategy {
            type_: None,
            max_height_lag: default_max_height_lag(),
            progress_deadline: default_progress_deadline(),
        }
    }
}

impl UpdateStrategy {
    /// The strategy in force for a set of `replicas`.
    pub fn effective(&self, replicas: i32) -> UpdateStrategyType {
        self.type_.unwrap_or(if replicas > 1 {
            UpdateStrategyType::SyncGated
        } else {
            UpdateStrategyType::RollingUpdate
        })
    }

    /// `progressDeadline` in seconds; the schema's pattern makes it parse,
    /// so a value that slipped past it (an old object) counts as the default.
    pub fn progress_deadline_seconds(&self) -> u64 {
        parse_duration(&self.progress_deadline)
            .or_else(|| parse_duration(&default_progress_deadline()))
            .unwrap_or(6 * 3600)
    }
}

/// Seconds in `<n>s`, `<n>m` or `<n>h`.
pub fn parse_duration(s: &str) -> Option<u64> {
    let unit = match s.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return None,
    };
    let n: u64 = s.get(..s.len() - 1)?.parse().ok()?;
    n.checked_mul(unit)
}

/// The default `stallTimeout`.
pub fn default_stall_timeout() -> String {
    "30m".into()
}

fn default_max_height_lag() -> u32 {
    2
}

fn default_progress_deadline() -> String {
    "6h".into()
}

/// Where the rollout of a new pod template stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The StatefulSet revision the not yet updated replicas run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// The StatefulSet revision of the latest template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// SyncGated: replicas with this ordinal or above may run the latest template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// SyncGated: the replica the rollout waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// SyncGated: since when it waits on that replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<Time>,
    /// SyncGated: what that replica lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// SyncGated: the replica missed `progressDeadline`; nothing moves until
    /// it gets there or the template changes (reverting it resumes).
    #[serde(default)]
    pub halted: bool,
}

/// Settings of monerod shared by MoneroNodeSet and MoneroNetwork.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonerodSpec {
    /// monerod image; the operator's default (its `--monerod-image` flag) when
    /// unset. Changing it rolls the pods one by one and keeps their data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy. Default IfNotPresent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// Extra monerod flags, appended in order after the operator's. A flag
    /// replaces the operator's flag of the same name; `--flag value` pairs stay
    /// together. A network flag (`--regtest`, ...) sets the network when
    /// `network` is unset. At most 128 flags of 1024 characters each, so
    /// that the StatefulSet that carries them stays far below the API
    /// server's size limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128), inner(length(max = 1024)))]
    pub args: Vec<String>,
    /// CPU and memory. Default: requests only (no limits), sized by network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Keep a pruned blockchain (`--prune-blockchain`), about a third of the size.
    #[serde(default)]
    pub pruning: bool,
    /// RPC settings.
    #[serde(default)]
    pub rpc: RpcSpec,
    /// Serve ZMQ RPC on the pod (port derived from the network).
    #[serde(default)]
    pub zmq: bool,
    /// Publish new blocks and transactions over ZMQ (`--zmq-pub`), for
    /// P2Pool or a light-wallet server: Off (default), Loopback (the pod's own
    /// loopback, for a container in the pod) or Cluster (the pod's address and
    /// the headless Service, never the client Service). Port: the network's
    /// P2P port + 4 (18084 on mainnet).
    #[serde(default)]
    pub zmq_pub: ZmqPub,
    /// Peers monerod refuses (`--ban-list`): one IP address or subnet per
    /// line, from a key of a ConfigMap in the namespace (a community list,
    /// for example). A change to it rolls out like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_list: Option<ConfigMapKeyRef>,
    /// The monerod version the image runs, such as 0.18.4.0, when its tag
    /// does not say it (`latest`, a digest). It decides which flags the
    /// operator gives (each release accepts a different set); when neither
    /// says, only flags every version since 0.17.2 accepts are given, and a
    /// feature that needs a newer monerod is refused until this is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^v?[0-9]{1,3}(\.[0-9]{1,4}){1,3}$"))]
    pub version: Option<String>,
    /// monerod log level, 0 (quiet) to 4 (trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4))]
    pub log_level: Option<u8>,
}

/// Image pull policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the node lacks the image.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes name.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// monerod's RPC. The unrestricted RPC is bound to the pod's loopback only (for
/// the exporter); the restricted RPC is the one served through the Service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RpcSpec {
    /// Serve the restricted RPC through the client Service. Default true.
    #[serde(default = "default_true")]
    pub public: bool,
    /// Require HTTP digest login on RPC (`rpc-login`, given to monerod through a
    /// config file in a Secret, never in its arguments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<RpcLogin>,
    /// Let monerod ban a client address after repeated RPC errors. Default
    /// false (`--disable-rpc-ban`): behind a Service, an ingress or Tor,
    /// many clients share one address, and one bad client would ban them all.
    #[serde(default)]
    pub ban_on_errors: bool,
    /// Connection limits of monerod 0.18.4 and newer (older ones have none).
    #[serde(default)]
    pub limits: RpcLimits,
}

impl Default for RpcSpec {
    fn default() -> Self {
        RpcSpec {
            public: true,
            login: None,
            ban_on_errors: false,
            limits: RpcLimits::default(),
        }
    }
}

/// RPC connection limits (monerod 0.18.4 and newer).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RpcLimits {
    /// Connections in all (`--rpc-max-connections`); monerod's default is 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100_000))]
    pub max_connections: Option<u32>,
    /// Connections from one public address (`--rpc-max-connections-per-public-ip`);
    /// monerod's default is 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100_000))]
    pub per_public_ip: Option<u32>,
    /// Connections from one private or loopback address
    /// (`--rpc-max-connections-per-private-ip`). Default: as many as
    /// `maxConnections` (100). monerod's own default, 25, counts every client
    /// behind kube-proxy's address translation, an ingress controller or the
    /// Tor and I2P sidecars (which connect from the pod's loopback) as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100_000))]
    pub per_private_ip: Option<u32>,
}

/// Where ZMQ publishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ZmqPub {
    /// Nothing is published.
    #[default]
    Off,
    /// On the pod's loopback only.
    Loopback,
    /// On the pod's address, reachable in the cluster through the headless Service.
    Cluster,
}

/// A key in a ConfigMap in the resource's namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the ConfigMap.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Where the RPC login lives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RpcLogin {
    /// Secret in the same namespace holding the user name and password.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of the user name in the Secret. Default "username".
    #[serde(default = "default_username_key")]
    pub username_key: String,
    /// Key of the password in the Secret. Default "password".
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

pub(crate) fn default_true() -> bool {
    true
}

fn default_username_key() -> String {
    "username".into()
}

fn default_password_key() -> String {
    "password".into()
}

pub(crate) fn default_topology_key() -> String {
    "kubernetes.io/hostname".into()
}
