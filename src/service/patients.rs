//! A resident as a hospital system sees it (the FHIR Patient of issue 16):
//! read, search by identifier or demographics, cross-reference (PIXm
//! ITI-83) and the clinic's feed of its own numbers (ITI-104). What a clinic
//! may see is decided here, not in the adapter:
//!
//! - a clinic reads a resident only when it holds one of its numbers, or
//!   finds one by search only with the `search` scope;
//! - other clinics' numbers only with `xref`, the ID number only with `pii`;
//! - every read, search and cross-reference is an access-log row, written in
//!   the transaction that read, so the holder sees who looked them up.

use std::sync::Arc;

use chrono::NaiveDate;

use crate::crypto::MasterKey;
use crate::domain::{
    family_matches, given_matches, CardId, ClinicCode, DocumentType, IdentifierDomain,
    IdentifierSystems, LocalPatientId, MobileNumber, NationalId, ResidentId, Scope, Sex,
    SystemValue,
};
use crate::store::access_log::{self, ActorKind};
use crate::store::cards::{self, Card};
use crate::store::clinics::{self, Clinic};
use crate::store::residents::{self, Resident};
use crate::store::temporary_cards::{self, TemporaryCard};
use crate::store::{links, merges, DbConnection, StoreError};

use super::{AppContext, LogEntry};

/// Demographic searches answer at most this many residents.
pub const DEMOGRAPHIC_LIMIT: usize = 10;
/// Identifier searches name one resident; a cap all the same.
pub const SEARCH_LIMIT: usize = 50;
/// Candidates read by name prefix before the exact filters.
const CANDIDATES: i64 = 200;

/// Why a patient use case refused.
#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    /// No such patient, or none this clinic may see.
    #[error("no patient matches")]
    NotFound,
    /// The identifier's system is no register of this registry.
    #[error("unknown identifier system {0}")]
    UnknownDomain(String),
    /// A register this clinic may not read or, in a feed, write.
    #[error("the identifier system {0} is not open to this clinic")]
    ForbiddenDomain(String),
    #[error("this API key lacks the `{}` scope", .0.as_str())]
    MissingScope(Scope),
    /// A feed whose Patient names no registered resident or card.
    #[error("the Patient names no registered resident or card")]
    UnknownResident,
    /// A well-formed request with values this use case does not take.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(code: &'static str, message: impl Into<String>) -> PatientError {
    PatientError::Invalid {
        code,
        message: message.into(),
    }
}

/// One of the resident's clinic numbers, as shown to the asking clinic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownNumber {
    pub clinic: ClinicCode,
    pub own: bool,
    pub local_patient_id: LocalPatientId,
    /// The clinic merged this number into another of its numbers.
    pub replaced_by: Option<LocalPatientId>,
}

/// A resident with what the asking clinic may see of them.
#[derive(Debug, Clone)]
pub struct PatientRecord {
    pub resident: Resident,
    pub cards: Vec<Card>,
    pub numbers: Vec<ShownNumber>,
    /// The ID number, only for a clinic with `pii`.
    pub national_id: Option<NationalId>,
    /// The resident this one was merged into by the registry (an
    /// administrator's merge), else the one the clinic's own merge points
    /// this one to.
    pub replaced_by: Option<ResidentId>,
    /// The registry merged this record into another (`replaced_by`).
    pub merged: bool,
    /// A temporary card's patient (临时卡): the latest temporary card, whose
    /// terms say what of the stored name and birth date is only estimated.
    pub temporary: Option<TemporaryCard>,
}

impl PatientRecord {
    /// In use: the resident has an active or suspended card and was not
    /// merged into another record.
    pub fn active(&self) -> bool {
        !self.merged && self.cards.iter().any(|c| c.status.holds_slot())
    }
}

/// The identifier systems of this node.
pub fn systems(ctx: &AppContext) -> IdentifierSystems {
    IdentifierSystems::new(&ctx.settings.fhir_prefix())
}

fn log_row(clinic: &Clinic, action: &str, resident: Option<ResidentId>) -> LogEntry {
    let mut e = LogEntry::new(ActorKind::Clinic, clinic.code.as_str(), action);
    e.clinic_id = Some(clinic.id);
    e.resident_id = resident;
    e
}

/// Reads what `clinic` may see of `resident`.
fn record(
    conn: &mut DbConnection,
    key: &MasterKey,
    clinic: &Clinic,
    resident: Resident,
) -> Result<PatientRecord, StoreError> {
    let cards = cards::for_resident(conn, resident.id)?;
    let temporary = temporary_cards::for_resident(conn, key, resident.id)?.pop();
    let registry_merge = merges::merged_into(conn, resident.id)?;
    let xref = clinic.scopes.contains(Scope::Xref);
    let mut numbers = Vec::new();
    let mut merged_into = None;
    for n in links::numbers_of(conn, resident.id)? {
        let own = n.clinic_id == clinic.id;
        if own {
            if let Some(by) = &n.replaced_by {
                if let Some(l) = links::find(conn, clinic.id, by)? {
                    if l.resident_id != resident.id {
                        merged_into = Some(l.resident_id);
                    }
                }
            }
        }
        if own || xref {
            numbers.push(ShownNumber {
                clinic: n.clinic_code,
                own,
                local_patient_id: n.local_patient_id,
                replaced_by: n.replaced_by,
            });
        }
    }
    Ok(PatientRecord {
        national_id: clinic
            .scopes
            .contains(Scope::Pii)
            .then(|| resident.national_id().cloned())
            .flatten(),
        resident,
        cards,
        numbers,
        replaced_by: registry_merge.or(merged_into),
        merged: registry_merge.is_some(),
        temporary,
    })
}

/// `GET Patient/{id}`: the resident, for a clinic that holds one of its numbers.
pub fn read(
    ctx: &AppContext,
    clinic: &Clinic,
    id: ResidentId,
) -> Result<PatientRecord, PatientError> {
    ctx.with_tx(|c| {
        // A merged record's numbers moved to the record it went into: a
        // clinic that holds one of those reads the old record too (to
        // follow its `replaced-by` link).
        let knows = links::clinic_knows(c, clinic.id, id)? || {
            let now = merges::current(c, id)?;
            now != id && links::clinic_knows(c, clinic.id, now)?
        };
        if !knows {
            return Ok(None);
        }
        let resident = residents::get(c, &ctx.master, id)?;
        let rec = record(c, &ctx.master, clinic, resident)?;
        access_log::append(
            c,
            &ctx.master.chain_key(),
            &[log_row(clinic, "fhir.read", Some(id))],
        )?;
        Ok(Some(rec))
    })?
    .ok_or(PatientError::NotFound)
}

/// The resident an identifier names, checking that the clinic may use its
/// register: `UnknownDomain` for a system that is no register (or a clinic
/// that does not exist), `ForbiddenDomain` for another clinic's numbers
/// without `xref` or the ID number without `pii`; `None` when the register
/// has no such value.
fn resolve(
    conn: &mut DbConnection,
    ctx: &AppContext,
    clinic: &Clinic,
    systems: &IdentifierSystems,
    id: &SystemValue,
) -> Result<Option<ResidentId>, PatientError> {
    let domain = systems
        .parse(&id.system)
        .ok_or_else(|| PatientError::UnknownDomain(id.system.clone()))?;
    check_domain(conn, clinic, &domain, &id.system)?;
    Ok(match domain {
        IdentifierDomain::Resident => match id.value.parse::<ResidentId>() {
            Ok(rid) => match residents::get(conn, &ctx.master, rid) {
                Ok(_) => Some(rid),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            Err(_) => None,
        },
        IdentifierDomain::Card => match id.value.parse::<CardId>() {
            Ok(cid) => match cards::get(conn, cid) {
                Ok(card) => Some(card.resident_id),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            Err(_) => None,
        },
        IdentifierDomain::Clinic(code) => {
            let owner = if code == clinic.code {
                clinic.id
            } else {
                match clinics::find_by_code(conn, &code)? {
                    Some(c) => c.id,
                    None => return Err(PatientError::UnknownDomain(id.system.clone())),
                }
            };
            match LocalPatientId::parse(&id.value) {
                Ok(local) => links::find(conn, owner, &local)?.map(|l| l.resident_id),
                Err(_) => None,
            }
        }
        IdentifierDomain::Document(DocumentType::ResidentIdCard) => {
            match NationalId::parse(&id.value) {
                Ok(nid) => residents::find_by_national_id(conn, &ctx.master, &nid)?.map(|r| r.id),
                Err(_) => None,
            }
        }
        // The other document types are not stored yet (the documents issue).
        IdentifierDomain::Document(_) => None,
    })
}

/// Whether the clinic may read identifiers of `domain`.
fn check_domain(
    conn: &mut DbConnection,
    clinic: &Clinic,
    domain: &IdentifierDomain,
    system: &str,
) -> Result<(), PatientError> {
    match domain {
        IdentifierDomain::Resident | IdentifierDomain::Card => Ok(()),
        IdentifierDomain::Clinic(code) if *code == clinic.code => Ok(()),
        IdentifierDomain::Clinic(code) => {
            if clinics::find_by_code(conn, code)?.is_none() {
                Err(PatientError::UnknownDomain(system.to_string()))
            } else if clinic.scopes.contains(Scope::Xref) {
                Ok(())
            } else {
                Err(PatientError::ForbiddenDomain(system.to_string()))
            }
        }
        IdentifierDomain::Document(_) => {
            if clinic.scopes.contains(Scope::Pii) {
                Ok(())
            } else {
                Err(PatientError::ForbiddenDomain(system.to_string()))
            }
        }
    }
}

/// A name condition of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameFilter {
    pub value: String,
    pub exact: bool,
}

/// A PDQm search, already parsed by the adapter.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// All must name the same resident (repeats are AND).
    pub identifiers: Vec<SystemValue>,
    pub family: Vec<NameFilter>,
    pub given: Vec<NameFilter>,
    pub gender: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
    pub telecom: Option<MobileNumber>,
    pub active: Option<bool>,
    /// The client's `_count`, capped by the use case.
    pub count: Option<usize>,
}

impl Search {
    fn matches(&self, rec: &PatientRecord) -> bool {
        let name = rec.resident.name.as_str();
        self.family
            .iter()
            .all(|f| family_matches(name, &f.value, f.exact))
            && self
                .given
                .iter()
                .all(|g| given_matches(name, &g.value, g.exact))
            && self.gender.is_none_or(|s| s == rec.resident.sex)
            // A temporary patient's stored date is a stand-in: never an exact match.
            && self
                .birth_date
                .is_none_or(|d| rec.temporary.is_none() && d == rec.resident.birth_date)
            && self
                .telecom
                .as_ref()
                .is_none_or(|t| rec.resident.phone.as_deref() == Some(t.as_str()))
            && self.active.is_none_or(|a| a == rec.active())
    }
}

/// `GET Patient?…` (PDQm ITI-78). By identifier: the resident they all name,
/// if the clinic knows them (or holds `search`). By demographics alone: needs
/// `search` and family with gender or birth date, and answers at most
/// [`DEMOGRAPHIC_LIMIT`]. One log row per resident shown, or one without a
/// resident when nothing matched.
pub fn search(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    query: &Search,
) -> Result<Vec<PatientRecord>, PatientError> {
    let by_demographics = query.identifiers.is_empty();
    if by_demographics {
        if !clinic.scopes.contains(Scope::Search) {
            return Err(PatientError::MissingScope(Scope::Search));
        }
        if query.family.is_empty() || (query.gender.is_none() && query.birth_date.is_none()) {
            return Err(invalid(
                "search_combination_required",
                "a search without identifier needs family with gender or birthdate",
            ));
        }
    }
    let cap = if by_demographics {
        DEMOGRAPHIC_LIMIT
    } else {
        SEARCH_LIMIT
    };
    let cap = query.count.unwrap_or(cap).min(cap);
    let systems = systems(ctx);
    let found = ctx.with_tx(|c| {
        let candidates: Vec<Resident> = if by_demographics {
            // The longest family value narrows most.
            let prefix = query
                .family
                .iter()
                .map(|f| f.value.as_str())
                .max_by_key(|v| v.len())
                .unwrap_or_default();
            residents::search_by_name_prefix(
                c,
                &ctx.master,
                prefix,
                query.gender,
                query.birth_date,
                CANDIDATES,
            )?
        } else {
            let mut named: Option<ResidentId> = None;
            for id in &query.identifiers {
                match resolve(c, ctx, clinic, &systems, id) {
                    Ok(Some(rid)) if named.is_none_or(|n| n == rid) => named = Some(rid),
                    // Different residents, no resident, or a register that
                    // is not ours: nothing matches all of them.
                    Ok(_) | Err(PatientError::UnknownDomain(_)) => {
                        named = None;
                        break;
                    }
                    Err(e) => return Ok(Err(e)),
                }
            }
            match named {
                Some(rid) => vec![residents::get(c, &ctx.master, rid)?],
                None => Vec::new(),
            }
        };
        let may_find_any = clinic.scopes.contains(Scope::Search);
        let mut shown = Vec::new();
        for r in candidates {
            if shown.len() == cap {
                break;
            }
            if !may_find_any && !links::clinic_knows(c, clinic.id, r.id)? {
                continue;
            }
            let rec = record(c, &ctx.master, clinic, r)?;
            if query.matches(&rec) {
                shown.push(rec);
            }
        }
        let action = if by_demographics {
            "fhir.search.demographics"
        } else {
            "fhir.search"
        };
        let rows: Vec<LogEntry> = if shown.is_empty() {
            vec![log_row(clinic, action, None)]
        } else {
            shown
                .iter()
                .map(|r| log_row(clinic, action, Some(r.resident.id)))
                .collect()
        };
        access_log::append(c, &ctx.master.chain_key(), &rows)?;
        Ok(Ok(shown))
    })??;
    Ok(found)
}

/// What `$ihe-pix` answers: the identifiers of the resident in the asked
/// registers the clinic may read.
#[derive(Debug, Clone)]
pub struct CrossReference {
    pub resident: ResidentId,
    /// (register, value), without the source identifier itself.
    pub identifiers: Vec<(IdentifierDomain, String)>,
}

/// PIXm ITI-83. Errors as IHE sets them: an unknown source register
/// (`UnknownDomain`), an unknown or forbidden target register
/// (`ForbiddenDomain`), an unknown identifier in a known register
/// (`NotFound`). A resident found by card or resident id must be known to
/// the clinic; by another clinic's number, `xref` suffices.
pub fn cross_reference(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    source: &SystemValue,
    targets: &[String],
) -> Result<CrossReference, PatientError> {
    let systems = systems(ctx);
    ctx.with_tx(|c| {
        let source_domain = systems
            .parse(&source.system)
            .ok_or_else(|| PatientError::UnknownDomain(source.system.clone()));
        let source_domain = match source_domain {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let mut wanted = Vec::new();
        for t in targets {
            let d = match systems.parse(t) {
                Some(d) => d,
                None => return Ok(Err(PatientError::ForbiddenDomain(t.clone()))),
            };
            match check_domain(c, clinic, &d, t) {
                Ok(()) => wanted.push(d),
                Err(PatientError::UnknownDomain(t) | PatientError::ForbiddenDomain(t)) => {
                    return Ok(Err(PatientError::ForbiddenDomain(t)))
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        let rid = match resolve(c, ctx, clinic, &systems, source) {
            Ok(Some(rid)) => rid,
            Ok(None) => return Ok(Err(PatientError::NotFound)),
            Err(e) => return Ok(Err(e)),
        };
        let via_other_clinic =
            matches!(&source_domain, IdentifierDomain::Clinic(code) if *code != clinic.code);
        if !via_other_clinic && !links::clinic_knows(c, clinic.id, rid)? {
            return Ok(Err(PatientError::NotFound));
        }
        let resident = residents::get(c, &ctx.master, rid)?;
        let rec = record(c, &ctx.master, clinic, resident)?;
        let mut all: Vec<(IdentifierDomain, String)> =
            vec![(IdentifierDomain::Resident, rid.to_string())];
        all.extend(
            rec.cards
                .iter()
                .map(|card| (IdentifierDomain::Card, card.id.to_string())),
        );
        all.extend(rec.numbers.iter().map(|n| {
            (
                IdentifierDomain::Clinic(n.clinic.clone()),
                n.local_patient_id.as_str().to_string(),
            )
        }));
        if let Some(nid) = &rec.national_id {
            all.push((
                IdentifierDomain::Document(DocumentType::ResidentIdCard),
                nid.as_str().to_string(),
            ));
        }
        let identifiers = all
            .into_iter()
            .filter(|(d, v)| !(*d == source_domain && *v == source.value))
            .filter(|(d, _)| wanted.is_empty() || wanted.contains(d))
            .collect();
        access_log::append(
            c,
            &ctx.master.chain_key(),
            &[log_row(clinic, "fhir.pix", Some(rid))],
        )?;
        Ok(Ok(CrossReference {
            resident: rid,
            identifiers,
        }))
    })?
}

/// How a feed names the resident its number belongs to.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The clinic's own number (the conditional update's identifier).
    pub number: SystemValue,
    /// The Patient's identifiers: one must be a resident id or a card id.
    pub identifiers: Vec<SystemValue>,
    /// `active: false` with `replaced-by` one of the clinic's own numbers.
    pub merged_into: Option<SystemValue>,
}

/// What a feed did.
#[derive(Debug)]
pub struct FeedOutcome {
    pub created: bool,
    pub record: PatientRecord,
}

/// The clinic's own number from a conditional identifier: `ForbiddenDomain`
/// for any other register.
fn own_number(
    systems: &IdentifierSystems,
    clinic: &Clinic,
    id: &SystemValue,
) -> Result<LocalPatientId, PatientError> {
    match systems.parse(&id.system) {
        Some(IdentifierDomain::Clinic(code)) if code == clinic.code => {
            LocalPatientId::parse(&id.value)
                .map_err(|e| invalid("invalid_identifier", e.to_string()))
        }
        _ => Err(PatientError::ForbiddenDomain(id.system.clone())),
    }
}

/// PIXm ITI-104: creates or moves the clinic's link for its number, or
/// records its own merge. Never creates a resident. Needs `link`.
pub fn feed(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    feed: &Feed,
) -> Result<FeedOutcome, PatientError> {
    if !clinic.scopes.contains(Scope::Link) {
        return Err(PatientError::MissingScope(Scope::Link));
    }
    let systems = systems(ctx);
    let number = own_number(&systems, clinic, &feed.number)?;
    let merged_into = feed
        .merged_into
        .as_ref()
        .map(|m| own_number(&systems, clinic, m))
        .transpose()?;
    if merged_into.as_ref() == Some(&number) {
        return Err(invalid(
            "merge_self",
            "a number cannot be replaced by itself",
        ));
    }
    ctx.with_tx(|c| {
        let mut resident = None;
        for id in &feed.identifiers {
            let rid = match systems.parse(&id.system) {
                Some(IdentifierDomain::Resident) => match id.value.parse::<ResidentId>() {
                    Ok(rid) => match residents::get(c, &ctx.master, rid) {
                        Ok(_) => Some(rid),
                        Err(StoreError::NotFound) => None,
                        Err(e) => return Err(e),
                    },
                    Err(_) => None,
                },
                Some(IdentifierDomain::Card) => match id.value.parse::<CardId>() {
                    Ok(cid) => match cards::get(c, cid) {
                        Ok(card) => Some(card.resident_id),
                        Err(StoreError::NotFound) => None,
                        Err(e) => return Err(e),
                    },
                    Err(_) => None,
                },
                _ => continue,
            };
            match (rid, resident) {
                (None, _) => return Ok(Err(PatientError::UnknownResident)),
                (Some(r), Some(prev)) if r != prev => {
                    return Ok(Err(invalid(
                        "identifiers_disagree",
                        "the Patient's resident and card identifiers name different residents",
                    )))
                }
                (Some(r), _) => resident = Some(r),
            }
        }
        let Some(rid) = resident else {
            return Ok(Err(PatientError::UnknownResident));
        };
        // A record the registry merged into another takes no number: the
        // feed's number goes to the record it went into.
        let rid = merges::current(c, rid)?;
        let created = match links::find(c, clinic.id, &number)? {
            None => {
                links::create(c, clinic.id, &number, rid)?;
                true
            }
            Some(l) if l.resident_id != rid => {
                links::move_to(c, clinic.id, &number, rid)?;
                false
            }
            Some(_) => false,
        };
        if let Some(by) = &merged_into {
            if links::find(c, clinic.id, by)?.is_none() {
                return Ok(Err(invalid(
                    "unknown_replacement",
                    "replaced-by must name another of this clinic's linked numbers",
                )));
            }
        }
        links::set_replaced_by(c, clinic.id, &number, merged_into.as_ref())?;
        let mut row = log_row(clinic, "fhir.feed", Some(rid));
        row.detail = Some(
            match (created, merged_into.is_some()) {
                (true, _) => "link created",
                (false, true) => "merged by the clinic",
                (false, false) => "link updated",
            }
            .into(),
        );
        access_log::append(c, &ctx.master.chain_key(), &[row])?;
        let resident = residents::get(c, &ctx.master, rid)?;
        Ok(Ok(FeedOutcome {
            created,
            record: record(c, &ctx.master, clinic, resident)?,
        }))
    })?
}

/// PIXm ITI-104 conditional delete: removes the clinic's number. `NotFound`
/// when there was none. Needs `link`.
pub fn unlink(
    ctx: &AppContext,
    clinic: &Arc<Clinic>,
    number: &SystemValue,
) -> Result<(), PatientError> {
    if !clinic.scopes.contains(Scope::Link) {
        return Err(PatientError::MissingScope(Scope::Link));
    }
    let number = own_number(&systems(ctx), clinic, number)?;
    ctx.with_tx(|c| {
        let Some(link) = links::find(c, clinic.id, &number)? else {
            return Ok(Err(PatientError::NotFound));
        };
        links::delete(c, clinic.id, &number)?;
        let mut row = log_row(clinic, "fhir.unlink", Some(link.resident_id));
        row.detail = Some("link removed".into());
        access_log::append(c, &ctx.master.chain_key(), &[row])?;
        Ok(Ok(()))
    })?
}
