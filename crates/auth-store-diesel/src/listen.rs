//! The change listener (PostgreSQL): one connection of its own that `LISTEN`s to the
//! notifications the database's triggers send on commit (migration 000011), so that what another
//! instance or the CLI changed reaches this instance's memory at once:
//!
//! - `xclade_identity` (`tenant:identity`): an identity changed; the identity cache forgets it.
//! - `xclade_directory` (the new revision): a tenant, its settings or its keys changed; the
//!   server re-reads the directory now rather than at its next poll.
//!
//! The connection is read every `POLL` (libpq's non-blocking `PQconsumeInput`: a syscall, no round
//! trip) and pinged every `PING`. When it fails, the identity cache is suspended (emptied, every
//! lookup reads the database) and the connection is opened again, every `RETRY`; once it listens
//! again, the cache is emptied once more and resumes, and the directory is re-read, since what
//! changed while no one listened was not heard.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;

use crate::cache::IdentityCache;
use crate::connection::without_tls_on_loopback;

/// The channel of identity changes; its payload is `tenant:identity`.
pub const IDENTITY_CHANNEL: &str = "xclade_identity";
/// The channel of directory changes; its payload is the directory's new revision.
pub const DIRECTORY_CHANNEL: &str = "xclade_directory";
/// The listener's `application_name` (what `pg_stat_activity` shows).
pub const APPLICATION_NAME: &str = "xclade-auth-listener";

/// How often the connection is read for notifications: the delay a change made elsewhere adds
/// before this instance forgets it.
const POLL: Duration = Duration::from_millis(5);
/// How often the connection is pinged, so a connection that died silently is noticed.
const PING: Duration = Duration::from_secs(1);
/// How long to wait before opening the connection again.
const RETRY: Duration = Duration::from_millis(500);

/// What the listener does with what it hears.
pub(crate) struct ListenerTargets {
    /// The identity cache to keep current; `None` when there is none (`IDENTITY_CACHE_SIZE=0`).
    pub(crate) identities: Option<Arc<IdentityCache>>,
    /// Called when the directory changed, and after a reconnection. It must return at once (hand
    /// the work to another thread): identities wait to be forgotten while it runs.
    pub(crate) on_directory: Box<dyn Fn() + Send>,
}

/// Starts the listener thread on `url`. It ends once `alive` is gone (the store was dropped).
pub(crate) fn spawn(url: String, targets: ListenerTargets, alive: Weak<()>) -> std::io::Result<()> {
    std::thread::Builder::new().name("pg-listener".into()).spawn(move || {
        let mut failing = false;
        while alive.strong_count() > 0 {
            match listen(&url) {
                Ok(mut conn) => {
                    if let Some(cache) = &targets.identities {
                        cache.resume();
                    }
                    (targets.on_directory)();
                    if failing {
                        log::info!("change listener: listening again");
                    } else {
                        log::info!("change listener: listening ({IDENTITY_CHANNEL}, {DIRECTORY_CHANNEL})");
                    }
                    let e = serve(&mut conn, &targets, &alive);
                    if let Some(cache) = &targets.identities {
                        cache.suspend();
                    }
                    match e {
                        None => return,
                        Some(e) => {
                            log::warn!(
                                "change listener: connection lost ({e}); the identity cache is off until it is back"
                            );
                            failing = true;
                        }
                    }
                }
                Err(e) => {
                    if !failing {
                        log::warn!("change listener: cannot listen ({e}); the identity cache is off until it can");
                        failing = true;
                    }
                }
            }
            std::thread::sleep(RETRY);
        }
    })?;
    Ok(())
}

fn listen(url: &str) -> Result<PgConnection, String> {
    let mut conn =
        PgConnection::establish(&without_tls_on_loopback(url, |k| std::env::var(k).ok())).map_err(|e| e.to_string())?;
    conn.batch_execute(&format!(
        "SET application_name = '{APPLICATION_NAME}'; LISTEN {IDENTITY_CHANNEL}; LISTEN {DIRECTORY_CHANNEL};"
    ))
    .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Hands each notification to its target until the connection fails (`Some(error)`) or the
/// store is gone (`None`).
fn serve(conn: &mut PgConnection, targets: &ListenerTargets, alive: &Weak<()>) -> Option<String> {
    let mut pinged = Instant::now();
    loop {
        if alive.strong_count() == 0 {
            return None;
        }
        let mut directory_changed = false;
        for notification in conn.notifications_iter() {
            match notification {
                Ok(n) if n.channel == IDENTITY_CHANNEL => {
                    if let (Some(cache), Some((tenant, identity))) = (&targets.identities, n.payload.split_once(':')) {
                        cache.forget(tenant, identity);
                    }
                }
                Ok(_) => directory_changed = true,
                Err(e) => return Some(e.to_string()),
            }
        }
        if directory_changed {
            (targets.on_directory)();
        }
        if pinged.elapsed() >= PING {
            if let Err(e) = conn.batch_execute("SELECT 1") {
                return Some(e.to_string());
            }
            pinged = Instant::now();
            // Notifications that arrived during the ping are read at the next turn.
            continue;
        }
        std::thread::sleep(POLL);
    }
}
