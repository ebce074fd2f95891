//! `POST /api/v1/verify`: a clinic posts a scanned token and learns who the
//! patient is, or why the card is refused.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{ResidentId, Scope};
use crate::error::{AppError, ErrorBody};
use crate::http::views::{GuardianView, ResidentView};
use crate::request::auth::{blocking, ClinicAuth};
use crate::request::State;
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
    /// issuer_unknown, issuer_unavailable, trust_list_expired (federation),
    /// card_restricted, card_expired (temporary cards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A card of another city (federation): its issuer's code and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<IssuerView>,
    /// A temporary card's end of validity (its `resident.temporary` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// The issuer of a foreign card.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct IssuerView {
    /// GB/T 2260 code, e.g. `370100`
    pub code: String,
    /// e.g. 济南市
    pub name: String,
}

impl VerifyResponse {
    /// A refusal: the reason's code and message, nothing about anyone.
    pub fn refused(code: &str, message: &str) -> VerifyResponse {
        VerifyResponse {
            valid: false,
            card_id: None,
            token: None,
            resident: None,
            local_patient_id: None,
            reason: Some(code.to_owned()),
            message: Some(message.to_owned()),
            issuer: None,
            valid_until: None,
        }
    }

    /// A valid answer for `card_id` with what may be disclosed of the
    /// resident; the token, issuer and temporary terms are set by the caller
    /// where they apply.
    pub fn valid(
        card_id: Uuid,
        resident: ResidentView,
        local_patient_id: Option<String>,
    ) -> VerifyResponse {
        VerifyResponse {
            valid: true,
            card_id: Some(card_id),
            token: None,
            resident: Some(resident),
            local_patient_id: Some(local_patient_id),
            reason: None,
            message: None,
            issuer: None,
            valid_until: None,
        }
    }
}

fn ts(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fn token_info(claims: &crate::token::Claims) -> TokenInfo {
    TokenInfo {
        kind: claims.kind.as_str().to_string(),
        issued_at: ts(claims.issued_at),
        expires_at: ts(claims.expires_at),
    }
}

/// The resident in a resolution's answer (verification, identification):
/// masked without `pii`, the full number with it; never the phone.
pub fn resident_answer(r: &crate::store::residents::Resident, pii: bool) -> ResidentView {
    if pii {
        let mut v = ResidentView::full(r);
        v.phone = None;
        v.verified()
    } else {
        ResidentView::masked(r).verified()
    }
}

/// Turns an outcome into the API answer, disclosing by the clinic's scopes.
pub fn response(outcome: &Outcome, pii: bool) -> VerifyResponse {
    match outcome {
        Outcome::Valid { claims, resolution } => {
            let mut resident = resident_answer(&resolution.resident, pii);
            if let Some(t) = &resolution.temporary {
                resident = resident.temporary(t);
            }
            VerifyResponse {
                token: Some(token_info(claims)),
                valid_until: resolution
                    .temporary
                    .as_ref()
                    .map(|t| crate::http::views::utc(t.terms.valid_until)),
                ..VerifyResponse::valid(
                    claims.card_id,
                    resident,
                    resolution.local_patient_id.clone(),
                )
            }
        }
        // What the home node disclosed: the full number only if its policy
        // for this city grants `pii` and this clinic holds `pii`.
        Outcome::Foreign { claims, resolution } => {
            let r = &resolution.resident;
            let resident = ResidentView {
                id: r.id,
                name: r.name.clone(),
                sex: r.sex.clone(),
                birth_date: Some(r.birth_date),
                temporary: None,
                name_unknown: None,
                birth_year: None,
                national_id_masked: r.national_id_masked.clone(),
                national_id: r.national_id.clone().filter(|_| pii),
                document_type: r.document_type.clone(),
                document_masked: r.document_masked.clone(),
                documents: None,
                phone: None,
                cards: None,
                guardians: None,
                dependants: None,
                merged_into: None,
            };
            VerifyResponse {
                token: Some(token_info(claims)),
                issuer: Some(IssuerView {
                    code: resolution.issuer.code.clone(),
                    name: resolution.issuer.name.clone(),
                }),
                ..VerifyResponse::valid(
                    claims.card_id,
                    resident,
                    resolution.local_patient_id.clone(),
                )
            }
        }
        Outcome::Invalid { reason, .. } => VerifyResponse::refused(reason.code(), reason.message()),
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
pub(crate) async fn verify(
    state: web::Data<State>,
    clinic: ClinicAuth,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, AppError> {
    clinic.require(Scope::Verify)?;
    let body = body.into_inner();
    let used = Use::parse(body.channel.as_deref(), body.step.as_deref())?;
    let outcome = verification::verify_scanned(&state.ctx, &clinic.0, &body.token, used).await?;
    let pii = clinic.0.scopes.contains(Scope::Pii);
    let resident = match &outcome {
        Outcome::Valid { resolution, .. } => Some(resolution.resident.id),
        // A foreign card's resident is not in this node's registry.
        Outcome::Foreign { .. } | Outcome::Invalid { .. } => None,
    };
    answered(&state, resident, response(&outcome, pii)).await
}

/// The answer of `/verify` and `/identify` (not cached): a valid one for a
/// dependant also names the guardians, so a ward can call them.
pub(crate) async fn answered(
    state: &State,
    resident: Option<ResidentId>,
    mut answer: VerifyResponse,
) -> Result<HttpResponse, AppError> {
    if let (Some(rid), Some(view)) = (resident, answer.resident.as_mut()) {
        let ctx = state.ctx.clone();
        let contacts = blocking(move || families::contacts(&ctx, rid)).await?;
        if !contacts.is_empty() {
            view.guardians = Some(contacts.iter().map(GuardianView::contact).collect());
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}
