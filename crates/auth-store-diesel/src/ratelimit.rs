//! Rate-limit buckets in PostgreSQL, so that several instances share one budget: one atomic
//! statement per check.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Double, Text, Timestamp};

use auth_domain::ratelimit::{Decision, RateLimit, RateLimiter};
use auth_domain::AuthError;

use crate::connection::DbConnection;
use crate::rows::naive;
use crate::tx::db_error;
use crate::DieselStore;

/// The buckets of a PostgreSQL store (see `DieselStore::shared_rate_limiter`).
#[derive(Debug, Clone)]
pub struct PgRateLimiter {
    store: DieselStore,
}

#[derive(QueryableByName)]
struct Tokens {
    #[diesel(sql_type = Double)]
    tokens: f64,
}

/// The bucket's tokens after refilling since its last update, at most `capacity`.
const REFILLED: &str = "LEAST($2, r.tokens + EXTRACT(EPOCH FROM ($3 - r.updated_at)) * $4)";

impl DieselStore {
    /// A limiter whose buckets live in this database, when it is PostgreSQL; `None` on SQLite,
    /// where limits stay in the process.
    pub fn shared_rate_limiter(&self) -> Option<PgRateLimiter> {
        self.url().is_postgres().then(|| PgRateLimiter { store: self.clone() })
    }
}

impl PgRateLimiter {
    fn tokens(&self, sql: &str, key: &str, limit: &RateLimit, now: NaiveDateTime) -> Result<Option<f64>, AuthError> {
        let mut conn = self.store.conn()?;
        let DbConnection::Postgresql(pg) = &mut *conn else {
            return Err(AuthError::Unexpected("the shared rate limiter needs PostgreSQL".into()));
        };
        let rows: Vec<Tokens> = diesel::sql_query(sql)
            .bind::<Text, _>(key)
            .bind::<Double, _>(f64::from(limit.capacity))
            .bind::<Timestamp, _>(now)
            .bind::<Double, _>(limit.refill_per_second())
            .load(pg)
            .map_err(db_error)?;
        Ok(rows.first().map(|r| r.tokens))
    }
}

impl RateLimiter for PgRateLimiter {
    fn take(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<Decision, AuthError> {
        let now = naive(now);
        // Insert a full bucket minus one, or take one from the refilled bucket if it has one:
        // no row comes back when it is empty.
        let take = format!(
            "INSERT INTO rate_limit AS r (key, tokens, updated_at) VALUES ($1, $2 - 1, $3) \
             ON CONFLICT (key) DO UPDATE SET tokens = {REFILLED} - 1, updated_at = $3 \
             WHERE {REFILLED} >= 1 RETURNING tokens"
        );
        if self.tokens(&take, key, limit, now)?.is_some() {
            return Ok(Decision::Allowed);
        }
        self.peek_at(key, limit, now)
    }

    fn peek(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<Decision, AuthError> {
        self.peek_at(key, limit, naive(now))
    }

    fn give_back(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<(), AuthError> {
        let give = format!(
            "UPDATE rate_limit AS r SET tokens = LEAST($2, {REFILLED} + 1), updated_at = $3 \
             WHERE r.key = $1 RETURNING tokens"
        );
        self.tokens(&give, key, limit, naive(now)).map(drop)
    }

    fn reset(&self, key: &str) -> Result<(), AuthError> {
        use crate::schema::rate_limit;
        let mut conn = self.store.conn()?;
        diesel::delete(rate_limit::table.filter(rate_limit::key.eq(key)))
            .execute(&mut *conn)
            .map(drop)
            .map_err(db_error)
    }

    fn prune(&self, now: DateTime<Utc>, idle: chrono::Duration) -> Result<usize, AuthError> {
        let cutoff = crate::janitor::before(now, idle);
        self.store.delete_in_batches(|c| crate::janitor::idle_rate_limits(c, cutoff))
    }
}

impl PgRateLimiter {
    fn peek_at(&self, key: &str, limit: &RateLimit, now: NaiveDateTime) -> Result<Decision, AuthError> {
        let read = format!("SELECT {REFILLED} AS tokens FROM rate_limit r WHERE r.key = $1 AND $2 > -1 AND $4 > -1");
        Ok(match self.tokens(&read, key, limit, now)? {
            Some(tokens) if tokens < 1.0 => Decision::Limited { retry_after: limit.wait_for_token(tokens) },
            _ => Decision::Allowed,
        })
    }
}
