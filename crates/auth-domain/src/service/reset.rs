//! The password reset: the request (a reset token carried by an event), the token's check on
//! `/update`, and the new password.

use chrono::Duration;
use serde_json::{Map, Value};

use super::AuthService;
use crate::context::AuthContext;
use crate::email::email_key;
use crate::event::{NewEvent, StoredEvent};
use crate::model::{new_id, NewResetToken, PasswordResetCompletion, ResetRequest};
use crate::password::user_inputs;
use crate::ports::{AuthStore, Clock};
use crate::ratelimit::{Decision, RateLimit};
use crate::secret::{random_hex, PlainToken};
use crate::tenant::TenantDirectory;
use crate::token::{ResetClaims, RESET_PURPOSE};
use crate::{AuthError, TokenRejection};

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// reset-password, on the request path: the interval per identifier, then the request
    /// recorded durably (sealed: it names a person) for the worker (`fulfil_reset_requests`).
    /// The same work whether or not the identifier names an account, and nothing looked up: the
    /// time it takes tells nothing. Once this returns, the request survives a crash.
    pub fn request_password_reset(
        &self,
        ctx: &AuthContext,
        identifier: &str,
        metadata: Map<String, Value>,
    ) -> Result<(), AuthError> {
        let key = email_key(identifier);
        let interval = RateLimit { capacity: 1, window: self.settings.limits.reset_interval };
        let now = self.clock.now();
        let bucket = self.bucket("reset", &ctx.tenant, &[key.as_str()]);
        if let Decision::Limited { .. } = self.limiter.take(&bucket, &interval, now)? {
            // The link sent a moment ago keeps working; nothing tells the caller apart.
            log::debug!("password reset requested again within the interval: nothing done");
            return Ok(());
        }
        let id = new_id("rstreq");
        let payload = serde_json::json!({ "identifier": identifier, "metadata": metadata }).to_string();
        let request = ResetRequest {
            sealed: self.secrets.seal(&payload, &reset_request_context(&id))?,
            id,
            tenant: ctx.tenant.clone(),
            actor_type: ctx.actor_type.clone(),
            provider: ctx.provider.clone(),
            created_at: now,
        };
        if let Err(e) = self.store.record_reset_request(&request) {
            // Not recorded, so not answered 201: the interval must not swallow the retry.
            let _ = self.limiter.give_back(&bucket, &interval, now);
            return Err(e);
        }
        log::debug!("password reset request {} recorded", request.id);
        self.wake_dispatcher();
        Ok(())
    }

    /// The reset worker's pass: takes the requests recorded at least `delay` ago (zero outside
    /// tests) that no other worker holds (for `lease`), and fulfils each: looks the identifier up in the
    /// request's tenant and, for an account, creates the reset token and the
    /// `auth.password_reset` event that carries it, deleting the request in the same
    /// transaction. A request whose tenant is gone, or that cannot be opened (the secret changed
    /// without `JWT_SECRET_PREVIOUS`), is deleted with a warning. Returns how many were ended.
    pub fn fulfil_reset_requests(
        &self,
        tenants: &dyn TenantDirectory,
        delay: Duration,
        lease: Duration,
        batch: usize,
    ) -> Result<usize, AuthError> {
        let now = self.clock.now();
        let claimed = self.store.claim_reset_requests(now, now - delay, now + lease, batch)?;
        let mut ended = 0;
        for request in claimed {
            let reset = match self.open_reset_request(tenants, &request) {
                Ok(Some(opened)) => self.new_reset(&opened.ctx, &opened.identifier, opened.metadata)?,
                Ok(None) => None,
                Err(e) => {
                    log::warn!("reset request {} dropped: {e}", request.id);
                    None
                }
            };
            let reset = reset.as_ref().map(|(token, event)| (token, event));
            if self.store.fulfil_reset_request(&request.tenant, &request.id, reset)? {
                ended += 1;
                if reset.is_some() {
                    self.wake_dispatcher();
                }
            }
        }
        Ok(ended)
    }

    /// The context, identifier and metadata of a recorded request; `None` when its tenant is
    /// gone (logged).
    fn open_reset_request(
        &self,
        tenants: &dyn TenantDirectory,
        request: &ResetRequest,
    ) -> Result<Option<OpenedRequest>, AuthError> {
        let Some(tenant) = tenants.tenant(&request.tenant) else {
            log::warn!("reset request {} dropped: its tenant {} is gone", request.id, request.tenant);
            return Ok(None);
        };
        let payload = self.secrets.open(&request.sealed, &reset_request_context(&request.id))?;
        let payload: Value =
            serde_json::from_str(&payload).map_err(|e| AuthError::unexpected("reading a sealed reset request", e))?;
        let identifier = payload["identifier"].as_str().unwrap_or_default().to_string();
        let metadata = payload["metadata"].as_object().cloned().unwrap_or_default();
        let ctx = AuthContext {
            tenant: tenant.id,
            settings: tenant.settings,
            keys: tenant.keys,
            actor_type: request.actor_type.clone(),
            provider: request.provider.clone(),
            client: String::new(),
        };
        Ok(Some(OpenedRequest { ctx, identifier, metadata }))
    }

    /// The reset token and the event of a request for `identifier`, when it names an account.
    fn new_reset(
        &self,
        ctx: &AuthContext,
        identifier: &str,
        metadata: Map<String, Value>,
    ) -> Result<Option<(NewResetToken, NewEvent)>, AuthError> {
        let Some(identity) = self.store.find_by_email(&ctx.tenant, &ctx.provider, &email_key(identifier))? else {
            log::debug!("password reset requested for an unknown identifier");
            return Ok(None);
        };
        let now = self.clock.now();
        let expires_at = now + self.settings.reset_ttl;
        let jti = PlainToken::random(16)?;
        let token_hash = jti.hashed();
        let claims = ResetClaims {
            entity_id: identity.entity_id.clone(),
            provider: ctx.provider.as_str().into(),
            actor_type: ctx.actor_type.as_str().into(),
            purpose: RESET_PURPOSE.into(),
            tenant: ctx.tenant.as_str().into(),
            jti: jti.into_exposed(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            nbf: None,
        };
        let token = self.tokens.issue_reset(&claims)?;
        let event = StoredEvent::password_reset(&self.secrets, &claims, &token, metadata, now)?;
        let reset = NewResetToken {
            id: new_id("authprt"),
            provider_identity_id: identity.provider_identity_id.clone(),
            token_hash,
            expires_at,
            created_at: now,
        };
        Ok(Some((reset, Self::outgoing(&ctx.settings, event))))
    }

    /// Verifies a reset token presented on `/update` for the request's context (signature,
    /// expiry, kind, actor type, provider, tenant). Does not touch the database.
    pub fn verify_reset_token(&self, ctx: &AuthContext, token: &str) -> Result<ResetClaims, AuthError> {
        let claims = self.tokens.verify_reset(token, self.clock.now())?;
        if ctx.tenant != claims.tenant {
            return Err(TokenRejection::WrongTenant.into());
        }
        if ctx.actor_type != claims.actor_type || ctx.provider != claims.provider {
            return Err(TokenRejection::WrongContext.into());
        }
        Ok(claims)
    }

    /// Sets a new password with a reset token that `verify_reset_token` verified for `ctx`: the
    /// policy first (a refused password keeps the token), then the hash, then one transaction
    /// that consumes the token, stores the hash, changes the security stamp (revoking every auth
    /// token) and writes `auth.password_changed`.
    pub fn update_password(
        &self,
        ctx: &AuthContext,
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
        let inputs = user_inputs(&claims.entity_id, ctx.tenant.as_str());
        let password = ctx.settings.password_policy.check_with(password, "password", &inputs)?;
        let tenant = &ctx.tenant;
        let identity = self
            .store
            .find_by_email(tenant, &ctx.provider, &email_key(&claims.entity_id))?
            .ok_or(AuthError::Unauthenticated(TokenRejection::Consumed))?;
        let token_hash = PlainToken::new(claims.jti.as_str()).hashed();
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
        let event = StoredEvent::password_changed(tenant.as_str(), &identity.entity_id, ctx.actor_type.as_str(), now);
        self.store.complete_password_reset(tenant, &completion, &Self::outgoing(&ctx.settings, event))?;
        self.wake_dispatcher();
        Ok(())
    }
}

/// The sealing context of a reset request's identifier and metadata.
fn reset_request_context(id: &str) -> String {
    format!("reset-request:{id}")
}

/// A recorded reset request, opened: the context it is fulfilled in, and what it asked for.
struct OpenedRequest {
    ctx: AuthContext,
    identifier: String,
    metadata: Map<String, Value>,
}
