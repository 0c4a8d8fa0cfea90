//! Event delivery: one pass of the dispatcher over the outbox. The loop that repeats it lives in
//! `auth-server`; this is the logic, testable without a database.

use std::sync::Arc;

use chrono::Duration;

use crate::ports::{Clock, EventOutbox, EventSink};
use crate::secret::{fill_random, SecretBox};
use crate::AuthError;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub delivered: usize,
    pub failed: usize,
    pub dead: usize,
    pub expired: usize,
    /// The same outcomes per (sink, outcome): `delivered`, `failed`, `dead` or `expired`.
    pub by_sink: std::collections::BTreeMap<(String, &'static str), usize>,
}

impl PassReport {
    pub fn is_empty(&self) -> bool {
        *self == PassReport::default()
    }

    fn count(&mut self, sink: &str, outcome: &'static str) {
        let total = match outcome {
            "delivered" => &mut self.delivered,
            "failed" => &mut self.failed,
            "dead" => &mut self.dead,
            _ => &mut self.expired,
        };
        *total += 1;
        *self.by_sink.entry((sink.to_string(), outcome)).or_default() += 1;
    }
}

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// The delay after the first failure; it doubles with each further one (with jitter).
    pub retry_initial: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// Attempts per sink before the delivery is dead.
    pub max_attempts: u32,
    /// How long a claim holds: longer than the slowest sink takes to answer.
    pub lease: Duration,
    /// How many deliveries one pass takes at most.
    pub batch: usize,
}

impl DispatchSettings {
    /// The delay before the attempt after `failures` failures: `retry_initial * 2^(failures-1)`
    /// times a random factor in [0.8, 1.2) so that retries spread out, at most `retry_max`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let base = self.retry_initial.num_milliseconds().saturating_mul(1 << doublings);
        let mut byte = [0u8; 1];
        let jitter = if fill_random(&mut byte).is_ok() { 0.8 + f64::from(byte[0]) / 640.0 } else { 1.0 };
        let jittered = (base as f64 * jitter) as i64;
        Duration::milliseconds(jittered.min(self.retry_max.num_milliseconds()).max(0))
    }
}

pub struct Dispatcher<O, C> {
    outbox: O,
    clock: C,
    sinks: Vec<Arc<dyn EventSink>>,
    secrets: SecretBox,
    settings: DispatchSettings,
}

impl<O, C> std::fmt::Debug for Dispatcher<O, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sinks: Vec<&str> = self.sinks.iter().map(|s| s.name()).collect();
        f.debug_struct("Dispatcher").field("sinks", &sinks).field("settings", &self.settings).finish()
    }
}

impl<O: EventOutbox, C: Clock> Dispatcher<O, C> {
    pub fn new(
        outbox: O,
        clock: C,
        sinks: Vec<Arc<dyn EventSink>>,
        secrets: SecretBox,
        settings: DispatchSettings,
    ) -> Self {
        Dispatcher { outbox, clock, sinks, secrets, settings }
    }

    /// Claims the due deliveries and tries each once: delivered, failed (retried after a growing
    /// delay), dead (after the last attempt allowed) or expired (its token expired first). Then
    /// erases the secrets no delivery needs any more.
    pub fn run_pass(&self) -> Result<PassReport, AuthError> {
        self.run_pass_while(|| true)
    }

    /// `run_pass`, stopping before the next delivery once `keep_going` says no (a shutdown):
    /// the deliveries claimed and not attempted wait for their lease to end.
    pub fn run_pass_while(&self, keep_going: impl Fn() -> bool) -> Result<PassReport, AuthError> {
        let now = self.clock.now();
        let mut report = PassReport::default();
        let lease_end = now + self.settings.lease;
        let claimed = self.outbox.claim_due(now, lease_end, self.settings.batch)?;
        for pending in claimed {
            if !keep_going() {
                log::info!("dispatcher pass stopped before its end: shutting down");
                break;
            }
            // Slow sinks used up the lease: leave the rest, so no other dispatcher that claims
            // them after the lease ends delivers them a second time.
            if self.clock.now() + self.settings.lease / 4 > lease_end {
                log::warn!("dispatcher pass stopped early: the lease of its claims runs out");
                break;
            }
            let (event, sink_name) = (&pending.event, pending.sink.as_str());
            if event.is_expired(self.clock.now()) {
                self.outbox.record_expired(&event.id, sink_name, self.clock.now())?;
                log::info!("event {} ({}) expired before delivery to {sink_name}", event.id, event.name);
                report.count(sink_name, "expired");
                continue;
            }
            let outcome = match self.sinks.iter().find(|s| s.name() == sink_name) {
                None => Err(format!("sink {sink_name} is not configured on this instance")),
                Some(sink) => match event.envelope(&self.secrets) {
                    Ok(envelope) => sink.deliver(&envelope),
                    Err(e) => Err(e.to_string()),
                },
            };
            let failures = u32::try_from(pending.attempts).unwrap_or(0) + 1;
            match outcome {
                Ok(()) => {
                    self.outbox.record_delivered(&event.id, sink_name, self.clock.now())?;
                    log::debug!("event {} ({}) delivered to {sink_name}", event.id, event.name);
                    report.count(sink_name, "delivered");
                }
                Err(error) if failures >= self.settings.max_attempts => {
                    self.outbox.record_dead(&event.id, sink_name, &error, self.clock.now())?;
                    log::error!(
                        "event {} ({}) is dead for {sink_name} after {failures} attempts: {error} \
                         (`xclade-auth events retry {}` re-arms it)",
                        event.id,
                        event.name,
                        event.id
                    );
                    report.count(sink_name, "dead");
                }
                Err(error) => {
                    let next = self.clock.now() + self.settings.backoff(failures);
                    self.outbox.record_failure(&event.id, sink_name, &error, next)?;
                    log::warn!(
                        "event {} ({}) not delivered to {sink_name} (attempt {failures}): {error}",
                        event.id,
                        event.name
                    );
                    report.count(sink_name, "failed");
                }
            }
        }
        self.outbox.erase_settled_secrets(self.clock.now())?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let s = DispatchSettings {
            retry_initial: Duration::seconds(1),
            retry_max: Duration::minutes(10),
            max_attempts: 10,
            lease: Duration::minutes(1),
            batch: 10,
        };
        for (failures, base) in [(1, 1_000), (2, 2_000), (3, 4_000), (9, 256_000)] {
            let ms = s.backoff(failures).num_milliseconds();
            assert!((base * 8 / 10..base * 12 / 10).contains(&ms), "{failures}: {ms} around {base}");
        }
        for failures in [11, 40] {
            let ms = s.backoff(failures).num_milliseconds();
            assert!((480_000..=600_000).contains(&ms), "{failures}: {ms} is capped at 10 min");
        }
    }
}
