//! The portal's two gates as extractors, so that a handler reads parse →
//! service → render with no hidden return: [`SignedIn`] (a signed-in
//! administrator and the page context, else the sign-in page) and
//! [`Checked`] (a form whose CSRF token matches this browser's cookie, else
//! the "form expired" page).

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use super::csrf_refused;
use crate::error::AppError;
use crate::request::auth::signed_in_admin;
use crate::request::State;
use crate::store::admins::Admin;
use crate::web::csrf;
use crate::web::page::{CsrfOnly, Cx, PageError};

/// Why a gate turned the request away; each renders its own answer.
pub(crate) enum Refused {
    /// Not signed in (or the session ended): to the sign-in page.
    SignIn(Cx),
    /// The form's CSRF token does not match: the "form expired" page.
    FormExpired(Cx),
    /// Anything else (the database unreachable, a body that is no form).
    Page(PageError),
}

impl fmt::Debug for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::SignIn(_) => f.write_str("Refused::SignIn"),
            Refused::FormExpired(_) => f.write_str("Refused::FormExpired"),
            Refused::Page(e) => write!(f, "Refused::Page({e})"),
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::SignIn(_) => f.write_str("sign in first"),
            Refused::FormExpired(_) => f.write_str("the form's token does not match"),
            Refused::Page(e) => e.fmt(f),
        }
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match self {
            Refused::SignIn(_) => actix_web::http::StatusCode::SEE_OTHER,
            Refused::FormExpired(_) => actix_web::http::StatusCode::FORBIDDEN,
            Refused::Page(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Refused::SignIn(cx) => cx.clone().redirect("/admin/login"),
            Refused::FormExpired(cx) => csrf_refused(cx.clone()),
            Refused::Page(e) => e.error_response(),
        }
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, Refused>>>>;

/// A signed-in administrator, with the page context of this request.
pub(crate) struct SignedIn {
    pub admin: Admin,
    pub cx: Cx,
}

impl FromRequest for SignedIn {
    type Error = Refused;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let cx = Cx::new(&req);
            let state = req
                .app_data::<web::Data<State>>()
                .cloned()
                .ok_or(Refused::Page(PageError(AppError::Unavailable)))?;
            match signed_in_admin(&req, &state)
                .await
                .map_err(|e| Refused::Page(PageError(e)))?
            {
                Some(admin) => Ok(SignedIn { admin, cx }),
                None => Err(Refused::SignIn(cx)),
            }
        })
    }
}

/// A URL-encoded form `T` whose `csrf` field matches this browser's cookie
/// (the field is read from the same body; `T` need not declare it).
pub(crate) struct Checked<T>(T);

impl<T> Checked<T> {
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Checked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Checked<T> {
    type Error = Refused;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let not_a_form = |_| {
                Refused::Page(PageError(AppError::BadRequest {
                    code: "invalid_form",
                    message: "the request body is not this form".into(),
                }))
            };
            let body = body.await.map_err(|_| {
                Refused::Page(PageError(AppError::BadRequest {
                    code: "invalid_form",
                    message: "the form could not be read".into(),
                }))
            })?;
            let token: CsrfOnly = serde_urlencoded::from_bytes(&body).map_err(not_a_form)?;
            if !csrf::check(&req, token.csrf.as_deref()) {
                return Err(Refused::FormExpired(Cx::new(&req)));
            }
            Ok(Checked(
                serde_urlencoded::from_bytes(&body).map_err(not_a_form)?,
            ))
        })
    }
}

/// A form with no fields but its token (the buttons that only post).
#[derive(serde::Deserialize)]
pub(crate) struct NoFields {}
