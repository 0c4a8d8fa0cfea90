//! The request id: taken from `x-request-id` when the client (or the load balancer) sends a
//! well-formed one, generated otherwise; echoed on the response and available to every log line
//! written while the request is served, on the worker thread (a task-local) and on the blocking
//! pool (a thread-local set around each use case, see `state`).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client; a longer one is replaced.
const MAX_LEN: usize = 128;

/// A request's id, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The client's id when it is 1-128 characters of `A-Z a-z 0-9 - _ . : / + =` (so it is
    /// safe in a log line and a header), a new one otherwise.
    pub fn from_header(value: Option<&HeaderValue>) -> RequestId {
        value
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(is_id_byte))
            .map_or_else(RequestId::generate, |v| RequestId(v.into()))
    }

    /// A new id: a random per-process prefix and a counter, unique across instances in practice
    /// and cheaper than a random number per request.
    pub fn generate() -> RequestId {
        static PREFIX: OnceLock<String> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = PREFIX.get_or_init(|| {
            auth_domain::secret::random_hex(6).unwrap_or_else(|_| format!("{:012x}", std::process::id()))
        });
        RequestId(format!("{prefix}-{:08x}", COUNTER.fetch_add(1, Ordering::Relaxed)).into())
    }
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b)
}

tokio::task_local! {
    static TASK_ID: RequestId;
}

thread_local! {
    static THREAD_ID: RefCell<Option<RequestId>> = const { RefCell::new(None) };
}

/// The id of the request being served here, if any: the task's on a worker thread, the one set
/// by `on_this_thread` on a blocking-pool thread.
pub fn current() -> Option<RequestId> {
    TASK_ID.try_with(RequestId::clone).ok().or_else(|| THREAD_ID.with(|id| id.borrow().clone()))
}

/// `work`, to be spawned from a handler, carrying the current request's id with it.
pub fn carry<F: std::future::Future>(work: F) -> impl std::future::Future<Output = F::Output> {
    let id = current();
    async move {
        match id {
            Some(id) => TASK_ID.scope(id, work).await,
            None => work.await,
        }
    }
}

/// Runs `f` (on a blocking-pool thread) with `id` as the current request id.
pub fn on_this_thread<T>(id: Option<RequestId>, f: impl FnOnce() -> T) -> T {
    let previous = THREAD_ID.with(|slot| slot.replace(id));
    let out = f();
    THREAD_ID.with(|slot| *slot.borrow_mut() = previous);
    out
}

/// Middleware: assigns the id, serves the request with it as its task's id, and sets
/// `x-request-id` on the response (errors included).
pub async fn assign(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = RequestId::from_header(req.headers().get(REQUEST_ID));
    req.extensions_mut().insert(id.clone());
    let header = HeaderValue::from_str(id.as_str()).ok();
    let mut res = TASK_ID.scope(id, next.call(req)).await?;
    if let Some(value) = header {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_client_id_is_kept_and_anything_else_replaced() {
        let from = |v: &str| RequestId::from_header(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(from("abc-123_X.y:z").as_str(), "abc-123_X.y:z");
        for bad in ["", "has space", "quote\"", &"x".repeat(129), "new\tline"] {
            let id = from(bad);
            assert_ne!(id.as_str(), bad);
            assert!(id.as_str().bytes().all(is_id_byte));
        }
        assert_ne!(RequestId::generate(), RequestId::generate());
    }

    #[test]
    fn a_blocking_thread_gets_the_id_and_then_its_own_back() {
        assert_eq!(current(), None);
        let id = RequestId::generate();
        assert_eq!(on_this_thread(Some(id.clone()), current), Some(id));
        assert_eq!(current(), None);
    }
}
