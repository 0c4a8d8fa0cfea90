//! `JwksCache`: a tenant's JWKS, fetched from its URL and kept as `Cache-Control: max-age` says,
//! turned into an `auth_verify::Verifier`.
//!
//! - Fresh keys are used as they are: no request per token.
//! - Once `max-age` has elapsed (5 minutes when the answer has none), the next token fetches the
//!   set again, conditionally (`If-None-Match` with the `ETag`: a `304` keeps the keys).
//! - A token whose `kid` the set lacks (a key published after the fetch, or a forged `kid`)
//!   fetches it again at once, but at most once a minute: a stream of made-up `kid`s costs the
//!   issuer one request a minute, not one per token.
//! - A fetch that fails keeps the keys held (they verified a moment ago) and is tried again
//!   10 seconds later; without keys, the caller gets the error (the service answers 503).
//!
//! One fetch at a time: concurrent requests wait for it rather than each fetching. The clock
//! and the HTTP client are parameters, so that the tests drive time and answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_verify::{KeySet, Verifier, VerifierSettings};

/// How long a JWKS answered without `max-age` is kept.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The shortest and longest time a JWKS is kept, whatever the answer says (`no-store`,
/// `max-age=0`: one second, not a request per token).
pub const MIN_MAX_AGE: Duration = Duration::from_secs(1);
pub const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);
/// At most one fetch a minute for a `kid` the set lacks.
pub const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, the keys held are used this long before the next attempt.
pub const RETRY_AFTER_ERROR: Duration = Duration::from_secs(10);

/// An answer of the JWKS URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// `200`: the document, how long it may be kept (`Cache-Control: max-age`, `None` without
    /// one) and its `ETag`.
    Document { body: String, max_age: Option<Duration>, etag: Option<String> },
    /// `304`: the document held is current; kept for `max_age` more.
    NotModified { max_age: Option<Duration> },
}

/// Fetches the JWKS: `GET url`, with `If-None-Match: etag` when one is given.
pub trait Fetcher: Send + Sync {
    fn fetch(&self, url: &str, etag: Option<&str>) -> Result<Fetched, String>;
}

/// The monotonic clock of the cache.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// `Fetcher` over HTTP(S) with `ureq`.
#[derive(Debug)]
pub struct HttpFetcher {
    agent: ureq::Agent,
}

impl Default for HttpFetcher {
    fn default() -> HttpFetcher {
        HttpFetcher { agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).redirects(0).build() }
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, etag: Option<&str>) -> Result<Fetched, String> {
        let mut request = self.agent.get(url).set("accept", "application/json");
        if let Some(etag) = etag {
            request = request.set("if-none-match", etag);
        }
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(status, _)) => return Err(format!("GET {url}: HTTP {status}")),
            Err(e) => return Err(format!("GET {url}: {e}")),
        };
        let max_age = max_age(response.header("cache-control"));
        match response.status() {
            304 => Ok(Fetched::NotModified { max_age }),
            200 => {
                let etag = response.header("etag").map(str::to_string);
                let body = response.into_string().map_err(|e| format!("GET {url}: reading the body: {e}"))?;
                Ok(Fetched::Document { body, max_age, etag })
            }
            status => Err(format!("GET {url}: HTTP {status}")),
        }
    }
}

/// The `max-age` of a `Cache-Control` header; zero with `no-store` or `no-cache`; `None` when
/// there is no header or it says neither.
pub fn max_age(cache_control: Option<&str>) -> Option<Duration> {
    let mut found = None;
    for directive in cache_control?.split(',') {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value.and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs).or(found);
        }
    }
    found
}

/// Why there is no verifier to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no JWKS: {}", self.0)
    }
}

struct Held {
    verifier: Option<Arc<Verifier>>,
    etag: Option<String>,
    /// Fetched again once this passes.
    fresh_until: Option<Instant>,
    /// The last fetch made for an unknown `kid`.
    last_unknown_kid_fetch: Option<Instant>,
}

/// A tenant's JWKS, cached (see the module's documentation).
pub struct JwksCache<F = HttpFetcher, C = SystemClock> {
    url: String,
    settings: VerifierSettings,
    fetcher: F,
    clock: C,
    held: Mutex<Held>,
    fetches: AtomicU64,
}

impl<F, C> std::fmt::Debug for JwksCache<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url)
            .field("fetches", &self.fetches.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl<F: Fetcher, C: Clock> JwksCache<F, C> {
    pub fn new(url: impl Into<String>, settings: VerifierSettings, fetcher: F, clock: C) -> Self {
        JwksCache {
            url: url.into(),
            settings,
            fetcher,
            clock,
            held: Mutex::new(Held { verifier: None, etag: None, fresh_until: None, last_unknown_kid_fetch: None }),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many requests the cache has made to the JWKS URL.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The verifier to use for a token whose header names `kid` (`auth_verify::kid_of`): the keys
    /// held, fetched again first when they are stale, or when they lack `kid` and no such fetch
    /// was made in the last minute.
    pub fn verifier_for(&self, kid: Option<&str>) -> Result<Arc<Verifier>, Unavailable> {
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = self.clock.now();
        let stale = held.fresh_until.is_none_or(|until| now >= until);
        let unknown = match (&held.verifier, kid) {
            (Some(verifier), Some(kid)) => !verifier.keys().contains(kid),
            _ => false,
        };
        let may_look_for_kid =
            unknown && held.last_unknown_kid_fetch.is_none_or(|at| now.duration_since(at) >= UNKNOWN_KID_INTERVAL);
        if stale || may_look_for_kid {
            if !stale {
                held.last_unknown_kid_fetch = Some(now);
            }
            if let Err(e) = self.fetch(&mut held, now) {
                match &held.verifier {
                    None => return Err(Unavailable(e)),
                    Some(_) => {
                        println!("JWKS fetch failed, using the keys held: {e}");
                        // Stale: tried again in a while, not on every token meanwhile.
                        if stale {
                            held.fresh_until = Some(now + RETRY_AFTER_ERROR);
                        }
                    }
                }
            }
        }
        held.verifier.clone().ok_or_else(|| Unavailable("never fetched".into()))
    }

    fn fetch(&self, held: &mut Held, now: Instant) -> Result<(), String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let etag = held.verifier.as_ref().and(held.etag.as_deref());
        match self.fetcher.fetch(&self.url, etag)? {
            Fetched::Document { body, max_age, etag } => {
                let keys = KeySet::from_json(&body).map_err(|e| e.to_string())?;
                let max_age = kept_for(max_age);
                println!("fetched JWKS ({} keys, max-age {}s)", keys.len(), max_age.as_secs());
                if keys.ignored() > 0 {
                    println!("JWKS: {} keys ignored (not EdDSA/Ed25519 or ES256/P-256 signing keys)", keys.ignored());
                }
                held.verifier = Some(Arc::new(Verifier::new(keys, self.settings.clone())));
                held.etag = etag;
                held.fresh_until = Some(now + max_age);
            }
            Fetched::NotModified { max_age } => {
                let max_age = kept_for(max_age);
                let keys = held.verifier.as_ref().map_or(0, |v| v.keys().len());
                println!("JWKS not modified ({keys} keys, max-age {}s)", max_age.as_secs());
                held.fresh_until = Some(now + max_age);
            }
        }
        Ok(())
    }
}

/// How long an answer is kept: its `max-age`, within bounds, or the default.
fn kept_for(max_age: Option<Duration>) -> Duration {
    max_age.unwrap_or(DEFAULT_MAX_AGE).clamp(MIN_MAX_AGE, MAX_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A clock the test moves.
    #[derive(Clone)]
    struct TestClock(Arc<Mutex<Instant>>);

    impl TestClock {
        fn new() -> TestClock {
            TestClock(Arc::new(Mutex::new(Instant::now())))
        }

        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    /// Answers in turn (the last one again once they run out), and records each request.
    #[derive(Clone, Default)]
    struct TestFetcher {
        answers: Arc<Mutex<VecDeque<Result<Fetched, String>>>>,
        requests: Arc<Mutex<Vec<Option<String>>>>,
    }

    impl TestFetcher {
        fn answering(answers: Vec<Result<Fetched, String>>) -> TestFetcher {
            TestFetcher { answers: Arc::new(Mutex::new(answers.into())), ..Default::default() }
        }

        fn requests(&self) -> Vec<Option<String>> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Fetcher for TestFetcher {
        fn fetch(&self, url: &str, etag: Option<&str>) -> Result<Fetched, String> {
            assert_eq!(url, URL);
            self.requests.lock().unwrap().push(etag.map(str::to_string));
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.pop_front().unwrap()
            } else {
                answers.front().cloned().unwrap()
            }
        }
    }

    const URL: &str = "https://acme.api.myxclade.com/.well-known/jwks.json";

    /// A JWKS of Ed25519 keys (public keys of no one: the cache never verifies here).
    fn jwks(kids: &[&str]) -> String {
        // 32 bytes, base64url.
        let x = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk";
        let keys: Vec<serde_json::Value> = kids
            .iter()
            .map(|kid| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}))
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    fn document(kids: &[&str], max_age: Option<u64>) -> Result<Fetched, String> {
        Ok(Fetched::Document {
            body: jwks(kids),
            max_age: max_age.map(Duration::from_secs),
            etag: Some(format!("\"{}\"", kids.join("-"))),
        })
    }

    fn cache(fetcher: &TestFetcher, clock: &TestClock) -> JwksCache<TestFetcher, TestClock> {
        JwksCache::new(URL, VerifierSettings::new("https://acme.api.myxclade.com"), fetcher.clone(), clock.clone())
    }

    fn kids(verifier: &Verifier) -> Vec<String> {
        verifier.keys().kids().into_iter().map(str::to_string).collect()
    }

    #[test]
    fn max_age_is_honoured() {
        let (clock, fetcher) = (
            TestClock::new(),
            TestFetcher::answering(vec![document(&["k1"], Some(120)), document(&["k2"], Some(120))]),
        );
        let cache = cache(&fetcher, &clock);
        for _ in 0..5 {
            assert_eq!(kids(&cache.verifier_for(Some("k1")).unwrap()), ["k1"]);
            clock.advance(Duration::from_secs(23));
        }
        assert_eq!(cache.fetches(), 1, "115 s < max-age 120 s: one fetch");
        clock.advance(Duration::from_secs(5));
        assert_eq!(kids(&cache.verifier_for(Some("k2")).unwrap()), ["k2"], "120 s: fetched again");
        assert_eq!(cache.fetches(), 2);
        // The second fetch is conditional, with the ETag of the first.
        assert_eq!(fetcher.requests(), [None, Some("\"k1\"".to_string())]);
    }

    #[test]
    fn without_max_age_the_set_is_kept_five_minutes_and_a_304_keeps_it_longer() {
        let (clock, fetcher) = (
            TestClock::new(),
            TestFetcher::answering(vec![
                document(&["k1"], None),
                Ok(Fetched::NotModified { max_age: Some(Duration::from_secs(60)) }),
                document(&["k2"], Some(0)),
            ]),
        );
        let cache = cache(&fetcher, &clock);
        cache.verifier_for(None).unwrap();
        clock.advance(Duration::from_secs(299));
        cache.verifier_for(None).unwrap();
        assert_eq!(cache.fetches(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(kids(&cache.verifier_for(None).unwrap()), ["k1"], "304: the keys held");
        assert_eq!(cache.fetches(), 2);
        clock.advance(Duration::from_secs(59));
        cache.verifier_for(None).unwrap();
        assert_eq!(cache.fetches(), 2, "the 304's max-age");
        clock.advance(Duration::from_secs(1));
        assert_eq!(kids(&cache.verifier_for(None).unwrap()), ["k2"]);
        // max-age=0 is kept one second, not fetched for each token.
        cache.verifier_for(None).unwrap();
        assert_eq!(cache.fetches(), 3);
        clock.advance(Duration::from_secs(1));
        cache.verifier_for(None).unwrap();
        assert_eq!(cache.fetches(), 4);
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_once_a_minute() {
        let (clock, fetcher) = (
            TestClock::new(),
            TestFetcher::answering(vec![
                document(&["k1"], Some(600)),
                document(&["k1"], Some(600)),
                document(&["k1", "k2"], Some(600)),
            ]),
        );
        let cache = cache(&fetcher, &clock);
        cache.verifier_for(Some("k1")).unwrap();
        assert_eq!(cache.fetches(), 1);
        // A made-up kid: one fetch, then none for a minute, however many tokens name it.
        assert_eq!(kids(&cache.verifier_for(Some("forged")).unwrap()), ["k1"]);
        assert_eq!(cache.fetches(), 2);
        for _ in 0..100 {
            cache.verifier_for(Some("forged")).unwrap();
            cache.verifier_for(Some("k2")).unwrap();
            clock.advance(Duration::from_millis(500));
        }
        assert_eq!(cache.fetches(), 2, "50 s of unknown kids: no other fetch");
        clock.advance(Duration::from_secs(10));
        // A minute after: the set is fetched again, and now has k2.
        assert_eq!(kids(&cache.verifier_for(Some("k2")).unwrap()), ["k1", "k2"]);
        assert_eq!(cache.fetches(), 3);
        // A known kid never fetches before max-age.
        for _ in 0..10 {
            cache.verifier_for(Some("k2")).unwrap();
            cache.verifier_for(Some("k1")).unwrap();
        }
        assert_eq!(cache.fetches(), 3);
    }

    #[test]
    fn a_failed_fetch_keeps_the_keys_held_and_is_retried_later() {
        let (clock, fetcher) = (
            TestClock::new(),
            TestFetcher::answering(vec![
                Err("connection refused".into()),
                document(&["k1"], Some(60)),
                Err("HTTP 502".into()),
                document(&["k2"], Some(60)),
            ]),
        );
        let cache = cache(&fetcher, &clock);
        assert_eq!(cache.verifier_for(Some("k1")).unwrap_err(), Unavailable("connection refused".into()));
        assert_eq!(kids(&cache.verifier_for(Some("k1")).unwrap()), ["k1"], "the next token tries again");
        clock.advance(Duration::from_secs(60));
        assert_eq!(kids(&cache.verifier_for(Some("k1")).unwrap()), ["k1"], "502: the keys held");
        assert_eq!(cache.fetches(), 3);
        clock.advance(RETRY_AFTER_ERROR - Duration::from_secs(1));
        cache.verifier_for(Some("k1")).unwrap();
        assert_eq!(cache.fetches(), 3);
        clock.advance(Duration::from_secs(1));
        assert_eq!(kids(&cache.verifier_for(Some("k1")).unwrap()), ["k2"]);
        assert_eq!(cache.fetches(), 4);
    }

    #[test]
    fn cache_control_is_read() {
        let secs = |s: u64| Some(Duration::from_secs(s));
        assert_eq!(max_age(Some("public, max-age=600")), secs(600));
        assert_eq!(max_age(Some("Max-Age = \"30\", public")), secs(30));
        assert_eq!(max_age(Some("max-age=60, no-cache")), secs(0));
        assert_eq!(max_age(Some("no-store")), secs(0));
        assert_eq!(max_age(Some("public")), None);
        assert_eq!(max_age(Some("max-age=soon")), None);
        assert_eq!(max_age(None), None);
        assert_eq!(kept_for(None), DEFAULT_MAX_AGE);
        assert_eq!(kept_for(secs(0)), MIN_MAX_AGE);
        assert_eq!(kept_for(secs(10_000_000)), MAX_MAX_AGE);
    }
}
