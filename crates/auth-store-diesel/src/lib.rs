//! The storage adapter: diesel + r2d2 over PostgreSQL (production, several instances) and an
//! embedded SQLite file (the zero-configuration default). Implements the domain's
//! `IdentityStore`, `EventOutbox` and `Housekeeping` ports; migrations are embedded.

mod connection;
mod customer;
mod identity;
mod janitor;
mod migrate;
mod outbox;
mod ratelimit;
mod rows;
mod schema;
mod session;
pub mod testing;
mod tx;

#[cfg(test)]
mod tests;

use std::time::Duration;

use diesel::connection::SimpleConnection;

use auth_domain::AuthError;

use connection::{path_str, Manager};
pub use connection::{DatabaseUrl, DbConnection, DbPool};
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
        Ok(DieselStore { pool, url: url.clone() })
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
