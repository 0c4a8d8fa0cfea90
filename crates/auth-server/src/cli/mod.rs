//! The command line of `xclade-auth` (clap): [`Cli`] and its [`Command`]s, and [`main`], which
//! reads `.env` and the configuration and runs the command.
//!
//! Each command is a file here that holds its arguments (if it has any) and its `run`:
//! `serve.rs`, `migrate.rs`, `config.rs`, `events.rs` (`events list`, `events retry`),
//! `user.rs` (`user create`), `tenant.rs` (`tenant create|list|show|set|disable|enable`), `keys.rs`
//! (`keys list|create|show|activate|retire|delete|rotate`), `import.rs` (`import medusa`). A new
//! command is a new file beside them, plus its variant in [`Command`] and its line in [`main`].

mod config;
mod events;
mod import;
mod keys;
mod migrate;
mod serve;
mod tenant;
mod user;

use std::collections::HashSet;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{help_text, Config};

pub use events::EventsCommand;
pub use import::ImportCommand;
pub use keys::KeysCommand;
pub use tenant::TenantCommand;
pub use user::UserCommand;

/// The target of the binary's own log lines: the one they had when `main.rs` logged them, so
/// a filter such as `RUST_LOG=xclade_auth=debug` still selects them.
const LOG_TARGET: &str = "xclade_auth";

/// Xclade Auth: customer authentication for commerce, wire-compatible with Medusa v2's auth routes.
///
/// Configuration comes from environment variables (and a `.env` file in the working directory);
/// see docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "xclade-auth", version, after_help = SEE_LONG_HELP, after_long_help = help_text())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default). Runs pending migrations first unless MIGRATE_ON_START=false.
    #[command(after_help = SEE_LONG_HELP, after_long_help = help_text())]
    Serve,
    /// Run the pending database migrations and exit.
    #[command(after_help = DATABASE_ONLY)]
    Migrate,
    /// Inspect and re-arm event deliveries.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Manage the tenants (stores) this deployment serves.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage the tenants' signing keys (EdDSA, ES256) and rotate them.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Move accounts in from another system (Medusa v2).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Manage admin users (the `user` actor).
    #[command(subcommand)]
    User(UserCommand),
    /// Print the effective configuration: every variable, its value and where it came from
    /// (environment, .env or default), with secrets redacted. Exit code 2 if it is invalid.
    #[command(after_help = SAME_AS_SERVE)]
    Config,
}

/// `-h` on the top level and `serve`: `--help` has the table of variables.
const SEE_LONG_HELP: &str = "Configuration: environment variables (and .env). `--help` lists them all; \
                             `xclade-auth config`\nprints the values in effect.";

/// `--help` of the commands that open the database only.
const DATABASE_ONLY: &str = "Environment (and .env): DATABASE_URL, DATA_DIR, DATABASE_POOL_SIZE, \
                             DATABASE_TIMEOUT. The other\nvariables are checked too (exit code 2 if one is \
                             invalid). `xclade-auth serve --help` lists every\nvariable, `xclade-auth config` \
                             prints the values in effect.";

/// `--help` of the commands that read the whole configuration, as `serve` does.
const SAME_AS_SERVE: &str = "Environment (and .env): the same variables as serve (exit code 2 if one is invalid).\n\
                             `xclade-auth serve --help` lists them, `xclade-auth config` prints the values in effect.";

/// The binary: reads `.env`, parses the command line and the configuration (exit code 2 when
/// either is invalid), runs the command (exit code 1 when it fails, with the cause chain logged).
pub fn main() -> ExitCode {
    // The variables the process was given, before `.env` adds its own (`config` tells them apart).
    let given: HashSet<String> = std::env::vars_os().filter_map(|(key, _)| key.into_string().ok()).collect();
    let dotenv = dotenvy::dotenv();
    crate::init_logging();
    if let Ok(path) = dotenv {
        log::info!(target: LOG_TARGET, "read {}", path.display());
    }
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            log::error!(target: LOG_TARGET, "invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let done = |result: Result<(), crate::StartError>| result.map(|()| ExitCode::SUCCESS);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => done(serve::run(config)),
        Command::Migrate => done(migrate::run(&config)),
        Command::Events(command) => done(events::run(&config, command)),
        Command::Tenant(command) => done(tenant::run(&config, command)),
        Command::Keys(command) => done(keys::run(&config, command)),
        Command::Import(command) => import::run(&config, command),
        Command::User(command) => done(user::run(&config, command)),
        Command::Config => done(config::run(&config, &given)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            log::error!(target: LOG_TARGET, "{}", auth_http::cause_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// What the `tenant` and `keys` commands work with: the database (migrated unless
/// `MIGRATE_ON_START=false`) and the reader of tenants' settings, which seals their secrets.
fn tenant_admin(
    config: &Config,
) -> Result<(auth_store_diesel::DieselStore, crate::tenants::SettingsReader), crate::StartError> {
    let store = crate::open_store(config)?;
    if config.server.migrate_on_start {
        crate::migrate(&store)?;
    }
    let secrets = crate::secrets::secret_box(config)?;
    Ok((store, crate::tenants::SettingsReader::new(config.clone(), crate::sinks::names(config), secrets)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
