//! Residents. The national ID number is stored only sealed (AES-GCM under the
//! master key) and as a keyed blind index for exact look-up; the phone only sealed.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::residents;
use super::{corrupt, now, on_unique, parse_id, Conflict, DbConnection, StoreError};
use crate::crypto::MasterKey;
use crate::domain::{MobileNumber, NationalId, PersonName, ResidentId, Sex};

/// AEAD purpose and blind-index purpose of the national ID number.
pub(crate) const NATIONAL_ID_PURPOSE: &[u8] = b"national_id";
/// AEAD purpose of the phone number.
pub(crate) const PHONE_PURPOSE: &[u8] = b"phone";

/// A resident, decrypted. `Debug` shows only the id and the masked ID number:
/// a stray `{:?}` in a log line must not leak a name or a phone number.
#[derive(Clone, PartialEq, Eq)]
pub struct Resident {
    pub id: ResidentId,
    pub name: String,
    pub national_id: NationalId,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub phone: Option<String>,
    pub created_at: NaiveDateTime,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident")
            .field("id", &self.id)
            .field("national_id", &self.national_id)
            .finish_non_exhaustive()
    }
}

/// What registration needs; sex and birth date come from the ID number.
#[derive(Debug, Clone)]
pub struct NewResident {
    pub name: PersonName,
    pub national_id: NationalId,
    pub phone: Option<MobileNumber>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = residents, treat_none_as_default_value = false)]
pub(crate) struct ResidentRow {
    pub id: String,
    pub name: String,
    pub national_id_enc: Vec<u8>,
    pub national_id_index: Vec<u8>,
    pub sex: String,
    pub birth_date: NaiveDate,
    pub phone_enc: Option<Vec<u8>>,
    pub created_at: NaiveDateTime,
}

/// The blind index of a national ID number.
pub fn national_id_index(key: &MasterKey, id: &NationalId) -> Vec<u8> {
    key.blind_index(NATIONAL_ID_PURPOSE, id.as_str().as_bytes())
        .to_vec()
}

impl ResidentRow {
    /// Seals and indexes a new resident: pure crypto, no database, so bulk
    /// imports can do it outside their transactions.
    pub(crate) fn seal(key: &MasterKey, new: &NewResident, at: NaiveDateTime) -> Self {
        ResidentRow {
            id: ResidentId::new().to_string(),
            name: new.name.as_str().to_owned(),
            national_id_enc: key.seal(NATIONAL_ID_PURPOSE, new.national_id.as_str().as_bytes()),
            national_id_index: national_id_index(key, &new.national_id),
            sex: new.national_id.sex().as_str().to_owned(),
            birth_date: new.national_id.birth_date(),
            phone_enc: new
                .phone
                .as_ref()
                .map(|p| key.seal(PHONE_PURPOSE, p.as_str().as_bytes())),
            created_at: at,
        }
    }

    pub(crate) fn open(self, key: &MasterKey) -> Result<Resident, StoreError> {
        let nid = key.open(NATIONAL_ID_PURPOSE, &self.national_id_enc)?;
        let nid = std::str::from_utf8(&nid).map_err(corrupt("national id"))?;
        let national_id = NationalId::parse_stored(nid).map_err(corrupt("national id"))?;
        let phone = match self.phone_enc {
            Some(enc) => {
                Some(String::from_utf8(key.open(PHONE_PURPOSE, &enc)?).map_err(corrupt("phone"))?)
            }
            None => None,
        };
        Ok(Resident {
            id: parse_id(&self.id)?,
            name: self.name,
            sex: self.sex.parse().map_err(corrupt("sex"))?,
            birth_date: self.birth_date,
            national_id,
            phone,
            created_at: self.created_at,
        })
    }
}

/// Registers a resident. `Conflict(Conflict::NationalIdRegistered)` if the number is
/// already registered (the blind index is unique).
pub fn create(
    conn: &mut DbConnection,
    key: &MasterKey,
    new: &NewResident,
) -> Result<Resident, StoreError> {
    let row = ResidentRow::seal(key, new, now());
    diesel::insert_into(residents::table)
        .values(&row)
        .execute(conn)
        .map_err(on_unique(Conflict::NationalIdRegistered))?;
    row.open(key)
}

/// Finds a resident by national ID number through the blind index.
pub fn find_by_national_id(
    conn: &mut DbConnection,
    key: &MasterKey,
    national_id: &NationalId,
) -> Result<Option<Resident>, StoreError> {
    residents::table
        .filter(residents::national_id_index.eq(national_id_index(key, national_id)))
        .select(ResidentRow::as_select())
        .first(conn)
        .optional()?
        .map(|r| r.open(key))
        .transpose()
}

/// A resident by id; `NotFound` if there is none.
pub fn get(
    conn: &mut DbConnection,
    key: &MasterKey,
    id: ResidentId,
) -> Result<Resident, StoreError> {
    residents::table
        .find(id.to_string())
        .select(ResidentRow::as_select())
        .first(conn)?
        .open(key)
}

/// How many residents are registered (for metrics).
pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(residents::table.count().get_result(conn)?)
}

/// Residents whose name starts with `name_prefix` (case-sensitive), of the
/// given sex and birth date when given, at most `limit`, by name. The
/// prefix narrows by index (see the FHIR migration); callers match the
/// family and given names exactly on what comes back.
pub fn search_by_name_prefix(
    conn: &mut DbConnection,
    key: &MasterKey,
    name_prefix: &str,
    sex: Option<Sex>,
    birth_date: Option<NaiveDate>,
    limit: i64,
) -> Result<Vec<Resident>, StoreError> {
    let mut pattern = String::with_capacity(name_prefix.len() + 2);
    for c in name_prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    let mut q = residents::table
        .filter(residents::name.like(pattern).escape('\\'))
        .into_boxed();
    if let Some(sex) = sex {
        q = q.filter(residents::sex.eq(sex.as_str()));
    }
    if let Some(d) = birth_date {
        q = q.filter(residents::birth_date.eq(d));
    }
    q.order((residents::name.asc(), residents::id.asc()))
        .limit(limit)
        .select(ResidentRow::as_select())
        .load(conn)?
        .into_iter()
        .filter(|r| r.name.starts_with(name_prefix))
        .map(|r| r.open(key))
        .collect()
}
