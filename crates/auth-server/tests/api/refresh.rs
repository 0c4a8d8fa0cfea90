use serde_json::json;

use crate::helpers::{claims, sign, Backend, TestApp, JWT_SECRET, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    refresh_mints_a_token_from_the_database,
    refresh_negotiates_its_401,
    refresh_refuses_forged_and_foreign_tokens,
    refresh_accepts_previous_secrets,
    refresh_refuses_expired_tokens,
);

fn refresh_mints_a_token_from_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let registration = app.registered("ann@example.com");
    app.db().execute(r#"UPDATE auth_identity SET app_metadata = '{"customer_id":"cus_7"}'"#);
    // As the JS SDK sends it: JSON content type, empty body, locale header.
    let r = app.request(
        "POST",
        "/auth/token/refresh",
        Some(""),
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("x-medusa-locale", ""),
            ("authorization", &format!("Bearer {registration}")),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let c = claims(&r.token());
    assert_eq!(c["actor_id"], "cus_7");
    assert_eq!(c["app_metadata"], json!({"customer_id": "cus_7"}));
    assert_eq!(c["auth_identity_id"], claims(&registration)["auth_identity_id"]);
    // No body at all works too.
    let r = app.request("POST", "/auth/token/refresh", None, &[("authorization", &format!("Bearer {registration}"))]);
    assert_eq!(r.status, 200);
}

fn refresh_negotiates_its_401(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let unauthorized = json!({"type": "unauthorized", "message": "Unauthorized"});
    app.request("POST", "/auth/token/refresh", None, &[]).assert_plain_unauthorized();
    app.request("POST", "/auth/token/refresh", None, &[("accept", "*/*")]).assert_plain_unauthorized();
    app.request("POST", "/auth/token/refresh", None, &[("accept", "text/html")]).assert_plain_unauthorized();
    app.request("POST", "/auth/token/refresh", None, &[("accept", "application/json")])
        .assert_json(401, unauthorized.clone());
    app.request("POST", "/auth/token/refresh", None, &[("accept", "text/html, application/json;q=0.9")])
        .assert_json(401, unauthorized);
}

fn refresh_refuses_forged_and_foreign_tokens(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let token = app.registered("ann@example.com");
    let reset = app.reset_token("ann@example.com");
    let good = serde_json::Value::Object(claims(&token));
    let with = |key: &str, value: serde_json::Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let mut no_stamp = good.clone();
    no_stamp.as_object_mut().unwrap().remove("stamp");
    let forged = [
        sign(&good, "another secret"),
        sign(&with("tenant", json!("other-tenant")), JWT_SECRET),
        sign(&with("stamp", json!("an old stamp")), JWT_SECRET),
        sign(&with("actor_type", json!("admin")), JWT_SECRET),
        sign(&with("auth_identity_id", json!("authid_unknown")), JWT_SECRET),
        sign(&with("purpose", json!("reset")), JWT_SECRET),
        sign(&no_stamp, JWT_SECRET),
        reset,
        format!("{token}.extra"),
        "eyJhbGciOiJub25lIn0.e30.".to_string(),
    ];
    for bad in &forged {
        let r = app.refresh(bad);
        assert_eq!(r.status, 401, "{bad}: {}", r.text);
    }
    // The genuine token still works: nothing was spoiled.
    assert_eq!(app.refresh(&sign(&good, JWT_SECRET)).status, 200);
    let _ = PASSWORD;
}

fn refresh_accepts_previous_secrets(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let token = app.registered("ann@example.com");
    let app =
        app.restart(&[("JWT_SECRET", "the next secret, long enough to be fine"), ("JWT_SECRET_PREVIOUS", JWT_SECRET)]);
    let r = app.refresh(&token);
    assert_eq!(r.status, 200, "a token signed with a previous secret still verifies");
    let app = app.restart(&[("JWT_SECRET", "the next secret, long enough to be fine")]);
    assert_eq!(app.refresh(&token).status, 401, "without JWT_SECRET_PREVIOUS it does not");
    assert_eq!(app.refresh(&r.token()).status, 200, "the new token is signed with the new secret");
}

fn refresh_refuses_expired_tokens(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("JWT_EXPIRES_IN", "1s")]) else {
        return;
    };
    let token = app.registered("ann@example.com");
    assert_eq!(app.refresh(&token).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(app.refresh(&token).status, 401);
    let mut future = claims(&token);
    let now = future["iat"].as_i64().unwrap() + 2;
    future.insert("iat".into(), json!(now + 3600));
    future.insert("exp".into(), json!(now + 7200));
    assert_eq!(app.refresh(&sign(&serde_json::Value::Object(future), JWT_SECRET)).status, 401, "iat in the future");
}
