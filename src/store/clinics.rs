//! Clinics and their API keys. Keys are stored as SHA-256 hashes only; a
//! clinic may hold several (rotation without downtime), each revocable.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{api_keys, clinics};
use super::{corrupt, now, on_unique, parse_id, Conflict, DbConnection, StoreError};
use crate::crypto::{SecretHash, SecretKind, SecretToken};
use crate::domain::{ClinicCode, ClinicId, Scopes};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clinic {
    pub id: ClinicId,
    pub code: ClinicCode,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: NaiveDateTime,
}

/// An API key as listed to administrators: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub clinic_id: ClinicId,
    /// The prefix and first four characters, e.g. `hck_Ab3x…`, to tell keys apart.
    pub hint: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clinics)]
pub(crate) struct ClinicRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub scopes: String,
    pub created_at: NaiveDateTime,
}

impl TryFrom<ClinicRow> for Clinic {
    type Error = StoreError;
    fn try_from(r: ClinicRow) -> Result<Self, StoreError> {
        Ok(Clinic {
            id: parse_id(&r.id)?,
            code: ClinicCode::parse(&r.code).map_err(corrupt("clinic code"))?,
            name: r.name,
            scopes: Scopes::parse(&r.scopes).map_err(corrupt("scopes"))?,
            created_at: r.created_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct ApiKeyRow {
    id: String,
    clinic_id: String,
    hint: String,
    created_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
}

impl TryFrom<ApiKeyRow> for ApiKeyInfo {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> Result<Self, StoreError> {
        Ok(ApiKeyInfo {
            id: r.id,
            clinic_id: parse_id(&r.clinic_id)?,
            hint: r.hint,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        })
    }
}

/// Makes a clinic with its first API key (`hck_…`, shown once).
/// `Conflict(Conflict::ClinicCodeTaken)` if the code exists.
pub fn create(
    conn: &mut DbConnection,
    code: &ClinicCode,
    name: &str,
    scopes: Scopes,
) -> Result<(Clinic, SecretToken), StoreError> {
    let row = ClinicRow {
        id: ClinicId::new().to_string(),
        code: code.as_str().to_owned(),
        name: name.trim().to_owned(),
        scopes: scopes.to_string(),
        created_at: now(),
    };
    conn.transaction(|conn| {
        diesel::insert_into(clinics::table)
            .values(&row)
            .execute(conn)
            .map_err(on_unique(Conflict::ClinicCodeTaken))?;
        let clinic = Clinic::try_from(row.clone())?;
        let (_, key) = add_key(conn, clinic.id)?;
        Ok((clinic, key))
    })
}

pub fn get(conn: &mut DbConnection, id: ClinicId) -> Result<Clinic, StoreError> {
    clinics::table
        .find(id.to_string())
        .select(ClinicRow::as_select())
        .first(conn)?
        .try_into()
}

pub fn find_by_code(
    conn: &mut DbConnection,
    code: &ClinicCode,
) -> Result<Option<Clinic>, StoreError> {
    clinics::table
        .filter(clinics::code.eq(code.as_str()))
        .select(ClinicRow::as_select())
        .first(conn)
        .optional()?
        .map(Clinic::try_from)
        .transpose()
}

/// Every clinic, by code.
pub fn list(conn: &mut DbConnection) -> Result<Vec<Clinic>, StoreError> {
    clinics::table
        .order(clinics::code.asc())
        .select(ClinicRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Clinic::try_from)
        .collect()
}

/// The clinic owning an unrevoked key with this hash: one indexed look-up.
pub fn authenticate(
    conn: &mut DbConnection,
    hash: &SecretHash,
) -> Result<Option<Clinic>, StoreError> {
    api_keys::table
        .inner_join(clinics::table)
        .filter(api_keys::key_hash.eq(hash.0.to_vec()))
        .filter(api_keys::revoked_at.is_null())
        .select(ClinicRow::as_select())
        .first(conn)
        .optional()?
        .map(Clinic::try_from)
        .transpose()
}

/// As [`authenticate`], with the id of the key that matched (a kiosk session
/// is bound to it, so revoking the key ends the session).
pub fn authenticate_key(
    conn: &mut DbConnection,
    hash: &SecretHash,
) -> Result<Option<(Clinic, String)>, StoreError> {
    api_keys::table
        .inner_join(clinics::table)
        .filter(api_keys::key_hash.eq(hash.0.to_vec()))
        .filter(api_keys::revoked_at.is_null())
        .select((ClinicRow::as_select(), api_keys::id))
        .first::<(ClinicRow, String)>(conn)
        .optional()?
        .map(|(c, k)| Ok((Clinic::try_from(c)?, k)))
        .transpose()
}

/// A new API key for the clinic (shown once); `NotFound` if no such clinic.
pub fn add_key(
    conn: &mut DbConnection,
    clinic: ClinicId,
) -> Result<(ApiKeyInfo, SecretToken), StoreError> {
    let key = SecretToken::generate(SecretKind::ApiKey);
    let prefix_len = SecretKind::ApiKey.prefix().len() + 4;
    let info = ApiKeyInfo {
        id: uuid::Uuid::new_v4().to_string(),
        clinic_id: clinic,
        hint: format!("{}…", &key.expose()[..prefix_len]),
        created_at: now(),
        revoked_at: None,
    };
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(&info.id),
            api_keys::clinic_id.eq(clinic.to_string()),
            api_keys::key_hash.eq(key.hash().0.to_vec()),
            api_keys::hint.eq(&info.hint),
            api_keys::created_at.eq(info.created_at),
        ))
        .execute(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => StoreError::NotFound,
            other => other.into(),
        })?;
    Ok((info, key))
}

/// Revokes a key at once (idempotent); `NotFound` if there is no such key.
pub fn revoke_key(conn: &mut DbConnection, key_id: &str) -> Result<(), StoreError> {
    let n = diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(key_id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(now()))
    .execute(conn)?;
    // Kiosks signed in with this key stop at once.
    super::kiosk_sessions::delete_for_key(conn, key_id)?;
    if n == 0 {
        // Already revoked is fine; absent is not.
        api_keys::table
            .find(key_id)
            .select(api_keys::id)
            .first::<String>(conn)?;
    }
    Ok(())
}

/// The clinic's keys, newest first.
pub fn list_keys(conn: &mut DbConnection, clinic: ClinicId) -> Result<Vec<ApiKeyInfo>, StoreError> {
    api_keys::table
        .filter(api_keys::clinic_id.eq(clinic.to_string()))
        .order(api_keys::created_at.desc())
        .select(ApiKeyRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ApiKeyInfo::try_from)
        .collect()
}
