//! The tenants' signing keys (`keys.rs`), written by `xclade-auth keys ...` and read by the
//! server's tenant directory, which reloads a tenant's keys when its revision moves.

use chrono::{DateTime, Utc};

use crate::keys::SigningKeyRecord;
use crate::newtypes::TenantId;
use crate::AuthError;

/// The signing keys. Every write bumps the tenant directory's revision and the tenant's (as a
/// `TenantStore` write does), in its own transaction, so that every instance picks the change
/// up with the tenant's settings.
pub trait KeyStore: Send + Sync {
    /// The keys of `tenant`, any state.
    fn tenant_keys(&self, tenant: &TenantId) -> Result<Vec<SigningKeyRecord>, AuthError>;

    /// Stores a new key (its state as given: `next`, or `active` when the tenant has none);
    /// `NotFound` when the tenant does not exist, `Conflict` when it would be a second active key.
    fn insert_key(&self, key: &SigningKeyRecord) -> Result<(), AuthError>;

    /// Makes `kid` the active key; the key active before becomes `retired`, in the same
    /// transaction. `NotFound` when `tenant` has no such key, or it is retired.
    fn activate_key(&self, tenant: &TenantId, kid: &str, now: DateTime<Utc>) -> Result<(), AuthError>;

    /// Retires `kid` (it verifies, it no longer signs). `NotFound` when there is no such key.
    fn retire_key(&self, tenant: &TenantId, kid: &str, now: DateTime<Utc>) -> Result<(), AuthError>;

    /// Deletes `kid`; `false` when there was no such key.
    fn delete_key(&self, tenant: &TenantId, kid: &str) -> Result<bool, AuthError>;
}
