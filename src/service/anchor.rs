//! Access-log anchors: a signed statement of the chain head (seq, hash,
//! time, kid) that an operator keeps off the machine, and the check that
//! nothing up to it was rewritten since (docs/operations.md, "Anchoring the
//! access log").
//!
//! The text form, one `name: value` per line after a fixed first line:
//!
//! ```text
//! healthcard access-log anchor v1
//! seq: 42
//! hash: <64 hex digits: the MAC of row 42>
//! at: 2026-12-02T04:10:00Z
//! kid: <base64url of the first 8 bytes of SHA-256 of the public key>
//! public_key: <base64url of the Ed25519 public key>
//! signature: <base64url of the Ed25519 signature>
//! ```
//!
//! The signature covers the lines before it exactly as written above (each
//! ending in `\n`), rebuilt from the parsed values, so surrounding blank
//! lines or `\r\n` line ends do not matter.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};

use super::AppContext;
use crate::crypto::{ed25519_verify, sha256, AnchorKey, MasterKey};
use crate::store::access_log::{self, ChainReport};
use crate::store::{DbConnection, StoreError};

const FIRST_LINE: &str = "healthcard access-log anchor v1";

/// A signed statement of the chain head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: [u8; 32],
    pub at: DateTime<Utc>,
    pub public_key: [u8; 32],
    signature: Vec<u8>,
}

/// Why an anchor cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("not an anchor file: {0}")]
    Malformed(&'static str),
    #[error("anchor for seq {0}: signed by another key than this installation's anchor key")]
    OtherKey(i64),
    #[error("anchor for seq {0}: the signature does not verify (the file was changed)")]
    BadSignature(i64),
}

/// The anchor key's id: the first 8 bytes of SHA-256 of its public key.
fn kid(public_key: &[u8; 32]) -> String {
    B64.encode(&sha256(public_key)[..8])
}

fn signed_text(seq: i64, hash: &[u8; 32], at: &DateTime<Utc>, public_key: &[u8; 32]) -> String {
    format!(
        "{FIRST_LINE}\nseq: {seq}\nhash: {}\nat: {}\nkid: {}\npublic_key: {}\n",
        hex::encode(hash),
        at.to_rfc3339_opts(SecondsFormat::Secs, true),
        kid(public_key),
        B64.encode(public_key),
    )
}

impl Anchor {
    /// Signs the current head with `key`. The caller checks the chain first.
    pub fn take(conn: &mut DbConnection, key: &AnchorKey) -> Result<Anchor, StoreError> {
        let (seq, hash) = access_log::current_head(conn)?;
        let at = DateTime::<Utc>::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default();
        let public_key = key.public_key();
        let signature = key.sign(signed_text(seq, &hash, &at, &public_key).as_bytes());
        Ok(Anchor {
            seq,
            hash,
            at,
            public_key,
            signature,
        })
    }

    /// The text form (module comment).
    pub fn to_text(&self) -> String {
        format!(
            "{}signature: {}\n",
            signed_text(self.seq, &self.hash, &self.at, &self.public_key),
            B64.encode(&self.signature)
        )
    }

    /// Reads the text form; the signature is not checked here ([`Anchor::check`]).
    pub fn parse(text: &str) -> Result<Anchor, AnchorError> {
        use AnchorError::Malformed;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(FIRST_LINE) {
            return Err(Malformed(
                "the first line must be `healthcard access-log anchor v1`",
            ));
        }
        let mut field = |name: &'static str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(':'))
                .map(str::trim)
                .ok_or(Malformed("a line is missing or out of order"))
        };
        let seq: i64 = field("seq")?
            .parse()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or(Malformed("seq"))?;
        let hash: [u8; 32] = hex::decode(field("hash")?)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or(Malformed("hash"))?;
        let at = DateTime::parse_from_rfc3339(field("at")?)
            .map_err(|_| Malformed("at"))?
            .with_timezone(&Utc);
        let kid_text = field("kid")?.to_owned();
        let public_key: [u8; 32] = B64
            .decode(field("public_key")?)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or(Malformed("public_key"))?;
        let signature = B64
            .decode(field("signature")?)
            .map_err(|_| Malformed("signature"))?;
        if kid_text != kid(&public_key) {
            return Err(Malformed("kid does not name public_key"));
        }
        if lines.next().is_some() {
            return Err(Malformed("text after the signature"));
        }
        Ok(Anchor {
            seq,
            hash,
            at,
            public_key,
            signature,
        })
    }

    /// Checks that this installation's anchor key (derived from `master`)
    /// signed the anchor as it stands.
    pub fn check(&self, master: &MasterKey) -> Result<(), AnchorError> {
        if self.public_key != master.anchor_key().public_key() {
            return Err(AnchorError::OtherKey(self.seq));
        }
        let text = signed_text(self.seq, &self.hash, &self.at, &self.public_key);
        if !ed25519_verify(&self.public_key, text.as_bytes(), &self.signature) {
            return Err(AnchorError::BadSignature(self.seq));
        }
        Ok(())
    }
}

/// Checks the access log's chain, and with `anchor` that no row up to the
/// anchor's seq was rewritten.
pub fn verify_log(ctx: &AppContext, anchor: Option<&Anchor>) -> Result<ChainReport, StoreError> {
    let point = anchor.map(|a| (a.seq, a.hash));
    access_log::verify_chain_to(&mut *ctx.conn()?, &ctx.master.chain_key(), point)
}

/// Takes an anchor of the chain head, then checks the chain up to and past
/// it (what is signed has been checked): the anchor is only to be handed
/// out when the report has no `first_bad`.
pub fn take_checked(ctx: &AppContext) -> Result<(Anchor, ChainReport), StoreError> {
    let mut conn = ctx.conn()?;
    let anchor = Anchor::take(&mut conn, &ctx.master.anchor_key())?;
    let point = Some((anchor.seq, anchor.hash));
    let report = access_log::verify_chain_to(&mut conn, &ctx.master.chain_key(), point)?;
    Ok((anchor, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(master: &MasterKey) -> Anchor {
        let key = master.anchor_key();
        let at = DateTime::parse_from_rfc3339("2026-12-02T04:10:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let public_key = key.public_key();
        let signature = key.sign(signed_text(42, &[7; 32], &at, &public_key).as_bytes());
        Anchor {
            seq: 42,
            hash: [7; 32],
            at,
            public_key,
            signature,
        }
    }

    #[test]
    fn text_round_trips_and_verifies_with_its_own_key_only() {
        let master = MasterKey::from_bytes([3; 32]);
        let a = anchor(&master);
        let text = a.to_text();
        assert!(text.starts_with("healthcard access-log anchor v1\nseq: 42\nhash: 0707"));
        let back = Anchor::parse(&format!("\r\n{}\r\n", text.replace('\n', "\r\n"))).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.check(&master), Ok(()));
        assert_eq!(
            back.check(&MasterKey::from_bytes([4; 32])),
            Err(AnchorError::OtherKey(42))
        );
    }

    #[test]
    fn any_changed_value_fails_the_signature_or_the_parse() {
        let master = MasterKey::from_bytes([3; 32]);
        let text = anchor(&master).to_text();
        let changed = [
            text.replace("seq: 42", "seq: 41"),
            text.replace("hash: 07", "hash: 08"),
            text.replace("04:10:00Z", "04:10:01Z"),
        ];
        for t in changed {
            assert_eq!(
                Anchor::parse(&t).unwrap().check(&master),
                Err(AnchorError::BadSignature(Anchor::parse(&t).unwrap().seq))
            );
        }
        assert!(Anchor::parse(&text.replace("kid: ", "kid: x")).is_err());
        assert!(Anchor::parse(&text.replace("v1", "v2")).is_err());
        assert!(Anchor::parse(&format!("{text}extra: 1\n")).is_err());
        assert!(Anchor::parse("").is_err());
    }
}
