//! A new administrator password: long enough, not blank, and not one that a
//! guessing tool tries early. Guessability is zxcvbn's estimate (its
//! dictionaries of common passwords, names and words, keyboard patterns,
//! dates and repeats), not a hand-kept list.

use std::fmt;

/// Fewest characters (Unicode scalar values) a new password may have.
pub const MIN_CHARS: usize = 12;

/// The zxcvbn score a new password must reach: `Three`, an estimate of at
/// least 10^8 guesses (the zxcvbn crate's `Score` docs: `Two` is "10^8
/// guesses or less"), far past what sign-in throttling lets anyone try online.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// A password that passed [`NewPassword::parse`]. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

/// Why a new password was refused; the message names the problem and never
/// repeats the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_CHARS} characters (it has {0})")]
    TooShort(usize),
    #[error("the password must not be only spaces")]
    Blank,
    #[error("the password is too easy to guess{}", hint(.warning, .suggestions))]
    Guessable {
        /// zxcvbn's warning, e.g. "This is a very common password."
        warning: Option<String>,
        suggestions: Vec<String>,
    },
}

fn hint(warning: &Option<String>, suggestions: &[String]) -> String {
    let mut parts: Vec<&str> = warning.iter().map(String::as_str).collect();
    parts.extend(suggestions.iter().map(String::as_str));
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(" "))
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

impl NewPassword {
    /// Checks `text` (taken as typed: no trimming) for the account `username`,
    /// which zxcvbn also counts as an easy guess.
    pub fn parse(text: &str, username: &str) -> Result<NewPassword, PasswordError> {
        let n = text.chars().count();
        if n < MIN_CHARS {
            return Err(PasswordError::TooShort(n));
        }
        if text.chars().all(char::is_whitespace) {
            return Err(PasswordError::Blank);
        }
        let estimate = zxcvbn::zxcvbn(text, &[username, "healthcard", "admin"]);
        if estimate.score() < MIN_SCORE {
            let feedback = estimate.feedback();
            return Err(PasswordError::Guessable {
                warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
                suggestions: feedback
                    .map(|f| f.suggestions().iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
            });
        }
        Ok(NewPassword(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_blank_and_common_passwords_are_refused() {
        assert_eq!(
            NewPassword::parse("short", "root"),
            Err(PasswordError::TooShort(5))
        );
        assert_eq!(
            NewPassword::parse("              ", "root"),
            Err(PasswordError::Blank)
        );
        for common in [
            "password1234",
            "123456789012",
            "qwertyuiopasdf",
            "passwordpassword",
            "rootroot1234",
        ] {
            let r = NewPassword::parse(common, "root");
            assert!(
                matches!(r, Err(PasswordError::Guessable { .. })),
                "{common}: {r:?}"
            );
        }
        let msg = NewPassword::parse("password1234", "root")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("the password is too easy to guess"),
            "{msg}"
        );
        assert!(
            !msg.contains("password1234"),
            "the message does not repeat it"
        );
    }

    #[test]
    fn long_uncommon_passwords_pass_and_stay_hidden() {
        for good in [
            "correct horse battery",
            "correct horse battery staple",
            "Ginkgo-lantern-4417-harbor",
            "s3cret-passw0rd-Quokka",
        ] {
            let p = NewPassword::parse(good, "admin").unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(p.expose(), good);
            assert_eq!(format!("{p:?}"), "NewPassword([redacted])");
        }
    }
}
