//! Test support shared by the crates' test suites (design §8): a fresh PostgreSQL database per
//! test, skipped with a notice when PostgreSQL is unreachable, unless `XCLADE_REQUIRE` names `pg`.

use std::io::Write;
use std::sync::Once;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;

/// Where the test databases are created from.
pub const PG_URL_VAR: &str = "XCLADE_TEST_PG_URL";
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Whether `XCLADE_REQUIRE` (comma-separated) names `service`, e.g. `pg`.
pub fn required(service: &str) -> bool {
    std::env::var("XCLADE_REQUIRE").is_ok_and(|v| v.split(',').any(|s| s.trim() == service))
}

static SKIP_NOTICE: Once = Once::new();

/// A database `xa_test_<random>` created for one test and dropped with this value.
#[derive(Debug)]
pub struct PgTestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgTestDatabase {
    /// Creates the database; `None` when PostgreSQL is unreachable (after a notice on stderr,
    /// once per test binary). Panics instead when `XCLADE_REQUIRE` names `pg`.
    pub fn create() -> Option<PgTestDatabase> {
        let admin_url = std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_PG_URL.to_string());
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(conn) => conn,
            Err(e) => {
                assert!(!required("pg"), "XCLADE_REQUIRE=pg but PostgreSQL at {PG_URL_VAR} is unreachable: {e}");
                SKIP_NOTICE.call_once(|| {
                    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests.
                    let reason = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
                    let notice = format!(
                        "\n*** PostgreSQL unreachable ({reason}): the PostgreSQL suite was SKIPPED. \
                         Set {PG_URL_VAR}, or XCLADE_REQUIRE=pg to make this a failure. ***\n"
                    );
                    let _ = std::io::stderr().write_all(notice.as_bytes());
                });
                return None;
            }
        };
        let name = format!("xa_test_{}", auth_domain::secret::random_hex(8).ok()?);
        admin.batch_execute(&format!("CREATE DATABASE {name}")).ok()?;
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        Some(PgTestDatabase { url: format!("{base}/{name}"), admin_url, name })
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}
