use std::fmt;

use chrono::{Datelike, NaiveDate, Utc};

use super::{DomainError, NationalIdRefusal, Sex};

/// ISO 7064 MOD 11-2 weights: 2^(17-i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const CHECK: [u8; 11] = *b"10X98765432";
/// The first two digits of every province-level division of GB/T 2260-2007
/// (the 31 provinces, autonomous regions and municipalities, Taiwan 71, Hong
/// Kong 81, Macao 82), as listed by the National Bureau of Statistics
/// (县及县以上行政区划代码, www.gov.cn/test/2011-08/22/content_1930111.htm).
/// The residence permits of Hong Kong, Macao and Taiwan residents (830000 for
/// Taiwan) are another document type, not a 居民身份证号. See docs/identity.md.
const PROVINCES: [&[u8; 2]; 34] = [
    b"11", b"12", b"13", b"14", b"15", b"21", b"22", b"23", b"31", b"32", b"33", b"34", b"35",
    b"36", b"37", b"41", b"42", b"43", b"44", b"45", b"46", b"50", b"51", b"52", b"53", b"54",
    b"61", b"62", b"63", b"64", b"65", b"71", b"81", b"82",
];
/// Characters of the number a masked form shows: the province and the city
/// (positions 1-4), which a reader who knows the region has anyway.
const MASK_VISIBLE: usize = 4;
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
        Self::parse_checked(text, today, true)
    }

    /// A number read back from the store: every rule but the province check,
    /// which came later, so that residents registered before it stay readable
    /// (a refusal here would be a 500 on every read of them).
    pub fn parse_stored(text: &str) -> Result<Self, DomainError> {
        // Checked against a far-future "today": it was valid when stored.
        let far = NaiveDate::from_ymd_opt(9999, 12, 31).expect("valid date");
        Self::parse_checked(text, far, false)
    }

    fn parse_checked(text: &str, today: NaiveDate, region: bool) -> Result<Self, DomainError> {
        let t = text.trim();
        if t.len() != 18 || !t.is_ascii() {
            return Err(DomainError::NationalId(NationalIdRefusal::WrongLength));
        }
        let bytes = t.as_bytes();
        if !bytes[..17].iter().all(u8::is_ascii_digit) {
            return Err(DomainError::NationalId(NationalIdRefusal::NotDigits));
        }
        let last = bytes[17].to_ascii_uppercase();
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(DomainError::NationalId(NationalIdRefusal::NotDigits));
        }
        if check_char(&bytes[..17]) != last {
            return Err(DomainError::NationalId(NationalIdRefusal::BadCheckDigit));
        }
        if region && !PROVINCES.iter().any(|p| bytes[..2] == p[..]) {
            return Err(DomainError::NationalId(NationalIdRefusal::UnknownRegion));
        }
        let birth =
            birth_date_of(bytes).ok_or(DomainError::NationalId(NationalIdRefusal::BadBirthDate))?;
        if birth > today {
            return Err(DomainError::NationalId(
                NationalIdRefusal::BirthDateInFuture,
            ));
        }
        if birth.year() < EARLIEST_BIRTH_YEAR {
            return Err(DomainError::NationalId(
                NationalIdRefusal::BirthDateTooEarly,
            ));
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

    /// The masked form every answer without the `pii` scope shows (API,
    /// kiosk, portal): the first 4 characters, then 14 `*`. The one place the
    /// rule lives.
    ///
    /// Why so much is hidden: answers also carry the birth date and sex, and
    /// a reader may know the 6-digit region. With those, only the 3-digit
    /// sequence (its last digit's parity fixed by sex: 500 choices) and the
    /// check character (fixed by the rest) are left, so exactly 500 valid
    /// numbers remain only if every one of positions 15-18 is hidden. The
    /// old mask showed them (`1101**********002X`) and left one number to a
    /// reader who knows the region.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// [`NationalId::masked`] of a normalised 18-character number.
fn mask(number: &str) -> String {
    let visible: String = number.chars().take(MASK_VISIBLE).collect();
    let hidden = number.chars().count().saturating_sub(MASK_VISIBLE);
    format!("{visible}{}", "*".repeat(hidden))
}

/// The MOD 11-2 check character of the first 17 digits.
pub(super) fn check_char(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

pub(super) fn birth_date_of(bytes: &[u8]) -> Option<NaiveDate> {
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
        assert_eq!(a.masked(), "1101**************");
        let b = NationalId::parse("440524188001010014").unwrap();
        assert_eq!(b.birth_date(), day(1880, 1, 1));
        assert_eq!(b.sex(), Sex::Male);
        assert_eq!(b.masked(), "4405**************");
    }

    #[test]
    fn stored_numbers_of_any_region_stay_readable() {
        let old = make(990101, day(1949, 12, 31), 2);
        assert!(NationalId::parse(&old).is_err());
        assert_eq!(NationalId::parse_stored(&old).unwrap().as_str(), old);
        assert!(NationalId::parse_stored("110105194912310021").is_err());
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
            assert!(s.contains("1101**************"));
        }
    }

    #[test]
    fn refusals_carry_a_reason() {
        let r = |t: &str| {
            NationalId::parse_at(t, day(2026, 11, 23))
                .unwrap_err()
                .reason()
        };
        assert_eq!(r("1101051949123100"), "wrong_length");
        assert_eq!(r("11010519491231002Y"), "not_digits");
        assert_eq!(r("1101051949123100２X"), "wrong_length");
        assert_eq!(r("110105194912310021"), "bad_check_digit");
        // 10 and 99 are no province of GB/T 2260; 83 (Taiwan residents'
        // residence permits) is another document.
        for region in [100105, 990101, 830000, 720101, 470101] {
            assert_eq!(r(&make(region, day(1949, 12, 31), 2)), "unknown_region");
        }
        for region in [110105, 650102, 710000, 810000, 820000] {
            assert!(
                NationalId::parse_at(&make(region, day(1949, 12, 31), 2), day(2026, 11, 23))
                    .is_ok()
            );
        }
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
        (
            prop::sample::select(PROVINCES.to_vec()),
            0u32..=9999,
            0i64..(125 * 365),
            0u32..=999,
        )
            .prop_map(|(p, rest, d, s)| {
                let province: u32 = std::str::from_utf8(p).unwrap().parse().unwrap();
                (
                    province * 10_000 + rest,
                    day(1900, 1, 1) + chrono::Duration::days(d),
                    s,
                )
            })
    }

    /// How many valid numbers agree with everything one answer without `pii`
    /// discloses (the masked form, birth date, sex), for a reader who also
    /// knows the 6-digit region: every sequence and check character tried,
    /// each candidate judged by the parser itself.
    fn consistent(masked: &str, region: &str, birth: NaiveDate, sex: Sex) -> usize {
        let mut n = 0;
        for seq in 0..1000 {
            for c in b"0123456789X" {
                let text = format!("{region}{}{seq:03}{}", birth.format("%Y%m%d"), *c as char);
                let agrees = masked
                    .bytes()
                    .zip(text.bytes())
                    .all(|(m, t)| m == b'*' || m == t);
                if !agrees {
                    continue;
                }
                if let Ok(id) = NationalId::parse_at(&text, day(2026, 11, 23)) {
                    if id.birth_date() == birth && id.sex() == sex {
                        n += 1;
                    }
                }
            }
        }
        n
    }

    #[test]
    fn the_old_mask_gave_the_number_away_and_the_new_one_does_not() {
        let id = NationalId::parse("11010519491231002X").unwrap();
        let old = format!(
            "{}{}{}",
            &id.as_str()[..4],
            "*".repeat(10),
            &id.as_str()[14..]
        );
        let (b, s) = (id.birth_date(), id.sex());
        assert_eq!(consistent(&old, "110105", b, s), 1);
        assert_eq!(consistent(&id.masked(), "110105", b, s), 500);
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
            prop_assert!(id.masked()[4..].bytes().all(|b| b == b'*'));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The privacy rule of API-2.md, over many numbers: at least 500
        /// valid numbers stay consistent with the mask, birth date and sex.
        #[test]
        fn at_least_500_numbers_fit_any_masked_answer((region, birth, seq) in valid_parts()) {
            let text = make(region, birth, seq);
            let id = NationalId::parse_at(&text, day(2026, 11, 23)).unwrap();
            let n = consistent(&id.masked(), &text[..6], id.birth_date(), id.sex());
            prop_assert!(n >= 500, "{n} numbers fit {}", id.masked());
        }
    }

    proptest! {
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
