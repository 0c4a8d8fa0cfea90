//! The check of an OpenID Connect ID token (OpenID Connect Core §3.1.3.7): signed with a key of
//! the issuer's JWKS under an asymmetric algorithm that key allows (never `none`, never an HMAC
//! algorithm, whose key would be the public client secret), issued by the configured issuer, for
//! this client (`aud`, and `azp` when present), not expired, and carrying the `nonce` of this
//! sign-in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{text, ProviderProfile};
use crate::secret::sha256_hex;

/// The algorithms an ID token may be signed with.
const ACCEPTED: [&str; 9] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// What the ID token must say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The `iss` values accepted.
    pub issuers: &'a [String],
    pub client_id: &'a str,
    /// SHA-256 of the nonce sent with this sign-in.
    pub nonce_hash: &'a str,
    /// Clock leeway for `exp`, `iat` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No key of the JWKS has the token's `kid` (the caller may fetch the JWKS once more).
    UnknownKey,
    /// Anything else, with the reason (logged, never shown to the client).
    Invalid(String),
}

/// The profile of a valid ID token; `jwks` is the issuer's JWKS document.
pub fn verify(token: &str, jwks: &Value, expected: &Expected<'_>) -> Result<ProviderProfile, Refusal> {
    let invalid = |why: String| Refusal::Invalid(why);
    let alg = raw_alg(token).ok_or_else(|| invalid("the ID token has no readable header".into()))?;
    if !ACCEPTED.contains(&alg.as_str()) {
        return Err(invalid(format!("the ID token's algorithm {alg:?} is not accepted")));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("the ID token's header: {e}")))?;
    let jwk = find_key(jwks, header.kid.as_deref())?;
    if let Some(key_alg) = &jwk.common.key_algorithm {
        if serde_json::to_value(key_alg).ok().as_ref().and_then(Value::as_str) != Some(alg.as_str()) {
            return Err(invalid(format!("the key {:?} is not for {alg}", header.kid)));
        }
    }
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return Err(invalid("the JWKS offers a symmetric key".into()));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| invalid(format!("the JWK does not load: {e}")))?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[expected.client_id]);
    validation.set_issuer(expected.issuers);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = expected.leeway_secs;
    validation.validate_nbf = true;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| invalid(format!("the ID token: {e}")))?
        .claims;
    let audiences = match claims.get("aud") {
        Some(Value::Array(list)) => list.len(),
        _ => 1,
    };
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != expected.client_id => return Err(invalid("the ID token's azp is another client".into())),
        None if audiences > 1 => return Err(invalid("the ID token has several audiences and no azp".into())),
        _ => {}
    }
    let nonce =
        claims.get("nonce").and_then(Value::as_str).ok_or_else(|| invalid("the ID token has no nonce".into()))?;
    if sha256_hex(nonce) != expected.nonce_hash {
        return Err(invalid("the ID token's nonce is not this sign-in's".into()));
    }
    let subject = text(&claims, "sub").ok_or_else(|| invalid("the ID token has no sub".into()))?;
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    let mut details = Map::new();
    for key in ["name", "given_name", "family_name", "picture"] {
        if let Some(value) = text(&claims, key) {
            details.insert(key.into(), Value::String(value));
        }
    }
    Ok(ProviderProfile { subject, email: text(&claims, "email"), email_verified, details })
}

/// The `alg` of the header as written (so that `none` and unknown names are refused by name).
fn raw_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_string)
}

/// The signing key with `kid` (or, for a token without `kid`, the only signing key).
fn find_key(jwks: &Value, kid: Option<&str>) -> Result<Jwk, Refusal> {
    let keys: Vec<Jwk> = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok()).collect())
        .unwrap_or_default();
    let signing = keys.into_iter().filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)));
    let mut candidates: Vec<Jwk> = match kid {
        Some(kid) => signing.filter(|k| k.common.key_id.as_deref() == Some(kid)).collect(),
        None => signing.collect(),
    };
    match (candidates.len(), kid) {
        (1, _) => Ok(candidates.remove(0)),
        (0, _) => Err(Refusal::UnknownKey),
        (_, None) => Err(Refusal::Invalid("the ID token has no kid and the JWKS has several keys".into())),
        (_, Some(_)) => Err(Refusal::Invalid("the JWKS has several keys with the token's kid".into())),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::keys::{generate, KeyAlgorithm};

    struct Issuer {
        kid: String,
        key: EncodingKey,
        alg: jsonwebtoken::Algorithm,
        jwks: Value,
    }

    fn issuer(algorithm: KeyAlgorithm) -> Issuer {
        let pair = generate(algorithm).unwrap();
        let key = match algorithm {
            KeyAlgorithm::EdDSA => EncodingKey::from_ed_der(&pair.private_der),
            KeyAlgorithm::ES256 => EncodingKey::from_ec_der(&pair.private_der),
        };
        let jwk: Value = serde_json::from_str(&pair.public_jwk).unwrap();
        Issuer { kid: pair.kid.clone(), key, alg: algorithm.jwt(), jwks: json!({ "keys": [jwk] }) }
    }

    fn sign(issuer: &Issuer, claims: &Value) -> String {
        let mut header = Header::new(issuer.alg);
        header.kid = Some(issuer.kid.clone());
        jsonwebtoken::encode(&header, claims, &issuer.key).unwrap()
    }

    fn claims(nonce: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": "https://id.example", "aud": "shop", "sub": "u1", "iat": now, "exp": now + 300,
            "nonce": nonce, "email": "ann@example.com", "email_verified": true, "name": "Ann"})
    }

    fn check(token: &str, jwks: &Value) -> Result<ProviderProfile, Refusal> {
        let issuers = vec!["https://id.example".to_string()];
        let hash = sha256_hex("n1");
        verify(token, jwks, &Expected { issuers: &issuers, client_id: "shop", nonce_hash: &hash, leeway_secs: 0 })
    }

    #[test]
    fn a_valid_token_gives_the_profile() {
        for algorithm in [KeyAlgorithm::EdDSA, KeyAlgorithm::ES256] {
            let issuer = issuer(algorithm);
            let profile = check(&sign(&issuer, &claims("n1")), &issuer.jwks).unwrap();
            assert_eq!((profile.subject.as_str(), profile.email_verified), ("u1", true));
            assert_eq!(profile.user_metadata()["name"], "Ann");
        }
    }

    #[test]
    fn hostile_tokens_are_refused() {
        let good = issuer(KeyAlgorithm::EdDSA);
        let other = issuer(KeyAlgorithm::EdDSA);
        // Signed by another key that claims the good key's kid.
        let forged = Issuer { kid: good.kid.clone(), ..other };
        assert!(matches!(check(&sign(&forged, &claims("n1")), &good.jwks), Err(Refusal::Invalid(_))));
        // An unknown kid.
        let unknown = issuer(KeyAlgorithm::ES256);
        assert_eq!(check(&sign(&unknown, &claims("n1")), &good.jwks), Err(Refusal::UnknownKey));
        // alg none, and HS256 keyed with anything.
        let body = URL_SAFE_NO_PAD.encode(claims("n1").to_string());
        let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, good.kid)));
        assert!(
            check(&none, &good.jwks).unwrap_err()
                == Refusal::Invalid("the ID token's algorithm \"none\" is not accepted".into())
        );
        let hs = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims("n1"),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(matches!(check(&hs, &good.jwks), Err(Refusal::Invalid(_))));
        // Wrong audience, wrong issuer, expired, another nonce, no nonce.
        let mut wrong_aud = claims("n1");
        wrong_aud["aud"] = json!("another-client");
        let mut wrong_iss = claims("n1");
        wrong_iss["iss"] = json!("https://evil.example");
        let mut expired = claims("n1");
        expired["exp"] = json!(chrono::Utc::now().timestamp() - 60);
        let mut no_nonce = claims("n1");
        no_nonce.as_object_mut().unwrap().remove("nonce");
        let mut two_aud = claims("n1");
        two_aud["aud"] = json!(["shop", "other"]);
        for bad in [wrong_aud, wrong_iss, expired, claims("n2"), no_nonce, two_aud] {
            assert!(matches!(check(&sign(&good, &bad), &good.jwks), Err(Refusal::Invalid(_))), "{bad}");
        }
    }
}
