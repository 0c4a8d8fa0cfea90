//! Randomness, token hashing and the encryption of secrets kept in the event outbox.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::AuthError;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), AuthError> {
    getrandom::fill(buf).map_err(|e| AuthError::unexpected("random number generator", e))
}

/// `bytes` random bytes, hex-encoded.
pub fn random_hex(bytes: usize) -> Result<String, AuthError> {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf)?;
    Ok(hex::encode(buf))
}

/// SHA-256 of `value`, hex-encoded: what the database keeps instead of a token.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

const SEALED_PREFIX: &str = "xa1.";
const NONCE_LEN: usize = 24;

/// Authenticated encryption (XChaCha20-Poly1305) of secrets that must wait in the database, such
/// as a reset token awaiting delivery. Keys are derived with HKDF-SHA256 from the JWT secret;
/// opening also tries the keys of the previous secrets, so a rotation does not strand events.
#[derive(Clone)]
pub struct SecretBox {
    keys: Vec<XChaCha20Poly1305>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox").field("keys", &self.keys.len()).finish()
    }
}

impl SecretBox {
    pub fn new(secret: &[u8], previous: &[Vec<u8>]) -> SecretBox {
        let keys = std::iter::once(secret).chain(previous.iter().map(Vec::as_slice)).map(derive_key).collect();
        SecretBox { keys }
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the event id): it opens only with the same.
    pub fn seal(&self, plaintext: &str, context: &str) -> Result<String, AuthError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let cipher = &self.keys[0];
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .map_err(|_| AuthError::Unexpected("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Decrypts what `seal` produced with the same `context`, trying each key.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, AuthError> {
        let undecryptable =
            || AuthError::Unexpected("a sealed secret could not be decrypted with any configured key".into());
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or_else(undecryptable)?;
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        self.keys
            .iter()
            .find_map(|k| {
                k.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() }).ok()
            })
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(undecryptable)
    }
}

fn derive_key(secret: &[u8]) -> XChaCha20Poly1305 {
    let hk = Hkdf::<Sha256>::new(Some(b"xclade-auth"), secret);
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit, so expand cannot fail.
    let _ = hk.expand(b"event-secret-v1", &mut key);
    XChaCha20Poly1305::new(&key.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_current_and_previous_keys() {
        let old = SecretBox::new(b"old secret", &[]);
        let sealed = old.seal("the token", "evt_1").unwrap();
        assert!(!sealed.contains("the token"));
        assert_eq!(old.open(&sealed, "evt_1").unwrap(), "the token");
        let rotated = SecretBox::new(b"new secret", &[b"old secret".to_vec()]);
        assert_eq!(rotated.open(&sealed, "evt_1").unwrap(), "the token");
        assert!(SecretBox::new(b"new secret", &[]).open(&sealed, "evt_1").is_err());
        assert!(old.open(&sealed, "evt_2").is_err(), "bound to its context");
        assert!(old.open("garbage", "evt_1").is_err());
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(random_hex(16).unwrap().len(), 32);
    }
}
