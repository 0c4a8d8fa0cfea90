//! What every handler shares: the service and the hashing semaphore.

use std::sync::Arc;

use actix_web::web;
use tokio::sync::Semaphore;

use auth_domain::ports::{AuthStore, Clock};
use auth_domain::service::AuthService;
use auth_domain::AuthError;

use crate::credentials::Presented;
use crate::settings::HttpSettings;
use crate::ApiError;
use auth_domain::service::Authenticated;

/// The service as the HTTP layer holds it: over any store and clock.
pub type AppService = AuthService<Arc<dyn AuthStore>, Arc<dyn Clock>>;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<AppService>,
    pub settings: Arc<HttpSettings>,
    hashing: Arc<Semaphore>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("hash_permits", &self.hashing.available_permits()).finish()
    }
}

impl AppState {
    /// `hash_concurrency`: how many password hashes run at once (the rest queue, asynchronously).
    pub fn new(service: Arc<AppService>, settings: HttpSettings, hash_concurrency: usize) -> AppState {
        AppState { service, settings: Arc::new(settings), hashing: Arc::new(Semaphore::new(hash_concurrency.max(1))) }
    }

    /// Checks the presented credentials (session first, then bearer) on the blocking pool, then
    /// runs `use_case` there with the caller.
    pub async fn as_caller<T, F>(&self, presented: Presented, use_case: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppService, &Authenticated) -> Result<T, AuthError> + Send + 'static,
    {
        self.blocking(move |svc| {
            let caller = svc.authenticate_any(presented.session.as_deref(), presented.bearer.as_deref())?;
            use_case(svc, &caller)
        })
        .await
    }

    /// Runs a use case that touches the database on the blocking pool.
    pub async fn blocking<T, F>(&self, use_case: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppService) -> Result<T, AuthError> + Send + 'static,
    {
        let service = self.service.clone();
        match web::block(move || use_case(&service)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(AuthError::unexpected("blocking task", e).into()),
        }
    }

    /// Runs a use case that hashes: a permit is taken first (waiting without a thread), so no
    /// more than `hash_concurrency` blocking threads hash at once and other requests keep flowing.
    pub async fn hashing<T, F>(&self, use_case: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppService) -> Result<T, AuthError> + Send + 'static,
    {
        let _permit =
            self.hashing.acquire().await.map_err(|e| ApiError::from(AuthError::unexpected("hashing queue", e)))?;
        self.blocking(use_case).await
    }
}
