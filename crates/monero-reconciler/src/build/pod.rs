//! Pod pieces shared by the monerod and xmrig workloads: the restricted Pod
//! Security level, anti-affinity and the user's pod overrides.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, EnvVar, EnvVarSource, ObjectFieldSelector, PodAffinityTerm,
    PodAntiAffinity, PodSecurityContext, PodSpec, ResourceRequirements, SeccompProfile,
    SecurityContext, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use monero_crd::PodOverrides;

/// The user and group every container runs as (the images' non-root user).
pub const RUN_AS: i64 = 1000;

/// Pod-level security for the restricted Pod Security level. fsGroup makes the
/// data volume writable by the non-root user; OnRootMismatch avoids walking a
/// 300 GB volume on every start.
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// Container-level security for the restricted Pod Security level.
pub fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// Required anti-affinity when asked (pods beyond the number of domains stay
/// Pending, as the user chose), otherwise a preference to spread.
pub fn anti_affinity(
    hard: bool,
    topology_key: &str,
    selector: BTreeMap<String, String>,
) -> Affinity {
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(selector),
            ..LabelSelector::default()
        }),
        topology_key: topology_key.to_string(),
        ..PodAffinityTerm::default()
    };
    let anti = if hard {
        PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..PodAntiAffinity::default()
        }
    } else {
        PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: term,
                },
            ]),
            ..PodAntiAffinity::default()
        }
    };
    Affinity {
        pod_anti_affinity: Some(anti),
        ..Affinity::default()
    }
}

/// Applies the user's pod overrides to a pod spec.
pub fn apply_overrides(spec: &mut PodSpec, o: &PodOverrides) {
    if !o.node_selector.is_empty() {
        spec.node_selector = Some(o.node_selector.clone());
    }
    if !o.tolerations.is_empty() {
        spec.tolerations = Some(o.tolerations.clone());
    }
    if o.priority_class_name.is_some() {
        spec.priority_class_name = o.priority_class_name.clone();
    }
    if !o.image_pull_secrets.is_empty() {
        spec.image_pull_secrets = Some(o.image_pull_secrets.clone());
    }
    if let Some(t) = o.termination_grace_period_seconds {
        spec.termination_grace_period_seconds = Some(t);
    }
}

/// Pod labels: the user's, then the operator's (which win).
pub fn pod_labels(
    o: &PodOverrides,
    extra: Option<&BTreeMap<String, String>>,
    ours: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = extra.cloned().unwrap_or_default();
    l.extend(o.labels.clone());
    l.extend(ours);
    l
}

/// An env var from a field of the pod, such as its name or index.
pub fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Requests only (no limits, which would make a syncing node OOM-kill or
/// throttle); the user's resources replace them entirely.
pub fn requests(cpu: &str, memory: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
        ])),
        ..ResourceRequirements::default()
    }
}

/// A volume mount.
pub fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}
