//! `/store/customers`: the customer account of a storefront customer.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use serde_json::{json, Value};

use auth_domain::model::{Customer, CustomerFields};
use auth_domain::service::NewCustomerInput;
use auth_domain::AuthError;

use crate::body::{Fields, JsonBody};
use crate::credentials::Presented;
use crate::{ApiError, AppState};

pub const PUBLISHABLE_KEY_HEADER: &str = "x-publishable-api-key";
const KEY_REQUIRED: &str = "Publishable API key required in the request header: x-publishable-api-key. \
You can manage your keys in settings in the dashboard.";
const KEY_INVALID: &str = "A valid publishable key is required to proceed with the request";

/// When `STORE_PUBLISHABLE_KEYS` is set, a listed key must come with every `/store` request
/// (checked before the caller, as Medusa does).
fn check_publishable_key(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(keys) = &state.settings.publishable_keys else {
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

/// Medusa's customer object.
fn customer_json(c: &Customer) -> Value {
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    json!({
        "customer": {
            "id": c.id,
            "email": c.email,
            "company_name": c.company_name,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "phone": c.phone,
            "metadata": c.metadata,
            "has_account": c.has_account,
            "deleted_at": c.deleted_at.map(time),
            "created_at": time(c.created_at),
            "updated_at": time(c.updated_at),
            "addresses": [],
        }
    })
}

/// `POST /store/customers`: creates the customer of a registration token (or its session).
pub(crate) async fn create_customer(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    check_publishable_key(&state, &req)?;
    let mut fields = Fields::of(&body);
    let email = fields.nullable_string("email").flatten();
    let customer = customer_fields(&mut fields);
    let mut allowed = vec!["email"];
    allowed.extend(EDITABLE);
    fields.finish_strict(&allowed)?;
    let input = NewCustomerInput { email, fields: customer };
    let created = state.as_caller(presented, move |svc, caller| svc.create_customer(caller, input)).await?;
    Ok(HttpResponse::Ok().json(customer_json(&created)))
}

/// `GET /store/customers/me` (`?fields=` is accepted and ignored).
pub(crate) async fn retrieve_me(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
) -> Result<HttpResponse, ApiError> {
    check_publishable_key(&state, &req)?;
    let customer = state.as_caller(presented, |svc, caller| svc.current_customer(caller)).await?;
    Ok(HttpResponse::Ok().json(customer_json(&customer)))
}

/// `POST /store/customers/me`: names, phone, company, metadata.
pub(crate) async fn update_me(
    state: web::Data<AppState>,
    req: HttpRequest,
    presented: Presented,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    check_publishable_key(&state, &req)?;
    let mut fields = Fields::of(&body);
    let changes = customer_fields(&mut fields);
    fields.finish_strict(&EDITABLE)?;
    let customer = state.as_caller(presented, move |svc, caller| svc.update_current_customer(caller, &changes)).await?;
    Ok(HttpResponse::Ok().json(customer_json(&customer)))
}
