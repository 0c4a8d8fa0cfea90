//! The Xclade Auth server: configuration, composition of the domain with its adapters, and the
//! background event dispatcher. The binary (`xclade-auth`) is `main.rs`.

pub mod config;
pub mod dispatcher;
pub mod secrets;
pub mod sinks;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::Logger;
use actix_web::HttpServer;
use chrono::Duration;

use actix_web::cookie::SameSite;
use auth_domain::delivery::{DispatchSettings, Dispatcher};
use auth_domain::password::{PasswordHasher, PasswordPolicy};
use auth_domain::ports::{AuthStore, Clock, SystemClock};
use auth_domain::ratelimit::{InMemoryRateLimiter, RateLimiter, Unlimited};
use auth_domain::secret::SecretBox;
use auth_domain::service::{AuthService, AuthSettings};
use auth_domain::token::{TokenCodec, TokenSettings};
use auth_domain::{model::DEFAULT_TENANT, AuthError};
use auth_http::{AppService, AppState, CookieSettings, HttpSettings};
use auth_store_diesel::{DieselStore, PoolSettings};

use crate::config::{Config, CookieSameSite};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// The access log format: the path without the query string (which may carry tokens).
const ACCESS_LOG: &str = r#"%a "%{method}xi %U" %s %b %Dms"#;

fn access_log() -> Logger {
    Logger::new(ACCESS_LOG).custom_request_replace("method", |req| req.method().to_string())
}

/// Opens the store and runs the migrations when the configuration asks for it.
pub fn open_store(config: &Config) -> Result<DieselStore, StartError> {
    let settings = PoolSettings { max_size: config.database_pool_size, connection_timeout: config.database_timeout };
    let store = DieselStore::open(&config.database_url, &settings)?;
    log::info!("database: {}", config.database_url);
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
}

impl std::fmt::Debug for Composed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composed").finish_non_exhaustive()
    }
}

pub fn compose(config: &Config) -> Result<Composed, StartError> {
    if config.bcrypt_cost < 10 {
        log::warn!("BCRYPT_COST={} is below 10: for tests only, never in production", config.bcrypt_cost);
    }
    let secret = secrets::jwt_secret(config)?;
    let store = open_store(config)?;
    if config.migrate_on_start {
        migrate(&store)?;
    } else if store.pending_migrations()? > 0 {
        log::warn!("migrations are pending and MIGRATE_ON_START=false: run `xclade-auth migrate`");
    }
    let previous: Vec<Vec<u8>> = config.jwt_secret_previous.iter().map(|s| s.0.clone()).collect();
    let tokens = TokenCodec::new(TokenSettings {
        secret: secret.0.clone(),
        previous_secrets: previous.clone(),
        auth_ttl: to_chrono(config.jwt_expires_in),
        leeway: to_chrono(config.jwt_leeway),
    });
    let secret_box = SecretBox::new(&secret.0, &previous);
    let sinks = sinks::from_config(config)?;
    let settings = AuthSettings {
        tenant: DEFAULT_TENANT.into(),
        actor_types: config.actor_types.clone(),
        password_policy: PasswordPolicy {
            min_length: config.password_min_length,
            min_strength: config.password_min_strength,
        },
        reset_ttl: Duration::minutes(15),
        event_sinks: sinks.iter().map(|s| s.name().to_string()).collect(),
        session_ttl: to_chrono(config.session_ttl),
        limits: config.limits.clone(),
    };
    let service = AuthService::new(
        Arc::new(store.clone()) as Arc<dyn AuthStore>,
        Arc::new(SystemClock) as Arc<dyn Clock>,
        PasswordHasher::new(config.bcrypt_cost)?,
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
            retry_initial: to_chrono(config.event_retry_delay),
            retry_max: Duration::minutes(10),
            max_attempts: config.event_max_attempts,
            lease: to_chrono(config.event_lease),
            batch: 100,
        },
    ));
    let limiter: Arc<dyn RateLimiter> = match (config.rate_limit_enabled, store_handle.shared_rate_limiter()) {
        (false, _) => {
            log::warn!("RATE_LIMIT_ENABLED=false: no rate limit or login throttle (tests and benchmarks only)");
            Arc::new(Unlimited)
        }
        (true, Some(shared)) => Arc::new(shared),
        (true, None) => Arc::new(InMemoryRateLimiter::default()),
    };
    let service = service.with_event_waker(wake.clone()).with_rate_limiter(limiter);
    Ok(Composed { service: Arc::new(service), dispatcher, wake, store: store_handle })
}

/// The server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    dispatcher: Arc<dispatcher::ServerDispatcher>,
    wake: Arc<dispatcher::Wake>,
    poll_interval: std::time::Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the database (migrating it unless `MIGRATE_ON_START=false`), composes the service
    /// and binds the listener (`PORT=0` picks a free port: see `port`). Must be called inside an
    /// actix system.
    pub fn build(config: Config) -> Result<Application, StartError> {
        let Composed { service, dispatcher, wake, .. } = compose(&config)?;
        let state = AppState::new(service, http_settings(&config), config.hash_concurrency);
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .map_err(|e| StartError::Io(format!("binding {}:{}", config.host, config.port), e))?;
        let port = listener.local_addr().map_err(|e| StartError::Io("reading the bound address".into(), e))?.port();
        let server = HttpServer::new(move || auth_http::app(state.clone()).wrap(access_log()))
            .workers(config.http_workers)
            .listen(listener)
            .map_err(|e| StartError::Io("listening".into(), e))?
            .run();
        log::info!("listening on http://{}:{port}", config.host);
        Ok(Application { port, server, dispatcher, wake, poll_interval: config.event_poll_interval })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, with the event dispatcher running beside the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let dispatcher = dispatcher::spawn(self.dispatcher, self.wake, self.poll_interval);
        let result = self.server.await;
        dispatcher.abort();
        result
    }
}

fn http_settings(config: &Config) -> HttpSettings {
    HttpSettings {
        cookie: CookieSettings {
            secure: config.cookie_is_secure(),
            same_site: match config.cookie_same_site {
                CookieSameSite::Lax => SameSite::Lax,
                CookieSameSite::Strict => SameSite::Strict,
                CookieSameSite::None => SameSite::None,
            },
            ttl: config.session_ttl,
        },
        publishable_keys: config.store_publishable_keys.clone(),
        auth_cors: config.auth_cors.clone(),
        store_cors: config.store_cors.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
    }
}

fn to_chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}
