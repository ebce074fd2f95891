//! Storage: diesel over SQLite (embedded default) or PostgreSQL (many nodes),
//! through one [`DbConnection`] so every query is written once. One module per
//! table with its model and queries; every function takes `&mut DbConnection`.
//!
//! Portable subset only (see docs/storage.md): UUIDs as TEXT, times as UTC
//! `TIMESTAMP`, bytes as BLOB/BYTEA, unique violations read from the error
//! kind (`ON CONFLICT` only for the replay set's batch insert).

pub mod access_log;
pub mod admins;
pub mod card_use;
pub mod card_use_rollup;
pub mod cards;
pub mod clinics;
mod error;
pub mod federation;
pub mod guardians;
pub mod import;
pub mod kiosk_sessions;
pub mod links;
pub mod login_failures;
pub mod login_throttle;
pub mod merges;
pub mod replay;
pub mod residents;
pub mod resolve;
pub mod schema;
pub mod sessions;
pub mod signing_keys;
pub mod temporary_cards;

use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use error::{Conflict, StoreError};

/// A connection checked out of the pool.
pub type PooledConn = diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<DbConnection>>;

/// One connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// The connection pool every request borrows from.
pub type DbPool = r2d2::Pool<ConnectionManager<DbConnection>>;

/// Re-exported so callers need not depend on r2d2 themselves.
pub use diesel::r2d2;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Which database a URL names, decided from its scheme alone so that a
/// PostgreSQL URL is never silently opened as a SQLite file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `postgres://` or `postgresql://` is PostgreSQL; anything else is a SQLite
    /// path, with or without a `sqlite://` prefix.
    pub fn from_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    fn of(conn: &DbConnection) -> Backend {
        match conn {
            DbConnection::Postgresql(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Per-connection set-up: SQLite PRAGMAs (they do not persist across
/// connections), and a check that the connection is of the expected backend.
#[derive(Debug)]
struct Customizer {
    backend: Backend,
    /// SQLite page cache per connection, in KiB (SQLite's default: 2000).
    sqlite_cache_kib: u32,
    /// The access-log writer's connections: PostgreSQL plans each prepared
    /// statement once and never as a table scan, SQLite leaves checkpoints
    /// to [`checkpoint`] on another thread (see [`connect_writer`]).
    writer: bool,
}

impl CustomizeConnection<DbConnection, r2d2::Error> for Customizer {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        if Backend::of(conn) != self.backend {
            return Err(r2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection(format!(
                    "expected a {:?} connection",
                    self.backend
                )),
            ));
        }
        if let DbConnection::Postgresql(c) = conn {
            // A stuck statement must not hold a pool connection (and a request) forever.
            c.batch_execute("SET statement_timeout = 15000")
                .map_err(r2d2::Error::QueryError)?;
            if self.writer {
                // Every statement of the writer is a key lookup or an
                // insert. Its plans are made once per connection, and one
                // made while a table looked empty (a fresh database, the
                // replay set after a purge) would scan that table on every
                // batch until the next ANALYZE: measured, 4.5 ms a batch for
                // the replay check over 7,000 rows. No scans, then.
                c.batch_execute(
                    "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off",
                )
                .map_err(r2d2::Error::QueryError)?;
            }
        }
        if let DbConnection::Sqlite(c) = conn {
            // busy_timeout first: switching to WAL itself needs the lock.
            c.batch_execute(&format!(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = {};",
                self.sqlite_cache_kib,
                if self.writer { 0 } else { 1000 }
            ))
            .map_err(r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Opens a pool on `url`. For SQLite the file's folder is created. Fails with
/// [`StoreError::Unavailable`] if no connection can be made within
/// `connect_timeout`.
pub fn connect(url: &str, max_size: u32, connect_timeout: Duration) -> Result<DbPool, StoreError> {
    open_pool(url, max_size, connect_timeout, 2000, false)
}

/// The access-log writer's own pool: `size` long-lived connections for the
/// threads that write on every verification, so they never wait behind
/// request handlers for a connection. On SQLite each gets a 16 MiB page
/// cache: with SQLite's default 2 MB, the random-key index pages each batch
/// touches are mostly re-read from the file (pread was ~5 % of the writer's
/// CPU), and no automatic checkpoint: the commit that crosses SQLite's
/// threshold would copy ~1,000 pages to the database file and fsync it
/// while the batch's verifications wait; call [`checkpoint`] from another
/// thread instead. On PostgreSQL they use generic plans: their statements
/// are few, prepared once, and their best plan (index look-ups by key) does
/// not depend on the values; PostgreSQL otherwise re-plans the array look-ups
/// for every batch (~0.1 ms each, seen in `pg_stat_statements`).
pub fn connect_writer(
    url: &str,
    size: u32,
    connect_timeout: Duration,
) -> Result<DbPool, StoreError> {
    open_pool(url, size, connect_timeout, 16 * 1024, true)
}

fn open_pool(
    url: &str,
    max_size: u32,
    connect_timeout: Duration,
    sqlite_cache_kib: u32,
    writer: bool,
) -> Result<DbPool, StoreError> {
    let backend = Backend::from_url(url);
    let target = match backend {
        Backend::Postgres => url.to_owned(),
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            private_sqlite_file(Path::new(path))?;
            path.to_owned()
        }
    };
    r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(connect_timeout)
        .connection_customizer(Box::new(Customizer {
            backend,
            sqlite_cache_kib,
            writer,
        }))
        .build(ConnectionManager::<DbConnection>::new(target))
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Makes the SQLite file owner-only before SQLite opens it: its folder is
/// created (mode 0700) if missing, the file created with mode 0600 if
/// missing, and an existing file and its `-wal` and `-shm` files set to
/// 0600. SQLite creates `-wal` and `-shm` with the database file's mode
/// (`findCreateFileMode` and `unixOpenSharedMemory` in its `os_unix.c`), so
/// they stay owner-only too.
fn private_sqlite_file(path: &Path) -> Result<(), StoreError> {
    let fail = |what: &Path, e: std::io::Error| {
        StoreError::Unavailable(format!("{}: {e}", what.display()))
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(parent).map_err(|e| fail(parent, e))?;
        }
    }
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    // Create the file only when it is missing. Opening an existing database
    // file here, even only to close it again, would drop every POSIX lock
    // this process's SQLite connections hold on it (fcntl locks belong to the
    // process and die with any close of the file: "How To Corrupt An SQLite
    // Database File", section 2.2). Another process could then take the
    // database for the last one open, checkpoint and delete the write-ahead
    // log under this process's connections, and writes were lost (the
    // command-line tests, which mix the app's connections and commands'
    // processes on one file, lost a committed row now and then).
    if !path.exists() {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(path) {
            Ok(_) => {}
            // Another pool of this process made it a moment ago.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail(path, e)),
        }
    }
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(&file, e)),
            _ => {}
        }
    }
    Ok(())
}

/// Brings the schema up to date with the migrations embedded in the binary.
pub fn migrate(conn: &mut DbConnection) -> Result<(), StoreError> {
    let result = match conn {
        DbConnection::Postgresql(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|_| ()),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
}

/// Runs the pending migrations up to and including version `last` (e.g.
/// `2026-12-02-000600`), for tests of a migration over data written by the
/// schema before it.
#[doc(hidden)]
pub fn migrate_until(conn: &mut DbConnection, last: &str) -> Result<(), StoreError> {
    let last: String = last.chars().filter(|c| c.is_ascii_digit()).collect();
    let wanted = |v: String| v.chars().filter(|c| c.is_ascii_digit()).collect::<String>() <= last;
    let fail = |e: Box<dyn std::error::Error + Send + Sync>| {
        StoreError::Other(format!("migration failed: {e}"))
    };
    match conn {
        DbConnection::Postgresql(c) => {
            for m in c.pending_migrations(PG_MIGRATIONS).map_err(fail)? {
                if wanted(m.name().version().to_string()) {
                    c.run_migration(&*m).map_err(fail)?;
                }
            }
        }
        DbConnection::Sqlite(c) => {
            for m in c.pending_migrations(SQLITE_MIGRATIONS).map_err(fail)? {
                if wanted(m.name().version().to_string()) {
                    c.run_migration(&*m).map_err(fail)?;
                }
            }
        }
    }
    Ok(())
}

/// SQLite: copies what the write-ahead log holds into the database file, as
/// far as readers allow (PASSIVE: it takes no write lock and waits for no
/// one, so the writer goes on appending meanwhile). PostgreSQL: nothing.
pub fn checkpoint(conn: &mut DbConnection) -> Result<(), StoreError> {
    if let DbConnection::Sqlite(c) = conn {
        c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")?;
    }
    Ok(())
}

/// A cheap round trip, for the readiness probe.
pub fn ping(conn: &mut DbConnection) -> Result<(), StoreError> {
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

/// Multi-row INSERT of a slice of `Insertable` rows. Diesel's multi-row
/// insert does not compile through the `MultiConnection` backend, so this
/// dispatches to the concrete connection (inside the caller's transaction,
/// which the concrete connection's transaction manager tracks).
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::store::DbConnection::Postgresql(c) => {
                diesel::insert_into($table).values($rows).execute(c)
            }
            $crate::store::DbConnection::Sqlite(c) => {
                diesel::insert_into($table).values($rows).execute(c)
            }
        }
    };
}
pub(crate) use insert_rows;

/// Which backend this connection talks to.
pub fn backend(conn: &DbConnection) -> Backend {
    Backend::of(conn)
}

/// Now, in UTC, truncated to microseconds: PostgreSQL keeps microseconds, so
/// values read back compare equal and hash the same on both backends.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Reads a UUID-typed id stored as TEXT.
fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Other(format!("corrupt id in database: {text:?}")))
}

/// For reading back values that were parsed before they were stored: a
/// failure means the database was edited behind our back.
fn corrupt<E>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |_| StoreError::Other(format!("corrupt {what} in database"))
}

/// Maps a unique violation to `Conflict(kind)` and leaves other errors alone.
fn on_unique(kind: Conflict) -> impl FnOnce(diesel::result::Error) -> StoreError {
    move |e| match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => StoreError::Conflict(kind),
        other => other.into(),
    }
}

/// Whether `e` is a unique violation.
fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Takes the next value of a named counter. The UPDATE comes first in the
/// transaction and holds the counter row's lock until commit, so the values
/// commit in the order they were handed out: a reader that sees value n has
/// seen every value below n.
fn next_counter(conn: &mut DbConnection, name: &str, by: i64) -> Result<i64, StoreError> {
    use schema::counters::dsl as c;
    let value = diesel::update(c::counters.filter(c::name.eq(name)))
        .set(c::value.eq(c::value + by))
        .returning(c::value)
        .get_result::<i64>(conn)?;
    Ok(value)
}
