//! Administrator accounts, and the login failure record used to slow down
//! password guessing. The record is in the database, not in one node's
//! memory, so lock-out holds across nodes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{admins, login_failures};
use super::{corrupt, is_unique_violation, now, on_unique, parse_id, DbConnection, StoreError};
use crate::domain::{AdminId, Username};

#[derive(Clone, PartialEq, Eq)]
pub struct Admin {
    pub id: AdminId,
    pub username: Username,
    /// Argon2id PHC string, for `crypto::verify_password`.
    pub password_phc: String,
    pub created_at: NaiveDateTime,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("created_at", &self.created_at)
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
}

impl TryFrom<AdminRow> for Admin {
    type Error = StoreError;
    fn try_from(r: AdminRow) -> Result<Self, StoreError> {
        Ok(Admin {
            id: parse_id(&r.id)?,
            username: Username::parse(&r.username).map_err(corrupt("username"))?,
            password_phc: r.password_phc,
            created_at: r.created_at,
        })
    }
}

/// Makes an administrator. `Conflict("username_taken")` if the name exists.
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
    };
    diesel::insert_into(admins::table)
        .values(&row)
        .execute(conn)
        .map_err(on_unique("username_taken"))?;
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

/// Counts a failed login for `username` (whether or not the account exists,
/// so the answer does not reveal that). Returns the new count.
pub fn record_failure(conn: &mut DbConnection, username: &Username) -> Result<i64, StoreError> {
    let at = now();
    let bump = |conn: &mut DbConnection| {
        diesel::update(login_failures::table.find(username.as_str()))
            .set((
                login_failures::count.eq(login_failures::count + 1),
                login_failures::last_at.eq(at),
            ))
            .returning(login_failures::count)
            .get_result::<i64>(conn)
            .optional()
    };
    if let Some(n) = bump(conn)? {
        return Ok(n);
    }
    match diesel::insert_into(login_failures::table)
        .values((
            login_failures::username.eq(username.as_str()),
            login_failures::count.eq(1i64),
            login_failures::last_at.eq(at),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(1),
        // Another node inserted first: count on its row.
        Err(e) if is_unique_violation(&e) => bump(conn)?.ok_or(StoreError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Forgets the failures after a successful login.
pub fn clear_failures(conn: &mut DbConnection, username: &Username) -> Result<(), StoreError> {
    diesel::delete(login_failures::table.find(username.as_str())).execute(conn)?;
    Ok(())
}

/// Failed logins since the last success, and when the last one was.
pub fn failures(
    conn: &mut DbConnection,
    username: &Username,
) -> Result<(i64, Option<NaiveDateTime>), StoreError> {
    let row: Option<(i64, NaiveDateTime)> = login_failures::table
        .find(username.as_str())
        .select((login_failures::count, login_failures::last_at))
        .first(conn)
        .optional()?;
    Ok(row.map_or((0, None), |(n, at)| (n, Some(at))))
}
