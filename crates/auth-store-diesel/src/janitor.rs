//! `Housekeeping` on diesel: the janitor's deletes of expired reset tokens, sessions and pending
//! sign-ins (`oauth_state`), and of
//! settled events past their retention, plus the pruning of the shared rate limiter's buckets.
//!
//! Every kind is deleted in batches of at most `BATCH` rows, each batch its own short write
//! transaction, so a large backlog never holds long locks. On PostgreSQL a batch selects its
//! rows `FOR UPDATE SKIP LOCKED`: janitors of several instances take disjoint rows and never
//! wait for each other or for a request; each delete repeats its condition, so a row changed
//! meanwhile is left alone. On SQLite, `BEGIN IMMEDIATE` serializes the batches.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use auth_domain::ports::{Housekeeping, PurgeReport};
use auth_domain::AuthError;

use crate::connection::DbConnection;
use crate::rows::naive;
use crate::schema::{auth_session, event, event_delivery, oauth_state, password_reset_token, rate_limit};
use crate::tx::{write_tx, TxError};
use crate::DieselStore;

/// Rows deleted per statement at most. Every batch selects its rows in the order of the indexed
/// time column it filters on: with a LIMIT and no order, PostgreSQL (table statistics saying a
/// fifth of the sessions are expired) chose a sequential scan, which starts again from the first
/// page on every batch and reads the rows earlier batches left (a pass over n expired rows read
/// O(n²) rows); in index order each batch starts where the expired rows are.
pub(crate) const BATCH: i64 = 1_000;

/// Loads the keys `$query` selects; on PostgreSQL locking them and skipping rows locked by
/// another transaction.
macro_rules! select_unlocked {
    ($conn:expr, $query:expr) => {
        match $conn {
            DbConnection::Postgresql(pg) => $query.for_update().skip_locked().load::<String>(pg)?,
            DbConnection::Sqlite(sqlite) => $query.load::<String>(sqlite)?,
        }
    };
}

/// The rows of one batch: how many were selected, how many deleted.
type Batch = (usize, usize);

impl DieselStore {
    /// Runs `batch` (which selects at most `BATCH` rows and deletes them) in one write
    /// transaction after another until a batch selects fewer; returns how many were deleted.
    /// The connection goes back to the pool between batches.
    pub(crate) fn delete_in_batches(
        &self,
        mut batch: impl FnMut(&mut DbConnection) -> Result<Batch, TxError>,
    ) -> Result<usize, AuthError> {
        let mut deleted = 0;
        loop {
            let mut conn = self.conn()?;
            let (selected, gone) = write_tx(&mut conn, &mut batch)?;
            deleted += gone;
            if selected < BATCH as usize {
                return Ok(deleted);
            }
        }
    }
}

/// `now - span`, never before 1970 (a retention too long to subtract keeps everything).
pub(crate) fn before(now: DateTime<Utc>, span: Duration) -> NaiveDateTime {
    naive(now.checked_sub_signed(span).unwrap_or(DateTime::UNIX_EPOCH).max(DateTime::UNIX_EPOCH))
}

fn expired_reset_tokens(c: &mut DbConnection, now: NaiveDateTime) -> Result<Batch, TxError> {
    use password_reset_token as t;
    let query = t::table.filter(t::expires_at.le(now)).select(t::id).order(t::expires_at).limit(BATCH);
    let ids = select_unlocked!(c, query);
    // The condition again: a token replaced meanwhile (the upsert of `store_reset_token`) stays.
    let deleted = diesel::delete(t::table.filter(t::id.eq_any(&ids)).filter(t::expires_at.le(now))).execute(c)?;
    Ok((ids.len(), deleted))
}

fn expired_sessions(c: &mut DbConnection, now: NaiveDateTime) -> Result<Batch, TxError> {
    use auth_session as s;
    let query = s::table.filter(s::expires_at.le(now)).select(s::id).order(s::expires_at).limit(BATCH);
    let ids = select_unlocked!(c, query);
    let deleted = diesel::delete(s::table.filter(s::id.eq_any(&ids)).filter(s::expires_at.le(now))).execute(c)?;
    Ok((ids.len(), deleted))
}

fn expired_oauth_states(c: &mut DbConnection, now: NaiveDateTime) -> Result<Batch, TxError> {
    use oauth_state as o;
    let query = o::table.filter(o::expires_at.le(now)).select(o::state_hash).order(o::expires_at).limit(BATCH);
    let hashes = select_unlocked!(c, query);
    let deleted =
        diesel::delete(o::table.filter(o::state_hash.eq_any(&hashes)).filter(o::expires_at.le(now))).execute(c)?;
    Ok((hashes.len(), deleted))
}

fn settled_events(c: &mut DbConnection, cutoff: NaiveDateTime) -> Result<Batch, TxError> {
    // A delivery that still matters: pending, failed or dead (operators retry dead ones).
    let unsettled = || {
        event_delivery::table
            .filter(event_delivery::event_id.eq(event::id))
            .filter(event_delivery::delivered_at.is_null().and(event_delivery::expired_at.is_null()))
    };
    let query = event::table
        .filter(event::created_at.lt(cutoff))
        .filter(not(exists(unsettled())))
        .select(event::id)
        .order(event::created_at)
        .limit(BATCH);
    let ids = select_unlocked!(c, query);
    // The deliveries go with their event (ON DELETE CASCADE, on both backends).
    let deleted = diesel::delete(
        event::table
            .filter(event::id.eq_any(&ids))
            .filter(event::created_at.lt(cutoff))
            .filter(not(exists(unsettled()))),
    )
    .execute(c)?;
    Ok((ids.len(), deleted))
}

/// Deletes the rate-limit rows not taken from since `cutoff` (the shared limiter's buckets).
pub(crate) fn idle_rate_limits(c: &mut DbConnection, cutoff: NaiveDateTime) -> Result<Batch, TxError> {
    use rate_limit as r;
    let query = r::table.filter(r::updated_at.le(cutoff)).select(r::key).order(r::updated_at).limit(BATCH);
    let keys = select_unlocked!(c, query);
    let deleted = diesel::delete(r::table.filter(r::key.eq_any(&keys)).filter(r::updated_at.le(cutoff))).execute(c)?;
    Ok((keys.len(), deleted))
}

impl Housekeeping for DieselStore {
    fn purge(&self, now: DateTime<Utc>, event_retention: Duration) -> Result<PurgeReport, AuthError> {
        let (at, cutoff) = (naive(now), before(now, event_retention));
        Ok(PurgeReport {
            reset_tokens: self.delete_in_batches(|c| expired_reset_tokens(c, at))?,
            sessions: self.delete_in_batches(|c| expired_sessions(c, at))?,
            events: self.delete_in_batches(|c| settled_events(c, cutoff))?,
            rate_limits: 0,
            oauth_states: self.delete_in_batches(|c| expired_oauth_states(c, at))?,
        })
    }
}
