//! The test harness: a real server (the same `Application` the binary runs) on a free port, over
//! real HTTP, on a fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! Tenant mode (`XCLADE_TEST_TENANTS=1`, `just test-tenants`): the same suite with tenancy on.
//! Every server runs with `TENANT_HOST_SUFFIX=.api.test`, the harness creates the tenants `alpha`
//! and `beta` before the first server starts over a database, every request of a `Client` of
//! the API says `Host: alpha.api.test` (unless the test gives its own `host`), and when a test's
//! server stops, every row of the tenant-scoped tables must be `alpha`'s: a write that lands in
//! another tenant fails the test. `beta` stays empty: it is there so that a wrong tenant exists.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{mpsc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::Value;

use auth_server::config::Config;
use auth_server::Application;
use auth_store_diesel::testing::PgTestDatabase;

pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery";
/// How soon a revocation made on one instance (or in the database by hand) is honoured by the
/// others on PostgreSQL: docs/architecture.md, "The identity cache". Typically a few
/// milliseconds; the bound leaves room for a loaded machine.
pub const REVOCATION_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

/// The tenant of every request in tenant mode.
pub const TENANT: &str = "alpha";
/// A second tenant in tenant mode, that no request is for: it stays empty.
pub const OTHER_TENANT: &str = "beta";
/// `TENANT_HOST_SUFFIX` in tenant mode.
pub const TENANT_HOST_SUFFIX: &str = ".api.test";

/// Whether the suite runs in tenant mode (`XCLADE_TEST_TENANTS=1`; unset, empty or `0`: off).
pub fn tenant_mode() -> bool {
    static MODE: OnceLock<bool> = OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("XCLADE_TEST_TENANTS").as_deref().map(str::trim) {
        Err(_) | Ok("" | "0") => false,
        Ok("1") => true,
        Ok(other) => panic!("XCLADE_TEST_TENANTS={other:?}: 1 runs the suite in tenant mode, 0 or unset does not"),
    })
}

/// The tenant the suite's rows and tokens belong to: `alpha` in tenant mode, else `default`.
pub fn tenant() -> &'static str {
    if tenant_mode() {
        TENANT
    } else {
        "default"
    }
}

/// The `Host` the suite's requests say in tenant mode (`alpha.api.test`); `None` otherwise.
pub fn tenant_host() -> Option<String> {
    tenant_mode().then(|| format!("{TENANT}{TENANT_HOST_SUFFIX}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each listed test function (taking a `Backend`) once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite)
                }
                #[test]
                fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres)
                }
            }
        )*
    };
}

/// Where a test's data lives; outlives server restarts.
pub struct TestEnv {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub events_file: PathBuf,
    /// Set once the tenants of tenant mode exist in the database.
    tenants: OnceLock<()>,
    /// The test writes in tenants of its own on purpose (`tenants.rs`): no row check.
    own_tenants: std::sync::atomic::AtomicBool,
    _pg: Option<PgTestDatabase>,
}

impl TestEnv {
    /// `None` when the backend is PostgreSQL and it is unreachable (the skip is announced once).
    pub fn new(backend: Backend) -> Option<TestEnv> {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg) = match backend {
            Backend::Sqlite => (dir.path().join("auth.sqlite").to_string_lossy().into_owned(), None),
            Backend::Postgres => {
                let pg = PgTestDatabase::create()?;
                (pg.url.clone(), Some(pg))
            }
        };
        let events_file = dir.path().join("events.jsonl");
        Some(TestEnv {
            backend,
            dir,
            database_url,
            events_file,
            tenants: OnceLock::new(),
            own_tenants: Default::default(),
            _pg: pg,
        })
    }

    /// The configuration of a test server; `overrides` win.
    pub fn config(&self, overrides: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = [
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            // The admin listener (/metrics) is on by default on port 9001: a free port instead,
            // so that tests in parallel do not collide. `TestApp::admin` reaches it.
            ("ADMIN_PORT", "0"),
            ("JWT_SECRET", JWT_SECRET),
            ("JWT_LEEWAY", "0"),
            ("BCRYPT_COST", "4"),
            ("HTTP_WORKERS", "2"),
            ("HASH_CONCURRENCY", "2"),
            ("DATABASE_POOL_SIZE", "8"),
            ("EVENT_POLL_INTERVAL", "50ms"),
            ("EVENT_RETRY_INITIAL", "100ms"),
            ("LOG_SINK", "false"),
            // Functional tests turn the limits and the strength estimator off; their own tests
            // set them explicitly.
            ("RATE_LIMIT_ENABLED", "false"),
            ("PASSWORD_MIN_STRENGTH", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.insert("DATA_DIR".into(), self.dir.path().to_string_lossy().into_owned());
        vars.insert("DATABASE_URL".into(), self.database_url.clone());
        vars.insert("EVENTS_FILE".into(), self.events_file.to_string_lossy().into_owned());
        if tenant_mode() {
            // `alpha.api.test` is the tenant `alpha` (created by `create_tenants`).
            vars.insert("TENANT_HOST_SUFFIX".into(), TENANT_HOST_SUFFIX.into());
        }
        for (k, v) in overrides {
            vars.insert(k.to_string(), v.to_string());
        }
        vars
    }

    /// In tenant mode, migrates the database and creates the tenants `alpha` and `beta` unless they
    /// exist (once per environment; a server started over it finds them). A no-op otherwise.
    /// Servers started by the harness get this; a test that runs a command needing the tenants
    /// before any server (`xclade-auth user create --tenant alpha`) calls it first.
    pub fn create_tenants(&self) {
        self.create_tenants_at(&self.database_url);
    }

    fn create_tenants_at(&self, database_url: &str) {
        use auth_domain::ports::TenantStore as _;
        if !tenant_mode() {
            return;
        }
        self.tenants.get_or_init(|| {
            let url = auth_store_diesel::DatabaseUrl::parse(database_url);
            let settings = auth_store_diesel::PoolSettings { max_size: 1, connection_timeout: Duration::from_secs(10) };
            let store = auth_store_diesel::DieselStore::open(&url, &settings)
                .unwrap_or_else(|e| panic!("tenant mode: opening {database_url}: {e}"));
            store.run_migrations().unwrap_or_else(|e| panic!("tenant mode: migrating {database_url}: {e}"));
            for name in [TENANT, OTHER_TENANT] {
                let id = auth_domain::newtypes::TenantId::new(name);
                match store.create_tenant(&id, &Default::default(), chrono::Utc::now()) {
                    // Created before (another server over this database, a restart).
                    Ok(_) | Err(auth_domain::AuthError::Conflict) => {}
                    Err(e) => panic!("tenant mode: creating the tenant {name}: {e}"),
                }
            }
        });
    }

    /// Before a server starts over this environment with `vars`: the tenants of tenant mode.
    /// Not with `MIGRATE_ON_START=false`, whose tests start on a database that is not migrated
    /// (no request of theirs is for a tenant).
    fn before_start(&self, vars: &HashMap<String, String>) {
        if vars.get("MIGRATE_ON_START").is_some_and(|v| v.trim() == "false") {
            return;
        }
        self.create_tenants_at(vars.get("DATABASE_URL").unwrap_or(&self.database_url));
    }

    /// In tenant mode, once the tenants exist: asserts that every row of every table with a
    /// `tenant_id` column is `alpha`'s. Not while the test is panicking already.
    pub fn assert_rows_in_tenant(&self) {
        if self.tenants.get().is_some() && !self.own_tenants.load(std::sync::atomic::Ordering::SeqCst) {
            assert_rows_in_tenant(self.backend, &self.database_url);
        }
    }

    /// The test serves tenants of its own (its own `TENANT_HOST_SUFFIX`), whose rows are not
    /// `alpha`'s: the row check of tenant mode is off for it.
    pub fn with_own_tenants(&self) {
        self.own_tenants.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs `xclade-auth ARGS` over this environment with `overrides`, as an operator would.
    pub fn cli(&self, overrides: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_xclade-auth"))
            .env_clear()
            .envs(self.config(overrides))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// `cli`, which must succeed: its standard output.
    #[track_caller]
    pub fn cli_ok(&self, overrides: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.cli(overrides, args);
        assert!(out.status.success(), "xclade-auth {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A direct connection to the test database, to look at rows.
    pub fn db(&self) -> Db {
        Db::open(self.backend, &self.database_url)
    }
}

/// Asserts that every row of every table with a `tenant_id` column of the database at `url` is
/// `alpha`'s, in tenant mode and unless the test is panicking already.
fn assert_rows_in_tenant(backend: Backend, url: &str) {
    if !tenant_mode() || std::thread::panicking() {
        return;
    }
    let mut db = Db::open(backend, url);
    let tables = db.texts(match backend {
        Backend::Sqlite => {
            "SELECT m.name AS v FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = 'tenant_id' ORDER BY 1"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS v FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name = 'tenant_id' ORDER BY 1"
        }
    });
    assert!(tables.iter().any(|t| t == "auth_identity"), "tenant mode: the tenant-scoped tables are {tables:?}");
    let outside: Vec<String> = tables
        .iter()
        .flat_map(|table| {
            db.texts(&format!(
                "SELECT '{table}: ' || CAST(COUNT(*) AS TEXT) || ' row(s) of the tenant ' || tenant_id AS v \
                 FROM {table} WHERE tenant_id <> '{TENANT}' GROUP BY tenant_id"
            ))
        })
        .collect();
    assert!(outside.is_empty(), "tenant mode: rows outside the tenant {TENANT}: {}", outside.join("; "));
}

pub enum Db {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

impl Db {
    /// Connects to the test database. On SQLite, with a busy timeout: a server (running, or just
    /// stopped and checkpointing its write-ahead log as its last connection closes) may hold the
    /// file for a moment, and a test's look at rows waits for it rather than fail on "database is
    /// locked".
    pub fn open(backend: Backend, url: &str) -> Db {
        match backend {
            Backend::Sqlite => {
                let mut db = Db::Sqlite(SqliteConnection::establish(url).unwrap());
                db.execute("PRAGMA busy_timeout = 10000");
                db
            }
            Backend::Postgres => Db::Pg(PgConnection::establish(url).unwrap()),
        }
    }

    /// One text value from `sql` (a query returning a column `v`).
    pub fn text(&mut self, sql: &str) -> String {
        let rows: Vec<TextRow> = match self {
            Db::Sqlite(c) => diesel::sql_query(sql).load(c).unwrap(),
            Db::Pg(c) => diesel::sql_query(sql).load(c).unwrap(),
        };
        rows.into_iter().next().map(|r| r.v).unwrap_or_default()
    }

    /// Every text value from `sql` (a query returning a column `v`).
    pub fn texts(&mut self, sql: &str) -> Vec<String> {
        let rows: Vec<TextRow> = match self {
            Db::Sqlite(c) => diesel::sql_query(sql).load(c).unwrap(),
            Db::Pg(c) => diesel::sql_query(sql).load(c).unwrap(),
        };
        rows.into_iter().map(|r| r.v).collect()
    }

    pub fn count(&mut self, table: &str) -> usize {
        self.text(&format!("SELECT CAST(COUNT(*) AS TEXT) AS v FROM {table}")).parse().unwrap()
    }

    pub fn execute(&mut self, sql: &str) {
        match self {
            Db::Sqlite(c) => c.batch_execute(sql).unwrap(),
            Db::Pg(c) => c.batch_execute(sql).unwrap(),
        }
    }

    /// Every row that matters, as text: equal fingerprints mean nothing changed.
    pub fn fingerprint(&mut self) -> String {
        let agg = match self {
            Db::Sqlite(_) => "group_concat(x, ',')",
            Db::Pg(_) => "string_agg(x, ',')",
        };
        [
            ("auth_identity", "id || security_stamp || app_metadata"),
            ("provider_identity", "id || entity_key || provider_metadata"),
            ("password_reset_token", "id || token_hash"),
            ("event", "id || name"),
            ("event_delivery", "event_id || sink"),
            ("reset_request", "id"),
        ]
        .iter()
        .map(|(table, expr)| {
            self.text(&format!("SELECT COALESCE({agg}, '') AS v FROM (SELECT {expr} AS x FROM {table} ORDER BY 1) s"))
        })
        .collect::<Vec<_>>()
        .join("\n")
    }
}

/// An HTTP client of one server.
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
    /// The `Host` of every request that does not give its own: the tenant's in tenant mode (a
    /// client of the API); `None`, the address of `base`.
    host: Option<String>,
}

impl Client {
    /// A client of the API on `127.0.0.1:port`.
    pub fn new(port: u16) -> Client {
        Client::at("127.0.0.1", port)
    }

    /// A client of the API on `host:port` (an IPv4 address or a name); in tenant mode its
    /// requests say `Host: alpha.api.test`.
    pub fn at(host: &str, port: u16) -> Client {
        Client { host: tenant_host(), ..Client::admin_at(host, port) }
    }

    /// A client of the admin listener on `host:port`: its requests say the address they go to,
    /// in tenant mode too (the operations routes answer on any host).
    pub fn admin_at(host: &str, port: u16) -> Client {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
        Client { base: format!("http://{host}:{port}"), agent, host: None }
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(host) = &self.host {
            // ureq sends this one instead of its own (`unit.rs`: "host header if not set by user").
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                req = req.set("host", host);
            }
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        Resp::from(response)
    }

    /// POST with a JSON body, as the JS SDK sends it.
    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
        let mut all = vec![("content-type", "application/json"), ("accept", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, Some(body), &all)
    }

    pub fn register(&self, email: &str, password: &str) -> Resp {
        self.post("/auth/customer/emailpass/register", &credentials(email, password))
    }

    pub fn login(&self, email: &str, password: &str) -> Resp {
        self.post("/auth/customer/emailpass", &credentials(email, password))
    }

    pub fn request_reset(&self, identifier: &str) -> Resp {
        self.post_with(
            "/auth/customer/emailpass/reset-password",
            &serde_json::json!({ "identifier": identifier }).to_string(),
            &[("accept", "text/plain")],
        )
    }

    pub fn update(&self, token: &str, body: &str) -> Resp {
        self.post_with("/auth/customer/emailpass/update", body, &[("authorization", &format!("Bearer {token}"))])
    }

    /// A request carrying the session cookie.
    pub fn with_session(&self, method: &str, path: &str, session: &str, body: Option<&str>) -> Resp {
        let cookie = format!("connect.sid={session}");
        let headers =
            [("cookie", cookie.as_str()), ("content-type", "application/json"), ("accept", "application/json")];
        self.request(method, path, body, &headers)
    }

    /// Opens a session with `token`; returns the session id of the cookie.
    pub fn open_session(&self, token: &str) -> String {
        let r = self.post_with("/auth/session", "", &[("authorization", &format!("Bearer {token}"))]);
        assert_eq!(r.status, 200, "{}", r.text);
        r.cookie("connect.sid").unwrap()
    }

    pub fn refresh(&self, token: &str) -> Resp {
        self.post_with("/auth/token/refresh", "", &[("authorization", &format!("Bearer {token}"))])
    }

    /// Registers and returns the registration token.
    pub fn registered(&self, email: &str) -> String {
        let r = self.register(email, PASSWORD);
        assert_eq!(r.status, 200, "{}", r.text);
        r.token()
    }
}

impl std::ops::Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A running server.
pub struct TestApp {
    env: Option<TestEnv>,
    client: Client,
    /// The admin listener (`/metrics`, `/health`, `/ready`); `None` with `ADMIN_PORT=off`.
    admin: Option<Client>,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
}

impl TestApp {
    pub fn spawn(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, &[])
    }

    pub fn spawn_with(backend: Backend, overrides: &[(&str, &str)]) -> Option<TestApp> {
        let env = TestEnv::new(backend)?;
        Some(TestApp::start(env, overrides))
    }

    /// Starts a server over an existing environment (its database and files).
    pub fn start(env: TestEnv, overrides: &[(&str, &str)]) -> TestApp {
        let vars = env.config(overrides);
        env.before_start(&vars);
        let mut app = TestApp::launch(&vars);
        app.env = Some(env);
        app
    }

    /// Another instance over the same database and files (several instances behind a load
    /// balancer). It does not own the environment.
    pub fn sibling(&self, overrides: &[(&str, &str)]) -> TestApp {
        let vars = self.env().config(overrides);
        self.env().before_start(&vars);
        TestApp::launch(&vars)
    }

    fn launch(vars: &HashMap<String, String>) -> TestApp {
        let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let admin_host = config.server.admin_host.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match Application::build(config) {
                    Ok(app) => {
                        let _ = tx.send(Ok((app.port(), app.admin_port(), app.handle())));
                        let _ = app.run_until_stopped().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
        });
        let (port, admin_port, handle) = rx.recv().unwrap().unwrap();
        TestApp {
            env: None,
            client: Client::new(port),
            admin: admin_port.map(|port| Client::admin_at(&admin_host, port)),
            handle: Some(handle),
            thread: Some(thread),
        }
    }

    /// A client of the admin listener, where `/metrics` is served.
    #[track_caller]
    pub fn admin(&self) -> &Client {
        self.admin.as_ref().expect("the admin listener is on (ADMIN_PORT is not off)")
    }

    /// Whether the admin listener runs.
    pub fn has_admin(&self) -> bool {
        self.admin.is_some()
    }

    /// Stops the server, keeping the environment (in tenant mode, checks its rows first).
    pub fn stop(mut self) -> TestEnv {
        self.shutdown();
        let env = self.env.take().expect("the environment of a running app");
        env.assert_rows_in_tenant();
        env
    }

    pub fn env(&self) -> &TestEnv {
        self.env.as_ref().expect("the environment of a running app")
    }

    /// Stops the server and starts another over the same data, with other settings.
    pub fn restart(self, overrides: &[(&str, &str)]) -> TestApp {
        TestApp::start(self.stop(), overrides)
    }

    fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn db(&self) -> Db {
        self.env().db()
    }

    /// The events the file sink wrote so far.
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.env().events_file)
    }

    /// Waits until the file sink holds `n` events named `name`, and returns them.
    pub fn wait_for_events(&self, name: &str, n: usize) -> Vec<Value> {
        wait_for_events(&self.env().events_file, name, n)
    }

    /// Requests a reset for `email` and returns the token the event carries.
    pub fn reset_token(&self, email: &str) -> String {
        let before = self.events().iter().filter(|e| e["name"] == "auth.password_reset").count();
        assert_eq!(self.request_reset(email).status, 201);
        let events = self.wait_for_events("auth.password_reset", before + 1);
        events[before]["data"]["token"].as_str().unwrap().to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(env) = &self.env {
            env.assert_rows_in_tenant();
        }
    }
}

/// The envelopes in an events file (one per line).
pub fn read_events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Waits until `path` holds `n` events named `name`, and returns them.
pub fn wait_for_events(path: &std::path::Path, name: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = read_events(path).into_iter().filter(|e| e["name"] == name).collect();
        if found.len() >= n {
            return found;
        }
        assert!(Instant::now() < deadline, "waited 10 s for {n} {name} events, have {}", found.len());
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn credentials(email: &str, password: &str) -> String {
    serde_json::json!({ "email": email, "password": password }).to_string()
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub headers: HashMap<String, String>,
    pub text: String,
}

impl From<ureq::Response> for Resp {
    fn from(r: ureq::Response) -> Resp {
        let headers =
            r.headers_names().into_iter().map(|n| (n.clone(), r.header(&n).unwrap_or_default().to_string())).collect();
        Resp { status: r.status(), content_type: r.content_type().to_string(), headers, text: r.into_string().unwrap() }
    }
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn token(&self) -> String {
        self.json()["token"].as_str().unwrap().to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The value the response sets for the cookie `name` (`Some("")` for a removal).
    pub fn cookie(&self, name: &str) -> Option<String> {
        let set = self.header("set-cookie")?;
        let (cookie_name, rest) = set.split_once('=')?;
        (cookie_name == name).then(|| rest.split(';').next().unwrap_or_default().to_string())
    }

    /// Asserts status and the exact JSON body.
    #[track_caller]
    pub fn assert_json(&self, status: u16, body: Value) {
        assert_eq!((self.status, self.content_type.as_str()), (status, "application/json"), "{}", self.text);
        assert_eq!(self.json(), body);
    }

    /// Asserts a 400 `invalid_data` whose message mentions `needle`.
    #[track_caller]
    pub fn assert_invalid(&self, needle: &str) {
        assert_eq!(self.status, 400, "{}", self.text);
        let body = self.json();
        assert_eq!(body["type"], "invalid_data", "{}", self.text);
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message:?} should mention {needle:?}");
    }

    /// Asserts the plain-text 401 of a guarded route.
    #[track_caller]
    pub fn assert_plain_unauthorized(&self) {
        assert_eq!((self.status, self.content_type.as_str(), self.text.as_str()), (401, "text/plain", "Unauthorized"));
    }
}

/// The claims of a JWT, without verifying it.
pub fn claims(token: &str) -> serde_json::Map<String, Value> {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Signs arbitrary claims with the test secret (or another), to forge tokens.
pub fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Runs `n` requests at once (released together) and returns their responses.
pub fn concurrently<F>(n: usize, request: F) -> Vec<Resp>
where
    F: Fn(usize) -> Resp + Sync,
{
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, request) = (&barrier, &request);
                s.spawn(move || {
                    barrier.wait();
                    request(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A unique email for a test.
pub fn email(tag: &str) -> String {
    format!("{tag}-{}@example.com", auth_domain::secret::random_hex(4).unwrap())
}

/// The real binary (`xclade-auth`) over a test environment, its log (standard error) in a file:
/// for what only a process shows (signals, exit codes, log lines). Killed when dropped.
pub struct ServerProcess {
    child: std::process::Child,
    log: PathBuf,
    /// In tenant mode, the database whose rows are checked once the process is gone.
    tenant_check: Option<(Backend, String)>,
    pub port: u16,
    /// The admin listener's port (from its log line); `None` with `ADMIN_PORT=off`.
    pub admin_port: Option<u16>,
}

impl ServerProcess {
    /// Starts the binary with the environment's settings and `overrides` and waits until it
    /// listens.
    pub fn start(env: &TestEnv, overrides: &[(&str, &str)]) -> ServerProcess {
        let log = env.dir.path().join(format!("server-{}.log", auth_domain::secret::random_hex(4).unwrap()));
        let vars = env.config(overrides);
        env.before_start(&vars);
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_xclade-auth"))
            .env_clear()
            .envs(&vars)
            .current_dir(env.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let tenant_check = env.tenants.get().map(|()| (env.backend, env.database_url.clone()));
        let mut process = ServerProcess { child, log, tenant_check, port: 0, admin_port: None };
        let deadline = Instant::now() + Duration::from_secs(30);
        // The API's `listening on http://…` is the last line of the start, after the admin
        // listener's `admin (metrics, probes) on http://…`.
        let port_after = |log: &str, marker: &str| {
            log.lines().find_map(|l| {
                let address = l.split(marker).nth(1)?;
                Some(address.trim().rsplit(':').next().unwrap().parse::<u16>().unwrap())
            })
        };
        process.port = loop {
            let log = process.log();
            if let Some(port) = port_after(&log, "listening on http://") {
                process.admin_port = port_after(&log, "admin (metrics, probes) on http://");
                break port;
            }
            assert!(Instant::now() < deadline, "the server did not start: {log}");
            assert!(process.child.try_wait().unwrap().is_none(), "the server exited: {log}");
            std::thread::sleep(Duration::from_millis(50));
        };
        process
    }

    /// A client of the API port.
    pub fn api(&self) -> Client {
        Client::new(self.port)
    }

    /// A client of the admin listener (on 127.0.0.1, the default `ADMIN_HOST`).
    #[track_caller]
    pub fn admin(&self) -> Client {
        Client::admin_at("127.0.0.1", self.admin_port.expect("the admin listener is on (ADMIN_PORT is not off)"))
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (`TERM`, `INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status =
            std::process::Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
        assert!(status.unwrap().success(), "kill -{signal}");
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and waits for the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if let Some((backend, url)) = &self.tenant_check {
            assert_rows_in_tenant(*backend, url);
        }
    }
}

/// Polls `check` until it holds, up to 20 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the sample `series` (`name{labels}`) in a `/metrics` scrape, 0 when absent.
pub fn metric(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// `npm ci` in `dir` (its package-lock.json, no audit), unless every one of `packages` is
/// installed there already. The error says why, with npm's output.
pub fn npm_install(dir: &std::path::Path, packages: &[&str]) -> Result<(), String> {
    let installed =
        packages.iter().all(|package| dir.join("node_modules").join(package).join("package.json").is_file());
    if installed {
        return Ok(());
    }
    let output = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`npm ci` in {} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// What a child process printed, and how it ended (`None`: killed at its deadline).
pub struct Finished {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with standard input closed and its output in `{prefix}.stdout` and
/// `{prefix}.stderr` (kept for a look after a failure), for at most `timeout`: then it is killed.
pub fn run_until(command: &mut std::process::Command, prefix: &std::path::Path, timeout: Duration) -> Finished {
    let out_path = prefix.with_extension("stdout");
    let err_path = prefix.with_extension("stderr");
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {:?}: {e}", command.get_program()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Finished {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}
