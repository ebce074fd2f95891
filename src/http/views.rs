//! JSON shapes of the API, separate from the store's models: what leaves the
//! service is decided here, field by field (least disclosure).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::cards::Card;
use crate::store::clinics::Clinic;
use crate::store::residents::Resident;

pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A resident as administrators and clinics see them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResidentView {
    pub id: Uuid,
    pub name: String,
    /// `male` or `female`, read from the ID number.
    pub sex: String,
    pub birth_date: NaiveDate,
    /// e.g. `3701**************` (`domain::NationalId::masked`: 500 numbers
    /// stay possible); absent for a resident without a citizen number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_id_masked: Option<String>,
    /// Only for administrators and clinics with the `pii` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub national_id: Option<String>,
    /// The type of the document the resident is known by (the first
    /// registered), e.g. `passport`; absent for a resident without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
    /// Its masked number (`domain::Document::masked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_masked: Option<String>,
    /// Every document, masked: resident views only (not verification answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<Vec<DocumentView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cards: Option<Vec<CardView>>,
}

impl ResidentView {
    /// The default, least-disclosing view.
    pub fn masked(r: &Resident) -> ResidentView {
        ResidentView {
            id: r.id.into(),
            name: r.name.clone(),
            sex: r.sex.as_str().to_string(),
            birth_date: r.birth_date,
            national_id_masked: r.national_id().map(|n| n.masked()),
            national_id: None,
            document_type: r.primary_document().map(|d| d.kind().as_str().to_owned()),
            document_masked: r.primary_document().map(|d| d.masked()),
            documents: Some(r.documents.iter().map(DocumentView::of).collect()),
            phone: None,
            cards: None,
        }
    }

    /// The resident in a verification answer: no list of documents.
    pub fn verified(mut self) -> ResidentView {
        self.documents = None;
        self
    }

    /// With the full ID number (and phone, for administrators).
    pub fn full(r: &Resident) -> ResidentView {
        ResidentView {
            national_id: r.national_id().map(|n| n.as_str().to_string()),
            phone: r.phone.clone(),
            ..Self::masked(r)
        }
    }
}

/// A document in a resident view: its type and masked number only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    /// One of API-2.md's document types, e.g. `resident_id_card`
    #[serde(rename = "type")]
    pub kind: String,
    /// `domain::Document::masked`, e.g. `H**********`
    pub number_masked: String,
}

impl DocumentView {
    pub fn of(d: &crate::domain::Document) -> DocumentView {
        DocumentView {
            kind: d.kind().as_str().to_owned(),
            number_masked: d.masked(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CardView {
    pub id: Uuid,
    pub resident_id: Uuid,
    /// `active`, `suspended`, `revoked` or `replaced`
    pub status: String,
    pub issued_at: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<Uuid>,
}

impl From<&Card> for CardView {
    fn from(c: &Card) -> Self {
        CardView {
            id: c.id.into(),
            resident_id: c.resident_id.into(),
            status: c.status.as_str().to_string(),
            issued_at: utc(c.issued_at),
            status_changed_at: utc(c.status_changed_at),
            status_reason: c.status_reason.clone(),
            replaced_by: c.replaced_by.map(Into::into),
        }
    }
}

/// A newly issued card and its holder credential, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedCard {
    pub card: CardView,
    pub holder_credential: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub token: String,
    /// `static` or `dynamic`
    pub kind: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// QR version of this token at error correction level M.
    pub qr_version: i16,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClinicView {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Clinic> for ClinicView {
    fn from(c: &Clinic) -> Self {
        ClinicView {
            id: c.id.into(),
            code: c.code.as_str().to_string(),
            name: c.name.clone(),
            scopes: c.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            created_at: utc(c.created_at),
        }
    }
}

/// A new clinic with its API key, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedClinic {
    pub clinic: ClinicView,
    pub api_key: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub clinic_code: String,
    pub local_patient_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccessLogView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The step of care of a card use (`registration` …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
