//! The CWT claims set (RFC 8392) carried by an EHC1 token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::cbor::{self, Reader, Scalar};

/// CWT claim labels (RFC 8392 §4 and the private ones of the EHC1 contract).
pub(crate) mod label {
    pub(crate) const ISS: i64 = 1;
    pub(crate) const EXP: i64 = 4;
    pub(crate) const IAT: i64 = 6;
    pub(crate) const CTI: i64 = 7;
    /// The card's UUID as a 16-byte string.
    pub(crate) const CARD_ID: i64 = -65537;
    /// 0 = static (printed), 1 = dynamic (on screen).
    pub(crate) const KIND: i64 = -65538;
}

/// Which kind of card face a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Printed on a card: long-lived, dies with its card.
    Static,
    /// Shown on a phone: short-lived and accepted once.
    Dynamic,
}

impl TokenKind {
    /// `"static"` or `"dynamic"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Static => "static",
            TokenKind::Dynamic => "dynamic",
        }
    }

    /// The value of claim -65538.
    pub fn code(self) -> i64 {
        match self {
            TokenKind::Static => 0,
            TokenKind::Dynamic => 1,
        }
    }

    /// The kind for a claim -65538 value.
    pub fn from_code(code: i64) -> Option<TokenKind> {
        match code {
            0 => Some(TokenKind::Static),
            1 => Some(TokenKind::Dynamic),
            _ => None,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was neither `static` nor `dynamic`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token kind (expected \"static\" or \"dynamic\")")]
pub struct UnknownTokenKind;

impl FromStr for TokenKind {
    type Err = UnknownTokenKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "static" => Ok(TokenKind::Static),
            "dynamic" => Ok(TokenKind::Dynamic),
            _ => Err(UnknownTokenKind),
        }
    }
}

/// What a token says. No personal data: only an opaque card reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claims {
    /// `iss` (1): the issuing service, kept short (default "HC") for QR size.
    pub issuer: String,
    /// `iat` (6), unix seconds.
    pub issued_at: i64,
    /// `exp` (4), unix seconds; the token is valid strictly before this instant.
    pub expires_at: i64,
    /// `cti` (7): 16 random bytes, unique per token (the replay key).
    pub token_id: [u8; 16],
    /// -65537: the card's UUID.
    pub card_id: Uuid,
    /// -65538: static or dynamic.
    pub kind: TokenKind,
}

impl Claims {
    /// Claims for a new token with a fresh random `cti`.
    pub fn new(
        issuer: &str,
        card_id: Uuid,
        kind: TokenKind,
        issued_at: i64,
        lifetime_secs: i64,
    ) -> Claims {
        Claims {
            issuer: issuer.to_owned(),
            issued_at,
            expires_at: issued_at.saturating_add(lifetime_secs),
            token_id: crate::crypto::random_bytes::<16>(),
            card_id,
            kind,
        }
    }

    /// The CWT payload: a CBOR map in RFC 8949 deterministic order
    /// (1, 4, 6, 7, -65537, -65538), shortest forms.
    pub(crate) fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.issuer.len());
        cbor::write_head(&mut out, cbor::MAP, 6);
        cbor::write_int(&mut out, label::ISS);
        cbor::write_head(&mut out, cbor::TEXT, self.issuer.len() as u64);
        out.extend_from_slice(self.issuer.as_bytes());
        for (lbl, n) in [(label::EXP, self.expires_at), (label::IAT, self.issued_at)] {
            cbor::write_int(&mut out, lbl);
            cbor::write_int(&mut out, n);
        }
        cbor::write_int(&mut out, label::CTI);
        cbor::write_bytes(&mut out, &self.token_id);
        cbor::write_int(&mut out, label::CARD_ID);
        cbor::write_bytes(&mut out, self.card_id.as_bytes());
        cbor::write_int(&mut out, label::KIND);
        cbor::write_int(&mut out, self.kind.code());
        out
    }

    /// Reads a payload written by [`Claims::to_cbor`]. Every claim must be
    /// present with its type; unknown scalar claims are ignored so that later
    /// versions can add some; anything nested is refused.
    pub(crate) fn from_cbor(payload: &[u8]) -> Option<Claims> {
        let mut r = Reader::new(payload);
        let (mut iss, mut iat, mut exp, mut cti, mut card, mut kind) =
            (None, None, None, None, None, None);
        cbor::read_flat_map(&mut r, 16, |lbl, value| {
            let bad = cbor::CborError;
            match (lbl, value) {
                (label::ISS, Scalar::Text(t)) => iss = Some(t),
                (label::IAT, Scalar::Int(n)) => iat = Some(n),
                (label::EXP, Scalar::Int(n)) => exp = Some(n),
                (label::CTI, Scalar::Bytes(b)) => {
                    cti = Some(<[u8; 16]>::try_from(b).map_err(|_| bad)?)
                }
                (label::CARD_ID, Scalar::Bytes(b)) => {
                    card = Some(Uuid::from_slice(b).map_err(|_| bad)?)
                }
                (label::KIND, Scalar::Int(n)) => kind = Some(TokenKind::from_code(n).ok_or(bad)?),
                (
                    label::ISS
                    | label::IAT
                    | label::EXP
                    | label::CTI
                    | label::CARD_ID
                    | label::KIND,
                    _,
                ) => return Err(bad),
                _ => {}
            }
            Ok(())
        })
        .ok()?;
        if !r.is_empty() {
            return None;
        }
        Some(Claims {
            issuer: iss?.to_owned(),
            issued_at: iat?,
            expires_at: exp?,
            token_id: cti?,
            card_id: card?,
            kind: kind?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Claims {
        Claims {
            issuer: "HC".into(),
            issued_at: 1_700_000_000,
            expires_at: 1_700_000_120,
            token_id: [0x11; 16],
            card_id: Uuid::from_bytes([0x22; 16]),
            kind: TokenKind::Dynamic,
        }
    }

    #[test]
    fn cbor_round_trip_in_deterministic_order() {
        let c = sample();
        let bytes = c.to_cbor();
        // a6, then 01 62 "HC", then 04 (exp) before 06 (iat).
        assert_eq!(&bytes[..5], &[0xa6, 0x01, 0x62, b'H', b'C']);
        assert_eq!(bytes[5], 0x04);
        assert_eq!(Claims::from_cbor(&bytes), Some(c));
    }

    /// coset, a mainstream COSE/CWT library, reads our bytes as the same
    /// claims and writes the very same bytes back.
    #[test]
    fn coset_reads_and_rewrites_what_we_write() {
        use coset::cwt::{ClaimsSet, Timestamp};
        use coset::CborSerializable;
        for (iat, exp) in [
            (1_700_000_000, 1_700_000_120),
            (0, 23),
            (-1, 24),
            (-25, i64::MAX),
        ] {
            let c = Claims {
                issued_at: iat,
                expires_at: exp,
                ..sample()
            };
            let ours = c.to_cbor();
            let theirs = ClaimsSet::from_slice(&ours).expect("coset parses it");
            assert_eq!(theirs.issuer.as_deref(), Some("HC"));
            assert_eq!(theirs.issued_at, Some(Timestamp::WholeSeconds(iat)));
            assert_eq!(theirs.expiration_time, Some(Timestamp::WholeSeconds(exp)));
            assert_eq!(theirs.cwt_id.as_deref(), Some(&[0x11; 16][..]));
            assert_eq!(theirs.rest.len(), 2);
            assert_eq!(theirs.to_vec().unwrap(), ours);
            assert_eq!(Claims::from_cbor(&ours), Some(c));
        }
    }

    #[test]
    fn kind_text_and_codes() {
        for k in [TokenKind::Static, TokenKind::Dynamic] {
            assert_eq!(k.as_str().parse::<TokenKind>(), Ok(k));
            assert_eq!(TokenKind::from_code(k.code()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert!("Static".parse::<TokenKind>().is_err());
        assert_eq!(TokenKind::from_code(2), None);
    }

    #[test]
    fn missing_or_mistyped_claims_are_refused() {
        let bytes = sample().to_cbor();
        assert_eq!(Claims::from_cbor(&bytes[..bytes.len() - 1]), None);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Claims::from_cbor(&trailing), None);
        // iss as a byte string instead of text.
        let mut wrong = bytes.clone();
        wrong[2] = 0x42;
        assert_eq!(Claims::from_cbor(&wrong), None);
        // A map of five entries: the last claim (kind) is missing.
        let mut short = bytes.clone();
        short[0] = 0xa5;
        short.truncate(bytes.len() - 6);
        assert_eq!(Claims::from_cbor(&short), None);
    }
}
