//! The dispatcher loop: a delivery pass on the blocking pool whenever an event is committed on
//! this instance (woken through `Wake`), and at least every poll interval (events committed by
//! other instances, retries that came due). Undelivered events stay in the database, so a
//! restart picks them up; claims with a lease keep instances from delivering one twice.

use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use actix_web::web;
use tokio::sync::Notify;

use auth_domain::delivery::Dispatcher;
use auth_domain::ports::{EventWaker, SystemClock};
use auth_store_diesel::DieselStore;

pub type ServerDispatcher = Dispatcher<DieselStore, SystemClock>;

/// Wakes the loop; a wake while a pass runs is kept for the next one.
#[derive(Debug, Default)]
pub struct Wake(Notify);

impl EventWaker for Wake {
    fn wake(&self) {
        self.0.notify_one();
    }
}

/// Spawns the loop on the current actix system; it ends with the system.
pub fn spawn(dispatcher: Arc<ServerDispatcher>, wake: Arc<Wake>, poll: Duration) -> JoinHandle<()> {
    actix_web::rt::spawn(async move {
        loop {
            let pass = dispatcher.clone();
            match web::block(move || pass.run_pass()).await {
                Ok(Ok(report)) if !report.is_empty() => log::debug!("dispatcher pass: {report:?}"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("dispatcher pass failed: {}", auth_http::cause_chain(&e)),
                Err(e) => log::error!("dispatcher pass panicked: {e}"),
            }
            let _ = tokio::time::timeout(poll, wake.0.notified()).await;
        }
    })
}
