//! Import throughput, ignored by default (it is a measurement, not a check):
//! `HEALTHCARD_IMPORT_ROWS=100000 cargo test --release --test store_import_speed -- --ignored --nocapture`
//! Runs on SQLite, and on PostgreSQL when HEALTHCARD_TEST_PG_URL is set.

mod common;

use healthcard::store::access_log::ActorKind;
use std::time::{Duration, Instant};

use chrono::{Duration as Span, NaiveDate};
use healthcard::crypto::MasterKey;
use healthcard::domain::{ClinicCode, Scopes};
use healthcard::store::{self, clinics, import};

fn csv(rows: u32) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let mut s = String::from("local_patient_id,name,national_id,phone\n");
    for i in 0..rows {
        let birth = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap() + Span::days(i64::from(i % 30000));
        let body = format!(
            "{:06}{}{:03}",
            110000 + i / 30000 % 900000,
            birth.format("%Y%m%d"),
            i % 1000
        );
        let sum: u32 = body
            .bytes()
            .zip(W)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        let check = b"10X98765432"[(sum % 11) as usize] as char;
        s.push_str(&format!("MRN-{i},张三,{body}{check},13800000000\n"));
    }
    s
}

#[test]
#[ignore]
fn import_throughput() {
    let rows: u32 = std::env::var("HEALTHCARD_IMPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let data = csv(rows);
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![common::db::sqlite_url(&dir)];
    urls.extend(common::db::fresh_pg_url());
    for url in urls {
        let pool = store::connect(&url, 2, Duration::from_secs(10)).unwrap();
        let c = &mut pool.get().unwrap();
        store::migrate(c).unwrap();
        let (clinic, _) = clinics::create(
            c,
            &ClinicCode::parse("BENCH").unwrap(),
            "bench",
            Scopes::parse("verify").unwrap(),
        )
        .unwrap();
        let key = MasterKey::generate();
        let start = Instant::now();
        let report = import::import_legacy(
            c,
            &key,
            clinic.id,
            (ActorKind::System, "test"),
            data.as_bytes(),
            import::DEFAULT_BATCH,
            |_| {},
        )
        .unwrap();
        let first = start.elapsed();
        assert_eq!(
            report.residents_created,
            u64::from(rows),
            "{:?}",
            report.bad.first()
        );
        let start = Instant::now();
        let again = import::import_legacy(
            c,
            &key,
            clinic.id,
            (ActorKind::System, "test"),
            data.as_bytes(),
            import::DEFAULT_BATCH,
            |_| {},
        )
        .unwrap();
        let second = start.elapsed();
        assert_eq!(again.unchanged, u64::from(rows));
        println!(
            "{:?}: {rows} rows imported in {:.1} s ({:.0} rows/s); re-run (no changes) {:.1} s ({:.0} rows/s)",
            store::backend(c),
            first.as_secs_f64(),
            f64::from(rows) / first.as_secs_f64(),
            second.as_secs_f64(),
            f64::from(rows) / second.as_secs_f64(),
        );
    }
}
