//! Which tenant a request is for, decided once, before routing: the host the client asked for
//! (`Host`, or the `X-Forwarded-Host` that a trusted proxy set) goes to the `TenantDirectory`,
//! and the `Tenant` it answers goes into the request's extensions, where the request's context
//! (`context.rs`), the CORS check (`routes/table.rs`) and the publishable key check
//! (`routes/store.rs`) read it. A host that names no active tenant gets the same 404 whatever
//! the reason (`auth_domain::tenant::NO_SUCH_STORE`), before any route runs. The operations
//! routes (`/health`, `/ready`, `/metrics`) answer on any host.

use std::net::IpAddr;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::header::HOST;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use ipnet::IpNet;

use auth_domain::tenant::{Tenant, TenantDirectory};

use crate::{ApiError, AppState};

/// The paths served on any host: an orchestrator's probes and the scrape know no tenant.
const OPERATIONS: [&str; 3] = ["/health", "/ready", "/metrics"];

/// The middleware: resolves the tenant of every request but the operations routes.
pub(crate) async fn resolve(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    if OPERATIONS.contains(&req.path()) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    match state.tenants.resolve(requested_host(req.head(), &state.settings.trusted_proxies).as_deref()) {
        Ok(tenant) => {
            req.extensions_mut().insert(tenant);
            next.call(req).await.map(ServiceResponse::map_into_left_body)
        }
        Err(e) => Ok(req.error_response(ApiError::from(e)).map_into_right_body()),
    }
}

/// The tenant the middleware resolved for `req`.
pub(crate) fn of(req: &HttpRequest) -> Option<Tenant> {
    req.extensions().get::<Tenant>().cloned()
}

/// The tenant of a request seen by its head alone (the CORS check, which sees no extensions):
/// the same resolution as the middleware's.
pub(crate) fn of_head(head: &RequestHead, tenants: &dyn TenantDirectory, trusted_proxies: &[IpNet]) -> Option<Tenant> {
    tenants.resolve(requested_host(head, trusted_proxies).as_deref()).ok()
}

/// The host the client asked for: the last `X-Forwarded-Host` when the peer is a trusted proxy
/// (the value the proxy nearest to us wrote), otherwise `Host` (or the authority of an HTTP/2
/// request). `None` when there is none, or it is not visible ASCII.
fn requested_host(req: &RequestHead, trusted_proxies: &[IpNet]) -> Option<String> {
    let peer: Option<IpAddr> = req.peer_addr.map(|a| a.ip());
    let trusted = peer.is_some_and(|ip| {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        trusted_proxies.iter().any(|net| net.contains(&ip))
    });
    if trusted {
        let forwarded = req.headers().get_all("x-forwarded-host").last().and_then(|v| v.to_str().ok());
        if let Some(last) = forwarded.and_then(|v| v.rsplit(',').next()).map(str::trim).filter(|v| !v.is_empty()) {
            return Some(last.to_string());
        }
    }
    match req.headers().get(HOST) {
        Some(value) => value.to_str().ok().map(str::to_string),
        None => req.uri.authority().map(|a| a.as_str().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn host(peer: &str, headers: &[(&str, &str)], trusted: &[&str]) -> Option<String> {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        for (name, value) in headers {
            req = req.append_header((*name, *value));
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        requested_host(req.to_http_request().head(), &trusted)
    }

    #[test]
    fn forwarded_host_counts_only_from_a_trusted_proxy() {
        let headers = [("host", "internal:9000"), ("x-forwarded-host", "acme.api.myxclade.com")];
        assert_eq!(host("203.0.113.9:5000", &headers, &[]).as_deref(), Some("internal:9000"));
        assert_eq!(host("10.0.0.2:5000", &headers, &["10.0.0.0/8"]).as_deref(), Some("acme.api.myxclade.com"));
        let appended = [("host", "internal"), ("x-forwarded-host", "evil.api.myxclade.com, acme.api.myxclade.com")];
        assert_eq!(host("10.0.0.2:5000", &appended, &["10.0.0.0/8"]).as_deref(), Some("acme.api.myxclade.com"));
        assert_eq!(host("10.0.0.2:5000", &[("host", "a.example")], &["10.0.0.0/8"]).as_deref(), Some("a.example"));
    }
}
