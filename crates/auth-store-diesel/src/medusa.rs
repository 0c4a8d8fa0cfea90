//! Reading a Medusa database for the import: `auth_identity`, `provider_identity` and `customer`,
//! in one read-only, repeatable-read transaction, so the three tables are one moment's.

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text, Timestamptz};

use auth_domain::import::{MedusaCustomer, MedusaIdentity, MedusaProviderIdentity, MedusaSnapshot};

/// Why the source could not be read. Never holds the URL (it may carry a password).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("--from must be a postgres:// or postgresql:// URL of the Medusa database")]
    NotPostgres,
    #[error("cannot connect to the Medusa database: {0}")]
    Connect(String),
    #[error("the Medusa database has no table {0} (is this the database of a Medusa v2 backend?)")]
    MissingTable(&'static str),
    #[error("reading the Medusa database: {0}")]
    Query(String),
    #[error("{table}.{column} of {id} is not valid JSON")]
    BadJson { table: &'static str, column: &'static str, id: String },
}

const TABLES: [&str; 3] = ["auth_identity", "provider_identity", "customer"];

#[derive(QueryableByName)]
struct IdentityRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    app_metadata: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct ProviderRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    entity_id: String,
    #[diesel(sql_type = Text)]
    provider: String,
    #[diesel(sql_type = Text)]
    auth_identity_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    user_metadata: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    password: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct CustomerRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    company_name: Option<String>,
    #[diesel(sql_type = Bool)]
    has_account: bool,
    #[diesel(sql_type = Nullable<Text>)]
    metadata: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Present {
    #[diesel(sql_type = Bool)]
    present: bool,
}

fn json(
    text: Option<String>,
    table: &'static str,
    column: &'static str,
    id: &str,
) -> Result<Option<serde_json::Value>, SourceError> {
    text.map(|t| serde_json::from_str(&t).map_err(|_| SourceError::BadJson { table, column, id: id.to_string() }))
        .transpose()
}

fn query_error(e: diesel::result::Error) -> SourceError {
    SourceError::Query(e.to_string())
}

impl From<diesel::result::Error> for SourceError {
    fn from(e: diesel::result::Error) -> Self {
        query_error(e)
    }
}

/// Reads the three tables of the Medusa database at `url` (PostgreSQL), changing nothing: the
/// transaction is read-only.
pub fn read_medusa(url: &str) -> Result<MedusaSnapshot, SourceError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(SourceError::NotPostgres);
    }
    openssl_sys::init();
    let mut conn = PgConnection::establish(url).map_err(|e| SourceError::Connect(e.to_string().trim().to_string()))?;
    conn.batch_execute("SET statement_timeout = 0").map_err(query_error)?;
    conn.build_transaction().repeatable_read().read_only().run(|c| {
        for table in TABLES {
            let present: Present = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS present")
                .bind::<Text, _>(format!("public.{table}"))
                .get_result(c)
                .map_err(query_error)?;
            if !present.present {
                return Err(SourceError::MissingTable(table));
            }
        }
        let identities = diesel::sql_query(
            "SELECT id, app_metadata::text AS app_metadata, created_at, updated_at, deleted_at \
             FROM public.auth_identity ORDER BY id",
        )
        .load::<IdentityRow>(c)
        .map_err(query_error)?
        .into_iter()
        .map(|r| {
            Ok(MedusaIdentity {
                app_metadata: json(r.app_metadata, "auth_identity", "app_metadata", &r.id)?,
                id: r.id,
                created_at: r.created_at,
                updated_at: r.updated_at,
                deleted_at: r.deleted_at,
            })
        })
        .collect::<Result<_, SourceError>>()?;
        let provider_identities = diesel::sql_query(
            "SELECT id, entity_id, provider, auth_identity_id, user_metadata::text AS user_metadata, \
             provider_metadata->>'password' AS password, created_at, updated_at, deleted_at \
             FROM public.provider_identity ORDER BY id",
        )
        .load::<ProviderRow>(c)
        .map_err(query_error)?
        .into_iter()
        .map(|r| {
            Ok(MedusaProviderIdentity {
                user_metadata: json(r.user_metadata, "provider_identity", "user_metadata", &r.id)?,
                password: r.password,
                id: r.id,
                entity_id: r.entity_id,
                provider: r.provider,
                auth_identity_id: r.auth_identity_id,
                created_at: r.created_at,
                updated_at: r.updated_at,
                deleted_at: r.deleted_at,
            })
        })
        .collect::<Result<_, SourceError>>()?;
        let customers = diesel::sql_query(
            "SELECT id, email, first_name, last_name, phone, company_name, has_account, \
             metadata::text AS metadata, created_at, updated_at, deleted_at FROM public.customer ORDER BY id",
        )
        .load::<CustomerRow>(c)
        .map_err(query_error)?
        .into_iter()
        .map(|r| {
            Ok(MedusaCustomer {
                metadata: json(r.metadata, "customer", "metadata", &r.id)?,
                id: r.id,
                email: r.email,
                first_name: r.first_name,
                last_name: r.last_name,
                phone: r.phone,
                company_name: r.company_name,
                has_account: r.has_account,
                created_at: r.created_at,
                updated_at: r.updated_at,
                deleted_at: r.deleted_at,
            })
        })
        .collect::<Result<_, SourceError>>()?;
        Ok(MedusaSnapshot { identities, provider_identities, customers })
    })
}
