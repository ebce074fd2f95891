//! Token core benchmarks: `cargo bench --bench token`.
//!
//! The floor is bare ring Ed25519 verification of the same Sig_structure;
//! library verify should stay within 1.1x of it.

use std::hint::black_box;

use coset::TaggedCborSerializable;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use healthcard::token::{self, qr, Claims, KeyRing, SigningKey, TokenKind, Validation};
use ring::signature::{UnparsedPublicKey, ED25519};
use uuid::Uuid;

const NOW: i64 = 1_767_225_600;

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_seed(&[7; 32]).expect("seed key");
    let mut ring = KeyRing::new("HC");
    ring.set_active(key.clone());
    let claims = Claims::new("HC", Uuid::new_v4(), TokenKind::Dynamic, NOW, 120);
    let text = token::mint(&key, &claims);
    let cose = base45::decode(&text[5..]).expect("base45");
    let parsed = coset::CoseSign1::from_tagged_slice(&cose).expect("cose");
    let tbs = parsed.tbs_data(b"");
    let sig = parsed.signature.clone();
    let public_key = key.public_key();
    let validation = Validation::at(NOW);

    let mut g = c.benchmark_group("token");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ring_ed25519_verify (floor)", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ED25519, black_box(&public_key))
                .verify(black_box(&tbs), black_box(&sig))
                .is_ok()
        })
    });
    g.bench_function("verify", |b| {
        b.iter(|| token::verify(black_box(&text), &ring, &validation).is_ok())
    });
    g.bench_function("mint", |b| b.iter(|| token::mint(&key, black_box(&claims))));
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
