//! The storage adapter: diesel + r2d2 over PostgreSQL (production, several instances) and an
//! embedded SQLite file (the zero-configuration default). Implements the domain's
//! `IdentityStore`, `SessionStore`, `CustomerStore`, `OAuthStore`, `EventOutbox`, `Housekeeping`,
//! `TenantStore`, `KeyStore` (the tenants' signing keys) and `ImportStore` ports, and reads a
//! Medusa database for the import (`medusa`); migrations are embedded. The identities that
//! authenticated requests read can be kept in memory (`cache`), kept current on PostgreSQL by a
//! listener of the database's change notifications (`listen`).

pub mod cache;
mod connection;
mod customer;
mod identity;
mod import;
mod janitor;
mod keys;
mod listen;
pub mod medusa;
mod migrate;
mod oauth;
mod outbox;
mod ratelimit;
mod reset_request;
mod rows;
mod schema;
mod session;
mod tenant;
pub mod testing;
mod tx;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;

use auth_domain::AuthError;

use cache::{IdentityCache, IdentityCacheSettings};
use connection::{path_str, Manager};
pub use connection::{DatabaseUrl, DbConnection, DbPool};
use listen::ListenerTargets;
pub use ratelimit::PgRateLimiter;
use tx::db_error;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: u32,
    /// How long a request waits for a connection before it fails with a database error.
    pub connection_timeout: Duration,
}

/// The store: a pool of connections to one database.
#[derive(Debug, Clone)]
pub struct DieselStore {
    pool: DbPool,
    url: DatabaseUrl,
    /// The identity cache (`with_identity_cache`); `None`: every lookup reads the database.
    identities: Option<Arc<IdentityCache>>,
}

/// Keeps the change listener running (`DieselStore::listen`); dropping it stops it.
#[derive(Debug)]
pub struct ListenerHandle {
    _alive: Arc<()>,
}

impl DieselStore {
    /// Connects once (so the real error is shown when the database is unreachable), prepares a
    /// SQLite file (its folder, WAL mode), and builds the pool.
    pub fn open(url: &DatabaseUrl, settings: &PoolSettings) -> Result<DieselStore, AuthError> {
        if let DatabaseUrl::Sqlite(path) = url {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| AuthError::unexpected(&format!("creating {}", path_str(dir)), e))?;
            }
        }
        if let DatabaseUrl::Postgres(_) = url {
            // Before libpq first uses OpenSSL: initialise it without exit handlers. Otherwise a
            // pool thread still in a TLS handshake when the process exits (a CLI command that
            // finished while the pool replenished) crashes in OpenSSL's freed tables.
            openssl_sys::init();
        }
        let manager = Manager::new(url.clone());
        let mut first = manager.establish().map_err(AuthError::database)?;
        if let DbConnection::Sqlite(c) = &mut first {
            // Once, before the pool: setting WAL on several connections at once races.
            c.batch_execute("PRAGMA journal_mode = WAL;").map_err(db_error)?;
        }
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_size)
            .min_idle(Some(1))
            .connection_timeout(settings.connection_timeout)
            .build_unchecked(manager);
        Ok(DieselStore { pool, url: url.clone(), identities: None })
    }

    /// This store with an identity cache (see `cache`). On SQLite it serves at once; on
    /// PostgreSQL only while `listen` hears the database's changes.
    pub fn with_identity_cache(mut self, settings: IdentityCacheSettings) -> DieselStore {
        self.identities = Some(Arc::new(IdentityCache::new(settings, !self.url.is_postgres())));
        self
    }

    /// The identity cache, if there is one.
    pub fn identity_cache(&self) -> Option<&Arc<IdentityCache>> {
        self.identities.as_ref()
    }

    /// On PostgreSQL, starts the change listener (see `listen`): it keeps the identity cache
    /// current and calls `on_directory` when a tenant or a key changed. `None` on SQLite, where
    /// nothing needs hearing. The listener stops when the handle is dropped.
    pub fn listen(&self, on_directory: Box<dyn Fn() + Send>) -> Result<Option<ListenerHandle>, AuthError> {
        let DatabaseUrl::Postgres(url) = &self.url else { return Ok(None) };
        let alive = Arc::new(());
        let targets = ListenerTargets { identities: self.identities.clone(), on_directory };
        listen::spawn(url.clone(), targets, Arc::downgrade(&alive))
            .map_err(|e| AuthError::unexpected("starting the change listener", e))?;
        Ok(Some(ListenerHandle { _alive: alive }))
    }

    /// Forgets a changed identity from the cache (after the write's commit).
    pub(crate) fn forget_identity(&self, tenant: &str, auth_identity_id: &str) {
        if let Some(cache) = &self.identities {
            cache.forget(tenant, auth_identity_id);
        }
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Whether the database answers within `timeout`: a connection from the pool (opened if
    /// need be) runs `SELECT 1`.
    pub fn ping(&self, timeout: Duration) -> Result<(), AuthError> {
        let mut conn = self.pool.get_timeout(timeout).map_err(AuthError::database)?;
        conn.batch_execute("SELECT 1").map_err(db_error)
    }

    pub(crate) fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, AuthError> {
        self.pool.get().map_err(AuthError::database)
    }
}
