use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use auth_store_diesel::DatabaseUrl;

use super::setting::parse_duration;
use super::*;

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn zero_configuration_means_sqlite_in_data_on_port_9000() {
    let c = config(&[]).unwrap();
    assert_eq!((c.server.host.as_str(), c.server.port), ("127.0.0.1", 9000));
    assert_eq!(c.server.database_url, DatabaseUrl::Sqlite(PathBuf::from("./data/xclade-auth.sqlite")));
    assert_eq!(c.tokens.jwt_expires_in, Duration::from_secs(86_400));
    assert_eq!(c.tokens.bcrypt_cost, 12);
    assert_eq!(c.tokens.actor_types, ["customer", "user"]);
    assert!(c.server.migrate_on_start);
    assert_eq!(c.sessions.ttl, Duration::from_secs(36_000));
    assert!(!c.cookie_is_secure(), "plain HTTP on loopback in development");
    assert!(c.sessions.store_publishable_keys.is_none() && c.sessions.auth_cors.is_empty());
    assert_eq!(
        (c.server.admin_host.as_str(), c.server.admin_port),
        ("127.0.0.1", Some(9001)),
        "the admin listener, on loopback"
    );
    assert!(!c.server.metrics_on_public_port, "no /metrics on the public port unless asked for");
}

#[test]
fn the_admin_listener_is_on_unless_turned_off_and_metrics_stay_off_the_public_port() {
    let c = config(&[("HOST", "0.0.0.0"), ("ADMIN_PORT", "0")]).unwrap();
    assert_eq!(
        (c.server.host.as_str(), c.server.admin_host.as_str(), c.server.admin_port),
        ("0.0.0.0", "127.0.0.1", Some(0))
    );
    let c = config(&[("ADMIN_HOST", "10.0.0.5"), ("ADMIN_PORT", "9100")]).unwrap();
    assert_eq!((c.server.admin_host.as_str(), c.server.admin_port), ("10.0.0.5", Some(9100)));
    for off in ["off", "OFF", " off "] {
        assert_eq!(config(&[("ADMIN_PORT", off)]).unwrap().server.admin_port, None, "{off:?}");
    }
    assert!(!config(&[("ADMIN_PORT", "off")]).unwrap().server.metrics_on_public_port, "off does not move /metrics");
    assert!(config(&[("METRICS_ON_PUBLIC_PORT", "true")]).unwrap().server.metrics_on_public_port);
    assert_eq!(config(&[("METRICS_ON_PUBLIC_PORT", "maybe")]).unwrap_err().key, "METRICS_ON_PUBLIC_PORT");
    for bad in ["x", "-1", "65536", "false"] {
        assert_eq!(config(&[("ADMIN_PORT", bad)]).unwrap_err().key, "ADMIN_PORT", "{bad:?}");
    }
    // The same port twice on one host cannot be bound: said at once, with the way out.
    let clash = config(&[("PORT", "9001")]).unwrap_err();
    assert_eq!(clash.key, "ADMIN_PORT");
    assert!(clash.reason.contains("ADMIN_PORT=off"), "{}", clash.reason);
    assert!(config(&[("PORT", "9001"), ("ADMIN_HOST", "127.0.0.2")]).is_ok(), "another host");
    assert!(config(&[("PORT", "0"), ("ADMIN_PORT", "0")]).is_ok(), "two free ports");
}

#[test]
fn cookie_flags_follow_the_settings() {
    let secure = |pairs: &[(&str, &str)]| config(pairs).unwrap().cookie_is_secure();
    assert!(secure(&[("HOST", "0.0.0.0")]), "auto: Secure off loopback");
    assert!(secure(&[("COOKIE_SAMESITE", "none")]), "SameSite=None forces Secure");
    assert!(secure(&[("COOKIE_SECURE", "true")]));
    assert!(!secure(&[("HOST", "0.0.0.0"), ("COOKIE_SECURE", "false")]));
    assert_eq!(config(&[("COOKIE_SAMESITE", "sometimes")]).unwrap_err().key, "COOKIE_SAMESITE");
    assert_eq!(config(&[("AUTH_CORS", "*")]).unwrap_err().key, "AUTH_CORS");
    assert_eq!(config(&[("STORE_CORS", "https://shop.example/path")]).unwrap_err().key, "STORE_CORS");
    assert_eq!(config(&[("SESSION_TTL", "0")]).unwrap_err().key, "SESSION_TTL");
    assert_eq!(config(&[("RATE_LIMIT_PER_IP", "fast")]).unwrap_err().key, "RATE_LIMIT_PER_IP");
    assert_eq!(config(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err().key, "TRUSTED_PROXIES");
    let c = config(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"), ("LOGIN_FAILURE_LIMIT", "3/1m")]).unwrap();
    assert_eq!(c.limits.trusted_proxies.len(), 2);
    assert_eq!(c.limits.buckets.login_failures.capacity, 3);
    assert!(c.limits.enabled);
    let c = config(&[("STORE_PUBLISHABLE_KEYS", "pk_1, pk_2,"), ("AUTH_CORS", "http://localhost:8000")]).unwrap();
    assert_eq!(c.sessions.store_publishable_keys.unwrap(), ["pk_1", "pk_2"]);
    assert_eq!(c.sessions.auth_cors, ["http://localhost:8000"]);
}

#[test]
fn the_pool_is_smaller_when_postgresql_shares_our_cores() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    let pool = |url: &str| config(&[("DATABASE_URL", url)]).unwrap().server.database_pool_size;
    assert_eq!(pool("postgres://postgres@127.0.0.1:5432/auth"), 2 * cores);
    assert_eq!(pool("postgres://postgres@localhost/auth"), 2 * cores);
    assert_eq!(pool("postgres://postgres@db.internal:5432/auth"), 10);
    assert_eq!(pool("./data/auth.sqlite"), 10);
    let set = config(&[("DATABASE_URL", "postgres://postgres@127.0.0.1/auth"), ("DATABASE_POOL_SIZE", "7")]);
    assert_eq!(set.unwrap().server.database_pool_size, 7);
}

#[test]
fn durations_take_units_or_bare_seconds() {
    let d = |v: &str| parse_duration(v);
    assert_eq!(d("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(d("30").unwrap(), Duration::from_secs(30));
    assert_eq!(d("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(d("1d").unwrap(), Duration::from_secs(86_400));
    assert!(d("1w").is_none());
    assert!(d("abc").is_none());
    let e = config(&[("JWT_LEEWAY", "1w")]).unwrap_err();
    assert_eq!(e.to_string(), "JWT_LEEWAY: \"1w\" is not a duration (e.g. 250ms, 30s, 15m, 1h, 1d)");
}

#[test]
fn bad_values_name_the_key_and_never_echo_secrets() {
    assert_eq!(config(&[("BCRYPT_COST", "3")]).unwrap_err().key, "BCRYPT_COST");
    assert_eq!(config(&[("PORT", "x")]).unwrap_err().key, "PORT");
    assert_eq!(config(&[("LOG_SINK", "maybe")]).unwrap_err().key, "LOG_SINK");
    let c = config(&[("JWT_SECRET", "s3cret-value"), ("JWT_SECRET_PREVIOUS", "old1, old2")]).unwrap();
    assert!(!format!("{c:?}").contains("s3cret-value"));
    assert_eq!(c.tokens.jwt_secret_previous.len(), 2);
}

/// `(section, name, default cell)` of each variable row under `## Variables` in
/// docs/configuration.md.
fn documented_variables() -> Vec<(String, String, String)> {
    let (mut in_variables, mut section, mut rows) = (false, String::new(), vec![]);
    for line in DOCS.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            in_variables = heading == "Variables";
        } else if let Some(heading) = line.strip_prefix("### ") {
            section = heading.to_string();
        } else if in_variables {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1).and_then(|c| c.strip_prefix('`')).and_then(|c| c.strip_suffix('`'));
            if let (Some(name), Some(default)) = (name, cells.get(2)) {
                if is_variable(name) {
                    rows.push((section.clone(), name.to_string(), default.to_string()));
                }
            }
        }
    }
    rows
}

const DOCS: &str = include_str!("../../../../docs/configuration.md");

fn is_variable(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn declared() -> BTreeSet<String> {
    settings().map(|s| s.name.to_string()).collect()
}

/// Every sink on, so that the settings read only with another one are read too.
const EVERY_SINK: [(&str, &str); 15] = [
    ("WEBHOOK_URL", "https://hooks.example/in"),
    ("WEBHOOK_SECRET", "whsec_eHl6"),
    ("SMTP_URL", "smtp://localhost"),
    ("EMAIL_FROM", "no-reply@shop.example"),
    ("NATS_URL", "nats://localhost"),
    // And every provider on, so that the settings read only with one have a value.
    ("OAUTH_GOOGLE_CLIENT_ID", "google-client"),
    ("OAUTH_GOOGLE_CLIENT_SECRET", "google-secret"),
    ("OAUTH_GOOGLE_CALLBACK_URL", "https://shop.example/auth/google"),
    ("OAUTH_GITHUB_CLIENT_ID", "github-client"),
    ("OAUTH_GITHUB_CLIENT_SECRET", "github-secret"),
    ("OAUTH_GITHUB_CALLBACK_URL", "https://shop.example/auth/github"),
    ("OAUTH_OIDC_ISSUER", "https://id.example"),
    ("OAUTH_OIDC_CLIENT_ID", "oidc-client"),
    ("OAUTH_OIDC_CLIENT_SECRET", "oidc-secret"),
    ("OAUTH_OIDC_CALLBACK_URL", "https://shop.example/auth/oidc"),
];

#[test]
fn the_parser_reads_the_declared_settings_and_nothing_else() {
    assert_eq!(declared().len(), settings().count(), "a setting is declared twice");
    let asked = std::cell::RefCell::new(BTreeSet::new());
    Config::from_lookup(|name| {
        asked.borrow_mut().insert(name.to_string());
        EVERY_SINK.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    })
    .unwrap();
    assert_eq!(asked.into_inner(), declared(), "Config::from_lookup and the declared settings differ");
}

#[test]
fn a_declared_default_is_the_parser_s_default() {
    let unset = config(&[]).unwrap();
    let sinks = config(&EVERY_SINK).unwrap();
    for setting in settings() {
        match setting.default {
            DefaultValue::Text(text) => {
                let set = [EVERY_SINK.as_slice(), &[(setting.name, text)]].concat();
                let set = config(&set).unwrap_or_else(|e| panic!("{}: default: {e}", setting.name));
                let value = (setting.value)(&sinks);
                assert!(value.is_some(), "{}: no value with every sink on", setting.name);
                assert_eq!(
                    (setting.value)(&set),
                    value,
                    "{}: its default text is not the parser's default",
                    setting.name
                );
            }
            DefaultValue::Unset => assert_eq!((setting.value)(&unset), None, "{}: unset by default", setting.name),
            // A description (`number of cores`, `DATA_DIR/…`): the tests above check those.
            DefaultValue::Computed(_) => {}
        }
    }
}

#[test]
fn the_settings_are_what_the_docs_list() {
    let documented = documented_variables();
    let server: Vec<String> = documented
        .iter()
        .map(|(_, name, _)| name.clone())
        .filter(|name| name != "RUST_LOG" && !name.starts_with("XCLADE_"))
        .collect();
    let in_order: Vec<String> = settings().map(|s| s.name.to_string()).collect();
    assert_eq!(server, in_order, "the settings and the variables of docs/configuration.md (or their order) differ");
    for (section, name, default) in &documented {
        let Some(setting) = settings().find(|s| s.name == name) else {
            let expected = if name == "RUST_LOG" { "Logging" } else { "Tests only" };
            assert_eq!(section, expected, "{name} is not a server setting");
            continue;
        };
        let heading = SECTIONS.iter().find(|s| s.settings.iter().any(|s| s.name == name)).unwrap().heading;
        assert_eq!(section, heading, "{name}: documented under another heading than its section");
        match setting.default {
            DefaultValue::Unset => assert!(default.starts_with("unset"), "{name}: documented default {default:?}"),
            DefaultValue::Text(text) => assert_eq!(default, &format!("`{text}`"), "{name}: documented default"),
            DefaultValue::Computed(_) => assert!(!default.starts_with("unset"), "{name}: documented default"),
        }
    }
}

/// `(name, section)` of each row of the table under `## Tenant defaults` in
/// docs/configuration.md.
fn documented_tenant_defaults() -> Vec<(String, String)> {
    let section = DOCS.split("\n## ").find(|s| s.starts_with("Tenant defaults\n")).expect("## Tenant defaults");
    let mut rows = vec![];
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells.get(1).and_then(|c| c.strip_prefix('`')).and_then(|c| c.strip_suffix('`'));
        if let (Some(name), Some(heading)) = (name, cells.get(2)) {
            if is_variable(name) {
                rows.push((name.to_string(), heading.to_string()));
            }
        }
    }
    rows
}

#[test]
fn the_tenant_defaults_are_what_the_docs_list() {
    let marked: Vec<(String, String)> = SECTIONS
        .iter()
        .flat_map(|section| section.settings.iter().map(move |setting| (setting, section.heading)))
        .filter(|(setting, _)| setting.scope == Scope::TenantDefault)
        .map(|(setting, heading)| (setting.name.to_string(), heading.to_string()))
        .collect();
    let names: Vec<&str> = marked.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["ACTOR_TYPES", "JWT_EXPIRES_IN", "WEBHOOK_SECRET", "EMAIL_FROM", "STORE_CORS"] {
        assert!(names.contains(&expected), "{expected} is a tenant default: {names:?}");
    }
    assert_eq!(documented_tenant_defaults(), marked, "docs/configuration.md#tenant-defaults");
}

#[test]
fn the_effective_configuration_redacts_secrets() {
    let pairs = [
        ("JWT_SECRET", "jwt-s3cret-value"),
        ("JWT_SECRET_PREVIOUS", "old-s3cret-1, old-s3cret-2"),
        ("DATABASE_URL", "postgres://auth:db-s3cret@db.internal:5432/auth?sslmode=require&password=q-s3cret"),
        ("WEBHOOK_URL", "https://hooks:hook-s3cret@hooks.example/in"),
        ("WEBHOOK_SECRET", "whsec_c2VjcmV0LXdlYmhvb2sta2V5"),
        ("SMTP_URL", "smtps://mailer:smtp-s3cret@smtp.example.com"),
        ("EMAIL_FROM", "no-reply@shop.example"),
        ("NATS_URL", "nats://nats-t0ken@a.example, nats://u:nats-s3cret@b.example:4222"),
        ("STORE_PUBLISHABLE_KEYS", "pk_1,pk_2"),
        ("MEDUSA_JWT_SECRET", "medusa-s3cret"),
        ("PORT", "9100"),
        ("WEBHOOK_TIMEOUT", "5s"),
    ];
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let c = config(&pairs).unwrap();
    let out = render_effective(&c, |k| map.get(k).cloned(), |_| "environment");
    for secret in ["s3cret", "t0ken", "c2VjcmV0LXdlYmhvb2sta2V5"] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
    for line in [
        "JWT_SECRET=[redacted] ",
        "JWT_SECRET_PREVIOUS=[redacted] ",
        "WEBHOOK_SECRET=[redacted] ",
        "MEDUSA_JWT_SECRET=[redacted] ",
        "DATABASE_URL=postgres://auth:[redacted]@db.internal:5432/auth?sslmode=require&password=[redacted] ",
        "WEBHOOK_URL=https://hooks:[redacted]@hooks.example/in ",
        "SMTP_URL=smtps://mailer:[redacted]@smtp.example.com ",
        "NATS_URL=nats://[redacted]@a.example,nats://u:[redacted]@b.example:4222 ",
        "STORE_PUBLISHABLE_KEYS=pk_1,pk_2 ",
        "WEBHOOK_TIMEOUT=5s ",
    ] {
        assert!(out.contains(line), "no {line:?} in\n{out}");
    }
    let lines: Vec<&str> = out.lines().collect();
    for setting in settings() {
        let line = lines.iter().find(|l| l.starts_with(&format!("{}=", setting.name))).unwrap();
        let set = map.contains_key(setting.name);
        assert_eq!(line.ends_with("# environment"), set, "{line}");
    }
    assert!(out.contains("HOST=127.0.0.1 ") && out.contains("RUST_LOG"), "{out}");
}

#[test]
fn unused_and_unset_keys_say_so() {
    let map: HashMap<String, String> = [("WEBHOOK_SECRET".to_string(), "whsec_eHl6".to_string())].into();
    let out = render_effective(&config(&[]).unwrap(), |k| map.get(k).cloned(), |_| ".env");
    assert!(out.contains("# .env, not used"), "WEBHOOK_SECRET without WEBHOOK_URL:\n{out}");
    assert!(out.contains("EVENTS_FILE=") && out.contains("# unset\n"), "{out}");
    assert!(out.contains("# unset; default: SQLite: generated into DATA_DIR/jwt-secret"), "{out}");
    assert!(!out.contains("eHl6"));
}

#[test]
fn help_lists_every_key_with_its_default() {
    let help = help_text();
    for setting in settings() {
        assert!(help.contains(&format!("  {} ", setting.name)), "{} missing from\n{help}", setting.name);
    }
    assert!(help.contains("[default: 60/1m]") && help.contains("XCLADE_*"), "{help}");
}

#[test]
fn urls_and_durations_print_in_the_configuration_syntax() {
    assert_eq!(redact_url("postgres://u@h/db", false), "postgres://u@h/db");
    assert_eq!(redact_url("nats://tok@h", true), "nats://[redacted]@h");
    assert_eq!(
        redact_url("postgres://u:p:q@h/db?Password=x", false),
        "postgres://u:[redacted]@h/db?Password=[redacted]"
    );
    assert_eq!(redact_url("./data/x.sqlite", false), "./data/x.sqlite");
    let d = |ms: u64| fmt_duration(Duration::from_millis(ms));
    assert_eq!(
        [d(250), d(0), d(30_000), d(60_000), d(90_000), d(36_000_000), d(604_800_000)],
        ["250ms", "0s", "30s", "1m", "90s", "10h", "7d"]
    );
}
