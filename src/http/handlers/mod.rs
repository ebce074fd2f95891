//! API handlers, one file per area of API.md.

pub mod admin;
pub mod cards;
pub mod clinics;
pub mod families;
pub mod federation;
pub mod holder;
pub mod identify;
pub mod keys;
pub mod links;
pub mod ops;
pub mod residents;
pub mod revocations;
pub mod stats;
pub mod temporary;
pub mod verify;

use actix_web::http::header;
use actix_web::HttpResponse;

use crate::error::AppError;
use crate::service::registry::MintError;
use crate::token::qr;

/// The QR image answers: never cached, they hold a live token.
/// Screens (the holder's dynamic QR, the volume path) get the fixed mask and
/// are drawn right here on the worker: ~100 µs of CPU, less than the two
/// thread switches a hop to the blocking pool and back costs under load.
/// Printed (static) cards get the penalty-searched mask, on the blocking pool.
pub async fn qr_response(text: &str, png: bool, print: bool) -> Result<HttpResponse, AppError> {
    fn draw(text: &str, png: bool, print: bool) -> Result<Vec<u8>, AppError> {
        let code = if print {
            qr::encode_for_print(text)
        } else {
            qr::encode(text)
        }
        .map_err(|e| AppError::Internal(format!("QR encoding: {e}")))?;
        Ok(if png {
            code.to_png()
        } else {
            code.to_svg().into_bytes()
        })
    }
    let body = if print {
        let text = text.to_string();
        actix_web::web::block(move || draw(&text, png, true))
            .await
            .map_err(|_| AppError::Unavailable)??
    } else {
        draw(text, png, false)?
    };
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
