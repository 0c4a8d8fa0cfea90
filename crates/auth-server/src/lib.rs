//! The Xclade Auth server: configuration, composition of the domain with its adapters, and the
//! background event dispatcher. The binary (`xclade-auth`) is `main.rs`, which runs `cli`.

pub mod cli;
pub mod config;
pub mod dispatcher;
pub mod janitor;
pub mod oauth_http;
pub mod resets;
pub mod secrets;
pub mod sinks;
pub mod tenants;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::Logger;
use actix_web::HttpServer;
use chrono::Duration;

use actix_web::cookie::SameSite;
use auth_domain::delivery::{DispatchSettings, Dispatcher, PassReport};
use auth_domain::password::PasswordHasher;
use auth_domain::ports::{AuthStore, Clock, DirectoryStore, PurgeReport, SystemClock};
use auth_domain::ratelimit::{InMemoryRateLimiter, RateLimiter, Unlimited};
use auth_domain::secret::SecretBox;
use auth_domain::service::{AuthService, AuthSettings};
use auth_domain::tenant::TenantDirectory;
use auth_domain::token::{TokenCodec, TokenSettings};
use auth_domain::AuthError;
use auth_http::metrics::{IdentityCacheFigures, Metrics};
use auth_http::{AppService, AppState, CookieSettings, HttpSettings, Readiness};
use auth_store_diesel::cache::IdentityCacheSettings;
use auth_store_diesel::{DieselStore, ListenerHandle, PoolSettings};

use crate::config::sessions::CookieSameSite;
use crate::config::Config;
use crate::tenants::{CachedDirectory, SettingsReader};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("import: {0}")]
    Import(String),
}

/// The access log format: the path without the query string (which may carry tokens), and the
/// request id of the response.
const ACCESS_LOG: &str = r#"%a "%{method}xi %U" %s %b %Dms request_id=%{x-request-id}o"#;

/// Logging to standard error (`RUST_LOG`, default `info`). A line written while a request is
/// served carries its id (`request_id=...`), on the worker and on the blocking pool alike.
pub fn init_logging() {
    use std::io::Write as _;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let (ts, level, target) = (buf.timestamp(), record.level(), record.target());
            match auth_http::request_id::current() {
                Some(id) => {
                    writeln!(buf, "[{ts} {level:<5} {target}] request_id={} {}", id.as_str(), record.args())
                }
                None => writeln!(buf, "[{ts} {level:<5} {target}] {}", record.args()),
            }
        })
        .init();
}

fn access_log() -> Logger {
    Logger::new(ACCESS_LOG).custom_request_replace("method", |req| req.method().to_string())
}

/// Opens the store and runs the migrations when the configuration asks for it.
pub fn open_store(config: &Config) -> Result<DieselStore, StartError> {
    let settings =
        PoolSettings { max_size: config.server.database_pool_size, connection_timeout: config.server.database_timeout };
    let store = DieselStore::open(&config.server.database_url, &settings)?;
    log::info!("database: {}", config.server.database_url);
    Ok(store)
}

/// Runs the pending migrations and logs what it applied.
pub fn migrate(store: &DieselStore) -> Result<(), StartError> {
    let applied = store.run_migrations()?;
    if applied.is_empty() {
        log::info!("migrations: the database is up to date");
    } else {
        log::info!("migrations applied: {}", applied.join(", "));
    }
    Ok(())
}

/// The service and the dispatcher over one store, composed from the configuration: the JWT
/// secret, the database (migrated unless `MIGRATE_ON_START=false`), tokens, sinks, hashing.
pub struct Composed {
    pub service: Arc<AppService>,
    pub dispatcher: Arc<dispatcher::ServerDispatcher>,
    /// Wakes the dispatcher when the service commits an event.
    pub wake: Arc<dispatcher::Wake>,
    pub store: DieselStore,
    /// Deletes what expired; run by `janitor::spawn`.
    pub janitor: Arc<janitor::ServerJanitor>,
    /// Which tenant a request (or a CLI command) is for: every tenant, cached
    /// (`tenants::CachedDirectory`); `run_until_stopped` keeps it current.
    pub tenants: Arc<CachedDirectory>,
}

impl std::fmt::Debug for Composed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composed").finish_non_exhaustive()
    }
}

pub fn compose(config: &Config) -> Result<Composed, StartError> {
    if config.tokens.bcrypt_cost < 10 {
        log::warn!("BCRYPT_COST={} is below 10: for tests only, never in production", config.tokens.bcrypt_cost);
    }
    if let Some(medusa) = &config.tokens.medusa_jwt_secret {
        // Medusa's development default is `supersecret`: whoever knows the secret can mint
        // tokens that refresh exchanges, for every imported account.
        if medusa.0.len() < 32 {
            log::warn!(
                "MEDUSA_JWT_SECRET is shorter than 32 bytes: anyone who guesses it gets a token for any imported \
                 account on refresh; close the migration window (unset it) as soon as you can"
            );
        }
    }
    let secret = secrets::jwt_secret(config)?;
    let store = open_store(config)?;
    if config.server.migrate_on_start {
        migrate(&store)?;
    } else if store.pending_migrations()? > 0 {
        log::warn!("migrations are pending and MIGRATE_ON_START=false: run `xclade-auth migrate`");
    }
    let store = match config.server.identity_cache_size {
        0 => store,
        capacity => {
            store.with_identity_cache(IdentityCacheSettings { capacity, ttl: config.server.identity_cache_ttl })
        }
    };
    let previous = secrets::previous_secrets(config);
    let tokens = TokenCodec::new(TokenSettings {
        secret: secret.0.clone(),
        previous_secrets: previous.clone(),
        auth_ttl: to_chrono(config.tokens.jwt_expires_in),
        leeway: to_chrono(config.tokens.jwt_leeway),
    });
    let secret_box = SecretBox::new(&secret.0, &previous);
    let reader = SettingsReader::new(config.clone(), sinks::names(config), secret_box.clone());
    let tenants = Arc::new(CachedDirectory::new(
        Arc::new(store.clone()) as Arc<dyn DirectoryStore>,
        reader,
        config.tenants.host_suffix.clone(),
    ));
    match tenants.refresh() {
        Ok(_) => {}
        // Not migrated yet (`MIGRATE_ON_START=false`): no tenant is served, and `/ready` says
        // why, until `xclade-auth migrate` has run and the directory's refresh reads them.
        Err(e) if !config.server.migrate_on_start => log::warn!("tenant directory: cannot read it yet ({e})"),
        Err(e) => return Err(e.into()),
    }
    match &config.tenants.host_suffix {
        Some(suffix) => log::info!("tenants: {{tenant}}{suffix} is the tenant's; other hosts answer 404"),
        None => log::info!("tenants: every request is the tenant `default` (TENANT_HOST_SUFFIX is unset)"),
    }
    let sinks = sinks::from_config(config, tenants.clone())?;
    let settings = AuthSettings {
        reset_ttl: Duration::minutes(15),
        session_ttl: to_chrono(config.sessions.ttl),
        limits: config.limits.buckets.clone(),
    };
    let service = AuthService::new(
        Arc::new(store.clone()) as Arc<dyn AuthStore>,
        Arc::new(SystemClock) as Arc<dyn Clock>,
        PasswordHasher::new(config.tokens.bcrypt_cost)?,
        tokens,
        secret_box.clone(),
        settings,
    );
    let wake = Arc::new(dispatcher::Wake::default());
    let store_handle = store.clone();
    let dispatcher = Arc::new(Dispatcher::new(
        store,
        SystemClock,
        sinks,
        secret_box,
        DispatchSettings {
            retry_initial: to_chrono(config.events.retry_initial),
            retry_max: Duration::minutes(10),
            max_attempts: config.events.max_attempts,
            lease: to_chrono(config.events.lease),
            batch: 100,
        },
    ));
    let limiter: Arc<dyn RateLimiter> = match (config.limits.enabled, store_handle.shared_rate_limiter()) {
        (false, _) => {
            log::warn!("RATE_LIMIT_ENABLED=false: no rate limit or login throttle (tests and benchmarks only)");
            Arc::new(Unlimited)
        }
        (true, Some(shared)) => Arc::new(shared),
        (true, None) => Arc::new(InMemoryRateLimiter::default()),
    };
    let janitor = Arc::new(janitor::from_config(store_handle.clone(), limiter.clone(), config));
    let provider_http = oauth_http::UreqProviderHttp::new(config.oauth.http_timeout)
        .map_err(|e| auth_domain::AuthError::Unexpected(format!("the HTTP client for identity providers: {e}")))?;
    let service =
        service.with_event_waker(wake.clone()).with_rate_limiter(limiter).with_provider_http(Arc::new(provider_http));
    Ok(Composed { service: Arc::new(service), dispatcher, wake, store: store_handle, janitor, tenants })
}

/// The server, bound and ready to run.
pub struct Application {
    port: u16,
    admin_port: Option<u16>,
    server: Server,
    /// The admin listener on `ADMIN_HOST:ADMIN_PORT` (metrics, probes); `None` with `ADMIN_PORT=off`.
    admin: Option<Server>,
    dispatcher: Arc<dispatcher::ServerDispatcher>,
    resets: Arc<resets::ResetWorker>,
    wake: Arc<dispatcher::Wake>,
    janitor: Arc<janitor::ServerJanitor>,
    metrics: Arc<Metrics>,
    /// The change listener (PostgreSQL); it stops when the application is dropped.
    _listener: Option<ListenerHandle>,
    config: Config,
}

/// `/ready`: the database answers, and no migration is pending when the server does not run
/// them itself. A database newer than the binary is ready (rolling upgrades).
struct StoreReadiness {
    store: DieselStore,
    migrate_on_start: bool,
}

impl Readiness for StoreReadiness {
    fn check(&self) -> Result<(), String> {
        let unreachable = |e: AuthError| {
            log::warn!("not ready: {}", auth_http::cause_chain(&e));
            "the database is unreachable".to_string()
        };
        self.store.ping(std::time::Duration::from_secs(1)).map_err(unreachable)?;
        if !self.migrate_on_start {
            match self.store.pending_migrations().map_err(unreachable)? {
                0 => {}
                n => return Err(format!("{n} database migrations are pending (run `xclade-auth migrate`)")),
            }
        }
        Ok(())
    }
}

/// Scrape-time gauges: the pool's connections and the event backlog per sink.
fn store_collector(store: DieselStore, sinks: Vec<String>) -> impl Fn(&Metrics) + Send + Sync {
    move |metrics| {
        let state = store.pool().state();
        let max = i64::from(store.pool().max_size());
        let (total, idle) = (i64::from(state.connections), i64::from(state.idle_connections));
        metrics.set_pool(idle, total - idle, max);
        match store.backlog() {
            Ok(rows) => {
                for sink in &sinks {
                    let waiting = rows.iter().find(|(s, _)| s == sink).map_or(0, |(_, n)| *n);
                    metrics.set_backlog(sink, waiting);
                }
            }
            Err(e) => log::warn!("metrics: reading the event backlog: {}", auth_http::cause_chain(&e)),
        }
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the database (migrating it unless `MIGRATE_ON_START=false`), composes the service
    /// and binds the listeners: the API on `HOST:PORT`, the admin listener on
    /// `ADMIN_HOST:ADMIN_PORT` unless it is off (`0` picks a free port: see `port` and
    /// `admin_port`). Must be called inside an actix system.
    pub fn build(config: Config) -> Result<Application, StartError> {
        let Composed { service, dispatcher, wake, store, janitor, tenants } = compose(&config)?;
        let metrics = Arc::new(Metrics::new());
        metrics.add_collector(store_collector(store.clone(), sinks::names(&config)));
        let gauge = tenants.clone();
        metrics.add_collector(move |metrics: &Metrics| {
            let (active, disabled) = gauge.counts();
            metrics.set_tenants(active as i64, disabled as i64);
        });
        CachedDirectory::spawn_refresh(&tenants, config.tenants.refresh_interval);
        if let Some(cache) = store.identity_cache().cloned() {
            metrics.add_collector(move |metrics: &Metrics| {
                let s = cache.stats();
                metrics.set_identity_cache(IdentityCacheFigures {
                    hits: s.hits,
                    misses: s.misses,
                    invalidations: s.invalidations,
                    flushes: s.flushes,
                    entries: s.entries,
                    serving: s.serving,
                });
            });
        }
        // What another instance or the CLI changes reaches this one when its transaction commits
        // (PostgreSQL's notifications): the identity cache forgets it, and the directory's refresh
        // thread is woken (the listener never waits on the database itself, so a busy pool cannot
        // hold back the identities it has yet to forget).
        let directory = Arc::downgrade(&tenants);
        let change_listener = store.listen(Box::new(move || {
            if let Some(directory) = directory.upgrade() {
                directory.wake();
            }
        }))?;
        let resets = Arc::new(resets::ResetWorker {
            service: service.clone(),
            tenants: tenants.clone() as Arc<dyn TenantDirectory>,
            lease: to_chrono(config.events.lease),
            delay: to_chrono(config.events.reset_request_delay),
        });
        let readiness = StoreReadiness { store: store.clone(), migrate_on_start: config.server.migrate_on_start };
        let state = AppState::new(service, http_settings(&config), config.tokens.hash_concurrency)
            .with_metrics(metrics.clone())
            .with_database_concurrency(config.server.database_pool_size as usize)
            .with_readiness(Arc::new(readiness))
            .with_tenant_directory(tenants as Arc<dyn TenantDirectory>);
        let shutdown_secs = config.server.shutdown_timeout.as_secs();
        // Both listeners are bound before either serves, so a port in use stops the start cleanly.
        let (listener, port) = bind("HOST:PORT", &config.server.host, config.server.port)?;
        let admin_listener = config
            .server
            .admin_port
            .map(|wanted| bind("ADMIN_HOST:ADMIN_PORT", &config.server.admin_host, wanted))
            .transpose()?;
        let api_state = state.clone();
        let server = HttpServer::new(move || auth_http::app(api_state.clone()).wrap(access_log()))
            .workers(config.server.http_workers)
            .shutdown_timeout(shutdown_secs)
            // A client that closes its connection has gone: its request is dropped (a login
            // waiting for a hashing permit never hashes) instead of being served to no one.
            .h1_allow_half_closed(false)
            // Slow clients (docs/operations.md): the head within HTTP_HEAD_TIMEOUT (the body
            // within HTTP_BODY_TIMEOUT is the body extractor's), an idle kept-alive connection
            // closed after HTTP_KEEP_ALIVE, at most HTTP_MAX_CONNECTIONS per worker (more wait
            // in the listen backlog, not in memory).
            .client_request_timeout(config.server.http_head_timeout)
            .keep_alive(config.server.http_keep_alive)
            .max_connections(config.server.http_max_connections)
            .listen(listener)
            .map_err(|e| StartError::Io("listening".into(), e))?
            .run();
        let (admin, admin_port) = match admin_listener {
            None => {
                log::info!("admin listener off (ADMIN_PORT=off)");
                (None, None)
            }
            Some((listener, admin_port)) => {
                let admin = HttpServer::new(move || auth_http::admin_app(state.clone()).wrap(access_log()))
                    .workers(1)
                    .shutdown_timeout(shutdown_secs)
                    // Signals are the API server's: on SIGTERM actix stops the whole system once
                    // a server has stopped, and this idle one would stop at once, dropping the
                    // API's requests in flight. `run_until_stopped` stops it after the API.
                    .disable_signals()
                    .listen(listener)
                    .map_err(|e| StartError::Io("listening on the admin port".into(), e))?
                    .run();
                log::info!("admin (metrics, probes) on http://{}:{admin_port}", config.server.admin_host);
                (Some(admin), Some(admin_port))
            }
        };
        if config.server.metrics_on_public_port {
            log::warn!(
                "METRICS_ON_PUBLIC_PORT=true: /metrics is served on the public port {port} to anyone who reaches \
                 it, and its counters tell, for one, whether a reset-password request named a registered email \
                 (docs/security.md). Keep /metrics from the internet, or scrape the admin listener instead"
            );
        } else if admin.is_none() {
            log::info!("/metrics is not served (ADMIN_PORT=off and METRICS_ON_PUBLIC_PORT=false)");
        }
        // Last: the line that says the service is up (the test harness waits for it).
        log::info!("listening on http://{}:{port}", config.server.host);
        Ok(Application {
            port,
            admin_port,
            server,
            admin,
            dispatcher,
            resets,
            wake,
            janitor,
            metrics,
            _listener: change_listener,
            config,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound port of the admin listener (`ADMIN_PORT=0` picks a free one, on `ADMIN_HOST`);
    /// `None` with `ADMIN_PORT=off`.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, with the event dispatcher running beside the server.
    ///
    /// On SIGTERM or SIGINT (or `handle().stop(true)`): stops accepting, lets the requests in
    /// flight finish (up to `SHUTDOWN_TIMEOUT`), lets the dispatcher finish the delivery it is
    /// making, then returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.clone();
        let on_pass = move |report: &PassReport| {
            for ((sink, outcome), n) in &report.by_sink {
                metrics.delivered(sink, outcome, *n as u64);
            }
        };
        let dispatcher = dispatcher::spawn(
            self.dispatcher,
            self.resets,
            self.wake.clone(),
            self.config.events.poll_interval,
            on_pass,
        );
        let metrics = self.metrics.clone();
        let on_purge = Arc::new(move |report: &PurgeReport| {
            let kinds = [
                ("reset_tokens", report.reset_tokens),
                ("sessions", report.sessions),
                ("events", report.events),
                ("rate_limits", report.rate_limits),
                ("oauth_states", report.oauth_states),
            ];
            for (kind, n) in kinds {
                metrics.janitor_deleted(kind, n as u64);
            }
        });
        let janitor = janitor::spawn(self.janitor, self.config.events.janitor_interval, on_purge);
        let admin = self.admin.map(|server| (server.handle(), actix_web::rt::spawn(server)));
        let result = self.server.await;
        janitor.abort();
        log::info!("the server stopped accepting requests; finishing background work");
        if let Some((handle, task)) = admin {
            handle.stop(true).await;
            let _ = task.await;
        }
        self.wake.stop();
        if tokio::time::timeout(self.config.server.shutdown_timeout, dispatcher).await.is_err() {
            log::warn!("the dispatcher did not finish within SHUTDOWN_TIMEOUT; its claims expire after EVENT_LEASE");
        }
        log::info!("stopped");
        result
    }
}

/// Binds `host:port` (`keys` names the settings, for the error).
fn bind(keys: &str, host: &str, port: u16) -> Result<(TcpListener, u16), StartError> {
    let listener =
        TcpListener::bind((host, port)).map_err(|e| StartError::Io(format!("binding {host}:{port} ({keys})"), e))?;
    let port = listener.local_addr().map_err(|e| StartError::Io("reading the bound address".into(), e))?.port();
    Ok((listener, port))
}

fn http_settings(config: &Config) -> HttpSettings {
    HttpSettings {
        cookie: CookieSettings {
            secure: config.cookie_is_secure(),
            same_site: match config.sessions.cookie_same_site {
                CookieSameSite::Lax => SameSite::Lax,
                CookieSameSite::Strict => SameSite::Strict,
                CookieSameSite::None => SameSite::None,
            },
            ttl: config.sessions.ttl,
        },
        trusted_proxies: config.limits.trusted_proxies.clone(),
        jwks_max_age: config.keys.jwks_max_age,
        introspection_secret: config.keys.introspection_secret.as_ref().map(|s| auth_http::Credential(s.0.clone())),
        public_metrics: config.server.metrics_on_public_port,
        body_timeout: config.server.http_body_timeout,
    }
}

pub(crate) fn to_chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}
