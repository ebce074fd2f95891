use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Choice, DomainError};

/// Where a card is in its life. The whole lifecycle is [`CardStatus::apply`];
/// nothing else decides which change is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    Active,
    /// Temporarily blocked (e.g. phone reported lost, may be found).
    Suspended,
    /// Final: the card and all its tokens are dead.
    Revoked,
    /// Final: a reissue made a new card for the same resident.
    Replaced,
}

/// An administrator's request to change a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardAction {
    Suspend,
    Reinstate,
    Revoke,
    /// The card becomes `Replaced` and a new active card is made.
    Reissue,
}

/// A refused lifecycle change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a card that is {}", .action.as_str(), .from.as_str())]
pub struct LifecycleError {
    pub from: CardStatus,
    pub action: CardAction,
}

impl LifecycleError {
    /// A stable snake_case code for the API's 409 body.
    pub fn code(&self) -> &'static str {
        match (self.from, self.action) {
            (CardStatus::Revoked, _) => "card_revoked",
            (CardStatus::Replaced, _) => "card_replaced",
            (CardStatus::Suspended, CardAction::Suspend) => "card_already_suspended",
            (CardStatus::Active, CardAction::Reinstate) => "card_not_suspended",
            _ => "invalid_transition",
        }
    }
}

impl CardStatus {
    pub const ALL: [CardStatus; 4] = [
        CardStatus::Active,
        CardStatus::Suspended,
        CardStatus::Revoked,
        CardStatus::Replaced,
    ];

    /// The status after `action`, or why it is refused. Revoked and replaced
    /// are final; a reissue of a live card leaves the old one `Replaced`.
    pub fn apply(self, action: CardAction) -> Result<CardStatus, LifecycleError> {
        use CardAction::*;
        use CardStatus::*;
        match (self, action) {
            (Active, Suspend) => Ok(Suspended),
            (Suspended, Reinstate) => Ok(Active),
            (Active | Suspended, Revoke) => Ok(Revoked),
            (Active | Suspended, Reissue) => Ok(Replaced),
            (from, action) => Err(LifecycleError { from, action }),
        }
    }

    /// Whether a card in this status is the resident's one card: at most one
    /// card per resident holds the slot (enforced by a partial unique index).
    pub fn holds_slot(self) -> bool {
        matches!(self, CardStatus::Active | CardStatus::Suspended)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "active",
            CardStatus::Suspended => "suspended",
            CardStatus::Revoked => "revoked",
            CardStatus::Replaced => "replaced",
        }
    }
}

impl FromStr for CardStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CardStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DomainError::Unknown(Choice::CardStatus))
    }
}

impl fmt::Display for CardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CardAction {
    pub const ALL: [CardAction; 4] = [
        CardAction::Suspend,
        CardAction::Reinstate,
        CardAction::Revoke,
        CardAction::Reissue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CardAction::Suspend => "suspend",
            CardAction::Reinstate => "reinstate",
            CardAction::Revoke => "revoke",
            CardAction::Reissue => "reissue",
        }
    }
}

impl FromStr for CardAction {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CardAction::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DomainError::Unknown(Choice::CardAction))
    }
}

/// Why the card office changed a card ("lost phone"), as recorded in the
/// access log: at most [`ChangeReason::MAX_CHARS`] characters, trimmed, no
/// control characters. Blank means no reason ([`ChangeReason::parse`]
/// answers `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeReason(String);

/// Why a change reason was refused (the API answers `invalid_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("reason is at most 500 characters")]
    TooLong,
    #[error("reason must not contain control characters")]
    ControlCharacter,
}

impl ChangeReason {
    pub const MAX_CHARS: usize = 500;

    /// `Ok(None)` for blank text.
    pub fn parse(text: &str) -> Result<Option<Self>, ReasonError> {
        let t = text.trim();
        if t.is_empty() {
            Ok(None)
        } else if t.chars().count() > Self::MAX_CHARS {
            Err(ReasonError::TooLong)
        } else if t.chars().any(char::is_control) {
            Err(ReasonError::ControlCharacter)
        } else {
            Ok(Some(ChangeReason(t.to_owned())))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::CardAction::*;
    use super::CardStatus::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_change_reason_is_trimmed_bounded_and_printable() {
        assert_eq!(ChangeReason::parse("  \t "), Ok(None));
        assert_eq!(
            ChangeReason::parse(" lost phone ")
                .unwrap()
                .unwrap()
                .as_str(),
            "lost phone"
        );
        let at_most = "字".repeat(ChangeReason::MAX_CHARS);
        assert!(ChangeReason::parse(&at_most).unwrap().is_some());
        assert_eq!(
            ChangeReason::parse(&format!("{at_most}字")),
            Err(ReasonError::TooLong)
        );
        assert_eq!(
            ChangeReason::parse("lost\u{7}phone"),
            Err(ReasonError::ControlCharacter)
        );
    }

    #[test]
    fn the_whole_transition_table() {
        let table = [
            (Active, Suspend, Ok(Suspended)),
            (Active, Reinstate, Err("card_not_suspended")),
            (Active, Revoke, Ok(Revoked)),
            (Active, Reissue, Ok(Replaced)),
            (Suspended, Suspend, Err("card_already_suspended")),
            (Suspended, Reinstate, Ok(Active)),
            (Suspended, Revoke, Ok(Revoked)),
            (Suspended, Reissue, Ok(Replaced)),
        ];
        for (from, action, want) in table {
            assert_eq!(
                from.apply(action).map_err(|e| e.code()),
                want,
                "{from} {action}"
            );
        }
        for action in CardAction::ALL {
            assert_eq!(Revoked.apply(action).unwrap_err().code(), "card_revoked");
            assert_eq!(Replaced.apply(action).unwrap_err().code(), "card_replaced");
        }
    }

    #[test]
    fn slots_and_text() {
        assert!(Active.holds_slot() && Suspended.holds_slot());
        assert!(!Revoked.holds_slot() && !Replaced.holds_slot());
        for s in CardStatus::ALL {
            assert_eq!(s.as_str().parse::<CardStatus>().unwrap(), s);
        }
        for a in CardAction::ALL {
            assert_eq!(a.as_str().parse::<CardAction>().unwrap(), a);
        }
    }

    proptest! {
        /// Whatever sequence of actions is tried, a final status never changes
        /// again and the result always matches holds_slot's view.
        #[test]
        fn final_states_stay_final(actions in prop::collection::vec(0usize..4, 0..20)) {
            let mut s = Active;
            for i in actions {
                let before = s;
                if let Ok(next) = s.apply(CardAction::ALL[i]) {
                    prop_assert!(before.holds_slot());
                    s = next;
                }
                if !before.holds_slot() {
                    prop_assert_eq!(s, before);
                }
            }
        }
    }
}
