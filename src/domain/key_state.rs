//! A signing key's place in its life, shared by the token core (which key
//! signs, which still verify) and the store (the `state` column's text).

use std::fmt;
use std::str::FromStr;

/// Where a key stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new tokens (one at a time) and verifies.
    Active,
    /// Signs nothing new; verifies until its tokens have expired. Still published.
    Retired,
    /// Compromised or withdrawn: its tokens are refused (`key_revoked`); not published.
    Revoked,
}

impl KeyState {
    /// `"active"`, `"retired"` or `"revoked"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not a key state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key state (expected active, retired or revoked)")]
pub struct UnknownKeyState;

impl FromStr for KeyState {
    type Err = UnknownKeyState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(KeyState::Active),
            "retired" => Ok(KeyState::Retired),
            "revoked" => Ok(KeyState::Revoked),
            _ => Err(UnknownKeyState),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_state_text() {
        for s in [KeyState::Active, KeyState::Retired, KeyState::Revoked] {
            assert_eq!(s.as_str().parse::<KeyState>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert!("gone".parse::<KeyState>().is_err());
        assert!("Active".parse::<KeyState>().is_err());
    }
}
