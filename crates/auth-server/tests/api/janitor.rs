//! The janitor of a running server: expired sessions and delivered events past `EVENT_RETENTION`
//! are deleted; live sessions, live reset tokens and an event with a dead delivery stay.

use auth_domain::secret::sha256_hex;

use crate::helpers::{email, eventually as wait_until, metric, Backend, Db, TestApp};
use crate::on_both_backends;

on_both_backends!(the_janitor_deletes_what_expired_and_keeps_what_is_live);

fn count(db: &mut Db, sql_where: &str) -> usize {
    db.text(&format!("SELECT CAST(COUNT(*) AS TEXT) AS v FROM {sql_where}")).parse().unwrap()
}

fn the_janitor_deletes_what_expired_and_keeps_what_is_live(backend: Backend) {
    // First the default lifetimes, with a webhook nobody answers: its delivery is dead after one
    // attempt, while the file sink delivers.
    let unanswered = [
        ("WEBHOOK_URL", "http://127.0.0.1:1/hooks"),
        ("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("EVENT_MAX_ATTEMPTS", "1"),
    ];
    let Some(app) = TestApp::spawn_with(backend, &unanswered) else { return };
    let ann = email("ann");
    let token = app.registered(&ann);
    let live_session = app.open_session(&token);
    assert_eq!(app.request_reset(&ann).status, 201);
    let mut db = app.db();
    wait_until("a delivered and a dead delivery", || {
        count(&mut db, "event_delivery WHERE delivered_at IS NOT NULL") == 1
            && count(&mut db, "event_delivery WHERE dead_at IS NOT NULL") == 1
    });
    let dead_event = db.text("SELECT id AS v FROM event");

    // Then sessions that live 1 s, events kept 1 s, and a janitor every 200 ms.
    let app = app.restart(&[("SESSION_TTL", "1s"), ("EVENT_RETENTION", "1s"), ("JANITOR_INTERVAL", "200ms")]);
    let short_session = app.open_session(&token);
    assert_eq!(app.request_reset(&ann).status, 201);
    app.wait_for_events("auth.password_reset", 2);
    let mut db = app.db();
    wait_until("the janitor to delete the short session and the delivered event", || {
        db.count("auth_session") == 1 && db.count("event") == 1
    });

    assert_eq!(db.text("SELECT id AS v FROM auth_session"), sha256_hex(&live_session), "the live session stays");
    assert_ne!(sha256_hex(&short_session), sha256_hex(&live_session));
    let refreshed = app.with_session("POST", "/auth/token/refresh", &live_session, Some(""));
    assert_eq!(refreshed.status, 200, "the live session still works: {}", refreshed.text);
    assert_eq!(db.text("SELECT id AS v FROM event"), dead_event, "an event with a dead delivery stays");
    assert_eq!(db.count("event_delivery"), 2, "its delivered and its dead delivery");
    assert_eq!(db.count("password_reset_token"), 1, "the live reset token stays");
    assert_eq!(db.count("auth_identity"), 1);
    let scrape = app.admin().request("GET", "/metrics", None, &[]).text;
    assert!(metric(&scrape, r#"xclade_auth_janitor_deleted_total{kind="sessions"}"#) >= 1.0, "{scrape}");
    assert!(metric(&scrape, r#"xclade_auth_janitor_deleted_total{kind="events"}"#) >= 1.0, "{scrape}");
}
