//! `TenantStore` on diesel: the `tenant` table and the one row of `tenant_directory`, whose
//! revision every write bumps first, in its own transaction, and stamps on the tenant it writes.
//! On SQLite `write_tx` takes the write lock up front; on PostgreSQL the bump takes the row's
//! lock, so writers queue on it and commit in revision order: a reader that sees revision `n`
//! sees every tenant written up to `n`. `stamp_tenant` is that bump for the other writes the
//! directory follows (the keys, `keys.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use auth_domain::newtypes::TenantId;
use auth_domain::ports::{TenantChange, TenantRecord, TenantStore};
use auth_domain::tenant::TenantStatus;
use auth_domain::AuthError;

use crate::connection::DbConnection;
use crate::rows::{naive, settings_text, TenantChanges, TenantRow};
use crate::schema::{tenant, tenant_directory};
use crate::tx::{db_error, write_tx, TxError};
use crate::DieselStore;

/// The message of the `NotFound` of a write on a tenant that does not exist.
const NO_SUCH_TENANT: &str = "No such tenant";

/// Bumps the directory's revision (taking its row's lock on PostgreSQL) and returns the new one.
fn bump_revision(c: &mut DbConnection) -> Result<i64, TxError> {
    let directory = tenant_directory::table.filter(tenant_directory::id.eq(1));
    if diesel::update(directory).set(tenant_directory::revision.eq(tenant_directory::revision + 1)).execute(c)? != 1 {
        return Err(TxError::Domain(AuthError::Unexpected("the tenant directory has no revision row".into())));
    }
    Ok(directory.select(tenant_directory::revision).get_result(c)?)
}

/// Bumps the directory's revision and writes the tenant `id` at it: `status` and `settings` when
/// given, `updated_at` = `now`, `revision` = the new revision (returned). `NotFound` when there is
/// no such tenant: returned from the transaction, so the bump rolls back.
fn write_tenant(
    c: &mut DbConnection,
    id: &TenantId,
    status: Option<TenantStatus>,
    settings: Option<String>,
    now: NaiveDateTime,
) -> Result<i64, TxError> {
    let revision = bump_revision(c)?;
    let changes = TenantChanges { status: status.map(TenantStatus::as_str), settings, updated_at: now, revision };
    if diesel::update(tenant::table.filter(tenant::id.eq(id.as_str()))).set(changes).execute(c)? != 1 {
        return Err(TxError::Domain(AuthError::NotFound(NO_SUCH_TENANT.into())));
    }
    Ok(revision)
}

/// Stamps the tenant `id` with a new directory revision (and `updated_at` = `now`), for a write
/// in the same transaction that changes what the directory holds about the tenant (its keys):
/// the instances reload the tenant, and with it that change. `NotFound` when there is no such
/// tenant (the caller's transaction then rolls back).
pub(crate) fn stamp_tenant(c: &mut DbConnection, id: &TenantId, now: NaiveDateTime) -> Result<i64, TxError> {
    write_tenant(c, id, None, None, now)
}

impl TenantStore for DieselStore {
    fn tenant_revision(&self) -> Result<i64, AuthError> {
        let mut conn = self.conn()?;
        tenant_directory::table
            .filter(tenant_directory::id.eq(1))
            .select(tenant_directory::revision)
            .get_result(&mut *conn)
            .map_err(db_error)
    }

    fn tenants_since(&self, revision: i64) -> Result<Vec<TenantRecord>, AuthError> {
        let mut conn = self.conn()?;
        tenant::table
            .filter(tenant::revision.gt(revision))
            .order(tenant::revision.asc())
            .select(TenantRow::as_select())
            .load(&mut *conn)
            .map_err(db_error)?
            .into_iter()
            .map(TenantRow::into_record)
            .collect()
    }

    fn find_tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, AuthError> {
        let mut conn = self.conn()?;
        tenant::table
            .filter(tenant::id.eq(id.as_str()))
            .select(TenantRow::as_select())
            // Not `first`: its `LIMIT ?` makes SQLite compile the statement again on every run.
            .get_result(&mut *conn)
            .optional()
            .map_err(db_error)?
            .map(TenantRow::into_record)
            .transpose()
    }

    fn create_tenant(
        &self,
        id: &TenantId,
        settings: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<TenantRecord, AuthError> {
        let settings = settings_text(settings)?;
        let now = naive(now);
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            let revision = bump_revision(c)?;
            let row = TenantRow {
                id: id.as_str().to_string(),
                status: TenantStatus::Active.as_str().to_string(),
                settings: settings.clone(),
                created_at: now,
                updated_at: now,
                revision,
            };
            match diesel::insert_into(tenant::table).values(&row).execute(c) {
                Ok(_) => row.into_record().map_err(TxError::Domain),
                // The name is taken: the bump rolls back with the insert.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    Err(TxError::Domain(AuthError::Conflict))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn update_tenant(
        &self,
        id: &TenantId,
        change: &TenantChange,
        now: DateTime<Utc>,
    ) -> Result<TenantRecord, AuthError> {
        let settings = change.settings.as_ref().map(settings_text).transpose()?;
        let now = naive(now);
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            write_tenant(c, id, change.status, settings.clone(), now)?;
            let target = tenant::table.filter(tenant::id.eq(id.as_str()));
            target.select(TenantRow::as_select()).get_result(c)?.into_record().map_err(TxError::Domain)
        })
    }
}
