//! The event sinks, chosen from the configuration (design §6): webhook, email, NATS JetStream,
//! file, and the development log sink. Each implements the domain's `EventSink`; the dispatcher
//! keeps one delivery state per sink.

mod email;
mod file;
mod log_sink;
mod nats;
mod webhook;

use std::sync::Arc;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use auth_domain::ports::EventSink;

use crate::config::Config;
use crate::StartError;

pub use email::EmailSink;
pub use file::FileSink;
pub use log_sink::LogSink;
pub use nats::NatsSink;
pub use webhook::WebhookSink;

/// Everything but RFC 3986's unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `RESET_PASSWORD_URL` with `{token}` and `{email}` replaced by their percent-encoded values.
pub fn reset_link(template: &str, token: &str, email: &str) -> String {
    let encode = |v: &str| utf8_percent_encode(v, COMPONENT).to_string();
    template.replace("{token}", &encode(token)).replace("{email}", &encode(email))
}

/// The sinks the configuration asks for. The log sink is on when `LOG_SINK=true`, or by default
/// on SQLite when no other sink is configured.
pub fn from_config(config: &Config) -> Result<Vec<Arc<dyn EventSink>>, StartError> {
    let sink_error = |name: &str, e: String| StartError::Config(format!("the {name} sink: {e}"));
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    let events = &config.events;
    if let Some(webhook) = &events.webhook {
        // Scheme and host only: the path or query may carry a credential.
        let origin = webhook.url.split('/').take(3).collect::<Vec<_>>().join("/");
        let origin = origin.rsplit_once('@').map_or(origin.clone(), |(_, host)| host.to_string());
        log::info!("event sink `webhook`: POST to {origin}/...");
        sinks.push(Arc::new(WebhookSink::new(webhook).map_err(|e| sink_error("webhook", e))?));
    }
    if let Some(email) = &events.email {
        log::info!("event sink `email`: from {}", email.from);
        sinks.push(Arc::new(EmailSink::new(email, &events.reset_password_url).map_err(|e| sink_error("email", e))?));
    }
    if let Some(nats) = &events.nats {
        log::info!("event sink `nats`: JetStream subject {}", nats.subject);
        sinks.push(Arc::new(NatsSink::new(nats).map_err(|e| sink_error("nats", e))?));
    }
    if let Some(path) = &events.file {
        log::info!("event sink `file`: one envelope per line in {}", path.display());
        sinks.push(Arc::new(FileSink::new(path.clone())));
    }
    let log_sink = events.log_sink.unwrap_or(!config.server.database_url.is_postgres() && sinks.is_empty());
    if log_sink {
        log::warn!("event sink `log` is on: reset links are printed to this log (development only; LOG_SINK=false turns it off)");
        sinks.push(Arc::new(LogSink::new(events.reset_password_url.clone())));
    }
    if sinks.is_empty() {
        log::warn!("no event sink is configured: reset tokens will not reach anyone");
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_carry_percent_encoded_values() {
        assert_eq!(
            super::reset_link(crate::config::events::RESET_PASSWORD_URL.default_text(), "a.b-c", "ann+x@example.com"),
            "http://localhost:8000/reset-password?token=a.b-c&email=ann%2Bx%40example.com"
        );
    }
}
