//! Tenants by host: two stores, `north` and `south`, served by one deployment at
//! `{tenant}.shop.test`, created with the real CLI. What one store holds never answers at the
//! other, a disabled store is gone at once, a hostile host reaches no store, and a change made
//! with the CLI reaches a second instance within a second. In the suite's tenant mode the
//! harness's `alpha` and `beta` exist too, and these tests' own rows are expected outside them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::delivery::{verify, Receiver, SECRET};
use crate::helpers::{claims, credentials, eventually, tenant_mode, Backend, Resp, TestApp, TestEnv};
use crate::on_both_backends;

on_both_backends!(
    the_same_email_is_two_accounts_in_two_stores,
    tokens_sessions_and_reset_tokens_do_not_cross_stores,
    rate_limits_are_counted_per_store,
    a_disabled_store_answers_404_everywhere_until_enabled,
    hosts_that_name_no_store_get_one_404_and_reach_none,
    a_change_reaches_a_second_instance_within_a_second,
    a_store_s_own_settings_override_the_global_ones,
    events_go_to_their_own_store_s_webhook,
    the_cli_checks_names_and_settings_and_hides_secrets,
    each_store_signs_with_its_own_keys_and_never_verifies_another_s,
);

const SUFFIX: &str = ".shop.test";
const NORTH: &str = "north.shop.test";
const SOUTH: &str = "south.shop.test";
/// The 404 of every host that names no active store, byte for byte.
const NO_STORE: &str = r#"{"type":"not_found","message":"No store is served at this address"}"#;

/// The settings every server here runs with (the CLI reads the same).
fn settings<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("TENANT_HOST_SUFFIX", SUFFIX), ("TENANT_REFRESH_INTERVAL", "100ms")];
    all.extend_from_slice(extra);
    all
}

/// `xclade-auth ARGS` over the environment of `env`, as an operator runs it.
fn cli(env: &TestEnv, extra: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xclade-auth"))
        .env_clear()
        .envs(env.config(&settings(extra)))
        .args(args)
        .current_dir(env.dir.path())
        .output()
        .unwrap()
}

#[track_caller]
fn cli_ok(env: &TestEnv, args: &[&str]) -> String {
    let out = cli(env, &[], args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server with the stores `north` and `south`, both served.
fn stores(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, &settings(extra))?;
    app.env().with_own_tenants();
    for name in ["north", "south"] {
        cli_ok(app.env(), &["tenant", "create", name]);
    }
    eventually("both stores are served", || {
        [NORTH, SOUTH].iter().all(|h| at(&app, h, "GET", "/auth/customer/providers", None).status == 200)
    });
    Some(app)
}

/// A request to the store at `host`.
fn at(app: &TestApp, host: &str, method: &str, path: &str, body: Option<&str>) -> Resp {
    at_with(app, host, method, path, body, &[])
}

fn at_with(app: &TestApp, host: &str, method: &str, path: &str, body: Option<&str>, more: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("host", host), ("content-type", "application/json"), ("accept", "application/json")];
    headers.extend_from_slice(more);
    app.request(method, path, body, &headers)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn register(app: &TestApp, host: &str, email: &str, password: &str) -> String {
    let r = at(app, host, "POST", "/auth/customer/emailpass/register", Some(&credentials(email, password)));
    assert_eq!(r.status, 200, "{host}: {}", r.text);
    r.token()
}

fn login(app: &TestApp, host: &str, email: &str, password: &str) -> Resp {
    at(app, host, "POST", "/auth/customer/emailpass", Some(&credentials(email, password)))
}

fn me(app: &TestApp, host: &str, token: &str) -> Resp {
    at_with(app, host, "GET", "/store/customers/me", None, &[("authorization", &bearer(token))])
}

fn refresh(app: &TestApp, host: &str, token: &str) -> Resp {
    at_with(app, host, "POST", "/auth/token/refresh", None, &[("authorization", &bearer(token))])
}

/// Registers `email` at `host` and makes it a customer; the customer's token and id.
fn customer(app: &TestApp, host: &str, email: &str, password: &str) -> (String, String) {
    let token = register(app, host, email, password);
    let body = json!({ "email": email }).to_string();
    let r = at_with(app, host, "POST", "/store/customers", Some(&body), &[("authorization", &bearer(&token))]);
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json()["customer"]["id"].as_str().unwrap().to_string();
    let token = login(app, host, email, password).token();
    (token, id)
}

fn the_same_email_is_two_accounts_in_two_stores(backend: Backend) {
    let Some(app) = stores(backend, &[]) else { return };
    let (north_token, north_id) = customer(&app, NORTH, "ann@example.com", "north password 1");
    let (south_token, south_id) = customer(&app, SOUTH, "Ann@Example.com", "south password 2");
    assert_ne!(north_id, south_id);
    assert_eq!(claims(&north_token)["tenant"], "north");
    assert_eq!(claims(&south_token)["tenant"], "south");
    assert_eq!(login(&app, NORTH, "ann@example.com", "south password 2").status, 401, "north has its own password");
    assert_eq!(login(&app, SOUTH, "ann@example.com", "north password 1").status, 401, "and south its own");
    assert_eq!(me(&app, NORTH, &north_token).json()["customer"]["id"], north_id.as_str());
    assert_eq!(me(&app, SOUTH, &south_token).json()["customer"]["id"], south_id.as_str());
    // Registering again in one store is the usual conflict there, and nothing in the other.
    let again = at(
        &app,
        NORTH,
        "POST",
        "/auth/customer/emailpass/register",
        Some(&credentials("ann@example.com", "not the password")),
    );
    assert_eq!(again.status, 401, "{}", again.text);
    assert_eq!(app.db().count("auth_identity"), 2);
    assert_eq!(app.db().count("customer"), 2);
}

fn tokens_sessions_and_reset_tokens_do_not_cross_stores(backend: Backend) {
    let Some(app) = stores(backend, &[]) else { return };
    let (north_token, _) = customer(&app, NORTH, "bob@example.com", "north password 1");
    let (south_token, _) = customer(&app, SOUTH, "bob@example.com", "south password 2");
    // A token is its store's only: 401, as any bad token.
    assert_eq!(refresh(&app, SOUTH, &north_token).status, 401);
    assert_eq!(me(&app, SOUTH, &north_token).status, 401);
    assert_eq!(refresh(&app, NORTH, &south_token).status, 401);
    assert_eq!(refresh(&app, NORTH, &north_token).status, 200);
    // A session cookie too; and the cookie is the host's only (no Domain attribute).
    let opened = at_with(&app, NORTH, "POST", "/auth/session", Some(""), &[("authorization", &bearer(&north_token))]);
    assert_eq!(opened.status, 200, "{}", opened.text);
    let set_cookie = opened.header("set-cookie").unwrap().to_ascii_lowercase();
    assert!(!set_cookie.contains("domain="), "a host-only cookie: {set_cookie}");
    let cookie = format!("connect.sid={}", opened.cookie("connect.sid").unwrap());
    assert_eq!(at_with(&app, NORTH, "GET", "/store/customers/me", None, &[("cookie", &cookie)]).status, 200);
    assert_eq!(at_with(&app, SOUTH, "GET", "/store/customers/me", None, &[("cookie", &cookie)]).status, 401);
    // A reset token: its event names its store, and it sets a password there only.
    let r =
        at(&app, NORTH, "POST", "/auth/customer/emailpass/reset-password", Some(r#"{"identifier":"bob@example.com"}"#));
    assert_eq!(r.status, 201);
    let event = app.wait_for_events("auth.password_reset", 1).remove(0);
    assert_eq!(event["tenant"], "north");
    let reset = event["data"]["token"].as_str().unwrap().to_string();
    let body = json!({ "password": "a new password 3" }).to_string();
    let update = |host| {
        at_with(
            &app,
            host,
            "POST",
            "/auth/customer/emailpass/update",
            Some(&body),
            &[("authorization", &bearer(&reset))],
        )
    };
    assert_eq!(update(SOUTH).status, 401);
    assert_eq!(login(&app, SOUTH, "bob@example.com", "south password 2").status, 200, "south's password stands");
    assert_eq!(update(NORTH).status, 200);
    assert_eq!(login(&app, NORTH, "bob@example.com", "a new password 3").status, 200);
    assert_eq!(refresh(&app, SOUTH, &south_token).status, 200, "south's tokens survive north's reset");
}

fn rate_limits_are_counted_per_store(backend: Backend) {
    let Some(app) = stores(backend, &[("RATE_LIMIT_ENABLED", "true"), ("LOGIN_FAILURE_LIMIT", "3/15m")]) else {
        return;
    };
    register(&app, NORTH, "cat@example.com", "north password 1");
    register(&app, SOUTH, "cat@example.com", "south password 2");
    for _ in 0..3 {
        assert_eq!(login(&app, NORTH, "cat@example.com", "wrong guess").status, 401);
    }
    assert_eq!(login(&app, NORTH, "cat@example.com", "north password 1").status, 429, "north's throttle is spent");
    assert_eq!(login(&app, SOUTH, "cat@example.com", "wrong guess").status, 401, "south counts its own");
    assert_eq!(login(&app, SOUTH, "cat@example.com", "south password 2").status, 200);
}

fn a_disabled_store_answers_404_everywhere_until_enabled(backend: Backend) {
    let Some(app) = stores(backend, &[]) else { return };
    let (token, _) = customer(&app, NORTH, "dan@example.com", "north password 1");
    cli_ok(app.env(), &["tenant", "disable", "north"]);
    eventually("north is gone", || refresh(&app, NORTH, &token).status == 404);
    for (method, path) in [
        ("POST", "/auth/token/refresh"),
        ("POST", "/auth/customer/emailpass"),
        ("POST", "/auth/customer/emailpass/register"),
        ("GET", "/store/customers/me"),
        ("GET", "/auth/customer/providers"),
        ("GET", "/openapi.json"),
        ("OPTIONS", "/auth/customer/emailpass"),
        ("GET", "/no/such/path"),
    ] {
        let r = at_with(&app, NORTH, method, path, Some("{}"), &[("authorization", &bearer(&token))]);
        assert_eq!((r.status, r.text.as_str()), (404, NO_STORE), "{method} {path}");
    }
    assert_eq!(at(&app, NORTH, "GET", "/health", None).status, 200, "the probes answer on any host");
    assert_eq!(at(&app, SOUTH, "GET", "/auth/customer/providers", None).status, 200, "south is served");
    assert!(cli_ok(app.env(), &["tenant", "show", "north"]).contains("status\tdisabled"));
    cli_ok(app.env(), &["tenant", "enable", "north"]);
    eventually("north is back", || refresh(&app, NORTH, &token).status == 200);
}

/// Sends `head` (the request line and headers, without the blank line) over a raw connection,
/// and returns the status and body.
fn raw(app: &TestApp, head: &[u8]) -> (u16, String) {
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(head).unwrap();
    stream.write_all(b"Connection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get_with_host(app: &TestApp, path: &str, host: &[u8]) -> (u16, String) {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: ").into_bytes();
    head.extend_from_slice(host);
    head.extend_from_slice(b"\r\n");
    raw(app, &head)
}

fn hosts_that_name_no_store_get_one_404_and_reach_none(backend: Backend) {
    let Some(app) = stores(backend, &[]) else { return };
    let path = "/auth/customer/providers";
    // What resolves: a port, any case, one trailing dot (a fully qualified name).
    for host in ["north.shop.test:443", "NORTH.Shop.TEST", "north.shop.test.", "north.shop.test.:8080"] {
        assert_eq!(get_with_host(&app, path, host.as_bytes()).0, 200, "{host}");
    }
    let long = format!("{}{SUFFIX}", "n".repeat(1024));
    let hostile: Vec<Vec<u8>> = vec![
        b"nobody.shop.test".to_vec(),
        b"a.north.shop.test".to_vec(),
        b".shop.test".to_vec(),
        b"shop.test".to_vec(),
        b"north.shop.test..".to_vec(),
        b"north.shop.test.evil.example".to_vec(),
        b"northshop.test".to_vec(),
        b"north.shop.test:x".to_vec(),
        "n\u{f6}rth.shop.test".as_bytes().to_vec(),
        b"xn--nrth-5qa.shop.test".to_vec(),
        b"www.shop.test".to_vec(),
        b"localhost".to_vec(),
        b"127.0.0.1".to_vec(),
        b"[::1]:80".to_vec(),
        b"".to_vec(),
        long.into_bytes(),
    ];
    for host in &hostile {
        assert_eq!(get_with_host(&app, path, host), (404, NO_STORE.to_string()), "{}", String::from_utf8_lossy(host));
        assert_eq!(get_with_host(&app, "/health", host).0, 200, "probes answer on any host");
    }
    // No Host at all: HTTP/1.1 requires one (400 from the HTTP layer, before any route); in
    // HTTP/1.0 it is a host that names no store.
    assert_eq!(raw(&app, format!("GET {path} HTTP/1.1\r\n").as_bytes()).0, 400);
    assert_eq!(raw(&app, format!("GET {path} HTTP/1.0\r\n").as_bytes()), (404, NO_STORE.to_string()));
    // A host outside the suffix gets the same 404 on every route, the documents included.
    for path in ["/docs", "/openapi.json", "/store/customers/me"] {
        assert_eq!(get_with_host(&app, path, b"elsewhere.example"), (404, NO_STORE.to_string()), "{path}");
    }
    // A store named like a reserved host cannot exist, so it cannot be reached either.
    assert!(!cli(app.env(), &[], &["tenant", "create", "www"]).status.success());
}

fn a_change_reaches_a_second_instance_within_a_second(backend: Backend) {
    let Some(app) = stores(backend, &[]) else { return };
    let second = app.sibling(&settings(&[]));
    let guarded = |app: &TestApp| at(app, NORTH, "GET", "/store/customers/me", None).status;
    assert_eq!(guarded(&second), 401, "no key required yet: the caller is missing");
    cli_ok(app.env(), &["tenant", "set", "north", "STORE_PUBLISHABLE_KEYS=pk_north"]);
    let written = Instant::now();
    while guarded(&second) != 400 {
        assert!(written.elapsed() < Duration::from_secs(1), "the second instance still serves the old settings");
        std::thread::sleep(Duration::from_millis(20));
    }
    let with_key =
        at_with(&second, NORTH, "GET", "/store/customers/me", None, &[("x-publishable-api-key", "pk_north")]);
    assert_eq!(with_key.status, 401, "the key passes; the caller is still missing");
    assert_eq!(at(&second, SOUTH, "GET", "/store/customers/me", None).status, 401, "south requires no key");
}

fn a_store_s_own_settings_override_the_global_ones(backend: Backend) {
    let global = [("ACTOR_TYPES", "customer"), ("AUTH_CORS", "https://global.example"), ("PASSWORD_MIN_LENGTH", "8")];
    let Some(app) = stores(backend, &global) else { return };
    cli_ok(
        app.env(),
        &[
            "tenant",
            "set",
            "south",
            "ACTOR_TYPES=customer,seller",
            "JWT_EXPIRES_IN=1h",
            "PASSWORD_MIN_LENGTH=14",
            "AUTH_CORS=https://south.example",
        ],
    );
    eventually("south's settings apply", || {
        at(
            &app,
            SOUTH,
            "POST",
            "/auth/seller/emailpass/register",
            Some(&credentials("eve@example.com", "seller password 1")),
        )
        .status
            == 200
    });
    let north = at(
        &app,
        NORTH,
        "POST",
        "/auth/seller/emailpass/register",
        Some(&credentials("eve@example.com", "seller password 1")),
    );
    assert_eq!(north.status, 400, "north keeps the global actor types: {}", north.text);
    // Token lifetime.
    let south = register(&app, SOUTH, "fay@example.com", "long enough password");
    let c = claims(&south);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);
    let north = register(&app, NORTH, "fay@example.com", "long enough password");
    let c = claims(&north);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 86400, "the global JWT_EXPIRES_IN");
    // Password policy.
    let short = credentials("gus@example.com", "twelve chars");
    assert_eq!(at(&app, SOUTH, "POST", "/auth/customer/emailpass/register", Some(&short)).status, 400);
    assert_eq!(at(&app, NORTH, "POST", "/auth/customer/emailpass/register", Some(&short)).status, 200);
    // CORS origins.
    let preflight = |host, origin| {
        let headers = [("host", host), ("origin", origin), ("access-control-request-method", "POST")];
        app.request("OPTIONS", "/auth/customer/emailpass", None, &headers)
            .header("access-control-allow-origin")
            .map(str::to_string)
    };
    assert_eq!(preflight(SOUTH, "https://south.example").as_deref(), Some("https://south.example"));
    assert_eq!(preflight(SOUTH, "https://global.example"), None, "south's own origins replace the global ones");
    assert_eq!(preflight(NORTH, "https://global.example").as_deref(), Some("https://global.example"));
    assert_eq!(preflight(NORTH, "https://south.example"), None);
}

fn events_go_to_their_own_store_s_webhook(backend: Backend) {
    let receiver = Receiver::start(200);
    let Some(app) = stores(backend, &[]) else { return };
    let url = format!("WEBHOOK_URL={}", receiver.url);
    let secret = format!("WEBHOOK_SECRET={SECRET}");
    cli_ok(app.env(), &["tenant", "set", "south", &url, &secret]);
    for host in [NORTH, SOUTH] {
        register(&app, host, "hal@example.com", "a good password 1");
    }
    eventually("south's settings apply", || {
        let r = at(
            &app,
            SOUTH,
            "POST",
            "/auth/customer/emailpass/reset-password",
            Some(r#"{"identifier":"hal@example.com"}"#),
        );
        assert_eq!(r.status, 201);
        !receiver.hits().is_empty()
    });
    let envelope = verify(&receiver.wait_for(1)[0]);
    assert_eq!(envelope["tenant"], "south");
    assert_eq!(envelope["name"], "auth.password_reset");
    let r =
        at(&app, NORTH, "POST", "/auth/customer/emailpass/reset-password", Some(r#"{"identifier":"hal@example.com"}"#));
    assert_eq!(r.status, 201);
    eventually("north's event is in the file sink", || app.events().iter().any(|e| e["tenant"] == "north"));
    let events = app.events();
    let north_event = events.iter().find(|e| e["tenant"] == "north").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        receiver.hits().iter().all(|hit| serde_json::from_str::<Value>(&hit.body).unwrap()["tenant"] == "south"),
        "north's events never reach south's webhook"
    );
    let id = north_event["id"].as_str().unwrap();
    let sinks = app.db().text(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) AS v FROM event_delivery WHERE event_id = '{id}' AND sink = 'webhook'"
    ));
    assert_eq!(sinks, "0", "north has no webhook: no delivery to it");
}

fn the_cli_checks_names_and_settings_and_hides_secrets(backend: Backend) {
    let Some(app) = stores(backend, &[]) else { return };
    let env = app.env();
    for bad in ["Acme", "www", "admin", "a.b", "-a", "xn--bcher-kva", &"a".repeat(64), ""] {
        let out = cli(env, &[], &["tenant", "create", "--", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot name a tenant"), "{bad:?}");
    }
    let taken = cli(env, &[], &["tenant", "create", "north"]);
    assert!(!taken.status.success() && String::from_utf8_lossy(&taken.stderr).contains("exists"));
    for refused in [
        &["tenant", "set", "north", "DATABASE_URL=postgres://x"][..],
        &["tenant", "set", "north", "JWT_EXPIRES_IN=soon"],
        &["tenant", "set", "nobody", "EMAIL_FROM=a@b.c"],
    ] {
        assert!(!cli(env, &[], refused).status.success(), "{refused:?}");
    }
    cli_ok(
        env,
        &[
            "tenant",
            "create",
            "east",
            "--set",
            "WEBHOOK_URL=https://u:pw-s3cret@hooks.example/in",
            "--set",
            &format!("WEBHOOK_SECRET={SECRET}"),
        ],
    );
    let shown = cli_ok(env, &["tenant", "show", "east"]) + &cli_ok(env, &["tenant", "list", "--json"]);
    assert!(shown.contains("WEBHOOK_SECRET\t[redacted]"), "{shown}");
    assert!(!shown.contains("pw-s3cret") && !shown.contains(SECRET), "{shown}");
    let stored = app.db().text("SELECT settings AS v FROM tenant WHERE id = 'east'");
    assert!(!stored.contains(SECRET.trim_start_matches("whsec_")), "sealed at rest: {stored}");
    let names: Vec<String> =
        cli_ok(env, &["tenant", "list"]).lines().map(|l| l.split('\t').next().unwrap().to_string()).collect();
    let harness = if tenant_mode() { vec!["alpha", "beta"] } else { vec![] };
    let expected: Vec<&str> = harness.into_iter().chain(["default", "east", "north", "south"]).collect();
    assert_eq!(names, expected);
}

/// The header of a token, decoded.
fn header_of(token: &str) -> Value {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn each_store_signs_with_its_own_keys_and_never_verifies_another_s(backend: Backend) {
    let Some(app) = stores(backend, &[]) else { return };
    let kid_of = |out: String| out.split('\t').next().unwrap().to_string();
    let north_kid = kid_of(cli_ok(app.env(), &["keys", "create", "--tenant", "north", "--algorithm", "EdDSA"]));
    let south_kid = kid_of(cli_ok(app.env(), &["keys", "create", "--tenant", "south", "--algorithm", "EdDSA"]));
    register(&app, NORTH, "kim@example.com", "north password 1");
    register(&app, SOUTH, "kim@example.com", "south password 2");
    eventually("each store signs with its key", || {
        let north = login(&app, NORTH, "kim@example.com", "north password 1").token();
        let south = login(&app, SOUTH, "kim@example.com", "south password 2").token();
        header_of(&north)["kid"] == north_kid.as_str() && header_of(&south)["kid"] == south_kid.as_str()
    });
    let north = login(&app, NORTH, "kim@example.com", "north password 1").token();
    assert_eq!(claims(&north)["iss"], "https://north.shop.test");
    assert_eq!(refresh(&app, NORTH, &north).status, 200);
    assert_eq!(refresh(&app, SOUTH, &north).status, 401, "south has no key of north's");
    let jwks = |host| at(&app, host, "GET", "/.well-known/jwks.json", None).json();
    let kids = |set: Value| {
        set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(kids(jwks(NORTH)), [north_kid]);
    assert_eq!(kids(jwks(SOUTH)), [south_kid]);
    let config = at(&app, NORTH, "GET", "/.well-known/openid-configuration", None).json();
    assert_eq!(config["issuer"], "https://north.shop.test");
    assert_eq!(config["jwks_uri"], "https://north.shop.test/.well-known/jwks.json");
    let (status, body) = get_with_host(&app, "/.well-known/jwks.json", b"nobody.shop.test");
    assert_eq!((status, body.as_str()), (404, NO_STORE));
}
