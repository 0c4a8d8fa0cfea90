//! Moving from Medusa (`xclade-auth import medusa`, `MEDUSA_JWT_SECRET`): the real dump of a
//! Medusa 2.21.2 backend's auth tables (`tests/fixtures/medusa-2.21.2-auth-tables.sql`, made with
//! `pg_dump` from a real backend; its accounts and passwords are listed below) is loaded into a
//! fresh PostgreSQL database with `psql`, imported into SQLite and into PostgreSQL, and every
//! account logs in over HTTP with its Medusa password.
//!
//! The source is always PostgreSQL (Medusa's only database): without PostgreSQL these tests are
//! skipped, as the PostgreSQL suite is.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{claims, sign, tenant, Backend, TestApp, TestEnv};
use crate::on_both_backends;
use auth_store_diesel::testing::PgTestDatabase;

/// The Medusa backend's `http.jwtSecret` when the dump was made.
const MEDUSA_SECRET: &str = "supersecret";

/// (address as registered, Medusa password, actor type, actor id) of every account in the dump.
const ACCOUNTS: [(&str, &str, &str, &str); 5] = [
    ("admin@example.com", "supersecret", "user", "user_01M91TFQDVPWYR2D4653FXVKGS"),
    ("cdae35ok5rcwg@example.com", "benchpass1", "customer", "cus_01M91V4JAKSTP072JK0VV4JXPD"),
    ("ann@example.com", "ann-medusa-pass-1", "customer", "cus_01M91WWRQQWYGW4XNCMCPYKMY3"),
    ("Bob.Smith@Example.com", "bob medusa pass 2", "customer", "cus_01M91WWRWVY6XR3HRFVHR4X75Y"),
    ("carol@example.com", "carol-pass-3", "customer", ""),
];
const ANN_IDENTITY: &str = "authid_01M91WWRP6YCQBFZH29VW33KHW";

/// A fresh PostgreSQL database holding the dump; `None` when PostgreSQL is unreachable (the
/// skip is announced by `PgTestDatabase`).
fn medusa_source() -> Option<PgTestDatabase> {
    let source = PgTestDatabase::create()?;
    // `\restrict` lines are psql 15.14+ meta-commands of the dump: left out for older clients.
    let dump: String = include_str!("../fixtures/medusa-2.21.2-auth-tables.sql")
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut psql = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &source.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql (PostgreSQL's client) loads the Medusa dump: install it");
    std::io::Write::write_all(psql.stdin.as_mut().unwrap(), dump.as_bytes()).unwrap();
    drop(psql.stdin.take());
    assert!(psql.wait().unwrap().success(), "loading the Medusa dump failed");
    Some(source)
}

fn run_sql(url: &str, sql: &str) {
    let out = Command::new("psql").args(["-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]).output().unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `xclade-auth import medusa --from URL --tenant T --json [extra]`: exit code, the summary
/// (JSON, when the run got that far) and standard error.
fn import(env: &TestEnv, from: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["import", "medusa", "--from", from, "--tenant", tenant(), "--json"];
    args.extend_from_slice(extra);
    let out = env.cli(&[], &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), summary, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn count(env: &TestEnv, table: &str) -> usize {
    env.db().count(table)
}

fn login_as(app: &TestApp, actor: &str, email: &str, password: &str) -> crate::helpers::Resp {
    app.post(&format!("/auth/{actor}/emailpass"), &crate::helpers::credentials(email, password))
}

fn stored_hash(app: &TestApp, email: &str) -> String {
    let key = email.to_lowercase();
    let metadata =
        app.db().text(&format!("SELECT provider_metadata AS v FROM provider_identity WHERE entity_key = '{key}'"));
    serde_json::from_str::<Value>(&metadata).unwrap()["password"].as_str().unwrap().to_string()
}

/// A token as the Medusa backend signs it (its claims, in its order) for Ann, issued `age` ago.
fn medusa_token(secret: &str, auth_identity_id: &str, age: i64, lifetime: i64) -> String {
    let iat = chrono::Utc::now().timestamp() - age;
    sign(
        &json!({
            "actor_id": "cus_01M91WWRQQWYGW4XNCMCPYKMY3",
            "actor_type": "customer",
            "auth_identity_id": auth_identity_id,
            "auth_provider": "emailpass",
            "mfa_enabled": false,
            "mfa_challenge_completed_at": null,
            "app_metadata": { "customer_id": "cus_01M91WWRQQWYGW4XNCMCPYKMY3" },
            "user_metadata": {},
            "iat": iat,
            "exp": iat + lifetime,
        }),
        secret,
    )
}

on_both_backends!(
    every_medusa_account_logs_in_with_its_medusa_password,
    a_broken_source_leaves_its_bad_accounts_out_and_writes_nothing_half,
    a_medusa_token_is_exchanged_on_refresh_until_the_password_changes,
    a_run_that_fails_half_way_leaves_whole_batches_and_the_next_run_finishes,
    an_address_already_registered_here_is_left_out_not_merged,
    google_and_github_sign_ins_move_and_sign_in_here,
);

fn every_medusa_account_logs_in_with_its_medusa_password(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    let Some(source) = medusa_source() else { return };
    env.create_tenants();

    // A dry run decides every account and writes nothing.
    let (code, summary, stderr) = import(&env, &source.url, &["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!((summary["dry_run"].as_bool(), summary["imported"].as_u64()), (Some(true), Some(5)), "{summary}");
    assert_eq!((count(&env, "auth_identity"), count(&env, "customer")), (0, 0), "a dry run wrote rows");

    let (code, summary, stderr) = import(&env, &source.url, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["read"], json!({"auth_identity": 5, "provider_identity": 5, "customer": 3}));
    assert_eq!(summary["imported"], 5, "{summary}");
    assert_eq!(summary["imported_by_actor"], json!({"customer": 3, "none": 1, "user": 1}));
    assert_eq!((summary["customers"].as_u64(), summary["skipped"].as_array().map(Vec::len)), (Some(3), Some(0)));
    let fingerprint = env.db().fingerprint();
    let times = env.db().texts("SELECT id || ' ' || created_at AS v FROM auth_identity ORDER BY id");
    assert!(times[0].starts_with("authid_01M91TFQGZW01J9NQB4VMZ9J08 2026-12-05 00:43:24.575"), "{times:?}");

    // Again: nothing changes, and the summary says so.
    let (code, summary, _) = import(&env, &source.url, &[]);
    assert_eq!(code, 0);
    assert_eq!((summary["imported"].as_u64(), summary["unchanged"].as_u64()), (Some(0), Some(5)), "{summary}");
    assert_eq!(env.db().fingerprint(), fingerprint, "a second import changed rows");

    let app = TestApp::start(env, &[]);
    // A wrong password fails against the Medusa hash (before any login replaced it).
    assert_eq!(app.login("ann@example.com", "ann-medusa-pass-2").status, 401);
    assert!(stored_hash(&app, "ann@example.com").starts_with("c2NyeXB0"), "still Medusa's hash");
    for (email, password, actor, actor_id) in ACCOUNTS {
        let r = login_as(&app, actor, email, password);
        assert_eq!(r.status, 200, "{email}: {}", r.text);
        let c = claims(&r.token());
        assert_eq!((c["actor_type"].as_str(), c["actor_id"].as_str()), (Some(actor), Some(actor_id)), "{email}");
        assert!(
            stored_hash(&app, email).starts_with("$2b$04$"),
            "{email}: rehashed with bcrypt at the configured cost"
        );
        // And again, now on bcrypt; the address in any case.
        assert_eq!(login_as(&app, actor, &email.to_uppercase(), password).status, 200, "{email}");
        assert_eq!(login_as(&app, actor, email, "not the password").status, 401, "{email}");
    }
    // Ann's customer came with her: the storefront reads it with her token.
    let token = app.login("ann@example.com", "ann-medusa-pass-1").token();
    let me = app.request("GET", "/store/customers/me", None, &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(me.status, 200, "{}", me.text);
    let customer = &me.json()["customer"];
    assert_eq!((customer["id"].as_str(), customer["first_name"].as_str()), (Some(ACCOUNTS[2].3), Some("ann")));
    // Carol has no customer yet: she creates it as after an emailpass registration.
    let carol = app.login("carol@example.com", "carol-pass-3").token();
    let created = app.post_with(
        "/store/customers",
        r#"{"email":"carol@example.com"}"#,
        &[("authorization", &format!("Bearer {carol}"))],
    );
    assert_eq!(created.status, 200, "{}", created.text);
}

fn a_broken_source_leaves_its_bad_accounts_out_and_writes_nothing_half(backend: Backend) {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    let Some(env) = TestEnv::new(backend) else { return };
    env.create_tenants();

    // Not a PostgreSQL URL, and a server that is not there: refused before any write.
    for (from, needle) in [
        ("mysql://root:hunter2-in-url@127.0.0.1/medusa", "postgres://"),
        ("postgres://postgres:hunter2-in-url@127.0.0.1:1/medusa", "cannot connect"),
    ] {
        let (code, _, stderr) = import(&env, from, &[]);
        assert_eq!(code, 1, "{from}: {stderr}");
        assert!(stderr.contains(needle), "{from}: {stderr}");
        assert!(!stderr.contains("hunter2-in-url"), "the URL's password is not echoed: {stderr}");
    }

    // A database without Medusa's `customer` table.
    let Some(partial) = medusa_source() else { return };
    run_sql(&partial.url, "DROP TABLE customer");
    let (code, _, stderr) = import(&env, &partial.url, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no table customer"), "{stderr}");
    assert_eq!(count(&env, "auth_identity"), 0);

    // Ann's hash truncated, Carol's asking for logN 30 (2^30 rounds: 1 TiB of memory at r 8), and
    // a second Bob whose address differs from the first only in case.
    let Some(source) = medusa_source() else { return };
    run_sql(
        &source.url,
        "UPDATE provider_identity SET provider_metadata = jsonb_build_object('password', \
         left(provider_metadata->>'password', 90)) WHERE entity_id = 'ann@example.com'",
    );
    let carol_hash = "c2NyeXB0AA8AAAAIAAAAARDjkNcexRYKA4U220xGtNCy9ERNLUulTUWT62qnIz3ZTReXq5hywwrbI+6eH8vbjz9w5dUUrkQkxtJakUGsRvtnPzYiMPYaMCUItI4EyyG9";
    let mut bytes = STANDARD.decode(carol_hash).unwrap();
    bytes[7] = 30;
    // With a checksum that matches the new header, so only the cost bound refuses it.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes[..48]);
    bytes[48..64].copy_from_slice(&digest[..16]);
    run_sql(
        &source.url,
        &format!(
            "UPDATE provider_identity SET provider_metadata = '{{\"password\": \"{}\"}}' WHERE entity_id = 'carol@example.com'",
            STANDARD.encode(&bytes)
        ),
    );
    run_sql(
        &source.url,
        "INSERT INTO auth_identity (id, app_metadata) VALUES ('authid_SECONDBOB', NULL); \
         INSERT INTO provider_identity (id, entity_id, provider, auth_identity_id, provider_metadata) \
         SELECT '01SECONDBOB', 'bob.smith@example.com', 'emailpass', 'authid_SECONDBOB', provider_metadata \
         FROM provider_identity WHERE entity_id = 'Bob.Smith@Example.com'",
    );
    let started = Instant::now();
    let (code, summary, stderr) = import(&env, &source.url, &[]);
    assert!(started.elapsed() < Duration::from_secs(20), "logN 30 must be refused without the work");
    assert_eq!(code, 3, "some accounts were left out: {stderr}");
    let mut left_out: Vec<(String, String)> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["auth_identity_id"].as_str().unwrap().into(), s["reason"].as_str().unwrap().into()))
        .collect();
    left_out.sort();
    assert_eq!(
        left_out,
        vec![
            ("authid_01M91WWRP6YCQBFZH29VW33KHW".into(), "unreadable_hash".into()),
            ("authid_01M91WWRVGP2K8NYY61NN7PYHW".into(), "same_address_in_source".into()),
            ("authid_01M91WWS0S24JC2EKF6N0J8ZN6".into(), "unreadable_hash".into()),
            ("authid_SECONDBOB".into(), "same_address_in_source".into()),
        ],
        "{summary}"
    );
    assert_eq!(summary["imported"], 2, "{summary}");
    // The accounts left out have no row at all; the others are whole.
    let mut db = env.db();
    assert_eq!(db.count("auth_identity"), 2);
    assert_eq!(db.count("provider_identity"), 2);
    assert_eq!(db.count("customer"), 1, "cdae35ok5rcwg's customer; Ann's and Bob's stayed out with them");
    let text = serde_json::to_string(&summary).unwrap();
    assert!(!text.contains("c2NyeXB0"), "no hash in the report: {text}");
}

fn a_medusa_token_is_exchanged_on_refresh_until_the_password_changes(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    let Some(source) = medusa_source() else { return };
    env.create_tenants();
    let (code, _, stderr) = import(&env, &source.url, &[]);
    assert_eq!(code, 0, "{stderr}");
    let app = TestApp::start(env, &[("MEDUSA_JWT_SECRET", MEDUSA_SECRET)]);
    let bearer = |token: &str| format!("Bearer {token}");
    let me = |token: &str| app.request("GET", "/store/customers/me", None, &[("authorization", &bearer(token))]);

    let medusa = medusa_token(MEDUSA_SECRET, ANN_IDENTITY, 60, 86_400);
    // Refresh only: no other route takes a Medusa token.
    assert_eq!(me(&medusa).status, 401);
    let r = app.refresh(&medusa);
    assert_eq!(r.status, 200, "{}", r.text);
    let fresh = r.token();
    let c = claims(&fresh);
    assert_eq!((c["auth_identity_id"].as_str(), c["actor_id"].as_str()), (Some(ANN_IDENTITY), Some(ACCOUNTS[2].3)));
    assert!(c.contains_key("stamp"), "an Xclade token: {c:?}");
    assert_eq!(me(&fresh).status, 200);

    // Expired, signed with another secret, carrying Xclade's claims, for an identity that is
    // not here: refused as any bad token.
    assert_eq!(app.refresh(&medusa_token(MEDUSA_SECRET, ANN_IDENTITY, 90_000, 86_400)).status, 401);
    assert_eq!(app.refresh(&medusa_token("another-secret", ANN_IDENTITY, 60, 86_400)).status, 401);
    let mut with_stamp = claims(&medusa);
    with_stamp.insert("stamp".into(), json!("x"));
    assert_eq!(app.refresh(&sign(&Value::Object(with_stamp), MEDUSA_SECRET)).status, 401);
    assert_eq!(app.refresh(&medusa_token(MEDUSA_SECRET, "authid_NOTHERE", 60, 86_400)).status, 401);
    // An account registered here never had a Medusa token: one forged for it is refused.
    let own = claims(&app.registered("dave@example.com"))["auth_identity_id"].as_str().unwrap().to_string();
    assert_eq!(app.refresh(&medusa_token(MEDUSA_SECRET, &own, 60, 86_400)).status, 401);

    // Without MEDUSA_JWT_SECRET (the window closed), the same token is refused.
    let closed = app.sibling(&[]);
    assert_eq!(closed.refresh(&medusa).status, 401);
    drop(closed);

    // A password reset ends the exchange for every Medusa token of the account.
    let reset = app.reset_token("ann@example.com");
    let r = app.update(&reset, r#"{"password":"a brand new passphrase"}"#);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.refresh(&medusa).status, 401, "a Medusa token after a password change");
    assert_eq!(app.refresh(&medusa_token(MEDUSA_SECRET, ANN_IDENTITY, 0, 86_400)).status, 401);
}

fn a_run_that_fails_half_way_leaves_whole_batches_and_the_next_run_finishes(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    let Some(source) = medusa_source() else { return };
    env.create_tenants();
    env.cli_ok(&[], &["migrate"]);
    // The target fails on Ann's identity, the third of five in id order: with batches of two, the
    // first batch is written, the second (Ann and Bob) fails as a whole.
    let mut db = env.db();
    match backend {
        Backend::Sqlite => db.execute(&format!(
            "CREATE TRIGGER fail_ann BEFORE INSERT ON auth_identity WHEN NEW.id = '{ANN_IDENTITY}' \
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )),
        Backend::Postgres => db.execute(&format!(
            "CREATE FUNCTION fail_ann() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.id = '{ANN_IDENTITY}' THEN RAISE EXCEPTION 'disk on fire'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER fail_ann BEFORE INSERT ON auth_identity FOR EACH ROW EXECUTE FUNCTION fail_ann()"
        )),
    }
    let (code, _, stderr) = import(&env, &source.url, &["--batch-size", "2"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("disk on fire"), "{stderr}");
    assert_eq!(
        (db.count("auth_identity"), db.count("provider_identity"), db.count("customer")),
        (2, 2, 1),
        "the admin and cdae35ok5rcwg, whole; nothing of Ann or Bob"
    );
    db.execute(match backend {
        Backend::Sqlite => "DROP TRIGGER fail_ann",
        Backend::Postgres => "DROP TRIGGER fail_ann ON auth_identity",
    });

    let (code, summary, stderr) = import(&env, &source.url, &["--batch-size", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!((summary["imported"].as_u64(), summary["unchanged"].as_u64()), (Some(3), Some(2)), "{summary}");
    assert_eq!((db.count("auth_identity"), db.count("provider_identity"), db.count("customer")), (5, 5, 3));
}

fn an_address_already_registered_here_is_left_out_not_merged(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    let Some(source) = medusa_source() else { return };
    let app = TestApp::start(env, &[]);
    // Ann registered here first, with another password (and another case).
    let own = claims(&app.registered("ANN@example.com"))["auth_identity_id"].as_str().unwrap().to_string();
    let env = app.stop();
    let (code, summary, stderr) = import(&env, &source.url, &[]);
    assert_eq!(code, 3, "{stderr}");
    let skipped = summary["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{summary}");
    assert_eq!(
        (skipped[0]["auth_identity_id"].as_str(), skipped[0]["reason"].as_str()),
        (Some(ANN_IDENTITY), Some("address_taken"))
    );
    assert!(skipped[0]["message"].as_str().unwrap().contains(&own), "{summary}");
    assert_eq!(summary["imported"], 4);
    let app = TestApp::start(env, &[]);
    // Her account here is untouched: her own password works, Medusa's does not.
    assert_eq!(app.login("ann@example.com", crate::helpers::PASSWORD).status, 200);
    assert_eq!(app.login("ann@example.com", "ann-medusa-pass-1").status, 401);
}

/// Medusa's own social providers (`@medusajs/auth-google`, `@medusajs/auth-github`) store the
/// provider's subject as `entity_id`: such identities move with their account and the same
/// sign-in finds them here. Gia signed up with Google only; Ann also linked GitHub (Medusa keeps
/// GitHub's tokens in `provider_metadata`, which stays behind). A `phone` identity of a provider
/// this service does not have is reported, not moved.
fn google_and_github_sign_ins_move_and_sign_in_here(backend: Backend) {
    let Some(env) = TestEnv::new(backend) else { return };
    let Some(source) = medusa_source() else { return };
    env.create_tenants();
    run_sql(
        &source.url,
        "INSERT INTO auth_identity (id, app_metadata) VALUES ('authid_GIA', '{\"customer_id\": \"cus_GIA\"}'); \
         INSERT INTO customer (id, email, first_name, has_account) VALUES ('cus_GIA', 'gia@example.com', 'Gia', true); \
         INSERT INTO provider_identity (id, entity_id, provider, auth_identity_id, user_metadata) \
         VALUES ('01GIAGOOGLE', '109876543210', 'google', 'authid_GIA', \
                 '{\"email\": \"gia@example.com\", \"name\": \"Gia\"}'); \
         INSERT INTO provider_identity (id, entity_id, provider, auth_identity_id, user_metadata, provider_metadata) \
         VALUES ('01ANNGITHUB', '583231', 'github', 'authid_01M91WWRP6YCQBFZH29VW33KHW', '{\"name\": \"Ann\"}', \
                 '{\"access_token\": \"gho_medusa_kept_this\"}'); \
         INSERT INTO provider_identity (id, entity_id, provider, auth_identity_id) \
         VALUES ('01ANNPHONE', '+15550199', 'phone', 'authid_01M91WWRP6YCQBFZH29VW33KHW'); \
         INSERT INTO auth_identity (id) VALUES ('authid_PHONE'); \
         INSERT INTO provider_identity (id, entity_id, provider, auth_identity_id) \
         VALUES ('01PHONE', '+15550100', 'phone', 'authid_PHONE')",
    );
    let (code, summary, stderr) = import(&env, &source.url, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(summary["imported"], 6, "{summary}");
    assert_eq!(summary["imported_by_provider"], json!({"emailpass": 5, "github": 1, "google": 1}), "{summary}");
    let skipped = summary["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{summary}");
    assert_eq!(
        (skipped[0]["auth_identity_id"].as_str(), skipped[0]["reason"].as_str()),
        (Some("authid_PHONE"), Some("unsupported_provider"))
    );
    assert!(skipped[0]["message"].as_str().unwrap().contains("phone"), "{summary}");
    // Ann's own phone identity stays in Medusa, and the summary says so.
    assert_eq!(
        summary["providers_left"],
        json!([{"auth_identity_id": ANN_IDENTITY, "provider_identity_id": "01ANNPHONE", "provider": "phone"}])
    );
    assert_eq!(env.db().count("provider_identity WHERE provider_metadata LIKE '%gho_%'"), 0, "GitHub's token moved");
    let fingerprint = env.db().fingerprint();
    let (_, again, _) = import(&env, &source.url, &[]);
    assert_eq!((again["imported"].as_u64(), again["unchanged"].as_u64()), (Some(0), Some(6)), "{again}");
    assert_eq!(env.db().fingerprint(), fingerprint, "a second import changed rows");

    // Gia signs in with Google here and is her Medusa customer at once.
    let google = crate::oauth::HostileIssuer::start();
    let google_settings = [
        ("OAUTH_GOOGLE_CLIENT_ID", crate::oauth::CLIENT_ID.to_string()),
        ("OAUTH_GOOGLE_CLIENT_SECRET", crate::oauth::CLIENT_SECRET.to_string()),
        ("OAUTH_GOOGLE_CALLBACK_URL", crate::oauth::CALLBACK.to_string()),
        ("OAUTH_GOOGLE_ISSUER", google.base.clone()),
    ];
    let overrides: Vec<(&str, &str)> = google_settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::start(env, &overrides);
    let location =
        app.request("GET", "/auth/customer/google", None, &[]).json()["location"].as_str().unwrap().to_string();
    let (state, nonce) =
        (crate::oauth::param(&location, "state").unwrap(), crate::oauth::param(&location, "nonce").unwrap());
    let mut id_claims = google.claims(&nonce);
    id_claims["sub"] = json!("109876543210");
    id_claims["email"] = json!("gia@example.com");
    *google.next_id_token.lock().unwrap() = google.sign(&id_claims);
    let r = crate::oauth::callback(&app, "customer", "google", &format!("code=c&state={state}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let c = claims(&r.token());
    assert_eq!(
        (c["auth_identity_id"].as_str(), c["actor_id"].as_str(), c["auth_provider"].as_str()),
        (Some("authid_GIA"), Some("cus_GIA"), Some("google"))
    );
    let me = app.request("GET", "/store/customers/me", None, &[("authorization", &format!("Bearer {}", r.token()))]);
    assert_eq!(me.json()["customer"]["first_name"], "Gia", "{}", me.text);
    // Ann's account has both: her password, and GitHub's subject under her identity.
    assert_eq!(app.login("ann@example.com", "ann-medusa-pass-1").status, 200);
    assert_eq!(
        app.db().text(
            "SELECT auth_identity_id AS v FROM provider_identity WHERE provider = 'github' AND entity_key = '583231'"
        ),
        ANN_IDENTITY
    );
}
