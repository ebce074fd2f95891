//! EHC1 tokens: a CWT claims set in a tagged COSE_Sign1 signed with Ed25519,
//! ES256 or SM2 (each key has one algorithm), as `EHC1:` + base45 text,
//! rendered as QR. No HTTP, no SQL.
//!
//! `docs/token-format.md` describes the format byte by byte.
//!
//! - [`claims`]: the claims and token kinds.
//! - [`alg`], [`keys`], [`keyring`], [`jwks`]: algorithms, keys, the ring, JWKS export.
//! - [`verify()`]: decoding and checking with a typed [`Rejection`].
//! - [`qr`]: SVG and PNG rendering.

pub mod alg;
mod cbor;
pub mod claims;
mod cose;
pub mod jwks;
pub mod keyring;
pub mod keys;
pub mod message_signature;
pub mod qr;
mod text;
pub mod trust_list;
pub mod verify;

pub use crate::domain::{KeyState, UnknownKeyState};
pub use alg::{Alg, UnknownAlg};
pub use claims::{Claims, TokenKind, UnknownTokenKind};
pub use jwks::{Jwk, Jwks};
pub use keyring::{KeyRing, MintedToken};
pub use keys::{KeyError, Kid, SigningKey, TokenSigner, VerifyingKey};
pub use text::{trim_scanned, PREFIX};
pub use verify::{verify, Reason, Rejection, Validation, VerifiedToken, MAX_TOKEN_LEN};

/// Signs `claims` with `key`: `"EHC1:"` + base45 of the tagged COSE_Sign1.
/// Deterministic for Ed25519 and SM2 keys (the same key and claims always
/// give the same text); ES256 signatures are randomised, as ring makes them.
pub fn mint(key: &SigningKey, claims: &Claims) -> Result<String, KeyError> {
    Ok(text::encode(&cose::sign1(key, claims.to_cbor())?))
}
