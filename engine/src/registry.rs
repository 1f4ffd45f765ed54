//! The catalog of actions a workflow may call, with their parameter schemas.
//!
//! The engine knows no concrete action: crates that provide actions register them here
//! (each with an [`ActionSpec`]: name, description, JSON Schema of the parameters); the
//! validator checks `action:` names and literal parameters against the specs and the
//! executor calls the actions.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::action::Action;

/// What the validator and `weft actions` know about one action.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    /// Registered name, e.g. `core.echo`.
    pub name: String,
    /// One-line summary.
    pub description: String,
    /// JSON Schema (an object schema) of the parameters.
    pub params: serde_json::Value,
    /// The action reaches nothing outside weft (no network, no files, no mail): `weft test`
    /// runs it as it is unless a case mocks it, where any other action must be mocked or
    /// allowed.
    pub local: bool,
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

#[derive(Clone)]
struct Entry {
    spec: ActionSpec,
    action: Option<Arc<dyn Action>>,
}

/// Registered actions by name.
#[derive(Clone, Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers an action (replacing one of the same name).
    pub fn register<A: Action>(&mut self, action: A) {
        let spec = action.spec();
        self.entries.insert(
            spec.name.clone(),
            Entry {
                spec,
                action: Some(Arc::new(action)),
            },
        );
    }

    /// Registers only an action's spec: workflows using it validate, but cannot run it.
    pub fn register_spec(&mut self, spec: ActionSpec) {
        self.entries
            .insert(spec.name.clone(), Entry { spec, action: None });
    }

    /// Looks an action's spec up.
    pub fn get(&self, name: &str) -> Option<&ActionSpec> {
        self.entries.get(name).map(|e| &e.spec)
    }

    /// The runnable action, if one is registered under `name`.
    pub fn action(&self, name: &str) -> Option<Arc<dyn Action>> {
        self.entries.get(name).and_then(|e| e.action.clone())
    }

    /// Every action's spec, sorted by name.
    pub fn specs(&self) -> impl Iterator<Item = &ActionSpec> {
        self.entries.values().map(|e| &e.spec)
    }

    /// Every action name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}
