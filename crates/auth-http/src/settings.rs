//! What the HTTP layer is configured with for every tenant: cookies, trusted proxies, the body
//! limit. Publishable keys and CORS origins are the tenant's (`auth_domain::tenant::TenantSettings`).

use actix_web::cookie::{time, Cookie, SameSite};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The session cookie's name (Medusa's, so storefronts and proxies see what they expect).
pub const SESSION_COOKIE: &str = "connect.sid";

#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub secure: bool,
    pub same_site: SameSite,
    pub ttl: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub cookie: CookieSettings,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Host` are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `Cache-Control: max-age` of the JWKS and the OpenID configuration (`JWKS_MAX_AGE`).
    pub jwks_max_age: std::time::Duration,
    /// The bearer credential of `/auth/token/introspect`; `None`: the route answers 404.
    pub introspection_secret: Option<Credential>,
    /// How long a whole request body may take to arrive (`HTTP_BODY_TIMEOUT`): 408 after.
    pub body_timeout: std::time::Duration,
    /// Whether `/metrics` is served with the API (`METRICS_ON_PUBLIC_PORT=true`). Off by default:
    /// the admin listener serves it, and the API port answers 404.
    pub public_metrics: bool,
}

/// A secret the HTTP layer checks callers against; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(pub Vec<u8>);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl CookieSettings {
    /// The cookie that carries a new session id.
    pub fn session(&self, session_id: String) -> Cookie<'static> {
        let ttl = time::Duration::try_from(self.ttl).unwrap_or(time::Duration::hours(10));
        Cookie::build(SESSION_COOKIE, session_id)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site)
            .max_age(ttl)
            .expires(time::OffsetDateTime::now_utc() + ttl)
            .finish()
    }

    /// The device cookie (`auth_domain::service::DEVICE_COOKIE`) of a successful login: only
    /// the `/auth` routes read it, so only they get it.
    pub fn device(&self, value: String, ttl: chrono::Duration) -> Cookie<'static> {
        let ttl = time::Duration::seconds(ttl.num_seconds());
        Cookie::build(auth_domain::service::DEVICE_COOKIE, value)
            .path("/auth")
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site)
            .max_age(ttl)
            .expires(time::OffsetDateTime::now_utc() + ttl)
            .finish()
    }

    /// The cookie that clears the session cookie in the browser.
    pub fn removal(&self) -> Cookie<'static> {
        let mut cookie = self.session(String::new());
        cookie.make_removal();
        cookie
    }
}
