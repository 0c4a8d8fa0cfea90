//! The use cases, as plain synchronous functions on a service generic over its ports, one file
//! per family: `register`, `login` (with the failed-login throttles), `reset` (request, verify,
//! update), `session` (authenticate, refresh, open and close sessions, logout-all),
//! `change_password`, `customer` (`/store/customers*`), `user` (the CLI's `user create`). This
//! file holds the service itself, its settings and what the families share (the per-client
//! budget, the check of a request's actor type and provider, token issuing).
//!
//! Every use case takes the request's context (`crate::context`): the tenant comes from there,
//! never from the settings. Each use case that hashes does so before it writes, and never while
//! a store call is open: the store methods are short units of work (see `ports`). Callers run
//! these functions on a blocking thread; the ones that hash (`register`, `login`,
//! `update_password`, `change_password`) behind the hashing semaphore.

mod change_password;
mod customer;
mod login;
mod register;
mod reset;
mod session;
mod user;

use chrono::Duration;
use serde_json::Map;

use crate::context::{AuthContext, RequestContext};
use crate::event::{NewEvent, StoredEvent};
use crate::model::{IdentityRecord, NewIdentity};
use crate::newtypes::{ActorType, AuthProvider, TenantId};
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::ports::{AuthStore, Clock, EventWaker};
use crate::ratelimit::{RateLimit, RateLimiter, Unlimited};
use crate::secret::{sha256_hex, SecretBox};
use crate::token::{AuthTokenInput, TokenCodec};
use crate::AuthError;

pub use customer::NewCustomerInput;
pub use session::Authenticated;

pub const INVALID_CREDENTIALS: &str = "Invalid email or password";
pub const IDENTITY_EXISTS: &str = "Identity with email already exists";
pub const INVALID_PASSWORD: &str = "Invalid password";
pub const ALREADY_CUSTOMER: &str = "Request already authenticated as a customer.";
pub const CUSTOMER_EXISTS: &str = "Customer with this email already has an account";
pub const CUSTOMER_EMAIL_MISMATCH: &str =
    "Invalid request: Field 'email' must be the email of the authenticated identity";
pub const CUSTOMER_EMAIL_UNVERIFIED: &str =
    "Invalid request: the identity has no verified email to create a customer with";
/// The actor type of storefront customers, the one `/store` routes serve.
pub const CUSTOMER: &str = "customer";

/// The policy knobs of the use cases, the same for every tenant today. With tenancy (issue 10)
/// a tenant's own settings override them and reach the use cases through the request's context.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The `{actor}` values routes accept.
    pub actor_types: Vec<String>,
    pub password_policy: PasswordPolicy,
    /// Lifetime of a reset token (15 minutes, as Medusa).
    pub reset_ttl: Duration,
    /// The sinks every event is delivered to.
    pub event_sinks: Vec<String>,
    /// Lifetime of a cookie session (10 hours, as Medusa).
    pub session_ttl: Duration,
    pub limits: Limits,
}

/// The abuse limits (design §7); enforced when the service has a rate limiter.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per client address to register, login, reset-password, update, change-password.
    pub per_client: RateLimit,
    /// Failed logins per (email, client address).
    pub login_failures: RateLimit,
    /// Failed logins per email, from all addresses.
    pub login_failures_account: RateLimit,
    /// At most one reset per email per interval.
    pub reset_interval: Duration,
}

impl Limits {
    /// The longest window of any limit: a bucket untouched this long is full again, whatever
    /// its limit (what the janitor waits before it forgets a bucket).
    pub fn longest_window(&self) -> Duration {
        [self.per_client.window, self.login_failures.window, self.login_failures_account.window, self.reset_interval]
            .into_iter()
            .max()
            .unwrap_or_else(Duration::zero)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_client: RateLimit { capacity: 60, window: Duration::minutes(1) },
            login_failures: RateLimit { capacity: 5, window: Duration::minutes(15) },
            login_failures_account: RateLimit { capacity: 20, window: Duration::hours(1) },
            reset_interval: Duration::seconds(60),
        }
    }
}

pub struct AuthService<S, C> {
    store: S,
    clock: C,
    hasher: PasswordHasher,
    tokens: TokenCodec,
    secrets: SecretBox,
    settings: AuthSettings,
    waker: Option<std::sync::Arc<dyn EventWaker>>,
    limiter: std::sync::Arc<dyn RateLimiter>,
}

impl<S, C> std::fmt::Debug for AuthService<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    pub fn new(
        store: S,
        clock: C,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        secrets: SecretBox,
        settings: AuthSettings,
    ) -> Self {
        AuthService {
            store,
            clock,
            hasher,
            tokens,
            secrets,
            settings,
            waker: None,
            limiter: std::sync::Arc::new(Unlimited),
        }
    }

    /// Enforces `settings.limits` with `limiter` (without one, nothing is limited).
    pub fn with_rate_limiter(mut self, limiter: std::sync::Arc<dyn RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Wakes the dispatcher after every committed event.
    pub fn with_event_waker(mut self, waker: std::sync::Arc<dyn EventWaker>) -> Self {
        self.waker = Some(waker);
        self
    }

    fn wake_dispatcher(&self) {
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }

    pub fn tokens(&self) -> &TokenCodec {
        &self.tokens
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// A bucket key: hashed, so no address or email is stored in clear.
    fn bucket(kind: &str, parts: &[&str]) -> String {
        format!("{kind}:{}", sha256_hex(&parts.join("\u{1f}")))
    }

    /// The per-client budget of the credential routes (register, login, reset-password, update,
    /// change-password): `TooManyRequests` once spent. Counted by `ctx.client`.
    pub fn admit(&self, ctx: &AuthContext) -> Result<(), AuthError> {
        let key = Self::bucket("client", &[&ctx.client]);
        self.limiter.take(&key, &self.settings.limits.per_client, self.clock.now())?.check("client")
    }

    /// The context of a request on `/auth/{actor}/{provider}/...`: `{actor}` must be one of
    /// `ACTOR_TYPES` and `{provider}` a known provider (400 `not_allowed` naming it, the actor
    /// type first). `client` is the client's address key.
    pub fn auth_context(
        &self,
        request: RequestContext,
        actor_type: &str,
        provider: &str,
        client: String,
    ) -> Result<AuthContext, AuthError> {
        let actor_type = self.check_actor_type(&request, actor_type)?;
        let provider = AuthProvider::new(provider);
        if !provider.is_emailpass() {
            return Err(AuthError::NotAllowed(format!("Unknown auth provider: {provider}")));
        }
        Ok(AuthContext { tenant: request.tenant, actor_type, provider, client })
    }

    /// Checks an actor type against `ACTOR_TYPES` (for the tenant of `_request`, once tenants
    /// have settings of their own): 400 `not_allowed` naming it otherwise.
    pub fn check_actor_type(&self, _request: &RequestContext, actor_type: &str) -> Result<ActorType, AuthError> {
        if self.settings.actor_types.iter().any(|a| a == actor_type) {
            Ok(ActorType::new(actor_type))
        } else {
            Err(AuthError::NotAllowed(format!("Unknown actor type: {actor_type}")))
        }
    }

    /// An auth token for `identity` as the request's actor type, through its provider.
    fn issue_for(&self, ctx: &AuthContext, identity: &IdentityRecord) -> Result<String, AuthError> {
        self.issue(&ctx.tenant, &ctx.actor_type, &ctx.provider, identity)
    }

    fn issue(
        &self,
        tenant: &TenantId,
        actor_type: &ActorType,
        provider: &AuthProvider,
        identity: &IdentityRecord,
    ) -> Result<String, AuthError> {
        let input = AuthTokenInput {
            actor_id: identity.actor_id(actor_type),
            actor_type: actor_type.as_str().into(),
            auth_identity_id: identity.auth_identity_id.clone(),
            auth_provider: provider.as_str().into(),
            app_metadata: identity.app_metadata.clone(),
            user_metadata: identity.user_metadata.clone(),
            stamp: identity.security_stamp.clone(),
            tenant: tenant.as_str().into(),
        };
        self.tokens.issue_auth(&input, self.clock.now())
    }

    fn outgoing(&self, event: StoredEvent) -> NewEvent {
        NewEvent { event, sinks: self.settings.event_sinks.clone() }
    }
}

/// The identity just created, as a lookup would read it.
fn record_of(identity: NewIdentity) -> IdentityRecord {
    IdentityRecord {
        auth_identity_id: identity.auth_identity_id,
        provider_identity_id: identity.provider_identity_id,
        provider: identity.provider,
        entity_id: identity.entity_id,
        password_hash: identity.password_hash,
        app_metadata: identity.app_metadata,
        user_metadata: Map::new(),
        security_stamp: identity.security_stamp,
    }
}

#[cfg(test)]
mod tests;
