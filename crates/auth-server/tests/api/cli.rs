//! The binary's commands and its start-up rules, run as a user would.

use std::process::Command;

use crate::helpers::{Backend, TestApp};

fn xclade_auth(dir: &std::path::Path, vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xclade-auth"))
        .env_clear()
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn migrate_creates_the_schema_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = xclade_auth(dir.path(), &[], &["migrate"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} {log}", out.status);
    assert!(log.contains("migrations applied"), "{log}");
    assert!(dir.path().join("data/xclade-auth.sqlite").exists(), "zero configuration: SQLite in ./data");
    let again = xclade_auth(dir.path(), &[], &["migrate"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("up to date"));
}

#[test]
fn postgres_without_jwt_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = xclade_auth(dir.path(), &[("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/none")], &["serve"]);
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("JWT_SECRET is required with PostgreSQL"), "{log}");
}

#[test]
fn invalid_configuration_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = xclade_auth(dir.path(), &[("BCRYPT_COST", "99")], &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BCRYPT_COST"));
}

#[test]
fn on_sqlite_a_missing_jwt_secret_is_generated_once_and_kept() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("JWT_SECRET", "")]) else {
        return;
    };
    let token = app.registered("ann@example.com");
    let path = app.env().dir.path().join("jwt-secret");
    let secret = std::fs::read_to_string(&path).unwrap();
    assert_eq!(secret.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let app = app.restart(&[("JWT_SECRET", "")]);
    assert_eq!(app.refresh(&token).status, 200, "the same secret after a restart");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), secret);
}
