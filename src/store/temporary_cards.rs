//! Temporary cards (临时卡): the row beside a card that makes it valid only at
//! its issuing clinic and only until `valid_until`. The verification read
//! joins it to the card (`resolve`), so the hot path has no extra statement.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{cards, clinics, temporary_cards};
use super::{now, parse_id, DbConnection, StoreError};
use crate::crypto::MasterKey;
use crate::domain::{
    BirthYear, CardId, CardStatus, ClinicCode, ClinicId, ResidentId, TemporaryNote, TemporaryTerms,
};

/// AEAD purpose of a temporary card's note.
const NOTE_PURPOSE: &[u8] = b"temporary card note";

/// A temporary card's own facts. `Debug` leaves the note out.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCard {
    pub card_id: CardId,
    pub resident_id: ResidentId,
    pub terms: TemporaryTerms,
    /// `false`: the patient's name is unknown (无名氏).
    pub name_known: bool,
    pub birth_year: Option<BirthYear>,
    /// The clinic's note, opened (shown nowhere yet; never in an answer).
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
}

impl std::fmt::Debug for TemporaryCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCard")
            .field("card_id", &self.card_id)
            .field("terms", &self.terms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = temporary_cards, treat_none_as_default_value = false)]
pub(crate) struct TemporaryRow {
    pub card_id: String,
    pub resident_id: String,
    pub issuing_clinic_id: String,
    pub valid_until: NaiveDateTime,
    pub name_known: bool,
    pub birth_year: Option<i32>,
    pub note_enc: Option<Vec<u8>>,
    pub created_at: NaiveDateTime,
}

impl TemporaryRow {
    pub(crate) fn open(self, key: &MasterKey) -> Result<TemporaryCard, StoreError> {
        let note = match self.note_enc {
            Some(enc) => Some(
                String::from_utf8(key.open(NOTE_PURPOSE, &enc)?)
                    .map_err(super::corrupt("temporary card note"))?,
            ),
            None => None,
        };
        Ok(TemporaryCard {
            card_id: parse_id(&self.card_id)?,
            resident_id: parse_id(&self.resident_id)?,
            terms: TemporaryTerms {
                issuing_clinic: parse_id(&self.issuing_clinic_id)?,
                valid_until: self.valid_until,
            },
            name_known: self.name_known,
            birth_year: self.birth_year.map(BirthYear::from_stored),
            note,
            created_at: self.created_at,
        })
    }
}

/// What a new temporary card row records.
pub struct NewTemporary<'a> {
    pub card: CardId,
    pub resident: ResidentId,
    pub clinic: ClinicId,
    pub valid_until: NaiveDateTime,
    pub name_known: bool,
    pub birth_year: Option<BirthYear>,
    pub note: Option<&'a TemporaryNote>,
}

/// Marks a card temporary (inside the caller's transaction that made it).
pub fn create(
    conn: &mut DbConnection,
    key: &MasterKey,
    new: &NewTemporary,
) -> Result<TemporaryCard, StoreError> {
    let row = TemporaryRow {
        card_id: new.card.to_string(),
        resident_id: new.resident.to_string(),
        issuing_clinic_id: new.clinic.to_string(),
        valid_until: new.valid_until,
        name_known: new.name_known,
        birth_year: new.birth_year.map(BirthYear::get),
        note_enc: new
            .note
            .map(|n| key.seal(NOTE_PURPOSE, n.as_str().as_bytes())),
        created_at: now(),
    };
    diesel::insert_into(temporary_cards::table)
        .values(&row)
        .execute(conn)?;
    row.open(key)
}

/// The temporary facts of a card, if it is one.
pub fn for_card(
    conn: &mut DbConnection,
    key: &MasterKey,
    card: CardId,
) -> Result<Option<TemporaryCard>, StoreError> {
    temporary_cards::table
        .find(card.to_string())
        .select(TemporaryRow::as_select())
        .first(conn)
        .optional()?
        .map(|r| r.open(key))
        .transpose()
}

/// The resident's temporary cards, oldest first (a temporary patient has
/// one; a reissue of it is an ordinary card).
pub fn for_resident(
    conn: &mut DbConnection,
    key: &MasterKey,
    resident: ResidentId,
) -> Result<Vec<TemporaryCard>, StoreError> {
    temporary_cards::table
        .filter(temporary_cards::resident_id.eq(resident.to_string()))
        .order((
            temporary_cards::created_at.asc(),
            temporary_cards::card_id.asc(),
        ))
        .select(TemporaryRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| r.open(key))
        .collect()
}

/// An open temporary card as the card office lists it.
#[derive(Debug, Clone)]
pub struct OpenTemporary {
    pub card: TemporaryCard,
    pub resident_name: String,
    pub clinic_code: ClinicCode,
    pub clinic_name: String,
}

/// Temporary cards still open: the card active and `valid_until` not past
/// at `at`, soonest to expire first, at most `limit`.
pub fn open_at(
    conn: &mut DbConnection,
    key: &MasterKey,
    at: NaiveDateTime,
    limit: i64,
) -> Result<Vec<OpenTemporary>, StoreError> {
    use super::schema::residents;
    let rows: Vec<(TemporaryRow, String, String, String)> = temporary_cards::table
        .inner_join(cards::table)
        .inner_join(clinics::table.on(clinics::id.eq(temporary_cards::issuing_clinic_id)))
        .inner_join(residents::table.on(residents::id.eq(temporary_cards::resident_id)))
        .filter(cards::status.eq(CardStatus::Active.as_str()))
        .filter(temporary_cards::valid_until.ge(at))
        .order((
            temporary_cards::valid_until.asc(),
            temporary_cards::card_id.asc(),
        ))
        .limit(limit)
        .select((
            TemporaryRow::as_select(),
            residents::name,
            clinics::code,
            clinics::name,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(row, resident_name, code, clinic_name)| {
            Ok(OpenTemporary {
                card: row.open(key)?,
                resident_name,
                clinic_code: ClinicCode::parse(&code).map_err(super::corrupt("clinic code"))?,
                clinic_name,
            })
        })
        .collect()
}
