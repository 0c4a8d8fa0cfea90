//! `CustomerStore`: customer accounts.

use chrono::{DateTime, Utc};

use crate::model::{Customer, CustomerFields};
use crate::newtypes::TenantId;
use crate::AuthError;

/// Customer accounts.
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails, and
/// the writing ones `AuthError::Conflict` when a serialization failure survives the retries.
pub trait CustomerStore: Send + Sync {
    /// In one transaction that first locks the identity: refuses with `AuthError::InvalidData`
    /// ("Request already authenticated as a customer.") when the identity already has a
    /// `customer_id`; inserts `customer` (`AuthError::Duplicate` when its email already has an
    /// account); links it as `app_metadata.customer_id`. Of concurrent calls for one identity
    /// exactly one creates a customer. `AuthError::Unauthenticated(Revoked)` when the identity
    /// no longer exists.
    fn create_customer(&self, tenant: &TenantId, auth_identity_id: &str, customer: &Customer) -> Result<(), AuthError>;

    /// The customer `id`; `Ok(None)` when there is none.
    fn find_customer(&self, tenant: &TenantId, id: &str) -> Result<Option<Customer>, AuthError>;

    /// Applies `fields` to the customer `id`; returns it as stored, `Ok(None)` when there is none.
    fn update_customer(
        &self,
        tenant: &TenantId,
        id: &str,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, AuthError>;
}

impl<T: CustomerStore + ?Sized> CustomerStore for std::sync::Arc<T> {
    fn create_customer(&self, tenant: &TenantId, auth_identity_id: &str, customer: &Customer) -> Result<(), AuthError> {
        (**self).create_customer(tenant, auth_identity_id, customer)
    }
    fn find_customer(&self, tenant: &TenantId, id: &str) -> Result<Option<Customer>, AuthError> {
        (**self).find_customer(tenant, id)
    }
    fn update_customer(
        &self,
        tenant: &TenantId,
        id: &str,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, AuthError> {
        (**self).update_customer(tenant, id, fields, now)
    }
}
