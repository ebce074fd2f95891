//! `POST /api/v1/temporary-cards`: a clinic with the `register` scope issues
//! a temporary card (临时卡) to a patient without any document.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{BirthYear, LocalPatientId, PatientName, Scope, Sex, TemporaryNote};
use crate::error::{AppError, ErrorBody};
use crate::http::views::{CardView, ResidentView};
use crate::request::auth::ClinicAuth;
use crate::request::State;
use crate::service::temporary::{self, NewTemporaryCard};

/// What the clinic knows of the patient.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueTemporaryCard {
    /// The name if anyone knows it (1-64 characters); absent, null or blank:
    /// unknown, shown as 无名氏.
    pub name: Option<String>,
    /// `male` or `female` (required; 422 `invalid_sex`).
    pub sex: Option<String>,
    /// Approximate year of birth, 1900 to this year (422 `invalid_birth_year`).
    #[schema(value_type = Option<i32>)]
    pub birth_year: Option<serde_json::Value>,
    /// Up to 200 characters (where the patient was found, …); stored sealed,
    /// never shown in an answer, page or log (422 `invalid_note`).
    pub note: Option<String>,
    /// The clinic's own number for the patient; default `T-` and the card
    /// id's first 8 characters.
    pub local_patient_id: Option<String>,
}

/// A temporary card just issued, with its static token for the wristband.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct IssuedTemporaryCard {
    pub resident: ResidentView,
    pub card: CardView,
    /// The static `EHC1:` token to print on the wristband.
    pub token: String,
    /// The issuing clinic's number for the patient (its link).
    pub local_patient_id: String,
}

impl TryFrom<IssueTemporaryCard> for NewTemporaryCard {
    type Error = AppError;
    fn try_from(b: IssueTemporaryCard) -> Result<Self, AppError> {
        let name = PatientName::parse(b.name.as_deref())?;
        let sex = match b.sex.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(AppError::invalid(
                    "invalid_sex",
                    "sex is required: male or female",
                ))
            }
            Some(s) => s.parse::<Sex>()?,
        };
        let today = chrono::Utc::now().date_naive();
        let birth_year = match b.birth_year {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => match n.as_i64() {
                Some(y) => Some(BirthYear::parse(y, today)?),
                None => {
                    return Err(AppError::invalid(
                        "invalid_birth_year",
                        "birth_year must be a whole year",
                    ))
                }
            },
            Some(_) => {
                return Err(AppError::invalid(
                    "invalid_birth_year",
                    "birth_year must be a number, e.g. 1980",
                ))
            }
        };
        let note = TemporaryNote::parse(b.note.as_deref())?;
        let local_patient_id = match b.local_patient_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(l) => Some(LocalPatientId::parse(l)?),
        };
        Ok(NewTemporaryCard {
            name,
            sex,
            birth_year,
            note,
            local_patient_id,
        })
    }
}

/// Issue a temporary card (valid only at this clinic, for
/// `HEALTHCARD_TEMPORARY_CARD_DAYS`, default 30).
#[utoipa::path(tag = "temporary-cards", request_body = IssueTemporaryCard,
    responses(
        (status = 201, body = IssuedTemporaryCard),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "the key lacks the register scope"),
        (status = 409, body = ErrorBody, description = "link_conflict: local_patient_id names another patient"),
        (status = 422, body = ErrorBody, description = "invalid_name, invalid_sex, invalid_birth_year, invalid_note, invalid_local_patient_id"),
        (status = 503, body = ErrorBody)),
    security(("clinic" = [])))]
#[post("/api/v1/temporary-cards")]
pub(crate) async fn issue(
    state: web::Data<State>,
    clinic: ClinicAuth,
    body: web::Json<IssueTemporaryCard>,
) -> Result<HttpResponse, AppError> {
    // 403 before any 422: a key without the scope learns nothing of the rules.
    clinic.require(Scope::Register)?;
    let new = NewTemporaryCard::try_from(body.into_inner())?;
    let ctx = state.ctx.clone();
    let c = clinic.0.clone();
    let issued = web::block(move || temporary::issue(&ctx, &c, &new))
        .await
        .map_err(|_| AppError::Unavailable)??;
    let answer = IssuedTemporaryCard {
        resident: ResidentView::masked(&issued.resident).temporary(&issued.temporary),
        card: CardView::from(&issued.card)
            .temporary(&issued.temporary, issued.clinic_code.as_str()),
        token: issued.token.text,
        local_patient_id: issued.local_patient_id.as_str().to_owned(),
    };
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}
