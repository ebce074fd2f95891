//! Cards: issue, read, lifecycle, tokens and QR images, links, access log.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{CardAction, CardId, ChangeReason, ResidentId};
use crate::error::{AppError, ErrorBody};
use crate::http::views::{AccessLogView, CardView, IssuedCard, LinkView, TokenView};
use crate::request::auth::{blocking, AdminAuth, ClinicAuth};
use crate::request::extract::{optional_json, uuid};
use crate::request::State;
use crate::service::lookup;
use crate::service::registry::{self, Actor, MintVia};
use crate::store::access_log;
use crate::token::{MintedToken, TokenKind};

fn card_id(s: &str) -> Result<CardId, AppError> {
    Ok(CardId::from(uuid(s)?))
}

/// Issue a card to a resident.
#[utoipa::path(
    tag = "cards",
    params(("id" = String, Path, description = "resident id")),
    responses(
        (status = 201, body = IssuedCard, description = "the holder credential is shown this once"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the resident already has an active or suspended card"),
    ),
    security(("admin" = []))
)]
#[post("/api/v1/residents/{id}/cards")]
pub(crate) async fn issue(
    state: web::Data<State>,
    admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let resident = ResidentId::from(uuid(&id)?);
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let (card, secret) = blocking(move || registry::issue_card(&ctx, &actor, resident)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(IssuedCard {
            card: CardView::from(&card),
            holder_credential: secret.expose().to_string(),
        }))
}

/// A card.
#[utoipa::path(
    tag = "cards",
    params(("id" = String, Path, description = "card id")),
    responses((status = 200, body = CardView), (status = 404, body = ErrorBody)),
    security(("admin" = []))
)]
#[get("/api/v1/cards/{id}")]
pub(crate) async fn get(
    state: web::Data<State>,
    _admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = card_id(&id)?;
    let ctx = state.ctx.clone();
    // A temporary card's view names its issuing clinic and valid_until.
    let view = blocking(move || {
        Ok(match crate::service::temporary::facts(&ctx, id)? {
            Some(f) => CardView::from(&f.card).temporary(&f.temporary, f.clinic_code.as_str()),
            None => CardView::from(&lookup::card(&ctx, id)?),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, ToSchema)]
pub struct ReasonBody {
    /// Recorded in the access log, e.g. "lost phone".
    pub reason: Option<String>,
}

fn reason(req: &HttpRequest, body: &web::Bytes) -> Result<Option<ChangeReason>, AppError> {
    let text = optional_json::<ReasonBody>(req, body)?.and_then(|b| b.reason);
    Ok(ChangeReason::parse(text.as_deref().unwrap_or_default())?)
}

async fn transition(
    state: web::Data<State>,
    admin: AdminAuth,
    req: HttpRequest,
    id: String,
    body: web::Bytes,
    action: CardAction,
) -> Result<HttpResponse, AppError> {
    let id = card_id(&id)?;
    let why = reason(&req, &body)?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let card =
        blocking(move || registry::change_card(&ctx, &actor, id, action, why.as_ref())).await?;
    Ok(HttpResponse::Ok().json(CardView::from(&card)))
}

/// Suspend an active card (its tokens are refused until reinstated).
#[utoipa::path(tag = "cards", params(("id" = String, Path)), request_body(content = Option<ReasonBody>),
    responses((status = 200, body = CardView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin" = [])))]
#[post("/api/v1/cards/{id}/suspend")]
pub(crate) async fn suspend(
    state: web::Data<State>,
    admin: AdminAuth,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    transition(
        state,
        admin,
        req,
        id.into_inner(),
        body,
        CardAction::Suspend,
    )
    .await
}

/// Reinstate a suspended card.
#[utoipa::path(tag = "cards", params(("id" = String, Path)), request_body(content = Option<ReasonBody>),
    responses((status = 200, body = CardView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin" = [])))]
#[post("/api/v1/cards/{id}/reinstate")]
pub(crate) async fn reinstate(
    state: web::Data<State>,
    admin: AdminAuth,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    transition(
        state,
        admin,
        req,
        id.into_inner(),
        body,
        CardAction::Reinstate,
    )
    .await
}

/// Revoke a card for good.
#[utoipa::path(tag = "cards", params(("id" = String, Path)), request_body(content = Option<ReasonBody>),
    responses((status = 200, body = CardView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin" = [])))]
#[post("/api/v1/cards/{id}/revoke")]
pub(crate) async fn revoke(
    state: web::Data<State>,
    admin: AdminAuth,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    transition(state, admin, req, id.into_inner(), body, CardAction::Revoke).await
}

/// Replace a card (lost card or phone): a new active card and holder credential; the old card becomes `replaced`.
#[utoipa::path(tag = "cards", params(("id" = String, Path)), request_body(content = Option<ReasonBody>),
    responses((status = 201, body = IssuedCard), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin" = [])))]
#[post("/api/v1/cards/{id}/reissue")]
pub(crate) async fn reissue(
    state: web::Data<State>,
    admin: AdminAuth,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let id = card_id(&id)?;
    let why = reason(&req, &body)?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let (card, secret) =
        blocking(move || registry::reissue_card(&ctx, &actor, id, why.as_ref())).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(IssuedCard {
            card: CardView::from(&card),
            holder_credential: secret.expose().to_string(),
        }))
}

#[derive(Deserialize, ToSchema)]
pub struct MintRequest {
    /// `static` (printed, long-lived) or `dynamic` (on screen, 120 s, accepted once)
    pub kind: String,
}

pub fn token_view(m: &MintedToken) -> TokenView {
    let qr_version = crate::token::qr::version_for(&m.text).unwrap_or(0);
    TokenView {
        token: m.text.clone(),
        kind: m.claims.kind.as_str().to_string(),
        issued_at: chrono::DateTime::from_timestamp(m.claims.issued_at, 0).unwrap_or_default(),
        expires_at: chrono::DateTime::from_timestamp(m.claims.expires_at, 0).unwrap_or_default(),
        qr_version,
    }
}

/// Mint a token for an active card.
#[utoipa::path(tag = "tokens", params(("id" = String, Path)), request_body = MintRequest,
    responses((status = 201, body = TokenView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the card is not active"), (status = 422, body = ErrorBody)),
    security(("admin" = [])))]
#[post("/api/v1/cards/{id}/tokens")]
pub(crate) async fn mint(
    state: web::Data<State>,
    admin: AdminAuth,
    id: web::Path<String>,
    body: web::Json<MintRequest>,
) -> Result<HttpResponse, AppError> {
    let id = card_id(&id)?;
    let kind: TokenKind = body
        .kind
        .parse()
        .map_err(|_| AppError::invalid("invalid_kind", "kind must be `static` or `dynamic`"))?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let view = web::block(move || -> Result<TokenView, AppError> {
        let (_, minted) = registry::mint_recorded(&ctx, &actor, id, kind, MintVia::Api)?;
        Ok(token_view(&minted))
    })
    .await
    .map_err(|_| AppError::Unavailable)??;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

async fn static_qr(
    state: web::Data<State>,
    admin: AdminAuth,
    id: String,
    via: MintVia,
) -> Result<HttpResponse, AppError> {
    let id = card_id(&id)?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let text = web::block(move || -> Result<String, AppError> {
        let (_, minted) = registry::mint_recorded(&ctx, &actor, id, TokenKind::Static, via)?;
        Ok(minted.text)
    })
    .await
    .map_err(|_| AppError::Unavailable)??;
    super::qr_response(&text, via == MintVia::QrPng, true).await
}

/// A fresh static token of the card as an SVG QR code (for printing).
#[utoipa::path(tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin" = [])))]
#[get("/api/v1/cards/{id}/qr.svg")]
pub(crate) async fn qr_svg(
    state: web::Data<State>,
    admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    static_qr(state, admin, id.into_inner(), MintVia::QrSvg).await
}

/// A fresh static token of the card as a PNG QR code.
#[utoipa::path(tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, content_type = "image/png", body = Vec<u8>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin" = [])))]
#[get("/api/v1/cards/{id}/qr.png")]
pub(crate) async fn qr_png(
    state: web::Data<State>,
    admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    static_qr(state, admin, id.into_inner(), MintVia::QrPng).await
}

/// Administrators or a clinic (its own links only).
pub enum AdminOrClinic {
    Admin,
    Clinic(ClinicAuth),
}

/// Every local patient number of the card's resident.
#[utoipa::path(tag = "links", params(("id" = String, Path)),
    responses((status = 200, body = Vec<LinkView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = []), ("clinic" = [])))]
#[get("/api/v1/cards/{id}/links")]
pub(crate) async fn card_links(
    state: web::Data<State>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    use actix_web::FromRequest;
    let caller = if crate::request::auth::bearer(&req)
        .map(|b| b.starts_with(crate::crypto::SecretKind::ApiKey.prefix()))
        .unwrap_or(false)
    {
        AdminOrClinic::Clinic(ClinicAuth::extract(&req).await?)
    } else {
        AdminAuth::extract(&req).await?;
        AdminOrClinic::Admin
    };
    let id = card_id(&id)?;
    let only = match &caller {
        AdminOrClinic::Admin => None,
        AdminOrClinic::Clinic(c) => Some(c.0.id),
    };
    let ctx = state.ctx.clone();
    let found = blocking(move || lookup::links_of_card(&ctx, id)).await?;
    let views: Vec<LinkView> = found
        .into_iter()
        .filter(|(_, _, clinic)| only.is_none_or(|o| o == *clinic))
        .map(|(code, lpid, _)| LinkView {
            clinic_code: code.as_str().to_string(),
            local_patient_id: lpid.as_str().to_string(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Every resolution and administrative action on the card, newest first.
#[utoipa::path(tag = "cards", params(("id" = String, Path)),
    responses((status = 200, body = Vec<AccessLogView>), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
#[get("/api/v1/cards/{id}/access-log")]
pub(crate) async fn card_access_log(
    state: web::Data<State>,
    _admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = card_id(&id)?;
    let ctx = state.ctx.clone();
    let rows = blocking(move || lookup::card_log(&ctx, id, 1000)).await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(log_view).collect::<Vec<_>>()))
}

pub fn log_view(r: &access_log::LogEntry) -> AccessLogView {
    AccessLogView {
        seq: r.seq,
        at: r.at.and_utc(),
        actor_kind: r.actor_kind.as_str().to_string(),
        actor: r.actor.clone(),
        action: r.action.clone(),
        card_id: r.card_id.map(Into::into),
        channel: r.channel.map(|c| c.as_str().to_string()),
        step: r.step.map(|s| s.as_str().to_string()),
        credential: r.credential_shown().map(|c| c.as_str().to_string()),
        outcome: r.outcome.clone(),
        detail: r.detail.clone(),
    }
}
