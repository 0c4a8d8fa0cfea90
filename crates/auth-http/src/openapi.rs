//! The OpenAPI 3.1 document of the API (`GET /openapi.json`), generated from the code. This file
//! holds the base document (info, servers, tags, security schemes, the shared components) and two
//! rules applied to every operation (`CommonErrors`): the 400s that the body parser and the
//! `{actor}`/`{provider}` check give, and `Cache-Control: no-store` on every error. The paths come
//! from the route table (`routes/table.rs`): each handler's `#[utoipa::path]` attribute and the
//! schema types beside it (`routes/*.rs`). The error format and the reusable responses are in
//! `responses.rs`.
//!
//! `docs/openapi.json` is a snapshot of this document; the test below fails when they differ
//! (`UPDATE_SNAPSHOTS=1 cargo test -p auth-http` rewrites it).

use std::sync::OnceLock;

use serde_json::Value;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};

use crate::responses::{
    error_content, error_example, Conflict, DatabaseUnavailable, ErrorBody, MethodNotAllowed, NotFound,
    PayloadTooLarge, ProviderUnavailable, ServerError, TooManyRequests, Unauthorized,
};
use crate::routes;
use crate::settings::SESSION_COOKIE;

/// The document as served: pretty JSON with a final newline (the snapshot's bytes).
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let value = document();
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
    })
}

/// The document as a JSON value.
pub fn document() -> Value {
    let mut document = ApiDoc::openapi();
    routes::add_operations(&mut document);
    SecuritySchemes.modify(&mut document);
    CommonErrors.modify(&mut document);
    let mut value = serde_json::to_value(document).unwrap_or(Value::Null);
    require_documented_headers(&mut value);
    value
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Xclade Auth",
        description = include_str!("openapi.md"),
        license(name = "UNLICENSED"),
    ),
    servers(
        (url = "/", description = "The host this document was read from: requests go to the same store \
            (tenant) as the document."),
        (url = "https://{tenant}.api.myxclade.com", description = "A store of the Xclade platform, named by the first \
            label of the host (the deployment's `TENANT_HOST_SUFFIX`, here `.api.myxclade.com`). A host that names \
            no active tenant answers 404 on every path but `/health`, `/ready` and `/metrics`.",
            variables(("tenant" = (default = "default", description = "The tenant's name: a lowercase DNS label \
                of 1 to 63 letters, digits and hyphens. `default` is the store that holds everything written \
                before tenancy.")))),
    ),
    components(
        schemas(ErrorBody),
        responses(
            Unauthorized,
            PayloadTooLarge,
            Conflict,
            TooManyRequests,
            ServerError,
            DatabaseUnavailable,
            ProviderUnavailable,
            NotFound,
            MethodNotAllowed
        ),
    ),
    tags(
        (name = "auth", description = "Credentials: register, log in, reset and change a password. \
            `{actor}` is one of `ACTOR_TYPES` (default `customer`, `user`), `{provider}` is `emailpass`."),
        (name = "session", description = "Tokens and cookie sessions: refresh, open and end a session, log out everywhere."),
        (name = "store", description = "The storefront customer of the caller (actor type `customer`)."),
        (name = "keys", description = "For the services that verify the tenant's tokens: its public keys (JWKS), \
            its issuer metadata, and introspection for a revocation before `exp`."),
        (name = "operations", description = "Probes for load balancers and orchestrators, on this port and on the \
            admin listener (`ADMIN_HOST:ADMIN_PORT`, loopback port 9001 by default); the metrics, on the admin \
            listener only unless `METRICS_ON_PUBLIC_PORT=true`."),
        (name = "reference", description = "This document and its human-readable rendering."),
    )
)]
struct ApiDoc;

/// `bearer` (auth token), `resetToken` (reset token) and `session` (the `connect.sid` cookie).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else { return };
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An auth token from register, login, refresh or change-password: `Authorization: Bearer \
                         <token>` (the scheme in any case). HS256; refused once the identity's security stamp \
                         changed (password reset, change-password, logout-all).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "resetToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A reset token, carried by the `auth.password_reset` event (the reset link): 15 minutes, \
                         single use, only on the `{actor}`/`{provider}` it was issued for. Never an auth token.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie set by `POST /auth/session` (HttpOnly, 64 hex digits). On a `POST` or \
                 `DELETE` it counts only when the request's `Content-Type` is `application/json` (CSRF); \
                 `GET /store/customers/me` takes it whatever the type. Tried before a bearer token.",
            ))),
        );
    }
}

/// Rules that hold for every operation, applied to the document so that no handler can forget
/// them: the 400s of the body parser (`body.rs`) on operations with a body, the 400s of the
/// `{actor}`/`{provider}` check on operations with those parameters, `Cache-Control: no-store`
/// on every error (`error.rs`), the 503 `database_error` beside the 500 of every operation that
/// reads the database, and `x-request-id` on every response (`request_id.rs`).
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::HttpMethod;
        for (path, item) in openapi.paths.paths.iter_mut() {
            for method in [HttpMethod::Get, HttpMethod::Post, HttpMethod::Delete] {
                let operation = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Delete => item.delete.as_mut(),
                    _ => None,
                };
                let Some(operation) = operation else { continue };
                let mut examples: Vec<(&str, &str, Value)> = Vec::new();
                if operation.request_body.is_some() {
                    examples.extend(crate::body::error_examples());
                }
                if path.contains("{actor}") {
                    examples.push((
                        "unknown_actor",
                        "{actor} is not one of ACTOR_TYPES",
                        error_example("not_allowed", "Unknown actor type: admin"),
                    ));
                }
                if path.contains("{provider}") {
                    examples.push((
                        "unknown_provider",
                        "{provider} is not emailpass",
                        error_example("not_allowed", "Unknown auth provider: google"),
                    ));
                }
                let responses = &mut operation.responses.responses;
                // Static files and the metrics read no database.
                let reads_database = !path.starts_with("/docs/") && path != "/metrics";
                if reads_database && responses.contains_key("500") && !responses.contains_key("503") {
                    responses.insert("503".to_string(), RefOr::Ref(Ref::from_response_name("DatabaseUnavailable")));
                }
                if !examples.is_empty() {
                    let entry = responses.entry("400".to_string()).or_insert_with(|| {
                        ResponseBuilder::new().description("The request is refused; nothing changed.").build().into()
                    });
                    if let RefOr::T(response) = entry {
                        add_examples(response, examples);
                    }
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else { continue };
                    let error = status.starts_with('4') || status.starts_with('5');
                    if error && response.content.contains_key("application/json") {
                        response.headers.insert("Cache-Control".into(), no_store());
                    }
                    response.headers.insert("x-request-id".into(), request_id());
                }
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            for response in components.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.headers.insert("Cache-Control".into(), no_store());
                    response.headers.insert("x-request-id".into(), request_id());
                }
            }
        }
    }
}

fn request_id() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(128)).build())
        .description(Some(
            "The request's id: the request's own `x-request-id` when it is 1 to 128 characters of \
             `A-Z a-z 0-9 - _ . : / + =`, a generated one otherwise. Every log line of the request carries it.",
        ))
        .build()
}

fn no_store() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["no-store"])).build())
        .description(Some("Errors are never cached."))
        .build()
}

/// Adds named examples to the JSON content of `response` (creating it with the error schema). A
/// single example already there becomes the named example `route`, summarised by the response's
/// description.
fn add_examples(response: &mut Response, examples: Vec<(&str, &str, Value)>) {
    let summary = response.description.clone();
    let content = response.content.entry("application/json".into()).or_insert_with(|| error_content(&[]));
    if let Some(single) = content.example.take() {
        let example = ExampleBuilder::new().summary(summary).value(Some(single)).build();
        content.examples.insert("route".into(), example.into());
    }
    for (name, summary, value) in examples {
        content.examples.insert(name.into(), ExampleBuilder::new().summary(summary).value(Some(value)).build().into());
    }
}

/// Every header this document lists on a response is sent on every such response: mark them
/// `required` (utoipa's header object has no such field), so clients and checkers can rely on them.
fn require_documented_headers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(headers)) = map.get_mut("headers") {
                for header in headers.values_mut() {
                    if let Value::Object(header) = header {
                        if header.contains_key("schema") {
                            header.insert("required".into(), Value::Bool(true));
                        }
                    }
                }
            }
            map.values_mut().for_each(require_documented_headers);
        }
        Value::Array(items) => items.iter_mut().for_each(require_documented_headers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = document_json();
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(SNAPSHOT, generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
        if committed != generated {
            let line = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| committed.lines().count().min(generated.lines().count()) + 1, |i| i + 1);
            let show = |text: &str| text.lines().nth(line - 1).unwrap_or("<end of file>").to_string();
            panic!(
                "docs/openapi.json is not the document the code generates (first difference at line {line}:\n  \
                 committed: {}\n  generated: {}\n). If the change is intended, update the snapshot with \
                 `UPDATE_SNAPSHOTS=1 cargo test -p auth-http` and commit docs/openapi.json.",
                show(&committed),
                show(generated)
            );
        }
    }

    /// Every error (status >= 400) has a body with a schema and an example, for each content type.
    fn assert_error_examples(place: &str, response: &Value) {
        let content = response["content"].as_object().unwrap_or_else(|| panic!("{place}: no content"));
        for (media, content) in content {
            assert!(content.get("schema").is_some(), "{place} {media}: no schema");
            assert!(
                content.get("example").is_some() || content.get("examples").is_some(),
                "{place} {media}: no example"
            );
        }
    }

    #[test]
    fn every_operation_has_an_id_a_tag_and_examples_for_its_errors() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(ids.insert(id.to_string()), "{method} {path}: operationId {id} twice");
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path}: no tag");
                for (status, response) in op["responses"].as_object().unwrap() {
                    let place = format!("{method} {path} {status}");
                    match response["$ref"].as_str() {
                        Some(target) => {
                            let name = target.trim_start_matches("#/components/responses/");
                            assert!(doc["components"]["responses"].get(name).is_some(), "{place}: {target} is missing");
                        }
                        None if status.as_str() >= "400" => assert_error_examples(&place, response),
                        // Not Modified has no body by definition.
                        None if status == "304" => {}
                        None => assert!(response["content"].is_object(), "{place}: no content"),
                    }
                }
            }
        }
        for (name, response) in doc["components"]["responses"].as_object().unwrap() {
            assert_error_examples(name, response);
        }
    }

    #[test]
    fn the_429_requires_retry_after() {
        let doc = document();
        let header = &doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"];
        assert_eq!(header["required"], true);
        assert_eq!(header["schema"]["type"], "integer");
    }
}
