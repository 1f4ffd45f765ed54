//! weft-actions: the actions workflows call — `core.*` (noop, echo, sleep, fail, mock,
//! sub-workflows), `http.*`, `autotask.*` (every Datto Autotask PSA endpoint; the
//! directory sync lives in weft-service), `openai.*`, `notify.*` and `email.*`.
//!
//! Each action is a small type implementing [`weft_engine::TypedAction`] next to its
//! parameter struct, whose doc comments become the JSON Schema (`weft actions show NAME`)
//! that the validator checks workflows against. [`registry()`] registers them all; the
//! engine only sees them through its [`Registry`] seam. To add an action, copy a small one
//! such as those in [`crate::core`] and register it in its module's `register` function.

pub mod autotask;
pub mod core;
pub mod email;
pub mod http;
pub mod notify;
pub mod openai;
pub mod params;
pub mod redirect;

#[cfg(test)]
pub(crate) mod test_support;

use weft_engine::{ActionError, ActionErrorKind, Registry};

/// A registry holding every action weft ships.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    core::register(&mut r);
    http::register(&mut r);
    autotask::register(&mut r);
    openai::register(&mut r);
    notify::register(&mut r);
    email::register(&mut r);
    r
}

/// An [`ActionErrorKind::InvalidParams`] error.
pub(crate) fn invalid_params(action: &str, message: impl std::fmt::Display) -> ActionError {
    ActionError {
        kind: ActionErrorKind::InvalidParams,
        message: format!("invalid parameters for {action}: {message}"),
        data: None,
    }
}

/// An [`ActionErrorKind::Cancelled`] error.
pub(crate) fn cancelled(message: impl Into<String>) -> ActionError {
    ActionError {
        kind: ActionErrorKind::Cancelled,
        message: message.into(),
        data: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn every_action_has_an_object_schema_and_a_description() {
        let r = super::registry();
        assert!(r.names().count() >= 7);
        for spec in r.specs() {
            assert_eq!(spec.params["type"], "object", "{}", spec.name);
            assert!(!spec.description.is_empty(), "{}", spec.name);
            assert!(
                r.action(&spec.name).is_some(),
                "{} is registered as a spec only; it cannot run",
                spec.name
            );
        }
    }

    /// Every property of every object schema (the parameters and any nested definition)
    /// has a description, so that `weft actions show` documents it.
    #[test]
    fn every_parameter_is_documented() {
        fn check(action: &str, path: &str, schema: &Value, missing: &mut Vec<String>) {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    let described = prop
                        .get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| !d.trim().is_empty());
                    if !described {
                        missing.push(format!("{action}: {path}{name}"));
                    }
                    check(action, &format!("{path}{name}."), prop, missing);
                }
            }
            for key in ["anyOf", "oneOf", "allOf"] {
                for sub in schema
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    check(action, path, sub, missing);
                }
            }
        }
        let r = super::registry();
        let mut missing = Vec::new();
        for spec in r.specs() {
            check(&spec.name, "", &spec.params, &mut missing);
            if let Some(defs) = spec.params.get("$defs").and_then(Value::as_object) {
                for (name, def) in defs {
                    check(&spec.name, &format!("$defs.{name}."), def, &mut missing);
                }
            }
        }
        assert!(missing.is_empty(), "undocumented parameters: {missing:#?}");
    }

    #[test]
    fn secret_parameters_are_marked() {
        let r = super::registry();
        let spec = r.get("http.request").unwrap();
        let text = spec.params.to_string();
        for field in ["password", "bearer"] {
            let auth = &spec.params["properties"]["auth"];
            let prop = auth
                .pointer(&format!("/properties/{field}"))
                .unwrap_or_else(|| panic!("auth.{field} not found in {text}"));
            assert_eq!(prop["x-weft-secret"], true, "{field}: {prop}");
        }
        assert_eq!(
            text.matches("x-weft-secret").count(),
            2,
            "only password and bearer are secret: {text}"
        );
    }
}
