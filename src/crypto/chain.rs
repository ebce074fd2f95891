//! Keys of the access log: the chain MAC and the anchor signature. Both are
//! derived from the master key (HKDF, each with its own purpose label), so
//! someone who can write the database but does not hold the master key can
//! neither recompute the chain nor sign a head.

use std::fmt;

use ring::hmac;
use ring::signature::{self, Ed25519KeyPair, KeyPair};

/// The access-log chain's MAC key. Each row's hash is `mac(prev, row)`:
/// HMAC-SHA-256 in the default suite, HMAC-SM3 in the national one.
#[derive(Clone)]
pub enum ChainKey {
    HmacSha256(hmac::Key),
    HmacSm3([u8; 32]),
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey([redacted])")
    }
}

impl ChainKey {
    pub(super) fn hmac_sha256(bytes: &[u8; 32]) -> ChainKey {
        ChainKey::HmacSha256(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    pub(super) fn hmac_sm3(bytes: [u8; 32]) -> ChainKey {
        ChainKey::HmacSm3(bytes)
    }

    /// The MAC over the previous row's hash and this row's canonical
    /// encoding (the caller length-prefixes the row's fields).
    pub fn mac(&self, prev: &[u8], row: &[u8]) -> [u8; 32] {
        let prev_len = (prev.len() as u32).to_be_bytes();
        match self {
            ChainKey::HmacSha256(key) => {
                let mut ctx = hmac::Context::with_key(key);
                ctx.update(&prev_len);
                ctx.update(prev);
                ctx.update(row);
                let mut out = [0u8; 32];
                out.copy_from_slice(ctx.sign().as_ref());
                out
            }
            ChainKey::HmacSm3(key) => super::gm::hmac_sm3(key, &[&prev_len, prev, row]),
        }
    }
}

/// The Ed25519 key that signs access-log anchors. Derived from the master
/// key rather than taken from the token signing keys: those keys' public
/// halves live in the database an anchor must be checked against, they
/// rotate and are deleted once their tokens expire, and a token key should
/// sign tokens only.
pub struct AnchorKey(Ed25519KeyPair);

impl fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnchorKey([redacted])")
    }
}

impl AnchorKey {
    pub(super) fn from_seed(seed: &[u8; 32]) -> AnchorKey {
        AnchorKey(
            Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are an Ed25519 seed"),
        )
    }

    /// The public key (32 bytes), to keep with the anchors off the machine.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.public_key().as_ref());
        out
    }

    /// An Ed25519 signature (64 bytes) over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).as_ref().to_vec()
    }
}

/// Whether `sig` is a valid Ed25519 signature of `message` by `public_key`.
pub fn ed25519_verify(public_key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn chain_mac_is_keyed_and_binds_prev_and_row() {
        let k = MasterKey::from_bytes([1; 32]).chain_key();
        let a = k.mac(&[0; 32], b"row");
        assert_eq!(a, k.mac(&[0; 32], b"row"));
        assert_ne!(a, k.mac(&[1; 32], b"row"));
        assert_ne!(a, k.mac(&[0; 32], b"rox"));
        assert_ne!(
            a,
            MasterKey::from_bytes([2; 32])
                .chain_key()
                .mac(&[0; 32], b"row")
        );
        // Not the plain hash of the same bytes.
        assert_ne!(a, crate::crypto::sha256(b"row"));
        assert_eq!(format!("{k:?}"), "ChainKey([redacted])");
    }

    #[test]
    fn anchor_signatures_verify_only_unchanged_and_with_the_right_key() {
        let k = MasterKey::from_bytes([1; 32]).anchor_key();
        let sig = k.sign(b"head 7");
        assert!(ed25519_verify(&k.public_key(), b"head 7", &sig));
        assert!(!ed25519_verify(&k.public_key(), b"head 8", &sig));
        let mut flipped = sig.clone();
        flipped[0] ^= 1;
        assert!(!ed25519_verify(&k.public_key(), b"head 7", &flipped));
        let other = MasterKey::from_bytes([2; 32]).anchor_key();
        assert!(!ed25519_verify(&other.public_key(), b"head 7", &sig));
        assert_eq!(
            k.public_key(),
            MasterKey::from_bytes([1; 32]).anchor_key().public_key()
        );
    }
}
