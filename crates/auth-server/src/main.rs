//! `xclade-auth`: serve (the default) or migrate.

use std::collections::HashSet;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use auth_domain::context::RequestContext;
use auth_server::config::{help_text, render_effective, Config};
use auth_server::{compose, migrate, open_store, Application, StartError};

/// Xclade Auth: customer authentication for commerce, wire-compatible with Medusa v2's auth routes.
///
/// Configuration comes from environment variables (and a `.env` file in the working directory);
/// see docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "xclade-auth", version, after_help = SEE_LONG_HELP, after_long_help = help_text())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default). Runs pending migrations first unless MIGRATE_ON_START=false.
    #[command(after_help = SEE_LONG_HELP, after_long_help = help_text())]
    Serve,
    /// Run the pending database migrations and exit.
    #[command(after_help = DATABASE_ONLY)]
    Migrate,
    /// Inspect and re-arm event deliveries.
    #[command(subcommand)]
    Events(EventsCommand),
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

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// One line per delivery, newest event first: event id, name, sink, status, attempts, last
    /// error (never the token).
    #[command(after_help = DATABASE_ONLY)]
    List {
        /// Only deliveries in this state.
        #[arg(long, value_parser = ["pending", "failed", "dead", "expired", "delivered"])]
        status: Option<String>,
        /// At most this many lines.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Re-arm the dead and failed deliveries of an event: the running dispatcher delivers them
    /// again, with a fresh budget of attempts.
    #[command(after_help = DATABASE_ONLY)]
    Retry {
        /// The event id (`evt_...`).
        event_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an admin user: an email/password identity linked as a `user`, who logs in at
    /// POST /auth/user/emailpass. Prints the user id.
    #[command(after_help = SAME_AS_SERVE)]
    Create {
        /// The user's email address.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (so it stays out of the
        /// shell history and the process list).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    // The variables the process was given, before `.env` adds its own (`config` tells them apart).
    let given: HashSet<String> = std::env::vars_os().filter_map(|(key, _)| key.into_string().ok()).collect();
    let dotenv = dotenvy::dotenv();
    auth_server::init_logging();
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
        Command::User(UserCommand::Create { email, password_stdin: _ }) => create_user(&config, &email),
        Command::Events(command) => open_store(&config).and_then(|store| events(&store, command)),
        Command::Config => {
            let origin = |key: &str| if given.contains(key) { "environment" } else { ".env" };
            print!("{}", render_effective(&config, |key| std::env::var(key).ok(), origin));
            Ok(())
        }
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
        app.run_until_stopped().await.map_err(|e| StartError::Io("serving".into(), e))
    })
}

fn create_user(config: &Config, email: &str) -> Result<(), StartError> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| StartError::Io("reading the password from standard input".into(), e))?;
    let password = password.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&password);
    let composed = compose(config)?;
    let ctx = RequestContext::new(composed.tenants.resolve(None)?.id);
    let user_id = composed.service.create_user(&ctx, email, password.to_string())?;
    log::info!("created user {user_id} for {email}");
    println!("{user_id}");
    Ok(())
}

fn events(store: &auth_store_diesel::DieselStore, command: EventsCommand) -> Result<(), StartError> {
    use auth_domain::ports::{DeliveryStatus, EventOutbox};
    match command {
        EventsCommand::List { status, limit } => {
            let status = status.as_deref().and_then(DeliveryStatus::parse);
            for d in store.list_deliveries(status, limit)? {
                println!(
                    "{}\t{}\t{}\t{}\tattempts={}\tcreated={}\tnext={}\t{}",
                    d.event_id,
                    d.event_name,
                    d.sink,
                    d.status.as_str(),
                    d.attempts,
                    d.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    d.next_attempt_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    d.last_error.unwrap_or_default()
                );
            }
        }
        EventsCommand::Retry { event_id } => {
            let rearmed = store.rearm(&event_id, chrono::Utc::now())?;
            if rearmed == 0 {
                return Err(StartError::Config(format!("event {event_id} has no dead or failed delivery")));
            }
            println!("re-armed {rearmed} deliveries of {event_id}");
        }
    }
    Ok(())
}
