//! The test harness: a real server (the same `Application` the binary runs) on a free port, over
//! real HTTP, on a fresh SQLite file or a fresh PostgreSQL database per test.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
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
        Some(TestEnv { backend, dir, database_url, events_file, _pg: pg })
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
        for (k, v) in overrides {
            vars.insert(k.to_string(), v.to_string());
        }
        vars
    }

    /// A direct connection to the test database, to look at rows.
    pub fn db(&self) -> Db {
        match self.backend {
            Backend::Sqlite => Db::Sqlite(SqliteConnection::establish(&self.database_url).unwrap()),
            Backend::Postgres => Db::Pg(PgConnection::establish(&self.database_url).unwrap()),
        }
    }
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
    /// One text value from `sql` (a query returning a column `v`).
    pub fn text(&mut self, sql: &str) -> String {
        let rows: Vec<TextRow> = match self {
            Db::Sqlite(c) => diesel::sql_query(sql).load(c).unwrap(),
            Db::Pg(c) => diesel::sql_query(sql).load(c).unwrap(),
        };
        rows.into_iter().next().map(|r| r.v).unwrap_or_default()
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
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client::at("127.0.0.1", port)
    }

    /// A client of `host:port` (an IPv4 address or a name).
    pub fn at(host: &str, port: u16) -> Client {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
        Client { base: format!("http://{host}:{port}"), agent }
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
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
        let mut app = TestApp::launch(&vars);
        app.env = Some(env);
        app
    }

    /// Another instance over the same database and files (several instances behind a load
    /// balancer). It does not own the environment.
    pub fn sibling(&self, overrides: &[(&str, &str)]) -> TestApp {
        TestApp::launch(&self.env().config(overrides))
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
            admin: admin_port.map(|port| Client::at(&admin_host, port)),
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

    /// Stops the server, keeping the environment.
    pub fn stop(mut self) -> TestEnv {
        self.shutdown();
        self.env.take().expect("the environment of a running app")
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
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_xclade-auth"))
            .env_clear()
            .envs(&vars)
            .current_dir(env.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut process = ServerProcess { child, log, port: 0, admin_port: None };
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
        Client::new(self.admin_port.expect("the admin listener is on (ADMIN_PORT is not off)"))
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
