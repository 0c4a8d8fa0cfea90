//! The email sink: tells the account holder, over SMTP (`SMTP_URL`, `EMAIL_FROM`), the reset link
//! of `auth.password_reset` and that their password changed on `auth.password_changed`.

use std::time::Duration;

use chrono::DateTime;
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message, SmtpTransport, Transport};
use percent_encoding::percent_decode_str;
use serde_json::Value;

use auth_domain::event::{Envelope, PASSWORD_CHANGED, PASSWORD_RESET};
use auth_domain::ports::EventSink;

use super::Tenants;
use crate::config::events::EmailSettings;

/// How long one SMTP conversation step may take before the attempt fails.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reset link lives (design §4: reset tokens live 15 minutes).
const RESET_LIFETIME: &str = "15 minutes";
/// Error texts are stored with the delivery: keep them short.
const MAX_ERROR_CHARS: usize = 300;
const REDACTED: &str = "[redacted]";

/// Sends one email per event through the SMTP server of `SMTP_URL` (`smtp://` plain,
/// `smtp://...?tls=required|opportunistic` with STARTTLS, `smtps://` implicit TLS; credentials in
/// the URL), from `EMAIL_FROM`, to the event's `entity_id`. Each message carries a `Message-ID`
/// derived from the event id, so a repeated delivery is recognisable. Events with nothing to tell
/// the account holder are accepted without sending anything.
pub struct EmailSink {
    transport: SmtpTransport,
    from: Mailbox,
    reset_url_template: String,
    /// Each tenant's sender and reset link, when the sink serves several.
    tenants: Option<Tenants>,
    /// The SMTP password as written in the URL and decoded, only to keep it out of error texts.
    password_forms: Vec<String>,
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSink").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl EmailSink {
    pub fn new(settings: &EmailSettings, reset_url_template: &str) -> Result<EmailSink, String> {
        let smtp_url = settings.smtp_url.trim();
        let password_forms = password_forms(smtp_url);
        let secrets: Vec<&str> = password_forms.iter().map(String::as_str).collect();
        let transport = SmtpTransport::from_url(smtp_url)
            .map_err(|e| {
                scrub(
                    &format!(
                        "SMTP_URL is not usable (expected smtp://[user:password@]host[:port][?tls=required|opportunistic] or smtps://...): {e}"
                    ),
                    &secrets,
                )
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from: Mailbox = settings.from.trim().parse().map_err(|e| {
            scrub(
                &format!(
                    "EMAIL_FROM {:?} is not a mailbox (expected name@example.com or \"Name <name@example.com>\"): {e}",
                    settings.from
                ),
                &secrets,
            )
        })?;
        if !password_forms.is_empty() && sends_credentials_in_clear(smtp_url) {
            log::warn!(
                "SMTP_URL carries credentials over a connection without TLS; use smtps:// or ?tls=required unless the server is local"
            );
        }
        Ok(EmailSink {
            transport,
            from,
            reset_url_template: reset_url_template.to_owned(),
            tenants: None,
            password_forms,
        })
    }

    /// Sends each event from its tenant's `EMAIL_FROM` with its tenant's `RESET_PASSWORD_URL`.
    pub fn with_tenants(mut self, tenants: Tenants) -> EmailSink {
        self.tenants = Some(tenants);
        self
    }

    /// The sender and the reset link template of `envelope`'s tenant.
    fn sender(&self, envelope: &Envelope) -> Result<(Mailbox, String), String> {
        let Some(tenants) = &self.tenants else {
            return Ok((self.from.clone(), self.reset_url_template.clone()));
        };
        let settings = super::tenant_settings(tenants, envelope)?;
        let from = match &settings.email_from {
            Some(from) => from.trim().parse().map_err(|e| format!("the tenant's EMAIL_FROM is not a mailbox: {e}"))?,
            None => self.from.clone(),
        };
        Ok((from, settings.reset_password_url.clone()))
    }

    /// The message for `envelope`, and the secrets it contains; `None` when the event is not one
    /// the account holder is told about.
    fn compose(&self, envelope: &Envelope) -> Result<Option<(Message, Vec<String>)>, String> {
        let (from, reset_url_template) = self.sender(envelope)?;
        let field = |key: &str| envelope.data.get(key).and_then(Value::as_str);
        let content = match envelope.name.as_str() {
            PASSWORD_RESET => {
                let email = field("entity_id").ok_or("the event has no entity_id")?;
                let token = field("token").filter(|t| !t.is_empty()).ok_or("the event has no token")?;
                let link = super::reset_link(&reset_url_template, token, email);
                let secrets =
                    vec![token.to_owned(), super::reset_link("{token}", token, ""), html_escape(token), link.clone()];
                Some((email, reset_content(email, &link), secrets))
            }
            PASSWORD_CHANGED => {
                let email = field("entity_id").ok_or("the event has no entity_id")?;
                Some((email, changed_content(email, &envelope.created_at), Vec::new()))
            }
            _ => None,
        };
        let Some((email, content, secrets)) = content else {
            return Ok(None);
        };
        let to: Address = email.parse().map_err(|e| format!("the entity_id is not an email address: {e}"))?;
        let message = Message::builder()
            .message_id(Some(message_id(&envelope.id)))
            .from(from)
            .to(Mailbox::new(None, to))
            .subject(content.subject)
            .multipart(MultiPart::alternative_plain_html(content.text, content.html))
            .map_err(|e| format!("building the message: {e}"))?;
        Ok(Some((message, secrets)))
    }
}

impl EventSink for EmailSink {
    fn name(&self) -> &str {
        "email"
    }

    fn deliver(&self, envelope: &Envelope) -> Result<(), String> {
        let Some((message, mut secrets)) = self.compose(envelope)? else {
            return Ok(());
        };
        secrets.extend(self.password_forms.iter().cloned());
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        // The error may quote the server's reply, which is outside our control: anything secret
        // it might echo is taken out.
        self.transport.send(&message).map(|_| ()).map_err(|e| scrub(&format!("SMTP delivery failed: {e}"), &secrets))
    }
}

struct Content {
    subject: &'static str,
    text: String,
    html: String,
}

fn reset_content(email: &str, link: &str) -> Content {
    let text = format!(
        "Hello,\n\n\
         We received a request to reset the password of the account {email}.\n\
         To choose a new password, open this link:\n\n\
         {link}\n\n\
         The link expires in {RESET_LIFETIME} and works once.\n\
         If you did not ask for a password reset, you can ignore this email: your password stays as it is.\n"
    );
    let (email, link) = (html_escape(email), html_escape(link));
    let html = html_page(&format!(
        "<p>Hello,</p>\n\
         <p>We received a request to reset the password of the account <strong>{email}</strong>. \
         To choose a new password, open this link:</p>\n\
         <p><a href=\"{link}\">Reset your password</a></p>\n\
         <p>If the link does not open, copy this address into your browser:<br>\n{link}</p>\n\
         <p>The link expires in {RESET_LIFETIME} and works once. If you did not ask for a password reset, \
         you can ignore this email: your password stays as it is.</p>"
    ));
    Content { subject: "Reset your password", text, html }
}

fn changed_content(email: &str, created_at: &str) -> Content {
    let when = DateTime::parse_from_rfc3339(created_at)
        .map(|t| format!(" on {}", t.with_timezone(&chrono::Utc).format("%Y-%m-%d at %H:%M UTC")))
        .unwrap_or_default();
    let text = format!(
        "Hello,\n\n\
         The password of the account {email} was changed{when}.\n\n\
         If this was you, there is nothing to do.\n\
         If it was not you, reset your password right away (\"Forgot password\" when signing in) \
         and let us know.\n"
    );
    let (email, when) = (html_escape(email), html_escape(&when));
    let html = html_page(&format!(
        "<p>Hello,</p>\n\
         <p>The password of the account <strong>{email}</strong> was changed{when}.</p>\n\
         <p>If this was you, there is nothing to do.</p>\n\
         <p>If it was not you, reset your password right away (&ldquo;Forgot password&rdquo; when signing in) \
         and let us know.</p>"
    ));
    Content { subject: "Your password was changed", text, html }
}

fn html_page(body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family: sans-serif; line-height: 1.5\">\n{body}\n</body>\n</html>\n"
    )
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `<evt_...@xclade-auth>`: the same for every delivery of one event.
fn message_id(event_id: &str) -> String {
    let id: String = event_id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).collect();
    format!("<{id}@xclade-auth>")
}

/// The password of an `scheme://user:password@host...` URL, as written and percent-decoded.
/// Deliberately generous (everything between the first `:` of the user info and the last `@`),
/// since it only decides what is kept out of error texts.
fn password_forms(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let Some((userinfo, _)) = rest.rsplit_once('@') else {
        return Vec::new();
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return Vec::new();
    };
    let mut forms = vec![password.to_owned()];
    let decoded = percent_decode_str(password).decode_utf8_lossy().into_owned();
    if decoded != password {
        forms.push(decoded);
    }
    forms.retain(|f| !f.is_empty());
    forms
}

/// Plain `smtp://` without a `tls` parameter to a host that is not this machine.
fn sends_credentials_in_clear(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("smtp://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let local = ["localhost", "127.0.0.1", "[::1]"].iter().any(|l| host == *l || host.starts_with(&format!("{l}:")));
    !lower.contains("tls=") && !local
}

/// `text` on one line, with every secret replaced, at most `MAX_ERROR_CHARS` characters.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    // Longest first, so that a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        out = out.replace(secret, REDACTED);
    }
    if out.chars().count() > MAX_ERROR_CHARS {
        out = out.chars().take(MAX_ERROR_CHARS).collect::<String>() + "...";
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread::{self, JoinHandle};

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    const TEMPLATE: &str = "https://shop.example/reset?token={token}&email={email}";
    const TOKEN: &str = "tok.en-x_y+z/w=";
    const TOKEN_ENCODED: &str = "tok.en-x_y%2Bz%2Fw%3D";
    const EMAIL: &str = "ann+x@example.com";
    const EMAIL_ENCODED: &str = "ann%2Bx%40example.com";
    const PASSWORD: &str = "s3cr3t/pw";
    const PASSWORD_IN_URL: &str = "s3cr3t%2Fpw";

    /// What the receiver saw in one SMTP conversation.
    #[derive(Debug, Default)]
    struct Session {
        auth: Option<String>,
        mail_from: String,
        rcpt_to: Vec<String>,
        data: String,
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Reject {
        Nothing,
        Rcpt,
        EndOfData,
    }

    /// A one-connection SMTP server on 127.0.0.1; `reply` is the text of its rejection.
    fn receiver(reject: Reject, reply: &str) -> (u16, JoinHandle<Session>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let reply = reply.to_owned();
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve(stream, reject, &reply)
        });
        (port, handle)
    }

    fn serve(stream: TcpStream, reject: Reject, reply: &str) -> Session {
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut input = BufReader::new(stream);
        let mut session = Session::default();
        let mut send = |s: &str| out.write_all(s.as_bytes()).unwrap();
        send("220 test.local ESMTP ready\r\n");
        let between_brackets = |line: &str| {
            let start = line.find('<').map_or(0, |i| i + 1);
            let end = line[start..].find('>').map_or(line.len(), |i| start + i);
            line[start..end].to_owned()
        };
        loop {
            let mut line = String::new();
            if input.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                send("250-test.local\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n");
            } else if upper.starts_with("HELO") {
                send("250 test.local\r\n");
            } else if upper.starts_with("AUTH PLAIN ") {
                let decoded = STANDARD.decode(&line["AUTH PLAIN ".len()..]).unwrap();
                session.auth = Some(String::from_utf8(decoded).unwrap());
                send("235 2.7.0 authenticated\r\n");
            } else if upper.starts_with("MAIL FROM:") {
                session.mail_from = between_brackets(line);
                send("250 2.1.0 ok\r\n");
            } else if upper.starts_with("RCPT TO:") {
                session.rcpt_to.push(between_brackets(line));
                if reject == Reject::Rcpt {
                    send(&format!("550 5.1.1 {reply}\r\n"));
                } else {
                    send("250 2.1.5 ok\r\n");
                }
            } else if upper == "DATA" {
                send("354 go ahead\r\n");
                loop {
                    let mut data_line = String::new();
                    if input.read_line(&mut data_line).unwrap() == 0 || data_line == ".\r\n" {
                        break;
                    }
                    let unstuffed = data_line.strip_prefix('.').filter(|l| l.starts_with('.')).unwrap_or(&data_line);
                    session.data.push_str(unstuffed);
                }
                if reject == Reject::EndOfData {
                    send(&format!("554 5.7.1 {reply}\r\n"));
                } else {
                    send("250 2.0.0 queued\r\n");
                }
            } else if upper == "QUIT" {
                send("221 2.0.0 bye\r\n");
                break;
            } else if upper == "RSET" || upper == "NOOP" {
                send("250 ok\r\n");
            } else {
                send("502 5.5.2 not implemented\r\n");
            }
        }
        session
    }

    fn sink(smtp_url: &str) -> EmailSink {
        let settings = EmailSettings { smtp_url: smtp_url.into(), from: "Xclade Shop <no-reply@shop.example>".into() };
        EmailSink::new(&settings, TEMPLATE).unwrap()
    }

    fn envelope(name: &str, data: serde_json::Value) -> Envelope {
        let serde_json::Value::Object(data) = data else { panic!("data must be an object") };
        Envelope {
            id: "evt_01J0000000000000000000TEST".into(),
            name: name.into(),
            tenant: "default".into(),
            created_at: "2024-05-06T07:08:09.123Z".into(),
            data,
        }
    }

    fn reset_event() -> Envelope {
        envelope(PASSWORD_RESET, json!({"entity_id": EMAIL, "actor_type": "customer", "token": TOKEN, "metadata": {}}))
    }

    /// The value of the top-level header `name`.
    fn header(raw: &str, name: &str) -> String {
        let head = raw.split("\r\n\r\n").next().unwrap();
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let line = head.lines().find(|l| l.to_ascii_lowercase().starts_with(&prefix)).unwrap();
        line[prefix.len()..].trim().to_owned()
    }

    fn decode_quoted_printable(s: &str) -> String {
        let joined = s.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// The decoded text/plain and text/html parts of a multipart/alternative message.
    fn parts(raw: &str) -> (String, String) {
        let marker = "boundary=\"";
        let start = raw.find(marker).unwrap() + marker.len();
        let boundary = &raw[start..start + raw[start..].find('"').unwrap()];
        let (mut plain, mut html) = (None, None);
        for part in raw.split(&format!("--{boundary}")).skip(1) {
            let Some((head, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let head = head.to_ascii_lowercase();
            let body = body.trim_end_matches("\r\n");
            let decoded = if head.contains("content-transfer-encoding: quoted-printable") {
                decode_quoted_printable(body)
            } else if head.contains("content-transfer-encoding: base64") {
                String::from_utf8(STANDARD.decode(body.replace("\r\n", "")).unwrap()).unwrap()
            } else {
                body.to_owned()
            };
            if head.contains("content-type: text/plain") {
                plain = Some(decoded);
            } else if head.contains("content-type: text/html") {
                html = Some(decoded);
            }
        }
        (plain.unwrap(), html.unwrap())
    }

    #[test]
    fn a_reset_event_sends_the_link_in_both_parts_to_the_entity() {
        let (port, server) = receiver(Reject::Nothing, "");
        sink(&format!("smtp://127.0.0.1:{port}")).deliver(&reset_event()).unwrap();
        let session = server.join().unwrap();
        assert_eq!(session.auth, None);
        assert_eq!(session.mail_from, "no-reply@shop.example");
        assert_eq!(session.rcpt_to, [EMAIL]);
        let raw = &session.data;
        assert_eq!(header(raw, "Subject"), "Reset your password");
        assert_eq!(header(raw, "Message-ID"), "<evt_01J0000000000000000000TEST@xclade-auth>");
        assert_eq!(header(raw, "To"), EMAIL);
        assert!(header(raw, "Content-Type").starts_with("multipart/alternative"));
        let link = format!("https://shop.example/reset?token={TOKEN_ENCODED}&email={EMAIL_ENCODED}");
        let (plain, html) = parts(raw);
        assert!(plain.contains(&link), "{plain}");
        assert!(plain.contains("15 minutes") && plain.contains("ignore"), "{plain}");
        let html_link = link.replace('&', "&amp;");
        assert!(html.contains(&format!("href=\"{html_link}\"")), "{html}");
        assert!(html.contains("15 minutes") && html.contains("ignore"), "{html}");
        assert!(!html.contains(&link), "an unescaped & in the HTML part");
    }

    #[test]
    fn a_tenant_s_event_goes_from_its_sender_with_its_reset_page() {
        use auth_domain::tenant::{SingleTenant, TenantSettings};
        let (port, server) = receiver(Reject::Nothing, "");
        let tenant = SingleTenant::new(TenantSettings {
            email_from: Some("North Shop <hello@north.example>".into()),
            reset_password_url: "https://north.example/reset/{token}".into(),
            ..TenantSettings::basic()
        });
        let sink = sink(&format!("smtp://127.0.0.1:{port}")).with_tenants(std::sync::Arc::new(tenant));
        sink.deliver(&reset_event()).unwrap();
        let session = server.join().unwrap();
        assert_eq!(session.mail_from, "hello@north.example");
        assert_eq!(header(&session.data, "From"), "\"North Shop\" <hello@north.example>");
        let (plain, _) = parts(&session.data);
        assert!(plain.contains(&format!("https://north.example/reset/{TOKEN_ENCODED}")), "{plain}");
        let mut foreign = reset_event();
        foreign.tenant = "south".into();
        let err = sink.deliver(&foreign).unwrap_err();
        assert!(err.contains("south"), "an event of no known tenant fails (and is retried): {err}");
    }

    #[test]
    fn a_password_changed_event_is_sent_with_a_plain_and_an_html_part() {
        let (port, server) = receiver(Reject::Nothing, "");
        let event = envelope(PASSWORD_CHANGED, json!({"entity_id": "bob@example.com", "actor_type": "customer"}));
        sink(&format!("smtp://127.0.0.1:{port}")).deliver(&event).unwrap();
        let session = server.join().unwrap();
        assert_eq!(session.rcpt_to, ["bob@example.com"]);
        assert_eq!(header(&session.data, "Subject"), "Your password was changed");
        let (plain, html) = parts(&session.data);
        for part in [&plain, &html] {
            assert!(part.contains("bob@example.com") && part.contains("reset your password"), "{part}");
            assert!(part.contains("2024-05-06 at 07:08 UTC"), "{part}");
        }
    }

    #[test]
    fn a_rejected_message_is_an_error_without_the_token_or_the_password() {
        // The server quotes everything secret back in its rejection.
        let reply = format!(
            "rejected {TOKEN} https://shop.example/reset?token={TOKEN_ENCODED}&email={EMAIL_ENCODED} {PASSWORD} {PASSWORD_IN_URL}"
        );
        let (port, server) = receiver(Reject::EndOfData, &reply);
        let err =
            sink(&format!("smtp://mailer:{PASSWORD_IN_URL}@127.0.0.1:{port}")).deliver(&reset_event()).unwrap_err();
        let session = server.join().unwrap();
        assert_eq!(session.auth.as_deref(), Some(format!("\0mailer\0{PASSWORD}").as_str()), "URL credentials are used");
        assert!(err.contains("554"), "{err}");
        for secret in [TOKEN, TOKEN_ENCODED, PASSWORD, PASSWORD_IN_URL] {
            assert!(!err.contains(secret), "{secret} in {err}");
        }
    }

    #[test]
    fn a_rejected_recipient_is_an_error_without_the_token() {
        let (port, server) = receiver(Reject::Rcpt, &format!("no such user; token {TOKEN}"));
        let err = sink(&format!("smtp://127.0.0.1:{port}")).deliver(&reset_event()).unwrap_err();
        server.join().unwrap();
        assert!(err.contains("550") && err.contains("no such user"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
    }

    #[test]
    fn an_unreachable_server_is_an_error_without_the_password() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err =
            sink(&format!("smtp://mailer:{PASSWORD_IN_URL}@127.0.0.1:{port}")).deliver(&reset_event()).unwrap_err();
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn events_without_news_for_the_account_holder_send_nothing() {
        // Nothing listens on this port: sending would fail.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let sink = sink(&format!("smtp://127.0.0.1:{port}"));
        assert_eq!(sink.deliver(&envelope("auth.something_else", json!({"entity_id": EMAIL}))), Ok(()));
        let no_token = envelope(PASSWORD_RESET, json!({"entity_id": EMAIL, "token": null}));
        assert!(sink.deliver(&no_token).unwrap_err().contains("no token"));
        let bad_recipient = envelope(PASSWORD_CHANGED, json!({"entity_id": "not an address"}));
        assert!(sink.deliver(&bad_recipient).unwrap_err().contains("not an email address"));
    }

    #[test]
    fn bad_settings_fail_without_echoing_the_password() {
        let new = |smtp_url: &str, from: &str| {
            EmailSink::new(&EmailSettings { smtp_url: smtp_url.into(), from: from.into() }, TEMPLATE).map(|_| ())
        };
        let from = "no-reply@shop.example";
        for url in [
            "ftp://mailer:s3cr3t@mail.example",
            "smtp://mailer:s3cr3t@mail.example?tls=s3cr3t",
            "smtp://mailer:s3cr3t@mail.example:notaport",
            "smtp://mailer:s3cr3t@",
            "mailer:s3cr3t@mail.example",
            "smtp://mailer:s3cr3t/x@mail.example",
            "",
        ] {
            let err = new(url, from).unwrap_err();
            assert!(err.contains("SMTP_URL"), "{url}: {err}");
            assert!(!err.contains("s3cr3t"), "{url}: {err}");
        }
        for bad_from in ["", "no-reply", "Shop <no-reply@", "smtp://mailer:s3cr3t@mail.example"] {
            let err = new("smtp://mailer:s3cr3t@mail.example?tls=required", bad_from).unwrap_err();
            assert!(err.contains("EMAIL_FROM"), "{bad_from}: {err}");
            assert!(!err.contains("s3cr3t"), "{bad_from}: {err}");
        }
        assert!(new("smtps://mailer:s3cr3t@mail.example", "Shop <no-reply@shop.example>").is_ok());
        assert!(new("smtp://mail.example:2525?tls=opportunistic", from).is_ok());
    }

    #[test]
    fn secrets_are_scrubbed_and_errors_kept_short() {
        assert_eq!(scrub("a\r\nb xyz-long c", &["xyz", "xyz-long", ""]), "a  b [redacted] c");
        assert!(scrub(&"x".repeat(1000), &[]).chars().count() <= MAX_ERROR_CHARS + 3);
        assert_eq!(password_forms("smtp://u:p%2Fw@h:25"), ["p%2Fw", "p/w"]);
        assert!(password_forms("smtp://u@h").is_empty());
        assert_eq!(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(message_id("evt_01AB\r\nX: y"), "<evt_01ABXy@xclade-auth>");
    }
}
