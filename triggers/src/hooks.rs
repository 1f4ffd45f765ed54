//! `POST /hooks/{trigger}/{org}`: webhook triggers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use weft_engine::Workflow;
use weft_engine::executor::scope::{Extra, context, to_value};
use weft_engine::executor::{Start, StartOptions};
use weft_engine::model::{RunFor, Trigger, TriggerKind, WebhookResponse, WebhookSecret};
use weft_engine::store::{ExecStatus, Store, TriggerEvent, WorkflowRecord};

use crate::{ApiError, AppState, constant_time_eq};

/// The body limit when the trigger sets none.
const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
/// How long `response: wait` waits when the trigger sets no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// Headers never copied into TRIGGER (it is stored with the execution).
const HIDDEN_HEADERS: &[&str] = &["authorization", "cookie", "x-weft-secret"];

/// The deployed workflow whose trigger is named `name` (a webhook).
async fn find(
    state: &AppState,
    name: &str,
) -> Result<(WorkflowRecord, Arc<Workflow>, usize), ApiError> {
    let mut found = state.webhook_triggers(name).await?;
    match found.len() {
        0 => Err(ApiError::NotFound(format!("no webhook trigger `{name}`"))),
        1 => Ok(found.pop().expect("one")),
        _ => Err(ApiError::Conflict(format!(
            "several workflows declare a webhook trigger `{name}`"
        ))),
    }
}

struct Event<'a> {
    state: &'a AppState,
    workflow: &'a str,
    trigger: &'a str,
    org: &'a str,
}

impl Event<'_> {
    fn event(&self, outcome: &str, status: StatusCode, reason: Option<String>) -> TriggerEvent {
        TriggerEvent {
            outcome: outcome.into(),
            reason,
            status: i64::from(status.as_u16()),
            ..TriggerEvent::new(self.workflow, self.trigger, "webhook", self.org)
        }
    }

    /// Records an event that started nothing.
    async fn record(&self, outcome: &str, status: StatusCode, reason: Option<String>) {
        self.state
            .metrics()
            .webhook(self.workflow, self.trigger, outcome);
        let e = self.event(outcome, status, reason);
        if let Err(err) = self.state.store().record_event(&e, &[]).await {
            tracing::error!(error = ?err, "cannot record a webhook event");
        }
    }

    /// Records the rejection and answers the error.
    async fn reject(&self, err: ApiError) -> Response {
        let reason = match &err {
            ApiError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        self.record("rejected", err.status(), Some(reason)).await;
        err.into_response()
    }
}

fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if ctype.starts_with("application/json") || ctype.contains("+json") {
        return serde_json::from_slice(bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")));
    }
    if ctype.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not a form: {e}")))?;
        let mut m = Map::new();
        for (k, v) in pairs {
            m.insert(k, Value::String(v));
        }
        return Ok(Value::Object(m));
    }
    Ok(Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

pub(crate) fn headers_json(headers: &HeaderMap) -> Value {
    let mut m = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if HIDDEN_HEADERS.contains(&name) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            m.insert(name.to_string(), Value::String(v.to_string()));
        }
    }
    Value::Object(m)
}

/// The workflow inputs: the trigger's `input:` templates, else the body's top-level keys
/// that are declared inputs.
pub(crate) fn inputs(
    wf: &Workflow,
    trigger: &Trigger,
    event: &Value,
    ctx: &minijinja::Value,
) -> Result<Map<String, Value>, ApiError> {
    if !trigger.input.is_empty() {
        let mut out = Map::new();
        for (k, t) in &trigger.input {
            let v = t
                .render(ctx)
                .map_err(|e| ApiError::InvalidInput(format!("trigger input `{k}`: {e}")))?;
            out.insert(k.clone(), v);
        }
        return Ok(out);
    }
    Ok(event["body"]
        .as_object()
        .map(|b| {
            b.iter()
                .filter(|(k, _)| wf.input.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default())
}

pub(crate) async fn hook(
    State(state): State<AppState>,
    Path((name, org)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (record, wf, index) = match find(&state, &name).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let trigger = &wf.triggers[index];
    let TriggerKind::Webhook {
        secret,
        response,
        wait_timeout,
        max_body_bytes,
        rate_limit,
    } = &trigger.kind
    else {
        unreachable!("find returns webhook triggers")
    };
    let ev = Event {
        state: &state,
        workflow: &wf.name,
        trigger: &trigger.name,
        org: &org,
    };
    let switches = match crate::Switches::load(state.store().as_ref()).await {
        Ok(s) => s,
        Err(e) => return ev.reject(e.into()).await,
    };
    if !switches.enabled(&wf.name, trigger) {
        return ev
            .reject(ApiError::NotFound(format!(
                "webhook trigger `{name}` is disabled"
            )))
            .await;
    }
    if let Some(rate) = rate_limit
        && !state.take_token(&wf.name, &trigger.name, *rate)
    {
        return ev.reject(ApiError::RateLimited).await;
    }
    if *secret == WebhookSecret::Required {
        let expected = match state.trigger_secret(&wf.name, &trigger.name).await {
            Ok(s) => s,
            Err(e) => return ev.reject(e).await,
        };
        let given = headers.get("x-weft-secret").map(|v| v.as_bytes());
        let err = match given {
            None => Some("missing x-weft-secret header"),
            Some(g) if !constant_time_eq(g, expected.as_bytes()) => Some("wrong webhook secret"),
            Some(_) => None,
        };
        if let Some(msg) = err {
            return ev.reject(ApiError::Unauthorized(msg.into())).await;
        }
    }
    let limit = max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ev.reject(ApiError::TooLarge(limit)).await;
    }
    let bytes = match axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await
    {
        Ok(b) => b,
        Err(_) => return ev.reject(ApiError::TooLarge(limit)).await,
    };
    let body = match parse_body(&headers, &bytes) {
        Ok(b) => b,
        Err(e) => return ev.reject(e).await,
    };
    let params: Map<String, Value> = params
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let event = json!({
        "type": "webhook",
        "name": trigger.name,
        "org": org,
        "body": body,
        "headers": headers_json(&headers),
        "params": params,
    });
    let now = jiff::Timestamp::now().to_string();
    let ctx = context(&[("TRIGGER", to_value(&event))], &now, Extra::default());
    if let Some(criteria) = &trigger.criteria {
        let holds = match criteria.render_value(&ctx) {
            Ok(v) => v.is_true(),
            Err(e) => {
                let reason = format!("criteria could not be evaluated: {e}");
                ev.record("filtered", StatusCode::OK, Some(reason.clone()))
                    .await;
                return Json(json!({"accepted": false, "reason": reason})).into_response();
            }
        };
        if !holds {
            let reason = "criteria not met".to_string();
            ev.record("filtered", StatusCode::OK, Some(reason.clone()))
                .await;
            return Json(json!({"accepted": false, "reason": reason})).into_response();
        }
    }
    let input = match inputs(&wf, trigger, &event, &ctx) {
        Ok(i) => i,
        Err(e) => return ev.reject(e).await,
    };
    let starts = match starts(
        state.store().as_ref(),
        &record,
        trigger,
        &org,
        &input,
        &event,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return ev.reject(e).await,
    };
    let accepted_event = ev.event("accepted", StatusCode::ACCEPTED, None);
    let ids = match state.engine().enqueue(&accepted_event, starts).await {
        Ok(Some(ids)) => ids,
        Ok(None) => unreachable!("webhook events have no de-duplication key"),
        Err(e) => return ev.reject(e.into()).await,
    };
    state.metrics().webhook(&wf.name, &trigger.name, "accepted");
    let id = ids[0].clone();
    tracing::info!(workflow = %wf.name, trigger = %trigger.name, execution_ids = ?ids, "webhook accepted");
    let accepted = (StatusCode::ACCEPTED, Json(json!({"id": id, "ids": ids})));
    match response {
        WebhookResponse::Wait => {
            let wait = wait_timeout.unwrap_or(DEFAULT_WAIT);
            match state.engine().wait_for(&id, wait).await {
                Ok(Some(exec)) if exec.status == ExecStatus::Succeeded => {
                    Json(exec.output.unwrap_or(Value::Null)).into_response()
                }
                Ok(Some(exec)) => {
                    let why = exec
                        .error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    let error = json!({
                        "code": "execution_failed",
                        "message": format!("execution {id} {}{why}", exec.status),
                    });
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Json(json!({"error": error, "id": id})),
                    )
                        .into_response()
                }
                Ok(None) => accepted.into_response(),
                Err(e) => ApiError::from(e).into_response(),
            }
        }
        _ => accepted.into_response(),
    }
}

/// The executions an event starts: one per org it runs for, each with the same inputs.
pub(crate) async fn starts(
    store: &dyn Store,
    record: &WorkflowRecord,
    trigger: &Trigger,
    own_org: &str,
    input: &Map<String, Value>,
    event: &Value,
) -> Result<Vec<Start>, ApiError> {
    let orgs = run_for_orgs(store, &trigger.run_for, own_org).await?;
    Ok(starts_for(record, trigger, orgs, input, event))
}

/// One execution of `record` per org in `orgs`, each with the event as TRIGGER.
pub(crate) fn starts_for(
    record: &WorkflowRecord,
    trigger: &Trigger,
    orgs: Vec<String>,
    input: &Map<String, Value>,
    event: &Value,
) -> Vec<Start> {
    let event = with_integration(trigger, event);
    orgs.into_iter()
        .map(|o| Start {
            workflow: record.clone(),
            input: input.clone(),
            opts: StartOptions {
                org: Some(o),
                trigger: Some(event.clone()),
            },
        })
        .collect()
}

/// The event as executions store it: with the trigger's `integration:` override, which
/// tasks without their own then use (`TRIGGER.integration`).
pub(crate) fn with_integration(trigger: &Trigger, event: &Value) -> Value {
    let mut event = event.clone();
    if let (Some(o), Some(map)) = (&trigger.integration, event.as_object_mut()) {
        map.insert("integration".into(), o.to_json());
    }
    event
}

/// The orgs a trigger event runs for: the event's own org, the trigger's list, or every
/// managed org (`all_managed`; none is a conflict).
pub(crate) async fn run_for_orgs(
    store: &dyn Store,
    run_for: &RunFor,
    own: &str,
) -> Result<Vec<String>, ApiError> {
    match run_for {
        RunFor::Owner => Ok(vec![own.to_string()]),
        RunFor::Orgs(list) => Ok(list.clone()),
        RunFor::AllManaged => {
            let orgs = weft_engine::org::managed_orgs(store).await?;
            if orgs.is_empty() {
                return Err(ApiError::Conflict(NO_MANAGED_ORGS.into()));
            }
            Ok(orgs.into_iter().map(|o| o.id).collect())
        }
    }
}

/// Why an `all_managed` event starts nothing.
pub(crate) const NO_MANAGED_ORGS: &str =
    "run_for: all_managed, but there are no managed organizations (active orgs below the root org)";
