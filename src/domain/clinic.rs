use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{trimmed_text, Choice, CodeRefusal, DomainError, TextField};

/// A clinic's own patient number (MRN) for a resident: 1-64 printable
/// characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalPatientId(String);

impl LocalPatientId {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        trimmed_text(TextField::LocalPatientId, text, 64).map(LocalPatientId)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LocalPatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A clinic's short code, used on the command line and in links: 1-32 of
/// `[A-Za-z0-9_-]`, kept as given (codes differing in case are different).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClinicCode(String);

impl ClinicCode {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let t = text.trim();
        if t.is_empty() || t.len() > 32 {
            return Err(DomainError::ClinicCode(CodeRefusal::WrongLength));
        }
        if !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(DomainError::ClinicCode(CodeRefusal::BadCharacter));
        }
        Ok(ClinicCode(t.to_owned()))
    }
    /// A code for a new clinic: [`Self::parse`], and not of the prefix
    /// `fed-` (any case), which the federation's stand-ins of peer cities
    /// use ([`Self::stand_in`]): no real clinic can be mistaken for one.
    pub fn parse_new(text: &str) -> Result<Self, DomainError> {
        let code = Self::parse(text)?;
        if code.is_reserved() {
            return Err(DomainError::ReservedClinicCode);
        }
        Ok(code)
    }

    /// Whether the code has the prefix reserved for federation stand-ins.
    pub fn is_reserved(&self) -> bool {
        self.0
            .get(..STAND_IN_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(STAND_IN_PREFIX))
    }

    /// The stand-in clinic of the peer city `issuer` at a home node:
    /// `fed-<code>`, or `fed-<code>-<n>` for `n > 0`.
    pub fn stand_in(issuer: &super::IssuerCode, n: u32) -> ClinicCode {
        if n == 0 {
            ClinicCode(format!("{STAND_IN_PREFIX}{issuer}"))
        } else {
            ClinicCode(format!("{STAND_IN_PREFIX}{issuer}-{n}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The prefix of the federation's stand-in clinic codes.
const STAND_IN_PREFIX: &str = "fed-";

impl fmt::Display for ClinicCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A clinic's display name: 1-128 characters after trimming, no control
/// characters. One rule for the API, the portal and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicName(String);

impl ClinicName {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        super::trimmed_text(TextField::ClinicName, text, Self::MAX_CHARS).map(ClinicName)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// An administrator's login name: 3-64 of `[a-z0-9._-]`, lower-cased on input
/// so `Alice` and `alice` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let t = text.trim().to_ascii_lowercase();
        if t.len() < 3 || t.len() > 64 {
            return Err(DomainError::Username(CodeRefusal::WrongLength));
        }
        if !t
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(DomainError::Username(CodeRefusal::BadCharacter));
        }
        Ok(Username(t))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a clinic's API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Verify tokens and see the masked identity.
    Verify,
    /// Link the clinic's own patient numbers to cards.
    Link,
    /// See the full national ID number on verification.
    Pii,
    /// See other clinics' patient numbers (FHIR `$ihe-pix`, Patient reads):
    /// for county medical communities that share records.
    Xref,
    /// Search residents by demographics (FHIR PDQm without an identifier).
    Search,
    /// Identify a patient by an identity document's number instead of a
    /// token (`POST /api/v1/identify`, the kiosk's ID-card reader). Given
    /// deliberately: an ID number is not a secret (docs/security.md).
    Identify,
    /// Issue temporary cards (临时卡) to patients without a document, valid
    /// only at this clinic (issue 14).
    Register,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::Verify,
        Scope::Link,
        Scope::Pii,
        Scope::Xref,
        Scope::Search,
        Scope::Identify,
        Scope::Register,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Verify => "verify",
            Scope::Link => "link",
            Scope::Pii => "pii",
            Scope::Xref => "xref",
            Scope::Search => "search",
            Scope::Identify => "identify",
            Scope::Register => "register",
        }
    }
}

impl FromStr for Scope {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s.trim())
            .ok_or(DomainError::Unknown(Choice::Scope))
    }
}

/// A non-empty set of scopes. Text form: comma-separated in a fixed order
/// (`verify,link,pii,xref,search,register`), which is also how it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// Parses `"verify,link"`; spaces around names are allowed, duplicates
    /// collapse, unknown names and an empty list are refused.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let mut bits = 0u8;
        for part in text.split(',') {
            bits |= 1 << part.parse::<Scope>()? as u8;
        }
        Ok(Scopes(bits))
    }

    /// From a list (e.g. a JSON array); refused if empty.
    pub fn from_list(list: &[Scope]) -> Result<Self, DomainError> {
        if list.is_empty() {
            return Err(DomainError::NoScopes);
        }
        Ok(Scopes(list.iter().fold(0, |b, s| b | 1 << *s as u8)))
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0 & (1 << scope as u8) != 0
    }

    /// The scopes in fixed order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL.into_iter().filter(|s| self.contains(*s))
    }

    /// The names in fixed order, e.g. `["verify", "link"]`.
    pub fn as_strs(&self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_strs().join(","))
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_strs())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Scope>::deserialize(d)?;
        Scopes::from_list(&list).map_err(serde::de::Error::custom)
    }
}

/// Where a card was used, recorded with each verification (the national
/// card-use monitoring counts uses by channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A registration or payment window.
    Window,
    /// A self-service kiosk.
    Kiosk,
    /// A doctor's workstation.
    Doctor,
    /// A mobile app.
    App,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Window,
        Channel::Kiosk,
        Channel::Doctor,
        Channel::App,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Window => "window",
            Channel::Kiosk => "kiosk",
            Channel::Doctor => "doctor",
            Channel::App => "app",
        }
    }
}

impl FromStr for Channel {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DomainError::Unknown(Choice::Channel))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a clinic showed to have a card resolved, recorded on every
/// resolution entry of the access log: a scanned token, or an identity
/// document's number (identification, 多码融合).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    Token,
    Document,
}

impl Credential {
    pub const ALL: [Credential; 2] = [Credential::Token, Credential::Document];

    pub fn as_str(self) -> &'static str {
        match self {
            Credential::Token => "token",
            Credential::Document => "document",
        }
    }
}

impl FromStr for Credential {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Credential::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DomainError::Unknown(Choice::Credential))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_stand_in_prefix_is_reserved_for_new_clinics() {
        for reserved in ["fed-510100", "FED-x", "Fed-", "fed-510100-2"] {
            assert_eq!(
                ClinicCode::parse_new(reserved).unwrap_err().reason(),
                "reserved",
                "{reserved}"
            );
            // Still readable (a stand-in read back from the database).
            assert!(ClinicCode::parse(reserved).unwrap().is_reserved());
        }
        for free in ["fed", "fed_1", "CD01", "feder-1", "afed-1"] {
            assert!(ClinicCode::parse_new(free).is_ok(), "{free}");
        }
        let issuer = crate::domain::IssuerCode::parse("510100").unwrap();
        assert_eq!(ClinicCode::stand_in(&issuer, 0).as_str(), "fed-510100");
        assert_eq!(ClinicCode::stand_in(&issuer, 2).as_str(), "fed-510100-2");
        assert!(ClinicCode::stand_in(&issuer, 0).is_reserved());
    }

    #[test]
    fn scopes_parse_in_fixed_order() {
        let s = Scopes::parse("link, verify,link").unwrap();
        assert_eq!(s.to_string(), "verify,link");
        assert!(s.contains(Scope::Verify) && s.contains(Scope::Link) && !s.contains(Scope::Pii));
        assert_eq!(Scopes::parse(&s.to_string()).unwrap(), s);
        for bad in ["", "verify,", "admin", "verify,,link"] {
            assert!(Scopes::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["verify","link"]"#);
        assert_eq!(
            serde_json::from_str::<Scopes>(r#"["link","verify"]"#).unwrap(),
            s
        );
        assert!(serde_json::from_str::<Scopes>("[]").is_err());
        // The FHIR scopes (issue 16) keep the fixed order after the first three.
        let fhir = Scopes::parse("search,xref,verify").unwrap();
        assert_eq!(fhir.to_string(), "verify,xref,search");
        assert!(
            fhir.contains(Scope::Xref)
                && fhir.contains(Scope::Search)
                && !fhir.contains(Scope::Pii)
        );
        assert_eq!(Scopes::parse(&fhir.to_string()).unwrap(), fhir);
    }

    #[test]
    fn codes_usernames_and_patient_ids() {
        assert!(ClinicCode::parse("SDPH-01_a").is_ok());
        assert!(ClinicCode::parse("a b").is_err());
        assert!(ClinicCode::parse(&"a".repeat(33)).is_err());
        assert_eq!(Username::parse(" Alice.W ").unwrap().as_str(), "alice.w");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("张三丰").is_err());
        assert_eq!(
            LocalPatientId::parse(" MRN-0001/门诊 ").unwrap().as_str(),
            "MRN-0001/门诊"
        );
        assert!(LocalPatientId::parse("a\tb").is_err());
        assert!(LocalPatientId::parse("").is_err());
    }

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), c);
        }
        assert!("phone".parse::<Channel>().is_err());
    }

    proptest! {
        #[test]
        fn clinic_codes_accept_exactly_their_alphabet(s in "[A-Za-z0-9_-]{1,32}") {
            let code = ClinicCode::parse(&s).unwrap();
            prop_assert_eq!(code.as_str(), s.as_str());
        }

        #[test]
        fn usernames_are_lower_case(s in "[A-Za-z0-9._-]{3,64}") {
            let u = Username::parse(&s).unwrap();
            prop_assert_eq!(u.as_str(), s.to_ascii_lowercase());
        }
    }
}
