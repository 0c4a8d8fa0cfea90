//! GitHub's REST API answers: `GET /user` and `GET /user/emails` (documented shapes at
//! <https://docs.github.com/en/rest/users/users> and `/users/emails`). GitHub has no ID token:
//! the user is who the access token belongs to, and the email is the primary one only when GitHub
//! says it is verified.

use serde_json::{Map, Value};

use super::{text, ProviderProfile};

/// The profile from the answers of `/user` and `/user/emails`.
pub fn profile(user: &str, emails: &str) -> Result<ProviderProfile, String> {
    let user: Map<String, Value> = serde_json::from_str(user).map_err(|_| "GET /user did not answer an object")?;
    let subject = match user.get("id") {
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        _ => return Err("GET /user answered no numeric id".into()),
    };
    let emails: Vec<Value> = serde_json::from_str(emails).map_err(|_| "GET /user/emails did not answer a list")?;
    let primary = emails.iter().filter_map(Value::as_object).find(|e| e.get("primary") == Some(&Value::Bool(true)));
    let (email, verified) = match primary {
        Some(p) => (text(p, "email"), p.get("verified") == Some(&Value::Bool(true))),
        None => (text(&user, "email"), false),
    };
    let mut details = Map::new();
    for (from, to) in [("name", "name"), ("avatar_url", "picture"), ("login", "login"), ("html_url", "profile_url")] {
        if let Some(value) = text(&user, from) {
            details.insert(to.into(), Value::String(value));
        }
    }
    Ok(ProviderProfile { subject, email, email_verified: verified, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_email_counts_only_when_verified() {
        let user = r#"{"login":"octocat","id":583231,"name":"The Octocat","email":"public@example.com",
            "avatar_url":"https://avatars.githubusercontent.com/u/583231","html_url":"https://github.com/octocat"}"#;
        let emails = r#"[{"email":"other@example.com","primary":false,"verified":true,"visibility":null},
            {"email":"octo@example.com","primary":true,"verified":true,"visibility":"public"}]"#;
        let p = profile(user, emails).unwrap();
        assert_eq!(p.subject, "583231");
        assert_eq!(p.email.as_deref(), Some("octo@example.com"));
        assert!(p.email_verified);
        assert_eq!(p.user_metadata()["login"], "octocat");
        let unverified = emails.replace(r#""primary":true,"verified":true"#, r#""primary":true,"verified":false"#);
        assert!(!profile(user, &unverified).unwrap().email_verified);
        let none = profile(user, "[]").unwrap();
        assert_eq!((none.email.as_deref(), none.email_verified), (Some("public@example.com"), false));
        assert!(profile(r#"{"id":"1"}"#, "[]").is_err());
    }
}
