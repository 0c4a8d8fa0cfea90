//! Sessions, cookies and storefronts: the cookie session's lifetime and flags, the publishable
//! keys of `/store`, and the origins CORS lets in.

use std::time::Duration;

use super::render::{fmt_duration, fmt_list};
use super::setting::{section, DefaultValue::*, Env, Setting};
use super::{Config, ConfigError};

section! {
    "Sessions, cookies and storefronts",
    SESSION_TTL = Setting::new(
        Text("10h"),
        "lifetime of a cookie session",
        |c| Some(fmt_duration(c.sessions.ttl)),
    ),
    COOKIE_SECURE = Setting::new(
        Text("auto"),
        "auto, true or false; auto: Secure unless HOST is a loopback address",
        |c| Some(c.sessions.cookie_secure.as_str().to_string()),
    ),
    COOKIE_SAMESITE = Setting::new(
        Text("lax"),
        "lax, strict or none (none forces Secure)",
        |c| Some(c.sessions.cookie_same_site.as_str().to_string()),
    ),
    STORE_PUBLISHABLE_KEYS = Setting::new(
        Unset,
        "comma-separated; when set, /store requests must send one in x-publishable-api-key",
        |c| c.sessions.store_publishable_keys.as_ref().map(|keys| keys.join(",")),
    )
    .tenant_default(),
    AUTH_CORS = Setting::new(
        Unset,
        "comma-separated origins that browsers may call /auth from",
        |c| fmt_list(&c.sessions.auth_cors),
    )
    .tenant_default(),
    STORE_CORS = Setting::new(
        Unset,
        "comma-separated origins that browsers may call /store from",
        |c| fmt_list(&c.sessions.store_cors),
    )
    .tenant_default(),
}

/// Sessions, cookies and storefronts.
#[derive(Debug, Clone)]
pub struct SessionsConfig {
    /// The lifetime of a cookie session.
    pub ttl: Duration,
    pub cookie_secure: CookieSecure,
    pub cookie_same_site: CookieSameSite,
    pub store_publishable_keys: Option<Vec<String>>,
    pub auth_cors: Vec<String>,
    pub store_cors: Vec<String>,
}

/// `COOKIE_SECURE`: `auto` marks the session cookie Secure unless the server listens on a
/// loopback address (plain HTTP in development).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

impl CookieSecure {
    /// The value as `COOKIE_SECURE` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CookieSecure::Auto => "auto",
            CookieSecure::Always => "true",
            CookieSecure::Never => "false",
        }
    }
}

/// `COOKIE_SAMESITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSameSite {
    Lax,
    Strict,
    /// Cross-site storefronts; forces Secure (browsers refuse `SameSite=None` without it).
    None,
}

impl CookieSameSite {
    /// The value as `COOKIE_SAMESITE` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CookieSameSite::Lax => "lax",
            CookieSameSite::Strict => "strict",
            CookieSameSite::None => "none",
        }
    }
}

impl SessionsConfig {
    pub(super) fn read(env: &Env) -> Result<SessionsConfig, ConfigError> {
        let sessions = SessionsConfig {
            ttl: env.duration(&SESSION_TTL)?,
            cookie_secure: match env.string(&COOKIE_SECURE)?.to_ascii_lowercase().as_str() {
                "auto" => CookieSecure::Auto,
                "true" | "1" | "yes" | "on" => CookieSecure::Always,
                "false" | "0" | "no" | "off" => CookieSecure::Never,
                other => return Err(COOKIE_SECURE.invalid(&format!("{other:?} is not auto, true or false"))),
            },
            cookie_same_site: match env.string(&COOKIE_SAMESITE)?.to_ascii_lowercase().as_str() {
                "lax" => CookieSameSite::Lax,
                "strict" => CookieSameSite::Strict,
                "none" => CookieSameSite::None,
                other => return Err(COOKIE_SAMESITE.invalid(&format!("{other:?} is not lax, strict or none"))),
            },
            store_publishable_keys: Some(env.list(&STORE_PUBLISHABLE_KEYS)).filter(|keys| !keys.is_empty()),
            auth_cors: env.list(&AUTH_CORS),
            store_cors: env.list(&STORE_CORS),
        };
        if sessions.ttl.is_zero() {
            return Err(SESSION_TTL.invalid("must be longer than zero"));
        }
        for (setting, origins) in [(AUTH_CORS, &sessions.auth_cors), (STORE_CORS, &sessions.store_cors)] {
            if let Some(bad) = origins.iter().find(|o| !is_origin(o)) {
                return Err(setting.invalid(&format!("{bad:?} is not an origin like https://shop.example.com")));
            }
        }
        Ok(sessions)
    }
}

impl Config {
    /// Whether the session cookie is marked Secure.
    pub fn cookie_is_secure(&self) -> bool {
        let host = self.server.host.as_str();
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(&host) || host.starts_with("127.");
        match (self.sessions.cookie_same_site, self.sessions.cookie_secure) {
            (CookieSameSite::None, _) | (_, CookieSecure::Always) => true,
            (_, CookieSecure::Never) => false,
            (_, CookieSecure::Auto) => !loopback,
        }
    }
}

/// `scheme://host[:port]`, without a path: what a browser sends in `Origin`.
fn is_origin(value: &str) -> bool {
    value.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '*', ' '])
    })
}
