//! `card_use_daily`: card uses (verifications, identifications) counted by
//! monitoring day, clinic, channel, step and outcome. Kept by the access
//! log's appends, in the statement or transaction that writes the log rows
//! (see `access_log`), so that it always equals a count of the log and the
//! card office's figures never read the raw log. Rows logged before the
//! table existed were counted by its migration.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Text};

use super::schema::card_use_daily;
use super::{card_use_rollup, DbConnection, StoreError};
use crate::domain::{monitoring_day, Dimension, Grouping};

/// The access-log actions that are card uses.
pub const USE_ACTIONS: [&str; 2] = ["verify", "identify"];

/// One counted combination. `''` stands for a channel or step not given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub day: NaiveDate,
    pub clinic_id: String,
    pub channel: String,
    pub step: String,
    pub outcome: String,
}

impl Key {
    /// The key of one log row, if the row is a card use by a clinic.
    pub fn of(
        at: NaiveDateTime,
        action: &str,
        clinic_id: Option<&str>,
        channel: Option<&str>,
        step: Option<&str>,
        outcome: Option<&str>,
    ) -> Option<Key> {
        if !USE_ACTIONS.contains(&action) {
            return None;
        }
        Some(Key {
            day: monitoring_day(at),
            clinic_id: clinic_id?.to_owned(),
            channel: channel.unwrap_or_default().to_owned(),
            step: step.unwrap_or_default().to_owned(),
            outcome: outcome.unwrap_or_default().to_owned(),
        })
    }
}

/// A batch's counts, summed by key and sorted: one upsert per distinct key,
/// and concurrent writers touch rows in the same order (no deadlock).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Increments(BTreeMap<Key, i64>);

/// [`Increments`] as one array per column, for PostgreSQL's `unnest`.
#[derive(Debug, Default)]
pub struct Columns {
    pub days: Vec<NaiveDate>,
    pub clinics: Vec<String>,
    pub channels: Vec<String>,
    pub steps: Vec<String>,
    pub outcomes: Vec<String>,
    pub uses: Vec<i64>,
}

impl Increments {
    pub fn of(keys: impl IntoIterator<Item = Key>) -> Increments {
        let mut m = BTreeMap::new();
        for k in keys {
            *m.entry(k).or_insert(0) += 1;
        }
        Increments(m)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn columns(&self) -> Columns {
        let mut c = Columns::default();
        for (k, n) in &self.0 {
            c.days.push(k.day);
            c.clinics.push(k.clinic_id.clone());
            c.channels.push(k.channel.clone());
            c.steps.push(k.step.clone());
            c.outcomes.push(k.outcome.clone());
            c.uses.push(*n);
        }
        c
    }
}

/// Adds `inc` to the table, one upsert per key. For SQLite, inside the
/// transaction that appends the rows; PostgreSQL's appends do it in their
/// own statement instead.
pub fn add(conn: &mut DbConnection, inc: &Increments) -> Result<(), StoreError> {
    use card_use_daily::dsl as d;
    use diesel::upsert::excluded;
    for (k, n) in &inc.0 {
        let row = (
            d::day.eq(k.day),
            d::clinic_id.eq(&k.clinic_id),
            d::channel.eq(&k.channel),
            d::step.eq(&k.step),
            d::outcome.eq(&k.outcome),
            d::uses.eq(*n),
        );
        macro_rules! upsert {
            ($c:expr) => {
                diesel::insert_into(d::card_use_daily)
                    .values(row)
                    .on_conflict((d::day, d::clinic_id, d::channel, d::step, d::outcome))
                    .do_update()
                    .set(d::uses.eq(d::uses + excluded(d::uses)))
                    .execute($c)
            };
        }
        match conn {
            DbConnection::Postgresql(c) => upsert!(c)?,
            DbConnection::Sqlite(c) => upsert!(c)?,
        };
    }
    Ok(())
}

/// Uses in a group. A dimension not grouped by is `None`; a channel or
/// step not given is `Some("")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub day: Option<NaiveDate>,
    pub clinic_id: Option<String>,
    pub channel: Option<String>,
    pub step: Option<String>,
    pub outcome: Option<String>,
    pub uses: i64,
}

#[derive(QueryableByName)]
struct RawCount {
    #[diesel(sql_type = Text)]
    g_day: String,
    #[diesel(sql_type = Text)]
    g_clinic_id: String,
    #[diesel(sql_type = Text)]
    g_channel: String,
    #[diesel(sql_type = Text)]
    g_step: String,
    #[diesel(sql_type = Text)]
    g_outcome: String,
    #[diesel(sql_type = BigInt)]
    uses: i64,
}

/// Uses from `from` to `to` (monitoring days, both included), summed by
/// `by`, ordered by the grouped columns; with no grouping, one total. By one
/// dimension or none, the settled days come from `card_use_rollup` and only
/// the others (today, yesterday) from this table.
pub fn grouped(
    conn: &mut DbConnection,
    from: NaiveDate,
    to: NaiveDate,
    by: Grouping,
) -> Result<Vec<Count>, StoreError> {
    let dims = by.dims();
    if dims.len() > 1 {
        return grouped_raw(conn, from, to, by);
    }
    let settled = card_use_rollup::settled_days(conn, from, to)?;
    if settled.is_empty() {
        return grouped_raw(conn, from, to, by);
    }
    let dim = dims.first().copied();
    let mut sums: BTreeMap<(Option<NaiveDate>, Option<String>), i64> = BTreeMap::new();
    match dim {
        None => *sums.entry((None, None)).or_default() += settled.iter().map(|s| s.1).sum::<i64>(),
        Some(Dimension::Day) => {
            for &(day, uses) in settled.iter().filter(|s| s.1 > 0) {
                *sums.entry((Some(day), None)).or_default() += uses;
            }
        }
        Some(d) => {
            for (value, uses) in card_use_rollup::by_value(conn, d, from, to)? {
                *sums.entry((None, Some(value))).or_default() += uses;
            }
        }
    }
    let days: BTreeSet<NaiveDate> = settled.iter().map(|s| s.0).collect();
    for (a, b) in card_use_rollup::unsettled_runs(from, to, &days) {
        for c in grouped_raw(conn, a, b, by)? {
            let value = match dim {
                Some(Dimension::Clinic) => c.clinic_id,
                Some(Dimension::Channel) => c.channel,
                Some(Dimension::Step) => c.step,
                Some(Dimension::Outcome) => c.outcome,
                None | Some(Dimension::Day) => None,
            };
            *sums.entry((c.day, value)).or_default() += c.uses;
        }
    }
    if dim.is_none() {
        sums.entry((None, None)).or_default();
    }
    Ok(sums
        .into_iter()
        .map(|((day, value), uses)| {
            let on = |d: Dimension| if dim == Some(d) { value.clone() } else { None };
            Count {
                day,
                clinic_id: on(Dimension::Clinic),
                channel: on(Dimension::Channel),
                step: on(Dimension::Step),
                outcome: on(Dimension::Outcome),
                uses,
            }
        })
        .collect())
}

/// [`grouped`] from this table alone: reads the primary key's range of
/// those days only.
fn grouped_raw(
    conn: &mut DbConnection,
    from: NaiveDate,
    to: NaiveDate,
    by: Grouping,
) -> Result<Vec<Count>, StoreError> {
    let column = |d: Dimension| match d {
        Dimension::Day => "day",
        Dimension::Clinic => "clinic_id",
        Dimension::Channel => "channel",
        Dimension::Step => "step",
        Dimension::Outcome => "outcome",
    };
    let select: Vec<String> = Dimension::ALL
        .into_iter()
        .map(|d| {
            if by.has(d) {
                format!("CAST({} AS TEXT) AS g_{}", column(d), column(d))
            } else {
                format!("'' AS g_{}", column(d))
            }
        })
        .collect();
    let grouped: Vec<&str> = by.dims().into_iter().map(column).collect();
    let (p1, p2) = match conn {
        DbConnection::Postgresql(_) => ("$1", "$2"),
        DbConnection::Sqlite(_) => ("?", "?"),
    };
    let mut sql = format!(
        "SELECT {}, CAST(COALESCE(SUM(uses), 0) AS BIGINT) AS uses FROM card_use_daily \
         WHERE day >= {p1} AND day <= {p2}",
        select.join(", ")
    );
    if !grouped.is_empty() {
        let list = grouped.join(", ");
        sql.push_str(&format!(" GROUP BY {list} ORDER BY {list}"));
    }
    macro_rules! run {
        ($c:expr) => {
            diesel::sql_query(&sql)
                .bind::<Date, _>(from)
                .bind::<Date, _>(to)
                .load::<RawCount>($c)
        };
    }
    let raw = match conn {
        DbConnection::Postgresql(c) => run!(c)?,
        DbConnection::Sqlite(c) => run!(c)?,
    };
    let keep = |d: Dimension, v: String| by.has(d).then_some(v);
    raw.into_iter()
        .map(|r| {
            let day = match keep(Dimension::Day, r.g_day) {
                Some(text) => Some(
                    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                        .map_err(|_| StoreError::Other("corrupt day in card_use_daily".into()))?,
                ),
                None => None,
            };
            Ok(Count {
                day,
                clinic_id: keep(Dimension::Clinic, r.g_clinic_id),
                channel: keep(Dimension::Channel, r.g_channel),
                step: keep(Dimension::Step, r.g_step),
                outcome: keep(Dimension::Outcome, r.g_outcome),
                uses: r.uses,
            })
        })
        .collect()
}
