//! Token core benchmarks: `cargo bench --bench token`.
//!
//! Per algorithm, the floor is the bare primitive of the library we call
//! (ring for Ed25519 and ES256, RustCrypto `sm2` for SM2) over the same
//! Sig_structure; library verify and sign should stay within 1.1x of it.

use std::hint::black_box;

use coset::TaggedCborSerializable;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use healthcard::token::{self, qr, Alg, Claims, KeyRing, SigningKey, TokenKind, Validation};
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519,
};
use sm2::dsa::signature::{Signer, Verifier};
use uuid::Uuid;

const NOW: i64 = 1_767_225_600;
const SM2_ID: &str = "1234567812345678";

fn per_alg(c: &mut Criterion, alg: Alg) {
    let key = match alg {
        Alg::Ed25519 => SigningKey::from_seed(&[7; 32]).expect("seed key"),
        other => SigningKey::generate_alg(other),
    };
    let mut ring = KeyRing::new("HC");
    ring.set_active(key.clone());
    let claims = Claims::new("HC", Uuid::new_v4(), TokenKind::Dynamic, NOW, 120);
    let text = token::mint(&key, &claims).expect("mint");
    let cose = base45::decode(&text[5..]).expect("base45");
    let parsed = coset::CoseSign1::from_tagged_slice(&cose).expect("cose");
    let tbs = parsed.tbs_data(b"");
    let sig = parsed.signature.clone();
    let public_key = key.public_key().to_vec();
    let secret = key.secret_bytes().expect("software key").to_vec();
    let validation = Validation::at(NOW);

    let mut g = c.benchmark_group(format!("token_{alg}"));
    g.throughput(Throughput::Elements(1));
    match alg {
        Alg::Ed25519 => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&secret).expect("pkcs8");
            g.bench_function("floor_verify (ring)", |b| {
                b.iter(|| {
                    UnparsedPublicKey::new(&ED25519, black_box(&public_key))
                        .verify(black_box(&tbs), black_box(&sig))
                        .is_ok()
                })
            });
            g.bench_function("floor_sign (ring)", |b| {
                b.iter(|| pair.sign(black_box(&tbs)))
            });
        }
        Alg::Es256 => {
            let rng = ring::rand::SystemRandom::new();
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &secret, &rng)
                .expect("pkcs8");
            g.bench_function("floor_verify (ring)", |b| {
                b.iter(|| {
                    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(&public_key))
                        .verify(black_box(&tbs), black_box(&sig))
                        .is_ok()
                })
            });
            g.bench_function("floor_sign (ring)", |b| {
                b.iter(|| pair.sign(&rng, black_box(&tbs)))
            });
        }
        Alg::Sm2 => {
            let vk = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_ID, &public_key).expect("point");
            let sk = sm2::dsa::SigningKey::from_slice(SM2_ID, &secret).expect("scalar");
            let s = sm2::dsa::Signature::from_slice(&sig).expect("r||s");
            g.bench_function("floor_verify (sm2 crate)", |b| {
                b.iter(|| vk.verify(black_box(&tbs), black_box(&s)).is_ok())
            });
            g.bench_function("floor_sign (sm2 crate)", |b| {
                b.iter(|| -> sm2::dsa::Signature { sk.sign(black_box(&tbs)) })
            });
        }
    }
    g.bench_function("verify", |b| {
        b.iter(|| token::verify(black_box(&text), &ring, &validation).is_ok())
    });
    g.bench_function("mint", |b| b.iter(|| token::mint(&key, black_box(&claims))));
    // The signature alone through our key type: what mint adds over the
    // floor, split into the signer's dispatch and the COSE/base45 framing.
    g.bench_function("sign (SigningKey)", |b| {
        b.iter(|| key.sign(black_box(&tbs)))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    for alg in Alg::ALL {
        per_alg(c, alg);
    }
    let key = SigningKey::from_seed(&[7; 32]).expect("seed key");
    let mut ring = KeyRing::new("HC");
    ring.set_active(key.clone());
    let claims = Claims::new("HC", Uuid::new_v4(), TokenKind::Dynamic, NOW, 120);
    let text = token::mint(&key, &claims).expect("mint");
    let cose = base45::decode(&text[5..]).expect("base45");

    let mut g = c.benchmark_group("token");
    g.throughput(Throughput::Elements(1));
    g.bench_function("keyring_mint (fresh cti)", |b| {
        b.iter(|| ring.mint(claims.card_id, TokenKind::Dynamic, NOW, 120))
    });
    g.bench_function("base45_encode", |b| {
        b.iter(|| base45::encode(black_box(&cose)))
    });
    g.bench_function("base45_decode", |b| {
        b.iter(|| base45::decode(black_box(&text[5..])))
    });
    g.bench_function("qr_encode (fixed mask)", |b| {
        b.iter(|| qr::encode(black_box(&text)))
    });
    g.bench_function("qrcode_new (mask search, reference)", |b| {
        b.iter(|| qrcode::QrCode::with_error_correction_level(black_box(&text), qrcode::EcLevel::M))
    });
    g.bench_function("qr_encode_for_print (mask search, ours)", |b| {
        b.iter(|| qr::encode_for_print(black_box(&text)))
    });
    let code = qr::encode(&text).expect("qr");
    g.bench_function("qr_svg", |b| b.iter(|| black_box(&code).to_svg()));
    g.bench_function("qr_png", |b| b.iter(|| black_box(&code).to_png()));
    g.bench_function("qr_encode+png", |b| {
        b.iter(|| qr::encode(black_box(&text)).map(|q| q.to_png()))
    });
    g.bench_function("qr_encode+svg", |b| {
        b.iter(|| qr::encode(black_box(&text)).map(|q| q.to_svg()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
