//! Hostile input (design §3.3–§3.5 and §4, docs/api.md): a table of requests across every route,
//! each refused with the documented status and body, none changing a row.
//!
//! The requests go over a raw `TcpStream`, so each case sends exactly its bytes: lying lengths,
//! non-UTF-8 paths and headers, malformed heads. Every case asserts the status, the content type
//! and the body (the JSON error shape `{"type","message"}` with its `type`, or the exact text),
//! `Cache-Control: no-store` on handler errors, and that the database fingerprint (the harness's,
//! plus sessions and customers) is the same after it as before it. All failures are collected
//! and reported together, with the exact request and response.
//!
//! `HOSTILE_LOG=1` prints every exchange.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Sha256, Sha384, Sha512};

use crate::helpers::{claims, email, eventually, metric, Backend, Db, TestApp, JWT_SECRET, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    hostile_requests_change_nothing,
    token_responses_are_not_stored,
    clock_claims_allow_the_leeway_only,
    register_cannot_guess_passwords_past_the_login_throttles,
    a_customer_account_takes_the_identitys_own_email_only,
    a_password_logs_in_in_any_unicode_normal_form,
    operational_answers_do_not_tell_whether_an_email_has_an_account,
    metrics_on_the_public_port_would_tell_and_are_served_only_when_asked_for,
);

const LOGIN: &str = "/auth/customer/emailpass";
const REGISTER: &str = "/auth/customer/emailpass/register";
const RESET: &str = "/auth/customer/emailpass/reset-password";
const UPDATE: &str = "/auth/customer/emailpass/update";
const CALLBACK: &str = "/auth/customer/emailpass/callback";
const CHANGE: &str = "/auth/customer/emailpass/change-password";
const PROVIDERS: &str = "/auth/customer/providers";
const REFRESH: &str = "/auth/token/refresh";
const SESSION: &str = "/auth/session";
const LOGOUT_ALL: &str = "/auth/logout-all";
const CUSTOMERS: &str = "/store/customers";
const ME: &str = "/store/customers/me";
const HEALTH: &str = "/health";

const LIMIT: usize = 64 * 1024;
const TOO_LARGE: &str = "The request body is larger than 65536 bytes";
/// The leeway the server under test runs with (the production default).
const LEEWAY: i64 = 30;
const NEW_PASSWORD: &str = "a brand new password 1";

// ---------------------------------------------------------------------------------------------
// The raw HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

/// The `host` of a request that reaches a route: `fallback`, or in tenant mode the tenant's host
/// (any other host is a 404 before the route). The malformed heads, refused before any route,
/// and the operations routes (which answer on any host) keep theirs.
fn host(fallback: &str) -> String {
    crate::helpers::tenant_host().unwrap_or_else(|| fallback.to_string())
}

/// How the body is framed.
#[derive(Debug, Clone)]
enum Framing {
    /// `content-length` = the body's length.
    Length,
    /// `content-length` with this value, whatever the body is.
    Declared(String),
    /// `transfer-encoding: chunked`, 8 KiB chunks.
    Chunked,
    /// No framing header: the headers given are all there is.
    Unframed,
}

#[derive(Debug, Clone)]
struct Req {
    method: Vec<u8>,
    target: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    framing: Framing,
    /// When set, these bytes are the whole request.
    verbatim: Option<Vec<u8>>,
}

impl Req {
    fn new(method: &str, target: impl Into<Vec<u8>>) -> Req {
        Req {
            method: method.as_bytes().to_vec(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
            framing: Framing::Length,
            verbatim: None,
        }
    }

    fn get(target: impl Into<Vec<u8>>) -> Req {
        Req::new("GET", target)
    }

    fn post(target: impl Into<Vec<u8>>) -> Req {
        Req::new("POST", target)
    }

    fn verbatim(bytes: impl Into<Vec<u8>>) -> Req {
        Req { verbatim: Some(bytes.into()), ..Req::get("/") }
    }

    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Req {
        self.headers.push((name.as_bytes().to_vec(), value.into()));
        self
    }

    /// A JSON body, as the JS SDK sends it.
    fn json(self, body: impl Into<Vec<u8>>) -> Req {
        self.header("content-type", "application/json").body(body)
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }

    fn framing(mut self, framing: Framing) -> Req {
        self.framing = framing;
        self
    }

    fn bearer(self, token: &str) -> Req {
        self.header("authorization", format!("Bearer {token}"))
    }

    fn cookie(self, session: &str) -> Req {
        self.header("cookie", format!("connect.sid={session}"))
    }

    fn accept_json(self) -> Req {
        self.header("accept", "application/json")
    }

    fn with(self, auth: &Auth) -> Req {
        match auth {
            Auth::Nothing => self,
            Auth::Bearer(token) => self.bearer(token),
            Auth::Session(session) => self.cookie(session),
        }
    }

    fn is_head(&self) -> bool {
        self.verbatim.is_none() && self.method == b"HEAD"
    }

    fn bytes(&self) -> Vec<u8> {
        if let Some(v) = &self.verbatim {
            return v.clone();
        }
        let mut out = Vec::new();
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(format!(" HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n", host("127.0.0.1")).as_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        match &self.framing {
            Framing::Length => out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes()),
            Framing::Declared(n) => out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
            Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            Framing::Unframed => {}
        }
        out.extend_from_slice(b"\r\n");
        if let Framing::Chunked = self.framing {
            for chunk in self.body.chunks(8192) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// The request, shortened for a report.
    fn describe(&self) -> String {
        shorten(&self.bytes(), 600)
    }
}

#[derive(Debug, Clone)]
enum Auth {
    Nothing,
    Bearer(String),
    Session(String),
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// How the connection ended after the responses.
#[derive(Debug)]
enum End {
    Eof,
    Reset(std::io::ErrorKind),
    TimedOut,
}

/// Everything the server sent back on one connection.
#[derive(Debug)]
struct Exchange {
    responses: Vec<Resp>,
    /// Bytes that did not parse as a response.
    rest: Vec<u8>,
    end: End,
}

impl Exchange {
    fn describe(&self) -> String {
        let mut out = String::new();
        for r in &self.responses {
            let headers: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
            let _ = write!(out, "[{} | {} | {}] ", r.status, headers.join(", "), shorten(&r.body, 400));
        }
        if !self.rest.is_empty() {
            let _ = write!(out, "[unparsed: {}] ", shorten(&self.rest, 200));
        }
        let _ = match &self.end {
            End::Eof => write!(out, "then the server closed"),
            End::Reset(kind) => write!(out, "then a read error: {kind}"),
            End::TimedOut => write!(out, "then nothing for 10 s"),
        };
        out
    }
}

fn shorten(bytes: &[u8], max: usize) -> String {
    let escaped: String = bytes.iter().flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
    if escaped.len() <= max {
        escaped
    } else {
        format!("{}…({} bytes)", &escaped[..max], bytes.len())
    }
}

/// Sends `req` on a fresh connection and reads until the server closes it. The request is written
/// from another thread, so a server that answers before reading everything is seen as such.
fn send(port: u16, req: &Req) -> Exchange {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let bytes = req.bytes();
    let written = std::thread::spawn(move || writer.write_all(&bytes).and_then(|()| writer.flush()));
    let mut reader = stream;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let end = loop {
        match reader.read(&mut chunk) {
            Ok(0) => break End::Eof,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                break End::TimedOut
            }
            Err(e) => break End::Reset(e.kind()),
        }
    };
    drop(reader);
    let _ = written.join();
    let (responses, rest) = parse_responses(&buf, req.is_head());
    Exchange { responses, rest, end }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_responses(mut buf: &[u8], head_only: bool) -> (Vec<Resp>, Vec<u8>) {
    let mut responses = Vec::new();
    while !buf.is_empty() {
        let Some(head_end) = find(buf, b"\r\n\r\n") else { break };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let Some(status) = status_line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) else { break };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let after = &buf[head_end + 4..];
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let (body, used) = if head_only || status == 204 || status == 304 {
            (Vec::new(), 0)
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            dechunk(after)
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let n = n.min(after.len());
            (after[..n].to_vec(), n)
        } else {
            (after.to_vec(), after.len())
        };
        responses.push(Resp { status, headers, body });
        buf = &after[used..];
    }
    (responses, buf.to_vec())
}

fn dechunk(mut buf: &[u8]) -> (Vec<u8>, usize) {
    let total = buf.len();
    let mut body = Vec::new();
    while let Some(line_end) = find(buf, b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&buf[..line_end]).trim(), 16).unwrap_or(0);
        buf = &buf[line_end + 2..];
        if size == 0 {
            buf = buf.get(2..).unwrap_or_default();
            break;
        }
        let size = size.min(buf.len());
        body.extend_from_slice(&buf[..size]);
        buf = buf.get(size + 2..).unwrap_or_default();
    }
    (body, total - buf.len())
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Msg {
    Any,
    Exact(String),
    Prefix(&'static str),
}

#[derive(Debug, Clone)]
enum Expect {
    /// A JSON error `{"type","message"}` from a handler, with `Cache-Control: no-store`.
    Error(u16, &'static str, Msg),
    /// The negotiated 401 of a guarded route (design §3.4): JSON when asked, else text/plain.
    Refused { json: bool, message: &'static str },
    /// A 200 `{"token"}` with `Cache-Control: no-store`.
    Token,
    /// `text/plain; charset=utf-8` with this exact body.
    Text(u16, &'static str),
    /// `application/json`, exactly this body.
    Json(u16, Value),
    /// Answered by actix-http before any handler: this status and an empty body.
    Bare(u16),
}

fn invalid(msg: Msg) -> Expect {
    Expect::Error(400, "invalid_data", msg)
}

fn not_json(prefix_only: bool, line_col: Option<(usize, usize)>) -> Expect {
    match (prefix_only, line_col) {
        (false, Some((l, c))) => {
            invalid(Msg::Exact(format!("Invalid request: the body is not valid JSON (line {l}, column {c})")))
        }
        _ => invalid(Msg::Prefix("Invalid request: the body is not valid JSON (line ")),
    }
}

fn not_object(kind: &str) -> Expect {
    invalid(Msg::Exact(format!("Invalid request: the body must be a JSON object, got: '{kind}'")))
}

fn not_allowed(message: String) -> Expect {
    Expect::Error(400, "not_allowed", Msg::Exact(message))
}

fn too_large() -> Expect {
    Expect::Error(413, "payload_too_large", Msg::Exact(TOO_LARGE.into()))
}

/// Checks every answer on the connection: `expect` first, then `more`, and nothing else.
fn check(ex: &Exchange, expect: &Expect, more: &[Expect], head: bool) -> Result<(), String> {
    if ex.responses.len() != 1 + more.len() {
        return Err(format!("{} responses on the connection, want {}", ex.responses.len(), 1 + more.len()));
    }
    for (i, (r, e)) in ex.responses.iter().zip(std::iter::once(expect).chain(more)).enumerate() {
        check_one(r, e, head).map_err(|why| if i == 0 { why } else { format!("response {}: {why}", i + 1) })?;
    }
    Ok(())
}

fn check_one(r: &Resp, expect: &Expect, head: bool) -> Result<(), String> {
    let ct = r.header("content-type").unwrap_or_default();
    let no_store = r.header("cache-control") == Some("no-store");
    match expect {
        Expect::Error(status, kind, msg) => {
            if r.status != *status || ct != "application/json" || !no_store {
                return Err(format!("want {status} application/json no-store"));
            }
            if head {
                return if r.body.is_empty() { Ok(()) } else { Err("a body to HEAD".into()) };
            }
            let body: Value = serde_json::from_slice(&r.body).map_err(|e| format!("body not JSON: {e}"))?;
            let keys: Vec<&str> = body.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
            if keys != ["type", "message"] {
                return Err(format!("want the keys [type, message], got {keys:?}"));
            }
            if body["type"] != *kind {
                return Err(format!("want type {kind}"));
            }
            let message = body["message"].as_str().ok_or("message not a string")?;
            match msg {
                Msg::Any => Ok(()),
                Msg::Exact(m) if message == m => Ok(()),
                Msg::Prefix(p) if message.starts_with(p) => Ok(()),
                _ => Err(format!("want message {msg:?}")),
            }
        }
        Expect::Refused { json: true, message } => {
            if (r.status, ct, no_store) != (401, "application/json", true) {
                return Err("want 401 application/json no-store".into());
            }
            let body: Value = serde_json::from_slice(&r.body).map_err(|e| format!("body not JSON: {e}"))?;
            let want = json!({"type": "unauthorized", "message": message});
            if serde_json::to_string(&body).ok() == serde_json::to_string(&want).ok() {
                Ok(())
            } else {
                Err(format!("want {want}"))
            }
        }
        Expect::Refused { json: false, .. } => {
            if (r.status, ct, no_store, r.body.as_slice()) == (401, "text/plain; charset=utf-8", true, b"Unauthorized")
            {
                Ok(())
            } else {
                Err("want 401 text/plain; charset=utf-8 no-store `Unauthorized`".into())
            }
        }
        Expect::Token => {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if (r.status, ct, no_store) == (200, "application/json", true) && body["token"].is_string() {
                Ok(())
            } else {
                Err("want 200 {\"token\"} no-store".into())
            }
        }
        Expect::Text(status, text) => {
            if (r.status, ct, r.body.as_slice()) == (*status, "text/plain; charset=utf-8", text.as_bytes()) {
                Ok(())
            } else {
                Err(format!("want {status} text/plain {text:?}"))
            }
        }
        Expect::Json(status, want) => {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if (r.status, ct) == (*status, "application/json") && body == *want {
                Ok(())
            } else {
                Err(format!("want {status} {want}"))
            }
        }
        Expect::Bare(status) => {
            if r.status == *status && r.body.is_empty() {
                Ok(())
            } else {
                Err(format!("want {status} with an empty body"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Alg {
    Unsigned,
    Hs256,
    Hs384,
    Hs512,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hmac(alg: Alg, secret: &[u8], input: &[u8]) -> Vec<u8> {
    match alg {
        Alg::Unsigned => Vec::new(),
        Alg::Hs256 => {
            let mut m = Hmac::<Sha256>::new_from_slice(secret).unwrap();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        Alg::Hs384 => {
            let mut m = Hmac::<Sha384>::new_from_slice(secret).unwrap();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        Alg::Hs512 => {
            let mut m = Hmac::<Sha512>::new_from_slice(secret).unwrap();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// A JWT from the texts of its header and payload, with an HMAC signature (`alg` need not be what
/// the header says).
fn jwt(header: &str, payload: &str, alg: Alg, secret: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = hmac(alg, secret.as_bytes(), input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn hs256(claims: &Value) -> String {
    jwt(HS256, &claims.to_string(), Alg::Hs256, JWT_SECRET)
}

fn edit(claims: &Value, key: &str, value: Option<Value>) -> Value {
    let mut c = claims.clone();
    let map = c.as_object_mut().unwrap();
    match value {
        Some(v) => {
            map.insert(key.into(), v);
        }
        None => {
            map.remove(key);
        }
    }
    c
}

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// The forgeries of a genuine token (an auth token or a reset token): each differs from it in one
/// hostile way.
fn forgeries(real: &str, now: i64) -> Vec<(String, String)> {
    let good = Value::Object(claims(real));
    let payload = good.to_string();
    let mut segments = real.split('.');
    let (header_b64, payload_b64, signature_b64) =
        (segments.next().unwrap(), segments.next().unwrap(), segments.next().unwrap());
    let first_flipped = if signature_b64.starts_with('A') { "B" } else { "A" };
    let mut out: Vec<(&str, String)> = vec![
        ("alg none", jwt(r#"{"alg":"none","typ":"JWT"}"#, &payload, Alg::Unsigned, "")),
        ("alg None, HS256 signature kept", jwt(r#"{"alg":"None","typ":"JWT"}"#, &payload, Alg::Hs256, JWT_SECRET)),
        ("alg none, two segments", format!("{}.{}", b64(br#"{"alg":"none"}"#), b64(payload.as_bytes()))),
        ("HS384 with the right secret", jwt(r#"{"alg":"HS384","typ":"JWT"}"#, &payload, Alg::Hs384, JWT_SECRET)),
        ("HS512 with the right secret", jwt(r#"{"alg":"HS512","typ":"JWT"}"#, &payload, Alg::Hs512, JWT_SECRET)),
        (
            "RS256 header, HMAC-SHA256 signature",
            jwt(r#"{"alg":"RS256","typ":"JWT"}"#, &payload, Alg::Hs256, JWT_SECRET),
        ),
        (
            "RS256 header, 256-byte signature",
            format!("{}.{}.{}", b64(br#"{"alg":"RS256","typ":"JWT"}"#), b64(payload.as_bytes()), b64(&[7u8; 256])),
        ),
        ("wrong key", jwt(HS256, &payload, Alg::Hs256, "another secret, as long as the real one")),
        ("empty key", jwt(HS256, &payload, Alg::Hs256, "")),
        ("no exp", hs256(&edit(&good, "exp", None))),
        ("no iat", hs256(&edit(&good, "iat", None))),
        ("exp an hour ago", hs256(&edit(&good, "exp", Some(json!(now - 3600))))),
        ("exp beyond the leeway", hs256(&edit(&good, "exp", Some(json!(now - 2 * LEEWAY))))),
        ("exp a string", hs256(&edit(&good, "exp", Some(json!((now + 3600).to_string()))))),
        ("exp a float beyond i64", hs256(&edit(&good, "exp", Some(json!(1e300))))),
        // `now` is the fixture's time and the table takes minutes on a busy machine: times in
        // the future are far enough ahead (10 minutes) to stay beyond the leeway until the end.
        // The boundary itself is `clock_claims_allow_the_leeway_only`'s business.
        ("iat beyond the leeway", hs256(&edit(&good, "iat", Some(json!(now + 20 * LEEWAY))))),
        (
            "iat a year ahead",
            hs256(&edit(&edit(&good, "iat", Some(json!(now + 31_536_000))), "exp", Some(json!(now + 31_622_400)))),
        ),
        // RFC 7519 §4.1.5: not before, beyond the leeway.
        ("nbf a day ahead", hs256(&edit(&good, "nbf", Some(json!(now + 86_400))))),
        ("nbf beyond the leeway", hs256(&edit(&good, "nbf", Some(json!(now + 20 * LEEWAY))))),
        ("nbf a string", hs256(&edit(&good, "nbf", Some(json!("0"))))),
        // RFC 7515 §4.1.11: a critical header this verifier does not understand (none is).
        (
            "crit unknown",
            jwt(r#"{"alg":"HS256","typ":"JWT","crit":["x-unknown-ext"]}"#, &payload, Alg::Hs256, JWT_SECRET),
        ),
        (
            "crit unknown, the extension present",
            jwt(r#"{"alg":"HS256","crit":["x-unknown-ext"],"x-unknown-ext":1}"#, &payload, Alg::Hs256, JWT_SECRET),
        ),
        ("crit b64 false", jwt(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#, &payload, Alg::Hs256, JWT_SECRET)),
        ("crit empty", jwt(r#"{"alg":"HS256","typ":"JWT","crit":[]}"#, &payload, Alg::Hs256, JWT_SECRET)),
        ("crit not a list", jwt(r#"{"alg":"HS256","crit":"exp"}"#, &payload, Alg::Hs256, JWT_SECRET)),
        ("an extra segment", format!("{real}.extra")),
        ("a fourth, empty segment", format!("{real}.")),
        ("the signature twice", format!("{real}.{signature_b64}")),
        ("signature altered", format!("{header_b64}.{payload_b64}.{first_flipped}{}", &signature_b64[1..])),
        ("signature removed", format!("{header_b64}.{payload_b64}.")),
        (
            "payload altered, signature kept",
            format!(
                "{header_b64}.{}.{signature_b64}",
                b64(edit(&good, "tenant", Some(json!("t2"))).to_string().as_bytes())
            ),
        ),
        ("payload not JSON", jwt(HS256, "not json", Alg::Hs256, JWT_SECRET)),
        ("payload a JSON array", jwt(HS256, "[1,2]", Alg::Hs256, JWT_SECRET)),
        ("header not JSON", jwt("{alg:HS256}", &payload, Alg::Hs256, JWT_SECRET)),
        ("tenant other", hs256(&edit(&good, "tenant", Some(json!("other"))))),
        ("a duplicate claim", jwt(HS256, &format!("{{\"tenant\":\"other\",{}", &payload[1..]), Alg::Hs256, JWT_SECRET)),
        ("not a JWT", "not-a-jwt".into()),
        ("a 40 KiB token", "a".repeat(40 * 1024)),
        ("a space inside", format!("{header_b64}.{payload_b64} .{signature_b64}")),
    ];
    if good.get("purpose").is_some() {
        out.extend([
            ("purpose removed", hs256(&edit(&good, "purpose", None))),
            ("purpose auth", hs256(&edit(&good, "purpose", Some(json!("auth"))))),
            ("actor_type user", hs256(&edit(&good, "actor_type", Some(json!("user"))))),
            ("provider other", hs256(&edit(&good, "provider", Some(json!("google"))))),
            ("another jti", hs256(&edit(&good, "jti", Some(json!("0123456789abcdef0123456789abcdef"))))),
            ("empty jti", hs256(&edit(&good, "jti", Some(json!(""))))),
            ("entity_id other", hs256(&edit(&good, "entity_id", Some(json!("mallory@example.com"))))),
        ]);
    } else {
        out.extend([
            ("no stamp", hs256(&edit(&good, "stamp", None))),
            ("stamp other", hs256(&edit(&good, "stamp", Some(json!("0123456789abcdef0123456789abcdef"))))),
            ("actor_type admin", hs256(&edit(&good, "actor_type", Some(json!("admin"))))),
            ("auth_identity_id unknown", hs256(&edit(&good, "auth_identity_id", Some(json!("authid_unknown"))))),
            ("auth_provider other", hs256(&edit(&good, "auth_provider", Some(json!("google"))))),
            ("purpose reset", hs256(&edit(&good, "purpose", Some(json!("reset"))))),
        ]);
    }
    out.into_iter().map(|(name, token)| (name.to_string(), token)).collect()
}

/// `Authorization` values that carry no usable token (`valid` is a genuine one).
fn bad_authorizations(valid: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("Bearer alone".into(), b"Bearer".to_vec()),
        ("empty bearer".into(), b"Bearer ".to_vec()),
        ("Bearer and two spaces".into(), b"Bearer  ".to_vec()),
        ("empty header".into(), Vec::new()),
        ("Basic scheme, genuine token".into(), format!("Basic {valid}").into_bytes()),
        ("Token scheme, genuine token".into(), format!("Token {valid}").into_bytes()),
        ("no scheme, genuine token".into(), valid.as_bytes().to_vec()),
        ("tab after Bearer, genuine token".into(), format!("Bearer\t{valid}").into_bytes()),
        ("Bearer, genuine token, a second word".into(), format!("Bearer {valid} extra").into_bytes()),
        ("non-UTF-8 bearer".into(), b"Bearer \xff\xfe\xfd".to_vec()),
        ("Bearer then non-UTF-8, genuine token".into(), [format!("Bearer {valid}").as_bytes(), b"\xff"].concat()),
    ]
}

// ---------------------------------------------------------------------------------------------
// The database
// ---------------------------------------------------------------------------------------------

/// The harness's fingerprint, plus sessions, customers and the identities' update times (a
/// refused request must not touch them either).
fn fingerprint(app: &TestApp) -> String {
    let mut db = app.db();
    let agg = match db {
        Db::Sqlite(_) => "group_concat(x, ',')",
        Db::Pg(_) => "string_agg(x, ',')",
    };
    let extra: Vec<String> = [
        ("auth_session", "id || '|' || auth_identity_id || '|' || security_stamp || '|' || CAST(expires_at AS TEXT)"),
        (
            "customer",
            "id || '|' || email || '|' || COALESCE(first_name, '~') || '|' || COALESCE(last_name, '~') || '|' || \
             COALESCE(phone, '~') || '|' || COALESCE(company_name, '~') || '|' || COALESCE(metadata, '~') || '|' || \
             CAST(has_account AS TEXT) || '|' || CAST(updated_at AS TEXT) || '|' || COALESCE(CAST(deleted_at AS TEXT), '~')",
        ),
        ("auth_identity", "id || '|' || CAST(updated_at AS TEXT)"),
        ("provider_identity", "id || '|' || entity_id || '|' || user_metadata || '|' || CAST(updated_at AS TEXT)"),
        ("password_reset_token", "id || '|' || CAST(expires_at AS TEXT)"),
    ]
    .iter()
    .map(|(table, expr)| {
        db.text(&format!("SELECT COALESCE({agg}, '') AS v FROM (SELECT {expr} AS x FROM {table} ORDER BY 1) s"))
    })
    .collect();
    format!("{}\n{}", db.fingerprint(), extra.join("\n"))
}

// ---------------------------------------------------------------------------------------------
// The fixture and the table
// ---------------------------------------------------------------------------------------------

struct Fixture {
    ann: String,
    /// Ann's registration token (her customer exists since).
    registration: String,
    /// Ann's customer login token (`actor_id` = her customer).
    login: String,
    /// Ann as actor `user` (no user linked).
    user: String,
    /// Ann's customer session, and a session of her `user` token.
    session: String,
    user_session: String,
    /// Bob: registered, no customer yet (a request that slipped through would create one).
    bob: String,
    bob_registration: String,
    bob_user: String,
    /// Ann's pending reset token.
    reset: String,
    now: i64,
}

#[derive(Debug)]
struct Case {
    name: String,
    req: Req,
    /// The answer; `more`: the answers to what follows on the connection (pipelined bytes).
    expect: Expect,
    more: Vec<Expect>,
}

#[derive(Default)]
struct Table {
    cases: Vec<Case>,
}

impl Table {
    fn add(&mut self, name: impl Into<String>, req: Req, expect: Expect) {
        self.cases.push(Case { name: name.into(), req, expect, more: Vec::new() });
    }

    /// Then, on the same connection, these answers.
    fn then(&mut self, more: Vec<Expect>) {
        self.cases.last_mut().unwrap().more = more;
    }

    /// A refused credential, asked once with `accept: application/json` and once without.
    fn refused(&mut self, name: &str, req: Req, message: &'static str) {
        self.add(format!("{name} (accept json)"), req.clone().accept_json(), Expect::Refused { json: true, message });
        self.add(format!("{name} (no accept)"), req, Expect::Refused { json: false, message });
    }
}

/// A route that reads a JSON body, with credentials that would let a body through.
struct BodyRoute {
    path: &'static str,
    auth: Auth,
}

fn body_routes(fx: &Fixture) -> Vec<BodyRoute> {
    vec![
        BodyRoute { path: LOGIN, auth: Auth::Nothing },
        BodyRoute { path: REGISTER, auth: Auth::Nothing },
        BodyRoute { path: RESET, auth: Auth::Nothing },
        BodyRoute { path: UPDATE, auth: Auth::Bearer(fx.reset.clone()) },
        BodyRoute { path: CHANGE, auth: Auth::Bearer(fx.login.clone()) },
        BodyRoute { path: CUSTOMERS, auth: Auth::Bearer(fx.bob_registration.clone()) },
        BodyRoute { path: ME, auth: Auth::Session(fx.session.clone()) },
    ]
}

/// A body of exactly `len` bytes: a JSON object padded with white space.
fn padded(object: &str, len: usize) -> Vec<u8> {
    let mut body = object.as_bytes()[..object.len() - 1].to_vec();
    body.resize(len - 1, b' ');
    body.push(b'}');
    body
}

fn body_cases(t: &mut Table, fx: &Fixture) {
    let big = format!(r#"{{"email":"{}","password":"{}"}}"#, email("big"), "x".repeat(70 * 1024));
    let nested_arrays = "[".repeat(10_000);
    let nested_objects = r#"{"a":"#.repeat(10_000);
    let bodies: Vec<(&str, Vec<u8>, Framing, Expect)> = vec![
        ("a 70 KiB body", big.clone().into_bytes(), Framing::Length, too_large()),
        ("a body of 65537 bytes", padded("{}", LIMIT + 1), Framing::Length, too_large()),
        ("a 70 KiB chunked body", big.clone().into_bytes(), Framing::Chunked, too_large()),
        ("content-length 1 MB, a small body", b"{}".to_vec(), Framing::Declared("1048576".into()), too_large()),
        ("content-length 2^64-1, a small body", b"{}".to_vec(), Framing::Declared(u64::MAX.to_string()), too_large()),
        ("truncated JSON", br#"{"email":"#.to_vec(), Framing::Length, not_json(false, Some((1, 9)))),
        ("a JSON array", b"[]".to_vec(), Framing::Length, not_object("array")),
        ("a JSON string", br#""{\"email\":\"a@b.c\"}""#.to_vec(), Framing::Length, not_object("string")),
        ("a JSON number", b"42".to_vec(), Framing::Length, not_object("number")),
        ("JSON null", b"null".to_vec(), Framing::Length, not_object("null")),
        ("JSON true", b"true".to_vec(), Framing::Length, not_object("boolean")),
        ("10 000 nested arrays", nested_arrays.into_bytes(), Framing::Length, not_json(true, None)),
        ("10 000 nested objects", nested_objects.into_bytes(), Framing::Length, not_json(true, None)),
        (
            "non-UTF-8 in a string",
            b"{\"email\":\"\xff\xfe@example.com\"}".to_vec(),
            Framing::Length,
            not_json(true, None),
        ),
        ("Latin-1 body", b"{\"email\":\"j\xf6rg@example.com\"}".to_vec(), Framing::Length, not_json(true, None)),
        ("UTF-16 body", b"\xff\xfe{\x00}\x00".to_vec(), Framing::Length, not_json(false, Some((1, 1)))),
        ("a UTF-8 BOM", b"\xef\xbb\xbf{}".to_vec(), Framing::Length, not_json(false, Some((1, 1)))),
        ("trailing garbage", b"{} x".to_vec(), Framing::Length, not_json(false, Some((1, 4)))),
        ("two objects", b"{}{}".to_vec(), Framing::Length, not_json(false, Some((1, 3)))),
        ("a trailing comma", br#"{"a":1,}"#.to_vec(), Framing::Length, not_json(false, Some((1, 8)))),
        ("single quotes", b"{'email':'a@b.c'}".to_vec(), Framing::Length, not_json(false, Some((1, 2)))),
        ("a comment", b"{/* c */}".to_vec(), Framing::Length, not_json(false, Some((1, 2)))),
        ("NaN", br#"{"a":NaN}"#.to_vec(), Framing::Length, not_json(true, None)),
        ("a number out of range", br#"{"a":1e999999}"#.to_vec(), Framing::Length, not_json(true, None)),
        ("a lone surrogate", br#"{"email":"\ud800"}"#.to_vec(), Framing::Length, not_json(true, None)),
        ("a raw control character", b"{\"email\":\"a\x01b\"}".to_vec(), Framing::Length, not_json(true, None)),
        ("a NUL byte after the object", b"{}\x00".to_vec(), Framing::Length, not_json(false, Some((1, 3)))),
        ("form encoding", b"email=a%40b.c&password=x".to_vec(), Framing::Length, not_json(false, Some((1, 1)))),
        ("gzip bytes", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03".to_vec(), Framing::Length, not_json(true, None)),
    ];
    for route in body_routes(fx) {
        for (name, body, framing, expect) in &bodies {
            let req = Req::post(route.path).with(&route.auth).json(body.clone()).framing(framing.clone());
            t.add(format!("POST {}: {name}", route.path), req, expect.clone());
        }
        // Content-Type is not what decides: a JSON array sent as text/plain or as a form is
        // still refused as an array, and a gzip body is not inflated.
        let req = Req::post(route.path).with(&route.auth).header("content-type", "text/plain").body("[]");
        t.add(format!("POST {}: a JSON array as text/plain", route.path), req, not_object("array"));
        let gz = Req::post(route.path)
            .with(&route.auth)
            .json(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00".to_vec())
            .header("content-encoding", "gzip");
        t.add(format!("POST {}: content-encoding gzip", route.path), gz, not_json(true, None));
        // A bad body is refused before the scope is looked at (docs/api.md: body, then scope).
        if route.path.starts_with("/auth/customer/") {
            let other = route.path.replace("/auth/customer/", "/auth/admin/");
            let req = Req::post(other.clone()).with(&route.auth).json("[");
            t.add(format!("POST {other}: truncated JSON, unknown actor"), req, not_json(false, Some((1, 1))));
        }
    }

    // Exactly at the limit: accepted as a body, then refused for its fields (not a 413).
    let at_limit = |object: &str| padded(object, LIMIT);
    let ann = &fx.ann;
    t.add(
        "POST login: a body of exactly 65536 bytes",
        Req::post(LOGIN).json(at_limit(&format!(r#"{{"email":"{ann}","password":"wrong password"}}"#))),
        Expect::Error(401, "unauthorized", Msg::Exact("Invalid email or password".into())),
    );
    t.add(
        "POST register: a body of exactly 65536 bytes",
        Req::post(REGISTER).json(at_limit(&format!(r#"{{"email":"{}","password":"short"}}"#, email("limit")))),
        invalid(Msg::Exact("Invalid request: Field 'password' must be at least 8 characters long".into())),
    );
    t.add(
        "POST reset-password: a body of exactly 65536 bytes",
        Req::post(RESET).json(at_limit("{}")),
        invalid(Msg::Exact("Invalid request: Field 'identifier' is required".into())),
    );
    t.add(
        "POST update: a body of exactly 65536 bytes",
        Req::post(UPDATE).bearer(&fx.reset).json(at_limit("{}")),
        invalid(Msg::Exact("Invalid request: Field 'password' is required".into())),
    );
    t.add(
        "POST change-password: a body of exactly 65536 bytes",
        Req::post(CHANGE).bearer(&fx.login).json(at_limit("{}")),
        invalid(Msg::Exact(
            "Invalid request: Field 'old_password' is required; Field 'new_password' is required".into(),
        )),
    );
    t.add(
        "POST /store/customers: a body of exactly 65536 bytes",
        Req::post(CUSTOMERS).bearer(&fx.bob_registration).json(at_limit("{}")),
        invalid(Msg::Exact("Email is required to create a customer".into())),
    );

    // A lying, small content-length: the server reads that many bytes as the body. What
    // follows is the next request on the connection (actix serves it although the first said
    // `connection: close`), and the limit applies to it too.
    let fields_required =
        || invalid(Msg::Exact("Invalid request: Field 'email' is required; Field 'password' is required".into()));
    let next = format!("POST {REGISTER} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n{big}", host("x"), big.len());
    t.add(
        "POST login: content-length 2, then a 70 KiB register",
        Req::post(LOGIN).json(format!("{{}}{next}")).framing(Framing::Declared("2".into())),
        fields_required(),
    );
    t.then(vec![too_large()]);
    let next = format!("POST {REGISTER} HTTP/1.1\r\nhost: {}\r\ntransfer-encoding: chunked\r\n\r\n", host("x"));
    t.add(
        "POST login: content-length 2, then a chunked register that never ends",
        Req::post(LOGIN).json(format!("{{}}{next}{:x}\r\n{big}\r\n", big.len())).framing(Framing::Declared("2".into())),
        fields_required(),
    );
    t.then(vec![too_large()]);
    // No framing at all: no body. Bytes sent anyway are the next request (a malformed head).
    t.add(
        "POST login without content-length or body",
        Req::post(LOGIN).header("content-type", "application/json").framing(Framing::Unframed),
        fields_required(),
    );
    let body = format!(r#"{{"email":"{ann}","password":"{PASSWORD}"}}"#);
    t.add(
        "POST login, a body without content-length",
        Req::post(LOGIN).json(body).framing(Framing::Unframed),
        fields_required(),
    );
    t.then(vec![Expect::Bare(400)]);
}

/// Duplicate keys: strict JSON refuses them (the issue: "strict JSON with a clear 400"). Each
/// body is built so that a parser keeping the last value, or the first, would be seen.
fn duplicate_key_cases(t: &mut Table, fx: &Fixture) {
    let ann = &fx.ann;
    let dup = Msg::Any;
    let cases = [
        (LOGIN, Auth::Nothing, format!(r#"{{"email":"{ann}","password":"wrong password","password":"{PASSWORD}"}}"#)),
        (
            REGISTER,
            Auth::Nothing,
            format!(r#"{{"email":"{}","password":"{PASSWORD}","password":"short"}}"#, email("dup")),
        ),
        (RESET, Auth::Nothing, format!(r#"{{"identifier":"{ann}","identifier":"nobody@example.com"}}"#)),
        (UPDATE, Auth::Bearer(fx.reset.clone()), format!(r#"{{"password":"{NEW_PASSWORD}","password":"short"}}"#)),
        (
            CHANGE,
            Auth::Bearer(fx.login.clone()),
            format!(r#"{{"old_password":"{PASSWORD}","old_password":"wrong","new_password":"{NEW_PASSWORD}"}}"#),
        ),
        (CUSTOMERS, Auth::Bearer(fx.bob_registration.clone()), format!(r#"{{"email":"{}","email":5}}"#, fx.bob)),
        (ME, Auth::Session(fx.session.clone()), r#"{"first_name":"Mallory","first_name":5}"#.to_string()),
    ];
    for (path, auth, body) in cases {
        t.add(format!("POST {path}: duplicate keys"), Req::post(path).with(&auth).json(body), invalid(dup.clone()));
    }
}

/// Field checks that must hold whatever the credentials (unknown fields on the strict routes,
/// wrong types, policy) and credential errors, which are JSON whatever `Accept` says.
fn field_cases(t: &mut Table, fx: &Fixture) {
    let ann = &fx.ann;
    let exact = |m: &str| invalid(Msg::Exact(format!("Invalid request: {m}")));
    let rows: Vec<(&str, Auth, String, Expect)> = vec![
        (RESET, Auth::Nothing, format!(r#"{{"identifier":"{ann}","email":"{ann}"}}"#), exact("Unrecognized fields: 'email'")),
        (
            RESET,
            Auth::Nothing,
            format!(r#"{{"identifier":"{ann}","metadata":"x"}}"#),
            exact("Expected type: 'object' for field 'metadata', got: 'string'"),
        ),
        (RESET, Auth::Nothing, r#"{"identifier":["a"]}"#.into(), exact("Expected type: 'string' for field 'identifier', got: 'array'")),
        (
            RESET,
            Auth::Nothing,
            format!(r#"{{"identifier":"{ann}","__proto__":{{"admin":true}}}}"#),
            exact("Unrecognized fields: '__proto__'"),
        ),
        (
            CUSTOMERS,
            Auth::Bearer(fx.bob_registration.clone()),
            format!(r#"{{"email":"{}","password":"{PASSWORD}"}}"#, fx.bob),
            exact("Unrecognized fields: 'password'"),
        ),
        (
            CUSTOMERS,
            Auth::Bearer(fx.bob_registration.clone()),
            format!(r#"{{"email":"{}","has_account":false,"id":"cus_x"}}"#, fx.bob),
            exact("Unrecognized fields: 'has_account', 'id'"),
        ),
        (
            CUSTOMERS,
            Auth::Bearer(fx.bob_registration.clone()),
            format!(r#"{{"email":"{}","metadata":[1]}}"#, fx.bob),
            exact("Expected type: 'object' for field 'metadata', got: 'array'"),
        ),
        (
            CUSTOMERS,
            Auth::Bearer(fx.bob_registration.clone()),
            r#"{"email":"bob@example.com\r\nBcc: x@example.com"}"#.into(),
            exact("Field 'email' must be a valid email address"),
        ),
        (ME, Auth::Session(fx.session.clone()), r#"{"email":"mallory@example.com"}"#.into(), exact("Unrecognized fields: 'email'")),
        (
            ME,
            Auth::Session(fx.session.clone()),
            r#"{"first_name":"Mallory","deleted_at":"2020-01-01T00:00:00Z"}"#.into(),
            exact("Unrecognized fields: 'deleted_at'"),
        ),
        (ME, Auth::Session(fx.session.clone()), r#"{"phone":5}"#.into(), exact("Expected type: 'string' for field 'phone', got: 'number'")),
        (
            UPDATE,
            Auth::Bearer(fx.reset.clone()),
            format!(r#"{{"email":"mallory@example.com","password":"{NEW_PASSWORD}"}}"#),
            exact("Field 'email' does not match the account of the reset token"),
        ),
        (UPDATE, Auth::Bearer(fx.reset.clone()), r#"{"password":5}"#.into(), exact("Expected type: 'string' for field 'password', got: 'number'")),
        (UPDATE, Auth::Bearer(fx.reset.clone()), r#"{"password":"short"}"#.into(), exact("Field 'password' must be at least 8 characters long")),
        (
            UPDATE,
            Auth::Bearer(fx.reset.clone()),
            format!(r#"{{"password":"{}"}}"#, "é".repeat(37)),
            exact("Field 'password' must be at most 72 bytes of UTF-8"),
        ),
        (
            CHANGE,
            Auth::Bearer(fx.login.clone()),
            format!(r#"{{"old_password":"wrong password","new_password":"{NEW_PASSWORD}"}}"#),
            Expect::Error(401, "unauthorized", Msg::Exact("Invalid password".into())),
        ),
        (
            CHANGE,
            Auth::Bearer(fx.login.clone()),
            format!(r#"{{"old_password":null,"new_password":"{NEW_PASSWORD}"}}"#),
            exact("Field 'old_password' is required"),
        ),
        (
            REGISTER,
            Auth::Nothing,
            format!(r#"{{"email":"{ann}","password":"{PASSWORD}"}}"#),
            Expect::Error(401, "unauthorized", Msg::Exact("Identity with email already exists".into())),
        ),
        (
            REGISTER,
            Auth::Nothing,
            format!(r#"{{"email":"{}","password":"{PASSWORD}"}}"#, ann.to_uppercase()),
            Expect::Error(401, "unauthorized", Msg::Exact("Identity with email already exists".into())),
        ),
        (
            REGISTER,
            Auth::Nothing,
            format!(r#"{{"email":"a\u0000{}","password":"{PASSWORD}"}}"#, email("nul")),
            exact("Field 'email' must not contain NUL characters"),
        ),
        (
            REGISTER,
            Auth::Nothing,
            format!(r#"{{"email":"{}@example.com","password":"{PASSWORD}"}}"#, "a".repeat(250)),
            exact("Field 'email' must be a valid email address"),
        ),
        (
            REGISTER,
            Auth::Nothing,
            format!(r#"{{"email":"{}","password":"{}"}}"#, email("long"), "x".repeat(73)),
            exact("Field 'password' must be at most 72 bytes of UTF-8"),
        ),
        (REGISTER, Auth::Nothing, r#"{"email":{"$gt":""},"password":[]}"#.into(), exact("Expected type: 'string' for field 'email', got: 'object'; Expected type: 'string' for field 'password', got: 'array'")),
        (
            LOGIN,
            Auth::Nothing,
            format!(r#"{{"email":"{ann}","password":"{PASSWORD}\u0000"}}"#),
            exact("Field 'password' must not contain NUL characters"),
        ),
        (
            LOGIN,
            Auth::Nothing,
            format!(r#"{{"email":"{ann}","password":"{}"}}"#, "x".repeat(10_000)),
            Expect::Error(401, "unauthorized", Msg::Exact("Invalid email or password".into())),
        ),
        (
            LOGIN,
            Auth::Nothing,
            format!(r#"{{"email":"{ann}' OR '1'='1","password":"' OR '1'='1"}}"#),
            Expect::Error(401, "unauthorized", Msg::Exact("Invalid email or password".into())),
        ),
        (LOGIN, Auth::Nothing, r#"{"email":true,"password":1}"#.into(), exact("Expected type: 'string' for field 'email', got: 'boolean'; Expected type: 'string' for field 'password', got: 'number'")),
    ];
    for (path, auth, body, expect) in rows {
        // Credential errors are JSON even without `accept: application/json`.
        let req = Req::post(path).with(&auth).json(body.clone());
        t.add(format!("POST {path}: {}", shorten(body.as_bytes(), 80)), req, expect);
    }
    // The policy is checked before the old password (docs/api.md, change-password).
    let req = Req::post(CHANGE).bearer(&fx.login).json(r#"{"old_password":"wrong password","new_password":"short"}"#);
    t.add(
        "POST change-password: a wrong old password and a short new one",
        req,
        exact("Field 'new_password' must be at least 8 characters long"),
    );
    // NUL characters: a structure error on every backend (PostgreSQL's TEXT cannot hold them),
    // never a 500, never stored.
    let nul = |field: &str| exact(&format!("Field '{field}' must not contain NUL characters"));
    let nul_email = format!(r#"{{"email":"{}\u0000","password":"{PASSWORD}"}}"#, fx.ann);
    t.add("POST login: NUL in the email", Req::post(LOGIN).json(nul_email), nul("email"));
    let body = format!(r#"{{"email":"{}\u0000","password":"{NEW_PASSWORD}"}}"#, fx.ann);
    t.add("POST update: NUL in the email", Req::post(UPDATE).bearer(&fx.reset).json(body), nul("email"));
    let body = format!(r#"{{"old_password":"{PASSWORD}\u0000x","new_password":"{NEW_PASSWORD}"}}"#);
    t.add(
        "POST change-password: the old password, NUL, more",
        Req::post(CHANGE).bearer(&fx.login).json(body),
        nul("old_password"),
    );
    let body = format!(r#"{{"email":"{}","password":"{PASSWORD}\u0000x"}}"#, fx.ann);
    t.add("POST login: the password, NUL, more", Req::post(LOGIN).json(body), nul("password"));
    {
        for (path, auth, body) in [
            (
                CUSTOMERS,
                Auth::Bearer(fx.bob_registration.clone()),
                format!(r#"{{"email":"{}","first_name":"a\u0000b"}}"#, fx.bob),
            ),
            (ME, Auth::Session(fx.session.clone()), r#"{"last_name":"a\u0000b"}"#.to_string()),
        ] {
            t.add(format!("POST {path}: NUL in a name"), Req::post(path).with(&auth).json(body), invalid(Msg::Any));
        }
    }
    let body = format!(r#"{{"email":"\u0000{}"}}"#, fx.bob);
    t.add(
        "POST /store/customers: NUL in the email",
        Req::post(CUSTOMERS).bearer(&fx.bob_registration).json(body),
        nul("email"),
    );
    // reset-password answers 201 to any string, and an unknown one changes nothing.
    let req = Req::post(RESET).json(format!(r#"{{"identifier":"{}"}}"#, "z".repeat(60_000)));
    t.add("POST reset-password: a 60 000-character identifier", req, Expect::Text(201, "Created"));
    let req = Req::post(RESET).json(r#"{"identifier":"nobody@example.com\u0000"}"#);
    t.add("POST reset-password: an identifier with NUL", req, nul("identifier"));
}

/// Unknown `{actor}` and `{provider}`: 400 `not_allowed` naming it, on every scoped route.
fn scope_cases(t: &mut Table, fx: &Fixture) {
    let ten_k = "a".repeat(10 * 1024);
    let actors: Vec<(&str, String)> = vec![
        ("admin", "admin".into()),
        ("Customer", "Customer".into()),
        ("store", "store".into()),
        ("token", "token".into()),
        ("custömer", "cust%C3%B6mer".into()),
        ("customer\0", "customer%00".into()),
        ("customer ", "customer%20".into()),
        (&ten_k, ten_k.clone()),
    ];
    let providers: Vec<(&str, String)> = vec![
        ("google", "google".into()),
        ("EMAILPASS", "EMAILPASS".into()),
        ("emailpass.", "emailpass.".into()),
        ("emailpass\n", "emailpass%0A".into()),
    ];
    let login_body = format!(r#"{{"email":"{}","password":"{PASSWORD}"}}"#, fx.ann);
    for (decoded, raw) in &actors {
        let message = format!("Unknown actor type: {decoded}");
        let short = shorten(raw.as_bytes(), 40);
        for (method, suffix, auth, body) in [
            ("POST", "", Auth::Nothing, login_body.clone()),
            (
                "POST",
                "/register",
                Auth::Nothing,
                format!(r#"{{"email":"{}","password":"{PASSWORD}"}}"#, email("scope")),
            ),
            ("POST", "/reset-password", Auth::Nothing, format!(r#"{{"identifier":"{}"}}"#, fx.ann)),
            ("POST", "/update", Auth::Bearer(fx.reset.clone()), format!(r#"{{"password":"{NEW_PASSWORD}"}}"#)),
            (
                "POST",
                "/change-password",
                Auth::Bearer(fx.login.clone()),
                format!(r#"{{"old_password":"{PASSWORD}","new_password":"{NEW_PASSWORD}"}}"#),
            ),
            ("GET", "/callback", Auth::Nothing, String::new()),
            ("POST", "/callback", Auth::Nothing, String::new()),
        ] {
            let path = format!("/auth/{raw}/emailpass{suffix}");
            let req = Req::new(method, path).with(&auth).json(body);
            t.add(format!("{method} /auth/{short}/emailpass{suffix}"), req, not_allowed(message.clone()));
        }
        let req = Req::get(format!("/auth/{raw}/providers"));
        t.add(format!("GET /auth/{short}/providers"), req, not_allowed(message.clone()));
    }
    for (decoded, raw) in &providers {
        let message = format!("Unknown auth provider: {decoded}");
        for (suffix, auth, body) in [
            ("", Auth::Nothing, login_body.clone()),
            ("/register", Auth::Nothing, format!(r#"{{"email":"{}","password":"{PASSWORD}"}}"#, email("scope"))),
            ("/reset-password", Auth::Nothing, format!(r#"{{"identifier":"{}"}}"#, fx.ann)),
            ("/update", Auth::Bearer(fx.reset.clone()), format!(r#"{{"password":"{NEW_PASSWORD}"}}"#)),
            (
                "/change-password",
                Auth::Bearer(fx.login.clone()),
                format!(r#"{{"old_password":"{PASSWORD}","new_password":"{NEW_PASSWORD}"}}"#),
            ),
            ("/callback", Auth::Nothing, String::new()),
        ] {
            let path = format!("/auth/customer/{raw}{suffix}");
            let req = Req::post(path.clone()).with(&auth).json(body);
            t.add(format!("POST {path}"), req, not_allowed(message.clone()));
        }
    }
    // `%2F` is not a separator: `customer/emailpass` is one (unknown) actor, `register` the
    // provider, so this is a login with an unknown actor.
    let req = Req::post("/auth/customer%2Femailpass/register").json(login_body);
    t.add(
        "POST /auth/customer%2Femailpass/register",
        req,
        not_allowed("Unknown actor type: customer/emailpass".into()),
    );
    // Non-UTF-8 after percent-decoding: actix decodes lossily (U+FFFD).
    let req = Req::get("/auth/%FF%FE/providers");
    t.add("GET /auth/%FF%FE/providers", req, not_allowed("Unknown actor type: \u{fffd}\u{fffd}".into()));
    let req = Req::post("/auth/customer/%C0%AF").json("{}");
    t.add("POST /auth/customer/%C0%AF", req, not_allowed("Unknown auth provider: \u{fffd}\u{fffd}".into()));
}

/// Every guarded route refuses forged, expired, misplaced and malformed credentials with the
/// negotiated 401, and nothing changes.
fn token_cases(t: &mut Table, fx: &Fixture) {
    let change_body = format!(r#"{{"old_password":"{PASSWORD}","new_password":"{NEW_PASSWORD}"}}"#);
    let create_body = format!(r#"{{"email":"{}","first_name":"Mallory"}}"#, fx.bob);
    // (route, a request without credentials, the genuine token the forgeries start from)
    let guarded: Vec<(String, Req, &str)> = vec![
        (format!("POST {REFRESH}"), Req::post(REFRESH).json(""), fx.login.as_str()),
        (format!("POST {SESSION}"), Req::post(SESSION).json(""), fx.login.as_str()),
        (format!("POST {LOGOUT_ALL}"), Req::post(LOGOUT_ALL).json(""), fx.login.as_str()),
        (format!("POST {CHANGE}"), Req::post(CHANGE).json(change_body.clone()), fx.login.as_str()),
        (format!("POST {CUSTOMERS}"), Req::post(CUSTOMERS).json(create_body.clone()), fx.bob_registration.as_str()),
        (format!("GET {ME}"), Req::get(ME), fx.login.as_str()),
        (format!("POST {ME}"), Req::post(ME).json(r#"{"first_name":"Mallory"}"#), fx.login.as_str()),
    ];
    for (route, bare, genuine) in &guarded {
        t.refused(&format!("{route}: no credentials"), bare.clone(), "Unauthorized");
        for (name, token) in forgeries(genuine, fx.now) {
            t.refused(&format!("{route}: {name}"), bare.clone().bearer(&token), "Unauthorized");
        }
        for (name, value) in bad_authorizations(genuine) {
            t.refused(&format!("{route}: {name}"), bare.clone().header("authorization", value), "Unauthorized");
        }
        t.refused(&format!("{route}: the reset token"), bare.clone().bearer(&fx.reset), "Unauthorized");
        // A garbage Authorization first, the genuine one second: only the first counts.
        let twice = bare.clone().header("authorization", "Bearer garbage").bearer(genuine);
        t.refused(&format!("{route}: two Authorization headers, the genuine one second"), twice, "Unauthorized");
        // Unknown, empty, forged and oversized session cookies (and no bearer).
        for (name, cookie) in [
            ("an unknown session", "0".repeat(64)),
            ("an empty session cookie", String::new()),
            ("a 20 KiB session cookie", "f".repeat(20 * 1024)),
            ("a session cookie with SQL", "' OR '1'='1".into()),
            ("the session id in upper case", fx.session.to_uppercase()),
            ("the session id's hash", hex_sha256(&fx.session)),
        ] {
            t.refused(&format!("{route}: {name}"), bare.clone().cookie(&cookie), "Unauthorized");
        }
        let cookie = [b"connect.sid=".as_slice(), b"\xff\xfe"].concat();
        t.refused(&format!("{route}: a non-UTF-8 cookie"), bare.clone().header("cookie", cookie), "Unauthorized");
        // Accept headers that do not ask for JSON get the plain 401.
        for accept in ["*/*", "application/json;q=0", "text/html", "application/*"] {
            let req = bare.clone().header("accept", accept);
            t.add(
                format!("{route}: no credentials, accept {accept}"),
                req,
                Expect::Refused { json: false, message: "" },
            );
        }
        let req = bare.clone().header("accept", b"application/json\xff".to_vec());
        t.add(format!("{route}: no credentials, non-UTF-8 accept"), req, Expect::Refused { json: false, message: "" });
    }

    // RFC 6750 allows several spaces after `Bearer`: the genuine token is taken (refresh changes
    // nothing, so the acceptance is visible without side effects).
    let req = Req::post(REFRESH).json("").header("authorization", format!("Bearer  {}", fx.login));
    t.add(format!("POST {REFRESH}: Bearer, two spaces, genuine token"), req, Expect::Token);

    // The actor `user` on customer routes (token and session).
    let me_post = Req::post(ME).json(r#"{"first_name":"Mallory"}"#);
    for (name, req) in [
        (format!("GET {ME}: a user token"), Req::get(ME).bearer(&fx.user)),
        (format!("POST {ME}: a user token"), me_post.clone().bearer(&fx.user)),
        (format!("GET {ME}: a user session"), Req::get(ME).cookie(&fx.user_session)),
        (format!("POST {ME}: a user session"), me_post.clone().cookie(&fx.user_session)),
        (
            format!("POST {CUSTOMERS}: bob's user token"),
            Req::post(CUSTOMERS).json(create_body.clone()).bearer(&fx.bob_user),
        ),
        (format!("POST {CHANGE}: a user token"), Req::post(CHANGE).json(change_body.clone()).bearer(&fx.user)),
        (
            format!("POST {CHANGE}: a user session"),
            Req::post(CHANGE).json(change_body.clone()).cookie(&fx.user_session),
        ),
        // A registration token whose customer exists since: the store route refuses it as a
        // creator with a 400, which is not this table's business; on `me` it works (docs).
    ] {
        t.refused(&name, req, "Unauthorized");
    }

    // A genuine session cookie on a state-changing request that is not JSON is not a credential
    // (CSRF): refused, and nothing changes.
    for content_type in
        [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data")]
    {
        let ct = content_type.unwrap_or("none");
        for (method, path, body) in [
            ("DELETE", SESSION, String::new()),
            ("POST", LOGOUT_ALL, String::new()),
            ("POST", CHANGE, change_body.clone()),
            ("POST", ME, r#"{"first_name":"Mallory"}"#.into()),
            ("POST", REFRESH, String::new()),
        ] {
            let mut req = Req::new(method, path).cookie(&fx.session).body(body);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            t.refused(&format!("{method} {path}: the genuine session, content-type {ct}"), req, "Unauthorized");
        }
    }
    // Session-only and bearer-only routes refuse the other credential.
    t.refused(
        "POST /auth/session: only the session cookie",
        Req::post(SESSION).json("").cookie(&fx.session),
        "Unauthorized",
    );
    t.refused(
        "DELETE /auth/session: only a bearer token",
        Req::new("DELETE", SESSION).json("").bearer(&fx.login),
        "Unauthorized",
    );
    for (name, cookie) in [
        ("no cookie", None),
        ("an unknown session", Some("0".repeat(64))),
        ("an empty cookie", Some(String::new())),
        ("a 20 KiB cookie", Some("f".repeat(20 * 1024))),
        ("another cookie name", None),
    ] {
        let mut req = Req::new("DELETE", SESSION).json("");
        if let Some(c) = cookie {
            req = req.cookie(&c);
        }
        if name == "another cookie name" {
            req = req.header("cookie", format!("Connect.SID={}; sid={}", fx.session, fx.session));
        }
        t.refused(&format!("DELETE /auth/session: {name}"), req, "Unauthorized");
    }
    let twice =
        Req::new("DELETE", SESSION).json("").header("cookie", format!("connect.sid=bogus; connect.sid={}", fx.session));
    t.refused("DELETE /auth/session: two session cookies, the genuine one second", twice, "Unauthorized");

    // `/update` takes a reset token only, for its own scope; JSON message `Invalid token`.
    let update_body = format!(r#"{{"password":"{NEW_PASSWORD}"}}"#);
    let update = Req::post(UPDATE).json(update_body.clone());
    t.refused("POST update: no token", update.clone(), "Invalid token");
    for (name, token) in forgeries(&fx.reset, fx.now) {
        t.refused(&format!("POST update: {name}"), update.clone().bearer(&token), "Invalid token");
    }
    for (name, value) in bad_authorizations(&fx.reset) {
        t.refused(&format!("POST update: {name}"), update.clone().header("authorization", value), "Invalid token");
    }
    for (name, token) in [
        ("an auth token", fx.login.clone()),
        ("a registration token", fx.registration.clone()),
        ("a user token", fx.user.clone()),
    ] {
        t.refused(&format!("POST update: {name}"), update.clone().bearer(&token), "Invalid token");
    }
    t.refused("POST update: the session cookie", update.clone().cookie(&fx.session), "Invalid token");
    let other_scope = Req::post("/auth/user/emailpass/update").json(update_body).bearer(&fx.reset);
    t.refused("POST /auth/user/emailpass/update: the customer's reset token", other_scope, "Invalid token");
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest as _;
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Wrong methods (405 JSON naming the method and path) and unknown paths (404 JSON).
fn route_cases(t: &mut Table) {
    let wrong: &[(&str, &[&str])] = &[
        (HEALTH, &["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"]),
        (LOGIN, &["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
        (REGISTER, &["GET", "PUT", "DELETE"]),
        (RESET, &["GET", "DELETE"]),
        (UPDATE, &["GET", "PUT"]),
        (CALLBACK, &["PUT", "DELETE", "HEAD"]),
        (CHANGE, &["GET", "PUT"]),
        (PROVIDERS, &["POST", "DELETE"]),
        (REFRESH, &["GET", "PUT", "DELETE", "HEAD"]),
        (SESSION, &["GET", "PUT", "PATCH", "OPTIONS"]),
        (LOGOUT_ALL, &["GET", "DELETE"]),
        (CUSTOMERS, &["GET", "PUT", "DELETE"]),
        (ME, &["PUT", "PATCH", "DELETE", "HEAD"]),
        ("/auth/admin/emailpass", &["PUT"]),
    ];
    for (path, methods) in wrong {
        for method in *methods {
            let message = format!("Method {method} is not allowed on {path}");
            let expect = Expect::Error(405, "not_allowed", Msg::Exact(message));
            t.add(format!("{method} {path}"), Req::new(method, *path), expect);
        }
    }
    // GET on a provider starts a redirect sign-in; emailpass has none.
    let message = format!("The emailpass provider has no redirect flow: it authenticates with POST {LOGIN}");
    t.add(format!("GET {LOGIN}"), Req::new("GET", LOGIN), Expect::Error(400, "not_allowed", Msg::Exact(message)));
    // The method is checked before the body is read.
    let req = Req::new("PUT", LOGIN).json("x".repeat(70 * 1024));
    t.add("PUT login with a 70 KiB body", req, Expect::Error(405, "not_allowed", Msg::Any));
    // A method is case-sensitive: `post` is another method.
    let req = Req::new("post", LOGIN).json("{}");
    t.add(
        "post (lower case) login",
        req,
        Expect::Error(405, "not_allowed", Msg::Exact(format!("Method post is not allowed on {LOGIN}"))),
    );

    let long = format!("/{}", "n".repeat(20 * 1024));
    for path in [
        "/",
        "/nope",
        "/auth",
        "/auth/",
        "/auth/customer",
        "/auth/customer/emailpass/",
        "/auth/customer/emailpass/register/",
        "/auth/customer/emailpass/register/extra",
        "/auth/customer/emailpass/update/..",
        "/auth/customer/../customer/emailpass",
        "/auth/customer//register",
        "/auth//emailpass",
        "/auth/token/refresh/",
        "/auth/session/",
        "/store",
        "/store/customers/",
        "/store/customers/me/",
        "/store/customers/cus_01",
        "/store/customers/me/addresses",
        "/health/",
        "//health",
        "/HEALTH",
        "/admin/users",
        "/.env",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/ready/",
        "/metrics/x",
        "/docs/nothing.js",
        long.as_str(),
    ] {
        let expect = Expect::Error(404, "not_found", Msg::Exact(format!("Cannot GET {path}")));
        t.add(format!("GET {}", shorten(path.as_bytes(), 60)), Req::get(path), expect);
    }
    let req = Req::post("/auth/customer/emailpass/register/extra").json(b"\xff".to_vec());
    t.add("POST an unknown path with a non-UTF-8 body", req, Expect::Error(404, "not_found", Msg::Any));
    // Query strings are ignored, whatever they hold.
    let req = Req::get(format!("{HEALTH}?x={}&%FF=%00", "q".repeat(10 * 1024)));
    t.add("GET /health with a 10 KiB query", req, Expect::Text(200, "OK"));
    let req = Req::get(format!("{PROVIDERS}?fields=%FF%FE"));
    let providers = json!({"providers": [{"id": "emailpass", "identifier": "emailpass", "display_name": "Email and password", "flow": "credentials"}]});
    t.add("GET providers with a non-UTF-8 query", req, Expect::Json(200, providers));
}

/// Heads: overlong, malformed, non-UTF-8. Actix answers some before any handler.
fn head_cases(t: &mut Table, fx: &Fixture) {
    let filler = |n: usize| "h".repeat(n);
    // 40 KiB is below actix-http's 128 KiB head buffer: served as usual.
    t.add(
        "GET /health with a 40 KiB header",
        Req::get(HEALTH).header("x-filler", filler(40 * 1024)),
        Expect::Text(200, "OK"),
    );
    let req = Req::post(LOGIN)
        .header("x-filler", filler(40 * 1024))
        .json(format!(r#"{{"email":"{}","password":"wrong password"}}"#, fx.ann));
    t.add(
        "POST login with a 40 KiB header",
        req,
        Expect::Error(401, "unauthorized", Msg::Exact("Invalid email or password".into())),
    );
    t.refused(
        "POST refresh with a 40 KiB bearer",
        Req::post(REFRESH).json("").bearer(&filler(40 * 1024)),
        "Unauthorized",
    );
    // 20 KiB paths.
    let actor = "a".repeat(20 * 1024);
    let req = Req::post(format!("/auth/{actor}/emailpass")).json("{}");
    t.add("POST /auth/<20 KiB>/emailpass", req, not_allowed(format!("Unknown actor type: {actor}")));
    // Beyond 128 KiB: 431 with no body, before any handler.
    t.add(
        "GET /health with a 140 KiB header",
        Req::get(HEALTH).header("x-filler", filler(140 * 1024)),
        Expect::Bare(431),
    );
    t.add("GET a 140 KiB path", Req::get(format!("/{}", "p".repeat(140 * 1024))), Expect::Bare(431));
    let req = Req::post(REFRESH).bearer(&filler(140 * 1024));
    t.add("POST refresh with a 140 KiB bearer", req, Expect::Bare(431));
    let mut many = Req::get(HEALTH);
    for i in 0..100 {
        many = many.header(&format!("x-h{i}"), "v");
    }
    t.add("GET /health with 100 headers", many, Expect::Bare(431));

    // Non-UTF-8 in header values: read as absent where they matter, ignored elsewhere.
    let req = Req::get(HEALTH).header("x-medusa-locale", b"\xff\xfe".to_vec());
    t.add("GET /health, non-UTF-8 x-medusa-locale", req, Expect::Text(200, "OK"));
    let req = Req::post(LOGIN)
        .header("x-medusa-locale", b"fr\xe9".to_vec())
        .json(format!(r#"{{"email":"{}","password":"wrong password"}}"#, fx.ann));
    t.add("POST login, non-UTF-8 x-medusa-locale", req, Expect::Error(401, "unauthorized", Msg::Any));
    let req = Req::post(LOGIN).header("content-type", b"application/json\xff".to_vec()).body("[]");
    t.add("POST login, non-UTF-8 content-type", req, not_object("array"));
    let req = Req::post(LOGOUT_ALL).header("content-type", b"application/json\xff".to_vec()).cookie(&fx.session);
    t.refused("POST logout-all, genuine session, non-UTF-8 content-type", req, "Unauthorized");

    // Non-UTF-8 and odd bytes in the path itself.
    for (name, target) in [
        ("raw 0xFF in the path", b"/auth/\xff/providers".to_vec()),
        ("raw 0xFF in an unknown path", b"/nope\xff".to_vec()),
        ("raw UTF-8 in the path", "/auth/cust\u{f6}mer/providers".as_bytes().to_vec()),
        ("a space-less control byte in the path", b"/auth/\x01/providers".to_vec()),
        ("a NUL in the path", b"/health\x00".to_vec()),
    ] {
        t.add(name, Req::get(target), Expect::Bare(400));
    }

    // Malformed heads: actix-http's 400, no body.
    for (name, raw) in [
        ("a garbage request line", b"GARBAGE\r\n\r\n".to_vec()),
        ("an unknown HTTP version", b"GET /health HTTP/9.9\r\nhost: x\r\n\r\n".to_vec()),
        ("a space in a header name", b"GET /health HTTP/1.1\r\nhost: x\r\nbad header: 1\r\n\r\n".to_vec()),
        ("a NUL in a header value", b"GET /health HTTP/1.1\r\nhost: x\r\nx-a: a\x00b\r\n\r\n".to_vec()),
        ("an obs-fold header", b"GET /health HTTP/1.1\r\nhost: x\r\nx-a: a\r\n b\r\n\r\n".to_vec()),
        ("content-length not a number", format!("POST {LOGIN} HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n{{}}").into_bytes()),
        ("a negative content-length", format!("POST {LOGIN} HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n{{}}").into_bytes()),
        (
            "two different content-lengths",
            format!("POST {LOGIN} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{{}} ").into_bytes(),
        ),
        (
            "content-length and chunked (smuggling)",
            format!("POST {LOGIN} HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n")
                .into_bytes(),
        ),
        (
            "transfer-encoding gzip, chunked",
            format!("POST {LOGIN} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n").into_bytes(),
        ),
    ] {
        t.add(name, Req::verbatim(raw), Expect::Bare(400));
    }
    // A broken chunked body is a body that could not be read: JSON 400.
    let raw = format!(
        "POST {LOGIN} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n",
        host("x")
    );
    t.add(
        "a chunk size that is not hex",
        Req::verbatim(raw.into_bytes()),
        invalid(Msg::Prefix("Invalid request: the body could not be read")),
    );
    // Heads actix-http takes: bare LF line ends, HTTP/1.0 without Host, an absolute-form target.
    t.add(
        "a bare LF head",
        Req::verbatim(b"GET /health HTTP/1.1\nhost: x\nconnection: close\n\n".to_vec()),
        Expect::Text(200, "OK"),
    );
    t.add("HTTP/1.0 without host", Req::verbatim(b"GET /health HTTP/1.0\r\n\r\n".to_vec()), Expect::Text(200, "OK"));
    let raw = b"GET http://evil.example/health HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n".to_vec();
    t.add("an absolute-form target", Req::verbatim(raw), Expect::Text(200, "OK"));
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

fn port(app: &TestApp) -> u16 {
    app.base.rsplit(':').next().unwrap().parse().unwrap()
}

fn login_as(app: &TestApp, actor: &str, email: &str) -> String {
    let r = app.post(&format!("/auth/{actor}/emailpass"), &crate::helpers::credentials(email, PASSWORD));
    assert_eq!(r.status, 200, "{}", r.text);
    r.token()
}

fn fixture(app: &TestApp) -> Fixture {
    let ann = email("ann");
    let registration = app.registered(&ann);
    let r = app.post_with(
        CUSTOMERS,
        &json!({"email": ann, "first_name": "Ann"}).to_string(),
        &[("authorization", &format!("Bearer {registration}"))],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let login = login_as(app, "customer", &ann);
    assert!(claims(&login)["actor_id"].as_str().unwrap().starts_with("cus_"));
    let user = login_as(app, "user", &ann);
    let session = app.open_session(&login);
    let user_session = app.open_session(&user);
    let bob = email("bob");
    let bob_registration = app.registered(&bob);
    let bob_user = login_as(app, "user", &bob);
    let reset = app.reset_token(&ann);
    // The forgeries start from tokens that are accepted as they are: re-signing them unchanged
    // gives a token the server takes.
    let resigned = hs256(&Value::Object(claims(&login)));
    assert_eq!(app.refresh(&resigned).status, 200, "a re-signed genuine token is accepted");
    Fixture {
        ann,
        registration,
        login,
        user,
        session,
        user_session,
        bob,
        bob_registration,
        bob_user,
        reset,
        now: now(),
    }
}

fn hostile_requests_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("JWT_LEEWAY", "30s")]) else { return };
    let fx = fixture(&app);
    let port = port(&app);
    let mut t = Table::default();
    body_cases(&mut t, &fx);
    duplicate_key_cases(&mut t, &fx);
    field_cases(&mut t, &fx);
    scope_cases(&mut t, &fx);
    token_cases(&mut t, &fx);
    route_cases(&mut t);
    head_cases(&mut t, &fx);

    let original = fingerprint(&app);
    let mut before = original.clone();
    let mut failures = Vec::new();
    // HOSTILE_LOG=1 prints every exchange (to see what the server answers).
    let log = std::env::var_os("HOSTILE_LOG").is_some();
    for case in &t.cases {
        let exchange = send(port, &case.req);
        let verdict = check(&exchange, &case.expect, &case.more, case.req.is_head());
        if log {
            eprintln!("{} | {}\n    -> {}", case.name, case.req.describe(), exchange.describe());
        }
        if exchange.responses.first().is_some_and(|r| r.status == 201) {
            // reset-password does its work after answering: give it time to show.
            std::thread::sleep(Duration::from_millis(300));
        }
        let after = fingerprint(&app);
        let changed = after != before;
        if verdict.is_err() || changed {
            let mut why = verdict.err().unwrap_or_default();
            if changed {
                why.push_str(if why.is_empty() { "ROWS CHANGED" } else { "; ROWS CHANGED" });
            }
            failures.push(format!(
                "- {}\n    why: {why}\n    expected: {:?} then {:?}\n    request: {}\n    response: {}",
                case.name,
                case.expect,
                case.more,
                case.req.describe(),
                exchange.describe()
            ));
        }
        before = after;
    }
    // Nothing was spoiled, whatever the cases did: no row changed, the account logs in, the
    // session and the customer are there, and the reset token is still live (used last).
    std::thread::sleep(Duration::from_millis(500));
    let mut after: Vec<String> = Vec::new();
    if fingerprint(&app) != original {
        after.push("rows changed over the whole table".into());
    }
    let r = app.login(&fx.ann, PASSWORD);
    if r.status != 200 {
        after.push(format!("ann no longer logs in: {} {}", r.status, r.text));
    }
    let r = app.with_session("POST", REFRESH, &fx.session, Some(""));
    if r.status != 200 {
        after.push(format!("ann's session no longer refreshes: {} {}", r.status, r.text));
    }
    let r = app.request("GET", ME, None, &[("authorization", &format!("Bearer {}", fx.login))]);
    if (r.status, r.text.contains(r#""first_name":"Ann""#)) != (200, true) {
        after.push(format!("ann's customer changed: {} {}", r.status, r.text));
    }
    let r = app.request("GET", ME, None, &[("authorization", &format!("Bearer {}", fx.bob_registration))]);
    if r.status != 401 {
        after.push(format!("bob has a customer: {} {}", r.status, r.text));
    }
    let r = app.update(&fx.reset, &json!({ "password": NEW_PASSWORD }).to_string());
    if (r.status, r.text.as_str()) != (200, r#"{"success":true}"#) {
        after.push(format!("ann's reset token is no longer live: {} {}", r.status, r.text));
    }

    eprintln!("hostile ({backend:?}): {} cases, {} failed", t.cases.len(), failures.len());
    assert!(
        failures.is_empty() && after.is_empty(),
        "{} of {} hostile cases failed:\n{}\nafter the table: {after:?}",
        failures.len(),
        t.cases.len(),
        failures.join("\n")
    );
}

/// Every token response carries `Cache-Control: no-store` (register, login, refresh, session,
/// change-password), and so does every error from a handler.
fn token_responses_are_not_stored(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let ann = email("ann");
    let port = port(&app);
    let register = send(port, &Req::post(REGISTER).json(crate::helpers::credentials(&ann, PASSWORD)));
    check(&register, &Expect::Token, &[], false).unwrap_or_else(|e| panic!("register: {e}: {}", register.describe()));
    let login = send(port, &Req::post(LOGIN).json(crate::helpers::credentials(&ann, PASSWORD)));
    check(&login, &Expect::Token, &[], false).unwrap_or_else(|e| panic!("login: {e}: {}", login.describe()));
    let token =
        serde_json::from_slice::<Value>(&login.responses[0].body).unwrap()["token"].as_str().unwrap().to_string();
    let refresh = send(port, &Req::post(REFRESH).json("").bearer(&token));
    check(&refresh, &Expect::Token, &[], false).unwrap_or_else(|e| panic!("refresh: {e}: {}", refresh.describe()));
    let session = send(port, &Req::post(SESSION).json("").bearer(&token));
    let r = &session.responses[0];
    assert_eq!((r.status, r.header("cache-control")), (200, Some("no-store")), "session: {}", session.describe());
    let body = json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}).to_string();
    let change = send(port, &Req::post(CHANGE).json(body).bearer(&token));
    check(&change, &Expect::Token, &[], false)
        .unwrap_or_else(|e| panic!("change-password: {e}: {}", change.describe()));
    // Responses that carry no secret are not required to say so; errors are.
    let health = send(port, &Req::get(HEALTH));
    check(&health, &Expect::Text(200, "OK"), &[], false).unwrap();
}

/// `exp` and a future `iat` are checked with the leeway (30 s here): inside it a token is
/// accepted, beyond it refused (the table covers beyond; this is the other side).
fn clock_claims_allow_the_leeway_only(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("JWT_LEEWAY", "30s")]) else { return };
    let ann = email("ann");
    let token = app.registered(&ann);
    let good = Value::Object(claims(&token));
    let now = now();
    let slightly_ahead = edit(&good, "iat", Some(json!(now + LEEWAY / 3)));
    let slightly_expired = edit(&good, "exp", Some(json!(now - LEEWAY / 3)));
    assert_eq!(app.refresh(&hs256(&slightly_ahead)).status, 200, "iat inside the leeway");
    assert_eq!(app.refresh(&hs256(&slightly_expired)).status, 200, "exp inside the leeway");
    let not_before_soon = edit(&good, "nbf", Some(json!(now + LEEWAY / 3)));
    assert_eq!(app.refresh(&hs256(&not_before_soon)).status, 200, "nbf inside the leeway");
    let not_before_later = edit(&good, "nbf", Some(json!(now + 2 * LEEWAY)));
    app.refresh(&hs256(&not_before_later)).assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    let far_ahead = edit(&good, "iat", Some(json!(now + 2 * LEEWAY)));
    let expired = edit(&good, "exp", Some(json!(now - 2 * LEEWAY)));
    app.refresh(&hs256(&far_ahead)).assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
    app.refresh(&hs256(&expired)).assert_json(401, json!({"type": "unauthorized", "message": "Unauthorized"}));
}

/// Finding 1 of the hostile review: re-registering an email whose identity has no customer yet
/// proves its password, so it goes through the login throttles. A victim registered (no
/// customer yet); five wrong guesses at `register` then the right one: 429, never a token.
fn register_cannot_guess_passwords_past_the_login_throttles(backend: Backend) {
    let limits = [("RATE_LIMIT_ENABLED", "true"), ("RATE_LIMIT_PER_IP", "1000/1m")];
    let Some(app) = TestApp::spawn_with(backend, &limits) else { return };
    let victim = email("victim");
    app.registered(&victim);
    let exists = json!({"type": "unauthorized", "message": "Identity with email already exists"});
    for guess in 0..5 {
        app.register(&victim, &format!("wrong guess number {guess}")).assert_json(401, exists.clone());
    }
    let before = app.db().fingerprint();
    let r = app.register(&victim, PASSWORD);
    assert_eq!(r.status, 429, "the right password after five wrong ones: {}", r.text);
    assert_eq!(r.json()["type"], "too_many_requests");
    let retry_after: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // The guesses counted as failed logins: login is throttled as well, and nothing changed.
    assert_eq!(app.login(&victim, PASSWORD).status, 429);
    assert_eq!(app.db().fingerprint(), before);
    // Failed logins count against register the same way (another victim).
    let other = email("other");
    app.registered(&other);
    for _ in 0..5 {
        assert_eq!(app.login(&other, "not the password").status, 401);
    }
    assert_eq!(app.register(&other, PASSWORD).status, 429);
}

/// Finding 3: `POST /store/customers` takes the identity's own email only. An attacker's
/// registration token cannot open a customer under the victim's address, and the victim's own
/// registration then creates theirs.
fn a_customer_account_takes_the_identitys_own_email_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let (attacker, victim) = (email("attacker"), email("victim"));
    let attacker_token = app.registered(&attacker);
    let auth = format!("Bearer {attacker_token}");
    let mismatch = json!({"type": "invalid_data",
        "message": "Invalid request: Field 'email' must be the email of the authenticated identity"});
    let before = app.db().fingerprint();
    for address in [victim.clone(), victim.to_uppercase(), format!(" {victim} ")] {
        let body = json!({"email": address, "first_name": "Mallory"}).to_string();
        app.post_with("/store/customers", &body, &[("authorization", &auth)]).assert_json(400, mismatch.clone());
    }
    assert_eq!(app.db().fingerprint(), before);
    assert_eq!(app.db().count("customer"), 0);
    // The victim registers and gets their customer; the attacker gets one under their own address.
    let victim_token = app.registered(&victim);
    let body = json!({"email": victim.to_uppercase()}).to_string();
    let r = app.post_with("/store/customers", &body, &[("authorization", &format!("Bearer {victim_token}"))]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["customer"]["email"], victim.to_uppercase());
    let body = json!({"email": attacker}).to_string();
    assert_eq!(app.post_with("/store/customers", &body, &[("authorization", &auth)]).status, 200);
}

/// Finding 6: a password is hashed in NFKC, so typed in NFC or NFD it is the same password; a
/// hash made on the bytes as typed (before normalisation) still logs in and is replaced.
fn a_password_logs_in_in_any_unicode_normal_form(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let nfc = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e";
    let nfd = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e";
    assert_ne!(nfc.as_bytes(), nfd.as_bytes());
    let (ann, bob) = (email("ann"), email("bob"));
    assert_eq!(app.register(&ann, nfc).status, 200);
    assert_eq!(app.login(&ann, nfd).status, 200, "registered in NFC, typed in NFD");
    assert_eq!(app.register(&bob, nfd).status, 200);
    assert_eq!(app.login(&bob, nfc).status, 200, "registered in NFD, typed in NFC");
    // Full-width letters are the same password too (compatibility forms).
    assert_eq!(app.login(&ann, "\u{ff43}af\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e").status, 200);
    // A hash of the NFD bytes, as made before normalisation: those bytes log in, once that way.
    let legacy = bcrypt::hash(nfd.as_bytes(), 4).unwrap();
    let key = bob.to_lowercase();
    let metadata = json!({ "password": legacy }).to_string();
    app.db()
        .execute(&format!("UPDATE provider_identity SET provider_metadata = '{metadata}' WHERE entity_key = '{key}'"));
    assert_eq!(app.login(&bob, nfc).status, 401, "the bytes hashed were NFD: NFC cannot match them");
    assert_eq!(app.login(&bob, nfd).status, 200);
    let stored =
        app.db().text(&format!("SELECT provider_metadata AS v FROM provider_identity WHERE entity_key = '{key}'"));
    let stored_hash = serde_json::from_str::<Value>(&stored).unwrap()["password"].as_str().unwrap().to_string();
    assert_ne!(stored_hash, legacy, "the legacy hash was replaced");
    assert!(bcrypt::verify(nfc.as_bytes(), &stored_hash).unwrap(), "by a hash of the NFKC form");
    assert_eq!(app.login(&bob, nfc).status, 200, "and now NFC logs in");
}

// ---------------------------------------------------------------------------------------------
// Operational answers (issue 19, finding 2)
// ---------------------------------------------------------------------------------------------

/// The file sink's delivered counter: it moves when a reset names a registered email (an event
/// is delivered) and stays when it names an unknown one (nothing is sent).
const DELIVERED: &str = r#"xclade_auth_event_deliveries_total{sink="file",outcome="delivered"}"#;

/// One answer as a stranger sees it: status, headers but the request id and the date (which
/// differ on every answer, whoever asks), body.
fn seen(ex: &Exchange) -> String {
    let mut out = String::new();
    for r in &ex.responses {
        let mut headers: Vec<String> = r
            .headers
            .iter()
            .filter(|(n, _)| n != "x-request-id" && n != "date")
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        headers.sort();
        let _ = write!(out, "{} [{}] {}", r.status, headers.join(", "), String::from_utf8_lossy(&r.body));
    }
    out
}

/// What anyone who reaches the public port reads of the service's state: the probes, the
/// metrics path, the error bodies of an unknown path and of a wrong method.
fn public_view(port: u16) -> Vec<String> {
    [
        Req::get("/metrics").accept_json(),
        Req::get("/metrics?format=prometheus"),
        Req::get(HEALTH),
        Req::get("/ready"),
        Req::get("/nope").accept_json(),
        Req::post("/metrics").json("{}"),
        Req::post("/ready").json("{}"),
    ]
    .iter()
    .map(|req| format!("{} -> {}", req.describe(), seen(&send(port, req))))
    .collect()
}

fn reset_request(identifier: &str) -> Req {
    Req::post(RESET).json(json!({ "identifier": identifier }).to_string()).header("accept", "text/plain")
}

/// A random loopback address other than 127.0.0.1, where the default admin port 9001 is free
/// whatever else runs on this machine.
fn spare_loopback_address() -> String {
    let bytes = auth_domain::secret::random_hex(3).unwrap();
    let byte = |i: usize| u8::from_str_radix(&bytes[2 * i..2 * i + 2], 16).unwrap();
    format!("127.{}.{}.{}", byte(0).max(1), byte(1), byte(2).clamp(2, 254))
}

/// Issue 19, finding 2: with the defaults, `/metrics` was on the public port, and a reset for a
/// registered email moved `event_deliveries_total{outcome="delivered"}` while one for an
/// unknown email moved nothing, undoing the enumeration-safe 201 of reset-password. Now:
///
/// 1. with the harness's settings (the admin listener on a free port): `GET /metrics` on the
///    public port is the 404 of any unknown path; resets for a registered and for an unknown
///    email get the same answer, and afterwards every operational answer of the public port
///    (probes, `/metrics`, error bodies) is what it was before; the admin listener serves the
///    counter, which did move, for the registered email only;
/// 2. with the admin listener's own defaults (`ADMIN_PORT` unset: port 9001, here on a spare
///    loopback address): the same 404 on the public port, the metrics on port 9001;
/// 3. with the admin listener off and nothing else said: `/metrics` is served nowhere.
fn operational_answers_do_not_tell_whether_an_email_has_an_account(backend: Backend) {
    let Some(app) = TestApp::spawn(backend) else { return };
    let public = port(&app);
    let (ann, stranger) = (email("ann"), email("nobody"));
    app.registered(&ann);
    let not_served = Expect::Error(404, "not_found", Msg::Exact("Cannot GET /metrics".into()));
    let metrics = send(public, &Req::get("/metrics").accept_json());
    check(&metrics, &not_served, &[], false).unwrap_or_else(|e| panic!("GET /metrics: {e}: {}", metrics.describe()));
    let scrape = || {
        let r = app.admin().request("GET", "/metrics", None, &[]);
        assert_eq!(r.status, 200, "the admin listener serves the metrics: {}", r.text);
        metric(&r.text, DELIVERED)
    };
    assert_eq!(scrape(), 0.0);

    let before = public_view(public);
    let known = send(public, &reset_request(&ann));
    check(&known, &Expect::Text(201, "Created"), &[], false).unwrap_or_else(|e| panic!("{e}: {}", known.describe()));
    app.wait_for_events("auth.password_reset", 1);
    eventually("the reset of the registered email is counted as delivered", || scrape() == 1.0);
    let after_known = public_view(public);
    let unknown = send(public, &reset_request(&stranger));
    // reset-password works after answering, and the dispatcher passes every 50 ms: give both
    // time to show anything they would show.
    std::thread::sleep(Duration::from_millis(500));
    let after_unknown = public_view(public);
    assert_eq!(seen(&known), seen(&unknown), "reset-password answers alike");
    assert_eq!(before, after_known, "the public port tells nothing of a reset for a registered email");
    assert_eq!(after_known, after_unknown, "nor of one for an unknown email");
    assert_eq!(scrape(), 1.0, "the counter that would tell moved for the registered email only");
    assert_eq!(app.events().len(), 1, "one reset event: the registered email's");
    drop(app);

    // The admin listener's own defaults: ADMIN_PORT unset (empty counts as unset).
    let host = spare_loopback_address();
    let Some(app) = TestApp::spawn_with(backend, &[("ADMIN_PORT", ""), ("ADMIN_HOST", &host)]) else { return };
    let metrics = send(port(&app), &Req::get("/metrics").accept_json());
    check(&metrics, &not_served, &[], false).unwrap_or_else(|e| panic!("defaults: {e}: {}", metrics.describe()));
    assert_eq!(app.admin().base, format!("http://{host}:9001"), "the default admin port");
    assert_eq!(app.admin().request("GET", "/metrics", None, &[]).status, 200);
    assert_eq!(app.admin().request("GET", "/ready", None, &[]).status, 200);
    drop(app);

    // The admin listener off, METRICS_ON_PUBLIC_PORT not set: no /metrics anywhere.
    let Some(app) = TestApp::spawn_with(backend, &[("ADMIN_PORT", "off")]) else { return };
    assert!(!app.has_admin());
    let metrics = send(port(&app), &Req::get("/metrics").accept_json());
    check(&metrics, &not_served, &[], false).unwrap_or_else(|e| panic!("admin off: {e}: {}", metrics.describe()));
}

/// `METRICS_ON_PUBLIC_PORT=true` puts `/metrics` back on the public port, and with it the
/// counter that tells a registered email from an unknown one: why it is off unless asked for.
fn metrics_on_the_public_port_would_tell_and_are_served_only_when_asked_for(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("METRICS_ON_PUBLIC_PORT", "true")]) else { return };
    let public_scrape = || {
        let r = app.request("GET", "/metrics", None, &[]);
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.content_type.starts_with("application/openmetrics-text"), "{}", r.content_type);
        metric(&r.text, DELIVERED)
    };
    let ann = email("ann");
    app.registered(&ann);
    assert_eq!(public_scrape(), 0.0);
    assert_eq!(app.request_reset(&email("nobody")).status, 201);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(public_scrape(), 0.0, "an unknown email moves nothing");
    assert_eq!(app.request_reset(&ann).status, 201);
    eventually("a registered email moves the public counter", || public_scrape() == 1.0);
    let admin = app.admin().request("GET", "/metrics", None, &[]);
    assert_eq!((admin.status, metric(&admin.text, DELIVERED)), (200, 1.0), "the admin listener serves it too");
    drop(app);

    // With the admin listener off, the setting is the only way to /metrics.
    let Some(app) = TestApp::spawn_with(backend, &[("ADMIN_PORT", "off"), ("METRICS_ON_PUBLIC_PORT", "true")]) else {
        return;
    };
    assert!(!app.has_admin());
    assert_eq!(app.request("GET", "/metrics", None, &[]).status, 200);
}
