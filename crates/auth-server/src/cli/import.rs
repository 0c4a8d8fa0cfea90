//! `xclade-auth import medusa`: a Medusa v2 database's accounts, moved into a tenant
//! (docs/operations.md, "Moving from Medusa"). The source is read in one read-only transaction;
//! the accounts are decided by `auth_domain::import::plan` and written in batches, each one
//! transaction (`ImportStore`), so a run stopped half-way leaves whole accounts only, and the next
//! run finds them `unchanged` and goes on.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use auth_domain::import::{plan, ImportOutcome, Skipped};
use auth_domain::newtypes::TenantId;
use auth_domain::ports::{ImportStore, TenantStore};
use auth_domain::tenant::TenantStatus;
use auth_store_diesel::medusa::{read_medusa, SourceError};

use super::LOG_TARGET;
use crate::config::Config;
use crate::StartError;

/// The exit code of a run that left accounts out (each listed with its reason).
pub const SKIPPED_EXIT: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import the customers and users of a Medusa v2 database (auth_identity, provider_identity,
    /// customer): ids, links, addresses and timestamps kept, password hashes kept as Medusa wrote
    /// them (checked at login, then replaced with bcrypt). Safe to run again: accounts already
    /// here are left unchanged. Exit code 0: every account is here; 3: some were left out (listed
    /// with the reason); 1: the import failed (nothing of the unfinished batch is written).
    Medusa(MedusaArgs),
}

#[derive(Debug, Args)]
pub struct MedusaArgs {
    /// The Medusa database, read only (postgres://user:password@host:port/database). Also read
    /// from MEDUSA_DATABASE_URL, which keeps the password out of the process list.
    #[arg(long, value_name = "URL", env = "MEDUSA_DATABASE_URL", hide_env_values = true)]
    from: String,
    /// The tenant (store) the accounts go to.
    #[arg(long, default_value = auth_domain::newtypes::DEFAULT_TENANT)]
    tenant: String,
    /// Decide every account and report, but write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the summary as one JSON object on standard output (and no progress bar).
    #[arg(long)]
    json: bool,
    /// Accounts written per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=5000))]
    batch_size: u16,
}

pub fn run(config: &Config, command: ImportCommand) -> Result<ExitCode, StartError> {
    match command {
        ImportCommand::Medusa(args) => medusa(config, &args),
    }
}

/// The counts of a run.
#[derive(Debug, Default)]
struct Tally {
    imported: usize,
    unchanged: usize,
    customers: usize,
    by_actor: std::collections::BTreeMap<String, usize>,
    /// Provider identities written, by provider (`emailpass`, `google`, `github`).
    by_provider: std::collections::BTreeMap<String, usize>,
    /// Provider identities of other providers on accounts that are here: (account, id, provider).
    left_behind: Vec<(String, String, String)>,
    skipped: Vec<Skipped>,
}

fn medusa(config: &Config, args: &MedusaArgs) -> Result<ExitCode, StartError> {
    let started = Instant::now();
    if !(args.from.starts_with("postgres://") || args.from.starts_with("postgresql://")) {
        return Err(StartError::Import(SourceError::NotPostgres.to_string()));
    }
    let tenant = TenantId::new(&args.tenant);
    let store = crate::open_store(config)?;
    if config.server.migrate_on_start {
        crate::migrate(&store)?;
    }
    match store.find_tenant(&tenant)? {
        Some(t) if t.status == TenantStatus::Active => {}
        Some(_) => return Err(StartError::Config(format!("the tenant {:?} is disabled", args.tenant))),
        None => {
            return Err(StartError::Config(format!("there is no tenant {:?} (xclade-auth tenant list)", args.tenant)))
        }
    }
    let snapshot = read_medusa(&args.from).map_err(|e| StartError::Import(e.to_string()))?;
    let read = json!({
        "auth_identity": snapshot.identities.len(),
        "provider_identity": snapshot.provider_identities.len(),
        "customer": snapshot.customers.len(),
    });
    log::info!(
        target: LOG_TARGET,
        "read {} auth identities, {} provider identities and {} customers from Medusa",
        snapshot.identities.len(),
        snapshot.provider_identities.len(),
        snapshot.customers.len()
    );
    let plan = plan(&snapshot)?;
    drop(snapshot);

    let bar = progress_bar(plan.accounts.len() as u64, args.json);
    let mut tally = Tally { skipped: plan.skipped, ..Tally::default() };
    for (n, batch) in plan.accounts.chunks(usize::from(args.batch_size)).enumerate() {
        // After batches 1, 2, 4, 8, …: the planner's statistics follow the tables' growth.
        if n.is_power_of_two() && !args.dry_run {
            store.refresh_statistics()?;
        }
        let outcomes = store.import_accounts(&tenant, batch, args.dry_run)?;
        for (account, outcome) in batch.iter().zip(outcomes) {
            if matches!(outcome, ImportOutcome::Imported | ImportOutcome::Unchanged) {
                let of = |(id, provider): &(String, String)| {
                    (account.auth_identity_id.clone(), id.clone(), provider.clone())
                };
                tally.left_behind.extend(account.left_behind.iter().map(of));
            }
            match outcome {
                ImportOutcome::Imported => {
                    tally.imported += 1;
                    tally.customers += usize::from(account.customer.is_some());
                    let actors = account.actors();
                    if actors.is_empty() {
                        *tally.by_actor.entry("none".into()).or_default() += 1;
                    }
                    for actor in actors {
                        *tally.by_actor.entry(actor).or_default() += 1;
                    }
                    for pi in &account.provider_identities {
                        *tally.by_provider.entry(pi.provider.clone()).or_default() += 1;
                    }
                }
                ImportOutcome::Unchanged => tally.unchanged += 1,
                ImportOutcome::Skipped(reason) => tally.skipped.push(Skipped {
                    auth_identity_id: account.auth_identity_id.clone(),
                    entity_id: Some(account.entity_id().to_string()),
                    reason,
                }),
            }
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    if !args.dry_run {
        store.refresh_statistics()?;
    }
    tally.skipped.sort_by(|a, b| a.auth_identity_id.cmp(&b.auth_identity_id));

    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let skipped: Vec<_> = tally
            .skipped
            .iter()
            .map(|s| {
                json!({
                    "auth_identity_id": s.auth_identity_id,
                    "entity_id": s.entity_id,
                    "reason": s.reason.code(),
                    "message": s.reason.to_string(),
                })
            })
            .collect();
        let summary = json!({
            "tenant": args.tenant,
            "dry_run": args.dry_run,
            "read": read,
            "imported": tally.imported,
            "imported_by_actor": tally.by_actor,
            "imported_by_provider": tally.by_provider,
            "customers": tally.customers,
            "unchanged": tally.unchanged,
            "skipped": skipped,
            "providers_left": tally
                .left_behind
                .iter()
                .map(|(account, id, provider)| json!({"auth_identity_id": account, "provider_identity_id": id, "provider": provider}))
                .collect::<Vec<_>>(),
            "guest_customers_left": plan.unlinked_customers,
            "seconds": (seconds * 1000.0).round() / 1000.0,
        });
        println!("{summary}");
    } else {
        print_summary(args, &tally, plan.unlinked_customers, seconds);
    }
    Ok(if tally.skipped.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(SKIPPED_EXIT) })
}

fn progress_bar(len: u64, json: bool) -> ProgressBar {
    // On a terminal only: a pipe or a log file gets the summary alone.
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} accounts ({elapsed}, about {eta} left)") {
        bar.set_style(style);
    }
    bar
}

fn print_summary(args: &MedusaArgs, tally: &Tally, guests: usize, seconds: f64) {
    let verb = if args.dry_run { "would import" } else { "imported" };
    println!(
        "{}tenant {}: {verb} {} accounts ({}), {} customers; {} unchanged (already here); {} left out; {seconds:.1} s",
        if args.dry_run { "dry run, nothing written: " } else { "" },
        args.tenant,
        tally.imported,
        if tally.by_actor.is_empty() {
            "none".to_string()
        } else {
            let name = |actor: &str| if actor == "none" { "no actor yet".to_string() } else { actor.to_string() };
            tally.by_actor.iter().map(|(actor, n)| format!("{}: {n}", name(actor))).collect::<Vec<_>>().join(", ")
        },
        tally.customers,
        tally.unchanged,
        tally.skipped.len(),
    );
    // Social sign-ins are named when there are any; an email/password-only store sees one line.
    if tally.by_provider.keys().any(|p| p != "emailpass") {
        let sign_ins: Vec<String> = tally.by_provider.iter().map(|(p, n)| format!("{p}: {n}")).collect();
        println!("sign-ins {}: {}", if args.dry_run { "that would move" } else { "moved" }, sign_ins.join(", "));
    }
    if guests > 0 {
        println!("{guests} customers without an account (guests) stay in Medusa");
    }
    for s in &tally.skipped {
        println!("left out {} ({}): {}", s.auth_identity_id, s.entity_id.as_deref().unwrap_or("-"), s.reason);
    }
    for (account, id, provider) in &tally.left_behind {
        println!("stays in Medusa: the {provider} identity {id} of {account} (a provider not moved)");
    }
}
