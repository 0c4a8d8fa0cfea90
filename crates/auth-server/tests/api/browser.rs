//! The storefront in a real browser: `tests/browser/run.mjs` bundles the official
//! `@medusajs/js-sdk` (2.21.2) with esbuild, serves a page from `http://localhost:8000`, and walks
//! the customer journey in session mode inside Debian's headless Chromium, driven by
//! playwright-core (pinned in `tests/browser/package.json`; it downloads no browser): register,
//! create the customer, log in, `/store/customers/me` with the cookie, change the password, log
//! out. On the way it checks what only a browser enforces: the CORS preflight with credentials,
//! the cookie's `HttpOnly`/`Secure`/`SameSite`, that a page on an origin outside `STORE_CORS`
//! cannot read the answers, that a cross-site form POST carrying the cookie is refused, and that
//! Chromium drops a `SameSite=Lax` cookie from a cross-site answer. The screenshot of the final
//! page is kept in `target/browser-artifacts/browser-journey.png`.
//!
//! Needs `node`, `npm` and Chromium (`/usr/bin/chromium`, or `CHROMIUM`); without them the test is
//! skipped with a notice, unless `XCLADE_REQUIRE` lists `browser`. It uses the ports 8000 and 8001
//! on localhost (the page's origins) and runs on SQLite only: nothing in it depends on the
//! backend. In tenant mode its servers serve no tenants (the browser asks for `127.0.0.1`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use crate::helpers::{self, Backend, TestApp};

/// How long the browser may take before node is stopped.
const TIMEOUT: Duration = Duration::from_secs(180);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Where the screenshot goes: `browser-artifacts` in the target directory of this test binary.
fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/api-…: three levels up is the target directory.
    let target = exe.ancestors().nth(3).map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    target.join("browser-artifacts")
}

fn runs(program: &Path, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `false` (after a notice) when something the browser test needs is missing and
/// `XCLADE_REQUIRE` does not list `browser`.
fn browser_available() -> bool {
    let mut missing = Vec::new();
    for program in ["node", "npm"] {
        if !runs(Path::new(program), "--version") {
            missing.push(program.to_string());
        }
    }
    let chromium = chromium();
    if !chromium.is_file() {
        missing.push(format!("{} (Debian: apt-get install chromium)", chromium.display()));
    }
    if missing.is_empty() {
        return true;
    }
    if auth_store_diesel::testing::required("browser") {
        panic!("XCLADE_REQUIRE lists browser, but {} is missing", missing.join(", "));
    }
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        let _ = std::io::stderr().write_all(
            format!(
                "note: skipping the browser test: {} missing (set XCLADE_REQUIRE=browser to fail instead)\n",
                missing.join(", ")
            )
            .as_bytes(),
        );
    });
    false
}

/// `npm ci` once, unless the pinned packages are installed.
fn install() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        crate::helpers::npm_install(&browser_dir(), &["@medusajs/js-sdk", "esbuild", "playwright-core"])
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

/// A server for the browser: CORS for `http://localhost:8000` only, tenancy off.
fn server(overrides: &[(&str, &str)]) -> TestApp {
    let env = helpers::TestEnv::new(Backend::Sqlite).unwrap();
    env.with_own_tenants();
    let mut all = vec![
        ("AUTH_CORS", "http://localhost:8000"),
        ("STORE_CORS", "http://localhost:8000"),
        // The browser asks for 127.0.0.1: no tenant host, in tenant mode too.
        ("TENANT_HOST_SUFFIX", ""),
    ];
    all.extend_from_slice(overrides);
    TestApp::start(env, &all)
}

#[test]
fn the_storefront_journey_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    install();
    // `none` forces Secure: the cookie a storefront on another site can use.
    let app = server(&[("COOKIE_SAMESITE", "none")]);
    let lax = server(&[]);
    let artifacts = artifacts();
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut node = Command::new("node");
    node.arg("run.mjs")
        .current_dir(browser_dir())
        .env("BASE_URL", &app.base)
        .env("LAX_URL", &lax.base)
        .env("EMAIL", helpers::email("browser"))
        .env("LAX_EMAIL", helpers::email("lax"))
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", chromium());
    let helpers::Finished { status, stdout, stderr } = helpers::run_until(&mut node, &artifacts.join("run"), TIMEOUT);
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("node run.mjs failed ({status})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"),
        None => {
            panic!("node run.mjs did not finish in {TIMEOUT:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")
        }
    }
    assert!(stdout.contains("browser journey complete"), "{stdout}\n{stderr}");
    let screenshot = std::fs::metadata(artifacts.join("browser-journey.png")).expect("the screenshot is kept");
    assert!(screenshot.len() > 10_000, "a screenshot of the page, not an empty image");
}
