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
pub fn qr_response(text: &str, png: bool) -> Result<HttpResponse, AppError> {
    let code = qr::encode(text).map_err(|e| AppError::Internal(format!("QR encoding: {e}")))?;
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    Ok(if png {
        resp.content_type("image/png").body(code.to_png())
    } else {
        resp.content_type("image/svg+xml").body(code.to_svg())
    })
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
