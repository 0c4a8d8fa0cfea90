//! `xclade-auth tenant ...`: the stores one deployment serves. A change is written to the
//! database; every running instance picks it up within `TENANT_REFRESH_INTERVAL`.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde_json::json;

use auth_domain::newtypes::TenantId;
use auth_domain::ports::{TenantChange, TenantRecord, TenantStore};
use auth_domain::tenant::{TenantName, TenantStatus};

use super::{LOG_TARGET, SAME_AS_SERVE};
use crate::config::Config;
use crate::tenants::SettingsReader;
use crate::StartError;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant: its store is then served at NAME plus TENANT_HOST_SUFFIX.
    #[command(after_help = SAME_AS_SERVE)]
    Create {
        /// A lowercase DNS label of 1 to 63 characters, not reserved (docs/operations.md).
        name: String,
        /// A setting of its own, KEY=VALUE (repeatable); the others are the global ones.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// One line per tenant: name, status, when created, the settings of its own (names only).
    #[command(after_help = SAME_AS_SERVE)]
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// A tenant and its own settings (secrets redacted).
    #[command(after_help = SAME_AS_SERVE)]
    Show {
        name: String,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Set settings of a tenant's own, KEY=VALUE; `KEY=` (empty) goes back to the global value.
    #[command(after_help = SAME_AS_SERVE)]
    Set {
        name: String,
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
    },
    /// Stop serving a tenant: every route answers 404 and its tokens stop working.
    #[command(after_help = SAME_AS_SERVE)]
    Disable { name: String },
    /// Serve a disabled tenant again (its tokens work again until they expire).
    #[command(after_help = SAME_AS_SERVE)]
    Enable { name: String },
}

pub fn run(config: &Config, command: TenantCommand) -> Result<(), StartError> {
    let (store, reader) = super::tenant_admin(config)?;
    let now = chrono::Utc::now();
    match command {
        TenantCommand::Create { name, set } => {
            let name = TenantName::parse(&name).map_err(|reason| invalid(&name, &reason))?;
            let own = reader.change(name.as_str(), &BTreeMap::new(), &pairs(&set)?).map_err(StartError::Config)?;
            let record = store.create_tenant(&name.id(), &own, now).map_err(|e| match e {
                auth_domain::AuthError::Conflict => StartError::Config(format!("the tenant {} exists", name.as_str())),
                other => other.into(),
            })?;
            log::info!(target: LOG_TARGET, "created tenant {}", record.id);
            print_record(&record, false);
        }
        TenantCommand::List { json } => {
            let mut tenants = store.tenants_since(0)?;
            tenants.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
            for record in &tenants {
                if json {
                    println!("{}", record_json(record));
                } else {
                    let keys: Vec<&str> = record.settings.keys().map(String::as_str).collect();
                    println!(
                        "{}\t{}\tcreated={}\tsettings={}",
                        record.id,
                        record.status.as_str(),
                        record.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                        if keys.is_empty() { "-".to_string() } else { keys.join(",") }
                    );
                }
            }
        }
        TenantCommand::Show { name, json } => print_record(&find(&store, &name)?, json),
        TenantCommand::Set { name, settings } => {
            let record = find(&store, &name)?;
            let own =
                reader.change(record.id.as_str(), &record.settings, &pairs(&settings)?).map_err(StartError::Config)?;
            let change = TenantChange { status: None, settings: Some(own) };
            print_record(&store.update_tenant(&record.id, &change, now)?, false);
        }
        TenantCommand::Disable { name } => status(&store, &name, TenantStatus::Disabled, now)?,
        TenantCommand::Enable { name } => status(&store, &name, TenantStatus::Active, now)?,
    }
    Ok(())
}

fn invalid(name: &str, reason: &str) -> StartError {
    StartError::Config(format!("{name:?} cannot name a tenant: {reason}"))
}

fn find(store: &impl TenantStore, name: &str) -> Result<TenantRecord, StartError> {
    store.find_tenant(&TenantId::new(name))?.ok_or_else(|| StartError::Config(format!("there is no tenant {name:?}")))
}

fn status(
    store: &impl TenantStore,
    name: &str,
    status: TenantStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StartError> {
    let record = find(store, name)?;
    let updated = store.update_tenant(&record.id, &TenantChange { status: Some(status), settings: None }, now)?;
    log::info!(target: LOG_TARGET, "tenant {} is {}", updated.id, updated.status.as_str());
    print_record(&updated, false);
    Ok(())
}

/// `KEY=VALUE` arguments.
fn pairs(args: &[String]) -> Result<Vec<(String, String)>, StartError> {
    args.iter()
        .map(|arg| {
            arg.split_once('=').map(|(k, v)| (k.trim().to_string(), v.to_string())).ok_or_else(|| {
                StartError::Config(format!("{:?} is not KEY=VALUE", arg.split('=').next().unwrap_or("")))
            })
        })
        .collect()
}

fn record_json(record: &TenantRecord) -> serde_json::Value {
    let settings: serde_json::Map<String, serde_json::Value> =
        SettingsReader::shown(&record.settings).into_iter().map(|(k, v)| (k, v.into())).collect();
    json!({
        "name": record.id.as_str(),
        "status": record.status.as_str(),
        "created_at": record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "updated_at": record.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "settings": settings,
    })
}

fn print_record(record: &TenantRecord, json: bool) {
    if json {
        println!("{}", record_json(record));
        return;
    }
    println!("name\t{}", record.id);
    println!("status\t{}", record.status.as_str());
    println!("created_at\t{}", record.created_at.format("%Y-%m-%dT%H:%M:%SZ"));
    println!("updated_at\t{}", record.updated_at.format("%Y-%m-%dT%H:%M:%SZ"));
    for (key, value) in SettingsReader::shown(&record.settings) {
        println!("{key}\t{value}");
    }
}
