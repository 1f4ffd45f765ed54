//! A fake OpenAI-compatible chat API: `POST /openai/v1/chat/completions`.
//!
//! Answers are deterministic, chosen by the first matching rule of `data/openai_rules.json`
//! (or rules set with [`crate::Simulator::set_openai_rules`]). A rule is
//! `{name?, if_prompt_contains?: [..], if_contains?: [..], answer | default}`:
//!
//! - `if_prompt_contains`: any of these (case-insensitive, at the start of a word) appears in
//!   the system messages or the last user message — it picks the *task* (categorize,
//!   sentiment, reply…). Put instructions in `system` and the data (a ticket's text) in the
//!   prompt, so that the category names listed in instructions do not match `if_contains`.
//! - `if_contains`: any of these appears in the last user message.
//! - `answer` (a rule with `if_contains`) or `default` (a rule without): the content, a
//!   string or any JSON value (sent as its JSON text).
//!
//! In JSON mode (`response_format` `json_object` or `json_schema`) an answer that is not
//! JSON is sent as `{"answer": text}`. A last user message containing `[sim-fail:429]`,
//! `[sim-fail:500]` or `[sim-fail:503]` gets that error (for retry tests). Requests need
//! `Authorization: Bearer <key>` (or Azure's `api-key: <key>`) with the simulator's key
//! ([`crate::DEFAULT_OPENAI_KEY`] unless changed); otherwise 401 in OpenAI's error shape.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// The built-in rules (`sim/data/openai_rules.json`).
pub const DEFAULT_RULES: &str = include_str!("../data/openai_rules.json");

/// One rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenAiRule {
    /// A label (shown in the response's `system_fingerprint` for debugging).
    #[serde(default)]
    pub name: Option<String>,
    /// Any of these in the system messages or last user message.
    #[serde(default)]
    pub if_prompt_contains: Vec<String>,
    /// Any of these in the last user message.
    #[serde(default)]
    pub if_contains: Vec<String>,
    /// The answer when `if_contains` matches.
    #[serde(default)]
    pub answer: Option<Value>,
    /// The answer of a rule without `if_contains`.
    #[serde(default)]
    pub default: Option<Value>,
}

/// Parses a rules file's text.
pub fn parse_rules(text: &str) -> Result<Vec<OpenAiRule>, String> {
    let rules: Vec<OpenAiRule> =
        serde_json::from_str(text).map_err(|e| format!("openai rules: {e}"))?;
    for (i, r) in rules.iter().enumerate() {
        let what = r.name.clone().unwrap_or_else(|| format!("#{i}"));
        match (&r.answer, &r.default, r.if_contains.is_empty()) {
            (Some(_), None, false) | (None, Some(_), true) => {}
            _ => {
                return Err(format!(
                    "openai rule {what}: give `if_contains` with `answer`, or `default` alone"
                ));
            }
        }
    }
    Ok(rules)
}

/// Does `keyword` occur in `haystack` (both lowercase) at the start of a word?
fn has_word(haystack: &str, keyword: &str) -> bool {
    if keyword.is_empty() {
        return false;
    }
    haystack.match_indices(keyword).any(|(i, _)| {
        haystack[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

fn any_word(haystack: &str, keywords: &[String]) -> bool {
    keywords
        .iter()
        .any(|k| has_word(haystack, &k.to_lowercase()))
}

/// The first rule matching a conversation: `prompt` is the system messages and the last user
/// message, `last_user` the last user message.
pub fn choose<'a>(
    rules: &'a [OpenAiRule],
    prompt: &str,
    last_user: &str,
) -> Option<&'a OpenAiRule> {
    let prompt = prompt.to_lowercase();
    let last_user = last_user.to_lowercase();
    rules.iter().find(|r| {
        (r.if_prompt_contains.is_empty() || any_word(&prompt, &r.if_prompt_contains))
            && (r.if_contains.is_empty() || any_word(&last_user, &r.if_contains))
    })
}

/// The answer's text for a rule.
pub fn answer_text(rule: Option<&OpenAiRule>, json_mode: bool) -> String {
    let value = rule
        .and_then(|r| r.answer.as_ref().or(r.default.as_ref()))
        .cloned()
        .unwrap_or_else(|| json!("This is a simulated answer from weft-sim."));
    match value {
        Value::String(s) => {
            if json_mode && serde_json::from_str::<Value>(&s).is_err() {
                json!({ "answer": s }).to_string()
            } else {
                s
            }
        }
        other => other.to_string(),
    }
}

/// The fake's state.
pub struct OpenAiFake {
    rules: Mutex<Vec<OpenAiRule>>,
    key: Mutex<String>,
    requests: Mutex<Vec<Value>>,
    counter: AtomicU64,
}

impl Default for OpenAiFake {
    fn default() -> Self {
        OpenAiFake {
            rules: Mutex::new(parse_rules(DEFAULT_RULES).expect("built-in openai rules parse")),
            key: Mutex::new(crate::DEFAULT_OPENAI_KEY.to_string()),
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
        }
    }
}

impl OpenAiFake {
    /// Replaces the answering rules (the first matching rule answers).
    pub fn set_rules(&self, rules: Vec<OpenAiRule>) {
        *self.rules.lock().unwrap() = rules;
    }

    /// Sets the bearer key the fake accepts; other keys get 401.
    pub fn set_key(&self, key: &str) {
        *self.key.lock().unwrap() = key.to_string();
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.requests.lock().unwrap().clear();
    }

    /// The request bodies received so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// The 401 a request gets without the right key (`Authorization: Bearer` or `api-key`).
    fn refuse_key(&self, headers: &HeaderMap) -> Option<Response> {
        let key = self.key.lock().unwrap().clone();
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim);
        match given {
            None | Some("") => Some(error(
                StatusCode::UNAUTHORIZED,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )),
            Some(k) if k != key => Some(error(
                StatusCode::UNAUTHORIZED,
                &format!(
                    "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                    mask(k)
                ),
                "invalid_request_error",
                Some("invalid_api_key"),
            )),
            Some(_) => None,
        }
    }

    /// Handles one request.
    pub fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        if let Some(refused) = self.refuse_key(headers) {
            return refused;
        }
        let req: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "We could not parse the JSON body of your request.",
                    "invalid_request_error",
                    None,
                );
            }
        };
        self.requests.lock().unwrap().push(req.clone());
        let Some(messages) = req
            .get("messages")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
        else {
            return error(
                StatusCode::BAD_REQUEST,
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                Some("missing_required_parameter"),
            );
        };
        let last_user = messages
            .iter()
            .rev()
            .find(|m| message_role(m) == "user")
            .map(message_text)
            .unwrap_or_default();
        let mut prompt: Vec<String> = messages
            .iter()
            .filter(|m| matches!(message_role(m), "system" | "developer"))
            .map(message_text)
            .collect();
        prompt.push(last_user.clone());
        let prompt = prompt.join("\n");

        if let Some(failure) = injected_failure(&last_user) {
            return failure;
        }

        let json_mode = req
            .pointer("/response_format/type")
            .and_then(Value::as_str)
            .is_some_and(|t| t == "json_object" || t == "json_schema");
        let rules = self.rules.lock().unwrap();
        let rule = choose(&rules, &prompt, &last_user);
        let content = answer_text(rule, json_mode);
        let fingerprint = rule.and_then(|r| r.name.clone());
        drop(rules);
        let model = req
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("gpt-4o-mini")
            .to_string();
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let prompt_tokens: usize = messages.iter().map(|m| tokens(&message_text(m)) + 4).sum();
        let completion_tokens = tokens(&content);
        let body = json!({
            "id": format!("chatcmpl-sim{n:06}"),
            "object": "chat.completion",
            "created": jiff::Timestamp::now().as_second(),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": fingerprint.map(|f| format!("weft-sim:{f}")),
        });
        (StatusCode::OK, axum::Json(body)).into_response()
    }
}

/// The text of a chat message: its `content`, or its text parts joined.
fn message_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// A chat message's `role` (empty when missing).
fn message_role(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or("")
}

/// The failure a `[sim-fail:429|500|503]` marker in the last user message asks for.
fn injected_failure(last_user: &str) -> Option<Response> {
    for (marker, status) in [
        ("[sim-fail:429]", StatusCode::TOO_MANY_REQUESTS),
        ("[sim-fail:500]", StatusCode::INTERNAL_SERVER_ERROR),
        ("[sim-fail:503]", StatusCode::SERVICE_UNAVAILABLE),
    ] {
        if last_user.contains(marker) {
            let (msg, kind) = if status == StatusCode::TOO_MANY_REQUESTS {
                (
                    "Rate limit reached for requests. Please try again in 1s.",
                    "requests",
                )
            } else {
                (
                    "The server had an error while processing your request. Sorry about that!",
                    "server_error",
                )
            };
            let mut resp = error(status, msg, kind, None);
            if status == StatusCode::TOO_MANY_REQUESTS {
                resp.headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            }
            return Some(resp);
        }
    }
    None
}

/// A rough token count: about four characters per token.
fn tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4).max(1)
}

/// The key as OpenAI shows it: the first three and last four characters.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    (
        status,
        axum::Json(json!({
            "error": {"message": message, "type": kind, "param": null, "code": code}
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<OpenAiRule> {
        parse_rules(DEFAULT_RULES).unwrap()
    }

    fn pick(system: &str, user: &str) -> Value {
        let rules = rules();
        let prompt = format!("{system}\n{user}");
        let text = answer_text(choose(&rules, &prompt, user), true);
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn categorizes_tickets_by_keyword() {
        let sys = "Categorize the ticket. Answer with JSON {category, priority}.";
        assert_eq!(
            pick(sys, "The PRINTER on floor 2 is jammed")["category"],
            "Hardware"
        );
        assert_eq!(pick(sys, "I forgot my password")["category"], "Access");
        assert_eq!(
            pick(sys, "Outlook keeps crashing on start")["category"],
            "Email"
        );
        assert_eq!(pick(sys, "VPN drops every hour")["category"], "Network");
        assert_eq!(
            pick(sys, "Question about last month's invoice")["category"],
            "Billing"
        );
        assert_eq!(pick(sys, "Got a phishing email")["category"], "Security");
        assert_eq!(pick(sys, "Something odd happened")["category"], "General");
        // Words match at their start only: "blueprint" is not "print".
        assert_eq!(pick(sys, "the blueprint folder")["category"], "General");
    }

    #[test]
    fn sentiment_and_replies() {
        let sys = "Rate the sentiment of the customer's message as JSON {sentiment, score}.";
        let v = pick(sys, "This is UNACCEPTABLE, third outage this week");
        assert_eq!(v["sentiment"], "negative");
        assert!(v["score"].as_f64().unwrap() < 0.0);
        assert_eq!(pick(sys, "Thanks, great work!")["sentiment"], "positive");
        assert_eq!(
            pick(sys, "The printer is out of toner")["sentiment"],
            "neutral"
        );

        let rules = rules();
        let user = "I'm locked out of my account, password expired";
        let r = choose(
            &rules,
            &format!("Draft a reply to this ticket\n{user}"),
            user,
        )
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("reply.password"));
        assert!(answer_text(Some(r), false).contains("reset your password"));
        // In JSON mode plain answers are wrapped.
        let r = choose(&rules, "hello", "hello").unwrap();
        assert_eq!(r.name.as_deref(), Some("default"));
        let wrapped: Value = serde_json::from_str(&answer_text(Some(r), true)).unwrap();
        assert!(wrapped["answer"].is_string());
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(parse_rules(r#"[{"if_contains": ["x"]}]"#).is_err());
        assert!(parse_rules(r#"[{"default": "x", "if_contains": ["y"]}]"#).is_err());
        assert!(parse_rules(r#"[{"answer": "x"}]"#).is_err());
        assert!(parse_rules(r#"[{"default": {"a": 1}}]"#).is_ok());
        assert_eq!(mask("sk-wrong-key-123456"), "sk-************3456");
    }
}
