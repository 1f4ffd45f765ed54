//! Functions available in every template: `item()`, `succeeded()`, `failed()`, `now()`,
//! `uuid4()`, `form_link()`.
//!
//! The per-render facts they read (the current loop item, the finishing task's status, the
//! clock) travel in the render context under hidden names, so the shared environment stays
//! stateless and the executor controls the clock.

use minijinja::value::{Kwargs, Rest};
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
    add_function(env, "form_link", form_link);
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
    let instant = clock(state)?;
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

/// The execution clock's time, else the wall clock's.
fn clock(state: &State) -> Result<jiff::Timestamp, Error> {
    match state
        .lookup(HIDDEN_NOW)
        .and_then(|v| v.as_str().map(str::to_string))
    {
        Some(s) => s.parse::<jiff::Timestamp>().map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("invalid clock value {s:?}: {e}"),
            )
        }),
        None => Ok(jiff::Timestamp::now()),
    }
}

/// `form_link('offboarding', prefill={'ticket_id': TRIGGER.id}, single_use=true,
/// expires='7d')` → a signed link to a form for the org the template runs for (`ORG`): the
/// prefilled values cannot be changed by whoever opens it. Without `prefill` and
/// `single_use` it is the org's standing link when one was issued.
fn form_link(state: &State, name: String, kwargs: Kwargs) -> Result<Value, Error> {
    use crate::form_link::{OrgForms, Use, parse_expiry};
    let bad = |m: String| Error::new(ErrorKind::InvalidOperation, m);
    let prefill: Option<Value> = kwargs.get("prefill")?;
    let single_use: Option<bool> = kwargs.get("single_use")?;
    let expires: Option<String> = kwargs.get("expires")?;
    kwargs.assert_all_used()?;
    let forms_value = state
        .lookup("ORG")
        .and_then(|org| org.get_attr("FORMS").ok())
        .unwrap_or(Value::UNDEFINED);
    let Some(forms) = forms_value.downcast_object_ref::<OrgForms>() else {
        return Err(bad(
            "form_link() is only available in a workflow running for an organization".into(),
        ));
    };
    let prefill = match prefill.filter(|p| !p.is_none() && !p.is_undefined()) {
        None => serde_json::Map::new(),
        Some(p) => match serde_json::to_value(&p) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                return Err(bad(format!(
                    "form_link(): prefill must be a mapping of field names to values, got {}",
                    p.kind()
                )));
            }
        },
    };
    let single_use = single_use.unwrap_or(false);
    if prefill.is_empty() && !single_use && expires.is_none() {
        let standing = forms_value
            .get_attr(&name)
            .ok()
            .and_then(|f| f.get_attr("url").ok())
            .filter(|u| u.as_str().is_some());
        if let Some(url) = standing {
            return Ok(url);
        }
    }
    let now = clock(state)?;
    let expires_at = match expires.as_deref() {
        None => None,
        Some(e) => match parse_expiry(e, now) {
            Ok(Some(at)) => Some(at),
            // A signed link cannot be withdrawn on its own (only by rotating the org's
            // standing link), so it always ends.
            Ok(None) => {
                return Err(bad(
                    "form_link(): a signed link must expire: give a date or a duration (`expires='90d'`)".into(),
                ));
            }
            Err(e) => return Err(bad(format!("form_link(): {e}"))),
        },
    };
    let uses = if single_use {
        Use::SingleUse
    } else {
        Use::Reusable
    };
    forms
        .sign(&name, prefill, uses, now, expires_at)
        .map(|(url, _)| Value::from(url))
        .map_err(bad)
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
