//! What a generic webhook request (`POST /hooks/{trigger}/{org}`) must be to start an
//! execution, apart from who may send it ([`crate::webhook_access`]): one trigger by its name,
//! the secret and the rate limit ([`admit`]), the body's size and reading by content type
//! ([`parse_body`]), the query parameters, the `TRIGGER` event and the trigger's `criteria`.

use std::time::Duration;

use http::{HeaderMap, header};
use serde_json::{Map, Value, json};
use weft_engine::executor::Engine;
use weft_engine::model::{Trigger, TriggerKind, WebhookSecret};

use crate::TriggerError;
use crate::guard::Guards;
use crate::webhook_access::{self, MAX_SEGMENT, valid_segment};

/// The body limit when the trigger sets none.
pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
/// How long `response: wait` waits when the trigger sets no timeout.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The header that carries a webhook trigger's secret.
pub const SECRET_HEADER: &str = "x-weft-secret";

/// The path's trigger name and org id, refused before anything is looked up when either is
/// not 1 to [`MAX_SEGMENT`] letters, digits, `-`, `_` or `.`.
///
/// # Errors
/// [`TriggerError::NotFound`] saying what a segment may be.
pub fn check_path(trigger: &str, org: &str) -> Result<(), TriggerError> {
    if valid_segment(trigger) && valid_segment(org) {
        return Ok(());
    }
    Err(TriggerError::NotFound(format!(
        "no such webhook: a trigger name and an org id are 1 to {MAX_SEGMENT} letters, digits, `-`, `_` or `.`"
    )))
}

/// The one webhook trigger named `name` among those `found` (a trigger name must name one).
///
/// # Errors
/// [`TriggerError::NotFound`] when none is, [`TriggerError::Conflict`] when several are.
pub fn one_trigger<T>(mut found: Vec<T>, name: &str) -> Result<T, TriggerError> {
    match found.len() {
        0 => Err(TriggerError::NotFound(format!(
            "no webhook trigger `{name}`"
        ))),
        1 => Ok(found.pop().expect("one")),
        _ => Err(TriggerError::Conflict(format!(
            "several workflows declare a webhook trigger `{name}`"
        ))),
    }
}

/// The refusal of a disabled webhook trigger.
pub fn disabled(name: &str) -> TriggerError {
    TriggerError::NotFound(format!("webhook trigger `{name}` is disabled"))
}

/// The refusal answered when the trigger does not run for `org`: it does not say why (which
/// orgs a trigger runs for is not a stranger's business; the recorded event does).
pub fn not_entitled(name: &str, org: &str) -> TriggerError {
    TriggerError::NotFound(format!(
        "webhook trigger `{name}` does not run for organization `{org}` (the org must be registered — `weft org add` — and be one the trigger's `run_for` names; the trigger's events say why)"
    ))
}

/// A refusal of [`admit`].
#[derive(Debug)]
pub struct Refusal {
    /// Why.
    pub error: TriggerError,
    /// The request did not authenticate: it counts against its source's failure budget.
    pub failed: bool,
}

/// The checks that need the org: the secret (`x-weft-secret`) when the trigger requires one,
/// then the rate limit (so that failures cannot spend a sender's budget).
///
/// # Errors
/// The refusal, and whether it counts as a failed attempt of the source.
pub async fn admit(
    engine: &Engine,
    guards: &Guards,
    workflow: &str,
    trigger: &Trigger,
    org: &str,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let TriggerKind::Webhook {
        secret, rate_limit, ..
    } = &trigger.kind
    else {
        return Ok(());
    };
    if *secret == WebhookSecret::Required {
        let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes());
        if let Err(error) = webhook_access::check(engine, workflow, &trigger.name, org, given).await
        {
            let failed = matches!(error, TriggerError::Unauthorized(_));
            return Err(Refusal { error, failed });
        }
    }
    if let Some(rate) = rate_limit
        && !guards.take_rate(workflow, &trigger.name, org, *rate)
    {
        return Err(Refusal {
            error: TriggerError::RateLimited,
            failed: false,
        });
    }
    Ok(())
}

/// The largest body a webhook trigger takes: its `max_body_bytes`, else
/// [`DEFAULT_MAX_BODY`].
pub fn body_limit(trigger: &Trigger) -> u64 {
    match &trigger.kind {
        TriggerKind::Webhook {
            max_body_bytes: Some(n),
            ..
        } => *n,
        _ => DEFAULT_MAX_BODY,
    }
}

/// Refuses a body whose declared `Content-Length` exceeds `limit` before it is read.
///
/// # Errors
/// [`TriggerError::TooLarge`].
pub fn check_length(headers: &HeaderMap, limit: u64) -> Result<(), TriggerError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(TriggerError::TooLarge(limit)),
        _ => Ok(()),
    }
}

/// A webhook body as `TRIGGER.body`, by its content type: JSON (`application/json`,
/// `+json`), a form (`application/x-www-form-urlencoded`, as an object of strings), else
/// text. An empty body is `null`.
///
/// # Errors
/// [`TriggerError::BadRequest`] when a JSON or form body does not parse.
pub fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, TriggerError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if ctype.starts_with("application/json") || ctype.contains("+json") {
        return serde_json::from_slice(bytes)
            .map_err(|e| TriggerError::BadRequest(format!("the body is not JSON: {e}")));
    }
    if ctype.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
            .map_err(|e| TriggerError::BadRequest(format!("the body is not a form: {e}")))?;
        let mut m = Map::new();
        for (k, v) in pairs {
            m.insert(k, Value::String(v));
        }
        return Ok(Value::Object(m));
    }
    Ok(Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The query string as `TRIGGER.params` (a malformed one reads as empty).
pub fn query_params(query: Option<&str>) -> Map<String, Value> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// `TRIGGER` of a webhook request for `org`: the parsed body, the headers (never
/// credential-like ones, see [`crate::event::headers_json`]) and the query parameters.
pub fn event(
    trigger: &Trigger,
    org: &str,
    body: Value,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Value {
    json!({
        "type": "webhook",
        "name": trigger.name,
        "org": org,
        "body": body,
        "headers": crate::event::headers_json(headers),
        "params": query_params(query),
    })
}

/// Why the trigger's `criteria` filter the event out (rendered with `ctx`), if they do.
pub fn unmet_criteria(trigger: &Trigger, ctx: &minijinja::Value) -> Option<String> {
    let criteria = trigger.criteria.as_ref()?;
    match criteria.render_value(ctx) {
        Ok(v) if v.is_true() => None,
        Ok(_) => Some("criteria not met".to_string()),
        Err(e) => Some(format!("criteria could not be evaluated: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ctype: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ctype.parse().unwrap());
        h
    }

    #[test]
    fn bodies_are_read_by_content_type() {
        let json = parse_body(&headers("application/json; charset=utf-8"), br#"{"a":1}"#);
        assert_eq!(json.unwrap(), json!({"a": 1}));
        let vendor = parse_body(&headers("application/vnd.x+json"), b"[1]");
        assert_eq!(vendor.unwrap(), json!([1]));
        let form = parse_body(&headers("application/x-www-form-urlencoded"), b"a=1&b=x+y");
        assert_eq!(form.unwrap(), json!({"a": "1", "b": "x y"}));
        let text = parse_body(&headers("text/plain"), b"hello");
        assert_eq!(text.unwrap(), json!("hello"));
        assert_eq!(parse_body(&HeaderMap::new(), b"raw").unwrap(), json!("raw"));
        assert_eq!(
            parse_body(&headers("application/json"), b"").unwrap(),
            Value::Null
        );
        match parse_body(&headers("application/json"), b"{nope") {
            Err(TriggerError::BadRequest(m)) => assert!(m.starts_with("the body is not JSON")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn query_params_are_strings_and_malformed_ones_are_empty() {
        assert_eq!(
            Value::Object(query_params(Some("a=1&b=two%20words"))),
            json!({"a": "1", "b": "two words"})
        );
        assert!(query_params(None).is_empty());
    }

    #[test]
    fn declared_lengths_over_the_limit_are_refused() {
        let mut h = HeaderMap::new();
        assert!(check_length(&h, 10).is_ok());
        h.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        assert!(matches!(
            check_length(&h, 10),
            Err(TriggerError::TooLarge(10))
        ));
        assert!(check_length(&h, 11).is_ok());
    }

    #[test]
    fn paths_and_trigger_names_are_checked() {
        assert!(check_path("t", "acme").is_ok());
        assert!(matches!(
            check_path("t", "a/b"),
            Err(TriggerError::NotFound(_))
        ));
        assert!(matches!(
            check_path("", "acme"),
            Err(TriggerError::NotFound(_))
        ));
        assert_eq!(one_trigger(vec![1], "t").unwrap(), 1);
        assert!(matches!(
            one_trigger(Vec::<u8>::new(), "t"),
            Err(TriggerError::NotFound(_))
        ));
        assert!(matches!(
            one_trigger(vec![1, 2], "t"),
            Err(TriggerError::Conflict(_))
        ));
    }
}
