//! Request bodies on hostile input, through the real HTTP application (`auth_http::app`, the
//! same routes, body extractor and field checks the server runs) over a throw-away SQLite
//! database, plus the domain's own parsers on every string the body holds.
//!
//! The first byte chooses the route; the rest is the request body. Whatever the body, the
//! application must not panic and must not answer 5xx, and a 400 must be the JSON error of
//! design §3.3. Then, outside HTTP, `Email::parse` runs on every string of the body (when it is
//! JSON) and `PasswordPolicy::check` on every string, which must never panic either.
//!
//! The database lives in `$TMPDIR/xclade-auth-fuzz-<pid>/`; delete those folders after a run.

#![no_main]

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::rt::System;
use actix_web::{test, web};
use auth_domain::email::Email;
use auth_domain::password::PasswordPolicy;
use auth_http::{AppState, CookieSettings, HttpSettings};
use auth_server::config::Config;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// A password the strength rule accepts.
const PASSWORD: &str = "violet-harbor-92-lantern";

type Answer = Pin<Box<dyn Future<Output = (StatusCode, web::Bytes)>>>;

/// The application and the tokens its guarded routes need, built once per process.
struct Harness {
    system: actix_web::rt::SystemRunner,
    call: Box<dyn Fn(test::TestRequest) -> Answer>,
    /// A registration token not yet used to create a customer (`POST /store/customers`).
    registration: String,
    /// A customer's auth token (`POST /store/customers/me`).
    customer: String,
    /// The token of an identity kept apart for change-password (a success revokes it).
    changer: String,
}

/// A route and the credentials it is called with.
#[derive(Clone, Copy)]
enum Route {
    Register,
    Login,
    ResetPassword,
    Update,
    ChangePassword,
    CreateCustomer,
    UpdateMe,
    RefreshToken,
}

const ROUTES: [Route; 8] = [
    Route::Register,
    Route::Login,
    Route::ResetPassword,
    Route::Update,
    Route::ChangePassword,
    Route::CreateCustomer,
    Route::UpdateMe,
    Route::RefreshToken,
];

fn config(data_dir: &std::path::Path) -> Config {
    let values = [
        ("DATA_DIR", data_dir.display().to_string()),
        ("DATABASE_URL", format!("sqlite://{}", data_dir.join("auth.sqlite").display())),
        ("JWT_SECRET", "a fuzzing secret of at least thirty-two bytes".to_string()),
        // The cheapest cost bcrypt takes, and no limits: the fuzzer is one very busy client.
        ("BCRYPT_COST", "4".to_string()),
        ("RATE_LIMIT_ENABLED", "false".to_string()),
    ];
    let lookup = |key: &str| values.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    match Config::from_lookup(lookup) {
        Ok(config) => config,
        Err(e) => panic!("fuzz configuration refused: {e:?}"),
    }
}

fn settings() -> HttpSettings {
    HttpSettings {
        cookie: CookieSettings {
            secure: false,
            same_site: actix_web::cookie::SameSite::Lax,
            ttl: std::time::Duration::from_secs(3600),
        },
        trusted_proxies: vec![],
        jwks_max_age: std::time::Duration::from_secs(600),
        introspection_secret: None,
        body_timeout: std::time::Duration::from_secs(20),
        public_metrics: false,
    }
}

fn request(route: Route, body: &[u8], h: Option<&Harness>) -> test::TestRequest {
    let bearer = |token: &str| ("authorization", format!("Bearer {token}"));
    let (path, auth) = match (route, h) {
        (Route::Register, _) => ("/auth/customer/emailpass/register", None),
        (Route::Login, _) => ("/auth/customer/emailpass", None),
        (Route::ResetPassword, _) => ("/auth/customer/emailpass/reset-password", None),
        // An auth token where a reset token belongs: 401, after or before the body is read.
        (Route::Update, Some(h)) => ("/auth/customer/emailpass/update", Some(bearer(&h.changer))),
        (Route::ChangePassword, Some(h)) => ("/auth/customer/emailpass/change-password", Some(bearer(&h.changer))),
        (Route::CreateCustomer, Some(h)) => ("/store/customers", Some(bearer(&h.registration))),
        (Route::UpdateMe, Some(h)) => ("/store/customers/me", Some(bearer(&h.customer))),
        (Route::RefreshToken, Some(h)) => ("/auth/token/refresh", Some(bearer(&h.customer))),
        (_, None) => ("/auth/customer/emailpass", None),
    };
    let mut req = test::TestRequest::post()
        .uri(path)
        .peer_addr("192.0.2.1:40000".parse().unwrap_or_else(|_| unreachable!()))
        .insert_header(("content-type", "application/json"))
        .insert_header(("accept", "application/json"))
        .set_payload(body.to_vec());
    if let Some(header) = auth {
        req = req.insert_header(header);
    }
    req
}

fn token_of(status: StatusCode, body: &[u8], what: &str) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match value.get("token").and_then(Value::as_str) {
        Some(token) if status.is_success() => token.to_string(),
        _ => panic!("fuzz setup: {what} answered {status}: {}", String::from_utf8_lossy(body)),
    }
}

impl Harness {
    fn new() -> Harness {
        let data_dir = std::env::temp_dir().join(format!("xclade-auth-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let config = config(&data_dir);
        let system = System::new();
        let composed = match auth_server::compose(&config) {
            Ok(composed) => composed,
            Err(e) => panic!("fuzz setup: {e}"),
        };
        let state = AppState::new(composed.service, settings(), 2);
        let app = Rc::new(system.block_on(test::init_service(auth_http::app(state))));
        let call: Box<dyn Fn(test::TestRequest) -> Answer> = Box::new(move |req| {
            let app = app.clone();
            let req = req.to_request();
            Box::pin(async move {
                match app.call(req).await {
                    Ok(response) => answer(response).await,
                    // What the server would send for an error that escaped the handlers.
                    Err(e) => (e.as_response_error().status_code(), web::Bytes::new()),
                }
            })
        });
        let mut h =
            Harness { system, call, registration: String::new(), customer: String::new(), changer: String::new() };
        h.customer = h.setup_customer();
        h.registration = h.register("new@fuzz.invalid");
        h.changer = h.register("changer@fuzz.invalid");
        h
    }

    fn send(&self, req: test::TestRequest) -> (StatusCode, web::Bytes) {
        self.system.block_on((self.call)(req))
    }

    fn register(&self, email: &str) -> String {
        let body = serde_json::json!({ "email": email, "password": PASSWORD }).to_string();
        let (status, body) = self.send(request(Route::Register, body.as_bytes(), None));
        token_of(status, &body, "register")
    }

    /// A customer: registered, created, logged in.
    fn setup_customer(&self) -> String {
        let registration = self.register("customer@fuzz.invalid");
        let req = test::TestRequest::post()
            .uri("/store/customers")
            .insert_header(("authorization", format!("Bearer {registration}")))
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"email":"customer@fuzz.invalid","first_name":"Fuzz"}"#);
        let (status, body) = self.send(req);
        assert!(status.is_success(), "fuzz setup: create customer answered {status}: {body:?}");
        let login = serde_json::json!({ "email": "customer@fuzz.invalid", "password": PASSWORD }).to_string();
        let (status, body) = self.send(request(Route::Login, login.as_bytes(), None));
        token_of(status, &body, "login")
    }
}

async fn answer<B: MessageBody>(response: ServiceResponse<B>) -> (StatusCode, web::Bytes) {
    let status = response.status();
    let body = actix_web::body::to_bytes(response.into_body()).await.unwrap_or_default();
    (status, body)
}

thread_local! {
    static HARNESS: OnceCell<&'static Harness> = const { OnceCell::new() };
}

/// The harness of this thread, built at the first call and never dropped: dropping actix's
/// service while the thread's locals are destroyed at exit would panic inside actix.
fn harness() -> &'static Harness {
    HARNESS.with(|cell| *cell.get_or_init(|| Box::leak(Box::new(Harness::new()))))
}

/// Every string in a JSON value, keys included.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// The domain parsers on their own: no panic, and what they accept keeps their invariants.
fn domain_checks(body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return };
    let mut found = Vec::new();
    strings(&value, &mut found);
    let policy = PasswordPolicy { min_length: 8, min_strength: 2 };
    for s in found.iter().take(16) {
        if let Ok(email) = Email::parse(s) {
            assert_eq!(email.as_str(), s.trim());
            assert_eq!(email.key().as_str(), email.as_str().to_lowercase());
            assert_eq!(email.as_str().matches('@').count(), 1);
        }
        if let Ok(password) = policy.check(s.clone()) {
            assert!(password.as_bytes().len() <= auth_domain::password::MAX_PASSWORD_BYTES);
            assert!(s.chars().count() >= 8);
        }
    }
}

/// One input: a request to the route its first byte picks, then the domain checks.
fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let route = ROUTES[usize::from(selector) % ROUTES.len()];
    let h = harness();
    let (status, answer) = h.send(request(route, body, Some(h)));
    assert!(!status.is_server_error(), "{status} for a body: {}", String::from_utf8_lossy(&answer));
    if status == StatusCode::BAD_REQUEST {
        let error: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        assert!(error.get("type").and_then(Value::as_str).is_some(), "a 400 without a JSON error: {answer:?}");
        assert!(error.get("message").and_then(Value::as_str).is_some(), "a 400 without a message: {answer:?}");
    }
    domain_checks(body);
}

fuzz_target!(
    // The application is built (and its three accounts registered) before the first input, so
    // that input's time and allocations are its own.
    init: {
        harness();
    },
    |data: &[u8]| run(data)
);
