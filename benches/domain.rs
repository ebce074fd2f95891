//! Domain and per-resident crypto benchmarks: `cargo bench --bench domain`.
//!
//! What registration, import and each verification pay besides the token:
//! parsing a national ID number (GB 11643 check digit, birth date), its
//! masked form, the keyed blind index used to find a resident, and the
//! AES-256-GCM sealing and opening of the number at rest (every valid
//! verification opens one sealed number to mask or disclose it).

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use healthcard::crypto::MasterKey;
use healthcard::domain::NationalId;
use healthcard::store::residents::national_id_index;

/// GB 11643's own example number.
const ID: &str = "11010519491231002X";

fn bench(c: &mut Criterion) {
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    let key = MasterKey::from_bytes([7; 32]);
    let id = NationalId::parse_at(ID, today).expect("valid example");
    let sealed = key.seal(b"national_id", ID.as_bytes());

    let mut g = c.benchmark_group("domain");
    g.throughput(Throughput::Elements(1));
    g.bench_function("national_id_parse", |b| {
        b.iter(|| NationalId::parse_at(black_box(ID), today).is_ok())
    });
    g.bench_function("national_id_parse_bad_check_digit", |b| {
        b.iter(|| NationalId::parse_at(black_box("110105194912310021"), today).is_err())
    });
    g.bench_function("national_id_masked", |b| b.iter(|| black_box(&id).masked()));
    g.bench_function("blind_index (HMAC-SHA256)", |b| {
        b.iter(|| national_id_index(&key, black_box(&id)))
    });
    g.bench_function("seal national_id (AES-256-GCM)", |b| {
        b.iter(|| key.seal(b"national_id", black_box(ID.as_bytes())))
    });
    g.bench_function("open national_id (AES-256-GCM)", |b| {
        b.iter(|| key.open(b"national_id", black_box(&sealed)).is_ok())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
