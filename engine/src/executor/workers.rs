//! Workers: run executions from the store's queue, at most N at once per process.
//!
//! Executions started by triggers wait in the store (status pending) until a worker of any
//! process sharing the store claims one. A dispatcher takes a free slot first and only then
//! claims, so a process never holds more executions than it can run; it wakes at once when
//! this process queues work, or when the store hears that another process did (PostgreSQL),
//! and otherwise polls: for work queued by other processes the store cannot hear, and for
//! executions whose owner stopped renewing its lease.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Engine, EngineError};
use crate::store::{ExecutionRecord, StoreErrorKind};

/// How often an idle dispatcher looks for work queued by other processes.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// The longest wait between attempts while the store cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// POLL, doubled per consecutive failure, at most MAX_BACKOFF.
fn backoff(failures: u32) -> Duration {
    POLL.saturating_mul(1 << failures.saturating_sub(1).min(5))
        .min(MAX_BACKOFF)
}

/// Runs an execution this process holds; when the store becomes unreachable mid-run, waits
/// (backing off) and resumes it from its last committed step rather than leaving it to a
/// lease that this process would keep renewing. Every worker run goes through here, queued
/// or started by hand.
async fn run_through_outages(
    engine: &Engine,
    id: &str,
    stop: &CancellationToken,
) -> Result<ExecutionRecord, EngineError> {
    let mut failures = 0;
    loop {
        match engine.run(id).await {
            Err(EngineError::Store(e)) if e.kind() == StoreErrorKind::Unavailable => {
                failures += 1;
                let wait = backoff(failures);
                tracing::warn!(execution_id = %id, error = %e, retry_in_ms = wait.as_millis() as u64, "database unavailable; the execution resumes when it is back");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    // Shutting down: the lease lapses and another process resumes it.
                    () = stop.cancelled() => return Err(EngineError::Store(e)),
                }
            }
            Err(e) => {
                tracing::error!(execution_id = %id, error = %e, "execution failed to run");
                return Err(e);
            }
            done => return done,
        }
    }
}

/// A process's executor workers.
#[derive(Clone)]
pub struct Workers {
    engine: Arc<Engine>,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Workers {
    /// `n` workers (at least one) taking executions from `engine`'s store queue. Must be
    /// called inside a tokio runtime: the dispatcher starts at once.
    pub fn new(engine: Arc<Engine>, n: usize) -> Self {
        let workers = Workers {
            engine,
            slots: Arc::new(Semaphore::new(n.max(1))),
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
        };
        tokio::spawn(workers.clone().dispatch());
        workers
    }

    async fn dispatch(self) {
        // Consecutive failures to reach the store: the wait doubles up to MAX_BACKOFF.
        let mut failures: u32 = 0;
        loop {
            let permit = tokio::select! {
                p = self.slots.clone().acquire_owned() => p.expect("never closed"),
                () = self.stop.cancelled() => return,
            };
            match self.engine.claim_next().await {
                Ok(Some(id)) => {
                    failures = 0;
                    let (engine, stop) = (self.engine.clone(), self.stop.clone());
                    self.tracker.spawn(async move {
                        let _slot = permit;
                        let _ = run_through_outages(&engine, &id, &stop).await;
                    });
                }
                Ok(None) => {
                    drop(permit);
                    // The store wakes us when another process queues work (PostgreSQL), or
                    // sleeps POLL: either way expired leases are looked for every POLL.
                    tokio::select! {
                        () = self.engine.queued.notified() => {}
                        () = self.engine.store().wait_for_work(POLL) => {}
                        () = self.stop.cancelled() => return,
                    }
                }
                Err(e) => {
                    drop(permit);
                    failures = failures.saturating_add(1);
                    let wait = backoff(failures);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot take work from the queue");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Runs an execution this process already holds (a manual run, a rerun) on a worker
    /// slot; the handle yields how it ended.
    pub fn spawn(&self, id: String) -> JoinHandle<Result<ExecutionRecord, EngineError>> {
        let (engine, slots, stop) = (self.engine.clone(), self.slots.clone(), self.stop.clone());
        self.tracker.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("never closed");
            run_through_outages(&engine, &id, &stop).await
        })
    }

    /// Stops taking work and waits up to `grace` for running executions; true if all ended.
    /// Those still running stay resumable: their lease lapses and another worker (or this
    /// process's next start) takes them over.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}
