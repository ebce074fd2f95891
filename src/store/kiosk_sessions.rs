//! Kiosk sessions: a terminal signs in once with its clinic's API key and
//! keeps only a session token (stored here by its hash), so the key itself
//! never sits in a browser cookie. Each session is bound to the key that
//! opened it: a revoked key ends its sessions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::clinics::{Clinic, ClinicRow};
use super::schema::{api_keys, clinics, kiosk_sessions};
use super::{now, DbConnection, StoreError};
use crate::crypto::SecretHash;
use crate::domain::ClinicId;

/// Records a session for `clinic` opened with API key `api_key_id`.
pub fn create(
    conn: &mut DbConnection,
    hash: &SecretHash,
    clinic: ClinicId,
    api_key_id: &str,
    expires_at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::insert_into(kiosk_sessions::table)
        .values((
            kiosk_sessions::token_hash.eq(hash.0.to_vec()),
            kiosk_sessions::clinic_id.eq(clinic.to_string()),
            kiosk_sessions::api_key_id.eq(api_key_id),
            kiosk_sessions::created_at.eq(now()),
            kiosk_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The clinic of an unexpired session whose key is still unrevoked.
pub fn find_valid(
    conn: &mut DbConnection,
    hash: &SecretHash,
    now: NaiveDateTime,
) -> Result<Option<Clinic>, StoreError> {
    kiosk_sessions::table
        .inner_join(clinics::table)
        .inner_join(api_keys::table)
        .filter(kiosk_sessions::token_hash.eq(hash.0.to_vec()))
        .filter(kiosk_sessions::expires_at.gt(now))
        .filter(api_keys::revoked_at.is_null())
        .select(ClinicRow::as_select())
        .first(conn)
        .optional()?
        .map(Clinic::try_from)
        .transpose()
}

/// Ends one session (sign-out); an absent session is not an error.
pub fn delete(conn: &mut DbConnection, hash: &SecretHash) -> Result<(), StoreError> {
    diesel::delete(kiosk_sessions::table.find(hash.0.to_vec())).execute(conn)?;
    Ok(())
}

/// Ends every session opened with one API key; returns how many.
pub fn delete_for_key(conn: &mut DbConnection, api_key_id: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(kiosk_sessions::table.filter(kiosk_sessions::api_key_id.eq(api_key_id)))
            .execute(conn)?,
    )
}

/// Drops expired sessions; returns how many.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(kiosk_sessions::table.filter(kiosk_sessions::expires_at.le(now)))
            .execute(conn)?,
    )
}
