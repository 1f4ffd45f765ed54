//! Hosted forms: the model of a form file and the one rule for what a submission may hold.
//!
//! A form file (`forms/new-user.yaml`) names the form with a top-level `form:` key (a workflow
//! has `name:`), lists its fields and headings, and says what the person sees after
//! submitting. [`crate::load_form`] reads it with file:line:column diagnostics; [`Form::check`]
//! decides whether submitted values are acceptable — the browser shows the same rules, but
//! only this check counts.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::template::Template;

/// One form.
#[derive(Debug, Clone)]
pub struct Form {
    /// `form:` — the form's name (`new-user`), unique per deployment.
    pub name: String,
    /// The page's heading.
    pub title: String,
    /// Shown under the title.
    pub description: Option<String>,
    /// The submit button's text.
    pub submit_label: String,
    /// The confirmation page's message (a template over `form.values`) when the workflow's
    /// output is not awaited.
    pub thank_you: Option<Template>,
    /// Fields and headings, in page order.
    pub items: Vec<Item>,
}

/// A line of the page.
#[derive(Debug, Clone)]
pub enum Item {
    /// A section heading (`- section: Person`), with optional text under it.
    Heading {
        /// The heading.
        title: String,
        /// Text under the heading.
        help: Option<String>,
    },
    /// An input.
    Field(Box<Field>),
}

/// The kinds of field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// Several lines of text.
    Textarea,
    /// An e-mail address.
    Email,
    /// A number (may have a fraction).
    Number,
    /// A whole number.
    Integer,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A local date and time, `YYYY-MM-DDTHH:MM`.
    Datetime,
    /// One of the options, in a list.
    Select,
    /// Any of the options.
    Multiselect,
    /// Yes or no.
    Checkbox,
    /// One of the options, as buttons.
    Radio,
    /// Not shown; its value comes from `default` or a signed prefill.
    Hidden,
}

impl FieldKind {
    /// Every kind by its YAML name.
    pub const ALL: &'static [(&'static str, FieldKind)] = &[
        ("text", FieldKind::Text),
        ("textarea", FieldKind::Textarea),
        ("email", FieldKind::Email),
        ("number", FieldKind::Number),
        ("integer", FieldKind::Integer),
        ("date", FieldKind::Date),
        ("datetime", FieldKind::Datetime),
        ("select", FieldKind::Select),
        ("multiselect", FieldKind::Multiselect),
        ("checkbox", FieldKind::Checkbox),
        ("radio", FieldKind::Radio),
        ("hidden", FieldKind::Hidden),
    ];

    /// Does this kind choose among options?
    pub fn has_options(self) -> bool {
        matches!(
            self,
            FieldKind::Select | FieldKind::Multiselect | FieldKind::Radio
        )
    }

    /// Is its value text (so `min_length`, `max_length` and `pattern` apply)?
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldKind::Text | FieldKind::Textarea | FieldKind::Email | FieldKind::Hidden
        )
    }

    /// Is its value a number (so `min` and `max` apply)?
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldKind::Number | FieldKind::Integer)
    }
}

/// One option of a choice field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// What the person sees.
    pub label: String,
    /// What the workflow gets.
    pub value: String,
}

/// Where a choice field's options come from.
#[derive(Debug, Clone, Default)]
pub enum Options {
    /// Not a choice field.
    #[default]
    None,
    /// Listed in the file.
    Static(Vec<Choice>),
    /// Returned by an options-generator workflow run in the org's context with the values of
    /// the fields it depends on; it answers `options: [{label, value}]`.
    Dynamic {
        /// The workflow's name.
        workflow: String,
        /// The fields whose values it is given (and whose change refreshes it).
        depends_on: Vec<String>,
    },
}

/// A `pattern` and what to say when a value does not match it.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The regular expression; it must match the whole value.
    pub regex: regex::Regex,
    /// Shown next to the field.
    pub message: String,
}

/// An input of the form.
#[derive(Debug, Clone)]
pub struct Field {
    /// The key of its value (`first_name`).
    pub name: String,
    /// Its kind.
    pub kind: FieldKind,
    /// Its label (defaults to the name, humanised).
    pub label: String,
    /// Text under the field.
    pub help: Option<String>,
    /// Placeholder text.
    pub placeholder: Option<String>,
    /// Must it be filled in (when shown)?
    pub required: bool,
    /// The initial value.
    pub default: Option<Value>,
    /// Smallest number allowed.
    pub min: Option<f64>,
    /// Largest number allowed.
    pub max: Option<f64>,
    /// Fewest characters allowed.
    pub min_length: Option<usize>,
    /// Most characters allowed.
    pub max_length: Option<usize>,
    /// A pattern the text must match.
    pub pattern: Option<Pattern>,
    /// Its options (choice fields).
    pub options: Options,
    /// Shown only when this template (over `values`) is true.
    pub show_when: Option<Template>,
    /// Redacted like a secret input wherever the submission is stored or logged.
    pub secret: bool,
}

/// Why a submitted value was refused, for the page to show next to the field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// The field's name (empty for the form as a whole).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The most characters a text value may have when the field sets no `max_length`.
pub const DEFAULT_MAX_TEXT: usize = 10_000;

impl Form {
    /// The fields, in order.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.items.iter().filter_map(|i| match i {
            Item::Field(f) => Some(f.as_ref()),
            Item::Heading { .. } => None,
        })
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields().find(|f| f.name == name)
    }

    /// The names of the fields whose value is a secret.
    pub fn secret_fields(&self) -> Vec<&str> {
        self.fields()
            .filter(|f| f.secret)
            .map(|f| f.name.as_str())
            .collect()
    }

    /// `values` without the secret fields: what may be shown back or handed on as data.
    pub fn public_values(&self, values: &Map<String, Value>) -> Map<String, Value> {
        let secret = self.secret_fields();
        values
            .iter()
            .filter(|(k, _)| !secret.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `values` with every secret field's value as `redacted`: what may be stored.
    pub fn redacted_values(
        &self,
        values: &Map<String, Value>,
        redacted: &str,
    ) -> Map<String, Value> {
        let secret = self.secret_fields();
        values
            .iter()
            .map(|(k, v)| {
                let v = if secret.contains(&k.as_str()) {
                    Value::String(redacted.to_string())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// Checks a submission and returns the values the workflow gets.
    ///
    /// `submitted` holds what the page sent (strings from a browser, or typed JSON from an
    /// API client); `fixed` holds signed prefill values, which win over anything submitted
    /// for the same field; `options` holds the current options of dynamic choice fields
    /// (a field missing there accepts any value its generator could not be asked about).
    /// Fields hidden by `show_when` are neither required nor kept.
    ///
    /// # Errors
    /// Every refused value, each with its field: unknown fields, wrong types, missing
    /// required values, failed limits or patterns, values that are not among the options.
    pub fn check(
        &self,
        submitted: &Map<String, Value>,
        fixed: &Map<String, Value>,
        options: &IndexMap<String, Vec<Choice>>,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut errors = Vec::new();
        for key in submitted.keys() {
            if self.field(key).is_none() {
                errors.push(FieldError::new(
                    key,
                    format!("`{key}` is not a field of this form"),
                ));
            }
        }
        // Coerce every field first: `show_when` sees typed values.
        let mut values = Map::new();
        for f in self.fields() {
            let raw = fixed.get(&f.name).or_else(|| submitted.get(&f.name)).or(
                if f.kind == FieldKind::Hidden {
                    f.default.as_ref()
                } else {
                    None
                },
            );
            match coerce(f, raw) {
                Ok(Some(v)) => {
                    values.insert(f.name.clone(), v);
                }
                Ok(None) => {}
                Err(message) => errors.push(FieldError::new(&f.name, message)),
            }
        }
        let mut kept = Map::new();
        // A value that could not be read already has its message: not also "required".
        let unreadable: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
        for f in self.fields() {
            if !self.shown(f, &values) {
                continue;
            }
            match values.get(&f.name) {
                None if unreadable.contains(&f.name) => {}
                None if f.required => {
                    errors.push(FieldError::new(&f.name, format!("{} is required", f.label)))
                }
                None => {}
                Some(v) => match limits(f, v, options.get(&f.name)) {
                    Ok(()) => {
                        kept.insert(f.name.clone(), v.clone());
                    }
                    Err(message) => errors.push(FieldError::new(&f.name, message)),
                },
            }
        }
        if errors.is_empty() {
            Ok(kept)
        } else {
            Err(errors)
        }
    }

    /// Is `field` shown for these values? A `show_when` that fails to render hides the field
    /// (and so cannot make a submission fail on a value the person never saw).
    pub fn shown(&self, field: &Field, values: &Map<String, Value>) -> bool {
        let Some(t) = &field.show_when else {
            return true;
        };
        let ctx = serde_json::json!({ "values": values });
        t.render_json(&crate::executor::scope::to_value(&ctx))
            .is_ok_and(|v| truthy(&v))
    }
}

/// Jinja's truth: empty strings, lists and maps, zero, `false` and `null` are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => {
            let s = s.trim();
            !(s.is_empty() || s.eq_ignore_ascii_case("false") || s == "0")
        }
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The typed value of one field from what was sent: `None` when nothing (or only blanks)
/// was sent.
fn coerce(f: &Field, raw: Option<&Value>) -> Result<Option<Value>, String> {
    let Some(raw) = raw else {
        return Ok(if f.kind == FieldKind::Checkbox {
            Some(Value::Bool(false))
        } else {
            None
        });
    };
    if let Value::String(s) = raw
        && s.trim().is_empty()
        && f.kind != FieldKind::Checkbox
    {
        return Ok(None);
    }
    if raw.is_null() {
        return Ok(None);
    }
    let label = &f.label;
    let text = |raw: &Value| match raw {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("{label} must be text")),
    };
    Ok(Some(match f.kind {
        FieldKind::Text | FieldKind::Textarea | FieldKind::Hidden => Value::String(text(raw)?),
        FieldKind::Email => {
            let s = text(raw)?.trim().to_string();
            if !is_email(&s) {
                return Err(format!(
                    "{label} must be an e-mail address, like name@example.com"
                ));
            }
            Value::String(s)
        }
        FieldKind::Number => match raw {
            Value::Number(_) => raw.clone(),
            _ => {
                let s = text(raw)?;
                let n: f64 = s
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite())
                    .ok_or_else(|| format!("{label} must be a number"))?;
                serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
            }
        },
        FieldKind::Integer => match raw {
            Value::Number(n) if n.is_i64() => raw.clone(),
            _ => {
                let s = text(raw)?;
                let n: i64 = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("{label} must be a whole number"))?;
                Value::from(n)
            }
        },
        FieldKind::Date => {
            let s = text(raw)?;
            s.trim()
                .parse::<jiff::civil::Date>()
                .map_err(|_| format!("{label} must be a date, YYYY-MM-DD"))?;
            Value::String(s.trim().to_string())
        }
        FieldKind::Datetime => {
            let s = text(raw)?;
            s.trim()
                .parse::<jiff::civil::DateTime>()
                .map_err(|_| format!("{label} must be a date and time, YYYY-MM-DDTHH:MM"))?;
            Value::String(s.trim().to_string())
        }
        FieldKind::Checkbox => match raw {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) => Value::Bool(matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "on" | "true" | "yes" | "1"
            )),
            _ => return Err(format!("{label} must be checked or not (true or false)")),
        },
        FieldKind::Select | FieldKind::Radio => Value::String(text(raw)?),
        FieldKind::Multiselect => match raw {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| text(i).map(Value::String))
                    .collect::<Result<_, _>>()?,
            ),
            other => Value::Array(vec![Value::String(text(other)?)]),
        },
    }))
}

/// Does a typed value keep the field's limits and options?
fn limits(f: &Field, v: &Value, dynamic: Option<&Vec<Choice>>) -> Result<(), String> {
    let label = &f.label;
    if let Value::String(s) = v
        && f.kind.is_text()
    {
        let n = s.chars().count();
        let max = f.max_length.unwrap_or(DEFAULT_MAX_TEXT);
        if n > max {
            return Err(format!(
                "{label} must be at most {max} characters ({n} given)"
            ));
        }
        if let Some(min) = f.min_length
            && n < min
        {
            return Err(format!("{label} must be at least {min} characters"));
        }
        if let Some(p) = &f.pattern
            && !p.regex.is_match(s)
        {
            return Err(p.message.clone());
        }
    }
    if f.kind.is_numeric()
        && let Some(n) = v.as_f64()
    {
        if let Some(min) = f.min
            && n < min
        {
            return Err(format!("{label} must be at least {min}"));
        }
        if let Some(max) = f.max
            && n > max
        {
            return Err(format!("{label} must be at most {max}"));
        }
    }
    let choices = match &f.options {
        Options::Static(c) => Some(c),
        Options::Dynamic { .. } => dynamic,
        Options::None => None,
    };
    if let Some(choices) = choices {
        let allowed = |s: &str| choices.iter().any(|c| c.value == s);
        let given: Vec<&str> = match v {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            Value::String(s) => vec![s.as_str()],
            _ => Vec::new(),
        };
        if let Some(bad) = given.iter().find(|s| !allowed(s)) {
            return Err(format!("`{bad}` is not one of the options of {label}"));
        }
        if f.kind == FieldKind::Multiselect {
            if let Some(min) = f.min
                && (given.len() as f64) < min
            {
                return Err(format!("choose at least {min} for {label}"));
            }
            if let Some(max) = f.max
                && (given.len() as f64) > max
            {
                return Err(format!("choose at most {max} for {label}"));
            }
        }
    }
    Ok(())
}

/// A plausible e-mail address: one `@`, something before it, a dot in the domain, no spaces.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
}

/// "first_name" → "First name".
pub fn humanise(name: &str) -> String {
    let spaced = name.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, kind: FieldKind) -> Field {
        Field {
            name: name.into(),
            kind,
            label: humanise(name),
            help: None,
            placeholder: None,
            required: false,
            default: None,
            min: None,
            max: None,
            min_length: None,
            max_length: None,
            pattern: None,
            options: Options::None,
            show_when: None,
            secret: false,
        }
    }

    fn form(fields: Vec<Field>) -> Form {
        Form {
            name: "new-user".into(),
            title: "New user".into(),
            description: None,
            submit_label: "Submit".into(),
            thank_you: None,
            items: fields
                .into_iter()
                .map(|f| Item::Field(Box::new(f)))
                .collect(),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn check(f: &Form, v: Value) -> Result<Map<String, Value>, Vec<FieldError>> {
        f.check(&obj(v), &Map::new(), &IndexMap::new())
    }

    #[test]
    fn browser_strings_become_typed_values() {
        let f = form(vec![
            field("name", FieldKind::Text),
            field("seats", FieldKind::Integer),
            field("budget", FieldKind::Number),
            field("start", FieldKind::Date),
            field("remote", FieldKind::Checkbox),
            field("mail", FieldKind::Email),
        ]);
        let v = check(
            &f,
            json!({"name": "Ada", "seats": "3", "budget": "12.5", "start": "2027-01-04", "mail": " ada@example.com "}),
        )
        .unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"name": "Ada", "seats": 3, "budget": 12.5, "start": "2027-01-04", "remote": false, "mail": "ada@example.com"})
        );
    }

    #[test]
    fn every_refusal_names_its_field() {
        let mut name = field("name", FieldKind::Text);
        name.required = true;
        let mut seats = field("seats", FieldKind::Integer);
        seats.max = Some(10.0);
        let mut code = field("code", FieldKind::Text);
        code.pattern = Some(Pattern {
            regex: regex::Regex::new("^(?:[A-Z]{3})$").unwrap(),
            message: "Code is three capital letters".into(),
        });
        let mut licence = field("licence", FieldKind::Select);
        licence.options = Options::Static(vec![Choice {
            label: "Premium".into(),
            value: "bp".into(),
        }]);
        let f = form(vec![
            name,
            seats,
            code,
            licence,
            field("start", FieldKind::Date),
        ]);
        let errors = check(
            &f,
            json!({"seats": "11", "code": "ab", "licence": "e5", "start": "soon", "extra": 1}),
        )
        .unwrap_err();
        let by: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert!(
            by.contains(&("extra", "`extra` is not a field of this form")),
            "{by:?}"
        );
        assert!(by.contains(&("name", "Name is required")), "{by:?}");
        assert!(
            by.contains(&("seats", "Seats must be at most 10")),
            "{by:?}"
        );
        assert!(
            by.contains(&("code", "Code is three capital letters")),
            "{by:?}"
        );
        assert!(
            by.contains(&("licence", "`e5` is not one of the options of Licence")),
            "{by:?}"
        );
        assert!(
            by.contains(&("start", "Start must be a date, YYYY-MM-DD")),
            "{by:?}"
        );

        // A required value that cannot be read gets that one message, not also "required".
        let mut mail = field("mail", FieldKind::Email);
        mail.required = true;
        let errors = check(&form(vec![mail]), json!({"mail": "not-an-address"})).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("e-mail address"), "{errors:?}");
    }

    #[test]
    fn hidden_by_show_when_is_neither_required_nor_kept() {
        let remote = field("remote", FieldKind::Checkbox);
        let mut laptop = field("laptop", FieldKind::Text);
        laptop.required = true;
        laptop.show_when = Some(Template::compile("{{ values.remote }}").unwrap());
        let f = form(vec![remote, laptop]);
        let v = check(&f, json!({"laptop": "X1"})).unwrap();
        assert_eq!(Value::Object(v), json!({"remote": false}));
        let e = check(&f, json!({"remote": "on"})).unwrap_err();
        assert_eq!(e[0].field, "laptop");
        let v = check(&f, json!({"remote": "on", "laptop": "X1"})).unwrap();
        assert_eq!(Value::Object(v), json!({"remote": true, "laptop": "X1"}));
    }

    #[test]
    fn signed_prefill_wins_and_dynamic_options_are_checked_when_known() {
        let mut ticket = field("ticket_id", FieldKind::Hidden);
        ticket.required = true;
        let mut contact = field("manager", FieldKind::Select);
        contact.options = Options::Dynamic {
            workflow: "list-contacts".into(),
            depends_on: Vec::new(),
        };
        let f = form(vec![ticket, contact]);
        let fixed = obj(json!({"ticket_id": "42"}));
        let mut options = IndexMap::new();
        options.insert(
            "manager".to_string(),
            vec![Choice {
                label: "Grace".into(),
                value: "29683".into(),
            }],
        );
        let v = f
            .check(
                &obj(json!({"ticket_id": "99", "manager": "29683"})),
                &fixed,
                &options,
            )
            .unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"ticket_id": "42", "manager": "29683"})
        );
        let e = f
            .check(&obj(json!({"manager": "1"})), &fixed, &options)
            .unwrap_err();
        assert_eq!(e[0].field, "manager");
    }

    #[test]
    fn text_is_bounded_even_without_max_length() {
        let f = form(vec![field("notes", FieldKind::Textarea)]);
        let long = "x".repeat(DEFAULT_MAX_TEXT + 1);
        let e = check(&f, json!({ "notes": long })).unwrap_err();
        assert!(e[0].message.contains("at most 10000"), "{e:?}");
    }
}
