//! `KeyStore` on diesel: the `signing_key` table. Every write stamps the tenant with a new
//! directory revision first (`tenant::stamp_tenant`), in the same transaction, so that the
//! instances reload the tenant's keys with its settings; a write that fails rolls the stamp back.
//! The bump comes first in every write: on PostgreSQL it takes the directory row's lock, so key
//! writes queue on it (as tenant writes do) and never wait on one another's key rows in the
//! opposite order. A partial unique index keeps at most one active key per tenant.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use auth_domain::keys::{KeyState, SigningKeyRecord};
use auth_domain::newtypes::TenantId;
use auth_domain::ports::KeyStore;
use auth_domain::AuthError;

use crate::connection::DbConnection;
use crate::rows::{key_state, naive, SigningKeyRow};
use crate::schema::signing_key;
use crate::tenant::stamp_tenant;
use crate::tx::{db_error, write_tx, TxError};
use crate::DieselStore;

/// The message of the `NotFound` of a write on a key the tenant does not have.
const NO_SUCH_KEY: &str = "No such key";

fn no_such_key() -> TxError {
    TxError::Domain(AuthError::NotFound(NO_SUCH_KEY.into()))
}

/// The type of `the_key`.
type KeyFilter<'a> = dsl::Filter<
    dsl::Filter<signing_key::table, dsl::Eq<signing_key::tenant_id, &'a str>>,
    dsl::Eq<signing_key::kid, &'a str>,
>;

/// The tenant's key `kid` (the tenant in the filter: a kid of another tenant is not there).
fn the_key<'a>(tenant: &'a TenantId, kid: &'a str) -> KeyFilter<'a> {
    signing_key::table.filter(signing_key::tenant_id.eq(tenant.as_str())).filter(signing_key::kid.eq(kid))
}

/// The state of the tenant's key `kid`, if it has one.
fn find_state(c: &mut DbConnection, tenant: &TenantId, kid: &str) -> Result<Option<KeyState>, TxError> {
    let state: Option<String> = the_key(tenant, kid).select(signing_key::state).get_result(c).optional()?;
    state.as_deref().map(key_state).transpose().map_err(TxError::Domain)
}

/// Sets the state of the tenant's key `kid`, and `state_since`.
fn set_state(
    c: &mut DbConnection,
    tenant: &TenantId,
    kid: &str,
    state: KeyState,
    since: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(the_key(tenant, kid))
        .set((signing_key::state.eq(state.as_str()), signing_key::state_since.eq(since)))
        .execute(c)
}

impl KeyStore for DieselStore {
    fn tenant_keys(&self, tenant: &TenantId) -> Result<Vec<SigningKeyRecord>, AuthError> {
        let mut conn = self.conn()?;
        signing_key::table
            .filter(signing_key::tenant_id.eq(tenant.as_str()))
            .order((signing_key::created_at.asc(), signing_key::kid.asc()))
            .select(SigningKeyRow::as_select())
            .load(&mut *conn)
            .map_err(db_error)?
            .into_iter()
            .map(SigningKeyRow::into_record)
            .collect()
    }

    fn insert_key(&self, key: &SigningKeyRecord) -> Result<(), AuthError> {
        let row = SigningKeyRow::new(key);
        let now = naive(Utc::now());
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            stamp_tenant(c, &key.tenant, now)?;
            match diesel::insert_into(signing_key::table).values(&row).execute(c) {
                Ok(_) => Ok(()),
                // A second active key (or a kid taken): the stamp rolls back with the insert.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    Err(TxError::Domain(AuthError::Conflict))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn activate_key(&self, tenant: &TenantId, kid: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        let now = naive(now);
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            stamp_tenant(c, tenant, now)?;
            match find_state(c, tenant, kid)? {
                None | Some(KeyState::Retired) => return Err(no_such_key()),
                Some(KeyState::Active) => return Ok(()),
                Some(KeyState::Next) => {}
            }
            // The active key retires first, so the unique index never sees two active keys.
            let active = signing_key::table
                .filter(signing_key::tenant_id.eq(tenant.as_str()))
                .filter(signing_key::state.eq(KeyState::Active.as_str()));
            diesel::update(active)
                .set((signing_key::state.eq(KeyState::Retired.as_str()), signing_key::state_since.eq(now)))
                .execute(c)?;
            set_state(c, tenant, kid, KeyState::Active, now)?;
            Ok(())
        })
    }

    fn retire_key(&self, tenant: &TenantId, kid: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        let now = naive(now);
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            stamp_tenant(c, tenant, now)?;
            match find_state(c, tenant, kid)? {
                None => Err(no_such_key()),
                // Retired already: it keeps the time it retired.
                Some(KeyState::Retired) => Ok(()),
                Some(KeyState::Next | KeyState::Active) => {
                    set_state(c, tenant, kid, KeyState::Retired, now)?;
                    Ok(())
                }
            }
        })
    }

    fn delete_key(&self, tenant: &TenantId, kid: &str) -> Result<bool, AuthError> {
        let now = naive(Utc::now());
        let mut conn = self.conn()?;
        let deleted = write_tx(&mut conn, |c| {
            stamp_tenant(c, tenant, now)?;
            match diesel::delete(the_key(tenant, kid)).execute(c)? {
                // Returned as an error so that the stamp rolls back; `false` below.
                0 => Err(no_such_key()),
                _ => Ok(()),
            }
        });
        match deleted {
            Ok(()) => Ok(true),
            Err(AuthError::NotFound(message)) if message == NO_SUCH_KEY => Ok(false),
            Err(e) => Err(e),
        }
    }
}
