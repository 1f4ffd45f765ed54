//! The workflow language as types. Built by [`crate::load`] from a YAML file; every string
//! that contains template syntax is already compiled.

use std::time::Duration;

use indexmap::IndexMap;

use crate::template::Template;
use crate::yaml::Span;

/// A value with the place in the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

/// Where a mapping entry's key and value are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySpan {
    /// The key.
    pub key: Span,
    /// The value.
    pub value: Span,
}

/// Data written in a workflow file in which any string may be a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Templated {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string without template syntax.
    String(String),
    /// A string with template syntax, compiled.
    Template(Template),
    /// A list.
    List(Vec<Templated>),
    /// A mapping, in file order.
    Map(IndexMap<String, Templated>),
}

impl Templated {
    /// Does this value contain any template?
    pub fn has_templates(&self) -> bool {
        match self {
            Templated::Template(_) => true,
            Templated::List(items) => items.iter().any(Templated::has_templates),
            Templated::Map(m) => m.values().any(Templated::has_templates),
            _ => false,
        }
    }

    /// The value as JSON if it holds no template.
    pub fn as_literal(&self) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        Some(match self {
            Templated::Null => J::Null,
            Templated::Bool(b) => J::Bool(*b),
            Templated::Number(n) => J::Number(n.clone()),
            Templated::String(s) => J::String(s.clone()),
            Templated::Template(_) => return None,
            Templated::List(items) => J::Array(
                items
                    .iter()
                    .map(Templated::as_literal)
                    .collect::<Option<_>>()?,
            ),
            Templated::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| Some((k.clone(), v.as_literal()?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    /// Renders every template against `ctx`; `path` names the field for error messages.
    ///
    /// # Errors
    /// The first template that fails, with the path of the field it is in.
    pub fn render(&self, ctx: &minijinja::Value) -> Result<serde_json::Value, RenderError> {
        self.render_at(ctx, &mut String::new())
    }

    fn render_at(
        &self,
        ctx: &minijinja::Value,
        path: &mut String,
    ) -> Result<serde_json::Value, RenderError> {
        use serde_json::Value as J;
        Ok(match self {
            Templated::Template(t) => t.render_json(ctx).map_err(|error| RenderError {
                path: path.clone(),
                error,
            })?,
            Templated::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    out.push(item.render_at(ctx, path)?);
                    path.truncate(len);
                }
                J::Array(out)
            }
            Templated::Map(m) => {
                let mut out = serde_json::Map::with_capacity(m.len());
                for (k, v) in m {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    out.insert(k.clone(), v.render_at(ctx, path)?);
                    path.truncate(len);
                }
                J::Object(out)
            }
            other => other.as_literal().unwrap_or(J::Null),
        })
    }
}

/// A template that failed while rendering a [`Templated`] value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{error}", if path.is_empty() { String::new() } else { format!("in `{path}`: ") })]
pub struct RenderError {
    /// Where inside the value (e.g. `filter[0].value`); empty for the value itself.
    pub path: String,
    /// What went wrong.
    #[source]
    pub error: crate::template::TemplateError,
}

/// A parsed, validated workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Language version (1).
    pub version: u32,
    /// Unique name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Typed inputs.
    pub input: IndexMap<String, InputParam>,
    /// Values computed once at start, in order (later ones may read earlier ones).
    pub vars: IndexMap<String, Templated>,
    /// The tasks, in file order.
    pub tasks: IndexMap<String, Task>,
    /// Rendered when the execution ends.
    pub output: IndexMap<String, Templated>,
    /// The whole execution's time limit.
    pub timeout: Option<Duration>,
    /// What starts it.
    pub triggers: Vec<Trigger>,
    /// How many executions may run at once, across every process sharing the store.
    pub concurrency: Option<Concurrency>,
    /// Tasks that no route points to, in file order.
    pub start_tasks: Vec<String>,
}

/// `concurrency:` — at most `limit` executions of the workflow (any version) run at once per
/// distinct `key`; the others wait in the queue, oldest first.
#[derive(Debug, Clone)]
pub struct Concurrency {
    /// How many may run at once (≥ 1).
    pub limit: u32,
    /// Rendered once when an execution is created (with the context `vars` see); the limit
    /// applies to each value separately. `None`: one group for the whole workflow.
    pub key: Option<Templated>,
}

/// The type of a workflow input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// true / false.
    Boolean,
    /// A mapping.
    Object,
    /// A list.
    Array,
    /// Anything.
    Any,
}

impl InputType {
    /// All names accepted in `type:`.
    pub const NAMES: &'static [&'static str] = &[
        "string", "integer", "number", "boolean", "object", "array", "any",
    ];

    /// From a `type:` value (`list`, `int`, `bool`, `dict` accepted as aliases).
    pub fn parse(s: &str) -> Option<InputType> {
        Some(match s {
            "string" | "str" => InputType::String,
            "integer" | "int" => InputType::Integer,
            "number" | "float" => InputType::Number,
            "boolean" | "bool" => InputType::Boolean,
            "object" | "dict" | "map" => InputType::Object,
            "array" | "list" => InputType::Array,
            "any" => InputType::Any,
            _ => return None,
        })
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Object => "object",
            InputType::Array => "array",
            InputType::Any => "any",
        }
    }

    /// Does a JSON value have this type?
    pub fn accepts(self, v: &serde_json::Value) -> bool {
        match self {
            InputType::String => v.is_string(),
            InputType::Integer => {
                v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            InputType::Number => v.is_number(),
            InputType::Boolean => v.is_boolean(),
            InputType::Object => v.is_object(),
            InputType::Array => v.is_array(),
            InputType::Any => true,
        }
    }
}

/// A declared workflow input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputParam {
    /// Expected type.
    pub ty: InputType,
    /// Must the caller supply it (when there is no default)?
    pub required: bool,
    /// Used when the caller does not supply it.
    pub default: Option<serde_json::Value>,
    /// Shown in forms and `weft run --help`-like listings.
    pub description: Option<String>,
    /// Allowed values.
    pub allowed: Option<Vec<serde_json::Value>>,
    /// Redacted in stored execution data and logs.
    pub secret: bool,
}

/// When a route fires relative to the task's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The task succeeded (the default).
    Success,
    /// The task failed.
    Failure,
    /// Either.
    Always,
}

/// A route out of a task (an element of `next`).
#[derive(Debug, Clone)]
pub struct Route {
    /// Outcome it follows.
    pub on: On,
    /// Extra condition.
    pub when: Option<Template>,
    /// Names written into CTX when the route fires, in order.
    pub publish: IndexMap<String, Templated>,
    /// Tasks it starts.
    pub targets: Vec<Spanned<String>>,
    /// Where the route is written.
    pub span: Span,
}

/// How many inbound routes a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Every inbound route must fire.
    All,
    /// This many inbound routes must fire.
    Count(u32),
}

/// Which routes a finished task follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransitionMode {
    /// Every route whose condition holds (Rewst's Follow All).
    #[default]
    All,
    /// Only the first route whose condition holds, in order (Rewst's Follow First).
    First,
}

/// Run the task once per item.
#[derive(Debug, Clone)]
pub struct WithItems {
    /// The list (usually a template).
    pub items: Templated,
    /// How many items run at once (default: all… bounded by [`WithItems::DEFAULT_CONCURRENCY`]).
    pub concurrency: Option<u32>,
}

impl WithItems {
    /// Items that run at once when `concurrency` is not given.
    pub const DEFAULT_CONCURRENCY: u32 = 10;
}

/// Retry a failing task.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts after the first.
    pub count: u32,
    /// Wait before the first retry.
    pub delay: Duration,
    /// Multiplier applied to the delay after each retry (1.0 = constant).
    pub backoff: f64,
    /// Upper bound on the delay.
    pub max_delay: Option<Duration>,
    /// Retry only when this holds (RESULT, `failed()` in scope).
    pub when: Option<Template>,
}

/// Which integration instance a task (or trigger) uses.
#[derive(Debug, Clone, PartialEq)]
pub enum IntegrationOverride {
    /// One instance name for whatever kind the action needs.
    Instance(String),
    /// Instance per integration kind (`autotask: second-tenant`).
    PerKind(IndexMap<String, String>),
}

impl IntegrationOverride {
    /// As JSON: the name, or `{kind: name}` (how a trigger's override travels with its
    /// event, as `TRIGGER.integration`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            IntegrationOverride::Instance(n) => serde_json::Value::String(n.clone()),
            IntegrationOverride::PerKind(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect(),
            ),
        }
    }

    /// From [`IntegrationOverride::to_json`]'s form.
    pub fn from_json(v: &serde_json::Value) -> Option<IntegrationOverride> {
        match v {
            serde_json::Value::String(s) => Some(IntegrationOverride::Instance(s.clone())),
            serde_json::Value::Object(m) => Some(IntegrationOverride::PerKind(
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect(),
            )),
            _ => None,
        }
    }
}

/// A task: one action call (or one per item).
#[derive(Debug, Clone)]
pub struct Task {
    /// The task's name (its key under `tasks:`).
    pub name: String,
    /// Human description.
    pub description: Option<String>,
    /// Registered action name, e.g. `autotask.create_ticket`.
    pub action: Spanned<String>,
    /// The action's parameters.
    pub input: IndexMap<String, Templated>,
    /// Where each parameter is written.
    pub input_spans: IndexMap<String, EntrySpan>,
    /// Routes out of the task.
    pub next: Vec<Route>,
    /// Join barrier.
    pub join: Option<Spanned<Join>>,
    /// Loop.
    pub with: Option<WithItems>,
    /// Retry policy.
    pub retry: Option<Retry>,
    /// Time limit per attempt.
    pub timeout: Option<Duration>,
    /// Wait before starting.
    pub delay: Option<Duration>,
    /// Follow all matching routes or only the first.
    pub transition_mode: TransitionMode,
    /// Run in a child organization's context (an org id or name; may be a template).
    pub run_as_org: Option<Templated>,
    /// Integration instance override.
    pub integration: Option<IntegrationOverride>,
    /// Where the task's name is written.
    pub span: Span,
}

/// Who a trigger runs the workflow for.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RunFor {
    /// The org the workflow is deployed in (default).
    #[default]
    Owner,
    /// These orgs (names or ids).
    Orgs(Vec<String>),
    /// Every managed (child) org, current and future.
    AllManaged,
}

/// Whether a webhook demands the shared secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookSecret {
    /// No secret.
    #[default]
    None,
    /// `x-weft-secret` must match the trigger's secret.
    Required,
}

/// What a webhook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookResponse {
    /// 202 with the execution id, once the event is committed.
    #[default]
    Accepted,
    /// Wait for the workflow's output (up to `timeout`), else 202.
    Wait,
}

/// Autotask entity events a trigger subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutotaskEvent {
    /// A record was created.
    Create,
    /// A record was updated.
    Update,
    /// A record was deleted.
    Delete,
}

/// What kind of trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerKind {
    /// Manual runs, the API and sub-workflows.
    AlwaysPass,
    /// `POST /hooks/{trigger}/{org}`.
    Webhook {
        /// Require `x-weft-secret`.
        secret: WebhookSecret,
        /// Reply mode.
        response: WebhookResponse,
        /// How long `response: wait` waits.
        wait_timeout: Option<Duration>,
        /// Largest body accepted, in bytes.
        max_body_bytes: Option<u64>,
        /// Requests per second accepted before 429.
        rate_limit: Option<u32>,
    },
    /// A schedule.
    Cron {
        /// Five-field expression or `@hourly`-style nickname.
        schedule: String,
        /// IANA time zone (UTC when absent).
        timezone: Option<String>,
        /// What happens to slots missed while weft was down.
        catch_up: CatchUp,
    },
    /// Submissions of a hosted form (`type: form`, `form: new-user`): `TRIGGER.form` holds
    /// `{name, values, submitted_at, link}`.
    Form {
        /// The form's name (its file's `form:`).
        form: String,
        /// `accepted` shows the form's thank-you message; `wait` waits for the execution
        /// and shows its output.
        response: WebhookResponse,
        /// How long `response: wait` waits.
        wait_timeout: Option<Duration>,
    },
    /// Autotask webhook events for an entity (`autotask.ticket` …).
    Autotask {
        /// Entity name as in the trigger type (`ticket`, `ticket_note`, …).
        entity: String,
        /// Events subscribed.
        events: Vec<AutotaskEvent>,
        /// Fields whose changes are sent.
        fields: Vec<String>,
    },
}

/// Missed cron slots after downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Skip them.
    None,
    /// Fire once for the latest missed slot.
    #[default]
    Latest,
}

/// A trigger declared in the workflow.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Unique within the workflow; part of webhook URLs.
    pub name: String,
    /// Type and settings.
    pub kind: TriggerKind,
    /// Enabled on deploy.
    pub enabled: bool,
    /// Who it runs for.
    pub run_for: RunFor,
    /// Condition on TRIGGER that must hold for an execution to start.
    pub criteria: Option<Template>,
    /// Workflow inputs computed from the event.
    pub input: IndexMap<String, Templated>,
    /// Where each input is written.
    pub input_spans: IndexMap<String, EntrySpan>,
    /// Integration override for every task of executions it starts.
    pub integration: Option<IntegrationOverride>,
    /// Where it is written.
    pub span: Span,
}

/// The trigger types, as written in `type:`.
pub const TRIGGER_TYPES: &[&str] = &[
    "always_pass",
    "webhook",
    "cron",
    "form",
    "autotask.ticket",
    "autotask.ticket_note",
    "autotask.company",
    "autotask.contact",
    "autotask.configuration_item",
];

/// Parses `30s`, `5m`, `2h`, `1d`, `250ms`, `1h30m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" | "sec" | "secs" => n,
            "m" | "min" | "mins" => n * 60.0,
            "h" | "hr" | "hrs" => n * 3600.0,
            "d" | "day" | "days" => n * 86400.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(secs).ok()?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn templated_render_names_the_failing_field() {
        let t = Templated::Map(IndexMap::from([(
            "filter".to_string(),
            Templated::List(vec![Templated::Template(
                Template::compile("{{ CTX.nope }}").unwrap(),
            )]),
        )]));
        let ctx = minijinja::Value::from(minijinja::value::Serde(serde_json::json!({"CTX": {}})));
        let err = t.render(&ctx).unwrap_err();
        assert_eq!(err.path, "filter[0]");
        assert!(err.to_string().contains("CTX.nope"));
    }
}
