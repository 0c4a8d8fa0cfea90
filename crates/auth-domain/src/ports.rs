//! Ports: what the use cases need from the outside world. Adapters implement them
//! (`auth-store-diesel` the stores, `auth-server` the sinks); `memory` implements the stores for
//! the unit tests.
//!
//! Every store method is one short unit of work: it takes a connection, does its reads or its
//! writes in one transaction, and gives the connection back. No method is ever called while a
//! password is being hashed, and no connection outlives a call.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::event::{Envelope, NewEvent, StoredEvent};
use crate::model::{
    Customer, CustomerFields, IdentityRecord, NewIdentity, NewResetToken, NewSession, PasswordChange,
    PasswordResetCompletion, SessionRecord,
};
use crate::AuthError;

/// The time, injected so that expiry can be tested.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, at microsecond precision (what both databases store).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// Identities, their credentials and reset tokens. Every lookup is scoped to `tenant`.
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails, and
/// `AuthError::Conflict` when a PostgreSQL serialization failure survives the retries; the other
/// variants each method may return are listed on it.
pub trait IdentityStore: Send + Sync {
    /// The identity whose provider identity for `provider` has the lookup key `entity_key`;
    /// `Ok(None)` when there is none.
    fn find_by_email(
        &self,
        tenant: &str,
        provider: &str,
        entity_key: &str,
    ) -> Result<Option<IdentityRecord>, AuthError>;

    /// The identity `auth_identity_id` seen through its `provider` identity; `Ok(None)` when
    /// either does not exist.
    fn find_by_id(
        &self,
        tenant: &str,
        auth_identity_id: &str,
        provider: &str,
    ) -> Result<Option<IdentityRecord>, AuthError>;

    /// Creates the auth identity and its provider identity in one transaction.
    /// Returns `AuthError::Duplicate` when `(tenant, provider, entity_key)` is taken, also when a
    /// concurrent request took it first.
    fn create_identity(&self, identity: &NewIdentity) -> Result<(), AuthError>;

    /// Replaces the password hash only if the stored one is still `expected_hash`; `Ok(false)`
    /// when it changed meanwhile (so a login's rehash never undoes a concurrent reset).
    fn replace_password_hash_if(
        &self,
        tenant: &str,
        provider_identity_id: &str,
        expected_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError>;

    /// Stores `token` as the one live reset token of its provider identity (replacing any
    /// earlier one) and writes `event`, in one transaction. Concurrent calls for one account
    /// leave exactly one live token.
    fn store_reset_token(&self, tenant: &str, token: &NewResetToken, event: &NewEvent) -> Result<(), AuthError>;

    /// Whether a reset token with `token_hash` is live (stored, not expired) for the provider
    /// identity. A cheap check before hashing; `complete_password_reset` decides.
    fn reset_token_is_live(
        &self,
        tenant: &str,
        token_hash: &str,
        provider_identity_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError>;

    /// In one transaction: deletes the live reset token, sets the new hash and the new security
    /// stamp, ends every session of the identity, and writes `event`. Returns `AuthError::Unauthenticated(TokenRejection::Consumed)`
    /// when no live token matched (used, superseded, expired), changing nothing; of concurrent
    /// calls with one token exactly one succeeds.
    fn complete_password_reset(
        &self,
        tenant: &str,
        completion: &PasswordResetCompletion,
        event: &NewEvent,
    ) -> Result<(), AuthError>;

    /// In one transaction: sets a new security stamp and ends every session and pending reset
    /// token of the identity (logout-all). Returns `AuthError::Unauthenticated(Revoked)` when the
    /// identity no longer exists.
    fn revoke_all(
        &self,
        tenant: &str,
        auth_identity_id: &str,
        new_stamp: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError>;

    /// In one transaction: replaces the hash only if it is still `change.expected_hash`, sets the
    /// new stamp, ends every session and pending reset token, and writes `event`. `Ok(false)`, changing nothing, when the
    /// hash changed meanwhile.
    fn change_password(&self, tenant: &str, change: &PasswordChange, event: &NewEvent) -> Result<bool, AuthError>;
}

/// Cookie sessions, stored by the SHA-256 of their id.
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails, and
/// the writing ones `AuthError::Conflict` when a serialization failure survives the retries.
pub trait SessionStore: Send + Sync {
    /// Stores `session`; deletes the session `replaces` (a hash) in the same transaction.
    fn create_session(&self, tenant: &str, session: &NewSession, replaces: Option<&str>) -> Result<(), AuthError>;

    /// The session with `session_hash` if it has not expired at `now`, with its identity seen
    /// through the session's provider; `Ok(None)` otherwise.
    fn find_session(
        &self,
        tenant: &str,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, AuthError>;

    /// Deletes the session; `Ok(false)` when there was none.
    fn delete_session(&self, tenant: &str, session_hash: &str) -> Result<bool, AuthError>;
}

/// Customer accounts.
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails, and
/// the writing ones `AuthError::Conflict` when a serialization failure survives the retries.
pub trait CustomerStore: Send + Sync {
    /// In one transaction that first locks the identity: refuses with `AuthError::InvalidData`
    /// ("Request already authenticated as a customer.") when the identity already has a
    /// `customer_id`; inserts `customer` (`AuthError::Duplicate` when its email already has an
    /// account); links it as `app_metadata.customer_id`. Of concurrent calls for one identity
    /// exactly one creates a customer. `AuthError::Unauthenticated(Revoked)` when the identity
    /// no longer exists.
    fn create_customer(&self, tenant: &str, auth_identity_id: &str, customer: &Customer) -> Result<(), AuthError>;

    /// The customer `id`; `Ok(None)` when there is none.
    fn find_customer(&self, tenant: &str, id: &str) -> Result<Option<Customer>, AuthError>;

    /// Applies `fields` to the customer `id`; returns it as stored, `Ok(None)` when there is none.
    fn update_customer(
        &self,
        tenant: &str,
        id: &str,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, AuthError>;
}

/// Everything the use cases store: one adapter implements it all.
pub trait AuthStore: IdentityStore + SessionStore + CustomerStore {}

impl<T: IdentityStore + SessionStore + CustomerStore + ?Sized> AuthStore for T {}

/// One pending delivery of an event to a sink.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub event: StoredEvent,
    pub sink: String,
    pub attempts: i32,
}

/// The state of one delivery, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not attempted yet.
    Pending,
    /// Attempted and failed; another attempt is scheduled.
    Failed,
    /// Failed `EVENT_MAX_ATTEMPTS` times; waits for an operator (`events retry`).
    Dead,
    /// Its secret expired before it could be delivered.
    Expired,
    Delivered,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Failed,
        DeliveryStatus::Dead,
        DeliveryStatus::Expired,
        DeliveryStatus::Delivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
            DeliveryStatus::Expired => "expired",
            DeliveryStatus::Delivered => "delivered",
        }
    }

    pub fn parse(value: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The status of a delivery from its recorded facts.
    pub fn of(delivered: bool, expired: bool, dead: bool, attempts: i32) -> DeliveryStatus {
        match (delivered, expired, dead) {
            (true, _, _) => DeliveryStatus::Delivered,
            (_, true, _) => DeliveryStatus::Expired,
            (_, _, true) => DeliveryStatus::Dead,
            _ if attempts > 0 => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// One delivery as `events list` shows it (no secret).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryView {
    pub event_id: String,
    pub event_name: String,
    pub sink: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

/// The outbox the dispatcher reads: events and their per-sink delivery state.
///
/// Every method returns `AuthError::Database` when the database is unreachable or fails.
pub trait EventOutbox: Send + Sync {
    /// Claims up to `limit` due deliveries (not delivered, expired or dead; next attempt due at
    /// `now`; not leased by a dispatcher) until `lease_until`, oldest first. Dispatchers that
    /// claim at the same time get disjoint sets; a claim ends with one of the `record_*` calls,
    /// or when the lease runs out (a dispatcher that died).
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, AuthError>;

    /// Marks the delivery of `event_id` to `sink` delivered.
    fn record_delivered(&self, event_id: &str, sink: &str, now: DateTime<Utc>) -> Result<(), AuthError>;

    /// Counts a failed attempt, keeps `error` (which must hold no secret) and schedules the next.
    fn record_failure(
        &self,
        event_id: &str,
        sink: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError>;

    /// Counts a failed attempt that was the last one allowed: the delivery is dead.
    fn record_dead(&self, event_id: &str, sink: &str, error: &str, now: DateTime<Utc>) -> Result<(), AuthError>;

    /// Marks the delivery expired: its secret expired before it could be delivered.
    fn record_expired(&self, event_id: &str, sink: &str, now: DateTime<Utc>) -> Result<(), AuthError>;

    /// Erases the sealed secret of every event whose deliveries are all delivered or expired, or
    /// whose secret expired. Returns how many were erased.
    fn erase_settled_secrets(&self, now: DateTime<Utc>) -> Result<usize, AuthError>;

    /// Deliveries, newest event first, optionally only those in `status`.
    fn list_deliveries(&self, status: Option<DeliveryStatus>, limit: usize) -> Result<Vec<DeliveryView>, AuthError>;

    /// Re-arms the dead and failed deliveries of `event_id`: due at `now`, attempts counted
    /// afresh. Returns how many.
    fn rearm(&self, event_id: &str, now: DateTime<Utc>) -> Result<usize, AuthError>;
}

/// Tells the dispatcher that an event was committed, so it delivers without waiting for its
/// next poll.
pub trait EventWaker: Send + Sync {
    fn wake(&self);
}

/// Where events go: a log, a file, a webhook, an email, a message broker.
pub trait EventSink: Send + Sync {
    /// The name deliveries are recorded under (`log`, `file`, ...).
    fn name(&self) -> &str;

    /// Delivers one envelope. `Err` is a failed attempt; its text is stored and logged, so it
    /// must not contain the token.
    fn deliver(&self, envelope: &Envelope) -> Result<(), String>;
}

/// What one janitor pass deleted, per kind of row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    /// Expired password reset tokens.
    pub reset_tokens: usize,
    /// Expired sessions.
    pub sessions: usize,
    /// Settled events past the retention (each with its deliveries).
    pub events: usize,
    /// Idle rate-limit buckets.
    pub rate_limits: usize,
}

impl PurgeReport {
    /// Whether the pass deleted nothing.
    pub fn is_empty(&self) -> bool {
        *self == PurgeReport::default()
    }
}

/// Deletes the rows nobody needs any more, so the database does not grow without bound.
///
/// Returns `AuthError::Database` when the database is unreachable or fails, and
/// `AuthError::Conflict` when a serialization failure survives the retries.
pub trait Housekeeping: Send + Sync {
    /// Deletes the reset tokens and sessions that expired at or before `now`, and the events
    /// created before `now - event_retention` whose every delivery is delivered or expired,
    /// with their deliveries. A pending, failed or dead delivery is never deleted, nor its
    /// event: operators retry them. Works in bounded batches, each its own short transaction,
    /// so a large backlog never holds long locks; several instances may run it at once.
    /// `rate_limits` is always 0: the rate limiter prunes its own buckets
    /// (`RateLimiter::prune`).
    fn purge(&self, now: DateTime<Utc>, event_retention: Duration) -> Result<PurgeReport, AuthError>;
}

impl<T: IdentityStore + ?Sized> IdentityStore for std::sync::Arc<T> {
    fn find_by_email(
        &self,
        tenant: &str,
        provider: &str,
        entity_key: &str,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        (**self).find_by_email(tenant, provider, entity_key)
    }
    fn find_by_id(
        &self,
        tenant: &str,
        auth_identity_id: &str,
        provider: &str,
    ) -> Result<Option<IdentityRecord>, AuthError> {
        (**self).find_by_id(tenant, auth_identity_id, provider)
    }
    fn create_identity(&self, identity: &NewIdentity) -> Result<(), AuthError> {
        (**self).create_identity(identity)
    }
    fn replace_password_hash_if(
        &self,
        tenant: &str,
        provider_identity_id: &str,
        expected_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        (**self).replace_password_hash_if(tenant, provider_identity_id, expected_hash, new_hash, now)
    }
    fn store_reset_token(&self, tenant: &str, token: &NewResetToken, event: &NewEvent) -> Result<(), AuthError> {
        (**self).store_reset_token(tenant, token, event)
    }
    fn reset_token_is_live(
        &self,
        tenant: &str,
        token_hash: &str,
        provider_identity_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        (**self).reset_token_is_live(tenant, token_hash, provider_identity_id, now)
    }
    fn complete_password_reset(
        &self,
        tenant: &str,
        completion: &PasswordResetCompletion,
        event: &NewEvent,
    ) -> Result<(), AuthError> {
        (**self).complete_password_reset(tenant, completion, event)
    }
    fn revoke_all(
        &self,
        tenant: &str,
        auth_identity_id: &str,
        new_stamp: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        (**self).revoke_all(tenant, auth_identity_id, new_stamp, now)
    }
    fn change_password(&self, tenant: &str, change: &PasswordChange, event: &NewEvent) -> Result<bool, AuthError> {
        (**self).change_password(tenant, change, event)
    }
}

impl<T: SessionStore + ?Sized> SessionStore for std::sync::Arc<T> {
    fn create_session(&self, tenant: &str, session: &NewSession, replaces: Option<&str>) -> Result<(), AuthError> {
        (**self).create_session(tenant, session, replaces)
    }
    fn find_session(
        &self,
        tenant: &str,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, AuthError> {
        (**self).find_session(tenant, session_hash, now)
    }
    fn delete_session(&self, tenant: &str, session_hash: &str) -> Result<bool, AuthError> {
        (**self).delete_session(tenant, session_hash)
    }
}

impl<T: CustomerStore + ?Sized> CustomerStore for std::sync::Arc<T> {
    fn create_customer(&self, tenant: &str, auth_identity_id: &str, customer: &Customer) -> Result<(), AuthError> {
        (**self).create_customer(tenant, auth_identity_id, customer)
    }
    fn find_customer(&self, tenant: &str, id: &str) -> Result<Option<Customer>, AuthError> {
        (**self).find_customer(tenant, id)
    }
    fn update_customer(
        &self,
        tenant: &str,
        id: &str,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, AuthError> {
        (**self).update_customer(tenant, id, fields, now)
    }
}

impl<T: EventOutbox + ?Sized> EventOutbox for std::sync::Arc<T> {
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, AuthError> {
        (**self).claim_due(now, lease_until, limit)
    }
    fn record_delivered(&self, event_id: &str, sink: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        (**self).record_delivered(event_id, sink, now)
    }
    fn record_failure(
        &self,
        event_id: &str,
        sink: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        (**self).record_failure(event_id, sink, error, next_attempt_at)
    }
    fn record_dead(&self, event_id: &str, sink: &str, error: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        (**self).record_dead(event_id, sink, error, now)
    }
    fn record_expired(&self, event_id: &str, sink: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        (**self).record_expired(event_id, sink, now)
    }
    fn erase_settled_secrets(&self, now: DateTime<Utc>) -> Result<usize, AuthError> {
        (**self).erase_settled_secrets(now)
    }
    fn list_deliveries(&self, status: Option<DeliveryStatus>, limit: usize) -> Result<Vec<DeliveryView>, AuthError> {
        (**self).list_deliveries(status, limit)
    }
    fn rearm(&self, event_id: &str, now: DateTime<Utc>) -> Result<usize, AuthError> {
        (**self).rearm(event_id, now)
    }
}

impl<T: Housekeeping + ?Sized> Housekeeping for std::sync::Arc<T> {
    fn purge(&self, now: DateTime<Utc>, event_retention: Duration) -> Result<PurgeReport, AuthError> {
        (**self).purge(now, event_retention)
    }
}
