//! The self-healing step: a replica whose height stopped while the others
//! went ahead is restarted by deleting its pod ([`crate::stall`] decides),
//! with an Event and a count in the operator's metrics.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::events::EventType;
use monero_crd::{Network, parse_duration};

use super::report::{self, last_poll};
use super::{Managed, State, object_key, publish};
use crate::build::{self, Desired, Owner};
use crate::error::Error;
use crate::stall;

/// Looks at the pods' last reported heights and restarts the stalled ones.
pub(super) async fn run<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
) -> Result<(), Error> {
    let Some(timeout) = timeout(obj) else {
        return Ok(());
    };
    let pods = report::list_pods(obj, state, &desired.selector).await?;
    let polled = last_poll(state, &object_key(obj));
    let seen: Vec<stall::Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| stall::Pod {
            name: p.name_any(),
            uid: p.uid().unwrap_or_default(),
            height: polled.get(&p.name_any()).and_then(|o| o.height),
        })
        .collect();
    let now = Instant::now();
    let stalled = match state.stalls.lock() {
        Ok(mut all) => {
            let clocks = all.entry(object_key(obj)).or_default();
            clocks.observe(&seen, now);
            clocks.stalled(&seen, timeout, now)
        }
        Err(_) => Vec::new(),
    };
    for s in stalled {
        restart(obj, state, &s).await?;
    }
    Ok(())
}

/// `stallTimeout`, when the check applies: not 0s, and the replicas share a
/// chain (a regtest MoneroNodeSet's replicas each keep their own).
fn timeout<K: Managed>(obj: &K) -> Option<Duration> {
    let seconds = parse_duration(obj.stall_timeout()?)?;
    let node = obj.node()?;
    let owner = Owner::of(K::KIND, obj.meta());
    let net = build::effective_network(&owner, node, K::NODE_PATH).ok()?;
    let shared_chain = net != Network::Regtest || K::PEERED;
    (seconds > 0 && shared_chain).then(|| Duration::from_secs(seconds))
}

/// Deletes the stalled pod (only that pod: the UID is a precondition), so its
/// StatefulSet makes it again, then says so.
async fn restart<K: Managed>(obj: &K, state: &State, s: &stall::Stalled) -> Result<(), Error> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let pods: Api<Pod> = Api::namespaced(state.client.clone(), &ns);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(s.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(&s.name, &params).await {
        Ok(_) => {}
        // Gone or replaced meanwhile: nothing left to restart.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(()),
        Err(e) => {
            return Err(Error::kube(
                format!("restarting stalled pod {ns}/{}", s.name),
                e,
            ));
        }
    }
    state.metrics.stalled_restart(K::KIND);
    let note = format!(
        "restarted {}: its height stayed at {} for {} min while the set reached {}",
        s.name,
        s.height,
        s.stuck_for.as_secs() / 60,
        s.top
    );
    tracing::info!(object = %object_key(obj), pod = %s.name, height = s.height, top = s.top, "restarted a stalled replica");
    publish(
        state,
        obj,
        EventType::Warning,
        "StalledReplicaRestarted",
        "Restart",
        note,
    )
    .await;
    Ok(())
}
