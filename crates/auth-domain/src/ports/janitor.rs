//! `Housekeeping`: what the janitor (`crate::janitor`) asks of the store.

use chrono::{DateTime, Duration, Utc};

use crate::AuthError;

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
    /// Pending sign-ins with other providers that expired unused.
    pub oauth_states: usize,
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
    /// Deletes the reset tokens, sessions and pending sign-ins (`oauth_state`) that expired at or before `now`, and the events
    /// created before `now - event_retention` whose every delivery is delivered or expired,
    /// with their deliveries. A pending, failed or dead delivery is never deleted, nor its
    /// event: operators retry them. Works in bounded batches, each its own short transaction,
    /// so a large backlog never holds long locks; several instances may run it at once.
    /// `rate_limits` is always 0: the rate limiter prunes its own buckets
    /// (`RateLimiter::prune`).
    fn purge(&self, now: DateTime<Utc>, event_retention: Duration) -> Result<PurgeReport, AuthError>;
}

impl<T: Housekeeping + ?Sized> Housekeeping for std::sync::Arc<T> {
    fn purge(&self, now: DateTime<Utc>, event_retention: Duration) -> Result<PurgeReport, AuthError> {
        (**self).purge(now, event_retention)
    }
}
