//! Administrator sign-in and sign-out.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::crypto::{self, SecretKind, SecretToken};
use crate::domain::Username;
use crate::error::AppError;
use crate::http::auth::{blocking, session_secret, AdminAuth};
use crate::http::State;
use crate::store::{admins, sessions, StoreError};

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

/// A PHC hash of a random password, checked when the username does not
/// exist so that both paths cost one Argon2 computation.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        crypto::hash_password(&hex::encode(crypto::random_bytes::<16>())).unwrap_or_default()
    })
}

/// Seconds an account stays locked after `failures` consecutive failures:
/// nothing below the threshold, then 30 s doubling up to 15 minutes.
pub fn lockout_secs(failures: i64, threshold: i64) -> i64 {
    if failures < threshold {
        return 0;
    }
    let steps = (failures - threshold).min(5) as u32;
    (30i64 << steps).min(900)
}

/// The outcome of checking a username and password against the store.
pub enum SignIn {
    Ok(admins::Admin),
    Wrong,
    Locked { retry_after: i64 },
}

/// Checks credentials with lock-out; shared by the API and the portal.
pub fn check_credentials(
    state: &State,
    username: &str,
    password: &str,
) -> Result<SignIn, StoreError> {
    let threshold = i64::from(state.ctx.settings.login_failures_before_lockout);
    let Ok(username) = Username::parse(username) else {
        crypto::verify_password(password, decoy_hash());
        return Ok(SignIn::Wrong);
    };
    let mut conn = state.ctx.conn()?;
    let (failures, last) = admins::failures(&mut conn, &username)?;
    let locked_for = lockout_secs(failures, threshold);
    if let Some(last) = last {
        let until = last.and_utc() + Duration::seconds(locked_for);
        let now = Utc::now();
        if locked_for > 0 && until > now {
            return Ok(SignIn::Locked {
                retry_after: (until - now).num_seconds().max(1),
            });
        }
    }
    let admin = admins::find_by_username(&mut conn, &username)?;
    let ok = match &admin {
        Some(a) => crypto::verify_password(password, &a.password_phc),
        None => {
            crypto::verify_password(password, decoy_hash());
            false
        }
    };
    match (ok, admin) {
        (true, Some(a)) => {
            admins::clear_failures(&mut conn, &username)?;
            Ok(SignIn::Ok(a))
        }
        _ => {
            admins::record_failure(&mut conn, &username)?;
            Ok(SignIn::Wrong)
        }
    }
}

/// Opens a session; returns its secret and expiry.
pub fn open_session(
    state: &State,
    admin: &admins::Admin,
) -> Result<(SecretToken, chrono::DateTime<Utc>), StoreError> {
    let secret = SecretToken::generate(SecretKind::Session);
    let expires = Utc::now() + Duration::seconds(state.ctx.settings.session_ttl_secs);
    let mut conn = state.ctx.conn()?;
    sessions::create(&mut conn, admin.id, &secret.hash(), expires.naive_utc())?;
    Ok((secret, expires))
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
pub async fn login(
    req: HttpRequest,
    state: web::Data<State>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, AppError> {
    state.limits.login_rate(&req)?;
    let body = body.into_inner();
    let st = state.clone();
    let outcome = blocking(move || {
        Ok(
            match check_credentials(&st, &body.username, &body.password)? {
                SignIn::Ok(a) => Ok(Some(open_session(&st, &a)?)),
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
pub async fn logout(
    req: HttpRequest,
    state: web::Data<State>,
    _admin: AdminAuth,
) -> Result<HttpResponse, AppError> {
    if let Some(secret) = session_secret(&req) {
        let hash = secret.hash();
        let ctx = state.ctx.clone();
        blocking(move || {
            let mut conn = ctx.conn()?;
            sessions::delete(&mut conn, &hash)
        })
        .await?;
    }
    Ok(HttpResponse::NoContent().finish())
}
