//! Three instances of the real binary on one PostgreSQL, each on its own loopback port, behind
//! no load balancer but the test's round-robin: a mixed load (register, login, refresh, sessions,
//! reset-password and update, change-password, logout-all) goes through all three while one is
//! killed with SIGKILL and restarted on its port. Then, on the three: reset tokens stay single-use
//! (also when instances are raced with one token), the per-email login throttle holds across
//! them, a revocation made on one is honoured on the others at once, and every event reaches the
//! webhook, by id, once (docs/operations.md, "Several instances behind a load balancer").
//!
//! PostgreSQL only: SQLite serves one instance.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::delivery::{verify, Receiver, SECRET};
use crate::helpers::{
    credentials, tenant_host, Backend, Client, Resp, ServerProcess, TestEnv, PASSWORD, REVOCATION_BOUND,
};

const LOGIN: &str = "/auth/customer/emailpass";
const UPDATE: &str = "/auth/customer/emailpass/update";
const CHANGE_PASSWORD: &str = "/auth/customer/emailpass/change-password";
const SECOND_PASSWORD: &str = "a second horse battery";
const THIRD_PASSWORD: &str = "a third horse battery";
/// `LOGIN_FAILURE_LIMIT_ACCOUNT` here: wrong passwords for one email, from every address, on
/// every instance together.
const ACCOUNT_FAILURES: usize = 6;

/// The settings of every instance: the same secret (the harness's), one webhook as the only
/// sink, short leases so that the claims of the killed instance are taken over within the test,
/// and the limits on with explicit values.
fn settings(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("WEBHOOK_URL", receiver.url.clone()),
        ("WEBHOOK_SECRET", SECRET.into()),
        ("EVENTS_FILE", String::new()),
        ("EVENT_POLL_INTERVAL", "20ms".into()),
        ("EVENT_LEASE", "2s".into()),
        ("DATABASE_POOL_SIZE", "4".into()),
        ("RATE_LIMIT_ENABLED", "true".into()),
        // Every request of the test comes from 127.0.0.1: a budget the load never reaches.
        ("RATE_LIMIT_PER_IP", "1000000/1m".into()),
        ("LOGIN_FAILURE_LIMIT", "1000/15m".into()),
        ("LOGIN_FAILURE_LIMIT_ACCOUNT", format!("{ACCOUNT_FAILURES}/1h")),
    ]
}

fn pairs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A request that may get no answer: the status and body, or the transport error (the instance
/// was killed before or while it answered). No connection is reused, so an error always belongs
/// to the request that got it.
fn call(port: u16, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Result<Resp, String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(20)).max_idle_connections(0).build();
    let mut req = agent
        .request(method, &format!("http://127.0.0.1:{port}{path}"))
        .set("content-type", "application/json")
        .set("accept", "application/json");
    if let Some(host) = tenant_host() {
        req = req.set("host", &host);
    }
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    match result {
        Ok(r) => Ok(Resp::from(r)),
        Err(ureq::Error::Status(_, r)) => Ok(Resp::from(r)),
        Err(ureq::Error::Transport(t)) => Err(format!("{:?}: {t}", t.kind())),
    }
}

/// The reset token the webhook received for `email` (a reset request claimed by a killed instance
/// is taken over when its lease ends).
fn reset_token(receiver: &Receiver, email: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = receiver.hits().iter().find_map(|hit| {
            let envelope: Value = serde_json::from_str(&hit.body).ok()?;
            (envelope["name"] == "auth.password_reset" && envelope["data"]["entity_id"] == email)
                .then(|| envelope["data"]["token"].as_str().unwrap().to_string())
        });
        if let Some(token) = found {
            return token;
        }
        assert!(Instant::now() < deadline, "no reset event for {email} within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the load shares: the instances' ports, the receiver, and what was seen.
struct Load<'a> {
    ports: [u16; 3],
    receiver: &'a Receiver,
    next: AtomicUsize,
    stop: AtomicBool,
    /// (port, request, error) of every request that got no answer.
    cut: Mutex<Vec<(u16, String, String)>>,
    /// Answers per (port, status).
    answers: Mutex<HashMap<(u16, u16), usize>>,
    journeys_done: AtomicUsize,
    journeys_cut: AtomicUsize,
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits until `check` holds, up to 20 s.
fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A journey ended by a request that got no answer: its account is left as it is.
struct Cut;

impl Load<'_> {
    /// The next instance, round-robin across every request of every thread.
    fn port(&self) -> u16 {
        self.ports[self.next.fetch_add(1, Ordering::SeqCst) % 3]
    }

    /// One request to the next instance; it must answer `expected` if it answers at all, and no
    /// answer is ever a 5xx.
    fn send(
        &self,
        expected: u16,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, Cut> {
        let port = self.port();
        match call(port, method, path, body, headers) {
            Ok(r) => {
                *self.answers.lock().unwrap().entry((port, r.status)).or_default() += 1;
                assert!(r.status < 500, "{method} {path} on :{port}: {} {}", r.status, r.text);
                assert_eq!(r.status, expected, "{method} {path} on :{port}: {}", r.text);
                Ok(r)
            }
            Err(e) => {
                self.cut.lock().unwrap().push((port, format!("{method} {path}"), e));
                Err(Cut)
            }
        }
    }

    fn bearer(&self, expected: u16, path: &str, body: &str, token: &str) -> Result<Resp, Cut> {
        self.send(expected, "POST", path, Some(body), &[("authorization", &format!("Bearer {token}"))])
    }

    /// `token` is refused by refresh within `REVOCATION_BOUND` of now: each try goes to the next
    /// instance, and a 200 is an instance whose identity cache has not yet heard of the change.
    fn refused(&self, token: &str) -> Result<(), Cut> {
        let since = Instant::now();
        loop {
            let port = self.port();
            let headers = [("authorization", format!("Bearer {token}"))];
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match call(port, "POST", "/auth/token/refresh", Some(""), &headers) {
                Ok(r) => {
                    *self.answers.lock().unwrap().entry((port, r.status)).or_default() += 1;
                    if r.status == 401 {
                        return Ok(());
                    }
                    assert_eq!(r.status, 200, "refresh of a revoked token on :{port}: {}", r.text);
                    assert!(
                        since.elapsed() < REVOCATION_BOUND,
                        "a revoked token still refreshed on :{port} {:?} after the revocation",
                        since.elapsed()
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => {
                    self.cut.lock().unwrap().push((port, "POST /auth/token/refresh".into(), e));
                    return Err(Cut);
                }
            }
        }
    }

    fn with_cookie(&self, expected: u16, method: &str, path: &str, session: &str) -> Result<Resp, Cut> {
        self.send(expected, method, path, Some(""), &[("cookie", &format!("connect.sid={session}"))])
    }

    /// One customer's life, each request on the next instance.
    fn journey(&self, email: &str) -> Result<(), Cut> {
        let registration = self
            .send(200, "POST", "/auth/customer/emailpass/register", Some(&credentials(email, PASSWORD)), &[])?
            .token();
        let login = self.send(200, "POST", LOGIN, Some(&credentials(email, PASSWORD)), &[])?.token();
        let refreshed = self.bearer(200, "/auth/token/refresh", "", &login)?.token();
        let session = self.bearer(200, "/auth/session", "", &refreshed)?.cookie("connect.sid").unwrap();
        self.with_cookie(200, "POST", "/auth/token/refresh", &session)?;
        self.with_cookie(200, "DELETE", "/auth/session", &session)?;
        self.send(
            201,
            "POST",
            "/auth/customer/emailpass/reset-password",
            Some(&json!({ "identifier": email }).to_string()),
            &[],
        )?;
        let reset = reset_token(self.receiver, email);
        self.bearer(200, UPDATE, &json!({ "password": SECOND_PASSWORD }).to_string(), &reset)?;
        // The reset changed the stamp: the tokens of before are refused everywhere.
        self.refused(&registration)?;
        let second = self.send(200, "POST", LOGIN, Some(&credentials(email, SECOND_PASSWORD)), &[])?.token();
        let change = json!({ "old_password": SECOND_PASSWORD, "new_password": THIRD_PASSWORD }).to_string();
        self.bearer(200, CHANGE_PASSWORD, &change, &second)?;
        self.refused(&second)?;
        let third = self.send(200, "POST", LOGIN, Some(&credentials(email, THIRD_PASSWORD)), &[])?.token();
        self.bearer(200, "/auth/logout-all", "", &third)?;
        self.refused(&third)?;
        Ok(())
    }
}

/// The three instances under a mixed load, one of them killed with SIGKILL and restarted on its
/// port; then the state they share, checked through all three.
#[test]
fn three_instances_on_one_postgresql_under_load_with_a_sigkill() {
    let Some(env) = TestEnv::new(Backend::Postgres) else { return };
    let started = Instant::now();
    let receiver = Receiver::start(200);
    let settings = settings(&receiver);
    let overrides = pairs(&settings);
    let mut servers: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::start(&env, &overrides)).collect();
    let ports = [servers[0].port, servers[1].port, servers[2].port];

    // The load: six threads, each through one account after another, every request on the next
    // instance. The second instance is killed once the load is under way and restarted on its
    // port 1 s later.
    let load = Load {
        ports,
        receiver: &receiver,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        cut: Mutex::new(Vec::new()),
        answers: Mutex::new(HashMap::new()),
        journeys_done: AtomicUsize::new(0),
        journeys_cut: AtomicUsize::new(0),
    };
    let (killed_at, restarted_at) = std::thread::scope(|s| {
        for lane in 0..6 {
            let load = &load;
            s.spawn(move || {
                let mut n = 0;
                while !load.stop.load(Ordering::SeqCst) {
                    let email = crate::helpers::email(&format!("lane{lane}n{n}"));
                    n += 1;
                    match load.journey(&email) {
                        Ok(()) => load.journeys_done.fetch_add(1, Ordering::SeqCst),
                        Err(Cut) => load.journeys_cut.fetch_add(1, Ordering::SeqCst),
                    };
                }
            });
        }
        // However this thread leaves the scope (a failed start included), the load stops.
        let _stop = StopOnDrop(&load.stop);
        let served_by = |port: u16| -> usize {
            load.answers.lock().unwrap().iter().filter(|((p, _), _)| *p == port).map(|(_, n)| n).sum()
        };
        // The kill comes once six journeys are done (about 1.5 s) and the load is in full swing.
        until("six journeys are done before the kill", || load.journeys_done.load(Ordering::SeqCst) >= 6);
        servers[1].kill();
        let killed_at = (Instant::now(), receiver.hits().len());
        std::thread::sleep(Duration::from_secs(1));
        let port = ports[1].to_string();
        let mut with_port = overrides.clone();
        with_port.push(("PORT", &port));
        servers[1] = ServerProcess::start(&env, &with_port);
        let restarted_at = Instant::now();
        let (served, done) = (served_by(ports[1]), load.journeys_done.load(Ordering::SeqCst));
        // The load goes on for at least 2.5 s after the restart, until the restarted instance has
        // answered 30 requests and six more journeys are done.
        std::thread::sleep(Duration::from_millis(2500));
        until("the restarted instance takes its share", || {
            served_by(ports[1]) >= served + 30 && load.journeys_done.load(Ordering::SeqCst) >= done + 6
        });
        (killed_at, restarted_at)
    });
    assert_eq!(servers[1].port, ports[1], "restarted on its port");

    let cut = load.cut.lock().unwrap().clone();
    let answered: usize = load.answers.lock().unwrap().values().sum();
    for (port, request, error) in &cut {
        assert_eq!(*port, ports[1], "{request}: no answer from a live instance :{port}: {error}");
    }
    assert!(!cut.is_empty(), "requests reached the killed instance while it was down");
    let (done, abandoned) = (load.journeys_done.load(Ordering::SeqCst), load.journeys_cut.load(Ordering::SeqCst));

    // The state the instances share, checked through all three.
    let clients: Vec<Client> = ports.iter().map(|p| Client::new(*p)).collect();
    single_use_reset_tokens(&clients, &receiver);
    the_per_email_throttle_spans_instances(&clients);
    let bound = revocation_on_one_is_honoured_on_the_others(&clients);

    // Every event the database holds reached the webhook; by id, once. A SIGKILL can cut one
    // delivery between the receiver's 200 and its record (the dispatcher delivers one at a time):
    // that one, and only that one, may come a second time, from another instance once the lease
    // ends ("at least once per sink", docs/events.md). Nothing else is ever repeated.
    let mut db = env.db();
    crate::helpers::eventually("every delivery is done", || {
        db.text("SELECT CAST(COUNT(*) AS TEXT) AS v FROM event_delivery WHERE delivered_at IS NULL") == "0"
    });
    let stored: Vec<String> = db.texts("SELECT id AS v FROM event ORDER BY id");
    assert_eq!(
        db.text("SELECT CAST(COUNT(*) AS TEXT) AS v FROM event_delivery WHERE sink <> 'webhook'"),
        "0",
        "the webhook is the only sink"
    );
    std::thread::sleep(Duration::from_millis(300));
    let hits = receiver.hits();
    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    for (n, hit) in hits.iter().enumerate() {
        let id = verify(hit)["id"].as_str().unwrap().to_string();
        seen.entry(id).or_default().push(n);
    }
    let missing: Vec<&String> = stored.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} of {} events never reached the webhook: {missing:?}", missing.len(), stored.len());
    let unknown: Vec<&String> = seen.keys().filter(|id| !stored.contains(id)).collect();
    assert!(unknown.is_empty(), "the webhook got events the database does not hold: {unknown:?}");
    let repeated: Vec<(&String, &Vec<usize>)> = seen.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(repeated.len() <= 1, "more than the one delivery a SIGKILL can cut came twice: {repeated:?}");
    for (id, at) in &repeated {
        assert_eq!(at.len(), 2, "{id} delivered {} times", at.len());
        // The receiver had `killed_at.1` calls when the kill came: one before it, one after.
        assert!(at[0] < killed_at.1 && at[1] >= killed_at.1, "{id} came twice, but not across the kill");
    }

    let _ = std::io::stderr().write_all(
        format!(
            "three instances: {done} journeys done, {abandoned} cut by the kill; {answered} answers, none 5xx; \
             {} requests without an answer, all to the killed instance; killed for {:?}; {} events, {} delivered twice across the kill; \
             revocation honoured on the other instances {bound:?} after the answer; {:?} in all\n",
            cut.len(),
            restarted_at - killed_at.0,
            stored.len(),
            repeated.len(),
            started.elapsed()
        )
        .as_bytes(),
    );
    drop(servers);
}

/// A reset token used on one instance is refused on the two others; and of the three instances
/// raced with one token, exactly one accepts it.
fn single_use_reset_tokens(clients: &[Client], receiver: &Receiver) {
    let body = json!({ "password": SECOND_PASSWORD }).to_string();

    let used = crate::helpers::email("used");
    clients[0].registered(&used);
    assert_eq!(clients[1].request_reset(&used).status, 201);
    let token = reset_token(receiver, &used);
    let r = clients[0].update(&token, &body);
    assert_eq!(r.status, 200, "{}", r.text);
    for client in &clients[1..] {
        let r = client.update(&token, &json!({ "password": THIRD_PASSWORD }).to_string());
        assert_eq!(r.status, 401, "a used token on {}: {}", client.base, r.text);
    }
    assert_eq!(clients[2].login(&used, SECOND_PASSWORD).status, 200, "the first use holds");
    assert_eq!(clients[1].login(&used, THIRD_PASSWORD).status, 401, "no second use");

    for round in 0..3 {
        let raced = crate::helpers::email(&format!("raced{round}"));
        clients[round].registered(&raced);
        assert_eq!(clients[round].request_reset(&raced).status, 201);
        let token = reset_token(receiver, &raced);
        let passwords = ["raced one horse battery", "raced two horse battery", "raced three horse battery"];
        let responses = crate::helpers::concurrently(6, |i| {
            clients[i % 3].update(&token, &json!({ "password": passwords[i % 3] }).to_string())
        });
        let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one use of a raced token: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
        let winner = passwords[statuses.iter().position(|s| *s == 200).unwrap() % 3];
        for client in clients {
            assert_eq!(client.login(&raced, winner).status, 200, "the winner's password holds");
        }
    }
}

/// Wrong passwords for one email sent at once through the three instances: at most
/// `LOGIN_FAILURE_LIMIT_ACCOUNT` of them reach the verification, the others are 429, and the
/// bucket they share then holds the right password out on every instance.
fn the_per_email_throttle_spans_instances(clients: &[Client]) {
    let who = crate::helpers::email("throttled");
    clients[0].registered(&who);
    let responses = crate::helpers::concurrently(30, |i| clients[i % 3].login(&who, "a wrong passphrase"));
    for r in &responses {
        assert!(r.status == 401 || r.status == 429, "{} {}", r.status, r.text);
    }
    let unauthorized = responses.iter().filter(|r| r.status == 401).count();
    assert!(
        (1..=ACCOUNT_FAILURES).contains(&unauthorized),
        "{unauthorized} of 30 wrong passwords through three instances reached the check, against {ACCOUNT_FAILURES}"
    );
    for client in clients {
        assert_eq!(client.login(&who, PASSWORD).status, 429, "the bucket is spent on {}", client.base);
    }
}

/// A logout-all on one instance, and a password change on another: the tokens and the session of
/// before are refused on the others within `REVOCATION_BOUND` of the answer (the identity cache
/// hears of the change through PostgreSQL's notifications). Returns the longest time from an
/// answer to the refusals on the other instances.
fn revocation_on_one_is_honoured_on_the_others(clients: &[Client]) -> Duration {
    let who = crate::helpers::email("revoked");
    clients[0].registered(&who);
    let mut longest = Duration::ZERO;
    // Logout-all on the first instance, then a password change on the second (the last round).
    for (by, kind) in [(0, "logout-all"), (1, "change-password")] {
        let token = clients[2].login(&who, PASSWORD).token();
        let session = clients[1].open_session(&token);
        for client in clients {
            assert_eq!(client.refresh(&token).status, 200, "valid before, on {}", client.base);
        }
        let bearer = format!("Bearer {token}");
        let r = if kind == "logout-all" {
            clients[by].post_with("/auth/logout-all", "", &[("authorization", &bearer)])
        } else {
            let body = json!({ "old_password": PASSWORD, "new_password": SECOND_PASSWORD }).to_string();
            clients[by].post_with(CHANGE_PASSWORD, &body, &[("authorization", &bearer)])
        };
        assert_eq!(r.status, 200, "{kind}: {}", r.text);
        let answered = Instant::now();
        for (i, client) in clients.iter().enumerate().filter(|(i, _)| *i != by) {
            loop {
                let status = client.refresh(&token).status;
                if status == 401 {
                    break;
                }
                assert_eq!(status, 200, "{kind} on instance {by}: the token on instance {i}");
                assert!(
                    answered.elapsed() < REVOCATION_BOUND,
                    "{kind} on instance {by}: the token still refreshed on instance {i} after {:?}",
                    answered.elapsed()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            // Sessions are read from the database on every request: refused at once.
            let r = client.with_session("POST", "/auth/token/refresh", &session, None);
            assert_eq!(r.status, 401, "{kind} on instance {by}: the session on instance {i}");
        }
        longest = longest.max(answered.elapsed());
    }
    longest
}
