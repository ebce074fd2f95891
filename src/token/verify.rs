//! Decoding and verifying a token text, with a typed outcome.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::alg::Alg;
use super::claims::Claims;
use super::keyring::KeyRing;
use super::keys::Kid;
use super::{cose, text};
use crate::domain::KeyState;

/// Longest token text accepted, checked before any decoding. Real tokens are
/// about 230 characters (a version 9 QR); twice that leaves room for a longer
/// issuer while bounding the work any input can cause.
pub const MAX_TOKEN_LEN: usize = 512;

/// When to check, and how much clock skew to forgive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validation {
    /// The current time, unix seconds.
    pub now: i64,
    /// Forgiven clock difference between minting and verifying host, seconds.
    pub leeway_secs: i64,
}

impl Validation {
    /// Default leeway.
    pub const DEFAULT_LEEWAY_SECS: i64 = 60;

    /// Checks at `now` with the default 60 s leeway.
    pub fn at(now: i64) -> Validation {
        Validation {
            now,
            leeway_secs: Self::DEFAULT_LEEWAY_SECS,
        }
    }
}

/// Why a token was refused: the stable codes of the product contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not an EHC1 token: too long, wrong prefix, bad base45 or CBOR, an
    /// algorithm that is none of ours, or a valid signature over missing or
    /// mistyped claims.
    Malformed,
    /// The signature does not match the named key, or the token names an
    /// algorithm other than its key's.
    BadSignature,
    /// No key of this issuer has that kid.
    UnknownKey,
    /// Signed by a key that has been revoked.
    KeyRevoked,
    /// Past its `exp` (beyond the leeway).
    Expired,
    /// Its `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// A dynamic token presented a second time (decided by the store).
    Replayed,
    /// The card has been revoked (decided by the store).
    CardRevoked,
    /// The card is suspended (decided by the store).
    CardSuspended,
    /// The card has been replaced by a reissued one (decided by the store).
    CardReplaced,
    /// Federation: the token's issuer is not in the trust list.
    IssuerUnknown,
    /// Federation: the issuer's node did not answer in time.
    IssuerUnavailable,
    /// Federation: a foreign card while this node's trust list has expired.
    TrustListExpired,
    /// A temporary card shown at a clinic other than the one that issued it
    /// (decided by the store).
    CardRestricted,
    /// A temporary card past its `valid_until` (decided by the store).
    CardExpired,
}

impl Reason {
    /// Every reason, in contract order.
    pub const ALL: [Reason; 15] = [
        Reason::Malformed,
        Reason::BadSignature,
        Reason::UnknownKey,
        Reason::KeyRevoked,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::Replayed,
        Reason::CardRevoked,
        Reason::CardSuspended,
        Reason::CardReplaced,
        Reason::IssuerUnknown,
        Reason::IssuerUnavailable,
        Reason::TrustListExpired,
        Reason::CardRestricted,
        Reason::CardExpired,
    ];

    /// The stable snake_case code of the API.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::BadSignature => "bad_signature",
            Reason::UnknownKey => "unknown_key",
            Reason::KeyRevoked => "key_revoked",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Replayed => "replayed",
            Reason::CardRevoked => "card_revoked",
            Reason::CardSuspended => "card_suspended",
            Reason::CardReplaced => "card_replaced",
            Reason::IssuerUnknown => "issuer_unknown",
            Reason::IssuerUnavailable => "issuer_unavailable",
            Reason::TrustListExpired => "trust_list_expired",
            Reason::CardRestricted => "card_restricted",
            Reason::CardExpired => "card_expired",
        }
    }

    /// An English sentence for people.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Malformed => "This is not a valid health card code.",
            Reason::BadSignature => "The code's signature is invalid: it may have been altered.",
            Reason::UnknownKey => "The code was signed by a key this service does not know.",
            Reason::KeyRevoked => "The code was signed by a key that has been withdrawn.",
            Reason::Expired => "The code has expired: ask for a fresh one.",
            Reason::NotYetValid => "The code is not valid yet: check the device clock.",
            Reason::Replayed => "This one-time code has already been used.",
            Reason::CardRevoked => "The card has been revoked.",
            Reason::CardSuspended => "The card is suspended.",
            Reason::CardReplaced => "The card has been replaced by a newer one.",
            Reason::IssuerUnknown => "The card's issuer is not in this service's trust list.",
            Reason::IssuerUnavailable => {
                "The card's home service did not answer in time: try again shortly."
            }
            Reason::TrustListExpired => {
                "This service's list of trusted issuers has expired: cards of other cities cannot be checked."
            }
            Reason::CardRestricted => {
                "This temporary card is valid only at the clinic that issued it."
            }
            Reason::CardExpired => "This temporary card is past its validity date.",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub reason: Reason,
    /// The kid named by the token, once the header could be read.
    pub kid: Option<Kid>,
    /// The claims, only when the signature was valid (e.g. `Expired`,
    /// `KeyRevoked`), so that the caller can log which card it was.
    pub claims: Option<Claims>,
}

impl Rejection {
    /// A rejection with nothing known about the token.
    pub fn new(reason: Reason) -> Rejection {
        Rejection {
            reason,
            kid: None,
            claims: None,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token refused: {}", self.reason.code())
    }
}

impl std::error::Error for Rejection {}

/// An accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// What it says.
    pub claims: Claims,
    /// The key that signed it.
    pub kid: Kid,
}

/// What a token's unauthenticated bytes say, to route it to its issuer's
/// keys: the kid of its header and, if the payload parses, its `iss`.
/// Nothing here is trusted: [`verify`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    pub kid: Kid,
    pub issuer: Option<String>,
}

/// Reads [`Peeked`] from a token text, `None` if it is not one.
pub fn peek(text: &str) -> Option<Peeked> {
    if text.len() > MAX_TOKEN_LEN {
        return None;
    }
    let bytes = text::decode(text)?;
    let sign1 = cose::parse_sign1(&bytes).ok()?;
    let kid = Kid::from_bytes(<[u8; 8]>::try_from(sign1.kid).ok()?);
    Some(Peeked {
        kid,
        issuer: Claims::from_cbor(sign1.payload).map(|c| c.issuer),
    })
}

/// Decodes and checks a token text against `ring` at `validation.now`.
///
/// Order: length cap, `EHC1:` prefix, base45, tagged COSE_Sign1 with protected
/// header {alg, kid} and an alg that is one of [`Alg`] (all `Malformed`), key
/// lookup (`UnknownKey`), the token's alg against its key's and the signature
/// over the Sig_structure under the key's own algorithm (`BadSignature`), key
/// state (`KeyRevoked`), claims (`Malformed`), then times (`Expired`,
/// `NotYetValid`). A key is never asked to check a signature of another
/// algorithm than its own.
///
/// The claims are parsed only after the signature holds: unauthenticated
/// payload bytes are never interpreted, and a refusal before that point
/// carries no claims. Whether the card is usable (revoked, replayed...) is
/// for the store to decide after this.
pub fn verify(
    text: &str,
    ring: &KeyRing,
    validation: &Validation,
) -> Result<VerifiedToken, Rejection> {
    if text.len() > MAX_TOKEN_LEN {
        return Err(Rejection::new(Reason::Malformed));
    }
    let bytes = text::decode(text).ok_or(Rejection::new(Reason::Malformed))?;
    let sign1 = cose::parse_sign1(&bytes).map_err(|_| Rejection::new(Reason::Malformed))?;
    let alg = Alg::from_cose_id(sign1.alg).ok_or(Rejection::new(Reason::Malformed))?;
    // Our kids are 8 bytes; any other length cannot name one of our keys.
    let kid = <[u8; 8]>::try_from(sign1.kid)
        .map(Kid::from_bytes)
        .map_err(|_| Rejection::new(Reason::UnknownKey))?;
    let refuse = |reason, claims| Rejection {
        reason,
        kid: Some(kid),
        claims,
    };
    let (key, state) = ring
        .verifier(&kid)
        .ok_or_else(|| refuse(Reason::UnknownKey, None))?;

    if alg != key.alg() {
        return Err(refuse(Reason::BadSignature, None));
    }
    let tbs = cose::sig_structure(sign1.protected, sign1.payload);
    if !key.verify(&tbs, sign1.signature) {
        return Err(refuse(Reason::BadSignature, None));
    }

    let claims = Claims::from_cbor(sign1.payload);
    if state == KeyState::Revoked {
        return Err(refuse(Reason::KeyRevoked, claims));
    }
    let claims = claims.ok_or_else(|| refuse(Reason::Malformed, None))?;

    let leeway = validation.leeway_secs.max(0);
    if validation.now >= claims.expires_at.saturating_add(leeway) {
        return Err(refuse(Reason::Expired, Some(claims)));
    }
    if claims.issued_at > validation.now.saturating_add(leeway) {
        return Err(refuse(Reason::NotYetValid, Some(claims)));
    }
    Ok(VerifiedToken { claims, kid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_contract_and_serde_matches() {
        let codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                "malformed",
                "bad_signature",
                "unknown_key",
                "key_revoked",
                "expired",
                "not_yet_valid",
                "replayed",
                "card_revoked",
                "card_suspended",
                "card_replaced",
                "issuer_unknown",
                "issuer_unavailable",
                "trust_list_expired",
                "card_restricted",
                "card_expired"
            ]
        );
        for r in Reason::ALL {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.code())
            );
            assert!(!r.message().is_empty());
        }
    }

    #[test]
    fn leeway_edges() {
        for alg in Alg::ALL {
            let mut ring = KeyRing::new("HC");
            ring.set_active(crate::token::SigningKey::generate_alg(alg));
            let t = ring
                .mint(
                    uuid::Uuid::new_v4(),
                    crate::token::TokenKind::Dynamic,
                    1000,
                    120,
                )
                .unwrap();
            let at = |now| verify(&t.text, &ring, &Validation::at(now)).map_err(|r| r.reason);
            assert!(at(1000).is_ok());
            assert!(at(1120 + 59).is_ok());
            assert_eq!(at(1120 + 60), Err(Reason::Expired));
            assert!(at(1000 - 60).is_ok());
            assert_eq!(at(1000 - 61), Err(Reason::NotYetValid));
        }
    }
}
