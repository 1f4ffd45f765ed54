//! Durable storage of workflows, executions and task runs.
//!
//! The executor talks only to the [`Store`] trait; each backend (SQLite, PostgreSQL) owns its
//! migrations and is chosen from the database URL by [`open`].

mod postgres;
mod rows;
mod sqlite;
mod sqlite_read;
mod sqlite_writer;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

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

/// The storage seam.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a workflow's source as a new version, unless it equals the latest version.
    async fn deploy_workflow(
        &self,
        name: &str,
        source: &str,
        path: Option<&str>,
    ) -> Result<WorkflowRecord>;
    /// The latest version of a workflow, or a given version.
    async fn workflow(&self, name: &str, version: Option<i64>) -> Result<WorkflowRecord>;
    /// A workflow version by row id.
    async fn workflow_by_id(&self, id: i64) -> Result<WorkflowRecord>;
    /// Latest version of every workflow.
    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>>;
    /// Stores a form file's source as a new version, unless it equals the latest version
    /// (the same rule as [`Store::deploy_workflow`]).
    async fn deploy_form(&self, name: &str, source: &str, path: Option<&str>)
    -> Result<FormRecord>;
    /// The latest version of a form, or a given version.
    async fn form(&self, name: &str, version: Option<i64>) -> Result<FormRecord>;
    /// Latest version of every form, by name.
    async fn list_forms(&self) -> Result<Vec<FormRecord>>;
    /// The id of the newest stored workflow version (0 before any): deploying only ever adds
    /// rows, so it changes exactly when something is deployed, and callers may keep what they
    /// derived from [`Store::list_workflows`] until it does.
    async fn last_deploy_id(&self) -> Result<i64> {
        Ok(self
            .list_workflows()
            .await?
            .iter()
            .map(|w| w.id)
            .max()
            .unwrap_or(0))
    }

    /// A number that moves whenever configuration changes — orgs, their variables,
    /// integrations, mappings, directory, forms and form links, trigger switches, webhook
    /// secrets — by any process (the database raises it): what was derived from them may be
    /// kept until it moves.
    async fn config_generation(&self) -> Result<i64>;

    /// Creates an execution (status running, held by `owner`) with its first task runs.
    async fn create_execution(&self, e: &NewExecution, runs: &[TaskRun]) -> Result<()>;
    /// Takes over an execution whose lease expired or whose owner is `stale_owner` (or one
    /// `owner` already holds). A pending execution with a concurrency limit is only taken
    /// while fewer than its limit of its group run.
    async fn claim_execution(
        &self,
        id: &str,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
        stale_owner: Option<&str>,
    ) -> Result<bool>;
    /// Extends the leases of every unfinished execution `owner` holds.
    async fn renew_leases(&self, owner: &str, lease_until_ms: i64) -> Result<u64>;
    /// Unfinished executions held by `owner` whose cancel was requested.
    async fn cancel_requests(&self, owner: &str) -> Result<Vec<String>>;
    /// Executions that are not finished, oldest first.
    async fn unfinished_executions(&self) -> Result<Vec<ExecutionRecord>>;
    /// Inserts or updates task runs in one commit.
    async fn record_task_runs(&self, runs: &[TaskRun]) -> Result<()>;
    /// Ends an execution (waking idle workers when it frees a concurrency slot).
    async fn finish_execution(
        &self,
        id: &str,
        status: ExecStatus,
        output: Option<&Value>,
        error: Option<&str>,
        finished_at: &str,
    ) -> Result<()>;
    /// One execution.
    async fn execution(&self, id: &str) -> Result<ExecutionRecord>;
    /// An execution's task runs, in (task outcome order, then task, item, attempt) order.
    async fn task_runs(&self, execution_id: &str) -> Result<Vec<TaskRun>>;
    /// Executions, newest first.
    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>>;
    /// Child executions of an execution.
    async fn children(&self, id: &str) -> Result<Vec<ExecutionRecord>>;
    /// Asks an unfinished execution (and its sub-workflows) to stop.
    async fn request_cancel(&self, id: &str) -> Result<()>;
    /// Deletes finished executions that ended before `finished_before` (RFC 3339): of one
    /// org (`only`), or of every org but `except`.
    async fn purge(&self, finished_before: &str, scope: &PurgeScope) -> Result<u64>;

    /// The value of a setting, storing `value` first if there is none. True when stored now.
    async fn ensure_setting(&self, key: &str, value: &str) -> Result<(String, bool)>;
    /// The value of a setting, if set.
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Sets (or replaces) a setting.
    async fn set_setting(&self, key: &str, value: &str) -> Result<()>;
    /// The secret of a webhook trigger for one org, if one was issued.
    async fn webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
    ) -> Result<Option<WebhookSecretRecord>>;
    /// The secret of a webhook trigger for one org, storing `sealed` first if there is none.
    /// True when stored now.
    async fn ensure_webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
        sealed: &str,
    ) -> Result<(WebhookSecretRecord, bool)>;
    /// Replaces the secret of a webhook trigger for one org by `sealed`; the one it replaces
    /// stays valid until `previous_until` (RFC 3339; `None`: refused at once).
    async fn rotate_webhook_secret(
        &self,
        workflow: &str,
        trigger: &str,
        org: &str,
        sealed: &str,
        previous_until: Option<&str>,
    ) -> Result<WebhookSecretRecord>;
    /// An org's standing link to a form, if one was issued.
    async fn form_link(&self, form: &str, org: &str) -> Result<Option<FormLinkRecord>>;
    /// The link whose token hashes to `token_hash`, if any.
    async fn form_link_by_hash(&self, token_hash: &str) -> Result<Option<FormLinkRecord>>;
    /// An org's standing link to a form, storing the given token first if there is none.
    /// True when stored now.
    async fn ensure_form_link(
        &self,
        form: &str,
        org: &str,
        token_hash: &str,
        sealed: &str,
    ) -> Result<(FormLinkRecord, bool)>;
    /// Replaces the token of an org's link (issuing the link if there is none); the old
    /// token stops working at once and the generation moves on.
    async fn rotate_form_link(
        &self,
        form: &str,
        org: &str,
        token_hash: &str,
        sealed: &str,
    ) -> Result<FormLinkRecord>;
    /// Turns an org's link on or off and sets (or clears) its expiry; not found when no link
    /// was issued.
    async fn set_form_link(
        &self,
        form: &str,
        org: &str,
        enabled: bool,
        expires_at: Option<&str>,
    ) -> Result<FormLinkRecord>;
    /// The links issued, of one form and/or one org, by form then org.
    async fn form_links(
        &self,
        form: Option<&str>,
        org: Option<&str>,
    ) -> Result<Vec<FormLinkRecord>>;
    /// Stores an accepted form submission (replacing its execution ids when stored again).
    /// Conflict when a submission through the same single-use link (`single_use:…`) is
    /// stored already.
    async fn save_form_submission(&self, submission: &FormSubmission) -> Result<()>;
    /// The submission that came through `link` (a single-use link is used up by it).
    async fn form_submission_by_link(&self, link: &str) -> Result<Option<FormSubmission>>;
    /// Accepted submissions, newest first, of one form and/or one org.
    async fn form_submissions(
        &self,
        form: Option<&str>,
        org: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FormSubmission>>;
    /// Deletes the trigger events recorded before `before` (RFC 3339) of one org (`only`) or
    /// of every org but `except` — keeping each trigger's newest de-duplicated event, which
    /// tells the cron scheduler the last slot it fired.
    async fn purge_trigger_events(&self, before: &str, scope: &PurgeScope) -> Result<u64>;
    /// Records a trigger event and creates the executions it starts, in one commit; each
    /// execution points at the event, and the event's `execution_id` is the first one.
    /// Returns the event's row id, or `None` (and stores nothing) when an event with the same
    /// `dedupe_key` was already recorded for the trigger.
    async fn record_event(
        &self,
        event: &TriggerEvent,
        executions: &[NewExecution],
    ) -> Result<Option<i64>>;
    /// A trigger's events, newest first.
    async fn trigger_events(
        &self,
        workflow: &str,
        trigger: &str,
        limit: i64,
    ) -> Result<Vec<TriggerEvent>>;
    /// The greatest `dedupe_key` starting with `prefix` recorded for a trigger (keys that
    /// embed an RFC 3339 UTC time sort by time: the last cron slot fired).
    async fn last_dedupe_key(
        &self,
        workflow: &str,
        trigger: &str,
        prefix: &str,
    ) -> Result<Option<String>>;

    /// Takes the oldest queued top-level execution whose concurrency group has room (pending
    /// ones held by a live owner are not queued), or a running one whose lease expired, for
    /// `owner`. Holds across processes sharing the store: a group never runs more than its
    /// limit, however many workers claim at once.
    async fn claim_next(
        &self,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<String>>;
    /// How many executions wait for a worker.
    async fn queue_depth(&self) -> Result<i64>;

    /// Switches a trigger on or off (overrides the workflow's `enabled:`).
    async fn set_trigger_enabled(&self, workflow: &str, trigger: &str, enabled: bool)
    -> Result<()>;
    /// Every switch set through [`Store::set_trigger_enabled`]: `(workflow, trigger, enabled)`.
    async fn trigger_switches(&self) -> Result<Vec<(String, String, bool)>>;

    /// Records (or replaces) the Autotask webhook registered for a trigger and org.
    async fn save_autotask_webhook(&self, webhook: &AutotaskWebhook) -> Result<()>;
    /// Every registered Autotask webhook.
    async fn autotask_webhooks(&self) -> Result<Vec<AutotaskWebhook>>;
    /// Forgets a registered Autotask webhook.
    async fn delete_autotask_webhook(&self, workflow: &str, trigger: &str, org: &str)
    -> Result<()>;

    /// Creates or updates an org (by id). A name another org has is a conflict.
    async fn save_org(&self, org: &OrgRecord) -> Result<()>;
    /// An org by id, or by name (case-insensitively).
    async fn org(&self, id_or_name: &str) -> Result<OrgRecord>;
    /// Every org, parents before children, by name.
    async fn list_orgs(&self) -> Result<Vec<OrgRecord>>;
    /// Deletes an org with its variables, integrations and mapping; refused (conflict) while
    /// it has child orgs or unfinished executions.
    async fn delete_org(&self, id: &str) -> Result<()>;
    /// Sets a variable (`value` is JSON text, already sealed when `secret`).
    async fn set_org_var(&self, var: &OrgVar) -> Result<()>;
    /// Removes a variable; false when there was none.
    async fn delete_org_var(&self, org_id: &str, key: &str) -> Result<bool>;
    /// An org's own variables, by key.
    async fn org_vars(&self, org_id: &str) -> Result<Vec<OrgVar>>;
    /// Creates or replaces an integration instance.
    async fn save_integration(&self, integration: &IntegrationRecord) -> Result<()>;
    /// Removes an integration instance; false when there was none.
    async fn delete_integration(&self, org_id: &str, kind: &str, name: &str) -> Result<bool>;
    /// Integration instances of one org, or of every org.
    async fn integrations(&self, org_id: Option<&str>) -> Result<Vec<IntegrationRecord>>;
    /// Links an org to an external record (replacing the org's link of that kind); an
    /// external record linked to another org is a conflict.
    async fn set_mapping(&self, mapping: &OrgMapping) -> Result<()>;
    /// Unlinks an org; false when it was not linked.
    async fn delete_mapping(&self, org_id: &str, kind: &str) -> Result<bool>;
    /// Every link of a kind.
    async fn mappings(&self, kind: &str) -> Result<Vec<OrgMapping>>;
    /// An org's links, one per kind.
    async fn org_mappings(&self, org_id: &str) -> Result<Vec<OrgMapping>>;
    /// Excludes an external record from matching and creation (kept across syncs).
    async fn exclude(&self, kind: &str, external_id: &str, name: Option<&str>) -> Result<()>;
    /// Lifts an exclusion; false when there was none.
    async fn unexclude(&self, kind: &str, external_id: &str) -> Result<bool>;
    /// Excluded external records of a kind: `(external_id, name)`.
    async fn exclusions(&self, kind: &str) -> Result<Vec<(String, Option<String>)>>;
    /// Inserts or updates directory records (by source, kind and external id).
    async fn save_directory(&self, records: &[DirectoryRecord]) -> Result<()>;
    /// Directory records of a source and kind, optionally of one org.
    async fn directory(
        &self,
        source: &str,
        kind: &str,
        org_id: Option<&str>,
    ) -> Result<Vec<DirectoryRecord>>;
    /// Records the start of a sync run; returns its id.
    async fn start_sync_run(&self, source: &str, org_id: &str, mode: &str) -> Result<i64>;
    /// Records how a sync run ended.
    async fn finish_sync_run(&self, id: i64, counts: &Value, errors: &Value) -> Result<()>;
    /// Sync runs, newest first.
    async fn sync_runs(&self, limit: i64) -> Result<Vec<SyncRun>>;
    /// Records (inserts or replaces) a crate install.
    async fn save_crate_install(&self, install: &CrateInstall) -> Result<()>;
    /// Crate installs, by crate then org; only `org`'s when given.
    async fn crate_installs(&self, org: Option<&str>) -> Result<Vec<CrateInstall>>;
    /// Removes a crate install record; false when there was none.
    async fn delete_crate_install(&self, crate_name: &str, org: &str) -> Result<bool>;

    /// Waits until work may have been queued (by this process or another sharing the store),
    /// or `timeout` passed; a wake-up is a hint to look, not a promise of work. Backends that
    /// cannot hear other processes just sleep, and workers poll.
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
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
