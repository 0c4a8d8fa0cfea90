//! The concurrency rules of design §2, each with 20 concurrent requests.

use std::collections::HashSet;

use serde_json::json;

use crate::helpers::{claims, concurrently, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

const N: usize = 20;

on_both_backends!(
    racing_registrations_create_one_identity,
    racing_updates_with_one_token_succeed_once,
    racing_reset_requests_leave_one_live_token,
    a_rehash_never_undoes_a_concurrent_reset,
);

fn racing_registrations_create_one_identity(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let responses = concurrently(N, |i| {
        let password = if i % 2 == 0 { PASSWORD } else { "another passphrase" };
        app.register("race@example.com", password)
    });
    let mut identities = HashSet::new();
    for r in &responses {
        match r.status {
            200 => {
                identities.insert(claims(&r.token())["auth_identity_id"].as_str().unwrap().to_string());
            }
            401 => {
                assert_eq!(r.json(), json!({"type": "unauthorized", "message": "Identity with email already exists"}))
            }
            other => panic!("a loser saw {other}: {}", r.text),
        }
    }
    assert_eq!(identities.len(), 1, "every token names the one identity");
    assert_eq!(app.db().count("auth_identity"), 1);
    assert_eq!(app.db().count("provider_identity"), 1);
}

fn racing_updates_with_one_token_succeed_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    let token = app.reset_token("ann@example.com");
    let responses =
        concurrently(N, |i| app.update(&token, &json!({ "password": format!("new passphrase {i}") }).to_string()));
    let winners: Vec<usize> = (0..N).filter(|&i| responses[i].status == 200).collect();
    assert_eq!(winners.len(), 1, "{:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());
    for r in responses.iter().filter(|r| r.status != 200) {
        r.assert_json(401, json!({"type": "unauthorized", "message": "Invalid token"}));
    }
    assert_eq!(app.login("ann@example.com", &format!("new passphrase {}", winners[0])).status, 200);
    assert_eq!(app.wait_for_events("auth.password_changed", 1).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(app.events().iter().filter(|e| e["name"] == "auth.password_changed").count(), 1);
}

fn racing_reset_requests_leave_one_live_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    let responses = concurrently(N, |_| app.request_reset("ann@example.com"));
    assert!(responses.iter().all(|r| r.status == 201), "{:?}", responses.iter().map(|r| &r.text).collect::<Vec<_>>());
    let events = app.wait_for_events("auth.password_reset", N);
    assert_eq!(app.db().count("password_reset_token"), 1);
    // Only the live token sets a password; the replaced ones are refused.
    let statuses: Vec<u16> = events
        .iter()
        .map(|e| app.update(e["data"]["token"].as_str().unwrap(), r#"{"password":"a new passphrase"}"#).status)
        .collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), N - 1, "{statuses:?}");
}

fn a_rehash_never_undoes_a_concurrent_reset(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    let token = app.reset_token("ann@example.com");
    // At another cost every successful login rehashes; one request resets meanwhile.
    let app = app.restart(&[("BCRYPT_COST", "6"), ("HASH_CONCURRENCY", "4")]);
    let responses = concurrently(N + 1, |i| {
        if i == N / 2 {
            app.update(&token, r#"{"password":"the reset passphrase"}"#)
        } else {
            app.login("ann@example.com", PASSWORD)
        }
    });
    assert_eq!(responses[N / 2].status, 200, "{}", responses[N / 2].text);
    assert!(responses.iter().all(|r| r.status == 200 || r.status == 401));
    assert_eq!(app.login("ann@example.com", "the reset passphrase").status, 200, "the reset stands");
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 401, "no rehash brought the old password back");
}
