//! Events: the sinks (file, log, webhook, email, NATS), delivery and its retries, and the janitor
//! that deletes settled events.

use std::path::PathBuf;
use std::time::Duration;

use super::render::{fmt_duration, REDACTED};
use super::setting::{section, DefaultValue::*, Env, Secrecy, Setting};
use super::{ConfigError, Secret};

section! {
    "Events",
    RESET_PASSWORD_URL = Setting::new(
        Text("http://localhost:8000/reset-password?token={token}&email={email}"),
        "reset link template of the email and log sinks ({token}, {email})",
        |c| Some(c.events.reset_password_url.clone()),
    )
    .tenant_default(),
    EVENTS_FILE = Setting::new(
        Unset,
        "file sink: appends every event as one line of JSON",
        |c| c.events.file.as_ref().map(|p| p.display().to_string()),
    ),
    LOG_SINK = Setting::new(
        Computed("on with SQLite when no other sink is on"),
        "true or false: forces the development log sink (prints reset links) on or off",
        |c| c.events.log_sink.map(|on| on.to_string()),
    ),
    WEBHOOK_URL = Setting::new(
        Unset,
        "webhook sink: POSTs every event here (needs WEBHOOK_SECRET)",
        |c| c.events.webhook.as_ref().map(|w| w.url.clone()),
    )
    .secrecy(Secrecy::UrlPassword)
    .tenant_default(),
    WEBHOOK_SECRET = Setting::new(
        Unset,
        "whsec_<base64> signing key; required with WEBHOOK_URL",
        |c| c.events.webhook.as_ref().map(|_| REDACTED.to_string()),
    )
    .secrecy(Secrecy::Secret)
    .tenant_default(),
    WEBHOOK_TIMEOUT = Setting::new(
        Text("10s"),
        "time limit of one webhook request (read only with WEBHOOK_URL)",
        |c| c.events.webhook.as_ref().map(|w| fmt_duration(w.timeout)),
    ),
    SMTP_URL = Setting::new(
        Unset,
        "email sink: smtps://[user:password@]host[:port] (needs EMAIL_FROM)",
        |c| c.events.email.as_ref().map(|e| e.smtp_url.clone()),
    )
    .secrecy(Secrecy::UrlPassword),
    EMAIL_FROM = Setting::new(
        Unset,
        "the sender address; required with SMTP_URL",
        |c| c.events.email.as_ref().map(|e| e.from.clone()),
    )
    .tenant_default(),
    NATS_URL = Setting::new(
        Unset,
        "NATS JetStream sink: nats://[user:password@|token@]host[:port], comma-separated",
        |c| c.events.nats.as_ref().map(|n| n.url.clone()),
    )
    .secrecy(Secrecy::UrlCredentials),
    NATS_SUBJECT = Setting::new(
        Text("xclade.auth.events"),
        "the subject events are published to (read only with NATS_URL)",
        |c| c.events.nats.as_ref().map(|n| n.subject.clone()),
    ),
    EVENT_MAX_ATTEMPTS = Setting::new(
        Text("10"),
        "attempts per sink before a delivery is dead",
        |c| Some(c.events.max_attempts.to_string()),
    ),
    EVENT_RETRY_INITIAL = Setting::new(
        Text("1s"),
        "delay after the first failed attempt; it doubles, up to 10 minutes",
        |c| Some(fmt_duration(c.events.retry_initial)),
    ),
    EVENT_LEASE = Setting::new(
        Text("60s"),
        "how long a dispatcher's claim holds before another instance may take it",
        |c| Some(fmt_duration(c.events.lease)),
    ),
    EVENT_POLL_INTERVAL = Setting::new(
        Text("500ms"),
        "pause between dispatcher passes when nothing wakes it",
        |c| Some(fmt_duration(c.events.poll_interval)),
    ),
    RESET_REQUEST_DELAY = Setting::new(
        Text("0s"),
        "for tests only: how long a recorded reset request waits before the worker takes it (its email is that late)",
        |c| Some(fmt_duration(c.events.reset_request_delay)),
    ),
    EVENT_RETENTION = Setting::new(
        Text("7d"),
        "the janitor deletes delivered and expired events older than this",
        |c| Some(fmt_duration(c.events.retention)),
    ),
    JANITOR_INTERVAL = Setting::new(
        Text("10m"),
        "how often the janitor runs",
        |c| Some(fmt_duration(c.events.janitor_interval)),
    ),
}

/// Events, their sinks and their delivery.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub reset_password_url: String,
    /// The file sink (`EVENTS_FILE`).
    pub file: Option<PathBuf>,
    /// `LOG_SINK`: `None` leaves the choice to the other sinks and the database.
    pub log_sink: Option<bool>,
    pub webhook: Option<WebhookSettings>,
    pub email: Option<EmailSettings>,
    pub nats: Option<NatsSettings>,
    /// Attempts per sink before a delivery is `dead`.
    pub max_attempts: u32,
    /// The delay after the first failed attempt.
    pub retry_initial: Duration,
    /// How long a dispatcher's claim on a delivery holds (another instance retries after it).
    pub lease: Duration,
    pub poll_interval: Duration,
    /// `RESET_REQUEST_DELAY` (tests only): the reset worker takes a request only this long after
    /// it was recorded.
    pub reset_request_delay: Duration,
    /// How long delivered and expired events are kept before the janitor deletes them.
    pub retention: Duration,
    /// How often the janitor runs.
    pub janitor_interval: Duration,
}

/// The webhook sink: `WEBHOOK_URL`, `WEBHOOK_SECRET` (`whsec_<base64>`, Standard Webhooks).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// The HMAC key: the base64-decoded part after `whsec_`.
    pub key: Secret,
    pub timeout: Duration,
}

/// The email sink: `SMTP_URL` (e.g. `smtps://user:pass@smtp.example.com`,
/// `smtp://localhost:2525`), `EMAIL_FROM`.
#[derive(Clone)]
pub struct EmailSettings {
    pub smtp_url: String,
    pub from: String,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings").field("from", &self.from).finish_non_exhaustive()
    }
}

/// The NATS JetStream sink: `NATS_URL`, `NATS_SUBJECT`.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    pub url: String,
    pub subject: String,
}

impl EventsConfig {
    pub(super) fn read(env: &Env) -> Result<EventsConfig, ConfigError> {
        let events = EventsConfig {
            reset_password_url: env.string(&RESET_PASSWORD_URL)?,
            file: env.get(&EVENTS_FILE).map(PathBuf::from),
            log_sink: env.optional_flag(&LOG_SINK)?,
            retry_initial: env.duration(&EVENT_RETRY_INITIAL)?,
            poll_interval: env.duration(&EVENT_POLL_INTERVAL)?,
            reset_request_delay: env.duration(&RESET_REQUEST_DELAY)?,
            max_attempts: env.number::<u32>(&EVENT_MAX_ATTEMPTS)?.max(1),
            lease: env.duration(&EVENT_LEASE)?,
            // The secret and the timeout are read only with a URL (`config` says "not used").
            webhook: match (env.get(&WEBHOOK_URL), env.get(&WEBHOOK_SECRET)) {
                (None, _) => None,
                (Some(_), None) => return Err(WEBHOOK_SECRET.invalid("is required with WEBHOOK_URL")),
                (Some(url), Some(secret)) => {
                    Some(WebhookSettings { url, key: webhook_key(&secret)?, timeout: env.duration(&WEBHOOK_TIMEOUT)? })
                }
            },
            email: match (env.get(&SMTP_URL), env.get(&EMAIL_FROM)) {
                (None, _) => None,
                (Some(_), None) => return Err(EMAIL_FROM.invalid("is required with SMTP_URL")),
                (Some(smtp_url), Some(from)) => Some(EmailSettings { smtp_url, from }),
            },
            nats: match env.get(&NATS_URL) {
                None => None,
                Some(url) => Some(NatsSettings { url, subject: env.string(&NATS_SUBJECT)? }),
            },
            retention: env.duration(&EVENT_RETENTION)?,
            janitor_interval: env.duration(&JANITOR_INTERVAL)?,
        };
        if events.lease.is_zero() || events.poll_interval.is_zero() {
            let setting = if events.lease.is_zero() { EVENT_LEASE } else { EVENT_POLL_INTERVAL };
            return Err(setting.invalid("must be longer than zero"));
        }
        if events.janitor_interval.is_zero() {
            return Err(JANITOR_INTERVAL.invalid("must be longer than zero"));
        }
        Ok(events)
    }
}

/// The HMAC key of a Standard Webhooks secret `whsec_<base64>`.
fn webhook_key(secret: &str) -> Result<Secret, ConfigError> {
    use base64::Engine as _;
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
        .map(Secret)
        .ok_or_else(|| WEBHOOK_SECRET.invalid("must be whsec_ followed by base64"))
}

/// The time limit of one webhook request: `WEBHOOK_TIMEOUT` as set (it is read with `WEBHOOK_URL`
/// only, so this reads the text the configuration came from), for the webhooks that tenants set
/// when the platform has none.
pub fn webhook_timeout(config: &super::Config) -> Duration {
    let text = config.source.0.get(WEBHOOK_TIMEOUT.name).map_or(WEBHOOK_TIMEOUT.default_text(), String::as_str);
    super::setting::parse_duration(text).unwrap_or(Duration::from_secs(10))
}
