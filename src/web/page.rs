//! What every page shares: the per-request context ([`Cx`]: language, CSRF
//! token, cookies to set), the security headers, the HTML shell and the error
//! page.

use std::fmt;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use maud::{html, Markup, DOCTYPE};

use super::csrf::{self, CSRF_COOKIE, CSRF_FIELD};
use super::i18n::{Lang, LANG_COOKIE};
use crate::domain::DomainError;
use crate::error::AppError;
use crate::store::StoreError;

/// The Content-Security-Policy of every page: scripts, styles and images
/// only from this origin (no inline script or style), no framing, forms
/// only to this origin.
pub(super) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers every page carries. Pages hold personal data or live
/// tokens, so none is stored by the browser or a proxy. The referrer policy is
/// `same-origin`, not `no-referrer`: with `no-referrer` browsers send
/// `Origin: null` on form posts, and the CSRF check wants the real origin.
pub(super) fn security_headers(b: &mut HttpResponseBuilder) {
    b.insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .insert_header((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ));
}

/// Which part of the site a page belongs to (its header and style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Area {
    Admin,
    Card,
    Kiosk,
    Print,
}

/// Per-request page context.
#[derive(Clone)]
pub(super) struct Cx {
    pub lang: Lang,
    /// The CSRF token for this browser's forms.
    pub csrf: String,
    /// Where the language switch link leads (see [`switch_target`]).
    pub path: String,
    secure: bool,
    cookies: Vec<Cookie<'static>>,
}

impl Cx {
    pub(super) fn new(req: &HttpRequest) -> Cx {
        let (lang, from_query) = Lang::of(req);
        let secure = crate::proxy::client(req).https;
        let mut cx = Cx {
            lang,
            csrf: String::new(),
            path: switch_target(req),
            secure,
            cookies: Vec::new(),
        };
        if from_query {
            cx.set_cookie(LANG_COOKIE, lang.code().to_string(), Some(365 * 24 * 3600));
        }
        let value = match csrf::cookie_value(req) {
            Some(v) => v,
            None => {
                let v = csrf::new_cookie_value();
                cx.set_cookie(CSRF_COOKIE, v.clone(), None);
                v
            }
        };
        cx.csrf = csrf::token_for(&value);
        cx
    }

    pub(super) fn t(&self, zh: &'static str, en: &'static str) -> &'static str {
        self.lang.t(zh, en)
    }

    /// Queues an HttpOnly, SameSite=Strict cookie on path `/`; over HTTPS it
    /// is `Secure` and named `__Host-` + `name` ([`crate::proxy::cookie_name`]).
    /// `max_age_secs: None` makes a browser-session cookie.
    pub(super) fn set_cookie(
        &mut self,
        name: &'static str,
        value: String,
        max_age_secs: Option<i64>,
    ) {
        let name = crate::proxy::cookie_name(self.secure, name);
        let mut c = Cookie::build(name.clone(), value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .finish();
        if let Some(s) = max_age_secs {
            c.set_max_age(CookieDuration::seconds(s));
        }
        self.cookies.retain(|k| k.name() != name);
        self.cookies.push(c);
    }

    /// Queues the removal of a cookie.
    pub(super) fn remove_cookie(&mut self, name: &'static str) {
        let name = crate::proxy::cookie_name(self.secure, name);
        let mut c = Cookie::build(name.clone(), "")
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .finish();
        c.make_removal();
        self.cookies.retain(|k| k.name() != name);
        self.cookies.push(c);
    }

    fn builder(&self, status: StatusCode) -> HttpResponseBuilder {
        let mut b = HttpResponse::build(status);
        security_headers(&mut b);
        for c in &self.cookies {
            b.cookie(c.clone());
        }
        b
    }

    /// An HTML page.
    pub(super) fn html(self, status: StatusCode, markup: Markup) -> HttpResponse {
        self.builder(status)
            .content_type("text/html; charset=utf-8")
            .body(markup.into_string())
    }

    pub(super) fn ok(self, markup: Markup) -> HttpResponse {
        self.html(StatusCode::OK, markup)
    }

    /// 303 See Other to a path of this site.
    pub(super) fn redirect(self, to: &str) -> HttpResponse {
        self.builder(StatusCode::SEE_OTHER)
            .insert_header((header::LOCATION, to.to_string()))
            .finish()
    }

    /// JSON for the pages' own scripts (with the page headers).
    pub(super) fn json<T: serde::Serialize>(self, status: StatusCode, body: &T) -> HttpResponse {
        self.builder(status).json(body)
    }

    /// The hidden CSRF field of a form.
    pub(super) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(CSRF_FIELD) value=(self.csrf); }
    }

    /// The whole page around `body`.
    pub(super) fn shell(
        &self,
        area: Area,
        title: &str,
        scripts: &[&str],
        nav: Option<Markup>,
        body: Markup,
    ) -> Markup {
        let l = self.lang;
        let (brand, class) = match area {
            Area::Admin => (
                l.t("电子健康卡 · 发卡管理", "Health card · Card office"),
                "area-admin",
            ),
            Area::Card => (l.t("居民电子健康卡", "Electronic health card"), "area-card"),
            Area::Kiosk => (
                l.t("电子健康卡 · 自助机", "Health card · Kiosk"),
                "area-kiosk",
            ),
            Area::Print => (l.t("打印健康卡", "Print health card"), "area-print"),
        };
        let other = l.other();
        html! {
            (DOCTYPE)
            html lang=(l.html()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="csrf-token" content=(self.csrf);
                    title { (title) " · " (brand) }
                    link rel="stylesheet" href="/static/app.css";
                    @for s in scripts {
                        script src=(format!("/static/{s}")) defer {}
                    }
                }
                body class=(class) {
                    header.top.no-print {
                        span.brand { (brand) }
                        @if let Some(n) = nav { nav { (n) } }
                        a.lang href=(format!("{}?lang={}", self.path, other.code())) lang=(other.html()) {
                            (other.own_name())
                        }
                    }
                    main { (body) }
                }
            }
        }
    }
}

/// Where the language switch leads: the page itself, or for the answer to a
/// form (a POST, which a link cannot repeat) the start page of its area.
fn switch_target(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        return req.path().to_string();
    }
    let area = req
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    format!("/{area}")
}

/// Formats a UTC time for a page (the card office works in China Standard Time).
pub(super) fn when(t: chrono::NaiveDateTime) -> String {
    let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("fixed offset");
    t.and_utc()
        .with_timezone(&cst)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// First 8 hex digits of an id: enough for a person to tell cards apart.
pub(super) fn short(id: impl fmt::Display) -> String {
    id.to_string().chars().take(8).collect()
}

/// An error shown as a page. The language is not known here, so the page
/// says it in both.
#[derive(Debug)]
pub(super) struct PageError(pub AppError);

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError(e)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError(e.into())
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        PageError(e.into())
    }
}

impl From<actix_web::error::BlockingError> for PageError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        PageError(AppError::Unavailable)
    }
}

pub(super) type PageResult = Result<HttpResponse, PageError>;

/// A form that carries nothing but its CSRF token (sign-out buttons).
#[derive(serde::Deserialize)]
pub(super) struct CsrfOnly {
    pub csrf: Option<String>,
}

/// Sign-out of a cookie-held credential (holder card, kiosk): checks the
/// form's CSRF token, forgets `cookie` and goes to `to`.
pub(super) fn close_with(
    req: &HttpRequest,
    form: &CsrfOnly,
    cookie: &'static str,
    to: &str,
) -> PageResult {
    let mut cx = Cx::new(req);
    if !csrf::check(req, form.csrf.as_deref()) {
        return Err(AppError::Forbidden("the form expired; reload the page".into()).into());
    }
    cx.remove_cookie(cookie);
    Ok(cx.redirect(to))
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (zh, en) = match status.as_u16() {
            400 => ("请求无效", "Bad request"),
            401 => ("请先登录", "Please sign in"),
            403 => ("没有权限", "Not allowed"),
            404 => ("未找到", "Not found"),
            409 => ("操作与当前状态冲突", "Conflicts with the current state"),
            413 => ("文件太大", "Too large"),
            422 => ("输入无效", "Invalid input"),
            429 => (
                "操作太频繁，请稍后再试",
                "Too many attempts; try again later",
            ),
            503 => (
                "服务暂时不可用，请稍后再试",
                "Service unavailable; try again shortly",
            ),
            _ => ("出错了", "Something went wrong"),
        };
        let detail = match &self.0 {
            AppError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error on a page");
                None
            }
            other => Some(other.to_string()),
        };
        let body = html! {
            (DOCTYPE)
            html lang="zh-CN" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (zh) " · " (en) }
                    link rel="stylesheet" href="/static/app.css";
                }
                body {
                    main.error-page {
                        h1 { (zh) }
                        p lang="en" { (en) }
                        @if let Some(d) = detail { p.detail lang="en" { (d) } }
                    }
                }
            }
        };
        let mut b = HttpResponse::build(status);
        security_headers(&mut b);
        if let AppError::RateLimited { retry_after } = &self.0 {
            b.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        b.content_type("text/html; charset=utf-8")
            .body(body.into_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_china_standard_time() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(20, 0, 0)
            .unwrap();
        assert_eq!(when(t), "2026-01-02 04:00:00");
    }
}
