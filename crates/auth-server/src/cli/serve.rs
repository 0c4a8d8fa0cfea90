//! `xclade-auth serve` (the default): applies pending migrations unless `MIGRATE_ON_START=false`,
//! then serves the API and the admin listener, with the event dispatcher and the janitor, until
//! stopped.

use crate::config::Config;
use crate::{Application, StartError};

pub fn run(config: Config) -> Result<(), StartError> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)?;
        app.run_until_stopped().await.map_err(|e| StartError::Io("serving".into(), e))
    })
}
