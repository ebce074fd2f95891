//! JSON shapes of the API, separate from the store's models: what leaves the
//! service is decided here, field by field (least disclosure).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Channel, Step};
use crate::service::keys::KeyInfo;
use crate::service::monitoring::{CardUseReport, CardUseRow};
use crate::store::cards::Card;
use crate::store::clinics::Clinic;
use crate::store::residents::Resident;
use crate::store::temporary_cards::TemporaryCard;

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
    /// Absent for a temporary card's patient, whose birth date is not
    /// known (`birth_year` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    /// A temporary card's patient (临时卡): `true`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary: Option<bool>,
    /// `true` when the temporary patient's name is unknown (`name` is then
    /// 无名氏); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_unknown: Option<bool>,
    /// A temporary patient's approximate birth year, if anyone could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<i32>,
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
    /// The resident's guardians in force: for administrators all of
    /// [`GuardianView`]; in a verification only name, relation and the
    /// masked phone, and only for a dependant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardians: Option<Vec<GuardianView>>,
    /// The residents in this resident's care (administrators only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependants: Option<Vec<GuardianView>>,
    /// The record this one was merged into (`POST /api/v1/residents/{id}/merge`);
    /// absent for a record that was not merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<Uuid>,
}

/// One guardianship, seen from one side: the resident on the other side.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GuardianView {
    /// The guardian (in `guardians`) or the dependant (in `dependants`);
    /// administrators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_id: Option<Uuid>,
    pub name: String,
    /// What the guardian is to the dependant: `father`, `mother`, …
    pub relation: String,
    /// Its GB/T 4761-2008 家庭关系代码.
    pub relation_code: String,
    /// The guardian's mobile as `138****1234` (verification answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_masked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// An adult dependant's consent, attested by the card office.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<bool>,
    /// A minor's guardianship ends by itself on this day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_on: Option<NaiveDate>,
}

impl GuardianView {
    /// The card office's view of a member of a resident's family.
    pub fn of(m: &crate::service::families::Member) -> GuardianView {
        let g = &m.guardianship;
        // The guardian's sex picks the code of `child` (子 or 女).
        let guardian_sex = if m.resident.id == g.guardian {
            m.resident.sex
        } else {
            m.other_sex
        };
        GuardianView {
            resident_id: Some(m.resident.id.into()),
            name: m.resident.name.clone(),
            relation: g.relation.as_str().to_string(),
            relation_code: g.relation.gbt4761_code(guardian_sex).to_string(),
            phone_masked: None,
            since: Some(utc(g.created_at)),
            consent: Some(g.consent.is_some()),
            ends_on: g
                .consent
                .is_none()
                .then(|| crate::domain::birthday(g.dependant_birth, crate::domain::FULL_AGE_YEARS)),
        }
    }

    /// What a verification names: name, relation, masked phone.
    pub fn contact(c: &crate::service::families::GuardianContact) -> GuardianView {
        GuardianView {
            resident_id: None,
            name: c.name.clone(),
            relation: c.relation.as_str().to_string(),
            relation_code: c.relation.gbt4761_code(c.sex).to_string(),
            phone_masked: c.phone_masked.clone(),
            since: None,
            consent: None,
            ends_on: None,
        }
    }
}

impl ResidentView {
    /// The default, least-disclosing view.
    pub fn masked(r: &Resident) -> ResidentView {
        ResidentView {
            id: r.id.into(),
            name: r.name.clone(),
            sex: r.sex.as_str().to_string(),
            birth_date: Some(r.birth_date),
            temporary: None,
            name_unknown: None,
            birth_year: None,
            national_id_masked: r.national_id().map(|n| n.masked()),
            national_id: None,
            document_type: r.primary_document().map(|d| d.kind().as_str().to_owned()),
            document_masked: r.primary_document().map(|d| d.masked()),
            documents: Some(r.documents.iter().map(DocumentView::of).collect()),
            phone: None,
            cards: None,
            guardians: None,
            dependants: None,
            merged_into: None,
        }
    }

    /// A temporary card's patient: the approximate year instead of the
    /// stored stand-in birth date, and whether the name is known.
    pub fn temporary(mut self, t: &TemporaryCard) -> ResidentView {
        self.temporary = Some(true);
        self.birth_date = None;
        self.birth_year = t.birth_year.map(|y| y.get());
        self.name_unknown = (!t.name_known).then_some(true);
        self
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
    /// A temporary card (临时卡): `true`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary: Option<bool>,
    /// The code of the only clinic where a temporary card verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing_clinic: Option<String>,
    /// After this a temporary card answers `card_expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
}

impl CardView {
    /// With a temporary card's terms.
    pub fn temporary(mut self, t: &TemporaryCard, issuing_clinic: &str) -> CardView {
        self.temporary = Some(true);
        self.issuing_clinic = Some(issuing_clinic.to_owned());
        self.valid_until = Some(utc(t.terms.valid_until));
        self
    }
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
            temporary: None,
            issuing_clinic: None,
            valid_until: None,
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
    /// On every resolution entry (`verify`, `identify`): what the clinic
    /// showed, `token` or `document`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Uses in one group (`service::monitoring::CardUseRow`). Only the grouped dimensions are present; a channel
/// or step that was not given is `null`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CardUseRow)]
pub struct CardUseRowView {
    /// Monitoring day (China Standard Time), `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinic_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinic_name: Option<String>,
    /// `window`, `kiosk`, `doctor`, `app`, or null when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub channel: Option<Option<Channel>>,
    /// The channel's national code (`0100` …), or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub channel_code: Option<Option<&'static str>>,
    /// `registration` … `other`, or null when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub step: Option<Option<Step>>,
    /// The step's national code (`010101` …), or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub step_code: Option<Option<&'static str>>,
    /// `valid` or the refusal's reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    pub uses: i64,
}

/// The answer of `GET /api/v1/stats/card-use` (`service::monitoring::CardUseReport`;
/// named as before in `/openapi.json`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CardUseReport)]
pub struct CardUseReportView {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The grouping, in fixed order (`day, clinic, channel, step, outcome`).
    pub by: Vec<&'static str>,
    /// Uses in the whole period.
    pub total: i64,
    pub rows: Vec<CardUseRowView>,
}

impl From<&CardUseRow> for CardUseRowView {
    fn from(r: &CardUseRow) -> Self {
        CardUseRowView {
            day: r.day,
            clinic_code: r.clinic_code.clone(),
            clinic_name: r.clinic_name.clone(),
            channel: r.channel,
            channel_code: r.channel_code,
            step: r.step,
            step_code: r.step_code,
            outcome: r.outcome.clone(),
            uses: r.uses,
        }
    }
}

impl From<&CardUseReport> for CardUseReportView {
    fn from(r: &CardUseReport) -> Self {
        CardUseReportView {
            from: r.from,
            to: r.to,
            by: r.by.clone(),
            total: r.total,
            rows: r.rows.iter().map(CardUseRowView::from).collect(),
        }
    }
}

/// A signing key as the API lists it (`service::keys::KeyInfo`; named
/// `KeyInfo` in `/openapi.json` as before).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KeyInfo)]
pub struct KeyInfoView {
    pub kid: String,
    /// `ed25519`, `es256` or `sm2`.
    pub alg: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

impl From<&KeyInfo> for KeyInfoView {
    fn from(k: &KeyInfo) -> Self {
        KeyInfoView {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            state: k.state.clone(),
            created_at: k.created_at,
        }
    }
}
