//! Applying children: server-side apply under one field manager, skipped
//! when the object in the cluster carries the hash of exactly what we would
//! send.
//!
//! Comparing the desired object with the live one cannot decide this: the
//! API server adds defaults, rewrites quantities in canonical form (`0.5` CPU
//! comes back as `500m`, `1024Mi` as `1Gi`) and other managers add fields, so
//! no comparison tells "nothing to apply" from "a field was removed". The hash
//! of what we last sent does, and server-side apply itself removes the fields
//! we stop sending.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::build::{Child, INSTANCE_LABEL, MANAGER, Owner, PART_OF_LABEL};

/// Annotation on every child: the hash of the object as the builder made it,
/// so an unchanged object is recognised without comparing it field by field.
pub const APPLIED_HASH_ANNOTATION: &str = "utxo.com.br/applied-hash";

/// The hash of a child as built (before the annotation is added). A
/// StatefulSet is hashed without its volumeClaimTemplates: they cannot change
/// once created (the live ones are sent back as they are), and the server
/// fills in their defaults, so including them would make the hash depend on
/// what the server added and on a storage size that is grown elsewhere.
pub fn applied_hash(child: &Child) -> Result<String, serde_json::Error> {
    let bytes = match child {
        Child::StatefulSet(sts) => {
            let mut sts = sts.as_ref().clone();
            if let Some(spec) = sts.spec.as_mut() {
                spec.volume_claim_templates = None;
            }
            serde_json::to_vec(&sts)?
        }
        other => serde_json::to_vec(other)?,
    };
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The metadata of a child.
pub fn meta(child: &Child) -> &ObjectMeta {
    match child {
        Child::Secret(o) => &o.metadata,
        Child::Service(o) => &o.metadata,
        Child::StatefulSet(o) => &o.metadata,
        Child::PodDisruptionBudget(o) => &o.metadata,
        Child::PodMonitor(o) => &o.metadata,
    }
}

/// The metadata of a child, to annotate it.
pub fn meta_mut(child: &mut Child) -> &mut ObjectMeta {
    match child {
        Child::Secret(o) => &mut o.metadata,
        Child::Service(o) => &mut o.metadata,
        Child::StatefulSet(o) => &mut o.metadata,
        Child::PodDisruptionBudget(o) => &mut o.metadata,
        Child::PodMonitor(o) => &mut o.metadata,
    }
}

/// Puts `hash` into the child's [`APPLIED_HASH_ANNOTATION`].
pub fn annotate(child: &mut Child, hash: &str) {
    meta_mut(child)
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(APPLIED_HASH_ANNOTATION.into(), hash.into());
}

/// Whether the live object was applied from the same desired object.
pub fn up_to_date(live: &ObjectMeta, hash: &str) -> bool {
    live.annotations
        .as_ref()
        .and_then(|a| a.get(APPLIED_HASH_ANNOTATION))
        .is_some_and(|h| h == hash)
}

/// Who holds a live object of the name a child wants, when it is not `owner`:
/// the kind and name of its controller, or a note that nobody controls it and
/// we did not make it. None when applying would not take it from anybody: it
/// is `owner`'s, or it carries the labels `owner` puts on its children (an
/// orphan of an earlier object of the same kind and name, adopted back).
pub fn foreign_holder(live: &ObjectMeta, owner: &Owner) -> Option<String> {
    let controller = live
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    if let Some(r) = controller {
        if r.uid == owner.uid {
            return None;
        }
        if r.kind == owner.kind && r.name == owner.name {
            // Deleted and made again before the garbage collector was done.
            return Some(format!(
                "an earlier {}/{} (uid {}), until the garbage collector removes it",
                r.kind, r.name, r.uid
            ));
        }
        return Some(format!("{}/{}", r.kind, r.name));
    }
    let labels = live.labels.clone().unwrap_or_default();
    let label = |k: &str| labels.get(k).map(String::as_str);
    let ours = label("app.kubernetes.io/managed-by") == Some(MANAGER)
        && label(PART_OF_LABEL) == Some(owner.kind.to_lowercase().as_str())
        && label(INSTANCE_LABEL) == Some(owner.name.as_str());
    (!ours).then(|| "no controller (not made by monero-operator for this object)".to_string())
}

/// A StatefulSet's volumeClaimTemplates cannot change once created; carry the
/// live ones into the desired object and return the storage size that the
/// volumes should be grown to, if the desired one is larger.
pub fn keep_claim_templates(
    desired: &mut StatefulSet,
    live: Vec<PersistentVolumeClaim>,
) -> Option<String> {
    let spec = desired.spec.as_mut()?;
    let want = spec
        .volume_claim_templates
        .as_ref()
        .and_then(|v| v.first())
        .and_then(storage_of);
    let have = live.first().and_then(storage_of);
    spec.volume_claim_templates = Some(live);
    match (want, have) {
        (Some(w), Some(h)) if bytes(&w)? > bytes(&h)? => Some(w),
        _ => None,
    }
}

fn storage_of(pvc: &PersistentVolumeClaim) -> Option<String> {
    pvc.spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

/// Bytes of a storage quantity such as `350Gi`, `1T` or `2000000000`; None for
/// what is not a plain storage size.
pub fn bytes(q: &str) -> Option<u128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let mult: u128 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        _ => return None,
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut total = int.checked_mul(mult)?;
    if !frac.is_empty() {
        let digits: u128 = frac.parse().ok()?;
        let scale = 10u128.checked_pow(frac.len() as u32)?;
        total += digits.checked_mul(mult)? / scale;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn owner() -> Owner {
        Owner {
            kind: "MoneroNodeSet".into(),
            name: "nodes".into(),
            namespace: "ns".into(),
            uid: "uid-1".into(),
        }
    }

    #[test]
    fn the_hash_follows_the_object_but_not_its_claim_templates() {
        let svc = |port: i32| {
            Child::Service(Box::new(
                serde_json::from_value::<Service>(serde_json::json!({
                    "metadata": {"name": "s"}, "spec": {"ports": [{"port": port}]}}))
                .unwrap(),
            ))
        };
        assert_eq!(
            applied_hash(&svc(1)).unwrap(),
            applied_hash(&svc(1)).unwrap()
        );
        assert_ne!(
            applied_hash(&svc(1)).unwrap(),
            applied_hash(&svc(2)).unwrap()
        );
        let sts = |size: &str| {
            Child::StatefulSet(Box::new(
                serde_json::from_value::<StatefulSet>(serde_json::json!({
                    "metadata": {"name": "s"}, "spec": {"selector": {}, "serviceName": "s", "template": {},
                    "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": size}}}}]}}))
                .unwrap(),
            ))
        };
        assert_eq!(
            applied_hash(&sts("1Gi")).unwrap(),
            applied_hash(&sts("2Gi")).unwrap()
        );
        let mut annotated = svc(1);
        let hash = applied_hash(&annotated).unwrap();
        annotate(&mut annotated, &hash);
        assert!(up_to_date(meta(&annotated), &hash));
        assert!(!up_to_date(meta(&annotated), "other"));
        assert!(!up_to_date(&ObjectMeta::default(), &hash));
    }

    #[test]
    fn a_child_held_by_another_controller_or_made_by_hand_is_foreign() {
        let by = |uid: &str, controller: bool| ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                kind: "MoneroNetwork".into(),
                name: "nodes".into(),
                uid: uid.into(),
                controller: Some(controller),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        };
        assert_eq!(foreign_holder(&by("uid-1", true), &owner()), None);
        assert_eq!(
            foreign_holder(&by("uid-2", true), &owner()).as_deref(),
            Some("MoneroNetwork/nodes")
        );
        assert!(foreign_holder(&by("uid-2", false), &owner()).is_some());
        let mut earlier = by("uid-0", true);
        if let Some(refs) = earlier.owner_references.as_mut() {
            refs[0].kind = "MoneroNodeSet".into();
        }
        let why = foreign_holder(&earlier, &owner()).unwrap();
        assert!(
            why.contains("an earlier MoneroNodeSet/nodes (uid uid-0)"),
            "{why}"
        );
        assert!(foreign_holder(&ObjectMeta::default(), &owner()).is_some());
        let orphan = ObjectMeta {
            labels: Some(owner().labels("monerod")),
            ..ObjectMeta::default()
        };
        assert_eq!(foreign_holder(&orphan, &owner()), None);
    }

    #[test]
    fn storage_sizes_compare_across_suffixes() {
        assert_eq!(bytes("1Gi"), Some(1 << 30));
        assert_eq!(bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes("500G"), Some(500_000_000_000));
        assert!(bytes("0.5Ti") > bytes("500Gi"));
        assert_eq!(bytes("12x"), None);
        assert_eq!(bytes("Gi"), Some(0));
    }
}
