//! Dynamic options: a choice field's options come from an options-generator workflow run in
//! the org's context with the values of the fields it depends on; it answers
//! `options: [{label, value}]`. Answers are kept briefly per org, form, field and those values,
//! so a page that refreshes as the person types does not start a run per keystroke; a slow or
//! failing generator gives the field a message, never a broken page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::{Map, Value};
use weft_engine::executor::{Engine, StartOptions};
use weft_engine::form::{Choice, Field, Options};
use weft_engine::store::ExecStatus;

use super::OpenLink;

/// How long a generator's answer is kept.
pub const KEEP: Duration = Duration::from_secs(60);
/// How long a generator may run before the field says it is slow.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The most answers kept (oldest dropped first).
const CAPACITY: usize = 1000;

/// A field's options, or what to tell the person instead.
pub type Loaded = Result<Vec<Choice>, String>;

type Key = (String, String, String, String);

/// Answers of options generators, keyed by org, form, field and a digest of the values they
/// were given (tenant data: the org is always part of the key).
#[derive(Debug, Default)]
pub struct OptionsCache(Mutex<HashMap<Key, (Instant, Loaded)>>);

impl OptionsCache {
    fn get(&self, key: &Key) -> Option<Loaded> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|(at, _)| at.elapsed() < KEEP)
            .map(|(_, l)| l.clone())
    }

    fn put(&self, key: Key, loaded: Loaded) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (at, _)| at.elapsed() < KEEP);
        if map.len() >= CAPACITY
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(key, (Instant::now(), loaded));
    }
}

/// The options of every dynamic choice field of the link's form, for these values.
pub async fn dynamic_options(
    engine: &Engine,
    cache: &OptionsCache,
    open: &OpenLink,
    values: &Map<String, Value>,
) -> IndexMap<String, Loaded> {
    let mut out = IndexMap::new();
    for f in open.form.fields() {
        if let Options::Dynamic {
            workflow,
            depends_on,
        } = &f.options
        {
            let given: Map<String, Value> = depends_on
                .iter()
                .filter_map(|d| values.get(d).map(|v| (d.clone(), v.clone())))
                .collect();
            // The values are the caller's (up to a submission's size each): the key keeps
            // their digest, so a full cache holds a bounded amount whatever is sent.
            let key = (
                open.org.id.clone(),
                open.form.name.clone(),
                f.name.clone(),
                weft_engine::form_link::token_hash(&Value::Object(given.clone()).to_string()),
            );
            let loaded = match cache.get(&key) {
                Some(l) => l,
                None => {
                    let l = generate(engine, open, f, workflow, given).await;
                    cache.put(key, l.clone());
                    l
                }
            };
            out.insert(f.name.clone(), loaded);
        }
    }
    out
}

/// Runs the generator for one field.
async fn generate(
    engine: &Engine,
    open: &OpenLink,
    field: &Field,
    workflow: &str,
    given: Map<String, Value>,
) -> Loaded {
    let unavailable = |why: &str| {
        tracing::warn!(form = %open.form.name, field = %field.name, org = %open.org.id, why, "form options unavailable");
        format!(
            "The options of {} could not be loaded; try again in a minute.",
            field.label
        )
    };
    let Ok(record) = engine.store().workflow(workflow, None).await else {
        return Err(unavailable("the options workflow is not deployed"));
    };
    let Ok(wf) = engine.parsed(&record) else {
        return Err(unavailable("the options workflow no longer loads"));
    };
    // Only the inputs the generator declares (it may not take every field it depends on).
    let input: Map<String, Value> = given
        .into_iter()
        .filter(|(k, _)| wf.input.contains_key(k))
        .collect();
    let opts = StartOptions {
        org: Some(open.org.id.clone()),
        trigger: None,
    };
    let id = match engine.start(&record, input, opts).await {
        Ok(id) => id,
        Err(e) => return Err(unavailable(&e.to_string())),
    };
    let exec = match tokio::time::timeout(TIMEOUT, engine.run(&id)).await {
        Ok(Ok(exec)) => exec,
        Ok(Err(e)) => return Err(unavailable(&e.to_string())),
        Err(_) => {
            return Err(format!(
                "The options of {} are taking too long; try again in a minute.",
                field.label
            ));
        }
    };
    if exec.status != ExecStatus::Succeeded {
        return Err(unavailable("the options workflow did not succeed"));
    }
    choices(exec.output.as_ref())
        .ok_or_else(|| unavailable("the options workflow's output has no `options` list"))
}

/// `options: [{label, value}]` (or plain values) from a generator's output.
fn choices(output: Option<&Value>) -> Option<Vec<Choice>> {
    let list = output?.get("options")?.as_array()?;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    list.iter()
        .map(|item| match item {
            Value::Object(o) => {
                let value = text(o.get("value")?)?;
                let label = o
                    .get("label")
                    .and_then(text)
                    .unwrap_or_else(|| value.clone());
                Some(Choice { label, value })
            }
            other => text(other).map(|v| Choice {
                label: v.clone(),
                value: v,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_read_as_label_value_pairs_or_plain_values() {
        let got = choices(Some(
            &json!({"options": [{"label": "Grace", "value": 29683}, "e3"]}),
        ))
        .unwrap();
        assert_eq!(
            got,
            vec![
                Choice {
                    label: "Grace".into(),
                    value: "29683".into()
                },
                Choice {
                    label: "e3".into(),
                    value: "e3".into()
                }
            ]
        );
        assert!(choices(Some(&json!({"options": [{"label": "no value"}]}))).is_none());
        assert!(choices(Some(&json!({"other": []}))).is_none());
    }

    #[test]
    fn the_cache_is_keyed_by_org_and_bounded() {
        let cache = OptionsCache::default();
        let key = |org: &str, v: &str| {
            (
                org.to_string(),
                "f".to_string(),
                "x".to_string(),
                v.to_string(),
            )
        };
        cache.put(key("acme", "{}"), Ok(vec![]));
        assert!(cache.get(&key("acme", "{}")).is_some());
        assert!(
            cache.get(&key("globex", "{}")).is_none(),
            "another org's answer is not shared"
        );
        for i in 0..(CAPACITY + 10) {
            cache.put(key("acme", &i.to_string()), Ok(vec![]));
        }
        assert!(cache.0.lock().unwrap().len() <= CAPACITY);
    }
}
