//! The webhook sink: `POST` of the envelope, signed as the Standard Webhooks specification says.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use auth_domain::event::Envelope;
use auth_domain::ports::EventSink;

use crate::config::events::WebhookSettings;

/// Posts each envelope to `WEBHOOK_URL` with `webhook-id` (the event id, for deduplication),
/// `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
/// A 2xx answer is a delivery; anything else (redirects included), or no answer within the
/// timeout, a failed attempt.
pub struct WebhookSink {
    url: String,
    key: Vec<u8>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink").field("url", &self.url).finish_non_exhaustive()
    }
}

impl WebhookSink {
    pub fn new(settings: &WebhookSettings) -> Result<WebhookSink, String> {
        let tls = native_tls::TlsConnector::new().map_err(|e| format!("TLS setup: {e}"))?;
        // No redirects: a receiver that moved answers 3xx, which is a failed attempt, not a
        // delivery re-sent as a GET without its body.
        let agent =
            ureq::AgentBuilder::new().timeout(settings.timeout).redirects(0).tls_connector(Arc::new(tls)).build();
        Ok(WebhookSink { url: settings.url.clone(), key: settings.key.0.clone(), agent })
    }

    /// The `webhook-signature` value for a message.
    pub fn signature(&self, id: &str, timestamp: u64, body: &str) -> Result<String, String> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|e| format!("HMAC key: {e}"))?;
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
    }
}

impl EventSink for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    fn deliver(&self, envelope: &Envelope) -> Result<(), String> {
        let body = serde_json::to_string(envelope).map_err(|e| format!("encoding the envelope: {e}"))?;
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let signature = self.signature(&envelope.id, timestamp, &body)?;
        let result = self
            .agent
            .post(&self.url)
            .set("content-type", "application/json")
            .set("webhook-id", &envelope.id)
            .set("webhook-timestamp", &timestamp.to_string())
            .set("webhook-signature", &signature)
            .send_string(&body);
        match result {
            Ok(response) if (200..300).contains(&response.status()) => Ok(()),
            Ok(response) => Err(format!("the receiver answered HTTP {}", response.status())),
            Err(ureq::Error::Status(status, _)) => Err(format!("the receiver answered HTTP {status}")),
            // The kind only: the URL may carry a credential.
            Err(ureq::Error::Transport(t)) => Err(format!("transport error: {}", t.kind())),
        }
    }
}
