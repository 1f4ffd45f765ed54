//! The Autotask callout endpoints, `POST /hooks/autotask/{workflow}/{trigger}` and its
//! `/deactivated` notice URL: they read the request, let `weft_triggers::autotask` decide
//! (which registration signed it, whether the trigger takes it, which org(s) it runs for),
//! record the outcome as a trigger event and answer. Registering the webhooks and keeping
//! them in step is `weft_triggers::autotask` too ([`sync_in_background`] after an API deploy).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_engine::executor::EngineError;
use weft_engine::model::TriggerKind;
use weft_engine::store::{StoreError, TriggerEvent};
use weft_triggers::TriggerError;
use weft_triggers::autotask::{self as at, Callout, Routing};

use crate::hooks::{NotAccepted, WebhookAccepted};
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// An Autotask callout that started nothing again: its (webhook GUID, record id, sequence
/// number) was seen before.
#[derive(Serialize, ToSchema)]
pub struct Duplicate {
    /// Always `true`.
    pub duplicate: bool,
}

/// A deactivation notice, noted.
#[derive(Serialize, ToSchema)]
pub struct Received {
    /// Always `true`.
    pub received: bool,
}

/// The `200` answers of a callout: nothing started (the trigger does not apply, or the
/// inputs do not fit), a duplicate, or a deactivation notice noted.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CalloutNoted {
    /// Nothing started, and why.
    NotAccepted(NotAccepted),
    /// Seen before.
    Duplicate(Duplicate),
    /// A deactivation notice sent to the callout URL.
    Received(Received),
}

/// Runs `sync_webhooks` in the background with the server's public URL (after an API
/// deploy); the outcome is logged.
pub(crate) fn sync_in_background(state: &AppState) {
    let engine = state.engine().clone();
    let base = state.base_url();
    tokio::spawn(async move {
        match at::sync_webhooks(&engine, &base).await {
            Ok(report) => {
                for line in report.lines() {
                    if line.contains(" not synced: ") {
                        tracing::warn!("{line}");
                    } else {
                        tracing::info!("{line}");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot sync the Autotask webhooks"),
        }
    });
}

/// Records the events of one trigger's callouts, under the org of the registration that
/// signed them.
struct Recorder<'a> {
    state: &'a AppState,
    workflow: &'a str,
    trigger: &'a str,
    org: String,
}

impl Recorder<'_> {
    fn event(&self, outcome: &str, status: StatusCode, reason: Option<String>) -> TriggerEvent {
        TriggerEvent {
            outcome: outcome.into(),
            reason,
            status: i64::from(status.as_u16()),
            ..TriggerEvent::new(self.workflow, self.trigger, "autotask", &self.org)
        }
    }

    /// Records an event that started nothing; false when its de-duplication key was seen.
    async fn record(&self, e: TriggerEvent) -> bool {
        match self.state.store().record_event(&e, &[]).await {
            Ok(Some(_)) => true,
            Ok(None) => false,
            Err(err) => {
                tracing::error!(error = ?err, "cannot record an Autotask event");
                true
            }
        }
    }

    /// Records a rejection. Autotask retries any answer but a 2xx (five times, 30 s apart)
    /// and deactivates a webhook after 25 failures in a row, so a rejection a retry cannot
    /// cure (inputs that do not fit the workflow, an unsupported `run_for`) is answered 200
    /// `{"accepted": false}`; bad signatures, oversize bodies and store failures keep their
    /// status.
    async fn reject(&self, err: ApiError) -> Response {
        let reason = match &err {
            ApiError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let final_answer = matches!(err, ApiError::InvalidInput(_) | ApiError::Conflict(_));
        let status = if final_answer {
            StatusCode::OK
        } else {
            err.status()
        };
        self.record(self.event("rejected", status, Some(reason.clone())))
            .await;
        if final_answer {
            return Json(NotAccepted::because(reason)).into_response();
        }
        err.into_response()
    }

    /// A 200 that started nothing (`filtered`), de-duplicated like accepted events.
    async fn filtered(&self, reason: String, dedupe: &str) -> Response {
        let e = TriggerEvent {
            dedupe_key: Some(dedupe.to_string()),
            ..self.event("filtered", StatusCode::OK, Some(reason.clone()))
        };
        if !self.record(e).await {
            return Json(Duplicate { duplicate: true }).into_response();
        }
        Json(NotAccepted::because(reason)).into_response()
    }
}

/// The trigger (an Autotask one) of the latest deployed version of `workflow`.
async fn find_trigger(
    state: &AppState,
    workflow: &str,
    trigger: &str,
) -> Result<
    (
        weft_engine::store::WorkflowRecord,
        std::sync::Arc<weft_engine::Workflow>,
        usize,
    ),
    ApiError,
> {
    let record = state.store().workflow(workflow, None).await?;
    let wf = state.parsed(&record)?;
    let i = wf
        .triggers
        .iter()
        .position(|t| t.name == trigger && matches!(t.kind, TriggerKind::Autotask { .. }))
        .ok_or_else(|| {
            ApiError::NotFound(format!("{workflow} has no Autotask trigger `{trigger}`"))
        })?;
    Ok((record, wf, i))
}

/// Reads a callout body of at most `weft_triggers::autotask::MAX_BODY` bytes.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    weft_triggers::webhook::check_length(headers, at::MAX_BODY)?;
    axum::body::to_bytes(body, usize::try_from(at::MAX_BODY).unwrap_or(usize::MAX))
        .await
        .map_err(|_| ApiError::TooLarge(at::MAX_BODY))
}

/// Receive an Autotask webhook callout.
///
/// The URL weft registers in Autotask for an `autotask.*` trigger. The signature is verified
/// over the raw body; a repeated (webhook GUID, entity id, sequence number) starts nothing
/// again. An event about a company runs for the org mapped to it (see the trigger's
/// `run_for`). Answers that a retry cannot change (inputs that do not fit the workflow, no
/// managed org) are a 200 `{"accepted": false, "reason"}`, so Autotask does not retry them
/// and deactivate the webhook. Not behind the API token.
#[utoipa::path(
    post,
    path = "/hooks/autotask/{workflow}/{trigger}",
    tag = "webhooks",
    security(()),
    params(
        ("workflow" = String, Path, description = "The workflow that declares the Autotask trigger."),
        ("trigger" = String, Path, description = "The trigger's name."),
        ("X-Hook-Signature" = String, Header, description = "`sha1=` + base64(HMAC-SHA1(secret key, raw body)), as Autotask sends it."),
    ),
    request_body(
        content = Object,
        description = "An Autotask webhook callout: `Action` (`Create`, `Update`, `Delete`), `Guid`, `EntityType`, `Id`, `Fields`, `EventTime`, `SequenceNumber`, `PersonID`.",
        content_type = "application/json",
    ),
    responses(
        (status = 202, description = "Accepted: the executions are queued.", body = WebhookAccepted),
        (status = 200, description = "Not started: a duplicate (`{\"duplicate\": true}`), an action the trigger does not subscribe to, a disabled trigger, criteria not met, another org's record, or inputs that do not fit (`{\"accepted\": false, \"reason\"}`); or a deactivation notice (`{\"received\": true}`).", body = CalloutNoted),
        (status = 400, description = "The body is not a JSON object, or its `Action` is unknown.", body = ErrorBody),
        (status = 401, description = "Missing or wrong `X-Hook-Signature`, or another webhook's `Guid`.", body = ErrorBody),
        (status = 404, description = "No webhook is registered for this trigger, or the workflow has no such Autotask trigger.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 503, description = "weft's database is unavailable; nothing was accepted (Autotask retries).", body = ErrorBody),
    ),
)]
pub(crate) async fn callout(
    State(state): State<AppState>,
    Path((workflow, trigger_name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let regs = match at::registrations(state.engine(), &workflow, &trigger_name).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut rec = Recorder {
        state: &state,
        workflow: &workflow,
        trigger: &trigger_name,
        org: regs[0].org.clone(),
    };
    let bytes = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(e) => return rec.reject(e).await,
    };
    let reg = match at::authenticate(&regs, &headers, &bytes) {
        Ok(r) => r,
        Err(e) => return rec.reject(e.into()).await,
    };
    // Recorded under the org of the registration that signed it.
    rec.org = reg.org.clone();
    let c = match Callout::read(reg, &headers, &bytes) {
        Ok(c) => c,
        Err(e) => return rec.reject(e.into()).await,
    };
    if c.is_deactivation() {
        return deactivation_notice(&rec).await;
    }
    match deliver(&rec, &c).await {
        Ok(r) => r,
        Err(Stop::Reject(e)) => rec.reject(e).await,
        Err(Stop::Filter(reason)) => rec.filtered(reason, &c.dedupe).await,
    }
}

/// Why a callout starts nothing, as answered.
enum Stop {
    /// Refused (see [`Recorder::reject`]).
    Reject(ApiError),
    /// Accepted and recorded, but the trigger does not apply.
    Filter(String),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Stop {
        Stop::Reject(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Reject(e.into())
    }
}

impl From<EngineError> for Stop {
    fn from(e: EngineError) -> Stop {
        Stop::Reject(e.into())
    }
}

impl From<TriggerError> for Stop {
    fn from(e: TriggerError) -> Stop {
        Stop::Reject(e.into())
    }
}

impl From<at::Stop> for Stop {
    fn from(s: at::Stop) -> Stop {
        match s {
            at::Stop::Reject(e) => Stop::Reject(e.into()),
            at::Stop::Filter(reason) => Stop::Filter(reason),
        }
    }
}

/// Matches a callout to its trigger, picks the org it runs for (the company mapping is the
/// server's to read), and enqueues the executions.
async fn deliver(rec: &Recorder<'_>, c: &Callout<'_>) -> Result<Response, Stop> {
    let state = rec.state;
    let store = state.store().as_ref();
    let (record, wf, index) = find_trigger(state, rec.workflow, rec.trigger).await?;
    let trigger = &wf.triggers[index];
    let switches = crate::Switches::load(store).await?;
    let action = at::subscribed(&switches, rec.workflow, trigger, &c.action)?;
    let entity = at::entity(trigger);
    let company = at::company_of(state.engine(), trigger, &rec.org, entity, &c.payload).await;
    let mapped = match company {
        Some(id) => crate::mapping::org_of_company(store, id)
            .await
            .map_err(ApiError::from)?,
        None => None,
    };
    let routing = Routing::decide(store, trigger, &rec.org, company, mapped).await?;
    let starts = at::starts(store, (&record, &wf), trigger, c, action, &routing).await?;
    let accepted = TriggerEvent {
        dedupe_key: Some(c.dedupe.clone()),
        ..rec.event("accepted", StatusCode::ACCEPTED, None)
    };
    match state.engine().enqueue(&accepted, starts).await? {
        Some(ids) => Ok((
            StatusCode::ACCEPTED,
            Json(WebhookAccepted {
                id: ids.first().cloned(),
                ids,
            }),
        )
            .into_response()),
        None => Ok(Json(Duplicate { duplicate: true }).into_response()),
    }
}

async fn deactivation_notice(rec: &Recorder<'_>) -> Response {
    tracing::warn!(
        workflow = rec.workflow,
        trigger = rec.trigger,
        "Autotask deactivated the webhook of this trigger; it is created again at the next deploy or start"
    );
    let reason = "Autotask deactivated the webhook".to_string();
    rec.record(rec.event("rejected", StatusCode::OK, Some(reason)))
        .await;
    Json(Received { received: true }).into_response()
}

/// Autotask's notice that it deactivated the webhook.
///
/// Sent after repeated failed deliveries. Signed notices are verified; unsigned ones must
/// name the registered webhook's GUID. Recorded as a rejected event and logged; the next
/// sync registers the webhook again. Not behind the API token.
#[utoipa::path(
    post,
    path = "/hooks/autotask/{workflow}/{trigger}/deactivated",
    tag = "webhooks",
    security(()),
    params(
        ("workflow" = String, Path, description = "The workflow that declares the Autotask trigger."),
        ("trigger" = String, Path, description = "The trigger's name."),
    ),
    request_body(
        content = Option<Object>,
        description = "Autotask's notice: `Action`, `Guid`.",
        content_type = "application/json",
    ),
    responses(
        (status = 200, description = "Noted.", body = Received),
        (status = 401, description = "Neither signed nor for the registered webhook.", body = ErrorBody),
        (status = 404, description = "No webhook is registered for this trigger.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
    ),
)]
pub(crate) async fn deactivated(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let regs = match at::registrations(state.engine(), &workflow, &trigger).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut rec = Recorder {
        state: &state,
        workflow: &workflow,
        trigger: &trigger,
        org: regs[0].org.clone(),
    };
    let bytes = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(e) => return rec.reject(e).await,
    };
    match at::deactivation_registration(&regs, &headers, &bytes) {
        Ok(reg) => rec.org = reg.org.clone(),
        Err(e) => return rec.reject(e.into()).await,
    }
    deactivation_notice(&rec).await
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(callout))
        .routes(routes!(deactivated))
}
