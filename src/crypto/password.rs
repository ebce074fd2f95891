use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::{random_bytes, CryptoError};

/// Argon2id (the crate's defaults: 19 MiB, t=2, p=1) in PHC string form.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|_| CryptoError::Password)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::Password)
}

/// Checks `password` against a PHC string; a malformed stored hash is a failure, not a panic.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
