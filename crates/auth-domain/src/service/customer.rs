//! `/store/customers*`: the customer account of a storefront customer.

use serde_json::Value;

use super::{
    AuthService, Authenticated, ALREADY_CUSTOMER, CUSTOMER, CUSTOMER_EMAIL_MISMATCH, CUSTOMER_EMAIL_UNVERIFIED,
    CUSTOMER_EXISTS,
};
use crate::context::RequestContext;
use crate::email::{email_key, Email};
use crate::model::{new_id, Customer, CustomerFields};
use crate::ports::{AuthStore, Clock};
use crate::{AuthError, TokenRejection};

/// The fields of `POST /store/customers`.
#[derive(Debug, Clone, Default)]
pub struct NewCustomerInput {
    pub email: Option<String>,
    pub fields: CustomerFields,
}

impl<S: AuthStore, C: Clock> AuthService<S, C> {
    fn customer_caller(caller: &Authenticated) -> Result<(), AuthError> {
        if caller.actor_type == CUSTOMER {
            Ok(())
        } else {
            Err(TokenRejection::WrongContext.into())
        }
    }

    /// Creates the customer of a caller that has none yet (a registration token or its session)
    /// and links it to the identity, in one transaction.
    pub fn create_customer(
        &self,
        ctx: &RequestContext,
        caller: &Authenticated,
        input: NewCustomerInput,
    ) -> Result<Customer, AuthError> {
        Self::customer_caller(caller)?;
        let linked_by_token = caller.claims.as_ref().is_some_and(|c| !c.actor_id.is_empty());
        if linked_by_token || !caller.actor_id().is_empty() {
            return Err(AuthError::InvalidData(ALREADY_CUSTOMER.into()));
        }
        let email = Self::customer_email(caller, input.email.as_deref())?;
        let now = self.clock.now();
        let mut customer = Customer {
            id: new_id("cus"),
            email: email.as_str().into(),
            first_name: None,
            last_name: None,
            phone: None,
            company_name: None,
            metadata: None,
            has_account: true,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        input.fields.apply(&mut customer);
        match self.store.create_customer(&ctx.tenant, &caller.identity.auth_identity_id, &customer) {
            Err(AuthError::Duplicate(_)) => Err(AuthError::Duplicate(CUSTOMER_EXISTS.into())),
            other => other.map(|()| customer),
        }
    }

    /// The email a new customer gets: the body's `email`, which must be the identity's own (so
    /// nobody opens a customer account under an address they have not proven). For `emailpass`
    /// that is the address the identity registered (`entity_id`); for other providers the email
    /// the provider verified (`user_metadata.email` with `email_verified: true`). Compared
    /// normalised; kept as the caller wrote it (trimmed).
    fn customer_email(caller: &Authenticated, body: Option<&str>) -> Result<Email, AuthError> {
        let body = body.ok_or_else(|| AuthError::InvalidData("Email is required to create a customer".into()))?;
        let given = Email::parse(body)?;
        let identity = &caller.identity;
        let own = if identity.provider.is_emailpass() {
            Some(identity.entity_id.as_str())
        } else {
            let verified = identity.user_metadata.get("email_verified").and_then(Value::as_bool) == Some(true);
            identity.user_metadata.get("email").and_then(Value::as_str).filter(|_| verified)
        };
        let own = own.ok_or_else(|| AuthError::InvalidData(CUSTOMER_EMAIL_UNVERIFIED.into()))?;
        if given.key() == &email_key(own) {
            Ok(given)
        } else {
            Err(AuthError::InvalidData(CUSTOMER_EMAIL_MISMATCH.into()))
        }
    }

    /// The caller's customer; a caller without one is unauthenticated for these routes.
    pub fn current_customer(&self, ctx: &RequestContext, caller: &Authenticated) -> Result<Customer, AuthError> {
        let id = Self::customer_id(caller)?;
        self.store
            .find_customer(&ctx.tenant, &id)?
            .ok_or_else(|| AuthError::NotFound(format!("Customer with id: {id} was not found")))
    }

    /// Updates the caller's customer.
    pub fn update_current_customer(
        &self,
        ctx: &RequestContext,
        caller: &Authenticated,
        fields: &CustomerFields,
    ) -> Result<Customer, AuthError> {
        let id = Self::customer_id(caller)?;
        self.store
            .update_customer(&ctx.tenant, &id, fields, self.clock.now())?
            .ok_or_else(|| AuthError::NotFound(format!("Customer with id: {id} was not found")))
    }

    fn customer_id(caller: &Authenticated) -> Result<String, AuthError> {
        Self::customer_caller(caller)?;
        let id = caller.actor_id();
        if id.is_empty() {
            return Err(TokenRejection::WrongContext.into());
        }
        Ok(id)
    }
}
