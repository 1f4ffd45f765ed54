//! `/api/*` handlers.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use weft_engine::Workflow;
use weft_engine::executor::{RerunOptions, StartOptions};
use weft_engine::model::{TriggerKind, WebhookResponse, WebhookSecret};
use weft_engine::store::{ExecStatus, ExecutionFilter};

use crate::{ApiError, AppState, execution_json, webhook_access};

type Params = Query<HashMap<String, String>>;

/// The longest `?wait=` honoured.
const MAX_WAIT: Duration = Duration::from_secs(300);

fn diagnostics(source: &str, state: &AppState) -> (Option<Workflow>, Vec<Value>) {
    let loaded = weft_engine::load(source, state.engine().registry());
    let list = loaded
        .diagnostics
        .iter()
        .map(|d| {
            json!({
                "file": "request",
                "line": d.span.line,
                "column": d.span.column,
                "severity": d.severity,
                "code": d.code,
                "message": d.message,
                "help": d.help,
            })
        })
        .collect();
    (loaded.workflow, list)
}

fn body_text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))
}

/// A request body as a JSON object — the one rule for every JSON endpoint: an empty or
/// whitespace-only body is the empty object (so endpoints whose fields are all optional need
/// no body, and ones with required fields report the missing field, not a parse error);
/// valid JSON that is not an object is 422; anything else is 400 "not JSON".
///
/// # Errors
/// [`ApiError::InvalidInput`] for JSON that is not an object; [`ApiError::BadRequest`] for a
/// body that is not JSON.
pub(crate) fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::InvalidInput(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!("the body is not JSON: {e}"))),
    }
}

/// The name of a trigger's type (`webhook`, `cron`, `autotask.ticket` …).
pub fn trigger_type(kind: &TriggerKind) -> String {
    match kind {
        TriggerKind::AlwaysPass => "always_pass".into(),
        TriggerKind::Webhook { .. } => "webhook".into(),
        TriggerKind::Cron { .. } => "cron".into(),
        TriggerKind::Autotask { entity, .. } => format!("autotask.{entity}"),
    }
}

/// The triggers of a workflow as JSON (webhooks: the URL and the orgs they run for; never
/// a secret).
async fn triggers_json(state: &AppState, wf: &Workflow) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    let switches = crate::Switches::load(state.store().as_ref()).await?;
    for t in &wf.triggers {
        let mut v = json!({
            "workflow": wf.name,
            "name": t.name,
            "type": trigger_type(&t.kind),
            "enabled": switches.enabled(&wf.name, t),
        });
        if let TriggerKind::Cron {
            schedule, timezone, ..
        } = &t.kind
        {
            let tz_name = timezone.as_deref().unwrap_or("UTC");
            v["schedule"] = json!(schedule);
            v["timezone"] = json!(tz_name);
            // The next slot, in the trigger's zone (absent when the schedule cannot fire).
            let next = crate::cron::next_slot(t, state.engine().now())
                .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string());
            v["next_at"] = json!(next);
        }
        if let TriggerKind::Webhook {
            secret, response, ..
        } = &t.kind
        {
            v["url"] = json!(state.hook_url(&t.name));
            v["response"] = json!(match response {
                WebhookResponse::Wait => "wait",
                _ => "accepted",
            });
            v["secret_required"] = json!(*secret == WebhookSecret::Required);
            let orgs = webhook_access::entitled_orgs(state.store().as_ref(), t).await?;
            v["orgs"] = json!(orgs.into_iter().map(|o| o.id).collect::<Vec<_>>());
        }
        out.push(v);
    }
    Ok(out)
}

pub(crate) async fn list_workflows(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list: Vec<Value> = state
        .store()
        .list_workflows()
        .await?
        .into_iter()
        .map(|r| {
            json!({"name": r.name, "version": r.version, "path": r.path, "created_at": r.created_at})
        })
        .collect();
    Ok(Json(json!(list)))
}

pub(crate) async fn get_workflow(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let latest = deployed(&state, &name).await?;
    let record = match params.get("version").filter(|v| !v.is_empty()) {
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
    Ok(Json(json!({
        "name": record.name,
        "version": record.version,
        "latest_version": latest.version,
        "description": wf.description,
        "path": record.path,
        "created_at": record.created_at,
        "inputs": wf.input.keys().collect::<Vec<_>>(),
        "input_schema": input_schema(&wf),
        "graph": graph_json(&wf),
        "triggers": triggers_json(&state, &wf).await?,
        "source": record.source,
    })))
}

/// Each input's type, default and constraints, for forms. Defaults of secret inputs are
/// left out: forms must not prefill them.
fn input_schema(wf: &Workflow) -> Value {
    let mut out = Map::new();
    for (name, p) in &wf.input {
        out.insert(
            name.clone(),
            json!({
                "type": p.ty.name(),
                "required": p.required,
                "default": if p.secret { None } else { p.default.clone() },
                "description": p.description,
                "enum": p.allowed,
                "secret": p.secret,
            }),
        );
    }
    Value::Object(out)
}

/// The task graph: each task with its action and routes, and the tasks that start a run.
fn graph_json(wf: &Workflow) -> Value {
    use weft_engine::model::On;
    let tasks: Vec<Value> = wf
        .tasks
        .values()
        .map(|t| {
            let next: Vec<Value> = t
                .next
                .iter()
                .map(|r| {
                    json!({
                        "on": match r.on {
                            On::Success => "success",
                            On::Failure => "failure",
                            On::Always => "always",
                        },
                        "when": r.when.is_some(),
                        "targets": r.targets.iter().map(|t| t.value.as_str()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "name": t.name,
                "action": t.action.value,
                "description": t.description,
                "items": t.with.is_some(),
                "next": next,
            })
        })
        .collect();
    json!({"start": wf.start_tasks, "tasks": tasks})
}

pub(crate) async fn validate(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (_, list) = diagnostics(body_text(&body)?, &state);
    Ok(Json(json!(list)))
}

pub(crate) async fn deploy_workflow(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let source = body_text(&body)?;
    let (wf, list) = diagnostics(source, &state);
    let Some(wf) = wf else {
        let errors = list.iter().filter(|d| d["severity"] == "error").count();
        return Err(ApiError::InvalidWorkflow {
            message: format!("the workflow is invalid: {errors} error(s)"),
            diagnostics: list,
        });
    };
    let record = state.engine().deploy(source, None).await?;
    // The secrets issued now are shown once, here; later, per org through
    // `GET /api/triggers/{workflow}/{trigger}/secrets/{org}`.
    let issued = webhook_access::issue_missing(state.engine(), &wf).await?;
    crate::autotask::sync_in_background(&state);
    Ok(Json(json!({
        "name": record.name,
        "version": record.version,
        "diagnostics": list,
        "triggers": triggers_json(&state, &wf).await?,
        "secrets_issued": issued,
    })))
}

fn wait_param(params: &HashMap<String, String>) -> Result<Option<Duration>, ApiError> {
    params
        .get("wait")
        .map(|w| {
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
) -> Result<Response, ApiError> {
    let handle = state.workers().spawn(id.clone());
    if let Some(wait) = wait
        && let Ok(joined) = tokio::time::timeout(wait, handle).await
    {
        let exec = joined.map_err(|e| ApiError::Internal(format!("worker panicked: {e}")))??;
        let runs = state.store().task_runs(&exec.id).await?;
        return Ok(Json(execution_json(&exec, &runs)).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id}))).into_response())
}

pub(crate) async fn run_workflow(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let wait = wait_param(&params)?;
    let input = body_object(&body)?;
    let record = deployed(&state, &name).await?;
    let opts = StartOptions {
        org: params.get("org").cloned(),
        trigger: Some(json!({"type": "api"})),
    };
    let id = state.engine().start(&record, input, opts).await?;
    dispatch(&state, id, wait).await
}

pub(crate) async fn list_executions(
    State(state): State<AppState>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let status = match params.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(ExecStatus::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown status `{s}` (pending, running, succeeded, failed, cancelled)"
            ))
        })?),
    };
    let limit = match params.get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| ApiError::BadRequest("`limit` must be a positive number".into()))?
            .min(1000),
    };
    let offset = match params.get("offset") {
        None => 0,
        Some(o) => o.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| {
            ApiError::BadRequest("`offset` must be 0 or a positive number".into())
        })?,
    };
    // `since`: an instant (RFC 3339) or how long ago (`1h`, `7d`).
    let created_after = match params.get("since").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let at = match s.parse::<jiff::Timestamp>() {
                Ok(t) => t,
                Err(_) => {
                    let ago = weft_engine::model::parse_duration(s)
                        .and_then(|d| jiff::SignedDuration::try_from(d).ok())
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "`since` must be an RFC 3339 instant or a duration like 1h or 7d, got `{s}`"
                            ))
                        })?;
                    state.engine().now().checked_sub(ago).map_err(|_| {
                        ApiError::BadRequest(format!("`since` {s} reaches too far back"))
                    })?
                }
            };
            Some(at.to_string())
        }
    };
    let top_level_only = match params.get("top_level").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`top_level` must be true or false".into(),
            ));
        }
    };
    let filter = ExecutionFilter {
        status,
        workflow: params.get("workflow").filter(|w| !w.is_empty()).cloned(),
        org: params.get("org").filter(|o| !o.is_empty()).cloned(),
        top_level_only,
        limit: Some(limit),
        offset: Some(offset),
        created_after,
    };
    let list = state.store().list_executions(&filter).await?;
    Ok(Json(
        serde_json::to_value(list).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

async fn execution_with_tasks(state: &AppState, id: &str) -> Result<Json<Value>, ApiError> {
    let exec = state
        .store()
        .execution(id)
        .await
        .map_err(|e| match e.kind() {
            weft_engine::store::StoreErrorKind::NotFound => {
                ApiError::NotFound(format!("no execution `{id}`"))
            }
            _ => e.into(),
        })?;
    let runs = state.store().task_runs(&exec.id).await?;
    Ok(Json(execution_json(&exec, &runs)))
}

pub(crate) async fn get_execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let detail = match params.get("detail").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`detail` must be true or false".into(),
            ));
        }
    };
    let Json(mut exec) = execution_with_tasks(&state, &id).await?;
    if detail {
        let runs = state.store().task_runs(&id).await?;
        add_runs(&mut exec, &runs);
    }
    Ok(Json(exec))
}

/// Adds to each task of an execution its `runs` — every attempt (and item) with its rendered
/// input (secrets were redacted when stored), result, error and timing — and its `input`
/// (the rendered input of its last attempt).
fn add_runs(exec: &mut Value, runs: &[weft_engine::store::TaskRun]) {
    let Some(tasks) = exec["tasks"].as_array_mut() else {
        return;
    };
    for task in tasks {
        let Some(name) = task["name"].as_str().map(str::to_string) else {
            continue;
        };
        let mine: Vec<&weft_engine::store::TaskRun> =
            runs.iter().filter(|r| r.task == name).collect();
        let input = mine
            .iter()
            .filter(|r| r.item == -1 && r.input.is_some())
            .max_by_key(|r| r.attempt)
            .and_then(|r| r.input.clone());
        task["input"] = json!(input);
        task["runs"] = mine
            .iter()
            .map(|r| {
                json!({
                    "item": if r.item < 0 { None } else { Some(r.item) },
                    "attempt": r.attempt,
                    "status": r.status,
                    "input": r.input,
                    "result": r.result,
                    "error": r.error,
                    "reused": r.reused,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "duration_ms": r.duration_ms,
                })
            })
            .collect();
    }
}

pub(crate) async fn cancel_execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .store()
        .execution(&id)
        .await
        .map_err(|e| match e.kind() {
            weft_engine::store::StoreErrorKind::NotFound => {
                ApiError::NotFound(format!("no execution `{id}`"))
            }
            _ => e.into(),
        })?;
    state.engine().cancel(&id).await?;
    execution_with_tasks(&state, &id).await
}

pub(crate) async fn rerun_execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let opts = body_object(&body)?;
    let from = match opts.get("from") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::BadRequest("`from` must be a task name".into())),
    };
    let failed_items = match opts.get("failed_items") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`failed_items` must be true or false".into(),
            ));
        }
    };
    state
        .store()
        .execution(&id)
        .await
        .map_err(|e| match e.kind() {
            weft_engine::store::StoreErrorKind::NotFound => {
                ApiError::NotFound(format!("no execution `{id}`"))
            }
            _ => e.into(),
        })?;
    let new_id = state
        .engine()
        .rerun(&id, RerunOptions { from, failed_items })
        .await?;
    dispatch(&state, new_id, None).await
}

pub(crate) async fn list_actions(State(state): State<AppState>) -> Json<Value> {
    let mut list: Vec<Value> = state
        .engine()
        .registry()
        .specs()
        .map(|s| json!({"name": s.name, "description": s.description}))
        .collect();
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Json(json!(list))
}

pub(crate) async fn get_action(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let spec = state
        .engine()
        .registry()
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no action named `{name}`")))?;
    Ok(Json(json!({
        "name": spec.name,
        "description": spec.description,
        "params": spec.params,
    })))
}

pub(crate) async fn list_triggers(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for record in state.store().list_workflows().await? {
        let wf = state.parsed(&record)?;
        out.extend(triggers_json(&state, &wf).await?);
    }
    Ok(Json(json!(out)))
}

pub(crate) async fn trigger_events(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let events = state
        .store()
        .trigger_events(&workflow, &trigger, limit)
        .await?;
    Ok(Json(
        serde_json::to_value(events).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

/// `POST /api/triggers/{workflow}/{trigger}/enable` and `/disable`: switches a trigger (the
/// switch outlives redeploys; it overrides the workflow's `enabled:`).
/// A workflow's trigger by name, or 404 naming the closest one.
fn trigger_of<'a>(
    wf: &'a Workflow,
    trigger: &str,
) -> Result<&'a weft_engine::model::Trigger, ApiError> {
    wf.triggers
        .iter()
        .find(|t| t.name == trigger)
        .ok_or_else(|| {
            let hint = weft_engine::diagnostic::did_you_mean(
                trigger,
                wf.triggers.iter().map(|t| t.name.as_str()),
            )
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
            ApiError::NotFound(format!(
                "workflow `{}` has no trigger `{trigger}`{hint}",
                wf.name
            ))
        })
}

async fn switch_trigger(
    state: &AppState,
    workflow: &str,
    trigger: &str,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let record = deployed(state, workflow).await?;
    let wf = state.parsed(&record)?;
    trigger_of(&wf, trigger)?;
    state
        .store()
        .set_trigger_enabled(workflow, trigger, enabled)
        .await?;
    let all = triggers_json(state, &wf).await?;
    Ok(Json(
        all.into_iter()
            .find(|t| t["name"] == trigger)
            .unwrap_or(Value::Null),
    ))
}

pub(crate) async fn enable_trigger(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    switch_trigger(&state, &workflow, &trigger, true).await
}

pub(crate) async fn disable_trigger(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    switch_trigger(&state, &workflow, &trigger, false).await
}

/// `POST /api/triggers/{workflow}/{trigger}/fire`: fires a cron trigger now.
pub(crate) async fn fire_trigger(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let record = deployed(&state, &workflow).await?;
    let wf = state.parsed(&record)?;
    let t = trigger_of(&wf, &trigger)?;
    match &t.kind {
        TriggerKind::Cron { .. } => {}
        TriggerKind::Webhook { .. } => {
            return Err(ApiError::Conflict(format!(
                "trigger `{trigger}` is a webhook: POST to its URL, /hooks/{trigger}/ORG"
            )));
        }
        _ => {
            return Err(ApiError::Conflict(format!(
                "only cron triggers fire by hand; run the workflow instead: POST /api/workflows/{workflow}/run"
            )));
        }
    }
    let fired = crate::cron::fire_now(state.engine(), &record, &wf, t)
        .await
        .map_err(|e| match e {
            weft_engine::executor::EngineError::Input(m) => ApiError::Conflict(m),
            other => ApiError::from(other),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"outcome": fired.outcome, "executions": fired.executions})),
    )
        .into_response())
}

/// The latest deployed version of a workflow, or 404.
async fn deployed(
    state: &AppState,
    name: &str,
) -> Result<weft_engine::store::WorkflowRecord, ApiError> {
    state
        .store()
        .workflow(name, None)
        .await
        .map_err(|e| match e.kind() {
            weft_engine::store::StoreErrorKind::NotFound => {
                ApiError::NotFound(format!("no workflow named `{name}` is deployed"))
            }
            _ => e.into(),
        })
}

/// `GET /api/triggers/{workflow}/{trigger}/secrets/{org}`: the webhook secret of one org's
/// sender (issued now if it has none).
pub(crate) async fn webhook_secret(
    State(state): State<AppState>,
    Path((workflow, trigger, org)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let record = deployed(&state, &workflow).await?;
    let wf = state.parsed(&record)?;
    let t = trigger_of(&wf, &trigger)?;
    let issued = webhook_access::secret(state.engine(), &workflow, t, &org).await?;
    Ok(Json(secret_json(&state, issued)))
}

/// `POST /api/triggers/{workflow}/{trigger}/secrets/{org}/rotate` (`{"grace": "1h"}`
/// optional): a new secret; the old one is refused at once, or after the grace period.
pub(crate) async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Path((workflow, trigger, org)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = body_object(&body)?;
    let grace = match body.get("grace") {
        None | Some(Value::Null) => None,
        Some(Value::String(g)) => Some(weft_engine::model::parse_duration(g).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`grace` must be a duration like 15m, 1h or 7d, not `{g}`"
            ))
        })?),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`grace` must be a duration like 15m, 1h or 7d".into(),
            ));
        }
    };
    let record = deployed(&state, &workflow).await?;
    let wf = state.parsed(&record)?;
    let t = trigger_of(&wf, &trigger)?;
    let issued = webhook_access::rotate(state.engine(), &workflow, t, &org, grace).await?;
    Ok(Json(secret_json(&state, issued)))
}

fn secret_json(state: &AppState, issued: webhook_access::IssuedSecret) -> Value {
    let url = state
        .hook_url(&issued.trigger)
        .replace("{org}", &issued.org);
    let mut v = json!(issued);
    v["url"] = json!(url);
    v
}

#[cfg(test)]
mod body_tests {
    use super::*;

    #[test]
    fn body_object_reads_empty_as_empty_object_and_refuses_the_rest() {
        for empty in ["", "   ", "\n\t \r\n"] {
            assert_eq!(
                body_object(empty.as_bytes()).unwrap(),
                Map::new(),
                "{empty:?}"
            );
        }
        let m = body_object(br#"{"a": 1}"#).unwrap();
        assert_eq!(m.get("a"), Some(&Value::from(1)));
        for not_object in ["[]", "1", "\"text\"", "null"] {
            let e = body_object(not_object.as_bytes()).unwrap_err();
            assert!(
                matches!(&e, ApiError::InvalidInput(m) if m == "the body must be a JSON object"),
                "{not_object}: {e:?}"
            );
        }
        let e = body_object(b"{nope").unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest(m) if m.starts_with("the body is not JSON")),
            "{e:?}"
        );
    }
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use axum::routing::{get, post};
    utoipa_axum::router::OpenApiRouter::new()
        .route("/api/workflows", get(list_workflows).post(deploy_workflow))
        .route("/api/workflows/validate", post(validate))
        .route("/api/workflows/{name}", get(get_workflow))
        .route("/api/workflows/{name}/run", post(run_workflow))
        .route("/api/executions", get(list_executions))
        .route("/api/executions/{id}", get(get_execution))
        .route("/api/executions/{id}/cancel", post(cancel_execution))
        .route("/api/executions/{id}/rerun", post(rerun_execution))
        .route("/api/actions", get(list_actions))
        .route("/api/actions/{name}", get(get_action))
        .route("/api/triggers", get(list_triggers))
        .route(
            "/api/triggers/{workflow}/{trigger}/events",
            get(trigger_events),
        )
        .route(
            "/api/triggers/{workflow}/{trigger}/enable",
            post(enable_trigger),
        )
        .route(
            "/api/triggers/{workflow}/{trigger}/fire",
            post(fire_trigger),
        )
        .route(
            "/api/triggers/{workflow}/{trigger}/disable",
            post(disable_trigger),
        )
        .route(
            "/api/triggers/{workflow}/{trigger}/secrets/{org}",
            get(webhook_secret),
        )
        .route(
            "/api/triggers/{workflow}/{trigger}/secrets/{org}/rotate",
            post(rotate_webhook_secret),
        )
}
