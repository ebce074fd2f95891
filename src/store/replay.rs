//! The replay set of dynamic tokens: shared by every node through the
//! database, so a token scanned at one node is refused at all the others.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::replay;
use super::{DbConnection, StoreError};

/// Records the token id; `true` the first time, `false` if it was already
/// seen (atomically, on any node: see [`accept_many`]). Keep `expires_at` =
/// the token's expiry so [`purge_expired`] can drop it.
pub fn accept_once(
    conn: &mut DbConnection,
    token_id: &[u8; 16],
    expires_at: NaiveDateTime,
) -> Result<bool, StoreError> {
    Ok(accept_many(conn, &[(*token_id, expires_at)])?
        .pop()
        .unwrap_or(false))
}

/// Records a batch of token ids at once, inside the caller's transaction:
/// answer `i` is `true` if `tokens[i]` was new. One `INSERT … ON CONFLICT DO
/// NOTHING RETURNING` (SQLite 3.35+, PostgreSQL 9.5+): the rows it returns are
/// the ones inserted. A concurrent insert of the same id on another node makes
/// PostgreSQL wait for that transaction and then skip the row, so each id is
/// accepted exactly once across nodes. An id given twice here counts once
/// (the first).
pub fn accept_many(
    conn: &mut DbConnection,
    tokens: &[([u8; 16], NaiveDateTime)],
) -> Result<Vec<bool>, StoreError> {
    use std::collections::HashSet;
    let mut seen = HashSet::with_capacity(tokens.len());
    let rows: Vec<_> = tokens
        .iter()
        .filter(|(id, _)| seen.insert(*id))
        .map(|(id, exp)| {
            (
                replay::token_id.eq(id.to_vec()),
                replay::expires_at.eq(*exp),
            )
        })
        .collect();
    let mut inserted: HashSet<Vec<u8>> = HashSet::with_capacity(rows.len());
    // Two bound values a row: 1,000 rows stay far below either database's limit.
    for chunk in rows.chunks(1000) {
        let ids: Vec<Vec<u8>> = match conn {
            DbConnection::Postgresql(c) => diesel::insert_into(replay::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(replay::token_id)
                .get_results(c)?,
            DbConnection::Sqlite(c) => diesel::insert_into(replay::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(replay::token_id)
                .get_results(c)?,
        };
        inserted.extend(ids);
    }
    Ok(tokens
        .iter()
        .map(|(id, _)| inserted.remove(id.as_slice()))
        .collect())
}

/// Drops entries whose tokens have expired (an expired token is refused by
/// its `exp` anyway). Returns how many were dropped.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(replay::table.filter(replay::expires_at.lt(now))).execute(conn)?)
}
