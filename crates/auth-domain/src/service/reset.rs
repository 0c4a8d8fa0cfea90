//! The password reset: the request (a reset token carried by an event), the token's check on
//! `/update`, and the new password.

use serde_json::{Map, Value};

use super::AuthService;
use crate::context::AuthContext;
use crate::email::email_key;
use crate::event::StoredEvent;
use crate::model::{new_id, NewResetToken, PasswordResetCompletion};
use crate::ports::{AuthStore, Clock};
use crate::ratelimit::{Decision, RateLimit};
use crate::secret::{random_hex, PlainToken};
use crate::token::{ResetClaims, RESET_PURPOSE};
use crate::{AuthError, TokenRejection};

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// Creates a reset token for the account of `identifier`, if there is one, and writes the
    /// `auth.password_reset` event that carries it. Answers the same for unknown identifiers.
    pub fn request_password_reset(
        &self,
        ctx: &AuthContext,
        identifier: &str,
        metadata: Map<String, Value>,
    ) -> Result<(), AuthError> {
        let key = email_key(identifier);
        let interval = RateLimit { capacity: 1, window: self.settings.limits.reset_interval };
        if let Decision::Limited { .. } =
            self.limiter.take(&Self::bucket("reset", &[key.as_str()]), &interval, self.clock.now())?
        {
            // The link sent a moment ago keeps working; nothing tells the caller apart.
            log::debug!("password reset requested again within the interval: nothing done");
            return Ok(());
        }
        let Some(identity) = self.store.find_by_email(&ctx.tenant, &ctx.provider, &key)? else {
            log::debug!("password reset requested for an unknown identifier");
            return Ok(());
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
        self.store.store_reset_token(&ctx.tenant, &reset, &self.outgoing(event))?;
        self.wake_dispatcher();
        Ok(())
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
        let password = self.settings.password_policy.check(password)?;
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
        self.store.complete_password_reset(tenant, &completion, &self.outgoing(event))?;
        self.wake_dispatcher();
        Ok(())
    }
}
