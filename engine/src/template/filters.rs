//! weft's filters beyond minijinja's built-ins (and a few Jinja2/Ansible-compatible
//! replacements of built-ins whose minijinja behaviour surprises authors coming from Rewst,
//! StackStorm or Ansible).
//!
//! Everything here is a plain function registered by name; minijinja converts the arguments.
//! Errors are `minijinja::Error`s whose message starts with the filter's name. Values that
//! leave a filter are data (strings, numbers, lists, maps, none): dates are RFC 3339 strings,
//! bytes are decoded to text.
//!
//! docs/templates.md lists every filter with an example; tests/jinja/ holds the conformance
//! corpus whose expected values come from Python Jinja2 (with Python reference
//! implementations of these filters in tests/jinja/generate_cases.py — keep the two in step).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use base64::Engine as _;
use indexmap::IndexMap;
use minijinja::value::{Kwargs, Rest, Serde, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

use super::limits::{
    self, LimitedBuf, MAX_DATA_BYTES, MAX_DEPTH, MAX_ITEMS, MAX_OUTPUT_BYTES, check_output,
    check_width,
};

pub(super) fn register(env: &mut Environment<'static>) {
    use super::builtins::{add_filter, add_function, add_test};
    // JSON / YAML
    for name in ["from_json", "json_parse", "from_json_string"] {
        add_filter(env, name, from_json);
    }
    for name in ["to_json", "json_stringify", "to_json_string", "json_dump"] {
        add_filter(env, name, to_json);
    }
    add_filter(env, "to_nice_json", to_nice_json);
    add_filter(env, "json_escape", json_escape);
    for name in ["from_yaml", "yaml_parse", "from_yaml_string"] {
        add_filter(env, name, from_yaml);
    }
    add_filter(env, "from_yaml_all", from_yaml_all);
    for name in ["to_yaml", "to_yaml_string", "yaml_dump"] {
        add_filter(env, name, to_yaml);
    }
    add_filter(env, "to_nice_yaml", to_nice_yaml);
    add_filter(env, "parse_csv", parse_csv);

    // Encodings and digests
    for name in ["b64encode", "base64"] {
        add_filter(env, name, b64encode);
    }
    for name in ["b64decode", "decode_base64"] {
        add_filter(env, name, b64decode);
    }
    add_filter(env, "urldecode", urldecode);
    add_filter(env, "hash", hash);
    add_filter(env, "hmac", hmac);

    // Regular expressions
    add_filter(env, "regex_search", regex_search);
    add_filter(env, "regex_findall", regex_findall);
    add_filter(env, "regex_replace", regex_replace);
    add_filter(env, "regex_match", regex_match);
    add_filter(env, "regex_escape", regex_escape);
    add_test(env, "match", test_match);
    add_test(env, "search", test_search);
    add_test(env, "regex", test_regex);

    // Dates and times
    add_filter(env, "parse_datetime", parse_datetime);
    add_filter(env, "format_datetime", format_datetime);
    add_filter(env, "as_timezone", as_timezone);
    add_filter(env, "convert_from_epoch", convert_from_epoch);
    for name in ["convert_to_epoch", "to_epoch"] {
        add_filter(env, name, convert_to_epoch);
    }
    add_filter(
        env,
        "to_human_time_from_seconds",
        to_human_time_from_seconds,
    );

    // Data shaping
    add_filter(env, "combine", combine);
    add_filter(env, "json_query", json_query);
    add_filter(env, "jsonpath", jsonpath);
    add_filter(env, "flatten", flatten);
    add_filter(env, "dict2items", dict2items);
    add_filter(env, "items2dict", items2dict);
    add_filter(env, "union", union);
    add_filter(env, "intersect", intersect);
    add_filter(env, "difference", difference);
    add_filter(env, "symmetric_difference", symmetric_difference);
    add_test(env, "subset", test_subset);
    add_test(env, "superset", test_superset);
    add_test(env, "contains", test_contains);

    // Scalars
    add_filter(env, "ternary", ternary);
    add_filter(env, "bool", to_bool);
    add_filter(env, "int", to_int);
    add_filter(env, "float", to_float);
    add_filter(env, "mandatory", mandatory);
    add_filter(env, "type_debug", type_debug);
    add_filter(env, "wordcount", wordcount);
    add_filter(env, "truncate", truncate);
    add_filter(env, "center", center);
    add_filter(env, "basename", basename);
    add_filter(env, "dirname", dirname);
    add_filter(env, "win_basename", win_basename);
    add_filter(env, "win_dirname", win_dirname);
    add_filter(env, "version_compare", version_compare);
    for name in ["version", "version_compare"] {
        add_test(env, name, version_compare);
    }

    // Python's `dict(pairs)` as well as minijinja's `dict(map, k=v)`.
    add_function(env, "dict", dict);
    // Jinja2's `cycler('odd', 'even')` (minijinja-contrib's wants one list).
    add_function(env, "cycler", cycler);
}

// ---------------------------------------------------------------------------------------------
// helpers

fn op_err(msg: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

fn parse_err(msg: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::CannotDeserialize, msg)
}

/// Fails on an undefined value the way SemiStrict does, naming the value.
fn defined(value: &Value, filter: &str) -> Result<(), Error> {
    if value.is_undefined() {
        Err(Error::new(
            ErrorKind::UndefinedError,
            format!("{filter}: the value is undefined"),
        ))
    } else {
        Ok(())
    }
}

/// A template value as JSON data.
fn to_data(value: &Value, filter: &str) -> Result<serde_json::Value, Error> {
    defined(value, filter)?;
    super::to_json(value).map_err(|e| {
        let kind = match e.kind {
            super::TemplateErrorKind::Undefined => ErrorKind::UndefinedError,
            _ => ErrorKind::InvalidOperation,
        };
        Error::new(kind, format!("{filter}: {}", e.message))
    })
}

/// JSON data as a template value.
fn from_data(data: &serde_json::Value) -> Value {
    Value::from(Serde(data))
}

/// The text of a string argument; numbers are accepted and written out.
fn text<'a>(value: &'a Value, filter: &str) -> Result<Cow<'a, str>, Error> {
    defined(value, filter)?;
    match value.kind() {
        ValueKind::String | ValueKind::Bytes => match value.as_str() {
            Some(s) => Ok(Cow::Borrowed(s)),
            None => Ok(Cow::Owned(
                String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned(),
            )),
        },
        ValueKind::Number => Ok(Cow::Owned(value.to_string())),
        other => Err(op_err(format!("{filter}: expected a string, got {other}"))),
    }
}

fn is_map(v: &Value) -> bool {
    v.kind() == ValueKind::Map
}

fn is_seq(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// The (key, value) pairs of a map, in order (at most [`MAX_ITEMS`]).
fn pairs(v: &Value) -> Result<Vec<(Value, Value)>, Error> {
    let mut out = Vec::new();
    for key in v.try_iter()? {
        if out.len() >= MAX_ITEMS {
            return Err(op_err(format!(
                "the map has more than the limit of {MAX_ITEMS} entries"
            )));
        }
        let item = v.get_item(&key)?;
        out.push((key, item));
    }
    Ok(out)
}

/// The items of a list (at most [`MAX_ITEMS`]: `[0] * 10**7` is cheap to make but not to
/// copy).
fn items(v: &Value) -> Result<Vec<Value>, Error> {
    let mut out = Vec::with_capacity(v.len().unwrap_or(0).min(MAX_ITEMS));
    for item in v.try_iter()? {
        if out.len() >= MAX_ITEMS {
            return Err(op_err(format!(
                "the list has more than the limit of {MAX_ITEMS} items"
            )));
        }
        out.push(item);
    }
    Ok(out)
}

fn map_value(entries: IndexMap<Value, Value>) -> Value {
    Value::from(entries)
}

// ---------------------------------------------------------------------------------------------
// JSON / YAML / CSV

/// `'{"a": 1}' | from_json` → `{"a": 1}`. A list or map passes through unchanged, so
/// `RESULT.body | from_json` works whether or not the action already parsed the body.
fn from_json(value: &Value) -> Result<Value, Error> {
    if is_map(value) || is_seq(value) {
        return Ok(value.clone());
    }
    let s = text(value, "from_json")?;
    let data: serde_json::Value =
        serde_json::from_str(&s).map_err(|e| parse_err(format!("from_json: invalid JSON: {e}")))?;
    Ok(from_data(&data))
}

/// Writes JSON like Python's `json.dumps` (`, ` and `: ` separators, or an indented layout),
/// refusing output larger than [`MAX_OUTPUT_BYTES`].
fn dump_json(
    data: &serde_json::Value,
    indent: Option<usize>,
    filter: &str,
) -> Result<String, Error> {
    use serde::Serialize;
    let indent = indent
        .map(|n| check_width(filter, "indent", n))
        .transpose()?;
    let mut out = LimitedBuf::new(MAX_OUTPUT_BYTES);
    let result = match indent {
        Some(n) => {
            let pad = " ".repeat(n);
            let fmt = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
            data.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))
        }
        None => data.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            PythonFormatter,
        )),
    };
    match result {
        Ok(()) => Ok(String::from_utf8(out.buf).expect("serde_json writes UTF-8")),
        Err(_) if out.hit => Err(limits::output_error(filter)),
        Err(e) => Err(op_err(format!("{filter}: {e}"))),
    }
}

/// `json.dumps`'s default layout: `[1, 2]`, `{"a": 1}`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

fn sort_keys(data: &mut serde_json::Value) {
    match data {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut v) in entries {
                sort_keys(&mut v);
                map.insert(k, v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

fn indent_arg(v: Option<Value>, filter: &str) -> Result<Option<usize>, Error> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() || v.is_undefined() => Ok(None),
        Some(v) => match v.as_usize() {
            Some(n) => check_width(filter, "indent", n).map(Some),
            None if v.is_number() && f64::try_from(v.clone()).is_ok_and(|f| f > 0.0) => {
                Err(limits::width_error(filter, "indent", &v.to_string()))
            }
            None => Err(op_err(format!(
                "{filter}: indent must be a non-negative integer"
            ))),
        },
    }
}

/// `x | to_json` → `{"a": 1, "b": [1, 2]}`; `to_json(indent=2)`, `to_json(sort_keys=true)`.
/// Keys keep their order and non-ASCII text is written as is (Python's `ensure_ascii=False`).
fn to_json(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let indent = match indent {
        Some(i) => Some(i),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = indent_arg(indent, "to_json")?;
    let sort = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let mut data = to_data(value, "to_json")?;
    if sort {
        sort_keys(&mut data);
    }
    dump_json(&data, indent, "to_json")
}

/// Ansible's `to_nice_json`: indented by 4, keys sorted.
fn to_nice_json(value: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<String, Error> {
    let indent = match indent {
        Some(i) => i,
        None => kwargs.get::<Option<usize>>("indent")?.unwrap_or(4),
    };
    kwargs.assert_all_used()?;
    check_width("to_nice_json", "indent", indent)?;
    let mut data = to_data(value, "to_nice_json")?;
    sort_keys(&mut data);
    dump_json(&data, Some(indent), "to_nice_json")
}

/// `'say "hi"' | json_escape` → `say \"hi\"`: the text escaped for use inside a JSON string.
fn json_escape(value: &Value) -> Result<String, Error> {
    let s = text(value, "json_escape")?;
    // Control characters become `\u0001`: up to six times the input.
    let mut out = LimitedBuf::new(MAX_OUTPUT_BYTES.saturating_add(2));
    if let Err(e) = serde_json::to_writer(&mut out, &*s) {
        return Err(if out.hit {
            limits::output_error("json_escape")
        } else {
            op_err(format!("json_escape: {e}"))
        });
    }
    let quoted = String::from_utf8(out.buf).expect("serde_json writes UTF-8");
    Ok(quoted[1..quoted.len() - 1].to_string())
}

fn yaml_to_value(mut doc: serde_yaml::Value) -> Value {
    let _ = doc.apply_merge();
    Value::from(Serde(doc))
}

/// `'a: 1' | from_yaml` → `{"a": 1}` (YAML 1.2: `yes`/`no`/`on`/`off` stay strings;
/// `<<` merge keys are applied). A list or map passes through unchanged.
fn from_yaml(value: &Value) -> Result<Value, Error> {
    if is_map(value) || is_seq(value) {
        return Ok(value.clone());
    }
    let s = text(value, "from_yaml")?;
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&s).map_err(|e| parse_err(format!("from_yaml: invalid YAML: {e}")))?;
    Ok(yaml_to_value(doc))
}

/// `"a: 1\n---\na: 2" | from_yaml_all` → `[{"a": 1}, {"a": 2}]`.
fn from_yaml_all(value: &Value) -> Result<Value, Error> {
    use serde::Deserialize;
    let s = text(value, "from_yaml_all")?;
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(&s) {
        let doc = serde_yaml::Value::deserialize(de)
            .map_err(|e| parse_err(format!("from_yaml_all: invalid YAML: {e}")))?;
        docs.push(yaml_to_value(doc));
    }
    Ok(Value::from(docs))
}

fn dump_yaml(data: &serde_json::Value, filter: &str) -> Result<String, Error> {
    let mut out = LimitedBuf::new(MAX_OUTPUT_BYTES);
    match serde_yaml::to_writer(&mut out, data) {
        Ok(()) => String::from_utf8(out.buf).map_err(|e| op_err(format!("{filter}: {e}"))),
        Err(_) if out.hit => Err(limits::output_error(filter)),
        Err(e) => Err(op_err(format!("{filter}: {e}"))),
    }
}

/// `{"a": [1, 2]} | to_yaml` → `"a:\n- 1\n- 2\n"` (block style, keys in order).
fn to_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    // Accepted for Ansible compatibility; serde_yaml always indents by 2.
    let _ = kwargs.get::<Option<Value>>("indent")?;
    let sort = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let mut data = to_data(value, "to_yaml")?;
    if sort {
        sort_keys(&mut data);
    }
    dump_yaml(&data, "to_yaml")
}

/// Ansible's `to_nice_yaml`: keys sorted (indentation is always 2).
fn to_nice_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let _ = kwargs.get::<Option<Value>>("indent")?;
    kwargs.assert_all_used()?;
    let mut data = to_data(value, "to_nice_yaml")?;
    sort_keys(&mut data);
    dump_yaml(&data, "to_nice_yaml")
}

/// `"name,email\nAda,ada@x" | parse_csv` → `[{"name": "Ada", "email": "ada@x"}]`.
/// `parse_csv(';')` or `parse_csv(delimiter='\t')`; `parse_csv(header=false)` → lists.
/// A short row fills the missing columns with none; extra cells are dropped; blank lines are
/// skipped; a leading byte-order mark is ignored.
fn parse_csv(value: &Value, delimiter: Option<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let delimiter = match delimiter {
        Some(d) => Some(d),
        None => kwargs.get::<Option<String>>("delimiter")?,
    }
    .unwrap_or_else(|| ",".to_string());
    let header = kwargs.get::<Option<bool>>("header")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let delim = match delimiter.as_bytes() {
        [b] => *b,
        _ => {
            return Err(op_err(format!(
                "parse_csv: the delimiter must be one ASCII character, got {delimiter:?}"
            )));
        }
    };
    let s = text(value, "parse_csv")?;
    let s = s.strip_prefix('\u{feff}').unwrap_or(&s);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(false)
        .flexible(true)
        .from_reader(s.as_bytes());
    // Short rows are filled up to the header's width, so the result can have many more
    // cells than the text has characters: count them first.
    let max_cells = MAX_ITEMS;
    let too_many = || limits::items_error("parse_csv", "cells");
    let mut rows = Vec::new();
    let mut cells: usize = 0;
    for record in reader.records() {
        let record = record.map_err(|e| parse_err(format!("parse_csv: {e}")))?;
        if record.len() == 1 && record.get(0) == Some("") {
            continue;
        }
        cells = cells.saturating_add(record.len());
        if cells > max_cells {
            return Err(too_many());
        }
        rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
    }
    if header
        && let Some(names) = rows.first()
        && names.len().saturating_mul(rows.len() - 1) > max_cells
    {
        return Err(too_many());
    }
    if !header {
        return Ok(Value::from_iter(
            rows.into_iter()
                .map(|r| Value::from_iter(r.into_iter().map(Value::from))),
        ));
    }
    let mut rows = rows.into_iter();
    let Some(names) = rows.next() else {
        return Ok(Value::from(Vec::<Value>::new()));
    };
    Ok(Value::from_iter(rows.map(|row| {
        let mut m = IndexMap::new();
        for (i, name) in names.iter().enumerate() {
            let cell = row
                .get(i)
                .map_or(Value::from(()), |c| Value::from(c.as_str()));
            m.insert(Value::from(name.as_str()), cell);
        }
        map_value(m)
    })))
}

// ---------------------------------------------------------------------------------------------
// Encodings and digests

/// `'hi' | b64encode` → `aGk=`.
fn b64encode(value: &Value) -> Result<String, Error> {
    let s = text(value, "b64encode")?;
    check_output("b64encode", s.len().div_ceil(3).saturating_mul(4))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))
}

/// `'aGk=' | b64decode` → `hi`. Whitespace, missing padding and the URL-safe alphabet are
/// accepted; the decoded bytes must be UTF-8 text.
fn b64decode(value: &Value) -> Result<String, Error> {
    let s = text(value, "b64decode")?;
    let cleaned: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .map_err(|e| parse_err(format!("b64decode: invalid base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| parse_err("b64decode: the decoded bytes are not UTF-8 text"))
}

/// `'a%20b+c' | urldecode` → `a b c` (like Python's `unquote_plus`).
fn urldecode(value: &Value) -> Result<String, Error> {
    let s = text(value, "urldecode")?;
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn digest_hex<D: sha2::Digest>(data: &[u8]) -> String {
    hex::encode(D::digest(data))
}

/// `'x' | hash('sha256')` → hex digest; `md5`, `sha1` (the default), `sha224`, `sha256`,
/// `sha384`, `sha512`.
fn hash(value: &Value, algorithm: Option<String>) -> Result<String, Error> {
    let s = text(value, "hash")?;
    let data = s.as_bytes();
    let alg = algorithm.unwrap_or_else(|| "sha1".into());
    Ok(match alg.to_ascii_lowercase().as_str() {
        "md5" => digest_hex::<md5::Md5>(data),
        "sha1" => digest_hex::<sha1::Sha1>(data),
        "sha224" => digest_hex::<sha2::Sha224>(data),
        "sha256" => digest_hex::<sha2::Sha256>(data),
        "sha384" => digest_hex::<sha2::Sha384>(data),
        "sha512" => digest_hex::<sha2::Sha512>(data),
        other => {
            return Err(op_err(format!(
                "hash: unknown algorithm {other:?} (md5, sha1, sha224, sha256, sha384, sha512)"
            )));
        }
    })
}

fn mac<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <M as hmac::Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// `'msg' | hmac('key', 'sha256')` → hex HMAC; algorithms `md5`, `sha1`, `sha256` (default),
/// `sha384`, `sha512`; `hmac('key', 'sha1', 'base64')` for a base64 digest (what Autotask's
/// `X-Hook-Signature` is).
fn hmac(
    value: &Value,
    key: &Value,
    algorithm: Option<String>,
    encoding: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let algorithm = match algorithm {
        Some(a) => Some(a),
        None => kwargs.get::<Option<String>>("algorithm")?,
    };
    let encoding = match encoding {
        Some(e) => Some(e),
        None => kwargs.get::<Option<String>>("encoding")?,
    };
    kwargs.assert_all_used()?;
    let msg = text(value, "hmac")?;
    let key = text(key, "hmac")?;
    let (k, d) = (key.as_bytes(), msg.as_bytes());
    let raw = match algorithm
        .as_deref()
        .unwrap_or("sha256")
        .to_ascii_lowercase()
        .as_str()
    {
        "md5" => mac::<hmac::Hmac<md5::Md5>>(k, d),
        "sha1" => mac::<hmac::Hmac<sha1::Sha1>>(k, d),
        "sha224" => mac::<hmac::Hmac<sha2::Sha224>>(k, d),
        "sha256" => mac::<hmac::Hmac<sha2::Sha256>>(k, d),
        "sha384" => mac::<hmac::Hmac<sha2::Sha384>>(k, d),
        "sha512" => mac::<hmac::Hmac<sha2::Sha512>>(k, d),
        other => {
            return Err(op_err(format!(
                "hmac: unknown algorithm {other:?} (md5, sha1, sha224, sha256, sha384, sha512)"
            )));
        }
    };
    match encoding.as_deref().unwrap_or("hex") {
        "hex" => Ok(hex::encode(raw)),
        "base64" => Ok(base64::engine::general_purpose::STANDARD.encode(raw)),
        other => Err(op_err(format!(
            "hmac: unknown encoding {other:?} (hex or base64)"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Regular expressions (Rust `regex` syntax: no look-around, no backreferences in patterns)

const REGEX_CACHE_SIZE: usize = 128;

type RegexKey = (String, bool, bool, bool);

static REGEX_CACHE: LazyLock<Mutex<HashMap<RegexKey, regex::Regex>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Compiles (or fetches from a small cache) a pattern. `anchored` matches at the start only.
fn compile_regex(
    pattern: &str,
    ignorecase: bool,
    multiline: bool,
    anchored: bool,
    filter: &str,
) -> Result<regex::Regex, Error> {
    let key = (pattern.to_string(), ignorecase, multiline, anchored);
    if let Some(re) = REGEX_CACHE.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(re);
    }
    let source = if anchored {
        Cow::Owned(format!(r"\A(?:{pattern})"))
    } else {
        Cow::Borrowed(pattern)
    };
    let re = regex::RegexBuilder::new(&source)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            op_err(format!(
                "{filter}: invalid regular expression {pattern:?}: {e}"
            ))
        })?;
    if let Ok(mut cache) = REGEX_CACHE.lock() {
        if cache.len() >= REGEX_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(key, re.clone());
    }
    Ok(re)
}

fn flag(kwargs: &Kwargs, name: &str) -> Result<bool, Error> {
    Ok(kwargs.get::<Option<bool>>(name)?.unwrap_or(false))
}

fn group_value(m: Option<regex::Match<'_>>) -> Value {
    m.map_or(Value::from(()), |m| Value::from(m.as_str()))
}

/// `'ticket 42' | regex_search('\\d+')` → `42` (none when nothing matches);
/// `regex_search('(?P<n>\\d+)', '\\g<n>')` or `regex_search('(\\d+)', '\\1')` → a list of the
/// named groups; `ignorecase=true`, `multiline=true`. (Ansible semantics.)
fn regex_search(
    value: &Value,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    kwargs.assert_all_used()?;
    let s = text(value, "regex_search")?;
    let re = compile_regex(&pattern, ignorecase, multiline, false, "regex_search")?;
    let Some(caps) = re.captures(&s) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(group_value(caps.get(0)));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        if let Some(name) = g.strip_prefix("\\g<").and_then(|r| r.strip_suffix('>')) {
            match name.parse::<usize>() {
                Ok(i) => out.push(group_value(caps.get(i))),
                Err(_) => {
                    if re.capture_names().flatten().all(|n| n != name) {
                        return Err(op_err(format!("regex_search: unknown group name {name:?}")));
                    }
                    out.push(group_value(caps.name(name)));
                }
            }
        } else if let Some(Ok(i)) = g.strip_prefix('\\').map(str::parse::<usize>) {
            if i >= caps.len() {
                return Err(op_err(format!("regex_search: no group {i} in the pattern")));
            }
            out.push(group_value(caps.get(i)));
        } else {
            return Err(op_err(format!(
                "regex_search: unknown argument {g:?} (use '\\\\1' or '\\\\g<name>')"
            )));
        }
    }
    Ok(Value::from(out))
}

/// `'a1b22' | regex_findall('\\d+')` → `["1", "22"]`; with one group, the group; with several,
/// a list of lists (Python's `re.findall`).
fn regex_findall(value: &Value, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    kwargs.assert_all_used()?;
    let s = text(value, "regex_findall")?;
    let re = compile_regex(&pattern, ignorecase, multiline, false, "regex_findall")?;
    let ngroups = re.captures_len() - 1;
    let empty = || Value::from("");
    let mut out: Vec<Value> = Vec::new();
    let mut made: usize = 0;
    for caps in re.captures_iter(&s) {
        made = made.saturating_add(ngroups.max(1));
        if made > MAX_ITEMS {
            return Err(limits::items_error("regex_findall", "matched values"));
        }
        out.push(match ngroups {
            0 => Value::from(caps.get(0).map_or("", |m| m.as_str())),
            1 => caps.get(1).map_or_else(empty, |m| Value::from(m.as_str())),
            n => Value::from_iter(
                (1..=n).map(|i| caps.get(i).map_or_else(empty, |m| Value::from(m.as_str()))),
            ),
        });
    }
    Ok(Value::from(out))
}

/// Converts a Python `re.sub` replacement (`\1`, `\g<name>`, `\n`…) to the regex crate's.
fn python_replacement(repl: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(repl.len());
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                None => return Err(op_err("regex_replace: bad escape (end of replacement)")),
                Some(d @ '0'..='9') => {
                    let mut num = d.to_string();
                    if let Some(&e @ '0'..='9') = chars.peek() {
                        num.push(e);
                        chars.next();
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                Some('g') => {
                    if chars.next() != Some('<') {
                        return Err(op_err("regex_replace: missing < after \\g"));
                    }
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('>') => break,
                            Some(ch) => name.push(ch),
                            None => return Err(op_err("regex_replace: missing > after \\g<")),
                        }
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('f') => out.push('\x0c'),
                Some('v') => out.push('\x0b'),
                Some('a') => out.push('\x07'),
                Some('b') => out.push('\x08'),
                Some('\\') => out.push('\\'),
                Some(d) if d.is_ascii_alphabetic() => {
                    return Err(op_err(format!(
                        "regex_replace: bad escape \\{d} in the replacement"
                    )));
                }
                Some(d) => {
                    out.push('\\');
                    if d == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(d);
                    }
                }
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `'a-b-c' | regex_replace('-', '_')` → `a_b_c`; `regex_replace('(\\w+)@(\\w+)', '\\2:\\1')`;
/// `ignorecase=true`, `multiline=true`, `count=1`.
fn regex_replace(
    value: &Value,
    pattern: Option<String>,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let pattern = match pattern {
        Some(p) => p,
        None => kwargs.get::<Option<String>>("pattern")?.unwrap_or_default(),
    };
    let replacement = match replacement {
        Some(r) => r,
        None => kwargs
            .get::<Option<String>>("replacement")?
            .unwrap_or_default(),
    };
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let s = text(value, "regex_replace")?;
    let re = compile_regex(&pattern, ignorecase, multiline, false, "regex_replace")?;
    let repl = python_replacement(&replacement)?;
    for name in group_refs(&repl) {
        let known = match name.parse::<usize>() {
            Ok(i) => i < re.captures_len(),
            Err(_) => re.capture_names().flatten().any(|n| n == name),
        };
        if !known {
            return Err(op_err(format!(
                "regex_replace: the replacement refers to group {name:?}, which the pattern does not have"
            )));
        }
    }
    // `Regex::replacen`, stopping once the result passes the limit (a replacement can be
    // much longer than what it replaces, and an empty pattern matches everywhere).
    let mut out = String::new();
    let mut last = 0;
    for (i, caps) in re.captures_iter(&s).enumerate() {
        if count > 0 && i >= count {
            break;
        }
        let m = caps.get(0).expect("group 0 is the whole match");
        out.push_str(&s[last..m.start()]);
        caps.expand(&repl, &mut out);
        last = m.end();
        check_output("regex_replace", out.len())?;
    }
    out.push_str(&s[last..]);
    check_output("regex_replace", out.len())?;
    Ok(out)
}

/// The `${name}` group references in a converted replacement.
fn group_refs(repl: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = repl;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').unwrap_or(body.len());
            out.push(&body[..end]);
            rest = &body[end..];
        } else {
            rest = after;
        }
    }
    out
}

/// `'ERR: disk' | regex_match('err', ignorecase=true)` → `true`: does the pattern match at the
/// start of the text (Python's `re.match`)?
fn regex_match(value: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    kwargs.assert_all_used()?;
    let s = text(value, "regex_match")?;
    Ok(compile_regex(&pattern, ignorecase, multiline, true, "regex_match")?.is_match(&s))
}

/// `'1.2.3' | regex_escape` → `1\.2\.3` (Python's `re.escape`).
fn regex_escape(value: &Value) -> Result<String, Error> {
    let s = text(value, "regex_escape")?;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

/// `x is match('re')`: the pattern matches at the start (Ansible's `match` test).
fn test_match(value: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    regex_match(value, pattern, kwargs)
}

/// `x is search('re')`: the pattern matches anywhere (Ansible's `search` test).
fn test_search(value: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    kwargs.assert_all_used()?;
    let s = text(value, "search")?;
    Ok(compile_regex(&pattern, ignorecase, multiline, false, "search")?.is_match(&s))
}

/// `x is regex('re', match_type='match')`: Ansible's `regex` test (`search` by default).
fn test_regex(value: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let ignorecase = flag(&kwargs, "ignorecase")?;
    let multiline = flag(&kwargs, "multiline")?;
    let match_type = kwargs
        .get::<Option<String>>("match_type")?
        .unwrap_or_else(|| "search".into());
    kwargs.assert_all_used()?;
    let s = text(value, "regex")?;
    let anchored = match match_type.as_str() {
        "search" => false,
        "match" => true,
        "fullmatch" => {
            let re = compile_regex(
                &format!(r"(?:{pattern})\z"),
                ignorecase,
                multiline,
                true,
                "regex",
            )?;
            return Ok(re.is_match(&s));
        }
        other => {
            return Err(op_err(format!(
                "regex: match_type must be search, match or fullmatch, not {other:?}"
            )));
        }
    };
    Ok(compile_regex(&pattern, ignorecase, multiline, anchored, "regex")?.is_match(&s))
}

// ---------------------------------------------------------------------------------------------
// Dates and times. Datetimes travel as RFC 3339 strings: `2026-03-01T12:00:00Z` in UTC,
// `2026-03-01T13:00:00+01:00` elsewhere. Numbers are Unix timestamps in seconds.

use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, Zoned};

fn time_zone(name: &str, filter: &str) -> Result<TimeZone, Error> {
    if name.eq_ignore_ascii_case("utc") || name == "Z" {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| op_err(format!("{filter}: unknown time zone {name:?}")))
}

fn epoch_to_zoned(value: &Value, filter: &str) -> Result<Zoned, Error> {
    let secs = f64::try_from(value.clone())
        .map_err(|_| op_err(format!("{filter}: expected a number of seconds")))?;
    let range = |e: jiff::Error| op_err(format!("{filter}: timestamp out of range: {e}"));
    let ts = if value.is_integer() {
        Timestamp::from_second(i64::try_from(value.clone()).unwrap_or(i64::MAX)).map_err(range)?
    } else {
        // `from_secs_f64` panics on NaN, infinities and anything past ±2**63 seconds.
        let d = jiff::SignedDuration::try_from_secs_f64(secs).map_err(range)?;
        Timestamp::from_duration(d).map_err(range)?
    };
    Ok(ts.to_zoned(TimeZone::UTC))
}

/// Parses a date/time without a format: RFC 3339 / ISO 8601 (`2026-03-01T12:00:00Z`,
/// `2026-03-01 12:00:00`, `2026-03-01T12:00:00.5+01:00`, `2026-03-01`) or RFC 2822
/// (`Sun, 01 Mar 2026 12:00:00 +0000`). Text without an offset is in `tz`.
fn parse_iso(s: &str, tz: &TimeZone, filter: &str) -> Result<Zoned, Error> {
    use jiff::fmt::temporal::{Pieces, PiecesOffset};
    let s = s.trim();
    if let Ok(p) = Pieces::parse(s) {
        let time = p.time().unwrap_or(jiff::civil::Time::midnight());
        let dt = p.date().to_datetime(time);
        let zone = if let Some(ann) = p.time_zone_annotation() {
            ann.to_time_zone()
                .map_err(|e| op_err(format!("{filter}: {e}")))?
        } else {
            match p.offset() {
                Some(PiecesOffset::Zulu) => TimeZone::UTC,
                Some(PiecesOffset::Numeric(n)) => TimeZone::fixed(n.offset()),
                Some(_) | None => tz.clone(),
            }
        };
        return dt
            .to_zoned(zone)
            .map_err(|e| op_err(format!("{filter}: {e}")));
    }
    if let Ok(z) = jiff::fmt::rfc2822::parse(s) {
        return Ok(z);
    }
    Err(parse_err(format!(
        "{filter}: cannot parse {s:?} as a date/time (expected ISO 8601 like 2026-03-01T12:00:00Z, or give a format)"
    )))
}

/// Parses with a strptime format.
fn parse_with_format(s: &str, fmt: &str, tz: &TimeZone, filter: &str) -> Result<Zoned, Error> {
    let tm = jiff::fmt::strtime::parse(fmt, s).map_err(|e| {
        parse_err(format!(
            "{filter}: {s:?} does not match the format {fmt:?}: {e}"
        ))
    })?;
    let dt = match tm.to_datetime() {
        Ok(dt) => dt,
        Err(_) => tm
            .to_date()
            .map_err(|e| parse_err(format!("{filter}: {s:?} with format {fmt:?}: {e}")))?
            .to_datetime(jiff::civil::Time::midnight()),
    };
    let zone = if let Some(name) = tm.iana_time_zone() {
        time_zone(name, filter)?
    } else if let Some(off) = tm.offset() {
        if off == Offset::UTC {
            TimeZone::UTC
        } else {
            TimeZone::fixed(off)
        }
    } else {
        tz.clone()
    };
    dt.to_zoned(zone)
        .map_err(|e| op_err(format!("{filter}: {e}")))
}

/// Any value a date filter accepts: an RFC 3339/ISO 8601/RFC 2822 string or epoch seconds.
fn to_zoned(value: &Value, tz: &TimeZone, filter: &str) -> Result<Zoned, Error> {
    defined(value, filter)?;
    match value.kind() {
        ValueKind::Number => epoch_to_zoned(value, filter),
        ValueKind::String => parse_iso(value.as_str().unwrap_or_default(), tz, filter),
        other => Err(op_err(format!(
            "{filter}: expected a date/time string or epoch seconds, got {other}"
        ))),
    }
}

fn is_utc(z: &Zoned) -> bool {
    z.offset() == Offset::UTC
        && z.time_zone()
            .iana_name()
            .is_none_or(|n| matches!(n, "UTC" | "Etc/UTC"))
}

/// RFC 3339: `Z` for UTC, `±HH:MM` otherwise, fractional seconds only when there are some.
fn rfc3339(z: &Zoned) -> String {
    let mut out = z.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = z.subsec_nanosecond();
    if nanos != 0 {
        let frac = format!("{:09}", nanos);
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    if is_utc(z) {
        out.push('Z');
    } else {
        let secs = z.offset().seconds();
        let sign = if secs < 0 { '-' } else { '+' };
        let a = secs.abs();
        out.push_str(&format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60));
        if a % 60 != 0 {
            out.push_str(&format!(":{:02}", a % 60));
        }
    }
    out
}

fn tz_kwarg(tz: Option<String>, kwargs: &Kwargs, filter: &str) -> Result<TimeZone, Error> {
    let tz = match tz {
        Some(t) => Some(t),
        None => kwargs.get::<Option<String>>("tz")?,
    };
    match tz {
        Some(name) => time_zone(&name, filter),
        None => Ok(TimeZone::UTC),
    }
}

/// `'03/01/2026 14:00' | parse_datetime('%m/%d/%Y %H:%M')` → `2026-03-01T14:00:00Z`.
/// Without a format: ISO 8601 / RFC 3339 / RFC 2822 text or epoch seconds. Text without an
/// offset is read in `tz` (default UTC). The result is an RFC 3339 string.
fn parse_datetime(
    value: &Value,
    format: Option<String>,
    tz: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let format = match format {
        Some(f) => Some(f),
        None => kwargs.get::<Option<String>>("format")?,
    };
    let zone = tz_kwarg(tz, &kwargs, "parse_datetime")?;
    kwargs.assert_all_used()?;
    let z = match (&format, value.kind()) {
        (Some(fmt), ValueKind::String) => parse_with_format(
            value.as_str().unwrap_or_default(),
            fmt,
            &zone,
            "parse_datetime",
        )?,
        _ => to_zoned(value, &zone, "parse_datetime")?,
    };
    Ok(rfc3339(&z))
}

/// `'2026-03-01T12:00:00Z' | format_datetime('%d %b %Y %H:%M', 'Europe/Paris')` →
/// `01 Mar 2026 13:00` (strftime directives). Without a format: RFC 3339.
fn format_datetime(
    value: &Value,
    format: Option<String>,
    tz: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let format = match format {
        Some(f) => Some(f),
        None => kwargs.get::<Option<String>>("format")?,
    };
    let tz = match tz {
        Some(t) => Some(t),
        None => kwargs.get::<Option<String>>("tz")?,
    };
    kwargs.assert_all_used()?;
    let mut z = to_zoned(value, &TimeZone::UTC, "format_datetime")?;
    if let Some(name) = tz {
        z = z.with_time_zone(time_zone(&name, "format_datetime")?);
    }
    match format {
        None => Ok(rfc3339(&z)),
        Some(fmt) => {
            use std::fmt::Write;
            let mut out = limits::LimitedString::default();
            match write!(out, "{}", z.strftime(&fmt)) {
                Ok(()) => Ok(out.out),
                Err(_) if out.over => Err(limits::output_error("format_datetime")),
                Err(_) => Err(op_err(format!("format_datetime: invalid format {fmt:?}"))),
            }
        }
    }
}

/// `'2026-03-01T12:00:00Z' | as_timezone('America/New_York')` → `2026-03-01T07:00:00-05:00`.
fn as_timezone(value: &Value, tz: String) -> Result<String, Error> {
    let zone = time_zone(&tz, "as_timezone")?;
    let z = to_zoned(value, &TimeZone::UTC, "as_timezone")?.with_time_zone(zone);
    Ok(rfc3339(&z))
}

/// `1772366400 | convert_from_epoch` → `2026-03-01T12:00:00Z`; `convert_from_epoch('Europe/Paris')`.
fn convert_from_epoch(value: &Value, tz: Option<String>) -> Result<String, Error> {
    defined(value, "convert_from_epoch")?;
    let v = match value.as_str() {
        Some(s) => s
            .trim()
            .parse::<f64>()
            .map(|f| {
                if f.fract() == 0.0 && f.abs() < 9e15 {
                    Value::from(f as i64)
                } else {
                    Value::from(f)
                }
            })
            .map_err(|_| op_err(format!("convert_from_epoch: {s:?} is not a number")))?,
        None => value.clone(),
    };
    let mut z = epoch_to_zoned(&v, "convert_from_epoch")?;
    if let Some(name) = tz {
        z = z.with_time_zone(time_zone(&name, "convert_from_epoch")?);
    }
    Ok(rfc3339(&z))
}

/// `'2026-03-01T12:00:00Z' | convert_to_epoch` → `1772366400` (whole seconds).
fn convert_to_epoch(value: &Value) -> Result<i64, Error> {
    let z = to_zoned(value, &TimeZone::UTC, "convert_to_epoch")?;
    Ok(z.timestamp().as_second())
}

/// `3725 | to_human_time_from_seconds` → `1h 2m 5s` (days, hours, minutes, seconds; zero
/// parts left out; `0s` for zero).
fn to_human_time_from_seconds(value: &Value) -> Result<String, Error> {
    defined(value, "to_human_time_from_seconds")?;
    let secs = f64::try_from(value.clone())
        .map_err(|_| op_err("to_human_time_from_seconds: expected a number of seconds"))?;
    let mut n = secs.round().abs() as u64;
    if n == 0 {
        return Ok("0s".into());
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if n >= size {
            parts.push(format!("{}{unit}", n / size));
            n %= size;
        }
    }
    let sign = if secs < 0.0 { "-" } else { "" };
    Ok(format!("{sign}{}", parts.join(" ")))
}

// ---------------------------------------------------------------------------------------------
// Data shaping

#[derive(Clone, Copy, PartialEq)]
enum ListMerge {
    Replace,
    Keep,
    Append,
    Prepend,
    AppendRp,
    PrependRp,
}

/// Ansible's `merge_hash(x, y)`: y wins. `budget` counts the entries and list items visited
/// (at most [`MAX_ITEMS`] in one `combine`), `depth` the nesting (at most [`MAX_DEPTH`]).
fn merge_hash(
    x: &Value,
    y: &Value,
    recursive: bool,
    list_merge: ListMerge,
    depth: usize,
    budget: &mut usize,
) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(limits::depth_error("combine"));
    }
    let y_pairs = pairs(y)?;
    let x_pairs = pairs(x)?;
    spend_items(
        budget,
        x_pairs.len().saturating_add(y_pairs.len()),
        "combine",
    )?;
    if x_pairs.is_empty() || x == y {
        return Ok(map_value(y_pairs.into_iter().collect()));
    }
    let mut out: IndexMap<Value, Value> = x_pairs.into_iter().collect();
    for (key, y_value) in y_pairs {
        let Some(x_value) = out.get(&key).cloned() else {
            out.insert(key, y_value);
            continue;
        };
        let merged = if is_map(&x_value) && is_map(&y_value) {
            if recursive {
                merge_hash(&x_value, &y_value, recursive, list_merge, depth + 1, budget)?
            } else {
                y_value
            }
        } else if is_seq(&x_value) && is_seq(&y_value) {
            match list_merge {
                ListMerge::Replace => y_value,
                ListMerge::Keep => x_value,
                _ => {
                    let xs = items(&x_value)?;
                    let ys = items(&y_value)?;
                    spend_items(budget, xs.len().saturating_add(ys.len()), "combine")?;
                    let in_ys: HashSet<&Value> = ys.iter().collect();
                    let merged: Vec<Value> = match list_merge {
                        ListMerge::Append => xs.iter().chain(&ys).cloned().collect(),
                        ListMerge::Prepend => ys.iter().chain(&xs).cloned().collect(),
                        ListMerge::AppendRp => xs
                            .iter()
                            .filter(|z| !in_ys.contains(z))
                            .chain(&ys)
                            .cloned()
                            .collect(),
                        _ => ys
                            .iter()
                            .chain(xs.iter().filter(|z| !in_ys.contains(z)))
                            .cloned()
                            .collect(),
                    };
                    Value::from(merged)
                }
            }
        } else {
            y_value
        };
        out.insert(key, merged);
    }
    Ok(map_value(out))
}

fn spend_items(budget: &mut usize, n: usize, filter: &str) -> Result<(), Error> {
    match budget.checked_sub(n) {
        Some(rest) => {
            *budget = rest;
            Ok(())
        }
        None => Err(limits::items_error(filter, "items visited")),
    }
}

/// `a | combine(b, c, recursive=true, list_merge='append')` or `[a, b] | combine`: merges
/// maps, later ones winning (Ansible semantics).
fn combine(value: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = match kwargs
        .get::<Option<String>>("list_merge")?
        .as_deref()
        .unwrap_or("replace")
    {
        "replace" => ListMerge::Replace,
        "keep" => ListMerge::Keep,
        "append" => ListMerge::Append,
        "prepend" => ListMerge::Prepend,
        "append_rp" => ListMerge::AppendRp,
        "prepend_rp" => ListMerge::PrependRp,
        other => {
            return Err(op_err(format!(
                "combine: list_merge must be replace, keep, append, prepend, append_rp or prepend_rp, not {other:?}"
            )));
        }
    };
    kwargs.assert_all_used()?;
    let mut dicts = Vec::new();
    for term in std::iter::once(value).chain(others.iter()) {
        defined(term, "combine")?;
        if is_seq(term) {
            dicts.extend(items(term)?);
        } else {
            dicts.push(term.clone());
        }
    }
    for d in &dicts {
        if !is_map(d) {
            return Err(op_err(format!(
                "combine: expected maps to combine, got {}",
                d.kind()
            )));
        }
    }
    let mut iter = dicts.into_iter().rev();
    let Some(mut result) = iter.next() else {
        return Ok(map_value(IndexMap::new()));
    };
    let mut budget = MAX_ITEMS;
    for d in iter {
        result = merge_hash(&d, &result, recursive, list_merge, 0, &mut budget)?;
    }
    Ok(result)
}

/// `RESULT | json_query('items[?status==`1`].id')` → JMESPath query.
fn json_query(value: &Value, expr: String) -> Result<Value, Error> {
    let data = to_data(value, "json_query")?;
    let compiled = jmespath::compile(&expr)
        .map_err(|e| op_err(format!("json_query: invalid JMESPath expression: {e}")))?;
    // Multi-selects repeat their input (`[@, @]`) and pipes compound them; jmespath shares
    // the parts, but `to_string`, `join` and comparisons walk every copy. Refuse what could
    // grow past the data limit.
    let mut unmeasured = usize::MAX;
    json_size(&data, &mut unmeasured, "json_query")?;
    let size = (usize::MAX - unmeasured).max(expr.len()) as u64;
    let factor = jmespath_factor(compiled.as_ast());
    if factor.saturating_mul(size) > MAX_DATA_BYTES as u64 {
        return Err(op_err(format!(
            "json_query: the expression can repeat its input {factor} times, which could \
             build more than the limit of {MAX_DATA_BYTES} bytes from this input"
        )));
    }
    let var = jmespath::Variable::from_serializable(&data)
        .map_err(|e| op_err(format!("json_query: {e}")))?;
    let result = compiled
        .search(var)
        .map_err(|e| op_err(format!("json_query: {e}")))?;
    // Results share their parts (`[@, @] | [@, @] | …` doubles without copying): convert
    // within a budget rather than all at once.
    let mut budget = MAX_DATA_BYTES;
    let out = jmespath_to_json(&result, 0, &mut budget)?;
    Ok(from_data(&out))
}

/// How many times over a JMESPath expression can repeat its input (or its own literals): an
/// upper bound that multiplies along pipes and projections and adds up the branches of a
/// multi-select.
fn jmespath_factor(ast: &jmespath::ast::Ast) -> u64 {
    use jmespath::ast::Ast as A;
    let sum = |xs: &mut dyn Iterator<Item = u64>| xs.fold(0u64, u64::saturating_add).max(1);
    match ast {
        A::Identity { .. }
        | A::Field { .. }
        | A::Index { .. }
        | A::Literal { .. }
        | A::Slice { .. } => 1,
        A::Expref { ast, .. }
        | A::Flatten { node: ast, .. }
        | A::ObjectValues { node: ast, .. } => jmespath_factor(ast),
        A::Not { node, .. } => jmespath_factor(node),
        A::Comparison { lhs, rhs, .. } | A::And { lhs, rhs, .. } | A::Or { lhs, rhs, .. } => {
            jmespath_factor(lhs).saturating_add(jmespath_factor(rhs))
        }
        A::Condition {
            predicate, then, ..
        } => jmespath_factor(predicate).saturating_add(jmespath_factor(then)),
        A::Projection { lhs, rhs, .. } | A::Subexpr { lhs, rhs, .. } => {
            jmespath_factor(lhs).saturating_mul(jmespath_factor(rhs))
        }
        A::MultiList { elements, .. } => sum(&mut elements.iter().map(jmespath_factor)),
        A::MultiHash { elements, .. } => {
            sum(&mut elements.iter().map(|kv| jmespath_factor(&kv.value)))
        }
        A::Function { args, .. } => {
            let product = args
                .iter()
                .map(jmespath_factor)
                .fold(1u64, u64::saturating_mul);
            sum(&mut args.iter().map(jmespath_factor)).max(product)
        }
    }
}

fn spend_data(budget: &mut usize, n: usize, filter: &str) -> Result<(), Error> {
    match budget.checked_sub(n) {
        Some(rest) => {
            *budget = rest;
            Ok(())
        }
        None => Err(limits::data_error(filter)),
    }
}

fn jmespath_to_json(
    v: &jmespath::Variable,
    depth: usize,
    budget: &mut usize,
) -> Result<serde_json::Value, Error> {
    use jmespath::Variable as V;
    use serde_json::Value as J;
    const F: &str = "json_query";
    if depth > MAX_DEPTH {
        return Err(limits::depth_error(F));
    }
    Ok(match v {
        V::Null => {
            spend_data(budget, 4, F)?;
            J::Null
        }
        V::Bool(b) => {
            spend_data(budget, 5, F)?;
            J::Bool(*b)
        }
        V::Number(n) => {
            spend_data(budget, 8, F)?;
            J::Number(n.clone())
        }
        V::String(s) => {
            spend_data(budget, s.len().saturating_add(2), F)?;
            J::String(s.clone())
        }
        V::Array(items) => {
            spend_data(budget, 2, F)?;
            let mut out = Vec::with_capacity(items.len().min(1024));
            for item in items {
                spend_data(budget, 2, F)?;
                out.push(jmespath_to_json(item, depth + 1, budget)?);
            }
            J::Array(out)
        }
        V::Object(map) => {
            spend_data(budget, 2, F)?;
            let mut out = serde_json::Map::new();
            for (k, item) in map {
                spend_data(budget, k.len().saturating_add(4), F)?;
                out.insert(k.clone(), jmespath_to_json(item, depth + 1, budget)?);
            }
            J::Object(out)
        }
        V::Expref(_) => serde_json::to_value(v).map_err(|e| op_err(format!("{F}: {e}")))?,
    })
}

/// The size of a JSON value written out, failing once it passes the budget.
fn json_size(v: &serde_json::Value, budget: &mut usize, filter: &str) -> Result<(), Error> {
    use serde_json::Value as J;
    match v {
        J::Null | J::Bool(_) | J::Number(_) => spend_data(budget, 8, filter),
        J::String(s) => spend_data(budget, s.len().saturating_add(2), filter),
        J::Array(items) => {
            spend_data(
                budget,
                2usize.saturating_add(items.len().saturating_mul(2)),
                filter,
            )?;
            items.iter().try_for_each(|x| json_size(x, budget, filter))
        }
        J::Object(map) => {
            spend_data(budget, 2, filter)?;
            map.iter().try_for_each(|(k, x)| {
                spend_data(budget, k.len().saturating_add(4), filter)?;
                json_size(x, budget, filter)
            })
        }
    }
}

/// `RESULT | jsonpath('$.items[*].id')` → the list of matching values (RFC 9535 JSONPath).
fn jsonpath(value: &Value, path: String) -> Result<Value, Error> {
    let data = to_data(value, "jsonpath")?;
    let compiled = serde_json_path::JsonPath::parse(&path)
        .map_err(|e| op_err(format!("jsonpath: invalid JSONPath {path:?}: {e}")))?;
    let found = compiled.query(&data).all();
    // `$..*` returns every part of the input, each a copy: the copies can be far larger
    // than the input.
    let mut budget = MAX_DATA_BYTES;
    for v in &found {
        json_size(v, &mut budget, "jsonpath")?;
    }
    Ok(Value::from(
        found.into_iter().map(from_data).collect::<Vec<Value>>(),
    ))
}

/// Flattens `list` into `out`; `budget` counts the elements visited (at most [`MAX_ITEMS`]),
/// `depth` the nesting (at most [`MAX_DEPTH`]).
fn flatten_into(
    out: &mut Vec<Value>,
    list: &Value,
    levels: Option<i64>,
    skip_nulls: bool,
    depth: usize,
    budget: &mut usize,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(limits::depth_error("flatten"));
    }
    for element in list.try_iter()? {
        spend_items(budget, 1, "flatten")?;
        let is_null = element.is_none()
            || element.is_undefined()
            || matches!(element.as_str(), Some("None" | "null"));
        if skip_nulls && is_null {
            continue;
        }
        if is_seq(&element) {
            match levels {
                None => flatten_into(out, &element, None, skip_nulls, depth + 1, budget)?,
                Some(n) if n >= 1 => {
                    flatten_into(out, &element, Some(n - 1), skip_nulls, depth + 1, budget)?
                }
                Some(_) => out.push(element),
            }
        } else {
            out.push(element);
        }
    }
    Ok(())
}

/// `[1, [2, [3]]] | flatten` → `[1, 2, 3]`; `flatten(1)` → `[1, 2, [3]]`; none values are
/// dropped unless `skip_nulls=false` (Ansible semantics).
fn flatten(value: &Value, levels: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = match levels {
        Some(l) => Some(l),
        None => kwargs.get::<Option<Value>>("levels")?,
    };
    let levels = match levels {
        None => None,
        Some(l) if l.is_none() => None,
        Some(l) => {
            Some(i64::try_from(l).map_err(|_| op_err("flatten: levels must be an integer"))?)
        }
    };
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    defined(value, "flatten")?;
    if !is_seq(value) {
        return Err(op_err(format!(
            "flatten: expected a list, got {}",
            value.kind()
        )));
    }
    let mut out = Vec::new();
    let mut budget = MAX_ITEMS;
    flatten_into(&mut out, value, levels, skip_nulls, 0, &mut budget)?;
    Ok(Value::from(out))
}

fn key_names(kwargs: &Kwargs) -> Result<(String, String), Error> {
    let key = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or_else(|| "key".into());
    let value = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or_else(|| "value".into());
    kwargs.assert_all_used()?;
    Ok((key, value))
}

/// `{"a": 1} | dict2items` → `[{"key": "a", "value": 1}]`; `key_name=`, `value_name=`.
fn dict2items(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (key_name, value_name) = key_names(&kwargs)?;
    defined(value, "dict2items")?;
    if !is_map(value) {
        return Err(op_err(format!(
            "dict2items: expected a map, got {}",
            value.kind()
        )));
    }
    Ok(Value::from_iter(pairs(value)?.into_iter().map(|(k, v)| {
        let mut m = IndexMap::new();
        m.insert(Value::from(key_name.as_str()), k);
        m.insert(Value::from(value_name.as_str()), v);
        map_value(m)
    })))
}

/// `[{"key": "a", "value": 1}] | items2dict` → `{"a": 1}`; `key_name=`, `value_name=`.
fn items2dict(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (key_name, value_name) = key_names(&kwargs)?;
    defined(value, "items2dict")?;
    if !is_seq(value) {
        return Err(op_err(format!(
            "items2dict: expected a list of maps, got {}",
            value.kind()
        )));
    }
    let mut out = IndexMap::new();
    for item in value.try_iter()? {
        let k = item.get_attr(&key_name).ok().filter(|v| !v.is_undefined());
        let v = item
            .get_attr(&value_name)
            .ok()
            .filter(|v| !v.is_undefined());
        match (k, v) {
            (Some(k), Some(v)) => {
                out.insert(k, v);
            }
            _ => {
                return Err(op_err(format!(
                    "items2dict: every item needs `{key_name}` and `{value_name}`"
                )));
            }
        }
    }
    Ok(map_value(out))
}

fn list_arg(v: &Value, filter: &str) -> Result<Vec<Value>, Error> {
    defined(v, filter)?;
    if !is_seq(v) {
        return Err(op_err(format!(
            "{filter}: expected a list, got {}",
            v.kind()
        )));
    }
    items(v)
}

/// The values in order, without repeats. Hashed (values hash consistently with `==`: `1`
/// and `1.0` are the same), so that two lists of 100,000 items take milliseconds rather than
/// minutes.
fn unique_values(vs: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut seen: HashSet<Value> = HashSet::new();
    vs.into_iter().filter(|v| seen.insert(v.clone())).collect()
}

/// `[1, 2] | union([2, 3])` → `[1, 2, 3]`.
fn union(a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (list_arg(a, "union")?, list_arg(b, "union")?);
    Ok(Value::from(unique_values(a.into_iter().chain(b))))
}

/// `[1, 2] | intersect([2, 3])` → `[2]`.
fn intersect(a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (list_arg(a, "intersect")?, list_arg(b, "intersect")?);
    let b: HashSet<Value> = b.into_iter().collect();
    Ok(Value::from(
        unique_values(a)
            .into_iter()
            .filter(|x| b.contains(x))
            .collect::<Vec<_>>(),
    ))
}

/// `[1, 2] | difference([2, 3])` → `[1]`.
fn difference(a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (list_arg(a, "difference")?, list_arg(b, "difference")?);
    let b: HashSet<Value> = b.into_iter().collect();
    Ok(Value::from(
        unique_values(a)
            .into_iter()
            .filter(|x| !b.contains(x))
            .collect::<Vec<_>>(),
    ))
}

/// `[1, 2] | symmetric_difference([2, 3])` → `[1, 3]`.
fn symmetric_difference(a: &Value, b: &Value) -> Result<Value, Error> {
    let (a, b) = (
        list_arg(a, "symmetric_difference")?,
        list_arg(b, "symmetric_difference")?,
    );
    let in_b: HashSet<&Value> = b.iter().collect();
    let both: HashSet<Value> = a.iter().filter(|x| in_b.contains(x)).cloned().collect();
    Ok(Value::from(
        unique_values(a.into_iter().chain(b))
            .into_iter()
            .filter(|x| !both.contains(x))
            .collect::<Vec<_>>(),
    ))
}

/// `[1, 2] is subset([1, 2, 3])`.
fn test_subset(a: &Value, b: &Value) -> Result<bool, Error> {
    let (a, b) = (list_arg(a, "subset")?, list_arg(b, "subset")?);
    let b: HashSet<Value> = b.into_iter().collect();
    Ok(a.iter().all(|x| b.contains(x)))
}

/// `[1, 2, 3] is superset([1, 2])`.
fn test_superset(a: &Value, b: &Value) -> Result<bool, Error> {
    let (a, b) = (list_arg(a, "superset")?, list_arg(b, "superset")?);
    let a: HashSet<Value> = a.into_iter().collect();
    Ok(b.iter().all(|x| a.contains(x)))
}

/// `[1, 2] is contains(2)`.
fn test_contains(a: &Value, x: &Value) -> Result<bool, Error> {
    let a = list_arg(a, "contains")?;
    Ok(a.contains(x))
}

// ---------------------------------------------------------------------------------------------
// Scalars

/// `(x > 1) | ternary('big', 'small')`; a third value is used when the input is none.
fn ternary(
    value: &Value,
    true_val: Value,
    false_val: Value,
    none_val: Option<Value>,
) -> Result<Value, Error> {
    if let (true, Some(n)) = (value.is_none(), none_val.filter(|n| !n.is_none())) {
        return Ok(n);
    }
    Ok(if value.is_true() { true_val } else { false_val })
}

/// Ansible's `bool`: `'yes' | bool`, `'on'`, `'1'`, `'true'` (any case) and `1` are true;
/// everything else (`'false'`, `'no'`, `0`, none, undefined) is false.
fn to_bool(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::String => matches!(
            value.as_str().unwrap_or_default().to_lowercase().as_str(),
            "yes" | "on" | "1" | "true"
        ),
        ValueKind::Number => f64::try_from(value.clone()).is_ok_and(|f| f == 1.0),
        _ => false,
    }
}

/// Python's `int(s, base)`: whitespace around, `_` between digits, a base prefix.
fn parse_python_int(s: &str, base: u32) -> Option<i128> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let prefix = match base {
        2 => Some("0b"),
        8 => Some("0o"),
        16 => Some("0x"),
        _ => None,
    };
    let body = match prefix {
        Some(p) if body.len() > 2 && body[..2].eq_ignore_ascii_case(p) => {
            body[2..].strip_prefix('_').unwrap_or(&body[2..])
        }
        _ => body,
    };
    if body.is_empty()
        || body.starts_with('_')
        || body.ends_with('_')
        || body.contains("__")
        || body.starts_with(['+', '-'])
    {
        return None;
    }
    let digits: String = body.chars().filter(|&c| c != '_').collect();
    let n = i128::from_str_radix(&digits, base).ok()?;
    Some(if neg { -n } else { n })
}

/// Python's `float(s)`.
fn parse_python_float(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower.parse::<f64>().ok();
    }
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    cleaned.parse::<f64>().ok()
}

fn float_to_int(f: f64) -> Option<Value> {
    if f.is_finite() {
        Some(Value::from(f.trunc() as i128))
    } else {
        None
    }
}

/// Jinja2's `int`: `'42' | int` → 42, `'4.7' | int` → 4, `'n/a' | int` → 0 (the default,
/// `int(default=-1)`), `'ff' | int(base=16)` → 255. An undefined value is an error.
fn to_int(
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(b) => b,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    defined(value, "int")?;
    if !(2..=36).contains(&base) {
        return Err(op_err("int: base must be between 2 and 36"));
    }
    let converted = match value.kind() {
        ValueKind::Bool => Some(Value::from(i64::from(value.is_true()))),
        ValueKind::Number if value.is_integer() => Some(value.clone()),
        ValueKind::Number => f64::try_from(value.clone()).ok().and_then(float_to_int),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            parse_python_int(s, base)
                .map(Value::from)
                .or_else(|| parse_python_float(s).and_then(float_to_int))
        }
        _ => None,
    };
    Ok(converted.unwrap_or(default))
}

/// Jinja2's `float`: `'1.5' | float` → 1.5, `'n/a' | float` → 0.0 (the default).
fn to_float(value: &Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0.0)),
    };
    kwargs.assert_all_used()?;
    defined(value, "float")?;
    let converted = match value.kind() {
        ValueKind::Bool => Some(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(value.clone()).ok(),
        ValueKind::String => parse_python_float(value.as_str().unwrap_or_default()),
        _ => None,
    };
    Ok(converted.map_or(default, Value::from))
}

/// `CTX.x | mandatory` fails with a clear message when `x` is undefined;
/// `mandatory('x is required')` sets the message.
fn mandatory(value: &Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            msg.unwrap_or_else(|| "mandatory: the value is undefined".into()),
        ));
    }
    Ok(value.clone())
}

/// `x | type_debug` → the Python type name: `str`, `int`, `float`, `bool`, `NoneType`,
/// `list`, `dict`.
fn type_debug(value: &Value) -> &'static str {
    match value.kind() {
        ValueKind::Undefined => "Undefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

/// `'hello big world' | wordcount` → 3 (Jinja2's filter).
fn wordcount(value: &Value) -> Result<usize, Error> {
    let s = text(value, "wordcount")?;
    let re = compile_regex(r"\w+", false, false, false, "wordcount")?;
    Ok(re.find_iter(&s).count())
}

/// Jinja2's `truncate(length=255, killwords=false, end='...', leeway=5)`, positional or by
/// keyword: `'The quick brown fox' | truncate(12)` → `The quick...`. (minijinja-contrib's
/// version takes keywords only, and `truncate(200)` is what authors write.)
fn truncate(
    value: &Value,
    length: Option<usize>,
    killwords: Option<bool>,
    end: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let length = match length {
        Some(l) => l,
        None => kwargs.get::<Option<usize>>("length")?.unwrap_or(255),
    };
    let killwords = match killwords {
        Some(k) => k,
        None => kwargs.get::<Option<bool>>("killwords")?.unwrap_or(false),
    };
    let end = match end {
        Some(e) => e,
        None => kwargs
            .get::<Option<String>>("end")?
            .unwrap_or_else(|| "...".into()),
    };
    let leeway = kwargs.get::<Option<usize>>("leeway")?.unwrap_or(5);
    kwargs.assert_all_used()?;
    let s = text(value, "truncate")?;
    let end_len = end.chars().count();
    if length < end_len {
        return Err(op_err(format!(
            "truncate: expected length >= {end_len}, got {length}"
        )));
    }
    if s.chars().count() <= length.saturating_add(leeway) {
        return Ok(Value::from(s.as_ref()));
    }
    let head: String = s.chars().take(length - end_len).collect();
    let kept = if killwords {
        head.as_str()
    } else {
        head.rsplit_once(' ')
            .map_or(head.as_str(), |(before, _)| before)
    };
    Ok(Value::from(format!("{kept}{end}")))
}

/// Jinja2's `center(width=80)`: `'hi' | center(6)` → `'  hi  '` (Python's `str.center`).
fn center(value: &Value, width: Option<usize>) -> Result<String, Error> {
    let s = text(value, "center")?;
    let width = check_width("center", "width", width.unwrap_or(80))?;
    let len = s.chars().count();
    if width <= len {
        return Ok(s.into_owned());
    }
    let marg = width - len;
    let left = marg / 2 + (marg & width & 1);
    Ok(format!(
        "{}{s}{}",
        " ".repeat(left),
        " ".repeat(marg - left)
    ))
}

/// `'/etc/app/conf.yaml' | basename` → `conf.yaml` (POSIX paths, like Python's `os.path`).
fn basename(value: &Value) -> Result<String, Error> {
    let s = text(value, "basename")?;
    Ok(s.rsplit('/').next().unwrap_or_default().to_string())
}

/// `'/etc/app/conf.yaml' | dirname` → `/etc/app`.
fn dirname(value: &Value) -> Result<String, Error> {
    let s = text(value, "dirname")?;
    let head = match s.rfind('/') {
        Some(i) => &s[..=i],
        None => "",
    };
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        Ok(head.trim_end_matches('/').to_string())
    } else {
        Ok(head.to_string())
    }
}

fn win_split(s: &str) -> (String, String) {
    let (drive, path) = if s.len() >= 2 && s.as_bytes()[1] == b':' && s.is_char_boundary(2) {
        s.split_at(2)
    } else {
        ("", s)
    };
    let is_sep = |c: char| c == '\\' || c == '/';
    let i = path.rfind(is_sep).map_or(0, |i| i + 1);
    let (head, tail) = path.split_at(i);
    let trimmed = head.trim_end_matches(is_sep);
    let head = if trimmed.is_empty() { head } else { trimmed };
    (format!("{drive}{head}"), tail.to_string())
}

/// `'C:\\Users\\ada\\report.pdf' | win_basename` → `report.pdf`.
fn win_basename(value: &Value) -> Result<String, Error> {
    Ok(win_split(&text(value, "win_basename")?).1)
}

/// `'C:\\Users\\ada\\report.pdf' | win_dirname` → `C:\Users\ada`.
fn win_dirname(value: &Value) -> Result<String, Error> {
    Ok(win_split(&text(value, "win_dirname")?).0)
}

/// `dict(a=1)`, `dict(other_map, a=1)` and, like Python, `dict(keys | zip(values))` or
/// `dict([['a', 1], ['b', 2]])`.
fn dict(value: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let mut out = IndexMap::new();
    match value {
        None => {}
        Some(v) if v.is_undefined() || v.is_none() => {}
        Some(v) if is_map(&v) => out.extend(pairs(&v)?),
        Some(v) if is_seq(&v) => {
            for pair in v.try_iter()? {
                let kv = if is_seq(&pair) {
                    items(&pair)?
                } else {
                    Vec::new()
                };
                let [k, v]: [Value; 2] = kv
                    .try_into()
                    .map_err(|_| op_err("dict: expected a map or a list of [key, value] pairs"))?;
                out.insert(k, v);
            }
        }
        Some(v) => {
            return Err(op_err(format!(
                "dict: expected a map or a list of [key, value] pairs, got {}",
                v.kind()
            )));
        }
    }
    let names: Vec<String> = kwargs.args().map(str::to_string).collect();
    for name in names {
        let v: Value = kwargs.get(&name)?;
        out.insert(Value::from(name), v);
    }
    Ok(map_value(out))
}

/// `cycler('odd', 'even')`: `.next()` returns the items in turn.
fn cycler(items: Rest<Value>) -> Result<Value, Error> {
    minijinja_contrib::globals::cycler(items.0)
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum VersionPart {
    // Declared first: a letter part sorts before a number part.
    Text(String),
    Num(u128),
}

fn version_parts(s: &str) -> Vec<VersionPart> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let mut num = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                num.push(d);
                chars.next();
            }
            out.push(VersionPart::Num(num.parse().unwrap_or(u128::MAX)));
        } else if c.is_ascii_alphabetic() {
            let mut word = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_alphabetic()) {
                word.push(d.to_ascii_lowercase());
                chars.next();
            }
            out.push(VersionPart::Text(word));
        } else {
            chars.next();
        }
    }
    out
}

/// `'10.0.19045' | version_compare('10.0.1', '>=')` → true; also the test
/// `x is version('2.0', 'lt')`. Numbers compare as numbers, letters as text (a letter part
/// sorts before a number). Operators: `==`/`eq`, `!=`/`ne`, `<`/`lt`, `<=`/`le`, `>`/`gt`,
/// `>=`/`ge` (default `==`).
fn version_compare(value: &Value, other: &Value, op: Option<String>) -> Result<bool, Error> {
    let a = version_parts(&text(value, "version_compare")?);
    let b = version_parts(&text(other, "version_compare")?);
    let ord = a.cmp(&b);
    use std::cmp::Ordering::*;
    Ok(match op.as_deref().unwrap_or("eq") {
        "==" | "=" | "eq" => ord == Equal,
        "!=" | "<>" | "ne" => ord != Equal,
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        other => {
            return Err(op_err(format!(
                "version_compare: unknown operator {other:?}"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::template::eval_str;
    use serde_json::{Value as J, json};

    fn ev(src: &str, ctx: J) -> J {
        eval_str(src, &ctx).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn e(src: &str) -> J {
        ev(src, json!({}))
    }

    fn fails(src: &str, ctx: J) -> String {
        match eval_str(src, &ctx) {
            Ok(v) => panic!("{src}: expected an error, got {v}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn json_filters() {
        assert_eq!(
            e(r#"{{ '{"a": [1, 2.5, null]}' | from_json }}"#),
            json!({"a": [1, 2.5, null]})
        );
        assert_eq!(e(r#"{{ '[1]' | json_parse }}"#), json!([1]));
        assert_eq!(e(r#"{{ '"x"' | from_json_string }}"#), json!("x"));
        assert_eq!(
            ev("{{ x | from_json }}", json!({"x": {"a": 1}})),
            json!({"a": 1})
        );
        let msg = fails("{{ 'nope' | from_json }}", json!({}));
        assert!(msg.contains("from_json"), "{msg}");
        let d = json!({"d": {"b": 1, "a": [1, "é"]}});
        assert_eq!(
            ev("{{ d | to_json }}", d.clone()),
            json!(r#"{"b": 1, "a": [1, "é"]}"#)
        );
        assert_eq!(
            ev("{{ d | json_stringify(sort_keys=true) }}", d.clone()),
            json!(r#"{"a": [1, "é"], "b": 1}"#)
        );
        assert_eq!(
            ev("{{ [1] | to_json_string(indent=2) }}", json!({})),
            json!("[\n  1\n]")
        );
        assert_eq!(
            ev("{{ d | json_dump }}", d.clone()),
            json!(r#"{"b": 1, "a": [1, "é"]}"#)
        );
        assert_eq!(
            ev("{{ {'b': 1, 'a': 2} | to_nice_json }}", json!({})),
            json!("{\n    \"a\": 2,\n    \"b\": 1\n}")
        );
        assert_eq!(
            ev("{{ d | tojson }}", d),
            json!(r#"{"b": 1, "a": [1, "é"]}"#)
        );
        assert_eq!(
            e(r#"{{ 'say "hi"' | json_escape }}"#),
            json!(r#"say \"hi\""#)
        );
        assert!(eval_str("{{ nope | to_json }}", &json!({})).is_err());
    }

    #[test]
    fn yaml_filters() {
        assert_eq!(
            e("{{ 'a: 1\\nb: [x, yes]' | from_yaml }}"),
            json!({"a": 1, "b": ["x", "yes"]})
        );
        assert_eq!(e("{{ 'a: 1' | yaml_parse }}"), json!({"a": 1}));
        assert_eq!(e("{{ '- 1' | from_yaml_string }}"), json!([1]));
        assert_eq!(
            e("{{ 'a: 1\\n---\\na: 2' | from_yaml_all }}"),
            json!([{"a": 1}, {"a": 2}])
        );
        assert_eq!(
            e("{{ 'base: &b {x: 1}\\nc:\\n  <<: *b\\n  y: 2' | from_yaml }}"),
            json!({"base": {"x": 1}, "c": {"x": 1, "y": 2}})
        );
        assert_eq!(
            e("{{ {'b': [1, 2], 'a': 'x'} | to_yaml }}"),
            json!("b:\n- 1\n- 2\na: x\n")
        );
        assert_eq!(
            e("{{ {'b': 1, 'a': 2} | to_nice_yaml }}"),
            json!("a: 2\nb: 1\n")
        );
        assert_eq!(e("{{ {'a': 1} | to_yaml_string }}"), json!("a: 1\n"));
        assert_eq!(e("{{ {'a': 1} | yaml_dump | from_yaml }}"), json!({"a": 1}));
        assert!(eval_str("{{ 'a: [' | from_yaml }}", &json!({})).is_err());
    }

    #[test]
    fn csv_filter() {
        let ctx = json!({"t": "\u{feff}name,email\nAda,ada@x\n\nBob\n"});
        assert_eq!(
            ev("{{ t | parse_csv }}", ctx.clone()),
            json!([{"name": "Ada", "email": "ada@x"}, {"name": "Bob", "email": null}])
        );
        assert_eq!(
            ev("{{ 'a;b\\n1;2' | parse_csv(';') }}", json!({})),
            json!([{"a": "1", "b": "2"}])
        );
        assert_eq!(
            ev(
                "{{ 'a\\tb\\n1\\t2' | parse_csv(delimiter='\\t') }}",
                json!({})
            ),
            json!([{"a": "1", "b": "2"}])
        );
        assert_eq!(
            ev("{{ 'a,b\\n1,2' | parse_csv(header=false) }}", json!({})),
            json!([["a", "b"], ["1", "2"]])
        );
        assert_eq!(
            ev("{{ '\"x, y\",z\\n1,2' | parse_csv }}", json!({})),
            json!([{"x, y": "1", "z": "2"}])
        );
        assert_eq!(e("{{ '' | parse_csv }}"), json!([]));
        assert!(fails("{{ 'a' | parse_csv('::') }}", json!({})).contains("delimiter"));
    }

    #[test]
    fn encodings() {
        assert_eq!(e("{{ 'hi there' | b64encode }}"), json!("aGkgdGhlcmU="));
        assert_eq!(e("{{ 'hi' | base64 }}"), json!("aGk="));
        assert_eq!(e("{{ 'aGkgdGhlcmU=' | b64decode }}"), json!("hi there"));
        assert_eq!(e("{{ 'aGk' | decode_base64 }}"), json!("hi"));
        assert_eq!(e("{{ 'PDw_Pz4-' | b64decode }}"), json!("<<??>>"));
        assert!(eval_str("{{ '!!!' | b64decode }}", &json!({})).is_err());
        assert!(eval_str("{{ '/w==' | b64decode }}", &json!({})).is_err());
        assert_eq!(e("{{ 'a%20b+c%2Fd%zz' | urldecode }}"), json!("a b c/d%zz"));
        assert_eq!(e("{{ '%C3%A9%' | urldecode }}"), json!("é%"));
    }

    #[test]
    fn digests() {
        assert_eq!(
            e("{{ 'abc' | hash('md5') }}"),
            json!("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            e("{{ 'abc' | hash }}"),
            json!("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            e("{{ 'abc' | hash('sha256') }}"),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(e("{{ 'abc' | hash('sha512') | length }}"), json!(128));
        assert!(fails("{{ 'abc' | hash('crc') }}", json!({})).contains("crc"));
        assert_eq!(
            e("{{ 'The quick brown fox jumps over the lazy dog' | hmac('key', 'sha256') }}"),
            json!("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        );
        assert_eq!(
            e("{{ 'The quick brown fox jumps over the lazy dog' | hmac('key', 'sha1') }}"),
            json!("de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9")
        );
        assert_eq!(
            e("{{ 'The quick brown fox jumps over the lazy dog' | hmac('key', 'md5') }}"),
            json!("80070713463e7749b90c2dc24911e275")
        );
        assert_eq!(
            e(
                "{{ 'The quick brown fox jumps over the lazy dog' | hmac('key', 'sha1', 'base64') }}"
            ),
            json!("3nybhbi3iqa8ino29wqQcBydtNk=")
        );
        assert_eq!(e("{{ 'x' | hmac('k') | length }}"), json!(64));
        assert_eq!(
            e("{{ 'x' | hmac('k', algorithm='sha512') | length }}"),
            json!(128)
        );
    }

    #[test]
    fn regexes() {
        assert_eq!(
            e(r"{{ 'ticket 42 and 7' | regex_search('\\d+') }}"),
            json!("42")
        );
        assert_eq!(e(r"{{ 'none here' | regex_search('\\d+') }}"), json!(null));
        assert_eq!(
            e(r"{{ 'ID: ab-12' | regex_search('(\\w+)-(\\d+)', '\\2', '\\1') }}"),
            json!(["12", "ab"])
        );
        assert_eq!(
            e(r"{{ 'v=3' | regex_search('v=(?P<n>\\d)', '\\g<n>') }}"),
            json!(["3"])
        );
        assert_eq!(
            e(r"{{ 'ABC' | regex_search('b', ignorecase=true) }}"),
            json!("B")
        );
        assert_eq!(
            e(r"{{ 'a\nb' | regex_search('^b', multiline=true) }}"),
            json!("b")
        );
        assert_eq!(
            e(r"{{ 'a1b22' | regex_findall('\\d+') }}"),
            json!(["1", "22"])
        );
        assert_eq!(
            e(r"{{ 'k=v, x=y' | regex_findall('(\\w)=(\\w)') }}"),
            json!([["k", "v"], ["x", "y"]])
        );
        assert_eq!(
            e(r"{{ 'k=v, x=y' | regex_findall('(\\w)=\\w') }}"),
            json!(["k", "x"])
        );
        assert_eq!(
            e(r"{{ 'a-b-c' | regex_replace('-', '_') }}"),
            json!("a_b_c")
        );
        assert_eq!(
            e(r"{{ 'ada@example' | regex_replace('(\\w+)@(\\w+)', '\\2:\\1') }}"),
            json!("example:ada")
        );
        assert_eq!(
            e(r"{{ 'ada@example' | regex_replace('(?P<u>\\w+)@', '\\g<u> at ') }}"),
            json!("ada at example")
        );
        assert_eq!(
            e(r"{{ 'cost 5' | regex_replace('\\d', '$1') }}"),
            json!("cost $1")
        );
        assert_eq!(
            e(r"{{ 'aaa' | regex_replace('a', 'b', count=2) }}"),
            json!("bba")
        );
        assert_eq!(
            e(r"{{ 'AbA' | regex_replace('a', 'x', ignorecase=true) }}"),
            json!("xbx")
        );
        assert!(fails(r"{{ 'a' | regex_replace('a', '\\2') }}", json!({})).contains("group"));
        assert_eq!(
            e(r"{{ 'ERR: x' | regex_match('err', ignorecase=true) }}"),
            json!(true)
        );
        assert_eq!(e(r"{{ 'x ERR' | regex_match('ERR') }}"), json!(false));
        assert_eq!(e(r"{{ '1.2 (x)' | regex_escape }}"), json!(r"1\.2\ \(x\)"));
        assert_eq!(e(r"{{ 'abc' is match('b') }}"), json!(false));
        assert_eq!(e(r"{{ 'abc' is search('b') }}"), json!(true));
        assert_eq!(
            e(r"{{ 'abc' is regex('abc', match_type='fullmatch') }}"),
            json!(true)
        );
        assert_eq!(
            e(r"{{ 'abcd' is regex('abc', match_type='fullmatch') }}"),
            json!(false)
        );
        assert!(fails(r"{{ 'a' | regex_search('(') }}", json!({})).contains("regex_search"));
    }

    #[test]
    fn dates() {
        assert_eq!(
            e("{{ '2026-03-01T12:00:00Z' | parse_datetime }}"),
            json!("2026-03-01T12:00:00Z")
        );
        assert_eq!(
            e("{{ '2026-03-01 12:00:00' | parse_datetime }}"),
            json!("2026-03-01T12:00:00Z")
        );
        assert_eq!(
            e("{{ '2026-03-01T12:00:00.120+01:00' | parse_datetime }}"),
            json!("2026-03-01T12:00:00.12+01:00")
        );
        assert_eq!(
            e("{{ '2026-03-01' | parse_datetime }}"),
            json!("2026-03-01T00:00:00Z")
        );
        assert_eq!(
            e("{{ '2026-03-01T12:00:00' | parse_datetime(tz='Europe/Paris') }}"),
            json!("2026-03-01T12:00:00+01:00")
        );
        assert_eq!(
            e("{{ '03/01/2026 14:05' | parse_datetime('%m/%d/%Y %H:%M') }}"),
            json!("2026-03-01T14:05:00Z")
        );
        assert_eq!(
            e("{{ '01.03.2026' | parse_datetime('%d.%m.%Y') }}"),
            json!("2026-03-01T00:00:00Z")
        );
        assert_eq!(
            e("{{ 'Sun, 01 Mar 2026 12:00:00 +0000' | parse_datetime }}"),
            json!("2026-03-01T12:00:00Z")
        );
        assert_eq!(
            e("{{ 1772366400 | parse_datetime }}"),
            json!("2026-03-01T12:00:00Z")
        );
        assert!(fails("{{ 'yesterday' | parse_datetime }}", json!({})).contains("parse_datetime"));
        assert_eq!(
            e("{{ '2026-03-01T12:00:00Z' | format_datetime('%d %b %Y %H:%M', 'Europe/Paris') }}"),
            json!("01 Mar 2026 13:00")
        );
        assert_eq!(
            e("{{ '2026-03-01T12:00:00Z' | format_datetime('%Y') }}"),
            json!("2026")
        );
        assert_eq!(
            e("{{ 1772366400 | format_datetime }}"),
            json!("2026-03-01T12:00:00Z")
        );
        assert_eq!(
            e("{{ '2026-03-01T12:00:00Z' | as_timezone('America/New_York') }}"),
            json!("2026-03-01T07:00:00-05:00")
        );
        assert_eq!(
            e("{{ '2026-03-01T13:00:00+01:00' | as_timezone('UTC') }}"),
            json!("2026-03-01T12:00:00Z")
        );
        assert!(
            fails("{{ '2026-03-01' | as_timezone('Mars/Base') }}", json!({})).contains("Mars/Base")
        );
        assert_eq!(
            e("{{ 1772366400 | convert_from_epoch }}"),
            json!("2026-03-01T12:00:00Z")
        );
        assert_eq!(
            e("{{ '1772366400' | convert_from_epoch('Europe/Paris') }}"),
            json!("2026-03-01T13:00:00+01:00")
        );
        assert_eq!(
            e("{{ 1772366400.5 | convert_from_epoch }}"),
            json!("2026-03-01T12:00:00.5Z")
        );
        assert_eq!(
            e("{{ '2026-03-01T13:00:00+01:00' | convert_to_epoch }}"),
            json!(1772366400)
        );
        assert_eq!(
            e("{{ '2026-03-01T12:00:00Z' | to_epoch }}"),
            json!(1772366400)
        );
        assert_eq!(
            e("{{ 3725 | to_human_time_from_seconds }}"),
            json!("1h 2m 5s")
        );
        assert_eq!(
            e("{{ 90061 | to_human_time_from_seconds }}"),
            json!("1d 1h 1m 1s")
        );
        assert_eq!(e("{{ 0 | to_human_time_from_seconds }}"), json!("0s"));
    }

    #[test]
    fn combine_filter() {
        let ctx =
            json!({"a": {"x": 1, "n": {"p": 1, "q": [1, 2]}}, "b": {"y": 2, "n": {"q": [2, 3]}}});
        assert_eq!(
            ev("{{ a | combine(b) }}", ctx.clone()),
            json!({"x": 1, "n": {"q": [2, 3]}, "y": 2})
        );
        assert_eq!(
            ev("{{ a | combine(b, recursive=true) }}", ctx.clone()),
            json!({"x": 1, "n": {"p": 1, "q": [2, 3]}, "y": 2})
        );
        assert_eq!(
            ev(
                "{{ a | combine(b, recursive=true, list_merge='append') }}",
                ctx.clone()
            ),
            json!({"x": 1, "n": {"p": 1, "q": [1, 2, 2, 3]}, "y": 2})
        );
        assert_eq!(
            ev(
                "{{ a | combine(b, recursive=true, list_merge='append_rp') }}",
                ctx.clone()
            ),
            json!({"x": 1, "n": {"p": 1, "q": [1, 2, 3]}, "y": 2})
        );
        assert_eq!(
            ev(
                "{{ a | combine(b, recursive=true, list_merge='prepend_rp') }}",
                ctx.clone()
            ),
            json!({"x": 1, "n": {"p": 1, "q": [2, 3, 1]}, "y": 2})
        );
        assert_eq!(
            ev(
                "{{ a | combine(b, recursive=true, list_merge='prepend') }}",
                ctx.clone()
            ),
            json!({"x": 1, "n": {"p": 1, "q": [2, 3, 1, 2]}, "y": 2})
        );
        assert_eq!(
            ev(
                "{{ a | combine(b, recursive=true, list_merge='keep') }}",
                ctx.clone()
            ),
            json!({"x": 1, "n": {"p": 1, "q": [1, 2]}, "y": 2})
        );
        assert_eq!(
            ev("{{ [a, b, {'x': 9}] | combine }}", ctx.clone())["x"],
            json!(9)
        );
        assert_eq!(ev("{{ [] | combine }}", ctx.clone()), json!({}));
        assert!(fails("{{ a | combine(1) }}", ctx.clone()).contains("combine"));
        assert!(fails("{{ a | combine(b, list_merge='zip') }}", ctx).contains("list_merge"));
    }

    #[test]
    fn queries() {
        let ctx = json!({"r": {"items": [{"id": 1, "s": "open"}, {"id": 2, "s": "done"}]}});
        assert_eq!(
            ev(
                r#"{{ r | json_query("items[?s=='open'].id") }}"#,
                ctx.clone()
            ),
            json!([1])
        );
        assert_eq!(
            ev("{{ r | json_query('items[*].{i: id}') }}", ctx.clone()),
            json!([{"i": 1}, {"i": 2}])
        );
        assert_eq!(
            ev("{{ r | json_query('nothing') }}", ctx.clone()),
            json!(null)
        );
        assert!(fails("{{ r | json_query('items[') }}", ctx.clone()).contains("json_query"));
        assert_eq!(
            ev("{{ r | jsonpath('$.items[*].id') }}", ctx.clone()),
            json!([1, 2])
        );
        assert_eq!(
            ev(
                "{{ r | jsonpath('$.items[?@.s == \"done\"].id') }}",
                ctx.clone()
            ),
            json!([2])
        );
        assert_eq!(
            ev("{{ r | jsonpath('$..s') }}", ctx.clone()),
            json!(["open", "done"])
        );
        assert!(fails("{{ r | jsonpath('items') }}", ctx).contains("jsonpath"));
    }

    #[test]
    fn lists_and_maps() {
        assert_eq!(
            e("{{ [1, [2, [3, none]], 'None'] | flatten }}"),
            json!([1, 2, 3])
        );
        assert_eq!(e("{{ [1, [2, [3]]] | flatten(1) }}"), json!([1, 2, [3]]));
        assert_eq!(
            e("{{ [1, [2, [3]]] | flatten(levels=1) }}"),
            json!([1, 2, [3]])
        );
        assert_eq!(
            e("{{ [1, none] | flatten(skip_nulls=false) }}"),
            json!([1, null])
        );
        assert_eq!(
            e("{{ {'a': 1, 'b': 2} | dict2items }}"),
            json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
        );
        assert_eq!(
            e("{{ {'a': 1} | dict2items(key_name='k', value_name='v') }}"),
            json!([{"k": "a", "v": 1}])
        );
        assert_eq!(
            e("{{ [{'key': 'a', 'value': 1}] | items2dict }}"),
            json!({"a": 1})
        );
        assert_eq!(
            e("{{ [{'n': 'a', 'v': 1}] | items2dict(key_name='n', value_name='v') }}"),
            json!({"a": 1})
        );
        assert!(fails("{{ [{'x': 1}] | items2dict }}", json!({})).contains("items2dict"));
        assert_eq!(e("{{ [1, 2, 2] | union([2, 3]) }}"), json!([1, 2, 3]));
        assert_eq!(e("{{ [1, 2, 2] | intersect([2, 3]) }}"), json!([2]));
        assert_eq!(e("{{ [1, 2] | difference([2, 3]) }}"), json!([1]));
        assert_eq!(
            e("{{ [1, 2] | symmetric_difference([2, 3]) }}"),
            json!([1, 3])
        );
        assert_eq!(e("{{ [1, 2] is subset([1, 2, 3]) }}"), json!(true));
        assert_eq!(e("{{ [1, 2] is superset([1, 2, 3]) }}"), json!(false));
        assert_eq!(e("{{ [1, 2] is contains(2) }}"), json!(true));
        assert_eq!(
            e("{{ [1, 2] | zip(['a', 'b']) | list }}"),
            json!([[1, "a"], [2, "b"]])
        );
        assert_eq!(e("{{ [1, 2, 1] | unique | list }}"), json!([1, 2]));
        assert_eq!(
            e("{{ dict(['a', 'b'] | zip([1, 2])) }}"),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(e("{{ dict({'a': 1}, b=2) }}"), json!({"a": 1, "b": 2}));
        assert_eq!(e("{{ dict(a=1) }}"), json!({"a": 1}));
        assert_eq!(e("{{ dict() }}"), json!({}));
        assert_eq!(
            e("{% set c = cycler('odd', 'even') %}{{ c.next() }} {{ c.next() }} {{ c.next() }}"),
            json!("odd even odd")
        );
        assert!(fails("{{ dict([1, 2]) }}", json!({})).contains("pairs"));
    }

    #[test]
    fn scalars() {
        assert_eq!(e("{{ true | ternary('y', 'n') }}"), json!("y"));
        assert_eq!(e("{{ 0 | ternary('y', 'n') }}"), json!("n"));
        assert_eq!(e("{{ none | ternary('y', 'n', 'null') }}"), json!("null"));
        assert_eq!(e("{{ none | ternary('y', 'n') }}"), json!("n"));
        for (src, want) in [
            ("'yes'", true),
            ("'On'", true),
            ("'1'", true),
            ("'TRUE'", true),
            ("1", true),
            ("true", true),
            ("'false'", false),
            ("'no'", false),
            ("0", false),
            ("2", false),
            ("none", false),
            ("''", false),
        ] {
            assert_eq!(e(&format!("{{{{ {src} | bool }}}}")), json!(want), "{src}");
        }
        assert_eq!(e("{{ '42' | int }}"), json!(42));
        assert_eq!(e("{{ ' 4_2 ' | int }}"), json!(42));
        assert_eq!(e("{{ '4.7' | int }}"), json!(4));
        assert_eq!(e("{{ -4.7 | int }}"), json!(-4));
        assert_eq!(e("{{ 'n/a' | int }}"), json!(0));
        assert_eq!(e("{{ '' | int(-1) }}"), json!(-1));
        assert_eq!(e("{{ 'x' | int(default=7) }}"), json!(7));
        assert_eq!(e("{{ 'ff' | int(base=16) }}"), json!(255));
        assert_eq!(e("{{ '0x1F' | int(0, 16) }}"), json!(31));
        assert_eq!(e("{{ none | int }}"), json!(0));
        assert_eq!(e("{{ true | int }}"), json!(1));
        assert!(eval_str("{{ nope | int }}", &json!({})).is_err());
        assert_eq!(e("{{ '1.5' | float }}"), json!(1.5));
        assert_eq!(e("{{ '1e3' | float }}"), json!(1000.0));
        assert_eq!(e("{{ 'abc' | float }}"), json!(0.0));
        assert_eq!(e("{{ 'abc' | float(-1.0) }}"), json!(-1.0));
        assert_eq!(e("{{ 2 | float }}"), json!(2.0));
        assert_eq!(e("{{ 1 | mandatory }}"), json!(1));
        assert!(
            fails("{{ nope | mandatory('nope is required') }}", json!({}))
                .contains("nope is required")
        );
        assert_eq!(
            e(
                "{{ [1 | type_debug, 1.5 | type_debug, 'x' | type_debug, none | type_debug, [] | type_debug, {} | type_debug, true | type_debug] }}"
            ),
            json!(["int", "float", "str", "NoneType", "list", "dict", "bool"])
        );
        assert_eq!(e("{{ 'hello big-world' | wordcount }}"), json!(3));
        let fox = "'The quick brown fox jumps over the lazy dog'";
        assert_eq!(
            e(&format!("{{{{ {fox} | truncate(20) }}}}")),
            json!("The quick brown...")
        );
        assert_eq!(
            e(&format!("{{{{ {fox} | truncate(20, true) }}}}")),
            json!("The quick brown f...")
        );
        assert_eq!(
            e(&format!("{{{{ {fox} | truncate(20, false, '…') }}}}")),
            json!("The quick brown…")
        );
        assert_eq!(
            e(&format!("{{{{ {fox} | truncate(length=40, leeway=0) }}}}")),
            json!("The quick brown fox jumps over the...")
        );
        assert_eq!(e("{{ 'short' | truncate(3, leeway=5) }}"), json!("short"));
        assert!(fails("{{ 'abcdef' | truncate(2, leeway=0) }}", json!({})).contains("length"));
        assert_eq!(e("{{ 'hi' | center(6) }}"), json!("  hi  "));
        assert_eq!(e("{{ 'hi' | center(5) }}"), json!("  hi "));
        assert_eq!(e("{{ 'abc' | center(6) }}"), json!(" abc  "));
        assert_eq!(e("{{ 'abc' | center(2) }}"), json!("abc"));
    }

    #[test]
    fn paths_and_versions() {
        assert_eq!(
            e("{{ '/etc/app/conf.yaml' | basename }}"),
            json!("conf.yaml")
        );
        assert_eq!(e("{{ '/etc/app/' | basename }}"), json!(""));
        assert_eq!(e("{{ '/etc/app/conf.yaml' | dirname }}"), json!("/etc/app"));
        assert_eq!(e("{{ '/etc' | dirname }}"), json!("/"));
        assert_eq!(e("{{ 'conf' | dirname }}"), json!(""));
        assert_eq!(
            e(r"{{ 'C:\\Users\\ada\\r.pdf' | win_basename }}"),
            json!("r.pdf")
        );
        assert_eq!(
            e(r"{{ 'C:\\Users\\ada\\r.pdf' | win_dirname }}"),
            json!(r"C:\Users\ada")
        );
        assert_eq!(e(r"{{ 'C:\\r.pdf' | win_dirname }}"), json!(r"C:\"));
        assert_eq!(
            e("{{ '10.0.19045' | version_compare('10.0.1', '>=') }}"),
            json!(true)
        );
        assert_eq!(
            e("{{ '1.10' | version_compare('1.9', 'gt') }}"),
            json!(true)
        );
        assert_eq!(
            e("{{ '1.0' | version_compare('1.0.0', '<') }}"),
            json!(true)
        );
        assert_eq!(e("{{ '2.0' | version_compare('2.0') }}"), json!(true));
        assert_eq!(e("{{ '1.0rc1' is version('1.0', 'gt') }}"), json!(true));
        assert_eq!(e("{{ '1.0a' is version('1.0.1', 'lt') }}"), json!(true));
        assert!(fails("{{ '1' | version_compare('2', '~') }}", json!({})).contains("operator"));
    }

    #[test]
    fn bad_date_formats_do_not_panic() {
        for fmt in ["%Y %", "%K", "%::::z", "%Z", "%.3f %N"] {
            let _ = eval_str(
                &format!("{{{{ '2026-03-01T10:00:00+01:00' | format_datetime('{fmt}') }}}}"),
                &json!({}),
            );
        }
        let msg = fails("{{ '2026' | parse_datetime('%Y-%m') }}", json!({}));
        assert!(msg.contains("parse_datetime"), "{msg}");
    }
}
