//! The PostgreSQL backend: for several weft processes (on several hosts) sharing one store.
//!
//! It keeps what SQLite keeps, the same way (JSON and timestamps as text; see the migration),
//! so both backends answer alike. What PostgreSQL adds:
//! * workers claim executions with `FOR UPDATE SKIP LOCKED`: processes never take the same
//!   execution, nor wait on each other's candidate rows;
//! * creating a queued execution sends `NOTIFY weft_work` on commit, and
//!   [`Store::wait_for_work`] listens, so idle workers of every process wake at once.
//!
//! TLS is not compiled in: connect to a server on a trusted network (or through a tunnel);
//! `sslmode=require` in the URL fails.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, Postgres};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::rows::{
    execution_from_row, form_link_from_row, form_submission_from_row, json_col, org_from_row,
    task_run_from_row, trigger_event_from_row, webhook_secret_from_row, workflow_from_row,
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

/// Rows per multi-row insert: PostgreSQL takes at most 65535 parameters per statement.
const ROWS_PER_INSERT: usize = 1000;

/// The PostgreSQL store.
///
/// It uses the schema the connection's `search_path` selects (`public` by default). To keep
/// weft in its own schema, open it with [`PostgresStore::open_in_schema`], or name an
/// existing schema in the URL: `postgres://weft@db/weft?options[search_path]=weft`.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    wake: Arc<Wake>,
}

/// Wake-ups for idle workers, fed by one listener task per store (started by the first
/// [`Store::wait_for_work`]).
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

const EXECUTION_COLUMNS: &str = "id, workflow_id, workflow_name, workflow_version, status, org, input, vars, trigger, output, error, parent_id, parent_task, rerun_of, cancel_requested, owner, lease_until_ms, created_at, started_at, finished_at, concurrency_key, concurrency_limit, sealed";
const WEBHOOK_SECRET_COLUMNS: &str =
    "workflow, trigger, org, secret, previous, previous_until, created_at, rotated_at";

/// Upserts `runs` (in statements of at most [`ROWS_PER_INSERT`] rows) on `conn`.
async fn upsert_task_runs(conn: &mut PgConnection, runs: &[TaskRun]) -> Result<()> {
    for chunk in runs.chunks(ROWS_PER_INSERT) {
        let mut qb: QueryBuilder<'_, Postgres> =
            QueryBuilder::new(format!("INSERT INTO task_runs ({TASK_RUN_COLUMNS}) "));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.execution_id.clone())
                .push_bind(r.task.clone())
                .push_bind(r.item)
                .push_bind(r.attempt)
                .push_bind(r.status.as_str())
                .push_bind(r.seq)
                .push_bind(json_to_text(&r.input))
                .push_bind(json_to_text(&r.result))
                .push_bind(json_to_text(&r.error))
                .push_bind(json_to_text(&r.routes))
                .push_bind(json_to_text(&r.publish))
                .push_bind(r.reused)
                .push_bind(r.started_at.clone())
                .push_bind(r.finished_at.clone())
                .push_bind(r.duration_ms);
        });
        // A finished row is never turned back into a running one.
        qb.push(TASK_RUN_UPSERT);
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// PostgreSQL text cannot hold NUL characters (SQLite's can): a message carrying one (from a
/// response body, say) is stored with U+FFFD in its place rather than failing the write.
fn without_nul(s: Option<&str>) -> Option<String> {
    s.map(|s| s.replace('\0', "\u{FFFD}"))
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
        let pool = PgPoolOptions::new()
            .max_connections(max_connections())
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(PostgresStore {
            pool,
            wake: Arc::new(Wake {
                notify: Arc::new(Notify::new()),
                schema,
                listener: OnceLock::new(),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// Mappings whose `column` (`kind` or `org_id`) is `value`.
    async fn mappings_where(&self, column: &str, value: &str) -> Result<Vec<OrgMapping>> {
        let rows = sqlx::query(&format!("SELECT org_id, kind, external_id, external_name, created_at FROM org_mappings WHERE {column} = $1 ORDER BY org_id, kind"))
            .bind(value)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OrgMapping {
                    org_id: r.try_get("org_id")?,
                    kind: r.try_get("kind")?,
                    external_id: r.try_get("external_id")?,
                    external_name: r.try_get("external_name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
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

/// The versioned sources: workflows and forms keep their versions by one rule.
#[derive(Debug, Clone, Copy)]
enum Versioned {
    Workflows,
    Forms,
}

impl Versioned {
    fn table(self) -> &'static str {
        match self {
            Versioned::Workflows => "workflows",
            Versioned::Forms => "forms",
        }
    }
}

impl PostgresStore {
    /// Stores `source` as the next version of `name`, unless it equals the latest version;
    /// the row id of the version that holds it.
    async fn deploy_version(
        &self,
        kind: Versioned,
        name: &str,
        source: &str,
        path: Option<&str>,
    ) -> Result<i64> {
        use sha2::Digest;
        let table = kind.table();
        let hash = hex::encode(sha2::Sha256::digest(source.as_bytes()));
        let mut tx = self.pool.begin().await?;
        // Two processes deploying the same name at once take turns (else both would pick the
        // same next version).
        let lock = match kind {
            Versioned::Workflows => "weft.deploy:",
            Versioned::Forms => "weft.deploy.form:",
        };
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))")
            .bind(lock)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let latest = sqlx::query(&format!("SELECT id, version, source_hash FROM {table} WHERE name = $1 ORDER BY version DESC LIMIT 1"))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = &latest
            && row.try_get::<String, _>("source_hash")? == hash
        {
            let id: i64 = row.try_get("id")?;
            tx.commit().await?;
            return Ok(id);
        }
        let version = latest.map_or(Ok(0), |r| r.try_get::<i64, _>("version"))? + 1;
        let id: i64 = sqlx::query_scalar(&format!("INSERT INTO {table} (name, version, source, source_hash, path, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"))
            .bind(name)
            .bind(version)
            .bind(source)
            .bind(&hash)
            .bind(path)
            .bind(now_rfc3339())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn deploy_workflow(
        &self,
        name: &str,
        source: &str,
        path: Option<&str>,
    ) -> Result<WorkflowRecord> {
        let id = self
            .deploy_version(Versioned::Workflows, name, source, path)
            .await?;
        self.workflow_by_id(id).await
    }

    async fn deploy_form(
        &self,
        name: &str,
        source: &str,
        path: Option<&str>,
    ) -> Result<FormRecord> {
        let id = self
            .deploy_version(Versioned::Forms, name, source, path)
            .await?;
        let row = sqlx::query("SELECT * FROM forms WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        workflow_from_row(&row)
    }

    async fn form(&self, name: &str, version: Option<i64>) -> Result<FormRecord> {
        let row = match version {
            Some(v) => {
                sqlx::query("SELECT * FROM forms WHERE name = $1 AND version = $2")
                    .bind(name)
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM forms WHERE name = $1 ORDER BY version DESC LIMIT 1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        let row = row.ok_or_else(|| StoreError::not_found(format!("form `{name}`")))?;
        workflow_from_row(&row)
    }

    async fn list_forms(&self) -> Result<Vec<FormRecord>> {
        let rows = sqlx::query("SELECT f.* FROM forms f WHERE f.version = (SELECT MAX(version) FROM forms x WHERE x.name = f.name) ORDER BY f.name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn workflow(&self, name: &str, version: Option<i64>) -> Result<WorkflowRecord> {
        let row = match version {
            Some(v) => {
                sqlx::query("SELECT * FROM workflows WHERE name = $1 AND version = $2")
                    .bind(name)
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM workflows WHERE name = $1 ORDER BY version DESC LIMIT 1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        let row = row.ok_or_else(|| StoreError::not_found(format!("workflow `{name}`")))?;
        workflow_from_row(&row)
    }

    async fn workflow_by_id(&self, id: i64) -> Result<WorkflowRecord> {
        let row = sqlx::query("SELECT * FROM workflows WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("workflow version {id}")))?;
        workflow_from_row(&row)
    }

    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>> {
        let rows = sqlx::query("SELECT w.* FROM workflows w WHERE w.version = (SELECT MAX(version) FROM workflows x WHERE x.name = w.name) ORDER BY w.name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn last_deploy_id(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM workflows")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn config_generation(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT n FROM config_generation WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

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

    async fn renew_leases(&self, owner: &str, lease_until_ms: i64) -> Result<u64> {
        let done = sqlx::query("UPDATE executions SET lease_until_ms = $1 WHERE owner = $2 AND status IN ('pending', 'running')")
            .bind(lease_until_ms)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn cancel_requests(&self, owner: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM executions WHERE owner = $1 AND cancel_requested AND status IN ('pending', 'running')")
            .bind(owner)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn unfinished_executions(&self) -> Result<Vec<ExecutionRecord>> {
        let rows = sqlx::query(&format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE status IN ('pending', 'running') ORDER BY created_at"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(execution_from_row).collect()
    }

    async fn record_task_runs(&self, runs: &[TaskRun]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        if runs.len() <= ROWS_PER_INSERT {
            let mut conn = self.pool.acquire().await?;
            return upsert_task_runs(&mut conn, runs).await;
        }
        let mut tx = self.pool.begin().await?;
        upsert_task_runs(&mut tx, runs).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_execution(
        &self,
        id: &str,
        status: ExecStatus,
        output: Option<&Value>,
        error: Option<&str>,
        finished_at: &str,
    ) -> Result<()> {
        // An execution under a concurrency limit frees a slot: idle workers of every process
        // look at the queue again (the notification is sent when the update commits).
        sqlx::query(
            "WITH done AS (UPDATE executions SET status = $1, output = $2, error = $3, finished_at = $4, lease_until_ms = NULL WHERE id = $5 RETURNING concurrency_limit) \
             SELECT pg_notify($6, current_schema()) FROM done WHERE concurrency_limit IS NOT NULL",
        )
        .bind(status.as_str())
        .bind(output.map(Value::to_string))
        .bind(without_nul(error))
        .bind(finished_at)
        .bind(id)
        .bind(WORK_CHANNEL)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn execution(&self, id: &str) -> Result<ExecutionRecord> {
        // Users may type the first characters of an id, as with git commits. ILIKE without an
        // escape character matches as SQLite's LIKE does (ASCII case ignored).
        let sql = if id.len() >= 36 {
            format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1")
        } else {
            format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions WHERE id ILIKE $1 || '%' ESCAPE '' LIMIT 2"
            )
        };
        let row = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        match row.as_slice() {
            [one] => execution_from_row(one),
            [] => Err(StoreError::not_found(format!("execution `{id}`"))),
            _ => Err(StoreError::Conflict(format!(
                "`{id}` matches several executions; give more of the id"
            ))),
        }
    }

    async fn task_runs(&self, execution_id: &str) -> Result<Vec<TaskRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE execution_id = $1 \
             ORDER BY COALESCE(started_at, finished_at) NULLS FIRST, attempt, task, item"
        ))
        .bind(execution_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_run_from_row).collect()
    }

    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        let mut qb: QueryBuilder<'_, Postgres> = QueryBuilder::new(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE TRUE"
        ));
        if let Some(s) = filter.status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(w) = &filter.workflow {
            qb.push(" AND workflow_name = ").push_bind(w.clone());
        }
        if let Some(o) = &filter.org {
            qb.push(" AND org = ").push_bind(o.clone());
        }
        if filter.top_level_only {
            qb.push(" AND parent_id IS NULL");
        }
        if let Some(t) = &filter.created_after {
            qb.push(" AND created_at >= ").push_bind(t.clone());
        }
        // SQLite takes a negative limit as none.
        let limit = filter.limit.unwrap_or(50);
        qb.push(" ORDER BY created_at DESC, id LIMIT ")
            .push_bind((limit >= 0).then_some(limit))
            .push(" OFFSET ")
            .push_bind(filter.offset.unwrap_or(0).max(0));
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(execution_from_row).collect()
    }

    async fn children(&self, id: &str) -> Result<Vec<ExecutionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE parent_id = $1 ORDER BY created_at"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(execution_from_row).collect()
    }

    async fn request_cancel(&self, id: &str) -> Result<()> {
        let exec = self.execution(id).await?;
        if exec.status.is_final() {
            return Err(StoreError::Conflict(format!(
                "execution {} already {}",
                exec.id, exec.status
            )));
        }
        sqlx::query(
            "WITH RECURSIVE tree(id) AS (SELECT $1::text COLLATE \"C\" UNION ALL SELECT e.id FROM executions e JOIN tree t ON e.parent_id = t.id) \
             UPDATE executions SET cancel_requested = TRUE WHERE id IN (SELECT id FROM tree) AND status IN ('pending', 'running')",
        )
        .bind(&exec.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn purge(&self, finished_before: &str, scope: &PurgeScope) -> Result<u64> {
        // In batches, oldest first: each holds the write lock briefly, so running executions
        // keep committing their steps between them.
        let mut total = 0;
        loop {
            let mut qb = purge_batch::<Postgres>(finished_before, scope);
            let done = qb.build().execute(&self.pool).await?.rows_affected();
            total += done;
            if done < PURGE_BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ensure_setting(&self, key: &str, value: &str) -> Result<(String, bool)> {
        let inserted = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok((stored, inserted))
    }

    async fn webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
    ) -> Result<Option<WebhookSecretRecord>> {
        sqlx::query(&format!(
            "SELECT {WEBHOOK_SECRET_COLUMNS} FROM webhook_secrets WHERE workflow = $1 AND trigger = $2 AND org = $3"
        ))
        .bind(workflow)
        .bind(trigger)
        .bind(org)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| webhook_secret_from_row(&r))
        .transpose()
    }

    async fn ensure_webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
        sealed: &str,
    ) -> Result<(WebhookSecretRecord, bool)> {
        let inserted = sqlx::query("INSERT INTO webhook_secrets (workflow, trigger, org, secret, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workflow, trigger, org) DO NOTHING")
            .bind(workflow)
            .bind(trigger)
            .bind(org)
            .bind(sealed)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1;
        let record = self
            .webhook_secret(workflow, trigger, org)
            .await?
            .ok_or_else(|| StoreError::Corrupt("webhook secret vanished".into()))?;
        Ok((record, inserted))
    }

    async fn rotate_webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
        sealed: &str,
        previous_until: Option<&str>,
    ) -> Result<WebhookSecretRecord> {
        let now = now_rfc3339();
        // One statement: issues the secret if there is none, else keeps the old one as
        // `previous` only while it has a grace period.
        sqlx::query("INSERT INTO webhook_secrets (workflow, trigger, org, secret, created_at, rotated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (workflow, trigger, org) DO UPDATE SET previous = CASE WHEN $6::TEXT IS NULL THEN NULL ELSE webhook_secrets.secret END, previous_until = $6, secret = excluded.secret, rotated_at = excluded.rotated_at")
                .bind(workflow)
                .bind(trigger)
                .bind(org)
                .bind(sealed)
                .bind(&now)
                .bind(previous_until)
                .execute(&self.pool)
                .await?;
        self.webhook_secret(workflow, trigger, org)
            .await?
            .ok_or_else(|| StoreError::Corrupt("webhook secret vanished".into()))
    }

    async fn form_link(&self, form: &str, org: &str) -> Result<Option<FormLinkRecord>> {
        sqlx::query("SELECT * FROM form_links WHERE form = $1 AND org = $2")
            .bind(form)
            .bind(org)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| form_link_from_row(&r))
            .transpose()
    }

    async fn form_link_by_hash(&self, token_hash: &str) -> Result<Option<FormLinkRecord>> {
        sqlx::query("SELECT * FROM form_links WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| form_link_from_row(&r))
            .transpose()
    }

    async fn ensure_form_link(
        &self,
        form: &str,
        org: &str,
        token_hash: &str,
        sealed: &str,
    ) -> Result<(FormLinkRecord, bool)> {
        let inserted = sqlx::query("INSERT INTO form_links (form, org, token_hash, token, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (form, org) DO NOTHING")
            .bind(form)
            .bind(org)
            .bind(token_hash)
            .bind(sealed)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1;
        let record = self
            .form_link(form, org)
            .await?
            .ok_or_else(|| StoreError::Corrupt("form link vanished".into()))?;
        Ok((record, inserted))
    }

    async fn rotate_form_link(
        &self,
        form: &str,
        org: &str,
        token_hash: &str,
        sealed: &str,
    ) -> Result<FormLinkRecord> {
        let now = now_rfc3339();
        sqlx::query("INSERT INTO form_links (form, org, token_hash, token, created_at, rotated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (form, org) DO UPDATE SET token_hash = excluded.token_hash, token = excluded.token, generation = form_links.generation + 1, rotated_at = excluded.rotated_at")
            .bind(form)
            .bind(org)
            .bind(token_hash)
            .bind(sealed)
            .bind(&now)
            .bind(&now)
            .execute(&self.pool)
            .await?;
        self.form_link(form, org)
            .await?
            .ok_or_else(|| StoreError::Corrupt("form link vanished".into()))
    }

    async fn set_form_link(
        &self,
        form: &str,
        org: &str,
        enabled: bool,
        expires_at: Option<&str>,
    ) -> Result<FormLinkRecord> {
        sqlx::query(
            "UPDATE form_links SET enabled = $1, expires_at = $2 WHERE form = $3 AND org = $4",
        )
        .bind(enabled)
        .bind(expires_at)
        .bind(form)
        .bind(org)
        .execute(&self.pool)
        .await?;
        self.form_link(form, org).await?.ok_or_else(|| {
            StoreError::not_found(format!("a link to form `{form}` for organization `{org}`"))
        })
    }

    async fn form_links(
        &self,
        form: Option<&str>,
        org: Option<&str>,
    ) -> Result<Vec<FormLinkRecord>> {
        let rows = sqlx::query("SELECT * FROM form_links WHERE ($1::text IS NULL OR form = $1) AND ($2::text IS NULL OR org = $2) ORDER BY form, org")
            .bind(form)
            .bind(org)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(form_link_from_row).collect()
    }

    async fn save_form_submission(&self, s: &FormSubmission) -> Result<()> {
        sqlx::query("INSERT INTO form_submissions (id, form, form_version, org, link, data, execution_ids, submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET execution_ids = excluded.execution_ids")
            .bind(&s.id)
            .bind(&s.form)
            .bind(s.form_version)
            .bind(&s.org)
            .bind(&s.link)
            .bind(s.values.to_string())
            .bind(serde_json::json!(s.execution_ids).to_string())
            .bind(&s.submitted_at)
            .execute(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(
                    format!("form link `{}` was used already", s.link),
                ),
                other => other.into(),
            })?;
        Ok(())
    }

    async fn form_submission_by_link(&self, link: &str) -> Result<Option<FormSubmission>> {
        sqlx::query("SELECT * FROM form_submissions WHERE link = $1")
            .bind(link)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| form_submission_from_row(&r))
            .transpose()
    }

    async fn form_submissions(
        &self,
        form: Option<&str>,
        org: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FormSubmission>> {
        let rows = sqlx::query("SELECT * FROM form_submissions WHERE ($1::text IS NULL OR form = $1) AND ($2::text IS NULL OR org = $2) ORDER BY submitted_at DESC, id DESC LIMIT $3")
            .bind(form)
            .bind(org)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(form_submission_from_row).collect()
    }

    async fn purge_trigger_events(&self, before: &str, scope: &PurgeScope) -> Result<u64> {
        let mut qb: QueryBuilder<'_, Postgres> = QueryBuilder::new(
            // Keeps each trigger's greatest de-duplication key: the row `last_dedupe_key` reads.
            "DELETE FROM trigger_events WHERE (dedupe_key IS NULL OR EXISTS (SELECT 1 FROM trigger_events k WHERE k.workflow = trigger_events.workflow AND k.trigger = trigger_events.trigger AND k.dedupe_key > trigger_events.dedupe_key)) AND created_at < ",
        );
        qb.push_bind(before.to_string());
        if let Some(org) = &scope.only {
            qb.push(" AND org = ").push_bind(org.clone());
        }
        for org in &scope.except {
            qb.push(" AND org <> ").push_bind(org.clone());
        }
        Ok(qb.build().execute(&self.pool).await?.rows_affected())
    }

    async fn record_event(
        &self,
        event: &TriggerEvent,
        executions: &[NewExecution],
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        // A second event with the same dedupe key waits for the first to commit, then
        // inserts nothing.
        let event_id: Option<i64> = sqlx::query_scalar("INSERT INTO trigger_events (workflow, trigger, kind, org, outcome, reason, status, execution_id, dedupe_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING id")
            .bind(&event.workflow)
            .bind(&event.trigger)
            .bind(&event.kind)
            .bind(&event.org)
            .bind(&event.outcome)
            .bind(without_nul(event.reason.as_deref()))
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

    async fn trigger_events(
        &self,
        workflow: &str,
        trigger: &str,
        limit: i64,
    ) -> Result<Vec<TriggerEvent>> {
        let rows = sqlx::query("SELECT id, workflow, trigger, kind, org, outcome, reason, status, execution_id, dedupe_key, created_at FROM trigger_events WHERE workflow = $1 AND trigger = $2 ORDER BY id DESC LIMIT $3")
            .bind(workflow)
            .bind(trigger)
            .bind((limit >= 0).then_some(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trigger_event_from_row).collect()
    }

    async fn last_dedupe_key(
        &self,
        workflow: &str,
        trigger: &str,
        prefix: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT MAX(dedupe_key) FROM trigger_events WHERE workflow = $1 AND trigger = $2 AND substr(dedupe_key, 1, length($3)) = $3")
            .bind(workflow)
            .bind(trigger)
            .bind(prefix)
            .fetch_one(&self.pool)
            .await?)
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

    async fn queue_depth(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM executions WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn set_trigger_enabled(
        &self,
        workflow: &str,
        trigger: &str,
        enabled: bool,
    ) -> Result<()> {
        sqlx::query("INSERT INTO trigger_switches (workflow, trigger, enabled, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (workflow, trigger) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at")
            .bind(workflow)
            .bind(trigger)
            .bind(enabled)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn trigger_switches(&self) -> Result<Vec<(String, String, bool)>> {
        let rows = sqlx::query("SELECT workflow, trigger, enabled FROM trigger_switches")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("workflow")?,
                    r.try_get("trigger")?,
                    r.try_get("enabled")?,
                ))
            })
            .collect()
    }

    async fn save_autotask_webhook(&self, w: &AutotaskWebhook) -> Result<()> {
        sqlx::query("INSERT INTO autotask_webhooks (workflow, trigger, org, integration, entity, webhook_id, guid, secret, url, config_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (workflow, trigger, org) DO UPDATE SET integration = EXCLUDED.integration, entity = EXCLUDED.entity, webhook_id = EXCLUDED.webhook_id, guid = EXCLUDED.guid, secret = EXCLUDED.secret, url = EXCLUDED.url, config_hash = EXCLUDED.config_hash, created_at = EXCLUDED.created_at")
            .bind(&w.workflow)
            .bind(&w.trigger)
            .bind(&w.org)
            .bind(&w.integration)
            .bind(&w.entity)
            .bind(w.webhook_id)
            .bind(&w.guid)
            .bind(&w.secret)
            .bind(&w.url)
            .bind(&w.config_hash)
            .bind(&w.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn autotask_webhooks(&self) -> Result<Vec<AutotaskWebhook>> {
        let rows = sqlx::query("SELECT workflow, trigger, org, integration, entity, webhook_id, guid, secret, url, config_hash, created_at FROM autotask_webhooks ORDER BY workflow, trigger, org")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AutotaskWebhook {
                    workflow: r.try_get("workflow")?,
                    trigger: r.try_get("trigger")?,
                    org: r.try_get("org")?,
                    integration: r.try_get("integration")?,
                    entity: r.try_get("entity")?,
                    webhook_id: r.try_get("webhook_id")?,
                    guid: r.try_get("guid")?,
                    secret: r.try_get("secret")?,
                    url: r.try_get("url")?,
                    config_hash: r.try_get("config_hash")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn delete_autotask_webhook(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM autotask_webhooks WHERE workflow = $1 AND trigger = $2 AND org = $3",
        )
        .bind(workflow)
        .bind(trigger)
        .bind(org)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn save_org(&self, o: &OrgRecord) -> Result<()> {
        let res = sqlx::query("INSERT INTO orgs (id, name, parent_id, tags, attributes, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id, tags = EXCLUDED.tags, attributes = EXCLUDED.attributes, active = EXCLUDED.active, updated_at = EXCLUDED.updated_at")
            .bind(&o.id)
            .bind(&o.name)
            .bind(&o.parent_id)
            .bind(json_to_text(&Some(&o.tags)))
            .bind(o.attributes.to_string())
            .bind(o.active)
            .bind(&o.created_at)
            .bind(&o.updated_at)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("another organization is already named `{}`", o.name),
            )),
            Err(e) => Err(fk_not_found(
                e,
                "parent organization",
                o.parent_id.as_deref().unwrap_or_default(),
            )),
        }
    }

    async fn org(&self, id_or_name: &str) -> Result<OrgRecord> {
        let row = sqlx::query(&format!(
            "SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1 OR lower(name) = lower($2) ORDER BY id = $1 DESC LIMIT 1"
        ))
        .bind(id_or_name)
        .bind(id_or_name.trim())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("organization `{id_or_name}`")))?;
        org_from_row(&row)
    }

    async fn list_orgs(&self) -> Result<Vec<OrgRecord>> {
        let rows = sqlx::query(&format!(
            "WITH RECURSIVE tree(id, depth) AS (SELECT id, 0 FROM orgs WHERE parent_id IS NULL \
             UNION ALL SELECT o.id, t.depth + 1 FROM orgs o JOIN tree t ON o.parent_id = t.id) \
             SELECT {ORG_COLUMNS} FROM orgs JOIN tree USING (id) ORDER BY tree.depth, lower(orgs.name)"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(org_from_row).collect()
    }

    async fn delete_org(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orgs WHERE parent_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if children > 0 {
            return Err(StoreError::Conflict(format!(
                "organization `{id}` has {children} child organization(s): remove or move them first"
            )));
        }
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM executions WHERE org = $1 AND status IN ('pending', 'running')",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if running > 0 {
            return Err(StoreError::Conflict(format!(
                "organization `{id}` has {running} execution(s) waiting or running: cancel them or let them finish first"
            )));
        }
        let done = sqlx::query("DELETE FROM orgs WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("organization `{id}`")));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_org_var(&self, v: &OrgVar) -> Result<()> {
        sqlx::query("INSERT INTO org_vars (org_id, key, value, secret, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, key) DO UPDATE SET value = EXCLUDED.value, secret = EXCLUDED.secret, updated_at = EXCLUDED.updated_at")
            .bind(&v.org_id)
            .bind(&v.key)
            .bind(&v.value)
            .bind(v.secret)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await
            .map_err(|e| fk_not_found(e, "organization", &v.org_id))?;
        Ok(())
    }

    async fn delete_org_var(&self, org_id: &str, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM org_vars WHERE org_id = $1 AND key = $2")
            .bind(org_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn org_vars(&self, org_id: &str) -> Result<Vec<OrgVar>> {
        let rows = sqlx::query(
            "SELECT org_id, key, value, secret FROM org_vars WHERE org_id = $1 ORDER BY key",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OrgVar {
                    org_id: r.try_get("org_id")?,
                    key: r.try_get("key")?,
                    value: r.try_get("value")?,
                    secret: r.try_get("secret")?,
                })
            })
            .collect()
    }

    async fn save_integration(&self, i: &IntegrationRecord) -> Result<()> {
        sqlx::query("INSERT INTO integrations (org_id, kind, name, settings, secrets, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (org_id, kind, name) DO UPDATE SET settings = EXCLUDED.settings, secrets = EXCLUDED.secrets, updated_at = EXCLUDED.updated_at")
            .bind(&i.org_id)
            .bind(&i.kind)
            .bind(&i.name)
            .bind(i.settings.to_string())
            .bind(&i.secrets)
            .bind(&i.created_at)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await
            .map_err(|e| fk_not_found(e, "organization", &i.org_id))?;
        Ok(())
    }

    async fn delete_integration(&self, org_id: &str, kind: &str, name: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM integrations WHERE org_id = $1 AND kind = $2 AND name = $3")
                .bind(org_id)
                .bind(kind)
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn integrations(&self, org_id: Option<&str>) -> Result<Vec<IntegrationRecord>> {
        let rows = sqlx::query("SELECT org_id, kind, name, settings, secrets, created_at FROM integrations WHERE $1::text IS NULL OR org_id = $1 ORDER BY org_id, kind, name")
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(IntegrationRecord {
                    org_id: r.try_get("org_id")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    settings: json_col(r, "settings")?.unwrap_or(Value::Null),
                    secrets: r.try_get("secrets")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn set_mapping(&self, m: &OrgMapping) -> Result<()> {
        let res = sqlx::query("INSERT INTO org_mappings (org_id, kind, external_id, external_name, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, kind) DO UPDATE SET external_id = EXCLUDED.external_id, external_name = EXCLUDED.external_name, created_at = EXCLUDED.created_at")
            .bind(&m.org_id)
            .bind(&m.kind)
            .bind(&m.external_id)
            .bind(&m.external_name)
            .bind(&m.created_at)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!(
                    "{} record {} is already mapped to another organization",
                    m.kind, m.external_id
                )))
            }
            Err(e) => Err(fk_not_found(e, "organization", &m.org_id)),
        }
    }

    async fn delete_mapping(&self, org_id: &str, kind: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM org_mappings WHERE org_id = $1 AND kind = $2")
            .bind(org_id)
            .bind(kind)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn mappings(&self, kind: &str) -> Result<Vec<OrgMapping>> {
        self.mappings_where("kind", kind).await
    }

    async fn org_mappings(&self, org_id: &str) -> Result<Vec<OrgMapping>> {
        self.mappings_where("org_id", org_id).await
    }

    async fn exclude(&self, kind: &str, external_id: &str, name: Option<&str>) -> Result<()> {
        sqlx::query("INSERT INTO mapping_exclusions (kind, external_id, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (kind, external_id) DO UPDATE SET name = COALESCE(EXCLUDED.name, mapping_exclusions.name)")
            .bind(kind)
            .bind(external_id)
            .bind(name)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn unexclude(&self, kind: &str, external_id: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM mapping_exclusions WHERE kind = $1 AND external_id = $2")
                .bind(kind)
                .bind(external_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn exclusions(&self, kind: &str) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT external_id, name FROM mapping_exclusions WHERE kind = $1 ORDER BY external_id",
        )
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("external_id")?, r.try_get("name")?)))
            .collect()
    }

    async fn save_directory(&self, records: &[DirectoryRecord]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in records.chunks(500) {
            let mut qb: QueryBuilder<'_, Postgres> = QueryBuilder::new(
                "INSERT INTO directory (source, kind, external_id, org_id, name, data, active, state, updated_at) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.source.clone())
                    .push_bind(r.kind.clone())
                    .push_bind(r.external_id.clone())
                    .push_bind(r.org_id.clone())
                    .push_bind(r.name.clone())
                    .push_bind(r.data.to_string())
                    .push_bind(r.active)
                    .push_bind(r.state.clone())
                    .push_bind(r.updated_at.clone());
            });
            qb.push(
                " ON CONFLICT (source, kind, external_id) DO UPDATE SET org_id = EXCLUDED.org_id, \
                 name = EXCLUDED.name, data = EXCLUDED.data, active = EXCLUDED.active, \
                 state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
            );
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn directory(
        &self,
        source: &str,
        kind: &str,
        org_id: Option<&str>,
    ) -> Result<Vec<DirectoryRecord>> {
        let rows = sqlx::query("SELECT source, kind, external_id, org_id, name, data, active, state, updated_at FROM directory WHERE source = $1 AND kind = $2 AND ($3::text IS NULL OR org_id = $3) ORDER BY lower(name), external_id")
            .bind(source)
            .bind(kind)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DirectoryRecord {
                    source: r.try_get("source")?,
                    kind: r.try_get("kind")?,
                    external_id: r.try_get("external_id")?,
                    org_id: r.try_get("org_id")?,
                    name: r.try_get("name")?,
                    data: json_col(r, "data")?.unwrap_or(Value::Null),
                    active: r.try_get("active")?,
                    state: r.try_get("state")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn start_sync_run(&self, source: &str, org_id: &str, mode: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO sync_runs (source, org_id, mode, started_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(source)
        .bind(org_id)
        .bind(mode)
        .bind(now_rfc3339())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn finish_sync_run(&self, id: i64, counts: &Value, errors: &Value) -> Result<()> {
        sqlx::query(
            "UPDATE sync_runs SET finished_at = $1, counts = $2, errors = $3 WHERE id = $4",
        )
        .bind(now_rfc3339())
        .bind(counts.to_string())
        .bind(errors.to_string())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sync_runs(&self, limit: i64) -> Result<Vec<SyncRun>> {
        let rows = sqlx::query("SELECT id, source, org_id, mode, started_at, finished_at, counts, errors FROM sync_runs ORDER BY id DESC LIMIT $1")
            .bind((limit >= 0).then_some(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SyncRun {
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    org_id: r.try_get("org_id")?,
                    mode: r.try_get("mode")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    counts: json_col(r, "counts")?.unwrap_or(Value::Null),
                    errors: json_col(r, "errors")?.unwrap_or(Value::Null),
                })
            })
            .collect()
    }

    async fn save_crate_install(&self, i: &CrateInstall) -> Result<()> {
        sqlx::query("INSERT INTO crate_installs (crate, org, version, params, run_for, enabled, detached, source, workflows, installed_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (crate, org) DO UPDATE SET version = EXCLUDED.version, params = EXCLUDED.params, run_for = EXCLUDED.run_for, enabled = EXCLUDED.enabled, detached = EXCLUDED.detached, source = EXCLUDED.source, workflows = EXCLUDED.workflows, updated_at = EXCLUDED.updated_at")
            .bind(&i.crate_name)
            .bind(&i.org)
            .bind(&i.version)
            .bind(i.params.to_string())
            .bind(i.run_for.to_string())
            .bind(i.enabled)
            .bind(i.detached)
            .bind(&i.source)
            .bind(i.workflows.to_string())
            .bind(&i.installed_at)
            .bind(&i.updated_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn crate_installs(&self, org: Option<&str>) -> Result<Vec<CrateInstall>> {
        let rows = sqlx::query("SELECT crate, org, version, params, run_for, enabled, detached, source, workflows, installed_at, updated_at FROM crate_installs WHERE ($1::text IS NULL OR org = $1) ORDER BY crate, org")
            .bind(org)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CrateInstall {
                    crate_name: r.try_get("crate")?,
                    org: r.try_get("org")?,
                    version: r.try_get("version")?,
                    params: json_col(r, "params")?.unwrap_or(Value::Null),
                    run_for: json_col(r, "run_for")?.unwrap_or(Value::Null),
                    enabled: r.try_get("enabled")?,
                    detached: r.try_get("detached")?,
                    source: r.try_get("source")?,
                    workflows: json_col(r, "workflows")?.unwrap_or(Value::Null),
                    installed_at: r.try_get("installed_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn delete_crate_install(&self, crate_name: &str, org: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM crate_installs WHERE crate = $1 AND org = $2")
            .bind(crate_name)
            .bind(org)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.start_listener();
        let _ = tokio::time::timeout(timeout, self.wake.notify.notified()).await;
    }
}

/// Inserts an execution: running when it has an owner, else queued (pending) and announced to
/// listening workers (PostgreSQL delivers the notification when the transaction commits).
async fn insert_execution(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    e: &NewExecution,
    event_id: Option<i64>,
) -> Result<()> {
    let status = e.initial_status();
    let (owner, lease) = match &e.error {
        Some(_) => (None, None),
        None => (e.owner.as_ref(), e.lease_until_ms),
    };
    sqlx::query(&format!("INSERT INTO executions ({EXECUTION_COLUMNS}, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, $12, $13, FALSE, $14, $15, $16, $17, $18, $19, $20, $21, $22)"))
        .bind(&e.id)
        .bind(e.workflow.id)
        .bind(&e.workflow.name)
        .bind(e.workflow.version)
        .bind(status.as_str())
        .bind(&e.org)
        .bind(e.input.to_string())
        .bind(e.vars.to_string())
        .bind(e.trigger.to_string())
        .bind(without_nul(e.error.as_deref()))
        .bind(&e.parent_id)
        .bind(&e.parent_task)
        .bind(&e.rerun_of)
        .bind(owner)
        .bind(lease)
        .bind(&e.created_at)
        .bind((status != ExecStatus::Pending).then_some(&e.created_at))
        .bind(e.error.as_ref().map(|_| &e.created_at))
        .bind(&e.concurrency_key)
        .bind(e.concurrency_limit)
        .bind(&e.sealed)
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
    // A held execution (owner set) is started by its owner: no worker needs waking.
    if status == ExecStatus::Pending && e.owner.is_none() {
        sqlx::query("SELECT pg_notify($1, current_schema())")
            .bind(WORK_CHANNEL)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

const ORG_COLUMNS: &str = "orgs.id, orgs.name, orgs.parent_id, orgs.tags, orgs.attributes, orgs.active, orgs.created_at, orgs.updated_at";

/// A foreign-key failure on `what` as "not found".
fn fk_not_found(e: sqlx::Error, what: &str, id: &str) -> StoreError {
    match e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::not_found(format!("{what} `{id}`"))
        }
        other => other.into(),
    }
}
