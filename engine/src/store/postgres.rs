//! The PostgreSQL backend: for several weft processes (on several hosts) sharing one store.
//!
//! It keeps what SQLite keeps, the same way (JSON and timestamps as text; see the migration),
//! so both backends answer alike. What PostgreSQL adds:
//! * workers claim executions with `FOR UPDATE SKIP LOCKED`: processes never take the same
//!   execution, nor wait on each other's candidate rows;
//! * creating a queued execution sends `NOTIFY weft_work` on commit, and
//!   [`QueueStore::wait_for_work`] listens, so idle workers of every process wake at once.
//!
//! TLS is not compiled in: connect to a server on a trusted network (or through a tunnel);
//! `sslmode=require` in the URL fails.

//!
//! Everything else is the store core (`shared.rs`), as on SQLite.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::pg_steps::{Step, Steps, upsert_task_runs};
use super::rows::{
    execution_from_row, form_link_from_row, form_submission_from_row, json_col, org_from_row,
    task_run_from_row, trigger_event_from_row, webhook_secret_from_row, workflow_from_row,
};
use super::shared::{
    self, Arg, EXECUTION_COLUMNS, INSERT_EXECUTION, ORG_COLUMNS, Versioned, WEBHOOK_SECRET_COLUMNS,
    fk_not_found,
};
use super::*;
use crate::action::now_rfc3339;

/// The channel queued work is announced on; the payload is the schema the work is in, so
/// stores in other schemas of the same database ignore it.
const WORK_CHANNEL: &str = "weft_work";

/// Connections per process unless `WEFT_DATABASE_MAX_CONNECTIONS` says otherwise.
const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// How long to wait for a connection: a database outage fails calls after this rather than
/// hanging them.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store.
///
/// It uses the schema the connection's `search_path` selects (`public` by default). To keep
/// weft in its own schema, open it with [`PostgresStore::open_in_schema`], or name an
/// existing schema in the URL: `postgres://weft@db/weft?options[search_path]=weft`.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// For the shared limits' slots and counts: commits that do not wait for the WAL flush
    /// (`synchronous_commit = off`). A crash may lose the last of them, which costs nothing:
    /// a slot lapses at its time limit and a count is an estimate.
    limits: PgPool,
    wake: Arc<Wake>,
    /// Task runs and execution ends, batched across executions.
    steps: Steps,
}

/// Wake-ups for idle workers, fed by one listener task per store (started by the first
/// [`QueueStore::wait_for_work`]).
#[derive(Debug)]
struct Wake {
    notify: Arc<Notify>,
    /// The schema this store works in: notifications for other schemas are not ours.
    schema: String,
    listener: OnceLock<()>,
    /// Stops the listener when the last handle on the store goes.
    stop: CancellationToken,
}

impl Drop for Wake {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

// The spellings the store core leaves to each backend (see `shared.rs`).
type Db = sqlx::Postgres;

/// Executions whose id starts with `$1`: `ILIKE` without an escape character matches as
/// SQLite's `LIKE` does (ASCII case ignored).
const ID_PREFIX_MATCH: &str = "id ILIKE $1 || '%' ESCAPE ''";

/// The first row of the cancel tree, typed and collated as the `id` column.
const CANCEL_ROOT: &str = "$1::text COLLATE \"C\"";

/// A `LIMIT` argument: SQLite takes a negative limit as none, PostgreSQL takes `NULL`.
fn limit_arg(limit: i64) -> Option<i64> {
    (limit >= 0).then_some(limit)
}

/// A message as stored: PostgreSQL text cannot hold NUL characters (SQLite's can), so a
/// message carrying one (from a response body, say) is stored with U+FFFD in its place
/// rather than failing the write.
fn stored_text(s: Option<&str>) -> Option<String> {
    s.map(|s| s.replace('\0', "\u{FFFD}"))
}

/// Two processes deploying the same name at once take turns (else both would pick the same
/// next version).
/// A transaction that reads before it writes (row locks and advisory locks order them).
async fn begin_write(pool: &sqlx::Pool<Db>) -> Result<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin().await?)
}

impl PostgresStore {
    /// The pool the shared limits are written through.
    fn limits_pool(&self) -> &PgPool {
        &self.limits
    }
}

async fn lock_versions(conn: &mut PgConnection, kind: Versioned, name: &str) -> Result<()> {
    let lock = match kind {
        Versioned::Workflows => "weft.deploy:",
        Versioned::Forms => "weft.deploy.form:",
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))")
        .bind(lock)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

shared::insert_execution_row!();

/// Inserts an execution: running when it has an owner, else queued (pending) and announced to
/// listening workers (PostgreSQL delivers the notification when the transaction commits).
async fn insert_execution(
    conn: &mut PgConnection,
    e: &NewExecution,
    event_id: Option<i64>,
) -> Result<()> {
    let status = insert_execution_row(conn, e, event_id).await?;
    // A held execution (owner set) is started by its owner: no worker needs waking.
    if status == ExecStatus::Pending && e.owner.is_none() {
        sqlx::query("SELECT pg_notify($1, current_schema())")
            .bind(WORK_CHANNEL)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Is `schema` a plain identifier (what [`PostgresStore::open_in_schema`] accepts)?
fn plain_identifier(schema: &str) -> bool {
    let mut chars = schema.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
}

/// The pool size: `WEFT_DATABASE_MAX_CONNECTIONS` when it is a positive number.
fn max_connections() -> u32 {
    match std::env::var("WEFT_DATABASE_MAX_CONNECTIONS") {
        Ok(v) => match v.trim().parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => {
                tracing::warn!(value = %v, "WEFT_DATABASE_MAX_CONNECTIONS is not a positive number: using {DEFAULT_MAX_CONNECTIONS}");
                DEFAULT_MAX_CONNECTIONS
            }
        },
        Err(_) => DEFAULT_MAX_CONNECTIONS,
    }
}

/// One connection, or an error within [`CONNECT_TIMEOUT`] (an unreachable host does not hang).
async fn connect_once(options: &PgConnectOptions) -> Result<PgConnection> {
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connecting to PostgreSQL timed out",
        )))),
    }
}

impl PostgresStore {
    /// Connects and migrates the schema the URL's `search_path` selects (`public` unless the
    /// URL says otherwise, e.g. `?options[search_path]=weft`; that schema must exist).
    ///
    /// The pool holds up to 10 connections (`WEFT_DATABASE_MAX_CONNECTIONS` overrides) and
    /// waits at most 5 seconds for one.
    ///
    /// # Errors
    /// A bad URL, an unreachable database, no usable schema, a failed migration.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        Self::open_with(PgConnectOptions::from_str(url)?).await
    }

    /// Like [`PostgresStore::open`], in `schema` (created if missing): several weft
    /// installations (or test runs) can share one database, each in its own schema.
    ///
    /// # Errors
    /// As [`PostgresStore::open`]; a schema name that is not a lowercase identifier
    /// (`[a-z_][a-z0-9_]*`) is refused.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<PostgresStore> {
        if !plain_identifier(schema) {
            return Err(StoreError::Config(format!(
                "invalid PostgreSQL schema name `{schema}`: use lowercase letters, digits and _"
            )));
        }
        let options = PgConnectOptions::from_str(url)?;
        let mut conn = connect_once(&options).await?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Self::open_with(options.options([("search_path", schema)])).await
    }

    async fn open_with(options: PgConnectOptions) -> Result<PostgresStore> {
        // One connection first: a wrong password or an unreachable host is reported as such
        // (the pool would retry until its timeout and only say it timed out).
        let mut conn = connect_once(&options).await?;
        let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut conn)
            .await?;
        let Some(schema) = schema else {
            return Err(StoreError::Config(
                "no schema of the PostgreSQL search_path exists: create it first".into(),
            ));
        };
        // sqlx serializes concurrent migrations of a database with an advisory lock.
        sqlx::migrate!("./migrations/postgres")
            .run(&mut conn)
            .await
            .map_err(StoreError::Migrate)?;
        conn.close().await?;
        let limits = PgPoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options.clone().options([("synchronous_commit", "off")]));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections())
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(PostgresStore {
            limits,
            steps: Steps::new(pool.clone(), WORK_CHANNEL),
            pool,
            wake: Arc::new(Wake {
                notify: Arc::new(Notify::new()),
                schema,
                listener: OnceLock::new(),
                stop: CancellationToken::new(),
            }),
        })
    }

    fn start_listener(&self) {
        self.wake.listener.get_or_init(|| {
            tokio::spawn(listen(
                self.pool.clone(),
                self.wake.notify.clone(),
                self.wake.schema.clone(),
                self.wake.stop.clone(),
            ));
        });
    }
}

/// Listens on [`WORK_CHANNEL`] until `stop`, waking a waiter for each announcement of work in
/// `schema`; reconnects (with backoff) when the connection drops.
async fn listen(pool: PgPool, notify: Arc<Notify>, schema: String, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(WORK_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            l = connected => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for queued work: retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        backoff = Duration::from_millis(100);
        // Work queued while nobody listened was not announced: let a waiter look now.
        notify.notify_one();
        loop {
            let message = tokio::select! {
                m = listener.try_recv() => m,
                () = stop.cancelled() => return,
            };
            match message {
                Ok(Some(n)) if n.payload() == schema => notify.notify_one(),
                Ok(Some(_)) => {}
                // The connection dropped and was made again: announcements may have been lost.
                Ok(None) => notify.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection listening for queued work");
                    break;
                }
            }
        }
    }
}

/// How many queued candidates one claim looks at before giving up (the rest wait for the
/// next claim).
const CLAIM_CANDIDATES: usize = 20;

/// Takes the advisory lock of a concurrency group (held until the transaction ends; waited
/// for when `wait`, else only if free) and tells whether fewer than `limit` of the group run.
/// False when the lock is not free.
async fn group_has_room(
    tx: &mut PgConnection,
    workflow: &str,
    key: &str,
    limit: i64,
    wait: bool,
) -> Result<bool> {
    // Workflow names hold no `/`: the text names one group. The schema keeps stores of
    // different schemas from waiting on each other (a hash collision only serializes more).
    let group = "hashtextextended(current_schema() || ':' || $1 || '/' || $2, 0)";
    if wait {
        sqlx::query(&format!("SELECT pg_advisory_xact_lock({group})"))
            .bind(workflow)
            .bind(key)
            .execute(&mut *tx)
            .await?;
    } else {
        let locked: bool =
            sqlx::query_scalar(&format!("SELECT pg_try_advisory_xact_lock({group})"))
                .bind(workflow)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        if !locked {
            return Ok(false);
        }
    }
    // A new statement: under READ COMMITTED it sees every claim committed before the lock
    // was granted.
    let running: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM executions WHERE status = 'running' AND workflow_name = $1 AND concurrency_key = $2",
    )
    .bind(workflow)
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    Ok(running < limit)
}

impl PostgresStore {
    /// The rows `sql` reads with `args`, mapped (the store core's reads go through here).
    async fn read_rows<T>(
        &self,
        sql: &str,
        args: &[shared::Arg<'_>],
        map: impl Fn(&sqlx::postgres::PgRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut query = sqlx::query(sql);
        for arg in args {
            query = match *arg {
                shared::Arg::Text(t) => query.bind(t),
                shared::Arg::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(&self.pool).await?.iter().map(map).collect()
    }

    /// The one integer `sql` reads.
    async fn read_int(&self, sql: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }
}

shared::store_helpers!(PostgresStore);

shared::workflow_store!(PostgresStore {});

shared::execution_store!(PostgresStore {
    async fn create_execution(&self, e: &NewExecution, runs: &[TaskRun]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_execution(&mut tx, e, None).await?;
        upsert_task_runs(&mut tx, runs).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_execution(
        &self,
        id: &str,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
        stale_owner: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // The row lock makes a concurrent claimer wait, then re-check the condition against
        // this claim and fail.
        let row = sqlx::query(
            "SELECT status, workflow_name, concurrency_key, concurrency_limit FROM executions WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        // A running one keeps its slot; a pending one with a limit needs room in its group.
        if row.try_get::<String, _>("status")? == "pending"
            && let Some(limit) = row.try_get::<Option<i64>, _>("concurrency_limit")?
        {
            let name: String = row.try_get("workflow_name")?;
            let key: String = row
                .try_get::<Option<String>, _>("concurrency_key")?
                .unwrap_or_default();
            if !group_has_room(&mut tx, &name, &key, limit, true).await? {
                return Ok(false);
            }
        }
        let done = sqlx::query(
            "UPDATE executions SET owner = $1, lease_until_ms = $2, status = 'running', started_at = COALESCE(started_at, $3) \
             WHERE id = $4 AND status IN ('pending', 'running') \
             AND (owner IS NULL OR owner = $1 OR lease_until_ms < $5 OR owner = $6)",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now_rfc3339())
        .bind(id)
        .bind(now_ms)
        .bind(stale_owner.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_task_runs(&self, runs: &[TaskRun]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        self.steps.write(Step::TaskRuns(runs.to_vec())).await
    }

    async fn finish_execution(
        &self,
        id: &str,
        status: ExecStatus,
        output: Option<&Value>,
        error: Option<&str>,
        finished_at: &str,
    ) -> Result<()> {
        let ending = Ending {
            error: stored_text(error),
            ..Ending::new(id, status, output, None, finished_at)
        };
        self.steps.write(Step::Finish(ending)).await
    }
});

shared::queue_store!(PostgresStore {
    async fn record_event(
        &self,
        event: &TriggerEvent,
        executions: &[NewExecution],
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        // A second event with the same dedupe key (on PostgreSQL: waits for the first
        // to commit, then) inserts nothing.
        let event_id: Option<i64> = sqlx::query_scalar(shared::INSERT_EVENT)
            .bind(&event.workflow)
            .bind(&event.trigger)
            .bind(&event.kind)
            .bind(&event.org)
            .bind(&event.outcome)
            .bind(stored_text(event.reason.as_deref()))
            .bind(event.status)
            .bind(executions.first().map(|e| &e.id).or(event.execution_id.as_ref()))
            .bind(&event.dedupe_key)
            .bind(&event.created_at)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(event_id) = event_id else {
            return Ok(None);
        };
        for e in executions {
            insert_execution(&mut tx, e, Some(event_id)).await?;
        }
        tx.commit().await?;
        Ok(Some(event_id))
    }

    async fn claim_next(
        &self,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<String>> {
        // Queued first, oldest first; then running ones whose owner stopped renewing (the
        // second only looked for when there is no first). SKIP LOCKED: a row another worker is
        // claiming right now is passed over, never taken twice nor waited for; a row claimed
        // since this statement began is re-checked and passed over too.
        //
        // Row locks alone cannot keep a concurrency group under its limit (two workers could
        // each take a different pending row of the group): a candidate with a limit is taken
        // only under the group's advisory lock, after counting the group's running ones, and
        // both locks are held until the claim commits. The candidate query passes over groups
        // that look full; one found full under the lock is passed over for the next candidate.
        let mut tx = self.pool.begin().await?;
        let mut passed: Vec<String> = Vec::new();
        let mut holds_group_lock = false;
        for _ in 0..CLAIM_CANDIDATES {
            let row = sqlx::query(
                "SELECT id, workflow_name, concurrency_key, concurrency_limit FROM executions e \
                 WHERE status = 'pending' AND parent_id IS NULL \
                 AND (owner IS NULL OR lease_until_ms < $1) \
                 AND (concurrency_limit IS NULL OR (SELECT COUNT(*) FROM executions r WHERE r.status = 'running' \
                      AND r.workflow_name = e.workflow_name AND r.concurrency_key = e.concurrency_key) < concurrency_limit) \
                 AND id <> ALL($2) \
                 ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .bind(now_ms)
            .bind(&passed)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { break };
            let id: String = row.try_get("id")?;
            if let Some(limit) = row.try_get::<Option<i64>, _>("concurrency_limit")? {
                let name: String = row.try_get("workflow_name")?;
                let key: String = row
                    .try_get::<Option<String>, _>("concurrency_key")?
                    .unwrap_or_default();
                // Only the first group lock is waited for: a transaction never waits while
                // holding another group's lock, so claimers cannot deadlock.
                let wait = !holds_group_lock;
                holds_group_lock = true;
                if !group_has_room(&mut tx, &name, &key, limit, wait).await? {
                    passed.push(id);
                    continue;
                }
            }
            sqlx::query(
                "UPDATE executions SET owner = $1, lease_until_ms = $2, status = 'running', started_at = COALESCE(started_at, $3) WHERE id = $4",
            )
            .bind(owner)
            .bind(lease_until_ms)
            .bind(now_rfc3339())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Some(id));
        }
        let taken = sqlx::query_scalar(
            "UPDATE executions SET owner = $1, lease_until_ms = $2, status = 'running', started_at = COALESCE(started_at, $3) \
             WHERE id = (SELECT id FROM executions WHERE status = 'running' AND parent_id IS NULL AND lease_until_ms < $4 \
                ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now_rfc3339())
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(taken)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.start_listener();
        let _ = tokio::time::timeout(timeout, self.wake.notify.notified()).await;
    }
});

shared::trigger_store!(PostgresStore {});

shared::org_store!(PostgresStore {});

shared::crate_store!(PostgresStore {});

shared::settings_store!(PostgresStore {});
shared::limit_store!(PostgresStore);
