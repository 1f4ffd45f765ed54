//! Durable storage of workflows, executions and task runs.
//!
//! The executor talks only to the [`Store`] trait (one sub-trait per concern, see
//! [`prelude`]); each backend (SQLite, PostgreSQL) owns its migrations and is chosen from the
//! database URL by [`open`]. What the backends share — statements, method bodies, row
//! mapping — is written once in `shared.rs` and `rows.rs`.

mod pg_steps;
mod postgres;
mod rows;
mod shared;
mod sqlite;
mod sqlite_read;
mod sqlite_writer;
mod traits;

use std::fmt;

use serde::Serialize;
use serde_json::Value;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use traits::{
    CrateStore, ExecutionStore, LimitStore, OrgStore, QueueStore, SettingsStore, Store,
    TriggerStore, WorkflowStore,
};

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The database URL is not one weft understands.
    #[error(
        "unsupported database URL `{url}`: use sqlite://PATH or postgres://USER@HOST[:PORT]/DATABASE"
    )]
    UnsupportedUrl {
        /// The URL, with any password removed.
        url: String,
    },
    /// The store's configuration (besides its URL's scheme) is not usable.
    #[error("{0}")]
    Config(String),
    /// The database refused or failed.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("cannot migrate the database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored value is not what weft wrote.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The operation does not apply to the record's state.
    #[error("{0}")]
    Conflict(String),
}

/// Classification of [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// Not found.
    NotFound,
    /// Bad configuration.
    Config,
    /// The database failed.
    Database,
    /// Wrong state.
    Conflict,
    /// The database cannot be reached (down, restarting, connections exhausted): the
    /// operation did not happen and may be retried.
    Unavailable,
}

/// Did the database fail to answer at all (rather than refuse the statement)? The
/// connection-exception class (`08…`) and shutdowns (`57P01`–`57P03`) count, as do I/O
/// errors and an exhausted or closed pool.
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

impl StoreError {
    /// The kind of error.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::NotFound { .. } => StoreErrorKind::NotFound,
            StoreError::UnsupportedUrl { .. } | StoreError::Config(_) => StoreErrorKind::Config,
            StoreError::Database(e) if unreachable(e) => StoreErrorKind::Unavailable,
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Corrupt(_) => {
                StoreErrorKind::Database
            }
            StoreError::Conflict(_) => StoreErrorKind::Conflict,
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::not_found("record"),
            other => StoreError::Database(other),
        }
    }
}

/// An execution's end, as the backends' step writers store it (`finish_execution`).
#[derive(Debug)]
pub(crate) struct Ending {
    pub id: String,
    pub status: ExecStatus,
    /// The output, as JSON text.
    pub output: Option<String>,
    pub error: Option<String>,
    pub finished_at: String,
}

impl Ending {
    pub(crate) fn new(
        id: &str,
        status: ExecStatus,
        output: Option<&Value>,
        error: Option<&str>,
        finished_at: &str,
    ) -> Ending {
        Ending {
            id: id.to_string(),
            status,
            output: output.map(Value::to_string),
            error: error.map(str::to_string),
            finished_at: finished_at.to_string(),
        }
    }
}

/// The columns of `task_runs`, in the order every backend writes and reads them.
pub(crate) const TASK_RUN_COLUMNS: &str = "execution_id, task, item, attempt, status, seq, input, result, error, routes, publish, reused, started_at, finished_at, duration_ms";

/// What storing a task run again changes, after `INSERT INTO task_runs (…) VALUES …` on every
/// backend: a finished row is never turned back into a running one.
pub(crate) const TASK_RUN_UPSERT: &str = " ON CONFLICT (execution_id, task, item, attempt) DO UPDATE SET \
     status = excluded.status, seq = COALESCE(excluded.seq, task_runs.seq), \
     input = COALESCE(excluded.input, task_runs.input), result = excluded.result, \
     error = excluded.error, routes = excluded.routes, publish = excluded.publish, \
     reused = excluded.reused, started_at = COALESCE(excluded.started_at, task_runs.started_at), \
     finished_at = excluded.finished_at, duration_ms = excluded.duration_ms \
     WHERE task_runs.status = 'running' OR excluded.status <> 'running'";

/// How many executions one purge transaction deletes (with their task runs): small enough
/// that running executions barely wait for the write lock between batches.
pub(crate) const PURGE_BATCH: i64 = 200;

/// One purge batch: the oldest [`PURGE_BATCH`] finished executions before `finished_before`
/// in `scope` — the same statement for every backend.
pub(crate) fn purge_batch<'a, DB: sqlx::Database>(
    finished_before: &str,
    scope: &PurgeScope,
) -> sqlx::QueryBuilder<'a, DB>
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::new(
        "DELETE FROM executions WHERE id IN (SELECT id FROM executions WHERE finished_at IS NOT NULL AND status IN ('succeeded', 'failed', 'cancelled') AND finished_at < ",
    );
    qb.push_bind(finished_before.to_string());
    if let Some(org) = &scope.only {
        qb.push(" AND org = ").push_bind(org.clone());
    }
    for org in &scope.except {
        qb.push(" AND org <> ").push_bind(org.clone());
    }
    qb.push(" ORDER BY finished_at LIMIT ")
        .push_bind(PURGE_BATCH)
        .push(")");
    qb
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

// Both backends keep JSON as text and statuses by name; these convert, the same way for each.

/// A JSON value as stored (text).
pub(crate) fn json_to_text<T: Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref()
        .map(|v| serde_json::to_string(v).expect("JSON values serialize"))
}

/// A stored JSON text of column `col` back as a value.
pub(crate) fn json_from_text(col: &str, text: Option<String>) -> Result<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{col}: {e}"))))
        .transpose()
}

/// An execution status as stored.
pub(crate) fn parse_exec_status(s: &str) -> Result<ExecStatus> {
    ExecStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("execution status {s}")))
}

/// A task status as stored.
pub(crate) fn parse_task_status(s: &str) -> Result<TaskStatus> {
    TaskStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("task status {s}")))
}

/// A database URL fit to show: the password (if any) is dropped, the user kept.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The credentials end at the last `@` of the authority (passwords may hold `@`).
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// A deployed version of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowRecord {
    /// Row id; executions point at it.
    pub id: i64,
    /// Workflow name.
    pub name: String,
    /// 1, 2, … per name.
    pub version: i64,
    /// The YAML as deployed.
    pub source: String,
    /// Where it was deployed from, if from a file.
    pub path: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// A deployed version of a form file: the same shape as a workflow version.
pub type FormRecord = WorkflowRecord;

/// Where an execution is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecStatus {
    /// Created, not started.
    Pending,
    /// Running (or waiting to be resumed after a crash).
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Stopped by a cancel.
    Cancelled,
}

impl ExecStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecStatus::Pending => "pending",
            ExecStatus::Running => "running",
            ExecStatus::Succeeded => "succeeded",
            ExecStatus::Failed => "failed",
            ExecStatus::Cancelled => "cancelled",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ExecStatus::Pending,
            "running" => ExecStatus::Running,
            "succeeded" => ExecStatus::Succeeded,
            "failed" => ExecStatus::Failed,
            "cancelled" => ExecStatus::Cancelled,
            _ => return None,
        })
    }

    /// Has the execution ended?
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ExecStatus::Succeeded | ExecStatus::Failed | ExecStatus::Cancelled
        )
    }
}

impl fmt::Display for ExecStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a task run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Started, not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Never ran: no route to it fired.
    Skipped,
    /// Stopped by a cancel.
    Cancelled,
}

impl TaskStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => TaskStatus::Running,
            "succeeded" => TaskStatus::Succeeded,
            "failed" => TaskStatus::Failed,
            "skipped" => TaskStatus::Skipped,
            "cancelled" => TaskStatus::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An execution to create.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// Its id (a UUID).
    pub id: String,
    /// The workflow version it runs.
    pub workflow: WorkflowRecord,
    /// The org it runs for.
    pub org: String,
    /// Inputs after defaults (secrets redacted).
    pub input: Value,
    /// The computed `vars` (secrets redacted).
    pub vars: Value,
    /// The event that started it.
    pub trigger: Value,
    /// The parent execution, for sub-workflows.
    pub parent_id: Option<String>,
    /// The parent's task that runs it.
    pub parent_task: Option<String>,
    /// The execution this one reruns.
    pub rerun_of: Option<String>,
    /// The process that runs it; `None` queues it (status pending) for any worker. With a
    /// `concurrency_limit` it is still created pending: the owner holds it (no other worker
    /// takes it while the lease lasts) and starts it once its group has room.
    pub owner: Option<String>,
    /// Until when the owner holds it (unix ms).
    pub lease_until_ms: Option<i64>,
    /// Set when the execution failed before it could start (its `vars` could not be
    /// computed): it is stored as failed.
    pub error: Option<String>,
    /// The rendered `concurrency.key` (`""` without a key); `None` without a limit.
    pub concurrency_key: Option<String>,
    /// At most this many executions of the workflow with the same key run at once; `None`:
    /// unlimited.
    pub concurrency_limit: Option<i64>,
    /// The secret inputs and secret-derived vars (`{"input": {...}, "vars": {...}}`), sealed
    /// with the installation's key: what a resume in another process needs and `input`/`vars`
    /// hold redacted.
    pub sealed: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl NewExecution {
    /// The status it is stored with: failed when it could not start, running when its owner
    /// runs it at once, else pending (queued, or held until its concurrency group has room).
    pub(crate) fn initial_status(&self) -> ExecStatus {
        match (&self.error, &self.owner) {
            (Some(_), _) => ExecStatus::Failed,
            (None, Some(_)) if self.concurrency_limit.is_none() => ExecStatus::Running,
            (None, _) => ExecStatus::Pending,
        }
    }
}

/// A stored execution.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionRecord {
    /// UUID.
    pub id: String,
    /// The workflow version's row id.
    pub workflow_id: i64,
    /// Workflow name.
    pub workflow_name: String,
    /// Workflow version.
    pub workflow_version: i64,
    /// Status.
    pub status: ExecStatus,
    /// Org.
    pub org: String,
    /// Inputs (redacted).
    pub input: Value,
    /// Computed vars (redacted).
    pub vars: Option<Value>,
    /// The triggering event.
    pub trigger: Value,
    /// Output, once succeeded.
    pub output: Option<Value>,
    /// Error message, once failed.
    pub error: Option<String>,
    /// Parent execution.
    pub parent_id: Option<String>,
    /// Parent task.
    pub parent_task: Option<String>,
    /// The execution this reruns.
    pub rerun_of: Option<String>,
    /// A cancel was requested.
    pub cancel_requested: bool,
    /// The process holding it; once it ended, the process that finished it (its lease is
    /// cleared).
    pub owner: Option<String>,
    /// Until when (unix ms).
    pub lease_until_ms: Option<i64>,
    /// The concurrency group's key (`""` without a key); `None` without a limit.
    pub concurrency_key: Option<String>,
    /// The concurrency limit it was created under; `None`: unlimited.
    pub concurrency_limit: Option<i64>,
    /// Sealed secret inputs and vars (see [`NewExecution::sealed`]); never serialized.
    #[serde(skip)]
    pub sealed: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
}

/// One attempt of a task (or of one item of a with.items task), or a task's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRun {
    /// Execution id.
    pub execution_id: String,
    /// Task name.
    pub task: String,
    /// -1 for the task itself, the item index for a with.items item.
    pub item: i64,
    /// 1-based attempt; 0 for a with.items task's outcome row.
    pub attempt: i64,
    /// Status.
    pub status: TaskStatus,
    /// Completion order of outcomes; `None` for attempts that are not the outcome.
    pub seq: Option<i64>,
    /// Rendered input (secrets redacted).
    pub input: Option<Value>,
    /// The result.
    pub result: Option<Value>,
    /// The error (`{message, kind, data}`).
    pub error: Option<Value>,
    /// Indexes of the routes that fired (outcomes only).
    pub routes: Option<Vec<usize>>,
    /// Values published by those routes, in order (outcomes only).
    pub publish: Option<Vec<(String, Value)>>,
    /// Copied from an earlier execution by a rerun.
    pub reused: bool,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: Option<i64>,
}

impl TaskRun {
    /// Is this row a task's outcome (what resume replays)?
    pub fn is_outcome(&self) -> bool {
        self.item == -1 && self.seq.is_some()
    }
}

/// Whose executions a purge deletes.
#[derive(Debug, Clone, Default)]
pub struct PurgeScope {
    /// Only this org's.
    pub only: Option<String>,
    /// Not these orgs' (they have retention periods of their own).
    pub except: Vec<String>,
}

/// Filters for listing executions.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only this status.
    pub status: Option<ExecStatus>,
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only this org.
    pub org: Option<String>,
    /// Only top-level executions (no sub-workflows).
    pub top_level_only: bool,
    /// At most this many (newest first).
    pub limit: Option<i64>,
    /// Skip this many first (paging).
    pub offset: Option<i64>,
    /// Only those created at or after this instant (RFC 3339, UTC as weft writes it).
    pub created_after: Option<String>,
}

/// The secret a webhook trigger demands (`x-weft-secret`) from one org's sender. Both
/// secrets are sealed ([`crate::secrets::SecretBox`]): the store never holds them in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecretRecord {
    /// The workflow that declares the trigger.
    pub workflow: String,
    /// The trigger.
    pub trigger: String,
    /// The org whose sender holds it.
    pub org: String,
    /// The current secret, sealed.
    pub secret: String,
    /// The secret it replaced, sealed, while it is still accepted.
    pub previous: Option<String>,
    /// Until when (RFC 3339) the previous secret is accepted.
    pub previous_until: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// When it was last rotated (RFC 3339).
    pub rotated_at: Option<String>,
}

/// An org's standing link to a form (`/forms/{token}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormLinkRecord {
    /// The form.
    pub form: String,
    /// The org whose people fill it in.
    pub org: String,
    /// SHA-256 (hex) of the token: what a request is looked up by.
    #[serde(skip)]
    pub token_hash: String,
    /// The token, sealed.
    #[serde(skip)]
    pub token: String,
    /// 1, then one more per rotation.
    pub generation: i64,
    /// A disabled link answers "not found".
    pub enabled: bool,
    /// After this (RFC 3339) the link answers "expired".
    pub expires_at: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// When it was last rotated (RFC 3339).
    pub rotated_at: Option<String>,
}

/// An accepted form submission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormSubmission {
    /// Its id.
    pub id: String,
    /// The form.
    pub form: String,
    /// The form version it was checked against.
    pub form_version: i64,
    /// The org whose link it came through.
    pub org: String,
    /// `standing` (the org's link), or `signed:NONCE` / `single_use:NONCE` (the signed link
    /// it used).
    pub link: String,
    /// The values, secret fields as `***`.
    pub values: Value,
    /// The executions it started.
    pub execution_ids: Vec<String>,
    /// RFC 3339.
    pub submitted_at: String,
}

/// Something that reached a trigger — a webhook request, a cron slot, an Autotask callout —
/// recorded with what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriggerEvent {
    /// Row id (0 before it is recorded).
    pub id: i64,
    /// The workflow that declares the trigger.
    pub workflow: String,
    /// The trigger's name.
    pub trigger: String,
    /// `webhook`, `cron` or `autotask`.
    pub kind: String,
    /// The org it was for (the URL's, the trigger's, the mapped company's).
    pub org: String,
    /// `accepted`, `rejected`, `filtered` (criteria not met) or `duplicate`.
    pub outcome: String,
    /// Why it was rejected or filtered.
    pub reason: Option<String>,
    /// The HTTP status answered (0 for cron).
    pub status: i64,
    /// The (first) execution it started.
    pub execution_id: Option<String>,
    /// Unique per trigger when set: a second event with the same key starts nothing
    /// (`cron:<slot>`, `autotask:<guid>:<id>:<sequence>`).
    pub dedupe_key: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl TriggerEvent {
    /// An event of `kind` for a workflow's trigger, now, not yet decided (`accepted`, 202).
    pub fn new(workflow: &str, trigger: &str, kind: &str, org: &str) -> TriggerEvent {
        TriggerEvent {
            id: 0,
            workflow: workflow.into(),
            trigger: trigger.into(),
            kind: kind.into(),
            org: org.into(),
            outcome: "accepted".into(),
            reason: None,
            status: 202,
            execution_id: None,
            dedupe_key: None,
            created_at: crate::action::now_rfc3339(),
        }
    }
}

/// An Autotask webhook weft registered for a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutotaskWebhook {
    /// The workflow that declares the trigger.
    pub workflow: String,
    /// The trigger's name.
    pub trigger: String,
    /// The org whose Autotask integration it was registered with.
    pub org: String,
    /// The integration instance (`None`: the org's default); it is deleted through the same.
    pub integration: Option<String>,
    /// The webhook entity (`TicketWebhooks` …).
    pub entity: String,
    /// The webhook's id in Autotask.
    pub webhook_id: i64,
    /// Its GUID (callouts carry it).
    pub guid: Option<String>,
    /// The key callouts are signed with. Never shown.
    #[serde(skip)]
    pub secret: String,
    /// Where Autotask sends callouts.
    pub url: String,
    /// A hash of what was registered (events, fields, URL): a change re-registers.
    pub config_hash: String,
    /// RFC 3339.
    pub created_at: String,
}

/// An organization: the MSP (no parent) or a client below it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgRecord {
    /// Stable id (a slug of the name at creation).
    pub id: String,
    /// Display name (unique, case-insensitively).
    pub name: String,
    /// The parent org; `None` for the root.
    pub parent_id: Option<String>,
    /// Tags (`vip`, `healthcare` …).
    pub tags: Vec<String>,
    /// Attributes the PSA sync keeps (company fields).
    pub attributes: Value,
    /// False once its PSA company was deactivated or deleted.
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// An org variable as stored: a secret one's value is sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgVar {
    /// The org.
    pub org_id: String,
    /// Its name.
    pub key: String,
    /// The value (JSON text), sealed when `secret`.
    #[serde(skip)]
    pub value: String,
    /// Secret variables are sealed at rest and shown as `***`.
    pub secret: bool,
}

/// An integration instance of an org, as stored (secrets sealed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntegrationRecord {
    /// The org it belongs to.
    pub org_id: String,
    /// `autotask`, `openai`, `teams`, `slack`, `http` …
    pub kind: String,
    /// Instance name (`default` unless named).
    pub name: String,
    /// Non-secret settings.
    pub settings: Value,
    /// The secret settings as one sealed JSON object.
    #[serde(skip)]
    pub secrets: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// An org linked to an external record (an Autotask company).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgMapping {
    /// The org.
    pub org_id: String,
    /// The integration kind (`autotask`).
    pub kind: String,
    /// The external id (company id).
    pub external_id: String,
    /// The external name when linked.
    pub external_name: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// A record the PSA sync keeps in weft's directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectoryRecord {
    /// `autotask`.
    pub source: String,
    /// `company`, `user`, `contact`, `configuration`, `location`.
    pub kind: String,
    /// The PSA's id.
    pub external_id: String,
    /// The org it belongs to (companies: the org they map to).
    pub org_id: Option<String>,
    /// Display name.
    pub name: String,
    /// The fields weft keeps.
    pub data: Value,
    /// False once deactivated or deleted in the PSA (records are never deleted).
    pub active: bool,
    /// `matched`, `created`, `excluded` or `pending`.
    pub state: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// One run of a directory sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncRun {
    /// Row id.
    pub id: i64,
    /// `autotask`.
    pub source: String,
    /// The org whose integration was synced.
    pub org_id: String,
    /// `preview` or `apply`.
    pub mode: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, once finished.
    pub finished_at: Option<String>,
    /// Per entity kind: created, matched, excluded, updated, deactivated, skipped.
    pub counts: Value,
    /// Problems met (records skipped and why, failed calls).
    pub errors: Value,
}

/// A crate installed for an organization.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrateInstall {
    /// The crate's name.
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// The org it was installed for.
    pub org: String,
    /// The installed version.
    pub version: String,
    /// The parameters given (defaults not included).
    pub params: Value,
    /// The triggers' `run_for` orgs (empty: the install's org).
    pub run_for: Value,
    /// Were its triggers enabled at install?
    pub enabled: bool,
    /// Left alone by upgrades (edited locally).
    pub detached: bool,
    /// Where it was installed from (a folder or archive).
    pub source: Option<String>,
    /// The workflows deployed: `[{file, name, triggers: [...]}]`.
    pub workflows: Value,
    /// RFC 3339.
    pub installed_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// The store's traits, to bring into scope where a concrete store's methods are called (a
/// `dyn Store` answers them without).
pub mod prelude {
    pub use super::traits::{
        CrateStore, ExecutionStore, LimitStore, OrgStore, QueueStore, SettingsStore, Store,
        TriggerStore, WorkflowStore,
    };
}

/// Opens the store a URL names (`sqlite://PATH`, `sqlite::memory:`,
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, also spelled `postgresql://`), creating
/// and migrating it. See [`PostgresStore::open`] for choosing a PostgreSQL schema.
///
/// # Errors
/// Unsupported URLs, unreachable databases, failed migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(std::sync::Arc::new(PostgresStore::open(url).await?));
    }
    Err(StoreError::UnsupportedUrl {
        url: redact_url(url),
    })
}

#[cfg(test)]
mod tests;
