//! What every handler shares: the service and the hashing semaphore.

use std::sync::Arc;

use actix_web::web;
use tokio::sync::Semaphore;

use auth_domain::ports::{Clock, IdentityStore};
use auth_domain::service::AuthService;
use auth_domain::AuthError;

use crate::ApiError;

/// The service as the HTTP layer holds it: over any store and clock.
pub type AppService = AuthService<Arc<dyn IdentityStore>, Arc<dyn Clock>>;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<AppService>,
    hashing: Arc<Semaphore>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("hash_permits", &self.hashing.available_permits())
            .finish()
    }
}

impl AppState {
    /// `hash_concurrency`: how many password hashes run at once (the rest queue, asynchronously).
    pub fn new(service: Arc<AppService>, hash_concurrency: usize) -> AppState {
        AppState {
            service,
            hashing: Arc::new(Semaphore::new(hash_concurrency.max(1))),
        }
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
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| ApiError::from(AuthError::unexpected("hashing queue", e)))?;
        self.blocking(use_case).await
    }
}
