use serde_json::json;

use crate::helpers::{claims, email, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

const NEW_PASSWORD: &str = "a brand new passphrase";
const RESET: &str = "/auth/customer/emailpass/reset-password";

on_both_backends!(
    reset_password_answers_created_for_anyone,
    reset_password_validates_like_medusa,
    update_sets_the_password_once_and_revokes_old_tokens,
    update_refuses_wrong_tokens,
    update_refuses_bad_input_and_keeps_the_token,
    a_new_reset_request_replaces_the_old_token,
);

fn reset_password_answers_created_for_anyone(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("Ann@Example.com");
    for identifier in ["ann@example.com", &email("unknown"), "not an email at all"] {
        let r = app.post_with(
            RESET,
            &json!({ "identifier": identifier, "metadata": {"origin": "storefront"} }).to_string(),
            &[("accept", "text/plain"), ("authorization", "Bearer stale")],
        );
        assert_eq!((r.status, r.content_type.as_str(), r.text.as_str()), (201, "text/plain", "Created"));
    }
    // Only the known account got a token and an event, carrying the address as registered.
    let events = app.wait_for_events("auth.password_reset", 1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(app.events().len(), 1, "no event for unknown identifiers");
    let e = &events[0];
    assert!(e["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(e["tenant"], crate::helpers::tenant());
    assert_eq!(e["data"]["entity_id"], "Ann@Example.com");
    assert_eq!(e["data"]["actor_type"], "customer");
    assert_eq!(e["data"]["metadata"], json!({"origin": "storefront"}));
    let reset = claims(e["data"]["token"].as_str().unwrap());
    assert_eq!((reset["purpose"].clone(), reset["entity_id"].clone()), (json!("reset"), json!("Ann@Example.com")));
    assert_eq!(reset["exp"].as_i64().unwrap() - reset["iat"].as_i64().unwrap(), 900);
    assert_eq!(app.db().count("password_reset_token"), 1);
}

fn reset_password_validates_like_medusa(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let invalid = |message: &str| json!({"type": "invalid_data", "message": message});
    app.post(RESET, "{}").assert_json(400, invalid("Invalid request: Field 'identifier' is required"));
    app.post(RESET, r#"{"email":"a@b.c"}"#)
        .assert_json(400, invalid("Invalid request: Field 'identifier' is required; Unrecognized fields: 'email'"));
    app.post(RESET, r#"{"identifier":42}"#)
        .assert_json(400, invalid("Invalid request: Expected type: 'string' for field 'identifier', got: 'number'"));
    app.post(RESET, r#"{"identifier":"a@b.c","metadata":"x"}"#)
        .assert_invalid("Expected type: 'object' for field 'metadata'");
    assert_eq!(app.db().count("event"), 0);
}

fn update_sets_the_password_once_and_revokes_old_tokens(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let registration = app.registered("ann@example.com");
    let login = app.login("ann@example.com", PASSWORD).token();
    let token = app.reset_token("ann@example.com");
    let r = app.update(&token, &json!({ "password": NEW_PASSWORD }).to_string());
    r.assert_json(200, json!({"success": true}));
    // Single use.
    app.update(&token, &json!({ "password": "yet another passphrase" }).to_string())
        .assert_json(401, json!({"type": "unauthorized", "message": "Invalid token"}));
    // Tokens issued before the reset are revoked.
    for old in [&registration, &login] {
        app.refresh(old).assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    }
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 401);
    let fresh = app.login("ann@example.com", NEW_PASSWORD);
    assert_eq!(fresh.status, 200);
    assert_eq!(app.refresh(&fresh.token()).status, 200);
    let changed = app.wait_for_events("auth.password_changed", 1);
    assert_eq!(changed[0]["data"], json!({"entity_id": "ann@example.com", "actor_type": "customer"}));
    assert_eq!(app.db().count("password_reset_token"), 0);
}

fn update_refuses_wrong_tokens(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let auth = app.registered("ann@example.com");
    let reset = app.reset_token("ann@example.com");
    let body = json!({ "password": NEW_PASSWORD }).to_string();
    let before = app.db().fingerprint();
    let invalid = json!({"type": "unauthorized", "message": "Invalid token"});
    let path = "/auth/customer/emailpass/update";
    // No token, an auth token, garbage: 401, JSON for JSON clients, text otherwise.
    app.post(path, &body).assert_json(401, invalid.clone());
    app.request("POST", path, Some(&body), &[("content-type", "application/json")]).assert_plain_unauthorized();
    app.update(&auth, &body).assert_json(401, invalid.clone());
    app.update("garbage", &body).assert_json(401, invalid.clone());
    app.post_with(path, &body, &[("authorization", &format!("Basic {reset}"))]).assert_json(401, invalid.clone());
    // The token of another actor type's route, or a query parameter (the old style).
    app.post_with("/auth/user/emailpass/update", &body, &[("authorization", &format!("Bearer {reset}"))])
        .assert_json(401, invalid.clone());
    app.post(&format!("{path}?token={reset}"), &body).assert_json(401, invalid.clone());
    assert_eq!(app.db().fingerprint(), before, "nothing changed, the token is still live");
    // Scheme is case-insensitive.
    let r = app.post_with(path, &body, &[("authorization", &format!("bearer {reset}"))]);
    assert_eq!(r.status, 200, "{}", r.text);
}

fn update_refuses_bad_input_and_keeps_the_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    app.registered("bob@example.com");
    let token = app.reset_token("ann@example.com");
    let before = app.db().fingerprint();
    app.update(&token, "{}").assert_invalid("Field 'password' is required");
    app.update(&token, r#"{"password":"short"}"#).assert_invalid("at least 8 characters");
    app.update(&token, &json!({"password": "x".repeat(73)}).to_string()).assert_invalid("at most 72 bytes");
    app.update(&token, &json!({"password": NEW_PASSWORD, "email": "bob@example.com"}).to_string())
        .assert_invalid("does not match");
    app.update(&token, "not json").assert_invalid("not valid JSON");
    assert_eq!(app.db().fingerprint(), before, "refused input changes nothing and keeps the token");
    let r = app.update(&token, &json!({"password": NEW_PASSWORD, "email": "ANN@example.com"}).to_string());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.login("bob@example.com", PASSWORD).status, 200, "the other account is untouched");
}

fn a_new_reset_request_replaces_the_old_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    let first = app.reset_token("ann@example.com");
    let second = app.reset_token("ann@example.com");
    assert_ne!(first, second);
    let body = json!({ "password": NEW_PASSWORD }).to_string();
    assert_eq!(app.update(&first, &body).status, 401);
    assert_eq!(app.update(&second, &body).status, 200);
}
