use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(events_are_delivered_once_as_envelopes, an_undelivered_event_survives_a_restart);

fn events_are_delivered_once_as_envelopes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    app.request_reset("ann@example.com");
    let events = app.wait_for_events("auth.password_reset", 1);
    let e = &events[0];
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "name", "tenant", "created_at", "data"]);
    let created = e["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == "2026-11-27T17:54:05.123Z".len(), "{created}");
    let data_keys: Vec<&str> = e["data"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(data_keys, ["entity_id", "actor_type", "token", "metadata"]);
    assert_eq!(e["data"]["metadata"], json!({}));
    // Delivered once; the sealed token is erased once every sink has it.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(app.events().len(), 1);
    let mut db = app.db();
    assert_eq!(db.text("SELECT CAST(COUNT(*) AS TEXT) AS v FROM event WHERE sealed_secret IS NULL"), "1");
    assert_eq!(db.text("SELECT CAST(COUNT(*) AS TEXT) AS v FROM event_delivery WHERE delivered_at IS NOT NULL"), "1");
}

fn an_undelivered_event_survives_a_restart(backend: Backend) {
    let Some(env) = crate::helpers::TestEnv::new(backend) else {
        return;
    };
    // The file sink cannot write while its folder is missing: every attempt fails.
    let folder = env.dir.path().join("outbox");
    let events_file = folder.join("events.jsonl").to_string_lossy().into_owned();
    let app = TestApp::start(env, &[("EVENTS_FILE", &events_file)]);
    app.registered("ann@example.com");
    assert_eq!(app.request_reset("ann@example.com").status, 201);
    let mut db = app.db();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.count("event") == 0 {
        assert!(std::time::Instant::now() < deadline, "no event in 10 s");
        std::thread::sleep(Duration::from_millis(25));
    }
    let id = db.text("SELECT id AS v FROM event");
    assert!(id.starts_with("evt_"));
    while db.text("SELECT CAST(attempts AS TEXT) AS v FROM event_delivery") == "0" {
        assert!(std::time::Instant::now() < deadline, "no delivery attempt in 10 s");
        std::thread::sleep(Duration::from_millis(25));
    }
    let error = db.text("SELECT last_error AS v FROM event_delivery");
    assert!(error.contains("events.jsonl"), "the failed attempt is recorded: {error}");
    drop(db);
    let env = app.stop();
    std::fs::create_dir_all(&folder).unwrap();
    let mut env = env;
    env.events_file = folder.join("events.jsonl");
    let app = TestApp::start(env, &[("EVENTS_FILE", &events_file)]);
    let events = app.wait_for_events("auth.password_reset", 1);
    assert_eq!(events[0]["id"], id.as_str(), "the same event, after the restart");
    assert!(events[0]["data"]["token"].as_str().unwrap().starts_with("eyJ"));
}
