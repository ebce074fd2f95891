use std::fmt;

use chrono::{Datelike, NaiveDate, Utc};

use super::{DomainError, Sex};

const FIELD: &str = "national_id";
/// ISO 7064 MOD 11-2 weights: 2^(17-i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const CHECK: [u8; 11] = *b"10X98765432";
/// Birth years before this are refused. 1800, not 1900: the standard's own
/// example number, 440524188001010014, encodes a birth in 1880.
const EARLIEST_BIRTH_YEAR: i32 = 1800;

/// A resident identity card number (居民身份证号, GB 11643-1999): 6-digit
/// region, 8-digit birth date, 3-digit sequence (odd for men), MOD 11-2 check
/// character. Held normalised (upper-case `X`). `Debug` and `Display` print the
/// masked form only, so the number cannot leak through a log line; use
/// [`NationalId::as_str`] where the full number is really wanted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NationalId(String);

impl NationalId {
    /// Parses against today's (UTC) date.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        Self::parse_at(text, Utc::now().date_naive())
    }

    /// Parses with an explicit "today", for tests and for imports of old data.
    pub fn parse_at(text: &str, today: NaiveDate) -> Result<Self, DomainError> {
        let t = text.trim();
        if t.len() != 18 || !t.is_ascii() {
            return Err(DomainError::new(FIELD, "wrong_length"));
        }
        let bytes = t.as_bytes();
        if !bytes[..17].iter().all(u8::is_ascii_digit) {
            return Err(DomainError::new(FIELD, "not_digits"));
        }
        let last = bytes[17].to_ascii_uppercase();
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(DomainError::new(FIELD, "not_digits"));
        }
        if check_char(&bytes[..17]) != last {
            return Err(DomainError::new(FIELD, "bad_check_digit"));
        }
        let birth = birth_date_of(bytes).ok_or(DomainError::new(FIELD, "bad_birth_date"))?;
        if birth > today {
            return Err(DomainError::new(FIELD, "birth_date_in_future"));
        }
        if birth.year() < EARLIEST_BIRTH_YEAR {
            return Err(DomainError::new(FIELD, "birth_date_too_early"));
        }
        let mut normal = t[..17].to_owned();
        normal.push(last as char);
        Ok(NationalId(normal))
    }

    /// The full number. Handle with care: never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The birth date encoded at positions 7-14.
    pub fn birth_date(&self) -> NaiveDate {
        birth_date_of(self.0.as_bytes()).expect("checked when parsed")
    }

    /// Odd 17th digit: male; even: female.
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// First 4 and last 4 characters, the 10 between as `*`: what a clinic
    /// without the `pii` scope sees.
    pub fn masked(&self) -> String {
        format!("{}{}{}", &self.0[..4], "*".repeat(10), &self.0[14..])
    }
}

/// The MOD 11-2 check character of the first 17 digits.
fn check_char(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

fn birth_date_of(bytes: &[u8]) -> Option<NaiveDate> {
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        std::str::from_utf8(&bytes[r]).ok()?.parse().ok()
    };
    NaiveDate::from_ymd_opt(num(6..10)? as i32, num(10..12)?, num(12..14)?)
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalId({})", self.masked())
    }
}

impl fmt::Display for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Builds a valid number from its parts by computing the check character.
    fn make(region: u32, birth: NaiveDate, seq: u32) -> String {
        let body = format!("{region:06}{}{seq:03}", birth.format("%Y%m%d"));
        let c = check_char(body.as_bytes()) as char;
        format!("{body}{c}")
    }

    #[test]
    fn real_examples_parse_with_birth_date_and_sex() {
        let a = NationalId::parse("11010519491231002X").unwrap();
        assert_eq!(a.birth_date(), day(1949, 12, 31));
        assert_eq!(a.sex(), Sex::Female);
        assert_eq!(a.masked(), "1101**********002X");
        let b = NationalId::parse("440524188001010014").unwrap();
        assert_eq!(b.birth_date(), day(1880, 1, 1));
        assert_eq!(b.sex(), Sex::Male);
        assert_eq!(b.masked(), "4405**********0014");
    }

    #[test]
    fn lower_case_x_is_normalised() {
        let a = NationalId::parse("11010519491231002x").unwrap();
        assert_eq!(a.as_str(), "11010519491231002X");
        assert_eq!(a, NationalId::parse(" 11010519491231002X ").unwrap());
    }

    #[test]
    fn debug_and_display_never_print_the_number() {
        let a = NationalId::parse("11010519491231002X").unwrap();
        for s in [format!("{a:?}"), format!("{a}")] {
            assert!(!s.contains("11010519491231002X"), "{s}");
            assert!(s.contains("1101**********002X"));
        }
    }

    #[test]
    fn refusals_carry_a_reason() {
        let r = |t: &str| {
            NationalId::parse_at(t, day(2026, 11, 23))
                .unwrap_err()
                .reason
        };
        assert_eq!(r("1101051949123100"), "wrong_length");
        assert_eq!(r("11010519491231002Y"), "not_digits");
        assert_eq!(r("1101051949123100２X"), "wrong_length");
        assert_eq!(r("110105194912310021"), "bad_check_digit");
        assert_eq!(
            r(&make(110105, day(2026, 11, 24), 1)),
            "birth_date_in_future"
        );
        // 1949-02-30 does not exist.
        let body = "11010519490230002";
        let bad_date = format!("{body}{}", check_char(body.as_bytes()) as char);
        assert_eq!(r(&bad_date), "bad_birth_date");
        assert_eq!(
            r(&make(110105, day(1799, 12, 31), 1)),
            "birth_date_too_early"
        );
        assert!(
            NationalId::parse_at(&make(110105, day(2026, 11, 23), 1), day(2026, 11, 23)).is_ok()
        );
    }

    #[test]
    fn error_message_does_not_repeat_the_input() {
        let e = NationalId::parse("110105194912310021").unwrap_err();
        assert!(!e.to_string().contains("110105194912310021"));
    }

    fn valid_parts() -> impl Strategy<Value = (u32, NaiveDate, u32)> {
        (100000u32..=999999, 0i64..(125 * 365), 0u32..=999)
            .prop_map(|(r, d, s)| (r, day(1900, 1, 1) + chrono::Duration::days(d), s))
    }

    proptest! {
        #[test]
        fn generated_numbers_parse_and_read_back((region, birth, seq) in valid_parts()) {
            let text = make(region, birth, seq);
            let id = NationalId::parse_at(&text, day(2026, 11, 23)).unwrap();
            prop_assert_eq!(id.as_str(), text.as_str());
            prop_assert_eq!(id.birth_date(), birth);
            prop_assert_eq!(id.sex(), if (seq % 10) % 2 == 1 { Sex::Male } else { Sex::Female });
            prop_assert_eq!(id.masked().len(), 18);
            prop_assert_eq!(&id.masked()[..4], &text[..4]);
            prop_assert_eq!(&id.masked()[14..], &text[14..]);
        }

        #[test]
        fn every_single_character_change_is_refused(
            (region, birth, seq) in valid_parts(),
            pos in 0usize..18,
            replacement in prop::sample::select(b"0123456789X".to_vec()),
        ) {
            let text = make(region, birth, seq);
            prop_assume!(text.as_bytes()[pos] != replacement);
            let mut changed = text.clone().into_bytes();
            changed[pos] = replacement;
            let changed = String::from_utf8(changed).unwrap();
            prop_assert!(NationalId::parse_at(&changed, day(2026, 11, 23)).is_err());
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,24}") {
            let _ = NationalId::parse(&s);
        }
    }

    #[test]
    fn every_single_digit_change_of_the_real_examples_is_refused() {
        for text in ["11010519491231002X", "440524188001010014"] {
            for pos in 0..18 {
                for c in b"0123456789X" {
                    let mut b = text.as_bytes().to_vec();
                    if b[pos] == *c {
                        continue;
                    }
                    b[pos] = *c;
                    let s = String::from_utf8(b).unwrap();
                    assert!(NationalId::parse(&s).is_err(), "{pos} {c}");
                }
            }
        }
    }
}
