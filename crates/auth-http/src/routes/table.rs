//! The route table: every route once. An entry names a handler; the handler's `#[utoipa::path]`
//! gives its path template, its method(s) and its operation. From this one table come the actix
//! configuration of both applications (`configure`, `configure_admin`), the paths of the OpenAPI
//! document (`add_operations`) and the `Allow` header of every 405 (`allowed_methods`).
//!
//! To add a route: write the handler and its `#[utoipa::path]` beside its siblings, then add
//! `route!(Group, module::handler)` to `TABLE`, where its path should appear in the document.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use actix_cors::Cors;
use actix_web::http::header::{HeaderValue, ALLOW};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Resource, Scope};
use utoipa::openapi::path::PathItem;
use utoipa::openapi::OpenApi as Document;

use super::{auth, docs, health, keys, oauth, session, store};
use auth_domain::tenant::{Tenant, TenantDirectory, TenantSettings};
use ipnet::IpNet;

use crate::error::ApiError;
use crate::settings::HttpSettings;
use crate::tenant;

/// Routes mounted together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// `/auth/...`: a scope with the CORS origins of `/auth` (the tenant's `AUTH_CORS`).
    Auth,
    /// `/store/...`: a scope with the CORS origins of `/store` (the tenant's `STORE_CORS`).
    Store,
    /// `/health` and `/ready`, on both applications.
    Probes,
    /// `GET /metrics`: the scrape on the admin application, and on the API port only with
    /// `HttpSettings::public_metrics` (`METRICS_ON_PUBLIC_PORT=true`); otherwise the 404 of any
    /// unknown path. The path stays either way, so that another method is a 405 with `Allow`, as
    /// the document says.
    Metrics,
    /// `/openapi.json`, and `/docs` with its assets.
    Reference,
    /// `/.well-known/...`: the tenant's public keys and issuer metadata.
    WellKnown,
}

impl Group {
    /// The scope the group is mounted in (`""`: none).
    fn scope(self) -> &'static str {
        match self {
            Group::Auth => "/auth",
            Group::Store => "/store",
            Group::Probes | Group::Metrics | Group::Reference | Group::WellKnown => "",
        }
    }
}

/// A route: the handler for actix, and the handler's `#[utoipa::path]` as a document of one path
/// (its template, method(s), operation, and the schemas it refers to).
struct Route {
    group: Group,
    handler: fn() -> actix_web::Route,
    operation: fn() -> Document,
}

/// `route!(Group, module::handler)`: a handler and its `#[utoipa::path]`, named once.
macro_rules! route {
    ($group:ident, $($handler:ident)::+) => {{
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler)::+))]
        struct Operation;
        fn handler() -> actix_web::Route {
            web::route().to($($handler)::+)
        }
        Route { group: Group::$group, handler, operation: <Operation as utoipa::OpenApi>::openapi }
    }};
}

/// Every route, once, in the order of the document's paths. Within a scope, actix tries the paths
/// with fixed segments before those with `{parameters}` whatever their order here (`resources`):
/// `/auth/token/refresh` and `/auth/{actor}/providers` before `/auth/{actor}/{provider}`.
static TABLE: &[Route] = &[
    route!(Auth, auth::register),
    route!(Auth, auth::login),
    route!(Auth, oauth::login_redirect),
    route!(Auth, auth::reset_password),
    route!(Auth, auth::update),
    route!(Auth, auth::change_password),
    route!(Auth, oauth::callback),
    route!(Auth, oauth::callback_post),
    route!(Auth, oauth::link_provider),
    route!(Auth, auth::providers),
    route!(Auth, auth::refresh),
    route!(Auth, keys::introspect),
    route!(Auth, session::create),
    route!(Auth, session::delete),
    route!(Auth, session::logout_all),
    route!(Store, store::create_customer),
    route!(Store, store::retrieve_me),
    route!(Store, store::update_me),
    route!(WellKnown, keys::jwks),
    route!(WellKnown, keys::openid_configuration),
    route!(Probes, health::health),
    route!(Probes, health::ready),
    route!(Metrics, health::scrape),
    route!(Reference, docs::openapi_json),
    route!(Reference, docs::docs_page),
    route!(Reference, docs::docs_bundle),
    route!(Reference, docs::docs_style),
    route!(Reference, docs::docs_initializer),
];

/// A route of the table as actix needs it: its path template and methods, read once from its
/// operation.
#[derive(Debug)]
struct Entry {
    group: Group,
    path: String,
    methods: Vec<Method>,
    handler: fn() -> actix_web::Route,
}

fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        TABLE
            .iter()
            .flat_map(|route| {
                let document = (route.operation)();
                document.paths.paths.into_iter().map(|(path, item)| Entry {
                    group: route.group,
                    path,
                    methods: methods(&item),
                    handler: route.handler,
                })
            })
            .collect()
    })
}

/// The methods in the order of a path item of the document.
const DOCUMENT_ORDER: [Method; 8] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::DELETE,
    Method::OPTIONS,
    Method::HEAD,
    Method::PATCH,
    Method::TRACE,
];

/// The methods a path item has an operation for, in the document's order.
fn methods(item: &PathItem) -> Vec<Method> {
    let operations =
        [&item.get, &item.put, &item.post, &item.delete, &item.options, &item.head, &item.patch, &item.trace];
    operations.iter().zip(DOCUMENT_ORDER).filter(|(operation, _)| operation.is_some()).map(|(_, m)| m).collect()
}

/// The API application: every route; `/metrics` scraped only with `settings.public_metrics`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, settings: &HttpSettings, tenants: &Arc<dyn TenantDirectory>) {
    mount(cfg, Group::Probes, true);
    mount(cfg, Group::Metrics, settings.public_metrics);
    mount(cfg, Group::Reference, true);
    mount(cfg, Group::WellKnown, true);
    let cors = |origins| cors(origins, tenants.clone(), settings.trusted_proxies.clone());
    cfg.service(scope(Group::Auth).wrap(cors(|tenant| &tenant.auth_cors)))
        .service(scope(Group::Store).wrap(cors(|tenant| &tenant.store_cors)));
}

/// The admin application: the probes and the metrics, nothing else.
pub(crate) fn configure_admin(cfg: &mut web::ServiceConfig) {
    mount(cfg, Group::Probes, true);
    mount(cfg, Group::Metrics, true);
}

/// The paths of the table, each with the operation of every route on it, and the schemas they
/// refer to, added to `document` in the table's order.
pub(crate) fn add_operations(document: &mut Document) {
    for route in TABLE {
        document.merge((route.operation)());
    }
}

/// The resources of a group outside any scope. Unless `serve`, each route answers the 404 of an
/// unknown path (its resource stays, for the 405).
fn mount(cfg: &mut web::ServiceConfig, group: Group, serve: bool) {
    for resource in resources(group, serve) {
        cfg.service(resource);
    }
}

fn scope(group: Group) -> Scope {
    resources(group, true).into_iter().fold(web::scope(group.scope()), Scope::service)
}

/// The resources of a group, relative to its scope: one per path template, with a route per
/// method and the 405 for any other method.
fn resources(group: Group, serve: bool) -> Vec<Resource> {
    plan(group)
        .into_iter()
        .map(|(path, entries)| {
            let relative = path.strip_prefix(group.scope()).unwrap_or(path);
            let resource = web::resource(relative).default_service(web::to(method_not_allowed));
            entries.into_iter().flat_map(|entry| entry.methods.iter().map(move |m| (entry, m))).fold(
                resource,
                |resource, (entry, method)| {
                    let route = if serve { (entry.handler)() } else { web::route().to(not_found) };
                    resource.route(route.method(method.clone()))
                },
            )
        })
        .collect()
}

/// The path templates of a group in the order actix tries them, each with its routes: at the first
/// segment where two templates differ, a fixed segment comes before a `{parameter}` (otherwise, the
/// table's order).
fn plan(group: Group) -> Vec<(&'static str, Vec<&'static Entry>)> {
    let mut in_group: Vec<&Entry> = entries().iter().filter(|entry| entry.group == group).collect();
    in_group.sort_by_key(|entry| entry.path.split('/').map(|segment| segment.starts_with('{')).collect::<Vec<_>>());
    let mut plan: Vec<(&str, Vec<&Entry>)> = Vec::new();
    for entry in in_group {
        match plan.iter_mut().find(|(path, _)| *path == entry.path) {
            Some((_, on_path)) => on_path.push(entry),
            None => plan.push((&entry.path, vec![entry])),
        }
    }
    plan
}

/// Each path template of the table with the methods served there (in the document's order), in the
/// table's order: the document's paths, and what the `Allow` of their 405s lists.
pub(crate) fn paths() -> &'static [(&'static str, Vec<Method>)] {
    static PATHS: OnceLock<Vec<(&str, Vec<Method>)>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let mut paths: Vec<(&str, Vec<Method>)> = Vec::new();
        for entry in entries() {
            match paths.iter_mut().find(|(path, _)| *path == entry.path) {
                Some((_, methods)) => methods.extend(entry.methods.iter().cloned()),
                None => paths.push((&entry.path, entry.methods.clone())),
            }
        }
        for (_, methods) in &mut paths {
            methods.sort_by_key(|m| DOCUMENT_ORDER.iter().position(|o| o == m));
        }
        paths
    })
}

/// The methods the table serves on a path template (`"GET, POST"`), for the `Allow` header of a
/// 405.
fn allowed_methods(path: &str) -> Option<&'static str> {
    static ALLOWED: OnceLock<HashMap<&str, String>> = OnceLock::new();
    let allowed = ALLOWED.get_or_init(|| {
        paths()
            .iter()
            .map(|(path, methods)| (*path, methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")))
            .collect()
    });
    allowed.get(path).map(String::as_str)
}

/// Browsers on the request's tenant's `origins` may call with credentials; the preflight echoes
/// the requested headers (the JS SDK sends `x-medusa-locale` and `x-publishable-api-key`).
/// Requests from other origins are served without CORS headers, so the browser, not the server,
/// refuses them. Only a request with an `Origin` is checked; its tenant is found as `tenant.rs`
/// finds it (the check sees the request's head, not its extensions).
fn cors(origins: fn(&TenantSettings) -> &Vec<String>, tenants: Arc<dyn TenantDirectory>, trusted: Vec<IpNet>) -> Cors {
    Cors::default()
        .supports_credentials()
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_any_header()
        .block_on_origin_mismatch(false)
        .max_age(3600)
        .allowed_origin_fn(move |origin, head| {
            let allowed = |tenant: &Tenant| origins(&tenant.settings).iter().any(|o| o.as_bytes() == origin.as_bytes());
            tenant::of_head(head, &*tenants, &trusted).is_some_and(|tenant| allowed(&tenant))
        })
}

/// 405 with `Allow`: the methods the path's template serves, as the table lists them.
async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let error = ApiError::method_not_allowed(format!("Method {} is not allowed on {}", req.method(), req.path()));
    let mut response = actix_web::ResponseError::error_response(&error);
    let allow = req.match_pattern().and_then(|pattern| allowed_methods(&pattern));
    if let Some(value) = allow.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

pub(crate) async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!("Cannot {} {}", req.method(), req.path())))
}

#[cfg(test)]
mod tests {
    use actix_web::dev::ResourceDef;

    use super::*;

    const GROUPS: [Group; 5] = [Group::Auth, Group::Store, Group::Probes, Group::Metrics, Group::Reference];

    #[test]
    fn each_route_has_one_path_in_its_scope_and_each_method_of_a_path_is_served_once() {
        let mut seen = std::collections::HashSet::new();
        for route in TABLE {
            let document = (route.operation)();
            assert_eq!(document.paths.paths.len(), 1, "a route is one operation");
            let (path, item) = document.paths.paths.iter().next().unwrap();
            let scope = route.group.scope();
            assert!(path.starts_with(&format!("{scope}/")), "{path} is not under its group's scope {scope:?}");
            assert!(!methods(item).is_empty(), "{path}: no method");
            for method in methods(item) {
                assert!(seen.insert((path.clone(), method.clone())), "{method} {path} is in the table twice");
            }
        }
    }

    /// A request to each path template (parameters filled in) reaches that template: no template
    /// tried before it in its group matches it too.
    #[test]
    fn no_path_hides_another() {
        for group in GROUPS {
            let plan = plan(group);
            for (path, _) in &plan {
                let request =
                    path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
                let first = plan.iter().find(|(other, _)| ResourceDef::new(*other).is_match(&request)).map(|(p, _)| *p);
                assert_eq!(first, Some(*path), "{request} reaches {first:?}, not {path}");
            }
        }
    }

    #[test]
    fn fixed_paths_of_auth_come_before_actor_and_provider() {
        let plan: Vec<&str> = plan(Group::Auth).into_iter().map(|(path, _)| path).collect();
        let at = |path: &str| plan.iter().position(|p| *p == path).unwrap();
        assert!(at("/auth/token/refresh") < at("/auth/{actor}/{provider}"));
        assert!(at("/auth/{actor}/providers") < at("/auth/{actor}/{provider}"));
    }

    #[test]
    fn allow_lists_the_methods_of_the_path_in_the_document_order() {
        assert_eq!(allowed_methods("/auth/session"), Some("POST, DELETE"));
        assert_eq!(allowed_methods("/store/customers/me"), Some("GET, POST"));
        assert_eq!(allowed_methods("/auth/{actor}/{provider}/callback"), Some("GET, POST"));
        assert_eq!(allowed_methods("/metrics"), Some("GET"));
        assert_eq!(allowed_methods("/nope"), None);
    }
}
