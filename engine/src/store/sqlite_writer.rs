//! The SQLite step writer: one write connection commits what executions record as their
//! steps end — task outcomes and execution ends — in **group commits**.
//!
//! The first caller to find no commit in progress leads: it commits everything queued (its
//! own write and whatever arrives meanwhile) right on its own thread, batch after batch, until
//! the queue is empty; callers that arrive during a commit only queue their write and wait.
//! So a lone chain pays one commit per step with no hand-off to another thread, and steps of
//! concurrent executions share commits. A caller is answered only once its write is durable
//! (the rule the executor relies on: routes are followed after the outcome is stored).
//!
//! The leader never waits for SQLite's write lock on a runtime thread: when another
//! connection holds it, the batch moves to a blocking thread that waits (up to the busy
//! timeout) and leads from there. Checkpoints of the WAL also run on a blocking thread
//! (every [`CHECKPOINT_EVERY`] commits), not inside a step's commit.
//!
//! Each job runs in its own savepoint when it shares a transaction: a job that fails is
//! rolled back alone and answered with its error; the others commit. Statements are prepared
//! once per connection (the statement cache).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, params};

use super::{ExecStatus, Result, StoreError, TaskRun, json_to_text};

/// How many jobs one transaction takes at most (a burst is committed in slices).
const MAX_BATCH: usize = 512;
/// How often (in commits) the WAL is checkpointed, off the steps' path.
const CHECKPOINT_EVERY: u64 = 512;
/// How long the waiting leader waits for the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One write.
pub(super) enum Work {
    /// Task runs inserted or brought up to date (as `record_task_runs`).
    TaskRuns(Vec<TaskRun>),
    /// An execution's end (as `finish_execution`).
    Finish {
        id: String,
        status: ExecStatus,
        output: Option<String>,
        error: Option<String>,
        finished_at: String,
    },
}

struct Job {
    work: Work,
    done: tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// Someone is committing (and will take what is queued).
    leading: bool,
}

struct Inner {
    /// The database file (checkpoints open their own connection to it).
    path: String,
    conn: Mutex<Connection>,
    queue: Mutex<Queue>,
    commits: std::sync::atomic::AtomicU64,
}

/// The handle the store keeps.
#[derive(Clone)]
pub(super) struct Writer(Arc<Inner>);

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Writer {
    /// Opens the write connection to `path` (the database exists and is migrated).
    pub(super) fn start(path: &str) -> Result<Writer> {
        let conn = Connection::open(path).map_err(|e| corrupt("opening the step writer", &e))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 0;",
        )
        .map_err(|e| corrupt("configuring the step writer", &e))?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(Writer(Arc::new(Inner {
            path: path.to_string(),
            conn: Mutex::new(conn),
            queue: Mutex::default(),
            commits: std::sync::atomic::AtomicU64::new(0),
        })))
    }

    /// Writes `work` and waits until it is committed.
    pub(super) async fn write(&self, work: Work) -> Result<()> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let lead = {
            let mut q = lock(&self.0.queue);
            q.jobs.push(Job { work, done });
            !std::mem::replace(&mut q.leading, true)
        };
        if lead && let Err(batch) = self.0.lead(Duration::ZERO, Vec::new()) {
            let inner = self.0.clone();
            // The waiting happens on a blocking thread; it leads until the queue is empty.
            tokio::task::spawn_blocking(move || {
                if let Err(mut jobs) = inner.lead(BUSY_TIMEOUT, batch) {
                    let mut q = lock(&inner.queue);
                    q.leading = false;
                    jobs.append(&mut q.jobs);
                    drop(q);
                    for job in jobs {
                        let _ = job
                            .done
                            .send(Err("the database stayed locked by another writer".into()));
                    }
                }
            });
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Corrupt(message)),
            Err(_) => Err(StoreError::Corrupt(
                "the step writer stopped before committing".into(),
            )),
        }
    }
}

impl Inner {
    /// Commits `first` and then whatever is queued, batch after batch, until the queue is
    /// empty (then stops leading). Waits at most `busy` for the write lock; past it, the
    /// batch in hand comes back, unwritten (still leading).
    fn lead(
        self: &Arc<Self>,
        busy: Duration,
        first: Vec<Job>,
    ) -> std::result::Result<(), Vec<Job>> {
        let mut batch = first;
        loop {
            if batch.is_empty() {
                let mut q = lock(&self.queue);
                if q.jobs.is_empty() {
                    q.leading = false;
                    return Ok(());
                }
                let n = q.jobs.len().min(MAX_BATCH);
                batch = q.jobs.drain(..n).collect();
            }
            let outcomes = {
                let mut conn = lock(&self.conn);
                if conn.busy_timeout(busy).is_err() {
                    return Err(batch);
                }
                match commit(&mut conn, &batch) {
                    Ok(outcomes) => outcomes,
                    Err(Locked) => return Err(batch),
                }
            };
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                // A caller that stopped waiting (cancelled) does not mind.
                let _ = job.done.send(outcome);
            }
            let n = self
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 {
                let path = self.path.clone();
                // On its own connection, so steps keep committing meanwhile. Outside a
                // runtime it waits for the next one.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn_blocking(move || {
                        let done = Connection::open(&path).and_then(|c| {
                            c.busy_timeout(BUSY_TIMEOUT)?;
                            c.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
                        });
                        if let Err(e) = done {
                            tracing::warn!(error = %e, "cannot checkpoint the SQLite WAL");
                        }
                    });
                }
            }
        }
    }
}

fn corrupt(what: &str, e: &rusqlite::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The write lock is held by another connection.
struct Locked;

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// One transaction for `batch`: a lone job is the transaction, several each get a
/// savepoint; every job's outcome. [`Locked`] when the write lock cannot be had (nothing was
/// written).
fn commit(
    conn: &mut Connection,
    batch: &[Job],
) -> std::result::Result<Vec<std::result::Result<(), String>>, Locked> {
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) if is_busy(&e) => return Err(Locked),
        Err(e) => return Ok(batch.iter().map(|_| Err(format!("begin: {e}"))).collect()),
    };
    let outcomes: Vec<std::result::Result<(), String>> = if let [job] = batch {
        vec![write(&tx, &job.work).map_err(|e| format!("storing a step: {e}"))]
    } else {
        batch
            .iter()
            .map(|job| {
                (|| -> rusqlite::Result<()> {
                    let sp = tx.savepoint()?;
                    write(&sp, &job.work)?;
                    sp.commit()
                })()
                .map_err(|e| format!("storing a step: {e}"))
            })
            .collect()
    };
    if batch.len() == 1 && outcomes[0].is_err() {
        // Nothing of it may stay.
        let _ = tx.rollback();
        return Ok(outcomes);
    }
    match tx.commit() {
        Ok(()) => Ok(outcomes),
        Err(e) if is_busy(&e) => Err(Locked),
        Err(e) => {
            let message = format!("commit: {e}");
            Ok(batch.iter().map(|_| Err(message.clone())).collect())
        }
    }
}

fn write(conn: &Connection, work: &Work) -> rusqlite::Result<()> {
    match work {
        Work::TaskRuns(runs) => {
            let mut stmt = conn.prepare_cached(&INSERT_TASK_RUN)?;
            for r in runs {
                stmt.execute(params![
                    r.execution_id,
                    r.task,
                    r.item,
                    r.attempt,
                    r.status.as_str(),
                    r.seq,
                    json_to_text(&r.input),
                    json_to_text(&r.result),
                    json_to_text(&r.error),
                    json_to_text(&r.routes),
                    json_to_text(&r.publish),
                    i64::from(r.reused),
                    r.started_at,
                    r.finished_at,
                    r.duration_ms,
                ])?;
            }
            Ok(())
        }
        Work::Finish {
            id,
            status,
            output,
            error,
            finished_at,
        } => {
            conn.prepare_cached(super::sqlite::FINISH_EXECUTION)?
                .execute(params![status.as_str(), output, error, finished_at, id])?;
            Ok(())
        }
    }
}

/// One task run, stored as the pool's `record_task_runs` stores it.
static INSERT_TASK_RUN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO task_runs ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15){}",
        super::TASK_RUN_COLUMNS,
        super::TASK_RUN_UPSERT
    )
});
