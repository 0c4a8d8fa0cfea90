use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::openapi::{error_example, ErrorBody};
use crate::AppState;

/// Liveness
///
/// The process answers; the database is not touched.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "operations",
    responses(
        (status = 200, description = "The process is alive.", content_type = "text/plain", body = String,
            example = json!("OK")),
    )
)]
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::plaintext()).body("OK")
}

/// `{"status": "ready"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ReadyResponse {
    #[schema(inline)]
    status: ReadyStatus,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
enum ReadyStatus {
    #[serde(rename = "ready")]
    Ready,
}

/// Readiness: 200 when the instance can serve (its database answers, its schema is migrated),
/// 503 with the reason otherwise. Load balancers stop sending traffic while it is 503.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    tag = "operations",
    responses(
        (status = 200, description = "The instance can serve: its database answers and no migration is pending \
            (a schema newer than the binary counts as ready, for rolling upgrades).", body = ReadyResponse,
            example = json!({"status": "ready"})),
        (status = 503, description = "The database is unreachable, or migrations are pending with \
            `MIGRATE_ON_START=false`.", body = ErrorBody,
            example = json!(error_example("unavailable", "Not ready: the database is unreachable."))),
    )
)]
pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let Some(probe) = state.readiness.clone() else {
        return HttpResponse::Ok().json(json!({ "status": "ready" }));
    };
    let verdict = web::block(move || probe.check()).await.unwrap_or_else(|e| Err(format!("the probe failed: {e}")));
    match verdict {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(reason) => HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
            .insert_header(("cache-control", "no-store"))
            .json(json!({ "type": "unavailable", "message": format!("Not ready: {reason}.") })),
    }
}
