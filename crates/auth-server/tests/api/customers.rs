use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::{claims, concurrently, Backend, TestApp, TestEnv, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    a_registration_token_creates_its_customer,
    customer_creation_refuses_what_medusa_refuses,
    publishable_keys_guard_the_store_routes,
    racing_creates_with_one_token_make_one_customer,
    admin_users_come_from_the_cli_and_are_no_customers,
);

const CUSTOMERS: &str = "/store/customers";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn a_registration_token_creates_its_customer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let registration = app.registered("Ann@Example.com");
    let body = json!({"email": "Ann@Example.com", "first_name": "Ann", "last_name": "Lee", "metadata": {"vip": true}});
    let r = app.post_with(CUSTOMERS, &body.to_string(), &[("authorization", &bearer(&registration))]);
    assert_eq!(r.status, 200, "{}", r.text);
    let customer = r.json()["customer"].clone();
    let keys: Vec<&str> = customer.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "email",
            "company_name",
            "first_name",
            "last_name",
            "phone",
            "metadata",
            "has_account",
            "deleted_at",
            "created_at",
            "updated_at",
            "addresses"
        ]
    );
    let id = customer["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cus_"));
    assert_eq!(customer["email"], "Ann@Example.com");
    assert_eq!((customer["has_account"].clone(), customer["addresses"].clone()), (json!(true), json!([])));
    assert_eq!((customer["phone"].clone(), customer["metadata"].clone()), (json!(null), json!({"vip": true})));
    assert!(customer["created_at"].as_str().unwrap().ends_with('Z'));
    // Refresh with the registration token: the token now carries the customer.
    let refreshed = app.refresh(&registration).token();
    assert_eq!(claims(&refreshed)["actor_id"], id.as_str());
    assert_eq!(claims(&refreshed)["app_metadata"], json!({"customer_id": id}));
    // Read and update through /me, with ?fields= ignored.
    let r = app.request(
        "GET",
        "/store/customers/me?fields=*orders,+metadata",
        None,
        &[("authorization", &bearer(&refreshed))],
    );
    assert_eq!((r.status, r.json()["customer"]["id"].clone()), (200, json!(id)));
    let r = app.post_with(
        "/store/customers/me?fields=id",
        r#"{"first_name":"Anna","phone":"+33 1 23","metadata":null}"#,
        &[("authorization", &bearer(&refreshed))],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let c = &r.json()["customer"];
    assert_eq!((c["first_name"].clone(), c["last_name"].clone()), (json!("Anna"), json!("Lee")));
    assert_eq!((c["phone"].clone(), c["metadata"].clone()), (json!("+33 1 23"), json!(null)));
    // A session opened with the registration token reads the actor on each request.
    let login = app.login("ann@example.com", PASSWORD).token();
    let session = app.open_session(&login);
    let r = app.with_session("GET", "/store/customers/me", &session, None);
    assert_eq!(r.json()["customer"]["first_name"], "Anna");
}

fn customer_creation_refuses_what_medusa_refuses(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let registration = app.registered("ann@example.com");
    let auth = bearer(&registration);
    let post = |body: &str| app.post_with(CUSTOMERS, body, &[("authorization", &auth)]);
    // Unauthenticated, or a registration token without a customer on /me.
    app.post(CUSTOMERS, r#"{"email":"ann@example.com"}"#)
        .assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    app.request("GET", "/store/customers/me", None, &[("authorization", &auth), ("accept", "application/json")])
        .assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    // Input errors.
    post("{}").assert_json(400, json!({"type": "invalid_data", "message": "Email is required to create a customer"}));
    post(r#"{"email":"not-an-email"}"#).assert_invalid("valid email address");
    post(r#"{"email":"ann@example.com","password":"x"}"#).assert_invalid("Unrecognized fields: 'password'");
    post(r#"{"email":"ann@example.com","first_name":7}"#)
        .assert_invalid("Expected type: 'string' for field 'first_name'");
    assert_eq!(app.db().count("customer"), 0, "refused input changes nothing");
    // Another identity cannot open an account under ann's address (Xclade departs from Medusa
    // here: the address must be the identity's own).
    let bob = app.registered("bob@example.com");
    app.post_with(CUSTOMERS, r#"{"email":"ANN@example.com"}"#, &[("authorization", &bearer(&bob))]).assert_json(
        400,
        json!({"type": "invalid_data", "message": "Invalid request: Field 'email' must be the email of the authenticated identity"}),
    );
    assert_eq!(app.db().count("customer"), 0, "refused input changes nothing");
    // A customer account for the address that came another way (an import, another provider):
    // ann's creation is a duplicate.
    app.db().execute(&format!(
        "INSERT INTO customer (id, tenant_id, email, has_account, created_at, updated_at) \
         VALUES ('cus_imported', '{}', 'ANN@example.com', TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        crate::helpers::tenant()
    ));
    post(r#"{"email":"ann@example.com"}"#).assert_json(
        422,
        json!({"code": "invalid_request_error", "type": "duplicate_error", "message": "Customer with this email already has an account"}),
    );
    // Once linked: by the database (the same registration token) and by the token (a login).
    let ann = app.registered("ann2@example.com");
    assert_eq!(
        app.post_with(CUSTOMERS, r#"{"email":"ann2@example.com"}"#, &[("authorization", &bearer(&ann))]).status,
        200
    );
    let already = json!({"type": "invalid_data", "message": "Request already authenticated as a customer."});
    app.post_with(CUSTOMERS, r#"{"email":"ann2@example.com"}"#, &[("authorization", &bearer(&ann))])
        .assert_json(400, already.clone());
    let login = app.login("ann2@example.com", PASSWORD).token();
    app.post_with(CUSTOMERS, r#"{"email":"ann2@example.com"}"#, &[("authorization", &bearer(&login))])
        .assert_json(400, already);
    assert_eq!(app.db().count("customer"), 2);
}

fn publishable_keys_guard_the_store_routes(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("STORE_PUBLISHABLE_KEYS", "pk_one,pk_two")]) else {
        return;
    };
    let registration = app.registered("ann@example.com");
    let auth = bearer(&registration);
    let body = r#"{"email":"ann@example.com"}"#;
    app.post_with(CUSTOMERS, body, &[("authorization", &auth)]).assert_json(
        400,
        json!({"type": "not_allowed", "message": "Publishable API key required in the request header: x-publishable-api-key. You can manage your keys in settings in the dashboard."}),
    );
    app.post_with(CUSTOMERS, body, &[("authorization", &auth), ("x-publishable-api-key", "pk_nope")]).assert_json(
        400,
        json!({"type": "not_allowed", "message": "A valid publishable key is required to proceed with the request"}),
    );
    // Checked before the caller, as Medusa does.
    let r = app.request("GET", "/store/customers/me", None, &[("accept", "application/json")]);
    assert_eq!((r.status, r.json()["type"].clone()), (400, json!("not_allowed")));
    let r = app.post_with(CUSTOMERS, body, &[("authorization", &auth), ("x-publishable-api-key", "pk_two")]);
    assert_eq!(r.status, 200, "{}", r.text);
    // /auth routes never need a key.
    assert_eq!(app.login("ann@example.com", PASSWORD).status, 200);
}

fn racing_creates_with_one_token_make_one_customer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let registration = app.registered("ann@example.com");
    let auth = bearer(&registration);
    let responses = concurrently(20, |i| {
        app.post_with(
            CUSTOMERS,
            &json!({"email": "ann@example.com", "first_name": format!("n{i}")}).to_string(),
            &[("authorization", &auth)],
        )
    });
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    for r in responses.iter().filter(|r| r.status != 200) {
        r.assert_json(400, json!({"type": "invalid_data", "message": "Request already authenticated as a customer."}));
    }
    assert_eq!(app.db().count("customer"), 1);
    let winner = responses.iter().find(|r| r.status == 200).unwrap().json()["customer"]["id"].clone();
    assert_eq!(claims(&app.refresh(&registration).token())["actor_id"], winner);
}

fn admin_users_come_from_the_cli_and_are_no_customers(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    let vars = env.config(&[]);
    let mut args = vec!["user", "create", "--email", "Admin@Example.com", "--password-stdin"];
    if crate::helpers::tenant_mode() {
        // The command runs before any server: the tenant must exist already.
        env.create_tenants();
        args.extend(["--tenant", crate::helpers::TENANT]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_xclade-auth"))
        .env_clear()
        .envs(&vars)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let user_id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(user_id.starts_with("user_"), "{user_id}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(PASSWORD));

    let app = TestApp::start(env, &[]);
    let r = app.post("/auth/user/emailpass", &crate::helpers::credentials("admin@example.com", PASSWORD));
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.token();
    assert_eq!(
        (claims(&token)["actor_type"].clone(), claims(&token)["actor_id"].clone()),
        (json!("user"), json!(user_id))
    );
    // Customer routes refuse user tokens.
    app.request("GET", "/store/customers/me", None, &[("authorization", &bearer(&token))]).assert_plain_unauthorized();
    app.post_with(CUSTOMERS, r#"{"email":"admin@example.com"}"#, &[("authorization", &bearer(&token))])
        .assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    // The address has an identity now: registering it as a customer is refused, as Medusa does.
    assert_eq!(app.register("admin@example.com", PASSWORD).status, 401);
}
