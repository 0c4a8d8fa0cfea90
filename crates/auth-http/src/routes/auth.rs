//! `/auth/...`: register, login, reset-password, update, providers, token refresh, change-password;
//! the redirect sign-in with other providers and its callback are in `oauth.rs`.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::{IntoParams, ToResponse, ToSchema};

use auth_domain::context::AuthContext;
use auth_domain::newtypes::EMAILPASS;
use auth_domain::service::DEVICE_COOKIE;
use auth_domain::AuthError;

use crate::body::{Fields, JsonBody};
use crate::context::ActorProvider;
use crate::credentials::Presented;
use crate::responses::{
    error_example, negotiated_unauthorized, success_response, token_response, Conflict, ErrorBody, LoginResponse,
    PayloadTooLarge, ProviderUnavailable, ServerError, SuccessResponse, TokenResponse, TooManyRequests, Unauthorized,
};
use crate::{ApiError, AppService, AppState};

/// The path parameters of the `/auth/{actor}/{provider}/...` routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct ActorProviderParams {
    /// The actor type: one of `ACTOR_TYPES` (default `customer` and `user`; names of letters,
    /// digits and `_`). Any other is 400 `not_allowed`.
    #[param(pattern = r"^[A-Za-z0-9_]+$", example = "customer")]
    actor: String,
    /// The auth provider: `emailpass`, or one the tenant configured: `google`, `github`, `oidc`
    /// (any other is 400 `not_allowed`). Register, reset-password, update and change-password
    /// are `emailpass` only.
    #[param(inline)]
    provider: Provider,
}

#[derive(ToSchema)]
#[allow(dead_code)]
enum Provider {
    #[serde(rename = "emailpass")]
    Emailpass,
    #[serde(rename = "google")]
    Google,
    #[serde(rename = "github")]
    Github,
    #[serde(rename = "oidc")]
    Oidc,
}

/// The path parameter of `/auth/{actor}/providers`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct ActorParam {
    /// The actor type: one of `ACTOR_TYPES` (default `customer` and `user`). Any other is 400
    /// `not_allowed`.
    #[param(pattern = r"^[A-Za-z0-9_]+$", example = "customer")]
    actor: String,
}

/// The body of register and login. Other fields are ignored; an empty body counts as `{}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CredentialsRequest {
    /// Register: the WHATWG `type=email` grammar after trimming, at most 254 characters; stored
    /// as given (trimmed). Login: any string, looked up trimmed and lowercased.
    #[schema(example = "ann@example.com")]
    email: String,
    /// Register: at least `PASSWORD_MIN_LENGTH` characters (default 8), at most 72 bytes of
    /// UTF-8, and a zxcvbn strength of at least `PASSWORD_MIN_STRENGTH` (default 2). Login: any
    /// string.
    #[schema(example = "correct horse battery")]
    password: String,
}

/// Register and login: the same body (`email`, `password`, other fields ignored), a use case
/// that hashes, and a token in answer.
type CredentialUseCase = fn(&AppService, &AuthContext, &str, String) -> Result<String, AuthError>;

async fn with_credentials(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: ActorProvider,
    body: JsonBody,
    use_case: CredentialUseCase,
) -> Result<HttpResponse, ApiError> {
    let (ctx, email, password) = admitted_credentials(&state, &req, path, &body).await?;
    let token = state.hashing(move |svc| use_case(svc, &ctx, &email, password)).await?;
    Ok(token_response(token))
}

/// The context, email and password of register and login, after the per-client budget.
async fn admitted_credentials(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    path: ActorProvider,
    body: &JsonBody,
) -> Result<(AuthContext, String, String), ApiError> {
    let ctx = state.auth_context(req, path)?;
    let mut fields = Fields::of(body);
    let email = fields.string("email");
    let password = fields.string("password");
    fields.finish()?;
    // The budget first: a request over it never waits for a hashing permit.
    let admitted = ctx.clone();
    state.blocking(move |svc| svc.admit(&admitted)).await?;
    Ok((ctx, email, password))
}

/// Register an email and password
///
/// Creates an identity and answers its **registration token** (`actor_id: ""`): create the
/// customer with it (`POST /store/customers`), then refresh it. Other fields and any
/// `Authorization` header are ignored. The email and the password policy are checked before the
/// existence check. An email that has an identity is refused (401), except when that identity has
/// no actor yet and the same password is given: then the answer is a token for it (Medusa's
/// idempotent re-registration). That proves a password, so for an email that has an identity
/// the failed-login throttles apply as at login: 429 before any hash while they are spent, and a
/// wrong password counts as a failed login.
#[utoipa::path(
    post,
    path = "/auth/{actor}/{provider}/register",
    operation_id = "register",
    tag = "auth",
    params(ActorProviderParams),
    request_body(content = CredentialsRequest, description = "The email and password of the new identity."),
    responses(
        (status = 200, description = "The registration token.", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`: a token is never cached."))),
        (status = 400, description = "A field is missing or of the wrong type, the email is invalid, or the password \
            breaks the policy. Every problem is reported, joined with `; `.", body = ErrorBody, examples(
            ("fields" = (summary = "Missing and mistyped fields", value = json!(error_example("invalid_data",
                "Invalid request: Field 'email' is required; Expected type: 'string' for field 'password', got: 'number'")))),
            ("email_invalid" = (summary = "Not an email address", value = json!(error_example("invalid_data",
                "Invalid request: Field 'email' must be a valid email address")))),
            ("password_short" = (summary = "Password too short", value = json!(error_example("invalid_data",
                "Invalid request: Field 'password' must be at least 8 characters long")))),
            ("password_long" = (summary = "Password over 72 bytes", value = json!(error_example("invalid_data",
                "Invalid request: Field 'password' must be at most 72 bytes of UTF-8")))),
            ("password_weak" = (summary = "Password too weak", value = json!(error_example("invalid_data",
                "Invalid request: Field 'password' is too weak (strength 0 of 4, at least 2 needed): This is a very common password. Add another word or two. Uncommon words are better.")))),
        )),
        (status = 401, description = "The email has an identity (always JSON).", body = ErrorBody,
            example = json!(error_example("unauthorized", "Identity with email already exists"))),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = TooManyRequests),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: ActorProvider,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    with_credentials(state, req, path, body, |svc, ctx, email, password| svc.register(ctx, email, password)).await
}

/// Log in
///
/// `emailpass`: answers an auth token for the identity of the email (trimmed, lowercased for the
/// lookup) when the password matches. Other fields and any `Authorization` header are ignored;
/// the email grammar and the password policy are not checked. Every 401 costs one bcrypt
/// verification, for unknown emails too.
///
/// A success also sets the **device cookie** `xclade_device` (`HttpOnly`, `Path=/auth`, for
/// `DEVICE_COOKIE_TTL`): later logins to this account that carry it are not counted against, nor
/// refused by, the account-wide failure limit (`LOGIN_FAILURE_LIMIT_ACCOUNT`), so guessing from
/// many addresses cannot lock the account's own devices out. Browsers send it with
/// `credentials: "include"`; other clients may keep and send it back.
///
/// `google`, `github`, `oidc` (when the tenant configured them): the body is ignored and the
/// answer is `{"location"}`, the provider's authorization URL, as `GET` answers. The browser goes
/// there; the provider sends it back to the storefront's callback page
/// (`OAUTH_<PROVIDER>_CALLBACK_URL`), which passes `code` and `state` to
/// `/auth/{actor}/{provider}/callback`.
#[utoipa::path(
    post,
    path = "/auth/{actor}/{provider}",
    operation_id = "login",
    tag = "auth",
    params(ActorProviderParams),
    request_body(content = CredentialsRequest, description = "The email and password of an identity."),
    responses(
        (status = 200, description = "`emailpass`: an auth token. Another provider: the authorization URL.",
            body = LoginResponse,
            headers(("Cache-Control" = String, description = "`no-store`: never cached."),
                ("Set-Cookie" = String, description = "`emailpass`: the device cookie `xclade_device` of this account."))),
        (status = 400, description = "A field is missing or of the wrong type (`emailpass`).", body = ErrorBody,
            example = json!(error_example("invalid_data", "Invalid request: Field 'password' is required"))),
        (status = 401, description = "Unknown email, wrong password, or a password bcrypt cannot take (always JSON).",
            body = ErrorBody, example = json!(error_example("unauthorized", "Invalid email or password"))),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = TooManyRequests),
        (status = 502, response = ProviderUnavailable),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: ActorProvider,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    if path.1 != EMAILPASS {
        return super::oauth::begin_sign_in(state, req, path).await;
    }
    let device = req.cookie(DEVICE_COOKIE).map(|c| c.value().to_string()).filter(|v| !v.is_empty());
    let (ctx, email, password) = admitted_credentials(&state, &req, path, &body).await?;
    let success = state.hashing(move |svc| svc.login_on_device(&ctx, &email, password, device.as_deref())).await?;
    let mut response = token_response(success.token);
    let ttl = state.service.settings().limits.device_cookie_ttl;
    response
        .add_cookie(&state.settings.cookie.device(success.device_cookie, ttl))
        .map_err(|e| AuthError::unexpected("setting a cookie", e))?;
    Ok(response)
}

/// The body of reset-password. Unknown fields are refused.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ResetPasswordRequest {
    /// Any string; looked up trimmed and lowercased.
    #[schema(example = "ann@example.com")]
    identifier: String,
    /// Copied into the event's `data.metadata` (`null` counts as absent).
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
}

/// Ask for a password reset link
///
/// Answers 201 `Created` **whether or not the identifier belongs to an account**, once the
/// request is recorded in the database (sealed; the same insert for every identifier, no lookup),
/// so that a crash after the answer loses nothing. A worker then does the rest: for an account, a
/// new reset token (15 minutes, single use) replaces any earlier one, and an
/// `auth.password_reset` event carries it to the sinks (the reset link). At most one reset per
/// identifier per `RESET_PASSWORD_INTERVAL` (default 60 s): a request inside the interval does
/// nothing and still answers 201. A database failure before the request is recorded is a 503
/// `database_error`: no 201 is given for a request that could be lost.
#[utoipa::path(
    post,
    path = "/auth/{actor}/{provider}/reset-password",
    operation_id = "reset_password",
    tag = "auth",
    params(ActorProviderParams),
    request_body(content = ResetPasswordRequest, description = "Whose password to reset."),
    responses(
        (status = 201, description = "Accepted (for known and unknown identifiers alike).", content_type = "text/plain",
            body = String, example = json!("Created")),
        (status = 400, description = "A field is missing, of the wrong type, or unknown.", body = ErrorBody,
            example = json!(error_example("invalid_data",
                "Invalid request: Field 'identifier' is required; Unrecognized fields: 'email'"))),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = TooManyRequests),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: ActorProvider,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.auth_context(&req, path)?;
    let mut fields = Fields::of(&body);
    let identifier = fields.string("identifier");
    let metadata = fields.optional_object("metadata").unwrap_or_default();
    fields.finish_strict(&["identifier", "metadata"])?;
    let admitted = ctx.clone();
    state.blocking(move |svc| svc.admit(&admitted)).await?;
    // The request is recorded before the answer (one insert, whether or not the identifier
    // names an account, so the answer costs the same); the reset worker does the lookup, the
    // token and the event. Once the 201 is sent, a crash loses nothing.
    state.blocking(move |svc| svc.request_password_reset(&ctx, &identifier, metadata)).await?;
    Ok(HttpResponse::Created().content_type(ContentType::plaintext()).body("Created"))
}

/// The body of update. Other fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct UpdatePasswordRequest {
    /// The new password: the register policy (length, 72 bytes, strength).
    #[schema(example = "a new passphrase")]
    password: String,
    /// When given, it must be the reset token's email (trimmed, case-insensitive); `null` counts
    /// as absent.
    #[schema(example = "ann@example.com")]
    email: Option<String>,
}

/// The 401 of `/update`: the negotiated 401 whose JSON message is `Invalid token`.
pub(crate) struct InvalidResetToken;

impl<'r> ToResponse<'r> for InvalidResetToken {
    fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::response::Response>) {
        let description = "No bearer token; a token that is malformed, badly signed, expired, not a reset token, \
            for another tenant or `{actor}`/`{provider}`; already used, replaced by a newer request, or past its \
            stored expiry; or its account is gone. JSON when `Accept` lists `application/json` (q > 0), otherwise \
            `text/plain` `Unauthorized`.";
        ("InvalidResetToken", negotiated_unauthorized(description, "Invalid token").into())
    }
}

/// Set a new password with a reset token
///
/// The account comes from the reset token (`Authorization: Bearer <reset token>`), not from the
/// body. In one transaction the token is consumed, the new hash stored, the security stamp
/// changed (every earlier auth token and session of the identity is refused from then on) and an
/// `auth.password_changed` event written. A 400 never consumes the token; of racing requests
/// with one token exactly one succeeds.
#[utoipa::path(
    post,
    path = "/auth/{actor}/{provider}/update",
    operation_id = "update_password",
    tag = "auth",
    params(ActorProviderParams),
    request_body(content = UpdatePasswordRequest, description = "The new password."),
    security(("resetToken" = [])),
    responses(
        (status = 200, description = "The password is changed.", body = SuccessResponse),
        (status = 400, description = "A field is missing or of the wrong type, the body's email is not the token's, \
            or the password breaks the policy.", body = ErrorBody, examples(
            ("fields" = (summary = "Missing password", value = json!(error_example("invalid_data",
                "Invalid request: Field 'password' is required")))),
            ("email_mismatch" = (summary = "Another account's email", value = json!(error_example("invalid_data",
                "Invalid request: Field 'email' does not match the account of the reset token")))),
            ("password_short" = (summary = "Password too short", value = json!(error_example("invalid_data",
                "Invalid request: Field 'password' must be at least 8 characters long")))),
        )),
        (status = 401, response = inline(InvalidResetToken)),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = TooManyRequests),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    path: ActorProvider,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.auth_context(&req, path)?;
    let token = presented.require_bearer().map_err(ApiError::on_reset_route)?;
    let claims = state.service.verify_reset_token(&ctx, &token).map_err(|e| ApiError::from(e).on_reset_route())?;
    let mut fields = Fields::of(&body);
    let password = fields.string("password");
    let email = fields.optional_string("email");
    fields.finish()?;
    let admitted = ctx.clone();
    state.blocking(move |svc| svc.admit(&admitted)).await.map_err(ApiError::on_reset_route)?;
    state
        .hashing(move |svc| svc.update_password(&ctx, &claims, email.as_deref(), password))
        .await
        .map_err(ApiError::on_reset_route)?;
    Ok(success_response())
}

/// The auth providers of an actor type.
#[derive(Serialize, ToSchema)]
pub(crate) struct ProvidersResponse {
    providers: Vec<ProviderInfo>,
}

/// An auth provider (the same list for every allowed actor type).
#[derive(Serialize, ToSchema)]
pub(crate) struct ProviderInfo {
    #[schema(example = "emailpass")]
    id: String,
    #[schema(example = "emailpass")]
    identifier: String,
    #[schema(example = "Email and password")]
    display_name: String,
    /// `credentials`: the client posts them to `/auth/{actor}/{id}`. `redirect`: the client asks
    /// `/auth/{actor}/{id}` for a `location`, sends the browser there, and hands the callback's
    /// `code` and `state` to `/auth/{actor}/{id}/callback`.
    #[schema(example = "credentials")]
    flow: &'static str,
}

/// List the auth providers
#[utoipa::path(
    get,
    path = "/auth/{actor}/providers",
    operation_id = "providers",
    tag = "auth",
    params(ActorParam),
    responses(
        (status = 200, description = "`emailpass`, then the providers the tenant configured (`google`, `github`, \
            `oidc`).", body = ProvidersResponse),
    )
)]
pub(crate) async fn providers(
    state: web::Data<AppState>,
    req: HttpRequest,
    actor: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let request = state.request_context(&req)?;
    state.service.check_actor_type(&request, &actor)?;
    let mut providers = vec![ProviderInfo {
        id: EMAILPASS.into(),
        identifier: EMAILPASS.into(),
        display_name: "Email and password".into(),
        flow: "credentials",
    }];
    providers.extend(request.settings.oauth_providers.iter().map(|p| ProviderInfo {
        id: p.kind.id().into(),
        identifier: p.kind.id().into(),
        display_name: p.display_name.clone(),
        flow: "redirect",
    }));
    Ok(HttpResponse::Ok().json(ProvidersResponse { providers }))
}

/// Refresh an auth token
///
/// A new token built from the current database state (actor id, metadata, stamp) with a fresh
/// `iat`/`exp`, for the actor type and provider of the token or session. The session cookie is
/// tried first, then the bearer token. The body is not read. This is how a registration token
/// gets a token whose `actor_id` is the customer created meanwhile. While the store has
/// `MEDUSA_JWT_SECRET` (moving from Medusa), a bearer token that its Medusa backend signed is
/// exchanged too, if the account was imported and its password has not changed since.
#[utoipa::path(
    post,
    path = "/auth/token/refresh",
    operation_id = "refresh",
    tag = "session",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A new auth token.", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`: a token is never cached."))),
        (status = 401, response = Unauthorized),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    // The hot path: a bearer token whose identity is in memory is answered here, on the worker,
    // with no database turn and no thread hop. Everything else, refusals included, takes the
    // blocking path, which answers as if this one did not exist.
    if let (None, Some(bearer)) = (&presented.session, presented.bearer.as_deref()) {
        if let Some(fresh) = state.service.refresh_from_memory(&ctx, bearer) {
            return Ok(token_response(fresh));
        }
    }
    let fresh = state
        .blocking(move |svc| svc.refresh_presented(&ctx, presented.session.as_ref(), presented.bearer.as_deref()))
        .await?;
    Ok(token_response(fresh))
}

/// The body of change-password. Other fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ChangePasswordRequest {
    /// The current password.
    #[schema(example = "correct horse battery")]
    old_password: String,
    /// The new password: the register policy (length, 72 bytes, strength), checked before
    /// `old_password`.
    #[schema(example = "a better passphrase")]
    new_password: String,
}

/// The 401 of change-password: the negotiated 401, or a wrong `old_password` (always JSON).
pub(crate) struct ChangePasswordRefused;

impl<'r> ToResponse<'r> for ChangePasswordRefused {
    fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::response::Response>) {
        let description = "No credentials, refused ones, or a caller of another actor type or provider: the \
            negotiated 401 (JSON when `Accept` lists `application/json`, otherwise `text/plain` `Unauthorized`). \
            A wrong `old_password`, or a password changed meanwhile: always JSON `Invalid password`.";
        let mut response = negotiated_unauthorized(description, "Unauthorized");
        if let Some(json) = response.content.get_mut("application/json") {
            let refused = json.example.take();
            json.examples.insert(
                "refused".into(),
                utoipa::openapi::example::ExampleBuilder::new()
                    .summary("Credentials refused, Accept lists application/json")
                    .value(refused)
                    .build()
                    .into(),
            );
            json.examples.insert(
                "wrong_old_password".into(),
                utoipa::openapi::example::ExampleBuilder::new()
                    .summary("old_password does not match")
                    .value(Some(error_example("unauthorized", "Invalid password")))
                    .build()
                    .into(),
            );
        }
        ("ChangePasswordRefused", response.into())
    }
}

/// Change the password (Xclade extension)
///
/// For the caller (session first, then bearer), whose actor type and provider must be the
/// route's. Only if the stored hash is still the one just verified, one transaction stores the
/// new hash, changes the security stamp, ends every session and pending reset token of the
/// identity (the caller's session too: when the request carried a `connect.sid` cookie the
/// answer also clears it) and writes `auth.password_changed`. The answer is a fresh token.
#[utoipa::path(
    post,
    path = "/auth/{actor}/{provider}/change-password",
    operation_id = "change_password",
    tag = "auth",
    params(ActorProviderParams),
    request_body(content = ChangePasswordRequest, description = "The current and the new password."),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A fresh auth token carrying the new stamp.", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`: a token is never cached."))),
        (status = 400, description = "A field is missing or of the wrong type, or `new_password` breaks the policy.",
            body = ErrorBody, examples(
            ("fields" = (summary = "Missing field", value = json!(error_example("invalid_data",
                "Invalid request: Field 'old_password' is required")))),
            ("password_short" = (summary = "New password too short", value = json!(error_example("invalid_data",
                "Invalid request: Field 'new_password' must be at least 8 characters long")))),
        )),
        (status = 401, response = inline(ChangePasswordRefused)),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = TooManyRequests),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    path: ActorProvider,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.auth_context(&req, path)?;
    let mut fields = Fields::of(&body);
    let old_password = fields.string("old_password");
    let new_password = fields.string("new_password");
    fields.finish()?;
    let used_session = presented.session.is_some();
    let admitted = ctx.clone();
    state.blocking(move |svc| svc.admit(&admitted)).await?;
    let fresh = state
        .hashing(move |svc| {
            let caller =
                svc.authenticate_any(&ctx.request(), presented.session.as_ref(), presented.bearer.as_deref())?;
            svc.change_password(&ctx, &caller, old_password, new_password)
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
