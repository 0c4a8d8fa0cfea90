//! `SessionStore` on diesel.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use auth_domain::model::{NewSession, SessionRecord};
use auth_domain::newtypes::{ActorType, AuthProvider, TenantId};
use auth_domain::ports::SessionStore;
use auth_domain::secret::HashedToken;
use auth_domain::AuthError;

use crate::rows::{identity_columns, identity_record, naive, IdentityColumns, SessionRow};
use crate::schema::{auth_identity, auth_session, provider_identity};
use crate::tx::{db_error, write_tx};
use crate::DieselStore;

impl SessionStore for DieselStore {
    fn create_session(
        &self,
        tenant: &TenantId,
        s: &NewSession,
        replaces: Option<&HashedToken>,
    ) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        let tenant = tenant.as_str();
        write_tx(&mut conn, |c| {
            if let Some(old) = replaces {
                diesel::delete(
                    auth_session::table
                        .filter(auth_session::id.eq(old.as_str()))
                        .filter(auth_session::tenant_id.eq(tenant)),
                )
                .execute(c)?;
            }
            diesel::insert_into(auth_session::table)
                .values(SessionRow {
                    id: s.session_hash.as_str(),
                    tenant_id: tenant,
                    auth_identity_id: &s.auth_identity_id,
                    actor_type: s.actor_type.as_str(),
                    auth_provider: s.auth_provider.as_str(),
                    security_stamp: &s.security_stamp,
                    created_at: naive(s.created_at),
                    expires_at: naive(s.expires_at),
                })
                .execute(c)?;
            Ok(())
        })
    }

    fn find_session(
        &self,
        tenant: &TenantId,
        session_hash: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, AuthError> {
        let mut conn = self.conn()?;
        let row = auth_session::table
            .inner_join(auth_identity::table.inner_join(provider_identity::table))
            .filter(auth_session::id.eq(session_hash.as_str()))
            .filter(auth_session::tenant_id.eq(tenant.as_str()))
            .filter(auth_session::expires_at.gt(naive(now)))
            .filter(provider_identity::provider.eq(auth_session::auth_provider))
            .select((
                auth_session::actor_type,
                auth_session::auth_provider,
                auth_session::security_stamp,
                identity_columns(),
            ))
            .get_result::<(String, String, String, IdentityColumns)>(&mut *conn)
            .optional()
            .map_err(db_error)?;
        row.map(|(actor_type, auth_provider, security_stamp, identity)| {
            Ok(SessionRecord {
                actor_type: ActorType::new(actor_type),
                auth_provider: AuthProvider::new(auth_provider),
                security_stamp,
                identity: identity_record(identity)?,
            })
        })
        .transpose()
    }

    fn delete_session(&self, tenant: &TenantId, session_hash: &HashedToken) -> Result<bool, AuthError> {
        let mut conn = self.conn()?;
        let deleted = diesel::delete(
            auth_session::table
                .filter(auth_session::id.eq(session_hash.as_str()))
                .filter(auth_session::tenant_id.eq(tenant.as_str())),
        )
        .execute(&mut *conn)
        .map_err(db_error)?;
        Ok(deleted == 1)
    }
}
