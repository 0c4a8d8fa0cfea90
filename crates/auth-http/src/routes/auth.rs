//! `/auth/...`: register, login, reset-password, update, callback, providers, token refresh.

use actix_web::http::header::{self, ContentType};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use auth_domain::service::Scope as DomainScope;
use auth_domain::AuthError;

use crate::body::{Fields, JsonBody};
use crate::client::client_key;
use crate::credentials::Presented;
use crate::{ApiError, AppService, AppState};

type Scope = web::Path<(String, String)>;

/// `{"token": ...}`, never cached.
pub(crate) fn token_response(token: String) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({ "token": token }))
}

/// Register and login: the same body (`email`, `password`, other fields ignored), a use case
/// that hashes, and a token in answer. The last argument is the client's rate-limit key.
type CredentialUseCase = fn(&AppService, &DomainScope, &str, String, &str) -> Result<String, AuthError>;

async fn with_credentials(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: Scope,
    body: JsonBody,
    use_case: CredentialUseCase,
) -> Result<HttpResponse, ApiError> {
    let (actor, provider) = path.into_inner();
    let scope = state.service.scope(&actor, &provider)?;
    let mut fields = Fields::of(&body);
    let email = fields.string("email");
    let password = fields.string("password");
    fields.finish()?;
    let client = client_key(&req, &state.settings.trusted_proxies);
    // The budget first: a request over it never waits for a hashing permit.
    let admitted = client.clone();
    state.blocking(move |svc| svc.admit(&admitted)).await?;
    let token = state.hashing(move |svc| use_case(svc, &scope, &email, password, &client)).await?;
    Ok(token_response(token))
}

pub(crate) async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: Scope,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    with_credentials(state, req, path, body, |svc, scope, email, password, _client| {
        svc.register(scope, email, password)
    })
    .await
}

pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: Scope,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    with_credentials(state, req, path, body, |svc, scope, email, password, client| {
        svc.login(scope, email, password, client)
    })
    .await
}

pub(crate) async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: Scope,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (actor, provider) = path.into_inner();
    let scope = state.service.scope(&actor, &provider)?;
    let mut fields = Fields::of(&body);
    let identifier = fields.string("identifier");
    let metadata = fields.optional_object("metadata").unwrap_or_default();
    fields.finish_strict(&["identifier", "metadata"])?;
    let client = client_key(&req, &state.settings.trusted_proxies);
    state.blocking(move |svc| svc.admit(&client)).await?;
    // The work for a known account (token, event) leaves the request path: the answer costs the
    // same for known and unknown identifiers. A failure there is logged, never shown.
    let background = state.clone();
    actix_web::rt::spawn(async move {
        let _ = background.blocking(move |svc| svc.request_password_reset(&scope, &identifier, metadata)).await;
    });
    Ok(HttpResponse::Created().content_type(ContentType::plaintext()).body("Created"))
}

pub(crate) async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    path: Scope,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (actor, provider) = path.into_inner();
    let scope = state.service.scope(&actor, &provider)?;
    let token = presented.require_bearer().map_err(ApiError::on_reset_route)?;
    let claims = state.service.verify_reset_token(&scope, &token).map_err(|e| ApiError::from(e).on_reset_route())?;
    let mut fields = Fields::of(&body);
    let password = fields.string("password");
    let email = fields.optional_string("email");
    fields.finish()?;
    let client = client_key(&req, &state.settings.trusted_proxies);
    state.blocking(move |svc| svc.admit(&client)).await.map_err(ApiError::on_reset_route)?;
    state
        .hashing(move |svc| svc.update_password(&claims, email.as_deref(), password))
        .await
        .map_err(ApiError::on_reset_route)?;
    Ok(HttpResponse::Ok().json(json!({ "success": true })))
}

pub(crate) async fn callback(state: web::Data<AppState>, path: Scope) -> Result<HttpResponse, ApiError> {
    let (actor, provider) = path.into_inner();
    state.service.scope(&actor, &provider)?;
    Err(AuthError::NotAllowed(format!(
        "The {provider} provider has no callback: it authenticates with POST /auth/{actor}/{provider}"
    ))
    .into())
}

pub(crate) async fn providers(state: web::Data<AppState>, actor: web::Path<String>) -> Result<HttpResponse, ApiError> {
    state.service.actor_scope(&actor)?;
    Ok(HttpResponse::Ok().json(json!({
        "providers": [{
            "id": "emailpass",
            "identifier": "emailpass",
            "display_name": "Email and password",
            "flow": "credentials",
        }]
    })))
}

pub(crate) async fn refresh(state: web::Data<AppState>, presented: Presented) -> Result<HttpResponse, ApiError> {
    let fresh = state.as_caller(presented, |svc, caller| svc.refresh(caller)).await?;
    Ok(token_response(fresh))
}

/// Xclade extension: a new password for the caller (token or session), checked against the
/// current one. Every token and session ends; the caller gets a fresh token.
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    path: Scope,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let (actor, provider) = path.into_inner();
    let scope = state.service.scope(&actor, &provider)?;
    let mut fields = Fields::of(&body);
    let old_password = fields.string("old_password");
    let new_password = fields.string("new_password");
    fields.finish()?;
    let used_session = presented.session.is_some();
    let client = client_key(&req, &state.settings.trusted_proxies);
    state.blocking(move |svc| svc.admit(&client)).await?;
    let fresh = state
        .hashing(move |svc| {
            let caller = svc.authenticate_any(presented.session.as_deref(), presented.bearer.as_deref())?;
            svc.change_password(&scope, &caller, old_password, new_password)
        })
        .await?;
    let mut response = token_response(fresh);
    if used_session {
        response
            .add_cookie(&state.settings.cookie.removal())
            .map_err(|e| ApiError::from(AuthError::unexpected("cookie", e)))?;
    }
    Ok(response)
}
