//! weft-actions: the actions workflows call — `core.*`, `http.*` and, in later issues,
//! `autotask.*`, `openai.*`, `notify.*`.
//!
//! Each action's parameters are a serde struct whose doc comments become the JSON Schema
//! (`weft actions show NAME`) that the validator checks workflows against.

pub mod core;
pub mod http;

use schemars::JsonSchema;
use weft_engine::{ActionSpec, Registry};

/// Builds an action's spec from its parameter type.
pub fn spec<P: JsonSchema>(name: &str, description: &str) -> ActionSpec {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<P>();
    ActionSpec {
        name: name.to_string(),
        description: description.to_string(),
        params: serde_json::to_value(schema).expect("schemas serialize"),
    }
}

/// A registry holding every action weft ships.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    core::register(&mut r);
    http::register(&mut r);
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_action_has_an_object_schema_and_a_description() {
        let r = super::registry();
        assert!(r.names().count() >= 7);
        for spec in r.specs() {
            assert_eq!(spec.params["type"], "object", "{}", spec.name);
            assert!(!spec.description.is_empty(), "{}", spec.name);
        }
    }
}
