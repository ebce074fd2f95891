//! Residents: find by ID number, register (errors beside their field), the
//! resident's page with cards and links, issuing a card.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{html, Markup};
use serde::Deserialize;

use super::register::{add_document_link, register_form, Kind, RegisterForm};
use super::{find_page, page, Checked, SignedIn};
use crate::crypto::SecretToken;
use crate::domain::{CardId, CardStatus, Document, DocumentType, NationalId, Relation, ResidentId};
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::extract::uuid;
use crate::request::State;
use crate::service::families;
use crate::service::registry::{self, Actor, LookupVia};
use crate::store::cards::Card;
use crate::store::residents::Resident;
use crate::web::page::{short, when, Cx, PageResult};

#[derive(Deserialize)]
pub(in crate::web) struct FindForm {
    #[serde(default)]
    national_id: String,
}

/// POST, so that the ID number stays out of URLs, logs and history.
pub(super) async fn find(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    form: Checked<FindForm>,
) -> PageResult {
    let l = cx.lang;
    let nid = match NationalId::parse(&form.national_id) {
        Ok(n) => n,
        Err(e) => {
            let body = find_page(&cx, &admin, &form.national_id, Some(l.domain_error(&e)));
            return Ok(cx.html(StatusCode::UNPROCESSABLE_ENTITY, body));
        }
    };
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let n = Document::ResidentIdCard(nid.clone());
    let found =
        blocking(move || registry::find_resident(&ctx, &actor, &n, LookupVia::Portal)).await?;
    match found {
        Some(r) => Ok(cx.redirect(&format!("/admin/residents/{}", r.id))),
        None => {
            // Not registered: offer the registration form, already filled in.
            let values = RegisterForm::with_national_id(&nid);
            let body = page(
                &cx,
                &admin,
                l.t("登记居民", "Register resident"),
                html! {
                    p.notice role="status" {
                        (l.t("没有找到该身份证号的居民，可以在下面登记。", "No resident has this ID number; you can register them below."))
                    }
                    (register_form(&cx, Kind::Document(DocumentType::ResidentIdCard), &values, &HashMap::new()))
                },
            );
            Ok(cx.html(StatusCode::NOT_FOUND, body))
        }
    }
}

use crate::domain::mask_phone as masked_phone;
use crate::service::lookup;

fn status_badge(l: crate::web::Lang, s: CardStatus) -> Markup {
    html! { span class=(format!("status status-{}", s.as_str())) { (l.status(s)) } }
}

fn card_actions(l: crate::web::Lang, c: &Card) -> Markup {
    let id = c.id;
    html! {
        div.actions {
            @if c.status == CardStatus::Active {
                a.button href=(format!("/admin/cards/{id}/print")) { (l.t("打印卡片", "Print card")) }
                a.button.secondary href=(format!("/admin/cards/{id}/suspend")) { (l.t("暂停", "Suspend")) }
            }
            @if c.status == CardStatus::Suspended {
                a.button.secondary href=(format!("/admin/cards/{id}/reinstate")) { (l.t("恢复", "Reinstate")) }
            }
            @if c.status.holds_slot() {
                a.button.secondary href=(format!("/admin/cards/{id}/reissue")) { (l.t("补发", "Reissue")) }
                a.button.danger href=(format!("/admin/cards/{id}/revoke")) { (l.t("吊销", "Revoke")) }
            }
            a.button.secondary href=(format!("/admin/cards/{id}/log")) { (l.t("访问记录", "Access log")) }
        }
    }
}

pub(super) fn resident_summary(l: crate::web::Lang, r: &Resident) -> Markup {
    html! {
        dl.facts {
            dt { (l.t("性别", "Sex")) } dd { (l.sex(r.sex.as_str())) }
            dt { (l.t("出生日期", "Birth date")) } dd { (r.birth_date.format("%Y-%m-%d")) }
            @for d in &r.documents {
                dt { (l.document_type(d.kind())) } dd.mono { (d.masked()) }
            }
            @if let Some(p) = &r.phone {
                dt { (l.t("手机号", "Mobile")) } dd.mono { (masked_phone(p)) }
            }
        }
    }
}

pub(super) async fn show(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
) -> PageResult {
    let l = cx.lang;
    let rid = ResidentId::from_uuid(uuid(&id)?);
    let ctx = state.ctx.clone();
    let (r, cs, ls, fam, merged_into, temporary) = web::block(move || -> Result<_, AppError> {
        let (r, cs) = lookup::resident_and_cards(&ctx, rid)?;
        let ls = lookup::links_of_resident(&ctx, rid)?;
        let fam = families::family(&ctx, rid)?;
        let merged_into = crate::service::merges::merged_into(&ctx, rid)?;
        let mut temporary = std::collections::HashMap::new();
        for c in &cs {
            if let Some(t) = crate::service::temporary::of_card(&ctx, c.id)? {
                temporary.insert(c.id, t);
            }
        }
        Ok((r, cs, ls, fam, merged_into, temporary))
    })
    .await??;
    let can_issue = merged_into.is_none() && !cs.iter().any(|c| c.status.holds_slot());
    let body = page(
        &cx,
        &admin,
        &r.name,
        html! {
            h1 { (r.name) }
            @if let Some(to) = merged_into {
                p.notice #merged-into role="status" {
                    (l.t("此记录已合并到", "This record was merged into")) " "
                    a href=(format!("/admin/residents/{to}")) { span.mono { (to) } }
                }
            }
            p.muted { (l.t("记录编号", "Record id")) " " span.mono #resident-id { (r.id) } }
            @if let Some(t) = temporary.values().next() {
                p.temporary-card #temporary-patient { (l.t(
                    "临时卡患者：未登记证件，姓名、出生年份为接诊时估计。",
                    "A temporary card's patient: no document registered; name and birth year as estimated at the point of care.",
                )) }
                dl.facts {
                    dt { (l.t("性别", "Sex")) } dd { (l.sex(r.sex.as_str())) }
                    dt { (l.t("出生年份（估计）", "Birth year (estimated)")) }
                    dd { @match t.birth_year { Some(y) => { (y.get()) }, None => { (l.t("不详", "Unknown")) } } }
                }
            } @else {
                (resident_summary(l, &r))
            }
            div.actions { (add_document_link(l, &r)) }
            h2 { (l.t("健康卡", "Cards")) }
            @if cs.is_empty() {
                p.muted { (l.t("尚未发卡。", "No card yet.")) }
            } @else {
                table.list {
                    thead { tr {
                        th { (l.t("卡号", "Card")) }
                        th { (l.t("状态", "Status")) }
                        th { (l.t("签发时间", "Issued")) }
                        th { (l.t("状态变更", "Status changed")) }
                        th { (l.t("原因", "Reason")) }
                        th { (l.t("操作", "Actions")) }
                    } }
                    tbody {
                        @for c in cs.iter().rev() {
                            tr data-card=(c.id) {
                                td.mono title=(c.id) { (short(c.id)) }
                                td { (status_badge(l, c.status)) }
                                td { (when(c.issued_at)) }
                                td { (when(c.status_changed_at)) }
                                td { (c.status_reason.as_deref().unwrap_or("")) }
                                td {
                                    @if let Some(t) = temporary.get(&c.id) {
                                        p.temporary-card { (l.t("临时卡，有效期至 ", "Temporary card, valid until ")) (when(t.terms.valid_until)) }
                                        @if c.status == crate::domain::CardStatus::Active {
                                            a.button href=(format!("/admin/cards/{}/wristband", c.id)) { (l.t("打印腕带", "Print wristband")) }
                                        }
                                    }
                                    (card_actions(l, c))
                                }
                            }
                        }
                    }
                }
            }
            @if can_issue {
                form method="post" action=(format!("/admin/residents/{}/cards", r.id)) {
                    (cx.csrf_field())
                    button type="submit" { (l.t("发卡", "Issue card")) }
                }
            }
            (family_section(&cx, &r, &fam))
            @if merged_into.is_none() {
                p { a.button.secondary #merge-record href=(format!("/admin/residents/{}/merge", r.id)) {
                    (l.t("合并到另一条记录…", "Merge into another record…"))
                } }
            }
            h2 { (l.t("医疗机构病历号", "Clinics' patient numbers")) }
            @if ls.is_empty() {
                p.muted { (l.t("尚无关联。", "None linked yet.")) }
            } @else {
                table.list {
                    thead { tr { th { (l.t("机构代码", "Clinic")) } th { (l.t("病历号", "Patient number")) } } }
                    tbody {
                        @for (code, lpid, _) in &ls {
                            tr { td.mono { (code.as_str()) } td.mono { (lpid.as_str()) } }
                        }
                    }
                }
            }
        },
    );
    Ok(cx.ok(body))
}

/// The page that shows a new card's holder credential, this once. The link
/// starts with the configured public URL (`Settings::public_base`), never
/// with the request's `Host`, which whoever sends the request chooses.
pub(super) fn issued_page(
    cx: &Cx,
    public_base: &str,
    admin: &crate::store::admins::Admin,
    card: &Card,
    credential: &SecretToken,
    reissued: bool,
) -> Markup {
    let l = cx.lang;
    let link = format!("{public_base}/card#{}", credential.expose());
    page(
        cx,
        admin,
        l.t("已发卡", "Card issued"),
        html! {
            h1 { @if reissued { (l.t("已补发新卡", "New card issued")) } @else { (l.t("已发卡", "Card issued")) } }
            p { (l.t("卡号", "Card")) " " span.mono title=(card.id) { (short(card.id)) } " · " (status_badge(l, card.status)) }
            section.secret {
                h2 { (l.t("持卡人凭证", "Holder credential")) }
                p.warn { (l.t(
                    "凭证只显示这一次。请把下面的链接交给持卡人（短信或当面扫码），持卡人用它在手机上打开电子健康卡。",
                    "The credential is shown only this once. Give the link below to the holder (text message or in person): it opens the health card on their phone.",
                )) }
                p { code #holder-credential.mono.break { (credential.expose()) } }
                p { (l.t("持卡人链接：", "Holder link: ")) code #holder-link.mono.break { (link) } }
            }
            div.actions {
                a.button href=(format!("/admin/cards/{}/print", card.id)) { (l.t("打印卡片", "Print card")) }
                a.button.secondary href=(format!("/admin/residents/{}", card.resident_id)) { (l.t("返回居民信息", "Back to the resident")) }
            }
        },
    )
}

#[derive(Deserialize)]
pub(in crate::web) struct CsrfForm {}

pub(super) async fn issue(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    _form: Checked<CsrfForm>,
) -> PageResult {
    let rid = ResidentId::from_uuid(uuid(&id)?);
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let (card, secret) = blocking(move || registry::issue_card(&ctx, &actor, rid)).await?;
    let body = issued_page(
        &cx,
        &state.ctx.settings.public_base(),
        &admin,
        &card,
        &secret,
        false,
    );
    Ok(cx.html(StatusCode::CREATED, body))
}

pub(super) fn relation_name(l: crate::web::Lang, r: Relation) -> &'static str {
    match r {
        Relation::Father => l.t("父亲", "Father"),
        Relation::Mother => l.t("母亲", "Mother"),
        Relation::Grandparent => l.t("祖父母/外祖父母", "Grandparent"),
        Relation::Spouse => l.t("配偶", "Spouse"),
        Relation::Child => l.t("子女", "Child"),
        Relation::Sibling => l.t("兄弟姐妹", "Sibling"),
        Relation::OtherRelative => l.t("其他亲属", "Other relative"),
        Relation::LegalGuardian => l.t("法定监护人（非亲属）", "Legal guardian"),
    }
}

/// Guardians and dependants, each with a removal button (POST, CSRF), and
/// the form that adds a guardian by resident id.
fn family_section(cx: &Cx, r: &Resident, fam: &families::Family) -> Markup {
    let l = cx.lang;
    html! {
        section #family {
            h2 { (l.t("监护人", "Guardians")) }
            @if fam.guardians.is_empty() {
                p.muted { (l.t("没有监护人。", "No guardians.")) }
            } @else {
                table.list #guardians {
                    thead { tr {
                        th { (l.t("姓名", "Name")) } th { (l.t("关系", "Relation")) }
                        th { (l.t("自", "Since")) } th { (l.t("操作", "Actions")) }
                    } }
                    tbody {
                        @for m in &fam.guardians {
                            tr data-resident=(m.resident.id) {
                                td { a href=(format!("/admin/residents/{}", m.resident.id)) { (m.resident.name) } }
                                td { (relation_name(l, m.guardianship.relation)) " (GB/T 4761 " (m.guardianship.relation.gbt4761_code(m.resident.sex)) ")" }
                                td { (when(m.guardianship.created_at)) }
                                td {
                                    form.inline method="post" action=(format!("/admin/residents/{}/guardians/{}/remove", r.id, m.resident.id)) {
                                        (cx.csrf_field())
                                        button.danger type="submit" { (l.t("解除", "Remove")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.card-form #add-guardian method="post" action=(format!("/admin/residents/{}/guardians", r.id)) {
                (cx.csrf_field())
                div.field {
                    label for="guardian_id" { (l.t("监护人的居民编号", "Guardian's resident id")) }
                    input #guardian_id name="guardian_id" required spellcheck="false" autocomplete="off";
                }
                div.field {
                    label for="relation" { (l.t("监护人与本人的关系", "What the guardian is to this resident")) }
                    select #relation name="relation" {
                        @for rel in Relation::ALL { option value=(rel.as_str()) { (relation_name(l, rel)) } }
                    }
                }
                div.field {
                    label { input type="checkbox" name="consent" value="true"; " " (l.t("本人（成年人）已同意，由我核实", "The resident (an adult) consented; I attest it")) }
                }
                button type="submit" { (l.t("添加监护人", "Add guardian")) }
            }
            h2 { (l.t("被监护人", "Dependants")) }
            @if fam.dependants.is_empty() {
                p.muted { (l.t("没有被监护人。", "No dependants.")) }
            } @else {
                table.list #dependants {
                    thead { tr {
                        th { (l.t("姓名", "Name")) } th { (l.t("本人是其", "This resident is their")) }
                        th { (l.t("自", "Since")) } th { (l.t("操作", "Actions")) }
                    } }
                    tbody {
                        @for m in &fam.dependants {
                            tr data-resident=(m.resident.id) {
                                td { a href=(format!("/admin/residents/{}", m.resident.id)) { (m.resident.name) } }
                                td { (relation_name(l, m.guardianship.relation)) }
                                td { (when(m.guardianship.created_at)) }
                                td {
                                    form.inline method="post" action=(format!("/admin/residents/{}/guardians/{}/remove", m.resident.id, r.id)) {
                                        (cx.csrf_field())
                                        button.danger type="submit" { (l.t("解除", "Remove")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(in crate::web) struct GuardianForm {
    #[serde(default)]
    guardian_id: String,
    #[serde(default)]
    relation: String,
    consent: Option<String>,
}

/// Adds a guardian from the resident's page; a refusal is the error page
/// with its code's message.
pub(super) async fn add_guardian(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    form: Checked<GuardianForm>,
) -> PageResult {
    let rid = ResidentId::from_uuid(uuid(&id)?);
    let guardian = form.guardian_id.trim().parse::<ResidentId>().map_err(|_| {
        AppError::invalid(
            "invalid_guardian",
            "the guardian's resident id is not valid",
        )
    })?;
    let relation: Relation = form.relation.parse().map_err(AppError::from)?;
    let consent = form.consent.as_deref() == Some("true");
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    web::block(move || families::add_guardian(&ctx, &actor, rid, guardian, relation, consent))
        .await?
        .map_err(AppError::from)?;
    Ok(cx.redirect(&format!("/admin/residents/{rid}#family")))
}

/// Removes a guardian (`/admin/residents/{dependant}/guardians/{guardian}/remove`).
pub(super) async fn remove_guardian(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    _form: Checked<CsrfForm>,
) -> PageResult {
    let (d, g) = path.into_inner();
    let dependant = ResidentId::from_uuid(uuid(&d)?);
    let guardian = ResidentId::from_uuid(uuid(&g)?);
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    web::block(move || families::remove_guardian(&ctx, &actor, dependant, guardian))
        .await?
        .map_err(AppError::from)?;
    Ok(cx.redirect(&format!("/admin/residents/{dependant}#family")))
}

/// A card id from a path, or 404.
pub(super) fn card_id(s: &str) -> Result<CardId, AppError> {
    Ok(CardId::from_uuid(uuid(s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked() {
        assert_eq!(masked_phone("13800001234"), "138****1234");
        assert_eq!(masked_phone("123"), "***");
    }
}
