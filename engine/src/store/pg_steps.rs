//! Step outcomes on PostgreSQL, batched: task runs and execution ends that concurrent
//! executions record while a commit is in progress go into the next transaction together, so
//! they share one commit (one WAL flush) instead of paying one each — the same group commit
//! the SQLite writer does.
//!
//! A caller that finds fewer than [`MAX_LEADERS`] batches in progress starts a leader task (its own task, so a
//! caller that stops waiting cannot leave a write half done); the leader writes whatever is
//! queued, batch after batch, until the queue is empty: the task runs of every queued job in
//! one upsert (one statement is one transaction and one commit), execution ends each on their
//! own. A caller is answered once its write is committed. A batch that fails is written again
//! job by job, so one bad write fails only its own caller.

use std::sync::{Arc, Mutex};

use sqlx::QueryBuilder;
use sqlx::postgres::{PgConnection, PgPool};

use super::shared::push_task_runs;
use super::{Ending, Result, StoreError, TaskRun};

/// How many jobs one batch takes at most.
const MAX_BATCH: usize = 256;
/// How many batches may be in flight at once, each on its own connection. Up to this many
/// concurrent writers each commit at once (PostgreSQL flushes the WAL of commits that meet
/// together); beyond, writes queue and share the next batch's statement. Fewer leaders
/// measured slower with 4 workers (one: 1.97×, two: 2.08×, four: 2.22× one worker).
const MAX_LEADERS: usize = 4;
/// How many task runs one statement upserts at most (PostgreSQL's parameter limit).
pub(super) const ROWS_PER_INSERT: usize = 1000;

/// One step write.
pub(super) enum Step {
    TaskRuns(Vec<TaskRun>),
    Finish(Ending),
}

struct Job {
    step: Step,
    done: tokio::sync::oneshot::Sender<Result<()>>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// Leaders writing now.
    leaders: usize,
}

struct Inner {
    pool: PgPool,
    /// The channel `finish` notifies when a concurrency slot frees.
    channel: &'static str,
    queue: Mutex<Queue>,
}

#[derive(Clone)]
pub(super) struct Steps(Arc<Inner>);

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Steps")
    }
}

impl Steps {
    pub(super) fn new(pool: PgPool, channel: &'static str) -> Steps {
        Steps(Arc::new(Inner {
            pool,
            channel,
            queue: Mutex::default(),
        }))
    }

    /// Writes `step` and waits until it is committed.
    pub(super) async fn write(&self, step: Step) -> Result<()> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let lead = {
            let mut q = self.0.lock();
            q.jobs.push(Job { step, done });
            let lead = q.leaders < MAX_LEADERS;
            if lead {
                q.leaders += 1;
            }
            lead
        };
        if lead {
            tokio::spawn(self.0.clone().lead());
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Corrupt(
                "the step batcher stopped before committing".into(),
            ))
        })
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn lead(self: Arc<Self>) {
        loop {
            let batch: Vec<Job> = {
                let mut q = self.lock();
                if q.jobs.is_empty() {
                    q.leaders -= 1;
                    return;
                }
                let n = q.jobs.len().min(MAX_BATCH);
                q.jobs.drain(..n).collect()
            };
            let (runs, others): (Vec<Job>, Vec<Job>) = batch
                .into_iter()
                .partition(|j| matches!(j.step, Step::TaskRuns(_)));
            if runs.len() > 1 && self.upsert_together(&runs).await.is_ok() {
                for job in runs {
                    let _ = job.done.send(Ok(()));
                }
            } else {
                // Alone, or again one by one after the batch failed: each its own outcome.
                for job in runs {
                    let outcome = self.write_alone(&job.step).await;
                    let _ = job.done.send(outcome);
                }
            }
            for job in others {
                let outcome = self.write_alone(&job.step).await;
                let _ = job.done.send(outcome);
            }
        }
    }

    /// The task runs of several jobs in one statement (one commit), when they fit in one and
    /// no row is written twice; an error otherwise (the caller writes them one by one).
    async fn upsert_together(&self, jobs: &[Job]) -> Result<()> {
        let runs: Vec<&TaskRun> = jobs
            .iter()
            .flat_map(|j| match &j.step {
                Step::TaskRuns(runs) => runs.as_slice(),
                Step::Finish(_) => &[],
            })
            .collect();
        let mut keys = std::collections::HashSet::with_capacity(runs.len());
        let distinct = runs
            .iter()
            .all(|r| keys.insert((&r.execution_id, &r.task, r.item, r.attempt)));
        if !distinct || runs.len() > ROWS_PER_INSERT {
            return Err(StoreError::Conflict("not one statement".into()));
        }
        let mut qb = QueryBuilder::new("");
        push_task_runs(&mut qb, runs);
        qb.build().execute(&self.pool).await?;
        Ok(())
    }

    async fn write_alone(&self, step: &Step) -> Result<()> {
        match step {
            Step::TaskRuns(runs) if runs.len() > ROWS_PER_INSERT => {
                let mut tx = self.pool.begin().await?;
                self.write(&mut tx, step).await?;
                tx.commit().await?;
                Ok(())
            }
            _ => {
                let mut conn = self.pool.acquire().await?;
                self.write(&mut conn, step).await
            }
        }
    }

    async fn write(&self, conn: &mut PgConnection, step: &Step) -> Result<()> {
        match step {
            Step::TaskRuns(runs) => upsert_task_runs(conn, runs).await,
            Step::Finish(Ending {
                id,
                status,
                output,
                error,
                finished_at,
            }) => {
                // An execution under a concurrency limit frees a slot: idle workers of every
                // process look at the queue again (the notification is sent when the update
                // commits).
                sqlx::query(
                    "WITH done AS (UPDATE executions SET status = $1, output = $2, error = $3, finished_at = $4, lease_until_ms = NULL WHERE id = $5 RETURNING concurrency_limit) \
                     SELECT pg_notify($6, current_schema()) FROM done WHERE concurrency_limit IS NOT NULL",
                )
                .bind(status.as_str())
                .bind(output)
                .bind(error)
                .bind(finished_at)
                .bind(id)
                .bind(self.channel)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }
    }
}

/// Upserts `runs` on `conn`, at most [`ROWS_PER_INSERT`] rows per statement.
pub(super) async fn upsert_task_runs(conn: &mut PgConnection, runs: &[TaskRun]) -> Result<()> {
    for chunk in runs.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new("");
        push_task_runs(&mut qb, chunk);
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}
