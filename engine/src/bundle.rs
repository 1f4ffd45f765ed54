//! Crates: packaged workflows an MSP installs per organization.
//!
//! A crate is a folder with a `crate.yaml` manifest (name, semver version, description,
//! required integrations and org variables, typed parameters, workflow files, form files) and
//! those files. This module reads and checks manifests and form files (errors carry file,
//! line and column), compares versions, checks parameter values, and rewrites a crate
//! workflow for one install: the name and webhook trigger names get `--{org}`, parameters
//! become input defaults, and every trigger gets the install's `run_for` and `enabled`.
//! Forms, and the workflows their `options_from` names, are shared by every org (form names
//! are global): [`shared_workflow`] prepares such a workflow and [`placement`] decides what
//! to do with something of the crate already deployed. Storing installs and deploying are the
//! caller's business.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::model::InputType;
use crate::registry::Registry;
use crate::suggest::did_you_mean;
use crate::yaml::{self, Kind, Node, Span};

/// The manifest's file name.
pub const MANIFEST: &str = "crate.yaml";

/// A semantic version (`1.2.0`, `2.0.0-rc.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
    /// Pre-release (`rc.1`), empty for a release.
    pub pre: String,
}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]` (build metadata is ignored).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.split_once('+').map_or(s, |(v, _)| v);
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) if !p.is_empty() => (c, p.to_string()),
            Some(_) => return None,
            None => (s, String::new()),
        };
        let mut parts = core.split('.');
        let num = |p: Option<&str>| -> Option<u64> {
            let p = p?;
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return None;
            }
            p.parse().ok()
        };
        let v = Version {
            major: num(parts.next())?,
            minor: num(parts.next())?,
            patch: num(parts.next())?,
            pre,
        };
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(&self.pre, &other.pre),
            })
    }
}

fn cmp_pre(a: &str, b: &str) -> Ordering {
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// A crate parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Expected type.
    pub ty: InputType,
    /// The type as written (`integer`).
    pub type_name: String,
    /// Must the installer give it (when there is no default)?
    pub required: bool,
    /// Used when the installer does not give it.
    pub default: Option<Value>,
    /// Allowed values.
    pub allowed: Option<Vec<Value>>,
    /// What it is for.
    pub description: Option<String>,
    /// Trigger fields the value is written into at install (`nightly.schedule`), for what
    /// inputs cannot carry: a cron schedule, a time zone.
    pub sets: Vec<TriggerField>,
}

/// A trigger field a parameter sets: `TRIGGER.FIELD` in `sets:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerField {
    /// The trigger's name (in any of the crate's workflows).
    pub trigger: String,
    /// `schedule`, `timezone`, `catch_up` or `criteria`.
    pub field: String,
}

/// The trigger fields a parameter may set.
pub const SETTABLE_TRIGGER_FIELDS: &[&str] = &["schedule", "timezone", "catch_up", "criteria"];

impl fmt::Display for TriggerField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.trigger, self.field)
    }
}

/// A parsed `crate.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// `[a-z0-9-]+`.
    pub name: String,
    /// Its version.
    pub version: Version,
    /// One line.
    pub description: String,
    /// Integration kinds the installing org must resolve.
    pub integrations: Vec<String>,
    /// Org variables that must resolve.
    pub variables: Vec<String>,
    /// Parameters, in file order.
    pub parameters: IndexMap<String, Param>,
    /// Workflow files (relative to the folder); `None`: every `*.yaml` but the manifest and
    /// the form files.
    pub workflows: Option<Vec<String>>,
    /// Form files (relative to the folder), deployed under their own names for every org.
    pub forms: Vec<String>,
}

/// A problem in a crate, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when the problem is not in a file's text).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

struct Errs<'a> {
    file: &'a str,
    out: Vec<CrateError>,
}

impl Errs<'_> {
    fn at(&mut self, span: Span, message: impl Into<String>) {
        self.out.push(CrateError {
            file: self.file.to_string(),
            line: span.line,
            column: span.column,
            message: message.into(),
        });
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn string_list(node: &Node, what: &str, errs: &mut Errs<'_>) -> Vec<String> {
    match &node.kind {
        Kind::Null => Vec::new(),
        Kind::Seq(items) => items
            .iter()
            .filter_map(|i| match i.as_str() {
                Some(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                _ => {
                    errs.at(
                        i.span,
                        format!("{what}: expected a name, found {}", i.type_name()),
                    );
                    None
                }
            })
            .collect(),
        _ => {
            errs.at(
                node.span,
                format!("{what}: expected a list, found {}", node.type_name()),
            );
            Vec::new()
        }
    }
}

/// Parses and checks a manifest's text; `file` names it in errors.
///
/// # Errors
/// Every problem found, each with its line and column.
pub fn parse_manifest(src: &str, file: &str) -> Result<Manifest, Vec<CrateError>> {
    let mut errs = Errs {
        file,
        out: Vec::new(),
    };
    let root = match yaml::parse(src) {
        Ok(r) => r,
        Err(e) => {
            errs.at(e.span, e.message);
            return Err(errs.out);
        }
    };
    let Some(entries) = root.as_map() else {
        errs.at(
            root.span,
            format!("expected a mapping, found {}", root.type_name()),
        );
        return Err(errs.out);
    };
    unknown_manifest_keys(entries, &mut errs);
    let name = manifest_name(&root, &mut errs);
    let version = manifest_version(&root, &mut errs);
    let description = manifest_description(&root, &mut errs);
    let (integrations, variables) = manifest_requires(&root, &mut errs);
    let parameters = manifest_parameters(&root, &mut errs);
    let workflows = root
        .get("workflows")
        .map(|n| manifest_files(n, "workflow", &mut errs));
    let forms = root
        .get("forms")
        .map(|n| manifest_files(n, "form", &mut errs))
        .unwrap_or_default();
    if let (Some(list), Some(Kind::Seq(items))) = (&workflows, root.get("forms").map(|n| &n.kind)) {
        for (item, f) in items.iter().filter_map(|i| Some((i, i.as_str()?.trim()))) {
            if list.iter().any(|w| w == f) {
                errs.at(
                    item.span,
                    format!("`{f}` is listed under both `workflows` and `forms`: a file is one or the other"),
                );
            }
        }
    }
    if errs.out.is_empty() {
        Ok(Manifest {
            name,
            version,
            description,
            integrations,
            variables,
            parameters,
            workflows,
            forms,
        })
    } else {
        errs.out.sort_by_key(|e| (e.line, e.column));
        Err(errs.out)
    }
}

/// Reports keys a manifest does not have.
fn unknown_manifest_keys(entries: &[(Node, Node)], errs: &mut Errs<'_>) {
    const KEYS: &[&str] = &[
        "name",
        "version",
        "description",
        "requires",
        "parameters",
        "workflows",
        "forms",
    ];
    for (k, _) in entries {
        let key = k.key_string();
        if !KEYS.contains(&key.as_str()) {
            errs.at(
                k.span,
                format!(
                    "unknown key `{key}`{} (expected one of: {})",
                    did_you_mean(&key, KEYS.iter().copied())
                        .map(|h| format!(", {h}"))
                        .unwrap_or_default(),
                    KEYS.join(", ")
                ),
            );
        }
    }
}

/// `name`: lowercase letters, digits and `-` (empty when invalid or missing).
fn manifest_name(root: &Node, errs: &mut Errs<'_>) -> String {
    match root.get("name") {
        Some(n) => match n.as_str() {
            Some(s) if valid_name(s) => s.to_string(),
            _ => {
                errs.at(
                    n.span,
                    "`name` must be lowercase letters, digits and `-` (like `ticket-triage`)",
                );
                String::new()
            }
        },
        None => {
            errs.at(root.span, "missing `name`");
            String::new()
        }
    }
}

/// `version`: a semantic version (`0.0.0` when invalid or missing).
fn manifest_version(root: &Node, errs: &mut Errs<'_>) -> Version {
    match root.get("version") {
        Some(n) => {
            let text = match &n.kind {
                Kind::Str(s, _) => Some(s.clone()),
                _ => None,
            };
            match text.as_deref().and_then(Version::parse) {
                Some(v) => v,
                None => {
                    errs.at(
                        n.span,
                        "`version` must be a semantic version MAJOR.MINOR.PATCH (like `1.2.0`)",
                    );
                    Version::parse("0.0.0").expect("valid")
                }
            }
        }
        None => {
            errs.at(root.span, "missing `version`");
            Version::parse("0.0.0").expect("valid")
        }
    }
}

/// `description`: text (empty when invalid or missing).
fn manifest_description(root: &Node, errs: &mut Errs<'_>) -> String {
    match root.get("description") {
        Some(n) => match n.as_str() {
            Some(s) => s.trim().to_string(),
            None => {
                errs.at(
                    n.span,
                    format!("`description` must be text, found {}", n.type_name()),
                );
                String::new()
            }
        },
        None => {
            errs.at(root.span, "missing `description`");
            String::new()
        }
    }
}

/// `requires`: the integrations and variables the crate needs.
fn manifest_requires(root: &Node, errs: &mut Errs<'_>) -> (Vec<String>, Vec<String>) {
    let (mut integrations, mut variables) = (Vec::new(), Vec::new());
    if let Some(req) = root.get("requires") {
        match req.as_map() {
            Some(items) => {
                for (k, v) in items {
                    match k.key_string().as_str() {
                        "integrations" => {
                            integrations = string_list(v, "requires.integrations", errs)
                        }
                        "variables" => variables = string_list(v, "requires.variables", errs),
                        other => errs.at(
                            k.span,
                            format!(
                                "unknown key `requires.{other}` (expected integrations, variables)"
                            ),
                        ),
                    }
                }
            }
            None if matches!(req.kind, Kind::Null) => {}
            None => errs.at(
                req.span,
                format!("`requires` must be a mapping, found {}", req.type_name()),
            ),
        }
    }
    (integrations, variables)
}

/// `parameters`: what installing the crate asks for, by name.
fn manifest_parameters(root: &Node, errs: &mut Errs<'_>) -> IndexMap<String, Param> {
    let mut parameters = IndexMap::new();
    if let Some(params) = root.get("parameters") {
        match params.as_map() {
            Some(items) => {
                for (k, v) in items {
                    let pname = k.key_string();
                    if pname.is_empty()
                        || !pname.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || pname.starts_with(|c: char| c.is_ascii_digit())
                    {
                        errs.at(
                            k.span,
                            format!(
                                "parameter `{pname}`: names are letters, digits and `_` (they become workflow input names)"
                            ),
                        );
                        continue;
                    }
                    if let Some(p) = parse_param(&pname, v, errs) {
                        parameters.insert(pname, p);
                    }
                }
            }
            None if matches!(params.kind, Kind::Null) => {}
            None => errs.at(
                params.span,
                format!(
                    "`parameters` must be a mapping, found {}",
                    params.type_name()
                ),
            ),
        }
    }
    parameters
}

/// `workflows` or `forms` (`what`: `workflow` or `form`): files relative to the crate's
/// folder.
fn manifest_files(n: &Node, what: &str, errs: &mut Errs<'_>) -> Vec<String> {
    let list = string_list(n, &format!("{what}s"), errs);
    if let Kind::Seq(items) = &n.kind {
        for item in items {
            let Some(s) = item.as_str() else { continue };
            if Path::new(s).is_absolute() || s.split(['/', '\\']).any(|c| c == "..") {
                errs.at(
                    item.span,
                    format!("{what} file `{s}` must be inside the crate folder"),
                );
            }
        }
    }
    list
}

fn parse_param(pname: &str, v: &Node, errs: &mut Errs<'_>) -> Option<Param> {
    let Some(items) = v.as_map() else {
        errs.at(
            v.span,
            format!(
                "parameter `{pname}` must be a mapping like {{type: string, required: true}}, found {}",
                v.type_name()
            ),
        );
        return None;
    };
    let before = errs.out.len();
    let mut p = Param {
        ty: InputType::Any,
        type_name: "any".into(),
        required: false,
        default: None,
        allowed: None,
        description: None,
        sets: Vec::new(),
    };
    let mut default_span = None;
    for (k, val) in items {
        match k.key_string().as_str() {
            "type" => match val.as_str().and_then(InputType::parse) {
                Some(t) => {
                    p.ty = t;
                    p.type_name = val.as_str().unwrap_or_default().to_string();
                }
                None => errs.at(
                    val.span,
                    format!(
                        "parameter `{pname}`: unknown type (expected one of: {})",
                        InputType::NAMES.join(", ")
                    ),
                ),
            },
            "required" => match val.kind {
                Kind::Bool(b) => p.required = b,
                _ => errs.at(
                    val.span,
                    format!("parameter `{pname}`: `required` must be true or false"),
                ),
            },
            "default" => {
                p.default = Some(val.to_json());
                default_span = Some(val.span);
            }
            "enum" | "allowed" => match &val.kind {
                Kind::Seq(list) if !list.is_empty() => {
                    p.allowed = Some(list.iter().map(Node::to_json).collect())
                }
                _ => errs.at(
                    val.span,
                    format!("parameter `{pname}`: `enum` must be a non-empty list"),
                ),
            },
            "description" => match val.as_str() {
                Some(s) => p.description = Some(s.trim().to_string()),
                None => errs.at(
                    val.span,
                    format!("parameter `{pname}`: `description` must be text"),
                ),
            },
            "sets" => {
                let targets: Vec<&Node> = match &val.kind {
                    Kind::Seq(list) => list.iter().collect(),
                    _ => vec![val],
                };
                for t in targets {
                    match t.as_str().and_then(|s| s.split_once('.')) {
                        Some((trigger, field))
                            if !trigger.is_empty()
                                && SETTABLE_TRIGGER_FIELDS.contains(&field) =>
                        {
                            p.sets.push(TriggerField {
                                trigger: trigger.to_string(),
                                field: field.to_string(),
                            });
                        }
                        _ => errs.at(
                            t.span,
                            format!(
                                "parameter `{pname}`: `sets` takes TRIGGER.FIELD (like `nightly.schedule`), FIELD one of: {}",
                                SETTABLE_TRIGGER_FIELDS.join(", ")
                            ),
                        ),
                    }
                }
            }
            other => errs.at(
                k.span,
                format!(
                    "parameter `{pname}`: unknown key `{other}` (expected type, required, default, enum, description, sets)"
                ),
            ),
        }
    }
    if let (Some(d), Some(span)) = (&p.default, default_span)
        && let Err(why) = check_value(&p, d)
    {
        errs.at(span, format!("parameter `{pname}`: default {why}"));
    }
    (errs.out.len() == before).then_some(p)
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Checks a value against a parameter's type and allowed values.
///
/// # Errors
/// Why it does not fit (`must be an integer, got a string`).
pub fn check_value(p: &Param, v: &Value) -> Result<(), String> {
    let ok = match p.ty {
        InputType::String => v.is_string(),
        InputType::Integer => v.is_i64() || v.is_u64(),
        InputType::Number => v.is_number(),
        InputType::Boolean => v.is_boolean(),
        InputType::Object => v.is_object(),
        InputType::Array => v.is_array(),
        InputType::Any => true,
    };
    if !ok {
        return Err(format!(
            "must be {}, got {} ({v})",
            type_article(p.ty),
            value_type(v)
        ));
    }
    if let Some(allowed) = &p.allowed
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!("{v} is not allowed (one of: {})", list.join(", ")));
    }
    for target in &p.sets {
        check_trigger_field(target, v)?;
    }
    Ok(())
}

/// Checks a value for a trigger field the way the workflow validator would, so that a bad
/// schedule is reported against the parameter rather than the installed file.
fn check_trigger_field(target: &TriggerField, v: &Value) -> Result<(), String> {
    let text = match v {
        Value::String(s) => s.as_str(),
        _ if target.field == "criteria" => return Ok(()),
        other => {
            return Err(format!(
                "sets {target}, which takes text, got {}",
                value_type(other)
            ));
        }
    };
    match target.field.as_str() {
        "schedule" => crate::cron::Schedule::parse(text)
            .map(drop)
            .map_err(|e| format!("is not a cron schedule for {target}: {e}")),
        "timezone" => jiff::tz::TimeZone::get(text).map(drop).map_err(|_| {
            format!("`{text}` is not an IANA time zone (like Europe/London) for {target}")
        }),
        "catch_up" if !matches!(text, "latest" | "none") => Err(format!(
            "`{text}` is not a catch_up policy for {target} (latest or none)"
        )),
        _ => Ok(()),
    }
}

fn type_article(t: InputType) -> &'static str {
    match t {
        InputType::String => "a string",
        InputType::Integer => "an integer",
        InputType::Number => "a number",
        InputType::Boolean => "a boolean",
        InputType::Object => "a mapping",
        InputType::Array => "a list",
        InputType::Any => "anything",
    }
}

/// A parameter value as given: text from the command line (read by the parameter's type)
/// or JSON from the API.
#[derive(Debug, Clone, PartialEq)]
pub enum Given {
    /// `--param k=v`: a string parameter takes it as is; others read it as JSON.
    Text(String),
    /// A JSON value.
    Json(Value),
}

/// Reads a command-line value by the parameter's type.
///
/// # Errors
/// The text does not read as the type.
pub fn coerce(p: &Param, text: &str) -> Result<Value, String> {
    match p.ty {
        InputType::String => Ok(Value::String(text.to_string())),
        InputType::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("must be an integer, got `{text}`")),
        InputType::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| {
                if f.fract() == 0.0 && text.trim().parse::<i64>().is_ok() {
                    Some(Value::from(text.trim().parse::<i64>().ok()?))
                } else {
                    serde_json::Number::from_f64(f).map(Value::Number)
                }
            })
            .ok_or_else(|| format!("must be a number, got `{text}`")),
        InputType::Boolean => match text.trim() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("must be true or false, got `{text}`")),
        },
        InputType::Any => Ok(serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))),
        InputType::Object | InputType::Array => serde_json::from_str(text)
            .map_err(|_| format!("must be {} in JSON, got `{text}`", type_article(p.ty))),
    }
}

/// Parameters for an install: `stored` (kept from an earlier install; ones the manifest no
/// longer declares are dropped) overridden by `given`. Answers the explicit values (what to
/// store) — [`effective`] adds the defaults.
///
/// # Errors
/// Every problem: unknown names (with a suggestion), values of the wrong type or not
/// allowed, required parameters missing.
pub fn resolve_params(
    m: &Manifest,
    stored: &Map<String, Value>,
    given: &[(String, Given)],
) -> Result<Map<String, Value>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = Map::new();
    for (k, v) in stored {
        if m.parameters.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    for (k, g) in given {
        let Some(p) = m.parameters.get(k) else {
            let hint = did_you_mean(k, m.parameters.keys().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            let known = if m.parameters.is_empty() {
                "has no parameters".to_string()
            } else {
                format!(
                    "has: {}",
                    m.parameters.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            problems.push(format!(
                "unknown parameter `{k}`{hint}: crate {} {known}",
                m.name
            ));
            continue;
        };
        let value = match g {
            Given::Text(t) => match coerce(p, t) {
                Ok(v) => v,
                Err(why) => {
                    problems.push(format!("parameter `{k}` {why}"));
                    continue;
                }
            },
            Given::Json(v) => v.clone(),
        };
        out.insert(k.clone(), value);
    }
    for (k, v) in &out {
        if let Some(p) = m.parameters.get(k)
            && let Err(why) = check_value(p, v)
        {
            let msg = format!("parameter `{k}` {why}");
            if !problems.contains(&msg) {
                problems.push(msg);
            }
        }
    }
    for (k, p) in &m.parameters {
        if p.required && p.default.is_none() && !out.contains_key(k) {
            let hint = p
                .description
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            problems.push(format!(
                "missing required parameter `{k}`{hint}: give --param {k}=VALUE"
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Explicit values plus the defaults of the parameters not given.
pub fn effective(m: &Manifest, explicit: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, p) in &m.parameters {
        if let Some(v) = explicit.get(k).or(p.default.as_ref()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// A crate folder read from disk.
#[derive(Debug, Clone)]
pub struct CrateDir {
    /// The folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// README.md, when present.
    pub readme: Option<String>,
    /// Workflow files: (path relative to the folder, text).
    pub workflows: Vec<(String, String)>,
    /// Form files, checked.
    pub forms: Vec<CrateForm>,
}

/// A form file of a crate (it validated when the crate was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateForm {
    /// The file, relative to the crate's folder.
    pub file: String,
    /// The form's name (`form:`): global, the same for every org.
    pub name: String,
    /// Its page's heading.
    pub title: String,
    /// Its YAML.
    pub source: String,
    /// The workflows its `options_from` fields name.
    pub generators: Vec<String>,
}

impl CrateDir {
    /// README's first paragraph (after a leading `#` title), joined on one line.
    pub fn summary(&self) -> Option<String> {
        let text = self.readme.as_deref()?;
        let para: Vec<&str> = text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty() && !p.starts_with('#'))
            .take(1)
            .flat_map(|p| p.lines().map(str::trim))
            .collect();
        (!para.is_empty()).then(|| para.join(" "))
    }

    /// The names of the crate's workflows that its forms' `options_from` name: deployed
    /// under their own names and shared by every org (see [`shared_workflow`]).
    pub fn shared_workflows(&self) -> Vec<String> {
        self.workflows
            .iter()
            .map(|(_, src)| workflow_name(src))
            .filter(|n| self.forms.iter().any(|f| f.generators.contains(n)))
            .collect()
    }
}

/// Reads and checks one form file of a crate; `shown` names it in errors.
fn read_form(file: &str, shown: &str, source: String) -> Result<CrateForm, Vec<CrateError>> {
    let loaded = crate::load_form(&source);
    let Some(form) = loaded.form else {
        return Err(loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| CrateError {
                file: shown.to_string(),
                line: d.span.line,
                column: d.span.column,
                message: format!("{} [{}]", d.message, d.code),
            })
            .collect());
    };
    let generators = form
        .fields()
        .filter_map(|f| match &f.options {
            crate::form::Options::Dynamic { workflow, .. } => Some(workflow.clone()),
            _ => None,
        })
        .collect();
    Ok(CrateForm {
        file: file.to_string(),
        name: form.name.clone(),
        title: form.title.clone(),
        source,
        generators,
    })
}

/// Reads a crate folder: its manifest (checked) and workflow files.
///
/// # Errors
/// Unreadable files, manifest problems, listed workflow files that are missing.
pub fn read_dir(dir: &Path) -> Result<CrateDir, Vec<CrateError>> {
    let mpath = dir.join(MANIFEST);
    let file = mpath.display().to_string();
    let err = |file: &str, message: String| CrateError {
        file: file.to_string(),
        line: 0,
        column: 0,
        message,
    };
    let src = std::fs::read_to_string(&mpath)
        .map_err(|e| vec![err(&file, format!("cannot read it: {e}"))])?;
    let manifest = parse_manifest(&src, &file)?;
    let names: Vec<String> = match &manifest.workflows {
        Some(list) => list.clone(),
        None => {
            let mut found: Vec<String> = std::fs::read_dir(dir)
                .map_err(|e| {
                    vec![err(
                        &dir.display().to_string(),
                        format!("cannot read it: {e}"),
                    )]
                })?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| (n.ends_with(".yaml") || n.ends_with(".yml")) && n != MANIFEST)
                .filter(|n| !crate::is_test_file_name(n))
                .filter(|n| !manifest.forms.contains(n))
                .collect();
            found.sort();
            found
        }
    };
    let mut problems = Vec::new();
    let mut workflows = Vec::new();
    for n in names {
        let p = dir.join(&n);
        match std::fs::read_to_string(&p) {
            Ok(s) if crate::is_form_source(&s) => problems.push(err(
                &file,
                format!("`{n}` is a form file (it has `form:`): list it under `forms:`"),
            )),
            Ok(s) => workflows.push((n, s)),
            Err(e) => problems.push(err(
                &file,
                format!("workflow file `{n}` cannot be read ({}): {e}", p.display()),
            )),
        }
    }
    if workflows.is_empty() && problems.is_empty() {
        problems.push(err(&file, "the crate has no workflow files".into()));
    }
    let forms = read_forms(dir, &file, &manifest, &workflows, &mut problems);
    let triggers: Vec<String> = workflows
        .iter()
        .flat_map(|(_, src)| trigger_names(src))
        .collect();
    for (pname, p) in &manifest.parameters {
        for t in &p.sets {
            if !triggers.contains(&t.trigger) {
                problems.push(err(
                    &file,
                    format!(
                        "parameter `{pname}` sets {t}, but no workflow of the crate has a trigger `{}` (it has: {})",
                        t.trigger,
                        if triggers.is_empty() { "none".to_string() } else { triggers.join(", ") }
                    ),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CrateDir {
        dir: dir.to_path_buf(),
        readme: std::fs::read_to_string(dir.join("README.md")).ok(),
        manifest,
        workflows,
        forms,
    })
}

/// Reads and checks the crate's form files: each validates (its errors are the crate's,
/// with their positions), no two share a name, and the crate's workflows their options come
/// from have no triggers (they are shared by every org).
fn read_forms(
    dir: &Path,
    manifest_file: &str,
    manifest: &Manifest,
    workflows: &[(String, String)],
    problems: &mut Vec<CrateError>,
) -> Vec<CrateForm> {
    let mut forms: Vec<CrateForm> = Vec::new();
    for n in &manifest.forms {
        let p = dir.join(n);
        let source = match std::fs::read_to_string(&p) {
            Ok(s) => s,
            Err(e) => {
                problems.push(CrateError {
                    file: manifest_file.to_string(),
                    line: 0,
                    column: 0,
                    message: format!("form file `{n}` cannot be read ({}): {e}", p.display()),
                });
                continue;
            }
        };
        match read_form(n, &p.display().to_string(), source) {
            Ok(f) => match forms.iter().find(|o| o.name == f.name) {
                Some(other) => problems.push(CrateError {
                    file: manifest_file.to_string(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "form files `{}` and `{n}` are both form `{}`: a form name is used once",
                        other.file, f.name
                    ),
                }),
                None => forms.push(f),
            },
            Err(errs) => problems.extend(errs),
        }
    }
    for (wf_file, src) in workflows {
        let name = workflow_name(src);
        let Some(form) = forms.iter().find(|f| f.generators.contains(&name)) else {
            continue;
        };
        if !trigger_names(src).is_empty() {
            problems.push(CrateError {
                file: dir.join(wf_file).display().to_string(),
                line: 0,
                column: 0,
                message: format!(
                    "workflow `{name}` gives the options of form `{}`: it is shared by every org the crate is installed for, so it cannot have triggers",
                    form.name
                ),
            });
        }
    }
    forms
}

/// The names of a workflow's triggers (none when it does not parse).
fn trigger_names(src: &str) -> Vec<String> {
    let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(src) else {
        return Vec::new();
    };
    doc.get("triggers")
        .and_then(serde_yaml::Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(serde_yaml::Value::as_str))
        .map(str::to_string)
        .collect()
}

/// What a requirement check found missing, as messages.
pub fn missing_requirements(
    m: &Manifest,
    org: &str,
    has_integration: impl Fn(&str) -> bool,
    has_variable: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for kind in &m.integrations {
        if !has_integration(kind) {
            out.push(format!(
                "missing integration `{kind}` for organization `{org}` (its own, a parent's or --integrations): add one with `weft integration add {kind} --org {org}`"
            ));
        }
    }
    for var in &m.variables {
        if !has_variable(var) {
            out.push(format!(
                "missing variable `{var}` for organization `{org}`: set it with `weft org var set {org} {var} VALUE`"
            ));
        }
    }
    out
}

/// The name a crate workflow or webhook trigger gets for one install.
pub fn install_name(name: &str, org: &str) -> String {
    format!("{name}--{org}")
}

/// A crate workflow rewritten for one install.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewritten {
    /// The crate file it came from.
    pub file: String,
    /// The workflow's name in the crate.
    pub original_name: String,
    /// Its name for this install (`{name}--{org}`).
    pub name: String,
    /// The YAML to deploy.
    pub source: String,
    /// Its triggers: (name after the rewrite, type).
    pub triggers: Vec<(String, String)>,
}

/// What one install of a crate is: the values every workflow of it is rewritten with.
#[derive(Debug, Clone, Copy)]
pub struct Install<'a> {
    /// The crate's manifest.
    pub manifest: &'a Manifest,
    /// The org it is installed for.
    pub org: &'a str,
    /// The effective parameter values (explicit ones and defaults).
    pub params: &'a Map<String, Value>,
    /// Who the triggers run for; empty: the install's org.
    pub run_for: &'a [String],
    /// Are its triggers enabled?
    pub enabled: bool,
    /// The names of the crate's workflows: sub-workflow calls to them follow the rename.
    pub siblings: &'a [String],
}

/// The `name:` of a workflow's source (empty when it has none).
pub fn workflow_name(src: &str) -> String {
    serde_yaml::from_str::<serde_yaml::Value>(src)
        .ok()
        .and_then(|d| {
            d.get("name")
                .and_then(serde_yaml::Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Rewrites one crate workflow for an install and validates the result.
///
/// Its name becomes `{name}--{org}` (webhook triggers too, since their URLs are global);
/// each parameter the workflow declares as an input becomes that input's `default`;
/// parameters with `sets` are written into the named trigger fields; `core.workflow` calls
/// to the crate's other workflows follow their rename; triggers run for `run_for` (the
/// install's org when empty) and are enabled or not.
///
/// # Errors
/// The workflow is not valid after the rewrite; each message names the crate file, with line
/// and column when the file as shipped has the problem too. (A shipped file may rely on the
/// rewrite: a required input a parameter gives a default is fine.)
pub fn rewrite_workflow(
    file: &str,
    src: &str,
    install: &Install<'_>,
    registry: &Registry,
) -> Result<Rewritten, Vec<CrateError>> {
    let Install { manifest, org, .. } = *install;
    let one = |message: String| {
        vec![CrateError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message,
        }]
    };
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(src).map_err(|e| one(format!("cannot read it: {e}")))?;
    let Some(map) = doc.as_mapping_mut() else {
        return Err(one("expected a mapping".into()));
    };
    let original_name = map
        .get("name")
        .and_then(serde_yaml::Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = install_name(&original_name, org);
    map.insert("name".into(), name.clone().into());
    set_input_defaults(map, install.params).map_err(one)?;
    rename_sibling_calls(map, install);
    let triggers = rewrite_triggers(map, install).map_err(one)?;
    let body = serde_yaml::to_string(&doc).map_err(|e| one(format!("cannot write it: {e}")))?;
    let (crate_name, version) = (&manifest.name, &manifest.version);
    let source = format!(
        "# Installed from crate {crate_name} {version} ({file}) for organization {org} by `weft crate`.\n# `weft crate upgrade` replaces it unless the install is detached.\n{body}"
    );
    let installed = crate::load(&source, registry);
    if installed.has_errors() {
        // Point at the file as shipped when the problem is there too (positions match it);
        // otherwise the rewrite caused it.
        let shipped = crate::load(src, registry);
        if shipped.has_errors() {
            return Err(load_errors(&shipped, file.to_string(), true));
        }
        return Err(load_errors(
            &installed,
            format!("{file} (as installed for {org})"),
            false,
        ));
    }
    Ok(Rewritten {
        file: file.to_string(),
        original_name,
        name,
        source,
        triggers,
    })
}

/// Prepares a workflow the crate's forms take their options from: shared by every org the
/// crate is installed for (a form is global, and its options run in the org of the link), so
/// it keeps its name and gets no parameters; the header says where it came from.
///
/// # Errors
/// The workflow is not valid; each message names `file` with line and column.
pub fn shared_workflow(
    file: &str,
    src: &str,
    manifest: &Manifest,
    registry: &Registry,
) -> Result<Rewritten, Vec<CrateError>> {
    let shipped = crate::load(src, registry);
    if shipped.has_errors() {
        return Err(load_errors(&shipped, file.to_string(), true));
    }
    let name = workflow_name(src);
    let (crate_name, version) = (&manifest.name, &manifest.version);
    let source = format!(
        "# Installed from crate {crate_name} {version} ({file}) by `weft crate`: shared by every org the crate is installed for\n# (a form's options run it in the org of the link).\n{src}"
    );
    Ok(Rewritten {
        file: file.to_string(),
        original_name: name.clone(),
        name,
        source,
        triggers: Vec::new(),
    })
}

/// What a crate's shared files (its forms, their options workflows) are recorded as deployed
/// from: `crate:CRATE/FILE`.
pub fn shipped_path(crate_name: &str, file: &str) -> String {
    format!("crate:{crate_name}/{file}")
}

/// What installing a crate does with one of its shared files, given what is deployed under
/// the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Nothing is deployed under the name: deploy it.
    New,
    /// The latest version has the same source: nothing to do.
    Unchanged,
    /// The latest version came from this crate: deploy a new version.
    Upgrade,
    /// Something else of that name is deployed (from this path, if known): refuse.
    Foreign(Option<String>),
}

/// Decides what [`Placement`] a shared file of crate `crate_name` gets: `deployed` is the
/// latest version's source and path under its name, if any.
pub fn placement(
    deployed: Option<(&str, Option<&str>)>,
    source: &str,
    crate_name: &str,
) -> Placement {
    match deployed {
        None => Placement::New,
        Some((current, _)) if current == source => Placement::Unchanged,
        Some((_, Some(path))) if path.starts_with(&format!("crate:{crate_name}/")) => {
            Placement::Upgrade
        }
        Some((_, path)) => Placement::Foreign(path.map(str::to_string)),
    }
}

/// The errors of a loaded workflow as crate errors of `file` (without line numbers unless
/// `with_pos`: they would point into a text the user never saw).
fn load_errors(loaded: &crate::Loaded, file: String, with_pos: bool) -> Vec<CrateError> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| CrateError {
            file: file.clone(),
            line: if with_pos { d.span.line } else { 0 },
            column: d.span.column,
            message: format!("{} [{}]", d.message, d.code),
        })
        .collect()
}

/// The install's parameter values become the defaults of the workflow inputs of the same
/// name (a shorthand `name: type` input is expanded).
fn set_input_defaults(
    map: &mut serde_yaml::Mapping,
    params: &Map<String, Value>,
) -> Result<(), String> {
    if let Some(inputs) = map
        .get_mut("input")
        .and_then(serde_yaml::Value::as_mapping_mut)
    {
        for (k, v) in inputs.iter_mut() {
            let Some(key) = k.as_str() else { continue };
            let Some(value) = params.get(key) else {
                continue;
            };
            let yaml_value: serde_yaml::Value =
                serde_yaml::to_value(value).map_err(|e| format!("parameter `{key}`: {e}"))?;
            match v.as_mapping_mut() {
                Some(spec) => {
                    spec.insert("default".into(), yaml_value);
                }
                None => {
                    // Shorthand `name: type`.
                    let mut spec = serde_yaml::Mapping::new();
                    if let Some(t) = v.as_str() {
                        spec.insert("type".into(), t.into());
                    }
                    spec.insert("default".into(), yaml_value);
                    *v = serde_yaml::Value::Mapping(spec);
                }
            }
        }
    }
    Ok(())
}

/// `core.workflow` calls of a sibling workflow of the crate call its installed copy.
fn rename_sibling_calls(map: &mut serde_yaml::Mapping, install: &Install<'_>) {
    let Install { org, siblings, .. } = *install;
    if let Some(tasks) = map
        .get_mut("tasks")
        .and_then(serde_yaml::Value::as_mapping_mut)
    {
        for (_, task) in tasks.iter_mut() {
            let calls_workflow =
                task.get("action").and_then(serde_yaml::Value::as_str) == Some("core.workflow");
            let Some(input) = task
                .get_mut("input")
                .and_then(serde_yaml::Value::as_mapping_mut)
                .filter(|_| calls_workflow)
            else {
                continue;
            };
            if let Some(child) = input.get("workflow").and_then(serde_yaml::Value::as_str)
                && siblings.iter().any(|s| s == child)
            {
                let renamed = install_name(child, org);
                input.insert("workflow".into(), renamed.into());
            }
        }
    }
}

/// Sets the install's parameters on the triggers they target, renames webhook triggers for
/// the org, and sets `run_for` and `enabled`; returns each trigger's `(name, type)`.
fn rewrite_triggers(
    map: &mut serde_yaml::Mapping,
    install: &Install<'_>,
) -> Result<Vec<(String, String)>, String> {
    let Install {
        manifest,
        org,
        params,
        run_for,
        enabled,
        ..
    } = *install;
    let mut triggers = Vec::new();
    if let Some(list) = map
        .get_mut("triggers")
        .and_then(serde_yaml::Value::as_sequence_mut)
    {
        for t in list.iter_mut() {
            let Some(t) = t.as_mapping_mut() else {
                continue;
            };
            let kind = t
                .get("type")
                .and_then(serde_yaml::Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut tname = t
                .get("name")
                .and_then(serde_yaml::Value::as_str)
                .unwrap_or_default()
                .to_string();
            for (pname, p) in &manifest.parameters {
                let Some(value) = params.get(pname) else {
                    continue;
                };
                for target in p.sets.iter().filter(|s| s.trigger == tname) {
                    let yaml_value: serde_yaml::Value = serde_yaml::to_value(value)
                        .map_err(|e| format!("parameter `{pname}`: {e}"))?;
                    t.insert(target.field.as_str().into(), yaml_value);
                }
            }
            if kind == "webhook" {
                tname = install_name(&tname, org);
                t.insert("name".into(), tname.clone().into());
            }
            let rf: serde_yaml::Value = match run_for {
                [] => org.into(),
                [one] => one.as_str().into(),
                many => {
                    serde_yaml::Value::Sequence(many.iter().map(|s| s.as_str().into()).collect())
                }
            };
            t.insert("run_for".into(), rf);
            t.insert("enabled".into(), enabled.into());
            triggers.push((tname, kind));
        }
    }
    Ok(triggers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const M: &str = "name: demo\nversion: 1.2.0\ndescription: A demo\nrequires:\n  integrations: [autotask]\n  variables: [channel]\nparameters:\n  queue_id: {type: integer, required: true, description: Queue}\n  note_type: {type: integer, default: 1}\n  mode: {type: string, enum: [suggest, apply], default: suggest}\nworkflows: [a.yaml]\n";

    fn hello_manifest(parameters: &str) -> Manifest {
        parse_manifest(
            &format!("name: hello\nversion: 1.0.0\ndescription: Hello\n{parameters}"),
            "crate.yaml",
        )
        .unwrap()
    }

    fn install<'a>(
        manifest: &'a Manifest,
        params: &'a Map<String, Value>,
        run_for: &'a [String],
        enabled: bool,
    ) -> Install<'a> {
        Install {
            manifest,
            org: "acme",
            params,
            run_for,
            enabled,
            siblings: &[],
        }
    }

    #[test]
    fn parameters_set_trigger_fields_and_sub_workflow_calls_follow_the_rename() {
        let mut registry = Registry::new();
        registry.register_spec(crate::ActionSpec {
            name: "core.workflow".into(),
            description: "child".into(),
            params: json!({"type": "object"}),
            local: true,
        });
        let m = hello_manifest(
            "parameters:\n  schedule: {type: string, default: \"0 6 * * *\", sets: nightly.schedule}\n  tz: {type: string, default: UTC, sets: [nightly.timezone]}\n",
        );
        assert_eq!(
            m.parameters["schedule"].sets,
            [TriggerField {
                trigger: "nightly".into(),
                field: "schedule".into()
            }]
        );
        let src = "name: hello\ntasks:\n  call:\n    action: core.workflow\n    input: {workflow: helper}\n  other:\n    action: core.workflow\n    input: {workflow: shared-elsewhere}\ntriggers:\n  - name: nightly\n    type: cron\n    schedule: \"@daily\"\n";
        let params = effective(
            &m,
            &resolve_params(
                &m,
                &Map::new(),
                &[(
                    "schedule".into(),
                    Given::Text("*/15 8-18 * * MON-FRI".into()),
                )],
            )
            .unwrap(),
        );
        let siblings = ["hello".to_string(), "helper".to_string()];
        let target = Install {
            siblings: &siblings,
            ..install(&m, &params, &[], true)
        };
        let r = rewrite_workflow("hello.yaml", src, &target, &registry).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&r.source).unwrap();
        assert_eq!(doc["triggers"][0]["schedule"], "*/15 8-18 * * MON-FRI");
        assert_eq!(doc["triggers"][0]["timezone"], "UTC");
        assert_eq!(doc["tasks"]["call"]["input"]["workflow"], "helper--acme");
        assert_eq!(
            doc["tasks"]["other"]["input"]["workflow"], "shared-elsewhere",
            "workflows outside the crate keep their names"
        );
        let bad = resolve_params(
            &m,
            &Map::new(),
            &[
                ("schedule".into(), Given::Text("75 2 * * *".into())),
                ("tz".into(), Given::Text("Mars/Olympus".into())),
            ],
        )
        .unwrap_err();
        assert!(
            bad[0].starts_with("parameter `schedule` is not a cron schedule for nightly.schedule"),
            "{bad:?}"
        );
        assert!(bad[1].contains("not an IANA time zone"), "{bad:?}");
        let errs = parse_manifest(
            "name: x\nversion: 1.0.0\ndescription: X\nparameters:\n  s: {type: string, sets: nightly}\n",
            "crate.yaml",
        )
        .unwrap_err();
        assert!(errs[0].message.contains("TRIGGER.FIELD"), "{errs:?}");
        assert_eq!(errs[0].line, 5);
    }

    #[test]
    fn versions_compare_semantically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.10.0") > v("1.9.9"));
        assert!(v("2.0.0") > v("2.0.0-rc.1"));
        assert!(v("2.0.0-rc.2") > v("2.0.0-rc.1"));
        assert!(v("2.0.0-rc.10") > v("2.0.0-rc.2"));
        assert_eq!(v("1.2.3+build").to_string(), "1.2.3");
        for bad in ["1.2", "1.2.3.4", "01.2.3", "a.b.c", "1.2.3-", ""] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn manifests_parse() {
        let m = parse_manifest(M, "crate.yaml").unwrap();
        assert_eq!(m.name, "demo");
        assert_eq!(m.version.to_string(), "1.2.0");
        assert_eq!(m.integrations, ["autotask"]);
        assert_eq!(m.variables, ["channel"]);
        assert!(m.parameters["queue_id"].required);
        assert_eq!(m.parameters["note_type"].default, Some(json!(1)));
        assert_eq!(m.parameters["mode"].allowed.as_ref().unwrap().len(), 2);
        assert_eq!(m.workflows.as_deref(), Some(&["a.yaml".to_string()][..]));
    }

    #[test]
    fn manifest_errors_have_positions() {
        let src = "name: Bad_Name\nversion: 1.2\ndescription: x\nparameters:\n  n: {type: integer, default: abc}\n  m: {type: strng}\nworkflow: [a.yaml]\n";
        let errs = parse_manifest(src, "c/crate.yaml").unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e.starts_with("c/crate.yaml:1:7: `name`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.starts_with("c/crate.yaml:2:10: `version`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e
                    .starts_with("c/crate.yaml:5:31: parameter `n`: default must be an integer")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("6:") && e.contains("unknown type")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.starts_with(
                "c/crate.yaml:7:1: unknown key `workflow`, did you mean `workflows`?"
            )),
            "{text:?}"
        );
    }

    #[test]
    fn parameters_are_checked_together() {
        let m = parse_manifest(M, "crate.yaml").unwrap();
        let errs = resolve_params(
            &m,
            &Map::new(),
            &[
                ("queue".into(), Given::Text("5".into())),
                ("note_type".into(), Given::Text("x".into())),
                ("mode".into(), Given::Text("auto".into())),
            ],
        )
        .unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].contains("unknown parameter `queue` (did you mean `queue_id`?)"));
        assert!(errs[1].contains("`note_type` must be an integer"));
        assert!(errs[2].contains("not allowed"));
        assert!(errs[3].contains("missing required parameter `queue_id`"));
        let ok = resolve_params(
            &m,
            &Map::from_iter([("mode".into(), json!("apply")), ("gone".into(), json!(1))]),
            &[("queue_id".into(), Given::Text("7".into()))],
        )
        .unwrap();
        assert_eq!(
            Value::Object(ok.clone()),
            json!({"mode": "apply", "queue_id": 7})
        );
        assert_eq!(
            Value::Object(effective(&m, &ok)),
            json!({"queue_id": 7, "note_type": 1, "mode": "apply"})
        );
    }

    #[test]
    fn workflows_are_rewritten_per_install() {
        let mut registry = Registry::new();
        registry.register_spec(crate::ActionSpec {
            name: "core.echo".into(),
            description: "echo".into(),
            params: json!({"type": "object"}),
            local: true,
        });
        let src = "name: hello\ninput:\n  greeting: {type: string}\ntasks:\n  say:\n    action: core.echo\n    input: {text: \"{{ CTX.greeting }}\"}\ntriggers:\n  - name: hook\n    type: webhook\n  - name: manual\n    type: manual\n";
        let mut params = Map::new();
        params.insert("greeting".into(), json!("Hi"));
        let m = hello_manifest("");
        let r = rewrite_workflow(
            "hello.yaml",
            src,
            &install(&m, &params, &[], false),
            &registry,
        )
        .unwrap();
        assert_eq!(r.name, "hello--acme");
        assert_eq!(
            r.triggers,
            [
                ("hook--acme".to_string(), "webhook".to_string()),
                ("manual".to_string(), "manual".to_string())
            ]
        );
        let doc: serde_yaml::Value = serde_yaml::from_str(&r.source).unwrap();
        assert_eq!(doc["input"]["greeting"]["default"], "Hi");
        assert_eq!(doc["triggers"][0]["run_for"], "acme");
        assert_eq!(doc["triggers"][0]["enabled"], false);
    }

    #[test]
    fn invalid_crate_workflows_name_the_file_and_position() {
        let registry = Registry::new();
        let src = "name: hello\ntasks:\n  say:\n    action: core.nope\n";
        let m = hello_manifest("");
        let (params, run_for) = (Map::new(), ["acme".to_string(), "beta".to_string()]);
        let errs = rewrite_workflow(
            "lib/hello/hello.yaml",
            src,
            &install(&m, &params, &run_for, true),
            &registry,
        )
        .unwrap_err();
        assert_eq!(errs[0].file, "lib/hello/hello.yaml");
        assert_eq!(errs[0].line, 4, "{errs:?}");
        assert!(
            errs[0].to_string().starts_with("lib/hello/hello.yaml:4:"),
            "{errs:?}"
        );
    }

    /// A crate folder with these files (name, text).
    fn crate_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const FORM_MANIFEST: &str = "name: intake\nversion: 1.0.0\ndescription: Intake\nworkflows: [go.yaml, people.yaml]\nforms: [intake-form.yaml]\n";
    const GO: &str = "name: go\ntriggers:\n  - type: form\n    form: intake\ntasks:\n  a:\n    action: core.noop\n";
    const PEOPLE: &str =
        "name: intake-people\ntasks:\n  a:\n    action: core.noop\noutput:\n  options: []\n";
    const INTAKE: &str = "form: intake\ntitle: Intake\nfields:\n  - name: who\n    type: select\n    options_from: {workflow: intake-people}\n";

    /// The `intake` crate: its manifest, `go.yaml`, `people.yaml` (its form's options) and
    /// the form `intake-form.yaml`.
    fn intake_dir(people: &str, form: &str) -> tempfile::TempDir {
        crate_dir(&[
            ("crate.yaml", FORM_MANIFEST),
            ("go.yaml", GO),
            ("people.yaml", people),
            ("intake-form.yaml", form),
        ])
    }

    #[test]
    fn manifests_list_form_files() {
        let m = parse_manifest(FORM_MANIFEST, "crate.yaml").unwrap();
        assert_eq!(m.forms, ["intake-form.yaml"]);
        assert!(hello_manifest("").forms.is_empty(), "forms are optional");
        let errs = parse_manifest(
            "name: x\nversion: 1.0.0\ndescription: X\nworkflows: [a.yaml]\nforms: [a.yaml, ../f.yaml, 3]\n",
            "c/crate.yaml",
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|e| e
                == "c/crate.yaml:5:9: `a.yaml` is listed under both `workflows` and `forms`: a file is one or the other"),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e
                    == "c/crate.yaml:5:17: form file `../f.yaml` must be inside the crate folder"),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.starts_with("c/crate.yaml:5:28: forms: expected a name")),
            "{text:?}"
        );
    }

    #[test]
    fn a_crate_reads_its_forms_and_knows_their_options_workflows() {
        let dir = intake_dir(PEOPLE, INTAKE);
        let c = read_dir(dir.path()).unwrap();
        assert_eq!(c.workflows.len(), 2);
        assert_eq!(c.forms.len(), 1);
        let f = &c.forms[0];
        assert_eq!(
            (f.file.as_str(), f.name.as_str(), f.title.as_str()),
            ("intake-form.yaml", "intake", "Intake")
        );
        assert_eq!(f.source, INTAKE);
        assert_eq!(f.generators, ["intake-people"]);
        assert_eq!(c.shared_workflows(), ["intake-people"]);

        // Without a `workflows` list, every other *.yaml is a workflow: not the forms.
        std::fs::write(
            dir.path().join("crate.yaml"),
            "name: intake\nversion: 1.0.0\ndescription: Intake\nforms: [intake-form.yaml]\n",
        )
        .unwrap();
        let c = read_dir(dir.path()).unwrap();
        let files: Vec<&str> = c.workflows.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(files, ["go.yaml", "people.yaml"]);
        // … and a form file nobody listed is named, not read as a broken workflow.
        std::fs::write(
            dir.path().join("crate.yaml"),
            "name: intake\nversion: 1.0.0\ndescription: Intake\n",
        )
        .unwrap();
        let errs = read_dir(dir.path()).unwrap_err();
        assert!(
            errs[0].message.contains(
                "`intake-form.yaml` is a form file (it has `form:`): list it under `forms:`"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn a_form_file_that_does_not_validate_is_a_crate_error_with_its_position() {
        let bad = "form: intake\nfields:\n  - name: who\n    type: dropdown\n";
        let dir = intake_dir(PEOPLE, bad);
        let errs = read_dir(dir.path()).unwrap_err();
        let shown = dir.path().join("intake-form.yaml").display().to_string();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, shown);
        assert_eq!((errs[0].line, errs[0].column), (4, 11), "{errs:?}");
        assert!(
            errs[0].to_string().starts_with(&format!("{shown}:4:11: ")),
            "{}",
            errs[0]
        );

        std::fs::remove_file(dir.path().join("intake-form.yaml")).unwrap();
        let errs = read_dir(dir.path()).unwrap_err();
        assert!(
            errs[0]
                .message
                .starts_with("form file `intake-form.yaml` cannot be read"),
            "{errs:?}"
        );
        assert!(errs[0].file.ends_with("crate.yaml"), "{errs:?}");
    }

    #[test]
    fn an_options_workflow_is_shared_so_it_has_no_triggers() {
        let triggered = "name: intake-people\ntriggers:\n  - name: nightly\n    type: cron\n    schedule: \"@daily\"\ntasks:\n  a:\n    action: core.noop\n";
        let dir = intake_dir(triggered, INTAKE);
        let errs = read_dir(dir.path()).unwrap_err();
        assert!(
            errs[0].message.contains(
                "workflow `intake-people` gives the options of form `intake`: it is shared by every org"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn shared_workflows_keep_their_name_and_deployed_files_are_placed() {
        let mut registry = Registry::new();
        registry.register_spec(crate::ActionSpec {
            name: "core.noop".into(),
            description: "noop".into(),
            params: json!({"type": "object"}),
            local: true,
        });
        let m = parse_manifest(FORM_MANIFEST, "crate.yaml").unwrap();
        let r = shared_workflow("people.yaml", PEOPLE, &m, &registry).unwrap();
        assert_eq!(
            (r.name.as_str(), r.original_name.as_str()),
            ("intake-people", "intake-people")
        );
        assert!(r.triggers.is_empty());
        assert!(
            r.source
                .starts_with("# Installed from crate intake 1.0.0 (people.yaml)")
        );
        assert!(r.source.ends_with(PEOPLE));
        let errs = shared_workflow(
            "people.yaml",
            "name: p\ntasks:\n  a:\n    action: core.nope\n",
            &m,
            &registry,
        )
        .unwrap_err();
        assert_eq!((errs[0].file.as_str(), errs[0].line), ("people.yaml", 4));

        let path = shipped_path("intake", "intake-form.yaml");
        assert_eq!(path, "crate:intake/intake-form.yaml");
        assert_eq!(placement(None, "a", "intake"), Placement::New);
        assert_eq!(
            placement(Some(("a", Some("x.yaml"))), "a", "intake"),
            Placement::Unchanged
        );
        assert_eq!(
            placement(Some(("old", Some(&path))), "a", "intake"),
            Placement::Upgrade
        );
        assert_eq!(
            placement(
                Some(("old", Some("crate:intake-extra/f.yaml"))),
                "a",
                "intake"
            ),
            Placement::Foreign(Some("crate:intake-extra/f.yaml".into())),
            "another crate whose name starts the same"
        );
        assert_eq!(
            placement(Some(("old", None)), "a", "intake"),
            Placement::Foreign(None)
        );
    }

    #[test]
    fn required_inputs_with_a_parameter_default_stay_valid() {
        let mut registry = Registry::new();
        registry.register_spec(crate::ActionSpec {
            name: "core.echo".into(),
            description: "echo".into(),
            params: json!({"type": "object"}),
            local: true,
        });
        let src = "name: hello\ninput:\n  who: {type: string, required: true}\n  n: integer\ntasks:\n  say:\n    action: core.echo\n    input: {text: \"{{ CTX.who }}\"}\ntriggers:\n  - name: every-day\n    type: cron\n    schedule: \"@daily\"\n";
        let mut params = Map::new();
        params.insert("who".into(), json!("ops"));
        params.insert("n".into(), json!(3));
        let m = hello_manifest("");
        let run_for = ["acme".to_string(), "beta".to_string()];
        let r = rewrite_workflow(
            "hello.yaml",
            src,
            &install(&m, &params, &run_for, true),
            &registry,
        )
        .unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&r.source).unwrap();
        assert_eq!(doc["input"]["who"]["default"], "ops");
        assert_eq!(doc["input"]["n"]["type"], "integer");
        assert_eq!(doc["input"]["n"]["default"], 3);
        assert_eq!(
            doc["triggers"][0]["name"], "every-day",
            "only webhooks are renamed"
        );
        assert_eq!(doc["triggers"][0]["run_for"][1], "beta");
        assert_eq!(doc["triggers"][0]["enabled"], true);
    }
}
