use serde_json::json;

use crate::helpers::{claims, credentials, email, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    register_issues_a_registration_token,
    register_ignores_a_stale_authorization_header,
    register_again_follows_medusa,
    register_refuses_bad_input_and_changes_nothing,
    unknown_actor_types_and_providers_are_refused,
);

fn register_issues_a_registration_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let r = app.register("Ann.Lee@Example.com", PASSWORD);
    assert_eq!((r.status, r.content_type.as_str()), (200, "application/json"), "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let c = claims(&r.token());
    let keys: Vec<&str> = c.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "actor_id",
            "actor_type",
            "auth_identity_id",
            "auth_provider",
            "mfa_enabled",
            "mfa_challenge_completed_at",
            "app_metadata",
            "user_metadata",
            "iat",
            "exp",
            "stamp",
            "tenant",
            "iss"
        ]
    );
    assert_eq!(c["actor_id"], "");
    assert_eq!(c["actor_type"], "customer");
    assert!(c["auth_identity_id"].as_str().unwrap().starts_with("authid_"));
    assert_eq!(c["auth_provider"], "emailpass");
    assert_eq!((c["mfa_enabled"].clone(), c["mfa_challenge_completed_at"].clone()), (json!(false), json!(null)));
    assert_eq!((c["app_metadata"].clone(), c["user_metadata"].clone()), (json!({}), json!({})));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 86_400);
    assert_eq!(c["tenant"], crate::helpers::tenant());
    // The address is kept as registered and looked up by its normalised form.
    let mut db = app.db();
    assert_eq!(db.text("SELECT entity_id AS v FROM provider_identity"), "Ann.Lee@Example.com");
    assert_eq!(db.text("SELECT entity_key AS v FROM provider_identity"), "ann.lee@example.com");
}

fn register_ignores_a_stale_authorization_header(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let r = app.post_with(
        "/auth/customer/emailpass/register",
        &credentials(&email("stale"), PASSWORD),
        &[("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ0YWciOiJyZWdpc3RlciJ9.sig"), ("x-medusa-locale", "")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

fn register_again_follows_medusa(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let first = app.registered("ann@example.com");
    // Same password, no actor yet: the same identity again.
    let again = app.register("ANN@example.com", PASSWORD);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(claims(&again.token())["auth_identity_id"], claims(&first)["auth_identity_id"]);
    // Another password: refused, as Medusa does.
    app.register("ann@example.com", "another password")
        .assert_json(401, json!({"type": "unauthorized", "message": "Identity with email already exists"}));
    // Once an actor is linked, even the same password is refused.
    app.db().execute(r#"UPDATE auth_identity SET app_metadata = '{"customer_id":"cus_1"}'"#);
    app.register("ann@example.com", PASSWORD)
        .assert_json(401, json!({"type": "unauthorized", "message": "Identity with email already exists"}));
    assert_eq!(app.db().count("auth_identity"), 1);
}

fn register_refuses_bad_input_and_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("existing@example.com");
    let before = app.db().fingerprint();
    let path = "/auth/customer/emailpass/register";
    let cases: &[(&str, &str)] = &[
        (r#"{"password":"correct horse battery"}"#, "Field 'email' is required"),
        (r#"{"email":"a@example.com"}"#, "Field 'password' is required"),
        (r#"{}"#, "Field 'email' is required; Field 'password' is required"),
        (
            r#"{"email":5,"password":"correct horse battery"}"#,
            "Expected type: 'string' for field 'email', got: 'number'",
        ),
        (r#"{"email":"a@example.com","password":true}"#, "Expected type: 'string' for field 'password'"),
        (r#"{"email":"not-an-email","password":"correct horse battery"}"#, "valid email address"),
        (r#"{"email":"a@example.com","password":"short"}"#, "at least 8 characters"),
        (r#"{"email":"a@example.com","password":"éééééé"}"#, "at least 8 characters"),
        ("{\"email\":\"a@example.com\",\"password\":\"€€€€€€€€€€€€€€€€€€€€€€€€€\"}", "at most 72 bytes"),
        ("not json", "not valid JSON"),
        ("[1,2]", "must be a JSON object"),
        ("", "Field 'email' is required"),
    ];
    for (body, needle) in cases {
        app.post(path, body).assert_invalid(needle);
    }
    assert_eq!(app.db().fingerprint(), before, "a refused request changes nothing");
    // 72 bytes is the most bcrypt reads, and allowed.
    let r = app.register("max@example.com", &"a".repeat(72));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.login("max@example.com", &"a".repeat(72)).status, 200);
    assert_eq!(app.login("max@example.com", &"a".repeat(71)).status, 401);
}

fn unknown_actor_types_and_providers_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let body = credentials("a@example.com", PASSWORD);
    let before = app.db().fingerprint();
    for (path, name) in [
        ("/auth/admin/emailpass/register", "admin"),
        ("/auth/customer/google/register", "google"),
        ("/auth/merchant/emailpass", "merchant"),
        ("/auth/customer/github", "github"),
        ("/auth/vendor/emailpass/reset-password", "vendor"),
        ("/auth/customer/nope/update", "nope"),
    ] {
        let r = app.post(path, &body);
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.json()["type"], "not_allowed", "{path}");
        assert!(r.json()["message"].as_str().unwrap().contains(name), "{path}: {}", r.text);
    }
    assert_eq!(app.db().fingerprint(), before);
    // The user actor is configured by default.
    assert_eq!(app.post("/auth/user/emailpass/register", &body).status, 200);
}
