//! The apply step in two passes: read every child's live object first (who
//! holds the name, which hash it was applied from), and only when every
//! name is the object's own, apply those whose hash differs. Reading all
//! before writing any is what lets a name conflict stop the object without a
//! half-applied set of children.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::Value;

use super::{Managed, State, object_key, publish};
use super::{apply, caches};
use crate::build::{self, Child, Desired, MANAGER, Owner};
use crate::error::Error;

/// One child, read and ready to apply.
pub(super) struct Planned {
    /// `Kind namespace/name`, for messages.
    what: String,
    /// `Kind/name`, for the Applied Event.
    describe: String,
    api: Api<DynamicObject>,
    name: String,
    /// The object with its applied-hash annotation.
    body: Value,
    /// Whether the live object was applied from this very object.
    current: bool,
}

/// The StatefulSet's volumes that are smaller than the spec asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Growth {
    /// The StatefulSet, whose claims are `data-<sts>-<i>`.
    pub sts: String,
    /// How many claims may exist: the more of live and desired replicas.
    pub replicas: i32,
    /// The size to grow them to.
    pub size: String,
}

/// What applying will do.
pub(super) struct Plan {
    children: Vec<Planned>,
    /// Volumes to grow once the StatefulSet is applied.
    pub growth: Option<Growth>,
}

/// The outcome of reading the children.
pub(super) enum Checked {
    /// Every name is free or the object's own.
    Ours(Plan),
    /// Some names are held by other objects: which, and by whom.
    Taken(String),
}

/// Reads each desired child's live object: from the caches when they say it
/// is ours and applied from this very object (nothing to do, no request),
/// otherwise with a GET, since a cache may not have caught up with our last
/// write yet. PodMonitors are not cached: one GET each, only when one is
/// wanted and its CRD is there.
pub(super) async fn plan<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
    pod_monitors: bool,
) -> Result<Checked, Error> {
    let owner = Owner::of(K::KIND, obj.meta());
    let mut plan = Plan {
        children: Vec::new(),
        growth: None,
    };
    let mut taken = Vec::new();
    for child in &desired.children {
        let Some(resource) = resource_of(child, pod_monitors) else {
            continue;
        };
        let live = match cached(state, &owner, child, &resource)? {
            Some(live) if is_clean(child, &live, &owner)? => live,
            _ => read(state, &owner, child, &resource).await?,
        };
        match live
            .object
            .as_ref()
            .and_then(|l| apply::foreign_holder(&l.metadata, &owner))
        {
            Some(holder) => taken.push(format!("{} belongs to {holder}", live.what)),
            None => plan.children.push(prepare(child, live, &mut plan.growth)?),
        }
    }
    if taken.is_empty() {
        return Ok(Checked::Ours(plan));
    }
    Ok(Checked::Taken(format!(
        "{}: nothing applied; rename this {} or the other object",
        taken.join("; "),
        K::KIND
    )))
}

/// A child's name, where it is served, and what is there now.
struct Live {
    what: String,
    api: Api<DynamicObject>,
    name: String,
    object: Option<DynamicObject>,
}

/// Whether a cached copy leaves nothing to do: it exists, is ours and carries
/// the hash of what we would apply now.
fn is_clean(child: &Child, live: &Live, owner: &Owner) -> Result<bool, Error> {
    let Some(object) = &live.object else {
        return Ok(false);
    };
    if apply::foreign_holder(&object.metadata, owner).is_some() {
        return Ok(false);
    }
    let mut child = child.clone();
    if let Child::StatefulSet(sts) = &mut child {
        keep_claim_templates(sts, object)?;
    }
    let hash = apply::applied_hash(&child).map_err(|e| Error::Serialize {
        what: child.describe(),
        message: e.to_string(),
    })?;
    Ok(apply::up_to_date(&object.metadata, &hash))
}

/// The child's live object as cached; None without caches or for a kind
/// that is not cached (PodMonitors).
fn cached(
    state: &State,
    owner: &Owner,
    child: &Child,
    resource: &ApiResource,
) -> Result<Option<Live>, Error> {
    let Some(c) = state.caches() else {
        return Ok(None);
    };
    let (ns, name) = (
        owner.namespace.as_str(),
        apply::meta(child).name.clone().unwrap_or_default(),
    );
    let object = match child {
        Child::Secret(_) => dynamic(caches::get(&c.secrets, ns, &name))?,
        Child::Service(_) => dynamic(caches::get(&c.services, ns, &name))?,
        Child::StatefulSet(_) => dynamic(caches::get(&c.stateful_sets, ns, &name))?,
        Child::PodDisruptionBudget(_) => dynamic(caches::get(&c.disruption_budgets, ns, &name))?,
        Child::PodMonitor(_) => return Ok(None),
    };
    Ok(Some(Live {
        what: format!("{} {ns}/{name}", resource.kind),
        api: Api::namespaced_with(state.client.clone(), ns, resource),
        name,
        object,
    }))
}

/// A cached typed object as the untyped one a GET returns, so that both go
/// through the same checks.
fn dynamic<T: serde::Serialize>(
    object: Option<std::sync::Arc<T>>,
) -> Result<Option<DynamicObject>, Error> {
    let Some(object) = object else {
        return Ok(None);
    };
    serde_json::to_value(object.as_ref())
        .and_then(serde_json::from_value)
        .map(Some)
        .map_err(|e| Error::Serialize {
            what: "a cached object".into(),
            message: e.to_string(),
        })
}

async fn read(
    state: &State,
    owner: &Owner,
    child: &Child,
    resource: &ApiResource,
) -> Result<Live, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(state.client.clone(), &owner.namespace, resource);
    let name = apply::meta(child).name.clone().unwrap_or_default();
    let what = format!("{} {}/{name}", resource.kind, owner.namespace);
    let object = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading {what}"), e))?;
    Ok(Live {
        what,
        api,
        name,
        object,
    })
}

/// Where a child is served; None for a PodMonitor without its CRD.
fn resource_of(child: &Child, pod_monitors: bool) -> Option<ApiResource> {
    Some(match child {
        Child::Secret(_) => ApiResource::erase::<Secret>(&()),
        Child::Service(_) => ApiResource::erase::<Service>(&()),
        Child::StatefulSet(_) => ApiResource::erase::<StatefulSet>(&()),
        Child::PodDisruptionBudget(_) => ApiResource::erase::<PodDisruptionBudget>(&()),
        Child::PodMonitor(_) if pod_monitors => build::pod_monitor_resource(),
        Child::PodMonitor(_) => return None,
    })
}

/// The body to apply, with its hash annotation, and whether the live object
/// already carries that hash. A StatefulSet first takes the live claim
/// templates, which cannot change, and notes the volumes to grow instead.
fn prepare(child: &Child, live: Live, growth: &mut Option<Growth>) -> Result<Planned, Error> {
    let mut child = child.clone();
    if let (Child::StatefulSet(sts), Some(object)) = (&mut child, &live.object) {
        *growth = keep_claim_templates(sts, object)?;
    }
    let describe = child.describe();
    let serialize = |e: serde_json::Error| Error::Serialize {
        what: describe.clone(),
        message: e.to_string(),
    };
    let hash = apply::applied_hash(&child).map_err(serialize)?;
    let current = live
        .object
        .as_ref()
        .is_some_and(|l| apply::up_to_date(&l.metadata, &hash));
    apply::annotate(&mut child, &hash);
    let body = serde_json::to_value(&child).map_err(serialize)?;
    Ok(Planned {
        what: live.what,
        describe,
        api: live.api,
        name: live.name,
        body,
        current,
    })
}

/// Carries the live claim templates over (they cannot change, and a
/// different set would be refused) and says which volumes to grow instead:
/// every claim that may exist, of live replicas and of desired ones.
fn keep_claim_templates(
    sts: &mut StatefulSet,
    live: &DynamicObject,
) -> Result<Option<Growth>, Error> {
    let spec = live.data.get("spec");
    let Some(templates) = spec.and_then(|s| s.get("volumeClaimTemplates")) else {
        return Ok(None);
    };
    let templates: Vec<PersistentVolumeClaim> =
        serde_json::from_value(templates.clone()).map_err(|e| Error::Serialize {
            what: format!("the claim templates of StatefulSet {}", live.name_any()),
            message: e.to_string(),
        })?;
    let Some(size) = apply::keep_claim_templates(sts, templates) else {
        return Ok(None);
    };
    let live_replicas = spec
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(0);
    let desired_replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    Ok(Some(Growth {
        sts: sts.name_any(),
        replicas: live_replicas.max(desired_replicas),
        size,
    }))
}

/// Applies, in the builder's order (config before the workload that reads
/// it), each child whose live object was not applied from the same object.
/// Server-side apply under our field manager removes what we no longer send.
/// What was applied before a failure still gets its Event.
pub(super) async fn apply<K: Managed>(obj: &K, state: &State, plan: &Plan) -> Result<(), Error> {
    let params = PatchParams::apply(MANAGER).force();
    let mut applied = Vec::new();
    let mut result = Ok(());
    for c in plan.children.iter().filter(|c| !c.current) {
        if let Err(e) = c.api.patch(&c.name, &params, &Patch::Apply(&c.body)).await {
            result = Err(Error::kube(format!("applying {}", c.what), e));
            break;
        }
        applied.push(c.describe.clone());
    }
    if !applied.is_empty() {
        tracing::info!(object = %object_key(obj), applied = ?applied, "applied");
        let note = format!("applied {}", applied.join(", "));
        publish(state, obj, EventType::Normal, "Applied", "Apply", note).await;
    }
    result
}
