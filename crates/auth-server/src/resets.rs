//! The reset worker: fulfils the password reset requests that reset-password recorded (the
//! lookup, the token and the event, in one transaction that deletes the request). It runs in the
//! dispatcher's loop, before each delivery pass, so a request recorded on this instance is
//! fulfilled at once and its event delivered in the same turn; requests left by a crash (or by
//! another instance) are taken at the next pass, once their lease, if any, has ended.

use std::sync::Arc;

use chrono::Duration;

use auth_domain::tenant::TenantDirectory;
use auth_domain::AuthError;
use auth_http::AppService;

/// Requests fulfilled per pass at most.
const BATCH: usize = 100;

pub struct ResetWorker {
    pub service: Arc<AppService>,
    pub tenants: Arc<dyn TenantDirectory>,
    /// How long a worker holds the requests it took (`EVENT_LEASE`).
    pub lease: Duration,
    /// `RESET_REQUEST_DELAY`: requests younger than this wait (tests only).
    pub delay: Duration,
}

impl std::fmt::Debug for ResetWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetWorker").field("lease", &self.lease).field("delay", &self.delay).finish_non_exhaustive()
    }
}

impl ResetWorker {
    /// One pass: fulfils what is waiting, until a pass finds less than a batch. Returns how
    /// many requests it ended.
    pub fn run_pass(&self) -> Result<usize, AuthError> {
        let mut ended = 0;
        loop {
            let n = self.service.fulfil_reset_requests(self.tenants.as_ref(), self.delay, self.lease, BATCH)?;
            ended += n;
            if n < BATCH {
                return Ok(ended);
            }
        }
    }
}
