//! Who is calling: an auth token or a session cookie checked against the database; and what a
//! caller does with itself: refresh, open and close sessions, logout-all.

use super::AuthService;
use crate::context::RequestContext;
use crate::import::IMPORTED_STAMP_PREFIX;
use crate::model::{IdentityRecord, NewSession};
use crate::newtypes::{ActorType, AuthProvider};
use crate::ports::{AuthStore, Clock};
use crate::secret::{random_hex, HashedToken, PlainToken};
use crate::token::AuthClaims;
use crate::{AuthError, TokenRejection};

/// A caller proven by an auth token or a session whose stamp is current.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The identity as it is now in the database.
    pub identity: IdentityRecord,
    pub actor_type: ActorType,
    pub auth_provider: AuthProvider,
    /// The verified claims, when the caller presented a token.
    pub claims: Option<AuthClaims>,
    /// The hash of the session, when the caller presented a session cookie.
    pub session_hash: Option<HashedToken>,
}

impl Authenticated {
    /// The actor id, read from the database (so a session sees a customer linked after it opened).
    pub fn actor_id(&self) -> String {
        self.identity.actor_id(&self.actor_type)
    }
}

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// Verifies an auth token and checks it against the database: the token is for the
    /// request's tenant, the identity exists and its security stamp is the token's. One indexed
    /// read.
    pub fn authenticate(&self, ctx: &RequestContext, token: &str) -> Result<Authenticated, AuthError> {
        let (claims, actor_type, auth_provider) = self.verified(ctx, token)?;
        let identity = self
            .store
            .find_by_id(&ctx.tenant, &auth_provider, &claims.auth_identity_id)?
            .ok_or(AuthError::Unauthenticated(TokenRejection::Revoked))?;
        if identity.security_stamp != claims.stamp {
            return Err(TokenRejection::Revoked.into());
        }
        Ok(Authenticated { identity, actor_type, auth_provider, claims: Some(claims), session_hash: None })
    }

    /// The claims of an auth token that verifies for the request's tenant, with its actor type
    /// (one the tenant allows) and provider: what `authenticate` checks before the database.
    fn verified(&self, ctx: &RequestContext, token: &str) -> Result<(AuthClaims, ActorType, AuthProvider), AuthError> {
        let claims = self.tokens.verify_auth_with(token, self.clock.now(), &ctx.keys)?;
        if ctx.tenant != claims.tenant {
            return Err(TokenRejection::WrongTenant.into());
        }
        let actor_type = self.check_actor_type(ctx, &claims.actor_type).map_err(|_| TokenRejection::WrongContext)?;
        let auth_provider = AuthProvider::new(claims.auth_provider.as_str());
        Ok((claims, actor_type, auth_provider))
    }

    /// Refresh of a bearer token answered from memory alone, for the hot path: the new token when
    /// the token verifies and the store holds its identity in memory
    /// (`IdentityStore::find_by_id_in_memory`) with the token's stamp. `None` in every other case
    /// (a refusal included): the caller then runs [`Self::refresh_presented`], which answers it
    /// exactly as without this path. No database, no blocking: the HTTP layer runs it on its
    /// worker.
    pub fn refresh_from_memory(&self, ctx: &RequestContext, bearer: &str) -> Option<String> {
        let (claims, actor_type, auth_provider) = self.verified(ctx, bearer).ok()?;
        let identity = self.store.find_by_id_in_memory(&ctx.tenant, &auth_provider, &claims.auth_identity_id)?;
        if identity.security_stamp != claims.stamp {
            return None;
        }
        self.issue(ctx, &actor_type, &auth_provider, &identity).ok()
    }

    /// Checks a session id from a cookie: a live session of the request's tenant whose
    /// identity's stamp has not changed since it opened. One indexed read.
    pub fn authenticate_session(
        &self,
        ctx: &RequestContext,
        session_id: &PlainToken,
    ) -> Result<Authenticated, AuthError> {
        let session_hash = session_id.hashed();
        let session = self
            .store
            .find_session(&ctx.tenant, &session_hash, self.clock.now())?
            .ok_or(AuthError::Unauthenticated(TokenRejection::Consumed))?;
        if session.identity.security_stamp != session.security_stamp {
            return Err(TokenRejection::Revoked.into());
        }
        Ok(Authenticated {
            identity: session.identity,
            actor_type: session.actor_type,
            auth_provider: session.auth_provider,
            claims: None,
            session_hash: Some(session_hash),
        })
    }

    /// Session first, then bearer, as Medusa: a dead session cookie does not spoil a valid token.
    pub fn authenticate_any(
        &self,
        ctx: &RequestContext,
        session_id: Option<&PlainToken>,
        bearer: Option<&str>,
    ) -> Result<Authenticated, AuthError> {
        let by_session = match session_id {
            Some(id) => self.authenticate_session(ctx, id),
            None => Err(TokenRejection::Missing.into()),
        };
        match (by_session, bearer) {
            (Ok(caller), _) => Ok(caller),
            (Err(AuthError::Unauthenticated(_)), Some(token)) => self.authenticate(ctx, token),
            (Err(e), _) => Err(e),
        }
    }

    /// A new token for the caller, built from the database's current state (actor id, metadata),
    /// for the caller's actor type and provider.
    pub fn refresh(&self, ctx: &RequestContext, caller: &Authenticated) -> Result<String, AuthError> {
        self.issue(ctx, &caller.actor_type, &caller.auth_provider, &caller.identity)
    }

    /// Refresh as the route does it: the caller's session or token (`authenticate_any`), and,
    /// when that fails and the tenant has `MEDUSA_JWT_SECRET`, the bearer token as a Medusa token
    /// ([`Self::exchange_medusa_token`]). A token that is neither answers the first error.
    pub fn refresh_presented(
        &self,
        ctx: &RequestContext,
        session_id: Option<&PlainToken>,
        bearer: Option<&str>,
    ) -> Result<String, AuthError> {
        match self.authenticate_any(ctx, session_id, bearer) {
            Ok(caller) => self.refresh(ctx, &caller),
            Err(AuthError::Unauthenticated(first)) => match (bearer, &ctx.settings.medusa_jwt_secret) {
                (Some(token), Some(_)) => self.exchange_medusa_token(ctx, token).map_err(|e| match e {
                    AuthError::Unauthenticated(TokenRejection::Invalid | TokenRejection::WrongKind) => {
                        AuthError::Unauthenticated(first)
                    }
                    other => other,
                }),
                _ => Err(AuthError::Unauthenticated(first)),
            },
            Err(e) => Err(e),
        }
    }

    /// The migration window from Medusa: a token that the store's Medusa backend signed (HS256
    /// with `MEDUSA_JWT_SECRET`, unexpired, Medusa's claims and none of Xclade's) becomes an
    /// Xclade token for the same identity, actor type and provider, if the identity was imported
    /// here (`import`) and its security stamp is still the one the import gave it: a password
    /// change, reset or logout-all since then ends the exchange for every Medusa token of the
    /// account. Refresh only: no other route takes a Medusa token.
    pub fn exchange_medusa_token(&self, ctx: &RequestContext, token: &str) -> Result<String, AuthError> {
        let secret = ctx.settings.medusa_jwt_secret.as_ref().ok_or(TokenRejection::Invalid)?;
        let claims = self.tokens.verify_medusa(token, &secret.0, self.clock.now())?;
        let actor_type = self.check_actor_type(ctx, &claims.actor_type).map_err(|_| TokenRejection::WrongContext)?;
        let provider = AuthProvider::new(claims.auth_provider.as_str());
        let identity = self
            .store
            .find_by_id(&ctx.tenant, &provider, &claims.auth_identity_id)?
            .ok_or(AuthError::Unauthenticated(TokenRejection::Revoked))?;
        if !identity.security_stamp.starts_with(IMPORTED_STAMP_PREFIX) {
            return Err(TokenRejection::Revoked.into());
        }
        log::info!("exchanged a Medusa token of {} for an Xclade token", identity.auth_identity_id);
        self.issue(ctx, &actor_type, &provider, &identity)
    }

    /// Opens a session for the bearer of `token`, replacing the session `replaces` (the id of a
    /// cookie the request carried). Returns the new session id and the token's claims.
    pub fn open_session(
        &self,
        ctx: &RequestContext,
        token: &str,
        replaces: Option<&PlainToken>,
    ) -> Result<(PlainToken, AuthClaims), AuthError> {
        let caller = self.authenticate(ctx, token)?;
        let session_id = PlainToken::random(32)?;
        let now = self.clock.now();
        let session = NewSession {
            session_hash: session_id.hashed(),
            auth_identity_id: caller.identity.auth_identity_id.clone(),
            actor_type: caller.actor_type.clone(),
            auth_provider: caller.auth_provider.clone(),
            security_stamp: caller.identity.security_stamp.clone(),
            created_at: now,
            expires_at: now + self.settings.session_ttl,
        };
        let replaced = replaces.map(PlainToken::hashed);
        self.store.create_session(&ctx.tenant, &session, replaced.as_ref())?;
        let claims = caller.claims.ok_or_else(|| AuthError::Unexpected("a bearer caller without claims".into()))?;
        Ok((session_id, claims))
    }

    /// Ends the session `session_id`; `Unauthenticated` when there is no such session.
    pub fn close_session(&self, ctx: &RequestContext, session_id: &PlainToken) -> Result<(), AuthError> {
        if self.store.delete_session(&ctx.tenant, &session_id.hashed())? {
            Ok(())
        } else {
            Err(TokenRejection::Consumed.into())
        }
    }

    /// Revokes every token and session of the caller's identity.
    pub fn logout_all(&self, ctx: &RequestContext, caller: &Authenticated) -> Result<(), AuthError> {
        self.store.revoke_all(&ctx.tenant, &caller.identity.auth_identity_id, &random_hex(16)?, self.clock.now())
    }
}
