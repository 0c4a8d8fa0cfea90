//! In-memory implementations of the store ports, for the domain's unit tests.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde_json::Map;

use crate::event::{NewEvent, StoredEvent};
use crate::model::{
    Customer, CustomerFields, IdentityRecord, NewIdentity, NewOAuthState, NewResetToken, NewSession, NewSocialIdentity,
    PasswordChange, PasswordResetCompletion, ResetRequest, SessionRecord,
};
use crate::newtypes::{AuthProvider, EntityKey, TenantId};
use crate::ports::{
    CustomerStore, DeliveryStatus, DeliveryView, EventOutbox, Housekeeping, IdentityStore, OAuthStore, PendingDelivery,
    PurgeReport, ResetRequestStore, SessionStore,
};
use crate::secret::HashedToken;
use crate::{AuthError, TokenRejection};

#[derive(Debug, Clone)]
pub struct Delivery {
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub delivered: bool,
    pub expired: bool,
    pub dead: bool,
    pub last_error: Option<String>,
}

impl Delivery {
    fn status(&self) -> DeliveryStatus {
        DeliveryStatus::of(self.delivered, self.expired, self.dead, self.attempts)
    }

    fn settle(&mut self) {
        self.locked_until = None;
    }
}

#[derive(Debug, Default)]
pub struct State {
    /// provider identity id -> (key, record)
    pub identities: HashMap<String, (EntityKey, IdentityRecord)>,
    /// provider identity id -> (token hash, expires_at)
    pub reset_tokens: HashMap<String, (HashedToken, DateTime<Utc>)>,
    pub events: Vec<StoredEvent>,
    /// (event id, sink) -> delivery
    pub deliveries: Vec<((String, String), Delivery)>,
    /// session hash -> session
    pub sessions: HashMap<HashedToken, NewSession>,
    pub customers: HashMap<String, Customer>,
    /// state hash -> pending sign-in
    pub oauth_states: HashMap<HashedToken, NewOAuthState>,
    /// Pending reset requests, with the end of their lease.
    pub reset_requests: Vec<(ResetRequest, Option<DateTime<Utc>>)>,
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
    pub(crate) fn write_event(&mut self, event: &NewEvent) {
        self.events.push(event.event.clone());
        for sink in &event.sinks {
            self.deliveries.push((
                (event.event.id.clone(), sink.clone()),
                Delivery {
                    attempts: 0,
                    next_attempt_at: event.event.created_at,
                    locked_until: None,
                    delivered: false,
                    expired: false,
                    dead: false,
                    last_error: None,
                },
            ));
        }
    }

    fn identity_mut(&mut self, auth_identity_id: &str) -> Option<&mut IdentityRecord> {
        self.identities.values_mut().map(|(_, r)| r).find(|r| r.auth_identity_id == auth_identity_id)
    }

    fn end_sessions(&mut self, auth_identity_id: &str) {
        self.sessions.retain(|_, s| s.auth_identity_id != auth_identity_id);
        let accounts: Vec<String> = self
            .identities
            .iter()
            .filter(|(_, (_, r))| r.auth_identity_id == auth_identity_id)
            .map(|(pid, _)| pid.clone())
            .collect();
        self.reset_tokens.retain(|pid, _| !accounts.contains(pid));
    }

    fn delivery(&mut self, event_id: &str, sink: &str) -> Option<&mut Delivery> {
        self.deliveries.iter_mut().find(|((e, s), _)| e == event_id && s == sink).map(|(_, d)| d)
    }
}

impl OAuthStore for MemoryStore {
    fn create_oauth_state(&self, _t: &TenantId, state: &NewOAuthState) -> Result<(), AuthError> {
        self.lock().oauth_states.insert(state.state_hash.clone(), state.clone());
        Ok(())
    }

    fn take_oauth_state(
        &self,
        _t: &TenantId,
        state_hash: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<NewOAuthState>, AuthError> {
        Ok(self.lock().oauth_states.remove(state_hash).filter(|s| s.expires_at > now))
    }

    fn create_social_identity(&self, _t: &TenantId, n: &NewSocialIdentity) -> Result<(), AuthError> {
        let mut state = self.lock();
        if state.identities.values().any(|(k, r)| *k == n.subject && r.provider == n.provider) {
            return Err(AuthError::Duplicate("identity exists".into()));
        }
        let record = IdentityRecord {
            auth_identity_id: n.auth_identity_id.clone(),
            provider_identity_id: n.provider_identity_id.clone(),
            provider: n.provider.clone(),
            entity_id: n.subject.as_str().into(),
            password_hash: String::new(),
            app_metadata: Map::new(),
            user_metadata: n.user_metadata.clone(),
            security_stamp: n.security_stamp.clone(),
        };
        state.identities.insert(n.provider_identity_id.clone(), (n.subject.clone(), record));
        Ok(())
    }

    fn attach_social_identity(&self, _t: &TenantId, n: &NewSocialIdentity) -> Result<(), AuthError> {
        let mut state = self.lock();
        let Some(owner) = state.identity_mut(&n.auth_identity_id).cloned() else {
            return Err(AuthError::Duplicate("no such identity".into()));
        };
        let taken = state
            .identities
            .values()
            .any(|(k, r)| r.provider == n.provider && (*k == n.subject || r.auth_identity_id == n.auth_identity_id));
        if taken {
            return Err(AuthError::Duplicate("identity exists".into()));
        }
        let record = IdentityRecord {
            provider_identity_id: n.provider_identity_id.clone(),
            provider: n.provider.clone(),
            entity_id: n.subject.as_str().into(),
            password_hash: String::new(),
            user_metadata: n.user_metadata.clone(),
            ..owner
        };
        state.identities.insert(n.provider_identity_id.clone(), (n.subject.clone(), record));
        Ok(())
    }

    fn update_user_metadata(
        &self,
        _t: &TenantId,
        pid: &str,
        user_metadata: &Map<String, serde_json::Value>,
        _now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        if let Some((_, r)) = self.lock().identities.get_mut(pid) {
            r.user_metadata = user_metadata.clone();
        }
        Ok(())
    }
}

impl IdentityStore for MemoryStore {
    fn find_by_email(
        &self,
        _tenant: &TenantId,
        provider: &AuthProvider,
        entity_key: &EntityKey,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        Ok(self
            .lock()
            .identities
            .values()
            .find(|(k, r)| k == entity_key && r.provider == *provider)
            .map(|(_, r)| r.clone()))
    }

    /// Everything is in memory here: the answer of `find_by_id`.
    fn find_by_id_in_memory(
        &self,
        tenant: &TenantId,
        provider: &AuthProvider,
        auth_identity_id: &str,
    ) -> Option<IdentityRecord> {
        self.find_by_id(tenant, provider, auth_identity_id).ok().flatten()
    }

    fn find_by_id(
        &self,
        _tenant: &TenantId,
        provider: &AuthProvider,
        auth_identity_id: &str,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        Ok(self
            .lock()
            .identities
            .values()
            .find(|(_, r)| r.auth_identity_id == auth_identity_id && r.provider == *provider)
            .map(|(_, r)| r.clone()))
    }

    fn create_identity(&self, _tenant: &TenantId, n: &NewIdentity) -> Result<(), AuthError> {
        let mut state = self.lock();
        if state.identities.values().any(|(k, r)| *k == n.entity_key && r.provider == n.provider) {
            return Err(AuthError::Duplicate("identity exists".into()));
        }
        let record = IdentityRecord {
            auth_identity_id: n.auth_identity_id.clone(),
            provider_identity_id: n.provider_identity_id.clone(),
            provider: n.provider.clone(),
            entity_id: n.entity_id.clone(),
            password_hash: n.password_hash.clone(),
            app_metadata: n.app_metadata.clone(),
            user_metadata: Map::new(),
            security_stamp: n.security_stamp.clone(),
        };
        state.identities.insert(n.provider_identity_id.clone(), (n.entity_key.clone(), record));
        Ok(())
    }

    fn replace_password_hash_if(
        &self,
        _t: &TenantId,
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

    fn store_reset_token(&self, _t: &TenantId, token: &NewResetToken, event: &NewEvent) -> Result<(), AuthError> {
        let mut state = self.lock();
        state.reset_tokens.insert(token.provider_identity_id.clone(), (token.token_hash.clone(), token.expires_at));
        state.write_event(event);
        Ok(())
    }

    fn reset_token_is_live(
        &self,
        _t: &TenantId,
        hash: &HashedToken,
        pid: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        Ok(self.lock().reset_tokens.get(pid).is_some_and(|(h, exp)| h == hash && *exp > now))
    }

    fn complete_password_reset(
        &self,
        _t: &TenantId,
        c: &PasswordResetCompletion,
        event: &NewEvent,
    ) -> Result<(), AuthError> {
        let mut state = self.lock();
        let live =
            state.reset_tokens.get(&c.provider_identity_id).is_some_and(|(h, exp)| *h == c.token_hash && *exp > c.now);
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
        let auth_identity_id = record.auth_identity_id.clone();
        state.end_sessions(&auth_identity_id);
        state.write_event(event);
        Ok(())
    }

    fn revoke_all(
        &self,
        _t: &TenantId,
        auth_identity_id: &str,
        new_stamp: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let mut state = self.lock();
        if let Some(r) = state.identity_mut(auth_identity_id) {
            r.security_stamp = new_stamp.into();
        }
        state.end_sessions(auth_identity_id);
        Ok(())
    }

    fn change_password(&self, _t: &TenantId, c: &PasswordChange, event: &NewEvent) -> Result<bool, AuthError> {
        let mut state = self.lock();
        match state.identity_mut(&c.auth_identity_id) {
            Some(r) if r.password_hash == c.expected_hash => {
                r.password_hash = c.new_password_hash.clone();
                r.security_stamp = c.new_security_stamp.clone();
            }
            _ => return Ok(false),
        }
        state.end_sessions(&c.auth_identity_id);
        state.write_event(event);
        Ok(true)
    }
}

impl ResetRequestStore for MemoryStore {
    fn record_reset_request(&self, request: &ResetRequest) -> Result<(), AuthError> {
        self.lock().reset_requests.push((request.clone(), None));
        Ok(())
    }

    fn claim_reset_requests(
        &self,
        now: DateTime<Utc>,
        created_before: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ResetRequest>, AuthError> {
        let mut state = self.lock();
        let mut claimed = Vec::new();
        for (request, lease) in state.reset_requests.iter_mut() {
            if claimed.len() < limit && request.created_at <= created_before && lease.is_none_or(|l| l <= now) {
                *lease = Some(lease_until);
                claimed.push(request.clone());
            }
        }
        Ok(claimed)
    }

    fn fulfil_reset_request(
        &self,
        _t: &TenantId,
        id: &str,
        reset: Option<(&NewResetToken, &NewEvent)>,
    ) -> Result<bool, AuthError> {
        let mut state = self.lock();
        let Some(at) = state.reset_requests.iter().position(|(r, _)| r.id == id) else { return Ok(false) };
        state.reset_requests.remove(at);
        if let Some((token, event)) = reset {
            state.reset_tokens.insert(token.provider_identity_id.clone(), (token.token_hash.clone(), token.expires_at));
            state.write_event(event);
        }
        Ok(true)
    }
}

impl SessionStore for MemoryStore {
    fn create_session(
        &self,
        _t: &TenantId,
        session: &NewSession,
        replaces: Option<&HashedToken>,
    ) -> Result<(), AuthError> {
        let mut state = self.lock();
        if let Some(old) = replaces {
            state.sessions.remove(old);
        }
        state.sessions.insert(session.session_hash.clone(), session.clone());
        Ok(())
    }

    fn find_session(
        &self,
        _t: &TenantId,
        hash: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, AuthError> {
        let state = self.lock();
        let Some(session) = state.sessions.get(hash).filter(|s| s.expires_at > now) else {
            return Ok(None);
        };
        let identity = state
            .identities
            .values()
            .map(|(_, r)| r)
            .find(|r| r.auth_identity_id == session.auth_identity_id && r.provider == session.auth_provider)
            .cloned();
        Ok(identity.map(|identity| SessionRecord {
            actor_type: session.actor_type.clone(),
            auth_provider: session.auth_provider.clone(),
            security_stamp: session.security_stamp.clone(),
            identity,
        }))
    }

    fn delete_session(&self, _t: &TenantId, hash: &HashedToken) -> Result<bool, AuthError> {
        Ok(self.lock().sessions.remove(hash).is_some())
    }
}

impl CustomerStore for MemoryStore {
    fn create_customer(&self, _t: &TenantId, auth_identity_id: &str, customer: &Customer) -> Result<(), AuthError> {
        let mut state = self.lock();
        let identity =
            state.identity_mut(auth_identity_id).ok_or_else(|| AuthError::Unexpected("no identity".into()))?;
        if identity.app_metadata.contains_key("customer_id") {
            return Err(AuthError::InvalidData(crate::service::ALREADY_CUSTOMER.into()));
        }
        let key = customer.email.to_lowercase();
        if state.customers.values().any(|c| c.has_account && c.email.to_lowercase() == key) {
            return Err(AuthError::Duplicate("customer email".into()));
        }
        if let Some(identity) = state.identity_mut(auth_identity_id) {
            identity.app_metadata.insert("customer_id".into(), customer.id.clone().into());
        }
        state.customers.insert(customer.id.clone(), customer.clone());
        Ok(())
    }

    fn find_customer(&self, _t: &TenantId, id: &str) -> Result<Option<Customer>, AuthError> {
        Ok(self.lock().customers.get(id).cloned())
    }

    fn update_customer(
        &self,
        _t: &TenantId,
        id: &str,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, AuthError> {
        let mut state = self.lock();
        Ok(state.customers.get_mut(id).map(|c| {
            fields.apply(c);
            c.updated_at = now;
            c.clone()
        }))
    }
}

impl EventOutbox for MemoryStore {
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, AuthError> {
        let mut state = self.lock();
        let events = state.events.clone();
        let mut claimed = Vec::new();
        for ((event_id, sink), d) in state.deliveries.iter_mut() {
            let due = matches!(d.status(), DeliveryStatus::Pending | DeliveryStatus::Failed)
                && d.next_attempt_at <= now
                && d.locked_until.is_none_or(|until| until <= now);
            if due && claimed.len() < limit {
                if let Some(event) = events.iter().find(|e| e.id == *event_id) {
                    d.locked_until = Some(lease_until);
                    claimed.push(PendingDelivery { event: event.clone(), sink: sink.clone(), attempts: d.attempts });
                }
            }
        }
        Ok(claimed)
    }

    fn record_delivered(&self, event_id: &str, sink: &str, _now: DateTime<Utc>) -> Result<(), AuthError> {
        if let Some(d) = self.lock().delivery(event_id, sink) {
            d.delivered = true;
            d.attempts += 1;
            d.settle();
        }
        Ok(())
    }

    fn record_failure(&self, event_id: &str, sink: &str, error: &str, next: DateTime<Utc>) -> Result<(), AuthError> {
        if let Some(d) = self.lock().delivery(event_id, sink) {
            d.attempts += 1;
            d.last_error = Some(error.into());
            d.next_attempt_at = next;
            d.settle();
        }
        Ok(())
    }

    fn record_dead(&self, event_id: &str, sink: &str, error: &str, _now: DateTime<Utc>) -> Result<(), AuthError> {
        if let Some(d) = self.lock().delivery(event_id, sink) {
            d.attempts += 1;
            d.last_error = Some(error.into());
            d.dead = true;
            d.settle();
        }
        Ok(())
    }

    fn record_expired(&self, event_id: &str, sink: &str, _now: DateTime<Utc>) -> Result<(), AuthError> {
        if let Some(d) = self.lock().delivery(event_id, sink) {
            d.expired = true;
            d.settle();
        }
        Ok(())
    }

    fn list_deliveries(&self, status: Option<DeliveryStatus>, limit: usize) -> Result<Vec<DeliveryView>, AuthError> {
        let state = self.lock();
        Ok(state
            .deliveries
            .iter()
            .rev()
            .filter(|(_, d)| status.is_none_or(|s| d.status() == s))
            .filter_map(|((event_id, sink), d)| {
                let event = state.events.iter().find(|e| e.id == *event_id)?;
                Some(DeliveryView {
                    event_id: event_id.clone(),
                    event_name: event.name.clone(),
                    sink: sink.clone(),
                    status: d.status(),
                    attempts: d.attempts,
                    last_error: d.last_error.clone(),
                    created_at: event.created_at,
                    next_attempt_at: d.next_attempt_at,
                })
            })
            .take(limit)
            .collect())
    }

    fn rearm(&self, event_id: &str, now: DateTime<Utc>) -> Result<usize, AuthError> {
        let mut state = self.lock();
        let mut count = 0;
        for ((id, _), d) in state.deliveries.iter_mut() {
            if id == event_id && matches!(d.status(), DeliveryStatus::Dead | DeliveryStatus::Failed) {
                d.dead = false;
                d.attempts = 0;
                d.next_attempt_at = now;
                d.locked_until = None;
                count += 1;
            }
        }
        Ok(count)
    }

    fn erase_settled_secrets(&self, now: DateTime<Utc>) -> Result<usize, AuthError> {
        let mut state = self.lock();
        let settled: Vec<String> = state
            .events
            .iter()
            .filter(|e| e.sealed_secret.is_some())
            .filter(|e| {
                e.is_expired(now)
                    || state.deliveries.iter().filter(|((id, _), _)| *id == e.id).all(|(_, d)| d.delivered || d.expired)
            })
            .map(|e| e.id.clone())
            .collect();
        for event in state.events.iter_mut().filter(|e| settled.contains(&e.id)) {
            event.sealed_secret = None;
        }
        Ok(settled.len())
    }
}

impl Housekeeping for MemoryStore {
    fn purge(&self, now: DateTime<Utc>, event_retention: Duration) -> Result<PurgeReport, AuthError> {
        let mut state = self.lock();
        let state = &mut *state;
        let (tokens, sessions) = (state.reset_tokens.len(), state.sessions.len());
        state.reset_tokens.retain(|_, (_, expires_at)| *expires_at > now);
        state.sessions.retain(|_, s| s.expires_at > now);
        let cutoff = now.checked_sub_signed(event_retention).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let deliveries = &state.deliveries;
        let settled = |id: &str| deliveries.iter().filter(|((e, _), _)| e == id).all(|(_, d)| d.delivered || d.expired);
        let purged: Vec<String> =
            state.events.iter().filter(|e| e.created_at < cutoff && settled(&e.id)).map(|e| e.id.clone()).collect();
        state.events.retain(|e| !purged.contains(&e.id));
        state.deliveries.retain(|((e, _), _)| !purged.contains(e));
        Ok(PurgeReport {
            reset_tokens: tokens - state.reset_tokens.len(),
            sessions: sessions - state.sessions.len(),
            events: purged.len(),
            rate_limits: 0,
            oauth_states: {
                let before = state.oauth_states.len();
                state.oauth_states.retain(|_, s| s.expires_at > now);
                before - state.oauth_states.len()
            },
        })
    }
}
