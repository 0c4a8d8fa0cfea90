//! `xclade-auth`: serve (the default) or migrate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use auth_server::config::Config;
use auth_server::{migrate, open_store, Application, StartError};

/// Xclade Auth: customer authentication for commerce, wire-compatible with Medusa v2's auth routes.
///
/// Configuration comes from environment variables (and a `.env` file in the working directory);
/// see docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "xclade-auth", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default). Runs pending migrations first unless MIGRATE_ON_START=false.
    Serve,
    /// Run the pending database migrations and exit.
    Migrate,
}

fn main() -> ExitCode {
    let dotenv = dotenvy::dotenv();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Ok(path) = dotenv {
        log::info!("read {}", path.display());
    }
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            log::error!("invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Migrate => open_store(&config).and_then(|store| migrate(&store)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}", auth_http::cause_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> Result<(), StartError> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)?;
        app.run_until_stopped()
            .await
            .map_err(|e| StartError::Io("serving".into(), e))
    })
}
