//! `IdentityStore`: identities, their credentials and reset tokens.

use chrono::{DateTime, Utc};

use crate::event::NewEvent;
use crate::model::{IdentityRecord, NewIdentity, NewResetToken, PasswordChange, PasswordResetCompletion};
use crate::newtypes::{AuthProvider, EntityKey, TenantId};
use crate::secret::HashedToken;
use crate::AuthError;

/// Identities, their credentials and reset tokens. Every method takes the tenant first, and
/// every lookup is scoped to it.
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails, and
/// `AuthError::Conflict` when a PostgreSQL serialization failure survives the retries; the other
/// variants each method may return are listed on it.
pub trait IdentityStore: Send + Sync {
    /// The identity whose provider identity for `provider` has the lookup key `entity_key`;
    /// `Ok(None)` when there is none.
    fn find_by_email(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        entity_key: &EntityKey,
    ) -> Result<Option<IdentityRecord>, AuthError>;

    /// The identity `auth_identity_id` seen through its `provider` identity; `Ok(None)` when
    /// either does not exist.
    fn find_by_id(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        auth_identity_id: &str,
    ) -> Result<Option<IdentityRecord>, AuthError>;

    /// The identity `find_by_id` would return, if the store holds it in memory and can answer
    /// without blocking (no database, no lock held long); `None` otherwise, and always for a store
    /// without such memory. An answer here must be as current as `find_by_id`'s.
    fn find_by_id_in_memory(
        &self,
        _tenant: &TenantId,
        _provider: &AuthProvider,
        _auth_identity_id: &str,
    ) -> Option<IdentityRecord> {
        None
    }

    /// Creates the auth identity and its provider identity in one transaction.
    /// Returns `AuthError::Duplicate` when `(tenant, provider, entity_key)` is taken, also when a
    /// concurrent request took it first.
    fn create_identity(&self, tenant: &TenantId, identity: &NewIdentity) -> Result<(), AuthError>;

    /// Replaces the password hash only if the stored one is still `expected_hash`; `Ok(false)`
    /// when it changed meanwhile (so a login's rehash never undoes a concurrent reset).
    fn replace_password_hash_if(
        &self,
        tenant: &TenantId,
        provider_identity_id: &str,
        expected_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError>;

    /// Stores `token` as the one live reset token of its provider identity (replacing any
    /// earlier one) and writes `event`, in one transaction. Concurrent calls for one account
    /// leave exactly one live token.
    fn store_reset_token(&self, tenant: &TenantId, token: &NewResetToken, event: &NewEvent) -> Result<(), AuthError>;

    /// Whether a reset token with `token_hash` is live (stored, not expired) for the provider
    /// identity. A cheap check before hashing; `complete_password_reset` decides.
    fn reset_token_is_live(
        &self,
        tenant: &TenantId,
        token_hash: &HashedToken,
        provider_identity_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError>;

    /// In one transaction: deletes the live reset token, sets the new hash and the new security
    /// stamp, ends every session of the identity, and writes `event`. Returns `AuthError::Unauthenticated(TokenRejection::Consumed)`
    /// when no live token matched (used, superseded, expired), changing nothing; of concurrent
    /// calls with one token exactly one succeeds.
    fn complete_password_reset(
        &self,
        tenant: &TenantId,
        completion: &PasswordResetCompletion,
        event: &NewEvent,
    ) -> Result<(), AuthError>;

    /// In one transaction: sets a new security stamp and ends every session and pending reset
    /// token of the identity (logout-all). Returns `AuthError::Unauthenticated(Revoked)` when the
    /// identity no longer exists.
    fn revoke_all(
        &self,
        tenant: &TenantId,
        auth_identity_id: &str,
        new_stamp: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError>;

    /// In one transaction: replaces the hash only if it is still `change.expected_hash`, sets the
    /// new stamp, ends every session and pending reset token, and writes `event`. `Ok(false)`, changing nothing, when the
    /// hash changed meanwhile.
    fn change_password(&self, tenant: &TenantId, change: &PasswordChange, event: &NewEvent) -> Result<bool, AuthError>;
}

impl<T: IdentityStore + ?Sized> IdentityStore for std::sync::Arc<T> {
    fn find_by_email(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        entity_key: &EntityKey,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        (**self).find_by_email(tenant, provider, entity_key)
    }
    fn find_by_id(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        auth_identity_id: &str,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        (**self).find_by_id(tenant, provider, auth_identity_id)
    }
    fn find_by_id_in_memory(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        auth_identity_id: &str,
    ) -> Option<IdentityRecord> {
        (**self).find_by_id_in_memory(tenant, provider, auth_identity_id)
    }
    fn create_identity(&self, tenant: &TenantId, identity: &NewIdentity) -> Result<(), AuthError> {
        (**self).create_identity(tenant, identity)
    }
    fn replace_password_hash_if(
        &self,
        tenant: &TenantId,
        provider_identity_id: &str,
        expected_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        (**self).replace_password_hash_if(tenant, provider_identity_id, expected_hash, new_hash, now)
    }
    fn store_reset_token(&self, tenant: &TenantId, token: &NewResetToken, event: &NewEvent) -> Result<(), AuthError> {
        (**self).store_reset_token(tenant, token, event)
    }
    fn reset_token_is_live(
        &self,
        tenant: &TenantId,
        token_hash: &HashedToken,
        provider_identity_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        (**self).reset_token_is_live(tenant, token_hash, provider_identity_id, now)
    }
    fn complete_password_reset(
        &self,
        tenant: &TenantId,
        completion: &PasswordResetCompletion,
        event: &NewEvent,
    ) -> Result<(), AuthError> {
        (**self).complete_password_reset(tenant, completion, event)
    }
    fn revoke_all(
        &self,
        tenant: &TenantId,
        auth_identity_id: &str,
        new_stamp: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        (**self).revoke_all(tenant, auth_identity_id, new_stamp, now)
    }
    fn change_password(&self, tenant: &TenantId, change: &PasswordChange, event: &NewEvent) -> Result<bool, AuthError> {
        (**self).change_password(tenant, change, event)
    }
}
