//! What operators rely on: readiness, the request id, metrics, the admin port, graceful shutdown.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use diesel::connection::SimpleConnection;

use crate::helpers::{eventually, metric, Backend, Client, Db, ServerProcess, TestApp, TestEnv, PASSWORD};
use crate::on_both_backends;

on_both_backends!(ready_waits_for_pending_migrations_and_accepts_a_newer_schema, metrics_count_requests_and_rejections);

/// A TCP proxy to PostgreSQL that can be cut and restored on the same port: the database
/// "unreachable" and "back" as the server sees it. Also used by `faults.rs`.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    up: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    pub(crate) fn start(port: u16, upstream: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (flag, open) = (up.clone(), streams.clone());
        let acceptor = std::thread::spawn(move || {
            while flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                        let mut open = open.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy { port, up, streams, acceptor: Some(acceptor) }
    }

    /// Closes the listener and every connection through it.
    pub(crate) fn cut(mut self) -> u16 {
        self.up.store(false, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().unwrap();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.port
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

#[test]
fn ready_is_503_while_the_database_is_unreachable_and_200_when_it_is_back() {
    let Some(env) = TestEnv::new(Backend::Postgres) else { return };
    let proxy = Proxy::start(0, 5432);
    let url = env.database_url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(url, env.database_url, "the test database is reached through the proxy");
    let app = TestApp::start(env, &[("DATABASE_URL", &url), ("DATABASE_TIMEOUT", "2s")]);
    let ready = app.request("GET", "/ready", None, &[]);
    assert_eq!((ready.status, ready.text.as_str()), (200, r#"{"status":"ready"}"#));
    assert_eq!(app.request("GET", "/health", None, &[]).status, 200);

    let port = proxy.cut();
    let down = app.request("GET", "/ready", None, &[]);
    assert_eq!(down.status, 503, "{}", down.text);
    assert!(down.content_type.starts_with("application/json"));
    assert!(down.text.contains("the database is unreachable"), "{}", down.text);
    assert!(!down.text.contains("127.0.0.1"), "no connection detail reaches the client: {}", down.text);
    assert_eq!(app.request("GET", "/health", None, &[]).status, 200, "liveness does not depend on the database");

    let _proxy = Proxy::start(port, 5432);
    eventually("/ready is 200 again", || app.request("GET", "/ready", None, &[]).status == 200);
    assert!(!app.registered("back@example.com").is_empty(), "the API works again");
}

fn ready_waits_for_pending_migrations_and_accepts_a_newer_schema(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    let app = TestApp::start(env, &[("MIGRATE_ON_START", "false")]);
    let pending = app.request("GET", "/ready", None, &[]);
    assert_eq!(pending.status, 503, "{}", pending.text);
    assert!(pending.text.contains("migrations are pending"), "{}", pending.text);

    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_xclade-auth"))
        .env_clear()
        .envs(app.env().config(&[]))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    eventually("/ready is 200 after the migration", || app.request("GET", "/ready", None, &[]).status == 200);

    // A newer binary migrated the database further: this one stays ready (rolling upgrade).
    let newer = "INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')";
    match app.db() {
        Db::Sqlite(mut c) => c.batch_execute(newer).unwrap(),
        Db::Pg(mut c) => c.batch_execute(newer).unwrap(),
    }
    assert_eq!(app.request("GET", "/ready", None, &[]).status, 200);
}

fn metrics_count_requests_and_rejections(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_PER_IP", "3/1m")])
    else {
        return;
    };
    let refreshes = r#"xclade_auth_http_requests_total{route="/auth/token/refresh",method="POST",status="200"}"#;
    let scrape = || {
        let r = app.admin().request("GET", "/metrics", None, &[]);
        assert_eq!(r.status, 200);
        assert!(r.content_type.starts_with("application/openmetrics-text"), "{}", r.content_type);
        r.text
    };
    let before = scrape();
    let token = app.registered("ann@example.com");
    app.refresh(&token);
    let after = scrape();
    assert_eq!(metric(&after, refreshes) - metric(&before, refreshes), 1.0, "{after}");
    let latency = r#"xclade_auth_http_request_duration_seconds_count{route="/auth/token/refresh",method="POST"}"#;
    assert!(metric(&after, latency) >= 1.0, "{after}");
    assert!(metric(&after, "xclade_auth_password_hash_duration_seconds_count") >= 1.0, "{after}");
    assert!(metric(&after, r#"xclade_auth_db_pool_connections{state="max"}"#) >= 1.0, "{after}");

    // The per-client budget (3 a minute, one already spent by the registration) refuses the 4th.
    let statuses: Vec<u16> = (0..3).map(|_| app.login("ann@example.com", PASSWORD).status).collect();
    assert_eq!(statuses, [200, 200, 429]);
    let limited = scrape();
    assert_eq!(metric(&limited, r#"xclade_auth_rate_limit_rejections_total{limit="client"}"#), 1.0, "{limited}");
    let unmatched = app.request("GET", "/no/such/path/ann@example.com", None, &[]);
    assert_eq!(unmatched.status, 404);
    let last = scrape();
    assert!(metric(&last, r#"xclade_auth_http_requests_total{route="unmatched",method="GET",status="404"}"#) >= 1.0);
    assert!(!last.contains("ann@example.com") && !last.contains(&token), "no email or token in a label");
}

#[test]
fn the_admin_listener_serves_the_metrics_and_the_api_port_does_not() {
    let Some(env) = TestEnv::new(Backend::Sqlite) else { return };
    // The harness's settings: the admin listener on (on a free port), nothing else said.
    let server = ServerProcess::start(&env, &[]);
    let log = server.log();
    assert!(log.contains("admin (metrics, probes) on http://127.0.0.1:"), "{log}");
    assert!(!log.contains("METRICS_ON_PUBLIC_PORT"), "no warning unless asked for: {log}");
    let (api, admin) = (server.api(), server.admin());
    let r = api.request("GET", "/metrics", None, &[("accept", "application/json")]);
    r.assert_json(404, serde_json::json!({"type": "not_found", "message": "Cannot GET /metrics"}));
    let r = api.request("POST", "/metrics", Some(""), &[]);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")), "the path is documented: {}", r.text);
    assert_eq!(api.request("GET", "/ready", None, &[]).status, 200, "the probes stay on the API port");
    assert_eq!(api.request("GET", "/health", None, &[]).status, 200);
    let r = admin.request("GET", "/metrics", None, &[]);
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("application/openmetrics-text"), "{}", r.content_type);
    assert_eq!(admin.request("GET", "/ready", None, &[]).status, 200);
    assert_eq!(admin.request("GET", "/health", None, &[]).status, 200);
    assert_eq!(admin.request("POST", "/auth/customer/emailpass", Some("{}"), &[]).status, 404, "no API there");
    assert_eq!(admin.request("GET", "/openapi.json", None, &[]).status, 404, "nor its reference");
}

#[test]
fn metrics_on_the_public_port_are_served_only_when_asked_for_and_then_with_a_warning() {
    let Some(env) = TestEnv::new(Backend::Sqlite) else { return };
    let server = ServerProcess::start(&env, &[("METRICS_ON_PUBLIC_PORT", "true")]);
    let log = server.log();
    let warning = log.lines().find(|l| l.contains("METRICS_ON_PUBLIC_PORT=true")).unwrap_or_else(|| panic!("{log}"));
    assert!(warning.contains("WARN") && warning.contains("/metrics is served on the public port"), "{warning}");
    assert_eq!(server.api().request("GET", "/metrics", None, &[]).status, 200);
    assert_eq!(server.admin().request("GET", "/metrics", None, &[]).status, 200, "and on the admin listener");
    drop(server);

    // The admin listener off, and nothing asked for: /metrics is not served at all.
    let server = ServerProcess::start(&env, &[("ADMIN_PORT", "off")]);
    let log = server.log();
    assert!(server.admin_port.is_none() && log.contains("admin listener off (ADMIN_PORT=off)"), "{log}");
    assert!(log.contains("/metrics is not served"), "{log}");
    assert_eq!(server.api().request("GET", "/metrics", None, &[]).status, 404);
    assert_eq!(server.api().request("GET", "/ready", None, &[]).status, 200);
}

#[test]
fn the_request_id_is_on_the_response_and_on_every_log_line_of_the_request() {
    let Some(env) = TestEnv::new(Backend::Sqlite) else { return };
    let server = ServerProcess::start(&env, &[("RUST_LOG", "debug")]);
    let client = Client::new(server.port);
    let r = client.post_with(
        "/auth/customer/emailpass/reset-password",
        r#"{"identifier":"nobody@example.com"}"#,
        &[("x-request-id", "req-test-42")],
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.headers["x-request-id"], "req-test-42");
    let generated = client.request("GET", "/health", None, &[]).headers["x-request-id"].clone();
    assert!(generated.len() >= 8, "an id is generated: {generated:?}");
    let replaced = client.request("GET", "/nowhere", None, &[("x-request-id", "bad id with spaces")]);
    assert_eq!(replaced.status, 404);
    assert_ne!(replaced.headers["x-request-id"], "bad id with spaces");

    // Written by the use case on a blocking-pool thread (it records the request before the
    // answer; the access line may come later): waited for too.
    let service_line = "request_id=req-test-42 password reset request rstreq_";
    eventually("the access line and the use case's line are written", || {
        let log = server.log();
        log.contains(r#""POST /auth/customer/emailpass/reset-password""#) && log.contains(service_line)
    });
    let log = server.log();
    let access = log.lines().find(|l| l.contains(r#""POST /auth/customer/emailpass/reset-password""#)).unwrap();
    assert!(access.contains("request_id=req-test-42"), "{access}");
    assert!(log.contains(&format!("request_id={generated}")), "{log}");
}

#[test]
fn a_request_in_flight_is_answered_during_a_graceful_shutdown() {
    let Some(env) = TestEnv::new(Backend::Sqlite) else { return };
    // A registration at cost 13 hashes for a good fraction of a second: long enough to be
    // caught in flight.
    let mut server = ServerProcess::start(&env, &[("BCRYPT_COST", "13"), ("HASH_CONCURRENCY", "1")]);
    let port = server.port;
    let admin = server.admin();
    let in_flight = r#"xclade_auth_http_requests_in_flight"#;
    let registering = std::thread::spawn(move || Client::new(port).register("slow@example.com", PASSWORD));
    // The scrape is on the admin listener, which the gauge does not count: the registration is
    // the one request in flight on the API port.
    eventually("the registration is in flight", || {
        metric(&admin.request("GET", "/metrics", None, &[]).text, in_flight) >= 1.0
    });
    server.signal("TERM");
    eventually("the API port stops accepting", || TcpStream::connect(("127.0.0.1", port)).is_err());
    // The admin listener stays until the API's requests in flight are done: it must not end
    // the process early (each actix server that heeds SIGTERM stops the whole system).
    assert!(registering.is_finished() || admin.request("GET", "/ready", None, &[]).status == 200);
    let answered = registering.join().unwrap();
    assert_eq!(answered.status, 200, "{}", answered.text);
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}: {}", server.log());
    let log = server.log();
    assert!(log.contains("finishing background work") && log.contains("stopped"), "{log}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens any more");
    let admin_port = server.admin_port.unwrap();
    assert!(TcpStream::connect(("127.0.0.1", admin_port)).is_err(), "nor on the admin listener");
}
