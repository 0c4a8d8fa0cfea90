//! The event sinks of this issue: the development log sink and the file sink. Chosen from the
//! configuration (design §6).

mod file;
mod log_sink;

use std::sync::Arc;

use auth_domain::ports::EventSink;

use crate::config::Config;

pub use file::FileSink;
pub use log_sink::LogSink;

/// The sinks the configuration asks for. The log sink is on when `LOG_SINK=true`, or by default
/// on SQLite when no other sink is configured.
pub fn from_config(config: &Config) -> Vec<Arc<dyn EventSink>> {
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    if let Some(path) = &config.events_file {
        log::info!("event sink `file`: one envelope per line in {}", path.display());
        sinks.push(Arc::new(FileSink::new(path.clone())));
    }
    let log_sink = config
        .log_sink
        .unwrap_or(!config.database_url.is_postgres() && sinks.is_empty());
    if log_sink {
        log::warn!("event sink `log` is on: reset links are printed to this log (development only; LOG_SINK=false turns it off)");
        sinks.push(Arc::new(LogSink::new(config.reset_password_url.clone())));
    }
    if sinks.is_empty() {
        log::warn!("no event sink is configured: reset tokens will not reach anyone");
    }
    sinks
}
