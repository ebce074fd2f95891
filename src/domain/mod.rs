//! Parsed domain types: every value that reaches the store or the token core
//! went through one of these `parse` functions first, so the core never sees
//! unchecked input (parse, don't validate). No SQL and no HTTP here.

mod card;
mod clinic;
mod document;
mod family;
mod identifier;
mod ids;
mod issuer;
mod key_state;
mod monitoring;
mod national_id;
mod password;
mod person;
mod temporary;

pub use card::{CardAction, CardStatus, ChangeReason, LifecycleError, ReasonError};
pub use clinic::{
    Channel, ClinicCode, ClinicName, Credential, LocalPatientId, Scope, Scopes, Username,
};
pub use document::{
    Country, Demographic, Document, DocumentError, DocumentType, CITIZEN_NUMBER_PURPOSE,
    DOCUMENT_PURPOSE,
};
pub use family::{
    adult_born_by, birthday, check_new_guardian, in_force, is_adult, is_newborn, EndReason,
    GuardianRefusal, Proposal, Relation, FULL_AGE_YEARS, MAX_GUARDIANS, NEWBORN_MAX_YEARS,
};
pub use identifier::{IdentifierDomain, IdentifierSystems, SystemValue, RESIDENT_ID_CARD_OID};
pub use ids::{AdminId, CardId, ClinicId, ResidentId};
pub use issuer::{Disclosure, IssuerCode, IssuerName};
pub use key_state::{KeyState, UnknownKeyState};
pub use monitoring::{
    monitoring_day, Dimension, Grouping, Period, PeriodError, Step, MONITORING_UTC_OFFSET_HOURS,
};
pub use national_id::NationalId;
pub use password::{NewPassword, PasswordError, MIN_CHARS as MIN_PASSWORD_CHARS};
pub use person::{
    family_matches, given_matches, mask_phone, name_parts, MobileNumber, PersonName, Sex,
};
pub use temporary::{
    stand_in_birth_date, BirthYear, PatientName, TemporaryNote, TemporaryRefusal, TemporaryTerms,
};

/// Why an input was refused. `field` and `reason` are stable snake_case codes
/// (the HTTP layer answers 422 with them); the message never repeats the input,
/// so a refused national ID number does not end up in a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct DomainError {
    /// Which kind of value was refused, e.g. `national_id`.
    pub field: &'static str,
    /// Why, e.g. `bad_check_digit`.
    pub reason: &'static str,
}

impl DomainError {
    pub(crate) fn new(field: &'static str, reason: &'static str) -> Self {
        DomainError { field, reason }
    }
}

/// Trims `text` and checks it is 1..=max characters without control characters.
fn trimmed_text(field: &'static str, text: &str, max_chars: usize) -> Result<String, DomainError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DomainError::new(field, "empty"));
    }
    if t.chars().count() > max_chars {
        return Err(DomainError::new(field, "too_long"));
    }
    if t.chars().any(char::is_control) {
        return Err(DomainError::new(field, "control_character"));
    }
    Ok(t.to_owned())
}
