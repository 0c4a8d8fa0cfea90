//! Signing keys: the algorithm of the keys `xclade-auth keys` makes, how long verifiers may
//! cache the JWKS (the lead time of a rotation), and the credential of token introspection.

use std::time::Duration;

use auth_domain::keys::KeyAlgorithm;

use super::render::{fmt_duration, REDACTED};
use super::setting::{section, DefaultValue::*, Env, Secrecy, Setting};
use super::{ConfigError, Secret};

section! {
    "Signing keys",
    JWT_ALGORITHM = Setting::new(
        Text("EdDSA"),
        "EdDSA or ES256: the algorithm of the keys `xclade-auth keys create|rotate` make (a tenant signs with HS256 until it has an active key)",
        |c| Some(c.keys.algorithm.as_str().to_string()),
    ),
    JWKS_MAX_AGE = Setting::new(
        Text("10m"),
        "Cache-Control max-age of /.well-known/jwks.json, and how long `keys rotate` publishes a key before it signs",
        |c| Some(fmt_duration(c.keys.jwks_max_age)),
    ),
    INTROSPECTION_SECRET = Setting::new(
        Unset,
        "bearer credential of POST /auth/token/introspect (at least 32 bytes); unset, the route answers 404",
        |c| c.keys.introspection_secret.as_ref().map(|_| REDACTED.to_string()),
    )
    .secrecy(Secrecy::Secret)
    .verbatim(),
}

/// Signing keys.
#[derive(Debug, Clone)]
pub struct KeysConfig {
    pub algorithm: KeyAlgorithm,
    pub jwks_max_age: Duration,
    pub introspection_secret: Option<Secret>,
}

impl KeysConfig {
    pub(super) fn read(env: &Env) -> Result<KeysConfig, ConfigError> {
        let algorithm = env.string(&JWT_ALGORITHM)?;
        let algorithm = KeyAlgorithm::parse(&algorithm)
            .ok_or_else(|| JWT_ALGORITHM.invalid(&format!("{algorithm:?} is not EdDSA or ES256")))?;
        let introspection_secret = env.get(&INTROSPECTION_SECRET).map(|s| Secret(s.into_bytes()));
        if introspection_secret.as_ref().is_some_and(|s| s.0.len() < 32) {
            return Err(INTROSPECTION_SECRET.invalid("must be at least 32 bytes"));
        }
        Ok(KeysConfig { algorithm, jwks_max_age: env.duration(&JWKS_MAX_AGE)?, introspection_secret })
    }
}
