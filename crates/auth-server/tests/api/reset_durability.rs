//! A reset request is never lost once answered: reset-password records the request before its
//! 201, so a server killed right after the answer (SIGKILL, before any worker ran) delivers the
//! reset event after a restart on the same database.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{email, read_events, wait_for_events, Backend, ServerProcess, TestEnv, PASSWORD};
use crate::on_both_backends;

on_both_backends!(a_reset_answered_before_a_kill_is_delivered_after_the_restart);

fn a_reset_answered_before_a_kill_is_delivered_after_the_restart(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    // The worker of this first server would take the requests only an hour after they were
    // recorded (RESET_REQUEST_DELAY, for tests): it is killed long before.
    let mut server = ServerProcess::start(&env, &[("RESET_REQUEST_DELAY", "1h")]);
    let api = server.api();
    let who = email("durable");
    assert_eq!(api.register(&who, PASSWORD).status, 200);
    for identifier in [who.as_str(), "nobody@example.com"] {
        let r = api.request_reset(identifier);
        assert_eq!((r.status, r.text.as_str()), (201, "Created"));
    }
    server.kill();

    // Killed after the answers, before any work: no token, no event, two sealed requests (an
    // account's and an unknown identifier's alike).
    let mut db = env.db();
    assert!(read_events(&env.events_file).iter().all(|e| e["name"] != "auth.password_reset"));
    assert_eq!(db.count("password_reset_token"), 0);
    assert_eq!(db.count("reset_request"), 2);
    let stored = db.texts("SELECT sealed || ' ' || tenant_id || ' ' || actor_type AS v FROM reset_request");
    assert!(stored.iter().all(|row| !row.contains('@') && row.starts_with("xa1.")), "sealed: {stored:?}");

    // A restart on the same database takes them up: the event arrives, once, and its link works.
    let server = ServerProcess::start(&env, &[]);
    let events = wait_for_events(&env.events_file, "auth.password_reset", 1);
    assert_eq!(events[0]["data"]["entity_id"], who.as_str(), "{}", events[0]);
    crate::helpers::eventually("the requests are deleted", || env.db().count("reset_request") == 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(wait_for_events(&env.events_file, "auth.password_reset", 1).len(), 1, "delivered once");
    assert_eq!(env.db().count("password_reset_token"), 1);
    let token = events[0]["data"]["token"].as_str().unwrap();
    let api = server.api();
    let update = api.update(token, &json!({ "password": "a brand new passphrase" }).to_string());
    assert_eq!(update.status, 200, "{}", update.text);
    assert_eq!(api.login(&who, "a brand new passphrase").status, 200);
}
