use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(cors_answers_preflights_per_prefix);

const STOREFRONT: &str = "http://localhost:8000";
const SHOP: &str = "https://shop.example";

fn cors_answers_preflights_per_prefix(backend: Backend) {
    let Some(app) =
        TestApp::spawn_with(backend, &[("AUTH_CORS", STOREFRONT), ("STORE_CORS", &format!("{STOREFRONT},{SHOP}"))])
    else {
        return;
    };
    let preflight = |path: &str, origin: &str| {
        app.request(
            "OPTIONS",
            path,
            None,
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type,x-medusa-locale,x-publishable-api-key,authorization"),
            ],
        )
    };
    let r = preflight("/auth/customer/emailpass", STOREFRONT);
    assert!(r.status == 200 || r.status == 204, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(STOREFRONT));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let allowed = r.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    for h in ["content-type", "x-medusa-locale", "x-publishable-api-key", "authorization"] {
        assert!(allowed.contains(h), "{h} not echoed: {allowed}");
    }
    // /store has its own origins.
    let r = preflight("/store/customers", SHOP);
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    let r = preflight("/auth/token/refresh", SHOP);
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
    // Actual requests carry the headers for allowed origins and are served for the others.
    let r = app.request("GET", "/auth/customer/providers", None, &[("origin", STOREFRONT)]);
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some(STOREFRONT)));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let r = app.request("GET", "/auth/customer/providers", None, &[("origin", "https://evil.example")]);
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, None));
    // The JSON form of a 401 keeps the CORS headers, so a browser can read it.
    let r = app.request("GET", "/store/customers/me", None, &[("origin", SHOP), ("accept", "application/json")]);
    assert_eq!((r.status, r.content_type.as_str()), (401, "application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}
