//! Leader election on a coordination.k8s.io Lease, so two operator replicas
//! can run and only one reconciles. The holder renews every `renew`; another
//! replica takes over once `duration` passes without a renewal. Writes use
//! the Lease's resourceVersion, so two candidates cannot both win.
//!
//! As in client-go's leaderelection, the holder gives up after a renew
//! deadline shorter than `duration`, counted from the start of its last
//! successful renewal and enforced with a timer rather than by waiting for a
//! request to return: an API server that hangs must not leave the old leader
//! reconciling after another replica has taken the Lease over.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tokio::time::Instant;

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Namespace of the Lease (the operator's).
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How often the holder renews and a candidate retries (client-go's
    /// retry period). Several tries fit in a renew deadline, so one failed
    /// request does not cost the lease.
    pub renew: Duration,
}

/// Why a leader stopped leading.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    /// Another replica holds the lease, or won the race for our last write.
    #[error("another replica holds the lease")]
    Taken,
    /// No renewal succeeded within the renew deadline. The lease may still be
    /// ours, but the API server is not telling, and past the lease duration
    /// another replica may take it: the holder stops first.
    #[error(
        "not renewed within the renew deadline of {deadline:?} (last renewal {since:?} ago): {last}"
    )]
    Deadline {
        /// The renew deadline.
        deadline: Duration,
        /// Time since the start of the last successful renewal.
        since: Duration,
        /// What the last attempt got.
        last: String,
    },
}

/// What one attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This replica holds the lease.
    Leader,
    /// Another replica holds a lease that has not expired.
    Follower,
}

/// Whether a lease held by someone else has expired at `now`.
pub fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let secs = spec.lease_duration_seconds.unwrap_or(15);
    *renewed + SignedDuration::from_secs(secs.into()) < now
}

/// One acquire-or-renew attempt.
pub async fn try_acquire(
    api: &Api<Lease>,
    cfg: &LeaseConfig,
    now: Timestamp,
) -> Result<Outcome, kube::Error> {
    let secs = i32::try_from(cfg.duration.as_secs()).unwrap_or(15);
    match api.get_opt(&cfg.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(cfg.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Outcome::Leader),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Follower),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.clone().unwrap_or_default();
            let mine = spec.holder_identity.as_deref() == Some(cfg.identity.as_str());
            let free = spec.holder_identity.as_deref().is_none_or(str::is_empty);
            if !mine && !free && !expired(&spec, now) {
                return Ok(Outcome::Follower);
            }
            let mut next = spec.clone();
            if !mine {
                next.acquire_time = Some(MicroTime(now));
                next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            next.holder_identity = Some(cfg.identity.clone());
            next.lease_duration_seconds = Some(secs);
            next.renew_time = Some(MicroTime(now));
            lease.spec = Some(next);
            // replace carries the resourceVersion we read: a concurrent writer makes it fail with 409.
            match api.replace(&cfg.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(Outcome::Leader),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Follower),
                Err(e) => Err(e),
            }
        }
    }
}

/// Gives the lease up on shutdown so the other replica takes over at once.
pub async fn release(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<(), kube::Error> {
    if let Some(mut lease) = api.get_opt(&cfg.name).await?
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(cfg.identity.as_str())
    {
        spec.holder_identity = None;
        api.replace(&cfg.name, &PostParams::default(), &lease)
            .await?;
    }
    Ok(())
}

/// Tries to take the lease every `cfg.renew` until this replica leads, each
/// attempt bounded by `attempt_timeout`. Returns when the winning attempt
/// started (the renewTime it wrote is no earlier, so a renew deadline counted
/// from it ends before the lease does), or `None` once `stop` resolves.
pub async fn acquire(
    api: &Api<Lease>,
    cfg: &LeaseConfig,
    attempt_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> Option<Instant> {
    tokio::pin!(stop);
    loop {
        let started = Instant::now();
        let attempt = tokio::select! {
            () = &mut stop => return None,
            r = tokio::time::timeout(attempt_timeout, try_acquire(api, cfg, Timestamp::now())) => r,
        };
        match attempt {
            Ok(Ok(Outcome::Leader)) => return Some(started),
            Ok(Ok(Outcome::Follower)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "leader election"),
            Err(_) => tracing::warn!(
                timeout = ?attempt_timeout,
                "leader election: the API server did not answer in time"
            ),
        }
        tokio::select! {
            () = &mut stop => return None,
            () = tokio::time::sleep(cfg.renew) => {}
        }
    }
}

/// Renews the lease every `cfg.renew` until `stop` resolves or the lease is
/// lost. `renewed` is when the last successful renewal (or the acquisition)
/// started; so is what it returns on `stop`, because a leader that shuts down
/// may go on reconciling only until its renew deadline ends.
///
/// Returns [`Lost::Deadline`] once `renew_deadline` has passed since the
/// start of the last success, even while a request is still hanging: each
/// attempt is given only what remains of the deadline. With `renew_deadline` shorter than
/// `cfg.duration`, the caller learns it must stop before any other replica can
/// consider the lease expired.
pub async fn hold(
    api: &Api<Lease>,
    cfg: &LeaseConfig,
    renew_deadline: Duration,
    renewed: Instant,
    stop: impl Future<Output = ()>,
) -> Result<Instant, Lost> {
    tokio::pin!(stop);
    let mut renewed = renewed;
    let mut last = String::from("no renewal attempted yet");
    loop {
        let deadline = renewed + renew_deadline;
        let next = (Instant::now() + cfg.renew).min(deadline);
        tokio::select! {
            () = &mut stop => return Ok(renewed),
            () = tokio::time::sleep_until(next) => {}
        }
        // Taken before the renewTime we write, so the deadline never ends later than it should.
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        if left.is_zero() {
            return Err(Lost::Deadline {
                deadline: renew_deadline,
                since: started.saturating_duration_since(renewed),
                last,
            });
        }
        let attempt = tokio::select! {
            () = &mut stop => return Ok(renewed),
            r = tokio::time::timeout(left, try_acquire(api, cfg, Timestamp::now())) => r,
        };
        match attempt {
            Ok(Ok(Outcome::Leader)) => {
                renewed = started;
                last = String::from("renewed");
            }
            Ok(Ok(Outcome::Follower)) => return Err(Lost::Taken),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "renewing the lease");
                last = e.to_string();
            }
            Err(_) => last = format!("no answer from the API server within {left:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http::{Request, Response};
    use kube::Client;
    use kube::client::Body;
    use serde_json::{Value, json};

    use super::*;

    type Reply = tower_test::mock::SendResponse<Response<Body>>;

    /// The Lease endpoint of an API server that answers until told to hang.
    #[derive(Default)]
    struct Server {
        lease: Option<Value>,
        version: u64,
        hang: bool,
        /// When the last write was answered: the holder's renewal clock starts no later.
        last_write: Option<Instant>,
        /// Requests never answered; kept so that their callers keep waiting.
        held: Vec<Reply>,
    }

    fn start() -> (Api<Lease>, Arc<Mutex<Server>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = Arc::new(Mutex::new(Server::default()));
        let s = server.clone();
        tokio::spawn(async move {
            while let Some((req, reply)) = handle.next_request().await {
                let method = req.method().clone();
                let body = req.into_body().collect_bytes().await.unwrap();
                let mut s = s.lock().unwrap();
                if s.hang {
                    s.held.push(reply);
                    continue;
                }
                let (code, value) = match method.as_str() {
                    "GET" => match &s.lease {
                        Some(l) => (200, l.clone()),
                        None => (
                            404,
                            json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Failure", "reason": "NotFound", "code": 404}),
                        ),
                    },
                    _ => {
                        let mut l: Value = serde_json::from_slice(&body).unwrap();
                        s.version += 1;
                        l["metadata"]["resourceVersion"] = json!(s.version.to_string());
                        s.lease = Some(l.clone());
                        s.last_write = Some(Instant::now());
                        (200, l)
                    }
                };
                let resp = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&value).unwrap()))
                    .unwrap();
                reply.send_response(resp);
            }
        });
        (
            Api::namespaced(Client::new(service, "default"), "ns"),
            server,
        )
    }

    fn cfg(renew: Duration) -> LeaseConfig {
        LeaseConfig {
            name: "lease".into(),
            namespace: "ns".into(),
            identity: "a".into(),
            duration: Duration::from_secs(6),
            renew,
        }
    }

    #[tokio::test]
    async fn a_leader_whose_renewal_hangs_steps_down_at_the_renew_deadline() {
        let (api, server) = start();
        let cfg = cfg(Duration::from_millis(100));
        let deadline = Duration::from_secs(1);
        let renewed = acquire(&api, &cfg, deadline, std::future::pending())
            .await
            .unwrap();
        let holding = hold(&api, &cfg, deadline, renewed, std::future::pending());
        let hang = async {
            // A few renewals succeed, then every request hangs.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            server.lock().unwrap().hang = true;
            std::future::pending::<()>().await;
        };
        let lost = tokio::select! {
            r = holding => r,
            () = hang => unreachable!(),
        };
        let stopped = Instant::now();
        let last_write = server.lock().unwrap().last_write.unwrap();
        assert!(matches!(lost, Err(Lost::Deadline { .. })), "{lost:?}");
        assert!(
            stopped.duration_since(renewed) > Duration::from_millis(1500),
            "renewals that succeed keep the lease past the deadline"
        );
        let since = stopped.duration_since(last_write);
        assert!(
            since <= deadline + Duration::from_millis(300),
            "stepped down {since:?} after the last renewal"
        );
        assert!(
            !server.lock().unwrap().held.is_empty(),
            "a request was still hanging"
        );
    }

    #[tokio::test]
    async fn a_leader_steps_down_when_another_replica_holds_the_lease() {
        let (api, server) = start();
        let cfg = cfg(Duration::from_millis(50));
        let deadline = Duration::from_secs(1);
        let renewed = acquire(&api, &cfg, deadline, std::future::pending())
            .await
            .unwrap();
        {
            let mut s = server.lock().unwrap();
            let l = s.lease.as_mut().unwrap();
            l["spec"]["holderIdentity"] = json!("b");
            l["spec"]["renewTime"] = json!(Timestamp::now().to_string());
        }
        let lost = hold(&api, &cfg, deadline, renewed, std::future::pending()).await;
        assert!(matches!(lost, Err(Lost::Taken)), "{lost:?}");
    }

    #[tokio::test]
    async fn stopping_returns_at_once_even_while_a_request_hangs() {
        let (api, server) = start();
        let cfg = cfg(Duration::from_millis(50));
        let deadline = Duration::from_secs(5);
        let renewed = acquire(&api, &cfg, deadline, std::future::pending())
            .await
            .unwrap();
        server.lock().unwrap().hang = true;
        let stop = tokio::time::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let last = hold(&api, &cfg, deadline, renewed, stop).await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(last, renewed, "no renewal succeeded");
        assert!(!server.lock().unwrap().held.is_empty());
        // A candidate whose API server hangs gives up each try at its timeout, and stops when told.
        let stop = tokio::time::sleep(Duration::from_millis(500));
        assert!(
            acquire(&api, &cfg, Duration::from_millis(100), stop)
                .await
                .is_none()
        );
    }

    #[test]
    fn a_lease_expires_after_its_duration() {
        let t = Timestamp::from_second(1000).unwrap();
        let spec = LeaseSpec {
            renew_time: Some(MicroTime(t)),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        assert!(!expired(&spec, Timestamp::from_second(1014).unwrap()));
        assert!(expired(&spec, Timestamp::from_second(1016).unwrap()));
        assert!(
            expired(&LeaseSpec::default(), t),
            "a lease never renewed is free"
        );
    }
}
