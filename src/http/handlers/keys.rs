//! Signing keys: the public JWKS, and rotation/revocation for administrators.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{AppError, ErrorBody};
use crate::http::views::KeyInfoView;
use crate::request::auth::{blocking, AdminAuth};
use crate::request::extract::optional_json;
use crate::request::State;
use crate::service::keys;
use crate::service::registry::Actor;
use crate::token::{Alg, Jwks};

/// The public halves of the signing keys (RFC 7517/8037), for offline checks.
#[utoipa::path(tag = "keys", responses((status = 200, body = Object, description = "JSON Web Key Set")))]
#[get("/.well-known/jwks.json")]
pub(crate) async fn jwks(state: web::Data<State>) -> HttpResponse {
    let set: Jwks = state.ctx.keys.current().jwks();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(set)
}

/// The signing keys and their states.
#[utoipa::path(tag = "keys", responses((status = 200, body = Vec<KeyInfoView>)), security(("admin" = [])))]
#[get("/api/v1/keys")]
pub(crate) async fn list(
    state: web::Data<State>,
    _admin: AdminAuth,
) -> Result<HttpResponse, AppError> {
    let ctx = state.ctx.clone();
    let ks = blocking(move || keys::list(&mut *ctx.conn()?)).await?;
    Ok(HttpResponse::Ok().json(ks.iter().map(KeyInfoView::from).collect::<Vec<_>>()))
}

#[derive(Deserialize, ToSchema)]
pub struct RotateBody {
    /// `ed25519`, `es256` or `sm2`; when absent, `sm2` in a data folder of the
    /// national suite and `ed25519` otherwise.
    pub alg: Option<String>,
}

/// Make a new active signing key (optionally `{"alg"}`); the old one keeps
/// verifying until its tokens expire.
#[utoipa::path(tag = "keys", request_body(content = Option<RotateBody>),
    responses((status = 201, body = KeyInfoView), (status = 422, body = ErrorBody, description = "invalid_alg")),
    security(("admin" = [])))]
#[post("/api/v1/keys/rotate")]
pub(crate) async fn rotate(
    state: web::Data<State>,
    admin: AdminAuth,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let alg = match optional_json::<RotateBody>(&req, &body)?.and_then(|b| b.alg) {
        None => keys::default_alg(&state.ctx.master),
        Some(text) => text.parse::<Alg>().map_err(|_| {
            AppError::invalid("invalid_alg", "alg must be `ed25519`, `es256` or `sm2`")
        })?,
    };
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let kid = blocking(move || keys::rotate(&ctx, &actor, alg)).await?;
    let ctx = state.ctx.clone();
    let info = blocking(move || keys::list(&mut *ctx.conn()?))
        .await?
        .into_iter()
        .find(|k| k.kid == kid.to_b64())
        .ok_or_else(|| AppError::Internal("rotated key not found".into()))?;
    Ok(HttpResponse::Created().json(KeyInfoView::from(&info)))
}

/// Mark a key compromised: every token it signed is refused (`key_revoked`) at once.
#[utoipa::path(tag = "keys", params(("kid" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("admin" = [])))]
#[post("/api/v1/keys/{kid}/revoke")]
pub(crate) async fn revoke(
    state: web::Data<State>,
    admin: AdminAuth,
    kid: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let kid = kid.into_inner();
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    blocking(move || keys::revoke(&ctx, &actor, &kid)).await?;
    Ok(HttpResponse::NoContent().finish())
}
