//! The verification read: the hot path of every scan. The card, its resident
//! and the asking clinic's number for them, for a whole batch of scans in two
//! statements (the verification pipeline settles scans in batches).

use std::collections::HashMap;

use diesel::prelude::*;

use super::cards::{Card, CardRow};
use super::residents::{with_documents, Resident, ResidentRow};
use super::schema::{cards, links, residents, temporary_cards};
use super::temporary_cards::{TemporaryCard, TemporaryRow};
use super::{DbConnection, StoreError};
use crate::crypto::MasterKey;
use crate::domain::{CardId, ClinicId};

/// What a verification shows about a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub card: Card,
    pub resident: Resident,
    /// The asking clinic's number for this resident (the oldest, if several).
    pub local_patient_id: Option<String>,
    /// Where and until when the card is good, for a temporary card (临时卡).
    pub temporary: Option<TemporaryCard>,
}

/// The verification read for one card: see [`cards_for_verification`].
/// `None` if the card does not exist; the caller judges its status.
pub fn card_for_verification(
    conn: &mut DbConnection,
    key: &MasterKey,
    card: CardId,
    clinic: ClinicId,
) -> Result<Option<Resolution>, StoreError> {
    cards_for_verification(conn, key, &[(card, clinic)])?
        .pop()
        .unwrap_or(Ok(None))
}

/// The verification read for a batch of scans: one statement for the cards
/// with their residents and one for the asking clinics' numbers, whatever the
/// batch size. `wanted[i]` is (card, asking clinic); answer `i` is its
/// resolution, `None` if the card does not exist, or the error of a row that
/// no longer reads back (one corrupt row does not fail the others).
pub fn cards_for_verification(
    conn: &mut DbConnection,
    key: &MasterKey,
    wanted: &[(CardId, ClinicId)],
) -> Result<Vec<Result<Option<Resolution>, StoreError>>, StoreError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // `IN (…)` and no `.first()`: diesel binds LIMIT as a parameter, and
    // SQLite (3.48+) marks such a statement for re-preparation on every rebind
    // (the re-parse was ~20 % of a verification's CPU).
    let mut card_ids: Vec<String> = wanted.iter().map(|(c, _)| c.to_string()).collect();
    card_ids.sort_unstable();
    card_ids.dedup();
    let found: Vec<(CardRow, ResidentRow, Option<TemporaryRow>)> = cards::table
        .inner_join(residents::table)
        .left_join(temporary_cards::table)
        .filter(cards::id.eq_any(&card_ids))
        .select((
            CardRow::as_select(),
            ResidentRow::as_select(),
            Option::<TemporaryRow>::as_select(),
        ))
        .load(conn)?;

    let mut clinic_ids: Vec<String> = wanted.iter().map(|(_, c)| c.to_string()).collect();
    clinic_ids.sort_unstable();
    clinic_ids.dedup();
    let resident_ids: Vec<&str> = found
        .iter()
        .map(|(c, _, _)| c.resident_id.as_str())
        .collect();
    // Oldest first, so the first number seen for a (resident, clinic) is the
    // one the single-card read returns.
    let numbers: Vec<(String, String, String)> = if resident_ids.is_empty() {
        Vec::new()
    } else {
        links::table
            .filter(links::resident_id.eq_any(&resident_ids))
            .filter(links::clinic_id.eq_any(&clinic_ids))
            .order((links::created_at.asc(), links::local_patient_id.asc()))
            .select((
                links::resident_id,
                links::clinic_id,
                links::local_patient_id,
            ))
            .load(conn)?
    };
    let mut number_of: HashMap<(String, String), String> = HashMap::new();
    for (resident, clinic, local) in numbers {
        number_of.entry((resident, clinic)).or_insert(local);
    }

    // Errors kept as text: the same corrupt row may be asked for twice.
    type Opened = (Card, Resident, Option<TemporaryCard>);
    let mut opened: HashMap<String, Result<Opened, String>> = found
        .into_iter()
        .map(|(card, resident, temporary)| {
            let id = card.id.clone();
            let pair = card
                .try_into()
                .and_then(|card: Card| {
                    Ok((
                        card,
                        resident.open(key)?,
                        temporary.map(|t| t.open(key)).transpose()?,
                    ))
                })
                .map_err(|e: StoreError| e.to_string());
            (id, pair)
        })
        .collect();
    // Their documents: one more statement for the whole batch.
    let plain: Vec<Resident> = opened
        .values()
        .filter_map(|p| p.as_ref().ok().map(|(_, r, _)| r.clone()))
        .collect();
    let filled: HashMap<String, Resident> = with_documents(conn, key, plain)?
        .into_iter()
        .map(|r| (r.id.to_string(), r))
        .collect();
    for (_, r, _) in opened.values_mut().flatten() {
        if let Some(f) = filled.get(&r.id.to_string()) {
            *r = f.clone();
        }
    }
    let answers = wanted
        .iter()
        .map(|(card, clinic)| {
            let card_text = card.to_string();
            let (card, resident, temporary) = match opened.get(&card_text) {
                None => return Ok(None),
                Some(Err(e)) => return Err(StoreError::Other(e.clone())),
                Some(Ok(pair)) => pair.clone(),
            };
            let local_patient_id = number_of
                .get(&(resident.id.to_string(), clinic.to_string()))
                .cloned();
            Ok(Some(Resolution {
                card,
                resident,
                local_patient_id,
                temporary,
            }))
        })
        .collect();
    Ok(answers)
}
