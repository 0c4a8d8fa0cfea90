//! `/auth/session` (cookie sessions) and `/auth/logout-all`.

use actix_web::cookie::Cookie;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use utoipa::ToSchema;

use auth_domain::AuthError;

use crate::credentials::Presented;
use crate::responses::{success_response, Conflict, ServerError, SuccessResponse, Unauthorized};
use crate::{ApiError, AppState};

/// The answer of `POST /auth/session`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct SessionResponse {
    user: TokenClaims,
}

/// The verified claims of an auth token: Medusa's, in Medusa's order, then Xclade's `stamp`,
/// `tenant` and `iss`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TokenClaims {
    /// The actor's id (`app_metadata.<actor_type>_id`); `""` when there is none (a registration token).
    #[schema(example = "cus_01JDX3Q9R5V7ZJ8Y2N4M6K0P1T")]
    actor_id: String,
    /// The route's `{actor}` when the token was issued.
    #[schema(example = "customer")]
    actor_type: String,
    #[schema(example = "authid_01JDX3PZ8W2C4E6G8J0L2N4Q6S")]
    auth_identity_id: String,
    #[schema(example = "emailpass")]
    auth_provider: String,
    /// Always `false`.
    mfa_enabled: bool,
    /// Always `null`.
    #[schema(value_type = Option<String>, required = true)]
    mfa_challenge_completed_at: Option<String>,
    #[schema(value_type = Object)]
    app_metadata: (),
    #[schema(value_type = Object)]
    user_metadata: (),
    /// Issued at (seconds since the epoch).
    #[schema(example = 1764264000)]
    iat: i64,
    /// Expires at (seconds since the epoch): `iat` + `JWT_EXPIRES_IN`.
    #[schema(example = 1764350400)]
    exp: i64,
    /// The identity's security stamp when the token was issued (32 hex digits).
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015")]
    stamp: String,
    #[schema(example = "default")]
    tenant: String,
    /// The issuer: the tenant's base URL (`PUBLIC_URL`).
    #[schema(example = "https://acme.api.myxclade.com")]
    iss: Option<String>,
}

fn with_cookie(mut response: HttpResponse, cookie: &Cookie<'_>) -> Result<HttpResponse, ApiError> {
    response.add_cookie(cookie).map_err(|e| AuthError::unexpected("setting a cookie", e))?;
    Ok(response)
}

/// Open a session
///
/// The bearer token (only; registration tokens too) opens a cookie session: `connect.sid`,
/// HttpOnly, for `SESSION_TTL` (default 10 h; use does not extend it). A live session whose
/// cookie the request also carried (with a JSON `Content-Type`) is ended in the same transaction.
/// The body is not read.
#[utoipa::path(
    post,
    path = "/auth/session",
    operation_id = "create_session",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's claims.", body = SessionResponse,
            headers(
                ("Set-Cookie" = String, description = "`connect.sid=<64 hex>; HttpOnly; SameSite=Lax; Path=/; \
                    Max-Age=36000; Expires=…` (`Secure` and `SameSite` per `COOKIE_SECURE`, `COOKIE_SAMESITE`)."),
                ("Cache-Control" = String, description = "`no-store`."),
            )),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    let token = presented.require_bearer()?;
    let replaces = presented.session;
    let (session_id, claims) = state.blocking(move |svc| svc.open_session(&ctx, &token, replaces.as_ref())).await?;
    let response = HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(json!({ "user": claims }));
    with_cookie(response, &state.settings.cookie.session(session_id.into_exposed()))
}

/// End the session
///
/// Ends the session of the cookie (only; an `Authorization` header is ignored), expired or not,
/// and clears the cookie. The request needs `Content-Type: application/json` for the cookie to
/// count. Tokens are not revoked (logout-all does that). The body is not read.
#[utoipa::path(
    delete,
    path = "/auth/session",
    operation_id = "delete_session",
    tag = "session",
    security(("session" = [])),
    responses(
        (status = 200, description = "The session is ended.", body = SuccessResponse,
            headers(("Set-Cookie" = String, description = "The clearing cookie: `connect.sid=; …; Max-Age=0; Expires=<past>`."))),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    let session = presented.require_session()?;
    state.blocking(move |svc| svc.close_session(&ctx, &session)).await?;
    with_cookie(success_response(), &state.settings.cookie.removal())
}

/// Log out everywhere (Xclade extension)
///
/// Changes the caller's security stamp and ends all of its sessions and its pending reset token,
/// in one transaction: every auth token issued before (this one included) is refused from then
/// on. Session first, then bearer. Clears the cookie for every caller. The body is not read.
#[utoipa::path(
    post,
    path = "/auth/logout-all",
    operation_id = "logout_all",
    tag = "session",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Every token and session of the identity is revoked.", body = SuccessResponse,
            headers(("Set-Cookie" = String, description = "The clearing cookie: `connect.sid=; …; Max-Age=0; Expires=<past>`."))),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn logout_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    state.as_caller(ctx, presented, |svc, ctx, caller| svc.logout_all(ctx, caller)).await?;
    with_cookie(success_response(), &state.settings.cookie.removal())
}
