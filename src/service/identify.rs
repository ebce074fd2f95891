//! Identification by document (多码融合, issue 14): a clinic with the
//! `identify` scope gives the number that an ID-card reader typed instead
//! of a scanned token, and gets the answer a verification gives: the
//! resident's current card, the resident (disclosed by the clinic's scopes,
//! as for a token) and the clinic's own number for them. Logged like a
//! verification (`identify`, credential `document`, channel and step), so
//! the holder sees it and the card-use monitoring counts it, and counted in
//! the metrics beside the verifications.
//!
//! An ID number is not a secret: whoever has the scope finds anyone whose
//! number they know. The scope is given deliberately (docs/security.md).

use std::sync::Arc;

use crate::domain::{CardId, CardStatus, Credential, Document};
use crate::store::access_log::ActorKind;
use crate::store::clinics::Clinic;
use crate::store::resolve::{self, Resolution};
use crate::store::{cards, merges, residents, StoreError};

use super::verification::Use;
use super::{AppContext, LogEntry};

/// Why an identification found no usable card. Codes are the verification
/// reasons of the card's state, and `card_not_found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No resident holds the document, or they hold no card.
    CardNotFound,
    CardSuspended,
    CardRevoked,
    CardReplaced,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::CardNotFound,
        Refusal::CardSuspended,
        Refusal::CardRevoked,
        Refusal::CardReplaced,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Refusal::CardNotFound => "card_not_found",
            Refusal::CardSuspended => "card_suspended",
            Refusal::CardRevoked => "card_revoked",
            Refusal::CardReplaced => "card_replaced",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::CardNotFound => "no health card is registered for this document",
            Refusal::CardSuspended => "the card is suspended",
            Refusal::CardRevoked => "the card has been revoked",
            Refusal::CardReplaced => "the card was replaced; the resident holds a newer card",
        }
    }
}

/// What a clinic learns from an identification.
#[derive(Debug)]
pub enum Identified {
    Valid {
        resolution: Box<Resolution>,
    },
    Invalid {
        reason: Refusal,
        card: Option<CardId>,
    },
}

impl Identified {
    /// `valid` or the reason code, as counted and logged.
    pub fn label(&self) -> &'static str {
        match self {
            Identified::Valid { .. } => "valid",
            Identified::Invalid { reason, .. } => reason.code(),
        }
    }
}

/// The identification use case, the same for every door (API, kiosk): the
/// read, then its log row (written before the answer leaves), then the count.
pub async fn identify(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    document: Document,
    used: Use,
) -> Result<Identified, StoreError> {
    let (c, cl) = (ctx.clone(), clinic.clone());
    let found = tokio::task::spawn_blocking(move || resolve_document(&c, &cl, &document))
        .await
        .map_err(|_| StoreError::Unavailable("identification interrupted".into()))??;
    ctx.audit.record(log_entry(clinic, &found, used)).await?;
    ctx.counters.count_identification(found.label(), used);
    Ok(found)
}

/// The resident holding `document` (followed through merges to the record
/// that answers for them now), their current card and its state.
fn resolve_document(
    ctx: &AppContext,
    clinic: &Clinic,
    document: &Document,
) -> Result<Identified, StoreError> {
    let mut conn = ctx.conn()?;
    let not_found = Identified::Invalid {
        reason: Refusal::CardNotFound,
        card: None,
    };
    let Some(holder) = residents::find_by_document(&mut conn, &ctx.master, document)? else {
        return Ok(not_found);
    };
    let resident = merges::current(&mut conn, holder.id)?;
    let all = cards::for_resident(&mut conn, resident)?;
    // The card that holds the resident's slot, else the newest one.
    let Some(card) = all
        .iter()
        .rev()
        .find(|c| c.status.holds_slot())
        .or(all.last())
    else {
        return Ok(not_found);
    };
    let refused = |reason| Identified::Invalid {
        reason,
        card: Some(card.id),
    };
    Ok(match card.status {
        CardStatus::Suspended => refused(Refusal::CardSuspended),
        CardStatus::Revoked => refused(Refusal::CardRevoked),
        CardStatus::Replaced => refused(Refusal::CardReplaced),
        CardStatus::Active => {
            match resolve::card_for_verification(&mut conn, &ctx.master, card.id, clinic.id)? {
                Some(resolution) if resolution.card.status == CardStatus::Active => {
                    Identified::Valid {
                        resolution: Box::new(resolution),
                    }
                }
                // Changed between the two reads: answer as it is now.
                Some(_) | None => refused(Refusal::CardRevoked),
            }
        }
    })
}

/// The access-log row of an identification: as a verification's, with the
/// action `identify` and the credential `document`. Never the number.
fn log_entry(clinic: &Clinic, found: &Identified, used: Use) -> LogEntry {
    let mut e = LogEntry::new(ActorKind::Clinic, clinic.code.as_str(), "identify");
    e.clinic_id = Some(clinic.id);
    e.channel = used.channel;
    e.step = used.step;
    e.credential = Some(Credential::Document);
    e.outcome = Some(found.label().to_owned());
    match found {
        Identified::Valid { resolution } => {
            e.card_id = Some(resolution.card.id);
            e.resident_id = Some(resolution.resident.id);
        }
        Identified::Invalid { card, .. } => e.card_id = *card,
    }
    e
}
