//! `GET /openapi.json` (the OpenAPI document) and `GET /docs` (a reference rendered from it in
//! the browser). The page's script and style are compiled into the binary and served beside it,
//! so it needs no network access; its Content-Security-Policy lets it load nothing from
//! elsewhere.

use actix_web::http::header::{self, ContentType};
use actix_web::HttpResponse;

use crate::openapi;

const PAGE: &str = include_str!("../../assets/docs/index.html");
const SCRIPT: &str = include_str!("../../assets/docs/reference.js");
const STYLE: &str = include_str!("../../assets/docs/reference.css");

/// Only this origin, for every kind of resource: the page works offline, and a browser refuses
/// anything else it would load.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

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
pub(crate) async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(openapi::document_json())
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

/// The reference's script
#[utoipa::path(
    get,
    path = "/docs/reference.js",
    operation_id = "docs_script",
    tag = "reference",
    responses(
        (status = 200, description = "The script of `/docs`.", content_type = "text/javascript", body = String,
            example = json!("\"use strict\";…")),
    )
)]
pub(crate) async fn docs_script() -> HttpResponse {
    HttpResponse::Ok().content_type("text/javascript; charset=utf-8").body(SCRIPT)
}

/// The reference's style sheet
#[utoipa::path(
    get,
    path = "/docs/reference.css",
    operation_id = "docs_style",
    tag = "reference",
    responses(
        (status = 200, description = "The style sheet of `/docs`.", content_type = "text/css", body = String,
            example = json!(":root {…}")),
    )
)]
pub(crate) async fn docs_style() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").body(STYLE)
}
