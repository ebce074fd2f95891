//! Request-body and path handling that turns every client mistake into the
//! JSON error of API.md: 400 for broken JSON, 413 over the limit, 415 for a
//! wrong content type, 422 for well-formed JSON with wrong or missing values,
//! 404 for a path identifier that cannot exist.
//!
//! No message repeats what the client sent: serde's own messages quote the
//! offending value (`invalid type: string "…"`), which may be an ID number or
//! a credential sent in the wrong field, and error bodies end up in clients'
//! logs. A message says where (line and column), never what.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Largest JSON body any API route takes. A token is ~200 characters; a
/// resident record well under 1 KB.
pub const JSON_LIMIT: usize = 4 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _req| json_error(err).into())
}

fn json_error(err: JsonPayloadError) -> AppError {
    match err {
        JsonPayloadError::Overflow { limit } => AppError::PayloadTooLarge(limit),
        JsonPayloadError::OverflowKnownLength { limit, .. } => AppError::PayloadTooLarge(limit),
        JsonPayloadError::ContentType => {
            AppError::UnsupportedMediaType("send the body as application/json".into())
        }
        JsonPayloadError::Deserialize(e) => serde_error(&e),
        JsonPayloadError::Serialize(_) => AppError::Internal("JSON serialization".into()),
        _ => AppError::BadRequest {
            code: "bad_request",
            message: "the request body could not be read".into(),
        },
    }
}

/// Broken JSON is a 400; JSON of the wrong shape a 422. The message names the
/// place, not the content (see the module's comment).
pub fn serde_error(e: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Data => AppError::invalid(
            "invalid_body",
            format!("the body does not have the fields and types this route takes ({at}); see /openapi.json"),
        ),
        Category::Io | Category::Syntax | Category::Eof => AppError::BadRequest {
            code: "malformed_json",
            message: format!("the body is not valid JSON ({at})"),
        },
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_err: PathError, _req| AppError::NotFound("no such resource".into()).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|_err: QueryPayloadError, _req| {
        AppError::invalid(
            "invalid_query",
            "the query string does not have the parameters and values this route takes",
        )
        .into()
    })
}

/// The pages' forms: a form that cannot be read is a 400 that does not repeat
/// the field's value.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default().error_handler(|err: UrlencodedError, _req| match err {
        UrlencodedError::Overflow { limit, .. } => AppError::PayloadTooLarge(limit).into(),
        UrlencodedError::ContentType => AppError::UnsupportedMediaType(
            "send the form as application/x-www-form-urlencoded".into(),
        )
        .into(),
        _ => AppError::BadRequest {
            code: "bad_request",
            message: "the form could not be read".into(),
        }
        .into(),
    })
}

/// An optional JSON body (lifecycle routes take `{reason}` or nothing).
pub fn optional_json<T: DeserializeOwned>(
    req: &HttpRequest,
    body: &web::Bytes,
) -> Result<Option<T>, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let ct = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(AppError::UnsupportedMediaType(
            "send the body as application/json".into(),
        ));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| serde_error(&e))
}

/// 404 unless `s` is a UUID: an identifier that cannot exist does not exist.
pub fn uuid(s: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(s).map_err(|_| AppError::NotFound("no such resource".into()))
}
