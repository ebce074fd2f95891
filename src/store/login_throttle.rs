//! Failed sign-ins (table `login_throttle`), counted in the database (not in one node's memory) so
//! that throttling holds across nodes. Three kinds of row share the table:
//! `(source, username)` for one source trying one account, `(source, ANY)`
//! for one source across accounts, `(ANY, username)` for one account across
//! sources. The policy that reads them is `service::admins`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::login_throttle;
use super::{is_unique_violation, DbConnection, StoreError};

/// The wildcard side of a row: neither an address nor a valid username.
pub const ANY: &str = "*";

/// Failures of one row within the memory window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    pub last_at: Option<NaiveDateTime>,
}

/// The three counters that bear on one attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pair: Failures,
    pub source: Failures,
    pub username: Failures,
}

fn keys<'a>(source: &'a str, username: &'a str) -> [(&'a str, &'a str); 3] {
    [(source, username), (source, ANY), (ANY, username)]
}

/// The counters for `source` trying `username`; rows last touched before
/// `since` count as none.
pub fn read(
    conn: &mut DbConnection,
    source: &str,
    username: &str,
    since: NaiveDateTime,
) -> Result<Counts, StoreError> {
    let mut out = [Failures::default(); 3];
    for (slot, (s, u)) in out.iter_mut().zip(keys(source, username)) {
        let row: Option<(i64, NaiveDateTime)> = login_throttle::table
            .find((s, u))
            .filter(login_throttle::last_at.ge(since))
            .select((login_throttle::count, login_throttle::last_at))
            .first(conn)
            .optional()?;
        if let Some((count, at)) = row {
            *slot = Failures {
                count,
                last_at: Some(at),
            };
        }
    }
    let [pair, source, username] = out;
    Ok(Counts {
        pair,
        source,
        username,
    })
}

/// Counts one failure on all three rows (only the source's when the
/// username was not even well formed). Each row is bumped by one statement
/// (never read, then written) so that nodes failing at once all count; a row
/// older than `since` starts again from one.
pub fn record(
    conn: &mut DbConnection,
    source: &str,
    username: Option<&str>,
    at: NaiveDateTime,
    since: NaiveDateTime,
) -> Result<(), StoreError> {
    match username {
        Some(u) => {
            for (s, u) in keys(source, u) {
                bump(conn, s, u, at, since)?;
            }
            Ok(())
        }
        None => bump(conn, source, ANY, at, since),
    }
}

fn bump(
    conn: &mut DbConnection,
    source: &str,
    username: &str,
    at: NaiveDateTime,
    since: NaiveDateTime,
) -> Result<(), StoreError> {
    let row = || login_throttle::table.find((source, username));
    let add = |conn: &mut DbConnection| {
        diesel::update(row().filter(login_throttle::last_at.ge(since)))
            .set((
                login_throttle::count.eq(login_throttle::count + 1),
                login_throttle::last_at.eq(at),
            ))
            .execute(conn)
    };
    if add(conn)? > 0 {
        return Ok(());
    }
    let restart = diesel::update(row())
        .set((
            login_throttle::count.eq(1i64),
            login_throttle::last_at.eq(at),
        ))
        .execute(conn)?;
    if restart > 0 {
        return Ok(());
    }
    match diesel::insert_into(login_throttle::table)
        .values((
            login_throttle::source.eq(source),
            login_throttle::username.eq(username),
            login_throttle::count.eq(1i64),
            login_throttle::last_at.eq(at),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(()),
        // Another node inserted first: count on its row.
        Err(e) if is_unique_violation(&e) => add(conn).map(|_| ()).map_err(Into::into),
        Err(e) => Err(e.into()),
    }
}

/// Forgets what a successful sign-in proves wrong: this source's failures on
/// this account, and the account's failures across sources.
pub fn clear_after_success(
    conn: &mut DbConnection,
    source: &str,
    username: &str,
) -> Result<(), StoreError> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::username.eq(username))
            .filter(
                login_throttle::source
                    .eq(source)
                    .or(login_throttle::source.eq(ANY)),
            ),
    )
    .execute(conn)?;
    Ok(())
}

/// Forgets every failure on an account, from every source (`admin unlock`);
/// returns how many rows went.
pub fn clear_username(conn: &mut DbConnection, username: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(login_throttle::table.filter(login_throttle::username.eq(username)))
            .execute(conn)?,
    )
}

/// Drops rows last touched before `before` (housekeeping); returns how many.
pub fn purge(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(login_throttle::table.filter(login_throttle::last_at.lt(before)))
            .execute(conn)?,
    )
}
