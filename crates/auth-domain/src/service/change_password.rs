//! Change-password (Xclade extension): the caller proves the current password and sets another.

use super::{AuthService, Authenticated, INVALID_PASSWORD};
use crate::context::AuthContext;
use crate::event::StoredEvent;
use crate::model::{IdentityRecord, PasswordChange};
use crate::password::{user_inputs, Password};
use crate::ports::{AuthStore, Clock};
use crate::secret::random_hex;
use crate::{AuthError, TokenRejection};

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// Changes the caller's password after checking the current one; revokes every token and
    /// session (the caller's too) and returns a fresh token for the caller. The caller must be of
    /// the request's actor type and provider.
    pub fn change_password(
        &self,
        ctx: &AuthContext,
        caller: &Authenticated,
        old_password: String,
        new_password: String,
    ) -> Result<String, AuthError> {
        if caller.actor_type != ctx.actor_type || caller.auth_provider != ctx.provider {
            return Err(TokenRejection::WrongContext.into());
        }
        let identity = &caller.identity;
        let inputs = user_inputs(&identity.entity_id, ctx.tenant.as_str());
        let new_password = ctx.settings.password_policy.check_with(new_password, "new_password", &inputs)?;
        if !self.verify_password(&ctx.tenant, identity, &Password::unchecked(old_password)).matched() {
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
        let event =
            StoredEvent::password_changed(ctx.tenant.as_str(), &identity.entity_id, caller.actor_type.as_str(), now);
        if !self.store.change_password(&ctx.tenant, &change, &Self::outgoing(&ctx.settings, event))? {
            // The password changed meanwhile: the one given is no longer the current one.
            return Err(AuthError::Unauthorized(INVALID_PASSWORD.into()));
        }
        self.wake_dispatcher();
        let updated = IdentityRecord {
            password_hash: change.new_password_hash,
            security_stamp: change.new_security_stamp,
            ..identity.clone()
        };
        self.issue_for(ctx, &updated)
    }
}
