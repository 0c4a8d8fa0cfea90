use serde_json::json;

use crate::helpers::{claims, credentials, email, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    login_is_case_insensitive_and_carries_the_actor,
    login_failures_all_look_alike,
    login_refuses_malformed_bodies,
    login_rehashes_a_hash_of_another_cost,
);

fn login_is_case_insensitive_and_carries_the_actor(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let registration = app.registered("Ann@Example.com");
    let r = app.post_with(
        "/auth/customer/emailpass",
        &credentials("  ann@EXAMPLE.com ", PASSWORD),
        &[("authorization", "Bearer stale.token.value"), ("x-publishable-api-key", "pk_test")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let c = claims(&r.token());
    assert_eq!(c["auth_identity_id"], claims(&registration)["auth_identity_id"]);
    assert_eq!(c["actor_id"], "");
    app.db().execute(r#"UPDATE auth_identity SET app_metadata = '{"customer_id":"cus_01"}'"#);
    let c = claims(&app.login("ann@example.com", PASSWORD).token());
    assert_eq!(c["actor_id"], "cus_01");
    assert_eq!(c["app_metadata"], json!({"customer_id": "cus_01"}));
    // The same identity through the user actor: no user linked, so no actor id.
    let r = app.post("/auth/user/emailpass", &credentials("ann@example.com", PASSWORD));
    let c = claims(&r.token());
    assert_eq!((c["actor_type"].clone(), c["actor_id"].clone()), (json!("user"), json!("")));
}

fn login_failures_all_look_alike(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    let invalid = json!({"type": "unauthorized", "message": "Invalid email or password"});
    for (email, password) in [
        ("ann@example.com", "wrong password"),
        (&*email("nobody"), PASSWORD),
        ("not an address", PASSWORD),
        ("ann@example.com", ""),
        ("ann@example.com", &"x".repeat(100)),
    ] {
        app.login(email, password).assert_json(401, invalid.clone());
    }
}

fn login_refuses_malformed_bodies(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.post("/auth/customer/emailpass", r#"{"email":"a@b.c"}"#).assert_invalid("Field 'password' is required");
    app.post("/auth/customer/emailpass", r#"{"password":"x"}"#).assert_invalid("Field 'email' is required");
    app.post("/auth/customer/emailpass", "").assert_invalid("Field 'email' is required");
    app.post("/auth/customer/emailpass", r#"{"email":["a"],"password":"x"}"#).assert_invalid("got: 'array'");
}

fn login_rehashes_a_hash_of_another_cost(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    app.registered("ann@example.com");
    let stored = |app: &TestApp| app.db().text("SELECT provider_metadata AS v FROM provider_identity");
    assert!(stored(&app).contains("$2b$04$"), "{}", stored(&app));
    let app = app.restart(&[("BCRYPT_COST", "5")]);
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 200);
    assert!(stored(&app).contains("$2b$05$"), "rehashed at the configured cost: {}", stored(&app));
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 200);
    assert_eq!(app.login("ann@example.com", "wrong password").status, 401);
}
