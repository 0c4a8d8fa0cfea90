//! `ResetRequestStore`: password reset requests, recorded before reset-password answers and
//! fulfilled by a worker, so that no request is lost once answered.

use chrono::{DateTime, Utc};

use crate::event::NewEvent;
use crate::model::{NewResetToken, ResetRequest};
use crate::newtypes::TenantId;
use crate::AuthError;

/// Pending reset requests.
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails, and
/// `AuthError::Conflict` when a PostgreSQL serialization failure survives the retries.
pub trait ResetRequestStore: Send + Sync {
    /// Records `request` (one insert, the same whether or not its identifier names an account).
    fn record_reset_request(&self, request: &ResetRequest) -> Result<(), AuthError>;

    /// Takes up to `limit` requests created at or before `created_before` that no worker holds
    /// (never taken, or their lease ended at or before `now`), oldest first, and holds them
    /// until `lease_until`. Concurrent callers never take the same request while its lease
    /// runs (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the write lock).
    fn claim_reset_requests(
        &self,
        now: DateTime<Utc>,
        created_before: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ResetRequest>, AuthError>;

    /// Ends the request `id` of `tenant` in one transaction: deletes it and, when `reset` is
    /// given, stores the token as `IdentityStore::store_reset_token` does and writes the event.
    /// `Ok(false)`, changing nothing, when the request is gone (another worker ended it).
    fn fulfil_reset_request(
        &self,
        tenant: &TenantId,
        id: &str,
        reset: Option<(&NewResetToken, &NewEvent)>,
    ) -> Result<bool, AuthError>;
}

impl<T: ResetRequestStore + ?Sized> ResetRequestStore for std::sync::Arc<T> {
    fn record_reset_request(&self, request: &ResetRequest) -> Result<(), AuthError> {
        (**self).record_reset_request(request)
    }
    fn claim_reset_requests(
        &self,
        now: DateTime<Utc>,
        created_before: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ResetRequest>, AuthError> {
        (**self).claim_reset_requests(now, created_before, lease_until, limit)
    }
    fn fulfil_reset_request(
        &self,
        tenant: &TenantId,
        id: &str,
        reset: Option<(&NewResetToken, &NewEvent)>,
    ) -> Result<bool, AuthError> {
        (**self).fulfil_reset_request(tenant, id, reset)
    }
}
