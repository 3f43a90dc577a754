//! Caches of the owned kinds, fed by one watch each, so that a reconcile
//! with nothing to do reads its children, pods and prune candidates from
//! memory and makes no request at all.
//!
//! A cache may lag behind a write we just made. It is trusted only when it
//! says there is nothing to do: whenever it suggests a write (a child missing,
//! foreign or with another applied hash; an identity missing), the step reads
//! the object again with a GET and decides from that. A prune candidate that
//! is already gone answers 404, which is taken as done.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::build::MANAGER;
use crate::error::Error;

/// Label selector of every child and pod the operator makes.
pub fn managed_selector() -> String {
    format!("app.kubernetes.io/managed-by={MANAGER}")
}

/// Label selector of the Secrets the operator makes once and keeps (Tor and
/// I2P identities, xmrig's API token): not children, so that pruning never
/// selects them, but labelled so that they can be cached too.
pub fn created_selector() -> String {
    format!("app.kubernetes.io/created-by={MANAGER}")
}

/// Read side of the caches, shared by every reconcile.
#[derive(Clone)]
pub struct Caches {
    pub(super) stateful_sets: Store<StatefulSet>,
    pub(super) services: Store<Service>,
    pub(super) secrets: Store<Secret>,
    pub(super) disruption_budgets: Store<PodDisruptionBudget>,
    pub(super) pods: Store<Pod>,
    /// The identities and xmrig API Secrets.
    pub(super) kept_secrets: Store<Secret>,
}

/// Write side of the caches: fed by watches in the operator
/// ([`Feeds::reflect`]), or by one LIST per kind in tests ([`Feeds::resync`]).
pub struct Feeds {
    stateful_sets: Writer<StatefulSet>,
    services: Writer<Service>,
    secrets: Writer<Secret>,
    disruption_budgets: Writer<PodDisruptionBudget>,
    pods: Writer<Pod>,
    kept_secrets: Writer<Secret>,
}

impl Debug for Feeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeds").finish_non_exhaustive()
    }
}

impl Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("stateful_sets", &self.stateful_sets.len())
            .field("services", &self.services.len())
            .field("secrets", &self.secrets.len())
            .field("disruption_budgets", &self.disruption_budgets.len())
            .field("pods", &self.pods.len())
            .field("kept_secrets", &self.kept_secrets.len())
            .finish()
    }
}

impl Caches {
    /// Empty caches, and what fills them.
    pub fn new() -> (Caches, Feeds) {
        let (stateful_sets, w1) = reflector::store();
        let (services, w2) = reflector::store();
        let (secrets, w3) = reflector::store();
        let (disruption_budgets, w4) = reflector::store();
        let (pods, w5) = reflector::store();
        let (kept_secrets, w6) = reflector::store();
        (
            Caches {
                stateful_sets,
                services,
                secrets,
                disruption_budgets,
                pods,
                kept_secrets,
            },
            Feeds {
                stateful_sets: w1,
                services: w2,
                secrets: w3,
                disruption_budgets: w4,
                pods: w5,
                kept_secrets: w6,
            },
        )
    }

    /// Waits until every cache holds its first complete list: before that, an
    /// empty cache would look like children to create.
    pub async fn wait_until_ready(&self) -> Result<(), Error> {
        let dropped = |e: reflector::store::WriterDropped| Error::CacheStopped(e.to_string());
        self.stateful_sets
            .wait_until_ready()
            .await
            .map_err(dropped)?;
        self.services.wait_until_ready().await.map_err(dropped)?;
        self.secrets.wait_until_ready().await.map_err(dropped)?;
        self.disruption_budgets
            .wait_until_ready()
            .await
            .map_err(dropped)?;
        self.pods.wait_until_ready().await.map_err(dropped)?;
        self.kept_secrets.wait_until_ready().await.map_err(dropped)
    }
}

/// The objects of `store` in `ns` that carry every label of `selector`
/// (`k=v,k=v`).
pub(super) fn select<T>(store: &Store<T>, ns: &str, selector: &str) -> Vec<std::sync::Arc<T>>
where
    T: Resource<DynamicType = ()> + Clone + 'static,
{
    let want: BTreeMap<&str, &str> = selector
        .split(',')
        .filter_map(|t| t.split_once('='))
        .collect();
    store.state_filter(|o| {
        o.namespace().as_deref() == Some(ns)
            && want
                .iter()
                .all(|(k, v)| o.labels().get(*k).map(String::as_str) == Some(*v))
    })
}

/// The object `ns/name` in `store`, if cached.
pub(super) fn get<T>(store: &Store<T>, ns: &str, name: &str) -> Option<std::sync::Arc<T>>
where
    T: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&reflector::ObjectRef::new(name).within(ns))
}

impl Feeds {
    /// Keeps the caches up to date with one watch per kind, until dropped.
    /// Watch errors are retried with kube's default backoff.
    pub fn reflect(self, client: Client) -> impl Future<Output = ()> + Send {
        let managed = || watcher::Config::default().labels(&managed_selector());
        let created = watcher::Config::default().labels(&created_selector());
        let sts = feed(self.stateful_sets, Api::all(client.clone()), managed());
        let svc = feed(self.services, Api::all(client.clone()), managed());
        let sec = feed(self.secrets, Api::all(client.clone()), managed());
        let pdb = feed(self.disruption_budgets, Api::all(client.clone()), managed());
        let pod = feed(self.pods, Api::all(client.clone()), managed());
        let kept = feed(self.kept_secrets, Api::all(client), created);
        async move {
            tokio::join!(
                drain(sts, "StatefulSet"),
                drain(svc, "Service"),
                drain(sec, "Secret"),
                drain(pdb, "PodDisruptionBudget"),
                drain(pod, "Pod"),
                drain(kept, "Secret (kept)"),
            );
        }
    }

    /// Replaces every cache with one LIST per kind, with the same selectors
    /// as the watches: what a watch's first list does, for tests against an
    /// API server that cannot stream watches.
    pub async fn resync(&mut self, client: &Client) -> Result<(), Error> {
        let (m, c) = (managed_selector(), created_selector());
        relist(&mut self.stateful_sets, client, &m).await?;
        relist(&mut self.services, client, &m).await?;
        relist(&mut self.secrets, client, &m).await?;
        relist(&mut self.disruption_budgets, client, &m).await?;
        relist(&mut self.pods, client, &m).await?;
        relist(&mut self.kept_secrets, client, &c).await
    }
}

/// Runs a reflector, logging its watch errors (retried with backoff).
async fn drain(stream: impl futures::Stream<Item = Result<(), watcher::Error>>, cache: &str) {
    let mut stream = std::pin::pin!(stream);
    while let Some(r) = stream.next().await {
        if let Err(e) = r {
            tracing::debug!(cache, error = %e, "cache watch");
        }
    }
}

/// A reflector over `api`, yielding only whether each watch step failed.
fn feed<T>(
    writer: Writer<T>,
    api: Api<T>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<(), watcher::Error>> + Send
where
    T: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    // Managed fields are never read and are a good part of each object.
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|o: &mut T| o.meta_mut().managed_fields = None);
    reflector::reflector(writer, stream).map(|r| r.map(|_| ()))
}

async fn relist<T>(writer: &mut Writer<T>, client: &Client, selector: &str) -> Result<(), Error>
where
    T: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    T: Send + Sync + 'static,
{
    let api: Api<T> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| Error::kube(format!("listing {}s", T::kind(&())), e))?;
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in list {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    Ok(())
}
