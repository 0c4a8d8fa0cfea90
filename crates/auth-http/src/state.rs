//! What every handler shares: the service, the hashing semaphore, the metrics and the readiness
//! probe.

use std::sync::Arc;

use actix_web::web;
use tokio::sync::Semaphore;

use auth_domain::context::RequestContext;
use auth_domain::ports::{AuthStore, Clock};
use auth_domain::service::{AuthService, Authenticated};
use auth_domain::tenant::{SingleTenant, TenantDirectory};
use auth_domain::AuthError;

use crate::credentials::Presented;
use crate::metrics::Metrics;
use crate::request_id;
use crate::settings::HttpSettings;
use crate::ApiError;

mod hashing;

/// The service as the HTTP layer holds it: over any store and clock.
pub type AppService = AuthService<Arc<dyn AuthStore>, Arc<dyn Clock>>;

/// Whether the instance can serve: its database answers and its schema is migrated.
pub trait Readiness: Send + Sync {
    /// `Err(reason)` while not ready (the reason is logged, never sent to the client).
    fn check(&self) -> Result<(), String>;
}

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<AppService>,
    pub settings: Arc<HttpSettings>,
    pub metrics: Arc<Metrics>,
    pub readiness: Option<Arc<dyn Readiness>>,
    /// Which tenant a request is for (`context.rs`).
    pub tenants: Arc<dyn TenantDirectory>,
    hashing: Arc<Semaphore>,
    /// The threads that hash (as many as permits), apart from the blocking pool.
    hash_pool: Arc<hashing::HashPool>,
    database: Option<Arc<Semaphore>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("hash_permits", &self.hashing.available_permits()).finish()
    }
}

impl AppState {
    /// `hash_concurrency`: how many password hashes run at once (the rest queue, asynchronously).
    pub fn new(service: Arc<AppService>, settings: HttpSettings, hash_concurrency: usize) -> AppState {
        AppState {
            service,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::new()),
            readiness: None,
            tenants: Arc::new(SingleTenant::default()),
            hashing: Arc::new(Semaphore::new(hash_concurrency.max(1))),
            hash_pool: Arc::new(hashing::HashPool::new(hash_concurrency.max(1))),
            database: None,
        }
    }

    /// At most `connections` use cases on the blocking pool at once (the database pool's size):
    /// the others wait here, asynchronously and first come first served, instead of on blocking
    /// threads that race for the pool's connections.
    pub fn with_database_concurrency(mut self, connections: usize) -> AppState {
        self.database = Some(Arc::new(Semaphore::new(connections.max(1))));
        self
    }

    /// Records into `metrics` (shared with the server's own collectors).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> AppState {
        self.metrics = metrics;
        self
    }

    /// `/ready` asks `probe` (without one, ready when the process answers).
    pub fn with_readiness(mut self, probe: Arc<dyn Readiness>) -> AppState {
        self.readiness = Some(probe);
        self
    }

    /// Tells the tenant of each request with `directory` (without one, every request is for the
    /// one tenant, `default`).
    pub fn with_tenant_directory(mut self, directory: Arc<dyn TenantDirectory>) -> AppState {
        self.tenants = directory;
        self
    }

    /// Checks the presented credentials (session first, then bearer) for the request's context on
    /// the blocking pool, then runs `use_case` there with the context and the caller.
    pub async fn as_caller<T, F>(&self, ctx: RequestContext, presented: Presented, use_case: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppService, &RequestContext, &Authenticated) -> Result<T, AuthError> + Send + 'static,
    {
        self.blocking(move |svc| {
            let caller = svc.authenticate_any(&ctx, presented.session.as_ref(), presented.bearer.as_deref())?;
            use_case(svc, &ctx, &caller)
        })
        .await
    }

    /// Runs a use case that touches the database on the blocking pool.
    pub async fn blocking<T, F>(&self, use_case: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppService) -> Result<T, AuthError> + Send + 'static,
    {
        let _turn = match &self.database {
            Some(turns) => Some(turns.acquire().await.map_err(|e| AuthError::unexpected("database queue", e))?),
            None => None,
        };
        self.outbound(use_case).await
    }

    /// Runs a use case that calls an identity provider (and not the database) on the blocking
    /// pool, without taking a database turn: a slow provider never holds back database work.
    pub async fn outbound<T, F>(&self, use_case: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppService) -> Result<T, AuthError> + Send + 'static,
    {
        let service = self.service.clone();
        let id = request_id::current();
        match web::block(move || request_id::on_this_thread(id, || use_case(&service))).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(AuthError::unexpected("blocking task", e).into()),
        }
    }

    /// Runs a use case that hashes: a permit is taken first (waiting without a thread), then the
    /// use case runs on a hashing thread (`hashing::HashPool`, lower priority), not on the
    /// blocking pool, so refreshes and other database work keep flowing. The permit goes with the
    /// work and is released when the hash ends, even if the client has gone meanwhile, so no more
    /// than `hash_concurrency` hashes ever run; a request dropped while it waits for a permit
    /// (its client disconnected) never hashes.
    pub async fn hashing<T, F>(&self, use_case: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppService) -> Result<T, AuthError> + Send + 'static,
    {
        let waiting = self.metrics.hash_wait();
        let permit = self
            .hashing
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::from(AuthError::unexpected("hashing queue", e)))?;
        drop(waiting);
        let started = std::time::Instant::now();
        let service = self.service.clone();
        let id = request_id::current();
        let work = self.hash_pool.run(move || {
            let result = request_id::on_this_thread(id, || use_case(&service));
            drop(permit);
            result
        });
        let result = match work.await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(AuthError::Unexpected(format!("hashing task: {e}")).into()),
        };
        self.metrics.observe_hash(started.elapsed().as_secs_f64());
        result
    }
}
