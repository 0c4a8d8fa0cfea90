//! The use cases, as plain synchronous functions on a service generic over its ports.
//!
//! Each use case that hashes does so before it writes, and never while a store call is open:
//! the store methods are short units of work (see `ports`). Callers run these functions on a
//! blocking thread; the ones that hash (`register`, `login`, `update_password`) behind the
//! hashing semaphore.

use chrono::Duration;
use serde_json::{Map, Value};

use crate::email::{email_key, Email};
use crate::event::{NewEvent, StoredEvent};
use crate::model::{
    new_id, Customer, CustomerFields, IdentityRecord, NewIdentity, NewResetToken, NewSession, PasswordChange,
    PasswordResetCompletion, EMAILPASS,
};
use crate::password::{Password, PasswordHasher, PasswordMatch, PasswordPolicy};
use crate::ports::{AuthStore, Clock, EventWaker};
use crate::ratelimit::{Decision, RateLimit, RateLimiter, Unlimited};
use crate::secret::{random_hex, sha256_hex, SecretBox};
use crate::token::{AuthClaims, AuthTokenInput, ResetClaims, TokenCodec, RESET_PURPOSE};
use crate::{AuthError, TokenRejection};

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

/// The policy knobs of the use cases.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub tenant: String,
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

/// The route a request arrived on: `{actor}` and `{provider}`, checked against what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub actor_type: String,
    pub provider: String,
}

/// A caller proven by an auth token or a session whose stamp is current.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The identity as it is now in the database.
    pub identity: IdentityRecord,
    pub actor_type: String,
    pub auth_provider: String,
    /// The verified claims, when the caller presented a token.
    pub claims: Option<AuthClaims>,
    /// The hash of the session, when the caller presented a session cookie.
    pub session_hash: Option<String>,
}

impl Authenticated {
    /// The actor id, read from the database (so a session sees a customer linked after it opened).
    pub fn actor_id(&self) -> String {
        self.identity.actor_id(&self.actor_type)
    }
}

/// The two failed-login buckets of one attempt to prove a password: per (email, client) and per
/// email. Login and register's re-registration both go through them.
struct PasswordThrottle {
    pair: String,
    account: String,
}

/// The fields of `POST /store/customers`.
#[derive(Debug, Clone, Default)]
pub struct NewCustomerInput {
    pub email: Option<String>,
    pub fields: CustomerFields,
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

    /// A bucket key: hashed, so no address or email is stored in clear.
    fn bucket(kind: &str, parts: &[&str]) -> String {
        format!("{kind}:{}", sha256_hex(&parts.join("\u{1f}")))
    }

    /// The per-client budget of the credential routes (register, login, reset-password, update,
    /// change-password): `TooManyRequests` once spent. `client` is the client's address key.
    pub fn admit(&self, client: &str) -> Result<(), AuthError> {
        let key = Self::bucket("client", &[client]);
        self.limiter.take(&key, &self.settings.limits.per_client, self.clock.now())?.check("client")
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

    /// Checks `{actor}` against `ACTOR_TYPES` and `{provider}` against the known providers.
    pub fn scope(&self, actor_type: &str, provider: &str) -> Result<Scope, AuthError> {
        self.actor_scope(actor_type)?;
        if provider != EMAILPASS {
            return Err(AuthError::NotAllowed(format!("Unknown auth provider: {provider}")));
        }
        Ok(Scope { actor_type: actor_type.into(), provider: provider.into() })
    }

    /// Checks `{actor}` alone (for routes without a provider).
    pub fn actor_scope(&self, actor_type: &str) -> Result<(), AuthError> {
        if self.settings.actor_types.iter().any(|a| a == actor_type) {
            Ok(())
        } else {
            Err(AuthError::NotAllowed(format!("Unknown actor type: {actor_type}")))
        }
    }

    /// Registers an email and password; returns a registration token (`actor_id: ""`).
    ///
    /// An email that has an identity is refused with 401 "Identity with email already exists",
    /// unless that identity has no actor yet and the same password is given (Medusa's
    /// idempotent re-register).
    ///
    /// Proving the password of an existing identity that way is a login attempt: it goes through
    /// the same throttles (429 before any hash while they are spent) and a wrong password counts
    /// as a failed login. `client` is the client's address key.
    pub fn register(&self, scope: &Scope, email: &str, password: String, client: &str) -> Result<String, AuthError> {
        let email = Email::parse(email)?;
        let password = self.settings.password_policy.check(password)?;
        let tenant = &self.settings.tenant;
        if let Some(existing) = self.store.find_by_email(tenant, &scope.provider, email.key())? {
            return self.register_existing(scope, &existing, &password, email.key(), client);
        }
        let hash = self.hasher.hash(&password)?;
        let identity = NewIdentity {
            tenant: tenant.clone(),
            auth_identity_id: new_id("authid"),
            provider_identity_id: new_id(""),
            provider: scope.provider.clone(),
            entity_id: email.as_str().into(),
            entity_key: email.key().into(),
            password_hash: hash,
            security_stamp: random_hex(16)?,
            app_metadata: Map::new(),
            created_at: self.clock.now(),
        };
        match self.store.create_identity(&identity) {
            Ok(()) => self.issue(scope, &record_of(identity)),
            Err(AuthError::Duplicate(_)) => {
                // A concurrent registration won the race: answer as if it had come first.
                let existing = self
                    .store
                    .find_by_email(tenant, &scope.provider, email.key())?
                    .ok_or_else(|| AuthError::Unexpected("identity vanished after a duplicate insert".into()))?;
                self.register_existing(scope, &existing, &password, email.key(), client)
            }
            Err(e) => Err(e),
        }
    }

    /// Registering an email that has an identity. The password is always verified (so the
    /// answer costs the same whether or not the identity has an actor), under the login
    /// throttles; only an identity without an actor and the same password gets a token.
    fn register_existing(
        &self,
        scope: &Scope,
        existing: &IdentityRecord,
        password: &Password,
        key: &str,
        client: &str,
    ) -> Result<String, AuthError> {
        let throttle = self.password_throttle(key, client)?;
        let matched = self.hasher.verify(password, &existing.password_hash);
        if !matched.matched() {
            self.failed_password(&throttle)?;
            return Err(AuthError::Unauthorized(IDENTITY_EXISTS.into()));
        }
        if !existing.has_no_actor() {
            return Err(AuthError::Unauthorized(IDENTITY_EXISTS.into()));
        }
        self.passed_password(&throttle)?;
        if matched == PasswordMatch::AsTyped {
            self.rehash(existing, password);
        }
        self.issue(scope, existing)
    }

    /// Checks the failed-login buckets of (`key`, `client`) and of `key` before a password is
    /// verified: `TooManyRequests` while either is spent. Checked for every email alike, known
    /// or not, before any work.
    fn password_throttle(&self, key: &str, client: &str) -> Result<PasswordThrottle, AuthError> {
        let throttle = PasswordThrottle {
            pair: Self::bucket("login", &[key, client]),
            account: Self::bucket("login-account", &[key]),
        };
        let limits = &self.settings.limits;
        let now = self.clock.now();
        self.limiter.peek(&throttle.pair, &limits.login_failures, now)?.check("login_failures")?;
        self.limiter.peek(&throttle.account, &limits.login_failures_account, now)?.check("login_failures_account")?;
        Ok(throttle)
    }

    /// Counts a wrong password against both buckets.
    fn failed_password(&self, throttle: &PasswordThrottle) -> Result<(), AuthError> {
        let (limits, now) = (&self.settings.limits, self.clock.now());
        self.limiter.take(&throttle.pair, &limits.login_failures, now)?;
        self.limiter.take(&throttle.account, &limits.login_failures_account, now)?;
        Ok(())
    }

    /// A proven password empties both buckets.
    fn passed_password(&self, throttle: &PasswordThrottle) -> Result<(), AuthError> {
        self.limiter.reset(&throttle.pair)?;
        self.limiter.reset(&throttle.account)
    }

    /// Logs in; the email is matched case-insensitively. Any mismatch, including an address
    /// that could never be registered, is 401 "Invalid email or password" after a verification.
    pub fn login(&self, scope: &Scope, email: &str, password: String, client: &str) -> Result<String, AuthError> {
        let key = email_key(email);
        let throttle = self.password_throttle(&key, client)?;
        match self.verify_credentials(scope, &key, password) {
            Ok(token) => {
                self.passed_password(&throttle)?;
                Ok(token)
            }
            Err(AuthError::Unauthorized(message)) => {
                self.failed_password(&throttle)?;
                Err(AuthError::Unauthorized(message))
            }
            Err(e) => Err(e),
        }
    }

    fn verify_credentials(&self, scope: &Scope, key: &str, password: String) -> Result<String, AuthError> {
        let password = Password::unchecked(password);
        let found = self.store.find_by_email(&self.settings.tenant, &scope.provider, key)?;
        let Some(identity) = found else {
            self.hasher.verify_dummy(&password);
            return Err(AuthError::Unauthorized(INVALID_CREDENTIALS.into()));
        };
        let matched = self.hasher.verify(&password, &identity.password_hash);
        if !matched.matched() {
            return Err(AuthError::Unauthorized(INVALID_CREDENTIALS.into()));
        }
        if matched == PasswordMatch::AsTyped || self.hasher.needs_rehash(&identity.password_hash) {
            self.rehash(&identity, &password);
        }
        self.issue(scope, &identity)
    }

    /// Replaces a hash of another cost, or one made on the bytes as typed, with one of the NFKC
    /// form at the configured cost. A failure here never fails the login.
    fn rehash(&self, identity: &IdentityRecord, password: &Password) {
        let result = self.hasher.hash(password).and_then(|new_hash| {
            self.store.replace_password_hash_if(
                &self.settings.tenant,
                &identity.provider_identity_id,
                &identity.password_hash,
                &new_hash,
                self.clock.now(),
            )
        });
        match result {
            Ok(true) => {
                log::debug!("rehashed the password of {} at cost {}", identity.auth_identity_id, self.hasher.cost())
            }
            Ok(false) => {
                log::debug!("skipped a rehash of {}: its password changed meanwhile", identity.auth_identity_id)
            }
            Err(e) => log::warn!("rehash of {} failed: {e}", identity.auth_identity_id),
        }
    }

    /// Creates a reset token for the account of `identifier`, if there is one, and writes the
    /// `auth.password_reset` event that carries it. Answers the same for unknown identifiers.
    pub fn request_password_reset(
        &self,
        scope: &Scope,
        identifier: &str,
        metadata: Map<String, Value>,
    ) -> Result<(), AuthError> {
        let tenant = &self.settings.tenant;
        let key = email_key(identifier);
        let interval = RateLimit { capacity: 1, window: self.settings.limits.reset_interval };
        if let Decision::Limited { .. } =
            self.limiter.take(&Self::bucket("reset", &[&key]), &interval, self.clock.now())?
        {
            // The link sent a moment ago keeps working; nothing tells the caller apart.
            log::debug!("password reset requested again within the interval: nothing done");
            return Ok(());
        }
        let Some(identity) = self.store.find_by_email(tenant, &scope.provider, &key)? else {
            log::debug!("password reset requested for an unknown identifier");
            return Ok(());
        };
        let now = self.clock.now();
        let expires_at = now + self.settings.reset_ttl;
        let claims = ResetClaims {
            entity_id: identity.entity_id.clone(),
            provider: scope.provider.clone(),
            actor_type: scope.actor_type.clone(),
            purpose: RESET_PURPOSE.into(),
            tenant: tenant.clone(),
            jti: random_hex(16)?,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            nbf: None,
        };
        let token = self.tokens.issue_reset(&claims)?;
        let event = StoredEvent::password_reset(&self.secrets, &claims, &token, metadata, now)?;
        let reset = NewResetToken {
            id: new_id("authprt"),
            provider_identity_id: identity.provider_identity_id.clone(),
            token_hash: sha256_hex(&claims.jti),
            expires_at,
            created_at: now,
        };
        self.store.store_reset_token(tenant, &reset, &self.outgoing(event))?;
        self.wake_dispatcher();
        Ok(())
    }

    /// Verifies a reset token presented on `/update` for `scope` (signature, expiry, kind, actor
    /// type, provider, tenant). Does not touch the database.
    pub fn verify_reset_token(&self, scope: &Scope, token: &str) -> Result<ResetClaims, AuthError> {
        let claims = self.tokens.verify_reset(token, self.clock.now())?;
        if claims.tenant != self.settings.tenant {
            return Err(TokenRejection::WrongTenant.into());
        }
        if claims.actor_type != scope.actor_type || claims.provider != scope.provider {
            return Err(TokenRejection::WrongScope.into());
        }
        Ok(claims)
    }

    /// Sets a new password with a verified reset token: the policy first (a refused password
    /// keeps the token), then the hash, then one transaction that consumes the token, stores the
    /// hash, changes the security stamp (revoking every auth token) and writes
    /// `auth.password_changed`.
    pub fn update_password(
        &self,
        claims: &ResetClaims,
        body_email: Option<&str>,
        password: String,
    ) -> Result<(), AuthError> {
        if let Some(email) = body_email {
            if email_key(email) != email_key(&claims.entity_id) {
                return Err(AuthError::InvalidData(
                    "Invalid request: Field 'email' does not match the account of the reset token".into(),
                ));
            }
        }
        let password = self.settings.password_policy.check(password)?;
        let tenant = &self.settings.tenant;
        let identity = self
            .store
            .find_by_email(tenant, &claims.provider, &email_key(&claims.entity_id))?
            .ok_or(AuthError::Unauthenticated(TokenRejection::Consumed))?;
        let token_hash = sha256_hex(&claims.jti);
        if !self.store.reset_token_is_live(tenant, &token_hash, &identity.provider_identity_id, self.clock.now())? {
            return Err(TokenRejection::Consumed.into());
        }
        let new_password_hash = self.hasher.hash(&password)?;
        let now = self.clock.now();
        let completion = PasswordResetCompletion {
            token_hash,
            auth_identity_id: identity.auth_identity_id.clone(),
            provider_identity_id: identity.provider_identity_id.clone(),
            new_password_hash,
            new_security_stamp: random_hex(16)?,
            now,
        };
        let event = StoredEvent::password_changed(tenant, &identity.entity_id, &claims.actor_type, now);
        self.store.complete_password_reset(tenant, &completion, &self.outgoing(event))?;
        self.wake_dispatcher();
        Ok(())
    }

    /// Verifies an auth token and checks it against the database: the identity exists and its
    /// security stamp is the token's. One indexed read.
    pub fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let claims = self.tokens.verify_auth(token, self.clock.now())?;
        if claims.tenant != self.settings.tenant {
            return Err(TokenRejection::WrongTenant.into());
        }
        if self.actor_scope(&claims.actor_type).is_err() {
            return Err(TokenRejection::WrongScope.into());
        }
        let identity = self
            .store
            .find_by_id(&self.settings.tenant, &claims.auth_identity_id, &claims.auth_provider)?
            .ok_or(AuthError::Unauthenticated(TokenRejection::Revoked))?;
        if identity.security_stamp != claims.stamp {
            return Err(TokenRejection::Revoked.into());
        }
        Ok(Authenticated {
            identity,
            actor_type: claims.actor_type.clone(),
            auth_provider: claims.auth_provider.clone(),
            claims: Some(claims),
            session_hash: None,
        })
    }

    /// Checks a session id from a cookie: a live session whose identity's stamp has not changed
    /// since it opened. One indexed read.
    pub fn authenticate_session(&self, session_id: &str) -> Result<Authenticated, AuthError> {
        let session_hash = sha256_hex(session_id);
        let session = self
            .store
            .find_session(&self.settings.tenant, &session_hash, self.clock.now())?
            .ok_or(AuthError::Unauthenticated(TokenRejection::Consumed))?;
        if session.identity.security_stamp != session.security_stamp {
            return Err(TokenRejection::Revoked.into());
        }
        Ok(Authenticated {
            identity: session.identity,
            actor_type: session.actor_type,
            auth_provider: session.auth_provider,
            claims: None,
            session_hash: Some(session_hash),
        })
    }

    /// Session first, then bearer, as Medusa: a dead session cookie does not spoil a valid token.
    pub fn authenticate_any(&self, session_id: Option<&str>, bearer: Option<&str>) -> Result<Authenticated, AuthError> {
        let by_session = match session_id {
            Some(id) => self.authenticate_session(id),
            None => Err(TokenRejection::Missing.into()),
        };
        match (by_session, bearer) {
            (Ok(caller), _) => Ok(caller),
            (Err(AuthError::Unauthenticated(_)), Some(token)) => self.authenticate(token),
            (Err(e), _) => Err(e),
        }
    }

    /// A new token for the caller, built from the database's current state (actor id, metadata).
    pub fn refresh(&self, caller: &Authenticated) -> Result<String, AuthError> {
        let scope = Scope { actor_type: caller.actor_type.clone(), provider: caller.auth_provider.clone() };
        self.issue(&scope, &caller.identity)
    }

    /// Opens a session for the bearer of `token`, replacing the session `replaces` (the id of a
    /// cookie the request carried). Returns the new session id and the token's claims.
    pub fn open_session(&self, token: &str, replaces: Option<&str>) -> Result<(String, AuthClaims), AuthError> {
        let caller = self.authenticate(token)?;
        let session_id = random_hex(32)?;
        let now = self.clock.now();
        let session = NewSession {
            session_hash: sha256_hex(&session_id),
            auth_identity_id: caller.identity.auth_identity_id.clone(),
            actor_type: caller.actor_type.clone(),
            auth_provider: caller.auth_provider.clone(),
            security_stamp: caller.identity.security_stamp.clone(),
            created_at: now,
            expires_at: now + self.settings.session_ttl,
        };
        let replaced = replaces.map(sha256_hex);
        self.store.create_session(&self.settings.tenant, &session, replaced.as_deref())?;
        let claims = caller.claims.ok_or_else(|| AuthError::Unexpected("a bearer caller without claims".into()))?;
        Ok((session_id, claims))
    }

    /// Ends the session `session_id`; `Unauthenticated` when there is no such session.
    pub fn close_session(&self, session_id: &str) -> Result<(), AuthError> {
        if self.store.delete_session(&self.settings.tenant, &sha256_hex(session_id))? {
            Ok(())
        } else {
            Err(TokenRejection::Consumed.into())
        }
    }

    /// Revokes every token and session of the caller's identity.
    pub fn logout_all(&self, caller: &Authenticated) -> Result<(), AuthError> {
        self.store.revoke_all(
            &self.settings.tenant,
            &caller.identity.auth_identity_id,
            &random_hex(16)?,
            self.clock.now(),
        )
    }

    /// Changes the caller's password after checking the current one; revokes every token and
    /// session (the caller's too) and returns a fresh token for the caller.
    pub fn change_password(
        &self,
        scope: &Scope,
        caller: &Authenticated,
        old_password: String,
        new_password: String,
    ) -> Result<String, AuthError> {
        if caller.actor_type != scope.actor_type || caller.auth_provider != scope.provider {
            return Err(TokenRejection::WrongScope.into());
        }
        let new_password = self.settings.password_policy.check_field(new_password, "new_password")?;
        let identity = &caller.identity;
        if !self.hasher.verify(&Password::unchecked(old_password), &identity.password_hash).matched() {
            return Err(AuthError::Unauthorized(INVALID_PASSWORD.into()));
        }
        let now = self.clock.now();
        let change = PasswordChange {
            auth_identity_id: identity.auth_identity_id.clone(),
            provider_identity_id: identity.provider_identity_id.clone(),
            expected_hash: identity.password_hash.clone(),
            new_password_hash: self.hasher.hash(&new_password)?,
            new_security_stamp: random_hex(16)?,
            now,
        };
        let event = StoredEvent::password_changed(&self.settings.tenant, &identity.entity_id, &caller.actor_type, now);
        if !self.store.change_password(&self.settings.tenant, &change, &self.outgoing(event))? {
            // The password changed meanwhile: the one given is no longer the current one.
            return Err(AuthError::Unauthorized(INVALID_PASSWORD.into()));
        }
        self.wake_dispatcher();
        let updated = IdentityRecord {
            password_hash: change.new_password_hash,
            security_stamp: change.new_security_stamp,
            ..identity.clone()
        };
        self.issue(scope, &updated)
    }

    fn customer_caller(caller: &Authenticated) -> Result<(), AuthError> {
        if caller.actor_type == CUSTOMER {
            Ok(())
        } else {
            Err(TokenRejection::WrongScope.into())
        }
    }

    /// Creates the customer of a caller that has none yet (a registration token or its session)
    /// and links it to the identity, in one transaction.
    pub fn create_customer(&self, caller: &Authenticated, input: NewCustomerInput) -> Result<Customer, AuthError> {
        Self::customer_caller(caller)?;
        let linked_by_token = caller.claims.as_ref().is_some_and(|c| !c.actor_id.is_empty());
        if linked_by_token || !caller.actor_id().is_empty() {
            return Err(AuthError::InvalidData(ALREADY_CUSTOMER.into()));
        }
        let email = Self::customer_email(caller, input.email.as_deref())?;
        let now = self.clock.now();
        let mut customer = Customer {
            id: new_id("cus"),
            email: email.as_str().into(),
            first_name: None,
            last_name: None,
            phone: None,
            company_name: None,
            metadata: None,
            has_account: true,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        input.fields.apply(&mut customer);
        match self.store.create_customer(&self.settings.tenant, &caller.identity.auth_identity_id, &customer) {
            Err(AuthError::Duplicate(_)) => Err(AuthError::Duplicate(CUSTOMER_EXISTS.into())),
            other => other.map(|()| customer),
        }
    }

    /// The email a new customer gets: the body's `email`, which must be the identity's own (so
    /// nobody opens a customer account under an address they have not proven). For `emailpass`
    /// that is the address the identity registered (`entity_id`); for other providers the email
    /// the provider verified (`user_metadata.email` with `email_verified: true`). Compared
    /// normalised; kept as the caller wrote it (trimmed).
    fn customer_email(caller: &Authenticated, body: Option<&str>) -> Result<Email, AuthError> {
        let body = body.ok_or_else(|| AuthError::InvalidData("Email is required to create a customer".into()))?;
        let given = Email::parse(body)?;
        let identity = &caller.identity;
        let own = if identity.provider == EMAILPASS {
            Some(identity.entity_id.as_str())
        } else {
            let verified = identity.user_metadata.get("email_verified").and_then(Value::as_bool) == Some(true);
            identity.user_metadata.get("email").and_then(Value::as_str).filter(|_| verified)
        };
        let own = own.ok_or_else(|| AuthError::InvalidData(CUSTOMER_EMAIL_UNVERIFIED.into()))?;
        if given.key() == email_key(own) {
            Ok(given)
        } else {
            Err(AuthError::InvalidData(CUSTOMER_EMAIL_MISMATCH.into()))
        }
    }

    /// The caller's customer; a caller without one is unauthenticated for these routes.
    pub fn current_customer(&self, caller: &Authenticated) -> Result<Customer, AuthError> {
        let id = self.customer_id(caller)?;
        self.store
            .find_customer(&self.settings.tenant, &id)?
            .ok_or_else(|| AuthError::NotFound(format!("Customer with id: {id} was not found")))
    }

    /// Updates the caller's customer.
    pub fn update_current_customer(
        &self,
        caller: &Authenticated,
        fields: &CustomerFields,
    ) -> Result<Customer, AuthError> {
        let id = self.customer_id(caller)?;
        self.store
            .update_customer(&self.settings.tenant, &id, fields, self.clock.now())?
            .ok_or_else(|| AuthError::NotFound(format!("Customer with id: {id} was not found")))
    }

    fn customer_id(&self, caller: &Authenticated) -> Result<String, AuthError> {
        Self::customer_caller(caller)?;
        let id = caller.actor_id();
        if id.is_empty() {
            return Err(TokenRejection::WrongScope.into());
        }
        Ok(id)
    }

    /// Creates an admin user: an identity linked as a `user` from the start. Returns the user id.
    pub fn create_user(&self, email: &str, password: String) -> Result<String, AuthError> {
        let email = Email::parse(email)?;
        let password = self.settings.password_policy.check(password)?;
        let user_id = new_id("user");
        let identity = NewIdentity {
            tenant: self.settings.tenant.clone(),
            auth_identity_id: new_id("authid"),
            provider_identity_id: new_id(""),
            provider: EMAILPASS.into(),
            entity_id: email.as_str().into(),
            entity_key: email.key().into(),
            password_hash: self.hasher.hash(&password)?,
            security_stamp: random_hex(16)?,
            app_metadata: Map::from_iter([("user_id".to_string(), Value::String(user_id.clone()))]),
            created_at: self.clock.now(),
        };
        match self.store.create_identity(&identity) {
            Err(AuthError::Duplicate(_)) => Err(AuthError::Duplicate(IDENTITY_EXISTS.into())),
            other => other.map(|()| user_id),
        }
    }

    fn issue(&self, scope: &Scope, identity: &IdentityRecord) -> Result<String, AuthError> {
        let input = AuthTokenInput {
            actor_id: identity.actor_id(&scope.actor_type),
            actor_type: scope.actor_type.clone(),
            auth_identity_id: identity.auth_identity_id.clone(),
            auth_provider: scope.provider.clone(),
            app_metadata: identity.app_metadata.clone(),
            user_metadata: identity.user_metadata.clone(),
            stamp: identity.security_stamp.clone(),
            tenant: self.settings.tenant.clone(),
        };
        self.tokens.issue_auth(&input, self.clock.now())
    }

    fn outgoing(&self, event: StoredEvent) -> NewEvent {
        NewEvent { event, sinks: self.settings.event_sinks.clone() }
    }
}

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
