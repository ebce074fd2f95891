//! The verification read: the hot path of every scan. One statement, one
//! round trip: the card, its resident and the asking clinic's number for them.

use diesel::prelude::*;

use super::cards::{Card, CardRow};
use super::residents::{Resident, ResidentRow};
use super::schema::{cards, links, residents};
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
}

/// `cards JOIN residents LEFT JOIN links (for this clinic)`, in one statement.
/// `None` if the card does not exist; the caller judges its status.
pub fn card_for_verification(
    conn: &mut DbConnection,
    key: &MasterKey,
    card: CardId,
    clinic: ClinicId,
) -> Result<Option<Resolution>, StoreError> {
    // No `.first()`: diesel sends LIMIT as a bound parameter, and SQLite
    // (3.48+) plans with a bound LIMIT's value and marks the statement for
    // re-preparation whenever it is bound again, i.e. on every call: the
    // re-parse cost ~20 % of a verification's CPU. The card id is the primary
    // key, so the rows are the resident's links at this clinic (0 or 1, rarely
    // more): load them all and keep the first.
    let rows: Vec<(CardRow, ResidentRow, Option<String>)> = cards::table
        .inner_join(residents::table)
        .left_join(
            links::table.on(links::resident_id
                .eq(cards::resident_id)
                .and(links::clinic_id.eq(clinic.to_string()))),
        )
        .filter(cards::id.eq(card.to_string()))
        .order((
            links::created_at.nullable().asc(),
            links::local_patient_id.nullable().asc(),
        ))
        .select((
            CardRow::as_select(),
            ResidentRow::as_select(),
            links::local_patient_id.nullable(),
        ))
        .load(conn)?;
    rows.into_iter()
        .next()
        .map(|(card, resident, local_patient_id)| {
            Ok(Resolution {
                card: card.try_into()?,
                resident: resident.open(key)?,
                local_patient_id,
            })
        })
        .transpose()
}
