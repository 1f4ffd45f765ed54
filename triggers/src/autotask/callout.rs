//! Accepting an Autotask callout: which registration signed it, what it is about, whether the
//! trigger takes it, which org(s) it runs for and the `TRIGGER` event of each execution.
//! The HTTP server reads the request, calls these in order, records the outcome and answers.

use std::collections::HashMap;

use http::HeaderMap;
use serde_json::{Value, json};
use weft_engine::Workflow;
use weft_engine::executor::{Engine, Start};
use weft_engine::model::{AutotaskEvent, RunFor, Trigger, TriggerKind};
use weft_engine::store::{AutotaskWebhook, Store, StoreError, WorkflowRecord};

use super::sync::{autotask_client, instance_of};
use super::{SIGNATURE_HEADER, event_name, verify_signature};
use crate::event::{Admission, NO_MANAGED_ORGS, admit, headers_json, starts_for};
use crate::{Switches, TriggerError};

/// A stored callout secret in clear: sealed ones are opened; one stored before secrets were
/// sealed (or that does not open) is used as it is.
fn open_callout_secret(engine: &Engine, stored: &str) -> String {
    engine
        .secrets()
        .open(stored)
        .unwrap_or_else(|_| stored.to_string())
}

/// The registrations of a trigger's webhook (one per org), their secrets opened.
///
/// # Errors
/// [`TriggerError::NotFound`] when there is none; store failures.
pub async fn registrations(
    engine: &Engine,
    workflow: &str,
    trigger: &str,
) -> Result<Vec<AutotaskWebhook>, TriggerError> {
    let all = engine.store().autotask_webhooks().await?;
    let found: Vec<AutotaskWebhook> = all
        .into_iter()
        .filter(|w| w.workflow == workflow && w.trigger == trigger)
        .map(|w| AutotaskWebhook {
            secret: open_callout_secret(engine, &w.secret),
            ..w
        })
        .collect();
    if found.is_empty() {
        return Err(TriggerError::NotFound(format!(
            "no Autotask webhook is registered for {workflow}.{trigger}"
        )));
    }
    Ok(found)
}

/// The registration whose secret signed `body` (the `X-Hook-Signature` header), compared in
/// constant time over the bytes received.
///
/// # Errors
/// [`TriggerError::Unauthorized`] when the header is missing or signs with no registration's
/// secret.
pub fn authenticate<'r>(
    regs: &'r [AutotaskWebhook],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'r AutotaskWebhook, TriggerError> {
    let given = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| TriggerError::Unauthorized("missing X-Hook-Signature header".into()))?;
    regs.iter()
        .find(|r| verify_signature(&r.secret, body, given))
        .ok_or_else(|| TriggerError::Unauthorized("wrong X-Hook-Signature".into()))
}

/// The registration a deactivation notice is about: signed notices are verified like
/// callouts; unsigned ones must name the registered webhook's GUID.
///
/// # Errors
/// [`TriggerError::Unauthorized`] when it is neither.
pub fn deactivation_registration<'r>(
    regs: &'r [AutotaskWebhook],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'r AutotaskWebhook, TriggerError> {
    let payload: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let given = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let reg = match given {
        Some(sig) => regs.iter().find(|r| verify_signature(&r.secret, body, sig)),
        None => payload["Guid"].as_str().and_then(|g| {
            regs.iter()
                .find(|r| r.guid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(g)))
        }),
    };
    reg.ok_or_else(|| {
        TriggerError::Unauthorized(
            "the deactivation notice is neither signed nor for the registered webhook".into(),
        )
    })
}

/// A signed callout on its way to starting executions.
#[derive(Debug)]
pub struct Callout<'a> {
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The JSON body (an object).
    pub payload: Value,
    /// The webhook's GUID (the body's `Guid`, else the registration's).
    pub guid: String,
    /// The callout's `Action` as sent (`Create`, `Update`, `Delete`, `Deactivated`).
    pub action: String,
    /// The de-duplication key: `autotask:{Guid}:{Id}:{SequenceNumber}`.
    pub dedupe: String,
}

impl<'a> Callout<'a> {
    /// The callout `body` signed by `reg` ([`authenticate`]): a JSON object whose `Guid`, when
    /// the registration knows its GUID, must be it.
    ///
    /// # Errors
    /// [`TriggerError::BadRequest`] for a body that is not a JSON object,
    /// [`TriggerError::Unauthorized`] for another webhook's GUID.
    pub fn read(
        reg: &AutotaskWebhook,
        headers: &'a HeaderMap,
        body: &[u8],
    ) -> Result<Callout<'a>, TriggerError> {
        let payload: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err(TriggerError::BadRequest(
                    "the callout body is not a JSON object".into(),
                ));
            }
            Err(e) => {
                return Err(TriggerError::BadRequest(format!(
                    "the body is not JSON: {e}"
                )));
            }
        };
        let guid = payload["Guid"]
            .as_str()
            .map(str::to_string)
            .or_else(|| reg.guid.clone())
            .unwrap_or_default();
        if let Some(expected) = &reg.guid
            && !guid.eq_ignore_ascii_case(expected)
        {
            return Err(TriggerError::Unauthorized(format!(
                "the callout is for webhook {guid}, not {expected}"
            )));
        }
        let action = payload["Action"].as_str().unwrap_or_default().to_string();
        let dedupe = format!(
            "autotask:{guid}:{}:{}",
            scalar_text(&payload["Id"]),
            scalar_text(&payload["SequenceNumber"])
        );
        Ok(Callout {
            headers,
            payload,
            guid,
            action,
            dedupe,
        })
    }

    /// Is it Autotask's notice that it deactivated the webhook (sent to the callout URL).
    pub fn is_deactivation(&self) -> bool {
        self.action.eq_ignore_ascii_case("deactivated")
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Why a callout starts nothing.
#[derive(Debug)]
pub enum Stop {
    /// Refused.
    Reject(TriggerError),
    /// Accepted and recorded, but the trigger does not apply (disabled, not subscribed,
    /// criteria not met, not the trigger's org).
    Filter(String),
}

impl From<TriggerError> for Stop {
    fn from(e: TriggerError) -> Stop {
        Stop::Reject(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Reject(e.into())
    }
}

/// The entity of an Autotask trigger (`ticket`, `ticket_note`…); empty for other triggers.
pub fn entity(trigger: &Trigger) -> &str {
    match &trigger.kind {
        TriggerKind::Autotask { entity, .. } => entity,
        _ => "",
    }
}

/// The event the callout's `Action` names, if the trigger is on (`switches`) and subscribes
/// to it.
///
/// # Errors
/// [`Stop::Filter`] for a disabled trigger or an event it does not subscribe to;
/// [`Stop::Reject`] ([`TriggerError::BadRequest`]) for an unknown `Action`.
pub fn subscribed(
    switches: &Switches,
    workflow: &str,
    trigger: &Trigger,
    action: &str,
) -> Result<AutotaskEvent, Stop> {
    let TriggerKind::Autotask { events, .. } = &trigger.kind else {
        return Err(Stop::Reject(TriggerError::NotFound(format!(
            "{workflow} has no Autotask trigger `{}`",
            trigger.name
        ))));
    };
    if !switches.enabled(workflow, trigger) {
        return Err(Stop::Filter("the trigger is disabled".into()));
    }
    let action = match action.to_ascii_lowercase().as_str() {
        "create" => AutotaskEvent::Create,
        "update" => AutotaskEvent::Update,
        "delete" => AutotaskEvent::Delete,
        other => {
            return Err(Stop::Reject(TriggerError::BadRequest(format!(
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

/// The orgs an event that is about no company runs for: the registration's org, the
/// trigger's list, or every managed org (`all_managed`; none is a conflict).
async fn run_for_orgs(
    store: &dyn Store,
    run_for: &RunFor,
    own: &str,
) -> Result<Vec<String>, TriggerError> {
    match run_for {
        RunFor::Owner => Ok(vec![own.to_string()]),
        RunFor::Orgs(list) => Ok(list.clone()),
        RunFor::AllManaged => {
            let orgs = weft_engine::org::managed_orgs(store).await?;
            if orgs.is_empty() {
                return Err(TriggerError::Conflict(NO_MANAGED_ORGS.into()));
            }
            Ok(orgs.into_iter().map(|o| o.id).collect())
        }
    }
}

/// One execution per org the callout runs for ([`Routing`]), each with the callout's
/// `TRIGGER` event; the trigger's `criteria` are checked first and its `input:` rendered.
///
/// # Errors
/// [`Stop::Filter`] when the criteria do not hold; [`Stop::Reject`] when the inputs do not fit
/// the workflow or `all_managed` finds no managed org (a conflict); store failures.
pub async fn starts(
    store: &dyn Store,
    (record, wf): (&WorkflowRecord, &Workflow),
    trigger: &Trigger,
    c: &Callout<'_>,
    action: AutotaskEvent,
    routing: &Routing,
) -> Result<Vec<Start>, Stop> {
    let event = callout_event(c, trigger, entity(trigger), action, routing);
    let now = jiff::Timestamp::now().to_string();
    let input = match admit(wf, trigger, &event, &now)? {
        Admission::Filtered(reason) => return Err(Stop::Filter(reason)),
        Admission::Start(input) => input,
    };
    let orgs = match &routing.scoped {
        Some(org) => vec![org.clone()],
        None => run_for_orgs(store, &trigger.run_for, &routing.run_org).await?,
    };
    Ok(starts_for(record, trigger, orgs, &input, &event))
}

/// Which org a callout runs for.
///
/// Company → org: with `run_for` owner, the org mapped to the event's company runs it; an
/// unmapped company runs for the registration's org (`mapped: false` in TRIGGER). With orgs
/// listed (a crate installed for a client) or `all_managed`, the record's org must be one of
/// them (or below one): a ticket is about one company, not every client.
#[derive(Debug, Clone)]
pub struct Routing {
    /// The Autotask company the record belongs to, when known.
    pub company_id: Option<i64>,
    /// The org mapped to that company.
    pub mapped_org: Option<String>,
    /// The one org an event about a company runs for; `None`: the trigger's `run_for` orgs.
    pub scoped: Option<String>,
    /// The org the event names (`TRIGGER.org`): the scoped one, else the registration's.
    pub run_org: String,
}

impl Routing {
    /// Decides the org(s) for an event about `company_id` (see [`company_of`]), which the
    /// company mapping says is org `mapped_org`; `registered_with` is the org of the
    /// registration that signed the callout.
    ///
    /// # Errors
    /// [`Stop::Filter`] when the record is none of the trigger's business; store failures.
    pub async fn decide(
        store: &dyn Store,
        trigger: &Trigger,
        registered_with: &str,
        company_id: Option<i64>,
        mapped_org: Option<String>,
    ) -> Result<Routing, Stop> {
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
                match record_org(store, listed, c, mapped_org.as_deref()).await? {
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

/// `TRIGGER` of a callout with `payload` (Autotask's body: `Id`, `Action`, `Fields`…) for
/// `trigger`, run for `org` — what `weft test` hands a case that starts from a callout. The
/// company is the one the payload names ([`company_in`]).
pub fn event_for(
    trigger: &Trigger,
    payload: &Value,
    headers: &HeaderMap,
    action: AutotaskEvent,
    org: &str,
) -> Value {
    let c = Callout {
        headers,
        payload: payload.clone(),
        guid: payload["Guid"].as_str().unwrap_or_default().to_string(),
        action: payload["Action"].as_str().unwrap_or_default().to_string(),
        dedupe: String::new(),
    };
    let routing = Routing {
        company_id: company_in(entity(trigger), payload),
        mapped_org: None,
        scoped: Some(org.to_string()),
        run_org: org.to_string(),
    };
    callout_event(&c, trigger, entity(trigger), action, &routing)
}

/// The one org an event about company `company` runs for when the trigger lists orgs
/// (`listed`) or runs for `all_managed` (`None`): the company's mapped org when it is one of
/// them or below one; an unmapped company runs for a listed root org (the MSP).
/// `Err(reason)` when the record is none of the trigger's business.
async fn record_org(
    store: &dyn Store,
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
pub async fn company_of(
    engine: &Engine,
    trigger: &Trigger,
    registered_with: &str,
    entity: &str,
    payload: &Value,
) -> Option<i64> {
    if entity != "ticket_note" {
        return company_in(entity, payload);
    }
    let ticket = payload_int(payload, "TicketID")?;
    // Read in the tenant the webhook was registered with.
    let client = autotask_client(engine, registered_with, instance_of(trigger).as_deref())
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

/// The company a callout names itself: `Id` of a company event, else `Fields.CompanyID`
/// (a ticket note names only its ticket: `None`).
pub fn company_in(entity: &str, payload: &Value) -> Option<i64> {
    match entity {
        "company" => int(&payload["Id"]),
        _ => payload_int(payload, "CompanyID"),
    }
}

/// Autotask sends ids as numbers or as strings.
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Fields.<name>` (any case) as an id.
fn payload_int(payload: &Value, name: &str) -> Option<i64> {
    payload
        .get("Fields")
        .and_then(Value::as_object)
        .and_then(|f| f.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .and_then(|(_, v)| int(v))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::autotask::signature;

    fn reg(org: &str, secret: &str, guid: Option<&str>) -> AutotaskWebhook {
        AutotaskWebhook {
            workflow: "w".into(),
            trigger: "t".into(),
            org: org.into(),
            integration: None,
            entity: "TicketWebhooks".into(),
            webhook_id: 1,
            guid: guid.map(str::to_string),
            secret: secret.into(),
            url: "http://x/hooks/autotask/w/t".into(),
            config_hash: String::new(),
            created_at: String::new(),
        }
    }

    fn signed(secret: &str, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, signature(secret, body).parse().unwrap());
        h
    }

    #[test]
    fn a_callout_is_authenticated_by_the_registration_that_signed_it() {
        let regs = [reg("msp", "one", None), reg("acme", "two", None)];
        let body = br#"{"Action":"Create","Id":1}"#;
        let found = authenticate(&regs, &signed("two", body), body).unwrap();
        assert_eq!(found.org, "acme");
        match authenticate(&regs, &HeaderMap::new(), body) {
            Err(TriggerError::Unauthorized(m)) => assert!(m.contains("missing X-Hook-Signature")),
            other => panic!("{other:?}"),
        }
        match authenticate(&regs, &signed("three", body), body) {
            Err(TriggerError::Unauthorized(m)) => assert_eq!(m, "wrong X-Hook-Signature"),
            other => panic!("{other:?}"),
        }
        // Signed over other bytes: refused.
        let other = signed("one", br#"{"Action":"Create","Id":2}"#);
        assert!(authenticate(&regs, &other, body).is_err());
    }

    #[test]
    fn a_callout_is_a_json_object_for_its_own_webhook() {
        let r = reg("msp", "s", Some("ABC"));
        let h = HeaderMap::new();
        let body = br#"{"Action":"Update","Guid":"abc","Id":7,"SequenceNumber":3}"#;
        let c = Callout::read(&r, &h, body).unwrap();
        assert_eq!(c.guid, "abc");
        assert_eq!(c.action, "Update");
        assert_eq!(c.dedupe, "autotask:abc:7:3");
        assert!(!c.is_deactivation());
        let other = br#"{"Action":"Update","Guid":"xyz","Id":7}"#;
        assert!(matches!(
            Callout::read(&r, &h, other),
            Err(TriggerError::Unauthorized(_))
        ));
        assert!(matches!(
            Callout::read(&r, &h, b"[1]"),
            Err(TriggerError::BadRequest(_))
        ));
        assert!(matches!(
            Callout::read(&r, &h, b"nope"),
            Err(TriggerError::BadRequest(_))
        ));
        // No Guid in the body: the registration's; a deactivation notice is told apart.
        let c = Callout::read(&r, &h, br#"{"Action":"Deactivated"}"#).unwrap();
        assert_eq!(
            (c.guid.as_str(), c.dedupe.as_str()),
            ("ABC", "autotask:ABC::")
        );
        assert!(c.is_deactivation());
    }

    #[test]
    fn a_deactivation_notice_is_signed_or_names_the_webhook() {
        let regs = [reg("msp", "s", Some("G1")), reg("acme", "t", Some("G2"))];
        let body = br#"{"Guid":"g2"}"#;
        let by_guid = deactivation_registration(&regs, &HeaderMap::new(), body).unwrap();
        assert_eq!(by_guid.org, "acme");
        let by_sig = deactivation_registration(&regs, &signed("s", body), body).unwrap();
        assert_eq!(by_sig.org, "msp");
        assert!(deactivation_registration(&regs, &signed("u", body), body).is_err());
        assert!(deactivation_registration(&regs, &HeaderMap::new(), b"{}").is_err());
    }

    #[tokio::test]
    async fn a_callout_about_a_company_runs_for_its_org() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let engine = Engine::new(store, Arc::new(weft_actions::registry()));
        let record = engine
            .deploy(
                "name: w\ntriggers:\n  - name: t\n    type: autotask.ticket\n    events: [create]\ntasks:\n  a:\n    action: core.noop\n",
                None,
            )
            .await
            .unwrap();
        let wf = weft_engine::load(&record.source, engine.registry())
            .workflow
            .unwrap();
        let trigger = &wf.triggers[0];
        let switches = Switches::load(engine.store().as_ref()).await.unwrap();
        assert!(matches!(
            subscribed(&switches, "w", trigger, "Create"),
            Ok(AutotaskEvent::Create)
        ));
        assert!(matches!(
            subscribed(&switches, "w", trigger, "update"),
            Err(Stop::Filter(_))
        ));
        assert!(matches!(
            subscribed(&switches, "w", trigger, "Explode"),
            Err(Stop::Reject(TriggerError::BadRequest(_)))
        ));
        assert_eq!(entity(trigger), "ticket");

        let body = br#"{"Action":"Create","Guid":"g","Id":9,"SequenceNumber":1,"Fields":{"CompanyID":"42"}}"#;
        let headers = signed("s", body);
        let r = reg("msp", "s", Some("g"));
        let c = Callout::read(&r, &headers, body).unwrap();
        let company = company_of(&engine, trigger, "msp", "ticket", &c.payload).await;
        assert_eq!(company, Some(42));
        let store = engine.store().as_ref();
        // run_for owner: the mapped org runs it; an unmapped company the registration's org.
        let mapped = Routing::decide(store, trigger, "msp", company, Some("acme".into()))
            .await
            .unwrap();
        assert_eq!(mapped.scoped.as_deref(), Some("acme"));
        let unmapped = Routing::decide(store, trigger, "msp", company, None)
            .await
            .unwrap();
        assert_eq!(unmapped.run_org, "msp");
        let starts = starts(
            store,
            (&record, &wf),
            trigger,
            &c,
            AutotaskEvent::Create,
            &mapped,
        )
        .await
        .unwrap();
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].opts.org.as_deref(), Some("acme"));
        let event = starts[0].opts.trigger.as_ref().unwrap();
        assert_eq!(event["type"], "autotask.ticket");
        assert_eq!(event["action"], "create");
        assert_eq!(event["company_id"], 42);
        assert_eq!(event["mapped"], true);
        assert!(event["headers"].get(SIGNATURE_HEADER).is_none());
    }
}
