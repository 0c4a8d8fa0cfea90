//! The one mapping of errors to HTTP (design §3.3), and the negotiated 401 (§3.4).

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use auth_domain::AuthError;

use crate::settings::MAX_BODY_BYTES;

pub const UNKNOWN_ERROR: &str = "An unknown error occurred.";
pub const PROVIDER_UNAVAILABLE: &str = "The sign-in provider cannot be reached. Try again later.";
pub const CONFLICT_MESSAGE: &str = "The request conflicted with another request. You may retry the request.";

/// An error as the client sees it: status, `type`, optional `code`, `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    /// A guarded route's 401: text/plain `Unauthorized` unless the client accepts JSON.
    negotiated: bool,
    /// Seconds for `Retry-After` (429).
    retry_after: Option<u64>,
    /// Which rate limit answered 429 (for metrics).
    limit: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            code: None,
            message: message.into(),
            negotiated: false,
            retry_after: None,
            limit: None,
        }
    }

    pub fn invalid_data(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_data", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "not_allowed", message)
    }

    pub fn payload_too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than {} bytes", MAX_BODY_BYTES),
        )
    }

    /// The body did not arrive within `HTTP_BODY_TIMEOUT` (a slow or stalled client).
    pub fn request_timeout(limit: std::time::Duration) -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("The request body did not arrive within {} ms", limit.as_millis()),
        )
    }

    /// On `/update`, the JSON form of the 401 says "Invalid token" (as Medusa).
    pub fn on_reset_route(mut self) -> ApiError {
        if self.negotiated {
            self.message = "Invalid token".into();
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The rate limit that refused the request, on a 429.
    pub fn limit(&self) -> Option<&'static str> {
        self.limit
    }

    pub(crate) fn json_body(&self) -> Value {
        let mut body = Map::new();
        if let Some(code) = self.code {
            body.insert("code".into(), code.into());
        }
        body.insert("type".into(), self.kind.into());
        body.insert("message".into(), self.message.clone().into());
        Value::Object(body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.kind, self.message)
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> ApiError {
        match err {
            AuthError::InvalidData(m) => ApiError::invalid_data(m),
            AuthError::NotAllowed(m) => ApiError::new(StatusCode::BAD_REQUEST, "not_allowed", m),
            AuthError::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m),
            AuthError::Unauthenticated(reason) => {
                log::debug!("credential refused: {reason:?}");
                ApiError { negotiated: true, ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized") }
            }
            AuthError::NotFound(m) => ApiError::not_found(m),
            AuthError::Duplicate(m) => ApiError {
                code: Some("invalid_request_error"),
                ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "duplicate_error", m)
            },
            AuthError::TooManyRequests { limit, retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                limit: Some(limit),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    format!("Too many requests. Retry after {retry_after_secs} seconds."),
                )
            },
            AuthError::Conflict => ApiError {
                code: Some("unknown_error"),
                ..ApiError::new(StatusCode::CONFLICT, "conflict", CONFLICT_MESSAGE)
            },
            err @ AuthError::Database(_) => {
                log::error!("{}", cause_chain(&err));
                ApiError {
                    code: Some("api_error"),
                    ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_error", "The database is unavailable.")
                }
            }
            err @ AuthError::ProviderUnavailable(_) => {
                log::error!("{}", cause_chain(&err));
                ApiError::new(StatusCode::BAD_GATEWAY, "provider_unavailable", PROVIDER_UNAVAILABLE)
            }
            err @ AuthError::Unexpected(_) => {
                log::error!("{}", cause_chain(&err));
                ApiError {
                    code: Some("unknown_error"),
                    ..ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "unknown_error", UNKNOWN_ERROR)
                }
            }
        }
    }
}

/// `err: cause: cause ...`, for the one log line of an unexpected error.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come: say so and close (RFC 9110 §15.5.9), rather
            // than leave the connection to actix's handling of an unread payload.
            response.force_close();
        }
        if self.negotiated {
            // Made JSON by `negotiate_unauthorized` when the client accepts it.
            response.content_type(ContentType::plaintext()).body("Unauthorized")
        } else {
            response.json(self.json_body())
        }
    }
}

/// Whether the client explicitly accepts `application/json` (a wildcard does not count).
pub fn accepts_json(req: &HttpRequest) -> bool {
    req.headers().get_all(header::ACCEPT).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
        });
        media.eq_ignore_ascii_case("application/json") && !refused
    })
}

/// Middleware hook for 401 responses: a guarded route's plain-text 401 becomes
/// `{"type":"unauthorized","message":...}` when the client accepts JSON.
pub(crate) fn negotiate_unauthorized<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let json = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .filter(|e| e.negotiated && accepts_json(res.request()))
        .map(|e| json!({ "type": "unauthorized", "message": e.message }));
    let Some(json) = json else {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    };
    let (req, original) = res.into_parts();
    let mut response = HttpResponse::Unauthorized().json(json);
    // Keep what the layers inside added (CORS, cache control): only the body changes.
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response).map_into_right_body()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn maps_each_error_as_the_contract_says() {
        let cases: Vec<(AuthError, u16, Value)> = vec![
            (AuthError::InvalidData("x".into()), 400, json!({"type":"invalid_data","message":"x"})),
            (AuthError::NotAllowed("x".into()), 400, json!({"type":"not_allowed","message":"x"})),
            (AuthError::Unauthorized("x".into()), 401, json!({"type":"unauthorized","message":"x"})),
            (AuthError::NotFound("x".into()), 404, json!({"type":"not_found","message":"x"})),
            (AuthError::Conflict, 409, json!({"code":"unknown_error","type":"conflict","message":CONFLICT_MESSAGE})),
            (
                AuthError::TooManyRequests { limit: "client", retry_after_secs: 7 },
                429,
                json!({"type":"too_many_requests","message":"Too many requests. Retry after 7 seconds."}),
            ),
            (
                AuthError::Duplicate("x".into()),
                422,
                json!({"code":"invalid_request_error","type":"duplicate_error","message":"x"}),
            ),
            (
                AuthError::database(std::io::Error::other("down")),
                503,
                json!({"code":"api_error","type":"database_error","message":"The database is unavailable."}),
            ),
            (
                AuthError::ProviderUnavailable("discovery of https://idp.test: connection refused".into()),
                502,
                json!({"type":"provider_unavailable","message":PROVIDER_UNAVAILABLE}),
            ),
            (
                AuthError::Unexpected("boom".into()),
                500,
                json!({"code":"unknown_error","type":"unknown_error","message":UNKNOWN_ERROR}),
            ),
        ];
        for (err, status, body) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.status().as_u16(), status);
            assert_eq!(api.json_body(), body);
            // The order of the keys: code, type, message.
            assert_eq!(serde_json::to_string(&api.json_body()).unwrap(), body.to_string());
        }
    }

    #[test]
    fn only_an_explicit_json_accept_counts() {
        let accepts =
            |v: &str| accepts_json(&TestRequest::default().insert_header((header::ACCEPT, v)).to_http_request());
        assert!(accepts("application/json"));
        assert!(accepts("text/html, Application/JSON;q=0.5"));
        assert!(!accepts("*/*"));
        assert!(!accepts("text/plain"));
        assert!(!accepts("application/json;q=0"));
        assert!(!accepts_json(&TestRequest::default().to_http_request()));
    }
}
