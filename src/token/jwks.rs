//! JSON Web Key Set export (RFC 7517): OKP Ed25519 keys per RFC 8037, EC
//! P-256 keys per RFC 7518 §6.2, and SM2 keys in the same EC shape with
//! `crv: "SM2"` and `alg: "SM2SM3"` (ours: JOSE registers neither).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::alg::Alg;
use super::keyring::KeyRing;
use super::keys::{KeyError, Kid, VerifyingKey};
use crate::domain::KeyState;

/// A JWK Set: what `/.well-known/jwks.json` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The published keys.
    pub keys: Vec<Jwk>,
}

/// One public key as a JWK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `"OKP"` (Ed25519) or `"EC"` (P-256, SM2).
    pub kty: String,
    /// `"Ed25519"`, `"P-256"` or `"SM2"`.
    pub crv: String,
    /// The raw Ed25519 public key, or the curve point's x coordinate (32
    /// bytes), base64url without padding.
    pub x: String,
    /// The curve point's y coordinate (32 bytes); absent for OKP keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// base64url (no padding) of the 8 kid bytes in the token header.
    pub kid: String,
    /// Always `"sig"`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `"EdDSA"`, `"ES256"` or `"SM2SM3"`.
    pub alg: String,
}

/// `kty` and `crv` of each algorithm's JWK.
fn kty_crv(alg: Alg) -> (&'static str, &'static str) {
    match alg {
        Alg::Ed25519 => ("OKP", "Ed25519"),
        Alg::Es256 => ("EC", "P-256"),
        Alg::Sm2 => ("EC", "SM2"),
    }
}

impl Jwk {
    /// The JWK of a verifying key.
    pub fn from_verifying_key(key: &VerifyingKey) -> Jwk {
        let (kty, crv) = kty_crv(key.alg());
        let pk = key.public_key();
        let (x, y) = match key.alg() {
            Alg::Ed25519 => (URL_SAFE_NO_PAD.encode(pk), None),
            // `04‖x‖y`, checked when the key was built.
            Alg::Es256 | Alg::Sm2 => (
                URL_SAFE_NO_PAD.encode(&pk[1..33]),
                Some(URL_SAFE_NO_PAD.encode(&pk[33..65])),
            ),
        };
        Jwk {
            kty: kty.into(),
            crv: crv.into(),
            x,
            y,
            kid: key.kid().to_b64(),
            use_: "sig".into(),
            alg: key.alg().jose_name().into(),
        }
    }

    /// The verifying key of a JWK; its `kid` must match the key.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let alg = Alg::ALL
            .into_iter()
            .find(|a| a.jose_name() == self.alg)
            .ok_or(KeyError::BadJwk("alg must be EdDSA, ES256 or SM2SM3"))?;
        if self.use_ != "sig" {
            return Err(KeyError::BadJwk("use must be sig"));
        }
        if (self.kty.as_str(), self.crv.as_str()) != kty_crv(alg) {
            return Err(KeyError::BadJwk("kty/crv do not match alg"));
        }
        let coordinate = |text: &str| -> Result<[u8; 32], KeyError> {
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| KeyError::BadJwk("x or y is not base64url"))?
                .try_into()
                .map_err(|_| KeyError::BadJwk("x or y is not 32 bytes"))
        };
        let x = coordinate(&self.x)?;
        let public_key = match (alg, &self.y) {
            (Alg::Ed25519, None) => x.to_vec(),
            (Alg::Ed25519, Some(_)) => return Err(KeyError::BadJwk("an OKP key has no y")),
            (Alg::Es256 | Alg::Sm2, Some(y)) => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&coordinate(y)?);
                point
            }
            (Alg::Es256 | Alg::Sm2, None) => return Err(KeyError::BadJwk("an EC key needs y")),
        };
        // The kid is SHA-256's or (national suite) SM3's derivation of the key.
        let kid = Kid::from_b64(&self.kid)
            .filter(|k| k.names(&public_key))
            .ok_or(KeyError::BadJwk("kid does not match the key"))?;
        VerifyingKey::with_kid(alg, &public_key, kid)
            .map_err(|_| KeyError::BadJwk("x/y is not a point of the curve"))
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
    fn each_algorithm_has_its_standard_or_documented_shape() {
        let mut ring = KeyRing::new("HC");
        for alg in Alg::ALL {
            ring.set_active(SigningKey::generate_alg(alg));
        }
        let json = serde_json::to_value(ring.jwks()).unwrap();
        let shape = |i: usize| {
            let k = &json["keys"][i];
            (
                k["kty"].as_str().unwrap().to_string(),
                k["crv"].as_str().unwrap().to_string(),
                k["alg"].as_str().unwrap().to_string(),
                k.get("y").is_some(),
            )
        };
        assert_eq!(
            shape(0),
            ("OKP".into(), "Ed25519".into(), "EdDSA".into(), false)
        );
        assert_eq!(
            shape(1),
            ("EC".into(), "P-256".into(), "ES256".into(), true)
        );
        assert_eq!(shape(2), ("EC".into(), "SM2".into(), "SM2SM3".into(), true));
        let back: Jwks = serde_json::from_value(json).unwrap();
        assert_eq!(KeyRing::from_jwks("HC", &back).unwrap().jwks(), ring.jwks());
    }

    #[test]
    fn refuses_inconsistent_jwks() {
        for alg in Alg::ALL {
            let key = SigningKey::generate_alg(alg).verifying_key();
            let good = Jwk::from_verifying_key(&key);
            assert_eq!(good.to_verifying_key(), Ok(key));
            for other in Alg::ALL.into_iter().filter(|a| *a != alg) {
                let mut relabelled = good.clone();
                relabelled.alg = other.jose_name().into();
                assert!(relabelled.to_verifying_key().is_err());
            }
            let mut no_y = good.clone();
            no_y.y = None;
            let mut y = good.clone();
            y.y = Some(good.x.clone());
            assert!(no_y.to_verifying_key().is_err() || y.to_verifying_key().is_err());
        }
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
