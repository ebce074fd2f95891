//! `/admin`: the card office's portal. Sign-in with the same lock-out as
//! the API (`service::admins::sign_in`), an HttpOnly SameSite=Strict
//! session cookie that expires with the server-side session, and CSRF checks
//! on every form.

mod cards;
mod clinics;
mod gate;
mod import;
mod merges;
mod register;
mod residents;
mod stats;
mod temporary;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::csrf;
use super::page::{Area, Cx, PageError, PageResult};
use crate::request::auth::{blocking, close_session, signed_in_admin, SESSION_COOKIE};
use crate::request::State;
use crate::service::admins::{sign_in, SignIn};
use crate::store::admins::Admin;
pub(super) use gate::{Checked, NoFields, SignedIn};

pub(super) fn scope() -> actix_web::Scope {
    web::scope("/admin")
        .route("", web::get().to(home))
        .route("/", web::get().to(home))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/residents/find", web::post().to(residents::find))
        .route("/residents/new", web::get().to(register::new_form))
        .route("/residents", web::post().to(register::register))
        .route("/residents/{id}", web::get().to(residents::show))
        .route("/residents/{id}/cards", web::post().to(residents::issue))
        .route("/residents/{id}/merge", web::get().to(merges::confirm))
        .route("/residents/{id}/merge", web::post().to(merges::merge))
        .route(
            "/residents/{id}/documents/new",
            web::get().to(register::new_document_form),
        )
        .route(
            "/residents/{id}/documents",
            web::post().to(register::add_document),
        )
        .route(
            "/residents/{id}/guardians",
            web::post().to(residents::add_guardian),
        )
        .route(
            "/residents/{id}/guardians/{guardian}/remove",
            web::post().to(residents::remove_guardian),
        )
        .route("/cards/{id}/print", web::get().to(cards::print_form))
        .route("/cards/{id}/print", web::post().to(cards::print))
        .route("/cards/{id}/log", web::get().to(cards::log))
        .route(
            "/cards/{id}/wristband",
            web::get().to(temporary::wristband_form),
        )
        .route(
            "/cards/{id}/wristband",
            web::post().to(temporary::wristband),
        )
        .route("/temporary-cards", web::get().to(temporary::list))
        .route("/cards/{id}/{action}", web::get().to(cards::confirm))
        .route("/cards/{id}/{action}", web::post().to(cards::change))
        .route("/clinics", web::get().to(clinics::list))
        .route("/clinics", web::post().to(clinics::create))
        .route("/clinics/{id}", web::get().to(clinics::show))
        .route("/clinics/{id}/keys", web::post().to(clinics::add_key))
        .route(
            "/clinics/{id}/keys/{key}/revoke",
            web::post().to(clinics::revoke_key),
        )
        .route("/import", web::get().to(import::form))
        .route("/import", web::post().to(import::upload))
        .route("/stats", web::get().to(stats::show))
        .route("/stats/card-use.csv", web::get().to(stats::csv))
        .default_service(web::to(not_found))
}

async fn not_found() -> Result<HttpResponse, PageError> {
    Err(PageError(crate::error::AppError::NotFound(
        "no such page".into(),
    )))
}

pub(super) fn csrf_refused(cx: Cx) -> HttpResponse {
    let l = cx.lang;
    let body = cx.shell(
        Area::Admin,
        l.t("表单已过期", "Form expired"),
        &[],
        None,
        html! {
            h1 { (l.t("表单已过期", "This form has expired")) }
            p { (l.t("请返回上一页，刷新后再提交一次。", "Go back, reload the page and submit it again.")) }
        },
    );
    cx.html(StatusCode::FORBIDDEN, body)
}

/// The navigation of a signed-in administrator.
pub(super) fn nav(cx: &Cx, admin: &Admin) -> Markup {
    let l = cx.lang;
    html! {
        a href="/admin" { (l.t("查找居民", "Find resident")) }
        a href="/admin/residents/new" { (l.t("登记居民", "Register resident")) }
        a href="/admin/temporary-cards" { (l.t("临时卡", "Temporary cards")) }
        a href="/admin/clinics" { (l.t("医疗机构", "Clinics")) }
        a href="/admin/import" { (l.t("导入旧卡", "Import legacy cards")) }
        a href="/admin/stats" { (l.t("用卡统计", "Card use")) }
        span.who { (admin.username.as_str()) }
        form.inline method="post" action="/admin/logout" {
            (cx.csrf_field())
            button.link type="submit" { (l.t("退出登录", "Sign out")) }
        }
    }
}

/// A page of the signed-in portal.
pub(super) fn page(cx: &Cx, admin: &Admin, title: &str, body: Markup) -> Markup {
    cx.shell(Area::Admin, title, &[], Some(nav(cx, admin)), body)
}

/// A form field with its label and, beside it, the error it caused.
pub(super) fn field(
    id: &str,
    label: &str,
    input: Markup,
    error: Option<&str>,
    hint: Option<&str>,
) -> Markup {
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            (input)
            @if let Some(h) = hint { small.hint { (h) } }
            @if let Some(e) = error { p.error id=(format!("{id}-error")) role="alert" { (e) } }
        }
    }
}

/// The search form of the home page; also shown with an error beside the field.
fn search_form(cx: &Cx, value: &str, error: Option<&str>) -> Markup {
    let l = cx.lang;
    html! {
        form.card-form method="post" action="/admin/residents/find" autocomplete="off" {
            (cx.csrf_field())
            (field(
                "national_id",
                l.t("身份证号", "ID number"),
                html! {
                    input #national_id type="text" name="national_id" value=(value)
                        maxlength="18" inputmode="text" autocomplete="off" spellcheck="false"
                        required autofocus aria-invalid=[error.map(|_| "true")];
                },
                error,
                Some(l.t("18位居民身份证号码", "18-character resident ID number")),
            ))
            button type="submit" { (l.t("查找", "Find")) }
        }
    }
}

/// The find-a-resident page: first with the way to register a new one,
/// then with the number typed and why it is not an ID number.
pub(super) fn find_page(cx: &Cx, admin: &Admin, value: &str, error: Option<&str>) -> Markup {
    let l = cx.lang;
    page(
        cx,
        admin,
        l.t("查找居民", "Find resident"),
        html! {
            h1 { (l.t("查找居民", "Find a resident")) }
            (search_form(cx, value, error))
            @if error.is_none() {
                p { a.button.secondary href="/admin/residents/new" { (l.t("登记新居民", "Register a new resident")) } }
            }
        },
    )
}

async fn home(SignedIn { admin, cx }: SignedIn) -> PageResult {
    let body = find_page(&cx, &admin, "", None);
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    csrf: Option<String>,
}

fn login_page(cx: &Cx, username: &str, error: Option<&str>) -> Markup {
    let l = cx.lang;
    cx.shell(
        Area::Admin,
        l.t("登录", "Sign in"),
        &[],
        None,
        html! {
            h1 { (l.t("管理员登录", "Administrator sign-in")) }
            form.card-form.narrow method="post" action="/admin/login" {
                (cx.csrf_field())
                @if let Some(e) = error { p.error.banner role="alert" { (e) } }
                (field("username", l.t("用户名", "Username"), html! {
                    input #username type="text" name="username" value=(username) required
                        autocomplete="username" autocapitalize="off" spellcheck="false" autofocus[username.is_empty()];
                }, None, None))
                (field("password", l.t("密码", "Password"), html! {
                    input #password type="password" name="password" required
                        autocomplete="current-password" autofocus[!username.is_empty()];
                }, None, None))
                button type="submit" { (l.t("登录", "Sign in")) }
            }
        },
    )
}

async fn login_form(req: HttpRequest, state: web::Data<State>) -> PageResult {
    let cx = Cx::new(&req);
    if signed_in_admin(&req, &state).await?.is_some() {
        return Ok(cx.redirect("/admin"));
    }
    let body = login_page(&cx, "", None);
    Ok(cx.ok(body))
}

async fn login(
    req: HttpRequest,
    state: web::Data<State>,
    form: web::Form<LoginForm>,
) -> PageResult {
    let mut cx = Cx::new(&req);
    let form = form.into_inner();
    if !csrf::check(&req, form.csrf.as_deref()) {
        return Ok(csrf_refused(cx));
    }
    let l = cx.lang;
    let client = crate::proxy::client(&req);
    if let Err(crate::error::AppError::RateLimited { .. }) = state.limits.login_rate(client.ip) {
        let body = login_page(
            &cx,
            &form.username,
            Some(l.t(
                "尝试次数过多，请稍后再试。",
                "Too many attempts; try again later.",
            )),
        );
        return Ok(cx.html(StatusCode::TOO_MANY_REQUESTS, body));
    }
    let ctx = state.ctx.clone();
    let source = client.source_key();
    let (username, password) = (form.username.clone(), form.password);
    let outcome = blocking(move || sign_in(&ctx, &source, &username, &password)).await?;
    match outcome {
        SignIn::Opened { secret, expires_at } => {
            let ttl = (expires_at - chrono::Utc::now()).num_seconds().max(1);
            cx.set_cookie(SESSION_COOKIE, secret.expose().to_string(), Some(ttl));
            // A new CSRF cookie with the new session.
            cx.set_cookie(csrf::CSRF_COOKIE, csrf::new_cookie_value(), None);
            Ok(cx.redirect("/admin"))
        }
        SignIn::Wrong => {
            let body = login_page(
                &cx,
                &form.username,
                Some(l.t("用户名或密码错误。", "Wrong username or password.")),
            );
            Ok(cx.html(StatusCode::UNAUTHORIZED, body))
        }
        SignIn::Locked { retry_after: secs } => {
            let msg = match l {
                super::Lang::Zh => {
                    format!("登录失败次数过多，请在 {secs} 秒后重试。")
                }
                super::Lang::En => {
                    format!("Too many failed sign-ins: try again in {secs} seconds.")
                }
            };
            let body = login_page(&cx, &form.username, Some(&msg));
            Ok(cx.html(StatusCode::TOO_MANY_REQUESTS, body))
        }
    }
}

async fn logout(req: HttpRequest, state: web::Data<State>, _form: Checked<NoFields>) -> PageResult {
    let mut cx = Cx::new(&req);
    close_session(&req, &state).await?;
    cx.remove_cookie(SESSION_COOKIE);
    Ok(cx.redirect("/admin/login"))
}
