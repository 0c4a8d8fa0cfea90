//! `/openapi.json` and `/docs`: the document served is the committed snapshot, every operation it
//! lists is served and answers only what it documents (for requests without credentials), and
//! the reference page loads nothing from another host.
//!
//! The rule for "nothing from another host": the page and its assets are this project's own
//! files, so none of them may contain an absolute URL (`http://`, `https://` or `//host`) at all,
//! and every reference they make (`src`, `href`, `fetch(...)`, `import`, CSS `url(...)` and
//! `@import`) is a relative path that this server answers with 200. The Content-Security-Policy
//! of `/docs` makes the browser enforce the same, and `just docs-screenshot` renders the page with
//! every other host unreachable.

use serde_json::Value;

use crate::helpers::{Backend, Resp, TestApp};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

fn app() -> TestApp {
    TestApp::spawn(Backend::Sqlite).expect("SQLite needs no server")
}

#[test]
fn openapi_json_is_the_committed_document() {
    let app = app();
    let r = app.request("GET", "/openapi.json", None, &[]);
    assert_eq!((r.status, r.content_type.as_str()), (200, "application/json"));
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap();
    assert!(
        r.text == committed,
        "GET /openapi.json differs from docs/openapi.json: UPDATE_SNAPSHOTS=1 cargo test -p auth-http"
    );
    assert_eq!(r.json()["openapi"], "3.1.0");
}

/// Values of `attr="..."` (or `'...'`) in `html`.
fn attribute_values(html: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ['"', '\''] {
        let needle = format!("{attr}={quote}");
        let mut rest = html;
        while let Some(at) = rest.find(&needle) {
            let value = &rest[at + needle.len()..];
            let end = value.find(quote).unwrap();
            out.push(value[..end].to_string());
            rest = &value[end..];
        }
    }
    out
}

/// The string literal right after each `marker` (e.g. `fetch(`), skipping spaces.
fn literals_after(text: &str, marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let after = rest[at + marker.len()..].trim_start();
        let mut chars = after.chars();
        match chars.next() {
            Some(q @ ('"' | '\'' | '`')) => {
                let end = after[1..].find(q).unwrap();
                out.push(after[1..1 + end].to_string());
            }
            // A call with a computed argument cannot be checked: refuse it.
            Some(_) => out.push(format!("<not a literal: {}>", &after[..after.len().min(30)])),
            None => {}
        }
        rest = &rest[at + marker.len()..];
    }
    out
}

/// A reference of the page: `data:` and fragments stay in the page; anything else must be a
/// relative path, resolved against `/docs` (so `docs/x` is `/docs/x`).
fn local_path(reference: &str) -> Option<String> {
    if reference.starts_with('#') || reference.starts_with("data:") {
        return None;
    }
    assert!(
        !reference.contains("://") && !reference.starts_with("//") && !reference.starts_with('<'),
        "the page references {reference:?}, which is not a path on this server"
    );
    Some(if reference.starts_with('/') { reference.to_string() } else { format!("/{reference}") })
}

fn assert_no_absolute_url(name: &str, r: &Resp) {
    for scheme in ["http://", "https://"] {
        assert!(!r.text.contains(scheme), "{name} contains an absolute URL ({scheme}…): assets must be local");
    }
}

#[test]
fn docs_page_loads_nothing_from_another_host() {
    let app = app();
    let page = app.request("GET", "/docs", None, &[]);
    assert_eq!((page.status, page.content_type.as_str()), (200, "text/html"));
    let csp = page.header("content-security-policy").expect("a Content-Security-Policy on /docs");
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"] {
        assert!(csp.contains(directive), "{csp:?} lacks {directive:?}");
    }
    assert_no_absolute_url("/docs", &page);

    let mut references: Vec<String> = ["src", "href"].iter().flat_map(|a| attribute_values(&page.text, a)).collect();
    let mut assets = Vec::new();
    for path in references.drain(..).filter_map(|r| local_path(&r)) {
        let r = app.request("GET", &path, None, &[]);
        assert_eq!(r.status, 200, "{path} (referenced by /docs): {}", r.text);
        assets.push((path, r));
    }
    let kinds: Vec<&str> = assets.iter().map(|(_, r)| r.content_type.as_str()).collect();
    for kind in ["text/javascript", "text/css", "application/json"] {
        assert!(kinds.contains(&kind), "/docs references no {kind} ({kinds:?})");
    }

    // What the script and the style sheet load in turn.
    for (path, asset) in &assets {
        let nested: Vec<String> = match asset.content_type.as_str() {
            "text/javascript" => {
                assert_no_absolute_url(path, asset);
                assert!(!asset.text.contains("import(") && !asset.text.contains("import "), "{path} imports modules");
                for api in ["XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon", "importScripts"] {
                    assert!(!asset.text.contains(api), "{path} uses {api}: only fetch of local paths is checked");
                }
                literals_after(&asset.text, "fetch(")
            }
            "text/css" => {
                assert_no_absolute_url(path, asset);
                assert!(!asset.text.contains("@import"), "{path} imports style sheets");
                literals_after(&asset.text, "url(")
            }
            _ => Vec::new(),
        };
        for reference in nested {
            let Some(target) = local_path(&reference) else { continue };
            let r = app.request("GET", &target, None, &[]);
            assert_eq!(r.status, 200, "{target} (loaded by {path}): {}", r.text);
        }
    }
}

/// Every operation of the document is served, and without credentials answers a status and a
/// content type that the document lists for it (schemathesis checks much more: `just
/// api-conformance`).
#[test]
fn every_documented_operation_is_served_and_answers_as_documented() {
    let app = app();
    let doc: Value = app.request("GET", "/openapi.json", None, &[]).json();
    let mut count = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = template.replace("{actor}", "customer").replace("{provider}", "emailpass");
        for (method, operation) in item.as_object().unwrap() {
            count += 1;
            let method = method.to_uppercase();
            let body = operation.get("requestBody").map(|_| "{}");
            for accept in ["application/json", "text/plain"] {
                let headers = [("content-type", "application/json"), ("accept", accept)];
                let r = app.request(&method, &path, body, &headers);
                let status = r.status.to_string();
                let documented = &operation["responses"][&status];
                assert!(!documented.is_null(), "{method} {path} (accept {accept}) answered {status}: {}", r.text);
                let response = match documented["$ref"].as_str() {
                    Some(target) => &doc["components"]["responses"][target.rsplit('/').next().unwrap()],
                    None => documented,
                };
                let media = r.content_type.as_str();
                assert!(
                    response["content"].get(media).is_some(),
                    "{method} {path} {status}: content type {media} is not documented"
                );
                for (header, spec) in response["headers"].as_object().into_iter().flatten() {
                    if spec["required"] == true {
                        assert!(r.header(&header.to_lowercase()).is_some(), "{method} {path} {status}: no {header}");
                    }
                }
            }
        }
    }
    assert!(count >= 20, "the document lists only {count} operations");
}
