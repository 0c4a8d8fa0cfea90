//! Real keys, JWKS and tokens, made by the server's own code (`auth-domain`, a dev-dependency),
//! and tokens forged the ways an attacker would.

use std::time::{Duration, SystemTime};

use auth_domain::keys::{generate, KeyAlgorithm as ServerAlgorithm, KeyPair, KeyRing, KeyState, SigningKeyRecord};
use auth_domain::newtypes::TenantId;
use auth_domain::token::{AuthTokenInput, Issuing, TokenCodec, TokenSettings};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

use super::*;

/// A tenant with one active key, as the server holds it.
struct Tenant {
    name: String,
    pair: KeyPair,
    ring: KeyRing,
}

impl Tenant {
    fn new(name: &str, algorithm: ServerAlgorithm) -> Tenant {
        Tenant::with_keys(name, &[(generate(algorithm).unwrap(), KeyState::Active)])
    }

    /// `keys`: the first is the one this tenant signs with in `issue` (it must be active).
    fn with_keys(name: &str, keys: &[(KeyPair, KeyState)]) -> Tenant {
        let records: Vec<SigningKeyRecord> = keys
            .iter()
            .map(|(pair, state)| SigningKeyRecord {
                tenant: TenantId::new(name),
                kid: pair.kid.clone(),
                algorithm: pair.algorithm,
                state: *state,
                private_sealed: URL_SAFE_NO_PAD.encode(&pair.private_der),
                public_jwk: pair.public_jwk.clone(),
                created_at: Utc::now(),
                state_since: Utc::now(),
            })
            .collect();
        let ring = KeyRing::from_records(&records, |r| Ok(URL_SAFE_NO_PAD.decode(&r.private_sealed).unwrap())).unwrap();
        Tenant { name: name.into(), pair: clone_pair(&keys[0].0), ring }
    }

    fn issuer(&self) -> String {
        format!("https://{}.api.myxclade.com", self.name)
    }

    /// What `GET /.well-known/jwks.json` answers.
    fn jwks(&self) -> String {
        serde_json::to_string(&self.ring.jwks()).unwrap()
    }

    fn settings(&self) -> VerifierSettings {
        VerifierSettings {
            issuer: self.issuer(),
            audience: None,
            leeway: Duration::from_secs(0),
            tenant: Some(self.name.clone()),
        }
    }

    fn verifier(&self) -> Verifier {
        Verifier::from_jwks_json(&self.jwks(), self.settings()).unwrap()
    }

    /// An auth token, signed by the server's codec with the active key, issued at `now`, for an hour.
    fn issue(&self, now: DateTime<Utc>) -> String {
        let codec = TokenCodec::new(TokenSettings {
            secret: b"the-shared-hs256-secret".to_vec(),
            previous_secrets: vec![],
            auth_ttl: chrono::Duration::days(1),
            leeway: chrono::Duration::seconds(0),
        });
        let issuer = self.issuer();
        let how = Issuing { ttl: chrono::Duration::hours(1), keys: &self.ring, issuer: Some(&issuer) };
        codec.issue_auth_with(&input(&self.name), now, &how).unwrap()
    }

    /// The active key's private half, to forge tokens with a genuine signature.
    fn signing_key(&self) -> EncodingKey {
        match self.pair.algorithm {
            ServerAlgorithm::EdDSA => EncodingKey::from_ed_der(&self.pair.private_der),
            ServerAlgorithm::ES256 => EncodingKey::from_ec_der(&self.pair.private_der),
        }
    }

    /// `header` and `claims` (JSON, written as given) signed with the active key.
    fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let message =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.signing_key(), self.pair.algorithm.jwt()).unwrap();
        format!("{message}.{signature}")
    }

    /// The genuine header of this tenant's tokens.
    fn header(&self) -> Value {
        json!({"typ": "JWT", "alg": self.pair.algorithm.as_str(), "kid": self.pair.kid})
    }
}

fn input(tenant: &str) -> AuthTokenInput {
    let mut app_metadata = Map::new();
    app_metadata.insert("customer_id".into(), "cus_01".into());
    AuthTokenInput {
        actor_id: "cus_01".into(),
        actor_type: "customer".into(),
        auth_identity_id: "authid_01".into(),
        auth_provider: "emailpass".into(),
        app_metadata,
        user_metadata: Map::new(),
        stamp: "stamp".into(),
        tenant: tenant.into(),
    }
}

fn at(now: DateTime<Utc>) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(now.timestamp() as u64)
}

fn segment(token: &str, n: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(n).unwrap()).unwrap()).unwrap()
}

#[test]
fn both_algorithms_verify_and_the_claims_are_the_servers() {
    let now = Utc::now();
    for algorithm in [ServerAlgorithm::EdDSA, ServerAlgorithm::ES256] {
        let acme = Tenant::new("acme", algorithm);
        let token = acme.issue(now);
        assert_eq!(segment(&token, 0), acme.header(), "the header the server writes");
        let claims = acme.verifier().verify(&token, at(now)).unwrap();
        assert_eq!(claims.actor_id, "cus_01");
        assert_eq!(claims.actor_type, "customer");
        assert_eq!(claims.auth_identity_id, "authid_01");
        assert_eq!(claims.auth_provider, "emailpass");
        assert!(!claims.mfa_enabled);
        assert_eq!(claims.mfa_challenge_completed_at, None);
        assert_eq!(claims.app_metadata["customer_id"], "cus_01");
        assert!(claims.user_metadata.is_empty());
        assert_eq!((claims.iat, claims.exp), (now.timestamp(), now.timestamp() + 3600));
        assert_eq!(claims.stamp, "stamp");
        assert_eq!(claims.tenant, "acme");
        assert_eq!(claims.iss, "https://acme.api.myxclade.com");
        // `Claims` serialises to the signed claims, in their order.
        assert_eq!(serde_json::to_value(&claims).unwrap(), segment(&token, 1));
        let order: Vec<String> = serde_json::from_value::<Map<String, Value>>(serde_json::to_value(&claims).unwrap())
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let signed: Vec<String> = segment(&token, 1).as_object().unwrap().keys().cloned().collect();
        assert_eq!(order, signed);
    }
}

#[test]
fn a_parsed_jwk_set_works_as_the_json_does() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let now = Utc::now();
    let verifier = Verifier::new(KeySet::from_jwks(&acme.ring.jwks()), acme.settings());
    assert_eq!(verifier.keys().kids(), [acme.pair.kid.as_str()]);
    assert!(verifier.verify(&acme.issue(now), at(now)).is_ok());
    assert_eq!(kid_of(&acme.issue(now)).as_deref(), Some(acme.pair.kid.as_str()));
}

#[test]
fn every_published_key_verifies_and_an_unknown_kid_is_refused() {
    let now = Utc::now();
    let (active, next, retired) = (
        generate(ServerAlgorithm::EdDSA).unwrap(),
        generate(ServerAlgorithm::ES256).unwrap(),
        generate(ServerAlgorithm::ES256).unwrap(),
    );
    let old = Tenant::with_keys("acme", &[(clone_pair(&retired), KeyState::Active)]);
    let token_of_retired = old.issue(now);
    let acme =
        Tenant::with_keys("acme", &[(active, KeyState::Active), (next, KeyState::Next), (retired, KeyState::Retired)]);
    let verifier = acme.verifier();
    assert_eq!(verifier.keys().len(), 3);
    assert!(verifier.verify(&acme.issue(now), at(now)).is_ok());
    assert!(verifier.verify(&token_of_retired, at(now)).is_ok(), "a retired key still verifies");
    // The key deleted: its tokens no longer verify.
    let rotated = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let kid = old.pair.kid.clone();
    assert_eq!(rotated.verifier().verify(&token_of_retired, at(now)), Err(Rejection::UnknownKey(kid)));
}

fn clone_pair(pair: &KeyPair) -> KeyPair {
    KeyPair {
        kid: pair.kid.clone(),
        algorithm: pair.algorithm,
        private_der: pair.private_der.clone(),
        public_jwk: pair.public_jwk.clone(),
    }
}

#[test]
fn a_token_without_kid_is_refused() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let now = Utc::now();
    let claims = segment(&acme.issue(now), 1);
    let token = acme.sign_raw(&json!({"typ": "JWT", "alg": "EdDSA"}), &claims);
    assert_eq!(acme.verifier().verify(&token, at(now)), Err(Rejection::MissingKid));
    // The HS256 tokens of a tenant without keys: no kid either.
    let hs256 = TokenCodec::new(TokenSettings {
        secret: b"the-shared-hs256-secret".to_vec(),
        previous_secrets: vec![],
        auth_ttl: chrono::Duration::hours(1),
        leeway: chrono::Duration::seconds(0),
    })
    .issue_auth(&input("acme"), now)
    .unwrap();
    assert_eq!(acme.verifier().verify(&hs256, at(now)), Err(Rejection::MissingKid));
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let now = Utc::now();
    for algorithm in [ServerAlgorithm::EdDSA, ServerAlgorithm::ES256] {
        let acme = Tenant::new("acme", algorithm);
        let claims = segment(&acme.issue(now), 1);
        let jwk: Value = serde_json::from_str(&acme.pair.public_jwk).unwrap();
        let secrets: Vec<Vec<u8>> = vec![
            acme.pair.public_jwk.as_bytes().to_vec(),
            acme.jwks().into_bytes(),
            jwk["x"].as_str().unwrap().as_bytes().to_vec(),
            URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
        ];
        for secret in secrets {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(acme.pair.kid.clone());
            let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
            assert_eq!(
                acme.verifier().verify(&forged, at(now)),
                Err(Rejection::AlgorithmMismatch {
                    kid: acme.pair.kid.clone(),
                    expected: algorithm.as_str(),
                    found: "HS256".into()
                })
            );
        }
    }
}

#[test]
fn alg_none_is_refused() {
    let acme = Tenant::new("acme", ServerAlgorithm::ES256);
    let now = Utc::now();
    let token = acme.issue(now);
    let payload = token.split('.').nth(1).unwrap();
    let kid = &acme.pair.kid;
    for header in [json!({"alg": "none", "kid": kid}), json!({"alg": "None", "kid": kid}), json!({"alg": "none"})] {
        let unsigned = URL_SAFE_NO_PAD.encode(header.to_string());
        for signature in ["", "AAAA"] {
            let forged = format!("{unsigned}.{payload}.{signature}");
            let result = acme.verifier().verify(&forged, at(now));
            assert!(
                matches!(result, Err(Rejection::AlgorithmMismatch { .. } | Rejection::MissingKid)),
                "{header}: {result:?}"
            );
        }
    }
}

#[test]
fn the_kid_of_an_eddsa_key_on_an_es256_signature_is_refused() {
    let now = Utc::now();
    let ed = generate(ServerAlgorithm::EdDSA).unwrap();
    let ed_kid = ed.kid.clone();
    let acme = Tenant::with_keys(
        "acme",
        &[(generate(ServerAlgorithm::ES256).unwrap(), KeyState::Active), (ed, KeyState::Next)],
    );
    let claims = segment(&acme.issue(now), 1);
    let forged = acme.sign_raw(&json!({"typ": "JWT", "alg": "ES256", "kid": ed_kid}), &claims);
    assert!(matches!(acme.verifier().verify(&forged, at(now)), Err(Rejection::AlgorithmMismatch { .. })));
}

#[test]
fn keys_named_or_carried_by_the_token_and_crit_are_refused() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let now = Utc::now();
    let claims = segment(&acme.issue(now), 1);
    let jwk: Value = serde_json::from_str(&acme.pair.public_jwk).unwrap();
    let cases: [(&str, Value); 7] = [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("jwk", jwk),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["exp"])),
        ("crit", json!([])),
        ("jku", Value::Null),
    ];
    for (name, value) in cases {
        let mut header = acme.header();
        header[name] = value;
        // A genuine signature, by the tenant's own key: the header alone is refused.
        let token = acme.sign_raw(&header, &claims);
        assert_eq!(acme.verifier().verify(&token, at(now)), Err(Rejection::ForbiddenHeader(name)), "{header}");
    }
    // Through jsonwebtoken's own header too.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(acme.pair.kid.clone());
    header.jku = Some("https://evil.example/jwks.json".into());
    let token = jsonwebtoken::encode(&header, &claims, &acme.signing_key()).unwrap();
    assert_eq!(acme.verifier().verify(&token, at(now)), Err(Rejection::ForbiddenHeader("jku")));
}

#[test]
fn an_oct_or_rsa_key_in_the_set_is_never_used() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let now = Utc::now();
    let kid = acme.pair.kid.clone();
    let secret = b"a-symmetric-secret-published-by-mistake";
    let mut jwks: Value = serde_json::from_str(&acme.jwks()).unwrap();
    let keys = jwks["keys"].as_array_mut().unwrap();
    // The same kid as the EdDSA key, before and after it; and one of its own.
    keys.insert(0, json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret), "kid": kid, "alg": "HS256"}));
    keys.push(json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret), "kid": kid}));
    keys.push(json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret), "kid": "oct-1", "alg": "HS256", "use": "sig"}));
    keys.push(json!({"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "rsa-1", "alg": "RS256", "use": "sig"}));
    let verifier = Verifier::from_jwks_json(&jwks.to_string(), acme.settings()).unwrap();
    assert_eq!(verifier.keys().kids(), [kid.as_str()]);
    assert_eq!(verifier.keys().ignored(), 4);
    let claims = segment(&acme.issue(now), 1);
    for (token_kid, expected) in [
        (kid.clone(), Rejection::AlgorithmMismatch { kid: kid.clone(), expected: "EdDSA", found: "HS256".into() }),
        ("oct-1".to_string(), Rejection::UnknownKey("oct-1".into())),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(token_kid);
        let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
        assert_eq!(verifier.verify(&forged, at(now)), Err(expected));
    }
    // The EdDSA key still verifies its tokens.
    assert!(verifier.verify(&acme.issue(now), at(now)).is_ok());
}

#[test]
fn only_usable_keys_are_kept() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let good: Value = serde_json::from_str(&acme.pair.public_jwk).unwrap();
    let with = |name: &str, value: Value| {
        let mut key = good.clone();
        match value {
            Value::Null => {
                key.as_object_mut().unwrap().remove(name);
            }
            value => key[name] = value,
        }
        key
    };
    for (why, key) in [
        ("no alg", with("alg", Value::Null)),
        ("another alg", with("alg", json!("ES256"))),
        ("no kid", with("kid", Value::Null)),
        ("an empty kid", with("kid", json!(""))),
        ("for encryption", with("use", json!("enc"))),
        ("not for verifying", with("key_ops", json!(["encrypt"]))),
        ("a private part", with("d", json!(URL_SAFE_NO_PAD.encode([7u8; 32])))),
        ("a short key", with("x", json!(URL_SAFE_NO_PAD.encode([7u8; 31])))),
        ("not base64url", with("x", json!("+/+/"))),
        ("Ed448", with("crv", json!("Ed448"))),
    ] {
        let set = KeySet::from_json(&json!({ "keys": [key] }).to_string()).unwrap();
        assert!(set.is_empty(), "{why}");
        assert_eq!(set.ignored(), 1, "{why}");
    }
    let with_ops = KeySet::from_json(&json!({ "keys": [with("key_ops", json!(["verify"]))] }).to_string()).unwrap();
    assert_eq!(with_ops.len(), 1);
    // Two usable keys under one kid: neither.
    let other = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let mut impostor: Value = serde_json::from_str(&other.pair.public_jwk).unwrap();
    impostor["kid"] = json!(acme.pair.kid);
    let set = KeySet::from_json(&json!({ "keys": [good, impostor] }).to_string()).unwrap();
    assert!(set.is_empty());
    assert_eq!(set.ignored(), 2);
    // A document that is not a JWKS.
    assert!(matches!(KeySet::from_json("{}"), Err(JwksError::NoKeys)));
    assert!(matches!(KeySet::from_json("keys"), Err(JwksError::Json(_))));
    assert!(KeySet::from_json(r#"{"keys": [1, "x", {"kty": "AKP"}]}"#).unwrap().is_empty());
}

#[test]
fn a_bad_signature_or_a_changed_claim_is_refused() {
    let now = Utc::now();
    for algorithm in [ServerAlgorithm::EdDSA, ServerAlgorithm::ES256] {
        let acme = Tenant::new("acme", algorithm);
        let token = acme.issue(now);
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        // Another customer, the signature kept.
        let mut claims = segment(&token, 1);
        claims["actor_id"] = json!("cus_02");
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
        assert_eq!(acme.verifier().verify(&tampered, at(now)), Err(Rejection::BadSignature));
        // A flipped signature bit.
        let mut signature = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
        signature[5] ^= 1;
        parts[2] = URL_SAFE_NO_PAD.encode(signature);
        assert_eq!(acme.verifier().verify(&parts.join("."), at(now)), Err(Rejection::BadSignature));
        // Another key of the same algorithm under this kid.
        let forger = Tenant::new("acme", algorithm);
        let forged = forger.sign_raw(&acme.header(), &segment(&token, 1));
        assert_eq!(acme.verifier().verify(&forged, at(now)), Err(Rejection::BadSignature));
    }
}

#[test]
fn garbage_is_malformed() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let now = Utc::now();
    let token = acme.issue(now);
    let verifier = acme.verifier();
    for garbage in ["", "a", "a.b", "a.b.c", "...", &format!("{token}.x"), "ey.ey.ey", &token.replacen('.', "", 1)] {
        assert!(matches!(verifier.verify(garbage, at(now)), Err(Rejection::Malformed(_))), "{garbage:?}");
    }
    let claims = segment(&token, 1);
    assert!(matches!(
        verifier.verify(&acme.sign_raw(&json!(["not", "an", "object"]), &claims), at(now)),
        Err(Rejection::Malformed(_))
    ));
    assert!(matches!(
        verifier.verify(&acme.sign_raw(&json!({"alg": "EdDSA", "kid": 5}), &claims), at(now)),
        Err(Rejection::Malformed(_))
    ));
    assert_eq!(kid_of("garbage"), None);
}

#[test]
fn times_are_checked_against_the_callers_clock_with_the_leeway() {
    let acme = Tenant::new("acme", ServerAlgorithm::ES256);
    let issued = Utc::now();
    let token = acme.issue(issued);
    let exp = issued.timestamp() + 3600;
    let strict = acme.verifier();
    let lenient =
        Verifier::from_jwks_json(&acme.jwks(), VerifierSettings { leeway: Duration::from_secs(60), ..acme.settings() })
            .unwrap();
    assert!(strict.verify_at(&token, exp - 1).is_ok());
    assert_eq!(strict.verify_at(&token, exp), Err(Rejection::Expired));
    assert!(lenient.verify_at(&token, exp + 59).is_ok());
    assert_eq!(lenient.verify_at(&token, exp + 60), Err(Rejection::Expired));
    // Issued in the future: a clock behind the server's.
    assert_eq!(strict.verify_at(&token, issued.timestamp() - 1), Err(Rejection::IssuedInFuture));
    assert!(lenient.verify_at(&token, issued.timestamp() - 60).is_ok());
    assert_eq!(lenient.verify_at(&token, issued.timestamp() - 61), Err(Rejection::IssuedInFuture));
    // `nbf`, which Xclade does not set, is honoured when present.
    let mut claims = segment(&token, 1);
    claims["nbf"] = json!(issued.timestamp() + 100);
    let with_nbf = acme.sign_raw(&acme.header(), &claims);
    assert_eq!(strict.verify_at(&with_nbf, issued.timestamp() + 99), Err(Rejection::NotYetValid));
    assert!(strict.verify_at(&with_nbf, issued.timestamp() + 100).is_ok());
    // `exp` and `iat` are required, as integers.
    for (name, value) in [("exp", Value::Null), ("iat", Value::Null), ("exp", json!("soon")), ("nbf", json!(1.5))] {
        let mut claims = segment(&token, 1);
        match value {
            Value::Null => {
                claims.as_object_mut().unwrap().remove(name);
            }
            value => claims[name] = value,
        }
        let token = acme.sign_raw(&acme.header(), &claims);
        assert!(matches!(strict.verify_at(&token, issued.timestamp()), Err(Rejection::InvalidClaims(_))), "{name}");
    }
    // Extreme values do not overflow.
    let mut claims = segment(&token, 1);
    claims["exp"] = json!(i64::MAX);
    claims["iat"] = json!(i64::MIN);
    let extreme = acme.sign_raw(&acme.header(), &claims);
    let forever = Verifier::from_jwks_json(
        &acme.jwks(),
        VerifierSettings { leeway: Duration::from_secs(u64::MAX), ..acme.settings() },
    )
    .unwrap();
    assert!(forever.verify_at(&extreme, 0).is_ok());
    assert_eq!(forever.verify_at(&extreme, i64::MAX), Err(Rejection::Expired));
    assert!(strict.verify_at(&extreme, i64::MIN).is_ok(), "no overflow at the other end");
    assert!(strict.verify(&token, SystemTime::UNIX_EPOCH - Duration::from_secs(10)).is_err());
}

#[test]
fn the_issuer_audience_and_tenant_are_checked() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let now = Utc::now();
    let token = acme.issue(now);
    let with = |settings: VerifierSettings| Verifier::from_jwks_json(&acme.jwks(), settings).unwrap();
    let wrong_issuer = with(VerifierSettings { issuer: "https://globex.api.myxclade.com".into(), ..acme.settings() });
    assert_eq!(wrong_issuer.verify(&token, at(now)), Err(Rejection::WrongIssuer));
    let trailing_slash = with(VerifierSettings { issuer: format!("{}/", acme.issuer()), ..acme.settings() });
    assert_eq!(trailing_slash.verify(&token, at(now)), Err(Rejection::WrongIssuer), "compared exactly");
    let wrong_tenant = with(VerifierSettings { tenant: Some("globex".into()), ..acme.settings() });
    assert_eq!(wrong_tenant.verify(&token, at(now)), Err(Rejection::WrongTenant));
    let any_tenant = with(VerifierSettings { tenant: None, ..acme.settings() });
    assert!(any_tenant.verify(&token, at(now)).is_ok());
    // No `iss` at all (tokens of before `iss`).
    let mut claims = segment(&token, 1);
    claims.as_object_mut().unwrap().remove("iss");
    assert_eq!(acme.verifier().verify(&acme.sign_raw(&acme.header(), &claims), at(now)), Err(Rejection::WrongIssuer));
    // The audience: required when configured, refused when not.
    let orders = with(VerifierSettings { audience: Some("orders".into()), ..acme.settings() });
    assert_eq!(orders.verify(&token, at(now)), Err(Rejection::WrongAudience), "Xclade sets no aud today");
    for (aud, for_orders) in [
        (json!("orders"), true),
        (json!(["billing", "orders"]), true),
        (json!("billing"), false),
        (json!(["billing"]), false),
        (json!([]), false),
        (json!(5), false),
    ] {
        let mut claims = segment(&token, 1);
        claims["aud"] = aud.clone();
        let token = acme.sign_raw(&acme.header(), &claims);
        assert_eq!(orders.verify(&token, at(now)).is_ok(), for_orders, "{aud}");
        assert_eq!(acme.verifier().verify(&token, at(now)), Err(Rejection::WrongAudience), "{aud} without audience");
    }
}

#[test]
fn a_token_of_tenant_a_is_refused_with_tenant_bs_keys() {
    let now = Utc::now();
    for algorithm in [ServerAlgorithm::EdDSA, ServerAlgorithm::ES256] {
        let (acme, globex) = (Tenant::new("acme", algorithm), Tenant::new("globex", algorithm));
        let token = acme.issue(now);
        assert_eq!(globex.verifier().verify(&token, at(now)), Err(Rejection::UnknownKey(acme.pair.kid.clone())));
        // Even with globex's settings but acme's keys, the claims say acme.
        let mixed = Verifier::from_jwks_json(&acme.jwks(), globex.settings()).unwrap();
        assert_eq!(mixed.verify(&token, at(now)), Err(Rejection::WrongIssuer));
        // And under globex's kid, acme's signature does not verify.
        let mut header = segment(&token, 0);
        header["kid"] = json!(globex.pair.kid);
        let relabelled = acme.sign_raw(&header, &segment(&token, 1));
        assert_eq!(globex.verifier().verify(&relabelled, at(now)), Err(Rejection::BadSignature));
    }
}

#[test]
fn a_reset_token_shape_is_not_an_auth_token() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let now = Utc::now();
    let mut claims = segment(&acme.issue(now), 1);
    claims["purpose"] = json!("reset");
    assert_eq!(acme.verifier().verify(&acme.sign_raw(&acme.header(), &claims), at(now)), Err(Rejection::WrongKind));
    let mut claims = segment(&acme.issue(now), 1);
    claims.as_object_mut().unwrap().remove("actor_id");
    assert!(matches!(
        acme.verifier().verify(&acme.sign_raw(&acme.header(), &claims), at(now)),
        Err(Rejection::InvalidClaims(_))
    ));
}

#[test]
fn debug_shows_kids_only() {
    let acme = Tenant::new("acme", ServerAlgorithm::EdDSA);
    let text = format!("{:?}", acme.verifier());
    assert!(text.contains(&acme.pair.kid), "{text}");
    assert!(text.contains("EdDSA"), "{text}");
}
