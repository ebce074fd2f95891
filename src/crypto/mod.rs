//! Cryptographic building blocks shared by the token core and the store:
//! the master key (sealing and blind indexes), random secrets shown once,
//! and password hashing. Nothing here knows about HTTP or SQL.

mod chain;
mod master_key;
mod password;
mod secret;

pub use chain::{ed25519_verify, AnchorKey, ChainKey};
pub use master_key::{MasterKey, MASTER_KEY_FILE};
pub use password::{hash_password, verify_password};
pub use secret::{SecretHash, SecretKind, SecretToken};

/// Errors from the primitives in this module. They never carry key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the master key must be 32 bytes, base64 encoded")]
    BadMasterKey,
    #[error("sealed data could not be opened (wrong key, wrong purpose or tampered)")]
    Unseal,
    #[error("password hashing failed")]
    Password,
    #[error("master key file: {0}")]
    Io(#[from] std::io::Error),
}

/// A cryptographically secure random byte array from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .expect("the operating system's random source failed");
    out
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
