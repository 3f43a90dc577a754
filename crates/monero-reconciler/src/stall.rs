//! Stalled replicas: which monerod to restart because its height stopped
//! moving while the others went ahead.
//!
//! A monerod stuck on a bad peer, a wedged database or a fork it cannot leave
//! still answers RPC, so no probe restarts it; it just falls behind. A replica
//! is stalled when its height has not changed for `timeout` while some other
//! replica is above it. The clock of a replica starts again when its pod is
//! replaced (a new UID) or its height moves, so one replica is restarted at
//! most once per `timeout`. The timers live in the operator's memory: a new
//! leader starts them afresh, which only delays a restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One pod, as the stall check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// Pod name.
    pub name: String,
    /// Pod UID: a replaced pod starts a new clock.
    pub uid: String,
    /// Its height, when it answered.
    pub height: Option<u64>,
}

/// Since when each pod has been at its height.
#[derive(Clone, Debug, Default)]
pub struct Clocks {
    by_uid: HashMap<String, Clock>,
}

#[derive(Clone, Copy, Debug)]
struct Clock {
    height: u64,
    since: Instant,
    restarted: bool,
}

/// A replica to restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stalled {
    /// Pod name.
    pub name: String,
    /// Pod UID, so the delete cannot hit a pod that replaced it.
    pub uid: String,
    /// The height it is stuck at.
    pub height: u64,
    /// The highest height in the set.
    pub top: u64,
    /// How long it has been there.
    pub stuck_for: Duration,
}

impl Clocks {
    /// Records what the pods report now, and forgets pods that are gone.
    pub fn observe(&mut self, pods: &[Pod], now: Instant) {
        self.by_uid
            .retain(|uid, _| pods.iter().any(|p| &p.uid == uid));
        for p in pods {
            let Some(height) = p.height else { continue };
            let clock = self.by_uid.entry(p.uid.clone()).or_insert(Clock {
                height,
                since: now,
                restarted: false,
            });
            if clock.height != height {
                *clock = Clock {
                    height,
                    since: now,
                    restarted: false,
                };
            }
        }
    }

    /// The replicas stalled for `timeout`, each once: it is marked restarted
    /// here, so a failed delete is not retried before the pod changes.
    pub fn stalled(&mut self, pods: &[Pod], timeout: Duration, now: Instant) -> Vec<Stalled> {
        let Some(top) = pods.iter().filter_map(|p| p.height).max() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in pods {
            // A replica that does not answer now is the probes' business.
            let (Some(height), Some(clock)) = (p.height, self.by_uid.get_mut(&p.uid)) else {
                continue;
            };
            let stuck_for = now.saturating_duration_since(clock.since);
            let behind = clock.height == height && height < top;
            if clock.restarted || !behind || stuck_for < timeout {
                continue;
            }
            clock.restarted = true;
            out.push(Stalled {
                name: p.name.clone(),
                uid: p.uid.clone(),
                height: clock.height,
                top,
                stuck_for,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str, height: Option<u64>) -> Pod {
        Pod {
            name: name.into(),
            uid: uid.into(),
            height,
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_replica_left_behind_for_the_timeout_is_restarted_once() {
        let t0 = Instant::now();
        let mut c = Clocks::default();
        let at = |h0: u64, h1: u64| vec![pod("n-0", "a", Some(h0)), pod("n-1", "b", Some(h1))];
        c.observe(&at(100, 100), t0);
        assert!(c.stalled(&at(100, 100), 30 * MIN, t0).is_empty());
        // n-1 moves on, n-0 stays: stalled only once 30 minutes have passed.
        c.observe(&at(100, 110), t0 + 10 * MIN);
        assert!(c.stalled(&at(100, 110), 30 * MIN, t0 + 10 * MIN).is_empty());
        c.observe(&at(100, 120), t0 + 30 * MIN);
        let s = c.stalled(&at(100, 120), 30 * MIN, t0 + 30 * MIN);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].name.as_str(), s[0].height, s[0].top),
            ("n-0", 100, 120)
        );
        assert_eq!(s[0].stuck_for, 30 * MIN);
        // Not again for the same pod, however long it stays.
        c.observe(&at(100, 130), t0 + 90 * MIN);
        assert!(c.stalled(&at(100, 130), 30 * MIN, t0 + 90 * MIN).is_empty());
    }

    #[test]
    fn a_new_pod_or_a_moving_height_starts_the_clock_again() {
        let t0 = Instant::now();
        let mut c = Clocks::default();
        c.observe(&[pod("n-0", "a", Some(5)), pod("n-1", "b", Some(9))], t0);
        // n-0 moves by one block at minute 20: not stalled at minute 30.
        let moved = [pod("n-0", "a", Some(6)), pod("n-1", "b", Some(9))];
        c.observe(&moved, t0 + 20 * MIN);
        assert!(c.stalled(&moved, 30 * MIN, t0 + 30 * MIN).is_empty());
        // The pod was replaced at minute 40 (new UID, same height): a new clock.
        let replaced = [pod("n-0", "c", Some(6)), pod("n-1", "b", Some(9))];
        c.observe(&replaced, t0 + 40 * MIN);
        assert!(c.stalled(&replaced, 30 * MIN, t0 + 60 * MIN).is_empty());
        assert_eq!(c.stalled(&replaced, 30 * MIN, t0 + 70 * MIN).len(), 1);
    }

    #[test]
    fn nobody_is_stalled_when_nobody_moves_or_nobody_answers() {
        let t0 = Instant::now();
        let mut c = Clocks::default();
        // A regtest network that nobody mines: everyone at the same height.
        let still = [pod("n-0", "a", Some(1)), pod("n-1", "b", Some(1))];
        c.observe(&still, t0);
        assert!(c.stalled(&still, MIN, t0 + 60 * MIN).is_empty());
        // A replica that does not answer is the probes' business, not this.
        let silent = [pod("n-0", "a", None), pod("n-1", "b", Some(3))];
        c.observe(&silent, t0 + 61 * MIN);
        let s = c.stalled(&silent, MIN, t0 + 200 * MIN);
        assert!(s.iter().all(|s| s.name != "n-0"), "{s:?}");
    }
}
