//! Ed25519 signing keys (ring), their kid, and sealing them under the master key.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::crypto::{sha256, MasterKey};

/// Associated data binding a sealed blob to its use: a sealed national ID
/// cannot be opened as a signing key, nor the reverse.
const SEAL_PURPOSE: &[u8] = b"healthcard signing key v1";

/// Errors about keys. They never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key ring has no active signing key, so it cannot mint.
    #[error("no active signing key")]
    NoActiveKey,
    /// The bytes are not an Ed25519 PKCS#8 document ring accepts.
    #[error("not a valid Ed25519 PKCS#8 key")]
    BadKey,
    /// The sealed key could not be opened (wrong master key or tampered).
    #[error("the sealed signing key could not be opened")]
    Unseal,
    /// A JWK is not an Ed25519 signing key of ours (the text says which field).
    #[error("unusable JWK: {0}")]
    BadJwk(&'static str),
}

/// A key identifier: the first 8 bytes of SHA-256 of the raw 32-byte public key.
/// Eight bytes keep the token small while making an accidental collision
/// between a service's handful of keys negligible (2^-64 per pair).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid([u8; 8]);

impl Kid {
    /// The kid of a raw Ed25519 public key.
    pub fn of_public_key(public_key: &[u8; 32]) -> Kid {
        let digest = sha256(public_key);
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest[..8]);
        Kid(kid)
    }

    /// Wraps kid bytes as they appear in a token header.
    pub fn from_bytes(bytes: [u8; 8]) -> Kid {
        Kid(bytes)
    }

    /// The 8 bytes carried in the token's protected header.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// base64url without padding: the JWK `kid`.
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses [`Kid::to_b64`] text.
    pub fn from_b64(text: &str) -> Option<Kid> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(Kid(bytes.try_into().ok()?))
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b64())
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kid({})", self.to_b64())
    }
}

impl serde::Serialize for Kid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_b64())
    }
}

impl<'de> serde::Deserialize<'de> for Kid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Kid::from_b64(&text).ok_or_else(|| serde::de::Error::custom("not a base64url 8-byte kid"))
    }
}

/// The public half of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey {
    /// Derived from `public_key`; see [`Kid`].
    pub kid: Kid,
    /// The raw Ed25519 public key.
    pub public_key: [u8; 32],
}

impl VerifyingKey {
    /// The verifying key for a raw public key, with its kid computed.
    pub fn from_public_key(public_key: [u8; 32]) -> VerifyingKey {
        VerifyingKey {
            kid: Kid::of_public_key(&public_key),
            public_key,
        }
    }
}

/// An Ed25519 private key. Cheap to clone (shared); `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<Ed25519KeyPair>,
    /// Kept only to be sealed for storage.
    pkcs8: Arc<[u8]>,
    kid: Kid,
    public_key: [u8; 32],
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey {{ kid: {}, private: [redacted] }}", self.kid)
    }
}

/// PKCS#8 v2 (RFC 8410 / RFC 5958) framing of an Ed25519 seed, as ring writes it:
/// this prefix, the 32-byte seed, [`PKCS8_MIDDLE`], the 32-byte public key.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PKCS8_MIDDLE: [u8; 5] = [0xa1, 0x23, 0x03, 0x21, 0x00];

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        // Only fails if the OS random source fails, which the process cannot survive anyway.
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).expect("operating system random source");
        Self::from_pkcs8(doc.as_ref()).expect("ring parses the PKCS#8 it just wrote")
    }

    /// Loads a PKCS#8 (v1 or v2) Ed25519 key.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| KeyError::BadKey)?;
        let public_key: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| KeyError::BadKey)?;
        Ok(SigningKey {
            kid: Kid::of_public_key(&public_key),
            public_key,
            pair: Arc::new(pair),
            pkcs8: der.into(),
        })
    }

    /// A key from a fixed 32-byte seed (RFC 8032 private key). For test vectors
    /// and interoperability; production keys come from [`SigningKey::generate`].
    pub fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| KeyError::BadKey)?;
        let mut der = Vec::with_capacity(85);
        der.extend_from_slice(&PKCS8_PREFIX);
        der.extend_from_slice(seed);
        der.extend_from_slice(&PKCS8_MIDDLE);
        der.extend_from_slice(pair.public_key().as_ref());
        Self::from_pkcs8(&der)
    }

    /// This key's kid.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            kid: self.kid,
            public_key: self.public_key,
        }
    }

    /// The PKCS#8 document. Handle with care: this is the private key in clear.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Ed25519 signature of `msg` (deterministic, RFC 8032).
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let sig = self.pair.sign(msg);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        out
    }

    /// The private key encrypted (AES-256-GCM) under the master key, for storage.
    pub fn seal(&self, master: &MasterKey) -> Vec<u8> {
        master.seal(SEAL_PURPOSE, &self.pkcs8)
    }

    /// Opens what [`SigningKey::seal`] produced.
    pub fn unseal(master: &MasterKey, sealed: &[u8]) -> Result<SigningKey, KeyError> {
        let der = master
            .open(SEAL_PURPOSE, sealed)
            .map_err(|_| KeyError::Unseal)?;
        Self::from_pkcs8(&der)
    }
}

/// Where a key stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new tokens (one at a time) and verifies.
    Active,
    /// Signs nothing new; verifies until its tokens have expired. Still published.
    Retired,
    /// Compromised or withdrawn: its tokens are refused (`key_revoked`); not published.
    Revoked,
}

impl KeyState {
    /// `"active"`, `"retired"` or `"revoked"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not a key state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key state (expected active, retired or revoked)")]
pub struct UnknownKeyState;

impl FromStr for KeyState {
    type Err = UnknownKeyState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            "revoked" => Ok(KeyState::Revoked),
            _ => Err(UnknownKeyState),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_sha256_prefix_and_b64_round_trips() {
        let key = SigningKey::generate();
        let digest = sha256(&key.public_key());
        assert_eq!(key.kid().as_bytes(), &digest[..8]);
        assert_eq!(key.kid().to_b64().len(), 11);
        assert_eq!(Kid::from_b64(&key.kid().to_b64()), Some(*key.kid()));
        assert_eq!(Kid::from_b64("AAAA"), None);
        assert_eq!(Kid::from_b64("not b64!"), None);
    }

    #[test]
    fn seed_key_matches_its_pkcs8_and_rfc8032_vector() {
        // RFC 8032 §7.1 TEST 1.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let key = SigningKey::from_seed(&seed).unwrap();
        assert_eq!(
            hex::encode(key.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let again = SigningKey::from_pkcs8(key.pkcs8_der()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(hex::encode(key.sign(b"")), "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    }

    #[test]
    fn sealing_round_trips_and_needs_the_master_key() {
        let master = MasterKey::generate();
        let key = SigningKey::generate();
        let sealed = key.seal(&master);
        assert!(!sealed
            .windows(32)
            .any(|w| key.pkcs8_der().windows(32).any(|p| p == w)));
        let back = SigningKey::unseal(&master, &sealed).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert_eq!(
            SigningKey::unseal(&MasterKey::generate(), &sealed).unwrap_err(),
            KeyError::Unseal
        );
        assert_eq!(
            SigningKey::from_pkcs8(b"junk").unwrap_err(),
            KeyError::BadKey
        );
    }

    #[test]
    fn debug_redacts() {
        let key = SigningKey::generate();
        let text = format!("{key:?}");
        assert!(text.contains("[redacted]"));
        assert!(!text.contains(&hex::encode(key.pkcs8_der())));
    }

    #[test]
    fn key_state_text() {
        for s in [KeyState::Active, KeyState::Retired, KeyState::Revoked] {
            assert_eq!(s.as_str().parse::<KeyState>(), Ok(s));
        }
        assert!("gone".parse::<KeyState>().is_err());
    }
}
