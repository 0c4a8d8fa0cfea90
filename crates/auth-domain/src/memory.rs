//! In-memory implementations of the store ports, for the domain's unit tests.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::Map;

use crate::event::{NewEvent, StoredEvent};
use crate::model::{IdentityRecord, NewIdentity, NewResetToken, PasswordResetCompletion};
use crate::ports::{EventOutbox, IdentityStore, PendingDelivery};
use crate::{AuthError, TokenRejection};

#[derive(Debug, Clone)]
pub struct Delivery {
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered: bool,
    pub expired: bool,
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
pub struct State {
    /// provider identity id -> (key, record)
    pub identities: HashMap<String, (String, IdentityRecord)>,
    /// provider identity id -> (token hash, expires_at)
    pub reset_tokens: HashMap<String, (String, DateTime<Utc>)>,
    pub events: Vec<StoredEvent>,
    /// (event id, sink) -> delivery
    pub deliveries: Vec<((String, String), Delivery)>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    pub state: Mutex<State>,
}

impl MemoryStore {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn write_event(&mut self, event: &NewEvent) {
        self.events.push(event.event.clone());
        for sink in &event.sinks {
            self.deliveries.push((
                (event.event.id.clone(), sink.clone()),
                Delivery {
                    attempts: 0,
                    next_attempt_at: event.event.created_at,
                    delivered: false,
                    expired: false,
                    last_error: None,
                },
            ));
        }
    }

    fn delivery(&mut self, event_id: &str, sink: &str) -> Option<&mut Delivery> {
        self.deliveries
            .iter_mut()
            .find(|((e, s), _)| e == event_id && s == sink)
            .map(|(_, d)| d)
    }
}

impl IdentityStore for MemoryStore {
    fn find_by_email(
        &self,
        _tenant: &str,
        provider: &str,
        entity_key: &str,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        Ok(self
            .lock()
            .identities
            .values()
            .find(|(k, r)| k == entity_key && r.provider == provider)
            .map(|(_, r)| r.clone()))
    }

    fn find_by_id(
        &self,
        _tenant: &str,
        auth_identity_id: &str,
        provider: &str,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        Ok(self
            .lock()
            .identities
            .values()
            .find(|(_, r)| r.auth_identity_id == auth_identity_id && r.provider == provider)
            .map(|(_, r)| r.clone()))
    }

    fn create_identity(&self, n: &NewIdentity) -> Result<(), AuthError> {
        let mut state = self.lock();
        if state
            .identities
            .values()
            .any(|(k, r)| *k == n.entity_key && r.provider == n.provider)
        {
            return Err(AuthError::Duplicate("identity exists".into()));
        }
        let record = IdentityRecord {
            auth_identity_id: n.auth_identity_id.clone(),
            provider_identity_id: n.provider_identity_id.clone(),
            provider: n.provider.clone(),
            entity_id: n.entity_id.clone(),
            password_hash: n.password_hash.clone(),
            app_metadata: Map::new(),
            user_metadata: Map::new(),
            security_stamp: n.security_stamp.clone(),
        };
        state
            .identities
            .insert(n.provider_identity_id.clone(), (n.entity_key.clone(), record));
        Ok(())
    }

    fn replace_password_hash_if(
        &self,
        _t: &str,
        pid: &str,
        expected: &str,
        new: &str,
        _now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let mut state = self.lock();
        match state.identities.get_mut(pid) {
            Some((_, r)) if r.password_hash == expected => {
                r.password_hash = new.into();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn store_reset_token(&self, _t: &str, token: &NewResetToken, event: &NewEvent) -> Result<(), AuthError> {
        let mut state = self.lock();
        state.reset_tokens.insert(
            token.provider_identity_id.clone(),
            (token.token_hash.clone(), token.expires_at),
        );
        state.write_event(event);
        Ok(())
    }

    fn reset_token_is_live(&self, _t: &str, hash: &str, pid: &str, now: DateTime<Utc>) -> Result<bool, AuthError> {
        Ok(self
            .lock()
            .reset_tokens
            .get(pid)
            .is_some_and(|(h, exp)| h == hash && *exp > now))
    }

    fn complete_password_reset(
        &self,
        _t: &str,
        c: &PasswordResetCompletion,
        event: &NewEvent,
    ) -> Result<(), AuthError> {
        let mut state = self.lock();
        let live = state
            .reset_tokens
            .get(&c.provider_identity_id)
            .is_some_and(|(h, exp)| *h == c.token_hash && *exp > c.now);
        if !live {
            return Err(TokenRejection::Consumed.into());
        }
        state.reset_tokens.remove(&c.provider_identity_id);
        let (_, record) = state
            .identities
            .get_mut(&c.provider_identity_id)
            .ok_or_else(|| AuthError::Unexpected("no identity".into()))?;
        record.password_hash = c.new_password_hash.clone();
        record.security_stamp = c.new_security_stamp.clone();
        state.write_event(event);
        Ok(())
    }
}

impl EventOutbox for MemoryStore {
    fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<PendingDelivery>, AuthError> {
        let state = self.lock();
        Ok(state
            .deliveries
            .iter()
            .filter(|(_, d)| !d.delivered && !d.expired && d.next_attempt_at <= now)
            .take(limit)
            .filter_map(|((event_id, sink), d)| {
                let event = state.events.iter().find(|e| e.id == *event_id)?.clone();
                Some(PendingDelivery {
                    event,
                    sink: sink.clone(),
                    attempts: d.attempts,
                })
            })
            .collect())
    }

    fn record_delivered(&self, event_id: &str, sink: &str, _now: DateTime<Utc>) -> Result<(), AuthError> {
        if let Some(d) = self.lock().delivery(event_id, sink) {
            d.delivered = true;
            d.attempts += 1;
        }
        Ok(())
    }

    fn record_failure(&self, event_id: &str, sink: &str, error: &str, next: DateTime<Utc>) -> Result<(), AuthError> {
        if let Some(d) = self.lock().delivery(event_id, sink) {
            d.attempts += 1;
            d.last_error = Some(error.into());
            d.next_attempt_at = next;
        }
        Ok(())
    }

    fn record_expired(&self, event_id: &str, sink: &str, _now: DateTime<Utc>) -> Result<(), AuthError> {
        if let Some(d) = self.lock().delivery(event_id, sink) {
            d.expired = true;
        }
        Ok(())
    }

    fn erase_settled_secrets(&self, now: DateTime<Utc>) -> Result<usize, AuthError> {
        let mut state = self.lock();
        let settled: Vec<String> = state
            .events
            .iter()
            .filter(|e| e.sealed_secret.is_some())
            .filter(|e| {
                e.is_expired(now)
                    || state
                        .deliveries
                        .iter()
                        .filter(|((id, _), _)| *id == e.id)
                        .all(|(_, d)| d.delivered || d.expired)
            })
            .map(|e| e.id.clone())
            .collect();
        for event in state.events.iter_mut().filter(|e| settled.contains(&e.id)) {
            event.sealed_secret = None;
        }
        Ok(settled.len())
    }
}
