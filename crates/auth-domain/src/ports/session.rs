//! `SessionStore`: cookie sessions.

use chrono::{DateTime, Utc};

use crate::model::{NewSession, SessionRecord};
use crate::newtypes::TenantId;
use crate::secret::HashedToken;
use crate::AuthError;

/// Cookie sessions, stored by the SHA-256 of their id (`HashedToken`).
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails, and
/// the writing ones `AuthError::Conflict` when a serialization failure survives the retries.
pub trait SessionStore: Send + Sync {
    /// Stores `session`; deletes the session `replaces` in the same transaction.
    fn create_session(
        &self,
        tenant: &TenantId,
        session: &NewSession,
        replaces: Option<&HashedToken>,
    ) -> Result<(), AuthError>;

    /// The session `session_hash` if it has not expired at `now`, with its identity seen
    /// through the session's provider; `Ok(None)` otherwise.
    fn find_session(
        &self,
        tenant: &TenantId,
        session_hash: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, AuthError>;

    /// Deletes the session; `Ok(false)` when there was none.
    fn delete_session(&self, tenant: &TenantId, session_hash: &HashedToken) -> Result<bool, AuthError>;
}

impl<T: SessionStore + ?Sized> SessionStore for std::sync::Arc<T> {
    fn create_session(
        &self,
        tenant: &TenantId,
        session: &NewSession,
        replaces: Option<&HashedToken>,
    ) -> Result<(), AuthError> {
        (**self).create_session(tenant, session, replaces)
    }
    fn find_session(
        &self,
        tenant: &TenantId,
        session_hash: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, AuthError> {
        (**self).find_session(tenant, session_hash, now)
    }
    fn delete_session(&self, tenant: &TenantId, session_hash: &HashedToken) -> Result<bool, AuthError> {
        (**self).delete_session(tenant, session_hash)
    }
}
