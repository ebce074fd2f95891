//! Cards and their lifecycle, plus the change feed offline kiosks poll.
//! The rule "one live card per resident" is a partial unique index, so it
//! holds across nodes without any lock of ours.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{card_events, cards};
use super::{corrupt, next_counter, now, on_unique, parse_id, Conflict, DbConnection, StoreError};
use crate::crypto::{SecretHash, SecretKind, SecretToken};
use crate::domain::{CardAction, CardId, CardStatus, ClinicId, ResidentId};

/// The counter whose row lock orders card changes (see [`changes_since`]).
pub(super) const EVENTS_COUNTER: &str = "card_events";

/// A card. The holder credential's hash is deliberately not part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: CardId,
    pub resident_id: ResidentId,
    pub status: CardStatus,
    pub issued_at: NaiveDateTime,
    pub status_changed_at: NaiveDateTime,
    pub status_reason: Option<String>,
    /// Set when `status` is `Replaced`: the card that took over.
    pub replaced_by: Option<CardId>,
}

/// One entry of the change feed: the card's status from `at` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardChange {
    pub card_id: CardId,
    pub status: CardStatus,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cards)]
pub(crate) struct CardRow {
    pub id: String,
    pub resident_id: String,
    pub status: String,
    pub issued_at: NaiveDateTime,
    pub status_changed_at: NaiveDateTime,
    pub status_reason: Option<String>,
    pub replaced_by: Option<String>,
}

/// `treat_none_as_default_value = false` (no field is an `Option`, so it
/// changes nothing for one row): without it diesel's SQLite backend turns a
/// multi-row INSERT into one statement per row, which the import pays for.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = cards, treat_none_as_default_value = false)]
pub(crate) struct NewCardRow {
    pub id: String,
    pub resident_id: String,
    pub status: &'static str,
    pub issued_at: NaiveDateTime,
    pub status_changed_at: NaiveDateTime,
    pub holder_hash: Vec<u8>,
}

impl NewCardRow {
    /// A new active card with a fresh holder credential.
    pub(crate) fn fresh(resident: ResidentId, at: NaiveDateTime) -> (Self, SecretToken) {
        let secret = SecretToken::generate(SecretKind::Holder);
        let row = NewCardRow {
            id: CardId::new().to_string(),
            resident_id: resident.to_string(),
            status: CardStatus::Active.as_str(),
            issued_at: at,
            status_changed_at: at,
            holder_hash: secret.hash().0.to_vec(),
        };
        (row, secret)
    }

    fn to_card(&self) -> Result<Card, StoreError> {
        Ok(Card {
            id: parse_id(&self.id)?,
            resident_id: parse_id(&self.resident_id)?,
            status: CardStatus::Active,
            issued_at: self.issued_at,
            status_changed_at: self.status_changed_at,
            status_reason: None,
            replaced_by: None,
        })
    }
}

impl TryFrom<CardRow> for Card {
    type Error = StoreError;
    fn try_from(r: CardRow) -> Result<Self, StoreError> {
        Ok(Card {
            id: parse_id(&r.id)?,
            resident_id: parse_id(&r.resident_id)?,
            status: r.status.parse().map_err(corrupt("card status"))?,
            issued_at: r.issued_at,
            status_changed_at: r.status_changed_at,
            status_reason: r.status_reason,
            replaced_by: r.replaced_by.as_deref().map(parse_id).transpose()?,
        })
    }
}

/// Maps the errors of inserting a card: the partial unique index means the
/// resident already holds a card; a foreign key failure, no such resident.
fn on_card_insert(e: diesel::result::Error) -> StoreError {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        ) => StoreError::NotFound,
        other => on_unique(Conflict::CardExists)(other),
    }
}

/// Issues the resident's card. Returns it with the holder credential, which
/// exists only in this answer (only its hash is stored).
/// `Conflict(Conflict::CardExists)` if the resident already has an active or
/// suspended card; `NotFound` if there is no such resident.
pub fn issue(
    conn: &mut DbConnection,
    resident: ResidentId,
) -> Result<(Card, SecretToken), StoreError> {
    let (row, secret) = NewCardRow::fresh(resident, now());
    diesel::insert_into(cards::table)
        .values(&row)
        .execute(conn)
        .map_err(on_card_insert)?;
    Ok((row.to_card()?, secret))
}

/// A card by id; `NotFound` if there is none.
pub fn get(conn: &mut DbConnection, id: CardId) -> Result<Card, StoreError> {
    cards::table
        .find(id.to_string())
        .select(CardRow::as_select())
        .first(conn)?
        .try_into()
}

/// Every card the resident ever had, oldest first.
pub fn for_resident(
    conn: &mut DbConnection,
    resident: ResidentId,
) -> Result<Vec<Card>, StoreError> {
    cards::table
        .filter(cards::resident_id.eq(resident.to_string()))
        .order((cards::issued_at.asc(), cards::id.asc()))
        .select(CardRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Card::try_from)
        .collect()
}

/// The card whose holder credential has this hash.
pub fn find_by_holder(
    conn: &mut DbConnection,
    hash: &SecretHash,
) -> Result<Option<Card>, StoreError> {
    cards::table
        .filter(cards::holder_hash.eq(hash.0.to_vec()))
        .select(CardRow::as_select())
        .first(conn)
        .optional()?
        .map(Card::try_from)
        .transpose()
}

/// Takes the lock that every card change and every merge takes first (the
/// card-events counter's row; on SQLite the write lock): a caller that
/// reads a card's state after it and writes before its commit cannot be
/// overtaken by a change or a merge in between. Call it first in the
/// transaction.
pub fn lock_changes(conn: &mut DbConnection) -> Result<(), StoreError> {
    next_counter(conn, EVENTS_COUNTER, 0).map(|_| ())
}

/// Reads the card inside a change transaction, after the events counter was
/// taken, and checks the action against the lifecycle.
fn load_for_change(
    conn: &mut DbConnection,
    id: CardId,
    action: CardAction,
) -> Result<(Card, CardStatus), StoreError> {
    let card = get(conn, id)?;
    let next = card.status.apply(action)?;
    Ok((card, next))
}

/// Sets the new status, guarded by the status the decision was made on: if a
/// concurrent change got there first, nothing is overwritten.
pub(super) fn set_status(
    conn: &mut DbConnection,
    card: &Card,
    next: CardStatus,
    reason: Option<&str>,
    replaced_by: Option<CardId>,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    let n = diesel::update(
        cards::table
            .filter(cards::id.eq(card.id.to_string()))
            .filter(cards::status.eq(card.status.as_str())),
    )
    .set((
        cards::status.eq(next.as_str()),
        cards::status_changed_at.eq(at),
        cards::status_reason.eq(reason),
        cards::replaced_by.eq(replaced_by.map(|c| c.to_string())),
    ))
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(Conflict::CardChanged))
    }
}

pub(super) fn record_event(
    conn: &mut DbConnection,
    seq: i64,
    card: CardId,
    status: CardStatus,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    diesel::insert_into(card_events::table)
        .values((
            card_events::seq.eq(seq),
            card_events::card_id.eq(card.to_string()),
            card_events::status.eq(status.as_str()),
            card_events::at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Suspends, reinstates or revokes a card (for a reissue use [`reissue`]).
/// Refusals come from [`CardStatus::apply`] as `StoreError::Lifecycle`.
pub fn transition(
    conn: &mut DbConnection,
    id: CardId,
    action: CardAction,
    reason: Option<&str>,
) -> Result<Card, StoreError> {
    if action == CardAction::Reissue {
        return Err(StoreError::Other(
            "a reissue goes through cards::reissue".into(),
        ));
    }
    conn.transaction(|conn| {
        // First statement a write: it takes the counter lock (PostgreSQL) or
        // the database write lock (SQLite) before anything is read.
        let seq = next_counter(conn, EVENTS_COUNTER, 1)?;
        let (card, next) = load_for_change(conn, id, action)?;
        let at = now();
        set_status(conn, &card, next, reason, None, at)?;
        record_event(conn, seq, id, next, at)?;
        Ok(Card {
            status: next,
            status_changed_at: at,
            status_reason: reason.map(str::to_owned),
            ..card
        })
    })
}

/// Replaces a live card by a new active one in one transaction: the old card
/// becomes `Replaced` (pointing at the new one) and every token of it dies.
/// Returns the new card and its holder credential (shown once).
pub fn reissue(
    conn: &mut DbConnection,
    id: CardId,
    reason: Option<&str>,
) -> Result<(Card, SecretToken), StoreError> {
    conn.transaction(|conn| {
        let seq = next_counter(conn, EVENTS_COUNTER, 1)?;
        let (old, next) = load_for_change(conn, id, CardAction::Reissue)?;
        let at = now();
        let (row, secret) = NewCardRow::fresh(old.resident_id, at);
        let new_id: CardId = parse_id(&row.id)?;
        // Old first: the partial unique index allows one live card at a time;
        // the replaced_by foreign key is checked at commit (deferred).
        set_status(conn, &old, next, reason, Some(new_id), at)?;
        diesel::insert_into(cards::table)
            .values(&row)
            .execute(conn)
            .map_err(on_card_insert)?;
        record_event(conn, seq, id, next, at)?;
        Ok((row.to_card()?, secret))
    })
}

/// This node's card events after `cursor` as stored (number, card, status,
/// time), in number order, at most `limit`: the revocation feed's rows, here
/// and in the federation's feed that merges foreign cards' in.
pub(crate) fn events_after(
    conn: &mut DbConnection,
    cursor: i64,
    limit: i64,
) -> Result<Vec<(i64, String, String, NaiveDateTime)>, StoreError> {
    Ok(card_events::table
        .filter(card_events::seq.gt(cursor))
        .order(card_events::seq.asc())
        .limit(limit)
        .select((
            card_events::seq,
            card_events::card_id,
            card_events::status,
            card_events::at,
        ))
        .load(conn)?)
}

/// Card changes (suspended, reinstated, revoked, replaced) after `cursor`, in
/// order, at most `limit`, and the cursor to pass next time (unchanged if
/// there was nothing new). Start with cursor 0.
///
/// No event can appear behind a cursor already handed out: event numbers come
/// from a counter row whose lock is held until commit, so events commit in
/// number order (see docs/storage.md).
pub fn changes_since(
    conn: &mut DbConnection,
    cursor: i64,
    limit: i64,
) -> Result<(Vec<CardChange>, i64), StoreError> {
    let rows = events_after(conn, cursor, limit)?;
    let next = rows.last().map_or(cursor, |r| r.0);
    let changes = rows
        .into_iter()
        .map(|(_, card, status, at)| {
            Ok(CardChange {
                card_id: parse_id(&card)?,
                status: status.parse().map_err(corrupt("card status"))?,
                at,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((changes, next))
}

/// Ids of every active card, or of those whose resident `clinic` has linked,
/// in id order (the token benchmark's working set).
pub fn active_ids(
    conn: &mut DbConnection,
    clinic: Option<ClinicId>,
) -> Result<Vec<CardId>, StoreError> {
    use super::schema::links;
    let active = CardStatus::Active.as_str();
    let raw: Vec<String> = match clinic {
        None => cards::table
            .filter(cards::status.eq(active))
            .select(cards::id)
            .order(cards::id)
            .load(conn)?,
        Some(clinic) => cards::table
            .inner_join(links::table.on(links::resident_id.eq(cards::resident_id)))
            .filter(cards::status.eq(active))
            .filter(links::clinic_id.eq(clinic.to_string()))
            .select(cards::id)
            .order(cards::id)
            .load(conn)?,
    };
    raw.iter()
        .map(|s| parse_id::<uuid::Uuid>(s).map(CardId::from))
        .collect()
}

/// Number of cards in each status (statuses with none are left out).
pub fn count_by_status(conn: &mut DbConnection) -> Result<Vec<(CardStatus, i64)>, StoreError> {
    let rows: Vec<(String, i64)> = cards::table
        .group_by(cards::status)
        .select((cards::status, diesel::dsl::count_star()))
        .load(conn)?;
    rows.into_iter()
        .map(|(s, n)| Ok((s.parse().map_err(corrupt("card status"))?, n)))
        .collect()
}

/// Cards ever issued, and those active now (the card office's two headline
/// figures). Two counts over the cards table.
pub fn counts(conn: &mut DbConnection) -> Result<(i64, i64), StoreError> {
    let issued: i64 = cards::table.count().get_result(conn)?;
    let active: i64 = cards::table
        .filter(cards::status.eq(CardStatus::Active.as_str()))
        .count()
        .get_result(conn)?;
    Ok((issued, active))
}
