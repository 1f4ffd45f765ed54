//! `notify.teams` and `notify.slack`: messages to incoming webhooks.
//!
//! The webhook URL comes from the task's `webhook_url` parameter, else from the integration
//! of kind `teams` / `slack` (setting `url` or `webhook_url`, or a secret of either name).
//! Webhook URLs are credentials: no message shows more than their scheme and host.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use weft_engine::{ActionContext, ActionError, ActionErrorKind, Registry, TypedAction};

use crate::openai::{read_capped, redirect_error, scrub_error, transport_error};
use crate::params::{DurationParam, format_duration, scalar_text};
use crate::redirect::{self, FollowRedirects, Outgoing, SendError, shared_client};
use crate::{cancelled, invalid_params};

/// The time limit when `timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn register(r: &mut Registry) {
    r.register(NotifyTeams::default());
    r.register(NotifySlack::default());
}

/// One name/value pair.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// The label.
    pub name: String,
    /// The value (strings, numbers and booleans are shown as text; other values as JSON).
    pub value: Value,
}

/// Name/value pairs: a map (`{Ticket: T2024.01, Priority: High}`, in order) or a list of
/// `{name, value}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Facts {
    /// `{name: value}` in order.
    Map(Map<String, Value>),
    /// `[{name, value}]`.
    List(Vec<Fact>),
}

impl Facts {
    fn pairs(&self) -> Vec<(String, String)> {
        let text = |v: &Value| scalar_text(v).unwrap_or_else(|| v.to_string());
        match self {
            Facts::Map(m) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            Facts::List(l) => l.iter().map(|f| (f.name.clone(), text(&f.value))).collect(),
        }
    }
}

/// A link shown as a button.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The button's label (default `Open`).
    pub title: Option<String>,
    /// The URL it opens.
    pub url: String,
}

impl Link {
    fn title(&self) -> &str {
        self.title
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or("Open")
    }
}

/// Parameters of `notify.teams`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsParams {
    /// The heading (bold).
    pub title: Option<String>,
    /// The message (Adaptive Card TextBlock markdown: `**bold**`, `_italic_`, `[text](url)`,
    /// lists).
    pub text: Option<String>,
    /// Facts shown as a table below the text: a map or a list of `{name, value}`.
    pub facts: Option<Facts>,
    /// A button opening a URL: `{title, url}`.
    pub link: Option<Link>,
    /// A complete Adaptive Card (its JSON) sent instead of the one built from `title`,
    /// `text`, `facts` and `link`.
    pub card: Option<Map<String, Value>>,
    /// The webhook URL (a Teams Workflows or incoming-webhook URL), overriding the `teams`
    /// integration's `url`. It is a credential: redacted in stored data.
    #[schemars(extend("x-weft-secret" = true))]
    pub webhook_url: Option<String>,
    /// Time limit (`30s`, or a number of seconds).
    #[schemars(extend("default" = "30s"))]
    pub timeout: Option<DurationParam>,
}

/// Parameters of `notify.slack`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackParams {
    /// The message (Slack mrkdwn: `*bold*`, `<url|text>`); with `blocks` it is the
    /// notification's fallback text.
    pub text: Option<String>,
    /// Block Kit blocks, sent as given (then `title`, `fields` and `link` are not allowed).
    pub blocks: Option<Vec<Value>>,
    /// A heading (a `header` block).
    pub title: Option<String>,
    /// Fields shown two per row below the text: a map or a list of `{name, value}`.
    pub fields: Option<Facts>,
    /// A button opening a URL: `{title, url}`.
    pub link: Option<Link>,
    /// The webhook URL, overriding the `slack` integration's `url`. It is a credential:
    /// redacted in stored data.
    #[schemars(extend("x-weft-secret" = true))]
    pub webhook_url: Option<String>,
    /// Time limit (`30s`, or a number of seconds).
    #[schemars(extend("default" = "30s"))]
    pub timeout: Option<DurationParam>,
}

/// `notify.teams`: posts an Adaptive Card to a Microsoft Teams webhook; the result is
/// `{status, delivered: true}`.
#[derive(Debug, Default)]
pub struct NotifyTeams {
    client: OnceLock<Result<reqwest::Client, String>>,
}

/// `notify.slack`: posts a message to a Slack incoming webhook; the result is `{status,
/// delivered: true}`.
#[derive(Debug, Default)]
pub struct NotifySlack {
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl TypedAction for NotifyTeams {
    const NAME: &'static str = "notify.teams";
    const DESCRIPTION: &'static str = "Posts a message (an Adaptive Card with title, text, facts and a link) to a Microsoft Teams webhook.";
    type Params = TeamsParams;

    async fn run(&self, cx: ActionContext, p: TeamsParams) -> Result<Value, ActionError> {
        let body = teams_message(&p)?;
        let url = webhook_url(&cx, Self::NAME, "teams", p.webhook_url.as_deref())?;
        let client = shared_client(&self.client)?;
        post(
            &cx,
            client,
            Self::NAME,
            url,
            body,
            p.timeout,
            Service::Teams,
        )
        .await
    }
}

impl TypedAction for NotifySlack {
    const NAME: &'static str = "notify.slack";
    const DESCRIPTION: &'static str = "Posts a message (text, or Block Kit blocks built from title, fields and a link) to a Slack incoming webhook.";
    type Params = SlackParams;

    async fn run(&self, cx: ActionContext, p: SlackParams) -> Result<Value, ActionError> {
        let body = slack_message(&p)?;
        let url = webhook_url(&cx, Self::NAME, "slack", p.webhook_url.as_deref())?;
        let client = shared_client(&self.client)?;
        post(
            &cx,
            client,
            Self::NAME,
            url,
            body,
            p.timeout,
            Service::Slack,
        )
        .await
    }
}

/// The Teams message: `{"type": "message", "attachments": [an Adaptive Card 1.4]}`.
pub fn teams_message(p: &TeamsParams) -> Result<Value, ActionError> {
    let content = if let Some(card) = &p.card {
        let mut card = card.clone();
        card.entry("type").or_insert_with(|| json!("AdaptiveCard"));
        card.entry("version").or_insert_with(|| json!("1.4"));
        card.entry("$schema")
            .or_insert_with(|| json!("http://adaptivecards.io/schemas/adaptive-card.json"));
        Value::Object(card)
    } else {
        let title = p.title.as_deref().filter(|t| !t.trim().is_empty());
        let text = p.text.as_deref().filter(|t| !t.trim().is_empty());
        if title.is_none() && text.is_none() {
            return Err(invalid_params(
                NotifyTeams::NAME,
                "give `title`, `text` or `card`",
            ));
        }
        let mut body = Vec::new();
        if let Some(t) = title {
            body.push(json!({"type": "TextBlock", "text": t, "weight": "Bolder", "size": "Medium", "wrap": true, "style": "heading"}));
        }
        if let Some(t) = text {
            body.push(json!({"type": "TextBlock", "text": t, "wrap": true}));
        }
        if let Some(facts) = &p.facts {
            let facts: Vec<Value> = facts
                .pairs()
                .into_iter()
                .map(|(k, v)| json!({"title": k, "value": v}))
                .collect();
            if !facts.is_empty() {
                body.push(json!({"type": "FactSet", "facts": facts}));
            }
        }
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
            "msteams": {"width": "Full"},
        });
        if let Some(link) = &p.link {
            check_link(NotifyTeams::NAME, link)?;
            card["actions"] =
                json!([{"type": "Action.OpenUrl", "title": link.title(), "url": link.url.trim()}]);
        }
        card
    };
    Ok(json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": content,
        }],
    }))
}

/// The Slack message: `{text, blocks}`.
pub fn slack_message(p: &SlackParams) -> Result<Value, ActionError> {
    let invalid = |m: &str| invalid_params(NotifySlack::NAME, m);
    let text = p.text.as_deref().filter(|t| !t.trim().is_empty());
    let title = p.title.as_deref().filter(|t| !t.trim().is_empty());
    let mut out = Map::new();
    if let Some(blocks) = &p.blocks {
        if title.is_some() || p.fields.is_some() || p.link.is_some() {
            return Err(invalid(
                "give `blocks` or `title`/`fields`/`link`, not both",
            ));
        }
        if blocks.is_empty() && text.is_none() {
            return Err(invalid("give `text` or `blocks`"));
        }
        if let Some(t) = text {
            out.insert("text".into(), json!(t));
        }
        out.insert("blocks".into(), Value::Array(blocks.clone()));
        return Ok(Value::Object(out));
    }
    if text.is_none() && title.is_none() {
        return Err(invalid("give `text`, `title` or `blocks`"));
    }
    let plain = p.fields.is_none() && p.link.is_none() && title.is_none();
    // The fallback text shown in notifications.
    out.insert("text".into(), json!(text.or(title).unwrap_or_default()));
    if plain {
        return Ok(Value::Object(out));
    }
    let mut blocks = Vec::new();
    if let Some(t) = title {
        let t: String = t.chars().take(150).collect();
        blocks.push(
            json!({"type": "header", "text": {"type": "plain_text", "text": t, "emoji": true}}),
        );
    }
    if let Some(t) = text {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": t}}));
    }
    if let Some(fields) = &p.fields {
        let pairs = fields.pairs();
        // Slack allows 10 fields per section.
        for chunk in pairs.chunks(10) {
            let fields: Vec<Value> = chunk
                .iter()
                .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
                .collect();
            blocks.push(json!({"type": "section", "fields": fields}));
        }
    }
    if let Some(link) = &p.link {
        check_link(NotifySlack::NAME, link)?;
        blocks.push(json!({"type": "actions", "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": link.title(), "emoji": true},
            "url": link.url.trim(),
        }]}));
    }
    out.insert("blocks".into(), Value::Array(blocks));
    Ok(Value::Object(out))
}

fn check_link(action: &str, link: &Link) -> Result<(), ActionError> {
    match Url::parse(link.url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(invalid_params(
            action,
            format!("`link.url` is not an http(s) URL: `{}`", link.url),
        )),
    }
}

/// The webhook URL: the parameter, else the integration's `url`/`webhook_url`.
fn webhook_url(
    cx: &ActionContext,
    action: &str,
    kind: &str,
    param: Option<&str>,
) -> Result<Url, ActionError> {
    let (raw, source) = match param.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => (u.to_string(), "`webhook_url`".to_string()),
        None => {
            let i = cx.integration(kind)?;
            let raw = i
                .setting("url")
                .or_else(|| i.setting("webhook_url"))
                .or_else(|| i.secret("url"))
                .or_else(|| i.secret("webhook_url"))
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    ActionError::failed(format!(
                        "the `{kind}` integration `{}` has no `url`",
                        i.name
                    ))
                })?;
            (
                raw.to_string(),
                format!("the `{kind}` integration `{}`'s `url`", i.name),
            )
        }
    };
    match Url::parse(&raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        _ => Err(invalid_params(
            action,
            format!("{source} is not an http(s) URL"),
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    Teams,
    Slack,
}

async fn post(
    cx: &ActionContext,
    client: &reqwest::Client,
    action: &str,
    url: Url,
    body: Value,
    timeout: Option<DurationParam>,
    service: Service,
) -> Result<Value, ActionError> {
    let timeout = timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
    // Only the scheme and host: the path and query of a webhook URL are its secret.
    let label = format!(
        "{action} POST {}://{}/…",
        url.scheme(),
        url.host_str().unwrap_or("")
    );
    let secrets = vec![url.as_str().to_string(), url.path().to_string()]
        .into_iter()
        .chain(url.query().map(str::to_string))
        .filter(|s| s.len() > 3)
        .collect::<Vec<_>>();
    let work = async {
        let mut req = Outgoing::new(reqwest::Method::POST, url.clone());
        req.headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        req.body = Some(serde_json::to_vec(&body).expect("JSON values serialize"));
        // The message goes to the webhook's origin only: a redirect elsewhere is an error.
        let resp = redirect::send(client, req, FollowRedirects::SameOrigin)
            .await
            .map_err(|e| match e {
                SendError::Transport(e) => transport_error(&label, e),
                SendError::Refused(r) => redirect_error(
                    &r,
                    &label,
                    "weft posts a message only to the webhook URL's origin; use the URL it points to",
                ),
            })?;
        let status = resp.status().as_u16();
        let bytes = read_capped(resp, 64 * 1024)
            .await
            .map_err(|e| transport_error(&label, e))?;
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        // Teams' legacy connectors answer 200 with an error text when delivery failed.
        let teams_failed =
            service == Service::Teams && text.starts_with("Webhook message delivery failed");
        if (200..300).contains(&status) && !teams_failed {
            return Ok(json!({"status": status, "delivered": true}));
        }
        let retryable = status == 429 || status >= 500 || text.contains("HTTP error 429");
        let shown: String = text.chars().take(300).collect();
        let mut message = format!("{label} → {status}");
        if let Some(r) = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
        {
            message.push(' ');
            message.push_str(r);
        }
        if !shown.is_empty() {
            message.push_str(": ");
            message.push_str(&shown);
        }
        Err(ActionError::failed(message).with_data(json!({
            "status": status,
            "error_kind": if retryable { "server" } else { "request" },
            "retryable": retryable,
            "body": shown,
        })))
    };
    let result = tokio::select! {
        biased;
        () = cx.cancel.cancelled() => Err(cancelled(format!("{action} cancelled"))),
        () = tokio::time::sleep(timeout) => Err(ActionError {
            kind: ActionErrorKind::Timeout,
            message: format!("{label} timed out after {}", format_duration(timeout)),
            data: Some(json!({"status": null, "error_kind": "timeout", "retryable": true})),
        }),
        r = work => r,
    };
    result.map_err(|e| scrub_error(e, &secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_card() {
        let p: TeamsParams = serde_json::from_value(json!({
            "title": "Ticket created", "text": "A **new** ticket",
            "facts": {"Priority": "High", "Id": 42},
            "link": {"title": "Open ticket", "url": "https://x/t/42"}
        }))
        .unwrap();
        let m = teams_message(&p).unwrap();
        let card = &m["attachments"][0]["content"];
        assert_eq!(m["type"], "message");
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["body"][0]["text"], "Ticket created");
        assert_eq!(
            card["body"][2]["facts"],
            json!([{"title": "Priority", "value": "High"}, {"title": "Id", "value": "42"}])
        );
        assert_eq!(card["actions"][0]["url"], "https://x/t/42");
        let p: TeamsParams = serde_json::from_value(json!({
            "text": "x", "facts": [{"name": "a", "value": true}]
        }))
        .unwrap();
        let m = teams_message(&p).unwrap();
        assert_eq!(
            m["attachments"][0]["content"]["body"][1]["facts"][0],
            json!({"title": "a", "value": "true"})
        );
        let p: TeamsParams = serde_json::from_value(json!({})).unwrap();
        assert!(teams_message(&p).is_err());
    }

    #[test]
    fn slack_blocks() {
        let p: SlackParams = serde_json::from_value(json!({"text": "hello"})).unwrap();
        assert_eq!(slack_message(&p).unwrap(), json!({"text": "hello"}));
        let p: SlackParams = serde_json::from_value(json!({
            "title": "Alert", "text": "disk full", "fields": {"Host": "srv1"},
            "link": {"url": "https://x/a"}
        }))
        .unwrap();
        let m = slack_message(&p).unwrap();
        assert_eq!(m["text"], "disk full");
        assert_eq!(m["blocks"][0]["type"], "header");
        assert_eq!(m["blocks"][2]["fields"][0]["text"], "*Host*\nsrv1");
        assert_eq!(m["blocks"][3]["elements"][0]["text"]["text"], "Open");
        let p: SlackParams = serde_json::from_value(json!({
            "blocks": [{"type": "divider"}], "title": "x"
        }))
        .unwrap();
        assert!(slack_message(&p).is_err());
    }
}
