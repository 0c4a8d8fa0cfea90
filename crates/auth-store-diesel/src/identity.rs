//! `IdentityStore` on diesel.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use auth_domain::event::NewEvent;
use auth_domain::model::{IdentityRecord, NewIdentity, NewResetToken, PasswordChange, PasswordResetCompletion};
use auth_domain::newtypes::{AuthProvider, EntityKey, TenantId};
use auth_domain::ports::IdentityStore;
use auth_domain::secret::HashedToken;
use auth_domain::{AuthError, TokenRejection};

use crate::connection::{per_backend, DbConnection};
use crate::rows::{
    identity_columns, identity_record, naive, password_metadata, AuthIdentityRow, DeliveryRow, EventRow,
    IdentityColumns, ProviderIdentityRow, ResetTokenRow,
};
use crate::schema::{auth_identity, auth_session, password_reset_token, provider_identity};
use crate::tx::{db_error, write_tx, TxError};
use crate::DieselStore;

/// The identities of `tenant` through their `provider` identity, as `IdentityColumns`, with
/// one more condition. A macro, not a function returning a boxed query: diesel keeps a prepared
/// statement only for a query whose type fixes its SQL (a boxed query is prepared again on every
/// call). Read with `get_result`, not `first`: `first` adds `LIMIT ?`, and SQLite (built with
/// STAT4) then compiles the statement again on every run, cached or not. The lookups are by a
/// unique key, so the first row is the only one.
macro_rules! identities {
    ($tenant:expr, $provider:expr, $condition:expr) => {
        provider_identity::table
            .inner_join(auth_identity::table)
            .select(identity_columns())
            .filter(provider_identity::tenant_id.eq($tenant))
            .filter(auth_identity::tenant_id.eq($tenant))
            .filter(provider_identity::provider.eq($provider))
            .filter($condition)
    };
}

impl DieselStore {
    fn first_identity<'q, Q>(&self, query: Q) -> Result<Option<IdentityRecord>, AuthError>
    where
        Q: diesel::query_dsl::LoadQuery<'q, DbConnection, IdentityColumns>,
    {
        let mut conn = self.conn()?;
        query.get_result::<IdentityColumns>(&mut *conn).optional().map_err(db_error)?.map(identity_record).transpose()
    }

    /// Forgets, from the identity cache, the identity that owns the provider identity
    /// `provider_identity_id` (after a write that named only the latter).
    pub(crate) fn forget_owner_of(&self, tenant: &TenantId, provider_identity_id: &str) -> Result<(), AuthError> {
        if self.identity_cache().is_none() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let owner = provider_identity::table
            .filter(provider_identity::id.eq(provider_identity_id))
            .filter(provider_identity::tenant_id.eq(tenant.as_str()))
            .select(provider_identity::auth_identity_id)
            .get_result::<String>(&mut *conn)
            .optional()
            .map_err(db_error)?;
        if let Some(owner) = owner {
            self.forget_identity(tenant.as_str(), &owner);
        }
        Ok(())
    }
}

/// Inserts an auth identity and its provider identity, inside the caller's transaction.
pub(crate) fn insert_identity(
    conn: &mut DbConnection,
    identity: &AuthIdentityRow<'_>,
    account: &ProviderIdentityRow<'_>,
) -> QueryResult<()> {
    diesel::insert_into(auth_identity::table).values(identity).execute(conn)?;
    diesel::insert_into(provider_identity::table).values(account).execute(conn)?;
    Ok(())
}

/// Writes an event and one pending delivery per sink, inside the caller's transaction.
/// Stores `token` as the one live reset token of its provider identity, replacing any earlier
/// one (inside the caller's transaction).
pub(crate) fn put_reset_token(conn: &mut DbConnection, tenant: &TenantId, token: &NewResetToken) -> QueryResult<()> {
    use password_reset_token::dsl as t;
    let row = ResetTokenRow {
        id: &token.id,
        tenant_id: tenant.as_str(),
        provider_identity_id: &token.provider_identity_id,
        token_hash: token.token_hash.as_str(),
        expires_at: naive(token.expires_at),
        created_at: naive(token.created_at),
    };
    let replace = (
        t::id.eq(row.id),
        t::token_hash.eq(row.token_hash),
        t::expires_at.eq(row.expires_at),
        t::created_at.eq(row.created_at),
    );
    per_backend!(conn, inner => diesel::insert_into(t::password_reset_token)
        .values(&row)
        .on_conflict(t::provider_identity_id)
        .do_update()
        .set(replace)
        .execute(inner))?;
    Ok(())
}

pub(crate) fn insert_event(conn: &mut DbConnection, new: &NewEvent) -> QueryResult<()> {
    let ev = &new.event;
    diesel::insert_into(crate::schema::event::table)
        .values(EventRow {
            id: &ev.id,
            tenant_id: &ev.tenant,
            name: &ev.name,
            payload: serde_json::Value::Object(ev.data.clone()).to_string(),
            sealed_secret: ev.sealed_secret.as_deref(),
            created_at: naive(ev.created_at),
            expires_at: ev.expires_at.map(naive),
        })
        .execute(conn)?;
    for sink in &new.sinks {
        diesel::insert_into(crate::schema::event_delivery::table)
            .values(DeliveryRow { event_id: &ev.id, sink, attempts: 0, next_attempt_at: naive(ev.created_at) })
            .execute(conn)?;
    }
    Ok(())
}

impl IdentityStore for DieselStore {
    fn find_by_email(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        entity_key: &EntityKey,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        self.first_identity(identities!(
            tenant.as_str(),
            provider.as_str(),
            provider_identity::entity_key.eq(entity_key.as_str())
        ))
    }

    fn find_by_id(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        auth_identity_id: &str,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        let load = || {
            self.first_identity(identities!(tenant.as_str(), provider.as_str(), auth_identity::id.eq(auth_identity_id)))
        };
        match self.identity_cache() {
            Some(cache) => cache.get_or_load(tenant, provider, auth_identity_id, load),
            None => load(),
        }
    }

    fn find_by_id_in_memory(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        auth_identity_id: &str,
    ) -> Option<IdentityRecord> {
        self.identity_cache()?.peek(tenant, provider, auth_identity_id)
    }

    fn create_identity(&self, tenant: &TenantId, n: &NewIdentity) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        let now = naive(n.created_at);
        let metadata = password_metadata(&n.password_hash);
        let app_metadata = serde_json::Value::Object(n.app_metadata.clone()).to_string();
        let identity = AuthIdentityRow {
            id: &n.auth_identity_id,
            tenant_id: tenant.as_str(),
            app_metadata: &app_metadata,
            security_stamp: &n.security_stamp,
            created_at: now,
            updated_at: now,
        };
        let account = ProviderIdentityRow {
            id: &n.provider_identity_id,
            tenant_id: tenant.as_str(),
            auth_identity_id: &n.auth_identity_id,
            provider: n.provider.as_str(),
            entity_id: &n.entity_id,
            entity_key: n.entity_key.as_str(),
            provider_metadata: &metadata,
            user_metadata: "{}",
            created_at: now,
            updated_at: now,
        };
        write_tx(&mut conn, |c| Ok(insert_identity(c, &identity, &account)?))
    }

    fn replace_password_hash_if(
        &self,
        tenant: &TenantId,
        provider_identity_id: &str,
        expected_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let mut conn = self.conn()?;
        let updated = diesel::update(
            provider_identity::table
                .filter(provider_identity::id.eq(provider_identity_id))
                .filter(provider_identity::tenant_id.eq(tenant.as_str()))
                .filter(provider_identity::provider_metadata.eq(password_metadata(expected_hash))),
        )
        .set((
            provider_identity::provider_metadata.eq(password_metadata(new_hash)),
            provider_identity::updated_at.eq(naive(now)),
        ))
        .execute(&mut *conn)
        .map_err(db_error)?;
        drop(conn);
        if updated == 1 {
            self.forget_owner_of(tenant, provider_identity_id)?;
        }
        Ok(updated == 1)
    }

    fn store_reset_token(&self, tenant: &TenantId, token: &NewResetToken, event: &NewEvent) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            put_reset_token(c, tenant, token)?;
            insert_event(c, event)?;
            Ok(())
        })
    }

    fn reset_token_is_live(
        &self,
        tenant: &TenantId,
        token_hash: &HashedToken,
        provider_identity_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let mut conn = self.conn()?;
        let found = password_reset_token::table
            .filter(password_reset_token::token_hash.eq(token_hash.as_str()))
            .filter(password_reset_token::provider_identity_id.eq(provider_identity_id))
            .filter(password_reset_token::tenant_id.eq(tenant.as_str()))
            .filter(password_reset_token::expires_at.gt(naive(now)))
            .select(password_reset_token::id)
            .get_result::<String>(&mut *conn)
            .optional()
            .map_err(db_error)?;
        Ok(found.is_some())
    }

    fn complete_password_reset(
        &self,
        tenant: &TenantId,
        done: &PasswordResetCompletion,
        event: &NewEvent,
    ) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        let now = naive(done.now);
        let done_tx = write_tx(&mut conn, |c| {
            let consumed = diesel::delete(
                password_reset_token::table
                    .filter(password_reset_token::token_hash.eq(done.token_hash.as_str()))
                    .filter(password_reset_token::provider_identity_id.eq(&done.provider_identity_id))
                    .filter(password_reset_token::tenant_id.eq(tenant.as_str()))
                    .filter(password_reset_token::expires_at.gt(now)),
            )
            .execute(c)?;
            if consumed != 1 {
                return Err(TxError::Domain(TokenRejection::Consumed.into()));
            }
            diesel::update(provider_identity::table.filter(provider_identity::id.eq(&done.provider_identity_id)))
                .set((
                    provider_identity::provider_metadata.eq(password_metadata(&done.new_password_hash)),
                    provider_identity::updated_at.eq(now),
                ))
                .execute(c)?;
            set_stamp_and_end_sessions(c, &done.auth_identity_id, &done.new_security_stamp, now)?;
            insert_event(c, event)?;
            Ok(())
        });
        self.forget_identity(tenant.as_str(), &done.auth_identity_id);
        done_tx
    }

    fn revoke_all(
        &self,
        tenant: &TenantId,
        auth_identity_id: &str,
        new_stamp: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        let revoked = write_tx(&mut conn, |c| {
            let found = diesel::update(
                auth_identity::table
                    .filter(auth_identity::id.eq(auth_identity_id))
                    .filter(auth_identity::tenant_id.eq(tenant.as_str())),
            )
            .set(auth_identity::updated_at.eq(naive(now)))
            .execute(c)?;
            if found != 1 {
                return Err(TxError::Domain(TokenRejection::Revoked.into()));
            }
            set_stamp_and_end_sessions(c, auth_identity_id, new_stamp, naive(now))?;
            Ok(())
        });
        self.forget_identity(tenant.as_str(), auth_identity_id);
        revoked
    }

    fn change_password(&self, tenant: &TenantId, change: &PasswordChange, event: &NewEvent) -> Result<bool, AuthError> {
        let mut conn = self.conn()?;
        let now = naive(change.now);
        let changed = write_tx(&mut conn, |c| {
            let swapped = diesel::update(
                provider_identity::table
                    .filter(provider_identity::id.eq(&change.provider_identity_id))
                    .filter(provider_identity::tenant_id.eq(tenant.as_str()))
                    .filter(provider_identity::provider_metadata.eq(password_metadata(&change.expected_hash))),
            )
            .set((
                provider_identity::provider_metadata.eq(password_metadata(&change.new_password_hash)),
                provider_identity::updated_at.eq(now),
            ))
            .execute(c)?;
            if swapped != 1 {
                return Ok(false);
            }
            set_stamp_and_end_sessions(c, &change.auth_identity_id, &change.new_security_stamp, now)?;
            insert_event(c, event)?;
            Ok(true)
        });
        self.forget_identity(tenant.as_str(), &change.auth_identity_id);
        changed
    }
}

/// A new security stamp (revoking every token), the end of every session and of every pending
/// reset token of the identity, inside the caller's transaction.
fn set_stamp_and_end_sessions(
    conn: &mut DbConnection,
    auth_identity_id: &str,
    stamp: &str,
    now: chrono::NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(auth_identity::table.filter(auth_identity::id.eq(auth_identity_id)))
        .set((auth_identity::security_stamp.eq(stamp), auth_identity::updated_at.eq(now)))
        .execute(conn)?;
    diesel::delete(auth_session::table.filter(auth_session::auth_identity_id.eq(auth_identity_id))).execute(conn)?;
    // A reset link asked for before the change must not undo it.
    let accounts = provider_identity::table
        .filter(provider_identity::auth_identity_id.eq(auth_identity_id))
        .select(provider_identity::id);
    diesel::delete(password_reset_token::table.filter(password_reset_token::provider_identity_id.eq_any(accounts)))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use auth_domain::model::{new_id, NewSession};
    use auth_domain::newtypes::ActorType;
    use auth_domain::ports::SessionStore;
    use auth_domain::secret::PlainToken;
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel::Connection;

    use super::*;
    use crate::{DatabaseUrl, PoolSettings};

    /// The lookups every refresh, login and session request runs are prepared once per
    /// connection and then reused, and have no `LIMIT ?` (which makes SQLite recompile them on
    /// every run, cache or not).
    #[test]
    fn hot_lookups_are_prepared_once_and_have_no_bound_limit() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("auth.sqlite"));
        let one = PoolSettings { max_size: 1, connection_timeout: std::time::Duration::from_secs(5) };
        let store = DieselStore::open(&url, &one).unwrap();
        store.run_migrations().unwrap();
        let now = Utc::now();
        let id = new_id("authid");
        let (tenant, emailpass) = (TenantId::default_tenant(), AuthProvider::emailpass());
        let key = EntityKey::new("ann@example.com");
        let new = NewIdentity {
            auth_identity_id: id.clone(),
            provider_identity_id: new_id(""),
            provider: emailpass.clone(),
            entity_id: "ann@example.com".into(),
            entity_key: key.clone(),
            password_hash: "$2b$04$hash".into(),
            security_stamp: "stamp".into(),
            app_metadata: Default::default(),
            created_at: now,
        };
        store.create_identity(&tenant, &new).unwrap();
        let hash = PlainToken::new("h").hashed();
        let session = NewSession {
            session_hash: hash.clone(),
            auth_identity_id: id.clone(),
            actor_type: ActorType::new("customer"),
            auth_provider: emailpass.clone(),
            security_stamp: "stamp".into(),
            created_at: now,
            expires_at: now + chrono::Duration::hours(1),
        };
        store.create_session(&tenant, &session, None).unwrap();

        // Every statement the (only) connection prepares for its cache, from here on.
        let cached = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = cached.clone();
        let record = move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_string());
            }
        };
        store.conn().unwrap().set_instrumentation(Box::new(record) as Box<dyn Instrumentation>);
        for _ in 0..3 {
            assert!(store.find_by_email(&tenant, &emailpass, &key).unwrap().is_some());
            assert!(store.find_by_id(&tenant, &emailpass, &id).unwrap().is_some());
            assert!(store.find_session(&tenant, &hash, now).unwrap().is_some());
        }
        let cached = cached.lock().unwrap();
        let lookups: Vec<&String> = cached.iter().filter(|sql| sql.starts_with("SELECT")).collect();
        assert_eq!(lookups.len(), 3, "each lookup prepared once for the cache: {cached:#?}");
        for sql in lookups {
            assert!(!sql.contains("LIMIT"), "{sql}");
        }
    }
}
