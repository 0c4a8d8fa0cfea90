//! Randomness, token hashing and the encryption of secrets kept in the event outbox.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
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

/// A secret that identifies something once presented: a session id, the `jti` of a reset token
/// (crates.io's `PlainToken`). It is never stored and never printed: the only way to what the
/// database keeps is `hashed`, and `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainToken(String);

impl PlainToken {
    /// `bytes` fresh random bytes, hex-encoded.
    pub fn random(bytes: usize) -> Result<PlainToken, AuthError> {
        random_hex(bytes).map(PlainToken)
    }

    /// A token as presented (a cookie's value, a verified claim).
    pub fn new(value: impl Into<String>) -> PlainToken {
        PlainToken(value.into())
    }

    /// Its SHA-256: what the database keeps and looks up.
    pub fn hashed(&self) -> HashedToken {
        HashedToken(sha256_hex(&self.0))
    }

    /// The token itself, to hand to its owner (a cookie, a claim). Nowhere else.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainToken([redacted])")
    }
}

/// The SHA-256 (hex) of a `PlainToken` (crates.io's `HashedToken`): the id of a stored session,
/// the `token_hash` of a stored reset token. Made only by `PlainToken::hashed`. `Debug` prints
/// nothing of it either: it names a live session.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HashedToken(String);

impl HashedToken {
    /// The hex digest, for the store's queries.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HashedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashedToken([redacted])")
    }
}

const SEALED_PREFIX: &str = "xa1.";
const NONCE_LEN: usize = 24;

/// Authenticated encryption (XChaCha20-Poly1305) of secrets that must wait in the database, such
/// as a reset token awaiting delivery. Keys are derived with HKDF-SHA256 from the JWT secret;
/// opening also tries the keys of the previous secrets, so a rotation does not strand events.
///
/// It also keys two HMACs derived the same way (each under a label of its own, so no key serves
/// two purposes): `keyed_hash`, which names rate-limit buckets without storing an email or an
/// address, and `device_mac`, which signs device cookies.
#[derive(Clone)]
pub struct SecretBox {
    keys: Vec<XChaCha20Poly1305>,
    /// The HMAC key of `keyed_hash` (the current secret only: buckets start afresh after a
    /// rotation, which changes no decision for long).
    bucket_key: [u8; 32],
    /// The HMAC keys of `device_mac`: the current secret's first, then the previous ones'.
    device_keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox").field("keys", &self.keys.len()).finish()
    }
}

impl SecretBox {
    pub fn new(secret: &[u8], previous: &[Vec<u8>]) -> SecretBox {
        let all = || std::iter::once(secret).chain(previous.iter().map(Vec::as_slice));
        SecretBox {
            keys: all().map(derive_key).collect(),
            bucket_key: derive_bytes(secret, b"rate-limit-key-v1"),
            device_keys: all().map(|s| derive_bytes(s, b"device-cookie-v1")).collect(),
        }
    }

    /// HMAC-SHA256 of `value` under the server's bucket key, hex-encoded: the name of a
    /// rate-limit bucket. Without the secret, a stored name cannot be matched to an email or an
    /// address, not even by hashing guesses.
    pub fn keyed_hash(&self, value: &str) -> String {
        hex::encode(hmac_sha256(&self.bucket_key, value.as_bytes()))
    }

    /// HMAC-SHA256 of `message` under the current device-cookie key.
    pub fn device_mac(&self, message: &str) -> [u8; 32] {
        hmac_sha256(&self.device_keys[0], message.as_bytes())
    }

    /// Whether `mac` is the HMAC of `message` under the current or a previous device-cookie key
    /// (compared in constant time).
    pub fn device_mac_matches(&self, message: &str, mac: &[u8]) -> bool {
        self.device_keys.iter().any(|key| {
            <Hmac<Sha256> as Mac>::new_from_slice(key).is_ok_and(|mut check| {
                check.update(message.as_bytes());
                check.verify_slice(mac).is_ok()
            })
        })
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

fn derive_bytes(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"xclade-auth"), secret);
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
    let _ = hk.expand(label, &mut key);
    key
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: `new_from_slice` cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map(|mut mac| {
            mac.update(message);
            mac.finalize().into_bytes().into()
        })
        .unwrap_or_default()
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
    fn keyed_hashes_and_device_macs_need_the_secret() {
        let a = SecretBox::new(b"secret a", &[]);
        let b = SecretBox::new(b"secret b", &[b"secret a".to_vec()]);
        assert_eq!(a.keyed_hash("x"), a.keyed_hash("x"));
        assert_ne!(a.keyed_hash("x"), b.keyed_hash("x"), "keyed by the current secret");
        assert_ne!(a.keyed_hash("x"), sha256_hex("x"));
        assert_eq!(a.keyed_hash("x").len(), 64);
        let mac = a.device_mac("m");
        assert!(a.device_mac_matches("m", &mac));
        assert!(b.device_mac_matches("m", &mac), "a previous secret still opens");
        assert!(!a.device_mac_matches("n", &mac));
        assert!(!SecretBox::new(b"secret c", &[]).device_mac_matches("m", &mac));
        assert_ne!(&a.device_mac("m")[..], &hex::decode(a.keyed_hash("m")).unwrap()[..], "two keys");
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(random_hex(16).unwrap().len(), 32);
    }

    #[test]
    fn plain_tokens_cross_to_their_hash_only_by_hashing_and_print_nothing() {
        let plain = PlainToken::new("abc");
        assert_eq!(plain.hashed().as_str(), sha256_hex("abc"));
        assert_eq!(format!("{plain:?} {:?}", plain.hashed()), "PlainToken([redacted]) HashedToken([redacted])");
        let fresh = PlainToken::random(32).unwrap();
        assert_eq!(fresh.clone().into_exposed().len(), 64);
        assert_ne!(fresh.hashed(), PlainToken::random(32).unwrap().hashed());
    }
}
