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
/// email, each holding the token the attempt took from it before the verification. Login and
/// register's re-registration both go through them. `account` is `None` for a login from a
/// device that proved this account before (a device cookie): it neither counts against the
/// account-wide bucket nor is stopped by it.
pub(super) struct PasswordThrottle {
    pair: String,
    account: Option<String>,
}

/// A successful login: the auth token, and the device cookie that marks the client as one that
/// proved this account's password (`DEVICE_COOKIE`).
#[derive(Debug)]
pub struct LoginSuccess {
    pub token: String,
    pub device_cookie: String,
}

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// Logs in; the email is matched case-insensitively. Any mismatch, including an address
    /// that could never be registered, is 401 "Invalid email or password" after a verification.
    pub fn login(&self, ctx: &AuthContext, email: &str, password: String) -> Result<String, AuthError> {
        self.login_on_device(ctx, email, password, None).map(|success| success.token)
    }

    /// `login`, from a client that presents `device_cookie` (the value of the device cookie, if
    /// any). When the cookie proves that this client logged in to this account before, the
    /// attempt is not counted against the account-wide failure bucket, nor stopped by it (its
    /// own per-(email, client) bucket still applies), so guessing from many addresses cannot
    /// lock the owner out. A success answers a fresh device cookie for this account.
    pub fn login_on_device(
        &self,
        ctx: &AuthContext,
        email: &str,
        password: String,
        device_cookie: Option<&str>,
    ) -> Result<LoginSuccess, AuthError> {
        let key = email_key(email);
        let trusted = device_cookie.is_some_and(|cookie| self.device_knows(ctx, &key, cookie));
        let throttle = self.password_throttle(ctx, &key, trusted)?;
        match self.verify_credentials(ctx, &key, password) {
            Ok(token) => {
                self.passed_password(&throttle)?;
                Ok(LoginSuccess { token, device_cookie: self.device_cookie(ctx, &key, device_cookie)? })
            }
            // The tokens taken before the verification stay taken.
            Err(AuthError::Unauthorized(message)) => Err(AuthError::Unauthorized(message)),
            Err(e) => {
                self.not_counted(&throttle)?;
                Err(e)
            }
        }
    }

    fn verify_credentials(&self, ctx: &AuthContext, key: &EntityKey, password: String) -> Result<String, AuthError> {
        let password = Password::unchecked(password);
        let found = self.store.find_by_email(&ctx.tenant, &ctx.provider, key)?;
        let Some(identity) = found else {
            self.hasher.verify_dummy(&password);
            return Err(AuthError::Unauthorized(INVALID_CREDENTIALS.into()));
        };
        let matched = self.verify_password(&ctx.tenant, &identity, &password);
        if !matched.matched() {
            return Err(AuthError::Unauthorized(INVALID_CREDENTIALS.into()));
        }
        if matched == PasswordMatch::AsTyped || self.hasher.needs_rehash(&identity.password_hash) {
            self.rehash(&ctx.tenant, &identity, &password);
        }
        self.issue_for(ctx, &identity)
    }

    /// `hasher.verify`, and when it fails on a stored hash that cannot be checked at all (an
    /// unknown format, or a corrupt, truncated or over-cost one), a warning naming the account
    /// (never the hash), once per account while the process runs. Such a login fails like a
    /// wrong password.
    pub(super) fn verify_password(
        &self,
        tenant: &TenantId,
        identity: &IdentityRecord,
        password: &Password,
    ) -> PasswordMatch {
        let matched = self.hasher.verify(password, &identity.password_hash);
        if !matched.matched() {
            if let Some(why) = self.hasher.unreadable(&identity.password_hash) {
                if self.unreadable_logged.first(tenant, &identity.auth_identity_id) {
                    log::warn!(
                        "password of {} (tenant {tenant}) refused: its stored hash is {why}; \
                         it cannot log in until its password is reset",
                        identity.auth_identity_id
                    );
                }
            }
        }
        matched
    }

    /// Replaces a hash of another cost, one made on the bytes as typed or a Medusa one, with one
    /// of the NFKC form at the configured cost. A failure here never fails the login.
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

    /// Takes a token from the failed-login bucket of (`key`, the request's client) and, unless
    /// `device_trusted`, from the one of `key`, in the request's tenant, before a password is
    /// verified: `TooManyRequests` (taking nothing) while either is spent. Each take is one
    /// atomic check-and-take, so attempts in flight at once cannot all pass a bucket with one
    /// token left. Taken for every email alike, known or not, before any work. The attempt keeps
    /// the tokens when its password is wrong; `passed_password` and `not_counted` settle the
    /// other outcomes.
    pub(super) fn password_throttle(
        &self,
        ctx: &AuthContext,
        key: &EntityKey,
        device_trusted: bool,
    ) -> Result<PasswordThrottle, AuthError> {
        let throttle = PasswordThrottle {
            pair: self.bucket("login", &ctx.tenant, &[key.as_str(), &ctx.client]),
            account: (!device_trusted).then(|| self.bucket("login-account", &ctx.tenant, &[key.as_str()])),
        };
        let limits = &self.settings.limits;
        let now = self.clock.now();
        self.limiter.take(&throttle.pair, &limits.login_failures, now)?.check("login_failures")?;
        if let Some(account) = &throttle.account {
            let taken = self.limiter.take(account, &limits.login_failures_account, now)?;
            if let Err(limited) = taken.check("login_failures_account") {
                self.limiter.give_back(&throttle.pair, &limits.login_failures, now)?;
                return Err(limited);
            }
        }
        Ok(throttle)
    }

    /// An attempt that proved nothing either way (the password was right but gets no token, or
    /// the verification failed for another reason): its tokens go back.
    pub(super) fn not_counted(&self, throttle: &PasswordThrottle) -> Result<(), AuthError> {
        let (limits, now) = (&self.settings.limits, self.clock.now());
        self.limiter.give_back(&throttle.pair, &limits.login_failures, now)?;
        if let Some(account) = &throttle.account {
            self.limiter.give_back(account, &limits.login_failures_account, now)?;
        }
        Ok(())
    }

    /// A proven password empties the pair's bucket, and the account's when it was counted
    /// against: a login on a trusted device leaves the account-wide bucket as others left it,
    /// so an owner's login does not hand a guesser a fresh budget.
    pub(super) fn passed_password(&self, throttle: &PasswordThrottle) -> Result<(), AuthError> {
        self.limiter.reset(&throttle.pair)?;
        match &throttle.account {
            Some(account) => self.limiter.reset(account),
            None => Ok(()),
        }
    }
}

/// The accounts something was logged about, so that it is logged once per account. Bounded: when
/// `MAX` accounts are remembered, they are all forgotten (and may be logged once more).
#[derive(Debug, Default)]
pub(super) struct LoggedOnce(std::sync::Mutex<std::collections::HashSet<(TenantId, String)>>);

impl LoggedOnce {
    const MAX: usize = 10_000;

    /// Whether this is the first time for `account` of `tenant` (and remembers it).
    pub(super) fn first(&self, tenant: &TenantId, account: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (tenant.clone(), account.to_string());
        if seen.contains(&key) {
            return false;
        }
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        seen.insert(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_once_per_account_and_tenant_and_bounded() {
        let once = LoggedOnce::default();
        let (a, b) = (TenantId::default_tenant(), TenantId::new("other"));
        assert!(once.first(&a, "authid_1"));
        assert!(!once.first(&a, "authid_1"));
        assert!(once.first(&b, "authid_1"));
        for i in 0..LoggedOnce::MAX {
            once.first(&a, &format!("authid_x{i}"));
        }
        assert!(once.0.lock().unwrap().len() <= LoggedOnce::MAX);
    }
}
