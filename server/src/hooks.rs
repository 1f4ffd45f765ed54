//! `POST /hooks/{trigger}/{org}`: webhook triggers. The handler reads the request, lets
//! `weft_triggers` decide (`webhook_access`: who may send; `webhook`: secret, rate limit,
//! body, criteria, the event), records the outcome and answers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_engine::Workflow;
use weft_engine::action::now_rfc3339;
use weft_engine::model::{TriggerKind, WebhookResponse};
use weft_engine::store::{ExecStatus, TriggerEvent, WorkflowRecord};

use crate::openapi::{ErrorBody, ErrorDetail};
use crate::{ApiError, AppState};
use weft_triggers::event::{Admission, admit, starts_for};
use weft_triggers::webhook::{self, DEFAULT_WAIT};
use weft_triggers::webhook_access::entitled_org;

/// A webhook or callout that started executions (queued for a worker).
#[derive(Serialize, ToSchema)]
pub struct WebhookAccepted {
    /// The (first) execution.
    pub id: Option<String>,
    /// Every execution started (one per org the trigger runs for).
    pub ids: Vec<String>,
}

/// An event that started nothing, and why (the trigger's criteria did not hold, say).
#[derive(Serialize, ToSchema)]
pub struct NotAccepted {
    /// Always `false`.
    pub accepted: bool,
    /// Why nothing started.
    pub reason: String,
}

impl NotAccepted {
    /// Nothing started because of `reason`.
    pub fn because(reason: String) -> NotAccepted {
        NotAccepted {
            accepted: false,
            reason,
        }
    }
}

/// A `response: wait` trigger's execution that did not succeed (`code: execution_failed`).
#[derive(Serialize, ToSchema)]
pub struct ExecutionFailed {
    /// `execution_failed` and the execution's status and error.
    pub error: ErrorDetail,
    /// The execution.
    pub id: String,
}

/// The deployed workflow whose trigger is named `name` (a webhook).
async fn find(
    state: &AppState,
    name: &str,
) -> Result<(WorkflowRecord, Arc<Workflow>, usize), ApiError> {
    let found = state.webhook_triggers(name).await?;
    Ok(webhook::one_trigger(found, name)?)
}

/// The reason label of a refusal in `/metrics`.
fn reason_of(err: &ApiError) -> &'static str {
    match err {
        ApiError::Unauthorized(_) => "unauthorized",
        ApiError::TooLarge(_) => "too_large",
        ApiError::RateLimited => "rate_limited",
        ApiError::InvalidInput(_)
        | ApiError::InvalidWorkflow { .. }
        | ApiError::InvalidForm { .. } => "invalid_input",
        ApiError::Unavailable(_) => "unavailable",
        ApiError::Internal(_) => "internal",
        _ => "bad_request",
    }
}

/// A refusal before any trigger was found: counted, never stored.
fn refuse(
    state: &AppState,
    source: Option<IpAddr>,
    reason: &'static str,
    err: ApiError,
) -> Response {
    state.metrics().rejection(reason);
    if !matches!(err, ApiError::Unavailable(_) | ApiError::Internal(_)) {
        state.guards().source_failed(source);
    }
    err.into_response()
}

struct Event<'a> {
    state: &'a AppState,
    workflow: &'a str,
    trigger: &'a str,
    org: &'a str,
    source: Option<IpAddr>,
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

    /// Answers the error; records the rejection as an event when it is among the sampled
    /// few of this minute (all are counted in `/metrics`). `failed`: the request did not
    /// authenticate, so it counts against its source's budget.
    async fn reject(&self, err: ApiError, failed: bool) -> Response {
        let reason = match &err {
            ApiError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let label = reason_of(&err);
        self.reject_because(err, label, reason, failed).await
    }

    /// As [`Event::reject`], counted in `/metrics` as `label` and recording `reason` (for the
    /// operator) where the answer says less (to a caller who has not authenticated).
    async fn reject_because(
        &self,
        err: ApiError,
        label: &'static str,
        reason: String,
        failed: bool,
    ) -> Response {
        self.state.metrics().rejection(label);
        self.state
            .metrics()
            .webhook(self.workflow, self.trigger, "rejected");
        if failed {
            self.state.guards().source_failed(self.source);
        }
        let unix = u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or_default();
        if self
            .state
            .guards()
            .sample_rejection(self.workflow, self.trigger, unix)
        {
            let e = self.event("rejected", err.status(), Some(reason));
            if let Err(store_err) = self.state.store().record_event(&e, &[]).await {
                tracing::error!(error = ?store_err, "cannot record a webhook event");
            }
        }
        err.into_response()
    }
}

/// Fire a webhook trigger.
///
/// Starts one execution of the workflow that declares the webhook trigger `trigger`, for
/// `org` — only if `org` is a registered, active org the trigger runs for (`run_for`: the root
/// org for `owner`, a listed org, or any managed org for `all_managed`); anything else is 404
/// before anything is stored. `trigger` and `org` are 1–128 letters, digits, `-`, `_` or `.`.
/// With `secret: required`, `x-weft-secret` must be that org's own secret
/// (`GET /api/triggers/{workflow}/{trigger}/secrets/{org}`); a trigger with `secret: none` runs
/// only for its owner org. The body is parsed by content type (JSON, form, else text) and,
/// with the headers (never credential-like ones: `authorization`, `cookie`, `x-api-key`,
/// names containing `secret`, `token`, `password` or `key`) and query parameters, becomes
/// `TRIGGER`. Not behind the API token. 429 when the trigger's `rate_limit` (per org,
/// authenticated requests only) is spent or when the sender's address has failed too often.
///
/// Checks run cheapest and least trusting first: the source's failure budget, the path's
/// shape, the trigger, its switch, the org binding, the secret; only then the rate limit (so
/// that failures cannot spend a sender's budget), the body and the criteria.
#[utoipa::path(
    post,
    path = "/hooks/{trigger}/{org}",
    tag = "webhooks",
    security((), ("webhookSecret" = [])),
    params(
        ("trigger" = String, Path, description = "The webhook trigger's name."),
        ("org" = String, Path, description = "The organization the event is for."),
        ("x-weft-secret" = Option<String>, Header, description = "The trigger's secret, when it requires one."),
    ),
    request_body(
        description = "Any payload (JSON, a form, else text), up to the trigger's `max_body_bytes` (1 MiB by default).",
        content(
            (Option<Object> = "application/json"),
            (Option<std::collections::HashMap<String, String>> = "application/x-www-form-urlencoded"),
            (Option<String> = "text/plain"),
        ),
    ),
    responses(
        (status = 202, description = "Accepted: the execution was started (a `response: wait` trigger whose execution did not end in time answers this too).", body = WebhookAccepted),
        (status = 200, description = "The trigger's criteria did not hold (`{\"accepted\": false, \"reason\"}`, nothing started); or a `response: wait` trigger's execution succeeded: then the answer is its output, any JSON.", body = NotAccepted),
        (status = 400, description = "The body does not parse as its content type says.", body = ErrorBody),
        (status = 401, description = "Missing or wrong `x-weft-secret`.", body = ErrorBody),
        (status = 404, description = "No such webhook trigger, it is disabled, or it does not run for the org.", body = ErrorBody),
        (status = 409, description = "Several workflows declare this trigger name.", body = ErrorBody),
        (status = 413, description = "The body exceeds the trigger's limit.", body = ErrorBody),
        (status = 422, description = "The trigger's `input:` could not be rendered, or the inputs do not fit the workflow.", body = ErrorBody),
        (status = 429, description = "The trigger's `rate_limit` is exceeded, or the sender's address failed too often.", body = ErrorBody),
        (status = 500, description = "A `response: wait` trigger's execution failed (`code: execution_failed`, with the execution `id`), or an internal error.", body = ExecutionFailed),
        (status = 503, description = "weft's database is unavailable; nothing was accepted.", body = ErrorBody),
    ),
)]
pub(crate) async fn hook(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let source = state.source(peer, req.headers());
    if !state.guards().source_allowed(source) {
        state.metrics().rejection("source_limited");
        return ApiError::RateLimited.into_response();
    }
    let Ok(Path((name, org))) = path else {
        return refuse(
            &state,
            source,
            "bad_path",
            ApiError::NotFound("no such webhook".into()),
        );
    };
    if let Err(e) = webhook::check_path(&name, &org) {
        return refuse(&state, source, "bad_path", e.into());
    }
    let (record, wf, index) = match find(&state, &name).await {
        Ok(f) => f,
        Err(e) => return refuse(&state, source, "unknown_trigger", e),
    };
    let ev = Event {
        state: &state,
        workflow: &wf.name,
        trigger: &wf.triggers[index].name,
        org: &org,
        source,
    };
    match accept(&ev, (&record, &wf, index), query.as_deref(), req).await {
        Ok(r) | Err(r) => r,
    }
}

/// The checks of a webhook request once its trigger is known, then the start. `Err` is the
/// refusal answered (recorded as [`Event`] says).
async fn accept(
    ev: &Event<'_>,
    (record, wf, index): (&WorkflowRecord, &Workflow, usize),
    query: Option<&str>,
    req: Request,
) -> Result<Response, Response> {
    let state = ev.state;
    let trigger = &wf.triggers[index];
    let switches = match crate::Switches::load(state.store().as_ref()).await {
        Ok(s) => s,
        Err(e) => return Err(ev.reject(e.into(), false).await),
    };
    if !switches.enabled(&wf.name, trigger) {
        let err: ApiError = webhook::disabled(&trigger.name).into();
        let reason = err.to_string();
        return Err(ev.reject_because(err, "disabled", reason, true).await);
    }
    let org_record = match entitled_org(state.store().as_ref(), trigger, ev.org).await {
        Ok(o) => o,
        // The answer does not say why; the recorded event does.
        Err(weft_triggers::TriggerError::NotFound(why)) => {
            let answer = webhook::not_entitled(&trigger.name, ev.org).into();
            return Err(ev.reject_because(answer, "not_entitled", why, true).await);
        }
        Err(e) => return Err(ev.reject(e.into(), false).await),
    };
    let org = org_record.id.as_str();
    let admitted = webhook::admit(
        state.engine(),
        state.guards(),
        &wf.name,
        trigger,
        org,
        req.headers(),
    )
    .await;
    if let Err(r) = admitted {
        return Err(ev.reject(r.error.into(), r.failed).await);
    }
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let body = match read_body(&headers, body, webhook::body_limit(trigger)).await {
        Ok(b) => b,
        Err(e) => return Err(ev.reject(e, false).await),
    };
    let event = webhook::event(trigger, org, body, &headers, query);
    let input = match admit(wf, trigger, &event, &now_rfc3339()) {
        Ok(Admission::Start(i)) => i,
        Ok(Admission::Filtered(reason)) => {
            ev.record("filtered", StatusCode::OK, Some(reason.clone()))
                .await;
            return Ok(Json(NotAccepted::because(reason)).into_response());
        }
        Err(e) => return Err(ev.reject(e.into(), false).await),
    };
    let starts = starts_for(record, trigger, vec![org.to_string()], &input, &event);
    start(ev, trigger, org, starts).await
}

/// Enqueues the execution of an accepted webhook and answers: its id, or with
/// `response: wait` its output.
async fn start(
    ev: &Event<'_>,
    trigger: &weft_engine::model::Trigger,
    org: &str,
    starts: Vec<weft_engine::executor::Start>,
) -> Result<Response, Response> {
    let state = ev.state;
    let accepted_event = ev.event("accepted", StatusCode::ACCEPTED, None);
    let ids = match state.engine().enqueue(&accepted_event, starts).await {
        Ok(Some(ids)) => ids,
        Ok(None) => {
            let e = ApiError::Internal("a webhook event was taken for a duplicate".into());
            return Err(ev.reject(e, false).await);
        }
        Err(e) => return Err(ev.reject(e.into(), false).await),
    };
    state
        .metrics()
        .webhook(ev.workflow, &trigger.name, "accepted");
    let id = ids[0].clone();
    tracing::info!(workflow = %ev.workflow, trigger = %trigger.name, org = %org, execution_ids = ?ids, "webhook accepted");
    Ok(match &trigger.kind {
        TriggerKind::Webhook {
            response: WebhookResponse::Wait,
            wait_timeout,
            ..
        } => wait_answer(state, &id, &ids, wait_timeout.unwrap_or(DEFAULT_WAIT)).await,
        _ => accepted(&id, &ids).into_response(),
    })
}

/// The answer to an accepted webhook: the execution's id (the first of `ids`) and all ids.
fn accepted(id: &str, ids: &[String]) -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        Json(WebhookAccepted {
            id: Some(id.to_string()),
            ids: ids.to_vec(),
        }),
    )
}

/// The answer of a `response: wait` webhook: the execution's output when it succeeds within
/// `wait`, a 500 naming its status when it ends otherwise, else the ids as usual.
async fn wait_answer(state: &AppState, id: &str, ids: &[String], wait: Duration) -> Response {
    let accepted = accepted(id, ids);
    match state.engine().wait_for(id, wait).await {
        Ok(Some(exec)) if exec.status == ExecStatus::Succeeded => {
            Json(exec.output.unwrap_or(Value::Null)).into_response()
        }
        Ok(Some(exec)) => {
            let why = exec
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            let failed = ExecutionFailed {
                error: ErrorDetail {
                    code: "execution_failed".into(),
                    message: format!("execution {id} {}{why}", exec.status),
                    diagnostics: None,
                },
                id: id.to_string(),
            };
            (StatusCode::INTERNAL_SERVER_ERROR, Json(failed)).into_response()
        }
        Ok(None) => accepted.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Reads a webhook body of at most `limit` bytes and parses it by its content type.
async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Value, ApiError> {
    webhook::check_length(headers, limit)?;
    let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| ApiError::TooLarge(limit))?;
    Ok(webhook::parse_body(headers, &bytes)?)
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(hook))
}
