//! Verification of a scanned token, in the order the contract fixes: the
//! token itself (format, key, signature, times), the key not revoked, the
//! card's state, replay of dynamic tokens; then the resident and the
//! clinic's own patient number. Every outcome is written to the access log.

use crate::domain::{CardStatus, Channel};
use crate::store::clinics::Clinic;
use crate::store::resolve::{self, Resolution};
use crate::store::{replay, StoreError};
use crate::token::{self, Claims, Reason, TokenKind, Validation};

use super::{AppContext, LogEntry};

/// What a clinic learns from a verification.
#[derive(Debug)]
pub enum Outcome {
    Valid {
        claims: Claims,
        resolution: Box<Resolution>,
    },
    Invalid {
        reason: Reason,
        /// The card named by a correctly signed token, for the access log.
        card_id: Option<uuid::Uuid>,
    },
}

impl Outcome {
    /// `valid` or the reason code, as counted in metrics and the log.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Valid { .. } => "valid",
            Outcome::Invalid { reason, .. } => reason.code(),
        }
    }
}

/// Checks `text` for `clinic` at `now` (unix seconds). Blocking: call it off
/// the async workers.
pub fn check(
    ctx: &AppContext,
    clinic: &Clinic,
    text: &str,
    now: i64,
) -> Result<Outcome, StoreError> {
    let ring = ctx.keys.current();
    let validation = Validation {
        now,
        leeway_secs: ctx.settings.clock_skew_secs,
    };
    let verified = match token::verify(text, &ring, &validation) {
        Ok(v) => v,
        Err(rejection) => {
            return Ok(Outcome::Invalid {
                reason: rejection.reason,
                card_id: rejection.claims.map(|c| c.card_id),
            })
        }
    };
    let claims = verified.claims;
    let card_id = claims.card_id;
    let mut conn = ctx.conn()?;
    let resolution = match resolve::card_for_verification(
        &mut conn,
        &ctx.master,
        crate::domain::CardId::from(card_id),
        clinic.id,
    )? {
        Some(r) => r,
        // Correctly signed but unknown here: the card was never issued by this
        // registry's database (restored backup, foreign deployment with our key).
        None => {
            return Ok(Outcome::Invalid {
                reason: Reason::CardRevoked,
                card_id: Some(card_id),
            })
        }
    };
    let state_reason = match resolution.card.status {
        CardStatus::Active => None,
        CardStatus::Suspended => Some(Reason::CardSuspended),
        CardStatus::Revoked => Some(Reason::CardRevoked),
        CardStatus::Replaced => Some(Reason::CardReplaced),
    };
    if let Some(reason) = state_reason {
        return Ok(Outcome::Invalid {
            reason,
            card_id: Some(card_id),
        });
    }
    if claims.kind == TokenKind::Dynamic {
        let expires =
            chrono::DateTime::from_timestamp(claims.expires_at + ctx.settings.clock_skew_secs, 0)
                .map(|t| t.naive_utc())
                .unwrap_or(chrono::NaiveDateTime::MAX);
        if !replay::accept_once(&mut conn, &claims.token_id, expires)? {
            return Ok(Outcome::Invalid {
                reason: Reason::Replayed,
                card_id: Some(card_id),
            });
        }
    }
    Ok(Outcome::Valid {
        claims,
        resolution: Box::new(resolution),
    })
}

/// The access-log entry for an outcome.
pub fn log_entry(clinic: &Clinic, outcome: &Outcome, channel: Option<Channel>) -> LogEntry {
    let (card_id, resident_id) = match outcome {
        Outcome::Valid { resolution, .. } => {
            (Some(resolution.card.id), Some(resolution.resident.id))
        }
        Outcome::Invalid { card_id, .. } => (card_id.map(crate::domain::CardId::from), None),
    };
    LogEntry {
        at: chrono::Utc::now().naive_utc(),
        actor_kind: crate::store::access_log::ActorKind::Clinic,
        actor: clinic.code.as_str().to_string(),
        action: "verify".into(),
        card_id,
        resident_id,
        clinic_id: Some(clinic.id),
        channel,
        outcome: Some(outcome.label().to_string()),
        detail: None,
    }
}
