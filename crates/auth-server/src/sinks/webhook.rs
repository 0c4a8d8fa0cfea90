//! The webhook sink: `POST` of the envelope, signed as the Standard Webhooks specification says.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use auth_domain::event::Envelope;
use auth_domain::ports::EventSink;

use auth_domain::tenant::WebhookTarget;

use super::Tenants;
use crate::config::events::WebhookSettings;

/// Posts each envelope to its tenant's `WEBHOOK_URL` (the global one unless the tenant set its
/// own) with `webhook-id` (the event id, for deduplication), `webhook-timestamp` and
/// `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` under the tenant's
/// `WEBHOOK_SECRET`. A 2xx answer is a delivery; anything else (redirects included), or no
/// answer within the timeout, a failed attempt.
pub struct WebhookSink {
    /// The global webhook, if any.
    global: Option<WebhookTarget>,
    tenants: Option<Tenants>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink").field("global", &self.global).finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// The sink of the global webhook (`WEBHOOK_URL`, `WEBHOOK_SECRET`, `WEBHOOK_TIMEOUT`).
    pub fn new(settings: &WebhookSettings) -> Result<WebhookSink, String> {
        let mut sink = WebhookSink::for_tenants(settings.timeout)?;
        sink.global = Some(WebhookTarget { url: settings.url.clone(), secret: settings.key.0.clone() });
        Ok(sink)
    }

    /// A sink with no global webhook: it posts the events of the tenants that set their own.
    pub fn for_tenants(timeout: std::time::Duration) -> Result<WebhookSink, String> {
        let tls = native_tls::TlsConnector::new().map_err(|e| format!("TLS setup: {e}"))?;
        // No redirects: a receiver that moved answers 3xx, which is a failed attempt, not a
        // delivery re-sent as a GET without its body.
        let agent = ureq::AgentBuilder::new().timeout(timeout).redirects(0).tls_connector(Arc::new(tls)).build();
        Ok(WebhookSink { global: None, tenants: None, agent })
    }

    /// Posts each event where its tenant says.
    pub fn with_tenants(mut self, tenants: Tenants) -> WebhookSink {
        self.tenants = Some(tenants);
        self
    }

    /// The `webhook-signature` value for a message signed with `key`.
    pub fn signature(key: &[u8], id: &str, timestamp: u64, body: &str) -> Result<String, String> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| format!("HMAC key: {e}"))?;
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
    }

    /// Where `envelope` goes: its tenant's webhook, or the global one.
    fn target(&self, envelope: &Envelope) -> Result<WebhookTarget, String> {
        match &self.tenants {
            Some(tenants) => super::tenant_settings(tenants, envelope)?.webhook.clone(),
            None => self.global.clone(),
        }
        .ok_or_else(|| format!("no webhook is configured for the tenant {}", envelope.tenant))
    }
}

impl EventSink for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    fn deliver(&self, envelope: &Envelope) -> Result<(), String> {
        let body = serde_json::to_string(envelope).map_err(|e| format!("encoding the envelope: {e}"))?;
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let target = self.target(envelope)?;
        let signature = WebhookSink::signature(&target.secret, &envelope.id, timestamp, &body)?;
        let result = self
            .agent
            .post(&target.url)
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
