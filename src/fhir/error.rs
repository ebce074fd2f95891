//! Every FHIR error is an `OperationOutcome` (FHIR R4 §3.1.0.2): severity,
//! an issue type from the R4 `issue-type` code list, our stable code in
//! `details.coding[0].code`, and `diagnostics` for humans.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use crate::error::AppError;
use crate::service::patients::PatientError;

use super::FHIR_JSON;

/// The code system of our stable codes in `details.coding`.
pub(super) const CODE_SYSTEM: &str = "urn:healthcard:error-code";

#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// Authentication, scopes, rate limits, the database: the API's own errors.
    #[error(transparent)]
    App(#[from] AppError),
    /// A patient use case's refusal (never `PatientError::Store`: see the `From`).
    #[error(transparent)]
    Patient(PatientError),
    /// XML was asked for; only JSON is served.
    #[error("only application/fhir+json is supported")]
    NotAcceptable,
    /// A request FHIR-wise malformed: parameters, body, resource type.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
}

impl FhirError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        FhirError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// (status, FHIR issue type, stable code).
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            FhirError::App(e) => {
                let issue = match e {
                    AppError::BadRequest { .. } => "invalid",
                    AppError::Unauthorized => "login",
                    AppError::Forbidden(_) => "forbidden",
                    AppError::NotFound(_) | AppError::NotFoundCode { .. } => "not-found",
                    AppError::UnauthorizedCode { .. } => "login",
                    AppError::UnavailableCode { .. } => "transient",
                    AppError::Conflict { .. } => "conflict",
                    AppError::PayloadTooLarge(_) => "too-long",
                    AppError::UnsupportedMediaType(_) => "not-supported",
                    AppError::Invalid { .. } => "invalid",
                    AppError::RateLimited { .. } => "throttled",
                    AppError::Unavailable => "transient",
                    AppError::Internal(_) => "exception",
                };
                (e.status_code(), issue, e.code().to_string())
            }
            FhirError::Patient(e) => match e {
                PatientError::NotFound => (StatusCode::NOT_FOUND, "not-found", "not_found".into()),
                PatientError::UnknownDomain(_) => (
                    StatusCode::BAD_REQUEST,
                    "code-invalid",
                    "unknown_identifier_system".into(),
                ),
                PatientError::ForbiddenDomain(_) => (
                    StatusCode::FORBIDDEN,
                    "code-invalid",
                    "forbidden_identifier_system".into(),
                ),
                PatientError::MissingScope(_) => {
                    (StatusCode::FORBIDDEN, "forbidden", "forbidden".into())
                }
                PatientError::UnknownResident => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "processing",
                    "unknown_resident".into(),
                ),
                PatientError::Invalid { code, .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "processing",
                    (*code).to_string(),
                ),
                // Converted to `App` on the way in.
                PatientError::Store(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "internal_error".into(),
                ),
            },
            FhirError::NotAcceptable => (
                StatusCode::NOT_ACCEPTABLE,
                "not-supported",
                "not_acceptable".into(),
            ),
            FhirError::BadRequest { code, .. } => {
                (StatusCode::BAD_REQUEST, "invalid", (*code).to_string())
            }
        }
    }
}

impl From<PatientError> for FhirError {
    fn from(e: PatientError) -> Self {
        match e {
            PatientError::Store(s) => FhirError::App(AppError::from(s)),
            other => FhirError::Patient(other),
        }
    }
}

/// An OperationOutcome with one issue.
pub(super) fn outcome(severity: &str, issue: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": severity,
            "code": issue,
            "details": {"coding": [{"system": CODE_SYSTEM, "code": code}]},
            "diagnostics": diagnostics,
        }]
    })
}

impl ResponseError for FhirError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, issue, code) = self.parts();
        let diagnostics = match self {
            // The API's rendering logs an internal cause and hides it.
            FhirError::App(AppError::Internal(cause)) => {
                tracing::error!(cause = %cause, "internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = HttpResponse::build(status);
        match self {
            FhirError::App(AppError::Unauthorized) => {
                resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            FhirError::App(AppError::RateLimited { retry_after }) => {
                resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                resp.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        let severity = if status.is_server_error() {
            "fatal"
        } else {
            "error"
        };
        resp.insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type(FHIR_JSON)
            .body(outcome(severity, issue, &code, &diagnostics).to_string())
    }
}
