//! Who is calling: extractors for the three kinds of credential of API.md.
//! A missing or wrong credential is 401, a credential without the scope 403.
//! Secrets are parsed by shape first (a wrong prefix never reaches the
//! database), then looked up by their SHA-256.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::crypto::{SecretHash, SecretKind, SecretToken};
use crate::domain::Scope;
use crate::error::AppError;
use crate::store::admins::Admin;
use crate::store::cards::Card;
use crate::store::clinics::Clinic;
use crate::store::{clinics, StoreError};

use super::State;

/// Name of the portal's session cookie.
pub const SESSION_COOKIE: &str = "hc_session";

/// The bearer value of the Authorization header, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The bearer secret of `kind` this request presents; else a failed
/// authentication (counted by the limits).
fn bearer_secret(req: &HttpRequest, st: &State, kind: SecretKind) -> Result<SecretToken, AppError> {
    bearer(req)
        .and_then(|b| SecretToken::parse(kind, b))
        .ok_or_else(|| st.limits.auth_failure(req))
}

fn state(req: &HttpRequest) -> Result<web::Data<State>, AppError> {
    req.app_data::<web::Data<State>>()
        .cloned()
        .ok_or_else(|| AppError::Internal("application state missing".into()))
}

/// Runs blocking store work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AppError> {
    match web::block(f).await {
        Ok(r) => r.map_err(AppError::from),
        Err(_) => Err(AppError::Unavailable),
    }
}

/// A short-lived cache of API key hash -> clinic, so that a busy HIS does not
/// cost a database round trip per verification. Revoking a key takes effect
/// on every node within [`ClinicCache::TTL`].
#[derive(Default)]
pub struct ClinicCache {
    map: Mutex<HashMap<SecretHash, (Arc<Clinic>, Instant)>>,
}

impl ClinicCache {
    pub const TTL: Duration = Duration::from_secs(5);

    fn get(&self, h: &SecretHash) -> Option<Arc<Clinic>> {
        let map = self.map.lock().ok()?;
        map.get(h)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(c, _)| c.clone())
    }

    fn put(&self, h: SecretHash, c: Arc<Clinic>) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() > 10_000 {
                map.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            }
            map.insert(h, (c, Instant::now()));
        }
    }

    /// Forgets everything (after a key is revoked on this node).
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

/// A clinic, kiosk or HIS authenticated by its API key.
pub struct ClinicAuth(pub Arc<Clinic>);

impl ClinicAuth {
    /// 403 unless the clinic holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if self.0.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this API key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }
}

fn boxed<T: 'static>(
    f: impl Future<Output = Result<T, AppError>> + 'static,
) -> Pin<Box<dyn Future<Output = Result<T, AppError>>>> {
    Box::pin(f)
}

impl FromRequest for ClinicAuth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        boxed(async move {
            let st = state(&req)?;
            let secret = bearer_secret(&req, &st, SecretKind::ApiKey)?;
            let hash = secret.hash();
            if let Some(c) = st.clinic_cache.get(&hash) {
                st.limits.verify_rate(&c)?;
                return Ok(ClinicAuth(c));
            }
            let ctx = st.ctx.clone();
            let found = blocking(move || {
                let mut conn = ctx.conn()?;
                clinics::authenticate(&mut conn, &hash)
            })
            .await?;
            let clinic = Arc::new(found.ok_or_else(|| st.limits.auth_failure(&req))?);
            st.clinic_cache.put(hash, clinic.clone());
            st.limits.verify_rate(&clinic)?;
            Ok(ClinicAuth(clinic))
        })
    }
}

/// A signed-in administrator (bearer session token or the portal's cookie).
pub struct AdminAuth(pub Admin);

/// The session secret presented by a request, header first, then cookie.
pub fn session_secret(req: &HttpRequest) -> Option<SecretToken> {
    if let Some(b) = bearer(req) {
        return SecretToken::parse(SecretKind::Session, b);
    }
    let cookie = crate::proxy::cookie(req, SESSION_COOKIE)?;
    SecretToken::parse(SecretKind::Session, &cookie)
}

impl FromRequest for AdminAuth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        boxed(async move {
            let st = state(&req)?;
            if session_secret(&req).is_none() {
                return Err(st.limits.auth_failure(&req));
            }
            if bearer(&req).is_none()
                && !req.method().is_safe()
                && crate::proxy::origin(&req) != crate::proxy::Origin::Same
            {
                // A cookie rides along with any request the browser makes, so a
                // change by cookie must come from one of our own pages.
                return Err(AppError::Forbidden(
                    "a change signed in by cookie must come from this site's own pages".into(),
                ));
            }
            signed_in_admin(&req, &st)
                .await?
                .map(AdminAuth)
                .ok_or_else(|| st.limits.auth_failure(&req))
        })
    }
}

/// The administrator of the session this request presents (bearer token,
/// else the portal's cookie), if that session is valid: the one look-up
/// behind the API's [`AdminAuth`] and the portal's `SignedIn`.
pub async fn signed_in_admin(req: &HttpRequest, st: &State) -> Result<Option<Admin>, AppError> {
    let Some(secret) = session_secret(req) else {
        return Ok(None);
    };
    let ctx = st.ctx.clone();
    blocking(move || crate::service::admins::session_admin(&ctx, &secret)).await
}

/// Ends the session this request presents, if any (sign-out, API and portal).
pub async fn close_session(req: &HttpRequest, st: &State) -> Result<(), AppError> {
    let Some(secret) = session_secret(req) else {
        return Ok(());
    };
    let ctx = st.ctx.clone();
    blocking(move || crate::service::admins::close_session(&ctx, &secret)).await
}

/// A card holder, by the credential given at issuance.
pub struct HolderAuth(pub Card);

impl FromRequest for HolderAuth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        boxed(async move {
            let st = state(&req)?;
            let secret = bearer_secret(&req, &st, SecretKind::Holder)?;
            let hash = secret.hash();
            st.limits.holder_rate(&hash)?;
            let ctx = st.ctx.clone();
            // The credential dies with its card (the rule is the service's).
            let card = blocking(move || {
                let mut conn = ctx.conn()?;
                crate::service::families::holder_card(&mut conn, &hash)
            })
            .await?;
            card.map(HolderAuth)
                .ok_or_else(|| st.limits.auth_failure(&req))
        })
    }
}
