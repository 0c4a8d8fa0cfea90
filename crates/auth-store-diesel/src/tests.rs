//! Store tests on real databases: a SQLite file in a temp dir and a fresh PostgreSQL database.

use std::cell::Cell;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;

use auth_domain::event::{NewEvent, StoredEvent};
use auth_domain::model::{new_id, NewIdentity, NewResetToken, NewSession, PasswordResetCompletion};
use auth_domain::newtypes::{ActorType, AuthProvider, EntityKey, TenantId};
use auth_domain::ports::{
    Clock, DeliveryStatus, EventOutbox, Housekeeping, IdentityStore, PendingDelivery, PurgeReport, SessionStore,
    SystemClock,
};
use auth_domain::ratelimit::{Decision, RateLimit, RateLimiter};
use auth_domain::secret::{HashedToken, PlainToken, SecretBox};
use auth_domain::token::ResetClaims;
use auth_domain::{AuthError, TokenRejection};

use crate::testing::PgTestDatabase;
use crate::tx::{write_tx, TxError, MAX_TX_ATTEMPTS};
use crate::{DatabaseUrl, DbConnection, DieselStore, PoolSettings};

struct Db {
    store: DieselStore,
    _sqlite_dir: Option<tempfile::TempDir>,
    _pg: Option<PgTestDatabase>,
}

fn settings() -> PoolSettings {
    PoolSettings { max_size: 4, connection_timeout: StdDuration::from_secs(5) }
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("db/auth.sqlite"));
    let store = DieselStore::open(&url, &settings()).unwrap();
    store.run_migrations().unwrap();
    Db { store, _sqlite_dir: Some(dir), _pg: None }
}

fn postgres() -> Option<Db> {
    let pg = PgTestDatabase::create()?;
    let store = DieselStore::open(&DatabaseUrl::parse(&pg.url), &settings()).unwrap();
    store.run_migrations().unwrap();
    Some(Db { store, _sqlite_dir: None, _pg: Some(pg) })
}

/// Runs a test body on SQLite, then on PostgreSQL when it is reachable.
fn on_both(test: impl Fn(&DieselStore)) {
    test(&sqlite().store);
    if let Some(db) = postgres() {
        test(&db.store);
    }
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn emailpass() -> AuthProvider {
    AuthProvider::emailpass()
}

fn key(email: &str) -> EntityKey {
    EntityKey::new(email)
}

/// The hash a session id or a reset token's `jti` is stored by.
fn hashed(token: &str) -> HashedToken {
    PlainToken::new(token).hashed()
}

fn identity(email: &str) -> NewIdentity {
    NewIdentity {
        auth_identity_id: new_id("authid"),
        provider_identity_id: new_id(""),
        provider: emailpass(),
        entity_id: email.into(),
        entity_key: EntityKey::new(email.to_lowercase()),
        password_hash: "$2b$04$hash".into(),
        security_stamp: "stamp".into(),
        app_metadata: Default::default(),
        created_at: Utc::now(),
    }
}

#[test]
fn migrations_are_idempotent() {
    on_both(|store| {
        assert!(store.run_migrations().unwrap().is_empty());
        assert_eq!(store.pending_migrations().unwrap(), 0);
    });
}

#[test]
fn identities_are_unique_per_key_and_found_by_key_and_id() {
    on_both(|store| {
        let first = identity("Ann@Example.com");
        store.create_identity(&tenant(), &first).unwrap();
        let again = store.create_identity(&tenant(), &identity("ann@example.COM"));
        assert!(matches!(again, Err(AuthError::Duplicate(_))), "{again:?}");
        let found = store.find_by_email(&tenant(), &emailpass(), &key("ann@example.com")).unwrap().unwrap();
        assert_eq!(found.entity_id, "Ann@Example.com");
        assert_eq!(found.password_hash, "$2b$04$hash");
        assert!(store
            .find_by_email(&TenantId::new("other-tenant"), &emailpass(), &key("ann@example.com"))
            .unwrap()
            .is_none());
        let by_id = store.find_by_id(&tenant(), &emailpass(), &first.auth_identity_id).unwrap().unwrap();
        assert_eq!(by_id, found);
        assert!(store.find_by_id(&tenant(), &emailpass(), "authid_nope").unwrap().is_none());
    });
}

#[test]
fn the_conditional_rehash_writes_only_over_the_verified_hash() {
    on_both(|store| {
        let n = identity("a@b.c");
        store.create_identity(&tenant(), &n).unwrap();
        let pid = &n.provider_identity_id;
        assert!(store.replace_password_hash_if(&tenant(), pid, "$2b$04$hash", "$2b$05$new", Utc::now()).unwrap());
        assert!(!store.replace_password_hash_if(&tenant(), pid, "$2b$04$hash", "$2b$05$stale", Utc::now()).unwrap());
        let found = store.find_by_email(&tenant(), &emailpass(), &key("a@b.c")).unwrap().unwrap();
        assert_eq!(found.password_hash, "$2b$05$new");
    });
}

fn reset_event(secrets: &SecretBox, now: chrono::DateTime<Utc>) -> NewEvent {
    let claims = ResetClaims {
        entity_id: "a@b.c".into(),
        provider: "emailpass".into(),
        actor_type: "customer".into(),
        purpose: "reset".into(),
        tenant: "default".into(),
        jti: "j".into(),
        iat: now.timestamp(),
        exp: (now + Duration::minutes(15)).timestamp(),
        nbf: None,
    };
    let event = StoredEvent::password_reset(secrets, &claims, "tok", Default::default(), now).unwrap();
    NewEvent { event, sinks: vec!["file".into(), "log".into()] }
}

#[test]
fn reset_tokens_are_replaced_and_consumed_once() {
    on_both(|store| {
        let n = identity("a@b.c");
        store.create_identity(&tenant(), &n).unwrap();
        let secrets = SecretBox::new(b"k", &[]);
        let now = SystemClock.now();
        let token = |hash: &str| NewResetToken {
            id: new_id("authprt"),
            provider_identity_id: n.provider_identity_id.clone(),
            token_hash: hashed(hash),
            expires_at: now + Duration::minutes(15),
            created_at: now,
        };
        store.store_reset_token(&tenant(), &token("h1"), &reset_event(&secrets, now)).unwrap();
        store.store_reset_token(&tenant(), &token("h2"), &reset_event(&secrets, now)).unwrap();
        assert!(!store.reset_token_is_live(&tenant(), &hashed("h1"), &n.provider_identity_id, now).unwrap());
        assert!(store.reset_token_is_live(&tenant(), &hashed("h2"), &n.provider_identity_id, now).unwrap());
        assert!(!store
            .reset_token_is_live(&tenant(), &hashed("h2"), &n.provider_identity_id, now + Duration::minutes(16))
            .unwrap());
        let done = |hash: &str| PasswordResetCompletion {
            token_hash: hashed(hash),
            auth_identity_id: n.auth_identity_id.clone(),
            provider_identity_id: n.provider_identity_id.clone(),
            new_password_hash: "$2b$04$reset".into(),
            new_security_stamp: "stamp2".into(),
            now,
        };
        let changed = NewEvent {
            event: StoredEvent::password_changed("default", "a@b.c", "customer", now),
            sinks: vec!["file".into()],
        };
        let stale = store.complete_password_reset(&tenant(), &done("h1"), &changed);
        assert!(matches!(stale, Err(AuthError::Unauthenticated(TokenRejection::Consumed))), "{stale:?}");
        store.complete_password_reset(&tenant(), &done("h2"), &changed).unwrap();
        let replay = store.complete_password_reset(&tenant(), &done("h2"), &changed);
        assert!(matches!(replay, Err(AuthError::Unauthenticated(TokenRejection::Consumed))));
        let found = store.find_by_email(&tenant(), &emailpass(), &key("a@b.c")).unwrap().unwrap();
        assert_eq!((found.password_hash.as_str(), found.security_stamp.as_str()), ("$2b$04$reset", "stamp2"));
        // Two reset events with two sinks each, and one password_changed with one sink.
        assert_eq!(store.claim_due(now, now, 100).unwrap().len(), 5);
    });
}

#[test]
fn the_outbox_tracks_each_sink_and_erases_settled_secrets() {
    on_both(|store| {
        let n = identity("a@b.c");
        store.create_identity(&tenant(), &n).unwrap();
        let secrets = SecretBox::new(b"k", &[]);
        let now = SystemClock.now();
        let ev = reset_event(&secrets, now);
        let id = ev.event.id.clone();
        let token = NewResetToken {
            id: new_id("authprt"),
            provider_identity_id: n.provider_identity_id.clone(),
            token_hash: hashed("h"),
            expires_at: now + Duration::minutes(15),
            created_at: now,
        };
        store.store_reset_token(&tenant(), &token, &ev).unwrap();
        let lease = now + Duration::minutes(1);
        let due = store.claim_due(now, lease, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].event, ev.event);
        assert!(store.claim_due(now, lease, 10).unwrap().is_empty(), "claimed until the lease ends");
        store.record_delivered(&id, "file", now).unwrap();
        store.record_failure(&id, "log", "receiver down", now + Duration::seconds(30)).unwrap();
        assert!(store.claim_due(now, lease, 10).unwrap().is_empty());
        assert_eq!(store.erase_settled_secrets(now).unwrap(), 0, "log still needs it");
        let later = now + Duration::seconds(31);
        let again = store.claim_due(later, later, 10).unwrap();
        assert_eq!((again.len(), again[0].sink.as_str(), again[0].attempts), (1, "log", 1));
        store.record_dead(&id, "log", "receiver down", later).unwrap();
        assert_eq!(store.erase_settled_secrets(later).unwrap(), 0, "a dead delivery keeps it for a retry");
        let dead = store.list_deliveries(Some(DeliveryStatus::Dead), 10).unwrap();
        assert_eq!((dead.len(), dead[0].attempts, dead[0].last_error.as_deref()), (1, 2, Some("receiver down")));
        assert_eq!(store.list_deliveries(None, 10).unwrap().len(), 2);
        assert_eq!(store.list_deliveries(Some(DeliveryStatus::Delivered), 10).unwrap()[0].sink, "file");
        assert_eq!(store.rearm(&id, later).unwrap(), 1);
        assert_eq!(store.list_deliveries(Some(DeliveryStatus::Pending), 10).unwrap().len(), 1);
        let rearmed = store.claim_due(later, later, 10).unwrap();
        assert_eq!(rearmed.len(), 1);
        store.record_delivered(&id, "log", later).unwrap();
        assert_eq!(store.erase_settled_secrets(later).unwrap(), 1);
        assert!(store.claim_due(now + Duration::days(1), now + Duration::days(1), 10).unwrap().is_empty());
    });
}

#[test]
fn a_serialization_failure_is_retried_then_answers_conflict() {
    let Some(db) = postgres() else { return };
    let mut conn = db.store.conn().unwrap();
    let force_40001 = "DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40001'; END $$";

    let calls = Cell::new(0);
    let result: Result<(), AuthError> = write_tx(&mut conn, |c| {
        calls.set(calls.get() + 1);
        c.batch_execute(force_40001)?;
        Ok(())
    });
    assert!(matches!(result, Err(AuthError::Conflict)), "{result:?}");
    assert_eq!(calls.get(), MAX_TX_ATTEMPTS);

    let calls = Cell::new(0);
    let result = write_tx(&mut conn, |c| {
        calls.set(calls.get() + 1);
        if calls.get() == 1 {
            c.batch_execute(force_40001)?;
        }
        Ok::<_, TxError>(calls.get())
    });
    assert_eq!(result.unwrap(), 2, "a transient failure is retried");
    assert!(matches!(&*conn, DbConnection::Postgresql(_)));
}

#[test]
fn an_unreachable_postgres_reports_the_real_error() {
    let url = DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/none");
    let err = DieselStore::open(&url, &settings()).unwrap_err();
    let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(cause.contains("127.0.0.1") || cause.to_lowercase().contains("refused"), "{cause}");
}

#[test]
fn concurrent_claims_are_disjoint() {
    on_both(|store| {
        let n = identity("a@b.c");
        store.create_identity(&tenant(), &n).unwrap();
        let secrets = SecretBox::new(b"k", &[]);
        let now = SystemClock.now();
        for i in 0..30 {
            let token = NewResetToken {
                id: new_id("authprt"),
                provider_identity_id: n.provider_identity_id.clone(),
                token_hash: hashed(&format!("h{i}")),
                expires_at: now + Duration::minutes(15),
                created_at: now,
            };
            store.store_reset_token(&tenant(), &token, &reset_event(&secrets, now)).unwrap();
        }
        let lease = now + Duration::minutes(1);
        let claims: Vec<Vec<PendingDelivery>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| store.claim_due(now, lease, 10).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut keys: Vec<(String, String)> =
            claims.iter().flatten().map(|d| (d.event.id.clone(), d.sink.clone())).collect();
        let total = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), total, "no delivery was claimed twice");
        assert_eq!(total, 40, "4 claimers x 10 of the 60 due deliveries");
    });
}

/// Writes `event` (created at `at`) for the deliveries to `sinks`.
fn write_event(store: &DieselStore, at: chrono::DateTime<Utc>, sinks: &[&str]) -> String {
    let event = StoredEvent::password_changed("default", "a@b.c", "customer", at);
    let id = event.id.clone();
    let new = NewEvent { event, sinks: sinks.iter().map(|s| s.to_string()).collect() };
    let mut conn = store.conn().unwrap();
    write_tx(&mut conn, |c| Ok(crate::identity::insert_event(c, &new)?)).unwrap();
    id
}

fn session(auth_identity_id: &str, id: &str, expires_at: chrono::DateTime<Utc>) -> NewSession {
    NewSession {
        session_hash: hashed(id),
        auth_identity_id: auth_identity_id.into(),
        actor_type: ActorType::new("customer"),
        auth_provider: emailpass(),
        security_stamp: "stamp".into(),
        created_at: expires_at - Duration::hours(10),
        expires_at,
    }
}

#[test]
fn the_janitor_deletes_what_expired_and_keeps_what_is_live() {
    on_both(|store| {
        let (n, m) = (identity("a@b.c"), identity("b@b.c"));
        store.create_identity(&tenant(), &n).unwrap();
        store.create_identity(&tenant(), &m).unwrap();
        let now = SystemClock.now();
        let retention = Duration::days(7);
        let token = |who: &NewIdentity, hash: &str, expires_at| NewResetToken {
            id: new_id("authprt"),
            provider_identity_id: who.provider_identity_id.clone(),
            token_hash: hashed(hash),
            expires_at,
            created_at: now - Duration::minutes(20),
        };
        let no_event = |at| NewEvent {
            event: StoredEvent::password_changed("default", "a@b.c", "customer", at),
            sinks: vec!["file".into()],
        };
        let recent_reset = no_event(now);
        store.store_reset_token(&tenant(), &token(&n, "gone", now - Duration::seconds(1)), &recent_reset).unwrap();
        store.store_reset_token(&tenant(), &token(&m, "live", now + Duration::minutes(10)), &no_event(now)).unwrap();
        store.record_delivered(&recent_reset.event.id, "file", now).unwrap();
        store.create_session(&tenant(), &session(&n.auth_identity_id, "expired", now), None).unwrap();
        store.create_session(&tenant(), &session(&n.auth_identity_id, "live", now + Duration::hours(1)), None).unwrap();

        let old = now - Duration::days(8);
        let delivered = write_event(store, old, &["file"]);
        let settled = write_event(store, old, &["file", "webhook"]);
        let dead = write_event(store, old, &["file", "webhook"]);
        let failed = write_event(store, old, &["webhook"]);
        let pending = write_event(store, old, &["webhook"]);
        let recent = write_event(store, now - Duration::days(6), &["file"]);
        store.record_delivered(&delivered, "file", old).unwrap();
        store.record_delivered(&settled, "file", old).unwrap();
        store.record_expired(&settled, "webhook", old).unwrap();
        store.record_delivered(&dead, "file", old).unwrap();
        store.record_dead(&dead, "webhook", "HTTP 500", old).unwrap();
        store.record_failure(&failed, "webhook", "HTTP 500", now + Duration::minutes(1)).unwrap();
        store.record_delivered(&recent, "file", now).unwrap();

        let report = store.purge(now, retention).unwrap();
        assert_eq!(report, PurgeReport { reset_tokens: 1, sessions: 1, events: 2, rate_limits: 0 });
        let left: Vec<(String, String)> =
            store.list_deliveries(None, 100).unwrap().into_iter().map(|d| (d.event_id, d.sink)).collect();
        assert_eq!(left.len(), 2 + 1 + 1 + 1 + 2, "dead (2), failed, pending, recent and the two reset events");
        for gone in [&delivered, &settled] {
            assert!(left.iter().all(|(id, _)| id != gone), "{gone} and its deliveries are deleted");
        }
        for kept in [&dead, &failed, &pending, &recent] {
            assert!(left.iter().any(|(id, _)| id == kept), "{kept} is kept");
        }
        assert!(left.contains(&(dead.clone(), "webhook".into())), "a dead delivery is never deleted");
        assert!(store.reset_token_is_live(&tenant(), &hashed("live"), &m.provider_identity_id, now).unwrap());
        assert!(store.find_session(&tenant(), &hashed("live"), now).unwrap().is_some());
        assert!(store.delete_session(&tenant(), &hashed("live")).is_ok_and(|found| found), "the live session is there");
        assert!(!store.delete_session(&tenant(), &hashed("expired")).unwrap(), "the expired session is gone");

        assert!(store.purge(now, retention).unwrap().is_empty(), "a second pass finds nothing");
        let later = store.purge(now + Duration::days(2), retention).unwrap();
        assert_eq!((later.events, later.reset_tokens), (1, 1), "{later:?}: the recent event, the live token");
        let none = store.purge(now + Duration::days(2), Duration::MAX).unwrap();
        assert!(none.is_empty(), "a retention too long to subtract keeps everything");
    });
}

#[test]
fn the_janitor_deletes_in_batches_and_instances_share_the_work() {
    on_both(|store| {
        let n = identity("a@b.c");
        store.create_identity(&tenant(), &n).unwrap();
        let now = SystemClock.now();
        let total = 2 * crate::janitor::BATCH as usize + 37;
        let mut conn = store.conn().unwrap();
        write_tx(&mut conn, |c| {
            for i in 0..total {
                let s = session(&n.auth_identity_id, &format!("s{i}"), now - Duration::seconds(1));
                diesel::insert_into(crate::schema::auth_session::table)
                    .values(crate::rows::SessionRow {
                        id: s.session_hash.as_str(),
                        tenant_id: "default",
                        auth_identity_id: &s.auth_identity_id,
                        actor_type: s.actor_type.as_str(),
                        auth_provider: s.auth_provider.as_str(),
                        security_stamp: &s.security_stamp,
                        created_at: crate::rows::naive(s.created_at),
                        expires_at: crate::rows::naive(s.expires_at),
                    })
                    .execute(c)?;
            }
            Ok(())
        })
        .unwrap();
        drop(conn);
        let reports: Vec<PurgeReport> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2).map(|_| s.spawn(|| store.purge(now, Duration::days(7)).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(reports.iter().map(|r| r.sessions).sum::<usize>(), total, "each expired session deleted once");
        assert!(store.purge(now, Duration::days(7)).unwrap().is_empty());

        // The shared rate limiter (PostgreSQL): idle buckets go, an active one keeps its state.
        let Some(limiter) = store.shared_rate_limiter() else { return };
        let limit = RateLimit { capacity: 1, window: Duration::minutes(1) };
        limiter.take("idle", &limit, now - Duration::hours(2)).unwrap();
        limiter.take("active", &limit, now).unwrap();
        assert_eq!(limiter.prune(now, Duration::hours(1)).unwrap(), 1);
        assert!(matches!(limiter.peek("active", &limit, now).unwrap(), Decision::Limited { .. }));
        assert_eq!(limiter.prune(now, Duration::hours(1)).unwrap(), 0);
        assert_eq!(limiter.prune(now + Duration::hours(1), Duration::hours(1)).unwrap(), 1, "idle for a window");
    });
}
