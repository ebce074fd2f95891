//! JSON Web Key Set export (RFC 7517, OKP keys per RFC 8037).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::keyring::KeyRing;
use super::keys::{KeyError, KeyState, Kid, VerifyingKey};

/// A JWK Set: what `/.well-known/jwks.json` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The published keys.
    pub keys: Vec<Jwk>,
}

/// One Ed25519 public key as a JWK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `"OKP"`.
    pub kty: String,
    /// Always `"Ed25519"`.
    pub crv: String,
    /// The raw public key, base64url without padding.
    pub x: String,
    /// base64url (no padding) of the 8 kid bytes in the token header.
    pub kid: String,
    /// Always `"sig"`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Always `"EdDSA"`.
    pub alg: String,
}

impl Jwk {
    /// The JWK of a verifying key.
    pub fn from_verifying_key(key: &VerifyingKey) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.public_key),
            kid: key.kid.to_b64(),
            use_: "sig".into(),
            alg: "EdDSA".into(),
        }
    }

    /// The verifying key of a JWK; its `kid` must match the key.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(KeyError::BadJwk("kty/crv must be OKP/Ed25519"));
        }
        if self.alg != "EdDSA" || self.use_ != "sig" {
            return Err(KeyError::BadJwk("alg/use must be EdDSA/sig"));
        }
        let x = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| KeyError::BadJwk("x is not base64url"))?;
        let public_key: [u8; 32] = x
            .try_into()
            .map_err(|_| KeyError::BadJwk("x is not 32 bytes"))?;
        let key = VerifyingKey::from_public_key(public_key);
        if Kid::from_b64(&self.kid) != Some(key.kid) {
            return Err(KeyError::BadJwk("kid does not match x"));
        }
        Ok(key)
    }
}

impl KeyRing {
    /// The public keys to publish: active and retired ones, never revoked ones.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .verifiers()
                .filter(|(_, state)| *state != KeyState::Revoked)
                .map(|(key, _)| Jwk::from_verifying_key(key))
                .collect(),
        }
    }

    /// A verification-only ring (no signing key) from a published key set,
    /// for offline kiosks and `healthcard verify`. Every key is taken as
    /// `Active` for verification (a JWKS does not say which one signs now).
    pub fn from_jwks(issuer: &str, jwks: &Jwks) -> Result<KeyRing, KeyError> {
        let mut ring = KeyRing::new(issuer);
        for jwk in &jwks.keys {
            ring.add_verifier(jwk.to_verifying_key()?, KeyState::Active);
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SigningKey;

    #[test]
    fn publishes_active_and_retired_only_and_round_trips() {
        let mut ring = KeyRing::new("HC");
        let (a, b, c) = (
            SigningKey::generate(),
            SigningKey::generate(),
            SigningKey::generate(),
        );
        ring.set_active(a.clone());
        ring.set_active(b.clone());
        ring.add_verifier(c.verifying_key(), KeyState::Revoked);
        let jwks = ring.jwks();
        let kids: Vec<_> = jwks.keys.iter().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, vec![a.kid().to_b64(), b.kid().to_b64()]);
        let json = serde_json::to_value(&jwks).unwrap();
        assert_eq!(json["keys"][0]["use"], "sig");
        assert_eq!(json["keys"][0]["kty"], "OKP");
        let back: Jwks = serde_json::from_value(json).unwrap();
        let ring2 = KeyRing::from_jwks("HC", &back).unwrap();
        assert!(ring2.active().is_none());
        assert_eq!(ring2.jwks(), jwks);
    }

    #[test]
    fn refuses_inconsistent_jwks() {
        let key = SigningKey::generate().verifying_key();
        let good = Jwk::from_verifying_key(&key);
        let mut wrong_kid = good.clone();
        wrong_kid.kid = SigningKey::generate().kid().to_b64();
        assert!(wrong_kid.to_verifying_key().is_err());
        let mut short = good.clone();
        short.x = "AAAA".into();
        assert!(short.to_verifying_key().is_err());
        let mut ec = good.clone();
        ec.kty = "EC".into();
        assert!(ec.to_verifying_key().is_err());
        assert_eq!(good.to_verifying_key(), Ok(key));
    }
}
