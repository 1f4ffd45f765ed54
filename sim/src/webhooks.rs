//! Outbound webhook callouts, as Autotask sends them (autotask.md §6).
//!
//! A create/update/delete made through the API on Companies, Contacts, ConfigurationItems,
//! Tickets or TicketNotes fires every matching `{X}Webhooks` record that is active, subscribed
//! to that action, has at least one field or UDF field, and does not list the acting resource
//! (the `ImpersonationResourceId` header, else the resource whose email is the API user name)
//! in its ExcludedResources. Update events fire only when a subscribed field changed; `Fields`
//! holds the changed subscribed fields plus the display-always fields (PascalCase keys, string
//! values); Delete events carry `{}`.
//!
//! Field ids: `fieldID` on `{X}WebhookFields` is the 1-based position of the field in
//! `/{X}/entityInformation/fields`; `udfFieldID` the 1-based position in
//! `/entityInformation/userDefinedFields`. Both are served as picklists on
//! `/{X}WebhookFields/entityInformation/fields` (value = id, label = field name). This
//! numbering is the simulator's own (real field ids are tenant-wide numbers).
//!
//! The body is signed exactly as sent: `X-Hook-Signature: sha1=base64(HMAC-SHA1(secretKey,
//! body))`. With `dotnet_escaping` (default on) the characters `& < > ' + \`` and non-ASCII
//! are written as `\uXXXX`, as Autotask's .NET serializer does, so a verifier that
//! re-serializes instead of using the raw bytes fails as it would in production.
//!
//! Delivery: one ordered queue per webhook; a 2xx is success; otherwise retry after
//! `retry_delay` up to `attempts` times, then log to WebhookEventErrorLogs. After
//! `deactivate_after` consecutive failed attempts the webhook is set inactive and its
//! deactivation URL receives `{"Action":"Deactivated","Guid":…}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};

use crate::schema::{self, Spec};
use crate::server::Shared;

/// Webhook delivery settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Per-attempt timeout (Autotask: 10 s).
    pub timeout: Duration,
    /// Delay between attempts (Autotask: 30 s).
    pub retry_delay: Duration,
    /// Attempts per event before it is dropped and logged (Autotask: 5).
    pub attempts: u32,
    /// Consecutive failed attempts after which the webhook is deactivated (Autotask: 25).
    pub deactivate_after: u32,
    /// Escape `& < > ' + \`` and non-ASCII as `\uXXXX` like Autotask.
    pub dotnet_escaping: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            timeout: Duration::from_secs(10),
            retry_delay: Duration::from_secs(30),
            attempts: 5,
            deactivate_after: 25,
            dotnet_escaping: true,
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WebhookDelivery {
    /// e.g. `TicketWebhooks`.
    pub webhook_entity: String,
    /// The id of the webhook the delivery belongs to.
    pub webhook_id: i64,
    /// The callout URL.
    pub url: String,
    /// The exact body sent.
    pub body: String,
    /// The `X-Hook-Signature` header value.
    pub signature: String,
    /// 1 for the first try, counting up through retries.
    pub attempt: u32,
    /// HTTP status, when a response came back.
    pub status: Option<u16>,
    /// The transport error, when no response came back.
    pub error: Option<String>,
}

pub(crate) struct Event {
    webhook_entity: &'static str,
    webhook_id: i64,
    url: String,
    deactivation_url: Option<String>,
    guid: String,
    body: String,
    signature: String,
    sequence: u64,
}

pub(crate) struct Webhooks {
    queues:
        std::sync::Mutex<HashMap<(&'static str, i64), tokio::sync::mpsc::UnboundedSender<Event>>>,
    pending: std::sync::Mutex<Vec<Event>>,
    seq: std::sync::atomic::AtomicU64,
    failures: std::sync::Mutex<HashMap<(&'static str, i64), u32>>,
    pub log: std::sync::Mutex<Vec<WebhookDelivery>>,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl Webhooks {
    pub fn new() -> Webhooks {
        Webhooks {
            queues: Default::default(),
            pending: Default::default(),
            seq: Default::default(),
            failures: Default::default(),
            log: Default::default(),
            client: Default::default(),
        }
    }
}

/// The webhook entity for an entity that supports callouts (`Tickets` → `TicketWebhooks`).
pub fn webhook_entity(spec: &Spec) -> Option<&'static str> {
    if !spec.webhooks {
        return None;
    }
    let base = crate::server::singular(spec.name);
    schema::spec(&format!("{base}Webhooks")).map(|s| s.name)
}

/// For `{X}WebhookFields.fieldID` and `{X}WebhookUdfFields.udfFieldID`: the entity whose
/// fields they number.
pub fn numbered_entity(spec: &Spec, field: &str) -> Option<&'static Spec> {
    let base = if field == "fieldID" {
        spec.name.strip_suffix("WebhookFields")?
    } else if field == "udfFieldID" {
        spec.name.strip_suffix("WebhookUdfFields")?
    } else {
        return None;
    };
    schema::specs()
        .iter()
        .find(|s| s.webhooks && crate::server::singular(s.name) == base)
}

fn pascal(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        other => Some(other.to_string()),
    }
}

/// .NET-style escaping of an already serialized JSON text.
pub fn dotnet_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        match ch {
            '&' | '<' | '>' | '\'' | '+' | '`' => out.push_str(&format!("\\u{:04x}", ch as u32)),
            c if !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!(
        "sha1={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Queues the callouts for a change. Called with the tables unlocked.
pub(crate) fn emit(
    shared: &Shared,
    spec: &Spec,
    action: &str,
    id: i64,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    person: Option<i64>,
) {
    let Some(wh_entity) = webhook_entity(spec) else {
        return;
    };
    let base = wh_entity.trim_end_matches('s');
    let udf_defs = shared.udfs(spec);
    let tables = shared.tables.lock().unwrap();
    let children = |suffix: &str, wid: i64| -> Vec<Map<String, Value>> {
        schema::spec(&format!("{base}{suffix}"))
            .and_then(|s| tables.get(s.name))
            .map(|t| {
                t.values()
                    .filter(|r| r.get("webhookID").and_then(Value::as_i64) == Some(wid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let flag = |r: &Map<String, Value>, k: &str| r.get(k).and_then(Value::as_bool) == Some(true);
    let mut events = Vec::new();
    for (wid, wh) in &tables[wh_entity] {
        let sub = match action {
            "Create" => "isSubscribedToCreateEvents",
            "Update" => "isSubscribedToUpdateEvents",
            _ => "isSubscribedToDeleteEvents",
        };
        if !flag(wh, "isActive") || !flag(wh, sub) {
            continue;
        }
        let fields = children("Fields", *wid);
        let udf_fields = children("UdfFields", *wid);
        if fields.is_empty() && udf_fields.is_empty() {
            continue;
        }
        if let Some(p) = person
            && children("ExcludedResources", *wid)
                .iter()
                .any(|r| r.get("resourceID").and_then(Value::as_i64) == Some(p))
        {
            continue;
        }
        // (name, is udf, subscribed, display-always)
        let mut wanted: Vec<(String, bool, bool, bool)> = Vec::new();
        for f in &fields {
            let idx = f.get("fieldID").and_then(Value::as_i64).unwrap_or(0);
            if let Some(fd) = usize::try_from(idx - 1)
                .ok()
                .and_then(|i| spec.fields.get(i))
            {
                wanted.push((
                    fd.name.into(),
                    false,
                    flag(f, "isSubscribedField"),
                    flag(f, "isDisplayAlwaysField"),
                ));
            }
        }
        for f in &udf_fields {
            let idx = f.get("udfFieldID").and_then(Value::as_i64).unwrap_or(0);
            if let Some(d) = usize::try_from(idx - 1).ok().and_then(|i| udf_defs.get(i)) {
                wanted.push((
                    d.name.clone(),
                    true,
                    flag(f, "isSubscribedField"),
                    flag(f, "isDisplayAlwaysField"),
                ));
            }
        }
        let value = |rec: Option<&Map<String, Value>>, name: &str, udf: bool| -> Value {
            match rec {
                None => Value::Null,
                Some(r) if udf => crate::query::udf_value(r, name),
                Some(r) => r.get(name).cloned().unwrap_or(Value::Null),
            }
        };
        let mut out = Map::new();
        if action != "Delete" {
            let mut changed = false;
            for (name, udf, subscribed, always) in &wanted {
                let nv = value(new, name, *udf);
                let is_change = action == "Create" || value(old, name, *udf) != nv;
                if *subscribed && is_change {
                    changed = true;
                }
                if ((*subscribed && is_change) || *always)
                    && let Some(s) = text(&nv)
                {
                    out.insert(if *udf { name.clone() } else { pascal(name) }, json!(s));
                }
            }
            if action == "Update" && !changed {
                continue;
            }
        }
        let guid = wh
            .get("webhookGUID")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let seq = shared
            .webhooks
            .seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let payload = json!({
            "Action": action,
            "Guid": guid,
            "EntityType": crate::server::singular(spec.name),
            "Id": id,
            "Fields": out,
            "EventTime": jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now()).to_string(),
            "SequenceNumber": seq,
            "PersonID": person,
        });
        let mut body = payload.to_string();
        if shared.config.webhooks.dotnet_escaping {
            body = dotnet_escape(&body);
        }
        let secret = wh.get("secretKey").and_then(Value::as_str).unwrap_or("");
        let signature = sign(secret, body.as_bytes());
        events.push(Event {
            webhook_entity: wh_entity,
            webhook_id: *wid,
            url: wh
                .get("webhookUrl")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            deactivation_url: wh
                .get("deactivationUrl")
                .and_then(Value::as_str)
                .map(str::to_string),
            guid,
            body,
            signature,
            sequence: seq,
        });
    }
    drop(tables);
    shared.webhooks.pending.lock().unwrap().extend(events);
}

/// Hands queued events to the per-webhook delivery tasks (needs a tokio runtime).
pub(crate) fn dispatch(shared: &Arc<Shared>) {
    let events: Vec<Event> = std::mem::take(&mut *shared.webhooks.pending.lock().unwrap());
    if events.is_empty() {
        return;
    }
    let mut queues = shared.webhooks.queues.lock().unwrap();
    for ev in events {
        let key = (ev.webhook_entity, ev.webhook_id);
        let tx = queues.entry(key).or_insert_with(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(worker(Arc::downgrade(shared), rx));
            tx
        });
        if let Err(e) = tx.send(ev) {
            // The worker ended (simulator dropped): start a new one.
            let (tx2, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(worker(Arc::downgrade(shared), rx));
            let _ = tx2.send(e.0);
            *tx = tx2;
        }
    }
}

async fn worker(
    shared: std::sync::Weak<Shared>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    while let Some(ev) = rx.recv().await {
        let Some(s) = shared.upgrade() else { return };
        let cfg = s.config.webhooks.clone();
        let client = s.webhooks.client.get_or_init(reqwest::Client::new).clone();
        drop(s);
        let mut delivered = false;
        let mut last_error = String::new();
        for attempt in 1..=cfg.attempts.max(1) {
            let res = client
                .post(&ev.url)
                .header("content-type", "application/json")
                .header("x-hook-signature", &ev.signature)
                .timeout(cfg.timeout)
                .body(ev.body.clone())
                .send()
                .await;
            let (status, error) = match &res {
                Ok(r) => (Some(r.status().as_u16()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            let ok = status.is_some_and(|c| (200..300).contains(&c));
            let Some(s) = shared.upgrade() else { return };
            s.webhooks.log.lock().unwrap().push(WebhookDelivery {
                webhook_entity: ev.webhook_entity.into(),
                webhook_id: ev.webhook_id,
                url: ev.url.clone(),
                body: ev.body.clone(),
                signature: ev.signature.clone(),
                attempt,
                status,
                error: error.clone(),
            });
            let key = (ev.webhook_entity, ev.webhook_id);
            if ok {
                s.webhooks.failures.lock().unwrap().insert(key, 0);
                delivered = true;
                break;
            }
            last_error = error.unwrap_or_else(|| {
                format!(
                    "The remote server returned an error: ({}).",
                    status.unwrap_or(0)
                )
            });
            let consecutive = {
                let mut f = s.webhooks.failures.lock().unwrap();
                let n = f.entry(key).or_insert(0);
                *n += 1;
                *n
            };
            if consecutive >= cfg.deactivate_after {
                let was_active = {
                    let mut t = s.tables.lock().unwrap();
                    let rec = t
                        .get_mut(ev.webhook_entity)
                        .and_then(|t| t.get_mut(&ev.webhook_id));
                    match rec {
                        Some(r) if r.get("isActive") == Some(&Value::Bool(true)) => {
                            r.insert("isActive".into(), json!(false));
                            true
                        }
                        _ => false,
                    }
                };
                if was_active && let Some(url) = &ev.deactivation_url {
                    let body = json!({"Action": "Deactivated", "Guid": ev.guid}).to_string();
                    let _ = client
                        .post(url)
                        .timeout(cfg.timeout)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                }
                break;
            }
            drop(s);
            if attempt < cfg.attempts {
                tokio::time::sleep(cfg.retry_delay).await;
            }
        }
        if !delivered && let Some(s) = shared.upgrade() {
            // The Swagger's model names the Company webhook's column after Autotask's old
            // name for companies ("Account").
            let id_field = if ev.webhook_entity == "CompanyWebhooks" {
                "accountWebhookID".to_string()
            } else {
                let base = ev.webhook_entity.trim_end_matches('s');
                let mut c = base.chars();
                let first = c
                    .next()
                    .map(|f| f.to_ascii_lowercase().to_string())
                    .unwrap_or_default();
                format!("{first}{}ID", c.as_str())
            };
            let mut t = s.tables.lock().unwrap();
            let logs = t.get_mut("WebhookEventErrorLogs").unwrap();
            let id = logs.keys().max().copied().unwrap_or(0) + 1;
            let mut rec = Map::new();
            rec.insert("id".into(), json!(id));
            rec.insert(id_field, json!(ev.webhook_id));
            rec.insert(
                "createDateTime".into(),
                json!(
                    jiff::Timestamp::now()
                        .round(jiff::Unit::Second)
                        .unwrap_or_else(|_| jiff::Timestamp::now())
                        .to_string()
                ),
            );
            rec.insert("errorMessage".into(), json!(last_error));
            rec.insert("payload".into(), json!(ev.body));
            rec.insert("sequenceNumber".into(), json!(ev.sequence));
            logs.insert(id, rec);
        }
    }
}
