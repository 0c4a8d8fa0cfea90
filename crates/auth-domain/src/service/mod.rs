//! The use cases, as plain synchronous functions on a service generic over its ports, one file
//! per family: `register`, `login` (with the failed-login throttles), `reset` (request, verify,
//! update), `session` (authenticate, refresh, open and close sessions, logout-all),
//! `change_password`, `customer` (`/store/customers*`), `user` (the CLI's `user create`), `oauth`
//! (sign-in with Google, GitHub or an OpenID Connect issuer: begin, take, profile, finish). This
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
mod device;
mod login;
mod oauth;
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
use crate::password::PasswordHasher;
use crate::ports::{AuthStore, Clock, EventWaker, ProviderHttp};
use crate::ratelimit::{RateLimit, RateLimiter, Unlimited};
use crate::secret::SecretBox;
use crate::tenant::TenantSettings;
use crate::token::{AuthTokenInput, Issuing, TokenCodec};
use crate::AuthError;

pub use customer::NewCustomerInput;
pub use device::DEVICE_COOKIE;
pub use login::LoginSuccess;
pub use oauth::{PendingSignIn, STATE_TTL_MINUTES};
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
/// A callback whose `state` is missing, unknown, used, expired, or another actor type's or
/// provider's.
pub const OAUTH_STATE_INVALID: &str = "Invalid or expired state: start the sign-in again";
/// A callback the provider did not complete (`?error=...`), a missing or refused code, an ID
/// token or a user API answer that does not pass.
pub const OAUTH_FAILED: &str = "Authentication with the provider failed";
/// A linking sign-in (`/link`) whose provider did not assert the account's own email as verified,
/// or whose provider identity already signs in to another identity.
pub const OAUTH_LINK_REFUSED: &str =
    "The provider account cannot be linked: it must have this account's email, verified, and no other account";
/// The actor type of storefront customers, the one `/store` routes serve.
pub const CUSTOMER: &str = "customer";

/// The settings of the use cases that every tenant shares. What a tenant may set for itself
/// (actor types, password policy, token lifetime, sinks) is in `tenant::TenantSettings` and
/// reaches the use cases through the request's context.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Lifetime of a reset token (15 minutes, as Medusa).
    pub reset_ttl: Duration,
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
    /// How long a device cookie exempts its client from the account-wide failure bucket.
    pub device_cookie_ttl: Duration,
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
            device_cookie_ttl: Duration::days(30),
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
    /// The accounts whose unreadable stored hash has been logged.
    unreadable_logged: login::LoggedOnce,
    /// HTTP to identity providers (`with_provider_http`).
    provider_http: std::sync::Arc<dyn ProviderHttp>,
    oauth_cache: oauth::ProviderCache,
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
            unreadable_logged: login::LoggedOnce::default(),
            provider_http: std::sync::Arc::new(oauth::NoProviderHttp),
            oauth_cache: oauth::ProviderCache::default(),
        }
    }

    /// Calls identity providers (sign-in with Google, GitHub, OpenID Connect) through `http`.
    pub fn with_provider_http(mut self, http: std::sync::Arc<dyn ProviderHttp>) -> Self {
        self.provider_http = http;
        self
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

    /// A bucket key, in `tenant`: an HMAC under a key derived from the server's secret
    /// (`SecretBox::keyed_hash`), so no address or email is stored in clear, and a copy of the
    /// table cannot be matched against guessed emails without the secret.
    fn bucket(&self, kind: &str, tenant: &TenantId, parts: &[&str]) -> String {
        let mut all = vec![kind, tenant.as_str()];
        all.extend_from_slice(parts);
        format!("{kind}:{}", self.secrets.keyed_hash(&all.join("\u{1f}")))
    }

    /// The per-client budget of the credential routes (register, login, reset-password, update,
    /// change-password): `TooManyRequests` once spent. Counted by `ctx.client`, per tenant.
    pub fn admit(&self, ctx: &AuthContext) -> Result<(), AuthError> {
        let key = self.bucket("client", &ctx.tenant, &[&ctx.client]);
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
        Ok(AuthContext {
            tenant: request.tenant,
            settings: request.settings,
            keys: request.keys,
            actor_type,
            provider,
            client,
        })
    }

    /// Checks an actor type against the request's tenant's `ACTOR_TYPES`: 400 `not_allowed`
    /// naming it otherwise.
    pub fn check_actor_type(&self, request: &RequestContext, actor_type: &str) -> Result<ActorType, AuthError> {
        if request.settings.actor_types.iter().any(|a| a == actor_type) {
            Ok(ActorType::new(actor_type))
        } else {
            Err(AuthError::NotAllowed(format!("Unknown actor type: {actor_type}")))
        }
    }

    /// An auth token for `identity` as the request's actor type, through its provider.
    fn issue_for(&self, ctx: &AuthContext, identity: &IdentityRecord) -> Result<String, AuthError> {
        self.issue(&ctx.request(), &ctx.actor_type, &ctx.provider, identity)
    }

    /// An auth token for `identity` in the request's tenant, for the tenant's token lifetime.
    fn issue(
        &self,
        ctx: &RequestContext,
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
            tenant: ctx.tenant.as_str().into(),
        };
        let how = Issuing { ttl: ctx.settings.auth_ttl, keys: &ctx.keys, issuer: Some(&ctx.settings.issuer) };
        self.tokens.issue_auth_with(&input, self.clock.now(), &how)
    }

    /// `event`, to be delivered to the sinks of its tenant.
    fn outgoing(settings: &TenantSettings, event: StoredEvent) -> NewEvent {
        NewEvent { event, sinks: settings.event_sinks.clone() }
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
