//! One connection type over PostgreSQL and SQLite, and the r2d2 manager that picks the backend
//! from the URL itself (the derived `establish` would try each backend in turn and hide the
//! real error).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

impl fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbConnection::Postgresql(_) => "DbConnection::Postgresql",
            DbConnection::Sqlite(_) => "DbConnection::Sqlite",
        })
    }
}

/// Where the data lives: `postgres://` / `postgresql://` URLs select PostgreSQL; anything else
/// is a SQLite file path, optionally written `sqlite://path`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> DatabaseUrl {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return DatabaseUrl::Postgres(raw.to_string());
        }
        let path = raw.strip_prefix("sqlite://").or_else(|| raw.strip_prefix("sqlite:")).unwrap_or(raw);
        DatabaseUrl::Sqlite(PathBuf::from(path))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseUrl::Postgres(_))
    }
}

/// Prints the URL with any password replaced, so it can be logged.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                match rest.rsplit_once('@') {
                    Some((userinfo, host)) => {
                        let user = userinfo.split(':').next().unwrap_or_default();
                        let masked = if userinfo.contains(':') { ":[redacted]" } else { "" };
                        write!(f, "{scheme}://{user}{masked}@{host}")
                    }
                    None => write!(f, "{scheme}://{rest}"),
                }
            }
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The r2d2 manager: connects to the backend the URL names, and sets SQLite's per-connection
/// pragmas (WAL is set once, before the pool exists).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Manager {
    pub fn new(url: DatabaseUrl) -> Manager {
        Manager { url }
    }

    pub fn establish(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConnection::Postgresql),
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path_str(path))?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    SQLITE_BUSY_TIMEOUT.as_millis()
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

pub(crate) fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.establish().map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

pub type DbPool = r2d2::Pool<Manager>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend_and_print_without_passwords() {
        assert!(DatabaseUrl::parse("postgres://u:p@h/db").is_postgres());
        assert!(DatabaseUrl::parse("postgresql://h/db").is_postgres());
        assert_eq!(DatabaseUrl::parse("sqlite://data/x.sqlite"), DatabaseUrl::Sqlite("data/x.sqlite".into()));
        assert_eq!(DatabaseUrl::parse("./x.sqlite"), DatabaseUrl::Sqlite("./x.sqlite".into()));
        assert_eq!(
            DatabaseUrl::parse("postgres://u:secret@h:5432/db").to_string(),
            "postgres://u:[redacted]@h:5432/db"
        );
        assert_eq!(DatabaseUrl::parse("postgres://u@h/db").to_string(), "postgres://u@h/db");
    }
}
