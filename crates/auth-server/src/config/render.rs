//! The settings as text: the table of `--help` ([`help_text`]) and the effective configuration
//! of `xclade-auth config` ([`render_effective`]), both from [`SECTIONS`](super::SECTIONS).

use std::time::Duration;

use auth_domain::ratelimit::RateLimit;

use super::{Config, DefaultValue, Secrecy, Setting, SECTIONS};

pub const REDACTED: &str = "[redacted]";

/// What the sections leave out on purpose, said wherever they are printed.
const NOT_LISTED: &str = "Not server settings: RUST_LOG (the log filter, read by env_logger; default info) and \
                          XCLADE_* (the test suite only).";

/// The environment variables, by section, for `--help`.
pub fn help_text() -> String {
    let mut out = wrap(
        "Environment variables (a .env file in the working directory or a parent is read too; variables \
         already set win). `xclade-auth config` prints the values in effect. Details: docs/configuration.md.",
        0,
        0,
    );
    for section in SECTIONS {
        out.push_str(&format!("\n{}:\n", section.heading));
        for setting in section.settings {
            // A bracket is kept on one line (non-breaking spaces), unless it is longer than a line.
            let keep = |bracket: String| if bracket.len() < 40 { bracket.replace(' ', "\u{a0}") } else { bracket };
            let mut text = setting.doc.to_string();
            if setting.secrecy == Secrecy::Secret {
                text.push(' ');
                text.push_str(&keep("[secret: never printed]".to_string()));
            }
            text.push(' ');
            text.push_str(&keep(format!("[default: {}]", setting.default_text())));
            out.push_str(&format!("  {:<28}", setting.name));
            out.push_str(&wrap(&text, 30, 30).replace('\u{a0}', " "));
        }
    }
    out.push('\n');
    out.push_str(&wrap(NOT_LISTED, 0, 0));
    out
}

/// `text`, to be printed from column `start`, wrapped at 100 columns on spaces; continuation
/// lines are indented by `indent`.
fn wrap(text: &str, start: usize, indent: usize) -> String {
    let (mut out, mut column) = (String::new(), start);
    for (i, word) in text.split(' ').enumerate() {
        let len = word.chars().count();
        if i > 0 && column + 1 + len > 100 {
            out.push_str(&format!("\n{:indent$}", ""));
            column = indent;
        } else if i > 0 {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
    }
    out.push('\n');
    out
}

/// The effective configuration as `xclade-auth config` prints it: one `NAME=value  # source`
/// line per setting, by section, secrets redacted. `lookup` is what `config` was read from;
/// `origin` names where a set variable came from (the environment, or `.env`).
pub fn render_effective(
    config: &Config,
    lookup: impl Fn(&str) -> Option<String>,
    origin: impl Fn(&str) -> &'static str,
) -> String {
    let mut out =
        String::from("# The effective configuration (secrets redacted). Source: environment, .env or default.\n");
    for section in SECTIONS {
        out.push_str(&format!("\n# {}\n", section.heading));
        for setting in section.settings {
            let shown = shown(setting, config);
            let source = match (is_set(setting, &lookup), &shown) {
                (true, Some(_)) => origin(setting.name).to_string(),
                (true, None) => format!("{}, not used (see --help)", origin(setting.name)),
                (false, Some(_)) => "default".to_string(),
                (false, None) if setting.default == DefaultValue::Unset => "unset".to_string(),
                (false, None) => format!("unset; default: {}", setting.default_text()),
            };
            let line = format!("{}={}", setting.name, shown.unwrap_or_default());
            out.push_str(&format!("{line:<48}  # {source}\n"));
        }
    }
    out.push_str(&format!("\n# {NOT_LISTED}\n"));
    out
}

/// Whether the setting is set in `lookup`, by the parser's rules: an empty (or, unless it is
/// verbatim, blank) value counts as unset.
fn is_set(setting: &Setting, lookup: &impl Fn(&str) -> Option<String>) -> bool {
    lookup(setting.name).is_some_and(|v| !v.is_empty() && (setting.verbatim || !v.trim().is_empty()))
}

/// The value as `xclade-auth config` shows it.
fn shown(setting: &Setting, config: &Config) -> Option<String> {
    let value = (setting.value)(config)?;
    Some(match setting.secrecy {
        Secrecy::Public => value,
        Secrecy::Secret => REDACTED.to_string(),
        Secrecy::UrlPassword => redact_url(&value, false),
        Secrecy::UrlCredentials => {
            value.split(',').map(|url| redact_url(url.trim(), true)).collect::<Vec<_>>().join(",")
        }
    })
}

/// A URL with its password replaced: `scheme://user:[redacted]@host/…?password=[redacted]`.
/// With `token`, a lone `token@` (NATS) is replaced too; otherwise it is a user name and stays.
pub fn redact_url(url: &str, token: bool) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None if token => format!("{REDACTED}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => rest.to_string(),
    };
    let Some((base, query)) = rest.split_once('?') else { return format!("{scheme}{rest}") };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if ["password", "secret", "token"].iter().any(|s| name.to_ascii_lowercase().contains(s)) =>
            {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{scheme}{base}?{}", query.join("&"))
}

/// A duration in the largest unit that writes it exactly (`250ms`, `30s`, `15m`, `1h`, `7d`).
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match s {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A limit in the configuration's syntax (`60/1m`).
pub fn fmt_limit(limit: RateLimit) -> String {
    format!("{}/{}", limit.capacity, limit.window.to_std().map(fmt_duration).unwrap_or_default())
}

/// A list in the configuration's syntax: comma-separated, `None` when empty.
pub fn fmt_list<T: ToString>(items: &[T]) -> Option<String> {
    (!items.is_empty()).then(|| items.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
}
