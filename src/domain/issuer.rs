//! A federated issuer: the 6-digit GB/T 2260 code of its city and the name
//! people see. Parsed once at the edge (settings, trust list, peer answers).

use std::fmt;

use super::{trimmed_text, Choice, DomainError, IssuerRefusal, TextField};

/// The issuer code of a federated deployment: six ASCII digits, a GB/T 2260
/// administrative division code (e.g. `370100`, Jinan). The first two digits
/// are a province-level division (11-82 in GB/T 2260: 11 Beijing ... 65
/// Xinjiang, 71 Taiwan, 81 Hong Kong, 82 Macao); `000000` is no division.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerCode(String);

impl IssuerCode {
    pub fn parse(text: &str) -> Result<IssuerCode, DomainError> {
        let t = text.trim();
        if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::Issuer(IssuerRefusal::NotSixDigits));
        }
        let province: u32 = t[..2].parse().unwrap_or(0);
        if !(11..=82).contains(&province) {
            return Err(DomainError::Issuer(IssuerRefusal::UnknownProvince));
        }
        Ok(IssuerCode(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IssuerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An issuer's name shown to people (e.g. 济南市): 1-64 characters, trimmed,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerName(String);

impl IssuerName {
    pub fn parse(text: &str) -> Result<IssuerName, DomainError> {
        trimmed_text(TextField::IssuerName, text, 64).map(IssuerName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IssuerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a home node discloses to one peer city about its residents
/// (`federation_peers.disclosure`, set by `healthcard federation peer set`).
/// Never more than a clinic of this city with `pii` sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disclosure {
    /// What a clinic without `pii` sees (the default for every peer): name,
    /// sex, birth date, the masked numbers, which leave at least 500
    /// candidates for the document number (API-2.md's privacy rule).
    #[default]
    Standard,
    /// Also the full ID number, but only in the answer to a request whose
    /// asking clinic holds `pii` at the visiting node (the request says so).
    Pii,
}

impl Disclosure {
    pub fn parse(text: &str) -> Result<Disclosure, DomainError> {
        match text.trim() {
            "standard" => Ok(Disclosure::Standard),
            "pii" => Ok(Disclosure::Pii),
            _ => Err(DomainError::Unknown(Choice::Disclosure)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Disclosure::Standard => "standard",
            Disclosure::Pii => "pii",
        }
    }
}

impl fmt::Display for Disclosure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_are_six_digits_of_a_province() {
        assert_eq!(IssuerCode::parse(" 370100 ").unwrap().as_str(), "370100");
        assert!(IssuerCode::parse("510100").is_ok());
        for bad in [
            "",
            "37010",
            "3701000",
            "37010a",
            "000000",
            "990100",
            "HC",
            "３７０１００",
        ] {
            assert!(IssuerCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn disclosures_parse_and_round_trip() {
        for d in [Disclosure::Standard, Disclosure::Pii] {
            assert_eq!(Disclosure::parse(d.as_str()).unwrap(), d);
        }
        assert_eq!(Disclosure::default(), Disclosure::Standard);
        for bad in ["", "PII", "full", "minimal"] {
            assert!(Disclosure::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_text() {
        assert_eq!(IssuerName::parse(" 济南市 ").unwrap().as_str(), "济南市");
        assert!(IssuerName::parse("").is_err());
        assert!(IssuerName::parse("a\u{7}b").is_err());
        assert!(IssuerName::parse(&"市".repeat(65)).is_err());
    }

    proptest! {
        #[test]
        fn any_parsed_code_round_trips(s in "[0-9]{6}") {
            if let Ok(code) = IssuerCode::parse(&s) {
                prop_assert_eq!(code.as_str(), s.as_str());
                prop_assert_eq!(IssuerCode::parse(code.as_str()).unwrap(), code);
            }
        }
    }
}
