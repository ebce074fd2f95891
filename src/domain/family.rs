//! Families: who may carry whose card. A guardian is another resident with
//! a [`Relation`] to the dependant; the rules of who may be one are here, as
//! functions of dates and ids, so that the service only loads and stores.
//!
//! The relation says what the guardian is *to the dependant* ("father": the
//! guardian is the dependant's father), as GB/T 4761-2008 codes relate a
//! family member to 本人 (see docs/families.md for the code table's source).

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

use super::{Choice, DomainError, ResidentId, Sex};

/// A dependant has at most this many guardians in force at once.
pub const MAX_GUARDIANS: usize = 4;
/// Full age (完全民事行为能力) in years: a minor's guardianship ends then.
pub const FULL_AGE_YEARS: i32 = 18;
/// A resident may be registered as a newborn, without a document, until
/// this age in years.
pub const NEWBORN_MAX_YEARS: i32 = 1;

/// What the guardian is to the dependant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    Father,
    Mother,
    Grandparent,
    Spouse,
    Child,
    Sibling,
    OtherRelative,
    LegalGuardian,
}

impl Relation {
    pub const ALL: [Relation; 8] = [
        Relation::Father,
        Relation::Mother,
        Relation::Grandparent,
        Relation::Spouse,
        Relation::Child,
        Relation::Sibling,
        Relation::OtherRelative,
        Relation::LegalGuardian,
    ];

    /// Stable text form, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Father => "father",
            Relation::Mother => "mother",
            Relation::Grandparent => "grandparent",
            Relation::Spouse => "spouse",
            Relation::Child => "child",
            Relation::Sibling => "sibling",
            Relation::OtherRelative => "other_relative",
            Relation::LegalGuardian => "legal_guardian",
        }
    }

    /// The GB/T 4761-2008 two-digit code (家庭关系代码). The standard has
    /// no code for a child of either sex, only 20 子 and 30 女, so `child`
    /// takes the guardian's sex; a legal guardian outside the family is 99
    /// 非亲属.
    pub fn gbt4761_code(self, guardian_sex: Sex) -> &'static str {
        match self {
            Relation::Father => "51",
            Relation::Mother => "52",
            Relation::Grandparent => "60",
            Relation::Spouse => "10",
            Relation::Child => match guardian_sex {
                Sex::Male => "20",
                Sex::Female => "30",
            },
            Relation::Sibling => "70",
            Relation::OtherRelative => "97",
            Relation::LegalGuardian => "99",
        }
    }
}

impl FromStr for Relation {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Relation::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(DomainError::Unknown(Choice::Relation))
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The day someone born on `birth` turns `years` old. Someone born on 29
/// February has the birthday on 1 March in a common year (the day after 28
/// February has passed, as an age in full years counts).
pub fn birthday(birth: NaiveDate, years: i32) -> NaiveDate {
    let year = birth.year() + years;
    NaiveDate::from_ymd_opt(year, birth.month(), birth.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 3, 1))
        .unwrap_or(NaiveDate::MAX)
}

/// Of full age on `today`: the 18th birthday has come.
pub fn is_adult(birth: NaiveDate, today: NaiveDate) -> bool {
    today >= birthday(birth, FULL_AGE_YEARS)
}

/// The latest birth date of someone of full age on `today` (for a query that
/// finds the minors' guardianships that ended): `is_adult(b, today)` exactly
/// when `b <= adult_born_by(today)`.
pub fn adult_born_by(today: NaiveDate) -> NaiveDate {
    let year = today.year() - FULL_AGE_YEARS;
    NaiveDate::from_ymd_opt(year, today.month(), today.day())
        // 29 February today, a common year then: born by 28 February.
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .unwrap_or(NaiveDate::MIN)
}

/// Young enough to be registered as a newborn without a document.
pub fn is_newborn(birth: NaiveDate, today: NaiveDate) -> bool {
    birth <= today && today < birthday(birth, NEWBORN_MAX_YEARS)
}

/// Why a guardianship may not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GuardianRefusal {
    #[error("a resident cannot be their own guardian")]
    Oneself,
    #[error("the guardian is in the dependant's care already (no cycles)")]
    Cycle,
    #[error("a guardian must be of full age")]
    GuardianMinor,
    #[error("an adult dependant's guardianship needs recorded consent")]
    ConsentRequired,
    #[error("the dependant has {MAX_GUARDIANS} guardians already")]
    TooMany,
    #[error("this guardian is already recorded for the dependant")]
    Exists,
}

/// What the rules look at when a guardian is added.
#[derive(Debug, Clone)]
pub struct Proposal<'a> {
    pub dependant: ResidentId,
    pub dependant_birth: NaiveDate,
    pub guardian: ResidentId,
    pub guardian_birth: NaiveDate,
    /// The card office attests the adult dependant's consent.
    pub consent: bool,
    pub today: NaiveDate,
    /// The dependant's guardians in force now.
    pub current_guardians: &'a [ResidentId],
}

/// Whether the guardianship may be made. `guardians_of` answers the
/// guardians in force of a resident; it is followed up from the proposed
/// guardian to find a cycle (the dependant among the guardian's own
/// guardians, at any depth).
pub fn check_new_guardian<E>(
    p: &Proposal<'_>,
    mut guardians_of: impl FnMut(ResidentId) -> Result<Vec<ResidentId>, E>,
) -> Result<Result<(), GuardianRefusal>, E> {
    if p.dependant == p.guardian {
        return Ok(Err(GuardianRefusal::Oneself));
    }
    if p.current_guardians.contains(&p.guardian) {
        return Ok(Err(GuardianRefusal::Exists));
    }
    if !is_adult(p.guardian_birth, p.today) {
        return Ok(Err(GuardianRefusal::GuardianMinor));
    }
    if is_adult(p.dependant_birth, p.today) && !p.consent {
        return Ok(Err(GuardianRefusal::ConsentRequired));
    }
    // Walk up from the guardian: reaching the dependant would close a loop.
    let mut seen = HashSet::from([p.guardian]);
    let mut queue = VecDeque::from([p.guardian]);
    while let Some(r) = queue.pop_front() {
        for g in guardians_of(r)? {
            if g == p.dependant {
                return Ok(Err(GuardianRefusal::Cycle));
            }
            if seen.insert(g) {
                queue.push_back(g);
            }
        }
    }
    if p.current_guardians.len() >= MAX_GUARDIANS {
        return Ok(Err(GuardianRefusal::TooMany));
    }
    Ok(Ok(()))
}

/// Why a guardianship ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The card office removed it.
    Removed,
    /// A minor's guardianship, on the 18th birthday.
    CameOfAge,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Removed => "removed",
            EndReason::CameOfAge => "came_of_age",
        }
    }
}

impl FromStr for EndReason {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "removed" => Ok(EndReason::Removed),
            "came_of_age" => Ok(EndReason::CameOfAge),
            _ => Err(DomainError::Unknown(Choice::EndReason)),
        }
    }
}

/// Whether a stored guardianship is in force on `today`, and if not why: an
/// end written down, or (before housekeeping writes it) a minor's 18th
/// birthday passed. A guardianship made with consent is an adult's and has
/// no birthday end.
pub fn in_force(
    ended: Option<EndReason>,
    consented: bool,
    dependant_birth: NaiveDate,
    today: NaiveDate,
) -> Result<(), EndReason> {
    match ended {
        Some(r) => Err(r),
        None if !consented && is_adult(dependant_birth, today) => Err(EndReason::CameOfAge),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn relations_round_trip_and_carry_their_codes() {
        for r in Relation::ALL {
            assert_eq!(r.as_str().parse::<Relation>().unwrap(), r);
        }
        assert!("uncle".parse::<Relation>().is_err());
        assert_eq!(Relation::Spouse.gbt4761_code(Sex::Male), "10");
        assert_eq!(Relation::Father.gbt4761_code(Sex::Male), "51");
        assert_eq!(Relation::Mother.gbt4761_code(Sex::Female), "52");
        assert_eq!(Relation::Child.gbt4761_code(Sex::Male), "20");
        assert_eq!(Relation::Child.gbt4761_code(Sex::Female), "30");
        assert_eq!(Relation::Grandparent.gbt4761_code(Sex::Female), "60");
        assert_eq!(Relation::Sibling.gbt4761_code(Sex::Female), "70");
        assert_eq!(Relation::OtherRelative.gbt4761_code(Sex::Male), "97");
        assert_eq!(Relation::LegalGuardian.gbt4761_code(Sex::Male), "99");
    }

    #[test]
    fn full_age_comes_on_the_eighteenth_birthday() {
        assert!(!is_adult(d(2008, 6, 15), d(2026, 6, 14)));
        assert!(is_adult(d(2008, 6, 15), d(2026, 6, 15)));
        // Born on 29 February: of age on 1 March of a common year.
        assert_eq!(birthday(d(2008, 2, 29), 18), d(2026, 3, 1));
        assert!(!is_adult(d(2008, 2, 29), d(2026, 2, 28)));
        assert!(is_adult(d(2008, 2, 29), d(2026, 3, 1)));
        assert_eq!(birthday(d(2004, 2, 29), 20), d(2024, 2, 29));
    }

    #[test]
    fn adult_born_by_agrees_with_is_adult() {
        let mut today = d(2023, 12, 1);
        while today < d(2028, 4, 1) {
            let cut = adult_born_by(today);
            let mut b = cut - chrono::Duration::days(3);
            while b <= cut + chrono::Duration::days(3) {
                assert_eq!(is_adult(b, today), b <= cut, "born {b}, today {today}");
                b = b.succ_opt().unwrap();
            }
            today = today.succ_opt().unwrap();
        }
    }

    #[test]
    fn newborns_are_under_one_year() {
        assert!(is_newborn(d(2026, 1, 1), d(2026, 12, 31)));
        assert!(!is_newborn(d(2026, 1, 1), d(2027, 1, 1)));
        assert!(!is_newborn(d(2027, 1, 1), d(2026, 12, 31)));
    }

    fn ids(n: usize) -> Vec<ResidentId> {
        (0..n).map(|_| ResidentId::new()).collect()
    }

    fn proposal<'a>(
        dep: ResidentId,
        g: ResidentId,
        current: &'a [ResidentId],
        dep_birth: NaiveDate,
        consent: bool,
    ) -> Proposal<'a> {
        Proposal {
            dependant: dep,
            dependant_birth: dep_birth,
            guardian: g,
            guardian_birth: d(1980, 1, 1),
            consent,
            today: d(2026, 12, 2),
            current_guardians: current,
        }
    }

    fn none(_: ResidentId) -> Result<Vec<ResidentId>, ()> {
        Ok(Vec::new())
    }

    #[test]
    fn the_rules_refuse_each_bad_guardian() {
        let r = ids(7);
        let child = d(2015, 1, 1);
        let check = |p: &Proposal| check_new_guardian(p, none).unwrap();
        assert_eq!(check(&proposal(r[0], r[1], &[], child, false)), Ok(()));
        assert_eq!(
            check(&proposal(r[0], r[0], &[], child, false)),
            Err(GuardianRefusal::Oneself)
        );
        assert_eq!(
            check(&proposal(r[0], r[1], &[r[1]], child, false)),
            Err(GuardianRefusal::Exists)
        );
        let four = [r[2], r[3], r[4], r[5]];
        assert_eq!(
            check(&proposal(r[0], r[1], &four, child, false)),
            Err(GuardianRefusal::TooMany)
        );
        assert_eq!(
            check(&proposal(r[0], r[1], &four[..3], child, false)),
            Ok(())
        );
        // An adult dependant: only with consent.
        let adult = d(1950, 1, 1);
        assert_eq!(
            check(&proposal(r[0], r[1], &[], adult, false)),
            Err(GuardianRefusal::ConsentRequired)
        );
        assert_eq!(check(&proposal(r[0], r[1], &[], adult, true)), Ok(()));
        // A minor cannot be a guardian.
        let mut p = proposal(r[0], r[1], &[], child, false);
        p.guardian_birth = d(2010, 1, 1);
        assert_eq!(check(&p), Err(GuardianRefusal::GuardianMinor));
    }

    #[test]
    fn cycles_are_found_at_any_depth() {
        let r = ids(4);
        // r1 is in r2's care, r2 in r3's, r3 in r0's: r0 -> r1 would close a loop.
        let edges = [(r[1], r[2]), (r[2], r[3]), (r[3], r[0])];
        let up = |x: ResidentId| -> Result<Vec<ResidentId>, ()> {
            Ok(edges
                .iter()
                .filter(|(dep, _)| *dep == x)
                .map(|(_, g)| *g)
                .collect())
        };
        let p = proposal(r[0], r[1], &[], d(1950, 1, 1), true);
        assert_eq!(
            check_new_guardian(&p, up).unwrap(),
            Err(GuardianRefusal::Cycle)
        );
        // The other way round is no loop.
        let current = [r[2]];
        let p = proposal(r[1], r[0], &current, d(1950, 1, 1), true);
        assert_eq!(check_new_guardian(&p, up).unwrap(), Ok(()));
    }

    #[test]
    fn a_minors_guardianship_ends_by_itself_an_adults_does_not() {
        let birth = d(2008, 12, 2);
        assert_eq!(in_force(None, false, birth, d(2026, 12, 1)), Ok(()));
        assert_eq!(
            in_force(None, false, birth, d(2026, 12, 2)),
            Err(EndReason::CameOfAge)
        );
        assert_eq!(in_force(None, true, d(1950, 1, 1), d(2026, 12, 2)), Ok(()));
        assert_eq!(
            in_force(Some(EndReason::Removed), true, birth, d(2020, 1, 1)),
            Err(EndReason::Removed)
        );
    }
}
