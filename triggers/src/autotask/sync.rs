//! Registering the Autotask webhooks of the deployed Autotask triggers and keeping them in
//! step (see the module docs of [`crate::autotask`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use weft_actions::autotask::{AutotaskError, Client, ErrorKind};
use weft_engine::executor::Engine;
use weft_engine::model::{AutotaskEvent, IntegrationOverride, RunFor, Trigger, TriggerKind};
use weft_engine::store::{AutotaskWebhook, StoreError};

use super::{default_fields, display_always_fields, event_name, webhook_entity};

/// What the Autotask webhooks were last kept in step with: the deployed workflow ids and
/// every trigger switch `(workflow, trigger, on)`.
type Synced = (Vec<i64>, Vec<(String, String, bool)>);

/// The org webhooks are registered for until the org mapping exists.
const DEFAULT_ORG: &str = "default";
/// Autotask's limit on a webhook's name.
pub(super) const MAX_NAME: usize = 50;

/// Serializes [`sync_webhooks`] calls (start-up and API deploys may overlap).
static SYNC_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

pub(crate) fn instance_of(t: &Trigger) -> Option<String> {
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

pub(super) fn random_secret() -> String {
    crate::random_token("")
}

pub(super) fn webhook_name(workflow: &str, trigger: &str) -> String {
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
pub(crate) async fn autotask_client(
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
        let Ok(wf) = engine.parsed(&record) else {
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

/// What Autotask says of a webhook it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WebhookState {
    /// `isActive` and `isReady`: callouts are sent.
    Working,
    /// Active but `isReady` false: Autotask sends nothing (yet).
    NotReady,
    /// `isActive` false, e.g. deactivated by Autotask after failed callouts.
    Inactive,
}

/// A webhook sends callouts only when both `isActive` and the read-only `isReady` are true;
/// a missing flag counts as true (older answers without it).
fn webhook_state(item: &Value) -> WebhookState {
    let flag = |name: &str| item.get(name).and_then(Value::as_bool) != Some(false);
    match (flag("isActive"), flag("isReady")) {
        (false, _) => WebhookState::Inactive,
        (true, false) => WebhookState::NotReady,
        (true, true) => WebhookState::Working,
    }
}

/// Decides one registered webhook's fate in Autotask: `Ok(true)` when it is still wanted as
/// registered and still active and ready there (counted unchanged); `Err` naming it when it
/// is active but not ready (kept); else it is deleted there (unless
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
        // Still wanted as registered: check that Autotask still has it, working.
        match client.get(&existing.entity, existing.webhook_id).await {
            Ok(item) => match webhook_state(&item) {
                WebhookState::Working => {
                    report.unchanged += 1;
                    return Ok(true);
                }
                // Not ready: Autotask sends nothing yet. Said so, and kept (it is not ours to
                // fix by recreating it; the next sync asks again).
                WebhookState::NotReady => {
                    return Err(format!(
                        "Autotask reports {} {} as not ready (isReady is false): it sends no \
                         callouts",
                        existing.entity, existing.webhook_id
                    ));
                }
                WebhookState::Inactive => {} // deactivated by Autotask: delete and create again
            },
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

#[cfg(test)]
mod state_tests {
    use super::*;

    #[test]
    fn a_webhook_works_only_when_active_and_ready() {
        let state = |v: Value| webhook_state(&v);
        assert_eq!(
            state(json!({"isActive": true, "isReady": true})),
            WebhookState::Working
        );
        assert_eq!(
            state(json!({"isActive": true, "isReady": false})),
            WebhookState::NotReady
        );
        assert_eq!(
            state(json!({"isActive": false, "isReady": true})),
            WebhookState::Inactive
        );
        assert_eq!(
            state(json!({"isActive": false, "isReady": false})),
            WebhookState::Inactive
        );
        assert_eq!(state(json!({"isActive": true})), WebhookState::Working);
    }
}
