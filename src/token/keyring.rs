//! The key ring: one active signing key and the verifying keys with their state.

use uuid::Uuid;

use super::claims::{Claims, TokenKind};
use super::keys::{KeyError, Kid, SigningKey, VerifyingKey};
use crate::domain::KeyState;

/// A freshly minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedToken {
    /// The `EHC1:` text to put in a QR code.
    pub text: String,
    /// What it says.
    pub claims: Claims,
    /// The key that signed it.
    pub kid: Kid,
}

/// Signing and verification keys of one issuer, of any mix of algorithms.
/// Clone is cheap: the keys are shared.
#[derive(Debug, Clone)]
pub struct KeyRing {
    issuer: String,
    active: Option<SigningKey>,
    /// In the order added; a short list, so a linear search beats hashing.
    verifiers: Vec<(VerifyingKey, KeyState)>,
}

impl KeyRing {
    /// An empty ring for `issuer` (the `iss` claim of what it mints).
    pub fn new(issuer: impl Into<String>) -> KeyRing {
        KeyRing {
            issuer: issuer.into(),
            active: None,
            verifiers: Vec::new(),
        }
    }

    /// Makes `key` the signing key and registers it as an active verifier.
    /// A previous active key stays as a verifier, marked `Retired` (rotation).
    pub fn set_active(&mut self, key: SigningKey) {
        if let Some(old) = self.active.take() {
            if old.kid() != key.kid() {
                self.add_verifier(old.verifying_key(), KeyState::Retired);
            }
        }
        self.add_verifier(key.verifying_key(), KeyState::Active);
        self.active = Some(key);
    }

    /// Adds a verifying key, or changes the state of one already known.
    /// Revoking the active signing key also stops the ring minting with it.
    pub fn add_verifier(&mut self, key: VerifyingKey, state: KeyState) {
        let kid = key.kid();
        match self.verifiers.iter_mut().find(|(k, _)| k.kid() == kid) {
            Some(entry) => *entry = (key, state),
            None => self.verifiers.push((key, state)),
        }
        if state != KeyState::Active && self.active.as_ref().is_some_and(|a| *a.kid() == kid) {
            self.active = None;
        }
    }

    /// The signing key, if any.
    pub fn active(&self) -> Option<&SigningKey> {
        self.active.as_ref()
    }

    /// The `iss` this ring mints with.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The verifying key named `kid` and its state.
    pub fn verifier(&self, kid: &Kid) -> Option<(&VerifyingKey, KeyState)> {
        self.verifiers
            .iter()
            .find(|(k, _)| k.kid() == *kid)
            .map(|(k, s)| (k, *s))
    }

    /// Every verifying key with its state, in the order added.
    pub fn verifiers(&self) -> impl Iterator<Item = (&VerifyingKey, KeyState)> {
        self.verifiers.iter().map(|(k, s)| (k, *s))
    }

    /// Mints a token for `card_id` with the active key.
    pub fn mint(
        &self,
        card_id: Uuid,
        kind: TokenKind,
        now: i64,
        lifetime_secs: i64,
    ) -> Result<MintedToken, KeyError> {
        let key = self.active.as_ref().ok_or(KeyError::NoActiveKey)?;
        let claims = Claims::new(&self.issuer, card_id, kind, now, lifetime_secs);
        Ok(MintedToken {
            text: super::mint(key, &claims)?,
            claims,
            kid: *key.kid(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_retires_the_old_key_and_revocation_stops_minting() {
        let mut ring = KeyRing::new("HC");
        assert_eq!(
            ring.mint(Uuid::nil(), TokenKind::Static, 0, 1).unwrap_err(),
            KeyError::NoActiveKey
        );
        let k1 = SigningKey::generate();
        let k2 = SigningKey::generate_alg(crate::token::Alg::Sm2);
        ring.set_active(k1.clone());
        ring.set_active(k2.clone());
        assert_eq!(ring.verifier(k1.kid()).unwrap().1, KeyState::Retired);
        assert_eq!(ring.verifier(k2.kid()).unwrap().1, KeyState::Active);
        assert_eq!(ring.active().unwrap().kid(), k2.kid());
        ring.add_verifier(k2.verifying_key(), KeyState::Revoked);
        assert!(ring.active().is_none());
        assert_eq!(ring.verifiers().count(), 2);
    }
}
