//! Housekeeping: one pass of the janitor, which deletes what nobody needs any more (expired
//! reset tokens and sessions, settled events past their retention, idle rate-limit buckets).
//! The loop that repeats it lives in `auth-server`; this is the logic, testable without a
//! database.

use std::sync::Arc;

use chrono::Duration;

use crate::ports::{Clock, Housekeeping, PurgeReport};
use crate::ratelimit::RateLimiter;
use crate::AuthError;

#[derive(Debug, Clone)]
pub struct JanitorSettings {
    /// How long delivered and expired events are kept (`EVENT_RETENTION`).
    pub event_retention: Duration,
    /// How long a rate-limit bucket stays untouched before it is forgotten: at least the longest
    /// window of the limits in use (`Limits::longest_window`), so it is full again by then.
    pub rate_limit_idle: Duration,
}

pub struct Janitor<H, C> {
    store: H,
    limiter: Arc<dyn RateLimiter>,
    clock: C,
    settings: JanitorSettings,
}

impl<H, C> std::fmt::Debug for Janitor<H, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Janitor").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl<H: Housekeeping, C: Clock> Janitor<H, C> {
    /// `limiter` must be the one the service uses (its buckets are the ones pruned).
    pub fn new(store: H, limiter: Arc<dyn RateLimiter>, clock: C, settings: JanitorSettings) -> Self {
        Janitor { store, limiter, clock, settings }
    }

    pub fn settings(&self) -> &JanitorSettings {
        &self.settings
    }

    /// Purges the store, then prunes the rate limiter. Both run even when the first fails; the
    /// first error is returned (what was deleted before it stays deleted).
    pub fn run_pass(&self) -> Result<PurgeReport, AuthError> {
        let now = self.clock.now();
        let purged = self.store.purge(now, self.settings.event_retention);
        let pruned = self.limiter.prune(now, self.settings.rate_limit_idle);
        let mut report = purged?;
        report.rate_limits = pruned?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::event::{NewEvent, StoredEvent};
    use crate::memory::MemoryStore;
    use crate::model::NewSession;
    use crate::newtypes::{ActorType, AuthProvider, TenantId};
    use crate::ports::{EventOutbox, SessionStore};
    use crate::ratelimit::{Decision, InMemoryRateLimiter, RateLimit};
    use crate::secret::{HashedToken, PlainToken};
    use crate::service::Limits;

    #[derive(Debug)]
    struct TestClock(Mutex<DateTime<Utc>>);

    impl Clock for TestClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    impl TestClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    const RETENTION: Duration = Duration::days(7);

    /// The hash of the session id `id`.
    fn hashed(id: &str) -> HashedToken {
        PlainToken::new(id).hashed()
    }

    fn session(id: &str, expires_at: DateTime<Utc>) -> NewSession {
        NewSession {
            session_hash: hashed(id),
            auth_identity_id: "authid_1".into(),
            actor_type: ActorType::new("customer"),
            auth_provider: AuthProvider::emailpass(),
            security_stamp: "stamp".into(),
            created_at: expires_at - Duration::hours(10),
            expires_at,
        }
    }

    fn token(store: &MemoryStore, pid: &str, expires_at: DateTime<Utc>) {
        store.lock().reset_tokens.insert(pid.into(), (hashed(&format!("jti-{pid}")), expires_at));
    }

    /// A `password_changed` event created at `at`, to be delivered to `sinks`.
    fn event(store: &MemoryStore, at: DateTime<Utc>, sinks: &[&str]) -> String {
        let event = StoredEvent::password_changed("default", "a@b.c", "customer", at);
        let id = event.id.clone();
        store.lock().write_event(&NewEvent { event, sinks: sinks.iter().map(|s| s.to_string()).collect() });
        id
    }

    fn event_ids(store: &MemoryStore) -> Vec<String> {
        store.lock().events.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn a_pass_deletes_what_expired_and_keeps_what_is_live() {
        let t0 = Utc::now();
        let clock = Arc::new(TestClock(Mutex::new(t0)));
        let store = Arc::new(MemoryStore::default());
        let limiter = Arc::new(InMemoryRateLimiter::default());
        let limits = Limits::default();
        let janitor = Janitor::new(
            store.clone(),
            limiter.clone(),
            clock.clone(),
            JanitorSettings { event_retention: RETENTION, rate_limit_idle: limits.longest_window() },
        );

        // Old events (created 8 days ago): delivered; delivered + expired; one dead delivery; one
        // failed; one pending; and a delivered event created just now.
        let old = t0 - Duration::days(8);
        let delivered = event(&store, old, &["file"]);
        let settled = event(&store, old, &["file", "webhook"]);
        let dead = event(&store, old, &["file", "webhook"]);
        let failed = event(&store, old, &["webhook"]);
        let pending = event(&store, old, &["webhook"]);
        let recent = event(&store, t0, &["file"]);
        store.record_delivered(&delivered, "file", old).unwrap();
        store.record_delivered(&settled, "file", old).unwrap();
        store.record_expired(&settled, "webhook", old).unwrap();
        store.record_delivered(&dead, "file", old).unwrap();
        store.record_dead(&dead, "webhook", "HTTP 500", old).unwrap();
        store.record_failure(&failed, "webhook", "HTTP 500", t0 + Duration::minutes(1)).unwrap();
        store.record_delivered(&recent, "file", t0).unwrap();
        token(&store, "expired", t0 - Duration::seconds(1));
        token(&store, "live", t0 + Duration::minutes(10));
        let tenant = TenantId::default_tenant();
        store.create_session(&tenant, &session("expired", t0), None).unwrap();
        store.create_session(&tenant, &session("live", t0 + Duration::hours(1)), None).unwrap();
        // An idle bucket (taken from two hours ago) and an active one.
        let limit = RateLimit { capacity: 1, window: Duration::minutes(1) };
        limiter.take("idle", &limit, t0 - Duration::hours(2)).unwrap();
        limiter.take("active", &limit, t0).unwrap();

        let report = janitor.run_pass().unwrap();
        assert_eq!(report, PurgeReport { reset_tokens: 1, sessions: 1, events: 2, rate_limits: 1, oauth_states: 0 });
        let ids = event_ids(&store);
        assert!(!ids.contains(&delivered) && !ids.contains(&settled), "settled and old: deleted");
        for kept in [&dead, &failed, &pending, &recent] {
            assert!(ids.contains(kept), "{kept} is kept");
        }
        let state = store.lock();
        assert_eq!(state.deliveries.len(), 5, "those of the dead (2), failed, pending and recent events");
        assert!(state.deliveries.iter().all(|((e, _), _)| ids.contains(e)), "no delivery without its event");
        assert!(state.reset_tokens.contains_key("live") && !state.reset_tokens.contains_key("expired"));
        assert!(state.sessions.contains_key(&hashed("live")) && !state.sessions.contains_key(&hashed("expired")));
        drop(state);
        assert!(
            matches!(limiter.peek("active", &limit, t0).unwrap(), Decision::Limited { .. }),
            "an active bucket keeps its state"
        );

        let again = janitor.run_pass().unwrap();
        assert!(again.is_empty(), "nothing left to delete: {again:?}");

        // A week later the recent event is old too; the dead, failed and pending ones stay.
        clock.advance(RETENTION + Duration::seconds(1));
        let later = janitor.run_pass().unwrap();
        assert_eq!((later.events, later.sessions, later.reset_tokens), (1, 1, 1), "{later:?}");
        let ids = event_ids(&store);
        assert_eq!(ids.len(), 3);
        assert!([&dead, &failed, &pending].iter().all(|id| ids.contains(id)));
    }

    #[test]
    fn buckets_are_forgotten_only_once_idle_for_the_longest_window() {
        let limiter = InMemoryRateLimiter::default();
        let t0 = Utc::now();
        let limit = RateLimit { capacity: 2, window: Duration::minutes(10) };
        limiter.take("k", &limit, t0).unwrap();
        limiter.take("k", &limit, t0).unwrap();
        let idle = Duration::minutes(10);
        assert_eq!(limiter.prune(t0 + Duration::minutes(9), idle).unwrap(), 0);
        assert!(matches!(limiter.peek("k", &limit, t0 + Duration::minutes(1)).unwrap(), Decision::Limited { .. }));
        assert_eq!(limiter.prune(t0 + idle, idle).unwrap(), 1, "full again after a whole window");
        assert_eq!(limiter.prune(t0 + idle, idle).unwrap(), 0);
        assert_eq!(crate::ratelimit::Unlimited.prune(t0, idle).unwrap(), 0, "the default prunes nothing");
        let limits = Limits::default();
        assert_eq!(limits.longest_window(), Duration::hours(1));
    }
}
