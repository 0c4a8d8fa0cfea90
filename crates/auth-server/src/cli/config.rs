//! `xclade-auth config`: prints the effective configuration, secrets redacted.

use std::collections::HashSet;

use crate::config::{render_effective, Config};
use crate::StartError;

/// `given`: the variables the process was given, before `.env` added its own.
pub fn run(config: &Config, given: &HashSet<String>) -> Result<(), StartError> {
    let origin = |key: &str| if given.contains(key) { "environment" } else { ".env" };
    print!("{}", render_effective(config, |key| std::env::var(key).ok(), origin));
    Ok(())
}
