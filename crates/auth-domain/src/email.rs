//! Email addresses: the WHATWG `type=email` grammar and the lookup key.

use crate::newtypes::EntityKey;
use crate::AuthError;

/// The longest address accepted (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A syntactically valid address. `as_str` is the address as given (trimmed), which tokens,
/// events and links carry; `key` is the normalised form every lookup uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    key: EntityKey,
}

impl Email {
    /// Parses an address with the WHATWG `type=email` grammar (what browsers accept in an
    /// `<input type=email>`), after trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Email, AuthError> {
        let address = raw.trim();
        if address.is_empty() {
            return Err(AuthError::InvalidData("Invalid request: Field 'email' must not be empty".into()));
        }
        if address.len() > MAX_EMAIL_LEN || !is_valid_address(address) {
            return Err(AuthError::InvalidData("Invalid request: Field 'email' must be a valid email address".into()));
        }
        Ok(Email { address: address.to_string(), key: email_key(address) })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    pub fn key(&self) -> &EntityKey {
        &self.key
    }
}

/// The lookup key of an address or identifier: trimmed and lowercased. Used for any input,
/// valid or not, so that a lookup never reveals the policy. The one place an email becomes an
/// `EntityKey`.
pub fn email_key(raw: &str) -> EntityKey {
    EntityKey::new(raw.trim().to_lowercase())
}

fn is_valid_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty() && local.chars().all(is_local_char) && is_valid_domain(domain)
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c)
}

fn is_valid_domain(domain: &str) -> bool {
    !domain.is_empty() && domain.split('.').all(is_valid_label)
}

fn is_valid_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_browsers_accept() {
        for ok in ["a@b", "Ann.Lee+shop@Example.COM", "x_y@sub.example.co", "o'neil@example.com", "a@localhost"] {
            assert!(Email::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn refuses_what_browsers_refuse() {
        for bad in [
            "",
            "  ",
            "plain",
            "@example.com",
            "a@",
            "a@-x.com",
            "a@x-.com",
            "a@x..com",
            "a b@x.com",
            "a@b@c",
            "ä@x.com",
            "a@x_y.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn keeps_the_address_and_normalises_the_key() {
        let e = Email::parse("  Ann.Lee@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ann.Lee@Example.COM");
        assert_eq!(e.key(), "ann.lee@example.com");
        assert_eq!(&email_key(" Ann.Lee@Example.COM"), e.key());
    }
}
