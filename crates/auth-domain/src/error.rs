//! The one error type of the domain. `auth-http` maps it to HTTP once.

use std::error::Error as StdError;

/// Why a token (or later a session) was refused. Logged at debug level, never shown to clients:
/// every reason answers the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// No credential was presented.
    Missing,
    /// Not a JWT, a bad signature, another algorithm, or missing claims.
    Invalid,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `iat` lies in the future beyond the leeway.
    IssuedInFuture,
    /// `nbf` lies in the future beyond the leeway (RFC 7519 §4.1.5).
    NotYetValid,
    /// The header's `crit` names extensions (RFC 7515 §4.1.11): this verifier understands none.
    UnknownCritical,
    /// A reset token where an auth token is expected, or the other way round.
    WrongKind,
    /// The token belongs to another tenant.
    WrongTenant,
    /// The actor type or provider of the token (or session) does not fit the request's context:
    /// the route's `{actor}`/`{provider}`, the actor types allowed, a `/store` route's `customer`.
    WrongContext,
    /// The identity's security stamp changed (password reset or change, logout-all), or the
    /// identity no longer exists.
    Revoked,
    /// A reset token that was already used, was superseded, or expired in the database.
    Consumed,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Malformed input or a policy violation (400 `invalid_data`). The message names the field.
    #[error("{0}")]
    InvalidData(String),
    /// A request the service does not allow, such as an unknown actor type (400 `not_allowed`).
    #[error("{0}")]
    NotAllowed(String),
    /// Credentials that do not match (401 with this message, always JSON).
    #[error("{0}")]
    Unauthorized(String),
    /// A missing or unusable token on a guarded route (the negotiated 401).
    #[error("unauthenticated: {0:?}")]
    Unauthenticated(TokenRejection),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness rule was broken (422 `duplicate_error`), or, inside the domain, the store's
    /// signal that a row with that key exists.
    #[error("{0}")]
    Duplicate(String),
    /// Over a rate limit (429 with `Retry-After`); `limit` names which one (`client`,
    /// `login_failures`, `login_failures_account`), for metrics.
    #[error("too many requests ({limit}), retry after {retry_after_secs} s")]
    TooManyRequests { limit: &'static str, retry_after_secs: u64 },
    /// A PostgreSQL serialization failure that survived the retries (409).
    #[error("the request conflicted with another request")]
    Conflict,
    /// The database is unreachable or failing (503 `database_error`: the request may be retried).
    #[error("database error")]
    Database(#[source] Box<dyn StdError + Send + Sync>),
    /// A sign-in provider that could not be reached, or answered its discovery document with an
    /// error or nonsense, while a sign-in was being started (502 `provider_unavailable`: nothing
    /// was stored, the storefront may try again). The text says what failed, for the log only.
    #[error("sign-in provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// Anything else (500 `unknown_error`).
    #[error("unexpected error: {0}")]
    Unexpected(String),
}

impl AuthError {
    pub fn database(err: impl StdError + Send + Sync + 'static) -> Self {
        AuthError::Database(Box::new(err))
    }

    pub fn unexpected(context: &str, err: impl std::fmt::Display) -> Self {
        AuthError::Unexpected(format!("{context}: {err}"))
    }
}

impl From<TokenRejection> for AuthError {
    fn from(reason: TokenRejection) -> Self {
        AuthError::Unauthenticated(reason)
    }
}
