//! What the API server refuses that a custom resource's schema cannot rule
//! out: names that are not DNS labels, malformed label and annotation keys,
//! too many annotation bytes, Secrets over 1 MiB, objects over etcd's request
//! limit. Checked here so that such a spec becomes an InvalidSpec naming the
//! field, as a condition and an Event, instead of an apply that fails on every
//! reconcile with the API server's message about a child the user never wrote.
//!
//! Config files that grow with the replicas (a network's per-node peer lists,
//! a mining set's per-replica xmrig configs) are spread over as many Secrets
//! as they need, mounted together as one volume, so a set's size is bounded by
//! [`MAX_CONFIG_SECRETS`] rather than by one Secret.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ProjectedVolumeSource, Secret, SecretProjection, SecretVolumeSource, Volume, VolumeProjection,
};

use monero_crd::PodOverrides;

use super::{Child, Owner, invalid};
use crate::error::InvalidSpec;

/// The most data a Secret holds (the API server's `MaxSecretSize`).
pub const MAX_SECRET_BYTES: usize = 1 << 20;
/// The largest object etcd stores by default (`--max-request-bytes`, 1.5 MiB).
/// Any child bigger than this is refused, whatever the API server would say.
pub const MAX_OBJECT_BYTES: usize = 3 << 19;
/// The most bytes of annotation keys and values one object may carry
/// (the API server's `TotalAnnotationSizeLimitB`).
pub const MAX_ANNOTATION_BYTES: usize = 256 << 10;
/// Data per config Secret: half a Secret's limit, so that with base64 and
/// metadata its JSON stays near 700 KiB, far from [`MAX_OBJECT_BYTES`].
pub const CONFIG_SECRET_BYTES: usize = 512 << 10;
/// Config Secrets one set may have. Every pod mounts all of them, so this
/// also bounds the memory a pod's config volume takes (16 MiB).
pub const MAX_CONFIG_SECRETS: usize = 32;

/// Why `name` is not a DNS-1035 label (what a Service name must be), if it is not.
pub fn dns1035_problem(name: &str) -> Option<String> {
    let Some(first) = name.chars().next() else {
        return Some("is empty".into());
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "contains {bad:?}: only lowercase letters, digits and '-' may appear"
        ));
    }
    if !first.is_ascii_lowercase() {
        return Some(format!(
            "starts with {first:?}: it must start with a letter"
        ));
    }
    if name.ends_with('-') {
        return Some("ends with '-': it must end with a letter or digit".into());
    }
    None
}

fn dns1123_subdomain_problem(s: &str) -> Option<String> {
    if s.len() > 253 {
        return Some(format!("is {} characters; at most 253", s.len()));
    }
    for part in s.split('.') {
        let ok = !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !part.starts_with('-')
            && !part.ends_with('-');
        if !ok {
            return Some(format!(
                "{s:?} is not a DNS subdomain (dot-separated lowercase letters, digits and '-')"
            ));
        }
    }
    None
}

/// The part of a label or annotation key after the prefix, and a label value:
/// at most 63 characters of alphanumerics, '-', '_' and '.', alphanumeric at both ends.
fn name_part_problem(s: &str, what: &str) -> Option<String> {
    if s.len() > 63 {
        return Some(format!(
            "{what} {s:?} is {} characters; at most 63",
            s.len()
        ));
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let ok = s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.starts_with(alnum)
        && s.ends_with(alnum);
    (!ok).then(|| {
        format!(
            "{what} {s:?} must be alphanumerics, '-', '_' and '.', starting and ending alphanumeric"
        )
    })
}

/// Why `key` is not a qualified name (`[prefix/]name`), the form of label
/// and annotation keys and of a topology key, if it is not.
pub fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && let Some(why) = dns1123_subdomain_problem(p)
    {
        return Some(format!("key {key:?}: the prefix {why}"));
    }
    if name.is_empty() {
        return Some(format!("key {key:?} has no name"));
    }
    name_part_problem(name, "key").map(|why| format!("{key:?}: {why}"))
}

/// Refuses labels the API server would: keys that are not qualified names,
/// values that are not label values.
pub fn check_labels(
    owner: &Owner,
    field: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), InvalidSpec> {
    for (k, v) in labels {
        if let Some(why) = qualified_name_problem(k) {
            return Err(invalid(owner, field, why));
        }
        if !v.is_empty()
            && let Some(why) = name_part_problem(v, "value")
        {
            return Err(invalid(owner, field, format!("label {k}: {why}")));
        }
    }
    Ok(())
}

/// Refuses annotation keys that are not qualified names (the API server
/// compares them in lower case).
pub fn check_annotation_keys(
    owner: &Owner,
    field: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<(), InvalidSpec> {
    for k in annotations.keys() {
        if let Some(why) = qualified_name_problem(&k.to_lowercase()) {
            return Err(invalid(owner, field, why));
        }
    }
    Ok(())
}

/// Refuses an object's annotations, the user's and the operator's together,
/// when their keys and values exceed what one object may carry.
pub fn check_annotation_size(
    owner: &Owner,
    field: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<(), InvalidSpec> {
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ANNOTATION_BYTES {
        return Err(invalid(
            owner,
            field,
            format!(
                "the annotations come to {total} bytes with the operator's; at most {MAX_ANNOTATION_BYTES} fit on one object"
            ),
        ));
    }
    Ok(())
}

/// Refuses pod overrides whose labels, annotation keys or node selector the
/// API server would refuse in the pod template. `field` is where the overrides
/// sit, such as `spec.pod`.
pub fn check_pod_overrides(
    owner: &Owner,
    field: &str,
    pod: &PodOverrides,
) -> Result<(), InvalidSpec> {
    check_labels(owner, &format!("{field}.labels"), &pod.labels)?;
    check_annotation_keys(owner, &format!("{field}.annotations"), &pod.annotations)?;
    check_labels(owner, &format!("{field}.nodeSelector"), &pod.node_selector)
}

/// Refuses children the API server would not store: a Secret with more than
/// [`MAX_SECRET_BYTES`] of data, or any object whose JSON exceeds
/// [`MAX_OBJECT_BYTES`]. The builders keep their own output far below both;
/// this catches what the user's unbounded fields (annotations, tolerations,
/// a huge login) could still add.
pub fn check_sizes(owner: &Owner, children: &[Child]) -> Result<(), InvalidSpec> {
    for child in children {
        if let Child::Secret(s) = child {
            let data: usize = s.data.iter().flatten().map(|(_, v)| v.0.len()).sum();
            if data > MAX_SECRET_BYTES {
                return Err(invalid(
                    owner,
                    "spec",
                    format!(
                        "{} would hold {data} bytes; a Secret holds at most {MAX_SECRET_BYTES}",
                        child.describe()
                    ),
                ));
            }
        }
        let json = serde_json::to_vec(child).map_err(|e| {
            invalid(
                owner,
                "spec",
                format!("{} cannot be written as JSON: {e}", child.describe()),
            )
        })?;
        if json.len() > MAX_OBJECT_BYTES {
            return Err(invalid(
                owner,
                "spec",
                format!(
                    "{} would be {} bytes of JSON; the API server stores at most {MAX_OBJECT_BYTES} (shorten the args, labels, annotations or tolerations)",
                    child.describe(),
                    json.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Config files in Secrets, and the volume that shows them all in one directory.
#[derive(Debug)]
pub struct ConfigVolume {
    /// The Secrets: `base`, then `base-1`, `base-2`, ... when the files need more.
    pub secrets: Vec<Secret>,
    /// A Secret volume while one Secret holds everything (the pod template
    /// it always had), else a projected volume of every Secret.
    pub volume: Volume,
}

/// Packs `files`, in their order, into Secrets of at most
/// [`CONFIG_SECRET_BYTES`] each. More than [`MAX_CONFIG_SECRETS`] of them, or
/// one file larger than a Secret's share, is refused on `field`.
pub fn config_volume(
    owner: &Owner,
    workload: &str,
    base: &str,
    volume_name: &str,
    files: Vec<(String, Vec<u8>)>,
    field: &str,
) -> Result<ConfigVolume, InvalidSpec> {
    let total: usize = files.iter().map(|(_, v)| v.len()).sum();
    let mut chunks: Vec<BTreeMap<String, ByteString>> = vec![BTreeMap::new()];
    let mut used = 0;
    for (key, value) in files {
        if value.len() > CONFIG_SECRET_BYTES {
            return Err(invalid(
                owner,
                field,
                format!(
                    "makes the config file {key} {} bytes; at most {CONFIG_SECRET_BYTES} fit",
                    value.len()
                ),
            ));
        }
        if used + value.len() > CONFIG_SECRET_BYTES {
            chunks.push(BTreeMap::new());
            used = 0;
        }
        used += value.len();
        if let Some(chunk) = chunks.last_mut() {
            chunk.insert(key, ByteString(value));
        }
    }
    if chunks.len() > MAX_CONFIG_SECRETS {
        return Err(invalid(
            owner,
            field,
            format!(
                "makes {total} bytes of config files, more than the {} the operator spreads over {MAX_CONFIG_SECRETS} Secrets; use fewer replicas or a smaller config",
                MAX_CONFIG_SECRETS * CONFIG_SECRET_BYTES
            ),
        ));
    }
    let name = |i: usize| {
        if i == 0 {
            base.to_string()
        } else {
            format!("{base}-{i}")
        }
    };
    let secrets: Vec<Secret> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, data)| Secret {
            metadata: owner.child_meta(name(i), workload),
            data: Some(data),
            type_: Some("Opaque".into()),
            ..Secret::default()
        })
        .collect();
    let volume = if secrets.len() == 1 {
        Volume {
            name: volume_name.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(base.into()),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }
    } else {
        Volume {
            name: volume_name.into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(
                    (0..secrets.len())
                        .map(|i| VolumeProjection {
                            secret: Some(SecretProjection {
                                name: name(i),
                                optional: Some(false),
                                ..SecretProjection::default()
                            }),
                            ..VolumeProjection::default()
                        })
                        .collect(),
                ),
                default_mode: Some(0o440),
            }),
            ..Volume::default()
        }
    };
    Ok(ConfigVolume { secrets, volume })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_and_label_values() {
        assert_eq!(qualified_name_problem("app.kubernetes.io/name"), None);
        assert_eq!(qualified_name_problem("team"), None);
        assert!(qualified_name_problem("Bad.Prefix/x").is_some());
        assert!(qualified_name_problem("a/").is_some());
        assert!(qualified_name_problem("-x").is_some());
        assert!(qualified_name_problem(&"k".repeat(64)).is_some());
        assert!(qualified_name_problem("has space").is_some());
        assert_eq!(name_part_problem("v1.2_x-y", "value"), None);
        assert!(name_part_problem("v1.", "value").is_some());
    }

    #[test]
    fn dns1035_labels() {
        assert_eq!(dns1035_problem("nodes-2"), None);
        assert_eq!(dns1035_problem("a"), None);
        for bad in ["", "1nodes", "my.nodes", "nodes-", "Nodes", "no_des"] {
            assert!(dns1035_problem(bad).is_some(), "{bad}");
        }
    }
}
