//! Completion: what may be written at the cursor, from where the cursor is
//! ([`super::context`]), the document's outline and the catalog of actions and schemas.

use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, Documentation, MarkupContent,
    MarkupKind, Range, TextEdit,
};
use std::path::Path;

use serde_json::Value;
use weft_engine::template::catalog;

use super::context::{self, Cursor, NameKind, Spot};
use super::outline::{Origin, Outline};
use super::text::Lines;
use super::{Catalog, Document, FileKind};

/// Completions at byte `offset` of the document.
pub fn complete(doc: &Document, catalog: &Catalog, offset: usize) -> Vec<CompletionItem> {
    let schema = match doc.kind {
        FileKind::Workflow => &catalog.workflow_schema,
        FileKind::Form => &catalog.form_schema,
        FileKind::Manifest | FileKind::Test | FileKind::Other => return Vec::new(),
    };
    let offset = offset.min(doc.text.len());
    let cursor = context::cursor(&doc.text, offset);
    let lines = Lines::new(&doc.text);
    let edit = Edit {
        range: lines.byte_range(cursor.word_start..offset.max(cursor.word_start)),
    };
    let empty = Outline::default();
    let outline = doc.outline.as_ref().unwrap_or(&empty);
    let keys = cursor.keys();
    let candidates = match (&cursor.spot, keys.as_slice()) {
        (Spot::Template { expr }, _) => template(expr, outline),
        _ if doc.kind == FileKind::Form => schema_items(schema, &cursor),
        // The word at the cursor, as the edit replaces it (after a space, nothing yet).
        (Spot::Value { key, .. }, ["tasks", _]) if key == "action" => {
            actions(catalog, &doc.text[cursor.word_start.min(offset)..offset])
        }
        (Spot::Value { key, .. }, ["tasks", task, "next", "-"]) if key == "do" => {
            tasks(outline, task)
        }
        (Spot::Value { key, .. }, ["tasks", task]) if key == "next" => tasks(outline, task),
        (Spot::Item { .. }, ["tasks", task, "next"] | ["tasks", task, "next", "-", "do"]) => {
            tasks(outline, task)
        }
        (Spot::Key { .. }, ["tasks", _, "input"]) => {
            let action = context::child_value(&doc.text, cursor.path[1].line, "action");
            let present = present_keys(outline, keys[1]);
            params(catalog, action, &present)
        }
        (Spot::Value { key, .. }, ["tasks", _, "input"]) => {
            let action = context::child_value(&doc.text, cursor.path[1].line, "action");
            action
                .and_then(|a| catalog.registry.get(a))
                .and_then(|spec| spec.params.get("properties")?.get(key.as_str()))
                .map(|p| enum_values(p, &spec_root(catalog, &doc.text, &cursor)))
                .unwrap_or_default()
        }
        (Spot::Key { .. }, ["triggers", "-"]) => {
            let ty = context::child_value(&doc.text, cursor.path[1].line, "type").unwrap_or("");
            let own: Vec<&str> = weft_engine::parse::trigger_keys(ty).collect();
            schema_items(schema, &cursor)
                .into_iter()
                .filter(|c| ty.is_empty() || own.contains(&c.label.as_str()))
                .collect()
        }
        _ => schema_items(schema, &cursor),
    };
    candidates.into_iter().map(|c| c.item(&edit)).collect()
}

/// Completions at byte `offset` of a workflow test file saved as `path`: its keys, the
/// tested workflow's tasks (and the actions) under `mocks:`, task names and statuses under
/// `expect:`. The tested workflow is read from disk (`workflow:`, else the file's name).
pub fn complete_test(
    doc: &Document,
    catalog: &Catalog,
    offset: usize,
    path: Option<&Path>,
) -> Vec<CompletionItem> {
    use weft_service::workflow_tests::file as t;
    let offset = offset.min(doc.text.len());
    let cursor = context::cursor(&doc.text, offset);
    let lines = Lines::new(&doc.text);
    let edit = Edit {
        range: lines.byte_range(cursor.word_start..offset.max(cursor.word_start)),
    };
    let tested = || tested_workflow(&doc.text, path).unwrap_or_default();
    let words = |list: &[&str], kind| -> Vec<Candidate> {
        list.iter()
            .map(|k| {
                let mut c = Candidate::new(*k, kind);
                if kind == CompletionItemKind::PROPERTY {
                    c.insert = Some(format!("{k}: "));
                }
                c
            })
            .collect()
    };
    let keys = cursor.keys();
    let key = CompletionItemKind::PROPERTY;
    let candidates = match (&cursor.spot, keys.as_slice()) {
        (Spot::Key { .. }, []) => words(t::FILE_KEYS, key),
        (Spot::Key { .. }, ["defaults"]) => words(t::DEFAULT_KEYS, key),
        (Spot::Key { .. }, ["cases", "-"]) => words(t::CASE_KEYS, key),
        (Spot::Key { .. }, [.., "mocks"]) => {
            let mut out = keyed(tasks(&tested(), ""));
            out.extend(keyed(actions(catalog, "")));
            out
        }
        (Spot::Key { .. }, [.., "mocks", _] | [.., "mocks", _, "-"]) => words(t::MOCK_KEYS, key),
        (Spot::Key { .. }, [.., "org"] | [.., "msp"]) => words(t::ORG_KEYS, key),
        (Spot::Key { .. }, [.., "trigger"]) => words(t::TRIGGER_KEYS, key),
        (Spot::Key { .. }, ["cases", "-", "expect"]) => words(t::EXPECT_KEYS, key),
        (
            Spot::Key { .. },
            [
                "cases",
                "-",
                "expect",
                "attempts" | "inputs" | "results" | "tasks",
            ],
        ) => keyed(tasks(&tested(), "")),
        (Spot::Item { .. }, ["cases", "-", "expect", "ran" | "not_ran"]) => tasks(&tested(), ""),
        (Spot::Value { key, .. }, ["cases", "-", "expect"]) if key == "ran" || key == "not_ran" => {
            tasks(&tested(), "")
        }
        (Spot::Value { key, .. }, ["cases", "-", "expect"]) if key == "status" => {
            words(t::STATUSES, CompletionItemKind::ENUM_MEMBER)
        }
        (Spot::Value { key, .. }, [.., "mocks", _]) if key == "action" => actions(catalog, ""),
        _ => Vec::new(),
    };
    candidates.into_iter().map(|c| c.item(&edit)).collect()
}

/// Candidates written as mapping keys (`fetch: `).
fn keyed(list: Vec<Candidate>) -> Vec<Candidate> {
    list.into_iter()
        .map(|mut c| {
            c.insert = Some(format!("{}: ", c.label));
            c
        })
        .collect()
}

/// The outline of the workflow a test file tests, found as `weft test` finds it.
fn tested_workflow(text: &str, path: Option<&Path>) -> Option<Outline> {
    let named = text
        .lines()
        .find_map(|l| l.strip_prefix("workflow:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string());
    let file = weft_service::workflow_tests::workflow_file(path?, named.as_deref())?;
    let source = std::fs::read_to_string(file).ok()?;
    Some(Outline::read(&weft_engine::yaml::parse(&source).ok()?))
}

/// The schema of the action whose input the cursor is in (for `$ref`s inside it).
fn spec_root(catalog: &Catalog, text: &str, cursor: &Cursor) -> Value {
    context::child_value(text, cursor.path[1].line, "action")
        .and_then(|a| catalog.registry.get(a))
        .map(|s| s.params.clone())
        .unwrap_or(Value::Null)
}

/// Where a completion goes: over the word typed so far.
struct Edit {
    range: Range,
}

/// A completion before it is placed.
struct Candidate {
    label: String,
    kind: CompletionItemKind,
    detail: Option<String>,
    doc: Option<String>,
    /// What is inserted, when not the label (`name: ` for a key).
    insert: Option<String>,
}

impl Candidate {
    fn new(label: impl Into<String>, kind: CompletionItemKind) -> Candidate {
        Candidate {
            label: label.into(),
            kind,
            detail: None,
            doc: None,
            insert: None,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Candidate {
        self.detail = Some(detail.into());
        self
    }

    fn doc(mut self, doc: Option<String>) -> Candidate {
        self.doc = doc.filter(|d| !d.is_empty());
        self
    }

    fn item(self, edit: &Edit) -> CompletionItem {
        let new_text = self.insert.unwrap_or_else(|| self.label.clone());
        CompletionItem {
            filter_text: Some(self.label.clone()),
            label: self.label,
            kind: Some(self.kind),
            detail: self.detail,
            documentation: self.doc.map(|value| {
                Documentation::MarkupContent(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value,
                })
            }),
            // An explicit edit over the whole word: editors split words at `.`, and
            // `autotask.` + `autotask.create_ticket` must not become `autotask.autotask.…`.
            text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                range: edit.range,
                new_text,
            })),
            ..CompletionItem::default()
        }
    }
}

/// The registered actions; with a namespace typed (`autotask.`), only that namespace's.
fn actions(catalog: &Catalog, partial: &str) -> Vec<Candidate> {
    let namespace = partial.rfind('.').map_or("", |i| &partial[..=i]);
    catalog
        .registry
        .specs()
        .filter(|s| s.name.starts_with(namespace))
        .map(|s| {
            Candidate::new(&s.name, CompletionItemKind::FUNCTION)
                .detail(&s.description)
                .doc(catalog.action_docs.get(&s.name).cloned())
        })
        .collect()
}

/// The tasks a route of `from` may start (all but `from`: a task cannot follow itself); with
/// `from` empty, every task.
fn tasks(outline: &Outline, from: &str) -> Vec<Candidate> {
    outline
        .tasks
        .iter()
        .filter(|t| t.name != from)
        .map(|t| {
            let action = t.action.as_ref().map_or("", |a| a.0.as_str());
            Candidate::new(&t.name, CompletionItemKind::REFERENCE).detail(action)
        })
        .collect()
}

/// The parameters already written in a task's `input:`.
fn present_keys<'a>(outline: &'a Outline, task: &str) -> Vec<&'a str> {
    outline
        .task(task)
        .map(|t| t.input.iter().map(|(k, ..)| k.as_str()).collect())
        .unwrap_or_default()
}

/// An action's parameters not written yet, required ones first.
fn params(catalog: &Catalog, action: Option<&str>, present: &[&str]) -> Vec<Candidate> {
    let Some(spec) = action.and_then(|a| catalog.registry.get(a)) else {
        return Vec::new();
    };
    let required = spec.required_params();
    let Some(props) = spec.params.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out: Vec<Candidate> = props
        .iter()
        .filter(|(name, _)| !present.contains(&name.as_str()))
        .map(|(name, prop)| {
            let ty = crate::cmd::actions::type_of(prop, &spec.params);
            let req = if required.contains(&name.as_str()) {
                "required"
            } else {
                "optional"
            };
            let mut c = Candidate::new(name, CompletionItemKind::PROPERTY)
                .detail(format!("{ty}, {req}"))
                .doc(description(prop));
            c.insert = Some(format!("{name}: "));
            c
        })
        .collect();
    out.sort_by_key(|c| !c.detail.as_deref().is_some_and(|d| d.ends_with("required")));
    out
}

fn description(schema: &Value) -> Option<String> {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The values a schema allows, when it lists them (`enum`, `const`, through `$ref` and
/// `oneOf`/`anyOf`).
fn enum_values(schema: &Value, root: &Value) -> Vec<Candidate> {
    let mut out = Vec::new();
    for alt in alternatives(schema, root) {
        let listed = alt
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .chain(alt.get("const").cloned());
        for v in listed {
            let label = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            if !out.iter().any(|c: &Candidate| c.label == label) {
                out.push(
                    Candidate::new(label, CompletionItemKind::ENUM_MEMBER).doc(description(alt)),
                );
            }
        }
    }
    out
}

/// A schema and the alternatives it offers (`$ref` followed, `oneOf`/`anyOf` spread).
fn alternatives<'a>(schema: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let mut todo = vec![schema];
    while let Some(s) = todo.pop() {
        // Schemas are trees with a few references: a bound keeps a cyclic one finite.
        if out.len() > 64 {
            break;
        }
        if let Some(target) = s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| root.pointer(r.trim_start_matches('#')))
        {
            todo.push(target);
            continue;
        }
        out.push(s);
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = s.get(key).and_then(Value::as_array) {
                todo.extend(alts.iter().rev());
            }
        }
    }
    out
}

/// The schemas that describe what is at `path` (`-` for a list's item).
fn schemas_at<'a>(root: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut here = vec![root];
    for key in path {
        here = here
            .into_iter()
            .flat_map(|s| alternatives(s, root))
            .filter_map(|s| {
                if *key == "-" {
                    s.get("items")
                } else {
                    s.get("properties")
                        .and_then(|p| p.get(*key))
                        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                }
            })
            .collect();
    }
    here
}

/// Keys (or a key's values) the file's schema allows at the cursor.
fn schema_items(schema: &Value, cursor: &Cursor) -> Vec<Candidate> {
    let keys = cursor.keys();
    match &cursor.spot {
        Spot::Key { .. } => {
            let mut out: Vec<Candidate> = Vec::new();
            for s in schemas_at(schema, &keys)
                .into_iter()
                .flat_map(|s| alternatives(s, schema))
            {
                for (name, prop) in s
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if !out.iter().any(|c| &c.label == name) {
                        let mut c = Candidate::new(name, CompletionItemKind::PROPERTY)
                            .doc(description(prop));
                        c.insert = Some(format!("{name}: "));
                        out.push(c);
                    }
                }
            }
            out
        }
        Spot::Value { key, .. } => {
            let mut path = keys.clone();
            path.push(key);
            schemas_at(schema, &path)
                .into_iter()
                .flat_map(|s| enum_values(s, schema))
                .collect()
        }
        Spot::Item { .. } | Spot::Template { .. } => Vec::new(),
    }
}

/// Completions inside a template expression: filters after `|`, tests after `is`, the names
/// under `CTX.`, `TASKS.` and `ORG.`, else the names and functions in scope.
fn template(expr: &str, outline: &Outline) -> Vec<Candidate> {
    let before = expr.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_');
    let entries = |list: &mut dyn Iterator<Item = &'static catalog::Entry>, what: &str| {
        list.map(|e| {
            Candidate::new(e.name, CompletionItemKind::FUNCTION)
                .detail(what)
                .doc(Some(e.doc.to_string()))
        })
        .collect()
    };
    match context::name_kind(before) {
        NameKind::Filter => entries(&mut catalog::filters(), "filter"),
        NameKind::Test => entries(&mut catalog::tests(), "test"),
        NameKind::Member(q) => match q.split('.').collect::<Vec<_>>().as_slice() {
            ["CTX"] => ctx(outline),
            ["TASKS"] => tasks(outline, ""),
            ["TASKS", _] => [
                ("status", "`succeeded`, `failed`, `skipped`…"),
                ("result", "The task's result"),
                ("error", "The task's error, when it failed"),
            ]
            .into_iter()
            .map(|(n, d)| Candidate::new(n, CompletionItemKind::FIELD).detail(d))
            .collect(),
            ["ORG"] => ORG_FIELDS
                .iter()
                .map(|(n, d)| Candidate::new(*n, CompletionItemKind::FIELD).detail(*d))
                .collect(),
            _ => Vec::new(),
        },
        NameKind::Root => weft_engine::ROOT_NAMES
            .iter()
            .map(|n| Candidate::new(*n, CompletionItemKind::VARIABLE))
            .chain(FUNCTIONS.iter().map(|(n, d)| {
                let mut c = Candidate::new(*n, CompletionItemKind::FUNCTION).detail(*d);
                c.insert = Some(format!("{n}()"));
                c
            }))
            .collect(),
    }
}

/// The `CTX.` names, each once, with where it comes from.
fn ctx(outline: &Outline) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for d in &outline.ctx {
        if out.iter().any(|c| c.label == d.name) {
            continue;
        }
        out.push(
            Candidate::new(&d.name, CompletionItemKind::VARIABLE)
                .detail(super::hover::origin_text(&d.origin))
                .doc(match &d.origin {
                    Origin::Input { description, .. } => description.clone(),
                    _ => None,
                }),
        );
    }
    out
}

const ORG_FIELDS: &[(&str, &str)] = &[
    ("id", "The org's id"),
    ("name", "The org's name"),
    ("parent", "The parent org"),
    ("TAGS", "The org's tags"),
    ("VARIABLES", "Variables, inherited down the org tree"),
    (
        "MAPPING",
        "External ids per integration (`ORG.MAPPING.autotask`)",
    ),
    ("ATTRIBUTES", "The company's fields from the PSA sync"),
    ("CONTACTS", "Active contacts from the directory sync"),
    (
        "CONFIGURATIONS",
        "Active configuration items from the directory sync",
    ),
    ("LOCATIONS", "Active locations from the directory sync"),
    ("FORMS", "Deployed forms with the org's standing link"),
    (
        "HAS_TAG",
        "`ORG.HAS_TAG('vip')`: does the org have the tag?",
    ),
];

const FUNCTIONS: &[(&str, &str)] = &[
    ("item", "The current item of a `with.items` task"),
    ("succeeded", "Did the task succeed? (routes, retry.when)"),
    ("failed", "Did the task fail? (routes, retry.when)"),
    (
        "now",
        "The execution clock: `now('Europe/Paris', '%Y-%m-%d')`",
    ),
    ("uuid4", "A random UUID"),
    (
        "form_link",
        "A signed link to a form: `form_link('name', prefill={…})`",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::new(weft_actions::registry())
    }

    /// The labels offered at `‸` in `src`.
    fn labels(catalog: &Catalog, src: &str) -> Vec<String> {
        let offset = src.find('‸').expect("a cursor");
        let text = src.replacen('‸', "", 1);
        let doc = Document::new(None, text);
        complete(&doc, catalog, offset)
            .into_iter()
            .map(|i| i.label)
            .collect()
    }

    const HEAD: &str = "name: x\ninput:\n  alert: object\nvars:\n  summary: hi\n";

    #[test]
    fn actions_by_namespace() {
        let c = catalog();
        let got = labels(&c, &format!("{HEAD}tasks:\n  a:\n    action: autotask.‸\n"));
        assert!(got.iter().any(|l| l == "autotask.create_ticket"), "{got:?}");
        assert!(got.iter().all(|l| l.starts_with("autotask.")), "{got:?}");
        let got = labels(&c, &format!("{HEAD}tasks:\n  a:\n    action: ‸\n"));
        assert!(got.iter().any(|l| l == "core.noop"));
    }

    #[test]
    fn the_edit_replaces_the_whole_dotted_name() {
        let c = catalog();
        let src = "tasks:\n  a:\n    action: autotask.cre‸\n";
        let offset = src.find('‸').unwrap();
        let doc = Document::new(None, src.replacen('‸', "", 1));
        let items = complete(&doc, &c, offset);
        let Some(CompletionTextEdit::Edit(edit)) = &items[0].text_edit else {
            panic!("no edit");
        };
        assert_eq!(edit.range.start.character, "    action: ".len() as u32);
        assert_eq!(
            edit.range.end.character,
            "    action: autotask.cre".len() as u32
        );
    }

    #[test]
    fn parameters_of_the_tasks_action() {
        let c = catalog();
        let src = "tasks:\n  a:\n    action: core.fail\n    input:\n      ‸\n";
        let got = labels(&c, src);
        assert!(got.iter().any(|l| l == "message"), "{got:?}");
        let src = "tasks:\n  a:\n    input:\n      ‸\n    action: core.fail\n";
        assert!(labels(&c, src).iter().any(|l| l == "message"));
    }

    #[test]
    fn route_targets_are_the_other_tasks() {
        let c = catalog();
        let src = "tasks:\n  a:\n    action: core.noop\n    next:\n      - do: ‸\n  b:\n    action: core.noop\n  c:\n    action: core.noop\n";
        assert_eq!(labels(&c, src), ["b", "c"]);
        let src =
            "tasks:\n  a:\n    action: core.noop\n    next: [‸]\n  b:\n    action: core.noop\n";
        assert_eq!(labels(&c, src), ["b"]);
    }

    #[test]
    fn template_names_filters_and_tests() {
        let c = catalog();
        let wf = |t: &str| {
            format!(
                "{HEAD}tasks:\n  a:\n    action: core.echo\n    input:\n      message: \"{t}\"\n    next:\n      - publish: {{ ticket: 1 }}\n        do: b\n  b:\n    action: core.noop\n"
            )
        };
        assert_eq!(labels(&c, &wf("{{ CTX.‸")), ["alert", "summary", "ticket"]);
        assert_eq!(labels(&c, &wf("{{ TASKS.‸")), ["a", "b"]);
        let filters = labels(&c, &wf("{{ CTX.alert | tru‸"));
        assert!(filters.iter().any(|l| l == "truncate"));
        assert!(filters.iter().any(|l| l == "from_json"));
        let tests = labels(&c, &wf("{{ CTX.alert is not ‸"));
        assert!(tests.iter().any(|l| l == "defined"));
        assert!(labels(&c, &wf("{{ ‸")).iter().any(|l| l == "CTX"));
    }

    #[test]
    fn keys_from_the_schema_and_trigger_types() {
        let c = catalog();
        let got = labels(&c, "name: x\n‸\ntasks: {}\n");
        assert!(got.iter().any(|l| l == "tasks"), "{got:?}");
        let got = labels(&c, "tasks:\n  a:\n    action: core.noop\n    ‸\n");
        assert!(got.iter().any(|l| l == "retry"), "{got:?}");
        let got = labels(&c, "triggers:\n  - type: ‸\ntasks: {}\n");
        assert!(got.iter().any(|l| l == "cron"), "{got:?}");
        let got = labels(&c, "triggers:\n  - type: cron\n    ‸\ntasks: {}\n");
        assert!(got.iter().any(|l| l == "schedule"), "{got:?}");
        assert!(!got.iter().any(|l| l == "secret"), "{got:?}");
        let got = labels(&c, "tasks:\n  a:\n    next:\n      - on: ‸\n");
        assert_eq!(got, ["success", "failure", "always"]);
    }

    #[test]
    fn form_files_complete_their_keys() {
        let c = catalog();
        let got = labels(&c, "form: f\n‸\nfields: []\n");
        assert!(got.iter().any(|l| l == "thank_you"), "{got:?}");
    }
}
