//! Faults, each on the backend it concerns (issue 15):
//!
//! - PostgreSQL unreachable under load (a TCP proxy in this process between the server and
//!   PostgreSQL is cut, then restored on the same port, as the readiness test does: the shared
//!   cluster keeps serving the tests running beside this one). Requests in the window answer 503
//!   `database_error`, none waits past `DATABASE_TIMEOUT` plus a margin, the service answers again
//!   by itself, and every event committed is delivered, none invented (a sink that drops
//!   duplicates by id sees each once).
//! - SQLite on a full disk (a tmpfs of a few MiB, mounted by the test): writes answer 503,
//!   reads keep working, `PRAGMA integrity_check` is `ok`, and writes work again once space is
//!   freed. Mounting needs root: without it the test is skipped with a notice, unless
//!   `XCLADE_REQUIRE` lists `mount` (`.ci/run` does).
//! - SIGKILL of the real binary in the middle of `/update`, change-password and
//!   `POST /store/customers` under load, on both backends: after a restart over the same database,
//!   every account is entirely before or entirely after (hash, stamp, reset token, event; customer
//!   row and link), row by row.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{self, eventually, Backend, Client, Db, ServerProcess, TestApp, TestEnv, PASSWORD};
use crate::on_both_backends;
use crate::operations::Proxy;

on_both_backends!(sigkill_in_the_middle_of_writes_leaves_every_account_before_or_after);

/// The body of every `database_error`.
fn database_error() -> Value {
    json!({"code": "api_error", "type": "database_error", "message": "The database is unavailable."})
}

/// The second password of the accounts whose password changes.
const OTHER_PASSWORD: &str = "another horse battery";

const CHANGE_PASSWORD: &str = "/auth/customer/emailpass/change-password";

fn change_password_body(old: &str, new: &str) -> String {
    json!({ "old_password": old, "new_password": new }).to_string()
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL unreachable under load
// ---------------------------------------------------------------------------------------------

/// One request of the load: which kind, when it ended (from the start of the load), its status,
/// how long it took, and its body when it was not a 200.
struct Sample {
    kind: &'static str,
    ended: Duration,
    status: u16,
    took: Duration,
    body: String,
}

/// What the load threads record.
struct Load {
    start: Instant,
    stop: AtomicBool,
    samples: Mutex<Vec<Sample>>,
}

impl Load {
    /// Runs `request`, records it, and returns its response.
    fn run(&self, kind: &'static str, request: impl FnOnce() -> helpers::Resp) -> helpers::Resp {
        let began = Instant::now();
        let r = request();
        let took = began.elapsed();
        let body = if r.status == 200 { String::new() } else { r.text.clone() };
        self.samples.lock().unwrap().push(Sample { kind, ended: self.start.elapsed(), status: r.status, took, body });
        r
    }
}

/// `DATABASE_TIMEOUT` of the test, and how much longer than it a request may take (a request
/// that waited for its connection still answers, hashes or writes its log line).
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);
const MARGIN: Duration = Duration::from_millis(1500);

#[test]
fn postgresql_unreachable_under_load_answers_503_in_time_and_recovers_without_losing_events() {
    let Some(env) = TestEnv::new(Backend::Postgres) else { return };
    let proxy = Proxy::start(0, 5432);
    let url = env.database_url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(url, env.database_url, "the test database is reached through the proxy");
    let timeout = format!("{}ms", DATABASE_TIMEOUT.as_millis());
    // A hashing permit for each thread of the load: a request that hashes holds its permit while
    // it waits for a connection, so with fewer permits than hashing clients the others would
    // queue behind those waits (operations.md, "When the database fails").
    let app = TestApp::start(
        env,
        &[
            ("DATABASE_URL", &url),
            ("DATABASE_TIMEOUT", &timeout),
            ("HASH_CONCURRENCY", "8"),
            ("DATABASE_POOL_SIZE", "8"),
            // A delivery written to the sink whose outcome could not be recorded (the database
            // went away in between) is claimed again once its lease ends: 2 s instead of 60.
            ("EVENT_LEASE", "2s"),
        ],
    );

    // Accounts whose password changes (one thread each), one to log in and refresh with.
    let changers: Vec<String> = (0..3).map(|i| helpers::email(&format!("changer{i}"))).collect();
    for email in &changers {
        app.registered(email);
    }
    let reader = helpers::email("reader");
    let reader_token = app.registered(&reader);

    let load = Load { start: Instant::now(), stop: AtomicBool::new(false), samples: Mutex::new(Vec::new()) };
    // Per changer: (changes answered 200, changes answered 503 that may or may not have happened).
    let outcomes: Mutex<HashMap<String, (usize, usize)>> = Mutex::new(HashMap::new());
    let (cut_at, restored_at, _proxy) = std::thread::scope(|s| {
        for email in &changers {
            let (load, outcomes, client) = (&load, &outcomes, &*app);
            s.spawn(move || {
                let (ok, unsure) = change_passwords_until_stopped(load, client, email);
                outcomes.lock().unwrap().insert(email.clone(), (ok, unsure));
            });
        }
        let (load, client, reader, reader_token) = (&load, &*app, &reader, &reader_token);
        s.spawn(move || {
            while !load.stop.load(Ordering::SeqCst) {
                let r = load.run("login", || client.login(reader, PASSWORD));
                assert!(matches!(r.status, 200 | 503), "login: {} {}", r.status, r.text);
            }
        });
        s.spawn(move || {
            while !load.stop.load(Ordering::SeqCst) {
                let r = load.run("refresh", || client.refresh(reader_token));
                assert!(matches!(r.status, 200 | 503), "refresh: {} {}", r.status, r.text);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        s.spawn(move || {
            while !load.stop.load(Ordering::SeqCst) {
                // A new address each time: a 503 that committed anyway cannot make the next one a 401.
                let email = helpers::email("newcomer");
                let r = load.run("register", || client.register(&email, PASSWORD));
                assert!(matches!(r.status, 200 | 503), "register: {} {}", r.status, r.text);
            }
        });

        std::thread::sleep(Duration::from_secs(1));
        let cut_at = load.start.elapsed();
        let port = proxy.cut();
        std::thread::sleep(Duration::from_secs(4));
        let restored_at = load.start.elapsed();
        let proxy = Proxy::start(port, 5432);
        // Until every kind of request has answered 200 again, or 15 s.
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let samples = load.samples.lock().unwrap();
            let back = |kind: &str| samples.iter().any(|s| s.kind == kind && s.ended > restored_at && s.status == 200);
            if ["login", "refresh", "register", "change-password"].into_iter().all(back) {
                break;
            }
            drop(samples);
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        load.stop.store(true, Ordering::SeqCst);
        // Kept open for the checks below.
        (cut_at, restored_at, proxy)
    });

    let samples = load.samples.into_inner().unwrap();
    // Every request that ended in the outage or the second after it, for the failure messages.
    let mut window = String::new();
    for sample in samples.iter().filter(|s| s.ended > cut_at && s.ended < restored_at + Duration::from_secs(1)) {
        window.push_str(&format!(
            "  {} ended at {:?} after {:?}: {}\n",
            sample.kind,
            sample.ended - cut_at,
            sample.took,
            sample.status
        ));
    }
    let mut report = String::new();
    for kind in ["login", "refresh", "register", "change-password"] {
        let of_kind: Vec<&Sample> = samples.iter().filter(|s| s.kind == kind).collect();
        let before = of_kind.iter().filter(|s| s.ended < cut_at && s.status == 200).count();
        let failed = of_kind.iter().filter(|s| s.status == 503).count();
        let back = of_kind.iter().find(|s| s.ended > restored_at && s.status == 200).map(|s| s.ended - restored_at);
        let slowest = of_kind.iter().map(|s| s.took).max().unwrap_or_default();
        report.push_str(&format!(
            "{kind}: {} requests, {before} 200 before the cut, {failed} 503, slowest {slowest:?}, first 200 after the restore {back:?}\n",
            of_kind.len()
        ));
        assert!(before > 0, "{kind} answered before the cut\n{report}{window}");
        assert!(failed > 0, "{kind} met the outage\n{report}{window}");
        let back = back.unwrap_or_else(|| panic!("{kind} never answered 200 after the restore\n{report}{window}"));
        assert!(back < Duration::from_secs(10), "{kind} recovered within seconds\n{report}{window}");
    }
    for sample in &samples {
        assert!(
            sample.took <= DATABASE_TIMEOUT + MARGIN,
            "a {} took {:?} (DATABASE_TIMEOUT {DATABASE_TIMEOUT:?}) and answered {}\n{report}{window}",
            sample.kind,
            sample.took,
            sample.status
        );
        if sample.status == 503 {
            assert_eq!(serde_json::from_str::<Value>(&sample.body).unwrap(), database_error(), "{}", sample.kind);
        }
    }
    // Stderr, straight: the figures of the run, for whoever runs the test with --nocapture.
    let _ = std::io::stderr().write_all(report.as_bytes());

    // Every event committed reaches the file sink; none that was not committed does. The sink
    // may see one twice (at least once): by id, each appears once.
    let mut db = app.db();
    eventually("every event is delivered", || {
        db.count("event_delivery WHERE delivered_at IS NULL AND expired_at IS NULL") == 0
    });
    let stored: HashSet<String> = db.texts("SELECT id AS v FROM event").into_iter().collect();
    let delivered: Vec<Value> = app.events();
    let delivered_ids: HashSet<String> = delivered.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(delivered_ids, stored, "the events delivered (by id) are the events committed");
    let outcomes = outcomes.into_inner().unwrap();
    for email in &changers {
        let (ok, unsure) = outcomes[email];
        let events = delivered
            .iter()
            .filter(|e| e["name"] == "auth.password_changed" && e["data"]["entity_id"] == email.as_str())
            .map(|e| e["id"].as_str().unwrap())
            .collect::<HashSet<_>>()
            .len();
        assert!(
            ok <= events && events <= ok + unsure,
            "{email}: {ok} changes answered 200 and {unsure} 503, but {events} auth.password_changed events"
        );
    }
}

/// Changes the password of `email` back and forth until the load stops; returns the changes
/// answered 200, and those answered 503 (which may have been committed before the connection
/// broke: the next login finds out which password holds).
fn change_passwords_until_stopped(load: &Load, client: &Client, email: &str) -> (usize, usize) {
    let (mut ok, mut unsure) = (0, 0);
    let mut current = PASSWORD;
    let mut token = client.login(email, current).token();
    while !load.stop.load(Ordering::SeqCst) {
        let next = if current == PASSWORD { OTHER_PASSWORD } else { PASSWORD };
        let auth = format!("Bearer {token}");
        let r = load.run("change-password", || {
            client.post_with(CHANGE_PASSWORD, &change_password_body(current, next), &[("authorization", &auth)])
        });
        match r.status {
            200 => {
                ok += 1;
                current = next;
                token = r.token();
            }
            503 => {
                unsure += 1;
                // Which password holds now, and a token that is still valid.
                loop {
                    if load.stop.load(Ordering::SeqCst) {
                        return (ok, unsure);
                    }
                    let r = load.run("login", || client.login(email, next));
                    if r.status == 200 {
                        (current, token) = (next, r.token());
                        break;
                    }
                    let r = load.run("login", || client.login(email, current));
                    if r.status == 200 {
                        token = r.token();
                        break;
                    }
                    assert!(matches!(r.status, 401 | 503), "login: {} {}", r.status, r.text);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            other => panic!("change-password: {other} {}", r.text),
        }
    }
    (ok, unsure)
}

// ---------------------------------------------------------------------------------------------
// SQLite on a full disk
// ---------------------------------------------------------------------------------------------

/// A small tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after a notice) when mounting is impossible here and `XCLADE_REQUIRE` does not
    /// list `mount`.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .output();
        let error = match out {
            Ok(out) if out.status.success() => return Some(Tmpfs { dir }),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        if auth_store_diesel::testing::required("mount") {
            panic!("XCLADE_REQUIRE lists mount, but a tmpfs cannot be mounted here (run as root): {error}");
        }
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            let _ = std::io::stderr().write_all(
                format!(
                    "note: skipping the full-disk test: cannot mount a tmpfs ({error}); run as root, or set \
                     XCLADE_REQUIRE=mount to fail instead\n"
                )
                .as_bytes(),
            );
        });
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system of `dir` with one file, until no byte more fits; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x55u8; 64 * 1024];
    let mut size = chunk.len();
    // Halving the writes down to one byte takes the last page too.
    while size > 0 {
        match file.write(&chunk[..size]) {
            Ok(0) | Err(_) => size /= 2,
            Ok(_) => {}
        }
    }
    let _ = file.flush();
    path
}

#[test]
fn sqlite_on_a_full_disk_refuses_writes_with_503_keeps_reading_and_recovers() {
    let Some(tmpfs) = Tmpfs::mount("6m") else { return };
    let Some(mut env) = TestEnv::new(Backend::Sqlite) else { return };
    env.database_url = tmpfs.path().join("auth.sqlite").to_string_lossy().into_owned();
    let app = TestApp::start(env, &[]);

    let ann = helpers::email("ann");
    let token = app.registered(&ann);
    let r = app.post_with(
        "/store/customers",
        &json!({ "email": ann }).to_string(),
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let customer = r.json()["customer"].clone();
    let mut registered = 1;

    let filler = fill(tmpfs.path());
    // The database may still have room in pages it owns (the write-ahead log is reused after a
    // checkpoint): registrations succeed until they do not, and then they answer 503.
    let mut refused = None;
    for i in 0..500 {
        let r = app.register(&helpers::email(&format!("full{i}")), PASSWORD);
        match r.status {
            200 => registered += 1,
            503 => {
                refused = Some(r);
                break;
            }
            other => panic!("register on a full disk: {other} {}", r.text),
        }
    }
    let refused = refused.expect("a registration is refused once the disk is full");
    let _ = std::io::stderr()
        .write_all(format!("full disk: {registered} registrations stored before the first 503\n").as_bytes());
    refused.assert_json(503, database_error());
    let r = app.register(&helpers::email("fuller"), PASSWORD);
    r.assert_json(503, database_error());
    let r = app.post_with(
        "/store/customers/me",
        r#"{"first_name":"Ann"}"#,
        &[("authorization", &format!("Bearer {token}"))],
    );
    r.assert_json(503, database_error());

    // Reads: the customer, a refresh (rebuilt from the database), a login (no write on success
    // with the limits off and the hash at its cost), the probes.
    let r = app.request("GET", "/store/customers/me", None, &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["customer"], customer);
    let refreshed = app.refresh(&token);
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let login = app.login(&ann, PASSWORD);
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(app.request("GET", "/health", None, &[]).status, 200);
    assert_eq!(app.request("GET", "/ready", None, &[]).status, 200, "readiness only reads");

    // Space again: writes work by themselves.
    std::fs::remove_file(&filler).unwrap();
    let r = app.register(&helpers::email("after"), PASSWORD);
    assert_eq!(r.status, 200, "{}", r.text);
    registered += 1;
    let r = app.post_with(
        "/store/customers/me",
        r#"{"first_name":"Ann"}"#,
        &[("authorization", &format!("Bearer {login}", login = login.token()))],
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let env = app.stop();
    let mut db = env.db();
    assert_eq!(db.text("SELECT integrity_check AS v FROM pragma_integrity_check"), "ok");
    assert_eq!(db.count("auth_identity"), registered, "every 200 is stored, every 503 is not");
    assert_eq!(db.count("provider_identity"), registered);
    drop(db);
    drop(env);
    drop(tmpfs);
}

// ---------------------------------------------------------------------------------------------
// SIGKILL in the middle of writes
// ---------------------------------------------------------------------------------------------

/// What one account looks like in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    /// `provider_metadata`, which holds the hash.
    hash: String,
    stamp: String,
    app_metadata: String,
    reset_tokens: usize,
    changed_events: usize,
    customers: usize,
}

fn account(db: &mut Db, email: &str) -> Account {
    let key = email.to_lowercase();
    assert!(!key.contains('\'') && !key.contains('_') && !key.contains('%'), "{key} is safe in SQL and LIKE");
    let identity = format!(
        "FROM auth_identity a JOIN provider_identity p ON p.auth_identity_id = a.id \
         WHERE p.provider = 'emailpass' AND p.entity_key = '{key}'"
    );
    Account {
        hash: db.text(&format!("SELECT p.provider_metadata AS v {identity}")),
        stamp: db.text(&format!("SELECT a.security_stamp AS v {identity}")),
        app_metadata: db.text(&format!("SELECT a.app_metadata AS v {identity}")),
        reset_tokens: db.count(&format!(
            "password_reset_token t JOIN provider_identity p ON t.provider_identity_id = p.id \
             WHERE p.entity_key = '{key}'"
        )),
        changed_events: db.count(&format!("event WHERE name = 'auth.password_changed' AND payload LIKE '%\"{key}\"%'")),
        customers: db.count(&format!("customer WHERE lower(email) = '{key}'")),
    }
}

/// The status and body of an answer, or why there was none (`ConnectionFailed: …` when the
/// request never reached the server).
type Outcome = Result<(u16, String), String>;

/// One request that may get no answer (the server was killed).
fn attempt(client: &Client, path: &str, body: &str, bearer: &str) -> Outcome {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let mut req = agent
        .post(&format!("{}{path}", client.base))
        .set("content-type", "application/json")
        .set("accept", "application/json")
        .set("authorization", &format!("Bearer {bearer}"));
    if let Some(host) = helpers::tenant_host() {
        req = req.set("host", &host);
    }
    match req.send_string(body) {
        Ok(r) => Ok((r.status(), r.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(status, r)) => Ok((status, r.into_string().unwrap_or_default())),
        Err(ureq::Error::Transport(t)) => Err(format!("{:?}: {t}", t.kind())),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `/update` with a reset token: the password becomes `OTHER_PASSWORD`.
    Update,
    /// change-password to `OTHER_PASSWORD`.
    ChangePassword,
    /// `POST /store/customers` with the registration token.
    CreateCustomer,
}

fn sigkill_in_the_middle_of_writes_leaves_every_account_before_or_after(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    // bcrypt at cost 8 (a few ms): long enough that requests are in flight when the kill comes.
    let settings = [("BCRYPT_COST", "8"), ("HASH_CONCURRENCY", "2")];
    let mut server = ServerProcess::start(&env, &settings);
    let client = server.api();
    const PER_KIND: usize = 12;

    // Accounts, each with the credential its request needs.
    let mut work: Vec<(Kind, String, String)> = Vec::new();
    let mut resets = Vec::new();
    for i in 0..PER_KIND {
        let email = helpers::email(&format!("upd{i}"));
        client.registered(&email);
        assert_eq!(client.request_reset(&email).status, 201);
        resets.push(email);
    }
    let events = helpers::wait_for_events(&env.events_file, "auth.password_reset", PER_KIND);
    for email in resets {
        let event = events.iter().find(|e| e["data"]["entity_id"] == email.as_str()).unwrap();
        work.push((Kind::Update, email, event["data"]["token"].as_str().unwrap().to_string()));
    }
    for i in 0..PER_KIND {
        let email = helpers::email(&format!("chg{i}"));
        let token = client.registered(&email);
        let r = client.post_with(
            "/store/customers",
            &json!({ "email": email }).to_string(),
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let token = client.login(&email, PASSWORD).token();
        work.push((Kind::ChangePassword, email, token));
    }
    for i in 0..PER_KIND {
        let email = helpers::email(&format!("cus{i}"));
        let token = client.registered(&email);
        work.push((Kind::CreateCustomer, email, token));
    }
    let before: HashMap<String, Account> = {
        let mut db = env.db();
        work.iter().map(|(_, email, _)| (email.clone(), account(&mut db, email))).collect()
    };

    // The load: three threads per kind, each through its share of the accounts; the kill comes
    // once a third of the requests have been answered.
    let answered = AtomicUsize::new(0);
    let results: Mutex<HashMap<String, Outcome>> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for kind in [Kind::Update, Kind::ChangePassword, Kind::CreateCustomer] {
            for lane in 0..3 {
                let share: Vec<&(Kind, String, String)> =
                    work.iter().filter(|w| w.0 == kind).skip(lane).step_by(3).collect();
                let (client, answered, results) = (&client, &answered, &results);
                s.spawn(move || {
                    for (kind, email, credential) in share {
                        let (path, body) = match kind {
                            Kind::Update => {
                                ("/auth/customer/emailpass/update", json!({ "password": OTHER_PASSWORD }).to_string())
                            }
                            Kind::ChangePassword => (CHANGE_PASSWORD, change_password_body(PASSWORD, OTHER_PASSWORD)),
                            Kind::CreateCustomer => ("/store/customers", json!({ "email": email }).to_string()),
                        };
                        let result = attempt(client, path, &body, credential);
                        if result.is_ok() {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        results.lock().unwrap().insert(email.clone(), result);
                    }
                });
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.load(Ordering::SeqCst) < work.len() / 3 {
            assert!(Instant::now() < deadline, "the load did not get going: {}", server.log());
            std::thread::sleep(Duration::from_millis(1));
        }
        server.kill();
    });
    let results = results.into_inner().unwrap();
    let answered_200 = results.values().filter(|r| matches!(r, Ok((200, _)))).count();
    let cut = results.values().filter(|r| r.as_ref().is_err_and(|e| !e.starts_with("ConnectionFailed"))).count();
    let never_sent = results.values().filter(|r| r.as_ref().is_err_and(|e| e.starts_with("ConnectionFailed"))).count();
    for (email, result) in &results {
        if let Ok((status, body)) = result {
            assert_eq!(*status, 200, "{email}: {body}");
        }
    }
    assert!(
        answered_200 >= work.len() / 3 && answered_200 < work.len(),
        "the kill came mid-load: {answered_200} answered"
    );

    // Restarted over the same database: each account entirely before or entirely after.
    let server = ServerProcess::start(&env, &settings);
    let client = server.api();
    let mut db = env.db();
    let (mut after_count, mut before_count) = (0, 0);
    for (kind, email, _) in &work {
        let was = &before[email];
        let now = account(&mut db, email);
        let answered_ok = matches!(results.get(email), Some(Ok((200, _))));
        let after = match kind {
            Kind::Update | Kind::ChangePassword => {
                let changed = now.hash != was.hash;
                let parts = [
                    ("hash", changed),
                    ("stamp", now.stamp != was.stamp),
                    ("event", now.changed_events == was.changed_events + 1),
                    ("reset token consumed", *kind == Kind::ChangePassword || now.reset_tokens == 0),
                ];
                let unchanged = [
                    ("hash", !changed),
                    ("stamp", now.stamp == was.stamp),
                    ("event", now.changed_events == was.changed_events),
                    ("reset token kept", *kind == Kind::ChangePassword || now.reset_tokens == was.reset_tokens),
                ];
                let after = parts.iter().all(|p| p.1);
                assert!(
                    after || unchanged.iter().all(|p| p.1),
                    "{kind:?} {email} is half-done: after {parts:?}, before {unchanged:?}\nwas {was:?}\nnow {now:?}"
                );
                let (holds, refused) = if after { (OTHER_PASSWORD, PASSWORD) } else { (PASSWORD, OTHER_PASSWORD) };
                assert_eq!(client.login(email, holds).status, 200, "{kind:?} {email}: {holds:?} logs in");
                assert_eq!(client.login(email, refused).status, 401, "{kind:?} {email}: {refused:?} does not");
                after
            }
            Kind::CreateCustomer => {
                let linked = now.app_metadata.contains("customer_id");
                assert!(
                    (now.customers == 1 && linked)
                        || (now.customers == 0 && !linked && now.app_metadata == was.app_metadata),
                    "{email}: customer rows {} but app_metadata {}",
                    now.customers,
                    now.app_metadata
                );
                now.customers == 1
            }
        };
        if answered_ok {
            assert!(after, "{kind:?} {email} answered 200 but is not done");
        }
        if after {
            after_count += 1;
        } else {
            before_count += 1;
        }
    }
    let _ = std::io::stderr().write_all(
        format!(
            "sigkill [{backend:?}]: {answered_200} answered 200, {cut} cut in flight, {never_sent} never connected; \
             after the restart {after_count} accounts after, {before_count} before\n"
        )
        .as_bytes(),
    );
    // The accounts that are still before can still go after: nothing is left locked or half-held.
    for (kind, email, credential) in &work {
        if *kind == Kind::CreateCustomer && account(&mut db, email).customers == 0 {
            let r = client.post_with(
                "/store/customers",
                &json!({ "email": email }).to_string(),
                &[("authorization", &format!("Bearer {credential}"))],
            );
            assert_eq!(r.status, 200, "{email}: {}", r.text);
        }
    }
}
