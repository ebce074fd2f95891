//! The federation's trust list: a compact JWS (RFC 7515 §7.1) signed offline
//! by the federation operator's Ed25519 key (`alg: "EdDSA"`, RFC 8037 §3.1),
//! `typ: "healthcard-trust-list+jws"`, over a JSON payload naming every
//! issuer with its token keys and its node keys (`docs/federation.md`).
//!
//! No HTTP, no SQL: [`sign`] and [`verify`] work on text; the service
//! fetches, keeps and refreshes the list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alg::Alg;
use super::jwks::{Jwk, Jwks};
use super::keyring::KeyRing;
use super::keys::{Kid, SigningKey, VerifyingKey};
use crate::domain::{IssuerCode, IssuerName};

/// The JWS `typ` of a trust list (RFC 7515 §4.1.9, media type
/// `application/healthcard-trust-list+jws`).
pub const TYP: &str = "healthcard-trust-list+jws";
/// The one signature algorithm a trust list may use.
pub const ALG: &str = "EdDSA";
/// Longest list accepted, checked before decoding (340 cities with a few
/// keys each is about 400 KB).
pub const MAX_LEN: usize = 4 * 1024 * 1024;
/// Most issuers one list may name.
pub const MAX_ISSUERS: usize = 4096;

/// One issuer as the operator signs it in (what `healthcard federation
/// describe` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// GB/T 2260 code of the issuing city (`iss` of its tokens).
    pub code: String,
    /// The name people see, e.g. 济南市.
    pub name: String,
    /// Where its node answers `/federation/v1/…`, `http(s)://host[:port][/path]`.
    pub base_url: String,
    /// Its token signing keys (its `/.well-known/jwks.json`).
    pub keys: Vec<Jwk>,
    /// The Ed25519 keys its nodes sign federation requests with.
    pub node_keys: Vec<Jwk>,
}

/// The signed payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Grows with every list the operator signs; a node refuses a lower one.
    pub sequence: u64,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub issuers: Vec<Entry>,
}

/// A parsed issuer of a verified list.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub code: IssuerCode,
    pub name: IssuerName,
    /// Without a trailing slash.
    pub base_url: String,
    /// Verification-only ring of its token keys (`iss` = its code).
    pub keys: KeyRing,
    /// Its node keys.
    pub node_keys: Vec<VerifyingKey>,
}

/// A trust list whose signature, header and entries have been checked.
#[derive(Debug, Clone)]
pub struct TrustList {
    pub payload: Payload,
    pub issuers: Vec<Issuer>,
    /// The compact JWS as received, served again unchanged.
    pub jws: String,
}

impl TrustList {
    pub fn sequence(&self) -> u64 {
        self.payload.sequence
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.payload.expires_at
    }

    pub fn issued_at(&self) -> DateTime<Utc> {
        self.payload.issued_at
    }

    /// Whether the list is past its `expires_at` at `now`.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.payload.expires_at
    }

    /// The issuer with `code`.
    pub fn issuer(&self, code: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.code.as_str() == code)
    }

    /// The issuer one of whose token keys is `kid`.
    pub fn issuer_of_key(&self, kid: &Kid) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.keys.verifier(kid).is_some())
    }

    /// The issuer and node key named `kid` (a node's request signature).
    pub fn node_key(&self, kid: &Kid) -> Option<(&Issuer, &VerifyingKey)> {
        self.issuers
            .iter()
            .find_map(|i| i.node_keys.iter().find(|k| k.kid() == *kid).map(|k| (i, k)))
    }
}

/// Why a trust list was refused. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustListError {
    #[error("not a compact JWS trust list: {0}")]
    Malformed(&'static str),
    #[error("the JWS typ is not {TYP}")]
    WrongType,
    #[error("the JWS alg is not {ALG}")]
    WrongAlg,
    #[error("the list names another operator key (kid)")]
    WrongKey,
    #[error("the operator's signature does not verify")]
    BadSignature,
    #[error("the list expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the list is issued in the future ({0})")]
    NotYetValid(DateTime<Utc>),
    #[error("sequence {got} is lower than {last}, the last good list's")]
    Rollback { got: u64, last: u64 },
    #[error("sequence {0} was already used by a different list")]
    SequenceReused(u64),
    #[error("issuer entry {index}: {reason}")]
    BadEntry { index: usize, reason: String },
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

/// Checks of [`verify`] that depend on the node: when, and the last good list.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub now: DateTime<Utc>,
    /// Forgiven clock difference for `issued_at`, seconds.
    pub leeway_secs: i64,
    /// The list in use, if any: a lower sequence is refused, the same
    /// sequence only for the same payload.
    pub last: Option<&'a TrustList>,
    /// Whether to check `expires_at` (`show` reports dates apart).
    pub check_dates: bool,
}

/// Signs `payload` with the operator's key: `header.payload.signature`.
pub fn sign(root: &SigningKey, payload: &Payload) -> Result<String, TrustListError> {
    if root.alg() != Alg::Ed25519 {
        return Err(TrustListError::WrongAlg);
    }
    let header = Header {
        alg: ALG.into(),
        typ: TYP.into(),
        kid: Some(root.kid().to_b64()),
    };
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("a header serializes"));
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).expect("a payload serializes"));
    let input = format!("{h}.{p}");
    let sig = root
        .sign(input.as_bytes())
        .map_err(|_| TrustListError::BadSignature)?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Verifies a compact JWS trust list against the operator's key `root`, in
/// this order: size and shape, header (`typ`, `alg`, `kid` if present), the
/// signature, then (only over signed bytes) the payload, its dates, its
/// sequence against the last good list, and every entry.
pub fn verify(text: &str, root: &VerifyingKey, check: &Check) -> Result<TrustList, TrustListError> {
    let text = text.trim();
    if text.len() > MAX_LEN {
        return Err(TrustListError::Malformed("too long"));
    }
    let mut parts = text.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TrustListError::Malformed("not three dot-separated parts"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TrustListError::Malformed("a part is not base64url"))
    };
    let header: Header = serde_json::from_slice(&decode(h)?)
        .map_err(|_| TrustListError::Malformed("the header is not a JWS header"))?;
    if header.typ != TYP {
        return Err(TrustListError::WrongType);
    }
    if header.alg != ALG || root.alg() != Alg::Ed25519 {
        return Err(TrustListError::WrongAlg);
    }
    if header
        .kid
        .as_deref()
        .is_some_and(|k| k != root.kid().to_b64())
    {
        return Err(TrustListError::WrongKey);
    }
    let signature = decode(s)?;
    let input = &text[..h.len() + 1 + p.len()];
    if !root.verify(input.as_bytes(), &signature) {
        return Err(TrustListError::BadSignature);
    }
    let payload: Payload = serde_json::from_slice(&decode(p)?)
        .map_err(|_| TrustListError::Malformed("the payload is not a trust list"))?;
    if check.check_dates {
        if check.now >= payload.expires_at {
            return Err(TrustListError::Expired(payload.expires_at));
        }
        if payload.issued_at > check.now + chrono::Duration::seconds(check.leeway_secs.max(0)) {
            return Err(TrustListError::NotYetValid(payload.issued_at));
        }
    }
    if let Some(last) = check.last {
        if payload.sequence < last.sequence() {
            return Err(TrustListError::Rollback {
                got: payload.sequence,
                last: last.sequence(),
            });
        }
        if payload.sequence == last.sequence() && payload != last.payload {
            return Err(TrustListError::SequenceReused(payload.sequence));
        }
    }
    let issuers = parse_entries(&payload.issuers)?;
    Ok(TrustList {
        payload,
        issuers,
        jws: text.to_string(),
    })
}

fn parse_entries(entries: &[Entry]) -> Result<Vec<Issuer>, TrustListError> {
    if entries.len() > MAX_ISSUERS {
        return Err(TrustListError::Malformed("too many issuers"));
    }
    let mut out: Vec<Issuer> = Vec::with_capacity(entries.len());
    for (index, e) in entries.iter().enumerate() {
        let bad = |reason: String| TrustListError::BadEntry { index, reason };
        let issuer = parse_entry(e).map_err(bad)?;
        if out.iter().any(|o| o.code == issuer.code) {
            return Err(bad(format!("issuer {} is listed twice", issuer.code)));
        }
        // A key names one issuer: the kid routes a token to its home node.
        for (kid, _) in issuer.keys.verifiers().map(|(k, s)| (k.kid(), s)) {
            if out.iter().any(|o| o.keys.verifier(&kid).is_some()) {
                return Err(bad(format!("token key {kid} is listed for two issuers")));
            }
        }
        for k in &issuer.node_keys {
            if out
                .iter()
                .any(|o| o.node_keys.iter().any(|n| n.kid() == k.kid()))
            {
                return Err(bad(format!(
                    "node key {} is listed for two issuers",
                    k.kid()
                )));
            }
        }
        out.push(issuer);
    }
    Ok(out)
}

/// One entry checked: code, name, URL and keys.
pub fn parse_entry(e: &Entry) -> Result<Issuer, String> {
    let code = IssuerCode::parse(&e.code).map_err(|err| format!("code: {err}"))?;
    let name = IssuerName::parse(&e.name).map_err(|err| format!("name: {err}"))?;
    let base_url = check_base_url(&e.base_url)?;
    let keys = KeyRing::from_jwks(
        code.as_str(),
        &Jwks {
            keys: e.keys.clone(),
        },
    )
    .map_err(|err| format!("keys: {err}"))?;
    let mut node_keys = Vec::with_capacity(e.node_keys.len());
    for jwk in &e.node_keys {
        let key = jwk
            .to_verifying_key()
            .map_err(|err| format!("node_keys: {err}"))?;
        if key.alg() != Alg::Ed25519 {
            return Err("node_keys: node keys are Ed25519".into());
        }
        node_keys.push(key);
    }
    if node_keys.is_empty() {
        return Err("node_keys: at least one node key".into());
    }
    Ok(Issuer {
        code,
        name,
        base_url,
        keys,
        node_keys,
    })
}

/// `http(s)://host[:port][/path]` without query, fragment, user or spaces;
/// returned without a trailing slash (the rule is [`crate::domain::http_base_url`]).
pub fn check_base_url(url: &str) -> Result<String, String> {
    crate::domain::http_base_url(url)
        .ok_or_else(|| format!("base_url must be http(s)://host[:port][/path], not {url:?}"))
}

/// The operator's key as a private JWK (RFC 8037 §2: OKP, Ed25519, `d` the
/// 32-byte seed), for the key file `healthcard federation keygen` writes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub d: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
}

impl std::fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateJwk {{ kid: {}, d: [redacted] }}", self.kid)
    }
}

/// A fresh operator key and its private JWK.
pub fn generate_root() -> (SigningKey, PrivateJwk) {
    let seed = crate::crypto::random_bytes::<32>();
    let key = SigningKey::from_seed(&seed).expect("any 32 bytes are an Ed25519 seed");
    let public = Jwk::from_verifying_key(&key.verifying_key());
    let private = PrivateJwk {
        kty: public.kty,
        crv: public.crv,
        x: public.x,
        d: URL_SAFE_NO_PAD.encode(seed),
        kid: public.kid,
        use_: public.use_,
        alg: public.alg,
    };
    (key, private)
}

/// The signing key of a private JWK; `x` and `kid` must match `d`.
pub fn root_from_private(jwk: &PrivateJwk) -> Result<SigningKey, String> {
    if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
        return Err("the operator key must be an OKP Ed25519 JWK".into());
    }
    let seed: [u8; 32] = URL_SAFE_NO_PAD
        .decode(&jwk.d)
        .ok()
        .and_then(|d| d.try_into().ok())
        .ok_or("d is not 32 bytes of base64url")?;
    let key = SigningKey::from_seed(&seed).map_err(|e| e.to_string())?;
    let public = Jwk::from_verifying_key(&key.verifying_key());
    if public.x != jwk.x || public.kid != jwk.kid {
        return Err("x or kid does not match d".into());
    }
    Ok(key)
}

/// The operator's public key from its public JWK (the node's
/// `HEALTHCARD_FEDERATION_ROOT_KEY` file); must be Ed25519.
pub fn root_from_public(jwk: &Jwk) -> Result<VerifyingKey, String> {
    let key = jwk.to_verifying_key().map_err(|e| e.to_string())?;
    if key.alg() != Alg::Ed25519 {
        return Err("the operator key must be Ed25519 (EdDSA)".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(code: &str) -> (Entry, SigningKey) {
        let token_key = SigningKey::generate();
        let node_key = SigningKey::generate();
        (
            Entry {
                code: code.into(),
                name: "济南市".into(),
                base_url: "http://127.0.0.1:9/".into(),
                keys: vec![Jwk::from_verifying_key(&token_key.verifying_key())],
                node_keys: vec![Jwk::from_verifying_key(&node_key.verifying_key())],
            },
            token_key,
        )
    }

    fn payload(sequence: u64, issuers: Vec<Entry>) -> Payload {
        let now = Utc::now();
        Payload {
            sequence,
            issued_at: now,
            expires_at: now + chrono::Duration::days(7),
            issuers,
        }
    }

    fn check(last: Option<&TrustList>) -> Check<'_> {
        Check {
            now: Utc::now(),
            leeway_secs: 60,
            last,
            check_dates: true,
        }
    }

    #[test]
    fn a_signed_list_verifies_and_routes_keys_to_issuers() {
        let (root, _) = generate_root();
        let (e, token_key) = entry("370100");
        let jws = sign(&root, &payload(3, vec![e])).unwrap();
        let list = verify(&jws, &root.verifying_key(), &check(None)).unwrap();
        assert_eq!(list.sequence(), 3);
        let issuer = list.issuer_of_key(token_key.kid()).unwrap();
        assert_eq!(issuer.code.as_str(), "370100");
        assert_eq!(issuer.base_url, "http://127.0.0.1:9");
        assert_eq!(issuer.keys.issuer(), "370100");
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jws.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["typ"], TYP);
        assert_eq!(header["alg"], "EdDSA");
    }

    #[test]
    fn every_byte_of_the_signature_and_payload_matters() {
        let (root, _) = generate_root();
        let jws = sign(&root, &payload(1, vec![entry("370100").0])).unwrap();
        let (other, _) = generate_root();
        assert_eq!(
            verify(&jws, &other.verifying_key(), &check(None)).unwrap_err(),
            TrustListError::WrongKey
        );
        let bytes = jws.as_bytes();
        let dot = jws.find('.').unwrap();
        for i in (dot + 1..bytes.len()).step_by(7) {
            if bytes[i] == b'.' {
                continue;
            }
            let mut flipped = bytes.to_vec();
            flipped[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let text = String::from_utf8(flipped).unwrap();
            assert!(
                verify(&text, &root.verifying_key(), &check(None)).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn wrong_typ_or_alg_is_refused_even_when_signed() {
        let (root, _) = generate_root();
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload(1, vec![])).unwrap());
        for (alg, typ, want) in [
            ("EdDSA", "JWT", TrustListError::WrongType),
            ("ES256", TYP, TrustListError::WrongAlg),
            ("none", TYP, TrustListError::WrongAlg),
        ] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"{typ}"}}"#));
            let input = format!("{h}.{p}");
            let sig = URL_SAFE_NO_PAD.encode(root.sign(input.as_bytes()).unwrap());
            let jws = format!("{input}.{sig}");
            assert_eq!(
                verify(&jws, &root.verifying_key(), &check(None)).unwrap_err(),
                want
            );
        }
    }

    #[test]
    fn expired_future_and_rolled_back_lists_are_refused() {
        let (root, _) = generate_root();
        let mut old = payload(1, vec![]);
        old.expires_at = Utc::now() - chrono::Duration::seconds(1);
        let jws = sign(&root, &old).unwrap();
        assert!(matches!(
            verify(&jws, &root.verifying_key(), &check(None)),
            Err(TrustListError::Expired(_))
        ));
        let mut future = payload(1, vec![]);
        future.issued_at = Utc::now() + chrono::Duration::hours(1);
        let jws = sign(&root, &future).unwrap();
        assert!(matches!(
            verify(&jws, &root.verifying_key(), &check(None)),
            Err(TrustListError::NotYetValid(_))
        ));
        let five = verify(
            &sign(&root, &payload(5, vec![])).unwrap(),
            &root.verifying_key(),
            &check(None),
        )
        .unwrap();
        let four = sign(&root, &payload(4, vec![])).unwrap();
        assert_eq!(
            verify(&four, &root.verifying_key(), &check(Some(&five))).unwrap_err(),
            TrustListError::Rollback { got: 4, last: 5 }
        );
        // The same list again is fine; another list under the same number is not.
        assert!(verify(&five.jws, &root.verifying_key(), &check(Some(&five))).is_ok());
        let other_five = sign(&root, &payload(5, vec![entry("370100").0])).unwrap();
        assert_eq!(
            verify(&other_five, &root.verifying_key(), &check(Some(&five))).unwrap_err(),
            TrustListError::SequenceReused(5)
        );
        let six = sign(&root, &payload(6, vec![])).unwrap();
        assert!(verify(&six, &root.verifying_key(), &check(Some(&five))).is_ok());
    }

    #[test]
    fn bad_entries_are_refused() {
        let (root, _) = generate_root();
        let (a, _) = entry("370100");
        let mut twice = a.clone();
        twice.name = "again".into();
        let mut bad_code = a.clone();
        bad_code.code = "HC".into();
        let mut bad_url = entry("510100").0;
        bad_url.base_url = "ftp://x".into();
        let mut no_node = entry("510100").0;
        no_node.node_keys.clear();
        let mut shared_key = entry("510100").0;
        shared_key.keys = a.keys.clone();
        for issuers in [
            vec![a.clone(), twice],
            vec![bad_code],
            vec![bad_url],
            vec![no_node],
            vec![a.clone(), shared_key],
        ] {
            let jws = sign(&root, &payload(1, issuers)).unwrap();
            assert!(matches!(
                verify(&jws, &root.verifying_key(), &check(None)),
                Err(TrustListError::BadEntry { .. })
            ));
        }
    }

    #[test]
    fn the_private_jwk_round_trips_and_hides_d() {
        let (key, private) = generate_root();
        let text = serde_json::to_string(&private).unwrap();
        let back: PrivateJwk = serde_json::from_str(&text).unwrap();
        assert_eq!(
            root_from_private(&back).unwrap().public_key(),
            key.public_key()
        );
        assert!(!format!("{back:?}").contains(&back.d));
        let mut wrong = back;
        wrong.x = Jwk::from_verifying_key(&SigningKey::generate().verifying_key()).x;
        assert!(root_from_private(&wrong).is_err());
    }
}
