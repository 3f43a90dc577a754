//! The rollout step: reads the live StatefulSet and its pods, asks the gate
//! ([`crate::rollout`]) which replicas may run the new template, and sets
//! the partition on the StatefulSet about to be applied.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use monero_crd::{Network, UpdateStrategyType};

use super::report::{self, pod_ip};
use super::{Managed, State, caches, object_key, status};
use crate::build::{self, Child, Desired, Owner};
use crate::error::Error;
use crate::rollout::{self, Decision, Live, REVISION_LABEL, Replica, Rules};

/// Decides the partition of a set with an update strategy, and writes it
/// into the desired StatefulSet. None for kinds without one (miners) or
/// when nothing was built.
pub(super) async fn gate<K: Managed>(
    obj: &K,
    state: &State,
    desired: &mut Desired,
    ctx: &build::Context,
) -> Result<Option<Decision>, Error> {
    let (Some(strategy), Some(node)) = (obj.update_strategy(), obj.node()) else {
        return Ok(None);
    };
    let replicas = obj.desired_replicas();
    let owner = Owner::of(K::KIND, obj.meta());
    let net = build::effective_network(&owner, node, K::NODE_PATH).unwrap_or_default();
    let regtest = net == Network::Regtest;
    let rules = Rules {
        replicas,
        max_height_lag: u64::from(strategy.max_height_lag),
        deadline_seconds: strategy.progress_deadline_seconds(),
        require_sync: !regtest,
        compare_heights: !regtest || K::PEERED,
    };
    let live = live_set(obj, state, &owner.name).await?;
    let pods = report::list_pods(obj, state, &desired.selector).await?;
    let gated = strategy.effective(replicas) == UpdateStrategyType::SyncGated;
    let judged = live.as_ref().filter(|_| gated);
    let replicas_seen = replicas_of(obj, state, desired, ctx, &pods, judged).await;
    let Some(sts) = stateful_set_mut(desired) else {
        return Ok(None);
    };
    let hash = sts
        .annotations()
        .get(rollout::TEMPLATE_HASH_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let decision = rollout::decide(&rollout::Input {
        strategy: strategy.effective(replicas),
        rules,
        live: live.as_ref(),
        template_hash: &hash,
        pods: &replicas_seen,
        previous: obj.status().and_then(|s| s.rollout.as_ref()),
        now: Timestamp::now(),
    });
    if let (Some(p), Some(ru)) = (
        decision.partition,
        sts.spec
            .as_mut()
            .and_then(|s| s.update_strategy.as_mut())
            .and_then(|u| u.rolling_update.as_mut()),
    ) {
        ru.partition = Some(p);
    }
    Ok(Some(decision))
}

fn stateful_set_mut(desired: &mut Desired) -> Option<&mut StatefulSet> {
    desired.children.iter_mut().find_map(|c| match c {
        Child::StatefulSet(s) => Some(s.as_mut()),
        _ => None,
    })
}

/// The live StatefulSet, from the cache when in use.
async fn live_set<K: Managed>(obj: &K, state: &State, name: &str) -> Result<Option<Live>, Error> {
    let ns = obj.namespace().unwrap_or_else(|| "default".into());
    let sts = match state.caches() {
        Some(c) => caches::get(&c.stateful_sets, &ns, name).map(|s| s.as_ref().clone()),
        None => Api::<StatefulSet>::namespaced(state.client.clone(), &ns)
            .get_opt(name)
            .await
            .map_err(|e| {
                Error::kube(format!("reading the StatefulSet of {}", object_key(obj)), e)
            })?,
    };
    Ok(sts.map(|s| live_of(&s)))
}

fn live_of(sts: &StatefulSet) -> Live {
    let status = sts.status.as_ref();
    Live {
        generation: sts.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        current_revision: status.and_then(|s| s.current_revision.clone()),
        update_revision: status.and_then(|s| s.update_revision.clone()),
        partition: sts
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition),
        template_hash: sts
            .annotations()
            .get(rollout::TEMPLATE_HASH_ANNOTATION)
            .cloned(),
    }
}

/// The pods as the gate sees them. With `judged` (a gated set's live
/// StatefulSet), those the gate is about to judge (on the update revision,
/// Ready, at or above the partition) are polled now: an earlier poll may be
/// of the pod they replaced.
async fn replicas_of<K: Managed>(
    obj: &K,
    state: &State,
    desired: &Desired,
    ctx: &build::Context,
    pods: &[Pod],
    live: Option<&Live>,
) -> Vec<Replica> {
    let recent = report::last_poll(state, &object_key(obj));
    let update = live.and_then(|l| l.update_revision.clone());
    let partition = live.and_then(|l| l.partition).unwrap_or(i32::MAX);
    let rows = pods.iter().filter_map(|p| {
        let name = p.name_any();
        let ordinal = rollout::ordinal(&name)?;
        let revision = p.labels().get(REVISION_LABEL).cloned();
        let ready = status::pod_ready(p);
        let judged = ready && ordinal >= partition && revision.is_some() && revision == update;
        let target = pod_ip(p).map(|ip| report::probe_target(obj, desired, ctx, ip));
        let cached = recent.get(&name).cloned();
        Some(async move {
            let observed = match target {
                Some(t) if judged => Some(state.probe.observe(t).await),
                _ => cached,
            };
            Replica {
                name,
                ordinal,
                revision,
                ready,
                observed,
            }
        })
    });
    futures::future::join_all(rows).await
}
