//! Tenants: whose store a request is for. One deployment serves every store at
//! `{tenant}.api.<domain>`; every row carries a `tenant_id`, every store call is scoped to one,
//! and every token names its tenant.
//!
//! A request's tenant comes from a `TenantDirectory`, asked once per request by the inbound
//! adapter (`auth-http/src/tenant.rs`) before any route runs; the answer, a `Tenant` with its
//! effective settings, goes into the request's context (`context.rs`), and the use cases read
//! the tenant and its policy there, never from process-wide settings.
//!
//! - `host_label` is the resolution rule: the `{tenant}` label of a host under the configured
//!   suffix (pure, tested here against hostile hosts).
//! - `TenantName` checks a name an operator gives (`xclade-auth tenant create`): a lowercase DNS
//!   label, not reserved.
//! - `TenantSettings` is what may differ between tenants: the global settings overridden field by
//!   field by the tenant's own (`auth-server/src/tenants/`).
//! - `SingleTenant` serves one tenant, `default`, with fixed settings (unit tests, and consumers
//!   of this crate that have no directory); the server's directory reads the `tenant` table
//!   through a cache (`auth-server/src/tenants/directory.rs`).

use std::sync::Arc;

use chrono::Duration;

use crate::keys::KeyRing;
use crate::newtypes::TenantId;
use crate::password::PasswordPolicy;
use crate::AuthError;

/// The message of every 404 for a host that names no active tenant: the same text whatever the
/// reason (no suffix, unknown, disabled, malformed), so that tenant names cannot be probed.
pub const NO_SUCH_STORE: &str = "No store is served at this address";

/// Whether a tenant serves requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    /// Every route answers 404 and its tokens stop working, until it is enabled again.
    Disabled,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Disabled => "disabled",
        }
    }

    pub fn parse(value: &str) -> Option<TenantStatus> {
        match value {
            "active" => Some(TenantStatus::Active),
            "disabled" => Some(TenantStatus::Disabled),
            _ => None,
        }
    }
}

/// A webhook a tenant's events are posted to.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    /// The HMAC key of the signature header.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a credential in its path or query: only its origin is shown.
        let origin: String = self.url.split('/').take(3).collect::<Vec<_>>().join("/");
        f.debug_struct("WebhookTarget").field("origin", &origin).field("secret", &"[redacted]").finish()
    }
}

/// A tenant's effective settings: the global ones, overridden field by field by the tenant's own.
/// The use cases read the policy (actor types, password policy, token lifetime, sinks); the
/// adapters read the rest (origins and publishable keys in `auth-http`, the reset link, the
/// sender and the webhook in the server's sinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    /// The `{actor}` values routes accept (`ACTOR_TYPES`).
    pub actor_types: Vec<String>,
    pub password_policy: PasswordPolicy,
    /// Lifetime of an auth token (`JWT_EXPIRES_IN`).
    pub auth_ttl: Duration,
    /// The sinks this tenant's events are delivered to.
    pub event_sinks: Vec<String>,
    /// When set, every `/store` route requires one of these in `x-publishable-api-key`.
    pub publishable_keys: Option<Vec<String>>,
    /// Origins allowed to call `/auth` from a browser (`AUTH_CORS`).
    pub auth_cors: Vec<String>,
    /// Origins allowed to call `/store` from a browser (`STORE_CORS`).
    pub store_cors: Vec<String>,
    /// The storefront page a reset link points to (`RESET_PASSWORD_URL`).
    pub reset_password_url: String,
    /// The sender of the emails (`EMAIL_FROM`), when email is configured.
    pub email_from: Option<String>,
    /// Where the events are posted (`WEBHOOK_URL`, `WEBHOOK_SECRET`), when anywhere.
    pub webhook: Option<WebhookTarget>,
    /// The `iss` of its tokens and the issuer of its OpenID configuration: its base URL.
    pub issuer: String,
    /// The providers its customers may sign in with besides `emailpass` (`OAUTH_*`).
    pub oauth_providers: Vec<crate::oauth::OAuthProvider>,
    /// The `jwtSecret` of the Medusa backend the store moved from (`MEDUSA_JWT_SECRET`): while
    /// set, refresh exchanges the store's Medusa tokens for Xclade tokens.
    pub medusa_jwt_secret: Option<MedusaSecret>,
}

/// An HMAC secret of Medusa's tokens. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct MedusaSecret(pub Vec<u8>);

impl std::fmt::Debug for MedusaSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MedusaSecret([redacted])")
    }
}

impl TenantSettings {
    /// Settings for tests and for consumers without a configuration: customers only, the
    /// password policy's defaults, one-day tokens, no sink, no origin, no key.
    pub fn basic() -> TenantSettings {
        TenantSettings {
            actor_types: vec!["customer".into()],
            password_policy: PasswordPolicy { min_length: 8, min_strength: 0 },
            auth_ttl: Duration::days(1),
            event_sinks: Vec::new(),
            publishable_keys: None,
            auth_cors: Vec::new(),
            store_cors: Vec::new(),
            reset_password_url: "http://localhost:8000/reset-password?token={token}&email={email}".into(),
            email_from: None,
            webhook: None,
            issuer: "http://localhost:9000".into(),
            oauth_providers: Vec::new(),
            medusa_jwt_secret: None,
        }
    }
}

/// A tenant as the directory answers it: its id, status, effective settings and signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub status: TenantStatus,
    pub settings: Arc<TenantSettings>,
    /// Its signing keys (`keys.rs`); empty while it signs with the HS256 secret.
    pub keys: Arc<KeyRing>,
}

/// Tells which tenant a request is for.
pub trait TenantDirectory: Send + Sync {
    /// The active tenant of a request that arrived for `host` (the `Host` header, or the
    /// `X-Forwarded-Host` of a trusted proxy; `None` without either). `AuthError::NotFound`
    /// (with [`NO_SUCH_STORE`]) when the host names no active tenant, whatever the reason.
    fn resolve(&self, host: Option<&str>) -> Result<Tenant, AuthError>;

    /// The tenant `id`, active or not (what the event sinks read an event's tenant settings
    /// from); `None` when there is no such tenant.
    fn tenant(&self, id: &TenantId) -> Option<Tenant>;
}

impl<T: TenantDirectory + ?Sized> TenantDirectory for Arc<T> {
    fn resolve(&self, host: Option<&str>) -> Result<Tenant, AuthError> {
        (**self).resolve(host)
    }

    fn tenant(&self, id: &TenantId) -> Option<Tenant> {
        (**self).tenant(id)
    }
}

/// The directory of a service with one tenant, `default`: every request is for it, whatever its
/// host, with the settings it was made with.
#[derive(Debug, Clone)]
pub struct SingleTenant {
    tenant: Tenant,
}

impl SingleTenant {
    pub fn new(settings: TenantSettings) -> SingleTenant {
        SingleTenant {
            tenant: Tenant {
                id: TenantId::default_tenant(),
                status: TenantStatus::Active,
                settings: Arc::new(settings),
                keys: Arc::new(KeyRing::default()),
            },
        }
    }
}

impl Default for SingleTenant {
    fn default() -> SingleTenant {
        SingleTenant::new(TenantSettings::basic())
    }
}

impl TenantDirectory for SingleTenant {
    fn resolve(&self, _host: Option<&str>) -> Result<Tenant, AuthError> {
        Ok(self.tenant.clone())
    }

    fn tenant(&self, id: &TenantId) -> Option<Tenant> {
        (*id == self.tenant.id).then(|| self.tenant.clone())
    }
}

/// The longest host looked at (RFC 1035's 253 characters, and a trailing dot).
const MAX_HOST: usize = 254;

/// The `{tenant}` label of `host` under `suffix` (for example `.api.myxclade.com`), lowercased:
/// the port is stripped, case is ignored and one trailing dot (a fully qualified name) is
/// allowed. `None` unless exactly one non-empty label precedes the suffix and the host is plain
/// ASCII of at most 253 characters: a name with two labels before the suffix, an empty label,
/// an IP literal, a host outside the suffix, or raw Unicode names no tenant. The label is
/// returned as written (a punycode `xn--` label is no tenant's name, since names cannot take that
/// form: `TenantName`).
pub fn host_label(host: &str, suffix: &str) -> Option<String> {
    if host.len() > MAX_HOST + 6 || !host.is_ascii() || host.starts_with('[') {
        return None;
    }
    // `name:port`: a port is digits only.
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOST - 1 {
        return None;
    }
    let name = name.to_ascii_lowercase();
    let suffix = suffix.trim_end_matches('.').to_ascii_lowercase();
    let label = name.strip_suffix(&suffix)?;
    if label.is_empty() || label.contains('.') {
        return None;
    }
    TenantName::parse(label).ok().map(|name| name.0)
}

/// A tenant's name as an operator gives it: a lowercase DNS label of 1 to 63 letters, digits and
/// hyphens, not starting or ending with a hyphen, without the `xx--` form of IDNA labels, and
/// not one of [`RESERVED_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

/// Names no tenant may take: the hosts a platform keeps for itself beside its stores.
pub const RESERVED_NAMES: &[&str] = &[
    "www",
    "api",
    "admin",
    "app",
    "auth",
    "login",
    "account",
    "accounts",
    "dashboard",
    "console",
    "status",
    "docs",
    "help",
    "support",
    "billing",
    "mail",
    "email",
    "smtp",
    "imap",
    "pop",
    "mx",
    "ns",
    "ns1",
    "ns2",
    "ftp",
    "cdn",
    "static",
    "assets",
    "media",
    "internal",
    "localhost",
    "metrics",
    "health",
    "ready",
    "xclade",
    "myxclade",
    "medusa",
    "root",
    "system",
    "security",
    "wpad",
    "autoconfig",
    "autodiscover",
];

impl TenantName {
    /// Checks `value` as a tenant name (exactly as given: no case folding), with the reason
    /// when it is not one.
    pub fn parse(value: &str) -> Result<TenantName, String> {
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > 63 {
            return Err("a tenant name has 1 to 63 characters".into());
        }
        if !bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-') {
            return Err("a tenant name has only lowercase letters a-z, digits and hyphens".into());
        }
        if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
            return Err("a tenant name does not start or end with a hyphen".into());
        }
        if bytes.len() >= 4 && &bytes[2..4] == b"--" {
            return Err("a tenant name does not have hyphens in its third and fourth characters (IDNA labels)".into());
        }
        if RESERVED_NAMES.contains(&value) {
            return Err(format!("`{value}` is reserved (docs/operations.md lists the reserved names)"));
        }
        Ok(TenantName(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn id(&self) -> TenantId {
        TenantId::new(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUFFIX: &str = ".api.myxclade.com";

    #[test]
    fn one_tenant_answers_default_for_every_host() {
        let directory = SingleTenant::default();
        for host in [None, Some("acme.api.myxclade.com"), Some("localhost:9000")] {
            assert_eq!(directory.resolve(host).unwrap().id, TenantId::default_tenant());
        }
        assert!(directory.tenant(&TenantId::new("acme")).is_none());
    }

    #[test]
    fn the_label_before_the_suffix_names_the_tenant() {
        let label = |host: &str| host_label(host, SUFFIX);
        assert_eq!(label("acme.api.myxclade.com").as_deref(), Some("acme"));
        assert_eq!(label("acme.api.myxclade.com:443").as_deref(), Some("acme"));
        assert_eq!(label("ACME.Api.MyXclade.COM").as_deref(), Some("acme"));
        assert_eq!(label("acme.api.myxclade.com.").as_deref(), Some("acme"));
        assert_eq!(label("acme.api.myxclade.com.:8443").as_deref(), Some("acme"));
        assert_eq!(host_label("acme.api.myxclade.com", "api.myxclade.com.").as_deref(), None, "no dot: acme.");
        assert_eq!(host_label("acme.api.myxclade.com", ".API.myxclade.com.").as_deref(), Some("acme"));
    }

    #[test]
    fn hostile_hosts_name_no_tenant() {
        let long = format!("{}{SUFFIX}", "a".repeat(1024));
        for host in [
            "",
            "api.myxclade.com",
            ".api.myxclade.com",
            "a.b.api.myxclade.com",
            "acme.api.myxclade.com.evil.com",
            "acmeapi.myxclade.com",
            "acme.api.myxclade.com:",
            "acme.api.myxclade.com:x",
            "acme.api.myxclade.com..",
            "bücher.api.myxclade.com",
            "xn--bcher-kva.api.myxclade.com",
            "-acme.api.myxclade.com",
            "acme-.api.myxclade.com",
            "ac_me.api.myxclade.com",
            "www.api.myxclade.com",
            "[::1]",
            "127.0.0.1:8080",
            long.as_str(),
        ] {
            assert_eq!(host_label(host, SUFFIX), None, "{host:?}");
        }
    }

    #[test]
    fn names_are_lowercase_dns_labels_and_not_reserved() {
        for good in ["a", "acme", "acme-shop", "shop2", "0", &"a".repeat(63)] {
            assert!(TenantName::parse(good).is_ok(), "{good}");
        }
        for bad in
            ["", "Acme", "-a", "a-", "a.b", "a_b", "xn--bcher-kva", "ab--c", "www", "admin", &"a".repeat(64), "é"]
        {
            assert!(TenantName::parse(bad).is_err(), "{bad}");
        }
    }
}
