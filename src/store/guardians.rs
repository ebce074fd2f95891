//! Guardianships: which resident carries whose card (issue 15). Rows are
//! ended, never deleted. Each read comes with the dependant's birth date, so
//! that the service can tell a minor's guardianship past the 18th birthday
//! as ended before housekeeping writes the end.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{guardians, residents};
use super::{corrupt, next_counter, on_unique, parse_id, Conflict, DbConnection, StoreError};
use crate::domain::{EndReason, Relation, ResidentId};

/// The counter whose row lock every change of guardianship takes first.
const LOCK_COUNTER: &str = "guardians";

/// The card office's record of an adult dependant's consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The administrator who attested it (username).
    pub by: String,
    pub at: NaiveDateTime,
}

/// One guardianship as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardianship {
    pub id: uuid::Uuid,
    pub dependant: ResidentId,
    pub guardian: ResidentId,
    pub relation: Relation,
    pub consent: Option<Consent>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub end_reason: Option<EndReason>,
    /// The dependant's, read with the row.
    pub dependant_birth: NaiveDate,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = guardians, treat_none_as_default_value = false)]
struct Row {
    id: String,
    dependant_id: String,
    guardian_id: String,
    relation: String,
    consent_by: Option<String>,
    consent_at: Option<NaiveDateTime>,
    created_by: String,
    created_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
    end_reason: Option<String>,
}

fn open_row(r: Row, dependant_birth: NaiveDate) -> Result<Guardianship, StoreError> {
    Ok(Guardianship {
        id: parse_id(&r.id)?,
        dependant: parse_id(&r.dependant_id)?,
        guardian: parse_id(&r.guardian_id)?,
        relation: r.relation.parse().map_err(corrupt("relation"))?,
        consent: match (r.consent_by, r.consent_at) {
            (Some(by), Some(at)) => Some(Consent { by, at }),
            _ => None,
        },
        created_by: r.created_by,
        created_at: r.created_at,
        ended_at: r.ended_at,
        end_reason: r
            .end_reason
            .map(|e| e.parse().map_err(corrupt("end reason")))
            .transpose()?,
        dependant_birth,
    })
}

/// Takes the lock that orders all changes of guardianship (first statement
/// of the change's transaction): the count and cycle rules read rows other
/// than the one written, so two nodes must not decide at once.
pub fn lock(conn: &mut DbConnection) -> Result<(), StoreError> {
    next_counter(conn, LOCK_COUNTER, 1).map(|_| ())
}

/// What adding a guardian writes.
#[derive(Debug, Clone)]
pub struct NewGuardianship {
    pub dependant: ResidentId,
    pub guardian: ResidentId,
    pub relation: Relation,
    pub consent: Option<Consent>,
    pub created_by: String,
    pub at: NaiveDateTime,
}

/// Stores a guardianship. `Conflict("guardian_exists")` when the pair has
/// one open already (a partial unique index).
pub fn insert(
    conn: &mut DbConnection,
    new: &NewGuardianship,
    dependant_birth: NaiveDate,
) -> Result<Guardianship, StoreError> {
    let row = Row {
        id: uuid::Uuid::new_v4().to_string(),
        dependant_id: new.dependant.to_string(),
        guardian_id: new.guardian.to_string(),
        relation: new.relation.as_str().to_string(),
        consent_by: new.consent.as_ref().map(|c| c.by.clone()),
        consent_at: new.consent.as_ref().map(|c| c.at),
        created_by: new.created_by.clone(),
        created_at: new.at,
        ended_at: None,
        end_reason: None,
    };
    diesel::insert_into(guardians::table)
        .values(&row)
        .execute(conn)
        .map_err(on_unique(Conflict::GuardianExists))?;
    open_row(row, dependant_birth)
}

macro_rules! read {
    ($conn:expr, $filter:expr) => {{
        let rows: Vec<(Row, NaiveDate)> = guardians::table
            .inner_join(residents::table.on(residents::id.eq(guardians::dependant_id)))
            .filter($filter)
            .order((guardians::created_at.asc(), guardians::id.asc()))
            .select((Row::as_select(), residents::birth_date))
            .load($conn)?;
        rows.into_iter()
            .map(|(r, b)| open_row(r, b))
            .collect::<Result<Vec<_>, StoreError>>()
    }};
}

/// The dependant's guardianships with no end written, oldest first.
pub fn open_for_dependant(
    conn: &mut DbConnection,
    dependant: ResidentId,
) -> Result<Vec<Guardianship>, StoreError> {
    read!(
        conn,
        guardians::dependant_id
            .eq(dependant.to_string())
            .and(guardians::ended_at.is_null())
    )
}

/// The guardianships with no end written where `guardian` is the guardian.
pub fn open_for_guardian(
    conn: &mut DbConnection,
    guardian: ResidentId,
) -> Result<Vec<Guardianship>, StoreError> {
    read!(
        conn,
        guardians::guardian_id
            .eq(guardian.to_string())
            .and(guardians::ended_at.is_null())
    )
}

/// Every guardianship the resident is part of, on either side, ended ones
/// too, oldest first.
pub fn history(
    conn: &mut DbConnection,
    resident: ResidentId,
) -> Result<Vec<Guardianship>, StoreError> {
    let id = resident.to_string();
    read!(
        conn,
        guardians::dependant_id
            .eq(id.clone())
            .or(guardians::guardian_id.eq(id))
    )
}

/// Writes the end of one open guardianship; false when it had ended already
/// (another node or housekeeping was first).
pub fn end(
    conn: &mut DbConnection,
    id: uuid::Uuid,
    at: NaiveDateTime,
    reason: EndReason,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        guardians::table
            .filter(guardians::id.eq(id.to_string()))
            .filter(guardians::ended_at.is_null()),
    )
    .set((
        guardians::ended_at.eq(Some(at)),
        guardians::end_reason.eq(Some(reason.as_str())),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Open minors' guardianships (no consent recorded) whose dependant was born
/// on or before `born_by`: those that ended on an 18th birthday.
pub fn came_of_age(
    conn: &mut DbConnection,
    born_by: NaiveDate,
) -> Result<Vec<Guardianship>, StoreError> {
    read!(
        conn,
        guardians::ended_at
            .is_null()
            .and(guardians::consent_at.is_null())
            .and(residents::birth_date.le(born_by))
    )
}
