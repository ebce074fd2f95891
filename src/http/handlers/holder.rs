//! The holder (resident) with the credential from issuance: dynamic tokens,
//! their QR images and who looked the card up.

use actix_web::{get, post, web, HttpResponse};

use crate::error::{AppError, ErrorBody};
use crate::http::auth::{blocking, HolderAuth};
use crate::http::views::{AccessLogView, TokenView};
use crate::http::State;
use crate::service::registry;
use crate::store::access_log::{self, ActorKind};

/// The `actor` of every holder-visible row not made by a clinic.
pub const CARD_OFFICE: &str = "card_office";
use crate::token::TokenKind;

use super::cards::{log_view, token_view};

/// A fresh dynamic token (short-lived, accepted once).
#[utoipa::path(tag = "holder",
    responses((status = 201, body = TokenView), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the card is suspended, revoked or replaced"),
        (status = 429, body = ErrorBody)),
    security(("holder" = [])))]
#[post("/api/v1/holder/tokens")]
pub async fn tokens(state: web::Data<State>, holder: HolderAuth) -> Result<HttpResponse, AppError> {
    let minted = registry::mint_for(&state.ctx, &holder.0, TokenKind::Dynamic)?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(token_view(&minted)))
}

async fn qr(
    state: web::Data<State>,
    holder: HolderAuth,
    png: bool,
) -> Result<HttpResponse, AppError> {
    let minted = registry::mint_for(&state.ctx, &holder.0, TokenKind::Dynamic)?;
    super::qr_response(&minted.text, png, false).await
}

/// A fresh dynamic token as an SVG QR code.
#[utoipa::path(tag = "holder",
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("holder" = [])))]
#[get("/api/v1/holder/qr.svg")]
pub async fn qr_svg(state: web::Data<State>, holder: HolderAuth) -> Result<HttpResponse, AppError> {
    qr(state, holder, false).await
}

/// A fresh dynamic token as a PNG QR code.
#[utoipa::path(tag = "holder",
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("holder" = [])))]
#[get("/api/v1/holder/qr.png")]
pub async fn qr_png(state: web::Data<State>, holder: HolderAuth) -> Result<HttpResponse, AppError> {
    qr(state, holder, true).await
}

/// Who resolved this resident's cards, and when (newest first).
#[utoipa::path(tag = "holder",
    responses((status = 200, body = Vec<AccessLogView>), (status = 401, body = ErrorBody)),
    security(("holder" = [])))]
#[get("/api/v1/holder/access-log")]
pub async fn access(state: web::Data<State>, holder: HolderAuth) -> Result<HttpResponse, AppError> {
    let resident = holder.0.resident_id;
    let ctx = state.ctx.clone();
    let rows = blocking(move || access_log::for_resident(&mut *ctx.conn()?, resident, 200)).await?;
    // The holder sees who looked them up, not the administrators' notes, and
    // the card office as one: an administrator's username is an account name
    // to guess passwords for, not the holder's business.
    let views: Vec<AccessLogView> = rows
        .iter()
        .map(|r| AccessLogView {
            detail: None,
            actor: match r.actor_kind {
                ActorKind::Clinic | ActorKind::Holder => r.actor.clone(),
                ActorKind::Admin | ActorKind::System => CARD_OFFICE.to_string(),
            },
            ..log_view(r)
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}
