//! The Xclade Auth domain: identities, passwords, tokens and events, and the use cases that
//! combine them, written against ports (traits) that adapters implement.
//!
//! This crate depends on no web framework and no database library, so another service can
//! depend on it alone, for example to verify the auth tokens Xclade Auth issues:
//!
//! ```
//! use auth_domain::token::{AuthTokenInput, TokenCodec, TokenSettings};
//! use chrono::{Duration, Utc};
//!
//! // The issuing side (Xclade Auth) and the verifying side share the HS256 secret.
//! let settings = TokenSettings {
//!     secret: b"a long random shared secret".to_vec(),
//!     previous_secrets: vec![],
//!     auth_ttl: Duration::days(1),
//!     leeway: Duration::seconds(30),
//! };
//! let codec = TokenCodec::new(settings);
//! let now = Utc::now();
//! let token = codec.issue_auth(
//!     &AuthTokenInput {
//!         actor_id: "cus_01JZ0000000000000000000000".into(),
//!         actor_type: "customer".into(),
//!         auth_identity_id: "authid_01JZ0000000000000000000000".into(),
//!         auth_provider: "emailpass".into(),
//!         app_metadata: Default::default(),
//!         user_metadata: Default::default(),
//!         stamp: "s1".into(),
//!         tenant: "default".into(),
//!     },
//!     now,
//! )?;
//!
//! // Another service verifies the signature, the expiry and the kind of token.
//! let claims = codec.verify_auth(&token, now).expect("a fresh token verifies");
//! assert_eq!(claims.actor_type, "customer");
//! assert_eq!(claims.actor_id, "cus_01JZ0000000000000000000000");
//! // Every tenant's tokens are signed with the same secret: a service of one store checks that
//! // the token is its store's.
//! assert_eq!(claims.tenant, "default");
//! // A verifier outside Xclade sees revocation (a changed security stamp) only at `exp`.
//! # Ok::<(), auth_domain::AuthError>(())
//! ```

pub mod context;
pub mod delivery;
pub mod email;
pub mod error;
pub mod event;
pub mod import;
pub mod janitor;
pub mod keys;
pub mod model;
pub mod newtypes;
pub mod oauth;
pub mod password;
pub mod ports;
pub mod ratelimit;
pub mod secret;
pub mod service;
pub mod tenant;
pub mod token;

#[cfg(test)]
mod memory;
#[cfg(test)]
mod properties;

pub use error::{AuthError, TokenRejection};
