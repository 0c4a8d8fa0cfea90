//! The janitor loop: a housekeeping pass on the blocking pool shortly after start, then every
//! `JANITOR_INTERVAL`. It deletes expired reset tokens and sessions, settled events older than
//! `EVENT_RETENTION` and idle rate-limit buckets (`auth_domain::janitor`), so the database does
//! not grow without bound. Every instance runs it; the deletes are idempotent and take disjoint
//! rows, so instances do not get in each other's way.

use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use actix_web::web;

use auth_domain::janitor::{Janitor, JanitorSettings};
use auth_domain::ports::{PurgeReport, SystemClock};
use auth_domain::ratelimit::RateLimiter;
use auth_store_diesel::DieselStore;

use crate::config::Config;

pub type ServerJanitor = Janitor<DieselStore, SystemClock>;

/// Called after each successful pass with what it deleted (the metrics count it).
pub type OnPurge = Arc<dyn Fn(&PurgeReport) + Send + Sync>;

/// The longest wait before the first pass.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(1);

/// The janitor of `store`. `limiter` must be the one the service uses (its buckets are pruned);
/// on PostgreSQL the `rate_limit` table is pruned in any case, also with `RATE_LIMIT_ENABLED=false`
/// (rows left from when the limits were on).
pub fn from_config(store: DieselStore, limiter: Arc<dyn RateLimiter>, config: &Config) -> ServerJanitor {
    let limiter = match store.shared_rate_limiter() {
        Some(shared) => Arc::new(shared),
        None => limiter,
    };
    let settings = JanitorSettings {
        event_retention: chrono::Duration::from_std(config.events.retention).unwrap_or(chrono::Duration::MAX),
        rate_limit_idle: config.limits.buckets.longest_window(),
    };
    Janitor::new(store, limiter, SystemClock, settings)
}

/// Spawns the loop on the current actix system; it ends with the system (or `abort`). The first
/// pass runs after `interval` or one second, whichever is shorter, then one every `interval`.
/// A pass logs what it deleted at info (nothing when it deleted nothing) and a failure as a
/// warning; `on_pass` is called after each pass that succeeded.
pub fn spawn(janitor: Arc<ServerJanitor>, interval: Duration, on_pass: OnPurge) -> JoinHandle<()> {
    actix_web::rt::spawn(async move {
        tokio::time::sleep(interval.min(FIRST_PASS_AFTER)).await;
        loop {
            let pass = janitor.clone();
            match web::block(move || pass.run_pass()).await {
                Ok(Ok(report)) => {
                    if !report.is_empty() {
                        log::info!(
                            "janitor deleted {} expired reset tokens, {} expired sessions, {} settled events, \
                             {} idle rate-limit buckets, {} expired pending sign-ins",
                            report.reset_tokens,
                            report.sessions,
                            report.events,
                            report.rate_limits,
                            report.oauth_states
                        );
                    }
                    on_pass(&report);
                }
                Ok(Err(e)) => log::warn!("janitor pass failed: {}", auth_http::cause_chain(&e)),
                Err(e) => log::error!("janitor pass panicked: {e}"),
            }
            tokio::time::sleep(interval).await;
        }
    })
}
