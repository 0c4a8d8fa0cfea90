//! One configuration variable, declared once ([`Setting`]), the sections that list them
//! ([`Section`], the `section!` macro), and [`Env`], the only way the parser reads a variable.

use std::time::Duration;

use auth_domain::ratelimit::RateLimit;

use super::{Config, ConfigError};

/// One environment variable of the server, declared once in its section's file with
/// `section!`. The parser reads it through [`Env`]; `--help` and `xclade-auth config` print it;
/// a test holds docs/configuration.md to it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The variable, e.g. `PORT` (the `section!` macro names the setting after its constant).
    pub name: &'static str,
    /// What applies when the variable is unset.
    pub default: DefaultValue,
    /// One line for `--help`; docs/configuration.md has the details.
    pub doc: &'static str,
    /// How `xclade-auth config` shows the value.
    pub secrecy: Secrecy,
    /// Whether the setting is the default of a per-tenant setting (see [`Scope`]).
    pub scope: Scope,
    /// Used exactly as given: not trimmed, and only an empty value counts as unset (`JWT_SECRET`).
    pub verbatim: bool,
    /// The effective value in a parsed configuration, before redaction; `None` when unset or
    /// not used (a setting that another one turns off).
    pub value: fn(&Config) -> Option<String>,
}

/// What applies when a variable is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// A value, parsed exactly as the same text in the environment would be.
    Text(&'static str),
    /// Nothing: the feature is off, or the list empty.
    Unset,
    /// Worked out at start from the machine or from other settings; the text says how.
    Computed(&'static str),
}

/// How `xclade-auth config` shows a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Shown as it is.
    Public,
    /// A secret: only `[redacted]` is shown when it is set, and `--help` says it is never printed.
    Secret,
    /// A URL: a password in `user:password@` and in `password=` query parameters is replaced.
    UrlPassword,
    /// NATS URLs (comma-separated): as `UrlPassword`, and a lone `token@` is replaced too.
    UrlCredentials,
}

/// Who a setting is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The instance: every tenant it serves shares the value.
    Instance,
    /// The default of a setting that each tenant may override (`xclade-auth tenant set NAME
    /// KEY=VALUE`, `crate::tenants`). Listed in docs/configuration.md.
    TenantDefault,
}

impl Setting {
    /// A public, instance-wide setting, verbatim off; `section!` gives it its name.
    pub const fn new(default: DefaultValue, doc: &'static str, value: fn(&Config) -> Option<String>) -> Setting {
        Setting { name: "", default, doc, secrecy: Secrecy::Public, scope: Scope::Instance, verbatim: false, value }
    }

    /// The setting named `name` (used by `section!`, with the constant's name).
    pub(super) const fn named(self, name: &'static str) -> Setting {
        Setting { name, ..self }
    }

    pub const fn secrecy(self, secrecy: Secrecy) -> Setting {
        Setting { secrecy, ..self }
    }

    /// Marks the setting as the default of a per-tenant setting.
    pub const fn tenant_default(self) -> Setting {
        Setting { scope: Scope::TenantDefault, ..self }
    }

    /// Used byte for byte: not trimmed.
    pub const fn verbatim(self) -> Setting {
        Setting { verbatim: true, ..self }
    }

    /// The default as `--help`, `xclade-auth config` and the docs write it (`unset` for none).
    pub fn default_text(&self) -> &'static str {
        match self.default {
            DefaultValue::Text(text) | DefaultValue::Computed(text) => text,
            DefaultValue::Unset => "unset",
        }
    }

    /// The error of an invalid value of this setting.
    pub fn invalid(&self, reason: &str) -> ConfigError {
        ConfigError { key: self.name, reason: reason.to_string() }
    }
}

/// A section of the configuration: a heading of `--help`, of `xclade-auth config` and of
/// docs/configuration.md, and its settings in that order.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    pub heading: &'static str,
    pub settings: &'static [&'static Setting],
}

/// Declares a section's settings: `NAME = Setting::new(...)` becomes `pub const NAME: Setting`
/// named `"NAME"`, and `SECTION` lists them all, so a setting cannot be declared without being
/// listed (and so printed by `--help` and `xclade-auth config`, and checked against the docs).
///
/// Invoked with braces, which rustfmt leaves as written: one block per setting, its default, its
/// line of `--help` and its value each on a line of their own, then the modifiers.
macro_rules! section {
    ($heading:literal, $($name:ident = $setting:expr),+ $(,)?) => {
        $(pub const $name: $crate::config::Setting = $setting.named(stringify!($name));)+

        /// This section and its settings, in the order of docs/configuration.md.
        pub const SECTION: $crate::config::Section =
            $crate::config::Section { heading: $heading, settings: &[$(&$name),+] };
    };
}
pub(crate) use section;

/// The environment as the parser sees it: a variable can be read only through its declared
/// [`Setting`]. A value is trimmed (unless the setting is verbatim), and an empty one counts as
/// unset.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env { lookup }
    }

    /// The value as set, or `None`.
    pub fn get(&self, setting: &Setting) -> Option<String> {
        let value = (self.lookup)(setting.name)?;
        let value = if setting.verbatim { value } else { value.trim().to_string() };
        (!value.is_empty()).then_some(value)
    }

    /// The value as set, or else the declared default text (`None` when neither).
    pub fn text(&self, setting: &Setting) -> Option<String> {
        self.get(setting).or_else(|| match setting.default {
            DefaultValue::Text(text) => Some(text.to_string()),
            DefaultValue::Unset | DefaultValue::Computed(_) => None,
        })
    }

    /// The value as set, or else the declared default text. A setting without a default text
    /// must be read with `get` or `text`: read here, it is required.
    pub fn string(&self, setting: &Setting) -> Result<String, ConfigError> {
        self.text(setting).ok_or_else(|| setting.invalid("is required"))
    }

    /// A decimal number, or the declared default.
    pub fn number<T: std::str::FromStr>(&self, setting: &Setting) -> Result<T, ConfigError> {
        parse_number(setting, &self.string(setting)?)
    }

    /// A decimal number, or `computed` when unset (a [`DefaultValue::Computed`] setting).
    pub fn number_or<T: std::str::FromStr>(&self, setting: &Setting, computed: T) -> Result<T, ConfigError> {
        self.get(setting).map_or(Ok(computed), |v| parse_number(setting, &v))
    }

    /// A boolean, or the declared default.
    pub fn flag(&self, setting: &Setting) -> Result<bool, ConfigError> {
        parse_flag(setting, &self.string(setting)?)
    }

    /// A boolean, or `None` when unset (a setting whose default depends on others).
    pub fn optional_flag(&self, setting: &Setting) -> Result<Option<bool>, ConfigError> {
        self.get(setting).map(|v| parse_flag(setting, &v)).transpose()
    }

    /// A duration, or the declared default.
    pub fn duration(&self, setting: &Setting) -> Result<Duration, ConfigError> {
        let value = self.string(setting)?;
        parse_duration(&value)
            .ok_or_else(|| setting.invalid(&format!("{value:?} is not a duration (e.g. 250ms, 30s, 15m, 1h, 1d)")))
    }

    /// A limit written `N/duration` (`60/1m`), or the declared default.
    pub fn limit(&self, setting: &Setting) -> Result<RateLimit, ConfigError> {
        let value = self.string(setting)?;
        RateLimit::parse(&value).ok_or_else(|| setting.invalid(&format!("{value:?} is not a limit like 60/1m")))
    }

    /// A comma-separated list, trimmed, without empty items; the default's items when unset, and
    /// none when there is no default.
    pub fn list(&self, setting: &Setting) -> Vec<String> {
        self.text(setting)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    }
}

fn parse_number<T: std::str::FromStr>(setting: &Setting, value: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| setting.invalid(&format!("{value:?} is not a valid number")))
}

fn parse_flag(setting: &Setting, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(setting.invalid(&format!("{other:?} is not true or false"))),
    }
}

/// A duration: a whole number followed by `ms`, `s`, `m`, `h` or `d`, or bare seconds.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let millis = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(millis).map(Duration::from_millis)
}
