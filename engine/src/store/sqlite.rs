//! The SQLite backend: one file, WAL journal, created and migrated on first use.
//!
//! `synchronous = NORMAL` in WAL mode: a committed step survives the process being killed
//! (the guarantee weft's resume relies on); only an OS crash or power loss may lose the last
//! few commits.
//!
//! Most of it is the store core (`shared.rs`); what is SQLite's own: opening, claiming under
//! SQLite's single writer, and the step writer for task runs and execution ends.

use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row};

use super::rows::{
    execution_from_row, form_link_from_row, form_submission_from_row, json_col, org_from_row,
    task_run_from_row, trigger_event_from_row, webhook_secret_from_row, workflow_from_row,
};
use super::shared::{
    self, EXECUTION_COLUMNS, ORG_COLUMNS, Versioned, WEBHOOK_SECRET_COLUMNS, fk_not_found,
    push_task_runs,
};
use super::*;
use crate::action::now_rfc3339;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Step outcomes and execution ends, group-committed on their own connection (none for
    /// an in-memory database, which exists only on the pool's one connection).
    writer: Option<super::sqlite_writer::Writer>,
}

/// An execution's end (status, output, error, finished_at, id): the pool's and the step
/// writer's statement.
pub(super) const FINISH_EXECUTION: &str = "UPDATE executions SET status = ?1, output = ?2, error = ?3, finished_at = ?4, lease_until_ms = NULL WHERE id = ?5";

// The spellings the store core leaves to each backend (see `shared.rs`).
type Db = sqlx::Sqlite;

/// Executions whose id starts with `$1` (`LIKE` ignores ASCII case).
const ID_PREFIX_MATCH: &str = "id LIKE $1 || '%'";

/// The first row of the cancel tree.
const CANCEL_ROOT: &str = "$1";

/// A `LIMIT` argument: SQLite takes a negative limit as none.
fn limit_arg(limit: i64) -> Option<i64> {
    Some(limit)
}

/// A message as stored: SQLite text holds anything.
fn stored_text(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

/// Nothing to take before a deploy chooses the next version.
async fn lock_versions(_: &mut SqliteConnection, _: Versioned, _: &str) -> Result<()> {
    Ok(())
}

shared::insert_execution_row!();

/// Inserts an execution: running when it has an owner, else queued (pending).
async fn insert_execution(
    conn: &mut SqliteConnection,
    e: &NewExecution,
    event_id: Option<i64>,
) -> Result<()> {
    insert_execution_row(conn, e, event_id).await.map(drop)
}

/// Upserts `runs` in one statement on `conn`.
async fn upsert_task_runs(conn: &mut SqliteConnection, runs: &[TaskRun]) -> Result<()> {
    if !runs.is_empty() {
        let mut qb = QueryBuilder::new("");
        push_task_runs(&mut qb, runs);
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating the file and its folder if needed) and migrates.
    ///
    /// # Errors
    /// The file cannot be created or opened, or migration fails.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut lock_path: Option<String> = None;
        let mut file: Option<String> = None;
        if !memory {
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
            file = Some(path.to_string());
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
            // An in-memory database exists per connection: keep exactly one.
            .max_connections(if memory { 1 } else { 4 })
            .min_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        let writer = file
            .as_deref()
            .map(super::sqlite_writer::Writer::start)
            .transpose()?;
        Ok(SqliteStore { pool, writer })
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

shared::store_helpers!(SqliteStore);

shared::workflow_store!(SqliteStore {});

shared::execution_store!(SqliteStore {
    async fn claim_execution(
        &self,
        id: &str,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
        stale_owner: Option<&str>,
    ) -> Result<bool> {
        // SQLite has one writer at a time: the count and the claim cannot be interleaved
        // with another claim.
        let done = sqlx::query(&format!(
            "UPDATE executions SET owner = ?, lease_until_ms = ?, status = 'running', started_at = COALESCE(started_at, ?) \
             WHERE id = ? AND status IN ('pending', 'running') \
             AND (owner IS NULL OR owner = ? OR lease_until_ms < ? OR owner = ?) \
             AND (status = 'running' OR concurrency_limit IS NULL OR {GROUP_RUNNING} < concurrency_limit)",
            GROUP_RUNNING = group_running("executions"),
        ))
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

    async fn record_task_runs(&self, runs: &[TaskRun]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        if let Some(w) = &self.writer {
            return w
                .write(super::sqlite_writer::Work::TaskRuns(runs.to_vec()))
                .await;
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
        if let Some(w) = &self.writer {
            return w
                .write(super::sqlite_writer::Work::Finish {
                    id: id.to_string(),
                    status,
                    output: output.map(Value::to_string),
                    error: error.map(str::to_string),
                    finished_at: finished_at.to_string(),
                })
                .await;
        }
        sqlx::query(FINISH_EXECUTION)
            .bind(status.as_str())
            .bind(output.map(Value::to_string))
            .bind(error)
            .bind(finished_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
});

shared::queue_store!(SqliteStore {
    async fn claim_next(
        &self,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<String>> {
        // Queued first, oldest first, passing over those whose concurrency group is full and
        // those held by a live owner; then running ones whose owner stopped renewing. One
        // statement under SQLite's single writer: no other claim comes between the count and
        // this one.
        Ok(sqlx::query_scalar(&format!(
            "UPDATE executions SET owner = ?, lease_until_ms = ?, status = 'running', started_at = COALESCE(started_at, ?) \
             WHERE id = COALESCE( \
               (SELECT id FROM executions e WHERE e.status = 'pending' AND e.parent_id IS NULL \
                AND (e.owner IS NULL OR e.lease_until_ms < ?) \
                AND (e.concurrency_limit IS NULL OR {GROUP_RUNNING} < e.concurrency_limit) \
                ORDER BY e.created_at LIMIT 1), \
               (SELECT id FROM executions WHERE status = 'running' AND parent_id IS NULL AND lease_until_ms < ? ORDER BY created_at LIMIT 1)) \
             RETURNING id",
            GROUP_RUNNING = group_running("e"),
        ))
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now_rfc3339())
        .bind(now_ms)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?)
    }
});

shared::trigger_store!(SqliteStore {});

shared::org_store!(SqliteStore {});

shared::crate_store!(SqliteStore {});

shared::settings_store!(SqliteStore {});
