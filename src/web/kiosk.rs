//! `/kiosk`: a clinic terminal with a keyboard-wedge scanner.
//!
//! The terminal signs in once with the clinic's API key and keeps only a
//! server-side session's token in an HttpOnly, SameSite=Strict cookie
//! (`service::kiosk`): the key never sits in the browser, signing out ends
//! the session for good, and revoking the key ends every kiosk session it
//! opened. The scan field keeps focus; the scanner types the
//! token and Enter; the answer is a big green panel with the resident, or a
//! big red one with the reason in words, and the field is ready for the next
//! scan at once. Verification goes through
//! `service::verification::verify_scanned`, the same use case as `POST
//! /api/v1/verify`, so it is logged and counted in the metrics with the
//! channel (`kiosk` unless the operator picks another) and the step of care
//! picked above the scan field; the pick is kept in a cookie for the next
//! scans.
//!
//! The same field takes the number an ID-card reader types (多码融合): a
//! text that is a chip card's number (`Document::from_card_reader`) goes to
//! `service::identify`, as `POST /api/v1/identify` does, for a key with
//! the `identify` scope; the panel then says it was identified by document
//! and shows the document's type. Linking a number still needs a scanned
//! card (the link's recent-scan rule counts token verifications only).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use uuid::Uuid;

use super::csrf;
use super::page::{close_with, Area, CsrfOnly, Cx, PageError, PageResult};
use crate::crypto::MasterKey;
use crate::domain::{CardId, Channel, ClinicId, Document, LocalPatientId, Scope, Step};
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::State;
use crate::service::identify::{self, Identified, Refusal};
use crate::service::kiosk::{self, Opened};
use crate::service::lookup;
use crate::service::registry;
use crate::service::verification::{self, Outcome, Use};
use crate::store::clinics::Clinic;
use crate::store::{Conflict, StoreError};
use crate::token::Reason;

/// The cookie that keeps the kiosk session's token on the terminal.
pub(super) const KIOSK_COOKIE: &str = "hc_kiosk";
/// How long a terminal remembers the operator's pick.
const USE_COOKIE_SECS: i64 = 24 * 3600;
/// The channel and step the operator picked: `channel,step` (step may be empty).
const USE_COOKIE: &str = "hc_kiosk_use";

/// The channel and step picked on this terminal: `kiosk` and none until
/// the operator picks; a cookie that no longer parses is ignored.
fn picked(req: &HttpRequest) -> Use {
    let default = Use {
        channel: Some(Channel::Kiosk),
        step: None,
    };
    let Some(c) = req.cookie(USE_COOKIE) else {
        return default;
    };
    let (channel, step) = c.value().split_once(',').unwrap_or((c.value(), ""));
    match (channel.parse::<Channel>(), step) {
        (Ok(channel), "") => Use {
            channel: Some(channel),
            step: None,
        },
        (Ok(channel), s) => match s.parse::<Step>() {
            Ok(step) => Use {
                channel: Some(channel),
                step: Some(step),
            },
            Err(_) => default,
        },
        _ => default,
    }
}

/// The channel and step pickers of the scan form.
fn use_pickers(cx: &Cx, used: Use) -> Markup {
    let l = cx.lang;
    html! {
        div.pickers {
            label for="channel" { (l.t("用卡渠道", "Channel")) }
            select #channel name="channel" {
                @for c in Channel::ALL {
                    option value=(c.as_str()) selected[used.channel == Some(c)] { (l.channel(c.as_str())) }
                }
            }
            label for="step" { (l.t("就诊环节", "Step of care")) }
            select #step name="step" {
                option value="" selected[used.step.is_none()] { (l.t("未指定", "Not given")) }
                @for st in Step::ALL {
                    option value=(st.as_str()) selected[used.step == Some(st)] { (l.step(st)) }
                }
            }
        }
    }
}

pub(super) fn scope() -> actix_web::Scope {
    web::scope("/kiosk")
        .route("", web::get().to(show))
        .route("/", web::get().to(show))
        .route("/open", web::post().to(open))
        .route("/close", web::post().to(close))
        .route("/scan", web::post().to(scan))
        .route("/scan", web::get().to(back_to_scan))
        .route("/link", web::post().to(link))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(PageError(AppError::NotFound("no such page".into())))
        }))
}

/// The clinic whose kiosk session this terminal holds.
async fn clinic_of(
    req: &HttpRequest,
    state: &web::Data<State>,
) -> Result<Option<Arc<Clinic>>, AppError> {
    let Some(token) = crate::proxy::cookie(req, KIOSK_COOKIE) else {
        return Ok(None);
    };
    let ctx = state.ctx.clone();
    let found = blocking(move || kiosk::clinic_of(&ctx, &token)).await?;
    Ok(found.map(Arc::new))
}

fn sign_in_page(cx: &Cx, error: Option<&str>) -> Markup {
    let l = cx.lang;
    cx.shell(
        Area::Kiosk,
        l.t("自助机登录", "Kiosk sign-in"),
        &[],
        None,
        html! {
            h1 { (l.t("自助机登录", "Kiosk sign-in")) }
            p { (l.t("请输入本医疗机构的 API 密钥（以 hck_ 开头）。", "Enter your clinic's API key (it begins with hck_).")) }
            form.card-form.narrow method="post" action="/kiosk/open" autocomplete="off" {
                (cx.csrf_field())
                div.field.invalid[error.is_some()] {
                    label for="api_key" { (l.t("API 密钥", "API key")) }
                    input #api_key type="password" name="api_key" required spellcheck="false" autofocus
                        aria-invalid=[error.map(|_| "true")];
                    @if let Some(e) = error { p.error id="api_key-error" role="alert" { (e) } }
                }
                button type="submit" { (l.t("登录", "Sign in")) }
            }
        },
    )
}

/// What to show under the scan field.
enum Panel {
    None,
    Valid {
        name: String,
        sex: String,
        /// `None` for a temporary card's patient of unknown age.
        birth_year: Option<i32>,
        /// A temporary card (临时卡): its end of validity, for the banner.
        temporary_until: Option<chrono::NaiveDateTime>,
        masked_id: String,
        /// The type of the document `masked_id` is of, if the resident has one.
        document: Option<crate::domain::DocumentType>,
        card_id: Uuid,
        ticket: String,
        local_patient_id: Option<String>,
        /// Identified by an ID number rather than a scanned card: no link
        /// form (a link needs the card scanned).
        by_document: bool,
        /// A card of another city (federation): its name and code.
        issuer: Option<String>,
    },
    Invalid(Reason),
    /// An identification by document that found no usable card.
    NotIdentified(Refusal),
    Linked {
        name: String,
        local_patient_id: String,
    },
    LinkError {
        card_id: Uuid,
        ticket: String,
        message: &'static str,
        name: String,
    },
    Refused(&'static str),
}

/// How long after a scan its link form may be sent.
const LINK_TICKET_SECS: i64 = 600;

/// A kiosk may link a number only to a card it has just verified: the form
/// carries this MAC over (clinic, card, expiry), so a forged card id neither
/// links nor discloses a name.
fn link_ticket(master: &MasterKey, clinic: ClinicId, card: Uuid, expires: i64) -> String {
    let mac = master.blind_index(
        b"kiosk link ticket",
        format!("{clinic}|{card}|{expires}").as_bytes(),
    );
    format!("{expires}.{}", hex::encode(&mac[..16]))
}

fn ticket_ok(master: &MasterKey, clinic: ClinicId, card: Uuid, ticket: &str) -> bool {
    let Some(expires) = ticket
        .split_once('.')
        .and_then(|(e, _)| e.parse::<i64>().ok())
    else {
        return false;
    };
    if expires < chrono::Utc::now().timestamp() {
        return false;
    }
    let expected = link_ticket(master, clinic, card, expires);
    crate::crypto::same_secret(expected.as_bytes(), ticket.as_bytes())
}

fn link_form(cx: &Cx, clinic: &Clinic, card_id: Uuid, ticket: &str) -> Markup {
    let l = cx.lang;
    html! {
        @if clinic.scopes.contains(Scope::Link) {
            form.link-form method="post" action="/kiosk/link" autocomplete="off" {
                (cx.csrf_field())
                input type="hidden" name="card_id" value=(card_id);
                input type="hidden" name="ticket" value=(ticket);
                label for="local_patient_id" { (l.t("本院病历号", "Our patient number")) }
                input #local_patient_id type="text" name="local_patient_id" maxlength="64" required spellcheck="false";
                button type="submit" { (l.t("关联", "Link")) }
            }
        } @else {
            p { (l.t("（本机构未开通关联病历号权限）", "(This clinic's key may not link patient numbers.)")) }
        }
    }
}

/// A form posted from the scan page, past the two gates every such post
/// passes, in this order: the form itself (as `web::Form` reads it), then the
/// clinic whose kiosk session this terminal holds (else back to `/kiosk`),
/// then the form's CSRF token (else the scan page says it expired). With the
/// page context and the operator's pick.
struct KioskPost<T> {
    cx: Cx,
    clinic: Arc<Clinic>,
    used: Use,
    form: T,
}

/// A kiosk form's CSRF token, for [`KioskPost`].
trait KioskForm {
    fn csrf(&self) -> Option<&str>;
}

impl<T: DeserializeOwned + KioskForm + 'static> FromRequest for KioskPost<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let form = web::Form::<T>::from_request(&req, payload);
        Box::pin(async move {
            let form = form.await?.into_inner();
            let cx = Cx::new(&req);
            let used = picked(&req);
            let state = req
                .app_data::<web::Data<State>>()
                .cloned()
                .ok_or(PageError(AppError::Unavailable))?;
            let Some(clinic) = clinic_of(&req, &state).await.map_err(PageError)? else {
                let to_sign_in = cx.redirect("/kiosk");
                return Err(InternalError::from_response("no kiosk session", to_sign_in).into());
            };
            if !csrf::check(&req, form.csrf()) {
                let l = cx.lang;
                let expired = refused(
                    cx,
                    &clinic,
                    used,
                    StatusCode::FORBIDDEN,
                    l.t("页面已过期，请重新扫码。", "The page expired; scan again."),
                );
                return Err(InternalError::from_response("the page expired", expired).into());
            }
            Ok(KioskPost {
                cx,
                clinic,
                used,
                form,
            })
        })
    }
}

/// The scan page with `message` in place of a result, answered with `status`.
fn refused(
    cx: Cx,
    clinic: &Clinic,
    used: Use,
    status: StatusCode,
    message: &'static str,
) -> HttpResponse {
    let body = scan_page(&cx, clinic, used, &Panel::Refused(message));
    cx.html(status, body)
}

fn scan_page(cx: &Cx, clinic: &Clinic, used: Use, panel: &Panel) -> Markup {
    let l = cx.lang;
    let nav = html! {
        span.who { (clinic.name) }
        form.inline method="post" action="/kiosk/close" {
            (cx.csrf_field())
            button.link type="submit" { (l.t("退出", "Sign out")) }
        }
    };
    cx.shell(
        Area::Kiosk,
        l.t("扫码", "Scan"),
        &["kiosk.js"],
        Some(nav),
        html! {
            form #scan-form.scan method="post" action="/kiosk/scan" autocomplete="off" {
                (cx.csrf_field())
                (use_pickers(cx, used))
                label for="token" { (l.t("请扫描电子健康卡二维码，或刷身份证", "Scan the health card's QR code, or read an ID card")) }
                input #token type="text" name="token" autofocus required autocomplete="off"
                    autocapitalize="off" spellcheck="false" maxlength="600";
                button type="submit" { (l.t("查验", "Check")) }
            }
            @match panel {
                Panel::None => {
                    div #result.result.idle { p { (l.t("等待扫码…", "Waiting for a scan…")) } }
                }
                Panel::Valid { name, sex, birth_year, temporary_until, masked_id, document, card_id, ticket, local_patient_id, by_document, issuer } => {
                    div #result.result.ok role="status" data-outcome="valid" data-credential=(if *by_document { "document" } else { "token" }) data-temporary=[temporary_until.map(|_| "true")] {
                        p.verdict { "✓ " (l.t("有效", "Valid")) }
                        @if *by_document {
                            p.credential { (l.t("凭证件识别", "Identified by ID number")) }
                        }
                        @if let Some(until) = temporary_until {
                            p.temporary-banner #temporary-banner role="note" {
                                (l.t("临时卡 · 仅限本机构使用 · 有效期至 ", "Temporary card · valid at this clinic only · until "))
                                (crate::web::page::when(*until))
                            }
                        }
                        p.name { (name) }
                        dl.facts {
                            dt { (l.t("性别", "Sex")) } dd { (l.sex(sex)) }
                            dt { @if temporary_until.is_some() { (l.t("出生年份（估计）", "Birth year (estimated)")) } @else { (l.t("出生年份", "Birth year")) } }
                            dd { @match birth_year { Some(y) => { (y) }, None => { span.muted { (l.t("不详", "Unknown")) } } } }
                            @if let Some(t) = document {
                                dt { (l.document_type(*t)) } dd.mono { (masked_id) }
                            }
                            @if let Some(i) = issuer {
                                dt { (l.t("发卡城市", "Issuing city")) } dd #issuer { (i) }
                            }
                            dt { (l.t("本院病历号", "Our patient number")) }
                            dd.mono #local-patient-id {
                                @match local_patient_id {
                                    Some(n) => { (n) },
                                    None => { span.muted { (l.t("未关联", "Not linked")) } },
                                }
                            }
                        }
                        @if local_patient_id.is_none() {
                            @if *by_document {
                                p.muted { (l.t("扫描健康卡二维码后可关联本院病历号。", "Scan the health card's QR code to link our patient number.")) }
                            } @else {
                                (link_form(cx, clinic, *card_id, ticket))
                            }
                        }
                    }
                }
                Panel::NotIdentified(reason) => {
                    div #result.result.bad role="alert" data-outcome=(reason.code()) data-credential="document" {
                        p.verdict { "✗ " (l.t("无效", "Not valid")) }
                        p.reason { (l.identify_refusal(*reason)) }
                        p.code.mono { (reason.code()) }
                    }
                }
                Panel::Invalid(reason) => {
                    div #result.result.bad role="alert" data-outcome=(reason.code()) {
                        p.verdict { "✗ " (l.t("无效", "Not valid")) }
                        p.reason { (l.reason(*reason)) }
                        p.code.mono { (reason.code()) }
                    }
                }
                Panel::Linked { name, local_patient_id } => {
                    div #result.result.ok role="status" data-outcome="linked" {
                        p.verdict { "✓ " (l.t("已关联", "Linked")) }
                        p.name { (name) }
                        dl.facts {
                            dt { (l.t("本院病历号", "Our patient number")) } dd.mono #local-patient-id { (local_patient_id) }
                        }
                    }
                }
                Panel::LinkError { card_id, ticket, message, name } => {
                    div #result.result.bad role="alert" data-outcome="link_error" {
                        p.verdict { "✗ " (l.t("未能关联", "Not linked")) }
                        p.name { (name) }
                        p.reason { (message) }
                        (link_form(cx, clinic, *card_id, ticket))
                    }
                }
                Panel::Refused(message) => {
                    div #result.result.bad role="alert" data-outcome="refused" {
                        p.verdict { "✗" }
                        p.reason { (message) }
                    }
                }
            }
        },
    )
}

async fn show(req: HttpRequest, state: web::Data<State>) -> PageResult {
    let cx = Cx::new(&req);
    let Some(clinic) = clinic_of(&req, &state).await? else {
        let body = sign_in_page(&cx, None);
        return Ok(cx.ok(body));
    };
    let body = scan_page(&cx, &clinic, picked(&req), &Panel::None);
    Ok(cx.ok(body))
}

async fn back_to_scan(req: HttpRequest) -> HttpResponse {
    Cx::new(&req).redirect("/kiosk")
}

#[derive(Deserialize)]
struct OpenForm {
    #[serde(default)]
    api_key: String,
    csrf: Option<String>,
}

async fn open(req: HttpRequest, state: web::Data<State>, form: web::Form<OpenForm>) -> PageResult {
    let mut cx = Cx::new(&req);
    let l = cx.lang;
    if !csrf::check(&req, form.csrf.as_deref()) {
        let body = sign_in_page(
            &cx,
            Some(l.t(
                "页面已过期，请再试一次。",
                "The page expired; please try again.",
            )),
        );
        return Ok(cx.html(StatusCode::FORBIDDEN, body));
    }
    let ctx = state.ctx.clone();
    let key = form.api_key.clone();
    match blocking(move || kiosk::open(&ctx, &key)).await? {
        Opened::Session(secret, _) => {
            cx.set_cookie(
                KIOSK_COOKIE,
                secret.expose().to_string(),
                Some(kiosk::SESSION_SECS),
            );
            Ok(cx.redirect("/kiosk"))
        }
        Opened::NoVerifyScope => {
            let body = sign_in_page(
                &cx,
                Some(l.t("此密钥没有查验权限。", "This key may not verify cards.")),
            );
            Ok(cx.html(StatusCode::FORBIDDEN, body))
        }
        Opened::BadKey => {
            let body = sign_in_page(
                &cx,
                Some(l.t(
                    "密钥无效或已被吊销。",
                    "This key is not valid or has been revoked.",
                )),
            );
            Ok(cx.html(StatusCode::UNAUTHORIZED, body))
        }
    }
}

/// Signs the terminal out: the session ends on the server, so the old
/// cookie value is worthless wherever a copy of it went.
async fn close(req: HttpRequest, state: web::Data<State>, form: web::Form<CsrfOnly>) -> PageResult {
    if csrf::check(&req, form.csrf.as_deref()) {
        if let Some(token) = crate::proxy::cookie(&req, KIOSK_COOKIE) {
            let ctx = state.ctx.clone();
            blocking(move || kiosk::close(&ctx, &token)).await?;
        }
    }
    close_with(&req, &form, KIOSK_COOKIE, "/kiosk")
}

#[derive(Deserialize)]
struct ScanForm {
    #[serde(default)]
    token: String,
    channel: Option<String>,
    step: Option<String>,
    csrf: Option<String>,
}

impl KioskForm for ScanForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

impl ScanForm {
    /// The picked channel and step; `None` if either is not one of ours.
    fn used(&self) -> Option<Use> {
        let channel = match self.channel.as_deref() {
            None | Some("") => Some(Channel::Kiosk),
            Some(c) => Some(c.parse::<Channel>().ok()?),
        };
        let step = match self.step.as_deref() {
            None | Some("") => None,
            Some(s) => Some(s.parse::<Step>().ok()?),
        };
        Some(Use { channel, step })
    }
}

async fn scan(state: web::Data<State>, post: KioskPost<ScanForm>) -> PageResult {
    let KioskPost {
        mut cx,
        clinic,
        used,
        form,
    } = post;
    let l = cx.lang;
    // A chip card's number, typed by a reader, or else a scanned token.
    let document = Document::from_card_reader(&form.token);
    if document.is_some() && !clinic.scopes.contains(Scope::Identify) {
        return Ok(refused(
            cx,
            &clinic,
            used,
            StatusCode::FORBIDDEN,
            l.t(
                "此密钥没有凭证件号识别患者的权限。",
                "This key may not identify patients by ID number.",
            ),
        ));
    }
    if document.is_none() && !clinic.scopes.contains(Scope::Verify) {
        return Ok(refused(
            cx,
            &clinic,
            used,
            StatusCode::FORBIDDEN,
            l.t("此密钥没有查验权限。", "This key may not verify cards."),
        ));
    }
    if let Err(AppError::RateLimited { .. }) = state.limits.verify_rate(&clinic) {
        return Ok(refused(
            cx,
            &clinic,
            used,
            StatusCode::TOO_MANY_REQUESTS,
            l.t("操作太频繁，请稍候再扫。", "Too many scans; wait a moment."),
        ));
    }
    let Some(used) = form.used() else {
        return Ok(refused(
            cx,
            &clinic,
            used,
            StatusCode::UNPROCESSABLE_ENTITY,
            l.t(
                "请选择列表中的渠道和环节。",
                "Pick a channel and a step from the lists.",
            ),
        ));
    };
    cx.set_cookie(
        USE_COOKIE,
        format!(
            "{},{}",
            used.channel.map(|c| c.as_str()).unwrap_or_default(),
            used.step.map(|s| s.as_str()).unwrap_or_default()
        ),
        Some(USE_COOKIE_SECS),
    );
    if let Some(document) = document {
        let shown = (document.kind(), document.masked());
        let found = identify::identify(&state.ctx, &clinic, document, used).await?;
        let panel = match found {
            Identified::Valid { resolution } => {
                let r = &resolution.resident;
                Panel::Valid {
                    name: r.name.clone(),
                    sex: r.sex.as_str().to_string(),
                    birth_year: Some(chrono::Datelike::year(&r.birth_date)),
                    temporary_until: None,
                    masked_id: shown.1,
                    document: Some(shown.0),
                    card_id: resolution.card.id.as_uuid(),
                    ticket: String::new(),
                    local_patient_id: resolution.local_patient_id.clone(),
                    by_document: true,
                    issuer: None,
                }
            }
            Identified::Invalid { reason, .. } => Panel::NotIdentified(reason),
        };
        let body = scan_page(&cx, &clinic, used, &panel);
        return Ok(cx.ok(body));
    }
    let outcome = verification::verify_scanned(&state.ctx, &clinic, &form.token, used).await?;
    let panel = match outcome {
        Outcome::Valid { resolution, .. } => {
            let r = &resolution.resident;
            let t = resolution.temporary.as_ref();
            let l = cx.lang;
            Panel::Valid {
                name: match t {
                    Some(t) if !t.name_known => l.t("无名氏", "Unknown (无名氏)").to_owned(),
                    _ => r.name.clone(),
                },
                sex: r.sex.as_str().to_string(),
                birth_year: match t {
                    Some(t) => t.birth_year.map(|y| y.get()),
                    None => Some(chrono::Datelike::year(&r.birth_date)),
                },
                temporary_until: t.map(|t| t.terms.valid_until),
                masked_id: r.primary_document().map(|d| d.masked()).unwrap_or_default(),
                document: r.primary_document().map(|d| d.kind()),
                card_id: resolution.card.id.as_uuid(),
                ticket: link_ticket(
                    &state.ctx.master,
                    clinic.id,
                    resolution.card.id.as_uuid(),
                    chrono::Utc::now().timestamp() + LINK_TICKET_SECS,
                ),
                local_patient_id: resolution.local_patient_id.clone(),
                by_document: false,
                issuer: None,
            }
        }
        Outcome::Foreign { claims, resolution } => {
            let r = &resolution.resident;
            Panel::Valid {
                name: r.name.clone(),
                sex: r.sex.clone(),
                birth_year: Some(chrono::Datelike::year(&r.birth_date)),
                temporary_until: None,
                masked_id: r
                    .document_masked
                    .clone()
                    .or_else(|| r.national_id_masked.clone())
                    .unwrap_or_default(),
                document: r
                    .document_type
                    .as_deref()
                    .and_then(|t| crate::domain::DocumentType::parse(t).ok()),
                card_id: claims.card_id,
                ticket: link_ticket(
                    &state.ctx.master,
                    clinic.id,
                    claims.card_id,
                    chrono::Utc::now().timestamp() + LINK_TICKET_SECS,
                ),
                local_patient_id: resolution.local_patient_id.clone(),
                by_document: false,
                issuer: Some(format!(
                    "{} ({})",
                    resolution.issuer.name, resolution.issuer.code
                )),
            }
        }
        Outcome::Invalid { reason, .. } => Panel::Invalid(reason),
    };
    let body = scan_page(&cx, &clinic, used, &panel);
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
struct LinkForm {
    card_id: Option<String>,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    local_patient_id: String,
    csrf: Option<String>,
}

impl KioskForm for LinkForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// What the link form ends in.
enum Linking {
    /// Linked (or already linked) under this number.
    Linked(String),
    /// The number is not well formed.
    BadNumber,
    /// The number already names another resident at this clinic.
    Taken,
}

async fn link(state: web::Data<State>, post: KioskPost<LinkForm>) -> PageResult {
    let KioskPost {
        cx,
        clinic,
        used,
        form,
    } = post;
    let l = cx.lang;
    if !clinic.scopes.contains(Scope::Link) {
        return Ok(refused(
            cx,
            &clinic,
            used,
            StatusCode::FORBIDDEN,
            l.t(
                "本机构未开通关联病历号权限。",
                "This clinic's key may not link patient numbers.",
            ),
        ));
    }
    let card_uuid = form
        .card_id
        .as_deref()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| AppError::NotFound("no such card".into()))?;
    if !ticket_ok(&state.ctx.master, clinic.id, card_uuid, &form.ticket) {
        return Ok(refused(
            cx,
            &clinic,
            used,
            StatusCode::FORBIDDEN,
            l.t(
                "请先扫描该卡，再关联病历号。",
                "Scan the card first, then link its patient number.",
            ),
        ));
    }
    let ticket = form.ticket.clone();
    let card_id = CardId::from_uuid(card_uuid);
    let lpid = LocalPatientId::parse(&form.local_patient_id);
    let c = clinic.clone();
    let ctx = state.ctx.clone();
    let lp = lpid.clone().ok();
    // The card's holder, and the link if the number is well formed.
    let result = blocking(move || {
        let Some(lp) = lp else {
            let (_, r) = lookup::card_and_holder(&ctx, card_id)?;
            return Ok((r.name, Linking::BadNumber));
        };
        let linked = match registry::link_patient(&ctx, &c, card_id, &lp) {
            Ok(linked) => linked,
            Err(StoreError::Conflict(Conflict::LinkConflict)) => {
                let (_, r) = lookup::card_and_holder(&ctx, card_id)?;
                return Ok((r.name, Linking::Taken));
            }
            Err(e) => return Err(e),
        };
        // A foreign resident's name stays with its home city.
        let name = match linked.issuer {
            Some(_) => String::new(),
            None => {
                let rid = crate::domain::ResidentId::from_uuid(linked.resident_id);
                lookup::resident(&ctx, rid)?.name
            }
        };
        Ok((name, Linking::Linked(lp.as_str().to_string())))
    })
    .await?;
    let (name, linked) = result;
    let (panel, status) = match linked {
        Linking::Linked(n) => (
            Panel::Linked {
                name,
                local_patient_id: n,
            },
            StatusCode::CREATED,
        ),
        Linking::BadNumber => (
            Panel::LinkError {
                card_id: card_uuid,
                ticket: ticket.clone(),
                message: lpid
                    .err()
                    .map(|e| l.domain_error(&e))
                    .unwrap_or(l.t("病历号无效", "Invalid patient number")),
                name,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Linking::Taken => (
            Panel::LinkError {
                card_id: card_uuid,
                ticket: ticket.clone(),
                message: l.t(
                    "该病历号已关联到另一位居民。",
                    "This patient number already belongs to another resident.",
                ),
                name,
            },
            StatusCode::CONFLICT,
        ),
    };
    let body = scan_page(&cx, &clinic, used, &panel);
    Ok(cx.html(status, body))
}
