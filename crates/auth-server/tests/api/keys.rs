//! Signing keys: a tenant moves from HS256 to its own key with one command, publishes only public
//! keys, is verified by third-party libraries through its JWKS, rotates under load without
//! failing a request, and never verifies another tenant's tokens. Introspection tells a
//! revocation that a JWKS verifier cannot see.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{claims, eventually, tenant, tenant_host, Backend, Resp, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    one_command_moves_a_tenant_from_hs256_to_its_own_key,
    third_party_libraries_verify_tokens_through_the_jwks,
    a_rotation_under_load_fails_no_request,
    introspection_tells_what_a_jwks_verifier_cannot,
    a_retired_key_is_deleted_only_once_its_tokens_expired,
    forged_headers_are_refused_over_http,
);

const INTROSPECTION_SECRET: &str = "introspection-secret-0123456789abcdef0123456789";

fn keys_settings() -> Vec<(&'static str, &'static str)> {
    vec![("JWKS_MAX_AGE", "1s"), ("TENANT_REFRESH_INTERVAL", "50ms"), ("INTROSPECTION_SECRET", INTROSPECTION_SECRET)]
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// `keys ARGS --tenant <the suite's tenant>`.
fn keys(app: &TestApp, args: &[&str]) -> String {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--tenant", tenant()]);
    app.env().cli_ok(&keys_settings(), &all)
}

fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Resp {
    app.request("GET", path, None, headers)
}

/// A customer's token, issued now.
fn customer_token(app: &TestApp, email: &str) -> String {
    app.registered(email);
    let r = app.login(email, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.text);
    r.token()
}

fn one_command_moves_a_tenant_from_hs256_to_its_own_key(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &keys_settings()) else { return };
    let before = customer_token(&app, "ann@example.com");
    assert_eq!(header_of(&before), json!({"typ": "JWT", "alg": "HS256"}));
    let jwks = get(&app, "/.well-known/jwks.json", &[]);
    jwks.assert_json(200, json!({"keys": []}));
    let config = get(&app, "/.well-known/openid-configuration", &[]).json();
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["HS256"]));
    let issuer = config["issuer"].as_str().unwrap().to_string();
    assert_eq!(config["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));

    let created = keys(&app, &["create", "--algorithm", "ES256"]);
    let kid = created.split('\t').next().unwrap().to_string();
    assert!(created.trim_end().ends_with("active"), "the first key is active at once: {created}");
    eventually("new tokens are signed with the key", || {
        header_of(&app.login("ann@example.com", PASSWORD).token())["kid"] == kid.as_str()
    });
    let after = app.login("ann@example.com", PASSWORD).token();
    assert_eq!(header_of(&after)["alg"], "ES256");
    assert_eq!(claims(&after)["iss"], issuer.as_str());
    assert_eq!(claims(&after)["tenant"], tenant());
    assert_eq!(app.refresh(&after).status, 200);
    assert_eq!(app.refresh(&before).status, 200, "HS256 tokens issued before the switch live on until exp");

    // Public keys only, cacheable as the headers say, with an ETag.
    let r = get(&app, "/.well-known/jwks.json", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=1"));
    let keys_json = r.json();
    let published = keys_json["keys"].as_array().unwrap();
    assert_eq!(published.len(), 1);
    let key = published[0].as_object().unwrap();
    assert_eq!(
        (key["kid"].as_str(), key["alg"].as_str(), key["kty"].as_str()),
        (Some(kid.as_str()), Some("ES256"), Some("EC"))
    );
    for private in ["d", "k", "p", "q"] {
        assert!(!key.contains_key(private), "no private parameter {private}: {key:?}");
    }
    assert!(!r.text.contains(crate::helpers::JWT_SECRET), "never the HS256 secret");
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(get(&app, "/.well-known/jwks.json", &[("if-none-match", &etag)]).status, 304);
    let config = get(&app, "/.well-known/openid-configuration", &[]).json();
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["ES256"]));

    // The private half is sealed at rest.
    let stored = app.db().text("SELECT private_sealed AS v FROM signing_key");
    assert!(stored.starts_with("xa1."), "sealed: {stored:.12}");
    // `keys list` and `keys show` (the PEM is what Medusa's jwtPublicKey takes).
    assert!(keys(&app, &["list"]).contains(&format!("{kid}\tES256\tactive")));
    let shown = keys(&app, &["show", &kid]);
    assert!(shown.contains("-----BEGIN PUBLIC KEY-----"), "{shown}");
}

/// Runs tests/js-sdk/verify.mjs with `input`; its output.
fn node_verify(input: &Value) -> Option<String> {
    if !crate::js_sdk::node_ready() {
        return None;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("js-sdk");
    let mut child = Command::new("node")
        .arg("verify.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node verify.mjs: {stdout}\n{stderr}");
    assert!(stdout.contains("verify complete"), "{stdout}\n{stderr}");
    Some(stdout.into_owned())
}

/// A token with one character of its signature changed (not the last one, whose low bits may
/// be base64 padding that a decoder ignores).
fn tampered(token: &str) -> String {
    let signature_at = token.rfind('.').unwrap() + 1;
    let mut bytes = token.as_bytes().to_vec();
    let i = signature_at + 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn third_party_libraries_verify_tokens_through_the_jwks(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &keys_settings()) else { return };
    let hs256 = customer_token(&app, "bob@example.com");
    // An EdDSA key, then an ES256 one: both published while the ES256 one signs.
    let ed = keys(&app, &["create", "--algorithm", "EdDSA"]).split('\t').next().unwrap().to_string();
    eventually("EdDSA signs", || header_of(&app.login("bob@example.com", PASSWORD).token())["kid"] == ed.as_str());
    let eddsa = app.login("bob@example.com", PASSWORD).token();
    let es = keys(&app, &["create", "--algorithm", "ES256"]).split('\t').next().unwrap().to_string();
    keys(&app, &["activate", &es]);
    eventually("ES256 signs", || header_of(&app.login("bob@example.com", PASSWORD).token())["kid"] == es.as_str());
    let es256 = app.login("bob@example.com", PASSWORD).token();
    let config = get(&app, "/.well-known/openid-configuration", &[]).json();
    let issuer = config["issuer"].as_str().unwrap();
    let pem = keys(&app, &["show", &es]).lines().skip(1).collect::<Vec<_>>().join("\n") + "\n";
    let input = json!({
        "jwks_uri": format!("{}/.well-known/jwks.json", app.base),
        "issuer": issuer,
        "host": tenant_host(),
        "valid": [eddsa, es256],
        "invalid": [tampered(&eddsa), tampered(&es256), hs256],
        "pem_es256": {"pem": pem, "token": es256},
    });
    let Some(out) = node_verify(&input) else { return };
    assert!(out.contains("jose: EdDSA") && out.contains("jose: ES256"), "{out}");
    assert!(out.contains("jsonwebtoken 9 (Medusa's verifier): ES256 verifies"), "{out}");
    assert_eq!(out.matches("jose: refused").count(), 3, "{out}");
}

fn a_rotation_under_load_fails_no_request(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &keys_settings()) else { return };
    let second = app.sibling(&keys_settings());
    app.registered("cat@example.com");
    keys(&app, &["create"]);
    eventually("the key signs", || header_of(&app.login("cat@example.com", PASSWORD).token()).get("kid").is_some());
    let first = app.login("cat@example.com", PASSWORD).token();
    // The rotation starts from a key both instances know: the sibling reads the new key from
    // the directory (within one refresh on a quiet machine, later on a loaded one).
    eventually("the sibling verifies the key", || second.refresh(&first).status == 200);
    let stop = AtomicBool::new(false);
    let (served, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let issued = std::sync::Mutex::new(vec![first.clone()]);
    let kids = std::sync::Mutex::new(std::collections::BTreeSet::new());
    std::thread::scope(|s| {
        for instance in [&app, &second] {
            let (stop, served, failed, issued, kids) = (&stop, &served, &failed, &issued, &kids);
            let mut token = first.clone();
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let r = instance.refresh(&token);
                    if r.status == 200 {
                        served.fetch_add(1, Ordering::SeqCst);
                        token = r.token();
                        kids.lock().unwrap().insert(header_of(&token)["kid"].as_str().unwrap_or_default().to_string());
                        issued.lock().unwrap().push(token.clone());
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                        eprintln!("refresh failed during the rotation: {} {}", r.status, r.text);
                    }
                }
            });
        }
        let rotated = keys(&app, &["rotate"]);
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        assert!(!rotated.is_empty());
    });
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no request failed");
    assert!(served.load(Ordering::SeqCst) > 10, "the load ran");
    assert_eq!(kids.lock().unwrap().len(), 2, "tokens were signed by the old key, then by the new one");
    // Every token issued during the rotation still verifies, each on the other instance than
    // the one before.
    let issued = issued.into_inner().unwrap();
    for (i, token) in issued.iter().enumerate() {
        let instance = if i % 2 == 0 { &app } else { &second };
        assert_eq!(instance.refresh(token).status, 200, "token {i} of {} of the rotation", issued.len());
    }
    let listed = keys(&app, &["list"]);
    assert_eq!(listed.matches("\tactive").count(), 1, "{listed}");
    assert_eq!(listed.matches("\tretired").count(), 1, "{listed}");
}

fn introspect(app: &TestApp, secret: &str, token: &str) -> Resp {
    let body = json!({ "token": token }).to_string();
    app.post_with("/auth/token/introspect", &body, &[("authorization", &format!("Bearer {secret}"))])
}

fn introspection_tells_what_a_jwks_verifier_cannot(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &keys_settings()) else { return };
    app.registered("dan@example.com");
    keys(&app, &["create"]);
    eventually("the key signs", || header_of(&app.login("dan@example.com", PASSWORD).token()).get("kid").is_some());
    let token = app.login("dan@example.com", PASSWORD).token();
    let r = introspect(&app, INTROSPECTION_SECRET, &token);
    assert_eq!(r.status, 200, "{}", r.text);
    let answer = r.json();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["tenant"], tenant());
    assert_eq!(answer["sub"], claims(&token)["auth_identity_id"]);
    assert_eq!(introspect(&app, "a wrong secret of enough length, quite wrong", &token).status, 401);
    assert_eq!(app.post("/auth/token/introspect", &json!({ "token": token }).to_string()).status, 401);
    let form = format!("token={token}");
    let r = app.request(
        "POST",
        "/auth/token/introspect",
        Some(&form),
        &[
            ("authorization", &format!("Bearer {INTROSPECTION_SECRET}")),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
    );
    assert_eq!(r.json()["active"], true, "RFC 7662's form body");
    // A revocation: the token still verifies through the JWKS until exp, but is no longer active.
    let r = app.post_with("/auth/logout-all", "", &[("authorization", &format!("Bearer {token}"))]);
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    assert_eq!(introspect(&app, INTROSPECTION_SECRET, &token).json(), json!({"active": false}));
    assert_eq!(introspect(&app, INTROSPECTION_SECRET, "not.a.token").json(), json!({"active": false}));
    let missing = introspect(&app, INTROSPECTION_SECRET, "");
    assert_eq!(missing.status, 400, "{}", missing.text);
    // Off without a secret.
    let off = app.sibling(&[("INTROSPECTION_SECRET", "")]);
    assert_eq!(introspect(&off, INTROSPECTION_SECRET, &token).status, 404);
}

fn a_retired_key_is_deleted_only_once_its_tokens_expired(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &keys_settings()) else { return };
    app.registered("eve@example.com");
    let old = keys(&app, &["create"]).split('\t').next().unwrap().to_string();
    eventually("the key signs", || header_of(&app.login("eve@example.com", PASSWORD).token())["kid"] == old.as_str());
    let token = app.login("eve@example.com", PASSWORD).token();
    let new = keys(&app, &["create"]).split('\t').next().unwrap().to_string();
    keys(&app, &["activate", &new]);
    eventually("the new key signs", || {
        header_of(&app.login("eve@example.com", PASSWORD).token())["kid"] == new.as_str()
    });
    assert_eq!(app.refresh(&token).status, 200, "the retired key verifies");
    let refused = app.env().cli(&keys_settings(), &["keys", "delete", &old, "--tenant", tenant()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("may live until"));
    let active = app.env().cli(&keys_settings(), &["keys", "delete", &new, "--tenant", tenant()]);
    assert!(!active.status.success(), "never the active key");
    keys(&app, &["delete", &old, "--force"]);
    eventually("tokens of a deleted key stop verifying", || app.refresh(&token).status == 401);
    let jwks = get(&app, "/.well-known/jwks.json", &[]).json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
}

/// `header.payload.signature` with `header` replaced (the signature no longer matches it, unless
/// the forger signs anew as below).
fn with_header(header: &Value, payload: &str, signature: &str) -> String {
    format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

fn forged_headers_are_refused_over_http(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &keys_settings()) else { return };
    app.registered("fay@example.com");
    let kid = keys(&app, &["create", "--algorithm", "EdDSA"]).split('\t').next().unwrap().to_string();
    eventually("the key signs", || header_of(&app.login("fay@example.com", PASSWORD).token())["kid"] == kid.as_str());
    let genuine = app.login("fay@example.com", PASSWORD).token();
    assert_eq!(app.refresh(&genuine).status, 200);
    let mut parts = genuine.split('.');
    let (_, payload, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let jwks = get(&app, "/.well-known/jwks.json", &[]).json();
    let public = &jwks["keys"][0];
    // HS256 under the key's kid, with the public key (as the JWK, its `x`, its raw bytes) as the
    // HMAC secret: what an `alg` confusion would accept.
    let x = public["x"].as_str().unwrap();
    for secret in [public.to_string().into_bytes(), x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(x).unwrap()] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.clone());
        let forged = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(app.refresh(&forged).status, 401, "HS256 with a public key as the secret");
    }
    for header in [
        json!({"alg": "none", "kid": kid}),
        json!({"alg": "none"}),
        json!({"alg": "EdDSA", "kid": "no-such-key"}),
        json!({"alg": "EdDSA", "kid": kid, "jku": "https://evil.example/jwks.json"}),
        json!({"alg": "EdDSA", "kid": kid, "x5u": "https://evil.example/cert.pem"}),
        json!({"alg": "EdDSA", "kid": kid, "jwk": public}),
        json!({"alg": "ES256", "kid": kid}),
    ] {
        let forged = with_header(&header, payload, signature);
        assert_eq!(app.refresh(&forged).status, 401, "{header}");
        let unsigned = with_header(&header, payload, "");
        assert_eq!(app.refresh(&unsigned).status, 401, "{header} without a signature");
    }
    // The key deleted: its tokens stop verifying (the retired-key rules are in the test above).
    let other = keys(&app, &["create"]).split('\t').next().unwrap().to_string();
    keys(&app, &["activate", &other]);
    keys(&app, &["delete", &kid, "--force"]);
    eventually("the deleted key's token is refused", || app.refresh(&genuine).status == 401);
}
