//! The records the use cases read and write.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The tenant every row belongs to until tenancy is built.
pub const DEFAULT_TENANT: &str = "default";

/// The one provider: email and password.
pub const EMAILPASS: &str = "emailpass";

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
    pub provider: String,
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
    pub fn actor_id(&self, actor_type: &str) -> String {
        self.app_metadata
            .get(&format!("{actor_type}_id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// Whether no actor of any type is linked yet.
    pub fn has_no_actor(&self) -> bool {
        self.app_metadata
            .values()
            .all(|v| v.is_null() || v.as_str() == Some(""))
    }
}

/// A new identity with its email/password provider identity.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub tenant: String,
    pub auth_identity_id: String,
    pub provider_identity_id: String,
    pub provider: String,
    pub entity_id: String,
    pub entity_key: String,
    pub password_hash: String,
    pub security_stamp: String,
    pub created_at: DateTime<Utc>,
}

/// A reset token awaiting use: only the hash of its `jti` is stored.
#[derive(Debug, Clone)]
pub struct NewResetToken {
    pub id: String,
    pub provider_identity_id: String,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// What `/update` commits at once: the reset token consumed, the new hash, the new stamp.
#[derive(Debug, Clone)]
pub struct PasswordResetCompletion {
    pub token_hash: String,
    pub auth_identity_id: String,
    pub provider_identity_id: String,
    pub new_password_hash: String,
    pub new_security_stamp: String,
    pub now: DateTime<Utc>,
}
