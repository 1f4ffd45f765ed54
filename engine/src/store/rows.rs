//! Rows back into records, once for every backend: a backend's row type only has to decode
//! text, integers and booleans (SQLite keeps booleans as integers, which sqlx reads as
//! booleans).

use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    ExecutionRecord, Result, StoreError, TaskRun, json_from_text, parse_exec_status,
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

/// An `executions` row (the columns of `EXECUTION_COLUMNS`).
pub(crate) fn execution_from_row<'r, R: Row>(row: &'r R) -> Result<ExecutionRecord>
where
    for<'c> &'c str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
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

/// A `task_runs` row.
pub(crate) fn task_run_from_row<'r, R: Row>(row: &'r R) -> Result<TaskRun>
where
    for<'c> &'c str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
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
