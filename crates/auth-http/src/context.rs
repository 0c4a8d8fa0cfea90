//! The context of a request (`auth_domain::context`), built here before any use case runs: the
//! tenant from the `TenantDirectory` (the `Host` header; today one tenant, `default`), and on
//! `/auth/{actor}/{provider}/...` the route's actor type and provider, checked against what is
//! allowed, with the client the rate limits count by. Handlers build it where they used to
//! check `{actor}`/`{provider}`, so the order of checks (body syntax, then the context, then the
//! fields) is unchanged.

use actix_web::http::header;
use actix_web::{web, HttpRequest};

use auth_domain::context::{AuthContext, RequestContext};
use auth_domain::AuthError;

use crate::client::client_key;
use crate::AppState;

/// The `{actor}` and `{provider}` of a route, as written.
pub(crate) type ActorProvider = web::Path<(String, String)>;

impl AppState {
    /// The context of a request whose route names no actor type or provider: its tenant.
    pub(crate) fn request_context(&self, req: &HttpRequest) -> Result<RequestContext, AuthError> {
        let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
        let tenant = self.tenants.resolve(host)?;
        Ok(RequestContext::new(tenant.id))
    }

    /// The context of a request on `/auth/{actor}/{provider}/...`: its tenant, the route's actor
    /// type and provider (400 `not_allowed` for one that is not allowed), and its client.
    pub(crate) fn auth_context(&self, req: &HttpRequest, path: ActorProvider) -> Result<AuthContext, AuthError> {
        let (actor, provider) = path.into_inner();
        let request = self.request_context(req)?;
        let client = client_key(req, &self.settings.trusted_proxies);
        self.service.auth_context(request, &actor, &provider, client)
    }
}
