//! The SQLite writer: one write connection commits the writes of the execution path — trigger
//! events with the executions they queue, claims from the queue, new executions, task
//! outcomes and execution ends — in **group commits**.
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

use super::{
    Ending, ExecStatus, NewExecution, Result, StoreError, TaskRun, TriggerEvent, json_to_text,
};

/// How many jobs one transaction takes at most (a burst is committed in slices).
const MAX_BATCH: usize = 512;
/// How often (in commits) the WAL is checkpointed, off the steps' path.
const CHECKPOINT_EVERY: u64 = 512;
/// How many frames the WAL may hold (≈ 64 MiB of 4 KiB pages) before a checkpoint has it
/// started over. Starting over holds commits for a moment (tens of ms at worst, under load),
/// so not too often: at 16 MiB, 5,000 webhooks at once doubled their p99.
const WAL_RESTART_FRAMES: i64 = 16_384;
/// How long starting the WAL over waits for readers of older snapshots (commits wait
/// meanwhile).
const CHECKPOINT_WAIT: Duration = Duration::from_millis(50);
/// How long the waiting leader waits for the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One write.
pub(super) enum Work {
    /// A trigger event and the executions it queues (as `record_event`): nothing when its
    /// dedupe key was seen before.
    Event {
        event: Box<TriggerEvent>,
        executions: Vec<NewExecution>,
    },
    /// An execution with its first task runs (as `create_execution`).
    Execution {
        execution: Box<NewExecution>,
        runs: Vec<TaskRun>,
    },
    /// The next execution from the queue (as `claim_next`).
    ClaimNext {
        owner: String,
        lease_until_ms: i64,
        now_ms: i64,
        now: String,
    },
    /// One execution (as `claim_execution`).
    Claim {
        id: String,
        owner: String,
        lease_until_ms: i64,
        now_ms: i64,
        stale_owner: Option<String>,
        now: String,
    },
    /// Task runs inserted or brought up to date (as `record_task_runs`).
    TaskRuns(Vec<TaskRun>),
    /// An execution's end (as `finish_execution`).
    Finish(Ending),
}

impl Work {
    /// What is being stored, for errors.
    fn what(&self) -> &'static str {
        match self {
            Work::Event { .. } => "storing a trigger event",
            Work::Execution { .. } => "storing an execution",
            Work::ClaimNext { .. } | Work::Claim { .. } => "claiming an execution",
            Work::TaskRuns(_) => "storing a step",
            Work::Finish(_) => "storing an execution's end",
        }
    }
}

/// What a write answers.
#[derive(Debug)]
pub(super) enum Written {
    Done,
    /// The event's id, `None` for a duplicate.
    Event(Option<i64>),
    /// The execution claimed from the queue.
    Claimed(Option<String>),
    /// Whether the execution was claimed.
    Taken(bool),
}

/// Why a write failed, as the caller's store error will say.
#[derive(Debug, Clone)]
struct Failure {
    kind: FailureKind,
    message: String,
}

#[derive(Debug, Clone, Copy)]
enum FailureKind {
    /// A constraint refused it (a duplicate, a missing parent).
    Conflict,
    /// The database could not be written at all (I/O, full disk, locked for too long).
    Unavailable,
    Other,
}

impl Failure {
    fn new(what: &str, e: &rusqlite::Error) -> Failure {
        let kind = match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => FailureKind::Conflict,
            Some(
                ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked,
            ) => FailureKind::Unavailable,
            _ => FailureKind::Other,
        };
        Failure {
            kind,
            message: format!("{what}: {e}"),
        }
    }

    fn unavailable(message: &str) -> Failure {
        Failure {
            kind: FailureKind::Unavailable,
            message: message.to_string(),
        }
    }

    fn into_error(self) -> StoreError {
        match self.kind {
            FailureKind::Conflict => StoreError::Conflict(self.message),
            FailureKind::Unavailable => {
                StoreError::Database(sqlx::Error::Io(std::io::Error::other(self.message)))
            }
            FailureKind::Other => StoreError::Corrupt(self.message),
        }
    }
}

type Outcome = std::result::Result<Written, Failure>;

struct Job {
    work: Work,
    done: tokio::sync::oneshot::Sender<Outcome>,
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
    /// The connection checkpoints run on, kept between them.
    checkpointer: Mutex<Option<Connection>>,
    /// A checkpoint found the WAL past its size: the writer starts it over between commits.
    restart_wanted: std::sync::atomic::AtomicBool,
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
             PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(|e| corrupt("configuring the step writer", &e))?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(Writer(Arc::new(Inner {
            path: path.to_string(),
            conn: Mutex::new(conn),
            queue: Mutex::default(),
            commits: std::sync::atomic::AtomicU64::new(0),
            checkpointer: Mutex::new(None),
            restart_wanted: std::sync::atomic::AtomicBool::new(false),
        })))
    }

    /// Writes `work` and waits until it is committed.
    pub(super) async fn write(&self, work: Work) -> Result<Written> {
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
                        let _ = job.done.send(Err(Failure::unavailable(
                            "the database stayed locked by another writer",
                        )));
                    }
                }
            });
        }
        match answer.await {
            Ok(Ok(written)) => Ok(written),
            Ok(Err(failure)) => Err(failure.into_error()),
            Err(_) => Err(StoreError::Corrupt(
                "the writer stopped before committing".into(),
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
                if self
                    .restart_wanted
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    if busy.is_zero() {
                        // Never on a runtime thread: leading goes on from a blocking one.
                        return Err(batch);
                    }
                    self.restart();
                }
                let mut q = lock(&self.queue);
                if q.jobs.is_empty() {
                    q.leading = false;
                    return Ok(());
                }
                let n = q.jobs.len().min(MAX_BATCH);
                batch = q.jobs.drain(..n).collect();
            }
            let outcomes = {
                let conn = lock(&self.conn);
                if conn.busy_timeout(busy).is_err() {
                    return Err(batch);
                }
                match commit(&conn, &batch) {
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
                // On its own connection, so steps keep committing meanwhile. Outside a
                // runtime it waits for the next one.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let inner = self.clone();
                    rt.spawn_blocking(move || inner.checkpoint());
                }
            }
        }
    }

    /// Copies the WAL into the database on the checkpoint connection (opened once), without
    /// stopping a commit; skipped while the previous checkpoint is still running.
    ///
    /// Under steady load a passive checkpoint cannot let the WAL start over (frames keep
    /// arriving while it copies), so the file would grow until the load pauses: past
    /// [`WAL_RESTART_FRAMES`] it asks the writer to start the WAL over between two commits.
    fn checkpoint(&self) {
        let Ok(mut held) = self.checkpointer.try_lock() else {
            return;
        };
        let conn = match held.take() {
            Some(conn) => conn,
            None => match Connection::open(&self.path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the SQLite checkpoint connection");
                    return;
                }
            },
        };
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) => {
                if frames > WAL_RESTART_FRAMES {
                    self.restart_wanted
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                *held = Some(conn);
            }
            // Opened again next time.
            Err(e) => tracing::warn!(error = %e, "cannot checkpoint the SQLite WAL"),
        }
    }

    /// Starts the WAL over on the write connection, between two commits (so no commit waits
    /// for the write lock meanwhile): it copies what the last passive checkpoint left, and the
    /// next commits overwrite the file from its start (cut back to 64 MiB, the
    /// `journal_size_limit`) instead of growing it. It waits at most [`CHECKPOINT_WAIT`] for
    /// readers of older snapshots; past that the WAL stays as it is until the next checkpoint
    /// asks again.
    fn restart(&self) {
        self.restart_wanted
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let conn = lock(&self.conn);
        let done = conn
            .busy_timeout(CHECKPOINT_WAIT)
            .and_then(|()| conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())));
        if let Err(e) = done {
            tracing::warn!(error = %e, "cannot start the SQLite WAL over");
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
fn commit(conn: &Connection, batch: &[Job]) -> std::result::Result<Vec<Outcome>, Locked> {
    // Prepared once: parsing `BEGIN`/`COMMIT` again on every step showed in profiles.
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        if is_busy(&e) {
            return Err(Locked);
        }
        let failure = Failure::new("begin", &e);
        return Ok(batch.iter().map(|_| Err(failure.clone())).collect());
    }
    let outcomes: Vec<Outcome> = if let [job] = batch {
        vec![write(conn, &job.work).map_err(|e| Failure::new(job.work.what(), &e))]
    } else {
        batch
            .iter()
            .map(|job| in_savepoint(conn, &job.work).map_err(|e| Failure::new(job.work.what(), &e)))
            .collect()
    };
    if batch.len() == 1 && outcomes[0].is_err() {
        // Nothing of it may stay.
        let _ = run(conn, "ROLLBACK");
        return Ok(outcomes);
    }
    match run(conn, "COMMIT") {
        Ok(()) => Ok(outcomes),
        Err(e) => {
            // A transaction that could not commit is not left open on the connection.
            let _ = run(conn, "ROLLBACK");
            if is_busy(&e) {
                return Err(Locked);
            }
            let failure = Failure::new("commit", &e);
            Ok(batch.iter().map(|_| Err(failure.clone())).collect())
        }
    }
}

/// Writes `work` in its own savepoint: when it fails, only its writes go and the transaction
/// stays for the others.
fn in_savepoint(conn: &Connection, work: &Work) -> rusqlite::Result<Written> {
    run(conn, "SAVEPOINT job")?;
    match write(conn, work) {
        Ok(written) => run(conn, "RELEASE job").map(|()| written),
        Err(e) => {
            run(conn, "ROLLBACK TO job")?;
            run(conn, "RELEASE job")?;
            Err(e)
        }
    }
}

/// Runs a statement without parameters or rows, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn write(conn: &Connection, work: &Work) -> rusqlite::Result<Written> {
    match work {
        Work::Event { event, executions } => {
            let mut insert = conn.prepare_cached(super::shared::INSERT_EVENT)?;
            let mut rows = insert.query(params![
                event.workflow,
                event.trigger,
                event.kind,
                event.org,
                event.outcome,
                event.reason,
                event.status,
                executions
                    .first()
                    .map(|e| &e.id)
                    .or(event.execution_id.as_ref()),
                event.dedupe_key,
                event.created_at,
            ])?;
            // No row back: its dedupe key was seen before, and nothing was stored.
            let Some(id) = rows.next()?.map(|row| row.get::<_, i64>(0)).transpose()? else {
                return Ok(Written::Event(None));
            };
            drop(rows);
            for e in executions {
                insert_execution(conn, e, Some(id))?;
            }
            Ok(Written::Event(Some(id)))
        }
        Work::Execution { execution, runs } => {
            insert_execution(conn, execution, None)?;
            insert_task_runs(conn, runs)?;
            Ok(Written::Done)
        }
        Work::ClaimNext {
            owner,
            lease_until_ms,
            now_ms,
            now,
        } => {
            let id = conn
                .prepare_cached(&super::sqlite::CLAIM_NEXT)?
                .query_row(params![owner, lease_until_ms, now, now_ms], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            Ok(Written::Claimed(id))
        }
        Work::Claim {
            id,
            owner,
            lease_until_ms,
            now_ms,
            stale_owner,
            now,
        } => {
            let n = conn
                .prepare_cached(&super::sqlite::CLAIM)?
                .execute(params![
                    owner,
                    lease_until_ms,
                    now,
                    id,
                    now_ms,
                    stale_owner.as_deref().unwrap_or(""),
                ])?;
            Ok(Written::Taken(n == 1))
        }
        Work::TaskRuns(runs) => {
            insert_task_runs(conn, runs)?;
            Ok(Written::Done)
        }
        Work::Finish(Ending {
            id,
            status,
            output,
            error,
            finished_at,
        }) => {
            conn.prepare_cached(super::sqlite::FINISH_EXECUTION)?
                .execute(params![status.as_str(), output, error, finished_at, id])?;
            Ok(Written::Done)
        }
    }
}

fn insert_task_runs(conn: &Connection, runs: &[TaskRun]) -> rusqlite::Result<()> {
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

/// A new execution row (queued, held, running or failed before it started).
fn insert_execution(
    conn: &Connection,
    e: &NewExecution,
    event_id: Option<i64>,
) -> rusqlite::Result<()> {
    let status = e.initial_status();
    let (owner, lease) = match &e.error {
        Some(_) => (None, None),
        None => (e.owner.as_ref(), e.lease_until_ms),
    };
    conn.prepare_cached(&super::shared::INSERT_EXECUTION)?
        .execute(params![
            e.id,
            e.workflow.id,
            e.workflow.name,
            e.workflow.version,
            status.as_str(),
            e.org,
            e.input.to_string(),
            e.vars.to_string(),
            e.trigger.to_string(),
            e.error,
            e.parent_id,
            e.parent_task,
            e.rerun_of,
            owner,
            lease,
            e.created_at,
            (status != ExecStatus::Pending).then_some(&e.created_at),
            e.error.as_ref().map(|_| &e.created_at),
            e.concurrency_key,
            e.concurrency_limit,
            e.sealed,
            event_id,
        ])?;
    Ok(())
}

/// One task run, stored as the pool's `record_task_runs` stores it.
static INSERT_TASK_RUN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO task_runs ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15){}",
        super::TASK_RUN_COLUMNS,
        super::TASK_RUN_UPSERT
    )
});
