//! Request bodies: JSON objects up to the size limit, and the field checks every route uses
//! (Medusa's wording: `Invalid request: Field 'x' is required; ...`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
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
        // The whole body must arrive within `HTTP_BODY_TIMEOUT` (the head is bounded by actix's
        // client request timeout): a client that sends a head and then trickles, or stops, gets
        // a 408 and its connection is closed, instead of holding it for ever.
        let limit = req.app_data::<web::Data<crate::AppState>>().map(|state| state.settings.body_timeout);
        Box::pin(async move {
            let bytes = match limit {
                Some(limit) => actix_web::rt::time::timeout(limit, bytes).await.map_err(|_| {
                    log::debug!("request body not received within {limit:?}: 408");
                    ApiError::request_timeout(limit)
                })?,
                None => bytes.await,
            };
            let bytes = bytes.map_err(|e| {
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

impl JsonBody {
    /// The body `bytes`, parsed as every route parses a JSON body.
    pub(crate) fn parse(bytes: &[u8]) -> Result<JsonBody, ApiError> {
        parse(bytes)
    }
}

fn parse(bytes: &[u8]) -> Result<JsonBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonBody::default());
    }
    match serde_json::from_slice::<Strict>(bytes).map(|Strict(v)| v) {
        Ok(Value::Object(map)) => Ok(JsonBody(map)),
        Ok(other) => Err(ApiError::invalid_data(format!(
            "Invalid request: the body must be a JSON object, got: '{}'",
            type_name(&other)
        ))),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Err(ApiError::invalid_data(format!("Invalid request: {e}")))
        }
        Err(e) => Err(ApiError::invalid_data(format!(
            "Invalid request: the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

/// The 400s of the parser on every route that reads a body, for the OpenAPI document: each is
/// the answer to a sample body, so the document shows the real wording.
pub(crate) fn error_examples() -> Vec<(&'static str, &'static str, Value)> {
    let samples: [(&'static str, &'static str, &[u8]); 3] = [
        ("not_json", "The body is not valid JSON", b"{\"email\":"),
        ("not_an_object", "The body is JSON but not an object", b"[]"),
        ("key_twice", "A key appears twice", br#"{"email":"a@example.com","email":"b@example.com"}"#),
    ];
    samples
        .into_iter()
        .filter_map(|(name, summary, sample)| parse(sample).err().map(|e| (name, summary, e.json_body())))
        .collect()
}

/// A JSON value parsed strictly: a key twice in one object is refused (a lenient parser keeps
/// one of them silently, and a proxy in front may have kept the other).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("the field '{key}' appears twice")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
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
            // No database stores it the same way (PostgreSQL's TEXT cannot hold it at all).
            Value::String(s) if s.contains('\0') => {
                self.issues.push(format!("Field '{name}' must not contain NUL characters"));
                String::new()
            }
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
        let twice = message(parse(br#"{"a":1,"b":{"c":1,"c":2}}"#).unwrap_err());
        assert!(twice.contains("the field 'c' appears twice"), "{twice}");
        assert_eq!(parse(br#"{"a":[1,2.5,"x",null,true,{"b":-3}]}"#).unwrap().0["a"][5]["b"], -3);
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

#[cfg(test)]
mod nul_tests {
    use super::*;

    #[test]
    fn strings_with_nul_are_refused() {
        let body = JsonBody(serde_json::from_str(r#"{"email":"a\u0000b"}"#).unwrap());
        let mut f = Fields::of(&body);
        f.string("email");
        assert!(f.finish().unwrap_err().to_string().contains("must not contain NUL"));
    }
}
