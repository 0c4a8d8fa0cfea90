//! The context of a request: who it is for, built once per request by the inbound adapter and
//! passed to every use case. No use case reads a tenant or its policy from process-wide settings.
//!
//! - `RequestContext`: the tenant and its effective settings, for the routes that name no actor
//!   type or provider (refresh, sessions, logout-all, `/store/customers*`): the caller's
//!   credentials say the rest. The CLI builds one from the directory (`user create`).
//! - `AuthContext`: the routes `/auth/{actor}/{provider}/...`: the tenant, the route's actor type
//!   and provider, checked against what the tenant allows (`AuthService::auth_context`), and the
//!   client the request comes from (the rate limits' key).

use std::sync::Arc;

use crate::keys::KeyRing;
use crate::newtypes::{ActorType, AuthProvider, TenantId};
use crate::tenant::{Tenant, TenantSettings};

/// The context of a request whose route names no actor type or provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub tenant: TenantId,
    /// The tenant's effective settings (its own over the global ones).
    pub settings: Arc<TenantSettings>,
    /// The tenant's signing keys.
    pub keys: Arc<KeyRing>,
}

impl RequestContext {
    /// The context of a request for `tenant` (as the directory answered it).
    pub fn new(tenant: Tenant) -> RequestContext {
        RequestContext { tenant: tenant.id, settings: tenant.settings, keys: tenant.keys }
    }
}

/// The context of a request on `/auth/{actor}/{provider}/...`. Made by
/// `AuthService::auth_context`, which checks the actor type and the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    pub tenant: TenantId,
    pub settings: Arc<TenantSettings>,
    pub keys: Arc<KeyRing>,
    pub actor_type: ActorType,
    pub provider: AuthProvider,
    /// The client's address key (`auth-http/src/client.rs`): what the per-client budget and the
    /// failed-login throttles count by.
    pub client: String,
}

impl AuthContext {
    /// The same request, seen without its actor type and provider (to authenticate its caller).
    pub fn request(&self) -> RequestContext {
        RequestContext { tenant: self.tenant.clone(), settings: self.settings.clone(), keys: self.keys.clone() }
    }
}
