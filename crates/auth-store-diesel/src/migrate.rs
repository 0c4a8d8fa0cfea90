//! Embedded migrations, one tree per backend with the same names. On PostgreSQL they run under
//! an advisory lock, so instances that start together do not race.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use auth_domain::AuthError;

use crate::connection::DbConnection;
use crate::tx::db_error;
use crate::DieselStore;

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// An arbitrary constant naming the migration lock ("xclade" in ASCII).
const MIGRATION_LOCK: i64 = 0x7863_6c61_6465;

impl DieselStore {
    /// Runs the pending migrations; returns the names of those applied.
    pub fn run_migrations(&self) -> Result<Vec<String>, AuthError> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            DbConnection::Postgresql(c) => {
                c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).map_err(db_error)?;
                let result = c.run_pending_migrations(POSTGRES).map(|v| v.iter().map(ToString::to_string).collect());
                c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).map_err(db_error)?;
                result
            }
            DbConnection::Sqlite(c) => {
                c.run_pending_migrations(SQLITE).map(|v| v.iter().map(ToString::to_string).collect())
            }
        };
        applied.map_err(|e| AuthError::unexpected("running migrations", e))
    }

    /// How many migrations this binary knows that the database has not applied.
    pub fn pending_migrations(&self) -> Result<usize, AuthError> {
        let mut conn = self.conn()?;
        let pending = match &mut *conn {
            DbConnection::Postgresql(c) => c.pending_migrations(POSTGRES).map(|v| v.len()),
            DbConnection::Sqlite(c) => c.pending_migrations(SQLITE).map(|v| v.len()),
        };
        pending.map_err(|e| AuthError::unexpected("reading migrations", e))
    }
}
