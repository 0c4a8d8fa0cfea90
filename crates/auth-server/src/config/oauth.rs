//! Sign-in with other providers: Google, GitHub and one OpenID Connect issuer per tenant. A
//! provider is on when its client id is set; its secret and the storefront's callback URL are
//! then required. Every `OAUTH_<PROVIDER>_*` setting but the endpoints is a tenant default.

use std::time::Duration;

use auth_domain::oauth::{outbound_url_ok, ClientSecret, Endpoints, OAuthProvider, ProviderKind};

use super::render::{fmt_duration, REDACTED};
use super::setting::{section, DefaultValue::*, Env, Secrecy, Setting};
use super::ConfigError;

section! {
    "Sign-in with other providers",
    OAUTH_GOOGLE_CLIENT_ID = Setting::new(
        Unset,
        "Google OAuth client id: turns sign-in with Google on",
        |c| c.oauth.provider(ProviderKind::Google).map(|p| p.client_id.clone()),
    )
    .tenant_default(),
    OAUTH_GOOGLE_CLIENT_SECRET = Setting::new(
        Unset,
        "Google OAuth client secret; required with OAUTH_GOOGLE_CLIENT_ID",
        |c| c.oauth.provider(ProviderKind::Google).map(|_| REDACTED.to_string()),
    )
    .secrecy(Secrecy::Secret)
    .tenant_default(),
    OAUTH_GOOGLE_CALLBACK_URL = Setting::new(
        Unset,
        "the storefront page Google sends the browser back to (redirect_uri); required with OAUTH_GOOGLE_CLIENT_ID",
        |c| c.oauth.provider(ProviderKind::Google).map(|p| p.callback_url.clone()),
    )
    .tenant_default(),
    OAUTH_GOOGLE_SCOPES = Setting::new(
        Text("openid email profile"),
        "scopes asked of Google (space- or comma-separated)",
        |c| c.oauth.provider(ProviderKind::Google).map(|p| p.scopes.join(" ")),
    )
    .tenant_default(),
    OAUTH_GOOGLE_ISSUER = Setting::new(
        Text("https://accounts.google.com"),
        "for tests only: the issuer Google's endpoints are discovered from",
        |c| c.oauth.provider(ProviderKind::Google).map(|_| c.oauth.google_issuer.clone()),
    ),
    OAUTH_GITHUB_CLIENT_ID = Setting::new(
        Unset,
        "GitHub OAuth app client id: turns sign-in with GitHub on",
        |c| c.oauth.provider(ProviderKind::GitHub).map(|p| p.client_id.clone()),
    )
    .tenant_default(),
    OAUTH_GITHUB_CLIENT_SECRET = Setting::new(
        Unset,
        "GitHub OAuth app client secret; required with OAUTH_GITHUB_CLIENT_ID",
        |c| c.oauth.provider(ProviderKind::GitHub).map(|_| REDACTED.to_string()),
    )
    .secrecy(Secrecy::Secret)
    .tenant_default(),
    OAUTH_GITHUB_CALLBACK_URL = Setting::new(
        Unset,
        "the storefront page GitHub sends the browser back to; required with OAUTH_GITHUB_CLIENT_ID",
        |c| c.oauth.provider(ProviderKind::GitHub).map(|p| p.callback_url.clone()),
    )
    .tenant_default(),
    OAUTH_GITHUB_SCOPES = Setting::new(
        Text("read:user user:email"),
        "scopes asked of GitHub (space- or comma-separated)",
        |c| c.oauth.provider(ProviderKind::GitHub).map(|p| p.scopes.join(" ")),
    )
    .tenant_default(),
    OAUTH_GITHUB_URL = Setting::new(
        Text("https://github.com"),
        "for tests only: the base of GitHub's /login/oauth/authorize and /login/oauth/access_token",
        |c| c.oauth.provider(ProviderKind::GitHub).map(|_| c.oauth.github_url.clone()),
    ),
    OAUTH_GITHUB_API_URL = Setting::new(
        Text("https://api.github.com"),
        "for tests only: the base of GitHub's REST API (/user, /user/emails)",
        |c| c.oauth.provider(ProviderKind::GitHub).map(|_| c.oauth.github_api_url.clone()),
    ),
    OAUTH_OIDC_ISSUER = Setting::new(
        Unset,
        "an OpenID Connect issuer (https; discovery from /.well-known/openid-configuration); required with OAUTH_OIDC_CLIENT_ID",
        |c| c.oauth.provider(ProviderKind::Oidc).and_then(|p| match &p.endpoints {
            Endpoints::Discovered { issuer, .. } => Some(issuer.clone()),
            Endpoints::GitHub { .. } => None,
        }),
    )
    .tenant_default(),
    OAUTH_OIDC_CLIENT_ID = Setting::new(
        Unset,
        "client id at OAUTH_OIDC_ISSUER: turns sign-in with the provider oidc on",
        |c| c.oauth.provider(ProviderKind::Oidc).map(|p| p.client_id.clone()),
    )
    .tenant_default(),
    OAUTH_OIDC_CLIENT_SECRET = Setting::new(
        Unset,
        "client secret at OAUTH_OIDC_ISSUER; required with OAUTH_OIDC_CLIENT_ID",
        |c| c.oauth.provider(ProviderKind::Oidc).map(|_| REDACTED.to_string()),
    )
    .secrecy(Secrecy::Secret)
    .tenant_default(),
    OAUTH_OIDC_CALLBACK_URL = Setting::new(
        Unset,
        "the storefront page the issuer sends the browser back to; required with OAUTH_OIDC_CLIENT_ID",
        |c| c.oauth.provider(ProviderKind::Oidc).map(|p| p.callback_url.clone()),
    )
    .tenant_default(),
    OAUTH_OIDC_SCOPES = Setting::new(
        Text("openid email profile"),
        "scopes asked of the issuer (space- or comma-separated; openid is always sent)",
        |c| c.oauth.provider(ProviderKind::Oidc).map(|p| p.scopes.join(" ")),
    )
    .tenant_default(),
    OAUTH_OIDC_DISPLAY_NAME = Setting::new(
        Text("OpenID Connect"),
        "the display_name of the provider oidc in GET /auth/{actor}/providers",
        |c| c.oauth.provider(ProviderKind::Oidc).map(|p| p.display_name.clone()),
    )
    .tenant_default(),
    OAUTH_HTTP_TIMEOUT = Setting::new(
        Text("10s"),
        "time limit of one request to a provider (discovery, keys, token, GitHub's API)",
        |c| Some(fmt_duration(c.oauth.http_timeout)),
    ),
}

/// The providers, and how they are called.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub providers: Vec<OAuthProvider>,
    pub http_timeout: Duration,
    pub google_issuer: String,
    pub github_url: String,
    pub github_api_url: String,
}

impl OAuthConfig {
    pub fn provider(&self, kind: ProviderKind) -> Option<&OAuthProvider> {
        self.providers.iter().find(|p| p.kind == kind)
    }

    pub(super) fn read(env: &Env) -> Result<OAuthConfig, ConfigError> {
        let url = |setting: &Setting| -> Result<String, ConfigError> {
            let value = env.string(setting)?.trim_end_matches('/').to_string();
            if outbound_url_ok(&value) {
                Ok(value)
            } else {
                Err(setting.invalid(&format!("{value:?} is not an https URL (http only to a loopback address)")))
            }
        };
        let google_issuer = url(&OAUTH_GOOGLE_ISSUER)?;
        let github_url = url(&OAUTH_GITHUB_URL)?;
        let github_api_url = url(&OAUTH_GITHUB_API_URL)?;
        let mut providers = Vec::new();
        let common = |kind: ProviderKind,
                      id: &Setting,
                      secret: &Setting,
                      callback: &Setting,
                      scopes: &Setting,
                      display_name: String,
                      endpoints: Endpoints|
         -> Result<Option<OAuthProvider>, ConfigError> {
            let Some(client_id) = env.get(id) else {
                return Ok(None);
            };
            let client_secret =
                env.get(secret).ok_or_else(|| secret.invalid(&format!("is required with {}", id.name)))?;
            let callback_url =
                env.get(callback).ok_or_else(|| callback.invalid(&format!("is required with {}", id.name)))?;
            if !(callback_url.starts_with("https://") || callback_url.starts_with("http://"))
                || callback_url.contains(char::is_whitespace)
            {
                return Err(callback.invalid(&format!("{callback_url:?} is not an http(s) URL")));
            }
            let mut scopes: Vec<String> =
                env.string(scopes)?.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect();
            if kind != ProviderKind::GitHub && !scopes.iter().any(|s| s == "openid") {
                scopes.insert(0, "openid".into());
            }
            Ok(Some(OAuthProvider {
                kind,
                display_name,
                client_id,
                client_secret: ClientSecret::new(client_secret),
                callback_url,
                scopes,
                endpoints,
            }))
        };
        let google = Endpoints::Discovered {
            issuer: google_issuer.clone(),
            // Google's ID tokens say `accounts.google.com` as often as the issuer's URL.
            accepted_issuers: vec![google_issuer.trim_start_matches("https://").to_string()],
        };
        providers.extend(common(
            ProviderKind::Google,
            &OAUTH_GOOGLE_CLIENT_ID,
            &OAUTH_GOOGLE_CLIENT_SECRET,
            &OAUTH_GOOGLE_CALLBACK_URL,
            &OAUTH_GOOGLE_SCOPES,
            "Google".into(),
            google,
        )?);
        let github = Endpoints::GitHub {
            authorize_url: format!("{github_url}/login/oauth/authorize"),
            token_url: format!("{github_url}/login/oauth/access_token"),
            api_url: github_api_url.clone(),
        };
        providers.extend(common(
            ProviderKind::GitHub,
            &OAUTH_GITHUB_CLIENT_ID,
            &OAUTH_GITHUB_CLIENT_SECRET,
            &OAUTH_GITHUB_CALLBACK_URL,
            &OAUTH_GITHUB_SCOPES,
            "GitHub".into(),
            github,
        )?);
        if env.get(&OAUTH_OIDC_CLIENT_ID).is_some() {
            let issuer = env
                .get(&OAUTH_OIDC_ISSUER)
                .ok_or_else(|| OAUTH_OIDC_ISSUER.invalid("is required with OAUTH_OIDC_CLIENT_ID"))?;
            let issuer = issuer.trim_end_matches('/').to_string();
            if !outbound_url_ok(&issuer) {
                return Err(OAUTH_OIDC_ISSUER
                    .invalid(&format!("{issuer:?} is not an https URL (http only to a loopback address)")));
            }
            let endpoints = Endpoints::Discovered { issuer, accepted_issuers: Vec::new() };
            providers.extend(common(
                ProviderKind::Oidc,
                &OAUTH_OIDC_CLIENT_ID,
                &OAUTH_OIDC_CLIENT_SECRET,
                &OAUTH_OIDC_CALLBACK_URL,
                &OAUTH_OIDC_SCOPES,
                env.string(&OAUTH_OIDC_DISPLAY_NAME)?,
                endpoints,
            )?);
        }
        let http_timeout = env.duration(&OAUTH_HTTP_TIMEOUT)?;
        if http_timeout.is_zero() || http_timeout > Duration::from_secs(60) {
            return Err(OAUTH_HTTP_TIMEOUT.invalid("must be between 1ms and 60s"));
        }
        Ok(OAuthConfig { providers, http_timeout, google_issuer, github_url, github_api_url })
    }
}

/// The settings a tenant sets together or not at all: a client id with its secret (never one
/// over the other's global value).
pub const TOGETHER: [(&str, &str); 3] = [
    ("OAUTH_GOOGLE_CLIENT_ID", "OAUTH_GOOGLE_CLIENT_SECRET"),
    ("OAUTH_GITHUB_CLIENT_ID", "OAUTH_GITHUB_CLIENT_SECRET"),
    ("OAUTH_OIDC_CLIENT_ID", "OAUTH_OIDC_CLIENT_SECRET"),
];

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn a_provider_is_on_with_its_client_id_and_needs_its_secret_and_callback() {
        assert!(config(&[]).unwrap().oauth.providers.is_empty());
        let on = config(&[
            ("OAUTH_GITHUB_CLIENT_ID", "gh"),
            ("OAUTH_GITHUB_CLIENT_SECRET", "s"),
            ("OAUTH_GITHUB_CALLBACK_URL", "https://shop.example/cb"),
        ])
        .unwrap();
        let github = on.oauth.provider(ProviderKind::GitHub).unwrap();
        assert_eq!(github.scopes, vec!["read:user", "user:email"]);
        assert_eq!(
            github.endpoints,
            Endpoints::GitHub {
                authorize_url: "https://github.com/login/oauth/authorize".into(),
                token_url: "https://github.com/login/oauth/access_token".into(),
                api_url: "https://api.github.com".into(),
            },
            "GitHub's real endpoints"
        );
        let err =
            config(&[("OAUTH_GOOGLE_CLIENT_ID", "g"), ("OAUTH_GOOGLE_CALLBACK_URL", "https://s/cb")]).unwrap_err();
        assert_eq!(err.key, "OAUTH_GOOGLE_CLIENT_SECRET");
        let err = config(&[
            ("OAUTH_OIDC_CLIENT_ID", "o"),
            ("OAUTH_OIDC_CLIENT_SECRET", "s"),
            ("OAUTH_OIDC_CALLBACK_URL", "https://s/cb"),
            ("OAUTH_OIDC_ISSUER", "http://id.example"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "OAUTH_OIDC_ISSUER", "plain http only to loopback");
        let oidc = config(&[
            ("OAUTH_OIDC_CLIENT_ID", "o"),
            ("OAUTH_OIDC_CLIENT_SECRET", "s"),
            ("OAUTH_OIDC_CALLBACK_URL", "https://s/cb"),
            ("OAUTH_OIDC_ISSUER", "http://127.0.0.1:4000/"),
            ("OAUTH_OIDC_SCOPES", "email,profile"),
        ])
        .unwrap();
        let p = oidc.oauth.provider(ProviderKind::Oidc).unwrap();
        assert_eq!(p.scopes, vec!["openid", "email", "profile"]);
        assert!(!format!("{oidc:?}").contains("\"s\""), "the secret is never printed");
    }
}
