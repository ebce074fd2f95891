//! Cross-reference (the IHE PIX idea): a clinic's own patient number <-> card.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::{CardId, LocalPatientId, Scope};
use crate::error::{AppError, ErrorBody};
use crate::request::auth::{blocking, ClinicAuth};
use crate::service::lookup;
use crate::service::registry;

use crate::request::State;

#[derive(Deserialize, ToSchema)]
pub struct CreateLink {
    pub card_id: Uuid,
    /// The clinic's own patient number (MRN), 1-64 characters.
    pub local_patient_id: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LinkCreated {
    pub clinic_code: String,
    pub local_patient_id: String,
    pub card_id: Uuid,
    pub resident_id: Uuid,
    /// For a foreign card (federation): its issuer's code; `resident_id` is
    /// then its home node's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// Link this clinic's patient number to a card's resident.
#[utoipa::path(tag = "links", request_body = CreateLink,
    responses((status = 201, body = LinkCreated), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such card"),
        (status = 409, body = ErrorBody, description = "`link_conflict`: the number already names another resident; `card_revoked`, `card_replaced`: the card is dead; `no_recent_scan`: this clinic has not verified the card within `link_scan_window_secs` (default 24 h)"),
        (status = 422, body = ErrorBody)),
    security(("clinic" = [])))]
#[post("/api/v1/links")]
pub(crate) async fn create(
    state: web::Data<State>,
    clinic: ClinicAuth,
    body: web::Json<CreateLink>,
) -> Result<HttpResponse, AppError> {
    clinic.require(Scope::Link)?;
    let body = body.into_inner();
    let lpid = LocalPatientId::parse(&body.local_patient_id)?;
    let card_id = CardId::from(body.card_id);
    let c = clinic.0.clone();
    let ctx = state.ctx.clone();
    let created = blocking(move || {
        let linked = registry::link_patient(&ctx, &c, card_id, &lpid)?;
        Ok(LinkCreated {
            clinic_code: c.code.as_str().to_string(),
            local_patient_id: lpid.as_str().to_string(),
            card_id: linked.card_id.into(),
            resident_id: linked.resident_id,
            issuer: linked.issuer,
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Deserialize, IntoParams)]
pub struct LinkQuery {
    pub local_patient_id: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LinkTarget {
    /// The resident's current active or suspended card, if any.
    pub card_id: Option<Uuid>,
    pub resident_id: Uuid,
}

/// Which card is this clinic's patient number?
#[utoipa::path(tag = "links", params(LinkQuery),
    responses((status = 200, body = LinkTarget), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("clinic" = [])))]
#[get("/api/v1/links")]
pub(crate) async fn find(
    state: web::Data<State>,
    clinic: ClinicAuth,
    q: web::Query<LinkQuery>,
) -> Result<HttpResponse, AppError> {
    let lpid = LocalPatientId::parse(&q.local_patient_id)?;
    let c = clinic.0.clone();
    let ctx = state.ctx.clone();
    let target = blocking(move || lookup::linked_to(&ctx, c.id, &lpid))
        .await?
        .map(|(resident, card)| LinkTarget {
            card_id: card.map(Into::into),
            resident_id: resident.into(),
        });
    let t = target.ok_or_else(|| AppError::NotFound("this number is not linked".into()))?;
    Ok(HttpResponse::Ok().json(t))
}
