//! Clinics and their API keys: create (the key is shown once), add a key,
//! revoke a key.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{html, Markup};
use serde::Deserialize;

use super::{field, page, Checked, SignedIn};
use crate::crypto::SecretToken;
use crate::domain::{ClinicCode, ClinicId, ClinicName, Scope, Scopes};
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::extract::uuid;
use crate::request::State;
use crate::service::lookup;
use crate::service::registry::{self, Actor};
use crate::store::admins::Admin;
use crate::store::clinics::Clinic;
use crate::store::{Conflict, StoreError};
use crate::web::page::{when, Cx, PageResult};
use crate::web::Lang;

fn scope_name(l: Lang, s: Scope) -> &'static str {
    match s {
        Scope::Verify => l.t("查验健康卡", "Verify cards"),
        Scope::Link => l.t("关联病历号", "Link patient numbers"),
        Scope::Pii => l.t("查看完整身份证号", "See full ID numbers"),
        Scope::Xref => l.t("查看其他机构病历号", "See other clinics' patient numbers"),
        Scope::Search => l.t("按人口学信息检索居民", "Search residents by demographics"),
        Scope::Identify => l.t("凭证件号识别患者", "Identify patients by ID number"),
        Scope::Register => l.t(
            "签发临时卡（无证件患者，仅本机构有效）",
            "Issue temporary cards (patients without a document; valid here only)",
        ),
    }
}

/// Said where a scope is granted: what giving it means.
fn scope_hint(l: Lang, s: Scope) -> Option<&'static str> {
    match s {
        Scope::Identify => Some(l.t(
            "证件号码不是秘密：持有此权限的机构仅凭号码即可查到居民及其健康卡，请只授予配备读卡器、确有需要的窗口和自助机。",
            "An ID number is not a secret: a clinic with this scope finds a resident and their card from the number alone. Grant it deliberately, only to windows and kiosks with a card reader that need it.",
        )),
        Scope::Pii => Some(l.t(
            "答复中包含完整证件号码。",
            "Answers carry the full document number.",
        )),
        Scope::Verify | Scope::Link | Scope::Xref | Scope::Search | Scope::Register => None,
    }
}

#[derive(Default)]
struct ClinicValues {
    code: String,
    name: String,
    verify: bool,
    link: bool,
    pii: bool,
    xref: bool,
    search: bool,
    identify: bool,
    register: bool,
}

fn create_form(cx: &Cx, v: &ClinicValues, errors: &HashMap<&'static str, &'static str>) -> Markup {
    let l = cx.lang;
    html! {
        h2 { (l.t("新建医疗机构", "New clinic")) }
        form.card-form method="post" action="/admin/clinics" autocomplete="off" novalidate {
            (cx.csrf_field())
            (field("code", l.t("机构代码", "Code"), html! {
                input #code type="text" name="code" value=(v.code) maxlength="32" required spellcheck="false"
                    aria-invalid=[errors.get("code").map(|_| "true")];
            }, errors.get("code").copied(), Some(l.t("字母、数字、- 和 _，例如 JN-PH1", "Letters, digits, - and _, e.g. JN-PH1"))))
            (field("clinic-name", l.t("机构名称", "Name"), html! {
                input #clinic-name type="text" name="name" value=(v.name) maxlength="128" required
                    aria-invalid=[errors.get("name").map(|_| "true")];
            }, errors.get("name").copied(), None))
            fieldset.field.invalid[errors.contains_key("scopes")] {
                legend { (l.t("权限", "Scopes")) }
                @for (s, checked) in [(Scope::Verify, v.verify), (Scope::Link, v.link), (Scope::Pii, v.pii), (Scope::Xref, v.xref), (Scope::Search, v.search), (Scope::Identify, v.identify), (Scope::Register, v.register)] {
                    div.check {
                        input type="checkbox" id=(format!("scope-{}", s.as_str())) name=(format!("scope_{}", s.as_str())) value="on" checked[checked]
                            aria-describedby=[scope_hint(l, s).map(|_| format!("scope-{}-hint", s.as_str()))];
                        label for=(format!("scope-{}", s.as_str())) { (scope_name(l, s)) }
                    }
                    @if let Some(hint) = scope_hint(l, s) {
                        small.hint id=(format!("scope-{}-hint", s.as_str())) { (hint) }
                    }
                }
                @if let Some(e) = errors.get("scopes") { p.error role="alert" { (e) } }
            }
            button type="submit" { (l.t("创建", "Create")) }
        }
    }
}

fn clinics_table(l: Lang, all: &[Clinic]) -> Markup {
    html! {
        @if all.is_empty() {
            p.muted { (l.t("还没有医疗机构。", "No clinics yet.")) }
        } @else {
            table.list {
                thead { tr {
                    th { (l.t("代码", "Code")) } th { (l.t("名称", "Name")) }
                    th { (l.t("权限", "Scopes")) } th { (l.t("创建时间", "Created")) }
                } }
                tbody {
                    @for c in all {
                        tr {
                            td.mono { a href=(format!("/admin/clinics/{}", c.id)) { (c.code.as_str()) } }
                            td { (c.name) }
                            td { @for (i, s) in c.scopes.iter().enumerate() { @if i > 0 { "、" } (scope_name(l, s)) } }
                            td { (when(c.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

async fn all_clinics(state: &web::Data<State>) -> Result<Vec<Clinic>, AppError> {
    let ctx = state.ctx.clone();
    blocking(move || lookup::clinics(&ctx)).await
}

pub(super) async fn list(SignedIn { admin, cx }: SignedIn, state: web::Data<State>) -> PageResult {
    let all = all_clinics(&state).await?;
    let values = ClinicValues {
        verify: true,
        link: true,
        ..Default::default()
    };
    let body = clinics_page(&cx, &admin, &all, &values, &HashMap::new());
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
pub(in crate::web) struct ClinicForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    scope_verify: Option<String>,
    scope_link: Option<String>,
    scope_pii: Option<String>,
    scope_xref: Option<String>,
    scope_search: Option<String>,
    scope_identify: Option<String>,
    scope_register: Option<String>,
}

/// The clinics' list with the form that creates one (its values and errors).
fn clinics_page(
    cx: &Cx,
    admin: &Admin,
    all: &[Clinic],
    values: &ClinicValues,
    errors: &HashMap<&'static str, &'static str>,
) -> Markup {
    let l = cx.lang;
    page(
        cx,
        admin,
        l.t("医疗机构", "Clinics"),
        html! {
            h1 { (l.t("医疗机构", "Clinics")) }
            (clinics_table(l, all))
            (create_form(cx, values, errors))
        },
    )
}

/// The page that shows a new API key, this once (a new clinic's or a new key's).
fn key_page(cx: &Cx, admin: &Admin, title: &str, clinic: &Clinic, key: &SecretToken) -> Markup {
    let l = cx.lang;
    page(
        cx,
        admin,
        title,
        html! {
            h1 { (title) ": " (clinic.name) }
            section.secret {
                h2 { (l.t("API 密钥", "API key")) }
                p.warn { (l.t(
                    "密钥只显示这一次，请立即交给该机构的管理员妥善保存。自助机用它登录 /kiosk，医院信息系统用它调用接口。",
                    "The key is shown only this once: hand it to the clinic's administrator now. Kiosks sign in at /kiosk with it; hospital systems call the API with it.",
                )) }
                p { code #api-key.mono.break { (key.expose()) } }
            }
            p { a.button.secondary href=(format!("/admin/clinics/{}", clinic.id)) { (l.t("查看机构", "Open the clinic")) } }
        },
    )
}

pub(super) async fn create(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    form: Checked<ClinicForm>,
) -> PageResult {
    let l = cx.lang;
    let form = form.into_inner();
    let values = ClinicValues {
        code: form.code.clone(),
        name: form.name.clone(),
        verify: form.scope_verify.is_some(),
        link: form.scope_link.is_some(),
        pii: form.scope_pii.is_some(),
        xref: form.scope_xref.is_some(),
        search: form.scope_search.is_some(),
        identify: form.scope_identify.is_some(),
        register: form.scope_register.is_some(),
    };
    let mut errors: HashMap<&'static str, &'static str> = HashMap::new();
    let code = ClinicCode::parse_new(&form.code)
        .map_err(|e| errors.insert("code", l.domain_error(&e)))
        .ok();
    let name = ClinicName::parse(&form.name)
        .ok()
        .map(ClinicName::into_string);
    if name.is_none() {
        errors.insert(
            "name",
            l.t(
                "请填写机构名称（最多128个字）",
                "Give the clinic's name (at most 128 characters)",
            ),
        );
    }
    let chosen: Vec<Scope> = [
        (Scope::Verify, values.verify),
        (Scope::Link, values.link),
        (Scope::Pii, values.pii),
        (Scope::Xref, values.xref),
        (Scope::Search, values.search),
        (Scope::Identify, values.identify),
        (Scope::Register, values.register),
    ]
    .into_iter()
    .filter_map(|(s, on)| on.then_some(s))
    .collect();
    let scopes = Scopes::from_list(&chosen)
        .map_err(|e| errors.insert("scopes", l.domain_error(&e)))
        .ok();
    let (Some(code), Some(name), Some(scopes), true) = (code, name, scopes, errors.is_empty())
    else {
        let all = all_clinics(&state).await?;
        let body = clinics_page(&cx, &admin, &all, &values, &errors);
        return Ok(cx.html(StatusCode::UNPROCESSABLE_ENTITY, body));
    };
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let created =
        blocking(
            move || match registry::create_clinic(&ctx, &actor, &code, &name, &scopes) {
                Ok(x) => Ok(Some(x)),
                Err(StoreError::Conflict(Conflict::ClinicCodeTaken)) => Ok(None),
                Err(e) => Err(e),
            },
        )
        .await?;
    let Some((clinic, key)) = created else {
        errors.insert(
            "code",
            l.t("该机构代码已被使用", "This code is already taken"),
        );
        let all = all_clinics(&state).await?;
        let body = clinics_page(&cx, &admin, &all, &values, &errors);
        return Ok(cx.html(StatusCode::CONFLICT, body));
    };
    let title = l.t("已创建医疗机构", "Clinic created");
    let body = key_page(&cx, &admin, title, &clinic, &key);
    Ok(cx.html(StatusCode::CREATED, body))
}

pub(super) async fn show(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
) -> PageResult {
    let l = cx.lang;
    let cid = ClinicId::from_uuid(uuid(&id)?);
    let ctx = state.ctx.clone();
    let (clinic, keys) = blocking(move || lookup::clinic_and_keys(&ctx, cid)).await?;
    let body = page(
        &cx,
        &admin,
        &clinic.name,
        html! {
            h1 { (clinic.name) " " span.mono.muted { (clinic.code.as_str()) } }
            p { (l.t("权限：", "Scopes: ")) @for (i, s) in clinic.scopes.iter().enumerate() { @if i > 0 { "、" } (scope_name(l, s)) } }
            h2 { (l.t("API 密钥", "API keys")) }
            table.list {
                thead { tr {
                    th { (l.t("密钥开头", "Key begins")) } th { (l.t("创建时间", "Created")) }
                    th { (l.t("状态", "State")) } th { (l.t("操作", "Actions")) }
                } }
                tbody {
                    @for k in &keys {
                        tr {
                            td.mono { (k.hint) }
                            td { (when(k.created_at)) }
                            td { @match k.revoked_at {
                                Some(t) => { span.status.status-revoked { (l.t("已吊销", "Revoked")) } " " (when(t)) },
                                None => { span.status.status-active { (l.t("有效", "Active")) } },
                            } }
                            td {
                                @if k.revoked_at.is_none() {
                                    form.inline method="post" action=(format!("/admin/clinics/{}/keys/{}/revoke", clinic.id, k.id)) {
                                        (cx.csrf_field())
                                        span.check {
                                            input type="checkbox" id=(format!("confirm-{}", k.id)) name="confirm" value="yes" required;
                                            label for=(format!("confirm-{}", k.id)) { (l.t("确认", "Confirm")) }
                                        }
                                        button.danger type="submit" { (l.t("吊销密钥", "Revoke key")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action=(format!("/admin/clinics/{}/keys", clinic.id)) {
                (cx.csrf_field())
                button type="submit" { (l.t("新建密钥", "New key")) }
            }
        },
    );
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
pub(in crate::web) struct KeyForm {
    confirm: Option<String>,
}

pub(super) async fn add_key(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    _form: Checked<KeyForm>,
) -> PageResult {
    let l = cx.lang;
    let cid = ClinicId::from_uuid(uuid(&id)?);
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let (clinic, _, secret) = blocking(move || registry::add_api_key(&ctx, &actor, cid)).await?;
    let title = l.t("新密钥", "New key");
    let body = key_page(&cx, &admin, title, &clinic, &secret);
    Ok(cx.html(StatusCode::CREATED, body))
}

pub(super) async fn revoke_key(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    form: Checked<KeyForm>,
) -> PageResult {
    let (id, key_id) = path.into_inner();
    let cid = ClinicId::from_uuid(uuid(&id)?);
    let key_id = uuid(&key_id)?.to_string();
    if form.confirm.as_deref() != Some("yes") {
        return Err(AppError::invalid("not_confirmed", "tick the box to confirm").into());
    }
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    blocking(move || registry::revoke_api_key(&ctx, &actor, cid, &key_id)).await?;
    state.clinic_cache.clear();
    Ok(cx.redirect(&format!("/admin/clinics/{}", cid)))
}
