use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::domain::LifecycleError;

/// What a store call can fail with; the HTTP layer maps it once:
/// `NotFound` 404, `Conflict`/`Lifecycle` 409, `Unavailable` 503, the rest 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A stable code: `national_id_registered`, `card_exists`, `link_conflict`,
    /// `clinic_code_taken`, `username_taken`, `signing_key_active`, `card_changed`,
    /// `card_revoked`, `card_replaced`, `no_recent_scan`.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The database cannot be reached right now (pool timeout, refused or
    /// closed connection, SQLite busy past its timeout): worth a retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A sealed column would not open: wrong master key or tampered data.
    #[error("stored data could not be decrypted")]
    Crypto,
    #[error("database error: {0}")]
    Other(String),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::Conflict("unique_violation")
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
