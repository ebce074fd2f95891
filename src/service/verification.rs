//! Verification of a scanned token, in the order the contract fixes: the
//! token itself (format, key, signature, times), the key not revoked, the
//! card's state, replay of dynamic tokens; then the resident and the
//! clinic's own patient number. Every outcome is written to the access log.
//!
//! Split for speed: [`check_token`] is pure CPU and runs on the request's
//! thread; [`judge`] and [`settle`] take a whole batch of tokens to the
//! database at once, on the access-log writer's thread, in the transaction
//! that also writes their log entries.

use std::sync::Arc;

use crate::crypto::MasterKey;
use crate::domain::{CardId, CardStatus, Channel, ClinicId, DomainError, Step, TemporaryRefusal};
use crate::store::clinics::Clinic;
use crate::store::resolve::{self, Resolution};
use crate::store::{DbConnection, StoreError};
use crate::token::{self, Claims, KeyRing, Reason, TokenKind, Validation};

use super::{AppContext, LogEntry};

/// Counts of verifications by outcome, channel and step, exported with the
/// HTTP metrics. Kept here so that every door (API, kiosk, FHIR) counts the
/// same way. Every label comes from a fixed set (outcome codes, channel and
/// step names, `unspecified`), never from request text.
#[derive(Clone)]
pub struct Counters {
    pub verifications: prometheus::IntCounterVec,
    /// Identifications by document (`service::identify`), by the same labels.
    pub identifications: prometheus::IntCounterVec,
}

impl Counters {
    pub fn new() -> Counters {
        let verifications = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "verifications_total",
                "Token verifications by outcome (valid or reason), channel and step",
            ),
            &["outcome", "channel", "step"],
        )
        .expect("valid metric");
        let identifications = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "identifications_total",
                "Identifications by document number by outcome (valid or reason), channel and step",
            ),
            &["outcome", "channel", "step"],
        )
        .expect("valid metric");
        Counters {
            verifications,
            identifications,
        }
    }

    /// Counts an identification by its outcome code (a fixed set).
    pub fn count_identification(&self, outcome: &'static str, used: Use) {
        self.identifications
            .with_label_values(&[
                outcome,
                used.channel.map(|c| c.as_str()).unwrap_or("unspecified"),
                used.step.map(|s| s.as_str()).unwrap_or("unspecified"),
            ])
            .inc();
    }

    fn count(&self, outcome: &Outcome, channel: Option<Channel>, step: Option<Step>) {
        self.verifications
            .with_label_values(&[
                outcome.label(),
                channel.map(|c| c.as_str()).unwrap_or("unspecified"),
                step.map(|s| s.as_str()).unwrap_or("unspecified"),
            ])
            .inc();
    }
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

/// Where and for what a card was used: recorded with the verification and
/// counted by the card-use monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Use {
    pub channel: Option<Channel>,
    pub step: Option<Step>,
}

impl Use {
    /// The channel and step as a request names them (the API's body, the
    /// FHIR parameters): absent or empty is "not given", anything else must
    /// be one of ours.
    pub fn parse(channel: Option<&str>, step: Option<&str>) -> Result<Use, DomainError> {
        let channel = match channel {
            None | Some("") => None,
            Some(c) => Some(c.parse::<Channel>()?),
        };
        let step = match step {
            None | Some("") => None,
            Some(s) => Some(s.parse::<Step>()?),
        };
        Ok(Use { channel, step })
    }
}

/// The verification use case, the same for every door: checks a scanned
/// text, settles it with the access-log writer (card state, replay) in the
/// transaction that logs it, and counts it. A federated node sends a token
/// of another issuer in its trust list to that issuer's node
/// ([`super::federation`]).
pub async fn verify_scanned(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    token: &str,
    used: Use,
) -> Result<Outcome, StoreError> {
    let text = token::trim_scanned(token);
    let outcome = match super::federation::route(ctx, &ctx.keys.current(), text) {
        super::federation::Route::Local => return verify_local(ctx, clinic, token, used).await,
        super::federation::Route::Foreign(list, index) => {
            super::federation::verify_foreign(ctx, clinic, text, used, list, index).await?
        }
        super::federation::Route::Refused(reason) => {
            let refused = Outcome::Invalid {
                reason,
                card_id: None,
            };
            ctx.audit.record(log_entry(clinic, &refused, used)).await?;
            refused
        }
    };
    ctx.counters.count(&outcome, used.channel, used.step);
    Ok(outcome)
}

/// [`verify_scanned`] against this node's own keys only.
pub async fn verify_local(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    token: &str,
    used: Use,
) -> Result<Outcome, StoreError> {
    verify_local_with(ctx, clinic, token, used, None).await
}

/// [`verify_local`] for a peer node's request: what a home node runs for a
/// peer as for its own clinics, spending the request's `nonce` in the
/// transaction that settles and logs the token (`Conflict::RequestReplayed`
/// and nothing written if it was spent before).
pub async fn verify_local_with(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    token: &str,
    used: Use,
    nonce: Option<super::audit::Nonce>,
) -> Result<Outcome, StoreError> {
    // The token alone is checked here, on the worker (pure CPU, no hop).
    let checked = if token.len() > token::MAX_TOKEN_LEN {
        Err(Outcome::Invalid {
            reason: Reason::Malformed,
            card_id: None,
        })
    } else {
        let validation = Validation {
            now: chrono::Utc::now().timestamp(),
            leeway_secs: ctx.settings.clock_skew_secs,
        };
        check_token(&ctx.keys.current(), &validation, token::trim_scanned(token))
    };
    let outcome = match checked {
        Ok(claims) => {
            let pending = Pending {
                clinic: clinic.clone(),
                claims,
                used,
                at: ctx.clock.now(),
                nonce,
            };
            ctx.audit.verify(pending).await?
        }
        Err(refused) => {
            let entry = log_entry(clinic, &refused, used);
            ctx.audit.record_with(entry, nonce).await?;
            refused
        }
    };
    ctx.counters.count(&outcome, used.channel, used.step);
    Ok(outcome)
}

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
    /// A card of another issuer, valid as its home node judged it.
    Foreign {
        claims: Claims,
        resolution: Box<super::federation::ForeignResolution>,
    },
}

impl Outcome {
    /// `valid` or the reason code, as counted in metrics and the log.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Valid { .. } | Outcome::Foreign { .. } => "valid",
            Outcome::Invalid { reason, .. } => reason.code(),
        }
    }
}

/// A correctly signed, current token waiting for the checks that need the
/// database. Built by [`check_token`] on the request's thread and settled in
/// a batch by the access-log writer (see [`super::audit`]).
#[derive(Debug)]
pub struct Pending {
    pub clinic: Arc<Clinic>,
    pub claims: Claims,
    pub used: Use,
    /// The registry's now ([`super::context::Clock`]) for the rules that go
    /// by the calendar: a temporary card's `valid_until`.
    pub at: chrono::NaiveDateTime,
    /// A peer node's request nonce, spent with the verification (federation).
    pub nonce: Option<super::audit::Nonce>,
}

/// The checks that need no database: format, key, signature, times. CPU only
/// (one Ed25519 verification, ~50 µs), so it runs where the request is;
/// `Err` is the final outcome of a refused token.
pub fn check_token(ring: &KeyRing, validation: &Validation, text: &str) -> Result<Claims, Outcome> {
    token::verify(text, ring, validation)
        .map(|v| v.claims)
        .map_err(|rejection| Outcome::Invalid {
            reason: rejection.reason,
            card_id: rejection.claims.map(|c| c.card_id),
        })
}

/// A pending token after the card read: decided, or a dynamic token on a
/// live card that still has to pass the replay set.
#[derive(Debug)]
pub enum Judged {
    Decided(Outcome),
    NeedsReplayCheck {
        claims: Claims,
        resolution: Box<Resolution>,
    },
}

/// Reads the cards of a batch (two statements whatever its size) and judges
/// each by its card's state. Answer `i` is for `pending[i]`; an `Err` inside
/// is a row that no longer reads back, and fails only its own verification.
pub fn judge(
    conn: &mut DbConnection,
    master: &MasterKey,
    pending: &[&Pending],
) -> Result<Vec<Result<Judged, StoreError>>, StoreError> {
    let wanted: Vec<(CardId, ClinicId)> = pending
        .iter()
        .map(|p| (CardId::from(p.claims.card_id), p.clinic.id))
        .collect();
    let found = resolve::cards_for_verification(conn, master, &wanted)?;
    Ok(pending
        .iter()
        .zip(found)
        .map(|(p, found)| {
            let card_id = p.claims.card_id;
            let invalid = |reason| {
                Judged::Decided(Outcome::Invalid {
                    reason,
                    card_id: Some(card_id),
                })
            };
            // Correctly signed but unknown here: the card was never issued by
            // this registry's database (restored backup, foreign deployment
            // with our key).
            let Some(resolution) = found? else {
                return Ok(invalid(Reason::CardRevoked));
            };
            // A temporary card (临时卡) is good only at its issuing clinic and
            // until valid_until (TemporaryTerms::judge), checked after the
            // card's state and before the replay set.
            let refused = resolution
                .temporary
                .as_ref()
                .and_then(|t| t.terms.judge(p.clinic.id, p.at).err());
            Ok(match resolution.card.status {
                CardStatus::Suspended => invalid(Reason::CardSuspended),
                CardStatus::Revoked => invalid(Reason::CardRevoked),
                CardStatus::Replaced => invalid(Reason::CardReplaced),
                CardStatus::Active if refused == Some(TemporaryRefusal::Restricted) => {
                    invalid(Reason::CardRestricted)
                }
                CardStatus::Active if refused == Some(TemporaryRefusal::Expired) => {
                    invalid(Reason::CardExpired)
                }
                CardStatus::Active if p.claims.kind == TokenKind::Dynamic => {
                    Judged::NeedsReplayCheck {
                        claims: p.claims.clone(),
                        resolution: Box::new(resolution),
                    }
                }
                CardStatus::Active => Judged::Decided(Outcome::Valid {
                    claims: p.claims.clone(),
                    resolution: Box::new(resolution),
                }),
            })
        })
        .collect())
}

/// The dynamic tokens of a batch that still have to pass the replay set, in
/// batch order, with the time their replay rows may be purged: as long as
/// the token could still be accepted (`clock_skew_secs` past its expiry).
pub fn spends(
    judged: &[Result<Judged, StoreError>],
    clock_skew_secs: i64,
) -> Vec<([u8; 16], chrono::NaiveDateTime)> {
    judged
        .iter()
        .filter_map(|j| match j {
            Ok(Judged::NeedsReplayCheck { claims, .. }) => Some((
                claims.token_id,
                chrono::DateTime::from_timestamp(claims.expires_at + clock_skew_secs, 0)
                    .map(|t| t.naive_utc())
                    .unwrap_or(chrono::NaiveDateTime::MAX),
            )),
            _ => None,
        })
        .collect()
}

/// Every verification's outcome, given for each token of [`spends`] (in
/// order) whether this is its first use; a missing answer counts as a replay.
pub fn settle_as(
    judged: Vec<Result<Judged, StoreError>>,
    first_use: Vec<bool>,
) -> Vec<Result<Outcome, StoreError>> {
    let mut first_use = first_use.into_iter();
    judged
        .into_iter()
        .map(|j| {
            j.map(|j| match j {
                Judged::Decided(outcome) => outcome,
                Judged::NeedsReplayCheck { claims, resolution } => {
                    if first_use.next().unwrap_or(false) {
                        Outcome::Valid { claims, resolution }
                    } else {
                        Outcome::Invalid {
                            reason: Reason::Replayed,
                            card_id: Some(claims.card_id),
                        }
                    }
                }
            })
        })
        .collect()
}

/// The access-log entry for an outcome.
pub fn log_entry(clinic: &Clinic, outcome: &Outcome, used: Use) -> LogEntry {
    let (card_id, resident_id) = match outcome {
        Outcome::Valid { resolution, .. } => {
            (Some(resolution.card.id), Some(resolution.resident.id))
        }
        Outcome::Invalid { card_id, .. } => (card_id.map(CardId::from), None),
        // The home node's resident id is not one of this registry's.
        Outcome::Foreign { claims, .. } => (Some(CardId::from(claims.card_id)), None),
    };
    entry(clinic, card_id, resident_id, outcome.label(), used)
}

/// The access-log entry that [`settle_as`] will give `judged` for the
/// replay check's answer `first_use` (ignored for a decided one), without
/// consuming it: the writer logs the batch before it hands the outcomes out.
pub fn judged_log_entry(clinic: &Clinic, judged: &Judged, first_use: bool, used: Use) -> LogEntry {
    match judged {
        Judged::Decided(outcome) => log_entry(clinic, outcome, used),
        Judged::NeedsReplayCheck { resolution, .. } if first_use => entry(
            clinic,
            Some(resolution.card.id),
            Some(resolution.resident.id),
            "valid",
            used,
        ),
        Judged::NeedsReplayCheck { claims, .. } => entry(
            clinic,
            Some(CardId::from(claims.card_id)),
            None,
            Reason::Replayed.code(),
            used,
        ),
    }
}

fn entry(
    clinic: &Clinic,
    card_id: Option<CardId>,
    resident_id: Option<crate::domain::ResidentId>,
    label: &str,
    used: Use,
) -> LogEntry {
    LogEntry {
        at: chrono::Utc::now().naive_utc(),
        actor_kind: crate::store::access_log::ActorKind::Clinic,
        actor: clinic.code.as_str().to_string(),
        action: "verify".into(),
        card_id,
        resident_id,
        clinic_id: Some(clinic.id),
        channel: used.channel,
        step: used.step,
        credential: Some(crate::domain::Credential::Token),
        outcome: Some(label.to_string()),
        detail: None,
    }
}
