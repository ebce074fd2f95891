//! Administrator sessions, stored by token hash so that any node can check a
//! session made on another, and a stolen database holds no usable token.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::admins::{Admin, AdminRow};
use super::schema::{admins, sessions};
use super::{now, DbConnection, StoreError};
use crate::crypto::SecretHash;
use crate::domain::AdminId;

/// Records a session; the token itself stays with the caller.
pub fn create(
    conn: &mut DbConnection,
    admin: AdminId,
    hash: &SecretHash,
    expires_at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(hash.0.to_vec()),
            sessions::admin_id.eq(admin.to_string()),
            sessions::created_at.eq(now()),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The administrator of an unexpired session with this hash, unless the
/// account is disabled (a disabled account's sessions stop at once).
pub fn find_valid(
    conn: &mut DbConnection,
    hash: &SecretHash,
    now: NaiveDateTime,
) -> Result<Option<Admin>, StoreError> {
    sessions::table
        .inner_join(admins::table)
        .filter(sessions::token_hash.eq(hash.0.to_vec()))
        .filter(sessions::expires_at.gt(now))
        .filter(admins::disabled_at.is_null())
        .select(AdminRow::as_select())
        .first(conn)
        .optional()?
        .map(Admin::try_from)
        .transpose()
}

/// Ends a session (log-out). Deleting an absent session is not an error.
pub fn delete(conn: &mut DbConnection, hash: &SecretHash) -> Result<(), StoreError> {
    diesel::delete(sessions::table.find(hash.0.to_vec())).execute(conn)?;
    Ok(())
}

/// Drops expired sessions; returns how many.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?)
}
