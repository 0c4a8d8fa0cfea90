//! The single-instance dispatcher loop: runs a delivery pass on the blocking pool at a fixed
//! interval. Undelivered events stay in the database, so a restart picks them up.

use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use actix_web::web;

use auth_domain::delivery::Dispatcher;
use auth_domain::ports::SystemClock;
use auth_store_diesel::DieselStore;

pub type ServerDispatcher = Dispatcher<DieselStore, SystemClock>;

/// Spawns the loop on the current actix system; it ends with the system.
pub fn spawn(dispatcher: Arc<ServerDispatcher>, interval: Duration) -> JoinHandle<()> {
    actix_web::rt::spawn(async move {
        loop {
            let pass = dispatcher.clone();
            match web::block(move || pass.run_pass()).await {
                Ok(Ok(report)) if report.delivered + report.failed + report.expired > 0 => {
                    log::debug!("dispatcher pass: {report:?}");
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("dispatcher pass failed: {}", auth_http::cause_chain(&e)),
                Err(e) => log::error!("dispatcher pass panicked: {e}"),
            }
            actix_web::rt::time::sleep(interval).await;
        }
    })
}
