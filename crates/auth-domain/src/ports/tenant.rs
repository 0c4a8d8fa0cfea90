//! Tenants as data: the `tenant` table that the server's directory caches and the CLI's
//! `xclade-auth tenant ...` commands write.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::newtypes::TenantId;
use crate::tenant::TenantStatus;
use crate::AuthError;

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub status: TenantStatus,
    /// The tenant's own settings, by variable name (`ACTOR_TYPES`, `STORE_CORS`, ...), as the
    /// operator wrote them; a secret's value is sealed (`secret::SecretBox`) before it is stored.
    pub settings: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The directory's revision when this tenant last changed.
    pub revision: i64,
}

/// What a change to a tenant sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantChange {
    pub status: Option<TenantStatus>,
    /// The whole settings map, replacing the stored one.
    pub settings: Option<BTreeMap<String, String>>,
}

/// The tenants. Every write bumps the directory's revision in its own transaction, so that a
/// reader that sees revision `n` sees every change up to `n` (`tenants_since`).
pub trait TenantStore: Send + Sync {
    /// The directory's revision: 1 once migrated (the tenant `default` is the first write), then
    /// one more per write.
    fn tenant_revision(&self) -> Result<i64, AuthError>;

    /// The tenants written after `revision` (every tenant for 0).
    fn tenants_since(&self, revision: i64) -> Result<Vec<TenantRecord>, AuthError>;

    fn find_tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, AuthError>;

    /// Creates an active tenant; `Conflict` when the name is taken (not `Duplicate`, which is an
    /// account's).
    fn create_tenant(
        &self,
        id: &TenantId,
        settings: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<TenantRecord, AuthError>;

    /// Applies `change`; `NotFound` when there is no such tenant.
    fn update_tenant(
        &self,
        id: &TenantId,
        change: &TenantChange,
        now: DateTime<Utc>,
    ) -> Result<TenantRecord, AuthError>;
}
