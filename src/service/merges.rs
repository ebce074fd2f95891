//! Merging a temporary or duplicate resident into the real one (issue 14,
//! API-2.md): one transaction for the change and its log rows, so a refused
//! merge leaves nothing half-written and a merge is never without its
//! record. Irreversible.

use crate::domain::ResidentId;
use crate::store::access_log::{self, LogEntry as StoredEntry};
use crate::store::merges::{self, Merged};
use crate::store::StoreError;

use super::registry::{entry, Actor};
use super::AppContext;

/// Why a merge is refused before the store is asked.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("a record cannot be merged into itself")]
    SelfMerge,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Merges `source` into `into`: the source's clinic numbers move to the
/// target, its live cards become `replaced` by the target's card, and the
/// access log gets a `resident.merge` row on each side (one per replaced
/// card on the source's, so each card's log says where it went).
pub fn merge_residents(
    ctx: &AppContext,
    actor: &Actor,
    source: ResidentId,
    into: ResidentId,
) -> Result<Merged, MergeError> {
    if source == into {
        return Err(MergeError::SelfMerge);
    }
    Ok(ctx.with_tx(|c| {
        let done = merges::merge(c, source, into, &actor.name)?;
        let mut rows = Vec::new();
        let towards = format!("into {}, replaced by card {}", into, done.target_card);
        if done.replaced_cards.is_empty() {
            rows.push(entry(
                actor,
                "resident.merge",
                None,
                Some(source),
                Some(towards.clone()),
            ));
        }
        for card in &done.replaced_cards {
            rows.push(entry(
                actor,
                "resident.merge",
                Some(*card),
                Some(source),
                Some(towards.clone()),
            ));
        }
        rows.push(entry(
            actor,
            "resident.merge",
            Some(done.target_card),
            Some(into),
            Some(format!("from {source}; {} numbers moved", done.moved_links)),
        ));
        access_log::append(c, &ctx.master.chain_key(), &rows)?;
        Ok(done)
    })?)
}

/// The record `resident` was merged into, if it was.
pub fn merged_into(
    ctx: &AppContext,
    resident: ResidentId,
) -> Result<Option<ResidentId>, StoreError> {
    merges::merged_into(&mut *ctx.conn()?, resident)
}

/// The newest `limit` access-log entries of the resident and of every
/// record merged into them (the holder's history stays whole), newest first.
pub fn history(
    ctx: &AppContext,
    resident: ResidentId,
    limit: i64,
) -> Result<Vec<StoredEntry>, StoreError> {
    let mut conn = ctx.conn()?;
    let all = merges::with_sources(&mut conn, resident)?;
    access_log::for_residents(&mut conn, &all, limit)
}
