//! `GET /openapi.json` (the OpenAPI document) and `GET /docs` (a reference rendered from it in
//! the browser by Swagger UI). Swagger UI's script and style sheet come from the vendored copy in
//! the `utoipa-swagger-ui` crate (compiled into the binary), its initializer and the page are this
//! project's (`assets/docs/`); all are served beside the page, so it needs no network access, and
//! their Content-Security-Policy lets it load nothing from elsewhere.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use actix_web::http::header::{self, ContentType};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use auth_domain::AuthError;

use crate::responses::ServerError;
use crate::ApiError;

const PAGE: &str = include_str!("../../assets/docs/index.html");
const INITIALIZER: &str = include_str!("../../assets/docs/swagger-initializer.js");

/// Only this origin, for every kind of resource: the page works offline, and a browser refuses
/// anything else it would load. No inline script (the initializer is a file) and no `eval`.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How `GET /openapi.json` gets the document: app data that `crate::app` registers
/// (`openapi::document_json`). The document is built from the route table, so no route imports it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenApiJson(pub(crate) fn() -> &'static str);

/// The OpenAPI document
///
/// This document (OpenAPI 3.1), generated from the code; `docs/openapi.json` in the repository is
/// the same bytes.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "reference",
    responses(
        (status = 200, description = "The OpenAPI document.", content_type = "application/json",
            body = Object, example = json!({"openapi": "3.1.0", "info": {"title": "Xclade Auth"}, "paths": {}})),
    )
)]
pub(crate) async fn openapi_json(document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body((document.0)())
}

/// The API reference (HTML)
///
/// A page that renders `/openapi.json`, with its script and style from this server (nothing from
/// elsewhere).
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs",
    tag = "reference",
    responses(
        (status = 200, description = "The reference page.", content_type = "text/html", body = String,
            headers(("Content-Security-Policy" = String, description = "Everything from this origin only.")),
            example = json!("<!doctype html>…")),
    )
)]
pub(crate) async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .body(PAGE)
}

/// Swagger UI's script
#[utoipa::path(
    get,
    path = "/docs/swagger-ui-bundle.js",
    operation_id = "docs_bundle",
    tag = "reference",
    responses(
        (status = 200, description = "Swagger UI (5.17.14, vendored), which `/docs` runs.", content_type = "text/javascript",
            body = String, headers(("Content-Security-Policy" = String, description = "As on `/docs`.")),
            example = json!("/*! For license information please see swagger-ui-bundle.js.LICENSE.txt */…")),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn docs_bundle(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    vendored(&req, "swagger-ui-bundle.js", "text/javascript; charset=utf-8")
}

/// Swagger UI's style sheet
#[utoipa::path(
    get,
    path = "/docs/swagger-ui.css",
    operation_id = "docs_style",
    tag = "reference",
    responses(
        (status = 200, description = "The style sheet of Swagger UI (vendored).", content_type = "text/css", body = String,
            headers(("Content-Security-Policy" = String, description = "As on `/docs`.")),
            example = json!(".swagger-ui{…}")),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn docs_style(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    vendored(&req, "swagger-ui.css", "text/css; charset=utf-8")
}

/// The reference's initializer
#[utoipa::path(
    get,
    path = "/docs/swagger-initializer.js",
    operation_id = "docs_initializer",
    tag = "reference",
    responses(
        (status = 200, description = "The script of `/docs` that starts Swagger UI on `/openapi.json`.",
            content_type = "text/javascript", body = String,
            headers(("Content-Security-Policy" = String, description = "As on `/docs`.")),
            example = json!("\"use strict\";…")),
    )
)]
pub(crate) async fn docs_initializer() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .body(INITIALIZER)
}

/// A file of the vendored Swagger UI distribution. Its files are fixed when the binary is built
/// (a test below checks that the two served are there); a missing one is a broken build (500).
fn vendored(req: &HttpRequest, file: &str, content_type: &'static str) -> Result<HttpResponse, ApiError> {
    // Only `swagger-initializer.js` reads the configuration, and this server has its own.
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| Arc::new(utoipa_swagger_ui::Config::default())).clone();
    let bytes = match utoipa_swagger_ui::serve(file, config) {
        Ok(Some(found)) => found.bytes,
        Ok(None) => return Err(unexpected(req, "is not in the vendored Swagger UI")),
        Err(err) => return Err(unexpected(req, &format!("could not be read from the vendored Swagger UI: {err}"))),
    };
    // Release builds embed the files (borrowed, no copy); debug builds read them from disk.
    let body = match bytes {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .body(body))
}

fn unexpected(req: &HttpRequest, what: &str) -> ApiError {
    ApiError::from(AuthError::Unexpected(format!("{} {what}", req.path())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_files_are_there() {
        let config = Arc::new(utoipa_swagger_ui::Config::default());
        for file in ["swagger-ui-bundle.js", "swagger-ui.css"] {
            let found = utoipa_swagger_ui::serve(file, config.clone()).ok().flatten();
            assert!(found.is_some_and(|f| f.bytes.len() > 10_000), "{file} is not in the vendored Swagger UI");
        }
    }
}
