//! Kiosk sessions: the terminal trades its clinic's API key for a session
//! token once, and keeps only that (`store::kiosk_sessions`).

use chrono::{Duration, Utc};

use super::AppContext;
use crate::crypto::{SecretKind, SecretToken};
use crate::domain::Scope;
use crate::store::clinics::{self, Clinic};
use crate::store::{kiosk_sessions, StoreError};

/// A terminal stays signed in for a day, then asks for the key again.
pub const SESSION_SECS: i64 = 24 * 3600;

/// What signing a kiosk in with an API key came to.
pub enum Opened {
    /// The session's secret (for the cookie) and its clinic.
    Session(SecretToken, Clinic),
    /// A valid key without the `verify` scope.
    NoVerifyScope,
    /// No such key, or a revoked one.
    BadKey,
}

/// Checks `api_key` and opens a session bound to it.
pub fn open(ctx: &AppContext, api_key: &str) -> Result<Opened, StoreError> {
    let Some(key) = SecretToken::parse(SecretKind::ApiKey, api_key.trim()) else {
        return Ok(Opened::BadKey);
    };
    let mut conn = ctx.conn()?;
    let Some((clinic, key_id)) = clinics::authenticate_key(&mut conn, &key.hash())? else {
        return Ok(Opened::BadKey);
    };
    if !clinic.scopes.contains(Scope::Verify) {
        return Ok(Opened::NoVerifyScope);
    }
    let secret = SecretToken::generate(SecretKind::KioskSession);
    let expires = Utc::now() + Duration::seconds(SESSION_SECS);
    kiosk_sessions::create(
        &mut conn,
        &secret.hash(),
        clinic.id,
        &key_id,
        expires.naive_utc(),
    )?;
    Ok(Opened::Session(secret, clinic))
}

/// The clinic of a live session token (text from the cookie), if any.
pub fn clinic_of(ctx: &AppContext, token: &str) -> Result<Option<Clinic>, StoreError> {
    let Some(secret) = SecretToken::parse(SecretKind::KioskSession, token) else {
        return Ok(None);
    };
    kiosk_sessions::find_valid(&mut *ctx.conn()?, &secret.hash(), Utc::now().naive_utc())
}

/// Ends the session of `token` (sign-out); nothing to end is fine.
pub fn close(ctx: &AppContext, token: &str) -> Result<(), StoreError> {
    match SecretToken::parse(SecretKind::KioskSession, token) {
        Some(secret) => kiosk_sessions::delete(&mut *ctx.conn()?, &secret.hash()),
        None => Ok(()),
    }
}
