//! `/card`: the holder's page on their phone.
//!
//! How the holder opens it: the card office gives a link `/card#<credential>`.
//! The fragment never reaches the server or its logs; `card.js` reads it,
//! removes it from the address bar and history, and posts it once to
//! `/card/open`, which keeps it in an HttpOnly, SameSite=Strict cookie. The
//! credential can also be pasted into the form. From then on the page asks
//! `/card/token` for fresh dynamic tokens and the phone draws the QR itself
//! (vendored MIT QR encoder, alphanumeric mode, level M): the server renders
//! no image. Without JavaScript, `/card/qr.svg` is the fallback.
//!
//! The page shows the QR, its countdown and the card reference only; who
//! looked the card up is folded away, so a screenshot of the code leaks
//! nothing else.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::{Deserialize, Serialize};

use super::csrf;
use super::page::{close_with, short, when, Area, CsrfOnly, Cx, PageError, PageResult};
use crate::crypto::{SecretKind, SecretToken};
use crate::domain::{CardId, CardStatus, EndReason};
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::State;
use crate::service::lookup;
use crate::service::{families, registry};
use crate::store::access_log::ActorKind;
use crate::store::cards::Card;
use crate::token::TokenKind;

/// The cookie that keeps the holder credential on the phone.
pub(super) const HOLDER_COOKIE: &str = "hc_holder";
/// How long the phone keeps it (the credential itself lives until a reissue).
const HOLDER_COOKIE_SECS: i64 = 180 * 24 * 3600;

pub(super) fn scope() -> actix_web::Scope {
    web::scope("/card")
        .route("", web::get().to(show))
        .route("/", web::get().to(show))
        .route("/open", web::post().to(open))
        .route("/close", web::post().to(close))
        .route("/token", web::post().to(token))
        .route("/qr.svg", web::get().to(qr_svg))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(PageError(AppError::NotFound("no such page".into())))
        }))
}

fn credential(req: &HttpRequest) -> Option<SecretToken> {
    let c = crate::proxy::cookie(req, HOLDER_COOKIE)?;
    SecretToken::parse(SecretKind::Holder, &c)
}

/// The card of the presented credential (`None`: no or an unknown credential).
async fn holder_card(
    state: &web::Data<State>,
    secret: &SecretToken,
    rate_limited: bool,
) -> Result<Option<Card>, AppError> {
    let hash = secret.hash();
    if rate_limited {
        state.limits.holder_rate(&hash)?;
    }
    let ctx = state.ctx.clone();
    blocking(move || lookup::card_of_holder(&ctx, &hash)).await
}

/// `?card_id=` of the page's own token and QR routes.
#[derive(Deserialize)]
struct CardChoice {
    card_id: Option<String>,
}

/// The card a page request reaches (the rule is `service::families::reach`):
/// the holder's own, or a dependant's; `NotFound` for any other (a dead
/// credential's card reaches only itself, and minting refuses it).
async fn reach(
    state: &web::Data<State>,
    own: Card,
    wanted: Option<CardId>,
) -> Result<Card, AppError> {
    if wanted.is_none() || wanted == Some(own.id) {
        return Ok(own);
    }
    let ctx = state.ctx.clone();
    web::block(move || families::reach_card(&ctx, &own, wanted))
        .await?
        .map_err(AppError::from)
}

/// The page that asks for the holder credential, with `error` beside its field.
fn open_page(cx: &Cx, error: Option<&str>) -> maud::Markup {
    let l = cx.lang;
    let form = html! {
        h1 { (l.t("打开我的电子健康卡", "Open my health card")) }
        p { (l.t(
            "请使用发卡时收到的链接打开本页；也可以把持卡人凭证（以 hch_ 开头）粘贴到下面。",
            "Open this page with the link you were given when the card was issued, or paste the holder credential (it begins with hch_) below.",
        )) }
        form #open-form.card-form.narrow method="post" action="/card/open" autocomplete="off" {
            (cx.csrf_field())
            div.field.invalid[error.is_some()] {
                label for="credential" { (l.t("持卡人凭证", "Holder credential")) }
                input #credential type="password" name="credential" required spellcheck="false"
                    autocomplete="off" aria-invalid=[error.map(|_| "true")];
                @if let Some(e) = error { p.error id="credential-error" role="alert" { (e) } }
            }
            button type="submit" { (l.t("打开", "Open")) }
        }
    };
    cx.shell(
        Area::Card,
        l.t("我的电子健康卡", "My health card"),
        &["card.js"],
        None,
        form,
    )
}

fn status_words(cx: &Cx, s: CardStatus) -> &'static str {
    match s {
        CardStatus::Active => "",
        CardStatus::Suspended => cx.t(
            "此卡已被暂停使用，请联系发卡机构。",
            "This card is suspended; contact the card office.",
        ),
        CardStatus::Revoked => cx.t(
            "此卡已被吊销，不能再使用。",
            "This card has been revoked and can no longer be used.",
        ),
        CardStatus::Replaced => cx.t(
            "此卡已被补发的新卡替代，请使用新卡的链接。",
            "This card has been replaced by a new one: use the new card's link.",
        ),
    }
}

/// Which family member's card the page shows (`?card=`; none: the holder's own).
#[derive(Deserialize)]
struct Pick {
    card: Option<String>,
}

/// What the page knows of the holder's family: the cards it may show, and
/// the guardianships of this holder that ended (so the page can say why a
/// card is gone).
struct FamilyCards {
    cards: Vec<families::Reachable>,
    ended: Vec<(String, EndReason)>,
}

fn relation_words(cx: &Cx, w: families::Whose) -> &'static str {
    use crate::domain::Relation as R;
    match w {
        families::Whose::Own => cx.t("本人", "Me"),
        families::Whose::Dependant(r) => match r {
            // What the holder is to the family member, as the office wrote it.
            R::Father => cx.t("我是父亲", "I am the father"),
            R::Mother => cx.t("我是母亲", "I am the mother"),
            R::Grandparent => cx.t("我是祖父母", "I am a grandparent"),
            R::Spouse => cx.t("我是配偶", "I am the spouse"),
            R::Child => cx.t("我是子女", "I am a child"),
            R::Sibling => cx.t("我是兄弟姐妹", "I am a sibling"),
            R::OtherRelative => cx.t("我是其他亲属", "I am a relative"),
            R::LegalGuardian => cx.t("我是监护人", "I am the legal guardian"),
        },
    }
}

fn end_words(cx: &Cx, r: EndReason) -> &'static str {
    match r {
        EndReason::Removed => cx.t(
            "发卡机构已解除监护关系，此卡不再显示在您的手机上。",
            "The card office ended the guardianship; this card is no longer on your phone.",
        ),
        EndReason::CameOfAge => cx.t(
            "已年满十八周岁，监护关系自动结束；请使用本人的卡。",
            "They have turned 18, so the guardianship ended by itself; they use their own card now.",
        ),
    }
}

async fn show(req: HttpRequest, state: web::Data<State>) -> PageResult {
    let cx = Cx::new(&req);
    let l = cx.lang;
    let pick = web::Query::<Pick>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().card)
        .and_then(|c| c.parse::<CardId>().ok());
    let card = match credential(&req) {
        Some(s) => holder_card(&state, &s, false).await?,
        None => None,
    };
    let Some(card) = card else {
        let body = open_page(&cx, None);
        return Ok(cx.ok(body));
    };
    // A replaced or revoked card's credential (a lost phone) must not keep
    // showing where the resident is seen or the family: only its status.
    let current = card.status.holds_slot();
    let ctx = state.ctx.clone();
    let own = card.clone();
    let fam = web::block(move || -> Result<FamilyCards, AppError> {
        if !current {
            return Ok(FamilyCards {
                cards: Vec::new(),
                ended: Vec::new(),
            });
        }
        let cards = families::reachable(&ctx, &own)?;
        let ended = families::family(&ctx, own.resident_id)?
            .ended
            .into_iter()
            .filter(|m| m.guardianship.guardian == own.resident_id)
            // Said for a month after the end, then the page forgets it.
            .filter(|m| {
                m.guardianship
                    .ended_at
                    .is_none_or(|t| t > crate::store::now() - chrono::Duration::days(30))
            })
            .filter_map(|m| m.ended.map(|e| (m.resident.name, e)))
            .collect();
        Ok(FamilyCards { cards, ended })
    })
    .await??;
    // The card shown: the one picked, if this credential reaches it.
    let picked = pick.and_then(|id| fam.cards.iter().find(|r| r.card.id == id));
    let gone = pick.is_some() && picked.is_none() && pick != Some(card.id);
    let shown = picked.or(fam.cards.first());
    let shown_card = shown
        .map(|r| r.card.clone())
        .unwrap_or_else(|| card.clone());
    // Who looked the card up: the shown resident's verifications, by clinic name.
    let ctx = state.ctx.clone();
    let resident = shown_card.resident_id;
    let (rows, names) = blocking(move || {
        // With the records merged into this one: the history stays whole.
        let rows = if current {
            crate::service::merges::history(&ctx, resident, 100)?
        } else {
            Vec::new()
        };
        let names: HashMap<String, String> = lookup::clinics(&ctx)?
            .into_iter()
            .map(|c| (c.id.to_string(), c.name))
            .collect();
        Ok((rows, names))
    })
    .await?;
    let lookups: Vec<_> = rows
        .iter()
        .filter(|r| {
            matches!(
                r.action.as_str(),
                "verify" | "identify" | "link.create" | "link.lookup"
            )
        })
        .take(20)
        .collect();
    let active = shown_card.status == CardStatus::Active;
    let is_own = shown_card.id == card.id;
    // The owner's name only on a family's phone: a phone with one card
    // shows no name (a screenshot of the code leaks nothing else).
    let owner_name = if fam.cards.len() > 1 {
        shown.map(|r| r.name.clone()).unwrap_or_default()
    } else {
        String::new()
    };
    let fallback_src = if is_own {
        "/card/qr.svg".to_string()
    } else {
        format!("/card/qr.svg?card_id={}", shown_card.id)
    };
    let body = cx.shell(
        Area::Card,
        l.t("我的电子健康卡", "My health card"),
        &["qrcode-generator.js", "card.js"],
        None,
        html! {
            @for (name, why) in &fam.ended {
                p.notice.banner role="status" { (name) "：" (end_words(&cx, *why)) }
            }
            @if gone {
                p.error.banner role="alert" #family-gone { (l.t(
                    "这张家庭成员的卡已不在您的手机上。",
                    "That family member's card is no longer on your phone.",
                )) }
            }
            @if fam.cards.len() > 1 {
                nav.family-switcher aria-label=(l.t("家庭成员", "Family")) {
                    ul {
                        @for m in &fam.cards {
                            li {
                                a.family-member href=(if m.card.id == card.id { "/card".to_string() } else { format!("/card?card={}", m.card.id) })
                                    aria-current=[(m.card.id == shown_card.id).then_some("page")]
                                    data-card=(m.card.id) {
                                    span.member-name { (m.name) }
                                    " · "
                                    span.member-relation { (relation_words(&cx, m.whose)) }
                                }
                            }
                        }
                    }
                }
            }
            section.holder-card {
                p.card-title { (l.t("居民电子健康卡", "Electronic health card")) }
                // Whose code this is, in large type: a nurse scanning a
                // child's card on a parent's phone reads the child's name.
                @if !owner_name.is_empty() {
                    p.qr-owner #qr-owner { (owner_name) }
                }
                @if active {
                    div #qr.qr role="img" aria-label=(l.t("就诊二维码", "Health card QR code"))
                        data-card=[(!is_own).then(|| shown_card.id.to_string())] {
                        noscript { img src=(fallback_src) alt=(l.t("就诊二维码", "Health card QR code")); }
                    }
                    p.countdown aria-live="polite" {
                        span #countdown-text data-zh="{s} 秒后自动刷新" data-en="Refreshes in {s} s"
                            data-offline-zh="网络不可用，正在重试…" data-offline-en="Offline; retrying…" {}
                    }
                    button #refresh.secondary type="button" { (l.t("立即刷新", "Refresh now")) }
                    p.hint { (l.t("出示此二维码给医院扫码。二维码每分钟更新，截图很快失效。", "Show this code to the clinic's scanner. It changes every minute, so a screenshot soon stops working.")) }
                } @else {
                    p.error.banner role="alert" #card-status { (status_words(&cx, shown_card.status)) }
                }
                p.card-ref { (l.t("卡号", "Card")) " " span.mono { (short(shown_card.id)) } }
            }
            details.lookups {
                summary { (l.t("最近谁查询了我的卡", "Who looked up my card recently")) " (" (lookups.len()) ")" }
                @if lookups.is_empty() {
                    p.muted { (l.t("暂无记录。", "Nobody yet.")) }
                } @else {
                    ul {
                        @for r in &lookups {
                            li {
                                (when(r.at)) " · "
                                (r.clinic_id.as_ref().and_then(|c| names.get(&c.to_string())).map(String::as_str).unwrap_or(match r.actor_kind {
                                    // Who in the card office did it is not the holder's business.
                                    ActorKind::Clinic | ActorKind::Holder => r.actor.as_str(),
                                    _ => l.t("发卡机构", "Card office"),
                                }))
                                @if let Some(c) = &r.channel { " · " (l.channel(&c.to_string())) }
                                " · " (l.action(&r.action))
                                @if let Some(o) = &r.outcome { " · " (l.outcome(o)) }
                            }
                        }
                    }
                }
            }
            form.inline method="post" action="/card/close" {
                (cx.csrf_field())
                button.link type="submit" { (l.t("在此设备上退出", "Sign out on this device")) }
            }
        },
    );
    Ok(cx.ok(body))
}

#[derive(Deserialize)]
struct OpenForm {
    #[serde(default)]
    credential: String,
    csrf: Option<String>,
}

async fn open(req: HttpRequest, state: web::Data<State>, form: web::Form<OpenForm>) -> PageResult {
    let mut cx = Cx::new(&req);
    let l = cx.lang;
    if !csrf::check(&req, form.csrf.as_deref()) {
        let body = open_page(
            &cx,
            Some(l.t(
                "页面已过期，请再试一次。",
                "The page expired; please try again.",
            )),
        );
        return Ok(cx.html(StatusCode::FORBIDDEN, body));
    }
    let secret = SecretToken::parse(SecretKind::Holder, form.credential.trim());
    let card = match &secret {
        Some(s) => holder_card(&state, s, true).await?,
        None => None,
    };
    match (secret, card) {
        (Some(s), Some(_)) => {
            cx.set_cookie(
                HOLDER_COOKIE,
                s.expose().to_string(),
                Some(HOLDER_COOKIE_SECS),
            );
            Ok(cx.redirect("/card"))
        }
        _ => {
            let body = open_page(
                &cx,
                Some(l.t(
                    "凭证无效，请检查链接或联系发卡机构。",
                    "This credential is not valid; check the link or contact the card office.",
                )),
            );
            Ok(cx.html(StatusCode::UNAUTHORIZED, body))
        }
    }
}

async fn close(req: HttpRequest, form: web::Form<CsrfOnly>) -> PageResult {
    close_with(&req, &form, HOLDER_COOKIE, "/card")
}

/// What `card.js` gets: the token text to draw, when it expires and the
/// server's clock (the phone's may be off).
#[derive(Serialize)]
struct TokenForPage {
    token: String,
    expires_at: i64,
    issued_at: i64,
    now: i64,
}

/// The JSON error of API.md for the page's own script.
#[derive(Serialize)]
struct ScriptError {
    code: &'static str,
    message: &'static str,
}

impl ScriptError {
    fn new(code: &'static str) -> Self {
        let message = match code {
            "csrf" => "the page is out of date; reload it",
            "unauthorized" => "open the card again with its link or holder credential",
            "rate_limited" => "too many requests; wait a moment",
            "card_not_active" => "this card is not active",
            "not_found" => "this card is not on this phone",
            "unavailable" => "the service is unavailable; try again soon",
            _ => "the request could not be handled",
        };
        ScriptError { code, message }
    }
}

async fn token(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let cx = Cx::new(&req);
    if !csrf::check(&req, csrf::header_token(&req)) {
        return cx.json(StatusCode::FORBIDDEN, &ScriptError::new("csrf"));
    }
    let Some(secret) = credential(&req) else {
        return cx.json(StatusCode::UNAUTHORIZED, &ScriptError::new("unauthorized"));
    };
    let wanted = web::Query::<CardChoice>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().card_id);
    let wanted = match wanted.as_deref().map(str::parse::<CardId>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return cx.json(StatusCode::NOT_FOUND, &ScriptError::new("not_found")),
    };
    let card = match holder_card(&state, &secret, true).await {
        Ok(Some(c)) => match reach(&state, c, wanted).await {
            Ok(c) => c,
            Err(AppError::NotFound(_)) => {
                return cx.json(StatusCode::NOT_FOUND, &ScriptError::new("not_found"))
            }
            Err(_) => {
                return cx.json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &ScriptError::new("unavailable"),
                )
            }
        },
        Ok(None) => return cx.json(StatusCode::UNAUTHORIZED, &ScriptError::new("unauthorized")),
        Err(AppError::RateLimited { .. }) => {
            return cx.json(
                StatusCode::TOO_MANY_REQUESTS,
                &ScriptError::new("rate_limited"),
            )
        }
        Err(_) => {
            return cx.json(
                StatusCode::SERVICE_UNAVAILABLE,
                &ScriptError::new("unavailable"),
            )
        }
    };
    match registry::mint_for(&state.ctx, &card, TokenKind::Dynamic) {
        Ok(m) => cx.json(
            StatusCode::OK,
            &TokenForPage {
                token: m.text,
                expires_at: m.claims.expires_at,
                issued_at: m.claims.issued_at,
                now: chrono::Utc::now().timestamp(),
            },
        ),
        Err(crate::service::registry::MintError::NotActive(_)) => {
            cx.json(StatusCode::CONFLICT, &ScriptError::new("card_not_active"))
        }
        Err(_) => cx.json(
            StatusCode::SERVICE_UNAVAILABLE,
            &ScriptError::new("unavailable"),
        ),
    }
}

/// The no-JavaScript fallback: the server draws the QR.
async fn qr_svg(req: HttpRequest, state: web::Data<State>) -> PageResult {
    let secret = credential(&req).ok_or(AppError::Unauthorized)?;
    let card = holder_card(&state, &secret, true)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let wanted = web::Query::<CardChoice>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().card_id)
        .map(|c| c.parse::<CardId>())
        .transpose()
        .map_err(|_| AppError::NotFound("no such card".into()))?;
    let card = reach(&state, card, wanted).await?;
    let minted =
        registry::mint_for(&state.ctx, &card, TokenKind::Dynamic).map_err(AppError::from)?;
    let svg = web::block(move || crate::token::qr::encode(&minted.text).map(|q| q.to_svg()))
        .await?
        .map_err(|e| AppError::Internal(format!("QR encoding: {e}")))?;
    let mut b = HttpResponse::Ok();
    super::page::security_headers(&mut b);
    Ok(b.insert_header((header::CONTENT_TYPE, "image/svg+xml"))
        .body(svg))
}
