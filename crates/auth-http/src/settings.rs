//! What the HTTP layer is configured with: cookies, publishable keys, CORS origins, the body limit.

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
    /// When set, every `/store` route requires one of these in `x-publishable-api-key`.
    pub publishable_keys: Option<Vec<String>>,
    /// Origins allowed to call `/auth` from a browser (with credentials).
    pub auth_cors: Vec<String>,
    /// Origins allowed to call `/store` from a browser (with credentials).
    pub store_cors: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Whether `/metrics` is served with the API (`METRICS_ON_PUBLIC_PORT=true`). Off by default:
    /// the admin listener serves it, and the API port answers 404.
    pub public_metrics: bool,
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

    /// The cookie that clears the session cookie in the browser.
    pub fn removal(&self) -> Cookie<'static> {
        let mut cookie = self.session(String::new());
        cookie.make_removal();
        cookie
    }
}
