//! The holder (resident) with the credential from issuance: dynamic tokens,
//! their QR images and who looked the card up.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::CardId;
use crate::error::{AppError, ErrorBody};
use crate::http::views::{AccessLogView, TokenView};
use crate::request::auth::{blocking, HolderAuth};
use crate::request::extract::{optional_json, uuid};
use crate::request::State;
use crate::service::merges;
use crate::service::{families, registry};
use crate::store::access_log::ActorKind;
use crate::store::cards::Card;

/// The `actor` of every holder-visible row not made by a clinic.
pub const CARD_OFFICE: &str = "card_office";
use crate::token::TokenKind;

use super::cards::{log_view, token_view};

/// Which card a holder request is for: the holder's own (no `card_id`) or
/// a dependant's.
#[derive(Deserialize, ToSchema, IntoParams)]
pub struct CardChoice {
    /// One of the cards of `GET /api/v1/holder/cards`; any other is 404.
    pub card_id: Option<String>,
}

impl CardChoice {
    fn card(&self) -> Result<Option<CardId>, AppError> {
        match self.card_id.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => Ok(Some(CardId::from(uuid(s)?))),
        }
    }
}

/// The card the request reaches through the holder's credential (the rule
/// lives in `service::families::reach`); 404 for any other.
async fn reached(
    state: &web::Data<State>,
    holder: HolderAuth,
    choice: &CardChoice,
) -> Result<Card, AppError> {
    let wanted = choice.card()?;
    if wanted.is_none() || wanted == Some(holder.0.id) {
        return Ok(holder.0);
    }
    let ctx = state.ctx.clone();
    let own = holder.0;
    web::block(move || families::reach_card(&ctx, &own, wanted))
        .await
        .map_err(|_| AppError::Unavailable)?
        .map_err(AppError::from)
}

/// A fresh dynamic token (short-lived, accepted once) for the holder's card
/// or, with `card_id`, a dependant's.
#[utoipa::path(tag = "holder",
    request_body(content = Option<CardChoice>),
    responses((status = 201, body = TokenView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "a card this credential does not reach"),
        (status = 409, body = ErrorBody, description = "the card is suspended, revoked or replaced"),
        (status = 429, body = ErrorBody)),
    security(("holder" = [])))]
#[post("/api/v1/holder/tokens")]
pub(crate) async fn tokens(
    state: web::Data<State>,
    holder: HolderAuth,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let choice = optional_json::<CardChoice>(&req, &body)?.unwrap_or(CardChoice { card_id: None });
    let card = reached(&state, holder, &choice).await?;
    let minted = registry::mint_for(&state.ctx, &card, TokenKind::Dynamic)?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(token_view(&minted)))
}

async fn qr(
    state: web::Data<State>,
    holder: HolderAuth,
    choice: CardChoice,
    png: bool,
) -> Result<HttpResponse, AppError> {
    let card = reached(&state, holder, &choice).await?;
    let minted = registry::mint_for(&state.ctx, &card, TokenKind::Dynamic)?;
    super::qr_response(&minted.text, png, false).await
}

/// A fresh dynamic token as an SVG QR code.
#[utoipa::path(tag = "holder", params(CardChoice),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("holder" = [])))]
#[get("/api/v1/holder/qr.svg")]
pub(crate) async fn qr_svg(
    state: web::Data<State>,
    holder: HolderAuth,
    choice: web::Query<CardChoice>,
) -> Result<HttpResponse, AppError> {
    qr(state, holder, choice.into_inner(), false).await
}

/// A fresh dynamic token as a PNG QR code.
#[utoipa::path(tag = "holder", params(CardChoice),
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("holder" = [])))]
#[get("/api/v1/holder/qr.png")]
pub(crate) async fn qr_png(
    state: web::Data<State>,
    holder: HolderAuth,
    choice: web::Query<CardChoice>,
) -> Result<HttpResponse, AppError> {
    qr(state, holder, choice.into_inner(), true).await
}

/// Who resolved this resident's cards, and when (newest first); with
/// `card_id`, a dependant's.
#[utoipa::path(tag = "holder", params(CardChoice),
    responses((status = 200, body = Vec<AccessLogView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("holder" = [])))]
#[get("/api/v1/holder/access-log")]
pub(crate) async fn access(
    state: web::Data<State>,
    holder: HolderAuth,
    choice: web::Query<CardChoice>,
) -> Result<HttpResponse, AppError> {
    let resident = reached(&state, holder, &choice).await?.resident_id;
    let ctx = state.ctx.clone();
    // With the records merged into this one: the holder's history stays whole.
    let rows = blocking(move || merges::history(&ctx, resident, 200)).await?;
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
