//! The token core through its public API: round trips, every core reason
//! produced by a real crafted token, hostile input, QR, JWKS, sealed keys, and
//! the published test vectors.

use std::time::{Duration, Instant};

use coset::cwt::{ClaimsSetBuilder, Timestamp};
use coset::{iana, CborSerializable, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use healthcard::crypto::MasterKey;
use healthcard::token::{
    self, qr, Alg, Claims, Jwks, KeyRing, KeyState, Kid, Reason, SigningKey, TokenKind, Validation,
    MAX_TOKEN_LEN,
};
use proptest::prelude::*;
use ring::signature::Ed25519KeyPair;
use serde_json::Value;
use uuid::Uuid;

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const DYNAMIC_LIFETIME: i64 = 120;
const STATIC_LIFETIME: i64 = 5 * 365 * 86_400 + 86_400;
const SEED: [u8; 32] = [7; 32];

fn ring_with_seed() -> KeyRing {
    let mut ring = KeyRing::new("HC");
    ring.set_active(SigningKey::from_seed(&SEED).unwrap());
    ring
}

fn reason(text: &str, ring: &KeyRing, now: i64) -> Result<Claims, Reason> {
    token::verify(text, ring, &Validation::at(now))
        .map(|v| v.claims)
        .map_err(|r| r.reason)
}

fn to_bytes(text: &str) -> Vec<u8> {
    base45::decode(text.strip_prefix("EHC1:").unwrap()).unwrap()
}

fn to_text(bytes: &[u8]) -> String {
    format!("EHC1:{}", base45::encode(bytes))
}

/// Signs an arbitrary protected header and payload with the test key, the way
/// an attacker holding the key (or a buggy minter) could.
fn craft(alg: iana::Algorithm, kid: &[u8], payload: Vec<u8>) -> Vec<u8> {
    let pair = Ed25519KeyPair::from_seed_unchecked(&SEED).unwrap();
    let protected = HeaderBuilder::new()
        .algorithm(alg)
        .key_id(kid.to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| pair.sign(tbs).as_ref().to_vec())
        .build()
        .to_tagged_vec()
        .unwrap()
}

fn claims_builder() -> ClaimsSetBuilder {
    ClaimsSetBuilder::new()
        .issuer("HC".into())
        .expiration_time(Timestamp::WholeSeconds(NOW + 120))
        .issued_at(Timestamp::WholeSeconds(NOW))
        .cwt_id(vec![1; 16])
}

fn kid() -> Kid {
    *SigningKey::from_seed(&SEED).unwrap().kid()
}

#[test]
fn round_trip_both_kinds_and_qr_versions() {
    let ring = ring_with_seed();
    for (kind, lifetime) in [
        (TokenKind::Dynamic, DYNAMIC_LIFETIME),
        (TokenKind::Static, STATIC_LIFETIME),
    ] {
        let card = Uuid::new_v4();
        let minted = ring.mint(card, kind, NOW, lifetime).unwrap();
        assert!(minted.text.starts_with("EHC1:"));
        assert!(minted.text.len() <= MAX_TOKEN_LEN);
        let v = token::verify(&minted.text, &ring, &Validation::at(NOW + 1)).unwrap();
        assert_eq!(v.claims, minted.claims);
        assert_eq!(v.claims.card_id, card);
        assert_eq!(v.claims.kind, kind);
        assert_eq!(v.claims.issuer, "HC");
        assert_eq!(v.kid, minted.kid);
        let qr = qr::encode(&minted.text).unwrap();
        assert!(qr.version() <= 9, "{kind:?} is version {}", qr.version());
        eprintln!(
            "{kind:?}: {} chars, {} COSE bytes, QR version {}",
            minted.text.len(),
            to_bytes(&minted.text).len(),
            qr.version()
        );
        assert_eq!(qr::decode_png(&qr.to_png()).unwrap(), minted.text);
    }
}

#[test]
fn tokens_are_unique_per_mint() {
    let ring = ring_with_seed();
    let card = Uuid::new_v4();
    let a = ring.mint(card, TokenKind::Dynamic, NOW, 120).unwrap();
    let b = ring.mint(card, TokenKind::Dynamic, NOW, 120).unwrap();
    assert_ne!(a.claims.token_id, b.claims.token_id);
    assert_ne!(a.text, b.text);
}

#[test]
fn expired_and_not_yet_valid_carry_the_claims() {
    let ring = ring_with_seed();
    let t = ring
        .mint(Uuid::new_v4(), TokenKind::Dynamic, NOW, 120)
        .unwrap();
    let r = token::verify(&t.text, &ring, &Validation::at(NOW + 3600)).unwrap_err();
    assert_eq!(r.reason, Reason::Expired);
    assert_eq!(r.claims.as_ref(), Some(&t.claims));
    assert_eq!(r.kid, Some(t.kid));
    let future = ring
        .mint(Uuid::new_v4(), TokenKind::Static, NOW + 3600, 600)
        .unwrap();
    let r = token::verify(&future.text, &ring, &Validation::at(NOW)).unwrap_err();
    assert_eq!(r.reason, Reason::NotYetValid);
    assert_eq!(r.claims, Some(future.claims));
    let strict = Validation {
        now: NOW + 120,
        leeway_secs: 0,
    };
    assert_eq!(
        token::verify(&t.text, &ring, &strict).unwrap_err().reason,
        Reason::Expired
    );
}

#[test]
fn foreign_key_is_unknown_and_revoked_key_is_refused() {
    let ring = ring_with_seed();
    let mut other = KeyRing::new("HC");
    other.set_active(SigningKey::generate());
    let foreign = other
        .mint(Uuid::new_v4(), TokenKind::Dynamic, NOW, 120)
        .unwrap();
    let r = token::verify(&foreign.text, &ring, &Validation::at(NOW)).unwrap_err();
    assert_eq!(
        (r.reason, r.kid, r.claims),
        (Reason::UnknownKey, Some(foreign.kid), None)
    );

    let t = ring
        .mint(Uuid::new_v4(), TokenKind::Static, NOW, 600)
        .unwrap();
    let mut revoked = ring.clone();
    revoked.add_verifier(ring.active().unwrap().verifying_key(), KeyState::Revoked);
    let r = token::verify(&t.text, &revoked, &Validation::at(NOW)).unwrap_err();
    assert_eq!(r.reason, Reason::KeyRevoked);
    assert_eq!(r.claims, Some(t.claims.clone()));

    // A retired key still verifies what it signed.
    let mut rotated = ring.clone();
    rotated.set_active(SigningKey::generate());
    assert!(reason(&t.text, &rotated, NOW).is_ok());
    assert_eq!(
        reason(&t.text, &KeyRing::new("HC"), NOW),
        Err(Reason::UnknownKey)
    );
}

#[test]
fn flipped_signature_or_payload_bit_is_bad_signature() {
    let ring = ring_with_seed();
    let t = ring
        .mint(Uuid::new_v4(), TokenKind::Dynamic, NOW, 120)
        .unwrap();
    let bytes = to_bytes(&t.text);
    let mut sig = bytes.clone();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    assert_eq!(
        reason(&to_text(&sig), &ring, NOW),
        Err(Reason::BadSignature)
    );
    // The card id sits just before the last claim (kind) in the payload.
    let mut payload = bytes.clone();
    let card_pos = bytes.len() - 66 - 6 - 1;
    payload[card_pos] ^= 0x80;
    assert_eq!(
        reason(&to_text(&payload), &ring, NOW),
        Err(Reason::BadSignature)
    );
    // The kid in the protected header: now it names no key.
    let mut kid = bytes.clone();
    kid[8] ^= 0x01;
    assert_eq!(reason(&to_text(&kid), &ring, NOW), Err(Reason::UnknownKey));
}

#[test]
fn wrong_tag_wrong_alg_and_bad_claims_are_malformed() {
    let ring = ring_with_seed();
    let kid = kid();
    let valid = claims_builder()
        .private_claim(-65537, coset::cbor::Value::Bytes(vec![9; 16]))
        .private_claim(-65538, coset::cbor::Value::from(1))
        .build()
        .to_vec()
        .unwrap();
    let good = craft(iana::Algorithm::EdDSA, kid.as_bytes(), valid.clone());
    assert!(reason(&to_text(&good), &ring, NOW).is_ok());

    // Tag 17 (COSE_Mac0) instead of 18, and no tag at all.
    let mut mac0 = good.clone();
    mac0[0] = 0xd1;
    assert_eq!(reason(&to_text(&mac0), &ring, NOW), Err(Reason::Malformed));
    assert_eq!(
        reason(&to_text(&good[1..]), &ring, NOW),
        Err(Reason::Malformed)
    );

    // An algorithm that is none of ours: malformed, before any key is looked up.
    for alg in [
        iana::Algorithm::ES384,
        iana::Algorithm::PS256,
        iana::Algorithm::A128GCM,
    ] {
        let other = craft(alg, kid.as_bytes(), valid.clone());
        assert_eq!(reason(&to_text(&other), &ring, NOW), Err(Reason::Malformed));
    }
    // ES256 announced (but signed with Ed25519) for an Ed25519 key: ours, but
    // not this key's: bad_signature, never checked under ES256.
    let es256 = craft(iana::Algorithm::ES256, kid.as_bytes(), valid.clone());
    assert_eq!(
        reason(&to_text(&es256), &ring, NOW),
        Err(Reason::BadSignature)
    );

    // Valid signature, missing kind claim.
    let missing = claims_builder()
        .private_claim(-65537, coset::cbor::Value::Bytes(vec![9; 16]))
        .build()
        .to_vec()
        .unwrap();
    let t = to_text(&craft(iana::Algorithm::EdDSA, kid.as_bytes(), missing));
    let r = token::verify(&t, &ring, &Validation::at(NOW)).unwrap_err();
    assert_eq!(
        (r.reason, r.kid, r.claims),
        (Reason::Malformed, Some(kid), None)
    );

    // Valid signature, card id as text instead of 16 bytes.
    let mistyped = claims_builder()
        .private_claim(-65537, coset::cbor::Value::Text("card-1".into()))
        .private_claim(-65538, coset::cbor::Value::from(1))
        .build()
        .to_vec()
        .unwrap();
    let t = to_text(&craft(iana::Algorithm::EdDSA, kid.as_bytes(), mistyped));
    assert_eq!(reason(&t, &ring, NOW), Err(Reason::Malformed));

    // Valid signature, kind out of range.
    let kind2 = claims_builder()
        .private_claim(-65537, coset::cbor::Value::Bytes(vec![9; 16]))
        .private_claim(-65538, coset::cbor::Value::from(2))
        .build()
        .to_vec()
        .unwrap();
    let t = to_text(&craft(iana::Algorithm::EdDSA, kid.as_bytes(), kind2));
    assert_eq!(reason(&t, &ring, NOW), Err(Reason::Malformed));

    // Valid signature over deeply nested arrays.
    let nested = craft(iana::Algorithm::EdDSA, kid.as_bytes(), vec![0x81; 100]);
    assert_eq!(
        reason(&to_text(&nested), &ring, NOW),
        Err(Reason::Malformed)
    );

    // Non-shortest length encoding of the signature: same meaning, other bytes.
    let mut long_form = good[..good.len() - 66].to_vec();
    long_form.extend_from_slice(&[0x59, 0x00, 0x40]);
    long_form.extend_from_slice(&good[good.len() - 64..]);
    assert_eq!(
        reason(&to_text(&long_form), &ring, NOW),
        Err(Reason::Malformed)
    );
}

#[test]
fn hostile_text_is_malformed_quickly() {
    let ring = ring_with_seed();
    let huge = "A".repeat(1 << 20);
    let start = Instant::now();
    assert_eq!(reason(&huge, &ring, NOW), Err(Reason::Malformed));
    assert_eq!(
        reason(&format!("EHC1:{huge}"), &ring, NOW),
        Err(Reason::Malformed)
    );
    assert!(start.elapsed() < Duration::from_millis(50));

    for text in [
        "",
        "EHC1:",
        "EHC1",
        "HC1:NCFOXN%TS3DH",
        "ehc1:6BFOXN",
        "EHC1:😀",
        "EHC1:ABC\n",
    ] {
        assert_eq!(reason(text, &ring, NOW), Err(Reason::Malformed), "{text:?}");
    }
    // Deeply nested CBOR arrays and maps, as long as the cap allows.
    for byte in [0x81u8, 0x9f, 0xa1, 0xd2] {
        let nested = to_text(&vec![byte; 300]);
        assert!(nested.len() <= MAX_TOKEN_LEN);
        assert_eq!(reason(&nested, &ring, NOW), Err(Reason::Malformed));
    }
    // A byte string claiming 2^63 bytes.
    let mut lie = vec![
        0xd2, 0x84, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    lie.extend_from_slice(&[0; 16]);
    assert_eq!(reason(&to_text(&lie), &ring, NOW), Err(Reason::Malformed));
    // Just over the cap.
    let t = ring
        .mint(Uuid::new_v4(), TokenKind::Dynamic, NOW, 120)
        .unwrap();
    let padded = format!("{}{}", t.text, " ".repeat(MAX_TOKEN_LEN + 1 - t.text.len()));
    assert_eq!(reason(&padded, &ring, NOW), Err(Reason::Malformed));
}

#[test]
fn jwks_round_trip_verifies_minted_tokens() {
    let mut ring = ring_with_seed();
    let old = ring
        .mint(Uuid::new_v4(), TokenKind::Static, NOW, 600)
        .unwrap();
    ring.set_active(SigningKey::generate());
    let new = ring
        .mint(Uuid::new_v4(), TokenKind::Dynamic, NOW, 120)
        .unwrap();
    let json = serde_json::to_string(&ring.jwks()).unwrap();
    let jwks: Jwks = serde_json::from_str(&json).unwrap();
    let offline = KeyRing::from_jwks("HC", &jwks).unwrap();
    assert!(offline.active().is_none());
    assert!(reason(&old.text, &offline, NOW).is_ok());
    assert!(reason(&new.text, &offline, NOW).is_ok());
    let value: Value = serde_json::from_str(&json).unwrap();
    for key in value["keys"].as_array().unwrap() {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "EdDSA");
    }
}

#[test]
fn sealed_key_round_trip_and_wrong_master_fails() {
    let master = MasterKey::generate();
    let key = SigningKey::generate();
    let sealed = key.seal(&master).unwrap();
    let back = SigningKey::unseal(&master, Alg::Ed25519, &sealed).unwrap();
    assert_eq!(back.kid(), key.kid());
    let claims = Claims::new("HC", Uuid::new_v4(), TokenKind::Static, NOW, 60);
    assert_eq!(
        token::mint(&back, &claims).unwrap(),
        token::mint(&key, &claims).unwrap()
    );
    assert!(SigningKey::unseal(&MasterKey::generate(), Alg::Ed25519, &sealed).is_err());
    assert!(!format!("{key:?}").contains(&hex::encode(key.secret_bytes().unwrap())[..16]));
}

// ---- published vectors -------------------------------------------------

fn vectors() -> Vec<Value> {
    let text = include_str!("vectors/ehc1-vectors.json");
    let json: Value = serde_json::from_str(text).unwrap();
    json["vectors"].as_array().unwrap().clone()
}

fn vector_key(v: &Value) -> SigningKey {
    let seed: [u8; 32] = hex::decode(v["key"]["seed_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = SigningKey::from_seed(&seed).unwrap();
    let pkcs8 = hex::decode(v["key"]["pkcs8_hex"].as_str().unwrap()).unwrap();
    assert_eq!(SigningKey::from_pkcs8(&pkcs8).unwrap().kid(), key.kid());
    key
}

fn vector_claims(v: &Value) -> Claims {
    let c = &v["claims"];
    Claims {
        issuer: c["iss"].as_str().unwrap().into(),
        issued_at: c["iat"].as_i64().unwrap(),
        expires_at: c["exp"].as_i64().unwrap(),
        token_id: hex::decode(c["cti_hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
        card_id: c["card_id"].as_str().unwrap().parse().unwrap(),
        kind: c["kind"].as_str().unwrap().parse().unwrap(),
    }
}

#[test]
fn vectors_mint_exactly_and_verify() {
    let vs = vectors();
    assert!(vs.len() >= 2);
    for v in &vs {
        let key = vector_key(v);
        let jwk: healthcard::token::Jwk = serde_json::from_value(v["key"]["jwk"].clone()).unwrap();
        assert_eq!(jwk.to_verifying_key().unwrap(), key.verifying_key());
        let claims = vector_claims(v);
        let text = token::mint(&key, &claims).unwrap();
        assert_eq!(text, v["text"].as_str().unwrap(), "{}", v["name"]);
        assert_eq!(
            hex::encode(to_bytes(&text)),
            v["cose_hex"].as_str().unwrap()
        );
        let ring = KeyRing::from_jwks("HC", &Jwks { keys: vec![jwk] }).unwrap();
        let verified = token::verify(
            &text,
            &ring,
            &Validation::at(v["valid_at"].as_i64().unwrap()),
        )
        .unwrap();
        assert_eq!(verified.claims, claims);
        assert_eq!(verified.kid, *key.kid());
        assert_eq!(
            i64::from(qr::encode(&text).unwrap().version()),
            v["qr_version_m"].as_i64().unwrap()
        );
        // The signature is Ed25519 over the Sig_structure given in the vector.
        let tbs = hex::decode(v["sig_structure_hex"].as_str().unwrap()).unwrap();
        let sig = hex::decode(v["signature_hex"].as_str().unwrap()).unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key.public_key())
            .verify(&tbs, &sig)
            .unwrap();
        // And coset, an independent COSE reader, agrees.
        let cose = coset::CoseSign1::from_tagged_slice(&to_bytes(&text)).unwrap();
        assert_eq!(cose.tbs_data(b""), tbs);
    }
}

#[test]
fn every_vector_flipped_by_one_byte_is_refused() {
    for v in vectors() {
        let key = vector_key(&v);
        let mut ring = KeyRing::new("HC");
        ring.add_verifier(key.verifying_key(), KeyState::Active);
        let now = v["valid_at"].as_i64().unwrap();
        let text = v["text"].as_str().unwrap();
        let bytes = to_bytes(text);
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= mask;
                assert!(
                    reason(&to_text(&b), &ring, now).is_err(),
                    "byte {i} ^ {mask:#x}"
                );
            }
        }
        // And every character of the text replaced by its neighbour in the alphabet.
        const B45: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
        for i in 0..text.len() {
            let mut t = text.as_bytes().to_vec();
            let pos = B45.iter().position(|&c| c == t[i]).unwrap_or(0);
            t[i] = B45[(pos + 1) % B45.len()];
            let t = String::from_utf8(t).unwrap();
            assert!(reason(&t, &ring, now).is_err(), "char {i}");
        }
    }
}

/// Regenerates tests/vectors/ehc1-vectors.json:
/// `HEALTHCARD_WRITE_VECTORS=1 cargo test --test token -- --ignored write_vectors`.
#[test]
#[ignore]
fn write_vectors() {
    if std::env::var_os("HEALTHCARD_WRITE_VECTORS").is_none() {
        return;
    }
    let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
    let key = SigningKey::from_seed(&seed).unwrap();
    let jwk = healthcard::token::Jwk::from_verifying_key(&key.verifying_key());
    let card: Uuid = "3f2b8c1e-7a4d-4e9b-8c6f-1d2e3f405162".parse().unwrap();
    let mut out = Vec::new();
    for (name, kind, lifetime, cti) in [
        (
            "dynamic",
            TokenKind::Dynamic,
            DYNAMIC_LIFETIME,
            [0xd1u8; 16],
        ),
        ("static", TokenKind::Static, STATIC_LIFETIME, [0x5au8; 16]),
    ] {
        let claims = Claims {
            issuer: "HC".into(),
            issued_at: NOW,
            expires_at: NOW + lifetime,
            token_id: cti,
            card_id: card,
            kind,
        };
        let text = token::mint(&key, &claims).unwrap();
        let bytes = to_bytes(&text);
        let cose = coset::CoseSign1::from_tagged_slice(&bytes).unwrap();
        let protected = cose.protected.clone().original_data.unwrap();
        let payload = cose.payload.clone().unwrap();
        let diag = format!(
            "{{1: \"HC\", 4: {}, 6: {}, 7: h'{}', -65537: h'{}', -65538: {}}}",
            claims.expires_at,
            claims.issued_at,
            hex::encode(cti),
            hex::encode(card.as_bytes()),
            kind.code()
        );
        out.push(serde_json::json!({
            "name": name,
            "key": {
                "seed_hex": hex::encode(seed),
                "pkcs8_hex": hex::encode(key.secret_bytes().unwrap()),
                "public_key_hex": hex::encode(key.public_key()),
                "kid_hex": hex::encode(key.kid().as_bytes()),
                "jwk": jwk,
            },
            "claims": {
                "iss": claims.issuer, "iat": claims.issued_at, "exp": claims.expires_at,
                "cti_hex": hex::encode(cti), "card_id": card.to_string(), "kind": kind.as_str(),
            },
            "claims_diag": diag,
            "protected_hex": hex::encode(&protected),
            "payload_hex": hex::encode(&payload),
            "sig_structure_hex": hex::encode(cose.tbs_data(b"")),
            "signature_hex": hex::encode(&cose.signature),
            "cose_hex": hex::encode(&bytes),
            "text": text,
            "text_len": text.len(),
            "qr_version_m": qr::encode(&text).unwrap().version(),
            "valid_at": NOW + 60,
        }));
    }
    let doc = serde_json::json!({
        "description": "EHC1 test vectors: Ed25519 key from seed, CWT claims, tagged COSE_Sign1, base45 text. See docs/token-format.md.",
        "vectors": out,
    });
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/ehc1-vectors.json"
    );
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}

// ---- properties ----------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_never_accepted(
        alg in prop::sample::select(Alg::ALL.to_vec()),
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut ring = KeyRing::new("HC");
        ring.set_active(alg_key(alg));
        prop_assert!(token::verify(&to_text(&bytes), &ring, &Validation::at(NOW)).is_err());
        let lossy = String::from_utf8_lossy(&bytes);
        prop_assert!(token::verify(&lossy, &ring, &Validation::at(NOW)).is_err());
    }

    #[test]
    fn random_text_is_never_accepted(text in "EHC1:[0-9A-Z $%*+./:-]{0,300}") {
        let ring = ring_with_seed();
        prop_assert!(token::verify(&text, &ring, &Validation::at(NOW)).is_err());
    }

    #[test]
    fn mutated_tokens_are_never_accepted(
        alg in prop::sample::select(Alg::ALL.to_vec()),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
    ) {
        let mut ring = KeyRing::new("HC");
        ring.set_active(alg_key(alg));
        let claims = Claims {
            issuer: "HC".into(), issued_at: NOW, expires_at: NOW + 120, token_id: [3; 16],
            card_id: Uuid::from_bytes([4; 16]), kind: TokenKind::Dynamic,
        };
        let original = to_bytes(&token::mint(ring.active().unwrap(), &claims).unwrap());
        let mut bytes = original.clone();
        for (index, value, op) in edits {
            let i = index.index(bytes.len().max(1));
            match op {
                0 if !bytes.is_empty() => bytes[i] ^= value.max(1),
                1 => bytes.insert(i, value),
                2 if !bytes.is_empty() => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        prop_assume!(bytes != original);
        prop_assert!(token::verify(&to_text(&bytes), &ring, &Validation::at(NOW)).is_err());
    }
}

// ---- algorithms ------------------------------------------------------------

/// One fixed key per algorithm, made once (SM2 and P-256 generation is not free).
fn alg_key(alg: Alg) -> SigningKey {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| Alg::ALL.into_iter().map(SigningKey::generate_alg).collect());
    keys[Alg::ALL.iter().position(|a| *a == alg).unwrap()].clone()
}

fn cose_alg(id: i64) -> coset::Algorithm {
    match id {
        -8 => coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA),
        -7 => coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256),
        other => coset::RegisteredLabelWithPrivate::PrivateUse(other),
    }
}

/// A token whose header says `alg_id` and `kid`, signed by `signer` whatever
/// the header says: what an attacker holding some key could send.
fn craft_signed(signer: &SigningKey, alg_id: i64, kid: &[u8], payload: Vec<u8>) -> String {
    let mut protected = HeaderBuilder::new().key_id(kid.to_vec()).build();
    protected.alg = Some(cose_alg(alg_id));
    to_text(
        &CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .create_signature(b"", |tbs| signer.sign(tbs).unwrap())
            .build()
            .to_tagged_vec()
            .unwrap(),
    )
}

fn valid_payload(now: i64) -> Vec<u8> {
    ClaimsSetBuilder::new()
        .issuer("HC".into())
        .expiration_time(Timestamp::WholeSeconds(now + 120))
        .issued_at(Timestamp::WholeSeconds(now))
        .cwt_id(vec![1; 16])
        .private_claim(-65537, coset::cbor::Value::Bytes(vec![9; 16]))
        .private_claim(-65538, coset::cbor::Value::from(1))
        .build()
        .to_vec()
        .unwrap()
}

#[test]
fn a_token_is_checked_only_under_its_keys_algorithm_for_every_pairing() {
    let mut ring = KeyRing::new("HC");
    for alg in Alg::ALL {
        ring.add_verifier(alg_key(alg).verifying_key(), KeyState::Active);
    }
    for a in Alg::ALL {
        let key_a = alg_key(a);
        let kid_a = key_a.kid().as_bytes();
        let honest = craft_signed(&key_a, a.cose_id(), kid_a, valid_payload(NOW));
        assert!(reason(&honest, &ring, NOW).is_ok(), "{a}");
        for b in Alg::ALL.into_iter().filter(|b| *b != a) {
            let key_b = alg_key(b);
            // Header names A's key but B's algorithm, signed by B's key: a
            // valid B signature, but not by the key named.
            let by_b = craft_signed(&key_b, b.cose_id(), kid_a, valid_payload(NOW));
            assert_eq!(
                reason(&by_b, &ring, NOW),
                Err(Reason::BadSignature),
                "{a} key, {b} alg, {b} signer"
            );
            // Header names A's key and B's algorithm, signed by A's key.
            let lies = craft_signed(&key_a, b.cose_id(), kid_a, valid_payload(NOW));
            assert_eq!(
                reason(&lies, &ring, NOW),
                Err(Reason::BadSignature),
                "{a} key, {b} alg, {a} signer"
            );
            // And B's own token names B's key: fine.
            let own = craft_signed(
                &key_b,
                b.cose_id(),
                key_b.kid().as_bytes(),
                valid_payload(NOW),
            );
            assert!(reason(&own, &ring, NOW).is_ok(), "{b}");
        }
    }
}

#[test]
fn every_core_reason_with_each_algorithm() {
    for alg in Alg::ALL {
        let key = alg_key(alg);
        let kid = key.kid().as_bytes();
        let mut ring = KeyRing::new("HC");
        ring.add_verifier(key.verifying_key(), KeyState::Active);
        let good = craft_signed(&key, alg.cose_id(), kid, valid_payload(NOW));
        assert!(reason(&good, &ring, NOW).is_ok(), "{alg}");
        // An algorithm that is none of ours, correctly signed otherwise.
        let unknown = craft_signed(&key, -65602, kid, valid_payload(NOW));
        assert_eq!(
            reason(&unknown, &ring, NOW),
            Err(Reason::Malformed),
            "{alg}"
        );
        let mut bytes = to_bytes(&good);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            reason(&to_text(&bytes), &ring, NOW),
            Err(Reason::BadSignature),
            "{alg}"
        );
        assert_eq!(
            reason(&good, &KeyRing::new("HC"), NOW),
            Err(Reason::UnknownKey),
            "{alg}"
        );
        let mut revoked = KeyRing::new("HC");
        revoked.add_verifier(key.verifying_key(), KeyState::Revoked);
        assert_eq!(
            reason(&good, &revoked, NOW),
            Err(Reason::KeyRevoked),
            "{alg}"
        );
        assert_eq!(
            reason(&good, &ring, NOW + 120 + 60),
            Err(Reason::Expired),
            "{alg}"
        );
        assert_eq!(
            reason(&good, &ring, NOW - 61),
            Err(Reason::NotYetValid),
            "{alg}"
        );
        // Minted by the ring, too, and through a published JWKS.
        let mut minting = KeyRing::new("HC");
        minting.set_active(key.clone());
        let t = minting
            .mint(Uuid::new_v4(), TokenKind::Dynamic, NOW, 120)
            .unwrap();
        let offline = KeyRing::from_jwks("HC", &minting.jwks()).unwrap();
        assert!(reason(&t.text, &offline, NOW).is_ok(), "{alg}");
    }
}

#[test]
fn sm2_example_of_gmt_0003_verifies_under_our_key_type() {
    let text = include_str!("vectors/gm-standard-vectors.json");
    let v: Value = serde_json::from_str(text).unwrap();
    let v = &v["sm2_signature"];
    let h = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
    assert_eq!(v["signer_id"], healthcard::token::alg::SM2_SIGNER_ID);
    let mut point = vec![0x04];
    point.extend(h("public_key_x_hex"));
    point.extend(h("public_key_y_hex"));
    let key = SigningKey::from_secret(Alg::Sm2, &h("private_key_hex")).unwrap();
    assert_eq!(
        key.public_key(),
        &point[..],
        "d·G is the published public key"
    );
    let public = healthcard::token::VerifyingKey::new(Alg::Sm2, &point).unwrap();
    let mut sig = h("r_hex");
    sig.extend(h("s_hex"));
    let msg = v["message_ascii"].as_str().unwrap().as_bytes();
    assert!(public.verify(msg, &sig));
    assert!(!public.verify(b"message digesT", &sig));
    for i in [0, 63] {
        let mut bad = sig.clone();
        bad[i] ^= 1;
        assert!(!public.verify(msg, &bad));
    }
    // Our own signature of the same message verifies too (the nonce differs
    // from the example's k, so the signature does).
    assert!(public.verify(msg, &key.sign(msg).unwrap()));
}

/// DER of an ECDSA/SM2 signature `SEQUENCE { INTEGER r, INTEGER s }` from r‖s.
fn der_signature(rs: &[u8]) -> Vec<u8> {
    let int = |b: &[u8]| {
        let b = &b[b.iter().position(|&x| x != 0).unwrap_or(b.len() - 1)..];
        let mut out = vec![0x02];
        if b[0] & 0x80 != 0 {
            out.push(b.len() as u8 + 1);
            out.push(0);
        } else {
            out.push(b.len() as u8);
        }
        out.extend_from_slice(b);
        out
    };
    let body = [int(&rs[..32]), int(&rs[32..])].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

/// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) as PEM, for the openssl command.
fn spki_pem(alg: Alg, public_key: &[u8]) -> String {
    use base64::Engine;
    let der = match alg {
        // RFC 8410 §4: id-Ed25519.
        Alg::Ed25519 => [
            &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ][..],
            public_key,
        ]
        .concat(),
        // RFC 5480 §2: id-ecPublicKey with the named curve: secp256r1, or
        // SM2's 1.2.156.10197.1.301 (GM/T 0006-2012).
        Alg::Es256 | Alg::Sm2 => {
            let curve: &[u8] = if alg == Alg::Es256 {
                &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
            } else {
                &[0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d]
            };
            [
                &[
                    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                ][..],
                curve,
                &[0x03, 0x42, 0x00],
                public_key,
            ]
            .concat()
        }
    };
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// The `openssl` command line (an implementation we do not call) verifies
/// the signatures of our tokens of every algorithm. It must be installed
/// (scripts/setup does): this test fails rather than skips without it.
#[test]
fn openssl_command_line_verifies_our_tokens() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    for alg in Alg::ALL {
        let key = alg_key(alg);
        let mut ring = KeyRing::new("HC");
        ring.set_active(key.clone());
        let text = ring
            .mint(Uuid::new_v4(), TokenKind::Static, NOW, 600)
            .unwrap()
            .text;
        let cose = coset::CoseSign1::from_tagged_slice(&to_bytes(&text)).unwrap();
        let tbs = cose.tbs_data(b"");
        let p = |name: &str| dir.path().join(format!("{alg}-{name}"));
        std::fs::write(p("pub.pem"), spki_pem(alg, key.public_key())).unwrap();
        std::fs::write(p("tbs"), &tbs).unwrap();
        let mut flipped = tbs.clone();
        flipped[20] ^= 1;
        std::fs::write(p("flipped"), &flipped).unwrap();
        let sig = match alg {
            Alg::Ed25519 => cose.signature.clone(),
            Alg::Es256 | Alg::Sm2 => der_signature(&cose.signature),
        };
        std::fs::write(p("sig"), &sig).unwrap();
        let run = |input: &str| {
            let path = |n: &str| p(n).to_str().unwrap().to_string();
            let mut cmd = Command::new("openssl");
            match alg {
                Alg::Ed25519 => cmd.args(["pkeyutl", "-verify", "-rawin", "-pubin"]),
                Alg::Es256 => cmd.args([
                    "pkeyutl", "-verify", "-rawin", "-digest", "sha256", "-pubin",
                ]),
                Alg::Sm2 => cmd.args([
                    "pkeyutl",
                    "-verify",
                    "-rawin",
                    "-digest",
                    "sm3",
                    "-pkeyopt",
                    "distid:1234567812345678",
                    "-pubin",
                ]),
            };
            cmd.args([
                "-inkey",
                &path("pub.pem"),
                "-in",
                &path(input),
                "-sigfile",
                &path("sig"),
            ]);
            let out = cmd
                .output()
                .expect("the openssl command must be installed (scripts/setup)");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        let (ok, said) = run("tbs");
        assert!(
            ok && said.contains("Signature Verified Successfully"),
            "{alg}: {said}"
        );
        let (ok, said) = run("flipped");
        assert!(!ok, "{alg}: a changed Sig_structure must fail: {said}");
    }
}

// ---- one vector per algorithm ---------------------------------------------

/// The fixed key of each algorithm's vector, from published examples so that
/// it is known outside this code: Ed25519 the seed 00..1f as in
/// ehc1-vectors.json; P-256 the key of RFC 6979 A.2.5 (as PKCS#8 v1, the
/// form ring reads); SM2 the key of GM/T 0003.5-2012 Annex A.
fn alg_vector_key(alg: Alg) -> SigningKey {
    match alg {
        Alg::Ed25519 => SigningKey::from_seed(&core::array::from_fn(|i| i as u8)).unwrap(),
        Alg::Es256 => {
            let d = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
            let q = "0460FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6\
                     7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
            let der = hex::decode(format!(
                "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420{d}a144034200{q}"
            ))
            .unwrap();
            SigningKey::from_secret(Alg::Es256, &der).unwrap()
        }
        Alg::Sm2 => SigningKey::from_secret(
            Alg::Sm2,
            &hex::decode("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
                .unwrap(),
        )
        .unwrap(),
    }
}

fn alg_vector_claims() -> Claims {
    Claims {
        issuer: "HC".into(),
        issued_at: NOW,
        expires_at: NOW + STATIC_LIFETIME,
        token_id: [0x5a; 16],
        card_id: "3f2b8c1e-7a4d-4e9b-8c6f-1d2e3f405162".parse().unwrap(),
        kind: TokenKind::Static,
    }
}

fn alg_vectors() -> Vec<Value> {
    let json: Value = serde_json::from_str(include_str!("vectors/ehc1-alg-vectors.json")).unwrap();
    json["vectors"].as_array().unwrap().clone()
}

#[test]
fn one_vector_per_algorithm_verifies_and_refuses_every_flip() {
    let vs = alg_vectors();
    let algs: Vec<Alg> = vs
        .iter()
        .map(|v| v["alg"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(algs, Alg::ALL);
    for (v, alg) in vs.iter().zip(algs) {
        let key = alg_vector_key(alg);
        assert_eq!(
            hex::encode(key.secret_bytes().unwrap()),
            v["key"]["private_hex"]
        );
        let jwk: healthcard::token::Jwk = serde_json::from_value(v["key"]["jwk"].clone()).unwrap();
        assert_eq!(jwk.to_verifying_key().unwrap(), key.verifying_key());
        let ring = KeyRing::from_jwks("HC", &Jwks { keys: vec![jwk] }).unwrap();
        let text = v["text"].as_str().unwrap();
        let now = v["valid_at"].as_i64().unwrap();
        assert_eq!(reason(text, &ring, now), Ok(alg_vector_claims()), "{alg}");
        let cose = coset::CoseSign1::from_tagged_slice(&to_bytes(text)).unwrap();
        assert_eq!(hex::encode(cose.tbs_data(b"")), v["sig_structure_hex"]);
        assert_eq!(
            i64::from(qr::encode(text).unwrap().version()),
            v["qr_version_m"].as_i64().unwrap()
        );
        // Ed25519 and SM2 (RFC 6979-style nonce) mint the same text again;
        // ES256 signatures are randomised, so only the verification counts.
        let again = token::mint(&key, &alg_vector_claims()).unwrap();
        if alg == Alg::Es256 {
            assert_ne!(again, text);
            assert!(reason(&again, &ring, now).is_ok());
        } else {
            assert_eq!(again, text, "{alg}");
        }
        let bytes = to_bytes(text);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(reason(&to_text(&b), &ring, now).is_err(), "{alg} byte {i}");
        }
    }
}

/// Regenerates tests/vectors/ehc1-alg-vectors.json:
/// `HEALTHCARD_WRITE_VECTORS=1 cargo test --test token -- --ignored write_alg_vectors`.
/// The ES256 text changes each time (randomised signature); the others must not.
#[test]
#[ignore]
fn write_alg_vectors() {
    if std::env::var_os("HEALTHCARD_WRITE_VECTORS").is_none() {
        return;
    }
    let claims = alg_vector_claims();
    let mut out = Vec::new();
    for alg in Alg::ALL {
        let key = alg_vector_key(alg);
        let text = token::mint(&key, &claims).unwrap();
        let bytes = to_bytes(&text);
        let cose = coset::CoseSign1::from_tagged_slice(&bytes).unwrap();
        let diag = format!(
            "{{1: \"HC\", 4: {}, 6: {}, 7: h'{}', -65537: h'{}', -65538: {}}}",
            claims.expires_at,
            claims.issued_at,
            hex::encode(claims.token_id),
            hex::encode(claims.card_id.as_bytes()),
            claims.kind.code()
        );
        out.push(serde_json::json!({
            "alg": alg.as_str(),
            "cose_alg": alg.cose_id(),
            "key": {
                "private_hex": hex::encode(key.secret_bytes().unwrap()),
                "public_key_hex": hex::encode(key.public_key()),
                "kid_hex": hex::encode(key.kid().as_bytes()),
                "jwk": healthcard::token::Jwk::from_verifying_key(&key.verifying_key()),
            },
            "claims_diag": diag,
            "protected_hex": hex::encode(cose.protected.clone().original_data.unwrap()),
            "sig_structure_hex": hex::encode(cose.tbs_data(b"")),
            "signature_hex": hex::encode(&cose.signature),
            "cose_hex": hex::encode(&bytes),
            "text": text,
            "text_len": text.len(),
            "qr_version_m": qr::encode(&text).unwrap().version(),
            "valid_at": NOW + 60,
        }));
    }
    let doc = serde_json::json!({
        "description": "One static EHC1 token per signing algorithm (ed25519, es256, sm2), same claims. Keys: Ed25519 seed 00..1f; P-256 key of RFC 6979 A.2.5 (PKCS#8); SM2 key of GM/T 0003.5-2012 Annex A (the scalar d). SM2 signer ID 1234567812345678. See docs/token-format.md.",
        "vectors": out,
    });
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/ehc1-alg-vectors.json"
    );
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}
