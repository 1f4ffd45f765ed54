//! The SQLite step writer: one thread owns one write connection and commits what executions
//! record as their steps end — task outcomes and execution ends — in **group commits**: what
//! arrives while a commit is in progress goes into the next transaction together, so steps
//! of concurrent executions share a commit, and a lone chain pays one commit per step without
//! the async driver's hand-offs. A caller is answered only once its write is durable (the
//! rule the executor relies on: routes are followed after the outcome is stored).
//!
//! Each job runs in its own savepoint: a job that fails is rolled back alone and answered
//! with its error; the others in the batch commit. Statements are prepared once per
//! connection (the statement cache).

use std::sync::mpsc;

use rusqlite::{Connection, params};

use super::{ExecStatus, Result, StoreError, TaskRun, json_to_text};

/// How many jobs one transaction takes at most (a burst is committed in slices).
const MAX_BATCH: usize = 512;

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

/// The handle the store keeps: a queue to the writer thread.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens the write connection to `path` (the database exists and is migrated) and starts
    /// its thread.
    pub(super) fn start(path: &str) -> Result<Writer> {
        let conn = Connection::open(path).map_err(|e| corrupt("opening the step writer", &e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| corrupt("configuring the step writer", &e))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )
        .map_err(|e| corrupt("configuring the step writer", &e))?;
        conn.set_prepared_statement_cache_capacity(16);
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("weft-sqlite-writer".into())
            .spawn(move || run(conn, &queue))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the step writer: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Writes `work` and waits until it is committed.
    pub(super) async fn write(&self, work: Work) -> Result<()> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job { work, done })
            .map_err(|_| StoreError::Corrupt("the step writer has stopped".into()))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Corrupt(message)),
            Err(_) => Err(StoreError::Corrupt(
                "the step writer stopped before committing".into(),
            )),
        }
    }
}

fn corrupt(what: &str, e: &rusqlite::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The writer thread: wait for a job, take every job already queued, commit them together,
/// answer each. Ends when the store (every sender) is gone.
fn run(mut conn: Connection, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit(&mut conn, &batch);
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            // A caller that stopped waiting (cancelled) does not mind.
            let _ = job.done.send(outcome);
        }
    }
}

/// One transaction for `batch`: each job in a savepoint; every job's outcome.
fn commit(conn: &mut Connection, batch: &[Job]) -> Vec<std::result::Result<(), String>> {
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return batch.iter().map(|_| Err(format!("begin: {e}"))).collect(),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let outcome = (|| -> rusqlite::Result<()> {
            let sp = tx.savepoint()?;
            write(&sp, &job.work)?;
            sp.commit()
        })()
        .map_err(|e| format!("storing a step: {e}"));
        outcomes.push(outcome);
    }
    if let Err(e) = tx.commit() {
        let message = format!("commit: {e}");
        return batch.iter().map(|_| Err(message.clone())).collect();
    }
    outcomes
}

fn write(conn: &Connection, work: &Work) -> rusqlite::Result<()> {
    match work {
        Work::TaskRuns(runs) => {
            let mut stmt = conn.prepare_cached(INSERT_TASK_RUN)?;
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
            conn.prepare_cached(FINISH_EXECUTION)?.execute(params![
                status.as_str(),
                output,
                error,
                finished_at,
                id
            ])?;
            Ok(())
        }
    }
}

/// The same statement as the pool's `record_task_runs`: a finished row is never turned back
/// into a running one.
const INSERT_TASK_RUN: &str = "INSERT INTO task_runs (execution_id, task, item, attempt, status, seq, input, result, error, routes, publish, reused, started_at, finished_at, duration_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (execution_id, task, item, attempt) DO UPDATE SET \
     status = excluded.status, seq = COALESCE(excluded.seq, task_runs.seq), \
     input = COALESCE(excluded.input, task_runs.input), result = excluded.result, \
     error = excluded.error, routes = excluded.routes, publish = excluded.publish, \
     reused = excluded.reused, started_at = COALESCE(excluded.started_at, task_runs.started_at), \
     finished_at = excluded.finished_at, duration_ms = excluded.duration_ms \
     WHERE task_runs.status = 'running' OR excluded.status <> 'running'";

const FINISH_EXECUTION: &str = "UPDATE executions SET status = ?1, output = ?2, error = ?3, finished_at = ?4, lease_until_ms = NULL WHERE id = ?5";
