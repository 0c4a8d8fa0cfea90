use actix_web::http::header::ContentType;
use actix_web::HttpResponse;

/// Liveness: the process answers.
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::plaintext()).body("OK")
}
