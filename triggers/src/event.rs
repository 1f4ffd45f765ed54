//! The event a trigger hands to the executor: the headers it may see, the workflow inputs it
//! maps, one start per org.

use http::HeaderMap;
use serde_json::{Map, Value};
use weft_engine::Workflow;
use weft_engine::executor::scope::{Extra, context, to_value};
use weft_engine::executor::{Start, StartOptions};
use weft_engine::model::Trigger;
use weft_engine::store::WorkflowRecord;

use crate::TriggerError;

/// The request headers TRIGGER sees (and the execution stores): credential headers
/// (`authorization`, `cookie`, `x-api-key`, names with `token`, `secret`, `key`…, plus
/// `WEFT_REDACT_HEADERS`) are never copied — one policy, `redact::HeaderPolicy`.
pub fn headers_json(headers: &HeaderMap) -> Value {
    let policy = weft_engine::executor::redact::HeaderPolicy::global();
    let mut m = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if policy.is_credential(name) {
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
pub fn inputs(
    wf: &Workflow,
    trigger: &Trigger,
    event: &Value,
    ctx: &minijinja::Value,
) -> Result<Map<String, Value>, TriggerError> {
    if !trigger.input.is_empty() {
        let mut out = Map::new();
        for (k, t) in &trigger.input {
            let v = t.render(ctx).map_err(|e| {
                // A template error may quote the value it was given: never a secret's.
                if wf.input.get(k).is_some_and(|i| i.secret) {
                    TriggerError::InvalidInput(format!(
                        "trigger input `{k}` (secret) could not be rendered; its value is not shown"
                    ))
                } else {
                    TriggerError::InvalidInput(format!("trigger input `{k}`: {e}"))
                }
            })?;
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

/// What an event comes to for one trigger: filtered out by its `criteria`, or the workflow
/// inputs its `input:` maps.
#[derive(Debug)]
pub enum Admission {
    /// The criteria do not hold (or cannot be evaluated): why.
    Filtered(String),
    /// The inputs to start the workflow with.
    Start(Map<String, Value>),
}

/// Checks `event` (`TRIGGER`) against the trigger's `criteria` at `now`, then maps its
/// inputs: the one rule every trigger (webhook, Autotask callout, `weft test`) follows.
///
/// # Errors
/// As [`inputs`]: the trigger's `input:` cannot be rendered.
pub fn admit(
    wf: &Workflow,
    trigger: &Trigger,
    event: &Value,
    now: &str,
) -> Result<Admission, TriggerError> {
    let ctx = context(&[("TRIGGER", to_value(event))], now, Extra::default());
    if let Some(reason) = crate::webhook::unmet_criteria(trigger, &ctx) {
        return Ok(Admission::Filtered(reason));
    }
    inputs(wf, trigger, event, &ctx).map(Admission::Start)
}

/// One execution of `record` per org in `orgs`, each with the event as TRIGGER.
pub fn starts_for(
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
pub fn with_integration(trigger: &Trigger, event: &Value) -> Value {
    let mut event = event.clone();
    if let (Some(o), Some(map)) = (&trigger.integration, event.as_object_mut()) {
        map.insert("integration".into(), o.to_json());
    }
    event
}

/// Why an `all_managed` event starts nothing.
pub const NO_MANAGED_ORGS: &str =
    "run_for: all_managed, but there are no managed organizations (active orgs below the root org)";
