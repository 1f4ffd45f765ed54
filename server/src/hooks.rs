//! `POST /hooks/{trigger}/{org}`: webhook triggers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use weft_engine::Workflow;
use weft_engine::action::now_rfc3339;
use weft_engine::executor::scope::{Extra, context, to_value};
use weft_engine::model::{Trigger, TriggerKind, WebhookResponse, WebhookSecret};
use weft_engine::store::{ExecStatus, TriggerEvent, WorkflowRecord};

use crate::{ApiError, AppState};
use weft_triggers::event::{headers_json, inputs, starts_for};
use weft_triggers::webhook_access::{self, MAX_SEGMENT, entitled_org, valid_segment};

/// The body limit when the trigger sets none.
const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
/// How long `response: wait` waits when the trigger sets no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

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

/// The reason label of a refusal in `/metrics`.
fn reason_of(err: &ApiError) -> &'static str {
    match err {
        ApiError::Unauthorized(_) => "unauthorized",
        ApiError::TooLarge(_) => "too_large",
        ApiError::RateLimited => "rate_limited",
        ApiError::InvalidInput(_) | ApiError::InvalidWorkflow { .. } => "invalid_input",
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

/// `POST /hooks/{trigger}/{org}`. Checks run cheapest and least trusting first: the
/// source's failure budget, the path's shape, the trigger, its switch, the org binding, the
/// secret; only then the rate limit (so that failures cannot spend a sender's budget), the
/// body and the criteria. One execution, for the URL's org.
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
    if !valid_segment(&name) || !valid_segment(&org) {
        return refuse(
            &state,
            source,
            "bad_path",
            ApiError::NotFound(format!(
                "no such webhook: a trigger name and an org id are 1 to {MAX_SEGMENT} letters, digits, `-`, `_` or `.`"
            )),
        );
    }
    let (record, wf, index) = match find(&state, &name).await {
        Ok(f) => f,
        Err(e) => return refuse(&state, source, "unknown_trigger", e),
    };
    let trigger = &wf.triggers[index];
    let TriggerKind::Webhook {
        response,
        wait_timeout,
        max_body_bytes,
        ..
    } = &trigger.kind
    else {
        unreachable!("find returns webhook triggers")
    };
    let ev = Event {
        state: &state,
        workflow: &wf.name,
        trigger: &trigger.name,
        org: &org,
        source,
    };
    let switches = match crate::Switches::load(state.store().as_ref()).await {
        Ok(s) => s,
        Err(e) => return ev.reject(e.into(), false).await,
    };
    if !switches.enabled(&wf.name, trigger) {
        let err = ApiError::NotFound(format!("webhook trigger `{name}` is disabled"));
        let reason = err.to_string();
        return ev.reject_because(err, "disabled", reason, true).await;
    }
    let org_record = match entitled_org(state.store().as_ref(), trigger, &org).await {
        Ok(o) => o,
        // The answer does not say why (which orgs the trigger runs for is not a stranger's
        // business); the recorded event does.
        Err(weft_triggers::TriggerError::NotFound(why)) => {
            let answer = ApiError::NotFound(format!(
                "webhook trigger `{name}` does not run for organization `{org}` (the org must be registered — `weft org add` — and be one the trigger's `run_for` names; the trigger's events say why)"
            ));
            return ev.reject_because(answer, "not_entitled", why, true).await;
        }
        Err(e) => return ev.reject(e.into(), false).await,
    };
    if let Err((e, failed)) = admit(&state, &wf.name, trigger, &org_record.id, req.headers()).await
    {
        return ev.reject(e, failed).await;
    }
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let limit = max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    let body = match read_body(&headers, body, limit).await {
        Ok(b) => b,
        Err(e) => return ev.reject(e, false).await,
    };
    let params = query_params(query.as_deref());
    let event = json!({
        "type": "webhook",
        "name": trigger.name,
        "org": org_record.id,
        "body": body,
        "headers": headers_json(&headers),
        "params": params,
    });
    let now = now_rfc3339();
    let ctx = context(&[("TRIGGER", to_value(&event))], &now, Extra::default());
    if let Some(reason) = unmet_criteria(trigger, &ctx) {
        ev.record("filtered", StatusCode::OK, Some(reason.clone()))
            .await;
        return Json(json!({"accepted": false, "reason": reason})).into_response();
    }
    let input = match inputs(&wf, trigger, &event, &ctx) {
        Ok(i) => i,
        Err(e) => return ev.reject(e.into(), false).await,
    };
    let starts = starts_for(
        &record,
        trigger,
        vec![org_record.id.clone()],
        &input,
        &event,
    );
    let accepted_event = ev.event("accepted", StatusCode::ACCEPTED, None);
    let ids = match state.engine().enqueue(&accepted_event, starts).await {
        Ok(Some(ids)) => ids,
        Ok(None) => {
            let e = ApiError::Internal("a webhook event was taken for a duplicate".into());
            return ev.reject(e, false).await;
        }
        Err(e) => return ev.reject(e.into(), false).await,
    };
    state.metrics().webhook(&wf.name, &trigger.name, "accepted");
    let id = ids[0].clone();
    tracing::info!(workflow = %wf.name, trigger = %trigger.name, org = %org_record.id, execution_ids = ?ids, "webhook accepted");
    match response {
        WebhookResponse::Wait => {
            wait_answer(&state, &id, &ids, wait_timeout.unwrap_or(DEFAULT_WAIT)).await
        }
        _ => accepted(&id, &ids).into_response(),
    }
}

/// The answer to an accepted webhook: the execution's id (the first of `ids`) and all ids.
fn accepted(id: &str, ids: &[String]) -> impl IntoResponse {
    (StatusCode::ACCEPTED, Json(json!({"id": id, "ids": ids})))
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

/// Reads a webhook body of at most `limit` bytes and parses it by its content type.
async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Value, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let bytes = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| ApiError::TooLarge(limit))?;
    parse_body(headers, &bytes)
}

/// The query string as `TRIGGER.params` (a malformed one reads as empty).
fn query_params(query: Option<&str>) -> Map<String, Value> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// Why the trigger's `criteria` filter the event out, if they do.
fn unmet_criteria(trigger: &Trigger, ctx: &minijinja::Value) -> Option<String> {
    let criteria = trigger.criteria.as_ref()?;
    match criteria.render_value(ctx) {
        Ok(v) if v.is_true() => None,
        Ok(_) => Some("criteria not met".to_string()),
        Err(e) => Some(format!("criteria could not be evaluated: {e}")),
    }
}

/// The checks that need the org: the secret when the trigger requires one, then the rate
/// limit (so that failures cannot spend a sender's budget). `Err` carries the refusal and
/// whether it counts as a failed attempt of the source.
async fn admit(
    state: &AppState,
    workflow: &str,
    trigger: &Trigger,
    org: &str,
    headers: &HeaderMap,
) -> Result<(), (ApiError, bool)> {
    let TriggerKind::Webhook {
        secret, rate_limit, ..
    } = &trigger.kind
    else {
        unreachable!("find returns webhook triggers")
    };
    if *secret == WebhookSecret::Required {
        let given = headers.get("x-weft-secret").map(|v| v.as_bytes());
        if let Err(e) =
            webhook_access::check(state.engine(), workflow, &trigger.name, org, given).await
        {
            let failed = matches!(e, weft_triggers::TriggerError::Unauthorized(_));
            return Err((e.into(), failed));
        }
    }
    if let Some(rate) = rate_limit
        && !state
            .guards()
            .take_rate(workflow, &trigger.name, org, *rate)
    {
        return Err((ApiError::RateLimited, false));
    }
    Ok(())
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use axum::routing::post;
    utoipa_axum::router::OpenApiRouter::new().route("/hooks/{trigger}/{org}", post(hook))
}
