//! `EventOutbox` on diesel: per-sink delivery state of the events, claimed with a lease so that
//! several instances on one PostgreSQL deliver each event once per sink.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use auth_domain::ports::{DeliveryStatus, DeliveryView, EventOutbox, PendingDelivery};
use auth_domain::AuthError;

use crate::connection::DbConnection;
use crate::rows::{naive, stored_event, utc, EventColumns};
use crate::schema::{event, event_delivery};
use crate::tx::{db_error, write_tx};
use crate::DieselStore;

type Open = diesel::dsl::And<
    diesel::dsl::And<
        diesel::dsl::IsNull<event_delivery::delivered_at>,
        diesel::dsl::IsNull<event_delivery::expired_at>,
    >,
    diesel::dsl::IsNull<event_delivery::dead_at>,
>;

/// Neither delivered, expired nor dead.
fn open() -> Open {
    event_delivery::delivered_at
        .is_null()
        .and(event_delivery::expired_at.is_null())
        .and(event_delivery::dead_at.is_null())
}

type DeliveryKey = (String, String, i32);

/// Applies `$set` to one delivery and releases its claim.
macro_rules! settle {
    ($store:expr, $event_id:expr, $sink:expr, $set:expr $(,)?) => {{
        let mut conn = $store.conn()?;
        diesel::update(
            event_delivery::table.filter(event_delivery::event_id.eq($event_id)).filter(event_delivery::sink.eq($sink)),
        )
        .set(($set, event_delivery::locked_until.eq(None::<NaiveDateTime>)))
        .execute(&mut *conn)
        .map(drop)
        .map_err(db_error)
    }};
}

impl EventOutbox for DieselStore {
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, AuthError> {
        let mut conn = self.conn()?;
        let (now, lease_until) = (naive(now), naive(lease_until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let claimed: Vec<DeliveryKey> = write_tx(&mut conn, |c| {
            let due = event_delivery::table
                .filter(open())
                .filter(event_delivery::next_attempt_at.le(now))
                .filter(event_delivery::locked_until.is_null().or(event_delivery::locked_until.le(now)))
                .order((event_delivery::next_attempt_at.asc(), event_delivery::event_id.asc()))
                .limit(limit)
                .select((event_delivery::event_id, event_delivery::sink, event_delivery::attempts));
            // PostgreSQL: rows another dispatcher is claiming right now are skipped, not waited
            // for. SQLite: BEGIN IMMEDIATE already serializes the claim.
            let keys: Vec<DeliveryKey> = match c {
                DbConnection::Postgresql(pg) => due.for_update().skip_locked().load(pg)?,
                DbConnection::Sqlite(sqlite) => due.load(sqlite)?,
            };
            for (event_id, sink, _) in &keys {
                diesel::update(
                    event_delivery::table
                        .filter(event_delivery::event_id.eq(event_id))
                        .filter(event_delivery::sink.eq(sink)),
                )
                .set(event_delivery::locked_until.eq(Some(lease_until)))
                .execute(c)?;
            }
            Ok(keys)
        })?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&String> = claimed.iter().map(|(id, _, _)| id).collect();
        let events = event::table
            .filter(event::id.eq_any(ids))
            .select((
                event::id,
                event::tenant_id,
                event::name,
                event::payload,
                event::sealed_secret,
                event::created_at,
                event::expires_at,
            ))
            .load::<EventColumns>(&mut *conn)
            .map_err(db_error)?
            .into_iter()
            .map(stored_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(claimed
            .into_iter()
            .filter_map(|(event_id, sink, attempts)| {
                let event = events.iter().find(|e| e.id == event_id)?.clone();
                Some(PendingDelivery { event, sink, attempts })
            })
            .collect())
    }

    fn record_delivered(&self, event_id: &str, sink: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        settle!(
            self,
            event_id,
            sink,
            (
                event_delivery::delivered_at.eq(Some(naive(now))),
                event_delivery::attempts.eq(event_delivery::attempts + 1),
                event_delivery::last_error.eq(None::<String>),
            ),
        )
    }

    fn record_failure(
        &self,
        event_id: &str,
        sink: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        settle!(
            self,
            event_id,
            sink,
            (
                event_delivery::attempts.eq(event_delivery::attempts + 1),
                event_delivery::last_error.eq(Some(error.to_string())),
                event_delivery::next_attempt_at.eq(naive(next_attempt_at)),
            ),
        )
    }

    fn record_dead(&self, event_id: &str, sink: &str, error: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        settle!(
            self,
            event_id,
            sink,
            (
                event_delivery::attempts.eq(event_delivery::attempts + 1),
                event_delivery::last_error.eq(Some(error.to_string())),
                event_delivery::dead_at.eq(Some(naive(now))),
            ),
        )
    }

    fn record_expired(&self, event_id: &str, sink: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        settle!(self, event_id, sink, event_delivery::expired_at.eq(Some(naive(now))))
    }

    fn erase_settled_secrets(&self, now: DateTime<Utc>) -> Result<usize, AuthError> {
        let mut conn = self.conn()?;
        // A dead delivery keeps the secret (until it expires), so `events retry` can still send it.
        let unsettled = event_delivery::table
            .filter(event_delivery::event_id.eq(event::id))
            .filter(event_delivery::delivered_at.is_null().and(event_delivery::expired_at.is_null()));
        let expired = event::expires_at.is_not_null().and(event::expires_at.le(naive(now)).assume_not_null());
        diesel::update(
            event::table.filter(event::sealed_secret.is_not_null()).filter(expired.or(not(exists(unsettled)))),
        )
        .set(event::sealed_secret.eq(None::<String>))
        .execute(&mut *conn)
        .map_err(db_error)
    }

    fn list_deliveries(&self, status: Option<DeliveryStatus>, limit: usize) -> Result<Vec<DeliveryView>, AuthError> {
        let mut conn = self.conn()?;
        let mut query = event_delivery::table
            .inner_join(event::table)
            .select((
                event_delivery::event_id,
                event::name,
                event_delivery::sink,
                event_delivery::delivered_at.is_not_null(),
                event_delivery::expired_at.is_not_null(),
                event_delivery::dead_at.is_not_null(),
                event_delivery::attempts,
                event_delivery::last_error,
                event::created_at,
                event_delivery::next_attempt_at,
            ))
            .order((event::created_at.desc(), event::id.desc(), event_delivery::sink.asc()))
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .into_boxed();
        query = match status {
            None => query,
            Some(DeliveryStatus::Delivered) => query.filter(event_delivery::delivered_at.is_not_null()),
            Some(DeliveryStatus::Expired) => query.filter(event_delivery::expired_at.is_not_null()),
            Some(DeliveryStatus::Dead) => query.filter(event_delivery::dead_at.is_not_null()),
            Some(DeliveryStatus::Failed) => query.filter(open()).filter(event_delivery::attempts.gt(0)),
            Some(DeliveryStatus::Pending) => query.filter(open()).filter(event_delivery::attempts.eq(0)),
        };
        type Row = (String, String, String, bool, bool, bool, i32, Option<String>, NaiveDateTime, NaiveDateTime);
        let rows: Vec<Row> = query.load(&mut *conn).map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(event_id, event_name, sink, delivered, expired, dead, attempts, last_error, created_at, next)| {
                DeliveryView {
                    event_id,
                    event_name,
                    sink,
                    status: DeliveryStatus::of(delivered, expired, dead, attempts),
                    attempts,
                    last_error,
                    created_at: utc(created_at),
                    next_attempt_at: utc(next),
                }
            })
            .collect())
    }

    fn rearm(&self, event_id: &str, now: DateTime<Utc>) -> Result<usize, AuthError> {
        let mut conn = self.conn()?;
        let retryable = event_delivery::delivered_at
            .is_null()
            .and(event_delivery::expired_at.is_null())
            .and(event_delivery::dead_at.is_not_null().or(event_delivery::attempts.gt(0)));
        diesel::update(event_delivery::table.filter(event_delivery::event_id.eq(event_id)).filter(retryable))
            .set((
                event_delivery::dead_at.eq(None::<NaiveDateTime>),
                event_delivery::attempts.eq(0),
                event_delivery::next_attempt_at.eq(naive(now)),
                event_delivery::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(&mut *conn)
            .map_err(db_error)
    }
}

impl DieselStore {
    /// Deliveries still to make (pending, or failed and due again), per sink: the backlog the
    /// metrics show.
    pub fn backlog(&self) -> Result<Vec<(String, i64)>, AuthError> {
        let mut conn = self.conn()?;
        event_delivery::table
            .filter(open())
            .group_by(event_delivery::sink)
            .select((event_delivery::sink, diesel::dsl::count_star()))
            .load::<(String, i64)>(&mut *conn)
            .map_err(db_error)
    }
}
