//! Admin users, created from the CLI (`xclade-auth user create`).

use serde_json::{Map, Value};

use super::{AuthService, IDENTITY_EXISTS};
use crate::context::RequestContext;
use crate::email::Email;
use crate::model::{new_id, NewIdentity};
use crate::newtypes::AuthProvider;
use crate::password::user_inputs;
use crate::ports::{AuthStore, Clock};
use crate::secret::random_hex;
use crate::AuthError;

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    /// Creates an admin user of the request's tenant: an `emailpass` identity linked as a `user`
    /// from the start. Returns the user id.
    pub fn create_user(&self, ctx: &RequestContext, email: &str, password: String) -> Result<String, AuthError> {
        let email = Email::parse(email)?;
        let inputs = user_inputs(email.as_str(), ctx.tenant.as_str());
        let password = ctx.settings.password_policy.check_with(password, "password", &inputs)?;
        let user_id = new_id("user");
        let identity = NewIdentity {
            auth_identity_id: new_id("authid"),
            provider_identity_id: new_id(""),
            provider: AuthProvider::emailpass(),
            entity_id: email.as_str().into(),
            entity_key: email.key().clone(),
            password_hash: self.hasher.hash(&password)?,
            security_stamp: random_hex(16)?,
            app_metadata: Map::from_iter([("user_id".to_string(), Value::String(user_id.clone()))]),
            created_at: self.clock.now(),
        };
        match self.store.create_identity(&ctx.tenant, &identity) {
            Err(AuthError::Duplicate(_)) => Err(AuthError::Duplicate(IDENTITY_EXISTS.into())),
            other => other.map(|()| user_id),
        }
    }
}
