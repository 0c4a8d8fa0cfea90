//! Rate limits and login throttles, each set explicitly; one suite with the defaults.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{credentials, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    the_client_budget_answers_429_and_recovers,
    failed_logins_are_throttled_alike_for_unknown_emails,
    the_account_budget_spans_addresses_behind_a_trusted_proxy,
    a_reset_inside_the_interval_does_nothing_and_says_created,
    the_defaults_protect_out_of_the_box,
);

#[track_caller]
fn assert_429(r: &crate::helpers::Resp) -> u64 {
    assert_eq!((r.status, r.content_type.as_str()), (429, "application/json"), "{}", r.text);
    assert_eq!(r.json()["type"], "too_many_requests");
    let retry_after: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(retry_after >= 1);
    retry_after
}

fn limits(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all = vec![("RATE_LIMIT_ENABLED", "true")];
    all.extend_from_slice(extra);
    all
}

fn the_client_budget_answers_429_and_recovers(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &limits(&[("RATE_LIMIT_PER_IP", "3/9s")])) else { return };
    // Register, login and reset-password spend one budget.
    assert_eq!(app.register("ann@example.com", PASSWORD).status, 200);
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 200);
    assert_eq!(app.request_reset("ann@example.com").status, 201);
    app.wait_for_events("auth.password_reset", 1);
    let before = app.db().fingerprint();
    let r = app.login("ann@example.com", PASSWORD);
    assert!(assert_429(&r) <= 3, "one request back every 3 seconds");
    assert_429(&app.register("bob@example.com", PASSWORD));
    assert_429(&app.request_reset("ann@example.com"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(app.db().fingerprint(), before, "a refused request does nothing");
    // Other routes are not counted.
    assert_eq!(app.request("GET", "/auth/customer/providers", None, &[]).status, 200);
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 200, "recovered after the window");
}

fn failed_logins_are_throttled_alike_for_unknown_emails(backend: Backend) {
    let overrides = limits(&[("LOGIN_FAILURE_LIMIT", "2/6s"), ("RATE_LIMIT_PER_IP", "1000/1m")]);
    let Some(app) = TestApp::spawn_with(backend, &overrides) else { return };
    app.registered("ann@example.com");
    for email in ["ann@example.com", "nobody@example.com"] {
        for _ in 0..2 {
            assert_eq!(app.login(email, "a wrong passphrase").status, 401, "{email}");
        }
        assert_429(&app.login(email, "a wrong passphrase"));
    }
    // Throttled, the right password waits too (no oracle), and other emails are not affected.
    assert_429(&app.login("ann@example.com", PASSWORD));
    app.registered("bob@example.com");
    assert_eq!(app.login("bob@example.com", PASSWORD).status, 200);
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 200, "recovered: never a permanent lockout");
    // A success resets the count.
    assert_eq!(app.login("ann@example.com", "a wrong passphrase").status, 401);
    assert_eq!(app.login("ann@example.com", "a wrong passphrase").status, 401);
    assert_429(&app.login("ann@example.com", "a wrong passphrase"));
}

fn the_account_budget_spans_addresses_behind_a_trusted_proxy(backend: Backend) {
    let overrides = limits(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("LOGIN_FAILURE_LIMIT", "100/1m"),
        ("LOGIN_FAILURE_LIMIT_ACCOUNT", "3/1h"),
        ("RATE_LIMIT_PER_IP", "2/1m"),
    ]);
    let Some(app) = TestApp::spawn_with(backend, &overrides) else { return };
    let from = |ip: &str, email: &str, password: &str| {
        app.post_with("/auth/customer/emailpass", &credentials(email, password), &[("x-forwarded-for", ip)])
    };
    // Behind the trusted proxy, each X-Forwarded-For address has its own budget of 2.
    assert_eq!(
        app.post_with(
            "/auth/customer/emailpass/register",
            &credentials("ann@example.com", PASSWORD),
            &[("x-forwarded-for", "198.51.100.1")]
        )
        .status,
        200
    );
    assert_eq!(from("198.51.100.1", "ann@example.com", "wrong passphrase").status, 401);
    assert_429(&from("198.51.100.1", "ann@example.com", "wrong passphrase"));
    // A client cannot pick its address by prepending hops: the rightmost untrusted one counts.
    assert_429(&from("203.0.113.50, 198.51.100.1", "ann@example.com", "wrong passphrase"));
    assert_eq!(from("198.51.100.2", "ann@example.com", "wrong passphrase").status, 401);
    assert_eq!(from("198.51.100.3", "ann@example.com", "wrong passphrase").status, 401);
    // Three failures from three addresses spent the account's budget: a fourth address waits.
    assert_429(&from("198.51.100.4", "ann@example.com", PASSWORD));
    assert_eq!(from("198.51.100.4", "nobody@example.com", "x").status, 401, "other accounts go on");
}

fn a_reset_inside_the_interval_does_nothing_and_says_created(backend: Backend) {
    let overrides = limits(&[("RESET_PASSWORD_INTERVAL", "1s"), ("RATE_LIMIT_PER_IP", "1000/1m")]);
    let Some(app) = TestApp::spawn_with(backend, &overrides) else { return };
    app.registered("ann@example.com");
    let first = app.reset_token("ann@example.com");
    for identifier in ["ann@example.com", " ANN@example.com", "nobody@example.com", "nobody@example.com"] {
        let r = app.request_reset(identifier);
        assert_eq!((r.status, r.text.as_str()), (201, "Created"));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(app.events().len(), 1, "no second token, no second event");
    assert_eq!(app.update(&first, r#"{"password":"a new passphrase"}"#).status, 200, "the link sent first still works");
    std::thread::sleep(Duration::from_millis(1000));
    app.reset_token("ann@example.com");
}

fn the_defaults_protect_out_of_the_box(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("RATE_LIMIT_ENABLED", ""), ("PASSWORD_MIN_STRENGTH", "")]) else {
        return;
    };
    // Strength 2: a common password is refused with what is wrong, a passphrase passes.
    let weak = app.register("ann@example.com", "password1");
    weak.assert_invalid("too weak");
    assert!(!weak.text.contains("password1"));
    assert_eq!(app.register("ann@example.com", "correct horse battery staple").status, 200);
    // 5 failed logins per 15 minutes per email and address.
    for _ in 0..5 {
        assert_eq!(app.login("ann@example.com", "not the passphrase").status, 401);
    }
    let retry_after = assert_429(&app.login("ann@example.com", "correct horse battery staple"));
    assert!(retry_after > 60, "{retry_after}");
    assert_eq!(
        app.login("ann@example.com", "not the passphrase").json(),
        json!({"type": "too_many_requests", "message": format!("Too many requests. Retry after {retry_after} seconds.")})
    );
}

/// Two instances on one PostgreSQL share one budget.
#[test]
fn instances_share_one_budget_on_postgres() {
    let overrides = limits(&[("RATE_LIMIT_PER_IP", "4/1m")]);
    let Some(first) = TestApp::spawn_with(Backend::Postgres, &overrides) else { return };
    let second = first.sibling(&overrides);
    for app in [&first, &second, &first, &second] {
        assert_eq!(app.login("nobody@example.com", "x").status, 401);
    }
    assert_429(&first.login("nobody@example.com", "x"));
    assert_429(&second.login("nobody@example.com", "x"));
}
