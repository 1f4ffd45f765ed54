//! Trigger use cases: listing with effective state, switches, firing, events, webhook secrets.
//!
//! The rules, decided here for `weft trigger …` and `/api/triggers/…`:
//! - a trigger is named by its workflow's latest deployed version; an unknown workflow or
//!   trigger is "not found" and names the triggers the workflow has;
//! - a trigger's effective state is its stored switch, else its `enabled:`; the switch
//!   outlives redeploys;
//! - only cron triggers fire by hand (a disabled one too); others are a conflict that says how
//!   they are started;
//! - webhook secrets are shown and rotated through [`secret`] and [`rotate`] only (who may have
//!   one is `weft_triggers::webhook_access`'s rule).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_engine::Workflow;
use weft_engine::executor::Engine;
use weft_engine::model::{Trigger, TriggerKind, WebhookResponse, WebhookSecret};
use weft_engine::store::{StoreErrorKind, WorkflowRecord};
use weft_triggers::{Switches, webhook_access};

use crate::ServiceError;

/// The public base of webhook and form URLs: `WEFT_PUBLIC_URL`, else `weft serve`'s default.
pub use weft_triggers::public_url;

/// The name of a trigger's type (`webhook`, `cron`, `autotask.ticket` …).
pub fn trigger_type(kind: &TriggerKind) -> String {
    match kind {
        TriggerKind::AlwaysPass => "always_pass".into(),
        TriggerKind::Webhook { .. } => "webhook".into(),
        TriggerKind::Cron { .. } => "cron".into(),
        TriggerKind::Form { .. } => "form".into(),
        TriggerKind::Autotask { entity, .. } => format!("autotask.{entity}"),
    }
}

/// A trigger of a deployed workflow and its effective state (never a secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Trigger)]
pub struct TriggerView {
    /// The workflow that declares it.
    pub workflow: String,
    /// The trigger's name.
    pub name: String,
    /// `always_pass`, `webhook`, `cron` or `autotask.<entity>`.
    #[serde(rename = "type")]
    #[schema(examples("webhook", "cron", "autotask.ticket"))]
    pub kind: String,
    /// On or off: its switch (`enable`/`disable`), else the workflow's `enabled:`.
    pub enabled: bool,
    /// Cron: the schedule.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub schedule: Option<String>,
    /// Cron: the schedule's time zone (`UTC` when none is given).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timezone: Option<String>,
    /// Cron: the next slot, in the trigger's zone (null when the schedule cannot fire).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_at: Option<Option<String>>,
    /// Webhooks: where to POST (`{org}` is a placeholder).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    /// Webhooks: answer at once (`accepted`) or wait for the execution (`wait`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub response: Option<String>,
    /// Webhooks: whether `x-weft-secret` must be sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret_required: Option<bool>,
    /// Webhooks: the orgs it runs for (registered, active, entitled by `run_for`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub orgs: Option<Vec<String>>,
    /// Cron: the next slot for people (`2025-01-02 02:30 CST`); not serialized.
    #[serde(skip)]
    pub next_local: Option<String>,
}

/// The triggers of `wf` with their effective state. `base_url` prefixes webhook URLs
/// (`""`: the path alone).
///
/// # Errors
/// Store failures.
pub async fn of_workflow(
    engine: &Engine,
    wf: &Workflow,
    base_url: &str,
) -> Result<Vec<TriggerView>, ServiceError> {
    let switches = Switches::load(engine.store().as_ref()).await?;
    let mut out = Vec::new();
    for t in &wf.triggers {
        out.push(view(engine, &switches, wf, t, base_url).await?);
    }
    Ok(out)
}

async fn view(
    engine: &Engine,
    switches: &Switches,
    wf: &Workflow,
    t: &Trigger,
    base_url: &str,
) -> Result<TriggerView, ServiceError> {
    let mut v = TriggerView {
        workflow: wf.name.clone(),
        name: t.name.clone(),
        kind: trigger_type(&t.kind),
        enabled: switches.enabled(&wf.name, t),
        schedule: None,
        timezone: None,
        next_at: None,
        url: None,
        response: None,
        secret_required: None,
        orgs: None,
        next_local: None,
    };
    match &t.kind {
        TriggerKind::Cron {
            schedule, timezone, ..
        } => {
            v.schedule = Some(schedule.to_string());
            v.timezone = Some(timezone.as_deref().unwrap_or("UTC").to_string());
            let next = weft_triggers::cron::next_slot(t, engine.now());
            v.next_at = Some(
                next.as_ref()
                    .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()),
            );
            v.next_local = next.map(|z| z.strftime("%Y-%m-%d %H:%M %Z").to_string());
        }
        TriggerKind::Webhook {
            secret, response, ..
        } => {
            v.url = Some(hook_url(base_url, &t.name, "{org}"));
            v.response = Some(
                match response {
                    WebhookResponse::Wait => "wait",
                    _ => "accepted",
                }
                .into(),
            );
            v.secret_required = Some(*secret == WebhookSecret::Required);
            let orgs = webhook_access::entitled_orgs(engine.store().as_ref(), t).await?;
            v.orgs = Some(orgs.into_iter().map(|o| o.id).collect());
        }
        _ => {}
    }
    Ok(v)
}

/// A webhook trigger's URL for `org` (`{org}`: the placeholder).
pub fn hook_url(base_url: &str, trigger: &str, org: &str) -> String {
    format!("{}/hooks/{trigger}/{org}", base_url.trim_end_matches('/'))
}

/// Every trigger of the latest deployed versions. A deployed version that no longer loads
/// (deployed by an older weft) is skipped, as the webhook index and the scheduler skip it.
///
/// # Errors
/// Store failures.
pub async fn list(engine: &Engine, base_url: &str) -> Result<Vec<TriggerView>, ServiceError> {
    let switches = Switches::load(engine.store().as_ref()).await?;
    let mut out = Vec::new();
    for record in engine.store().list_workflows().await? {
        let Ok(wf) = engine.parsed(&record) else {
            continue;
        };
        for t in &wf.triggers {
            out.push(view(engine, &switches, &wf, t, base_url).await?);
        }
    }
    Ok(out)
}

/// A deployed workflow's trigger, as the latest version declares it.
#[derive(Debug, Clone)]
pub struct Found {
    /// The latest version.
    pub record: WorkflowRecord,
    /// It, parsed.
    pub workflow: Arc<Workflow>,
    /// The trigger.
    pub trigger: Trigger,
}

/// The latest deployed version of `workflow`, parsed.
///
/// # Errors
/// Not found (not deployed); a deployed version that no longer loads; store failures.
pub async fn latest(
    engine: &Engine,
    workflow: &str,
) -> Result<(WorkflowRecord, Arc<Workflow>), ServiceError> {
    let record = crate::workflows::latest(engine.store().as_ref(), workflow).await?;
    let wf = engine.parsed(&record).map_err(|_| {
        ServiceError::conflict(format!(
            "the deployed `{workflow}` v{} no longer loads; deploy it again",
            record.version
        ))
    })?;
    Ok((record, wf))
}

/// The trigger `trigger` of the latest deployed `workflow`.
///
/// # Errors
/// Not found, naming the triggers it has; as [`latest`].
pub async fn find(engine: &Engine, workflow: &str, trigger: &str) -> Result<Found, ServiceError> {
    let (record, wf) = latest(engine, workflow).await?;
    let t = wf
        .triggers
        .iter()
        .find(|t| t.name == trigger)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = wf.triggers.iter().map(|t| t.name.as_str()).collect();
            ServiceError::not_found(format!(
                "workflow `{workflow}` has no trigger `{trigger}` (it has: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })?;
    Ok(Found {
        record,
        workflow: wf,
        trigger: t,
    })
}

/// Switches a trigger on or off (stored; outlives redeploys; overrides the workflow's
/// `enabled:`); the trigger as listed afterwards.
///
/// # Errors
/// As [`find`]; store failures.
pub async fn switch(
    engine: &Engine,
    workflow: &str,
    trigger: &str,
    on: bool,
    base_url: &str,
) -> Result<TriggerView, ServiceError> {
    let found = find(engine, workflow, trigger).await?;
    engine
        .store()
        .set_trigger_enabled(workflow, trigger, on)
        .await?;
    let switches = Switches::load(engine.store().as_ref()).await?;
    view(engine, &switches, &found.workflow, &found.trigger, base_url).await
}

/// What firing a trigger by hand did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Fired {
    /// `accepted`, `filtered` or `rejected`.
    pub outcome: String,
    /// The executions it queued.
    pub executions: Vec<String>,
}

/// Fires a cron trigger now ("run now"): its criteria, input and `run_for`, `TRIGGER.manual`
/// true; a disabled one too; the schedule is untouched. The executions are queued.
///
/// # Errors
/// As [`find`]; conflict for a trigger that is not cron (saying how it starts) or whose
/// schedule does not parse; store failures.
pub async fn fire(engine: &Engine, workflow: &str, trigger: &str) -> Result<Fired, ServiceError> {
    let found = find(engine, workflow, trigger).await?;
    match &found.trigger.kind {
        TriggerKind::Cron { .. } => {}
        TriggerKind::Webhook { .. } => {
            return Err(ServiceError::conflict(format!(
                "trigger `{trigger}` is a webhook: only cron triggers fire by hand; POST to its URL, /hooks/{trigger}/ORG"
            )));
        }
        other => {
            return Err(ServiceError::conflict(format!(
                "`{trigger}` is a {} trigger: only cron triggers fire by hand; run the workflow instead (`weft run {workflow}` or POST /api/workflows/{workflow}/run)",
                trigger_type(other)
            )));
        }
    }
    let fired =
        weft_triggers::cron::fire_now(engine, &found.record, &found.workflow, &found.trigger)
            .await
            .map_err(ServiceError::from)?;
    Ok(Fired {
        outcome: fired.outcome,
        executions: fired.executions,
    })
}

/// Something that reached a trigger (a webhook request, a cron slot, an Autotask callout)
/// and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriggerEvent {
    /// Row id.
    pub id: i64,
    /// The workflow.
    pub workflow: String,
    /// The trigger.
    pub trigger: String,
    /// `webhook`, `cron` or `autotask`.
    pub kind: String,
    /// The org it was for.
    pub org: String,
    /// `accepted`, `rejected`, `filtered` (the criteria did not hold) or `duplicate`.
    pub outcome: String,
    /// Why it was rejected or filtered.
    pub reason: Option<String>,
    /// The HTTP status answered (0 for cron).
    pub status: i64,
    /// The (first) execution it started.
    pub execution_id: Option<String>,
    /// Unique per trigger when set.
    pub dedupe_key: Option<String>,
    /// When it arrived.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<weft_engine::store::TriggerEvent> for TriggerEvent {
    fn from(e: weft_engine::store::TriggerEvent) -> Self {
        TriggerEvent {
            id: e.id,
            workflow: e.workflow,
            trigger: e.trigger,
            kind: e.kind,
            org: e.org,
            outcome: e.outcome,
            reason: e.reason,
            status: e.status,
            execution_id: e.execution_id,
            dedupe_key: e.dedupe_key,
            created_at: e.created_at,
        }
    }
}

/// The most events listed at once, and by default.
pub const EVENTS_MAX: i64 = 1000;

/// A trigger's recent events, newest first; `limit` is clamped to 1 to [`EVENTS_MAX`].
///
/// # Errors
/// As [`find`]; store failures.
pub async fn events(
    engine: &Engine,
    workflow: &str,
    trigger: &str,
    limit: i64,
) -> Result<Vec<TriggerEvent>, ServiceError> {
    find(engine, workflow, trigger).await?;
    Ok(engine
        .store()
        .trigger_events(workflow, trigger, limit.clamp(1, EVENTS_MAX))
        .await?
        .into_iter()
        .map(TriggerEvent::from)
        .collect())
}

/// One org's webhook secret, as shown to who configures its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookSecretView {
    /// The workflow.
    pub workflow: String,
    /// The trigger.
    pub trigger: String,
    /// The org whose sender uses it.
    pub org: String,
    /// Send it as `x-weft-secret`.
    pub secret: String,
    /// When it was issued.
    pub created_at: String,
    /// When it was last rotated.
    pub rotated_at: Option<String>,
    /// Until when the secret it replaced is still accepted.
    pub previous_valid_until: Option<String>,
    /// Issued by this call.
    pub created: bool,
    /// The org's webhook URL.
    pub url: String,
}

impl WebhookSecretView {
    /// `issued` with its org's URL under `base_url`.
    pub fn new(issued: webhook_access::IssuedSecret, base_url: &str) -> Self {
        let url = hook_url(base_url, &issued.trigger, &issued.org);
        WebhookSecretView {
            workflow: issued.workflow,
            trigger: issued.trigger,
            org: issued.org,
            secret: issued.secret,
            created_at: issued.created_at,
            rotated_at: issued.rotated_at,
            previous_valid_until: issued.previous_valid_until,
            created: issued.created,
            url,
        }
    }
}

/// The webhook secret of `org`'s sender for a trigger (issued now if it has none).
///
/// # Errors
/// As [`find`]; conflict: not a webhook with `secret: required`; not found: the trigger does
/// not run for the org; store and key failures.
pub async fn secret(
    engine: &Engine,
    workflow: &str,
    trigger: &str,
    org: &str,
    base_url: &str,
) -> Result<WebhookSecretView, ServiceError> {
    let found = find(engine, workflow, trigger).await?;
    let issued = webhook_access::secret(engine, workflow, &found.trigger, org).await?;
    Ok(WebhookSecretView::new(issued, base_url))
}

/// A grace period (`15m`, `1h`, `7d`).
///
/// # Errors
/// Usage: not a duration.
pub fn parse_grace(grace: &str) -> Result<Duration, ServiceError> {
    weft_engine::model::parse_duration(grace).ok_or_else(|| {
        ServiceError::usage(format!(
            "the grace period `{grace}` is not a duration (like 15m, 1h or 7d)"
        ))
    })
}

/// A new webhook secret for `org`'s sender; the old one is refused at once, or after `grace`.
///
/// # Errors
/// As [`secret`]; usage: a grace period too long.
pub async fn rotate(
    engine: &Engine,
    workflow: &str,
    trigger: &str,
    org: &str,
    grace: Option<Duration>,
    base_url: &str,
) -> Result<WebhookSecretView, ServiceError> {
    let found = find(engine, workflow, trigger).await?;
    let issued = webhook_access::rotate(engine, workflow, &found.trigger, org, grace).await?;
    Ok(WebhookSecretView::new(issued, base_url))
}

/// Whether a store error means "no such row".
pub(crate) fn is_not_found(e: &weft_engine::store::StoreError) -> bool {
    e.kind() == StoreErrorKind::NotFound
}
