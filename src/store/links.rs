//! Cross-references: a clinic's own patient number (MRN) to a resident, the
//! IHE PIX idea. Links name the resident, not the card, so they survive a reissue.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{clinics, links};
use super::{corrupt, is_unique_violation, now, parse_id, Conflict, DbConnection, StoreError};
use crate::domain::{ClinicCode, ClinicId, LocalPatientId, ResidentId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub clinic_id: ClinicId,
    pub local_patient_id: LocalPatientId,
    pub resident_id: ResidentId,
    pub created_at: NaiveDateTime,
}

/// `treat_none_as_default_value = false`: see `cards::NewCardRow`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = links, treat_none_as_default_value = false)]
pub(crate) struct LinkRow {
    pub clinic_id: String,
    pub local_patient_id: String,
    pub resident_id: String,
    pub created_at: NaiveDateTime,
}

impl TryFrom<LinkRow> for Link {
    type Error = StoreError;
    fn try_from(r: LinkRow) -> Result<Self, StoreError> {
        Ok(Link {
            clinic_id: parse_id(&r.clinic_id)?,
            local_patient_id: LocalPatientId::parse(&r.local_patient_id)
                .map_err(corrupt("local patient id"))?,
            resident_id: parse_id(&r.resident_id)?,
            created_at: r.created_at,
        })
    }
}

/// Links the clinic's number to the resident. Idempotent: linking the same
/// pair again returns the existing link. `Conflict(Conflict::LinkConflict)` if the
/// number already names another resident; `NotFound` if the clinic or the
/// resident does not exist.
pub fn create(
    conn: &mut DbConnection,
    clinic: ClinicId,
    local: &LocalPatientId,
    resident: ResidentId,
) -> Result<Link, StoreError> {
    let same_or_conflict = |existing: Link| {
        if existing.resident_id == resident {
            Ok(existing)
        } else {
            Err(StoreError::Conflict(Conflict::LinkConflict))
        }
    };
    // Look first, so the usual repeat is answered without a failed INSERT
    // (which would abort a caller's PostgreSQL transaction).
    if let Some(existing) = find(conn, clinic, local)? {
        return same_or_conflict(existing);
    }
    let row = LinkRow {
        clinic_id: clinic.to_string(),
        local_patient_id: local.as_str().to_owned(),
        resident_id: resident.to_string(),
        created_at: now(),
    };
    match diesel::insert_into(links::table).values(&row).execute(conn) {
        Ok(_) => Link::try_from(row),
        // Lost a race with another node linking the same number.
        Err(e) if is_unique_violation(&e) => match find(conn, clinic, local)? {
            Some(existing) => same_or_conflict(existing),
            None => Err(StoreError::Conflict(Conflict::LinkConflict)),
        },
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        )) => Err(StoreError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Which resident the clinic's number names.
pub fn find(
    conn: &mut DbConnection,
    clinic: ClinicId,
    local: &LocalPatientId,
) -> Result<Option<Link>, StoreError> {
    links::table
        .find((clinic.to_string(), local.as_str()))
        .select(LinkRow::as_select())
        .first(conn)
        .optional()?
        .map(Link::try_from)
        .transpose()
}

/// Every (clinic code, number, clinic) naming the resident, by code.
pub fn for_resident(
    conn: &mut DbConnection,
    resident: ResidentId,
) -> Result<Vec<(ClinicCode, LocalPatientId, ClinicId)>, StoreError> {
    let rows: Vec<(String, String, String)> = links::table
        .inner_join(clinics::table)
        .filter(links::resident_id.eq(resident.to_string()))
        .order((clinics::code.asc(), links::local_patient_id.asc()))
        .select((clinics::code, links::local_patient_id, links::clinic_id))
        .load(conn)?;
    rows.into_iter()
        .map(|(code, local, clinic)| {
            Ok((
                ClinicCode::parse(&code).map_err(corrupt("clinic code"))?,
                LocalPatientId::parse(&local).map_err(corrupt("local patient id"))?,
                parse_id(&clinic)?,
            ))
        })
        .collect()
}

/// One of a resident's numbers with its clinic, and the clinic's own merge
/// of it into another of its numbers (PIXm feed), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    pub clinic_id: ClinicId,
    pub clinic_code: ClinicCode,
    pub local_patient_id: LocalPatientId,
    pub replaced_by: Option<LocalPatientId>,
}

/// Every number naming the resident, by clinic code then number.
pub fn numbers_of(
    conn: &mut DbConnection,
    resident: ResidentId,
) -> Result<Vec<Number>, StoreError> {
    let rows: Vec<(String, String, String, Option<String>)> = links::table
        .inner_join(clinics::table)
        .filter(links::resident_id.eq(resident.to_string()))
        .order((clinics::code.asc(), links::local_patient_id.asc()))
        .select((
            clinics::code,
            links::local_patient_id,
            links::clinic_id,
            links::replaced_by,
        ))
        .load(conn)?;
    let local = |t: &str| LocalPatientId::parse(t).map_err(corrupt("local patient id"));
    rows.into_iter()
        .map(|(code, number, clinic, replaced_by)| {
            Ok(Number {
                clinic_id: parse_id(&clinic)?,
                clinic_code: ClinicCode::parse(&code).map_err(corrupt("clinic code"))?,
                local_patient_id: local(&number)?,
                replaced_by: replaced_by.as_deref().map(local).transpose()?,
            })
        })
        .collect()
}

/// Points the clinic's existing number at another resident (a feed that
/// corrects a link); its merge mark goes with it.
pub fn move_to(
    conn: &mut DbConnection,
    clinic: ClinicId,
    local: &LocalPatientId,
    resident: ResidentId,
) -> Result<(), StoreError> {
    let n = diesel::update(links::table.find((clinic.to_string(), local.as_str())))
        .set((
            links::resident_id.eq(resident.to_string()),
            links::replaced_by.eq(None::<String>),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Marks the clinic's number as merged into another of its numbers, or
/// clears the mark (`None`).
pub fn set_replaced_by(
    conn: &mut DbConnection,
    clinic: ClinicId,
    local: &LocalPatientId,
    by: Option<&LocalPatientId>,
) -> Result<(), StoreError> {
    let n = diesel::update(links::table.find((clinic.to_string(), local.as_str())))
        .set(links::replaced_by.eq(by.map(|b| b.as_str().to_owned())))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Removes the clinic's number; `false` if there was none.
pub fn delete(
    conn: &mut DbConnection,
    clinic: ClinicId,
    local: &LocalPatientId,
) -> Result<bool, StoreError> {
    let n =
        diesel::delete(links::table.find((clinic.to_string(), local.as_str()))).execute(conn)?;
    Ok(n > 0)
}

/// Whether the clinic holds any number for the resident.
pub fn clinic_knows(
    conn: &mut DbConnection,
    clinic: ClinicId,
    resident: ResidentId,
) -> Result<bool, StoreError> {
    let n: i64 = links::table
        .filter(links::resident_id.eq(resident.to_string()))
        .filter(links::clinic_id.eq(clinic.to_string()))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
