//! Sign-in with another identity provider (Google, GitHub, any OpenID Connect issuer) over the
//! redirect flow Medusa's `@medusajs/auth-google` and `@medusajs/auth-github` use: the client asks
//! `/auth/{actor}/{provider}` for a `location`, the browser goes there, and the provider sends it
//! back to the storefront's callback page with `code` and `state`, which the storefront hands to
//! `/auth/{actor}/{provider}/callback`.
//!
//! What is here is pure: the providers' settings (`OAuthProvider`), the authorization URL with
//! its `state`, PKCE challenge and `nonce` (`Authorization`), the OpenID discovery document, the
//! ID token check (`id_token`) and the GitHub user API's answers (`github`). The network is the
//! `ports::ProviderHttp` port; the use cases that combine them are `service::oauth`.

pub mod github;
pub mod id_token;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::newtypes::AuthProvider;
use crate::secret::{fill_random, sha256_hex, PlainToken};
use crate::AuthError;

/// The three kinds of provider a tenant may configure, one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Google: OpenID Connect with the issuer `https://accounts.google.com`.
    Google,
    /// GitHub: OAuth 2 and its REST API for the user and the emails (no ID token).
    GitHub,
    /// Any OpenID Connect issuer, found by discovery (a store's Keycloak, Auth0, ...).
    Oidc,
}

impl ProviderKind {
    /// The `{provider}` of the routes, the `provider` of the identities, the `auth_provider` of
    /// the tokens.
    pub fn id(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::GitHub => "github",
            ProviderKind::Oidc => "oidc",
        }
    }
}

/// A client secret: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> ClientSecret {
        ClientSecret(secret.into())
    }

    /// The secret, for the token request to its provider only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a provider's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// OpenID Connect: `{issuer}/.well-known/openid-configuration`. `accepted_issuers` are the
    /// `iss` values its ID tokens may carry (Google writes `accounts.google.com` too).
    Discovered { issuer: String, accepted_issuers: Vec<String> },
    /// GitHub's fixed endpoints (`https://github.com/login/oauth/...`, `https://api.github.com`).
    GitHub { authorize_url: String, token_url: String, api_url: String },
}

/// A provider as a tenant configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthProvider {
    pub kind: ProviderKind,
    pub display_name: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// The storefront page the provider sends the browser back to (`redirect_uri`).
    pub callback_url: String,
    pub scopes: Vec<String>,
    pub endpoints: Endpoints,
}

impl OAuthProvider {
    pub fn id(&self) -> AuthProvider {
        AuthProvider::new(self.kind.id())
    }

    /// Whether the provider answers an ID token (OpenID Connect), so a `nonce` is sent.
    pub fn is_openid(&self) -> bool {
        matches!(self.endpoints, Endpoints::Discovered { .. })
    }
}

/// The endpoints of a sign-in: discovered (OpenID Connect) or fixed (GitHub).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    pub authorization: String,
    pub token: String,
    /// OpenID Connect: where the issuer's keys are, and the `iss` its ID tokens carry.
    pub jwks_uri: Option<String>,
    pub issuer: Option<String>,
    /// GitHub: the REST API's base URL.
    pub api: Option<String>,
    /// Whether the token endpoint takes the client's credentials in HTTP Basic (the OpenID
    /// default) rather than in the form.
    pub basic_auth: bool,
}

/// The OpenID Connect discovery document (the fields used here).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

impl Discovery {
    /// Reads a discovery document fetched for `issuer`: its `issuer` must be exactly the one asked
    /// for (OpenID Connect Discovery §4.3) and every endpoint an allowed URL (`outbound_url_ok`).
    pub fn parse(body: &str, issuer: &str) -> Result<Discovery, String> {
        let found: Discovery =
            serde_json::from_str(body).map_err(|e| format!("the discovery document does not parse: {e}"))?;
        if found.issuer != issuer {
            return Err(format!("the discovery document names the issuer {:?}, not {issuer:?}", found.issuer));
        }
        for url in [&found.authorization_endpoint, &found.token_endpoint, &found.jwks_uri] {
            if !outbound_url_ok(url) {
                return Err(format!("the discovery document names an endpoint that is not https: {url:?}"));
            }
        }
        Ok(found)
    }

    pub fn endpoints(&self) -> ProviderEndpoints {
        let basic = match &self.token_endpoint_auth_methods_supported {
            None => true,
            Some(methods) => methods.iter().any(|m| m == "client_secret_basic"),
        };
        ProviderEndpoints {
            authorization: self.authorization_endpoint.clone(),
            token: self.token_endpoint.clone(),
            jwks_uri: Some(self.jwks_uri.clone()),
            issuer: Some(self.issuer.clone()),
            api: None,
            basic_auth: basic,
        }
    }
}

/// Whether a provider URL may be called: `https://`, or `http://` to a loopback address only
/// (a provider run beside the server in development and tests).
pub fn outbound_url_ok(url: &str) -> bool {
    if url.contains(char::is_whitespace) {
        return false;
    }
    if let Some(rest) = url.strip_prefix("https://") {
        return !rest.is_empty();
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `application/x-www-form-urlencoded` of one value (also right for a URL's query).
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Pairs as `a=1&b=2`, each encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect::<Vec<_>>().join("&")
}

/// `n` random bytes, base64url without padding.
fn random_b64(n: usize) -> Result<String, AuthError> {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// The PKCE S256 challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A new sign-in: the URL the browser goes to, and what is kept to finish it. The `state` and
/// the `nonce` are random (256 bits); only their SHA-256 is stored. The PKCE verifier is a
/// secret too: the use case stores it sealed.
#[derive(Debug)]
pub struct Authorization {
    pub location: String,
    pub state: PlainToken,
    pub nonce_hash: Option<String>,
    pub pkce_verifier: PlainToken,
}

impl Authorization {
    /// A sign-in with `provider` at `endpoints.authorization`.
    pub fn new(provider: &OAuthProvider, endpoints: &ProviderEndpoints) -> Result<Authorization, AuthError> {
        let state = random_b64(32)?;
        let verifier = random_b64(32)?;
        let challenge = pkce_challenge(&verifier);
        let scope = provider.scopes.join(" ");
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", provider.client_id.as_str()),
            ("redirect_uri", provider.callback_url.as_str()),
            ("scope", scope.as_str()),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let nonce = if provider.is_openid() { Some(random_b64(32)?) } else { None };
        if let Some(nonce) = &nonce {
            pairs.push(("nonce", nonce.as_str()));
        }
        let separator = if endpoints.authorization.contains('?') { '&' } else { '?' };
        let location = format!("{}{separator}{}", endpoints.authorization, form(&pairs));
        Ok(Authorization {
            location,
            nonce_hash: nonce.as_deref().map(sha256_hex),
            state: PlainToken::new(state),
            pkce_verifier: PlainToken::new(verifier),
        })
    }
}

/// Who the provider says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderProfile {
    /// The provider's stable id of the user (`sub`; GitHub's numeric `id`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider asserts that the user controls `email`.
    pub email_verified: bool,
    /// `name`, `given_name`, `family_name`, `picture`, and for GitHub `login` and `profile_url`.
    pub details: Map<String, Value>,
}

impl ProviderProfile {
    /// The longest subject accepted (providers use far less).
    pub const MAX_SUBJECT: usize = 255;

    /// The `user_metadata` of the provider identity: the profile as the provider gave it.
    pub fn user_metadata(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if let Some(email) = &self.email {
            map.insert("email".into(), Value::String(email.clone()));
        }
        map.insert("email_verified".into(), Value::Bool(self.email_verified));
        for (key, value) in &self.details {
            if !value.is_null() {
                map.insert(key.clone(), value.clone());
            }
        }
        map
    }
}

/// A string field of a JSON object, when it is a non-empty string.
pub(crate) fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The token endpoint's answer (RFC 6749 §5.1, §5.2): the error when it names one.
pub fn token_answer(status: u16, body: &str) -> Result<Map<String, Value>, String> {
    let parsed: Value = serde_json::from_str(body)
        .map_err(|_| format!("the token endpoint answered HTTP {status} with a body that is not JSON"))?;
    let Value::Object(map) = parsed else {
        return Err(format!("the token endpoint answered HTTP {status} with JSON that is not an object"));
    };
    if let Some(error) = text(&map, "error") {
        return Err(format!("the token endpoint refused the code: {}", safe_code(&error)));
    }
    if !(200..300).contains(&status) {
        return Err(format!("the token endpoint answered HTTP {status}"));
    }
    Ok(map)
}

/// An error code from a provider as it may be shown and logged: RFC 6749 codes are
/// `[\x20-\x7e]` without `"` and `\`; anything else (or over 64 characters) becomes `invalid`.
pub fn safe_code(code: &str) -> String {
    if !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        code.to_string()
    } else {
        "invalid".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> OAuthProvider {
        OAuthProvider {
            kind: ProviderKind::Oidc,
            display_name: "Acme".into(),
            client_id: "client id".into(),
            client_secret: ClientSecret::new("s3cret"),
            callback_url: "https://shop.example/auth/callback?x=1".into(),
            scopes: vec!["openid".into(), "email".into()],
            endpoints: Endpoints::Discovered { issuer: "https://id.example".into(), accepted_issuers: vec![] },
        }
    }

    #[test]
    fn the_authorization_url_carries_state_pkce_and_nonce() {
        let provider = oidc();
        let endpoints = ProviderEndpoints {
            authorization: "https://id.example/authorize".into(),
            token: "https://id.example/token".into(),
            jwks_uri: None,
            issuer: None,
            api: None,
            basic_auth: true,
        };
        let a = Authorization::new(&provider, &endpoints).unwrap();
        let b = Authorization::new(&provider, &endpoints).unwrap();
        assert_ne!(a.state, b.state, "random");
        let state = a.state.clone().into_exposed();
        assert!(a.location.starts_with("https://id.example/authorize?response_type=code&client_id=client%20id&"));
        assert!(a.location.contains("redirect_uri=https%3A%2F%2Fshop.example%2Fauth%2Fcallback%3Fx%3D1"));
        assert!(a.location.contains(&format!("state={state}")));
        assert!(a.location.contains("code_challenge_method=S256"));
        let challenge = pkce_challenge(&a.pkce_verifier.clone().into_exposed());
        assert!(a.location.contains(&format!("code_challenge={challenge}")));
        assert!(a.location.contains("scope=openid%20email"));
        assert!(a.nonce_hash.is_some() && a.location.contains("&nonce="));
        assert!(!format!("{provider:?}").contains("s3cret"));
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn only_https_or_loopback_http_is_called() {
        for ok in ["https://accounts.google.com/x", "http://127.0.0.1:4000/a", "http://localhost/x", "http://[::1]:9/"]
        {
            assert!(outbound_url_ok(ok), "{ok}");
        }
        for bad in ["http://example.com/", "http://127.0.0.1.evil.com/", "ftp://x", "http://a@127.0.0.1/", "https://"] {
            assert!(!outbound_url_ok(bad), "{bad}");
        }
    }

    #[test]
    fn discovery_must_name_the_issuer_asked_for() {
        let doc = r#"{"issuer":"https://id.example","authorization_endpoint":"https://id.example/a",
            "token_endpoint":"https://id.example/t","jwks_uri":"https://id.example/k"}"#;
        assert!(Discovery::parse(doc, "https://id.example").is_ok());
        assert!(Discovery::parse(doc, "https://other.example").is_err());
        let plain = doc.replace("https://id.example/t", "http://id.example/t");
        assert!(Discovery::parse(&plain, "https://id.example").is_err());
    }

    #[test]
    fn token_errors_are_named_safely() {
        assert!(token_answer(400, r#"{"error":"invalid_grant"}"#).unwrap_err().contains("invalid_grant"));
        assert!(token_answer(200, r#"{"error":"<script>"}"#).unwrap_err().ends_with("invalid"));
        assert!(token_answer(200, r#"{"access_token":"x"}"#).is_ok());
        assert!(token_answer(500, "oops").is_err());
    }
}
