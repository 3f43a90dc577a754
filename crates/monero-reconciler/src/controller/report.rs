//! The status step: list the pods, poll them (or reuse a recent poll), and
//! write the status only when it differs from the stored one.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use super::identities::Identities;
use super::probe::ProbeTarget;
use super::status::{self, Blocked, Extra, Observed};
use super::{Managed, State, caches, object_key};
use crate::build::{self, Desired, MANAGER};
use crate::error::Error;
use crate::rollout::{Decision, REVISION_LABEL};
use monero_crd::RolloutStatus;

/// A pod's row in the status: its name, whether it is Ready, what polling found.
type Row = (String, bool, Option<Observed>);

/// Each pod's main image and StatefulSet revision, by pod name.
type Versions = BTreeMap<String, (Option<String>, Option<String>)>;

/// What the status of an object that was built is made from.
pub(super) struct Report<'a> {
    pub desired: &'a Desired,
    pub ctx: &'a build::Context,
    pub ids: &'a Identities,
    pub extra: Vec<Extra>,
    pub blocked: Option<Blocked>,
    /// The rollout gate's decision, for kinds with an update strategy.
    pub rollout: Option<&'a Decision>,
}

/// Everything but the pods' observations, which `write` adds.
#[derive(Default)]
pub(super) struct Parts {
    pub selector: String,
    pub pods: Vec<Row>,
    pub blocked: Option<Blocked>,
    pub ids: Identities,
    pub extra: Vec<Extra>,
    pub versions: Versions,
    pub rollout: Option<RolloutStatus>,
    pub updated: Option<i32>,
    pub p2p: BTreeMap<String, String>,
    pub peers: BTreeMap<String, Vec<String>>,
    pub expected_peers: BTreeMap<String, Vec<String>>,
    pub monerod_version: Option<String>,
    pub wallets: Option<status::WalletsInput>,
}

/// Observes the pods and writes the status. Returns whether it wrote.
pub(super) async fn write<K: Managed>(
    obj: &K,
    state: &State,
    report: Report<'_>,
) -> Result<bool, Error> {
    let seen = observe(obj, state, report.desired, report.ctx).await?;
    let parts = Parts {
        p2p: seen.p2p,
        peers: seen.peers,
        expected_peers: report.desired.peers.clone(),
        monerod_version: obj.monerod_version(report.ctx),
        selector: report.desired.selector.clone(),
        pods: seen.rows,
        blocked: report.blocked,
        ids: report.ids.clone(),
        extra: report.extra,
        versions: seen.versions,
        rollout: report.rollout.map(|d| d.status.clone()),
        updated: report.rollout.and_then(|d| d.updated),
        wallets: seen.wallets,
    };
    write_status(obj, state, parts).await
}

/// Lists the pods (from the pod cache when in use) and reads each one.
/// monerod replicas are always polled; miners only through their exporter.
/// A cached pod list may lag by a moment: the status then catches up at the
/// next reconcile, which the pod's own change to the StatefulSet's status
/// triggers anyway.
async fn observe<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
    ctx: &build::Context,
) -> Result<Seen, Error> {
    let items = list_pods(obj, state, &desired.selector).await?;
    let p2p = p2p_addresses(obj, state, desired, &items).await?;
    let key = object_key(obj);
    let (since, recent) = recent(state, &key);
    let polled = K::POLLED || obj.exporter();
    let wallet_pods = match obj.wallets() {
        Some(_) => {
            let owner = build::Owner::of(K::KIND, obj.meta());
            list_pods(obj, state, &owner.selector_string(build::WALLET_WORKLOAD)).await?
        }
        None => Vec::new(),
    };
    let all: Vec<(&Pod, bool)> = items
        .iter()
        .map(|p| (p, false))
        .chain(wallet_pods.iter().map(|p| (p, true)))
        .collect();
    let probes = all.iter().map(|(p, wallets)| {
        let target = pod_ip(p).map(|ip| ProbeTarget {
            wallets: *wallets,
            ..probe_target(obj, desired, ctx, ip)
        });
        observe_pod(state, polled, target, recent.get(&p.name_any()).cloned())
    });
    let mut results = futures::future::join_all(probes).await;
    let pods: Vec<&Pod> = all.iter().map(|(p, _)| *p).collect();
    remember(state, key, since, &pods, &results);
    let wallet_results = results.split_off(items.len());
    let wallets = obj
        .wallets()
        .map(|(count, funded)| wallets_input(obj, count, funded, wallet_results));
    let versions = items.iter().map(|p| (p.name_any(), version(p))).collect();
    let rows: Vec<Row> = items
        .iter()
        .zip(results)
        .map(|(p, o)| (p.name_any(), status::pod_ready(p), o))
        .collect();
    let peers = peer_names(obj, state, desired, &items, &rows).await?;
    Ok(Seen {
        rows,
        versions,
        p2p,
        peers,
        wallets,
    })
}

/// What the wallets pod's sidecar reported, or why nothing was.
fn wallets_input<K: Managed>(
    obj: &K,
    count: i32,
    funded_by_blocks: bool,
    observed: Vec<Option<Observed>>,
) -> status::WalletsInput {
    let pod = format!("{}-0", build::wallets_name(&obj.name_any()));
    let o = observed.into_iter().flatten().next();
    // What the status last held, while the pod cannot be read: the addresses
    // do not change, and the miners keep mining to them.
    let last = || obj.status().map(|s| s.wallets.clone()).unwrap_or_default();
    let (seen, message) = match o {
        None => (last(), Some(format!("pod {pod} does not exist yet"))),
        Some(Observed {
            wallets: Some(w), ..
        }) => (w, None),
        Some(o) => (
            last(),
            Some(format!(
                "pod {pod}: {}",
                o.message.unwrap_or_else(|| "no report".into())
            )),
        ),
    };
    status::WalletsInput {
        count,
        funded_by_blocks,
        seen,
        message,
    }
}

/// What observing the pods found.
struct Seen {
    rows: Vec<Row>,
    versions: Versions,
    p2p: BTreeMap<String, String>,
    peers: BTreeMap<String, Vec<String>>,
    wallets: Option<status::WalletsInput>,
}

/// Each network node's connections as node names: an incoming connection
/// comes from a pod's IP, an outgoing one goes to a node Service's cluster
/// IP (the name in `add-exclusive-node`). An address that is neither stays
/// as it is.
async fn peer_names<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
    pods: &[Pod],
    rows: &[Row],
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    if desired.peers.is_empty()
        || rows
            .iter()
            .all(|(_, _, o)| o.as_ref().and_then(|o| o.peer_ips.as_ref()).is_none())
    {
        return Ok(BTreeMap::new());
    }
    let mut by_ip: BTreeMap<String, String> = pods
        .iter()
        .filter_map(|p| Some((pod_ip(p)?, p.name_any())))
        .collect();
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    for node in desired.peers.keys() {
        let svc = match state.caches() {
            Some(c) => caches::get(&c.services, &ns, node).map(|s| s.as_ref().clone()),
            None => Api::<Service>::namespaced(state.client.clone(), &ns)
                .get_opt(node)
                .await
                .map_err(|e| Error::kube(format!("reading Service {ns}/{node}"), e))?,
        };
        if let Some(ip) = svc.and_then(|s| s.spec?.cluster_ip) {
            by_ip.insert(ip, node.clone());
        }
    }
    Ok(rows
        .iter()
        .filter_map(|(name, _, o)| {
            let ips = o.as_ref()?.peer_ips.as_ref()?;
            let mut names: Vec<String> = ips
                .iter()
                .map(|ip| by_ip.get(ip).cloned().unwrap_or_else(|| ip.clone()))
                .collect();
            names.sort();
            names.dedup();
            Some((name.clone(), names))
        })
        .collect())
}

/// Each replica's public P2P address, for a set with per-replica Services.
/// A load balancer's address is read from the live Service (the cache when
/// in use).
async fn p2p_addresses<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
    pods: &[Pod],
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    if obj
        .node()
        .and_then(|n| n.service.per_replica.as_ref())
        .is_none()
    {
        return Ok(out);
    }
    let owner = build::Owner::of(K::KIND, obj.meta());
    let ns = owner.namespace.clone();
    for pod in pods {
        let Some(i) = crate::rollout::ordinal(&pod.name_any()) else {
            continue;
        };
        let name = build::per_replica_service_name(&owner, i);
        let Some(want) = desired.children.iter().find_map(|c| match c {
            build::Child::Service(s) if s.metadata.name.as_deref() == Some(name.as_str()) => {
                Some(s.as_ref())
            }
            _ => None,
        }) else {
            continue;
        };
        let live = match state.caches() {
            Some(c) => caches::get(&c.services, &ns, &name).map(|s| s.as_ref().clone()),
            None => Api::<Service>::namespaced(state.client.clone(), &ns)
                .get_opt(&name)
                .await
                .map_err(|e| Error::kube(format!("reading Service {ns}/{name}"), e))?,
        };
        let host = pod.status.as_ref().and_then(|s| s.host_ip.as_deref());
        if let Some(a) = status::p2p_address(want, live.as_ref(), host) {
            out.insert(pod.name_any(), a);
        }
    }
    Ok(out)
}

/// A pod's main image and StatefulSet revision.
fn version(pod: &Pod) -> (Option<String>, Option<String>) {
    let image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    (image, pod.labels().get(REVISION_LABEL).cloned())
}

/// The object's pods, by name, from the pod cache when in use.
pub(super) async fn list_pods<K: Managed>(
    obj: &K,
    state: &State,
    selector: &str,
) -> Result<Vec<Pod>, Error> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let mut items: Vec<Pod> = match state.caches() {
        Some(c) => caches::select(&c.pods, &ns, selector)
            .iter()
            .map(|p| p.as_ref().clone())
            .collect(),
        None => {
            let pods: Api<Pod> = Api::namespaced(state.client.clone(), &ns);
            pods.list(&ListParams::default().labels(selector))
                .await
                .map_err(|e| Error::kube(format!("listing pods of {}", object_key(obj)), e))?
                .items
        }
    };
    items.sort_by_key(|p| p.name_any());
    Ok(items)
}

/// Where and how to poll one of the object's pods.
pub(super) fn probe_target<K: Managed>(
    obj: &K,
    desired: &Desired,
    ctx: &build::Context,
    ip: String,
) -> ProbeTarget {
    ProbeTarget {
        ip,
        rpc_port: rpc_port(desired),
        exporter: obj.exporter(),
        login: obj.rpc_login(ctx),
        xmrig: K::MINERS,
        peers: K::PEERED,
        wallets: false,
    }
}

/// What the last poll of the object's pods found, however old.
pub(super) fn last_poll(state: &State, key: &str) -> HashMap<String, Observed> {
    state
        .observed
        .lock()
        .ok()
        .and_then(|m| m.get(key).map(|(_, o)| o.clone()))
        .unwrap_or_default()
}

pub(super) fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref().and_then(|s| s.pod_ip.clone())
}

/// What the last poll found, when it is recent enough to reuse: a status
/// write triggers a reconcile, and polling again there would find moving
/// values (heights, hashrates), write again, and so on for ever.
fn recent(state: &State, key: &str) -> (Instant, HashMap<String, Observed>) {
    let max_age = state.config.status_interval / 2;
    state
        .observed
        .lock()
        .ok()
        .and_then(|m| m.get(key).cloned())
        .filter(|(t, _)| t.elapsed() < max_age)
        .unwrap_or_else(|| (Instant::now(), HashMap::new()))
}

async fn observe_pod(
    state: &State,
    polled: bool,
    target: Option<ProbeTarget>,
    recent: Option<Observed>,
) -> Option<Observed> {
    if !polled {
        return None;
    }
    match (target, recent) {
        (Some(_), Some(recent)) => Some(recent),
        (Some(t), None) => Some(state.probe.observe(t).await),
        (None, _) => Some(Observed {
            message: Some("pod has no IP yet".into()),
            ..Observed::default()
        }),
    }
}

/// Keeps what pods with an IP reported, for the next reconcile to reuse.
fn remember(
    state: &State,
    key: String,
    since: Instant,
    pods: &[&Pod],
    results: &[Option<Observed>],
) {
    let keep = pods
        .iter()
        .zip(results)
        .filter(|(p, _)| pod_ip(p).is_some())
        .filter_map(|(p, o)| Some((p.name_any(), o.clone()?)))
        .collect();
    if let Ok(mut m) = state.observed.lock() {
        // Forget objects not seen for a while (deleted ones).
        m.retain(|_, (t, _)| t.elapsed() < state.config.status_interval * 10);
        m.insert(key, (since, keep));
    }
}

/// The restricted RPC port the pods serve, where they are polled.
fn rpc_port(desired: &Desired) -> u16 {
    desired
        .stateful_set()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some("rpc")))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(18089)
}

/// Writes the status when it differs from the stored one. Returns whether it wrote.
pub(super) async fn write_status<K: Managed>(
    obj: &K,
    state: &State,
    parts: Parts,
) -> Result<bool, Error> {
    let new = status::compute(status::StatusInput {
        previous: obj.status(),
        generation: obj.meta().generation,
        desired: obj.desired_replicas(),
        selector: parts.selector,
        pods: parts.pods,
        blocked: parts.blocked,
        network: K::PEERED,
        miners: K::MINERS,
        addresses: parts.ids.addresses,
        rpc_onion: parts.ids.rpc_onion,
        extra: parts.extra,
        versions: parts.versions,
        rollout: parts.rollout,
        updated: parts.updated,
        p2p: parts.p2p,
        peers: parts.peers,
        expected_peers: parts.expected_peers,
        ready_at_height: obj.ready_at_height(),
        monerod_version: parts.monerod_version,
        wallets: parts.wallets,
        now: Timestamp::now(),
    });
    if obj.status() == Some(&new) {
        return Ok(false);
    }
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let api: Api<K> = Api::namespaced(state.client.clone(), &ns);
    let patch = json!({
        "apiVersion": format!("{}/{}", monero_crd::GROUP, monero_crd::VERSION),
        "kind": K::KIND,
        "status": new,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::kube(format!("writing status of {}", object_key(obj)), e))?;
    Ok(true)
}
