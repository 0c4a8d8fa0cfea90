//! Sign-in with another provider (`crate::oauth`): begin (a pending sign-in and the provider's
//! URL), then the callback in three steps, so that no database connection waits on a provider:
//! take the pending sign-in back (database), ask the provider who the user is (network), find or
//! create the identity and answer a token (database).
//!
//! Linking: a provider's sign-in never joins an existing identity, whatever email it asserts.
//! Each (tenant, provider, subject) is an identity of its own, with `actor_id: ""` until the
//! storefront creates its customer, which `/store/customers` allows only for an email the
//! provider verified and no account holds (docs/security.md, "Sign-in with other providers").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Duration;
use serde_json::Value;

use super::{AuthService, Authenticated, OAUTH_FAILED, OAUTH_LINK_REFUSED, OAUTH_STATE_INVALID};
use crate::context::{AuthContext, RequestContext};
use crate::email::email_key;
use crate::model::{new_id, IdentityRecord, NewOAuthState, NewSocialIdentity};
use crate::newtypes::{AuthProvider, EntityKey};
use crate::oauth::id_token::{self, Expected, Refusal};
use crate::oauth::{
    form, form_encode, github, outbound_url_ok, token_answer, Authorization, Discovery, Endpoints, OAuthProvider,
    ProviderEndpoints, ProviderProfile,
};
use crate::ports::{AuthStore, Clock, HttpAnswer, ProviderHttp};
use crate::secret::{random_hex, PlainToken};
use crate::{AuthError, TokenRejection};

/// How long a pending sign-in waits for its callback.
pub const STATE_TTL_MINUTES: i64 = 10;
/// How long a discovery document and a JWKS are kept.
const CACHE_TTL: StdDuration = StdDuration::from_secs(3600);
/// A JWKS is fetched again for an unknown `kid` at most this often.
const JWKS_REFETCH_MIN: StdDuration = StdDuration::from_secs(60);
/// Clock leeway for the ID token's times.
const ID_TOKEN_LEEWAY_SECS: u64 = 30;

/// The sealing context of a pending sign-in's PKCE verifier.
fn sealing_context(state_hash: &str) -> String {
    format!("oauth-pkce:{state_hash}")
}

/// Without a `ProviderHttp` (unit tests, consumers without providers) every call fails.
#[derive(Debug)]
pub(super) struct NoProviderHttp;

impl ProviderHttp for NoProviderHttp {
    fn get(&self, _url: &str, _headers: &[(&str, &str)]) -> Result<HttpAnswer, String> {
        Err("no HTTP client for providers".into())
    }
    fn post_form(&self, _url: &str, _headers: &[(&str, &str)], _body: &str) -> Result<HttpAnswer, String> {
        Err("no HTTP client for providers".into())
    }
}

/// Discovery documents by issuer and JWKS by URL, for `CACHE_TTL`.
#[derive(Debug, Default)]
pub(super) struct ProviderCache {
    discovery: Mutex<HashMap<String, (Instant, Discovery)>>,
    /// The JWKS, when it was fetched.
    jwks: Mutex<HashMap<String, (Instant, Value)>>,
}

/// A pending sign-in taken back by its callback, with what finishing it needs.
#[derive(Debug)]
pub struct PendingSignIn {
    pub provider: OAuthProvider,
    /// The account a linking sign-in joins the provider to.
    pub link_identity_id: Option<String>,
    redirect_uri: String,
    nonce_hash: Option<String>,
    verifier: PlainToken,
}

/// The refusal of a callback: the client sees `message` (401); `reason` is logged.
fn refused(message: &str, reason: impl std::fmt::Display) -> AuthError {
    log::info!("sign-in with a provider refused: {reason}");
    AuthError::Unauthorized(message.into())
}

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// The context of `/auth/{actor}/{provider}` for a provider the tenant configured (400
    /// `not_allowed` otherwise), and that provider.
    pub fn oauth_context(
        &self,
        request: RequestContext,
        actor_type: &str,
        provider: &str,
        client: String,
    ) -> Result<(AuthContext, OAuthProvider), AuthError> {
        let actor_type = self.check_actor_type(&request, actor_type)?;
        let found = request
            .settings
            .oauth_providers
            .iter()
            .find(|p| p.kind.id() == provider)
            .cloned()
            .ok_or_else(|| AuthError::NotAllowed(format!("Unknown auth provider: {provider}")))?;
        let ctx = AuthContext {
            tenant: request.tenant,
            settings: request.settings,
            keys: request.keys,
            actor_type,
            provider: found.id(),
            client,
        };
        Ok((ctx, found))
    }

    /// Who may link a provider to their account: a caller (session or bearer, its stamp current)
    /// of the route's actor type who proved the password of an `emailpass` identity. Anyone else
    /// is the negotiated 401.
    pub fn oauth_link_caller(&self, ctx: &AuthContext, caller: &Authenticated) -> Result<(), AuthError> {
        if caller.actor_type != ctx.actor_type || !caller.auth_provider.is_emailpass() {
            return Err(TokenRejection::WrongContext.into());
        }
        Ok(())
    }

    /// The endpoints of `provider`: GitHub's fixed ones, or discovered (cached). Network.
    pub fn oauth_endpoints(&self, provider: &OAuthProvider) -> Result<ProviderEndpoints, AuthError> {
        match &provider.endpoints {
            Endpoints::GitHub { authorize_url, token_url, api_url } => Ok(ProviderEndpoints {
                authorization: authorize_url.clone(),
                token: token_url.clone(),
                jwks_uri: None,
                issuer: None,
                api: Some(api_url.clone()),
                basic_auth: false,
            }),
            Endpoints::Discovered { issuer, .. } => self.discover(issuer).map(|d| d.endpoints()),
        }
    }

    fn discover(&self, issuer: &str) -> Result<Discovery, AuthError> {
        let cache = &self.oauth_cache.discovery;
        if let Some((at, found)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(issuer) {
            if at.elapsed() < CACHE_TTL {
                return Ok(found.clone());
            }
        }
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let unavailable = |why: String| AuthError::ProviderUnavailable(format!("discovery of {issuer}: {why}"));
        let answer =
            self.provider_get(&url, &[("accept", "application/json")]).map_err(|e| unavailable(e.to_string()))?;
        if answer.status != 200 {
            return Err(unavailable(format!("HTTP {}", answer.status)));
        }
        let found = Discovery::parse(&answer.body, issuer).map_err(|e| unavailable(e.to_string()))?;
        cache.lock().unwrap_or_else(|p| p.into_inner()).insert(issuer.to_string(), (Instant::now(), found.clone()));
        Ok(found)
    }

    fn provider_get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpAnswer, AuthError> {
        if !outbound_url_ok(url) {
            return Err(AuthError::Unexpected(format!("refused to call {url:?}: not https")));
        }
        self.provider_http.get(url, headers).map_err(|e| AuthError::Unexpected(format!("GET {url}: {e}")))
    }

    /// Starts a sign-in: stores the pending sign-in and answers the provider's URL. With
    /// `link`, the sign-in joins the provider to that caller's account instead (`oauth_link`).
    pub fn oauth_begin(
        &self,
        ctx: &AuthContext,
        provider: &OAuthProvider,
        endpoints: &ProviderEndpoints,
        link: Option<&Authenticated>,
    ) -> Result<String, AuthError> {
        let authorization = Authorization::new(provider, endpoints)?;
        let state_hash = authorization.state.hashed();
        let sealed =
            self.secrets.seal(&authorization.pkce_verifier.into_exposed(), &sealing_context(state_hash.as_str()))?;
        let now = self.clock.now();
        let pending = NewOAuthState {
            state_hash,
            actor_type: ctx.actor_type.clone(),
            provider: ctx.provider.clone(),
            nonce_hash: authorization.nonce_hash,
            pkce_verifier_sealed: sealed,
            redirect_uri: provider.callback_url.clone(),
            link_identity_id: link.map(|caller| caller.identity.auth_identity_id.clone()),
            created_at: now,
            expires_at: now + Duration::minutes(STATE_TTL_MINUTES),
        };
        self.store.create_oauth_state(&ctx.tenant, &pending)?;
        Ok(authorization.location)
    }

    /// Takes the pending sign-in of `state` back (it can never be used again), for the
    /// request's actor type and provider: 401 when there is none, or it is another's.
    pub fn oauth_take(
        &self,
        ctx: &AuthContext,
        provider: &OAuthProvider,
        state: Option<&str>,
    ) -> Result<PendingSignIn, AuthError> {
        let state = state
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .ok_or_else(|| refused(OAUTH_STATE_INVALID, "no state"))?;
        let hash = PlainToken::new(state).hashed();
        let taken = self.store.take_oauth_state(&ctx.tenant, &hash, self.clock.now())?;
        let Some(taken) = taken else {
            return Err(refused(OAUTH_STATE_INVALID, "an unknown, used or expired state"));
        };
        if taken.actor_type != ctx.actor_type || taken.provider != ctx.provider {
            return Err(refused(OAUTH_STATE_INVALID, "a state of another actor type or provider"));
        }
        let verifier = self.secrets.open(&taken.pkce_verifier_sealed, &sealing_context(hash.as_str()))?;
        Ok(PendingSignIn {
            provider: provider.clone(),
            link_identity_id: taken.link_identity_id,
            redirect_uri: taken.redirect_uri,
            nonce_hash: taken.nonce_hash,
            verifier: PlainToken::new(verifier),
        })
    }

    /// Exchanges `code` and tells who the user is: from the ID token (OpenID Connect) or from
    /// GitHub's user API. Network; every failure is 401 "Authentication with the provider failed".
    pub fn oauth_profile(&self, pending: &PendingSignIn, code: &str) -> Result<ProviderProfile, AuthError> {
        let endpoints = self.oauth_endpoints(&pending.provider).map_err(|e| refused(OAUTH_FAILED, e))?;
        let tokens = self.exchange(pending, &endpoints, code).map_err(|e| refused(OAUTH_FAILED, e))?;
        let profile = match &pending.provider.endpoints {
            Endpoints::Discovered { accepted_issuers, .. } => {
                self.id_token_profile(pending, &endpoints, accepted_issuers, &tokens)
            }
            Endpoints::GitHub { .. } => self.github_profile(&endpoints, &tokens),
        };
        let profile = profile.map_err(|e| refused(OAUTH_FAILED, e))?;
        if profile.subject.len() > ProviderProfile::MAX_SUBJECT {
            return Err(refused(OAUTH_FAILED, "a subject over 255 bytes"));
        }
        Ok(profile)
    }

    /// The token request (RFC 6749 §4.1.3 with PKCE), authenticated with the client secret.
    fn exchange(
        &self,
        pending: &PendingSignIn,
        endpoints: &ProviderEndpoints,
        code: &str,
    ) -> Result<serde_json::Map<String, Value>, String> {
        let provider = &pending.provider;
        let verifier = pending.verifier.clone().into_exposed();
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        let basic;
        let mut headers = vec![("accept", "application/json")];
        if endpoints.basic_auth {
            // RFC 6749 §2.3.1: each part form-encoded, then Basic.
            let pair = format!("{}:{}", form_encode(&provider.client_id), form_encode(provider.client_secret.expose()));
            basic = format!("Basic {}", STANDARD.encode(pair));
            headers.push(("authorization", basic.as_str()));
        } else {
            pairs.push(("client_id", provider.client_id.as_str()));
            pairs.push(("client_secret", provider.client_secret.expose()));
        }
        if !outbound_url_ok(&endpoints.token) {
            return Err(format!("refused to call {:?}: not https", endpoints.token));
        }
        let answer = self.provider_http.post_form(&endpoints.token, &headers, &form(&pairs))?;
        token_answer(answer.status, &answer.body)
    }

    fn id_token_profile(
        &self,
        pending: &PendingSignIn,
        endpoints: &ProviderEndpoints,
        accepted_issuers: &[String],
        tokens: &serde_json::Map<String, Value>,
    ) -> Result<ProviderProfile, String> {
        let id_token =
            tokens.get("id_token").and_then(Value::as_str).ok_or("the token endpoint answered no id_token")?;
        let jwks_uri = endpoints.jwks_uri.as_deref().ok_or("no jwks_uri")?;
        let mut issuers: Vec<String> = endpoints.issuer.iter().cloned().collect();
        issuers.extend(accepted_issuers.iter().cloned());
        let nonce_hash = pending.nonce_hash.as_deref().ok_or("the pending sign-in has no nonce")?;
        let expected = Expected {
            issuers: &issuers,
            client_id: &pending.provider.client_id,
            nonce_hash,
            leeway_secs: ID_TOKEN_LEEWAY_SECS,
        };
        let jwks = self.jwks(jwks_uri, false)?;
        match id_token::verify(id_token, &jwks, &expected) {
            Err(Refusal::UnknownKey) => {
                // The issuer may have rotated its keys since they were cached: fetch them again
                // (at most once a minute per issuer) and try once more.
                let fresh = self.jwks(jwks_uri, true)?;
                id_token::verify(id_token, &fresh, &expected).map_err(|r| match r {
                    Refusal::UnknownKey => "no key of the issuer's JWKS has the ID token's kid".to_string(),
                    Refusal::Invalid(why) => why,
                })
            }
            Err(Refusal::Invalid(why)) => Err(why),
            Ok(profile) => Ok(profile),
        }
    }

    /// The JWKS at `uri`: cached for `CACHE_TTL`; `refetch` asks again unless the cached one is
    /// younger than `JWKS_REFETCH_MIN`.
    fn jwks(&self, uri: &str, refetch: bool) -> Result<Value, String> {
        let cache = &self.oauth_cache.jwks;
        if let Some((at, keys)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(uri) {
            let fresh_enough = if refetch { at.elapsed() < JWKS_REFETCH_MIN } else { at.elapsed() < CACHE_TTL };
            if fresh_enough {
                return Ok(keys.clone());
            }
        }
        let answer = self.provider_get(uri, &[("accept", "application/json")]).map_err(|e| e.to_string())?;
        if answer.status != 200 {
            return Err(format!("the JWKS answered HTTP {}", answer.status));
        }
        let keys: Value = serde_json::from_str(&answer.body).map_err(|_| "the JWKS is not JSON".to_string())?;
        if !keys.get("keys").is_some_and(Value::is_array) {
            return Err("the JWKS has no keys".into());
        }
        cache.lock().unwrap_or_else(|p| p.into_inner()).insert(uri.to_string(), (Instant::now(), keys.clone()));
        Ok(keys)
    }

    fn github_profile(
        &self,
        endpoints: &ProviderEndpoints,
        tokens: &serde_json::Map<String, Value>,
    ) -> Result<ProviderProfile, String> {
        let access =
            tokens.get("access_token").and_then(Value::as_str).ok_or("the token endpoint answered no access_token")?;
        let api = endpoints.api.as_deref().ok_or("no API URL")?.trim_end_matches('/');
        let bearer = format!("Bearer {access}");
        let headers = [
            ("accept", "application/vnd.github+json"),
            ("authorization", bearer.as_str()),
            ("user-agent", "xclade-auth"),
            ("x-github-api-version", "2022-11-28"),
        ];
        let read = |path: &str| -> Result<String, String> {
            let answer = self.provider_get(&format!("{api}{path}"), &headers).map_err(|e| e.to_string())?;
            if answer.status != 200 {
                return Err(format!("GET {path} answered HTTP {}", answer.status));
            }
            Ok(answer.body)
        };
        let user = read("/user")?;
        let emails = read("/user/emails")?;
        github::profile(&user, &emails)
    }

    /// The token for the identity of `profile` (made on its first sign-in; its `user_metadata`
    /// refreshed on every later one). With `link` (a sign-in started by `/link`), the provider is
    /// joined to that account instead: see `link`.
    pub fn oauth_finish(
        &self,
        ctx: &AuthContext,
        link: Option<&str>,
        profile: &ProviderProfile,
    ) -> Result<String, AuthError> {
        let subject = EntityKey::new(profile.subject.as_str());
        let metadata = profile.user_metadata();
        if let Some(account) = link {
            return self.link(ctx, account, profile, &subject);
        }
        if let Some(identity) = self.store.find_by_email(&ctx.tenant, &ctx.provider, &subject)? {
            return self.signed_in(ctx, identity, metadata);
        }
        let now = self.clock.now();
        let new = NewSocialIdentity {
            auth_identity_id: new_id("authid"),
            provider_identity_id: new_id(""),
            provider: ctx.provider.clone(),
            subject: subject.clone(),
            user_metadata: metadata.clone(),
            security_stamp: random_hex(16)?,
            created_at: now,
        };
        match self.store.create_social_identity(&ctx.tenant, &new) {
            Ok(()) => self.issue_for(
                ctx,
                &IdentityRecord {
                    auth_identity_id: new.auth_identity_id,
                    provider_identity_id: new.provider_identity_id,
                    provider: new.provider,
                    entity_id: profile.subject.clone(),
                    password_hash: String::new(),
                    app_metadata: Default::default(),
                    user_metadata: new.user_metadata,
                    security_stamp: new.security_stamp,
                },
            ),
            Err(AuthError::Duplicate(_)) => {
                // A concurrent first sign-in of the same user won the race.
                let identity = self
                    .store
                    .find_by_email(&ctx.tenant, &ctx.provider, &subject)?
                    .ok_or_else(|| AuthError::Unexpected("identity vanished after a duplicate insert".into()))?;
                self.signed_in(ctx, identity, metadata)
            }
            Err(e) => Err(e),
        }
    }

    /// Joins the provider identity of `profile` to the account `account` (an `emailpass`
    /// identity whose owner started the sign-in with its password), only when the provider
    /// asserts that the email is verified and it is the account's own. A provider identity that
    /// already signs in to another identity is never moved. Every refusal is a 401 that stores
    /// nothing.
    fn link(
        &self,
        ctx: &AuthContext,
        account: &str,
        profile: &ProviderProfile,
        subject: &EntityKey,
    ) -> Result<String, AuthError> {
        let owner = self
            .store
            .find_by_id(&ctx.tenant, &AuthProvider::emailpass(), account)?
            .ok_or_else(|| refused(OAUTH_LINK_REFUSED, "the account to link to is gone"))?;
        let verified = profile.email.as_deref().filter(|_| profile.email_verified);
        if verified.map(email_key).as_ref() != Some(&email_key(&owner.entity_id)) {
            return Err(refused(OAUTH_LINK_REFUSED, "the provider's email is not verified, or not the account's"));
        }
        if let Some(existing) = self.store.find_by_email(&ctx.tenant, &ctx.provider, subject)? {
            if existing.auth_identity_id != account {
                return Err(refused(OAUTH_LINK_REFUSED, "the provider identity signs in to another identity"));
            }
            return self.signed_in(ctx, existing, profile.user_metadata());
        }
        let new = NewSocialIdentity {
            auth_identity_id: account.to_string(),
            provider_identity_id: new_id(""),
            provider: ctx.provider.clone(),
            subject: subject.clone(),
            user_metadata: profile.user_metadata(),
            security_stamp: String::new(),
            created_at: self.clock.now(),
        };
        match self.store.attach_social_identity(&ctx.tenant, &new) {
            Ok(()) => {}
            Err(AuthError::Duplicate(why)) => return Err(refused(OAUTH_LINK_REFUSED, why)),
            Err(e) => return Err(e),
        }
        let linked = self
            .store
            .find_by_id(&ctx.tenant, &ctx.provider, account)?
            .ok_or_else(|| AuthError::Unexpected("a linked identity vanished".into()))?;
        log::info!("{} of tenant {} linked {} to its account", account, ctx.tenant, ctx.provider);
        self.issue_for(ctx, &linked)
    }

    fn signed_in(
        &self,
        ctx: &AuthContext,
        mut identity: IdentityRecord,
        metadata: serde_json::Map<String, Value>,
    ) -> Result<String, AuthError> {
        if identity.user_metadata != metadata {
            self.store.update_user_metadata(
                &ctx.tenant,
                &identity.provider_identity_id,
                &metadata,
                self.clock.now(),
            )?;
            identity.user_metadata = metadata;
        }
        self.issue_for(ctx, &identity)
    }
}
