//! Patient identifiers as FHIR names them: a `system` (which register) and a
//! value. The registry's own systems share a configurable prefix
//! (`urn:healthcard:{issuer}` by default); identity documents use the OIDs
//! of China's health information standards. Issue 14 adds the other
//! document types as further [`DocumentType`]s (each with its OID once looked up).

use super::{ClinicCode, DocumentType, DomainError, IdentifierRefusal};

/// The OID that the WS/T 500 shared-document headers give the patient's
/// resident ID number (`patient/id/@root`), in the 2.16.156.10011 health
/// information arc (WS/T 682). See docs/fhir.md for the sources.
pub const RESIDENT_ID_CARD_OID: &str = "2.16.156.10011.1.3";

/// Which register an identifier belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentifierDomain {
    /// The registry's resident id (the master patient index).
    Resident,
    /// A card id.
    Card,
    /// A clinic's own patient numbers (MRN).
    Clinic(ClinicCode),
    /// An identity document's number.
    Document(DocumentType),
}

/// Turns domains into FHIR system URIs and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierSystems {
    prefix: String,
}

impl IdentifierSystems {
    /// `prefix` without a trailing colon, e.g. `urn:healthcard:HC`.
    pub fn new(prefix: &str) -> Self {
        IdentifierSystems {
            prefix: prefix.trim_end_matches(':').to_string(),
        }
    }

    pub fn uri(&self, domain: &IdentifierDomain) -> String {
        match domain {
            IdentifierDomain::Resident => format!("{}:resident", self.prefix),
            IdentifierDomain::Card => format!("{}:card", self.prefix),
            IdentifierDomain::Clinic(code) => format!("{}:clinic:{}:mrn", self.prefix, code),
            IdentifierDomain::Document(kind) => match kind.oid() {
                Some(oid) => format!("urn:oid:{oid}"),
                None => format!("{}:document:{}", self.prefix, kind.as_str()),
            },
        }
    }

    /// The domain a system URI names, or `None` for a system this registry
    /// does not keep. A clinic system is parsed by its shape; whether the
    /// clinic exists is the caller's question.
    pub fn parse(&self, uri: &str) -> Option<IdentifierDomain> {
        let uri = uri.trim();
        if let Some(oid) = uri.strip_prefix("urn:oid:") {
            return DocumentType::ALL
                .into_iter()
                .find(|k| k.oid() == Some(oid))
                .map(IdentifierDomain::Document);
        }
        let rest = uri.strip_prefix(self.prefix.as_str())?.strip_prefix(':')?;
        match rest {
            "resident" => Some(IdentifierDomain::Resident),
            "card" => Some(IdentifierDomain::Card),
            _ => {
                let code = rest.strip_prefix("clinic:")?.strip_suffix(":mrn")?;
                ClinicCode::parse(code)
                    .ok()
                    .filter(|c| c.as_str() == code)
                    .map(IdentifierDomain::Clinic)
            }
        }
    }
}

/// A `system|value` token (FHIR token search syntax): both parts required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemValue {
    pub system: String,
    pub value: String,
}

impl SystemValue {
    pub fn parse(text: &str) -> Result<Self, super::DomainError> {
        let (system, value) = text
            .split_once('|')
            .ok_or(DomainError::Identifier(IdentifierRefusal::SystemRequired))?;
        let (system, value) = (system.trim(), value.trim());
        if system.is_empty() {
            return Err(DomainError::Identifier(IdentifierRefusal::SystemRequired));
        }
        if value.is_empty() || value.chars().count() > 128 || value.chars().any(char::is_control) {
            return Err(DomainError::Identifier(IdentifierRefusal::BadValue));
        }
        Ok(SystemValue {
            system: system.to_string(),
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_round_trip() {
        let s = IdentifierSystems::new("urn:healthcard:HC:");
        let red = IdentifierDomain::Clinic(ClinicCode::parse("RED").unwrap());
        for d in [
            IdentifierDomain::Resident,
            IdentifierDomain::Card,
            red.clone(),
            IdentifierDomain::Document(DocumentType::ResidentIdCard),
        ] {
            assert_eq!(s.parse(&s.uri(&d)), Some(d));
        }
        assert_eq!(s.uri(&red), "urn:healthcard:HC:clinic:RED:mrn");
        assert_eq!(
            s.uri(&IdentifierDomain::Document(DocumentType::ResidentIdCard)),
            "urn:oid:2.16.156.10011.1.3"
        );
        for unknown in [
            "urn:healthcard:XX:resident",
            "urn:healthcard:HC:patient",
            "urn:healthcard:HC:clinic:a b:mrn",
            "urn:healthcard:HC:clinic::mrn",
            "urn:oid:1.3.6.1.4.1.21367.13.20.1000",
            "urn:healthcard:HCresident",
        ] {
            assert_eq!(s.parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn tokens_need_a_system_and_a_value() {
        let t = SystemValue::parse("urn:x| IHERED-994 ").unwrap();
        assert_eq!(
            (t.system.as_str(), t.value.as_str()),
            ("urn:x", "IHERED-994")
        );
        for bad in ["IHERED-994", "|IHERED-994", "urn:x|", "urn:x|a\tb"] {
            assert!(SystemValue::parse(bad).is_err(), "{bad}");
        }
    }
}
