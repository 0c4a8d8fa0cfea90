//! `xclade-auth events list` and `events retry`: the event deliveries, seen and re-armed from the
//! database.

use clap::Subcommand;

use auth_domain::ports::{DeliveryStatus, EventOutbox};

use super::DATABASE_ONLY;
use crate::config::Config;
use crate::{open_store, StartError};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
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

pub fn run(config: &Config, command: EventsCommand) -> Result<(), StartError> {
    let store = open_store(config)?;
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
