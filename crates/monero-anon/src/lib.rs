//! Tor and I2P identities for monerod, made in Rust so that an operator can
//! create them once, keep them in Secrets and show their addresses before any
//! tor or i2pd runs.
//!
//! - [`tor`]: onion service v3 keys in the files tor's `HiddenServiceDir` holds
//!   (`hs_ed25519_secret_key`, `hs_ed25519_public_key`, `hostname`).
//! - [`i2p`]: I2P destinations in the keys-file format i2pd loads for a server
//!   tunnel, and their `.b32.i2p` address.
//! - [`render`]: torrc, i2pd.conf, tunnels.conf and the monerod flags that use them.
//!
//! Existing key files (made by tor or i2pd, or a vanity onion) parse back to the
//! same address, so users can bring their own.

pub mod i2p;
pub mod podconfig;
pub mod render;
pub mod tor;

/// A key file that cannot be used; the message says which file and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The file's length or header is not what tor or i2pd write.
    #[error("{what}: {reason}")]
    Malformed {
        /// Which file or value.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

pub(crate) fn malformed(what: &str, reason: impl Into<String>) -> KeyError {
    KeyError::Malformed {
        what: what.into(),
        reason: reason.into(),
    }
}
