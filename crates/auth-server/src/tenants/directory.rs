//! The server's `TenantDirectory`: every tenant in memory, kept current by reading the
//! directory's revision every `TENANT_REFRESH_INTERVAL`, and at once when the change listener
//! (PostgreSQL's `NOTIFY`) wakes the refresh thread.
//!
//! A request's tenant is found without a database round trip: the host's label
//! (`auth_domain::tenant::host_label`) is looked up in a map, the same work whether the tenant
//! exists, is disabled or not, so neither the answer nor its timing tells tenant names apart.
//! Every write to a tenant bumps the directory's revision in its own transaction
//! (`ports::TenantStore`); a refresh reads that one number and, when it moved, the tenants
//! written since. A change made anywhere (the CLI on another machine) reaches every instance
//! within one interval. While the database cannot be read, the last directory read stays in
//! use (a request that needs the database fails anyway), and the refresh retries.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::Duration;

use auth_domain::keys::KeyRing;
use auth_domain::newtypes::{TenantId, DEFAULT_TENANT};
use auth_domain::ports::{DirectoryStore, TenantRecord};
use auth_domain::tenant::{host_label, Tenant, TenantDirectory, TenantStatus, NO_SUCH_STORE};
use auth_domain::AuthError;

use super::settings::SettingsReader;

/// The directory as last read.
#[derive(Debug, Default)]
struct Snapshot {
    revision: i64,
    tenants: HashMap<String, Tenant>,
}

/// Every tenant, cached; see the module's notes.
pub struct CachedDirectory {
    /// `None`: every host is the tenant `default`.
    suffix: Option<String>,
    store: Arc<dyn DirectoryStore>,
    reader: SettingsReader,
    snapshot: RwLock<Arc<Snapshot>>,
    /// One refresh at a time.
    refreshing: Mutex<()>,
    /// Set by `wake`: the refresh thread reads the directory now rather than at its next interval.
    woken: (Mutex<bool>, Condvar),
}

impl std::fmt::Debug for CachedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedDirectory").field("suffix", &self.suffix).finish_non_exhaustive()
    }
}

impl CachedDirectory {
    /// A directory that knows no tenant yet: every host answers 404 until `refresh` reads one.
    pub fn new(store: Arc<dyn DirectoryStore>, reader: SettingsReader, suffix: Option<String>) -> CachedDirectory {
        CachedDirectory {
            suffix,
            store,
            reader,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            refreshing: Mutex::new(()),
            woken: (Mutex::new(false), Condvar::new()),
        }
    }

    /// Has the refresh thread read the directory now (a change was notified), without waiting
    /// here for it: the caller (the change listener) goes on at once.
    pub fn wake(&self) {
        let (woken, signal) = &self.woken;
        *woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        signal.notify_one();
    }

    /// Waits until `wake` or `interval`, whichever comes first.
    fn wait(&self, interval: Duration) {
        let (woken, signal) = &self.woken;
        let guard = woken.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) =
            signal.wait_timeout_while(guard, interval, |woken| !*woken).unwrap_or_else(|e| e.into_inner());
        *guard = false;
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the revision, and the tenants written since the last read when it moved. `true`
    /// when something changed.
    pub fn refresh(&self) -> Result<bool, AuthError> {
        let _one = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.snapshot();
        let revision = self.store.tenant_revision()?;
        if revision == current.revision {
            return Ok(false);
        }
        let changed = self.store.tenants_since(current.revision)?;
        let mut tenants = current.tenants.clone();
        for record in &changed {
            match self.tenant_of(record) {
                Ok(tenant) => {
                    tenants.insert(record.id.as_str().to_string(), tenant);
                }
                Err(reason) => {
                    log::error!(
                        "tenant {}: its settings are invalid ({reason}); it is not served until fixed",
                        record.id
                    );
                    tenants.remove(record.id.as_str());
                }
            }
        }
        let revision = changed.iter().map(|r| r.revision).max().unwrap_or(revision).max(revision);
        if current.revision != 0 {
            log::info!("tenant directory: revision {revision}, {} tenant(s) changed", changed.len());
        }
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Snapshot { revision, tenants });
        Ok(true)
    }

    fn tenant_of(&self, record: &TenantRecord) -> Result<Tenant, String> {
        let settings = self.reader.read(record.id.as_str(), &record.settings)?;
        let keys = self.store.tenant_keys(&record.id).map_err(|e| format!("reading its keys: {e}"))?;
        let keys =
            KeyRing::from_records(&keys, |key| self.reader.open_key(key)).map_err(|e| format!("its keys: {e}"))?;
        Ok(Tenant { id: record.id.clone(), status: record.status, settings: Arc::new(settings), keys: Arc::new(keys) })
    }

    /// How many tenants there are, by status (the `xclade_auth_tenants` gauge).
    pub fn counts(&self) -> (usize, usize) {
        let snapshot = self.snapshot();
        let active = snapshot.tenants.values().filter(|t| t.status == TenantStatus::Active).count();
        (active, snapshot.tenants.len() - active)
    }

    /// Refreshes every `interval`, and when woken (`wake`), on a thread of its own, for as long
    /// as the directory is in use (the thread ends once only it still holds the directory).
    pub fn spawn_refresh(directory: &Arc<CachedDirectory>, interval: Duration) {
        let weak: Weak<CachedDirectory> = Arc::downgrade(directory);
        let spawned = std::thread::Builder::new().name("tenant-refresh".into()).spawn(move || {
            let mut failing = false;
            loop {
                match weak.upgrade() {
                    Some(directory) => directory.wait(interval),
                    None => return,
                }
                let Some(directory) = weak.upgrade() else { return };
                match directory.refresh() {
                    Ok(_) if failing => {
                        log::info!("tenant directory: read again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        log::warn!("tenant directory: cannot read it ({e}); serving the last one read");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
        if let Err(e) = spawned {
            log::error!("tenant directory: cannot start its refresh thread: {e}");
        }
    }
}

impl TenantDirectory for CachedDirectory {
    fn resolve(&self, host: Option<&str>) -> Result<Tenant, AuthError> {
        let not_found = || AuthError::NotFound(NO_SUCH_STORE.into());
        let label = match &self.suffix {
            None => DEFAULT_TENANT.to_string(),
            Some(suffix) => host.and_then(|host| host_label(host, suffix)).ok_or_else(not_found)?,
        };
        let snapshot = self.snapshot();
        match snapshot.tenants.get(&label) {
            Some(tenant) if tenant.status == TenantStatus::Active => Ok(tenant.clone()),
            _ => Err(not_found()),
        }
    }

    fn tenant(&self, id: &TenantId) -> Option<Tenant> {
        self.snapshot().tenants.get(id.as_str()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};

    use auth_domain::keys::SigningKeyRecord;
    use auth_domain::ports::{KeyStore, TenantChange, TenantStore};
    use auth_domain::secret::SecretBox;

    use super::*;
    use crate::config::Config;

    /// Tenants in memory (the port's rules: every write bumps the revision).
    #[derive(Default)]
    struct Tenants(Mutex<(i64, Vec<TenantRecord>)>);

    impl TenantStore for Tenants {
        fn tenant_revision(&self) -> Result<i64, AuthError> {
            Ok(self.0.lock().unwrap().0)
        }

        fn tenants_since(&self, revision: i64) -> Result<Vec<TenantRecord>, AuthError> {
            Ok(self.0.lock().unwrap().1.iter().filter(|t| t.revision > revision).cloned().collect())
        }

        fn find_tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, AuthError> {
            Ok(self.0.lock().unwrap().1.iter().find(|t| t.id == *id).cloned())
        }

        fn create_tenant(
            &self,
            id: &TenantId,
            settings: &BTreeMap<String, String>,
            now: DateTime<Utc>,
        ) -> Result<TenantRecord, AuthError> {
            let mut all = self.0.lock().unwrap();
            all.0 += 1;
            let record = TenantRecord {
                id: id.clone(),
                status: TenantStatus::Active,
                settings: settings.clone(),
                created_at: now,
                updated_at: now,
                revision: all.0,
            };
            all.1.push(record.clone());
            Ok(record)
        }

        fn update_tenant(
            &self,
            id: &TenantId,
            change: &TenantChange,
            now: DateTime<Utc>,
        ) -> Result<TenantRecord, AuthError> {
            let mut all = self.0.lock().unwrap();
            all.0 += 1;
            let revision = all.0;
            let record = all.1.iter_mut().find(|t| t.id == *id).ok_or(AuthError::NotFound("no such tenant".into()))?;
            record.status = change.status.unwrap_or(record.status);
            record.settings = change.settings.clone().unwrap_or_else(|| record.settings.clone());
            record.updated_at = now;
            record.revision = revision;
            Ok(record.clone())
        }
    }

    /// No tenant here has keys.
    impl KeyStore for Tenants {
        fn tenant_keys(&self, _tenant: &TenantId) -> Result<Vec<SigningKeyRecord>, AuthError> {
            Ok(Vec::new())
        }

        fn insert_key(&self, _key: &SigningKeyRecord) -> Result<(), AuthError> {
            Err(AuthError::Unexpected("no keys here".into()))
        }

        fn activate_key(&self, _tenant: &TenantId, _kid: &str, _now: DateTime<Utc>) -> Result<(), AuthError> {
            Err(AuthError::Unexpected("no keys here".into()))
        }

        fn retire_key(&self, _tenant: &TenantId, _kid: &str, _now: DateTime<Utc>) -> Result<(), AuthError> {
            Err(AuthError::Unexpected("no keys here".into()))
        }

        fn delete_key(&self, _tenant: &TenantId, _kid: &str) -> Result<bool, AuthError> {
            Ok(false)
        }
    }

    fn directory(suffix: Option<&str>) -> (Arc<Tenants>, CachedDirectory) {
        let store = Arc::new(Tenants::default());
        store.create_tenant(&TenantId::new("default"), &BTreeMap::new(), Utc::now()).unwrap();
        let config = Config::from_lookup(|_| None).unwrap();
        let reader = SettingsReader::new(config, vec!["log".into()], SecretBox::new(b"k", &[]));
        let directory = CachedDirectory::new(store.clone(), reader, suffix.map(str::to_string));
        (store, directory)
    }

    fn resolved(directory: &CachedDirectory, host: Option<&str>) -> Option<String> {
        match directory.resolve(host) {
            Ok(tenant) => Some(tenant.id.to_string()),
            Err(AuthError::NotFound(message)) => {
                assert_eq!(message, NO_SUCH_STORE, "the same answer whatever the reason");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn without_a_suffix_every_host_is_the_default_tenant() {
        let (_, directory) = directory(None);
        assert_eq!(resolved(&directory, None), None, "nothing is served before the first read");
        directory.refresh().unwrap();
        for host in [None, Some("acme.api.myxclade.com"), Some("localhost:9000")] {
            assert_eq!(resolved(&directory, host).as_deref(), Some("default"));
        }
    }

    #[test]
    fn a_refresh_sees_new_disabled_and_enabled_tenants() {
        let (store, directory) = directory(Some(".api.test"));
        directory.refresh().unwrap();
        assert_eq!(resolved(&directory, Some("acme.api.test")), None);
        store.create_tenant(&TenantId::new("acme"), &BTreeMap::new(), Utc::now()).unwrap();
        assert_eq!(resolved(&directory, Some("acme.api.test")), None, "until the next refresh");
        assert!(directory.refresh().unwrap());
        assert!(!directory.refresh().unwrap(), "nothing changed since");
        assert_eq!(resolved(&directory, Some("ACME.api.test:443")).as_deref(), Some("acme"));
        assert_eq!(resolved(&directory, Some("default.api.test")).as_deref(), Some("default"));
        assert_eq!(resolved(&directory, None), None);
        let disable = TenantChange { status: Some(TenantStatus::Disabled), settings: None };
        store.update_tenant(&TenantId::new("acme"), &disable, Utc::now()).unwrap();
        directory.refresh().unwrap();
        assert_eq!(resolved(&directory, Some("acme.api.test")), None);
        assert!(directory.tenant(&TenantId::new("acme")).is_some(), "its events still find its settings");
        assert_eq!(directory.counts(), (1, 1));
    }

    #[test]
    fn a_tenant_whose_settings_cannot_be_read_is_not_served() {
        let (store, directory) = directory(Some(".api.test"));
        let bad = BTreeMap::from([("JWT_EXPIRES_IN".to_string(), "soon".to_string())]);
        store.create_tenant(&TenantId::new("acme"), &bad, Utc::now()).unwrap();
        let good = BTreeMap::from([("JWT_EXPIRES_IN".to_string(), "1h".to_string())]);
        store.create_tenant(&TenantId::new("good"), &good, Utc::now()).unwrap();
        directory.refresh().unwrap();
        assert_eq!(resolved(&directory, Some("acme.api.test")), None);
        let tenant = directory.resolve(Some("good.api.test")).unwrap();
        assert_eq!(tenant.settings.auth_ttl, chrono::Duration::hours(1));
    }
}
