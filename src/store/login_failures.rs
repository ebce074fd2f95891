//! The sign-in failure table of the previous version (one row per
//! username). Nodes of that version still write it during a rolling upgrade;
//! this version counts in [`super::login_throttle`] and only purges old
//! rows here until a later migration drops the table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::login_failures;
use super::{DbConnection, StoreError};

/// Drops rows last touched before `before` (housekeeping); returns how many.
pub fn purge(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(login_failures::table.filter(login_failures::last_at.lt(before)))
            .execute(conn)?,
    )
}
