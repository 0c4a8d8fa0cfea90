//! The response bodies that several routes share, and their OpenAPI descriptions: the error body
//! (`ErrorBody`) and the reusable error responses (401, 409, 413, 429, 500, 503, and the 404 and 405 of
//! the route table), the token and success bodies. The routes and the document (`openapi`) both
//! import them from here, so imports run one way: routes → responses ← openapi.

use actix_web::http::header;
use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, RefOr, Type};
use utoipa::{ToResponse, ToSchema};

use crate::error::{CONFLICT_MESSAGE, PROVIDER_UNAVAILABLE, UNKNOWN_ERROR};
use crate::settings::MAX_BODY_BYTES;

/// An error. Every error a handler answers has this body, in this key order, except the
/// plain-text form of the negotiated 401 (see `Unauthorized`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// Only on 409 (`unknown_error`), 422 (`invalid_request_error`), 500 (`unknown_error`) and 503
    /// (`api_error`).
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

pub(crate) fn error_content(examples: &[(&str, &str, Value)]) -> utoipa::openapi::Content {
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
        let message = format!("The request body is larger than {} bytes", MAX_BODY_BYTES);
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
                        json!({"code": "unknown_error", "type": "conflict", "message": CONFLICT_MESSAGE}),
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
                .description("Something unexpected happened (logged once with its cause).")
                .content(
                    "application/json",
                    error_content(&[(
                        "unknown",
                        "Anything unexpected",
                        json!({"code": "unknown_error", "type": "unknown_error", "message": UNKNOWN_ERROR}),
                    )]),
                )
                .build()
                .into(),
        )
    }
}

/// The 502 of starting a sign-in with an OpenID Connect provider whose discovery document could
/// not be had (the provider down or unreachable, or answering an error): nothing was stored.
pub(crate) struct ProviderUnavailable;

impl<'r> ToResponse<'r> for ProviderUnavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "ProviderUnavailable",
            ResponseBuilder::new()
                .description(
                    "`google`, `oidc`: the provider's discovery document could not be had (the provider down, \
                     unreachable, or answering an error). Nothing was stored; the sign-in may be started again. \
                     Logged once with its cause.",
                )
                .content(
                    "application/json",
                    error_content(&[(
                        "provider",
                        "Provider unavailable",
                        json!({"type": "provider_unavailable", "message": PROVIDER_UNAVAILABLE}),
                    )]),
                )
                .build()
                .into(),
        )
    }
}

/// The database is unreachable or failing: the 503 that every operation with a 500 may also
/// answer (added to each by `openapi.rs`'s `CommonErrors`).
pub(crate) struct DatabaseUnavailable;

impl<'r> ToResponse<'r> for DatabaseUnavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "DatabaseUnavailable",
            ResponseBuilder::new()
                .description(
                    "The database is unreachable or failing (PostgreSQL restarting, a full disk under SQLite). \
                     The request may be retried; only when the connection broke while a write was committing \
                     may that write have happened. Logged once with its cause.",
                )
                .content(
                    "application/json",
                    error_content(&[(
                        "database",
                        "Database unavailable",
                        json!({"code": "api_error", "type": "database_error", "message": "The database is unavailable."}),
                    )]),
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

/// An auth token.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    /// A JWT (HS256) whose claims are those of `POST /auth/session`'s `user`.
    #[schema(example = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhY3Rvcl9pZCI6IiJ9.c2lnbmF0dXJl")]
    token: String,
}

/// `{"token": ...}`, never cached.
pub(crate) fn token_response(token: String) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(TokenResponse { token })
}

/// Where to send the browser to sign in with another provider.
#[derive(Serialize, ToSchema)]
pub(crate) struct LocationResponse {
    /// The provider's authorization URL, with `state`, PKCE `code_challenge` (S256) and, for
    /// OpenID Connect, `nonce`. Valid for 10 minutes, once.
    #[schema(example = "https://accounts.google.com/o/oauth2/v2/auth?response_type=code&client_id=...&state=...")]
    location: String,
}

/// `{"location": ...}`, never cached (its `state` is single use).
pub(crate) fn location_response(location: String) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(LocationResponse { location })
}

/// The answer of login: a token (`emailpass`) or a location (the other providers).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum LoginResponse {
    Token(TokenResponse),
    Location(LocationResponse),
}

/// `{"success": true}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct SuccessResponse {
    /// Always `true`.
    #[schema(example = true)]
    success: bool,
}

pub(crate) fn success_response() -> HttpResponse {
    HttpResponse::Ok().json(SuccessResponse { success: true })
}
