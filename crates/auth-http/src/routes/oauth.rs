//! `/auth/{actor}/{provider}` for the providers other than `emailpass` (Google, GitHub, OpenID
//! Connect): the start of a sign-in (`{location}`, also answered by `POST` through `auth::login`)
//! its callback (which answers 400 for `emailpass`), and `/link` (a provider joined to the caller's
//! account). The use cases are `auth_domain::service` (`service/oauth.rs`); the flow is in
//! docs/api.md, "Sign-in with other providers".

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::IntoParams;

use auth_domain::context::AuthContext;
use auth_domain::newtypes::EMAILPASS;
use auth_domain::service::OAUTH_FAILED;
use auth_domain::AuthError;

use super::auth::ActorProviderParams;
use crate::context::ActorProvider;
use crate::credentials::Presented;
use crate::responses::{
    error_example, location_response, token_response, ErrorBody, LocationResponse, ProviderUnavailable, ServerError,
    TokenResponse, TooManyRequests, Unauthorized,
};
use crate::{ApiError, AppState};

/// Starts a sign-in with another provider: the pending sign-in stored, its URL answered.
pub(crate) async fn begin_sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: ActorProvider,
) -> Result<HttpResponse, ApiError> {
    let (ctx, provider) = state.oauth_context(&req, path)?;
    let admitted = ctx.clone();
    state.blocking(move |svc| svc.admit(&admitted)).await?;
    let asked = provider.clone();
    let endpoints = state.outbound(move |svc| svc.oauth_endpoints(&asked)).await?;
    let location = state.blocking(move |svc| svc.oauth_begin(&ctx, &provider, &endpoints, None)).await?;
    Ok(location_response(location))
}

/// Start a sign-in with another provider (GET)
///
/// For `google`, `github` and `oidc` (when the tenant configured them): a pending sign-in is
/// stored (10 minutes, single use, bound to the tenant, the actor type and the provider; only the
/// SHA-256 of its random `state` and `nonce` are kept, the PKCE verifier sealed) and the answer is
/// its authorization URL, as `POST` answers (Medusa answers both methods). `emailpass` has no
/// such flow: 400.
#[utoipa::path(
    get,
    path = "/auth/{actor}/{provider}",
    operation_id = "login_redirect",
    tag = "auth",
    params(ActorProviderParams),
    responses(
        (status = 200, description = "The provider's authorization URL.", body = LocationResponse,
            headers(("Cache-Control" = String, description = "`no-store`: never cached."))),
        (status = 400, description = "An actor type or provider that is not allowed, or `emailpass`.", body = ErrorBody,
            example = json!(error_example("not_allowed",
                "The emailpass provider has no redirect flow: it authenticates with POST /auth/customer/emailpass"))),
        (status = 429, response = TooManyRequests),
        (status = 502, response = ProviderUnavailable),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn login_redirect(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: ActorProvider,
) -> Result<HttpResponse, ApiError> {
    if path.1 == EMAILPASS {
        let AuthContext { actor_type: actor, provider, .. } = state.auth_context(&req, path)?;
        return Err(AuthError::NotAllowed(format!(
            "The {provider} provider has no redirect flow: it authenticates with POST /auth/{actor}/{provider}"
        ))
        .into());
    }
    begin_sign_in(state, req, path).await
}

/// The callback of a sign-in with another provider (GET)
///
/// The storefront's callback page passes on the query the provider sent it: `code` and `state`
/// (or `error`). The pending sign-in of `state` is taken back first, whatever follows, so a
/// `state` works once. Then the code is exchanged at the provider (with the client secret and
/// the PKCE verifier), the ID token checked (signature from the issuer's JWKS, `iss`, `aud`,
/// `exp`, `nonce`), or for GitHub the user and its primary email read, and the answer is a token
/// as login's: `actor_id` is `""` until the customer is created (`POST /store/customers`, with an
/// email the provider verified). The first sign-in creates the identity (provider identity
/// `entity_id` = the provider's subject, `user_metadata` = the profile); it never joins an
/// existing account, whatever its email. `emailpass` has no callback: 400.
#[utoipa::path(
    get,
    path = "/auth/{actor}/{provider}/callback",
    operation_id = "callback",
    tag = "auth",
    params(ActorProviderParams, CallbackQuery),
    responses(
        (status = 200, description = "An auth token (`actor_id: \"\"` until the customer exists).", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`: a token is never cached."))),
        (status = 400, description = "`emailpass` (it has no callback), or an actor type or provider that is not allowed.",
            body = ErrorBody, example = json!(error_example("not_allowed",
                "The emailpass provider has no callback: it authenticates with POST /auth/customer/emailpass"))),
        (status = 401, description = "Nothing is stored. A `state` that is missing, unknown, already used, older than 10 \
            minutes, or another tenant's, actor type's or provider's; or the provider's `error`, a missing or refused \
            `code`, an ID token that does not pass, an unverifiable GitHub user; for a sign-in started by `/link`, a \
            provider that does not assert the account's own email as verified, or a provider identity of another \
            account. Always JSON.", body = ErrorBody, examples(
            ("state" = (summary = "Bad state", value = json!(error_example("unauthorized",
                "Invalid or expired state: start the sign-in again")))),
            ("provider" = (summary = "Provider error, bad code, bad ID token", value = json!(error_example("unauthorized",
                "Authentication with the provider failed")))),
            ("link" = (summary = "A link the provider does not vouch for", value = json!(error_example("unauthorized",
                "The provider account cannot be linked: it must have this account's email, verified, and no other account")))),
        )),
        (status = 429, response = TooManyRequests),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: ActorProvider,
) -> Result<HttpResponse, ApiError> {
    if path.1 == EMAILPASS {
        let AuthContext { actor_type: actor, provider, .. } = state.auth_context(&req, path)?;
        return Err(AuthError::NotAllowed(format!(
            "The {provider} provider has no callback: it authenticates with POST /auth/{actor}/{provider}"
        ))
        .into());
    }
    let (ctx, provider) = state.oauth_context(&req, path)?;
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string()).map(|q| q.into_inner());
    let query = query.unwrap_or_default();
    let first = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (given_state, code, error) = (first("state"), first("code"), first("error"));
    let admitted = ctx.clone();
    state.blocking(move |svc| svc.admit(&admitted)).await?;
    let taken = ctx.clone();
    let pending = state.blocking(move |svc| svc.oauth_take(&taken, &provider, given_state.as_deref())).await?;
    if let Some(error) = error {
        log::info!("sign-in with {} refused by the provider: {}", ctx.provider, auth_domain::oauth::safe_code(&error));
        return Err(AuthError::Unauthorized(OAUTH_FAILED.into()).into());
    }
    let Some(code) = code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
        log::info!("sign-in with {} refused: no code", ctx.provider);
        return Err(AuthError::Unauthorized(OAUTH_FAILED.into()).into());
    };
    let link = pending.link_identity_id.clone();
    let profile = state.outbound(move |svc| svc.oauth_profile(&pending, &code)).await?;
    let token = state.blocking(move |svc| svc.oauth_finish(&ctx, link.as_deref(), &profile)).await?;
    Ok(token_response(token))
}

/// The query of a callback, as the provider sent it to the storefront.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The `state` of the authorization URL.
    state: Option<String>,
    /// The provider's error code (`access_denied`, ...), instead of `code`.
    error: Option<String>,
}

/// The callback of a sign-in with another provider (POST)
///
/// As `GET`: `code`, `state` and `error` are read from the query string; the body is not read.
#[utoipa::path(
    post,
    path = "/auth/{actor}/{provider}/callback",
    operation_id = "callback_post",
    tag = "auth",
    params(ActorProviderParams, CallbackQuery),
    responses(
        (status = 200, description = "As `GET`.", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`: a token is never cached."))),
        (status = 400, description = "As `GET`.", body = ErrorBody,
            example = json!(error_example("not_allowed",
                "The emailpass provider has no callback: it authenticates with POST /auth/customer/emailpass"))),
        (status = 401, description = "As `GET`.", body = ErrorBody,
            example = json!(error_example("unauthorized", "Invalid or expired state: start the sign-in again"))),
        (status = 429, response = TooManyRequests),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn callback_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: ActorProvider,
) -> Result<HttpResponse, ApiError> {
    callback(state, req, path).await
}

/// Link a provider to the caller's account (Xclade extension)
///
/// For a caller signed in with its password (session first, then bearer: an `emailpass` token or
/// session of the route's actor type, its stamp current), a sign-in with `{provider}` that joins
/// the provider to the caller's account instead of making an identity of its own. The answer is
/// the provider's `{"location"}`, as login's; the callback then answers a token of the account
/// (its customer included), and from then on signing in with the provider reaches the account.
/// The callback refuses (401, nothing stored) unless the provider asserts **the account's own
/// email, verified**, and the provider identity signs in to no other account.
#[utoipa::path(
    post,
    path = "/auth/{actor}/{provider}/link",
    operation_id = "link_provider",
    tag = "auth",
    params(ActorProviderParams),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The provider's authorization URL.", body = LocationResponse,
            headers(("Cache-Control" = String, description = "`no-store`: never cached."))),
        (status = 400, description = "An actor type or provider that is not allowed (`emailpass` included).",
            body = ErrorBody, example = json!(error_example("not_allowed", "Unknown auth provider: emailpass"))),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
        (status = 502, response = ProviderUnavailable),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn link_provider(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    path: ActorProvider,
) -> Result<HttpResponse, ApiError> {
    let (ctx, provider) = state.oauth_context(&req, path)?;
    let admitted = ctx.clone();
    state.blocking(move |svc| svc.admit(&admitted)).await?;
    let checked = ctx.clone();
    let caller = state
        .as_caller(ctx.request(), presented, move |svc, _, caller| {
            svc.oauth_link_caller(&checked, caller)?;
            Ok(caller.clone())
        })
        .await?;
    let asked = provider.clone();
    let endpoints = state.outbound(move |svc| svc.oauth_endpoints(&asked)).await?;
    let location = state.blocking(move |svc| svc.oauth_begin(&ctx, &provider, &endpoints, Some(&caller))).await?;
    Ok(location_response(location))
}
