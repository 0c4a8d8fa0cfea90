//! Asymmetric signing keys: each tenant signs its tokens with its own active key (EdDSA over
//! Ed25519, or ES256 over P-256) and publishes the public halves as a JWKS, so that other services
//! verify its tokens without being able to mint them.
//!
//! A key goes `next` (published, signs nothing) → `active` (signs; one per tenant) → `retired`
//! (still verifies the tokens it signed) → deleted. A tenant without an active key signs with
//! the shared HS256 secret (`JWT_SECRET`), as before keys existed.
//!
//! - `generate` makes a key pair: the private half as PKCS#8 DER (sealed by the caller before it
//!   is stored), the public half as a JWK.
//! - `KeyRing` is a tenant's keys ready for use: the active signing key, every published key by
//!   `kid` for verification, and the JWKS document. The token codec signs and verifies with it
//!   (`token.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm as JwkAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::newtypes::TenantId;
use crate::secret::fill_random;
use crate::AuthError;

/// The algorithms a key can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// EdDSA over Ed25519 (RFC 8037): small, fast, deterministic signatures.
    EdDSA,
    /// ECDSA over P-256 with SHA-256 (RFC 7518 §3.4): the most widely supported asymmetric JWS
    /// algorithm after RS256.
    ES256,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDSA => "EdDSA",
            KeyAlgorithm::ES256 => "ES256",
        }
    }

    /// `EdDSA` or `ES256` (as written in a JWT header).
    pub fn parse(value: &str) -> Option<KeyAlgorithm> {
        match value {
            "EdDSA" => Some(KeyAlgorithm::EdDSA),
            "ES256" => Some(KeyAlgorithm::ES256),
            _ => None,
        }
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
            KeyAlgorithm::ES256 => Algorithm::ES256,
        }
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published in the JWKS ahead of use, so that verifiers have it before any token does.
    Next,
    /// Signs the tenant's tokens (at most one per tenant).
    Active,
    /// No longer signs; still verifies the tokens it signed until they expire.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    pub fn parse(value: &str) -> Option<KeyState> {
        match value {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

/// A key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub tenant: TenantId,
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub state: KeyState,
    /// The private half, PKCS#8 DER, sealed (`secret::SecretBox`, context `signing-key:<kid>`).
    pub private_sealed: String,
    /// The public half: a JWK (JSON) with `kid`, `alg` and `use: sig`.
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    /// When the key entered its state.
    pub state_since: DateTime<Utc>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("tenant", &self.tenant)
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("state_since", &self.state_since)
            .finish_non_exhaustive()
    }
}

/// The sealing context of a key's private half: it opens for that key only.
pub fn sealing_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// A new key pair. `Debug` shows no private material.
pub struct KeyPair {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    /// PKCS#8 DER of the private key.
    pub private_der: Vec<u8>,
    /// The public JWK (JSON).
    pub public_jwk: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("kid", &self.kid).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl Drop for KeyPair {
    fn drop(&mut self) {
        self.private_der.iter_mut().for_each(|b| *b = 0);
    }
}

/// PKCS#8 v1 (RFC 8410) of an Ed25519 private key: this prefix, then the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// A fresh key pair of `algorithm`, with a random `kid`.
pub fn generate(algorithm: KeyAlgorithm) -> Result<KeyPair, AuthError> {
    let mut seed = [0u8; 32];
    let private_der = match algorithm {
        KeyAlgorithm::EdDSA => {
            fill_random(&mut seed)?;
            let mut der = ED25519_PKCS8_PREFIX.to_vec();
            der.extend_from_slice(&seed);
            der
        }
        KeyAlgorithm::ES256 => {
            use p256::pkcs8::EncodePrivateKey as _;
            // A uniformly random scalar: the rare value outside [1, n) is drawn again.
            let secret = loop {
                fill_random(&mut seed)?;
                if let Ok(secret) = p256::SecretKey::from_slice(&seed) {
                    break secret;
                }
            };
            secret.to_pkcs8_der().map_err(|e| AuthError::unexpected("encoding a P-256 key", e))?.as_bytes().to_vec()
        }
    };
    seed.iter_mut().for_each(|b| *b = 0);
    let mut id = [0u8; 12];
    fill_random(&mut id)?;
    let kid = hex::encode(id);
    let public_jwk = public_jwk(&kid, algorithm, &private_der)?;
    Ok(KeyPair { kid, algorithm, private_der, public_jwk })
}

fn encoding_key(algorithm: KeyAlgorithm, private_der: &[u8]) -> EncodingKey {
    match algorithm {
        KeyAlgorithm::EdDSA => EncodingKey::from_ed_der(private_der),
        KeyAlgorithm::ES256 => EncodingKey::from_ec_der(private_der),
    }
}

/// The public JWK of a private key, with `kid`, `alg` and `use: sig`.
fn public_jwk(kid: &str, algorithm: KeyAlgorithm, private_der: &[u8]) -> Result<String, AuthError> {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(algorithm, private_der), algorithm.jwt())
        .map_err(|e| AuthError::unexpected("deriving the public key", e))?;
    jwk.common.key_id = Some(kid.to_string());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(match algorithm {
        KeyAlgorithm::EdDSA => JwkAlgorithm::EdDSA,
        KeyAlgorithm::ES256 => JwkAlgorithm::ES256,
    });
    serde_json::to_string(&jwk).map_err(|e| AuthError::unexpected("encoding a JWK", e))
}

/// The SubjectPublicKeyInfo prefix (RFC 8410) of an Ed25519 public key, before its 32 bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The public key of a JWK as PEM (SubjectPublicKeyInfo): what verifiers configured with a key
/// file take, such as Medusa's `http.jwtPublicKey`.
pub fn public_pem(public_jwk: &str) -> Result<String, AuthError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let bad = |e: &dyn std::fmt::Display| AuthError::unexpected("reading a public key", e);
    let jwk: serde_json::Value = serde_json::from_str(public_jwk).map_err(|e| bad(&e))?;
    let coordinate = |name: &str| -> Result<Vec<u8>, AuthError> {
        let text = jwk[name].as_str().ok_or_else(|| bad(&format!("no {name}")))?;
        URL_SAFE_NO_PAD.decode(text).map_err(|e| bad(&e))
    };
    let der = match jwk["kty"].as_str() {
        Some("OKP") => {
            let mut der = ED25519_SPKI_PREFIX.to_vec();
            der.extend_from_slice(&coordinate("x")?);
            der
        }
        Some("EC") => {
            use p256::elliptic_curve::sec1::FromEncodedPoint as _;
            use p256::pkcs8::EncodePublicKey as _;
            let (x, y) = (coordinate("x")?, coordinate("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(bad(&"a P-256 coordinate is 32 bytes"));
            }
            let point = p256::EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
            let key = Option::<p256::PublicKey>::from(p256::PublicKey::from_encoded_point(&point))
                .ok_or_else(|| bad(&"not a point of P-256"))?;
            key.to_public_key_der().map_err(|e| bad(&e))?.as_bytes().to_vec()
        }
        other => return Err(bad(&format!("key type {other:?}"))),
    };
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    Ok(format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n")))
}

/// A key that verifies.
#[derive(Clone)]
pub struct VerifyingKey {
    pub algorithm: KeyAlgorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// A tenant's keys, ready to sign and verify. Empty: the tenant signs with the HS256 secret.
#[derive(Clone, Default)]
pub struct KeyRing {
    signing: Option<(String, KeyAlgorithm, EncodingKey)>,
    verifying: HashMap<String, VerifyingKey>,
    /// The published keys, in the order of the JWKS (active, next, retired; newest first).
    published: Vec<Jwk>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing", &self.signing.as_ref().map(|(kid, alg, _)| (kid, alg)))
            .field("verifying", &self.verifying.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PartialEq for KeyRing {
    fn eq(&self, other: &KeyRing) -> bool {
        self.signing.as_ref().map(|s| &s.0) == other.signing.as_ref().map(|s| &s.0) && self.published == other.published
    }
}

impl Eq for KeyRing {}

impl KeyRing {
    /// The keys of `records` (one tenant's), the private half of the active one opened by `open`
    /// (sealed text → PKCS#8 DER). A key whose public half does not parse is an error.
    pub fn from_records(
        records: &[SigningKeyRecord],
        open: impl Fn(&SigningKeyRecord) -> Result<Vec<u8>, AuthError>,
    ) -> Result<KeyRing, AuthError> {
        let mut ring = KeyRing::default();
        let mut ordered: Vec<&SigningKeyRecord> = records.iter().collect();
        let rank = |s: KeyState| match s {
            KeyState::Active => 0,
            KeyState::Next => 1,
            KeyState::Retired => 2,
        };
        ordered.sort_by(|a, b| rank(a.state).cmp(&rank(b.state)).then(b.created_at.cmp(&a.created_at)));
        for record in ordered {
            let jwk: Jwk = serde_json::from_str(&record.public_jwk)
                .map_err(|e| AuthError::unexpected(&format!("the public key {}", record.kid), e))?;
            let key = DecodingKey::from_jwk(&jwk)
                .map_err(|e| AuthError::unexpected(&format!("the public key {}", record.kid), e))?;
            ring.verifying.insert(record.kid.clone(), VerifyingKey { algorithm: record.algorithm, key });
            ring.published.push(jwk);
            if record.state == KeyState::Active && ring.signing.is_none() {
                let mut der = open(record)?;
                let key = encoding_key(record.algorithm, &der);
                der.iter_mut().for_each(|b| *b = 0);
                ring.signing = Some((record.kid.clone(), record.algorithm, key));
            }
        }
        Ok(ring)
    }

    /// Whether the tenant has no published key (it signs and verifies with HS256 only).
    pub fn is_empty(&self) -> bool {
        self.verifying.is_empty()
    }

    /// The active key: its `kid`, algorithm and key; `None` when the tenant signs with HS256.
    pub fn signing(&self) -> Option<(&str, KeyAlgorithm, &EncodingKey)> {
        self.signing.as_ref().map(|(kid, alg, key)| (kid.as_str(), *alg, key))
    }

    /// The published key `kid`.
    pub fn verifying(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }

    /// The JWKS document (`{"keys": [...]}`): public keys only.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.published.clone() }
    }

    /// The algorithms of the published keys, sorted.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algorithms: Vec<&'static str> = Vec::new();
        for key in self.verifying.values() {
            if !algorithms.contains(&key.algorithm.as_str()) {
                algorithms.push(key.algorithm.as_str());
            }
        }
        algorithms.sort_unstable();
        algorithms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pair: &KeyPair, state: KeyState, at: i64) -> SigningKeyRecord {
        SigningKeyRecord {
            tenant: TenantId::default_tenant(),
            kid: pair.kid.clone(),
            algorithm: pair.algorithm,
            state,
            private_sealed: hex::encode(&pair.private_der),
            public_jwk: pair.public_jwk.clone(),
            created_at: DateTime::from_timestamp(at, 0).unwrap(),
            state_since: DateTime::from_timestamp(at, 0).unwrap(),
        }
    }

    fn open(record: &SigningKeyRecord) -> Result<Vec<u8>, AuthError> {
        hex::decode(&record.private_sealed).map_err(|e| AuthError::unexpected("hex", e))
    }

    #[test]
    fn generated_keys_sign_and_their_public_half_verifies() {
        for algorithm in [KeyAlgorithm::EdDSA, KeyAlgorithm::ES256] {
            let pair = generate(algorithm).unwrap();
            assert!(!format!("{pair:?}").contains(&hex::encode(&pair.private_der)));
            let jwk: serde_json::Value = serde_json::from_str(&pair.public_jwk).unwrap();
            assert_eq!(jwk["kid"], pair.kid.as_str());
            assert_eq!(jwk["alg"], algorithm.as_str());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk.get("d").is_none(), "no private part: {jwk}");
            let ring = KeyRing::from_records(&[record(&pair, KeyState::Active, 1)], open).unwrap();
            let (kid, alg, key) = ring.signing().unwrap();
            let mut header = jsonwebtoken::Header::new(alg.jwt());
            header.kid = Some(kid.to_string());
            let token = jsonwebtoken::encode(&header, &serde_json::json!({"sub": "x"}), key).unwrap();
            let verifying = ring.verifying(kid).unwrap();
            let mut validation = jsonwebtoken::Validation::new(alg.jwt());
            validation.required_spec_claims.clear();
            jsonwebtoken::decode::<serde_json::Value>(&token, &verifying.key, &validation).unwrap();
        }
    }

    #[test]
    fn public_keys_print_as_subject_public_key_info() {
        use p256::pkcs8::DecodePublicKey as _;
        let es = generate(KeyAlgorithm::ES256).unwrap();
        let pem = public_pem(&es.public_jwk).unwrap();
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && pem.ends_with("-----END PUBLIC KEY-----\n"),
            "{pem}"
        );
        p256::PublicKey::from_public_key_pem(&pem).unwrap();
        let ed = generate(KeyAlgorithm::EdDSA).unwrap();
        let pem = public_pem(&ed.public_jwk).unwrap();
        assert_eq!(pem.lines().count(), 3, "{pem}");
        assert!(public_pem(r#"{"kty":"oct","k":"c2VjcmV0"}"#).is_err(), "never a secret key");
    }

    #[test]
    fn the_ring_signs_with_the_active_key_and_publishes_every_state() {
        let (old, active, next) = (
            generate(KeyAlgorithm::ES256).unwrap(),
            generate(KeyAlgorithm::EdDSA).unwrap(),
            generate(KeyAlgorithm::EdDSA).unwrap(),
        );
        let records = [
            record(&old, KeyState::Retired, 1),
            record(&next, KeyState::Next, 3),
            record(&active, KeyState::Active, 2),
        ];
        let ring = KeyRing::from_records(&records, open).unwrap();
        assert_eq!(ring.signing().unwrap().0, active.kid);
        let kids: Vec<String> = ring.jwks().keys.iter().map(|k| k.common.key_id.clone().unwrap()).collect();
        assert_eq!(kids, [active.kid.clone(), next.kid.clone(), old.kid.clone()]);
        assert_eq!(ring.algorithms(), ["ES256", "EdDSA"]);
        let only_next = KeyRing::from_records(&[record(&next, KeyState::Next, 3)], open).unwrap();
        assert!(only_next.signing().is_none(), "a next key signs nothing");
        assert!(only_next.verifying(&next.kid).is_some());
    }
}
