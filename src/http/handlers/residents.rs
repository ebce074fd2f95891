//! Residents: register, find by ID number (blind index, every look-up
//! recorded), read with cards.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::{DocumentType, MobileNumber, NationalId, PersonName, ResidentId};
use crate::error::{AppError, ErrorBody};
use crate::http::auth::{blocking, AdminAuth};
use crate::http::extract::uuid;
use crate::http::views::{CardView, ResidentView};
use crate::http::State;
use crate::service::registry::{self, Actor, LookupVia};
use crate::store::residents::NewResident;
use crate::store::{cards, residents};

#[derive(Deserialize, ToSchema)]
pub struct RegisterResident {
    /// 1-64 characters, e.g. 张三
    pub name: String,
    /// 18-character 居民身份证号 with a valid GB 11643 check digit
    pub national_id: String,
    /// Mainland mobile number, optional
    pub phone: Option<String>,
}

impl TryFrom<RegisterResident> for NewResident {
    type Error = AppError;
    fn try_from(r: RegisterResident) -> Result<Self, AppError> {
        Ok(NewResident {
            name: PersonName::parse(&r.name)?,
            national_id: NationalId::parse(&r.national_id)?,
            phone: match r.phone.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(p) => Some(MobileNumber::parse(p)?),
            },
        })
    }
}

/// Register a resident.
#[utoipa::path(
    tag = "residents",
    request_body = RegisterResident,
    responses(
        (status = 201, body = ResidentView),
        (status = 409, body = ErrorBody, description = "the ID number is already registered"),
        (status = 422, body = ErrorBody),
    ),
    security(("admin" = []))
)]
#[post("/api/v1/residents")]
pub async fn register(
    state: web::Data<State>,
    admin: AdminAuth,
    body: web::Json<RegisterResident>,
) -> Result<HttpResponse, AppError> {
    let new = NewResident::try_from(body.into_inner())?;
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let r = blocking(move || registry::register_resident(&ctx, &actor, &new)).await?;
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
pub async fn find(
    state: web::Data<State>,
    admin: AdminAuth,
    q: web::Query<FindQuery>,
) -> Result<HttpResponse, AppError> {
    let nid = NationalId::parse(&q.national_id)?;
    lookup(state, admin, nid).await
}

/// A document in a search: `type` one of API-2.md's document types.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentQuery {
    /// `resident_id_card` or `household_register` (the others: 422 `unsupported_document_type` for now)
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

impl TryFrom<SearchRequest> for NationalId {
    type Error = AppError;
    fn try_from(r: SearchRequest) -> Result<Self, AppError> {
        match (r.national_id, r.document) {
            (Some(n), None) => Ok(NationalId::parse(&n)?),
            (None, Some(d)) => {
                let kind = DocumentType::parse(&d.kind)?;
                if !kind.is_citizen_number() {
                    return Err(AppError::invalid(
                        "unsupported_document_type",
                        "only resident_id_card and household_register can be searched yet",
                    ));
                }
                Ok(NationalId::parse(&d.number)?)
            }
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
        (status = 422, body = ErrorBody, description = "invalid_national_id, invalid_document_type, unsupported_document_type, invalid_body"),
    ),
    security(("admin" = []))
)]
#[post("/api/v1/residents/search")]
pub async fn search(
    state: web::Data<State>,
    admin: AdminAuth,
    body: web::Json<SearchRequest>,
) -> Result<HttpResponse, AppError> {
    let nid = NationalId::try_from(body.into_inner())?;
    lookup(state, admin, nid).await
}

async fn lookup(
    state: web::Data<State>,
    admin: AdminAuth,
    nid: NationalId,
) -> Result<HttpResponse, AppError> {
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let found =
        blocking(move || registry::find_resident(&ctx, &actor, &nid, LookupVia::Api)).await?;
    let r = found.ok_or_else(|| AppError::NotFound("no resident has this ID number".into()))?;
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
pub async fn get(
    state: web::Data<State>,
    _admin: AdminAuth,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = ResidentId::from(uuid(&id)?);
    let ctx = state.ctx.clone();
    let (r, cs) = blocking(move || {
        let mut conn = ctx.conn()?;
        let r = residents::get(&mut conn, &ctx.master, id)?;
        let cs = cards::for_resident(&mut conn, id)?;
        Ok((r, cs))
    })
    .await?;
    let mut view = ResidentView::masked(&r);
    view.cards = Some(cs.iter().map(CardView::from).collect());
    Ok(HttpResponse::Ok().json(view))
}
