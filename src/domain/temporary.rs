//! Temporary cards (临时卡, issue 14): what a clinic knows of a patient who
//! arrives without any document (an emergency, an unconscious patient): the
//! name if anyone knows it, the sex, an approximate birth year, a note. The
//! rules of the card itself (only at the issuing clinic, only until
//! `valid_until`) are [`TemporaryTerms::judge`].

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use super::{trimmed_text, BirthYearRefusal, ClinicId, DomainError, PersonName, TextField};

/// The name of a patient with a temporary card: known, or not (yet).
#[derive(Clone, PartialEq, Eq)]
pub enum PatientName {
    Known(PersonName),
    /// Nobody knows it: shown as [`PatientName::UNKNOWN_ZH`] (无名氏, the
    /// name Chinese hospitals give an unidentified patient).
    Unknown,
}

impl PatientName {
    /// How an unknown name is written for people (and in `residents.name`,
    /// whose column is NOT NULL); never compared with: whether a name is
    /// known is a stored flag.
    pub const UNKNOWN_ZH: &'static str = "无名氏";

    /// No name, `null` or a blank one: unknown; anything else must be a
    /// [`PersonName`].
    pub fn parse(text: Option<&str>) -> Result<PatientName, DomainError> {
        match text.map(str::trim) {
            None | Some("") => Ok(PatientName::Unknown),
            Some(t) => PersonName::parse(t).map(PatientName::Known),
        }
    }

    /// The name as shown and stored.
    pub fn display(&self) -> &str {
        match self {
            PatientName::Known(n) => n.as_str(),
            PatientName::Unknown => Self::UNKNOWN_ZH,
        }
    }

    pub fn is_known(&self) -> bool {
        matches!(self, PatientName::Known(_))
    }

    /// The name as a [`PersonName`], for the residents table.
    pub fn to_person_name(&self) -> PersonName {
        match self {
            PatientName::Known(n) => n.clone(),
            PatientName::Unknown => PersonName::from_trusted(Self::UNKNOWN_ZH),
        }
    }
}

impl fmt::Debug for PatientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatientName::Known(_) => f.write_str("PatientName::Known([redacted])"),
            PatientName::Unknown => f.write_str("PatientName::Unknown"),
        }
    }
}

/// An approximate year of birth: 1900 to this year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BirthYear(i32);

impl BirthYear {
    pub const EARLIEST: i32 = 1900;

    /// `year` as given, checked against `today`'s year.
    pub fn parse(year: i64, today: NaiveDate) -> Result<BirthYear, DomainError> {
        if year < Self::EARLIEST as i64 {
            return Err(DomainError::BirthYear(BirthYearRefusal::Before1900));
        }
        if year > today.year() as i64 {
            return Err(DomainError::BirthYear(BirthYearRefusal::InTheFuture));
        }
        Ok(BirthYear(year as i32))
    }

    /// A stored year (trusted).
    pub fn from_stored(year: i32) -> BirthYear {
        BirthYear(year)
    }

    pub fn get(self) -> i32 {
        self.0
    }

    /// Age in whole years on `today`, give or take one (the year is approximate).
    pub fn approximate_age(self, today: NaiveDate) -> i32 {
        today.year() - self.0
    }
}

/// The stand-in for `residents.birth_date` (a NOT NULL column): 1 January
/// of the approximate year, or of the year of issue when even that is not
/// known. Views of a temporary card's resident show the year, not this.
pub fn stand_in_birth_date(year: Option<BirthYear>, issued: NaiveDate) -> NaiveDate {
    let y = year.map(BirthYear::get).unwrap_or(issued.year());
    NaiveDate::from_ymd_opt(y, 1, 1).unwrap_or(issued)
}

/// The clinic's note on a temporary card (where the patient was found, what
/// they wore): 1-200 characters, no control characters. Personal data: it is
/// stored sealed and shown nowhere yet (kept for the merge into the real record).
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryNote(String);

impl TemporaryNote {
    pub const MAX_CHARS: usize = 200;

    /// `None` or blank: no note.
    pub fn parse(text: Option<&str>) -> Result<Option<TemporaryNote>, DomainError> {
        match text.map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => {
                trimmed_text(TextField::Note, t, Self::MAX_CHARS).map(|n| Some(TemporaryNote(n)))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TemporaryNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TemporaryNote([redacted])")
    }
}

/// What makes a card temporary: where and until when it is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporaryTerms {
    pub issuing_clinic: ClinicId,
    pub valid_until: NaiveDateTime,
}

/// Why a temporary card is refused (the verification reasons
/// `card_restricted` and `card_expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporaryRefusal {
    /// Another clinic than the issuing one.
    Restricted,
    /// Past `valid_until`.
    Expired,
}

impl TemporaryTerms {
    /// The rule, in this order: another clinic learns only that the card is
    /// not for it (not whether it is still in date); the issuing clinic
    /// learns that it expired. `valid_until` itself is still good.
    pub fn judge(&self, clinic: ClinicId, now: NaiveDateTime) -> Result<(), TemporaryRefusal> {
        if clinic != self.issuing_clinic {
            return Err(TemporaryRefusal::Restricted);
        }
        if now > self.valid_until {
            return Err(TemporaryRefusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TextRefusal;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn names_known_or_not() {
        assert_eq!(PatientName::parse(None).unwrap(), PatientName::Unknown);
        assert_eq!(
            PatientName::parse(Some("  ")).unwrap(),
            PatientName::Unknown
        );
        assert_eq!(PatientName::Unknown.display(), "无名氏");
        assert!(!PatientName::Unknown.is_known());
        let n = PatientName::parse(Some(" 李四 ")).unwrap();
        assert!(n.is_known());
        assert_eq!(n.display(), "李四");
        assert_eq!(
            PatientName::parse(Some(&"张".repeat(65)))
                .unwrap_err()
                .field(),
            "name"
        );
        assert!(!format!("{n:?}").contains("李四"));
    }

    #[test]
    fn birth_years_are_bounded() {
        let today = d(2026, 12, 2);
        assert_eq!(BirthYear::parse(1980, today).unwrap().get(), 1980);
        assert_eq!(
            BirthYear::parse(2026, today)
                .unwrap()
                .approximate_age(today),
            0
        );
        assert_eq!(
            BirthYear::parse(1899, today).unwrap_err().reason(),
            "before_1900"
        );
        assert_eq!(
            BirthYear::parse(2027, today).unwrap_err().reason(),
            "in_the_future"
        );
        assert_eq!(
            BirthYear::parse(i64::MIN, today).unwrap_err().field(),
            "birth_year"
        );
        assert_eq!(
            stand_in_birth_date(Some(BirthYear(1980)), today),
            d(1980, 1, 1)
        );
        assert_eq!(stand_in_birth_date(None, today), d(2026, 1, 1));
    }

    #[test]
    fn notes() {
        assert_eq!(TemporaryNote::parse(None).unwrap(), None);
        assert_eq!(TemporaryNote::parse(Some(" ")).unwrap(), None);
        let n = TemporaryNote::parse(Some(" 120 送来 ")).unwrap().unwrap();
        assert_eq!(n.as_str(), "120 送来");
        assert_eq!(
            TemporaryNote::parse(Some(&"x".repeat(201))).unwrap_err(),
            DomainError::Text(TextField::Note, TextRefusal::TooLong)
        );
        assert!(TemporaryNote::parse(Some(&"字".repeat(200))).is_ok());
        assert_eq!(
            TemporaryNote::parse(Some("a\u{7}b")).unwrap_err().reason(),
            "control_character"
        );
    }

    #[test]
    fn the_terms() {
        let issuer = ClinicId::new();
        let other = ClinicId::new();
        let until = d(2026, 12, 31).and_hms_opt(12, 0, 0).unwrap();
        let t = TemporaryTerms {
            issuing_clinic: issuer,
            valid_until: until,
        };
        assert_eq!(t.judge(issuer, until), Ok(()));
        let later = until + chrono::Duration::seconds(1);
        assert_eq!(t.judge(issuer, later), Err(TemporaryRefusal::Expired));
        assert_eq!(t.judge(other, until), Err(TemporaryRefusal::Restricted));
        // Another clinic is never told that the card is out of date.
        assert_eq!(t.judge(other, later), Err(TemporaryRefusal::Restricted));
    }

    proptest! {
        #[test]
        fn any_year_parses_or_names_the_field(y in any::<i64>()) {
            match BirthYear::parse(y, d(2026, 6, 1)) {
                Ok(b) => prop_assert!((1900..=2026).contains(&b.get())),
                Err(e) => prop_assert_eq!(e.field(), "birth_year"),
            }
        }
    }
}
