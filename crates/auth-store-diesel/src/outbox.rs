//! `EventOutbox` on diesel: per-sink delivery state of the events.

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use auth_domain::ports::{EventOutbox, PendingDelivery};
use auth_domain::AuthError;

use crate::rows::{naive, stored_event, EventColumns};
use crate::schema::{event, event_delivery};
use crate::tx::db_error;
use crate::DieselStore;

fn pending(
) -> diesel::dsl::And<diesel::dsl::IsNull<event_delivery::delivered_at>, diesel::dsl::IsNull<event_delivery::expired_at>>
{
    event_delivery::delivered_at
        .is_null()
        .and(event_delivery::expired_at.is_null())
}

impl DieselStore {
    fn update_delivery(
        &self,
        event_id: &str,
        sink: &str,
        apply: impl FnOnce(
            &mut crate::DbConnection,
            diesel::dsl::Filter<
                diesel::dsl::Filter<event_delivery::table, diesel::dsl::Eq<event_delivery::event_id, &str>>,
                diesel::dsl::Eq<event_delivery::sink, &str>,
            >,
        ) -> QueryResult<usize>,
    ) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        let target = event_delivery::table
            .filter(event_delivery::event_id.eq(event_id))
            .filter(event_delivery::sink.eq(sink));
        apply(&mut conn, target).map(drop).map_err(db_error)
    }
}

impl EventOutbox for DieselStore {
    fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<PendingDelivery>, AuthError> {
        let mut conn = self.conn()?;
        let rows = event_delivery::table
            .inner_join(event::table)
            .filter(pending())
            .filter(event_delivery::next_attempt_at.le(naive(now)))
            .order((event_delivery::next_attempt_at.asc(), event::id.asc()))
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .select((
                (
                    event::id,
                    event::tenant_id,
                    event::name,
                    event::payload,
                    event::sealed_secret,
                    event::created_at,
                    event::expires_at,
                ),
                event_delivery::sink,
                event_delivery::attempts,
            ))
            .load::<(EventColumns, String, i32)>(&mut *conn)
            .map_err(db_error)?;
        rows.into_iter()
            .map(|(ev, sink, attempts)| {
                Ok(PendingDelivery {
                    event: stored_event(ev)?,
                    sink,
                    attempts,
                })
            })
            .collect()
    }

    fn record_delivered(&self, event_id: &str, sink: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        self.update_delivery(event_id, sink, |c, target| {
            diesel::update(target)
                .set((
                    event_delivery::delivered_at.eq(Some(naive(now))),
                    event_delivery::attempts.eq(event_delivery::attempts + 1),
                    event_delivery::last_error.eq(None::<String>),
                ))
                .execute(c)
        })
    }

    fn record_failure(
        &self,
        event_id: &str,
        sink: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        self.update_delivery(event_id, sink, |c, target| {
            diesel::update(target)
                .set((
                    event_delivery::attempts.eq(event_delivery::attempts + 1),
                    event_delivery::last_error.eq(Some(error)),
                    event_delivery::next_attempt_at.eq(naive(next_attempt_at)),
                ))
                .execute(c)
        })
    }

    fn record_expired(&self, event_id: &str, sink: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        self.update_delivery(event_id, sink, |c, target| {
            diesel::update(target)
                .set(event_delivery::expired_at.eq(Some(naive(now))))
                .execute(c)
        })
    }

    fn erase_settled_secrets(&self, now: DateTime<Utc>) -> Result<usize, AuthError> {
        let mut conn = self.conn()?;
        let unsettled = event_delivery::table
            .filter(event_delivery::event_id.eq(event::id))
            .filter(pending());
        let expired = event::expires_at
            .is_not_null()
            .and(event::expires_at.le(naive(now)).assume_not_null());
        diesel::update(
            event::table
                .filter(event::sealed_secret.is_not_null())
                .filter(expired.or(not(exists(unsettled)))),
        )
        .set(event::sealed_secret.eq(None::<String>))
        .execute(&mut *conn)
        .map_err(db_error)
    }
}
