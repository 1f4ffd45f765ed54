//! Keeps secrets out of stored execution data.
//!
//! Secrets are found four ways: workflow inputs declared `secret: true`, secret org
//! variables and integration secrets of the execution's org, action parameters whose schema
//! marks them `x-weft-secret`, and the values of credential headers ([`HeaderPolicy`]). Once
//! known, a secret is replaced by `***` wherever weft stores it: inputs, vars, the trigger
//! event, task inputs, results, published values, errors and logs.
//!
//! What counts as "the secret" in stored text:
//!
//! - a string secret: the string itself (inside longer text too, once it has at least
//!   [`MIN_SECRET_LEN`] characters; a shorter one only where a whole string equals it), and
//!   its common encodings: percent-encoded (the `%20` and `+` forms of the usual escaping
//!   sets), base64 (standard and URL-safe, padded or not, and the stretch it makes inside a
//!   longer base64 text such as `user:secret`), and JSON-escaped (`\"`, `\\`, `\u00e9`, `\/`);
//! - a number secret: every JSON number equal to it, any string equal to its text, and its
//!   text inside longer strings when it has at least [`MIN_SECRET_LEN`] characters (not as
//!   part of a longer run of digits);
//! - a boolean secret: only where it is the secret itself (the secret input's field, a
//!   secret parameter) — not every `true` of the execution.
//!
//! The encoded forms are computed once, when a secret is learned; one Aho-Corasick automaton
//! over all of them masks a string in a single pass.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use serde_json::{Map, Number, Value};

/// The replacement text.
pub const MASK: &str = "***";

/// Secrets shorter than this are not matched inside other text (too many false hits); they
/// are masked only where a whole string equals them.
pub const MIN_SECRET_LEN: usize = 4;

/// Base64 stretches of a secret found inside longer base64 text are matched from this length.
const MIN_B64_CORE: usize = 8;

// ---------------------------------------------------------------------------------------------
// Credential headers

/// Header names whose value is a credential: never stored (webhook and Autotask events drop
/// them from `TRIGGER.headers`), and learned as secrets when an action sends them.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-weft-secret",
    "x-hook-signature",
];

/// A header whose name contains one of these (case-insensitively) is a credential too.
pub const CREDENTIAL_HEADER_PARTS: &[&str] = &["secret", "token", "password", "passwd", "key"];

/// Is `name` a credential header: one of [`CREDENTIAL_HEADERS`], a name containing one of
/// [`CREDENTIAL_HEADER_PARTS`], or one containing any of `extra` (names or parts of names,
/// lower case; see [`HeaderPolicy`])? Case-insensitive.
pub fn is_credential_header(name: &str, extra: &[String]) -> bool {
    let n = name.trim().to_ascii_lowercase();
    CREDENTIAL_HEADERS.contains(&n.as_str())
        || CREDENTIAL_HEADER_PARTS.iter().any(|p| n.contains(p))
        || extra
            .iter()
            .any(|e| !e.is_empty() && n.contains(e.as_str()))
}

/// Which request headers are credentials: the built-in list plus the names (or parts of
/// names) an operator adds with [`HeaderPolicy::ENV`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderPolicy {
    extra: Vec<String>,
}

impl HeaderPolicy {
    /// The environment variable with extra header names or name parts, comma-separated
    /// (`x-tenant-sig,signature`).
    pub const ENV: &'static str = "WEFT_REDACT_HEADERS";

    /// The built-in list plus `extra` (comma-separated names or parts of names).
    pub fn parse(extra: &str) -> HeaderPolicy {
        HeaderPolicy {
            extra: extra
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }

    /// The built-in list plus what [`HeaderPolicy::ENV`] adds.
    pub fn from_env() -> HeaderPolicy {
        HeaderPolicy::parse(&std::env::var(Self::ENV).unwrap_or_default())
    }

    /// The process's policy ([`HeaderPolicy::from_env`], read once).
    pub fn global() -> &'static HeaderPolicy {
        static P: OnceLock<HeaderPolicy> = OnceLock::new();
        P.get_or_init(HeaderPolicy::from_env)
    }

    /// The names or parts of names added to the built-in list.
    pub fn extra(&self) -> &[String] {
        &self.extra
    }

    /// Is `name` a credential header under this policy?
    pub fn is_credential(&self, name: &str) -> bool {
        is_credential_header(name, &self.extra)
    }
}

// ---------------------------------------------------------------------------------------------
// Encodings

/// RFC 3986 unreserved characters.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The characters some common encoders leave as they are.
const KEEP_SETS: &[fn(u8) -> bool] = &[
    // RFC 3986 (Rust's `urlencoding`, Go's `url.PathEscape`-like, curl).
    unreserved,
    // Python's `quote` (keeps `/`).
    |b| unreserved(b) || b == b'/',
    // minijinja's `urlencode` filter.
    |b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'),
    // application/x-www-form-urlencoded (reqwest's `query`, serde_urlencoded, HTML forms).
    |b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_'),
    // JavaScript's `encodeURIComponent`.
    |b| unreserved(b) || matches!(b, b'!' | b'*' | b'\'' | b'(' | b')'),
];

fn percent_encode(s: &str, keep: fn(u8) -> bool, space_plus: bool, lower: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else if b == b' ' && space_plus {
            out.push('+');
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The stretches of base64 text that only `s`'s bytes decide, when `s` sits at each of the
/// three byte offsets inside longer encoded data (e.g. `Basic base64(user:secret)`).
fn base64_cores(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for k in 0..3usize {
        let mut bytes = vec![0u8; k];
        bytes.extend_from_slice(s.as_bytes());
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        // Character i carries bits [6i, 6i + 6): keep those inside the secret's bits.
        let start = (8 * k).div_ceil(6);
        let end = (8 * bytes.len()) / 6;
        if end > start && end - start >= MIN_B64_CORE {
            let core = &enc[start..end];
            out.push(core.to_string());
            out.push(core.replace('+', "-").replace('/', "_"));
        }
    }
    out
}

/// `s` as it appears inside JSON string literals written by common encoders.
fn json_escapes(s: &str) -> Vec<String> {
    let quoted = serde_json::to_string(s).expect("strings serialize");
    let plain = quoted[1..quoted.len() - 1].to_string();
    let mut ascii = String::with_capacity(plain.len());
    for c in plain.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    let mut out = vec![plain.clone(), ascii.clone()];
    // PHP escapes `/`; Go and Jinja's `tojson` escape `<`, `>`, `&` (and `'`) for HTML.
    for base in [&plain, &ascii] {
        if base.contains('/') {
            out.push(base.replace('/', "\\/"));
        }
        if base.contains(['<', '>', '&', '\'']) {
            let html = base
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026");
            out.push(html.replace('\'', "\\u0027"));
            out.push(html);
        }
    }
    out
}

/// Every text form of a secret the redactor masks: the secret first, then its encodings
/// (each once).
pub fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_string()];
    for keep in KEEP_SETS {
        for space_plus in [false, true] {
            forms.push(percent_encode(secret, *keep, space_plus, false));
        }
    }
    forms.push(percent_encode(secret, unreserved, false, true));
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.extend(base64_cores(secret));
    forms.extend(json_escapes(secret));
    let mut seen = HashSet::new();
    forms.retain(|f| !f.is_empty() && f != MASK && seen.insert(f.clone()));
    forms
}

// ---------------------------------------------------------------------------------------------
// The redactor

/// What an execution's redactor knows.
#[derive(Debug, Default)]
struct Known {
    /// Secrets already learned (their plain text), so each is expanded once.
    learned: HashSet<String>,
    /// Every text form of every secret: a string equal to one is masked whole.
    exact: HashSet<String>,
    /// Text forms matched inside longer text, longest first.
    needles: Vec<String>,
    needle_set: HashSet<String>,
    /// Needles that are a secret number's digits: not matched inside a longer run of digits.
    numeric: HashSet<String>,
    /// Secret numbers: an equal JSON number is masked.
    numbers: Vec<Number>,
    /// One automaton over `needles`; rebuilt lazily after something was learned.
    matcher: Option<AhoCorasick>,
    dirty: bool,
}

impl Known {
    fn learn_text(&mut self, secret: &str, numeric: bool) {
        if secret.is_empty() || secret == MASK || !self.learned.insert(secret.to_string()) {
            return;
        }
        let inside = secret.chars().count() >= MIN_SECRET_LEN;
        for form in encoded_forms(secret) {
            if inside && self.needle_set.insert(form.clone()) {
                if numeric && form == secret {
                    self.numeric.insert(form.clone());
                }
                self.needles.push(form.clone());
                self.dirty = true;
            }
            self.exact.insert(form);
        }
    }

    fn learn_number(&mut self, n: &Number) {
        // A short number (`1`, `42`) is too common to mask wherever it appears: a ticket's
        // status or a queue id equal to it would turn into `***` for the tasks that read it.
        // Like a boolean, it is masked only where it is the secret itself.
        if n.to_string().chars().count() < MIN_SECRET_LEN {
            return;
        }
        if !self.numbers.iter().any(|x| same_number(x, n)) {
            self.numbers.push(n.clone());
        }
        self.learn_text(&n.to_string(), true);
    }

    fn rebuild(&mut self) {
        // Longest first: with leftmost-longest matching this only orders the fallback.
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.matcher = if self.needles.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&self.needles)
                .ok()
        };
        self.dirty = false;
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.numbers.is_empty()
    }

    fn mask_text(&self, s: &str) -> Option<String> {
        if self.exact.contains(s) {
            return Some(MASK.to_string());
        }
        if self.needles.is_empty() {
            return None;
        }
        let mut out = String::new();
        let mut last = 0;
        let digit_at = |i: usize| s.as_bytes().get(i).is_some_and(u8::is_ascii_digit);
        let mut hit = |start: usize, end: usize, needle: &str, out: &mut String| {
            // A secret number's digits inside a longer number are another number.
            if self.numeric.contains(needle)
                && ((start > 0 && digit_at(start - 1)) || digit_at(end))
            {
                return;
            }
            out.push_str(&s[last..start]);
            out.push_str(MASK);
            last = end;
        };
        match &self.matcher {
            Some(ac) => {
                for m in ac.find_iter(s) {
                    hit(
                        m.start(),
                        m.end(),
                        &self.needles[m.pattern().as_usize()],
                        &mut out,
                    );
                }
            }
            // Too many or too long secrets for one automaton: one pass per secret.
            None => {
                let mut text = s.to_string();
                for n in &self.needles {
                    if text.contains(n.as_str()) {
                        text = text.replace(n.as_str(), MASK);
                    }
                }
                return (text != s).then_some(text);
            }
        }
        if last == 0 {
            return None;
        }
        out.push_str(&s[last..]);
        Some(out)
    }

    fn redact(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => match self.mask_text(s) {
                Some(masked) => Value::String(masked),
                None => v.clone(),
            },
            Value::Number(n) if self.numbers.iter().any(|x| same_number(x, n)) => {
                Value::String(MASK.into())
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| self.redact(i)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, i)| (k.clone(), self.redact(i))).collect())
            }
            other => other.clone(),
        }
    }
}

/// The same number, whatever its JSON form (`5` and `5.0`).
fn same_number(a: &Number, b: &Number) -> bool {
    a == b || matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

/// The secrets of one execution; cheap to clone and share with its tasks.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    known: Arc<RwLock<Known>>,
}

/// The redactors of the executions this process runs, by execution id, while they live: a
/// sub-workflow learns its parent's secrets from them (they may reach it as plain inputs).
fn live() -> &'static Mutex<HashMap<String, Weak<RwLock<Known>>>> {
    static LIVE: OnceLock<Mutex<HashMap<String, Weak<RwLock<Known>>>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

impl Redactor {
    /// Makes this redactor known as `execution_id`'s while it is in use.
    pub(crate) fn track(&self, execution_id: &str) {
        let mut live = live().lock().expect("not poisoned");
        live.retain(|_, w| w.strong_count() > 0);
        live.insert(execution_id.to_string(), Arc::downgrade(&self.known));
    }

    /// Learns every secret the redactor of `execution_id` (running in this process) knows.
    pub(crate) fn inherit(&self, execution_id: &str) {
        let parent = live()
            .lock()
            .expect("not poisoned")
            .get(execution_id)
            .and_then(Weak::upgrade);
        let Some(parent) = parent.filter(|p| !Arc::ptr_eq(p, &self.known)) else {
            return;
        };
        let (numbers, texts) = {
            let p = parent.read().expect("not poisoned");
            (p.numbers.clone(), p.learned.clone())
        };
        let mut known = self.known.write().expect("not poisoned");
        // Numbers first: their text is then known as a number's.
        numbers.iter().for_each(|n| known.learn_number(n));
        texts.iter().for_each(|t| known.learn_text(t, false));
    }

    /// Remembers a secret text (with its encoded forms).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() || secret == MASK {
            return;
        }
        self.known
            .write()
            .expect("not poisoned")
            .learn_text(secret, false);
    }

    /// Remembers every string and number inside a secret value (booleans are masked only
    /// where they are the secret field itself: see [`Redactor::inputs`], [`Redactor::params`]).
    pub fn add_value(&self, v: &Value) {
        match v {
            Value::String(s) => self.add(s),
            Value::Number(n) => self.known.write().expect("not poisoned").learn_number(n),
            Value::Array(items) => items.iter().for_each(|i| self.add_value(i)),
            Value::Object(m) => m.values().for_each(|i| self.add_value(i)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// Remembers an org's secrets: its (and its parents') integration secrets and secret
    /// variables, whatever their JSON type.
    pub fn add_org(&self, org: &crate::org::OrgContext) {
        for (_, integration) in &org.integrations {
            for s in integration.secret_values() {
                self.add(s);
            }
        }
        for v in org.variables.values().filter(|v| v.secret) {
            self.add_value(&v.value);
        }
    }

    /// Workflow inputs as stored: every secret masked, and each secret input (`is_secret`)
    /// replaced whole by `***` unless null — numbers and booleans included.
    pub fn inputs(&self, input: &Map<String, Value>, is_secret: impl Fn(&str) -> bool) -> Value {
        let mut stored = self.redact(&Value::Object(input.clone()));
        mask_fields(&mut stored, &is_secret);
        stored
    }

    /// A trigger event (`TRIGGER`: body, params, headers…) as stored: every secret masked,
    /// top-level body fields named like a secret input (`is_secret`) masked whole, and
    /// credential headers dropped.
    pub fn trigger(&self, event: &Value, is_secret: impl Fn(&str) -> bool) -> Value {
        // A body field named like a secret input is a secret wherever a task copies it, even
        // when the trigger's `input` template fed the input something else.
        if let Some(Value::Object(body)) = event.get("body") {
            body.iter()
                .filter(|(k, v)| is_secret(k) && !v.is_null())
                .for_each(|(_, v)| self.add_value(v));
        }
        let mut stored = self.redact(event);
        if let Some(body) = stored.get_mut("body") {
            mask_fields(body, &is_secret);
        }
        if let Some(Value::Object(headers)) = stored.get_mut("headers") {
            headers.retain(|name, _| !HeaderPolicy::global().is_credential(name));
        }
        stored
    }

    /// Learns the secrets in an action's parameters from its schema (`x-weft-secret`) and
    /// from credential headers, and returns the parameters as stored: those positions
    /// replaced whole by `***`, every known secret masked elsewhere.
    pub fn params(&self, schema: &Value, params: &Value) -> Value {
        let mut marked = params.clone();
        self.learn(schema, schema, &mut marked);
        self.redact(&marked)
    }

    /// Learns the secrets in `v` and replaces their positions by `***`.
    fn learn(&self, root: &Value, schema: &Value, v: &mut Value) {
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => root.pointer(r.trim_start_matches('#')).unwrap_or(schema),
            None => schema,
        };
        if schema.get("x-weft-secret").and_then(Value::as_bool) == Some(true) {
            self.add_value(v);
            if !v.is_null() {
                *v = Value::String(MASK.into());
            }
            return;
        }
        let Value::Object(map) = v else { return };
        for (k, child) in map.iter_mut() {
            if k.eq_ignore_ascii_case("headers")
                && let Value::Object(headers) = child
            {
                for (name, value) in headers.iter_mut() {
                    if HeaderPolicy::global().is_credential(name) && !value.is_null() {
                        self.add_value(value);
                        // `Bearer abc`: the token alone may appear elsewhere.
                        if let Some(token) = value
                            .as_str()
                            .and_then(|s| s.split_once(' '))
                            .map(|(_, t)| t.trim())
                        {
                            self.add(token);
                        }
                        *value = Value::String(MASK.into());
                    }
                }
            }
            let child_schema = schema.get("properties").and_then(|p| p.get(k)).or_else(|| {
                schema
                    .get("anyOf")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|s| s.get("$ref").is_some()))
            });
            if let Some(cs) = child_schema {
                self.learn(root, cs, child);
            }
        }
    }

    /// What is known, with the automaton built over every secret learned so far.
    fn known(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        loop {
            {
                let known = self.known.read().expect("not poisoned");
                if !known.dirty {
                    return known;
                }
            }
            let mut known = self.known.write().expect("not poisoned");
            if known.dirty {
                known.rebuild();
            }
        }
    }

    /// A copy of `v` with every known secret masked.
    pub fn redact(&self, v: &Value) -> Value {
        let known = self.known();
        if known.is_empty() {
            return v.clone();
        }
        known.redact(v)
    }

    /// `s` with every known secret masked.
    pub fn redact_str(&self, s: &str) -> String {
        let known = self.known();
        known.mask_text(s).unwrap_or_else(|| s.to_string())
    }
}

/// Replaces the non-null top-level fields of `v` that `is_secret` names by `***`.
fn mask_fields(v: &mut Value, is_secret: &impl Fn(&str) -> bool) {
    if let Value::Object(m) = v {
        for (k, field) in m.iter_mut() {
            if is_secret(k) && !field.is_null() {
                *field = Value::String(MASK.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_marked_and_header_secrets_are_masked_everywhere() {
        let r = Redactor::default();
        let schema = json!({
            "properties": { "auth": { "$ref": "#/$defs/Auth" }, "url": {"type": "string"} },
            "$defs": { "Auth": { "properties": {
                "password": { "type": "string", "x-weft-secret": true },
                "pin": { "type": "integer", "x-weft-secret": true },
                "flag": { "type": "boolean", "x-weft-secret": true }
            } } }
        });
        let params = json!({
            "url": "https://x/api",
            "auth": { "password": "hunter22", "pin": 77, "flag": false },
            "headers": { "Authorization": "Bearer tok-123456", "Accept": "json", "X-Custom-Token": 5150 }
        });
        let stored = r.params(&schema, &params);
        assert_eq!(stored["auth"]["password"], "***");
        assert_eq!(stored["auth"]["pin"], "***");
        assert_eq!(
            stored["auth"]["flag"], "***",
            "a secret boolean is masked in place"
        );
        assert_eq!(stored["headers"]["Authorization"], "***");
        assert_eq!(stored["headers"]["X-Custom-Token"], "***");
        assert_eq!(stored["headers"]["Accept"], "json");
        assert_eq!(
            r.redact(&json!({"echo": "token was tok-123456", "n": 5150, "ok": false})),
            json!({"echo": "token was ***", "n": "***", "ok": false}),
            "booleans elsewhere are left alone"
        );
        assert_eq!(r.redact_str("login hunter22 failed"), "login *** failed");
    }

    #[test]
    fn numbers_are_masked_as_values_and_inside_text() {
        let r = Redactor::default();
        r.add_value(&json!(482913));
        let stored = r.redact(&json!({
            "pin": 482913,
            "float": 482913.0,
            "text": "PIN 482913, again 482913",
            "whole": "482913",
            "longer": "order 14829130 and 4829131",
            "other": 17,
            "list": [482913, 1]
        }));
        assert_eq!(
            stored,
            json!({
                "pin": "***",
                "float": "***",
                "text": "PIN ***, again ***",
                "whole": "***",
                "longer": "order 14829130 and 4829131",
                "other": 17,
                "list": ["***", 1]
            })
        );
        // A short number is masked only as the secret field itself (see `inputs`): equal
        // numbers elsewhere are data a later task may route on.
        let r = Redactor::default();
        r.add_value(&json!(42));
        assert_eq!(
            r.redact(&json!({"a": 42, "b": "42", "c": "room 42"})),
            json!({"a": 42, "b": "42", "c": "room 42"})
        );
        assert_eq!(
            r.inputs(json!({"pin": 42}).as_object().unwrap(), |k| k == "pin"),
            json!({"pin": "***"})
        );
    }

    #[test]
    fn booleans_are_masked_only_as_the_secret_field() {
        let r = Redactor::default();
        r.add_value(&json!(true));
        let input = json!({"flag": true, "other": true, "pin": 1234, "none": null});
        let stored = r.inputs(input.as_object().unwrap(), |k| {
            k == "flag" || k == "pin" || k == "none"
        });
        assert_eq!(
            stored,
            json!({"flag": "***", "other": true, "pin": "***", "none": null})
        );
        assert_eq!(r.redact(&json!([true, false])), json!([true, false]));
    }

    #[test]
    fn url_encoded_forms_are_masked() {
        let r = Redactor::default();
        let secret = "p@ss w/rd+é&=~*'";
        r.add(secret);
        for form in [
            "p%40ss%20w%2Frd%2B%C3%A9%26%3D~%2A%27", // RFC 3986
            "p%40ss+w%2Frd%2B%C3%A9%26%3D~%2A%27",   // RFC 3986, `+` for space
            "p%40ss%20w/rd%2B%C3%A9%26%3D~%2A%27",   // Python quote
            "p%40ss%20w/rd%2B%C3%A9%26%3D%7E%2A%27", // minijinja urlencode
            "p%40ss+w%2Frd%2B%C3%A9%26%3D%7E*%27",   // form encoding
            "p%40ss%20w%2Frd%2B%C3%A9%26%3D~*'",     // encodeURIComponent
            "p%40ss%20w%2frd%2b%c3%a9%26%3d~%2a%27", // lower-case hex
        ] {
            assert_eq!(
                r.redact_str(&format!("client_secret={form}&scope=x")),
                "client_secret=***&scope=x",
                "{form}"
            );
        }
    }

    #[test]
    fn base64_forms_are_masked() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        let r = Redactor::default();
        let secret = "s3cr3t?>value~";
        r.add(secret);
        for text in [
            STANDARD.encode(secret),
            STANDARD.encode(secret).trim_end_matches('=').to_string(),
            URL_SAFE.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
        ] {
            assert_eq!(
                r.redact_str(&format!("b64 {text} end")),
                "b64 *** end",
                "{text}"
            );
            assert_eq!(r.redact(&json!(text)), json!("***"));
        }
        // Inside longer encoded data, at any byte offset: what only the secret decides goes.
        for prefix in ["", "u:", "ab:", "abc:"] {
            let whole = STANDARD.encode(format!("{prefix}{secret}:tail"));
            let masked = r.redact_str(&format!("Basic {whole}"));
            assert!(masked.contains(MASK), "{prefix:?}: {masked}");
            // At most the few characters shared with the neighbouring bytes are left.
            let left = masked.len() - MASK.len();
            assert!(
                left <= "Basic ".len() + whole.len() - 16,
                "{prefix:?}: {masked}"
            );
        }
    }

    #[test]
    fn json_escaped_forms_are_masked() {
        let r = Redactor::default();
        let secret = "pa\"ss\\wörd/<1>";
        r.add(secret);
        let body = json!({"password": secret}).to_string();
        assert_eq!(r.redact_str(&body), r#"{"password":"***"}"#);
        for text in [
            r#"{"password":"pa\"ss\\w\u00f6rd/<1>"}"#,
            r#"{"password":"pa\"ss\\wörd\/<1>"}"#,
            r#"{"password":"pa\"ss\\w\u00f6rd\/<1>"}"#,
            r#"{"password":"pa\"ss\\wörd/\u003c1\u003e"}"#,
        ] {
            assert_eq!(r.redact_str(text), r#"{"password":"***"}"#, "{text}");
        }
    }

    #[test]
    fn longest_secret_wins_and_many_secrets_are_one_pass() {
        let r = Redactor::default();
        r.add("abcd");
        r.add("abcdefgh");
        assert_eq!(r.redact_str("xabcdefghx abcdx"), "x***x ***x");
        for i in 0..500 {
            r.add(&format!("secret-number-{i:04}"));
        }
        assert_eq!(
            r.redact_str("a secret-number-0042 b secret-number-0499"),
            "a *** b ***"
        );
        assert_eq!(r.redact_str("nothing here"), "nothing here");
        // Short secrets: only whole strings.
        r.add("ab");
        assert_eq!(r.redact(&json!(["ab", "abba"])), json!(["***", "abba"]));
    }

    #[test]
    fn triggers_lose_secrets_and_credential_headers() {
        let r = Redactor::default();
        r.add_value(&json!("hook-pass-123"));
        r.add_value(&json!(482913));
        let event = json!({
            "type": "webhook",
            "body": {"password": "hook-pass-123", "pin": 482913, "flag": true, "note": "pin 482913", "keep": 1},
            "params": {"p": "hook-pass-123"},
            "headers": {"x-api-key": "k", "x-custom-token": "t", "content-type": "application/json"}
        });
        let stored = r.trigger(&event, |k| k == "flag");
        assert_eq!(
            stored["body"],
            json!({"password": "***", "pin": "***", "flag": "***", "note": "pin ***", "keep": 1})
        );
        assert_eq!(stored["params"]["p"], "***");
        assert_eq!(
            stored["headers"],
            json!({"content-type": "application/json"})
        );
    }

    /// `test.echo`: returns `value`.
    struct Echo;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct EchoParams {
        value: Value,
    }

    impl crate::action::TypedAction for Echo {
        const NAME: &'static str = "test.echo";
        const DESCRIPTION: &'static str = "returns value";
        type Params = EchoParams;
        async fn run(
            &self,
            _cx: crate::action::ActionContext,
            p: EchoParams,
        ) -> Result<Value, crate::action::ActionError> {
            Ok(p.value)
        }
    }

    #[tokio::test]
    async fn a_resumed_execution_sees_typed_secrets_and_the_real_trigger() {
        let mut registry = crate::Registry::new();
        registry.register(Echo);
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let engine = super::super::Engine::new(store, Arc::new(registry));
        let record = engine
            .deploy(
                r#"
name: typed-secrets
input:
  pin: { type: integer, secret: true, required: true }
  armed: { type: boolean, secret: true, required: true }
  pass: { type: string, secret: true, required: true }
tasks:
  echo:
    action: test.echo
    input:
      value: { pin: "{{ CTX.pin }}", armed: "{{ CTX.armed }}", text: "pin {{ CTX.pin }}" }
output:
  pin_plus_one: "{{ CTX.pin + 1 }}"
  armed: "{{ CTX.armed == true }}"
  trigger_is_real: "{{ TRIGGER.body.pass == CTX.pass and TRIGGER.body.pin == CTX.pin }}"
"#,
                None,
            )
            .await
            .unwrap();
        let input = json!({"pin": 482913, "armed": true, "pass": "hunter2-long"});
        let trigger = json!({"type": "webhook", "body": {"pass": "hunter2-long", "pin": 482913, "armed": true}});
        let id = engine
            .start(
                &record,
                input.as_object().cloned().unwrap(),
                super::super::StartOptions {
                    org: None,
                    trigger: Some(trigger),
                },
            )
            .await
            .unwrap();
        // As if another process picked it up: only the store and the sealed copy remain.
        super::super::conductor::forget_handoff(&id);
        let exec = engine.run(&id).await.unwrap();
        assert_eq!(exec.status, crate::store::ExecStatus::Succeeded, "{exec:?}");
        assert_eq!(
            exec.output.unwrap(),
            json!({"pin_plus_one": 482914, "armed": true, "trigger_is_real": true})
        );
        assert_eq!(
            exec.input,
            json!({"pin": "***", "armed": "***", "pass": "***"})
        );
        assert_eq!(
            exec.trigger["body"],
            json!({"pass": "***", "pin": "***", "armed": "***"})
        );
        let runs = engine.store().task_runs(&id).await.unwrap();
        let stored = serde_json::to_string(
            &runs
                .iter()
                .map(|r| (&r.input, &r.result))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(
            !stored.contains("482913") && !stored.contains("hunter2-long"),
            "{stored}"
        );
        assert!(stored.contains("pin ***"), "{stored}");
    }

    /// `test.child`: runs the workflow `child` with `value` as its input.
    struct Child;

    impl crate::action::TypedAction for Child {
        const NAME: &'static str = "test.child";
        const DESCRIPTION: &'static str = "runs `child`";
        type Params = EchoParams;
        async fn run(
            &self,
            cx: crate::action::ActionContext,
            p: EchoParams,
        ) -> Result<Value, crate::action::ActionError> {
            let workflows = cx.workflows.clone();
            workflows.run_child(&cx, "child", p.value).await
        }
    }

    #[tokio::test]
    async fn a_sub_workflow_knows_its_parents_secrets() {
        let mut registry = crate::Registry::new();
        registry.register(Echo);
        registry.register(Child);
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let engine = super::super::Engine::new(store, Arc::new(registry));
        engine
            .deploy(
                r#"
name: child
input:
  token: { type: string }
  code: { type: integer }
tasks:
  use:
    action: test.echo
    input: { value: "{{ CTX.token }}/{{ CTX.code }}" }
output:
  said: "{{ TASKS.use.result }}"
"#,
                None,
            )
            .await
            .unwrap();
        let parent = engine
            .deploy(
                r#"
name: parent
input:
  pass: { type: string, secret: true, required: true }
  pin: { type: integer, secret: true, required: true }
tasks:
  call:
    action: test.child
    input: { value: { token: "{{ CTX.pass }}", code: "{{ CTX.pin }}" } }
"#,
                None,
            )
            .await
            .unwrap();
        let input = json!({"pass": "parent-secret-1", "pin": 482913});
        let exec = engine
            .execute(
                &parent,
                input.as_object().cloned().unwrap(),
                super::super::StartOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(exec.status, crate::store::ExecStatus::Succeeded, "{exec:?}");
        let child = engine.store().children(&exec.id).await.unwrap().remove(0);
        assert_eq!(child.input, json!({"token": "***", "code": "***"}));
        assert_eq!(child.output.unwrap(), json!({"said": "***/***"}));
    }

    #[test]
    fn header_policy() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "set-cookie",
            "X-API-Key",
            "api-key",
            "x-auth-token",
            "x-weft-secret",
            "X-Hook-Signature",
            "x-custom-token",
            "x-client-secret",
            "x-db-password",
            "x-passwd",
            "apikey",
            "x-functions-key",
        ] {
            assert!(is_credential_header(name, &[]), "{name}");
        }
        for name in [
            "content-type",
            "accept",
            "user-agent",
            "x-request-id",
            "host",
        ] {
            assert!(!is_credential_header(name, &[]), "{name}");
        }
        let p = HeaderPolicy::parse(" X-Tenant-Sig , signature,,");
        assert_eq!(p.extra(), ["x-tenant-sig", "signature"]);
        assert!(p.is_credential("x-tenant-sig"));
        assert!(p.is_credential("X-Body-Signature"));
        assert!(!p.is_credential("x-request-id"));
        assert!(!HeaderPolicy::default().is_credential("x-tenant-sig"));
    }
}
