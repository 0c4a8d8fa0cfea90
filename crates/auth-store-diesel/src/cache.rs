//! The read-through cache of identities: what every authenticated request reads
//! (`IdentityStore::find_by_id`: the identity, its security stamp, its actor ids, its metadata),
//! kept in memory so that a refresh or a guarded route does no database round trip while the
//! identity has not changed. docs/architecture.md ("The identity cache") states its rules and
//! bounds; in short:
//!
//! - **This process's writes** forget the identity right after their commit (`forget`, called by
//!   every store method that updates an identity), so an instance never serves what it changed
//!   itself, on either backend.
//! - **Other processes' writes** (another instance, the CLI): on PostgreSQL a trigger on
//!   `auth_identity` and `provider_identity` (migration 000011) sends `NOTIFY xclade_identity`
//!   with `tenant:identity` when the transaction commits; the listener (`listen.rs`) forgets it.
//!   On SQLite the server is the only process that changes identities (the CLI only creates
//!   them, and a missing identity is never cached).
//! - **A read that raced a change never stores what it read.** Each identity falls in one of
//!   `STRIPES` stripes whose epoch `forget` bumps; a miss notes the epoch before it queries and
//!   stores its row only if the epoch is still the same, checked and stored under the stripe's
//!   lock, which `forget` also takes.
//! - **When changes cannot be heard, nothing is served from memory.** The cache starts off on
//!   PostgreSQL; the listener turns it on once `LISTEN` runs, and off again (emptied) when its
//!   connection fails, until it listens again.
//! - **Bounded**: at most `capacity` identities (quick_cache's S3-FIFO eviction), and no entry
//!   older than `ttl`, a safety net for writes made outside the service (SQL by hand on SQLite).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use auth_domain::model::IdentityRecord;
use auth_domain::newtypes::{AuthProvider, TenantId};
use auth_domain::AuthError;

/// How many epochs guard the identities (a power of two). A `forget` makes every miss of its
/// stripe that is in flight not store its row: more stripes, fewer such misses.
const STRIPES: usize = 256;

/// The cache's settings.
#[derive(Debug, Clone, Copy)]
pub struct IdentityCacheSettings {
    /// At most this many identities (one per tenant, identity and provider).
    pub capacity: usize,
    /// An entry older than this is read again.
    pub ttl: Duration,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    identity: String,
    provider: String,
}

impl Key {
    fn new(tenant: &TenantId, provider: &AuthProvider, identity: &str) -> Key {
        Key { tenant: tenant.as_str().into(), identity: identity.into(), provider: provider.as_str().into() }
    }
}

#[derive(Clone)]
struct Entry {
    record: IdentityRecord,
    stored: Instant,
}

/// What the cache has done since the start (the `/metrics` counters and gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityCacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Identities forgotten because they changed (this process's writes and notifications).
    pub invalidations: u64,
    /// Times the whole cache was emptied (the listener's connection failed or came back).
    pub flushes: u64,
    pub entries: u64,
    /// Whether lookups are served from memory (on PostgreSQL: while the listener listens).
    pub serving: bool,
}

/// The identity cache; see the module's notes.
pub struct IdentityCache {
    entries: quick_cache::sync::Cache<Key, Entry>,
    /// The epoch of each stripe; its lock orders a miss's store against `forget` and `flush`.
    epochs: Box<[Mutex<u64>]>,
    /// The providers of the cached identities (a handful), for `forget` by identity.
    providers: RwLock<Vec<String>>,
    hasher: std::collections::hash_map::RandomState,
    ttl: Duration,
    serving: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

impl std::fmt::Debug for IdentityCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityCache").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<u64>) -> MutexGuard<'_, u64> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl IdentityCache {
    /// A cache that serves from the start (`serving`: SQLite, where no other process changes
    /// identities) or once `resume` is called (PostgreSQL, once the listener listens).
    pub fn new(settings: IdentityCacheSettings, serving: bool) -> IdentityCache {
        IdentityCache {
            entries: quick_cache::sync::Cache::new(settings.capacity.max(1)),
            epochs: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
            providers: RwLock::new(Vec::new()),
            hasher: std::collections::hash_map::RandomState::new(),
            ttl: settings.ttl,
            serving: AtomicBool::new(serving),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    fn stripe(&self, tenant: &str, identity: &str) -> &Mutex<u64> {
        &self.epochs[self.hasher.hash_one((tenant, identity)) as usize % STRIPES]
    }

    /// The identity if it is in memory (and the cache serves), counted as a hit; nothing is
    /// counted otherwise (the caller goes on to `get_or_load`, which counts the miss).
    pub fn peek(&self, tenant: &TenantId, provider: &AuthProvider, identity: &str) -> Option<IdentityRecord> {
        if !self.serving.load(Ordering::Acquire) {
            return None;
        }
        self.hit(&Key::new(tenant, provider, identity))
    }

    /// The entry of `key` if it is younger than the ttl, counted as a hit.
    fn hit(&self, key: &Key) -> Option<IdentityRecord> {
        let entry = self.entries.get(key).filter(|e| e.stored.elapsed() < self.ttl)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(entry.record)
    }

    /// The identity from memory, or from `load` (then kept, unless it changed meanwhile).
    pub fn get_or_load(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        identity: &str,
        load: impl FnOnce() -> Result<Option<IdentityRecord>, AuthError>,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        if !self.serving.load(Ordering::Acquire) {
            return load();
        }
        let key = Key::new(tenant, provider, identity);
        if let Some(record) = self.hit(&key) {
            return Ok(Some(record));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let stripe = self.stripe(&key.tenant, &key.identity);
        let epoch = *lock(stripe);
        let found = load()?;
        if let Some(record) = &found {
            let current = lock(stripe);
            if *current == epoch && self.serving.load(Ordering::Acquire) {
                self.note_provider(&key.provider);
                self.entries.insert(key, Entry { record: record.clone(), stored: Instant::now() });
            }
        }
        Ok(found)
    }

    fn note_provider(&self, provider: &str) {
        let known =
            self.providers.read().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|p| p == provider);
        if !known {
            let mut providers = self.providers.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !providers.iter().any(|p| p == provider) {
                providers.push(provider.to_string());
            }
        }
    }

    /// Forgets the identity `identity` of `tenant` (every provider), and makes every miss of it
    /// in flight not store what it read. Called after a write commits.
    pub fn forget(&self, tenant: &str, identity: &str) {
        let stripe = self.stripe(tenant, identity);
        let mut epoch = lock(stripe);
        *epoch = epoch.wrapping_add(1);
        let providers = self.providers.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for provider in providers {
            self.entries.remove(&Key { tenant: tenant.into(), identity: identity.into(), provider });
        }
        drop(epoch);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// Empties the cache and stops serving from memory (the listener lost its connection): every
    /// lookup reads the database until `resume`.
    pub fn suspend(&self) {
        self.serving.store(false, Ordering::Release);
        self.flush();
    }

    /// Empties the cache (what was missed while not listening is gone with it) and serves from
    /// memory again.
    pub fn resume(&self) {
        self.flush();
        self.serving.store(true, Ordering::Release);
    }

    /// Empties the cache, and makes every miss in flight not store what it read: every stripe
    /// is locked while its epoch moves.
    fn flush(&self) {
        let mut held: Vec<MutexGuard<'_, u64>> = self.epochs.iter().map(lock).collect();
        for epoch in &mut held {
            **epoch = epoch.wrapping_add(1);
        }
        self.entries.clear();
        drop(held);
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> IdentityCacheStats {
        IdentityCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            entries: self.entries.len() as u64,
            serving: self.serving.load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn record(id: &str, stamp: &str) -> IdentityRecord {
        IdentityRecord {
            auth_identity_id: id.into(),
            provider_identity_id: format!("p-{id}"),
            provider: AuthProvider::new("emailpass"),
            entity_id: "a@example.com".into(),
            password_hash: "$2b$10$hash".into(),
            app_metadata: Map::new(),
            user_metadata: Map::new(),
            security_stamp: stamp.into(),
        }
    }

    fn cache() -> IdentityCache {
        IdentityCache::new(IdentityCacheSettings { capacity: 100, ttl: Duration::from_secs(60) }, true)
    }

    fn get(c: &IdentityCache, id: &str, stamp: &str) -> String {
        let (t, p) = (TenantId::new("default"), AuthProvider::new("emailpass"));
        c.get_or_load(&t, &p, id, || Ok(Some(record(id, stamp)))).unwrap().unwrap().security_stamp
    }

    #[test]
    fn a_hit_is_served_from_memory_until_forgotten() {
        let c = cache();
        assert_eq!(get(&c, "a", "s1"), "s1");
        assert_eq!(get(&c, "a", "s2"), "s1", "served from memory");
        c.forget("default", "a");
        assert_eq!(get(&c, "a", "s2"), "s2", "read again after forget");
        let stats = c.stats();
        assert_eq!((stats.hits, stats.misses, stats.invalidations, stats.entries), (1, 2, 1, 1));
    }

    #[test]
    fn a_miss_that_raced_a_change_does_not_store_its_row() {
        let c = cache();
        let (t, p) = (TenantId::new("default"), AuthProvider::new("emailpass"));
        c.note_provider("emailpass");
        // The row is read (old stamp), then the change commits and is forgotten, then the read
        // would store: it must not.
        let read = c.get_or_load(&t, &p, "a", || {
            c.forget("default", "a");
            Ok(Some(record("a", "old")))
        });
        assert_eq!(read.unwrap().unwrap().security_stamp, "old", "the read answers what it read");
        assert_eq!(get(&c, "a", "new"), "new", "but did not keep it");
    }

    #[test]
    fn nothing_is_served_or_kept_while_suspended_and_a_flush_stops_misses_in_flight() {
        let c = cache();
        assert_eq!(get(&c, "a", "s1"), "s1");
        c.suspend();
        assert_eq!(get(&c, "a", "s2"), "s2");
        assert_eq!(get(&c, "a", "s3"), "s3", "not kept while suspended");
        c.resume();
        let (t, p) = (TenantId::new("default"), AuthProvider::new("emailpass"));
        let read = c.get_or_load(&t, &p, "a", || {
            c.resume();
            Ok(Some(record("a", "before the flush")))
        });
        assert!(read.unwrap().is_some());
        assert_eq!(get(&c, "a", "s4"), "s4", "a read in flight across a flush is not kept");
        assert_eq!(get(&c, "a", "s5"), "s4");
    }

    #[test]
    fn missing_identities_and_errors_are_not_kept_and_entries_expire() {
        let c = IdentityCache::new(IdentityCacheSettings { capacity: 100, ttl: Duration::from_millis(1) }, true);
        let (t, p) = (TenantId::new("default"), AuthProvider::new("emailpass"));
        assert!(c.get_or_load(&t, &p, "a", || Ok(None)).unwrap().is_none());
        assert!(c.get_or_load(&t, &p, "a", || Err(AuthError::Unexpected("down".into()))).is_err());
        assert_eq!(get(&c, "a", "s1"), "s1");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(get(&c, "a", "s2"), "s2", "older than the ttl: read again");
    }

    #[test]
    fn tenants_are_apart() {
        let c = cache();
        let p = AuthProvider::new("emailpass");
        let one = c.get_or_load(&TenantId::new("one"), &p, "a", || Ok(Some(record("a", "s1")))).unwrap().unwrap();
        let two = c.get_or_load(&TenantId::new("two"), &p, "a", || Ok(Some(record("a", "s2")))).unwrap().unwrap();
        assert_eq!((one.security_stamp.as_str(), two.security_stamp.as_str()), ("s1", "s2"));
        c.forget("one", "a");
        let two = c.get_or_load(&TenantId::new("two"), &p, "a", || Ok(Some(record("a", "s3")))).unwrap().unwrap();
        assert_eq!(two.security_stamp, "s2", "forgetting one tenant's identity leaves the other's");
    }
}
