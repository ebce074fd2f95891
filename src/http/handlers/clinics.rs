//! Clinics and their API keys.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{ClinicCode, ClinicId, ClinicName, Scopes};
use crate::error::{AppError, ErrorBody};
use crate::http::views::{ClinicView, CreatedClinic};
use crate::request::auth::{blocking, AdminAuth};
use crate::request::extract::uuid;
use crate::request::State;
use crate::service::lookup;
use crate::service::registry::{self, Actor};

#[derive(Deserialize, ToSchema)]
pub struct CreateClinic {
    /// Short unique code, `[A-Za-z0-9_-]{1,32}`
    pub code: String,
    pub name: String,
    /// Any of `verify`, `link`, `pii`
    pub scopes: Vec<String>,
}

/// Register a clinic; its first API key is shown this once.
#[utoipa::path(tag = "clinics", request_body = CreateClinic,
    responses((status = 201, body = CreatedClinic), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("admin" = [])))]
#[post("/api/v1/clinics")]
pub(crate) async fn create(
    state: web::Data<State>,
    admin: AdminAuth,
    body: web::Json<CreateClinic>,
) -> Result<HttpResponse, AppError> {
    let code = ClinicCode::parse_new(&body.code)?;
    let name = ClinicName::parse(&body.name)?.into_string();
    if body.scopes.iter().any(|s| s.contains(',')) {
        return Err(AppError::invalid(
            "invalid_scopes",
            "scopes is a list of single scopes, e.g. [\"verify\", \"link\"]",
        ));
    }
    let scopes = Scopes::parse(&body.scopes.join(","))?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let (clinic, key) =
        blocking(move || registry::create_clinic(&ctx, &actor, &code, &name, &scopes)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedClinic {
            clinic: ClinicView::from(&clinic),
            api_key: key.expose().to_string(),
        }))
}

/// All clinics.
#[utoipa::path(tag = "clinics", responses((status = 200, body = Vec<ClinicView>)), security(("admin" = [])))]
#[get("/api/v1/clinics")]
pub(crate) async fn list(
    state: web::Data<State>,
    _admin: AdminAuth,
) -> Result<HttpResponse, AppError> {
    let ctx = state.ctx.clone();
    let all = blocking(move || lookup::clinics(&ctx)).await?;
    Ok(HttpResponse::Ok().json(all.iter().map(ClinicView::from).collect::<Vec<_>>()))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    /// A non-secret hint to tell keys apart.
    pub hint: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewApiKey {
    pub id: String,
    /// Shown this once.
    pub api_key: String,
}

/// A clinic's API keys (never the keys themselves).
#[utoipa::path(tag = "clinics", params(("id" = String, Path)),
    responses((status = 200, body = Vec<ApiKeyView>), (status = 404, body = ErrorBody)), security(("admin" = [])))]
#[get("/api/v1/clinics/{id}/keys")]
pub(crate) async fn keys(
    state: web::Data<State>,
    _admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ClinicId::from(uuid(&id)?);
    let ctx = state.ctx.clone();
    let (_, ks) = blocking(move || lookup::clinic_and_keys(&ctx, id)).await?;
    Ok(HttpResponse::Ok().json(
        ks.iter()
            .map(|k| ApiKeyView {
                id: k.id.clone(),
                hint: k.hint.clone(),
                created_at: k.created_at.and_utc(),
                revoked_at: k.revoked_at.map(|t| t.and_utc()),
            })
            .collect::<Vec<_>>(),
    ))
}

/// A new API key for a clinic (key rotation), shown this once.
#[utoipa::path(tag = "clinics", params(("id" = String, Path)),
    responses((status = 201, body = NewApiKey), (status = 404, body = ErrorBody)), security(("admin" = [])))]
#[post("/api/v1/clinics/{id}/keys")]
pub(crate) async fn add_key(
    state: web::Data<State>,
    admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ClinicId::from(uuid(&id)?);
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let (_, info, secret) = blocking(move || registry::add_api_key(&ctx, &actor, id)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(NewApiKey {
            id: info.id,
            api_key: secret.expose().to_string(),
        }))
}

/// Revoke one API key of a clinic.
#[utoipa::path(tag = "clinics", params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("admin" = [])))]
#[delete("/api/v1/clinics/{id}/keys/{key_id}")]
pub(crate) async fn revoke_key(
    state: web::Data<State>,
    admin: AdminAuth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, key_id) = path.into_inner();
    let id = ClinicId::from(uuid(&id)?);
    uuid(&key_id)?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    blocking(move || registry::revoke_api_key(&ctx, &actor, id, &key_id)).await?;
    state.clinic_cache.clear();
    Ok(HttpResponse::NoContent().finish())
}
