//! The OpenAPI 3.1 document of the API (`GET /openapi.json`), generated from the code: each
//! handler's `#[utoipa::path]` attribute and the schema types beside it (`routes/*.rs`), the error
//! format and the reusable error responses (here), and two rules applied to every operation
//! (`CommonErrors`): the 400s that the body parser and the `{actor}`/`{provider}` check give, and
//! `Cache-Control: no-store` on every error.
//!
//! `docs/openapi.json` is a snapshot of this document; the test below fails when they differ
//! (`UPDATE_SNAPSHOTS=1 cargo test -p auth-http` rewrites it).

use std::sync::OnceLock;

use serde_json::{json, Value};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, RefOr, Type};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

use crate::routes;
use crate::settings::SESSION_COOKIE;

/// The document as served: pretty JSON with a final newline (the snapshot's bytes).
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let value = document();
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
    })
}

/// The methods a path template of the document serves (`"GET, POST"`), for the `Allow` header
/// of a 405: the document is the one list of what each path answers.
pub(crate) fn allowed_methods(path: &str) -> Option<&'static str> {
    static ALLOWED: OnceLock<std::collections::HashMap<String, String>> = OnceLock::new();
    let allowed = ALLOWED.get_or_init(|| {
        let document = document();
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        paths
            .into_iter()
            .map(|(path, item)| {
                let methods: Vec<String> = item
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                (path, methods.join(", "))
            })
            .collect()
    });
    allowed.get(path).map(String::as_str)
}

/// The document as a JSON value.
pub fn document() -> Value {
    let mut value = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    require_documented_headers(&mut value);
    value
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Xclade Auth",
        description = include_str!("openapi.md"),
        license(name = "UNLICENSED"),
    ),
    paths(
        routes::auth::register,
        routes::auth::login,
        routes::auth::reset_password,
        routes::auth::update,
        routes::auth::change_password,
        routes::auth::callback,
        routes::auth::callback_post,
        routes::auth::providers,
        routes::auth::refresh,
        routes::session::create,
        routes::session::delete,
        routes::session::logout_all,
        routes::store::create_customer,
        routes::store::retrieve_me,
        routes::store::update_me,
        routes::health::health,
        routes::health::ready,
        crate::metrics::scrape,
        routes::docs::openapi_json,
        routes::docs::docs_page,
        routes::docs::docs_bundle,
        routes::docs::docs_style,
        routes::docs::docs_initializer,
    ),
    components(
        schemas(ErrorBody),
        responses(Unauthorized, PayloadTooLarge, Conflict, TooManyRequests, ServerError, NotFound, MethodNotAllowed),
    ),
    modifiers(&SecuritySchemes, &CommonErrors),
    tags(
        (name = "auth", description = "Credentials: register, log in, reset and change a password. \
            `{actor}` is one of `ACTOR_TYPES` (default `customer`, `user`), `{provider}` is `emailpass`."),
        (name = "session", description = "Tokens and cookie sessions: refresh, open and end a session, log out everywhere."),
        (name = "store", description = "The storefront customer of the caller (actor type `customer`)."),
        (name = "operations", description = "Probes for load balancers and orchestrators, on this port and on the \
            admin listener (`ADMIN_HOST:ADMIN_PORT`, loopback port 9001 by default); the metrics, on the admin \
            listener only unless `METRICS_ON_PUBLIC_PORT=true`."),
        (name = "reference", description = "This document and its human-readable rendering."),
    )
)]
struct ApiDoc;

/// An error. Every error a handler answers has this body, in this key order, except the
/// plain-text form of the negotiated 401 (see `Unauthorized`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// Only on 409 (`unknown_error`), 422 (`invalid_request_error`) and 500 (`api_error`,
    /// `unknown_error`).
    #[schema(nullable = false)]
    code: Option<ErrorCode>,
    /// What went wrong, by kind.
    #[serde(rename = "type")]
    kind: ErrorType,
    /// For people; the wording is Medusa's where Medusa has one.
    message: String,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum ErrorType {
    InvalidData,
    NotAllowed,
    Unauthorized,
    NotFound,
    Conflict,
    PayloadTooLarge,
    DuplicateError,
    TooManyRequests,
    DatabaseError,
    UnknownError,
    /// `GET /ready`'s 503.
    Unavailable,
}

#[derive(ToSchema)]
#[allow(dead_code)]
enum ErrorCode {
    #[serde(rename = "unknown_error")]
    Unknown,
    #[serde(rename = "invalid_request_error")]
    InvalidRequest,
    #[serde(rename = "api_error")]
    Api,
}

/// `{"type": kind, "message": message}`, for examples.
pub(crate) fn error_example(kind: &str, message: &str) -> Value {
    json!({ "type": kind, "message": message })
}

fn error_content(examples: &[(&str, &str, Value)]) -> utoipa::openapi::Content {
    let content = ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))));
    match examples {
        [(_, _, only)] => content.example(Some(only.clone())).build(),
        _ => content
            .examples_from_iter(examples.iter().map(|(name, summary, value)| {
                (*name, ExampleBuilder::new().summary(*summary).value(Some(value.clone())).build())
            }))
            .build(),
    }
}

fn plain_text(example: &str) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).enum_values(Some([example])).build()))
        .example(Some(Value::from(example)))
        .build()
}

/// The 401 of a refused token or session (design §3.4): JSON when the request's `Accept` lists
/// `application/json` (q > 0), otherwise `text/plain` `Unauthorized`. Same answer for every
/// reason (missing, malformed, expired, revoked, wrong kind).
pub(crate) struct Unauthorized;

/// The negotiated 401 with `message` as its JSON form's message.
pub(crate) fn negotiated_unauthorized(description: &str, message: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            error_content(&[("json", "Accept lists application/json", error_example("unauthorized", message))]),
        )
        .content("text/plain", plain_text("Unauthorized"))
        .build()
}

impl<'r> ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "Unauthorized",
            negotiated_unauthorized(
                "No credentials, or refused ones (malformed, badly signed, expired, revoked by a stamp change, \
                 unknown or ended session, another tenant or actor type). JSON when the request's `Accept` lists \
                 `application/json` with q > 0; otherwise `text/plain` `Unauthorized`.",
                "Unauthorized",
            )
            .into(),
        )
    }
}

pub(crate) struct PayloadTooLarge;

impl<'r> ToResponse<'r> for PayloadTooLarge {
    fn response() -> (&'r str, RefOr<Response>) {
        let message = format!("The request body is larger than {} bytes", crate::MAX_BODY_BYTES);
        (
            "PayloadTooLarge",
            ResponseBuilder::new()
                .description("The body is larger than 65536 bytes.")
                .content(
                    "application/json",
                    error_content(&[("too_large", "", error_example("payload_too_large", &message))]),
                )
                .build()
                .into(),
        )
    }
}

pub(crate) struct Conflict;

impl<'r> ToResponse<'r> for Conflict {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "Conflict",
            ResponseBuilder::new()
                .description(
                    "A PostgreSQL serialization failure that survived 3 attempts: the request conflicted with a \
                     concurrent one and changed nothing. It may be retried.",
                )
                .content(
                    "application/json",
                    error_content(&[(
                        "conflict",
                        "",
                        json!({"code": "unknown_error", "type": "conflict", "message": crate::error::CONFLICT_MESSAGE}),
                    )]),
                )
                .build()
                .into(),
        )
    }
}

pub(crate) struct TooManyRequests;

impl<'r> ToResponse<'r> for TooManyRequests {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "TooManyRequests",
            ResponseBuilder::new()
                .description(
                    "A limit is spent (`RATE_LIMIT_PER_IP`, shared by register, login, reset-password, update and \
                     change-password; on login also `LOGIN_FAILURE_LIMIT` and `LOGIN_FAILURE_LIMIT_ACCOUNT`). \
                     Nothing happened.",
                )
                .header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build())
                        .description(Some("Whole seconds until the limit lets one more request through (at least 1)."))
                        .build(),
                )
                .content(
                    "application/json",
                    error_content(&[(
                        "too_many",
                        "",
                        error_example("too_many_requests", "Too many requests. Retry after 12 seconds."),
                    )]),
                )
                .build()
                .into(),
        )
    }
}

pub(crate) struct ServerError;

impl<'r> ToResponse<'r> for ServerError {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "ServerError",
            ResponseBuilder::new()
                .description("The database is unreachable or failing, or something unexpected happened (logged once with its cause).")
                .content(
                    "application/json",
                    error_content(&[
                        (
                            "database",
                            "Database unavailable",
                            json!({"code": "api_error", "type": "database_error", "message": "The database is unavailable."}),
                        ),
                        (
                            "unknown",
                            "Anything else",
                            json!({"code": "unknown_error", "type": "unknown_error", "message": crate::error::UNKNOWN_ERROR}),
                        ),
                    ]),
                )
                .build()
                .into(),
        )
    }
}

/// Any path the server does not serve (not referenced by an operation: it is every other path).
pub(crate) struct NotFound;

impl<'r> ToResponse<'r> for NotFound {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "NotFound",
            ResponseBuilder::new()
                .description("The answer to any path not in this document.")
                .content(
                    "application/json",
                    error_content(&[("unknown_path", "", error_example("not_found", "Cannot GET /nope"))]),
                )
                .build()
                .into(),
        )
    }
}

/// A path of this document with a method it does not list (not referenced by an operation).
pub(crate) struct MethodNotAllowed;

impl<'r> ToResponse<'r> for MethodNotAllowed {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "MethodNotAllowed",
            ResponseBuilder::new()
                .description(
                    "The answer to a path of this document with a method it does not list (`HEAD` included, and \
                     `OPTIONS` unless it is a CORS preflight on `/auth` or `/store`).",
                )
                .header(
                    "Allow",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String).build())
                        .description(Some("The methods the path serves, e.g. `POST` or `GET, POST`."))
                        .build(),
                )
                .content(
                    "application/json",
                    error_content(&[(
                        "other_method",
                        "",
                        error_example("not_allowed", "Method GET is not allowed on /auth/customer/emailpass"),
                    )]),
                )
                .build()
                .into(),
        )
    }
}

/// `bearer` (auth token), `resetToken` (reset token) and `session` (the `connect.sid` cookie).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else { return };
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An auth token from register, login, refresh or change-password: `Authorization: Bearer \
                         <token>` (the scheme in any case). HS256; refused once the identity's security stamp \
                         changed (password reset, change-password, logout-all).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "resetToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A reset token, carried by the `auth.password_reset` event (the reset link): 15 minutes, \
                         single use, only on the `{actor}`/`{provider}` it was issued for. Never an auth token.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie set by `POST /auth/session` (HttpOnly, 64 hex digits). On a `POST` or \
                 `DELETE` it counts only when the request's `Content-Type` is `application/json` (CSRF); \
                 `GET /store/customers/me` takes it whatever the type. Tried before a bearer token.",
            ))),
        );
    }
}

/// Rules that hold for every operation, applied to the document so that no handler can forget
/// them: the 400s of the body parser (`body.rs`) on operations with a body, the 400s of the
/// `{actor}`/`{provider}` check on operations with those parameters, `Cache-Control: no-store`
/// on every error (`error.rs`), and `x-request-id` on every response (`request_id.rs`).
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::HttpMethod;
        for (path, item) in openapi.paths.paths.iter_mut() {
            for method in [HttpMethod::Get, HttpMethod::Post, HttpMethod::Delete] {
                let operation = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Delete => item.delete.as_mut(),
                    _ => None,
                };
                let Some(operation) = operation else { continue };
                let mut examples: Vec<(&str, &str, Value)> = Vec::new();
                if operation.request_body.is_some() {
                    examples.extend(crate::body::error_examples());
                }
                if path.contains("{actor}") {
                    examples.push((
                        "unknown_actor",
                        "{actor} is not one of ACTOR_TYPES",
                        error_example("not_allowed", "Unknown actor type: admin"),
                    ));
                }
                if path.contains("{provider}") {
                    examples.push((
                        "unknown_provider",
                        "{provider} is not emailpass",
                        error_example("not_allowed", "Unknown auth provider: google"),
                    ));
                }
                let responses = &mut operation.responses.responses;
                if !examples.is_empty() {
                    let entry = responses.entry("400".to_string()).or_insert_with(|| {
                        ResponseBuilder::new().description("The request is refused; nothing changed.").build().into()
                    });
                    if let RefOr::T(response) = entry {
                        add_examples(response, examples);
                    }
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else { continue };
                    let error = status.starts_with('4') || status.starts_with('5');
                    if error && response.content.contains_key("application/json") {
                        response.headers.insert("Cache-Control".into(), no_store());
                    }
                    response.headers.insert("x-request-id".into(), request_id());
                }
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            for response in components.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.headers.insert("Cache-Control".into(), no_store());
                    response.headers.insert("x-request-id".into(), request_id());
                }
            }
        }
    }
}

fn request_id() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(128)).build())
        .description(Some(
            "The request's id: the request's own `x-request-id` when it is 1 to 128 characters of \
             `A-Z a-z 0-9 - _ . : / + =`, a generated one otherwise. Every log line of the request carries it.",
        ))
        .build()
}

fn no_store() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["no-store"])).build())
        .description(Some("Errors are never cached."))
        .build()
}

/// Adds named examples to the JSON content of `response` (creating it with the error schema). A
/// single example already there becomes the named example `route`, summarised by the response's
/// description.
fn add_examples(response: &mut Response, examples: Vec<(&str, &str, Value)>) {
    let summary = response.description.clone();
    let content = response.content.entry("application/json".into()).or_insert_with(|| error_content(&[]));
    if let Some(single) = content.example.take() {
        let example = ExampleBuilder::new().summary(summary).value(Some(single)).build();
        content.examples.insert("route".into(), example.into());
    }
    for (name, summary, value) in examples {
        content.examples.insert(name.into(), ExampleBuilder::new().summary(summary).value(Some(value)).build().into());
    }
}

/// Every header this document lists on a response is sent on every such response: mark them
/// `required` (utoipa's header object has no such field), so clients and checkers can rely on them.
fn require_documented_headers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(headers)) = map.get_mut("headers") {
                for header in headers.values_mut() {
                    if let Value::Object(header) = header {
                        if header.contains_key("schema") {
                            header.insert("required".into(), Value::Bool(true));
                        }
                    }
                }
            }
            map.values_mut().for_each(require_documented_headers);
        }
        Value::Array(items) => items.iter_mut().for_each(require_documented_headers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = document_json();
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(SNAPSHOT, generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
        if committed != generated {
            let line = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| committed.lines().count().min(generated.lines().count()) + 1, |i| i + 1);
            let show = |text: &str| text.lines().nth(line - 1).unwrap_or("<end of file>").to_string();
            panic!(
                "docs/openapi.json is not the document the code generates (first difference at line {line}:\n  \
                 committed: {}\n  generated: {}\n). If the change is intended, update the snapshot with \
                 `UPDATE_SNAPSHOTS=1 cargo test -p auth-http` and commit docs/openapi.json.",
                show(&committed),
                show(generated)
            );
        }
    }

    /// Every error (status >= 400) has a body with a schema and an example, for each content type.
    fn assert_error_examples(place: &str, response: &Value) {
        let content = response["content"].as_object().unwrap_or_else(|| panic!("{place}: no content"));
        for (media, content) in content {
            assert!(content.get("schema").is_some(), "{place} {media}: no schema");
            assert!(
                content.get("example").is_some() || content.get("examples").is_some(),
                "{place} {media}: no example"
            );
        }
    }

    #[test]
    fn every_operation_has_an_id_a_tag_and_examples_for_its_errors() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(ids.insert(id.to_string()), "{method} {path}: operationId {id} twice");
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path}: no tag");
                for (status, response) in op["responses"].as_object().unwrap() {
                    let place = format!("{method} {path} {status}");
                    match response["$ref"].as_str() {
                        Some(target) => {
                            let name = target.trim_start_matches("#/components/responses/");
                            assert!(doc["components"]["responses"].get(name).is_some(), "{place}: {target} is missing");
                        }
                        None if status.as_str() >= "400" => assert_error_examples(&place, response),
                        None => assert!(response["content"].is_object(), "{place}: no content"),
                    }
                }
            }
        }
        for (name, response) in doc["components"]["responses"].as_object().unwrap() {
            assert_error_examples(name, response);
        }
    }

    #[test]
    fn the_429_requires_retry_after() {
        let doc = document();
        let header = &doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"];
        assert_eq!(header["required"], true);
        assert_eq!(header["schema"]["type"], "integer");
    }
}
