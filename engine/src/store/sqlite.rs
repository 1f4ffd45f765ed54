//! The SQLite backend: one file, WAL journal, created and migrated on first use.
//!
//! `synchronous = NORMAL` in WAL mode: a committed step survives the process being killed
//! (the guarantee weft's resume relies on); only an OS crash or power loss may lose the last
//! few commits.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::*;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

const EXECUTION_COLUMNS: &str = "id, workflow_id, workflow_name, workflow_version, status, org, input, vars, trigger, output, error, parent_id, parent_task, rerun_of, cancel_requested, owner, lease_until_ms, created_at, started_at, finished_at";
const TASK_RUN_COLUMNS: &str = "execution_id, task, item, attempt, status, seq, input, result, error, routes, publish, reused, started_at, finished_at, duration_ms";

fn to_text<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref()
        .map(|v| serde_json::to_string(v).expect("JSON values serialize"))
}

fn json_col(row: &SqliteRow, col: &str) -> Result<Option<Value>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{col}: {e}"))))
        .transpose()
}

fn execution_from_row(row: &SqliteRow) -> Result<ExecutionRecord> {
    let status: String = row.try_get("status")?;
    Ok(ExecutionRecord {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        workflow_name: row.try_get("workflow_name")?,
        workflow_version: row.try_get("workflow_version")?,
        status: ExecStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("execution status {status}")))?,
        org: row.try_get("org")?,
        input: json_col(row, "input")?.unwrap_or(Value::Null),
        vars: json_col(row, "vars")?,
        trigger: json_col(row, "trigger")?.unwrap_or(Value::Null),
        output: json_col(row, "output")?,
        error: row.try_get("error")?,
        parent_id: row.try_get("parent_id")?,
        parent_task: row.try_get("parent_task")?,
        rerun_of: row.try_get("rerun_of")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        owner: row.try_get("owner")?,
        lease_until_ms: row.try_get("lease_until_ms")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn task_run_from_row(row: &SqliteRow) -> Result<TaskRun> {
    let status: String = row.try_get("status")?;
    let routes = json_col(row, "routes")?
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("routes: {e}")))?;
    let publish = json_col(row, "publish")?
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("publish: {e}")))?;
    Ok(TaskRun {
        execution_id: row.try_get("execution_id")?,
        task: row.try_get("task")?,
        item: row.try_get("item")?,
        attempt: row.try_get("attempt")?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("task status {status}")))?,
        seq: row.try_get("seq")?,
        input: json_col(row, "input")?,
        result: json_col(row, "result")?,
        error: json_col(row, "error")?,
        routes,
        publish,
        reused: row.try_get::<i64, _>("reused")? != 0,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
    })
}

/// Appends an upsert of `runs` (one statement, however many rows).
fn push_task_runs(qb: &mut QueryBuilder<'_, Sqlite>, runs: &[TaskRun]) {
    qb.push(format!("INSERT INTO task_runs ({TASK_RUN_COLUMNS}) "));
    qb.push_values(runs, |mut b, r| {
        b.push_bind(r.execution_id.clone())
            .push_bind(r.task.clone())
            .push_bind(r.item)
            .push_bind(r.attempt)
            .push_bind(r.status.as_str())
            .push_bind(r.seq)
            .push_bind(to_text(&r.input))
            .push_bind(to_text(&r.result))
            .push_bind(to_text(&r.error))
            .push_bind(to_text(&r.routes))
            .push_bind(to_text(&r.publish))
            .push_bind(i64::from(r.reused))
            .push_bind(r.started_at.clone())
            .push_bind(r.finished_at.clone())
            .push_bind(r.duration_ms);
    });
    // A finished row is never turned back into a running one.
    qb.push(
        " ON CONFLICT (execution_id, task, item, attempt) DO UPDATE SET \
         status = excluded.status, seq = COALESCE(excluded.seq, task_runs.seq), \
         input = COALESCE(excluded.input, task_runs.input), result = excluded.result, \
         error = excluded.error, routes = excluded.routes, publish = excluded.publish, \
         reused = excluded.reused, started_at = COALESCE(excluded.started_at, task_runs.started_at), \
         finished_at = excluded.finished_at, duration_ms = excluded.duration_ms \
         WHERE task_runs.status = 'running' OR excluded.status <> 'running'",
    );
}

impl SqliteStore {
    /// Opens (creating the file and its folder if needed) and migrates.
    ///
    /// # Errors
    /// The file cannot be created or opened, or migration fails.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut lock_path: Option<String> = None;
        if !memory {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
            lock_path = Some(format!("{path}.migrate-lock"));
        }
        // Two processes opening a new database at once must not both create its tables (nor
        // race to switch it to WAL, which SQLite may refuse without waiting).
        let _lock = match &lock_path {
            Some(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(p)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                let f = tokio::task::spawn_blocking(move || f.lock().map(|()| f))
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("migration lock: {e}")))?
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                Some(f)
            }
            None => None,
        };
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists per connection: keep exactly one.
            .max_connections(if memory { 1 } else { 4 })
            .min_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(SqliteStore { pool })
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

#[async_trait]
impl Store for SqliteStore {
    async fn deploy_workflow(
        &self,
        name: &str,
        source: &str,
        path: Option<&str>,
    ) -> Result<WorkflowRecord> {
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(source.as_bytes()));
        let mut tx = self.pool.begin().await?;
        let latest = sqlx::query("SELECT id, version, source_hash FROM workflows WHERE name = ? ORDER BY version DESC LIMIT 1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = &latest
            && row.try_get::<String, _>("source_hash")? == hash
        {
            let id: i64 = row.try_get("id")?;
            tx.commit().await?;
            return self.workflow_by_id(id).await;
        }
        let version = latest.map_or(Ok(0), |r| r.try_get::<i64, _>("version"))? + 1;
        let id = sqlx::query("INSERT INTO workflows (name, version, source, source_hash, path, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id")
            .bind(name)
            .bind(version)
            .bind(source)
            .bind(&hash)
            .bind(path)
            .bind(now_rfc3339())
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("id")?;
        tx.commit().await?;
        self.workflow_by_id(id).await
    }

    async fn workflow(&self, name: &str, version: Option<i64>) -> Result<WorkflowRecord> {
        let row = match version {
            Some(v) => {
                sqlx::query("SELECT * FROM workflows WHERE name = ? AND version = ?")
                    .bind(name)
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM workflows WHERE name = ? ORDER BY version DESC LIMIT 1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        let row = row.ok_or_else(|| StoreError::not_found(format!("workflow `{name}`")))?;
        workflow_from_row(&row)
    }

    async fn workflow_by_id(&self, id: i64) -> Result<WorkflowRecord> {
        let row = sqlx::query("SELECT * FROM workflows WHERE id = ?")
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

    async fn create_execution(&self, e: &NewExecution, runs: &[TaskRun]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_execution(&mut tx, e, None).await?;
        if !runs.is_empty() {
            let mut qb = QueryBuilder::new("");
            push_task_runs(&mut qb, runs);
            qb.build().execute(&mut *tx).await?;
        }
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
        let done = sqlx::query(
            "UPDATE executions SET owner = ?, lease_until_ms = ?, status = 'running', started_at = COALESCE(started_at, ?) \
             WHERE id = ? AND status IN ('pending', 'running') \
             AND (owner IS NULL OR owner = ? OR lease_until_ms < ? OR owner = ?)",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now_rfc3339())
        .bind(id)
        .bind(owner)
        .bind(now_ms)
        .bind(stale_owner.unwrap_or(""))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn renew_leases(&self, owner: &str, lease_until_ms: i64) -> Result<u64> {
        let done = sqlx::query("UPDATE executions SET lease_until_ms = ? WHERE owner = ? AND status IN ('pending', 'running')")
            .bind(lease_until_ms)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn cancel_requests(&self, owner: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM executions WHERE owner = ? AND cancel_requested = 1 AND status IN ('pending', 'running')")
            .bind(owner)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(StoreError::from))
            .collect()
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
        let mut qb = QueryBuilder::new("");
        push_task_runs(&mut qb, runs);
        qb.build().execute(&self.pool).await?;
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
        sqlx::query("UPDATE executions SET status = ?, output = ?, error = ?, finished_at = ?, owner = NULL, lease_until_ms = NULL WHERE id = ?")
            .bind(status.as_str())
            .bind(output.map(Value::to_string))
            .bind(error)
            .bind(finished_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn execution(&self, id: &str) -> Result<ExecutionRecord> {
        // Users may type the first characters of an id, as with git commits.
        let sql = if id.len() >= 36 {
            format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?")
        } else {
            format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id LIKE ? || '%' LIMIT 2")
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
            "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE execution_id = ? \
             ORDER BY COALESCE(started_at, finished_at), attempt, task, item"
        ))
        .bind(execution_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_run_from_row).collect()
    }

    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE 1 = 1"
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
        qb.push(" ORDER BY created_at DESC, id LIMIT ")
            .push_bind(filter.limit.unwrap_or(50))
            .push(" OFFSET ")
            .push_bind(filter.offset.unwrap_or(0).max(0));
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(execution_from_row).collect()
    }

    async fn children(&self, id: &str) -> Result<Vec<ExecutionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE parent_id = ? ORDER BY created_at"
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
            "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL SELECT e.id FROM executions e JOIN tree t ON e.parent_id = t.id) \
             UPDATE executions SET cancel_requested = 1 WHERE id IN (SELECT id FROM tree) AND status IN ('pending', 'running')",
        )
        .bind(&exec.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn purge(&self, finished_before: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM executions WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN ('succeeded', 'failed', 'cancelled')")
            .bind(finished_before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn ensure_setting(&self, key: &str, value: &str) -> Result<(String, bool)> {
        let inserted = sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok((stored, inserted))
    }

    async fn ensure_trigger_secret(
        &self,
        workflow: &str,
        trigger: &str,
        secret: &str,
    ) -> Result<String> {
        let now = jiff::Timestamp::now().to_string();
        sqlx::query("INSERT INTO trigger_secrets (workflow, trigger, secret, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (workflow, trigger) DO NOTHING")
            .bind(workflow)
            .bind(trigger)
            .bind(secret)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar(
            "SELECT secret FROM trigger_secrets WHERE workflow = ? AND trigger = ?",
        )
        .bind(workflow)
        .bind(trigger)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn record_event(
        &self,
        event: &TriggerEvent,
        executions: &[NewExecution],
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query("INSERT INTO trigger_events (workflow, trigger, kind, org, outcome, reason, status, execution_id, dedupe_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(&event.workflow)
            .bind(&event.trigger)
            .bind(&event.kind)
            .bind(&event.org)
            .bind(&event.outcome)
            .bind(&event.reason)
            .bind(event.status)
            .bind(executions.first().map(|e| &e.id).or(event.execution_id.as_ref()))
            .bind(&event.dedupe_key)
            .bind(&event.created_at)
            .execute(&mut *tx)
            .await?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        let event_id = inserted.last_insert_rowid();
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
        let rows = sqlx::query("SELECT id, workflow, trigger, kind, org, outcome, reason, status, execution_id, dedupe_key, created_at FROM trigger_events WHERE workflow = ? AND trigger = ? ORDER BY id DESC LIMIT ?")
            .bind(workflow)
            .bind(trigger)
            .bind(limit)
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
        Ok(sqlx::query_scalar("SELECT MAX(dedupe_key) FROM trigger_events WHERE workflow = ? AND trigger = ? AND substr(dedupe_key, 1, length(?)) = ?")
            .bind(workflow)
            .bind(trigger)
            .bind(prefix)
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
        // Queued first, oldest first; then running ones whose owner stopped renewing.
        Ok(sqlx::query_scalar(
            "UPDATE executions SET owner = ?, lease_until_ms = ?, status = 'running', started_at = COALESCE(started_at, ?) \
             WHERE id = COALESCE( \
               (SELECT id FROM executions WHERE status = 'pending' AND parent_id IS NULL ORDER BY created_at LIMIT 1), \
               (SELECT id FROM executions WHERE status = 'running' AND parent_id IS NULL AND lease_until_ms < ? ORDER BY created_at LIMIT 1)) \
             RETURNING id",
        )
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now_rfc3339())
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?)
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
        sqlx::query("INSERT INTO trigger_switches (workflow, trigger, enabled, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (workflow, trigger) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at")
            .bind(workflow)
            .bind(trigger)
            .bind(i64::from(enabled))
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
                    r.try_get::<i64, _>("enabled")? != 0,
                ))
            })
            .collect()
    }

    async fn save_autotask_webhook(&self, w: &AutotaskWebhook) -> Result<()> {
        sqlx::query("INSERT INTO autotask_webhooks (workflow, trigger, org, integration, entity, webhook_id, guid, secret, url, config_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (workflow, trigger, org) DO UPDATE SET integration = excluded.integration, entity = excluded.entity, webhook_id = excluded.webhook_id, guid = excluded.guid, secret = excluded.secret, url = excluded.url, config_hash = excluded.config_hash, created_at = excluded.created_at")
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
        sqlx::query("DELETE FROM autotask_webhooks WHERE workflow = ? AND trigger = ? AND org = ?")
            .bind(workflow)
            .bind(trigger)
            .bind(org)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Inserts an execution: running when it has an owner, else queued (pending).
async fn insert_execution(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    e: &NewExecution,
    event_id: Option<i64>,
) -> Result<()> {
    let status = match (&e.error, &e.owner) {
        (Some(_), _) => "failed",
        (None, Some(_)) => "running",
        (None, None) => "pending",
    };
    let (owner, lease) = match &e.error {
        Some(_) => (None, None),
        None => (e.owner.as_ref(), e.lease_until_ms),
    };
    sqlx::query(&format!("INSERT INTO executions ({EXECUTION_COLUMNS}, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)"))
        .bind(&e.id)
        .bind(e.workflow.id)
        .bind(&e.workflow.name)
        .bind(e.workflow.version)
        .bind(status)
        .bind(&e.org)
        .bind(e.input.to_string())
        .bind(e.vars.to_string())
        .bind(e.trigger.to_string())
        .bind(&e.error)
        .bind(&e.parent_id)
        .bind(&e.parent_task)
        .bind(&e.rerun_of)
        .bind(owner)
        .bind(lease)
        .bind(&e.created_at)
        .bind((e.owner.is_some() || e.error.is_some()).then_some(&e.created_at))
        .bind(e.error.as_ref().map(|_| &e.created_at))
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn trigger_event_from_row(r: &SqliteRow) -> Result<TriggerEvent> {
    Ok(TriggerEvent {
        id: r.try_get("id")?,
        workflow: r.try_get("workflow")?,
        trigger: r.try_get("trigger")?,
        kind: r.try_get("kind")?,
        org: r.try_get("org")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        execution_id: r.try_get("execution_id")?,
        dedupe_key: r.try_get("dedupe_key")?,
        created_at: r.try_get("created_at")?,
    })
}

fn workflow_from_row(row: &SqliteRow) -> Result<WorkflowRecord> {
    Ok(WorkflowRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        source: row.try_get("source")?,
        path: row.try_get("path")?,
        created_at: row.try_get("created_at")?,
    })
}
