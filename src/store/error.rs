use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::domain::LifecycleError;

/// What a write collided with. Each kind has a stable API code and a
/// message; add a kind here (and its two arms below) rather than a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    NationalIdRegistered,
    /// The document (type and number) is registered to a resident already.
    DocumentRegistered,
    CardExists,
    /// The local patient number already names another resident at the clinic.
    LinkConflict,
    ClinicCodeTaken,
    UsernameTaken,
    /// The active signing key cannot be revoked.
    KeyActive,
    /// Another node made a new signing key at the same moment.
    SigningKeyActive,
    /// The card row changed between read and write.
    CardChanged,
    CardRevoked,
    CardReplaced,
    NoRecentScan,
    /// The pair already has an open guardianship.
    GuardianExists,
    /// Both residents of a merge have a number at the same clinic: the
    /// clinic must merge its own records first (refused rather than pick).
    MergeConflict,
    /// The merge's source, or the record it would go into, was merged
    /// already (a merge is final).
    AlreadyMerged,
    /// The resident was merged into another record: nothing is added to it
    /// any more (cards, documents); use the record it was merged into.
    ResidentMerged,
    /// The record merged into has no active or suspended card for the
    /// source's cards to be replaced by.
    MergeTargetNoCard,
    /// A node-to-node request's nonce was spent before (federation): the
    /// request is a replay and changed nothing.
    RequestReplayed,
    /// A unique index refused the row where no caller named the kind (e.g.
    /// the replay key's backstop in the access-log writer).
    Unique,
}

impl Conflict {
    /// The `code` of the API's error body.
    pub fn code(self) -> &'static str {
        match self {
            Conflict::NationalIdRegistered => "national_id_registered",
            Conflict::DocumentRegistered => "document_registered",
            Conflict::CardExists => "card_exists",
            Conflict::LinkConflict => "link_conflict",
            Conflict::ClinicCodeTaken => "clinic_code_taken",
            Conflict::UsernameTaken => "username_taken",
            Conflict::KeyActive => "key_active",
            Conflict::SigningKeyActive => "signing_key_active",
            Conflict::CardChanged => "card_changed",
            Conflict::CardRevoked => "card_revoked",
            Conflict::CardReplaced => "card_replaced",
            Conflict::NoRecentScan => "no_recent_scan",
            Conflict::GuardianExists => "guardian_exists",
            Conflict::MergeConflict => "merge_conflict",
            Conflict::AlreadyMerged => "already_merged",
            Conflict::MergeTargetNoCard => "merge_target_no_card",
            Conflict::ResidentMerged => "resident_merged",
            Conflict::RequestReplayed => "replayed_request",
            Conflict::Unique => "conflict",
        }
    }

    /// For humans (API message, CLI error).
    pub fn message(self) -> &'static str {
        match self {
            Conflict::NationalIdRegistered => {
                "a resident with this ID number is already registered"
            }
            Conflict::DocumentRegistered => "this document is already registered to a resident",
            Conflict::CardExists => "the resident already has an active or suspended card",
            Conflict::LinkConflict => "this local patient number already names another resident",
            Conflict::ClinicCodeTaken => "a clinic with this code already exists",
            Conflict::UsernameTaken => "this username is taken",
            Conflict::KeyActive => "the active signing key cannot be revoked; rotate first",
            Conflict::SigningKeyActive => {
                "another node made a new signing key at the same moment; retry"
            }
            Conflict::CardChanged => "the card changed at the same moment; read it again and retry",
            Conflict::CardRevoked => "the card is revoked",
            Conflict::CardReplaced => "the card was replaced by a reissue; use the new card",
            Conflict::NoRecentScan => {
                "this clinic has not verified this card recently; scan it first"
            }
            Conflict::GuardianExists => "this resident is already a guardian of the dependant",
            Conflict::MergeConflict => {
                "both records have a patient number at the same clinic; that clinic must merge its own numbers first"
            }
            Conflict::AlreadyMerged => {
                "one of the two records is already merged into another; a merge is final"
            }
            Conflict::MergeTargetNoCard => {
                "the record merged into has no active or suspended card; issue it a card first"
            }
            Conflict::ResidentMerged => {
                "this record was merged into another; use the record it was merged into"
            }
            Conflict::RequestReplayed => "this request was already received (nonce replayed)",
            Conflict::Unique => "conflicts with stored state",
        }
    }
}

/// What a store call can fail with; the HTTP layer maps it once:
/// `NotFound` 404, `Conflict`/`Lifecycle` 409, `Unavailable` 503, the rest 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The write collides with what is stored; the kind says with what.
    #[error("{}", .0.message())]
    Conflict(Conflict),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The database cannot be reached right now (pool timeout, refused or
    /// closed connection, SQLite busy past its timeout): worth a retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A sealed column would not open: wrong master key or tampered data.
    #[error("stored data could not be decrypted (a master key other than the one that sealed it, or altered data)")]
    Crypto,
    #[error("database error: {0}")]
    Other(String),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::Conflict(Conflict::Unique)
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            DieselError::DatabaseError(_, ref info) if is_unavailable(info.message()) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            DieselError::BrokenTransactionManager => {
                StoreError::Unavailable("broken transaction".into())
            }
            other => StoreError::Other(other.to_string()),
        }
    }
}

/// Messages that mean "try again later" rather than "this request is wrong".
fn is_unavailable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "database is locked",
        "database is busy",
        "server closed the connection",
        "connection refused",
        "could not connect",
        "terminating connection",
        "the database system is",
        "no connection to the server",
        "could not serialize access",
        "deadlock detected",
    ]
    .iter()
    .any(|p| m.contains(p))
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<crate::crypto::CryptoError> for StoreError {
    fn from(_: crate::crypto::CryptoError) -> Self {
        StoreError::Crypto
    }
}
