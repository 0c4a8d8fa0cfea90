//! Configuration from the environment (and `.env` in development), every variable declared once.
//!
//! Each section of docs/configuration.md has a file here that declares its variables with
//! `section!` (a [`Setting`]: name, default, one line of documentation, secrecy, and whether it
//! is a tenant default) and reads them into its part of [`Config`] through [`Env`], which can read
//! a variable only through its `Setting`. [`SECTIONS`] lists them for `--help` ([`help_text`]),
//! `xclade-auth config` ([`render_effective`]) and the test that holds docs/configuration.md to
//! them.
//!
//! | file | section | part of `Config` |
//! |---|---|---|
//! | `server.rs` | Server and database | `server` |
//! | `tokens.rs` | Tokens and passwords | `tokens` |
//! | `limits.rs` | Abuse limits | `limits` |
//! | `events.rs` | Events (sinks, delivery, janitor) | `events` |
//! | `sessions.rs` | Sessions, cookies and storefronts | `sessions` |
//! | `tenants.rs` | Tenants | `tenants` |
//! | `keys.rs` | Signing keys | `keys` |
//! | `oauth.rs` | Sign-in with other providers | `oauth` |
//! | `setting.rs` | `Setting`, `Section`, `section!`, `Env` and the value syntax | |
//! | `render.rs` | `--help`, `xclade-auth config`, redaction | |

mod render;
mod setting;

pub mod events;
pub mod keys;
pub mod limits;
pub mod oauth;
pub mod server;
pub mod sessions;
pub mod tenants;
pub mod tokens;

#[cfg(test)]
mod tests;

pub use render::{fmt_duration, help_text, redact_url, render_effective, REDACTED};
pub use setting::{DefaultValue, Scope, Secrecy, Section, Setting};

use setting::Env;

use events::EventsConfig;
use keys::KeysConfig;
use limits::LimitsConfig;
use oauth::OAuthConfig;
use server::ServerConfig;
use sessions::SessionsConfig;
use tenants::TenantsConfig;
use tokens::TokensConfig;

/// Every section, in the order of `--help`, `xclade-auth config` and docs/configuration.md.
/// `RUST_LOG` (read by env_logger) and the `XCLADE_*` variables of the test suite are not server
/// settings and are not listed.
pub const SECTIONS: &[Section] = &[
    server::SECTION,
    tokens::SECTION,
    limits::SECTION,
    events::SECTION,
    sessions::SECTION,
    tenants::SECTION,
    keys::SECTION,
    oauth::SECTION,
];

/// Every setting, section by section.
pub fn settings() -> impl Iterator<Item = &'static Setting> {
    SECTIONS.iter().flat_map(|section| section.settings.iter().copied())
}

/// The configuration, one part per section.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub tokens: TokensConfig,
    pub limits: LimitsConfig,
    pub events: EventsConfig,
    pub sessions: SessionsConfig,
    pub tenants: TenantsConfig,
    pub keys: KeysConfig,
    pub oauth: OAuthConfig,
    /// The text every set variable had, as read: what a tenant's settings are read over
    /// (`crate::tenants::settings`).
    pub source: Source,
}

/// The variables a configuration was read from, by name (declared settings only). `Debug`
/// prints only their names: some are secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Source(pub std::sync::Arc<std::collections::BTreeMap<&'static str, String>>);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A secret from the environment; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// An invalid value: `invalid configuration: KEY: reason`, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::new(&lookup);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let server = ServerConfig::read(&env, cores)?;
        let tenants = TenantsConfig::read(&env, &server)?;
        Ok(Config {
            server,
            tokens: TokensConfig::read(&env, cores)?,
            limits: LimitsConfig::read(&env)?,
            events: EventsConfig::read(&env)?,
            sessions: SessionsConfig::read(&env)?,
            tenants,
            keys: KeysConfig::read(&env)?,
            oauth: OAuthConfig::read(&env)?,
            source: Source(std::sync::Arc::new(settings().filter_map(|s| Some((s.name, env.get(s)?))).collect())),
        })
    }
}
