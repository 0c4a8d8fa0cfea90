//! What other services need to verify a tenant's tokens: its public keys
//! (`/.well-known/jwks.json`), the few fields of an OpenID configuration a JWT verifier reads
//! (`/.well-known/openid-configuration`), and token introspection (`/auth/token/introspect`) for
//! the services that must see a revocation before `exp`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use auth_domain::context::RequestContext;
use auth_domain::secret::sha256_hex;
use auth_domain::AuthError;

use crate::body::JsonBody;
use crate::responses::{error_example, ErrorBody, ServerError};
use crate::{ApiError, AppState};

/// `200` with `body`, cacheable for `max_age` by anyone (public keys), with a strong `ETag`; `304`
/// when the client's `If-None-Match` has it already.
fn cacheable(req: &HttpRequest, body: String, max_age: u64) -> HttpResponse {
    let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
    let cache_control = format!("public, max-age={max_age}");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if matches { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        // Public data, read by verifiers anywhere (a browser-side verifier included).
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")));
    if matches {
        response.finish()
    } else {
        response.content_type("application/json").body(body)
    }
}

/// A JSON Web Key Set (RFC 7517 §5): public keys only.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Jwks {
    /// Each key with `kid`, `alg` (`EdDSA` or `ES256`), `use: sig` and its public parameters
    /// (`kty: OKP`, `crv: Ed25519`, `x`; or `kty: EC`, `crv: P-256`, `x`, `y`).
    keys: Vec<Value>,
}

/// The tenant's public keys (JWKS)
///
/// The keys that verify the tenant's tokens: the active one, the next one (published ahead of a
/// rotation) and the retired ones whose tokens may still be alive. Never a private part and
/// never the HS256 secret: while the tenant signs with HS256 (it has no key yet), the set is
/// empty. Cache it as `Cache-Control` says (`JWKS_MAX_AGE`, the lead time of a rotation); a
/// token whose `kid` is not in a cached set is a reason to fetch it again.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "jwks",
    tag = "keys",
    responses(
        (status = 200, description = "The public keys, with `ETag` and `Cache-Control: public, max-age=N`.",
            body = Jwks, example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "use": "sig", "alg": "EdDSA", "kid": "7c2f0d3a9e4b5a6c8d1e2f30"}]})),
        (status = 304, description = "`If-None-Match` names the current `ETag`."),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn jwks(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    let body = serde_json::to_string(&ctx.keys.jwks()).map_err(|e| AuthError::unexpected("encoding the JWKS", e))?;
    Ok(cacheable(&req, body, state.settings.jwks_max_age.as_secs()))
}

/// What a JWT verifier reads from an OpenID configuration.
#[derive(Serialize, ToSchema)]
pub(crate) struct VerifierConfiguration {
    /// The tenant's base URL: the `iss` of its tokens.
    issuer: String,
    /// Where its keys are.
    jwks_uri: String,
    /// The algorithms of its published keys; `HS256` while it signs with the shared secret.
    id_token_signing_alg_values_supported: Vec<&'static str>,
    /// `POST /auth/token/introspect`, when `INTROSPECTION_SECRET` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<String>,
}

/// Issuer metadata for verifiers
///
/// The fields a JWT library reads to verify the tenant's tokens: `issuer`, `jwks_uri` and the
/// signing algorithms. It does not make Xclade Auth an OpenID provider: there is no
/// authorization endpoint and no ID token.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    operation_id = "openid_configuration",
    tag = "keys",
    responses(
        (status = 200, description = "The issuer, the JWKS URL and the algorithms.", body = VerifierConfiguration,
            example = json!({"issuer": "https://acme.api.myxclade.com", "jwks_uri": "https://acme.api.myxclade.com/.well-known/jwks.json", "id_token_signing_alg_values_supported": ["EdDSA"]})),
        (status = 304, description = "`If-None-Match` names the current `ETag`."),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn openid_configuration(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    let issuer = ctx.settings.issuer.clone();
    let mut algorithms = ctx.keys.algorithms();
    if ctx.keys.signing().is_none() {
        algorithms.insert(0, "HS256");
    }
    let document = VerifierConfiguration {
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        introspection_endpoint: state
            .settings
            .introspection_secret
            .as_ref()
            .map(|_| format!("{issuer}/auth/token/introspect")),
        issuer,
        id_token_signing_alg_values_supported: algorithms,
    };
    let body = serde_json::to_string(&document).map_err(|e| AuthError::unexpected("encoding the configuration", e))?;
    Ok(cacheable(&req, body, state.settings.jwks_max_age.as_secs()))
}

/// An introspection answer (RFC 7662 §2.2).
#[derive(Serialize, ToSchema)]
pub(crate) struct Introspection {
    /// Whether the token is valid now: signature, times, tenant, and not revoked (its identity's
    /// security stamp is unchanged).
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    /// The `auth_identity_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
}

impl Introspection {
    fn inactive() -> Introspection {
        Introspection {
            active: false,
            token_type: None,
            sub: None,
            iss: None,
            iat: None,
            exp: None,
            actor_type: None,
            actor_id: None,
            tenant: None,
        }
    }
}

/// `{"token": "..."}` (JSON), or `token=...` as a form (RFC 7662 §2.1).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct IntrospectionRequest {
    token: String,
}

/// Whether a token is valid now (introspection)
///
/// For services that must see a revocation (password reset or change, logout-all, a disabled
/// tenant) before a token's `exp`, which a JWKS verifier cannot. Authenticated with
/// `Authorization: Bearer <INTROSPECTION_SECRET>`, a credential of the platform's services,
/// not of customers; unset, the route answers 404. A token that is not valid now, for whatever
/// reason, is `{"active": false}` (the reason is not told).
#[utoipa::path(
    post,
    path = "/auth/token/introspect",
    operation_id = "introspect",
    tag = "keys",
    request_body(content = IntrospectionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The token's state.", body = Introspection,
            example = json!({"active": true, "token_type": "Bearer", "sub": "authid_01JDX3Q9R5V7ZJ8Y2N4M6K0P1T", "iss": "https://acme.api.myxclade.com", "iat": 1733443200, "exp": 1733529600, "actor_type": "customer", "actor_id": "cus_01JDX3Q9R5V7ZJ8Y2N4M6K0P1T", "tenant": "acme"})),
        (status = 400, description = "No `token`.", body = ErrorBody,
            example = json!(error_example("invalid_data", "Invalid request: Field 'token' is required"))),
        (status = 401, description = "The caller's credential is missing or wrong.", body = ErrorBody,
            example = json!(error_example("unauthorized", "Unauthorized"))),
        (status = 404, description = "Introspection is off (`INTROSPECTION_SECRET` is unset).", body = ErrorBody,
            example = json!(error_example("not_found", "Cannot POST /auth/token/introspect"))),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some(secret) = state.settings.introspection_secret.clone() else {
        return Err(ApiError::not_found(format!("Cannot {} {}", req.method(), req.path())));
    };
    let presented =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // Compared as hashes, so that the time taken does not tell how much of it matched.
    if presented.map(sha256_hex) != Some(sha256_hex(&String::from_utf8_lossy(&secret.0))) {
        return Err(AuthError::Unauthenticated(auth_domain::TokenRejection::Missing).into());
    }
    let token = token_of(&req, &body)?;
    let ctx: RequestContext = state.request_context(&req)?;
    let answer = state
        .blocking(move |svc| {
            Ok(match svc.authenticate(&ctx, &token) {
                Ok(caller) => {
                    let Some(claims) = caller.claims.clone() else { return Ok(Introspection::inactive()) };
                    Introspection {
                        active: true,
                        token_type: Some("Bearer"),
                        sub: Some(claims.auth_identity_id.clone()),
                        iss: claims.iss.clone(),
                        iat: Some(claims.iat),
                        exp: Some(claims.exp),
                        actor_type: Some(caller.actor_type.to_string()),
                        actor_id: Some(caller.actor_id()),
                        tenant: Some(claims.tenant.clone()),
                    }
                }
                Err(AuthError::Unauthenticated(_)) => Introspection::inactive(),
                Err(other) => return Err(other),
            })
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(answer))
}

/// The `token` of a JSON or form body.
fn token_of(req: &HttpRequest, body: &[u8]) -> Result<String, ApiError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let token = if form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map_err(|_| ApiError::invalid_data("Invalid request: the body is not a form"))?
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v)
    } else {
        let JsonBody(value) = JsonBody::parse(body)?;
        value.get("token").and_then(Value::as_str).map(str::to_string)
    };
    token.filter(|t| !t.is_empty()).ok_or_else(|| ApiError::invalid_data("Invalid request: Field 'token' is required"))
}
