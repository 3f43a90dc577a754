//! Onion service v3 identities, in tor's own file formats (tor's
//! `rend-spec-v3.txt`, section 6, and `hs_common.c`):
//!
//! - `hs_ed25519_secret_key`: the 32-byte header `== ed25519v1-secret: type0 ==`
//!   padded with NULs, then the 64-byte *expanded* secret key (SHA-512 of the
//!   seed, the first half clamped), not the 32-byte seed;
//! - `hs_ed25519_public_key`: `== ed25519v1-public: type0 ==` padded, then the key;
//! - `hostname`: base32(pubkey ‖ checksum ‖ version) + `.onion`, where checksum is
//!   the first two bytes of SHA3-256(".onion checksum" ‖ pubkey ‖ version), version 3.

use ed25519_dalek::hazmat::ExpandedSecretKey;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use sha3::Sha3_256;

use crate::{KeyError, malformed, random};

const SECRET_HEADER: &[u8; 32] = b"== ed25519v1-secret: type0 ==\0\0\0";
const PUBLIC_HEADER: &[u8; 32] = b"== ed25519v1-public: type0 ==\0\0\0";
/// The names tor looks for in a HiddenServiceDir; tor rewrites `hostname` from
/// the secret key at each start, so only the secret key really matters.
pub const SECRET_FILE: &str = "hs_ed25519_secret_key";
/// See [`SECRET_FILE`].
pub const PUBLIC_FILE: &str = "hs_ed25519_public_key";
/// See [`SECRET_FILE`].
pub const HOSTNAME_FILE: &str = "hostname";

/// An onion service identity.
#[derive(Clone)]
pub struct OnionKey {
    expanded: [u8; 64],
    public: [u8; 32],
}

impl std::fmt::Debug for OnionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("OnionKey")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl OnionKey {
    /// A new random identity.
    pub fn generate() -> Result<OnionKey, KeyError> {
        Ok(OnionKey::from_seed(&random::<32>()?))
    }

    /// The identity of an Ed25519 seed (a 32-byte secret key as RFC 8032 defines it).
    pub fn from_seed(seed: &[u8; 32]) -> OnionKey {
        let public = SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let digest = Sha512::digest(seed);
        let mut expanded = [0u8; 64];
        expanded.copy_from_slice(&digest);
        expanded[0] &= 248;
        expanded[31] &= 127;
        expanded[31] |= 64;
        OnionKey { expanded, public }
    }

    /// Reads tor's `hs_ed25519_secret_key` file (for example a vanity address
    /// made by mkp224o, or a key tor generated itself).
    pub fn from_secret_file(bytes: &[u8]) -> Result<OnionKey, KeyError> {
        if bytes.len() != 96 {
            return Err(malformed(
                SECRET_FILE,
                format!("is {} bytes; tor writes 96", bytes.len()),
            ));
        }
        if &bytes[..32] != SECRET_HEADER {
            return Err(malformed(
                SECRET_FILE,
                "does not start with tor's `== ed25519v1-secret: type0 ==` header",
            ));
        }
        let mut expanded = [0u8; 64];
        expanded.copy_from_slice(&bytes[32..]);
        // tor uses the scalar as stored; the library clamps it. A key that is
        // not already clamped would get a different address from us than tor
        // serves, so refuse it.
        if expanded[0] & 7 != 0 || expanded[31] & 0xC0 != 0x40 {
            return Err(malformed(
                SECRET_FILE,
                "holds an unclamped Ed25519 scalar; tor and mkp224o never write one",
            ));
        }
        let public = VerifyingKey::from(&ExpandedSecretKey::from_bytes(&expanded)).to_bytes();
        Ok(OnionKey { expanded, public })
    }

    /// The secret key file.
    pub fn secret_file(&self) -> Vec<u8> {
        [&SECRET_HEADER[..], &self.expanded].concat()
    }

    /// The public key file.
    pub fn public_file(&self) -> Vec<u8> {
        [&PUBLIC_HEADER[..], &self.public].concat()
    }

    /// The `hostname` file's content, as tor writes it.
    pub fn hostname_file(&self) -> String {
        format!("{}\n", self.address())
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The onion address, `<56 base32 characters>.onion`.
    pub fn address(&self) -> String {
        onion_address(&self.public)
    }
}

/// The v3 onion address of an Ed25519 public key.
pub fn onion_address(public: &[u8; 32]) -> String {
    const VERSION: u8 = 3;
    let mut h = Sha3_256::new();
    h.update(b".onion checksum");
    h.update(public);
    h.update([VERSION]);
    let checksum = h.finalize();
    let mut raw = Vec::with_capacity(35);
    raw.extend_from_slice(public);
    raw.extend_from_slice(&checksum[..2]);
    raw.push(VERSION);
    format!(
        "{}.onion",
        data_encoding::BASE32_NOPAD.encode(&raw).to_lowercase()
    )
}

/// Checks a public key file against a secret key: a Secret whose two halves
/// disagree would publish one address and answer for another.
pub fn check_public_file(key: &OnionKey, bytes: &[u8]) -> Result<(), KeyError> {
    if bytes.len() != 64 || &bytes[..32] != PUBLIC_HEADER {
        return Err(malformed(
            PUBLIC_FILE,
            "is not tor's 64-byte `== ed25519v1-public: type0 ==` file",
        ));
    }
    if bytes[32..] != key.public {
        return Err(malformed(
            PUBLIC_FILE,
            "does not belong to hs_ed25519_secret_key",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rend_spec_example_address_decodes_to_its_key() {
        // The address in tor's rend-spec-v3 appendix round-trips through our encoder.
        let addr = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd";
        let raw = data_encoding::BASE32_NOPAD
            .decode(addr.to_uppercase().as_bytes())
            .unwrap();
        let public: [u8; 32] = raw[..32].try_into().unwrap();
        assert_eq!(onion_address(&public), format!("{addr}.onion"));
    }

    #[test]
    fn files_round_trip_and_are_tors_sizes() {
        let k = OnionKey::generate().unwrap();
        let secret = k.secret_file();
        assert_eq!(secret.len(), 96);
        assert_eq!(k.public_file().len(), 64);
        let back = OnionKey::from_secret_file(&secret).unwrap();
        assert_eq!(back.address(), k.address());
        check_public_file(&back, &k.public_file()).unwrap();
        assert_eq!(k.address().len(), 56 + 6);
        assert!(!format!("{k:?}").contains(&format!("{:?}", &k.expanded[..4])));
    }

    #[test]
    fn malformed_files_are_refused_with_the_reason() {
        let k = OnionKey::generate().unwrap();
        let mut bad = k.secret_file();
        bad[3] = b'X';
        assert!(
            OnionKey::from_secret_file(&bad)
                .unwrap_err()
                .to_string()
                .contains("header")
        );
        assert!(
            OnionKey::from_secret_file(&bad[..40])
                .unwrap_err()
                .to_string()
                .contains("40 bytes")
        );
        let mut unclamped = k.secret_file();
        unclamped[32] |= 1;
        let e = OnionKey::from_secret_file(&unclamped)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unclamped"), "{e}");
        let other = OnionKey::generate().unwrap();
        assert!(
            check_public_file(&k, &other.public_file())
                .unwrap_err()
                .to_string()
                .contains("does not belong")
        );
    }
}
