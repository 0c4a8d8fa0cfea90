//! The official `@medusajs/js-sdk` (2.21.2, pinned in `tests/js-sdk/package.json`) against the
//! real server: `tests/js-sdk/journey.mjs` walks a storefront's auth journey (register, create
//! the customer, refresh, login, reset the password, log out, then sign in with an OpenID provider:
//! `auth.login` answers its location and `auth.callback` the token) in JWT mode and in session
//! mode. The provider is `oidc-provider`, started from `tests/js-sdk/idp.mjs` (see `oauth.rs`).
//!
//! Needs `node` and `npm`; without them the tests are skipped with a notice, unless
//! `XCLADE_REQUIRE` lists `node`.
//!
//! In tenant mode the SDK's base URL names the tenant's host (`http://alpha.api.test:PORT`), which
//! Node's `fetch` says in `Host` as a browser would; a module preloaded into node
//! (`NODE_OPTIONS=--require`) resolves the names under the suffix to 127.0.0.1, since no DNS
//! does.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use crate::helpers::{self, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(js_sdk_journey_with_tokens, js_sdk_journey_with_sessions);

fn js_sdk_journey_with_tokens(backend: Backend) {
    journey(backend, "jwt");
}

fn js_sdk_journey_with_sessions(backend: Backend) {
    journey(backend, "session");
}

/// Preloaded into node in tenant mode: `dns.lookup` (what Node's `fetch` connects through)
/// answers 127.0.0.1 for every name under `SUFFIX`.
const RESOLVE_TENANT_HOSTS: &str = r#"// Written by tests/api/js_sdk.rs (tenant mode of the API suite).
const dns = require("node:dns");
const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (typeof hostname === "string" && hostname.toLowerCase().endsWith("SUFFIX")) {
    hostname = "127.0.0.1";
  }
  return lookup.call(this, hostname, options, callback);
};
"#;

/// How long one journey may take before node is stopped.
const JOURNEY_TIMEOUT: Duration = Duration::from_secs(120);

/// The folder of `package.json` and `journey.mjs`.
fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("js-sdk")
}

/// Whether `program --version` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `false` (after a notice, once per test binary) when node or npm is missing and not required.
fn node_available() -> bool {
    static NOTICE: Once = Once::new();
    let missing: Vec<&str> = ["node", "npm"].into_iter().filter(|p| !available(p)).collect();
    if missing.is_empty() {
        return true;
    }
    if auth_store_diesel::testing::required("node") {
        panic!("XCLADE_REQUIRE lists node, but {} cannot be run", missing.join(" and "));
    }
    NOTICE.call_once(|| {
        // Straight to stderr: libtest hides the eprintln! of a passing test.
        let _ = std::io::stderr().write_all(
            format!(
                "note: skipping the JS SDK tests: {} not found (set XCLADE_REQUIRE=node to fail instead)\n",
                missing.join(" and ")
            )
            .as_bytes(),
        );
    });
    false
}

/// Whether the Node side of the tests can run: node and npm are there (or the test is skipped,
/// after a notice) and the pinned packages are installed.
pub(crate) fn node_ready() -> bool {
    if !node_available() {
        return false;
    }
    install_sdk();
    true
}

/// Installs the pinned packages once per test binary (`npm ci`, only when one of them is not
/// installed yet).
fn install_sdk() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        crate::helpers::npm_install(&sdk_dir(), &["@medusajs/js-sdk", "jose", "jsonwebtoken", "oidc-provider"])
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

fn journey(backend: Backend, mode: &str) {
    if !node_available() {
        return;
    }
    install_sdk();
    // The OpenID provider the journey also signs in with (tests/js-sdk/idp.mjs).
    let Some(idp) = crate::oauth::Idp::start(&[crate::oauth::CALLBACK]) else { return };
    let settings = idp.settings();
    let mut overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    overrides.push(("STORE_PUBLISHABLE_KEYS", "pk_test"));
    let Some(app) = TestApp::spawn_with(backend, &overrides) else {
        return;
    };
    let email = helpers::email("sdk");
    let social_email = helpers::email("sdk-social");
    let env = app.env();
    let mut node = Command::new("node");
    let base_url = match helpers::tenant_host() {
        None => app.base.clone(),
        Some(host) => {
            let preload = env.dir.path().join("resolve-tenant-hosts.cjs");
            std::fs::write(&preload, RESOLVE_TENANT_HOSTS.replace("SUFFIX", helpers::TENANT_HOST_SUFFIX)).unwrap();
            let options = std::env::var("NODE_OPTIONS").unwrap_or_default();
            node.env("NODE_OPTIONS", format!("{options} --require {:?}", preload.to_string_lossy()).trim_start());
            format!("http://{host}:{}", app.base.rsplit(':').next().unwrap())
        }
    };
    node.arg("journey.mjs")
        .current_dir(sdk_dir())
        .env("BASE_URL", &base_url)
        .env("MODE", mode)
        .env("EVENTS_FILE", &env.events_file)
        .env("EMAIL", &email)
        .env("IDP_CALLBACK", crate::oauth::CALLBACK)
        .env("SOCIAL_EMAIL", &social_email);
    let helpers::Finished { status, stdout, stderr } =
        helpers::run_until(&mut node, &env.dir.path().join("journey"), JOURNEY_TIMEOUT);
    let outcome = match status {
        Some(status) if status.success() => None,
        Some(status) => Some(format!("node journey.mjs failed ({status})")),
        None => Some(format!("node journey.mjs did not finish in {JOURNEY_TIMEOUT:?}")),
    };
    if let Some(outcome) = outcome {
        panic!(
            "{outcome} [{backend:?}, MODE={mode}, EMAIL={email}, BASE_URL={base_url}]\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
    }
    assert!(stdout.contains("journey complete"), "node exited 0 without finishing the journey:\n{stdout}\n{stderr}");
    assert!(stdout.contains("auth.callback(customer, oidc"), "the journey skipped the OpenID sign-in:\n{stdout}");
}
