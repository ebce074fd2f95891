//! Databases for tests: a SQLite file in a temporary folder, and a fresh
//! PostgreSQL database per test when `HEALTHCARD_TEST_PG_URL` names a server
//! (start one with `scripts/pg-test-server.sh start DIR`).
//!
//! Without the variable the PostgreSQL half of a test is skipped loudly on
//! stderr, unless `HEALTHCARD_REQUIRE_PG=1`, which turns the skip into a failure
//! (CI sets it so a missing server cannot pass for a green run).

use diesel::connection::SimpleConnection;
use diesel::Connection;
use tempfile::TempDir;

/// The server tests create their databases on (its `postgres` database).
pub const PG_URL_VAR: &str = "HEALTHCARD_TEST_PG_URL";
/// Set to `1` to make a missing PostgreSQL server a test failure.
pub const REQUIRE_PG_VAR: &str = "HEALTHCARD_REQUIRE_PG";

/// A SQLite database file inside `dir` (created on first connect).
pub fn sqlite_url(dir: &TempDir) -> String {
    dir.path()
        .join("healthcard.db")
        .to_string_lossy()
        .into_owned()
}

/// The server URL, or `None` (or a panic under `HEALTHCARD_REQUIRE_PG=1`).
pub fn pg_server_url() -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            if std::env::var(REQUIRE_PG_VAR).as_deref() == Ok("1") {
                panic!("{REQUIRE_PG_VAR}=1 but {PG_URL_VAR} is not set");
            }
            None
        }
    }
}

/// Creates an empty database `hc_test_<random>` on the test server and
/// returns its URL; `None` if no server is configured.
pub fn fresh_pg_url() -> Option<String> {
    let server = pg_server_url()?;
    let name = format!("hc_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = diesel::PgConnection::establish(&server)
        .unwrap_or_else(|e| panic!("cannot connect to {PG_URL_VAR}: {e}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    Some(with_database(&server, &name))
}

/// `server` with its database name replaced by `name` (query kept).
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut url = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Runs `body` on a fresh SQLite database, then on a fresh PostgreSQL
/// database if a server is configured (else says loudly that it skipped).
/// `test` names the test in the skip message.
pub fn on_both_backends(test: &str, body: impl Fn(&str)) {
    let dir = tempfile::tempdir().expect("temporary folder");
    body(&sqlite_url(&dir));
    match fresh_pg_url() {
        Some(url) => body(&url),
        None => {
            // Straight to the process's stderr: eprintln! would be captured
            // by the test harness and the skip would go unseen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (no {PG_URL_VAR}): PostgreSQL half of {test}"
            );
        }
    }
}

/// Runs a test body on both backends: `both_backends!(name, |url| { ... });`
/// defines `#[test] fn name()`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            $crate::common::db::on_both_backends(stringify!($name), $body);
        }
    };
}

#[test]
fn database_name_is_replaced_and_query_kept() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@h:1/db?sslmode=disable", "y"),
        "postgresql://u:p@h:1/y?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "z"), "postgres://h/z");
}
