//! The signature algorithms a key may have, with their names in each place
//! they appear: our API and store (`ed25519`), the COSE header (-8) and JWK.

use std::fmt;
use std::str::FromStr;

/// A signing key's algorithm. Each key has exactly one; a token names it in
/// its protected header and is only ever checked under its key's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    /// EdDSA over Ed25519 (RFC 8032, COSE -8): the default.
    Ed25519,
    /// ECDSA over P-256 with SHA-256 (COSE -7), signature `r‖s` (RFC 9053 §2.1).
    Es256,
    /// SM2 with SM3 (GM/T 0003-2012, GM/T 0004-2012), signer ID
    /// [`SM2_SIGNER_ID`], signature `r‖s`. COSE -65601 is ours, from the
    /// private-use range: no COSE or JOSE identifier for SM2 is registered.
    Sm2,
}

/// The distinguishing identifier hashed into every SM2 signature (`Z_A`): the
/// default of GM/T 0009-2012 §10, which is also what OpenSSL and most SM2
/// implementations use when none is given.
pub const SM2_SIGNER_ID: &str = "1234567812345678";

/// COSE alg of SM2 with SM3, from the private-use range (RFC 9053 §16.4:
/// values below -65536). Not registered anywhere; docs/token-format.md says so.
pub const COSE_ALG_SM2: i64 = -65601;
const _: () = assert!(COSE_ALG_SM2 < -65536, "in COSE's private-use range");

impl Alg {
    /// Every algorithm, default first.
    pub const ALL: [Alg; 3] = [Alg::Ed25519, Alg::Es256, Alg::Sm2];

    /// The name in the API, the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Ed25519 => "ed25519",
            Alg::Es256 => "es256",
            Alg::Sm2 => "sm2",
        }
    }

    /// The COSE `alg` header value.
    pub fn cose_id(self) -> i64 {
        match self {
            Alg::Ed25519 => -8,
            Alg::Es256 => -7,
            Alg::Sm2 => COSE_ALG_SM2,
        }
    }

    /// The algorithm a COSE `alg` value names, if it is one of ours.
    pub fn from_cose_id(id: i64) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.cose_id() == id)
    }

    /// The JWK `alg`: RFC 8037's `EdDSA`, RFC 7518's `ES256`, and `SM2SM3`
    /// (ours, as for the COSE value: JOSE registers nothing for SM2).
    pub fn jose_name(self) -> &'static str {
        match self {
            Alg::Ed25519 => "EdDSA",
            Alg::Es256 => "ES256",
            Alg::Sm2 => "SM2SM3",
        }
    }

    /// Length of the raw public key we store and publish: Ed25519's 32 bytes,
    /// or the uncompressed SEC1 point (`04‖x‖y`) of the two curves.
    pub fn public_key_len(self) -> usize {
        match self {
            Alg::Ed25519 => 32,
            Alg::Es256 | Alg::Sm2 => 65,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not an algorithm we sign with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signing algorithm (expected ed25519, es256 or sm2)")]
pub struct UnknownAlg;

impl FromStr for Alg {
    type Err = UnknownAlg;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Alg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(UnknownAlg)
    }
}

impl serde::Serialize for Alg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Alg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for a in Alg::ALL {
            assert_eq!(a.as_str().parse::<Alg>(), Ok(a));
            assert_eq!(Alg::from_cose_id(a.cose_id()), Some(a));
        }
        assert_eq!(Alg::from_cose_id(-35), None);
        assert!("ES256".parse::<Alg>().is_err());
    }
}
