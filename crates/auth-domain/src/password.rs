//! Passwords: the policy a new password must meet, and bcrypt hashing.

use std::fmt;

use crate::AuthError;

/// bcrypt reads at most 72 bytes; longer input is refused rather than silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// A plain-text password. Its `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password without checking the policy (for login, which never reveals the policy).
    pub fn unchecked(raw: String) -> Password {
        Password(raw)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// What a password must satisfy where a credential is created (register, update).
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Minimum length in Unicode scalar values.
    pub min_length: usize,
    /// Minimum strength score (0..=4) of a strength estimator; 0 accepts anything the length
    /// rules accept.
    pub min_strength: u8,
}

impl PasswordPolicy {
    pub fn check(&self, raw: String) -> Result<Password, AuthError> {
        self.check_field(raw, "password")
    }

    /// As `check`, naming `field` in the message (e.g. `new_password`).
    pub fn check_field(&self, raw: String, field: &str) -> Result<Password, AuthError> {
        let chars = raw.chars().count();
        if chars < self.min_length {
            return Err(AuthError::InvalidData(format!(
                "Invalid request: Field '{field}' must be at least {} characters long",
                self.min_length
            )));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::InvalidData(format!(
                "Invalid request: Field '{field}' must be at most {MAX_PASSWORD_BYTES} bytes of UTF-8"
            )));
        }
        Ok(Password(raw))
    }
}

/// bcrypt at a configured cost, with a dummy hash of the same cost so that a login for an
/// unknown email costs what a wrong password costs.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    dummy_hash: String,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher").field("cost", &self.cost).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Builds a hasher; computes the dummy hash (one hash at `cost`).
    pub fn new(cost: u32) -> Result<PasswordHasher, AuthError> {
        if !(4..=31).contains(&cost) {
            return Err(AuthError::Unexpected(format!("bcrypt cost {cost} is outside 4..=31")));
        }
        let mut filler = [0u8; 24];
        crate::secret::fill_random(&mut filler)?;
        let dummy_hash = bcrypt::hash(hex::encode(filler), cost).map_err(|e| AuthError::unexpected("bcrypt", e))?;
        Ok(PasswordHasher { cost, dummy_hash })
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Hashes a password of at most 72 bytes. bcrypt reads exactly 72 bytes (its terminating
    /// NUL falls off at 72), so nothing the user typed is ignored; longer input is refused.
    /// (`bcrypt::non_truncating_*` would refuse 72 bytes too, which the policy allows.)
    pub fn hash(&self, password: &Password) -> Result<String, AuthError> {
        if password.as_bytes().len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::Unexpected("a password over 72 bytes reached the hasher".into()));
        }
        bcrypt::hash(password.as_bytes(), self.cost).map_err(|e| AuthError::unexpected("bcrypt", e))
    }

    /// Whether `password` matches `hash`. Input bcrypt cannot take (over 72 bytes) or an
    /// unreadable stored hash never matches, and costs a verification all the same.
    pub fn verify(&self, password: &Password, hash: &str) -> bool {
        if password.as_bytes().len() > MAX_PASSWORD_BYTES {
            self.verify_dummy(password);
            return false;
        }
        match bcrypt::verify(password.as_bytes(), hash) {
            Ok(matches) => matches,
            Err(_) => {
                self.verify_dummy(password);
                false
            }
        }
    }

    /// Spends one verification at the configured cost and discards the result.
    pub fn verify_dummy(&self, password: &Password) {
        let bytes = password.as_bytes();
        let _ = bcrypt::verify(&bytes[..bytes.len().min(MAX_PASSWORD_BYTES)], &self.dummy_hash);
    }

    /// Whether a stored hash was made at another cost (and should be replaced after a login).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        hash.parse::<bcrypt::HashParts>().map(|p| p.get_cost() != self.cost).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy { min_length: 8, min_strength: 0 }
    }

    #[test]
    fn length_counts_characters_and_caps_bytes() {
        assert!(policy().check("short".into()).is_err());
        assert!(policy().check("ééééééé".into()).is_err(), "7 characters, 14 bytes");
        assert!(policy().check("éééééééé".into()).is_ok(), "8 characters");
        assert!(policy().check("a".repeat(72)).is_ok());
        let err = policy().check("a".repeat(73)).unwrap_err();
        assert!(err.to_string().contains("72 bytes"));
        assert!(policy().check("€".repeat(25)).is_err(), "25 characters but 75 bytes");
    }

    #[test]
    fn debug_never_prints_the_password() {
        let p = Password::unchecked("hunter2hunter2".into());
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn hashes_verify_and_detect_other_costs() {
        let hasher = PasswordHasher::new(4).unwrap();
        let p = Password::unchecked("correct horse".into());
        let hash = hasher.hash(&p).unwrap();
        assert!(hasher.verify(&p, &hash));
        assert!(!hasher.verify(&Password::unchecked("wrong horse".into()), &hash));
        assert!(!hasher.verify(&p, "not a hash"));
        assert!(!hasher.needs_rehash(&hash));
        assert!(PasswordHasher::new(5).unwrap().needs_rehash(&hash));
    }

    #[test]
    fn long_input_never_matches_a_truncated_prefix() {
        let hasher = PasswordHasher::new(4).unwrap();
        let base = "a".repeat(72);
        let hash = hasher.hash(&Password::unchecked(base.clone())).unwrap();
        assert!(hasher.verify(&Password::unchecked(base.clone()), &hash));
        assert!(!hasher.verify(&Password::unchecked("a".repeat(71)), &hash), "all 72 bytes count");
        assert!(!hasher.verify(&Password::unchecked(format!("{base}b")), &hash));
        assert!(hasher.hash(&Password::unchecked(format!("{base}b"))).is_err());
    }
}
