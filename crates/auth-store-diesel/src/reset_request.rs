//! Password reset requests: recorded by reset-password before it answers, taken by the reset
//! worker with a lease, and deleted in the transaction that stores their token and event.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use auth_domain::event::NewEvent;
use auth_domain::model::{NewResetToken, ResetRequest};
use auth_domain::newtypes::{ActorType, AuthProvider, TenantId};
use auth_domain::ports::ResetRequestStore;
use auth_domain::AuthError;

use crate::connection::DbConnection;
use crate::identity::{insert_event, put_reset_token};
use crate::rows::{naive, utc};
use crate::schema::reset_request;
use crate::tx::{db_error, write_tx};
use crate::DieselStore;

#[derive(Insertable)]
#[diesel(table_name = reset_request)]
struct ResetRequestRow<'a> {
    id: &'a str,
    tenant_id: &'a str,
    actor_type: &'a str,
    provider: &'a str,
    sealed: &'a str,
    created_at: NaiveDateTime,
    locked_until: Option<NaiveDateTime>,
}

type Columns = (String, String, String, String, String, NaiveDateTime);

impl ResetRequestStore for DieselStore {
    fn record_reset_request(&self, request: &ResetRequest) -> Result<(), AuthError> {
        let mut conn = self.conn()?;
        diesel::insert_into(reset_request::table)
            .values(ResetRequestRow {
                id: &request.id,
                tenant_id: request.tenant.as_str(),
                actor_type: request.actor_type.as_str(),
                provider: request.provider.as_str(),
                sealed: &request.sealed,
                created_at: naive(request.created_at),
                locked_until: None,
            })
            .execute(&mut *conn)
            .map(drop)
            .map_err(db_error)
    }

    fn claim_reset_requests(
        &self,
        now: DateTime<Utc>,
        created_before: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ResetRequest>, AuthError> {
        use reset_request::dsl as r;
        let mut conn = self.conn()?;
        let (now, created_before, lease_until) = (naive(now), naive(created_before), naive(lease_until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<Columns> = write_tx(&mut conn, |c| {
            let free = r::reset_request
                .filter(r::created_at.le(created_before))
                .filter(r::locked_until.is_null().or(r::locked_until.le(now)))
                .order((r::created_at.asc(), r::id.asc()))
                .limit(limit)
                .select((r::id, r::tenant_id, r::actor_type, r::provider, r::sealed, r::created_at));
            // PostgreSQL: rows another worker is taking right now are skipped, not waited for.
            // SQLite: BEGIN IMMEDIATE already serializes the claim.
            let rows: Vec<Columns> = match c {
                DbConnection::Postgresql(pg) => free.for_update().skip_locked().load(pg)?,
                DbConnection::Sqlite(sqlite) => free.load(sqlite)?,
            };
            for (id, ..) in &rows {
                diesel::update(r::reset_request.filter(r::id.eq(id)))
                    .set(r::locked_until.eq(Some(lease_until)))
                    .execute(c)?;
            }
            Ok(rows)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, tenant, actor_type, provider, sealed, created_at)| ResetRequest {
                id,
                tenant: TenantId::new(tenant),
                actor_type: ActorType::new(actor_type),
                provider: AuthProvider::new(provider),
                sealed,
                created_at: utc(created_at),
            })
            .collect())
    }

    fn fulfil_reset_request(
        &self,
        tenant: &TenantId,
        id: &str,
        reset: Option<(&NewResetToken, &NewEvent)>,
    ) -> Result<bool, AuthError> {
        use reset_request::dsl as r;
        let mut conn = self.conn()?;
        write_tx(&mut conn, |c| {
            // The delete first: on PostgreSQL it locks the row, so a second worker's delete
            // waits and then finds nothing, and writes nothing.
            let deleted =
                diesel::delete(r::reset_request.filter(r::id.eq(id)).filter(r::tenant_id.eq(tenant.as_str())))
                    .execute(c)?;
            if deleted == 0 {
                return Ok(false);
            }
            if let Some((token, event)) = reset {
                put_reset_token(c, tenant, token)?;
                insert_event(c, event)?;
            }
            Ok(true)
        })
    }
}
