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
