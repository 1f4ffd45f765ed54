//! Functions available in every template: `item()`, `succeeded()`, `failed()`, `now()`,
//! `uuid4()`.
//!
//! The per-render facts they read (the current loop item, the finishing task's status, the
//! clock) travel in the render context under hidden names, so the shared environment stays
//! stateless and the executor controls the clock.

use minijinja::value::Rest;
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// Context name holding the current `with.items` item.
pub const HIDDEN_ITEM: &str = "__weft_item";
/// Context name holding the status (`succeeded`/`failed`) of the task whose routes are evaluated.
pub const HIDDEN_STATUS: &str = "__weft_status";
/// Context name holding the execution clock's current time (RFC 3339), when it is not the wall clock.
pub const HIDDEN_NOW: &str = "__weft_now";

pub(super) fn register(env: &mut Environment<'static>) {
    use super::builtins::add_function;
    add_function(env, "item", item);
    add_function(env, "succeeded", succeeded);
    add_function(env, "failed", failed);
    add_function(env, "now", now);
    add_function(env, "uuid4", uuid4);
}

fn item(state: &State, key: Option<String>) -> Result<Value, Error> {
    let v = state.lookup(HIDDEN_ITEM).unwrap_or(Value::UNDEFINED);
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "item() is only available in a task with `with.items`",
        ));
    }
    match key {
        None => Ok(v),
        Some(k) => v.get_attr(&k),
    }
}

fn status(state: &State, want: &str, name: &str) -> Result<bool, Error> {
    let v = state.lookup(HIDDEN_STATUS).unwrap_or(Value::UNDEFINED);
    match v.as_str() {
        Some(s) => Ok(s == want),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{name}() is only available in a task's `next` routes and `retry.when`"),
        )),
    }
}

fn succeeded(state: &State) -> Result<bool, Error> {
    status(state, "succeeded", "succeeded")
}

fn failed(state: &State) -> Result<bool, Error> {
    status(state, "failed", "failed")
}

/// `now()` → the current time as an RFC 3339 string in UTC; `now('Europe/Paris')` in that
/// zone; `now('UTC', '%Y-%m-%d')` formatted with strftime.
fn now(state: &State, args: Rest<String>) -> Result<Value, Error> {
    let bad = |m: String| Error::new(ErrorKind::InvalidOperation, m);
    let instant = match state
        .lookup(HIDDEN_NOW)
        .and_then(|v| v.as_str().map(str::to_string))
    {
        Some(s) => s
            .parse::<jiff::Timestamp>()
            .map_err(|e| bad(format!("invalid clock value {s:?}: {e}")))?,
        None => jiff::Timestamp::now(),
    };
    let tz = args.first().map_or("UTC", String::as_str);
    let zone = jiff::tz::TimeZone::get(tz)
        .map_err(|e| bad(format!("now(): unknown time zone {tz:?}: {e}")))?;
    let zoned = instant.to_zoned(zone);
    Ok(Value::from(match args.get(1) {
        Some(fmt) => {
            use std::fmt::Write as _;
            let mut out = super::limits::LimitedString::default();
            match write!(out, "{}", zoned.strftime(fmt)) {
                Ok(()) => out.out,
                Err(_) if out.over => return Err(super::limits::output_error("now")),
                Err(_) => return Err(bad(format!("now(): invalid format {fmt:?}"))),
            }
        }
        None if tz == "UTC" => instant.to_string(),
        None => zoned
            .timestamp()
            .display_with_offset(zoned.offset())
            .to_string(),
    }))
}

fn uuid4() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use crate::template::eval_str;
    use serde_json::json;

    #[test]
    fn item_reads_the_loop_item() {
        let v = eval_str("{{ item().name }}", &json!({"__weft_item": {"name": "a"}})).unwrap();
        assert_eq!(v, json!("a"));
        let err = eval_str("{{ item() }}", &json!({})).unwrap_err();
        assert!(err.message.contains("with.items"), "{}", err.message);
    }

    #[test]
    fn status_functions() {
        let ctx = json!({"__weft_status": "failed"});
        assert_eq!(eval_str("{{ failed() }}", &ctx).unwrap(), json!(true));
        assert_eq!(eval_str("{{ succeeded() }}", &ctx).unwrap(), json!(false));
        assert!(eval_str("{{ succeeded() }}", &json!({})).is_err());
    }

    #[test]
    fn now_uses_the_execution_clock() {
        let ctx = json!({"__weft_now": "2026-03-01T12:00:00Z"});
        assert_eq!(
            eval_str("{{ now() }}", &ctx).unwrap(),
            json!("2026-03-01T12:00:00Z")
        );
        assert_eq!(
            eval_str("{{ now('Europe/Paris', '%H:%M') }}", &ctx).unwrap(),
            json!("13:00")
        );
        assert_eq!(
            eval_str("{{ now('America/New_York') }}", &ctx).unwrap(),
            json!("2026-03-01T07:00:00-05:00")
        );
    }

    #[test]
    fn uuid4_is_a_fresh_uuid() {
        let a = eval_str("{{ uuid4() }}", &json!({})).unwrap();
        let b = eval_str("{{ uuid4() }}", &json!({})).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().unwrap().len(), 36);
    }
}
