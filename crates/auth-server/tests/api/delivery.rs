//! Event delivery against real receivers: a webhook receiver that checks signatures, retries
//! with growing delays, dead deliveries re-armed from the CLI, a SIGKILL, and two instances.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::{Backend, ServerProcess, TestApp, TestEnv};
use crate::on_both_backends;

pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

on_both_backends!(
    webhooks_are_signed_and_carry_the_event_id,
    a_failing_receiver_gets_growing_retries_then_a_dead_delivery_that_can_be_retried,
    a_sigkill_loses_no_event,
    each_sink_keeps_its_own_state,
);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    at: Instant,
    headers: HashMap<String, String>,
    pub(crate) body: String,
}

/// A webhook receiver on loopback that answers every request with `status`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    status: Arc<AtomicU16>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    pub(crate) fn start(status: u16) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), status)
    }

    fn on(listener: TcpListener, status: u16) -> Receiver {
        let url = format!("http://{}/hooks/auth", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(status));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (answer, record) = (status.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream);
                let mut headers = HashMap::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or_default();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or_default() == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                record.lock().unwrap().push(Hit {
                    at: Instant::now(),
                    headers,
                    body: String::from_utf8_lossy(&body).into(),
                });
                let code = answer.load(Ordering::SeqCst);
                let _ = reader.get_mut().write_all(
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
                );
            }
        });
        Receiver { url, status, hits }
    }

    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub(crate) fn wait_for(&self, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(Instant::now() < deadline, "waited 15 s for {n} webhook calls, got {}", hits.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Checks a Standard Webhooks signature.
pub(crate) fn verify(hit: &Hit) -> Value {
    let key = STANDARD.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let (id, ts) = (&hit.headers["webhook-id"], &hit.headers["webhook-timestamp"]);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", hit.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(hit.headers["webhook-signature"], expected, "the signature verifies");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(ts.parse().unwrap()) < 60, "a current timestamp");
    let envelope: Value = serde_json::from_str(&hit.body).unwrap();
    assert_eq!(envelope["id"], id.as_str(), "webhook-id is the event id");
    envelope
}

fn webhook(receiver: &Receiver) -> [(&'static str, String); 3] {
    [("WEBHOOK_URL", receiver.url.clone()), ("WEBHOOK_SECRET", SECRET.into()), ("EVENTS_FILE", String::new())]
}

fn with<'a>(pairs: &'a [(&'static str, String)], more: &[(&'static str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).chain(more.iter().copied()).collect()
}

fn webhooks_are_signed_and_carry_the_event_id(backend: Backend) {
    let receiver = Receiver::start(200);
    let Some(app) = TestApp::spawn_with(backend, &with(&webhook(&receiver), &[])) else { return };
    app.registered("ann@example.com");
    assert_eq!(app.request_reset("ann@example.com").status, 201);
    let hits = receiver.wait_for(1);
    let hit = &hits[0];
    assert_eq!(hit.headers["content-type"], "application/json");
    let envelope = verify(hit);
    assert_eq!(envelope["name"], "auth.password_reset");
    assert_eq!(envelope["data"]["entity_id"], "ann@example.com");
    let token = envelope["data"]["token"].as_str().unwrap();
    assert_eq!(app.update(token, r#"{"password":"a new passphrase"}"#).status, 200);
    let hits = receiver.wait_for(2);
    assert_eq!(verify(&hits[1])["name"], "auth.password_changed");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.hits().len(), 2, "each event once");
}

fn xclade_auth(env: &TestEnv, overrides: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_xclade-auth"))
        .env_clear()
        .envs(env.config(overrides))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn a_failing_receiver_gets_growing_retries_then_a_dead_delivery_that_can_be_retried(backend: Backend) {
    let receiver = Receiver::start(500);
    let settings = webhook(&receiver);
    let overrides = with(&settings, &[("EVENT_RETRY_INITIAL", "250ms"), ("EVENT_MAX_ATTEMPTS", "3")]);
    let Some(app) = TestApp::spawn_with(backend, &overrides) else { return };
    app.registered("ann@example.com");
    app.request_reset("ann@example.com");
    let hits = receiver.wait_for(3);
    let (first, second) = (hits[1].at - hits[0].at, hits[2].at - hits[1].at);
    assert!(first >= Duration::from_millis(190), "the first retry waits: {first:?}");
    assert!(second > first, "the delay grows: {first:?} then {second:?}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.hits().len(), 3, "no attempt after the last one allowed");
    let event_id = verify(&hits[0])["id"].as_str().unwrap().to_string();

    let dead = xclade_auth(app.env(), &overrides, &["events", "list", "--status", "dead"]);
    let line = dead.lines().find(|l| l.starts_with(&event_id)).unwrap_or_else(|| panic!("not listed: {dead}"));
    for part in ["auth.password_reset", "webhook", "dead", "attempts=3", "HTTP 500"] {
        assert!(line.contains(part), "{line} lacks {part}");
    }
    assert!(!dead.contains("eyJ"), "no token in the listing");

    receiver.status.store(200, Ordering::SeqCst);
    let out = xclade_auth(app.env(), &overrides, &["events", "retry", &event_id]);
    assert!(out.contains("re-armed 1"), "{out}");
    let hits = receiver.wait_for(4);
    assert_eq!(verify(&hits[3])["id"], event_id.as_str(), "delivered once the receiver is back");
    let delivered = xclade_auth(app.env(), &overrides, &["events", "list", "--status", "delivered"]);
    assert!(delivered.contains(&event_id), "{delivered}");
}

fn a_sigkill_loses_no_event(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    // The receiver's address is reserved, but nothing listens there yet: the receiver is down.
    let reserved = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = reserved.local_addr().unwrap();
    drop(reserved);
    let settings = [
        ("WEBHOOK_URL", format!("http://{address}/hooks/auth")),
        ("WEBHOOK_SECRET", SECRET.to_string()),
        ("EVENTS_FILE", String::new()),
        ("EVENT_RETRY_INITIAL", "100ms".to_string()),
        // A delivery in flight at the SIGKILL is claimed again once this lease ends.
        ("EVENT_LEASE", "2s".to_string()),
    ];
    let overrides = with(&settings, &[]);
    let mut server = ServerProcess::start(&env, &overrides);
    let client = crate::helpers::Client::new(server.port);
    client.registered("ann@example.com");
    assert_eq!(client.request_reset("ann@example.com").status, 201, "committed");
    std::thread::sleep(Duration::from_millis(300));
    server.kill();
    let mut db = env.db();
    let id = db.text("SELECT id AS v FROM event WHERE name = 'auth.password_reset'");
    assert_eq!(db.text("SELECT CAST(COUNT(*) AS TEXT) AS v FROM event_delivery WHERE delivered_at IS NULL"), "1");
    drop(db);

    let receiver = Receiver::on(TcpListener::bind(address).unwrap(), 200);
    let mut server = ServerProcess::start(&env, &overrides);
    let hits = receiver.wait_for(1);
    let envelope = verify(&hits[0]);
    assert_eq!(envelope["id"], id.as_str(), "the same event, after the restart");
    assert!(envelope["data"]["token"].as_str().unwrap().starts_with("eyJ"));
    server.kill();
}

/// Two instances on one PostgreSQL: each event reaches the webhook once.
#[test]
fn two_instances_deliver_each_event_once() {
    let receiver = Receiver::start(200);
    let settings = webhook(&receiver);
    let overrides = with(&settings, &[("EVENT_POLL_INTERVAL", "20ms")]);
    let Some(first) = TestApp::spawn_with(Backend::Postgres, &overrides) else { return };
    let second = first.sibling(&overrides);
    for i in 0..10 {
        first.registered(&format!("user{i}@example.com"));
    }
    for i in 0..10 {
        let app = if i % 2 == 0 { &first } else { &second };
        assert_eq!(app.request_reset(&format!("user{i}@example.com")).status, 201);
    }
    receiver.wait_for(10);
    std::thread::sleep(Duration::from_millis(500));
    let mut ids: Vec<String> = receiver.hits().iter().map(|h| h.headers["webhook-id"].clone()).collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), total), (10, 10), "ten events, each delivered once");
}

/// A failing sink never makes another deliver twice.
fn each_sink_keeps_its_own_state(backend: Backend) {
    let receiver = Receiver::start(200);
    let settings = webhook(&receiver);
    let overrides = with(
        &settings,
        &[
            ("SMTP_URL", "smtp://127.0.0.1:1"),
            ("EMAIL_FROM", "Shop <no-reply@shop.example>"),
            ("NATS_URL", "nats://127.0.0.1:1"),
            ("EVENT_RETRY_INITIAL", "100ms"),
            ("EVENT_MAX_ATTEMPTS", "2"),
        ],
    );
    let Some(app) = TestApp::spawn_with(backend, &overrides) else { return };
    app.registered("ann@example.com");
    app.request_reset("ann@example.com");
    let deadline = Instant::now() + Duration::from_secs(30);
    let listing = loop {
        let listing = xclade_auth(app.env(), &overrides, &["events", "list"]);
        if listing.lines().filter(|l| l.contains("\tdead\t")).count() == 2 {
            break listing;
        }
        assert!(Instant::now() < deadline, "email and nats never became dead: {listing}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let status = |sink: &str| {
        listing
            .lines()
            .find(|l| l.split('\t').nth(2) == Some(sink))
            .and_then(|l| l.split('\t').nth(3))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (status("webhook"), status("email"), status("nats")),
        ("delivered".into(), "dead".into(), "dead".into())
    );
    assert_eq!(receiver.hits().len(), 1, "the webhook got the event once while the others kept failing");
}
