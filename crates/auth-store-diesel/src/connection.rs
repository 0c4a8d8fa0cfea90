//! One connection type over PostgreSQL and SQLite, and the r2d2 manager that picks the backend
//! from the URL itself (the derived `establish` would try each backend in turn and hide the
//! real error).

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

/// Runs `$body` with `$c` bound to the backend's own connection, for the statements diesel
/// cannot express over the multi-backend connection (upserts, multi-row inserts).
macro_rules! per_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::connection::DbConnection::Postgresql($c) => $body,
            $crate::connection::DbConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use per_backend;

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

    /// PostgreSQL on this machine (every host a loopback address or a Unix socket): its backends
    /// share the cores with the service.
    pub fn is_local_postgres(&self) -> bool {
        match self {
            DatabaseUrl::Postgres(url) => PgUrl::of(url).only_loopback_hosts(&|k: &str| std::env::var(k).ok()),
            DatabaseUrl::Sqlite(_) => false,
        }
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
            DatabaseUrl::Postgres(url) => {
                PgConnection::establish(&without_tls_on_loopback(url, |k| std::env::var(k).ok()))
                    .map(DbConnection::Postgresql)
            }
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

/// The PostgreSQL URL libpq connects with: `url`, plus `sslmode=disable` when every host it
/// names is a loopback address (`127.0.0.0/8`, `::1`, `localhost`) or a Unix socket and no
/// `sslmode` is set (in the URL or as `PGSSLMODE`). libpq's default, `prefer`, negotiates TLS
/// whenever the server offers it; over loopback that protects nothing and costs CPU on every
/// query. `env` reads libpq's environment variables (`PGSSLMODE`, `PGHOST`, `PGHOSTADDR`).
pub(crate) fn without_tls_on_loopback<'u>(url: &'u str, env: impl Fn(&str) -> Option<String>) -> Cow<'u, str> {
    let params = PgUrl::of(url);
    if params.param("sslmode").is_some() || params.param("requiressl").is_some() || env("PGSSLMODE").is_some() {
        return Cow::Borrowed(url);
    }
    if !params.only_loopback_hosts(&env) {
        return Cow::Borrowed(url);
    }
    let separator = match url.find('?') {
        None => "?",
        Some(_) if url.ends_with('?') || url.ends_with('&') => "",
        Some(_) => "&",
    };
    Cow::Owned(format!("{url}{separator}sslmode=disable"))
}

/// A PostgreSQL URL's authority and query parameters, as libpq reads them.
struct PgUrl<'u> {
    before_query: &'u str,
    params: Vec<(&'u str, String)>,
}

impl<'u> PgUrl<'u> {
    fn of(url: &'u str) -> PgUrl<'u> {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned()))
            .collect();
        PgUrl { before_query, params }
    }

    fn param(&self, name: &str) -> Option<String> {
        self.params.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }

    /// Whether every host libpq would connect to is on this machine.
    fn only_loopback_hosts(&self, env: &impl Fn(&str) -> Option<String>) -> bool {
        let (before_query, param) = (self.before_query, |name: &str| self.param(name));
        // Where libpq connects: `hostaddr` wins over `host`, a parameter over the URL's authority,
        // and the environment fills what the URL leaves out.
        let authority = before_query.split('/').next().unwrap_or_default();
        let authority_hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
        let hosts: String = match (param("hostaddr"), param("host")) {
            (Some(addr), _) => addr,
            (None, Some(host)) => host,
            (None, None) if !authority_hosts.is_empty() => {
                percent_encoding::percent_decode_str(authority_hosts).decode_utf8_lossy().into_owned()
            }
            (None, None) => env("PGHOSTADDR").or_else(|| env("PGHOST")).unwrap_or_default(),
        };
        hosts.split(',').all(|h| is_loopback_host(strip_port(h)))
    }
}

/// `host:port`, `[v6]:port`, `[v6]` or `host` without the port and brackets.
fn strip_port(host: &str) -> &str {
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    if host.matches(':').count() > 1 {
        return host; // a bare IPv6 address (a `hostaddr` value)
    }
    host.split(':').next().unwrap_or_default()
}

/// A loopback address, `localhost`, a Unix socket directory (`/…`, `@…` for Linux's abstract
/// namespace) or nothing (libpq's default: the Unix socket).
fn is_loopback_host(host: &str) -> bool {
    host.is_empty()
        || host.starts_with('/')
        || host.starts_with('@')
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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

    #[test]
    fn loopback_and_socket_urls_connect_without_tls_unless_sslmode_is_set() {
        let none = |_: &str| None;
        let plain = |url: &str| without_tls_on_loopback(url, none).into_owned();
        for (url, expected) in [
            ("postgres://postgres@127.0.0.1:5432/db", "postgres://postgres@127.0.0.1:5432/db?sslmode=disable"),
            (
                "postgresql://u:p@localhost/db?application_name=x",
                "postgresql://u:p@localhost/db?application_name=x&sslmode=disable",
            ),
            ("postgres://[::1]:5432/db", "postgres://[::1]:5432/db?sslmode=disable"),
            ("postgres://127.0.0.2,localhost:5433/db", "postgres://127.0.0.2,localhost:5433/db?sslmode=disable"),
            ("postgres://%2Fvar%2Frun%2Fpostgresql/db", "postgres://%2Fvar%2Frun%2Fpostgresql/db?sslmode=disable"),
            ("postgres:///db?host=/var/run/postgresql", "postgres:///db?host=/var/run/postgresql&sslmode=disable"),
            ("postgres:///db", "postgres:///db?sslmode=disable"),
            (
                "postgres://db.internal/db?hostaddr=127.0.0.1",
                "postgres://db.internal/db?hostaddr=127.0.0.1&sslmode=disable",
            ),
            ("postgres://127.0.0.1/db?", "postgres://127.0.0.1/db?sslmode=disable"),
        ] {
            assert_eq!(plain(url), expected, "{url}");
        }
        for unchanged in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?sslmode=prefer",
            "postgres://u@db.internal/db",
            "postgres://u@10.0.0.5:5432/db",
            "postgres://127.0.0.1,db.internal/db",
            "postgres://localhost/db?host=db.internal",
            "postgres://localhost/db?hostaddr=10.0.0.5",
            "postgres://[2001:db8::1]/db",
        ] {
            assert_eq!(plain(unchanged), unchanged);
        }
        // libpq's environment: PGSSLMODE is the user's choice; PGHOST fills an empty host.
        let sslmode = |k: &str| (k == "PGSSLMODE").then(|| "verify-full".to_string());
        assert_eq!(without_tls_on_loopback("postgres://127.0.0.1/db", sslmode), "postgres://127.0.0.1/db");
        let remote = |k: &str| (k == "PGHOST").then(|| "db.internal".to_string());
        assert_eq!(without_tls_on_loopback("postgres:///db", remote), "postgres:///db");
        let local = |k: &str| (k == "PGHOST").then(|| "localhost".to_string());
        assert_eq!(without_tls_on_loopback("postgres:///db", local), "postgres:///db?sslmode=disable");
    }

    #[test]
    fn the_pool_connects_to_a_loopback_postgresql_without_tls() {
        let Some(db) = crate::testing::PgTestDatabase::create() else { return };
        if without_tls_on_loopback(&db.url, |k| std::env::var(k).ok()) == db.url.as_str() {
            return; // not a loopback server, or an sslmode chosen in the environment
        }
        #[derive(diesel::QueryableByName)]
        struct Ssl {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            ssl: bool,
        }
        let Ok(DbConnection::Postgresql(mut conn)) = Manager::new(DatabaseUrl::parse(&db.url)).establish() else {
            panic!("no connection to {}", db.url)
        };
        let row: Ssl = diesel::RunQueryDsl::get_result(
            diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"),
            &mut conn,
        )
        .unwrap();
        assert!(!row.ssl, "the loopback connection negotiated TLS");
    }
}
