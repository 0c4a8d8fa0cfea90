use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

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

    /// The template with `{token}` and `{email}` replaced by their percent-encoded values.
    pub fn reset_link(&self, token: &str, email: &str) -> String {
        let encode = |v: &str| utf8_percent_encode(v, COMPONENT).to_string();
        self.url_template
            .replace("{token}", &encode(token))
            .replace("{email}", &encode(email))
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
                self.reset_link(field("token"), entity)
            ),
            PASSWORD_CHANGED => log::info!(
                "[log sink] {}: the password of {entity} ({actor}) was changed",
                envelope.id
            ),
            other => log::info!("[log sink] {} {other}", envelope.id),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_percent_encoded_values() {
        let sink = LogSink::new(crate::config::DEFAULT_RESET_PASSWORD_URL.into());
        assert_eq!(
            sink.reset_link("a.b-c", "ann+x@example.com"),
            "http://localhost:8000/reset-password?token=a.b-c&email=ann%2Bx%40example.com"
        );
    }
}
