//! Card-use figures by clinic and channel, read from the access log (the
//! national card-use monitoring asks for them).

use chrono::NaiveDateTime;
use diesel::dsl::count_star;
use diesel::prelude::*;
use serde::Serialize;

use crate::store::schema::access_log;
use crate::store::{clinics, DbConnection, StoreError};

/// Verifications of one clinic on one channel in the period.
#[derive(Debug, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct UsageRow {
    pub clinic_code: String,
    /// `window`, `kiosk`, `doctor`, `app` or `unspecified`
    pub channel: String,
    pub valid: i64,
    pub invalid: i64,
}

/// (clinic id, channel, outcome, count) as grouped in the database.
type Group = (Option<String>, Option<String>, Option<String>, i64);

/// Counts verifications in `[from, to)` grouped by clinic, channel and validity.
pub fn card_use(
    conn: &mut DbConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<UsageRow>, StoreError> {
    let rows: Vec<Group> = access_log::table
        .filter(access_log::action.eq("verify"))
        .filter(access_log::at.ge(from))
        .filter(access_log::at.lt(to))
        .group_by((
            access_log::clinic_id,
            access_log::channel,
            access_log::outcome,
        ))
        .select((
            access_log::clinic_id,
            access_log::channel,
            access_log::outcome,
            count_star(),
        ))
        .load(conn)?;
    let codes: std::collections::HashMap<String, String> = clinics::list(conn)?
        .into_iter()
        .map(|c| (c.id.to_string(), c.code.as_str().to_string()))
        .collect();
    let mut out: std::collections::BTreeMap<(String, String), UsageRow> = Default::default();
    for (clinic, channel, outcome, n) in rows {
        let code = clinic
            .and_then(|id| codes.get(&id).cloned())
            .unwrap_or_else(|| "unknown".into());
        let channel = channel.unwrap_or_else(|| "unspecified".into());
        let row = out
            .entry((code.clone(), channel.clone()))
            .or_insert(UsageRow {
                clinic_code: code,
                channel,
                valid: 0,
                invalid: 0,
            });
        if outcome.as_deref() == Some("valid") {
            row.valid += n;
        } else {
            row.invalid += n;
        }
    }
    Ok(out.into_values().collect())
}
