//! Families: the card office adds and removes guardians; the resident view
//! lists both sides (see `residents::get`).

use actix_web::{delete, get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Relation, ResidentId};
use crate::error::{AppError, ErrorBody};
use crate::http::views::GuardianView;
use crate::request::auth::{AdminAuth, HolderAuth};
use crate::request::extract::uuid;
use crate::request::State;
use crate::service::families;
use crate::service::registry::Actor;

#[derive(Deserialize, ToSchema)]
pub struct AddGuardian {
    /// The resident who becomes the guardian.
    pub guardian_id: String,
    /// What the guardian is to the dependant: `father`, `mother`,
    /// `grandparent`, `spouse`, `child`, `sibling`, `other_relative` or
    /// `legal_guardian` (GB/T 4761 codes in docs/families.md).
    pub relation: String,
    /// The card office attests an adult dependant's consent (required for
    /// a dependant of 18 or more, 422 `consent_required` without).
    pub consent: Option<bool>,
}

/// Add a guardian to a resident (the dependant).
#[utoipa::path(tag = "families",
    params(("id" = String, Path, description = "the dependant's resident id")),
    request_body = AddGuardian,
    responses(
        (status = 201, body = GuardianView),
        (status = 404, body = ErrorBody, description = "no such resident or guardian"),
        (status = 409, body = ErrorBody, description = "`too_many_guardians` (4 in force) or `guardian_exists`"),
        (status = 422, body = ErrorBody, description = "`invalid_guardian` (oneself, a cycle, a minor as guardian), `consent_required`, `invalid_relation`"),
    ),
    security(("admin" = [])))]
#[post("/api/v1/residents/{id}/guardians")]
pub(crate) async fn add(
    state: web::Data<State>,
    admin: AdminAuth,
    id: web::Path<String>,
    body: web::Json<AddGuardian>,
) -> Result<HttpResponse, AppError> {
    let dependant = ResidentId::from(uuid(&id)?);
    let body = body.into_inner();
    let guardian =
        ResidentId::from(uuid(&body.guardian_id).map_err(|_| {
            AppError::invalid("invalid_guardian", "guardian_id is not a resident id")
        })?);
    let relation: Relation = body.relation.parse()?;
    let consent = body.consent.unwrap_or(false);
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    let view = web::block(move || -> Result<GuardianView, AppError> {
        let g = families::add_guardian(&ctx, &actor, dependant, guardian, relation, consent)?;
        let fam = families::family(&ctx, dependant)?;
        let m = fam
            .guardians
            .iter()
            .find(|m| m.guardianship.id == g.id)
            .ok_or_else(|| AppError::Internal("guardianship not read back".into()))?;
        Ok(GuardianView::of(m))
    })
    .await
    .map_err(|_| AppError::Unavailable)??;
    Ok(HttpResponse::Created().json(view))
}

/// End a guardianship (the card office's removal): from then on the
/// guardian's holder credential no longer reaches the dependant's card.
#[utoipa::path(tag = "families",
    params(("id" = String, Path, description = "the dependant's resident id"),
        ("guardian_id" = String, Path, description = "the guardian's resident id")),
    responses((status = 204), (status = 404, body = ErrorBody, description = "no such guardianship in force")),
    security(("admin" = [])))]
#[delete("/api/v1/residents/{id}/guardians/{guardian_id}")]
pub(crate) async fn remove(
    state: web::Data<State>,
    admin: AdminAuth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, gid) = path.into_inner();
    let dependant = ResidentId::from(uuid(&id)?);
    let guardian = ResidentId::from(uuid(&gid)?);
    let actor = Actor::admin(admin.0.username.as_str());
    let ctx = state.ctx.clone();
    web::block(move || families::remove_guardian(&ctx, &actor, dependant, guardian))
        .await
        .map_err(|_| AppError::Unavailable)??;
    Ok(HttpResponse::NoContent().finish())
}

/// A card on the holder's phone.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HolderCardView {
    pub card_id: Uuid,
    pub name: String,
    /// `self`, or what the holder is to the dependant (`mother` …).
    pub relation: String,
    pub status: String,
}

/// The cards this holder credential reaches: the holder's own, then each
/// dependant's active card.
#[utoipa::path(tag = "holder",
    responses((status = 200, body = Vec<HolderCardView>), (status = 401, body = ErrorBody)),
    security(("holder" = [])))]
#[get("/api/v1/holder/cards")]
pub(crate) async fn holder_cards(
    state: web::Data<State>,
    holder: HolderAuth,
) -> Result<HttpResponse, AppError> {
    let ctx = state.ctx.clone();
    let own = holder.0;
    let list = web::block(move || families::reachable(&ctx, &own))
        .await
        .map_err(|_| AppError::Unavailable)??;
    let views: Vec<HolderCardView> = list
        .iter()
        .map(|r| HolderCardView {
            card_id: r.card.id.into(),
            name: r.name.clone(),
            relation: r.whose.as_str().to_string(),
            status: r.card.status.as_str().to_string(),
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(views))
}
