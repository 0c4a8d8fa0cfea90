//! The threads that hash passwords: `HASH_CONCURRENCY` threads of their own, apart from actix's
//! blocking pool (which serves the short database work of every request), each at a lower
//! scheduling priority (nice `HASH_NICE`, on Linux).
//!
//! bcrypt keeps a core busy for a quarter of a second or more per login. On the blocking pool,
//! at the same priority as everything else, a few logins hashing made every refresh wait for a
//! core behind them. At nice 10 the kernel gives the waiting refresh the core at once; while
//! nothing else wants the CPU, the hashing threads get all of it, so logins lose nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The nice value of the hashing threads (0 is normal, 19 the lowest priority). 10 gives them
/// about a tenth of the weight of a normal thread when both want a core.
pub(crate) const HASH_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of hashing threads. Jobs run in the order they were given.
pub(crate) struct HashPool {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool").finish_non_exhaustive()
    }
}

impl HashPool {
    /// Starts `threads` threads (at least 1); they end when the pool is dropped.
    pub(crate) fn new(threads: usize) -> HashPool {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("hash-{i}")).spawn(move || {
                lower_priority();
                loop {
                    // The lock is held only while waiting for the next job.
                    let next = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                    match next {
                        Ok(job) => job(),
                        Err(mpsc::RecvError) => break,
                    }
                }
            });
            if let Err(e) = spawned {
                log::error!("could not start hashing thread {i}: {e}");
            }
        }
        HashPool { jobs }
    }

    /// Hands `job` to a hashing thread at once; the future answers with its result, or `Err`
    /// when the job panicked or could not run. A job whose future is dropped before a thread
    /// takes it (the request has gone) is skipped.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, &'static str>> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(catch_unwind(AssertUnwindSafe(job)));
        });
        let sent = self.jobs.send(job).is_ok();
        async move {
            if !sent {
                return Err("no hashing thread");
            }
            match answered.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(_panic)) => Err("the hashing job panicked"),
                Err(_) => Err("the hashing job was dropped"),
            }
        }
    }
}

/// Lowers the calling thread's priority to `HASH_NICE` (on Linux the nice value is per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, HASH_NICE) {
        log::warn!("could not lower the priority of a hashing thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn jobs_run_on_the_pool_threads_at_the_lower_priority() {
        let pool = HashPool::new(2);
        let name = pool.run(|| std::thread::current().name().map(str::to_string)).await.unwrap();
        assert!(name.is_some_and(|n| n.starts_with("hash-")));
        #[cfg(target_os = "linux")]
        {
            let nice = pool.run(|| rustix::process::getpriority_process(None)).await.unwrap().unwrap();
            // At least HASH_NICE: a process started at a higher nice value cannot go back.
            assert!(nice >= HASH_NICE, "nice {nice}");
        }
    }

    #[actix_web::test]
    async fn a_panicking_job_is_an_error_and_the_thread_goes_on() {
        let pool = HashPool::new(1);
        assert!(pool.run(|| panic!("boom")).await.is_err());
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[actix_web::test]
    async fn a_job_whose_request_has_gone_is_skipped() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let pool = HashPool::new(1);
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        // Occupy the only thread, queue a job, then drop its future before the thread is free.
        let busy = pool.run(move || blocked.recv().is_ok());
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        drop(pool.run(move || flag.store(true, Ordering::SeqCst)));
        release.send(()).unwrap();
        assert_eq!(busy.await, Ok(true));
        assert_eq!(pool.run(|| 1).await, Ok(1), "the thread took the dropped job before this one");
        assert!(!ran.load(Ordering::SeqCst), "the dropped job did not run");
    }
}
