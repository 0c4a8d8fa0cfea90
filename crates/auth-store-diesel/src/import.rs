//! `ImportStore` on diesel: a batch of imported accounts, decided and written in one transaction.

use std::collections::{HashMap, HashSet};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use auth_domain::import::{
    ImportOutcome, ImportedAccount, ImportedProviderIdentity, SkipReason, EMAILPASS, IMPORTED_PROVIDERS,
};
use auth_domain::newtypes::TenantId;
use auth_domain::ports::ImportStore;
use auth_domain::AuthError;

use crate::connection::{per_backend, DbConnection};
use crate::rows::{naive, password_metadata, AuthIdentityRow, CustomerRow, ProviderIdentityRow};
use crate::schema::{auth_identity, customer, provider_identity};
use crate::tx::{db_error, write_tx, TxError};
use crate::DieselStore;

diesel::define_sql_function! {
    /// SQL `lower`, as the customer address index uses it.
    fn lower(x: Text) -> Text;
}

/// What the tables already hold for the ids and addresses of a batch.
struct Existing {
    /// Identity and provider identity ids, with their tenant.
    identity_ids: HashMap<String, String>,
    /// (provider, lookup key) pairs of the tenant that the batch names, with the identity that
    /// has each.
    keys: HashMap<(String, String), String>,
    /// Customer ids, with their tenant.
    customer_ids: HashMap<String, String>,
    /// Lowercased addresses of the tenant's customer accounts, with the customer's id.
    customer_addresses: HashMap<String, String>,
}

fn existing(c: &mut DbConnection, tenant: &str, batch: &[ImportedAccount]) -> QueryResult<Existing> {
    let ids: Vec<&str> = batch.iter().map(|a| a.auth_identity_id.as_str()).collect();
    let provider_ids: Vec<&str> = batch.iter().flat_map(|a| &a.provider_identities).map(|p| p.id.as_str()).collect();
    let customer_ids: Vec<&str> = batch.iter().filter_map(|a| a.customer.as_ref()).map(|c| c.id.as_str()).collect();
    let addresses: Vec<String> = batch
        .iter()
        .filter_map(|a| a.customer.as_ref())
        .filter(|c| c.has_account)
        .map(|c| c.email.to_lowercase())
        .collect();
    let mut identity_ids: HashMap<String, String> = auth_identity::table
        .filter(auth_identity::id.eq_any(&ids))
        .select((auth_identity::id, auth_identity::tenant_id))
        .load(c)?
        .into_iter()
        .collect();
    identity_ids.extend(
        provider_identity::table
            .filter(provider_identity::id.eq_any(&provider_ids))
            .select((provider_identity::id, provider_identity::tenant_id))
            .load::<(String, String)>(c)?,
    );
    // One lookup per provider the batch has, each by the (tenant, provider, entity_key) index.
    let mut keys = HashMap::new();
    for provider in IMPORTED_PROVIDERS {
        let wanted: Vec<&str> = batch
            .iter()
            .flat_map(|a| &a.provider_identities)
            .filter(|p| p.provider == provider)
            .map(|p| p.entity_key.as_str())
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let found: Vec<(String, String)> = provider_identity::table
            .filter(provider_identity::tenant_id.eq(tenant))
            .filter(provider_identity::provider.eq(provider))
            .filter(provider_identity::entity_key.eq_any(&wanted))
            .select((provider_identity::entity_key, provider_identity::auth_identity_id))
            .load(c)?;
        keys.extend(found.into_iter().map(|(key, by)| ((provider.to_string(), key), by)));
    }
    Ok(Existing {
        identity_ids,
        keys,
        customer_ids: customer::table
            .filter(customer::id.eq_any(&customer_ids))
            .select((customer::id, customer::tenant_id))
            .load(c)?
            .into_iter()
            .collect(),
        customer_addresses: customer::table
            .filter(customer::tenant_id.eq(tenant))
            // The bare column, as the partial index says it (`WHERE has_account`): with
            // `has_account = ?` neither SQLite nor a generic PostgreSQL plan can use the index,
            // and every batch computed lower() over the whole table.
            .filter(customer::has_account)
            .filter(customer::deleted_at.is_null())
            .filter(lower(customer::email).eq_any(&addresses))
            .select((lower(customer::email), customer::id))
            .load(c)?
            .into_iter()
            .collect(),
    })
}

/// What to do with one account, given what is there (and what the batch took before it).
fn decide(tenant: &str, account: &ImportedAccount, there: &Existing, taken: &mut HashSet<String>) -> ImportOutcome {
    let id = &account.auth_identity_id;
    match there.identity_ids.get(id) {
        Some(t) if t == tenant => return ImportOutcome::Unchanged,
        Some(_) => return ImportOutcome::Skipped(SkipReason::IdTaken { id: id.clone() }),
        None => {}
    }
    for pi in &account.provider_identities {
        if there.identity_ids.contains_key(&pi.id) {
            return ImportOutcome::Skipped(SkipReason::IdTaken { id: pi.id.clone() });
        }
        let key = (pi.provider.clone(), pi.entity_key.as_str().to_string());
        let by = there.keys.get(&key).cloned().or_else(|| {
            // Two accounts of one run with the same sign-in (the source's own index forbids it).
            (!taken.insert(format!("key:{}:{}", key.0, key.1))).then(|| "another account of this run".to_string())
        });
        if let Some(by) = by {
            return ImportOutcome::Skipped(if pi.provider == EMAILPASS {
                SkipReason::AddressTaken { by }
            } else {
                SkipReason::ProviderAccountTaken { provider: pi.provider.clone(), by }
            });
        }
    }
    if let Some(c) = &account.customer {
        if there.customer_ids.contains_key(&c.id) || !taken.insert(format!("id:{}", c.id)) {
            return ImportOutcome::Skipped(SkipReason::IdTaken { id: c.id.clone() });
        }
        let address = c.email.to_lowercase();
        if c.has_account {
            if let Some(by) = there.customer_addresses.get(&address) {
                return ImportOutcome::Skipped(SkipReason::CustomerAddressTaken { by: by.clone() });
            }
            if !taken.insert(format!("address:{address}")) {
                return ImportOutcome::Skipped(SkipReason::CustomerAddressTaken {
                    by: "another account of this run".into(),
                });
            }
        }
    }
    ImportOutcome::Imported
}

/// Writes the accounts with three multi-row inserts (one round trip per table, not per row).
fn write(c: &mut DbConnection, tenant: &str, accounts: &[&ImportedAccount]) -> QueryResult<()> {
    if accounts.is_empty() {
        return Ok(());
    }
    let app_metadata: Vec<String> =
        accounts.iter().map(|a| serde_json::Value::Object(a.app_metadata.clone()).to_string()).collect();
    let identities: Vec<AuthIdentityRow<'_>> = accounts
        .iter()
        .zip(&app_metadata)
        .map(|(a, app_metadata)| AuthIdentityRow {
            id: &a.auth_identity_id,
            tenant_id: tenant,
            app_metadata,
            security_stamp: &a.security_stamp,
            created_at: naive(a.created_at),
            updated_at: naive(a.updated_at),
        })
        .collect();
    let owned: Vec<(&ImportedAccount, &ImportedProviderIdentity)> =
        accounts.iter().flat_map(|a| a.provider_identities.iter().map(move |p| (*a, p))).collect();
    // The hash of an email/password identity; a social one's provider metadata stays in Medusa.
    let texts: Vec<(String, String)> = owned
        .iter()
        .map(|(_, p)| {
            (
                serde_json::Value::Object(p.user_metadata.clone()).to_string(),
                p.password_hash.as_deref().map_or_else(|| "{}".to_string(), password_metadata),
            )
        })
        .collect();
    let providers: Vec<ProviderIdentityRow<'_>> = owned
        .iter()
        .zip(&texts)
        .map(|((a, p), (user_metadata, provider_metadata))| ProviderIdentityRow {
            id: &p.id,
            tenant_id: tenant,
            auth_identity_id: &a.auth_identity_id,
            provider: &p.provider,
            entity_id: &p.entity_id,
            entity_key: p.entity_key.as_str(),
            provider_metadata,
            user_metadata,
            created_at: naive(p.created_at),
            updated_at: naive(p.updated_at),
        })
        .collect();
    let customers: Vec<CustomerRow> =
        accounts.iter().filter_map(|a| a.customer.as_ref()).map(|c| CustomerRow::new(tenant, c)).collect();
    per_backend!(c, conn => {
        diesel::insert_into(auth_identity::table).values(&identities).execute(conn)?;
        diesel::insert_into(provider_identity::table).values(&providers).execute(conn)?;
        if !customers.is_empty() {
            diesel::insert_into(customer::table).values(&customers).execute(conn)?;
        }
    });
    Ok(())
}

impl ImportStore for DieselStore {
    fn import_accounts(
        &self,
        tenant: &TenantId,
        batch: &[ImportedAccount],
        dry_run: bool,
    ) -> Result<Vec<ImportOutcome>, AuthError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let tenant = tenant.as_str();
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            let there = existing(c, tenant, batch)?;
            let mut taken = HashSet::new();
            let outcomes: Vec<ImportOutcome> = batch.iter().map(|a| decide(tenant, a, &there, &mut taken)).collect();
            if !dry_run {
                let imported: Vec<&ImportedAccount> = batch
                    .iter()
                    .zip(&outcomes)
                    .filter(|(_, outcome)| **outcome == ImportOutcome::Imported)
                    .map(|(account, _)| account)
                    .collect();
                write(c, tenant, &imported).map_err(TxError::Db)?;
            }
            Ok(outcomes)
        })
    }

    fn refresh_statistics(&self) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        // SQLite plans these lookups by their indexes without statistics.
        if let DbConnection::Postgresql(c) = &mut *conn {
            c.batch_execute("ANALYZE auth_identity, provider_identity, customer").map_err(db_error)?;
        }
        Ok(())
    }
}
