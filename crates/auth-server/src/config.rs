//! Configuration from the environment (and `.env` in development). Every key is documented in
//! docs/configuration.md.

use std::path::PathBuf;
use std::time::Duration;

use auth_domain::ratelimit::RateLimit;
use auth_domain::service::Limits;
use auth_store_diesel::DatabaseUrl;

/// A secret from the environment; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub database_pool_size: u32,
    pub database_timeout: Duration,
    pub migrate_on_start: bool,
    pub jwt_secret: Option<Secret>,
    pub jwt_secret_previous: Vec<Secret>,
    pub jwt_expires_in: Duration,
    pub jwt_leeway: Duration,
    pub bcrypt_cost: u32,
    pub hash_concurrency: usize,
    pub http_workers: usize,
    pub password_min_length: usize,
    /// Minimum zxcvbn score 0..=4 of a new password.
    pub password_min_strength: u8,
    pub actor_types: Vec<String>,
    pub reset_password_url: String,
    pub events_file: Option<PathBuf>,
    pub log_sink: Option<bool>,
    pub event_retry_delay: Duration,
    pub event_poll_interval: Duration,
    /// Attempts per sink before a delivery is `dead`.
    pub event_max_attempts: u32,
    /// How long a dispatcher's claim on a delivery holds (another instance retries after it).
    pub event_lease: Duration,
    pub webhook: Option<WebhookSettings>,
    pub email: Option<EmailSettings>,
    pub nats: Option<NatsSettings>,
    pub session_ttl: Duration,
    pub cookie_secure: CookieSecure,
    pub cookie_same_site: CookieSameSite,
    pub store_publishable_keys: Option<Vec<String>>,
    pub auth_cors: Vec<String>,
    pub store_cors: Vec<String>,
    /// `RATE_LIMIT_ENABLED=false` turns every limit off.
    pub rate_limit_enabled: bool,
    pub limits: Limits,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `ADMIN_PORT`: when set, `/metrics` is served on this port (same host) and not on `PORT`.
    pub admin_port: Option<u16>,
    /// How long delivered and expired events are kept before the janitor deletes them.
    pub event_retention: Duration,
    /// How often the janitor runs.
    pub janitor_interval: Duration,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
}

/// The webhook sink: `WEBHOOK_URL`, `WEBHOOK_SECRET` (`whsec_<base64>`, Standard Webhooks).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// The HMAC key: the base64-decoded part after `whsec_`.
    pub key: Secret,
    pub timeout: Duration,
}

/// The email sink: `SMTP_URL` (e.g. `smtps://user:pass@smtp.example.com`,
/// `smtp://localhost:2525`), `EMAIL_FROM`.
#[derive(Clone)]
pub struct EmailSettings {
    pub smtp_url: String,
    pub from: String,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings").field("from", &self.from).finish_non_exhaustive()
    }
}

/// The NATS JetStream sink: `NATS_URL`, `NATS_SUBJECT`.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    pub url: String,
    pub subject: String,
}

/// `COOKIE_SECURE`: `auto` marks the session cookie Secure unless the server listens on a
/// loopback address (plain HTTP in development).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

/// `COOKIE_SAMESITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSameSite {
    Lax,
    Strict,
    /// Cross-site storefronts; forces Secure (browsers refuse `SameSite=None` without it).
    None,
}

#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

pub const DEFAULT_RESET_PASSWORD_URL: &str = "http://localhost:8000/reset-password?token={token}&email={email}";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = match get("DATABASE_URL") {
            Some(url) => DatabaseUrl::parse(&url),
            None => DatabaseUrl::Sqlite(data_dir.join("xclade-auth.sqlite")),
        };
        let bcrypt_cost = parse_num("BCRYPT_COST", get("BCRYPT_COST"), 12u32)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(invalid("BCRYPT_COST", "must be within 4..=31"));
        }
        let actor_types: Vec<String> = get("ACTOR_TYPES")
            .unwrap_or_else(|| "customer,user".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if actor_types.is_empty() {
            return Err(invalid("ACTOR_TYPES", "must name at least one actor type"));
        }
        if let Some(bad) = actor_types.iter().find(|a| !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
            return Err(invalid("ACTOR_TYPES", &format!("{bad:?} is not a name of letters, digits and _")));
        }
        let config = Config {
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: parse_num("PORT", get("PORT"), 9000u16)?,
            database_pool_size: parse_num("DATABASE_POOL_SIZE", get("DATABASE_POOL_SIZE"), 10u32)?.max(1),
            database_timeout: parse_duration("DATABASE_TIMEOUT", get("DATABASE_TIMEOUT"), Duration::from_secs(5))?,
            migrate_on_start: parse_bool("MIGRATE_ON_START", get("MIGRATE_ON_START"))?.unwrap_or(true),
            jwt_secret: lookup("JWT_SECRET").filter(|s| !s.is_empty()).map(|s| Secret(s.into_bytes())),
            jwt_secret_previous: lookup("JWT_SECRET_PREVIOUS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Secret(s.as_bytes().to_vec()))
                .collect(),
            jwt_expires_in: parse_duration("JWT_EXPIRES_IN", get("JWT_EXPIRES_IN"), Duration::from_secs(86_400))?,
            jwt_leeway: parse_duration("JWT_LEEWAY", get("JWT_LEEWAY"), Duration::from_secs(30))?,
            bcrypt_cost,
            hash_concurrency: parse_num("HASH_CONCURRENCY", get("HASH_CONCURRENCY"), cores)?.max(1),
            http_workers: parse_num("HTTP_WORKERS", get("HTTP_WORKERS"), cores)?.max(1),
            password_min_length: parse_num("PASSWORD_MIN_LENGTH", get("PASSWORD_MIN_LENGTH"), 8usize)?,
            password_min_strength: match parse_num("PASSWORD_MIN_STRENGTH", get("PASSWORD_MIN_STRENGTH"), 2u8)? {
                score @ 0..=4 => score,
                _ => return Err(invalid("PASSWORD_MIN_STRENGTH", "must be within 0..=4")),
            },
            actor_types,
            reset_password_url: get("RESET_PASSWORD_URL").unwrap_or_else(|| DEFAULT_RESET_PASSWORD_URL.into()),
            events_file: get("EVENTS_FILE").map(PathBuf::from),
            log_sink: parse_bool("LOG_SINK", get("LOG_SINK"))?,
            event_retry_delay: parse_duration(
                "EVENT_RETRY_INITIAL",
                get("EVENT_RETRY_INITIAL"),
                Duration::from_secs(1),
            )?,
            event_poll_interval: parse_duration(
                "EVENT_POLL_INTERVAL",
                get("EVENT_POLL_INTERVAL"),
                Duration::from_millis(500),
            )?,
            event_max_attempts: parse_num("EVENT_MAX_ATTEMPTS", get("EVENT_MAX_ATTEMPTS"), 10u32)?.max(1),
            event_lease: parse_duration("EVENT_LEASE", get("EVENT_LEASE"), Duration::from_secs(60))?,
            webhook: match (get("WEBHOOK_URL"), lookup("WEBHOOK_SECRET").filter(|s| !s.trim().is_empty())) {
                (None, _) => None,
                (Some(_), None) => return Err(invalid("WEBHOOK_SECRET", "is required with WEBHOOK_URL")),
                (Some(url), Some(secret)) => Some(WebhookSettings {
                    url,
                    key: webhook_key(secret.trim())?,
                    timeout: parse_duration("WEBHOOK_TIMEOUT", get("WEBHOOK_TIMEOUT"), Duration::from_secs(10))?,
                }),
            },
            email: match (get("SMTP_URL"), get("EMAIL_FROM")) {
                (None, _) => None,
                (Some(_), None) => return Err(invalid("EMAIL_FROM", "is required with SMTP_URL")),
                (Some(smtp_url), Some(from)) => Some(EmailSettings { smtp_url, from }),
            },
            nats: get("NATS_URL").map(|url| NatsSettings {
                url,
                subject: get("NATS_SUBJECT").unwrap_or_else(|| "xclade.auth.events".into()),
            }),
            session_ttl: parse_duration("SESSION_TTL", get("SESSION_TTL"), Duration::from_secs(10 * 3600))?,
            cookie_secure: match get("COOKIE_SECURE").map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("auto") => CookieSecure::Auto,
                Some("true" | "1" | "yes" | "on") => CookieSecure::Always,
                Some("false" | "0" | "no" | "off") => CookieSecure::Never,
                Some(other) => return Err(invalid("COOKIE_SECURE", &format!("{other:?} is not auto, true or false"))),
            },
            cookie_same_site: match get("COOKIE_SAMESITE").map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("lax") => CookieSameSite::Lax,
                Some("strict") => CookieSameSite::Strict,
                Some("none") => CookieSameSite::None,
                Some(other) => {
                    return Err(invalid("COOKIE_SAMESITE", &format!("{other:?} is not lax, strict or none")))
                }
            },
            store_publishable_keys: get("STORE_PUBLISHABLE_KEYS").map(|v| list(&v)).filter(|keys| !keys.is_empty()),
            auth_cors: get("AUTH_CORS").map(|v| list(&v)).unwrap_or_default(),
            rate_limit_enabled: parse_bool("RATE_LIMIT_ENABLED", get("RATE_LIMIT_ENABLED"))?.unwrap_or(true),
            limits: Limits {
                per_client: parse_limit("RATE_LIMIT_PER_IP", get("RATE_LIMIT_PER_IP"), "60/1m")?,
                login_failures: parse_limit("LOGIN_FAILURE_LIMIT", get("LOGIN_FAILURE_LIMIT"), "5/15m")?,
                login_failures_account: parse_limit(
                    "LOGIN_FAILURE_LIMIT_ACCOUNT",
                    get("LOGIN_FAILURE_LIMIT_ACCOUNT"),
                    "20/1h",
                )?,
                reset_interval: chrono::Duration::from_std(parse_duration(
                    "RESET_PASSWORD_INTERVAL",
                    get("RESET_PASSWORD_INTERVAL"),
                    Duration::from_secs(60),
                )?)
                .map_err(|_| invalid("RESET_PASSWORD_INTERVAL", "is too long"))?,
            },
            trusted_proxies: get("TRUSTED_PROXIES")
                .map(|v| list(&v))
                .unwrap_or_default()
                .iter()
                .map(|net| {
                    net.parse::<ipnet::IpNet>()
                        .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| invalid("TRUSTED_PROXIES", &format!("{net:?} is not an address or a CIDR")))
                })
                .collect::<Result<_, _>>()?,
            store_cors: get("STORE_CORS").map(|v| list(&v)).unwrap_or_default(),
            admin_port: get("ADMIN_PORT").map(|v| parse_num("ADMIN_PORT", Some(v), 0u16)).transpose()?,
            event_retention: parse_duration(
                "EVENT_RETENTION",
                get("EVENT_RETENTION"),
                Duration::from_secs(7 * 86_400),
            )?,
            janitor_interval: parse_duration("JANITOR_INTERVAL", get("JANITOR_INTERVAL"), Duration::from_secs(600))?,
            shutdown_timeout: parse_duration("SHUTDOWN_TIMEOUT", get("SHUTDOWN_TIMEOUT"), Duration::from_secs(30))?,
            data_dir,
            database_url,
        };
        if config.event_lease.is_zero() || config.event_poll_interval.is_zero() {
            let key = if config.event_lease.is_zero() { "EVENT_LEASE" } else { "EVENT_POLL_INTERVAL" };
            return Err(invalid(key, "must be longer than zero"));
        }
        if config.janitor_interval.is_zero() {
            return Err(invalid("JANITOR_INTERVAL", "must be longer than zero"));
        }
        if config.session_ttl.is_zero() {
            return Err(invalid("SESSION_TTL", "must be longer than zero"));
        }
        for (key, origins) in [("AUTH_CORS", &config.auth_cors), ("STORE_CORS", &config.store_cors)] {
            if let Some(bad) = origins.iter().find(|o| !is_origin(o)) {
                return Err(invalid(key, &format!("{bad:?} is not an origin like https://shop.example.com")));
            }
        }
        if config.jwt_expires_in.is_zero() {
            return Err(invalid("JWT_EXPIRES_IN", "must be longer than zero"));
        }
        if config.password_min_length == 0 {
            return Err(invalid("PASSWORD_MIN_LENGTH", "must be at least 1"));
        }
        Ok(config)
    }
}

impl Config {
    /// Whether the session cookie is marked Secure.
    pub fn cookie_is_secure(&self) -> bool {
        let loopback =
            ["127.0.0.1", "localhost", "::1", "[::1]"].contains(&self.host.as_str()) || self.host.starts_with("127.");
        match (self.cookie_same_site, self.cookie_secure) {
            (CookieSameSite::None, _) | (_, CookieSecure::Always) => true,
            (_, CookieSecure::Never) => false,
            (_, CookieSecure::Auto) => !loopback,
        }
    }
}

/// The HMAC key of a Standard Webhooks secret `whsec_<base64>`.
fn webhook_key(secret: &str) -> Result<Secret, ConfigError> {
    use base64::Engine as _;
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
        .map(Secret)
        .ok_or_else(|| invalid("WEBHOOK_SECRET", "must be whsec_ followed by base64"))
}

/// `scheme://host[:port]`, without a path: what a browser sends in `Origin`.
fn is_origin(value: &str) -> bool {
    value.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '*', ' '])
    })
}

/// A limit written `N/duration` (`60/1m`).
fn parse_limit(key: &'static str, value: Option<String>, default: &str) -> Result<RateLimit, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_string());
    RateLimit::parse(&value).ok_or_else(|| invalid(key, &format!("{value:?} is not a limit like 60/1m")))
}

/// A comma-separated list, trimmed, without empty items.
fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError { key, reason: reason.to_string() }
}

fn parse_num<T: std::str::FromStr>(key: &'static str, value: Option<String>, default: T) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| invalid(key, &format!("{v:?} is not a valid number"))),
    }
}

fn parse_bool(key: &'static str, value: Option<String>) -> Result<Option<bool>, ConfigError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
        Some("false" | "0" | "no" | "off") => Ok(Some(false)),
        Some(other) => Err(invalid(key, &format!("{other:?} is not true or false"))),
    }
}

/// A duration: a number followed by `ms`, `s`, `m`, `h` or `d`, or bare seconds.
pub fn parse_duration(key: &'static str, value: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(v) = value else { return Ok(default) };
    let bad = || invalid(key, &format!("{v:?} is not a duration (e.g. 250ms, 30s, 15m, 1h, 1d)"));
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let millis = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(millis).map(Duration::from_millis).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn zero_configuration_means_sqlite_in_data_on_port_9000() {
        let c = config(&[]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 9000));
        assert_eq!(c.database_url, DatabaseUrl::Sqlite(PathBuf::from("./data/xclade-auth.sqlite")));
        assert_eq!(c.jwt_expires_in, Duration::from_secs(86_400));
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.actor_types, ["customer", "user"]);
        assert!(c.migrate_on_start);
        assert_eq!(c.session_ttl, Duration::from_secs(36_000));
        assert!(!c.cookie_is_secure(), "plain HTTP on loopback in development");
        assert!(c.store_publishable_keys.is_none() && c.auth_cors.is_empty());
    }

    #[test]
    fn cookie_flags_follow_the_settings() {
        let secure = |pairs: &[(&str, &str)]| config(pairs).unwrap().cookie_is_secure();
        assert!(secure(&[("HOST", "0.0.0.0")]), "auto: Secure off loopback");
        assert!(secure(&[("COOKIE_SAMESITE", "none")]), "SameSite=None forces Secure");
        assert!(secure(&[("COOKIE_SECURE", "true")]));
        assert!(!secure(&[("HOST", "0.0.0.0"), ("COOKIE_SECURE", "false")]));
        assert_eq!(config(&[("COOKIE_SAMESITE", "sometimes")]).unwrap_err().key, "COOKIE_SAMESITE");
        assert_eq!(config(&[("AUTH_CORS", "*")]).unwrap_err().key, "AUTH_CORS");
        assert_eq!(config(&[("STORE_CORS", "https://shop.example/path")]).unwrap_err().key, "STORE_CORS");
        assert_eq!(config(&[("SESSION_TTL", "0")]).unwrap_err().key, "SESSION_TTL");
        assert_eq!(config(&[("RATE_LIMIT_PER_IP", "fast")]).unwrap_err().key, "RATE_LIMIT_PER_IP");
        assert_eq!(config(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err().key, "TRUSTED_PROXIES");
        let c = config(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"), ("LOGIN_FAILURE_LIMIT", "3/1m")]).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.limits.login_failures.capacity, 3);
        assert!(c.rate_limit_enabled);
        let c = config(&[("STORE_PUBLISHABLE_KEYS", "pk_1, pk_2,"), ("AUTH_CORS", "http://localhost:8000")]).unwrap();
        assert_eq!(c.store_publishable_keys.unwrap(), ["pk_1", "pk_2"]);
        assert_eq!(c.auth_cors, ["http://localhost:8000"]);
    }

    #[test]
    fn durations_take_units_or_bare_seconds() {
        let d = |v: &str| parse_duration("X", Some(v.into()), Duration::ZERO);
        assert_eq!(d("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(d("30").unwrap(), Duration::from_secs(30));
        assert_eq!(d("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(d("1d").unwrap(), Duration::from_secs(86_400));
        assert!(d("1w").is_err());
        assert!(d("abc").is_err());
    }

    #[test]
    fn bad_values_name_the_key_and_never_echo_secrets() {
        assert_eq!(config(&[("BCRYPT_COST", "3")]).unwrap_err().key, "BCRYPT_COST");
        assert_eq!(config(&[("PORT", "x")]).unwrap_err().key, "PORT");
        assert_eq!(config(&[("LOG_SINK", "maybe")]).unwrap_err().key, "LOG_SINK");
        let c = config(&[("JWT_SECRET", "s3cret-value"), ("JWT_SECRET_PREVIOUS", "old1, old2")]).unwrap();
        assert!(!format!("{c:?}").contains("s3cret-value"));
        assert_eq!(c.jwt_secret_previous.len(), 2);
    }
}
