//! monero-anon: make Tor and I2P identities for monerod.
//!
//! `tor keygen --out DIR` writes a HiddenServiceDir's three files and prints the
//! onion address; `i2p keygen --out FILE` writes an i2pd keys file and prints the
//! b32 address; `tor address DIR` and `i2p address FILE` print the address of
//! existing keys (made by tor, i2pd, mkp224o or this tool).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use monero_anon::i2p::Destination;
use monero_anon::podconfig;
use monero_anon::render::Ports;
use monero_anon::tor::{self, OnionKey};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Tor onion service v3 identities.
    Tor {
        #[command(subcommand)]
        action: TorAction,
    },
    /// I2P destinations.
    I2p {
        #[command(subcommand)]
        action: I2pAction,
    },
    /// The init container of a node's pod: install this pod's keys with the
    /// modes tor requires and write torrc, i2pd.conf, tunnels.conf and
    /// monerod's config file with its Tor and I2P flags.
    Podconfig(PodconfigArgs),
}

#[derive(clap::Args, Debug)]
struct PodconfigArgs {
    /// This pod's name (its keys are `<pod>.tor` and `<pod>.i2p` in the identity Secret).
    #[arg(long, env = "POD_NAME")]
    pod_name: String,
    /// Where the identity Secret is mounted.
    #[arg(long, default_value = podconfig::IDENTITIES_DIR)]
    identities: PathBuf,
    /// monerod's base config file (login, peers), copied first.
    #[arg(long)]
    base_config: Option<PathBuf>,
    /// The directory to fill (shared with tor, i2pd and monerod).
    #[arg(long, default_value = podconfig::RUN_DIR)]
    out: PathBuf,
    /// Serve the pod over Tor.
    #[arg(long)]
    tor: bool,
    /// Serve the pod over I2P.
    #[arg(long)]
    i2p: bool,
    /// Serve monerod's restricted RPC at the set-wide onion address, when the
    /// identity Secret holds its key (`rpc.tor`).
    #[arg(long)]
    rpc_onion: bool,
    /// monerod's restricted RPC port.
    #[arg(long, default_value_t = 18089)]
    rpc_port: u16,
    /// Where monerod accepts Tor connections.
    #[arg(long, default_value_t = 18083)]
    tor_inbound_port: u16,
    /// Where monerod accepts I2P connections.
    #[arg(long, default_value_t = 18085)]
    i2p_inbound_port: u16,
    /// tor's SOCKS port.
    #[arg(long, default_value_t = 9050)]
    tor_socks_port: u16,
    /// i2pd's SOCKS port.
    #[arg(long, default_value_t = 4447)]
    i2p_socks_port: u16,
    /// i2pd's NTCP2 port.
    #[arg(long, default_value_t = 4567)]
    ntcp2_port: u16,
    /// Leave SSU2 (UDP) off in i2pd.
    #[arg(long)]
    no_ssu2: bool,
    /// An extra torrc line (repeatable).
    #[arg(long)]
    torrc_line: Vec<String>,
    /// An extra i2pd.conf line, `section.key = value` or a top-level `key = value` (repeatable).
    #[arg(long)]
    i2pd_line: Vec<String>,
}

fn read_identity(dir: &Path, key: &str) -> Result<Vec<u8>> {
    let path = dir.join(key);
    fs::read(&path).with_context(|| {
        format!("reading {} (the identity Secret has no key {key}; the operator writes it before the pod starts)", path.display())
    })
}

fn run_podconfig(a: &PodconfigArgs) -> Result<()> {
    let lo = podconfig::loopback;
    let rpc_key = a.identities.join(podconfig::RPC_TOR_KEY);
    let input = podconfig::Input {
        pod: a.pod_name.clone(),
        run_dir: a.out.display().to_string(),
        base_config: match &a.base_config {
            Some(p) => fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            None => String::new(),
        },
        tor_key: if a.tor {
            Some(read_identity(
                &a.identities,
                &podconfig::tor_key_name(&a.pod_name),
            )?)
        } else {
            None
        },
        rpc_tor_key: if a.tor && a.rpc_onion && rpc_key.exists() {
            Some(fs::read(&rpc_key).with_context(|| format!("reading {}", rpc_key.display()))?)
        } else {
            None
        },
        i2p_keys: if a.i2p {
            Some(read_identity(
                &a.identities,
                &podconfig::i2p_key_name(&a.pod_name),
            )?)
        } else {
            None
        },
        ports: Ports {
            tor_socks: lo(a.tor_socks_port),
            i2p_socks: lo(a.i2p_socks_port),
            tor_inbound: lo(a.tor_inbound_port),
            i2p_inbound: lo(a.i2p_inbound_port),
            tor_virtual_port: 18083,
            rpc: Some((a.rpc_port, lo(a.rpc_port))),
        },
        ntcp2_port: a.ntcp2_port,
        i2p_ssu2: !a.no_ssu2,
        torrc_extra: a.torrc_line.clone(),
        i2pd_extra: a.i2pd_line.clone(),
    };
    let plan = podconfig::plan(&input)?;
    fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for (dir, mode) in &plan.dirs {
        let path = a.out.join(dir);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    for f in &plan.files {
        let path = a.out.join(&f.path);
        // tor/, i2pd/ and monerod/ are emptyDir mount points in the pod: created
        // here when missing (a test), never chmodded (they are not ours).
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        // The pod's emptyDir is fresh on each start; rewriting is how a changed
        // config reaches a restarted pod. Keys come from the Secret every time.
        fs::write(&path, &f.bytes).with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(f.mode))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    for (zone, a) in [
        ("tor", &plan.onion),
        ("tor-rpc", &plan.rpc_onion),
        ("i2p", &plan.b32),
    ] {
        if let Some(a) = a {
            println!("{zone} {a}");
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
enum TorAction {
    /// Write hs_ed25519_secret_key, hs_ed25519_public_key and hostname into DIR
    /// (created with mode 0700, as tor requires) and print the onion address.
    Keygen {
        /// The HiddenServiceDir to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the onion address of the hs_ed25519_secret_key in DIR.
    Address {
        /// A HiddenServiceDir.
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum I2pAction {
    /// Write an i2pd keys file (mode 0600) and print its b32 address.
    Keygen {
        /// The keys file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the b32 address of an i2pd keys file.
    Address {
        /// A keys file.
        file: PathBuf,
    },
}

/// Creates `path` with `mode`, refusing to overwrite: a key is an identity,
/// and replacing it silently changes a published address.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (an existing key is never overwritten)",
                path.display()
            )
        })?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn tor_keygen(out: &Path) -> Result<()> {
    if out.join(tor::SECRET_FILE).exists() {
        bail!(
            "{} already holds a key; an existing key is never overwritten",
            out.display()
        );
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out)
        .with_context(|| format!("creating {}", out.display()))?;
    fs::set_permissions(out, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", out.display()))?;
    let key = OnionKey::generate()?;
    write_new(&out.join(tor::SECRET_FILE), &key.secret_file(), 0o600)?;
    write_new(&out.join(tor::PUBLIC_FILE), &key.public_file(), 0o600)?;
    write_new(
        &out.join(tor::HOSTNAME_FILE),
        key.hostname_file().as_bytes(),
        0o600,
    )?;
    println!("{}", key.address());
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Podconfig(a) => run_podconfig(&a),
        Command::Tor {
            action: TorAction::Keygen { out },
        } => tor_keygen(&out),
        Command::Tor {
            action: TorAction::Address { dir },
        } => {
            let path = dir.join(tor::SECRET_FILE);
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let key =
                OnionKey::from_secret_file(&bytes).with_context(|| path.display().to_string())?;
            println!("{}", key.address());
            Ok(())
        }
        Command::I2p {
            action: I2pAction::Keygen { out },
        } => {
            let d = Destination::generate()?;
            write_new(&out, d.keys_file(), 0o600)?;
            println!("{}", d.address());
            Ok(())
        }
        Command::I2p {
            action: I2pAction::Address { file },
        } => {
            let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let d =
                Destination::from_keys_file(&bytes).with_context(|| file.display().to_string())?;
            println!("{}", d.address());
            Ok(())
        }
    }
}
