//! Sync-gated rollouts: which replicas may run a new pod template.
//!
//! The StatefulSet controller moves every replica whose ordinal is at or
//! above `rollingUpdate.partition` to the latest template, one at a time,
//! as soon as the previous one is Ready. Ready is not enough for a Monero
//! node: a new monerod may be Ready (its RPC answers) while it migrates its
//! database or falls behind the chain. So for `SyncGated` the operator owns
//! the partition: it starts held (no replica moves), lowers it by one once
//! every replica above it runs the new template and is Ready, synchronized
//! and close to the highest height in the set, and halts when one does not
//! get there in time. Everything here is pure; the controller feeds it the
//! live StatefulSet, the pods and what they reported.

use k8s_openapi::api::apps::v1::{RollingUpdateStatefulSetStrategy, StatefulSetUpdateStrategy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use monero_crd::{RolloutStatus, UpdateStrategyType};

use crate::controller::status::Observed;

/// The StatefulSet annotation holding the hash of the pod template it was
/// applied with. A template change is seen here before the StatefulSet
/// controller reports a new revision, so the partition can be held at once.
pub const TEMPLATE_HASH_ANNOTATION: &str = "utxo.com.br/template-hash";
/// The label the StatefulSet controller puts on each pod: its revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The update strategy the builder renders. A SyncGated set starts held
/// (partition = replicas: nothing moves) until the gate lowers it, so an
/// object applied without the gate (a new set, a reconcile that could not
/// read the pods) never rolls every replica at once.
pub fn sts_strategy(strategy: UpdateStrategyType, replicas: i32) -> StatefulSetUpdateStrategy {
    let (type_, partition) = match strategy {
        UpdateStrategyType::SyncGated => ("RollingUpdate", Some(replicas.max(0))),
        UpdateStrategyType::RollingUpdate => ("RollingUpdate", None),
        UpdateStrategyType::OnDelete => ("OnDelete", None),
    };
    StatefulSetUpdateStrategy {
        type_: Some(type_.into()),
        rolling_update: partition.map(|p| RollingUpdateStatefulSetStrategy {
            partition: Some(p),
            max_unavailable: None,
        }),
    }
}

/// What the gate asks of a replica before the next one moves.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// `spec.replicas`.
    pub replicas: i32,
    /// Blocks an updated replica may be below the highest one.
    pub max_height_lag: u64,
    /// Seconds one replica may take before the rollout halts.
    pub deadline_seconds: u64,
    /// Whether monerod must report itself synchronized (not on regtest,
    /// where a lone node has no one to sync from).
    pub require_sync: bool,
    /// Whether heights are comparable: the replicas share a chain (not the
    /// independent chains of a regtest MoneroNodeSet).
    pub compare_heights: bool,
}

/// What the live StatefulSet says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `status.currentRevision`.
    pub current_revision: Option<String>,
    /// `status.updateRevision`.
    pub update_revision: Option<String>,
    /// `spec.updateStrategy.rollingUpdate.partition`.
    pub partition: Option<i32>,
    /// The template hash it was applied with.
    pub template_hash: Option<String>,
}

/// One pod of the set, as the gate sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replica {
    /// Pod name.
    pub name: String,
    /// Its ordinal.
    pub ordinal: i32,
    /// Its StatefulSet revision.
    pub revision: Option<String>,
    /// Its Ready condition.
    pub ready: bool,
    /// What its RPC reported, polled after the pod became what it is now.
    pub observed: Option<Observed>,
}

/// What the gate decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The partition to apply (None: the strategy has none).
    pub partition: Option<i32>,
    /// Where the rollout stands, for the status.
    pub status: RolloutStatus,
    /// Pods on the update revision, for `status.updatedReplicas`.
    pub updated: Option<i32>,
    /// The replica the partition was just lowered to, for an Event.
    pub moved: Option<String>,
    /// The rollout halted in this decision (not before), for an Event.
    pub halted_now: bool,
}

/// Everything the gate decides from.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    /// The strategy in force.
    pub strategy: UpdateStrategyType,
    /// What the gate asks of a replica.
    pub rules: Rules,
    /// The live StatefulSet, when there is one.
    pub live: Option<&'a Live>,
    /// The hash of the template about to be applied.
    pub template_hash: &'a str,
    /// The pods.
    pub pods: &'a [Replica],
    /// The rollout in the stored status.
    pub previous: Option<&'a RolloutStatus>,
    /// Now.
    pub now: Timestamp,
}

/// Decides the partition and the rollout's status.
pub fn decide(input: &Input<'_>) -> Decision {
    let n = input.rules.replicas.max(0);
    let updated = input
        .live
        .and_then(|l| l.update_revision.as_ref())
        .map(|rev| {
            input
                .pods
                .iter()
                .filter(|p| p.revision.as_ref() == Some(rev))
                .count() as i32
        });
    let mut status = RolloutStatus {
        current_revision: input.live.and_then(|l| l.current_revision.clone()),
        update_revision: input.live.and_then(|l| l.update_revision.clone()),
        ..RolloutStatus::default()
    };
    let gated = input.strategy == UpdateStrategyType::SyncGated;
    let decision = |partition: Option<i32>, status: RolloutStatus| Decision {
        partition,
        status,
        updated,
        moved: None,
        halted_now: false,
    };
    let Some(live) = input.live.filter(|_| gated) else {
        status.partition = gated.then_some(n);
        return decision(status.partition, status);
    };
    if live.template_hash.as_deref() != Some(input.template_hash) {
        // A new template: hold every replica until the StatefulSet
        // controller has made its revision and the gate can start.
        status.partition = Some(n);
        return decision(Some(n), status);
    }
    let held = live.partition.unwrap_or(n).clamp(0, n);
    if live.observed_generation < live.generation || live.update_revision.is_none() {
        // The StatefulSet's status predates our last write: nothing to judge by.
        status.partition = Some(held);
        return decision(Some(held), status);
    }
    if at_rest(input.pods, live, n) {
        status.partition = Some(n);
        return decision(Some(n), status);
    }
    walk(input, live, held, status, updated)
}

/// Whether there is nothing to roll: every pod runs the update revision,
/// and a missing one (a scale-up) will be made on it too. A new replica is
/// not a rollout: waiting on it would halt a scale-up on mainnet, where a
/// new node syncs for days.
fn at_rest(pods: &[Replica], live: &Live, n: i32) -> bool {
    let kept: Vec<&Replica> = pods.iter().filter(|p| p.ordinal < n).collect();
    let all_updated = kept.iter().all(|p| p.revision == live.update_revision);
    let complete = kept.len() as i32 == n || live.current_revision == live.update_revision;
    all_updated && complete
}

/// Lowers the partition past every replica that has got there, stopping
/// at the first that has not.
fn walk(
    input: &Input<'_>,
    live: &Live,
    held: i32,
    mut status: RolloutStatus,
    updated: Option<i32>,
) -> Decision {
    let n = input.rules.replicas.max(0);
    let revision = live.update_revision.as_deref().unwrap_or_default();
    let top = input
        .pods
        .iter()
        .filter_map(|p| p.observed.as_ref()?.height)
        .max();
    let mut p = held;
    let mut waiting = None;
    loop {
        let lacking = (p..n)
            .rev()
            .find_map(|i| lacks(input, i, revision, top).map(|why| (i, why)));
        if let Some(found) = lacking {
            waiting = Some(found);
            break;
        }
        if p == 0 {
            break;
        }
        p -= 1;
    }
    status.partition = Some(p);
    let moved = (p < held).then(|| replica_name(input, p));
    let mut halted_now = false;
    if let Some((i, why)) = waiting {
        let name = replica_name(input, i);
        let prev = input.previous.filter(|r| {
            r.waiting_for.as_deref() == Some(name.as_str())
                && r.update_revision.as_deref() == Some(revision)
        });
        let since = prev
            .and_then(|r| r.waiting_since.clone())
            .filter(|_| moved.is_none())
            .unwrap_or(Time(input.now));
        let waited = input.now.as_second() - since.0.as_second();
        let halted = waited >= 0 && waited as u64 >= input.rules.deadline_seconds;
        halted_now = halted && !prev.is_some_and(|r| r.halted);
        status.waiting_for = Some(name);
        status.waiting_since = Some(since);
        status.message = Some(why);
        status.halted = halted;
    }
    Decision {
        partition: Some(p),
        status,
        updated,
        moved,
        halted_now,
    }
}

/// The name of the pod with ordinal `i`: from the pods when one has it, else
/// made the way the StatefulSet controller names them.
fn replica_name(input: &Input<'_>, i: i32) -> String {
    input
        .pods
        .iter()
        .find(|p| p.ordinal == i)
        .map(|p| p.name.clone())
        .or_else(|| {
            let first = input.pods.first()?;
            let base = first.name.rsplit_once('-')?.0;
            Some(format!("{base}-{i}"))
        })
        .unwrap_or_else(|| format!("replica {i}"))
}

/// What replica `i` lacks to let the next one move, if anything.
fn lacks(input: &Input<'_>, i: i32, revision: &str, top: Option<u64>) -> Option<String> {
    let Some(pod) = input.pods.iter().find(|p| p.ordinal == i) else {
        return Some(format!("{} does not exist yet", replica_name(input, i)));
    };
    let name = &pod.name;
    if pod.revision.as_deref() != Some(revision) {
        return Some(format!("{name} does not run revision {revision} yet"));
    }
    if !pod.ready {
        return Some(format!("{name} is not Ready"));
    }
    let o = pod.observed.clone().unwrap_or_default();
    let Some(height) = o.height else {
        let why = o.message.unwrap_or_else(|| "not polled yet".into());
        return Some(format!("{name}'s RPC did not answer: {why}"));
    };
    // No heights in these messages: they go to the status, and a message
    // that moved with every block would rewrite it at every reconcile.
    if input.rules.require_sync && o.synchronized != Some(true) {
        return Some(format!("{name} is not synchronized yet"));
    }
    let lag = input.rules.max_height_lag;
    match top {
        Some(top) if input.rules.compare_heights && height.saturating_add(lag) < top => Some(
            format!("{name} is more than {lag} blocks below the highest replica"),
        ),
        _ => None,
    }
}

/// A pod's ordinal, from its name.
pub fn ordinal(pod_name: &str) -> Option<i32> {
    pod_name.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "nodes-new";
    const OLD: &str = "nodes-old";

    fn rules(n: i32) -> Rules {
        Rules {
            replicas: n,
            max_height_lag: 2,
            deadline_seconds: 600,
            require_sync: true,
            compare_heights: true,
        }
    }

    fn live(partition: i32) -> Live {
        Live {
            generation: Some(2),
            observed_generation: Some(2),
            current_revision: Some(OLD.into()),
            update_revision: Some(NEW.into()),
            partition: Some(partition),
            template_hash: Some("h".into()),
        }
    }

    fn pod(i: i32, rev: &str, ready: bool, height: u64) -> Replica {
        Replica {
            name: format!("nodes-{i}"),
            ordinal: i,
            revision: Some(rev.into()),
            ready,
            observed: Some(Observed {
                height: Some(height),
                target_height: Some(height),
                synchronized: Some(true),
                ..Observed::default()
            }),
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn decide_at<'a>(
        live: &'a Live,
        pods: &'a [Replica],
        previous: Option<&'a RolloutStatus>,
        now: i64,
    ) -> Decision {
        decide(&Input {
            strategy: UpdateStrategyType::SyncGated,
            rules: rules(3),
            live: Some(live),
            template_hash: "h",
            pods,
            previous,
            now: at(now),
        })
    }

    #[test]
    fn the_builder_holds_a_gated_set_and_leaves_the_others_to_the_statefulset() {
        let s = sts_strategy(UpdateStrategyType::SyncGated, 3);
        assert_eq!(s.type_.as_deref(), Some("RollingUpdate"));
        assert_eq!(s.rolling_update.unwrap().partition, Some(3));
        assert!(
            sts_strategy(UpdateStrategyType::RollingUpdate, 3)
                .rolling_update
                .is_none()
        );
        assert_eq!(
            sts_strategy(UpdateStrategyType::OnDelete, 3)
                .type_
                .as_deref(),
            Some("OnDelete")
        );
    }

    #[test]
    fn a_new_template_holds_every_replica_even_mid_rollout() {
        let mut l = live(1);
        l.template_hash = Some("older".into());
        let pods = [
            pod(0, OLD, true, 9),
            pod(1, NEW, true, 9),
            pod(2, NEW, true, 9),
        ];
        let d = decide_at(&l, &pods, None, 0);
        assert_eq!(d.partition, Some(3));
        assert_eq!(d.moved, None);
    }

    #[test]
    fn a_stale_statefulset_status_keeps_the_partition() {
        let mut l = live(2);
        l.observed_generation = Some(1);
        let pods = [
            pod(0, OLD, true, 9),
            pod(1, OLD, true, 9),
            pod(2, NEW, true, 9),
        ];
        assert_eq!(decide_at(&l, &pods, None, 0).partition, Some(2));
    }

    #[test]
    fn at_rest_the_partition_holds_the_next_template() {
        let mut l = live(0);
        l.current_revision = Some(NEW.into());
        let pods = [
            pod(0, NEW, true, 9),
            pod(1, NEW, true, 9),
            pod(2, NEW, true, 9),
        ];
        let d = decide_at(&l, &pods, None, 0);
        assert_eq!((d.partition, d.updated), (Some(3), Some(3)));
        assert_eq!(d.status.waiting_for, None);
    }

    #[test]
    fn the_rollout_starts_at_the_highest_ordinal_and_waits_on_it() {
        let pods = [
            pod(0, OLD, true, 9),
            pod(1, OLD, true, 9),
            pod(2, OLD, true, 9),
        ];
        let d = decide_at(&live(3), &pods, None, 100);
        assert_eq!(d.partition, Some(2));
        assert_eq!(d.moved.as_deref(), Some("nodes-2"));
        assert_eq!(d.status.waiting_for.as_deref(), Some("nodes-2"));
        assert_eq!(d.status.waiting_since, Some(Time(at(100))));
        assert!(
            d.status
                .message
                .unwrap()
                .contains("does not run revision nodes-new")
        );
    }

    #[test]
    fn each_gate_names_what_the_replica_lacks() {
        let cases: Vec<(Replica, &str)> = vec![
            (pod(2, NEW, false, 9), "nodes-2 is not Ready"),
            (
                Replica {
                    observed: Some(Observed {
                        message: Some("connection refused".into()),
                        ..Observed::default()
                    }),
                    ..pod(2, NEW, true, 9)
                },
                "nodes-2's RPC did not answer: connection refused",
            ),
            (
                Replica {
                    observed: Some(Observed {
                        height: Some(5),
                        target_height: Some(9),
                        synchronized: Some(false),
                        ..Observed::default()
                    }),
                    ..pod(2, NEW, true, 9)
                },
                "nodes-2 is not synchronized yet",
            ),
            (
                pod(2, NEW, true, 6),
                "nodes-2 is more than 2 blocks below the highest replica",
            ),
        ];
        for (p2, want) in cases {
            let pods = [pod(0, OLD, true, 9), pod(1, OLD, true, 9), p2];
            let d = decide_at(&live(2), &pods, None, 0);
            assert_eq!(d.partition, Some(2), "{want}");
            assert_eq!(d.moved, None);
            assert_eq!(d.status.message.as_deref(), Some(want));
        }
    }

    #[test]
    fn within_the_lag_the_next_replica_moves() {
        let pods = [
            pod(0, OLD, true, 9),
            pod(1, OLD, true, 9),
            pod(2, NEW, true, 7),
        ];
        let d = decide_at(&live(2), &pods, None, 0);
        assert_eq!(d.partition, Some(1));
        assert_eq!(d.moved.as_deref(), Some("nodes-1"));
        assert_eq!(d.updated, Some(1));
    }

    #[test]
    fn replicas_already_updated_are_walked_past_in_one_decision() {
        // After a revert: the old revision is the update revision again, and
        // only the replica that had moved must come back.
        let pods = [
            pod(0, NEW, true, 9),
            pod(1, NEW, true, 9),
            pod(2, NEW, true, 9),
        ];
        let mut l = live(2);
        l.current_revision = Some(NEW.into());
        let mut few = pods.to_vec();
        few.pop();
        let d = decide_at(&l, &few, None, 0);
        assert_eq!(d.partition, Some(3), "a scale-up is not a rollout");
        let last = [pod(1, NEW, true, 9), pod(2, NEW, true, 9)];
        let d = decide_at(&live(0), &last, None, 0);
        assert_eq!(
            d.partition,
            Some(0),
            "nodes-0 is being recreated on the new revision"
        );
        assert!(
            d.status
                .message
                .unwrap()
                .contains("nodes-0 does not exist yet")
        );
        let d = decide_at(&l, &pods, None, 0);
        assert_eq!(d.partition, Some(3), "all on the update revision: at rest");
        let mid = [
            pod(0, NEW, true, 9),
            pod(1, NEW, true, 9),
            pod(2, OLD, false, 9),
        ];
        let d = decide_at(&live(3), &mid, None, 0);
        assert_eq!(d.partition, Some(2));
        let back = [
            pod(0, NEW, true, 9),
            pod(1, NEW, true, 9),
            pod(2, NEW, true, 9),
        ];
        let mut l = live(2);
        l.current_revision = Some(OLD.into());
        let d = decide_at(&l, &back, None, 0);
        assert_eq!(d.partition, Some(3));
        let half = [
            pod(0, NEW, true, 9),
            pod(1, OLD, true, 9),
            pod(2, NEW, true, 9),
        ];
        let d = decide_at(&live(2), &half, None, 0);
        assert_eq!(d.partition, Some(1), "past nodes-2, waiting on nodes-1");
        assert_eq!(d.status.waiting_for.as_deref(), Some("nodes-1"));
    }

    #[test]
    fn a_replica_past_the_deadline_halts_once_and_the_others_stay() {
        let pods = [
            pod(0, OLD, true, 9),
            pod(1, OLD, true, 9),
            pod(2, NEW, false, 0),
        ];
        let first = decide_at(&live(2), &pods, None, 100);
        assert!(!first.status.halted);
        let later = decide_at(&live(2), &pods, Some(&first.status), 699);
        assert!(!later.status.halted);
        assert_eq!(later.status.waiting_since, Some(Time(at(100))));
        let late = decide_at(&live(2), &pods, Some(&later.status), 700);
        assert!(late.status.halted && late.halted_now);
        assert_eq!(late.partition, Some(2));
        let again = decide_at(&live(2), &pods, Some(&late.status), 800);
        assert!(
            again.status.halted && !again.halted_now,
            "one Event, not one per reconcile"
        );
    }

    #[test]
    fn lone_regtest_chains_are_not_compared() {
        let mut r = rules(2);
        r.require_sync = false;
        r.compare_heights = false;
        let mut behind = pod(1, NEW, true, 3);
        behind.observed.as_mut().unwrap().synchronized = Some(false);
        let pods = [pod(0, OLD, true, 90), behind];
        let l = live(1);
        let d = decide(&Input {
            strategy: UpdateStrategyType::SyncGated,
            rules: r,
            live: Some(&l),
            template_hash: "h",
            pods: &pods,
            previous: None,
            now: at(0),
        });
        assert_eq!(d.partition, Some(0));
    }

    #[test]
    fn other_strategies_have_no_partition_but_report_revisions() {
        let pods = [pod(0, OLD, true, 9), pod(1, NEW, true, 9)];
        let l = live(0);
        for s in [
            UpdateStrategyType::RollingUpdate,
            UpdateStrategyType::OnDelete,
        ] {
            let d = decide(&Input {
                strategy: s,
                rules: rules(2),
                live: Some(&l),
                template_hash: "x",
                pods: &pods,
                previous: None,
                now: at(0),
            });
            assert_eq!(d.partition, None);
            assert_eq!(d.updated, Some(1));
            assert_eq!(d.status.update_revision.as_deref(), Some(NEW));
        }
    }

    #[test]
    fn ordinals_come_from_pod_names() {
        assert_eq!(ordinal("my-nodes-12"), Some(12));
        assert_eq!(ordinal("nodes"), None);
    }
}
