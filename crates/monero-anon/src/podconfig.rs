//! The init container of a node's pod: from the pod's identity keys (a Secret
//! mounted read-only) and monerod's base config file, it writes what tor, i2pd
//! and monerod read, into a directory the pod's containers share.
//!
//! [`plan`] is pure: it returns the files to write with their modes, so the
//! whole output can be tested without touching a disk; the binary writes them.
//!
//! Layout of the output directory. In the pod, `tor/`, `i2pd/` and `monerod/`
//! are three separate in-memory emptyDirs, each mounted only in podconfig and
//! in the one container that reads it, so monerod never sees a key and tor
//! never sees monerod's login; podconfig creates what is inside them.
//!
//! ```text
//! tor/torrc                tor/data/ (0700)
//! tor/p2p/ (0700)          hs_ed25519_secret_key, hs_ed25519_public_key, hostname
//! tor/rpc/ (0700)          the same, for the set-wide RPC onion, when it is served
//! i2pd/i2pd.conf           i2pd/tunnels.conf
//! i2pd/data/ (0700)        p2p.dat
//! monerod/monerod.conf     the base config, then tx-proxy and anonymous-inbound lines
//! monerod/addresses        `tor <onion>` / `i2p <b32>` lines, for logs and tests
//! ```

use std::net::SocketAddr;

use crate::i2p::Destination;
use crate::render::{self, I2pdConf, Ports, ServerTunnel, Torrc};
use crate::tor::{self, OnionKey};
use crate::{KeyError, malformed};

/// Where the identity Secret is mounted in the init container.
pub const IDENTITIES_DIR: &str = "/etc/monero-anon/identities";
/// The shared directory podconfig fills (an emptyDir).
pub const RUN_DIR: &str = "/run/monero-anon";
/// The identity Secret key holding the set-wide RPC onion key.
pub const RPC_TOR_KEY: &str = "rpc.tor";

/// The identity Secret key holding a pod's onion key (tor's secret key file).
pub fn tor_key_name(pod: &str) -> String {
    format!("{pod}.tor")
}

/// The identity Secret key holding a pod's I2P keys file.
pub fn i2p_key_name(pod: &str) -> String {
    format!("{pod}.i2p")
}

/// What podconfig is given.
#[derive(Clone, Debug)]
pub struct Input {
    /// This pod's name.
    pub pod: String,
    /// The output directory as the other containers see it.
    pub run_dir: String,
    /// monerod's base config file content (login, peers), or empty.
    pub base_config: String,
    /// This pod's onion key file, when the pod is served over Tor.
    pub tor_key: Option<Vec<u8>>,
    /// The set-wide RPC onion key file, when the restricted RPC is served over Tor.
    pub rpc_tor_key: Option<Vec<u8>>,
    /// This pod's I2P keys file, when the pod is served over I2P.
    pub i2p_keys: Option<Vec<u8>>,
    /// Ports.
    pub ports: Ports,
    /// i2pd's NTCP2 port.
    pub ntcp2_port: u16,
    /// Let i2pd use SSU2 (UDP) too.
    pub i2p_ssu2: bool,
    /// Extra torrc lines (tests: a dead loopback bridge).
    pub torrc_extra: Vec<String>,
    /// Extra i2pd.conf lines (tests: a private netid, loopback only).
    pub i2pd_extra: Vec<String>,
}

/// One file to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Path relative to the output directory.
    pub path: String,
    /// Unix mode.
    pub mode: u32,
    /// Content.
    pub bytes: Vec<u8>,
}

/// What podconfig writes, and the addresses it serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Directories to create (relative), with their modes, parents first.
    pub dirs: Vec<(String, u32)>,
    /// Files.
    pub files: Vec<File>,
    /// The pod's onion address.
    pub onion: Option<String>,
    /// The set-wide RPC onion address.
    pub rpc_onion: Option<String>,
    /// The pod's I2P address.
    pub b32: Option<String>,
}

fn hidden_service(plan: &mut Plan, dir: &str, key: &OnionKey) {
    plan.dirs.push((dir.to_string(), 0o700));
    plan.files.push(File {
        path: format!("{dir}/{}", tor::SECRET_FILE),
        mode: 0o600,
        bytes: key.secret_file(),
    });
    plan.files.push(File {
        path: format!("{dir}/{}", tor::PUBLIC_FILE),
        mode: 0o600,
        bytes: key.public_file(),
    });
    plan.files.push(File {
        path: format!("{dir}/{}", tor::HOSTNAME_FILE),
        mode: 0o600,
        bytes: key.hostname_file().into_bytes(),
    });
}

/// Everything to write for one pod. Malformed keys are refused with the
/// Secret key's name, never replaced.
pub fn plan(input: &Input) -> Result<Plan, KeyError> {
    let mut p = Plan::default();
    let run = input.run_dir.trim_end_matches('/');
    let mut monerod_onion = None;
    if let Some(bytes) = &input.tor_key {
        let key =
            OnionKey::from_secret_file(bytes).map_err(|e| rename(e, &tor_key_name(&input.pod)))?;
        p.dirs.push(("tor/data".into(), 0o700));
        hidden_service(&mut p, "tor/p2p", &key);
        let mut extra = Vec::new();
        let mut ports = input.ports.clone();
        if let Some(rpc_bytes) = &input.rpc_tor_key {
            let rpc = OnionKey::from_secret_file(rpc_bytes).map_err(|e| rename(e, RPC_TOR_KEY))?;
            hidden_service(&mut p, "tor/rpc", &rpc);
            if let Some((virtual_port, target)) = ports.rpc.take() {
                extra.push(format!("HiddenServiceDir {run}/tor/rpc"));
                extra.push("HiddenServiceVersion 3".into());
                extra.push(format!("HiddenServicePort {virtual_port} {target}"));
            }
            p.rpc_onion = Some(rpc.address());
        } else {
            ports.rpc = None;
        }
        extra.extend(input.torrc_extra.iter().cloned());
        let torrc = render::torrc(&Torrc {
            data_dir: format!("{run}/tor/data"),
            hidden_service_dir: format!("{run}/tor/p2p"),
            ports,
            extra,
        });
        p.files.push(File {
            path: "tor/torrc".into(),
            mode: 0o644,
            bytes: torrc.into_bytes(),
        });
        monerod_onion = Some(key.address());
        p.onion = Some(key.address());
    }
    if let Some(bytes) = &input.i2p_keys {
        let d =
            Destination::from_keys_file(bytes).map_err(|e| rename(e, &i2p_key_name(&input.pod)))?;
        p.dirs.push(("i2pd/data".into(), 0o700));
        p.files.push(File {
            path: "i2pd/data/p2p.dat".into(),
            mode: 0o600,
            bytes: d.keys_file().to_vec(),
        });
        let conf = render::i2pd_conf(&I2pdConf {
            ports: input.ports.clone(),
            ntcp2_port: input.ntcp2_port,
            ssu2: input.i2p_ssu2,
            web_console: None,
            extra: input.i2pd_extra.clone(),
        });
        p.files.push(File {
            path: "i2pd/i2pd.conf".into(),
            mode: 0o644,
            bytes: conf.into_bytes(),
        });
        let tunnels = render::tunnels_conf(&[ServerTunnel {
            name: "monero-p2p".into(),
            keys: "p2p.dat".into(),
            target: input.ports.i2p_inbound,
        }]);
        p.files.push(File {
            path: "i2pd/tunnels.conf".into(),
            mode: 0o644,
            bytes: tunnels.into_bytes(),
        });
        p.b32 = Some(d.address());
    }
    let mut conf = input.base_config.clone();
    if !conf.is_empty() && !conf.ends_with('\n') {
        conf.push('\n');
    }
    conf.push_str("# added by monero-anon podconfig\n");
    for flag in render::monerod_flags(&input.ports, monerod_onion.as_deref(), p.b32.as_deref()) {
        // The config file takes the flags without their leading dashes.
        conf.push_str(flag.trim_start_matches('-'));
        conf.push('\n');
    }
    p.files.push(File {
        path: "monerod/monerod.conf".into(),
        mode: 0o640,
        bytes: conf.into_bytes(),
    });
    let mut addresses = String::new();
    for (zone, a) in [
        ("tor", &p.onion),
        ("tor-rpc", &p.rpc_onion),
        ("i2p", &p.b32),
    ] {
        if let Some(a) = a {
            addresses.push_str(&format!("{zone} {a}\n"));
        }
    }
    p.files.push(File {
        path: "monerod/addresses".into(),
        mode: 0o644,
        bytes: addresses.into_bytes(),
    });
    Ok(p)
}

fn rename(e: KeyError, key: &str) -> KeyError {
    match e {
        KeyError::Malformed { reason, .. } => {
            malformed(&format!("identity Secret key {key}"), reason)
        }
        other => other,
    }
}

/// The loopback address of a port, for tests and defaults.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Input {
        Input {
            pod: "nodes-0".into(),
            run_dir: RUN_DIR.into(),
            base_config: "rpc-login=u:p".into(),
            tor_key: None,
            rpc_tor_key: None,
            i2p_keys: None,
            ports: Ports::pod_defaults(Some(18089)),
            ntcp2_port: 4567,
            i2p_ssu2: true,
            torrc_extra: vec![],
            i2pd_extra: vec![],
        }
    }

    fn file<'a>(p: &'a Plan, path: &str) -> &'a File {
        p.files.iter().find(|f| f.path == path).unwrap()
    }

    fn text(p: &Plan, path: &str) -> String {
        String::from_utf8(file(p, path).bytes.clone()).unwrap()
    }

    #[test]
    fn neither_network_leaves_the_base_config_alone() {
        let p = plan(&input()).unwrap();
        assert_eq!(
            text(&p, "monerod/monerod.conf"),
            "rpc-login=u:p\n# added by monero-anon podconfig\n"
        );
        assert!(p.dirs.is_empty() && p.onion.is_none() && p.b32.is_none());
    }

    #[test]
    fn tor_and_i2p_give_keys_configs_and_monerod_lines() {
        let key = OnionKey::generate().unwrap();
        let rpc = OnionKey::generate().unwrap();
        let dest = Destination::generate().unwrap();
        let mut i = input();
        i.tor_key = Some(key.secret_file());
        i.rpc_tor_key = Some(rpc.secret_file());
        i.i2p_keys = Some(dest.keys_file().to_vec());
        let p = plan(&i).unwrap();
        assert_eq!(p.onion.as_deref(), Some(key.address().as_str()));
        assert_eq!(p.rpc_onion.as_deref(), Some(rpc.address().as_str()));
        assert_eq!(p.b32.as_deref(), Some(dest.address().as_str()));
        assert!(
            p.dirs.contains(&("tor/p2p".to_string(), 0o700))
                && p.dirs.contains(&("tor/rpc".to_string(), 0o700))
        );
        assert_eq!(file(&p, "tor/p2p/hs_ed25519_secret_key").mode, 0o600);
        assert_eq!(
            file(&p, "tor/rpc/hostname").bytes,
            rpc.hostname_file().into_bytes()
        );
        let torrc = text(&p, "tor/torrc");
        assert!(
            torrc.contains("HiddenServiceDir /run/monero-anon/tor/p2p\n"),
            "{torrc}"
        );
        assert!(
            torrc.contains("HiddenServicePort 18083 127.0.0.1:18083\n"),
            "{torrc}"
        );
        assert!(torrc.contains("HiddenServiceDir /run/monero-anon/tor/rpc\nHiddenServiceVersion 3\nHiddenServicePort 18089 127.0.0.1:18089\n"), "{torrc}");
        let conf = text(&p, "monerod/monerod.conf");
        assert!(conf.starts_with("rpc-login=u:p\n"));
        assert!(
            conf.contains(&format!(
                "anonymous-inbound={}:18083,127.0.0.1:18083,64\n",
                key.address()
            )),
            "{conf}"
        );
        assert!(conf.contains("tx-proxy=tor,127.0.0.1:9050,16\n"));
        assert!(conf.contains(&format!(
            "anonymous-inbound={},127.0.0.1:18085,64\n",
            dest.address()
        )));
        assert_eq!(file(&p, "i2pd/data/p2p.dat").bytes, dest.keys_file());
        assert!(text(&p, "i2pd/tunnels.conf").contains("port = 18085\nkeys = p2p.dat\n"));
        assert_eq!(
            text(&p, "monerod/addresses"),
            format!(
                "tor {}\ntor-rpc {}\ni2p {}\n",
                key.address(),
                rpc.address(),
                dest.address()
            )
        );
    }

    #[test]
    fn without_the_shared_key_rpc_is_not_served_over_tor() {
        let mut i = input();
        i.tor_key = Some(OnionKey::generate().unwrap().secret_file());
        let p = plan(&i).unwrap();
        assert!(!text(&p, "tor/torrc").contains("18089"));
        assert!(p.rpc_onion.is_none());
    }

    #[test]
    fn a_malformed_key_is_refused_naming_the_secret_key() {
        let mut i = input();
        i.i2p_keys = Some(b"not a key".to_vec());
        let e = plan(&i).unwrap_err().to_string();
        assert!(
            e.contains("identity Secret key nodes-0.i2p")
                && e.contains("shorter than a destination"),
            "{e}"
        );
    }
}
