//! The ids that travel as strings, each in its own type (Lemmy's `newtypes.rs`), so that a
//! function taking a tenant cannot be handed a provider, and the ports read the same in every
//! adapter: `find_by_email(&TenantId, &AuthProvider, &EntityKey)`.
//!
//! Each type is a plain string on the wire and in the database (`as_str`, `Display`, serde
//! transparent). Where a value comes from outside, it is made in one place:
//! - `TenantId`: by the `TenantDirectory` (`tenant.rs`) for a request, `TenantId::default_tenant`
//!   for the tenant every request is for when no host suffix is configured;
//! - `ActorType` and `AuthProvider`: from the route's `{actor}`/`{provider}`, checked against what
//!   is allowed when the request's `AuthContext` is built (`AuthService::auth_context`); a stored
//!   value was checked when it was written;
//! - `EntityKey`: `email_key` (trimmed, lowercased) for emails; later the subject a provider
//!   vouches for.
//!
//! Token hashes are not here: a secret crosses to its hash only by hashing (`secret::PlainToken`).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value that is already what it claims to be (see the module's notes for
            /// where each kind of value is checked).
            pub fn new(value: impl Into<String>) -> $name {
                $name(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

/// The tenant the migrations create: every row written before tenancy is its, and every request
/// is for it when no host suffix is configured.
pub const DEFAULT_TENANT: &str = "default";

/// The only provider so far: email and password.
pub const EMAILPASS: &str = "emailpass";

string_newtype!(
    /// A tenant: the `{tenant}` of `{tenant}.api.myxclade.com`, the `tenant_id` of every row and
    /// the `tenant` claim of every token.
    TenantId
);

string_newtype!(
    /// An actor type: the `{actor}` of a route (`customer`, `user`, ...), one of `ACTOR_TYPES`;
    /// the identity's actor of that type is `app_metadata.<actor_type>_id`.
    ActorType
);

string_newtype!(
    /// An auth provider: the `{provider}` of a route and the `provider` of a provider identity
    /// (`emailpass`; OIDC providers later).
    AuthProvider
);

string_newtype!(
    /// The lookup key of a provider identity (`provider_identity.entity_key`), unique per
    /// (tenant, provider): for `emailpass` the email trimmed and lowercased (`email::email_key`).
    EntityKey
);

impl TenantId {
    /// The tenant `default`.
    pub fn default_tenant() -> TenantId {
        TenantId::new(DEFAULT_TENANT)
    }
}

impl AuthProvider {
    /// Email and password.
    pub fn emailpass() -> AuthProvider {
        AuthProvider::new(EMAILPASS)
    }

    pub fn is_emailpass(&self) -> bool {
        self.0 == EMAILPASS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newtypes_are_plain_strings_outside() {
        let tenant = TenantId::default_tenant();
        assert_eq!(tenant.as_str(), "default");
        assert_eq!(tenant.to_string(), "default");
        assert_eq!(serde_json::to_string(&tenant).unwrap(), r#""default""#);
        let provider: AuthProvider = serde_json::from_str(r#""emailpass""#).unwrap();
        assert!(provider.is_emailpass());
        assert_eq!(provider, AuthProvider::emailpass());
        assert_eq!(ActorType::new("customer"), "customer");
    }
}
