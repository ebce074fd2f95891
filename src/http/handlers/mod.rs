//! API handlers, one file per area of API.md.

pub mod admin;
pub mod cards;
pub mod clinics;
pub mod holder;
pub mod keys;
pub mod links;
pub mod ops;
pub mod residents;
pub mod revocations;
pub mod verify;

use actix_web::http::header;
use actix_web::HttpResponse;

use crate::error::AppError;
use crate::service::registry::MintError;
use crate::token::qr;

/// The QR image answers: never cached, they hold a live token.
/// Encoding and drawing run on the blocking pool: they are CPU work. Printed
/// (static) cards get the penalty-searched mask, screens the fast fixed one.
pub async fn qr_response(text: &str, png: bool, print: bool) -> Result<HttpResponse, AppError> {
    let text = text.to_string();
    let body = actix_web::web::block(move || -> Result<Vec<u8>, AppError> {
        let code = if print {
            qr::encode_for_print(&text)
        } else {
            qr::encode(&text)
        }
        .map_err(|e| AppError::Internal(format!("QR encoding: {e}")))?;
        Ok(if png {
            code.to_png()
        } else {
            code.to_svg().into_bytes()
        })
    })
    .await
    .map_err(|_| AppError::Unavailable)??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type(if png { "image/png" } else { "image/svg+xml" })
        .body(body))
}

impl From<MintError> for AppError {
    fn from(e: MintError) -> Self {
        match e {
            MintError::NotActive(_) => AppError::Conflict {
                code: "card_not_active",
                message: e.to_string(),
            },
            MintError::NoKey => AppError::Unavailable,
            MintError::Store(s) => s.into(),
        }
    }
}
