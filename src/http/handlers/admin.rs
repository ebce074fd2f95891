//! Administrator sign-in and sign-out.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::AppError;
use crate::request::auth::{blocking, close_session, AdminAuth};
use crate::request::State;
use crate::service::admins::{sign_in, SignIn};

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer session token for `Authorization: Bearer …`.
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// Sign in with a username and password.
#[utoipa::path(
    tag = "admin",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, body = crate::error::ErrorBody, description = "wrong username or password"),
        (status = 429, body = crate::error::ErrorBody, description = "too many failures; see Retry-After"),
    )
)]
#[post("/api/v1/admin/login")]
pub(crate) async fn login(
    req: HttpRequest,
    state: web::Data<State>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, AppError> {
    let client = crate::proxy::client(&req);
    state.limits.login_rate(client.ip)?;
    let body = body.into_inner();
    let ctx = state.ctx.clone();
    let source = client.source_key();
    let outcome = blocking(move || {
        Ok(
            match sign_in(&ctx, &source, &body.username, &body.password)? {
                SignIn::Opened { secret, expires_at } => Ok(Some((secret, expires_at))),
                SignIn::Wrong => Ok(None),
                SignIn::Locked { retry_after } => Err(AppError::RateLimited {
                    retry_after: retry_after as u64,
                }),
            },
        )
    })
    .await??;
    match outcome {
        Some((secret, expires_at)) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(LoginResponse {
                token: secret.expose().to_string(),
                expires_at,
            })),
        None => Err(AppError::Unauthorized),
    }
}

/// End the session of the presented token.
#[utoipa::path(tag = "admin", responses((status = 204), (status = 401, body = crate::error::ErrorBody)))]
#[post("/api/v1/admin/logout")]
pub(crate) async fn logout(
    req: HttpRequest,
    state: web::Data<State>,
    _admin: AdminAuth,
) -> Result<HttpResponse, AppError> {
    close_session(&req, &state).await?;
    Ok(HttpResponse::NoContent().finish())
}
