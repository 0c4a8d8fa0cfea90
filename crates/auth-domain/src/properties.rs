//! Property tests for the code that reads untrusted input: email addresses, the password
//! policy and token decoding. Case counts stay modest so that `cargo test` stays quick; raise
//! them for a longer run with `PROPTEST_CASES=10000 cargo test -p auth-domain properties`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

use crate::email::{email_key, Email, MAX_EMAIL_LEN};
use crate::password::{PasswordPolicy, MAX_PASSWORD_BYTES};
use crate::token::{AuthTokenInput, ResetClaims, TokenCodec, TokenSettings, RESET_PURPOSE};
use crate::{AuthError, TokenRejection};

/// `n` cases, or as many as `PROPTEST_CASES` says when it is set.
fn cases(n: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        default
    } else {
        ProptestConfig { cases: n, ..default }
    }
}

// ---------------------------------------------------------------------------------------------
// Email addresses

/// The characters the WHATWG grammar allows in the local part.
const LOCAL: &str = "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]{1,16}";
/// One domain label: letters, digits and inner hyphens, at most 63 long (12 here).
const LABEL: &str = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?";

/// An address the grammar accepts, as typed (mixed case).
fn valid_address() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{LOCAL}@{LABEL}(\\.{LABEL}){{0,3}}")).expect("a valid regex")
}

/// White space `str::trim` removes, ASCII and not.
fn white_space() -> impl Strategy<Value = char> {
    prop::sample::select(vec![' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{2003}', '\u{3000}'])
}

/// Strings near the grammar: valid addresses with one character inserted, replaced or
/// removed, short strings over the grammar's alphabet, and anything at all.
fn email_like() -> impl Strategy<Value = String> {
    let edited = (valid_address(), any::<Index>(), any::<char>(), 0..3u8).prop_map(|(address, at, c, how)| {
        let mut chars: Vec<char> = address.chars().collect();
        let i = at.index(chars.len());
        match how {
            0 => chars.insert(i, c),
            1 => chars[i] = c,
            _ => {
                chars.remove(i);
            }
        }
        chars.into_iter().collect()
    });
    prop_oneof![
        edited,
        proptest::string::string_regex("[a-zA-Z0-9@.\\- _+]{0,24}").expect("a valid regex"),
        any::<String>(),
    ]
}

/// What every accepted address satisfies.
fn assert_well_formed(raw: &str, email: &Email) -> Result<(), TestCaseError> {
    prop_assert_eq!(email.as_str(), raw.trim(), "the address is the input, trimmed");
    prop_assert_eq!(email.as_str().trim(), email.as_str());
    prop_assert_eq!(email.as_str().matches('@').count(), 1);
    prop_assert!(email.as_str().is_ascii());
    prop_assert!(email.as_str().len() <= MAX_EMAIL_LEN);
    prop_assert_eq!(email.key().as_str(), email.as_str().to_lowercase());
    prop_assert_eq!(email.key(), &email_key(raw));
    let again = Email::parse(email.as_str()).ok();
    prop_assert_eq!(again.as_ref(), Some(email), "re-parsing gives the same value");
    let lowered = Email::parse(email.key().as_str()).ok().map(|e| e.key().to_string());
    prop_assert_eq!(lowered.as_deref(), Some(email.key().as_str()), "the key is an address with the same key");
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn email_parse_never_panics_and_what_it_accepts_is_well_formed(raw in email_like()) {
        match Email::parse(&raw) {
            Ok(email) => assert_well_formed(&raw, &email)?,
            Err(e) => prop_assert!(matches!(e, AuthError::InvalidData(_)), "{e:?}"),
        }
    }

    #[test]
    fn valid_addresses_are_accepted_and_trimmed(
        address in valid_address(),
        before in prop::collection::vec(white_space(), 0..3),
        after in prop::collection::vec(white_space(), 0..3),
    ) {
        let raw = format!("{}{address}{}", String::from_iter(before), String::from_iter(after));
        let email = Email::parse(&raw);
        prop_assert!(email.is_ok(), "{raw:?} refused: {email:?}");
        if let Ok(email) = email {
            prop_assert_eq!(email.as_str(), address.as_str());
            assert_well_formed(&raw, &email)?;
        }
    }

    #[test]
    fn white_space_inside_is_refused(address in valid_address(), at in any::<Index>(), space in white_space()) {
        // Strictly inside: after the first character and before the last.
        let inner = 1 + at.index(address.len() - 1);
        let mut raw = address.clone();
        raw.insert(inner, space);
        prop_assert!(Email::parse(&raw).is_err(), "{raw:?} accepted");
    }

    #[test]
    fn no_at_sign_is_refused(raw in email_like()) {
        let raw = raw.replace('@', "");
        prop_assert!(Email::parse(&raw).is_err(), "{raw:?} accepted");
    }

    #[test]
    fn more_than_one_at_sign_is_refused(a in valid_address(), b in valid_address()) {
        let raw = format!("{a}@{b}");
        prop_assert!(Email::parse(&raw).is_err(), "{raw:?} accepted");
    }

    #[test]
    fn email_key_is_idempotent(raw in email_like()) {
        let key = email_key(&raw);
        prop_assert_eq!(email_key(key.as_str()), key.clone());
        prop_assert_eq!(key.as_str().trim(), key.as_str());
    }
}

// ---------------------------------------------------------------------------------------------
// The password policy

/// Strings around the limits: one-, two-, three- and four-byte characters (and NUL), 0 to 80
/// of them, so that both the character count and the 72-byte cap are crossed both ways.
fn password_like() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec!['a', 'Z', '7', ' ', '\0', 'é', '€', '😀']);
    prop_oneof![prop::collection::vec(chars, 0..80).prop_map(String::from_iter), any::<String>()]
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn without_strength_the_policy_is_exactly_the_length_rules(raw in password_like(), min_length in 0usize..24) {
        let policy = PasswordPolicy { min_length, min_strength: 0 };
        // The rules measure the NFKC form, the one that is hashed.
        let nfkc: String = unicode_normalization::UnicodeNormalization::nfkc(raw.as_str()).collect();
        let expected = nfkc.chars().count() >= min_length && nfkc.len() <= MAX_PASSWORD_BYTES;
        match policy.check(raw.clone()) {
            Ok(password) => {
                prop_assert!(expected, "{raw:?} accepted at min_length {min_length}");
                prop_assert_eq!(password.as_bytes(), nfkc.as_bytes());
            }
            Err(e) => {
                prop_assert!(!expected, "{raw:?} refused at min_length {min_length}: {e}");
                prop_assert!(matches!(e, AuthError::InvalidData(_)), "{e:?}");
            }
        }
    }
}

proptest! {
    // Each case runs the strength estimator up to four times (tens of ms in a debug build).
    #![proptest_config(cases(32))]

    #[test]
    fn strength_never_panics_is_monotone_and_never_echoes_the_password(
        raw in "[a-zA-Z0-9 !@#$%&*()|+-]{8,24}",
    ) {
        let mut refused_below = None;
        for min_strength in 1..=4u8 {
            let policy = PasswordPolicy { min_length: 8, min_strength };
            match policy.check(raw.clone()) {
                Ok(_) => prop_assert!(refused_below.is_none(), "{raw:?} accepted at {min_strength}, refused lower"),
                Err(e) => {
                    refused_below.get_or_insert(min_strength);
                    let message = e.to_string();
                    prop_assert!(message.contains("is too weak"), "{message}");
                    // A random string of 8 or more of these characters is never part of the
                    // fixed text by chance.
                    prop_assert!(!message.contains(raw.as_str()), "{message}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// Every codec here also accepts this secret, so verification always tries two keys.
const PREVIOUS: &[u8] = b"a previous secret";

fn codec(secret: &[u8]) -> TokenCodec {
    TokenCodec::new(TokenSettings {
        secret: secret.to_vec(),
        previous_secrets: vec![PREVIOUS.to_vec()],
        auth_ttl: Duration::days(1),
        leeway: Duration::seconds(30),
    })
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Metadata as the service stores it: string values under any keys.
fn metadata() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(any::<String>(), any::<String>(), 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn auth_input() -> impl Strategy<Value = AuthTokenInput> {
    (
        (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
        (metadata(), metadata(), any::<String>(), any::<String>()),
    )
        .prop_map(
            |(
                (actor_id, actor_type, auth_identity_id, auth_provider),
                (app_metadata, user_metadata, stamp, tenant),
            )| {
                AuthTokenInput {
                    actor_id,
                    actor_type,
                    auth_identity_id,
                    auth_provider,
                    app_metadata,
                    user_metadata,
                    stamp,
                    tenant,
                }
            },
        )
}

/// A secret no other one generated here is equivalent to: HMAC pads keys with zero bytes up to
/// its block size, so `k` and `k\0` sign alike; a last byte that is not zero rules that out.
fn secret() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(any::<u8>(), 0..48), 1..=255u8).prop_map(|(mut s, last)| {
        s.push(last);
        s
    })
}

/// Three base64url segments of arbitrary bytes, or of JSON with chosen headers.
fn three_segments() -> impl Strategy<Value = String> {
    let raw_bytes = prop::collection::vec(any::<u8>(), 0..96);
    let header = prop::sample::select(vec![
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"HS256"}"#,
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"HS512","typ":"JWT"}"#,
        r#"{"alg":"RS256","typ":"JWT"}"#,
        r#"{"typ":"JWT"}"#,
        "{}",
        "null",
    ]);
    let json_payload = (metadata(), any::<i64>(), any::<Option<String>>()).prop_map(|(mut m, exp, purpose)| {
        m.insert("exp".into(), Value::from(exp));
        m.insert("iat".into(), Value::from(0));
        if let Some(purpose) = purpose {
            m.insert("purpose".into(), Value::String(purpose));
        }
        Value::Object(m).to_string().into_bytes()
    });
    prop_oneof![
        (raw_bytes.clone(), raw_bytes.clone(), raw_bytes.clone()).prop_map(|(a, b, c)| format!(
            "{}.{}.{}",
            b64(&a),
            b64(&b),
            b64(&c)
        )),
        (header, json_payload, raw_bytes).prop_map(|(h, p, s)| format!(
            "{}.{}.{}",
            b64(h.as_bytes()),
            b64(&p),
            b64(&s)
        )),
    ]
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn reset_claims(now: DateTime<Utc>) -> impl Strategy<Value = ResetClaims> {
    (any::<String>(), any::<String>(), any::<String>(), any::<String>(), "[a-zA-Z0-9]{1,26}").prop_map(
        move |(entity_id, provider, actor_type, tenant, jti)| ResetClaims {
            entity_id,
            provider,
            actor_type,
            purpose: RESET_PURPOSE.into(),
            tenant,
            jti,
            iat: now.timestamp(),
            exp: now.timestamp() + 900,
            nbf: None,
        },
    )
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn verifying_any_string_never_panics(token in any::<String>()) {
        let c = codec(b"property secret");
        prop_assert!(c.verify_auth(&token, now()).is_err());
        prop_assert!(c.verify_reset(&token, now()).is_err());
    }

    #[test]
    fn verifying_three_base64_segments_never_panics_nor_passes(token in three_segments()) {
        let c = codec(b"property secret");
        prop_assert!(c.verify_auth(&token, now()).is_err());
        prop_assert!(c.verify_reset(&token, now()).is_err());
    }

}

proptest! {
    // Each case signs a token (and generates its claims): slower than the cases above.
    #![proptest_config(cases(64))]

    #[test]
    fn a_token_with_one_byte_changed_never_verifies(
        input in auth_input(),
        at in any::<Index>(),
        mask in 1..=127u8,
        reset in any::<bool>(),
    ) {
        let c = codec(b"property secret");
        let now = now();
        let token = if reset {
            c.issue_reset(&ResetClaims {
                entity_id: input.actor_id.clone(),
                provider: "emailpass".into(),
                actor_type: "customer".into(),
                purpose: RESET_PURPOSE.into(),
                tenant: input.tenant.clone(),
                jti: "jti".into(),
                iat: now.timestamp(),
                exp: now.timestamp() + 900,
                nbf: None,
            })
        } else {
            c.issue_auth(&input, now)
        };
        let mut bytes = token.map_err(|e| TestCaseError::fail(e.to_string()))?.into_bytes();
        let i = at.index(bytes.len());
        // Tokens are ASCII; a mask below 128 keeps them so (and so valid UTF-8).
        bytes[i] ^= mask;
        let changed = String::from_utf8(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(c.verify_auth(&changed, now).is_err(), "{changed}");
        prop_assert!(c.verify_reset(&changed, now).is_err(), "{changed}");
    }

    #[test]
    fn issued_auth_tokens_verify_with_their_claims(input in auth_input()) {
        let c = codec(b"property secret");
        let now = now();
        let token = c.issue_auth(&input, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let claims = c.verify_auth(&token, now);
        prop_assert!(claims.is_ok(), "{claims:?}");
        if let Ok(claims) = claims {
            prop_assert_eq!(&claims.actor_id, &input.actor_id);
            prop_assert_eq!(&claims.actor_type, &input.actor_type);
            prop_assert_eq!(&claims.auth_identity_id, &input.auth_identity_id);
            prop_assert_eq!(&claims.auth_provider, &input.auth_provider);
            prop_assert_eq!(&claims.app_metadata, &input.app_metadata);
            prop_assert_eq!(&claims.user_metadata, &input.user_metadata);
            prop_assert_eq!(&claims.stamp, &input.stamp);
            prop_assert_eq!(&claims.tenant, &input.tenant);
            prop_assert_eq!(claims.iat, now.timestamp());
            prop_assert_eq!(claims.purpose, None);
        }
        prop_assert_eq!(c.verify_reset(&token, now), Err(TokenRejection::WrongKind));
    }

    #[test]
    fn issued_reset_tokens_verify_with_their_claims(claims in reset_claims(now())) {
        let c = codec(b"property secret");
        let token = c.issue_reset(&claims).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let now = DateTime::from_timestamp(claims.iat, 0).unwrap_or_else(now);
        prop_assert_eq!(c.verify_reset(&token, now), Ok(claims));
        prop_assert_eq!(c.verify_auth(&token, now), Err(TokenRejection::WrongKind));
    }

    #[test]
    fn a_token_signed_with_another_secret_never_verifies(
        input in auth_input(),
        signer in secret(),
        verifier in secret(),
    ) {
        prop_assume!(signer != verifier && verifier != PREVIOUS && signer != PREVIOUS);
        let now = now();
        let token = codec(&signer).issue_auth(&input, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(codec(&signer).verify_auth(&token, now).is_ok());
        prop_assert_eq!(codec(&verifier).verify_auth(&token, now), Err(TokenRejection::Invalid));
        prop_assert_eq!(codec(&verifier).verify_reset(&token, now), Err(TokenRejection::Invalid));
    }
}
