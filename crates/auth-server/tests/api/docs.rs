//! `/openapi.json` and `/docs`: the document served is the committed snapshot, every operation it
//! lists is served and answers only what it documents (for requests without credentials), and
//! the reference page loads nothing from another host.
//!
//! The rule for "nothing from another host": every reference of the page and of what it loads
//! (`src`, `href`, `fetch(...)`, the initializer's `url:`, `import`, CSS `url(...)` and
//! `@import`) is a relative path that this server answers with 200, and this project's files (the
//! page and Swagger UI's initializer) contain no absolute URL (`http://`, `https://`) at all.
//! Swagger UI's bundle is the one file whose text is not scanned (see `VENDORED_UNSCANNED`): what
//! it loads is set by the initializer, which is checked, and the Content-Security-Policy of
//! `/docs`, also checked, has the browser refuse every other host whatever the bundle tries;
//! `just docs-screenshot` renders the page with every other host unreachable and fails on a
//! refusal of the policy.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};

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

/// The arguments of a style sheet's `url(...)`, quoted (with `\` escapes) or not, and the sheet
/// without them.
fn css_urls(css: &str) -> (Vec<String>, String) {
    let (mut urls, mut rest_of_sheet) = (Vec::new(), String::new());
    let mut rest = css;
    while let Some(at) = rest.find("url(") {
        rest_of_sheet.push_str(&rest[..at]);
        let arg = rest[at + 4..].trim_start();
        let (value, after) = match arg.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let mut end = None;
                let mut escaped = false;
                for (i, c) in arg.char_indices().skip(1) {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        c if c == q => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.expect("an unterminated url(\"...");
                (&arg[1..end], &arg[end + 1..])
            }
            _ => {
                let end = arg.find(')').expect("an unterminated url(...");
                (arg[..end].trim_end(), &arg[end..])
            }
        };
        urls.push(value.to_string());
        rest = after;
    }
    rest_of_sheet.push_str(rest);
    (urls, rest_of_sheet)
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

fn assert_no_absolute_url(name: &str, text: &str) {
    for scheme in ["http://", "https://"] {
        assert!(!text.contains(scheme), "{name} contains an absolute URL ({scheme}…): assets must be local");
    }
}

/// Swagger UI's bundle, served unchanged from the vendored copy (`utoipa-swagger-ui`); the only
/// file of the page whose text is not scanned. Its minified code holds absolute URLs in strings
/// that it does not load (XML and JSON Schema namespaces, the online validator's default, which
/// the initializer turns off, licence and error-decoder links, the link patterns of its Markdown
/// renderer) and calls `fetch` and `XMLHttpRequest` with computed URLs, so a scan could only be a
/// list of exceptions to keep up with each upgrade. It is still referenced by the page and
/// served from here with 200 and the page's policy (checked), and the browser holds it to the
/// policy. Its style sheet, `/docs/swagger-ui.css`, is scanned like any other.
const VENDORED_UNSCANNED: [&str; 1] = ["/docs/swagger-ui-bundle.js"];

/// Every directive of the policy allows this origin, `data:` images or nothing: no host, no
/// scheme, no inline script or style, no `eval`.
fn assert_local_only_policy(name: &str, csp: &str) {
    let directives: Vec<(String, Vec<String>)> = csp
        .split(';')
        .map(|d| d.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|d| !d.is_empty())
        .map(|d| (d[0].clone(), d[1..].to_vec()))
        .collect();
    for (directive, sources) in &directives {
        for source in sources {
            let allowed = match source.as_str() {
                "'self'" | "'none'" => true,
                "data:" => directive == "img-src",
                _ => false,
            };
            assert!(allowed, "{name}: {directive} allows {source} ({csp:?})");
        }
    }
    let get = |name: &str| directives.iter().find(|(d, _)| d == name).map(|(_, s)| s.join(" "));
    for (directive, sources) in
        [("default-src", "'none'"), ("script-src", "'self'"), ("style-src", "'self'"), ("connect-src", "'self'")]
    {
        assert_eq!(get(directive).as_deref(), Some(sources), "{name}: {directive} in {csp:?}");
    }
    for directive in ["img-src", "base-uri", "form-action", "frame-ancestors"] {
        assert!(get(directive).is_some(), "{name}: {csp:?} lacks {directive}");
    }
}

#[test]
fn docs_page_loads_nothing_from_another_host() {
    let app = app();
    let page = app.request("GET", "/docs", None, &[]);
    assert_eq!((page.status, page.content_type.as_str()), (200, "text/html"));
    let csp = page.header("content-security-policy").expect("a Content-Security-Policy on /docs").to_string();
    assert_local_only_policy("/docs", &csp);
    assert_no_absolute_url("/docs", &page.text);
    // The policy refuses inline scripts: the page has none (every script is a file).
    assert_eq!(page.text.matches("<script").count(), page.text.matches("<script src=").count(), "/docs: inline script");

    let references: Vec<String> = ["src", "href"].iter().flat_map(|a| attribute_values(&page.text, a)).collect();
    let mut assets = Vec::new();
    for path in references.iter().filter_map(|r| local_path(r)) {
        let r = app.request("GET", &path, None, &[]);
        assert_eq!(r.status, 200, "{path} (referenced by /docs): {}", r.text);
        if r.content_type != "application/json" {
            assert_eq!(r.header("content-security-policy"), Some(csp.as_str()), "{path}: the policy of /docs");
        }
        assets.push((path, r));
    }
    for vendored in VENDORED_UNSCANNED {
        assert!(
            assets.iter().any(|(path, _)| path == vendored),
            "/docs no longer loads {vendored}: drop it from the list"
        );
    }

    // What the scripts and the style sheets load in turn.
    let mut kinds: Vec<String> = assets.iter().map(|(_, r)| r.content_type.clone()).collect();
    for (path, asset) in &assets {
        let nested: Vec<String> = match asset.content_type.as_str() {
            "text/javascript" if VENDORED_UNSCANNED.contains(&path.as_str()) => {
                assert!(asset.text.contains("SwaggerUIBundle"), "{path} is not Swagger UI's bundle");
                Vec::new()
            }
            "text/javascript" => {
                assert_no_absolute_url(path, &asset.text);
                assert!(!asset.text.contains("import(") && !asset.text.contains("import "), "{path} imports modules");
                for api in ["XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon", "importScripts"] {
                    assert!(!asset.text.contains(api), "{path} uses {api}: only fetch of local paths is checked");
                }
                // Swagger UI's options that name something to load: the document's `url` (checked
                // below like `fetch`), and the ones that this page must not set.
                for option in ["urls", "configUrl", "spec", "oauth2RedirectUrl"] {
                    for form in [format!("{option}:"), format!("\"{option}\"")] {
                        assert!(!asset.text.contains(&form), "{path} sets Swagger UI's {option}");
                    }
                }
                if asset.text.contains("SwaggerUIBundle(") {
                    assert!(asset.text.contains("validatorUrl: \"none\""), "{path}: the online validator is on");
                    assert!(asset.text.contains("queryConfigEnabled: false"), "{path}: the query string configures");
                }
                literals_after(&asset.text, "fetch(").into_iter().chain(literals_after(&asset.text, "url:")).collect()
            }
            "text/css" => {
                assert!(!asset.text.contains("@import"), "{path} imports style sheets");
                let (urls, rest) = css_urls(&asset.text);
                // Outside `url(...)` (whose `data:` SVGs hold XML namespaces), no absolute URL.
                assert_no_absolute_url(path, &rest);
                urls
            }
            _ => Vec::new(),
        };
        for reference in nested {
            let Some(target) = local_path(&reference) else { continue };
            let r = app.request("GET", &target, None, &[]);
            assert_eq!(r.status, 200, "{target} (loaded by {path}): {}", r.text);
            kinds.push(r.content_type.clone());
        }
    }
    for kind in ["text/javascript", "text/css", "application/json"] {
        assert!(kinds.iter().any(|k| k == kind), "/docs loads no {kind} ({kinds:?})");
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
