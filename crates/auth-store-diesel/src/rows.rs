//! Row types and the conversions between rows and domain records.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::{Map, Value};

use auth_domain::event::StoredEvent;
use auth_domain::keys::{KeyAlgorithm, KeyState, SigningKeyRecord};
use auth_domain::model::IdentityRecord;
use auth_domain::newtypes::{AuthProvider, TenantId};
use auth_domain::ports::TenantRecord;
use auth_domain::tenant::TenantStatus;
use auth_domain::AuthError;

use crate::schema::{auth_identity, event, event_delivery, password_reset_token, provider_identity};

/// Stored times have microsecond precision on both backends.
pub(crate) fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.trunc_subsecs(6).naive_utc()
}

pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// `provider_metadata` of an email/password identity: `{"password": "<bcrypt hash>"}`.
pub(crate) fn password_metadata(hash: &str) -> String {
    serde_json::json!({ "password": hash }).to_string()
}

pub(crate) fn json_map(text: &str) -> Result<Map<String, Value>, AuthError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(AuthError::Unexpected("a stored JSON column is not an object".into())),
        Err(e) => Err(AuthError::unexpected("reading a stored JSON column", e)),
    }
}

#[derive(Insertable)]
#[diesel(table_name = auth_identity)]
pub(crate) struct AuthIdentityRow<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub app_metadata: &'a str,
    pub security_stamp: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = provider_identity)]
pub(crate) struct ProviderIdentityRow<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub auth_identity_id: &'a str,
    pub provider: &'a str,
    pub entity_id: &'a str,
    pub entity_key: &'a str,
    pub provider_metadata: &'a str,
    pub user_metadata: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = password_reset_token)]
pub(crate) struct ResetTokenRow<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub provider_identity_id: &'a str,
    pub token_hash: &'a str,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = event)]
pub(crate) struct EventRow<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub name: &'a str,
    pub payload: String,
    pub sealed_secret: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = event_delivery)]
pub(crate) struct DeliveryRow<'a> {
    pub event_id: &'a str,
    pub sink: &'a str,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
}

/// The columns of an identity seen through a provider identity.
pub(crate) type IdentityColumns = (String, String, String, String, String, String, String, String);

pub(crate) type IdentitySelection = (
    auth_identity::id,
    provider_identity::id,
    provider_identity::provider,
    provider_identity::entity_id,
    provider_identity::provider_metadata,
    auth_identity::app_metadata,
    provider_identity::user_metadata,
    auth_identity::security_stamp,
);

pub(crate) fn identity_columns() -> IdentitySelection {
    (
        auth_identity::id,
        provider_identity::id,
        provider_identity::provider,
        provider_identity::entity_id,
        provider_identity::provider_metadata,
        auth_identity::app_metadata,
        provider_identity::user_metadata,
        auth_identity::security_stamp,
    )
}

pub(crate) fn identity_record(row: IdentityColumns) -> Result<IdentityRecord, AuthError> {
    let (auth_identity_id, provider_identity_id, provider, entity_id, provider_metadata, app, user, security_stamp) =
        row;
    let password_hash =
        json_map(&provider_metadata)?.get("password").and_then(Value::as_str).map(str::to_string).unwrap_or_default();
    Ok(IdentityRecord {
        auth_identity_id,
        provider_identity_id,
        provider: AuthProvider::new(provider),
        entity_id,
        password_hash,
        app_metadata: json_map(&app)?,
        user_metadata: json_map(&user)?,
        security_stamp,
    })
}

/// The columns of an event.
pub(crate) type EventColumns = (String, String, String, String, Option<String>, NaiveDateTime, Option<NaiveDateTime>);

pub(crate) fn stored_event(row: EventColumns) -> Result<StoredEvent, AuthError> {
    let (id, tenant, name, payload, sealed_secret, created_at, expires_at) = row;
    Ok(StoredEvent {
        id,
        tenant,
        name,
        data: json_map(&payload)?,
        sealed_secret,
        created_at: utc(created_at),
        expires_at: expires_at.map(utc),
    })
}

#[derive(Insertable)]
#[diesel(table_name = crate::schema::auth_session)]
pub(crate) struct SessionRow<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub auth_identity_id: &'a str,
    pub actor_type: &'a str,
    pub auth_provider: &'a str,
    pub security_stamp: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = crate::schema::customer)]
pub(crate) struct CustomerRow {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub metadata: Option<String>,
    pub has_account: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

/// The changes of a customer update: `None` leaves a column, `Some(None)` sets it NULL.
#[derive(AsChangeset)]
#[diesel(table_name = crate::schema::customer)]
pub(crate) struct CustomerChanges {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub metadata: Option<Option<String>>,
    pub updated_at: NaiveDateTime,
}

fn metadata_text(metadata: &Option<Map<String, Value>>) -> Option<String> {
    metadata.as_ref().map(|m| Value::Object(m.clone()).to_string())
}

impl CustomerRow {
    pub(crate) fn new(tenant: &str, c: &auth_domain::model::Customer) -> CustomerRow {
        CustomerRow {
            id: c.id.clone(),
            tenant_id: tenant.into(),
            email: c.email.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            phone: c.phone.clone(),
            company_name: c.company_name.clone(),
            metadata: metadata_text(&c.metadata),
            has_account: c.has_account,
            created_at: naive(c.created_at),
            updated_at: naive(c.updated_at),
            deleted_at: c.deleted_at.map(naive),
        }
    }

    pub(crate) fn into_customer(self) -> Result<auth_domain::model::Customer, AuthError> {
        Ok(auth_domain::model::Customer {
            id: self.id,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            phone: self.phone,
            company_name: self.company_name,
            metadata: self.metadata.as_deref().map(json_map).transpose()?,
            has_account: self.has_account,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            deleted_at: self.deleted_at.map(utc),
        })
    }
}

impl CustomerChanges {
    pub(crate) fn new(f: &auth_domain::model::CustomerFields, now: DateTime<Utc>) -> CustomerChanges {
        CustomerChanges {
            first_name: f.first_name.clone(),
            last_name: f.last_name.clone(),
            phone: f.phone.clone(),
            company_name: f.company_name.clone(),
            metadata: f.metadata.as_ref().map(metadata_text),
            updated_at: naive(now),
        }
    }
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = crate::schema::tenant)]
pub(crate) struct TenantRow {
    pub id: String,
    pub status: String,
    pub settings: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub revision: i64,
}

/// The changes of a tenant update: `None` leaves a column.
#[derive(AsChangeset)]
#[diesel(table_name = crate::schema::tenant)]
pub(crate) struct TenantChanges {
    pub status: Option<&'static str>,
    pub settings: Option<String>,
    pub updated_at: NaiveDateTime,
    pub revision: i64,
}

/// A tenant's settings as stored: a JSON object of strings.
pub(crate) fn settings_text(settings: &BTreeMap<String, String>) -> Result<String, AuthError> {
    serde_json::to_string(settings).map_err(|e| AuthError::unexpected("writing a tenant's settings", e))
}

impl TenantRow {
    pub(crate) fn into_record(self) -> Result<TenantRecord, AuthError> {
        let status = TenantStatus::parse(&self.status)
            .ok_or_else(|| AuthError::Unexpected("a stored tenant status is neither active nor disabled".into()))?;
        let settings: BTreeMap<String, String> = serde_json::from_str(&self.settings)
            .map_err(|e| AuthError::unexpected("reading a tenant's stored settings", e))?;
        Ok(TenantRecord {
            id: TenantId::new(self.id),
            status,
            settings,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            revision: self.revision,
        })
    }
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = crate::schema::signing_key)]
pub(crate) struct SigningKeyRow {
    pub kid: String,
    pub tenant_id: String,
    pub algorithm: String,
    pub state: String,
    pub private_sealed: String,
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    pub state_since: NaiveDateTime,
}

/// A signing key's state as stored.
pub(crate) fn key_state(text: &str) -> Result<KeyState, AuthError> {
    KeyState::parse(text)
        .ok_or_else(|| AuthError::Unexpected("a stored signing key's state is not next, active or retired".into()))
}

impl SigningKeyRow {
    pub(crate) fn new(key: &SigningKeyRecord) -> SigningKeyRow {
        SigningKeyRow {
            kid: key.kid.clone(),
            tenant_id: key.tenant.as_str().to_string(),
            algorithm: key.algorithm.as_str().to_string(),
            state: key.state.as_str().to_string(),
            private_sealed: key.private_sealed.clone(),
            public_jwk: key.public_jwk.clone(),
            created_at: naive(key.created_at),
            state_since: naive(key.state_since),
        }
    }

    pub(crate) fn into_record(self) -> Result<SigningKeyRecord, AuthError> {
        let algorithm = KeyAlgorithm::parse(&self.algorithm).ok_or_else(|| {
            AuthError::Unexpected("a stored signing key's algorithm is neither EdDSA nor ES256".into())
        })?;
        let state = key_state(&self.state)?;
        Ok(SigningKeyRecord {
            tenant: TenantId::new(self.tenant_id),
            kid: self.kid,
            algorithm,
            state,
            private_sealed: self.private_sealed,
            public_jwk: self.public_jwk,
            created_at: utc(self.created_at),
            state_since: utc(self.state_since),
        })
    }
}
