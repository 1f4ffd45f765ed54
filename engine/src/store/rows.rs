//! Rows back into records, once for every backend: a backend's row type only has to decode
//! text, integers and booleans (SQLite keeps booleans as integers, which sqlx reads as
//! booleans).

use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    ExecutionRecord, FormLinkRecord, FormSubmission, OrgRecord, Result, StoreError, TaskRun,
    TriggerEvent, WebhookSecretRecord, WorkflowRecord, json_from_text, parse_exec_status,
    parse_task_status,
};

/// A JSON text column as a value.
pub(crate) fn json_col<'r, R: Row>(row: &'r R, col: &str) -> Result<Option<Value>>
where
    for<'c> &'c str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    json_from_text(col, row.try_get(col)?)
}

/// A row mapper generic over the backend's row type (which must decode text, integers and
/// booleans by column name).
macro_rules! row_mapper {
    ($(#[$doc:meta])* $name:ident($row:ident) -> $ty:ty $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name<'r, R: Row>($row: &'r R) -> Result<$ty>
        where
            for<'c> &'c str: ColumnIndex<R>,
            String: Decode<'r, R::Database> + Type<R::Database>,
            i64: Decode<'r, R::Database> + Type<R::Database>,
            bool: Decode<'r, R::Database> + Type<R::Database>,
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
