//! What a request presents to prove who it is: a session cookie, a bearer token, or both.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{FromRequest, HttpRequest};

use auth_domain::secret::PlainToken;
use auth_domain::{AuthError, TokenRejection};

use crate::settings::SESSION_COOKIE;
use crate::ApiError;

/// The credentials of a request, not yet checked. `Debug` says which are there, never what.
#[derive(Clone, Default)]
pub struct Presented {
    /// The session id from the `connect.sid` cookie.
    pub session: Option<PlainToken>,
    /// The token from `Authorization: Bearer <token>` (any case of `Bearer`).
    pub bearer: Option<String>,
}

impl Presented {
    /// Reads the credentials of `req`. A session cookie counts on a request that changes state
    /// only when it is JSON: a browser sends such a request cross-site only after a CORS
    /// preflight, so a form on another site cannot ride on the cookie (CSRF).
    pub fn of(req: &HttpRequest) -> Presented {
        let safe_method = matches!(*req.method(), Method::GET | Method::HEAD);
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
        let session = req
            .cookie(SESSION_COOKIE)
            .map(|c| c.value().to_string())
            .filter(|v| !v.is_empty() && (safe_method || json))
            .map(PlainToken::new);
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_string())
            .filter(|token| !token.is_empty());
        Presented { session, bearer }
    }

    /// The bearer token, or the 401 of a guarded route.
    pub fn require_bearer(&self) -> Result<String, ApiError> {
        self.bearer.clone().ok_or_else(|| AuthError::Unauthenticated(TokenRejection::Missing).into())
    }

    /// The session id, or the 401 of a guarded route.
    pub fn require_session(&self) -> Result<PlainToken, ApiError> {
        self.session.clone().ok_or_else(|| AuthError::Unauthenticated(TokenRejection::Missing).into())
    }
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("session", &self.session.is_some())
            .field("bearer", &self.bearer.is_some())
            .finish()
    }
}

impl FromRequest for Presented {
    type Error = ApiError;
    type Future = Ready<Result<Presented, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Presented::of(req)))
    }
}
