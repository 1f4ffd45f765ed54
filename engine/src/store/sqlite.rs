//! The SQLite backend: one file, WAL journal, created and migrated on first use.
//!
//! `synchronous = NORMAL` in WAL mode: a committed step survives the process being killed
//! (the guarantee weft's resume relies on); only an OS crash or power loss may lose the last
//! few commits.
//!
//! Most of it is the store core (`shared.rs`); what is SQLite's own: opening, claiming under
//! SQLite's single writer, and the execution path on rusqlite — its writes group-committed by
//! the writer (`sqlite_writer.rs`: trigger events with their executions, claims, new
//! executions, task runs, execution ends), its reads on connections of their own
//! (`sqlite_read.rs`: the store core's `read_rows`).

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
    self, Arg, EXECUTION_COLUMNS, ORG_COLUMNS, Versioned, WEBHOOK_SECRET_COLUMNS, fk_not_found,
};
use super::sqlite_writer::{Work, Writer, Written};
use super::*;
use crate::action::now_rfc3339;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The execution path's writes, group-committed on their own connection.
    writer: Writer,
    /// The execution path's reads, on connections of their own.
    readers: std::sync::Arc<super::sqlite_read::Readers>,
    /// The file behind a `sqlite::memory:` store, removed with its last handle.
    _scratch: Option<std::sync::Arc<Scratch>>,
}

/// A database file that lives as long as the store: what `sqlite::memory:` opens, so that an
/// ephemeral store works exactly as a file does (its writer and readers have connections of
/// their own, which an in-memory database cannot share).
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

/// Nothing to take before a deploy chooses the next version.
async fn lock_versions(_: &mut SqliteConnection, _: Versioned, _: &str) -> Result<()> {
    Ok(())
}

/// A transaction that reads before it writes. It takes the write lock at `BEGIN`: a deferred
/// one that read first could not take it later once another process wrote (SQLite answers
/// "database is locked" at once, without waiting), and it serialises deploys as PostgreSQL's
/// advisory lock does.
impl SqliteStore {
    /// The pool the shared limits are written through (WAL with `synchronous = NORMAL`
    /// already commits without waiting for the disk).
    fn limits_pool(&self) -> &sqlx::Pool<Db> {
        &self.pool
    }
}

async fn begin_write(pool: &sqlx::Pool<Db>) -> Result<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

impl SqliteStore {
    /// The rows `sql` reads with `args`, mapped (the store core's reads go through here): on
    /// a reader, right on this thread.
    #[allow(clippy::unused_async)] // the store core awaits every backend's reads
    async fn read_rows<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let args: Vec<&dyn rusqlite::ToSql> = args
            .iter()
            .map(|a| match a {
                Arg::Text(t) => t as &dyn rusqlite::ToSql,
                Arg::Int(i) => i as &dyn rusqlite::ToSql,
            })
            .collect();
        self.readers.rows(sql, args.as_slice(), map)
    }

    /// The one integer `sql` reads.
    async fn read_int(&self, sql: &str) -> Result<i64> {
        self.read_rows(sql, &[], |r| {
            r.get::<_, i64>(0)
                .map_err(|e| super::sqlite_read::lite("reading", &e))
        })
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::not_found("row"))
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
        let lock_path: String;
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
            lock_path = format!("{path}.migrate-lock");
            file = path.to_string();
        }
        // Two processes opening a new database at once must not both create its tables (nor
        // race to switch it to WAL, which SQLite may refuse without waiting).
        let _lock = {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).truncate(false).write(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let f = options
                .open(&lock_path)
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            tokio::task::spawn_blocking(move || f.lock().map(|()| f))
                .await
                .map_err(|e| StoreError::Corrupt(format!("migration lock: {e}")))?
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?
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
        let writer = Writer::start(&file)?;
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

shared::store_helpers!(SqliteStore);

shared::workflow_store!(SqliteStore {});

shared::execution_store!(SqliteStore {
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

    async fn record_task_runs(&self, runs: &[TaskRun]) -> Result<()> {
        if !runs.is_empty() {
            self.writer.write(Work::TaskRuns(runs.to_vec())).await?;
        }
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
            .write(Work::Finish(Ending::new(
                id,
                status,
                output,
                error,
                finished_at,
            )))
            .await?;
        Ok(())
    }
});

shared::queue_store!(SqliteStore {
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
});

shared::trigger_store!(SqliteStore {});

shared::org_store!(SqliteStore {});

shared::crate_store!(SqliteStore {});

shared::settings_store!(SqliteStore {});
shared::limit_store!(SqliteStore);

/// A writer's answer of another kind than its work's (a bug).
fn unexpected(written: &Written) -> StoreError {
    StoreError::Corrupt(format!("the writer answered {written:?}"))
}
