use auth_domain::event::{Envelope, PASSWORD_CHANGED, PASSWORD_RESET};
use auth_domain::ports::EventSink;

use super::Tenants;

/// Development only: prints the reset link (from `RESET_PASSWORD_URL`) to the log, so a
/// developer can reset a password without a mail server. The one place a token is logged.
/// Each tenant's link is its own `RESET_PASSWORD_URL`.
pub struct LogSink {
    url_template: String,
    tenants: Option<Tenants>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink").field("url_template", &self.url_template).finish_non_exhaustive()
    }
}

impl LogSink {
    pub fn new(url_template: String) -> LogSink {
        LogSink { url_template, tenants: None }
    }

    /// Links each event with its tenant's `RESET_PASSWORD_URL`.
    pub fn with_tenants(mut self, tenants: Tenants) -> LogSink {
        self.tenants = Some(tenants);
        self
    }
}

impl EventSink for LogSink {
    fn name(&self) -> &str {
        "log"
    }

    fn deliver(&self, envelope: &Envelope) -> Result<(), String> {
        let field = |k: &str| envelope.data.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let (entity, actor) = (field("entity_id"), field("actor_type"));
        match envelope.name.as_str() {
            PASSWORD_RESET => {
                let template = match &self.tenants {
                    Some(tenants) => super::tenant_settings(tenants, envelope)?.reset_password_url.clone(),
                    None => self.url_template.clone(),
                };
                log::info!(
                    "[log sink] {} for {entity} ({actor}) of {}: {}",
                    envelope.id,
                    envelope.tenant,
                    super::reset_link(&template, field("token"), entity)
                )
            }
            PASSWORD_CHANGED => {
                log::info!("[log sink] {}: the password of {entity} ({actor}) was changed", envelope.id)
            }
            other => log::info!("[log sink] {} {other}", envelope.id),
        }
        Ok(())
    }
}
