//! `/store/customers`: the customer account of a storefront customer.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use auth_domain::context::RequestContext;
use auth_domain::model::{Customer, CustomerFields};
use auth_domain::service::NewCustomerInput;
use auth_domain::AuthError;

use crate::body::{Fields, JsonBody};
use crate::credentials::Presented;
use crate::responses::{error_example, Conflict, ErrorBody, PayloadTooLarge, ServerError, Unauthorized};
use crate::{ApiError, AppState};

pub const PUBLISHABLE_KEY_HEADER: &str = "x-publishable-api-key";
const KEY_REQUIRED: &str = "Publishable API key required in the request header: x-publishable-api-key. \
You can manage your keys in settings in the dashboard.";
const KEY_INVALID: &str = "A valid publishable key is required to proceed with the request";

/// When the tenant's `STORE_PUBLISHABLE_KEYS` is set, a listed key must come with every `/store`
/// request (checked before the caller, as Medusa does).
fn check_publishable_key(ctx: &RequestContext, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(keys) = &ctx.settings.publishable_keys else {
        return Ok(());
    };
    match req.headers().get(PUBLISHABLE_KEY_HEADER).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
        None => Err(AuthError::NotAllowed(KEY_REQUIRED.into()).into()),
        Some(key) if keys.iter().any(|k| k == key) => Ok(()),
        Some(_) => Err(AuthError::NotAllowed(KEY_INVALID.into()).into()),
    }
}

const EDITABLE: [&str; 5] = ["company_name", "first_name", "last_name", "phone", "metadata"];

fn customer_fields(fields: &mut Fields<'_>) -> CustomerFields {
    CustomerFields {
        first_name: fields.nullable_string("first_name"),
        last_name: fields.nullable_string("last_name"),
        phone: fields.nullable_string("phone"),
        company_name: fields.nullable_string("company_name"),
        metadata: fields.nullable_object("metadata"),
    }
}

/// `{"customer": {...}}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct CustomerResponse {
    customer: CustomerBody,
}

/// Medusa's customer object, in Medusa's field order. Times are RFC 3339 UTC with milliseconds.
#[derive(Serialize, ToSchema)]
pub(crate) struct CustomerBody {
    /// `cus_<ULID>`.
    #[schema(example = "cus_01JDX3Q9R5V7ZJ8Y2N4M6K0P1T")]
    id: String,
    /// As given when the customer was created (trimmed, case kept).
    #[schema(example = "Ann@Example.com")]
    email: String,
    #[schema(required = true, example = json!(null))]
    company_name: Option<String>,
    #[schema(required = true, example = "Ann")]
    first_name: Option<String>,
    #[schema(required = true, example = "Lee")]
    last_name: Option<String>,
    #[schema(required = true, example = json!(null))]
    phone: Option<String>,
    #[schema(value_type = Option<Object>, required = true, example = json!({"vip": true}))]
    metadata: Option<Map<String, Value>>,
    /// Always `true` (customers are created with an account).
    has_account: bool,
    /// Always `null` in answers.
    #[schema(value_type = Option<String>, required = true, format = DateTime, example = json!(null))]
    deleted_at: Option<String>,
    #[schema(format = DateTime, example = "2026-11-27T17:42:00.123Z")]
    created_at: String,
    #[schema(format = DateTime, example = "2026-11-27T17:42:00.123Z")]
    updated_at: String,
    /// Always empty: addresses are not stored.
    #[schema(value_type = Vec<Object>, max_items = 0)]
    addresses: Vec<Value>,
}

/// Medusa's customer object.
fn customer_json(c: &Customer) -> CustomerResponse {
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    CustomerResponse {
        customer: CustomerBody {
            id: c.id.clone(),
            email: c.email.clone(),
            company_name: c.company_name.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            phone: c.phone.clone(),
            metadata: c.metadata.clone(),
            has_account: c.has_account,
            deleted_at: c.deleted_at.map(time),
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
            addresses: Vec::new(),
        },
    }
}

/// The body of `POST /store/customers`. Unknown fields are refused.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct CreateCustomerRequest {
    /// The identity's own email: for `emailpass` the address it registered, compared trimmed and
    /// case-insensitively (another address is 400, Medusa takes any); stored trimmed, case kept.
    #[schema(example = "ann@example.com")]
    email: String,
    #[schema(example = "Ann")]
    first_name: Option<String>,
    #[schema(example = "Lee")]
    last_name: Option<String>,
    #[schema(example = "+1 555 0100")]
    phone: Option<String>,
    #[schema(example = "Acme")]
    company_name: Option<String>,
    #[schema(value_type = Option<Object>, example = json!({"vip": true}))]
    metadata: Option<Value>,
}

/// The body of `POST /store/customers/me`: a string sets a field, `null` clears it, absent leaves
/// it. `metadata` replaces the stored metadata (no merge). Unknown fields, `email` included, are
/// refused.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct UpdateCustomerRequest {
    #[schema(example = "Ann")]
    first_name: Option<String>,
    #[schema(example = "Lee")]
    last_name: Option<String>,
    #[schema(example = json!(null))]
    phone: Option<String>,
    #[schema(example = "Acme")]
    company_name: Option<String>,
    #[schema(value_type = Option<Object>, example = json!({"vip": true}))]
    metadata: Option<Value>,
}

/// Create the caller's customer
///
/// Creates the customer account of the caller (actor type `customer`, an identity without a
/// customer yet: a registration token, or a session opened with one) and links it to the
/// identity as `app_metadata.customer_id`. The customer's email is the identity's own: a body
/// `email` must be the address the identity registered (case-insensitive), so nobody opens an
/// account under an address they have not proven (Medusa takes any address). The token used still says `actor_id: ""`: refresh it. Racing requests
/// with one token: one 200, the others 400.
#[utoipa::path(
    post,
    path = "/store/customers",
    operation_id = "create_customer",
    tag = "store",
    params(
        ("fields" = Option<String>, Query, description = "Accepted and ignored (Medusa's field selection)."),
        ("x-publishable-api-key" = Option<String>, Header, nullable = false,
            description = "Required, and one of `STORE_PUBLISHABLE_KEYS`, when that is set; ignored otherwise."),
    ),
    request_body(content = CreateCustomerRequest, description = "The customer's details."),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The new customer.", body = CustomerResponse),
        (status = 400, description = "Publishable key missing or unknown; field problems; a missing or invalid \
            email, or another than the identity's; or the identity already has a customer.", body = ErrorBody, examples(
            ("key_required" = (summary = "No publishable key (STORE_PUBLISHABLE_KEYS set)",
                value = json!(error_example("not_allowed", KEY_REQUIRED)))),
            ("key_invalid" = (summary = "Unknown publishable key", value = json!(error_example("not_allowed", KEY_INVALID)))),
            ("fields" = (summary = "Field problems", value = json!(error_example("invalid_data",
                "Invalid request: Expected type: 'string' for field 'first_name', got: 'number'; Unrecognized fields: 'password'")))),
            ("email_required" = (summary = "No email", value = json!(error_example("invalid_data",
                "Email is required to create a customer")))),
            ("email_mismatch" = (summary = "Not the identity's email", value = json!(error_example("invalid_data",
                auth_domain::service::CUSTOMER_EMAIL_MISMATCH)))),
            ("email_invalid" = (summary = "Not an email address", value = json!(error_example("invalid_data",
                "Invalid request: Field 'email' must be a valid email address")))),
            ("has_customer" = (summary = "The identity already has a customer", value = json!(error_example("invalid_data",
                "Request already authenticated as a customer.")))),
        )),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Another customer account has this email (case-insensitive).", body = ErrorBody,
            example = json!({"code": "invalid_request_error", "type": "duplicate_error",
                "message": "Customer with this email already has an account"})),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn create_customer(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    check_publishable_key(&ctx, &req)?;
    let mut fields = Fields::of(&body);
    let email = fields.nullable_string("email").flatten();
    let customer = customer_fields(&mut fields);
    let mut allowed = vec!["email"];
    allowed.extend(EDITABLE);
    fields.finish_strict(&allowed)?;
    let input = NewCustomerInput { email, fields: customer };
    let created =
        state.as_caller(ctx, presented, move |svc, ctx, caller| svc.create_customer(ctx, caller, input)).await?;
    Ok(HttpResponse::Ok().json(customer_json(&created)))
}

/// Get the caller's customer
///
/// Actor type `customer` whose identity is linked to a customer (read from the database, so a
/// registration token works once its customer exists). The cookie counts whatever the
/// `Content-Type`.
#[utoipa::path(
    get,
    path = "/store/customers/me",
    operation_id = "retrieve_customer",
    tag = "store",
    params(
        ("fields" = Option<String>, Query, description = "Accepted and ignored (Medusa's field selection)."),
        ("x-publishable-api-key" = Option<String>, Header, nullable = false,
            description = "Required, and one of `STORE_PUBLISHABLE_KEYS`, when that is set; ignored otherwise."),
    ),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller's customer.", body = CustomerResponse),
        (status = 400, description = "Publishable key missing or unknown.", body = ErrorBody, examples(
            ("key_required" = (summary = "No publishable key (STORE_PUBLISHABLE_KEYS set)",
                value = json!(error_example("not_allowed", KEY_REQUIRED)))),
            ("key_invalid" = (summary = "Unknown publishable key", value = json!(error_example("not_allowed", KEY_INVALID)))),
        )),
        (status = 401, response = Unauthorized),
        (status = 404, description = "The linked customer is gone.", body = ErrorBody,
            example = json!(error_example("not_found", "Customer with id: cus_01JDX3Q9R5V7ZJ8Y2N4M6K0P1T was not found"))),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn retrieve_me(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    check_publishable_key(&ctx, &req)?;
    let customer = state.as_caller(ctx, presented, |svc, ctx, caller| svc.current_customer(ctx, caller)).await?;
    Ok(HttpResponse::Ok().json(customer_json(&customer)))
}

/// Update the caller's customer
///
/// Names, phone, company and metadata; `updated_at` is set even when nothing else changed.
#[utoipa::path(
    post,
    path = "/store/customers/me",
    operation_id = "update_customer",
    tag = "store",
    params(
        ("fields" = Option<String>, Query, description = "Accepted and ignored (Medusa's field selection)."),
        ("x-publishable-api-key" = Option<String>, Header, nullable = false,
            description = "Required, and one of `STORE_PUBLISHABLE_KEYS`, when that is set; ignored otherwise."),
    ),
    request_body(content = UpdateCustomerRequest, description = "The fields to change."),
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The updated customer.", body = CustomerResponse),
        (status = 400, description = "Publishable key missing or unknown; field problems.", body = ErrorBody, examples(
            ("key_required" = (summary = "No publishable key (STORE_PUBLISHABLE_KEYS set)",
                value = json!(error_example("not_allowed", KEY_REQUIRED)))),
            ("key_invalid" = (summary = "Unknown publishable key", value = json!(error_example("not_allowed", KEY_INVALID)))),
            ("fields" = (summary = "Field problems", value = json!(error_example("invalid_data",
                "Invalid request: Expected type: 'object' for field 'metadata', got: 'array'; Unrecognized fields: 'email'")))),
        )),
        (status = 401, response = Unauthorized),
        (status = 404, description = "The linked customer is gone.", body = ErrorBody,
            example = json!(error_example("not_found", "Customer with id: cus_01JDX3Q9R5V7ZJ8Y2N4M6K0P1T was not found"))),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 500, response = ServerError),
    )
)]
pub(crate) async fn update_me(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.request_context(&req)?;
    check_publishable_key(&ctx, &req)?;
    let mut fields = Fields::of(&body);
    let changes = customer_fields(&mut fields);
    fields.finish_strict(&EDITABLE)?;
    let customer = state
        .as_caller(ctx, presented, move |svc, ctx, caller| svc.update_current_customer(ctx, caller, &changes))
        .await?;
    Ok(HttpResponse::Ok().json(customer_json(&customer)))
}
