//! The hosted form page: plain HTML rendered on the server, usable without JavaScript, on a
//! phone and with a screen reader. `form.js` only refreshes which fields are shown and the
//! dynamic options, by asking the server (which decides with the same rules it checks a
//! submission with).

use std::fmt::Write as _;

use indexmap::IndexMap;
use serde_json::{Map, Value};
use weft_engine::form::{Choice, Field, FieldError, FieldKind, Form, Item, Options};

/// What the page shows besides the form itself.
pub struct PageState<'a> {
    /// Where the form posts to (`/forms/{token}`).
    pub action: &'a str,
    /// The anti-forgery token the post must carry back.
    pub csrf: &'a str,
    /// The values to show: the defaults, or what was entered when a submission was refused.
    pub values: &'a Map<String, Value>,
    /// Why the last submission was refused, by field.
    pub errors: &'a [FieldError],
    /// The options of dynamic choice fields, or why they could not be loaded.
    pub options: &'a IndexMap<String, Result<Vec<Choice>, String>>,
    /// Fields whose value is fixed by a signed prefill (shown read-only).
    pub fixed: &'a Map<String, Value>,
    /// An operator's preview: answers are checked, nothing is sent.
    pub preview: bool,
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The head and the frame every form page shares.
fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"/forms/assets/form.css\">\n\
         <script src=\"/forms/assets/form.js\" defer></script>\n</head>\n<body>\n\
         <main class=\"form-page\">\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// A page with only a heading and a message: not found, expired, used, thank you.
pub fn message_page(title: &str, message: &str) -> String {
    document(
        title,
        &format!(
            "<h1>{}</h1>\n<p class=\"message\" role=\"status\">{}</p>\n",
            escape(title),
            escape(message)
        ),
    )
}

/// The form page.
pub fn form_page(form: &Form, state: &PageState<'_>) -> String {
    let mut body = String::new();
    if state.preview {
        body.push_str("<p class=\"preview\" role=\"note\">Preview — answers are checked as they would be, but nothing is sent and nothing starts.</p>\n");
    }
    let _ = writeln!(body, "<h1>{}</h1>", escape(&form.title));
    if let Some(d) = &form.description {
        let _ = writeln!(body, "<p class=\"description\">{}</p>", escape(d));
    }
    if !state.errors.is_empty() {
        let _ = writeln!(
            body,
            "<div class=\"summary\" role=\"alert\" tabindex=\"-1\" id=\"summary\"><p>{} — please correct {}:</p><ul>",
            if state.errors.len() == 1 {
                "There is a problem"
            } else {
                "There are problems"
            },
            if state.errors.len() == 1 {
                "it"
            } else {
                "them"
            },
        );
        for e in state.errors {
            let target = if e.field.is_empty() || form.field(&e.field).is_none() {
                String::new()
            } else {
                format!(" href=\"#f-{}\"", escape(&e.field))
            };
            let _ = writeln!(body, "<li><a{target}>{}</a></li>", escape(&e.message));
        }
        body.push_str("</ul></div>\n");
    }
    let _ = writeln!(
        body,
        "<form method=\"post\" action=\"{}\" novalidate data-state=\"{}/state\">",
        escape(state.action),
        escape(state.action)
    );
    let _ = writeln!(
        body,
        "<input type=\"hidden\" name=\"_csrf\" value=\"{}\">",
        escape(state.csrf)
    );
    for item in &form.items {
        match item {
            Item::Heading { title, help } => {
                let _ = writeln!(body, "<h2>{}</h2>", escape(title));
                if let Some(h) = help {
                    let _ = writeln!(body, "<p class=\"help\">{}</p>", escape(h));
                }
            }
            Item::Field(f) => field(&mut body, form, f, state),
        }
    }
    let _ = writeln!(
        body,
        "<button type=\"submit\">{}</button>\n</form>",
        escape(&form.submit_label)
    );
    document(&form.title, &body)
}

/// The text of a value as an input shows it.
fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn field(out: &mut String, form: &Form, f: &Field, state: &PageState<'_>) {
    let id = format!("f-{}", f.name);
    let value = state
        .fixed
        .get(&f.name)
        .or_else(|| state.values.get(&f.name))
        .or(f.default.as_ref());
    let fixed = state.fixed.contains_key(&f.name);
    if f.kind == FieldKind::Hidden {
        // Hidden values that were signed travel in the link, not in the form.
        if !fixed {
            let _ = writeln!(
                out,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(&f.name),
                escape(&text_of(value))
            );
        }
        return;
    }
    let error = state.errors.iter().find(|e| e.field == f.name);
    let shown = form.shown(f, state.values);
    let mut described = Vec::new();
    let _ = writeln!(
        out,
        "<div class=\"field{}\" data-field=\"{}\"{}{}>",
        if error.is_some() { " invalid" } else { "" },
        escape(&f.name),
        if f.show_when.is_some() {
            " data-conditional"
        } else {
            ""
        },
        if shown { "" } else { " hidden" }
    );
    let required = if f.required {
        " <span class=\"required\" aria-hidden=\"true\">*</span>"
    } else {
        ""
    };
    let grouped = matches!(f.kind, FieldKind::Radio | FieldKind::Multiselect);
    if grouped {
        let _ = writeln!(
            out,
            "<fieldset><legend>{}{required}</legend>",
            escape(&f.label)
        );
    } else if f.kind != FieldKind::Checkbox {
        let _ = writeln!(
            out,
            "<label for=\"{id}\">{}{required}</label>",
            escape(&f.label)
        );
    }
    if let Some(h) = &f.help {
        let _ = writeln!(out, "<p class=\"help\" id=\"{id}-help\">{}</p>", escape(h));
        described.push(format!("{id}-help"));
    }
    if let Some(e) = error {
        let _ = writeln!(
            out,
            "<p class=\"error\" id=\"{id}-error\">{}</p>",
            escape(&e.message)
        );
        described.push(format!("{id}-error"));
    }
    let attrs = Attrs {
        id: &id,
        name: &f.name,
        described: described.join(" "),
        invalid: error.is_some(),
        required: f.required,
        readonly: fixed,
    };
    control(out, f, value, &attrs, state);
    if grouped {
        out.push_str("</fieldset>\n");
    }
    out.push_str("</div>\n");
}

/// The attributes every control carries.
struct Attrs<'a> {
    id: &'a str,
    name: &'a str,
    described: String,
    invalid: bool,
    required: bool,
    readonly: bool,
}

impl Attrs<'_> {
    fn common(&self) -> String {
        let mut s = format!("name=\"{}\"", escape(self.name));
        if !self.described.is_empty() {
            let _ = write!(s, " aria-describedby=\"{}\"", self.described);
        }
        if self.invalid {
            s.push_str(" aria-invalid=\"true\"");
        }
        if self.required {
            s.push_str(" required aria-required=\"true\"");
        }
        if self.readonly {
            s.push_str(" readonly aria-readonly=\"true\"");
        }
        s
    }
}

fn control(
    out: &mut String,
    f: &Field,
    value: Option<&Value>,
    a: &Attrs<'_>,
    state: &PageState<'_>,
) {
    let id = a.id;
    let common = a.common();
    let placeholder = f
        .placeholder
        .as_ref()
        .map(|p| format!(" placeholder=\"{}\"", escape(p)))
        .unwrap_or_default();
    let text = escape(&text_of(value));
    match f.kind {
        FieldKind::Textarea => {
            let _ = writeln!(
                out,
                "<textarea id=\"{id}\" {common}{placeholder}{} rows=\"4\">{text}</textarea>",
                lengths(f)
            );
        }
        FieldKind::Checkbox => {
            let checked = matches!(value, Some(Value::Bool(true)))
                || matches!(value, Some(Value::String(s)) if s == "on" || s == "true");
            let _ = writeln!(
                out,
                "<label class=\"check\"><input type=\"checkbox\" id=\"{id}\" {common} value=\"on\"{}> {}</label>",
                if checked { " checked" } else { "" },
                escape(&f.label)
            );
        }
        FieldKind::Select | FieldKind::Radio | FieldKind::Multiselect => {
            let (choices, problem) = match &f.options {
                Options::Static(c) => (c.clone(), None),
                Options::Dynamic { .. } => match state.options.get(&f.name) {
                    Some(Ok(c)) => (c.clone(), None),
                    Some(Err(why)) => (Vec::new(), Some(why.clone())),
                    None => (Vec::new(), Some("the options are loading…".to_string())),
                },
                Options::None => (Vec::new(), None),
            };
            if let Some(why) = problem {
                let _ = writeln!(
                    out,
                    "<p class=\"options-problem\" role=\"status\" id=\"{id}-options\">{}</p>",
                    escape(&why)
                );
            }
            let chosen: Vec<String> = match value {
                Some(Value::Array(items)) => items.iter().map(|v| text_of(Some(v))).collect(),
                Some(v) => vec![text_of(Some(v))],
                None => Vec::new(),
            };
            choice_control(out, f.kind, id, &common, &choices, &chosen);
        }
        _ => {
            let (ty, extra) = match f.kind {
                FieldKind::Email => ("email", " autocomplete=\"email\"".to_string()),
                FieldKind::Number => ("number", format!(" step=\"any\"{}", bounds(f))),
                FieldKind::Integer => (
                    "number",
                    format!(" step=\"1\" inputmode=\"numeric\"{}", bounds(f)),
                ),
                FieldKind::Date => ("date", String::new()),
                FieldKind::Datetime => ("datetime-local", String::new()),
                _ => ("text", lengths(f)),
            };
            let pattern = f
                .pattern
                .as_ref()
                .map(|p| {
                    let source = p.regex.as_str();
                    let inner = source
                        .strip_prefix("^(?:")
                        .and_then(|s| s.strip_suffix(")$"))
                        .unwrap_or(source);
                    format!(
                        " pattern=\"{}\" title=\"{}\"",
                        escape(inner),
                        escape(&p.message)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<input type=\"{ty}\" id=\"{id}\" {common} value=\"{text}\"{placeholder}{extra}{pattern}>"
            );
        }
    }
}

fn choice_control(
    out: &mut String,
    kind: FieldKind,
    id: &str,
    common: &str,
    choices: &[Choice],
    chosen: &[String],
) {
    let is = |v: &str| chosen.iter().any(|c| c == v);
    match kind {
        FieldKind::Select => {
            let _ = writeln!(out, "<select id=\"{id}\" {common}>");
            let _ = writeln!(out, "<option value=\"\">Choose…</option>");
            for c in choices {
                let _ = writeln!(
                    out,
                    "<option value=\"{}\"{}>{}</option>",
                    escape(&c.value),
                    if is(&c.value) { " selected" } else { "" },
                    escape(&c.label)
                );
            }
            out.push_str("</select>\n");
        }
        _ => {
            let ty = if kind == FieldKind::Radio {
                "radio"
            } else {
                "checkbox"
            };
            let _ = writeln!(out, "<div class=\"choices\" id=\"{id}\">");
            for (i, c) in choices.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "<label class=\"check\"><input type=\"{ty}\" id=\"{id}-{i}\" {common} value=\"{}\"{}> {}</label>",
                    escape(&c.value),
                    if is(&c.value) { " checked" } else { "" },
                    escape(&c.label)
                );
            }
            out.push_str("</div>\n");
        }
    }
}

fn lengths(f: &Field) -> String {
    let mut s = String::new();
    if let Some(n) = f.min_length {
        let _ = write!(s, " minlength=\"{n}\"");
    }
    let _ = write!(
        s,
        " maxlength=\"{}\"",
        f.max_length.unwrap_or(weft_engine::form::DEFAULT_MAX_TEXT)
    );
    s
}

fn bounds(f: &Field) -> String {
    let mut s = String::new();
    if let Some(n) = f.min {
        let _ = write!(s, " min=\"{n}\"");
    }
    if let Some(n) = f.max {
        let _ = write!(s, " max=\"{n}\"");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SRC: &str = "form: new-user\ntitle: New <starter>\nfields:\n  - section: Person\n  - name: first_name\n    required: true\n    help: As on their passport\n  - name: remote\n    type: checkbox\n  - name: laptop\n    type: radio\n    options: [x1, t14]\n    show_when: values.remote\n  - name: manager\n    type: select\n    options_from: list-contacts\n  - name: ticket_id\n    type: hidden\n";

    fn form() -> Form {
        weft_engine::load_form(SRC).form.unwrap()
    }

    #[test]
    fn errors_are_announced_next_to_their_fields_and_values_kept() {
        let values = json!({"first_name": "<b>Ada</b>", "remote": true})
            .as_object()
            .unwrap()
            .clone();
        let errors = vec![FieldError {
            field: "laptop".into(),
            message: "Laptop is required".into(),
        }];
        let mut options = IndexMap::new();
        options.insert(
            "manager".to_string(),
            Err("Autotask did not answer; try again in a minute".to_string()),
        );
        let html = form_page(
            &form(),
            &PageState {
                action: "/forms/tok",
                csrf: "c1",
                values: &values,
                errors: &errors,
                options: &options,
                fixed: &Map::new(),
                preview: false,
            },
        );
        assert!(
            html.contains("<title>New &lt;starter&gt;</title>"),
            "{html}"
        );
        assert!(
            html.contains("value=\"&lt;b&gt;Ada&lt;/b&gt;\""),
            "entered values kept, escaped"
        );
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("<a href=\"#f-laptop\">Laptop is required</a>"));
        assert!(
            html.contains("aria-describedby=\"f-laptop-error\" aria-invalid=\"true\""),
            "{html}"
        );
        assert!(html.contains("<label for=\"f-first_name\">First name"));
        assert!(html.contains("aria-describedby=\"f-first_name-help\""));
        assert!(html.contains("Autotask did not answer; try again in a minute"));
        assert!(html.contains("name=\"_csrf\" value=\"c1\""));
        // `remote` is checked, so the laptop question is shown.
        assert!(
            !html.contains("data-field=\"laptop\" data-conditional hidden"),
            "{html}"
        );
    }

    #[test]
    fn conditional_fields_start_hidden_and_signed_values_are_not_in_the_form() {
        let fixed = json!({"ticket_id": "42"}).as_object().unwrap().clone();
        let html = form_page(
            &form(),
            &PageState {
                action: "/forms/tok",
                csrf: "c1",
                values: &Map::new(),
                errors: &[],
                options: &IndexMap::new(),
                fixed: &fixed,
                preview: false,
            },
        );
        assert!(
            html.contains("data-field=\"laptop\" data-conditional hidden"),
            "{html}"
        );
        assert!(!html.contains("name=\"ticket_id\""), "{html}");
        assert!(!html.contains("role=\"alert\""));
    }
}
