//! `/auth/session` (cookie sessions) and `/auth/logout-all`.

use actix_web::cookie::Cookie;
use actix_web::{web, HttpResponse};
use serde_json::json;

use auth_domain::AuthError;

use crate::credentials::Presented;
use crate::{ApiError, AppState};

fn with_cookie(mut response: HttpResponse, cookie: &Cookie<'_>) -> Result<HttpResponse, ApiError> {
    response.add_cookie(cookie).map_err(|e| AuthError::unexpected("setting a cookie", e))?;
    Ok(response)
}

/// `POST /auth/session`: the bearer token (only) opens a session; a live session cookie on the
/// same request is replaced.
pub(crate) async fn create(state: web::Data<AppState>, presented: Presented) -> Result<HttpResponse, ApiError> {
    let token = presented.require_bearer()?;
    let replaces = presented.session;
    let (session_id, claims) = state.blocking(move |svc| svc.open_session(&token, replaces.as_deref())).await?;
    let response = HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(json!({ "user": claims }));
    with_cookie(response, &state.settings.cookie.session(session_id))
}

/// `DELETE /auth/session`: ends the session of the cookie (only), and clears the cookie.
pub(crate) async fn delete(state: web::Data<AppState>, presented: Presented) -> Result<HttpResponse, ApiError> {
    let session = presented.require_session()?;
    state.blocking(move |svc| svc.close_session(&session)).await?;
    with_cookie(HttpResponse::Ok().json(json!({ "success": true })), &state.settings.cookie.removal())
}

/// `POST /auth/logout-all` (Xclade extension): revokes every token and session of the caller.
pub(crate) async fn logout_all(state: web::Data<AppState>, presented: Presented) -> Result<HttpResponse, ApiError> {
    state.as_caller(presented, |svc, caller| svc.logout_all(caller)).await?;
    with_cookie(HttpResponse::Ok().json(json!({ "success": true })), &state.settings.cookie.removal())
}
