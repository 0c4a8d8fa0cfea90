//! The dispatcher loop: a delivery pass on the blocking pool whenever an event is committed on
//! this instance (woken through `Wake`), and at least every poll interval (events committed by
//! other instances, retries that came due). Undelivered events stay in the database, so a
//! restart picks them up; claims with a lease keep instances from delivering one twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use actix_web::web;
use tokio::sync::Notify;

use auth_domain::delivery::{Dispatcher, PassReport};
use auth_domain::ports::{EventWaker, SystemClock};
use auth_store_diesel::DieselStore;

use crate::resets::ResetWorker;

pub type ServerDispatcher = Dispatcher<DieselStore, SystemClock>;

/// Wakes the loop; a wake while a pass runs is kept for the next one. `stop` ends the loop
/// after the pass under way.
#[derive(Debug, Default)]
pub struct Wake {
    notify: Notify,
    stopping: AtomicBool,
}

impl EventWaker for Wake {
    fn wake(&self) {
        self.notify.notify_one();
    }
}

impl Wake {
    /// Asks the loop to end once the pass under way (if any) is finished.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Spawns the loop on the current actix system; it ends after `wake.stop()` (or with the
/// system). `on_pass` sees every pass's report (the metrics count it).
///
/// Each pass starts with the reset worker's (`resets`): the reset requests waiting are fulfilled,
/// then the events (theirs included) delivered.
pub fn spawn(
    dispatcher: Arc<ServerDispatcher>,
    resets: Arc<ResetWorker>,
    wake: Arc<Wake>,
    poll: Duration,
    on_pass: impl Fn(&PassReport) + 'static,
) -> JoinHandle<()> {
    actix_web::rt::spawn(async move {
        while !wake.stopping() {
            let (pass, waker, resets) = (dispatcher.clone(), wake.clone(), resets.clone());
            let run = move || {
                match resets.run_pass() {
                    Ok(0) => {}
                    Ok(n) => log::debug!("reset worker: {n} request(s) fulfilled"),
                    Err(e) => log::warn!("reset worker pass failed: {}", auth_http::cause_chain(&e)),
                }
                pass.run_pass_while(|| !waker.stopping())
            };
            match web::block(run).await {
                Ok(Ok(report)) if !report.is_empty() => {
                    log::debug!("dispatcher pass: {report:?}");
                    on_pass(&report);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("dispatcher pass failed: {}", auth_http::cause_chain(&e)),
                Err(e) => log::error!("dispatcher pass panicked: {e}"),
            }
            if wake.stopping() {
                break;
            }
            let _ = tokio::time::timeout(poll, wake.notify.notified()).await;
        }
    })
}
