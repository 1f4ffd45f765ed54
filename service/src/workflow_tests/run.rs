//! Running a test file's cases: the workflows beside it deployed into a scratch store, each
//! case's org, event and mocks set up, the execution run on a paused clock and what it did
//! gathered for the expectations.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::{Map, Value};
use weft_engine::action::Clock;
use weft_engine::executor::scope::{Extra, context, to_value};
use weft_engine::executor::{Engine, StartOptions};
use weft_engine::form::Form;
use weft_engine::integration::Integrations;
use weft_engine::model::{AutotaskEvent, Trigger, TriggerKind};
use weft_engine::store::{
    DirectoryRecord, ExecutionRecord, Store, TaskRun, TaskStatus, WorkflowRecord,
};
use weft_engine::{Registry, Workflow};
use weft_triggers::event::Admission;

use super::expect::{self, Failure};
use super::file::{Case, MockTarget, OrgSpec, TestFile, TriggerSpec};
use super::held_store::{Held, holding};
use super::mocks::{self, Call, CaseActions};
use crate::orgs::{self, NewOrg};

/// Where the virtual clock starts when a case does not say (`now:`): a fixed time, so that
/// templates reading the time give the same answer on every run.
pub const DEFAULT_NOW: &str = "2026-01-05T09:00:00Z";

fn default_now() -> jiff::Timestamp {
    DEFAULT_NOW.parse().expect("DEFAULT_NOW is a valid time")
}

/// What the runner is given besides the files.
#[derive(Clone)]
pub struct Options {
    /// Every action, as registered for real.
    pub registry: Arc<Registry>,
    /// Integration instances for actions a case lets run for real (`--integrations`).
    pub integrations: Option<Arc<dyn Integrations>>,
    /// Only the cases whose name contains this.
    pub filter: Option<String>,
}

/// How one case went.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The case's name.
    pub name: String,
    /// The case's line in the test file.
    pub line: usize,
    /// What did not hold (empty: passed).
    pub failures: Vec<Failure>,
    /// What the execution did (`None` when it could not start).
    pub observed: Option<Observed>,
    /// Real time the case took.
    pub elapsed: Duration,
}

impl CaseOutcome {
    /// Did every expectation hold?
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// How one test file went.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// The test file.
    pub path: PathBuf,
    /// The workflow it tests.
    pub workflow: String,
    /// Its cases (none when the file could not be run).
    pub cases: Vec<CaseOutcome>,
    /// Why the file could not be run at all.
    pub error: Option<FileError>,
    /// The workflows its cases ran (the tested one and its sub-workflows) with the file
    /// each was deployed from, for coverage.
    pub workflows: Vec<(Arc<Workflow>, String)>,
}

/// Why a test file could not be run.
#[derive(Debug, Clone)]
pub enum FileError {
    /// The test file itself is wrong.
    Invalid(Vec<weft_engine::Diagnostic>),
    /// Anything else (no such workflow, the workflow does not validate…).
    Other(String),
}

/// What one execution did, as expectations see it.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `succeeded`, `failed`, `cancelled`; `filtered` (the trigger's criteria kept it from
    /// starting) or `rejected` (its inputs do not fit the workflow).
    pub status: String,
    /// The output.
    pub output: Value,
    /// The execution's error.
    pub error: Option<String>,
    /// Why the trigger started nothing (`filtered`).
    pub filtered: Option<String>,
    /// Each task of the tested workflow, in file order.
    pub tasks: IndexMap<String, TaskSeen>,
    /// Routes followed in the tested workflow: (task, route index).
    pub routes: Vec<(String, usize)>,
    /// Tasks and routes of every execution (the case's and its sub-workflows'), per
    /// workflow: what coverage counts.
    pub covered: Vec<(String, String, Vec<usize>)>,
    /// Every action call.
    pub calls: Vec<Call>,
    /// Why the case fails whatever it expects (an unmocked call).
    pub problems: Vec<String>,
}

impl Observed {
    /// A case whose event started nothing (`filtered`, `rejected`).
    fn unstarted(
        status: &str,
        error: Option<String>,
        filtered: Option<String>,
        actions: &CaseActions,
    ) -> Observed {
        Observed {
            status: status.into(),
            output: Value::Null,
            error,
            filtered,
            tasks: IndexMap::new(),
            routes: Vec::new(),
            covered: Vec::new(),
            calls: actions.calls(),
            problems: actions.problems(),
        }
    }
}

impl TaskSeen {
    /// Did it run (succeed, fail or get cancelled), as opposed to being skipped or never
    /// reached? A `with.items` task over no items ran, with no attempts.
    pub fn ran(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// One task as a case saw it.
#[derive(Debug, Clone, Default)]
pub struct TaskSeen {
    /// `succeeded`, `failed`, `skipped`, `cancelled`, or `not run`.
    pub status: String,
    /// Attempts made (0 when it never ran).
    pub attempts: u32,
    /// Its result.
    pub result: Value,
    /// Its error (`{message, kind, data}`).
    pub error: Option<Value>,
}

/// The execution's clock: the case's `now`, moved on by the paused runtime's time.
struct VirtualClock {
    start: jiff::Timestamp,
    origin: tokio::time::Instant,
}

impl Clock for VirtualClock {
    fn now(&self) -> jiff::Timestamp {
        let passed = tokio::time::Instant::now().saturating_duration_since(self.origin);
        jiff::SignedDuration::try_from(passed)
            .ok()
            .and_then(|d| self.start.checked_add(d).ok())
            .unwrap_or(self.start)
    }
}

/// The directory kinds a case may give its org (`contacts:` …).
const DIRECTORY_KINDS: [&str; 3] = ["contact", "configuration", "location"];

/// `spec`'s directory records for org `org`, as a sync would store them.
fn directory_records(org: &str, spec: &OrgSpec, now: &str) -> Vec<DirectoryRecord> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    spec.directory
        .iter()
        .flat_map(|(kind, records)| records.iter().map(move |r| (kind, r)))
        .map(|(kind, r)| {
            let name = ["name", "firstName"]
                .iter()
                .find_map(|k| r.get(*k).map(text))
                .map(|n| match r.get("lastName") {
                    Some(last) if r.get("name").is_none() => format!("{n} {}", text(last)),
                    _ => n,
                })
                .unwrap_or_else(|| text(&r["id"]));
            DirectoryRecord {
                source: "autotask".into(),
                kind: kind.clone(),
                external_id: text(&r["id"]),
                org_id: Some(org.to_string()),
                name,
                data: r.clone(),
                active: true,
                state: "matched".into(),
                updated_at: now.to_string(),
            }
        })
        .collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The case whose mocks the actions answer from: cases run one after another.
#[derive(Default)]
struct CurrentCase(Mutex<Option<Arc<CaseActions>>>);

/// Runs every file, one after another, on one paused runtime.
pub fn run_files(files: &[PathBuf], opts: &Options) -> Vec<FileOutcome> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return files
                .iter()
                .map(|p| failed_file(p, String::new(), format!("cannot start a runtime: {e}")))
                .collect();
        }
    };
    runtime.block_on(async {
        let mut out = Vec::new();
        for path in files {
            out.push(run_file(path, opts).await);
        }
        out
    })
}

fn failed_file(path: &Path, workflow: String, why: String) -> FileOutcome {
    FileOutcome {
        path: path.to_path_buf(),
        workflow,
        cases: Vec::new(),
        error: Some(FileError::Other(why)),
        workflows: Vec::new(),
    }
}

/// Runs one test file's cases.
pub async fn run_file(path: &Path, opts: &Options) -> FileOutcome {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return failed_file(path, String::new(), format!("cannot read it: {e}")),
    };
    let file = match super::file::parse(path, &source) {
        Ok(f) => f,
        Err(diags) => {
            return FileOutcome {
                path: path.to_path_buf(),
                workflow: String::new(),
                cases: Vec::new(),
                error: Some(FileError::Invalid(diags)),
                workflows: Vec::new(),
            };
        }
    };
    match Bench::open(&file, opts).await {
        Ok(bench) => bench.run(&file, opts).await,
        Err(why) => failed_file(path, file.workflow.clone(), why),
    }
}

/// A scratch store with the folder's workflows deployed, and an engine whose actions answer
/// from the current case.
struct Bench {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    current: Arc<CurrentCase>,
    record: WorkflowRecord,
    workflow: Arc<Workflow>,
    clock: Arc<Mutex<Arc<VirtualClock>>>,
    /// The folder's forms by name: version and form.
    forms: HashMap<String, (i64, Form)>,
    /// Every task name of the folder's workflows, and every action name: what mocks may
    /// stand in for.
    known_tasks: BTreeSet<String>,
}

/// The clock the engine reads: the current case's.
struct CaseClock(Arc<Mutex<Arc<VirtualClock>>>);

impl Clock for CaseClock {
    fn now(&self) -> jiff::Timestamp {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).now()
    }
}

impl Bench {
    async fn open(file: &TestFile, opts: &Options) -> Result<Bench, String> {
        let scratch = holding(weft_engine::store::open("sqlite::memory:"))
            .await
            .map_err(|e| format!("cannot open a scratch store: {e}"))?;
        let store: Arc<dyn Store> = Arc::new(Held::new(scratch));
        let current = Arc::new(CurrentCase::default());
        let registry = mocks::registry(&opts.registry, {
            let current = current.clone();
            move || current.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
        });
        let clock = Arc::new(Mutex::new(Arc::new(VirtualClock {
            start: default_now(),
            origin: tokio::time::Instant::now(),
        })));
        let mut engine = Engine::with_clock(
            store.clone(),
            Arc::new(registry),
            Arc::new(CaseClock(clock.clone())),
        )
        .alone();
        if let Some(i) = &opts.integrations {
            engine = engine.with_integrations(i.clone());
        }
        let here = file
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // `workflow:` names the workflow, or gives its file (`../workflows/triage.yaml`) when
        // the tests live apart from it; its folder is what gets deployed.
        let by_file =
            super::file::is_workflow_path(&file.workflow).then(|| here.join(&file.workflow));
        let dir = match &by_file {
            Some(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            None => here.to_path_buf(),
        };
        if let Some(p) = &by_file
            && !p.is_file()
        {
            return Err(format!("the workflow file {} does not exist", p.display()));
        }
        let mut problems = Vec::new();
        let mut named = None;
        for sibling in super::folder_files(&dir) {
            let Ok(text) = std::fs::read_to_string(&sibling) else {
                continue;
            };
            let label = sibling.display().to_string();
            let deployed = if weft_engine::is_form_source(&text) {
                crate::forms::deploy(store.as_ref(), &text, Some(&label))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                engine
                    .deploy(&text, Some(&label))
                    .await
                    .map(|r| {
                        if by_file.as_ref().is_some_and(|p| same_file(p, &sibling)) {
                            named = Some(r.name);
                        }
                    })
                    .map_err(|e| e.to_string())
            };
            if let Err(e) = deployed {
                problems.push(format!("{label}: {e}"));
            }
        }
        let wanted = named.unwrap_or_else(|| file.workflow.clone());
        let record = store.workflow(&wanted, None).await.map_err(|_| {
            let mut why = match &by_file {
                Some(p) => format!("{} is not a valid workflow", p.display()),
                None => format!(
                    "no valid workflow named `{}` in {}",
                    file.workflow,
                    dir.display()
                ),
            };
            if !problems.is_empty() {
                why.push_str(&format!(" ({})", problems.join("; ")));
            } else if by_file.is_none() {
                why.push_str(
                    ": name it, or give its file, with `workflow:` at the top of the test file",
                );
            }
            why
        })?;
        let workflow = engine.parsed(&record).map_err(|e| e.to_string())?;
        let mut forms = HashMap::new();
        for f in store.list_forms().await.unwrap_or_default() {
            if let Some(form) = weft_engine::load_form(&f.source).form {
                forms.insert(f.name.clone(), (f.version, form));
            }
        }
        let mut known_tasks = BTreeSet::new();
        for r in store.list_workflows().await.unwrap_or_default() {
            if let Ok(wf) = engine.parsed(&r) {
                known_tasks.extend(wf.tasks.keys().cloned());
            }
        }
        Ok(Bench {
            store,
            engine,
            current,
            record,
            workflow,
            clock,
            forms,
            known_tasks,
        })
    }

    async fn run(&self, file: &TestFile, opts: &Options) -> FileOutcome {
        let mut cases = Vec::new();
        let source = |r: &WorkflowRecord| r.path.clone().unwrap_or_else(|| r.name.clone());
        let mut seen_workflows: IndexMap<String, (Arc<Workflow>, String)> = IndexMap::new();
        seen_workflows.insert(
            self.workflow.name.clone(),
            (self.workflow.clone(), source(&self.record)),
        );
        for case in &file.cases {
            if opts
                .filter
                .as_ref()
                .is_some_and(|f| !case.name.contains(f.as_str()))
            {
                continue;
            }
            let started = Instant::now();
            let (failures, observed) = match self.case(case).await {
                Ok(observed) => (
                    masked(case, expect::check(case, &self.workflow, &observed)),
                    Some(observed),
                ),
                Err(why) => (
                    vec![Failure {
                        line: case.span.line,
                        column: case.span.column,
                        what: why,
                        expected: None,
                        got: None,
                    }],
                    None,
                ),
            };
            if let Some(o) = &observed {
                for (wf, _, _) in &o.covered {
                    if !seen_workflows.contains_key(wf)
                        && let Ok(r) = self.store.workflow(wf, None).await
                        && let Ok(parsed) = self.engine.parsed(&r)
                    {
                        seen_workflows.insert(wf.clone(), (parsed, source(&r)));
                    }
                }
            }
            cases.push(CaseOutcome {
                name: case.name.clone(),
                line: case.span.line,
                failures,
                observed,
                elapsed: started.elapsed(),
            });
        }
        FileOutcome {
            path: file.path.clone(),
            workflow: file.workflow.clone(),
            cases,
            error: None,
            workflows: seen_workflows.into_values().collect(),
        }
    }

    /// Runs one case; `Err` when it could not be set up.
    async fn case(&self, case: &Case) -> Result<Observed, String> {
        self.check_mocks(case)?;
        let actions = CaseActions::new(case.mocks.clone(), case.allow.clone(), self.store.clone());
        *self.current.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(actions.clone());
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(VirtualClock {
            start: case.now.unwrap_or_else(default_now),
            origin: tokio::time::Instant::now(),
        });
        let mut orgs = Vec::new();
        let ran = match self.orgs(case, &mut orgs).await {
            Ok(()) => {
                self.start(case, case.org.as_ref().map(|o| o.name.clone()))
                    .await
            }
            Err(e) => Err(e),
        };
        let observed = match ran {
            Ok(Started::Ran(exec)) => self.observe(&exec, &actions).await,
            Ok(Started::Filtered(reason)) => Ok(Observed::unstarted(
                "filtered",
                None,
                Some(reason),
                &actions,
            )),
            Ok(Started::Rejected(why)) => {
                Ok(Observed::unstarted("rejected", Some(why), None, &actions))
            }
            Err(e) => Err(e),
        };
        // The directory keeps records (a sync never deletes them): retire the case's, so a
        // later case's org of the same name starts without them.
        for id in &orgs {
            for kind in DIRECTORY_KINDS {
                let mut records = self
                    .store
                    .directory("autotask", kind, Some(id))
                    .await
                    .unwrap_or_default();
                for r in &mut records {
                    r.active = false;
                }
                if !records.is_empty() {
                    let _ = self.store.save_directory(&records).await;
                }
            }
        }
        // Children first: a parent with children cannot be removed. What a failed set-up
        // made goes too, so the next case starts clean.
        for id in orgs.iter().rev() {
            let _ = self.store.delete_org(id).await;
        }
        observed
    }

    /// A mock for a task no workflow of the folder has, or an action no one registered,
    /// would silently never answer: refuse it, naming the likely one.
    fn check_mocks(&self, case: &Case) -> Result<(), String> {
        for m in &case.mocks {
            let (name, what, known): (&str, &str, Vec<&str>) = match &m.target {
                MockTarget::Task(t) => (
                    t,
                    "task",
                    self.known_tasks.iter().map(String::as_str).collect(),
                ),
                MockTarget::Action(a) => (a, "action", self.engine.registry().names().collect()),
            };
            if !known.contains(&name) {
                let hint = weft_engine::suggest::did_you_mean(name, known.iter().copied())
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                return Err(format!(
                    "line {}: the mock stands in for {what} `{name}`, which no workflow here has{hint}",
                    m.span.line
                ));
            }
        }
        Ok(())
    }

    /// The case's MSP and org, created fresh; each id goes into `made` as soon as it
    /// exists, the MSP first.
    async fn orgs(&self, case: &Case, made: &mut Vec<String>) -> Result<(), String> {
        if case.org.is_none() && case.msp.is_none() {
            return Ok(());
        }
        let mut msp = case.msp.clone().unwrap_or_else(|| OrgSpec {
            name: "MSP".into(),
            ..OrgSpec::default()
        });
        let org = case.org.as_ref();
        // A case that runs for the MSP itself names it twice: one org, both specs.
        let same = org.is_some_and(|o| o.name.to_lowercase() == msp.name.to_lowercase());
        if let (true, Some(o)) = (same, org) {
            msp.tags.extend(o.tags.iter().cloned());
            msp.variables.extend(o.variables.clone());
            msp.secrets.extend(o.secrets.clone());
            msp.mapping.extend(o.mapping.clone());
            msp.directory.extend(o.directory.clone());
        }
        let root = self.org(&msp, None, made).await?;
        if let (false, Some(o)) = (same, org) {
            self.org(o, Some(root), made).await?;
        }
        Ok(())
    }

    async fn org(
        &self,
        spec: &OrgSpec,
        parent: Option<String>,
        made: &mut Vec<String>,
    ) -> Result<String, String> {
        let store = self.store.as_ref();
        let created = orgs::create(
            store,
            NewOrg {
                name: spec.name.clone(),
                id: None,
                parent,
                tags: spec.tags.clone(),
            },
        )
        .await
        .map_err(|e| format!("cannot create the org `{}`: {e}", spec.name))?;
        let id = created.org.id;
        made.push(id.clone());
        let sealer = self.engine.secrets().as_ref();
        for (vars, secret) in [(&spec.variables, false), (&spec.secrets, true)] {
            for (k, v) in vars {
                orgs::set_variable(store, sealer, &id, k, v, secret)
                    .await
                    .map_err(|e| format!("org `{}`: {e}", spec.name))?;
            }
        }
        let records = directory_records(&id, spec, &self.engine.now().to_string());
        if !records.is_empty() {
            store
                .save_directory(&records)
                .await
                .map_err(|e| format!("org `{}`: {e}", spec.name))?;
        }
        for (kind, external) in &spec.mapping {
            let external = match external {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            weft_engine::org::link_external(store, &id, kind, &external, None)
                .await
                .map_err(|e| format!("org `{}`: {e}", spec.name))?;
        }
        Ok(id)
    }

    async fn start(&self, case: &Case, org: Option<String>) -> Result<Started, String> {
        let (input, trigger) = match &case.trigger {
            None => (case.input.clone(), None),
            Some(t) => {
                let now = self.engine.now();
                match event(&self.workflow, t, org.as_deref(), now, &self.forms)? {
                    Fired::Filtered(reason) => return Ok(Started::Filtered(reason)),
                    Fired::Rejected(why) => return Ok(Started::Rejected(why)),
                    Fired::Event { input, event } => {
                        let mut all = case.input.clone();
                        all.extend(input);
                        (all, Some(event))
                    }
                }
            }
        };
        let opts = StartOptions { org, trigger };
        match self.engine.execute(&self.record, input, opts).await {
            Ok(exec) => Ok(Started::Ran(Box::new(exec))),
            // Inputs the workflow refuses are an outcome a case may expect.
            Err(e) if e.kind() == weft_engine::executor::EngineErrorKind::Usage => {
                Ok(Started::Rejected(e.to_string()))
            }
            Err(e) => Err(format!("the execution could not start: {e}")),
        }
    }

    async fn observe(
        &self,
        exec: &ExecutionRecord,
        actions: &CaseActions,
    ) -> Result<Observed, String> {
        let runs = self
            .store
            .task_runs(&exec.id)
            .await
            .map_err(|e| e.to_string())?;
        let mut tasks = IndexMap::new();
        for name in self.workflow.tasks.keys() {
            tasks.insert(name.clone(), seen(name, &runs));
        }
        let routes = runs
            .iter()
            .filter(|r| r.is_outcome())
            .flat_map(|r| {
                r.routes
                    .iter()
                    .flatten()
                    .map(|i| (r.task.clone(), *i))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut covered = Vec::new();
        let mut pending = vec![(exec.workflow_name.clone(), runs)];
        let mut children = vec![exec.id.clone()];
        while let Some(id) = children.pop() {
            for child in self.store.children(&id).await.unwrap_or_default() {
                let runs = self.store.task_runs(&child.id).await.unwrap_or_default();
                pending.push((child.workflow_name.clone(), runs));
                children.push(child.id);
            }
        }
        for (wf, runs) in pending {
            for r in runs.iter().filter(|r| r.is_outcome()) {
                if r.status != TaskStatus::Skipped {
                    covered.push((
                        wf.clone(),
                        r.task.clone(),
                        r.routes.clone().unwrap_or_default(),
                    ));
                }
            }
        }
        Ok(Observed {
            status: exec.status.as_str().to_string(),
            output: exec.output.clone().unwrap_or(Value::Null),
            error: exec.error.clone(),
            filtered: None,
            tasks,
            routes,
            covered,
            calls: actions.calls(),
            problems: actions.problems(),
        })
    }
}

/// `failures` with the case's secret variables masked, in any encoding the engine's own
/// redaction knows: a report may be pasted into a ticket or kept by CI.
fn masked(case: &Case, failures: Vec<Failure>) -> Vec<Failure> {
    let redactor = weft_engine::executor::redact::Redactor::default();
    for spec in [&case.org, &case.msp].into_iter().flatten() {
        for v in spec.secrets.values() {
            redactor.add_value(v);
        }
    }
    failures
        .into_iter()
        .map(|f| Failure {
            what: redactor.redact_str(&f.what),
            expected: f.expected.map(|v| redactor.redact(&v)),
            got: f.got.map(|v| redactor.redact(&v)),
            ..f
        })
        .collect()
}

enum Started {
    Ran(Box<ExecutionRecord>),
    Filtered(String),
    /// The inputs (given, or rendered from the event) do not fit the workflow.
    Rejected(String),
}

/// A task as its rows tell it.
fn seen(name: &str, runs: &[TaskRun]) -> TaskSeen {
    let mine: Vec<&TaskRun> = runs.iter().filter(|r| r.task == name).collect();
    let Some(outcome) = mine.iter().find(|r| r.is_outcome()) else {
        return TaskSeen {
            status: "not run".into(),
            ..TaskSeen::default()
        };
    };
    let attempts = mine
        .iter()
        .filter(|r| r.status != TaskStatus::Skipped)
        .map(|r| r.attempt)
        .max()
        .unwrap_or(0)
        .max(0) as u32;
    TaskSeen {
        status: outcome.status.as_str().to_string(),
        attempts,
        result: outcome.result.clone().unwrap_or(Value::Null),
        error: outcome.error.clone(),
    }
}

enum Fired {
    Filtered(String),
    Rejected(String),
    Event {
        input: Map<String, Value>,
        event: Value,
    },
}

/// The event `spec` describes, as the trigger it names would hand it to the executor: the
/// same `TRIGGER`, criteria and inputs as a real request.
fn event(
    wf: &Workflow,
    spec: &TriggerSpec,
    org: Option<&str>,
    now: jiff::Timestamp,
    forms: &HashMap<String, (i64, Form)>,
) -> Result<Fired, String> {
    let trigger = pick_trigger(wf, spec)?;
    let org_name = org.unwrap_or(weft_triggers::cron::OWNER_ORG);
    let headers = header_map(&spec.headers)?;
    let event = match &trigger.kind {
        TriggerKind::Webhook { .. } | TriggerKind::AlwaysPass => {
            let query = serde_urlencoded_pairs(&spec.params);
            weft_triggers::webhook::event(
                trigger,
                org_name,
                spec.body.clone(),
                &headers,
                Some(&query),
            )
        }
        TriggerKind::Cron { .. } => {
            weft_triggers::cron::event(trigger, spec.slot.unwrap_or(now), now)?
        }
        TriggerKind::Autotask { events, .. } => {
            let action = spec.body["Action"].as_str().map(str::to_ascii_lowercase);
            let kind = match action.as_deref() {
                Some("create") => AutotaskEvent::Create,
                Some("update") => AutotaskEvent::Update,
                Some("delete") => AutotaskEvent::Delete,
                None => *events.first().unwrap_or(&AutotaskEvent::Create),
                Some(other) => {
                    return Err(format!(
                        "the callout's `Action` is `{other}`; Autotask sends Create, Update or Delete"
                    ));
                }
            };
            if !events.contains(&kind) {
                return Ok(Fired::Filtered(format!(
                    "trigger `{}` does not subscribe to {kind:?} events",
                    trigger.name
                )));
            }
            weft_triggers::autotask::event_for(trigger, &spec.body, &headers, kind, org_name)
        }
        TriggerKind::Form { form, .. } => {
            return form_event(wf, trigger, spec, forms.get(form.as_str()), org_name, now);
        }
    };
    match weft_triggers::event::admit(wf, trigger, &event, &now.to_string()) {
        Ok(Admission::Filtered(reason)) => Ok(Fired::Filtered(reason)),
        Ok(Admission::Start(input)) => Ok(Fired::Event {
            input,
            event: weft_triggers::event::with_integration(trigger, &event),
        }),
        Err(e) => Ok(Fired::Rejected(e.to_string())),
    }
}

/// A submission of the trigger's form with the case's `body` as its values: checked as the
/// form page checks it, then the same `TRIGGER`, criteria and inputs as a real submission.
fn form_event(
    wf: &Workflow,
    trigger: &Trigger,
    spec: &TriggerSpec,
    form: Option<&(i64, Form)>,
    org: &str,
    now: jiff::Timestamp,
) -> Result<Fired, String> {
    let Some((version, form)) = form else {
        return Err(format!(
            "trigger `{}` takes a form that is not in this folder: add its form file beside the workflow",
            trigger.name
        ));
    };
    let submitted = match &spec.body {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err("a form trigger's `body` is the form's values, a mapping".into()),
    };
    let values = match form.check(&submitted, &Map::new(), &IndexMap::new()) {
        Ok(v) => v,
        Err(errors) => {
            let why = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(Fired::Rejected(format!(
                "the form refuses the values: {why}"
            )));
        }
    };
    let now = now.to_string();
    let event = crate::forms::submit::form_event(
        form,
        *version,
        &values,
        crate::forms::submit::FormEventFacts {
            prefill: Map::new(),
            now: &now,
            link: "standing",
            org,
        },
    );
    let ctx = context(&[("TRIGGER", to_value(&event))], &now, Extra::default());
    if let Some(reason) = weft_triggers::webhook::unmet_criteria(trigger, &ctx) {
        return Ok(Fired::Filtered(reason));
    }
    match crate::forms::submit::form_inputs(wf, trigger, form, &values, &event, &now) {
        Ok(input) => Ok(Fired::Event {
            input,
            event: weft_triggers::event::with_integration(trigger, &event),
        }),
        Err(e) => Ok(Fired::Rejected(e.to_string())),
    }
}

fn pick_trigger<'w>(wf: &'w Workflow, spec: &TriggerSpec) -> Result<&'w Trigger, String> {
    let names: Vec<&str> = wf.triggers.iter().map(|t| t.name.as_str()).collect();
    match &spec.name {
        Some(name) => wf.triggers.iter().find(|t| t.name == *name).ok_or_else(|| {
            let hint = weft_engine::suggest::did_you_mean(name, names.iter().copied())
                .unwrap_or_else(|| format!("its triggers: {}", names.join(", ")));
            format!("workflow `{}` has no trigger `{name}`; {hint}", wf.name)
        }),
        None => match wf.triggers.as_slice() {
            [only] => Ok(only),
            [] => Err(format!(
                "workflow `{}` has no triggers; test it with `input:` instead",
                wf.name
            )),
            _ => Err(format!(
                "workflow `{}` has several triggers; say which with `trigger: {{name: …}}` ({})",
                wf.name,
                names.join(", ")
            )),
        },
    }
}

fn header_map(headers: &Map<String, Value>) -> Result<http::HeaderMap, String> {
    let mut out = http::HeaderMap::new();
    for (k, v) in headers {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("`{k}` is not a header name"))?;
        let value = http::HeaderValue::from_str(&text)
            .map_err(|_| format!("header `{k}`: the value is not valid in a header"))?;
        out.insert(name, value);
    }
    Ok(out)
}

/// `params` as a query string (`TRIGGER.params` reads it back).
fn serde_urlencoded_pairs(params: &Map<String, Value>) -> String {
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}
