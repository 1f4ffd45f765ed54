//! Rows back into records, once for every backend: a backend's row only has to read a
//! column by name as text, an integer or a boolean ([`Columns`]): sqlx's SQLite and
//! PostgreSQL rows and rusqlite's (the SQLite step writer and readers) alike. SQLite keeps
//! booleans as integers; both drivers read them as booleans.

use serde_json::Value;
use sqlx::Row;

use super::{
    ExecutionRecord, FormLinkRecord, FormSubmission, OrgRecord, Result, StoreError, TaskRun,
    TriggerEvent, WebhookSecretRecord, WorkflowRecord, json_from_text, parse_exec_status,
    parse_task_status,
};

/// A row of any backend, read by column name.
pub(crate) trait Columns {
    fn text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<Option<i64>>;
    fn flag(&self, col: &str) -> Result<Option<bool>>;

    /// Column `col` as `T` (text, integer or boolean, optional or not).
    fn try_get<T: Column>(&self, col: &str) -> Result<T>
    where
        Self: Sized,
    {
        T::read(self, col)
    }
}

/// What a column can be read as.
pub(crate) trait Column: Sized {
    fn read<C: Columns>(row: &C, col: &str) -> Result<Self>;
}

fn required<T>(col: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| StoreError::Corrupt(format!("{col}: unexpected NULL")))
}

impl Column for String {
    fn read<C: Columns>(row: &C, col: &str) -> Result<Self> {
        required(col, row.text(col)?)
    }
}
impl Column for Option<String> {
    fn read<C: Columns>(row: &C, col: &str) -> Result<Self> {
        row.text(col)
    }
}
impl Column for i64 {
    fn read<C: Columns>(row: &C, col: &str) -> Result<Self> {
        required(col, row.int(col)?)
    }
}
impl Column for Option<i64> {
    fn read<C: Columns>(row: &C, col: &str) -> Result<Self> {
        row.int(col)
    }
}
impl Column for bool {
    fn read<C: Columns>(row: &C, col: &str) -> Result<Self> {
        required(col, row.flag(col)?)
    }
}

macro_rules! sqlx_columns {
    ($($row:ty),*) => {$(
        impl Columns for $row {
            fn text(&self, col: &str) -> Result<Option<String>> {
                Ok(Row::try_get(self, col)?)
            }
            fn int(&self, col: &str) -> Result<Option<i64>> {
                Ok(Row::try_get(self, col)?)
            }
            fn flag(&self, col: &str) -> Result<Option<bool>> {
                Ok(Row::try_get(self, col)?)
            }
        }
    )*};
}
sqlx_columns!(sqlx::sqlite::SqliteRow, sqlx::postgres::PgRow);

fn lite(col: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(format!("{col}: {e}"))
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, col: &str) -> Result<Option<String>> {
        self.get(col).map_err(|e| lite(col, e))
    }
    fn int(&self, col: &str) -> Result<Option<i64>> {
        self.get(col).map_err(|e| lite(col, e))
    }
    fn flag(&self, col: &str) -> Result<Option<bool>> {
        self.get(col).map_err(|e| lite(col, e))
    }
}

/// A JSON text column as a value.
pub(crate) fn json_col<R: Columns>(row: &R, col: &str) -> Result<Option<Value>> {
    json_from_text(col, row.text(col)?)
}

/// A row mapper for every backend's rows.
macro_rules! row_mapper {
    ($(#[$doc:meta])* $name:ident($row:ident) -> $ty:ty $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name<R: Columns>($row: &R) -> Result<$ty>
        $body
    };
}

row_mapper! {
    /// An `executions` row (the columns of `EXECUTION_COLUMNS`).
    execution_from_row(row) -> ExecutionRecord {
    let status: String = row.try_get("status")?;
    Ok(ExecutionRecord {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        workflow_name: row.try_get("workflow_name")?,
        workflow_version: row.try_get("workflow_version")?,
        status: parse_exec_status(&status)?,
        org: row.try_get("org")?,
        input: json_col(row, "input")?.unwrap_or(Value::Null),
        vars: json_col(row, "vars")?,
        trigger: json_col(row, "trigger")?.unwrap_or(Value::Null),
        output: json_col(row, "output")?,
        error: row.try_get("error")?,
        parent_id: row.try_get("parent_id")?,
        parent_task: row.try_get("parent_task")?,
        rerun_of: row.try_get("rerun_of")?,
        cancel_requested: row.try_get("cancel_requested")?,
        owner: row.try_get("owner")?,
        lease_until_ms: row.try_get("lease_until_ms")?,
        concurrency_key: row.try_get("concurrency_key")?,
        concurrency_limit: row.try_get("concurrency_limit")?,
        sealed: row.try_get("sealed")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
}

row_mapper! {
    /// A `task_runs` row.
    task_run_from_row(row) -> TaskRun {
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
        status: parse_task_status(&status)?,
        seq: row.try_get("seq")?,
        input: json_col(row, "input")?,
        result: json_col(row, "result")?,
        error: json_col(row, "error")?,
        routes,
        publish,
        reused: row.try_get("reused")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
    })
}
}

row_mapper! {
    /// An `orgs` row (the columns of `ORG_COLUMNS`).
    org_from_row(r) -> OrgRecord {
    let tags: String = r.try_get("tags")?;
    Ok(OrgRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        parent_id: r.try_get("parent_id")?,
        tags: serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(format!("tags: {e}")))?,
        attributes: json_col(r, "attributes")?.unwrap_or(Value::Null),
        active: r.try_get("active")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}
}

row_mapper! {
    /// A `webhook_secrets` row.
    webhook_secret_from_row(r) -> WebhookSecretRecord {
    Ok(WebhookSecretRecord {
        workflow: r.try_get("workflow")?,
        trigger: r.try_get("trigger")?,
        org: r.try_get("org")?,
        secret: r.try_get("secret")?,
        previous: r.try_get("previous")?,
        previous_until: r.try_get("previous_until")?,
        created_at: r.try_get("created_at")?,
        rotated_at: r.try_get("rotated_at")?,
    })
}
}

row_mapper! {
    /// A `trigger_events` row.
    trigger_event_from_row(r) -> TriggerEvent {
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
}

row_mapper! {
    /// A `workflows` (or `forms`) row.
    workflow_from_row(row) -> WorkflowRecord {
    Ok(WorkflowRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        source: row.try_get("source")?,
        path: row.try_get("path")?,
        created_at: row.try_get("created_at")?,
    })
}
}

row_mapper! {
    /// A `form_links` row.
    form_link_from_row(r) -> FormLinkRecord {
    Ok(FormLinkRecord {
        form: r.try_get("form")?,
        org: r.try_get("org")?,
        token_hash: r.try_get("token_hash")?,
        token: r.try_get("token")?,
        generation: r.try_get("generation")?,
        enabled: r.try_get("enabled")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        rotated_at: r.try_get("rotated_at")?,
    })
}
}

row_mapper! {
    /// A `form_submissions` row.
    form_submission_from_row(r) -> FormSubmission {
    let data: String = r.try_get("data")?;
    let ids: String = r.try_get("execution_ids")?;
    Ok(FormSubmission {
        id: r.try_get("id")?,
        form: r.try_get("form")?,
        form_version: r.try_get("form_version")?,
        org: r.try_get("org")?,
        link: r.try_get("link")?,
        values: serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("form submission values: {e}")))?,
        execution_ids: serde_json::from_str(&ids)
            .map_err(|e| StoreError::Corrupt(format!("form submission executions: {e}")))?,
        submitted_at: r.try_get("submitted_at")?,
    })
}
}

row_mapper! {
    /// A `trigger_switches` row: workflow, trigger, enabled.
    switch_from_row(r) -> (String, String, bool) {
    Ok((r.try_get("workflow")?, r.try_get("trigger")?, r.try_get("enabled")?))
}
}
