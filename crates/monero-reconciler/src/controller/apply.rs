//! Applying children: server-side apply under one field manager, skipped
//! when the object in the cluster already says everything we would.

use k8s_openapi::api::apps::v1::StatefulSet;
use serde_json::Value;

/// Whether every field of `desired` is present in `live` with the same value.
/// The API server adds defaults (and other managers add fields), so equality
/// is the wrong test; containment is the one that means "nothing to apply".
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv)) || is_empty(dv)),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (Value::Number(l), Value::Number(d)) => l.as_f64() == d.as_f64(),
        (l, d) => l == d,
    }
}

/// Empty maps and lists in the desired object are not sent back by the server.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

/// A StatefulSet's volumeClaimTemplates cannot change once created; carry the
/// live ones into the desired object and return the storage size that the
/// volumes should be grown to, if the desired one is larger.
pub fn keep_claim_templates(desired: &mut StatefulSet, live: &StatefulSet) -> Option<String> {
    let live_vct = live.spec.as_ref()?.volume_claim_templates.clone()?;
    let spec = desired.spec.as_mut()?;
    let want = spec
        .volume_claim_templates
        .as_ref()
        .and_then(|v| v.first())
        .and_then(storage_of);
    let have = live_vct.first().and_then(storage_of);
    spec.volume_claim_templates = Some(live_vct);
    match (want, have) {
        (Some(w), Some(h)) if bytes(&w)? > bytes(&h)? => Some(w),
        _ => None,
    }
}

fn storage_of(pvc: &k8s_openapi::api::core::v1::PersistentVolumeClaim) -> Option<String> {
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
    use serde_json::json;

    #[test]
    fn containment_ignores_server_defaults_but_not_changes() {
        let live = json!({"spec": {"replicas": 3, "revisionHistoryLimit": 10, "template": {"x": [1, {"a": 1, "b": 2}]}}});
        assert!(contains(
            &live,
            &json!({"spec": {"replicas": 3, "template": {"x": [1, {"a": 1}]}}})
        ));
        assert!(!contains(&live, &json!({"spec": {"replicas": 2}})));
        assert!(
            !contains(&live, &json!({"spec": {"template": {"x": [1]}}})),
            "a list must match in length"
        );
        assert!(
            contains(&live, &json!({"spec": {"labels": {}}})),
            "empty maps are not sent back"
        );
        assert!(!contains(&live, &json!({"spec": {"new": "field"}})));
        assert!(contains(&json!({"n": 1.0}), &json!({"n": 1})));
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
