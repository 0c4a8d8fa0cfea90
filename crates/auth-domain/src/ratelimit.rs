//! Rate limits: token buckets named by key (a client address, an email, both), checked by the
//! use cases. The in-process limiter serves a single instance (SQLite); `auth-store-diesel`
//! keeps the buckets in PostgreSQL so several instances share one budget.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::AuthError;

/// `capacity` requests per `window`, refilled continuously (a token bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub capacity: u32,
    pub window: Duration,
}

impl RateLimit {
    /// Parses `N/duration` as the configuration writes it (`60/1m`, `5/15m`, `1/60s`); the
    /// duration takes `ms`, `s`, `m`, `h`, `d` or bare seconds.
    pub fn parse(value: &str) -> Option<RateLimit> {
        let (count, window) = value.trim().split_once('/')?;
        let capacity: u32 = count.trim().parse().ok().filter(|c| *c > 0)?;
        let window = window.trim();
        let split = window.find(|c: char| !c.is_ascii_digit()).unwrap_or(window.len());
        let (digits, unit) = window.split_at(split);
        let n: i64 = if digits.is_empty() { 1 } else { digits.parse().ok()? };
        let window = match unit {
            "ms" => Duration::milliseconds(n),
            "" | "s" => Duration::seconds(n),
            "m" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            _ => return None,
        };
        (window > Duration::zero()).then_some(RateLimit { capacity, window })
    }

    /// Tokens regained per second.
    pub fn refill_per_second(&self) -> f64 {
        f64::from(self.capacity) / (self.window.num_milliseconds() as f64 / 1000.0)
    }

    /// How long until one token is back, from `tokens` left.
    pub fn wait_for_token(&self, tokens: f64) -> Duration {
        let missing = (1.0 - tokens).max(0.0);
        Duration::milliseconds(((missing / self.refill_per_second()) * 1000.0).ceil() as i64)
    }
}

/// The answer of a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; a token is back after this long.
    Limited {
        retry_after: Duration,
    },
}

impl Decision {
    /// `AuthError::TooManyRequests` when limited; `limit` names the limit.
    pub fn check(self, limit: &'static str) -> Result<(), AuthError> {
        match self {
            Decision::Allowed => Ok(()),
            Decision::Limited { retry_after } => {
                // Rounded up: a client that waits exactly this long finds a token.
                let secs = (retry_after.num_milliseconds().max(0) as u64).div_ceil(1000).max(1);
                Err(AuthError::TooManyRequests { limit, retry_after_secs: secs })
            }
        }
    }
}

/// Where the buckets live.
///
/// Every method returns `AuthError::Database` when a database-backed limiter cannot reach its
/// database.
pub trait RateLimiter: Send + Sync {
    /// Takes a token from the bucket `key` (created full); `Limited` without taking when empty.
    fn take(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<Decision, AuthError>;

    /// Whether a token is available, without taking it.
    fn peek(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<Decision, AuthError>;

    /// Gives back one token taken from the bucket `key` by `take` (at most up to `capacity`): a
    /// request that reserved a token before its work and then did not need it. A bucket that is
    /// gone meanwhile stays gone (it is full).
    fn give_back(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<(), AuthError>;

    /// Forgets the bucket `key` (it is full again).
    fn reset(&self, key: &str) -> Result<(), AuthError>;

    /// Forgets the buckets not taken from for `idle` or longer at `now`; returns how many. With
    /// `idle` at least the longest window of the limits in use (`Limits::longest_window`), those
    /// buckets are full again (a bucket refills completely within its window), so forgetting
    /// them changes no decision. The janitor calls it; the default keeps nothing to forget.
    fn prune(&self, now: DateTime<Utc>, idle: Duration) -> Result<usize, AuthError> {
        let _ = (now, idle);
        Ok(0)
    }
}

/// No limits at all (`RATE_LIMIT_ENABLED=false`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl RateLimiter for Unlimited {
    fn take(&self, _: &str, _: &RateLimit, _: DateTime<Utc>) -> Result<Decision, AuthError> {
        Ok(Decision::Allowed)
    }
    fn peek(&self, _: &str, _: &RateLimit, _: DateTime<Utc>) -> Result<Decision, AuthError> {
        Ok(Decision::Allowed)
    }
    fn give_back(&self, _: &str, _: &RateLimit, _: DateTime<Utc>) -> Result<(), AuthError> {
        Ok(())
    }
    fn reset(&self, _: &str) -> Result<(), AuthError> {
        Ok(())
    }
}

/// Token buckets in this process's memory (one instance).
#[derive(Debug, Default)]
pub struct InMemoryRateLimiter {
    buckets: Mutex<HashMap<String, (f64, DateTime<Utc>)>>,
}

impl InMemoryRateLimiter {
    fn refilled(limit: &RateLimit, bucket: Option<(f64, DateTime<Utc>)>, now: DateTime<Utc>) -> f64 {
        match bucket {
            None => f64::from(limit.capacity),
            Some((tokens, at)) => {
                let elapsed = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
                (tokens + elapsed * limit.refill_per_second()).min(f64::from(limit.capacity))
            }
        }
    }

    /// Drops day-old buckets when there are very many, between two janitor passes
    /// (`RateLimiter::prune`), so memory follows the active keys only.
    fn shed_if_crowded(buckets: &mut HashMap<String, (f64, DateTime<Utc>)>, now: DateTime<Utc>) {
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, at)| now - *at < Duration::hours(24));
        }
    }
}

impl RateLimiter for InMemoryRateLimiter {
    fn take(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<Decision, AuthError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tokens = Self::refilled(limit, buckets.get(key).copied(), now);
        if tokens < 1.0 {
            return Ok(Decision::Limited { retry_after: limit.wait_for_token(tokens) });
        }
        buckets.insert(key.to_string(), (tokens - 1.0, now));
        Self::shed_if_crowded(&mut buckets, now);
        Ok(Decision::Allowed)
    }

    fn peek(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<Decision, AuthError> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tokens = Self::refilled(limit, buckets.get(key).copied(), now);
        Ok(if tokens < 1.0 {
            Decision::Limited { retry_after: limit.wait_for_token(tokens) }
        } else {
            Decision::Allowed
        })
    }

    fn give_back(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<(), AuthError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get(key).copied() {
            let tokens = (Self::refilled(limit, Some(bucket), now) + 1.0).min(f64::from(limit.capacity));
            buckets.insert(key.to_string(), (tokens, now));
        }
        Ok(())
    }

    fn reset(&self, key: &str) -> Result<(), AuthError> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }

    fn prune(&self, now: DateTime<Utc>, idle: Duration) -> Result<usize, AuthError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let before = buckets.len();
        buckets.retain(|_, (_, at)| now - *at < idle);
        Ok(before - buckets.len())
    }
}

impl<T: RateLimiter + ?Sized> RateLimiter for std::sync::Arc<T> {
    fn take(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<Decision, AuthError> {
        (**self).take(key, limit, now)
    }
    fn peek(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<Decision, AuthError> {
        (**self).peek(key, limit, now)
    }
    fn give_back(&self, key: &str, limit: &RateLimit, now: DateTime<Utc>) -> Result<(), AuthError> {
        (**self).give_back(key, limit, now)
    }
    fn reset(&self, key: &str) -> Result<(), AuthError> {
        (**self).reset(key)
    }
    fn prune(&self, now: DateTime<Utc>, idle: Duration) -> Result<usize, AuthError> {
        (**self).prune(now, idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_configuration_form() {
        assert_eq!(RateLimit::parse("60/1m"), Some(RateLimit { capacity: 60, window: Duration::minutes(1) }));
        assert_eq!(RateLimit::parse("5/15m"), Some(RateLimit { capacity: 5, window: Duration::minutes(15) }));
        assert_eq!(RateLimit::parse("1/60s"), Some(RateLimit { capacity: 1, window: Duration::seconds(60) }));
        assert_eq!(RateLimit::parse("20/h"), Some(RateLimit { capacity: 20, window: Duration::hours(1) }));
        for bad in ["", "60", "0/1m", "x/1m", "5/0s", "5/1w"] {
            assert_eq!(RateLimit::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bucket_empties_and_refills() {
        let limiter = InMemoryRateLimiter::default();
        let limit = RateLimit { capacity: 3, window: Duration::seconds(30) };
        let t0 = Utc::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("k", &limit, t0).unwrap(), Decision::Allowed);
        }
        let Decision::Limited { retry_after } = limiter.take("k", &limit, t0).unwrap() else { panic!("limited") };
        assert_eq!(retry_after, Duration::seconds(10), "one token back every 10 s");
        assert!(matches!(limiter.peek("k", &limit, t0 + Duration::seconds(9)).unwrap(), Decision::Limited { .. }));
        assert_eq!(limiter.take("k", &limit, t0 + Duration::seconds(10)).unwrap(), Decision::Allowed);
        assert_eq!(limiter.take("other", &limit, t0).unwrap(), Decision::Allowed, "keys are separate");
        limiter.give_back("k", &limit, t0 + Duration::seconds(10)).unwrap();
        assert_eq!(limiter.take("k", &limit, t0 + Duration::seconds(10)).unwrap(), Decision::Allowed, "given back");
        limiter.give_back("absent", &limit, t0).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().get("absent"), None, "a full bucket stays full");
        limiter.reset("k").unwrap();
        assert_eq!(limiter.peek("k", &limit, t0).unwrap(), Decision::Allowed);
        let err = Decision::Limited { retry_after: Duration::milliseconds(300) }.check("client").unwrap_err();
        assert!(matches!(err, AuthError::TooManyRequests { limit: "client", retry_after_secs: 1 }));
    }
}
