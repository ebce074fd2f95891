use super::DomainError;

/// The identity document types of API-2.md (the card platforms' CV02.01.101
/// list where a code exists). Only the two that carry the 18-character citizen
/// number (GB 11643) can be used yet; the others are known, so that a client
/// sending one learns it is not supported rather than misspelt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentType {
    ResidentIdCard,
    HouseholdRegister,
    Passport,
    HkMacaoPermit,
    TaiwanPermit,
    BirthCertificate,
    HmtResidencePermit,
    ForeignPermanentResidence,
}

impl DocumentType {
    pub const ALL: [DocumentType; 8] = [
        DocumentType::ResidentIdCard,
        DocumentType::HouseholdRegister,
        DocumentType::Passport,
        DocumentType::HkMacaoPermit,
        DocumentType::TaiwanPermit,
        DocumentType::BirthCertificate,
        DocumentType::HmtResidencePermit,
        DocumentType::ForeignPermanentResidence,
    ];

    /// `invalid_document_type` (a 422) for a name that is none of them.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == text.trim())
            .ok_or(DomainError::new("document_type", "unknown"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::ResidentIdCard => "resident_id_card",
            DocumentType::HouseholdRegister => "household_register",
            DocumentType::Passport => "passport",
            DocumentType::HkMacaoPermit => "hk_macao_permit",
            DocumentType::TaiwanPermit => "taiwan_permit",
            DocumentType::BirthCertificate => "birth_certificate",
            DocumentType::HmtResidencePermit => "hmt_residence_permit",
            DocumentType::ForeignPermanentResidence => "foreign_permanent_residence",
        }
    }

    /// The OID of the number's register (a FHIR system is `urn:oid:` + this),
    /// where one has been looked up: see docs/fhir.md for the sources.
    pub fn oid(self) -> Option<&'static str> {
        match self {
            DocumentType::ResidentIdCard => Some(super::identifier::RESIDENT_ID_CARD_OID),
            _ => None,
        }
    }

    /// Whether the number is the citizen number of GB 11643 that residents
    /// are registered under today (an ID card, or a child's household register).
    pub fn is_citizen_number(self) -> bool {
        matches!(
            self,
            DocumentType::ResidentIdCard | DocumentType::HouseholdRegister
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for t in DocumentType::ALL {
            assert_eq!(DocumentType::parse(t.as_str()), Ok(t));
        }
        assert_eq!(
            DocumentType::parse("driving_licence").unwrap_err().reason,
            "unknown"
        );
        let citizen: Vec<_> = DocumentType::ALL
            .into_iter()
            .filter(|t| t.is_citizen_number())
            .collect();
        assert_eq!(
            citizen,
            [
                DocumentType::ResidentIdCard,
                DocumentType::HouseholdRegister
            ]
        );
    }
}
