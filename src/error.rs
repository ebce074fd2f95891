//! One error type for the API: every failure a handler can meet becomes an
//! HTTP status and the body `{"code", "message"}` of API.md.
//!
//! Use [`AppError`] in handlers and services; convert store and domain errors
//! with `?`. Anything unexpected becomes a 500 with a generic message and is
//! logged with its cause (never with personal data).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::{Demographic, DocumentError, DomainError, PeriodError, ReasonError};
use crate::store::StoreError;

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, snake_case; clients switch on it.
    pub code: String,
    /// For humans; may change.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A 404 with its own code (e.g. `no_trust_list`).
    #[error("{message}")]
    NotFoundCode { code: &'static str, message: String },
    /// A 401 with its own code (a refused node-to-node request).
    #[error("{message}")]
    UnauthorizedCode { code: &'static str, message: String },
    /// A 503 with its own code (e.g. `trust_list_expired`).
    #[error("{message}")]
    UnavailableCode { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Invalid {
        code: std::borrow::Cow<'static, str>,
        message: String,
    },
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the database is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// A 422 with a field-specific code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Invalid {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            AppError::BadRequest { code, .. } => code,
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::NotFoundCode { code, .. }
            | AppError::UnauthorizedCode { code, .. }
            | AppError::UnavailableCode { code, .. } => code,
            AppError::Conflict { code, .. } => code,
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Invalid { code, .. } => code.as_ref(),
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable => "database_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) | AppError::NotFoundCode { .. } => StatusCode::NOT_FOUND,
            AppError::UnauthorizedCode { .. } => StatusCode::UNAUTHORIZED,
            AppError::UnavailableCode { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            AppError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            AppError::Unauthorized => {
                resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::RateLimited { retry_after } => {
                resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            AppError::Unavailable => {
                resp.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        resp.json(ErrorBody {
            code: self.code().to_string(),
            message,
        })
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound("not found".into()),
            StoreError::Conflict(kind) => AppError::Conflict {
                code: kind.code(),
                message: kind.message().into(),
            },
            StoreError::Lifecycle(l) => AppError::Conflict {
                code: l.code(),
                message: l.to_string(),
            },
            StoreError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "database unavailable");
                AppError::Unavailable
            }
            e @ (StoreError::Crypto | StoreError::Other(_)) => AppError::Internal(e.to_string()),
        }
    }
}

/// Each refusal of a node-to-node request has its own code (docs/federation.md).
impl From<crate::service::federation::FederationError> for AppError {
    fn from(e: crate::service::federation::FederationError) -> Self {
        use crate::service::federation::FederationError as F;
        use crate::token::message_signature::SignatureError as S;
        let message = e.to_string();
        let unauthorized = |code| AppError::UnauthorizedCode {
            code,
            message: message.clone(),
        };
        match e {
            F::Off => AppError::NotFoundCode {
                code: "not_federated",
                message,
            },
            F::TrustListExpired => AppError::UnavailableCode {
                code: "trust_list_expired",
                message,
            },
            F::Signature(S::Missing) => unauthorized("unsigned_request"),
            F::Signature(S::Malformed) => unauthorized("malformed_signature"),
            F::Signature(S::DigestMismatch) => unauthorized("digest_mismatch"),
            F::Signature(S::Stale) => unauthorized("stale_request"),
            F::Signature(S::UnknownNode) => unauthorized("unknown_node"),
            F::Signature(S::BadSignature) => unauthorized("bad_request_signature"),
            F::Replayed => unauthorized("replayed_request"),
            F::BadRequest(m) => AppError::BadRequest {
                code: "bad_resolve_request",
                message: m,
            },
            F::Store(s) => s.into(),
        }
    }
}

/// Each refusal of the family rules has its own code (API-2.md "Families").
impl From<crate::service::families::FamilyError> for AppError {
    fn from(e: crate::service::families::FamilyError) -> Self {
        use crate::domain::GuardianRefusal as R;
        use crate::service::families::FamilyError as F;
        let message = e.to_string();
        match e {
            F::NotFound => AppError::NotFound(message),
            F::Refused(R::Oneself | R::Cycle | R::GuardianMinor) => {
                AppError::invalid("invalid_guardian", message)
            }
            F::Refused(R::ConsentRequired) => AppError::invalid("consent_required", message),
            F::Refused(R::TooMany) => AppError::Conflict {
                code: "too_many_guardians",
                message,
            },
            F::Refused(R::Exists) => AppError::Conflict {
                code: "guardian_exists",
                message,
            },
            F::NotNewborn => AppError::invalid("not_newborn", message),
            F::Store(s) => s.into(),
        }
    }
}

/// A refused merge: 422 `merge_self`; the store's refusals as they map.
impl From<crate::service::merges::MergeError> for AppError {
    fn from(e: crate::service::merges::MergeError) -> Self {
        use crate::service::merges::MergeError as M;
        match e {
            M::SelfMerge => AppError::invalid("merge_self", e.to_string()),
            M::Store(s) => s.into(),
        }
    }
}

/// A refused temporary card (issue 14).
impl From<crate::service::temporary::TemporaryError> for AppError {
    fn from(e: crate::service::temporary::TemporaryError) -> Self {
        use crate::service::temporary::TemporaryError as T;
        match e {
            T::MissingScope => AppError::Forbidden(e.to_string()),
            T::NoKey => AppError::Unavailable,
            T::Store(s) => s.into(),
        }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        AppError::Invalid {
            code: format!("invalid_{}", e.field()).into(),
            message: e.to_string(),
        }
    }
}

/// A refused identity document: one code per kind of refusal.
impl From<DocumentError> for AppError {
    fn from(e: DocumentError) -> Self {
        let code = match e {
            DocumentError::UnknownType => "invalid_document_type",
            DocumentError::Number { .. } => "invalid_document_number",
            DocumentError::NationalId { .. } => "invalid_national_id",
            DocumentError::Country { .. } => "invalid_country",
            DocumentError::Mismatch { .. } => "document_mismatch",
            DocumentError::Required {
                field: Demographic::Sex,
            } => "sex_required",
            DocumentError::Required {
                field: Demographic::BirthDate,
            } => "birth_date_required",
        };
        AppError::invalid(code, e.to_string())
    }
}

impl From<ReasonError> for AppError {
    fn from(e: ReasonError) -> Self {
        match e {
            ReasonError::TooLong | ReasonError::ControlCharacter => {
                AppError::invalid("invalid_reason", e.to_string())
            }
        }
    }
}

/// A refused period of the card-use figures; each refusal has its own code.
impl From<PeriodError> for AppError {
    fn from(e: PeriodError) -> Self {
        let code = match e {
            PeriodError::Unparseable => "invalid_date",
            PeriodError::Reversed => "invalid_period",
            PeriodError::TooLong => "period_too_long",
        };
        AppError::invalid(code, e.to_string())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        AppError::Unavailable
    }
}
