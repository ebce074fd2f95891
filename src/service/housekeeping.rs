//! What the housekeeping thread of every node does once a minute: deletes
//! what expired (each purge is one idempotent `DELETE`, so many nodes doing
//! it at once is fine) and rolls up the settled days of card use.

use chrono::NaiveDateTime;

use super::AppContext;
use crate::domain::monitoring_day;
use crate::store::{
    card_use_rollup, kiosk_sessions, login_failures, login_throttle, replay, sessions,
};

/// Drops expired replay entries, admin and kiosk sessions, and sign-in
/// failures (`login_throttle`, and the previous version's `login_failures`)
/// older than [`super::admins::FAILURE_MEMORY`]; writes the end of minors'
/// guardianships on the 18th birthday (by the context's clock). A failure is
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
    if let Err(e) = crate::store::federation::purge_nonces(&mut conn, now) {
        tracing::warn!(error = %e, "federation nonce purge failed");
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
    drop(conn);
    if let Err(e) = super::families::end_by_birthdays(ctx) {
        tracing::warn!(error = %e, "guardianship birthday ends failed");
    }
}

/// Days of card use settled per round: a year of history (a node upgraded
/// onto an old database) is rolled up over a few minutes, not in one round.
const SETTLE_DAYS_PER_ROUND: u32 = 31;

/// Rolls up the card use of every monitoring day before yesterday not yet
/// rolled up (`store::card_use_rollup`). Yesterday is left to the daily
/// counts: a batch appended just before midnight may still be committing.
pub fn settle_card_use(ctx: &AppContext, now: NaiveDateTime) {
    let Some(through) = monitoring_day(now).checked_sub_days(chrono::Days::new(2)) else {
        return;
    };
    let result = ctx.conn().map_err(|e| e.to_string()).and_then(|mut conn| {
        card_use_rollup::settle(&mut conn, through, SETTLE_DAYS_PER_ROUND)
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(0) => {}
        Ok(days) => tracing::info!(days, "card use rolled up"),
        Err(error) => tracing::warn!(%error, "card-use roll-up failed"),
    }
}
