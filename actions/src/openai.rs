//! `openai.chat`: one chat completion from an OpenAI-compatible API (OpenAI, Azure OpenAI,
//! or any server speaking `POST {base_url}/chat/completions`: vLLM, Ollama, LM Studio, the
//! simulator's fake).
//!
//! The integration (kind `openai`) gives `base_url` (default `https://api.openai.com/v1`),
//! `model` (the default model), `azure: true` with `api_version` for Azure OpenAI (then
//! `base_url` is the deployment's URL, the key goes in an `api-key` header and the request
//! gets `?api-version=`), and the secret `api_key`. The key never appears in a message or
//! in an error's data.

use std::error::Error as _;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weft_engine::integration::Integration;
use weft_engine::{ActionContext, ActionError, ActionErrorKind, Registry, TypedAction};

use crate::params::{DurationParam, format_duration};
use crate::redirect::{self, FollowRedirects, Outgoing, SendError, shared_client};
use crate::{cancelled, invalid_params};

/// The API when the integration sets no `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The time limit when `timeout` is not given (models can be slow).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The most of a response body read (4 MiB).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

pub(crate) fn register(r: &mut Registry) {
    r.register(OpenAiChat::default());
}

/// Who says a message.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// Instructions for the model (newer OpenAI models' name for `system`).
    Developer,
    /// The user's turn.
    User,
    /// An earlier answer of the model.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: Role,
    /// The message text.
    pub content: String,
}

/// Parameters of `openai.chat`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatParams {
    /// The model name; overrides the integration's `model` setting (optional for Azure,
    /// where the deployment in `base_url` decides).
    pub model: Option<String>,
    /// The conversation, oldest first: `[{role, content}]`. Give `messages` or `prompt`
    /// (or both: `prompt` is then added as the last user message).
    pub messages: Option<Vec<Message>>,
    /// A single user message (the simple form of `messages`).
    pub prompt: Option<String>,
    /// A system message placed before everything else.
    pub system: Option<String>,
    /// Sampling temperature (0 to 2; lower is more deterministic).
    pub temperature: Option<f64>,
    /// The most tokens the answer may use.
    pub max_tokens: Option<u32>,
    /// Ask for a JSON object (`response_format: json_object`); the result's `json` is the
    /// parsed answer and the task fails if the answer is not JSON. Tell the model in the
    /// prompt what JSON to produce.
    #[serde(default)]
    pub json: bool,
    /// A JSON Schema the answer must follow (`response_format: json_schema`; either the
    /// schema itself or `{name, schema, strict}`); the result's `json` is the parsed answer.
    pub response_schema: Option<Value>,
    /// Time limit for the request (`60s`, `2m`, or a number of seconds); a request that
    /// takes longer fails with kind `timeout`.
    #[schemars(extend("default" = "120s"))]
    pub timeout: Option<DurationParam>,
}

/// `openai.chat`: sends a chat completion request; the result is `{content, json?, model,
/// usage, finish_reason}`.
///
/// Failures carry `data: {status, error_kind, retryable, error}`: `retryable` is true for
/// 429, 5xx, timeouts and transport errors, so `retry: {count: 3, when: "{{
/// RESULT.data.retryable }}"}` retries only what may succeed later.
#[derive(Debug, Default)]
pub struct OpenAiChat {
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl TypedAction for OpenAiChat {
    const NAME: &'static str = "openai.chat";
    const DESCRIPTION: &'static str = "Asks an OpenAI-compatible chat model; the result has content, json (in JSON mode), model, usage and finish_reason.";
    type Params = ChatParams;

    async fn run(&self, cx: ActionContext, params: ChatParams) -> Result<Value, ActionError> {
        let integration = cx.integration("openai")?;
        let req = ChatRequest::new(&integration, params)?;
        let client = shared_client(&self.client)?;
        let secrets: Vec<String> = integration
            .secret_values()
            .filter(|s| s.len() >= 3)
            .map(str::to_string)
            .collect();
        let label = req.label.clone();
        let timeout = req.timeout;
        let result = tokio::select! {
            biased;
            () = cx.cancel.cancelled() => Err(cancelled(format!("{} cancelled", OpenAiChat::NAME))),
            () = tokio::time::sleep(timeout) => Err(ActionError {
                kind: ActionErrorKind::Timeout,
                message: format!("{label} timed out after {}", format_duration(timeout)),
                data: Some(json!({"status": null, "error_kind": "timeout", "retryable": true})),
            }),
            r = req.send(client) => r,
        };
        result.map_err(|e| scrub_error(e, &secrets))
    }
}

/// A checked request, ready to send.
struct ChatRequest {
    url: Url,
    key: Option<(&'static str, String)>,
    body: Value,
    parse_json: bool,
    timeout: Duration,
    /// `openai.chat POST url` without the query string.
    label: String,
}

impl ChatRequest {
    fn new(integration: &Integration, p: ChatParams) -> Result<Self, ActionError> {
        let invalid = |m: &str| invalid_params(OpenAiChat::NAME, m);
        let azure = match integration.settings.get("azure") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.trim(), "true" | "yes" | "1"),
            _ => false,
        };
        let base = integration
            .setting("base_url")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_BASE_URL);
        let mut url = Url::parse(&format!("{}/chat/completions", base.trim_end_matches('/')))
            .map_err(|e| {
                ActionError::failed(format!(
                    "the `openai` integration `{}` has an invalid `base_url` ({e})",
                    integration.name
                ))
            })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ActionError::failed(format!(
                "the `openai` integration `{}`: `base_url` must start with http:// or https://",
                integration.name
            )));
        }
        let api_version = integration
            .setting("api_version")
            .filter(|v| !v.trim().is_empty());
        if let Some(v) = api_version {
            url.query_pairs_mut().append_pair("api-version", v.trim());
        } else if azure {
            return Err(ActionError::failed(format!(
                "the `openai` integration `{}` is an Azure one (`azure: true`) but has no `api_version`",
                integration.name
            )));
        }
        let key = integration
            .secret("api_key")
            .or_else(|| integration.secret("key"))
            .filter(|k| !k.trim().is_empty())
            .map(|k| {
                if azure {
                    ("api-key", k.trim().to_string())
                } else {
                    ("authorization", format!("Bearer {}", k.trim()))
                }
            });

        let model = p
            .model
            .as_deref()
            .or_else(|| integration.setting("model"))
            .map(str::trim)
            .filter(|m| !m.is_empty());
        if model.is_none() && !azure {
            return Err(invalid(
                "no `model`: give one, or set `model` on the `openai` integration",
            ));
        }

        let mut messages = Vec::new();
        if let Some(system) = p.system.filter(|s| !s.trim().is_empty()) {
            messages.push(json!({"role": "system", "content": system}));
        }
        let given = p.messages.unwrap_or_default();
        let has_messages = !given.is_empty();
        for m in given {
            messages.push(serde_json::to_value(m).expect("messages serialize"));
        }
        match p.prompt {
            Some(prompt) if !prompt.trim().is_empty() => {
                messages.push(json!({"role": "user", "content": prompt}));
            }
            _ if !has_messages => {
                return Err(invalid("give `messages` or `prompt`"));
            }
            _ => {}
        }
        if let Some(t) = p.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(invalid("`temperature` must be between 0 and 2"));
        }

        let mut body = Map::new();
        if let Some(m) = model {
            body.insert("model".into(), json!(m));
        }
        body.insert("messages".into(), Value::Array(messages));
        if let Some(t) = p.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(n) = p.max_tokens {
            body.insert("max_tokens".into(), json!(n));
        }
        let parse_json = p.json || p.response_schema.is_some();
        if let Some(schema) = p.response_schema {
            let Value::Object(obj) = schema else {
                return Err(invalid("`response_schema` must be a JSON Schema object"));
            };
            let wrapped =
                if obj.contains_key("schema") && obj.get("schema").is_some_and(Value::is_object) {
                    let mut w = obj;
                    w.entry("name").or_insert_with(|| json!("response"));
                    Value::Object(w)
                } else {
                    json!({"name": "response", "schema": Value::Object(obj)})
                };
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": wrapped}),
            );
        } else if p.json {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }

        let mut shown = url.clone();
        shown.set_query(None);
        Ok(ChatRequest {
            label: format!("{} POST {shown}", OpenAiChat::NAME),
            url,
            key,
            body: Value::Object(body),
            parse_json,
            timeout: p.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        })
    }

    async fn send(&self, client: &reqwest::Client) -> Result<Value, ActionError> {
        let mut req = Outgoing::new(reqwest::Method::POST, self.url.clone());
        req.headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        req.body = Some(serde_json::to_vec(&self.body).expect("JSON values serialize"));
        if let Some((name, value)) = &self.key {
            let mut v = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                ActionError::failed(
                    "the `openai` integration's `api_key` is not a valid header value",
                )
            })?;
            v.set_sensitive(true);
            req.headers.insert(*name, v);
        }
        // The key goes to `base_url`'s origin only: a redirect elsewhere is an error.
        let resp = redirect::send(client, req, FollowRedirects::SameOrigin)
            .await
            .map_err(|e| match e {
                SendError::Transport(e) => transport_error(&self.label, e),
                SendError::Refused(r) => redirect_error(
                    &r,
                    &self.label,
                    "the API key is sent only to `base_url`'s origin; set `base_url` to where it points",
                ),
            })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let bytes = read_capped(resp, MAX_RESPONSE)
            .await
            .map_err(|e| transport_error(&self.label, e))?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if !status.is_success() {
            return Err(api_error(
                &self.label,
                status.as_u16(),
                parsed.as_ref(),
                &bytes,
                retry_after,
            ));
        }
        let Some(body) = parsed else {
            return Err(ActionError::failed(format!(
                "{}: the answer is not JSON (status {})",
                self.label,
                status.as_u16()
            ))
            .with_data(
                json!({"status": status.as_u16(), "error_kind": "response", "retryable": false}),
            ));
        };
        chat_result(&self.label, &body, self.parse_json)
    }
}

/// The result from a chat completion response.
fn chat_result(label: &str, body: &Value, parse_json: bool) -> Result<Value, ActionError> {
    let choice = body
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| {
            ActionError::failed(format!("{label}: the answer has no `choices`"))
                .with_data(json!({"error_kind": "response", "retryable": false, "body": body}))
        })?;
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let content = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let finish_reason = choice.get("finish_reason").cloned().unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert("content".into(), json!(content));
    if parse_json {
        if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
            return Err(
                ActionError::failed(format!("{label}: the model refused: {refusal}")).with_data(
                    json!({"error_kind": "refusal", "retryable": false, "content": content}),
                ),
            );
        }
        match parse_json_answer(&content) {
            Some(v) => {
                out.insert("json".into(), v);
            }
            None => {
                return Err(ActionError::failed(format!(
                    "{label}: the answer is not valid JSON (finish_reason {finish_reason})"
                ))
                .with_data(json!({
                    "error_kind": "invalid_json",
                    "retryable": true,
                    "content": content,
                    "finish_reason": finish_reason,
                })));
            }
        }
    }
    out.insert(
        "model".into(),
        body.get("model").cloned().unwrap_or(Value::Null),
    );
    out.insert(
        "usage".into(),
        body.get("usage").cloned().unwrap_or(Value::Null),
    );
    out.insert("finish_reason".into(), finish_reason);
    Ok(Value::Object(out))
}

/// Parses an answer as JSON, allowing a Markdown code fence around it (which models outside
/// OpenAI's JSON mode often add).
pub(crate) fn parse_json_answer(content: &str) -> Option<Value> {
    let t = content.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Some(v);
    }
    let inner = t.strip_prefix("```")?.strip_suffix("```")?;
    let inner = inner
        .strip_prefix("json")
        .or_else(|| inner.strip_prefix("JSON"))
        .unwrap_or(inner);
    serde_json::from_str(inner.trim()).ok()
}

/// A non-2xx answer as an error: the status and the API's own message.
fn api_error(
    label: &str,
    status: u16,
    body: Option<&Value>,
    raw: &[u8],
    retry_after: Option<u64>,
) -> ActionError {
    let error = body.and_then(|b| b.get("error")).cloned();
    let api_message = error
        .as_ref()
        .and_then(|e| e.get("message").or_else(|| e.as_str().map(|_| e)))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            body.and_then(|b| b.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(raw);
            text.chars()
                .take(300)
                .collect::<String>()
                .trim()
                .to_string()
        });
    let (error_kind, retryable) = match status {
        401 | 403 => ("auth", false),
        404 => ("not_found", false),
        408 => ("timeout", true),
        429 => ("rate_limited", true),
        500..=599 => ("server", true),
        _ => ("request", false),
    };
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    let mut message = format!("{label} → {status}{reason}");
    if !api_message.is_empty() {
        message.push_str(": ");
        message.push_str(&api_message);
    }
    let mut data = json!({
        "status": status,
        "error_kind": error_kind,
        "retryable": retryable,
        "error": error.unwrap_or_else(|| json!({"message": api_message})),
    });
    if let Some(s) = retry_after {
        data["retry_after"] = json!(s);
    }
    ActionError::failed(message).with_data(data)
}

/// A transport failure (connection refused, DNS, TLS, reset…): retryable, with the chain
/// of causes and without the URL's query.
pub(crate) fn transport_error(label: &str, e: reqwest::Error) -> ActionError {
    let e = e.without_url();
    let mut message = format!("{label} failed");
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    for part in parts {
        if !part.is_empty() && !message.contains(&part) {
            message.push_str(": ");
            message.push_str(&part);
        }
    }
    ActionError::failed(message)
        .with_data(json!({"status": null, "error_kind": "transport", "retryable": true}))
}

/// A redirect that was not followed: not retryable, with `data: {status, error_kind:
/// "redirect", retryable: false, location}` (`location` shows only the origin).
pub(crate) fn redirect_error(r: &redirect::Refused, label: &str, hint: &str) -> ActionError {
    ActionError::failed(r.message(label, Some(hint))).with_data(json!({
        "status": r.status,
        "error_kind": "redirect",
        "retryable": false,
        "location": r.target,
    }))
}

/// Reads at most `cap` bytes of a body.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - buf.len();
        if chunk.len() >= room {
            buf.extend_from_slice(&chunk[..room]);
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Replaces every secret in the error's message and data by `***`.
pub(crate) fn scrub_error(mut e: ActionError, secrets: &[String]) -> ActionError {
    e.message = scrub(&e.message, secrets);
    if let Some(data) = e.data.as_mut() {
        scrub_value(data, secrets);
    }
    e
}

fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

fn scrub_value(v: &mut Value, secrets: &[String]) {
    match v {
        Value::String(s) => *s = scrub(s, secrets),
        Value::Array(items) => items.iter_mut().for_each(|i| scrub_value(i, secrets)),
        Value::Object(map) => map.values_mut().for_each(|i| scrub_value(i, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integ() -> Integration {
        Integration::new("openai", "default")
            .with_setting("base_url", "http://h/v1/")
            .with_setting("model", "m1")
            .with_secret("api_key", "sk-abc")
    }

    fn params(v: Value) -> ChatParams {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn builds_the_body() {
        let r = ChatRequest::new(
            &integ(),
            params(json!({"prompt": "hi", "system": "be brief", "json": true, "temperature": 0})),
        )
        .unwrap();
        assert_eq!(r.url.as_str(), "http://h/v1/chat/completions");
        assert_eq!(r.body["model"], "m1");
        assert_eq!(r.body["messages"][0]["role"], "system");
        assert_eq!(
            r.body["messages"][1],
            json!({"role": "user", "content": "hi"})
        );
        assert_eq!(r.body["response_format"]["type"], "json_object");
        assert_eq!(r.key.as_ref().unwrap().1, "Bearer sk-abc");
        assert!(r.parse_json);

        let r = ChatRequest::new(
            &integ(),
            params(
                json!({"model": "m2", "messages": [{"role": "user", "content": "x"}],
                "response_schema": {"type": "object"}}),
            ),
        )
        .unwrap();
        assert_eq!(r.body["model"], "m2");
        assert_eq!(
            r.body["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}}})
        );
        assert!(ChatRequest::new(&integ(), params(json!({}))).is_err());
        assert!(
            ChatRequest::new(&integ(), params(json!({"prompt": "x", "temperature": 3}))).is_err()
        );
    }

    #[test]
    fn azure_uses_api_key_and_version() {
        let i = Integration::new("openai", "az")
            .with_setting(
                "base_url",
                "https://r.openai.azure.com/openai/deployments/gpt",
            )
            .with_setting("azure", true)
            .with_setting("api_version", "2024-10-21")
            .with_secret("api_key", "k123");
        let r = ChatRequest::new(&i, params(json!({"prompt": "x"}))).unwrap();
        assert_eq!(
            r.url.as_str(),
            "https://r.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(r.key, Some(("api-key", "k123".to_string())));
        assert!(!r.label.contains("api-version"));
    }

    #[test]
    fn errors_are_classified_and_scrubbed() {
        let body =
            json!({"error": {"message": "Rate limit reached for sk-abc", "type": "requests"}});
        let e = api_error("L", 429, Some(&body), b"", Some(3));
        let e = scrub_error(e, &["sk-abc".into()]);
        assert!(e.message.contains("429"), "{}", e.message);
        assert!(!e.message.contains("sk-abc"), "{}", e.message);
        let d = e.data.unwrap();
        assert_eq!(d["retryable"], true);
        assert_eq!(d["retry_after"], 3);
        assert!(!d.to_string().contains("sk-abc"));
        let e = api_error("L", 400, None, b"bad thing", None);
        assert!(e.message.ends_with("bad thing"), "{}", e.message);
        assert_eq!(e.data.unwrap()["retryable"], false);
    }

    #[test]
    fn json_answers_may_be_fenced() {
        assert_eq!(parse_json_answer(" {\"a\":1} "), Some(json!({"a": 1})));
        assert_eq!(
            parse_json_answer("```json\n{\"a\":1}\n```"),
            Some(json!({"a": 1}))
        );
        assert_eq!(parse_json_answer("nope"), None);
    }
}
