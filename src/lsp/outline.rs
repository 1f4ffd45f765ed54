//! What the editor features need to know about a workflow, read from the engine's YAML tree
//! (which has a span for every key and value) rather than from the validated model: the tree
//! exists as soon as the text is YAML, while the model exists only once the workflow has no
//! errors — and a file being edited usually has some.

use weft_engine::yaml::{Kind, Node, Span};

/// The parts of a workflow file the editor features point at.
#[derive(Debug, Clone, Default)]
pub struct Outline {
    /// The top-level keys (`tasks`, `triggers`, …) with the spans of key and value.
    pub sections: Vec<Section>,
    pub tasks: Vec<TaskInfo>,
    pub triggers: Vec<TriggerInfo>,
    /// Every name a template can read as `CTX.<name>`, where it is defined, in file order.
    pub ctx: Vec<CtxDef>,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub key: Span,
    pub value: Span,
}

#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub name: String,
    pub key: Span,
    pub value: Span,
    pub action: Option<(String, Span)>,
    /// The task's `input:` parameters: name, key span, value node.
    pub input: Vec<(String, Span, Node)>,
    /// Every task a route names (`do:` or the `next: [task]` shorthand), where it is named.
    pub targets: Vec<(String, Span)>,
}

#[derive(Debug, Clone)]
pub struct TriggerInfo {
    /// The `name:` if written, else the type (what the engine names it by default).
    pub name: String,
    pub ty: Option<String>,
    pub span: Span,
    /// The `name:` value's span, else the whole trigger's.
    pub name_span: Span,
}

/// Where a `CTX.<name>` comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A workflow input, with its declared type and description when written.
    Input {
        ty: Option<String>,
        description: Option<String>,
    },
    /// A `vars:` entry.
    Var,
    /// Published by a route of this task.
    Published { task: String },
}

#[derive(Debug, Clone)]
pub struct CtxDef {
    pub name: String,
    /// The key that defines it.
    pub span: Span,
    pub origin: Origin,
}

impl Outline {
    pub fn read(root: &Node) -> Outline {
        let mut out = Outline::default();
        for (k, v) in root.as_map().unwrap_or_default() {
            out.sections.push(Section {
                name: k.key_string(),
                key: k.span,
                value: v.span,
            });
        }
        if let Some(input) = root.get("input") {
            for (name, span, value) in named_entries(input) {
                let origin = Origin::Input {
                    ty: value
                        .and_then(|v| v.get("type").or(Some(v)))
                        .and_then(Node::as_str)
                        .map(str::to_string),
                    description: value
                        .and_then(|v| v.get("description"))
                        .and_then(Node::as_str)
                        .map(str::to_string),
                };
                out.ctx.push(CtxDef { name, span, origin });
            }
        }
        if let Some(vars) = root.get("vars") {
            for (name, span, _) in named_entries(vars) {
                out.ctx.push(CtxDef {
                    name,
                    span,
                    origin: Origin::Var,
                });
            }
        }
        for (k, v) in root.get("tasks").and_then(Node::as_map).unwrap_or_default() {
            let task = task(k, v);
            for route in routes(v) {
                if let Some(publish) = route.get("publish") {
                    for (name, span, _) in named_entries(publish) {
                        out.ctx.push(CtxDef {
                            name,
                            span,
                            origin: Origin::Published {
                                task: task.name.clone(),
                            },
                        });
                    }
                }
            }
            out.tasks.push(task);
        }
        if let Some(Kind::Seq(items)) = root.get("triggers").map(|t| &t.kind) {
            for item in items {
                let ty = item.get("type").and_then(Node::as_str).map(str::to_string);
                let named = item.get("name").filter(|n| n.as_str().is_some());
                let name = named
                    .and_then(Node::as_str)
                    .map(str::to_string)
                    .or_else(|| ty.clone())
                    .unwrap_or_else(|| "trigger".to_string());
                out.triggers.push(TriggerInfo {
                    name,
                    ty,
                    span: item.span,
                    name_span: named.map_or(item.span, |n| n.span),
                });
            }
        }
        out
    }

    pub fn task(&self, name: &str) -> Option<&TaskInfo> {
        self.tasks.iter().find(|t| t.name == name)
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The definitions of `CTX.<name>` (a name may be published by several routes).
    pub fn ctx_defs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a CtxDef> + 'a {
        self.ctx.iter().filter(move |d| d.name == name)
    }
}

fn task(key: &Node, value: &Node) -> TaskInfo {
    let action = value
        .get("action")
        .and_then(|a| Some((a.as_str()?.to_string(), a.span)));
    let input = value
        .get("input")
        .and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.key_string(), k.span, v.clone()))
        .collect();
    let mut targets = Vec::new();
    for route in routes(value) {
        let named = match &route.kind {
            Kind::Str(..) => Some(route),
            _ => route.get("do"),
        };
        match named.map(|n| &n.kind) {
            Some(Kind::Str(s, _)) => {
                targets.push((s.clone(), named.map_or(route.span, |n| n.span)))
            }
            Some(Kind::Seq(items)) => targets.extend(
                items
                    .iter()
                    .filter_map(|i| Some((i.as_str()?.to_string(), i.span))),
            ),
            _ => {}
        }
    }
    TaskInfo {
        name: key.key_string(),
        key: key.span,
        value: value.span,
        action,
        input,
        targets,
    }
}

/// The routes of a task's `next:` (a list, or a single route written without one).
fn routes(task: &Node) -> Vec<&Node> {
    match task.get("next").map(|n| &n.kind) {
        Some(Kind::Seq(items)) => items.iter().collect(),
        Some(Kind::Map(_) | Kind::Str(..)) => task.get("next").into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The names a mapping defines, also in the Orquesta list forms (`- name`, `- name: value`):
/// each with its key's span and its value.
fn named_entries(node: &Node) -> Vec<(String, Span, Option<&Node>)> {
    match &node.kind {
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| (k.key_string(), k.span, Some(v)))
            .collect(),
        Kind::Seq(items) => items
            .iter()
            .filter_map(|item| match &item.kind {
                Kind::Str(s, _) => Some((s.clone(), item.span, None)),
                Kind::Map(entries) if entries.len() == 1 => {
                    let (k, v) = &entries[0];
                    Some((k.key_string(), k.span, Some(v)))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(src: &str) -> Outline {
        Outline::read(&weft_engine::yaml::parse(src).expect("yaml"))
    }

    #[test]
    fn reads_tasks_routes_and_ctx_names_in_every_form() {
        let src = "name: x\ninput:\n  alert: { type: object, description: The alert }\n  n: integer\nvars: [{ summary: hi }]\ntasks:\n  a:\n    action: core.noop\n    next:\n      - publish: { ticket: 1 }\n        do: [b, c]\n      - c\n  b:\n    action: core.echo\n    input: { message: hi }\n    next: { do: c, publish: [{ done: true }] }\n  c:\n    action: core.noop\ntriggers:\n  - { type: webhook }\n  - { name: nightly, type: cron }\n";
        let o = outline(src);
        let names: Vec<_> = o.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let targets: Vec<_> = o.tasks[0].targets.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(targets, ["b", "c", "c"]);
        assert_eq!(&src[o.tasks[0].targets[2].1.range()], "c");
        assert_eq!(o.tasks[1].targets[0].0, "c");
        assert_eq!(o.tasks[1].input[0].0, "message");
        let ctx: Vec<_> = o.ctx.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(ctx, ["alert", "n", "summary", "ticket", "done"]);
        assert_eq!(
            o.ctx[0].origin,
            Origin::Input {
                ty: Some("object".into()),
                description: Some("The alert".into())
            }
        );
        assert_eq!(
            o.ctx[1].origin,
            Origin::Input {
                ty: Some("integer".into()),
                description: None
            }
        );
        assert_eq!(o.ctx[3].origin, Origin::Published { task: "a".into() });
        let triggers: Vec<_> = o.triggers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(triggers, ["webhook", "nightly"]);
    }

    #[test]
    fn odd_shapes_yield_nothing_rather_than_failing() {
        for src in [
            "",
            "- a\n- b\n",
            "tasks: 3\n",
            "tasks:\n  a: core.noop\n",
            "triggers: {}\n",
        ] {
            let o = outline(src);
            assert!(o.ctx.is_empty(), "{src}");
        }
    }
}
