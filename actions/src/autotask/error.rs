//! The Autotask client's error type.

use std::time::Duration;

use serde_json::{Value, json};
use weft_engine::{ActionError, ActionErrorKind};

/// What kind of failure an [`AutotaskError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The credentials were refused (HTTP 401/403), or are missing.
    Auth,
    /// No such record or route (HTTP 404, or `{"item": null}`).
    NotFound,
    /// Autotask rejected the request; its `errors` are in [`AutotaskError::errors`]. Also used
    /// for invalid filters caught before sending.
    Validation,
    /// HTTP 429.
    RateLimited,
    /// The per-endpoint thread threshold was exceeded.
    ThreadLimit,
    /// A request took longer than the configured time limit.
    Timeout,
    /// The connection failed.
    Transport,
    /// An unexpected server failure (5xx without a validation message).
    Server,
    /// An answer the client does not understand (wrong method, not JSON, missing keys…).
    Protocol,
    /// The tenant's hourly request budget is used up (weft's estimate, or Autotask's
    /// "request threshold … exceeded" suspension).
    BudgetExhausted,
}

/// A failed Autotask call. Its message and data never contain credentials.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AutotaskError {
    /// Classification.
    pub kind: ErrorKind,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Autotask's `errors` (or the ASP.NET `Message`).
    pub errors: Vec<String>,
    /// What went wrong, for people.
    pub message: String,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl AutotaskError {
    /// An error without a response.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AutotaskError {
            kind,
            status: None,
            errors: Vec::new(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Autotask refused the request before doing anything with it (429, the thread limit):
    /// repeating it — a create too — cannot make a second record.
    pub fn refused_before_processing(&self) -> bool {
        matches!(self.kind, ErrorKind::RateLimited | ErrorKind::ThreadLimit)
    }

    /// Whether an idempotent call may be retried after this error.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited
                | ErrorKind::ThreadLimit
                | ErrorKind::Server
                | ErrorKind::Transport
                | ErrorKind::Timeout
        )
    }

    /// Replaces every occurrence of the given secrets in the message and errors.
    pub(crate) fn redact(mut self, secrets: &[&str]) -> Self {
        self.message = redact(&self.message, secrets);
        for e in &mut self.errors {
            *e = redact(e, secrets);
        }
        self
    }

    /// The error as an [`ActionError`] with `data: {status, errors, error_kind}`.
    pub fn into_action_error(self) -> ActionError {
        let kind = match self.kind {
            ErrorKind::Timeout => ActionErrorKind::Timeout,
            _ => ActionErrorKind::Failed,
        };
        ActionError {
            kind,
            data: Some(json!({
                "status": self.status,
                "errors": self.errors,
                "error_kind": format!("{:?}", self.kind).to_lowercase(),
            })),
            message: self.message,
        }
    }
}

impl From<AutotaskError> for ActionError {
    fn from(e: AutotaskError) -> Self {
        e.into_action_error()
    }
}

pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 3 && out.contains(s) {
            out = out.replace(s, "***");
        }
    }
    out
}

/// A key of a response object: exact, else ignoring case (Autotask's JSON is camelCase, but
/// other implementations of the API and older endpoints use PascalCase).
pub(crate) fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Autotask's error strings from a body: `{"errors":[...]}` or ASP.NET `{"Message": "..."}`.
pub(crate) fn body_errors(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(list) = field(body, "errors").and_then(Value::as_array) {
        for e in list {
            match e {
                Value::String(s) => out.push(s.clone()),
                Value::Object(_) => out.push(
                    field(e, "message")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| e.to_string()),
                ),
                other => out.push(other.to_string()),
            }
        }
    }
    if out.is_empty()
        && let Some(m) = field(body, "message").and_then(Value::as_str)
    {
        out.push(m.to_string());
    }
    out
}

/// Whether an error message is the thread-threshold failure.
pub(crate) fn is_thread_limit(errors: &[String]) -> bool {
    errors.iter().any(|e| {
        let l = e.to_ascii_lowercase();
        l.contains("thread threshold") || l.contains("itgenatr005")
    })
}

/// Whether an error message is the hourly request threshold's suspension ("The API request
/// threshold of 10000 requests per hour has been exceeded").
pub(crate) fn is_budget_suspension(errors: &[String]) -> bool {
    errors.iter().any(|e| {
        let l = e.to_ascii_lowercase();
        l.contains("request threshold") && l.contains("exceeded")
    })
}

/// Classifies a non-success answer (or a 2xx with `errors`).
pub(crate) fn classify(status: u16, body: &Value, label: &str) -> AutotaskError {
    let errors = body_errors(body);
    let kind = if is_thread_limit(&errors) {
        ErrorKind::ThreadLimit
    } else if is_budget_suspension(&errors) {
        ErrorKind::BudgetExhausted
    } else {
        match status {
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            405 | 415 => ErrorKind::Protocol,
            408 | 504 => ErrorKind::Timeout,
            500 if !errors.is_empty() && !is_unexpected(&errors) => ErrorKind::Validation,
            500..=599 => ErrorKind::Server,
            200..=299 => ErrorKind::Validation,
            _ => ErrorKind::Protocol,
        }
    };
    let detail = if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    };
    AutotaskError {
        kind,
        status: Some(status),
        message: format!("Autotask {label} failed with HTTP {status}{detail}"),
        errors,
        retry_after: None,
    }
}

/// "An unexpected error has occurred… Error ID" is a server fault, worth a retry.
fn is_unexpected(errors: &[String]) -> bool {
    errors
        .iter()
        .all(|e| e.to_ascii_lowercase().contains("unexpected error"))
}

/// Parses `Retry-After`: seconds, or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    let d = when.duration_since(now);
    Some(Duration::try_from(d).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_autotask_answers() {
        let e = classify(
            500,
            &json!({"errors": ["Value does not reference an existing entity for taskType . "]}),
            "POST Tasks",
        );
        assert_eq!(e.kind, ErrorKind::Validation);
        assert!(e.message.contains("taskType"));
        let e = classify(
            500,
            &json!({"errors": ["Thread Threshold Exceeded — The Autotask API thread threshold of 3 threads has been exceeded"]}),
            "x",
        );
        assert_eq!(e.kind, ErrorKind::ThreadLimit);
        let e = classify(
            405,
            &json!({"Message": "The requested resource does not support http method 'GET'."}),
            "x",
        );
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert_eq!(e.errors.len(), 1);
        assert_eq!(classify(401, &Value::Null, "x").kind, ErrorKind::Auth);
        assert_eq!(
            classify(429, &Value::Null, "x").kind,
            ErrorKind::RateLimited
        );
        assert_eq!(classify(502, &Value::Null, "x").kind, ErrorKind::Server);
        let e = classify(
            500,
            &json!({"errors": ["An unexpected error has occurred. Error ID: 1"]}),
            "x",
        );
        assert_eq!(e.kind, ErrorKind::Server);
        assert_eq!(
            classify(200, &json!({"errors": ["bad"]}), "x").kind,
            ErrorKind::Validation
        );
        let a = e.into_action_error();
        assert_eq!(a.data.unwrap()["status"], 500);
    }

    #[test]
    fn parses_retry_after() {
        let now: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 01 Jan 2025 00:00:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Tue, 31 Dec 2024 00:00:05 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn redacts() {
        assert_eq!(redact("a sekrit b", &["sekrit"]), "a *** b");
    }
}
