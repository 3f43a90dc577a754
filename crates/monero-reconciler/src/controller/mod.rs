//! The controllers: for each custom resource, a pipeline of small steps:
//! read what it refers to, build the desired objects (pure), make the
//! identities the pods mount, apply what changed with server-side apply,
//! grow volumes, remove what is no longer desired, then write status only
//! when it changed. Every step that can stop the pipeline says why in the
//! status, not only in the log.

pub mod apply;
pub mod caches;
mod children;
mod heal;
pub mod identities;
pub mod leader;
pub mod metrics;
mod pause;
pub mod probe;
mod prune;
mod report;
mod rollout;
pub mod status;
mod volumes;
pub mod xmrig_api;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource, ResourceExt};
use monero_crd::{MoneroMiningNodeSet, MoneroNetwork, MoneroNodeSet, SetStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::{self, Child, Desired, MANAGER, Owner};
use crate::error::{Error, InvalidSpec};
use identities::Identities;
use probe::Probe;
use status::{Blocked, Extra};

/// Settings of the controllers.
#[derive(Clone, Debug)]
pub struct Config {
    /// Images and cluster domain for the builders.
    pub build: build::Context,
    /// How often status is refreshed while replicas exist.
    pub status_interval: Duration,
    /// How long to wait before looking again at an object that is fine.
    pub idle_interval: Duration,
    /// How long an answer about the PodMonitor CRD is reused: the Prometheus
    /// Operator is installed or removed rarely, and asking discovery at every
    /// reconcile of every set that wants a PodMonitor would be a request each.
    pub crd_recheck: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            build: build::Context::new(build::Images::default()),
            status_interval: Duration::from_secs(30),
            idle_interval: Duration::from_secs(300),
            crd_recheck: Duration::from_secs(60),
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
    /// The owned kinds' caches, once filled. Without them (tests that build a
    /// `State` and reconcile by hand), every read is a GET or LIST instead.
    caches: OnceLock<caches::Caches>,
    /// When the PodMonitor CRD was last looked for, and whether it was there.
    crd_seen: Mutex<Option<(Instant, bool)>>,
    /// Since when each object's replicas have been at their heights, for
    /// restarting the stalled ones.
    stalls: Mutex<HashMap<String, crate::stall::Clocks>>,
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
            caches: OnceLock::new(),
            crd_seen: Mutex::new(None),
            stalls: Mutex::new(HashMap::new()),
        })
    }

    /// Reads children, pods and prune candidates from `caches` from now on.
    /// They should be filled (see [`caches::Caches::wait_until_ready`]): an
    /// empty cache looks like children to create (which a GET then corrects,
    /// at a request each). Returns false when caches were already set.
    pub fn use_caches(&self, caches: caches::Caches) -> bool {
        self.caches.set(caches).is_ok()
    }

    /// The caches, when in use.
    pub(crate) fn caches(&self) -> Option<&caches::Caches> {
        self.caches.get()
    }

    /// The metrics the reconciles update.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }
}

/// What the pipeline needs to know about a kind. Everything that differs
/// between kinds is said here, so the steps have no per-kind branches and a
/// new kind is one more impl.
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
    /// The pods' `app.kubernetes.io/name`: with the object's name, their
    /// selector, which status reports even when nothing could be built.
    const WORKLOAD: &'static str;
    /// Whether replicas run monerod and are polled over RPC (miners are read
    /// only through their exporter, when it runs).
    const POLLED: bool;
    /// Whether the replicas are miners: a hashrate in status, no chain.
    const MINERS: bool = false;
    /// Whether the nodes form a closed network, so status checks that each
    /// one sees every other.
    const PEERED: bool = false;
    /// Whether the builder can make a PodDisruptionBudget, so that one it no
    /// longer wants is removed (listing them for other kinds would be a
    /// request for nothing).
    const DISRUPTION_BUDGET: bool;
    /// Where the node settings sit in the spec, so that messages name the
    /// field where the user wrote it.
    const NODE_PATH: &'static str = "spec";
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
    /// Names of user ConfigMaps the builder reads: a monerod ban list.
    fn referenced_config_maps(&self) -> Vec<String> {
        self.node()
            .and_then(|n| n.monerod.ban_list.as_ref())
            .map(|b| vec![b.name.clone()])
            .unwrap_or_default()
    }
    /// Whether the builder needs the namespace's MoneroNodeSets.
    fn needs_node_sets(&self) -> bool {
        false
    }
    /// Whether the pods mount xmrig's HTTP API token, a random Secret the
    /// builder cannot make (it is pure) and that must exist before them.
    fn needs_api_token(&self) -> bool {
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
    /// `spec.updateStrategy`, for kinds whose rollouts the operator gates.
    fn update_strategy(&self) -> Option<&monero_crd::UpdateStrategy> {
        None
    }
    /// `spec.stallTimeout`, for kinds whose stalled replicas are restarted.
    fn stall_timeout(&self) -> Option<&str> {
        None
    }
    /// `spec.readyAtHeight`: Ready waits for every node to get there.
    fn ready_at_height(&self) -> Option<u64> {
        None
    }
    /// `spec.wallets`: how many, and whether blocks are mined to them.
    fn wallets(&self) -> Option<(i32, bool)> {
        None
    }
    /// The monerod release the pods' flags are made for, for the status.
    fn monerod_version(&self, ctx: &build::Context) -> Option<String> {
        self.node()
            .map(|n| build::monerod_version(n, ctx).describe())
    }
}

impl Managed for MoneroNodeSet {
    const KIND: &'static str = "MoneroNodeSet";
    const WORKLOAD: &'static str = build::MONEROD_WORKLOAD;
    const POLLED: bool = true;
    const DISRUPTION_BUDGET: bool = true;
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
    fn update_strategy(&self) -> Option<&monero_crd::UpdateStrategy> {
        Some(&self.spec.update_strategy)
    }
    fn stall_timeout(&self) -> Option<&str> {
        Some(&self.spec.stall_timeout)
    }
}

impl Managed for MoneroNetwork {
    const KIND: &'static str = "MoneroNetwork";
    const WORKLOAD: &'static str = build::MONEROD_WORKLOAD;
    const POLLED: bool = true;
    const PEERED: bool = true;
    const DISRUPTION_BUDGET: bool = true;
    const NODE_PATH: &'static str = "spec.template.spec";
    fn status(&self) -> Option<&SetStatus> {
        self.status.as_ref()
    }
    fn desired_replicas(&self) -> i32 {
        self.spec.replicas
    }
    fn build(&self, ctx: &build::Context) -> Result<Desired, InvalidSpec> {
        build::network(self, ctx)
    }
    fn ready_at_height(&self) -> Option<u64> {
        self.spec.ready_at_height
    }
    fn wallets(&self) -> Option<(i32, bool)> {
        let w = self.spec.wallets.as_ref()?;
        Some((w.count, self.spec.blocks.is_some()))
    }
    /// The nodes' RPC login and the wallets' one.
    fn referenced_secrets(&self) -> Vec<String> {
        let nodes = self.spec.template.spec.node.monerod.rpc.login.as_ref();
        let wallets = self.spec.wallets.as_ref().and_then(|w| w.login.as_ref());
        let mut out: Vec<String> = nodes
            .into_iter()
            .chain(wallets)
            .map(|l| l.secret_name.clone())
            .collect();
        out.dedup();
        out
    }
    fn node(&self) -> Option<&monero_crd::NodeSpec> {
        Some(&self.spec.template.spec.node)
    }
    fn update_strategy(&self) -> Option<&monero_crd::UpdateStrategy> {
        Some(&self.spec.update_strategy)
    }
    fn stall_timeout(&self) -> Option<&str> {
        Some(&self.spec.stall_timeout)
    }
}

impl Managed for MoneroMiningNodeSet {
    const KIND: &'static str = "MoneroMiningNodeSet";
    const WORKLOAD: &'static str = build::XMRIG_WORKLOAD;
    const POLLED: bool = false;
    const MINERS: bool = true;
    const DISRUPTION_BUDGET: bool = false;
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
    fn needs_api_token(&self) -> bool {
        self.exporter()
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
    } else {
        // One line per finished reconcile of an object, so a reader (or the cluster
        // tier) can tell "reconciled and found nothing to do" from "not looked at".
        tracing::debug!(object = %object_key(obj.as_ref()), "reconciled");
        if let Ok(mut f) = state.failures.lock() {
            f.remove(&object_key(obj.as_ref()));
        }
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

/// The pipeline. What stops it for a reason the user must fix (an invalid
/// spec, a name another object holds, a child the API server refuses) is
/// written to the status; other API errors go back for the backoff.
async fn reconcile_inner<K: Managed>(obj: &K, state: &State) -> Result<Action, Error> {
    if obj.meta().deletion_timestamp.is_some() {
        return Ok(being_deleted(obj, state));
    }
    let ctx = read(obj, state).await?;
    let mut desired = match obj.build(&ctx) {
        Ok(d) => d,
        Err(invalid) => return reject(obj, state, invalid).await,
    };
    if paused(obj) {
        return pause::report(obj, state, &desired, &ctx).await;
    }
    let gate = rollout::gate(obj, state, &mut desired, &ctx).await?;
    let monitors = pod_monitors(obj, state, &desired).await?;
    let plan = match children::plan(obj, state, &desired, monitors.crd).await? {
        children::Checked::Ours(plan) => plan,
        children::Checked::Taken(why) => return name_conflict(obj, state, &desired, why).await,
    };
    let ids = match make_identities(obj, state).await? {
        Ok(ids) => ids,
        Err(invalid) => return reject(obj, state, invalid).await,
    };
    let mut report = report::Report {
        desired: &desired,
        ctx: &ctx,
        ids: &ids,
        extra: monitors.condition().into_iter().collect(),
        blocked: None,
        rollout: gate.as_ref(),
    };
    if let Err(e) = children::apply(obj, state, &plan).await {
        return apply_failed(obj, state, report, e).await;
    }
    if let Some(d) = &gate {
        rollout_events(obj, state, d).await;
    }
    report
        .extra
        .extend(volumes::grow(obj, state, plan.growth.as_ref()).await?);
    prune::run(obj, state, &desired, monitors.crd).await?;
    report::write(obj, state, report).await?;
    heal::run(obj, state, &desired).await?;
    Ok(Action::requeue(next_look(obj, state)))
}

/// Whether the object carries `utxo.com.br/reconcile: paused`.
fn paused<K: Managed>(obj: &K) -> bool {
    obj.annotations().get(pause::ANNOTATION).map(String::as_str) == Some(pause::PAUSED)
}

/// An Event when the gate moves the rollout to the next replica, and a
/// Warning when it halts (once: the decision says when it is new).
async fn rollout_events<K: Managed>(obj: &K, state: &State, d: &crate::rollout::Decision) {
    let revision = d.status.update_revision.clone().unwrap_or_default();
    if let Some(pod) = &d.moved {
        let note = format!("moving {pod} to revision {revision}");
        publish(state, obj, EventType::Normal, "RollingOut", "Rollout", note).await;
    }
    if d.halted_now {
        let who = d.status.waiting_for.clone().unwrap_or_default();
        let why = d.status.message.clone().unwrap_or_default();
        let note = format!("rollout to revision {revision} halted at {who}: {why}");
        publish(
            state,
            obj,
            EventType::Warning,
            "RolloutHalted",
            "Rollout",
            note,
        )
        .await;
    }
}

/// Replicas report a changing status, so they are looked at often; an
/// object with none only needs the occasional check.
fn next_look<K: Managed>(obj: &K, state: &State) -> Duration {
    if obj.desired_replicas() > 0 {
        state.config.status_interval
    } else {
        state.config.idle_interval
    }
}

/// An object being deleted (foreground deletion keeps it while the garbage
/// collector removes its children) is left alone: applying now would make
/// again what the collector just removed. Its next change is its removal.
fn being_deleted<K: Managed>(obj: &K, state: &State) -> Action {
    tracing::debug!(object = %object_key(obj), "being deleted: nothing to do");
    if let Ok(mut m) = state.observed.lock() {
        m.remove(&object_key(obj));
    }
    if let Ok(mut m) = state.stalls.lock() {
        m.remove(&object_key(obj));
    }
    Action::await_change()
}

/// Reads what the object refers to: user Secrets and ConfigMaps and, for
/// solo mining, the namespace's MoneroNodeSets. They are read at every
/// reconcile (every status interval while replicas exist), so a changed
/// login or ban list reaches the pods within one.
async fn read<K: Managed>(obj: &K, state: &State) -> Result<build::Context, Error> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let mut ctx = state.config.build.clone();
    let secrets: Api<Secret> = Api::namespaced(state.client.clone(), &ns);
    for s in obj.referenced_secrets() {
        if let Some(secret) = secrets
            .get_opt(&s)
            .await
            .map_err(|e| Error::kube(format!("reading Secret {ns}/{s}"), e))?
        {
            ctx.secrets.insert(s, build::secret_data(&secret));
        }
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(state.client.clone(), &ns);
    for c in obj.referenced_config_maps() {
        if let Some(cm) = config_maps
            .get_opt(&c)
            .await
            .map_err(|e| Error::kube(format!("reading ConfigMap {ns}/{c}"), e))?
        {
            ctx.config_maps.insert(c, cm.data.unwrap_or_default());
        }
    }
    if obj.needs_node_sets() {
        let sets: Api<MoneroNodeSet> = Api::namespaced(state.client.clone(), &ns);
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
    Ok(ctx)
}

/// Whether a PodMonitor is wanted, and whether the Prometheus Operator's CRD
/// that it needs is installed.
struct PodMonitors {
    wanted: bool,
    crd: bool,
}

impl PodMonitors {
    /// The `PodMonitor` condition, when one is wanted.
    fn condition(&self) -> Option<Extra> {
        self.wanted.then(|| if self.crd {
            Extra::new("PodMonitor", true, "Created", "the PodMonitor selects these pods")
        } else {
            Extra::new(
                "PodMonitor",
                false,
                "CRDMissing",
                "the Prometheus Operator's PodMonitor CRD (monitoring.coreos.com/v1) is not installed; scrape the pods through their prometheus.io annotations instead",
            )
        })
    }
}

/// The CRD is asked for only when a PodMonitor is wanted now or was made
/// before (then it may have to go), so other sets cost no request.
async fn pod_monitors<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
) -> Result<PodMonitors, Error> {
    let wanted = desired
        .children
        .iter()
        .any(|c| matches!(c, Child::PodMonitor(_)));
    let had = obj.status().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "PodMonitor" && c.status == "True")
    });
    let crd = if wanted || had {
        pod_monitor_crd(state).await?
    } else {
        false
    };
    Ok(PodMonitors { wanted, crd })
}

/// Whether the PodMonitor CRD is served, asked at most once per
/// `crd_recheck`.
async fn pod_monitor_crd(state: &State) -> Result<bool, Error> {
    let ttl = state.config.crd_recheck;
    let known = state
        .crd_seen
        .lock()
        .ok()
        .and_then(|c| *c)
        .filter(|(at, _)| at.elapsed() < ttl);
    if let Some((_, there)) = known {
        return Ok(there);
    }
    let there = pod_monitor_crd_installed(&state.client).await?;
    if let Ok(mut c) = state.crd_seen.lock() {
        *c = Some((Instant::now(), there));
    }
    Ok(there)
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

/// Tor and I2P identities, and xmrig's API token: made once (only for a
/// valid object whose children are its own), before the pods that mount them.
async fn make_identities<K: Managed>(
    obj: &K,
    state: &State,
) -> Result<Result<Identities, InvalidSpec>, Error> {
    let owner = Owner::of(K::KIND, obj.meta());
    if obj.needs_api_token()
        && let Err(invalid) = make_api_token(obj, state, &owner).await?
    {
        return Ok(Err(invalid));
    }
    let Some(node) = obj.node() else {
        return Ok(Ok(Identities::default()));
    };
    let replicas = obj.desired_replicas();
    let cached = state.caches().map(|c| &c.kept_secrets);
    let ids = match identities::ensure(&state.client, cached, &owner, node, replicas, K::NODE_PATH)
        .await?
    {
        Ok(ids) => ids,
        Err(invalid) => return Ok(Err(invalid)),
    };
    if !ids.created.is_empty() {
        tracing::info!(object = %object_key(obj), created = ?ids.created, "made identities");
        let note = format!("made {}", ids.created.join(", "));
        let (kind, reason) = (EventType::Normal, "IdentityCreated");
        publish(state, obj, kind, reason, "Identity", note).await;
    }
    Ok(Ok(ids))
}

/// xmrig's API token, with an Event when it is made (the only time it is
/// written).
async fn make_api_token<K: Managed>(
    obj: &K,
    state: &State,
    owner: &Owner,
) -> Result<Result<(), InvalidSpec>, Error> {
    let cached = state.caches().map(|c| &c.kept_secrets);
    let made = match xmrig_api::ensure(&state.client, cached, owner).await? {
        Ok(made) => made,
        Err(invalid) => return Ok(Err(invalid)),
    };
    if made {
        let secret = build::xmrig_api_secret_name(owner);
        let note = format!("made Secret {secret} with xmrig's HTTP API access token");
        let (kind, reason) = (EventType::Normal, "AccessTokenCreated");
        publish(state, obj, kind, reason, "Token", note).await;
    }
    Ok(Ok(()))
}

/// An object that cannot be applied: a condition, a Warning Event the first
/// time, and a look again in a minute (a missing Secret may appear).
async fn reject<K: Managed>(obj: &K, state: &State, invalid: InvalidSpec) -> Result<Action, Error> {
    let selector = Owner::of(K::KIND, obj.meta()).selector_string(K::WORKLOAD);
    let blocked = Blocked::new("InvalidSpec", invalid.to_string());
    refuse(obj, state, selector, blocked, "Validate").await
}

/// Children whose names other objects hold: nothing is applied (taking them
/// over would break their owner), the status names them and the holders,
/// and in a minute we look again (the other object may be gone by then).
async fn name_conflict<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
    why: String,
) -> Result<Action, Error> {
    let blocked = Blocked::new("NameConflict", why);
    refuse(obj, state, desired.selector.clone(), blocked, "Apply").await
}

/// Writes a status that says why nothing was applied, with a Warning Event
/// only when that status is new (not at every retry).
async fn refuse<K: Managed>(
    obj: &K,
    state: &State,
    selector: String,
    blocked: Blocked,
    action: &str,
) -> Result<Action, Error> {
    let (reason, note) = (blocked.reason.clone(), blocked.message.clone());
    let parts = report::Parts {
        selector,
        blocked: Some(blocked),
        ..report::Parts::default()
    };
    if report::write_status(obj, state, parts).await? {
        publish(state, obj, EventType::Warning, &reason, action, note).await;
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// A child the API server refused: the status says which and why (a log line
/// is not where users look), then the error goes back for the backoff.
async fn apply_failed<K: Managed>(
    obj: &K,
    state: &State,
    mut report: report::Report<'_>,
    error: Error,
) -> Result<Action, Error> {
    report.blocked = Some(Blocked::new("ApplyFailed", error.condition_message()));
    if let Err(e) = report::write(obj, state, report).await {
        tracing::debug!(object = %object_key(obj), error = %e, "could not write the failure to status");
    }
    Err(error)
}

/// Fills the caches of the owned kinds, then runs the three controllers
/// until `shutdown` turns true; each finishes the reconciles it has started.
/// The controllers start only once every cache holds its first list, so that
/// no reconcile mistakes a cache still empty for missing children.
pub async fn run(state: Arc<State>, shutdown: tokio::sync::watch::Receiver<bool>) {
    let stopped = move || {
        let mut rx = shutdown.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let client = state.client.clone();
    let (caches, feeds) = caches::Caches::new();
    let feeding = tokio::spawn(feeds.reflect(client.clone()));
    tokio::select! {
        ready = caches.wait_until_ready() => {
            if let Err(e) = ready {
                tracing::error!(error = %e, "the caches could not be filled; not starting the controllers");
                feeding.abort();
                return;
            }
        }
        () = stopped() => {
            feeding.abort();
            return;
        }
    }
    tracing::info!(?caches, "caches filled");
    state.use_caches(caches);
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
    feeding.abort();
}
