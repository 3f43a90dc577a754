//! Removing children no longer desired (a PDB after scaling to one, a
//! network node's Service after scaling down, a network's wallets after
//! `spec.wallets` is removed), found by the labels every
//! child carries, so that nothing else in the namespace is touched. The
//! candidates come from the caches when they are in use (no request unless
//! something is to go), otherwise from one LIST per kind.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::{Managed, State, caches, publish};
use crate::build::{self, Child, Desired, MANAGER, Owner};
use crate::error::Error;

/// Deletes what the object's labels select and the builder no longer
/// returns, with one Event listing it.
pub(super) async fn run<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
    pod_monitors: bool,
) -> Result<(), Error> {
    let owner = Owner::of(K::KIND, obj.meta());
    let mut removed = children::<K>(state, &owner, desired).await?;
    // A set has at most one PodMonitor, named after it: while one is wanted,
    // there is nothing else to remove, so no LIST.
    let wanted = desired
        .children
        .iter()
        .any(|c| matches!(c, Child::PodMonitor(_)));
    if pod_monitors && !wanted {
        removed.extend(prune_pod_monitors(state, &owner, desired).await?);
    }
    if !removed.is_empty() {
        let note = format!("removed {}", removed.join(", "));
        publish(state, obj, EventType::Normal, "Removed", "Prune", note).await;
    }
    Ok(())
}

async fn children<K: Managed>(
    state: &State,
    owner: &Owner,
    desired: &Desired,
) -> Result<Vec<String>, Error> {
    let selector = format!(
        "{}={},app.kubernetes.io/managed-by={MANAGER},{}={}",
        build::INSTANCE_LABEL,
        owner.name,
        build::PART_OF_LABEL,
        K::KIND.to_lowercase()
    );
    let ns = &owner.namespace;
    let keep_services = desired.names_of(|c| matches!(c, Child::Service(_)));
    let keep_pdbs = desired.names_of(|c| matches!(c, Child::PodDisruptionBudget(_)));
    let keep_secrets = desired.names_of(|c| matches!(c, Child::Secret(_)));
    let keep_sets = desired.names_of(|c| matches!(c, Child::StatefulSet(_)));
    let caches = state.caches();
    let services = caches.map(|c| &c.services);
    let mut removed = prune_kind::<Service>(state, services, ns, &selector, &keep_services).await?;
    if K::DISRUPTION_BUDGET {
        let pdbs = caches.map(|c| &c.disruption_budgets);
        removed.extend(
            prune_kind::<PodDisruptionBudget>(state, pdbs, ns, &selector, &keep_pdbs).await?,
        );
    }
    let secrets = caches.map(|c| &c.secrets);
    removed.extend(prune_kind::<Secret>(state, secrets, ns, &selector, &keep_secrets).await?);
    // Only a network's wallets StatefulSet can stop being wanted: a set's own
    // is always built (even at zero replicas) and goes with the set.
    if K::PEERED {
        let sets = caches.map(|c| &c.stateful_sets);
        removed.extend(prune_kind::<StatefulSet>(state, sets, ns, &selector, &keep_sets).await?);
    }
    Ok(removed)
}

async fn prune_pod_monitors(
    state: &State,
    owner: &Owner,
    desired: &Desired,
) -> Result<Vec<String>, Error> {
    let ns = &owner.namespace;
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

/// Deletes the objects of kind `T` that `selector` selects and `keep` does
/// not name. A cached candidate that is already gone (the cache lags behind
/// a deletion) answers 404: done, and not reported as removed now.
async fn prune_kind<T>(
    state: &State,
    cache: Option<&Store<T>>,
    ns: &str,
    selector: &str,
    keep: &[String],
) -> Result<Vec<String>, Error>
where
    T: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + 'static,
{
    let api: Api<T> = Api::namespaced(state.client.clone(), ns);
    let kind = T::kind(&()).to_string();
    let names: Vec<String> = match cache {
        Some(store) => caches::select(store, ns, selector)
            .iter()
            .map(|o| o.name_any())
            .collect(),
        None => api
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .map_err(|e| Error::kube(format!("listing {kind}s in {ns}"), e))?
            .items
            .into_iter()
            .map(|i| i.metadata.name.unwrap_or_default())
            .collect(),
    };
    let mut removed = Vec::new();
    for name in names {
        if keep.contains(&name) {
            continue;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => removed.push(format!("{kind}/{name}")),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::kube(format!("deleting {kind} {ns}/{name}"), e)),
        }
    }
    Ok(removed)
}
