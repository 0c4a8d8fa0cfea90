//! The records the use cases read and write.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::newtypes::{ActorType, AuthProvider, EntityKey, TenantId};
use crate::secret::HashedToken;

/// A new id: `prefix_<ULID>`, or a bare ULID for an empty prefix.
pub fn new_id(prefix: &str) -> String {
    let ulid = ulid::Ulid::new();
    if prefix.is_empty() {
        ulid.to_string()
    } else {
        format!("{prefix}_{ulid}")
    }
}

/// An auth identity seen through one of its provider identities.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRecord {
    pub auth_identity_id: String,
    pub provider_identity_id: String,
    pub provider: AuthProvider,
    /// The address as first registered.
    pub entity_id: String,
    pub password_hash: String,
    pub app_metadata: Map<String, Value>,
    pub user_metadata: Map<String, Value>,
    pub security_stamp: String,
}

impl IdentityRecord {
    /// The id of the actor of `actor_type` linked to this identity (`app_metadata.<actor>_id`),
    /// or `""` when there is none yet.
    pub fn actor_id(&self, actor_type: &ActorType) -> String {
        self.app_metadata.get(&format!("{actor_type}_id")).and_then(Value::as_str).unwrap_or_default().to_string()
    }

    /// Whether no actor of any type is linked yet.
    pub fn has_no_actor(&self) -> bool {
        self.app_metadata.values().all(|v| v.is_null() || v.as_str() == Some(""))
    }
}

/// A new identity with its email/password provider identity (of the tenant the store is given).
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub auth_identity_id: String,
    pub provider_identity_id: String,
    pub provider: AuthProvider,
    pub entity_id: String,
    pub entity_key: EntityKey,
    pub password_hash: String,
    pub security_stamp: String,
    /// Actors linked from the start (`user_id` for an admin user created from the CLI).
    pub app_metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
}

/// A reset token awaiting use: only the hash of its `jti` is stored.
#[derive(Debug, Clone)]
pub struct NewResetToken {
    pub id: String,
    pub provider_identity_id: String,
    pub token_hash: HashedToken,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A password reset request as reset-password records it before answering: whose (`sealed`:
/// the identifier and the metadata, sealed with the context `reset-request:<id>`), for which
/// tenant, actor type and provider. A worker fulfils it (`ResetRequestStore`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub id: String,
    pub tenant: TenantId,
    pub actor_type: ActorType,
    pub provider: AuthProvider,
    pub sealed: String,
    pub created_at: DateTime<Utc>,
}

/// What `/update` commits at once: the reset token consumed, the new hash, the new stamp.
#[derive(Debug, Clone)]
pub struct PasswordResetCompletion {
    pub token_hash: HashedToken,
    pub auth_identity_id: String,
    pub provider_identity_id: String,
    pub new_password_hash: String,
    pub new_security_stamp: String,
    pub now: DateTime<Utc>,
}

/// What change-password commits at once: the hash (only over the one verified), the new
/// stamp, and the end of every session.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    pub auth_identity_id: String,
    pub provider_identity_id: String,
    pub expected_hash: String,
    pub new_password_hash: String,
    pub new_security_stamp: String,
    pub now: DateTime<Utc>,
}

/// A cookie session: only the SHA-256 of its id is stored. It names the identity and the actor
/// type, not a snapshot: the actor is read on each request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub session_hash: HashedToken,
    pub auth_identity_id: String,
    pub actor_type: ActorType,
    pub auth_provider: AuthProvider,
    pub security_stamp: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A live session and the identity it belongs to, as they are now.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub actor_type: ActorType,
    pub auth_provider: AuthProvider,
    /// The stamp when the session opened; the session ends when the identity's differs.
    pub security_stamp: String,
    pub identity: IdentityRecord,
}

/// A customer account, with Medusa's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub has_account: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The customer fields a storefront sets: absent leaves a field as it is (`None`), `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFields {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub metadata: Option<Option<Map<String, Value>>>,
}

impl CustomerFields {
    /// Applies the changes to `customer`.
    pub fn apply(&self, customer: &mut Customer) {
        fn set<T: Clone>(target: &mut T, change: &Option<T>) {
            if let Some(value) = change {
                *target = value.clone();
            }
        }
        set(&mut customer.first_name, &self.first_name);
        set(&mut customer.last_name, &self.last_name);
        set(&mut customer.phone, &self.phone);
        set(&mut customer.company_name, &self.company_name);
        set(&mut customer.metadata, &self.metadata);
    }
}

/// A pending sign-in with another provider: only hashes of its `state` and `nonce` are stored,
/// and its PKCE verifier sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOAuthState {
    pub state_hash: HashedToken,
    pub actor_type: ActorType,
    pub provider: AuthProvider,
    /// SHA-256 of the OpenID `nonce` (none for GitHub).
    pub nonce_hash: Option<String>,
    /// The PKCE verifier, sealed (`SecretBox`, context `oauth_state::sealing_context`).
    pub pkce_verifier_sealed: String,
    /// The `redirect_uri` sent, which the token request must repeat.
    pub redirect_uri: String,
    /// The auth identity a linking sign-in joins the provider to (`/link`); `None` for a sign-in.
    pub link_identity_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A pending sign-in taken back by its callback.
pub type OAuthStateRecord = NewOAuthState;

/// A new identity of another provider: `entity_id` and `entity_key` are the provider's subject.
#[derive(Debug, Clone)]
pub struct NewSocialIdentity {
    pub auth_identity_id: String,
    pub provider_identity_id: String,
    pub provider: AuthProvider,
    pub subject: EntityKey,
    pub user_metadata: Map<String, Value>,
    pub security_stamp: String,
    pub created_at: DateTime<Utc>,
}
