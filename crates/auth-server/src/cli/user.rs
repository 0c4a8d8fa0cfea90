//! `xclade-auth user create`: an admin user (the `user` actor), its password from standard input.

use clap::Subcommand;

use auth_domain::context::RequestContext;
use auth_domain::newtypes::TenantId;
use auth_domain::tenant::TenantDirectory;

use super::{LOG_TARGET, SAME_AS_SERVE};
use crate::config::Config;
use crate::{compose, StartError};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
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
        /// The tenant the user belongs to.
        #[arg(long, default_value = auth_domain::newtypes::DEFAULT_TENANT)]
        tenant: String,
    },
}

pub fn run(config: &Config, command: UserCommand) -> Result<(), StartError> {
    match command {
        UserCommand::Create { email, password_stdin: _, tenant } => create_user(config, &email, &tenant),
    }
}

fn create_user(config: &Config, email: &str, tenant: &str) -> Result<(), StartError> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| StartError::Io("reading the password from standard input".into(), e))?;
    let password = password.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&password);
    let composed = compose(config)?;
    let tenant = composed
        .tenants
        .tenant(&TenantId::new(tenant))
        .ok_or_else(|| StartError::Config(format!("there is no tenant {tenant:?} (xclade-auth tenant list)")))?;
    let ctx = RequestContext::new(tenant);
    let user_id = composed.service.create_user(&ctx, email, password.to_string())?;
    log::info!(target: LOG_TARGET, "created user {user_id} for {email}");
    println!("{user_id}");
    Ok(())
}
