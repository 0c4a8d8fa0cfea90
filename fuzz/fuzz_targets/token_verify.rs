//! Token verification on hostile input: `TokenCodec::verify_auth` and `verify_reset` must never
//! panic, never accept a token they did not sign, and, for a correctly signed token, accept only
//! claims of the right kind within their times.
//!
//! The first byte chooses what the rest is:
//! - even: the token itself, as lossy UTF-8 (must never verify: nobody here knows the secret);
//! - odd: a JWT payload (or, when it holds a `.`, a header and a payload), which this target
//!   signs with the codec's secret, so the fuzzer reaches the claims' decoding and checks.

#![no_main]

use auth_domain::token::{TokenCodec, TokenSettings, RESET_PURPOSE};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SECRET: &[u8] = b"fuzzing secret, current";
const PREVIOUS: &[u8] = b"fuzzing secret, previous";
const LEEWAY_SECONDS: i64 = 30;

fn codec() -> TokenCodec {
    TokenCodec::new(TokenSettings {
        secret: SECRET.to_vec(),
        previous_secrets: vec![PREVIOUS.to_vec()],
        auth_ttl: Duration::days(1),
        leeway: Duration::seconds(LEEWAY_SECONDS),
    })
}

/// `header.payload.signature` with HS256 over the given segments.
fn signed(header: &[u8], payload: &[u8], secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { unreachable!("HMAC takes any key length") };
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let codec = codec();
    // A fixed clock, so that every run of an input behaves alike.
    let Some(now) = DateTime::<Utc>::from_timestamp(1_800_000_000, 0) else { return };

    if mode % 2 == 0 {
        let token = String::from_utf8_lossy(rest);
        assert!(codec.verify_auth(&token, now).is_err(), "an unsigned input verified as an auth token");
        assert!(codec.verify_reset(&token, now).is_err(), "an unsigned input verified as a reset token");
        return;
    }

    let (header, payload) = match rest.iter().position(|b| *b == b'.') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], rest),
    };
    let secret = if mode & 2 == 0 { SECRET } else { PREVIOUS };
    let token = signed(header, payload, secret);

    if let Ok(claims) = codec.verify_auth(&token, now) {
        assert!(claims.purpose.is_none(), "a token with a purpose verified as an auth token");
        assert!(claims.exp.saturating_add(LEEWAY_SECONDS) > now.timestamp(), "an expired auth token verified");
        assert!(claims.iat <= now.timestamp().saturating_add(LEEWAY_SECONDS), "an auth token from the future verified");
    }
    if let Ok(claims) = codec.verify_reset(&token, now) {
        assert_eq!(claims.purpose, RESET_PURPOSE, "a token without the reset purpose verified as a reset token");
        assert!(!claims.jti.is_empty(), "a reset token without an id verified");
        assert!(claims.exp.saturating_add(LEEWAY_SECONDS) > now.timestamp(), "an expired reset token verified");
        assert!(claims.iat <= now.timestamp().saturating_add(LEEWAY_SECONDS), "a reset token from the future verified");
    }
    // The same bytes signed with a secret the codec does not know never verify.
    let foreign = signed(header, payload, b"some other secret");
    assert!(codec.verify_auth(&foreign, now).is_err(), "a token signed with another secret verified");
    assert!(codec.verify_reset(&foreign, now).is_err(), "a token signed with another secret verified");
});
