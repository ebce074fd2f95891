//! A card's lifecycle (suspend, reinstate, revoke, reissue: each with a
//! reason and a confirmation), its printable static card and its access log.

use actix_web::http::StatusCode;
use actix_web::web;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use super::residents::{card_id, issued_page, resident_summary};
use super::{field, page, Checked, SignedIn};
use crate::domain::{CardAction, CardStatus, ChangeReason, ReasonError};
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::State;
use crate::service::lookup;
use crate::service::registry::{self, Actor, MintVia};
use crate::store::cards::Card;
use crate::store::residents::Resident;
use crate::store::StoreError;
use crate::token::TokenKind;
use crate::web::page::{short, when, Area, Cx, PageResult};
use crate::web::Lang;

fn parse_action(s: &str) -> Option<CardAction> {
    s.parse().ok()
}

fn action_name(l: Lang, a: CardAction) -> &'static str {
    match a {
        CardAction::Suspend => l.t("暂停", "Suspend"),
        CardAction::Reinstate => l.t("恢复", "Reinstate"),
        CardAction::Revoke => l.t("吊销", "Revoke"),
        CardAction::Reissue => l.t("补发", "Reissue"),
    }
}

fn action_explained(l: Lang, a: CardAction) -> &'static str {
    match a {
        CardAction::Suspend => l.t(
            "暂停后，此卡的所有二维码都无法使用，直到恢复。",
            "While suspended, every code of this card is refused until it is reinstated.",
        ),
        CardAction::Reinstate => l.t("恢复后，此卡重新可以使用。", "The card works again."),
        CardAction::Revoke => l.t(
            "吊销是永久的：此卡的所有二维码（包括打印的卡片）立即失效，且无法恢复。",
            "Revoking is final: every code of this card, printed ones included, stops working at once and for good.",
        ),
        CardAction::Reissue => l.t(
            "补发会生成一张新卡和新的持卡人凭证；旧卡及其所有二维码立即失效。",
            "A reissue makes a new card and holder credential; the old card and all its codes stop working at once.",
        ),
    }
}

/// Whether the action needs a reason (everything but a reinstatement).
fn reason_required(a: CardAction) -> bool {
    a != CardAction::Reinstate
}

async fn load(state: &web::Data<State>, id: &str) -> Result<(Card, Resident), AppError> {
    let id = card_id(id)?;
    let ctx = state.ctx.clone();
    blocking(move || lookup::card_and_holder(&ctx, id)).await
}

struct ConfirmErrors<'a> {
    reason: Option<&'a str>,
    confirm: Option<&'a str>,
    banner: Option<String>,
}

fn confirm_body(
    cx: &Cx,
    card: &Card,
    r: &Resident,
    action: CardAction,
    reason: &str,
    errors: &ConfirmErrors,
) -> Markup {
    let l = cx.lang;
    let name = action_name(l, action);
    html! {
        h1 { (name) " · " (l.t("卡号", "card")) " " span.mono { (short(card.id)) } }
        p { a href=(format!("/admin/residents/{}", r.id)) { (r.name) } " · " (l.status(card.status)) }
        (resident_summary(l, r))
        p.warn { (action_explained(l, action)) }
        @if let Some(b) = &errors.banner { p.error.banner role="alert" { (b) } }
        form.card-form method="post" action=(format!("/admin/cards/{}/{}", card.id, action.as_str())) novalidate {
            (cx.csrf_field())
            (field("reason",
                if reason_required(action) { l.t("原因", "Reason") } else { l.t("原因（选填）", "Reason (optional)") },
                html! {
                    textarea #reason name="reason" rows="2" maxlength="500" required[reason_required(action)]
                        aria-invalid=[errors.reason.map(|_| "true")] { (reason) }
                },
                errors.reason,
                Some(l.t("记入访问记录，例如“手机丢失”", "Recorded in the access log, e.g. \"lost phone\"")),
            ))
            div.field.check.invalid[errors.confirm.is_some()] {
                input #confirm type="checkbox" name="confirm" value="yes" required;
                label for="confirm" { (l.t("我已核实持卡人身份，确认执行此操作", "I have checked the holder's identity and confirm this action")) }
                @if let Some(e) = errors.confirm { p.error id="confirm-error" role="alert" { (e) } }
            }
            div.actions {
                button type="submit" class=[(action == CardAction::Revoke).then_some("danger")] {
                    (l.t("确认", "Confirm ")) (name)
                }
                a.button.secondary href=(format!("/admin/residents/{}", r.id)) { (l.t("取消", "Cancel")) }
            }
        }
    }
}

pub(super) async fn confirm(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (id, action) = path.into_inner();
    let action =
        parse_action(&action).ok_or_else(|| AppError::NotFound("no such action".into()))?;
    let (card, r) = load(&state, &id).await?;
    let l = cx.lang;
    let errors = ConfirmErrors {
        reason: None,
        confirm: None,
        banner: card.status.apply(action).err().map(|_| {
            l.t(
                "此卡当前状态不允许该操作。",
                "The card's current state does not allow this.",
            )
            .to_string()
        }),
    };
    let body = page(
        &cx,
        &admin,
        action_name(l, action),
        confirm_body(&cx, &card, &r, action, "", &errors),
    );
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
pub(in crate::web) struct ChangeForm {
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

pub(super) async fn change(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    form: Checked<ChangeForm>,
) -> PageResult {
    let (id, action) = path.into_inner();
    let action =
        parse_action(&action).ok_or_else(|| AppError::NotFound("no such action".into()))?;
    let l = cx.lang;
    let form = form.into_inner();
    let reason = form.reason.trim().to_string();
    let parsed = ChangeReason::parse(&reason);
    let reason_error = match &parsed {
        Ok(None) if reason_required(action) => Some(l.t("请填写原因", "Give a reason")),
        Ok(_) => None,
        Err(ReasonError::TooLong) => Some(l.t("原因最多500个字", "At most 500 characters")),
        Err(ReasonError::ControlCharacter) => Some(l.t(
            "原因含有不允许的字符",
            "The reason contains characters that are not allowed",
        )),
    };
    let confirm_error = (form.confirm.as_deref() != Some("yes"))
        .then(|| l.t("请勾选确认", "Tick the box to confirm"));
    let (card, r) = load(&state, &id).await?;
    if reason_error.is_some() || confirm_error.is_some() {
        let errors = ConfirmErrors {
            reason: reason_error,
            confirm: confirm_error,
            banner: None,
        };
        let body = page(
            &cx,
            &admin,
            action_name(l, action),
            confirm_body(&cx, &card, &r, action, &reason, &errors),
        );
        return Ok(cx.html(StatusCode::UNPROCESSABLE_ENTITY, body));
    }
    let why = parsed.ok().flatten();
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let cid = card.id;
    if action == CardAction::Reissue {
        let done =
            blocking(
                move || match registry::reissue_card(&ctx, &actor, cid, why.as_ref()) {
                    Ok(x) => Ok(Ok(x)),
                    Err(StoreError::Lifecycle(_)) => Ok(Err(())),
                    Err(e) => Err(e),
                },
            )
            .await?;
        return match done {
            Ok((new, secret)) => {
                let body = issued_page(
                    &cx,
                    &state.ctx.settings.public_base(),
                    &admin,
                    &new,
                    &secret,
                    true,
                );
                Ok(cx.html(StatusCode::CREATED, body))
            }
            Err(()) => Ok(refused(cx, &admin, &card, &r, action, &reason)),
        };
    }
    let done =
        blocking(
            move || match registry::change_card(&ctx, &actor, cid, action, why.as_ref()) {
                Ok(c) => Ok(Some(c)),
                Err(StoreError::Lifecycle(_)) => Ok(None),
                Err(e) => Err(e),
            },
        )
        .await?;
    match done {
        Some(_) => Ok(cx.redirect(&format!("/admin/residents/{}", r.id))),
        None => Ok(refused(cx, &admin, &card, &r, action, &reason)),
    }
}

fn refused(
    cx: Cx,
    admin: &crate::store::admins::Admin,
    card: &Card,
    r: &Resident,
    action: CardAction,
    reason: &str,
) -> actix_web::HttpResponse {
    let l = cx.lang;
    let errors = ConfirmErrors {
        reason: None,
        confirm: None,
        banner: Some(
            l.t(
                "此卡当前状态不允许该操作。",
                "The card's current state does not allow this.",
            )
            .to_string(),
        ),
    };
    let body = page(
        &cx,
        admin,
        action_name(l, action),
        confirm_body(&cx, card, r, action, reason, &errors),
    );
    cx.html(StatusCode::CONFLICT, body)
}

#[derive(Deserialize)]
pub(in crate::web) struct PrintQuery {
    size: Option<String>,
}

/// The step before printing: making a printed card mints a long-lived bearer
/// token and writes the access log, so it is a POST from this form (CSRF
/// checked), never a GET a link or a prefetch could trigger.
pub(super) async fn print_form(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    q: web::Query<PrintQuery>,
) -> PageResult {
    let l = cx.lang;
    let a6 = q.size.as_deref() == Some("a6");
    let (card, r) = load(&state, &id).await?;
    let body = page(
        &cx,
        &admin,
        l.t("打印卡片", "Print card"),
        html! {
            h1 { (l.t("打印卡片", "Print card")) " · " span.mono { (short(card.id)) } }
            p { a href=(format!("/admin/residents/{}", r.id)) { (r.name) } " · " (l.status(card.status)) }
            p.warn { (l.t(
                "打印的卡片带有一个长期有效的静态二维码（默认五年），生成时记入访问记录。",
                "A printed card carries a long-lived static code (five years by default); making it is recorded in the access log.",
            )) }
            @if card.status != CardStatus::Active {
                p.error.banner role="alert" { (l.t("只有正常状态的卡可以打印。", "Only active cards are printed.")) }
            } @else {
                form.card-form method="post" action=(format!("/admin/cards/{}/print", card.id)) {
                    (cx.csrf_field())
                    input type="hidden" name="size" value=(if a6 { "a6" } else { "id1" });
                    div.actions {
                        button type="submit" { (l.t("生成卡片", "Make the card")) }
                        a.button.secondary href=(format!("/admin/residents/{}", r.id)) { (l.t("取消", "Cancel")) }
                    }
                }
            }
        },
    );
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
pub(in crate::web) struct PrintForm {
    size: Option<String>,
}

/// A page laid out for an ID-1 card (85.60 × 53.98 mm) or A6, with a fresh
/// static token's QR large enough to scan from paper; the token is recorded
/// (`card.print`) before the page is sent.
pub(super) async fn print(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    form: Checked<PrintForm>,
) -> PageResult {
    let l = cx.lang;
    let a6 = form.size.as_deref() == Some("a6");
    let (card, r) = load(&state, &id).await?;
    if card.status != CardStatus::Active {
        return Err(AppError::Conflict {
            code: "card_not_active",
            message: format!(
                "the card is {}; only active cards are printed",
                card.status.as_str()
            ),
        }
        .into());
    }
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let cid = card.id;
    let svg = web::block(move || -> Result<String, AppError> {
        let (_, minted) =
            registry::mint_recorded(&ctx, &actor, cid, TokenKind::Static, MintVia::PrintPage)?;
        let qr = crate::token::qr::encode_for_print(&minted.text)
            .map_err(|e| AppError::Internal(format!("QR encoding: {e}")))?;
        Ok(qr.to_svg())
    })
    .await??;
    let size_class = if a6 {
        "print-card size-a6"
    } else {
        "print-card size-id1"
    };
    let layout = |size: &str, label: &str, current: bool| {
        html! {
            form.inline method="post" action=(format!("/admin/cards/{}/print", card.id)) {
                (cx.csrf_field())
                input type="hidden" name="size" value=(size);
                button.secondary.current[current] type="submit" { (label) }
            }
        }
    };
    let body = html! {
        div.toolbar.no-print {
            a.button.secondary href=(format!("/admin/residents/{}", r.id)) { "← " (l.t("返回", "Back")) }
            span { (l.t("版式：", "Layout: ")) }
            (layout("id1", l.t("卡片 (ID-1)", "Card (ID-1)"), !a6))
            (layout("a6", "A6", a6))
            button #print-button type="button" { (l.t("打印", "Print")) }
            p.hint { (l.t("打印时请选择“实际大小”(100%)，不要缩放。", "Print at actual size (100%), without scaling.")) }
        }
        div class=(size_class) {
            div.card-text {
                p.card-title { "居民电子健康卡" }
                p.card-subtitle lang="en" { "Electronic Health Card" }
                p.card-name { (r.name) }
                p.card-ref { (l.t("卡号", "Card")) " " span.mono { (short(card.id)) } }
                p.card-date { (l.t("签发", "Issued")) " " (card.issued_at.format("%Y-%m-%d")) }
            }
            div.card-qr #card-qr role="img" aria-label=(l.t("健康卡二维码", "Health card QR code")) {
                (PreEscaped(svg))
            }
        }
    };
    let markup = cx.shell(
        Area::Print,
        l.t("打印健康卡", "Print health card"),
        &["print.js"],
        Some(super::nav(&cx, &admin)),
        body,
    );
    Ok(cx.ok(markup))
}

pub(super) async fn log(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
) -> PageResult {
    let l = cx.lang;
    let (card, r) = load(&state, &id).await?;
    let ctx = state.ctx.clone();
    let cid = card.id;
    let rows = blocking(move || lookup::card_log(&ctx, cid, 500)).await?;
    let body = page(
        &cx,
        &admin,
        l.t("访问记录", "Access log"),
        html! {
            h1 { (l.t("访问记录", "Access log")) " · " span.mono { (short(card.id)) } }
            p { a href=(format!("/admin/residents/{}", r.id)) { (r.name) } " · " (l.status(card.status)) }
            @if rows.is_empty() {
                p.muted { (l.t("暂无记录。", "Nothing recorded yet.")) }
            } @else {
                table.list {
                    thead { tr {
                        th { "#" }
                        th { (l.t("时间", "Time")) }
                        th { (l.t("操作者", "By")) }
                        th { (l.t("操作", "Action")) }
                        th { (l.t("渠道", "Channel")) }
                        th { (l.t("凭据", "Shown")) }
                        th { (l.t("结果", "Outcome")) }
                        th { (l.t("备注", "Detail")) }
                    } }
                    tbody {
                        @for e in &rows {
                            tr {
                                td.mono { (e.seq) }
                                td { (when(e.at)) }
                                td { (e.actor_kind.as_str()) ": " (e.actor) }
                                td { (l.action(&e.action)) }
                                td { @if let Some(c) = &e.channel { (l.channel(&c.to_string())) } }
                                td { @if let Some(c) = e.credential_shown() { (l.credential(c)) } }
                                td { @if let Some(o) = &e.outcome { (l.outcome(o)) } }
                                td { (e.detail.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        },
    );
    Ok(cx.ok(body))
}
