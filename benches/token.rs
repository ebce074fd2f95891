//! Token core benchmarks: `cargo bench --bench token`.
//!
//! Per algorithm, the floor is the bare primitive of the library we call over
//! the same Sig_structure (`common/floors.rs`, shared with `benches/pairs.rs`);
//! library verify and sign should stay within 1.1x of it.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use healthcard::token::{self, qr, Alg, Claims, KeyRing, SigningKey, TokenKind};
use uuid::Uuid;

#[path = "common/floors.rs"]
mod floors;
use floors::{Fixture, NOW};

fn per_alg(c: &mut Criterion, alg: Alg) {
    let mut fx = Fixture::new(alg);
    let mut g = c.benchmark_group(format!("token_{alg}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("floor_verify ({})", fx.library), |b| {
        b.iter(|| (fx.floor_verify)())
    });
    g.bench_function(format!("floor_sign ({})", fx.library), |b| {
        b.iter(|| (fx.floor_sign)())
    });
    g.bench_function("verify", |b| {
        b.iter(|| token::verify(black_box(&fx.text), &fx.ring, &fx.validation).is_ok())
    });
    g.bench_function("mint", |b| {
        b.iter(|| token::mint(&fx.key, black_box(&fx.claims)))
    });
    // The signature alone through our key type: what mint adds over the
    // floor, split into the signer's dispatch and the COSE/base45 framing.
    g.bench_function("sign (SigningKey)", |b| {
        b.iter(|| fx.key.sign(black_box(&fx.tbs)))
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
