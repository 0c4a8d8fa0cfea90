//! Event delivery: one pass of the dispatcher over the outbox. The loop that repeats it lives in
//! `auth-server`; this is the logic, testable without a database.

use std::sync::Arc;

use chrono::Duration;

use crate::ports::{Clock, EventOutbox, EventSink};
use crate::secret::SecretBox;
use crate::AuthError;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub delivered: usize,
    pub failed: usize,
    pub expired: usize,
}

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// The delay before another attempt after a failure.
    pub retry_delay: Duration,
    /// How many deliveries one pass takes at most.
    pub batch: usize,
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
        f.debug_struct("Dispatcher")
            .field("sinks", &sinks)
            .field("settings", &self.settings)
            .finish()
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
        Dispatcher {
            outbox,
            clock,
            sinks,
            secrets,
            settings,
        }
    }

    /// Delivers every due delivery once: delivered, failed (retried after the delay) or expired
    /// (its token expired first). Then erases the secrets no delivery needs any more.
    pub fn run_pass(&self) -> Result<PassReport, AuthError> {
        let now = self.clock.now();
        let mut report = PassReport::default();
        for pending in self.outbox.due_deliveries(now, self.settings.batch)? {
            let (event, sink_name) = (&pending.event, pending.sink.as_str());
            if event.is_expired(now) {
                self.outbox.record_expired(&event.id, sink_name, now)?;
                log::info!(
                    "event {} ({}) expired before delivery to {sink_name}",
                    event.id,
                    event.name
                );
                report.expired += 1;
                continue;
            }
            let outcome = match self.sinks.iter().find(|s| s.name() == sink_name) {
                None => Err(format!("sink {sink_name} is not configured on this instance")),
                Some(sink) => match event.envelope(&self.secrets) {
                    Ok(envelope) => sink.deliver(&envelope),
                    Err(e) => Err(e.to_string()),
                },
            };
            match outcome {
                Ok(()) => {
                    self.outbox.record_delivered(&event.id, sink_name, self.clock.now())?;
                    log::debug!("event {} ({}) delivered to {sink_name}", event.id, event.name);
                    report.delivered += 1;
                }
                Err(error) => {
                    let next = self.clock.now() + self.settings.retry_delay;
                    self.outbox.record_failure(&event.id, sink_name, &error, next)?;
                    log::warn!(
                        "event {} ({}) not delivered to {sink_name} (attempt {}): {error}",
                        event.id,
                        event.name,
                        pending.attempts + 1
                    );
                    report.failed += 1;
                }
            }
        }
        self.outbox.erase_settled_secrets(self.clock.now())?;
        Ok(report)
    }
}
