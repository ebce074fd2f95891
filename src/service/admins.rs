//! Administrators: signing in (with throttling), sessions, and what an
//! operator does on the command line (create, list, disable, enable, change a
//! password, unlock, end sessions). Every change is in the access log.
//!
//! Sign-in throttling, in the database so that it holds across nodes:
//!
//! - **pair** (source, username): after `login_failures_before_lockout`
//!   failures, that source is refused for that account for 30 s, doubling
//!   per further failure up to 15 minutes — even with the right password. It
//!   stops a guessing loop without touching anyone else.
//! - **source** (one address, IPv6 by /64, across usernames): four times
//!   that many failures refuse the source for every account, on the same
//!   schedule, so spreading guesses over usernames does not help.
//! - **username** (one account, across sources): ten times that many
//!   failures start a slower backoff (60 s doubling up to an hour) that
//!   refuses every source that has already failed on this account; a source
//!   with no failure on it (the real administrator's office) is still checked,
//!   so nobody can lock the administrator out from elsewhere, and a botnet
//!   gets one guess per address per account per [`FAILURE_MEMORY`].
//!
//! A success clears the pair and the account's own counter; failures are
//! forgotten after [`FAILURE_MEMORY`] (housekeeping deletes the rows);
//! `healthcard admin unlock` clears an account's rows at once.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::Connection;

use super::registry::{entry, Actor};
use super::AppContext;
use crate::crypto::{self, SecretKind, SecretToken};
use crate::domain::{NewPassword, Username};
use crate::store::admins::{self, Admin};
use crate::store::login_throttle::{self, Failures};
use crate::store::{access_log, sessions, StoreError};

/// How long a failure is remembered.
pub const FAILURE_MEMORY: Duration = Duration::hours(24);

/// The outcome of a sign-in attempt.
pub enum SignIn {
    /// A session is open: its secret (for the cookie or bearer token) and expiry.
    Opened {
        secret: SecretToken,
        expires_at: DateTime<Utc>,
    },
    /// Wrong username or password, or a disabled account.
    Wrong,
    /// Throttled: refused whatever the password, for this many seconds.
    Locked { retry_after: i64 },
}

/// One throttle: free below `threshold` failures, then `base` seconds
/// doubling with each further failure, never above `cap`.
#[derive(Debug, Clone, Copy)]
struct Rule {
    threshold: i64,
    base: i64,
    cap: i64,
}

impl Rule {
    fn lockout_secs(&self, failures: i64) -> i64 {
        if failures < self.threshold {
            return 0;
        }
        let steps = (failures - self.threshold).min(12) as u32;
        (self.base << steps).min(self.cap)
    }

    /// Seconds still to wait after `f`, if any.
    fn wait(&self, f: Failures, now: NaiveDateTime) -> Option<i64> {
        let last = f.last_at?;
        let until = last + Duration::seconds(self.lockout_secs(f.count));
        (until > now).then(|| (until - now).num_seconds().max(1))
    }
}

struct Throttle {
    pair: Rule,
    source: Rule,
    username: Rule,
}

impl Throttle {
    fn of(ctx: &AppContext) -> Throttle {
        let t = i64::from(ctx.settings.login_failures_before_lockout.max(1));
        Throttle {
            pair: Rule {
                threshold: t,
                base: 30,
                cap: 900,
            },
            source: Rule {
                threshold: 4 * t,
                base: 30,
                cap: 900,
            },
            username: Rule {
                threshold: 10 * t,
                base: 60,
                cap: 3600,
            },
        }
    }
}

/// A PHC hash of a random password, checked when the username does not
/// exist so that both paths cost one Argon2 computation.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        crypto::hash_password(&hex::encode(crypto::random_bytes::<16>())).unwrap_or_default()
    })
}

/// Checks a username and password from `source` (a client's
/// [`crate::proxy::Client::source_key`]) under the throttles above and opens
/// a session on success; shared by the API and the portal.
pub fn sign_in(
    ctx: &AppContext,
    source: &str,
    username: &str,
    password: &str,
) -> Result<SignIn, StoreError> {
    let now = Utc::now().naive_utc();
    let since = now - FAILURE_MEMORY;
    let mut conn = ctx.conn()?;
    let Ok(username) = Username::parse(username) else {
        crypto::verify_password(password, decoy_hash());
        login_throttle::record(&mut conn, source, None, now, since)?;
        return Ok(SignIn::Wrong);
    };
    let counts = login_throttle::read(&mut conn, source, username.as_str(), since)?;
    let rules = Throttle::of(ctx);
    let account_wait = if counts.pair.count > 0 {
        rules.username.wait(counts.username, now)
    } else {
        None
    };
    let wait = [
        rules.pair.wait(counts.pair, now),
        rules.source.wait(counts.source, now),
        account_wait,
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(retry_after) = wait {
        return Ok(SignIn::Locked { retry_after });
    }
    let admin = admins::find_by_username(&mut conn, &username)?;
    let ok = match &admin {
        Some(a) => crypto::verify_password(password, &a.password_phc),
        None => {
            crypto::verify_password(password, decoy_hash());
            false
        }
    };
    match admin {
        // A disabled account answers as a wrong password does.
        Some(a) if ok && a.disabled_at.is_none() => {
            login_throttle::clear_after_success(&mut conn, source, username.as_str())?;
            drop(conn);
            let (secret, expires_at) = open_session(ctx, &a)?;
            Ok(SignIn::Opened { secret, expires_at })
        }
        _ => {
            conn.transaction(|c| {
                login_throttle::record(c, source, Some(username.as_str()), now, since)
            })?;
            Ok(SignIn::Wrong)
        }
    }
}

/// Opens a session; returns its secret and expiry.
fn open_session(
    ctx: &AppContext,
    admin: &Admin,
) -> Result<(SecretToken, DateTime<Utc>), StoreError> {
    let secret = SecretToken::generate(SecretKind::Session);
    let expires = Utc::now() + Duration::seconds(ctx.settings.session_ttl_secs);
    sessions::create(
        &mut *ctx.conn()?,
        admin.id,
        &secret.hash(),
        expires.naive_utc(),
    )?;
    Ok((secret, expires))
}

/// The administrator of the session `secret` opened, if it is still valid
/// (unexpired, and the account not disabled): the one look-up every door
/// that takes a session (the API's bearer token, the portal's cookie) asks.
pub fn session_admin(ctx: &AppContext, secret: &SecretToken) -> Result<Option<Admin>, StoreError> {
    sessions::find_valid(&mut *ctx.conn()?, &secret.hash(), Utc::now().naive_utc())
}

/// Ends the session `secret` opened (sign-out); ending one that is gone
/// already is not an error.
pub fn close_session(ctx: &AppContext, secret: &SecretToken) -> Result<(), StoreError> {
    sessions::delete(&mut *ctx.conn()?, &secret.hash())
}

fn hash(password: &NewPassword) -> Result<String, StoreError> {
    crypto::hash_password(password.expose()).map_err(|e| StoreError::Other(e.to_string()))
}

/// Runs `f` and appends its access-log row (`action` on `username`) in one
/// transaction.
fn logged<T>(
    ctx: &AppContext,
    actor: &Actor,
    action: &str,
    username: &Username,
    f: impl FnOnce(&mut crate::store::DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    ctx.with_tx(|c| {
        let out = f(c)?;
        access_log::append(
            c,
            &ctx.master.chain_key(),
            &[entry(
                actor,
                action,
                None,
                None,
                Some(username.as_str().to_string()),
            )],
        )?;
        Ok(out)
    })
}

/// Makes an administrator. `Conflict(Conflict::UsernameTaken)` if the name exists.
pub fn create(
    ctx: &AppContext,
    actor: &Actor,
    username: &Username,
    password: &NewPassword,
) -> Result<Admin, StoreError> {
    let phc = hash(password)?;
    logged(ctx, actor, "admin.create", username, |c| {
        admins::create(c, username, &phc)
    })
}

/// Every administrator.
pub fn list(ctx: &AppContext) -> Result<Vec<Admin>, StoreError> {
    admins::list(&mut *ctx.conn()?)
}

/// Disables an account: no sign-in, and its sessions end now. `NotFound` if absent.
pub fn disable(ctx: &AppContext, actor: &Actor, username: &Username) -> Result<Admin, StoreError> {
    logged(ctx, actor, "admin.disable", username, |c| {
        admins::set_disabled(c, username, Some(crate::store::now()))
    })
}

/// Enables a disabled account again. `NotFound` if absent.
pub fn enable(ctx: &AppContext, actor: &Actor, username: &Username) -> Result<Admin, StoreError> {
    logged(ctx, actor, "admin.enable", username, |c| {
        admins::set_disabled(c, username, None)
    })
}

/// Sets a new password and ends the account's sessions (whoever held the
/// old password may hold one). `NotFound` if absent.
pub fn set_password(
    ctx: &AppContext,
    actor: &Actor,
    username: &Username,
    password: &NewPassword,
) -> Result<Admin, StoreError> {
    let phc = hash(password)?;
    logged(ctx, actor, "admin.passwd", username, |c| {
        let a = admins::set_password(c, username, &phc)?;
        admins::delete_sessions(c, a.id)?;
        Ok(a)
    })
}

/// Forgets every sign-in failure on an account, from every source; returns
/// how many counters went. Works for any well-formed name (failures are
/// counted for unknown names too).
pub fn unlock(ctx: &AppContext, actor: &Actor, username: &Username) -> Result<usize, StoreError> {
    logged(ctx, actor, "admin.unlock", username, |c| {
        login_throttle::clear_username(c, username.as_str())
    })
}

/// Ends every session of an account; returns how many. `NotFound` if absent.
pub fn revoke_sessions(
    ctx: &AppContext,
    actor: &Actor,
    username: &Username,
) -> Result<usize, StoreError> {
    logged(ctx, actor, "admin.sessions_revoke", username, |c| {
        let a = admins::find_by_username(c, username)?.ok_or(StoreError::NotFound)?;
        admins::delete_sessions(c, a.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_the_threshold_doubles_and_caps() {
        let r = Rule {
            threshold: 5,
            base: 30,
            cap: 900,
        };
        assert_eq!(r.lockout_secs(4), 0);
        assert_eq!(r.lockout_secs(5), 30);
        assert_eq!(r.lockout_secs(6), 60);
        assert_eq!(r.lockout_secs(10), 900);
        assert_eq!(r.lockout_secs(1000), 900);
        let now = Utc::now().naive_utc();
        let recent = Failures {
            count: 5,
            last_at: Some(now - Duration::seconds(10)),
        };
        assert_eq!(r.wait(recent, now), Some(20));
        let old = Failures {
            count: 5,
            last_at: Some(now - Duration::seconds(31)),
        };
        assert_eq!(r.wait(old, now), None);
        assert_eq!(r.wait(Failures::default(), now), None);
    }
}
