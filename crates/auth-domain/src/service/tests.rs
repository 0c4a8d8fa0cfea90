//! Use cases over the in-memory ports.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::*;
use crate::delivery::{DispatchSettings, Dispatcher};
use crate::event::Envelope;
use crate::memory::MemoryStore;
use crate::model::CustomerFields;
use crate::password::PasswordPolicy;
use crate::ports::EventSink;
use crate::ports::{DeliveryStatus, EventOutbox, IdentityStore, ResetRequestStore};
use crate::secret::SecretBox;
use crate::tenant::{SingleTenant, TenantDirectory, TenantSettings};
use crate::token::{AuthClaims, TokenSettings};
use crate::TokenRejection;

#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

type Service = AuthService<Arc<MemoryStore>, Arc<TestClock>>;

struct Fixture {
    service: Service,
    store: Arc<MemoryStore>,
    clock: Arc<TestClock>,
    secrets: SecretBox,
}

fn fixture_with_cost(cost: u32) -> Fixture {
    let store = Arc::new(MemoryStore::default());
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let secrets = SecretBox::new(b"secret", &[]);
    let tokens = TokenCodec::new(TokenSettings {
        secret: b"secret".to_vec(),
        previous_secrets: vec![],
        auth_ttl: Duration::days(1),
        leeway: Duration::zero(),
    });
    let settings =
        AuthSettings { reset_ttl: Duration::minutes(15), session_ttl: Duration::hours(10), limits: Limits::default() };
    let hasher = PasswordHasher::new(cost).unwrap();
    let service = AuthService::new(store.clone(), clock.clone(), hasher, tokens, secrets.clone(), settings);
    Fixture { service, store, clock, secrets }
}

fn fixture() -> Fixture {
    fixture_with_cost(4)
}

/// The context of a request of the default tenant on `/auth/{actor_type}/emailpass/...` from
/// `client`.
fn context(actor_type: &str, client: &str) -> AuthContext {
    AuthContext {
        tenant: TenantId::default_tenant(),
        settings: tenant().settings,
        keys: tenant().keys,
        actor_type: ActorType::new(actor_type),
        provider: AuthProvider::emailpass(),
        client: client.into(),
    }
}

fn customer_at(client: &str) -> AuthContext {
    context("customer", client)
}

fn user_at(client: &str) -> AuthContext {
    context("user", client)
}

fn customer() -> AuthContext {
    customer_at("client")
}

/// The context of a request of the default tenant whose route names no actor type.
fn tenant() -> RequestContext {
    RequestContext::new(SingleTenant::new(tenant_settings()).resolve(None).unwrap())
}

/// The default tenant's settings here: customers and users, sink `test`.
fn tenant_settings() -> TenantSettings {
    TenantSettings {
        actor_types: vec!["customer".into(), "user".into()],
        password_policy: PasswordPolicy { min_length: 8, min_strength: 0 },
        event_sinks: vec!["test".into()],
        ..TenantSettings::basic()
    }
}

const PW: &str = "correct horse";

/// reset-password, then the reset worker's pass at once: the request recorded, then fulfilled.
fn reset_now(service: &Service, ctx: &AuthContext, identifier: &str, metadata: Map<String, Value>) {
    service.request_password_reset(ctx, identifier, metadata).unwrap();
    service
        .fulfil_reset_requests(&SingleTenant::new(tenant_settings()), Duration::zero(), Duration::minutes(1), 100)
        .unwrap();
}

impl Fixture {
    fn claims(&self, token: &str) -> AuthClaims {
        self.service.tokens().verify_auth(token, self.clock.now()).unwrap()
    }

    fn last_reset_token(&self) -> String {
        let event =
            self.store.lock().events.iter().rev().find(|e| e.name == crate::event::PASSWORD_RESET).cloned().unwrap();
        event.envelope(&self.secrets).unwrap().data["token"].as_str().unwrap().to_string()
    }

    fn request_reset(&self, identifier: &str) -> String {
        reset_now(&self.service, &customer(), identifier, Map::new());
        self.last_reset_token()
    }

    fn update(&self, token: &str, password: &str) -> Result<(), AuthError> {
        let claims = self.service.verify_reset_token(&customer(), token)?;
        self.service.update_password(&customer(), &claims, None, password.into())
    }
}

#[test]
fn register_then_login_issue_actorless_tokens() {
    let f = fixture();
    let token = f.service.register(&customer(), "Ann@Example.com", PW.into()).unwrap();
    let claims = f.claims(&token);
    assert_eq!(claims.actor_id, "");
    assert_eq!(claims.actor_type, "customer");
    assert!(claims.auth_identity_id.starts_with("authid_"));
    let login = f.service.login(&customer_at("127.0.0.1"), "  ann@EXAMPLE.com", PW.into()).unwrap();
    assert_eq!(f.claims(&login).auth_identity_id, claims.auth_identity_id);
}

#[test]
fn register_refuses_bad_input_and_changes_nothing() {
    let f = fixture();
    assert!(matches!(f.service.register(&customer(), "not-an-email", PW.into()), Err(AuthError::InvalidData(_))));
    assert!(matches!(f.service.register(&customer(), "a@b.c", "short".into()), Err(AuthError::InvalidData(_))));
    assert!(f.store.lock().identities.is_empty());
}

#[test]
fn register_again_is_idempotent_only_without_actor_and_with_the_same_password() {
    let f = fixture();
    let first = f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let again = f.service.register(&customer(), "A@B.C", PW.into()).unwrap();
    assert_eq!(f.claims(&first).auth_identity_id, f.claims(&again).auth_identity_id);
    let other = f.service.register(&customer(), "a@b.c", "another password".into());
    assert!(matches!(other, Err(AuthError::Unauthorized(m)) if m == IDENTITY_EXISTS));
    // Once an actor is linked, even the same password is refused.
    for (_, r) in f.store.lock().identities.values_mut() {
        r.app_metadata.insert("customer_id".into(), json!("cus_1"));
    }
    assert!(matches!(f.service.register(&customer(), "a@b.c", PW.into()), Err(AuthError::Unauthorized(_))));
}

#[test]
fn login_failures_look_alike() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    for (email, pw) in
        [("a@b.c", "wrong password"), ("nobody@b.c", PW), ("not an email", PW), ("a@b.c", &"x".repeat(100))]
    {
        match f.service.login(&customer_at("127.0.0.1"), email, pw.to_string()) {
            Err(AuthError::Unauthorized(m)) => assert_eq!(m, INVALID_CREDENTIALS),
            other => panic!("{email}: {other:?}"),
        }
    }
}

#[test]
fn login_carries_the_actor_of_the_route() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    for (_, r) in f.store.lock().identities.values_mut() {
        r.app_metadata.insert("customer_id".into(), json!("cus_1"));
    }
    let token = f.service.login(&customer_at("127.0.0.1"), "a@b.c", PW.into()).unwrap();
    assert_eq!(f.claims(&token).actor_id, "cus_1");
    let token = f.service.login(&user_at("127.0.0.1"), "a@b.c", PW.into()).unwrap();
    let claims = f.claims(&token);
    assert_eq!(claims.actor_id, "");
    assert_eq!(claims.app_metadata.get("customer_id"), Some(&json!("cus_1")));
}

#[test]
fn login_rehashes_a_hash_of_another_cost() {
    let f = fixture_with_cost(4);
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let stored = || f.store.lock().identities.values().next().unwrap().1.password_hash.clone();
    assert!(stored().starts_with("$2b$04$"));
    let g = Fixture {
        service: rebuild_with_cost(&f, 5),
        store: f.store.clone(),
        clock: f.clock.clone(),
        secrets: f.secrets.clone(),
    };
    g.service.login(&customer_at("127.0.0.1"), "a@b.c", PW.into()).unwrap();
    assert!(stored().starts_with("$2b$05$"));
    g.service.login(&customer_at("127.0.0.1"), "a@b.c", PW.into()).unwrap();
}

fn rebuild_with_cost(f: &Fixture, cost: u32) -> Service {
    AuthService::new(
        f.store.clone(),
        f.clock.clone(),
        PasswordHasher::new(cost).unwrap(),
        f.service.tokens().clone(),
        f.secrets.clone(),
        f.service.settings().clone(),
    )
}

#[test]
fn a_rehash_never_undoes_a_concurrent_change() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let (pid, old) = {
        let state = f.store.lock();
        let (_, r) = state.identities.values().next().unwrap();
        (r.provider_identity_id.clone(), r.password_hash.clone())
    };
    f.store.replace_password_hash_if(&TenantId::default_tenant(), &pid, &old, "$2b$04$changed", Utc::now()).unwrap();
    assert!(!f
        .store
        .replace_password_hash_if(&TenantId::default_tenant(), &pid, &old, "$2b$05$stale", Utc::now())
        .unwrap());
}

#[test]
fn reset_flow_consumes_the_token_once_and_revokes_old_tokens() {
    let f = fixture();
    let registration = f.service.register(&customer(), "Ann@b.c", PW.into()).unwrap();
    assert!(f.service.authenticate(&tenant(), &registration).is_ok());
    let reset = f.request_reset("ann@B.C");
    f.update(&reset, "a brand new secret").unwrap();
    assert!(matches!(
        f.update(&reset, "yet another secret"),
        Err(AuthError::Unauthenticated(TokenRejection::Consumed))
    ));
    assert!(matches!(
        f.service.authenticate(&tenant(), &registration),
        Err(AuthError::Unauthenticated(TokenRejection::Revoked))
    ));
    assert!(f.service.login(&customer_at("127.0.0.1"), "ann@b.c", PW.into()).is_err());
    assert!(f.service.login(&customer_at("127.0.0.1"), "ann@b.c", "a brand new secret".into()).is_ok());
    let names: Vec<String> = f.store.lock().events.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["auth.password_reset", "auth.password_changed"]);
    let changed = f.store.lock().events[1].clone();
    assert_eq!(changed.data["entity_id"], "Ann@b.c");
}

#[test]
fn a_reset_request_is_recorded_sealed_and_fulfilled_once() {
    let f = fixture();
    f.service.register(&customer(), "ann@b.c", PW.into()).unwrap();
    for who in ["ann@b.c", "nobody@b.c"] {
        f.service.request_password_reset(&customer(), who, Map::new()).unwrap();
    }
    {
        let state = f.store.lock();
        assert_eq!(state.reset_requests.len(), 2, "recorded alike, account or not");
        assert!(state.reset_requests.iter().all(|(r, _)| !r.sealed.contains("b.c")), "the identifier is sealed");
        assert!(state.events.is_empty(), "nothing done before the worker");
    }
    let directory = SingleTenant::new(tenant_settings());
    let (none, lease) = (Duration::zero(), Duration::minutes(1));
    assert_eq!(f.service.fulfil_reset_requests(&directory, Duration::seconds(1), lease, 10).unwrap(), 0, "too young");
    assert_eq!(f.service.fulfil_reset_requests(&directory, none, lease, 10).unwrap(), 2);
    assert_eq!(f.store.lock().events.len(), 1, "one event, for the account");
    assert!(f.store.lock().reset_requests.is_empty());
    assert_eq!(f.service.fulfil_reset_requests(&directory, none, lease, 10).unwrap(), 0);
    // A request held by a worker that died is taken again once its lease ends.
    f.clock.advance(Duration::seconds(61));
    f.service.request_password_reset(&customer(), "ann@b.c", Map::new()).unwrap();
    let now = f.clock.now();
    assert_eq!(f.store.claim_reset_requests(now, now, now + Duration::minutes(1), 10).unwrap().len(), 1);
    assert_eq!(f.service.fulfil_reset_requests(&directory, none, lease, 10).unwrap(), 0, "held");
    f.clock.advance(Duration::minutes(2));
    assert_eq!(f.service.fulfil_reset_requests(&directory, none, lease, 10).unwrap(), 1);
    assert_eq!(f.store.lock().events.len(), 2);
}

#[test]
fn reset_for_unknown_identifiers_does_nothing() {
    let f = fixture();
    reset_now(&f.service, &customer(), "nobody@b.c", Map::new());
    assert!(f.store.lock().events.is_empty());
}

#[test]
fn a_new_reset_request_replaces_the_old_token() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let first = f.request_reset("a@b.c");
    f.clock.advance(Duration::seconds(1));
    let second = f.request_reset("a@b.c");
    assert!(f.update(&first, "a brand new secret").is_err());
    assert!(f.update(&second, "a brand new secret").is_ok());
}

#[test]
fn refused_input_keeps_the_reset_token() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let token = f.request_reset("a@b.c");
    let claims = f.service.verify_reset_token(&customer(), &token).unwrap();
    assert!(matches!(
        f.service.update_password(&customer(), &claims, None, "short".into()),
        Err(AuthError::InvalidData(_))
    ));
    assert!(matches!(
        f.service.update_password(&customer(), &claims, Some("other@b.c"), "a brand new secret".into()),
        Err(AuthError::InvalidData(_))
    ));
    f.service.update_password(&customer(), &claims, Some("A@B.C"), "a brand new secret".into()).unwrap();
}

#[test]
fn reset_tokens_expire_and_stay_in_their_context() {
    let f = fixture();
    let auth = f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let token = f.request_reset("a@b.c");
    let user = user_at("client");
    assert!(f.service.verify_reset_token(&user, &token).is_err());
    assert!(f.service.verify_reset_token(&customer(), &auth).is_err(), "an auth token is no reset token");
    assert!(f.service.authenticate(&tenant(), &token).is_err(), "a reset token is no auth token");
    f.clock.advance(Duration::minutes(16));
    assert!(matches!(f.update(&token, "a brand new secret"), Err(AuthError::Unauthenticated(TokenRejection::Expired))));
}

#[test]
fn refresh_reads_the_current_state() {
    let f = fixture();
    let registration = f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    for (_, r) in f.store.lock().identities.values_mut() {
        r.app_metadata.insert("customer_id".into(), json!("cus_9"));
    }
    let caller = f.service.authenticate(&tenant(), &registration).unwrap();
    let refreshed = f.service.refresh(&tenant(), &caller).unwrap();
    assert_eq!(f.claims(&refreshed).actor_id, "cus_9");
}

#[test]
fn refresh_from_memory_answers_only_what_the_full_path_would_accept() {
    let f = fixture();
    let token = f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let fresh = f.service.refresh_from_memory(&tenant(), &token).expect("a valid token, its identity in memory");
    let full = f.service.refresh(&tenant(), &f.service.authenticate(&tenant(), &token).unwrap()).unwrap();
    let (a, b) = (f.claims(&fresh), f.claims(&full));
    assert_eq!((a.auth_identity_id, a.stamp, a.actor_type), (b.auth_identity_id, b.stamp, b.actor_type));
    assert!(f.service.refresh_from_memory(&tenant(), "not.a.token").is_none());
    let caller = f.service.authenticate(&tenant(), &token).unwrap();
    f.service.logout_all(&tenant(), &caller).unwrap();
    assert!(f.service.refresh_from_memory(&tenant(), &token).is_none(), "a revoked stamp is left to the full path");
    let other = RequestContext::new(crate::tenant::Tenant {
        id: TenantId::new("other"),
        status: crate::tenant::TenantStatus::Active,
        settings: Arc::new(tenant_settings()),
        keys: Arc::default(),
    });
    let token = f.service.login(&customer(), "a@b.c", PW.into()).unwrap();
    assert!(f.service.refresh_from_memory(&other, &token).is_none(), "another tenant's token");
}

#[test]
fn contexts_are_checked() {
    let f = fixture();
    let check = |actor: &str, provider: &str| f.service.auth_context(tenant(), actor, provider, "client".into());
    assert_eq!(check("customer", "emailpass").unwrap(), customer());
    assert!(matches!(check("admin", "emailpass"), Err(AuthError::NotAllowed(m)) if m.contains("admin")));
    assert!(matches!(check("customer", "google"), Err(AuthError::NotAllowed(m)) if m.contains("google")));
}

#[derive(Default)]
struct RecordingSink {
    fail: Mutex<bool>,
    received: Mutex<Vec<Envelope>>,
}

impl EventSink for RecordingSink {
    fn name(&self) -> &str {
        "test"
    }
    fn deliver(&self, envelope: &Envelope) -> Result<(), String> {
        if *self.fail.lock().unwrap() {
            return Err("receiver down".into());
        }
        self.received.lock().unwrap().push(envelope.clone());
        Ok(())
    }
}

fn dispatcher(f: &Fixture, sink: Arc<RecordingSink>) -> Dispatcher<Arc<MemoryStore>, Arc<TestClock>> {
    Dispatcher::new(
        f.store.clone(),
        f.clock.clone(),
        vec![sink],
        f.secrets.clone(),
        DispatchSettings {
            retry_initial: Duration::seconds(5),
            retry_max: Duration::minutes(10),
            max_attempts: 3,
            lease: Duration::minutes(1),
            batch: 10,
        },
    )
}

#[test]
fn the_dispatcher_delivers_retries_and_erases_the_secret() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let sink = Arc::new(RecordingSink::default());
    *sink.fail.lock().unwrap() = true;
    reset_now(&f.service, &customer(), "a@b.c", Map::from_iter([("k".to_string(), Value::from("v"))]));
    let d = dispatcher(&f, sink.clone());
    assert_eq!(d.run_pass().unwrap().failed, 1);
    assert_eq!(d.run_pass().unwrap().failed, 0, "not due before the retry delay");
    assert!(f.store.lock().events[0].sealed_secret.is_some());
    *sink.fail.lock().unwrap() = false;
    f.clock.advance(Duration::seconds(6));
    assert_eq!(d.run_pass().unwrap().delivered, 1);
    let received = sink.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].name, "auth.password_reset");
    assert_eq!(received[0].data["metadata"], json!({"k": "v"}));
    assert!(f.service.verify_reset_token(&customer(), received[0].data["token"].as_str().unwrap()).is_ok());
    assert!(f.store.lock().events[0].sealed_secret.is_none(), "erased once delivered");
}

#[test]
fn the_dispatcher_never_delivers_an_expired_token() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    reset_now(&f.service, &customer(), "a@b.c", Map::new());
    let sink = Arc::new(RecordingSink::default());
    f.clock.advance(Duration::minutes(16));
    let report = dispatcher(&f, sink.clone()).run_pass().unwrap();
    assert_eq!(report.expired, 1);
    assert!(sink.received.lock().unwrap().is_empty());
    assert!(f.store.lock().events[0].sealed_secret.is_none());
}

#[test]
fn sessions_open_replace_close_and_end_with_the_stamp() {
    let f = fixture();
    let token = f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let (first, claims) = f.service.open_session(&tenant(), &token, None).unwrap();
    assert_eq!(claims.actor_type, "customer");
    assert_eq!(f.service.authenticate_session(&tenant(), &first).unwrap().identity.entity_id, "a@b.c");
    let (second, _) = f.service.open_session(&tenant(), &token, Some(&first)).unwrap();
    assert!(f.service.authenticate_session(&tenant(), &first).is_err(), "replaced");
    // Session first, then bearer: a dead cookie does not spoil a good token.
    assert!(f.service.authenticate_any(&tenant(), Some(&first), Some(&token)).is_ok());
    assert!(f.service.authenticate_any(&tenant(), Some(&first), None).is_err());
    f.service.close_session(&tenant(), &second).unwrap();
    assert!(f.service.authenticate_session(&tenant(), &second).is_err());
    assert!(f.service.close_session(&tenant(), &second).is_err());
    let (third, _) = f.service.open_session(&tenant(), &token, None).unwrap();
    f.clock.advance(Duration::hours(11));
    assert!(f.service.authenticate_session(&tenant(), &third).is_err(), "expired");
}

#[test]
fn logout_all_and_change_password_revoke_everything() {
    let f = fixture();
    let token = f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let (session, _) = f.service.open_session(&tenant(), &token, None).unwrap();
    let caller = f.service.authenticate(&tenant(), &token).unwrap();
    f.service.logout_all(&tenant(), &caller).unwrap();
    assert!(f.service.authenticate(&tenant(), &token).is_err());
    assert!(f.service.authenticate_session(&tenant(), &session).is_err());

    let token = f.service.login(&customer_at("127.0.0.1"), "a@b.c", PW.into()).unwrap();
    let (session, _) = f.service.open_session(&tenant(), &token, None).unwrap();
    let caller = f.service.authenticate_session(&tenant(), &session).unwrap();
    let wrong = f.service.change_password(&customer(), &caller, "not it".into(), "a new passphrase".into());
    assert!(matches!(wrong, Err(AuthError::Unauthorized(m)) if m == INVALID_PASSWORD));
    let short = f.service.change_password(&customer(), &caller, PW.into(), "short".into());
    assert!(matches!(short, Err(AuthError::InvalidData(_))));
    let fresh = f.service.change_password(&customer(), &caller, PW.into(), "a new passphrase".into()).unwrap();
    assert!(f.service.authenticate(&tenant(), &fresh).is_ok(), "the caller gets a fresh token");
    assert!(f.service.authenticate(&tenant(), &token).is_err());
    assert!(f.service.authenticate_session(&tenant(), &session).is_err(), "the caller's session ends too");
    assert!(f.service.login(&customer_at("127.0.0.1"), "a@b.c", "a new passphrase".into()).is_ok());
    let user = user_at("client");
    assert!(f
        .service
        .change_password(&user, &f.service.authenticate(&tenant(), &fresh).unwrap(), "x".into(), "y".into())
        .is_err());
}

#[test]
fn customers_are_created_once_and_read_through_the_identity() {
    let f = fixture();
    let token = f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let caller = f.service.authenticate(&tenant(), &token).unwrap();
    assert!(matches!(f.service.current_customer(&tenant(), &caller), Err(AuthError::Unauthenticated(_))));
    let input = |email: Option<&str>| NewCustomerInput {
        email: email.map(str::to_string),
        fields: CustomerFields { first_name: Some(Some("Ann".into())), ..Default::default() },
    };
    assert!(matches!(f.service.create_customer(&tenant(), &caller, input(None)), Err(AuthError::InvalidData(_))));
    assert!(matches!(
        f.service.create_customer(&tenant(), &caller, input(Some("bad"))),
        Err(AuthError::InvalidData(_))
    ));
    let created = f.service.create_customer(&tenant(), &caller, input(Some("A@b.c"))).unwrap();
    assert!(created.id.starts_with("cus_") && created.has_account);
    assert_eq!(created.first_name.as_deref(), Some("Ann"));
    let again = f.service.create_customer(&tenant(), &caller, input(Some("a@b.c")));
    assert!(matches!(again, Err(AuthError::InvalidData(m)) if m == ALREADY_CUSTOMER));
    // The same registration token now reaches the customer (the actor is read from the database).
    let caller = f.service.authenticate(&tenant(), &token).unwrap();
    assert_eq!(f.service.current_customer(&tenant(), &caller).unwrap().id, created.id);
    let refreshed = f.service.refresh(&tenant(), &caller).unwrap();
    assert_eq!(f.claims(&refreshed).actor_id, created.id);
    let updated = f
        .service
        .update_current_customer(
            &tenant(),
            &caller,
            &CustomerFields { first_name: Some(None), phone: Some(Some("1".into())), ..Default::default() },
        )
        .unwrap();
    assert_eq!((updated.first_name, updated.phone.as_deref()), (None, Some("1")));
    // Another identity cannot take an address that is not its own, whether it has an account
    // or not; its own (in any case) it can.
    let other = f.service.register(&customer(), "other@b.c", PW.into()).unwrap();
    let other = f.service.authenticate(&tenant(), &other).unwrap();
    for address in ["A@B.C", "nobody@b.c"] {
        let refused = f.service.create_customer(&tenant(), &other, input(Some(address)));
        assert!(matches!(refused, Err(AuthError::InvalidData(m)) if m == CUSTOMER_EMAIL_MISMATCH), "{address}");
    }
    assert_eq!(f.service.create_customer(&tenant(), &other, input(Some(" Other@B.c "))).unwrap().email, "Other@B.c");
    // A user token is no customer.
    let user_id = f.service.create_user(&tenant(), "admin@b.c", PW.into()).unwrap();
    let admin = f
        .service
        .authenticate(&tenant(), &f.service.login(&user_at("127.0.0.1"), "admin@b.c", PW.into()).unwrap())
        .unwrap();
    assert_eq!(admin.actor_id(), user_id);
    assert!(matches!(f.service.current_customer(&tenant(), &admin), Err(AuthError::Unauthenticated(_))));
    assert!(matches!(
        f.service.create_customer(&tenant(), &admin, input(Some("x@b.c"))),
        Err(AuthError::Unauthenticated(_))
    ));
}

#[test]
fn the_dispatcher_gives_up_after_the_last_attempt_and_can_be_rearmed() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let sink = Arc::new(RecordingSink::default());
    *sink.fail.lock().unwrap() = true;
    reset_now(&f.service, &customer(), "a@b.c", Map::new());
    let d = dispatcher(&f, sink.clone());
    let mut reports = Vec::new();
    for _ in 0..3 {
        reports.push(d.run_pass().unwrap());
        f.clock.advance(Duration::seconds(30));
    }
    assert_eq!((reports[0].failed, reports[1].failed, reports[2].dead), (1, 1, 1));
    assert!(d.run_pass().unwrap().is_empty(), "a dead delivery is not retried");
    let dead = f.store.list_deliveries(Some(DeliveryStatus::Dead), 10).unwrap();
    assert_eq!((dead.len(), dead[0].attempts, dead[0].last_error.as_deref()), (1, 3, Some("receiver down")));
    *sink.fail.lock().unwrap() = false;
    assert_eq!(f.store.rearm(&dead[0].event_id, f.clock.now()).unwrap(), 1);
    assert_eq!(d.run_pass().unwrap().delivered, 1);
    assert_eq!(sink.received.lock().unwrap().len(), 1);
}

#[test]
fn a_claimed_delivery_is_not_claimed_again_before_its_lease_ends() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    reset_now(&f.service, &customer(), "a@b.c", Map::new());
    let now = f.clock.now();
    assert_eq!(f.store.claim_due(now, now + Duration::minutes(1), 10).unwrap().len(), 1);
    assert!(f.store.claim_due(now, now + Duration::minutes(1), 10).unwrap().is_empty());
    let later = now + Duration::minutes(2);
    assert_eq!(
        f.store.claim_due(later, later + Duration::minutes(1), 10).unwrap().len(),
        1,
        "a dead claimer's lease ends"
    );
}

fn limited(f: &Fixture) -> Service {
    let settings = AuthSettings {
        limits: Limits {
            per_client: crate::ratelimit::RateLimit { capacity: 3, window: Duration::minutes(1) },
            login_failures: crate::ratelimit::RateLimit { capacity: 2, window: Duration::minutes(10) },
            login_failures_account: crate::ratelimit::RateLimit { capacity: 3, window: Duration::hours(1) },
            reset_interval: Duration::seconds(60),
            device_cookie_ttl: Duration::days(30),
        },
        ..f.service.settings().clone()
    };
    AuthService::new(
        f.store.clone(),
        f.clock.clone(),
        PasswordHasher::new(4).unwrap(),
        f.service.tokens().clone(),
        f.secrets.clone(),
        settings,
    )
    .with_rate_limiter(Arc::new(crate::ratelimit::InMemoryRateLimiter::default()))
}

#[test]
fn failed_logins_are_limited_alike_for_known_and_unknown_emails() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let svc = limited(&f);
    for email in ["a@b.c", "nobody@b.c"] {
        for _ in 0..2 {
            assert!(matches!(svc.login(&customer_at("ip1"), email, "wrong".into()), Err(AuthError::Unauthorized(_))));
        }
        let limited = svc.login(&customer_at("ip1"), email, "wrong".into());
        assert!(
            matches!(limited, Err(AuthError::TooManyRequests { retry_after_secs: 300, .. })),
            "{email}: {limited:?}"
        );
    }
    // Even the right password waits; another address still has its own budget.
    assert!(matches!(svc.login(&customer_at("ip1"), "a@b.c", PW.into()), Err(AuthError::TooManyRequests { .. })));
    assert!(svc.login(&customer_at("ip2"), "A@B.C", PW.into()).is_ok());
    // The account-wide budget (3) spans addresses; a success reset it above.
    for ip in ["ip3", "ip4", "ip5"] {
        assert!(svc.login(&customer_at(ip), "a@b.c", "wrong".into()).is_err());
    }
    assert!(matches!(svc.login(&customer_at("ip6"), "a@b.c", PW.into()), Err(AuthError::TooManyRequests { .. })));
    f.clock.advance(Duration::hours(1));
    assert!(svc.login(&customer_at("ip6"), "a@b.c", PW.into()).is_ok(), "never a permanent lockout");
}

#[test]
fn the_client_budget_and_the_reset_interval() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let svc = limited(&f);
    for _ in 0..3 {
        svc.admit(&customer_at("ip1")).unwrap();
    }
    assert!(matches!(
        svc.admit(&customer_at("ip1")),
        Err(AuthError::TooManyRequests { limit: "client", retry_after_secs: 20 })
    ));
    assert!(svc.admit(&customer_at("ip2")).is_ok());
    reset_now(&svc, &customer(), "a@b.c", Map::new());
    reset_now(&svc, &customer(), "A@b.c ", Map::new());
    assert_eq!(f.store.lock().events.len(), 1, "a second request inside the interval does nothing");
    f.clock.advance(Duration::seconds(61));
    reset_now(&svc, &customer(), "a@b.c", Map::new());
    assert_eq!(f.store.lock().events.len(), 2);
}

#[test]
fn re_registering_proves_a_password_under_the_login_throttles() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let svc = limited(&f);
    // Two wrong guesses through register spend the pair's budget (2) as failed logins would.
    for _ in 0..2 {
        let wrong = svc.register(&customer_at("ip1"), "a@b.c", "another password".into());
        assert!(matches!(wrong, Err(AuthError::Unauthorized(m)) if m == IDENTITY_EXISTS));
    }
    // Now the right password is refused before any hash, through register and login alike.
    let limited_register = svc.register(&customer_at("ip1"), "A@b.c", PW.into());
    assert!(matches!(limited_register, Err(AuthError::TooManyRequests { limit: "login_failures", .. })));
    assert!(matches!(svc.login(&customer_at("ip1"), "a@b.c", PW.into()), Err(AuthError::TooManyRequests { .. })));
    // A failed login counts against register too, and a success through register empties it.
    assert!(svc.register(&customer_at("ip2"), "a@b.c", PW.into()).is_ok());
    assert!(svc.login(&customer_at("ip2"), "a@b.c", "wrong".into()).is_err());
    assert!(svc.register(&customer_at("ip2"), "a@b.c", "another password".into()).is_err());
    assert!(matches!(svc.register(&customer_at("ip2"), "a@b.c", PW.into()), Err(AuthError::TooManyRequests { .. })));
    // The account-wide bucket (3) spans addresses.
    f.clock.advance(Duration::hours(1));
    for ip in ["ip3", "ip4", "ip5"] {
        assert!(svc.register(&customer_at(ip), "a@b.c", "another password".into()).is_err());
    }
    assert!(matches!(svc.register(&customer_at("ip6"), "a@b.c", PW.into()), Err(AuthError::TooManyRequests { .. })));
    // A new email is never throttled by this (nothing to guess).
    assert!(svc.register(&customer_at("ip1"), "new@b.c", PW.into()).is_ok());
}

#[test]
fn re_registering_an_identity_with_an_actor_counts_wrong_passwords_too() {
    let f = fixture();
    let token = f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let caller = f.service.authenticate(&tenant(), &token).unwrap();
    f.service
        .create_customer(&tenant(), &caller, NewCustomerInput { email: Some("a@b.c".into()), ..Default::default() })
        .unwrap();
    let svc = limited(&f);
    // The right password still answers "exists" (an actor is linked) and is not counted.
    for _ in 0..3 {
        let again = svc.register(&customer_at("ip1"), "a@b.c", PW.into());
        assert!(matches!(again, Err(AuthError::Unauthorized(m)) if m == IDENTITY_EXISTS));
    }
    for _ in 0..2 {
        assert!(matches!(
            svc.register(&customer_at("ip1"), "a@b.c", "wrong one!".into()),
            Err(AuthError::Unauthorized(_))
        ));
    }
    assert!(matches!(svc.register(&customer_at("ip1"), "a@b.c", PW.into()), Err(AuthError::TooManyRequests { .. })));
}

#[test]
fn a_password_typed_in_another_normal_form_logs_in_and_old_hashes_are_replaced() {
    let f = fixture();
    let (nfc, nfd) = ("caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e", "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e");
    f.service.register(&customer(), "a@b.c", nfc.into()).unwrap();
    assert!(f.service.login(&customer_at("ip"), "a@b.c", nfd.into()).is_ok(), "NFD logs in to an NFC registration");
    f.service.register(&customer(), "d@b.c", nfd.into()).unwrap();
    assert!(f.service.login(&customer_at("ip"), "d@b.c", nfc.into()).is_ok(), "NFC logs in to an NFD registration");
    // A hash made on the bytes as typed (before normalisation, or imported): the same bytes log
    // in once that way, and the hash is replaced by one of the NFKC form.
    let legacy = bcrypt::hash(nfd.as_bytes(), 4).unwrap();
    let stored_hash = |f: &Fixture| {
        f.store.lock().identities.values().find(|(key, _)| key == "d@b.c").unwrap().1.password_hash.clone()
    };
    for (key, record) in f.store.lock().identities.values_mut() {
        if key == "d@b.c" {
            record.password_hash = legacy.clone();
        }
    }
    assert!(f.service.login(&customer_at("ip"), "d@b.c", nfd.into()).is_ok());
    let replaced = stored_hash(&f);
    assert_ne!(replaced, legacy, "the legacy hash is replaced");
    assert!(bcrypt::verify(nfc.as_bytes(), &replaced).unwrap(), "by a hash of the NFKC form");
    assert!(f.service.login(&customer_at("ip"), "d@b.c", nfc.into()).is_ok(), "now NFC logs in too");
}

/// Gives the identity of `key` the stored hash `hash` (as an import from Medusa would).
fn set_hash(f: &Fixture, key: &str, hash: &str) {
    for (k, record) in f.store.lock().identities.values_mut() {
        if k == key {
            record.password_hash = hash.to_string();
        }
    }
}

fn hash_of(f: &Fixture, key: &str) -> String {
    f.store.lock().identities.values().find(|(k, _)| k == key).unwrap().1.password_hash.clone()
}

#[test]
fn a_medusa_hash_logs_in_and_is_replaced_by_bcrypt() {
    use crate::password::scrypt_kdf::tests::MEDUSA_ACCOUNTS;
    let f = fixture();
    let (email, password, medusa) = MEDUSA_ACCOUNTS[2];
    f.service.register(&customer(), email, "placeholder password".into()).unwrap();
    set_hash(&f, email, medusa);
    // A wrong password fails as any does, and leaves the hash alone.
    let err = f.service.login(&customer_at("ip"), email, "ann-medusa-pass-2".into()).unwrap_err();
    assert!(matches!(err, AuthError::Unauthorized(ref m) if m == INVALID_CREDENTIALS), "{err:?}");
    assert_eq!(hash_of(&f, email), medusa);
    let started = std::time::Instant::now();
    let token = f.service.login(&customer_at("ip"), email, password.into()).unwrap();
    eprintln!("login with a Medusa hash (and its rehash at cost 4) in {:?}", started.elapsed());
    assert_eq!(f.claims(&token).actor_id, "");
    let replaced = hash_of(&f, email);
    assert!(replaced.starts_with("$2b$04$"), "bcrypt at the configured cost: {replaced}");
    assert!(bcrypt::verify(password, &replaced).unwrap());
    // From now on a bcrypt login, which leaves the new hash as it is.
    f.service.login(&customer_at("ip"), email, password.into()).unwrap();
    assert_eq!(hash_of(&f, email), replaced);
    assert!(f.service.login(&customer_at("ip"), email, "ann-medusa-pass-2".into()).is_err());
}

#[test]
fn re_registering_with_a_medusa_password_replaces_the_hash_too() {
    use crate::password::scrypt_kdf::tests::MEDUSA_ACCOUNTS;
    let f = fixture();
    // carol registered in Medusa and has no customer yet.
    let (email, password, medusa) = MEDUSA_ACCOUNTS[4];
    f.service.register(&customer(), email, "placeholder password".into()).unwrap();
    set_hash(&f, email, medusa);
    assert!(f.service.register(&customer(), email, "carol-pass-4".into()).is_err());
    assert_eq!(hash_of(&f, email), medusa);
    f.service.register(&customer(), email, password.into()).unwrap();
    assert!(hash_of(&f, email).starts_with("$2b$04$"));
}

#[test]
fn an_unreadable_hash_fails_like_a_wrong_password_and_is_logged_once() {
    use crate::password::scrypt_kdf::tests::MEDUSA_ACCOUNTS;
    let f = fixture();
    let (email, password, medusa) = MEDUSA_ACCOUNTS[1];
    f.service.register(&customer(), email, "placeholder password".into()).unwrap();
    let truncated = &medusa[..96];
    set_hash(&f, email, truncated);
    let id = f.store.lock().identities.values().find(|(k, _)| k == email).unwrap().1.auth_identity_id.clone();
    for _ in 0..2 {
        let err = f.service.login(&customer_at("ip"), email, password.into()).unwrap_err();
        assert!(matches!(err, AuthError::Unauthorized(ref m) if m == INVALID_CREDENTIALS), "{err:?}");
    }
    assert_eq!(hash_of(&f, email), truncated, "left as it is");
    // The first failure logged it; no later one does.
    assert!(!f.service.unreadable_logged.first(&TenantId::default_tenant(), &id));
    // A wrong password on a readable hash is not logged.
    let (other, _, other_hash) = MEDUSA_ACCOUNTS[0];
    f.service.register(&customer(), other, "placeholder password".into()).unwrap();
    set_hash(&f, other, other_hash);
    assert!(f.service.login(&customer_at("ip"), other, "wrong password".into()).is_err());
    let other_id = f.store.lock().identities.values().find(|(k, _)| k == other).unwrap().1.auth_identity_id.clone();
    assert!(f.service.unreadable_logged.first(&TenantId::default_tenant(), &other_id));
}

#[test]
fn a_device_cookie_is_bound_to_its_account_tenant_and_expiry() {
    let f = fixture();
    f.service.register(&customer(), "a@b.c", PW.into()).unwrap();
    let key = crate::email::email_key(" A@b.c");
    let first = f.service.login_on_device(&customer(), "a@b.c", PW.into(), None).unwrap();
    assert!(f.service.device_knows(&customer(), &key, &first.device_cookie));
    let other_tenant = AuthContext { tenant: TenantId::new("other"), ..customer() };
    assert!(!f.service.device_knows(&other_tenant, &key, &first.device_cookie), "another tenant's");
    assert!(!f.service.device_knows(&customer(), &crate::email::email_key("b@b.c"), &first.device_cookie));
    // A later login keeps the entries of other accounts, and at most five in all.
    f.service.register(&customer(), "b@b.c", PW.into()).unwrap();
    let both = f.service.login_on_device(&customer(), "b@b.c", PW.into(), Some(&first.device_cookie)).unwrap();
    assert!(f.service.device_knows(&customer(), &key, &both.device_cookie));
    assert!(f.service.device_knows(&customer(), &crate::email::email_key("b@b.c"), &both.device_cookie));
    let mut cookie = both.device_cookie.clone();
    for i in 0..6 {
        let who = format!("c{i}@b.c");
        f.service.register(&customer(), &who, PW.into()).unwrap();
        cookie = f.service.login_on_device(&customer(), &who, PW.into(), Some(&cookie)).unwrap().device_cookie;
    }
    assert_eq!(cookie.split('~').count(), 5);
    assert!(!f.service.device_knows(&customer(), &key, &cookie), "the oldest account is forgotten");
    // It expires with DEVICE_COOKIE_TTL.
    f.clock.advance(Duration::days(31));
    assert!(!f.service.device_knows(&customer(), &key, &first.device_cookie));
}
