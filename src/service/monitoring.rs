//! Card-use monitoring (用卡监测): uses of the card by day, clinic, channel,
//! step and outcome, read from the daily counts the access log keeps
//! (`store::card_use`), as JSON rows, as CSV for the national monitoring
//! report, and as the card office's dashboard. See docs/monitoring.md.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::domain::{Channel, Dimension, Grouping, Period, Step};
use crate::store::card_use::{self, Count};
use crate::store::{cards, clinics, DbConnection, StoreError};

/// Uses in one group: only the grouped dimensions are `Some`; a channel or
/// step that was not given is `Some(None)`. Served as JSON by
/// `http::views::CardUseRowView`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardUseRow {
    /// Monitoring day (China Standard Time).
    pub day: Option<NaiveDate>,
    pub clinic_code: Option<String>,
    pub clinic_name: Option<String>,
    pub channel: Option<Option<Channel>>,
    /// The channel's national code (`0100` …).
    pub channel_code: Option<Option<&'static str>>,
    pub step: Option<Option<Step>>,
    /// The step's national code (`010101` …).
    pub step_code: Option<Option<&'static str>>,
    /// `valid` or the refusal's reason code.
    pub outcome: Option<String>,
    pub uses: i64,
}

/// Uses in a period, grouped (`GET /api/v1/stats/card-use`, the portal's
/// CSV export). Served as JSON by `http::views::CardUseReportView`.
#[derive(Debug, Clone)]
pub struct CardUseReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The grouping, in fixed order (`day, clinic, channel, step, outcome`).
    pub by: Vec<&'static str>,
    /// Uses in the whole period.
    pub total: i64,
    pub rows: Vec<CardUseRow>,
    grouping: Grouping,
}

/// Clinic id → (code, name).
fn clinic_names(conn: &mut DbConnection) -> Result<HashMap<String, (String, String)>, StoreError> {
    Ok(clinics::list(conn)?
        .into_iter()
        .map(|c| (c.id.to_string(), (c.code.as_str().to_owned(), c.name)))
        .collect())
}

fn row(count: Count, names: &HashMap<String, (String, String)>) -> CardUseRow {
    let (clinic_code, clinic_name) = match count.clinic_id {
        Some(id) => match names.get(&id) {
            Some((code, name)) => (Some(code.clone()), Some(name.clone())),
            None => (Some(id), Some(String::new())),
        },
        None => (None, None),
    };
    // Stored values were parsed before they were stored; an unknown one
    // (a newer node's channel) reads as not given rather than failing.
    let channel = count.channel.map(|c| c.parse::<Channel>().ok());
    let step = count.step.map(|s| s.parse::<Step>().ok());
    CardUseRow {
        day: count.day,
        clinic_code,
        clinic_name,
        channel_code: channel.map(|c| c.map(Channel::national_code)),
        channel,
        step_code: step.map(|s| s.map(Step::national_code)),
        step,
        outcome: count.outcome,
        uses: count.uses,
    }
}

/// Uses in `period` grouped by `by`.
pub fn card_use(
    conn: &mut DbConnection,
    period: Period,
    by: Grouping,
) -> Result<CardUseReport, StoreError> {
    let counts = card_use::grouped(conn, period.from(), period.to(), by)?;
    let names = clinic_names(conn)?;
    let rows: Vec<CardUseRow> = counts.into_iter().map(|c| row(c, &names)).collect();
    Ok(CardUseReport {
        from: period.from(),
        to: period.to(),
        by: by.dims().into_iter().map(Dimension::as_str).collect(),
        total: rows.iter().map(|r| r.uses).sum(),
        rows,
        grouping: by,
    })
}

/// The CSV columns of a grouping, in order.
fn csv_columns(by: Grouping) -> Vec<&'static str> {
    let mut cols = Vec::new();
    for d in by.dims() {
        match d {
            Dimension::Day => cols.push("day"),
            Dimension::Clinic => cols.extend(["clinic_code", "clinic_name"]),
            Dimension::Channel => cols.extend(["channel_code", "channel"]),
            Dimension::Step => cols.extend(["step_code", "step"]),
            Dimension::Outcome => cols.push("outcome"),
        }
    }
    cols.push("uses");
    cols
}

impl CardUseReport {
    /// The rows as CSV (RFC 4180: a header row, CRLF line ends, fields
    /// quoted when they hold a comma, a quote or a line break), with the
    /// columns of the JSON rows; a channel or step not given is empty.
    pub fn to_csv(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let cols = csv_columns(self.grouping);
        // Writing to a Vec cannot fail.
        let _ = w.write_record(&cols);
        for r in &self.rows {
            let mut rec: Vec<String> = Vec::with_capacity(cols.len());
            for d in self.grouping.dims() {
                match d {
                    Dimension::Day => rec.push(r.day.map(|d| d.to_string()).unwrap_or_default()),
                    Dimension::Clinic => {
                        rec.push(r.clinic_code.clone().unwrap_or_default());
                        rec.push(r.clinic_name.clone().unwrap_or_default());
                    }
                    Dimension::Channel => {
                        let c = r.channel.flatten();
                        rec.push(c.map(Channel::national_code).unwrap_or_default().into());
                        rec.push(c.map(Channel::as_str).unwrap_or_default().into());
                    }
                    Dimension::Step => {
                        let s = r.step.flatten();
                        rec.push(s.map(Step::national_code).unwrap_or_default().into());
                        rec.push(s.map(Step::as_str).unwrap_or_default().into());
                    }
                    Dimension::Outcome => rec.push(r.outcome.clone().unwrap_or_default()),
                }
            }
            rec.push(r.uses.to_string());
            let _ = w.write_record(&rec);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// What the card office's dashboard shows for a period.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub period: Period,
    /// Cards ever issued, and active now (not for the period: a card's
    /// state has no history in these counts).
    pub cards_issued: i64,
    pub cards_active: i64,
    pub uses: i64,
    pub refused: i64,
    /// Every day of the period, with its uses (0 included).
    pub by_day: Vec<(NaiveDate, i64)>,
    /// Busiest first.
    pub by_clinic: Vec<CardUseRow>,
    pub by_channel: Vec<CardUseRow>,
    /// Busiest first.
    pub by_step: Vec<CardUseRow>,
    /// Refusals by reason, most frequent first.
    pub refusals: Vec<CardUseRow>,
}

/// Channels in the order of their national codes, not given last.
fn in_code_order(mut rows: Vec<CardUseRow>) -> Vec<CardUseRow> {
    rows.sort_by_key(|r| {
        r.channel
            .flatten()
            .map(Channel::national_code)
            .unwrap_or("~")
    });
    rows
}

fn busiest_first(mut rows: Vec<CardUseRow>) -> Vec<CardUseRow> {
    rows.sort_by_key(|r| std::cmp::Reverse(r.uses));
    rows
}

/// The dashboard's figures: one grouped read of the daily counts per chart.
pub fn dashboard(conn: &mut DbConnection, period: Period) -> Result<Dashboard, StoreError> {
    let (cards_issued, cards_active) = cards::counts(conn)?;
    let by = |conn: &mut DbConnection, d: Dimension| card_use(conn, period, Grouping::of(&[d]));
    let days = by(conn, Dimension::Day)?;
    let per_day: HashMap<NaiveDate, i64> = days
        .rows
        .iter()
        .filter_map(|r| r.day.map(|d| (d, r.uses)))
        .collect();
    let outcomes = by(conn, Dimension::Outcome)?;
    let (valid, refusals): (Vec<CardUseRow>, Vec<CardUseRow>) = outcomes
        .rows
        .into_iter()
        .partition(|r| r.outcome.as_deref() == Some("valid"));
    let refused = refusals.iter().map(|r| r.uses).sum();
    drop(valid);
    Ok(Dashboard {
        period,
        cards_issued,
        cards_active,
        uses: days.total,
        refused,
        by_day: period
            .days()
            .map(|d| (d, per_day.get(&d).copied().unwrap_or(0)))
            .collect(),
        by_clinic: busiest_first(by(conn, Dimension::Clinic)?.rows),
        by_channel: in_code_order(by(conn, Dimension::Channel)?.rows),
        by_step: busiest_first(by(conn, Dimension::Step)?.rows),
        refusals: busiest_first(refusals),
    })
}
