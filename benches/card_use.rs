//! The card office's dashboard on a generated year of daily card-use counts:
//! `cargo bench --bench card_use` (SQLite in a temporary folder; also
//! PostgreSQL when `HEALTHCARD_BENCH_PG_URL` names an empty database it may
//! fill; `HEALTHCARD_BENCH_SKIP_SQLITE=1` for PostgreSQL alone).
//!
//! What is generated, and why it stands for a city: the dashboard reads only
//! `card_use_daily`, never the raw log, so its cost depends on the number of
//! daily rows, not on the number of uses. A city of 500,000 uses a day (180
//! million a year) does not have more rows than it has combinations: here
//! every one of 200 clinics has, every day, all 4 channels × 8 steps with
//! valid uses plus 3 refusal reasons on each channel (44 rows a clinic-day,
//! 8,800 a day, 3.2 million for the year; about 57 uses a row on average).
//! A real city has fewer (not every clinic uses every channel and step every
//! day), so this is the dense end. The raw 180 million log rows are not
//! generated: they cannot be made here in reasonable time, and the queries
//! measured do not read them. Every day but the last two is then rolled up
//! (`store::card_use_rollup`), as housekeeping keeps it.

use std::time::Duration;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use healthcard::domain::{Grouping, Period};
use healthcard::service::monitoring;
use healthcard::store::{self, card_use_rollup, DbConnection, DbPool};

const CLINICS: i64 = 200;
const YEAR_START: &str = "2025-01-01";
/// The generated year's last day is "today": the days up to two before it
/// are settled.
const SETTLED_THROUGH: &str = "2025-12-29";

/// Fills the database with a year of daily rows (and the 200 clinics).
fn generate(conn: &mut DbConnection) {
    let sql = match conn {
        DbConnection::Sqlite(_) => format!(
            "WITH RECURSIVE
               d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 364),
               c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {CLINICS}),
               ch(v) AS (VALUES ('window'), ('kiosk'), ('doctor'), ('app')),
               st(v) AS (VALUES ('registration'), ('diagnosis'), ('dispensing'), ('examination'),
                                ('payment'), ('prescription'), ('surgery'), ('other')),
               bad(v) AS (VALUES ('expired'), ('replayed'), ('malformed'))
             INSERT INTO clinics (id, code, name, scopes, created_at)
               SELECT printf('00000000-0000-4000-8000-%012d', n), printf('C%03d', n),
                      printf('第%d医院', n), 'verify', '2025-01-01 00:00:00' FROM c;
             WITH RECURSIVE
               d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 364),
               c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {CLINICS}),
               ch(v) AS (VALUES ('window'), ('kiosk'), ('doctor'), ('app')),
               st(v) AS (VALUES ('registration'), ('diagnosis'), ('dispensing'), ('examination'),
                                ('payment'), ('prescription'), ('surgery'), ('other')),
               bad(v) AS (VALUES ('expired'), ('replayed'), ('malformed'))
             INSERT INTO card_use_daily (day, clinic_id, channel, step, outcome, uses)
               SELECT date('{YEAR_START}', '+' || d.n || ' days'),
                      printf('00000000-0000-4000-8000-%012d', c.n), ch.v, st.v, 'valid',
                      20 + (d.n * 7 + c.n * 13) % 80
               FROM d, c, ch, st
               UNION ALL
               SELECT date('{YEAR_START}', '+' || d.n || ' days'),
                      printf('00000000-0000-4000-8000-%012d', c.n), ch.v, 'registration', bad.v,
                      1 + (d.n + c.n) % 5
               FROM d, c, ch, bad;
             ANALYZE;"
        ),
        DbConnection::Postgresql(_) => format!(
            "INSERT INTO clinics (id, code, name, scopes, created_at)
               SELECT '00000000-0000-4000-8000-' || lpad(n::text, 12, '0'), 'C' || lpad(n::text, 3, '0'),
                      '第' || n || '医院', 'verify', TIMESTAMP '2025-01-01 00:00:00'
               FROM generate_series(1, {CLINICS}) n;
             INSERT INTO card_use_daily (day, clinic_id, channel, step, outcome, uses)
               SELECT DATE '{YEAR_START}' + d, '00000000-0000-4000-8000-' || lpad(c::text, 12, '0'),
                      ch, st, 'valid', 20 + (d * 7 + c * 13) % 80
               FROM generate_series(0, 364) d, generate_series(1, {CLINICS}) c,
                    unnest(ARRAY['window', 'kiosk', 'doctor', 'app']) ch,
                    unnest(ARRAY['registration', 'diagnosis', 'dispensing', 'examination',
                                 'payment', 'prescription', 'surgery', 'other']) st
               UNION ALL
               SELECT DATE '{YEAR_START}' + d, '00000000-0000-4000-8000-' || lpad(c::text, 12, '0'),
                      ch, 'registration', bad, 1 + (d + c) % 5
               FROM generate_series(0, 364) d, generate_series(1, {CLINICS}) c,
                    unnest(ARRAY['window', 'kiosk', 'doctor', 'app']) ch,
                    unnest(ARRAY['expired', 'replayed', 'malformed']) bad;
             ANALYZE card_use_daily;"
        ),
    };
    conn.batch_execute(&sql)
        .expect("generating a year of daily rows");
}

fn open(url: &str) -> DbPool {
    let pool = store::connect(url, 2, Duration::from_secs(10)).expect("database");
    let mut conn = pool.get().expect("connection");
    store::migrate(&mut conn).expect("migrations");
    if let DbConnection::Postgresql(_) = &mut *conn {
        // The pool's 15 s statement limit is for requests, not for this.
        conn.batch_execute("SET statement_timeout = 0")
            .expect("no limit");
    }
    let t = std::time::Instant::now();
    generate(&mut conn);
    eprintln!("generated a year of daily rows in {:?}", t.elapsed());
    // What housekeeping does as the days pass: every day but the last two
    // ("today" is the year's last day) rolled up for the dashboard.
    let t = std::time::Instant::now();
    let through = NaiveDate::parse_from_str(SETTLED_THROUGH, "%Y-%m-%d").expect("date");
    let days = card_use_rollup::settle(&mut conn, through, 366).expect("roll-up");
    eprintln!("rolled up {days} days in {:?}", t.elapsed());
    pool
}

fn bench_backend(c: &mut Criterion, name: &str, pool: &DbPool) {
    let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    let month = Period::new(d("2025-06-01"), d("2025-06-30")).expect("period");
    let year = Period::new(d("2025-01-01"), d("2025-12-31")).expect("period");
    let mut conn = pool.get().expect("connection");
    let mut g = c.benchmark_group(format!("card_use_{name}"));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("dashboard_30_days", |b| {
        b.iter(|| monitoring::dashboard(&mut conn, month).expect("dashboard"))
    });
    // The dashboard as the office opens it: the last 30 days, today and
    // yesterday still read from the daily counts.
    let recent = Period::new(d("2025-12-02"), d("2025-12-31")).expect("period");
    g.bench_function("dashboard_last_30_days", |b| {
        b.iter(|| monitoring::dashboard(&mut conn, recent).expect("dashboard"))
    });
    g.bench_function("by_day_365_days", |b| {
        b.iter(|| monitoring::card_use(&mut conn, year, Grouping::parse("day").expect("g")))
    });
    g.bench_function("all_dimensions_1_day", |b| {
        let day = Period::new(d("2025-06-15"), d("2025-06-15")).expect("period");
        b.iter(|| monitoring::card_use(&mut conn, day, Grouping::all()).expect("report"))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    if std::env::var("HEALTHCARD_BENCH_SKIP_SQLITE").as_deref() != Ok("1") {
        let sqlite = open(&dir.path().join("bench.db").display().to_string());
        bench_backend(c, "sqlite", &sqlite);
    }
    if let Ok(url) = std::env::var("HEALTHCARD_BENCH_PG_URL") {
        let pg = open(&url);
        bench_backend(c, "postgres", &pg);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
