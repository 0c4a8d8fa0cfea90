use serde_json::json;

use crate::helpers::{claims, credentials, tenant, tenant_mode, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    the_host_a_client_says_names_the_tenant,
    providers_lists_emailpass,
    callback_is_not_allowed_for_emailpass,
    health_answers,
    unknown_routes_and_methods_answer_json,
    oversized_and_malformed_bodies_are_refused,
);

fn providers_lists_emailpass(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let r = app.request("GET", "/auth/customer/providers", None, &[("x-medusa-locale", "")]);
    r.assert_json(
        200,
        json!({"providers": [{"id": "emailpass", "identifier": "emailpass", "display_name": "Email and password", "flow": "credentials"}]}),
    );
    let r = app.request("GET", "/auth/admin/providers", None, &[]);
    assert_eq!((r.status, r.json()["type"].clone()), (400, json!("not_allowed")));
}

fn callback_is_not_allowed_for_emailpass(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    for method in ["GET", "POST"] {
        let r = app.request(method, "/auth/customer/emailpass/callback?code=x", None, &[]);
        assert_eq!((r.status, r.json()["type"].clone()), (400, json!("not_allowed")), "{method}");
        assert!(r.json()["message"].as_str().unwrap().contains("emailpass"));
    }
    let r = app.request("GET", "/auth/customer/google/callback", None, &[]);
    assert_eq!(r.status, 400);
}

fn health_answers(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let r = app.request("GET", "/health", None, &[]);
    assert_eq!((r.status, r.text.as_str()), (200, "OK"));
}

fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    for path in ["/", "/nope", "/auth", "/auth/customer/emailpass/register/extra", "/store/nope"] {
        let r = app.request("GET", path, None, &[]);
        assert_eq!((r.status, r.content_type.as_str()), (404, "application/json"), "{path}");
        assert_eq!(r.json()["type"], "not_found");
    }
    for (method, path, allow) in [
        ("GET", "/auth/token/refresh", "POST"),
        ("PUT", "/auth/customer/emailpass", "GET, POST"),
        ("GET", "/auth/customer/emailpass/register", "POST"),
        ("PUT", "/auth/customer/emailpass/update", "POST"),
        ("DELETE", "/auth/customer/emailpass/reset-password", "POST"),
        ("POST", "/auth/customer/providers", "GET"),
        ("PUT", "/auth/customer/emailpass/callback", "GET, POST"),
        ("PUT", "/auth/session", "POST, DELETE"),
        ("DELETE", "/store/customers/me", "GET, POST"),
        ("POST", "/health", "GET"),
        ("POST", "/docs", "GET"),
        ("DELETE", "/docs/swagger-ui-bundle.js", "GET"),
        ("PUT", "/docs/swagger-initializer.js", "GET"),
    ] {
        let r = app.request(method, path, None, &[]);
        assert_eq!((r.status, r.content_type.as_str()), (405, "application/json"), "{method} {path}");
        assert_eq!(r.json()["type"], "not_allowed");
        assert_eq!(r.headers.get("allow").map(String::as_str), Some(allow), "{method} {path}");
    }
}

fn oversized_and_malformed_bodies_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let before = app.db().fingerprint();
    let huge = format!(r#"{{"email":"a@b.c","password":"{}"}}"#, "x".repeat(70 * 1024));
    let r = app.post("/auth/customer/emailpass/register", &huge);
    assert_eq!((r.status, r.content_type.as_str()), (413, "application/json"));
    assert_eq!(r.json()["type"], "payload_too_large");
    app.post("/auth/customer/emailpass/register", "{\"email\":").assert_invalid("not valid JSON");
    app.post("/auth/customer/emailpass/register", "\"just a string\"").assert_invalid("JSON object");
    assert_eq!(app.db().fingerprint(), before);
}

/// The harness's `Host` (helpers.rs): in tenant mode a client's requests are for `alpha`, unless a
/// test gives its own `host`, which is then the one sent (ureq does not add its own); without
/// tenant mode every host is the tenant `default`.
fn the_host_a_client_says_names_the_tenant(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let token = app.registered("ann@example.com");
    assert_eq!(claims(&token)["tenant"], tenant());
    let login_at = |host: &str| {
        app.post_with("/auth/customer/emailpass", &credentials("ann@example.com", PASSWORD), &[("host", host)])
    };
    if !tenant_mode() {
        for host in ["127.0.0.1", "gamma.api.test", "beta.api.test"] {
            assert_eq!(login_at(host).status, 200, "{host}");
        }
        return;
    }
    let no_store = json!({"type": "not_found", "message": "No store is served at this address"});
    for host in ["127.0.0.1", "localhost", "gamma.api.test", "api.test", "alpha.api.test.evil.example"] {
        let r = login_at(host);
        assert_eq!(r.status, 404, "Host: {host}: {}", r.text);
        r.assert_json(404, no_store.clone());
    }
    assert_eq!(login_at("ALPHA.api.test:443").status, 200, "the port and the case do not matter");
    // beta is served, and ann is none of its identities.
    login_at("beta.api.test").assert_json(401, json!({"type": "unauthorized", "message": "Invalid email or password"}));
    // The operations routes answer on any host.
    assert_eq!(app.request("GET", "/health", None, &[("host", "gamma.api.test")]).status, 200);
}
