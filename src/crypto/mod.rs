//! Cryptographic building blocks shared by the token core and the store:
//! the master key (sealing and blind indexes), random secrets shown once,
//! and password hashing. Nothing here knows about HTTP or SQL.

mod chain;
pub mod gm;
mod master_key;
mod password;
mod secret;

pub use chain::{ed25519_verify, AnchorKey, ChainKey};
pub use master_key::{MasterKey, MASTER_KEY_FILE};
pub use password::{hash_password, verify_password};
pub use secret::{SecretHash, SecretKind, SecretToken};

/// Which algorithms a data folder uses for everything but token signatures
/// (each key has its own): chosen when the folder is created, recorded in
/// it, and refused if changed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-256-GCM sealing, HMAC-SHA256 blind indexes, SHA-256 kids, Ed25519 first key.
    Default,
    /// The national suite: SM4-GCM sealing (RFC 8998), HMAC-SM3 blind
    /// indexes, SM3 kids, SM2 first key.
    Gm,
}

impl Suite {
    /// `"default"` or `"gm"`: the setting and the recorded value.
    pub fn as_str(self) -> &'static str {
        match self {
            Suite::Default => "default",
            Suite::Gm => "gm",
        }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not a suite name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown crypto suite (expected default or gm)")]
pub struct UnknownSuite;

impl std::str::FromStr for Suite {
    type Err = UnknownSuite;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Suite::Default, Suite::Gm]
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or(UnknownSuite)
    }
}

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

/// Whether two secrets (MACs, tokens) are equal, in time that does not
/// depend on where they differ (subtle's `ConstantTimeEq`).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
