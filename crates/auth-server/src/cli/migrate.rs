//! `xclade-auth migrate`: applies the pending migrations and exits.

use crate::config::Config;
use crate::{migrate, open_store, StartError};

pub fn run(config: &Config) -> Result<(), StartError> {
    open_store(config).and_then(|store| migrate(&store))
}
