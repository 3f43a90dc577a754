//! The controllers: for each custom resource, a pipeline of small steps:
//! read what it refers to, build the desired objects (pure), apply what
//! differs with server-side apply, remove what is no longer desired, then
//! write status only when it changed.

pub mod apply;
pub mod identities;
pub mod leader;
pub mod metrics;
pub mod probe;
pub mod status;
pub mod xmrig_api;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource, ResourceExt};
use monero_crd::{MoneroMiningNodeSet, MoneroNetwork, MoneroNodeSet, SetStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::build::{self, Child, Desired, MANAGER, Owner};
use crate::error::{Error, InvalidSpec};
use probe::{Probe, ProbeTarget};

/// Settings of the controllers.
#[derive(Clone, Debug)]
pub struct Config {
    /// Images and cluster domain for the builders.
    pub build: build::Context,
    /// How often status is refreshed while replicas exist.
    pub status_interval: Duration,
    /// How long to wait before looking again at an object that is fine.
    pub idle_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            build: build::Context::new(build::Images::default()),
            status_interval: Duration::from_secs(30),
            idle_interval: Duration::from_secs(300),
        }
    }
}

/// What every reconcile shares.
pub struct State {
    client: Client,
    config: Config,
    metrics: metrics::Metrics,
    probe: Arc<dyn Probe>,
    /// One recorder for the process, so repeated Events are counted as a
    /// series instead of piling up as new objects.
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
    /// What each object's pods reported, and when. A status write is itself a
    /// change the controller reacts to, and hashrates or heights differ at every
    /// poll: without this the write, the reconcile it triggers and the next
    /// poll would chase each other. A reconcile within half a status interval
    /// of the last poll reuses its findings, so its status matches and is not
    /// written again.
    observed: Mutex<HashMap<String, Polled>>,
}

/// When an object's pods were polled, and what each reported, by pod name.
type Polled = (Instant, HashMap<String, status::Observed>);

impl Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Shared state for the controllers.
    pub fn new(
        client: Client,
        config: Config,
        metrics: metrics::Metrics,
        probe: Arc<dyn Probe>,
        instance: String,
    ) -> Arc<State> {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: Some(instance),
            },
        );
        Arc::new(State {
            client,
            config,
            metrics,
            probe,
            recorder,
            failures: Mutex::new(HashMap::new()),
            observed: Mutex::new(HashMap::new()),
        })
    }

    /// The metrics the reconciles update.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }
}

/// What the pipeline needs to know about a kind.
pub trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The kind's name.
    const KIND: &'static str;
    /// Whether replicas run monerod and are polled over RPC.
    const POLLED: bool;
    /// The stored status.
    fn status(&self) -> Option<&SetStatus>;
    /// `spec.replicas`.
    fn desired_replicas(&self) -> i32;
    /// Names of user Secrets the builder reads: for monerod kinds, the RPC login's.
    fn referenced_secrets(&self) -> Vec<String> {
        self.node()
            .and_then(|n| n.monerod.rpc.login.as_ref())
            .map(|l| vec![l.secret_name.clone()])
            .unwrap_or_default()
    }
    /// Whether the builder needs the namespace's MoneroNodeSets.
    fn needs_node_sets(&self) -> bool {
        false
    }
    /// Runs the builder.
    fn build(&self, ctx: &build::Context) -> Result<Desired, InvalidSpec>;
    /// The RPC login pods are polled with, when the spec sets one.
    fn rpc_login(&self, ctx: &build::Context) -> Option<(String, String)> {
        let l = self.node()?.monerod.rpc.login.as_ref()?;
        let u = ctx.secret_value(&l.secret_name, &l.username_key).ok()?;
        let p = ctx.secret_value(&l.secret_name, &l.password_key).ok()?;
        Some((u, p))
    }
    /// Whether the exporter sidecar runs.
    fn exporter(&self) -> bool {
        self.node().is_some_and(|n| n.exporter.enabled)
    }
    /// The node settings, for kinds that run monerod.
    fn node(&self) -> Option<&monero_crd::NodeSpec> {
        None
    }
}

impl Managed for MoneroNodeSet {
    const KIND: &'static str = "MoneroNodeSet";
    const POLLED: bool = true;
    fn status(&self) -> Option<&SetStatus> {
        self.status.as_ref()
    }
    fn desired_replicas(&self) -> i32 {
        self.spec.replicas
    }
    fn build(&self, ctx: &build::Context) -> Result<Desired, InvalidSpec> {
        build::node_set(self, ctx)
    }
    fn node(&self) -> Option<&monero_crd::NodeSpec> {
        Some(&self.spec.node)
    }
}

impl Managed for MoneroNetwork {
    const KIND: &'static str = "MoneroNetwork";
    const POLLED: bool = true;
    fn status(&self) -> Option<&SetStatus> {
        self.status.as_ref()
    }
    fn desired_replicas(&self) -> i32 {
        self.spec.replicas
    }
    fn build(&self, ctx: &build::Context) -> Result<Desired, InvalidSpec> {
        build::network(self, ctx)
    }
    fn node(&self) -> Option<&monero_crd::NodeSpec> {
        Some(&self.spec.template.spec.node)
    }
}

impl Managed for MoneroMiningNodeSet {
    const KIND: &'static str = "MoneroMiningNodeSet";
    const POLLED: bool = false;
    fn status(&self) -> Option<&SetStatus> {
        self.status.as_ref()
    }
    fn desired_replicas(&self) -> i32 {
        self.spec.replicas
    }
    fn referenced_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.spec.xmrig.config.iter().flat_map(|c| &c.pools) {
            out.extend(p.user_secret_ref.iter().map(|r| r.name.clone()));
            out.extend(p.pass_secret_ref.iter().map(|r| r.name.clone()));
        }
        out.sort();
        out.dedup();
        out
    }
    fn needs_node_sets(&self) -> bool {
        self.spec
            .xmrig
            .config
            .iter()
            .flat_map(|c| &c.pools)
            .any(|p| p.node_set.is_some())
    }
    fn build(&self, ctx: &build::Context) -> Result<Desired, InvalidSpec> {
        build::mining_set(self, ctx)
    }
    fn exporter(&self) -> bool {
        self.spec.exporter.enabled
    }
}

fn object_key<K: Managed>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::KIND,
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// One reconcile of one object, timed and counted.
pub async fn reconcile<K: Managed>(obj: Arc<K>, state: Arc<State>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = reconcile_inner(obj.as_ref(), &state).await;
    state
        .metrics
        .observe(K::KIND, start.elapsed(), result.as_ref().err());
    if let Err(e) = &result {
        tracing::warn!(object = %object_key(obj.as_ref()), error = %e, "reconcile failed");
        publish(
            &state,
            obj.as_ref(),
            EventType::Warning,
            "ReconcileFailed",
            "Reconcile",
            e.to_string(),
        )
        .await;
    } else if let Ok(mut f) = state.failures.lock() {
        f.remove(&object_key(obj.as_ref()));
    }
    result
}

/// Requeue after an error with exponential backoff (5 s doubling to 5 min),
/// so a failing API server is not hammered.
pub fn error_policy<K: Managed>(obj: Arc<K>, _error: &Error, state: Arc<State>) -> Action {
    let n = state
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(object_key(obj.as_ref())).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    Action::requeue(backoff(n))
}

/// The delay before retry number `n` (from 1).
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

async fn publish<K: Managed>(
    state: &State,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = state.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish an Event");
    }
}

async fn reconcile_inner<K: Managed>(obj: &K, state: &State) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let name = obj.name_any();
    let client = &state.client;

    // 1. Read what the object refers to.
    let mut ctx = state.config.build.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for s in obj.referenced_secrets() {
        if let Some(secret) = secrets
            .get_opt(&s)
            .await
            .map_err(|e| Error::kube(format!("reading Secret {ns}/{s}"), e))?
        {
            ctx.secrets.insert(s, build::secret_data(&secret));
        }
    }
    if obj.needs_node_sets() {
        let sets: Api<MoneroNodeSet> = Api::namespaced(client.clone(), &ns);
        let list = sets
            .list(&ListParams::default())
            .await
            .map_err(|e| Error::kube(format!("listing MoneroNodeSets in {ns}"), e))?;
        for s in list {
            let owner = Owner::of("MoneroNodeSet", &s.metadata);
            if let Ok(net) = build::effective_network(&owner, &s.spec.node, "spec") {
                ctx.node_sets.insert(s.name_any(), net);
            }
        }
    }

    // 2. Validate and build (pure).
    let desired = match obj.build(&ctx) {
        Ok(d) => d,
        Err(invalid) => return reject(obj, state, invalid).await,
    };

    // 3. Identities (Tor, I2P): made once (only for a valid object), checked when brought.
    let ids = match obj.node() {
        Some(node) => {
            let owner = Owner::of(K::KIND, obj.meta());
            match identities::ensure(client, &owner, node, obj.desired_replicas()).await? {
                Ok(ids) => ids,
                Err(invalid) => return reject(obj, state, invalid).await,
            }
        }
        None => identities::Identities::default(),
    };
    // xmrig's API token, made once, before the pods that mount it.
    if K::KIND == <MoneroMiningNodeSet as Managed>::KIND && obj.exporter() {
        let owner = Owner::of(K::KIND, obj.meta());
        let created = match xmrig_api::ensure(client, &owner).await? {
            Ok(created) => created,
            Err(invalid) => return reject(obj, state, invalid).await,
        };
        if created {
            publish(
                state,
                obj,
                EventType::Normal,
                "AccessTokenCreated",
                "Token",
                format!(
                    "made Secret {} with xmrig's HTTP API access token",
                    build::xmrig_api_secret_name(&owner)
                ),
            )
            .await;
        }
    }
    if !ids.created.is_empty() {
        tracing::info!(object = %object_key(obj), created = ?ids.created, "made identities");
        publish(
            state,
            obj,
            EventType::Normal,
            "IdentityCreated",
            "Identity",
            format!("made {}", ids.created.join(", ")),
        )
        .await;
    }

    // The PodMonitor needs the Prometheus Operator's CRD; asked only when one is
    // wanted now or was made before (then it may have to go).
    let wants_pm = desired
        .children
        .iter()
        .any(|c| matches!(c, Child::PodMonitor(_)));
    let had_pm = obj.status().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "PodMonitor" && c.status == "True")
    });
    let pm_crd = if wants_pm || had_pm {
        pod_monitor_crd_installed(client).await?
    } else {
        false
    };

    // 4. Apply what differs, config first.
    let params = PatchParams::apply(MANAGER).force();
    let mut applied = Vec::new();
    for mut child in desired.children.clone() {
        if let Child::StatefulSet(sts) = &mut child {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
            let live = api
                .get_opt(&sts.name_any())
                .await
                .map_err(|e| Error::kube(format!("reading StatefulSet {ns}/{name}"), e))?;
            if let Some(live) = &live
                && let Some(size) = apply::keep_claim_templates(sts, live)
            {
                grow_volumes(state, obj, &ns, live, &size).await?;
            }
            if apply_child(&api, sts.as_ref(), live.as_ref(), &params).await? {
                applied.push(child.describe());
            }
            continue;
        }
        let did = match &child {
            Child::Secret(o) => apply_one(client, &ns, o.as_ref(), &params).await?,
            Child::Service(o) => apply_one(client, &ns, o.as_ref(), &params).await?,
            Child::PodDisruptionBudget(o) => apply_one(client, &ns, o.as_ref(), &params).await?,
            Child::PodMonitor(o) if pm_crd => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &ns, &build::pod_monitor_resource());
                let live = api
                    .get_opt(&o.name_any())
                    .await
                    .map_err(|e| Error::kube(format!("reading PodMonitor {ns}/{name}"), e))?;
                apply_child(&api, o.as_ref(), live.as_ref(), &params).await?
            }
            Child::PodMonitor(_) | Child::StatefulSet(_) => false,
        };
        if did {
            applied.push(child.describe());
        }
    }
    if !applied.is_empty() {
        tracing::info!(object = %object_key(obj), applied = ?applied, "applied");
        publish(
            state,
            obj,
            EventType::Normal,
            "Applied",
            "Apply",
            format!("applied {}", applied.join(", ")),
        )
        .await;
    }

    // 5. Remove children no longer desired (a PDB after scaling to one, a
    // network node's Service after scaling down).
    let mut removed = prune(state, obj, &ns, &desired).await?;
    if pm_crd {
        removed.extend(prune_pod_monitors(state, obj, &ns, &desired).await?);
    }
    if !removed.is_empty() {
        publish(
            state,
            obj,
            EventType::Normal,
            "Removed",
            "Prune",
            format!("removed {}", removed.join(", ")),
        )
        .await;
    }

    // 6. Status.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let list = pods
        .list(&ListParams::default().labels(&desired.selector))
        .await
        .map_err(|e| Error::kube(format!("listing pods of {}", object_key(obj)), e))?;
    let login = obj.rpc_login(&ctx);
    let mut observed = Vec::new();
    let mut items: Vec<Pod> = list.items;
    items.sort_by_key(|p| p.name_any());
    // monerod replicas are always polled; miners only through their exporter.
    let polled = K::POLLED || obj.exporter();
    let key = object_key(obj);
    let max_age = state.config.status_interval / 2;
    let (since, recent) = state
        .observed
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned())
        .filter(|(t, _)| t.elapsed() < max_age)
        .unwrap_or_else(|| (Instant::now(), HashMap::new()));
    let probes = items.iter().map(|p| {
        let recent = recent.get(&p.name_any()).cloned();
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone());
        let target = ip.map(|ip| ProbeTarget {
            ip,
            rpc_port: desired_rpc_port(&desired),
            exporter: obj.exporter(),
            login: login.clone(),
            xmrig: !K::POLLED,
        });
        let probe = state.probe.clone();
        async move {
            match target {
                Some(_) if polled && recent.is_some() => recent,
                Some(t) if polled => Some(probe.observe(t).await),
                None if polled => Some(status::Observed {
                    message: Some("pod has no IP yet".into()),
                    ..status::Observed::default()
                }),
                _ => None,
            }
        }
    });
    let results = futures::future::join_all(probes).await;
    let mut keep = HashMap::new();
    for (p, o) in items.iter().zip(results) {
        let has_ip = p.status.as_ref().is_some_and(|s| s.pod_ip.is_some());
        if let Some(o) = o.as_ref().filter(|_| has_ip) {
            keep.insert(p.name_any(), o.clone());
        }
        observed.push((p.name_any(), status::pod_ready(p), o));
    }
    if let Ok(mut m) = state.observed.lock() {
        // Forget objects not seen for a while (deleted ones).
        m.retain(|_, (t, _)| t.elapsed() < state.config.status_interval * 10);
        m.insert(key, (since, keep));
    }
    let extra = if wants_pm {
        vec![if pm_crd {
            status::Extra::new(
                "PodMonitor",
                true,
                "Created",
                "the PodMonitor selects these pods",
            )
        } else {
            status::Extra::new(
                "PodMonitor",
                false,
                "CRDMissing",
                "the Prometheus Operator's PodMonitor CRD (monitoring.coreos.com/v1) is not installed; scrape the pods through their prometheus.io annotations instead",
            )
        }]
    } else {
        Vec::new()
    };
    write_status(obj, state, &desired.selector, observed, None, &ids, extra).await?;
    let wait = if obj.desired_replicas() > 0 {
        state.config.status_interval
    } else {
        state.config.idle_interval
    };
    Ok(Action::requeue(wait))
}

/// An object that cannot be applied: a condition, a Warning Event the first
/// time, and a look again in a minute (a missing Secret may appear).
async fn reject<K: Managed>(obj: &K, state: &State, invalid: InvalidSpec) -> Result<Action, Error> {
    let changed = write_status(
        obj,
        state,
        &invalid_selector::<K>(obj),
        Vec::new(),
        Some(invalid.to_string()),
        &identities::Identities::default(),
        Vec::new(),
    )
    .await?;
    if changed {
        publish(
            state,
            obj,
            EventType::Warning,
            "InvalidSpec",
            "Validate",
            invalid.to_string(),
        )
        .await;
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

fn invalid_selector<K: Managed>(obj: &K) -> String {
    let workload = if K::KIND == "MoneroMiningNodeSet" {
        build::XMRIG_WORKLOAD
    } else {
        build::MONEROD_WORKLOAD
    };
    Owner::of(K::KIND, obj.meta()).selector_string(workload)
}

fn desired_rpc_port(desired: &Desired) -> u16 {
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

/// Applies `desired` unless `live` already contains it. Returns whether it wrote.
async fn apply_child<T>(
    api: &Api<T>,
    desired: &T,
    live: Option<&T>,
    params: &PatchParams,
) -> Result<bool, Error>
where
    T: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = desired.meta().name.clone().unwrap_or_default();
    let want = serde_json::to_value(desired).map_err(|e| Error::Serialize {
        what: name.clone(),
        message: e.to_string(),
    })?;
    if let Some(live) = live {
        let have = serde_json::to_value(live).map_err(|e| Error::Serialize {
            what: name.clone(),
            message: e.to_string(),
        })?;
        if apply::contains(&have, &want) {
            return Ok(false);
        }
    }
    api.patch(&name, params, &Patch::Apply(&want))
        .await
        .map_err(|e| Error::kube(format!("applying {name}"), e))?;
    Ok(true)
}

async fn apply_one<T>(
    client: &Client,
    ns: &str,
    desired: &T,
    params: &PatchParams,
) -> Result<bool, Error>
where
    T: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<T> = Api::namespaced(client.clone(), ns);
    let name = desired.meta().name.clone().unwrap_or_default();
    let live = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading {} {ns}/{name}", T::kind(&())), e))?;
    apply_child(&api, desired, live.as_ref(), params).await
}

/// Grows each replica's volume to `size` (the storage class must allow
/// expansion; the API server says so if it does not).
async fn grow_volumes<K: Managed>(
    state: &State,
    obj: &K,
    ns: &str,
    live: &StatefulSet,
    size: &str,
) -> Result<(), Error> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(state.client.clone(), ns);
    let sts = live.name_any();
    let replicas = live.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    for i in 0..replicas {
        let claim = format!("data-{sts}-{i}");
        let Some(pvc) = pvcs
            .get_opt(&claim)
            .await
            .map_err(|e| Error::kube(format!("reading PersistentVolumeClaim {ns}/{claim}"), e))?
        else {
            continue;
        };
        let have = pvc
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .and_then(|q| apply::bytes(&q.0));
        if have >= apply::bytes(size) {
            continue;
        }
        let patch = json!({"spec": {"resources": {"requests": {"storage": size}}}});
        pvcs.patch(&claim, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                Error::kube(
                    format!("growing PersistentVolumeClaim {ns}/{claim} to {size}"),
                    e,
                )
            })?;
        publish(
            state,
            obj,
            EventType::Normal,
            "VolumeResized",
            "Resize",
            format!("asked {claim} to grow to {size}"),
        )
        .await;
    }
    Ok(())
}

async fn prune<K: Managed>(
    state: &State,
    obj: &K,
    ns: &str,
    desired: &Desired,
) -> Result<Vec<String>, Error> {
    let owner = Owner::of(K::KIND, obj.meta());
    let selector = format!(
        "{}={},app.kubernetes.io/managed-by={MANAGER},{}={}",
        build::INSTANCE_LABEL,
        owner.name,
        build::PART_OF_LABEL,
        K::KIND.to_lowercase()
    );
    let mut removed = Vec::new();
    let keep_services = desired.names_of(|c| matches!(c, Child::Service(_)));
    let keep_pdbs = desired.names_of(|c| matches!(c, Child::PodDisruptionBudget(_)));
    let keep_secrets = desired.names_of(|c| matches!(c, Child::Secret(_)));
    removed.extend(prune_kind::<Service>(state, ns, &selector, &keep_services).await?);
    if K::POLLED {
        // Only monerod sets get a disruption budget.
        removed.extend(prune_kind::<PodDisruptionBudget>(state, ns, &selector, &keep_pdbs).await?);
    }
    removed.extend(prune_kind::<Secret>(state, ns, &selector, &keep_secrets).await?);
    Ok(removed)
}

/// Whether the Prometheus Operator's PodMonitor CRD is served.
async fn pod_monitor_crd_installed(client: &Client) -> Result<bool, Error> {
    match client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
    {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == "podmonitors")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(Error::kube("looking for the PodMonitor CRD", e)),
    }
}

async fn prune_pod_monitors<K: Managed>(
    state: &State,
    obj: &K,
    ns: &str,
    desired: &Desired,
) -> Result<Vec<String>, Error> {
    let owner = Owner::of(K::KIND, obj.meta());
    let selector = format!(
        "{}={},app.kubernetes.io/managed-by={MANAGER}",
        build::INSTANCE_LABEL,
        owner.name
    );
    let keep = desired.names_of(|c| matches!(c, Child::PodMonitor(_)));
    let api: Api<DynamicObject> =
        Api::namespaced_with(state.client.clone(), ns, &build::pod_monitor_resource());
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::kube(format!("listing PodMonitors in {ns}"), e))?;
    let mut removed = Vec::new();
    for item in list {
        let name = item.name_any();
        if keep.contains(&name) {
            continue;
        }
        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(|e| Error::kube(format!("deleting PodMonitor {ns}/{name}"), e))?;
        removed.push(format!("PodMonitor/{name}"));
    }
    Ok(removed)
}

async fn prune_kind<T>(
    state: &State,
    ns: &str,
    selector: &str,
    keep: &[String],
) -> Result<Vec<String>, Error>
where
    T: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<T> = Api::namespaced(state.client.clone(), ns);
    let kind = T::kind(&()).to_string();
    let list = api
        .list_metadata(&ListParams::default().labels(selector))
        .await
        .map_err(|e| Error::kube(format!("listing {kind}s in {ns}"), e))?;
    let mut removed = Vec::new();
    for item in list.items {
        let name = item.metadata.name.clone().unwrap_or_default();
        if keep.contains(&name) {
            continue;
        }
        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(|e| Error::kube(format!("deleting {kind} {ns}/{name}"), e))?;
        removed.push(format!("{kind}/{name}"));
    }
    Ok(removed)
}

/// Writes the status when it differs from the stored one. Returns whether it wrote.
async fn write_status<K: Managed>(
    obj: &K,
    state: &State,
    selector: &str,
    pods: Vec<(String, bool, Option<status::Observed>)>,
    invalid: Option<String>,
    ids: &identities::Identities,
    extra: Vec<status::Extra>,
) -> Result<bool, Error> {
    let new = status::compute(status::StatusInput {
        previous: obj.status(),
        generation: obj.meta().generation,
        desired: obj.desired_replicas(),
        selector: selector.to_string(),
        pods,
        invalid,
        network: K::KIND == "MoneroNetwork",
        miners: K::KIND == <MoneroMiningNodeSet as Managed>::KIND,
        addresses: ids.addresses.clone(),
        rpc_onion: ids.rpc_onion.clone(),
        extra,
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

/// Runs the three controllers until `shutdown` turns true; each finishes the
/// reconciles it has started.
pub async fn run(state: Arc<State>, shutdown: tokio::sync::watch::Receiver<bool>) {
    let stopped = move || {
        let mut rx = shutdown.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let client = state.client.clone();
    // Each controller watches only its own kind's children, not every Secret or
    // Service in the cluster.
    let owned = |kind: &str| {
        watcher::Config::default().labels(&format!(
            "app.kubernetes.io/managed-by={MANAGER},{}={}",
            build::PART_OF_LABEL,
            kind.to_lowercase()
        ))
    };
    macro_rules! controller {
        ($kind:ty) => {{
            let owned = owned(<$kind as Managed>::KIND);
            Controller::new(Api::<$kind>::all(client.clone()), watcher::Config::default())
                .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
                .owns(Api::<Service>::all(client.clone()), owned.clone())
                .owns(Api::<Secret>::all(client.clone()), owned.clone())
                .owns(Api::<PodDisruptionBudget>::all(client.clone()), owned.clone())
                .graceful_shutdown_on(stopped())
                .run(reconcile::<$kind>, error_policy::<$kind>, state.clone())
                .for_each(|r| async move {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "controller event");
                    }
                })
        }};
    }
    tokio::join!(
        controller!(MoneroNodeSet),
        controller!(MoneroNetwork),
        controller!(MoneroMiningNodeSet)
    );
}
