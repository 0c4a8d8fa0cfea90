//! Domain events, the envelope every sink receives, and their stored form.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::secret::SecretBox;
use crate::token::ResetClaims;
use crate::AuthError;

pub const PASSWORD_RESET: &str = "auth.password_reset";
pub const PASSWORD_CHANGED: &str = "auth.password_changed";

/// An event as it is written to the outbox, in the transaction of the change that causes it.
/// `data` holds `"token": null` where a secret belongs; the secret itself is in
/// `sealed_secret`, encrypted and bound to the event id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub data: Map<String, Value>,
    pub sealed_secret: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the secret inside stops being useful: the event is not delivered after it.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An event to write, with one delivery per sink.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: StoredEvent,
    pub sinks: Vec<String>,
}

/// What every sink receives (design §6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub created_at: String,
    pub data: Map<String, Value>,
}

impl StoredEvent {
    /// `auth.password_reset` with Medusa's payload for the reset token `token` whose claims are
    /// `claims`; the token is sealed, and the event expires with it.
    pub fn password_reset(
        secrets: &SecretBox,
        claims: &ResetClaims,
        token: &str,
        metadata: Map<String, Value>,
        created_at: DateTime<Utc>,
    ) -> Result<StoredEvent, AuthError> {
        let id = crate::model::new_id("evt");
        let sealed = secrets.seal(token, &id)?;
        let data = json_object(json!({
            "entity_id": claims.entity_id,
            "actor_type": claims.actor_type,
            "token": null,
            "metadata": metadata,
        }));
        Ok(StoredEvent {
            id,
            tenant: claims.tenant.clone(),
            name: PASSWORD_RESET.into(),
            data,
            sealed_secret: Some(sealed),
            created_at,
            expires_at: DateTime::from_timestamp(claims.exp, 0),
        })
    }

    /// `auth.password_changed`, so a notification can tell the customer.
    pub fn password_changed(tenant: &str, entity_id: &str, actor_type: &str, created_at: DateTime<Utc>) -> StoredEvent {
        StoredEvent {
            id: crate::model::new_id("evt"),
            tenant: tenant.into(),
            name: PASSWORD_CHANGED.into(),
            data: json_object(json!({ "entity_id": entity_id, "actor_type": actor_type })),
            sealed_secret: None,
            created_at,
            expires_at: None,
        }
    }

    /// The envelope with the secret decrypted into `data.token`.
    pub fn envelope(&self, secrets: &SecretBox) -> Result<Envelope, AuthError> {
        let mut data = self.data.clone();
        if let Some(sealed) = &self.sealed_secret {
            data.insert("token".into(), Value::String(secrets.open(sealed, &self.id)?));
        } else if data.contains_key("token") {
            return Err(AuthError::Unexpected(format!("event {} lost its secret before delivery", self.id)));
        }
        Ok(Envelope {
            id: self.id.clone(),
            name: self.name.clone(),
            tenant: self.tenant.clone(),
            created_at: self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            data,
        })
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

fn json_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset_claims(now: DateTime<Utc>) -> ResetClaims {
        ResetClaims {
            entity_id: "A@b.c".into(),
            provider: "emailpass".into(),
            actor_type: "customer".into(),
            purpose: "reset".into(),
            tenant: "default".into(),
            jti: "j".into(),
            iat: now.timestamp(),
            exp: now.timestamp() + 900,
            nbf: None,
        }
    }

    #[test]
    fn the_stored_form_holds_no_token_and_the_envelope_restores_it() {
        let secrets = SecretBox::new(b"k", &[]);
        let now = Utc::now();
        let ev = StoredEvent::password_reset(&secrets, &reset_claims(now), "tok.en.x", Map::new(), now).unwrap();
        assert_eq!(ev.data["token"], Value::Null);
        assert!(!serde_json::to_string(&ev.data).unwrap().contains("tok.en.x"));
        let env = ev.envelope(&secrets).unwrap();
        assert_eq!(env.data["token"], "tok.en.x");
        let keys: Vec<&String> = env.data.keys().collect();
        assert_eq!(keys, ["entity_id", "actor_type", "token", "metadata"]);
        assert!(env.id.starts_with("evt_"));
        assert!(env.created_at.ends_with('Z') && env.created_at.contains('.'));
    }
}
