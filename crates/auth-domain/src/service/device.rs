//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a client that
//! has logged in to an account gets a signed mark of it, and its later logins to that account are
//! not counted against the account-wide failure bucket. Guessing from many addresses can then
//! hold that bucket empty for strangers, but not for the account's own devices.
//!
//! The value holds up to `MAX_ENTRIES` entries joined by `~`, one per account, each
//! `<expiry>.<mac>`: the expiry (Unix seconds) and an HMAC-SHA256 (`SecretBox::device_mac`,
//! under a key derived from the server's secret) of the tenant, the account's normalised email
//! and that expiry. Nothing in it names the account: it is checked by recomputing the HMAC for
//! the email a login names.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::AuthService;
use crate::context::AuthContext;
use crate::newtypes::EntityKey;
use crate::ports::{AuthStore, Clock};
use crate::AuthError;

/// The name of the device cookie.
pub const DEVICE_COOKIE: &str = "xclade_device";

/// Accounts one device cookie remembers (the most recent logins).
const MAX_ENTRIES: usize = 5;

/// One entry of a cookie's value: its expiry and its MAC, as read (not yet checked).
fn entries(value: &str) -> impl Iterator<Item = (i64, Vec<u8>)> + '_ {
    value.split('~').take(2 * MAX_ENTRIES).filter_map(|entry| {
        let (exp, mac) = entry.split_once('.')?;
        let exp = exp.parse::<i64>().ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok().filter(|m| m.len() == 32)?;
        Some((exp, mac))
    })
}

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    fn device_message(ctx: &AuthContext, key: &EntityKey, exp: i64) -> String {
        format!("device\u{1f}{}\u{1f}{}\u{1f}{exp}", ctx.tenant.as_str(), key.as_str())
    }

    /// Whether the device cookie `value` holds an unexpired entry signed for `key` in the
    /// request's tenant. A forged, altered, expired or other account's entry proves nothing.
    pub(super) fn device_knows(&self, ctx: &AuthContext, key: &EntityKey, value: &str) -> bool {
        let now = self.clock.now().timestamp();
        entries(value)
            .any(|(exp, mac)| exp > now && self.secrets.device_mac_matches(&Self::device_message(ctx, key, exp), &mac))
    }

    /// The device cookie's new value after a login to `key`: a fresh entry for it (valid for
    /// `Limits::device_cookie_ttl`), then the unexpired entries of `previous` for other accounts,
    /// at most `MAX_ENTRIES` in all.
    pub(super) fn device_cookie(
        &self,
        ctx: &AuthContext,
        key: &EntityKey,
        previous: Option<&str>,
    ) -> Result<String, AuthError> {
        let now = self.clock.now().timestamp();
        let exp = now.saturating_add(self.settings.limits.device_cookie_ttl.num_seconds().max(1));
        let mac = self.secrets.device_mac(&Self::device_message(ctx, key, exp));
        let mut value = format!("{exp}.{}", URL_SAFE_NO_PAD.encode(mac));
        let others = previous.into_iter().flat_map(entries).filter(|(exp, mac)| {
            *exp > now && !self.secrets.device_mac_matches(&Self::device_message(ctx, key, *exp), mac)
        });
        for (exp, mac) in others.take(MAX_ENTRIES - 1) {
            value.push_str(&format!("~{exp}.{}", URL_SAFE_NO_PAD.encode(mac)));
        }
        Ok(value)
    }
}
