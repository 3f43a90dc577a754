//! A small in-memory Kubernetes API server behind kube's `Client`, on the
//! tower-test mock service: it stores what is applied, answers gets, lists
//! (with label selectors) and deletes, records every request, and can fail
//! chosen requests. Server-side apply is modelled for one manager: the
//! applied fields win, and fields an earlier apply set but the latest one
//! no longer sends are removed. Enough to run the real reconcile against, and to count
//! exactly which requests it makes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use monero_reconciler::controller::probe::{Probe, ProbeTarget};
use monero_reconciler::controller::status::Observed;
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The request body, as text.
    pub body: String,
}

impl Seen {
    /// Whether the request changes anything.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
    /// Whether the request is an Event (a write, but about the object, not to it).
    pub fn is_event(&self) -> bool {
        self.path.contains("/events")
    }
}

#[derive(Default)]
pub struct Inner {
    pub objects: BTreeMap<String, Value>,
    pub seen: Vec<Seen>,
    /// (method, path suffix, status, message): the next matching request
    /// fails with that status and message.
    pub fail_next: Vec<(String, String, u16, String)>,
    /// The last server-side apply body at each path, to remove what the next
    /// one stops sending.
    applied: BTreeMap<String, Value>,
    version: u64,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    pub inner: Arc<Mutex<Inner>>,
}

/// The reason the API server gives with a status code.
fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        _ => "InternalError",
    }
}

/// Removes from `stored` what `before` (the previous apply) set and `after`
/// (this apply) does not send: server-side apply's rule for the fields of
/// one manager. Lists are atomic here, replaced whole by the merge.
fn drop_unsent(stored: &mut Value, before: &Value, after: &Value) {
    let (Value::Object(s), Value::Object(b)) = (stored, before) else {
        return;
    };
    for (k, bv) in b {
        match after.get(k) {
            None => {
                s.remove(k);
            }
            Some(av) if bv.is_object() && av.is_object() => {
                if let Some(sv) = s.get_mut(k) {
                    drop_unsent(sv, bv, av);
                }
            }
            Some(_) => {}
        }
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn labels_match(obj: &Value, selector: &str) -> bool {
    let labels = &obj["metadata"]["labels"];
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels[k].as_str() == Some(v),
            None => labels.get(term).is_some(),
        })
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Merges an applied object into the stored one (a simple stand-in for
/// server-side apply with a single manager: the applied fields win), with
/// JSON merge patch's rule that null removes a field.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                    continue;
                }
                match b.get_mut(k) {
                    Some(bv) if bv.is_object() && v.is_object() => merge(bv, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

impl FakeApi {
    /// A client wired to a new fake server, and the server.
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = FakeApi::default();
        let server = api.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let resp = server.answer(req).await;
                send.send_response(resp);
            }
        });
        (Client::new(service, "default"), api)
    }

    /// Puts an object in the store, at the path the API serves it from.
    pub fn put(&self, path: &str, obj: Value) {
        let mut inner = self.inner.lock().unwrap();
        inner.version += 1;
        let mut obj = obj;
        obj["metadata"]["resourceVersion"] = json!(inner.version.to_string());
        inner.objects.insert(path.to_string(), obj);
    }

    /// Takes an object out of the store, as the garbage collector would.
    pub fn remove(&self, path: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.objects.remove(path);
        inner.applied.remove(path);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.inner.lock().unwrap().objects.get(path).cloned()
    }

    pub fn paths(&self) -> Vec<String> {
        self.inner.lock().unwrap().objects.keys().cloned().collect()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn clear_seen(&self) {
        self.inner.lock().unwrap().seen.clear();
    }

    /// Writes other than Events since the last clear.
    pub fn writes(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.is_write() && !s.is_event())
            .collect()
    }

    pub fn events(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .objects
            .iter()
            .filter(|(k, _)| k.contains("/events/"))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn fail_next(&self, method: &str, path_suffix: &str, code: u16) {
        self.fail_next_with(method, path_suffix, code, "injected failure");
    }

    /// Like `fail_next`, with the message the server gives.
    pub fn fail_next_with(&self, method: &str, path_suffix: &str, code: u16, message: &str) {
        self.inner.lock().unwrap().fail_next.push((
            method.into(),
            path_suffix.into(),
            code,
            message.into(),
        ));
    }

    async fn answer(&self, req: Request<Body>) -> Response<Body> {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let apply = req
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
        let body = req.into_body().collect_bytes().await.unwrap();
        let (code, value) = self.handle(&method, &path, &query, &body, apply);
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&value).unwrap()))
            .unwrap()
    }

    fn handle(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        apply: bool,
    ) -> (u16, Value) {
        let mut inner = self.inner.lock().unwrap();
        inner.seen.push(Seen {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
        if let Some(i) = inner
            .fail_next
            .iter()
            .position(|(m, p, _, _)| m == method && path.ends_with(p.as_str()))
        {
            let (_, _, code, message) = inner.fail_next.remove(i);
            return (code, status(code, reason_of(code), &message));
        }
        inner.version += 1;
        let version = inner.version.to_string();
        match method {
            "GET" => {
                if let Some(obj) = inner.objects.get(path) {
                    return (200, obj.clone());
                }
                // A collection: list what lies directly under it.
                let prefix = format!("{path}/");
                let selector = query_param(query, "labelSelector").unwrap_or_default();
                let across = across_namespaces(path);
                let items: Vec<Value> = inner
                    .objects
                    .iter()
                    .filter(|(k, _)| {
                        (k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                            || across
                                .as_ref()
                                .is_some_and(|(base, res)| in_any_namespace(k, base, res))
                    })
                    .map(|(_, v)| v.clone())
                    .filter(|v| labels_match(v, &selector))
                    .collect();
                if is_collection(path) {
                    return (
                        200,
                        json!({"apiVersion": "v1", "kind": "List",
                        "metadata": {"resourceVersion": version}, "items": items}),
                    );
                }
                (404, status(404, "NotFound", &format!("{path} not found")))
            }
            "PATCH" => {
                let patch: Value = serde_json::from_slice(body).unwrap();
                if let Some(obj_path) = path.strip_suffix("/status") {
                    let Some(obj) = inner.objects.get_mut(obj_path) else {
                        return (404, status(404, "NotFound", "no such object"));
                    };
                    obj["status"] = patch["status"].clone();
                    obj["metadata"]["resourceVersion"] = json!(version);
                    return (200, obj.clone());
                }
                // A patch that names a resourceVersion applies only to that version.
                if let (Some(want), Some(cur)) = (
                    patch["metadata"]["resourceVersion"].as_str(),
                    inner
                        .objects
                        .get(path)
                        .and_then(|o| o["metadata"]["resourceVersion"].as_str()),
                ) && want != cur
                {
                    return (409, status(409, "Conflict", "the object has been modified"));
                }
                let before = if apply {
                    inner.applied.insert(path.to_string(), patch.clone())
                } else {
                    None
                };
                let entry = inner.objects.entry(path.to_string()).or_insert_with(|| {
                    json!({"metadata": {"uid": format!("uid-{version}"), "creationTimestamp": "2026-01-01T00:00:00Z"}})
                });
                if let Some(before) = before {
                    drop_unsent(entry, &before, &patch);
                }
                merge(entry, &patch);
                entry["metadata"]["resourceVersion"] = json!(version);
                (200, entry.clone())
            }
            "POST" => {
                let mut obj: Value = serde_json::from_slice(body).unwrap();
                let name = obj["metadata"]["name"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!(
                            "{}{}",
                            obj["metadata"]["generateName"].as_str().unwrap_or("x-"),
                            version
                        )
                    });
                obj["metadata"]["name"] = json!(name);
                obj["metadata"]["resourceVersion"] = json!(version);
                let key = format!("{path}/{name}");
                if inner.objects.contains_key(&key) {
                    return (409, status(409, "AlreadyExists", "exists"));
                }
                inner.objects.insert(key, obj.clone());
                (201, obj)
            }
            "PUT" => {
                let obj: Value = serde_json::from_slice(body).unwrap();
                let Some(cur) = inner.objects.get(path) else {
                    return (404, status(404, "NotFound", "no such object"));
                };
                if obj["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"] {
                    return (409, status(409, "Conflict", "resourceVersion changed"));
                }
                let mut obj = obj;
                obj["metadata"]["resourceVersion"] = json!(version);
                inner.objects.insert(path.to_string(), obj.clone());
                (200, obj)
            }
            "DELETE" => match inner.objects.remove(path) {
                Some(obj) => {
                    inner.applied.remove(path);
                    (200, obj)
                }
                None => (404, status(404, "NotFound", "no such object")),
            },
            _ => (405, status(405, "MethodNotAllowed", method)),
        }
    }
}

/// For a list across namespaces (`/api/v1/pods`, `/apis/apps/v1/statefulsets`),
/// the group/version prefix and the resource, as reflectors list.
fn across_namespaces(path: &str) -> Option<(String, String)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let n = match segs.first() {
        Some(&"api") => 2,
        Some(&"apis") => 3,
        _ => return None,
    };
    (segs.len() == n + 1).then(|| (format!("/{}", segs[..n].join("/")), segs[n].to_string()))
}

/// Whether `key` is `<base>/namespaces/<ns>/<resource>/<name>`.
fn in_any_namespace(key: &str, base: &str, resource: &str) -> bool {
    let Some(rest) = key.strip_prefix(&format!("{base}/namespaces/")) else {
        return false;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    segs.len() == 3 && segs[1] == resource
}

/// Collection paths end in a resource name: /api/v1/namespaces/ns/pods has
/// an even number of segments after the group/version prefix.
fn is_collection(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segs.first() {
        Some(&"api") => &segs[2..],
        Some(&"apis") => &segs[3.min(segs.len())..],
        _ => return false,
    };
    // [resource] or [namespaces, ns, resource]
    rest.len() == 1 || rest.len() == 3
}

/// Answers as a synced node at height 42 with 2 peers would, naming in its
/// version where it was asked, so tests can see which port was polled.
pub struct FixedProbe;

/// A probe whose every answer differs (a miner's hashrate moves at each poll),
/// counting its calls.
#[derive(Default)]
pub struct MovingProbe {
    pub calls: std::sync::atomic::AtomicU64,
}

impl Probe for MovingProbe {
    fn observe(&self, _t: ProbeTarget) -> BoxFuture<'static, Observed> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            Observed {
                hashrate: Some(100.0 + n as f64),
                height: Some(10 + n),
                target_height: Some(10 + n),
                synchronized: Some(true),
                ..Observed::default()
            }
        })
    }
}

impl Probe for FixedProbe {
    fn observe(&self, t: ProbeTarget) -> BoxFuture<'static, Observed> {
        Box::pin(async move {
            if t.wallets {
                let wallet = |i: i32, unlocked: u64| monero_crd::WalletStatus {
                    index: i,
                    address: Some(format!("4wallet{i}@{}", t.ip)),
                    balance: Some(unlocked + 5),
                    unlocked_balance: Some(unlocked),
                    ..monero_crd::WalletStatus::default()
                };
                return Observed {
                    wallets: Some(vec![wallet(0, 7), wallet(1, 0)]),
                    ..Observed::default()
                };
            }
            if t.xmrig {
                return Observed {
                    hashrate: Some(250.4),
                    shares_accepted: Some(3),
                    shares_rejected: Some(1),
                    version: Some(format!("6.22.2@{}", t.ip)),
                    ..Observed::default()
                };
            }
            Observed {
                height: Some(42),
                target_height: Some(42),
                synchronized: Some(true),
                incoming: Some(1),
                outgoing: Some(1),
                version: Some(format!("0.18.0.0-release@{}:{}", t.ip, t.rpc_port)),
                ..Observed::default()
            }
        })
    }
}

/// Answers with the height set for each pod IP (none for an IP not set), so a
/// test can move some replicas on and leave others behind.
#[derive(Default)]
pub struct HeightProbe {
    pub heights: Mutex<BTreeMap<String, u64>>,
}

impl HeightProbe {
    pub fn set(&self, ip: &str, height: u64) {
        self.heights.lock().unwrap().insert(ip.into(), height);
    }
}

impl Probe for HeightProbe {
    fn observe(&self, t: ProbeTarget) -> BoxFuture<'static, Observed> {
        let height = self.heights.lock().unwrap().get(&t.ip).copied();
        Box::pin(async move {
            Observed {
                height,
                target_height: height,
                synchronized: height.map(|_| true),
                message: height.is_none().then(|| "no answer".to_string()),
                ..Observed::default()
            }
        })
    }
}

/// Answers a network node's peers: by pod IP, the IPs of its connections.
#[derive(Default)]
pub struct PeersProbe {
    pub peers: Mutex<BTreeMap<String, Vec<String>>>,
}

impl Probe for PeersProbe {
    fn observe(&self, t: ProbeTarget) -> BoxFuture<'static, Observed> {
        let peer_ips = t
            .peers
            .then(|| self.peers.lock().unwrap().get(&t.ip).cloned())
            .flatten();
        Box::pin(async move {
            Observed {
                height: Some(7),
                target_height: Some(7),
                synchronized: Some(true),
                peer_ips,
                ..Observed::default()
            }
        })
    }
}
