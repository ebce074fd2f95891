//! `card_use_rollup`: the card uses of each settled day summed per dashboard
//! dimension (day, clinic, channel, step, outcome), so that a month of the
//! dashboard reads a few hundred rows instead of every combination kept in
//! `card_use_daily` (see docs/monitoring.md and docs/performance.md).
//!
//! A day is settled once no node appends to it any more: housekeeping rolls
//! up the days older than yesterday (monitoring days), one transaction each,
//! and a day's `day` row (value `''`) is written first, so its presence says
//! the other four dimensions of that day are there too. Nodes that settle
//! the same day at once conflict on that row and all but one skip the day.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Text};

use super::schema::card_use_rollup;
use super::{DbConnection, StoreError};
use crate::domain::Dimension;

/// The name a dimension has in the `dimension` column, and the column of
/// `card_use_daily` it sums.
fn names(d: Dimension) -> (&'static str, &'static str) {
    match d {
        Dimension::Day => ("day", "''"),
        Dimension::Clinic => ("clinic", "clinic_id"),
        Dimension::Channel => ("channel", "channel"),
        Dimension::Step => ("step", "step"),
        Dimension::Outcome => ("outcome", "outcome"),
    }
}

/// The last settled day, if any day is.
pub fn last_settled(conn: &mut DbConnection) -> Result<Option<NaiveDate>, StoreError> {
    use card_use_rollup::dsl as r;
    use diesel::dsl::max;
    let q = r::card_use_rollup
        .filter(r::dimension.eq("day"))
        .select(max(r::day));
    Ok(match conn {
        DbConnection::Postgresql(c) => q.first::<Option<NaiveDate>>(c)?,
        DbConnection::Sqlite(c) => q.first::<Option<NaiveDate>>(c)?,
    })
}

/// The first day with counted uses, if any.
fn first_counted(conn: &mut DbConnection) -> Result<Option<NaiveDate>, StoreError> {
    use super::schema::card_use_daily::dsl as d;
    use diesel::dsl::min;
    let q = d::card_use_daily.select(min(d::day));
    Ok(match conn {
        DbConnection::Postgresql(c) => q.first::<Option<NaiveDate>>(c)?,
        DbConnection::Sqlite(c) => q.first::<Option<NaiveDate>>(c)?,
    })
}

/// The placeholder of the first bound value, usable more than once.
fn first_param(conn: &DbConnection) -> &'static str {
    match conn {
        DbConnection::Postgresql(_) => "$1",
        DbConnection::Sqlite(_) => "?1",
    }
}

/// Settles one day in the caller's transaction; false when another node
/// settled it first.
fn settle_day(conn: &mut DbConnection, day: NaiveDate) -> Result<bool, StoreError> {
    let p = first_param(conn);
    // An aggregate without GROUP BY is one row, so a day without uses is
    // settled too (with 0). SQLite parses INSERT … SELECT … ON CONFLICT only
    // after a WHERE, which this has.
    let marker = format!(
        "INSERT INTO card_use_rollup (dimension, day, value, uses) \
         SELECT 'day', {p}, '', CAST(COALESCE(SUM(uses), 0) AS BIGINT) FROM card_use_daily \
         WHERE day = {p} ON CONFLICT DO NOTHING"
    );
    let mut statements = vec![marker];
    for d in [
        Dimension::Clinic,
        Dimension::Channel,
        Dimension::Step,
        Dimension::Outcome,
    ] {
        let (name, column) = names(d);
        statements.push(format!(
            "INSERT INTO card_use_rollup (dimension, day, value, uses) \
             SELECT '{name}', day, {column}, CAST(SUM(uses) AS BIGINT) FROM card_use_daily \
             WHERE day = {p} GROUP BY day, {column}"
        ));
    }
    for (i, sql) in statements.into_iter().enumerate() {
        let q = diesel::sql_query(sql).bind::<Date, _>(day);
        let n = match conn {
            DbConnection::Postgresql(c) => q.execute(c)?,
            DbConnection::Sqlite(c) => q.execute(c)?,
        };
        if i == 0 && n == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Settles the days after the last settled one (from the first counted day
/// when none is) through `through`, at most `max_days` of them, one
/// transaction each; returns how many this call settled. `through` must be a
/// day no node appends to any more.
pub fn settle(
    conn: &mut DbConnection,
    through: NaiveDate,
    max_days: u32,
) -> Result<u32, StoreError> {
    let start = match last_settled(conn)? {
        Some(last) => last.succ_opt(),
        None => first_counted(conn)?,
    };
    let Some(mut day) = start else {
        return Ok(0);
    };
    let mut settled = 0;
    while day <= through && settled < max_days {
        if conn.transaction(|conn| settle_day(conn, day))? {
            settled += 1;
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    Ok(settled)
}

#[derive(QueryableByName)]
struct ValueSum {
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = BigInt)]
    uses: i64,
}

/// The settled days in `from..=to` with their uses (0 included).
pub fn settled_days(
    conn: &mut DbConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
    use card_use_rollup::dsl as r;
    let q = r::card_use_rollup
        .filter(r::dimension.eq("day"))
        .filter(r::day.ge(from))
        .filter(r::day.le(to))
        .order(r::day)
        .select((r::day, r::uses));
    Ok(match conn {
        DbConnection::Postgresql(c) => q.load(c)?,
        DbConnection::Sqlite(c) => q.load(c)?,
    })
}

/// The settled uses in `from..=to` by the value of `d` (not [`Dimension::Day`],
/// which [`settled_days`] answers), ordered by value.
pub fn by_value(
    conn: &mut DbConnection,
    d: Dimension,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, i64)>, StoreError> {
    let (name, _) = names(d);
    let (p1, p2) = match conn {
        DbConnection::Postgresql(_) => ("$1", "$2"),
        DbConnection::Sqlite(_) => ("?1", "?2"),
    };
    let sql = format!(
        "SELECT value, CAST(SUM(uses) AS BIGINT) AS uses FROM card_use_rollup \
         WHERE dimension = '{name}' AND day >= {p1} AND day <= {p2} \
         GROUP BY value ORDER BY value"
    );
    let q = diesel::sql_query(sql)
        .bind::<Date, _>(from)
        .bind::<Date, _>(to);
    let rows: Vec<ValueSum> = match conn {
        DbConnection::Postgresql(c) => q.load(c)?,
        DbConnection::Sqlite(c) => q.load(c)?,
    };
    Ok(rows.into_iter().map(|r| (r.value, r.uses)).collect())
}

/// The days of `from..=to` that are not in `settled`, as inclusive runs.
pub fn unsettled_runs(
    from: NaiveDate,
    to: NaiveDate,
    settled: &BTreeSet<NaiveDate>,
) -> Vec<(NaiveDate, NaiveDate)> {
    let mut runs = Vec::new();
    let mut open: Option<(NaiveDate, NaiveDate)> = None;
    for day in from.iter_days().take_while(|d| *d <= to) {
        if settled.contains(&day) {
            if let Some(run) = open.take() {
                runs.push(run);
            }
        } else {
            open = Some(match open {
                Some((start, _)) => (start, day),
                None => (day, day),
            });
        }
    }
    runs.extend(open);
    runs
}
