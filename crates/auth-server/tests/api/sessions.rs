use serde_json::json;

use crate::helpers::{claims, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    a_session_lives_is_used_and_ends,
    a_new_session_replaces_the_one_presented,
    the_session_comes_first_then_the_bearer,
    logout_all_ends_every_token_and_session,
    change_password_checks_the_old_one_and_revokes_everything,
);

fn a_session_lives_is_used_and_ends(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    let token = app.login("ann@example.com", PASSWORD).token();
    // As the JS SDK sends it: JSON content type, empty body, bearer.
    let r = app.post_with("/auth/session", "", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(serde_json::Value::Object(claims(&token)), r.json()["user"].clone(), "the token's claims");
    let set_cookie = r.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "Path=/", "Max-Age=36000", "SameSite=Lax"] {
        assert!(set_cookie.contains(flag), "{set_cookie} lacks {flag}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP on loopback: {set_cookie}");
    let session = r.cookie("connect.sid").unwrap();
    assert!(session.len() >= 64);
    // Only the hash is stored.
    let mut db = app.db();
    assert_eq!(db.count("auth_session"), 1);
    assert_eq!(db.text("SELECT id AS v FROM auth_session"), auth_domain::secret::sha256_hex(&session));
    // The session authenticates on its own.
    let refreshed = app.with_session("POST", "/auth/token/refresh", &session, Some(""));
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(claims(&refreshed.token())["auth_identity_id"], claims(&token)["auth_identity_id"]);
    // POST takes the bearer only; DELETE takes the cookie only.
    app.with_session("POST", "/auth/session", &session, Some(""))
        .assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    app.post_with("/auth/session", "", &[("authorization", &format!("Bearer {token}"))]);
    let r = app.request("DELETE", "/auth/session", None, &[("authorization", &format!("Bearer {token}"))]);
    r.assert_plain_unauthorized();
    let r = app.with_session("DELETE", "/auth/session", &session, Some(""));
    r.assert_json(200, json!({"success": true}));
    assert_eq!(r.cookie("connect.sid").as_deref(), Some(""), "the cookie is cleared");
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    app.with_session("POST", "/auth/token/refresh", &session, Some(""))
        .assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    app.with_session("DELETE", "/auth/session", &session, None)
        .assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    app.request("DELETE", "/auth/session", None, &[("cookie", "connect.sid=forged")]).assert_plain_unauthorized();
}

fn a_new_session_replaces_the_one_presented(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let token = app.registered("ann@example.com");
    let first = app.open_session(&token);
    let r = app.post_with(
        "/auth/session",
        "",
        &[("authorization", &format!("Bearer {token}")), ("cookie", &format!("connect.sid={first}"))],
    );
    assert_eq!(r.status, 200);
    let second = r.cookie("connect.sid").unwrap();
    assert_ne!(first, second);
    assert_eq!(app.with_session("POST", "/auth/token/refresh", &first, None).status, 401, "replaced");
    assert_eq!(app.with_session("POST", "/auth/token/refresh", &second, None).status, 200);
    assert_eq!(app.db().count("auth_session"), 1);
}

fn the_session_comes_first_then_the_bearer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let ann = app.registered("ann@example.com");
    let bob = app.registered("bob@example.com");
    let ann_session = app.open_session(&ann);
    let both = [
        ("cookie", format!("connect.sid={ann_session}")),
        ("authorization", format!("Bearer {bob}")),
        ("content-type", "application/json".to_string()),
    ];
    let headers: Vec<(&str, &str)> = both.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = app.request("POST", "/auth/token/refresh", None, &headers);
    assert_eq!(claims(&r.token())["auth_identity_id"], claims(&ann)["auth_identity_id"], "the session wins");
    // A dead cookie does not spoil a valid bearer token.
    let r = app.request(
        "POST",
        "/auth/token/refresh",
        None,
        &[("cookie", "connect.sid=no-such-session"), ("authorization", &format!("Bearer {bob}"))],
    );
    assert_eq!(claims(&r.token())["auth_identity_id"], claims(&bob)["auth_identity_id"]);
}

fn logout_all_ends_every_token_and_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let registration = app.registered("ann@example.com");
    let login = app.login("ann@example.com", PASSWORD).token();
    let session = app.open_session(&login);
    let other = app.registered("bob@example.com");
    let reset = app.reset_token("ann@example.com");
    app.request("POST", "/auth/logout-all", None, &[]).assert_plain_unauthorized();
    // A cookie counts on a state-changing request only when it is JSON (no cross-site forms).
    let cookie = format!("connect.sid={session}");
    app.request("POST", "/auth/logout-all", Some("x"), &[("cookie", &cookie), ("content-type", "text/plain")])
        .assert_plain_unauthorized();
    assert_eq!(app.refresh(&login).status, 200, "nothing was revoked");
    let r = app.post_with("/auth/logout-all", "", &[("authorization", &format!("Bearer {registration}"))]);
    r.assert_json(200, json!({"success": true}));
    assert_eq!(r.cookie("connect.sid").as_deref(), Some(""));
    for token in [&registration, &login] {
        assert_eq!(app.refresh(token).status, 401);
    }
    assert_eq!(app.with_session("POST", "/auth/token/refresh", &session, None).status, 401);
    assert_eq!(app.db().count("auth_session"), 0);
    assert_eq!(app.refresh(&other).status, 200, "other accounts are untouched");
    assert_eq!(app.update(&reset, r#"{"password":"a new passphrase"}"#).status, 401, "pending reset links end too");
    // Logging in again works; a session can log out everywhere too.
    let fresh = app.login("ann@example.com", PASSWORD).token();
    let session = app.open_session(&fresh);
    assert_eq!(app.with_session("POST", "/auth/logout-all", &session, Some("")).status, 200);
    assert_eq!(app.refresh(&fresh).status, 401);
}

fn change_password_checks_the_old_one_and_revokes_everything(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let registration = app.registered("ann@example.com");
    let session = app.open_session(&registration);
    let path = "/auth/customer/emailpass/change-password";
    let bearer = format!("Bearer {registration}");
    let auth = [("authorization", bearer.as_str())];
    let body = |old: &str, new: &str| json!({ "old_password": old, "new_password": new }).to_string();
    let before = app.db().fingerprint();
    app.post(path, &body(PASSWORD, "a new passphrase"))
        .assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    app.post_with(path, &body("not the password", "a new passphrase"), &auth)
        .assert_json(401, json!({"type": "unauthorized", "message": "Invalid password"}));
    app.post_with(path, &body(PASSWORD, "short"), &auth).assert_invalid("Field 'new_password' must be at least 8");
    app.post_with(path, r#"{"old_password":"x"}"#, &auth).assert_invalid("Field 'new_password' is required");
    app.post_with("/auth/user/emailpass/change-password", &body(PASSWORD, "a new passphrase"), &auth)
        .assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    assert_eq!(app.db().fingerprint(), before, "refusals change nothing");

    let r = app.post_with(path, &body(PASSWORD, "a new passphrase"), &auth);
    assert_eq!(r.status, 200, "{}", r.text);
    let fresh = r.token();
    assert_eq!(app.refresh(&fresh).status, 200, "the caller gets a fresh token");
    assert_eq!(app.refresh(&registration).status, 401);
    assert_eq!(app.with_session("POST", "/auth/token/refresh", &session, None).status, 401);
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 401);
    assert_eq!(app.login("ann@example.com", "a new passphrase").status, 200);
    let changed = app.wait_for_events("auth.password_changed", 1);
    assert_eq!(changed[0]["data"]["entity_id"], "ann@example.com");

    // Through a session: the caller's session ends too, and its cookie is cleared.
    let session = app.open_session(&fresh);
    let r = app.with_session("POST", path, &session, Some(&body("a new passphrase", "a third passphrase")));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.cookie("connect.sid").as_deref(), Some(""));
    assert_eq!(app.with_session("POST", "/auth/token/refresh", &session, None).status, 401);
}

/// A storefront on another site needs `SameSite=None`, which browsers accept only with Secure.
#[test]
fn cross_site_cookies_are_secure() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("COOKIE_SAMESITE", "none")]) else {
        return;
    };
    let token = app.registered("ann@example.com");
    let r = app.post_with("/auth/session", "", &[("authorization", &format!("Bearer {token}"))]);
    let set_cookie = r.header("set-cookie").unwrap();
    assert!(set_cookie.contains("SameSite=None") && set_cookie.contains("Secure"), "{set_cookie}");
}
