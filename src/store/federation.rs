//! Federation tables (issue 18): the city's node key, node-to-node request
//! nonces, foreign cards seen by this node with their status changes, the
//! read position in each home node's revocation feed, and clinics' numbers
//! for foreign residents.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    federation_cursors, federation_nonces, federation_peers, foreign_card_events, foreign_cards,
    foreign_links, node_keys,
};
use super::{corrupt, next_counter, now, parse_id, Conflict, DbConnection, StoreError};
use crate::domain::{CardId, CardStatus, ClinicId, LocalPatientId};

/// The counter [`super::cards`] numbers card events with: foreign events
/// share it, so one cursor orders both.
const EVENTS_COUNTER: &str = "card_events";

/// A node key as stored: the private half sealed by the caller.
#[derive(Clone)]
pub struct StoredNodeKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub sealed_private: Vec<u8>,
}

/// The node key in use: the oldest one.
pub fn node_key(conn: &mut DbConnection) -> Result<Option<StoredNodeKey>, StoreError> {
    let row: Option<(String, Vec<u8>, Vec<u8>)> = node_keys::table
        .order((node_keys::created_at.asc(), node_keys::kid.asc()))
        .select((
            node_keys::kid,
            node_keys::public_key,
            node_keys::sealed_private,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(kid, public_key, sealed_private)| StoredNodeKey {
        kid,
        public_key,
        sealed_private,
    }))
}

/// Every node key of this city, oldest first.
pub fn node_keys(conn: &mut DbConnection) -> Result<Vec<StoredNodeKey>, StoreError> {
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = node_keys::table
        .order((node_keys::created_at.asc(), node_keys::kid.asc()))
        .select((
            node_keys::kid,
            node_keys::public_key,
            node_keys::sealed_private,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(kid, public_key, sealed_private)| StoredNodeKey {
            kid,
            public_key,
            sealed_private,
        })
        .collect())
}

/// Deletes the node keys `kids` (only those: a key made since the caller
/// read the keys is never among them); returns how many went.
pub fn retire_node_keys(conn: &mut DbConnection, kids: &[String]) -> Result<usize, StoreError> {
    Ok(diesel::delete(node_keys::table.filter(node_keys::kid.eq_any(kids))).execute(conn)?)
}

/// Stores a node key; another node's key stored at the same moment wins by
/// being read back by [`node_key`] (oldest first).
pub fn insert_node_key(conn: &mut DbConnection, key: &StoredNodeKey) -> Result<(), StoreError> {
    diesel::insert_into(node_keys::table)
        .values((
            node_keys::kid.eq(&key.kid),
            node_keys::public_key.eq(&key.public_key),
            node_keys::sealed_private.eq(&key.sealed_private),
            node_keys::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Spends a request nonce: `true` the first time, `false` if it was seen.
/// The primary key decides, so it holds across every node of the city.
pub fn spend_nonce(
    conn: &mut DbConnection,
    nonce: &str,
    expires_at: NaiveDateTime,
) -> Result<bool, StoreError> {
    // ON CONFLICT DO NOTHING: a nonce spent before is a row not inserted,
    // never an error, so it does not abort the access-log batch's
    // transaction on PostgreSQL and the batch can spend all its nonces in
    // one pass (every replayed one found, one rollback).
    let values = (
        federation_nonces::nonce.eq(nonce),
        federation_nonces::expires_at.eq(expires_at),
    );
    let inserted = match conn {
        DbConnection::Postgresql(c) => diesel::insert_into(federation_nonces::table)
            .values(values)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConnection::Sqlite(c) => diesel::insert_into(federation_nonces::table)
            .values(values)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(inserted == 1)
}

/// Drops nonces that could no longer be replayed anyway.
pub fn purge_nonces(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(federation_nonces::table.filter(federation_nonces::expires_at.lt(now)))
            .execute(conn)?,
    )
}

/// A foreign card this node has verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignCard {
    pub card_id: CardId,
    pub issuer: String,
    /// The home node's resident id (a UUID as text).
    pub resident_id: String,
    pub status: CardStatus,
}

/// Records a foreign card seen valid (or a changed resident), keeping its
/// status as the home node last reported it. `seen_at` is the first sighting.
pub fn saw_foreign_card(
    conn: &mut DbConnection,
    card: CardId,
    issuer: &str,
    resident_id: &str,
) -> Result<(), StoreError> {
    // The usual case, a card seen before, is a read: no write lock taken.
    if let Some(known) = foreign_card(conn, card)? {
        if known.issuer != issuer {
            // Card ids are random UUIDs: another listed issuer claiming a
            // card known here as one of `known.issuer`'s is a peer trying to
            // take over that city's card record (its resident, the links to
            // it, its revocations). Refused: the record stays the first
            // issuer's.
            tracing::warn!(
                card = %card,
                issuer = %known.issuer,
                claimed_by = %issuer,
                "a second issuer claims a known foreign card id: its claim is refused"
            );
            return Ok(());
        }
        if known.resident_id == resident_id {
            return Ok(());
        }
    }
    let at = now();
    let updated = diesel::update(foreign_cards::table.find(card.to_string()))
        .set((
            foreign_cards::issuer.eq(issuer),
            foreign_cards::resident_id.eq(resident_id),
            foreign_cards::seen_at.eq(at),
        ))
        .execute(conn)?;
    if updated == 0 {
        // In a savepoint: this runs inside the access-log writer's batch
        // transaction, which a refused insert must not abort on PostgreSQL.
        let inserted = conn.transaction(|c| {
            diesel::insert_into(foreign_cards::table)
                .values((
                    foreign_cards::card_id.eq(card.to_string()),
                    foreign_cards::issuer.eq(issuer),
                    foreign_cards::resident_id.eq(resident_id),
                    foreign_cards::status.eq(CardStatus::Active.as_str()),
                    foreign_cards::seen_at.eq(at),
                ))
                .execute(c)
        });
        match inserted {
            // Another request recorded it at the same moment: as good.
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// The foreign card `card`, if this node has seen it.
pub fn foreign_card(
    conn: &mut DbConnection,
    card: CardId,
) -> Result<Option<ForeignCard>, StoreError> {
    // `load` and not `first`: a bound LIMIT makes SQLite prepare the
    // statement again on every call (see store::resolve).
    let row: Option<(String, String, String, String)> = foreign_cards::table
        .filter(foreign_cards::card_id.eq(card.to_string()))
        .select((
            foreign_cards::card_id,
            foreign_cards::issuer,
            foreign_cards::resident_id,
            foreign_cards::status,
        ))
        .load(conn)?
        .pop();
    row.map(|(id, issuer, resident_id, status)| {
        Ok(ForeignCard {
            card_id: parse_id(&id)?,
            issuer,
            resident_id,
            status: status.parse().map_err(corrupt("card status"))?,
        })
    })
    .transpose()
}

/// Records the home node's report that `card` is now `status`: the card's
/// row and, if it changed, an event in the shared numbering. Cards this node
/// has never seen are not its business and are skipped (`false`).
pub fn record_foreign_change(
    conn: &mut DbConnection,
    card: CardId,
    issuer: &str,
    status: CardStatus,
    at: NaiveDateTime,
) -> Result<bool, StoreError> {
    conn.transaction(|conn| {
        let Some(known) = foreign_card(conn, card)? else {
            return Ok(false);
        };
        if known.issuer != issuer || known.status == status {
            return Ok(false);
        }
        let seq = next_counter(conn, EVENTS_COUNTER, 1)?;
        diesel::update(foreign_cards::table.find(card.to_string()))
            .set(foreign_cards::status.eq(status.as_str()))
            .execute(conn)?;
        diesel::insert_into(foreign_card_events::table)
            .values((
                foreign_card_events::seq.eq(seq),
                foreign_card_events::card_id.eq(card.to_string()),
                foreign_card_events::issuer.eq(issuer),
                foreign_card_events::status.eq(status.as_str()),
                foreign_card_events::at.eq(at),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// One entry of this node's revocation feed: its own cards (`issuer`
/// `None`) and the foreign cards it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub card_id: CardId,
    pub status: CardStatus,
    pub at: NaiveDateTime,
    pub issuer: Option<String>,
}

/// Own and foreign card changes after `cursor`, in number order, at most
/// `limit`, and the next cursor. Both tables take their numbers from one
/// counter whose row lock is held until commit, so neither can commit an
/// event behind a cursor already handed out.
pub fn feed_since(
    conn: &mut DbConnection,
    cursor: i64,
    limit: i64,
) -> Result<(Vec<FeedEntry>, i64), StoreError> {
    let own = super::cards::events_after(conn, cursor, limit)?;
    let foreign: Vec<(i64, String, String, String, NaiveDateTime)> = foreign_card_events::table
        .filter(foreign_card_events::seq.gt(cursor))
        .order(foreign_card_events::seq.asc())
        .limit(limit)
        .select((
            foreign_card_events::seq,
            foreign_card_events::card_id,
            foreign_card_events::issuer,
            foreign_card_events::status,
            foreign_card_events::at,
        ))
        .load(conn)?;
    let mut all: Vec<(i64, String, String, NaiveDateTime, Option<String>)> = own
        .into_iter()
        .map(|(s, c, st, at)| (s, c, st, at, None))
        .chain(
            foreign
                .into_iter()
                .map(|(s, c, i, st, at)| (s, c, st, at, Some(i))),
        )
        .collect();
    all.sort_unstable_by_key(|r| r.0);
    all.truncate(limit.max(0) as usize);
    let next = all.last().map_or(cursor, |r| r.0);
    let entries = all
        .into_iter()
        .map(|(_, card, status, at, issuer)| {
            Ok(FeedEntry {
                card_id: parse_id(&card)?,
                status: status.parse().map_err(corrupt("card status"))?,
                at,
                issuer,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((entries, next))
}

/// Where this node stands in `issuer`'s revocation feed.
pub fn cursor(conn: &mut DbConnection, issuer: &str) -> Result<Option<String>, StoreError> {
    Ok(federation_cursors::table
        .find(issuer)
        .select(federation_cursors::cursor)
        .first(conn)
        .optional()?)
}

pub fn set_cursor(conn: &mut DbConnection, issuer: &str, cursor: &str) -> Result<(), StoreError> {
    let updated = diesel::update(federation_cursors::table.find(issuer))
        .set(federation_cursors::cursor.eq(cursor))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(federation_cursors::table)
            .values((
                federation_cursors::issuer.eq(issuer),
                federation_cursors::cursor.eq(cursor),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Issuers this node has seen cards of.
pub fn issuers_seen(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    Ok(foreign_cards::table
        .select(foreign_cards::issuer)
        .distinct()
        .load(conn)?)
}

/// Links `local` at `clinic` to the foreign resident `issuer`/`resident_id`;
/// the same pair again is fine, the number naming another resident (or the
/// resident another number) is `LinkConflict`.
pub fn create_foreign_link(
    conn: &mut DbConnection,
    clinic: ClinicId,
    local: &LocalPatientId,
    issuer: &str,
    resident_id: &str,
) -> Result<(), StoreError> {
    let existing: Option<(String, String)> = foreign_links::table
        .find((clinic.to_string(), local.as_str()))
        .select((foreign_links::issuer, foreign_links::resident_id))
        .first(conn)
        .optional()?;
    if let Some((i, r)) = existing {
        return if i == issuer && r == resident_id {
            Ok(())
        } else {
            Err(StoreError::Conflict(Conflict::LinkConflict))
        };
    }
    diesel::insert_into(foreign_links::table)
        .values((
            foreign_links::clinic_id.eq(clinic.to_string()),
            foreign_links::local_patient_id.eq(local.as_str()),
            foreign_links::issuer.eq(issuer),
            foreign_links::resident_id.eq(resident_id),
            foreign_links::created_at.eq(now()),
        ))
        .execute(conn)
        .map_err(super::on_unique(Conflict::LinkConflict))?;
    Ok(())
}

/// `clinic`'s number for the foreign resident, if linked.
pub fn foreign_link(
    conn: &mut DbConnection,
    clinic: ClinicId,
    issuer: &str,
    resident_id: &str,
) -> Result<Option<String>, StoreError> {
    // One row at most (unique index); `load` for the statement cache.
    Ok(foreign_links::table
        .filter(foreign_links::clinic_id.eq(clinic.to_string()))
        .filter(foreign_links::issuer.eq(issuer))
        .filter(foreign_links::resident_id.eq(resident_id))
        .select(foreign_links::local_patient_id)
        .load::<String>(conn)?
        .pop())
}

/// A peer city as this (home) node keeps it (`federation_peers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    pub issuer: String,
    pub disclosure: crate::domain::Disclosure,
    /// The peer's stand-in clinic, once made.
    pub clinic_id: Option<ClinicId>,
    pub updated_at: NaiveDateTime,
}

/// Every peer city this node has a row for, by issuer code.
pub fn peers(conn: &mut DbConnection) -> Result<Vec<PeerRow>, StoreError> {
    let rows: Vec<(String, String, Option<String>, NaiveDateTime)> = federation_peers::table
        .order(federation_peers::issuer.asc())
        .select((
            federation_peers::issuer,
            federation_peers::disclosure,
            federation_peers::clinic_id,
            federation_peers::updated_at,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(issuer, disclosure, clinic_id, updated_at)| {
            Ok(PeerRow {
                issuer,
                disclosure: crate::domain::Disclosure::parse(&disclosure)
                    .map_err(corrupt("peer disclosure"))?,
                clinic_id: clinic_id
                    .map(|c| parse_id::<uuid::Uuid>(&c).map(ClinicId::from))
                    .transpose()?,
                updated_at,
            })
        })
        .collect()
}

/// The peer `issuer`'s row, if any.
pub fn peer(conn: &mut DbConnection, issuer: &str) -> Result<Option<PeerRow>, StoreError> {
    Ok(peers_where(conn, issuer)?.pop())
}

fn peers_where(conn: &mut DbConnection, issuer: &str) -> Result<Vec<PeerRow>, StoreError> {
    let mut all = peers(conn)?;
    all.retain(|p| p.issuer == issuer);
    Ok(all)
}

/// Sets the disclosure policy for `issuer` (a row made if there is none).
pub fn set_peer_disclosure(
    conn: &mut DbConnection,
    issuer: &str,
    disclosure: crate::domain::Disclosure,
) -> Result<(), StoreError> {
    let updated = diesel::update(federation_peers::table.find(issuer))
        .set((
            federation_peers::disclosure.eq(disclosure.as_str()),
            federation_peers::updated_at.eq(now()),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(federation_peers::table)
            .values((
                federation_peers::issuer.eq(issuer),
                federation_peers::disclosure.eq(disclosure.as_str()),
                federation_peers::updated_at.eq(now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Records `clinic` as the stand-in of `issuer` (a row with the default
/// policy made if there is none).
pub fn set_peer_clinic(
    conn: &mut DbConnection,
    issuer: &str,
    clinic: ClinicId,
) -> Result<(), StoreError> {
    let updated = diesel::update(federation_peers::table.find(issuer))
        .set(federation_peers::clinic_id.eq(clinic.to_string()))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(federation_peers::table)
            .values((
                federation_peers::issuer.eq(issuer),
                federation_peers::disclosure.eq(crate::domain::Disclosure::default().as_str()),
                federation_peers::clinic_id.eq(clinic.to_string()),
                federation_peers::updated_at.eq(now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}
