//! Sign-in with other providers, over real HTTP on both backends.
//!
//! - Against a real OpenID Connect provider: `oidc-provider` (pinned in
//!   `tests/js-sdk/package.json`), started by the test from `tests/js-sdk/idp.mjs` on a loopback
//!   port. The test follows the authorization URL like a browser (cookies kept, redirects followed
//!   by hand), logs in on the provider's own login page, and hands the query of the redirect to
//!   the storefront's callback page to `/auth/{actor}/oidc/callback`, as a storefront does. Needs
//!   node: skipped with a notice without it, unless `XCLADE_REQUIRE` lists `node`.
//! - The hostile ID tokens (another key, `alg: none`, HS256, wrong `aud`, expired, another
//!   sign-in's `nonce`) cannot be had from a conforming provider: a small issuer of our own on a
//!   loopback port (discovery, JWKS, token endpoint) signs them, and also serves the state
//!   binding tests (which need no real login).
//! - GitHub's token endpoint and REST API (`/user`, `/user/emails`): a local server answering
//!   GitHub's documented shapes. Only a real GitHub account proves the real endpoints
//!   (docs/operations.md says how).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{self, claims, Backend, Resp, TestApp};
use crate::on_both_backends;

on_both_backends!(
    sign_in_with_a_real_openid_provider_end_to_end,
    an_unverified_email_never_reaches_an_existing_account,
    linking_needs_the_password_and_the_account_s_own_verified_email,
    callback_refusals_store_nothing,
    a_provider_that_cannot_be_reached_answers_502_and_stores_nothing,
    hostile_id_tokens_are_refused,
    a_state_works_once_and_only_for_its_tenant_actor_and_provider,
    racing_callbacks_with_one_state_sign_in_once,
    google_is_an_openid_issuer_found_by_discovery,
    sign_in_with_github_reads_the_verified_primary_email,
);

pub(crate) const CLIENT_ID: &str = "xclade-test";
pub(crate) const CLIENT_SECRET: &str = "test-client-secret-0123456789";
/// The storefront's callback page: the provider sends the browser there, the test stops there.
pub(crate) const CALLBACK: &str = "http://127.0.0.1:9/storefront/callback";
const STATE_INVALID: &str = "Invalid or expired state: start the sign-in again";
const FAILED: &str = "Authentication with the provider failed";
const LINK_REFUSED: &str =
    "The provider account cannot be linked: it must have this account's email, verified, and no other account";

// ---------------------------------------------------------------------------------------------
// The real provider: oidc-provider under node.

/// `oidc-provider` running on a loopback port; killed when dropped.
pub(crate) struct Idp {
    pub issuer: String,
    child: Child,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    /// Starts it with `redirect_uris`; `None` (after the notice) when node is missing and not
    /// required. A start that fails (node exits, or prints nothing within a minute on a loaded
    /// machine) is tried again, twice; the panic after the third says how each one ended.
    pub(crate) fn start(redirect_uris: &[&str]) -> Option<Idp> {
        if !crate::js_sdk::node_ready() {
            return None;
        }
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            match Idp::spawn(redirect_uris) {
                Ok(idp) => return Some(idp),
                Err(why) => {
                    eprintln!("note: idp.mjs did not start (try {attempt} of 3): {why}");
                    failures.push(why);
                }
            }
        }
        panic!("idp.mjs did not start in three tries:\n{}", failures.join("\n"));
    }

    fn spawn(redirect_uris: &[&str]) -> Result<Idp, String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("js-sdk");
        // Its standard error goes to a file, read back when it did not start.
        let mut stderr = tempfile::tempfile().expect("a temporary file for the provider's stderr");
        let mut child = Command::new("node")
            .arg("idp.mjs")
            .current_dir(&dir)
            .env("REDIRECT_URIS", redirect_uris.join(","))
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone().expect("the stderr file"))
            .spawn()
            .map_err(|e| format!("node cannot be started: {e}"))?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep reading until node exits: a closed pipe would kill it at its next write.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(60));
        let started: Value = line.as_deref().ok().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null);
        if let Some(issuer) = started["issuer"].as_str() {
            return Ok(Idp { issuer: issuer.to_string(), child });
        }
        let ended = match child.try_wait() {
            Ok(Some(status)) => format!("node exited ({status})"),
            _ if line.is_err() => "nothing printed within 60 s".to_string(),
            _ => "node closed its output".to_string(),
        };
        let _ = child.kill();
        let _ = child.wait();
        let mut err = String::new();
        let _ = std::io::Seek::rewind(&mut stderr).and_then(|_| stderr.read_to_string(&mut err));
        Err(format!("{ended}; stdout {:?}; stderr {:?}", line.unwrap_or_default(), err.trim()))
    }

    /// The server settings that make it the provider `oidc`.
    pub(crate) fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OAUTH_OIDC_ISSUER", self.issuer.clone()),
            ("OAUTH_OIDC_CLIENT_ID", CLIENT_ID.into()),
            ("OAUTH_OIDC_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("OAUTH_OIDC_CALLBACK_URL", CALLBACK.into()),
            ("OAUTH_OIDC_DISPLAY_NAME", "Test IdP".into()),
        ]
    }
}

fn spawn(backend: Backend, settings: &[(&'static str, String)]) -> Option<TestApp> {
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(backend, &pairs)
}

/// What a browser does with `location`: follows redirects, keeps cookies, logs in as `login` on
/// the provider's login form (and confirms any consent form), until the provider sends it to
/// `callback`. Returns the query the storefront's callback page receives.
pub(crate) fn browser_sign_in(location: &str, login: &str, callback: &str) -> String {
    let agent = ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(30)).build();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let (mut url, mut form) = (location.to_string(), None::<String>);
    for _ in 0..12 {
        if let Some(rest) = url.strip_prefix(callback) {
            return rest.trim_start_matches('?').to_string();
        }
        let mut request = agent.request(if form.is_some() { "POST" } else { "GET" }, &url);
        if !cookies.is_empty() {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.set("cookie", &header.join("; "));
        }
        let sent = match form.take() {
            Some(body) => request.set("content-type", "application/x-www-form-urlencoded").send_string(&body),
            None => request.call(),
        };
        let response = match sent {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("the browser could not load {url}: {e}"),
        };
        for set in response.all("set-cookie") {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    cookies.remove(name.trim());
                } else {
                    cookies.insert(name.trim().to_string(), value.to_string());
                }
            }
        }
        let status = response.status();
        let origin: String = url.split('/').take(3).collect::<Vec<_>>().join("/");
        let absolute =
            |target: &str| if target.starts_with("http") { target.to_string() } else { format!("{origin}{target}") };
        if (300..400).contains(&status) {
            url = absolute(response.header("location").expect("a redirect names its location"));
            continue;
        }
        let page = response.into_string().unwrap();
        assert_eq!(status, 200, "the provider answered {status} at {url}: {page}");
        let action = page.split("action=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a form");
        url = absolute(&action.replace("&amp;", "&"));
        form = Some(if page.contains("name=\"login\"") {
            format!("prompt=login&login={}&password=any-password", login.replace('@', "%40").replace('+', "%2B"))
        } else {
            "prompt=consent".to_string()
        });
    }
    panic!("the browser never reached {callback}");
}

/// A query parameter of a URL (base64url values need no decoding).
pub(crate) fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?').map_or(url, |(_, q)| q);
    query.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}="))).map(str::to_string)
}

fn begin(app: &TestApp, actor: &str, provider: &str) -> String {
    let r = app.post(&format!("/auth/{actor}/{provider}"), "{}");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()["location"].as_str().unwrap().to_string()
}

pub(crate) fn callback(app: &TestApp, actor: &str, provider: &str, query: &str) -> Resp {
    app.request("GET", &format!("/auth/{actor}/{provider}/callback?{query}"), None, &[("accept", "application/json")])
}

/// `POST /store/customers` for `email`, as the storefront does with the sign-in's `token`.
fn create_customer(app: &TestApp, email: &str, token: &str) -> Resp {
    app.post_with("/store/customers", &json!({"email": email}).to_string(), &[("authorization", &bearer(token))])
}

#[track_caller]
fn assert_refused(r: &Resp, message: &str) {
    r.assert_json(401, json!({"type": "unauthorized", "message": message}));
}

fn count(app: &TestApp, table_and_condition: &str) -> usize {
    app.db().count(table_and_condition)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn sign_in_with_a_real_openid_provider_end_to_end(backend: Backend) {
    let Some(idp) = Idp::start(&[CALLBACK]) else { return };
    let Some(app) = spawn(backend, &idp.settings()) else { return };

    let providers = app.request("GET", "/auth/customer/providers", None, &[]).json();
    assert_eq!(
        providers["providers"][1],
        json!({"id": "oidc", "identifier": "oidc", "display_name": "Test IdP", "flow": "redirect"})
    );

    // GET answers a location too (Medusa's route takes both methods); each is a sign-in of its own.
    let by_get = app.request("GET", "/auth/customer/oidc", None, &[]).json()["location"].as_str().unwrap().to_string();
    let location = begin(&app, "customer", "oidc");
    assert!(location.starts_with(&format!("{}/auth?", idp.issuer)), "{location}");
    for name in ["state", "nonce", "code_challenge"] {
        assert_ne!(param(&location, name), param(&by_get, name), "{name} is fresh for every sign-in");
    }
    assert_eq!(param(&location, "code_challenge_method").as_deref(), Some("S256"));
    let state = param(&location, "state").unwrap();
    assert_eq!(count(&app, "oauth_state"), 2);
    assert_eq!(count(&app, &format!("oauth_state WHERE state_hash = '{state}'")), 0, "the state is stored hashed");

    let email = helpers::email("social");
    let query = browser_sign_in(&location, &email, CALLBACK);
    let r = callback(&app, "customer", "oidc", &query);
    assert_eq!(r.status, 200, "{} (the provider answered {query})", r.text);
    let token = r.token();
    let c = claims(&token);
    assert_eq!((c["actor_id"].as_str(), c["auth_provider"].as_str()), (Some(""), Some("oidc")));
    assert_eq!(c["user_metadata"]["email"], email.as_str());
    assert_eq!(c["user_metadata"]["email_verified"], true);
    assert_eq!(c["user_metadata"]["name"], format!("Test {}", email.split('@').next().unwrap()));
    let subject = format!("sub-{email}");
    let mut db = app.db();
    assert_eq!(
        db.text("SELECT entity_id AS v FROM provider_identity WHERE provider = 'oidc'"),
        subject,
        "entity_id is the provider's subject"
    );
    assert_eq!(count(&app, "oauth_state"), 1, "the state was consumed; the GET one waits");

    // The same state again: refused, nothing new.
    assert_refused(&callback(&app, "customer", "oidc", &query), STATE_INVALID);

    // The storefront creates the customer with the verified email, then refreshes.
    let auth = bearer(&token);
    let created = app.post_with("/store/customers", &json!({"email": email}).to_string(), &[("authorization", &auth)]);
    assert_eq!(created.status, 200, "{}", created.text);
    let customer_id = created.json()["customer"]["id"].as_str().unwrap().to_string();
    let refreshed = app.refresh(&token);
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(claims(&refreshed.token())["actor_id"], customer_id.as_str());

    // A second sign-in of the same user: the same identity, with its customer.
    let again = browser_sign_in(&begin(&app, "customer", "oidc"), &email, CALLBACK);
    let second = callback(&app, "customer", "oidc", &again);
    assert_eq!(second.status, 200, "{}", second.text);
    let second = second.token();
    assert_eq!(claims(&second)["auth_identity_id"], c["auth_identity_id"]);
    assert_eq!(claims(&second)["actor_id"], customer_id.as_str());
    assert_eq!(count(&app, "provider_identity WHERE provider = 'oidc'"), 1);

    // Sessions and logout-all work as for emailpass.
    let session = app.open_session(&second);
    let me = app.with_session("GET", "/store/customers/me", &session, None);
    assert_eq!(me.status, 200, "{}", me.text);
    let out = app.post_with("/auth/logout-all", "", &[("authorization", &bearer(&second))]);
    assert_eq!(out.status, 200, "{}", out.text);
    assert_eq!(app.refresh(&second).status, 401);
    assert_eq!(app.with_session("GET", "/store/customers/me", &session, None).status, 401);
    assert!(!db.texts("SELECT user_metadata AS v FROM provider_identity").iter().any(|m| m.contains(CLIENT_SECRET)));
}

fn an_unverified_email_never_reaches_an_existing_account(backend: Backend) {
    let Some(idp) = Idp::start(&[CALLBACK]) else { return };
    let Some(app) = spawn(backend, &idp.settings()) else { return };
    // An account with a password and a customer.
    let email = helpers::email("owner");
    let registration = app.registered(&email);
    let created = create_customer(&app, &email, &registration);
    assert_eq!(created.status, 200, "{}", created.text);
    let owner = claims(&app.login(&email, helpers::PASSWORD).token());

    // Someone signs in at a provider that does not vouch for the address.
    let query = browser_sign_in(&begin(&app, "customer", "oidc"), &format!("unverified-{email}"), CALLBACK);
    let r = callback(&app, "customer", "oidc", &query);
    assert_eq!(r.status, 200, "{}", r.text);
    let social = claims(&r.token());
    assert_eq!(social["actor_id"], "", "no customer of the account");
    assert_ne!(social["auth_identity_id"], owner["auth_identity_id"], "an identity of its own");
    assert_eq!(social["user_metadata"]["email_verified"], false);
    // It cannot open a customer under that address either.
    let refused = create_customer(&app, &email, &r.token());
    refused.assert_invalid("no verified email");
    // The account is as it was.
    let after = claims(&app.login(&email, helpers::PASSWORD).token());
    assert_eq!((&after["auth_identity_id"], &after["actor_id"]), (&owner["auth_identity_id"], &owner["actor_id"]));

    // A provider that does vouch for the address does not join the account either: a separate
    // identity, whose customer cannot be made while the account holds the address.
    let verified = browser_sign_in(&begin(&app, "customer", "oidc"), &email, CALLBACK);
    let r = callback(&app, "customer", "oidc", &verified);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(claims(&r.token())["auth_identity_id"], owner["auth_identity_id"]);
    assert_eq!(claims(&r.token())["actor_id"], "");
    let taken = create_customer(&app, &email, &r.token());
    assert_eq!(taken.status, 422, "{}", taken.text);
}

/// `POST /auth/{actor}/{provider}/link`: the owner proves the password, the provider asserts the
/// account's own email as verified; then the provider signs in to the account.
fn linking_needs_the_password_and_the_account_s_own_verified_email(backend: Backend) {
    let Some(idp) = Idp::start(&[CALLBACK]) else { return };
    let Some(app) = spawn(backend, &idp.settings()) else { return };
    let email = helpers::email("linker");
    let registration = app.registered(&email);
    let created = create_customer(&app, &email, &registration);
    assert_eq!(created.status, 200, "{}", created.text);
    let password_token = app.login(&email, helpers::PASSWORD).token();
    let owner = claims(&password_token);
    let link = |token: Option<&str>| {
        let auth = token.map(bearer);
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        app.post_with("/auth/customer/oidc/link", "{}", &headers)
    };
    // Without the password's token: the negotiated 401.
    assert_eq!(link(None).status, 401);
    let linked_oidc = || count(&app, "provider_identity WHERE provider = 'oidc'");

    // The provider does not vouch for the address, or vouches for another one: refused.
    for login in [format!("unverified-{email}"), helpers::email("someone-else")] {
        let location = link(Some(&password_token)).json()["location"].as_str().unwrap().to_string();
        let query = browser_sign_in(&location, &login, CALLBACK);
        assert_refused(&callback(&app, "customer", "oidc", &query), LINK_REFUSED);
    }
    assert_eq!(linked_oidc(), 0, "nothing stored");

    // The account's own email, verified: linked.
    let location = link(Some(&password_token)).json()["location"].as_str().unwrap().to_string();
    let r = callback(&app, "customer", "oidc", &browser_sign_in(&location, &email, CALLBACK));
    assert_eq!(r.status, 200, "{}", r.text);
    let linked = claims(&r.token());
    assert_eq!((&linked["auth_identity_id"], &linked["actor_id"]), (&owner["auth_identity_id"], &owner["actor_id"]));
    assert_eq!(linked["auth_provider"], "oidc");
    // From now on a plain sign-in with the provider reaches the account and its customer.
    let r = callback(&app, "customer", "oidc", &browser_sign_in(&begin(&app, "customer", "oidc"), &email, CALLBACK));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claims(&r.token())["auth_identity_id"], owner["auth_identity_id"]);
    assert_eq!(claims(&r.token())["actor_id"], owner["actor_id"]);
    let me = app.request("GET", "/store/customers/me", None, &[("authorization", &bearer(&r.token()))]);
    assert_eq!(me.status, 200, "{}", me.text);
    // The password still works, and logout-all through either ends both.
    assert_eq!(app.login(&email, helpers::PASSWORD).status, 200);
    assert_eq!(linked_oidc(), 1);

    // A provider identity that already signs in to an identity of its own is never moved.
    let other = helpers::email("first-social");
    let first =
        callback(&app, "customer", "oidc", &browser_sign_in(&begin(&app, "customer", "oidc"), &other, CALLBACK));
    assert_eq!(first.status, 200, "{}", first.text);
    let other_password = app.registered(&other);
    let location = link(Some(&other_password)).json()["location"].as_str().unwrap().to_string();
    assert_refused(&callback(&app, "customer", "oidc", &browser_sign_in(&location, &other, CALLBACK)), LINK_REFUSED);
    // And a provider's own token cannot start a link (no password proven).
    assert_eq!(link(Some(&first.token())).status, 401);
}

fn callback_refusals_store_nothing(backend: Backend) {
    let Some(idp) = Idp::start(&[CALLBACK]) else { return };
    let Some(app) = spawn(backend, &idp.settings()) else { return };
    // No state, an unknown one, a malformed query.
    assert_refused(&callback(&app, "customer", "oidc", "code=abc"), STATE_INVALID);
    assert_refused(&callback(&app, "customer", "oidc", "code=abc&state=forged"), STATE_INVALID);
    assert_refused(&callback(&app, "customer", "oidc", "%zz"), STATE_INVALID);
    // The provider's error (the user said no): refused, and the state is spent.
    let state = param(&begin(&app, "customer", "oidc"), "state").unwrap();
    assert_refused(&callback(&app, "customer", "oidc", &format!("error=access_denied&state={state}")), FAILED);
    assert_refused(&callback(&app, "customer", "oidc", &format!("code=abc&state={state}")), STATE_INVALID);
    // A code the provider never issued, and a real code with another sign-in's state.
    let state = param(&begin(&app, "customer", "oidc"), "state").unwrap();
    assert_refused(&callback(&app, "customer", "oidc", &format!("code=not-a-code&state={state}")), FAILED);
    let real = browser_sign_in(&begin(&app, "customer", "oidc"), &helpers::email("x"), CALLBACK);
    let code = param(&real, "code").unwrap();
    let other_state = param(&begin(&app, "customer", "oidc"), "state").unwrap();
    assert_refused(&callback(&app, "customer", "oidc", &format!("code={code}&state={other_state}")), FAILED);
    // A missing code.
    let state = param(&begin(&app, "customer", "oidc"), "state").unwrap();
    assert_refused(&callback(&app, "customer", "oidc", &format!("state={state}")), FAILED);
    assert_eq!(count(&app, "provider_identity"), 0);
    assert_eq!(count(&app, "auth_identity"), 0);
    // The POST callback reads the same query; emailpass still has none; unknown providers are 400.
    let r = app.post("/auth/customer/oidc/callback?code=abc", "{}");
    assert_refused(&r, STATE_INVALID);
    assert_eq!(app.request("GET", "/auth/customer/emailpass/callback", None, &[]).status, 400);
    assert_eq!(app.request("GET", "/auth/customer/emailpass", None, &[]).status, 400);
    let unknown = app.post("/auth/customer/google", "{}");
    unknown.assert_json(400, json!({"type": "not_allowed", "message": "Unknown auth provider: google"}));
    // The password routes stay emailpass's.
    let r = app.post("/auth/customer/oidc/register", &helpers::credentials("a@b.example", helpers::PASSWORD));
    assert_eq!(r.status, 400, "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// A local server of our own: the hostile issuer and GitHub's documented shapes.

/// A request as the local server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn form(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|p| p.strip_prefix(&format!("{name}="))).map(|v| v.replace("%3A", ":"))
    }
}

type Handler = dyn Fn(&str, &Seen) -> (u16, String) + Send + Sync;

/// Serves `handler` (given its own base URL) on a loopback port, one connection at a time.
fn local_server(handler: Arc<Handler>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let own = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) =
                (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let seen = Seen { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() };
            let (status, answer) = handler(&own, &seen);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    base
}

/// An issuer whose token endpoint answers whatever ID token the test sets next.
pub(crate) struct HostileIssuer {
    pub(crate) base: String,
    pub(crate) next_id_token: Arc<Mutex<String>>,
    kid: String,
    key: jsonwebtoken::EncodingKey,
}

impl HostileIssuer {
    pub(crate) fn start() -> HostileIssuer {
        let pair = auth_domain::keys::generate(auth_domain::keys::KeyAlgorithm::EdDSA).unwrap();
        let jwk: Value = serde_json::from_str(&pair.public_jwk).unwrap();
        let next_id_token = Arc::new(Mutex::new(String::new()));
        let next = next_id_token.clone();
        let base = local_server(Arc::new(move |base: &str, seen: &Seen| match seen.path.as_str() {
            "/.well-known/openid-configuration" => (
                200,
                json!({"issuer": base, "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"), "jwks_uri": format!("{base}/jwks")})
                .to_string(),
            ),
            "/jwks" => (200, json!({"keys": [jwk]}).to_string()),
            "/token" if seen.method == "POST" => {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
                );
                if seen.header("authorization") != Some(expected.as_str()) || seen.form("code_verifier").is_none() {
                    return (401, json!({"error": "invalid_client"}).to_string());
                }
                (
                    200,
                    json!({"access_token": "at", "token_type": "Bearer", "id_token": *next.lock().unwrap()})
                        .to_string(),
                )
            }
            _ => (404, "{}".into()),
        }));
        HostileIssuer {
            base,
            next_id_token,
            kid: pair.kid.clone(),
            key: jsonwebtoken::EncodingKey::from_ed_der(&pair.private_der),
        }
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OAUTH_OIDC_ISSUER", self.base.clone()),
            ("OAUTH_OIDC_CLIENT_ID", CLIENT_ID.into()),
            ("OAUTH_OIDC_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("OAUTH_OIDC_CALLBACK_URL", CALLBACK.into()),
        ]
    }

    /// Valid claims for the sign-in whose nonce is `nonce`.
    pub(crate) fn claims(&self, nonce: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": self.base, "aud": CLIENT_ID, "sub": "hostile-subject", "iat": now, "exp": now + 300,
            "nonce": nonce, "email": "victim@example.com", "email_verified": true})
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn hostile_id_tokens_are_refused(backend: Backend) {
    let issuer = HostileIssuer::start();
    let Some(app) = spawn(backend, &issuer.settings()) else { return };
    let other = auth_domain::keys::generate(auth_domain::keys::KeyAlgorithm::EdDSA).unwrap();
    type Forge = Box<dyn Fn(&HostileIssuer, &str, &str) -> String>;
    let cases: Vec<(&str, Forge)> = vec![
        (
            "signed by another key under the issuer's kid",
            Box::new(move |i, nonce, _| {
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
                header.kid = Some(i.kid.clone());
                jsonwebtoken::encode(
                    &header,
                    &i.claims(nonce),
                    &jsonwebtoken::EncodingKey::from_ed_der(&other.private_der),
                )
                .unwrap()
            }),
        ),
        (
            "alg none",
            Box::new(|i, nonce, _| {
                let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": i.kid}).to_string());
                format!("{header}.{}.", URL_SAFE_NO_PAD.encode(i.claims(nonce).to_string()))
            }),
        ),
        (
            "HS256 keyed with the client secret",
            Box::new(|i, nonce, _| {
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                header.kid = Some(i.kid.clone());
                jsonwebtoken::encode(
                    &header,
                    &i.claims(nonce),
                    &jsonwebtoken::EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
                )
                .unwrap()
            }),
        ),
        (
            "wrong aud",
            Box::new(|i, nonce, _| {
                let mut c = i.claims(nonce);
                c["aud"] = json!("another-client");
                i.sign(&c)
            }),
        ),
        (
            "wrong iss",
            Box::new(|i, nonce, _| {
                let mut c = i.claims(nonce);
                c["iss"] = json!("https://accounts.google.com");
                i.sign(&c)
            }),
        ),
        (
            "expired",
            Box::new(|i, nonce, _| {
                let mut c = i.claims(nonce);
                let now = chrono::Utc::now().timestamp();
                (c["iat"], c["exp"]) = (json!(now - 7200), json!(now - 3600));
                i.sign(&c)
            }),
        ),
        ("another sign-in's nonce", Box::new(|i, _, other_nonce| i.sign(&i.claims(other_nonce)))),
    ];
    for (case, forge) in &cases {
        let location = begin(&app, "customer", "oidc");
        let other_location = begin(&app, "customer", "oidc");
        let (state, nonce) = (param(&location, "state").unwrap(), param(&location, "nonce").unwrap());
        *issuer.next_id_token.lock().unwrap() = forge(&issuer, &nonce, &param(&other_location, "nonce").unwrap());
        let r = callback(&app, "customer", "oidc", &format!("code=c&state={state}"));
        assert_eq!(r.status, 401, "{case}: {}", r.text);
        assert_refused(&r, FAILED);
    }
    assert_eq!(count(&app, "provider_identity"), 0, "nothing stored");
    // The same issuer with an honest token: accepted (so each refusal above was the token's).
    let location = begin(&app, "customer", "oidc");
    let (state, nonce) = (param(&location, "state").unwrap(), param(&location, "nonce").unwrap());
    *issuer.next_id_token.lock().unwrap() = issuer.sign(&issuer.claims(&nonce));
    let r = callback(&app, "customer", "oidc", &format!("code=c&state={state}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claims(&r.token())["user_metadata"]["email"], "victim@example.com");
}

fn a_state_works_once_and_only_for_its_tenant_actor_and_provider(backend: Backend) {
    const NORTH: &str = "north.shop.test";
    const SOUTH: &str = "south.shop.test";
    let issuer = HostileIssuer::start();
    let mut settings = issuer.settings();
    settings.extend([
        ("TENANT_HOST_SUFFIX", ".shop.test".to_string()),
        ("TENANT_REFRESH_INTERVAL", "100ms".to_string()),
        ("OAUTH_GITHUB_CLIENT_ID", "gh".to_string()),
        ("OAUTH_GITHUB_CLIENT_SECRET", "gh-secret".to_string()),
        ("OAUTH_GITHUB_CALLBACK_URL", CALLBACK.to_string()),
        ("OAUTH_GITHUB_URL", issuer.base.clone()),
        ("OAUTH_GITHUB_API_URL", issuer.base.clone()),
    ]);
    let Some(app) = spawn(backend, &settings) else { return };
    app.env().with_own_tenants();
    let cli_settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for name in ["north", "south"] {
        app.env().cli_ok(&cli_settings, &["tenant", "create", name]);
    }
    let at = |host: &str, method: &str, path: &str| {
        app.request(
            method,
            path,
            Some("{}"),
            &[("host", host), ("content-type", "application/json"), ("accept", "application/json")],
        )
    };
    helpers::eventually("both stores are served", || {
        at(NORTH, "GET", "/auth/customer/providers").status == 200
            && at(SOUTH, "GET", "/auth/customer/providers").status == 200
    });

    let location = at(NORTH, "POST", "/auth/customer/oidc").json()["location"].as_str().unwrap().to_string();
    let (state, nonce) = (param(&location, "state").unwrap(), param(&location, "nonce").unwrap());
    let query = format!("code=c&state={state}");
    // Another store, another actor type, another provider: refused.
    assert_refused(&at(SOUTH, "GET", &format!("/auth/customer/oidc/callback?{query}")), STATE_INVALID);
    // (Another store never sees the state, so its attempt does not spend it.)
    *issuer.next_id_token.lock().unwrap() = issuer.sign(&issuer.claims(&nonce));
    let r = at(NORTH, "GET", &format!("/auth/customer/oidc/callback?{query}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claims(&r.token())["tenant"], "north");
    assert_refused(&at(NORTH, "GET", &format!("/auth/customer/oidc/callback?{query}")), STATE_INVALID);

    let state = param(at(NORTH, "POST", "/auth/customer/oidc").json()["location"].as_str().unwrap(), "state").unwrap();
    assert_refused(&at(NORTH, "GET", &format!("/auth/user/oidc/callback?code=c&state={state}")), STATE_INVALID);
    // The attempt of the wrong actor type spent it.
    assert_refused(&at(NORTH, "GET", &format!("/auth/customer/oidc/callback?code=c&state={state}")), STATE_INVALID);
    let state = param(at(NORTH, "POST", "/auth/customer/oidc").json()["location"].as_str().unwrap(), "state").unwrap();
    assert_refused(&at(NORTH, "GET", &format!("/auth/customer/github/callback?code=c&state={state}")), STATE_INVALID);
    assert_eq!(count(&app, "provider_identity"), 1);

    // An expired state: refused (the clock is moved by ageing the row).
    let location = at(NORTH, "POST", "/auth/customer/oidc").json()["location"].as_str().unwrap().to_string();
    let (state, nonce) = (param(&location, "state").unwrap(), param(&location, "nonce").unwrap());
    app.db().execute("UPDATE oauth_state SET expires_at = '2000-01-01 00:00:00'");
    *issuer.next_id_token.lock().unwrap() = issuer.sign(&issuer.claims(&nonce));
    assert_refused(&at(NORTH, "GET", &format!("/auth/customer/oidc/callback?code=c&state={state}")), STATE_INVALID);
}

/// Starting a sign-in needs the provider's discovery document. When nothing listens on the
/// issuer's port, or it answers an error or something that is not a discovery document, the
/// start answers 502 `provider_unavailable` and stores no pending sign-in; once the provider
/// answers, the same server starts sign-ins (a failed discovery is not cached).
fn a_provider_that_cannot_be_reached_answers_502_and_stores_nothing(backend: Backend) {
    use std::sync::atomic::{AtomicU8, Ordering};
    let unavailable = json!({
        "type": "provider_unavailable",
        "message": "The sign-in provider cannot be reached. Try again later."
    });
    // Nothing listens there: the port of a listener that was closed.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let settings = vec![
        ("OAUTH_OIDC_ISSUER", format!("http://127.0.0.1:{closed}")),
        ("OAUTH_OIDC_CLIENT_ID", CLIENT_ID.to_string()),
        ("OAUTH_OIDC_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("OAUTH_OIDC_CALLBACK_URL", CALLBACK.to_string()),
    ];
    let Some(app) = spawn(backend, &settings) else { return };
    app.post("/auth/customer/oidc", "{}").assert_json(502, unavailable.clone());
    app.request("GET", "/auth/customer/oidc", None, &[]).assert_json(502, unavailable.clone());
    assert_eq!(count(&app, "oauth_state"), 0);
    drop(app);

    // A provider that answers 500, then a body that is not JSON, then its discovery document.
    let mode = Arc::new(AtomicU8::new(0));
    let answers = mode.clone();
    let base = local_server(Arc::new(move |base: &str, seen: &Seen| match answers.load(Ordering::SeqCst) {
        0 => (500, "{}".into()),
        1 => (200, "<html>maintenance</html>".into()),
        _ if seen.path == "/.well-known/openid-configuration" => (
            200,
            json!({"issuer": base, "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"), "jwks_uri": format!("{base}/jwks")})
            .to_string(),
        ),
        _ => (404, "{}".into()),
    }));
    let settings: Vec<(&'static str, String)> =
        settings.into_iter().map(|(k, v)| if k == "OAUTH_OIDC_ISSUER" { (k, base.clone()) } else { (k, v) }).collect();
    let Some(app) = spawn(backend, &settings) else { return };
    app.post("/auth/customer/oidc", "{}").assert_json(502, unavailable.clone());
    mode.store(1, Ordering::SeqCst);
    app.post("/auth/customer/oidc", "{}").assert_json(502, unavailable);
    assert_eq!(count(&app, "oauth_state"), 0);
    mode.store(2, Ordering::SeqCst);
    let location = begin(&app, "customer", "oidc");
    assert!(location.starts_with(&format!("{base}/authorize?")), "{location}");
    assert_eq!(count(&app, "oauth_state"), 1);
}

/// Google goes through the OpenID path with its issuer put in place (`OAUTH_GOOGLE_ISSUER`, for
/// tests only): discovery, PKCE, nonce, the ID token. Google's real issuer is the default
/// (checked in `config/oauth.rs`); only real credentials prove Google's own endpoints.
fn google_is_an_openid_issuer_found_by_discovery(backend: Backend) {
    let issuer = HostileIssuer::start();
    let settings = vec![
        ("OAUTH_GOOGLE_CLIENT_ID", CLIENT_ID.to_string()),
        ("OAUTH_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("OAUTH_GOOGLE_CALLBACK_URL", CALLBACK.to_string()),
        ("OAUTH_GOOGLE_ISSUER", issuer.base.clone()),
    ];
    let Some(app) = spawn(backend, &settings) else { return };
    let providers = app.request("GET", "/auth/customer/providers", None, &[]).json();
    assert_eq!(
        providers["providers"][1],
        json!({"id": "google", "identifier": "google", "display_name": "Google", "flow": "redirect"})
    );
    let location =
        app.request("GET", "/auth/customer/google", None, &[]).json()["location"].as_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{}/authorize?", issuer.base)), "{location}");
    assert_eq!(param(&location, "scope").as_deref(), Some("openid%20email%20profile"));
    let (state, nonce) = (param(&location, "state").unwrap(), param(&location, "nonce").unwrap());
    *issuer.next_id_token.lock().unwrap() = issuer.sign(&issuer.claims(&nonce));
    let r = callback(&app, "customer", "google", &format!("code=c&state={state}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claims(&r.token())["auth_provider"], "google");
    assert_eq!(
        app.db().text("SELECT entity_id AS v FROM provider_identity WHERE provider = 'google'"),
        "hostile-subject"
    );
}

fn racing_callbacks_with_one_state_sign_in_once(backend: Backend) {
    let issuer = HostileIssuer::start();
    let Some(app) = spawn(backend, &issuer.settings()) else { return };
    let location = begin(&app, "customer", "oidc");
    let (state, nonce) = (param(&location, "state").unwrap(), param(&location, "nonce").unwrap());
    *issuer.next_id_token.lock().unwrap() = issuer.sign(&issuer.claims(&nonce));
    let answers = helpers::concurrently(8, |_| callback(&app, "customer", "oidc", &format!("code=c&state={state}")));
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_refused(r, STATE_INVALID);
    }
    assert_eq!(count(&app, "provider_identity"), 1);
    assert_eq!(count(&app, "oauth_state"), 0);
}

fn sign_in_with_github_reads_the_verified_primary_email(backend: Backend) {
    let challenge = Arc::new(Mutex::new(String::new()));
    let expected = challenge.clone();
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = seen.clone();
    let github = local_server(Arc::new(move |_base: &str, s: &Seen| {
        log.lock().unwrap().push(s.clone());
        let authorized = s.header("authorization") == Some("Bearer gho_test_token");
        match (s.method.as_str(), s.path.as_str()) {
            ("POST", "/login/oauth/access_token") => {
                let verifier = s.form("code_verifier").unwrap_or_default();
                let pkce = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
                let ok = s.form("code").as_deref() == Some("good-code")
                    && s.form("client_secret").as_deref() == Some("gh-secret")
                    && pkce == *expected.lock().unwrap();
                if ok {
                    (200, json!({"access_token": "gho_test_token", "token_type": "bearer", "scope": "read:user,user:email"}).to_string())
                } else {
                    // GitHub answers a bad code with 200 and an error object.
                    (200, json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}).to_string())
                }
            }
            ("GET", "/user") if authorized => (
                200,
                json!({"login": "octocat", "id": 583231, "name": "The Octocat",
                "email": null, "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
                "html_url": "https://github.com/octocat"})
                .to_string(),
            ),
            ("GET", "/user/emails") if authorized => (
                200,
                json!([
                {"email": "old@octo.example", "primary": false, "verified": true, "visibility": null},
                {"email": "octocat@octo.example", "primary": true, "verified": true, "visibility": "public"}])
                .to_string(),
            ),
            _ => (401, json!({"message": "Bad credentials"}).to_string()),
        }
    }));
    let settings = vec![
        ("OAUTH_GITHUB_CLIENT_ID", "gh-client".to_string()),
        ("OAUTH_GITHUB_CLIENT_SECRET", "gh-secret".to_string()),
        ("OAUTH_GITHUB_CALLBACK_URL", CALLBACK.to_string()),
        ("OAUTH_GITHUB_URL", github.clone()),
        ("OAUTH_GITHUB_API_URL", format!("{github}/")),
    ];
    let Some(app) = spawn(backend, &settings) else { return };
    let location = begin(&app, "customer", "github");
    assert!(
        location.starts_with(&format!("{github}/login/oauth/authorize?response_type=code&client_id=gh-client&")),
        "{location}"
    );
    assert_eq!(param(&location, "scope").as_deref(), Some("read%3Auser%20user%3Aemail"));
    assert_eq!(param(&location, "nonce"), None, "GitHub has no ID token");
    *challenge.lock().unwrap() = param(&location, "code_challenge").unwrap();
    let state = param(&location, "state").unwrap();
    let r = callback(&app, "customer", "github", &format!("code=good-code&state={state}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let c = claims(&r.token());
    assert_eq!((c["auth_provider"].as_str(), c["actor_id"].as_str()), (Some("github"), Some("")));
    assert_eq!(c["user_metadata"]["email"], "octocat@octo.example");
    assert_eq!(c["user_metadata"]["email_verified"], true);
    assert_eq!(c["user_metadata"]["login"], "octocat");
    assert_eq!(app.db().text("SELECT entity_id AS v FROM provider_identity WHERE provider = 'github'"), "583231");
    let requests = seen.lock().unwrap().clone();
    let api = requests.iter().find(|s| s.path == "/user").unwrap();
    assert_eq!(api.header("accept"), Some("application/vnd.github+json"));
    assert!(api.header("user-agent").is_some(), "GitHub refuses requests without a User-Agent");
    let created = create_customer(&app, "octocat@octo.example", &r.token());
    assert_eq!(created.status, 200, "{}", created.text);

    // A code GitHub refuses.
    let state = param(&begin(&app, "customer", "github"), "state").unwrap();
    assert_refused(&callback(&app, "customer", "github", &format!("code=bad-code&state={state}")), FAILED);
    assert_eq!(count(&app, "provider_identity"), 1);
}
