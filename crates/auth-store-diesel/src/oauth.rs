//! `OAuthStore` on diesel: pending sign-ins (`oauth_state`) and the identities of other
//! providers (`auth_identity` + `provider_identity` without a password).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Map, Value};

use auth_domain::model::{NewOAuthState, NewSocialIdentity, OAuthStateRecord};
use auth_domain::newtypes::{ActorType, AuthProvider, TenantId};
use auth_domain::ports::OAuthStore;
use auth_domain::secret::HashedToken;
use auth_domain::AuthError;

use crate::identity::insert_identity;
use crate::rows::{naive, utc, AuthIdentityRow, ProviderIdentityRow};
use crate::schema::{auth_identity, oauth_state, provider_identity};
use crate::tx::{db_error, write_tx, TxError};
use crate::DieselStore;

#[derive(Insertable)]
#[diesel(table_name = oauth_state)]
struct OAuthStateRow<'a> {
    state_hash: &'a str,
    tenant_id: &'a str,
    actor_type: &'a str,
    provider: &'a str,
    nonce_hash: Option<&'a str>,
    pkce_verifier_sealed: &'a str,
    redirect_uri: &'a str,
    link_identity_id: Option<&'a str>,
    created_at: chrono::NaiveDateTime,
    expires_at: chrono::NaiveDateTime,
}

type StateColumns =
    (String, String, Option<String>, String, String, Option<String>, chrono::NaiveDateTime, chrono::NaiveDateTime);

impl OAuthStore for DieselStore {
    fn create_oauth_state(&self, tenant: &TenantId, s: &NewOAuthState) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        diesel::insert_into(oauth_state::table)
            .values(OAuthStateRow {
                state_hash: s.state_hash.as_str(),
                tenant_id: tenant.as_str(),
                actor_type: s.actor_type.as_str(),
                provider: s.provider.as_str(),
                nonce_hash: s.nonce_hash.as_deref(),
                pkce_verifier_sealed: &s.pkce_verifier_sealed,
                redirect_uri: &s.redirect_uri,
                link_identity_id: s.link_identity_id.as_deref(),
                created_at: naive(s.created_at),
                expires_at: naive(s.expires_at),
            })
            .execute(&mut *conn)
            .map_err(db_error)?;
        Ok(())
    }

    fn take_oauth_state(
        &self,
        tenant: &TenantId,
        state_hash: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthStateRecord>, AuthError> {
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            let mine = oauth_state::table
                .filter(oauth_state::state_hash.eq(state_hash.as_str()))
                .filter(oauth_state::tenant_id.eq(tenant.as_str()));
            let found = mine
                .select((
                    oauth_state::actor_type,
                    oauth_state::provider,
                    oauth_state::nonce_hash,
                    oauth_state::pkce_verifier_sealed,
                    oauth_state::redirect_uri,
                    oauth_state::link_identity_id,
                    oauth_state::created_at,
                    oauth_state::expires_at,
                ))
                .get_result::<StateColumns>(c)
                .optional()?;
            let Some((
                actor_type,
                provider,
                nonce_hash,
                sealed,
                redirect_uri,
                link_identity_id,
                created_at,
                expires_at,
            )) = found
            else {
                return Ok(None);
            };
            // The delete decides: of concurrent callbacks with one state, one deletes the row.
            if diesel::delete(mine).execute(c)? != 1 || expires_at <= naive(now) {
                return Ok(None);
            }
            Ok(Some(NewOAuthState {
                state_hash: state_hash.clone(),
                actor_type: ActorType::new(actor_type),
                provider: AuthProvider::new(provider),
                nonce_hash,
                pkce_verifier_sealed: sealed,
                redirect_uri,
                link_identity_id,
                created_at: utc(created_at),
                expires_at: utc(expires_at),
            }))
        })
    }

    fn create_social_identity(&self, tenant: &TenantId, n: &NewSocialIdentity) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        let now = naive(n.created_at);
        let user_metadata = Value::Object(n.user_metadata.clone()).to_string();
        let identity = AuthIdentityRow {
            id: &n.auth_identity_id,
            tenant_id: tenant.as_str(),
            app_metadata: "{}",
            security_stamp: &n.security_stamp,
            created_at: now,
            updated_at: now,
        };
        let account = social_row(tenant, n, &user_metadata);
        write_tx(&mut conn, |c| Ok(insert_identity(c, &identity, &account)?))
    }

    fn attach_social_identity(&self, tenant: &TenantId, n: &NewSocialIdentity) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        let user_metadata = Value::Object(n.user_metadata.clone()).to_string();
        let account = social_row(tenant, n, &user_metadata);
        write_tx(&mut conn, |c| {
            // Only an identity of this tenant, and one provider identity per provider in it.
            let owner = auth_identity::table
                .filter(auth_identity::id.eq(&n.auth_identity_id))
                .filter(auth_identity::tenant_id.eq(tenant.as_str()))
                .select(auth_identity::id)
                .get_result::<String>(c)
                .optional()?;
            let has_one = provider_identity::table
                .filter(provider_identity::auth_identity_id.eq(&n.auth_identity_id))
                .filter(provider_identity::provider.eq(n.provider.as_str()))
                .select(provider_identity::id)
                .get_result::<String>(c)
                .optional()?;
            if owner.is_none() || has_one.is_some() {
                return Err(TxError::Domain(AuthError::Duplicate("the identity cannot take this provider".into())));
            }
            diesel::insert_into(provider_identity::table).values(&account).execute(c)?;
            Ok(())
        })
    }

    fn update_user_metadata(
        &self,
        tenant: &TenantId,
        provider_identity_id: &str,
        user_metadata: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        diesel::update(
            provider_identity::table
                .filter(provider_identity::id.eq(provider_identity_id))
                .filter(provider_identity::tenant_id.eq(tenant.as_str())),
        )
        .set((
            provider_identity::user_metadata.eq(Value::Object(user_metadata.clone()).to_string()),
            provider_identity::updated_at.eq(naive(now)),
        ))
        .execute(&mut *conn)
        .map_err(db_error)?;
        drop(conn);
        self.forget_owner_of(tenant, provider_identity_id)
    }
}

/// The provider identity of a social sign-in: the subject is both the id the provider gave and
/// the lookup key; no password.
fn social_row<'a>(tenant: &'a TenantId, n: &'a NewSocialIdentity, user_metadata: &'a str) -> ProviderIdentityRow<'a> {
    let now = naive(n.created_at);
    ProviderIdentityRow {
        id: &n.provider_identity_id,
        tenant_id: tenant.as_str(),
        auth_identity_id: &n.auth_identity_id,
        provider: n.provider.as_str(),
        entity_id: n.subject.as_str(),
        entity_key: n.subject.as_str(),
        provider_metadata: "{}",
        user_metadata,
        created_at: now,
        updated_at: now,
    }
}
