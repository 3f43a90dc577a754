//! Growing the replicas' volumes when `storage.size` grows: the claim
//! templates of a StatefulSet cannot change, so each claim is patched.
//!
//! It runs after every child is applied, and a claim the API server refuses
//! to grow (a StorageClass without `allowVolumeExpansion`, an unbound claim)
//! becomes a condition, not an error: one stuck volume must not hold back an
//! image upgrade or leave the status stale.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

use super::children::Growth;
use super::status::Extra;
use super::{Managed, State, apply, publish};
use crate::error::Error;

/// The condition type shown while some claims could not be grown.
pub(super) const CONDITION: &str = "VolumesResized";

/// What happened to one claim.
enum Resize {
    /// Already as large, or not there (a replica that never ran).
    Unchanged,
    /// Asked to grow.
    Requested,
    /// Refused by the API server, with its message.
    Refused(String),
}

/// Grows each claim of `growth`; returns a `VolumesResized` condition naming
/// the claims the API server refused, with its message. A Warning Event
/// goes out when that condition is new, not at every retry.
pub(super) async fn grow<K: Managed>(
    obj: &K,
    state: &State,
    growth: Option<&Growth>,
) -> Result<Option<Extra>, Error> {
    let Some(g) = growth else {
        return Ok(None);
    };
    let ns = obj
        .meta()
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(state.client.clone(), &ns);
    let mut refused = Vec::new();
    for i in 0..g.replicas {
        let claim = format!("data-{}-{i}", g.sts);
        match grow_claim(&pvcs, &ns, &claim, &g.size).await? {
            Resize::Unchanged => {}
            Resize::Requested => {
                let note = format!("asked {claim} to grow to {}", g.size);
                publish(
                    state,
                    obj,
                    EventType::Normal,
                    "VolumeResized",
                    "Resize",
                    note,
                )
                .await;
            }
            Resize::Refused(why) => {
                refused.push(format!("PersistentVolumeClaim {ns}/{claim}: {why}"))
            }
        }
    }
    if refused.is_empty() {
        return Ok(None);
    }
    let message = format!("cannot grow to {}: {}", g.size, refused.join("; "));
    let known = obj.status().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == CONDITION && c.message == message)
    });
    if !known {
        let note = message.clone();
        publish(
            state,
            obj,
            EventType::Warning,
            "ResizeRefused",
            "Resize",
            note,
        )
        .await;
    }
    Ok(Some(Extra::new(
        CONDITION,
        false,
        "ResizeRefused",
        &message,
    )))
}

async fn grow_claim(
    pvcs: &Api<PersistentVolumeClaim>,
    ns: &str,
    claim: &str,
    size: &str,
) -> Result<Resize, Error> {
    let Some(pvc) = pvcs
        .get_opt(claim)
        .await
        .map_err(|e| Error::kube(format!("reading PersistentVolumeClaim {ns}/{claim}"), e))?
    else {
        return Ok(Resize::Unchanged);
    };
    let have = pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| apply::bytes(&q.0));
    if have >= apply::bytes(size) {
        return Ok(Resize::Unchanged);
    }
    let patch = json!({"spec": {"resources": {"requests": {"storage": size}}}});
    match pvcs
        .patch(claim, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(Resize::Requested),
        Err(kube::Error::Api(s)) if refusal(s.code) => Ok(Resize::Refused(format!(
            "{} ({} {})",
            s.message, s.code, s.reason
        ))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Resize::Unchanged),
        Err(e) => Err(Error::kube(
            format!("growing PersistentVolumeClaim {ns}/{claim} to {size}"),
            e,
        )),
    }
}

/// Whether the API server said no for good (until someone changes the
/// claim or its class), rather than "not now": conflicts, throttling and
/// server errors go back as errors, to be retried with the backoff.
fn refusal(code: u16) -> bool {
    (400..500).contains(&code) && !matches!(code, 404 | 409 | 429)
}
