//! The route table (design §3.1). Every path answers 405 (JSON) to a method it does not serve;
//! unknown paths answer 404 (JSON).

mod auth;
mod health;

use actix_web::{web, HttpRequest, HttpResponse, Resource};

use crate::ApiError;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // Fixed paths first: `/auth/token/refresh` and `/auth/{actor}/providers` would otherwise
    // match `/auth/{actor}/{provider}`.
    cfg.service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/auth/token/refresh").route(web::post().to(auth::refresh)))
        .service(resource("/auth/{actor}/providers").route(web::get().to(auth::providers)))
        .service(resource("/auth/{actor}/{provider}").route(web::post().to(auth::login)))
        .service(resource("/auth/{actor}/{provider}/register").route(web::post().to(auth::register)))
        .service(resource("/auth/{actor}/{provider}/reset-password").route(web::post().to(auth::reset_password)))
        .service(resource("/auth/{actor}/{provider}/update").route(web::post().to(auth::update)))
        .service(
            resource("/auth/{actor}/{provider}/callback")
                .route(web::get().to(auth::callback))
                .route(web::post().to(auth::callback)),
        );
}

fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed(format!(
        "Method {} is not allowed on {}",
        req.method(),
        req.path()
    )))
}

pub(crate) async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!("Cannot {} {}", req.method(), req.path())))
}
