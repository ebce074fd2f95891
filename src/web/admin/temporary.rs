//! Temporary cards (临时卡) in the portal: the list of open ones (active and
//! in date, with the issuing clinic and `valid_until`) and each one's
//! wristband, a narrow printable layout (25 × 250 mm) beside the ID-1 card.
//! Making a wristband mints a static token like the printed card does, so it
//! is a POST from a CSRF-checked form and is recorded (`card.print`, detail
//! `static via wristband`) before the page is sent.

use actix_web::{web, HttpRequest};
use maud::{html, PreEscaped};
use serde::Deserialize;

use super::residents::card_id;
use super::{csrf_or_refuse, page, signed_in};
use crate::domain::{BirthYear, CardStatus};
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::State;
use crate::service::registry::{self, Actor, MintVia};
use crate::service::temporary::{self, CardFacts};
use crate::token::TokenKind;
use crate::web::page::{short, when, Area, Cx, PageResult};
use crate::web::Lang;

/// At most this many open cards are listed (soonest to expire first).
const LIST_LIMIT: i64 = 500;

/// The patient's name as the portal shows it: an unknown one says so.
pub(super) fn shown_name(l: Lang, name: &str, known: bool) -> String {
    if known {
        name.to_owned()
    } else {
        l.t("无名氏", "Unknown (无名氏)").to_owned()
    }
}

/// `约 46 岁` / `about 46`, or a question mark when not even the year is known.
fn age(l: Lang, year: Option<BirthYear>) -> String {
    let today = chrono::Utc::now().date_naive();
    match year {
        Some(y) => match l {
            Lang::Zh => format!("约{}岁（{}年生）", y.approximate_age(today), y.get()),
            Lang::En => format!("about {} (born c. {})", y.approximate_age(today), y.get()),
        },
        None => l.t("年龄不详", "age unknown").to_owned(),
    }
}

pub(super) async fn list(req: HttpRequest, state: web::Data<State>) -> PageResult {
    let cx = Cx::new(&req);
    let admin = signed_in!(req, state, cx);
    let l = cx.lang;
    let ctx = state.ctx.clone();
    let open = blocking(move || temporary::open(&ctx, LIST_LIMIT)).await?;
    let body = page(
        &cx,
        &admin,
        l.t("临时卡", "Temporary cards"),
        html! {
            h1 { (l.t("临时卡", "Temporary cards")) }
            p { (l.t(
                "临时卡由医疗机构为无证件的患者（急诊、意识不清）签发，仅在签发机构、有效期内可用。以下为仍在有效期内的临时卡。",
                "Clinics issue temporary cards to patients without a document (emergencies, unconscious patients); they are valid only at the issuing clinic and until their end date. These are the ones still open.",
            )) }
            @if open.is_empty() {
                p.muted #no-temporary { (l.t("暂无有效的临时卡。", "No open temporary card.")) }
            } @else {
                table.list #temporary-cards {
                    thead { tr {
                        th { (l.t("卡号", "Card")) }
                        th { (l.t("姓名", "Name")) }
                        th { (l.t("签发机构", "Issuing clinic")) }
                        th { (l.t("签发时间", "Issued")) }
                        th { (l.t("有效期至", "Valid until")) }
                        th { (l.t("操作", "Actions")) }
                    } }
                    tbody {
                        @for o in &open {
                            tr data-card=(o.card.card_id) {
                                td.mono title=(o.card.card_id) { (short(o.card.card_id)) }
                                td { a href=(format!("/admin/residents/{}", o.card.resident_id)) {
                                    (shown_name(l, &o.resident_name, o.card.name_known))
                                } }
                                td { (o.clinic_name) " " span.mono.muted { (o.clinic_code.as_str()) } }
                                td { (when(o.card.created_at)) }
                                td.valid-until { (when(o.card.terms.valid_until)) }
                                td { a.button href=(format!("/admin/cards/{}/wristband", o.card.card_id)) {
                                    (l.t("打印腕带", "Print wristband"))
                                } }
                            }
                        }
                    }
                }
            }
        },
    );
    Ok(cx.ok(body))
}

async fn load(state: &web::Data<State>, id: &str) -> Result<CardFacts, AppError> {
    let id = card_id(id)?;
    let ctx = state.ctx.clone();
    blocking(move || temporary::facts(&ctx, id))
        .await?
        .ok_or_else(|| AppError::NotFound("not a temporary card".into()))
}

/// The step before printing (as for the card: a POST mints the token).
pub(super) async fn wristband_form(
    req: HttpRequest,
    state: web::Data<State>,
    id: web::Path<String>,
) -> PageResult {
    let cx = Cx::new(&req);
    let admin = signed_in!(req, state, cx);
    let l = cx.lang;
    let f = load(&state, &id).await?;
    let expired = f.temporary.terms.valid_until < state.ctx.clock.now();
    let body = page(
        &cx,
        &admin,
        l.t("打印腕带", "Print wristband"),
        html! {
            h1 { (l.t("打印腕带", "Print wristband")) " · " span.mono { (short(f.card.id)) } }
            p {
                a href=(format!("/admin/residents/{}", f.resident.id)) { (shown_name(l, &f.resident.name, f.temporary.name_known)) }
                " · " (l.status(f.card.status))
                " · " (l.t("有效期至", "valid until")) " " (when(f.temporary.terms.valid_until))
            }
            p.warn { (l.t(
                "腕带带有此临时卡的静态二维码，仅在签发机构有效；生成时记入访问记录。",
                "The wristband carries this temporary card's static code, valid only at the issuing clinic; making it is recorded in the access log.",
            )) }
            @if f.card.status != CardStatus::Active || expired {
                p.error.banner role="alert" { (l.t("只有有效期内、正常状态的临时卡可以打印腕带。", "Only an active temporary card in date gets a wristband.")) }
            } @else {
                form.card-form method="post" action=(format!("/admin/cards/{}/wristband", f.card.id)) {
                    (cx.csrf_field())
                    div.actions {
                        button type="submit" { (l.t("生成腕带", "Make the wristband")) }
                        a.button.secondary href="/admin/temporary-cards" { (l.t("取消", "Cancel")) }
                    }
                }
            }
        },
    );
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
pub(in crate::web) struct WristbandForm {
    csrf: Option<String>,
}

/// The wristband: 25 × 250 mm, the QR (22 mm) at one end, then 无名氏 or
/// the name, sex, approximate age, card id (short), valid until and the
/// issuing clinic, in Chinese (what the ward reads) whatever the portal's
/// language; the rest of the band is the strap.
pub(super) async fn wristband(
    req: HttpRequest,
    state: web::Data<State>,
    id: web::Path<String>,
    form: web::Form<WristbandForm>,
) -> PageResult {
    let cx = Cx::new(&req);
    let admin = signed_in!(req, state, cx);
    csrf_or_refuse!(req, cx, form.csrf.as_deref());
    let l = cx.lang;
    let f = load(&state, &id).await?;
    if f.card.status != CardStatus::Active || f.temporary.terms.valid_until < state.ctx.clock.now()
    {
        return Err(AppError::Conflict {
            code: "card_not_active",
            message: "only an active temporary card in date gets a wristband".into(),
        }
        .into());
    }
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let cid = f.card.id;
    let svg = web::block(move || -> Result<String, AppError> {
        let (_, minted) =
            registry::mint_recorded(&ctx, &actor, cid, TokenKind::Static, MintVia::Wristband)?;
        let qr = crate::token::qr::encode_for_print(&minted.text)
            .map_err(|e| AppError::Internal(format!("QR encoding: {e}")))?;
        Ok(qr.to_svg())
    })
    .await??;
    let t = &f.temporary;
    let sex = Lang::Zh.sex(f.resident.sex.as_str());
    let until = when(t.terms.valid_until);
    let body = html! {
        div.toolbar.no-print {
            a.button.secondary href="/admin/temporary-cards" { "← " (l.t("返回", "Back")) }
            button #print-button type="button" { (l.t("打印", "Print")) }
            p.hint { (l.t(
                "腕带 25 × 250 毫米：请用腕带打印机按“实际大小”(100%) 打印。",
                "Wristband 25 × 250 mm: print on a wristband printer at actual size (100%).",
            )) }
        }
        div.wristband #wristband lang="zh-CN" {
            div.band-qr #band-qr role="img" aria-label="临时卡二维码" { (PreEscaped(svg)) }
            div.band-text {
                p.band-title { "临时卡" span.band-only { " · 仅限签发机构使用" } }
                p.band-name { (if t.name_known { f.resident.name.clone() } else { "无名氏".to_owned() }) }
                p.band-facts { (sex) " · " (age(Lang::Zh, t.birth_year)) }
                p.band-facts { "卡号 " span.mono { (short(f.card.id)) } " · 有效期至 " (until.get(..16).unwrap_or(&until)) }
                p.band-clinic { (f.clinic_name) }
            }
        }
        p.no-print.muted { (l.t("有效期按北京时间显示。", "The end date is shown in China Standard Time.")) }
    };
    let markup = cx.shell(
        Area::Print,
        l.t("打印腕带", "Print wristband"),
        &["print.js"],
        Some(super::nav(&cx, &admin)),
        body,
    );
    Ok(cx.ok(markup))
}
