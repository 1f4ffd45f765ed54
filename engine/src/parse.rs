//! Maps the spanned YAML tree to the typed model, collecting every problem with its location
//! instead of stopping at the first.

use std::time::Duration;

use indexmap::IndexMap;

use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::suggest::did_you_mean;
use crate::template::{self, Template};
use crate::yaml::{Kind, Node, Span, Style, duplicate_keys};

mod form;

/// Where a template is used; decides which names are in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `vars:`
    Vars,
    /// A task's `input:`
    TaskInput,
    /// `with.items`
    WithItems,
    /// `run_as_org`
    RunAsOrg,
    /// A route's `when`
    RouteWhen,
    /// A route's `publish`
    Publish,
    /// `retry.when`
    RetryWhen,
    /// Workflow `output:`
    Output,
    /// A trigger's `input:`
    TriggerInput,
    /// A trigger's `criteria:`
    Criteria,
    /// `concurrency.key`
    ConcurrencyKey,
    /// A form's `show_when` or `thank_you`.
    Form,
}

impl Scope {
    /// Is RESULT (the task's own result) readable here?
    pub fn has_result(self) -> bool {
        matches!(self, Scope::RouteWhen | Scope::Publish | Scope::RetryWhen)
    }
}

/// A compiled template and where it was written.
#[derive(Debug, Clone)]
pub struct TemplateSite {
    /// The compiled template.
    pub template: Template,
    /// The YAML scalar that holds it.
    pub span: Span,
    /// How the scalar was written (for mapping template offsets to the file).
    pub style: Style,
    /// Dotted path, e.g. `tasks.notify.input.text`.
    pub path: String,
    /// What may be referenced.
    pub scope: Scope,
    /// The task it belongs to, if any.
    pub task: Option<String>,
}

pub(crate) struct Reader<'s> {
    pub src: &'s str,
    pub diags: Vec<Diagnostic>,
    pub sites: Vec<TemplateSite>,
    /// `publish` keys with where they were written.
    pub publishes: Vec<(String, Span)>,
}

const WORKFLOW_KEYS: &[&str] = &[
    "version",
    "name",
    "description",
    "input",
    "vars",
    "tasks",
    "output",
    "timeout",
    "triggers",
    "concurrency",
];
const TASK_KEYS: &[&str] = &[
    "action",
    "description",
    "input",
    "next",
    "join",
    "with",
    "retry",
    "timeout",
    "delay",
    "transition_mode",
    "run_as_org",
    "integration",
];
const ROUTE_KEYS: &[&str] = &["on", "when", "publish", "do"];
const WITH_KEYS: &[&str] = &["items", "concurrency"];
const CONCURRENCY_KEYS: &[&str] = &["limit", "key"];
const RETRY_KEYS: &[&str] = &["count", "delay", "backoff", "max_delay", "when"];
const INPUT_KEYS: &[&str] = &[
    "type",
    "required",
    "default",
    "description",
    "enum",
    "secret",
    "label",
];
const TRIGGER_COMMON_KEYS: &[&str] = &[
    "name",
    "type",
    "description",
    "enabled",
    "run_for",
    "criteria",
    "input",
    "integration",
];
const WEBHOOK_KEYS: &[&str] = &["secret", "response", "timeout", "max_body", "rate_limit"];
const CRON_KEYS: &[&str] = &["schedule", "timezone", "catch_up"];
const AUTOTASK_KEYS: &[&str] = &["events", "fields"];
const FORM_KEYS: &[&str] = &["form", "response", "timeout"];

/// The keys only a trigger of type `ty` takes (besides the common ones).
fn own_trigger_keys(ty: &str) -> &'static [&'static str] {
    match ty {
        "webhook" => WEBHOOK_KEYS,
        "cron" => CRON_KEYS,
        "form" => FORM_KEYS,
        t if t.starts_with("autotask.") => AUTOTASK_KEYS,
        _ => &[],
    }
}

/// Every key a trigger of type `ty` takes: the common ones, then its own (an editor offers
/// these; `weft validate` reports the others as `trigger.wrong_key`).
pub fn trigger_keys(ty: &str) -> impl Iterator<Item = &'static str> {
    let ty = if ty == "manual" { "always_pass" } else { ty };
    TRIGGER_COMMON_KEYS
        .iter()
        .chain(own_trigger_keys(ty))
        .copied()
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_task_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_workflow_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `1048576`, `512KiB`, `1MiB`, `2MB`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let mult = match s[split..].trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" | "K" | "k" => 1024,
        "MB" => 1000 * 1000,
        "MiB" | "M" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "GiB" | "G" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

impl<'s> Reader<'s> {
    pub fn new(src: &'s str) -> Self {
        Reader {
            src,
            diags: Vec::new(),
            sites: Vec::new(),
            publishes: Vec::new(),
        }
    }

    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn type_error(&mut self, node: &Node, what: &str, expected: &str) {
        self.err(Diagnostic::error(
            "schema.type",
            node.span,
            format!("{what} must be {expected}, found {}", node.type_name()),
        ));
    }

    /// The entries of a mapping, checking keys against `known`; `None` (reported) if `node`
    /// is not a mapping. `null` reads as an empty mapping.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: Option<&[&str]>,
    ) -> Option<&'n [(Node, Node)]> {
        let entries = match &node.kind {
            Kind::Map(m) => m.as_slice(),
            Kind::Null => &[],
            _ => {
                self.type_error(node, what, "a mapping");
                return None;
            }
        };
        for (first, dup) in duplicate_keys(entries) {
            let key = dup.key_string();
            let (code, message) = if what == "`tasks`" {
                (
                    "task.duplicate_name",
                    format!("task `{key}` is defined twice"),
                )
            } else {
                (
                    "yaml.duplicate_key",
                    format!("duplicate key `{key}` in {what}"),
                )
            };
            self.err(
                Diagnostic::error(code, dup.span, message)
                    .with_related(first.span, "first defined here")
                    .with_help("each key may appear once; rename or merge one of them"),
            );
        }
        for (k, _) in entries {
            let Some(key) = k.as_str() else {
                self.err(Diagnostic::error(
                    "schema.type",
                    k.span,
                    format!("keys in {what} must be strings, found {}", k.type_name()),
                ));
                continue;
            };
            if let Some(known) = known
                && !known.contains(&key)
            {
                self.err(
                    Diagnostic::error(
                        "schema.unknown_key",
                        k.span,
                        format!("unknown key `{key}` in {what}"),
                    )
                    .with_help(
                        did_you_mean(key, known.iter().copied())
                            .unwrap_or_else(|| format!("known keys: {}", known.join(", "))),
                    ),
                );
            }
        }
        Some(entries)
    }

    fn missing(&mut self, span: Span, key: &str, what: &str, help: &str) {
        self.err(
            Diagnostic::error(
                "schema.missing_key",
                span,
                format!("{what} is missing required key `{key}`"),
            )
            .with_help(help.to_string()),
        );
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Str(s, _) => Some(s.clone()),
            _ => {
                self.type_error(node, what, "a string");
                None
            }
        }
    }

    /// A string that must not be a template.
    fn plain_string(&mut self, node: &Node, what: &str) -> Option<String> {
        let s = self.string(node, what)?;
        if template::is_template(&s) {
            self.err(
                Diagnostic::error(
                    "schema.template_not_allowed",
                    node.span,
                    format!("{what} cannot be a template"),
                )
                .with_help("write a fixed value here"),
            );
            return None;
        }
        Some(s)
    }

    fn uint(&mut self, node: &Node, what: &str, min: u32) -> Option<u32> {
        match node.kind {
            Kind::Int(i) if i >= i64::from(min) && i <= i64::from(u32::MAX) => Some(i as u32),
            Kind::Int(i) => {
                self.err(Diagnostic::error(
                    "schema.invalid_value",
                    node.span,
                    format!("{what} must be at least {min}, found {i}"),
                ));
                None
            }
            _ => {
                self.type_error(node, what, "an integer");
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.type_error(node, what, "true or false");
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        match &node.kind {
            Kind::Int(i) if *i >= 0 => Some(Duration::from_secs(*i as u64)),
            Kind::Str(s, _) => match parse_duration(s) {
                Some(d) => Some(d),
                None => {
                    self.err(
                        Diagnostic::error(
                            "schema.duration",
                            node.span,
                            format!("{what}: `{s}` is not a duration"),
                        )
                        .with_help("write a number with a unit: 500ms, 30s, 5m, 2h, 1d (or 1h30m)"),
                    );
                    None
                }
            },
            _ => {
                self.err(
                    Diagnostic::error(
                        "schema.duration",
                        node.span,
                        format!("{what} must be a duration, found {}", node.type_name()),
                    )
                    .with_help("write a number with a unit: 500ms, 30s, 5m, 2h, 1d"),
                );
                None
            }
        }
    }

    /// One of `choices`; aliases map to a canonical value.
    fn choice<T: Copy>(&mut self, node: &Node, what: &str, choices: &[(&str, T)]) -> Option<T> {
        let s = self.string(node, what)?;
        if let Some((_, v)) = choices.iter().find(|(n, _)| *n == s) {
            return Some(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        self.err(
            Diagnostic::error(
                "schema.invalid_value",
                node.span,
                format!("{what}: `{s}` is not one of {}", names.join(", ")),
            )
            .with_help_opt(did_you_mean(&s, names.iter().copied())),
        );
        None
    }

    /// Compiles a template, reporting syntax errors at the right place in the file.
    fn compile(
        &mut self,
        node: &Node,
        text: &str,
        path: &str,
        scope: Scope,
        task: Option<&str>,
    ) -> Option<Template> {
        let style = match &node.kind {
            Kind::Str(_, st) => *st,
            _ => Style::Plain,
        };
        match Template::compile(text) {
            Ok(t) => {
                self.sites.push(TemplateSite {
                    template: t.clone(),
                    span: node.span,
                    style,
                    path: path.to_string(),
                    scope,
                    task: task.map(str::to_string),
                });
                Some(t)
            }
            Err(e) => {
                let span = e.range.as_ref().map_or(node.span, |r| {
                    template_span(self.src, node.span, style, text, r.clone())
                });
                self.err(
                    Diagnostic::error("template.syntax", span, format!("{path}: {}", e.message))
                        .with_help("check the Jinja syntax: `{{ expression }}`, `{% statement %}`, filters with `|`"),
                );
                None
            }
        }
    }

    fn templated(
        &mut self,
        node: &Node,
        path: &str,
        scope: Scope,
        task: Option<&str>,
    ) -> Templated {
        match &node.kind {
            Kind::Null => Templated::Null,
            Kind::Bool(b) => Templated::Bool(*b),
            Kind::Int(i) => Templated::Number((*i).into()),
            Kind::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Templated::Null, Templated::Number)
            }
            Kind::Str(s, _) => {
                if template::is_template(s) {
                    self.compile(node, s, path, scope, task)
                        .map_or(Templated::Null, Templated::Template)
                } else {
                    Templated::String(s.clone())
                }
            }
            Kind::Seq(items) => Templated::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.templated(n, &format!("{path}[{i}]"), scope, task))
                    .collect(),
            ),
            Kind::Map(_) => {
                let mut out = IndexMap::new();
                if let Some(entries) = self.entries(node, &format!("`{path}`"), None) {
                    for (k, v) in entries {
                        let key = k.key_string();
                        let value = self.templated(v, &format!("{path}.{key}"), scope, task);
                        out.entry(key).or_insert(value);
                    }
                }
                Templated::Map(out)
            }
        }
    }

    fn templated_map(
        &mut self,
        node: &Node,
        path: &str,
        scope: Scope,
        task: Option<&str>,
    ) -> IndexMap<String, Templated> {
        self.templated_map_spanned(node, path, scope, task).0
    }

    /// A mapping of templated values, with the span of each key.
    fn templated_map_spanned(
        &mut self,
        node: &Node,
        path: &str,
        scope: Scope,
        task: Option<&str>,
    ) -> (IndexMap<String, Templated>, IndexMap<String, EntrySpan>) {
        let mut out = IndexMap::new();
        let mut spans = IndexMap::new();
        if let Some(entries) = self.entries(node, &format!("`{path}`"), None) {
            for (k, v) in entries {
                let key = k.key_string();
                if out.contains_key(&key) {
                    continue;
                }
                let value = self.templated(v, &format!("{path}.{key}"), scope, task);
                spans.insert(
                    key.clone(),
                    EntrySpan {
                        key: k.span,
                        value: v.span,
                    },
                );
                out.insert(key, value);
            }
        }
        (out, spans)
    }

    /// A condition: must be a template (a plain string is always true — a classic mistake).
    fn condition(
        &mut self,
        node: &Node,
        path: &str,
        scope: Scope,
        task: Option<&str>,
    ) -> Option<Template> {
        match &node.kind {
            Kind::Str(s, _) if template::is_template(s) => self.compile(node, s, path, scope, task),
            Kind::Str(s, _) => {
                self.err(
                    Diagnostic::error(
                        "when.not_template",
                        node.span,
                        format!("{path} is the plain string `{s}`, which is always true"),
                    )
                    .with_help(format!(
                        "write the condition as a template: \"{{{{ {s} }}}}\""
                    )),
                );
                None
            }
            Kind::Bool(_) => {
                self.err(
                    Diagnostic::error(
                        "when.not_template",
                        node.span,
                        format!("{path} is a constant"),
                    )
                    .with_help("remove the condition, or write it as a template: \"{{ ... }}\""),
                );
                None
            }
            _ => {
                self.type_error(node, path, "a template string like \"{{ RESULT.ok }}\"");
                None
            }
        }
    }

    pub fn workflow(&mut self, root: &Node) -> Option<Workflow> {
        let entries = self.entries(root, "the workflow", Some(WORKFLOW_KEYS))?;
        if entries.is_empty() && matches!(root.kind, Kind::Null) {
            self.err(
                Diagnostic::error("schema.missing_key", root.span, "the file is empty")
                    .with_help("a workflow needs at least `name:` and `tasks:`"),
            );
            return None;
        }
        let get = |k: &str| root.get(k);

        let version = match get("version") {
            None => 1,
            Some(n) => match n.kind {
                Kind::Int(1) => 1,
                _ => {
                    self.err(
                        Diagnostic::error(
                            "workflow.version",
                            n.span,
                            "unsupported workflow `version`",
                        )
                        .with_help("this weft understands `version: 1`"),
                    );
                    1
                }
            },
        };
        let name = match get("name") {
            Some(n) => self.plain_string(n, "`name`").and_then(|s| {
                if is_workflow_name(&s) {
                    Some(s)
                } else {
                    self.err(
                        Diagnostic::error("workflow.invalid_name", n.span, format!("`{s}` is not a valid workflow name"))
                            .with_help("use letters, digits, `-`, `_` and `.`, starting with a letter or digit"),
                    );
                    None
                }
            }),
            None => {
                self.missing(root.span, "name", "the workflow", "add `name: my-workflow` at the top");
                None
            }
        };
        let description = get("description").and_then(|n| self.string(n, "`description`"));
        let timeout = get("timeout").and_then(|n| self.duration(n, "`timeout`"));

        let input = get("input")
            .map(|n| self.inputs(&as_mapping(n, true, true)))
            .unwrap_or_default();
        let vars = get("vars")
            .map(|n| self.templated_map(&as_mapping(n, false, false), "vars", Scope::Vars, None))
            .unwrap_or_default();
        for (name, _) in &vars {
            if !is_identifier(name) {
                let span = get("vars")
                    .and_then(|v| v.as_map())
                    .and_then(|m| m.iter().find(|(k, _)| k.key_string() == *name))
                    .map_or(root.span, |(k, _)| k.span);
                self.err(
                    Diagnostic::error(
                        "schema.invalid_name",
                        span,
                        format!("`{name}` is not a valid variable name"),
                    )
                    .with_help("use letters, digits and `_`, starting with a letter"),
                );
            }
        }
        let output = get("output")
            .map(|n| {
                self.templated_map(&as_mapping(n, false, false), "output", Scope::Output, None)
            })
            .unwrap_or_default();

        let tasks = match get("tasks") {
            Some(n) => self.tasks(n),
            None => {
                self.missing(
                    root.span,
                    "tasks",
                    "the workflow",
                    "add a `tasks:` mapping with at least one task",
                );
                IndexMap::new()
            }
        };
        if tasks.is_empty()
            && let Some(n) = get("tasks")
            && matches!(n.kind, Kind::Map(_) | Kind::Null)
        {
            self.err(
                Diagnostic::error("workflow.no_tasks", n.span, "`tasks` is empty")
                    .with_help("add at least one task"),
            );
        }
        let triggers = get("triggers")
            .map(|n| self.triggers(n))
            .unwrap_or_default();
        let concurrency = get("concurrency").and_then(|n| self.concurrency(n));

        Some(Workflow {
            version,
            name: name?,
            description,
            input,
            vars,
            tasks,
            output,
            timeout,
            triggers,
            concurrency,
            start_tasks: Vec::new(),
        })
    }

    /// `concurrency: 2` or `concurrency: {limit: 2, key: "{{ ORG.id }}"}`.
    fn concurrency(&mut self, node: &Node) -> Option<Concurrency> {
        match node.kind {
            Kind::Int(_) => {
                return self
                    .uint(node, "`concurrency`", 1)
                    .map(|limit| Concurrency { limit, key: None });
            }
            Kind::Map(_) => {}
            _ => {
                self.type_error(
                    node,
                    "`concurrency`",
                    "an integer or a mapping with `limit` (and `key`)",
                );
                return None;
            }
        }
        self.entries(node, "`concurrency`", Some(CONCURRENCY_KEYS))?;
        let key = node.get("key").and_then(|n| match n.kind {
            Kind::Str(..) => {
                Some(self.templated(n, "concurrency.key", Scope::ConcurrencyKey, None))
            }
            _ => {
                self.type_error(n, "`concurrency.key`", "a string (usually a template)");
                None
            }
        });
        let limit = match node.get("limit") {
            Some(n) => self.uint(n, "`concurrency.limit`", 1)?,
            None => {
                self.missing(
                    node.span,
                    "limit",
                    "`concurrency`",
                    "add `limit: 2` (how many executions may run at once)",
                );
                return None;
            }
        };
        Some(Concurrency { limit, key })
    }

    fn inputs(&mut self, node: &Node) -> IndexMap<String, InputParam> {
        let mut out = IndexMap::new();
        let Some(entries) = self.entries(node, "`input`", None) else {
            return out;
        };
        for (k, v) in entries {
            let name = k.key_string();
            if !is_identifier(&name) {
                self.err(
                    Diagnostic::error("schema.invalid_name", k.span, format!("`{name}` is not a valid input name"))
                        .with_help("use letters, digits and `_`, starting with a letter (it is read as CTX.<name>)"),
                );
            }
            if let Some(p) = self.input_param(&name, v) {
                out.entry(name).or_insert(p);
            }
        }
        out
    }

    fn input_param(&mut self, name: &str, node: &Node) -> Option<InputParam> {
        let what = format!("input `{name}`");
        let type_choices: Vec<(&str, InputType)> = [
            "string", "str", "integer", "int", "number", "float", "boolean", "bool", "object",
            "dict", "map", "array", "list", "any",
        ]
        .iter()
        .map(|n| (*n, InputType::parse(n).expect("listed names parse")))
        .collect();
        // Shorthand: `name: string`.
        if let Kind::Str(..) = node.kind {
            let ty = self.choice(node, &format!("type of {what}"), &type_choices)?;
            return Some(InputParam {
                ty,
                required: false,
                default: None,
                description: None,
                allowed: None,
                secret: false,
            });
        }
        self.entries(node, &what, Some(INPUT_KEYS))?;
        let ty = match node.get("type") {
            Some(t) => self
                .choice(t, &format!("`type` of {what}"), &type_choices)
                .unwrap_or(InputType::Any),
            None => InputType::Any,
        };
        let required = node
            .get("required")
            .and_then(|n| self.boolean(n, "`required`"))
            .unwrap_or(false);
        let secret = node
            .get("secret")
            .and_then(|n| self.boolean(n, "`secret`"))
            .unwrap_or(false);
        let description = node
            .get("description")
            .and_then(|n| self.string(n, "`description`"));
        let allowed = node.get("enum").and_then(|n| match &n.kind {
            Kind::Seq(items) => Some(items.iter().map(Node::to_json).collect::<Vec<_>>()),
            _ => {
                self.type_error(n, "`enum`", "a list of allowed values");
                None
            }
        });
        if let Some(lbl) = node.get("label") {
            self.string(lbl, "`label`");
        }
        let default = node.get("default").map(|d| {
            let v = d.to_json();
            if !v.is_null() && !ty.accepts(&v) {
                self.err(
                    Diagnostic::error(
                        "input.default_type",
                        d.span,
                        format!(
                            "default of {what} is {}, but its type is {}",
                            d.type_name(),
                            ty.name()
                        ),
                    )
                    .with_help("make the default match the declared type"),
                );
            } else if let Some(allowed) = &allowed
                && !allowed.contains(&v)
            {
                self.err(Diagnostic::error(
                    "input.default_not_allowed",
                    d.span,
                    format!("default of {what} is not one of its `enum` values"),
                ));
            }
            v
        });
        if required && default.is_some() {
            self.err(
                Diagnostic::warning(
                    "input.required_with_default",
                    node.get("required").map_or(node.span, |n| n.span),
                    format!("{what} is required but has a default, so it is never missing"),
                )
                .with_help("drop `required: true` or the default"),
            );
        }
        Some(InputParam {
            ty,
            required,
            default,
            description,
            allowed,
            secret,
        })
    }

    fn tasks(&mut self, node: &Node) -> IndexMap<String, Task> {
        let mut out = IndexMap::new();
        let Some(entries) = self.entries(node, "`tasks`", None) else {
            return out;
        };
        for (k, v) in entries {
            let name = k.key_string();
            if out.contains_key(&name) {
                continue;
            }
            if !is_task_name(&name) {
                self.err(
                    Diagnostic::error(
                        "task.invalid_name",
                        k.span,
                        format!("`{name}` is not a valid task name"),
                    )
                    .with_help(
                        "use letters, digits, `_` and `-` (snake_case reads best in TASKS.<name>)",
                    ),
                );
            }
            if let Some(task) = self.task(&name, k.span, v) {
                out.insert(name, task);
            }
        }
        out
    }

    fn task(&mut self, name: &str, key_span: Span, node: &Node) -> Option<Task> {
        let what = format!("task `{name}`");
        if self.entries(node, &what, Some(TASK_KEYS)).is_none() {
            if let Some(last) = self.diags.last_mut()
                && let Kind::Str(s, _) = &node.kind
            {
                last.help = Some(format!("a task is a mapping; did you mean `action: {s}`?"));
            }
            return Some(placeholder_task(name, key_span));
        }
        let t = Some(name);
        let action = match node.get("action") {
            Some(a) => self.plain_string(a, "`action`").map(|s| Spanned {
                value: s,
                span: a.span,
            }),
            None => {
                self.missing(
                    key_span,
                    "action",
                    &what,
                    "add `action: core.noop` (or the action to call; see `weft actions list`)",
                );
                None
            }
        };
        let description = node
            .get("description")
            .and_then(|n| self.string(n, "`description`"));
        let (input, input_spans) = node
            .get("input")
            .map(|n| {
                self.templated_map_spanned(n, &format!("tasks.{name}.input"), Scope::TaskInput, t)
            })
            .unwrap_or_default();
        let join = node.get("join").and_then(|n| match &n.kind {
            Kind::Str(s, _) if s == "all" => Some(Spanned {
                value: Join::All,
                span: n.span,
            }),
            Kind::Int(_) => self.uint(n, "`join`", 1).map(|c| Spanned {
                value: Join::Count(c),
                span: n.span,
            }),
            _ => {
                self.err(
                    Diagnostic::error(
                        "schema.invalid_value",
                        n.span,
                        "`join` must be `all` or a number of inbound routes",
                    )
                    .with_help("`join: all` waits for every inbound route; `join: 2` for any two"),
                );
                None
            }
        });
        let with = node.get("with").and_then(|n| self.with_items(name, n));
        let retry = node.get("retry").and_then(|n| self.retry(name, n));
        let timeout = node
            .get("timeout")
            .and_then(|n| self.duration(n, "`timeout`"));
        let delay = node.get("delay").and_then(|n| self.duration(n, "`delay`"));
        let transition_mode = node
            .get("transition_mode")
            .and_then(|n| {
                self.choice(
                    n,
                    "`transition_mode`",
                    &[
                        ("all", TransitionMode::All),
                        ("first", TransitionMode::First),
                        ("follow_all", TransitionMode::All),
                        ("follow_first", TransitionMode::First),
                    ],
                )
            })
            .unwrap_or_default();
        let run_as_org = node
            .get("run_as_org")
            .map(|n| self.templated(n, &format!("tasks.{name}.run_as_org"), Scope::RunAsOrg, t));
        let integration = node.get("integration").and_then(|n| self.integration(n));
        let next = match node.get("next") {
            None => Vec::new(),
            Some(n) => match &n.kind {
                Kind::Seq(items) => items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| self.route(name, i, r))
                    .collect(),
                Kind::Null => Vec::new(),
                _ => {
                    self.type_error(n, "`next`", "a list of routes (`- do: task`)");
                    Vec::new()
                }
            },
        };
        Some(Task {
            name: name.to_string(),
            description,
            // A task whose action is missing stays in the model (with an empty action the
            // checker skips) so its routes and references do not cascade into more errors.
            action: action.unwrap_or(Spanned {
                value: String::new(),
                span: key_span,
            }),
            input,
            input_spans,
            next,
            join,
            with,
            retry,
            timeout,
            delay,
            transition_mode,
            run_as_org,
            integration,
            span: key_span,
        })
    }

    fn with_items(&mut self, task: &str, node: &Node) -> Option<WithItems> {
        let path = format!("tasks.{task}.with.items");
        if let Kind::Str(..) | Kind::Seq(_) = node.kind {
            return Some(WithItems {
                items: self.templated(node, &path, Scope::WithItems, Some(task)),
                concurrency: None,
            });
        }
        self.entries(node, "`with`", Some(WITH_KEYS))?;
        let items = match node.get("items") {
            Some(n) => {
                if !matches!(n.kind, Kind::Str(..) | Kind::Seq(_)) {
                    self.type_error(n, "`with.items`", "a list or a template that gives a list");
                }
                self.templated(n, &path, Scope::WithItems, Some(task))
            }
            None => {
                self.missing(
                    node.span,
                    "items",
                    "`with`",
                    "add `items: \"{{ CTX.list }}\"`",
                );
                return None;
            }
        };
        let concurrency = node
            .get("concurrency")
            .and_then(|n| self.uint(n, "`with.concurrency`", 1));
        Some(WithItems { items, concurrency })
    }

    fn retry(&mut self, task: &str, node: &Node) -> Option<Retry> {
        if let Kind::Int(_) = node.kind {
            return self.uint(node, "`retry`", 0).map(|count| Retry {
                count,
                delay: Duration::ZERO,
                backoff: 1.0,
                max_delay: None,
                when: None,
            });
        }
        self.entries(node, "`retry`", Some(RETRY_KEYS))?;
        let count = match node.get("count") {
            Some(n) => self.uint(n, "`retry.count`", 0)?,
            None => {
                self.missing(
                    node.span,
                    "count",
                    "`retry`",
                    "add `count: 3` (retries after the first attempt)",
                );
                return None;
            }
        };
        let delay = node
            .get("delay")
            .and_then(|n| self.duration(n, "`retry.delay`"))
            .unwrap_or(Duration::ZERO);
        let max_delay = node
            .get("max_delay")
            .and_then(|n| self.duration(n, "`retry.max_delay`"));
        let backoff = match node.get("backoff") {
            None => 1.0,
            Some(n) => match n.kind {
                Kind::Int(i) if i >= 1 => i as f64,
                Kind::Float(f) if f >= 1.0 && f.is_finite() => f,
                _ => {
                    self.err(
                        Diagnostic::error(
                            "schema.invalid_value",
                            n.span,
                            "`retry.backoff` must be a number ≥ 1",
                        )
                        .with_help("1 keeps the delay constant; 2.0 doubles it after each retry"),
                    );
                    1.0
                }
            },
        };
        let when = node.get("when").and_then(|n| {
            self.condition(
                n,
                &format!("tasks.{task}.retry.when"),
                Scope::RetryWhen,
                Some(task),
            )
        });
        Some(Retry {
            count,
            delay,
            backoff,
            max_delay,
            when,
        })
    }

    fn integration(&mut self, node: &Node) -> Option<IntegrationOverride> {
        match &node.kind {
            Kind::Str(..) => self
                .plain_string(node, "`integration`")
                .map(IntegrationOverride::Instance),
            Kind::Map(_) => {
                let entries = self.entries(node, "`integration`", None)?;
                let mut out = IndexMap::new();
                for (k, v) in entries {
                    if let Some(s) = self.plain_string(v, "an integration instance name") {
                        out.insert(k.key_string(), s);
                    }
                }
                Some(IntegrationOverride::PerKind(out))
            }
            _ => {
                self.type_error(
                    node,
                    "`integration`",
                    "an instance name or a mapping of kind to instance name",
                );
                None
            }
        }
    }

    fn route(&mut self, task: &str, index: usize, node: &Node) -> Option<Route> {
        let path = format!("tasks.{task}.next[{index}]");
        // Shorthand: `- other_task`.
        if let Kind::Str(s, _) = &node.kind {
            return Some(Route {
                on: On::Success,
                when: None,
                publish: IndexMap::new(),
                targets: vec![Spanned {
                    value: s.clone(),
                    span: node.span,
                }],
                span: node.span,
            });
        }
        self.entries(node, &format!("`{path}`"), Some(ROUTE_KEYS))?;
        let on = node
            .get("on")
            .and_then(|n| {
                self.choice(
                    n,
                    "`on`",
                    &[
                        ("success", On::Success),
                        ("failure", On::Failure),
                        ("always", On::Always),
                    ],
                )
            })
            .unwrap_or(On::Success);
        let when = node
            .get("when")
            .and_then(|n| self.condition(n, &format!("{path}.when"), Scope::RouteWhen, Some(task)));
        let mut publish = IndexMap::new();
        if let Some(p) = node.get("publish") {
            let p = as_mapping(p, false, false);
            if let Some(entries) = self.entries(&p, "`publish`", None) {
                for (k, v) in entries {
                    let key = k.key_string();
                    if !is_identifier(&key) {
                        self.err(
                            Diagnostic::error("schema.invalid_name", k.span, format!("`{key}` is not a valid name to publish"))
                                .with_help("use letters, digits and `_`, starting with a letter (it is read as CTX.<name>)"),
                        );
                    }
                    self.publishes.push((key.clone(), k.span));
                    let value = self.templated(
                        v,
                        &format!("{path}.publish.{key}"),
                        Scope::Publish,
                        Some(task),
                    );
                    publish.entry(key).or_insert(value);
                }
            }
        }
        let targets = match node.get("do") {
            None => Vec::new(),
            Some(n) => match &n.kind {
                Kind::Str(s, _) => vec![Spanned {
                    value: s.clone(),
                    span: n.span,
                }],
                Kind::Seq(items) => items
                    .iter()
                    .filter_map(|i| {
                        self.plain_string(i, "a `do` entry").map(|s| Spanned {
                            value: s,
                            span: i.span,
                        })
                    })
                    .collect(),
                _ => {
                    self.type_error(n, "`do`", "a task name or a list of task names");
                    Vec::new()
                }
            },
        };
        if targets.is_empty() && publish.is_empty() && node.get("do").is_none() {
            self.err(
                Diagnostic::warning(
                    "route.empty",
                    node.span,
                    format!("{path} neither publishes nor starts a task"),
                )
                .with_help("add `do: <task>` or `publish:`, or remove the route"),
            );
        }
        Some(Route {
            on,
            when,
            publish,
            targets,
            span: node.span,
        })
    }

    fn triggers(&mut self, node: &Node) -> Vec<Trigger> {
        let Kind::Seq(items) = &node.kind else {
            if !matches!(node.kind, Kind::Null) {
                self.type_error(
                    node,
                    "`triggers`",
                    "a list of triggers (`- { name: ..., type: ... }`)",
                );
            }
            return Vec::new();
        };
        let mut out: Vec<Trigger> = Vec::new();
        for item in items {
            if let Some(t) = self.trigger(item) {
                if let Some(first) = out.iter().find(|o| o.name == t.name) {
                    let first_span = first.span;
                    self.err(
                        Diagnostic::error(
                            "trigger.duplicate_name",
                            item.get("name").map_or(item.span, |n| n.span),
                            format!("trigger name `{}` is used twice", t.name),
                        )
                        .with_related(first_span, "first used here")
                        .with_help("trigger names appear in webhook URLs; make them unique"),
                    );
                    continue;
                }
                out.push(t);
            }
        }
        out
    }

    fn trigger(&mut self, node: &Node) -> Option<Trigger> {
        let all_keys: Vec<&str> = TRIGGER_COMMON_KEYS
            .iter()
            .chain(WEBHOOK_KEYS)
            .chain(CRON_KEYS)
            .chain(AUTOTASK_KEYS)
            .chain(FORM_KEYS)
            .copied()
            .collect();
        self.entries(node, "a trigger", Some(&all_keys))?;
        let ty = self.trigger_type(node)?;
        let name = self.trigger_name(node, &ty)?;
        self.foreign_trigger_keys(node, &ty, &all_keys);
        let kind = match ty.as_str() {
            "always_pass" => TriggerKind::AlwaysPass,
            "webhook" => self.webhook_trigger(node),
            "cron" => self.cron_trigger(node)?,
            "form" => self.form_trigger(node)?,
            t => self.autotask_trigger(node, t),
        };
        let enabled = node
            .get("enabled")
            .and_then(|n| self.boolean(n, "`enabled`"))
            .unwrap_or(true);
        let run_for = self.run_for(node, &name);
        self.warn_unauthenticated(node, &name, &kind);
        let path = format!("triggers.{name}");
        let criteria = node
            .get("criteria")
            .and_then(|n| self.condition(n, &format!("{path}.criteria"), Scope::Criteria, None));
        let (input, input_spans) = node
            .get("input")
            .map(|n| {
                self.templated_map_spanned(n, &format!("{path}.input"), Scope::TriggerInput, None)
            })
            .unwrap_or_default();
        let integration = node.get("integration").and_then(|n| self.integration(n));
        Some(Trigger {
            name,
            kind,
            enabled,
            run_for,
            criteria,
            input,
            input_spans,
            integration,
            span: node.span,
        })
    }

    /// The trigger's `type` (`manual` read as `always_pass`); `None` when missing or unknown.
    fn trigger_type(&mut self, node: &Node) -> Option<String> {
        match node.get("type") {
            Some(n) => {
                let s = self.plain_string(n, "trigger `type`")?;
                if !TRIGGER_TYPES.contains(&s.as_str()) && s != "manual" {
                    self.err(
                        Diagnostic::error(
                            "trigger.unknown_type",
                            n.span,
                            format!("unknown trigger type `{s}`"),
                        )
                        .with_help(
                            did_you_mean(&s, TRIGGER_TYPES.iter().copied()).unwrap_or_else(|| {
                                format!("trigger types: {}", TRIGGER_TYPES.join(", "))
                            }),
                        ),
                    );
                    return None;
                }
                if s == "manual" {
                    Some("always_pass".to_string())
                } else {
                    Some(s)
                }
            }
            None => {
                self.missing(
                    node.span,
                    "type",
                    "a trigger",
                    "add `type: webhook` (or always_pass, cron, autotask.ticket, …)",
                );
                None
            }
        }
    }

    /// The trigger's `name`, by default its type with `-` for `.`; `None` when invalid.
    fn trigger_name(&mut self, node: &Node, ty: &str) -> Option<String> {
        match node.get("name") {
            Some(n) => self.plain_string(n, "trigger `name`").filter(|s| {
                let ok = is_task_name(s);
                if !ok {
                    self.err(
                        Diagnostic::error(
                            "schema.invalid_name",
                            n.span,
                            format!("`{s}` is not a valid trigger name"),
                        )
                        .with_help(
                            "use letters, digits, `_` and `-` (it is part of the webhook URL)",
                        ),
                    );
                }
                ok
            }),
            None => Some(ty.replace('.', "-")),
        }
    }

    /// Reports keys that belong to another trigger type than `ty`.
    fn foreign_trigger_keys(&mut self, node: &Node, ty: &str, all_keys: &[&str]) {
        let own = own_trigger_keys(ty);
        for (k, _) in node.as_map().unwrap_or_default() {
            let key = k.key_string();
            if !TRIGGER_COMMON_KEYS.contains(&key.as_str())
                && !own.contains(&key.as_str())
                && all_keys.contains(&key.as_str())
            {
                self.err(
                    Diagnostic::error(
                        "trigger.wrong_key",
                        k.span,
                        format!("`{key}` does not apply to a `{ty}` trigger"),
                    )
                    .with_help(if own.is_empty() {
                        format!(
                            "a `{ty}` trigger takes only the common keys: {}",
                            TRIGGER_COMMON_KEYS.join(", ")
                        )
                    } else {
                        format!("a `{ty}` trigger takes: {}", own.join(", "))
                    }),
                );
            }
        }
    }

    /// [`TriggerKind::Webhook`]: `secret`, `response`, `timeout`, `max_body`, `rate_limit`.
    fn webhook_trigger(&mut self, node: &Node) -> TriggerKind {
        TriggerKind::Webhook {
            secret: node
                .get("secret")
                .and_then(|n| match n.kind {
                    Kind::Bool(true) => Some(WebhookSecret::Required),
                    Kind::Bool(false) => Some(WebhookSecret::None),
                    _ => self.choice(
                        n,
                        "`secret`",
                        &[
                            ("required", WebhookSecret::Required),
                            ("none", WebhookSecret::None),
                        ],
                    ),
                })
                .unwrap_or_default(),
            response: node
                .get("response")
                .and_then(|n| {
                    self.choice(
                        n,
                        "`response`",
                        &[
                            ("accepted", WebhookResponse::Accepted),
                            ("wait", WebhookResponse::Wait),
                        ],
                    )
                })
                .unwrap_or_default(),
            wait_timeout: node
                .get("timeout")
                .and_then(|n| self.duration(n, "`timeout`")),
            max_body_bytes: node.get("max_body").and_then(|n| match &n.kind {
                Kind::Int(i) if *i > 0 => Some(*i as u64),
                Kind::Str(s, _) if parse_size(s).is_some() => parse_size(s),
                _ => {
                    self.err(
                        Diagnostic::error(
                            "schema.invalid_value",
                            n.span,
                            "`max_body` must be a size",
                        )
                        .with_help("write bytes or a size with a unit: 1048576, 512KiB, 1MiB"),
                    );
                    None
                }
            }),
            rate_limit: node
                .get("rate_limit")
                .and_then(|n| self.uint(n, "`rate_limit` (requests per second)", 1)),
        }
    }

    /// [`TriggerKind::Form`]: `form` (required: the form's name), `response`, `timeout`;
    /// `None` without a valid form name.
    fn form_trigger(&mut self, node: &Node) -> Option<TriggerKind> {
        let form = match node.get("form") {
            Some(n) => self.plain_string(n, "`form`").filter(|s| {
                let ok = is_workflow_name(s);
                if !ok {
                    self.err(
                        Diagnostic::error("trigger.invalid_form", n.span, format!("`{s}` is not a form name"))
                            .with_help("name the form as its file's `form:` does: letters, digits, `-`, `_` and `.`"),
                    );
                }
                ok
            }),
            None => {
                self.missing(node.span, "form", "a form trigger", "add `form: new-user` (the `form:` of the form file)");
                None
            }
        }?;
        let response = node
            .get("response")
            .and_then(|n| {
                self.choice(
                    n,
                    "`response`",
                    &[
                        ("accepted", WebhookResponse::Accepted),
                        ("wait", WebhookResponse::Wait),
                    ],
                )
            })
            .unwrap_or_default();
        let wait_timeout = node
            .get("timeout")
            .and_then(|n| self.duration(n, "`timeout`"));
        Some(TriggerKind::Form {
            form,
            response,
            wait_timeout,
        })
    }

    /// [`TriggerKind::Cron`]: `schedule` (required), `timezone`, `catch_up`; `None` without
    /// a valid schedule.
    fn cron_trigger(&mut self, node: &Node) -> Option<TriggerKind> {
        let schedule = match node.get("schedule") {
            Some(n) => self.plain_string(n, "`schedule`").filter(|s| {
                match crate::cron::Schedule::parse(s) {
                    Ok(_) => true,
                    Err(e) => {
                        self.err(Diagnostic::error("trigger.invalid_schedule", n.span, format!("`{s}` is not a cron schedule: {}", e.reason)).with_help("five fields `minute hour day-of-month month day-of-week` (e.g. `0 2 * * *`, `*/15 8-18 * * MON-FRI`), or @hourly, @daily, @weekly, @monthly, @yearly"));
                        false
                    }
                }
            }),
            None => {
                self.missing(node.span, "schedule", "a cron trigger", "add `schedule: \"0 2 * * *\"` (every day at 02:00)");
                None
            }
        };
        let timezone = node
            .get("timezone")
            .and_then(|n| self.plain_string(n, "`timezone`"))
            .filter(|tz| {
                let ok = jiff::tz::TimeZone::get(tz).is_ok();
                if !ok {
                    let span = node.get("timezone").map_or(node.span, |n| n.span);
                    self.err(
                        Diagnostic::error(
                            "trigger.invalid_timezone",
                            span,
                            format!("unknown time zone `{tz}`"),
                        )
                        .with_help("use an IANA name such as Europe/London or America/New_York"),
                    );
                }
                ok
            });
        let catch_up = node
            .get("catch_up")
            .and_then(|n| {
                self.choice(
                    n,
                    "`catch_up`",
                    &[("none", CatchUp::None), ("latest", CatchUp::Latest)],
                )
            })
            .unwrap_or_default();
        Some(TriggerKind::Cron {
            schedule: schedule?,
            timezone,
            catch_up,
        })
    }

    /// [`TriggerKind::Autotask`] for `autotask.<entity>`: `events` (default create and
    /// update) and `fields`.
    fn autotask_trigger(&mut self, node: &Node, ty: &str) -> TriggerKind {
        let entity = ty.trim_start_matches("autotask.").to_string();
        let events = match node.get("events") {
            None => vec![AutotaskEvent::Create, AutotaskEvent::Update],
            Some(n) => match &n.kind {
                Kind::Seq(items) => items
                    .iter()
                    .filter_map(|i| {
                        self.choice(
                            i,
                            "an event",
                            &[
                                ("create", AutotaskEvent::Create),
                                ("update", AutotaskEvent::Update),
                                ("delete", AutotaskEvent::Delete),
                            ],
                        )
                    })
                    .collect(),
                _ => {
                    self.type_error(n, "`events`", "a list of create, update, delete");
                    Vec::new()
                }
            },
        };
        let fields = match node.get("fields") {
            None => Vec::new(),
            Some(n) => match &n.kind {
                Kind::Seq(items) => items
                    .iter()
                    .filter_map(|i| self.plain_string(i, "a field name"))
                    .collect(),
                _ => {
                    self.type_error(n, "`fields`", "a list of field names");
                    Vec::new()
                }
            },
        };
        TriggerKind::Autotask {
            entity,
            events,
            fields,
        }
    }

    /// `run_for`: the owner org (default), every managed org, or the listed orgs.
    fn run_for(&mut self, node: &Node, name: &str) -> RunFor {
        match node.get("run_for") {
            None => RunFor::Owner,
            Some(n) => match &n.kind {
                Kind::Str(s, _) if s == "all_managed" => RunFor::AllManaged,
                Kind::Str(s, _) if s == "owner" => RunFor::Owner,
                Kind::Str(s, _) => RunFor::Orgs(vec![s.clone()]),
                Kind::Seq(items) if items.is_empty() => {
                    self.err(
                        Diagnostic::error(
                            "trigger.run_for_empty",
                            n.span,
                            format!("trigger `{name}`: `run_for` lists no organization"),
                        )
                        .with_help(
                            "list the orgs it runs for, or write `owner` or `all_managed` (or remove `run_for`)",
                        ),
                    );
                    RunFor::Owner
                }
                Kind::Seq(items) => RunFor::Orgs(
                    items
                        .iter()
                        .filter_map(|i| self.plain_string(i, "an organization name"))
                        .collect(),
                ),
                _ => {
                    self.type_error(
                        n,
                        "`run_for`",
                        "`owner`, `all_managed`, an org name or a list of org names",
                    );
                    RunFor::Owner
                }
            },
        }
    }

    /// Warns that a webhook trigger without a secret can be started by anyone.
    fn warn_unauthenticated(&mut self, node: &Node, name: &str, kind: &TriggerKind) {
        if let TriggerKind::Webhook {
            secret: WebhookSecret::None,
            ..
        } = &kind
        {
            let at = node.get("secret").map_or(node.span, |n| n.span);
            self.err(
                Diagnostic::warning(
                    "webhook.unauthenticated",
                    at,
                    format!(
                        "webhook trigger `{name}` takes requests without a secret: anyone who knows its URL can start the workflow, so it runs only for its owner org"
                    ),
                )
                .with_help(
                    "add `secret: required` and give each org's sender its own secret (`weft trigger secret WORKFLOW TRIGGER --org ORG`)",
                ),
            );
        }
    }
}

/// StackStorm/Orquesta write `input`, `vars`, `publish` and `output` as lists of one-key
/// mappings (`- ticket: "{{ ... }}"`), and inputs also as bare names or `- name: default`;
/// such a list is read as the mapping it means. Anything else is returned unchanged.
fn as_mapping(
    node: &Node,
    bare_names: bool,
    values_are_defaults: bool,
) -> std::borrow::Cow<'_, Node> {
    let Kind::Seq(items) = &node.kind else {
        return std::borrow::Cow::Borrowed(node);
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        match &item.kind {
            Kind::Map(m) if m.len() == 1 => {
                let (k, v) = m[0].clone();
                let v = if values_are_defaults {
                    let key = Node {
                        kind: Kind::Str("default".into(), Style::Plain),
                        span: v.span,
                    };
                    Node {
                        span: v.span,
                        kind: Kind::Map(vec![(key, v)]),
                    }
                } else {
                    v
                };
                entries.push((k, v));
            }
            Kind::Str(..) if bare_names => entries.push((
                item.clone(),
                Node {
                    kind: Kind::Null,
                    span: item.span,
                },
            )),
            _ => return std::borrow::Cow::Borrowed(node),
        }
    }
    std::borrow::Cow::Owned(Node {
        kind: Kind::Map(entries),
        span: node.span,
    })
}

/// Stands in for a task that could not be read, so references to it do not cascade.
fn placeholder_task(name: &str, span: Span) -> Task {
    Task {
        name: name.to_string(),
        description: None,
        action: Spanned {
            value: String::new(),
            span,
        },
        input: IndexMap::new(),
        input_spans: IndexMap::new(),
        next: Vec::new(),
        join: None,
        with: None,
        retry: None,
        timeout: None,
        delay: None,
        transition_mode: TransitionMode::All,
        run_as_org: None,
        integration: None,
        span,
    }
}

/// Maps a byte range inside a template back to the file, through the scalar's quoting.
///
/// The template text is the scalar's decoded value; the file holds it with quotes, escapes,
/// indentation and folding. Walking both side by side (a decoded character is matched to the
/// next equal character in the raw text, allowing a newline to stand for a folded space)
/// finds where each template character was written.
pub fn template_span(
    src: &str,
    scalar: Span,
    style: Style,
    decoded: &str,
    range: std::ops::Range<usize>,
) -> Span {
    let raw_end = (scalar.offset + scalar.len).min(src.len());
    let raw = &src[scalar.offset..raw_end];
    // Quoted scalars' spans start at the quote; block scalars' at their first content line.
    let mut raw_pos = match style {
        Style::SingleQuoted | Style::DoubleQuoted => 1.min(raw.len()),
        Style::Literal | Style::Folded | Style::Plain => 0,
    };
    let mut start_off = None;
    let mut end_off = scalar.offset + raw_pos;
    for (i, c) in decoded.char_indices() {
        if i >= range.end {
            break;
        }
        // Find c in the raw text, looking a short way ahead (escapes, indentation, folds).
        let window = &raw[raw_pos..];
        let found = window
            .char_indices()
            .take(64)
            .find(|(_, r)| *r == c || (c == ' ' && *r == '\n') || (c == '\n' && *r == '\n'))
            .map(|(j, r)| (j, r.len_utf8()));
        let here = match found {
            Some((j, len)) => {
                raw_pos += j + len;
                scalar.offset + raw_pos - len
            }
            None => scalar.offset + raw_pos,
        };
        if i >= range.start && start_off.is_none() {
            start_off = Some(here);
        }
        end_off = here + c.len_utf8();
    }
    let start = start_off.unwrap_or(scalar.offset).min(src.len());
    let end = end_off.max(start + 1).min(src.len().max(start));
    let line = src[..start].matches('\n').count() + 1;
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = src[line_start..start].chars().count() + 1;
    Span {
        offset: start,
        len: end.saturating_sub(start),
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orquesta_style_lists_read_as_mappings() {
        let src = "name: o\ninput:\n  - alert\n  - priority: 2\nvars:\n  - queue: 5\ntasks:\n  a:\n    action: x.y\n    next:\n      - publish:\n          - got: \"{{ RESULT }}\"\n        do: b\n  b:\n    action: x.y\noutput:\n  - got: \"{{ CTX.got }}\"\n";
        let root = crate::yaml::parse(src).unwrap();
        let mut r = Reader::new(src);
        let wf = r.workflow(&root).expect("parses");
        assert!(r.diags.is_empty(), "{:?}", r.diags);
        assert_eq!(
            wf.input.keys().collect::<Vec<_>>(),
            vec!["alert", "priority"]
        );
        assert_eq!(wf.input["priority"].default, Some(serde_json::json!(2)));
        assert!(wf.vars.contains_key("queue"));
        assert!(wf.tasks["a"].next[0].publish.contains_key("got"));
        assert!(wf.output.contains_key("got"));
    }

    fn read(src: &str) -> (Option<Workflow>, Vec<Diagnostic>) {
        let root = crate::yaml::parse(src).unwrap();
        let mut r = Reader::new(src);
        let wf = r.workflow(&root);
        (wf, r.diags)
    }

    const TASKS: &str = "tasks:\n  a:\n    action: x.y\n";

    #[test]
    fn form_triggers_name_their_form() {
        let (wf, diags) = read(&format!(
            "name: onboard\ntriggers:\n  - type: form\n    form: new-user\n    response: wait\n    timeout: 20s\n    run_for: all_managed\n{TASKS}"
        ));
        assert!(diags.is_empty(), "{diags:?}");
        let t = &wf.unwrap().triggers[0];
        assert_eq!(t.name, "form");
        assert!(matches!(
            &t.kind,
            TriggerKind::Form { form, response: WebhookResponse::Wait, wait_timeout: Some(d) }
                if form == "new-user" && d.as_secs() == 20
        ));
        let (_, diags) = read(&format!(
            "name: onboard\ntriggers:\n  - type: form\n    schedule: \"0 2 * * *\"\n{TASKS}"
        ));
        let at: Vec<(&str, usize)> = diags.iter().map(|d| (d.code, d.span.line)).collect();
        assert!(at.contains(&("trigger.wrong_key", 4)), "{at:?}");
        assert!(at.contains(&("schema.missing_key", 3)), "{at:?}");
    }

    #[test]
    fn concurrency_shorthand_and_mapping() {
        let (wf, diags) = read(&format!("name: c\nconcurrency: 2\n{TASKS}"));
        assert!(diags.is_empty(), "{diags:?}");
        let c = wf.unwrap().concurrency.expect("read");
        assert_eq!(c.limit, 2);
        assert!(c.key.is_none());

        let (wf, diags) = read(&format!(
            "name: c\nconcurrency:\n  limit: 3\n  key: \"{{{{ ORG.id }}}}\"\n{TASKS}"
        ));
        assert!(diags.is_empty(), "{diags:?}");
        let c = wf.unwrap().concurrency.expect("read");
        assert_eq!(c.limit, 3);
        assert!(matches!(c.key, Some(Templated::Template(_))));

        let (wf, _) = read(&format!("name: c\n{TASKS}"));
        assert!(
            wf.unwrap().concurrency.is_none(),
            "no limit unless declared"
        );
    }

    #[test]
    fn concurrency_limits_must_be_positive_integers() {
        let (_, diags) = read(&format!("name: c\nconcurrency: 0\n{TASKS}"));
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code, "schema.invalid_value");
        assert_eq!((diags[0].span.line, diags[0].span.column), (2, 14));
        assert!(
            diags[0].message.contains("at least 1"),
            "{}",
            diags[0].message
        );

        let (wf, diags) = read(&format!("name: c\nconcurrency:\n  limit: x\n{TASKS}"));
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code, "schema.type");
        assert_eq!((diags[0].span.line, diags[0].span.column), (3, 10));
        assert!(
            diags[0]
                .message
                .contains("`concurrency.limit` must be an integer")
        );
        assert!(wf.unwrap().concurrency.is_none());

        let (_, diags) = read(&format!("name: c\nconcurrency:\n  key: k\n{TASKS}"));
        assert_eq!(diags[0].code, "schema.missing_key", "{diags:?}");

        let (_, diags) = read(&format!("name: c\nconcurrency: [1]\n{TASKS}"));
        assert_eq!(diags[0].code, "schema.type", "{diags:?}");
    }

    #[test]
    fn concurrency_unknown_keys_suggest_the_right_one() {
        let (_, diags) = read(&format!(
            "name: c\nconcurrency:\n  key: x\n  limt: 1\n{TASKS}"
        ));
        assert_eq!(diags[0].code, "schema.unknown_key", "{diags:?}");
        assert_eq!((diags[0].span.line, diags[0].span.column), (4, 3));
        assert!(
            diags[0]
                .help
                .as_deref()
                .unwrap_or_default()
                .contains("`limit`"),
            "{:?}",
            diags[0].help
        );
        // A misspelt top-level key is pointed at `concurrency`.
        let (_, diags) = read(&format!("name: c\nconcurency: 1\n{TASKS}"));
        assert!(
            diags[0]
                .help
                .as_deref()
                .unwrap_or_default()
                .contains("concurrency"),
            "{diags:?}"
        );
    }

    #[test]
    fn concurrency_key_templates_are_checked_like_vars() {
        let src = format!(
            "name: c\ninput:\n  site: string\nconcurrency:\n  limit: 1\n  key: \"{{{{ CTX.site }}}}-{{{{ ORG.id }}}}\"\n{TASKS}"
        );
        let mut registry = crate::Registry::new();
        registry.register_spec(crate::ActionSpec {
            name: "x.y".into(),
            description: "does nothing".into(),
            params: serde_json::json!({"type": "object"}),
            local: false,
        });
        let loaded = crate::load(&src, &registry);
        let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{errors:?}");

        let bad = src.replace("CTX.site", "CTX.sight");
        let loaded = crate::load(&bad, &registry);
        assert!(
            loaded
                .diagnostics
                .iter()
                .any(|d| d.code == "template.unknown_ctx" && d.span.line == 6),
            "{:?}",
            loaded.diagnostics
        );
        let broken = src.replace("{{ ORG.id }}", "{{ ORG.id ");
        let loaded = crate::load(&broken, &registry);
        assert!(
            loaded
                .diagnostics
                .iter()
                .any(|d| d.code == "template.syntax" && d.span.line == 6),
            "{:?}",
            loaded.diagnostics
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1 parsec"), None);
    }

    #[test]
    fn cron_schedules_are_checked_by_the_scheduler_parser() {
        use crate::cron::Schedule;
        assert!(Schedule::parse("0 2 * * *").is_ok());
        assert!(Schedule::parse("*/5 * * * MON-FRI").is_ok());
        assert!(Schedule::parse("@hourly").is_ok());
        assert!(Schedule::parse("0 2 * *").is_err());
        assert!(Schedule::parse("@sometimes").is_err());
        let e = Schedule::parse("99 * * * *").unwrap_err();
        assert!(e.reason.contains("out of range"), "{e}");
    }

    #[test]
    fn template_offsets_map_through_quotes_and_blocks() {
        let src = "a: \"x {{ y + }}\"\nb: |\n  line one\n  {{ oops( }}\n";
        let root = crate::yaml::parse(src).unwrap();
        let a = root.get("a").unwrap();
        let sp = template_span(src, a.span, Style::DoubleQuoted, "x {{ y + }}", 2..4);
        assert_eq!((sp.line, sp.column), (1, 7));
        let b = root.get("b").unwrap();
        let text = "line one\n{{ oops( }}\n";
        let sp = template_span(src, b.span, Style::Literal, text, 9..11);
        assert_eq!((sp.line, sp.column), (4, 3));
    }
}
