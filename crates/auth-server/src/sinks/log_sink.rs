use auth_domain::event::{Envelope, PASSWORD_CHANGED, PASSWORD_RESET};
use auth_domain::ports::EventSink;

/// Development only: prints the reset link (from `RESET_PASSWORD_URL`) to the log, so a
/// developer can reset a password without a mail server. The one place a token is logged.
#[derive(Debug)]
pub struct LogSink {
    url_template: String,
}

impl LogSink {
    pub fn new(url_template: String) -> LogSink {
        LogSink { url_template }
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
            PASSWORD_RESET => log::info!(
                "[log sink] {} for {entity} ({actor}): {}",
                envelope.id,
                super::reset_link(&self.url_template, field("token"), entity)
            ),
            PASSWORD_CHANGED => {
                log::info!("[log sink] {}: the password of {entity} ({actor}) was changed", envelope.id)
            }
            other => log::info!("[log sink] {} {other}", envelope.id),
        }
        Ok(())
    }
}
