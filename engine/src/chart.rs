//! Charts of an execution's task graph (`weft executions show ID --format mermaid|dot`): the
//! workflow's tasks as nodes styled by what happened to each, its routes as edges labelled by
//! their condition.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::model::{On, Route, Workflow};
use crate::store::{TaskRun, TaskStatus};

/// What happened to a task in one execution, as a chart shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Its last run succeeded.
    Succeeded,
    /// Its last run failed.
    Failed,
    /// No route to it fired.
    Skipped,
    /// Started, not finished.
    Running,
    /// Stopped by a cancel.
    Cancelled,
    /// No row at all: the execution ended (or has not yet come) before it.
    NotRun,
}

impl NodeState {
    const ALL: [NodeState; 6] = [
        NodeState::Succeeded,
        NodeState::Failed,
        NodeState::Skipped,
        NodeState::Running,
        NodeState::Cancelled,
        NodeState::NotRun,
    ];

    /// The words shown in the node.
    pub fn label(self) -> &'static str {
        match self {
            NodeState::Succeeded => "succeeded",
            NodeState::Failed => "failed",
            NodeState::Skipped => "skipped",
            NodeState::Running => "running",
            NodeState::Cancelled => "cancelled",
            NodeState::NotRun => "not run",
        }
    }

    /// A Mermaid class name (no space).
    fn class(self) -> &'static str {
        match self {
            NodeState::NotRun => "not_run",
            other => other.label(),
        }
    }

    /// Fill and border colours (the same in both formats).
    fn colours(self) -> (&'static str, &'static str) {
        match self {
            NodeState::Succeeded => ("#d4edda", "#28a745"),
            NodeState::Failed => ("#f8d7da", "#dc3545"),
            NodeState::Skipped => ("#e2e3e5", "#6c757d"),
            NodeState::Running => ("#fff3cd", "#ffc107"),
            NodeState::Cancelled => ("#ffe5d0", "#fd7e14"),
            NodeState::NotRun => ("#ffffff", "#adb5bd"),
        }
    }
}

/// Each task's state from an execution's task runs: its latest outcome (a task in a cycle
/// runs more than once), or running.
pub fn states(runs: &[TaskRun]) -> HashMap<String, NodeState> {
    let mut out = HashMap::new();
    // `outcomes` is in run order, so a later run of the same task overwrites an earlier one.
    for r in crate::executor::outcomes(runs) {
        let state = match r.status {
            TaskStatus::Succeeded => NodeState::Succeeded,
            TaskStatus::Failed => NodeState::Failed,
            TaskStatus::Skipped => NodeState::Skipped,
            TaskStatus::Running => NodeState::Running,
            TaskStatus::Cancelled => NodeState::Cancelled,
        };
        out.insert(r.task.clone(), state);
    }
    out
}

/// How a route's `on:` reads: `on success`, `on failure`, `always`.
pub fn on_label(on: On) -> &'static str {
    match on {
        On::Success => "on success",
        On::Failure => "on failure",
        On::Always => "always",
    }
}

/// The words on a route's edge: when it fires.
pub fn route_label(route: &Route) -> String {
    let on = on_label(route.on);
    match (&route.when, route.on) {
        (None, _) => on.to_string(),
        // `when:` alone already implies success, the default; saying both is noise.
        (Some(w), On::Success) => format!("when: {}", w.source().trim()),
        (Some(w), _) => format!("{on}, when: {}", w.source().trim()),
    }
}

/// One edge per (task, route, target), in file order.
fn edges(wf: &Workflow) -> Vec<(&str, &str, &Route)> {
    wf.tasks
        .values()
        .flat_map(|t| {
            t.next.iter().flat_map(move |r| {
                r.targets
                    .iter()
                    .map(move |target| (t.name.as_str(), target.value.as_str(), r))
            })
        })
        // A route naming an unknown task does not validate; skip it rather than invent a node.
        .filter(|(_, to, _)| wf.tasks.contains_key(*to))
        .collect()
}

/// Mermaid node ids: task names may hold `-`, `.` or a word Mermaid reserves (`end`), so
/// each becomes `t_` and its letters, digits and underscores, made unique.
fn mermaid_ids(wf: &Workflow) -> HashMap<&str, String> {
    let mut taken = HashSet::new();
    let mut out = HashMap::new();
    for name in wf.tasks.keys() {
        let base: String = std::iter::once("t_".to_string())
            .chain(name.chars().map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c.to_string()
                } else {
                    "_".to_string()
                }
            }))
            .collect();
        let mut id = base.clone();
        let mut n = 2;
        while !taken.insert(id.clone()) {
            id = format!("{base}_{n}");
            n += 1;
        }
        out.insert(name.as_str(), id);
    }
    out
}

/// Text inside a quoted Mermaid label: quotes and markup characters as entity codes.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '#' | '<' | '>' | '|' | '&' => {
                let _ = write!(out, "#{};", u32::from(c));
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The graph as a Mermaid `flowchart TD`.
pub fn mermaid(wf: &Workflow, states: &HashMap<String, NodeState>) -> String {
    let ids = mermaid_ids(wf);
    let mut out = String::from("flowchart TD\n");
    for name in wf.tasks.keys() {
        let state = states.get(name).copied().unwrap_or(NodeState::NotRun);
        let _ = writeln!(
            out,
            "    {}[\"{} ({})\"]:::{}",
            ids[name.as_str()],
            mermaid_text(name),
            state.label(),
            state.class()
        );
    }
    for (from, to, route) in edges(wf) {
        let _ = writeln!(
            out,
            "    {} -->|\"{}\"| {}",
            ids[from],
            mermaid_text(&route_label(route)),
            ids[to]
        );
    }
    for state in NodeState::ALL {
        let (fill, stroke) = state.colours();
        let dash = if state == NodeState::Skipped || state == NodeState::NotRun {
            ",stroke-dasharray:4 3"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "    classDef {} fill:{fill},stroke:{stroke},color:#212529{dash}",
            state.class()
        );
    }
    out
}

/// A DOT quoted string (`"…"`), escaping what DOT treats specially.
fn dot_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The graph as a Graphviz `digraph` (`dot -Tsvg` draws it).
pub fn dot(wf: &Workflow, states: &HashMap<String, NodeState>) -> String {
    let mut out = format!("digraph {} {{\n", dot_quote(&wf.name));
    out.push_str("    rankdir=TB;\n");
    out.push_str("    node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n");
    out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
    for name in wf.tasks.keys() {
        let state = states.get(name).copied().unwrap_or(NodeState::NotRun);
        let (fill, stroke) = state.colours();
        let dashed = if matches!(state, NodeState::Skipped | NodeState::NotRun) {
            ", style=\"rounded,filled,dashed\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "    {} [label={}, fillcolor=\"{fill}\", color=\"{stroke}\"{dashed}];",
            dot_quote(name),
            dot_quote(&format!("{name} ({})", state.label())),
        );
    }
    for (from, to, route) in edges(wf) {
        let colour = match route.on {
            On::Failure => ", color=\"#dc3545\"",
            On::Always => ", style=dashed",
            On::Success => "",
        };
        let _ = writeln!(
            out,
            "    {} -> {} [label={}{colour}];",
            dot_quote(from),
            dot_quote(to),
            dot_quote(&route_label(route)),
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsed without validation: the engine alone knows no action.
    fn workflow(yaml: &str) -> Workflow {
        let root = crate::parse_yaml(yaml).expect("yaml");
        crate::parse::Reader::new(yaml)
            .workflow(&root)
            .expect("parses")
    }

    const WF: &str = r#"
name: demo
tasks:
  fetch-data:
    action: core.noop
    next:
      - do: end
      - on: failure
        do: tell-ops
      - when: "{{ RESULT | length > 1 and CTX.x == \"a\" }}"
        do: end
  end: { action: core.noop }
  tell-ops: { action: core.noop }
"#;

    #[test]
    fn mermaid_ids_are_sanitised_and_labels_escaped() {
        let wf = workflow(WF);
        let mut states = HashMap::new();
        states.insert("fetch-data".to_string(), NodeState::Failed);
        let m = mermaid(&wf, &states);
        assert!(m.starts_with("flowchart TD\n"), "{m}");
        assert!(
            m.contains("    t_fetch_data[\"fetch-data (failed)\"]:::failed\n"),
            "{m}"
        );
        assert!(
            m.contains("    t_end[\"end (not run)\"]:::not_run\n"),
            "{m}"
        );
        assert!(
            m.contains("t_fetch_data -->|\"on failure\"| t_tell_ops\n"),
            "{m}"
        );
        assert!(
            m.contains(
                "t_fetch_data -->|\"when: {{ RESULT #124; length #62; 1 and CTX.x == #34;a#34; }}\"| t_end"
            ),
            "{m}"
        );
    }

    #[test]
    fn dot_quotes_names_and_labels_edges() {
        let wf = workflow(WF);
        let d = dot(&wf, &HashMap::new());
        assert!(d.starts_with("digraph \"demo\" {\n"), "{d}");
        assert!(
            d.contains("\"tell-ops\" [label=\"tell-ops (not run)\""),
            "{d}"
        );
        assert!(d.contains("CTX.x == \\\"a\\\" }}\"];"), "{d}");
        assert!(
            d.contains("\"fetch-data\" -> \"end\" [label=\"on success\"];"),
            "{d}"
        );
        assert!(d.ends_with("}\n"), "{d}");
    }
}
