//! The events' side: `EventOutbox` (what the dispatcher reads and records), `EventWaker`,
//! `EventSink`, and the delivery states operators see.

use chrono::{DateTime, Utc};

use crate::event::{Envelope, StoredEvent};
use crate::AuthError;

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
