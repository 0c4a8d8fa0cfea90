//! Abuse limits: the per-client budget, the login throttles, the reset interval, and the proxies
//! whose `X-Forwarded-For` tells who the client is.

use auth_domain::service::Limits;

use super::render::{fmt_duration, fmt_limit, fmt_list};
use super::setting::{section, DefaultValue::*, Env, Setting};
use super::ConfigError;

section! {
    "Abuse limits",
    RATE_LIMIT_ENABLED = Setting::new(
        Text("true"),
        "false turns every limit below off",
        |c| Some(c.limits.enabled.to_string()),
    ),
    RATE_LIMIT_PER_IP = Setting::new(
        Text("60/1m"),
        "requests per client to register, login, reset-password, update, change-password",
        |c| Some(fmt_limit(c.limits.buckets.per_client)),
    ),
    LOGIN_FAILURE_LIMIT = Setting::new(
        Text("5/15m"),
        "failed logins per (email, client)",
        |c| Some(fmt_limit(c.limits.buckets.login_failures)),
    ),
    LOGIN_FAILURE_LIMIT_ACCOUNT = Setting::new(
        Text("20/1h"),
        "failed logins per email, from every client",
        |c| Some(fmt_limit(c.limits.buckets.login_failures_account)),
    ),
    RESET_PASSWORD_INTERVAL = Setting::new(
        Text("60s"),
        "at most one reset per email in this time",
        |c| c.limits.buckets.reset_interval.to_std().ok().map(fmt_duration),
    ),
    DEVICE_COOKIE_TTL = Setting::new(
        Text("30d"),
        "how long the device cookie of a successful login exempts that client from LOGIN_FAILURE_LIMIT_ACCOUNT for its account",
        |c| c.limits.buckets.device_cookie_ttl.to_std().ok().map(fmt_duration),
    ),
    TRUSTED_PROXIES = Setting::new(
        Unset,
        "addresses and CIDRs whose X-Forwarded-For and X-Forwarded-Host are believed",
        |c| fmt_list(&c.limits.trusted_proxies),
    ),
}

/// Abuse limits.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// `RATE_LIMIT_ENABLED=false` turns every limit off.
    pub enabled: bool,
    /// The buckets: the per-client budget, the login throttles, the reset interval.
    pub buckets: Limits,
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl LimitsConfig {
    pub(super) fn read(env: &Env) -> Result<LimitsConfig, ConfigError> {
        Ok(LimitsConfig {
            enabled: env.flag(&RATE_LIMIT_ENABLED)?,
            buckets: Limits {
                per_client: env.limit(&RATE_LIMIT_PER_IP)?,
                login_failures: env.limit(&LOGIN_FAILURE_LIMIT)?,
                login_failures_account: env.limit(&LOGIN_FAILURE_LIMIT_ACCOUNT)?,
                reset_interval: chrono::Duration::from_std(env.duration(&RESET_PASSWORD_INTERVAL)?)
                    .map_err(|_| RESET_PASSWORD_INTERVAL.invalid("is too long"))?,
                device_cookie_ttl: chrono::Duration::from_std(env.duration(&DEVICE_COOKIE_TTL)?)
                    .ok()
                    .filter(|ttl| *ttl >= chrono::Duration::seconds(1))
                    .ok_or_else(|| DEVICE_COOKIE_TTL.invalid("must be at least 1s and at most a few years"))?,
            },
            trusted_proxies: env
                .list(&TRUSTED_PROXIES)
                .iter()
                .map(|net| {
                    net.parse::<ipnet::IpNet>()
                        .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| TRUSTED_PROXIES.invalid(&format!("{net:?} is not an address or a CIDR")))
                })
                .collect::<Result<_, _>>()?,
        })
    }
}
