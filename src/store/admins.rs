//! Administrator accounts. The sign-in failure counters are in
//! [`super::login_failures`].

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{admins, sessions};
use super::{corrupt, now, on_unique, parse_id, Conflict, DbConnection, StoreError};
use crate::domain::{AdminId, Username};

#[derive(Clone, PartialEq, Eq)]
pub struct Admin {
    pub id: AdminId,
    pub username: Username,
    /// Argon2id PHC string, for `crypto::verify_password`.
    pub password_phc: String,
    pub created_at: NaiveDateTime,
    /// Set by `healthcard admin disable`: no sign-in, no session.
    pub disabled_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("created_at", &self.created_at)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = admins)]
pub(crate) struct AdminRow {
    pub id: String,
    pub username: String,
    pub password_phc: String,
    pub created_at: NaiveDateTime,
    pub disabled_at: Option<NaiveDateTime>,
}

impl TryFrom<AdminRow> for Admin {
    type Error = StoreError;
    fn try_from(r: AdminRow) -> Result<Self, StoreError> {
        Ok(Admin {
            id: parse_id(&r.id)?,
            username: Username::parse(&r.username).map_err(corrupt("username"))?,
            password_phc: r.password_phc,
            created_at: r.created_at,
            disabled_at: r.disabled_at,
        })
    }
}

/// Makes an administrator. `Conflict(Conflict::UsernameTaken)` if the name exists.
pub fn create(
    conn: &mut DbConnection,
    username: &Username,
    password_phc: &str,
) -> Result<Admin, StoreError> {
    let row = AdminRow {
        id: AdminId::new().to_string(),
        username: username.as_str().to_owned(),
        password_phc: password_phc.to_owned(),
        created_at: now(),
        disabled_at: None,
    };
    diesel::insert_into(admins::table)
        .values(&row)
        .execute(conn)
        .map_err(on_unique(Conflict::UsernameTaken))?;
    row.try_into()
}

pub fn find_by_username(
    conn: &mut DbConnection,
    username: &Username,
) -> Result<Option<Admin>, StoreError> {
    admins::table
        .filter(admins::username.eq(username.as_str()))
        .select(AdminRow::as_select())
        .first(conn)
        .optional()?
        .map(Admin::try_from)
        .transpose()
}

/// How many administrators exist (zero: the first must be made by the CLI).
pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(admins::table.count().get_result(conn)?)
}

/// Every administrator, by username.
pub fn list(conn: &mut DbConnection) -> Result<Vec<Admin>, StoreError> {
    admins::table
        .order(admins::username.asc())
        .select(AdminRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Admin::try_from)
        .collect()
}

/// Disables (`Some(at)`) or enables (`None`) an account; `NotFound` if there
/// is no such administrator. Disabling also ends every session of the account.
pub fn set_disabled(
    conn: &mut DbConnection,
    username: &Username,
    at: Option<NaiveDateTime>,
) -> Result<Admin, StoreError> {
    let n = diesel::update(admins::table.filter(admins::username.eq(username.as_str())))
        .set(admins::disabled_at.eq(at))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    let admin = find_by_username(conn, username)?.ok_or(StoreError::NotFound)?;
    if at.is_some() {
        delete_sessions(conn, admin.id)?;
    }
    Ok(admin)
}

/// Replaces the password hash; `NotFound` if there is no such administrator.
pub fn set_password(
    conn: &mut DbConnection,
    username: &Username,
    password_phc: &str,
) -> Result<Admin, StoreError> {
    let n = diesel::update(admins::table.filter(admins::username.eq(username.as_str())))
        .set(admins::password_phc.eq(password_phc))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    find_by_username(conn, username)?.ok_or(StoreError::NotFound)
}

/// Ends every session of an administrator; returns how many there were.
pub fn delete_sessions(conn: &mut DbConnection, admin: AdminId) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(sessions::table.filter(sessions::admin_id.eq(admin.to_string())))
            .execute(conn)?,
    )
}
