use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{random_bytes, sha256};

/// What a bearer secret is for. The prefix makes a leaked secret easy to
/// recognise (and to grep for in a repository) and stops one kind being
/// presented as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A clinic's API key.
    ApiKey,
    /// A card holder's credential.
    Holder,
    /// An administrator's session token.
    Session,
    /// A kiosk terminal's session token (in its cookie instead of the API key).
    KioskSession,
}

impl SecretKind {
    /// The fixed text prefix of this kind of secret.
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::ApiKey => "hck_",
            SecretKind::Holder => "hch_",
            SecretKind::Session => "hcs_",
            SecretKind::KioskSession => "hct_",
        }
    }
}

/// 32 random bytes, base64url without padding: 43 characters.
const BODY_LEN: usize = 43;

/// A secret in clear: exists only between generation and the one answer that
/// shows it, or between a request header and its hash. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

/// The SHA-256 of a secret's text: the only form that is stored. The secrets
/// carry 256 bits of randomness, so a fast hash is enough (no password stretching),
/// and look-up by hash through an index leaks nothing useful by its timing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken([redacted])")
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", hex::encode(&self.0[..4]))
    }
}

impl SecretToken {
    /// A fresh random secret of `kind`.
    pub fn generate(kind: SecretKind) -> Self {
        let body = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        SecretToken(format!("{}{}", kind.prefix(), body))
    }

    /// Accepts only text of the right prefix and shape; anything else is not a
    /// secret we could have issued, so it is refused before any look-up.
    pub fn parse(kind: SecretKind, text: &str) -> Option<Self> {
        let body = text.strip_prefix(kind.prefix())?;
        if body.len() != BODY_LEN
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        Some(SecretToken(text.to_owned()))
    }

    /// The clear text, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form.
    pub fn hash(&self) -> SecretHash {
        SecretHash(sha256(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_only_as_their_kind() {
        let s = SecretToken::generate(SecretKind::ApiKey);
        assert!(s.expose().starts_with("hck_"));
        assert_eq!(
            SecretToken::parse(SecretKind::ApiKey, s.expose()),
            Some(s.clone())
        );
        assert_eq!(SecretToken::parse(SecretKind::Holder, s.expose()), None);
        assert_eq!(SecretToken::parse(SecretKind::ApiKey, "hck_short"), None);
        assert_eq!(SecretToken::parse(SecretKind::ApiKey, ""), None);
        let bad = format!("{}!", &s.expose()[..s.expose().len() - 1]);
        assert_eq!(SecretToken::parse(SecretKind::ApiKey, &bad), None);
        assert_ne!(s, SecretToken::generate(SecretKind::ApiKey));
        assert!(!format!("{s:?}").contains(&s.expose()[4..]));
        assert_eq!(
            s.hash(),
            SecretToken::parse(SecretKind::ApiKey, s.expose())
                .unwrap()
                .hash()
        );
    }
}
