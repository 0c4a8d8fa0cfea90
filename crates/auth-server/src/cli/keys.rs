//! `xclade-auth keys ...`: a tenant's signing keys. A change is written to the database; every
//! running instance picks it up within `TENANT_REFRESH_INTERVAL`, as a tenant's settings.

use std::time::Duration;

use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

use auth_domain::keys::{generate, KeyAlgorithm, KeyState, SigningKeyRecord};
use auth_domain::newtypes::{TenantId, DEFAULT_TENANT};
use auth_domain::ports::{KeyStore, TenantStore};

use super::{LOG_TARGET, SAME_AS_SERVE};
use crate::config::Config;
use crate::tenants::SettingsReader;
use crate::StartError;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// One line per key of the tenant: kid, algorithm, state, created, in its state since.
    #[command(after_help = SAME_AS_SERVE)]
    List {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// A key's public half: its JWK on one line, then its PEM (SubjectPublicKeyInfo), what a
    /// verifier configured with a key file takes (Medusa's `http.jwtPublicKey`).
    #[command(after_help = SAME_AS_SERVE)]
    Show {
        kid: String,
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Make a key. The tenant's first key is active at once (its tokens move from HS256 to it);
    /// later ones are `next`: published in the JWKS, signing nothing until activated.
    #[command(after_help = SAME_AS_SERVE)]
    Create {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// EdDSA or ES256 (default: JWT_ALGORITHM).
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// Sign with KID from now on; the key active before is retired (it still verifies).
    #[command(after_help = SAME_AS_SERVE)]
    Activate {
        kid: String,
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Stop signing with KID (it still verifies its tokens until they expire). Retiring the
    /// active key sends the tenant back to HS256.
    #[command(after_help = SAME_AS_SERVE)]
    Retire {
        kid: String,
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Delete KID: its tokens stop verifying. Refused for the active key, and for a retired key
    /// whose tokens may still be alive (retired less than the tenant's token lifetime ago)
    /// unless --force.
    #[command(after_help = SAME_AS_SERVE)]
    Delete {
        kid: String,
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        #[arg(long)]
        force: bool,
    },
    /// The safe rotation: publish a new key, wait JWKS_MAX_AGE so that every verifier's cached
    /// JWKS has it, activate it (the old key is retired and still verifies), and delete the
    /// retired keys whose tokens have all expired.
    #[command(after_help = SAME_AS_SERVE)]
    Rotate {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// EdDSA or ES256 (default: JWT_ALGORITHM).
        #[arg(long)]
        algorithm: Option<String>,
    },
}

pub fn run(config: &Config, command: KeysCommand) -> Result<(), StartError> {
    let (store, reader) = super::tenant_admin(config)?;
    let keys = Keys { store: &store, reader: &reader, config };
    match command {
        KeysCommand::List { tenant, json } => keys.list(&keys.tenant(&tenant)?, json),
        KeysCommand::Show { kid, tenant } => {
            let tenant = keys.tenant(&tenant)?;
            let key = store
                .tenant_keys(&tenant)?
                .into_iter()
                .find(|k| k.kid == kid)
                .ok_or_else(|| StartError::Config(format!("the tenant {tenant} has no key {kid:?}")))?;
            println!("{}", key.public_jwk);
            print!("{}", auth_domain::keys::public_pem(&key.public_jwk)?);
            Ok(())
        }
        KeysCommand::Create { tenant, algorithm } => {
            let tenant = keys.tenant(&tenant)?;
            keys.create(&tenant, keys.algorithm(algorithm.as_deref())?).map(|_| ())
        }
        KeysCommand::Activate { kid, tenant } => {
            store.activate_key(&keys.tenant(&tenant)?, &kid, Utc::now())?;
            log::info!(target: LOG_TARGET, "key {kid} of {tenant} is active; the key active before is retired");
            Ok(())
        }
        KeysCommand::Retire { kid, tenant } => {
            store.retire_key(&keys.tenant(&tenant)?, &kid, Utc::now())?;
            log::info!(target: LOG_TARGET, "key {kid} of {tenant} is retired");
            Ok(())
        }
        KeysCommand::Delete { kid, tenant, force } => keys.delete(&keys.tenant(&tenant)?, &kid, force),
        KeysCommand::Rotate { tenant, algorithm } => {
            let tenant = keys.tenant(&tenant)?;
            keys.rotate(&tenant, keys.algorithm(algorithm.as_deref())?)
        }
    }
}

struct Keys<'a> {
    store: &'a auth_store_diesel::DieselStore,
    reader: &'a SettingsReader,
    config: &'a Config,
}

impl Keys<'_> {
    fn tenant(&self, name: &str) -> Result<TenantId, StartError> {
        let id = TenantId::new(name);
        match self.store.find_tenant(&id)? {
            Some(_) => Ok(id),
            None => Err(StartError::Config(format!("there is no tenant {name:?} (xclade-auth tenant list)"))),
        }
    }

    fn algorithm(&self, given: Option<&str>) -> Result<KeyAlgorithm, StartError> {
        match given {
            None => Ok(self.config.keys.algorithm),
            Some(text) => KeyAlgorithm::parse(text)
                .ok_or_else(|| StartError::Config(format!("--algorithm {text:?} is not EdDSA or ES256"))),
        }
    }

    fn list(&self, tenant: &TenantId, json: bool) -> Result<(), StartError> {
        for key in self.store.tenant_keys(tenant)? {
            if json {
                println!(
                    "{}",
                    json!({
                        "kid": key.kid,
                        "algorithm": key.algorithm.as_str(),
                        "state": key.state.as_str(),
                        "created_at": key.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "state_since": key.state_since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    })
                );
            } else {
                println!(
                    "{}\t{}\t{}\tcreated={}\tsince={}",
                    key.kid,
                    key.algorithm.as_str(),
                    key.state.as_str(),
                    key.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    key.state_since.format("%Y-%m-%dT%H:%M:%SZ")
                );
            }
        }
        Ok(())
    }

    /// Makes a key: active when the tenant has none active, else next. Prints its kid.
    fn create(&self, tenant: &TenantId, algorithm: KeyAlgorithm) -> Result<SigningKeyRecord, StartError> {
        let has_active = self.store.tenant_keys(tenant)?.iter().any(|k| k.state == KeyState::Active);
        let pair = generate(algorithm)?;
        let now = Utc::now();
        let record = SigningKeyRecord {
            tenant: tenant.clone(),
            kid: pair.kid.clone(),
            algorithm,
            state: if has_active { KeyState::Next } else { KeyState::Active },
            private_sealed: self.reader.seal_key(&pair.kid, &pair.private_der)?,
            public_jwk: pair.public_jwk.clone(),
            created_at: now,
            state_since: now,
        };
        self.store.insert_key(&record)?;
        log::info!(
            target: LOG_TARGET,
            "created {} key {} of {tenant}: {}",
            algorithm.as_str(),
            record.kid,
            if has_active { "next (published, not signing yet)" } else { "active (the tenant's tokens are signed with it from now on)" }
        );
        println!("{}\t{}", record.kid, record.state.as_str());
        Ok(record)
    }

    /// How long the tokens of `tenant` live (its `JWT_EXPIRES_IN`) plus the leeway.
    fn token_lifetime(&self, tenant: &TenantId) -> Result<chrono::Duration, StartError> {
        let own = self.store.find_tenant(tenant)?.map(|t| t.settings).unwrap_or_default();
        let settings = self.reader.read(tenant.as_str(), &own).map_err(StartError::Config)?;
        Ok(settings.auth_ttl + crate::to_chrono(self.config.tokens.jwt_leeway))
    }

    fn delete(&self, tenant: &TenantId, kid: &str, force: bool) -> Result<(), StartError> {
        let keys = self.store.tenant_keys(tenant)?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| StartError::Config(format!("the tenant {tenant} has no key {kid:?}")))?;
        if key.state == KeyState::Active {
            return Err(StartError::Config(format!("{kid} is the active key: activate another or retire it first")));
        }
        let safe_after = key.state_since + self.token_lifetime(tenant)?;
        if key.state == KeyState::Retired && Utc::now() < safe_after && !force {
            return Err(StartError::Config(format!(
                "{kid} was retired at {}: tokens it signed may live until {}; wait, or --force to end them now",
                key.state_since.format("%Y-%m-%dT%H:%M:%SZ"),
                safe_after.format("%Y-%m-%dT%H:%M:%SZ")
            )));
        }
        self.store.delete_key(tenant, kid)?;
        log::info!(target: LOG_TARGET, "deleted key {kid} of {tenant}");
        Ok(())
    }

    fn rotate(&self, tenant: &TenantId, algorithm: KeyAlgorithm) -> Result<(), StartError> {
        let had_active = self.store.tenant_keys(tenant)?.iter().any(|k| k.state == KeyState::Active);
        let key = self.create(tenant, algorithm)?;
        if had_active {
            let lead = rotation_lead(self.config);
            log::info!(
                target: LOG_TARGET,
                "published {}; waiting {:.1}s (JWKS_MAX_AGE and one directory refresh) until every verifier's JWKS has it",
                key.kid,
                lead.as_secs_f64()
            );
            std::thread::sleep(lead);
            self.store.activate_key(tenant, &key.kid, Utc::now())?;
            log::info!(target: LOG_TARGET, "key {} of {tenant} is active; the key active before is retired", key.kid);
        }
        let lifetime = self.token_lifetime(tenant)?;
        for old in self.store.tenant_keys(tenant)? {
            if old.state == KeyState::Retired && old.state_since + lifetime <= Utc::now() {
                self.store.delete_key(tenant, &old.kid)?;
                log::info!(target: LOG_TARGET, "deleted key {} of {tenant}: every token it signed has expired", old.kid);
            }
        }
        Ok(())
    }
}

/// How long `keys rotate` publishes a key before it signs: `JWKS_MAX_AGE` (what a verifier may
/// cache) and one directory refresh (what an instance may take to see the key).
fn rotation_lead(config: &Config) -> Duration {
    config.keys.jwks_max_age + config.tenants.refresh_interval
}
