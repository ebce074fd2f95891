//! Card-use monitoring (用卡监测): the step of care a card is used for, and
//! the questions the card office asks of the figures (which days, grouped by
//! what). The national codes of steps and channels are in docs/monitoring.md
//! with their sources.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Serialize;

use super::{Channel, Choice, DomainError};

/// The step of care (就诊环节) a card was used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// 挂号
    Registration,
    /// 诊断
    Diagnosis,
    /// 取药
    Dispensing,
    /// 检查
    Examination,
    /// 缴费
    Payment,
    /// 开方
    Prescription,
    /// 手术
    Surgery,
    /// 其他
    Other,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Registration,
        Step::Diagnosis,
        Step::Dispensing,
        Step::Examination,
        Step::Payment,
        Step::Prescription,
        Step::Surgery,
        Step::Other,
    ];

    /// The name in the API (`registration`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Registration => "registration",
            Step::Diagnosis => "diagnosis",
            Step::Dispensing => "dispensing",
            Step::Examination => "examination",
            Step::Payment => "payment",
            Step::Prescription => "prescription",
            Step::Surgery => "surgery",
            Step::Other => "other",
        }
    }

    /// The national card-use monitoring code (API-2.md).
    pub fn national_code(self) -> &'static str {
        match self {
            Step::Registration => "010101",
            Step::Diagnosis => "010102",
            Step::Dispensing => "010103",
            Step::Examination => "010104",
            Step::Payment => "010105",
            Step::Prescription => "010106",
            Step::Surgery => "010107",
            Step::Other => "000000",
        }
    }
}

impl FromStr for Step {
    type Err = DomainError;
    /// The API name; the national code is not accepted here, so that one
    /// value has one spelling in requests.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Step::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DomainError::Unknown(Choice::Step))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Channel {
    /// The national card-use monitoring code of the channel (API-2.md).
    pub fn national_code(self) -> &'static str {
        match self {
            Channel::Window => "0100",
            Channel::Kiosk => "0200",
            Channel::Doctor => "0300",
            Channel::App => "0400",
        }
    }
}

/// What the card-use figures can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Day,
    Clinic,
    Channel,
    Step,
    Outcome,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Dimension::Day,
        Dimension::Clinic,
        Dimension::Channel,
        Dimension::Step,
        Dimension::Outcome,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Day => "day",
            Dimension::Clinic => "clinic",
            Dimension::Channel => "channel",
            Dimension::Step => "step",
            Dimension::Outcome => "outcome",
        }
    }
}

/// A set of dimensions, always in the order of [`Dimension::ALL`]; empty
/// means one total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grouping([bool; 5]);

impl Grouping {
    /// Every dimension.
    pub fn all() -> Grouping {
        Grouping([true; 5])
    }

    pub fn of(dims: &[Dimension]) -> Grouping {
        let mut g = Grouping::default();
        for d in dims {
            g.0[*d as usize] = true;
        }
        g
    }

    /// A comma-separated list such as `day,clinic`; empty text is no
    /// grouping. An unknown or repeated name is refused.
    pub fn parse(text: &str) -> Result<Grouping, DomainError> {
        let mut g = Grouping::default();
        if text.trim().is_empty() {
            return Ok(g);
        }
        for name in text.split(',') {
            let d = Dimension::ALL
                .into_iter()
                .find(|d| d.as_str() == name.trim())
                .ok_or(DomainError::Unknown(Choice::Dimension))?;
            if g.0[d as usize] {
                return Err(DomainError::RepeatedDimension);
            }
            g.0[d as usize] = true;
        }
        Ok(g)
    }

    pub fn has(self, d: Dimension) -> bool {
        self.0[d as usize]
    }

    /// The chosen dimensions in their fixed order.
    pub fn dims(self) -> Vec<Dimension> {
        Dimension::ALL
            .into_iter()
            .filter(|d| self.has(*d))
            .collect()
    }
}

impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.dims().into_iter().map(Dimension::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// Why a period was refused; each has its own API code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("`from` and `to` must be dates, YYYY-MM-DD")]
    Unparseable,
    #[error("`to` must be on or after `from`")]
    Reversed,
    #[error("a period is at most {} days", Period::MAX_DAYS)]
    TooLong,
}

/// Whole days from `from` to `to`, both included, at most
/// [`Period::MAX_DAYS`] long: one query never reads more than a year of
/// daily figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

impl Period {
    /// A leap year's days: the longest report the national monitoring asks
    /// for is a year.
    pub const MAX_DAYS: i64 = 366;

    pub fn parse(from: &str, to: &str) -> Result<Period, PeriodError> {
        let date = |s: &str| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| PeriodError::Unparseable)
        };
        Period::new(date(from)?, date(to)?)
    }

    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Period, PeriodError> {
        if to < from {
            return Err(PeriodError::Reversed);
        }
        if (to - from).num_days() + 1 > Period::MAX_DAYS {
            return Err(PeriodError::TooLong);
        }
        Ok(Period { from, to })
    }

    pub fn from(self) -> NaiveDate {
        self.from
    }

    pub fn to(self) -> NaiveDate {
        self.to
    }

    /// Every day of the period, in order.
    pub fn days(self) -> impl Iterator<Item = NaiveDate> {
        self.from.iter_days().take_while(move |d| *d <= self.to)
    }
}

/// The monitoring day of a moment: the calendar day in China Standard Time
/// (UTC+8, no daylight saving), the day a card office counts in. Stored
/// times are UTC.
pub fn monitoring_day(at_utc: chrono::NaiveDateTime) -> NaiveDate {
    (at_utc + chrono::Duration::hours(MONITORING_UTC_OFFSET_HOURS)).date()
}

/// See [`monitoring_day`].
pub const MONITORING_UTC_OFFSET_HOURS: i64 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_with_their_codes() {
        let mut codes = std::collections::HashSet::new();
        for s in Step::ALL {
            assert_eq!(s.as_str().parse::<Step>().unwrap(), s);
            assert_eq!(s.national_code().len(), 6);
            assert!(codes.insert(s.national_code()));
        }
        assert_eq!(Step::Registration.national_code(), "010101");
        assert_eq!(Step::Other.national_code(), "000000");
        let e = "010101".parse::<Step>().unwrap_err();
        assert_eq!((e.field(), e.reason()), ("step", "unknown_step"));
    }

    #[test]
    fn groupings_parse_in_fixed_order() {
        let g = Grouping::parse("outcome,day").unwrap();
        assert_eq!(g.dims(), vec![Dimension::Day, Dimension::Outcome]);
        assert_eq!(g.to_string(), "day,outcome");
        assert_eq!(Grouping::parse("").unwrap(), Grouping::default());
        assert_eq!(
            Grouping::parse("day,clinic,channel,step,outcome").unwrap(),
            Grouping::all()
        );
        for bad in ["week", "day,day", "day,", ",", "Day"] {
            assert!(Grouping::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_are_checked() {
        assert!(Period::parse("2026-01-01", "2026-12-31").is_ok());
        assert!(
            Period::parse("2024-01-01", "2024-12-31").is_ok(),
            "leap year"
        );
        assert_eq!(
            Period::parse("2026-01-01", "2027-01-02"),
            Err(PeriodError::TooLong)
        );
        assert_eq!(
            Period::parse("2026-02-01", "2026-01-31"),
            Err(PeriodError::Reversed)
        );
        for bad in ["2026-02-30", "yesterday", ""] {
            assert_eq!(
                Period::parse(bad, "2026-01-01"),
                Err(PeriodError::Unparseable),
                "{bad}"
            );
        }
        let p = Period::parse("2026-03-30", "2026-04-02").unwrap();
        assert_eq!(p.days().count(), 4);
    }

    #[test]
    fn monitoring_days_are_china_standard_time() {
        let at = |s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(monitoring_day(at("2026-12-01 15:59:59")), d("2026-12-01"));
        assert_eq!(monitoring_day(at("2026-12-01 16:00:00")), d("2026-12-02"));
    }
}
