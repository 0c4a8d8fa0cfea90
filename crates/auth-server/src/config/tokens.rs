//! Tokens and passwords: the JWT secrets and lifetimes, bcrypt, the password policy, the actor
//! types.

use std::time::Duration;

use super::render::{fmt_duration, REDACTED};
use super::setting::{section, DefaultValue::*, Env, Secrecy, Setting};
use super::{ConfigError, Secret};

section! {
    "Tokens and passwords",
    JWT_SECRET = Setting::new(
        Computed("SQLite: generated into DATA_DIR/jwt-secret; PostgreSQL: required"),
        "HS256 signing secret, used byte for byte",
        |c| c.tokens.jwt_secret.as_ref().map(|_| REDACTED.to_string()),
    )
    .secrecy(Secrecy::Secret)
    .verbatim(),
    JWT_SECRET_PREVIOUS = Setting::new(
        Unset,
        "comma-separated earlier secrets, still accepted for verification (rotation)",
        |c| (!c.tokens.jwt_secret_previous.is_empty()).then(|| REDACTED.to_string()),
    )
    .secrecy(Secrecy::Secret),
    MEDUSA_JWT_SECRET = Setting::new(
        Unset,
        "the jwtSecret of the Medusa backend the store moved from: refresh exchanges its unexpired tokens (migration window)",
        |c| c.tokens.medusa_jwt_secret.as_ref().map(|_| REDACTED.to_string()),
    )
    .secrecy(Secrecy::Secret)
    .verbatim()
    .tenant_default(),
    JWT_EXPIRES_IN = Setting::new(
        Text("1d"),
        "auth token lifetime",
        |c| Some(fmt_duration(c.tokens.jwt_expires_in)),
    )
    .tenant_default(),
    JWT_LEEWAY = Setting::new(
        Text("30s"),
        "tolerated clock skew for exp and iat",
        |c| Some(fmt_duration(c.tokens.jwt_leeway)),
    ),
    BCRYPT_COST = Setting::new(
        Text("12"),
        "bcrypt cost, 4..=31",
        |c| Some(c.tokens.bcrypt_cost.to_string()),
    ),
    HASH_CONCURRENCY = Setting::new(
        Computed("number of cores"),
        "bcrypt operations at once (at least 1)",
        |c| Some(c.tokens.hash_concurrency.to_string()),
    ),
    PASSWORD_MIN_LENGTH = Setting::new(
        Text("8"),
        "minimum password length in characters (at least 1)",
        |c| Some(c.tokens.password_min_length.to_string()),
    )
    .tenant_default(),
    PASSWORD_MIN_STRENGTH = Setting::new(
        Text("2"),
        "minimum zxcvbn score, 0..=4; 0 turns the check off",
        |c| Some(c.tokens.password_min_strength.to_string()),
    )
    .tenant_default(),
    ACTOR_TYPES = Setting::new(
        Text("customer,user"),
        "allowed {actor} values, comma-separated",
        |c| Some(c.tokens.actor_types.join(",")),
    )
    .tenant_default(),
}

/// Tokens and passwords.
#[derive(Debug, Clone)]
pub struct TokensConfig {
    pub jwt_secret: Option<Secret>,
    pub jwt_secret_previous: Vec<Secret>,
    /// The `jwtSecret` of the Medusa backend a store moved from (`MEDUSA_JWT_SECRET`).
    pub medusa_jwt_secret: Option<Secret>,
    pub jwt_expires_in: Duration,
    pub jwt_leeway: Duration,
    pub bcrypt_cost: u32,
    pub hash_concurrency: usize,
    pub password_min_length: usize,
    /// Minimum zxcvbn score 0..=4 of a new password.
    pub password_min_strength: u8,
    pub actor_types: Vec<String>,
}

impl TokensConfig {
    pub(super) fn read(env: &Env, cores: usize) -> Result<TokensConfig, ConfigError> {
        let bcrypt_cost: u32 = env.number(&BCRYPT_COST)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(BCRYPT_COST.invalid("must be within 4..=31"));
        }
        let actor_types = env.list(&ACTOR_TYPES);
        if actor_types.is_empty() {
            return Err(ACTOR_TYPES.invalid("must name at least one actor type"));
        }
        if let Some(bad) = actor_types.iter().find(|a| !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
            return Err(ACTOR_TYPES.invalid(&format!("{bad:?} is not a name of letters, digits and _")));
        }
        let tokens = TokensConfig {
            jwt_secret: env.get(&JWT_SECRET).map(|s| Secret(s.into_bytes())),
            jwt_secret_previous: env.list(&JWT_SECRET_PREVIOUS).into_iter().map(|s| Secret(s.into_bytes())).collect(),
            medusa_jwt_secret: env.get(&MEDUSA_JWT_SECRET).map(|s| Secret(s.into_bytes())),
            jwt_expires_in: env.duration(&JWT_EXPIRES_IN)?,
            jwt_leeway: env.duration(&JWT_LEEWAY)?,
            bcrypt_cost,
            hash_concurrency: env.number_or(&HASH_CONCURRENCY, cores)?.max(1),
            password_min_length: env.number(&PASSWORD_MIN_LENGTH)?,
            password_min_strength: match env.number(&PASSWORD_MIN_STRENGTH)? {
                score @ 0..=4 => score,
                _ => return Err(PASSWORD_MIN_STRENGTH.invalid("must be within 0..=4")),
            },
            actor_types,
        };
        if tokens.jwt_expires_in.is_zero() {
            return Err(JWT_EXPIRES_IN.invalid("must be longer than zero"));
        }
        if tokens.password_min_length == 0 {
            return Err(PASSWORD_MIN_LENGTH.invalid("must be at least 1"));
        }
        Ok(tokens)
    }
}
