//! No password, token or secret in the log or in the database after a full flow, with the real
//! binary at debug level and the file sink on (so the development log sink is off).

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{claims, wait_for_events, Backend, Client, ServerProcess, TestEnv, JWT_SECRET, PASSWORD};
use crate::on_both_backends;

on_both_backends!(no_secret_reaches_the_log_or_the_database);

const NEW_PASSWORD: &str = "an entirely new passphrase";

fn database_dump(env: &TestEnv) -> String {
    match env.backend {
        Backend::Sqlite => ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| std::fs::read(format!("{}{suffix}", env.database_url)).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect(),
        Backend::Postgres => {
            let out = Command::new("pg_dump").args(["--data-only", &env.database_url]).output().expect("pg_dump runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        }
    }
}

fn no_secret_reaches_the_log_or_the_database(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    // LOG_SINK unset: with the file sink on, the development log sink stays off by default.
    let mut server = ServerProcess::start(&env, &[("RUST_LOG", "debug"), ("LOG_SINK", "")]);
    let client = Client::new(server.port);
    let email = "ann@example.com";

    let registration = client.registered(email);
    let login = client.login(email, PASSWORD).token();
    let refreshed = client.refresh(&login).token();
    assert_eq!(client.login(email, "a wrong passphrase").status, 401);
    assert_eq!(client.request_reset(email).status, 201);
    let reset =
        wait_for_events(&env.events_file, "auth.password_reset", 1)[0]["data"]["token"].as_str().unwrap().to_string();
    let jti = claims(&reset)["jti"].as_str().unwrap().to_string();
    assert_eq!(client.update(&reset, &json!({ "password": NEW_PASSWORD }).to_string()).status, 200);
    let after = client.login(email, NEW_PASSWORD).token();
    wait_for_events(&env.events_file, "auth.password_changed", 1);
    std::thread::sleep(Duration::from_millis(300)); // a dispatcher pass erases the delivered secret
    server.kill();

    let log = server.log();
    assert!(log.contains("/auth/customer/emailpass/update"), "the log is real: {log}");
    assert!(log.contains("DEBUG"), "the log is at debug level");
    let dump = database_dump(&env);
    assert!(dump.contains(email), "the dump is real");
    let secrets = [
        ("the password", PASSWORD),
        ("the wrong password", "a wrong passphrase"),
        ("the new password", NEW_PASSWORD),
        ("the registration token", &registration),
        ("the login token", &login),
        ("the refreshed token", &refreshed),
        ("the reset token", &reset),
        ("the reset token's jti", &jti),
        ("the token after the reset", &after),
        ("the JWT secret", JWT_SECRET),
    ];
    for (what, secret) in secrets {
        assert!(!log.contains(secret), "{what} is in the log");
        assert!(!dump.contains(secret), "{what} is in the database");
        // A token's signature alone would do harm too.
        if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() > 20 && secret.starts_with("eyJ")) {
            assert!(!log.contains(signature) && !dump.contains(signature), "{what}'s signature leaked");
        }
    }
}
