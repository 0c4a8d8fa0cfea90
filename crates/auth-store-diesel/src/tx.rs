//! Write transactions: `BEGIN IMMEDIATE` on SQLite (writers queue on the lock instead of failing
//! with BUSY half-way), read committed on PostgreSQL with retries of serialization failures.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use auth_domain::AuthError;

use crate::connection::DbConnection;

/// Attempts of a transaction that fails with a serialization failure before it answers 409.
pub(crate) const MAX_TX_ATTEMPTS: u32 = 3;

/// The error of a transaction body: a database error, or a domain decision that rolls back.
#[derive(Debug)]
pub(crate) enum TxError {
    Db(DieselError),
    Domain(AuthError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        TxError::Db(e)
    }
}

impl From<TxError> for AuthError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Db(e) => db_error(e),
            TxError::Domain(e) => e,
        }
    }
}

/// The one mapping of diesel errors to domain errors.
pub(crate) fn db_error(e: DieselError) -> AuthError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            AuthError::Duplicate(format!("unique constraint violated: {}", info.constraint_name().unwrap_or("?")))
        }
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => AuthError::Conflict,
        other => AuthError::database(other),
    }
}

/// Runs `body` in a write transaction, retrying serialization failures up to
/// `MAX_TX_ATTEMPTS` times; one that survives them is `AuthError::Conflict`.
pub(crate) fn write_tx<T>(
    conn: &mut DbConnection,
    mut body: impl FnMut(&mut DbConnection) -> Result<T, TxError>,
) -> Result<T, AuthError> {
    let mut attempt = 1;
    loop {
        match run_once(conn, &mut body) {
            Err(TxError::Db(DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)))
                if attempt < MAX_TX_ATTEMPTS =>
            {
                log::debug!("serialization failure, retrying the transaction (attempt {attempt})");
                attempt += 1;
            }
            other => return other.map_err(AuthError::from),
        }
    }
}

fn run_once<T>(
    conn: &mut DbConnection,
    body: &mut impl FnMut(&mut DbConnection) -> Result<T, TxError>,
) -> Result<T, TxError> {
    match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    let result = body(conn);
    let end = match (&result, &mut *conn) {
        (Ok(_), DbConnection::Sqlite(c)) => AnsiTransactionManager::commit_transaction(c),
        (Ok(_), DbConnection::Postgresql(c)) => AnsiTransactionManager::commit_transaction(c),
        (Err(_), DbConnection::Sqlite(c)) => AnsiTransactionManager::rollback_transaction(c),
        (Err(_), DbConnection::Postgresql(c)) => AnsiTransactionManager::rollback_transaction(c),
    };
    match (result, end) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(TxError::Db(e)),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(rollback)) => {
            log::warn!("rollback failed: {rollback}");
            Err(e)
        }
    }
}
