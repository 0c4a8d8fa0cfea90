//! Request bodies: JSON objects up to the size limit, and the field checks every route uses
//! (Medusa's wording: `Invalid request: Field 'x' is required; ...`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use serde_json::{Map, Value};

use crate::ApiError;

/// A JSON object body. An empty body (what the JS SDK sends to refresh) is an empty object.
#[derive(Debug, Default)]
pub struct JsonBody(pub Map<String, Value>);

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<JsonBody, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large()
                } else {
                    ApiError::invalid_data(format!("Invalid request: the body could not be read ({e})"))
                }
            })?;
            parse(&bytes)
        })
    }
}

fn parse(bytes: &[u8]) -> Result<JsonBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonBody::default());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(JsonBody(map)),
        Ok(other) => Err(ApiError::invalid_data(format!(
            "Invalid request: the body must be a JSON object, got: '{}'",
            type_name(&other)
        ))),
        Err(e) => Err(ApiError::invalid_data(format!(
            "Invalid request: the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reads fields out of a body, collecting every problem, then answers them all at once.
#[derive(Debug)]
pub struct Fields<'a> {
    body: &'a Map<String, Value>,
    issues: Vec<String>,
}

impl<'a> Fields<'a> {
    pub fn of(body: &'a JsonBody) -> Fields<'a> {
        Fields { body: &body.0, issues: Vec::new() }
    }

    /// A required string.
    pub fn string(&mut self, name: &str) -> String {
        match self.body.get(name) {
            None | Some(Value::Null) => {
                self.issues.push(format!("Field '{name}' is required"));
                String::new()
            }
            Some(v) => self.expect_string(name, v),
        }
    }

    /// An optional string (absent or null: `None`).
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.body.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(self.expect_string(name, v)),
        }
    }

    /// An optional object (absent or null: `None`).
    pub fn optional_object(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.body.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map.clone()),
            Some(other) => {
                self.issues.push(format!("Expected type: 'object' for field '{name}', got: '{}'", type_name(other)));
                None
            }
        }
    }

    /// A field that may be absent (`None`), `null` (`Some(None)`) or a string.
    pub fn nullable_string(&mut self, name: &str) -> Option<Option<String>> {
        match self.body.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => Some(Some(self.expect_string(name, v))),
        }
    }

    /// A field that may be absent (`None`), `null` (`Some(None)`) or an object.
    pub fn nullable_object(&mut self, name: &str) -> Option<Option<Map<String, Value>>> {
        match self.body.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(_) => Some(self.optional_object(name)),
        }
    }

    fn expect_string(&mut self, name: &str, v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => {
                self.issues.push(format!("Expected type: 'string' for field '{name}', got: '{}'", type_name(other)));
                String::new()
            }
        }
    }

    /// Ends the checks; fields other than the ones read are ignored.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_data(format!("Invalid request: {}", self.issues.join("; "))))
        }
    }

    /// Ends the checks; fields outside `allowed` are refused too.
    pub fn finish_strict(mut self, allowed: &[&str]) -> Result<(), ApiError> {
        let unknown: Vec<String> =
            self.body.keys().filter(|k| !allowed.contains(&k.as_str())).map(|k| format!("'{k}'")).collect();
        if !unknown.is_empty() {
            self.issues.push(format!("Unrecognized fields: {}", unknown.join(", ")));
        }
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> JsonBody {
        match v {
            Value::Object(m) => JsonBody(m),
            _ => unreachable!(),
        }
    }

    fn message(e: ApiError) -> String {
        e.to_string()
    }

    #[test]
    fn parses_objects_and_refuses_the_rest() {
        assert!(parse(b"").unwrap().0.is_empty());
        assert!(parse(b"  \n").unwrap().0.is_empty());
        assert_eq!(parse(br#"{"a":1}"#).unwrap().0.len(), 1);
        assert!(message(parse(b"[1]").unwrap_err()).contains("JSON object"));
        assert!(message(parse(b"{\"a\":").unwrap_err()).contains("not valid JSON"));
        assert!(message(parse(b"\xff\xfe").unwrap_err()).contains("not valid JSON"));
    }

    #[test]
    fn collects_every_issue_in_medusas_words() {
        let b = body(json!({"email": 5, "extra": true}));
        let mut f = Fields::of(&b);
        f.string("identifier");
        f.string("email");
        let err = f.finish_strict(&["identifier", "email"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "400 invalid_data: Invalid request: Field 'identifier' is required; \
             Expected type: 'string' for field 'email', got: 'number'; Unrecognized fields: 'extra'"
        );
        let b = body(json!({"email": "a@b.c", "extra": true}));
        let mut f = Fields::of(&b);
        assert_eq!(f.string("email"), "a@b.c");
        assert!(f.finish().is_ok(), "unknown fields are ignored unless strict");
    }
}
