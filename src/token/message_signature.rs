//! Node-to-node request signatures: HTTP Message Signatures (RFC 9421) over
//! `@method`, `@path`, `@query` and `content-digest` (RFC 9530, SHA-256),
//! with the parameters `created`, `nonce`, `keyid` and `alg="ed25519"`
//! (RFC 9421 §3.3.6). One label, `sig1`, and one fixed component list: a
//! request covering anything else is refused rather than half-understood.
//!
//! No HTTP framework here: the caller hands over method, path, query, body
//! and the two header values. Nonce replay is for the caller's store.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use super::keys::{Kid, SigningKey, VerifyingKey};

/// The covered components, in order, as serialized in `Signature-Input`.
pub const COMPONENTS: &str = r#"("@method" "@path" "@query" "content-digest")"#;
/// Header names.
pub const SIGNATURE_INPUT: &str = "signature-input";
pub const SIGNATURE: &str = "signature";
pub const CONTENT_DIGEST: &str = "content-digest";

/// `Content-Digest` of `body` (RFC 9530 §2): `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(crate::crypto::sha256(body)))
}

/// The `@query` component (RFC 9421 §2.2.7): `?` and the query, or `?` alone.
fn query_component(query: &str) -> String {
    format!("?{query}")
}

/// The signature base (RFC 9421 §2.5).
fn base(method: &str, path: &str, query: &str, digest: &str, params: &str) -> String {
    format!(
        "\"@method\": {}\n\"@path\": {path}\n\"@query\": {}\n\"content-digest\": {digest}\n\"@signature-params\": {params}",
        method.to_ascii_uppercase(),
        query_component(query)
    )
}

/// The three headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub content_digest: String,
    pub signature_input: String,
    pub signature: String,
}

/// Signs a request with a node key at `created` (unix seconds) with a fresh nonce.
pub fn sign(
    key: &SigningKey,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    created: i64,
) -> Result<Signed, super::KeyError> {
    let digest = content_digest(body);
    let nonce = URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<16>());
    let params = format!(
        "{COMPONENTS};created={created};nonce=\"{nonce}\";keyid=\"{}\";alg=\"ed25519\"",
        key.kid().to_b64()
    );
    let sig = key.sign(base(method, path, query, &digest, &params).as_bytes())?;
    Ok(Signed {
        content_digest: digest,
        signature_input: format!("sig1={params}"),
        signature: format!("sig1=:{}:", STANDARD.encode(sig)),
    })
}

/// Why a signed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request is not signed (Signature-Input, Signature, Content-Digest)")]
    Missing,
    #[error("the request signature headers cannot be read")]
    Malformed,
    #[error("Content-Digest does not match the body")]
    DigestMismatch,
    #[error("the request was signed too long ago or in the future")]
    Stale,
    #[error("the signing key is not a node key of the trust list")]
    UnknownNode,
    #[error("the request signature does not verify")]
    BadSignature,
}

/// A request signature that verified: who signed it, and the nonce to spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub keyid: Kid,
    pub nonce: String,
    pub created: i64,
}

/// What arrived with a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
    pub content_digest: Option<&'a str>,
    pub signature_input: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Verifies `req` at `now`: created within `max_age_secs` either way, the
/// digest of the body, the key named by `keyid` (found by `node_key`), and
/// the signature.
pub fn verify<'k>(
    req: &Request,
    now: i64,
    max_age_secs: i64,
    node_key: impl FnOnce(&Kid) -> Option<&'k VerifyingKey>,
) -> Result<Verified, SignatureError> {
    let (Some(digest), Some(input), Some(sig)) =
        (req.content_digest, req.signature_input, req.signature)
    else {
        return Err(SignatureError::Missing);
    };
    if input.len() > 512 || sig.len() > 256 || digest.len() > 128 {
        return Err(SignatureError::Malformed);
    }
    let params = input
        .trim()
        .strip_prefix("sig1=")
        .ok_or(SignatureError::Malformed)?;
    let rest = params
        .strip_prefix(COMPONENTS)
        .ok_or(SignatureError::Malformed)?;
    let (mut created, mut nonce, mut keyid, mut alg) = (None, None, None, None);
    for p in rest.split(';').skip(1) {
        let (name, value) = p.split_once('=').ok_or(SignatureError::Malformed)?;
        let quoted = || {
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|v| !v.contains(['"', '\\']))
                .ok_or(SignatureError::Malformed)
        };
        let slot = match name {
            "created" => &mut created,
            "nonce" => &mut nonce,
            "keyid" => &mut keyid,
            "alg" => &mut alg,
            _ => return Err(SignatureError::Malformed),
        };
        if slot.is_some() {
            return Err(SignatureError::Malformed);
        }
        *slot = Some(if name == "created" {
            value.to_string()
        } else {
            quoted()?.to_string()
        });
    }
    if !rest.starts_with(';') {
        return Err(SignatureError::Malformed);
    }
    let created: i64 = created
        .and_then(|c| c.parse().ok())
        .ok_or(SignatureError::Malformed)?;
    let nonce = nonce
        .filter(|n| (16..=64).contains(&n.len()))
        .ok_or(SignatureError::Malformed)?;
    if alg.is_some_and(|a| a != "ed25519") {
        return Err(SignatureError::Malformed);
    }
    let keyid = keyid
        .as_deref()
        .and_then(Kid::from_b64)
        .ok_or(SignatureError::Malformed)?;
    let signature = sig
        .trim()
        .strip_prefix("sig1=:")
        .and_then(|s| s.strip_suffix(':'))
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or(SignatureError::Malformed)?;
    if digest.trim() != content_digest(req.body) {
        return Err(SignatureError::DigestMismatch);
    }
    if (now - created).abs() > max_age_secs {
        return Err(SignatureError::Stale);
    }
    let key = node_key(&keyid).ok_or(SignatureError::UnknownNode)?;
    let base = base(req.method, req.path, req.query, digest.trim(), params);
    if !key.verify(base.as_bytes(), &signature) {
        return Err(SignatureError::BadSignature);
    }
    Ok(Verified {
        keyid,
        nonce,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(s: &'a Signed, body: &'a [u8], query: &'a str) -> Request<'a> {
        Request {
            method: "POST",
            path: "/federation/v1/resolve",
            query,
            body,
            content_digest: Some(&s.content_digest),
            signature_input: Some(&s.signature_input),
            signature: Some(&s.signature),
        }
    }

    #[test]
    fn digest_is_rfc9530_sha256() {
        // RFC 9530 §2 example body {"hello": "world"}.
        assert_eq!(
            content_digest(b"{\"hello\": \"world\"}"),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_fails() {
        let key = SigningKey::generate();
        let vk = key.verifying_key();
        let body = br#"{"token":"EHC1:x"}"#;
        let s = sign(&key, "POST", "/federation/v1/resolve", "", body, 1000).unwrap();
        assert!(s.signature_input.contains("keyid=\""));
        let ok = verify(&request(&s, body, ""), 1000, 30, |k| {
            (*k == vk.kid()).then_some(&vk)
        })
        .unwrap();
        assert_eq!(ok.keyid, vk.kid());
        assert_eq!(ok.created, 1000);
        let lookup = |k: &Kid| (*k == vk.kid()).then_some(&vk);
        assert_eq!(
            verify(&request(&s, b"{}", ""), 1000, 30, lookup).unwrap_err(),
            SignatureError::DigestMismatch
        );
        assert_eq!(
            verify(&request(&s, body, "since=1"), 1000, 30, lookup).unwrap_err(),
            SignatureError::BadSignature
        );
        let mut other_path = request(&s, body, "");
        other_path.path = "/federation/v1/revocations";
        assert_eq!(
            verify(&other_path, 1000, 30, lookup).unwrap_err(),
            SignatureError::BadSignature
        );
        assert_eq!(
            verify(&request(&s, body, ""), 1031, 30, lookup).unwrap_err(),
            SignatureError::Stale
        );
        assert_eq!(
            verify(&request(&s, body, ""), 1000, 30, |_| None).unwrap_err(),
            SignatureError::UnknownNode
        );
        let stranger = SigningKey::generate().verifying_key();
        assert_eq!(
            verify(&request(&s, body, ""), 1000, 30, |_| Some(&stranger)).unwrap_err(),
            SignatureError::BadSignature
        );
        let mut edited = s.clone();
        edited.signature_input = edited
            .signature_input
            .replace("created=1000", "created=1001");
        assert_eq!(
            verify(&request(&edited, body, ""), 1000, 30, lookup).unwrap_err(),
            SignatureError::BadSignature
        );
        let mut missing = request(&s, body, "");
        missing.signature = None;
        assert_eq!(
            verify(&missing, 1000, 30, lookup).unwrap_err(),
            SignatureError::Missing
        );
        let mut extra = s.clone();
        extra.signature_input = extra.signature_input.replace(";alg", ";tag=\"x\";alg");
        assert_eq!(
            verify(&request(&extra, body, ""), 1000, 30, lookup).unwrap_err(),
            SignatureError::Malformed
        );
    }

    #[test]
    fn nonces_differ() {
        let key = SigningKey::generate();
        let a = sign(&key, "GET", "/x", "", b"", 1).unwrap();
        let b = sign(&key, "GET", "/x", "", b"", 1).unwrap();
        assert_ne!(a.signature_input, b.signature_input);
    }
}
