//! The Services of a monerod workload: the StatefulSet's headless Service,
//! the client Service, a network node's own Service, and a public node's
//! per-replica P2P Service.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use monero_crd::{Clearnet, PerReplicaService, PerReplicaType, ZmqPub};

use super::node::{MONEROD_WORKLOAD, NodeKind, Spec, pod_name};
use super::{Child, Owner};

/// The label the StatefulSet controller puts on each pod: its name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";

/// Every Service of the workload, in the order they are applied.
pub(super) fn services(spec: &Spec<'_>, headless_name: &str) -> Vec<Child> {
    let mut out = vec![headless_service(spec, headless_name)];
    // A node reachable only through Tor, with private RPC, has nothing to serve here.
    out.extend(client_service(spec));
    if spec.kind == NodeKind::Network {
        out.extend((0..spec.replicas).map(|i| node_service(spec, i)));
    }
    if let Some(per) = &spec.node.service.per_replica {
        out.extend((0..spec.replicas).map(|i| per_replica_service(spec, per, i)));
    }
    out.into_iter()
        .map(|s| Child::Service(Box::new(s)))
        .collect()
}

/// The name of replica `i`'s own P2P Service.
pub fn per_replica_service_name(owner: &Owner, i: i32) -> String {
    format!("{}-p2p-{i}", owner.name)
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
/// are not ready yet, since a syncing node still needs peers. The ZMQ
/// publisher, when served in the cluster, is reached here and nowhere else.
fn headless_service(spec: &Spec<'_>, name: &str) -> Service {
    let p = &spec.ports;
    let mut ports = vec![
        service_port("p2p", p.p2p),
        service_port("rpc", p.restricted_rpc),
    ];
    if spec.node.monerod.zmq_pub == ZmqPub::Cluster {
        ports.push(service_port("zmq-pub", p.zmq_pub));
    }
    Service {
        metadata: spec.owner.child_meta(name, MONEROD_WORKLOAD),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(spec.owner.selector_labels(MONEROD_WORKLOAD)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Service clients use: P2P, and the restricted RPC unless it is private.
fn client_service(spec: &Spec<'_>) -> Option<Service> {
    let node = spec.node;
    let mut meta = spec.owner.child_meta(&spec.owner.name, MONEROD_WORKLOAD);
    if !node.service.annotations.is_empty() {
        meta.annotations = Some(node.service.annotations.clone());
    }
    let mut sp = Vec::new();
    if node.clearnet == Clearnet::Direct {
        sp.push(service_port("p2p", spec.ports.p2p));
    }
    if node.monerod.rpc.public {
        sp.push(service_port("rpc", spec.ports.restricted_rpc));
    }
    if sp.is_empty() {
        return None;
    }
    Some(Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some(node.service.type_.as_str().into()),
            selector: Some(spec.owner.selector_labels(MONEROD_WORKLOAD)),
            ports: Some(sp),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// One network node's own Service: a name that resolves before the pod exists
/// and an address that outlives it.
fn node_service(spec: &Spec<'_>, i: i32) -> Service {
    let name = pod_name(spec.owner, i);
    let mut selector = spec.owner.selector_labels(MONEROD_WORKLOAD);
    selector.insert(POD_NAME_LABEL.into(), name.clone());
    Service {
        metadata: spec.owner.child_meta(&name, MONEROD_WORKLOAD),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector),
            ports: Some(vec![
                service_port("p2p", spec.ports.p2p),
                service_port("rpc", spec.ports.restricted_rpc),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Replica `i`'s own P2P Service, selecting that pod only. A syncing
/// (not Ready) node still serves peers, so its address is published.
fn per_replica_service(spec: &Spec<'_>, per: &PerReplicaService, i: i32) -> Service {
    let mut selector = spec.owner.selector_labels(MONEROD_WORKLOAD);
    selector.insert(POD_NAME_LABEL.into(), pod_name(spec.owner, i));
    let mut port = service_port("p2p", spec.ports.p2p);
    if per.type_ == PerReplicaType::NodePort {
        port.node_port = per.node_port_base.map(|base| base + i);
    }
    let mut meta = spec
        .owner
        .child_meta(per_replica_service_name(spec.owner, i), MONEROD_WORKLOAD);
    if !per.annotations.is_empty() {
        meta.annotations = Some(per.annotations.clone());
    }
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some(per.type_.as_str().into()),
            external_traffic_policy: Some(per.external_traffic_policy.as_str().into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector),
            ports: Some(vec![port]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
