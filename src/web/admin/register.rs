//! Registering a resident from the portal with any identity document, or a
//! newborn under a guardian, and adding a document to a resident later. The
//! form changes with the type: each type is its own tab (a link, so it works
//! without script), showing only the fields that type needs. The rules are
//! the domain's (`Document::parse`, `Document::demographics`) and the
//! service's (`registry::register_resident`, `families::register_newborn`),
//! the same as the API's; errors stand beside their field.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::NaiveDate;
use maud::{html, Markup};
use serde::Deserialize;

use super::{page, Checked, SignedIn};
use crate::domain::{
    Document, DocumentError, DocumentType, MobileNumber, NationalId, PersonName, Relation,
    ResidentId, Sex,
};
use crate::error::AppError;
use crate::request::auth::blocking;
use crate::request::extract::uuid;
use crate::request::State;
use crate::service::families::{self, FamilyError, NewNewborn};
use crate::service::lookup;
use crate::service::registry::{self, Actor, LookupVia};
use crate::store::residents::{NewResident, Resident};
use crate::store::{Conflict, StoreError};
use crate::web::page::{Cx, PageResult};
use crate::web::Lang;

/// What the form registers: a resident with a document of a type, or a
/// newborn without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Document(DocumentType),
    Newborn,
}

impl Kind {
    const NEWBORN: &'static str = "newborn";

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "" => Some(Kind::Document(DocumentType::ResidentIdCard)),
            Self::NEWBORN => Some(Kind::Newborn),
            other => DocumentType::parse(other).ok().map(Kind::Document),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Document(t) => t.as_str(),
            Kind::Newborn => Self::NEWBORN,
        }
    }

    fn all() -> impl Iterator<Item = Kind> {
        DocumentType::ALL
            .into_iter()
            .map(Kind::Document)
            .chain([Kind::Newborn])
    }

    fn name(self, l: Lang) -> &'static str {
        match self {
            Kind::Document(t) => l.document_type(t),
            Kind::Newborn => l.t(
                "新生儿（由监护人登记）",
                "Newborn, registered by a guardian",
            ),
        }
    }
}

/// The label of a document's number field.
fn number_label(l: Lang, t: DocumentType) -> &'static str {
    match t {
        DocumentType::ResidentIdCard | DocumentType::HouseholdRegister => {
            l.t("身份证号", "ID number")
        }
        DocumentType::Passport => l.t("护照号码", "Passport number"),
        DocumentType::HkMacaoPermit | DocumentType::TaiwanPermit => {
            l.t("通行证号码", "Permit number")
        }
        DocumentType::BirthCertificate => l.t("出生医学证明编号", "Birth certificate number"),
        DocumentType::HmtResidencePermit => l.t("居住证号码", "Residence permit number"),
        DocumentType::ForeignPermanentResidence => {
            l.t("永久居留身份证号码", "Permanent residence card number")
        }
    }
}

/// A refused document, in words (one arm per refusal; the number's own
/// reason is the domain's message for an ID number, a format hint otherwise).
fn document_error(l: Lang, t: DocumentType, e: &DocumentError) -> (&'static str, &'static str) {
    match e {
        DocumentError::UnknownType => ("kind", l.t("未知的证件类型", "Unknown document type")),
        DocumentError::Number { .. } | DocumentError::NationalId { .. } => (
            "number",
            match t {
                DocumentType::Passport => l.t(
                    "护照号码应为5到20位字母和数字",
                    "A passport number has 5 to 20 letters and digits",
                ),
                _ => l.t(
                    "号码不符合该证件的格式，请核对",
                    "The number does not fit this document's format; please check it",
                ),
            },
        ),
        DocumentError::Country { .. } => (
            "country",
            l.t(
                "请填写签发国家的三位字母代码（ISO 3166-1，如 USA、JPN）",
                "Give the issuing country's three-letter code (ISO 3166-1, e.g. USA, JPN)",
            ),
        ),
        DocumentError::Mismatch { field } => (
            field.as_str(),
            l.t(
                "与证件号码中的信息不一致",
                "Does not match what the document number says",
            ),
        ),
        DocumentError::Required { field } => (field.as_str(), l.t("必填", "Required")),
    }
}

#[derive(Deserialize, Default, Clone)]
pub(in crate::web) struct RegisterForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    guardian_id: String,
    #[serde(default)]
    relation: String,
}

impl RegisterForm {
    /// The form for a citizen number found by the search, filled in.
    pub(super) fn with_national_id(id: &NationalId) -> Self {
        RegisterForm {
            number: id.as_str().to_owned(),
            ..Default::default()
        }
    }
}

type Errors = HashMap<&'static str, Markup>;

fn field(
    errors: &Errors,
    id: &'static str,
    label: &str,
    input: Markup,
    hint: Option<&str>,
) -> Markup {
    let e = errors.get(id);
    html! {
        div.field.invalid[e.is_some()] {
            label for=(id) { (label) }
            (input)
            @if let Some(h) = hint { small.hint { (h) } }
            @if let Some(e) = e { p.error id=(format!("{id}-error")) role="alert" { (e) } }
        }
    }
}

/// The fields of a document of type `t`: its number (with `demographics_hint`
/// where the number encodes sex and birth date) and, for a passport, the
/// issuing country (the registration form and the add-document form).
fn document_fields(
    l: Lang,
    t: DocumentType,
    v: &RegisterForm,
    errors: &Errors,
    demographics_hint: &'static str,
) -> Markup {
    let bad = |id: &str| errors.contains_key(id).then_some("true");
    html! {
        (field(errors, "number", number_label(l, t), html! {
            input #number type="text" name="number" value=(v.number) maxlength="32"
                spellcheck="false" required aria-invalid=[bad("number")];
        }, t.encodes_demographics().then_some(demographics_hint)))
        @if t == DocumentType::Passport {
            (field(errors, "country", l.t("签发国家代码", "Issuing country code"), html! {
                input #country type="text" name="country" value=(v.country) maxlength="3"
                    spellcheck="false" required aria-invalid=[bad("country")];
            }, Some(l.t("ISO 3166-1 三位字母，如 USA、JPN、KOR", "ISO 3166-1 three letters, e.g. USA, JPN, KOR"))))
        }
    }
}

fn relation_select(l: Lang, chosen: &str) -> Markup {
    html! {
        select #relation name="relation" {
            @for rel in Relation::ALL {
                option value=(rel.as_str()) selected[rel.as_str() == chosen] { (super::residents::relation_name(l, rel)) }
            }
        }
    }
}

fn sex_select(l: Lang, chosen: &str, invalid: bool) -> Markup {
    html! {
        select #sex name="sex" aria-invalid=[invalid.then_some("true")] {
            option value="" selected[chosen.is_empty()] { (l.t("请选择", "Choose")) }
            option value="female" selected[chosen == "female"] { (l.sex("female")) }
            option value="male" selected[chosen == "male"] { (l.sex("male")) }
        }
    }
}

/// The tabs of the types and the form of the chosen one.
pub(super) fn register_form(cx: &Cx, kind: Kind, v: &RegisterForm, errors: &Errors) -> Markup {
    let l = cx.lang;
    let bad = |id: &str| errors.contains_key(id).then_some("true");
    let asks_demographics = match kind {
        Kind::Document(t) => !t.encodes_demographics(),
        Kind::Newborn => true,
    };
    html! {
        h1 { (l.t("登记居民", "Register a resident")) }
        nav.tabs aria-label=(l.t("证件类型", "Document type")) {
            @for k in Kind::all() {
                @if k == kind {
                    a.tab.current href=(format!("/admin/residents/new?type={}", k.as_str())) aria-current="page" { (k.name(l)) }
                } @else {
                    a.tab href=(format!("/admin/residents/new?type={}", k.as_str())) { (k.name(l)) }
                }
            }
        }
        @if let Some(e) = errors.get("kind") { p.error role="alert" { (e) } }
        form.card-form method="post" action="/admin/residents" autocomplete="off" novalidate {
            (cx.csrf_field())
            input type="hidden" name="kind" value=(kind.as_str());
            (field(errors, "name", l.t("姓名", "Name"), html! {
                input #name type="text" name="name" value=(v.name) maxlength="64" required aria-invalid=[bad("name")];
            }, Some(match kind {
                Kind::Document(_) => l.t("与证件上的姓名一致", "As written on the document"),
                Kind::Newborn => l.t("出生医学证明办好前可先用小名", "A first name will do until the birth certificate is issued"),
            })))
            @if let Kind::Document(t) = kind {
                (document_fields(l, t, v, errors, l.t("性别和出生日期从号码读取", "Sex and birth date are read from the number")))
            }
            @if asks_demographics {
                (field(errors, "sex", l.t("性别", "Sex"), sex_select(l, &v.sex, errors.contains_key("sex")), None))
                (field(errors, "birth_date", l.t("出生日期", "Birth date"), html! {
                    input #birth_date type="date" name="birth_date" value=(v.birth_date) required aria-invalid=[bad("birth_date")];
                }, (kind == Kind::Newborn).then(|| l.t("一周岁以内", "Under one year ago"))))
            }
            @if kind == Kind::Newborn {
                (field(errors, "guardian_id", l.t("监护人的居民编号", "Guardian's resident id"), html! {
                    input #guardian_id type="text" name="guardian_id" value=(v.guardian_id) maxlength="36"
                        spellcheck="false" required aria-invalid=[bad("guardian_id")];
                }, Some(l.t("监护人须已登记且年满18周岁；其居民页面上的编号", "The guardian must be registered and of full age; the id on their resident page"))))
                (field(errors, "relation", l.t("监护人与新生儿的关系", "What the guardian is to the newborn"), relation_select(l, &v.relation), None))
            } @else {
                (field(errors, "phone", l.t("手机号（选填）", "Mobile number (optional)"), html! {
                    input #phone type="tel" name="phone" value=(v.phone) maxlength="20" inputmode="tel" aria-invalid=[bad("phone")];
                }, None))
            }
            button type="submit" { (l.t("登记", "Register")) }
        }
    }
}

#[derive(Deserialize)]
pub(in crate::web) struct TypeQuery {
    #[serde(rename = "type", default)]
    kind: String,
}

pub(super) async fn new_form(
    SignedIn { admin, cx }: SignedIn,
    q: web::Query<TypeQuery>,
) -> PageResult {
    let l = cx.lang;
    let kind = Kind::parse(&q.kind).ok_or_else(|| AppError::NotFound("no such type".into()))?;
    let body = page(
        &cx,
        &admin,
        l.t("登记居民", "Register resident"),
        register_form(&cx, kind, &RegisterForm::default(), &HashMap::new()),
    );
    Ok(cx.ok(body))
}

/// A birth date from a date field (`YYYY-MM-DD`), not in the future.
fn birth_date(l: Lang, s: &str, errors: &mut Errors) -> Option<NaiveDate> {
    match s.trim() {
        "" => None,
        d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(b) if b <= chrono::Utc::now().date_naive() => Some(b),
            Ok(_) => {
                errors.insert(
                    "birth_date",
                    html! { (l.t("出生日期在未来", "The birth date is in the future")) },
                );
                None
            }
            Err(_) => {
                errors.insert(
                    "birth_date",
                    html! { (l.t("请按 年-月-日 填写", "Give it as year-month-day")) },
                );
                None
            }
        },
    }
}

fn sex(l: Lang, s: &str, errors: &mut Errors) -> Option<Sex> {
    match s.trim() {
        "" => None,
        s => s
            .parse()
            .map_err(|_| errors.insert("sex", html! { (l.t("请选择性别", "Choose a sex")) }))
            .ok(),
    }
}

/// The document of a form: an ID number through `NationalId::parse` (its
/// refusals have their own words), any other type through `Document::parse`.
fn document(l: Lang, t: DocumentType, v: &RegisterForm, errors: &mut Errors) -> Option<Document> {
    let citizen = |n: NationalId| match t {
        DocumentType::HouseholdRegister => Document::HouseholdRegister(n),
        _ => Document::ResidentIdCard(n),
    };
    if matches!(
        t,
        DocumentType::ResidentIdCard | DocumentType::HouseholdRegister
    ) {
        return NationalId::parse(&v.number)
            .map(citizen)
            .map_err(|e| errors.insert("number", html! { (l.domain_error(&e)) }))
            .ok();
    }
    let country = (t == DocumentType::Passport).then_some(v.country.as_str());
    Document::parse(t, &v.number, country)
        .map_err(|e| {
            let (at, words) = document_error(l, t, &e);
            errors.insert(at, html! { (words) })
        })
        .ok()
}

enum Parsed {
    Resident(NewResident, Conflict),
    Newborn(NewNewborn),
}

fn parse(l: Lang, kind: Kind, v: &RegisterForm, errors: &mut Errors) -> Option<Parsed> {
    let name = PersonName::parse(&v.name)
        .map_err(|e| errors.insert("name", html! { (l.domain_error(&e)) }))
        .ok();
    let sex = sex(l, &v.sex, errors);
    let birth = birth_date(l, &v.birth_date, errors);
    match kind {
        Kind::Newborn => {
            let guardian = v
                .guardian_id
                .trim()
                .parse::<ResidentId>()
                .map_err(|_| {
                    errors.insert(
                        "guardian_id",
                        html! { (l.t("不是有效的居民编号", "Not a resident id")) },
                    )
                })
                .ok();
            let relation = v.relation.parse::<Relation>().ok();
            if sex.is_none() && !errors.contains_key("sex") {
                errors.insert("sex", html! { (l.t("必填", "Required")) });
            }
            if birth.is_none() && !errors.contains_key("birth_date") {
                errors.insert("birth_date", html! { (l.t("必填", "Required")) });
            }
            if relation.is_none() {
                errors.insert(
                    "relation",
                    html! { (l.t("请选择关系", "Choose a relation")) },
                );
            }
            Some(Parsed::Newborn(NewNewborn {
                name: name?,
                sex: sex?,
                birth_date: birth?,
                guardian: guardian?,
                relation: relation?,
            }))
        }
        Kind::Document(t) => {
            let phone = match v.phone.trim() {
                "" => Some(None),
                p => MobileNumber::parse(p)
                    .map(Some)
                    .map_err(|e| errors.insert("phone", html! { (l.domain_error(&e)) }))
                    .ok(),
            };
            if !t.encodes_demographics() {
                // Asked for beside the number: say every missing one at once.
                if sex.is_none() {
                    errors
                        .entry("sex")
                        .or_insert(html! { (l.t("必填", "Required")) });
                }
                if birth.is_none() {
                    errors
                        .entry("birth_date")
                        .or_insert(html! { (l.t("必填", "Required")) });
                }
            }
            let doc = document(l, t, v, errors)?;
            let (sex, birth_date) = doc
                .demographics(sex, birth)
                .map_err(|e| {
                    let (at, words) = document_error(l, t, &e);
                    errors.entry(at).or_insert(html! { (words) });
                })
                .ok()?;
            let taken = match t {
                DocumentType::ResidentIdCard => Conflict::NationalIdRegistered,
                _ => Conflict::DocumentRegistered,
            };
            Some(Parsed::Resident(
                NewResident {
                    name: name?,
                    document: Some(doc),
                    sex,
                    birth_date,
                    phone: phone?,
                },
                taken,
            ))
        }
    }
}

/// Why the service refused, beside the field it is about.
fn refusal(l: Lang, e: &FamilyError) -> Option<(&'static str, &'static str)> {
    use crate::domain::GuardianRefusal as R;
    Some(match e {
        FamilyError::NotFound => (
            "guardian_id",
            l.t("没有这个编号的居民", "No resident has this id"),
        ),
        FamilyError::NotNewborn => (
            "birth_date",
            l.t(
                "没有证件的登记仅限一周岁以内的新生儿",
                "Only a child under one year of age is registered without a document",
            ),
        ),
        FamilyError::Refused(R::GuardianMinor) => (
            "guardian_id",
            l.t("监护人须年满18周岁", "The guardian must be of full age"),
        ),
        FamilyError::Refused(
            R::Oneself | R::Cycle | R::ConsentRequired | R::TooMany | R::Exists,
        ) => (
            "guardian_id",
            l.t("不能作为监护人", "Cannot be the guardian"),
        ),
        FamilyError::Store(_) => return None,
    })
}

fn form_page(
    cx: Cx,
    admin: &crate::store::admins::Admin,
    kind: Kind,
    v: &RegisterForm,
    errors: &Errors,
    status: StatusCode,
) -> actix_web::HttpResponse {
    let l = cx.lang;
    let body = page(
        &cx,
        admin,
        l.t("登记居民", "Register resident"),
        register_form(&cx, kind, v, errors),
    );
    cx.html(status, body)
}

pub(super) async fn register(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    form: Checked<RegisterForm>,
) -> PageResult {
    let l = cx.lang;
    let v = form.into_inner();
    let mut errors = Errors::new();
    let kind = Kind::parse(&v.kind).unwrap_or_else(|| {
        errors.insert(
            "kind",
            html! { (l.t("未知的证件类型", "Unknown document type")) },
        );
        Kind::Document(DocumentType::ResidentIdCard)
    });
    let parsed = parse(l, kind, &v, &mut errors);
    let (Some(parsed), true) = (parsed, errors.is_empty()) else {
        return Ok(form_page(
            cx,
            &admin,
            kind,
            &v,
            &errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    };
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let outcome = web::block(move || -> Result<Outcome, AppError> {
        match parsed {
            Parsed::Newborn(new) => match families::register_newborn(&ctx, &actor, &new) {
                Ok(r) => Ok(Outcome::Made(r)),
                Err(e) => match refusal(l, &e) {
                    Some(at) => Ok(Outcome::Refused(at)),
                    None => Err(e.into()),
                },
            },
            Parsed::Resident(new, taken) => {
                match registry::register_resident(&ctx, &actor, &new, taken) {
                    Ok(r) => Ok(Outcome::Made(r)),
                    Err(StoreError::Conflict(c)) if c == taken => {
                        // The link to the registered resident is a look-up by number too.
                        let doc = new.document.as_ref().expect("registered with a document");
                        let existing =
                            registry::find_resident(&ctx, &actor, doc, LookupVia::Portal)?;
                        Ok(Outcome::Taken(existing.map(|r| r.id)))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    })
    .await
    .map_err(|_| AppError::Unavailable)??;
    match outcome {
        Outcome::Made(r) => Ok(cx.redirect(&format!("/admin/residents/{}", r.id))),
        Outcome::Refused((at, words)) => {
            errors.insert(at, html! { (words) });
            Ok(form_page(
                cx,
                &admin,
                kind,
                &v,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Outcome::Taken(existing) => {
            errors.insert(
                "number",
                html! {
                    (l.t("该证件号码已经登记。", "This document number is already registered."))
                    @if let Some(id) = existing {
                        " " a href=(format!("/admin/residents/{id}")) { (l.t("查看该居民", "Open that resident")) }
                    }
                },
            );
            Ok(form_page(
                cx,
                &admin,
                kind,
                &v,
                &errors,
                StatusCode::CONFLICT,
            ))
        }
    }
}

enum Outcome {
    Made(Resident),
    Refused((&'static str, &'static str)),
    Taken(Option<ResidentId>),
}

// --- A document added to a resident ----------------------------------------

/// The link from the resident's page.
pub(super) fn add_document_link(l: Lang, r: &Resident) -> Markup {
    html! {
        a.button.secondary href=(format!("/admin/residents/{}/documents/new", r.id)) { (l.t("添加证件", "Add a document")) }
    }
}

fn document_form(
    cx: &Cx,
    r: &Resident,
    t: DocumentType,
    v: &RegisterForm,
    errors: &Errors,
) -> Markup {
    let l = cx.lang;
    html! {
        h1 { (l.t("添加证件", "Add a document")) " · " (r.name) }
        (super::residents::resident_summary(l, r))
        nav.tabs aria-label=(l.t("证件类型", "Document type")) {
            @for k in DocumentType::ALL {
                @if k == t {
                    a.tab.current href=(format!("/admin/residents/{}/documents/new?type={}", r.id, k.as_str())) aria-current="page" { (l.document_type(k)) }
                } @else {
                    a.tab href=(format!("/admin/residents/{}/documents/new?type={}", r.id, k.as_str())) { (l.document_type(k)) }
                }
            }
        }
        form.card-form method="post" action=(format!("/admin/residents/{}/documents", r.id)) autocomplete="off" novalidate {
            (cx.csrf_field())
            input type="hidden" name="kind" value=(t.as_str());
            (document_fields(l, t, v, errors, l.t("号码中的性别和出生日期须与登记的一致", "The sex and birth date in the number must match the registered ones")))
            button type="submit" { (l.t("添加", "Add")) }
        }
    }
}

async fn load(state: &web::Data<State>, id: &str) -> Result<Resident, AppError> {
    let rid = ResidentId::from_uuid(uuid(id)?);
    let ctx = state.ctx.clone();
    blocking(move || lookup::resident(&ctx, rid)).await
}

pub(super) async fn new_document_form(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    q: web::Query<TypeQuery>,
) -> PageResult {
    let l = cx.lang;
    let t = match q.kind.as_str() {
        "" => DocumentType::BirthCertificate,
        k => DocumentType::parse(k).map_err(|_| AppError::NotFound("no such type".into()))?,
    };
    let r = load(&state, &id).await?;
    let body = page(
        &cx,
        &admin,
        l.t("添加证件", "Add a document"),
        document_form(&cx, &r, t, &RegisterForm::default(), &HashMap::new()),
    );
    Ok(cx.ok(body))
}

pub(super) async fn add_document(
    SignedIn { admin, cx }: SignedIn,
    state: web::Data<State>,
    id: web::Path<String>,
    form: Checked<RegisterForm>,
) -> PageResult {
    let l = cx.lang;
    let v = form.into_inner();
    let t = DocumentType::parse(&v.kind).map_err(|_| AppError::NotFound("no such type".into()))?;
    let r = load(&state, &id).await?;
    let mut errors = Errors::new();
    let parsed = document(l, t, &v, &mut errors).and_then(|doc| {
        // A number that encodes sex and birth date must agree with the resident.
        doc.demographics(Some(r.sex), Some(r.birth_date))
            .map_err(|e| {
                errors.insert("number", html! { (document_error(l, t, &e).1) });
            })
            .ok()
            .map(|_| doc)
    });
    let render = |cx: Cx, errors: &Errors, status: StatusCode| {
        let body = page(
            &cx,
            &admin,
            l.t("添加证件", "Add a document"),
            document_form(&cx, &r, t, &v, errors),
        );
        cx.html(status, body)
    };
    let Some(doc) = parsed else {
        return Ok(render(cx, &errors, StatusCode::UNPROCESSABLE_ENTITY));
    };
    let actor = Actor::admin(admin.username.as_str());
    let ctx = state.ctx.clone();
    let rid = r.id;
    let added = blocking(
        move || match registry::add_document(&ctx, &actor, rid, &doc) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(Conflict::DocumentRegistered)) => Ok(false),
            Err(e) => Err(e),
        },
    )
    .await?;
    if added {
        return Ok(cx.redirect(&format!("/admin/residents/{rid}")));
    }
    errors.insert(
        "number",
        html! { (l.t("该证件号码已经登记在另一位居民名下。", "This document number is registered to another resident.")) },
    );
    Ok(render(cx, &errors, StatusCode::CONFLICT))
}
