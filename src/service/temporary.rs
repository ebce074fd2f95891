//! Temporary cards (临时卡, issue 14): a clinic with the `register` scope
//! issues a card at the point of care to a patient without any document (an
//! emergency, an unconscious patient). The resident, the card, the row that
//! makes it temporary, the clinic's link and the static token for the
//! wristband are made in one transaction with their access-log rows, so a
//! refusal leaves nothing behind. Verification applies the card's terms in
//! [`super::verification::judge`] (every door alike).

use crate::domain::{
    stand_in_birth_date, BirthYear, ClinicCode, LocalPatientId, PatientName, Scope, Sex,
    TemporaryNote,
};
use crate::store::access_log::{self, ActorKind};
use crate::store::cards::{self, Card};
use crate::store::clinics::Clinic;
use crate::store::residents::{self, NewResident, Resident};
use crate::store::temporary_cards::{self, NewTemporary, OpenTemporary, TemporaryCard};
use crate::store::{links, Conflict, StoreError};
use crate::token::{MintedToken, TokenKind};

use super::registry::{mint_for, MintError};
use super::{AppContext, LogEntry};

/// What a clinic asks for: everything already parsed.
#[derive(Debug, Clone)]
pub struct NewTemporaryCard {
    pub name: PatientName,
    pub sex: Sex,
    pub birth_year: Option<BirthYear>,
    pub note: Option<TemporaryNote>,
    /// The clinic's own number for the patient; without one the link gets
    /// `T-` and the card id's first 8 characters (what the wristband shows).
    pub local_patient_id: Option<LocalPatientId>,
}

/// A temporary card just issued.
#[derive(Debug)]
pub struct Issued {
    pub resident: Resident,
    pub card: Card,
    pub temporary: TemporaryCard,
    pub clinic_code: ClinicCode,
    pub local_patient_id: LocalPatientId,
    /// The static token for the wristband.
    pub token: MintedToken,
}

/// Why issuing was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemporaryError {
    #[error("this API key lacks the `register` scope")]
    MissingScope,
    #[error("no active signing key")]
    NoKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The number the issuing clinic's link gets when the clinic gave none.
pub fn default_local_patient_id(card: &Card) -> LocalPatientId {
    let short: String = card.id.to_string().chars().take(8).collect();
    LocalPatientId::parse(&format!("T-{}", short.to_ascii_uppercase()))
        .expect("T- and 8 hex digits is a valid patient number")
}

fn row(clinic: &Clinic, action: &str, card: &Card, detail: Option<String>) -> LogEntry {
    let mut e = LogEntry::new(ActorKind::Clinic, clinic.code.as_str(), action);
    e.clinic_id = Some(clinic.id);
    e.card_id = Some(card.id);
    e.resident_id = Some(card.resident_id);
    e.detail = detail;
    e
}

/// Issues a temporary card for `clinic`, valid there only and for
/// `temporary_card_days` from now (by the registry's clock).
pub fn issue(
    ctx: &AppContext,
    clinic: &Clinic,
    new: &NewTemporaryCard,
) -> Result<Issued, TemporaryError> {
    if !clinic.scopes.contains(Scope::Register) {
        return Err(TemporaryError::MissingScope);
    }
    let now = ctx.clock.now();
    let valid_until = now + chrono::Duration::days(ctx.settings.temporary_card_days as i64);
    let resident = NewResident {
        name: new.name.to_person_name(),
        document: None,
        sex: new.sex,
        birth_date: stand_in_birth_date(new.birth_year, now.date()),
        phone: None,
    };
    let mut no_key = false;
    let done = ctx.with_tx(|c| {
        // No document, so the conflict kind is never met.
        let r = residents::create(c, &ctx.master, &resident, Conflict::DocumentRegistered)?;
        // The holder credential is dropped: a patient without a document
        // has no phone of ours, and the wristband carries the token.
        let (card, _holder) = cards::issue(c, r.id)?;
        let temporary = temporary_cards::create(
            c,
            &ctx.master,
            &NewTemporary {
                card: card.id,
                resident: r.id,
                clinic: clinic.id,
                valid_until,
                name_known: new.name.is_known(),
                birth_year: new.birth_year,
                note: new.note.as_ref(),
            },
        )?;
        let local = new
            .local_patient_id
            .clone()
            .unwrap_or_else(|| default_local_patient_id(&card));
        links::create(c, clinic.id, &local, r.id)?;
        let token = match mint_for(ctx, &card, TokenKind::Static) {
            Ok(t) => t,
            Err(MintError::Store(e)) => return Err(e),
            Err(MintError::NoKey | MintError::NotActive(_)) => {
                no_key = true;
                return Err(StoreError::Other("no token minted".into()));
            }
        };
        let until = valid_until.format("%Y-%m-%dT%H:%M:%SZ");
        access_log::append(
            c,
            &ctx.master.chain_key(),
            &[
                row(clinic, "resident.register", &card, Some("temporary".into())),
                row(
                    clinic,
                    "card.issue",
                    &card,
                    Some(format!("temporary, valid until {until}")),
                ),
                row(clinic, "link.create", &card, None),
                row(
                    clinic,
                    "token.mint",
                    &card,
                    Some("static via temporary-cards".into()),
                ),
            ],
        )?;
        Ok(Issued {
            resident: r,
            card,
            temporary,
            clinic_code: clinic.code.clone(),
            local_patient_id: local,
            token,
        })
    });
    match done {
        Ok(issued) => Ok(issued),
        Err(_) if no_key => Err(TemporaryError::NoKey),
        Err(e) => Err(e.into()),
    }
}

/// The temporary cards still open (active, not past `valid_until` by the
/// registry's clock), soonest to expire first: the card office's list.
pub fn open(ctx: &AppContext, limit: i64) -> Result<Vec<OpenTemporary>, StoreError> {
    temporary_cards::open_at(&mut *ctx.conn()?, &ctx.master, ctx.clock.now(), limit)
}

/// A card's temporary facts, if it is a temporary card.
pub fn of_card(
    ctx: &AppContext,
    card: crate::domain::CardId,
) -> Result<Option<TemporaryCard>, StoreError> {
    temporary_cards::for_card(&mut *ctx.conn()?, &ctx.master, card)
}

/// What a temporary card's wristband (and its page in the portal) shows.
#[derive(Debug, Clone)]
pub struct CardFacts {
    pub card: Card,
    pub resident: Resident,
    pub temporary: TemporaryCard,
    pub clinic_code: ClinicCode,
    pub clinic_name: String,
}

/// A card's facts if it is a temporary card (`None` for an ordinary one;
/// `NotFound` for no card).
pub fn facts(
    ctx: &AppContext,
    card: crate::domain::CardId,
) -> Result<Option<CardFacts>, StoreError> {
    let mut conn = ctx.conn()?;
    let c = cards::get(&mut conn, card)?;
    let Some(temporary) = temporary_cards::for_card(&mut conn, &ctx.master, card)? else {
        return Ok(None);
    };
    let resident = residents::get(&mut conn, &ctx.master, c.resident_id)?;
    let clinic = crate::store::clinics::get(&mut conn, temporary.terms.issuing_clinic)?;
    Ok(Some(CardFacts {
        card: c,
        resident,
        temporary,
        clinic_code: clinic.code,
        clinic_name: clinic.name,
    }))
}

/// The resident's temporary cards (empty for a resident registered with a
/// document), with each issuing clinic's code, oldest first.
pub fn of_resident(
    ctx: &AppContext,
    resident: crate::domain::ResidentId,
) -> Result<Vec<(TemporaryCard, ClinicCode)>, StoreError> {
    let mut conn = ctx.conn()?;
    temporary_cards::for_resident(&mut conn, &ctx.master, resident)?
        .into_iter()
        .map(|t| {
            let clinic = crate::store::clinics::get(&mut conn, t.terms.issuing_clinic)?;
            Ok((t, clinic.code))
        })
        .collect()
}
