//! Workflow test files (`NAME.test.yaml`): their cases, mocks and expectations, read with
//! the location of every part so that a failed expectation names its line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use weft_engine::Diagnostic;
use weft_engine::model::parse_duration;
use weft_engine::yaml::{self, Kind, Node, Span};

pub use weft_engine::TEST_FILE_SUFFIX as SUFFIX;

/// Is `path` a workflow test file (`*.test.yaml` or `*.test.yml`)?
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(weft_engine::is_test_file_name)
}

/// A parsed test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text (for `--update` and for messages).
    pub source: String,
    /// The workflow under test (`workflow:`, else the file name without `.test.yaml`): its
    /// name, or its file relative to the test file.
    pub workflow: String,
    /// Its cases, with the file's `defaults:` applied.
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Its name (unique in the file).
    pub name: String,
    /// Where the case starts.
    pub span: Span,
    /// The case's own mapping (for `--update`).
    pub node: Node,
    /// Workflow inputs.
    pub input: Map<String, Value>,
    /// The organization it runs for.
    pub org: Option<OrgSpec>,
    /// The MSP above it (variables every client inherits).
    pub msp: Option<OrgSpec>,
    /// The event that starts it, instead of a manual run.
    pub trigger: Option<TriggerSpec>,
    /// The virtual clock's start.
    pub now: Option<jiff::Timestamp>,
    /// Actions that may run for real (globs: `core.*`, `http.request`).
    pub allow: Vec<String>,
    /// Mocks, the case's first, then the file's defaults.
    pub mocks: Vec<Mock>,
    /// What must hold.
    pub expect: Expect,
}

/// An organization for a case.
#[derive(Debug, Clone, Default)]
pub struct OrgSpec {
    /// Its name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Variables (`ORG.variables`).
    pub variables: Map<String, Value>,
    /// Secret variables (sealed, redacted in what is stored).
    pub secrets: Map<String, Value>,
    /// External ids by integration kind (`autotask: 29683561`).
    pub mapping: Map<String, Value>,
    /// PSA directory records by kind (`contact`, `configuration`, `location`), as the
    /// directory sync keeps them: `ORG.CONTACTS`, `ORG.CONFIGURATIONS`, `ORG.LOCATIONS`.
    pub directory: Vec<(String, Vec<Value>)>,
}

/// The event a case starts from.
#[derive(Debug, Clone)]
pub struct TriggerSpec {
    /// The trigger's name in the workflow; `None`: the only trigger of `type`, or the only one.
    pub name: Option<String>,
    /// What arrives: a webhook body, an Autotask callout, form values.
    pub body: Value,
    /// Request headers (webhook, Autotask).
    pub headers: Map<String, Value>,
    /// Query parameters (webhook).
    pub params: Map<String, Value>,
    /// The slot a cron trigger fires for.
    pub slot: Option<jiff::Timestamp>,
    /// Where it is written.
    pub span: Span,
}

/// What a mock stands in for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockTarget {
    /// Every call a task makes.
    Task(String),
    /// Every call of an action (`autotask.tickets.get`), by any task.
    Action(String),
}

/// One mock.
#[derive(Debug, Clone)]
pub struct Mock {
    /// What it stands in for.
    pub target: MockTarget,
    /// Only calls from this workflow (a sub-workflow's tasks).
    pub workflow: Option<String>,
    /// Only calls whose rendered input holds this.
    pub when: Option<When>,
    /// The answers.
    pub reply: Reply,
    /// Per `with.items` item: the answers of item 0, 1, …; items past the list get `reply`.
    pub items: Vec<Reply>,
    /// Where it is written.
    pub span: Span,
}

/// A condition on a call's rendered input.
#[derive(Debug, Clone)]
pub enum When {
    /// The input contains this (objects by key, recursively; other values equal).
    Subset(Value),
    /// A template over `input`, `task`, `item` and `attempt` that must be true.
    Template(String),
}

/// How a mock answers.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Answer of the 1st call, the 2nd… (the last repeats); empty: `null`.
    pub steps: Vec<Step>,
    /// Virtual time the call takes before it answers.
    pub delay: Option<Duration>,
}

/// One answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The action succeeds with this result.
    Result(Value),
    /// The action fails.
    Error {
        /// The message.
        message: String,
        /// Details (`TASKS.x.error.data`, e.g. `{retryable: true}`).
        data: Option<Value>,
    },
}

/// An expectation's value and where it is written.
#[derive(Debug, Clone)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Its place in the test file.
    pub span: Span,
}

/// What a case expects.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// `succeeded`, `failed`, `cancelled`, `filtered` or `rejected`.
    pub status: Option<At<String>>,
    /// The output, exactly.
    pub output: Option<At<Value>>,
    /// Part of the output (objects by key, recursively).
    pub output_includes: Option<At<Value>>,
    /// Templates that must be true, over `output`, `tasks`, `status`, `error`.
    pub holds: Vec<At<String>>,
    /// Tasks that ran.
    pub ran: Vec<At<String>>,
    /// Tasks that did not run (skipped, or never reached).
    pub not_ran: Vec<At<String>>,
    /// Routes followed, `task → on success` or `task → target` (see the README).
    pub routes: Vec<At<String>>,
    /// Attempts per task.
    pub attempts: Vec<(String, At<u32>)>,
    /// Part of the input each task's action received (its first call).
    pub inputs: Vec<(String, At<Value>)>,
    /// Status per task.
    pub task_status: Vec<(String, At<String>)>,
    /// Part of each task's result.
    pub results: Vec<(String, At<Value>)>,
    /// Text the execution's error contains.
    pub error: Option<At<String>>,
}

impl Expect {
    /// Does it expect nothing at all? (Then it expects the execution to succeed.)
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.output.is_none()
            && self.output_includes.is_none()
            && self.holds.is_empty()
            && self.ran.is_empty()
            && self.not_ran.is_empty()
            && self.routes.is_empty()
            && self.attempts.is_empty()
            && self.inputs.is_empty()
            && self.task_status.is_empty()
            && self.results.is_empty()
            && self.error.is_none()
    }
}

/// The top-level keys of a test file.
pub const FILE_KEYS: &[&str] = &["workflow", "defaults", "cases"];
/// The keys of a case.
pub const CASE_KEYS: &[&str] = &[
    "name", "input", "org", "msp", "trigger", "now", "allow", "mocks", "expect",
];
/// The keys of `defaults:`.
pub const DEFAULT_KEYS: &[&str] = &["input", "org", "msp", "now", "allow", "mocks"];
/// The keys of `org:` and `msp:`.
pub const ORG_KEYS: &[&str] = &[
    "name",
    "tags",
    "variables",
    "secrets",
    "mapping",
    "contacts",
    "configurations",
    "locations",
];
/// The keys of `trigger:`.
pub const TRIGGER_KEYS: &[&str] = &["name", "body", "headers", "params", "slot"];
/// The keys of a mock.
pub const MOCK_KEYS: &[&str] = &[
    "task", "action", "workflow", "when", "result", "error", "data", "results", "items", "delay",
];
/// The keys of an answer in `results:`.
pub const STEP_KEYS: &[&str] = &["result", "error", "data"];
/// The keys of `expect:`.
pub const EXPECT_KEYS: &[&str] = &[
    "status",
    "output",
    "output_includes",
    "holds",
    "ran",
    "not_ran",
    "routes",
    "attempts",
    "inputs",
    "tasks",
    "results",
    "error",
];
/// The statuses a case may expect.
pub const STATUSES: &[&str] = &["succeeded", "failed", "cancelled", "filtered", "rejected"];

/// Reads a test file; every problem is a diagnostic with its place.
///
/// # Errors
/// The diagnostics (at least one error) when the file is not a valid test file.
pub fn parse(path: &Path, source: &str) -> Result<TestFile, Vec<Diagnostic>> {
    let root = yaml::parse(source)
        .map_err(|e| vec![Diagnostic::error(e.code, e.span, e.message).with_help_opt(e.help)])?;
    let mut r = Reader::default();
    let file = r.file(path, source, &root);
    if r.diags.iter().any(Diagnostic::is_error) {
        return Err(r.diags);
    }
    file.ok_or(r.diags)
}

#[derive(Default)]
struct Reader {
    diags: Vec<Diagnostic>,
}

impl Reader {
    fn error(&mut self, code: &'static str, span: Span, message: String, help: Option<String>) {
        self.diags
            .push(Diagnostic::error(code, span, message).with_help_opt(help));
    }

    fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            Kind::Map(m) => Some(m),
            Kind::Null => Some(&[]),
            _ => {
                self.error(
                    "test.type",
                    node.span,
                    format!("{what} must be a mapping, found {}", node.type_name()),
                    None,
                );
                None
            }
        }
    }

    /// The entries of a mapping whose keys must be among `known`.
    fn keys<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
    ) -> Option<&'n [(Node, Node)]> {
        let entries = self.map(node, what)?;
        for (first, again) in yaml::duplicate_keys(entries) {
            self.diags.push(
                Diagnostic::error(
                    "test.duplicate_key",
                    again.span,
                    format!("`{}` is given twice in {what}", again.key_string()),
                )
                .with_related(first.span, "first given here"),
            );
        }
        for (k, _) in entries {
            let key = k.key_string();
            if !known.contains(&key.as_str()) {
                let help = weft_engine::suggest::did_you_mean(&key, known.iter().copied())
                    .or_else(|| Some(format!("{what} takes: {}", known.join(", "))));
                self.error(
                    "test.unknown_key",
                    k.span,
                    format!("unknown key `{key}` in {what}"),
                    help,
                );
            }
        }
        Some(entries)
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Str(s, _) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            _ => {
                self.error(
                    "test.type",
                    node.span,
                    format!("{what} must be a string, found {}", node.type_name()),
                    None,
                );
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, what: &str) -> Vec<At<String>> {
        match &node.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|i| {
                    self.string(i, what).map(|value| At {
                        value,
                        span: i.span,
                    })
                })
                .collect(),
            Kind::Null => Vec::new(),
            _ => self
                .string(node, what)
                .map(|value| {
                    vec![At {
                        value,
                        span: node.span,
                    }]
                })
                .unwrap_or_default(),
        }
    }

    fn object(&mut self, node: &Node, what: &str) -> Map<String, Value> {
        match node.to_json() {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => {
                self.error(
                    "test.type",
                    node.span,
                    format!("{what} must be a mapping, found {}", node.type_name()),
                    None,
                );
                Map::new()
            }
        }
    }

    fn time(&mut self, node: &Node, what: &str) -> Option<jiff::Timestamp> {
        let text = self.string(node, what)?;
        match text.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(
                    "test.time",
                    node.span,
                    format!("{what} `{text}` is not a time: {e}"),
                    Some("write an RFC 3339 time, e.g. 2026-03-02T09:00:00Z".into()),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = self.string(node, what)?;
        let d = parse_duration(&text);
        if d.is_none() {
            self.error(
                "test.duration",
                node.span,
                format!("{what} `{text}` is not a duration"),
                Some("write e.g. 250ms, 30s, 10m, 2h or 1h30m".into()),
            );
        }
        d
    }

    fn file(&mut self, path: &Path, source: &str, root: &Node) -> Option<TestFile> {
        let entries = self.keys(root, "a test file", FILE_KEYS)?;
        let get = |k: &str| value_of(entries, k);
        let workflow = match get("workflow") {
            Some(v) => self.string(v, "`workflow`")?,
            None => default_workflow(path),
        };
        let defaults = match get("defaults") {
            Some(v) => self.defaults(v),
            None => Defaults::default(),
        };
        let Some((cases_key, cases_node)) =
            entries.iter().find(|(n, _)| n.as_str() == Some("cases"))
        else {
            self.error(
                "test.no_cases",
                root.span,
                "a test file needs `cases:`, a list of cases".into(),
                Some("add `cases:` with at least one `- name: …` and its `expect:`".into()),
            );
            return None;
        };
        let Kind::Seq(items) = &cases_node.kind else {
            self.error(
                "test.type",
                cases_node.span,
                format!("`cases` must be a list, found {}", cases_node.type_name()),
                None,
            );
            return None;
        };
        if items.is_empty() {
            self.error(
                "test.no_cases",
                cases_key.span,
                "`cases` is empty".into(),
                None,
            );
        }
        let mut cases: Vec<Case> = Vec::new();
        for item in items {
            if let Some(case) = self.case(item, &defaults) {
                if let Some(first) = cases.iter().find(|c| c.name == case.name) {
                    self.diags.push(
                        Diagnostic::error(
                            "test.duplicate_case",
                            case.span,
                            format!("two cases are named `{}`", case.name),
                        )
                        .with_related(first.span, "first named here"),
                    );
                }
                cases.push(case);
            }
        }
        Some(TestFile {
            path: path.to_path_buf(),
            source: source.to_string(),
            workflow,
            cases,
        })
    }

    fn defaults(&mut self, node: &Node) -> Defaults {
        let mut d = Defaults::default();
        let Some(entries) = self.keys(node, "`defaults`", DEFAULT_KEYS) else {
            return d;
        };
        for (k, v) in entries {
            match k.as_str().unwrap_or_default() {
                "input" => d.input = self.object(v, "`input`"),
                "org" => d.org = self.org(v),
                "msp" => d.msp = self.org(v),
                "now" => d.now = self.time(v, "`now`"),
                "allow" => d.allow = self.allow(v),
                "mocks" => d.mocks = self.mocks(v),
                _ => {}
            }
        }
        d
    }

    fn allow(&mut self, node: &Node) -> Vec<String> {
        self.strings(node, "an `allow` entry")
            .into_iter()
            .map(|a| a.value)
            .collect()
    }

    fn case(&mut self, node: &Node, defaults: &Defaults) -> Option<Case> {
        let entries = self.keys(node, "a case", CASE_KEYS)?;
        let get = |k: &str| value_of(entries, k);
        let Some(name) = get("name").and_then(|n| self.string(n, "a case's `name`")) else {
            self.error(
                "test.case_name",
                node.span,
                "a case needs a `name:`".into(),
                Some("name it for the behaviour it checks, e.g. `name: a P1 ticket pages the on-call tech`".into()),
            );
            return None;
        };
        let mut input = defaults.input.clone();
        if let Some(v) = get("input") {
            input.extend(self.object(v, "`input`"));
        }
        let org = match get("org") {
            Some(v) => self.org(v),
            None => defaults.org.clone(),
        };
        let msp = match get("msp") {
            Some(v) => self.org(v),
            None => defaults.msp.clone(),
        };
        let trigger = get("trigger").and_then(|v| self.trigger(v));
        let now = match get("now") {
            Some(v) => self.time(v, "`now`"),
            None => defaults.now,
        };
        let mut allow = defaults.allow.clone();
        if let Some(v) = get("allow") {
            allow.extend(self.allow(v));
        }
        let mut mocks = get("mocks").map(|v| self.mocks(v)).unwrap_or_default();
        mocks.extend(defaults.mocks.iter().cloned());
        let expect = match get("expect") {
            Some(v) => self.expect(v),
            None => Expect::default(),
        };
        Some(Case {
            name,
            span: node.span,
            node: node.clone(),
            input,
            org,
            msp,
            trigger,
            now,
            allow,
            mocks,
            expect,
        })
    }

    fn org(&mut self, node: &Node) -> Option<OrgSpec> {
        if let Kind::Str(name, _) = &node.kind {
            return Some(OrgSpec {
                name: name.clone(),
                ..OrgSpec::default()
            });
        }
        let entries = self.keys(node, "`org`", ORG_KEYS)?;
        let mut org = OrgSpec::default();
        let mut named = false;
        for (k, v) in entries {
            match k.as_str().unwrap_or_default() {
                "name" => {
                    if let Some(n) = self.string(v, "the org's `name`") {
                        org.name = n;
                        named = true;
                    }
                }
                "tags" => {
                    org.tags = self
                        .strings(v, "a tag")
                        .into_iter()
                        .map(|t| t.value)
                        .collect()
                }
                "variables" => org.variables = self.object(v, "`variables`"),
                "secrets" => org.secrets = self.object(v, "`secrets`"),
                "mapping" => org.mapping = self.object(v, "`mapping`"),
                kind @ ("contacts" | "configurations" | "locations") => {
                    if let Some(records) = self.records(v, kind) {
                        let singular = kind.strip_suffix('s').unwrap_or(kind).to_string();
                        org.directory.push((singular, records));
                    }
                }
                _ => {}
            }
        }
        if !named {
            self.error(
                "test.org_name",
                node.span,
                "the org needs a `name:`".into(),
                None,
            );
        }
        Some(org)
    }

    /// A list of directory records, each a mapping with an `id`.
    fn records(&mut self, node: &Node, kind: &str) -> Option<Vec<Value>> {
        let Kind::Seq(items) = &node.kind else {
            self.error(
                "test.type",
                node.span,
                format!(
                    "`{kind}` must be a list of records, found {}",
                    node.type_name()
                ),
                None,
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            let v = item.to_json();
            if v.get("id").is_none_or(Value::is_null) {
                self.error(
                    "test.record_id",
                    item.span,
                    format!("each of `{kind}` needs an `id` (its id in the PSA)"),
                    Some("write e.g. `- {id: 30682080, firstName: Jane, emailAddress: jane@acme.example}`".into()),
                );
                continue;
            }
            out.push(v);
        }
        Some(out)
    }

    fn trigger(&mut self, node: &Node) -> Option<TriggerSpec> {
        let entries = self.keys(node, "`trigger`", TRIGGER_KEYS)?;
        let mut t = TriggerSpec {
            name: None,
            body: Value::Null,
            headers: Map::new(),
            params: Map::new(),
            slot: None,
            span: node.span,
        };
        for (k, v) in entries {
            match k.as_str().unwrap_or_default() {
                "name" => t.name = self.string(v, "the trigger's `name`"),
                "body" => t.body = v.to_json(),
                "headers" => t.headers = self.object(v, "`headers`"),
                "params" => t.params = self.object(v, "`params`"),
                "slot" => t.slot = self.time(v, "`slot`"),
                _ => {}
            }
        }
        Some(t)
    }

    /// `mocks:` is a mapping from a task name, or an action name (it has a dot), to a mock
    /// or a list of mocks; or a list of mocks each naming `task:` or `action:`.
    fn mocks(&mut self, node: &Node) -> Vec<Mock> {
        let mut out = Vec::new();
        match &node.kind {
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let key = k.key_string();
                    let target = if key.contains('.') {
                        MockTarget::Action(key)
                    } else {
                        MockTarget::Task(key)
                    };
                    match &v.kind {
                        Kind::Seq(items) => {
                            for i in items {
                                out.extend(self.mock(i, Some(target.clone())));
                            }
                        }
                        _ => out.extend(self.mock(v, Some(target))),
                    }
                }
            }
            Kind::Seq(items) => {
                for i in items {
                    out.extend(self.mock(i, None));
                }
            }
            Kind::Null => {}
            _ => self.error(
                "test.type",
                node.span,
                format!(
                    "`mocks` must be a mapping or a list, found {}",
                    node.type_name()
                ),
                Some("write `mocks: {TASK: {result: …}}`".into()),
            ),
        }
        out
    }

    fn mock(&mut self, node: &Node, target: Option<MockTarget>) -> Option<Mock> {
        let entries = self.keys(node, "a mock", MOCK_KEYS)?;
        let get = |k: &str| value_of(entries, k);
        let named = match (get("task"), get("action")) {
            (Some(t), None) => self.string(t, "`task`").map(MockTarget::Task),
            (None, Some(a)) => self.string(a, "`action`").map(MockTarget::Action),
            (Some(t), Some(_)) => {
                self.error(
                    "test.mock_target",
                    t.span,
                    "a mock names a `task` or an `action`, not both".into(),
                    None,
                );
                None
            }
            (None, None) => None,
        };
        let target = match (target, named) {
            (Some(t), None) | (None, Some(t)) => t,
            (Some(t), Some(_)) => t,
            (None, None) => {
                self.error(
                    "test.mock_target",
                    node.span,
                    "this mock stands in for nothing".into(),
                    Some("add `task: NAME` or `action: NAME`".into()),
                );
                return None;
            }
        };
        let workflow = get("workflow").and_then(|w| self.string(w, "`workflow`"));
        let when = get("when").map(|w| match &w.kind {
            Kind::Str(s, _) => When::Template(s.clone()),
            _ => When::Subset(w.to_json()),
        });
        let reply = self.reply(node, entries);
        let items = match get("items") {
            Some(n) => match &n.kind {
                Kind::Seq(list) => list
                    .iter()
                    .filter_map(|i| {
                        let e = self.keys(i, "an item's mock", MOCK_KEYS)?;
                        Some(self.reply(i, e))
                    })
                    .collect(),
                _ => {
                    self.error(
                        "test.type",
                        n.span,
                        format!(
                            "`items` must be a list (item 0's answer, item 1's…), found {}",
                            n.type_name()
                        ),
                        None,
                    );
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        Some(Mock {
            target,
            workflow,
            when,
            reply,
            items,
            span: node.span,
        })
    }

    /// The answers written in a mock's mapping: `result`, `error` (+ `data`), or `results`.
    fn reply(&mut self, node: &Node, entries: &[(Node, Node)]) -> Reply {
        let get = |k: &str| value_of(entries, k);
        let delay = get("delay").and_then(|d| self.duration(d, "`delay`"));
        let mut steps = Vec::new();
        match (get("result"), get("error"), get("results")) {
            (Some(r), None, None) => steps.push(Step::Result(r.to_json())),
            (None, Some(e), None) => {
                if let Some(step) = self.error_step(e, get("data")) {
                    steps.push(step);
                }
            }
            (None, None, Some(list)) => match &list.kind {
                Kind::Seq(items) => {
                    for i in items {
                        if let Some(e) = self.keys(i, "an answer", STEP_KEYS) {
                            let g = |k: &str| value_of(e, k);
                            match (g("result"), g("error")) {
                                (Some(r), None) => steps.push(Step::Result(r.to_json())),
                                (None, Some(err)) => {
                                    if let Some(s) = self.error_step(err, g("data")) {
                                        steps.push(s);
                                    }
                                }
                                _ => self.error(
                                    "test.mock_answer",
                                    i.span,
                                    "each answer in `results` is a `result:` or an `error:`".into(),
                                    None,
                                ),
                            }
                        }
                    }
                }
                _ => self.error(
                    "test.type",
                    list.span,
                    format!(
                        "`results` must be a list (the 1st call's answer, the 2nd's…), found {}",
                        list.type_name()
                    ),
                    None,
                ),
            },
            (None, None, None) => {}
            _ => self.error(
                "test.mock_answer",
                node.span,
                "a mock answers with one of `result`, `error` or `results`".into(),
                None,
            ),
        }
        Reply { steps, delay }
    }

    fn error_step(&mut self, node: &Node, data: Option<&Node>) -> Option<Step> {
        let message = match &node.kind {
            Kind::Str(s, _) => s.clone(),
            _ => {
                self.error(
                    "test.type",
                    node.span,
                    format!(
                        "`error` is the failure's message, a string; found {}",
                        node.type_name()
                    ),
                    Some("details go in `data:` beside it".into()),
                );
                return None;
            }
        };
        Some(Step::Error {
            message,
            data: data.map(Node::to_json),
        })
    }

    fn expect(&mut self, node: &Node) -> Expect {
        let mut x = Expect::default();
        let Some(entries) = self.keys(node, "`expect`", EXPECT_KEYS) else {
            return x;
        };
        for (k, v) in entries {
            let at = |value: String| At {
                value,
                span: v.span,
            };
            let json = || At {
                value: v.to_json(),
                span: v.span,
            };
            match k.as_str().unwrap_or_default() {
                "status" => {
                    if let Some(s) = self.string(v, "`status`") {
                        if !STATUSES.contains(&s.as_str()) {
                            self.error(
                                "test.status",
                                v.span,
                                format!("`{s}` is not an execution status"),
                                Some(format!("one of: {}", STATUSES.join(", "))),
                            );
                        }
                        x.status = Some(at(s));
                    }
                }
                "output" => x.output = Some(json()),
                "output_includes" => x.output_includes = Some(json()),
                "holds" => x.holds = self.strings(v, "a `holds` template"),
                "ran" => x.ran = self.strings(v, "a task name"),
                "not_ran" => x.not_ran = self.strings(v, "a task name"),
                "routes" => x.routes = self.strings(v, "a route"),
                "error" => x.error = self.string(v, "`error`").map(at),
                "attempts" => {
                    for (task, n) in self.map(v, "`attempts`").unwrap_or_default() {
                        match &n.kind {
                            Kind::Int(i) if *i >= 1 => x.attempts.push((
                                task.key_string(),
                                At {
                                    value: *i as u32,
                                    span: n.span,
                                },
                            )),
                            _ => self.error(
                                "test.type",
                                n.span,
                                "attempts are counted from 1".into(),
                                None,
                            ),
                        }
                    }
                }
                "inputs" => {
                    for (task, n) in self.map(v, "`inputs`").unwrap_or_default() {
                        x.inputs.push((
                            task.key_string(),
                            At {
                                value: n.to_json(),
                                span: n.span,
                            },
                        ));
                    }
                }
                "results" => {
                    for (task, n) in self.map(v, "`results`").unwrap_or_default() {
                        x.results.push((
                            task.key_string(),
                            At {
                                value: n.to_json(),
                                span: n.span,
                            },
                        ));
                    }
                }
                "tasks" => {
                    for (task, n) in self.map(v, "`tasks`").unwrap_or_default() {
                        if let Some(s) = self.string(n, "a task's status") {
                            x.task_status.push((
                                task.key_string(),
                                At {
                                    value: s,
                                    span: n.span,
                                },
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        x
    }
}

#[derive(Default)]
struct Defaults {
    input: Map<String, Value>,
    org: Option<OrgSpec>,
    msp: Option<OrgSpec>,
    now: Option<jiff::Timestamp>,
    allow: Vec<String>,
    mocks: Vec<Mock>,
}

/// The value of `key` in a mapping's entries.
fn value_of<'n>(entries: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Does `workflow:` give a file rather than a name?
pub fn is_workflow_path(workflow: &str) -> bool {
    workflow.ends_with(".yaml") || workflow.ends_with(".yml")
}

/// `ticket-triage.test.yaml` tests `ticket-triage`.
pub fn default_workflow(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.strip_suffix(SUFFIX)
        .or_else(|| name.strip_suffix(".test.yml"))
        .unwrap_or(name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(src: &str) -> Result<TestFile, Vec<Diagnostic>> {
        parse(Path::new("triage.test.yaml"), src)
    }

    #[test]
    fn cases_mocks_and_expectations_are_read_with_their_places() {
        let f = read(
            "defaults:\n  mocks:\n    autotask.tickets.get: {result: {id: 1}}\ncases:\n  - name: flaky\n    input: {id: 7}\n    mocks:\n      post:\n        results:\n          - error: busy\n            data: {retryable: true}\n          - result: {ok: true}\n    expect:\n      status: succeeded\n      attempts: {post: 2}\n",
        )
        .unwrap();
        assert_eq!(f.workflow, "triage");
        let c = &f.cases[0];
        assert_eq!(c.input["id"], 7);
        assert_eq!(c.mocks.len(), 2, "the case's mock, then the default");
        assert_eq!(c.mocks[0].target, MockTarget::Task("post".into()));
        assert_eq!(c.mocks[0].reply.steps.len(), 2);
        assert_eq!(
            c.mocks[1].target,
            MockTarget::Action("autotask.tickets.get".into())
        );
        assert_eq!(c.expect.attempts[0].1.value, 2);
        assert_eq!(c.expect.attempts[0].1.span.line, 15);
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        let diags = read("cases:\n  - name: a\n    expcet: {status: succeeded}\n").unwrap_err();
        let unknown = diags.iter().find(|d| d.code == "test.unknown_key").unwrap();
        assert_eq!(unknown.span.line, 3);
        assert_eq!(unknown.help.as_deref(), Some("did you mean `expect`?"));
        let diags = read("cases:\n  - name: a\n    expect: {status: done}\n").unwrap_err();
        assert_eq!(diags[0].code, "test.status");
        let diags = read("cases: []\n").unwrap_err();
        assert_eq!(diags[0].code, "test.no_cases");
        let diags = read("cases:\n  - name: a\n    mocks: {x: {result: 1, error: no}}\n    expect: {status: failed}\n").unwrap_err();
        assert_eq!(diags[0].code, "test.mock_answer");
    }
}
