//! Tenants: how a request's host names its store, and how soon a change to a tenant (made by
//! `xclade-auth tenant ...` on any machine) reaches this instance.

use std::time::Duration;

use super::render::fmt_duration;
use super::setting::{section, DefaultValue::*, Env, Setting};
use super::ConfigError;

section! {
    "Tenants",
    TENANT_HOST_SUFFIX = Setting::new(
        Unset,
        "e.g. .api.myxclade.com: a request for {tenant}.api.myxclade.com is the tenant's; unset, every request is the tenant default",
        |c| c.tenants.host_suffix.clone(),
    ),
    PUBLIC_URL = Setting::new(
        Computed("https://{tenant} followed by TENANT_HOST_SUFFIX when it is set, else http://HOST:PORT"),
        "a tenant's public base URL, {tenant} replaced by its name: the iss of its tokens and the issuer of its OpenID configuration",
        |c| Some(c.tenants.public_url.clone()),
    ),
    TENANT_REFRESH_INTERVAL = Setting::new(
        Text("250ms"),
        "how often the tenant directory's revision is read: a change reaches every instance within this time",
        |c| Some(fmt_duration(c.tenants.refresh_interval)),
    ),
}

/// Tenants.
#[derive(Debug, Clone)]
pub struct TenantsConfig {
    /// The suffix under which each label names a tenant (lowercase, with its leading dot); `None`:
    /// one tenant, `default`, for every host.
    pub host_suffix: Option<String>,
    /// The base URL template (`{tenant}` is the tenant's name).
    pub public_url: String,
    pub refresh_interval: Duration,
}

impl TenantsConfig {
    /// The public base URL of `tenant`.
    pub fn public_url_of(&self, tenant: &str) -> String {
        self.public_url.replace("{tenant}", tenant)
    }
}

impl TenantsConfig {
    pub(super) fn read(env: &Env, server: &super::server::ServerConfig) -> Result<TenantsConfig, ConfigError> {
        let host_suffix = match env.get(&TENANT_HOST_SUFFIX) {
            None => None,
            Some(suffix) => Some(host_suffix(&suffix).map_err(|reason| TENANT_HOST_SUFFIX.invalid(&reason))?),
        };
        let public_url = match env.get(&PUBLIC_URL) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => match &host_suffix {
                Some(suffix) => format!("https://{{tenant}}{suffix}"),
                None => format!("http://{}:{}", server.host, server.port),
            },
        };
        if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
            || public_url.contains(char::is_whitespace)
        {
            return Err(PUBLIC_URL.invalid(&format!("{public_url:?} is not an http(s) URL")));
        }
        let refresh_interval = env.duration(&TENANT_REFRESH_INTERVAL)?;
        if refresh_interval < Duration::from_millis(10) || refresh_interval > Duration::from_secs(60) {
            return Err(TENANT_REFRESH_INTERVAL.invalid("must be between 10ms and 60s"));
        }
        Ok(TenantsConfig { host_suffix, public_url, refresh_interval })
    }
}

/// The suffix as the directory compares it: lowercase, one leading dot, no trailing dot, DNS
/// labels of letters, digits and hyphens.
fn host_suffix(value: &str) -> Result<String, String> {
    let trimmed = value.trim_end_matches('.').to_ascii_lowercase();
    let trimmed = trimmed.strip_prefix('.').unwrap_or(&trimmed);
    let valid_label =
        |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if trimmed.is_empty() || trimmed.len() > 200 || !trimmed.split('.').all(valid_label) {
        return Err(format!("{value:?} is not a domain such as .api.myxclade.com"));
    }
    Ok(format!(".{trimmed}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_suffix_is_normalised() {
        assert_eq!(super::host_suffix(".API.MyXclade.com.").unwrap(), ".api.myxclade.com");
        assert_eq!(super::host_suffix("api.myxclade.com").unwrap(), ".api.myxclade.com");
        for bad in ["", ".", "a..b", "a b.com", "*.api.com", "bücher.com"] {
            assert!(super::host_suffix(bad).is_err(), "{bad:?}");
        }
    }
}
