//! A tenant's effective settings: the global configuration read again with the tenant's own
//! values in place of the global ones, for the settings marked `.tenant_default()` only, so that
//! a tenant's value is parsed and checked exactly as the same text in the environment would be.

use std::collections::BTreeMap;

use auth_domain::keys::{self, SigningKeyRecord};
use auth_domain::secret::SecretBox;
use auth_domain::tenant::{MedusaSecret, TenantSettings, WebhookTarget};
use auth_domain::AuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::config::{settings, Config, Scope, Secrecy, Setting, REDACTED};

/// The sealing context of a tenant's secret setting: a value sealed for one tenant and key does
/// not open for another.
fn sealing_context(tenant: &str, key: &str) -> String {
    format!("tenant-setting:{tenant}:{key}")
}

/// The setting `name` if a tenant may set it.
pub fn overridable(name: &str) -> Option<&'static Setting> {
    settings().find(|s| s.name == name && s.scope == Scope::TenantDefault)
}

/// Builds tenants' settings over the global configuration.
#[derive(Debug, Clone)]
pub struct SettingsReader {
    global: Config,
    /// The sinks the instance delivers to, in order (the webhook sink among them even when only
    /// tenants configure one).
    sinks: Vec<String>,
    secrets: SecretBox,
}

impl SettingsReader {
    /// `sinks`: the names of the instance's sinks; `secrets` seals the secret settings at rest.
    pub fn new(global: Config, sinks: Vec<String>, secrets: SecretBox) -> SettingsReader {
        SettingsReader { global, sinks, secrets }
    }

    /// The settings of a tenant that sets nothing of its own.
    pub fn global(&self) -> TenantSettings {
        self.effective(&self.global, auth_domain::newtypes::DEFAULT_TENANT)
    }

    /// The settings of a tenant whose own (stored, secrets sealed) values are `own`.
    pub fn read(&self, tenant: &str, own: &BTreeMap<String, String>) -> Result<TenantSettings, String> {
        let opened = self.open(tenant, own)?;
        Ok(self.effective(&self.config_with(&opened)?, tenant))
    }

    /// Checks `changes` (`KEY=VALUE`; an empty value removes the tenant's own value) over `own`,
    /// and answers the map to store: secrets sealed, the whole checked as the server will read it.
    pub fn change(
        &self,
        tenant: &str,
        own: &BTreeMap<String, String>,
        changes: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, String> {
        // A value being replaced need not open (its key may be gone): it is dropped unread.
        let replaced: BTreeMap<String, String> = own
            .iter()
            .filter(|(key, _)| !changes.iter().any(|(k, _)| k == *key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut opened = self.open(tenant, &replaced)?;
        for (key, value) in changes {
            let Some(setting) = overridable(key) else {
                let names: Vec<&str> = settings().filter(|s| s.scope == Scope::TenantDefault).map(|s| s.name).collect();
                return Err(format!("{key} is not a per-tenant setting (those are: {})", names.join(", ")));
            };
            let value = if setting.verbatim { value.clone() } else { value.trim().to_string() };
            if value.is_empty() {
                opened.remove(key);
            } else {
                opened.insert(key.clone(), value);
            }
        }
        // A tenant's webhook is its own: its URL and its key are set together, never one of them
        // over the other's global value (its events would be signed with the platform's key).
        if opened.contains_key("WEBHOOK_URL") != opened.contains_key("WEBHOOK_SECRET") {
            return Err("WEBHOOK_URL and WEBHOOK_SECRET are set together for a tenant".into());
        }
        // A tenant's OAuth client is its own too: its id is never paired with the platform's secret.
        for (id, secret) in crate::config::oauth::TOGETHER {
            if opened.contains_key(id) != opened.contains_key(secret) {
                return Err(format!("{id} and {secret} are set together for a tenant"));
            }
        }
        self.config_with(&opened)?;
        self.seal(tenant, opened)
    }

    /// `own` as `xclade-auth tenant show` prints it: secrets redacted, URL passwords replaced.
    pub fn shown(own: &BTreeMap<String, String>) -> Vec<(String, String)> {
        own.iter()
            .map(|(key, value)| {
                let shown = match overridable(key).map(|s| s.secrecy) {
                    Some(Secrecy::Public) => value.clone(),
                    Some(Secrecy::UrlPassword) => crate::config::redact_url(value, false),
                    Some(Secrecy::UrlCredentials) => crate::config::redact_url(value, true),
                    Some(Secrecy::Secret) | None => REDACTED.to_string(),
                };
                (key.clone(), shown)
            })
            .collect()
    }

    /// The global configuration with `own` in place of the global values.
    fn config_with(&self, own: &BTreeMap<String, String>) -> Result<Config, String> {
        let source = &self.global.source.0;
        Config::from_lookup(|key| match own.get(key) {
            Some(value) if overridable(key).is_some() => Some(value.clone()),
            _ => source.get(key).cloned(),
        })
        .map_err(|e| format!("{e}"))
    }

    fn open(&self, tenant: &str, own: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
        own.iter()
            .map(|(key, value)| match overridable(key) {
                Some(setting) if setting.secrecy == Secrecy::Secret => {
                    self.secrets.open(value, &sealing_context(tenant, key)).map(|opened| (key.clone(), opened)).map_err(
                        |_| format!("{key} does not open with this JWT_SECRET (or a previous one): set it again"),
                    )
                }
                Some(_) => Ok((key.clone(), value.clone())),
                None => Err(format!("{key} is not a per-tenant setting")),
            })
            .collect()
    }

    fn seal(&self, tenant: &str, opened: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
        opened
            .into_iter()
            .map(|(key, value)| match overridable(&key).map(|s| s.secrecy) {
                Some(Secrecy::Secret) => match self.secrets.seal(&value, &sealing_context(tenant, &key)) {
                    Ok(sealed) => Ok((key, sealed)),
                    Err(e) => Err(format!("sealing {key}: {e}")),
                },
                _ => Ok((key, value)),
            })
            .collect()
    }

    /// The private half (PKCS#8 DER) of a signing key, opened.
    pub fn open_key(&self, key: &SigningKeyRecord) -> Result<Vec<u8>, AuthError> {
        let sealed = self.secrets.open(&key.private_sealed, &keys::sealing_context(&key.kid))?;
        URL_SAFE_NO_PAD.decode(sealed).map_err(|e| AuthError::unexpected("a sealed signing key", e))
    }

    /// A signing key's private half (PKCS#8 DER), sealed for storage.
    pub fn seal_key(&self, kid: &str, private_der: &[u8]) -> Result<String, AuthError> {
        self.secrets.seal(&URL_SAFE_NO_PAD.encode(private_der), &keys::sealing_context(kid))
    }

    /// What a tenant's parsed configuration means for it.
    fn effective(&self, config: &Config, tenant: &str) -> TenantSettings {
        let has_webhook = config.events.webhook.is_some();
        let event_sinks =
            self.sinks.iter().filter(|sink| *sink != crate::sinks::WEBHOOK || has_webhook).cloned().collect();
        TenantSettings {
            actor_types: config.tokens.actor_types.clone(),
            password_policy: auth_domain::password::PasswordPolicy {
                min_length: config.tokens.password_min_length,
                min_strength: config.tokens.password_min_strength,
            },
            auth_ttl: crate::to_chrono(config.tokens.jwt_expires_in),
            event_sinks,
            publishable_keys: config.sessions.store_publishable_keys.clone(),
            auth_cors: config.sessions.auth_cors.clone(),
            store_cors: config.sessions.store_cors.clone(),
            reset_password_url: config.events.reset_password_url.clone(),
            email_from: config.events.email.as_ref().map(|e| e.from.clone()),
            webhook: config
                .events
                .webhook
                .as_ref()
                .map(|w| WebhookTarget { url: w.url.clone(), secret: w.key.0.clone() }),
            issuer: config.tenants.public_url_of(tenant),
            oauth_providers: config.oauth.providers.clone(),
            medusa_jwt_secret: config.tokens.medusa_jwt_secret.as_ref().map(|s| MedusaSecret(s.0.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pairs: &[(&str, &str)]) -> SettingsReader {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = Config::from_lookup(|k| map.get(k).cloned()).unwrap();
        SettingsReader::new(config, vec!["webhook".into(), "log".into()], SecretBox::new(b"jwt", &[]))
    }

    fn changes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_tenant_overrides_field_by_field() {
        let reader = reader(&[("ACTOR_TYPES", "customer,user"), ("STORE_CORS", "https://global.example")]);
        let own = reader.change("acme", &BTreeMap::new(), &changes(&[("STORE_CORS", "https://acme.example")])).unwrap();
        let settings = reader.read("acme", &own).unwrap();
        assert_eq!(settings.store_cors, vec!["https://acme.example"]);
        assert_eq!(settings.actor_types, vec!["customer", "user"], "the global value stays");
        assert_eq!(settings.event_sinks, vec!["log"], "no webhook for this tenant");
        assert_eq!(reader.global().store_cors, vec!["https://global.example"]);
        let cleared = reader.change("acme", &own, &changes(&[("STORE_CORS", "")])).unwrap();
        assert!(cleared.is_empty());
    }

    #[test]
    fn bad_values_and_instance_settings_are_refused() {
        let reader = reader(&[]);
        let none = BTreeMap::new();
        assert!(reader
            .change("a", &none, &changes(&[("DATABASE_URL", "x")]))
            .unwrap_err()
            .contains("not a per-tenant"));
        assert!(reader
            .change("a", &none, &changes(&[("JWT_EXPIRES_IN", "soon")]))
            .unwrap_err()
            .contains("JWT_EXPIRES_IN"));
        let url_only = changes(&[("WEBHOOK_URL", "https://hooks.example/in")]);
        assert!(reader.change("a", &none, &url_only).unwrap_err().contains("together"));
    }

    #[test]
    fn a_tenant_s_oauth_client_is_its_own_and_its_secret_sealed() {
        let reader = reader(&[]);
        let none = BTreeMap::new();
        let id_only = changes(&[("OAUTH_GITHUB_CLIENT_ID", "acme-gh")]);
        assert!(reader.change("acme", &none, &id_only).unwrap_err().contains("together"));
        let client = changes(&[
            ("OAUTH_GITHUB_CLIENT_ID", "acme-gh"),
            ("OAUTH_GITHUB_CLIENT_SECRET", "acme-gh-secret"),
            ("OAUTH_GITHUB_CALLBACK_URL", "https://acme.example/auth/github"),
        ]);
        let own = reader.change("acme", &none, &client).unwrap();
        assert!(!own["OAUTH_GITHUB_CLIENT_SECRET"].contains("acme-gh-secret"), "sealed at rest");
        let settings = reader.read("acme", &own).unwrap();
        let github = &settings.oauth_providers[0];
        assert_eq!((github.client_id.as_str(), github.client_secret.expose()), ("acme-gh", "acme-gh-secret"));
        assert!(reader.global().oauth_providers.is_empty(), "the other tenants have none");
        assert!(SettingsReader::shown(&own).iter().all(|(_, v)| !v.contains("acme-gh-secret")));
    }

    #[test]
    fn secrets_are_sealed_per_tenant_and_shown_redacted() {
        let reader = reader(&[]);
        let webhook =
            changes(&[("WEBHOOK_URL", "https://u:pw@hooks.example/in"), ("WEBHOOK_SECRET", "whsec_c2VjcmV0")]);
        let own = reader.change("acme", &BTreeMap::new(), &webhook).unwrap();
        assert!(!own["WEBHOOK_SECRET"].contains("whsec_"), "sealed at rest");
        let settings = reader.read("acme", &own).unwrap();
        assert_eq!(settings.webhook.as_ref().unwrap().secret, b"secret");
        assert_eq!(settings.event_sinks, vec!["webhook", "log"]);
        assert!(reader.read("other", &own).is_err(), "sealed for acme only");
        let other_key = SettingsReader::new(reader.global.clone(), reader.sinks.clone(), SecretBox::new(b"new", &[]));
        assert!(other_key.read("acme", &own).is_err(), "the JWT secret changed without the old one");
        let replaced =
            other_key.change("acme", &own, &changes(&[("WEBHOOK_URL", ""), ("WEBHOOK_SECRET", "")])).unwrap();
        assert!(replaced.is_empty(), "a value that no longer opens can still be replaced");
        let shown = SettingsReader::shown(&own);
        assert!(shown.iter().all(|(_, v)| !v.contains("pw@") && !v.contains("whsec_")), "{shown:?}");
    }
}
