//! Templates: Jinja (minijinja) with weft's names, functions and filters.
//!
//! Every string written in a workflow file that contains `{{`, `{%` or `{#` is a template,
//! compiled once when the workflow is loaded ([`Template::compile`]) and rendered many times.
//! A string that is exactly one `{{ expr }}` evaluates to the expression's native value
//! (number, list, object, null); any other template renders to a string. Data that arrives at
//! runtime is never compiled, so a ticket title containing `{{` is just text.
//!
//! All templates share one [`environment`]: strict about undefined values (printing,
//! iterating or reading an attribute of something undefined is an error naming it; testing it
//! with `if`, `is defined` or `default` is fine), Python-compatible methods (`.items()`,
//! `.upper()`, `.split()`…), weft's filters and a fuel limit so a runaway loop fails instead
//! of hanging a worker.

#[cfg(test)]
mod abuse;
mod builtins;
pub mod catalog;
mod filters;
mod functions;
pub mod limits;

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Expression, UndefinedBehavior, Value};

pub use functions::{HIDDEN_ITEM, HIDDEN_NOW, HIDDEN_STATUS};

/// Instructions a single render may execute before it is stopped.
pub const FUEL: u64 = 5_000_000;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(build_environment);

/// The environment every weft template is compiled and rendered in.
pub fn environment() -> &'static Environment<'static> {
    &ENV
}

fn build_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_debug(true);
    minijinja_contrib::add_to_environment(&mut env);
    // Capped versions of the built-ins whose output size an argument sets (and of
    // minijinja-contrib's Python string methods); see `limits`.
    builtins::register(&mut env);
    functions::register(&mut env);
    filters::register(&mut env);
    env
}

/// Is `name` a filter (or, with `test`, a test) known to the environment?
fn exists(name: &str, test: bool) -> bool {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static KNOWN: LazyLock<Mutex<HashMap<(String, bool), bool>>> = LazyLock::new(Mutex::default);
    let key = (name.to_string(), test);
    if let Some(&known) = KNOWN.lock().expect("not poisoned").get(&key) {
        return known;
    }
    // Unknown filters and tests are only detected when they run; probe once and remember.
    let probe = if test {
        format!("{{{{ none is {name} }}}}")
    } else {
        format!("{{{{ none | {name} }}}}")
    };
    let unknown = match environment().render_str(&probe, ()) {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownTest
        ),
    };
    KNOWN.lock().expect("not poisoned").insert(key, !unknown);
    !unknown
}

/// A filter or test a template uses that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// `filter` or `test`.
    pub what: &'static str,
    /// The name as written.
    pub name: String,
    /// Byte offset in the template source.
    pub offset: usize,
    /// The closest existing name.
    pub suggestion: Option<&'static str>,
}

/// Filters (`| name`) and tests (`is name`) used in the expressions of `source` that the
/// environment does not provide. Text outside `{{ }}` / `{% %}` and string literals are skipped.
pub fn unknown_filters_and_tests(source: &str) -> Vec<UnknownName> {
    let mut out = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while i + 1 < bytes.len() {
        let close: &[u8] = match &bytes[i..i + 2] {
            b"{{" => b"}}",
            b"{%" => b"%}",
            b"{#" => {
                i = source[i..].find("#}").map_or(bytes.len(), |j| i + j + 2);
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        i += 2;
        let mut expect_test = false;
        while i < bytes.len() && !bytes[i..].starts_with(close) {
            let b = bytes[i];
            if b == b'\'' || b == b'"' {
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            if b == b'|'
                || (is_name(b) && (i == 0 || !is_name(bytes[i - 1]) && bytes[i - 1] != b'.'))
            {
                let is_filter = b == b'|';
                let mut j = if is_filter { i + 1 } else { i };
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let start = j;
                while j < bytes.len() && is_name(bytes[j]) {
                    j += 1;
                }
                let word = &source[start..j];
                if is_filter {
                    if !word.is_empty() && !exists(word, false) {
                        out.push(UnknownName {
                            what: "filter",
                            name: word.to_string(),
                            offset: start,
                            suggestion: crate::suggest::closest(
                                word,
                                catalog::filters().map(|e| e.name),
                            ),
                        });
                    }
                    expect_test = false;
                } else if expect_test && word != "not" {
                    if !exists(word, true) {
                        out.push(UnknownName {
                            what: "test",
                            name: word.to_string(),
                            offset: start,
                            suggestion: crate::suggest::closest(
                                word,
                                catalog::tests().map(|e| e.name),
                            ),
                        });
                    }
                    expect_test = false;
                } else {
                    expect_test = word == "is" || (expect_test && word == "not");
                }
                i = j.max(i + 1);
                continue;
            }
            i += 1;
        }
        i += 2;
    }
    out
}

/// Does this string contain template syntax?
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// What kind of problem a template had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// The template does not parse.
    Syntax,
    /// A name or attribute is undefined.
    Undefined,
    /// An operation was applied to a value of the wrong type.
    Type,
    /// The render used up its fuel (a runaway loop).
    Fuel,
    /// The result cannot be represented as data (a function, a macro…).
    NotData,
    /// Anything else raised while rendering (a filter's own error, `raise`, …).
    Render,
}

/// A template that failed to compile or render.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    /// Classification.
    pub kind: TemplateErrorKind,
    /// The message, naming the offending expression where possible.
    pub message: String,
    /// Byte range in the template source the error is about, when known.
    pub range: Option<Range<usize>>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

impl TemplateError {
    fn new(kind: TemplateErrorKind, message: impl Into<String>) -> Self {
        TemplateError {
            kind,
            message: message.into(),
            range: None,
        }
    }

    /// Converts a minijinja error; `source` is the text the error's range indexes into and
    /// `shift` the offset of that text within the template as written.
    fn from_minijinja(err: &minijinja::Error, source: &str, shift: usize) -> Self {
        use minijinja::ErrorKind as K;
        // minijinja's ranges are byte offsets that may fall inside a multi-byte character.
        let range = err.range().filter(|r| r.end <= source.len()).map(|r| {
            let start = (0..=r.start)
                .rev()
                .find(|&i| source.is_char_boundary(i))
                .unwrap_or(0);
            let end = (r.end..=source.len())
                .find(|&i| source.is_char_boundary(i))
                .unwrap_or(source.len());
            start..end.max(start)
        });
        let snippet = range
            .clone()
            .map(|r| source[r].trim().to_string())
            .filter(|s| !s.is_empty());
        let detail = err.detail().map(str::to_string);
        let (kind, message) = match err.kind() {
            K::SyntaxError => (
                TemplateErrorKind::Syntax,
                format!("template syntax error: {}", detail.unwrap_or_default()),
            ),
            K::UndefinedError => {
                // minijinja names the undefined expression itself when it can; the error's
                // range may cover a larger expression (the filter call that received it).
                let message = match detail {
                    Some(d) if d.contains("undefined") && d != "undefined value" => d,
                    _ => snippet
                        .map(|s| format!("`{s}` is undefined"))
                        .unwrap_or_else(|| "undefined value".into()),
                };
                (TemplateErrorKind::Undefined, message)
            }
            K::InvalidOperation | K::BadSerialization
                if detail.as_deref().is_some_and(|d| d.contains("fuel")) =>
            {
                (
                    TemplateErrorKind::Fuel,
                    "template ran out of fuel (a loop or recursion ran too long)".into(),
                )
            }
            K::OutOfFuel => (
                TemplateErrorKind::Fuel,
                format!(
                    "template ran out of fuel after {FUEL} instructions (a loop or recursion ran too long, or a filter was given too much to do)"
                ),
            ),
            K::InvalidOperation | K::MissingArgument | K::TooManyArguments | K::BadEscape => {
                (TemplateErrorKind::Type, describe(err, snippet.as_deref()))
            }
            K::UnknownFilter | K::UnknownTest | K::UnknownFunction | K::UnknownMethod => {
                (TemplateErrorKind::Syntax, describe(err, snippet.as_deref()))
            }
            _ => (TemplateErrorKind::Render, describe(err, snippet.as_deref())),
        };
        TemplateError {
            kind,
            message,
            range: range.map(|r| r.start + shift..r.end + shift),
        }
    }
}

fn describe(err: &minijinja::Error, snippet: Option<&str>) -> String {
    let base = match err.detail() {
        Some(d) => format!("{}: {d}", err.kind()),
        None => err.kind().to_string(),
    };
    match snippet {
        Some(s) => format!("{base} (in `{s}`)"),
        None => base,
    }
}

type OwnedTemplate<'a> = minijinja::Template<'a, 'a>;

self_cell::self_cell!(
    struct CompiledText {
        owner: String,
        #[covariant]
        dependent: OwnedTemplate,
    }
);

enum Compiled {
    /// `{{ expr }}`: evaluated to a native value.
    Native(Expression<'static, 'static>),
    /// Anything else: rendered to a string.
    Text(CompiledText),
}

/// A compiled template string from a workflow file.
#[derive(Clone)]
pub struct Template {
    source: Arc<str>,
    compiled: Arc<Compiled>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// If `s` is exactly one `{{ expr }}` (surrounding whitespace allowed), the expression and
/// its byte offset in `s`.
fn single_expression(s: &str) -> Option<(&str, usize)> {
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    let (inner, skip) = match inner.strip_prefix('-') {
        Some(rest) => (rest, 3),
        None => (inner, 2),
    };
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("%}")
    {
        return None;
    }
    Some((inner, lead + skip))
}

impl Template {
    /// Compiles a template string.
    ///
    /// # Errors
    /// A [`TemplateErrorKind::Syntax`] error whose range points into `source`.
    pub fn compile(source: &str) -> Result<Template, TemplateError> {
        let env = environment();
        let compiled = match single_expression(source) {
            Some((expr, shift)) => match env.compile_expression_owned(expr.to_string()) {
                Ok(e) => Compiled::Native(e),
                Err(err) => return Err(TemplateError::from_minijinja(&err, expr, shift)),
            },
            None => {
                let text = CompiledText::try_new(source.to_string(), |s| {
                    env.template_from_named_str("template", s)
                })
                .map_err(|err| TemplateError::from_minijinja(&err, source, 0))?;
                Compiled::Text(text)
            }
        };
        Ok(Template {
            source: source.into(),
            compiled: Arc::new(compiled),
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Does this template evaluate to a native value (it is exactly one `{{ expr }}`)?
    pub fn is_native(&self) -> bool {
        matches!(*self.compiled, Compiled::Native(_))
    }

    /// Names the template reads from its context, with one level of attribute access where
    /// it is static (`CTX.ticket`, `TASKS.find`, `item`); globals such as `range` excluded.
    pub fn referenced_names(&self) -> std::collections::BTreeSet<String> {
        let raw = match &*self.compiled {
            Compiled::Native(e) => e.undeclared_variables(true),
            Compiled::Text(t) => t.borrow_dependent().undeclared_variables(true),
        };
        let env = environment();
        raw.into_iter()
            .filter(|n| {
                let root = n.split('.').next().unwrap_or(n);
                env.globals().all(|(g, _)| g != root)
            })
            .map(|n| {
                let mut parts = n.splitn(3, '.');
                match (parts.next(), parts.next()) {
                    (Some(a), Some(b)) => format!("{a}.{b}"),
                    (Some(a), None) => a.to_string(),
                    _ => n,
                }
            })
            .collect()
    }

    /// Renders against a context (a map of names) to a minijinja value.
    ///
    /// # Errors
    /// Undefined names, type errors, fuel exhaustion, filter errors.
    pub fn render_value(&self, ctx: &Value) -> Result<Value, TemplateError> {
        match &*self.compiled {
            Compiled::Native(expr) => {
                let value = expr.eval(ctx).map_err(|e| self.runtime_error(&e))?;
                if value.is_undefined() {
                    let expr_src = single_expression(&self.source).map_or("", |(e, _)| e.trim());
                    return Err(TemplateError::new(
                        TemplateErrorKind::Undefined,
                        format!("`{expr_src}` is undefined"),
                    ));
                }
                Ok(value)
            }
            Compiled::Text(t) => t
                .borrow_dependent()
                .render(ctx)
                .map(Value::from)
                .map_err(|e| self.runtime_error(&e)),
        }
    }

    /// Renders to JSON: native values for `{{ expr }}`, strings otherwise.
    ///
    /// # Errors
    /// As [`Template::render_value`], plus values that are not data.
    pub fn render_json(&self, ctx: &Value) -> Result<serde_json::Value, TemplateError> {
        to_json(&self.render_value(ctx)?)
    }

    fn runtime_error(&self, err: &minijinja::Error) -> TemplateError {
        match single_expression(&self.source) {
            Some((expr, shift)) if self.is_native() => {
                TemplateError::from_minijinja(err, expr, shift)
            }
            _ => TemplateError::from_minijinja(err, &self.source, 0),
        }
    }
}

/// Converts a rendered value to JSON, refusing what is not data.
///
/// # Errors
/// Undefined values, functions, macros and other non-data objects; values nested more than
/// [`limits::MAX_DEPTH`] levels deep or larger than [`limits::MAX_DATA_BYTES`] as JSON (a
/// list that contains itself twice, doubled forty times, is small in memory but not as data).
pub fn to_json(v: &Value) -> Result<serde_json::Value, TemplateError> {
    let mut budget = limits::MAX_DATA_BYTES;
    to_json_within(v, 0, &mut budget)
}

fn spend(budget: &mut usize, n: usize) -> Result<(), TemplateError> {
    match budget.checked_sub(n) {
        Some(rest) => {
            *budget = rest;
            Ok(())
        }
        None => Err(TemplateError::new(
            TemplateErrorKind::Render,
            format!(
                "the value is larger than the limit of {} bytes (as JSON)",
                limits::MAX_DATA_BYTES
            ),
        )),
    }
}

fn to_json_within(
    v: &Value,
    depth: usize,
    budget: &mut usize,
) -> Result<serde_json::Value, TemplateError> {
    use serde_json::Value as J;
    if depth > limits::MAX_DEPTH {
        return Err(TemplateError::new(
            TemplateErrorKind::Render,
            format!(
                "the value is nested more than the limit of {} levels deep",
                limits::MAX_DEPTH
            ),
        ));
    }
    Ok(match v.kind() {
        ValueKind::Undefined => {
            return Err(TemplateError::new(
                TemplateErrorKind::Undefined,
                "the result contains an undefined value",
            ));
        }
        ValueKind::None => {
            spend(budget, 4)?;
            J::Null
        }
        ValueKind::Bool => {
            spend(budget, 5)?;
            J::Bool(v.is_true())
        }
        ValueKind::Number => {
            spend(budget, 8)?;
            // `4 / 2` is the float 2.0: keep it a float (Jinja2 gives 2.0, not 2).
            if !v.is_integer() {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f).map_or(J::Null, J::Number)
            } else if let Ok(i) = i64::try_from(v.clone()) {
                J::from(i)
            } else if let Ok(u) = u64::try_from(v.clone()) {
                J::from(u)
            } else {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f).map_or(J::Null, J::Number)
            }
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            spend(budget, s.len().saturating_add(2))?;
            J::String(s.to_string())
        }
        ValueKind::Bytes => {
            let b = v.as_bytes().unwrap_or_default();
            spend(budget, b.len().saturating_add(2))?;
            J::String(String::from_utf8_lossy(b).into_owned())
        }
        ValueKind::Seq | ValueKind::Iterable => {
            spend(budget, 2)?;
            let iter = v
                .try_iter()
                .map_err(|e| TemplateError::new(TemplateErrorKind::NotData, e.to_string()))?;
            let mut out = Vec::with_capacity(v.len().unwrap_or(0).min(1024));
            for x in iter {
                spend(budget, 2)?;
                out.push(to_json_within(&x, depth + 1, budget)?);
            }
            J::Array(out)
        }
        ValueKind::Map => {
            spend(budget, 2)?;
            let mut out = serde_json::Map::new();
            let keys = v
                .try_iter()
                .map_err(|e| TemplateError::new(TemplateErrorKind::NotData, e.to_string()))?;
            for k in keys {
                let item = v.get_item(&k).unwrap_or(Value::UNDEFINED);
                let key = match k.as_str() {
                    Some(s) => s.to_string(),
                    None => k.to_string(),
                };
                spend(budget, key.len().saturating_add(4))?;
                out.insert(key, to_json_within(&item, depth + 1, budget)?);
            }
            J::Object(out)
        }
        ValueKind::Plain => {
            return Err(TemplateError::new(
                TemplateErrorKind::NotData,
                format!(
                    "`{v}` is not data (a function or method?); call it, or use x['key'] to read a key"
                ),
            ));
        }
        ValueKind::Invalid => {
            return Err(TemplateError::new(TemplateErrorKind::Render, v.to_string()));
        }
        _ => {
            let s = v.to_string();
            spend(budget, s.len().saturating_add(2))?;
            J::String(s)
        }
    })
}

/// Renders a template string once against a JSON context (what `weft eval` does).
///
/// Top-level keys of `ctx` become names in the template.
///
/// # Errors
/// Compile or render errors.
pub fn eval_str(source: &str, ctx: &serde_json::Value) -> Result<serde_json::Value, TemplateError> {
    if !is_template(source) {
        return Ok(serde_json::Value::String(source.to_string()));
    }
    Template::compile(source)?.render_json(&Value::from(minijinja::value::Serde(ctx)))
}

/// Does the template `source` hold against a JSON context: Jinja's truth of its value (an
/// empty string, list or map, zero, `false` and `none` are false)?
///
/// # Errors
/// Compile or render errors.
pub fn eval_condition(source: &str, ctx: &serde_json::Value) -> Result<bool, TemplateError> {
    Template::compile(source)?
        .render_value(&Value::from(minijinja::value::Serde(ctx)))
        .map(|v| v.is_true())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_hold_by_jinjas_truth() {
        let ctx = json!({"n": 3, "items": []});
        assert!(eval_condition("{{ n > 2 }}", &ctx).unwrap());
        assert!(!eval_condition("{{ items }}", &ctx).unwrap());
        assert!(!eval_condition("{{ n - 3 }}", &ctx).unwrap());
        assert!(eval_condition("{{ nope }}", &ctx).is_err());
    }

    fn eval(src: &str, ctx: serde_json::Value) -> serde_json::Value {
        eval_str(src, &ctx).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn single_expression_is_native() {
        assert_eq!(eval("{{ [1, 2] }}", json!({})), json!([1, 2]));
        assert_eq!(eval("  {{ x }} ", json!({"x": {"a": 1}})), json!({"a": 1}));
        assert_eq!(eval("{{ none }}", json!({})), json!(null));
        assert_eq!(eval("{{- 1 + 1 -}}", json!({})), json!(2));
    }

    #[test]
    fn mixed_text_is_a_string() {
        assert_eq!(eval("n={{ 1 }}", json!({})), json!("n=1"));
        assert_eq!(
            eval("{{ a }} and {{ b }}", json!({"a": 1, "b": 2})),
            json!("1 and 2")
        );
        assert_eq!(eval("plain", json!({})), json!("plain"));
    }

    #[test]
    fn undefined_names_are_errors_that_name_them() {
        let err = eval_str("{{ CTX.missing }}", &json!({"CTX": {}})).unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::Undefined);
        assert!(err.message.contains("CTX.missing"), "{}", err.message);
        let err = eval_str("id={{ nope }}", &json!({})).unwrap_err();
        assert!(err.message.contains("nope"), "{}", err.message);
    }

    #[test]
    fn the_undefined_name_is_named_even_inside_a_filter_chain() {
        let err = eval_str(
            "{{ ORG.VARIABLES.email | lower }}",
            &json!({"ORG": {"VARIABLES": {}}}),
        )
        .unwrap_err();
        assert!(
            err.message.contains("ORG.VARIABLES.email"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("lower"), "{}", err.message);
    }

    #[test]
    fn defaults_and_tests_work_on_undefined() {
        assert_eq!(
            eval("{{ CTX.x | default('d') }}", json!({"CTX": {}})),
            json!("d")
        );
        assert_eq!(
            eval("{{ CTX.x is defined }}", json!({"CTX": {}})),
            json!(false)
        );
        assert_eq!(
            eval("{% if CTX.x %}y{% else %}n{% endif %}", json!({"CTX": {}})),
            json!("n")
        );
    }

    #[test]
    fn python_methods_work() {
        assert_eq!(eval("{{ 'a,b'.split(',') }}", json!({})), json!(["a", "b"]));
        assert_eq!(eval("{{ 'x'.upper() }}", json!({})), json!("X"));
        assert_eq!(
            eval("{{ d.items() | list }}", json!({"d": {"k": 1}})),
            json!([["k", 1]])
        );
    }

    #[test]
    fn syntax_errors_carry_a_range_into_the_source() {
        let err = Template::compile("hello {{ x + }}").unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::Syntax);
        let r = err.range.expect("range");
        assert!(r.start >= 6, "{r:?}");
        let err = Template::compile("{{ x | }}").unwrap_err();
        assert!(err.range.is_some());
    }

    #[test]
    fn unknown_filters_and_tests_are_found_outside_strings() {
        let found = unknown_filters_and_tests(
            "a | b {{ x | upperr | lower }}{% if y is definedd %}{{ 'p|q' | regex_replace('a|b', '') }}{% endif %}",
        );
        let names: Vec<(&str, &str, Option<&str>)> = found
            .iter()
            .map(|u| (u.what, u.name.as_str(), u.suggestion))
            .collect();
        assert_eq!(
            names,
            vec![
                ("filter", "upperr", Some("upper")),
                ("test", "definedd", Some("defined"))
            ]
        );
        assert_eq!(found[0].offset, 13);
        assert!(unknown_filters_and_tests("{{ x is not none and x | length > 0 }}").is_empty());
    }

    #[test]
    fn errors_inside_multibyte_text_do_not_panic() {
        let err = Template::compile("Bonjour {{ CTX.contact.prénom }},").unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::Syntax);
        let err = eval_str("{{ x — y }}", &json!({"x": 1, "y": 2})).unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::Syntax, "{}", err.message);
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let err = eval_str(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            &json!({}),
        )
        .unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::Fuel, "{}", err.message);
    }

    #[test]
    fn referenced_names_are_roots_with_one_attribute() {
        let t = Template::compile("{% for x in CTX.items %}{{ x.id }}{{ TASKS.find.result.id }}{% endfor %}{{ range(3) }}").unwrap();
        let names: Vec<String> = t.referenced_names().into_iter().collect();
        assert_eq!(names, vec!["CTX.items", "TASKS.find"]);
        let t = Template::compile("{{ item().name }}").unwrap();
        assert!(
            t.referenced_names().is_empty(),
            "{:?}",
            t.referenced_names()
        );
    }

    #[test]
    fn data_is_never_rendered_twice() {
        let out = eval("{{ title }}", json!({"title": "{{ 7 * 7 }}"}));
        assert_eq!(out, json!("{{ 7 * 7 }}"));
    }
}
