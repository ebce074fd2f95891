//! Residents: register, find by ID number (blind index, every look-up
//! recorded), read with cards.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use chrono::NaiveDate;

use crate::domain::{
    Document, DocumentError, DocumentType, MobileNumber, NationalId, PersonName, ResidentId, Sex,
};
use crate::error::{AppError, ErrorBody};
use crate::http::views::{CardView, GuardianView, ResidentView};
use crate::request::auth::{blocking, AdminAuth};
use crate::request::extract::uuid;
use crate::request::State;
use crate::service::families::{self, NewNewborn};
use crate::service::lookup;
use crate::service::merges;
use crate::service::registry::{self, Actor, LookupVia};
use crate::store::residents::NewResident;
use crate::store::Conflict;

/// Exactly one of `national_id` (the short form of a `resident_id_card`) and
/// `document`. `sex` and `birth_date` are read from a number that encodes
/// them (a contradicting value: 422 `document_mismatch`), else required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterResident {
    /// 1-64 characters, e.g. 张三
    pub name: String,
    /// 18-character 居民身份证号 with a valid GB 11643 check digit; a
    /// newborn registered by a guardian comes without one (and without
    /// `document`).
    pub national_id: Option<String>,
    pub document: Option<DocumentQuery>,
    /// `male` or `female`
    pub sex: Option<String>,
    /// `YYYY-MM-DD`
    pub birth_date: Option<String>,
    /// Mainland mobile number, optional
    pub phone: Option<String>,
    /// A newborn's guardian(s), `[{guardian_id, relation}]`.
    pub guardians: Option<Vec<NewbornGuardian>>,
}

#[derive(Deserialize, ToSchema)]
pub struct NewbornGuardian {
    pub guardian_id: String,
    pub relation: String,
}

/// What a registration asks for: a resident with a document (and the
/// conflict a taken number answers with), or a newborn under a guardian.
enum Registration {
    WithDocument { new: NewResident, taken: Conflict },
    Newborn(NewNewborn),
}

impl TryFrom<RegisterResident> for Registration {
    type Error = AppError;
    fn try_from(r: RegisterResident) -> Result<Self, AppError> {
        let name = PersonName::parse(&r.name)?;
        let guardians = r.guardians.unwrap_or_default();
        let sex = r
            .sex
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse::<Sex>)
            .transpose()?;
        let birth = match r.birth_date.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                AppError::invalid("invalid_birth_date", "birth_date must be YYYY-MM-DD")
            })?),
        };
        if birth.is_some_and(|b| b > chrono::Utc::now().date_naive()) {
            return Err(AppError::invalid(
                "invalid_birth_date",
                "birth_date is in the future",
            ));
        }
        if r.national_id.is_none() && r.document.is_none() {
            let Some(first) = guardians.first() else {
                return Err(AppError::invalid(
                    "document_required",
                    "national_id or document is required, except for a newborn registered with guardians",
                ));
            };
            if guardians.len() > 1 {
                return Err(AppError::invalid(
                    "invalid_guardian",
                    "a newborn is registered under one guardian; add the others after",
                ));
            }
            let sex =
                sex.ok_or_else(|| AppError::invalid("invalid_sex", "a newborn's sex is required"))?;
            let birth_date = birth.ok_or_else(|| {
                AppError::invalid("invalid_birth_date", "a newborn's birth_date is required")
            })?;
            let guardian = ResidentId::from(uuid(&first.guardian_id).map_err(|_| {
                AppError::invalid("invalid_guardian", "guardian_id is not a resident id")
            })?);
            return Ok(Registration::Newborn(NewNewborn {
                name,
                sex,
                birth_date,
                guardian,
                relation: first.relation.parse()?,
            }));
        }
        if !guardians.is_empty() {
            return Err(AppError::invalid(
                "invalid_guardian",
                "guardians are given at registration only for a newborn without a document; add them with POST /api/v1/residents/{id}/guardians",
            ));
        }
        let phone = match r.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(MobileNumber::parse(p)?),
        };
        let (document, taken) = match (r.national_id, r.document) {
            (Some(n), None) => (
                Document::ResidentIdCard(NationalId::parse(&n)?),
                Conflict::NationalIdRegistered,
            ),
            (None, Some(d)) => (Document::try_from(d)?, Conflict::DocumentRegistered),
            _ => {
                return Err(AppError::invalid(
                    "invalid_body",
                    "give either national_id or document",
                ))
            }
        };
        let (sex, birth_date) = document.demographics(sex, birth)?;
        Ok(Registration::WithDocument {
            new: NewResident {
                name,
                document: Some(document),
                sex,
                birth_date,
                phone,
            },
            taken,
        })
    }
}

impl TryFrom<DocumentQuery> for Document {
    type Error = AppError;
    fn try_from(d: DocumentQuery) -> Result<Self, AppError> {
        let kind = DocumentType::parse(&d.kind).map_err(|_| DocumentError::UnknownType)?;
        Ok(Document::parse(kind, &d.number, d.country.as_deref())?)
    }
}

/// Register a resident.
#[utoipa::path(
    tag = "residents",
    request_body = RegisterResident,
    responses(
        (status = 201, body = ResidentView),
        (status = 409, body = ErrorBody, description = "national_id_registered (short form), document_registered"),
        (status = 422, body = ErrorBody, description = "invalid_document_type, invalid_document_number, invalid_country, document_mismatch, sex_required, birth_date_required, invalid_national_id, …"),
    ),
    security(("admin" = []))
)]
#[post("/api/v1/residents")]
pub(crate) async fn register(
    state: web::Data<State>,
    admin: AdminAuth,
    body: web::Json<RegisterResident>,
) -> Result<HttpResponse, AppError> {
    let reg = Registration::try_from(body.into_inner())?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let r = web::block(move || -> Result<_, AppError> {
        Ok(match reg {
            Registration::WithDocument { new, taken } => {
                registry::register_resident(&ctx, &actor, &new, taken)?
            }
            Registration::Newborn(new) => families::register_newborn(&ctx, &actor, &new)?,
        })
    })
    .await
    .map_err(|_| AppError::Unavailable)??;
    Ok(HttpResponse::Created().json(ResidentView::masked(&r)))
}

/// Add an identity document to a resident (a child's birth certificate,
/// later an ID card). Recorded in the access log (`resident.document.add`).
#[utoipa::path(
    tag = "residents",
    params(("id" = String, Path, description = "resident id (UUID)")),
    request_body = DocumentQuery,
    responses(
        (status = 201, body = ResidentView),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "document_registered"),
        (status = 422, body = ErrorBody, description = "invalid_document_type, invalid_document_number, invalid_country, document_mismatch"),
    ),
    security(("admin" = []))
)]
#[post("/api/v1/residents/{id}/documents")]
pub(crate) async fn add_document(
    state: web::Data<State>,
    admin: AdminAuth,
    id: web::Path<String>,
    body: web::Json<DocumentQuery>,
) -> Result<HttpResponse, AppError> {
    let id = ResidentId::from(uuid(&id)?);
    let doc = Document::try_from(body.into_inner())?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let r = blocking(move || registry::add_document(&ctx, &actor, id, &doc)).await?;
    Ok(HttpResponse::Created().json(ResidentView::masked(&r)))
}

#[derive(Deserialize, IntoParams)]
pub struct FindQuery {
    /// The full ID number to look up.
    pub national_id: String,
}

/// Find a resident by ID number. Deprecated: the number travels in the URL
/// (proxies and access logs keep it); use `POST /api/v1/residents/search`.
#[utoipa::path(
    tag = "residents",
    params(FindQuery),
    responses((status = 200, body = ResidentView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("admin" = []))
)]
#[get("/api/v1/residents")]
pub(crate) async fn find(
    state: web::Data<State>,
    admin: AdminAuth,
    q: web::Query<FindQuery>,
) -> Result<HttpResponse, AppError> {
    let nid = NationalId::parse(&q.national_id)?;
    lookup(state, admin, Document::ResidentIdCard(nid)).await
}

/// A document: `type` one of API-2.md's document types, `country` for a passport.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentQuery {
    /// One of API-2.md's document types, e.g. `passport`
    #[serde(rename = "type")]
    pub kind: String,
    pub number: String,
    /// ISO 3166-1 alpha-3, for a passport
    pub country: Option<String>,
}

/// Exactly one of `national_id` and `document`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The 18-character 居民身份证号 (short for a `resident_id_card` document)
    pub national_id: Option<String>,
    pub document: Option<DocumentQuery>,
}

impl TryFrom<SearchRequest> for Document {
    type Error = AppError;
    fn try_from(r: SearchRequest) -> Result<Self, AppError> {
        match (r.national_id, r.document) {
            (Some(n), None) => Ok(Document::ResidentIdCard(NationalId::parse(&n)?)),
            (None, Some(d)) => Document::try_from(d),
            _ => Err(AppError::invalid(
                "invalid_body",
                "give either national_id or document",
            )),
        }
    }
}

/// Find a resident by identity document; the number travels in the body,
/// never in a URL. Recorded in the access log (`resident.lookup`).
#[utoipa::path(
    tag = "residents",
    request_body = SearchRequest,
    responses(
        (status = 200, body = ResidentView),
        (status = 404, body = ErrorBody, description = "no resident has this number"),
        (status = 422, body = ErrorBody, description = "invalid_national_id, invalid_document_type, invalid_document_number, invalid_country, invalid_body"),
    ),
    security(("admin" = []))
)]
#[post("/api/v1/residents/search")]
pub(crate) async fn search(
    state: web::Data<State>,
    admin: AdminAuth,
    body: web::Json<SearchRequest>,
) -> Result<HttpResponse, AppError> {
    let doc = Document::try_from(body.into_inner())?;
    lookup(state, admin, doc).await
}

async fn lookup(
    state: web::Data<State>,
    admin: AdminAuth,
    doc: Document,
) -> Result<HttpResponse, AppError> {
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let found =
        blocking(move || registry::find_resident(&ctx, &actor, &doc, LookupVia::Api)).await?;
    let r = found.ok_or_else(|| AppError::NotFound("no resident has this document".into()))?;
    Ok(HttpResponse::Ok().json(ResidentView::masked(&r)))
}

/// A resident with their cards.
#[utoipa::path(
    tag = "residents",
    params(("id" = String, Path, description = "resident id (UUID)")),
    responses((status = 200, body = ResidentView), (status = 404, body = ErrorBody)),
    security(("admin" = []))
)]
#[get("/api/v1/residents/{id}")]
pub(crate) async fn get(
    state: web::Data<State>,
    _admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ResidentId::from(uuid(&id)?);
    let ctx = state.ctx.clone();
    let (r, cs, fam, merged_into, temporary) = web::block(move || -> Result<_, AppError> {
        let (r, cs) = lookup::resident_and_cards(&ctx, id)?;
        let fam = crate::service::families::family(&ctx, id)?;
        let merged_into = merges::merged_into(&ctx, id)?;
        let temporary = crate::service::temporary::of_resident(&ctx, id)?;
        Ok((r, cs, fam, merged_into, temporary))
    })
    .await
    .map_err(|_| AppError::Unavailable)??;
    let mut view = ResidentView::masked(&r);
    view.merged_into = merged_into.map(Into::into);
    // A temporary patient: the approximate year, and each temporary card's terms.
    if let Some((t, _)) = temporary.last() {
        view = view.temporary(t);
    }
    view.cards = Some(
        cs.iter()
            .map(
                |c| match temporary.iter().find(|(t, _)| t.card_id == c.id) {
                    Some((t, code)) => CardView::from(c).temporary(t, code.as_str()),
                    None => CardView::from(c),
                },
            )
            .collect(),
    );
    view.guardians = Some(fam.guardians.iter().map(GuardianView::of).collect());
    view.dependants = Some(fam.dependants.iter().map(GuardianView::of).collect());
    Ok(HttpResponse::Ok().json(view))
}

/// `{into}`: the resident that the source is merged into.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The real record's id (UUID).
    pub into: String,
}

/// What a merge did.
#[derive(serde::Serialize, ToSchema)]
pub struct MergeResponse {
    pub source: uuid::Uuid,
    pub merged_into: uuid::Uuid,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The target's card that replaces the source's cards.
    pub replaced_by: uuid::Uuid,
    /// The source's cards that were live and are `replaced` now.
    pub replaced_cards: Vec<uuid::Uuid>,
    /// How many of the source's clinic numbers now name the target.
    pub moved_links: usize,
}

/// Merge a temporary or duplicate resident into the real one, irreversibly:
/// the source's clinic numbers move to `into`, its live cards become
/// `replaced` by the target's card, and the source answers `merged_into`.
/// One transaction with its access-log rows (`resident.merge`).
#[utoipa::path(
    tag = "residents",
    params(("id" = String, Path, description = "the source resident's id (UUID)")),
    request_body = MergeRequest,
    responses(
        (status = 200, body = MergeResponse),
        (status = 404, body = ErrorBody, description = "either resident unknown"),
        (status = 409, body = ErrorBody, description = "merge_conflict (numbers at the same clinic), already_merged, merge_target_no_card"),
        (status = 422, body = ErrorBody, description = "merge_self, invalid_id"),
    ),
    security(("admin" = []))
)]
#[post("/api/v1/residents/{id}/merge")]
pub(crate) async fn merge(
    state: web::Data<State>,
    admin: AdminAuth,
    id: web::Path<String>,
    body: web::Json<MergeRequest>,
) -> Result<HttpResponse, AppError> {
    let source = ResidentId::from(uuid(&id)?);
    let into = ResidentId::from(uuid(&body.into)?);
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let done = web::block(move || merges::merge_residents(&ctx, &actor, source, into))
        .await
        .map_err(|_| AppError::Unavailable)??;
    Ok(HttpResponse::Ok().json(MergeResponse {
        source: done.source.into(),
        merged_into: done.into.into(),
        at: done.at.and_utc(),
        replaced_by: done.target_card.into(),
        replaced_cards: done.replaced_cards.iter().map(|c| (*c).into()).collect(),
        moved_links: done.moved_links,
    }))
}
