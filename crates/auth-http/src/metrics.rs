//! Prometheus metrics (OpenMetrics text at `GET /metrics`, served by `routes/health.rs`): one
//! registry for the process, and the request middleware (`observe`).
//!
//! Labels carry only bounded, non-secret values: route templates (never the path a client
//! sent), methods, statuses, sink names, limit names, kinds. Gauges that describe state outside
//! the process (pool usage, event backlog) are refreshed by collectors run at each scrape.

use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::ApiError;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    sink: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// What the identity cache has done since the start (`set_identity_cache`).
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityCacheFigures {
    pub hits: u64,
    pub misses: u64,
    pub invalidations: u64,
    pub flushes: u64,
    pub entries: u64,
    pub serving: bool,
}

type Collector = Box<dyn Fn(&Metrics) + Send + Sync>;

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    hash_waiting: Gauge,
    hash_seconds: Histogram,
    rate_limited: Family<LimitLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    backlog: Family<SinkLabels, Gauge>,
    janitor_deleted: Family<KindLabels, Counter>,
    pool_connections: Family<PoolLabels, Gauge>,
    tenants: Family<StatusLabels, Gauge>,
    cache_lookups: Family<OutcomeLabels, Counter>,
    cache_invalidations: Counter,
    cache_flushes: Counter,
    cache_entries: Gauge,
    cache_serving: Gauge,
    collectors: Mutex<Vec<Collector>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("xclade_auth");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let in_flight = Gauge::default();
        let hash_waiting = Gauge::default();
        let hash_seconds = latency_histogram();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let backlog = Family::<SinkLabels, Gauge>::default();
        let janitor_deleted = Family::<KindLabels, Counter>::default();
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        let tenants = Family::<StatusLabels, Gauge>::default();
        let cache_lookups = Family::<OutcomeLabels, Counter>::default();
        let (cache_invalidations, cache_flushes) = (Counter::default(), Counter::default());
        let (cache_entries, cache_serving) = (Gauge::default(), Gauge::default());
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            request_seconds.clone(),
        );
        registry.register("http_requests_in_flight", "HTTP requests being served", in_flight.clone());
        registry.register(
            "password_hash_queue_depth",
            "Requests waiting for a password-hashing permit",
            hash_waiting.clone(),
        );
        registry.register(
            "password_hash_duration_seconds",
            "Time a use case that hashes a password runs once it has its permit",
            hash_seconds.clone(),
        );
        registry.register("rate_limit_rejections", "Requests refused with 429, by limit", rate_limited.clone());
        registry.register(
            "event_deliveries",
            "Delivery attempts by sink and outcome (delivered, failed, dead, expired)",
            deliveries.clone(),
        );
        registry.register(
            "event_backlog",
            "Deliveries waiting (pending or failed and due again), by sink",
            backlog.clone(),
        );
        registry.register("janitor_deleted", "Rows the janitor deleted, by kind", janitor_deleted.clone());
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (idle, in_use, max)",
            pool_connections.clone(),
        );
        registry.register("tenants", "Tenants in the directory, by status (active, disabled)", tenants.clone());
        registry.register(
            "identity_cache_lookups",
            "Identity lookups by outcome: hit (answered from memory) or miss (read from the database)",
            cache_lookups.clone(),
        );
        registry.register(
            "identity_cache_invalidations",
            "Identities forgotten because they changed (this instance's writes and other instances' notifications)",
            cache_invalidations.clone(),
        );
        registry.register(
            "identity_cache_flushes",
            "Times the identity cache was emptied (the change listener's connection failed or came back)",
            cache_flushes.clone(),
        );
        registry.register("identity_cache_entries", "Identities held in memory", cache_entries.clone());
        registry.register(
            "identity_cache_serving",
            "1 while identities are answered from memory; 0 while the change listener cannot hear changes",
            cache_serving.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            in_flight,
            hash_waiting,
            hash_seconds,
            rate_limited,
            deliveries,
            backlog,
            janitor_deleted,
            pool_connections,
            tenants,
            cache_lookups,
            cache_invalidations,
            cache_flushes,
            cache_entries,
            cache_serving,
            collectors: Mutex::new(Vec::new()),
        }
    }

    /// Adds a collector run before each scrape (it may read the database: scrapes run on the
    /// blocking pool).
    pub fn add_collector(&self, collector: impl Fn(&Metrics) + Send + Sync + 'static) {
        self.collectors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Box::new(collector));
    }

    /// Runs the collectors, then encodes every metric.
    pub fn render(&self) -> String {
        for collect in self.collectors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            collect(self);
        }
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn observe_request(&self, route: String, method: &'static str, status: u16, seconds: f64) {
        self.request_seconds.get_or_create(&RouteLabels { route: route.clone(), method }).observe(seconds);
        self.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    }

    /// A request now waits for a hashing permit; the guard ends the wait when dropped.
    pub fn hash_wait(&self) -> impl Drop + '_ {
        self.hash_waiting.inc();
        Decrement(&self.hash_waiting)
    }

    pub fn observe_hash(&self, seconds: f64) {
        self.hash_seconds.observe(seconds);
    }

    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited.get_or_create(&LimitLabels { limit }).inc();
    }

    pub fn delivered(&self, sink: &str, outcome: &'static str, count: u64) {
        self.deliveries.get_or_create(&DeliveryLabels { sink: sink.to_string(), outcome }).inc_by(count);
    }

    pub fn set_backlog(&self, sink: &str, waiting: i64) {
        self.backlog.get_or_create(&SinkLabels { sink: sink.to_string() }).set(waiting);
    }

    pub fn janitor_deleted(&self, kind: &'static str, count: u64) {
        self.janitor_deleted.get_or_create(&KindLabels { kind }).inc_by(count);
    }

    /// The tenants by status. No other series has a `tenant` label: the number of tenants has no
    /// bound, and a label per tenant on every route, method and status would multiply the series
    /// by it (docs/operations.md).
    pub fn set_tenants(&self, active: i64, disabled: i64) {
        for (status, value) in [("active", active), ("disabled", disabled)] {
            self.tenants.get_or_create(&StatusLabels { status }).set(value);
        }
    }

    /// The identity cache's figures, as it counts them (the counters move by the difference).
    pub fn set_identity_cache(&self, figures: IdentityCacheFigures) {
        let advance = |counter: &Counter, total: u64| {
            counter.inc_by(total.saturating_sub(counter.get()));
        };
        advance(&self.cache_lookups.get_or_create(&OutcomeLabels { outcome: "hit" }), figures.hits);
        advance(&self.cache_lookups.get_or_create(&OutcomeLabels { outcome: "miss" }), figures.misses);
        advance(&self.cache_invalidations, figures.invalidations);
        advance(&self.cache_flushes, figures.flushes);
        self.cache_entries.set(figures.entries as i64);
        self.cache_serving.set(i64::from(figures.serving));
    }

    pub fn set_pool(&self, idle: i64, in_use: i64, max: i64) {
        for (state, value) in [("idle", idle), ("in_use", in_use), ("max", max)] {
            self.pool_connections.get_or_create(&PoolLabels { state }).set(value);
        }
    }
}

struct Decrement<'a>(&'a Gauge);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A method as a label: the standard ones, anything else `other` (so a client cannot grow the
/// label set).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts every answer by route template and status, times it, and counts 429s by
/// the limit that refused them. Unmatched paths count as the route `unmatched`. It records into the
/// app data `web::Data<Metrics>` (the application registers `AppState::metrics` there), and does
/// nothing without it.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = method_label(req.method());
    let in_flight = metrics.as_ref().map(|m| {
        m.in_flight.inc();
        Decrement(&m.in_flight)
    });
    let res = next.call(req).await;
    drop(in_flight);
    if let Some(metrics) = metrics {
        let (route, status) = match &res {
            Ok(res) => {
                if let Some(limit) =
                    res.response().error().and_then(|e| e.as_error::<ApiError>()).and_then(ApiError::limit)
                {
                    metrics.rate_limited(limit);
                }
                (res.request().match_pattern(), res.status().as_u16())
            }
            Err(e) => (None, e.as_response_error().status_code().as_u16()),
        };
        let route = route.unwrap_or_else(|| "unmatched".to_string());
        metrics.observe_request(route, method, status, started.elapsed().as_secs_f64());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_bounded_labels() {
        let m = Metrics::new();
        m.observe_request("/auth/token/refresh".into(), "POST", 200, 0.001);
        m.rate_limited("client");
        m.delivered("webhook", "failed", 2);
        m.janitor_deleted("sessions", 3);
        m.add_collector(|m| m.set_pool(1, 2, 10));
        let text = m.render();
        for line in [
            r#"xclade_auth_http_requests_total{route="/auth/token/refresh",method="POST",status="200"} 1"#,
            r#"xclade_auth_rate_limit_rejections_total{limit="client"} 1"#,
            r#"xclade_auth_event_deliveries_total{sink="webhook",outcome="failed"} 2"#,
            r#"xclade_auth_janitor_deleted_total{kind="sessions"} 3"#,
            r#"xclade_auth_db_pool_connections{state="in_use"} 2"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
