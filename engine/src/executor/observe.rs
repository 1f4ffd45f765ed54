//! What the executor reports as it works, for metrics and dashboards: a seam the server
//! plugs a metrics registry into. Calls are made on the executor's hot path, so an observer
//! must be cheap and never block.

use std::time::Duration;

use crate::store::{ExecStatus, TaskStatus};

/// Receives executor events. Every method has a no-op default.
pub trait Observer: Send + Sync + 'static {
    /// An execution began running in this process (new or resumed).
    fn execution_started(&self, _workflow: &str) {}
    /// An execution ended.
    fn execution_finished(&self, _workflow: &str, _status: ExecStatus, _duration: Duration) {}
    /// A task began (its first attempt, or its items).
    fn task_started(&self, _workflow: &str, _task: &str) {}
    /// A task reached its outcome (after retries; a with.items task once for all items).
    fn task_finished(
        &self,
        _workflow: &str,
        _task: &str,
        _status: TaskStatus,
        _duration: Duration,
    ) {
    }
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}
