//! The context of a request (`auth_domain::context`), built here before any use case runs: the
//! tenant that `tenant.rs` resolved from the request's host, with its settings, and on
//! `/auth/{actor}/{provider}/...` the route's actor type and provider, checked against what is
//! allowed, with the client the rate limits count by. Handlers build it where they used to
//! check `{actor}`/`{provider}`, so the order of checks (body syntax, then the context, then the
//! fields) is unchanged.

use actix_web::{web, HttpRequest};

use auth_domain::context::{AuthContext, RequestContext};
use auth_domain::tenant::NO_SUCH_STORE;
use auth_domain::AuthError;

use crate::client::client_key;
use crate::AppState;

/// The `{actor}` and `{provider}` of a route, as written.
pub(crate) type ActorProvider = web::Path<(String, String)>;

impl AppState {
    /// The context of a request whose route names no actor type or provider: its tenant (404
    /// when none was resolved, which the middleware does for every route that takes a context).
    pub(crate) fn request_context(&self, req: &HttpRequest) -> Result<RequestContext, AuthError> {
        let tenant = crate::tenant::of(req).ok_or_else(|| AuthError::NotFound(NO_SUCH_STORE.into()))?;
        Ok(RequestContext::new(tenant))
    }

    /// The context of a request on `/auth/{actor}/{provider}/...`: its tenant, the route's actor
    /// type and provider (400 `not_allowed` for one that is not allowed), and its client.
    pub(crate) fn auth_context(&self, req: &HttpRequest, path: ActorProvider) -> Result<AuthContext, AuthError> {
        let (actor, provider) = path.into_inner();
        let request = self.request_context(req)?;
        let client = client_key(req, &self.settings.trusted_proxies);
        self.service.auth_context(request, &actor, &provider, client)
    }

    /// The context of a request on `/auth/{actor}/{provider}` for a provider the tenant
    /// configured besides `emailpass` (400 `not_allowed` otherwise), and that provider.
    pub(crate) fn oauth_context(
        &self,
        req: &HttpRequest,
        path: ActorProvider,
    ) -> Result<(AuthContext, auth_domain::oauth::OAuthProvider), AuthError> {
        let (actor, provider) = path.into_inner();
        let request = self.request_context(req)?;
        let client = client_key(req, &self.settings.trusted_proxies);
        self.service.oauth_context(request, &actor, &provider, client)
    }
}
