//! Issue 12, as processes: the keyed access-log chain and its anchors, the
//! data folder's layout and modes, and commands that refuse to start a new
//! installation.

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use healthcard::crypto::{sha256, ChainKey, MasterKey};
use healthcard::store::schema::{access_log, access_log_head};
use healthcard::store::DbConnection;

use crate::helpers::{cli, ok};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// The migration that keys the chain; an "old" database has every other one.
const KEYED_CHAIN_MIGRATION: &str = "2026-12-02-000300";

/// `healthcard --data-dir DIR [--database-url URL] ARGS` with a clean environment.
fn run(dir: &Path, url: Option<&str>, args: &[&str], stdin: &str) -> Output {
    cli(dir, url, args, Some(stdin))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Each backend's database for a test in `dir`: SQLite in the data folder's
/// default place (`None`), or a fresh PostgreSQL database.
fn databases() -> Vec<Option<String>> {
    let mut out = vec![None];
    if let Some(url) = crate::common::db::fresh_pg_url() {
        out.push(Some(url));
    }
    out
}

fn connect(url: &str) -> DbConnection {
    DbConnection::establish(url).unwrap()
}

fn sqlite_file(dir: &Path) -> PathBuf {
    healthcard::config::database_file(dir)
}

fn url_of(dir: &Path, url: &Option<String>) -> String {
    url.clone()
        .unwrap_or_else(|| sqlite_file(dir).display().to_string())
}

fn master_key(dir: &Path) -> MasterKey {
    let text = std::fs::read_to_string(healthcard::config::master_key_file(dir)).unwrap();
    MasterKey::from_base64(&text).unwrap()
}

type Row = (
    i64,
    NaiveDateTime,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<u8>,
    Vec<u8>,
    Option<String>,
    Option<String>,
);

fn rows(c: &mut DbConnection) -> Vec<Row> {
    access_log::table
        .order(access_log::seq.asc())
        .load(c)
        .unwrap()
}

/// The rows' canonical encoding (docs/storage.md), as an attacker would write it.
fn encode(label: &[u8], r: &Row) -> Vec<u8> {
    let mut buf = label.to_vec();
    buf.extend_from_slice(&r.0.to_be_bytes());
    let mut field = |v: Option<&str>| match v {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
    };
    field(Some(&r.1.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()));
    field(Some(&r.2));
    field(Some(&r.3));
    field(Some(&r.4));
    for v in [&r.5, &r.6, &r.7, &r.8, &r.9, &r.10] {
        field(v.as_deref());
    }
    // The step of care and the credential, encoded only when present; with
    // a credential, the step's presence byte first (docs/storage.md).
    match (r.13.as_deref(), r.14.as_deref()) {
        (step, Some(credential)) => {
            field(step);
            field(Some(credential));
        }
        (Some(step), None) => field(Some(step)),
        (None, None) => {}
    }
    buf
}

/// The old chain's hash: plain SHA-256.
fn plain_hash(prev: &[u8], r: &Row) -> Vec<u8> {
    let mut buf = b"healthcard access log v1".to_vec();
    buf.extend_from_slice(prev);
    buf.extend_from_slice(&encode(b"", r));
    sha256(&buf).to_vec()
}

fn keyed_hash(key: &ChainKey) -> impl Fn(&[u8], &Row) -> Vec<u8> + '_ {
    move |prev, r| {
        key.mac(prev, &encode(b"healthcard access log v2", r))
            .to_vec()
    }
}

/// Writes `rows` over the log from the first on, each chained with `hash`,
/// and moves the head: a rewrite of history straight into the database.
fn write_chain(c: &mut DbConnection, mut rows: Vec<Row>, hash: impl Fn(&[u8], &Row) -> Vec<u8>) {
    let mut prev = vec![0u8; 32];
    for r in &mut rows {
        r.11 = prev.clone();
        r.12 = hash(&prev, r);
        prev = r.12.clone();
        diesel::update(access_log::table.find(r.0))
            .set((
                access_log::actor.eq(&r.3),
                access_log::prev_hash.eq(&r.11),
                access_log::hash.eq(&r.12),
            ))
            .execute(c)
            .unwrap();
    }
    let last = rows.last().map_or(0, |r| r.0);
    diesel::update(access_log_head::table.find(1))
        .set((
            access_log_head::seq.eq(last),
            access_log_head::hash.eq(&prev),
        ))
        .execute(c)
        .unwrap();
}

/// What someone with the database owner's rights can do first.
fn drop_triggers(c: &mut DbConnection) {
    let sql = match c {
        DbConnection::Sqlite(_) => {
            "DROP TRIGGER access_log_no_update; DROP TRIGGER access_log_no_delete;"
        }
        DbConnection::Postgresql(_) => "DROP TRIGGER access_log_no_change ON access_log;",
    };
    c.batch_execute(sql).unwrap();
}

/// A data folder with a few access-log rows (admin, clinics, key rotation).
fn installation(dir: &Path, url: &Option<String>) {
    let u = url.as_deref();
    ok(&run(dir, u, &["migrate"], ""));
    ok(&run(
        dir,
        u,
        &["admin", "create", "--username", "root"],
        "s3cret-passw0rd-long\n",
    ));
    for code in ["A1", "A2"] {
        ok(&run(
            dir,
            u,
            &[
                "clinic", "create", "--code", code, "--name", "x", "--scopes", "verify",
            ],
            "",
        ));
    }
    ok(&run(dir, u, &["keys", "rotate"], ""));
}

#[test]
fn a_recomputed_plain_sha256_chain_is_detected() {
    for url in databases() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        installation(d, &url);
        let u = url.as_deref();
        assert!(stdout(&ok_out(run(d, u, &["audit", "verify"], ""))).contains("intact"));
        let mut c = connect(&url_of(d, &url));
        let mut all = rows(&mut c);
        assert!(all.len() >= 4);
        all[0].3 = "mallory".into();
        drop_triggers(&mut c);
        write_chain(&mut c, all, plain_hash);
        let o = run(d, u, &["audit", "verify"], "");
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert!(stdout(&o).contains("BROKEN at seq 1"), "{}", stdout(&o));
    }
}

fn ok_out(o: Output) -> Output {
    ok(&o);
    o
}

#[test]
fn an_anchor_proves_no_row_before_it_was_rewritten_even_with_the_chain_key() {
    for url in databases() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        installation(d, &url);
        let u = url.as_deref();
        let anchor_text = ok(&run(d, u, &["audit", "anchor"], ""));
        assert!(
            anchor_text.starts_with("healthcard access-log anchor v1\nseq: "),
            "{anchor_text}"
        );
        let anchored: i64 = anchor_text.lines().nth(1).unwrap()[5..].parse().unwrap();
        let anchor = d.join("anchor.txt");
        std::fs::write(&anchor, &anchor_text).unwrap();
        let a = anchor.to_str().unwrap();
        // Rows after the anchor are fine.
        ok(&run(
            d,
            u,
            &[
                "clinic", "create", "--code", "A3", "--name", "x", "--scopes", "verify",
            ],
            "",
        ));
        let out = ok(&run(d, u, &["audit", "verify", "--anchor", a], ""));
        assert!(
            out.contains(&format!("up to the anchor's seq {anchored}")),
            "{out}"
        );

        // A changed anchor file is refused, naming its seq.
        let forged = d.join("forged.txt");
        std::fs::write(&forged, anchor_text.replace("seq: ", "seq: 1")).unwrap();
        let o = run(
            d,
            u,
            &["audit", "verify", "--anchor", forged.to_str().unwrap()],
            "",
        );
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stdout(&o).contains("REFUSED") && stdout(&o).contains("seq 1"),
            "{}",
            stdout(&o)
        );

        // Someone with the chain key and the database rewrites row 2 and
        // every later row: the chain alone looks whole, the anchor does not.
        let key = master_key(d).chain_key();
        let mut c = connect(&url_of(d, &url));
        let mut all = rows(&mut c);
        all[1].3 = "mallory".into();
        drop_triggers(&mut c);
        write_chain(&mut c, all, keyed_hash(&key));
        assert!(ok(&run(d, u, &["audit", "verify"], "")).contains("intact"));
        let o = run(d, u, &["audit", "verify", "--anchor", a], "");
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stdout(&o).contains(&format!("BROKEN at seq {anchored}")),
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn an_old_plain_chain_is_rekeyed_once_by_migrate() {
    for url in databases() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // The old layout: the database and the key file side by side.
        std::fs::create_dir_all(d).unwrap();
        let key = MasterKey::generate();
        std::fs::write(d.join("master.key"), key.to_base64()).unwrap();
        let target = url
            .clone()
            .unwrap_or_else(|| d.join("healthcard.db").display().to_string());
        let mut c = connect(&target);
        match &mut c {
            DbConnection::Sqlite(c) => old_schema(c, SQLITE_MIGRATIONS),
            DbConnection::Postgresql(c) => old_schema(c, PG_MIGRATIONS),
        }
        // Three rows of the old format.
        let mut prev = vec![0u8; 32];
        for seq in 1..=3i64 {
            let mut r: Row = (
                seq,
                healthcard::store::now(),
                "system".into(),
                "cli".into(),
                "clinic.create".into(),
                None,
                None,
                None,
                None,
                None,
                Some(format!("old row {seq}")),
                prev.clone(),
                Vec::new(),
                None,
                None,
            );
            r.12 = plain_hash(&prev, &r);
            prev = r.12.clone();
            diesel::insert_into(access_log::table)
                .values((
                    access_log::seq.eq(r.0),
                    access_log::at.eq(r.1),
                    access_log::actor_kind.eq(&r.2),
                    access_log::actor.eq(&r.3),
                    access_log::action.eq(&r.4),
                    access_log::detail.eq(&r.10),
                    access_log::prev_hash.eq(&r.11),
                    access_log::hash.eq(&r.12),
                ))
                .execute(&mut c)
                .unwrap();
        }
        diesel::update(access_log_head::table.find(1))
            .set((
                access_log_head::seq.eq(3i64),
                access_log_head::hash.eq(&prev),
            ))
            .execute(&mut c)
            .unwrap();
        drop(c);

        let u = url.as_deref();
        ok(&run(d, u, &["migrate"], ""));
        assert!(
            !d.join("db").exists() && !d.join("keys").exists(),
            "old layout kept"
        );
        let out = ok(&run(d, u, &["audit", "verify"], ""));
        assert!(out.contains("intact: 4 rows"), "{out}");
        let mut c = connect(&target);
        let all = rows(&mut c);
        assert_eq!(all[3].4, "log.rekey");
        assert!(
            all[3].10.as_deref().unwrap().contains("re-keyed 3 rows"),
            "{:?}",
            all[3].10
        );
        assert!(all[3].10.as_deref().unwrap().contains("old chain intact"));
        assert_eq!(all[0].12, keyed_hash(&key.chain_key())(&[0; 32], &all[0]));
        // Rows are now append-only.
        assert!(c
            .batch_execute("UPDATE access_log SET actor = 'x' WHERE seq = 1")
            .is_err());
        // Again: nothing more.
        ok(&run(d, u, &["migrate"], ""));
        assert!(ok(&run(d, u, &["audit", "verify"], "")).contains("intact: 4 rows"));
    }
}

/// Every migration but the one that keys the chain: a database as the
/// release before it left it.
fn old_schema<C>(c: &mut C, source: EmbeddedMigrations)
where
    C: MigrationHarness<C::Backend> + diesel::Connection,
    EmbeddedMigrations: MigrationSource<C::Backend>,
{
    // Makes diesel's table of applied migrations.
    c.applied_migrations().unwrap();
    for m in MigrationSource::<C::Backend>::migrations(&source).unwrap() {
        if !m.name().to_string().starts_with(KEYED_CHAIN_MIGRATION) {
            c.run_migration(&*m).unwrap();
        }
    }
}

#[test]
fn commands_other_than_serve_and_migrate_refuse_a_new_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let o = run(
        &missing,
        None,
        &["admin", "create", "--username", "root"],
        "s3cret-passw0rd-long\n",
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("--data-dir"),
        "{err}"
    );
    assert!(!missing.exists(), "nothing created");
    // An existing folder that is not an installation (the wrong directory).
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for args in [
        &["admin", "create", "--username", "root"][..],
        &[
            "clinic", "create", "--code", "C1", "--name", "x", "--scopes", "verify",
        ],
        &["keys", "list"],
        &["audit", "verify"],
    ] {
        let o = run(&empty, None, args, "s3cret-passw0rd-long\n");
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&empty.display().to_string()) && err.contains("--data-dir"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing created"
    );
    // `migrate` makes one; then the others work.
    ok(&run(&empty, None, &["migrate"], ""));
    ok(&run(&empty, None, &["keys", "list"], ""));
}

#[cfg(unix)]
#[test]
fn database_and_key_live_apart_owner_only_and_old_folders_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(d, None, &["migrate"], ""));
    let db = d.join("db").join("healthcard.db");
    let key = d.join("keys").join("master.key");
    assert!(!d.join("healthcard.db").exists() && !d.join("master.key").exists());
    assert_eq!((mode(&db), mode(&key)), (0o600, 0o600));
    assert_eq!((mode(&d.join("db")), mode(&d.join("keys"))), (0o700, 0o700));
    // A running service's -wal and -shm files are owner-only too, also for
    // a database file someone left readable.
    std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let s = healthcard::config::Settings {
        data_dir: d.to_path_buf(),
        database_url: db.display().to_string(),
        ..Default::default()
    };
    let (ctx, _) = healthcard::service::AppContext::open_existing(s).unwrap();
    drop(ctx.conn().unwrap());
    for f in ["healthcard.db", "healthcard.db-wal", "healthcard.db-shm"] {
        assert_eq!(mode(&d.join("db").join(f)), 0o600, "{f}");
    }
    drop(ctx);

    // The old flat layout (files side by side) is used as it is.
    let old = tempfile::tempdir().unwrap();
    let o = old.path();
    std::fs::rename(&db, o.join("healthcard.db")).unwrap();
    std::fs::rename(&key, o.join("master.key")).unwrap();
    ok(&run(
        o,
        None,
        &["admin", "create", "--username", "later"],
        "s3cret-passw0rd-long\n",
    ));
    assert!(ok(&run(o, None, &["audit", "verify"], "")).contains("intact"));
    assert!(!o.join("db").exists() && !o.join("keys").exists());
}
