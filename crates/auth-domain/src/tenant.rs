//! Tenants: whose store a request is for. Every row carries a `tenant_id` and every lookup is
//! scoped to one, but there is one tenant, `default`, until tenancy is built.
//!
//! A request's tenant comes from a `TenantDirectory`, asked once per request by the inbound
//! adapter (`auth-http/src/context.rs`) before any use case runs; the answer goes into the
//! request's context (`context.rs`), and the use cases read the tenant there, never from
//! process-wide settings. Today `SingleTenant` answers `default` for every request. Tenancy
//! (issue 10) puts a real directory behind the same port: a `tenant` table
//! (`auth-store-diesel/src/tenant.rs`), the `{tenant}` of `{tenant}.api.<domain>` from the `Host`
//! header, a 404 for an unknown or disabled tenant, and the tenant's own settings (actor types,
//! CORS, publishable keys, reset URL, password policy, token lifetime) carried by `Tenant`, over
//! the global ones, with the cache of issue 14 in front of it.

use crate::newtypes::TenantId;
use crate::AuthError;

/// A tenant as the directory answers it.
///
/// Only its id today. This is where the tenant's effective settings will go (its actor types,
/// origins, keys, reset link, policy, lifetimes: the global settings overridden by its own), so
/// that the context a request carries brings them to every use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
}

/// Tells which tenant a request is for.
///
/// `resolve` returns `AuthError::NotFound` when the request names no tenant this service serves
/// (unknown or disabled: 404, as a store that does not exist), and `AuthError::Database` when a
/// directory backed by a database cannot read it. `SingleTenant` returns neither.
pub trait TenantDirectory: Send + Sync {
    /// The tenant of a request that arrived for `host` (the `Host` header, when there is one).
    fn resolve(&self, host: Option<&str>) -> Result<Tenant, AuthError>;
}

/// The directory of a service with one tenant, `default`: every request is for it, whatever its
/// host.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleTenant;

impl TenantDirectory for SingleTenant {
    fn resolve(&self, _host: Option<&str>) -> Result<Tenant, AuthError> {
        Ok(Tenant { id: TenantId::default_tenant() })
    }
}

impl<T: TenantDirectory + ?Sized> TenantDirectory for std::sync::Arc<T> {
    fn resolve(&self, host: Option<&str>) -> Result<Tenant, AuthError> {
        (**self).resolve(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tenant_answers_default_for_every_host() {
        for host in [None, Some("acme.api.myxclade.com"), Some("localhost:9000")] {
            assert_eq!(SingleTenant.resolve(host).unwrap().id, TenantId::default_tenant());
        }
    }
}
