//! The catalog of actions a workflow may call, with their parameter schemas.
//!
//! The engine knows no concrete action: crates that provide actions register an
//! [`ActionSpec`] for each (name, description, JSON Schema of the parameters), and the
//! validator checks `action:` names and literal parameters against it.

use std::collections::BTreeMap;

/// What the validator and `weft actions` know about one action.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    /// Registered name, e.g. `core.echo`.
    pub name: String,
    /// One-line summary.
    pub description: String,
    /// JSON Schema (an object schema) of the parameters.
    pub params: serde_json::Value,
}

impl ActionSpec {
    /// Names of the declared parameters.
    pub fn param_names(&self) -> Vec<&str> {
        self.params
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Names of required parameters.
    pub fn required_params(&self) -> Vec<&str> {
        self.params
            .get("required")
            .and_then(|r| r.as_array())
            .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default()
    }

    /// Does the schema accept parameters it does not declare?
    pub fn allows_extra_params(&self) -> bool {
        !matches!(
            self.params.get("additionalProperties"),
            Some(serde_json::Value::Bool(false))
        )
    }
}

/// Registered actions by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    specs: BTreeMap<String, ActionSpec>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds (or replaces) an action's spec.
    pub fn register_spec(&mut self, spec: ActionSpec) {
        self.specs.insert(spec.name.clone(), spec);
    }

    /// Looks an action up.
    pub fn get(&self, name: &str) -> Option<&ActionSpec> {
        self.specs.get(name)
    }

    /// Every action, sorted by name.
    pub fn specs(&self) -> impl Iterator<Item = &ActionSpec> {
        self.specs.values()
    }

    /// Every action name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }
}
