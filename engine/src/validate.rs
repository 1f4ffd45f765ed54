//! Checks that need the whole workflow: routes, the DAG, joins, actions and their parameters,
//! and what templates refer to.

use std::collections::{BTreeSet, HashSet};

use crate::dag::Dag;
use crate::diagnostic::Diagnostic;
use crate::model::{Join, On, TransitionMode, TriggerKind, Workflow};
use crate::parse::{Scope, TemplateSite, template_span};
use crate::registry::Registry;
use crate::suggest::did_you_mean;
use crate::yaml::Span;

/// Names a template may start with.
pub const ROOT_NAMES: &[&str] = &[
    "CTX",
    "ORG",
    "RESULT",
    "TASKS",
    "WORKFLOW",
    "EXECUTION",
    "TRIGGER",
];

pub(crate) struct Checker<'a> {
    pub src: &'a str,
    pub wf: &'a Workflow,
    pub sites: &'a [TemplateSite],
    pub publishes: &'a [(String, Span)],
    pub registry: &'a Registry,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub fn run(mut self) -> Vec<Diagnostic> {
        let dag = Dag::build(&self.wf.tasks);
        self.actions();
        self.routes();
        self.graph(&dag);
        self.joins(&dag);
        self.templates();
        self.unused_publishes();
        self.triggers();
        self.diags
    }

    fn actions(&mut self) {
        for task in self.wf.tasks.values() {
            let name = &task.action.value;
            if name.is_empty() {
                continue; // already reported: the task has no readable `action`
            }
            let Some(spec) = self.registry.get(name) else {
                let names: Vec<&str> = self.registry.names().collect();
                let help = did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                    let ns = name.split('.').next().unwrap_or_default();
                    let same_ns: Vec<&str> = names
                        .iter()
                        .copied()
                        .filter(|n| n.starts_with(&format!("{ns}.")))
                        .take(8)
                        .collect();
                    if same_ns.is_empty() {
                        "`weft actions list` shows every registered action".to_string()
                    } else {
                        format!("actions in `{ns}`: {}", same_ns.join(", "))
                    }
                });
                self.diags.push(
                    Diagnostic::error(
                        "action.unknown",
                        task.action.span,
                        format!("task `{}`: unknown action `{name}`", task.name),
                    )
                    .with_help(help),
                );
                continue;
            };
            let params = spec.param_names();
            if !spec.allows_extra_params() {
                for key in task.input.keys() {
                    if !params.contains(&key.as_str()) {
                        let span = task
                            .input_spans
                            .get(key)
                            .map_or(task.action.span, |s| s.key);
                        self.diags.push(
                            Diagnostic::error(
                                "action.unknown_param",
                                span,
                                format!("task `{}`: `{name}` has no parameter `{key}`", task.name),
                            )
                            .with_help(
                                did_you_mean(key, params.iter().copied()).unwrap_or_else(|| {
                                    if params.is_empty() {
                                        format!("`{name}` takes no parameters")
                                    } else {
                                        format!("its parameters: {}", params.join(", "))
                                    }
                                }),
                            ),
                        );
                    }
                }
            }
            for required in spec.required_params() {
                if !task.input.contains_key(required) {
                    self.diags.push(
                        Diagnostic::error(
                            "action.missing_param",
                            task.action.span,
                            format!(
                                "task `{}`: `{name}` needs parameter `{required}`",
                                task.name
                            ),
                        )
                        .with_help(format!(
                            "add it under `input:`; `weft actions show {name}` describes it"
                        )),
                    );
                }
            }
            // Literal values of the wrong JSON type.
            if let Some(props) = spec.params.get("properties").and_then(|p| p.as_object()) {
                for (key, value) in &task.input {
                    let (Some(prop), Some(literal)) = (props.get(key), value.as_literal()) else {
                        continue;
                    };
                    if let Some(expected) = literal_mismatch(&spec.params, prop, &literal) {
                        let span = task
                            .input_spans
                            .get(key)
                            .map_or(task.action.span, |s| s.value);
                        self.diags.push(
                            Diagnostic::error(
                                "action.param_type",
                                span,
                                format!(
                                    "task `{}`: parameter `{key}` of `{name}` must be {expected}",
                                    task.name
                                ),
                            )
                            .with_help(format!(
                                "`weft actions show {name}` describes its parameters"
                            )),
                        );
                    }
                }
            }
        }
    }

    fn routes(&mut self) {
        let names: Vec<&str> = self.wf.tasks.keys().map(String::as_str).collect();
        for task in self.wf.tasks.values() {
            for route in &task.next {
                for target in &route.targets {
                    if !self.wf.tasks.contains_key(&target.value) {
                        self.diags.push(
                            Diagnostic::error(
                                "route.unknown_task",
                                target.span,
                                format!(
                                    "task `{}` routes to `{}`, which is not a task",
                                    task.name, target.value
                                ),
                            )
                            .with_help(
                                did_you_mean(&target.value, names.iter().copied())
                                    .unwrap_or_else(|| format!("tasks: {}", names.join(", "))),
                            ),
                        );
                    }
                }
            }
            if task.transition_mode == TransitionMode::First
                && let Some(pos) = task
                    .next
                    .iter()
                    .position(|r| r.when.is_none() && r.on == On::Success)
                && task.next[pos + 1..].iter().any(|r| r.on != On::Failure)
            {
                self.diags.push(
                    Diagnostic::warning(
                        "route.shadowed",
                        task.next[pos].span,
                        format!("task `{}` follows only the first matching route, and this one always matches on success", task.name),
                    )
                    .with_help("put unconditional routes last when `transition_mode: first`"),
                );
            }
        }
    }

    fn graph(&mut self, dag: &Dag) {
        let in_cycles = dag.in_cycles();
        for cycle in dag.cycles() {
            let first = &self.wf.tasks[&cycle[0]];
            let closing = &cycle[cycle.len() - 2];
            let closing_span = self.wf.tasks[closing]
                .next
                .iter()
                .flat_map(|r| &r.targets)
                .find(|t| t.value == cycle[0])
                .map_or(first.span, |t| t.span);
            self.diags.push(
                Diagnostic::error("dag.cycle", closing_span, format!("routes form a cycle: {}", cycle.join(" → ")))
                    .with_related(first.span, "the cycle starts here")
                    .with_help("routes must form a DAG; repeat work with `with.items`, `retry`, or a sub-workflow (core.workflow)"),
            );
        }
        let reachable = dag.reachable();
        for task in self.wf.tasks.values() {
            if !reachable.contains(task.name.as_str()) && !in_cycles.contains(&task.name) {
                self.diags.push(
                    Diagnostic::error(
                        "dag.unreachable",
                        task.span,
                        format!(
                            "task `{}` can never run: it is only reached from a cycle",
                            task.name
                        ),
                    )
                    .with_help(
                        "fix the cycle upstream, or route to this task from a task that runs",
                    ),
                );
            }
        }
    }

    fn joins(&mut self, dag: &Dag) {
        for task in self.wf.tasks.values() {
            let Some(join) = &task.join else { continue };
            let inbound = dag.inbound(&task.name);
            if inbound.len() <= 1 {
                let from = inbound
                    .first()
                    .map(|(s, _)| format!(" (from `{s}`)"))
                    .unwrap_or_default();
                self.diags.push(
                    Diagnostic::error(
                        "join.single_inbound",
                        join.span,
                        format!(
                            "task `{}` has `join` but {} inbound route{from}",
                            task.name,
                            if inbound.is_empty() { "no" } else { "a single" }
                        ),
                    )
                    .with_help("`join` waits for several routes into a task; remove it"),
                );
                continue;
            }
            if let Join::Count(n) = join.value
                && n as usize > inbound.len()
            {
                self.diags.push(
                    Diagnostic::error(
                        "join.too_large",
                        join.span,
                        format!(
                            "task `{}` waits for {n} routes but only {} lead to it",
                            task.name,
                            inbound.len()
                        ),
                    )
                    .with_help(format!(
                        "use a number up to {}, or `join: all`",
                        inbound.len()
                    )),
                );
            }
            if join.value == Join::All {
                self.exclusive_inbound(task.name.as_str(), join.span, &inbound);
            }
        }
    }

    /// `join: all` over routes that can never all fire: Rewst's UnreachableJoinError, caught early.
    fn exclusive_inbound(
        &mut self,
        task: &str,
        span: Span,
        inbound: &[(&str, crate::dag::RouteRef)],
    ) {
        for (i, (src_a, a)) in inbound.iter().enumerate() {
            for (src_b, b) in &inbound[i + 1..] {
                if src_a != src_b {
                    continue;
                }
                let source = &self.wf.tasks[*src_a];
                let (ra, rb) = (&source.next[a.route], &source.next[b.route]);
                let opposite = matches!(
                    (ra.on, rb.on),
                    (On::Success, On::Failure) | (On::Failure, On::Success)
                );
                let first_only = source.transition_mode == TransitionMode::First;
                if opposite || first_only {
                    let why = if opposite {
                        "one follows success and the other failure"
                    } else {
                        "the task follows only its first matching route"
                    };
                    self.diags.push(
                        Diagnostic::error(
                            "join.unsatisfiable",
                            span,
                            format!("task `{task}` joins all inbound routes, but two of them come from `{src_a}` and never both fire ({why})"),
                        )
                        .with_related(ra.span, "this route")
                        .with_related(rb.span, "excludes this one")
                        .with_help("use `join: 1` (or remove the join) to run after whichever branch fires"),
                    );
                    return;
                }
            }
        }
    }

    fn ctx_names(&self) -> BTreeSet<&'a str> {
        let publishes: &'a [(String, Span)] = self.publishes;
        self.wf
            .input
            .keys()
            .chain(self.wf.vars.keys())
            .map(String::as_str)
            .chain(publishes.iter().map(|(n, _)| n.as_str()))
            .collect()
    }

    fn templates(&mut self) {
        let ctx_names = self.ctx_names();
        let wf: &'a Workflow = self.wf;
        let sites: &'a [TemplateSite] = self.sites;
        let with_tasks: HashSet<&str> = wf
            .tasks
            .values()
            .filter(|t| t.with.is_some())
            .map(|t| t.name.as_str())
            .collect();
        let task_names: Vec<&str> = wf.tasks.keys().map(String::as_str).collect();
        for site in sites {
            let source = site.template.source();
            for name in site.template.referenced_names() {
                let mut parts = name.splitn(2, '.');
                let root = parts.next().unwrap_or_default();
                let attr = parts.next();
                if !ROOT_NAMES.contains(&root) {
                    let span = self.name_span(site, root);
                    self.diags.push(
                        Diagnostic::error(
                            "template.unknown_name",
                            span,
                            format!("{}: `{root}` is not defined", site.path),
                        )
                        .with_help(
                            did_you_mean(root, ROOT_NAMES.iter().copied()).unwrap_or_else(|| {
                                format!("templates can read {}", ROOT_NAMES.join(", "))
                            }),
                        ),
                    );
                    continue;
                }
                if root == "RESULT" && !site.scope.has_result() {
                    let span = self.name_span(site, root);
                    self.diags.push(
                        Diagnostic::error("template.result_out_of_scope", span, format!("{}: RESULT is only available in a task's `next` routes and `retry.when`", site.path))
                            .with_help("publish what you need from the task's route, then read it as CTX.<name>; or use TASKS.<task>.result"),
                    );
                }
                if root == "CTX"
                    && let Some(attr) = attr
                    && !ctx_names.contains(attr)
                {
                    let span = self.name_span(site, &name);
                    self.diags.push(
                        Diagnostic::error("template.unknown_ctx", span, format!("{}: `CTX.{attr}` is never defined (not an input, a var, or published)", site.path))
                            .with_help(did_you_mean(attr, ctx_names.iter().copied()).unwrap_or_else(|| "declare it under `input:` or `vars:`, or publish it from a route".into())),
                    );
                }
                if root == "TASKS"
                    && let Some(attr) = attr
                    && !self.wf.tasks.contains_key(attr)
                {
                    let span = self.name_span(site, &name);
                    self.diags.push(
                        Diagnostic::error(
                            "template.unknown_task",
                            span,
                            format!("{}: `TASKS.{attr}` names no task", site.path),
                        )
                        .with_help_opt(did_you_mean(attr, task_names.iter().copied())),
                    );
                }
            }
            for unknown in crate::template::unknown_filters_and_tests(source) {
                let span = template_span(
                    self.src,
                    site.span,
                    site.style,
                    source,
                    unknown.offset..unknown.offset + unknown.name.len(),
                );
                let code = if unknown.what == "filter" {
                    "template.unknown_filter"
                } else {
                    "template.unknown_test"
                };
                self.diags.push(
                    Diagnostic::error(
                        code,
                        span,
                        format!("{}: unknown {} `{}`", site.path, unknown.what, unknown.name),
                    )
                    .with_help(match unknown.suggestion {
                        Some(s) => crate::suggest::question(s),
                        None => "docs/templates.md lists every filter and test".to_string(),
                    }),
                );
            }
            if source.contains("item(") {
                let in_loop = site.task.as_deref().is_some_and(|t| with_tasks.contains(t))
                    && !matches!(
                        site.scope,
                        Scope::WithItems | Scope::RouteWhen | Scope::Publish
                    );
                if !in_loop {
                    let span = self.name_span(site, "item(");
                    self.diags.push(
                        Diagnostic::error("template.item_outside_loop", span, format!("{}: item() is only available in the input of a task with `with.items`", site.path))
                            .with_help("add `with: {{ items: ... }}` to the task, or read the list from CTX"),
                    );
                }
            }
            if matches!(site.scope, Scope::RouteWhen | Scope::RetryWhen) {
                for f in ["succeeded", "failed"] {
                    if let Some(pos) = uncalled(source, f) {
                        let span = template_span(
                            self.src,
                            site.span,
                            site.style,
                            source,
                            pos..pos + f.len(),
                        );
                        self.diags.push(
                            Diagnostic::warning("when.constant", span, format!("{}: `{f}` without parentheses is a function, which is always true", site.path))
                                .with_help(format!("call it: `{f}()`")),
                        );
                    }
                }
            }
        }
    }

    /// The span of the first occurrence of `needle` in a template, mapped into the file.
    fn name_span(&self, site: &TemplateSite, needle: &str) -> Span {
        let source = site.template.source();
        match find_token(source, needle) {
            Some(pos) => template_span(
                self.src,
                site.span,
                site.style,
                source,
                pos..pos + needle.len(),
            ),
            None => site.span,
        }
    }

    fn unused_publishes(&mut self) {
        let mut read: HashSet<String> = HashSet::new();
        let mut raw_sources = String::new();
        // A template that reads CTX as a whole (`CTX | tojson`) may read any published name.
        let mut whole_ctx = false;
        for site in self.sites {
            for name in site.template.referenced_names() {
                match name.strip_prefix("CTX.") {
                    Some(attr) => {
                        read.insert(attr.to_string());
                    }
                    None => whole_ctx |= name == "CTX",
                }
            }
            raw_sources.push_str(site.template.source());
            raw_sources.push('\n');
        }
        if whole_ctx {
            return;
        }
        for (name, span) in self.publishes {
            let dynamic = raw_sources.contains(&format!("CTX['{name}']"))
                || raw_sources.contains(&format!("CTX[\"{name}\"]"));
            if !read.contains(name) && !dynamic {
                self.diags.push(
                    Diagnostic::warning(
                        "publish.unused",
                        *span,
                        format!("`{name}` is published but never read"),
                    )
                    .with_help(format!(
                        "read it as `{{{{ CTX.{name} }}}}` (e.g. in `output:`), or remove it"
                    )),
                );
            }
        }
    }

    fn triggers(&mut self) {
        let inputs: Vec<&str> = self.wf.input.keys().map(String::as_str).collect();
        for trigger in &self.wf.triggers {
            for key in trigger.input.keys() {
                if !self.wf.input.contains_key(key) {
                    let span = trigger.input_spans.get(key).map_or(trigger.span, |s| s.key);
                    self.diags.push(
                        Diagnostic::error("trigger.unknown_input", span, format!("trigger `{}` sets input `{key}`, which the workflow does not declare", trigger.name))
                            .with_help(did_you_mean(key, inputs.iter().copied()).unwrap_or_else(|| "declare it under the workflow's `input:`".into())),
                    );
                }
            }
            if let TriggerKind::Cron { .. } = trigger.kind {
                for (name, param) in &self.wf.input {
                    if param.required
                        && param.default.is_none()
                        && !trigger.input.contains_key(name)
                    {
                        self.diags.push(
                            Diagnostic::error("trigger.missing_input", trigger.span, format!("cron trigger `{}` does not set required input `{name}`", trigger.name))
                                .with_help(format!("add `input: {{ {name}: ... }}` to the trigger, or give the input a default")),
                        );
                    }
                }
            }
        }
    }
}

/// Position of `word` used as a bare name (not followed by `(`, not part of a longer name).
fn uncalled(source: &str, word: &str) -> Option<usize> {
    source.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before_ok = i == 0 || {
            let b = source.as_bytes()[i - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        };
        let rest = &source[i + word.len()..];
        let after = rest.chars().next();
        let after_ok = !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        before_ok && after_ok && !rest.trim_start().starts_with('(')
    })
}

/// Where `needle` occurs in a template as a whole name: not preceded by a name character or
/// `.`, not followed by a name character (so `CTX.ticket` does not match `CTX.ticket_id`).
fn find_token(source: &str, needle: &str) -> Option<usize> {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    source.match_indices(needle).map(|(i, _)| i).find(|&i| {
        let before = source[..i].chars().next_back();
        let after = source[i + needle.len()..].chars().next();
        let before_ok = !before.is_some_and(|c| is_name(c) || c == '.');
        let after_ok = needle.ends_with('(') || !after.is_some_and(is_name);
        before_ok && after_ok
    })
}

/// What a literal parameter value should have been, if the action's schema refuses it.
/// Understands `type`, `enum`, `const`, `$ref` into the schema's definitions and
/// `anyOf`/`oneOf`; anything subtler is left to the action at run time.
fn literal_mismatch(
    root: &serde_json::Value,
    prop: &serde_json::Value,
    v: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value as J;
    if let Some(r) = prop.get("$ref").and_then(J::as_str) {
        let target = root.pointer(r.trim_start_matches('#'))?;
        return literal_mismatch(root, target, v);
    }
    if let Some(options) = prop
        .get("anyOf")
        .or_else(|| prop.get("oneOf"))
        .and_then(J::as_array)
    {
        let misses: Vec<String> = options
            .iter()
            .filter_map(|o| literal_mismatch(root, o, v))
            .collect();
        return (misses.len() == options.len()).then(|| misses.join(", or "));
    }
    if let Some(allowed) = prop.get("enum").and_then(J::as_array)
        && !allowed.contains(v)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or(a.to_string(), |s| format!("`{s}`")))
            .collect();
        return Some(format!("one of {}", names.join(", ")));
    }
    if let Some(c) = prop.get("const")
        && c != v
    {
        return Some(format!("{c}"));
    }
    let types: Vec<&str> = match prop.get("type") {
        Some(J::String(t)) => vec![t.as_str()],
        Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).collect(),
        _ => return None,
    };
    let ok = types.iter().any(|t| match *t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    });
    (!ok).then(|| {
        let wanted: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        let a = |t: &str| match t {
            "integer" | "object" | "array" => format!("an {t}"),
            "boolean" => "true or false".to_string(),
            other => format!("a {other}"),
        };
        wanted.iter().map(|t| a(t)).collect::<Vec<_>>().join(" or ")
    })
}
