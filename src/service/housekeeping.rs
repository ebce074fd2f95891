//! What the housekeeping thread of every node deletes once a minute. Each
//! purge is one idempotent `DELETE`, so many nodes doing it at once is fine.

use chrono::NaiveDateTime;

use super::AppContext;
use crate::store::{kiosk_sessions, login_failures, login_throttle, replay, sessions};

/// Drops expired replay entries, admin and kiosk sessions, and sign-in
/// failures (`login_throttle`, and the previous version's `login_failures`)
/// older than [`super::admins::FAILURE_MEMORY`]. A failure is
/// logged and the next round tries again.
pub fn purge(ctx: &AppContext, now: NaiveDateTime) {
    let mut conn = match ctx.conn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "housekeeping: no database connection");
            return;
        }
    };
    if let Err(e) = replay::purge_expired(&mut conn, now) {
        tracing::warn!(error = %e, "replay purge failed");
    }
    if let Err(e) = sessions::purge_expired(&mut conn, now) {
        tracing::warn!(error = %e, "session purge failed");
    }
    if let Err(e) = kiosk_sessions::purge_expired(&mut conn, now) {
        tracing::warn!(error = %e, "kiosk session purge failed");
    }
    let forgotten = now - super::admins::FAILURE_MEMORY;
    if let Err(e) = login_throttle::purge(&mut conn, forgotten) {
        tracing::warn!(error = %e, "sign-in failure purge failed");
    }
    // The previous version's table, still written by old nodes in a rolling upgrade.
    if let Err(e) = login_failures::purge(&mut conn, forgotten) {
        tracing::warn!(error = %e, "legacy sign-in failure purge failed");
    }
}
