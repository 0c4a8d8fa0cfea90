//! The example from outside, against a real Xclade Auth: the server (`auth_server::Application`,
//! in-process, on SQLite in a temporary directory) signs with a real EdDSA key, a customer
//! registers and logs in, and the example binary (a child process) is called over HTTP with the
//! token.
//!
//! The key is made as `xclade-auth keys create` makes it (`crates/auth-server/src/cli/keys.rs`),
//! through the same library calls: the test cannot run the `xclade-auth` binary (Cargo builds a
//! package's binaries for that package's own tests only), and calling the library keeps the test
//! to one build and one process tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use auth_domain::keys::{generate, KeyAlgorithm, KeyState, SigningKeyRecord};
use auth_domain::newtypes::TenantId;
use auth_domain::ports::KeyStore as _;
use auth_server::config::Config;
use auth_server::tenants::SettingsReader;
use auth_server::Application;

const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "correct horse battery";
/// `JWKS_MAX_AGE` of the server: the example keeps the JWKS this long.
const MAX_AGE: Duration = Duration::from_secs(2);

/// A free port on 127.0.0.1 (the server's `PUBLIC_URL`, hence `iss`, names its port, so the port
/// is chosen before it starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Xclade Auth, running in a thread of its own.
struct Xclade {
    base: String,
    config: Config,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Xclade {
    fn config(dir: &tempfile::TempDir, port: u16) -> Config {
        let vars: HashMap<&str, String> = [
            ("HOST", "127.0.0.1".to_string()),
            ("PORT", port.to_string()),
            ("ADMIN_PORT", "off".into()),
            ("JWT_SECRET", JWT_SECRET.into()),
            ("BCRYPT_COST", "4".into()),
            ("RATE_LIMIT_ENABLED", "false".into()),
            ("PASSWORD_MIN_STRENGTH", "0".into()),
            ("JWKS_MAX_AGE", format!("{}s", MAX_AGE.as_secs())),
            ("HTTP_WORKERS", "2".into()),
            ("HASH_CONCURRENCY", "2".into()),
            ("DATABASE_POOL_SIZE", "4".into()),
            ("LOG_SINK", "false".into()),
            ("DATA_DIR", dir.path().to_string_lossy().into_owned()),
            ("DATABASE_URL", dir.path().join("auth.sqlite").to_string_lossy().into_owned()),
        ]
        .into_iter()
        .collect();
        Config::from_lookup(|k| vars.get(k).cloned()).unwrap()
    }

    fn start() -> Xclade {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = Xclade::config(&dir, port);
        // The database and the tenant's first key before the server starts: it signs with the
        // key from its first token on.
        let store = auth_server::open_store(&config).unwrap();
        auth_server::migrate(&store).unwrap();
        create_key(&config, &store, KeyAlgorithm::EdDSA);
        let (tx, rx) = mpsc::channel();
        let server_config = config.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match Application::build(server_config) {
                    Ok(app) => {
                        let _ = tx.send(Ok(app.handle()));
                        let _ = app.run_until_stopped().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
        });
        let handle = rx.recv().unwrap().unwrap();
        Xclade {
            base: format!("http://127.0.0.1:{port}"),
            config,
            handle: Some(handle),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `POST path` with a JSON body (and a bearer token); the status and the JSON answer.
    fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut request = ureq::post(&format!("{}{path}", self.base)).set("accept", "application/json");
        if let Some(token) = token {
            request = request.set("authorization", &format!("Bearer {token}"));
        }
        let response = match request.set("content-type", "application/json").send_string(&body.to_string()) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("POST {path}: {e}"),
        };
        (response.status(), json_of(response))
    }

    fn login(&self, email: &str) -> String {
        let (status, body) =
            self.post("/auth/customer/emailpass", &json!({"email": email, "password": PASSWORD}), None);
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

impl Drop for Xclade {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What `xclade-auth keys create` does: a key pair, its private half sealed with the secret
/// box of the configuration, stored active (the tenant's first) or next. Returns its kid.
fn create_key(config: &Config, store: &auth_store_diesel::DieselStore, algorithm: KeyAlgorithm) -> String {
    let secret = auth_server::secrets::jwt_secret(config).unwrap();
    let reader = SettingsReader::new(
        config.clone(),
        auth_server::sinks::names(config),
        auth_domain::secret::SecretBox::new(&secret.0, &[]),
    );
    let tenant = TenantId::default_tenant();
    let has_active = store.tenant_keys(&tenant).unwrap().iter().any(|k| k.state == KeyState::Active);
    let pair = generate(algorithm).unwrap();
    let now = chrono::Utc::now();
    store
        .insert_key(&SigningKeyRecord {
            tenant,
            kid: pair.kid.clone(),
            algorithm,
            state: if has_active { KeyState::Next } else { KeyState::Active },
            private_sealed: reader.seal_key(&pair.kid, &pair.private_der).unwrap(),
            public_jwk: pair.public_jwk.clone(),
            created_at: now,
            state_since: now,
        })
        .unwrap();
    pair.kid.clone()
}

/// The example binary, its standard output collected line by line.
struct Example {
    child: Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Example {
    fn start(issuer: &str) -> Example {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orders-example"))
            .env("XCLADE_ISSUER", issuer)
            .env("XCLADE_TENANT", "default")
            .env("PORT", "0")
            .env_remove("XCLADE_JWKS_URL")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                println!("[orders-example] {line}");
                if let Some(address) = line.strip_prefix("listening on ") {
                    let _ = tx.send(address.to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("the example did not say `listening on` within 30 s");
            }
        };
        Example { child, base, lines }
    }

    /// `GET /orders/mine` with `authorization` as given: the status, the JSON answer and the
    /// `WWW-Authenticate` header.
    fn my_orders(&self, authorization: Option<&str>) -> (u16, Value, Option<String>) {
        let mut request = ureq::get(&format!("{}/orders/mine", self.base));
        if let Some(value) = authorization {
            request = request.set("authorization", value);
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("GET /orders/mine: {e}"),
        };
        let challenge = response.header("www-authenticate").map(str::to_string);
        (response.status(), json_of(response), challenge)
    }

    fn with_token(&self, token: &str) -> (u16, Value) {
        let (status, body, _) = self.my_orders(Some(&format!("Bearer {token}")));
        (status, body)
    }

    /// `GET /debug/jwks-fetches`.
    fn fetches(&self) -> u64 {
        ureq::get(&format!("{}/debug/jwks-fetches", self.base)).call().unwrap().into_string().unwrap().parse().unwrap()
    }

    /// The JWKS fetches the log tells of (a `200` or a `304`).
    fn logged_fetches(&self) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.starts_with("fetched JWKS (") || l.starts_with("JWKS not modified (")).count()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON of an answer; `null` when it is not JSON.
fn json_of(response: ureq::Response) -> Value {
    serde_json::from_str(&response.into_string().unwrap_or_default()).unwrap_or(Value::Null)
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// `token` with another `actor_id`, its signature kept.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["actor_id"] = json!("cus_someone_else");
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2])
}

#[test]
fn the_example_accepts_xclade_tokens_and_caches_the_jwks_as_told() {
    let xclade = Xclade::start();
    let store = auth_server::open_store(&xclade.config).unwrap();
    let first_kid = store.tenant_keys(&TenantId::default_tenant()).unwrap()[0].kid.clone();

    // A customer: registration, the customer, a login.
    let email = "ann@example.com";
    let (status, body) =
        xclade.post("/auth/customer/emailpass/register", &json!({"email": email, "password": PASSWORD}), None);
    assert_eq!(status, 200, "{body}");
    let registration = body["token"].as_str().unwrap().to_string();
    let (status, body) = xclade.post("/store/customers", &json!({"email": email}), Some(&registration));
    assert_eq!(status, 200, "{body}");
    let customer_id = body["customer"]["id"].as_str().unwrap().to_string();
    let token = xclade.login(email);
    assert_eq!(header_of(&token), json!({"typ": "JWT", "alg": "EdDSA", "kid": first_kid}), "signed with the key");

    let example = Example::start(&xclade.base);
    assert_eq!(example.fetches(), 0, "nothing fetched before a token comes");

    // A good token: 200, with the customer; the JWKS fetched once for several requests.
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(example.with_token(&token), (200, json!({"customer_id": customer_id, "tenant": "default"})));
    }
    // Refused tokens, with the keys held.
    let (status, _, challenge) = example.my_orders(None);
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));
    let (status, _, challenge) = example.my_orders(Some(&format!("Bearer {}", tampered(&token))));
    assert_eq!((status, challenge.as_deref()), (401, Some(r#"Bearer error="invalid_token""#)));
    assert_eq!(example.with_token("not.a.token").0, 401);
    assert_eq!(example.my_orders(Some(&format!("Basic {token}"))).0, 401);
    // A valid token whose customer does not exist yet (the registration token).
    assert_eq!(example.with_token(&registration).0, 403);
    if started.elapsed() < MAX_AGE {
        assert_eq!(example.fetches(), 1, "one fetch for every request within max-age");
    } else {
        eprintln!("(the requests took {:?}, longer than max-age: the count is not checked)", started.elapsed());
    }
    assert_eq!(example.logged_fetches(), example.fetches() as usize);

    // Once max-age has elapsed, the next token fetches again (conditionally: a 304).
    let before = example.fetches();
    std::thread::sleep(MAX_AGE + Duration::from_millis(500));
    assert_eq!(example.with_token(&token).0, 200);
    assert_eq!(example.fetches(), before + 1, "fetched again after max-age");
    assert!(example.with_token(&token).0 == 200 && example.fetches() == before + 1, "and kept again");
    assert_eq!(example.logged_fetches(), example.fetches() as usize);
    assert!(
        example.lines.lock().unwrap().iter().any(|l| l.starts_with("fetched JWKS (1 keys, max-age 2s)")),
        "the log tells the fetch: {:?}",
        example.lines.lock().unwrap()
    );

    // A rotation: a new key, activated; the tokens it signs verify at once (their kid is unknown
    // to the keys held, which makes the example fetch the set again).
    let second_kid = create_key(&xclade.config, &store, KeyAlgorithm::ES256);
    store.activate_key(&TenantId::default_tenant(), &second_kid, chrono::Utc::now()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let rotated = loop {
        let token = xclade.login(email);
        if header_of(&token)["kid"] == second_kid.as_str() {
            break token;
        }
        assert!(Instant::now() < deadline, "the server did not sign with the new key within 10 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(header_of(&rotated)["alg"], "ES256");
    let before = example.fetches();
    assert_eq!(example.with_token(&rotated), (200, json!({"customer_id": customer_id, "tenant": "default"})));
    assert_eq!(example.fetches(), before + 1);
    // The token of the retired key still verifies.
    assert_eq!(example.with_token(&token).0, 200);
}
