//! Auth tokens and reset tokens: JWTs with Medusa's claims (design §4). Auth tokens are signed
//! with the tenant's active key (EdDSA or ES256, `kid` in the header: `keys.rs`) or, while the
//! tenant has none, with the shared HS256 secret; reset tokens, which only this service reads,
//! always with the secret.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::KeyRing;
use crate::{AuthError, TokenRejection};

/// The `purpose` claim of a reset token.
pub const RESET_PURPOSE: &str = "reset";

/// The claims of an auth token, in Medusa's order, then Xclade's `stamp` and `tenant`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthClaims {
    pub actor_id: String,
    pub actor_type: String,
    pub auth_identity_id: String,
    pub auth_provider: String,
    pub mfa_enabled: bool,
    pub mfa_challenge_completed_at: Option<String>,
    pub app_metadata: Map<String, Value>,
    pub user_metadata: Map<String, Value>,
    pub iat: i64,
    pub exp: i64,
    /// The identity's security stamp when the token was issued; a changed stamp revokes it.
    pub stamp: String,
    pub tenant: String,
    /// The issuer: the tenant's base URL (what a verifier checks it against). Absent on tokens
    /// issued before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Present only on reset tokens: an auth token never carries it.
    #[serde(default, skip_serializing)]
    pub purpose: Option<String>,
    /// Not before (RFC 7519 §4.1.5): Xclade never sets it, but a token that carries it is not
    /// accepted before that time (with the leeway). Never echoed.
    #[serde(default, skip_serializing)]
    pub nbf: Option<i64>,
}

/// What the refresh exchange reads of a Medusa auth token (Medusa 2.x claims). Xclade's own
/// claims are read only to refuse a token that has them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MedusaClaims {
    pub actor_type: String,
    pub auth_identity_id: String,
    pub auth_provider: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    stamp: Option<Value>,
    #[serde(default)]
    tenant: Option<Value>,
    #[serde(default)]
    purpose: Option<Value>,
}

/// `AuthClaims` as they are signed, borrowed: the same fields, names and order (`purpose` is
/// never serialized), so the JSON is the same byte for byte.
#[derive(Serialize)]
struct AuthClaimsRef<'a> {
    actor_id: &'a str,
    actor_type: &'a str,
    auth_identity_id: &'a str,
    auth_provider: &'a str,
    mfa_enabled: bool,
    mfa_challenge_completed_at: Option<&'a str>,
    app_metadata: &'a Map<String, Value>,
    user_metadata: &'a Map<String, Value>,
    iat: i64,
    exp: i64,
    stamp: &'a str,
    tenant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
}

/// What an auth token is made from.
#[derive(Debug, Clone)]
pub struct AuthTokenInput {
    pub actor_id: String,
    pub actor_type: String,
    pub auth_identity_id: String,
    pub auth_provider: String,
    pub app_metadata: Map<String, Value>,
    pub user_metadata: Map<String, Value>,
    pub stamp: String,
    pub tenant: String,
}

/// How an auth token is signed: with the tenant's keys (the HS256 secret while none is
/// active), for the tenant's lifetime, naming the tenant's issuer.
#[derive(Debug, Clone, Copy)]
pub struct Issuing<'a> {
    pub ttl: Duration,
    pub keys: &'a KeyRing,
    pub issuer: Option<&'a str>,
}

/// The claims of a reset token (Medusa's, plus `tenant`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetClaims {
    pub entity_id: String,
    pub provider: String,
    pub actor_type: String,
    pub purpose: String,
    pub tenant: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// Not before: see `AuthClaims::nbf`.
    #[serde(default, skip_serializing)]
    pub nbf: Option<i64>,
}

#[derive(Clone)]
pub struct TokenSettings {
    /// The HS256 secret tokens are signed with.
    pub secret: Vec<u8>,
    /// Secrets still accepted for verification (rotation).
    pub previous_secrets: Vec<Vec<u8>>,
    pub auth_ttl: Duration,
    /// Tolerance for clock skew, applied to `exp` and to a future `iat`.
    pub leeway: Duration,
}

impl std::fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSettings")
            .field("secret", &"[redacted]")
            .field("previous_secrets", &self.previous_secrets.len())
            .field("auth_ttl", &self.auth_ttl)
            .field("leeway", &self.leeway)
            .finish()
    }
}

/// Signs and verifies Xclade tokens. Verification needs only the shared secret, so services
/// other than Xclade Auth can use it; they cannot see revocation before `exp` (design §4).
#[derive(Clone)]
pub struct TokenCodec {
    encoding: EncodingKey,
    decoding: Vec<DecodingKey>,
    /// HS256 only, times checked here.
    validation: Validation,
    /// The same for each asymmetric algorithm.
    asymmetric: [(Algorithm, Validation); 2],
    auth_ttl: Duration,
    leeway: Duration,
    /// An empty ring: HS256 only (`issue_auth`, `verify_auth`).
    no_keys: KeyRing,
}

impl std::fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCodec").field("keys", &self.decoding.len()).field("auth_ttl", &self.auth_ttl).finish()
    }
}

impl TokenCodec {
    pub fn new(settings: TokenSettings) -> TokenCodec {
        let decoding = std::iter::once(&settings.secret)
            .chain(settings.previous_secrets.iter())
            .map(|s| DecodingKey::from_secret(s))
            .collect();
        let validation = |algorithm| {
            let mut validation = Validation::new(algorithm);
            // Time claims are checked below against the caller's clock, with the leeway.
            validation.validate_exp = false;
            validation.required_spec_claims.clear();
            validation
        };
        TokenCodec {
            encoding: EncodingKey::from_secret(&settings.secret),
            decoding,
            validation: validation(Algorithm::HS256),
            asymmetric: [
                (Algorithm::EdDSA, validation(Algorithm::EdDSA)),
                (Algorithm::ES256, validation(Algorithm::ES256)),
            ],
            auth_ttl: settings.auth_ttl,
            leeway: settings.leeway,
            no_keys: KeyRing::default(),
        }
    }

    pub fn auth_ttl(&self) -> Duration {
        self.auth_ttl
    }

    /// An HS256 auth token for the default lifetime, without `iss`.
    pub fn issue_auth(&self, input: &AuthTokenInput, now: DateTime<Utc>) -> Result<String, AuthError> {
        self.issue_auth_with(input, now, &Issuing { ttl: self.auth_ttl, keys: &self.no_keys, issuer: None })
    }

    /// An auth token signed and timed as `how` says (the tenant's keys, lifetime and issuer).
    pub fn issue_auth_with(
        &self,
        input: &AuthTokenInput,
        now: DateTime<Utc>,
        how: &Issuing<'_>,
    ) -> Result<String, AuthError> {
        let ttl = how.ttl;
        let iat = now.timestamp();
        // The claims by reference: nothing of `input` is copied to sign it.
        let claims = AuthClaimsRef {
            actor_id: &input.actor_id,
            actor_type: &input.actor_type,
            auth_identity_id: &input.auth_identity_id,
            auth_provider: &input.auth_provider,
            mfa_enabled: false,
            mfa_challenge_completed_at: None,
            app_metadata: &input.app_metadata,
            user_metadata: &input.user_metadata,
            iat,
            exp: iat + ttl.num_seconds(),
            stamp: &input.stamp,
            tenant: &input.tenant,
            iss: how.issuer,
        };
        match how.keys.signing() {
            Some((kid, algorithm, key)) => {
                let mut header = Header::new(algorithm.jwt());
                header.kid = Some(kid.to_string());
                jsonwebtoken::encode(&header, &claims, key).map_err(|e| AuthError::unexpected("signing a token", e))
            }
            None => self.sign(&claims),
        }
    }

    pub fn issue_reset(&self, claims: &ResetClaims) -> Result<String, AuthError> {
        self.sign(claims)
    }

    /// Verifies an HS256 auth token (`verify_auth_with` without keys).
    pub fn verify_auth(&self, token: &str, now: DateTime<Utc>) -> Result<AuthClaims, TokenRejection> {
        self.verify_auth_with(token, now, &self.no_keys)
    }

    /// Verifies an auth token: its signature (by the key of `keys` its `kid` names, with that
    /// key's algorithm; without a `kid`, HS256 with the current or a previous secret), no `crit`,
    /// `jku`, `x5u`, `jwk` or `x5c` header, `exp`, `nbf` and `iat` with the leeway, and that it is
    /// not a reset token.
    pub fn verify_auth_with(
        &self,
        token: &str,
        now: DateTime<Utc>,
        keys: &KeyRing,
    ) -> Result<AuthClaims, TokenRejection> {
        let claims: AuthClaims = self.decode(token, keys)?;
        if claims.purpose.is_some() {
            return Err(TokenRejection::WrongKind);
        }
        self.check_times(claims.iat, claims.exp, claims.nbf, now)?;
        Ok(claims)
    }

    /// Verifies a reset token: as `verify_auth`, and `purpose` must be `reset`.
    pub fn verify_reset(&self, token: &str, now: DateTime<Utc>) -> Result<ResetClaims, TokenRejection> {
        let claims: ResetClaims = self.decode(token, &self.no_keys)?;
        if claims.purpose != RESET_PURPOSE || claims.jti.is_empty() {
            return Err(TokenRejection::WrongKind);
        }
        self.check_times(claims.iat, claims.exp, claims.nbf, now)?;
        Ok(claims)
    }

    /// Verifies a token that a Medusa backend issued (HS256 with its `jwtSecret`, `secret`):
    /// signature, header (no `kid` or key references), `exp` and `iat` with the leeway, Medusa's
    /// claims present, and none of Xclade's: a token with a `stamp`, a `tenant` or a `purpose` is
    /// not Medusa's and is refused here (`WrongKind`). Only the refresh exchange calls it.
    pub fn verify_medusa(
        &self,
        token: &str,
        secret: &[u8],
        now: DateTime<Utc>,
    ) -> Result<MedusaClaims, TokenRejection> {
        let key = DecodingKey::from_secret(secret);
        let claims: MedusaClaims = self.decode_with(token, std::iter::once((&key, &self.validation)), false)?;
        if claims.stamp.is_some() || claims.tenant.is_some() || claims.purpose.is_some() {
            return Err(TokenRejection::WrongKind);
        }
        self.check_times(claims.iat, claims.exp, claims.nbf, now)?;
        Ok(claims)
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::unexpected("signing a token", e))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str, keys: &KeyRing) -> Result<T, TokenRejection> {
        if keys.is_empty() {
            // No published key (a tenant before its first key, and every reset token): the token
            // can only be HS256 without a `kid`, so it is decoded at once and its header checked
            // after, which spares the hot path a second parse of the header.
            return self.decode_with(token, self.decoding.iter().map(|key| (key, &self.validation)), false);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Invalid)?;
        Self::check_header(&header, true)?;
        match &header.kid {
            // The key the `kid` names, with its own algorithm only: a token whose `alg` is
            // another (`HS256` with the public key as the secret, `none`) is refused.
            Some(kid) => {
                let key = keys.verifying(kid).ok_or(TokenRejection::Invalid)?;
                let algorithm = key.algorithm.jwt();
                if header.alg != algorithm {
                    return Err(TokenRejection::Invalid);
                }
                let validation = self.asymmetric.iter().find(|(a, _)| *a == algorithm).map(|(_, v)| v);
                self.decode_with(token, std::iter::once((&key.key, validation.ok_or(TokenRejection::Invalid)?)), true)
            }
            None if header.alg == Algorithm::HS256 => {
                self.decode_with(token, self.decoding.iter().map(|key| (key, &self.validation)), false)
            }
            None => Err(TokenRejection::Invalid),
        }
    }

    /// The claims of `token` verified by the first of `candidates` whose signature matches, its
    /// header checked (`kid_allowed`: whether it may name a key).
    fn decode_with<'a, T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        candidates: impl Iterator<Item = (&'a DecodingKey, &'a Validation)>,
        kid_allowed: bool,
    ) -> Result<T, TokenRejection> {
        let mut kind_error = false;
        for (key, validation) in candidates {
            match jsonwebtoken::decode::<T>(token, key, validation) {
                Ok(data) => {
                    Self::check_header(&data.header, kid_allowed)?;
                    return Ok(data.claims);
                }
                Err(e) => {
                    // A signature that verified but claims of another shape: the other kind of token.
                    kind_error |= matches!(e.kind(), jsonwebtoken::errors::ErrorKind::Json(_));
                }
            }
        }
        Err(if kind_error { TokenRejection::WrongKind } else { TokenRejection::Invalid })
    }

    /// Keys named or carried by the token itself are never fetched or trusted (RFC 8725 §3.10): a
    /// token with `jku`, `x5u`, `jwk` or `x5c` is refused rather than verified with a key it
    /// chose, and an HS256 token never names a key. RFC 7515 §4.1.11: a `crit` header names
    /// extensions that must be understood; this verifier understands none (and an empty list is
    /// not allowed either).
    fn check_header(header: &Header, kid_allowed: bool) -> Result<(), TokenRejection> {
        if header.jku.is_some() || header.x5u.is_some() || header.jwk.is_some() || header.x5c.is_some() {
            return Err(TokenRejection::Invalid);
        }
        if header.kid.is_some() && !kid_allowed {
            return Err(TokenRejection::Invalid);
        }
        if header.crit.is_some() {
            return Err(TokenRejection::UnknownCritical);
        }
        Ok(())
    }

    fn check_times(&self, iat: i64, exp: i64, nbf: Option<i64>, now: DateTime<Utc>) -> Result<(), TokenRejection> {
        let now = now.timestamp();
        let leeway = self.leeway.num_seconds();
        if exp.saturating_add(leeway) <= now {
            return Err(TokenRejection::Expired);
        }
        if iat > now.saturating_add(leeway) {
            return Err(TokenRejection::IssuedInFuture);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn codec(secret: &[u8], previous: &[&[u8]]) -> TokenCodec {
        TokenCodec::new(TokenSettings {
            secret: secret.to_vec(),
            previous_secrets: previous.iter().map(|p| p.to_vec()).collect(),
            auth_ttl: Duration::days(1),
            leeway: Duration::seconds(0),
        })
    }

    fn input() -> AuthTokenInput {
        AuthTokenInput {
            actor_id: String::new(),
            actor_type: "customer".into(),
            auth_identity_id: "authid_1".into(),
            auth_provider: "emailpass".into(),
            app_metadata: Map::new(),
            user_metadata: Map::new(),
            stamp: "st".into(),
            tenant: "default".into(),
        }
    }

    fn reset(now: DateTime<Utc>) -> ResetClaims {
        ResetClaims {
            entity_id: "a@b.c".into(),
            provider: "emailpass".into(),
            actor_type: "customer".into(),
            purpose: RESET_PURPOSE.into(),
            tenant: "default".into(),
            jti: "j".into(),
            iat: now.timestamp(),
            exp: now.timestamp() + 900,
            nbf: None,
        }
    }

    #[test]
    fn claims_come_in_medusas_order() {
        let now = Utc::now();
        let token = codec(b"k", &[]).issue_auth(&input(), now).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&json).unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "actor_id",
                "actor_type",
                "auth_identity_id",
                "auth_provider",
                "mfa_enabled",
                "mfa_challenge_completed_at",
                "app_metadata",
                "user_metadata",
                "iat",
                "exp",
                "stamp",
                "tenant"
            ]
        );
    }

    #[test]
    fn the_signed_claims_are_the_json_of_auth_claims_byte_for_byte() {
        let now = Utc::now();
        let mut i = input();
        i.actor_id = "cus_1".into();
        i.app_metadata.insert("customer_id".into(), "cus_1".into());
        i.user_metadata.insert("x\"y".into(), Value::from(vec![1, 2]));
        let token = codec(b"k", &[]).issue_auth(&i, now).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let signed = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let owned = AuthClaims {
            actor_id: i.actor_id.clone(),
            actor_type: i.actor_type.clone(),
            auth_identity_id: i.auth_identity_id.clone(),
            auth_provider: i.auth_provider.clone(),
            mfa_enabled: false,
            mfa_challenge_completed_at: None,
            app_metadata: i.app_metadata.clone(),
            user_metadata: i.user_metadata.clone(),
            iat: now.timestamp(),
            exp: now.timestamp() + Duration::days(1).num_seconds(),
            stamp: i.stamp.clone(),
            tenant: i.tenant.clone(),
            iss: None,
            purpose: None,
            nbf: None,
        };
        assert_eq!(signed, serde_json::to_string(&owned).unwrap());
    }

    #[test]
    fn round_trips_and_rotates() {
        let now = Utc::now();
        let token = codec(b"old", &[]).issue_auth(&input(), now).unwrap();
        assert!(codec(b"old", &[]).verify_auth(&token, now).is_ok());
        assert!(codec(b"new", &[b"old"]).verify_auth(&token, now).is_ok());
        assert_eq!(codec(b"new", &[]).verify_auth(&token, now), Err(TokenRejection::Invalid));
    }

    #[test]
    fn times_are_checked_with_the_leeway() {
        let now = Utc::now();
        let c = codec(b"k", &[]);
        let token = c.issue_auth(&input(), now).unwrap();
        assert_eq!(c.verify_auth(&token, now + Duration::days(2)), Err(TokenRejection::Expired));
        assert_eq!(c.verify_auth(&token, now - Duration::seconds(60)), Err(TokenRejection::IssuedInFuture));
        let lenient = TokenCodec::new(TokenSettings {
            secret: b"k".to_vec(),
            previous_secrets: vec![],
            auth_ttl: Duration::days(1),
            leeway: Duration::seconds(120),
        });
        assert!(lenient.verify_auth(&token, now - Duration::seconds(60)).is_ok());
    }

    #[test]
    fn extreme_times_are_refused_without_overflow() {
        let now = Utc::now();
        let c = TokenCodec::new(TokenSettings {
            secret: b"k".to_vec(),
            previous_secrets: vec![],
            auth_ttl: Duration::days(1),
            leeway: Duration::seconds(30),
        });
        let token = c.issue_reset(&ResetClaims { exp: i64::MAX, iat: i64::MAX, ..reset(now) }).unwrap();
        assert_eq!(c.verify_reset(&token, now), Err(TokenRejection::IssuedInFuture));
        let token = c.issue_reset(&ResetClaims { exp: i64::MIN, ..reset(now) }).unwrap();
        assert_eq!(c.verify_reset(&token, now), Err(TokenRejection::Expired));
    }

    #[test]
    fn kinds_are_never_interchangeable() {
        let now = Utc::now();
        let c = codec(b"k", &[]);
        let auth = c.issue_auth(&input(), now).unwrap();
        let reset_token = c.issue_reset(&reset(now)).unwrap();
        assert!(c.verify_reset(&reset_token, now).is_ok());
        assert_eq!(c.verify_auth(&reset_token, now), Err(TokenRejection::WrongKind));
        assert_eq!(c.verify_reset(&auth, now), Err(TokenRejection::WrongKind));
    }

    #[test]
    fn refuses_alg_none_and_garbage() {
        let now = Utc::now();
        let c = codec(b"k", &[]);
        let token = c.issue_auth(&input(), now).unwrap();
        let mut parts = token.split('.');
        let _header = parts.next();
        let payload = parts.next().unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(c.verify_auth(&format!("{none_header}.{payload}."), now).is_err());
        assert!(c.verify_auth(&format!("{token}.extra"), now).is_err());
        assert!(c.verify_auth("not a token", now).is_err());
        assert!(c.verify_auth("", now).is_err());
    }

    /// Signs `claims` (JSON) with `header` (JSON) and the secret `k`, as a forger holding the
    /// secret would: the claims and header this codec never writes itself.
    fn forge(header: &str, claims: &Value) -> String {
        use hmac::{Hmac, Mac};
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"k").unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn claims_of(token: &str) -> Map<String, Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn nbf_in_the_future_is_refused_beyond_the_leeway() {
        let now = Utc::now();
        let c = TokenCodec::new(TokenSettings {
            secret: b"k".to_vec(),
            previous_secrets: vec![],
            auth_ttl: Duration::days(1),
            leeway: Duration::seconds(30),
        });
        let mut claims = claims_of(&c.issue_auth(&input(), now).unwrap());
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        for (nbf, expected) in [
            (now.timestamp() - 10, Ok(())),
            (now.timestamp() + 20, Ok(())),
            (now.timestamp() + 31, Err(TokenRejection::NotYetValid)),
            (now.timestamp() + 86_400, Err(TokenRejection::NotYetValid)),
        ] {
            claims.insert("nbf".into(), nbf.into());
            let token = forge(header, &Value::Object(claims.clone()));
            assert_eq!(c.verify_auth(&token, now).map(|_| ()), expected, "nbf {nbf}");
        }
        let mut reset_claims = serde_json::to_value(reset(now)).unwrap();
        reset_claims["nbf"] = (now.timestamp() + 86_400).into();
        assert_eq!(c.verify_reset(&forge(header, &reset_claims), now), Err(TokenRejection::NotYetValid));
        // An `nbf` that is not a number is refused too.
        claims.insert("nbf".into(), "tomorrow".into());
        assert!(c.verify_auth(&forge(header, &Value::Object(claims)), now).is_err());
    }

    #[test]
    fn a_crit_header_is_refused() {
        let now = Utc::now();
        let c = codec(b"k", &[]);
        let claims = Value::Object(claims_of(&c.issue_auth(&input(), now).unwrap()));
        assert!(
            c.verify_auth(&forge(r#"{"alg":"HS256","typ":"JWT"}"#, &claims), now).is_ok(),
            "the forger signs right"
        );
        for header in [
            r#"{"alg":"HS256","typ":"JWT","crit":["x-unknown-ext"]}"#,
            r#"{"alg":"HS256","typ":"JWT","crit":["x-unknown-ext"],"x-unknown-ext":true}"#,
            r#"{"alg":"HS256","typ":"JWT","crit":["b64"],"b64":false}"#,
            r#"{"alg":"HS256","typ":"JWT","crit":[]}"#,
        ] {
            assert_eq!(c.verify_auth(&forge(header, &claims), now), Err(TokenRejection::UnknownCritical), "{header}");
        }
        let reset_claims = serde_json::to_value(reset(now)).unwrap();
        let header = r#"{"alg":"HS256","typ":"JWT","crit":["x-unknown-ext"]}"#;
        assert_eq!(c.verify_reset(&forge(header, &reset_claims), now), Err(TokenRejection::UnknownCritical));
        // `crit` that is not a list of strings does not even parse as a header.
        assert!(c.verify_auth(&forge(r#"{"alg":"HS256","crit":"x"}"#, &claims), now).is_err());
    }

    // -----------------------------------------------------------------------------------------
    // Asymmetric keys

    use crate::keys::{generate, KeyAlgorithm, KeyPair, KeyState, SigningKeyRecord};
    use crate::newtypes::TenantId;

    fn ring_of(pairs: &[(&KeyPair, KeyState)]) -> KeyRing {
        let records: Vec<SigningKeyRecord> = pairs
            .iter()
            .map(|(pair, state)| SigningKeyRecord {
                tenant: TenantId::default_tenant(),
                kid: pair.kid.clone(),
                algorithm: pair.algorithm,
                state: *state,
                private_sealed: hex::encode(&pair.private_der),
                public_jwk: pair.public_jwk.clone(),
                created_at: Utc::now(),
                state_since: Utc::now(),
            })
            .collect();
        KeyRing::from_records(&records, |r| hex::decode(&r.private_sealed).map_err(|e| AuthError::unexpected("hex", e)))
            .unwrap()
    }

    fn issued(c: &TokenCodec, ring: &KeyRing, now: DateTime<Utc>) -> String {
        let how = Issuing { ttl: Duration::hours(1), keys: ring, issuer: Some("https://acme.api.example") };
        c.issue_auth_with(&input(), now, &how).unwrap()
    }

    /// The header of a token, decoded.
    fn header_of(token: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn a_tenant_with_an_active_key_signs_with_it_and_its_kid() {
        let now = Utc::now();
        let c = codec(b"k", &[]);
        for algorithm in [KeyAlgorithm::EdDSA, KeyAlgorithm::ES256] {
            let pair = generate(algorithm).unwrap();
            let ring = ring_of(&[(&pair, KeyState::Active)]);
            let token = issued(&c, &ring, now);
            let header = header_of(&token);
            assert_eq!(header["alg"], algorithm.as_str());
            assert_eq!(header["kid"], pair.kid.as_str());
            let claims = c.verify_auth_with(&token, now, &ring).unwrap();
            assert_eq!(claims.iss.as_deref(), Some("https://acme.api.example"));
            assert_eq!(claims.exp - claims.iat, 3600);
            assert_eq!(c.verify_auth(&token, now), Err(TokenRejection::Invalid), "not without the key");
        }
        // Without keys: HS256 and no kid, as before.
        let token = issued(&c, &KeyRing::default(), now);
        assert_eq!(header_of(&token), serde_json::json!({"typ": "JWT", "alg": "HS256"}));
    }

    #[test]
    fn retired_keys_verify_and_deleted_or_foreign_keys_do_not() {
        let now = Utc::now();
        let c = codec(b"k", &[]);
        let (old, new) = (generate(KeyAlgorithm::EdDSA).unwrap(), generate(KeyAlgorithm::EdDSA).unwrap());
        let token = issued(&c, &ring_of(&[(&old, KeyState::Active)]), now);
        let rotated = ring_of(&[(&new, KeyState::Active), (&old, KeyState::Retired)]);
        assert!(c.verify_auth_with(&token, now, &rotated).is_ok(), "a retired key still verifies");
        let deleted = ring_of(&[(&new, KeyState::Active)]);
        assert_eq!(c.verify_auth_with(&token, now, &deleted), Err(TokenRejection::Invalid));
        let other_tenant = ring_of(&[(&generate(KeyAlgorithm::EdDSA).unwrap(), KeyState::Active)]);
        assert_eq!(c.verify_auth_with(&token, now, &other_tenant), Err(TokenRejection::Invalid));
        // HS256 tokens of before the switch verify as long as they live.
        let before = c.issue_auth(&input(), now).unwrap();
        assert!(c.verify_auth_with(&before, now, &rotated).is_ok());
    }

    #[test]
    fn without_keys_a_secret_signed_token_naming_a_key_is_refused() {
        let now = Utc::now();
        let c = codec(b"k", &[]);
        let claims = claims_of(&c.issue_auth(&input(), now).unwrap());
        let sign = |header: Header| jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"k")).unwrap();
        let mut with_kid = Header::new(Algorithm::HS256);
        with_kid.kid = Some("any".into());
        let mut with_jku = Header::new(Algorithm::HS256);
        with_jku.jku = Some("https://evil.example/jwks.json".into());
        for token in [sign(with_kid), sign(with_jku)] {
            assert_eq!(c.verify_auth(&token, now), Err(TokenRejection::Invalid));
        }
        assert!(c.verify_auth(&sign(Header::new(Algorithm::HS256)), now).is_ok());
    }

    #[test]
    fn forged_headers_are_refused() {
        let now = Utc::now();
        let c = codec(b"k", &[]);
        let pair = generate(KeyAlgorithm::ES256).unwrap();
        let ring = ring_of(&[(&pair, KeyState::Active)]);
        let genuine = issued(&c, &ring, now);
        let payload = genuine.split('.').nth(1).unwrap().to_string();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).unwrap()).unwrap();
        let kid = pair.kid.as_str();
        // HS256 with the public key as the HMAC secret, under the key's kid.
        let jwk: Value = serde_json::from_str(&pair.public_jwk).unwrap();
        for secret in [pair.public_jwk.as_bytes().to_vec(), jwk["x"].as_str().unwrap().as_bytes().to_vec()] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid.into());
            let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
            assert_eq!(c.verify_auth_with(&forged, now, &ring), Err(TokenRejection::Invalid));
        }
        // `alg: none`, with and without the kid.
        for header in [format!(r#"{{"alg":"none","kid":"{kid}"}}"#), r#"{"alg":"none"}"#.to_string()] {
            let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header));
            assert_eq!(c.verify_auth_with(&none, now, &ring), Err(TokenRejection::Invalid));
        }
        // A genuine signature whose header names a key set or a certificate to fetch.
        let (_, alg, key) = ring.signing().unwrap();
        for (name, value) in [("jku", "https://evil.example/jwks.json"), ("x5u", "https://evil.example/cert.pem")] {
            let mut header = Header::new(alg.jwt());
            header.kid = Some(kid.into());
            match name {
                "jku" => header.jku = Some(value.into()),
                _ => header.x5u = Some(value.into()),
            }
            let token = jsonwebtoken::encode(&header, &claims, key).unwrap();
            assert_eq!(c.verify_auth_with(&token, now, &ring), Err(TokenRejection::Invalid), "{name}");
        }
        // The kid of an EdDSA key on an ES256 signature.
        let ed = generate(KeyAlgorithm::EdDSA).unwrap();
        let both = ring_of(&[(&pair, KeyState::Active), (&ed, KeyState::Next)]);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(ed.kid.clone());
        let swapped = jsonwebtoken::encode(&header, &claims, key).unwrap();
        assert_eq!(c.verify_auth_with(&swapped, now, &both), Err(TokenRejection::Invalid));
    }
}
