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
