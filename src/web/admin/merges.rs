//! Merging a temporary or duplicate record into the real one from the
//! resident's page (issue 14): `GET /admin/residents/{id}/merge?into=` asks
//! for the real record, then shows a confirmation page that names both
//! records side by side; its form (CSRF, a confirmation box) posts to
//! `/admin/residents/{id}/merge`, which calls `service::merges` as the API
//! does. Irreversible, and the page says so.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{html, Markup};
use serde::Deserialize;

use super::residents::resident_summary;
use super::{field, page, Checked, SignedIn};
use crate::domain::ResidentId;
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::extract::uuid;
use crate::request::State;
use crate::service::lookup;
use crate::service::merges::{self, MergeError};
use crate::service::registry::Actor;
use crate::store::cards::Card;
use crate::store::residents::Resident;
use crate::store::{Conflict, StoreError};
use crate::web::page::{short, Cx, PageResult};
use crate::web::Lang;

/// One side of the merge: the record, its cards, and whether it was merged.
struct Side {
    resident: Resident,
    cards: Vec<Card>,
    merged_into: Option<ResidentId>,
}

async fn load(state: &web::Data<State>, id: ResidentId) -> Result<Option<Side>, AppError> {
    let ctx = state.ctx.clone();
    blocking(move || {
        let (resident, cards) = match lookup::resident_and_cards(&ctx, id) {
            Ok(found) => found,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let merged_into = merges::merged_into(&ctx, id)?;
        Ok(Some(Side {
            resident,
            cards,
            merged_into,
        }))
    })
    .await
}

fn side(l: Lang, title: &str, s: &Side) -> Markup {
    html! {
        section.merge-side {
            h2 { (title) }
            p.name { a href=(format!("/admin/residents/{}", s.resident.id)) { (s.resident.name) } }
            p.mono.muted { (s.resident.id) }
            (resident_summary(l, &s.resident))
            @if s.cards.is_empty() {
                p.muted { (l.t("无健康卡", "No card")) }
            } @else {
                ul {
                    @for c in &s.cards {
                        li { span.mono { (short(c.id)) } " · " (l.status(c.status)) }
                    }
                }
            }
        }
    }
}

/// The refusals a merge can meet, in the administrator's words.
fn refusal(l: Lang, e: &AppError) -> Option<&'static str> {
    Some(match e.code() {
        "merge_self" => l.t("不能把记录合并到它自身。", "A record cannot be merged into itself."),
        "merge_conflict" => l.t(
            "两条记录在同一医疗机构各有病历号：请该机构先合并自己的病历号，再合并这两条记录。",
            "Both records have a patient number at the same clinic: that clinic must merge its own numbers first.",
        ),
        "already_merged" => l.t(
            "其中一条记录已被合并到另一条记录，合并不可撤销。",
            "One of the two records was merged already; a merge is final.",
        ),
        "merge_target_no_card" => l.t(
            "目标记录没有有效或暂停的健康卡：请先为其发卡。",
            "The real record has no active or suspended card: issue it a card first.",
        ),
        _ => return None,
    })
}

fn into_form(cx: &Cx, source: &Side, value: &str, error: Option<&str>) -> Markup {
    let l = cx.lang;
    html! {
        h1 { (l.t("合并记录", "Merge this record")) " · " (source.resident.name) }
        p.warn { (l.t(
            "把临时或重复的记录合并到居民的真实记录：病历号转到真实记录，本记录的健康卡被真实记录的卡替代。合并后不可撤销。",
            "Merge a temporary or duplicate record into the resident's real record: its patient numbers move there and its cards are replaced by the real record's card. A merge cannot be undone.",
        )) }
        form.card-form method="get" action=(format!("/admin/residents/{}/merge", source.resident.id)) novalidate {
            (field("into", l.t("真实记录的编号", "The real record's id"), html! {
                input #into type="text" name="into" value=(value) required spellcheck="false" autocomplete="off"
                    aria-invalid=[error.map(|_| "true")];
            }, error, Some(l.t("显示在真实记录页面上（UUID）", "Shown on the real record's page (a UUID)"))))
            div.actions {
                button type="submit" { (l.t("下一步", "Next")) }
                a.button.secondary href=(format!("/admin/residents/{}", source.resident.id)) { (l.t("取消", "Cancel")) }
            }
        }
    }
}

fn confirm_page(cx: &Cx, source: &Side, into: &Side, banner: Option<&str>) -> Markup {
    let l = cx.lang;
    html! {
        h1 { (l.t("确认合并", "Confirm the merge")) }
        p.warn { (l.t(
            "合并后不可撤销：左侧记录的病历号转到右侧记录，其健康卡被右侧记录的卡替代，之后以左侧记录的卡查验将显示“已被替代”。",
            "This cannot be undone: the left record's patient numbers move to the right one, its cards are replaced by the right one's card, and its cards answer \"replaced\" from then on.",
        )) }
        @if let Some(b) = banner { p.error.banner role="alert" { (b) } }
        div.merge-pair {
            (side(l, l.t("合并此记录", "Merge this record"), source))
            (side(l, l.t("到此记录", "Into this record"), into))
        }
        form.card-form method="post" action=(format!("/admin/residents/{}/merge", source.resident.id)) novalidate {
            (cx.csrf_field())
            input type="hidden" name="into" value=(into.resident.id);
            div.field.check {
                input #confirm type="checkbox" name="confirm" value="yes" required;
                label for="confirm" { (l.t("我已核实两条记录是同一个人，确认合并", "I have checked that both records are the same person and confirm the merge")) }
            }
            div.actions {
                button.danger type="submit" { (l.t("确认合并", "Merge")) }
                a.button.secondary href=(format!("/admin/residents/{}", source.resident.id)) { (l.t("取消", "Cancel")) }
            }
        }
    }
}

#[derive(Deserialize)]
pub(in crate::web) struct IntoQuery {
    into: Option<String>,
}

/// `GET /admin/residents/{id}/merge[?into=]`: asks for the real record,
/// then names both.
pub(super) async fn confirm(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    q: web::Query<IntoQuery>,
) -> PageResult {
    let l = cx.lang;
    let sid = ResidentId::from_uuid(uuid(&id)?);
    let source = load(&state, sid)
        .await?
        .ok_or_else(|| AppError::NotFound("no such resident".into()))?;
    let title = l.t("合并记录", "Merge this record");
    if let Some(to) = source.merged_into {
        return Err(AppError::Conflict {
            code: Conflict::AlreadyMerged.code(),
            message: format!("{} ({to})", Conflict::AlreadyMerged.message()),
        }
        .into());
    }
    let typed = q.into.as_deref().map(str::trim).unwrap_or("");
    if typed.is_empty() {
        let body = page(&cx, &admin, title, into_form(&cx, &source, "", None));
        return Ok(cx.ok(body));
    }
    let not_found = l.t("没有此编号的记录", "No record has this id");
    let target = match typed.parse::<ResidentId>() {
        Ok(t) => load(&state, t).await?,
        Err(_) => None,
    };
    let Some(target) = target else {
        let body = page(
            &cx,
            &admin,
            title,
            into_form(&cx, &source, typed, Some(not_found)),
        );
        return Ok(cx.html(StatusCode::UNPROCESSABLE_ENTITY, body));
    };
    // Said before the confirmation, not after it.
    let banner = if target.resident.id == source.resident.id {
        refusal(l, &AppError::invalid("merge_self", ""))
    } else if target.merged_into.is_some() {
        refusal(
            l,
            &AppError::from(StoreError::Conflict(Conflict::AlreadyMerged)),
        )
    } else if !target.cards.iter().any(|c| c.status.holds_slot()) {
        refusal(
            l,
            &AppError::from(StoreError::Conflict(Conflict::MergeTargetNoCard)),
        )
    } else {
        None
    };
    let body = page(
        &cx,
        &admin,
        title,
        confirm_page(&cx, &source, &target, banner),
    );
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
pub(in crate::web) struct MergeForm {
    #[serde(default)]
    into: String,
    confirm: Option<String>,
}

/// `POST /admin/residents/{id}/merge`: the merge, then the real record's
/// page; a refusal shows the confirmation again with the reason.
pub(super) async fn merge(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    form: Checked<MergeForm>,
) -> PageResult {
    let l = cx.lang;
    let sid = ResidentId::from_uuid(uuid(&id)?);
    let into = ResidentId::from_uuid(uuid(form.into.trim())?);
    let (Some(source), Some(target)) = (load(&state, sid).await?, load(&state, into).await?) else {
        return Err(AppError::NotFound("no such resident".into()).into());
    };
    if form.confirm.as_deref() != Some("yes") {
        let banner = l.t("请勾选确认", "Tick the box to confirm");
        let body = page(
            &cx,
            &admin,
            l.t("确认合并", "Confirm the merge"),
            confirm_page(&cx, &source, &target, Some(banner)),
        );
        return Ok(cx.html(StatusCode::UNPROCESSABLE_ENTITY, body));
    }
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let done = web::block(move || merges::merge_residents(&ctx, &actor, sid, into)).await?;
    match done {
        Ok(_) => Ok(cx.redirect(&format!("/admin/residents/{into}"))),
        Err(e @ (MergeError::SelfMerge | MergeError::Store(StoreError::Conflict(_)))) => {
            let e = AppError::from(e);
            let status = actix_web::ResponseError::status_code(&e);
            let Some(banner) = refusal(l, &e) else {
                return Err(e.into());
            };
            let (source, target) = (
                load(&state, sid).await?.unwrap_or(source),
                load(&state, into).await?.unwrap_or(target),
            );
            let body = page(
                &cx,
                &admin,
                l.t("确认合并", "Confirm the merge"),
                confirm_page(&cx, &source, &target, Some(banner)),
            );
            Ok(cx.html(status, body))
        }
        Err(e) => Err(AppError::from(e).into()),
    }
}
