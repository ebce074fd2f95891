use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{trimmed_text, Choice, DomainError, PhoneRefusal, TextField};

/// Sex as read from the national ID number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// Stable text form, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

impl FromStr for Sex {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "male" => Ok(Sex::Male),
            "female" => Ok(Sex::Female),
            _ => Err(DomainError::Unknown(Choice::Sex)),
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's name as written on their ID card: 1-64 characters after
/// trimming, any script (张三, 欧阳娜娜, 阿依古丽·买买提), no control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let name = trimmed_text(TextField::Name, text, 64)?;
        // Bidirectional overrides and isolates can make a name display as
        // another one (U+202E turns "ABC" into "CBA" on screen).
        if name.chars().any(|c| {
            matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        }) {
            return Err(DomainError::NameBidiControl);
        }
        Ok(PersonName(name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name this crate wrote itself (无名氏 for an unknown patient).
    pub(super) fn from_trusted(text: &'static str) -> Self {
        PersonName(text.to_owned())
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mainland mobile number, normalised to its 11 digits (`1[3-9]` then 9
/// digits); a `+86`/`86` prefix, spaces and dashes are accepted on input.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MobileNumber(String);

impl MobileNumber {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let compact: String = text
            .trim()
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        let digits = match digits.strip_prefix("86") {
            Some(rest) if rest.len() == 11 => rest,
            _ if compact.starts_with('+') => {
                return Err(DomainError::Phone(PhoneRefusal::NotMainland));
            }
            _ => digits,
        };
        let b = digits.as_bytes();
        if b.len() != 11 || !b.iter().all(u8::is_ascii_digit) {
            return Err(DomainError::Phone(PhoneRefusal::Not11Digits));
        }
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(DomainError::Phone(PhoneRefusal::NotAMobilePrefix));
        }
        Ok(MobileNumber(digits.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `138****1234`: enough to confirm with the person or to tell two
/// numbers apart, not to call or copy. Everything shorter than 7 characters
/// is starred whole.
pub fn mask_phone(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

impl fmt::Display for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How FHIR's `family` and `given` are read from a name, which the registry
/// stores whole, as written on the ID card. A name written with spaces
/// (a foreigner's, family name first as Chinese documents write it: `MOHR
/// ALICE`) splits at the spaces. A Chinese name has no space, and where its
/// surname ends (张 or 欧阳) cannot be told without a surname list, so it is
/// not split: `None`.
pub fn name_parts(name: &str) -> Option<(&str, Vec<&str>)> {
    let mut words = name.split_whitespace();
    let family = words.next()?;
    let given: Vec<&str> = words.collect();
    (!given.is_empty()).then_some((family, given))
}

/// PDQm `family`: the family name starts with `value` (equals it with
/// `:exact`). For a name that is not split, the name starts with `value`
/// either way: a surname is where a Chinese name begins. Case-sensitive.
pub fn family_matches(name: &str, value: &str, exact: bool) -> bool {
    match name_parts(name) {
        Some((family, _)) if exact => family == value,
        Some((family, _)) => family.starts_with(value),
        None => name.starts_with(value),
    }
}

/// PDQm `given`: a given name starts with `value` (equals it with `:exact`).
/// For a name that is not split, what follows a one- or two-character
/// surname does.
pub fn given_matches(name: &str, value: &str, exact: bool) -> bool {
    let check = |g: &str| {
        if exact {
            g == value
        } else {
            g.starts_with(value)
        }
    };
    match name_parts(name) {
        Some((_, given)) => given.into_iter().any(check),
        None => name
            .char_indices()
            .skip(1)
            .take(2)
            .any(|(i, _)| check(&name[i..])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_bidi_overrides() {
        assert!(PersonName::parse("阿依古丽·买买提").is_ok());
        assert_eq!(
            PersonName::parse("张\u{202E}三").unwrap_err().reason(),
            "bidi_control"
        );
        assert!(PersonName::parse("\u{2067}李四").is_err());
    }
    use proptest::prelude::*;

    #[test]
    fn names_in_any_script_are_kept_trimmed() {
        for n in ["张三", "欧阳娜娜", "阿依古丽·买买提", "Zhang San"] {
            assert_eq!(PersonName::parse(&format!("  {n} ")).unwrap().as_str(), n);
        }
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse("张\n三").is_err());
        assert!(PersonName::parse(&"张".repeat(64)).is_ok());
        assert!(PersonName::parse(&"张".repeat(65)).is_err());
    }

    #[test]
    fn mobile_numbers_are_normalised() {
        for t in [
            "13812345678",
            "+86 138 1234 5678",
            "86-138-1234-5678",
            " 138-1234-5678 ",
        ] {
            assert_eq!(
                MobileNumber::parse(t).unwrap().as_str(),
                "13812345678",
                "{t}"
            );
        }
        for t in [
            "12812345678",
            "1381234567",
            "138123456789",
            "+1 138 1234 5678",
            "1381234567a",
            "",
        ] {
            assert!(MobileNumber::parse(t).is_err(), "{t}");
        }
    }

    #[test]
    fn sex_text_round_trip() {
        for s in [Sex::Male, Sex::Female] {
            assert_eq!(s.as_str().parse::<Sex>().unwrap(), s);
        }
        assert!("x".parse::<Sex>().is_err());
    }

    #[test]
    fn family_and_given_from_whole_names() {
        assert_eq!(name_parts("MOHR ALICE"), Some(("MOHR", vec!["ALICE"])));
        assert_eq!(name_parts("张三"), None);
        assert!(family_matches("MOHR ALICE", "MO", false));
        assert!(family_matches("MOHR ALICE", "MOHR", true));
        assert!(!family_matches("MOHR ALICE", "MO", true));
        assert!(!family_matches("MOHR ALICE", "ALICE", false));
        assert!(family_matches("欧阳娜娜", "欧阳", true));
        assert!(family_matches("张三", "张", false));
        assert!(!family_matches("张三", "三", false));
        assert!(given_matches("MOHR ALICE", "AL", false));
        assert!(!given_matches("MOHR ALICE", "AL", true));
        assert!(given_matches("欧阳娜娜", "娜娜", true));
        assert!(given_matches("张三丰", "三丰", true));
        assert!(!given_matches("张三丰", "张", false));
    }

    proptest! {
        #[test]
        fn valid_mobiles_round_trip(second in 3u8..=9, rest in "[0-9]{9}") {
            let n = format!("1{second}{rest}");
            let m = MobileNumber::parse(&format!("+86{n}")).unwrap();
            prop_assert_eq!(m.as_str(), n.as_str());
        }

        #[test]
        fn names_never_panic(s in "\\PC{0,80}") {
            if let Ok(n) = PersonName::parse(&s) {
                prop_assert!(!n.as_str().is_empty() && n.as_str().chars().count() <= 64);
            }
        }
    }
}

/// Personal data stays out of `{:?}` output (and so out of log lines).
macro_rules! redacted_debug {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "([redacted])"))
            }
        }
    )*};
}

redacted_debug!(PersonName, MobileNumber);
