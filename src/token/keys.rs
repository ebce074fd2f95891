//! Signing keys of the three algorithms (see [`Alg`]), their kid, the
//! [`TokenSigner`] trait every signing key sits behind, and sealing software
//! keys under the master key.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519,
};
use sm2::dsa::signature::{RandomizedSigner, Signer as _, Verifier as _};
use sm2::elliptic_curve::common::getrandom::SysRng;

use super::alg::{Alg, SM2_SIGNER_ID};
use crate::crypto::{sha256, MasterKey};

/// Associated data binding a sealed blob to its use: a sealed national ID
/// cannot be opened as a signing key, nor the reverse. Ed25519 keys keep the
/// purpose they were sealed with before keys had an algorithm; the others
/// also bind the algorithm, so a blob cannot be opened as another kind of key.
const SEAL_PURPOSE: &[u8] = b"healthcard signing key v1";
const SEAL_PURPOSE_ES256: &[u8] = b"healthcard signing key v1 es256";
const SEAL_PURPOSE_SM2: &[u8] = b"healthcard signing key v1 sm2";

fn seal_purpose(alg: Alg) -> &'static [u8] {
    match alg {
        Alg::Ed25519 => SEAL_PURPOSE,
        Alg::Es256 => SEAL_PURPOSE_ES256,
        Alg::Sm2 => SEAL_PURPOSE_SM2,
    }
}

/// Errors about keys. They never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key ring has no active signing key, so it cannot mint.
    #[error("no active signing key")]
    NoActiveKey,
    /// The bytes are not a private key of the named algorithm.
    #[error("not a valid {0} private key")]
    BadKey(Alg),
    /// The bytes are not a public key of the named algorithm.
    #[error("not a valid {0} public key")]
    BadPublicKey(Alg),
    /// The sealed key could not be opened (wrong master key or tampered).
    #[error("the sealed signing key could not be opened")]
    Unseal,
    /// The private half lives where it cannot be sealed (a hardware device).
    #[error("this signing key cannot be exported for sealing")]
    NotExportable,
    /// The signer failed (for a device: unreachable, logged out...).
    #[error("signing failed: {0}")]
    SignFailed(String),
    /// A JWK is not a signing key of ours (the text says which field).
    #[error("unusable JWK: {0}")]
    BadJwk(&'static str),
}

/// A key identifier: the first 8 bytes of SHA-256 of the public key as
/// stored (Ed25519's raw 32 bytes, or the uncompressed SEC1 point). Eight
/// bytes keep the token small while making an accidental collision between
/// a service's handful of keys negligible (2^-64 per pair).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid([u8; 8]);

impl Kid {
    /// The kid of a public key in its stored form.
    pub fn of_public_key(public_key: &[u8]) -> Kid {
        let digest = sha256(public_key);
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest[..8]);
        Kid(kid)
    }

    /// The national suite's kid: the first 8 bytes of SM3 of the public key.
    pub fn of_public_key_sm3(public_key: &[u8]) -> Kid {
        let digest = crate::crypto::gm::sm3(public_key);
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest[..8]);
        Kid(kid)
    }

    /// Whether this kid is one of the two derivations of `public_key`
    /// (SHA-256 or SM3): what a published or stored kid must be.
    pub fn names(&self, public_key: &[u8]) -> bool {
        *self == Kid::of_public_key(public_key) || *self == Kid::of_public_key_sm3(public_key)
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

/// A public key ready to check signatures: parsed once when the ring is
/// built (for SM2 that includes the signer-ID hash `Z_A`), not per token.
enum Prepared {
    Ed25519,
    Es256,
    Sm2(Box<sm2::dsa::VerifyingKey>),
}

/// The public half of a signing key: its kid, its algorithm and its bytes.
/// Cheap to clone (shared).
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Kid,
    alg: Alg,
    public_key: Arc<[u8]>,
    prepared: Arc<Prepared>,
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.alg == other.alg && self.public_key == other.public_key
    }
}
impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey {{ kid: {}, alg: {} }}", self.kid, self.alg)
    }
}

impl VerifyingKey {
    /// A verifying key from its stored form, kid computed from the bytes.
    pub fn new(alg: Alg, public_key: &[u8]) -> Result<VerifyingKey, KeyError> {
        Self::with_kid(alg, public_key, Kid::of_public_key(public_key))
    }

    /// A verifying key known under `kid` (as stored or published).
    pub fn with_kid(alg: Alg, public_key: &[u8], kid: Kid) -> Result<VerifyingKey, KeyError> {
        if public_key.len() != alg.public_key_len() {
            return Err(KeyError::BadPublicKey(alg));
        }
        let prepared = match alg {
            Alg::Ed25519 => Prepared::Ed25519,
            // ring validates the point when it verifies; an off-curve point
            // then fails every signature (bad_signature), never verifies one.
            Alg::Es256 if public_key[0] == 0x04 => Prepared::Es256,
            Alg::Es256 => return Err(KeyError::BadPublicKey(alg)),
            Alg::Sm2 if public_key[0] == 0x04 => Prepared::Sm2(Box::new(
                sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_SIGNER_ID, public_key)
                    .map_err(|_| KeyError::BadPublicKey(alg))?,
            )),
            Alg::Sm2 => return Err(KeyError::BadPublicKey(alg)),
        };
        Ok(VerifyingKey {
            kid,
            alg,
            public_key: public_key.into(),
            prepared: Arc::new(prepared),
        })
    }

    /// The kid tokens name this key by.
    pub fn kid(&self) -> Kid {
        self.kid
    }

    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public key in its stored form: Ed25519's 32 bytes, or `04‖x‖y`.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Whether `signature` (always `r‖s` or Ed25519's 64 bytes) is this
    /// key's signature of `msg` under its own algorithm.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        match &*self.prepared {
            Prepared::Ed25519 => UnparsedPublicKey::new(&ED25519, &self.public_key)
                .verify(msg, signature)
                .is_ok(),
            Prepared::Es256 => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public_key)
                .verify(msg, signature)
                .is_ok(),
            Prepared::Sm2(key) => sm2::dsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(msg, &sig).is_ok()),
        }
    }
}

/// What signs tokens. Software keys ([`SigningKey`] built from key bytes)
/// implement it, and so can a key whose private half never leaves a device
/// (PKCS#11): the ring only ever asks for a signature.
pub trait TokenSigner: Send + Sync {
    /// The public half: kid and algorithm go in the token header.
    fn verifying_key(&self) -> &VerifyingKey;
    /// The signature of `msg` under [`VerifyingKey::alg`]: 64 bytes, `r‖s`
    /// for the curves.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError>;
}

/// A private key held in this process.
enum SoftwareKey {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Sm2(Box<sm2::dsa::SigningKey>),
}

struct Software {
    key: SoftwareKey,
    /// The stored form of the private key, kept only to be sealed.
    secret: Vec<u8>,
    verifying: VerifyingKey,
}

impl TokenSigner for Software {
    fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.key {
            SoftwareKey::Ed25519(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            SoftwareKey::Es256(pair) => pair
                .sign(&ring::rand::SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::SignFailed("operating system random source".into())),
            SoftwareKey::Sm2(key) => {
                // Deterministic nonce first (same key and claims, same
                // token); the crate refuses the rare nonce outside [1, n-1]
                // instead of drawing again, so then add fresh randomness.
                if let Ok(sig) = key.try_sign(msg) {
                    return Ok(sig.to_bytes().to_vec());
                }
                for _ in 0..8 {
                    if let Ok(sig) = key.try_sign_with_rng(&mut SysRng, msg) {
                        return Ok(sig.to_bytes().to_vec());
                    }
                }
                Err(KeyError::SignFailed("SM2 nonce generation".into()))
            }
        }
    }
}

/// A signing key of any algorithm. Cheap to clone (shared); `Debug` never
/// shows the private half.
#[derive(Clone)]
pub struct SigningKey {
    signer: Arc<dyn TokenSigner>,
    /// Set for keys held in this process; `None` for a device's key.
    software: Option<Arc<Software>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.signer.verifying_key();
        write!(
            f,
            "SigningKey {{ kid: {}, alg: {}, private: [redacted] }}",
            v.kid, v.alg
        )
    }
}

/// PKCS#8 v2 (RFC 8410 / RFC 5958) framing of an Ed25519 seed, as ring writes it:
/// this prefix, the 32-byte seed, [`PKCS8_MIDDLE`], the 32-byte public key.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PKCS8_MIDDLE: [u8; 5] = [0xa1, 0x23, 0x03, 0x21, 0x00];

impl SigningKey {
    /// A fresh Ed25519 key (the default algorithm).
    pub fn generate() -> SigningKey {
        Self::generate_alg(Alg::Ed25519)
    }

    /// A fresh key of `alg` from the operating system's random source.
    pub fn generate_alg(alg: Alg) -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        // Generation fails only if the OS random source fails, which the
        // process cannot survive anyway.
        match alg {
            Alg::Ed25519 => {
                let doc =
                    Ed25519KeyPair::generate_pkcs8(&rng).expect("operating system random source");
                Self::from_secret(alg, doc.as_ref()).expect("ring parses the PKCS#8 it just wrote")
            }
            Alg::Es256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .expect("operating system random source");
                Self::from_secret(alg, doc.as_ref()).expect("ring parses the PKCS#8 it just wrote")
            }
            Alg::Sm2 => {
                // A uniformly random scalar, drawn again in the (2^-32 likely)
                // case it is not in [1, n-2] as GM/T 0003.2 §6.1 requires.
                for _ in 0..64 {
                    let bytes = crate::crypto::random_bytes::<32>();
                    if let Ok(key) = Self::from_secret(alg, &bytes) {
                        return key;
                    }
                }
                panic!("the operating system random source returns no usable SM2 scalar")
            }
        }
    }

    /// A key from its stored private form: PKCS#8 (v1 or v2) for Ed25519
    /// and ES256, the 32-byte big-endian private scalar `d` for SM2.
    pub fn from_secret(alg: Alg, secret: &[u8]) -> Result<SigningKey, KeyError> {
        Self::build(alg, secret, None)
    }

    /// [`SigningKey::from_secret`] under `kid`, or the SHA-256 kid.
    fn build(alg: Alg, secret: &[u8], kid: Option<Kid>) -> Result<SigningKey, KeyError> {
        let (key, public_key) = match alg {
            Alg::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(secret)
                    .map_err(|_| KeyError::BadKey(alg))?;
                let public = pair.public_key().as_ref().to_vec();
                (SoftwareKey::Ed25519(pair), public)
            }
            Alg::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    secret,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|_| KeyError::BadKey(alg))?;
                let public = pair.public_key().as_ref().to_vec();
                (SoftwareKey::Es256(pair), public)
            }
            Alg::Sm2 => {
                let key = sm2_private(secret).ok_or(KeyError::BadKey(alg))?;
                let public = key.verifying_key().to_sec1_bytes().to_vec();
                (SoftwareKey::Sm2(Box::new(key)), public)
            }
        };
        let kid = kid.unwrap_or_else(|| Kid::of_public_key(&public_key));
        let verifying = VerifyingKey::with_kid(alg, &public_key, kid)?;
        let software = Arc::new(Software {
            key,
            secret: secret.to_vec(),
            verifying,
        });
        Ok(SigningKey {
            signer: software.clone(),
            software: Some(software),
        })
    }

    /// The same key known under `kid`, which must be a derivation of its
    /// public key ([`Kid::names`]): the national suite's SM3 kid, or the kid
    /// a stored key was saved under.
    pub fn with_kid(self, kid: Kid) -> Result<SigningKey, KeyError> {
        let alg = self.alg();
        if !kid.names(self.public_key()) {
            return Err(KeyError::BadKey(alg));
        }
        let software = self.software.ok_or(KeyError::NotExportable)?;
        Self::build(alg, &software.secret, Some(kid))
    }

    /// An Ed25519 key from PKCS#8 (v1 or v2).
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
        Self::from_secret(Alg::Ed25519, der)
    }

    /// A key whose private half lives elsewhere (a hardware device): it signs
    /// through `signer` and cannot be sealed.
    pub fn from_signer(signer: Arc<dyn TokenSigner>) -> SigningKey {
        SigningKey {
            signer,
            software: None,
        }
    }

    /// An Ed25519 key from a fixed 32-byte seed (RFC 8032 private key). For
    /// test vectors and interoperability; production keys are generated.
    pub fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| KeyError::BadKey(Alg::Ed25519))?;
        let mut der = Vec::with_capacity(85);
        der.extend_from_slice(&PKCS8_PREFIX);
        der.extend_from_slice(seed);
        der.extend_from_slice(&PKCS8_MIDDLE);
        der.extend_from_slice(pair.public_key().as_ref());
        Self::from_pkcs8(&der)
    }

    /// This key's kid.
    pub fn kid(&self) -> &Kid {
        &self.signer.verifying_key().kid
    }

    /// This key's algorithm.
    pub fn alg(&self) -> Alg {
        self.signer.verifying_key().alg
    }

    /// The public key in its stored form (see [`VerifyingKey::public_key`]).
    pub fn public_key(&self) -> &[u8] {
        self.signer.verifying_key().public_key()
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signer.verifying_key().clone()
    }

    /// The private key in its stored form (see [`SigningKey::from_secret`]),
    /// `None` for a device's key. Handle with care: this is the key in clear.
    pub fn secret_bytes(&self) -> Option<&[u8]> {
        self.software.as_deref().map(|s| s.secret.as_slice())
    }

    /// The signature of `msg` under this key's algorithm.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signer.sign(msg)
    }

    /// The private key encrypted under the master key, for storage, bound
    /// to its algorithm.
    pub fn seal(&self, master: &MasterKey) -> Result<Vec<u8>, KeyError> {
        let secret = self.secret_bytes().ok_or(KeyError::NotExportable)?;
        Ok(master.seal(seal_purpose(self.alg()), secret))
    }

    /// Opens what [`SigningKey::seal`] produced for a key of `alg`.
    pub fn unseal(master: &MasterKey, alg: Alg, sealed: &[u8]) -> Result<SigningKey, KeyError> {
        let secret = master
            .open(seal_purpose(alg), sealed)
            .map_err(|_| KeyError::Unseal)?;
        Self::from_secret(alg, &secret)
    }
}

/// An SM2 private scalar in [1, n-2] (GM/T 0003.2 §6.1: `d = n-1` has no
/// `(1+d)^-1`, which every signature needs).
fn sm2_private(secret: &[u8]) -> Option<sm2::dsa::SigningKey> {
    use sm2::elliptic_curve::ff::PrimeField;
    let bytes: [u8; 32] = secret.try_into().ok()?;
    let d = Option::<sm2::Scalar>::from(sm2::Scalar::from_repr(bytes.into()))?;
    if bool::from((d + sm2::Scalar::ONE).is_zero()) {
        return None;
    }
    sm2::dsa::SigningKey::from_slice(SM2_SIGNER_ID, &bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_sha256_prefix_and_b64_round_trips() {
        for alg in Alg::ALL {
            let key = SigningKey::generate_alg(alg);
            assert_eq!(key.public_key().len(), alg.public_key_len());
            let digest = sha256(key.public_key());
            assert_eq!(key.kid().as_bytes(), &digest[..8]);
            assert_eq!(key.kid().to_b64().len(), 11);
            assert_eq!(Kid::from_b64(&key.kid().to_b64()), Some(*key.kid()));
        }
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
        let again = SigningKey::from_pkcs8(key.secret_bytes().unwrap()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(hex::encode(key.sign(b"").unwrap()), "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    }

    #[test]
    fn each_key_verifies_its_own_signatures_only() {
        let keys: Vec<_> = Alg::ALL.into_iter().map(SigningKey::generate_alg).collect();
        for signer in &keys {
            let sig = signer.sign(b"msg").unwrap();
            assert_eq!(sig.len(), 64);
            for verifier in &keys {
                let ok = verifier.verifying_key().verify(b"msg", &sig);
                assert_eq!(
                    ok,
                    signer.kid() == verifier.kid(),
                    "{} by {}",
                    signer.alg(),
                    verifier.alg()
                );
            }
            assert!(!signer.verifying_key().verify(b"msh", &sig));
        }
    }

    #[test]
    fn sealing_round_trips_and_needs_the_master_key_and_the_alg() {
        let master = MasterKey::generate();
        for alg in Alg::ALL {
            let key = SigningKey::generate_alg(alg);
            let sealed = key.seal(&master).unwrap();
            let secret = key.secret_bytes().unwrap();
            assert!(!sealed
                .windows(16)
                .any(|w| secret.windows(16).any(|p| p == w)));
            let back = SigningKey::unseal(&master, alg, &sealed).unwrap();
            assert_eq!(back.public_key(), key.public_key());
            assert_eq!(
                SigningKey::unseal(&MasterKey::generate(), alg, &sealed).unwrap_err(),
                KeyError::Unseal
            );
            for other in Alg::ALL.into_iter().filter(|a| *a != alg) {
                assert_eq!(
                    SigningKey::unseal(&master, other, &sealed).unwrap_err(),
                    KeyError::Unseal
                );
            }
            assert_eq!(
                SigningKey::from_secret(alg, b"junk").unwrap_err(),
                KeyError::BadKey(alg)
            );
        }
    }

    #[test]
    fn sm2_refuses_scalars_outside_1_to_n_minus_2() {
        // n of the SM2 curve (GM/T 0003.5 §2 / GB/T 32918.5 §2).
        let n = hex::decode("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123")
            .unwrap();
        let mut n_minus_1 = n.clone();
        n_minus_1[31] -= 1;
        let mut n_minus_2 = n.clone();
        n_minus_2[31] -= 2;
        assert!(SigningKey::from_secret(Alg::Sm2, &[0; 32]).is_err());
        assert!(SigningKey::from_secret(Alg::Sm2, &n).is_err());
        assert!(SigningKey::from_secret(Alg::Sm2, &n_minus_1).is_err());
        assert!(SigningKey::from_secret(Alg::Sm2, &n_minus_2).is_ok());
    }

    #[test]
    fn a_key_may_go_by_its_sm3_kid_and_no_other() {
        let key = SigningKey::generate_alg(Alg::Sm2);
        let sm3_kid = Kid::of_public_key_sm3(key.public_key());
        assert_ne!(sm3_kid, *key.kid());
        let renamed = key.clone().with_kid(sm3_kid).unwrap();
        assert_eq!(*renamed.kid(), sm3_kid);
        assert_eq!(renamed.verifying_key().kid(), sm3_kid);
        assert_eq!(renamed.public_key(), key.public_key());
        assert!(key.clone().with_kid(Kid::from_bytes([0; 8])).is_err());
        let digest = crate::crypto::gm::sm3(key.public_key());
        assert_eq!(sm3_kid.as_bytes(), &digest[..8]);
    }

    #[test]
    fn public_keys_are_checked_for_shape() {
        for alg in Alg::ALL {
            assert_eq!(
                VerifyingKey::new(alg, &[4; 31]).unwrap_err(),
                KeyError::BadPublicKey(alg)
            );
        }
        let mut compressed = SigningKey::generate_alg(Alg::Sm2).public_key().to_vec();
        compressed[0] = 0x02;
        assert!(VerifyingKey::new(Alg::Sm2, &compressed).is_err());
        let mut off_curve = SigningKey::generate_alg(Alg::Sm2).public_key().to_vec();
        off_curve[64] ^= 1;
        assert!(VerifyingKey::new(Alg::Sm2, &off_curve).is_err());
    }

    #[test]
    fn debug_redacts() {
        for alg in Alg::ALL {
            let key = SigningKey::generate_alg(alg);
            let text = format!("{key:?}");
            assert!(text.contains("[redacted]"));
            assert!(!text.contains(&hex::encode(key.secret_bytes().unwrap())[..16]));
        }
    }
}
