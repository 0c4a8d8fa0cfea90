//! The route table (design §3.1). Every path answers 405 (JSON) to a method it does not serve;
//! unknown paths answer 404 (JSON). `/auth` and `/store` each have their own CORS origins.

// Visible to the crate so that `openapi` can list the handlers' `#[utoipa::path]` operations.
pub(crate) mod auth;
pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod session;
pub(crate) mod store;

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Resource};

use crate::settings::HttpSettings;
use crate::ApiError;

pub(crate) fn configure(cfg: &mut web::ServiceConfig, settings: &HttpSettings) {
    probes(cfg);
    metrics(cfg, settings.public_metrics);
    reference(cfg);
    cfg.service(
        web::scope("/auth")
            .wrap(cors(&settings.auth_cors))
            // Fixed paths first: `/token/refresh` and `/{actor}/providers` would otherwise
            // match `/{actor}/{provider}`.
            .service(resource("/token/refresh").route(web::post().to(auth::refresh)))
            .service(
                resource("/session").route(web::post().to(session::create)).route(web::delete().to(session::delete)),
            )
            .service(resource("/logout-all").route(web::post().to(session::logout_all)))
            .service(resource("/{actor}/providers").route(web::get().to(auth::providers)))
            .service(resource("/{actor}/{provider}").route(web::post().to(auth::login)))
            .service(resource("/{actor}/{provider}/register").route(web::post().to(auth::register)))
            .service(resource("/{actor}/{provider}/reset-password").route(web::post().to(auth::reset_password)))
            .service(resource("/{actor}/{provider}/update").route(web::post().to(auth::update)))
            .service(resource("/{actor}/{provider}/change-password").route(web::post().to(auth::change_password)))
            .service(
                resource("/{actor}/{provider}/callback")
                    .route(web::get().to(auth::callback))
                    .route(web::post().to(auth::callback_post)),
            ),
    )
    .service(
        web::scope("/store")
            .wrap(cors(&settings.store_cors))
            .service(resource("/customers").route(web::post().to(store::create_customer)))
            .service(
                resource("/customers/me")
                    .route(web::get().to(store::retrieve_me))
                    .route(web::post().to(store::update_me)),
            ),
    );
}

/// `/health` (liveness) and `/ready` (readiness).
pub(crate) fn probes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/ready").route(web::get().to(health::ready)));
}

/// `GET /metrics`: the scrape when `served` (the admin listener always; the API port only with
/// `METRICS_ON_PUBLIC_PORT=true`), otherwise the 404 of any unknown path. The path stays in the
/// table either way, so that another method is a 405 with `Allow`, as the OpenAPI document says.
pub(crate) fn metrics(cfg: &mut web::ServiceConfig, served: bool) {
    let get = if served { web::get().to(crate::metrics::scrape) } else { web::get().to(not_found) };
    cfg.service(resource("/metrics").route(get));
}

/// `/openapi.json` and `/docs` with its assets.
pub(crate) fn reference(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/openapi.json").route(web::get().to(docs::openapi_json)))
        .service(resource("/docs").route(web::get().to(docs::docs_page)))
        .service(resource("/docs/swagger-ui-bundle.js").route(web::get().to(docs::docs_bundle)))
        .service(resource("/docs/swagger-ui.css").route(web::get().to(docs::docs_style)))
        .service(resource("/docs/swagger-initializer.js").route(web::get().to(docs::docs_initializer)));
}

fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Browsers on `origins` may call with credentials; the preflight echoes the requested headers
/// (the JS SDK sends `x-medusa-locale` and `x-publishable-api-key`). Requests from other origins
/// are served without CORS headers, so the browser, not the server, refuses them.
fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .supports_credentials()
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_any_header()
        .block_on_origin_mismatch(false)
        .max_age(3600);
    origins.iter().fold(cors, |cors, origin| cors.allowed_origin(origin))
}

/// 405 with `Allow`: the methods the path's template serves, as the OpenAPI document lists them.
async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let error = ApiError::method_not_allowed(format!("Method {} is not allowed on {}", req.method(), req.path()));
    let mut response = actix_web::ResponseError::error_response(&error);
    let allow = req.match_pattern().and_then(|pattern| crate::openapi::allowed_methods(&pattern));
    if let Some(value) = allow.and_then(|v| actix_web::http::header::HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(actix_web::http::header::ALLOW, value);
    }
    response
}

pub(crate) async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!("Cannot {} {}", req.method(), req.path())))
}
