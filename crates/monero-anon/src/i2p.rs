//! I2P destinations in the keys-file format i2pd reads for a server tunnel
//! (`keys = ...` in tunnels.conf; i2pd's `PrivateKeys::FromBuffer`):
//!
//! ```text
//! destination (391 bytes)
//!   256  encryption public key (ElGamal-2048, crypto type 0: what i2pd makes itself)
//!   128  signing public key field: 96 bytes of random padding, then the Ed25519 key
//!     7  key certificate: type 5, length 4, signing type 7 (Ed25519), crypto type 0
//! 256  ElGamal private key
//!  32  Ed25519 private key (seed)
//! ```
//!
//! The address is base32(SHA-256(destination)) + `.b32.i2p`.

use ed25519_dalek::SigningKey;
use num_bigint::BigUint;
use sha2::{Digest, Sha256};

use crate::{KeyError, malformed, random};

const DESTINATION_LEN: usize = 256 + 128 + 7;
const KEYS_LEN: usize = DESTINATION_LEN + 256 + 32;
const CERT: [u8; 7] = [5, 0, 4, 0, 7, 0, 0];

/// The 2048-bit MODP prime I2P's ElGamal uses (RFC 3526, group 14), generator 2.
const ELGAMAL_PRIME_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";

/// An I2P destination with its private keys.
#[derive(Clone)]
pub struct Destination {
    keys: Vec<u8>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Destination {
    /// A new random destination (Ed25519 signing, ElGamal encryption, as i2pd
    /// itself creates for a tunnel).
    pub fn generate() -> Result<Destination, KeyError> {
        let seed = random::<32>()?;
        let elgamal_private = random::<256>()?;
        let padding = random::<96>()?;
        let prime = BigUint::parse_bytes(ELGAMAL_PRIME_HEX.as_bytes(), 16)
            .ok_or_else(|| malformed("ElGamal prime", "does not parse"))?;
        let x = BigUint::from_bytes_be(&elgamal_private);
        let y = BigUint::from(2u32).modpow(&x, &prime).to_bytes_be();
        let mut keys = Vec::with_capacity(KEYS_LEN);
        keys.extend(std::iter::repeat_n(0u8, 256 - y.len()));
        keys.extend_from_slice(&y);
        keys.extend_from_slice(&padding);
        keys.extend_from_slice(&SigningKey::from_bytes(&seed).verifying_key().to_bytes());
        keys.extend_from_slice(&CERT);
        keys.extend_from_slice(&elgamal_private);
        keys.extend_from_slice(&seed);
        Ok(Destination { keys })
    }

    /// Reads an i2pd keys file (one i2pd made, or one from [`Destination::keys_file`]).
    /// Only Ed25519 destinations with an ElGamal or X25519 encryption key and no
    /// offline signature are accepted: the kinds i2pd makes for a tunnel.
    pub fn from_keys_file(bytes: &[u8]) -> Result<Destination, KeyError> {
        const WHAT: &str = "I2P keys file";
        if bytes.len() < DESTINATION_LEN {
            return Err(malformed(
                WHAT,
                format!("is {} bytes, shorter than a destination", bytes.len()),
            ));
        }
        let cert = &bytes[384..391];
        if cert[0] != 5 || cert[1..3] != [0, 4] {
            return Err(malformed(
                WHAT,
                "has no key certificate (an old DSA destination?); only Ed25519 destinations are supported",
            ));
        }
        let sig_type = u16::from_be_bytes([cert[3], cert[4]]);
        let crypto_type = u16::from_be_bytes([cert[5], cert[6]]);
        if sig_type != 7 {
            return Err(malformed(
                WHAT,
                format!("has signing type {sig_type}; only 7 (Ed25519) is supported"),
            ));
        }
        let private_len = match crypto_type {
            0 => 256,
            4 => 32,
            other => {
                return Err(malformed(
                    WHAT,
                    format!(
                        "has encryption type {other}; only 0 (ElGamal) and 4 (X25519) are supported"
                    ),
                ));
            }
        };
        let want = DESTINATION_LEN + private_len + 32;
        if bytes.len() != want {
            return Err(malformed(
                WHAT,
                format!(
                    "is {} bytes; a destination of this type with its keys is {want}",
                    bytes.len()
                ),
            ));
        }
        let seed: [u8; 32] = bytes[want - 32..]
            .try_into()
            .map_err(|_| malformed(WHAT, "short signing key"))?;
        if SigningKey::from_bytes(&seed).verifying_key().to_bytes()[..] != bytes[352..384] {
            return Err(malformed(
                WHAT,
                "its signing private key does not match its destination",
            ));
        }
        Ok(Destination {
            keys: bytes.to_vec(),
        })
    }

    /// The keys file i2pd loads.
    pub fn keys_file(&self) -> &[u8] {
        &self.keys
    }

    /// The public destination (what others need to reach it).
    pub fn destination(&self) -> &[u8] {
        &self.keys[..DESTINATION_LEN]
    }

    /// The address, `<52 base32 characters>.b32.i2p`.
    pub fn address(&self) -> String {
        let hash = Sha256::digest(self.destination());
        format!(
            "{}.b32.i2p",
            data_encoding::BASE32_NOPAD.encode(&hash).to_lowercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_destination_has_i2pds_layout_and_round_trips() {
        let d = Destination::generate().unwrap();
        assert_eq!(
            d.keys_file().len(),
            679,
            "what i2pd writes for type 7 / crypto 0"
        );
        assert_eq!(&d.keys_file()[384..391], &CERT);
        let back = Destination::from_keys_file(d.keys_file()).unwrap();
        assert_eq!(back.address(), d.address());
        assert_eq!(d.address().len(), 52 + 8);
        assert_ne!(Destination::generate().unwrap().address(), d.address());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let d = Destination::generate().unwrap();
        let short = Destination::from_keys_file(&d.keys_file()[..100]).unwrap_err();
        assert!(
            short.to_string().contains("shorter than a destination"),
            "{short}"
        );
        let mut wrong = d.keys_file().to_vec();
        wrong[388] = 3; // signing type 3 (ECDSA P-521)
        assert!(
            Destination::from_keys_file(&wrong)
                .unwrap_err()
                .to_string()
                .contains("signing type 3")
        );
        let mut tampered = d.keys_file().to_vec();
        tampered[678] ^= 1;
        assert!(
            Destination::from_keys_file(&tampered)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        let trailing = [d.keys_file(), &[0u8; 3]].concat();
        assert!(
            Destination::from_keys_file(&trailing)
                .unwrap_err()
                .to_string()
                .contains("682 bytes")
        );
    }
}
