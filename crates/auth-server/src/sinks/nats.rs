//! The NATS sink: each envelope is published to a JetStream stream, and the stream's
//! acknowledgement is the delivery confirmation (design §6).
//!
//! The sink owns a small current-thread tokio runtime, run by a thread of its own so that the
//! connection stays alive between deliveries (it answers the server's PINGs, sees a restart and
//! reconnects); `deliver` runs on a blocking thread and waits with `block_on`. Nothing connects at
//! start (a NATS outage must not stop the auth service): the first delivery connects and makes
//! sure a stream captures the subject; a delivery replaces a client that is not connected, and a
//! failed delivery drops the connection so the next one starts afresh. Every network step is
//! bounded by [`STEP_TIMEOUT`], so a dead server makes a delivery fail instead of hang.

use std::error::Error as _;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{GetStreamByNameErrorKind, PublishAckFuture};
use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectErrorKind, ConnectOptions, HeaderMap, ServerAddr};
use percent_encoding::percent_decode_str;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use auth_domain::event::Envelope;
use auth_domain::ports::EventSink;

use crate::config::events::NatsSettings;

/// The longest any one network step (connect, stream lookup, publish, acknowledgement) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long JetStream remembers a `Nats-Msg-Id`: as long as the dispatcher's longest retry
/// delay (design §7: doubling up to 10 minutes), so a retry after a lost acknowledgement is
/// dropped as a duplicate instead of stored twice.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Reconnection attempts of a client before it gives up (a few minutes with the client's
/// backoff). A delivery never waits for them: it replaces a client that is not connected.
const MAX_RECONNECTS: usize = 60;

/// The credentials of `NATS_URL`, handed to the client as options so the addresses it keeps (and
/// may log) carry none.
enum Credentials {
    None,
    UserPassword { user: String, password: String },
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::UserPassword { .. } => "UserPassword(..)",
            Credentials::Token(_) => "Token(..)",
        })
    }
}

/// Publishes each envelope to `NATS_SUBJECT` through JetStream, with `Nats-Msg-Id: <event id>` so
/// that the stream drops a redelivered event within its duplicate window.
pub struct NatsSink {
    /// The servers of `NATS_URL`, without credentials.
    servers: Vec<ServerAddr>,
    credentials: Credentials,
    /// The credentials as they appear in `NATS_URL` (raw and decoded), scrubbed from error texts.
    secrets: Vec<String>,
    subject: String,
    /// The stream created when no stream captures the subject yet.
    stream_name: String,
    /// The runtime, whose tasks, I/O and timers the driver thread runs.
    runtime: Handle,
    /// Stops the driver thread; `None` only while the sink is dropped.
    stop: Option<oneshot::Sender<()>>,
    driver_running: Arc<AtomicBool>,
    connection: Mutex<Option<Connection>>,
}

/// A client, and its JetStream context once a stream captures the subject.
struct Connection {
    client: Client,
    context: jetstream::Context,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<&str> = self.servers.iter().map(ServerAddr::as_url_str).collect();
        f.debug_struct("NatsSink")
            .field("servers", &servers)
            .field("credentials", &self.credentials)
            .field("subject", &self.subject)
            .field("stream_name", &self.stream_name)
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    /// Checks the settings and builds the runtime; does not connect.
    pub fn new(settings: &NatsSettings) -> Result<NatsSink, String> {
        let (servers, credentials, secrets) = parse_servers(&settings.url)?;
        let subject = settings.subject.trim().to_string();
        if !is_publish_subject(&subject) {
            return Err(format!(
                "NATS_SUBJECT `{subject}` is not a subject to publish to (dot-separated tokens, no wildcards or spaces)"
            ));
        }
        let (runtime, stop, driver_running) = start_driver()?;
        Ok(NatsSink {
            servers,
            credentials,
            secrets,
            stream_name: stream_name_for(&subject),
            subject,
            runtime,
            stop: Some(stop),
            driver_running,
            connection: Mutex::new(None),
        })
    }

    /// Publishes the envelope and waits for the stream's acknowledgement, which says whether
    /// the stream already held this event id.
    fn publish(&self, envelope: &Envelope) -> Result<jetstream::publish::PublishAck, String> {
        let body = serde_json::to_vec(envelope).map_err(|e| format!("encoding the envelope: {e}"))?;
        // Without the driver thread, nothing would run the timeouts.
        if !self.driver_running.load(Ordering::SeqCst) {
            return Err("the NATS sink's runtime thread has stopped".into());
        }
        let mut connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        let result = self.runtime.block_on(async {
            let connected = connection.as_ref().filter(|c| c.client.connection_state() == State::Connected);
            let context = match connected {
                Some(c) => c.context.clone(),
                None => {
                    // A client that is still reconnecting is not waited for.
                    *connection = None;
                    let fresh = self.connect().await?;
                    let context = fresh.context.clone();
                    *connection = Some(fresh);
                    context
                }
            };
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, envelope.id.as_str());
            let ack: PublishAckFuture =
                step("publishing", context.publish_with_headers(self.subject.clone(), headers, body.into())).await?;
            step("waiting for the JetStream acknowledgement", ack.into_future()).await
        });
        if result.is_err() {
            // Start afresh next time: the client may be stuck reconnecting, or the stream gone.
            *connection = None;
        }
        result.map_err(|e| self.scrub(e))
    }

    /// Connects, and makes sure a stream captures the subject.
    async fn connect(&self) -> Result<Connection, String> {
        let options = match &self.credentials {
            Credentials::None => ConnectOptions::new(),
            Credentials::UserPassword { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Credentials::Token(token) => ConnectOptions::with_token(token.clone()),
        }
        .name("xclade-auth")
        .connection_timeout(STEP_TIMEOUT)
        .request_timeout(Some(STEP_TIMEOUT))
        .max_reconnects(Some(MAX_RECONNECTS));
        let client = match tokio::time::timeout(STEP_TIMEOUT, options.connect(self.servers.clone())).await {
            Err(_) => return Err(format!("connecting to NATS: no answer within {}s", STEP_TIMEOUT.as_secs())),
            Ok(Err(e)) => return Err(format!("connecting to NATS: {}", describe_connect_error(&e))),
            Ok(Ok(client)) => client,
        };
        let context = jetstream::ContextBuilder::new().timeout(STEP_TIMEOUT).build(client.clone());
        self.ensure_stream(&context).await?;
        Ok(Connection { client, context })
    }

    /// Uses the stream that captures the subject (one an operator set up, or ours from an earlier
    /// run), or creates ours with a duplicate window for `Nats-Msg-Id`.
    async fn ensure_stream(&self, context: &jetstream::Context) -> Result<(), String> {
        match tokio::time::timeout(STEP_TIMEOUT, context.stream_by_subject(self.subject.as_str())).await {
            Err(_) => return Err(no_answer("looking up the stream of the subject")),
            Ok(Ok(_existing)) => return Ok(()),
            Ok(Err(e)) if e.kind() == GetStreamByNameErrorKind::NotFound => {}
            Ok(Err(e)) => return Err(format!("looking up the stream of the subject: {e}")),
        }
        let config = stream::Config {
            name: self.stream_name.clone(),
            subjects: vec![self.subject.clone()],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let stream = step("creating the JetStream stream", context.get_or_create_stream(config)).await?;
        if !stream.cached_info().config.subjects.contains(&self.subject) {
            return Err(format!(
                "the JetStream stream {} exists but does not capture subject {}",
                self.stream_name, self.subject
            ));
        }
        log::info!("NATS sink: JetStream stream {} captures subject {}", self.stream_name, self.subject);
        Ok(())
    }

    /// Defence in depth: the client never sees the URL's credentials in an address, but an error
    /// text must never carry them whatever its origin.
    fn scrub(&self, mut text: String) -> String {
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }
}

impl EventSink for NatsSink {
    fn name(&self) -> &str {
        "nats"
    }

    fn deliver(&self, envelope: &Envelope) -> Result<(), String> {
        let ack = self.publish(envelope)?;
        if ack.duplicate {
            log::debug!("NATS sink: stream {} already held event {}", ack.stream, envelope.id);
        }
        Ok(())
    }
}

impl Drop for NatsSink {
    fn drop(&mut self) {
        // The client goes first (its connection closes), then the driver thread ends the runtime.
        // Nothing here blocks, so the last owner of the sink may be an async task.
        if let Ok(connection) = self.connection.get_mut() {
            connection.take();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the runtime on a thread of its own, which runs it until the returned sender is used or
/// dropped; the flag says whether that thread still runs.
fn start_driver() -> Result<(Handle, oneshot::Sender<()>, Arc<AtomicBool>), String> {
    struct ClearOnExit(Arc<AtomicBool>);
    impl Drop for ClearOnExit {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the NATS runtime: {e}"))?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = Arc::new(AtomicBool::new(true));
    let exit = ClearOnExit(Arc::clone(&running));
    std::thread::Builder::new()
        .name("xclade-nats".into())
        .spawn(move || {
            let _exit = exit;
            let _ = runtime.block_on(stopped);
            runtime.shutdown_background();
        })
        .map_err(|e| format!("starting the NATS runtime thread: {e}"))?;
    Ok((handle, stop, running))
}

/// Awaits one network step, at most [`STEP_TIMEOUT`].
async fn step<T, E: std::fmt::Display>(
    what: &str,
    future: impl IntoFuture<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, future).await {
        Err(_) => Err(no_answer(what)),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Ok(Ok(value)) => Ok(value),
    }
}

fn no_answer(what: &str) -> String {
    format!("{what}: no answer within {}s", STEP_TIMEOUT.as_secs())
}

/// The kind of a connection error, with the I/O error kind when there is one; never the source
/// text, which may quote the address.
fn describe_connect_error(error: &async_nats::ConnectError) -> String {
    let kind = error.kind();
    let io = error.source().and_then(|source| source.downcast_ref::<std::io::Error>());
    match (kind, io) {
        (ConnectErrorKind::Io, Some(io)) => format!("IO error: {}", io.kind()),
        (kind, _) => kind.to_string(),
    }
}

/// The servers of a (comma-separated) `NATS_URL` without credentials, the credentials, and the
/// secret strings to scrub from error texts. `nats://user:password@host` is user and password
/// authentication, `nats://token@host` token authentication, as other NATS clients read them.
fn parse_servers(url: &str) -> Result<(Vec<ServerAddr>, Credentials, Vec<String>), String> {
    let mut servers = Vec::new();
    let mut credentials = Credentials::None;
    let mut secrets = Vec::new();
    for (index, part) in url.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
        let invalid =
            || format!("NATS_URL: server {} is not a NATS URL (nats://[user:password@]host[:port])", index + 1);
        let addr: ServerAddr = part.parse().map_err(|_| invalid())?;
        let decode = |raw: &str| percent_decode_str(raw).decode_utf8().map(|s| s.into_owned()).map_err(|_| invalid());
        let raw_user = addr.username().unwrap_or_default();
        let raw_password = addr.password().unwrap_or_default();
        let found = match (raw_user, raw_password) {
            ("", "") => Credentials::None,
            (token, "") => Credentials::Token(decode(token)?),
            (user, password) => Credentials::UserPassword { user: decode(user)?, password: decode(password)? },
        };
        match &found {
            Credentials::None => {}
            Credentials::Token(secret) | Credentials::UserPassword { password: secret, .. } => {
                secrets.extend([part.to_string(), secret.clone()]);
                secrets.push(if raw_password.is_empty() { raw_user } else { raw_password }.to_string());
                if matches!(credentials, Credentials::None) {
                    credentials = found;
                }
            }
        }
        let host = addr.host();
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        let bare = format!("{}://{host}:{}", addr.scheme(), addr.port());
        servers.push(bare.parse::<ServerAddr>().map_err(|_| invalid())?);
    }
    if servers.is_empty() {
        return Err("NATS_URL names no server".into());
    }
    secrets.retain(|s| !s.is_empty());
    // Longest first, so that no part of a longer secret survives the scrubbing of a shorter one.
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    Ok((servers, credentials, secrets))
}

/// Whether `subject` can be published to: dot-separated non-empty tokens, no wildcard, no space.
fn is_publish_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject
            .split('.')
            .all(|token| !token.is_empty() && token != "*" && token != ">" && !token.chars().any(|c| c.is_whitespace()))
}

/// The stream created for a subject: `xclade.auth.events` → `XCLADE_AUTH_EVENTS`.
fn stream_name_for(subject: &str) -> String {
    subject.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{SocketAddr, TcpStream};
    use std::sync::Once;
    use std::time::Instant;

    use serde_json::{json, Map, Value};
    use tokio::runtime::Runtime;

    use super::*;

    const TEST_SERVER: &str = "nats://127.0.0.1:4222";

    static SKIP_NOTICE: Once = Once::new();

    /// Whether the test NATS server answers; a notice on stderr when not (once per binary), or a
    /// panic when `XCLADE_REQUIRE` names `nats`.
    fn nats_available() -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], 4222));
        if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            assert!(
                !auth_store_diesel::testing::required("nats"),
                "XCLADE_REQUIRE=nats but NATS at {TEST_SERVER} is unreachable: {e}"
            );
            SKIP_NOTICE.call_once(|| {
                // Straight to the process's stderr: libtest captures `eprintln!` of passing tests.
                let notice = format!(
                    "\n*** NATS unreachable at {TEST_SERVER} ({e}): the NATS sink tests were SKIPPED. \
                     Set XCLADE_REQUIRE=nats to make this a failure. ***\n"
                );
                let _ = std::io::stderr().write_all(notice.as_bytes());
            });
            return false;
        }
        true
    }

    fn unique_subject(prefix: &str) -> String {
        format!("{prefix}.{}", auth_domain::secret::random_hex(8).unwrap())
    }

    fn envelope() -> Envelope {
        let data = match json!({ "entity_id": "ann@example.com", "actor_type": "customer" }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Envelope {
            id: format!("evt_{}", auth_domain::secret::random_hex(13).unwrap().to_uppercase()),
            name: "auth.password_changed".into(),
            tenant: "default".into(),
            created_at: "2025-01-02T03:04:05.678Z".into(),
            data,
        }
    }

    fn sink(url: &str, subject: &str) -> NatsSink {
        NatsSink::new(&NatsSettings { url: url.into(), subject: subject.into() }).unwrap()
    }

    /// A client of the test server of its own, to read the streams back; deletes them when dropped.
    struct Reader {
        runtime: Runtime,
        context: jetstream::Context,
        streams: Vec<String>,
    }

    impl Reader {
        fn new() -> Reader {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            // The context spawns a task: build it inside the runtime.
            let context = runtime.block_on(async { jetstream::new(async_nats::connect(TEST_SERVER).await.unwrap()) });
            Reader { runtime, context, streams: Vec::new() }
        }

        fn cleanup(&mut self, stream: &str) {
            self.streams.push(stream.to_string());
        }

        fn create_stream(&mut self, name: &str, subjects: &[String]) {
            self.cleanup(name);
            let config = stream::Config { name: name.into(), subjects: subjects.to_vec(), ..Default::default() };
            self.runtime.block_on(self.context.create_stream(config)).unwrap();
        }

        fn message_count(&self, stream: &str) -> u64 {
            self.runtime.block_on(async {
                let stream = self.context.get_stream(stream).await.unwrap();
                stream.get_info().await.unwrap().state.messages
            })
        }

        fn message(&self, stream: &str, sequence: u64) -> jetstream::message::StreamMessage {
            self.runtime.block_on(async {
                let stream = self.context.get_stream(stream).await.unwrap();
                stream.get_raw_message(sequence).await.unwrap()
            })
        }

        fn stream_exists(&self, stream: &str) -> bool {
            self.runtime.block_on(self.context.get_stream(stream)).is_ok()
        }
    }

    impl Drop for Reader {
        fn drop(&mut self) {
            for stream in &self.streams {
                let _ = self.runtime.block_on(self.context.delete_stream(stream));
            }
        }
    }

    #[test]
    fn an_envelope_is_stored_in_the_stream_with_its_id_as_message_id() {
        if !nats_available() {
            return;
        }
        let subject = unique_subject("xclade.test");
        let mut reader = Reader::new();
        let stream = stream_name_for(&subject);
        reader.cleanup(&stream);
        let sink = sink(TEST_SERVER, &subject);
        assert_eq!(sink.name(), "nats");
        let env = envelope();
        sink.deliver(&env).unwrap();

        assert_eq!(reader.message_count(&stream), 1);
        let message = reader.message(&stream, 1);
        assert_eq!(message.subject.as_str(), subject);
        assert_eq!(message.payload.as_ref(), serde_json::to_vec(&env).unwrap().as_slice());
        let stored: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(stored["id"], env.id.as_str());
        assert_eq!(stored["data"]["entity_id"], "ann@example.com");
        let msg_id = message.headers.get(async_nats::header::NATS_MESSAGE_ID).map(|v| v.as_str().to_string());
        assert_eq!(msg_id.as_deref(), Some(env.id.as_str()));

        // The stream was made for deduplication, and the connection is reused.
        let info = reader
            .runtime
            .block_on(async { reader.context.get_stream(&stream).await.unwrap().get_info().await.unwrap() });
        assert_eq!(info.config.subjects, vec![subject.clone()]);
        assert!(info.config.duplicate_window >= Duration::from_secs(120));
        let second = envelope();
        sink.deliver(&second).unwrap();
        assert_eq!(reader.message_count(&stream), 2);
    }

    #[test]
    fn a_redelivered_envelope_is_stored_once() {
        if !nats_available() {
            return;
        }
        let subject = unique_subject("xclade.test");
        let mut reader = Reader::new();
        let stream = stream_name_for(&subject);
        reader.cleanup(&stream);
        let env = envelope();

        let first = sink(TEST_SERVER, &subject).publish(&env).unwrap();
        assert!(!first.duplicate);
        // Another sink (a restarted server) retrying the same event.
        let again = sink(TEST_SERVER, &subject);
        let second = again.publish(&env).unwrap();
        assert!(second.duplicate, "the second acknowledgement must say duplicate");
        assert_eq!(second.sequence, first.sequence);
        again.deliver(&env).unwrap();
        assert_eq!(reader.message_count(&stream), 1);
    }

    #[test]
    fn a_stream_that_already_captures_the_subject_is_used() {
        if !nats_available() {
            return;
        }
        let prefix = unique_subject("xclade.test");
        let mut reader = Reader::new();
        let existing = format!("{}_OPS", stream_name_for(&prefix));
        reader.create_stream(&existing, &[format!("{prefix}.>")]);
        let subject = format!("{prefix}.events");
        reader.cleanup(&stream_name_for(&subject));

        sink(TEST_SERVER, &subject).deliver(&envelope()).unwrap();
        assert_eq!(reader.message_count(&existing), 1);
        assert!(!reader.stream_exists(&stream_name_for(&subject)));
    }

    #[test]
    fn an_unreachable_server_fails_in_time_without_credentials_in_the_error() {
        let started = Instant::now();
        let sink = sink("nats://xclade-user:s3cret@127.0.0.1:1", "xclade.test.closed");
        let error = sink.deliver(&envelope()).unwrap_err();
        assert!(started.elapsed() < STEP_TIMEOUT + Duration::from_secs(2), "took {:?}", started.elapsed());
        assert!(!error.contains("s3cret") && !error.contains("xclade-user"), "{error}");
        assert!(error.starts_with("connecting to NATS"), "{error}");
        // It tries again on the next delivery, and fails the same way.
        assert!(sink.deliver(&envelope()).is_err());
        assert!(!format!("{sink:?}").contains("s3cret"));

        let token = self::sink("nats://t0ken-s3cret@127.0.0.1:1", "xclade.test.closed");
        let error = token.deliver(&envelope()).unwrap_err();
        assert!(!error.contains("t0ken-s3cret"), "{error}");
    }

    #[test]
    fn the_url_credentials_become_options_and_leave_the_addresses() {
        let (servers, credentials, secrets) =
            parse_servers(" nats://ann:p%40ss@nats-1:4223 , tls://nats-2, [::1]:4224").unwrap();
        let urls: Vec<&str> = servers.iter().map(ServerAddr::as_url_str).collect();
        assert_eq!(urls, ["nats://nats-1:4223", "tls://nats-2:4222", "nats://[::1]:4224"]);
        assert!(
            matches!(&credentials, Credentials::UserPassword { user, password } if user == "ann" && password == "p@ss")
        );
        assert!(secrets.iter().any(|s| s == "p@ss") && secrets.iter().any(|s| s == "p%40ss"));

        let (_, credentials, _) = parse_servers("nats://s3cr3t-token@localhost").unwrap();
        assert!(matches!(&credentials, Credentials::Token(t) if t == "s3cr3t-token"));
        let (_, credentials, secrets) = parse_servers("127.0.0.1").unwrap();
        assert!(matches!(credentials, Credentials::None) && secrets.is_empty());

        let error =
            NatsSink::new(&NatsSettings { url: "http://u:s3cret@host".into(), subject: "a.b".into() }).unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(NatsSink::new(&NatsSettings { url: " , ".into(), subject: "a.b".into() }).is_err());
    }

    #[test]
    fn the_subject_must_be_publishable_and_names_the_stream() {
        assert_eq!(stream_name_for("xclade.auth.events"), "XCLADE_AUTH_EVENTS");
        assert_eq!(stream_name_for("a-b.c_d"), "A_B_C_D");
        for bad in ["", "a..b", "a.*", "a.>", ".a", "a b"] {
            assert!(!is_publish_subject(bad), "{bad:?}");
            assert!(NatsSink::new(&NatsSettings { url: TEST_SERVER.into(), subject: bad.into() }).is_err());
        }
        assert!(is_publish_subject("xclade.auth.events"));
    }
}
