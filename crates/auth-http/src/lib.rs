//! The inbound HTTP adapter: Medusa v2's auth routes on actix-web.
//!
//! Handlers turn request DTOs into domain values, run the use cases on the blocking pool (the
//! ones that hash behind the hashing semaphore), and map `AuthError` to HTTP in one place
//! (`error`).

mod body;
mod client;
mod context;
mod credentials;
mod error;
pub mod metrics;
pub mod openapi;
pub mod request_id;
mod responses;
mod routes;
mod settings;
mod state;
mod tenant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App};

pub use error::{cause_chain, ApiError};
pub use settings::{CookieSettings, Credential, HttpSettings, MAX_BODY_BYTES, SESSION_COOKIE};
pub use state::{AppService, AppState, Readiness};

/// The application: every route (`routes/table.rs`), the tenant of each request (`tenant.rs`),
/// the JSON 404 and 405, the negotiated 401, the body limit, the request id and the request
/// metrics. The server adds its own middleware (access
/// log) around it.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (settings, tenants) = (state.settings.clone(), state.tenants.clone());
    App::new()
        .app_data(web::Data::from(state.metrics.clone()))
        .app_data(web::Data::new(routes::OpenApiJson(openapi::document_json)))
        .app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .wrap(from_fn(tenant::resolve))
        .wrap(ErrorHandlers::new().handler(StatusCode::UNAUTHORIZED, error::negotiate_unauthorized))
        .wrap(from_fn(metrics::observe))
        .wrap(from_fn(request_id::assign))
        .configure(|cfg| routes::configure(cfg, &settings, &tenants))
        .default_service(web::to(routes::not_found))
}

/// The admin application (`ADMIN_HOST:ADMIN_PORT`, loopback by default): `/metrics`, `/health`
/// and `/ready`, nothing else. What only an operator should read is served here.
pub fn admin_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        .wrap(from_fn(request_id::assign))
        .configure(routes::configure_admin)
        .default_service(web::to(routes::not_found))
}

#[cfg(test)]
mod tests;
