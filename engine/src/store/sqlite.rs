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
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::rows::{
    execution_from_row, form_link_from_row, form_submission_from_row, json_col, org_from_row,
    task_run_from_row, trigger_event_from_row, webhook_secret_from_row, workflow_from_row,
};
use super::sqlite_writer::{Work, Written};
use super::*;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The execution path's writes, group-committed on their own connection.
    writer: super::sqlite_writer::Writer,
    /// The execution path's reads, on connections of their own.
    readers: std::sync::Arc<super::sqlite_read::Readers>,
    /// The file behind a `sqlite::memory:` store, removed with its last handle.
    _scratch: Option<std::sync::Arc<Scratch>>,
}

/// A database file that lives as long as the store: what `sqlite::memory:` opens, so that an
/// ephemeral store works exactly as a file does (its writer and readers have their own
/// connections, which an in-memory database cannot share).
#[derive(Debug)]
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".migrate-lock"] {
            let mut name = self.0.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

/// An execution's end (status, output, error, finished_at, id).
pub(super) const FINISH_EXECUTION: &str = "UPDATE executions SET status = ?1, output = ?2, error = ?3, finished_at = ?4, lease_until_ms = NULL WHERE id = ?5";

/// A trigger event (workflow, trigger, kind, org, outcome, reason, status, execution_id,
/// dedupe_key, created_at); nothing for a dedupe key seen before.
pub(super) const INSERT_EVENT: &str = "INSERT INTO trigger_events (workflow, trigger, kind, org, outcome, reason, status, execution_id, dedupe_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING";

/// A new execution (the columns of `EXECUTION_COLUMNS` but output and cancel_requested, then
/// event_id).
pub(super) static INSERT_EXECUTION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO executions ({EXECUTION_COLUMNS}, event_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11, ?12, ?13, 0, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
    )
});

/// The next execution from the queue (owner, lease_until_ms, now, now_ms): queued first,
/// oldest first, passing over those whose concurrency group is full and those held by a live
/// owner; then running ones whose owner stopped renewing. One statement under SQLite's single
/// writer: no other claim comes between the count and this one.
pub(super) static CLAIM_NEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE executions SET owner = ?1, lease_until_ms = ?2, status = 'running', started_at = COALESCE(started_at, ?3) \
         WHERE id = COALESCE( \
           (SELECT id FROM executions e WHERE e.status = 'pending' AND e.parent_id IS NULL \
            AND (e.owner IS NULL OR e.lease_until_ms < ?4) \
            AND (e.concurrency_limit IS NULL OR {GROUP_RUNNING} < e.concurrency_limit) \
            ORDER BY e.created_at LIMIT 1), \
           (SELECT id FROM executions WHERE status = 'running' AND parent_id IS NULL AND lease_until_ms < ?4 ORDER BY created_at LIMIT 1)) \
         RETURNING id",
        GROUP_RUNNING = group_running("e"),
    )
});

/// One execution (owner, lease_until_ms, now, id, now_ms, stale_owner): SQLite has one writer
/// at a time, so the count and the claim cannot be interleaved with another claim.
pub(super) static CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE executions SET owner = ?1, lease_until_ms = ?2, status = 'running', started_at = COALESCE(started_at, ?3) \
         WHERE id = ?4 AND status IN ('pending', 'running') \
         AND (owner IS NULL OR owner = ?1 OR lease_until_ms < ?5 OR owner = ?6) \
         AND (status = 'running' OR concurrency_limit IS NULL OR {GROUP_RUNNING} < concurrency_limit)",
        GROUP_RUNNING = group_running("executions"),
    )
});

const EXECUTION_COLUMNS: &str = "id, workflow_id, workflow_name, workflow_version, status, org, input, vars, trigger, output, error, parent_id, parent_task, rerun_of, cancel_requested, owner, lease_until_ms, created_at, started_at, finished_at, concurrency_key, concurrency_limit, sealed";
const WEBHOOK_SECRET_COLUMNS: &str =
    "workflow, trigger, org, secret, previous, previous_until, created_at, rotated_at";

use crate::action::now_rfc3339;

/// An execution by its whole id, and by the first characters of it.
static FIND_EXECUTION: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
    (
        format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1"),
        format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id LIKE ?1 || '%' LIMIT 2"),
    )
});

/// An execution's task runs, in the order they happened.
static TASK_RUNS_OF: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE execution_id = ?1 \
         ORDER BY COALESCE(started_at, finished_at), attempt, task, item"
    )
});

/// An org by id, or else by name (any case).
static ORG_BY_ID_OR_NAME: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {ORG_COLUMNS} FROM orgs WHERE id = ?1 OR lower(name) = lower(?2) ORDER BY id = ?1 DESC LIMIT 1"
    )
});

/// Every org, parents before their children, then by name.
static ORG_TREE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH RECURSIVE tree(id, depth) AS (SELECT id, 0 FROM orgs WHERE parent_id IS NULL \
         UNION ALL SELECT o.id, t.depth + 1 FROM orgs o JOIN tree t ON o.parent_id = t.id) \
         SELECT {ORG_COLUMNS} FROM orgs JOIN tree USING (id) ORDER BY tree.depth, lower(orgs.name)"
    )
});

impl SqliteStore {
    /// One integer.
    fn scalar(&self, sql: &str) -> Result<i64> {
        self.readers
            .row(sql, [], |r| {
                r.get::<_, i64>(0)
                    .map_err(|e| super::sqlite_read::lite("reading", &e))
            })?
            .ok_or_else(|| StoreError::not_found("row"))
    }

    /// Mappings whose `column` (`kind` or `org_id`) is `value`.
    async fn mappings_where(&self, column: &str, value: &str) -> Result<Vec<OrgMapping>> {
        let rows = sqlx::query(&format!("SELECT org_id, kind, external_id, external_name, created_at FROM org_mappings WHERE {column} = ? ORDER BY org_id, kind"))
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

    /// Opens (creating the file and its folder if needed) and migrates.
    ///
    /// # Errors
    /// The file cannot be created or opened, or migration fails.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let scratch = memory.then(|| {
            std::sync::Arc::new(Scratch(std::env::temp_dir().join(format!(
                "weft-memory-{}-{}.db",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ))))
        });
        let url = match &scratch {
            Some(s) => format!("sqlite://{}", s.0.display()),
            None => url.to_string(),
        };
        let url = url.as_str();
        let lock_path: Option<String>;
        let file: String;
        {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                // Created owner-only (0700); an existing folder is left as it is.
                crate::secrets::create_private_dir(parent)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
            owner_only_database(path).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            lock_path = Some(format!("{path}.migrate-lock"));
            file = path.to_string();
        }
        // Two processes opening a new database at once must not both create its tables (nor
        // race to switch it to WAL, which SQLite may refuse without waiting).
        let _lock = match &lock_path {
            Some(p) => {
                let mut options = std::fs::OpenOptions::new();
                options.create(true).truncate(false).write(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let f = options
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
            .max_connections(4)
            .min_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        let writer = super::sqlite_writer::Writer::start(&file)?;
        let readers = std::sync::Arc::new(super::sqlite_read::Readers::new(&file));
        Ok(SqliteStore {
            pool,
            writer,
            readers,
            _scratch: scratch,
        })
    }
}

/// Makes the database file at `path` owner-only (0600 on unix) before SQLite opens it: the
/// database holds sealed secrets, webhook secrets and execution data. SQLite creates the
/// `-wal` and `-shm` files with the database file's permissions, so creating the file 0600
/// here (SQLite takes an empty file as a new database) covers all three. A database made by
/// an older weft or copied in with a looser mode is tightened, with its `-wal`/`-shm`/
/// `-journal` files, here, before anything more is written to it. A file weft may not chmod
/// (another user's) is reported and used as it is.
fn owner_only_database(path: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = format!("{path}{suffix}");
        if let Err(e) = crate::secrets::restrict_to_owner(std::path::Path::new(&file)) {
            tracing::warn!(file, "cannot make the database file owner-only: {e}");
        }
    }
    Ok(())
}

/// How many executions of the concurrency group of the row `outer` names are running.
fn group_running(outer: &str) -> String {
    format!(
        "(SELECT COUNT(*) FROM executions r WHERE r.status = 'running' \
         AND r.workflow_name = {outer}.workflow_name AND r.concurrency_key = {outer}.concurrency_key)"
    )
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

impl SqliteStore {
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
        let latest = sqlx::query(&format!("SELECT id, version, source_hash FROM {table} WHERE name = ? ORDER BY version DESC LIMIT 1"))
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
        let id: i64 = sqlx::query_scalar(&format!("INSERT INTO {table} (name, version, source, source_hash, path, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"))
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
impl Store for SqliteStore {
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
        let row = sqlx::query("SELECT * FROM forms WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        workflow_from_row(&row)
    }

    async fn form(&self, name: &str, version: Option<i64>) -> Result<FormRecord> {
        let row = match version {
            Some(v) => {
                sqlx::query("SELECT * FROM forms WHERE name = ? AND version = ?")
                    .bind(name)
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM forms WHERE name = ? ORDER BY version DESC LIMIT 1")
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
        let found = match version {
            Some(v) => self.readers.row(
                "SELECT * FROM workflows WHERE name = ?1 AND version = ?2",
                rusqlite::params![name, v],
                |r| workflow_from_row(r),
            )?,
            None => self.readers.row(
                "SELECT * FROM workflows WHERE name = ?1 ORDER BY version DESC LIMIT 1",
                [name],
                |r| workflow_from_row(r),
            )?,
        };
        found.ok_or_else(|| StoreError::not_found(format!("workflow `{name}`")))
    }

    async fn workflow_by_id(&self, id: i64) -> Result<WorkflowRecord> {
        self.readers
            .row("SELECT * FROM workflows WHERE id = ?1", [id], |r| {
                workflow_from_row(r)
            })?
            .ok_or_else(|| StoreError::not_found(format!("workflow version {id}")))
    }

    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>> {
        let rows = sqlx::query("SELECT w.* FROM workflows w WHERE w.version = (SELECT MAX(version) FROM workflows x WHERE x.name = w.name) ORDER BY w.name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn last_deploy_id(&self) -> Result<i64> {
        self.scalar("SELECT COALESCE(MAX(id), 0) FROM workflows")
    }

    async fn config_generation(&self) -> Result<i64> {
        self.scalar("SELECT n FROM config_generation WHERE id = 1")
    }

    async fn create_execution(&self, e: &NewExecution, runs: &[TaskRun]) -> Result<()> {
        self.writer
            .write(Work::Execution {
                execution: Box::new(e.clone()),
                runs: runs.to_vec(),
            })
            .await?;
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
        match self
            .writer
            .write(Work::Claim {
                id: id.to_string(),
                owner: owner.to_string(),
                lease_until_ms,
                now_ms,
                stale_owner: stale_owner.map(str::to_string),
                now: now_rfc3339(),
            })
            .await?
        {
            Written::Taken(taken) => Ok(taken),
            other => Err(unexpected(&other)),
        }
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
        self.writer.write(Work::TaskRuns(runs.to_vec())).await?;
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
        self.writer
            .write(Work::Finish {
                id: id.to_string(),
                status,
                output: output.map(Value::to_string),
                error: error.map(str::to_string),
                finished_at: finished_at.to_string(),
            })
            .await?;
        Ok(())
    }

    async fn execution(&self, id: &str) -> Result<ExecutionRecord> {
        // Users may type the first characters of an id, as with git commits.
        let sql = if id.len() >= 36 {
            FIND_EXECUTION.0.as_str()
        } else {
            FIND_EXECUTION.1.as_str()
        };
        let found = self.readers.rows(sql, [id], |r| execution_from_row(r))?;
        match <[ExecutionRecord; 1]>::try_from(found) {
            Ok([one]) => Ok(one),
            Err(found) if found.is_empty() => {
                Err(StoreError::not_found(format!("execution `{id}`")))
            }
            Err(_) => Err(StoreError::Conflict(format!(
                "`{id}` matches several executions; give more of the id"
            ))),
        }
    }

    async fn task_runs(&self, execution_id: &str) -> Result<Vec<TaskRun>> {
        self.readers
            .rows(&TASK_RUNS_OF, [execution_id], |r| task_run_from_row(r))
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
        if let Some(t) = &filter.created_after {
            qb.push(" AND created_at >= ").push_bind(t.clone());
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

    async fn purge(&self, finished_before: &str, scope: &PurgeScope) -> Result<u64> {
        // In batches, oldest first: each holds the write lock briefly, so running executions
        // keep committing their steps between them.
        let mut total = 0;
        loop {
            let mut qb = purge_batch::<Sqlite>(finished_before, scope);
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
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    async fn webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
    ) -> Result<Option<WebhookSecretRecord>> {
        sqlx::query(&format!(
            "SELECT {WEBHOOK_SECRET_COLUMNS} FROM webhook_secrets WHERE workflow = ? AND trigger = ? AND org = ?"
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
        let inserted = sqlx::query("INSERT INTO webhook_secrets (workflow, trigger, org, secret, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (workflow, trigger, org) DO NOTHING")
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
        sqlx::query("INSERT INTO webhook_secrets (workflow, trigger, org, secret, created_at, rotated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workflow, trigger, org) DO UPDATE SET previous = CASE WHEN ? IS NULL THEN NULL ELSE webhook_secrets.secret END, previous_until = ?, secret = excluded.secret, rotated_at = excluded.rotated_at")
                .bind(workflow)
                .bind(trigger)
                .bind(org)
                .bind(sealed)
                .bind(&now)
                .bind(&now)
                .bind(previous_until)
                .bind(previous_until)
                .execute(&self.pool)
                .await?;
        self.webhook_secret(workflow, trigger, org)
            .await?
            .ok_or_else(|| StoreError::Corrupt("webhook secret vanished".into()))
    }

    async fn form_link(&self, form: &str, org: &str) -> Result<Option<FormLinkRecord>> {
        sqlx::query("SELECT * FROM form_links WHERE form = ? AND org = ?")
            .bind(form)
            .bind(org)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| form_link_from_row(&r))
            .transpose()
    }

    async fn form_link_by_hash(&self, token_hash: &str) -> Result<Option<FormLinkRecord>> {
        sqlx::query("SELECT * FROM form_links WHERE token_hash = ?")
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
        let inserted = sqlx::query("INSERT INTO form_links (form, org, token_hash, token, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (form, org) DO NOTHING")
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
        sqlx::query("INSERT INTO form_links (form, org, token_hash, token, created_at, rotated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (form, org) DO UPDATE SET token_hash = excluded.token_hash, token = excluded.token, generation = form_links.generation + 1, rotated_at = excluded.rotated_at")
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
        sqlx::query("UPDATE form_links SET enabled = ?, expires_at = ? WHERE form = ? AND org = ?")
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
        let rows = sqlx::query("SELECT * FROM form_links WHERE (? IS NULL OR form = ?) AND (? IS NULL OR org = ?) ORDER BY form, org")
            .bind(form)
            .bind(form)
            .bind(org)
            .bind(org)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(form_link_from_row).collect()
    }

    async fn save_form_submission(&self, s: &FormSubmission) -> Result<()> {
        sqlx::query("INSERT INTO form_submissions (id, form, form_version, org, link, data, execution_ids, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET execution_ids = excluded.execution_ids")
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
        sqlx::query("SELECT * FROM form_submissions WHERE link = ?")
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
        let rows = sqlx::query("SELECT * FROM form_submissions WHERE (? IS NULL OR form = ?) AND (? IS NULL OR org = ?) ORDER BY submitted_at DESC, id DESC LIMIT ?")
            .bind(form)
            .bind(form)
            .bind(org)
            .bind(org)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(form_submission_from_row).collect()
    }

    async fn purge_trigger_events(&self, before: &str, scope: &PurgeScope) -> Result<u64> {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
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
        match self
            .writer
            .write(Work::Event {
                event: Box::new(event.clone()),
                executions: executions.to_vec(),
            })
            .await?
        {
            Written::Event(id) => Ok(id),
            other => Err(unexpected(&other)),
        }
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
        match self
            .writer
            .write(Work::ClaimNext {
                owner: owner.to_string(),
                lease_until_ms,
                now_ms,
                now: now_rfc3339(),
            })
            .await?
        {
            Written::Claimed(id) => Ok(id),
            other => Err(unexpected(&other)),
        }
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
        self.readers.rows(
            "SELECT workflow, trigger, enabled FROM trigger_switches",
            [],
            |r| {
                use super::rows::Columns;
                Ok((
                    r.try_get("workflow")?,
                    r.try_get("trigger")?,
                    r.try_get("enabled")?,
                ))
            },
        )
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

    async fn save_org(&self, o: &OrgRecord) -> Result<()> {
        let res = sqlx::query("INSERT INTO orgs (id, name, parent_id, tags, attributes, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id, tags = excluded.tags, attributes = excluded.attributes, active = excluded.active, updated_at = excluded.updated_at")
            .bind(&o.id)
            .bind(&o.name)
            .bind(&o.parent_id)
            .bind(serde_json::to_string(&o.tags).expect("strings serialize"))
            .bind(o.attributes.to_string())
            .bind(i64::from(o.active))
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
        self.readers
            .row(
                &ORG_BY_ID_OR_NAME,
                rusqlite::params![id_or_name, id_or_name.trim()],
                |r| org_from_row(r),
            )?
            .ok_or_else(|| StoreError::not_found(format!("organization `{id_or_name}`")))
    }

    async fn list_orgs(&self) -> Result<Vec<OrgRecord>> {
        self.readers.rows(&ORG_TREE, [], |r| org_from_row(r))
    }

    async fn delete_org(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orgs WHERE parent_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if children > 0 {
            return Err(StoreError::Conflict(format!(
                "organization `{id}` has {children} child organization(s): remove or move them first"
            )));
        }
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM executions WHERE org = ? AND status IN ('pending', 'running')",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if running > 0 {
            return Err(StoreError::Conflict(format!(
                "organization `{id}` has {running} execution(s) waiting or running: cancel them or let them finish first"
            )));
        }
        let done = sqlx::query("DELETE FROM orgs WHERE id = ?")
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
        sqlx::query("INSERT INTO org_vars (org_id, key, value, secret, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (org_id, key) DO UPDATE SET value = excluded.value, secret = excluded.secret, updated_at = excluded.updated_at")
            .bind(&v.org_id)
            .bind(&v.key)
            .bind(&v.value)
            .bind(i64::from(v.secret))
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await
            .map_err(|e| fk_not_found(e, "organization", &v.org_id))?;
        Ok(())
    }

    async fn delete_org_var(&self, org_id: &str, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM org_vars WHERE org_id = ? AND key = ?")
            .bind(org_id)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn org_vars(&self, org_id: &str) -> Result<Vec<OrgVar>> {
        let rows = sqlx::query(
            "SELECT org_id, key, value, secret FROM org_vars WHERE org_id = ? ORDER BY key",
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
                    secret: r.try_get::<i64, _>("secret")? != 0,
                })
            })
            .collect()
    }

    async fn save_integration(&self, i: &IntegrationRecord) -> Result<()> {
        sqlx::query("INSERT INTO integrations (org_id, kind, name, settings, secrets, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (org_id, kind, name) DO UPDATE SET settings = excluded.settings, secrets = excluded.secrets, updated_at = excluded.updated_at")
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
            sqlx::query("DELETE FROM integrations WHERE org_id = ? AND kind = ? AND name = ?")
                .bind(org_id)
                .bind(kind)
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn integrations(&self, org_id: Option<&str>) -> Result<Vec<IntegrationRecord>> {
        let rows = sqlx::query("SELECT org_id, kind, name, settings, secrets, created_at FROM integrations WHERE ? IS NULL OR org_id = ? ORDER BY org_id, kind, name")
            .bind(org_id)
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
        let res = sqlx::query("INSERT INTO org_mappings (org_id, kind, external_id, external_name, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (org_id, kind) DO UPDATE SET external_id = excluded.external_id, external_name = excluded.external_name, created_at = excluded.created_at")
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
        let done = sqlx::query("DELETE FROM org_mappings WHERE org_id = ? AND kind = ?")
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
        sqlx::query("INSERT INTO mapping_exclusions (kind, external_id, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, external_id) DO UPDATE SET name = COALESCE(excluded.name, mapping_exclusions.name)")
            .bind(kind)
            .bind(external_id)
            .bind(name)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn unexclude(&self, kind: &str, external_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM mapping_exclusions WHERE kind = ? AND external_id = ?")
            .bind(kind)
            .bind(external_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn exclusions(&self, kind: &str) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT external_id, name FROM mapping_exclusions WHERE kind = ? ORDER BY external_id",
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
            let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                "INSERT INTO directory (source, kind, external_id, org_id, name, data, active, state, updated_at) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.source.clone())
                    .push_bind(r.kind.clone())
                    .push_bind(r.external_id.clone())
                    .push_bind(r.org_id.clone())
                    .push_bind(r.name.clone())
                    .push_bind(r.data.to_string())
                    .push_bind(i64::from(r.active))
                    .push_bind(r.state.clone())
                    .push_bind(r.updated_at.clone());
            });
            qb.push(
                " ON CONFLICT (source, kind, external_id) DO UPDATE SET org_id = excluded.org_id, \
                 name = excluded.name, data = excluded.data, active = excluded.active, \
                 state = excluded.state, updated_at = excluded.updated_at",
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
        let rows = sqlx::query("SELECT source, kind, external_id, org_id, name, data, active, state, updated_at FROM directory WHERE source = ? AND kind = ? AND (? IS NULL OR org_id = ?) ORDER BY lower(name), external_id")
            .bind(source)
            .bind(kind)
            .bind(org_id)
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
                    active: r.try_get::<i64, _>("active")? != 0,
                    state: r.try_get("state")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn start_sync_run(&self, source: &str, org_id: &str, mode: &str) -> Result<i64> {
        let done = sqlx::query(
            "INSERT INTO sync_runs (source, org_id, mode, started_at) VALUES (?, ?, ?, ?)",
        )
        .bind(source)
        .bind(org_id)
        .bind(mode)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(done.last_insert_rowid())
    }

    async fn finish_sync_run(&self, id: i64, counts: &Value, errors: &Value) -> Result<()> {
        sqlx::query("UPDATE sync_runs SET finished_at = ?, counts = ?, errors = ? WHERE id = ?")
            .bind(now_rfc3339())
            .bind(counts.to_string())
            .bind(errors.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn sync_runs(&self, limit: i64) -> Result<Vec<SyncRun>> {
        let rows = sqlx::query("SELECT id, source, org_id, mode, started_at, finished_at, counts, errors FROM sync_runs ORDER BY id DESC LIMIT ?")
            .bind(limit)
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
        sqlx::query("INSERT INTO crate_installs (crate, org, version, params, run_for, enabled, detached, source, workflows, installed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (crate, org) DO UPDATE SET version = excluded.version, params = excluded.params, run_for = excluded.run_for, enabled = excluded.enabled, detached = excluded.detached, source = excluded.source, workflows = excluded.workflows, updated_at = excluded.updated_at")
            .bind(&i.crate_name)
            .bind(&i.org)
            .bind(&i.version)
            .bind(i.params.to_string())
            .bind(i.run_for.to_string())
            .bind(i.enabled as i64)
            .bind(i.detached as i64)
            .bind(&i.source)
            .bind(i.workflows.to_string())
            .bind(&i.installed_at)
            .bind(&i.updated_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn crate_installs(&self, org: Option<&str>) -> Result<Vec<CrateInstall>> {
        let rows = sqlx::query("SELECT crate, org, version, params, run_for, enabled, detached, source, workflows, installed_at, updated_at FROM crate_installs WHERE (? IS NULL OR org = ?) ORDER BY crate, org")
            .bind(org)
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
                    enabled: r.try_get::<i64, _>("enabled")? != 0,
                    detached: r.try_get::<i64, _>("detached")? != 0,
                    source: r.try_get("source")?,
                    workflows: json_col(r, "workflows")?.unwrap_or(Value::Null),
                    installed_at: r.try_get("installed_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn delete_crate_install(&self, crate_name: &str, org: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM crate_installs WHERE crate = ? AND org = ?")
            .bind(crate_name)
            .bind(org)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
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

/// A writer's answer of another kind than its work's (a bug).
fn unexpected(written: &Written) -> StoreError {
    StoreError::Corrupt(format!("the writer answered {written:?}"))
}
