//! Auth tokens and reset tokens: HS256 JWTs with Medusa's claims (design §4).

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// Present only on reset tokens: an auth token never carries it.
    #[serde(default, skip_serializing)]
    pub purpose: Option<String>,
    /// Not before (RFC 7519 §4.1.5): Xclade never sets it, but a token that carries it is not
    /// accepted before that time (with the leeway). Never echoed.
    #[serde(default, skip_serializing)]
    pub nbf: Option<i64>,
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
    validation: Validation,
    auth_ttl: Duration,
    leeway: Duration,
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
        let mut validation = Validation::new(Algorithm::HS256);
        // Time claims are checked below against the caller's clock, with the leeway.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        TokenCodec {
            encoding: EncodingKey::from_secret(&settings.secret),
            decoding,
            validation,
            auth_ttl: settings.auth_ttl,
            leeway: settings.leeway,
        }
    }

    pub fn auth_ttl(&self) -> Duration {
        self.auth_ttl
    }

    pub fn issue_auth(&self, input: &AuthTokenInput, now: DateTime<Utc>) -> Result<String, AuthError> {
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
            exp: iat + self.auth_ttl.num_seconds(),
            stamp: &input.stamp,
            tenant: &input.tenant,
        };
        self.sign(&claims)
    }

    pub fn issue_reset(&self, claims: &ResetClaims) -> Result<String, AuthError> {
        self.sign(claims)
    }

    /// Verifies an auth token: signature (current or previous secret), HS256 only, no `crit`
    /// header, `exp`, `nbf` and `iat` with the leeway, and that it is not a reset token.
    pub fn verify_auth(&self, token: &str, now: DateTime<Utc>) -> Result<AuthClaims, TokenRejection> {
        let claims: AuthClaims = self.decode(token)?;
        if claims.purpose.is_some() {
            return Err(TokenRejection::WrongKind);
        }
        self.check_times(claims.iat, claims.exp, claims.nbf, now)?;
        Ok(claims)
    }

    /// Verifies a reset token: as `verify_auth`, and `purpose` must be `reset`.
    pub fn verify_reset(&self, token: &str, now: DateTime<Utc>) -> Result<ResetClaims, TokenRejection> {
        let claims: ResetClaims = self.decode(token)?;
        if claims.purpose != RESET_PURPOSE || claims.jti.is_empty() {
            return Err(TokenRejection::WrongKind);
        }
        self.check_times(claims.iat, claims.exp, claims.nbf, now)?;
        Ok(claims)
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::unexpected("signing a token", e))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, TokenRejection> {
        let mut kind_error = false;
        for key in &self.decoding {
            match jsonwebtoken::decode::<T>(token, key, &self.validation) {
                // RFC 7515 §4.1.11: a `crit` header names extensions that must be understood;
                // this verifier understands none (and an empty list is not allowed either).
                Ok(data) if data.header.crit.is_some() => return Err(TokenRejection::UnknownCritical),
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    // A signature that verified but claims of another shape: the other kind of token.
                    kind_error |= matches!(e.kind(), jsonwebtoken::errors::ErrorKind::Json(_));
                }
            }
        }
        Err(if kind_error { TokenRejection::WrongKind } else { TokenRejection::Invalid })
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
}
