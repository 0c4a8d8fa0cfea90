//! Login, and what it shares with re-registration: the failed-login throttles and the rehash of
//! an outdated hash.

use super::{AuthService, INVALID_CREDENTIALS};
use crate::context::AuthContext;
use crate::email::email_key;
use crate::model::IdentityRecord;
use crate::newtypes::{EntityKey, TenantId};
use crate::password::{Password, PasswordMatch};
use crate::ports::{AuthStore, Clock};
use crate::AuthError;

/// The two failed-login buckets of one attempt to prove a password: per (email, client) and per
/// email. Login and register's re-registration both go through them.
pub(super) struct PasswordThrottle {
    pair: String,
    account: String,
}

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// Logs in; the email is matched case-insensitively. Any mismatch, including an address
    /// that could never be registered, is 401 "Invalid email or password" after a verification.
    pub fn login(&self, ctx: &AuthContext, email: &str, password: String) -> Result<String, AuthError> {
        let key = email_key(email);
        let throttle = self.password_throttle(&key, &ctx.client)?;
        match self.verify_credentials(ctx, &key, password) {
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

    fn verify_credentials(&self, ctx: &AuthContext, key: &EntityKey, password: String) -> Result<String, AuthError> {
        let password = Password::unchecked(password);
        let found = self.store.find_by_email(&ctx.tenant, &ctx.provider, key)?;
        let Some(identity) = found else {
            self.hasher.verify_dummy(&password);
            return Err(AuthError::Unauthorized(INVALID_CREDENTIALS.into()));
        };
        let matched = self.hasher.verify(&password, &identity.password_hash);
        if !matched.matched() {
            return Err(AuthError::Unauthorized(INVALID_CREDENTIALS.into()));
        }
        if matched == PasswordMatch::AsTyped || self.hasher.needs_rehash(&identity.password_hash) {
            self.rehash(&ctx.tenant, &identity, &password);
        }
        self.issue_for(ctx, &identity)
    }

    /// Replaces a hash of another cost, or one made on the bytes as typed, with one of the NFKC
    /// form at the configured cost. A failure here never fails the login.
    pub(super) fn rehash(&self, tenant: &TenantId, identity: &IdentityRecord, password: &Password) {
        let result = self.hasher.hash(password).and_then(|new_hash| {
            self.store.replace_password_hash_if(
                tenant,
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

    /// Checks the failed-login buckets of (`key`, `client`) and of `key` before a password is
    /// verified: `TooManyRequests` while either is spent. Checked for every email alike, known
    /// or not, before any work.
    pub(super) fn password_throttle(&self, key: &EntityKey, client: &str) -> Result<PasswordThrottle, AuthError> {
        let throttle = PasswordThrottle {
            pair: Self::bucket("login", &[key.as_str(), client]),
            account: Self::bucket("login-account", &[key.as_str()]),
        };
        let limits = &self.settings.limits;
        let now = self.clock.now();
        self.limiter.peek(&throttle.pair, &limits.login_failures, now)?.check("login_failures")?;
        self.limiter.peek(&throttle.account, &limits.login_failures_account, now)?.check("login_failures_account")?;
        Ok(throttle)
    }

    /// Counts a wrong password against both buckets.
    pub(super) fn failed_password(&self, throttle: &PasswordThrottle) -> Result<(), AuthError> {
        let (limits, now) = (&self.settings.limits, self.clock.now());
        self.limiter.take(&throttle.pair, &limits.login_failures, now)?;
        self.limiter.take(&throttle.account, &limits.login_failures_account, now)?;
        Ok(())
    }

    /// A proven password empties both buckets.
    pub(super) fn passed_password(&self, throttle: &PasswordThrottle) -> Result<(), AuthError> {
        self.limiter.reset(&throttle.pair)?;
        self.limiter.reset(&throttle.account)
    }
}
