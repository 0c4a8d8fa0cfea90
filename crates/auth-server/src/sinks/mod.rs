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

use auth_domain::event::Envelope;
use auth_domain::newtypes::TenantId;
use auth_domain::ports::EventSink;
use auth_domain::tenant::{TenantDirectory, TenantSettings};

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

/// The name of the webhook sink.
pub const WEBHOOK: &str = "webhook";

/// Where a sink finds an event's tenant's settings (sender, reset link, webhook).
pub type Tenants = Arc<dyn TenantDirectory>;

/// The settings of the tenant of `envelope`.
fn tenant_settings(tenants: &Tenants, envelope: &Envelope) -> Result<Arc<TenantSettings>, String> {
    tenants
        .tenant(&TenantId::new(envelope.tenant.clone()))
        .map(|tenant| tenant.settings)
        .ok_or_else(|| format!("the tenant {} is not in the directory", envelope.tenant))
}

/// The names of the sinks `from_config` makes, in its order, without making them.
pub fn names(config: &Config) -> Vec<String> {
    let events = &config.events;
    let mut names = vec![WEBHOOK.to_string()];
    if events.email.is_some() {
        names.push("email".into());
    }
    if events.nats.is_some() {
        names.push("nats".into());
    }
    if events.file.is_some() {
        names.push("file".into());
    }
    if log_sink_on(config) {
        names.push("log".into());
    }
    names
}

/// `LOG_SINK`, or by default on SQLite when no other sink is configured.
fn log_sink_on(config: &Config) -> bool {
    let events = &config.events;
    let configured =
        events.webhook.is_some() || events.email.is_some() || events.nats.is_some() || events.file.is_some();
    events.log_sink.unwrap_or(!config.server.database_url.is_postgres() && !configured)
}

/// The sinks the configuration asks for, each reading an event's tenant's settings from
/// `tenants`. The webhook sink is always there, for the tenants that set their own webhook; a
/// tenant without one (globally or of its own) has no delivery to it. The log sink is on when
/// `LOG_SINK=true`, or by default on SQLite when no other sink is configured.
pub fn from_config(config: &Config, tenants: Tenants) -> Result<Vec<Arc<dyn EventSink>>, StartError> {
    let sink_error = |name: &str, e: String| StartError::Config(format!("the {name} sink: {e}"));
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    let events = &config.events;
    let webhook = match &events.webhook {
        Some(webhook) => {
            // Scheme and host only: the path or query may carry a credential.
            let origin = webhook.url.split('/').take(3).collect::<Vec<_>>().join("/");
            let origin = origin.rsplit_once('@').map_or(origin.clone(), |(_, host)| host.to_string());
            log::info!("event sink `webhook`: POST to {origin}/... (and to the tenants' own webhooks)");
            WebhookSink::new(webhook)
        }
        None => WebhookSink::for_tenants(crate::config::events::webhook_timeout(config)),
    };
    sinks.push(Arc::new(webhook.map_err(|e| sink_error("webhook", e))?.with_tenants(tenants.clone())));
    if let Some(email) = &events.email {
        log::info!("event sink `email`: from {} (or the tenant's EMAIL_FROM)", email.from);
        let sink = EmailSink::new(email, &events.reset_password_url).map_err(|e| sink_error("email", e))?;
        sinks.push(Arc::new(sink.with_tenants(tenants.clone())));
    }
    if let Some(nats) = &events.nats {
        log::info!("event sink `nats`: JetStream subject {}", nats.subject);
        sinks.push(Arc::new(NatsSink::new(nats).map_err(|e| sink_error("nats", e))?));
    }
    if let Some(path) = &events.file {
        log::info!("event sink `file`: one envelope per line in {}", path.display());
        sinks.push(Arc::new(FileSink::new(path.clone())));
    }
    if log_sink_on(config) {
        log::warn!("event sink `log` is on: reset links are printed to this log (development only; LOG_SINK=false turns it off)");
        sinks.push(Arc::new(LogSink::new(events.reset_password_url.clone()).with_tenants(tenants)));
    }
    if sinks.len() == 1 && events.webhook.is_none() {
        log::warn!("no event sink is configured: reset tokens will not reach anyone but the tenants' own webhooks");
    }
    debug_assert_eq!(sinks.iter().map(|s| s.name().to_string()).collect::<Vec<_>>(), names(config));
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
