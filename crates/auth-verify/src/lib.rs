//! Verifies Xclade Auth tokens in another service: the signature with the tenant's published
//! keys (its JWKS), then the claims. No network code: fetching and caching the JWKS is the
//! caller's (see `examples/orders-service`, whose `JwksCache` honours `Cache-Control: max-age`).
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use auth_verify::{Verifier, VerifierSettings};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (jwks_json, token) = ("{\"keys\": []}", "");
//! // GET https://acme.api.myxclade.com/.well-known/jwks.json, cached as its Cache-Control says.
//! let verifier = Verifier::from_jwks_json(jwks_json, VerifierSettings {
//!     issuer: "https://acme.api.myxclade.com".into(),
//!     audience: None,
//!     leeway: Duration::from_secs(30),
//!     tenant: Some("acme".into()),
//! })?;
//! let claims = verifier.verify(token, SystemTime::now())?;
//! println!("customer {} of {}", claims.actor_id, claims.tenant);
//! # Ok(()) }
//! ```
//!
//! # Why a crate of its own
//!
//! A service that only verifies tokens needs `jsonwebtoken`, `serde` and `serde_json`; it does not
//! need what Xclade Auth itself does with passwords, secrets and identifiers. Measured on the
//! workspace, normal dependencies only, the crate itself included:
//!
//! | crate | `cargo tree -p CRATE -e normal --prefix none \| sort -u \| wc -l` | distinct packages |
//! |---|---|---|
//! | `auth-domain` | 161 | 125 |
//! | `auth-verify` | 97 | 73 |
//! | `jsonwebtoken` 11.1 (`rust_crypto`) alone | | 70 |
//!
//! (The line count has a package twice when `cargo tree` also prints it as a repeat, marked
//! `(*)`; the distinct packages are the same lines with that mark removed: `sed 's/ (\*)$//'`.)
//!
//! The 52 packages (`auth-domain` itself aside) that `auth-domain` has and a verifier does not,
//! by the dependency of `auth-domain` that brings them in (counts include that dependency):
//!
//! - `zxcvbn` (password strength), 24: `fancy-regex`, `regex`, `regex-automata`, `regex-syntax`,
//!   `aho-corasick`, `itertools`, `either`, `derive_builder` (+ `_core`, `_macro`), `darling`
//!   (+ `_core`, `_macro`), `ident_case`, `strsim`, `fnv`, `bit-set`, `bit-vec`, `time`,
//!   `time-core`, `deranged`, `powerfmt`, `num-conv`;
//! - `bcrypt` (password hashing), 9: `blowfish`, `cipher` 0.5, `inout` 0.2, `crypto-common` 0.2,
//!   `hybrid-array`, `getrandom` 0.4, `base64` 0.23 (a second `base64`), `byteorder`;
//! - `chacha20poly1305` (sealed secrets), 8: `chacha20`, `poly1305`, `aead`, `universal-hash`,
//!   `cipher` 0.4, `inout` 0.1, `opaque-debug`;
//! - `ulid` (identifiers), 5: `rand` 0.9, `rand_chacha` 0.9, `rand_core` 0.9, `getrandom` 0.3
//!   (also a direct dependency);
//! - `chrono`, 2 (with `iana-time-zone`); `unicode-normalization` (passwords in NFKC), 2 (with
//!   `tinyvec`); `hex`, 1; `log`, 1.
//!
//! Almost everything left is `jsonwebtoken` itself (70 of the 73): its `rust_crypto` backend
//! brings every algorithm it knows (RSA, P-384, HMAC besides Ed25519 and P-256). `auth-verify`
//! adds `thiserror` (with `thiserror-impl`) and nothing else: `base64`, `serde` and `serde_json`
//! are in `jsonwebtoken`'s tree already.
//!
//! Decision: a small crate, `auth-verify`, with no dependency on `auth-domain` (it is a
//! dev-dependency only: the tests sign real tokens with the server's own code and keys). It
//! implements the rules of the server's own verification (`auth_domain::token::TokenCodec::
//! decode`) for the asymmetric keys; it never verifies HS256 (the shared secret is not for other
//! services).
//!
//! # Rules
//!
//! - The header must name a `kid`, and the key set must hold a usable key with that `kid`. Usable:
//!   `kty: OKP`, `crv: Ed25519`, `alg: EdDSA`, or `kty: EC`, `crv: P-256`, `alg: ES256`; with a
//!   public key of the right length; `use` absent or `sig`; `key_ops`, if present, including
//!   `verify`; no private part (`d`). Any other key (`oct`, RSA, one without `alg`) is ignored,
//!   never used, even under the `kid` of a usable one. Two usable keys with one `kid` are both
//!   ignored.
//! - The header's `alg` must be the key's: `HS256` signed with the public key as a secret, `none`
//!   or `ES256` under an EdDSA key's `kid` are refused before any signature is computed.
//! - A header with `jku`, `x5u`, `jwk` or `x5c` (a key the token names or carries) or `crit`
//!   (an extension this verifier would have to understand) is refused.
//! - `exp` is required: refused once `exp + leeway <= now`. `iat` is required and may not be after
//!   `now + leeway`; `nbf`, when present, may not be after `now + leeway`. `now` is the caller's.
//! - `iss` must equal `VerifierSettings::issuer` (the tenant's base URL, compared as strings).
//! - `aud`: Xclade does not set it today. With `audience: Some(a)`, `aud` (a string or an
//!   array) must contain `a`; with `None`, a token that carries an `aud` is refused (RFC 7519
//!   §4.1.3: a recipient that does not identify itself with the audience must reject it).
//! - With `tenant: Some(t)`, the `tenant` claim must be `t`.
//! - A token with a `purpose` claim (a reset token) is not an auth token.
//!
//! What a verifier cannot see: a token revoked before its `exp` (a password change, logout-all,
//! a disabled tenant). A service that must see those calls `POST /auth/token/introspect`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON Web Key Set, as `jsonwebtoken` parses it (for `KeySet::from_jwks`).
pub use jsonwebtoken::jwk::JwkSet;

/// The claims of an Xclade auth token, in the order they are signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The customer's id (`cus_...`), or the user's; empty until the actor exists (right after
    /// registration, before the customer is created).
    pub actor_id: String,
    /// `customer` or `user` (or another actor type the deployment allows).
    pub actor_type: String,
    pub auth_identity_id: String,
    /// `emailpass`.
    pub auth_provider: String,
    #[serde(default)]
    pub mfa_enabled: bool,
    #[serde(default)]
    pub mfa_challenge_completed_at: Option<String>,
    #[serde(default)]
    pub app_metadata: Map<String, Value>,
    #[serde(default)]
    pub user_metadata: Map<String, Value>,
    pub iat: i64,
    pub exp: i64,
    /// The identity's security stamp when the token was issued (the server revokes by it).
    pub stamp: String,
    pub tenant: String,
    /// The tenant's base URL (verified: it is `VerifierSettings::issuer`).
    pub iss: String,
}

/// What a token is checked against, besides the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    /// The tenant's base URL, e.g. `https://acme.api.myxclade.com`: the `iss` of its tokens and
    /// the `issuer` of its `/.well-known/openid-configuration`. Compared as a string, exactly.
    pub issuer: String,
    /// The `aud` this service must find in the token; `None`: the token must carry no `aud`.
    pub audience: Option<String>,
    /// Tolerated clock skew for `exp`, `iat` and `nbf` (whole seconds).
    pub leeway: Duration,
    /// The tenant whose tokens are accepted (the `tenant` claim); `None`: not checked (the keys
    /// and the issuer are the tenant's already).
    pub tenant: Option<String>,
}

impl VerifierSettings {
    /// `issuer`, no audience, no tenant check, a leeway of 30 s (the server's `JWT_LEEWAY`).
    pub fn new(issuer: impl Into<String>) -> VerifierSettings {
        VerifierSettings { issuer: issuer.into(), audience: None, leeway: Duration::from_secs(30), tenant: None }
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Not three base64url segments, or a header or claims that are not JSON objects.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names no `kid`: the token is not signed with a published key (HS256 tokens
    /// of a tenant without keys have none).
    #[error("the token names no key (kid)")]
    MissingKid,
    /// No usable key of the set has this `kid`: another tenant's token, a key deleted, or a key
    /// published after the set was fetched (fetch it again, at most once a minute).
    #[error("no usable key {0:?} in the key set")]
    UnknownKey(String),
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    #[error("the token says alg {found:?}, the key {kid:?} is {expected}")]
    AlgorithmMismatch { kid: String, expected: &'static str, found: String },
    /// The header has a member that is refused: `jku`, `x5u`, `jwk`, `x5c` or `crit`.
    #[error("the token's header has {0:?}, which is refused")]
    ForbiddenHeader(&'static str),
    #[error("the signature does not verify")]
    BadSignature,
    /// Signed, but the claims are not those of an auth token.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// A reset token (it has a `purpose`): never an auth token.
    #[error("not an auth token")]
    WrongKind,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the token's issuer is not the expected one")]
    WrongIssuer,
    #[error("the token's audience is not this service")]
    WrongAudience,
    #[error("the token is another tenant's")]
    WrongTenant,
}

/// Why a JWKS document could not be read at all (a key that is not usable is skipped, not an
/// error).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the JWKS has no \"keys\" array")]
    NoKeys,
}

/// The two algorithms of Xclade's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyAlgorithm {
    EdDSA,
    ES256,
}

impl KeyAlgorithm {
    fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDSA => "EdDSA",
            KeyAlgorithm::ES256 => "ES256",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
            KeyAlgorithm::ES256 => Algorithm::ES256,
        }
    }
}

#[derive(Clone)]
struct UsableKey {
    algorithm: KeyAlgorithm,
    key: DecodingKey,
    /// The signature check only: times, issuer and audience are checked here, with the caller's
    /// clock.
    validation: Validation,
}

/// The usable keys of a JWKS, by `kid` (see the rules in the crate's documentation).
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, UsableKey>,
    /// Keys of the document that are not usable (or whose `kid` is ambiguous).
    ignored: usize,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<(&str, &str)> = self.keys.iter().map(|(k, v)| (k.as_str(), v.algorithm.as_str())).collect();
        kids.sort_unstable();
        f.debug_struct("KeySet").field("keys", &kids).field("ignored", &self.ignored).finish()
    }
}

impl KeySet {
    /// The usable keys of a JWKS document (`{"keys": [...]}`). A key that does not parse or is
    /// not usable is skipped; only a document that is not JSON or has no `keys` array is an error.
    pub fn from_json(jwks: &str) -> Result<KeySet, JwksError> {
        let document: Value = serde_json::from_str(jwks)?;
        let keys = document.get("keys").and_then(Value::as_array).ok_or(JwksError::NoKeys)?;
        Ok(KeySet::from_values(keys.iter()))
    }

    /// The usable keys of a parsed JWKS.
    pub fn from_jwks(jwks: &JwkSet) -> KeySet {
        let values: Vec<Value> = jwks.keys.iter().map(|k| serde_json::to_value(k).unwrap_or(Value::Null)).collect();
        KeySet::from_values(values.iter())
    }

    fn from_values<'a>(keys: impl Iterator<Item = &'a Value>) -> KeySet {
        let mut total = 0;
        let mut usable: Vec<(String, UsableKey)> = Vec::new();
        for value in keys {
            total += 1;
            usable.extend(usable_key(value));
        }
        let mut count: HashMap<String, usize> = HashMap::new();
        for (kid, _) in &usable {
            *count.entry(kid.clone()).or_default() += 1;
        }
        // Two usable keys under one `kid`: which one a token means is unknowable, so neither.
        let keys: HashMap<String, UsableKey> =
            usable.into_iter().filter(|(kid, _)| count.get(kid) == Some(&1)).collect();
        KeySet { ignored: total - keys.len(), keys }
    }

    /// Whether a usable key has this `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The number of keys of the document that were skipped (not usable, or a `kid` that two
    /// usable keys share).
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// The `kid`s of the usable keys, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

/// The `kid` and key of `jwk` when it is usable.
fn usable_key(jwk: &Value) -> Option<(String, UsableKey)> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = text("kid").filter(|k| !k.is_empty())?;
    if jwk.get("d").is_some() {
        // A published private part: anyone can sign with this key.
        return None;
    }
    if jwk.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops") {
        if !ops.as_array().is_some_and(|ops| ops.iter().any(|op| op == "verify")) {
            return None;
        }
    }
    let coordinate = |name: &str| text(name).filter(|c| URL_SAFE_NO_PAD.decode(c).is_ok_and(|b| b.len() == 32));
    let (algorithm, key) = match (text("kty")?, text("crv")?, text("alg")?) {
        ("OKP", "Ed25519", "EdDSA") => (KeyAlgorithm::EdDSA, DecodingKey::from_ed_components(coordinate("x")?).ok()?),
        ("EC", "P-256", "ES256") => {
            (KeyAlgorithm::ES256, DecodingKey::from_ec_components(coordinate("x")?, coordinate("y")?).ok()?)
        }
        _ => return None,
    };
    let mut validation = Validation::new(algorithm.jwt());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    Some((kid.to_string(), UsableKey { algorithm, key, validation }))
}

/// The `kid` of a token's header, unverified: to tell whether a key set that lacks it should be
/// fetched again. `None` when the token has no readable header or no `kid`.
pub fn kid_of(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header.get("kid")?.as_str().map(str::to_string)
}

/// Header members that are refused wherever they appear (RFC 8725 §3.10, RFC 7515 §4.1.11).
const FORBIDDEN_HEADERS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// Verifies a tenant's tokens with its keys and settings.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    settings: VerifierSettings,
}

impl Verifier {
    pub fn new(keys: KeySet, settings: VerifierSettings) -> Verifier {
        Verifier { keys, settings }
    }

    /// A verifier of the keys of a JWKS document (`GET {issuer}/.well-known/jwks.json`).
    pub fn from_jwks_json(jwks: &str, settings: VerifierSettings) -> Result<Verifier, JwksError> {
        Ok(Verifier::new(KeySet::from_json(jwks)?, settings))
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    pub fn settings(&self) -> &VerifierSettings {
        &self.settings
    }

    /// Verifies `token` at `now` (the caller's clock): the signature, then the claims.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, Rejection> {
        self.verify_at(token, unix_seconds(now))
    }

    /// `verify` at `now`, in seconds since the Unix epoch.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Claims, Rejection> {
        let mut segments = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Err(Rejection::Malformed("not three segments"));
        };
        let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| Rejection::Malformed("header is not base64url"))?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header).map_err(|_| Rejection::Malformed("header is not a JSON object"))?;
        if let Some(name) = FORBIDDEN_HEADERS.iter().find(|name| header.contains_key(**name)) {
            return Err(Rejection::ForbiddenHeader(name));
        }
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            _ => return Err(Rejection::Malformed("header has no alg")),
        };
        let kid = match header.get("kid") {
            Some(Value::String(kid)) => kid.as_str(),
            None => return Err(Rejection::MissingKid),
            Some(_) => return Err(Rejection::Malformed("kid is not a string")),
        };
        let key = self.keys.keys.get(kid).ok_or_else(|| Rejection::UnknownKey(kid.to_string()))?;
        if alg != key.algorithm.as_str() {
            return Err(Rejection::AlgorithmMismatch {
                kid: kid.to_string(),
                expected: key.algorithm.as_str(),
                found: alg.to_string(),
            });
        }
        let claims = match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation) {
            Ok(data) => data.claims,
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                return Err(match e.kind() {
                    ErrorKind::Base64(_) | ErrorKind::Utf8(_) => Rejection::Malformed("not base64url"),
                    ErrorKind::Json(_) => Rejection::Malformed("header or claims are not JSON objects"),
                    _ => Rejection::BadSignature,
                });
            }
        };
        self.check(claims, now)
    }

    fn check(&self, claims: Map<String, Value>, now: i64) -> Result<Claims, Rejection> {
        if claims.contains_key("purpose") {
            return Err(Rejection::WrongKind);
        }
        let time = |name: &str| match claims.get(name) {
            None => Ok(None),
            Some(value) => {
                value.as_i64().map(Some).ok_or_else(|| Rejection::InvalidClaims(format!("{name} is not an integer")))
            }
        };
        let (exp, iat, nbf) = (time("exp")?, time("iat")?, time("nbf")?);
        let exp = exp.ok_or_else(|| Rejection::InvalidClaims("no exp".into()))?;
        let iat = iat.ok_or_else(|| Rejection::InvalidClaims("no iat".into()))?;
        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(i64::MAX);
        if exp.saturating_add(leeway) <= now {
            return Err(Rejection::Expired);
        }
        if iat > now.saturating_add(leeway) {
            return Err(Rejection::IssuedInFuture);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(Rejection::NotYetValid);
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(Rejection::WrongIssuer);
        }
        let audience_ok = match (claims.get("aud"), &self.settings.audience) {
            (None, None) => true,
            (Some(_), None) | (None, Some(_)) => false,
            (Some(Value::String(aud)), Some(expected)) => aud == expected,
            (Some(Value::Array(auds)), Some(expected)) => auds.iter().any(|a| a.as_str() == Some(expected)),
            (Some(_), Some(_)) => false,
        };
        if !audience_ok {
            return Err(Rejection::WrongAudience);
        }
        let claims: Claims =
            serde_json::from_value(Value::Object(claims)).map_err(|e| Rejection::InvalidClaims(e.to_string()))?;
        if self.settings.tenant.as_ref().is_some_and(|tenant| *tenant != claims.tenant) {
            return Err(Rejection::WrongTenant);
        }
        Ok(claims)
    }
}

/// Seconds since the Unix epoch (negative before it).
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

#[cfg(test)]
mod tests;
