//! The replay set of dynamic tokens: shared by every node through the
//! database, so a token scanned at one node is refused at all the others.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::replay;
use super::{is_unique_violation, DbConnection, StoreError};

/// Records the token id; `true` the first time, `false` if it was already
/// seen (the primary key refuses the second insert, atomically, on any node).
/// Keep `expires_at` = the token's expiry so [`purge_expired`] can drop it.
pub fn accept_once(
    conn: &mut DbConnection,
    token_id: &[u8; 16],
    expires_at: NaiveDateTime,
) -> Result<bool, StoreError> {
    match diesel::insert_into(replay::table)
        .values((
            replay::token_id.eq(token_id.to_vec()),
            replay::expires_at.eq(expires_at),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Drops entries whose tokens have expired (an expired token is refused by
/// its `exp` anyway). Returns how many were dropped.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(replay::table.filter(replay::expires_at.lt(now))).execute(conn)?)
}
