//! An orders service that accepts Xclade Auth tokens: `GET /orders/mine` answers the customer
//! the bearer token names, verified locally with `auth-verify` and the tenant's JWKS (cached as
//! its `Cache-Control` says: `jwks.rs`). Xclade Auth is not called per request.
//!
//! Configuration (environment):
//!
//! - `XCLADE_ISSUER` (required): the tenant's base URL, e.g. `https://acme.api.myxclade.com`,
//!   the `iss` its tokens must carry.
//! - `XCLADE_JWKS_URL`: where its keys are; default `$XCLADE_ISSUER/.well-known/jwks.json`.
//! - `XCLADE_TENANT`: when set, the `tenant` claim must be this.
//! - `XCLADE_AUDIENCE`: when set, the `aud` claim must contain it (Xclade sets none today).
//! - `XCLADE_LEEWAY`: tolerated clock skew in seconds (default 30).
//! - `PORT` (default 8080; `0` picks a free one), on 127.0.0.1 (`HOST` to change it).
//!
//! Routes: `GET /orders/mine` (401 without a valid token, 403 for a token that is not a
//! customer's, 503 when the keys cannot be fetched, else 200 `{"customer_id", "tenant"}`);
//! `GET /debug/jwks-fetches`: how many times the JWKS was requested (plain number).

mod jwks;

use std::time::{Duration, SystemTime};

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use auth_verify::{kid_of, VerifierSettings};
use serde_json::json;

use jwks::JwksCache;

struct Config {
    host: String,
    port: u16,
    jwks_url: String,
    settings: VerifierSettings,
}

fn config() -> Result<Config, String> {
    let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let issuer = var("XCLADE_ISSUER").ok_or("XCLADE_ISSUER is required (the tenant's base URL)")?;
    // The server writes the base URL without a trailing slash.
    let issuer = issuer.trim_end_matches('/').to_string();
    let jwks_url = var("XCLADE_JWKS_URL").unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
    let number = |name: &str, default: u64| match var(name) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|_| format!("{name}={v:?} is not a number")),
    };
    let port = u16::try_from(number("PORT", 8080)?).map_err(|_| "PORT is not a port".to_string())?;
    Ok(Config {
        host: var("HOST").unwrap_or_else(|| "127.0.0.1".into()),
        port,
        jwks_url,
        settings: VerifierSettings {
            issuer,
            audience: var("XCLADE_AUDIENCE"),
            leeway: Duration::from_secs(number("XCLADE_LEEWAY", 30)?),
            tenant: var("XCLADE_TENANT"),
        },
    })
}

fn unauthorized(challenge: &'static str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .json(json!({"message": "Unauthorized"}))
}

async fn my_orders(req: HttpRequest, cache: web::Data<JwksCache>) -> HttpResponse {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized("Bearer");
    };
    // The cache may fetch (blocking HTTP): off the async workers.
    let verified = web::block(move || {
        let verifier = cache.verifier_for(kid_of(&token).as_deref())?;
        Ok::<_, jwks::Unavailable>(verifier.verify(&token, SystemTime::now()))
    })
    .await;
    match verified {
        Ok(Ok(Ok(claims))) if claims.actor_type == "customer" && !claims.actor_id.is_empty() => {
            HttpResponse::Ok().json(json!({"customer_id": claims.actor_id, "tenant": claims.tenant}))
        }
        // A valid token of an admin user, or of an identity whose customer is not created yet.
        Ok(Ok(Ok(_))) => HttpResponse::Forbidden().json(json!({"message": "Only a customer has orders"})),
        Ok(Ok(Err(rejection))) => {
            println!("refused a token: {rejection}");
            unauthorized(r#"Bearer error="invalid_token""#)
        }
        Ok(Err(unavailable)) => {
            println!("{unavailable}");
            HttpResponse::ServiceUnavailable().json(json!({"message": "Tokens cannot be verified right now"}))
        }
        Err(_) => HttpResponse::InternalServerError().json(json!({"message": "Internal error"})),
    }
}

async fn jwks_fetches(cache: web::Data<JwksCache>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body(cache.fetches().to_string())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let config = match config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration: {e}");
            std::process::exit(2);
        }
    };
    println!("verifying tokens of {} with the keys of {}", config.settings.issuer, config.jwks_url);
    let cache = web::Data::new(JwksCache::new(
        config.jwks_url,
        config.settings,
        jwks::HttpFetcher::default(),
        jwks::SystemClock,
    ));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(cache.clone())
            .route("/orders/mine", web::get().to(my_orders))
            .route("/debug/jwks-fetches", web::get().to(jwks_fetches))
    })
    .workers(2)
    .bind((config.host.as_str(), config.port))?;
    let port = server.addrs().first().map_or(config.port, |a| a.port());
    println!("listening on http://{}:{port}", config.host);
    server.run().await
}
