//! Pod pieces shared by the monerod and xmrig workloads: the restricted Pod
//! Security level, anti-affinity, the user's pod overrides, and the exporter
//! sidecar with the ways Prometheus finds it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity, PodSecurityContext,
    PodSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use monero_crd::{ExporterSpec, PodMonitorSpec, PodOverrides};

use super::{Context, Owner};

/// Port of the exporter sidecar's /metrics and /ready (no common exporter uses it).
pub const EXPORTER_PORT: u16 = 18090;

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

/// The writable /tmp every container mounts (their root filesystems are read-only).
pub fn tmp_volume() -> Volume {
    Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// A named TCP container port.
pub fn port(name: &str, p: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: p.into(),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

/// The monero-exporter sidecar with `args`, serving [`EXPORTER_PORT`] on the
/// pod IP for Prometheus and the operator.
pub fn exporter_container(
    spec: &ExporterSpec,
    ctx: &Context,
    args: Vec<String>,
    mounts: Vec<VolumeMount>,
) -> Container {
    Container {
        name: "exporter".into(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| ctx.images.exporter.clone()),
        ),
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some(args),
        ports: Some(vec![port("metrics", EXPORTER_PORT)]),
        resources: Some(spec.resources.clone().unwrap_or_else(|| {
            let mut r = requests("10m", "32Mi");
            r.limits = Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("64Mi".into()),
            )]));
            r
        })),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port: IntOrString::Int(EXPORTER_PORT.into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(30),
            ..Probe::default()
        }),
        ..Container::default()
    }
}

/// Readiness from the exporter's `/ready`: the program it watches answers
/// (and, for monerod, is synchronized unless relaxed).
pub fn exporter_readiness() -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/ready".into()),
            port: IntOrString::Int(EXPORTER_PORT.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// The annotations a plain Prometheus's kubernetes_sd relabelling reads.
pub fn scrape_annotations() -> [(String, String); 2] {
    [
        ("prometheus.io/scrape".into(), "true".into()),
        ("prometheus.io/port".into(), EXPORTER_PORT.to_string()),
    ]
}

/// A PodMonitor selecting the set's `workload` pods and scraping the exporter's port.
pub fn pod_monitor(owner: &Owner, pm: &PodMonitorSpec, workload: &str) -> kube::api::DynamicObject {
    let mut meta = owner.child_meta(&owner.name, workload);
    if let Some(labels) = meta.labels.as_mut() {
        for (k, v) in &pm.labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut endpoint = serde_json::json!({"port": "metrics", "path": "/metrics"});
    if let Some(interval) = &pm.interval {
        endpoint["interval"] = serde_json::json!(interval);
    }
    let mut obj = kube::api::DynamicObject::new(&owner.name, &super::pod_monitor_resource())
        .within(&owner.namespace);
    obj.metadata = meta;
    obj.data = serde_json::json!({
        "spec": {
            "selector": {"matchLabels": owner.selector_labels(workload)},
            "podMetricsEndpoints": [endpoint],
        }
    });
    obj
}
