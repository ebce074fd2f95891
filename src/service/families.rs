//! Families (issue 15): guardians added and removed by the card office, a
//! minor's guardianship ending on the 18th birthday, and the one rule of
//! which cards a holder credential reaches (its own card, and each
//! dependant's active card while the guardianship is in force).
//!
//! Every change is written with two access-log rows, one on each resident,
//! so both see it in their holder log. The calendar is [`AppContext::today`]
//! (a clock tests can move); a guardianship past the dependant's 18th
//! birthday is treated as ended by every read even before housekeeping
//! writes its end.

use chrono::NaiveDate;

use crate::domain::{
    adult_born_by, check_new_guardian, in_force, is_adult, is_newborn, mask_phone, CardId,
    CardStatus, EndReason, GuardianRefusal, PersonName, Proposal, Relation, ResidentId, Sex,
};
use crate::store::cards::{self, Card};
use crate::store::guardians::{self, Consent, Guardianship, NewGuardianship};
use crate::store::residents::{self, NewResident, Resident};
use crate::store::{access_log, Conflict, DbConnection, StoreError};

use super::registry::{entry, Actor};
use super::AppContext;

/// Why a family use case refused.
#[derive(Debug, thiserror::Error)]
pub enum FamilyError {
    /// No such resident, or no such guardianship in force.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Refused(GuardianRefusal),
    /// Newborn registration: the birth date is a year or more ago (or ahead).
    #[error("a resident is registered without a document only under one year of age")]
    NotNewborn,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for FamilyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => FamilyError::NotFound,
            // The open-pair index, should the rule's read have been beaten.
            StoreError::Conflict(Conflict::GuardianExists) => {
                FamilyError::Refused(GuardianRefusal::Exists)
            }
            other => FamilyError::Store(other),
        }
    }
}

/// A guardianship with the resident on its other side.
#[derive(Debug, Clone)]
pub struct Member {
    pub guardianship: Guardianship,
    /// The guardian (in a dependant's list) or the dependant (in a guardian's).
    pub resident: Resident,
    /// `None` while in force; why it ended otherwise.
    pub ended: Option<EndReason>,
    /// The sex of the resident whose family this is (the guardian's, in a
    /// guardian's list of dependants: it picks the code of `child`).
    pub other_sex: Sex,
}

/// A resident's family as the card office sees it.
#[derive(Debug, Clone, Default)]
pub struct Family {
    /// This resident's guardians in force.
    pub guardians: Vec<Member>,
    /// The residents in this resident's care, in force.
    pub dependants: Vec<Member>,
    /// Guardianships on either side that ended, oldest first.
    pub ended: Vec<Member>,
}

fn status_of(g: &Guardianship, today: NaiveDate) -> Option<EndReason> {
    in_force(g.end_reason, g.consent.is_some(), g.dependant_birth, today).err()
}

/// The dependant's guardians in force on `today`.
fn guardians_in_force(
    conn: &mut DbConnection,
    dependant: ResidentId,
    today: NaiveDate,
) -> Result<Vec<Guardianship>, StoreError> {
    Ok(guardians::open_for_dependant(conn, dependant)?
        .into_iter()
        .filter(|g| status_of(g, today).is_none())
        .collect())
}

/// The card a resident's rows are filed under (so they show in the card's log).
fn current_card(conn: &mut DbConnection, r: ResidentId) -> Result<Option<CardId>, StoreError> {
    let cs = cards::for_resident(conn, r)?;
    Ok(cs
        .iter()
        .rev()
        .find(|c| c.status.holds_slot())
        .or(cs.last())
        .map(|c| c.id))
}

/// Two rows, one on each resident: `action` with the other side's id and
/// the relation in the detail (for the card office; holders see no detail).
fn log_both(
    ctx: &AppContext,
    conn: &mut DbConnection,
    actor: &Actor,
    action: &str,
    g: &Guardianship,
    extra: Option<&str>,
) -> Result<(), StoreError> {
    let tail = extra.map(|e| format!("; {e}")).unwrap_or_default();
    let dep_card = current_card(conn, g.dependant)?;
    let guard_card = current_card(conn, g.guardian)?;
    let rows = vec![
        entry(
            actor,
            action,
            dep_card,
            Some(g.dependant),
            Some(format!(
                "guardian {} ({}){tail}",
                g.guardian,
                g.relation.as_str()
            )),
        ),
        entry(
            actor,
            action,
            guard_card,
            Some(g.guardian),
            Some(format!(
                "dependant {} ({}){tail}",
                g.dependant,
                g.relation.as_str()
            )),
        ),
    ];
    access_log::append(conn, &ctx.master.chain_key(), &rows).map(|_| ())
}

/// Adds `guardian` as a guardian of `dependant`. An adult dependant needs
/// `consent` (attested by `actor`, recorded with who and when); for a minor
/// no consent is recorded and the guardianship ends on the 18th birthday.
pub fn add_guardian(
    ctx: &AppContext,
    actor: &Actor,
    dependant: ResidentId,
    guardian: ResidentId,
    relation: Relation,
    consent: bool,
) -> Result<Guardianship, FamilyError> {
    let today = ctx.today();
    let made = ctx.with_tx(|c| {
        guardians::lock(c)?;
        let dep = residents::get(c, &ctx.master, dependant)?;
        let guard = residents::get(c, &ctx.master, guardian)?;
        let current: Vec<ResidentId> = guardians_in_force(c, dependant, today)?
            .iter()
            .map(|g| g.guardian)
            .collect();
        let proposal = Proposal {
            dependant,
            dependant_birth: dep.birth_date,
            guardian,
            guardian_birth: guard.birth_date,
            consent,
            today,
            current_guardians: &current,
        };
        let verdict = check_new_guardian(&proposal, |r| {
            Ok::<_, StoreError>(
                guardians_in_force(c, r, today)?
                    .into_iter()
                    .map(|g| g.guardian)
                    .collect(),
            )
        })?;
        if let Err(refusal) = verdict {
            return Ok(Err(refusal));
        }
        let adult = is_adult(dep.birth_date, today);
        let at = crate::store::now();
        let new = NewGuardianship {
            dependant,
            guardian,
            relation,
            consent: adult.then(|| Consent {
                by: actor.name.clone(),
                at,
            }),
            created_by: actor.name.clone(),
            at,
        };
        let g = guardians::insert(c, &new, dep.birth_date)?;
        let extra = adult.then(|| format!("consent attested by {}", actor.name));
        log_both(ctx, c, actor, "guardian.add", &g, extra.as_deref())?;
        Ok(Ok(g))
    })?;
    made.map_err(FamilyError::Refused)
}

/// Ends the guardianship of `guardian` over `dependant` (the card office's
/// removal). From its commit no holder request through the guardian reaches
/// the dependant's card; `NotFound` when none is in force.
pub fn remove_guardian(
    ctx: &AppContext,
    actor: &Actor,
    dependant: ResidentId,
    guardian: ResidentId,
) -> Result<(), FamilyError> {
    let today = ctx.today();
    ctx.with_tx(|c| {
        guardians::lock(c)?;
        let Some(g) = guardians_in_force(c, dependant, today)?
            .into_iter()
            .find(|g| g.guardian == guardian)
        else {
            return Err(StoreError::NotFound);
        };
        if !guardians::end(c, g.id, crate::store::now(), EndReason::Removed)? {
            return Err(StoreError::NotFound);
        }
        log_both(ctx, c, actor, "guardian.remove", &g, None)
    })?;
    Ok(())
}

/// Housekeeping: writes the end of every minor's guardianship whose
/// dependant turned 18 by [`AppContext::today`], each with its two log rows.
/// Idempotent; many nodes may run it at once (the lock orders them).
pub fn end_by_birthdays(ctx: &AppContext) -> Result<usize, StoreError> {
    let today = ctx.today();
    ctx.with_tx(|c| {
        guardians::lock(c)?;
        let due = guardians::came_of_age(c, adult_born_by(today))?;
        let actor = Actor::system("housekeeping");
        let mut n = 0;
        for g in &due {
            if guardians::end(c, g.id, crate::store::now(), EndReason::CameOfAge)? {
                log_both(ctx, c, &actor, "guardian.end", g, Some("came of age"))?;
                n += 1;
            }
        }
        Ok(n)
    })
}

/// The resident's guardians, dependants and ended guardianships.
pub fn family(ctx: &AppContext, resident: ResidentId) -> Result<Family, FamilyError> {
    let today = ctx.today();
    let mut conn = ctx.conn()?;
    let me = residents::get(&mut conn, &ctx.master, resident)?;
    let mut fam = Family::default();
    for g in guardians::history(&mut conn, resident)? {
        let other = if g.dependant == resident {
            g.guardian
        } else {
            g.dependant
        };
        let m = Member {
            resident: residents::get(&mut conn, &ctx.master, other)?,
            ended: status_of(&g, today),
            guardianship: g,
            other_sex: me.sex,
        };
        if m.ended.is_some() {
            fam.ended.push(m);
        } else if m.guardianship.dependant == resident {
            fam.guardians.push(m);
        } else {
            fam.dependants.push(m);
        }
    }
    Ok(fam)
}

/// A guardian as a verification names them: name, relation, masked phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianContact {
    pub name: String,
    pub relation: Relation,
    /// The guardian's (it picks the code of `child`).
    pub sex: Sex,
    /// `138****1234`, as the card office's pages show it; none without a phone.
    pub phone_masked: Option<String>,
}

/// The guardians in force of a verified dependant (empty for most).
pub fn contacts(
    ctx: &AppContext,
    dependant: ResidentId,
) -> Result<Vec<GuardianContact>, StoreError> {
    let today = ctx.today();
    let mut conn = ctx.conn()?;
    let mut out = Vec::new();
    for g in guardians_in_force(&mut conn, dependant, today)? {
        let r = residents::get(&mut conn, &ctx.master, g.guardian)?;
        out.push(GuardianContact {
            name: r.name,
            relation: g.relation,
            sex: r.sex,
            phone_masked: r.phone.as_deref().map(mask_phone),
        });
    }
    Ok(out)
}

// --- What a holder credential reaches ------------------------------------

/// The card of a holder credential, while it is alive: a credential dies
/// with its card, so a replaced or revoked card's credential (a lost phone)
/// reaches nothing. `None` for an unknown or dead credential.
pub fn holder_card(
    conn: &mut DbConnection,
    hash: &crate::crypto::SecretHash,
) -> Result<Option<Card>, StoreError> {
    Ok(cards::find_by_holder(conn, hash)?.filter(|c| c.status.holds_slot()))
}

/// Whose a card on the holder's phone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    Own,
    Dependant(Relation),
}

impl Whose {
    /// `self`, or the relation of the holder to the dependant.
    pub fn as_str(self) -> &'static str {
        match self {
            Whose::Own => "self",
            Whose::Dependant(r) => r.as_str(),
        }
    }
}

/// One card a holder credential reaches.
#[derive(Debug, Clone)]
pub struct Reachable {
    pub card: Card,
    pub name: String,
    pub whose: Whose,
}

/// Every card the credential of `own` reaches: its own card first, then
/// each dependant's active card while the guardianship is in force and the
/// holder's own card is active (a suspended guardian card carries no one).
pub fn reachable(ctx: &AppContext, own: &Card) -> Result<Vec<Reachable>, StoreError> {
    let today = ctx.today();
    let mut conn = ctx.conn()?;
    let me = residents::get(&mut conn, &ctx.master, own.resident_id)?;
    let mut out = vec![Reachable {
        card: own.clone(),
        name: me.name,
        whose: Whose::Own,
    }];
    if own.status != CardStatus::Active {
        return Ok(out);
    }
    for g in guardians::open_for_guardian(&mut conn, own.resident_id)? {
        if status_of(&g, today).is_some() {
            continue;
        }
        let active = cards::for_resident(&mut conn, g.dependant)?
            .into_iter()
            .find(|c| c.status == CardStatus::Active);
        if let Some(card) = active {
            let r = residents::get(&mut conn, &ctx.master, g.dependant)?;
            out.push(Reachable {
                card,
                name: r.name,
                whose: Whose::Dependant(g.relation),
            });
        }
    }
    Ok(out)
}

/// The card a holder request names (`None`: the holder's own), or
/// `NotFound` for any card the credential does not reach: a stranger's, a
/// former dependant's, a dependant's card that is not active.
pub fn reach(
    ctx: &AppContext,
    own: &Card,
    wanted: Option<CardId>,
) -> Result<Reachable, FamilyError> {
    match wanted {
        Some(id) if id != own.id => reachable(ctx, own)?
            .into_iter()
            .find(|r| r.card.id == id)
            .ok_or(FamilyError::NotFound),
        _ => {
            let me = residents::get(&mut *ctx.conn()?, &ctx.master, own.resident_id)?;
            Ok(Reachable {
                card: own.clone(),
                name: me.name,
                whose: Whose::Own,
            })
        }
    }
}

/// The card id a holder request reaches, without reading the holder's own
/// name: the hot path of the holder's QR refresh.
pub fn reach_card(
    ctx: &AppContext,
    own: &Card,
    wanted: Option<CardId>,
) -> Result<Card, FamilyError> {
    match wanted {
        Some(id) if id != own.id => Ok(reach(ctx, own, Some(id))?.card),
        _ => Ok(own.clone()),
    }
}

// --- Newborns --------------------------------------------------------------

/// A newborn, registered by a guardian before any document exists.
#[derive(Debug, Clone)]
pub struct NewNewborn {
    pub name: PersonName,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub guardian: ResidentId,
    pub relation: Relation,
}

/// Registers a newborn under a guardian before any document exists: under
/// one year of age, the guardian a registered adult. The resident, its
/// guardianship and both log rows are one transaction, so a refusal leaves
/// nothing; the birth certificate or ID number is added later to the same
/// resident (`registry::add_document`), without a new card.
pub fn register_newborn(
    ctx: &AppContext,
    actor: &Actor,
    new: &NewNewborn,
) -> Result<Resident, FamilyError> {
    let today = ctx.today();
    if !is_newborn(new.birth_date, today) {
        return Err(FamilyError::NotNewborn);
    }
    let made = ctx.with_tx(|c| {
        guardians::lock(c)?;
        let guardian = residents::get(c, &ctx.master, new.guardian)?;
        if !is_adult(guardian.birth_date, today) {
            return Ok(Err(GuardianRefusal::GuardianMinor));
        }
        let resident = residents::create(
            c,
            &ctx.master,
            &NewResident {
                name: new.name.clone(),
                document: None,
                sex: new.sex,
                birth_date: new.birth_date,
                phone: None,
            },
            Conflict::DocumentRegistered,
        )?;
        access_log::append(
            c,
            &ctx.master.chain_key(),
            &[entry(
                actor,
                "resident.register",
                None,
                Some(resident.id),
                Some("newborn".to_owned()),
            )],
        )?;
        let at = crate::store::now();
        let g = guardians::insert(
            c,
            &NewGuardianship {
                dependant: resident.id,
                guardian: new.guardian,
                relation: new.relation,
                consent: None,
                created_by: actor.name.clone(),
                at,
            },
            new.birth_date,
        )?;
        log_both(ctx, c, actor, "guardian.add", &g, None)?;
        Ok(Ok(resident))
    })?;
    made.map_err(FamilyError::Refused)
}
