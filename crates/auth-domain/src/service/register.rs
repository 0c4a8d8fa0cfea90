//! Register: a new identity for an email and password, and Medusa's idempotent re-registration.

use serde_json::Map;

use super::{record_of, AuthService, IDENTITY_EXISTS};
use crate::context::AuthContext;
use crate::email::Email;
use crate::model::{new_id, IdentityRecord, NewIdentity};
use crate::newtypes::EntityKey;
use crate::password::{user_inputs, Password, PasswordMatch};
use crate::ports::{AuthStore, Clock};
use crate::secret::random_hex;
use crate::AuthError;

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// Registers an email and password; returns a registration token (`actor_id: ""`).
    ///
    /// An email that has an identity is refused with 401 "Identity with email already exists",
    /// unless that identity has no actor yet and the same password is given (Medusa's
    /// idempotent re-register).
    ///
    /// Proving the password of an existing identity that way is a login attempt: it goes through
    /// the same throttles (429 before any hash while they are spent) and a wrong password counts
    /// as a failed login, by the request's client.
    pub fn register(&self, ctx: &AuthContext, email: &str, password: String) -> Result<String, AuthError> {
        let email = Email::parse(email)?;
        let inputs = user_inputs(email.as_str(), ctx.tenant.as_str());
        let password = ctx.settings.password_policy.check_with(password, "password", &inputs)?;
        if let Some(existing) = self.store.find_by_email(&ctx.tenant, &ctx.provider, email.key())? {
            return self.register_existing(ctx, &existing, &password, email.key());
        }
        let hash = self.hasher.hash(&password)?;
        let identity = NewIdentity {
            auth_identity_id: new_id("authid"),
            provider_identity_id: new_id(""),
            provider: ctx.provider.clone(),
            entity_id: email.as_str().into(),
            entity_key: email.key().clone(),
            password_hash: hash,
            security_stamp: random_hex(16)?,
            app_metadata: Map::new(),
            created_at: self.clock.now(),
        };
        match self.store.create_identity(&ctx.tenant, &identity) {
            Ok(()) => self.issue_for(ctx, &record_of(identity)),
            Err(AuthError::Duplicate(_)) => {
                // A concurrent registration won the race: answer as if it had come first.
                let existing = self
                    .store
                    .find_by_email(&ctx.tenant, &ctx.provider, email.key())?
                    .ok_or_else(|| AuthError::Unexpected("identity vanished after a duplicate insert".into()))?;
                self.register_existing(ctx, &existing, &password, email.key())
            }
            Err(e) => Err(e),
        }
    }

    /// Registering an email that has an identity. The password is always verified (so the
    /// answer costs the same whether or not the identity has an actor), under the login
    /// throttles; only an identity without an actor and the same password gets a token.
    fn register_existing(
        &self,
        ctx: &AuthContext,
        existing: &IdentityRecord,
        password: &Password,
        key: &EntityKey,
    ) -> Result<String, AuthError> {
        let throttle = self.password_throttle(ctx, key, false)?;
        let matched = self.verify_password(&ctx.tenant, existing, password);
        if !matched.matched() {
            // A wrong password: the tokens taken before the verification stay taken.
            return Err(AuthError::Unauthorized(IDENTITY_EXISTS.into()));
        }
        if !existing.has_no_actor() {
            self.not_counted(&throttle)?;
            return Err(AuthError::Unauthorized(IDENTITY_EXISTS.into()));
        }
        self.passed_password(&throttle)?;
        if matched == PasswordMatch::AsTyped {
            self.rehash(&ctx.tenant, existing, password);
        }
        self.issue_for(ctx, existing)
    }
}
