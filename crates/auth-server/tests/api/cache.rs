//! The identity cache (docs/architecture.md, "The identity cache"): refreshes are answered from
//! memory, and a change is never served stale: at once on the instance that made it, within the
//! stated bound on the others (PostgreSQL's notifications), and not at all while the listener
//! cannot hear (the cache is off until it listens again).

use std::time::{Duration, Instant};

use crate::helpers::{claims, eventually, metric, tenant, Backend, TestApp, PASSWORD, REVOCATION_BOUND};
use crate::on_both_backends;

on_both_backends!(refreshes_are_answered_from_memory_and_this_instance_s_changes_at_once,);

const HITS: &str = r#"xclade_auth_identity_cache_lookups_total{outcome="hit"}"#;
const MISSES: &str = r#"xclade_auth_identity_cache_lookups_total{outcome="miss"}"#;
const SERVING: &str = "xclade_auth_identity_cache_serving";
const FLUSHES: &str = "xclade_auth_identity_cache_flushes_total";

fn scrape(app: &TestApp) -> String {
    app.admin().request("GET", "/metrics", None, &[]).text
}

/// How long after `since` `app` first refuses `token` (polled every millisecond), or a panic once
/// `limit` has passed with the token still answered 200.
fn refused_within(app: &TestApp, token: &str, since: Instant, limit: Duration, what: &str) -> Duration {
    loop {
        let status = app.refresh(token).status;
        if status == 401 {
            return since.elapsed();
        }
        assert_eq!(status, 200, "{what}");
        assert!(since.elapsed() < limit, "{what}: still answered 200 after {:?}", since.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn refreshes_are_answered_from_memory_and_this_instance_s_changes_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    // On PostgreSQL the cache serves once the listener listens.
    eventually("the identity cache serves", || metric(&scrape(&app), SERVING) == 1.0);
    app.registered("ann@example.com");
    let token = app.login("ann@example.com", PASSWORD).token();
    let before = scrape(&app);
    for _ in 0..10 {
        assert_eq!(app.refresh(&token).status, 200);
    }
    let after = scrape(&app);
    let (hits, misses) =
        (metric(&after, HITS) - metric(&before, HITS), metric(&after, MISSES) - metric(&before, MISSES));
    assert!(hits >= 9.0 && misses <= 1.0, "ten refreshes: {hits} hits, {misses} misses\n{after}");
    assert!(metric(&after, "xclade_auth_identity_cache_entries") >= 1.0, "{after}");

    // What this instance changes is refused at once: logout-all, then a password change.
    let second = app.login("ann@example.com", PASSWORD).token();
    let r = app.post_with("/auth/logout-all", "", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.refresh(&token).status, 401, "the caller's token, the moment logout-all answered");
    assert_eq!(app.refresh(&second).status, 401, "every token of the account");
    let fresh = app.login("ann@example.com", PASSWORD).token();
    assert_eq!(app.refresh(&fresh).status, 200);
    assert_eq!(app.refresh(&fresh).status, 200);
    let body = format!(r#"{{"old_password":"{PASSWORD}","new_password":"another good passphrase"}}"#);
    let r = app.post_with(
        "/auth/customer/emailpass/change-password",
        &body,
        &[("authorization", &format!("Bearer {fresh}"))],
    );
    assert!(r.status == 200 || r.status == 204, "{} {}", r.status, r.text);
    assert_eq!(app.refresh(&fresh).status, 401, "revoked the moment change-password answered");
    let customer = app.login("ann@example.com", "another good passphrase").token();
    // The actor id of a refreshed token follows the customer created since (the identity's
    // app_metadata changed, and the cached identity with it).
    assert_eq!(claims(&app.refresh(&customer).token())["actor_id"], "");
    let r = app.post_with(
        "/store/customers",
        r#"{"email":"ann@example.com"}"#,
        &[("authorization", &format!("Bearer {customer}"))],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let refreshed = app.refresh(&customer).token();
    assert!(claims(&refreshed)["actor_id"].as_str().is_some_and(|id| id.starts_with("cus_")), "{refreshed}");
}

/// A change made on another instance, or in the database by hand, is honoured within the bound;
/// the cache kept answering from memory until then.
#[test]
fn a_change_elsewhere_is_honoured_within_the_bound_on_postgres() {
    let Some(a) = TestApp::spawn(Backend::Postgres) else { return };
    let b = a.sibling(&[]);
    for app in [&a, &b] {
        eventually("the identity cache serves", || metric(&scrape(app), SERVING) == 1.0);
    }
    a.registered("bob@example.com");
    let token = a.login("bob@example.com", PASSWORD).token();
    let warm = |app: &TestApp, token: &str| {
        let before = metric(&scrape(app), HITS);
        for _ in 0..3 {
            assert_eq!(app.refresh(token).status, 200);
        }
        assert!(metric(&scrape(app), HITS) - before >= 2.0, "b answers from memory");
    };
    warm(&b, &token);

    // Another instance: logout-all on a, refused on b.
    let r = a.post_with("/auth/logout-all", "", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(r.status, 200);
    let took = refused_within(&b, &token, Instant::now(), REVOCATION_BOUND, "logout-all on the other instance");
    eprintln!("logout-all on one instance refused on the other {took:?} after its answer");

    // By hand (or the CLI): a new stamp written in SQL.
    let token = a.login("bob@example.com", PASSWORD).token();
    warm(&b, &token);
    let id = claims(&token)["auth_identity_id"].as_str().unwrap().to_string();
    let mut db = a.db();
    let since = Instant::now();
    db.execute(&format!("UPDATE auth_identity SET security_stamp = 'by-hand' WHERE id = '{id}'"));
    let took = refused_within(&b, &token, since, REVOCATION_BOUND, "a stamp written in SQL");
    eprintln!("a stamp written by hand refused {took:?} after the UPDATE began");
}

/// While the listener's connection is down nothing is served from memory, and what changed then
/// is not served stale once it listens again.
#[test]
fn a_lost_listener_turns_the_cache_off_until_it_listens_again_on_postgres() {
    let Some(app) = TestApp::spawn(Backend::Postgres) else { return };
    eventually("the identity cache serves", || metric(&scrape(&app), SERVING) == 1.0);
    app.registered("cy@example.com");
    let token = app.login("cy@example.com", PASSWORD).token();
    for _ in 0..3 {
        assert_eq!(app.refresh(&token).status, 200);
    }
    let flushes = metric(&scrape(&app), FLUSHES);
    let id = claims(&token)["auth_identity_id"].as_str().unwrap().to_string();
    let mut db = app.db();
    // Cut the listener, and change the identity in the same transaction: its notification
    // goes to no one.
    let since = Instant::now();
    let cut = db.text(&format!(
        "WITH cut AS (SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE application_name = 'xclade-auth-listener' AND datname = current_database()), \
         changed AS (UPDATE auth_identity SET security_stamp = 'while-deaf' WHERE id = '{id}' RETURNING id) \
         SELECT (SELECT n FROM cut)::text || '/' || (SELECT count(*) FROM changed)::text AS v"
    ));
    assert_eq!(cut, "1/1", "one listener cut, one identity changed");
    let took = refused_within(&app, &token, since, REVOCATION_BOUND, "a change made while the listener was cut");
    eprintln!("a change made while the listener was cut refused {took:?} after it");
    eventually("the cache was emptied", || metric(&scrape(&app), FLUSHES) > flushes);
    // It listens again (a new connection after 500 ms) and serves from memory again.
    eventually("the identity cache serves again", || metric(&scrape(&app), SERVING) == 1.0);
    let fresh = app.login("cy@example.com", PASSWORD).token();
    let before = metric(&scrape(&app), HITS);
    for _ in 0..3 {
        assert_eq!(app.refresh(&fresh).status, 200);
    }
    assert!(metric(&scrape(&app), HITS) - before >= 2.0, "served from memory again");
    db.execute(&format!("UPDATE auth_identity SET security_stamp = 'heard' WHERE id = '{id}'"));
    refused_within(&app, &fresh, Instant::now(), REVOCATION_BOUND, "a change heard after the reconnection");
}

/// On PostgreSQL a change to the directory (here a key created by the CLI) is heard as it
/// commits (`NOTIFY xclade_directory`), long before the poll, set to a minute here, would see it.
#[test]
fn the_directory_hears_a_change_as_it_commits_on_postgres() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[("TENANT_REFRESH_INTERVAL", "60s")]) else { return };
    eventually("the change listener listens", || metric(&scrape(&app), SERVING) == 1.0);
    let published = || app.request("GET", "/.well-known/jwks.json", None, &[]).json()["keys"].as_array().unwrap().len();
    assert_eq!(published(), 0);
    let out = app.env().cli_ok(&[("TENANT_REFRESH_INTERVAL", "60s")], &["keys", "create", "--tenant", tenant()]);
    let since = Instant::now();
    while published() == 0 {
        assert!(
            since.elapsed() < REVOCATION_BOUND,
            "the key was not served {:?} after `keys create` ({out})",
            since.elapsed()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!("a key created by the CLI was served {:?} after the command ended", since.elapsed());
}
