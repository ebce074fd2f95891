//! Residents: register, find by ID number (blind index), read with cards.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::{MobileNumber, NationalId, PersonName, ResidentId};
use crate::error::{AppError, ErrorBody};
use crate::http::auth::{blocking, AdminAuth};
use crate::http::extract::uuid;
use crate::http::views::{CardView, ResidentView};
use crate::http::State;
use crate::service::registry::{self, Actor};
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

/// Find a resident by ID number.
#[utoipa::path(
    tag = "residents",
    params(FindQuery),
    responses((status = 200, body = ResidentView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("admin" = []))
)]
#[get("/api/v1/residents")]
pub async fn find(
    state: web::Data<State>,
    _admin: AdminAuth,
    q: web::Query<FindQuery>,
) -> Result<HttpResponse, AppError> {
    let nid = NationalId::parse(&q.national_id)?;
    let ctx = state.ctx.clone();
    let found = blocking(move || {
        let mut conn = ctx.conn()?;
        residents::find_by_national_id(&mut conn, &ctx.master, &nid)
    })
    .await?;
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
