//! Reads a form file into [`crate::form::Form`], every problem with its location.

use std::collections::HashSet;

use serde_json::Value;

use super::{Reader, Scope, is_identifier, is_workflow_name};
use crate::diagnostic::Diagnostic;
use crate::form::{Choice, Field, FieldKind, Form, Item, Options, Pattern, humanise};
use crate::suggest::did_you_mean;
use crate::template::Template;
use crate::yaml::{Kind, Node};

const FORM_KEYS: &[&str] = &[
    "version",
    "form",
    "title",
    "description",
    "submit_label",
    "thank_you",
    "fields",
];

const FIELD_KEYS: &[&str] = &[
    "name",
    "type",
    "label",
    "help",
    "placeholder",
    "required",
    "default",
    "min",
    "max",
    "min_length",
    "max_length",
    "pattern",
    "pattern_message",
    "options",
    "options_from",
    "show_when",
    "secret",
];

const HEADING_KEYS: &[&str] = &["section", "help"];

impl Reader<'_> {
    /// A whole form file.
    pub fn form(&mut self, root: &Node) -> Option<Form> {
        let entries = self.entries(root, "the form", Some(FORM_KEYS))?;
        if entries.is_empty() {
            self.err(
                Diagnostic::error("schema.missing_key", root.span, "the file is empty")
                    .with_help("a form needs at least `form:` (its name) and `fields:`"),
            );
            return None;
        }
        if let Some(n) = root.get("version")
            && n.kind != Kind::Int(1)
        {
            self.err(
                Diagnostic::error("form.version", n.span, "unsupported form `version`")
                    .with_help("this weft understands `version: 1`"),
            );
        }
        let name = match root.get("form") {
            Some(n) => self.plain_string(n, "`form`").and_then(|s| {
                if is_workflow_name(&s) {
                    Some(s)
                } else {
                    self.err(
                        Diagnostic::error("form.invalid_name", n.span, format!("`{s}` is not a valid form name"))
                            .with_help("use letters, digits, `-`, `_` and `.`, starting with a letter or digit"),
                    );
                    None
                }
            }),
            None => {
                self.missing(root.span, "form", "the form", "add `form: new-user` (its name) at the top");
                None
            }
        };
        let text = |r: &mut Self, key: &str| {
            root.get(key)
                .and_then(|n| r.plain_string(n, &format!("`{key}`")))
        };
        let title = text(self, "title");
        let description = text(self, "description");
        let submit_label = text(self, "submit_label").unwrap_or_else(|| "Submit".into());
        let thank_you = root.get("thank_you").and_then(|n| {
            let s = self.string(n, "`thank_you`")?;
            self.compile(n, &s, "thank_you", Scope::Form, None)
        });
        let items = match root.get("fields") {
            Some(n) => self.form_items(n),
            None => {
                self.missing(root.span, "fields", "the form", "add a `fields:` list");
                Vec::new()
            }
        };
        let name = name?;
        Some(Form {
            title: title.unwrap_or_else(|| humanise(&name)),
            name,
            description,
            submit_label,
            thank_you,
            items,
        })
    }

    fn form_items(&mut self, node: &Node) -> Vec<Item> {
        let Kind::Seq(list) = &node.kind else {
            self.type_error(node, "`fields`", "a list of fields");
            return Vec::new();
        };
        if list.is_empty() {
            self.err(
                Diagnostic::error("form.no_fields", node.span, "`fields` is empty")
                    .with_help("add at least one field: `- name: first_name`"),
            );
        }
        let mut items = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (i, item) in list.iter().enumerate() {
            if item.get("section").is_some() {
                if let Some(h) = self.heading(item, i) {
                    items.push(h);
                }
                continue;
            }
            let Some(f) = self.form_field(item, i) else {
                continue;
            };
            if !seen.insert(f.name.clone()) {
                let span = item.get("name").map_or(item.span, |n| n.span);
                self.err(
                    Diagnostic::error(
                        "form.duplicate_field",
                        span,
                        format!("field `{}` is defined twice", f.name),
                    )
                    .with_help("each field needs its own `name`"),
                );
                continue;
            }
            items.push(Item::Field(Box::new(f)));
        }
        self.check_references(list, &items);
        items
    }

    fn heading(&mut self, node: &Node, i: usize) -> Option<Item> {
        let what = format!("`fields[{i}]` (a heading)");
        self.entries(node, &what, Some(HEADING_KEYS))?;
        let title = node
            .get("section")
            .and_then(|n| self.plain_string(n, "`section`"))?;
        let help = node
            .get("help")
            .and_then(|n| self.plain_string(n, "`help`"));
        Some(Item::Heading { title, help })
    }

    fn form_field(&mut self, node: &Node, i: usize) -> Option<Field> {
        let what = format!("`fields[{i}]`");
        self.entries(node, &what, Some(FIELD_KEYS))?;
        let name = match node.get("name") {
            Some(n) => {
                let s = self.plain_string(n, "a field's `name`")?;
                if !is_identifier(&s) {
                    self.err(
                        Diagnostic::error("form.invalid_field_name", n.span, format!("`{s}` is not a valid field name"))
                            .with_help("use letters, digits and `_`, starting with a letter (it becomes a template name: `values.first_name`)"),
                    );
                    return None;
                }
                s
            }
            None => {
                self.missing(
                    node.span,
                    "name",
                    &what,
                    "add `name: first_name` (or `section: Title` for a heading)",
                );
                return None;
            }
        };
        let kind = match node.get("type") {
            Some(n) => self.choice(n, &format!("the type of field `{name}`"), FieldKind::ALL)?,
            None => FieldKind::Text,
        };
        let get_str = |r: &mut Self, key: &str| {
            node.get(key)
                .and_then(|n| r.plain_string(n, &format!("`{key}` of field `{name}`")))
        };
        let label = get_str(self, "label").unwrap_or_else(|| humanise(&name));
        let help = get_str(self, "help");
        let placeholder = get_str(self, "placeholder");
        let flag = |r: &mut Self, key: &str| {
            node.get(key)
                .and_then(|n| r.boolean(n, &format!("`{key}` of field `{name}`")))
                .unwrap_or(false)
        };
        let required = flag(self, "required");
        let secret = flag(self, "secret");
        let number = |r: &mut Self, key: &str| {
            node.get(key)
                .and_then(|n| r.form_number(n, &format!("`{key}` of field `{name}`")))
        };
        let min = number(self, "min");
        let max = number(self, "max");
        let length = |r: &mut Self, key: &str| {
            node.get(key)
                .and_then(|n| r.uint(n, &format!("`{key}` of field `{name}`"), 0))
                .map(|n| n as usize)
        };
        let min_length = length(self, "min_length");
        let max_length = length(self, "max_length");
        let pattern = self.form_pattern(node, &name);
        let options = self.form_options(node, &name, kind);
        let show_when = node
            .get("show_when")
            .and_then(|n| self.form_condition(n, &name));
        let default = node.get("default").map(Node::to_json);
        let field = Field {
            name,
            kind,
            label,
            help,
            placeholder,
            required,
            default,
            min,
            max,
            min_length,
            max_length,
            pattern,
            options,
            show_when,
            secret,
        };
        self.field_consistency(node, &field);
        Some(field)
    }

    fn form_number(&mut self, node: &Node, what: &str) -> Option<f64> {
        match node.kind {
            Kind::Int(i) => Some(i as f64),
            Kind::Float(f) => Some(f),
            _ => {
                self.type_error(node, what, "a number");
                None
            }
        }
    }

    fn form_pattern(&mut self, node: &Node, name: &str) -> Option<Pattern> {
        let p = node.get("pattern")?;
        let source = self.plain_string(p, &format!("`pattern` of field `{name}`"))?;
        // The whole value must match, as in an HTML `pattern` attribute (checked on the
        // author's own text first, so an error quotes what they wrote).
        match regex::Regex::new(&source).and_then(|_| regex::Regex::new(&format!("^(?:{source})$")))
        {
            Ok(regex) => {
                let message = node
                    .get("pattern_message")
                    .and_then(|n| self.plain_string(n, "`pattern_message`"))
                    .unwrap_or_else(|| format!("{} is not in the expected format", humanise(name)));
                Some(Pattern { regex, message })
            }
            Err(e) => {
                self.err(
                    Diagnostic::error(
                        "form.pattern",
                        p.span,
                        format!("`pattern` of field `{name}` is not a regular expression: {e}"),
                    )
                    .with_help(
                        "write a regular expression for the whole value, like `[A-Z]{3}-\\d+`",
                    ),
                );
                None
            }
        }
    }

    fn form_options(&mut self, node: &Node, name: &str, kind: FieldKind) -> Options {
        let listed = node.get("options");
        let from = node.get("options_from");
        if !kind.has_options() {
            if let Some(n) = listed.or(from) {
                self.err(
                    Diagnostic::error(
                        "form.options_not_allowed",
                        n.span,
                        format!("field `{name}` is not a choice field; it takes no options"),
                    )
                    .with_help(
                        "use `type: select`, `multiselect` or `radio` for a field with options",
                    ),
                );
            }
            return Options::None;
        }
        match (listed, from) {
            (Some(_), Some(f)) => {
                self.err(
                    Diagnostic::error(
                        "form.options_twice",
                        f.span,
                        format!("field `{name}` has both `options` and `options_from`"),
                    )
                    .with_help(
                        "list the options, or name the workflow that returns them — not both",
                    ),
                );
                Options::None
            }
            (Some(n), None) => Options::Static(self.choices(n, name)),
            (None, Some(n)) => self.options_from(n, name),
            (None, None) => {
                self.err(
                    Diagnostic::error(
                        "form.no_options",
                        node.span,
                        format!("choice field `{name}` has no options"),
                    )
                    .with_help("add `options: [..]`, or `options_from: {workflow: list-contacts}`"),
                );
                Options::None
            }
        }
    }

    fn choices(&mut self, node: &Node, name: &str) -> Vec<Choice> {
        let Kind::Seq(items) = &node.kind else {
            self.type_error(node, &format!("`options` of field `{name}`"), "a list");
            return Vec::new();
        };
        let mut out: Vec<Choice> = Vec::new();
        for item in items {
            let choice = match &item.kind {
                Kind::Str(..) | Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => {
                    let v = scalar_text(item);
                    Some(Choice {
                        label: v.clone(),
                        value: v,
                    })
                }
                Kind::Map(_) => {
                    let what = format!("an option of field `{name}`");
                    self.entries(item, &what, Some(&["label", "value"]));
                    match item.get("value") {
                        Some(v) => {
                            let value = scalar_text(v);
                            let label =
                                item.get("label").map_or_else(|| value.clone(), scalar_text);
                            Some(Choice { label, value })
                        }
                        None => {
                            self.missing(
                                item.span,
                                "value",
                                &what,
                                "write `{label: Premium, value: bp}` or just `bp`",
                            );
                            None
                        }
                    }
                }
                _ => {
                    self.type_error(
                        item,
                        &format!("an option of field `{name}`"),
                        "a value or `{label, value}`",
                    );
                    None
                }
            };
            if let Some(c) = choice {
                if out.iter().any(|o| o.value == c.value) {
                    self.err(Diagnostic::error(
                        "form.duplicate_option",
                        item.span,
                        format!("option `{}` of field `{name}` is listed twice", c.value),
                    ));
                    continue;
                }
                out.push(c);
            }
        }
        out
    }

    fn options_from(&mut self, node: &Node, name: &str) -> Options {
        let what = format!("`options_from` of field `{name}`");
        let workflow = match &node.kind {
            Kind::Str(..) => self.plain_string(node, &what),
            _ => {
                if self
                    .entries(node, &what, Some(&["workflow", "depends_on"]))
                    .is_none()
                {
                    return Options::None;
                }
                match node.get("workflow") {
                    Some(w) => self.plain_string(w, &format!("{what}.workflow")),
                    None => {
                        self.missing(
                            node.span,
                            "workflow",
                            &what,
                            "name the workflow that returns `options: [{label, value}]`",
                        );
                        None
                    }
                }
            }
        };
        let depends_on = match node.get("depends_on") {
            Some(d) => match &d.kind {
                Kind::Seq(items) => items
                    .iter()
                    .filter_map(|i| self.plain_string(i, "a `depends_on` field"))
                    .collect(),
                Kind::Str(..) => self.plain_string(d, "`depends_on`").into_iter().collect(),
                _ => {
                    self.type_error(d, &format!("{what}.depends_on"), "a list of field names");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        match workflow {
            Some(workflow) => Options::Dynamic {
                workflow,
                depends_on,
            },
            None => Options::None,
        }
    }

    fn form_condition(&mut self, node: &Node, name: &str) -> Option<Template> {
        let s = self.string(node, &format!("`show_when` of field `{name}`"))?;
        // A bare expression reads as one: `values.remote` is `{{ values.remote }}`.
        let source = if crate::template::is_template(&s) {
            s
        } else {
            format!("{{{{ {s} }}}}")
        };
        self.compile(
            node,
            &source,
            &format!("fields.{name}.show_when"),
            Scope::Form,
            None,
        )
    }

    /// Limits that cannot hold together, defaults outside the options.
    fn field_consistency(&mut self, node: &Node, f: &Field) {
        let at = |key: &str| node.get(key).map_or(node.span, |n| n.span);
        if let (Some(min), Some(max)) = (f.min, f.max)
            && min > max
        {
            self.err(Diagnostic::error(
                "form.limits",
                at("min"),
                format!("field `{}`: `min` ({min}) is above `max` ({max})", f.name),
            ));
        }
        if let (Some(min), Some(max)) = (f.min_length, f.max_length)
            && min > max
        {
            self.err(Diagnostic::error(
                "form.limits",
                at("min_length"),
                format!(
                    "field `{}`: `min_length` ({min}) is above `max_length` ({max})",
                    f.name
                ),
            ));
        }
        let numeric_ok = f.kind.is_numeric() || f.kind == FieldKind::Multiselect;
        for key in ["min", "max"] {
            if !numeric_ok && node.get(key).is_some() {
                self.err(
                    Diagnostic::error("form.limit_not_allowed", at(key), format!("field `{}` ({:?}) takes no `{key}`", f.name, f.kind).to_lowercase())
                        .with_help("`min`/`max` bound numbers (and how many a multiselect may choose); use `min_length`/`max_length` for text"),
                );
            }
        }
        for key in ["min_length", "max_length", "pattern"] {
            if !f.kind.is_text() && node.get(key).is_some() {
                self.err(
                    Diagnostic::error("form.limit_not_allowed", at(key), format!("field `{}` is not a text field; it takes no `{key}`", f.name))
                        .with_help("`min_length`, `max_length` and `pattern` apply to text, textarea, email and hidden fields"),
                );
            }
        }
        if let (Options::Static(choices), Some(default)) = (&f.options, &f.default) {
            let values: Vec<String> = match default {
                Value::Array(a) => a.iter().map(json_text).collect(),
                other => vec![json_text(other)],
            };
            for v in values {
                if !choices.iter().any(|c| c.value == v) {
                    self.err(
                        Diagnostic::error(
                            "form.default_not_an_option",
                            at("default"),
                            format!(
                                "the default `{v}` of field `{}` is not one of its options",
                                f.name
                            ),
                        )
                        .with_help_opt(did_you_mean(&v, choices.iter().map(|c| c.value.as_str()))),
                    );
                }
            }
        }
    }

    /// `show_when` and `depends_on` may only name fields of this form.
    fn check_references(&mut self, list: &[Node], items: &[Item]) {
        let names: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                Item::Field(f) => Some(f.name.as_str()),
                Item::Heading { .. } => None,
            })
            .collect();
        for node in list {
            let Some(field) = node.get("name").and_then(Node::as_str) else {
                continue;
            };
            let Some(Item::Field(f)) = items
                .iter()
                .find(|i| matches!(i, Item::Field(f) if f.name == field))
            else {
                continue;
            };
            if let Some(t) = &f.show_when {
                let read = t.referenced_names();
                let fields = read
                    .iter()
                    .filter_map(|n| n.strip_prefix("values.").map(str::to_string));
                for path in fields.collect::<Vec<_>>() {
                    if !names.contains(&path.as_str()) {
                        let span = node.get("show_when").map_or(node.span, |n| n.span);
                        self.err(
                            Diagnostic::error("form.unknown_field", span, format!("`show_when` of field `{field}` reads `values.{path}`, which is not a field of this form"))
                                .with_help_opt(did_you_mean(&path, names.iter().copied())),
                        );
                    }
                }
            }
            if let Options::Dynamic { depends_on, .. } = &f.options {
                for d in depends_on {
                    if !names.contains(&d.as_str()) || d == field {
                        let span = node.get("options_from").map_or(node.span, |n| n.span);
                        self.err(
                            Diagnostic::error("form.unknown_field", span, format!("field `{field}` depends on `{d}`, which is not another field of this form"))
                                .with_help_opt(did_you_mean(d, names.iter().copied())),
                        );
                    }
                }
            }
        }
    }
}

/// The text of a scalar option (`5` → "5").
fn scalar_text(node: &Node) -> String {
    json_text(&node.to_json())
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::form::{FieldKind, Item, Options};
    use serde_json::json;

    const NEW_USER: &str = r#"version: 1
form: new-user
title: New starter
fields:
  - section: The person
  - name: first_name
    required: true
    max_length: 64
  - name: start_date
    type: date
    required: true
  - name: licence
    type: select
    options:
      - {label: Business Premium, value: bp}
      - e3
    default: bp
  - name: remote
    type: checkbox
  - name: laptop
    type: select
    options: [x1, t14]
    show_when: values.remote
  - name: manager
    type: select
    options_from: {workflow: list-contacts, depends_on: [licence]}
  - name: ticket_id
    type: hidden
"#;

    #[test]
    fn a_form_file_reads_into_fields_and_headings() {
        let loaded = crate::load_form(NEW_USER);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let form = loaded.form.unwrap();
        assert_eq!(
            (form.name.as_str(), form.title.as_str()),
            ("new-user", "New starter")
        );
        assert!(matches!(&form.items[0], Item::Heading { title, .. } if title == "The person"));
        let first = form.field("first_name").unwrap();
        assert_eq!(
            (first.label.as_str(), first.kind, first.required),
            ("First name", FieldKind::Text, true)
        );
        let licence = form.field("licence").unwrap();
        assert!(
            matches!(&licence.options, Options::Static(c) if c.len() == 2 && c[1].label == "e3")
        );
        assert_eq!(licence.default, Some(json!("bp")));
        assert!(
            matches!(&form.field("manager").unwrap().options, Options::Dynamic { workflow, depends_on } if workflow == "list-contacts" && depends_on == &["licence"])
        );
        assert!(form.field("laptop").unwrap().show_when.is_some());
        assert!(crate::is_form_source(NEW_USER));
    }

    fn errors(src: &str) -> Vec<(String, usize, usize, String)> {
        crate::load_form(src)
            .diagnostics
            .into_iter()
            .map(|d| (d.code.to_string(), d.span.line, d.span.column, d.message))
            .collect()
    }

    #[test]
    fn mistakes_are_reported_where_they_are() {
        let src = "form: f\nfields:\n  - name: a\n    type: dropdown\n  - name: b\n    type: select\n  - name: c\n    show_when: values.nope\n  - name: c\n  - name: d\n    type: integer\n    min: 5\n    max: 1\n    pattern: '[a-z]'\n";
        let e = errors(src);
        let has = |code: &str, line: usize| e.iter().any(|(c, l, _, _)| c == code && *l == line);
        assert!(has("schema.invalid_value", 4), "{e:?}");
        assert!(has("form.no_options", 5), "{e:?}");
        assert!(has("form.unknown_field", 8), "{e:?}");
        assert!(has("form.duplicate_field", 9), "{e:?}");
        assert!(has("form.limits", 12), "{e:?}");
        assert!(has("form.limit_not_allowed", 14), "{e:?}");
        let typo = errors("form: f\nfields:\n  - name: a\n    lable: A\n");
        assert_eq!(typo[0].0, "schema.unknown_key");
        assert_eq!((typo[0].1, typo[0].2), (4, 5));
    }

    #[test]
    fn a_default_must_be_an_option_and_a_pattern_must_compile() {
        let e = errors(
            "form: f\nfields:\n  - name: a\n    type: radio\n    options: [x, y]\n    default: z\n  - name: b\n    pattern: '('\n",
        );
        assert!(
            e.iter()
                .any(|(c, l, _, _)| c == "form.default_not_an_option" && *l == 6),
            "{e:?}"
        );
        assert!(
            e.iter().any(|(c, l, _, _)| c == "form.pattern" && *l == 8),
            "{e:?}"
        );
    }
}
