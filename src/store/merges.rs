//! Merges of a temporary or duplicate resident into the real one (issue 14).
//! One row per merged source in `resident_merges`, never changed: the
//! source's links move to the target, its live cards become `replaced` by
//! the target's card, and the source answers `merged_into` from then on.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::cards::{self, EVENTS_COUNTER};
use super::schema::{links, resident_merges, residents};
use super::{next_counter, now, on_unique, parse_id, Conflict, DbConnection, StoreError};
use crate::domain::{CardId, CardStatus, ResidentId};

/// Longest chain of merges followed (A into B, later B into C): a merge
/// refuses a target that is merged, so a chain only grows by merging its
/// head, and real ones are a link or two long.
const MAX_CHAIN: usize = 16;

/// What [`merge`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub source: ResidentId,
    pub into: ResidentId,
    pub at: NaiveDateTime,
    /// The target's card that the source's cards are replaced by.
    pub target_card: CardId,
    /// The source's cards that were live and are `replaced` now.
    pub replaced_cards: Vec<CardId>,
    /// How many of the source's clinic numbers now name the target.
    pub moved_links: usize,
}

/// The record `resident` was merged into, if it was.
pub fn merged_into(
    conn: &mut DbConnection,
    resident: ResidentId,
) -> Result<Option<ResidentId>, StoreError> {
    resident_merges::table
        .find(resident.to_string())
        .select(resident_merges::into_id)
        .first::<String>(conn)
        .optional()?
        .as_deref()
        .map(parse_id)
        .transpose()
}

/// The record that answers for `resident` now: itself, or the end of its
/// chain of merges.
pub fn current(conn: &mut DbConnection, resident: ResidentId) -> Result<ResidentId, StoreError> {
    let mut at = resident;
    for _ in 0..MAX_CHAIN {
        match merged_into(conn, at)? {
            Some(next) => at = next,
            None => return Ok(at),
        }
    }
    Err(StoreError::Other("chain of merges too long".into()))
}

/// `resident` and every record merged into it, directly or through others:
/// whose history is the resident's history.
pub fn with_sources(
    conn: &mut DbConnection,
    resident: ResidentId,
) -> Result<Vec<ResidentId>, StoreError> {
    let mut all = vec![resident];
    let mut frontier = vec![resident.to_string()];
    for _ in 0..MAX_CHAIN {
        if frontier.is_empty() {
            break;
        }
        let found: Vec<String> = resident_merges::table
            .filter(resident_merges::into_id.eq_any(&frontier))
            .select(resident_merges::source_id)
            .load(conn)?;
        for f in &found {
            all.push(parse_id(f)?);
        }
        frontier = found;
    }
    Ok(all)
}

/// For a change that adds to a resident (a card, a document): takes the
/// lock that merges take first, so that no merge runs between this check
/// and the caller's commit, and refuses a merged resident with
/// `ResidentMerged`. Call it first in the transaction.
pub fn lock_unmerged(conn: &mut DbConnection, resident: ResidentId) -> Result<(), StoreError> {
    next_counter(conn, EVENTS_COUNTER, 0)?;
    match merged_into(conn, resident)? {
        Some(_) => Err(StoreError::Conflict(Conflict::ResidentMerged)),
        None => Ok(()),
    }
}

fn exists(conn: &mut DbConnection, resident: ResidentId) -> Result<bool, StoreError> {
    let n: i64 = residents::table
        .filter(residents::id.eq(resident.to_string()))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

fn clinics_of(conn: &mut DbConnection, resident: ResidentId) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = links::table
        .filter(links::resident_id.eq(resident.to_string()))
        .select(links::clinic_id)
        .load(conn)?;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Merges `source` into `into`, all or nothing (a savepoint inside the
/// caller's transaction, which also writes the log rows). The first
/// statement takes the card-events counter's lock, as every card change
/// does, so merges and card changes on any node run one at a time and each
/// reads what the one before committed. Refusals: `NotFound` for an unknown
/// resident; `AlreadyMerged` when either side was merged; `MergeConflict`
/// when both have a number at one clinic; `MergeTargetNoCard` when the
/// target has no live card. The caller refuses a merge into itself.
pub fn merge(
    conn: &mut DbConnection,
    source: ResidentId,
    into: ResidentId,
    actor: &str,
) -> Result<Merged, StoreError> {
    conn.transaction(|conn| {
        // The lock first (a write: the SQLite write lock, or the counter's
        // row lock on PostgreSQL); the event numbers are taken below.
        next_counter(conn, EVENTS_COUNTER, 0)?;
        if !exists(conn, source)? || !exists(conn, into)? {
            return Err(StoreError::NotFound);
        }
        if merged_into(conn, source)?.is_some() || merged_into(conn, into)?.is_some() {
            return Err(StoreError::Conflict(Conflict::AlreadyMerged));
        }
        let theirs = clinics_of(conn, into)?;
        if clinics_of(conn, source)?.iter().any(|c| theirs.contains(c)) {
            return Err(StoreError::Conflict(Conflict::MergeConflict));
        }
        let target_card = cards::for_resident(conn, into)?
            .into_iter()
            .find(|c| c.status.holds_slot())
            .ok_or(StoreError::Conflict(Conflict::MergeTargetNoCard))?;
        let at = now();
        let live: Vec<cards::Card> = cards::for_resident(conn, source)?
            .into_iter()
            .filter(|c| c.status.holds_slot())
            .collect();
        if !live.is_empty() {
            let last = next_counter(conn, EVENTS_COUNTER, live.len() as i64)?;
            let first = last - live.len() as i64 + 1;
            for (seq, card) in (first..).zip(&live) {
                cards::set_status(
                    conn,
                    card,
                    CardStatus::Replaced,
                    Some("merged"),
                    Some(target_card.id),
                    at,
                )?;
                cards::record_event(conn, seq, card.id, CardStatus::Replaced, at)?;
            }
        }
        let moved_links =
            diesel::update(links::table.filter(links::resident_id.eq(source.to_string())))
                .set(links::resident_id.eq(into.to_string()))
                .execute(conn)?;
        diesel::insert_into(resident_merges::table)
            .values((
                resident_merges::source_id.eq(source.to_string()),
                resident_merges::into_id.eq(into.to_string()),
                resident_merges::at.eq(at),
                resident_merges::actor.eq(actor),
            ))
            .execute(conn)
            .map_err(on_unique(Conflict::AlreadyMerged))?;
        Ok(Merged {
            source,
            into,
            at,
            target_card: target_card.id,
            replaced_cards: live.iter().map(|c| c.id).collect(),
            moved_links,
        })
    })
}
