//! The operator's routes: `/health` (liveness), `/ready` (readiness) and `/metrics` (the scrape).

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::metrics::{Metrics, CONTENT_TYPE};
use crate::responses::{error_example, ErrorBody, ServerError};
use crate::{ApiError, AppState};

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

/// Metrics (Prometheus)
///
/// Every metric of the service in the OpenMetrics text format: requests by route template and
/// status with a latency histogram, the hashing queue, event backlog and deliveries per sink,
/// pool usage, rate-limit rejections, the janitor's work. Labels never carry an email, a token
/// or a secret. An operator endpoint: served on the admin listener (`ADMIN_HOST:ADMIN_PORT`,
/// loopback port 9001 by default), and on this port only with `METRICS_ON_PUBLIC_PORT=true`;
/// otherwise this port answers 404, because the counters would tell a stranger, for one, whether
/// a reset-password request named a registered email.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The metrics.", content_type = "application/openmetrics-text", body = String,
            example = json!("# TYPE xclade_auth_http_requests counter\nxclade_auth_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 1\n# EOF\n")),
        (status = 404, description = "Not served on this port (the default on the API port: `/metrics` is on the \
            admin listener unless `METRICS_ON_PUBLIC_PORT=true`); the same answer as any unknown path.",
            body = ErrorBody,
            example = json!(error_example("not_found", "Cannot GET /metrics"))),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn scrape(state: web::Data<AppState>) -> Result<actix_web::HttpResponse, ApiError> {
    let metrics: Arc<Metrics> = state.metrics.clone();
    let body = web::block(move || metrics.render())
        .await
        .map_err(|e| ApiError::from(auth_domain::AuthError::unexpected("rendering the metrics", e)))?;
    Ok(actix_web::HttpResponse::Ok().content_type(CONTENT_TYPE).body(body))
}
