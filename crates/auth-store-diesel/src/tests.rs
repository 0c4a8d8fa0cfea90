//! Store tests on real databases: a SQLite file in a temp dir and a fresh PostgreSQL database.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{Duration, SubsecRound, Utc};
use diesel::connection::SimpleConnection;
use diesel::{ExpressionMethods, RunQueryDsl};

use auth_domain::event::{NewEvent, StoredEvent};
use auth_domain::keys::{KeyAlgorithm, KeyState, SigningKeyRecord};
use auth_domain::model::{new_id, NewIdentity, NewResetToken, NewSession, PasswordResetCompletion, ResetRequest};
use auth_domain::newtypes::{ActorType, AuthProvider, EntityKey, TenantId};
use auth_domain::ports::{
    Clock, DeliveryStatus, EventOutbox, Housekeeping, IdentityStore, KeyStore, PendingDelivery, PurgeReport,
    ResetRequestStore, SessionStore, SystemClock, TenantChange, TenantStore,
};
use auth_domain::ratelimit::{Decision, RateLimit, RateLimiter};
use auth_domain::secret::{HashedToken, PlainToken, SecretBox};
use auth_domain::tenant::TenantStatus;
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

#[test]
fn reset_requests_are_claimed_once_and_fulfilled_once() {
    on_both(|store| {
        let n = identity("a@b.c");
        store.create_identity(&tenant(), &n).unwrap();
        let secrets = SecretBox::new(b"k", &[]);
        let now = SystemClock.now().trunc_subsecs(6);
        let request = |i: i64| ResetRequest {
            id: new_id("rstreq"),
            tenant: tenant(),
            actor_type: ActorType::new("customer"),
            provider: emailpass(),
            sealed: format!("xa1.sealed{i}"),
            created_at: now - Duration::seconds(30 - i),
        };
        let recorded: Vec<ResetRequest> = (0..20).map(request).collect();
        for r in &recorded {
            store.record_reset_request(r).unwrap();
        }
        // Younger than `created_before`: not taken.
        assert!(store.claim_reset_requests(now, now - Duration::minutes(1), now, 10).unwrap().is_empty());
        // Four workers at once take disjoint requests, oldest first.
        let lease = now + Duration::minutes(1);
        let claims: Vec<Vec<ResetRequest>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..4).map(|_| s.spawn(|| store.claim_reset_requests(now, now, lease, 4).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ids: Vec<String> = claims.iter().flatten().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 16);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 16, "no request was taken twice");
        assert_eq!(claims.iter().flatten().find(|r| r.id == recorded[0].id), Some(&recorded[0]), "round trip");
        // Leased ones wait for the end of the lease; the four left are free.
        assert_eq!(store.claim_reset_requests(now, now, lease, 100).unwrap().len(), 4);
        assert!(store.claim_reset_requests(now, now, lease, 100).unwrap().is_empty());
        assert_eq!(store.claim_reset_requests(lease, lease, lease + Duration::minutes(1), 100).unwrap().len(), 20);
        // Two workers fulfilling one request: one writes, the other finds it gone.
        let token = NewResetToken {
            id: new_id("authprt"),
            provider_identity_id: n.provider_identity_id.clone(),
            token_hash: hashed("h"),
            expires_at: now + Duration::minutes(15),
            created_at: now,
        };
        let event = reset_event(&secrets, now);
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| store.fulfil_reset_request(&tenant(), &recorded[0].id, Some((&token, &event))).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|done| **done).count(), 1, "{results:?}");
        assert_eq!(store.claim_due(now, now, 100).unwrap().len(), 2, "one event, for its two sinks");
        assert!(store.reset_token_is_live(&tenant(), &hashed("h"), &n.provider_identity_id, now).unwrap());
        // Another tenant cannot end it; an unknown identifier's request is only deleted.
        assert!(!store.fulfil_reset_request(&TenantId::new("other"), &recorded[1].id, None).unwrap());
        assert!(store.fulfil_reset_request(&tenant(), &recorded[1].id, None).unwrap());
        let later = lease + Duration::minutes(2);
        assert_eq!(store.claim_reset_requests(later, later, later, 100).unwrap().len(), 18);
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
        assert_eq!(report, PurgeReport { reset_tokens: 1, sessions: 1, events: 2, rate_limits: 0, oauth_states: 0 });
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

fn tenant_settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn the_default_tenant_exists_from_the_start() {
    on_both(|store| {
        assert_eq!(store.tenant_revision().unwrap(), 1, "the default tenant is the directory's first change");
        let default = store.find_tenant(&tenant()).unwrap().expect("the default tenant");
        assert_eq!((default.status, default.revision), (TenantStatus::Active, 1));
        assert!(default.settings.is_empty());
        assert_eq!(default.created_at, default.updated_at);
        let age = Utc::now() - default.created_at;
        assert!(age >= Duration::zero() && age < Duration::minutes(10), "written now, in UTC: {age}");
        assert_eq!(store.tenants_since(0).unwrap(), vec![default]);
        assert!(store.tenants_since(1).unwrap().is_empty());
    });
}

#[test]
fn tenants_are_created_found_and_listed_since_a_revision() {
    on_both(|store| {
        let now = Utc::now();
        let acme_settings =
            tenant_settings(&[("STORE_CORS", "https://acme.example"), ("ACTOR_TYPES", "customer,user")]);
        let acme = store.create_tenant(&TenantId::new("acme"), &acme_settings, now).unwrap();
        assert_eq!(acme.id, TenantId::new("acme"));
        assert_eq!(acme.status, TenantStatus::Active);
        assert_eq!(acme.settings, acme_settings);
        assert_eq!((acme.created_at, acme.updated_at), (now.trunc_subsecs(6), now.trunc_subsecs(6)));
        assert_eq!(acme.revision, 2);
        assert_eq!(store.find_tenant(&TenantId::new("acme")).unwrap().as_ref(), Some(&acme));

        let shop = store.create_tenant(&TenantId::new("shop"), &BTreeMap::new(), now).unwrap();
        assert_eq!(shop.revision, 3);
        assert_eq!(store.tenant_revision().unwrap(), 3);
        assert_eq!(store.tenants_since(1).unwrap(), vec![acme, shop.clone()]);
        assert_eq!(store.tenants_since(2).unwrap(), vec![shop]);
        assert!(store.tenants_since(3).unwrap().is_empty());
        assert_eq!(store.tenants_since(0).unwrap().len(), 3);
        assert!(store.find_tenant(&TenantId::new("nope")).unwrap().is_none());
    });
}

#[test]
fn a_taken_name_is_a_conflict_and_moves_no_revision() {
    on_both(|store| {
        let now = Utc::now();
        let first = store.create_tenant(&TenantId::new("acme"), &tenant_settings(&[("A", "1")]), now).unwrap();
        let before = store.tenant_revision().unwrap();
        for id in ["acme", "default"] {
            let again = store.create_tenant(&TenantId::new(id), &tenant_settings(&[("A", "2")]), now);
            assert!(matches!(again, Err(AuthError::Conflict)), "{id}: {again:?}");
        }
        assert_eq!(store.tenant_revision().unwrap(), before);
        assert_eq!(store.find_tenant(&TenantId::new("acme")).unwrap(), Some(first));
        assert_eq!(store.create_tenant(&TenantId::new("other"), &BTreeMap::new(), now).unwrap().revision, before + 1);
    });
}

#[test]
fn updating_a_missing_tenant_is_not_found_and_moves_no_revision() {
    on_both(|store| {
        let change = TenantChange { status: Some(TenantStatus::Disabled), settings: None };
        let result = store.update_tenant(&TenantId::new("nope"), &change, Utc::now());
        assert!(matches!(&result, Err(AuthError::NotFound(m)) if !m.contains("nope")), "{result:?}");
        assert_eq!(store.tenant_revision().unwrap(), 1);
        assert!(store.find_tenant(&TenantId::new("nope")).unwrap().is_none());
    });
}

#[test]
fn status_and_settings_updates_round_trip() {
    on_both(|store| {
        let id = TenantId::new("acme");
        let created_at = Utc::now() - Duration::minutes(5);
        let original = tenant_settings(&[("STORE_CORS", "https://acme.example")]);
        store.create_tenant(&id, &original, created_at).unwrap();

        let t1 = created_at + Duration::minutes(1);
        let disabled = TenantChange { status: Some(TenantStatus::Disabled), settings: None };
        let after = store.update_tenant(&id, &disabled, t1).unwrap();
        assert_eq!(after.status, TenantStatus::Disabled);
        assert_eq!(after.settings, original, "settings untouched");
        assert_eq!((after.created_at, after.updated_at), (created_at.trunc_subsecs(6), t1.trunc_subsecs(6)));
        assert_eq!(after.revision, 3);
        assert_eq!(store.find_tenant(&id).unwrap().as_ref(), Some(&after));

        let t2 = t1 + Duration::minutes(1);
        let replaced = tenant_settings(&[("ACTOR_TYPES", "customer"), ("EMAIL_FROM", "shop@acme.example")]);
        let change = TenantChange { status: None, settings: Some(replaced.clone()) };
        let after = store.update_tenant(&id, &change, t2).unwrap();
        assert_eq!((after.status, &after.settings), (TenantStatus::Disabled, &replaced), "status untouched");
        assert_eq!((after.updated_at, after.revision), (t2.trunc_subsecs(6), 4));

        let both = TenantChange { status: Some(TenantStatus::Active), settings: Some(BTreeMap::new()) };
        let after = store.update_tenant(&id, &both, t2).unwrap();
        assert_eq!((after.status, after.settings.len(), after.revision), (TenantStatus::Active, 0, 5));
        assert_eq!(store.find_tenant(&id).unwrap().as_ref(), Some(&after));
        assert_eq!(store.tenant_revision().unwrap(), 5);
        assert_eq!(store.tenants_since(2).unwrap(), vec![after], "listed once, at its last revision");
        let default = store.find_tenant(&tenant()).unwrap().unwrap();
        assert_eq!((default.status, default.revision), (TenantStatus::Active, 1), "other tenants untouched");
    });
}

#[test]
fn stored_tenant_settings_that_do_not_parse_are_an_error() {
    on_both(|store| {
        let id = TenantId::new("acme");
        store.create_tenant(&id, &BTreeMap::new(), Utc::now()).unwrap();
        let mut conn = store.conn().unwrap();
        diesel::update(crate::schema::tenant::table)
            .set(crate::schema::tenant::settings.eq("{\"A\": 1}"))
            .execute(&mut *conn)
            .unwrap();
        drop(conn);
        for result in [store.find_tenant(&id).map(|_| ()), store.tenants_since(0).map(|_| ())] {
            assert!(matches!(result, Err(AuthError::Unexpected(_))), "{result:?}");
        }
    });
}

#[test]
fn concurrent_tenant_creates_get_distinct_revisions() {
    on_both(|store| {
        let now = Utc::now();
        std::thread::scope(|s| {
            for thread in 0..2 {
                s.spawn(move || {
                    for i in 0..20 {
                        let id = TenantId::new(format!("t{thread}-{i}"));
                        store.create_tenant(&id, &tenant_settings(&[("N", &i.to_string())]), now).unwrap();
                    }
                });
            }
        });
        assert_eq!(store.tenant_revision().unwrap(), 1 + 40);
        let listed = store.tenants_since(1).unwrap();
        assert_eq!(listed.len(), 40);
        let revisions: Vec<i64> = listed.iter().map(|t| t.revision).collect();
        assert_eq!(revisions, (2..=41).collect::<Vec<i64>>(), "distinct, in order, without gaps");
        let mut ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 40);
    });
}

/// A key of `tenant` (fake key material), created at `created_at` (whole microseconds, as stored).
fn signing_key(tenant: &str, kid: &str, state: KeyState, created_at: chrono::DateTime<Utc>) -> SigningKeyRecord {
    let created_at = created_at.trunc_subsecs(6);
    SigningKeyRecord {
        tenant: TenantId::new(tenant),
        kid: kid.into(),
        algorithm: if kid.len() % 2 == 0 { KeyAlgorithm::EdDSA } else { KeyAlgorithm::ES256 },
        state,
        private_sealed: format!("sealed-private-half-of-{kid}"),
        public_jwk: format!("{{\"kid\":\"{kid}\",\"use\":\"sig\"}}"),
        created_at,
        state_since: created_at,
    }
}

/// The `(kid, state)` of the tenant's keys, in creation order.
fn key_states(store: &DieselStore, tenant: &str) -> Vec<(String, KeyState)> {
    store.tenant_keys(&TenantId::new(tenant)).unwrap().into_iter().map(|k| (k.kid, k.state)).collect()
}

fn states(pairs: &[(&str, KeyState)]) -> Vec<(String, KeyState)> {
    pairs.iter().map(|(kid, state)| (kid.to_string(), *state)).collect()
}

#[test]
fn keys_round_trip_in_creation_order_and_each_insert_stamps_the_tenant() {
    on_both(|store| {
        let t0 = Utc::now() - Duration::hours(1);
        assert!(store.tenant_keys(&tenant()).unwrap().is_empty());
        let newer = signing_key("default", "k-newer", KeyState::Next, t0 + Duration::minutes(1));
        let older = signing_key("default", "k-old", KeyState::Active, t0);
        store.insert_key(&newer).unwrap();
        assert_eq!(store.tenant_revision().unwrap(), 2);
        store.insert_key(&older).unwrap();
        assert_eq!(store.tenant_revision().unwrap(), 3);
        assert_eq!(store.tenant_keys(&tenant()).unwrap(), vec![older, newer], "every field, oldest first");
        let stamped = store.tenants_since(1).unwrap();
        assert_eq!(stamped.len(), 1);
        assert_eq!((&stamped[0].id, stamped[0].revision), (&tenant(), 3), "the tenant carries the key's revision");
        assert!(stamped[0].updated_at >= stamped[0].created_at);
    });
}

#[test]
fn a_key_write_on_a_missing_tenant_is_not_found_and_moves_no_revision() {
    on_both(|store| {
        let nope = TenantId::new("nope");
        let now = Utc::now();
        let results = [
            store.insert_key(&signing_key("nope", "k1", KeyState::Next, now)),
            store.activate_key(&nope, "k1", now),
            store.retire_key(&nope, "k1", now),
            store.delete_key(&nope, "k1").map(|_| ()),
        ];
        for result in results {
            assert!(matches!(&result, Err(AuthError::NotFound(m)) if !m.contains("nope")), "{result:?}");
        }
        assert_eq!(store.tenant_revision().unwrap(), 1);
        assert!(store.tenant_keys(&nope).unwrap().is_empty());
        assert!(store.find_tenant(&nope).unwrap().is_none());
    });
}

#[test]
fn a_second_active_key_is_a_conflict_and_changes_nothing() {
    on_both(|store| {
        let now = Utc::now();
        store.insert_key(&signing_key("default", "k1", KeyState::Active, now)).unwrap();
        let before = store.tenant_revision().unwrap();
        let second = store.insert_key(&signing_key("default", "k2", KeyState::Active, now));
        assert!(matches!(second, Err(AuthError::Conflict)), "{second:?}");
        assert_eq!(store.tenant_revision().unwrap(), before);
        assert_eq!(store.find_tenant(&tenant()).unwrap().unwrap().revision, before);
        assert_eq!(key_states(store, "default"), states(&[("k1", KeyState::Active)]));
        store.insert_key(&signing_key("default", "k3", KeyState::Next, now)).unwrap();
        store.insert_key(&signing_key("default", "k4", KeyState::Retired, now)).unwrap();
        assert_eq!(store.tenant_revision().unwrap(), before + 2);
    });
}

#[test]
fn activating_a_key_retires_the_active_one_and_stamps_the_tenant() {
    on_both(|store| {
        let t0 = Utc::now() - Duration::hours(1);
        store.insert_key(&signing_key("default", "k1", KeyState::Active, t0)).unwrap();
        store.insert_key(&signing_key("default", "k2", KeyState::Next, t0 + Duration::seconds(1))).unwrap();
        let before = store.tenant_revision().unwrap();

        let t1 = (t0 + Duration::minutes(30)).trunc_subsecs(6);
        store.activate_key(&tenant(), "k2", t1).unwrap();
        let keys = store.tenant_keys(&tenant()).unwrap();
        let moved: Vec<_> = keys.iter().map(|k| (k.kid.as_str(), k.state, k.state_since)).collect();
        assert_eq!(moved, vec![("k1", KeyState::Retired, t1), ("k2", KeyState::Active, t1)]);
        assert_eq!(store.tenant_revision().unwrap(), before + 1);
        let stamped = store.tenants_since(before).unwrap();
        assert_eq!(stamped.len(), 1, "{stamped:?}");
        assert_eq!((&stamped[0].id, stamped[0].revision, stamped[0].updated_at), (&tenant(), before + 1, t1));

        let t2 = t1 + Duration::minutes(1);
        store.activate_key(&tenant(), "k2", t2).unwrap();
        assert_eq!(store.tenant_keys(&tenant()).unwrap(), keys, "activating the active key changes no key");

        let before = store.tenant_revision().unwrap();
        for kid in ["k1", "k-missing"] {
            let result = store.activate_key(&tenant(), kid, t2);
            assert!(matches!(&result, Err(AuthError::NotFound(_))), "{kid}: {result:?}");
        }
        assert_eq!(store.tenant_revision().unwrap(), before);
        assert_eq!(store.tenant_keys(&tenant()).unwrap(), keys);

        store.insert_key(&signing_key("default", "k3", KeyState::Next, t2)).unwrap();
        store.activate_key(&tenant(), "k3", t2).unwrap();
        let expected = [("k1", KeyState::Retired), ("k2", KeyState::Retired), ("k3", KeyState::Active)];
        assert_eq!(key_states(store, "default"), states(&expected));
        let k1 = store.tenant_keys(&tenant()).unwrap().remove(0);
        assert_eq!(k1.state_since, t1, "a retired key keeps the time it retired");
    });
}

#[test]
fn a_next_key_activates_when_the_tenant_has_no_active_key() {
    on_both(|store| {
        let now = Utc::now().trunc_subsecs(6);
        store.insert_key(&signing_key("default", "k1", KeyState::Next, now)).unwrap();
        store.activate_key(&tenant(), "k1", now).unwrap();
        assert_eq!(key_states(store, "default"), states(&[("k1", KeyState::Active)]));
    });
}

#[test]
fn retiring_a_key_keeps_it_for_verification() {
    on_both(|store| {
        let t0 = (Utc::now() - Duration::hours(1)).trunc_subsecs(6);
        store.insert_key(&signing_key("default", "k1", KeyState::Active, t0)).unwrap();
        store.insert_key(&signing_key("default", "k2", KeyState::Next, t0 + Duration::seconds(1))).unwrap();
        let before = store.tenant_revision().unwrap();
        let t1 = t0 + Duration::minutes(5);
        store.retire_key(&tenant(), "k1", t1).unwrap();
        store.retire_key(&tenant(), "k2", t1).unwrap();
        assert_eq!(store.tenant_revision().unwrap(), before + 2);
        let keys = store.tenant_keys(&tenant()).unwrap();
        assert!(keys.iter().all(|k| (k.state, k.state_since) == (KeyState::Retired, t1)), "{keys:?}");

        store.retire_key(&tenant(), "k1", t1 + Duration::minutes(1)).unwrap();
        assert_eq!(store.tenant_keys(&tenant()).unwrap(), keys, "retired already: it keeps the time it retired");
        let before = store.tenant_revision().unwrap();
        let missing = store.retire_key(&tenant(), "k-missing", t1);
        assert!(matches!(missing, Err(AuthError::NotFound(_))), "{missing:?}");
        assert_eq!(store.tenant_revision().unwrap(), before);
    });
}

#[test]
fn deleting_a_key_answers_whether_there_was_one() {
    on_both(|store| {
        let now = Utc::now();
        store.insert_key(&signing_key("default", "k1", KeyState::Retired, now)).unwrap();
        store.insert_key(&signing_key("default", "k2", KeyState::Next, now)).unwrap();
        let before = store.tenant_revision().unwrap();
        assert!(store.delete_key(&tenant(), "k1").unwrap());
        assert_eq!(store.tenant_revision().unwrap(), before + 1);
        assert_eq!(store.tenants_since(before).unwrap().len(), 1, "the tenant is stamped");
        assert!(!store.delete_key(&tenant(), "k1").unwrap());
        assert!(!store.delete_key(&tenant(), "k-missing").unwrap());
        assert_eq!(store.tenant_revision().unwrap(), before + 1, "nothing deleted, nothing stamped");
        assert_eq!(key_states(store, "default"), states(&[("k2", KeyState::Next)]));
    });
}

#[test]
fn the_keys_of_one_tenant_are_not_another_tenants() {
    on_both(|store| {
        let b = TenantId::new("b");
        let now = Utc::now();
        store.create_tenant(&b, &BTreeMap::new(), now).unwrap();
        store.insert_key(&signing_key("default", "a-active", KeyState::Active, now)).unwrap();
        store.insert_key(&signing_key("default", "a-next", KeyState::Next, now + Duration::seconds(1))).unwrap();
        store.insert_key(&signing_key("b", "b-active", KeyState::Active, now)).unwrap();
        assert_eq!(key_states(store, "default"), states(&[("a-active", KeyState::Active), ("a-next", KeyState::Next)]));
        assert_eq!(key_states(store, "b"), states(&[("b-active", KeyState::Active)]));

        let before = store.tenant_revision().unwrap();
        for result in [store.activate_key(&b, "a-next", now), store.retire_key(&b, "a-active", now)] {
            assert!(matches!(result, Err(AuthError::NotFound(_))), "{result:?}");
        }
        assert!(!store.delete_key(&b, "a-next").unwrap());
        assert_eq!(store.tenant_revision().unwrap(), before, "nothing changed");

        store.activate_key(&tenant(), "a-next", now).unwrap();
        assert_eq!(key_states(store, "b"), states(&[("b-active", KeyState::Active)]), "b's active key stays");
        let stamped: Vec<TenantId> = store.tenants_since(before).unwrap().into_iter().map(|t| t.id).collect();
        assert_eq!(stamped, vec![tenant()], "only the tenant written is stamped");
    });
}

#[test]
fn concurrent_activations_leave_exactly_one_active_key() {
    on_both(|store| {
        let t0 = Utc::now() - Duration::hours(1);
        store.insert_key(&signing_key("default", "k-first", KeyState::Active, t0)).unwrap();
        let per_thread = 10;
        for thread in 0..2 {
            for i in 0..per_thread {
                let kid = format!("k{thread}-{i}");
                store.insert_key(&signing_key("default", &kid, KeyState::Next, t0 + Duration::seconds(1))).unwrap();
            }
        }
        let before = store.tenant_revision().unwrap();
        std::thread::scope(|s| {
            for thread in 0..2 {
                s.spawn(move || {
                    for i in 0..per_thread {
                        store.activate_key(&tenant(), &format!("k{thread}-{i}"), Utc::now()).unwrap();
                    }
                });
            }
        });
        let keys = key_states(store, "default");
        let active: Vec<&(String, KeyState)> = keys.iter().filter(|(_, s)| *s == KeyState::Active).collect();
        assert_eq!(active.len(), 1, "{keys:?}");
        assert!(active[0].0.ends_with(&format!("-{}", per_thread - 1)), "the last activation of a thread wins");
        assert_eq!(keys.iter().filter(|(_, s)| *s == KeyState::Retired).count(), 2 * per_thread);
        assert_eq!(store.tenant_revision().unwrap(), before + 2 * per_thread as i64, "one revision per activation");
    });
}

#[test]
fn a_stored_key_that_does_not_parse_is_an_error() {
    use crate::schema::signing_key;
    on_both(|store| {
        let now = Utc::now();
        store.insert_key(&signing_key("default", "k1", KeyState::Next, now)).unwrap();
        // One connection, held to the end: on SQLite the pragma is the connection's.
        let mut conn = store.conn().unwrap();
        let bypass_checks = match &*conn {
            DbConnection::Postgresql(_) => {
                "ALTER TABLE signing_key DROP CONSTRAINT signing_key_algorithm_check;
                 ALTER TABLE signing_key DROP CONSTRAINT signing_key_state_check;"
            }
            DbConnection::Sqlite(_) => "PRAGMA ignore_check_constraints = ON;",
        };
        conn.batch_execute(bypass_checks).unwrap();
        diesel::update(signing_key::table).set(signing_key::state.eq("pending")).execute(&mut *conn).unwrap();
        for result in [store.tenant_keys(&tenant()).map(|_| ()), store.activate_key(&tenant(), "k1", now)] {
            assert!(matches!(result, Err(AuthError::Unexpected(_))), "{result:?}");
        }
        diesel::update(signing_key::table)
            .set((signing_key::state.eq("next"), signing_key::algorithm.eq("RS256")))
            .execute(&mut *conn)
            .unwrap();
        let result = store.tenant_keys(&tenant());
        assert!(matches!(result, Err(AuthError::Unexpected(_))), "{result:?}");
    });
}
