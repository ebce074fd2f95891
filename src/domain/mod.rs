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
mod refusal;
mod temporary;
mod url;

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
pub use refusal::{
    BirthYearRefusal, Choice, CodeRefusal, DomainError, IdKind, IdentifierRefusal, IssuerRefusal,
    NationalIdRefusal, PhoneRefusal, TextField, TextRefusal,
};
pub use temporary::{
    stand_in_birth_date, BirthYear, PatientName, TemporaryNote, TemporaryRefusal, TemporaryTerms,
};
pub use url::http_base_url;

/// Trims `text` and checks it is 1..=max characters without control characters.
fn trimmed_text(field: TextField, text: &str, max_chars: usize) -> Result<String, DomainError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DomainError::Text(field, TextRefusal::Empty));
    }
    if t.chars().count() > max_chars {
        return Err(DomainError::Text(field, TextRefusal::TooLong));
    }
    if t.chars().any(char::is_control) {
        return Err(DomainError::Text(field, TextRefusal::ControlCharacter));
    }
    Ok(t.to_owned())
}
