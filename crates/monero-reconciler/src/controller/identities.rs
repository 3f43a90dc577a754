//! Tor and I2P identities of a set's replicas: made once, kept, shown.
//!
//! The operator keeps them in one Secret per set, `<name>-identities`, with a
//! key per replica (`<pod>.tor`, `<pod>.i2p`) and the set-wide `rpc.tor`.
//! Keys are only ever added: an identity is a published address, so nothing
//! here replaces one. On scale-down they stay unless `storage.retention.whenScaled`
//! is Delete; the Secret is owned by the set (and so collected with it) only
//! when `storage.retention.whenDeleted` is Delete. Bring-your-own Secrets are
//! read and checked, never written.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use monero_anon::i2p::Destination;
use monero_anon::podconfig::{RPC_TOR_KEY, i2p_key_name, tor_key_name};
use monero_anon::tor::OnionKey;
use monero_crd::{NodeSpec, RetentionPolicy};
use serde_json::{Value, json};

use super::caches;
use crate::build::{Owner, generated_identities, identity_secret_name, invalid, secret_data};
use crate::error::{Error, InvalidSpec};

/// Label on the identity Secret (deliberately not the children's labels, so
/// pruning never touches it).
pub const IDENTITY_LABEL: &str = "utxo.com.br/identities-of";

/// The addresses the replicas serve.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identities {
    /// Onion and I2P address by pod name.
    pub addresses: BTreeMap<String, (Option<String>, Option<String>)>,
    /// The set-wide RPC onion address.
    pub rpc_onion: Option<String>,
    /// What was made in this reconcile, for an Event.
    pub created: Vec<String>,
}

/// Pod names of a set with `replicas` replicas.
fn pods(owner: &Owner, replicas: i32) -> Vec<String> {
    (0..replicas.max(0))
        .map(|i| format!("{}-{i}", owner.name))
        .collect()
}

/// The index of a pod-keyed Secret key of this set (`<name>-<i>.tor`), if it is one.
fn index_of(owner: &Owner, key: &str) -> Option<i32> {
    let stem = key
        .strip_suffix(".tor")
        .or_else(|| key.strip_suffix(".i2p"))?;
    stem.strip_prefix(&format!("{}-", owner.name))?.parse().ok()
}

/// A key a set lacks, freshly made.
#[derive(Debug)]
pub struct NewKey {
    /// Its key in the identity Secret (`<pod>.tor`, `<pod>.i2p`, `rpc.tor`).
    pub key: String,
    /// The file tor or i2pd reads.
    pub bytes: Vec<u8>,
    /// The address it serves.
    pub address: String,
}

/// The identities the operator makes for this set that `existing` lacks: one
/// per replica and generated zone, and the set-wide RPC onion when the RPC is
/// public. Shared by the reconciler and `monero-operator render --identities`.
pub fn missing(
    owner: &Owner,
    node: &NodeSpec,
    replicas: i32,
    existing: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<NewKey>, monero_anon::KeyError> {
    let (gen_tor, gen_i2p) = generated_identities(node);
    let mut out = Vec::new();
    let onion = |key: String| -> Result<NewKey, monero_anon::KeyError> {
        let k = OnionKey::generate()?;
        Ok(NewKey {
            key,
            bytes: k.secret_file(),
            address: k.address(),
        })
    };
    for pod in pods(owner, replicas) {
        if gen_tor && !existing.contains_key(&tor_key_name(&pod)) {
            out.push(onion(tor_key_name(&pod))?);
        }
        if gen_i2p && !existing.contains_key(&i2p_key_name(&pod)) {
            let d = Destination::generate()?;
            out.push(NewKey {
                key: i2p_key_name(&pod),
                bytes: d.keys_file().to_vec(),
                address: d.address(),
            });
        }
    }
    if gen_tor && node.monerod.rpc.public && !existing.contains_key(RPC_TOR_KEY) {
        out.push(onion(RPC_TOR_KEY.into())?);
    }
    Ok(out)
}

/// Whether `live`, the identity Secret, must be written: a key it lacks, a
/// key of a removed replica to drop, or this set's owner reference to add or
/// remove. The same decisions as [`ensure`], without making any key.
fn needs_write(owner: &Owner, node: &NodeSpec, replicas: i32, live: &Secret) -> bool {
    let existing = secret_data(live);
    let (gen_tor, gen_i2p) = generated_identities(node);
    let mut wanted = Vec::new();
    for pod in pods(owner, replicas) {
        if gen_tor {
            wanted.push(tor_key_name(&pod));
        }
        if gen_i2p {
            wanted.push(i2p_key_name(&pod));
        }
    }
    if gen_tor && node.monerod.rpc.public {
        wanted.push(RPC_TOR_KEY.into());
    }
    let lacks = wanted.iter().any(|k| !existing.contains_key(k));
    let drops = node.storage.retention.when_scaled == RetentionPolicy::Delete
        && existing
            .keys()
            .any(|k| index_of(owner, k).is_some_and(|i| i >= replicas));
    let owned = node.storage.retention.when_deleted == RetentionPolicy::Delete;
    let live_owned = live
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == owner.uid);
    lacks || drops || owned != live_owned
}

/// The identity Secret as first created, without owner references.
pub fn new_secret(owner: &Owner, data: &BTreeMap<String, Vec<u8>>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(identity_secret_name(owner)),
            namespace: Some(owner.namespace.clone()),
            labels: Some(BTreeMap::from([
                (IDENTITY_LABEL.to_string(), owner.name.clone()),
                (
                    "app.kubernetes.io/created-by".to_string(),
                    crate::build::MANAGER.to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// Makes missing identities, checks brought ones, and returns every address.
/// An unusable user Secret is an [`InvalidSpec`] (the inner error), naming
/// the field under `at`, where the kind keeps its node settings
/// (`spec`, or a network's `spec.template.spec`), so the message points where
/// the user wrote it.
///
/// The operator's identity Secret is read from `cached` (the cache of the
/// Secrets it made) when that copy needs no write; otherwise, or without a
/// cache, with a GET, so that a create or a conditional patch is decided on,
/// and carries the resourceVersion of, the Secret as it is now. Brought
/// Secrets are the user's, not cached: one GET each.
pub async fn ensure(
    client: &kube::Client,
    cached: Option<&Store<Secret>>,
    owner: &Owner,
    node: &NodeSpec,
    replicas: i32,
    at: &str,
) -> Result<Result<Identities, InvalidSpec>, Error> {
    let mut ids = Identities::default();
    if !node.tor.enabled && !node.i2p.enabled {
        return Ok(Ok(ids));
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), &owner.namespace);
    let pods = pods(owner, replicas);
    let (tor_field, i2p_field) = (
        format!("{at}.tor.keysSecret"),
        format!("{at}.i2p.keysSecret"),
    );
    let (gen_tor, gen_i2p) = generated_identities(node);
    let mut keys: BTreeMap<String, Vec<u8>> = BTreeMap::new();

    if gen_tor || gen_i2p {
        let name = identity_secret_name(owner);
        let clean = cached
            .and_then(|store| caches::get(store, &owner.namespace, &name))
            .filter(|s| !needs_write(owner, node, replicas, s));
        let live = match clean {
            Some(s) => Some(s.as_ref().clone()),
            None => api.get_opt(&name).await.map_err(|e| {
                Error::kube(format!("reading Secret {}/{name}", owner.namespace), e)
            })?,
        };
        let existing = live.as_ref().map(secret_data).unwrap_or_default();
        let add: BTreeMap<String, Vec<u8>> = missing(owner, node, replicas, &existing)
            .map_err(|e| Error::Serialize {
                what: "a new identity".into(),
                message: e.to_string(),
            })?
            .into_iter()
            .map(|k| {
                ids.created.push(format!("{}: {}", k.key, k.address));
                (k.key, k.bytes)
            })
            .collect();
        let remove: Vec<String> = if node.storage.retention.when_scaled == RetentionPolicy::Delete {
            existing
                .keys()
                .filter(|k| index_of(owner, k).is_some_and(|i| i >= replicas))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let owned = node.storage.retention.when_deleted == RetentionPolicy::Delete;
        let ours = owner.owner_reference();
        // Only this set's reference is added or removed; anyone else's stays.
        let live_refs = live
            .as_ref()
            .and_then(|s| s.metadata.owner_references.clone())
            .unwrap_or_default();
        let live_owned = live_refs.iter().any(|o| o.uid == owner.uid);
        let mut refs: Vec<_> = live_refs
            .into_iter()
            .filter(|o| o.uid != owner.uid)
            .collect();
        if owned {
            refs.extend(ours.clone());
        }
        let owner_refs: Option<Vec<_>> = (!refs.is_empty()).then_some(refs);
        match live {
            None => {
                let mut secret = new_secret(owner, &add);
                secret.metadata.owner_references = owner_refs;
                // Create, never apply: two reconciles racing must not both
                // publish different keys; the loser retries and reads the winner's.
                api.create(&PostParams::default(), &secret)
                    .await
                    .map_err(|e| {
                        Error::kube(format!("creating Secret {}/{name}", owner.namespace), e)
                    })?;
            }
            Some(live) if !add.is_empty() || !remove.is_empty() || owned != live_owned => {
                let mut data = serde_json::Map::new();
                for (k, v) in &add {
                    data.insert(
                        k.clone(),
                        serde_json::to_value(ByteString(v.clone())).unwrap_or(Value::Null),
                    );
                }
                for k in &remove {
                    data.insert(k.clone(), Value::Null);
                }
                // The resourceVersion we read makes a concurrent writer's
                // change fail this patch (409) instead of being overwritten:
                // the reconcile retries and reads the winner's keys.
                let patch = json!({
                    "metadata": {
                        "resourceVersion": live.metadata.resource_version,
                        "ownerReferences": owner_refs.map_or(Value::Null, |r| json!(r)),
                    },
                    "data": data,
                });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| {
                        Error::kube(
                            format!("adding identities to Secret {}/{name}", owner.namespace),
                            e,
                        )
                    })?;
            }
            Some(_) => {}
        }
        keys.extend(existing);
        for k in &remove {
            keys.remove(k);
        }
        keys.extend(add);
    }

    // Bring-your-own: read and check, never write.
    for (zone, spec, field) in [
        ("tor", &node.tor, tor_field.as_str()),
        ("i2p", &node.i2p, i2p_field.as_str()),
    ] {
        let Some(name) = spec.keys_secret.as_ref().filter(|_| spec.enabled) else {
            continue;
        };
        let Some(secret) = api
            .get_opt(name)
            .await
            .map_err(|e| Error::kube(format!("reading Secret {}/{name}", owner.namespace), e))?
        else {
            return Ok(Err(invalid(
                owner,
                field,
                format!("Secret {name} not found"),
            )));
        };
        let data = secret_data(&secret);
        for pod in &pods {
            let key = if zone == "tor" {
                tor_key_name(pod)
            } else {
                i2p_key_name(pod)
            };
            let Some(bytes) = data.get(&key) else {
                return Ok(Err(invalid(
                    owner,
                    field,
                    format!("Secret {name} has no key {key} (one per replica)"),
                )));
            };
            keys.insert(key, bytes.clone());
        }
        if zone == "tor"
            && let Some(rpc) = data.get(RPC_TOR_KEY)
        {
            keys.insert(RPC_TOR_KEY.into(), rpc.clone());
        }
    }

    // Every key parses, and gives the addresses for status.
    for pod in &pods {
        let mut onion = None;
        let mut b32 = None;
        if node.tor.enabled {
            let key = tor_key_name(pod);
            let bytes = keys.get(&key).cloned().unwrap_or_default();
            match OnionKey::from_secret_file(&bytes) {
                Ok(k) => onion = Some(k.address()),
                Err(e) => {
                    return Ok(Err(invalid(owner, &tor_field, format!("key {key}: {e}"))));
                }
            }
        }
        if node.i2p.enabled {
            let key = i2p_key_name(pod);
            let bytes = keys.get(&key).cloned().unwrap_or_default();
            match Destination::from_keys_file(&bytes) {
                Ok(d) => b32 = Some(d.address()),
                Err(e) => {
                    return Ok(Err(invalid(owner, &i2p_field, format!("key {key}: {e}"))));
                }
            }
        }
        ids.addresses.insert(pod.clone(), (onion, b32));
    }
    if node.tor.enabled
        && let Some(bytes) = keys.get(RPC_TOR_KEY)
    {
        match OnionKey::from_secret_file(bytes) {
            Ok(k) => ids.rpc_onion = Some(k.address()),
            Err(e) => {
                return Ok(Err(invalid(
                    owner,
                    &tor_field,
                    format!("key {RPC_TOR_KEY}: {e}"),
                )));
            }
        }
    }
    Ok(Ok(ids))
}
