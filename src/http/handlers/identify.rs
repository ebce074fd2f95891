//! `POST /api/v1/identify`: a clinic with the `identify` scope gives the
//! number an ID-card reader typed instead of a QR (多码融合) and gets the
//! answer `/verify` gives, without `token`.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{Document, NationalId, Scope};
use crate::error::{AppError, ErrorBody};
use crate::http::handlers::residents::DocumentQuery;
use crate::http::handlers::verify::{answered, resident_answer, VerifyResponse};
use crate::request::auth::ClinicAuth;
use crate::request::State;
use crate::service::identify::{self as identification, Identified};
use crate::service::verification::Use;

/// Exactly one of `document` and `national_id`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifyRequest {
    pub document: Option<DocumentQuery>,
    /// Short for a `resident_id_card` document.
    pub national_id: Option<String>,
    /// Where the card was used: `window`, `kiosk`, `doctor` or `app`.
    pub channel: Option<String>,
    /// The step of care (as for `/verify`); 422 `invalid_step` otherwise.
    pub step: Option<String>,
}

/// Parses the request at the edge: the document and the use.
fn parse(body: IdentifyRequest) -> Result<(Document, Use), AppError> {
    let document = match (body.national_id, body.document) {
        (Some(n), None) => Document::ResidentIdCard(NationalId::parse(&n)?),
        (None, Some(d)) => Document::try_from(d)?,
        _ => {
            return Err(AppError::invalid(
                "invalid_body",
                "give either national_id or document",
            ))
        }
    };
    let used = Use::parse(body.channel.as_deref(), body.step.as_deref())?;
    Ok((document, used))
}

/// Turns an identification into the `/verify` answer shape, disclosing by
/// the clinic's scopes.
pub fn response(found: &Identified, pii: bool) -> VerifyResponse {
    match found {
        Identified::Valid { resolution } => VerifyResponse::valid(
            resolution.card.id.into(),
            resident_answer(&resolution.resident, pii),
            resolution.local_patient_id.clone(),
        ),
        Identified::Invalid { reason, .. } => {
            VerifyResponse::refused(reason.code(), reason.message())
        }
    }
}

/// Identify a patient by an identity document's number.
#[utoipa::path(tag = "verify", request_body = IdentifyRequest,
    responses(
        (status = 200, body = VerifyResponse, description = "valid, or invalid with a reason: card_not_found, card_suspended, card_revoked, card_replaced"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "the key lacks the identify scope"),
        (status = 422, body = ErrorBody, description = "invalid_body, invalid_national_id, invalid_document_type, invalid_document_number, invalid_country, invalid_channel, invalid_step"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("clinic" = [])))]
#[post("/api/v1/identify")]
pub(crate) async fn identify(
    state: web::Data<State>,
    clinic: ClinicAuth,
    body: web::Json<IdentifyRequest>,
) -> Result<HttpResponse, AppError> {
    clinic.require(Scope::Identify)?;
    let (document, used) = parse(body.into_inner())?;
    let found = identification::identify(&state.ctx, &clinic.0, document, used).await?;
    let pii = clinic.0.scopes.contains(Scope::Pii);
    let resident = match &found {
        Identified::Valid { resolution } => Some(resolution.resident.id),
        Identified::Invalid { .. } => None,
    };
    answered(&state, resident, response(&found, pii)).await
}
