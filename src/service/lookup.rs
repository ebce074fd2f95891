//! Plain look-ups for the adapters: what a page, the API or a command shows
//! that changes nothing and resolves no token, so writes no access-log row
//! (a resolution goes through `verification`, `identify` or `patients`,
//! which log it). The adapters ask here, never the store.

use super::AppContext;
use crate::crypto::SecretHash;
use crate::domain::{CardId, ClinicCode, ClinicId, LocalPatientId, ResidentId};
use crate::store::access_log::{self, LogEntry};
use crate::store::cards::{self, Card};
use crate::store::clinics::{self, ApiKeyInfo, Clinic};
use crate::store::federation::{self, FeedEntry};
use crate::store::residents::{self, Resident};
use crate::store::{links, StoreError};

/// A card; `NotFound` if there is none.
pub fn card(ctx: &AppContext, id: CardId) -> Result<Card, StoreError> {
    cards::get(&mut *ctx.conn()?, id)
}

/// A resident, the ID number unsealed; `NotFound` if there is none.
pub fn resident(ctx: &AppContext, id: ResidentId) -> Result<Resident, StoreError> {
    residents::get(&mut *ctx.conn()?, &ctx.master, id)
}

/// A card and its holder.
pub fn card_and_holder(ctx: &AppContext, id: CardId) -> Result<(Card, Resident), StoreError> {
    let mut conn = ctx.conn()?;
    let card = cards::get(&mut conn, id)?;
    let holder = residents::get(&mut conn, &ctx.master, card.resident_id)?;
    Ok((card, holder))
}

/// A resident and every card they have had, newest first.
pub fn resident_and_cards(
    ctx: &AppContext,
    id: ResidentId,
) -> Result<(Resident, Vec<Card>), StoreError> {
    let mut conn = ctx.conn()?;
    let r = residents::get(&mut conn, &ctx.master, id)?;
    let cs = cards::for_resident(&mut conn, id)?;
    Ok((r, cs))
}

/// The clinics' patient numbers of a resident: (clinic code, number, clinic).
pub fn links_of_resident(
    ctx: &AppContext,
    id: ResidentId,
) -> Result<Vec<(ClinicCode, LocalPatientId, ClinicId)>, StoreError> {
    links::for_resident(&mut *ctx.conn()?, id)
}

/// The clinics' patient numbers of a card's holder; `NotFound` without the card.
pub fn links_of_card(
    ctx: &AppContext,
    id: CardId,
) -> Result<Vec<(ClinicCode, LocalPatientId, ClinicId)>, StoreError> {
    let mut conn = ctx.conn()?;
    let card = cards::get(&mut conn, id)?;
    links::for_resident(&mut conn, card.resident_id)
}

/// The newest `limit` access-log rows about a card; `NotFound` without the card.
pub fn card_log(ctx: &AppContext, id: CardId, limit: i64) -> Result<Vec<LogEntry>, StoreError> {
    let mut conn = ctx.conn()?;
    cards::get(&mut conn, id)?;
    access_log::for_card(&mut conn, id, limit)
}

/// Every clinic, by code.
pub fn clinics(ctx: &AppContext) -> Result<Vec<Clinic>, StoreError> {
    clinics::list(&mut *ctx.conn()?)
}

/// A clinic and its API keys (never the keys themselves); `NotFound` without the clinic.
pub fn clinic_and_keys(
    ctx: &AppContext,
    id: ClinicId,
) -> Result<(Clinic, Vec<ApiKeyInfo>), StoreError> {
    let mut conn = ctx.conn()?;
    let c = clinics::get(&mut conn, id)?;
    let k = clinics::list_keys(&mut conn, id)?;
    Ok((c, k))
}

/// The card changes (own and foreign cards) after `cursor` for the
/// revocation feed, at most `limit`, and the next cursor.
pub fn card_changes(
    ctx: &AppContext,
    cursor: i64,
    limit: i64,
) -> Result<(Vec<FeedEntry>, i64), StoreError> {
    federation::feed_since(&mut *ctx.conn()?, cursor, limit)
}

/// The card a holder credential was given with, whatever its state (the
/// holder page says when it was revoked or replaced; the API's holder
/// routes take only a card that holds its slot: `families::holder_card`).
pub fn card_of_holder(ctx: &AppContext, hash: &SecretHash) -> Result<Option<Card>, StoreError> {
    cards::find_by_holder(&mut *ctx.conn()?, hash)
}
