//! `CustomerStore` on diesel.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use auth_domain::model::{Customer, CustomerFields};
use auth_domain::newtypes::TenantId;
use auth_domain::ports::CustomerStore;
use auth_domain::service::ALREADY_CUSTOMER;
use auth_domain::{AuthError, TokenRejection};

use crate::rows::{json_map, naive, CustomerChanges, CustomerRow};
use crate::schema::{auth_identity, customer};
use crate::tx::{db_error, write_tx, TxError};
use crate::DieselStore;

impl CustomerStore for DieselStore {
    fn create_customer(&self, tenant: &TenantId, auth_identity_id: &str, new: &Customer) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        let tenant = tenant.as_str();
        let row = CustomerRow::new(tenant, new);
        let created = write_tx(&mut conn, |c| {
            let identity = auth_identity::table
                .filter(auth_identity::id.eq(auth_identity_id))
                .filter(auth_identity::tenant_id.eq(tenant));
            // Lock the identity first, so concurrent creates with one token queue here and the
            // losers see the link the winner wrote.
            if diesel::update(identity).set(auth_identity::updated_at.eq(naive(new.created_at))).execute(c)? != 1 {
                return Err(TxError::Domain(TokenRejection::Revoked.into()));
            }
            let app_metadata: String = identity.select(auth_identity::app_metadata).get_result(c)?;
            let mut app_metadata = json_map(&app_metadata).map_err(TxError::Domain)?;
            if app_metadata.get("customer_id").and_then(|v| v.as_str()).is_some_and(|id| !id.is_empty()) {
                return Err(TxError::Domain(AuthError::InvalidData(ALREADY_CUSTOMER.into())));
            }
            diesel::insert_into(customer::table).values(&row).execute(c)?;
            app_metadata.insert("customer_id".into(), new.id.clone().into());
            diesel::update(identity)
                .set(auth_identity::app_metadata.eq(serde_json::Value::Object(app_metadata).to_string()))
                .execute(c)?;
            Ok(())
        });
        self.forget_identity(tenant, auth_identity_id);
        created
    }

    fn find_customer(&self, tenant: &TenantId, id: &str) -> Result<Option<Customer>, AuthError> {
        let mut conn = self.conn()?;
        customer::table
            .filter(customer::id.eq(id))
            .filter(customer::tenant_id.eq(tenant.as_str()))
            .filter(customer::deleted_at.is_null())
            .select(CustomerRow::as_select())
            // Not `first`: its `LIMIT ?` makes SQLite compile the statement again on every run.
            .get_result(&mut *conn)
            .optional()
            .map_err(db_error)?
            .map(CustomerRow::into_customer)
            .transpose()
    }

    fn update_customer(
        &self,
        tenant: &TenantId,
        id: &str,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, AuthError> {
        {
            let mut conn = self.conn()?;
            diesel::update(customer::table.filter(customer::id.eq(id)).filter(customer::tenant_id.eq(tenant.as_str())))
                .set(CustomerChanges::new(fields, now))
                .execute(&mut *conn)
                .map_err(db_error)?;
        }
        self.find_customer(tenant, id)
    }
}
