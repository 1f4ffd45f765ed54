//! `/api/*` handlers for workflows, executions, actions and triggers. Each route is declared
//! once with its `#[utoipa::path]`; the use cases are `weft_service`'s (workflows, triggers)
//! or the engine's (runs, executions).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_engine::Workflow;
use weft_engine::executor::{RerunOptions, StartOptions};
use weft_engine::store::{ExecutionFilter, ExecutionRecord, TaskRun};
use weft_service::triggers::{
    self as trigger_service, Fired, TriggerEvent, TriggerView, WebhookSecretView,
};
use weft_service::workflows::{self as workflow_service, DeployError, Diagnostic, WorkflowSummary};

pub use weft_service::triggers::trigger_type;

use crate::body::Body;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// The longest `?wait=` honoured.
const MAX_WAIT: Duration = Duration::from_secs(300);

pub(crate) fn body_text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))
}

/// The diagnostics of a refused deploy, as the error answer carries them.
pub(crate) fn diagnostics_json(diagnostics: &[Diagnostic]) -> Vec<Value> {
    diagnostics
        .iter()
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .collect()
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::Invalid(i) => ApiError::InvalidWorkflow {
                diagnostics: diagnostics_json(&i.diagnostics),
                message: i.message,
            },
            DeployError::Failed(e) => e.into(),
        }
    }
}

/// A boolean query parameter: absent or `false`, or `true`; anything else is 400.
fn flag(value: Option<&str>, name: &str) -> Result<bool, ApiError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::BadRequest(format!(
            "`{name}` must be true or false"
        ))),
    }
}

// ---------------------------------------------------------------------------- workflows

/// A deployed version of a workflow, with its source, inputs, task graph and triggers.
#[derive(Serialize, ToSchema)]
#[schema(as = Workflow)]
pub struct WorkflowDetail {
    /// Its name.
    pub name: String,
    /// This version.
    pub version: i64,
    /// The latest stored version.
    pub latest_version: i64,
    /// What it does.
    pub description: Option<String>,
    /// The file it was deployed from, if any.
    pub path: Option<String>,
    /// When this version was deployed.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Declared input names.
    pub inputs: Vec<String>,
    /// Each input by name: its type, whether it is required, its default (left out for
    /// secret inputs), description, allowed values and whether it is secret.
    #[schema(value_type = std::collections::HashMap<String, InputSchema>)]
    pub input_schema: Map<String, Value>,
    /// The task graph, to draw the workflow.
    pub graph: Graph,
    /// Its triggers (never a secret).
    pub triggers: Vec<TriggerView>,
    /// The workflow YAML.
    pub source: String,
}

/// One input of a workflow, for forms.
#[derive(Serialize, ToSchema)]
pub struct InputSchema {
    /// `string`, `integer`, `number`, `boolean`, `object`, `array` or `any`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Must be given.
    pub required: bool,
    /// The default, or null (always null for secret inputs).
    #[schema(value_type = Object)]
    pub default: Option<Value>,
    /// What it is.
    pub description: Option<String>,
    /// The allowed values, or null.
    #[serde(rename = "enum")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub allowed: Option<Vec<Value>>,
    /// A secret input.
    pub secret: bool,
}

/// The task graph of a workflow.
#[derive(Serialize, ToSchema)]
pub struct Graph {
    /// Tasks no route points to (they start a run).
    pub start: Vec<String>,
    /// Every task.
    pub tasks: Vec<GraphTask>,
}

/// A task of a [`Graph`].
#[derive(Serialize, ToSchema)]
pub struct GraphTask {
    /// Its name.
    pub name: String,
    /// Its action.
    pub action: String,
    /// What it does.
    pub description: Option<String>,
    /// A with.items task.
    pub items: bool,
    /// The routes out of the task.
    pub next: Vec<GraphRoute>,
}

/// A route out of a [`GraphTask`].
#[derive(Serialize, ToSchema)]
pub struct GraphRoute {
    /// `success`, `failure` or `always`.
    pub on: String,
    /// The route has a condition.
    pub when: bool,
    /// The tasks it leads to.
    pub targets: Vec<String>,
}

/// What deploying answers.
#[derive(Serialize, ToSchema)]
pub struct Deployed {
    /// The workflow's name.
    pub name: String,
    /// The new version, or the latest when the source is unchanged.
    pub version: i64,
    /// Warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// Its triggers (never a secret).
    pub triggers: Vec<TriggerView>,
    /// The webhook secrets issued by this deploy (`workflow`, `trigger`, `org`, `secret`,
    /// `created_at`, `rotated_at`, `previous_valid_until`, `created`): shown once.
    #[schema(value_type = Vec<Object>)]
    pub secrets_issued: Vec<weft_triggers::webhook_access::IssuedSecret>,
}

/// List deployed workflows (latest versions).
#[utoipa::path(
    get,
    path = "/api/workflows",
    tag = "workflows",
    responses((status = 200, description = "The workflows", body = Vec<WorkflowSummary>)),
)]
async fn list_workflows(
    State(state): State<AppState>,
) -> Result<Json<Vec<WorkflowSummary>>, ApiError> {
    Ok(Json(workflow_service::list(state.store().as_ref()).await?))
}

/// Deploy a workflow.
///
/// Stores the YAML as a new version (unless it equals the latest) and issues the missing
/// secrets of its webhook triggers (answered once, in `secrets_issued`).
#[utoipa::path(
    post,
    path = "/api/workflows",
    tag = "workflows",
    request_body(content = String, content_type = "application/yaml", description = "The workflow YAML"),
    responses(
        (status = 200, description = "Deployed", body = Deployed),
        (status = 400, description = "The body is not UTF-8", body = ErrorBody),
        (status = 409, description = "A deployed version conflicts", body = ErrorBody),
        (status = 422, description = "The workflow is invalid (`invalid_workflow`, with its diagnostics)", body = ErrorBody),
    ),
)]
async fn deploy_workflow(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Deployed>, ApiError> {
    let source = body_text(&body)?;
    let done = workflow_service::deploy(state.engine(), source, None).await?;
    crate::autotask::sync_in_background(&state);
    let triggers =
        trigger_service::of_workflow(state.engine(), &done.workflow, &state.base_url()).await?;
    Ok(Json(Deployed {
        name: done.record.name,
        version: done.record.version,
        diagnostics: done.diagnostics,
        triggers,
        secrets_issued: done.secrets_issued,
    }))
}

/// Validate a workflow without deploying it.
#[utoipa::path(
    post,
    path = "/api/workflows/validate",
    tag = "workflows",
    request_body(content = String, content_type = "application/yaml", description = "The workflow YAML"),
    responses(
        (status = 200, description = "The diagnostics (empty when valid)", body = Vec<Diagnostic>),
        (status = 400, description = "The body is not UTF-8", body = ErrorBody),
    ),
)]
async fn validate(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Vec<Diagnostic>>, ApiError> {
    let source = body_text(&body)?;
    Ok(Json(workflow_service::validate(
        state.engine().registry(),
        source,
        "request",
    )))
}

/// `GET /api/workflows/{name}`'s query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct VersionQuery {
    /// A stored version (1 to `latest_version`); default the latest.
    #[param(value_type = Option<i64>, minimum = 1)]
    version: Option<String>,
}

/// A deployed workflow, with its source, inputs, task graph and triggers.
#[utoipa::path(
    get,
    path = "/api/workflows/{name}",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name"), VersionQuery),
    responses(
        (status = 200, description = "The version asked for (default the latest)", body = WorkflowDetail),
        (status = 400, description = "`version` is not a positive number", body = ErrorBody),
        (status = 404, description = "Not deployed, or no such version", body = ErrorBody),
    ),
)]
async fn get_workflow(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<WorkflowDetail>, ApiError> {
    let latest = workflow_service::latest(state.store().as_ref(), &name).await?;
    let record = match q.version.as_deref().filter(|v| !v.is_empty()) {
        None => latest.clone(),
        Some(v) => {
            let v = v.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                ApiError::BadRequest("`version` must be a positive number".into())
            })?;
            state
                .store()
                .workflow(&name, Some(v))
                .await
                .map_err(|e| match e.kind() {
                    weft_engine::store::StoreErrorKind::NotFound => {
                        ApiError::NotFound(format!("workflow `{name}` has no version {v}"))
                    }
                    _ => e.into(),
                })?
        }
    };
    let wf = state.parsed(&record)?;
    let triggers = trigger_service::of_workflow(state.engine(), &wf, &state.base_url()).await?;
    Ok(Json(WorkflowDetail {
        name: record.name,
        version: record.version,
        latest_version: latest.version,
        description: wf.description.clone(),
        path: record.path,
        created_at: record.created_at,
        inputs: wf.input.keys().cloned().collect(),
        input_schema: input_schema(&wf),
        graph: graph(&wf),
        triggers,
        source: record.source,
    }))
}

/// Each input's type, default and constraints, for forms. Defaults of secret inputs are
/// left out: forms must not prefill them.
fn input_schema(wf: &Workflow) -> Map<String, Value> {
    wf.input
        .iter()
        .map(|(name, p)| {
            let s = InputSchema {
                kind: p.ty.name().to_string(),
                required: p.required,
                default: if p.secret { None } else { p.default.clone() },
                description: p.description.clone(),
                allowed: p.allowed.clone(),
                secret: p.secret,
            };
            (name.clone(), serde_json::to_value(s).unwrap_or(Value::Null))
        })
        .collect()
}

/// The task graph: each task with its action and routes, and the tasks that start a run.
fn graph(wf: &Workflow) -> Graph {
    use weft_engine::model::On;
    let tasks = wf
        .tasks
        .values()
        .map(|t| GraphTask {
            name: t.name.clone(),
            action: t.action.value.clone(),
            description: t.description.clone(),
            items: t.with.is_some(),
            next: t
                .next
                .iter()
                .map(|r| GraphRoute {
                    on: match r.on {
                        On::Success => "success",
                        On::Failure => "failure",
                        On::Always => "always",
                    }
                    .into(),
                    when: r.when.is_some(),
                    targets: r.targets.iter().map(|t| t.value.clone()).collect(),
                })
                .collect(),
        })
        .collect();
    Graph {
        start: wf.start_tasks.clone(),
        tasks,
    }
}

/// `POST /api/workflows/{name}/run`'s query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunQuery {
    /// Wait up to this long (`30s`, `2m`, or seconds; at most 5 minutes) for the execution to
    /// end, and answer it; without it, or when it has not ended in time, answer 202.
    #[param(example = "30s")]
    wait: Option<String>,
    /// The organization to run for.
    org: Option<String>,
}

/// Workflow inputs by name (an empty body is `{}`).
#[derive(Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct Inputs(pub Map<String, Value>);

/// The execution was started (queued for a worker).
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The execution.
    pub id: String,
}

/// What starting an execution answers: it, ended (200), or where it is (202).
pub enum Started {
    /// It ended within the wait.
    Ended(Box<Execution>),
    /// Started; still running (or no wait).
    Accepted(Accepted),
}

impl IntoResponse for Started {
    fn into_response(self) -> Response {
        match self {
            Started::Ended(e) => Json(*e).into_response(),
            Started::Accepted(a) => (StatusCode::ACCEPTED, Json(a)).into_response(),
        }
    }
}

fn wait_param(wait: Option<&str>) -> Result<Option<Duration>, ApiError> {
    wait.map(|w| {
        weft_engine::model::parse_duration(w)
            .or_else(|| w.parse::<u64>().ok().map(Duration::from_secs))
            .map(|d| d.min(MAX_WAIT))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("`wait` must be a duration like 30s, got `{w}`"))
            })
    })
    .transpose()
}

/// Runs `id` on a worker; with `wait`, answers the execution when it ends in time.
async fn dispatch(
    state: &AppState,
    id: String,
    wait: Option<Duration>,
) -> Result<Started, ApiError> {
    let handle = state.workers().spawn(id.clone());
    if let Some(wait) = wait
        && let Ok(joined) = tokio::time::timeout(wait, handle).await
    {
        let exec = joined.map_err(|e| ApiError::Internal(crate::Detail::of(e)))??;
        let runs = state.store().task_runs(&exec.id).await?;
        return Ok(Started::Ended(Box::new(Execution::new(&exec, &runs))));
    }
    Ok(Started::Accepted(Accepted { id }))
}

/// Run a workflow.
#[utoipa::path(
    post,
    path = "/api/workflows/{name}/run",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name"), RunQuery),
    request_body(content = Inputs, description = "The inputs (optional)"),
    responses(
        (status = 200, description = "It ended within `wait`", body = Execution),
        (status = 202, description = "Started; still running (or no `wait`)", body = Accepted),
        (status = 400, description = "A malformed `wait` or body", body = ErrorBody),
        (status = 404, description = "Not deployed, or no such org", body = ErrorBody),
        (status = 409, description = "Wrong state", body = ErrorBody),
        (status = 422, description = "The inputs do not fit the workflow", body = ErrorBody),
    ),
)]
async fn run_workflow(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RunQuery>,
    Body(Inputs(input)): Body<Inputs>,
) -> Result<Started, ApiError> {
    let wait = wait_param(q.wait.as_deref())?;
    let record = workflow_service::latest(state.store().as_ref(), &name).await?;
    let opts = StartOptions {
        org: q.org,
        trigger: Some(serde_json::json!({"type": "api"})),
    };
    let id = state.engine().start(&record, input, opts).await?;
    dispatch(&state, id, wait).await
}

// --------------------------------------------------------------------------- executions

/// Where an execution is in its life.
#[derive(Serialize, ToSchema, Clone, Copy)]
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

impl From<weft_engine::store::ExecStatus> for ExecStatus {
    fn from(s: weft_engine::store::ExecStatus) -> Self {
        use weft_engine::store::ExecStatus as S;
        match s {
            S::Pending => ExecStatus::Pending,
            S::Running => ExecStatus::Running,
            S::Succeeded => ExecStatus::Succeeded,
            S::Failed => ExecStatus::Failed,
            S::Cancelled => ExecStatus::Cancelled,
        }
    }
}

/// Where a task is.
#[derive(Serialize, ToSchema, Clone, Copy)]
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

impl From<weft_engine::store::TaskStatus> for TaskStatus {
    fn from(s: weft_engine::store::TaskStatus) -> Self {
        use weft_engine::store::TaskStatus as S;
        match s {
            S::Running => TaskStatus::Running,
            S::Succeeded => TaskStatus::Succeeded,
            S::Failed => TaskStatus::Failed,
            S::Skipped => TaskStatus::Skipped,
            S::Cancelled => TaskStatus::Cancelled,
        }
    }
}

/// An execution as listed (without its tasks).
#[derive(Serialize, ToSchema)]
#[schema(as = ExecutionRecord)]
pub struct ExecutionListed {
    /// Its id (a UUID).
    pub id: String,
    /// The workflow version's row id.
    pub workflow_id: i64,
    /// The workflow.
    pub workflow_name: String,
    /// The workflow's version.
    pub workflow_version: i64,
    /// Where it is.
    pub status: ExecStatus,
    /// The org it runs for.
    pub org: String,
    /// Inputs (secrets redacted).
    #[schema(value_type = Object)]
    pub input: Value,
    /// Computed vars (secrets redacted), or null.
    #[schema(value_type = Object)]
    pub vars: Option<Value>,
    /// The triggering event (`{"type": "api"}`, the webhook request, …).
    #[schema(value_type = Object)]
    pub trigger: Value,
    /// Output, once succeeded; else null.
    #[schema(value_type = Object)]
    pub output: Option<Value>,
    /// Error message, once failed.
    pub error: Option<String>,
    /// The parent execution of a sub-workflow.
    pub parent_id: Option<String>,
    /// The parent's task that started it.
    pub parent_task: Option<String>,
    /// The execution this one reruns.
    pub rerun_of: Option<String>,
    /// A cancel was requested.
    pub cancel_requested: bool,
    /// The process running it (once ended, the one that finished it).
    pub owner: Option<String>,
    /// Until when (unix ms) the owner holds it.
    pub lease_until_ms: Option<i64>,
    /// Its concurrency group's key (`""` without a key); null without a limit.
    pub concurrency_key: Option<String>,
    /// The concurrency limit it was created under; null: unlimited.
    pub concurrency_limit: Option<i64>,
    /// Created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Started.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// Ended.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

impl From<ExecutionRecord> for ExecutionListed {
    fn from(e: ExecutionRecord) -> Self {
        ExecutionListed {
            id: e.id,
            workflow_id: e.workflow_id,
            workflow_name: e.workflow_name,
            workflow_version: e.workflow_version,
            status: e.status.into(),
            org: e.org,
            input: e.input,
            vars: e.vars,
            trigger: e.trigger,
            output: e.output,
            error: e.error,
            parent_id: e.parent_id,
            parent_task: e.parent_task,
            rerun_of: e.rerun_of,
            cancel_requested: e.cancel_requested,
            owner: e.owner,
            lease_until_ms: e.lease_until_ms,
            concurrency_key: e.concurrency_key,
            concurrency_limit: e.concurrency_limit,
            created_at: e.created_at,
            started_at: e.started_at,
            finished_at: e.finished_at,
        }
    }
}

/// An execution with its tasks (the engine's `execution_json`, typed).
#[derive(Serialize, ToSchema)]
pub struct Execution {
    /// Its id (a UUID).
    pub id: String,
    /// The workflow.
    pub workflow: String,
    /// The workflow's version.
    pub version: i64,
    /// Where it is.
    pub status: ExecStatus,
    /// The org it runs for.
    pub org: String,
    /// Inputs (secrets redacted).
    #[schema(value_type = Object)]
    pub input: Value,
    /// Output, once succeeded; else null.
    #[schema(value_type = Object)]
    pub output: Option<Value>,
    /// Error message, once failed.
    pub error: Option<String>,
    /// The event that started it (secret headers were never kept).
    #[schema(value_type = Object)]
    pub trigger: Value,
    /// The parent execution of a sub-workflow.
    pub parent_id: Option<String>,
    /// The execution this one reruns.
    pub rerun_of: Option<String>,
    /// Created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Started.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// Ended.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// The process that holds (or, once ended, ran) it.
    pub owner: Option<String>,
    /// Its concurrency group, when its workflow has a limit (a queued one waits for it).
    pub concurrency: Option<Concurrency>,
    /// Its tasks, in completion order.
    pub tasks: Vec<TaskSummary>,
}

/// An execution's concurrency group.
#[derive(Serialize, ToSchema)]
pub struct Concurrency {
    /// At most this many run at once.
    pub limit: i64,
    /// The group's key.
    pub key: Option<String>,
}

/// A task of an [`Execution`].
#[derive(Serialize, ToSchema)]
pub struct TaskSummary {
    /// Its name.
    pub name: String,
    /// Where it is.
    pub status: TaskStatus,
    /// How many attempts.
    pub attempts: i64,
    /// The action's result, or null.
    #[schema(value_type = Object)]
    pub result: Option<Value>,
    /// The error (`{message, kind, data}`), or null.
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    /// Started.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// Ended.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// Copied from the rerun execution.
    pub reused: bool,
    /// A with.items task: how many items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<usize>,
    /// With `?detail=true`: the rendered input of the last attempt (secrets redacted), or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub input: Option<Value>,
    /// With `?detail=true`: every attempt (and item) of the task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<TaskAttempt>>,
}

/// One attempt (or item) of a task.
#[derive(Serialize, ToSchema)]
pub struct TaskAttempt {
    /// The item index of a with.items task; null for the task itself.
    pub item: Option<i64>,
    /// 1-based; 0 for a with.items task's outcome.
    pub attempt: i64,
    /// Where it is.
    pub status: TaskStatus,
    /// Rendered input (secrets redacted), or null.
    #[schema(value_type = Object)]
    pub input: Option<Value>,
    /// The result, or null.
    #[schema(value_type = Object)]
    pub result: Option<Value>,
    /// The error (`{message, kind, data}`), or null.
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    /// Copied from the rerun execution.
    pub reused: bool,
    /// Started.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// Ended.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// How long it took.
    pub duration_ms: Option<i64>,
}

impl Execution {
    /// The execution and the summaries of its tasks.
    pub fn new(exec: &ExecutionRecord, runs: &[TaskRun]) -> Execution {
        let tasks = weft_engine::executor::task_summaries(runs)
            .into_iter()
            .map(|(r, attempts, items)| TaskSummary {
                name: r.task.clone(),
                status: r.status.into(),
                attempts,
                result: r.result.clone(),
                error: r.error.clone(),
                started_at: r.started_at.clone(),
                finished_at: r.finished_at.clone(),
                duration_ms: r.duration_ms,
                reused: r.reused,
                items: (items > 0).then_some(items),
                input: None,
                runs: None,
            })
            .collect();
        Execution {
            id: exec.id.clone(),
            workflow: exec.workflow_name.clone(),
            version: exec.workflow_version,
            status: exec.status.into(),
            org: exec.org.clone(),
            input: exec.input.clone(),
            output: exec.output.clone(),
            error: exec.error.clone(),
            trigger: exec.trigger.clone(),
            parent_id: exec.parent_id.clone(),
            rerun_of: exec.rerun_of.clone(),
            created_at: exec.created_at.clone(),
            started_at: exec.started_at.clone(),
            finished_at: exec.finished_at.clone(),
            owner: exec.owner.clone(),
            concurrency: exec.concurrency_limit.map(|limit| Concurrency {
                limit,
                key: exec.concurrency_key.clone(),
            }),
            tasks,
        }
    }

    /// Adds to each task its `runs` — every attempt (and item) with its rendered input
    /// (secrets were redacted when stored), result, error and timing — and its `input` (the
    /// rendered input of its last attempt).
    fn with_runs(mut self, runs: &[TaskRun]) -> Execution {
        for task in &mut self.tasks {
            let mine: Vec<&TaskRun> = runs.iter().filter(|r| r.task == task.name).collect();
            let input = mine
                .iter()
                .filter(|r| r.item == -1 && r.input.is_some())
                .max_by_key(|r| r.attempt)
                .and_then(|r| r.input.clone());
            task.input = Some(input.unwrap_or(Value::Null));
            task.runs = Some(
                mine.iter()
                    .map(|r| TaskAttempt {
                        item: (r.item >= 0).then_some(r.item),
                        attempt: r.attempt,
                        status: r.status.into(),
                        input: r.input.clone(),
                        result: r.result.clone(),
                        error: r.error.clone(),
                        reused: r.reused,
                        started_at: r.started_at.clone(),
                        finished_at: r.finished_at.clone(),
                        duration_ms: r.duration_ms,
                    })
                    .collect(),
            );
        }
        self
    }
}

/// `GET /api/executions`' query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ExecutionsQuery {
    /// Only executions with this status.
    #[param(value_type = Option<ExecStatus>)]
    status: Option<String>,
    /// Only executions of this workflow.
    workflow: Option<String>,
    /// At most this many (1-1000; default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Skip this many first (paging, with `limit`).
    #[param(value_type = Option<i64>, minimum = 0)]
    offset: Option<String>,
    /// Only executions for this org.
    org: Option<String>,
    /// Only top-level executions (no sub-workflows).
    #[param(value_type = Option<bool>)]
    top_level: Option<String>,
    /// Only executions created at or after this: an RFC 3339 instant, or how long ago (`1h`,
    /// `24h`, `7d`).
    since: Option<String>,
}

/// The `since` of a listing: an instant (RFC 3339) or how long ago (`1h`, `7d`).
fn since(state: &AppState, s: &str) -> Result<String, ApiError> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.to_string());
    }
    let ago = weft_engine::model::parse_duration(s)
        .and_then(|d| jiff::SignedDuration::try_from(d).ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`since` must be an RFC 3339 instant or a duration like 1h or 7d, got `{s}`"
            ))
        })?;
    let at = state
        .engine()
        .now()
        .checked_sub(ago)
        .map_err(|_| ApiError::BadRequest(format!("`since` {s} reaches too far back")))?;
    Ok(at.to_string())
}

/// List executions, newest first.
#[utoipa::path(
    get,
    path = "/api/executions",
    tag = "executions",
    params(ExecutionsQuery),
    responses(
        (status = 200, description = "The executions", body = Vec<ExecutionListed>),
        (status = 400, description = "A malformed filter", body = ErrorBody),
    ),
)]
async fn list_executions(
    State(state): State<AppState>,
    Query(q): Query<ExecutionsQuery>,
) -> Result<Json<Vec<ExecutionListed>>, ApiError> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(weft_engine::store::ExecStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown status `{s}` (pending, running, succeeded, failed, cancelled)"
            ))
        })?),
    };
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| ApiError::BadRequest("`limit` must be a positive number".into()))?
            .min(1000),
    };
    let offset = match q.offset.as_deref() {
        None => 0,
        Some(o) => o.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| {
            ApiError::BadRequest("`offset` must be 0 or a positive number".into())
        })?,
    };
    let created_after = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(since(&state, s)?),
    };
    let filter = ExecutionFilter {
        status,
        workflow: q.workflow.filter(|w| !w.is_empty()),
        org: q.org.filter(|o| !o.is_empty()),
        top_level_only: flag(q.top_level.as_deref(), "top_level")?,
        limit: Some(limit),
        offset: Some(offset),
        created_after,
    };
    let list = state.store().list_executions(&filter).await?;
    Ok(Json(list.into_iter().map(ExecutionListed::from).collect()))
}

/// An execution, or 404.
async fn execution(state: &AppState, id: &str) -> Result<ExecutionRecord, ApiError> {
    state
        .store()
        .execution(id)
        .await
        .map_err(|e| match e.kind() {
            weft_engine::store::StoreErrorKind::NotFound => {
                ApiError::NotFound(format!("no execution `{id}`"))
            }
            _ => e.into(),
        })
}

async fn execution_with_tasks(state: &AppState, id: &str) -> Result<Execution, ApiError> {
    let exec = execution(state, id).await?;
    let runs = state.store().task_runs(&exec.id).await?;
    Ok(Execution::new(&exec, &runs))
}

/// `GET /api/executions/{id}`'s query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DetailQuery {
    /// `true`: each task also carries `input` (the rendered input of its last attempt) and
    /// `runs` (every attempt and item with its rendered input, result, error and timing).
    /// Secrets are redacted as stored.
    #[param(value_type = Option<bool>)]
    detail: Option<String>,
}

/// An execution with its tasks.
#[utoipa::path(
    get,
    path = "/api/executions/{id}",
    tag = "executions",
    params(("id" = String, Path, description = "The execution's id"), DetailQuery),
    responses(
        (status = 200, description = "The execution", body = Execution),
        (status = 400, description = "`detail` is not true or false", body = ErrorBody),
        (status = 404, description = "No such execution", body = ErrorBody),
    ),
)]
async fn get_execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Json<Execution>, ApiError> {
    let detail = flag(q.detail.as_deref(), "detail")?;
    let exec = execution(&state, &id).await?;
    let runs = state.store().task_runs(&exec.id).await?;
    let view = Execution::new(&exec, &runs);
    Ok(Json(if detail { view.with_runs(&runs) } else { view }))
}

/// Cancel an execution.
#[utoipa::path(
    post,
    path = "/api/executions/{id}/cancel",
    tag = "executions",
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The execution after the cancel request", body = Execution),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 409, description = "Wrong state", body = ErrorBody),
    ),
)]
async fn cancel_execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Execution>, ApiError> {
    execution(&state, &id).await?;
    state.engine().cancel(&id).await?;
    Ok(Json(execution_with_tasks(&state, &id).await?))
}

/// How to rerun an execution.
#[derive(Deserialize, ToSchema, Default)]
pub struct RerunRequest {
    /// Run again from this task (and everything after it); earlier results are reused.
    #[serde(default)]
    pub from: Option<String>,
    /// Only rerun the failed items of with.items tasks.
    #[serde(default)]
    pub failed_items: Option<bool>,
}

/// Rerun an execution.
///
/// Starts a new execution that reuses the results of the tasks before `from` (or, with
/// `failed_items`, of the items that succeeded).
#[utoipa::path(
    post,
    path = "/api/executions/{id}/rerun",
    tag = "executions",
    params(("id" = String, Path, description = "The execution to rerun")),
    request_body(content = RerunRequest, description = "Optional"),
    responses(
        (status = 202, description = "The new execution was started", body = Accepted),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 404, description = "No such execution or task", body = ErrorBody),
        (status = 409, description = "Wrong state", body = ErrorBody),
        (status = 422, description = "A field does not fit", body = ErrorBody),
    ),
)]
async fn rerun_execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(req): Body<RerunRequest>,
) -> Result<Started, ApiError> {
    execution(&state, &id).await?;
    let opts = RerunOptions {
        from: req.from,
        failed_items: req.failed_items.unwrap_or(false),
    };
    let new_id = state.engine().rerun(&id, opts).await?;
    dispatch(&state, new_id, None).await
}

// ------------------------------------------------------------------------------ actions

/// An action, as listed.
#[derive(Serialize, ToSchema)]
pub struct ActionSummary {
    /// Its name.
    #[schema(example = "core.echo")]
    pub name: String,
    /// What it does.
    pub description: String,
}

/// An action with its parameter schema.
#[derive(Serialize, ToSchema)]
pub struct Action {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema (2020-12) of the parameters.
    #[schema(value_type = Object)]
    pub params: Value,
}

/// List the actions.
#[utoipa::path(
    get,
    path = "/api/actions",
    tag = "actions",
    responses((status = 200, description = "Sorted by name", body = Vec<ActionSummary>)),
)]
async fn list_actions(State(state): State<AppState>) -> Json<Vec<ActionSummary>> {
    let mut list: Vec<ActionSummary> = state
        .engine()
        .registry()
        .specs()
        .map(|s| ActionSummary {
            name: s.name.clone(),
            description: s.description.clone(),
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Json(list)
}

/// An action with its parameter schema.
#[utoipa::path(
    get,
    path = "/api/actions/{name}",
    tag = "actions",
    params(("name" = String, Path, description = "The action's name, e.g. `core.echo`")),
    responses(
        (status = 200, description = "The action", body = Action),
        (status = 404, description = "No such action", body = ErrorBody),
    ),
)]
async fn get_action(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Action>, ApiError> {
    let spec = state
        .engine()
        .registry()
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no action named `{name}`")))?;
    Ok(Json(Action {
        name: spec.name.clone(),
        description: spec.description.clone(),
        params: spec.params.clone(),
    }))
}

// ----------------------------------------------------------------------------- triggers

/// The triggers of every deployed workflow (without secrets).
#[utoipa::path(
    get,
    path = "/api/triggers",
    tag = "triggers",
    responses((status = 200, description = "The triggers", body = Vec<TriggerView>)),
)]
async fn list_triggers(State(state): State<AppState>) -> Result<Json<Vec<TriggerView>>, ApiError> {
    Ok(Json(
        trigger_service::list(state.engine(), &state.base_url()).await?,
    ))
}

/// `GET /api/triggers/{workflow}/{trigger}/events`' query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// At most this many (clamped to 1-1000; default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// A trigger's recent events, newest first.
#[utoipa::path(
    get,
    path = "/api/triggers/{workflow}/{trigger}/events",
    tag = "triggers",
    params(
        ("workflow" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "The trigger's name"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "The events", body = Vec<TriggerEvent>),
        (status = 404, description = "No such workflow or trigger", body = ErrorBody),
    ),
)]
async fn trigger_events(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<TriggerEvent>>, ApiError> {
    let limit = q.limit.and_then(|l| l.parse::<i64>().ok()).unwrap_or(100);
    Ok(Json(
        trigger_service::events(state.engine(), &workflow, &trigger, limit).await?,
    ))
}

/// Enable a trigger (it fires again).
///
/// The switch is stored, outlives redeploys and overrides the workflow's `enabled:`.
#[utoipa::path(
    post,
    path = "/api/triggers/{workflow}/{trigger}/enable",
    tag = "triggers",
    params(
        ("workflow" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "The trigger's name"),
    ),
    responses(
        (status = 200, description = "The trigger as `GET /api/triggers` lists it", body = TriggerView),
        (status = 404, description = "No such workflow or trigger", body = ErrorBody),
    ),
)]
async fn enable_trigger(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
) -> Result<Json<TriggerView>, ApiError> {
    let t = trigger_service::switch(state.engine(), &workflow, &trigger, true, &state.base_url())
        .await?;
    Ok(Json(t))
}

/// Disable a trigger (webhooks answer 404, cron slots and Autotask events start nothing).
///
/// The switch is stored, outlives redeploys and overrides the workflow's `enabled:`.
#[utoipa::path(
    post,
    path = "/api/triggers/{workflow}/{trigger}/disable",
    tag = "triggers",
    params(
        ("workflow" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "The trigger's name"),
    ),
    responses(
        (status = 200, description = "The trigger as `GET /api/triggers` lists it", body = TriggerView),
        (status = 404, description = "No such workflow or trigger", body = ErrorBody),
    ),
)]
async fn disable_trigger(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
) -> Result<Json<TriggerView>, ApiError> {
    let t = trigger_service::switch(
        state.engine(),
        &workflow,
        &trigger,
        false,
        &state.base_url(),
    )
    .await?;
    Ok(Json(t))
}

/// Fire a cron trigger now ("run now").
///
/// Fires the trigger as if its schedule had come round: the same criteria, input and
/// `run_for`, `TRIGGER.manual` true. It does not use up a scheduled slot, and fires a
/// disabled trigger too (to try it before enabling it). Webhook and Autotask triggers are
/// fired by their senders: 409 names how.
#[utoipa::path(
    post,
    path = "/api/triggers/{workflow}/{trigger}/fire",
    tag = "triggers",
    params(
        ("workflow" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "The trigger's name"),
    ),
    responses(
        (status = 202, description = "The event: `outcome` (`accepted`, `filtered`, `rejected`) and the `executions` it queued", body = Fired),
        (status = 404, description = "No such workflow or trigger", body = ErrorBody),
        (status = 409, description = "Not a cron trigger, or its schedule does not parse", body = ErrorBody),
    ),
)]
async fn fire_trigger(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Fired>), ApiError> {
    let fired = trigger_service::fire(state.engine(), &workflow, &trigger).await?;
    Ok((StatusCode::ACCEPTED, Json(fired)))
}

/// One org's webhook secret.
///
/// Each (webhook trigger, org) pair has its own secret, sealed at rest: the secret given to
/// one client's sender starts nothing for another. Issued on the first call if the org has
/// none. 404 if the trigger does not run for the org (see `run_for`); 409 if it is not a
/// webhook with `secret: required`.
#[utoipa::path(
    get,
    path = "/api/triggers/{workflow}/{trigger}/secrets/{org}",
    tag = "triggers",
    params(
        ("workflow" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "The webhook trigger's name"),
        ("org" = String, Path, description = "The org whose sender uses the secret (id or name); the trigger must run for it"),
    ),
    responses(
        (status = 200, description = "The secret", body = WebhookSecretView),
        (status = 404, description = "No such workflow or trigger, or it does not run for the org", body = ErrorBody),
        (status = 409, description = "Not a webhook with `secret: required`", body = ErrorBody),
    ),
)]
async fn webhook_secret(
    State(state): State<AppState>,
    Path((workflow, trigger, org)): Path<(String, String, String)>,
) -> Result<Json<WebhookSecretView>, ApiError> {
    let s = trigger_service::secret(state.engine(), &workflow, &trigger, &org, &state.base_url())
        .await?;
    Ok(Json(s))
}

/// How to rotate a webhook secret.
#[derive(Deserialize, ToSchema, Default)]
pub struct RotateRequest {
    /// How long the old secret stays valid (`15m`, `1h`, `7d`; default: refused at once).
    #[serde(default)]
    pub grace: Option<String>,
}

/// Rotate one org's webhook secret.
///
/// Issues a new secret for the org's sender. The old one is refused at once, or still
/// accepted for `grace` (a duration: `15m`, `1h`, `7d`) while the sender is updated.
#[utoipa::path(
    post,
    path = "/api/triggers/{workflow}/{trigger}/secrets/{org}/rotate",
    tag = "triggers",
    params(
        ("workflow" = String, Path, description = "The workflow's name"),
        ("trigger" = String, Path, description = "The webhook trigger's name"),
        ("org" = String, Path, description = "The org whose sender uses the secret (id or name); the trigger must run for it"),
    ),
    request_body(content = RotateRequest, description = "Optional"),
    responses(
        (status = 200, description = "The new secret", body = WebhookSecretView),
        (status = 400, description = "`grace` is not a duration", body = ErrorBody),
        (status = 404, description = "No such workflow or trigger, or it does not run for the org", body = ErrorBody),
        (status = 409, description = "Not a webhook with `secret: required`", body = ErrorBody),
        (status = 422, description = "A field does not fit", body = ErrorBody),
    ),
)]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Path((workflow, trigger, org)): Path<(String, String, String)>,
    Body(req): Body<RotateRequest>,
) -> Result<Json<WebhookSecretView>, ApiError> {
    // A malformed grace stays a 400 (what the API always answered).
    let grace = req
        .grace
        .as_deref()
        .map(trigger_service::parse_grace)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let s = trigger_service::rotate(
        state.engine(),
        &workflow,
        &trigger,
        &org,
        grace,
        &state.base_url(),
    )
    .await?;
    Ok(Json(s))
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workflows, deploy_workflow))
        .routes(routes!(validate))
        .routes(routes!(get_workflow))
        .routes(routes!(run_workflow))
        .routes(routes!(list_executions))
        .routes(routes!(get_execution))
        .routes(routes!(cancel_execution))
        .routes(routes!(rerun_execution))
        .routes(routes!(list_actions))
        .routes(routes!(get_action))
        .routes(routes!(list_triggers))
        .routes(routes!(trigger_events))
        .routes(routes!(enable_trigger))
        .routes(routes!(disable_trigger))
        .routes(routes!(fire_trigger))
        .routes(routes!(webhook_secret))
        .routes(routes!(rotate_webhook_secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: &str, item: i64, attempt: i64, status: weft_engine::store::TaskStatus) -> TaskRun {
        TaskRun {
            execution_id: "e1".into(),
            task: task.into(),
            item,
            attempt,
            status,
            seq: (item == -1).then_some(attempt),
            input: (item == -1).then(|| serde_json::json!({"text": task})),
            result: Some(serde_json::json!({"ok": true})),
            error: None,
            routes: None,
            publish: None,
            reused: false,
            started_at: Some("2025-01-01T00:00:00Z".into()),
            finished_at: None,
            duration_ms: Some(3),
        }
    }

    /// The typed views answer exactly what the engine's JSON (and the stored record) says.
    #[test]
    fn execution_views_keep_the_engine_shapes() {
        use weft_engine::store::{ExecStatus as E, TaskStatus as T};
        let exec = ExecutionRecord {
            id: "e1".into(),
            workflow_id: 7,
            workflow_name: "wf".into(),
            workflow_version: 2,
            status: E::Failed,
            org: "acme".into(),
            input: serde_json::json!({"a": 1}),
            vars: None,
            trigger: serde_json::json!({"type": "api"}),
            output: None,
            error: Some("boom".into()),
            parent_id: None,
            parent_task: None,
            rerun_of: Some("e0".into()),
            cancel_requested: false,
            owner: Some("host:1".into()),
            lease_until_ms: Some(5),
            concurrency_key: Some(String::new()),
            concurrency_limit: Some(2),
            sealed: Some("sealed".into()),
            created_at: "2025-01-01T00:00:00Z".into(),
            started_at: None,
            finished_at: None,
        };
        let runs = vec![
            run("a", -1, 1, T::Failed),
            run("a", -1, 2, T::Succeeded),
            run("b", 0, 1, T::Succeeded),
            run("b", -1, 0, T::Failed),
        ];
        let engine = weft_engine::executor::execution_json(&exec, &runs);
        let typed = serde_json::to_value(Execution::new(&exec, &runs)).unwrap();
        assert_eq!(typed, engine);
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            serde_json::to_string(&engine).unwrap(),
            "the same key order"
        );
        let detailed = serde_json::to_value(Execution::new(&exec, &runs).with_runs(&runs)).unwrap();
        let b = detailed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "b")
            .unwrap();
        assert_eq!(b["runs"].as_array().unwrap().len(), 2);
        assert_eq!(b["runs"][0]["item"], 0);
        assert!(b.get("input").is_some());
        let listed = serde_json::to_value(ExecutionListed::from(exec.clone())).unwrap();
        assert_eq!(listed, serde_json::to_value(&exec).unwrap());
    }
}
