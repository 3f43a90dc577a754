//! Tor and I2P in a node's pod: the podconfig init container (monero-anon)
//! installs the pod's keys from the identity Secret(s) and writes torrc,
//! i2pd's configs and monerod's config file; tor and i2pd run as sidecars on
//! the pod's loopback; monerod reads the config file podconfig wrote.
//!
//! Each of tor, i2pd and monerod gets its own in-memory emptyDir, mounted only
//! in podconfig and in that container: keys never reach a node's disk, monerod
//! never sees a key, and tor never sees monerod's login.

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, ProjectedVolumeSource, SecretProjection, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use monero_anon::podconfig::{IDENTITIES_DIR, RUN_DIR};
use monero_crd::{NodeSpec, Ports};

use super::Context;
use super::meta::Owner;
use super::pod::{container_security, field_env, mount, requests};

/// The operator-made identity Secret of a set: `<pod>.tor`, `<pod>.i2p`, `rpc.tor`.
pub fn identity_secret_name(owner: &Owner) -> String {
    format!("{}-identities", owner.name)
}

/// Whether the operator makes (and keeps) identities for this node spec, and which.
pub fn generated_identities(node: &NodeSpec) -> (bool, bool) {
    (
        node.tor.enabled && node.tor.keys_secret.is_none(),
        node.i2p.enabled && node.i2p.keys_secret.is_none(),
    )
}

/// monerod's config file when Tor or I2P is on: the one podconfig wrote.
pub const MONEROD_CONFIG: &str = "/run/monero-anon/monerod/monerod.conf";

/// What Tor or I2P adds to a pod.
#[derive(Debug)]
pub struct AnonParts {
    /// podconfig.
    pub init: Container,
    /// tor and/or i2pd.
    pub sidecars: Vec<Container>,
    /// The identity (projected Secrets) and the per-container emptyDir volumes.
    pub volumes: Vec<Volume>,
    /// monerod's mount of the run directory.
    pub monerod_mount: VolumeMount,
}

/// The pod parts for Tor and I2P, or None when neither is enabled.
/// `base_config` is monerod's config file from the operator's config Secret.
pub fn parts(
    owner: &Owner,
    node: &NodeSpec,
    ports: &Ports,
    base_config: &str,
    config_dir: &str,
    ctx: &Context,
) -> Option<AnonParts> {
    let (tor, i2p) = (node.tor.enabled, node.i2p.enabled);
    if !tor && !i2p {
        return None;
    }
    let mut sources = Vec::new();
    let (gen_tor, gen_i2p) = generated_identities(node);
    if gen_tor || gen_i2p {
        sources.push(identity_source(&identity_secret_name(owner)));
    }
    for byo in [&node.tor, &node.i2p]
        .into_iter()
        .filter(|a| a.enabled)
        .filter_map(|a| a.keys_secret.as_ref())
    {
        if !sources.iter().any(|s: &VolumeProjection| {
            s.secret.as_ref().map(|x| x.name.as_str()) == Some(byo.as_str())
        }) {
            sources.push(identity_source(byo));
        }
    }
    let memory = |name: &str, limit: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity(limit.into())),
        }),
        ..Volume::default()
    };
    let mut volumes = vec![
        Volume {
            name: "identities".into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(sources),
                default_mode: Some(0o440),
            }),
            ..Volume::default()
        },
        memory("anon-monerod", "1Mi"),
    ];
    let mut init_mounts = vec![
        mount("identities", IDENTITIES_DIR, true),
        mount("config", config_dir, true),
        mount("anon-monerod", &format!("{RUN_DIR}/monerod"), false),
    ];
    if tor {
        // tor's cached consensus lives here too.
        volumes.push(memory("anon-tor", "64Mi"));
        init_mounts.push(mount("anon-tor", &format!("{RUN_DIR}/tor"), false));
    }
    if i2p {
        // i2pd's netDb lives here too.
        volumes.push(memory("anon-i2pd", "128Mi"));
        init_mounts.push(mount("anon-i2pd", &format!("{RUN_DIR}/i2pd"), false));
    }
    let mut args = vec![
        "podconfig".to_string(),
        format!("--base-config={base_config}"),
        format!("--out={RUN_DIR}"),
        format!("--rpc-port={}", ports.restricted_rpc),
        format!("--tor-inbound-port={}", ports.tor_inbound),
        format!("--i2p-inbound-port={}", ports.i2p_inbound),
    ];
    if tor {
        args.push("--tor".into());
        if node.monerod.rpc.public {
            args.push("--rpc-onion".into());
        }
    }
    if i2p {
        args.push("--i2p".into());
    }
    let init = Container {
        name: "podconfig".into(),
        image: Some(ctx.images.podconfig.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        // Explicit commands: the pod must not depend on an image's entrypoint.
        command: Some(vec!["monero-anon".into()]),
        args: Some(args),
        env: Some(vec![field_env("POD_NAME", "metadata.name")]),
        resources: Some(requests("10m", "16Mi")),
        security_context: Some(container_security()),
        volume_mounts: Some(init_mounts),
        ..Container::default()
    };
    let mut sidecars = Vec::new();
    if tor {
        sidecars.push(Container {
            name: "tor".into(),
            image: Some(ctx.images.tor.clone()),
            image_pull_policy: Some("IfNotPresent".into()),
            command: Some(vec!["tor".into()]),
            args: Some(vec!["-f".into(), format!("{RUN_DIR}/tor/torrc")]),
            resources: Some(requests("50m", "64Mi")),
            security_context: Some(container_security()),
            volume_mounts: Some(vec![mount("anon-tor", &format!("{RUN_DIR}/tor"), false)]),
            ..Container::default()
        });
    }
    if i2p {
        sidecars.push(Container {
            name: "i2pd".into(),
            image: Some(ctx.images.i2pd.clone()),
            image_pull_policy: Some("IfNotPresent".into()),
            command: Some(vec!["i2pd".into()]),
            args: Some(vec![
                format!("--datadir={RUN_DIR}/i2pd/data"),
                format!("--conf={RUN_DIR}/i2pd/i2pd.conf"),
                format!("--tunconf={RUN_DIR}/i2pd/tunnels.conf"),
                // The data directory is an emptyDir; the reseed certificates
                // are where Debian's package puts them in the image.
                "--certsdir=/usr/share/i2pd/certificates".into(),
            ]),
            resources: Some(requests("50m", "128Mi")),
            security_context: Some(container_security()),
            volume_mounts: Some(vec![mount("anon-i2pd", &format!("{RUN_DIR}/i2pd"), false)]),
            ..Container::default()
        });
    }
    Some(AnonParts {
        init,
        sidecars,
        volumes,
        monerod_mount: mount("anon-monerod", &format!("{RUN_DIR}/monerod"), true),
    })
}

fn identity_source(secret: &str) -> VolumeProjection {
    VolumeProjection {
        secret: Some(SecretProjection {
            name: secret.to_string(),
            // A replica added before its keys exist waits in Init, not with wrong keys.
            optional: Some(false),
            ..SecretProjection::default()
        }),
        ..VolumeProjection::default()
    }
}
