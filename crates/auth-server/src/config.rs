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
    /// `ADMIN_HOST`: the admin listener's address, independent of `HOST` (loopback by default).
    pub admin_host: String,
    /// `ADMIN_PORT`: the admin listener (`/metrics`, `/health`, `/ready`); `None` when
    /// `ADMIN_PORT=off`.
    pub admin_port: Option<u16>,
    /// `METRICS_ON_PUBLIC_PORT=true`: `/metrics` is served on `PORT` too (off by default: its
    /// counters would tell a stranger, for one, whether a reset named a registered email).
    pub metrics_on_public_port: bool,
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

/// The admin listener's port when `ADMIN_PORT` is unset.
pub const DEFAULT_ADMIN_PORT: u16 = 9001;

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
        // PostgreSQL on this machine runs its backends on our cores: more queries at once than
        // 2 per core only queue in the scheduler and stretch the tail (docs/benchmarks.md).
        let default_pool_size = if database_url.is_local_postgres() { 2 * cores as u32 } else { 10 };
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
            database_pool_size: parse_num("DATABASE_POOL_SIZE", get("DATABASE_POOL_SIZE"), default_pool_size)?.max(1),
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
            admin_host: get("ADMIN_HOST").unwrap_or_else(|| "127.0.0.1".into()),
            admin_port: match get("ADMIN_PORT") {
                Some(v) if v.eq_ignore_ascii_case("off") => None,
                Some(v) => {
                    Some(v.parse().map_err(|_| invalid("ADMIN_PORT", &format!("{v:?} is not a port number or off")))?)
                }
                None => Some(DEFAULT_ADMIN_PORT),
            },
            metrics_on_public_port: parse_bool("METRICS_ON_PUBLIC_PORT", get("METRICS_ON_PUBLIC_PORT"))?
                .unwrap_or(false),
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
        if config.admin_port.is_some_and(|admin| admin != 0 && admin == config.port && config.admin_host == config.host)
        {
            return Err(invalid(
                "ADMIN_PORT",
                "must differ from PORT on the same host (ADMIN_PORT=off turns the admin listener off)",
            ));
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

/// How `xclade-auth config` shows a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redact {
    /// Shown as it is.
    No,
    /// A secret: only `[redacted]` is shown when it is set.
    Value,
    /// A URL: a password in `user:password@` and in `password=` query parameters is replaced.
    UrlPassword,
    /// NATS URLs (comma-separated): as `UrlPassword`, and a lone `token@` is replaced too.
    UrlCredentials,
}

/// One environment variable of the server. [`KEYS`] is the single list: `--help` renders it,
/// `xclade-auth config` prints it, and a test checks it against `Config::from_lookup` and
/// docs/configuration.md.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    /// The section of docs/configuration.md that documents the key.
    pub group: &'static str,
    /// The default, as text (`unset` when there is none).
    pub default: &'static str,
    /// One line for `--help`; docs/configuration.md has the details.
    pub description: &'static str,
    pub redact: Redact,
    /// The effective value in a parsed configuration; `None` when unset or not used.
    pub value: fn(&Config) -> Option<String>,
}

pub const REDACTED: &str = "[redacted]";

const SERVER: &str = "Server and database";
const TOKENS: &str = "Tokens and passwords";
const LIMITS: &str = "Abuse limits";
const EVENTS: &str = "Events";
const SESSIONS: &str = "Sessions, cookies and storefronts";

/// Every environment variable of the server, in the order of docs/configuration.md. `RUST_LOG`
/// (read by env_logger) and the `XCLADE_*` variables of the test suite are not server settings
/// and are not listed.
pub const KEYS: &[Key] = &[
    Key {
        name: "HOST",
        group: SERVER,
        default: "127.0.0.1",
        description: "listen address",
        redact: Redact::No,
        value: |c| Some(c.host.clone()),
    },
    Key {
        name: "PORT",
        group: SERVER,
        default: "9000",
        description: "listen port; 0 picks a free port",
        redact: Redact::No,
        value: |c| Some(c.port.to_string()),
    },
    Key {
        name: "HTTP_WORKERS",
        group: SERVER,
        default: "number of cores",
        description: "HTTP worker threads (at least 1)",
        redact: Redact::No,
        value: |c| Some(c.http_workers.to_string()),
    },
    Key {
        name: "DATA_DIR",
        group: SERVER,
        default: "./data",
        description: "holds the default SQLite file and the generated jwt-secret",
        redact: Redact::No,
        value: |c| Some(c.data_dir.display().to_string()),
    },
    Key {
        name: "DATABASE_URL",
        group: SERVER,
        default: "DATA_DIR/xclade-auth.sqlite",
        description: "postgres://… selects PostgreSQL; anything else is a SQLite path (also sqlite://path)",
        redact: Redact::UrlPassword,
        value: |c| {
            Some(match &c.database_url {
                DatabaseUrl::Postgres(url) => url.clone(),
                DatabaseUrl::Sqlite(path) => path.display().to_string(),
            })
        },
    },
    Key {
        name: "DATABASE_POOL_SIZE",
        group: SERVER,
        default: "10; 2 × cores for PostgreSQL on this machine",
        description: "maximum database connections (at least 1); also how many requests use the database at once",
        redact: Redact::No,
        value: |c| Some(c.database_pool_size.to_string()),
    },
    Key {
        name: "DATABASE_TIMEOUT",
        group: SERVER,
        default: "5s",
        description: "how long a request waits for a pooled connection",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.database_timeout)),
    },
    Key {
        name: "MIGRATE_ON_START",
        group: SERVER,
        default: "true",
        description: "serve and user create apply pending migrations first",
        redact: Redact::No,
        value: |c| Some(c.migrate_on_start.to_string()),
    },
    Key {
        name: "ADMIN_HOST",
        group: SERVER,
        default: "127.0.0.1",
        description: "the admin listener's address (/metrics, /health, /ready), independent of HOST",
        redact: Redact::No,
        value: |c| c.admin_port.map(|_| c.admin_host.clone()),
    },
    Key {
        name: "ADMIN_PORT",
        group: SERVER,
        default: "9001",
        description: "the admin listener's port; 0 picks a free port, off turns the listener off",
        redact: Redact::No,
        value: |c| Some(c.admin_port.map_or_else(|| "off".to_string(), |p| p.to_string())),
    },
    Key {
        name: "METRICS_ON_PUBLIC_PORT",
        group: SERVER,
        default: "false",
        description: "true serves /metrics on PORT too, to anyone who reaches it (a warning at start)",
        redact: Redact::No,
        value: |c| Some(c.metrics_on_public_port.to_string()),
    },
    Key {
        name: "SHUTDOWN_TIMEOUT",
        group: SERVER,
        default: "30s",
        description: "on SIGTERM or SIGINT, how long requests in flight may take to finish",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.shutdown_timeout)),
    },
    Key {
        name: "JWT_SECRET",
        group: TOKENS,
        default: "SQLite: generated into DATA_DIR/jwt-secret; PostgreSQL: required",
        description: "HS256 signing secret, used byte for byte",
        redact: Redact::Value,
        value: |c| c.jwt_secret.as_ref().map(|_| REDACTED.to_string()),
    },
    Key {
        name: "JWT_SECRET_PREVIOUS",
        group: TOKENS,
        default: "unset",
        description: "comma-separated earlier secrets, still accepted for verification (rotation)",
        redact: Redact::Value,
        value: |c| (!c.jwt_secret_previous.is_empty()).then(|| REDACTED.to_string()),
    },
    Key {
        name: "JWT_EXPIRES_IN",
        group: TOKENS,
        default: "1d",
        description: "auth token lifetime",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.jwt_expires_in)),
    },
    Key {
        name: "JWT_LEEWAY",
        group: TOKENS,
        default: "30s",
        description: "tolerated clock skew for exp and iat",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.jwt_leeway)),
    },
    Key {
        name: "BCRYPT_COST",
        group: TOKENS,
        default: "12",
        description: "bcrypt cost, 4..=31",
        redact: Redact::No,
        value: |c| Some(c.bcrypt_cost.to_string()),
    },
    Key {
        name: "HASH_CONCURRENCY",
        group: TOKENS,
        default: "number of cores",
        description: "bcrypt operations at once (at least 1)",
        redact: Redact::No,
        value: |c| Some(c.hash_concurrency.to_string()),
    },
    Key {
        name: "PASSWORD_MIN_LENGTH",
        group: TOKENS,
        default: "8",
        description: "minimum password length in characters (at least 1)",
        redact: Redact::No,
        value: |c| Some(c.password_min_length.to_string()),
    },
    Key {
        name: "PASSWORD_MIN_STRENGTH",
        group: TOKENS,
        default: "2",
        description: "minimum zxcvbn score, 0..=4; 0 turns the check off",
        redact: Redact::No,
        value: |c| Some(c.password_min_strength.to_string()),
    },
    Key {
        name: "ACTOR_TYPES",
        group: TOKENS,
        default: "customer,user",
        description: "allowed {actor} values, comma-separated",
        redact: Redact::No,
        value: |c| Some(c.actor_types.join(",")),
    },
    Key {
        name: "RATE_LIMIT_ENABLED",
        group: LIMITS,
        default: "true",
        description: "false turns every limit below off",
        redact: Redact::No,
        value: |c| Some(c.rate_limit_enabled.to_string()),
    },
    Key {
        name: "RATE_LIMIT_PER_IP",
        group: LIMITS,
        default: "60/1m",
        description: "requests per client to register, login, reset-password, update, change-password",
        redact: Redact::No,
        value: |c| Some(fmt_limit(c.limits.per_client)),
    },
    Key {
        name: "LOGIN_FAILURE_LIMIT",
        group: LIMITS,
        default: "5/15m",
        description: "failed logins per (email, client)",
        redact: Redact::No,
        value: |c| Some(fmt_limit(c.limits.login_failures)),
    },
    Key {
        name: "LOGIN_FAILURE_LIMIT_ACCOUNT",
        group: LIMITS,
        default: "20/1h",
        description: "failed logins per email, from every client",
        redact: Redact::No,
        value: |c| Some(fmt_limit(c.limits.login_failures_account)),
    },
    Key {
        name: "RESET_PASSWORD_INTERVAL",
        group: LIMITS,
        default: "60s",
        description: "at most one reset per email in this time",
        redact: Redact::No,
        value: |c| c.limits.reset_interval.to_std().ok().map(fmt_duration),
    },
    Key {
        name: "TRUSTED_PROXIES",
        group: LIMITS,
        default: "unset",
        description: "addresses and CIDRs whose X-Forwarded-For is believed",
        redact: Redact::No,
        value: |c| {
            (!c.trusted_proxies.is_empty())
                .then(|| c.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
        },
    },
    Key {
        name: "RESET_PASSWORD_URL",
        group: EVENTS,
        default: DEFAULT_RESET_PASSWORD_URL,
        description: "reset link template of the email and log sinks ({token}, {email})",
        redact: Redact::No,
        value: |c| Some(c.reset_password_url.clone()),
    },
    Key {
        name: "EVENTS_FILE",
        group: EVENTS,
        default: "unset",
        description: "file sink: appends every event as one line of JSON",
        redact: Redact::No,
        value: |c| c.events_file.as_ref().map(|p| p.display().to_string()),
    },
    Key {
        name: "LOG_SINK",
        group: EVENTS,
        default: "on with SQLite when no other sink is on",
        description: "true or false: forces the development log sink (prints reset links) on or off",
        redact: Redact::No,
        value: |c| c.log_sink.map(|on| on.to_string()),
    },
    Key {
        name: "WEBHOOK_URL",
        group: EVENTS,
        default: "unset",
        description: "webhook sink: POSTs every event here (needs WEBHOOK_SECRET)",
        redact: Redact::UrlPassword,
        value: |c| c.webhook.as_ref().map(|w| w.url.clone()),
    },
    Key {
        name: "WEBHOOK_SECRET",
        group: EVENTS,
        default: "unset",
        description: "whsec_<base64> signing key; required with WEBHOOK_URL",
        redact: Redact::Value,
        value: |c| c.webhook.as_ref().map(|_| REDACTED.to_string()),
    },
    Key {
        name: "WEBHOOK_TIMEOUT",
        group: EVENTS,
        default: "10s",
        description: "time limit of one webhook request (read only with WEBHOOK_URL)",
        redact: Redact::No,
        value: |c| c.webhook.as_ref().map(|w| fmt_duration(w.timeout)),
    },
    Key {
        name: "SMTP_URL",
        group: EVENTS,
        default: "unset",
        description: "email sink: smtps://[user:password@]host[:port] (needs EMAIL_FROM)",
        redact: Redact::UrlPassword,
        value: |c| c.email.as_ref().map(|e| e.smtp_url.clone()),
    },
    Key {
        name: "EMAIL_FROM",
        group: EVENTS,
        default: "unset",
        description: "the sender address; required with SMTP_URL",
        redact: Redact::No,
        value: |c| c.email.as_ref().map(|e| e.from.clone()),
    },
    Key {
        name: "NATS_URL",
        group: EVENTS,
        default: "unset",
        description: "NATS JetStream sink: nats://[user:password@|token@]host[:port], comma-separated",
        redact: Redact::UrlCredentials,
        value: |c| c.nats.as_ref().map(|n| n.url.clone()),
    },
    Key {
        name: "NATS_SUBJECT",
        group: EVENTS,
        default: "xclade.auth.events",
        description: "the subject events are published to (read only with NATS_URL)",
        redact: Redact::No,
        value: |c| c.nats.as_ref().map(|n| n.subject.clone()),
    },
    Key {
        name: "EVENT_MAX_ATTEMPTS",
        group: EVENTS,
        default: "10",
        description: "attempts per sink before a delivery is dead",
        redact: Redact::No,
        value: |c| Some(c.event_max_attempts.to_string()),
    },
    Key {
        name: "EVENT_RETRY_INITIAL",
        group: EVENTS,
        default: "1s",
        description: "delay after the first failed attempt; it doubles, up to 10 minutes",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.event_retry_delay)),
    },
    Key {
        name: "EVENT_LEASE",
        group: EVENTS,
        default: "60s",
        description: "how long a dispatcher's claim holds before another instance may take it",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.event_lease)),
    },
    Key {
        name: "EVENT_POLL_INTERVAL",
        group: EVENTS,
        default: "500ms",
        description: "pause between dispatcher passes when nothing wakes it",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.event_poll_interval)),
    },
    Key {
        name: "EVENT_RETENTION",
        group: EVENTS,
        default: "7d",
        description: "the janitor deletes delivered and expired events older than this",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.event_retention)),
    },
    Key {
        name: "JANITOR_INTERVAL",
        group: EVENTS,
        default: "10m",
        description: "how often the janitor runs",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.janitor_interval)),
    },
    Key {
        name: "SESSION_TTL",
        group: SESSIONS,
        default: "10h",
        description: "lifetime of a cookie session",
        redact: Redact::No,
        value: |c| Some(fmt_duration(c.session_ttl)),
    },
    Key {
        name: "COOKIE_SECURE",
        group: SESSIONS,
        default: "auto",
        description: "auto, true or false; auto: Secure unless HOST is a loopback address",
        redact: Redact::No,
        value: |c| {
            Some(
                match c.cookie_secure {
                    CookieSecure::Auto => "auto",
                    CookieSecure::Always => "true",
                    CookieSecure::Never => "false",
                }
                .to_string(),
            )
        },
    },
    Key {
        name: "COOKIE_SAMESITE",
        group: SESSIONS,
        default: "lax",
        description: "lax, strict or none (none forces Secure)",
        redact: Redact::No,
        value: |c| {
            Some(
                match c.cookie_same_site {
                    CookieSameSite::Lax => "lax",
                    CookieSameSite::Strict => "strict",
                    CookieSameSite::None => "none",
                }
                .to_string(),
            )
        },
    },
    Key {
        name: "STORE_PUBLISHABLE_KEYS",
        group: SESSIONS,
        default: "unset",
        description: "comma-separated; when set, /store requests must send one in x-publishable-api-key",
        redact: Redact::No,
        value: |c| c.store_publishable_keys.as_ref().map(|keys| keys.join(",")),
    },
    Key {
        name: "AUTH_CORS",
        group: SESSIONS,
        default: "unset",
        description: "comma-separated origins that browsers may call /auth from",
        redact: Redact::No,
        value: |c| (!c.auth_cors.is_empty()).then(|| c.auth_cors.join(",")),
    },
    Key {
        name: "STORE_CORS",
        group: SESSIONS,
        default: "unset",
        description: "comma-separated origins that browsers may call /store from",
        redact: Redact::No,
        value: |c| (!c.store_cors.is_empty()).then(|| c.store_cors.join(",")),
    },
];

/// What the table leaves out on purpose, said wherever it is printed.
const NOT_LISTED: &str = "Not server settings: RUST_LOG (the log filter, read by env_logger; default info) and \
                          XCLADE_* (the test suite only).";

impl Key {
    /// Whether the key is set in `lookup`, by the rules of `from_lookup`: an empty (or, except for
    /// `JWT_SECRET`, blank) value counts as unset.
    fn is_set(&self, lookup: &impl Fn(&str) -> Option<String>) -> bool {
        lookup(self.name).is_some_and(|v| !v.is_empty() && (self.name == "JWT_SECRET" || !v.trim().is_empty()))
    }

    /// The value as `xclade-auth config` shows it.
    fn shown(&self, config: &Config) -> Option<String> {
        let value = (self.value)(config)?;
        Some(match self.redact {
            Redact::No => value,
            Redact::Value => REDACTED.to_string(),
            Redact::UrlPassword => redact_url(&value, false),
            Redact::UrlCredentials => {
                value.split(',').map(|url| redact_url(url.trim(), true)).collect::<Vec<_>>().join(",")
            }
        })
    }
}

/// The environment variables, by group, for `--help`.
pub fn help_text() -> String {
    let mut out = wrap(
        "Environment variables (a .env file in the working directory or a parent is read too; variables \
         already set win). `xclade-auth config` prints the values in effect. Details: docs/configuration.md.",
        0,
        0,
    );
    let mut group = "";
    for key in KEYS {
        if key.group != group {
            group = key.group;
            out.push_str(&format!("\n{group}:\n"));
        }
        // A bracket is kept on one line (non-breaking spaces), unless it is longer than a line.
        let keep = |bracket: String| if bracket.len() < 40 { bracket.replace(' ', "\u{a0}") } else { bracket };
        let mut text = key.description.to_string();
        if key.redact == Redact::Value {
            text.push(' ');
            text.push_str(&keep("[secret: never printed]".to_string()));
        }
        text.push(' ');
        text.push_str(&keep(format!("[default: {}]", key.default)));
        out.push_str(&format!("  {:<28}", key.name));
        out.push_str(&wrap(&text, 30, 30).replace('\u{a0}', " "));
    }
    out.push('\n');
    out.push_str(&wrap(NOT_LISTED, 0, 0));
    out
}

/// `text`, to be printed from column `start`, wrapped at 100 columns on spaces; continuation
/// lines are indented by `indent`.
fn wrap(text: &str, start: usize, indent: usize) -> String {
    let (mut out, mut column) = (String::new(), start);
    for (i, word) in text.split(' ').enumerate() {
        let len = word.chars().count();
        if i > 0 && column + 1 + len > 100 {
            out.push_str(&format!("\n{:indent$}", ""));
            column = indent;
        } else if i > 0 {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
    }
    out.push('\n');
    out
}

/// The effective configuration as `xclade-auth config` prints it: one `KEY=value  # source` line
/// per key, by group, secrets redacted. `lookup` is what `config` was read from; `origin` names
/// where a set key came from (the environment, or `.env`).
pub fn render_effective(
    config: &Config,
    lookup: impl Fn(&str) -> Option<String>,
    origin: impl Fn(&str) -> &'static str,
) -> String {
    let mut out =
        String::from("# The effective configuration (secrets redacted). Source: environment, .env or default.\n");
    let mut group = "";
    for key in KEYS {
        if key.group != group {
            group = key.group;
            out.push_str(&format!("\n# {group}\n"));
        }
        let shown = key.shown(config);
        let source = match (key.is_set(&lookup), &shown) {
            (true, Some(_)) => origin(key.name).to_string(),
            (true, None) => format!("{}, not used (see --help)", origin(key.name)),
            (false, Some(_)) => "default".to_string(),
            (false, None) if key.default == "unset" => "unset".to_string(),
            (false, None) => format!("unset; default: {}", key.default),
        };
        let line = format!("{}={}", key.name, shown.unwrap_or_default());
        out.push_str(&format!("{line:<48}  # {source}\n"));
    }
    out.push_str(&format!("\n# {NOT_LISTED}\n"));
    out
}

/// A URL with its password replaced: `scheme://user:[redacted]@host/…?password=[redacted]`.
/// With `token`, a lone `token@` (NATS) is replaced too; otherwise it is a user name and stays.
pub fn redact_url(url: &str, token: bool) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None if token => format!("{REDACTED}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => rest.to_string(),
    };
    let Some((base, query)) = rest.split_once('?') else { return format!("{scheme}{rest}") };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if ["password", "secret", "token"].iter().any(|s| name.to_ascii_lowercase().contains(s)) =>
            {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{scheme}{base}?{}", query.join("&"))
}

/// A duration in the largest unit that writes it exactly (`250ms`, `30s`, `15m`, `1h`, `7d`).
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match s {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn fmt_limit(limit: RateLimit) -> String {
    format!("{}/{}", limit.capacity, limit.window.to_std().map(fmt_duration).unwrap_or_default())
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
    use std::collections::{BTreeSet, HashMap};

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
        assert_eq!((c.admin_host.as_str(), c.admin_port), ("127.0.0.1", Some(9001)), "the admin listener, on loopback");
        assert!(!c.metrics_on_public_port, "no /metrics on the public port unless asked for");
    }

    #[test]
    fn the_admin_listener_is_on_unless_turned_off_and_metrics_stay_off_the_public_port() {
        let c = config(&[("HOST", "0.0.0.0"), ("ADMIN_PORT", "0")]).unwrap();
        assert_eq!((c.host.as_str(), c.admin_host.as_str(), c.admin_port), ("0.0.0.0", "127.0.0.1", Some(0)));
        let c = config(&[("ADMIN_HOST", "10.0.0.5"), ("ADMIN_PORT", "9100")]).unwrap();
        assert_eq!((c.admin_host.as_str(), c.admin_port), ("10.0.0.5", Some(9100)));
        for off in ["off", "OFF", " off "] {
            assert_eq!(config(&[("ADMIN_PORT", off)]).unwrap().admin_port, None, "{off:?}");
        }
        assert!(!config(&[("ADMIN_PORT", "off")]).unwrap().metrics_on_public_port, "off does not move /metrics");
        assert!(config(&[("METRICS_ON_PUBLIC_PORT", "true")]).unwrap().metrics_on_public_port);
        assert_eq!(config(&[("METRICS_ON_PUBLIC_PORT", "maybe")]).unwrap_err().key, "METRICS_ON_PUBLIC_PORT");
        for bad in ["x", "-1", "65536", "false"] {
            assert_eq!(config(&[("ADMIN_PORT", bad)]).unwrap_err().key, "ADMIN_PORT", "{bad:?}");
        }
        // The same port twice on one host cannot be bound: said at once, with the way out.
        let clash = config(&[("PORT", "9001")]).unwrap_err();
        assert_eq!(clash.key, "ADMIN_PORT");
        assert!(clash.reason.contains("ADMIN_PORT=off"), "{}", clash.reason);
        assert!(config(&[("PORT", "9001"), ("ADMIN_HOST", "127.0.0.2")]).is_ok(), "another host");
        assert!(config(&[("PORT", "0"), ("ADMIN_PORT", "0")]).is_ok(), "two free ports");
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
    fn the_pool_is_smaller_when_postgresql_shares_our_cores() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        let pool = |url: &str| config(&[("DATABASE_URL", url)]).unwrap().database_pool_size;
        assert_eq!(pool("postgres://postgres@127.0.0.1:5432/auth"), 2 * cores);
        assert_eq!(pool("postgres://postgres@localhost/auth"), 2 * cores);
        assert_eq!(pool("postgres://postgres@db.internal:5432/auth"), 10);
        assert_eq!(pool("./data/auth.sqlite"), 10);
        let set = config(&[("DATABASE_URL", "postgres://postgres@127.0.0.1/auth"), ("DATABASE_POOL_SIZE", "7")]);
        assert_eq!(set.unwrap().database_pool_size, 7);
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

    /// Keys named in `from_lookup` and the parsing helpers (`get("…")`, `lookup("…")`,
    /// `invalid("…")`, `parse_*("…")`), from this file's source text outside the tests.
    fn keys_in_the_parser() -> BTreeSet<String> {
        let source = include_str!("config.rs");
        let source = &source[..source.find("\n#[cfg(test)]\nmod tests").unwrap()];
        let mut keys = BTreeSet::new();
        for call in [
            "get(\"",
            "lookup(\"",
            "invalid(\"",
            "parse_num(\"",
            "parse_bool(\"",
            "parse_duration(\"",
            "parse_limit(\"",
        ] {
            for (at, _) in source.match_indices(call) {
                let rest = &source[at + call.len()..];
                keys.insert(rest[..rest.find('"').unwrap()].to_string());
            }
        }
        keys
    }

    /// `(section, key, default cell)` of each variable row under `## Variables` in
    /// docs/configuration.md.
    fn documented_keys() -> Vec<(String, String, String)> {
        let docs = include_str!("../../../docs/configuration.md");
        let (mut in_variables, mut section, mut rows) = (false, String::new(), vec![]);
        for line in docs.lines() {
            if let Some(heading) = line.strip_prefix("## ") {
                in_variables = heading == "Variables";
            } else if let Some(heading) = line.strip_prefix("### ") {
                section = heading.to_string();
            } else if in_variables {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let key = cells.get(1).and_then(|c| c.strip_prefix('`')).and_then(|c| c.strip_suffix('`'));
                if let (Some(key), Some(default)) = (key, cells.get(2)) {
                    if !key.is_empty() && key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    {
                        rows.push((section.clone(), key.to_string(), default.to_string()));
                    }
                }
            }
        }
        rows
    }

    /// Keys whose default text is a description, not a value (`number of cores`, `DATA_DIR/…`).
    const DESCRIBED_DEFAULTS: [&str; 4] = ["HTTP_WORKERS", "HASH_CONCURRENCY", "DATABASE_URL", "DATABASE_POOL_SIZE"];

    #[test]
    fn the_key_table_is_what_the_parser_reads() {
        let table: BTreeSet<String> = KEYS.iter().map(|k| k.name.to_string()).collect();
        assert_eq!(table.len(), KEYS.len(), "a key is listed twice");
        assert_eq!(keys_in_the_parser(), table, "KEYS and Config::from_lookup differ");
        let unset = config(&[]).unwrap();
        for key in KEYS {
            let Some(default) = (key.value)(&unset) else {
                continue;
            };
            if DESCRIBED_DEFAULTS.contains(&key.name) {
                continue;
            }
            let set = config(&[(key.name, key.default)]).unwrap_or_else(|e| panic!("{}: default: {e}", key.name));
            assert_eq!((key.value)(&set), Some(default), "{}: its default text is not the parser's default", key.name);
        }
    }

    #[test]
    fn the_key_table_is_what_the_docs_list() {
        let documented = documented_keys();
        let server: BTreeSet<String> = documented
            .iter()
            .map(|(_, key, _)| key.clone())
            .filter(|key| key != "RUST_LOG" && !key.starts_with("XCLADE_"))
            .collect();
        let table: BTreeSet<String> = KEYS.iter().map(|k| k.name.to_string()).collect();
        assert_eq!(server, table, "KEYS and the variables in docs/configuration.md differ");
        let unset = config(&[]).unwrap();
        for (section, name, default) in &documented {
            let Some(key) = KEYS.iter().find(|k| k.name == name) else {
                let expected = if name == "RUST_LOG" { "Logging" } else { "Tests only" };
                assert_eq!(section, expected, "{name} is not a server setting");
                continue;
            };
            assert_eq!(section, key.group, "{name}: documented under another heading than its group");
            if key.default == "unset" {
                assert!(default.starts_with("unset"), "{name}: documented default {default:?}, table: unset");
            } else if (key.value)(&unset).is_some() && !DESCRIBED_DEFAULTS.contains(&key.name) {
                assert_eq!(default, &format!("`{}`", key.default), "{name}: documented default");
            }
        }
    }

    #[test]
    fn the_effective_configuration_redacts_secrets() {
        let pairs = [
            ("JWT_SECRET", "jwt-s3cret-value"),
            ("JWT_SECRET_PREVIOUS", "old-s3cret-1, old-s3cret-2"),
            ("DATABASE_URL", "postgres://auth:db-s3cret@db.internal:5432/auth?sslmode=require&password=q-s3cret"),
            ("WEBHOOK_URL", "https://hooks:hook-s3cret@hooks.example/in"),
            ("WEBHOOK_SECRET", "whsec_c2VjcmV0LXdlYmhvb2sta2V5"),
            ("SMTP_URL", "smtps://mailer:smtp-s3cret@smtp.example.com"),
            ("EMAIL_FROM", "no-reply@shop.example"),
            ("NATS_URL", "nats://nats-t0ken@a.example, nats://u:nats-s3cret@b.example:4222"),
            ("STORE_PUBLISHABLE_KEYS", "pk_1,pk_2"),
            ("PORT", "9100"),
            ("WEBHOOK_TIMEOUT", "5s"),
        ];
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let c = config(&pairs).unwrap();
        let out = render_effective(&c, |k| map.get(k).cloned(), |_| "environment");
        for secret in ["s3cret", "t0ken", "c2VjcmV0LXdlYmhvb2sta2V5"] {
            assert!(!out.contains(secret), "{secret} printed:\n{out}");
        }
        for line in [
            "JWT_SECRET=[redacted] ",
            "JWT_SECRET_PREVIOUS=[redacted] ",
            "WEBHOOK_SECRET=[redacted] ",
            "DATABASE_URL=postgres://auth:[redacted]@db.internal:5432/auth?sslmode=require&password=[redacted] ",
            "WEBHOOK_URL=https://hooks:[redacted]@hooks.example/in ",
            "SMTP_URL=smtps://mailer:[redacted]@smtp.example.com ",
            "NATS_URL=nats://[redacted]@a.example,nats://u:[redacted]@b.example:4222 ",
            "STORE_PUBLISHABLE_KEYS=pk_1,pk_2 ",
            "WEBHOOK_TIMEOUT=5s ",
        ] {
            assert!(out.contains(line), "no {line:?} in\n{out}");
        }
        let lines: Vec<&str> = out.lines().collect();
        for key in KEYS {
            let line = lines.iter().find(|l| l.starts_with(&format!("{}=", key.name))).unwrap();
            let set = map.contains_key(key.name);
            assert_eq!(line.ends_with("# environment"), set, "{line}");
        }
        assert!(out.contains("HOST=127.0.0.1 ") && out.contains("RUST_LOG"), "{out}");
    }

    #[test]
    fn unused_and_unset_keys_say_so() {
        let map: HashMap<String, String> = [("WEBHOOK_SECRET".to_string(), "whsec_eHl6".to_string())].into();
        let out = render_effective(&config(&[]).unwrap(), |k| map.get(k).cloned(), |_| ".env");
        assert!(out.contains("# .env, not used"), "WEBHOOK_SECRET without WEBHOOK_URL:\n{out}");
        assert!(out.contains("EVENTS_FILE=") && out.contains("# unset\n"), "{out}");
        assert!(out.contains("# unset; default: SQLite: generated into DATA_DIR/jwt-secret"), "{out}");
        assert!(!out.contains("eHl6"));
    }

    #[test]
    fn help_lists_every_key_with_its_default() {
        let help = help_text();
        for key in KEYS {
            assert!(help.contains(&format!("  {} ", key.name)), "{} missing from\n{help}", key.name);
        }
        assert!(help.contains("[default: 60/1m]") && help.contains("XCLADE_*"), "{help}");
    }

    #[test]
    fn urls_and_durations_print_in_the_configuration_syntax() {
        assert_eq!(redact_url("postgres://u@h/db", false), "postgres://u@h/db");
        assert_eq!(redact_url("nats://tok@h", true), "nats://[redacted]@h");
        assert_eq!(
            redact_url("postgres://u:p:q@h/db?Password=x", false),
            "postgres://u:[redacted]@h/db?Password=[redacted]"
        );
        assert_eq!(redact_url("./data/x.sqlite", false), "./data/x.sqlite");
        let d = |ms: u64| fmt_duration(Duration::from_millis(ms));
        assert_eq!(
            [d(250), d(0), d(30_000), d(60_000), d(90_000), d(36_000_000), d(604_800_000)],
            ["250ms", "0s", "30s", "1m", "90s", "10h", "7d"]
        );
    }
}
