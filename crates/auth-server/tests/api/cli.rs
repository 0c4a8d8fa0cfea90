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

#[test]
fn config_prints_every_key_with_its_source_and_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "SESSION_TTL=2h\nPORT=1111\n").unwrap();
    let secrets = ["jwt-s3cret-of-the-config-test", "c2VjcmV0LWNvbmZpZy10ZXN0", "db-pa55word"];
    let vars = [
        ("JWT_SECRET", "jwt-s3cret-of-the-config-test"),
        ("WEBHOOK_URL", "https://hooks.example/in"),
        ("WEBHOOK_SECRET", "whsec_c2VjcmV0LWNvbmZpZy10ZXN0"),
        ("DATABASE_URL", "postgres://auth:db-pa55word@db.internal:5432/auth"),
        ("PORT", "9100"),
    ];
    let out = xclade_auth(dir.path(), &vars, &["config"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {stderr}", out.status);
    for secret in secrets {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} printed:\n{stdout}\n{stderr}");
    }
    let line = |key: &str| {
        stdout.lines().find(|l| l.starts_with(&format!("{key}="))).unwrap_or_else(|| panic!("no {key} in\n{stdout}"))
    };
    for setting in auth_server::config::settings() {
        line(setting.name);
    }
    assert!(line("JWT_SECRET").starts_with("JWT_SECRET=[redacted] "));
    assert!(line("WEBHOOK_SECRET").starts_with("WEBHOOK_SECRET=[redacted] "));
    assert!(line("DATABASE_URL").starts_with("DATABASE_URL=postgres://auth:[redacted]@db.internal:5432/auth "));
    assert!(line("WEBHOOK_URL").starts_with("WEBHOOK_URL=https://hooks.example/in "));
    assert!(line("PORT").starts_with("PORT=9100 ") && line("PORT").ends_with("# environment"), "the environment wins");
    assert!(line("SESSION_TTL").starts_with("SESSION_TTL=2h ") && line("SESSION_TTL").ends_with("# .env"));
    assert!(line("HOST").starts_with("HOST=127.0.0.1 ") && line("HOST").ends_with("# default"));
    assert!(stdout.contains("RUST_LOG") && !stdout.contains("RUST_LOG="), "RUST_LOG is mentioned, not listed");
}

#[test]
fn config_refuses_an_invalid_configuration_like_serve() {
    let dir = tempfile::tempdir().unwrap();
    let out = xclade_auth(dir.path(), &[("BCRYPT_COST", "99")], &["config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration: BCRYPT_COST"));
    assert!(out.stdout.is_empty());
    let bad = [("WEBHOOK_URL", "https://hooks.example/in"), ("WEBHOOK_SECRET", "whsec_not!base64-s3cret")];
    let out = xclade_auth(dir.path(), &bad, &["config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("WEBHOOK_SECRET") && !stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn help_lists_every_variable() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["serve", "--help"][..], &["--help"]] {
        let out = xclade_auth(dir.path(), &[], args);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", out.status);
        for setting in auth_server::config::settings() {
            assert!(help.contains(&format!("  {} ", setting.name)), "{args:?}: no {} in\n{help}", setting.name);
        }
        assert!(help.contains("[default: 9000]") && help.contains("xclade-auth config"), "{help}");
    }
    for args in [
        &["migrate", "--help"][..],
        &["events", "list", "--help"],
        &["user", "create", "--help"],
        &["config", "--help"],
    ] {
        let out = xclade_auth(dir.path(), &[], args);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && help.contains("xclade-auth serve --help"), "{args:?}:\n{help}");
    }
}
