//! The names templates see while an execution runs.

use minijinja::Value;
use minijinja::value::Serde;

use crate::template::{HIDDEN_ITEM, HIDDEN_NOW, HIDDEN_STATUS};

/// What changes per render on top of the execution's names.
#[derive(Default)]
pub struct Extra<'a> {
    /// RESULT (in routes and retry.when).
    pub result: Option<&'a serde_json::Value>,
    /// `succeeded` / `failed`, for `succeeded()` and `failed()`.
    pub status: Option<&'static str>,
    /// The with.items item.
    pub item: Option<&'a serde_json::Value>,
}

/// Builds a render context from the execution's current names.
pub fn context(base: &[(&'static str, Value)], now: &str, extra: Extra<'_>) -> Value {
    let mut pairs: Vec<(&str, Value)> = Vec::with_capacity(base.len() + 4);
    pairs.extend(base.iter().map(|(k, v)| (*k, v.clone())));
    pairs.push((HIDDEN_NOW, Value::from(now)));
    if let Some(r) = extra.result {
        pairs.push(("RESULT", to_value(r)));
    }
    if let Some(s) = extra.status {
        pairs.push((HIDDEN_STATUS, Value::from(s)));
    }
    if let Some(i) = extra.item {
        pairs.push((HIDDEN_ITEM, to_value(i)));
    }
    Value::from_pairs(pairs)
}

/// A JSON value as a template value.
pub fn to_value(v: &serde_json::Value) -> Value {
    Value::from(Serde(v))
}

/// CTX or TASKS as templates see them: a map of names shared by the conductor and the
/// renders of the tasks it started. A step that changes it copies the map only while a task
/// started before still holds the old one, so a chain's step does not copy every name it
/// has so far (which made a long chain's steps ever slower).
#[derive(Debug, Clone, Default)]
pub(crate) struct Names<M>(pub M);

/// The maps [`Names`] wraps: CTX keeps the order names were set, TASKS sorts by name.
pub(crate) trait NameMap: Clone + Default + std::fmt::Debug + Send + Sync + 'static {
    fn lookup(&self, name: &str) -> Option<&Value>;
    fn names(&self) -> Vec<Value>;
    fn count(&self) -> usize;
}

macro_rules! name_map {
    ($($map:ty),*) => {$(
        impl NameMap for $map {
            fn lookup(&self, name: &str) -> Option<&Value> {
                self.get(name)
            }
            fn names(&self) -> Vec<Value> {
                self.keys().map(|k| Value::from(k.as_str())).collect()
            }
            fn count(&self) -> usize {
                self.len()
            }
        }
    )*};
}
name_map!(
    indexmap::IndexMap<String, Value>,
    std::collections::BTreeMap<String, Value>
);

impl<M: NameMap> minijinja::value::Object for Names<M> {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        self.0.lookup(key.as_str()?).cloned()
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.0.names())
    }

    fn enumerator_len(self: &std::sync::Arc<Self>) -> Option<usize> {
        Some(self.0.count())
    }
}

impl<M: NameMap> Names<M> {
    /// The map as a template value (sharing it).
    pub(crate) fn value(self: &std::sync::Arc<Self>) -> Value {
        Value::from_dyn_object(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_like_a_map_in_templates() {
        let mut ctx = indexmap::IndexMap::new();
        ctx.insert("b".to_string(), Value::from(2));
        ctx.insert("a".to_string(), Value::from("x"));
        let names = std::sync::Arc::new(Names(ctx));
        let env = minijinja::Environment::new();
        let out = env
            .render_str(
                "{{ CTX.b }} {{ CTX['a'] }} {{ CTX.missing is undefined }} {{ CTX | length }} \
                 {% for k in CTX %}{{ k }}{% endfor %} {{ CTX is mapping }} {{ 'a' in CTX }} \
                 {{ CTX | tojson }} {% for k, v in CTX | items %}{{ k }}={{ v }};{% endfor %}",
                minijinja::context! { CTX => names.value() },
            )
            .expect("renders");
        assert_eq!(
            out,
            "2 x True 2 ba True True {\"b\": 2, \"a\": \"x\"} b=2;a=x;"
        );
    }
}
