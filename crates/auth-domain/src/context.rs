//! The context of a request: who it is for, built once per request by the inbound adapter and
//! passed to every use case. No use case reads a tenant from the settings.
//!
//! - `RequestContext`: the tenant alone, for the routes that name no actor type or provider
//!   (refresh, sessions, logout-all, `/store/customers*`): the caller's credentials say the rest.
//!   The CLI builds one for the default tenant (`user create`).
//! - `AuthContext`: the routes `/auth/{actor}/{provider}/...`: the tenant, the route's actor type
//!   and provider, checked against what the tenant allows (`AuthService::auth_context`), and the
//!   client the request comes from (the rate limits' key).
//!
//! With tenancy (issue 10) the tenant here becomes the directory's whole answer (`Tenant`, with
//! its effective settings), so that a use case finds the tenant's policy where it finds its id.

use crate::newtypes::{ActorType, AuthProvider, TenantId};

/// The context of a request whose route names no actor type or provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub tenant: TenantId,
}

impl RequestContext {
    pub fn new(tenant: TenantId) -> RequestContext {
        RequestContext { tenant }
    }
}

/// The context of a request on `/auth/{actor}/{provider}/...`. Made by
/// `AuthService::auth_context`, which checks the actor type and the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    pub tenant: TenantId,
    pub actor_type: ActorType,
    pub provider: AuthProvider,
    /// The client's address key (`auth-http/src/client.rs`): what the per-client budget and the
    /// failed-login throttles count by.
    pub client: String,
}

impl AuthContext {
    /// The same request, seen without its actor type and provider (to authenticate its caller).
    pub fn request(&self) -> RequestContext {
        RequestContext { tenant: self.tenant.clone() }
    }
}
