//! `POST /api/v1/verify`: a clinic posts a scanned token and learns who the
//! patient is, or why the card is refused.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Channel, Scope, Step};
use crate::error::{AppError, ErrorBody};
use crate::http::auth::{blocking, ClinicAuth};
use crate::http::views::{GuardianView, ResidentView};
use crate::http::State;
use crate::service::families;
use crate::service::verification::{self, Outcome, Use};

#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The scanned text, `EHC1:…`
    pub token: String,
    /// Where the card was used: `window`, `kiosk`, `doctor` or `app`.
    pub channel: Option<String>,
    /// The step of care: `registration`, `diagnosis`, `dispensing`,
    /// `examination`, `payment`, `prescription`, `surgery` or `other`
    /// (their national codes in docs/monitoring.md); 422 `invalid_step`
    /// for any other value.
    pub step: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub kind: String,
    pub issued_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The answer: `valid: true` with the resident, or `valid: false` with a reason.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident: Option<ResidentView>,
    /// This clinic's patient number for the resident, or null if not linked yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_patient_id: Option<Option<String>>,
    /// One of malformed, bad_signature, unknown_key, key_revoked, expired,
    /// not_yet_valid, replayed, card_revoked, card_suspended, card_replaced,
    /// card_restricted, card_expired (temporary cards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A temporary card's end of validity (its `resident.temporary` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

fn ts(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// Turns an outcome into the API answer, disclosing by the clinic's scopes.
pub fn response(outcome: &Outcome, pii: bool) -> VerifyResponse {
    match outcome {
        Outcome::Valid { claims, resolution } => {
            let mut resident = if pii {
                let mut v = ResidentView::full(&resolution.resident);
                v.phone = None;
                v.verified()
            } else {
                ResidentView::masked(&resolution.resident).verified()
            };
            if let Some(t) = &resolution.temporary {
                resident = resident.temporary(t);
            }
            VerifyResponse {
                valid: true,
                card_id: Some(claims.card_id),
                token: Some(TokenInfo {
                    kind: claims.kind.as_str().to_string(),
                    issued_at: ts(claims.issued_at),
                    expires_at: ts(claims.expires_at),
                }),
                resident: Some(resident),
                local_patient_id: Some(resolution.local_patient_id.clone()),
                reason: None,
                message: None,
                valid_until: resolution
                    .temporary
                    .as_ref()
                    .map(|t| crate::http::views::utc(t.terms.valid_until)),
            }
        }
        Outcome::Invalid { reason, .. } => VerifyResponse {
            valid: false,
            card_id: None,
            token: None,
            resident: None,
            local_patient_id: None,
            reason: Some(reason.code().to_string()),
            message: Some(reason.message().to_string()),
            valid_until: None,
        },
    }
}

/// Verify a scanned token and resolve the resident.
#[utoipa::path(tag = "verify", request_body = VerifyRequest,
    responses(
        (status = 200, body = VerifyResponse, description = "valid, or invalid with a reason"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "the key lacks the verify scope"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("clinic" = [])))]
#[post("/api/v1/verify")]
pub async fn verify(
    state: web::Data<State>,
    clinic: ClinicAuth,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, AppError> {
    clinic.require(Scope::Verify)?;
    let body = body.into_inner();
    let channel = match body.channel.as_deref() {
        None | Some("") => None,
        Some(c) => Some(c.parse::<Channel>()?),
    };
    let step = match body.step.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<Step>()?),
    };
    let used = Use { channel, step };
    let outcome = verification::verify_scanned(&state.ctx, &clinic.0, &body.token, used).await?;
    let pii = clinic.0.scopes.contains(Scope::Pii);
    let mut answer = response(&outcome, pii);
    if let (Outcome::Valid { resolution, .. }, Some(view)) = (&outcome, answer.resident.as_mut()) {
        // A dependant's answer names the guardians, so a ward can call them.
        let ctx = state.ctx.clone();
        let rid = resolution.resident.id;
        let contacts = blocking(move || families::contacts(&ctx, rid)).await?;
        if !contacts.is_empty() {
            view.guardians = Some(contacts.iter().map(GuardianView::contact).collect());
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}
