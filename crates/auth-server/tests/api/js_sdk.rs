//! The official `@medusajs/js-sdk` (2.21.2, pinned in `tests/js-sdk/package.json`) against the
//! real server: `tests/js-sdk/journey.mjs` walks a storefront's auth journey (register, create
//! the customer, refresh, login, reset the password, log out) in JWT mode and in session mode.
//!
//! Needs `node` and `npm`; without them the tests are skipped with a notice, unless
//! `XCLADE_REQUIRE` lists `node`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use crate::helpers::{self, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(js_sdk_journey_with_tokens, js_sdk_journey_with_sessions);

fn js_sdk_journey_with_tokens(backend: Backend) {
    journey(backend, "jwt");
}

fn js_sdk_journey_with_sessions(backend: Backend) {
    journey(backend, "session");
}

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

/// Installs the pinned SDK once per test binary (`npm ci`, only when it is not installed yet).
fn install_sdk() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let dir = sdk_dir();
        if dir.join("node_modules/@medusajs/js-sdk/package.json").is_file() {
            return Ok(());
        }
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run npm: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`npm ci` in {} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
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
    let Some(app) = TestApp::spawn_with(backend, &[("STORE_PUBLISHABLE_KEYS", "pk_test")]) else {
        return;
    };
    let email = helpers::email("sdk");
    let env = app.env();
    let stdout_path = env.dir.path().join("journey.stdout");
    let stderr_path = env.dir.path().join("journey.stderr");
    let mut child = Command::new("node")
        .arg("journey.mjs")
        .current_dir(sdk_dir())
        .env("BASE_URL", &app.base)
        .env("MODE", mode)
        .env("EVENTS_FILE", &env.events_file)
        .env("EMAIL", &email)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("node starts");
    let deadline = Instant::now() + JOURNEY_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let outcome = match status {
        Some(status) if status.success() => None,
        Some(status) => Some(format!("node journey.mjs failed ({status})")),
        None => Some(format!("node journey.mjs did not finish in {JOURNEY_TIMEOUT:?}")),
    };
    if let Some(outcome) = outcome {
        panic!(
            "{outcome} [{backend:?}, MODE={mode}, EMAIL={email}]\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
    }
    assert!(stdout.contains("journey complete"), "node exited 0 without finishing the journey:\n{stdout}\n{stderr}");
}
