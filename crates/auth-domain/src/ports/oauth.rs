//! `OAuthStore`: the pending sign-ins with other providers and the identities they create; and
//! `ProviderHttp`: the calls to those providers.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::model::{NewOAuthState, NewSocialIdentity, OAuthStateRecord};
use crate::newtypes::TenantId;
use crate::secret::HashedToken;
use crate::AuthError;

/// Pending sign-ins (`oauth_state`, stored by the SHA-256 of their `state`) and the identities of
/// other providers.
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails, and
/// `AuthError::Conflict` when a PostgreSQL serialization failure survives the retries; the other
/// variants each method may return are listed on it.
pub trait OAuthStore: Send + Sync {
    /// Stores a pending sign-in.
    fn create_oauth_state(&self, tenant: &TenantId, state: &NewOAuthState) -> Result<(), AuthError>;

    /// Deletes the pending sign-in `state_hash` of `tenant` and answers it when it had not
    /// expired at `now`; `Ok(None)` when there is none (never made, another tenant's, used,
    /// expired). Of concurrent calls with one hash at most one answers it.
    fn take_oauth_state(
        &self,
        tenant: &TenantId,
        state_hash: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthStateRecord>, AuthError>;

    /// Creates an auth identity and its provider identity (no password) in one transaction.
    /// Returns `AuthError::Duplicate` when `(tenant, provider, subject)` is taken, also when a
    /// concurrent request took it first.
    fn create_social_identity(&self, tenant: &TenantId, identity: &NewSocialIdentity) -> Result<(), AuthError>;

    /// Adds a provider identity for `identity.subject` to the existing auth identity
    /// `identity.auth_identity_id` of `tenant` (linking; `security_stamp` is not used).
    /// Returns `AuthError::Duplicate` when `(tenant, provider, subject)` is taken, when that auth
    /// identity already has a provider identity of this provider, or when it is not the tenant's.
    fn attach_social_identity(&self, tenant: &TenantId, identity: &NewSocialIdentity) -> Result<(), AuthError>;

    /// Replaces the `user_metadata` of a provider identity (the profile as last seen).
    fn update_user_metadata(
        &self,
        tenant: &TenantId,
        provider_identity_id: &str,
        user_metadata: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError>;
}

impl<T: OAuthStore + ?Sized> OAuthStore for std::sync::Arc<T> {
    fn create_oauth_state(&self, tenant: &TenantId, state: &NewOAuthState) -> Result<(), AuthError> {
        (**self).create_oauth_state(tenant, state)
    }
    fn take_oauth_state(
        &self,
        tenant: &TenantId,
        state_hash: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthStateRecord>, AuthError> {
        (**self).take_oauth_state(tenant, state_hash, now)
    }
    fn create_social_identity(&self, tenant: &TenantId, identity: &NewSocialIdentity) -> Result<(), AuthError> {
        (**self).create_social_identity(tenant, identity)
    }
    fn attach_social_identity(&self, tenant: &TenantId, identity: &NewSocialIdentity) -> Result<(), AuthError> {
        (**self).attach_social_identity(tenant, identity)
    }
    fn update_user_metadata(
        &self,
        tenant: &TenantId,
        provider_identity_id: &str,
        user_metadata: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        (**self).update_user_metadata(tenant, provider_identity_id, user_metadata, now)
    }
}

/// An answer of a provider: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// HTTP to identity providers. An implementation has time limits, follows no redirect, verifies
/// TLS, and refuses any URL that `oauth::outbound_url_ok` refuses. Every method answers `Err`
/// with a reason (never carrying a header or form value: they hold secrets) when no answer came;
/// any status is an `Ok`.
pub trait ProviderHttp: Send + Sync {
    /// `GET url` with `headers`.
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpAnswer, String>;

    /// `POST url` with `headers` and the form `body` (already encoded).
    fn post_form(&self, url: &str, headers: &[(&str, &str)], body: &str) -> Result<HttpAnswer, String>;
}
