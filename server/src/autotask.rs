//! Autotask event triggers (`autotask.ticket`, `autotask.ticket_note`, `autotask.company`,
//! `autotask.contact`, `autotask.configuration_item`): registering the Autotask webhooks
//! ([`sync_webhooks`]) and receiving their callouts (`POST /hooks/autotask/{workflow}/{trigger}`
//! and its `/deactivated` notice URL).
//!
//! Registration: every enabled Autotask trigger of a deployed workflow gets one
//! `{Entity}Webhooks` record in the tenant of its integration instance (org `default`, the
//! trigger's `integration:` override picks the instance), with a random 64-character secret,
//! the subscribed events and a `Fields` child per field: the trigger's `fields:` (else
//! [`default_fields`]) as subscribed fields, plus [`display_always_fields`] sent in every
//! payload. Field ids come from the `/{X}WebhookFields/entityInformation/fields` picklist of
//! `fieldID` (label = field name). What was registered is stored (`AutotaskWebhook`) with a
//! hash of entity, events, fields, URL and instance: a change deletes the old webhook and
//! creates a new one; webhooks of removed or disabled triggers are deleted; a webhook that
//! Autotask deleted or deactivated is created again. Nothing changed → no write calls.
//!
//! Callouts: the `X-Hook-Signature` (`sha1=` base64 HMAC-SHA1 of the raw body with the
//! stored secret) is checked in constant time over the bytes received; the event is
//! de-duplicated on `autotask:{Guid}:{Id}:{SequenceNumber}` so a retried callout starts
//! nothing twice.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use weft_actions::autotask::{AutotaskError, Client, ErrorKind};
use weft_engine::executor::Engine;
use weft_engine::executor::scope::{Extra, context, to_value};
use weft_engine::model::{AutotaskEvent, IntegrationOverride, RunFor, Trigger, TriggerKind};
use weft_engine::store::{AutotaskWebhook, StoreError, TriggerEvent};

use crate::{ApiError, AppState, constant_time_eq};
use weft_triggers::event::{NO_MANAGED_ORGS, headers_json, inputs, starts_for};

/// The orgs an event that is about no company runs for: the registration's org, the
/// trigger's list, or every managed org (`all_managed`; none is a conflict).
async fn run_for_orgs(
    store: &dyn weft_engine::store::Store,
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

/// What the Autotask webhooks were last kept in step with: the deployed workflow ids and
/// every trigger switch `(workflow, trigger, on)`.
type Synced = (Vec<i64>, Vec<(String, String, bool)>);

/// Largest callout body accepted.
const MAX_BODY: usize = 1024 * 1024;
/// The org webhooks are registered for until the org mapping exists.
const DEFAULT_ORG: &str = "default";
/// The signature header Autotask sends.
const SIGNATURE_HEADER: &str = "x-hook-signature";
/// Autotask's limit on a webhook's name.
const MAX_NAME: usize = 50;

/// Serializes [`sync_webhooks`] calls (start-up and API deploys may overlap).
static SYNC_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The webhook entity of a trigger entity (`ticket` → `TicketWebhooks`).
pub fn webhook_entity(entity: &str) -> Option<&'static str> {
    Some(match entity {
        "ticket" => "TicketWebhooks",
        "ticket_note" => "TicketNoteWebhooks",
        "company" => "CompanyWebhooks",
        "contact" => "ContactWebhooks",
        "configuration_item" => "ConfigurationItemWebhooks",
        _ => return None,
    })
}

/// The fields subscribed when a trigger lists no `fields:` (their changes fire update events
/// and are sent).
pub fn default_fields(entity: &str) -> &'static [&'static str] {
    match entity {
        "ticket" => &[
            "status",
            "priority",
            "title",
            "queueID",
            "assignedResourceID",
        ],
        "ticket_note" => &["title", "description", "noteType"],
        "company" => &["companyName", "companyType", "isActive"],
        "contact" => &["firstName", "lastName", "emailAddress", "isActive"],
        "configuration_item" => &["referenceTitle", "serialNumber", "isActive"],
        _ => &[],
    }
}

/// Fields sent in every payload (whether they changed or not): the record's id and what
/// links it to its company or ticket.
pub fn display_always_fields(entity: &str) -> &'static [&'static str] {
    match entity {
        "ticket" => &["id", "ticketNumber", "companyID"],
        "ticket_note" => &["id", "ticketID"],
        "company" => &["id"],
        "contact" => &["id", "companyID"],
        "configuration_item" => &["id", "companyID"],
        _ => &["id"],
    }
}

fn event_name(e: AutotaskEvent) -> &'static str {
    match e {
        AutotaskEvent::Create => "create",
        AutotaskEvent::Update => "update",
        AutotaskEvent::Delete => "delete",
    }
}

/// One webhook created or deleted by [`sync_webhooks`].
#[derive(Debug, Clone, Serialize)]
pub struct SyncedWebhook {
    /// The workflow.
    pub workflow: String,
    /// The trigger.
    pub trigger: String,
    /// `TicketWebhooks` …
    pub entity: String,
    /// The webhook's id in Autotask.
    pub webhook_id: i64,
    /// Where it sends callouts.
    pub url: String,
}

impl From<&AutotaskWebhook> for SyncedWebhook {
    fn from(w: &AutotaskWebhook) -> Self {
        SyncedWebhook {
            workflow: w.workflow.clone(),
            trigger: w.trigger.clone(),
            entity: w.entity.clone(),
            webhook_id: w.webhook_id,
            url: w.url.clone(),
        }
    }
}

/// A trigger whose webhook could not be created, checked or deleted.
#[derive(Debug, Clone, Serialize)]
pub struct SyncFailure {
    /// The workflow.
    pub workflow: String,
    /// The trigger.
    pub trigger: String,
    /// What went wrong.
    pub error: String,
}

/// What [`sync_webhooks`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Webhooks created in Autotask.
    pub created: Vec<SyncedWebhook>,
    /// Webhooks deleted in Autotask (trigger removed, disabled or changed).
    pub deleted: Vec<SyncedWebhook>,
    /// Webhooks already registered as wanted.
    pub unchanged: usize,
    /// Triggers left as they were because something failed (the others are synced).
    pub failed: Vec<SyncFailure>,
}

impl SyncReport {
    /// One line per created or deleted webhook and per failure, for people.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for w in &self.deleted {
            out.push(format!(
                "autotask webhook deleted: {}.{} ({} {})",
                w.workflow, w.trigger, w.entity, w.webhook_id
            ));
        }
        for w in &self.created {
            out.push(format!(
                "autotask webhook created: {}.{} ({} {}) -> POST {}",
                w.workflow, w.trigger, w.entity, w.webhook_id, w.url
            ));
        }
        for f in &self.failed {
            out.push(format!(
                "autotask webhook of {}.{} not synced: {}",
                f.workflow, f.trigger, f.error
            ));
        }
        out
    }
}

/// Keeps the Autotask webhooks in step with the store until `stop`: syncs at once, then
/// whenever the deployed versions or the trigger switches change (checked every
/// `check_every`, so `weft deploy` into a running server's database and
/// `POST /api/triggers/…/disable` are followed within that), and in full every hour (which
/// also re-creates webhooks Autotask deactivated). Each sync's report goes to `report`.
pub fn keep_in_sync(
    engine: Arc<Engine>,
    public_base_url: String,
    check_every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
    report: impl Fn(Result<SyncReport, SyncError>) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    const FULL_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    tokio::spawn(async move {
        let mut synced: Option<Synced> = None;
        let mut last_full = std::time::Instant::now();
        // A sync that failed for some trigger (Autotask busy, a bad field) is retried, sooner
        // at first, then at most hourly.
        let mut backoff = check_every;
        let mut retry_at: Option<std::time::Instant> = None;
        loop {
            let store = engine.store();
            let now = match (store.list_workflows().await, store.trigger_switches().await) {
                (Ok(w), Ok(mut s)) => {
                    s.sort();
                    Some((w.iter().map(|r| r.id).collect::<Vec<_>>(), s))
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot check deployed workflows for Autotask triggers");
                    None
                }
            };
            let retry_due = retry_at.is_some_and(|t| std::time::Instant::now() >= t);
            if now.is_some() && (now != synced || retry_due || last_full.elapsed() >= FULL_EVERY) {
                let result = sync_webhooks(&engine, &public_base_url).await;
                synced = now;
                last_full = std::time::Instant::now();
                let failed = result.as_ref().map_or(true, |r| !r.failed.is_empty());
                if failed {
                    retry_at = Some(std::time::Instant::now() + backoff);
                    backoff = (backoff * 2).min(FULL_EVERY);
                } else {
                    retry_at = None;
                    backoff = check_every;
                }
                report(result);
            }
            tokio::select! {
                () = tokio::time::sleep(check_every) => {}
                () = stop.cancelled() => return,
            }
        }
    })
}

/// Runs [`sync_webhooks`] in the background with the server's public URL (after an API
/// deploy); the outcome is logged.
pub(crate) fn sync_in_background(state: &AppState) {
    let engine = state.engine().clone();
    let base = state.0.base_url.clone();
    tokio::spawn(async move {
        match sync_webhooks(&engine, &base).await {
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

/// [`sync_webhooks`] could not read or write the store.
#[derive(Debug, thiserror::Error)]
#[error("cannot sync the Autotask webhooks: {0}")]
pub struct SyncError(#[from] pub StoreError);

/// A webhook an enabled trigger wants.
#[derive(Debug, Clone)]
struct Wanted {
    workflow: String,
    trigger: String,
    entity: &'static str,
    events: Vec<AutotaskEvent>,
    /// Subscribed fields; `explicit` when the trigger listed them (unknown ones are errors).
    fields: Vec<String>,
    explicit: bool,
    url: String,
    instance: Option<String>,
    /// The org whose `autotask` integration it is registered with (found like a task's:
    /// the org, its parents, then `--integrations`).
    org: String,
    hash: String,
}

fn instance_of(t: &Trigger) -> Option<String> {
    match &t.integration {
        Some(IntegrationOverride::Instance(name)) => Some(name.clone()),
        Some(IntegrationOverride::PerKind(map)) => map.get("autotask").cloned(),
        None => None,
    }
}

/// The callout URL of a trigger.
pub fn callout_url(public_base_url: &str, workflow: &str, trigger: &str) -> String {
    format!(
        "{}/hooks/autotask/{workflow}/{trigger}",
        public_base_url.trim_end_matches('/')
    )
}

fn config_hash(w: &Wanted) -> String {
    let events: BTreeSet<&str> = w.events.iter().map(|e| event_name(*e)).collect();
    let fields: BTreeSet<String> = w.fields.iter().map(|f| f.to_ascii_lowercase()).collect();
    let always = display_always_fields(entity_of(w.entity));
    let text = format!(
        "{}\n{:?}\n{:?}\n{:?}\n{}\n{}",
        w.entity,
        events,
        fields,
        always,
        w.url,
        w.instance.as_deref().unwrap_or("")
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn entity_of(webhook_entity: &str) -> &'static str {
    match webhook_entity {
        "TicketWebhooks" => "ticket",
        "TicketNoteWebhooks" => "ticket_note",
        "CompanyWebhooks" => "company",
        "ContactWebhooks" => "contact",
        "ConfigurationItemWebhooks" => "configuration_item",
        _ => "",
    }
}

fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn webhook_name(workflow: &str, trigger: &str) -> String {
    let full = format!("weft: {workflow}.{trigger}");
    match full.char_indices().nth(MAX_NAME) {
        Some((i, _)) => full[..i].to_string(),
        None => full,
    }
}

/// Autotask clients per (org, integration instance), made on first use.
struct Clients<'a> {
    engine: &'a Engine,
    made: HashMap<(String, Option<String>), Result<Arc<Client>, String>>,
}

impl Clients<'_> {
    async fn get(&mut self, org: &str, instance: Option<&str>) -> Result<Arc<Client>, String> {
        let key = (org.to_string(), instance.map(str::to_string));
        if let Some(c) = self.made.get(&key) {
            return c.clone();
        }
        let made = autotask_client(self.engine, org, instance)
            .await
            .map(Arc::new);
        self.made.insert(key, made.clone());
        made
    }
}

/// The Autotask client of `org`'s `autotask` integration (or its named `instance`), found the
/// way a task of that org finds it.
async fn autotask_client(
    engine: &Engine,
    org: &str,
    instance: Option<&str>,
) -> Result<Client, String> {
    let integration = engine
        .integration_for(org, "autotask", instance)
        .await
        .map_err(|e| match e {
            weft_engine::executor::EngineError::Input(m) => m,
            other => other.to_string(),
        })?;
    Client::from_integration(&integration).map_err(|e| e.message)
}

/// Where a trigger's webhook is registered: with its first `run_for` org's integration (a
/// crate installed for a client inherits the MSP's), else the MSP's (the one root org),
/// else `default` (the `--integrations` instances).
fn registration_org(t: &Trigger, owner: &str) -> String {
    match &t.run_for {
        RunFor::Orgs(list) if !list.is_empty() => list[0].clone(),
        _ => owner.to_string(),
    }
}

fn gone(e: &AutotaskError) -> bool {
    e.kind == ErrorKind::NotFound || e.status == Some(404)
}

/// Makes the Autotask webhooks match the enabled Autotask triggers of the deployed workflows
/// (see the module docs): creates the missing ones, deletes those of removed, disabled or
/// changed triggers, re-creates the ones Autotask deleted or deactivated. Callouts go to
/// `{public_base_url}/hooks/autotask/{workflow}/{trigger}`. A trigger whose webhook fails is
/// reported in [`SyncReport::failed`] and the others are still synced.
///
/// # Errors
/// Store failures.
pub async fn sync_webhooks(
    engine: &Engine,
    public_base_url: &str,
) -> Result<SyncReport, SyncError> {
    let _guard = SYNC_LOCK.lock().await;
    let mut report = SyncReport::default();
    let (wanted, unparsed) = wanted_webhooks(engine, public_base_url, &mut report).await?;
    let mut clients = Clients {
        engine,
        made: HashMap::new(),
    };
    let registered = reconcile(engine, &mut clients, &wanted, &unparsed, &mut report).await?;
    let mut todo: Vec<&Wanted> = wanted
        .iter()
        .filter(|(k, _)| !registered.contains(*k))
        .map(|(_, w)| w)
        .collect();
    todo.sort_by(|a, b| (&a.workflow, &a.trigger).cmp(&(&b.workflow, &b.trigger)));
    for w in todo {
        register(engine, &mut clients, w, &mut report).await?;
    }
    Ok(report)
}

/// The webhooks the enabled Autotask triggers of the deployed workflows want, by
/// `(workflow, trigger)`, and the workflows that do not parse (they keep their webhooks:
/// their triggers are unknown). Triggers on entities without webhooks are reported failed.
async fn wanted_webhooks(
    engine: &Engine,
    public_base_url: &str,
    report: &mut SyncReport,
) -> Result<(HashMap<(String, String), Wanted>, HashSet<String>), SyncError> {
    let store = engine.store();
    let switches = crate::Switches::load(store.as_ref()).await?;
    let mut wanted: HashMap<(String, String), Wanted> = HashMap::new();
    let owner_org = weft_engine::org::owner_org(store.as_ref())
        .await?
        .map_or_else(|| DEFAULT_ORG.to_string(), |o| o.id);
    let mut unparsed: HashSet<String> = HashSet::new();
    for record in store.list_workflows().await? {
        let Some(wf) = weft_engine::load(&record.source, engine.registry()).workflow else {
            unparsed.insert(record.name.clone());
            continue;
        };
        for t in &wf.triggers {
            let TriggerKind::Autotask {
                entity,
                events,
                fields,
            } = &t.kind
            else {
                continue;
            };
            if !switches.enabled(&wf.name, t) || events.is_empty() {
                continue;
            }
            let Some(wh_entity) = webhook_entity(entity) else {
                report.failed.push(SyncFailure {
                    workflow: wf.name.clone(),
                    trigger: t.name.clone(),
                    error: format!("Autotask has no webhooks for `{entity}`"),
                });
                continue;
            };
            let explicit = !fields.is_empty();
            let fields: Vec<String> = if explicit {
                fields.clone()
            } else {
                default_fields(entity)
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            };
            let mut w = Wanted {
                workflow: wf.name.clone(),
                trigger: t.name.clone(),
                entity: wh_entity,
                events: events.clone(),
                fields,
                explicit,
                url: callout_url(public_base_url, &wf.name, &t.name),
                instance: instance_of(t),
                org: registration_org(t, &owner_org),
                hash: String::new(),
            };
            w.hash = config_hash(&w);
            wanted.insert((wf.name.clone(), t.name.clone()), w);
        }
    }
    Ok((wanted, unparsed))
}

/// Goes through the registered webhooks: keeps those still wanted as registered and still
/// active in Autotask, deletes the others (in the tenant they were registered in). Returns
/// the `(workflow, trigger)`s that keep their registration, including those that could not
/// be checked or deleted (reported failed).
async fn reconcile(
    engine: &Engine,
    clients: &mut Clients<'_>,
    wanted: &HashMap<(String, String), Wanted>,
    unparsed: &HashSet<String>,
    report: &mut SyncReport,
) -> Result<HashSet<(String, String)>, SyncError> {
    let store = engine.store();
    let mut registered: HashSet<(String, String)> = HashSet::new();
    for existing in store.autotask_webhooks().await? {
        let key = (existing.workflow.clone(), existing.trigger.clone());
        let want = wanted.get(&key);
        if want.is_none() && unparsed.contains(&existing.workflow) {
            registered.insert(key);
            continue;
        }
        let kept = match clients
            .get(&existing.org, existing.integration.as_deref())
            .await
        {
            Ok(client) => retire(&client, &existing, want, report).await,
            Err(e) => Err(e),
        };
        match kept {
            Ok(true) => {
                registered.insert(key);
            }
            Ok(false) => {
                store
                    .delete_autotask_webhook(&existing.workflow, &existing.trigger, &existing.org)
                    .await?;
            }
            Err(error) => {
                report.failed.push(SyncFailure {
                    workflow: existing.workflow.clone(),
                    trigger: existing.trigger.clone(),
                    error,
                });
                registered.insert(key);
            }
        }
    }
    Ok(registered)
}

/// Decides one registered webhook's fate in Autotask: `Ok(true)` when it is still wanted as
/// registered and still active there (counted unchanged); else it is deleted there (unless
/// already gone) and `Ok(false)` says its registration goes too. `Err` when Autotask could
/// not be asked.
async fn retire(
    client: &Client,
    existing: &AutotaskWebhook,
    want: Option<&Wanted>,
    report: &mut SyncReport,
) -> Result<bool, String> {
    let mut delete = true;
    if let Some(w) = want
        && w.hash == existing.config_hash
        && w.org == existing.org
    {
        // Still wanted as registered: check that Autotask still has it, active.
        match client.get(&existing.entity, existing.webhook_id).await {
            Ok(item) if item["isActive"].as_bool() != Some(false) => {
                report.unchanged += 1;
                return Ok(true);
            }
            Ok(_) => {} // deactivated by Autotask: delete and create again
            Err(e) if gone(&e) => delete = false,
            Err(e) => return Err(e.to_string()),
        }
    }
    if delete {
        match client.delete(&existing.entity, existing.webhook_id).await {
            Ok(_) => report.deleted.push(SyncedWebhook::from(existing)),
            Err(e) if gone(&e) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(false)
}

/// Creates the webhook `w` wants in its org's tenant, stores it (secret sealed) and then
/// activates it. Failures in Autotask are reported; a store failure deletes the new webhook
/// and ends the sync.
async fn register(
    engine: &Engine,
    clients: &mut Clients<'_>,
    w: &Wanted,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let fail = |report: &mut SyncReport, error: String| {
        report.failed.push(SyncFailure {
            workflow: w.workflow.clone(),
            trigger: w.trigger.clone(),
            error,
        });
    };
    let client = match clients.get(&w.org, w.instance.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            fail(report, e);
            return Ok(());
        }
    };
    let hook = match create(&client, w).await {
        Ok(hook) => hook,
        Err(error) => {
            fail(report, error);
            return Ok(());
        }
    };
    // The callout secret is sealed at rest like every other secret.
    let sealed = AutotaskWebhook {
        secret: engine.secrets().seal(&hook.secret),
        ..hook.clone()
    };
    if let Err(e) = engine.store().save_autotask_webhook(&sealed).await {
        let _ = client.delete(&hook.entity, hook.webhook_id).await;
        return Err(e.into());
    }
    if let Err(e) = client
        .update(&hook.entity, hook.webhook_id, json!({"isActive": true}))
        .await
    {
        // Left inactive: the next sync finds it so and creates it again.
        fail(
            report,
            format!("cannot activate {} {}: {e}", hook.entity, hook.webhook_id),
        );
        return Ok(());
    }
    report.created.push(SyncedWebhook::from(&hook));
    Ok(())
}

/// `{X}WebhookFields` field ids by lower-case field name.
async fn field_ids(client: &Client, entity: &str) -> Result<HashMap<String, i64>, String> {
    let fields_entity = format!("{}Fields", entity.trim_end_matches('s'));
    let values = client
        .picklist(&fields_entity, "fieldID")
        .await
        .map_err(|e| format!("cannot read the {fields_entity} field ids: {e}"))?;
    Ok(values
        .iter()
        .filter_map(|v| {
            let label = v.get("label")?.as_str()?.to_ascii_lowercase();
            let id = match v.get("value")? {
                Value::String(s) => s.trim().parse().ok()?,
                other => other.as_i64()?,
            };
            Some((label, id))
        })
        .collect())
}

/// Creates the webhook and its fields; reads back its GUID.
async fn create(client: &Client, w: &Wanted) -> Result<AutotaskWebhook, String> {
    let mut ids = field_ids(client, w.entity).await?;
    // A field the cached picklist does not know may have been added since: read it again once.
    if w.explicit
        && w.fields
            .iter()
            .any(|f| !ids.contains_key(&f.to_ascii_lowercase()))
    {
        let fields_entity = format!("{}Fields", w.entity.trim_end_matches('s'));
        client
            .refresh_fields(&fields_entity)
            .await
            .map_err(|e| format!("cannot read the {fields_entity} field ids: {e}"))?;
        ids = field_ids(client, w.entity).await?;
    }
    // (field id, subscribed, display always), in order, one per field.
    let mut children: Vec<(i64, bool, bool)> = Vec::new();
    for f in &w.fields {
        match ids.get(&f.to_ascii_lowercase()) {
            Some(&id) => match children.iter_mut().find(|c| c.0 == id) {
                Some(c) => c.1 = true,
                None => children.push((id, true, false)),
            },
            None if w.explicit => {
                let mut known: Vec<&str> = ids.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(format!(
                    "{} has no webhook field `{f}` (known: {})",
                    w.entity,
                    known.join(", ")
                ));
            }
            None => {}
        }
    }
    if !children.iter().any(|c| c.1) {
        return Err(format!(
            "none of the fields can be subscribed on {}",
            w.entity
        ));
    }
    for f in display_always_fields(entity_of(w.entity)) {
        if let Some(&id) = ids.get(&f.to_ascii_lowercase()) {
            match children.iter_mut().find(|c| c.0 == id) {
                Some(c) => c.2 = true,
                None => children.push((id, false, true)),
            }
        }
    }
    let secret = random_secret();
    let has = |e: AutotaskEvent| w.events.contains(&e);
    let body = json!({
        "name": webhook_name(&w.workflow, &w.trigger),
        "webhookUrl": w.url,
        "deactivationUrl": format!("{}/deactivated", w.url),
        "secretKey": secret,
        // Switched on once its fields exist and weft has stored it: a callout sent before
        // would lack the company (and could not be verified).
        "isActive": false,
        "isSubscribedToCreateEvents": has(AutotaskEvent::Create),
        "isSubscribedToUpdateEvents": has(AutotaskEvent::Update),
        "isSubscribedToDeleteEvents": has(AutotaskEvent::Delete),
        "sendThresholdExceededNotification": false,
    });
    let id = client
        .create(w.entity, body)
        .await
        .map_err(|e| format!("cannot create the {} webhook: {e}", w.entity))?;
    let finish = async {
        for (field_id, subscribed, always) in &children {
            client
                .create(
                    &format!("{}/{id}/Fields", w.entity),
                    json!({
                        "webhookID": id,
                        "fieldID": field_id,
                        "isSubscribedField": subscribed,
                        "isDisplayAlwaysField": always,
                    }),
                )
                .await
                .map_err(|e| format!("cannot add field {field_id} to {} {id}: {e}", w.entity))?;
        }
        let item = client
            .get(w.entity, id)
            .await
            .map_err(|e| format!("cannot read back {} {id}: {e}", w.entity))?;
        Ok::<_, String>(
            item.get("webhookGUID")
                .and_then(Value::as_str)
                .filter(|g| !g.is_empty())
                .map(str::to_string),
        )
    };
    let guid = match finish.await {
        Ok(g) => g,
        Err(e) => {
            let _ = client.delete(w.entity, id).await;
            return Err(e);
        }
    };
    Ok(AutotaskWebhook {
        workflow: w.workflow.clone(),
        trigger: w.trigger.clone(),
        org: w.org.clone(),
        integration: w.instance.clone(),
        entity: w.entity.into(),
        webhook_id: id,
        guid,
        secret,
        url: w.url.clone(),
        config_hash: w.hash.clone(),
        created_at: jiff::Timestamp::now().to_string(),
    })
}

// ---------------------------------------------------------------------------------------
// Receiving callouts

/// `sha1=<base64(HMAC-SHA1(secret, body))>`, as Autotask signs a callout.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!(
        "sha1={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Whether `header` (the `X-Hook-Signature` value) signs `body` with `secret`; compares in
/// constant time.
pub fn verify_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let expected = signature(secret, body);
    let given = header.trim();
    // The `sha1=` prefix is case-insensitive; the base64 digest is not.
    let given = match given.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("sha1=") => &given[5..],
        _ => return false,
    };
    constant_time_eq(given.as_bytes(), &expected.as_bytes()[5..])
}

/// The routes: `POST /hooks/autotask/{workflow}/{trigger}` and `.../deactivated`.
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
            return Json(json!({"accepted": false, "reason": reason})).into_response();
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
            return Json(json!({"duplicate": true})).into_response();
        }
        Json(json!({"accepted": false, "reason": reason})).into_response()
    }
}

/// A stored callout secret in clear: sealed ones are opened; one stored before secrets were
/// sealed (or that does not open) is used as it is.
fn open_callout_secret(engine: &Engine, stored: &str) -> String {
    engine
        .secrets()
        .open(stored)
        .unwrap_or_else(|_| stored.to_string())
}

/// The registrations of a trigger (one per org), their secrets opened.
async fn registrations(
    state: &AppState,
    workflow: &str,
    trigger: &str,
) -> Result<Vec<AutotaskWebhook>, ApiError> {
    let all = state.store().autotask_webhooks().await?;
    let found: Vec<AutotaskWebhook> = all
        .into_iter()
        .filter(|w| w.workflow == workflow && w.trigger == trigger)
        .map(|w| AutotaskWebhook {
            secret: open_callout_secret(state.engine(), &w.secret),
            ..w
        })
        .collect();
    if found.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no Autotask webhook is registered for {workflow}.{trigger}"
        )));
    }
    Ok(found)
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ApiError::TooLarge(MAX_BODY as u64));
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge(MAX_BODY as u64))
}

/// The trigger (an Autotask one) of the latest deployed version of `workflow`.
async fn find_trigger(
    state: &AppState,
    workflow: &str,
    trigger: &str,
) -> Result<
    (
        weft_engine::store::WorkflowRecord,
        Arc<weft_engine::Workflow>,
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

/// `POST /hooks/autotask/{workflow}/{trigger}`: an Autotask callout.
pub(crate) async fn callout(
    State(state): State<AppState>,
    Path((workflow, trigger_name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let regs = match registrations(&state, &workflow, &trigger_name).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut rec = Recorder {
        state: &state,
        workflow: &workflow,
        trigger: &trigger_name,
        org: regs[0].org.clone(),
    };
    let (payload, guid) = match authenticate(&regs, &headers, body, &mut rec).await {
        Ok(p) => p,
        Err(e) => return rec.reject(e).await,
    };
    let action = payload["Action"].as_str().unwrap_or_default().to_string();
    if action.eq_ignore_ascii_case("deactivated") {
        return deactivation_notice(&rec).await;
    }
    let dedupe = format!(
        "autotask:{guid}:{}:{}",
        scalar_text(&payload["Id"]),
        scalar_text(&payload["SequenceNumber"])
    );
    let c = Callout {
        headers: &headers,
        payload,
        guid,
        action,
        dedupe,
    };
    match deliver(&rec, &c).await {
        Ok(r) => r,
        Err(Stop::Reject(e)) => rec.reject(e).await,
        Err(Stop::Filter(reason)) => rec.filtered(reason, &c.dedupe).await,
    }
}

/// Reads the body and finds the registration whose secret signed it (the recorder then
/// records under that registration's org); returns the JSON payload and the webhook GUID,
/// which must be the registration's.
async fn authenticate(
    regs: &[AutotaskWebhook],
    headers: &HeaderMap,
    body: Body,
    rec: &mut Recorder<'_>,
) -> Result<(Value, String), ApiError> {
    let bytes = read_body(headers, body).await?;
    let given = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized("missing X-Hook-Signature header".into()))?;
    let reg = regs
        .iter()
        .find(|r| verify_signature(&r.secret, &bytes, given))
        .ok_or_else(|| ApiError::Unauthorized("wrong X-Hook-Signature".into()))?;
    rec.org = reg.org.clone();
    let payload: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Err(ApiError::BadRequest(
                "the callout body is not a JSON object".into(),
            ));
        }
        Err(e) => return Err(ApiError::BadRequest(format!("the body is not JSON: {e}"))),
    };
    let guid = payload["Guid"]
        .as_str()
        .map(str::to_string)
        .or_else(|| reg.guid.clone())
        .unwrap_or_default();
    if let Some(expected) = &reg.guid
        && !guid.eq_ignore_ascii_case(expected)
    {
        return Err(ApiError::Unauthorized(format!(
            "the callout is for webhook {guid}, not {expected}"
        )));
    }
    Ok((payload, guid))
}

/// A signed callout on its way to starting executions.
struct Callout<'a> {
    headers: &'a HeaderMap,
    payload: Value,
    guid: String,
    /// The callout's `Action` as sent (`Create`, `Update`, `Delete`).
    action: String,
    /// The de-duplication key: GUID, record id and sequence number.
    dedupe: String,
}

/// Why a callout starts nothing.
enum Stop {
    /// Refused (see [`Recorder::reject`]).
    Reject(ApiError),
    /// Accepted and recorded, but the trigger does not apply (disabled, not subscribed,
    /// criteria not met, not the trigger's org).
    Filter(String),
}

impl<E: Into<ApiError>> From<E> for Stop {
    fn from(e: E) -> Stop {
        Stop::Reject(e.into())
    }
}

/// Matches a callout to its trigger, picks the org it runs for, and enqueues the
/// executions.
async fn deliver(rec: &Recorder<'_>, c: &Callout<'_>) -> Result<Response, Stop> {
    let state = rec.state;
    let (record, wf, index) = find_trigger(state, rec.workflow, rec.trigger).await?;
    let trigger = &wf.triggers[index];
    let action = subscribed(state, rec.workflow, trigger, &c.action).await?;
    let TriggerKind::Autotask { entity, .. } = &trigger.kind else {
        unreachable!("find_trigger returns Autotask triggers")
    };
    let routing = Routing::decide(state, trigger, &rec.org, entity, &c.payload).await?;
    let event = callout_event(c, trigger, entity, action, &routing);
    let now = jiff::Timestamp::now().to_string();
    let ctx = context(&[("TRIGGER", to_value(&event))], &now, Extra::default());
    if let Some(criteria) = &trigger.criteria {
        match criteria.render_value(&ctx) {
            Ok(v) if v.is_true() => {}
            Ok(_) => return Err(Stop::Filter("criteria not met".into())),
            Err(e) => {
                return Err(Stop::Filter(format!(
                    "criteria could not be evaluated: {e}"
                )));
            }
        }
    }
    let input = inputs(&wf, trigger, &event, &ctx)?;
    let orgs = match routing.scoped {
        Some(org) => vec![org],
        None => run_for_orgs(state.store().as_ref(), &trigger.run_for, &routing.run_org).await?,
    };
    let starts = starts_for(&record, trigger, orgs, &input, &event);
    let accepted = TriggerEvent {
        dedupe_key: Some(c.dedupe.clone()),
        ..rec.event("accepted", StatusCode::ACCEPTED, None)
    };
    match state.engine().enqueue(&accepted, starts).await? {
        Some(ids) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": ids.first(), "ids": ids})),
        )
            .into_response()),
        None => Ok(Json(json!({"duplicate": true})).into_response()),
    }
}

/// The event the callout's `Action` names, if the trigger is on and subscribes to it.
async fn subscribed(
    state: &AppState,
    workflow: &str,
    trigger: &Trigger,
    action: &str,
) -> Result<AutotaskEvent, Stop> {
    let TriggerKind::Autotask { events, .. } = &trigger.kind else {
        unreachable!("find_trigger returns Autotask triggers")
    };
    let switches = crate::Switches::load(state.store().as_ref()).await?;
    if !switches.enabled(workflow, trigger) {
        return Err(Stop::Filter("the trigger is disabled".into()));
    }
    let action = match action.to_ascii_lowercase().as_str() {
        "create" => AutotaskEvent::Create,
        "update" => AutotaskEvent::Update,
        "delete" => AutotaskEvent::Delete,
        other => {
            return Err(Stop::Reject(ApiError::BadRequest(format!(
                "unknown callout Action `{other}`"
            ))));
        }
    };
    if !events.contains(&action) {
        return Err(Stop::Filter(format!(
            "the trigger does not subscribe to {} events",
            event_name(action)
        )));
    }
    Ok(action)
}

/// Which org a callout runs for.
///
/// Company → org: with `run_for` owner, the org mapped to the event's company runs it; an
/// unmapped company runs for the registration's org (`mapped: false` in TRIGGER). With orgs
/// listed (a crate installed for a client) or `all_managed`, the record's org must be one of
/// them (or below one): a ticket is about one company, not every client.
struct Routing {
    /// The Autotask company the record belongs to, when known.
    company_id: Option<i64>,
    /// The org mapped to that company.
    mapped_org: Option<String>,
    /// The one org an event about a company runs for; `None`: the trigger's `run_for` orgs.
    scoped: Option<String>,
    /// The org the event names (`TRIGGER.org`): the scoped one, else the registration's.
    run_org: String,
}

impl Routing {
    async fn decide(
        state: &AppState,
        trigger: &Trigger,
        registered_with: &str,
        entity: &str,
        payload: &Value,
    ) -> Result<Routing, Stop> {
        let company_id = company_of(state, trigger, registered_with, entity, payload).await;
        let mapped_org = match company_id {
            Some(c) => crate::mapping::org_of_company(state.store().as_ref(), c).await?,
            None => None,
        };
        let scoped = match (company_id, &trigger.run_for) {
            (None, _) => None,
            (Some(_), RunFor::Owner) => Some(
                mapped_org
                    .clone()
                    .unwrap_or_else(|| registered_with.to_string()),
            ),
            (Some(c), run_for) => {
                let listed = match run_for {
                    RunFor::Orgs(list) => Some(list.as_slice()),
                    _ => None,
                };
                match record_org(state.store().as_ref(), listed, c, mapped_org.as_deref()).await? {
                    Ok(org) => Some(org),
                    Err(reason) => return Err(Stop::Filter(reason)),
                }
            }
        };
        let run_org = scoped
            .clone()
            .unwrap_or_else(|| registered_with.to_string());
        Ok(Routing {
            company_id,
            mapped_org,
            scoped,
            run_org,
        })
    }
}

/// `TRIGGER` of an Autotask callout: what happened to which record, for which org, with the
/// raw body and headers (the signature removed).
fn callout_event(
    c: &Callout<'_>,
    trigger: &Trigger,
    entity: &str,
    action: AutotaskEvent,
    routing: &Routing,
) -> Value {
    let payload = &c.payload;
    let mut hdrs = headers_json(c.headers);
    if let Some(m) = hdrs.as_object_mut() {
        m.remove(SIGNATURE_HEADER);
    }
    json!({
        "type": format!("autotask.{entity}"),
        "name": trigger.name,
        "action": event_name(action),
        "entity": entity,
        "id": payload["Id"].clone(),
        // Delete events carry no fields: an empty object keeps `TRIGGER.fields.X` defined-safe.
        "fields": payload
            .get("Fields")
            .filter(|f| f.is_object())
            .cloned()
            .unwrap_or_else(|| json!({})),
        "guid": c.guid,
        "sequence": payload["SequenceNumber"].clone(),
        "event_time": payload.get("EventTime").cloned().unwrap_or(Value::Null),
        "person_id": payload.get("PersonID").or_else(|| payload.get("PersonId")).cloned().unwrap_or(Value::Null),
        "org": routing.run_org,
        "company_id": routing.company_id,
        "mapped": routing.mapped_org.is_some(),
        "body": payload,
        "headers": hdrs,
    })
}

/// The one org an event about company `company` runs for when the trigger lists orgs
/// (`listed`) or runs for `all_managed` (`None`): the company's mapped org when it is one of
/// them or below one; an unmapped company runs for a listed root org (the MSP).
/// `Err(reason)` when the record is none of the trigger's business.
async fn record_org(
    store: &dyn weft_engine::store::Store,
    listed: Option<&[String]>,
    company: i64,
    mapped: Option<&str>,
) -> Result<Result<String, String>, StoreError> {
    let orgs = store.list_orgs().await?;
    let parent_of: HashMap<&str, Option<&str>> = orgs
        .iter()
        .map(|o| (o.id.as_str(), o.parent_id.as_deref()))
        .collect();
    let within = |org: &str, top: &str| {
        let mut at = Some(org);
        while let Some(o) = at {
            if o == top {
                return true;
            }
            at = parent_of.get(o).copied().flatten();
        }
        false
    };
    let unmapped = || {
        format!(
            "company {company} is not mapped to an organization this trigger runs for (map it: weft mapping set ORG {company})"
        )
    };
    Ok(match (listed, mapped) {
        (Some(list), Some(m)) => match list.iter().any(|top| within(m, top)) {
            true => Ok(m.to_string()),
            false => Err(format!(
                "company {company} belongs to org `{m}`, which this trigger does not run for ({})",
                list.join(", ")
            )),
        },
        (Some(list), None) => list
            .iter()
            .find(|o| matches!(parent_of.get(o.as_str()), Some(None)))
            .cloned()
            .ok_or_else(unmapped),
        (None, Some(m)) => {
            match orgs
                .iter()
                .any(|o| o.id == m && o.parent_id.is_some() && o.active)
            {
                true => Ok(m.to_string()),
                false => Err(format!(
                    "company {company} belongs to org `{m}`, which is not a managed (active client) org"
                )),
            }
        }
        (None, None) => Err(unmapped()),
    })
}

/// The Autotask company an event is about: `Id` of company events, `Fields.CompanyID` of
/// tickets, contacts and configuration items; for ticket notes, the company of
/// `Fields.TicketID`, read with one GET in the registration's tenant (`None` when that fails).
async fn company_of(
    state: &AppState,
    trigger: &Trigger,
    registered_with: &str,
    entity: &str,
    payload: &Value,
) -> Option<i64> {
    let int = |v: &Value| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let field = |name: &str| {
        payload
            .get("Fields")
            .and_then(Value::as_object)
            .and_then(|f| f.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| int(v))
    };
    match entity {
        "company" => int(&payload["Id"]),
        "ticket_note" => {
            let ticket = field("TicketID")?;
            // Read in the tenant the webhook was registered with.
            let client = autotask_client(
                state.engine(),
                registered_with,
                instance_of(trigger).as_deref(),
            )
            .await
            .ok()?;
            match client.get("Tickets", ticket).await {
                Ok(t) => int(&t["companyID"]),
                Err(e) => {
                    tracing::warn!(ticket, error = %e, "cannot read the ticket of a note; its org is the owner");
                    None
                }
            }
        }
        _ => field("CompanyID"),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
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
    Json(json!({"received": true})).into_response()
}

/// `POST /hooks/autotask/{workflow}/{trigger}/deactivated`: Autotask's notice that it
/// deactivated the webhook (after repeated failed deliveries). Signed notices are verified;
/// unsigned ones must name the registered webhook's GUID.
pub(crate) async fn deactivated(
    State(state): State<AppState>,
    Path((workflow, trigger)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let regs = match registrations(&state, &workflow, &trigger).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
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
    let payload: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let given = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let reg = match given {
        Some(sig) => regs
            .iter()
            .find(|r| verify_signature(&r.secret, &bytes, sig)),
        None => payload["Guid"].as_str().and_then(|g| {
            regs.iter()
                .find(|r| r.guid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(g)))
        }),
    };
    let Some(reg) = reg else {
        return rec
            .reject(ApiError::Unauthorized(
                "the deactivation notice is neither signed nor for the registered webhook".into(),
            ))
            .await;
    };
    rec.org = reg.org.clone();
    deactivation_notice(&rec).await
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use axum::routing::post;
    utoipa_axum::router::OpenApiRouter::new()
        .route("/hooks/autotask/{workflow}/{trigger}", post(callout))
        .route(
            "/hooks/autotask/{workflow}/{trigger}/deactivated",
            post(deactivated),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC-SHA1 of "The quick brown fox jumps over the lazy dog" with key "key" is
    /// de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9 (RFC 2104 test vector, as on Wikipedia).
    #[test]
    fn autotask_signature_known_vector() {
        let body = b"The quick brown fox jumps over the lazy dog";
        let digest = hex::decode("de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9").unwrap();
        let expected = format!(
            "sha1={}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(signature("key", body), expected);
        assert_eq!(expected, "sha1=3nybhbi3iqa8ino29wqQcBydtNk=");
        assert!(verify_signature("key", body, &expected));
        assert!(verify_signature(
            "key",
            body,
            "SHA1=3nybhbi3iqa8ino29wqQcBydtNk="
        ));
    }

    #[test]
    fn autotask_signature_rejects_tampering() {
        let body = br#"{"Action":"Create","Guid":"g","Id":1,"Fields":{"Title":"a\u0026b"}}"#;
        let sig = signature("s3cret", body);
        assert!(verify_signature("s3cret", body, &sig));
        // The same JSON re-serialized (`&` unescaped) no longer matches: raw bytes only.
        let reserialized =
            serde_json::to_vec(&serde_json::from_slice::<Value>(body).unwrap()).unwrap();
        assert_ne!(reserialized.as_slice(), body.as_slice());
        assert!(!verify_signature("s3cret", &reserialized, &sig));
        assert!(!verify_signature("other", body, &sig));
        assert!(!verify_signature("s3cret", body, ""));
        assert!(!verify_signature("s3cret", body, &sig[5..]));
        let mut flipped = sig.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(!verify_signature(
            "s3cret",
            body,
            std::str::from_utf8(&flipped).unwrap()
        ));
    }

    #[test]
    fn autotask_webhook_names_and_entities() {
        assert_eq!(webhook_entity("ticket"), Some("TicketWebhooks"));
        assert_eq!(
            webhook_entity("configuration_item"),
            Some("ConfigurationItemWebhooks")
        );
        assert_eq!(webhook_entity("invoice"), None);
        let long = webhook_name(&"w".repeat(40), "trigger");
        assert_eq!(long.chars().count(), MAX_NAME);
        assert_eq!(webhook_name("wf", "t"), "weft: wf.t");
        assert!(random_secret().len() >= 32);
        assert_eq!(
            callout_url("http://x:1/", "wf", "t"),
            "http://x:1/hooks/autotask/wf/t"
        );
    }
}
