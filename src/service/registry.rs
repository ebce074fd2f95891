//! Administrative use cases: each change and its access-log row are written
//! in one transaction, so a change is never stored without its record.

use chrono::Utc;

use crate::crypto::SecretToken;
use crate::domain::{
    CardAction, CardId, CardStatus, ChangeReason, ClinicCode, ClinicId, Document, LocalPatientId,
    ResidentId, Scopes,
};
use crate::store::access_log::ActorKind;
use crate::store::cards::{self, Card};
use crate::store::clinics::{self, ApiKeyInfo, Clinic};
use crate::store::residents::{self, NewResident, Resident};
use crate::store::{access_log, Conflict, DbConnection, StoreError};
use crate::store::{links, merges};
use crate::token::{MintedToken, TokenKind};

use super::{AppContext, LogEntry};

/// Who made a change, as written to the access log (a username or a clinic
/// code, never a credential).
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: String,
}

impl Actor {
    pub fn admin(username: &str) -> Actor {
        Actor {
            kind: ActorKind::Admin,
            name: username.to_string(),
        }
    }
    pub fn clinic(code: &str) -> Actor {
        Actor {
            kind: ActorKind::Clinic,
            name: code.to_string(),
        }
    }
    pub fn system(what: &str) -> Actor {
        Actor {
            kind: ActorKind::System,
            name: what.to_string(),
        }
    }
}

/// An access-log row for an administrative action.
pub fn entry(
    actor: &Actor,
    action: &str,
    card: Option<CardId>,
    resident: Option<ResidentId>,
    detail: Option<String>,
) -> LogEntry {
    LogEntry {
        at: Utc::now().naive_utc(),
        actor_kind: actor.kind,
        actor: actor.name.clone(),
        action: action.to_string(),
        card_id: card,
        resident_id: resident,
        clinic_id: None,
        channel: None,
        step: None,
        credential: None,
        outcome: None,
        detail,
    }
}

fn log(ctx: &AppContext, conn: &mut DbConnection, e: LogEntry) -> Result<(), StoreError> {
    access_log::append(conn, &ctx.master.chain_key(), &[e]).map(|_| ())
}

/// Registers a resident with their document, one transaction with its log
/// row: a refusal leaves nothing. `taken` is the conflict a registered
/// number answers (`national_id_registered` for API.md's short form,
/// `document_registered` otherwise).
pub fn register_resident(
    ctx: &AppContext,
    actor: &Actor,
    new: &NewResident,
    taken: Conflict,
) -> Result<Resident, StoreError> {
    ctx.with_tx(|c| {
        let r = residents::create(c, &ctx.master, new, taken)?;
        log(
            ctx,
            c,
            entry(actor, "resident.register", None, Some(r.id), None),
        )?;
        Ok(r)
    })
}

/// Adds a document to a resident, with its log row.
pub fn add_document(
    ctx: &AppContext,
    actor: &Actor,
    resident: ResidentId,
    doc: &Document,
) -> Result<Resident, StoreError> {
    ctx.with_tx(|c| {
        merges::lock_unmerged(c, resident)?;
        let r = residents::add_document(c, &ctx.master, resident, doc)?;
        log(
            ctx,
            c,
            entry(
                actor,
                "resident.document.add",
                None,
                Some(resident),
                Some(doc.kind().as_str().to_owned()),
            ),
        )?;
        Ok(r)
    })
}

pub fn issue_card(
    ctx: &AppContext,
    actor: &Actor,
    resident: ResidentId,
) -> Result<(Card, SecretToken), StoreError> {
    ctx.with_tx(|c| {
        merges::lock_unmerged(c, resident)?;
        residents::get(c, &ctx.master, resident)?;
        let (card, secret) = cards::issue(c, resident)?;
        log(
            ctx,
            c,
            entry(actor, "card.issue", Some(card.id), Some(resident), None),
        )?;
        Ok((card, secret))
    })
}

/// Suspend, reinstate or revoke. Reissue has its own function: it makes a card.
pub fn change_card(
    ctx: &AppContext,
    actor: &Actor,
    card: CardId,
    action: CardAction,
    reason: Option<&ChangeReason>,
) -> Result<Card, StoreError> {
    let reason = reason.map(ChangeReason::as_str);
    ctx.with_tx(|c| {
        let updated = cards::transition(c, card, action, reason)?;
        let name = match action {
            CardAction::Suspend => "card.suspend",
            CardAction::Reinstate => "card.reinstate",
            CardAction::Revoke => "card.revoke",
            CardAction::Reissue => "card.reissue",
        };
        log(
            ctx,
            c,
            entry(
                actor,
                name,
                Some(card),
                Some(updated.resident_id),
                reason.map(str::to_string),
            ),
        )?;
        Ok(updated)
    })
}

pub fn reissue_card(
    ctx: &AppContext,
    actor: &Actor,
    card: CardId,
    reason: Option<&ChangeReason>,
) -> Result<(Card, SecretToken), StoreError> {
    let reason = reason.map(ChangeReason::as_str);
    ctx.with_tx(|c| {
        let (new, secret) = cards::reissue(c, card, reason)?;
        let detail = Some(match reason {
            Some(r) => format!("replaced by {}; {r}", new.id),
            None => format!("replaced by {}", new.id),
        });
        log(
            ctx,
            c,
            entry(
                actor,
                "card.reissue",
                Some(card),
                Some(new.resident_id),
                detail,
            ),
        )?;
        Ok((new, secret))
    })
}

/// Why a token cannot be minted for a card.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("the card is {0}; tokens are minted only for active cards")]
    NotActive(&'static str),
    #[error("no active signing key")]
    NoKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Mints a token for an active card with the configured lifetime.
pub fn mint_for(ctx: &AppContext, card: &Card, kind: TokenKind) -> Result<MintedToken, MintError> {
    if card.status != crate::domain::CardStatus::Active {
        return Err(MintError::NotActive(card.status.as_str()));
    }
    let lifetime = match kind {
        TokenKind::Static => ctx.settings.static_token_ttl_secs,
        TokenKind::Dynamic => ctx.settings.dynamic_token_ttl_secs,
    };
    ctx.keys
        .current()
        .mint(card.id.into(), kind, Utc::now().timestamp(), lifetime)
        .map_err(|_| MintError::NoKey)
}

/// Where an administrator had a token minted: written to the access log, so
/// that every long-lived bearer token handed out can be traced to its hour
/// and its administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintVia {
    /// `POST /api/v1/cards/{id}/tokens`
    Api,
    /// `GET /api/v1/cards/{id}/qr.svg`
    QrSvg,
    /// `GET /api/v1/cards/{id}/qr.png`
    QrPng,
    /// The portal's printable card.
    PrintPage,
    /// The portal's wristband of a temporary card.
    Wristband,
}

impl MintVia {
    pub fn as_str(self) -> &'static str {
        match self {
            MintVia::Api => "api",
            MintVia::QrSvg => "qr.svg",
            MintVia::QrPng => "qr.png",
            MintVia::PrintPage => "print",
            MintVia::Wristband => "wristband",
        }
    }

    fn action(self) -> &'static str {
        match self {
            MintVia::PrintPage | MintVia::Wristband => "card.print",
            MintVia::Api | MintVia::QrSvg | MintVia::QrPng => "token.mint",
        }
    }
}

/// Mints a token for an administrator and records it (`token.mint`, or
/// `card.print` for the printable card) before the token is handed out: a
/// token whose row could not be written is never returned.
pub fn mint_recorded(
    ctx: &AppContext,
    actor: &Actor,
    card: CardId,
    kind: TokenKind,
    via: MintVia,
) -> Result<(Card, MintedToken), MintError> {
    let card = cards::get(&mut *ctx.conn()?, card)?;
    let minted = mint_for(ctx, &card, kind)?;
    let detail = format!("{} via {}", kind.as_str(), via.as_str());
    ctx.with_tx(|c| {
        log(
            ctx,
            c,
            entry(
                actor,
                via.action(),
                Some(card.id),
                Some(card.resident_id),
                Some(detail),
            ),
        )
    })?;
    Ok((card, minted))
}

/// Where an administrator looked a resident up by ID number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupVia {
    /// `POST /api/v1/residents/search` or the deprecated `GET ?national_id=`.
    Api,
    /// The portal's search form (and its "already registered" link).
    Portal,
}

impl LookupVia {
    fn as_str(self) -> &'static str {
        match self {
            LookupVia::Api => "api",
            LookupVia::Portal => "portal",
        }
    }
}

/// Finds a resident by ID number (blind index) and records the look-up, in
/// the same transaction: `resident.lookup` with outcome `found` (on the
/// resident's current card, so it shows in the card's and the holder's log)
/// or `not_found` (so that probing numbers leaves a trace too).
pub fn find_resident(
    ctx: &AppContext,
    actor: &Actor,
    number: &Document,
    via: LookupVia,
) -> Result<Option<Resident>, StoreError> {
    ctx.with_tx(|c| {
        let found = residents::find_by_document(c, &ctx.master, number)?;
        let card = match &found {
            Some(r) => current_card(&cards::for_resident(c, r.id)?),
            None => None,
        };
        let mut e = entry(
            actor,
            "resident.lookup",
            card,
            found.as_ref().map(|r| r.id),
            Some(format!("via {}", via.as_str())),
        );
        e.outcome = Some(
            if found.is_some() {
                "found"
            } else {
                "not_found"
            }
            .to_string(),
        );
        log(ctx, c, e)?;
        Ok(found)
    })
}

/// The card that holds the resident's slot, else the newest one.
fn current_card(cs: &[Card]) -> Option<CardId> {
    cs.iter()
        .rev()
        .find(|c| c.status.holds_slot())
        .or(cs.last())
        .map(|c| c.id)
}

pub fn create_clinic(
    ctx: &AppContext,
    actor: &Actor,
    code: &ClinicCode,
    name: &str,
    scopes: &Scopes,
) -> Result<(Clinic, SecretToken), StoreError> {
    ctx.with_tx(|c| {
        let (clinic, key) = clinics::create(c, code, name, *scopes)?;
        log(
            ctx,
            c,
            entry(
                actor,
                "clinic.create",
                None,
                None,
                Some(format!("{} scopes={}", code.as_str(), scopes)),
            ),
        )?;
        Ok((clinic, key))
    })
}

/// A new API key for a clinic (key rotation); the key is shown once.
pub fn add_api_key(
    ctx: &AppContext,
    actor: &Actor,
    clinic: ClinicId,
) -> Result<(Clinic, ApiKeyInfo, SecretToken), StoreError> {
    ctx.with_tx(|c| {
        let found = clinics::get(c, clinic)?;
        let (info, secret) = clinics::add_key(c, clinic)?;
        log(
            ctx,
            c,
            entry(
                actor,
                "clinic.key.add",
                None,
                None,
                Some(found.code.as_str().to_string()),
            ),
        )?;
        Ok((found, info, secret))
    })
}

/// Revokes one API key of a clinic: `NotFound` for another clinic's key.
pub fn revoke_api_key(
    ctx: &AppContext,
    actor: &Actor,
    clinic: ClinicId,
    key_id: &str,
) -> Result<(), StoreError> {
    ctx.with_tx(|c| {
        let found = clinics::get(c, clinic)?;
        if !clinics::list_keys(c, clinic)?
            .iter()
            .any(|k| k.id == key_id)
        {
            return Err(StoreError::NotFound);
        }
        clinics::revoke_key(c, key_id)?;
        log(
            ctx,
            c,
            entry(
                actor,
                "clinic.key.revoke",
                None,
                None,
                Some(found.code.as_str().to_string()),
            ),
        )
    })
}

/// Links a clinic's patient number to the resident of `card` (idempotent);
/// `Conflict(Conflict::LinkConflict)` when the number names another resident,
/// `card_revoked` / `card_replaced` for a dead card, and `no_recent_scan`
/// unless this clinic verified the card (valid) within
/// `link_scan_window_secs`: knowing a card id is not enough to attach a
/// number to someone, the clinic must have had the card in front of it (as
/// the kiosk's ticket asks). The legacy import is the bulk path.
/// Returns what the link names.
pub fn link_patient(
    ctx: &AppContext,
    clinic: &Clinic,
    card: CardId,
    local: &LocalPatientId,
) -> Result<Linked, StoreError> {
    ctx.with_tx(|c| {
        // First, so that a merge (which moves links and replaces cards under
        // the same lock) cannot commit between this read and the link.
        cards::lock_changes(c)?;
        let card = match cards::get(c, card) {
            Err(StoreError::NotFound) => {
                return link_foreign_card(ctx, c, clinic, card, local);
            }
            other => other?,
        };
        match card.status {
            CardStatus::Revoked => return Err(StoreError::Conflict(Conflict::CardRevoked)),
            CardStatus::Replaced => return Err(StoreError::Conflict(Conflict::CardReplaced)),
            CardStatus::Active | CardStatus::Suspended => {}
        }
        let since =
            crate::store::now() - chrono::Duration::seconds(ctx.settings.link_scan_window_secs);
        if !access_log::verified_since(c, clinic.id, card.id, since)? {
            return Err(StoreError::Conflict(Conflict::NoRecentScan));
        }
        links::create(c, clinic.id, local, card.resident_id)?;
        let mut e = entry(
            &Actor::clinic(clinic.code.as_str()),
            "link.create",
            Some(card.id),
            Some(card.resident_id),
            None,
        );
        e.clinic_id = Some(clinic.id);
        log(ctx, c, e)?;
        Ok(Linked {
            card_id: card.id,
            resident_id: card.resident_id.as_uuid(),
            issuer: None,
        })
    })
}

/// What a clinic's own patient number names: the resident, and the card
/// that holds their slot (none when every card is dead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    pub card_id: Option<CardId>,
    pub resident_id: ResidentId,
}

/// Resolves a clinic's patient number to its card, and records the look-up
/// in the same transaction (`link.lookup`, outcome `found` on the card so it
/// shows in the holder's log, or `not_found`): every resolution is logged,
/// including by a clinic's own number.
pub fn find_link(
    ctx: &AppContext,
    clinic: &Clinic,
    local: &LocalPatientId,
) -> Result<Option<LinkTarget>, StoreError> {
    ctx.with_tx(|c| {
        let target = match links::find(c, clinic.id, local)? {
            Some(link) => Some(LinkTarget {
                card_id: cards::for_resident(c, link.resident_id)?
                    .iter()
                    .find(|card| card.status.holds_slot())
                    .map(|card| card.id),
                resident_id: link.resident_id,
            }),
            None => None,
        };
        let mut e = entry(
            &Actor::clinic(clinic.code.as_str()),
            "link.lookup",
            target.as_ref().and_then(|t| t.card_id),
            target.as_ref().map(|t| t.resident_id),
            None,
        );
        e.clinic_id = Some(clinic.id);
        e.outcome = Some(
            if target.is_some() {
                "found"
            } else {
                "not_found"
            }
            .to_string(),
        );
        log(ctx, c, e)?;
        Ok(target)
    })
}

/// What a link names: the card and its resident, with the issuer for a
/// foreign card (whose resident id is its home node's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub card_id: CardId,
    pub resident_id: uuid::Uuid,
    pub issuer: Option<String>,
}

/// [`link_patient`] for a foreign card this node verified (federation):
/// the link is kept here, keyed by issuer and the home node's resident.
fn link_foreign_card(
    ctx: &AppContext,
    c: &mut crate::store::DbConnection,
    clinic: &Clinic,
    card: CardId,
    local: &LocalPatientId,
) -> Result<Linked, StoreError> {
    let found = super::federation::link_foreign(ctx, c, clinic, card, local)?
        .ok_or(StoreError::NotFound)?;
    let resident_id: uuid::Uuid = found
        .resident_id
        .parse()
        .map_err(|_| StoreError::Other("corrupt foreign resident id".into()))?;
    let mut e = entry(
        &Actor::clinic(clinic.code.as_str()),
        "link.create",
        Some(card),
        None,
        Some(format!("issuer {}", found.issuer)),
    );
    e.clinic_id = Some(clinic.id);
    log(ctx, c, e)?;
    Ok(Linked {
        card_id: card,
        resident_id,
        issuer: Some(found.issuer),
    })
}
