//! `utxo.com.br/reconcile: paused`: for maintenance or debugging by hand,
//! the operator stops writing the object's children (nothing is applied,
//! grown, pruned or made), so what a person changes in a StatefulSet stays
//! as they left it. Status is still read and written, with the condition
//! `ReconciliationPaused`, so the pause shows where users look; removing the
//! annotation resumes at the next reconcile (the annotation change is one).

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use monero_crd::SetStatus;

use super::identities::Identities;
use super::report::{self, Report};
use super::status::Extra;
use super::{Managed, State, next_look, publish};
use crate::build::{self, Desired};
use crate::error::Error;

/// The annotation that pauses an object.
pub const ANNOTATION: &str = "utxo.com.br/reconcile";
/// Its value that pauses.
pub const PAUSED: &str = "paused";
const CONDITION: &str = "ReconciliationPaused";

/// Writes the status of a paused object from what its pods report, keeping
/// what only the skipped steps know (addresses, the rollout) as it was.
pub(super) async fn report<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
    ctx: &build::Context,
) -> Result<Action, Error> {
    let previous = obj.status();
    let ids = identities_of(previous);
    let rollout = previous
        .and_then(|s| s.rollout.clone())
        .map(|status| crate::rollout::Decision {
            partition: status.partition,
            updated: previous.and_then(|s| s.updated_replicas),
            status,
            moved: None,
            halted_now: false,
        });
    let note = format!(
        "annotation {ANNOTATION}: {PAUSED}: nothing is applied until it is removed; status is still read"
    );
    let report = Report {
        desired,
        ctx,
        ids: &ids,
        extra: vec![Extra::new(CONDITION, true, "Paused", &note)],
        blocked: None,
        rollout: rollout.as_ref(),
    };
    report::write(obj, state, report).await?;
    let was_paused = previous.is_some_and(|s| s.conditions.iter().any(|c| c.type_ == CONDITION));
    if !was_paused {
        publish(state, obj, EventType::Normal, "Paused", "Reconcile", note).await;
    }
    Ok(Action::requeue(next_look(obj, state)))
}

/// The addresses the stored status shows, so a pause does not blank them.
fn identities_of(previous: Option<&SetStatus>) -> Identities {
    let Some(s) = previous else {
        return Identities::default();
    };
    Identities {
        addresses: s
            .nodes
            .iter()
            .filter(|n| n.onion_address.is_some() || n.i2p_address.is_some())
            .map(|n| {
                (
                    n.name.clone(),
                    (n.onion_address.clone(), n.i2p_address.clone()),
                )
            })
            .collect(),
        rpc_onion: s.rpc_onion_address.clone(),
        created: Vec::new(),
    }
}
