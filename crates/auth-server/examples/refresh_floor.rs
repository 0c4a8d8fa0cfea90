//! The storage-free floor of a token refresh, for the benchmark suite (`bench/run.sh`).
//!
//! `POST /auth/token/refresh` verifies the bearer HS256 token with the service's own
//! `TokenCodec` and signs a new one from its claims, in the actix-web worker, with no database,
//! no blocking pool and no logging. Whatever Xclade Auth's real refresh costs above this is the
//! price of its storage, thread hops and middleware.
//!
//! ```text
//! cargo build --release --example refresh_floor -p auth-server
//! JWT_SECRET=... PORT=9100 target/release/examples/refresh_floor          # serve
//! JWT_SECRET=... target/release/examples/refresh_floor --token            # print a token
//! target/release/examples/refresh_floor --bench-hash 12 20                # bcrypt verify timing
//! ```
//!
//! Environment: `JWT_SECRET` (required to serve and for `--token`), `HOST` (127.0.0.1),
//! `PORT` (9100; 0 picks a free port, printed on stdout), `HTTP_WORKERS` (number of cores).
//!
//! `--bench-hash COST N` times N bcrypt verifications of a correct password at COST through
//! auth-domain's `PasswordHasher` (the code a login runs) on one thread and prints the median,
//! the mean and the minimum in milliseconds, of the elapsed time and (from
//! `/proc/thread-self/schedstat`, when available) of the thread's CPU time. On a busy machine
//! the elapsed time includes waiting for a core; the CPU time does not.

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{Duration, Utc};

use auth_domain::password::{Password, PasswordHasher};
use auth_domain::token::{AuthTokenInput, TokenCodec, TokenSettings};

fn codec(secret: &str) -> TokenCodec {
    TokenCodec::new(TokenSettings {
        secret: secret.as_bytes().to_vec(),
        previous_secrets: Vec::new(),
        auth_ttl: Duration::days(1),
        leeway: Duration::seconds(30),
    })
}

/// The claims of a signed-in customer, as the real service would put them in a token.
fn sample_input() -> AuthTokenInput {
    AuthTokenInput {
        actor_id: "cus_01JZ0000000000000000000000".into(),
        actor_type: "customer".into(),
        auth_identity_id: "authid_01JZ0000000000000000000000".into(),
        auth_provider: "emailpass".into(),
        app_metadata: serde_json::Map::new(),
        user_metadata: serde_json::Map::new(),
        stamp: "0123456789abcdef0123456789abcdef".into(),
        tenant: "default".into(),
    }
}

async fn refresh(codec: web::Data<TokenCodec>, req: HttpRequest) -> HttpResponse {
    let bearer =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = bearer else {
        return HttpResponse::Unauthorized().finish();
    };
    let now = Utc::now();
    let claims = match codec.verify_auth(token, now) {
        Ok(claims) => claims,
        Err(_) => return HttpResponse::Unauthorized().finish(),
    };
    let input = AuthTokenInput {
        actor_id: claims.actor_id,
        actor_type: claims.actor_type,
        auth_identity_id: claims.auth_identity_id,
        auth_provider: claims.auth_provider,
        app_metadata: claims.app_metadata,
        user_metadata: claims.user_metadata,
        stamp: claims.stamp,
        tenant: claims.tenant,
    };
    match codec.issue_auth(&input, now) {
        Ok(fresh) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "token": fresh })),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

fn secret() -> Result<String, String> {
    std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty()).ok_or_else(|| "JWT_SECRET is required".to_string())
}

fn serve() -> Result<(), String> {
    let codec = web::Data::new(codec(&secret()?));
    let host = env_or("HOST", "127.0.0.1");
    let port: u16 = env_or("PORT", "9100").parse().map_err(|e| format!("PORT: {e}"))?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let workers: usize =
        env_or("HTTP_WORKERS", &cores.to_string()).parse().map_err(|e| format!("HTTP_WORKERS: {e}"))?;
    let listener = TcpListener::bind((host.as_str(), port)).map_err(|e| format!("binding {host}:{port}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("listening on http://{host}:{bound}");
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new().app_data(codec.clone()).route("/auth/token/refresh", web::post().to(refresh))
        })
        .workers(workers.max(1))
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())
    })
}

fn mint() -> Result<(), String> {
    let token = codec(&secret()?).issue_auth(&sample_input(), Utc::now()).map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

/// CPU time of the calling thread in nanoseconds (the first field of
/// `/proc/thread-self/schedstat`), when the kernel provides it.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

fn median_mean_min(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len().max(1);
    let median = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
    let mean = values.iter().sum::<f64>() / n as f64;
    (median, mean, values.first().copied().unwrap_or(f64::NAN))
}

fn bench_hash(cost: &str, rounds: &str) -> Result<(), String> {
    let cost: u32 = cost.parse().map_err(|e| format!("COST: {e}"))?;
    let rounds: usize = rounds.parse::<usize>().map_err(|e| format!("N: {e}"))?.max(1);
    let hasher = PasswordHasher::new(cost).map_err(|e| e.to_string())?;
    // The dummy hash is computed in the background: not while the verifications are timed.
    hasher.wait_for_dummy();
    let password = Password::unchecked("correct horse battery staple".into());
    let hash = hasher.hash(&password).map_err(|e| e.to_string())?;
    let mut wall: Vec<f64> = Vec::with_capacity(rounds);
    let mut cpu: Vec<f64> = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let cpu_start = thread_cpu_ns();
        let start = Instant::now();
        let ok = hasher.verify(&password, &hash).matched();
        wall.push(start.elapsed().as_secs_f64() * 1000.0);
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu_ns()) {
            cpu.push(b.saturating_sub(a) as f64 / 1e6);
        }
        if !ok {
            return Err("the password did not verify".into());
        }
    }
    let (median, mean, min) = median_mean_min(&mut wall);
    print!("cost={cost} n={rounds} median_ms={median:.2} mean_ms={mean:.2} min_ms={min:.2}");
    if cpu.len() == rounds {
        let (median, mean, min) = median_mean_min(&mut cpu);
        print!(" cpu_median_ms={median:.2} cpu_mean_ms={mean:.2} cpu_min_ms={min:.2}");
    }
    println!();
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] => serve(),
        ["--token"] => mint(),
        ["--bench-hash", cost, rounds] => bench_hash(cost, rounds),
        _ => Err("usage: refresh_floor [--token | --bench-hash COST N]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refresh_floor: {e}");
            ExitCode::FAILURE
        }
    }
}
