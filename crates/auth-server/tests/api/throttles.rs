//! Throttles that hold and cannot be turned on the victim: the failed-login buckets are checked
//! and taken in one atomic step (concurrent wrong passwords cannot overshoot them), a device
//! cookie keeps an account's own devices out of the account-wide bucket, bucket keys are HMACs
//! under a server secret, and the strength estimator knows the account's own words.

use serde_json::json;

use crate::helpers::{concurrently, credentials, email, tenant, Backend, Resp, TestApp, JWT_SECRET, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    concurrent_wrong_passwords_never_pass_the_pair_limit,
    concurrent_wrong_passwords_from_many_addresses_never_pass_the_account_limit,
    a_device_cookie_keeps_the_owner_in_while_guessers_are_held_out,
    a_password_made_of_the_email_is_refused_wherever_one_is_set,
);

const LOGIN: &str = "/auth/customer/emailpass";

fn limits(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all = vec![("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_PER_IP", "10000/1m")];
    all.extend_from_slice(extra);
    all
}

/// `limits`, with many verifications at once, each slow enough to overlap: what let wrong
/// passwords in flight pass a bucket that was looked at before and taken after.
fn racing(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all = limits(&[("HASH_CONCURRENCY", "16"), ("BCRYPT_COST", "6")]);
    all.extend_from_slice(extra);
    all
}

/// (401s, 429s) among `responses`; anything else fails.
#[track_caller]
fn tally(responses: &[Resp]) -> (usize, usize) {
    for r in responses {
        assert!(r.status == 401 || r.status == 429, "{} {}", r.status, r.text);
    }
    let unauthorized = responses.iter().filter(|r| r.status == 401).count();
    (unauthorized, responses.len() - unauthorized)
}

fn concurrent_wrong_passwords_never_pass_the_pair_limit(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &racing(&[("LOGIN_FAILURE_LIMIT", "5/15m")])) else { return };
    let who = email("pair");
    app.registered(&who);
    let responses = concurrently(50, |_| app.login(&who, "a wrong passphrase"));
    let (unauthorized, limited) = tally(&responses);
    assert!(
        (1..=5).contains(&unauthorized),
        "{unauthorized} wrong passwords reached the check of 50 at once, against a limit of 5 ({limited} were 429)"
    );
    // The bucket is spent: the right password is refused too (nothing is learnt from it).
    assert_eq!(app.login(&who, PASSWORD).status, 429);
}

fn concurrent_wrong_passwords_from_many_addresses_never_pass_the_account_limit(backend: Backend) {
    let overrides = racing(&[
        ("LOGIN_FAILURE_LIMIT", "5/15m"),
        ("LOGIN_FAILURE_LIMIT_ACCOUNT", "10/1h"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let Some(app) = TestApp::spawn_with(backend, &overrides) else { return };
    let who = email("account");
    app.registered(&who);
    let responses = concurrently(50, |i| {
        let forwarded = format!("10.9.{}.{}", i / 200, i % 200 + 1);
        app.post_with(LOGIN, &credentials(&who, "a wrong passphrase"), &[("x-forwarded-for", &forwarded)])
    });
    let (unauthorized, limited) = tally(&responses);
    assert!(
        (1..=10).contains(&unauthorized),
        "{unauthorized} wrong passwords from 50 addresses at once reached the check, against 10 ({limited} were 429)"
    );
}

/// A login from `address` (through the trusted proxy), with the device cookie `device` if any.
fn login_from(app: &TestApp, who: &str, password: &str, address: &str, device: Option<&str>) -> Resp {
    let cookie = device.map(|d| format!("xclade_device={d}"));
    let mut headers = vec![("x-forwarded-for", address)];
    if let Some(cookie) = &cookie {
        headers.push(("cookie", cookie.as_str()));
    }
    app.post_with(LOGIN, &credentials(who, password), &headers)
}

/// A device cookie entry for `who`, signed as the server signs them (the harness knows the
/// secret), expiring at `exp`.
fn signed_entry(who: &str, exp: i64) -> String {
    use base64::Engine as _;
    let secrets = auth_domain::secret::SecretBox::new(JWT_SECRET.as_bytes(), &[]);
    let mac = secrets.device_mac(&format!("device\u{1f}{}\u{1f}{}\u{1f}{exp}", tenant(), who.to_lowercase()));
    format!("{exp}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac))
}

fn a_device_cookie_keeps_the_owner_in_while_guessers_are_held_out(backend: Backend) {
    let overrides = limits(&[
        ("LOGIN_FAILURE_LIMIT", "3/15m"),
        ("LOGIN_FAILURE_LIMIT_ACCOUNT", "5/1h"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let Some(app) = TestApp::spawn_with(backend, &overrides) else { return };
    let (owner, other) = (email("owner"), email("other"));
    app.registered(&owner);
    app.registered(&other);

    // The owner logs in once from home: the answer sets the device cookie.
    let first = login_from(&app, &owner, PASSWORD, "10.0.0.1", None);
    assert_eq!(first.status, 200, "{}", first.text);
    let set = first.header("set-cookie").unwrap().to_string();
    for attribute in ["HttpOnly", "Path=/auth", "SameSite=Lax", "Max-Age=2592000"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let device = first.cookie("xclade_device").unwrap();
    assert!(!device.contains(&owner) && !device.contains('@'), "the cookie does not name the account: {device}");
    let other_device = login_from(&app, &other, PASSWORD, "10.0.0.2", None).cookie("xclade_device").unwrap();

    // Guessers from five addresses spend the account-wide bucket: then everyone without the
    // cookie gets 429, the right password included.
    for i in 1..=5 {
        assert_eq!(login_from(&app, &owner, "a wrong guess", &format!("10.1.0.{i}"), None).status, 401);
    }
    assert_eq!(login_from(&app, &owner, "a wrong guess", "10.1.0.6", None).status, 429);
    assert_eq!(login_from(&app, &owner, PASSWORD, "10.0.0.1", None).status, 429, "held out without the cookie");

    // Cookies that prove nothing give no exemption: altered, another account's, expired, signed
    // with another secret, garbage.
    let mut altered = device.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let now = chrono::Utc::now().timestamp();
    let expired = signed_entry(&owner, now - 5);
    let foreign = {
        use base64::Engine as _;
        let mac = auth_domain::secret::SecretBox::new(b"another secret entirely", &[]).device_mac(&format!(
            "device\u{1f}{}\u{1f}{}\u{1f}{}",
            tenant(),
            owner.to_lowercase(),
            now + 3600
        ));
        format!("{}.{}", now + 3600, base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac))
    };
    for (what, cookie) in [
        ("altered", altered.as_str()),
        ("another account's", other_device.as_str()),
        ("expired", expired.as_str()),
        ("another secret's", foreign.as_str()),
        ("garbage", "not-a-device-cookie"),
    ] {
        let r = login_from(&app, &owner, PASSWORD, "10.0.0.1", Some(cookie));
        assert_eq!(r.status, 429, "{what} cookie: {}", r.text);
    }
    // The harness's own entry, made the way the test made the expired one, is accepted: the
    // refusal above is the expiry, not the way it was made.
    let fresh = signed_entry(&owner, now + 3600);
    assert_eq!(login_from(&app, &owner, PASSWORD, "10.0.0.3", Some(&fresh)).status, 200);

    // The owner's own cookie: in, while the bucket stays spent for the others.
    let r = login_from(&app, &owner, PASSWORD, "10.0.0.1", Some(&device));
    assert_eq!(r.status, 200, "{}", r.text);
    let renewed = r.cookie("xclade_device").unwrap();
    assert_eq!(login_from(&app, &owner, PASSWORD, "10.2.0.1", None).status, 429, "still held out without it");
    // One cookie remembers several accounts of one browser.
    let both = login_from(&app, &other, PASSWORD, "10.0.0.1", Some(&renewed)).cookie("xclade_device").unwrap();
    assert_eq!(login_from(&app, &owner, PASSWORD, "10.0.0.1", Some(&both)).status, 200);

    // The cookie still counts against its own (email, client) bucket: three wrong passwords,
    // then 429 for that client even with the cookie.
    for _ in 0..3 {
        assert_eq!(login_from(&app, &owner, "a wrong guess", "10.0.0.1", Some(&device)).status, 401);
    }
    assert_eq!(login_from(&app, &owner, PASSWORD, "10.0.0.1", Some(&device)).status, 429);
    // And its wrong passwords did not count against the account-wide bucket: another device of
    // the owner's with the cookie, from elsewhere, still gets in.
    assert_eq!(login_from(&app, &owner, PASSWORD, "10.0.0.4", Some(&device)).status, 200);
}

fn a_password_made_of_the_email_is_refused_wherever_one_is_set(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PASSWORD_MIN_STRENGTH", "2")]) else { return };
    let ann = format!("ann-{}@example.com", auth_domain::secret::random_hex(2).unwrap());
    let local = ann.split('@').next().unwrap().to_string();
    let weak = format!("{local}-example-2024");
    app.register(&ann, &weak).assert_invalid("Field 'password' is too weak");
    assert_eq!(app.db().count("provider_identity"), 0, "nothing registered");
    let token = app.registered(&ann);

    // change-password: the same words are refused as the new password.
    let change = app.post_with(
        "/auth/customer/emailpass/change-password",
        &json!({ "old_password": PASSWORD, "new_password": weak }).to_string(),
        &[("authorization", &format!("Bearer {token}"))],
    );
    change.assert_invalid("Field 'new_password' is too weak");

    // The reset's update: refused, and the reset token is kept.
    let reset = app.reset_token(&ann);
    app.update(&reset, &json!({ "password": weak }).to_string()).assert_invalid("Field 'password' is too weak");
    assert_eq!(app.update(&reset, &json!({ "password": "mauve otter juggles quietly" }).to_string()).status, 200);
    assert_eq!(app.login(&ann, "mauve otter juggles quietly").status, 200);

    // The same password is judged on its own for an address it is not made of.
    let bob = email("bob");
    assert_eq!(app.register(&bob, "ann-lee-quokka-2024").status, 200);
}

/// Buckets are stored only on PostgreSQL (SQLite keeps them in the process).
#[test]
fn stored_bucket_keys_are_hmacs_under_the_server_secret_on_postgres() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &limits(&[])) else { return };
    let who = email("hmac");
    app.registered(&who);
    assert_eq!(app.login(&who, "a wrong passphrase").status, 401);
    let keys = app.db().texts("SELECT key AS v FROM rate_limit ORDER BY key");
    assert!(keys.iter().any(|k| k.starts_with("login-account:")), "{keys:?}");
    let sha256 = auth_domain::secret::sha256_hex;
    let unsalted = [
        format!("login-account:{}", sha256(&format!("{}\u{1f}{who}", tenant()))),
        format!("login-account:{}", sha256(&who)),
        format!("login-account:{who}"),
    ];
    for key in &keys {
        assert!(!key.contains(&who) && !key.contains(&sha256(&who)), "{key}");
        assert!(!unsalted.contains(key), "an unsalted key: {key}");
    }
    let secrets = auth_domain::secret::SecretBox::new(JWT_SECRET.as_bytes(), &[]);
    let keyed = format!("login-account:{}", secrets.keyed_hash(&format!("login-account\u{1f}{}\u{1f}{who}", tenant())));
    assert!(keys.contains(&keyed), "the HMAC of the email under the server's key: {keys:?}");
}
