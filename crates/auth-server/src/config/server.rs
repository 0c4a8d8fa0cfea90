//! Server and database: the listeners (the API and the admin listener), the database and its
//! pool, migrations at start, graceful shutdown.

use std::path::PathBuf;
use std::time::Duration;

use auth_store_diesel::DatabaseUrl;

use super::render::fmt_duration;
use super::setting::{section, DefaultValue::*, Env, Secrecy, Setting};
use super::ConfigError;

section! {
    "Server and database",
    HOST = Setting::new(
        Text("127.0.0.1"),
        "listen address",
        |c| Some(c.server.host.clone()),
    ),
    PORT = Setting::new(
        Text("9000"),
        "listen port; 0 picks a free port",
        |c| Some(c.server.port.to_string()),
    ),
    HTTP_WORKERS = Setting::new(
        Computed("number of cores"),
        "HTTP worker threads (at least 1)",
        |c| Some(c.server.http_workers.to_string()),
    ),
    HTTP_HEAD_TIMEOUT = Setting::new(
        Text("5s"),
        "a request's head (request line and headers) must arrive within this; 408 after (0 turns it off)",
        |c| Some(fmt_duration(c.server.http_head_timeout)),
    ),
    HTTP_BODY_TIMEOUT = Setting::new(
        Text("20s"),
        "a request's whole body must arrive within this, from the end of its head; 408 request_timeout after",
        |c| Some(fmt_duration(c.server.http_body_timeout)),
    ),
    HTTP_KEEP_ALIVE = Setting::new(
        Text("5s"),
        "an idle kept-alive connection is closed after this (0 closes every connection after its response)",
        |c| Some(fmt_duration(c.server.http_keep_alive)),
    ),
    HTTP_MAX_CONNECTIONS = Setting::new(
        Text("5000"),
        "open connections per HTTP worker (at least 1); further ones wait in the listen queue until one closes",
        |c| Some(c.server.http_max_connections.to_string()),
    ),
    DATA_DIR = Setting::new(
        Text("./data"),
        "holds the default SQLite file and the generated jwt-secret",
        |c| Some(c.server.data_dir.display().to_string()),
    ),
    DATABASE_URL = Setting::new(
        Computed("DATA_DIR/xclade-auth.sqlite"),
        "postgres://… selects PostgreSQL; anything else is a SQLite path (also sqlite://path)",
        |c| Some(database_url_text(&c.server.database_url)),
    )
    .secrecy(Secrecy::UrlPassword),
    DATABASE_POOL_SIZE = Setting::new(
        Computed("10; 2 × cores for PostgreSQL on this machine"),
        "maximum database connections (at least 1); also how many requests use the database at once",
        |c| Some(c.server.database_pool_size.to_string()),
    ),
    DATABASE_TIMEOUT = Setting::new(
        Text("5s"),
        "how long a request waits for a pooled connection",
        |c| Some(fmt_duration(c.server.database_timeout)),
    ),
    IDENTITY_CACHE_SIZE = Setting::new(
        Text("100000"),
        "identities kept in memory for authenticated requests (about 1.3 KB each); 0 turns the cache off",
        |c| Some(c.server.identity_cache_size.to_string()),
    ),
    IDENTITY_CACHE_TTL = Setting::new(
        Text("60s"),
        "an identity kept longer is read again (changes are forgotten at once; this bounds changes made outside the service)",
        |c| Some(fmt_duration(c.server.identity_cache_ttl)),
    ),
    MIGRATE_ON_START = Setting::new(
        Text("true"),
        "serve and user create apply pending migrations first",
        |c| Some(c.server.migrate_on_start.to_string()),
    ),
    ADMIN_HOST = Setting::new(
        Text("127.0.0.1"),
        "the admin listener's address (/metrics, /health, /ready), independent of HOST",
        |c| c.server.admin_port.map(|_| c.server.admin_host.clone()),
    ),
    ADMIN_PORT = Setting::new(
        Text("9001"),
        "the admin listener's port; 0 picks a free port, off turns the listener off",
        |c| Some(c.server.admin_port.map_or_else(|| "off".to_string(), |p| p.to_string())),
    ),
    METRICS_ON_PUBLIC_PORT = Setting::new(
        Text("false"),
        "true serves /metrics on PORT too, to anyone who reaches it (a warning at start)",
        |c| Some(c.server.metrics_on_public_port.to_string()),
    ),
    SHUTDOWN_TIMEOUT = Setting::new(
        Text("30s"),
        "on SIGTERM or SIGINT, how long requests in flight may take to finish",
        |c| Some(fmt_duration(c.server.shutdown_timeout)),
    ),
}

/// Server and database.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub http_workers: usize,
    /// `HTTP_HEAD_TIMEOUT`: actix's client request timeout (zero: none).
    pub http_head_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT`: the whole body, from the end of the head.
    pub http_body_timeout: Duration,
    /// `HTTP_KEEP_ALIVE`: idle time of a kept-alive connection (zero: no keep-alive).
    pub http_keep_alive: Duration,
    /// `HTTP_MAX_CONNECTIONS`: per worker.
    pub http_max_connections: usize,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub database_pool_size: u32,
    pub database_timeout: Duration,
    pub migrate_on_start: bool,
    /// `IDENTITY_CACHE_SIZE`: 0 turns the identity cache off.
    pub identity_cache_size: usize,
    /// `IDENTITY_CACHE_TTL`.
    pub identity_cache_ttl: Duration,
    /// `ADMIN_HOST`: the admin listener's address, independent of `HOST` (loopback by default).
    pub admin_host: String,
    /// `ADMIN_PORT`: the admin listener (`/metrics`, `/health`, `/ready`); `None` when
    /// `ADMIN_PORT=off`.
    pub admin_port: Option<u16>,
    /// `METRICS_ON_PUBLIC_PORT=true`: `/metrics` is served on `PORT` too (off by default: its
    /// counters would tell a stranger, for one, whether a reset named a registered email).
    pub metrics_on_public_port: bool,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
}

impl ServerConfig {
    pub(super) fn read(env: &Env, cores: usize) -> Result<ServerConfig, ConfigError> {
        let data_dir = PathBuf::from(env.string(&DATA_DIR)?);
        let database_url = match env.get(&DATABASE_URL) {
            Some(url) => DatabaseUrl::parse(&url),
            None => DatabaseUrl::Sqlite(data_dir.join("xclade-auth.sqlite")),
        };
        // PostgreSQL on this machine runs its backends on our cores: more queries at once than
        // 2 per core only queue in the scheduler and stretch the tail (docs/benchmarks.md).
        let default_pool_size = if database_url.is_local_postgres() { 2 * cores as u32 } else { 10 };
        let server = ServerConfig {
            host: env.string(&HOST)?,
            port: env.number(&PORT)?,
            database_pool_size: env.number_or(&DATABASE_POOL_SIZE, default_pool_size)?.max(1),
            database_timeout: env.duration(&DATABASE_TIMEOUT)?,
            migrate_on_start: env.flag(&MIGRATE_ON_START)?,
            identity_cache_size: env.number(&IDENTITY_CACHE_SIZE)?,
            identity_cache_ttl: env.duration(&IDENTITY_CACHE_TTL)?,
            http_workers: env.number_or(&HTTP_WORKERS, cores)?.max(1),
            http_head_timeout: env.duration(&HTTP_HEAD_TIMEOUT)?,
            http_body_timeout: env.duration(&HTTP_BODY_TIMEOUT)?,
            http_keep_alive: env.duration(&HTTP_KEEP_ALIVE)?,
            http_max_connections: env.number::<usize>(&HTTP_MAX_CONNECTIONS)?.max(1),
            admin_host: env.string(&ADMIN_HOST)?,
            admin_port: match env.string(&ADMIN_PORT)? {
                off if off.eq_ignore_ascii_case("off") => None,
                port => Some(
                    port.parse().map_err(|_| ADMIN_PORT.invalid(&format!("{port:?} is not a port number or off")))?,
                ),
            },
            metrics_on_public_port: env.flag(&METRICS_ON_PUBLIC_PORT)?,
            shutdown_timeout: env.duration(&SHUTDOWN_TIMEOUT)?,
            data_dir,
            database_url,
        };
        if server.identity_cache_size > 0 && server.identity_cache_ttl.is_zero() {
            return Err(
                IDENTITY_CACHE_TTL.invalid("must be longer than zero (IDENTITY_CACHE_SIZE=0 turns the cache off)")
            );
        }
        if server.http_body_timeout.is_zero() {
            return Err(HTTP_BODY_TIMEOUT.invalid("must be longer than zero"));
        }
        if server.admin_port.is_some_and(|admin| admin != 0 && admin == server.port && server.admin_host == server.host)
        {
            return Err(ADMIN_PORT
                .invalid("must differ from PORT on the same host (ADMIN_PORT=off turns the admin listener off)"));
        }
        Ok(server)
    }
}

/// `DATABASE_URL` as written (a PostgreSQL URL, or the SQLite file's path), before redaction.
fn database_url_text(url: &DatabaseUrl) -> String {
    match url {
        DatabaseUrl::Postgres(url) => url.clone(),
        DatabaseUrl::Sqlite(path) => path.display().to_string(),
    }
}
