//! Why an input was refused: one enum, a variant per kind of value and an
//! enum of that value's refusals inside, so that the answers (`error.rs`)
//! and the page messages (`web::i18n`) are `match`es the compiler checks.

use std::fmt;

/// Why an input was refused. [`DomainError::field`] and
/// [`DomainError::reason`] are stable snake_case codes (the HTTP layer
/// answers 422 `invalid_{field}` with the message `invalid {field}:
/// {reason}`); the message never repeats the input, so a refused national ID
/// number does not end up in a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainError {
    /// Free text (a name, a note, …) that is empty, too long or has control characters.
    Text(TextField, TextRefusal),
    /// A choice from a fixed list that is none of it.
    Unknown(Choice),
    NationalId(NationalIdRefusal),
    Phone(PhoneRefusal),
    /// A person's name with a bidirectional control character (it would
    /// show reversed or hide a part).
    NameBidiControl,
    ClinicCode(CodeRefusal),
    /// A new clinic's code with the prefix of the federation's stand-ins
    /// for peer cities (`fed-`).
    ReservedClinicCode,
    Username(CodeRefusal),
    /// An issuer that is not a GB/T 2260 city code.
    Issuer(IssuerRefusal),
    /// A FHIR `system|value` identifier.
    Identifier(IdentifierRefusal),
    BirthYear(BirthYearRefusal),
    /// A `group_by` that names a dimension twice.
    RepeatedDimension,
    /// A clinic with no scope at all.
    NoScopes,
    /// An id that is not a UUID.
    NotAUuid(IdKind),
}

/// Which free text was refused (see [`DomainError::Text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Name,
    ClinicName,
    LocalPatientId,
    IssuerName,
    Note,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRefusal {
    Empty,
    TooLong,
    ControlCharacter,
}

/// Which fixed list a value is not on (see [`DomainError::Unknown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    DocumentType,
    CardStatus,
    CardAction,
    Relation,
    EndReason,
    Sex,
    Step,
    Dimension,
    Scope,
    Channel,
    Credential,
    /// A federation peer's disclosure policy.
    Disclosure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NationalIdRefusal {
    WrongLength,
    NotDigits,
    BadCheckDigit,
    UnknownRegion,
    BadBirthDate,
    BirthDateInFuture,
    BirthDateTooEarly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneRefusal {
    NotMainland,
    Not11Digits,
    NotAMobilePrefix,
}

/// A code or a username: its length, or a character outside its set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    WrongLength,
    BadCharacter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerRefusal {
    NotSixDigits,
    UnknownProvince,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierRefusal {
    SystemRequired,
    BadValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirthYearRefusal {
    Before1900,
    InTheFuture,
}

/// Which kind of id was not a UUID; its name is the type's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    ResidentId,
    CardId,
    ClinicId,
    AdminId,
}

impl DomainError {
    /// Which kind of value was refused, e.g. `national_id`.
    pub fn field(self) -> &'static str {
        use DomainError as E;
        match self {
            E::Text(f, _) => match f {
                TextField::Name => "name",
                TextField::ClinicName => "clinic_name",
                TextField::LocalPatientId => "local_patient_id",
                TextField::IssuerName => "issuer_name",
                TextField::Note => "note",
            },
            E::Unknown(c) => match c {
                Choice::DocumentType => "document_type",
                Choice::CardStatus => "card_status",
                Choice::CardAction => "card_action",
                Choice::Relation => "relation",
                Choice::EndReason => "end_reason",
                Choice::Sex => "sex",
                Choice::Step => "step",
                Choice::Dimension => "group_by",
                Choice::Scope => "scopes",
                Choice::Channel => "channel",
                Choice::Credential => "credential",
                Choice::Disclosure => "disclosure",
            },
            E::NationalId(_) => "national_id",
            E::Phone(_) => "phone",
            E::NameBidiControl => "name",
            E::ClinicCode(_) | E::ReservedClinicCode => "clinic_code",
            E::Username(_) => "username",
            E::Issuer(_) => "issuer",
            E::Identifier(_) => "identifier",
            E::BirthYear(_) => "birth_year",
            E::RepeatedDimension => "group_by",
            E::NoScopes => "scopes",
            E::NotAUuid(k) => match k {
                IdKind::ResidentId => "ResidentId",
                IdKind::CardId => "CardId",
                IdKind::ClinicId => "ClinicId",
                IdKind::AdminId => "AdminId",
            },
        }
    }

    /// Why, e.g. `bad_check_digit`.
    pub fn reason(self) -> &'static str {
        use DomainError as E;
        match self {
            E::Text(_, r) => match r {
                TextRefusal::Empty => "empty",
                TextRefusal::TooLong => "too_long",
                TextRefusal::ControlCharacter => "control_character",
            },
            E::Unknown(c) => match c {
                Choice::DocumentType
                | Choice::CardStatus
                | Choice::CardAction
                | Choice::Relation
                | Choice::EndReason
                | Choice::Sex
                | Choice::Disclosure => "unknown",
                Choice::Step => "unknown_step",
                Choice::Dimension => "unknown_dimension",
                Choice::Scope => "unknown_scope",
                Choice::Channel => "unknown_channel",
                Choice::Credential => "unknown_credential",
            },
            E::NationalId(r) => match r {
                NationalIdRefusal::WrongLength => "wrong_length",
                NationalIdRefusal::NotDigits => "not_digits",
                NationalIdRefusal::BadCheckDigit => "bad_check_digit",
                NationalIdRefusal::UnknownRegion => "unknown_region",
                NationalIdRefusal::BadBirthDate => "bad_birth_date",
                NationalIdRefusal::BirthDateInFuture => "birth_date_in_future",
                NationalIdRefusal::BirthDateTooEarly => "birth_date_too_early",
            },
            E::Phone(r) => match r {
                PhoneRefusal::NotMainland => "not_mainland",
                PhoneRefusal::Not11Digits => "not_11_digits",
                PhoneRefusal::NotAMobilePrefix => "not_a_mobile_prefix",
            },
            E::NameBidiControl => "bidi_control",
            E::ClinicCode(r) | E::Username(r) => match r {
                CodeRefusal::WrongLength => "wrong_length",
                CodeRefusal::BadCharacter => "bad_character",
            },
            E::ReservedClinicCode => "reserved",
            E::Issuer(r) => match r {
                IssuerRefusal::NotSixDigits => "not_six_digits",
                IssuerRefusal::UnknownProvince => "unknown_province",
            },
            E::Identifier(r) => match r {
                IdentifierRefusal::SystemRequired => "system_required",
                IdentifierRefusal::BadValue => "bad_value",
            },
            E::BirthYear(r) => match r {
                BirthYearRefusal::Before1900 => "before_1900",
                BirthYearRefusal::InTheFuture => "in_the_future",
            },
            E::RepeatedDimension => "repeated_dimension",
            E::NoScopes => "empty",
            E::NotAUuid(_) => "not_a_uuid",
        }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field(), self.reason())
    }
}

impl std::error::Error for DomainError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_ones_the_api_answers() {
        let cases = [
            (
                DomainError::Unknown(Choice::Dimension),
                "invalid group_by: unknown_dimension",
            ),
            (
                DomainError::RepeatedDimension,
                "invalid group_by: repeated_dimension",
            ),
            (DomainError::NoScopes, "invalid scopes: empty"),
            (
                DomainError::NotAUuid(IdKind::CardId),
                "invalid CardId: not_a_uuid",
            ),
            (
                DomainError::Text(TextField::LocalPatientId, TextRefusal::ControlCharacter),
                "invalid local_patient_id: control_character",
            ),
            (
                DomainError::Username(CodeRefusal::BadCharacter),
                "invalid username: bad_character",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }
}
