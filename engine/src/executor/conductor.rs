//! One execution's state machine (Orquesta's semantics as DESIGN.md states them).
//!
//! State is rebuilt from the store's task outcomes, in commit order, whenever an execution is
//! driven — on first run the list is empty, on resume it is what survived the crash — so one
//! code path serves both.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::redact::Redactor;
use super::scope::{self, Extra, Names, to_value};
use super::task::{Finished, ItemOutcome, Job, human};
use super::{Engine, EngineError, RerunOptions, StartOptions, now_ms};
use crate::action::{ActionContext, ActionError};
use crate::integration::Integrations;
use crate::model::{Join, On, TransitionMode, Workflow};
use crate::org::OrgContext;
use crate::store::{
    ExecStatus, ExecutionRecord, NewExecution, StoreError, TaskRun, TaskStatus, WorkflowRecord,
};

/// Where a task is in this execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotStarted,
    Running,
    Done(TaskStatus),
}

/// What a task should do now, given its inbound routes.
enum Readiness {
    Start,
    Skip,
    Wait,
    /// `join` can no longer be satisfied although some routes fired.
    Unreachable(String),
}

/// What `create` hands to `drive` when this process runs an execution it created: the org
/// as loaded then, the redactor, and the parts of the inputs and vars that the store only has
/// redacted (in `drive`, the whole inputs and vars). A cache: without it `drive` rebuilds the
/// same from the store and the sealed copy, as a process that did not create the execution
/// does — so a hand-off may be dropped at any time.
#[derive(Default)]
pub(crate) struct Handoff {
    pub input: Map<String, Value>,
    pub vars: Map<String, Value>,
    pub redactor: Redactor,
    /// The org as loaded when the execution was created (its secrets are in `redactor`).
    pub org: Option<Arc<OrgContext>>,
}

/// What the routes out of a finished task decided: the tasks they start and what they
/// publish (name, value), in route order.
type Fired = (Vec<usize>, Vec<(String, Value)>);

/// How long a hand-off waits for a worker of this process. Executions run by another process
/// (or cancelled, or purged, before this one ran them) never take theirs: it expires.
const HANDOFF_TTL: Duration = Duration::from_secs(120);
/// At most this many hand-offs are kept; beyond, the oldest are dropped.
const MAX_HANDOFFS: usize = 1024;
/// At most about this many bytes of input and var values are kept in hand-offs.
const MAX_HANDOFF_BYTES: usize = 16 << 20;

struct Kept {
    at: Instant,
    bytes: usize,
    handoff: Handoff,
}

/// The hand-offs of this process, oldest first, bounded by [`HANDOFF_TTL`], [`MAX_HANDOFFS`]
/// and [`MAX_HANDOFF_BYTES`] (swept on insert).
#[derive(Default)]
struct Handoffs {
    kept: indexmap::IndexMap<String, Kept>,
    bytes: usize,
}

impl Handoffs {
    fn insert(&mut self, id: String, handoff: Handoff, now: Instant) {
        let bytes = values_size(&handoff.input) + values_size(&handoff.vars);
        if bytes > MAX_HANDOFF_BYTES {
            return;
        }
        while let Some((_, oldest)) = self.kept.first() {
            let full = self.kept.len() >= MAX_HANDOFFS || self.bytes + bytes > MAX_HANDOFF_BYTES;
            if !full && now.saturating_duration_since(oldest.at) < HANDOFF_TTL {
                break;
            }
            if let Some((_, gone)) = self.kept.shift_remove_index(0) {
                self.bytes -= gone.bytes;
            }
        }
        let kept = Kept {
            at: now,
            bytes,
            handoff,
        };
        if let Some(old) = self.kept.insert(id, kept) {
            self.bytes -= old.bytes;
        }
        self.bytes += bytes;
    }

    fn take(&mut self, id: &str) -> Option<Handoff> {
        let kept = self.kept.shift_remove(id)?;
        self.bytes -= kept.bytes;
        Some(kept.handoff)
    }
}

fn handoffs() -> &'static std::sync::Mutex<Handoffs> {
    static H: std::sync::OnceLock<std::sync::Mutex<Handoffs>> = std::sync::OnceLock::new();
    H.get_or_init(Default::default)
}

/// About how many bytes the values of `m` take.
fn values_size(m: &Map<String, Value>) -> usize {
    fn size(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len() + 24,
            Value::Array(items) => items.iter().map(size).sum::<usize>() + 24,
            Value::Object(m) => values_size(m) + 32,
            _ => 16,
        }
    }
    m.iter().map(|(k, v)| k.len() + size(v)).sum()
}

/// The entries of `real` that the store has differently (redacted).
fn unredacted(real: &Map<String, Value>, stored: &Value) -> Map<String, Value> {
    real.iter()
        .filter(|(k, v)| stored.get(k.as_str()) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The stored inputs or vars with the parts kept in memory put back.
fn with_unredacted(stored: Option<&Value>, kept: Map<String, Value>) -> Map<String, Value> {
    let mut all = stored
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    all.extend(kept);
    all
}

/// How many hand-offs this process holds.
#[doc(hidden)]
pub fn pending_handoffs() -> usize {
    handoffs().lock().expect("not poisoned").kept.len()
}

/// Whether this process holds the hand-off of execution `id`.
#[cfg(test)]
pub(crate) fn has_handoff(id: &str) -> bool {
    handoffs()
        .lock()
        .expect("not poisoned")
        .kept
        .contains_key(id)
}

/// A redactor that already knows every integration secret.
fn execution_redactor(engine: &Engine) -> Redactor {
    let redactor = Redactor::default();
    for secret in engine.integrations.secret_values() {
        redactor.add(&secret);
    }
    redactor
}

/// Creates an execution row (and, for a rerun, the reused task outcomes).
pub(crate) async fn create(
    engine: &Engine,
    record: &WorkflowRecord,
    wf: &Workflow,
    input: Map<String, Value>,
    opts: StartOptions,
    rerun: Option<(String, Vec<TaskRun>)>,
) -> Result<String, EngineError> {
    create_inner(engine, record, wf, input, opts, rerun, None).await
}

/// Creates a sub-workflow execution under `parent`'s task.
pub(crate) async fn create_child(
    engine: &Engine,
    record: &WorkflowRecord,
    wf: &Workflow,
    input: Map<String, Value>,
    opts: StartOptions,
    parent: &ActionContext,
) -> Result<String, EngineError> {
    create_inner(engine, record, wf, input, opts, None, Some(parent)).await
}

async fn create_inner(
    engine: &Engine,
    record: &WorkflowRecord,
    wf: &Workflow,
    input: Map<String, Value>,
    opts: StartOptions,
    rerun: Option<(String, Vec<TaskRun>)>,
    parent: Option<&ActionContext>,
) -> Result<String, EngineError> {
    let (rerun_of, reused) = match rerun {
        Some((old, rows)) => (Some(old), rows),
        None => (None, Vec::new()),
    };
    let org = engine.org_context(opts.org.as_deref()).await?;
    let new = build(
        engine,
        Launch {
            record,
            wf,
            input,
            opts,
            org_ctx: org,
            rerun_of,
            parent,
            owned: true,
        },
    );
    let rows: Vec<TaskRun> = reused
        .into_iter()
        .map(|r| TaskRun {
            execution_id: new.id.clone(),
            reused: true,
            ..r
        })
        .collect();
    if let Err(e) = engine.store.create_execution(&new, &rows).await {
        forget_handoff(&new.id);
        return Err(e.into());
    }
    Ok(new.id)
}

/// What [`build`] makes a new execution from.
pub(crate) struct Launch<'a> {
    /// The stored workflow version being run.
    pub record: &'a WorkflowRecord,
    /// Its parsed form.
    pub wf: &'a Workflow,
    /// The prepared input (defaults applied, types checked).
    pub input: Map<String, Value>,
    /// Trigger, org and other start options.
    pub opts: StartOptions,
    /// The organization the execution runs for.
    pub org_ctx: Arc<OrgContext>,
    /// The execution this one reruns, if any.
    pub rerun_of: Option<String>,
    /// The calling task, when this is a sub-workflow.
    pub parent: Option<&'a ActionContext>,
    /// Driven by this engine (true) or queued for any worker (false).
    pub owned: bool,
}

/// Builds a new execution of `record` (computing its `vars` and concurrency key) and keeps its
/// in-memory inputs for the worker that will drive it: owned by this engine when `owned`, else
/// queued. An owned execution under a concurrency limit is held pending until its group has
/// room (see [`Engine::run`]). A `vars` or key that cannot be computed makes the execution
/// failed from the start.
pub(crate) fn build(engine: &Engine, launch: Launch<'_>) -> NewExecution {
    let Launch {
        record,
        wf,
        input,
        opts,
        org_ctx,
        rerun_of,
        parent,
        owned,
    } = launch;
    let id = uuid::Uuid::new_v4().to_string();
    let now = engine.clock.now().to_string();
    // A registered org is stored by its id, whether it was named by id or name.
    let org = org_ctx.org.id.clone();
    let org_template = org_ctx.template_value();
    let trigger = opts.trigger.unwrap_or_else(|| json!({"type": "manual"}));
    let redactor = execution_redactor(engine);
    redactor.add_org(&org_ctx);
    if let Some(p) = parent {
        // A parent's secrets may reach a sub-workflow as ordinary inputs.
        redactor.inherit(&p.execution_id);
    }
    for (name, param) in &wf.input {
        if param.secret
            && let Some(v) = input.get(name)
        {
            redactor.add_value(v);
        }
    }
    // vars: computed once, in order, each seeing the inputs and the vars before it.
    let mut ctx = input.clone();
    let mut vars = Map::new();
    let mut vars_error = None;
    let base_names = |ctx: &Map<String, Value>| -> Vec<(&'static str, minijinja::Value)> {
        vec![
            ("CTX", to_value(&Value::Object(ctx.clone()))),
            ("ORG", org_template.clone()),
            (
                "TASKS",
                minijinja::Value::from(BTreeMap::<String, minijinja::Value>::new()),
            ),
            (
                "WORKFLOW",
                to_value(&json!({"id": record.id, "name": record.name, "version": record.version})),
            ),
            ("EXECUTION", to_value(&json!({"id": id, "started_at": now}))),
            ("TRIGGER", to_value(&trigger)),
        ]
    };
    for (name, template) in &wf.vars {
        let scope_ctx = scope::context(&base_names(&ctx), &now, Extra::default());
        match template.render(&scope_ctx) {
            Ok(v) => {
                ctx.insert(name.clone(), v.clone());
                vars.insert(name.clone(), v);
            }
            Err(e) => {
                let field = if e.path.is_empty() {
                    format!("vars.{name}")
                } else {
                    format!("vars.{name}.{}", e.path)
                };
                vars_error = Some(format!("{field}: {}", e.error));
                break;
            }
        }
    }
    // The concurrency group: rendered once, with what the vars saw (and the vars).
    let mut concurrency = None;
    if let Some(c) = &wf.concurrency
        && vars_error.is_none()
    {
        let key = match &c.key {
            None => Ok(String::new()),
            Some(template) => {
                let scope_ctx = scope::context(&base_names(&ctx), &now, Extra::default());
                template.render(&scope_ctx).map(|v| match v {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
            }
        };
        match key {
            // A key made of a secret groups by the redacted text rather than storing it.
            Ok(key) => concurrency = Some((redactor.redact_str(&key), i64::from(c.limit))),
            Err(e) => vars_error = Some(format!("concurrency.key: {}", e.error)),
        }
    }
    let is_secret = |k: &str| wf.input.get(k).is_some_and(|p| p.secret);
    let stored_input = redactor.inputs(&input, is_secret);
    // Stored so that a resume sees the values the execution started with.
    let stored_vars = redactor.redact(&Value::Object(vars.clone()));
    // The event as stored: no secret of this execution, no credential header.
    let stored_trigger = redactor.trigger(&trigger, is_secret);
    let sealed = seal_secrets(
        engine,
        &input,
        &vars,
        &stored_input,
        &stored_vars,
        (&trigger, &stored_trigger),
    );
    let error = vars_error.map(|e| redactor.redact_str(&e));
    let new = NewExecution {
        id: id.clone(),
        workflow: record.clone(),
        org,
        input: stored_input,
        vars: stored_vars,
        trigger: stored_trigger,
        parent_id: parent.map(|p| p.execution_id.clone()),
        parent_task: parent.map(|p| p.task.clone()),
        rerun_of,
        owner: owned.then(|| engine.owner.clone()),
        lease_until_ms: owned.then(|| now_ms(&*engine.clock) + engine.lease.as_millis() as i64),
        error,
        concurrency_key: concurrency.as_ref().map(|(k, _)| k.clone()),
        concurrency_limit: concurrency.map(|(_, l)| l),
        sealed,
        created_at: now,
    };
    // Before the commit: a worker may pick a queued execution up the moment it is stored.
    // What the store has in the clear is not kept twice; one failed from the start never runs.
    if new.error.is_none() {
        let handoff = Handoff {
            input: unredacted(&input, &new.input),
            vars: unredacted(&vars, &new.vars),
            redactor,
            org: Some(org_ctx),
        };
        handoffs()
            .lock()
            .expect("not poisoned")
            .insert(id, handoff, Instant::now());
    }
    new
}

/// The inputs and vars that redaction changed (secret inputs, values made of secrets), and the
/// trigger event when redaction changed it (`(real, stored)`), sealed with the engine's key;
/// `None` when nothing was redacted.
fn seal_secrets(
    engine: &Engine,
    input: &Map<String, Value>,
    vars: &Map<String, Value>,
    stored_input: &Value,
    stored_vars: &Value,
    (trigger, stored_trigger): (&Value, &Value),
) -> Option<String> {
    let changed = |real: &Map<String, Value>, stored: &Value| -> Map<String, Value> {
        real.iter()
            .filter(|(k, v)| stored.get(k.as_str()) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let (input, vars) = (changed(input, stored_input), changed(vars, stored_vars));
    let trigger_changed = trigger != stored_trigger;
    if input.is_empty() && vars.is_empty() && !trigger_changed {
        return None;
    }
    let mut sealed = json!({"input": input, "vars": vars});
    if trigger_changed {
        sealed["trigger"] = trigger.clone();
    }
    Some(engine.secrets.seal(&sealed.to_string()))
}

/// The real trigger event [`seal_secrets`] kept when the stored one was redacted: running
/// and resumed executions see TRIGGER as it arrived.
fn sealed_trigger(engine: &Engine, sealed: &str) -> Option<Value> {
    let text = engine.secrets.open(sealed).ok()?;
    let mut v: Value = serde_json::from_str(&text).ok()?;
    v.get_mut("trigger").map(Value::take)
}

/// What [`seal_secrets`] sealed, opened: (inputs, vars). `None` when it cannot be opened
/// (another key).
fn open_secrets(engine: &Engine, sealed: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let text = engine.secrets.open(sealed).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let part = |k: &str| {
        v.get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    Some((part("input"), part("vars")))
}

/// Drops the hand-off of an execution this process will not run (never stored, ended,
/// cancelled, run elsewhere).
pub(crate) fn forget_handoff(id: &str) {
    handoffs().lock().expect("not poisoned").take(id);
}

/// The outcome rows (and successful items) a rerun copies from an earlier execution.
pub(crate) fn reusable(wf: &Workflow, runs: &[TaskRun], opts: &RerunOptions) -> Vec<TaskRun> {
    let from = match (&opts.from, opts.failed_items) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => runs
            .iter()
            .filter(|r| r.is_outcome() && r.status == TaskStatus::Failed)
            .filter(|r| wf.tasks.get(&r.task).is_some_and(|t| t.with.is_some()))
            .min_by_key(|r| r.seq)
            .map(|r| r.task.clone()),
        (None, false) => return Vec::new(),
    };
    let Some(from) = from else { return Vec::new() };
    // The task and everything reachable from it run again.
    let mut again = vec![from.clone()];
    let mut i = 0;
    while i < again.len() {
        if let Some(t) = wf.tasks.get(&again[i]) {
            for target in t.next.iter().flat_map(|r| &r.targets) {
                if !again.contains(&target.value) {
                    again.push(target.value.clone());
                }
            }
        }
        i += 1;
    }
    let mut out: Vec<TaskRun> = runs
        .iter()
        .filter(|r| r.is_outcome() && !again.contains(&r.task))
        .cloned()
        .collect();
    if opts.failed_items {
        out.extend(
            runs.iter()
                .filter(|r| r.task == from && r.item >= 0 && r.status == TaskStatus::Succeeded)
                .cloned(),
        );
    }
    out
}

struct Conductor {
    engine: Arc<Engine>,
    wf: Arc<Workflow>,
    exec: ExecutionRecord,
    org: crate::action::OrgRef,
    /// `ORG` in templates.
    org_template: minijinja::Value,
    /// The org's integration instances (its own, its parents', then the configured ones).
    integrations: Arc<dyn Integrations>,
    redactor: Redactor,
    /// Inbound routes per task: (source task, route index).
    inbound: Vec<Vec<(usize, usize)>>,
    /// Route decisions: (source, route) → fired.
    decided: HashMap<(usize, usize), bool>,
    state: Vec<State>,
    /// CTX, each value converted for templates once, when it is set.
    ctx: Arc<Names<indexmap::IndexMap<String, minijinja::Value>>>,
    /// TASKS, likewise.
    tasks_view: Arc<Names<BTreeMap<String, minijinja::Value>>>,
    base: Vec<(&'static str, minijinja::Value)>,
    base_dirty: bool,
    seq: i64,
    failure: Option<String>,
    cancel: CancellationToken,
    inflight: JoinSet<Finished>,
    inflight_ids: HashMap<tokio::task::Id, usize>,
    /// A task run on the conductor itself instead of a spawned one: when it is the only one
    /// running (a chain's next step), handing it to another worker and back would cost two
    /// thread wake-ups per step.
    inline: Option<(usize, Inline)>,
    first_attempt: HashMap<usize, u32>,
    done_items: HashMap<usize, BTreeMap<usize, ItemOutcome>>,
}

/// A task run on the conductor: its future, with a panic in it caught as a spawned task's
/// would be.
struct Inline(std::pin::Pin<Box<dyn std::future::Future<Output = Finished> + Send>>);

impl Inline {
    /// Polls the task to its end; a panic becomes its message.
    fn catch(&mut self) -> impl std::future::Future<Output = Result<Finished, String>> + '_ {
        std::future::poll_fn(move |cx| {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.0.as_mut().poll(cx)
            })) {
                Ok(std::task::Poll::Ready(f)) => std::task::Poll::Ready(Ok(f)),
                Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
                Err(p) => std::task::Poll::Ready(Err(p
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into()))),
            }
        })
    }
}

/// Runs an execution until it ends.
pub(crate) async fn drive(
    engine: Arc<Engine>,
    exec: ExecutionRecord,
    cancel: CancellationToken,
) -> Result<ExecutionRecord, EngineError> {
    // Taken at once: should this fail, a later attempt rebuilds it from the store.
    let handoff = handoffs().lock().expect("not poisoned").take(&exec.id);
    // `Engine::run` handed over an unfinished execution (it answers finished ones itself).
    if exec.owner.as_deref() != Some(engine.owner.as_str()) && !engine.claim(&exec).await? {
        return Err(EngineError::Conflict(format!(
            "execution {} is being run by {}",
            exec.id,
            exec.owner.unwrap_or_default()
        )));
    }
    let (_, wf) = engine.workflow(exec.workflow_id).await?;
    let span =
        tracing::info_span!("execution", execution_id = %exec.id, workflow = %exec.workflow_name);
    engine.observer.execution_started(&exec.workflow_name);
    let (mut unsealed, mut sealed_unreadable, mut secret_lost) = (false, false, false);
    let handoff = match handoff {
        // Created here: the stored inputs and vars, and what the store has redacted.
        Some(h) => Handoff {
            input: with_unredacted(Some(&exec.input), h.input),
            vars: with_unredacted(exec.vars.as_ref(), h.vars),
            ..h
        },
        None => {
            // Resuming in a new process: inputs and vars come back from the store, their
            // secret parts from the sealed copy.
            let mut input = exec.input.as_object().cloned().unwrap_or_default();
            let mut vars = exec
                .vars
                .as_ref()
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let redactor = execution_redactor(&engine);
            let org = engine.org_context(Some(&exec.org)).await?;
            redactor.add_org(&org);
            match exec.sealed.as_deref().map(|s| open_secrets(&engine, s)) {
                Some(Some((secret_input, secret_vars))) => {
                    for (k, v) in secret_input {
                        if wf.input.get(&k).is_some_and(|p| p.secret) {
                            redactor.add_value(&v);
                        }
                        input.insert(k, v);
                    }
                    vars.extend(secret_vars);
                    unsealed = true;
                }
                Some(None) => sealed_unreadable = true,
                None => {}
            }
            // A secret input that was given (stored redacted) but whose value was not kept.
            secret_lost = !unsealed
                && wf
                    .input
                    .iter()
                    .any(|(k, p)| p.secret && input.get(k).is_some_and(|v| !v.is_null()));
            Handoff {
                input,
                vars,
                redactor,
                org: Some(org),
            }
        }
    };
    // Created in this process: the org loaded then is reused rather than read again.
    let org = match &handoff.org {
        Some(o) => o.clone(),
        None => engine.org_context(Some(&exec.org)).await?,
    };
    let runs = engine.store.task_runs(&exec.id).await?;
    let real_trigger = exec
        .sealed
        .as_deref()
        .and_then(|s| sealed_trigger(&engine, s));
    handoff.redactor.track(&exec.id);
    let mut c = Conductor::new(engine.clone(), wf.clone(), exec, handoff, &org, cancel);
    if let Some(t) = real_trigger {
        c.exec.trigger = t;
    }
    if sealed_unreadable {
        c.failure = Some("cannot resume: its secret inputs were sealed with another key (give every process the same WEFT_SECRET_KEY)".into());
    } else if secret_lost {
        c.failure = Some("cannot resume: the workflow has secret inputs and none were kept for it; rerun it with its inputs".into());
    }
    c.replay(&runs);
    c.run().instrument(span).await
}

impl Conductor {
    fn new(
        engine: Arc<Engine>,
        wf: Arc<Workflow>,
        exec: ExecutionRecord,
        handoff: Handoff,
        org_ctx: &OrgContext,
        cancel: CancellationToken,
    ) -> Self {
        let n = wf.tasks.len();
        let mut inbound = vec![Vec::new(); n];
        for (src, task) in wf.tasks.values().enumerate() {
            for (ri, route) in task.next.iter().enumerate() {
                for target in &route.targets {
                    if let Some(t) = wf.tasks.get_index_of(&target.value)
                        && !inbound[t].contains(&(src, ri))
                    {
                        inbound[t].push((src, ri));
                    }
                }
            }
        }
        let ctx = Arc::new(Names(
            handoff
                .input
                .iter()
                .chain(handoff.vars.iter())
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect(),
        ));
        let integrations: Arc<dyn Integrations> = Arc::new(engine.org_integrations(org_ctx));
        Conductor {
            engine,
            wf,
            org: org_ctx.org_ref(),
            org_template: org_ctx.template_value(),
            integrations,
            redactor: handoff.redactor,
            inbound,
            decided: HashMap::new(),
            state: vec![State::NotStarted; n],
            ctx,
            tasks_view: Arc::default(),
            base: Vec::new(),
            base_dirty: true,
            seq: 0,
            failure: None,
            cancel,
            inflight: JoinSet::new(),
            inflight_ids: HashMap::new(),
            inline: None,
            first_attempt: HashMap::new(),
            done_items: HashMap::new(),
            exec,
        }
    }

    fn now(&self) -> String {
        self.engine.clock.now().to_string()
    }

    /// The names templates see. ORG, WORKFLOW, EXECUTION and TRIGGER never change during an
    /// execution and are built once; CTX and TASKS are rebuilt (from already-converted values)
    /// after a step changes them.
    fn base(&mut self) -> &[(&'static str, minijinja::Value)] {
        if self.base.is_empty() {
            self.base = vec![
                ("CTX", minijinja::Value::UNDEFINED),
                ("TASKS", minijinja::Value::UNDEFINED),
                ("ORG", self.org_template.clone()),
                (
                    "WORKFLOW",
                    to_value(
                        &json!({"id": self.exec.workflow_id, "name": self.exec.workflow_name, "version": self.exec.workflow_version}),
                    ),
                ),
                (
                    "EXECUTION",
                    to_value(
                        &json!({"id": self.exec.id, "started_at": self.exec.started_at, "parent_id": self.exec.parent_id}),
                    ),
                ),
                ("TRIGGER", to_value(&self.exec.trigger)),
            ];
        }
        if self.base_dirty {
            self.base[0].1 = self.ctx.value();
            self.base[1].1 = self.tasks_view.value();
            self.base_dirty = false;
        }
        &self.base
    }

    /// Applies committed outcomes in commit order.
    fn replay(&mut self, runs: &[TaskRun]) {
        let mut outcomes: Vec<&TaskRun> = runs.iter().filter(|r| r.is_outcome()).collect();
        outcomes.sort_by_key(|r| r.seq);
        for r in outcomes {
            let Some(idx) = self.wf.tasks.get_index_of(&r.task) else {
                continue;
            };
            self.seq = self.seq.max(r.seq.unwrap_or(0));
            let fired = r.routes.clone().unwrap_or_default();
            let publish = r.publish.clone().unwrap_or_default();
            let result = r.result.clone().unwrap_or(Value::Null);
            self.apply(idx, r.status, &result, r.error.as_ref(), &fired, publish);
        }
        for r in runs.iter().filter(|r| !r.is_outcome()) {
            let Some(idx) = self.wf.tasks.get_index_of(&r.task) else {
                continue;
            };
            if matches!(self.state[idx], State::Done(_)) {
                continue;
            }
            if r.item >= 0 {
                if matches!(r.status, TaskStatus::Succeeded | TaskStatus::Failed) {
                    self.done_items.entry(idx).or_default().insert(
                        r.item as usize,
                        ItemOutcome {
                            status: r.status,
                            result: r.result.clone().unwrap_or(Value::Null),
                            error: r.error.clone(),
                        },
                    );
                }
            } else {
                let a = self.first_attempt.entry(idx).or_insert(1);
                *a = (*a).max(r.attempt as u32);
            }
        }
    }

    /// Records a task's outcome in memory: TASKS, CTX, route decisions, fail-fast.
    fn apply(
        &mut self,
        idx: usize,
        status: TaskStatus,
        result: &Value,
        error: Option<&Value>,
        fired: &[usize],
        publish: Vec<(String, Value)>,
    ) {
        self.state[idx] = State::Done(status);
        let task = &self.wf.tasks[idx];
        // The base's references go first, so that only a running task's can make a copy.
        if let Some(names) = self.base.get_mut(..2) {
            names[0].1 = minijinja::Value::UNDEFINED;
            names[1].1 = minijinja::Value::UNDEFINED;
        }
        Arc::make_mut(&mut self.tasks_view).0.insert(
            task.name.clone(),
            to_value(&json!({"status": status.as_str(), "result": result, "error": error})),
        );
        if !publish.is_empty() {
            let ctx = &mut Arc::make_mut(&mut self.ctx).0;
            for (k, v) in publish {
                ctx.insert(k, to_value(&v));
            }
        }
        self.base_dirty = true;
        for ri in 0..task.next.len() {
            self.decided.insert((idx, ri), fired.contains(&ri));
        }
        if status == TaskStatus::Failed {
            let handled = fired
                .iter()
                .any(|ri| matches!(task.next[*ri].on, On::Failure | On::Always));
            if !handled && self.failure.is_none() {
                let msg = error
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("failed");
                self.failure = Some(format!("task `{}` failed: {msg}", task.name));
            }
        }
    }

    fn readiness(&self, t: usize) -> Readiness {
        let inbound = &self.inbound[t];
        if inbound.is_empty() {
            return Readiness::Start;
        }
        let mut fired = 0;
        let mut undecided = 0;
        let mut missing = Vec::new();
        for (src, ri) in inbound {
            match self.decided.get(&(*src, *ri)) {
                Some(true) => fired += 1,
                Some(false) => missing.push(self.wf.tasks[*src].name.clone()),
                None => undecided += 1,
            }
        }
        let total = inbound.len();
        let unreachable = |missing: &[String]| {
            Readiness::Unreachable(format!(
                "join task `{}` is partially satisfied but unreachable: the route from {} did not fire",
                self.wf.tasks[t].name,
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        match self.wf.tasks[t].join.as_ref().map(|j| j.value) {
            None if fired >= 1 => Readiness::Start,
            None if undecided == 0 => Readiness::Skip,
            None => Readiness::Wait,
            Some(Join::All) if undecided > 0 => Readiness::Wait,
            Some(Join::All) if fired == total => Readiness::Start,
            Some(Join::All) if fired == 0 => Readiness::Skip,
            Some(Join::All) => unreachable(&missing),
            Some(Join::Count(n)) if fired >= n as usize => Readiness::Start,
            // Out of reach: whether it is skipped or an error depends on whether any route
            // fires, so wait until every route is decided — the outcome must not depend on
            // the order the branches finish in.
            Some(Join::Count(_)) if undecided > 0 => Readiness::Wait,
            Some(Join::Count(_)) if fired == 0 => Readiness::Skip,
            Some(Join::Count(_)) => unreachable(&missing),
        }
    }

    /// Decides what `candidates` do now: tasks to start, outcome rows for skips.
    fn advance(&mut self, candidates: Vec<usize>, rows: &mut Vec<TaskRun>) -> Vec<usize> {
        let mut to_start = Vec::new();
        let mut work = candidates;
        while let Some(t) = work.pop() {
            if self.state[t] != State::NotStarted || self.failure.is_some() {
                continue;
            }
            match self.readiness(t) {
                Readiness::Wait => {}
                Readiness::Start => {
                    self.state[t] = State::Running;
                    to_start.push(t);
                }
                Readiness::Skip => {
                    self.seq += 1;
                    self.apply(t, TaskStatus::Skipped, &Value::Null, None, &[], Vec::new());
                    let now = self.now();
                    rows.push(TaskRun {
                        seq: Some(self.seq),
                        routes: Some(vec![]),
                        publish: Some(vec![]),
                        finished_at: Some(now),
                        ..self.row(t, -1, 0, TaskStatus::Skipped)
                    });
                    work.extend(self.targets(t));
                }
                Readiness::Unreachable(msg) => self.failure = Some(msg),
            }
        }
        to_start.sort_unstable();
        for &t in &to_start {
            let attempt = i64::from(*self.first_attempt.get(&t).unwrap_or(&1));
            let is_items = self.wf.tasks[t].with.is_some();
            let now = self.now();
            rows.push(TaskRun {
                started_at: Some(now),
                ..self.row(
                    t,
                    -1,
                    if is_items { 0 } else { attempt },
                    TaskStatus::Running,
                )
            });
        }
        to_start
    }

    fn targets(&self, t: usize) -> Vec<usize> {
        self.wf.tasks[t]
            .next
            .iter()
            .flat_map(|r| &r.targets)
            .filter_map(|x| self.wf.tasks.get_index_of(&x.value))
            .collect()
    }

    /// A row for task `t` with only its identity and status set; callers fill in the rest
    /// with struct update syntax.
    fn row(&self, t: usize, item: i64, attempt: i64, status: TaskStatus) -> TaskRun {
        TaskRun {
            execution_id: self.exec.id.clone(),
            task: self.wf.tasks[t].name.clone(),
            item,
            attempt,
            status,
            seq: None,
            input: None,
            result: None,
            error: None,
            routes: None,
            publish: None,
            reused: false,
            started_at: None,
            finished_at: None,
            duration_ms: None,
        }
    }

    fn spawn(&mut self, t: usize) {
        let base = self.base().to_vec();
        let job = Job {
            engine: self.engine.clone(),
            wf: self.wf.clone(),
            index: t,
            exec_id: self.exec.id.clone(),
            org: self.org.clone(),
            integrations: self.integrations.clone(),
            trigger_integration: self
                .exec
                .trigger
                .get("integration")
                .and_then(crate::model::IntegrationOverride::from_json),
            base,
            redactor: self.redactor.clone(),
            cancel: self.cancel.clone(),
            first_attempt: *self.first_attempt.get(&t).unwrap_or(&1),
            done_items: self.done_items.remove(&t).unwrap_or_default(),
        };
        let task = &self.wf.tasks[t];
        self.engine
            .observer
            .task_started(&self.exec.workflow_name, &task.name);
        let span = tracing::info_span!("task", execution_id = %self.exec.id, task = %task.name, action = %task.action.value);
        if self.inflight.is_empty() && self.inline.is_none() {
            self.inline = Some((t, Inline(Box::pin(job.run().instrument(span)))));
            return;
        }
        let handle = self.inflight.spawn(job.run().instrument(span));
        self.inflight_ids.insert(handle.id(), t);
    }

    /// The outcome of a task whose action panicked.
    fn panicked(&self, t: usize, why: &str) -> Finished {
        let now = self.now();
        Finished {
            index: t,
            status: TaskStatus::Failed,
            result: Value::Null,
            error: Some(ActionError::failed(format!("the action panicked: {why}"))),
            input: None,
            attempt: 1,
            started_at: now.clone(),
            finished_at: now,
            duration_ms: 0,
        }
    }

    /// Evaluates the routes of a finished task: which fire, and what they publish.
    fn routes(&mut self, t: usize, status: TaskStatus, result: &Value) -> Result<Fired, String> {
        let status_name = match status {
            TaskStatus::Succeeded => "succeeded",
            _ => "failed",
        };
        let now = self.now();
        let ctx = scope::context(
            self.base(),
            &now,
            Extra {
                result: Some(result),
                status: Some(status_name),
                item: None,
            },
        );
        let task = &self.wf.tasks[t];
        let mut fired = Vec::new();
        let mut publish = Vec::new();
        for (ri, route) in task.next.iter().enumerate() {
            let on = match route.on {
                On::Success => status == TaskStatus::Succeeded,
                On::Failure => status == TaskStatus::Failed,
                On::Always => true,
            };
            if !on {
                continue;
            }
            if let Some(when) = &route.when {
                let holds = when
                    .render_value(&ctx)
                    .map_err(|e| format!("next[{ri}].when: {e}"))?;
                if !holds.is_true() {
                    continue;
                }
            }
            for (k, v) in &route.publish {
                let value = v.render(&ctx).map_err(|e| {
                    let path = if e.path.is_empty() {
                        String::new()
                    } else {
                        format!(".{}", e.path)
                    };
                    format!("next[{ri}].publish.{k}{path}: {}", e.error)
                })?;
                publish.push((k.clone(), value));
            }
            fired.push(ri);
            if task.transition_mode == TransitionMode::First {
                break;
            }
        }
        Ok((fired, publish))
    }

    /// Commits a finished task's outcome with everything it decides, then follows it.
    async fn on_finished(&mut self, f: Finished) -> Result<(), EngineError> {
        let t = f.index;
        let duration_ms = f.duration_ms;
        let mut status = f.status;
        let mut error = f.error.map(|e| e.to_json());
        let result = f.result;
        let (fired, publish) = if status == TaskStatus::Cancelled {
            (Vec::new(), Vec::new())
        } else {
            let route_input = if status == TaskStatus::Succeeded {
                result.clone()
            } else {
                error.clone().unwrap_or(Value::Null)
            };
            match self.routes(t, status, &route_input) {
                Ok(r) => r,
                Err(msg) => {
                    // A route that cannot be evaluated fails the task (and, unhandled, the execution).
                    status = TaskStatus::Failed;
                    error = Some(
                        json!({"message": format!("task `{}`: {msg}", self.wf.tasks[t].name), "kind": "route"}),
                    );
                    (Vec::new(), Vec::new())
                }
            }
        };
        let publish: Vec<(String, Value)> = publish.into_iter().collect();
        let stored_publish: Vec<(String, Value)> = publish
            .iter()
            .map(|(k, v)| (k.clone(), self.redactor.redact(v)))
            .collect();
        // Template and route errors may quote values (action errors are masked already).
        let error = error.map(|e| self.redactor.redact(&e));
        self.seq += 1;
        let mut rows = vec![TaskRun {
            seq: Some(self.seq),
            input: f.input,
            result: Some(result.clone()),
            error: error.clone(),
            routes: Some(fired.clone()),
            publish: Some(stored_publish),
            started_at: Some(f.started_at),
            finished_at: Some(f.finished_at),
            duration_ms: Some(f.duration_ms),
            ..self.row(t, -1, f.attempt, status)
        }];
        self.apply(t, status, &result, error.as_ref(), &fired, publish);
        let to_start = if status == TaskStatus::Cancelled || self.cancel.is_cancelled() {
            Vec::new()
        } else {
            let targets = self.targets(t);
            self.advance(targets, &mut rows)
        };
        // Durable before the routes are followed.
        self.engine.store.record_task_runs(&rows).await?;
        self.engine.observer.task_finished(
            &self.exec.workflow_name,
            &self.wf.tasks[t].name,
            status,
            std::time::Duration::from_millis(u64::try_from(duration_ms).unwrap_or(0)),
        );
        for s in to_start {
            self.spawn(s);
        }
        Ok(())
    }

    async fn run(mut self) -> Result<ExecutionRecord, EngineError> {
        if self.exec.cancel_requested {
            self.cancel.cancel();
        }
        if !self.cancel.is_cancelled() {
            let mut rows = Vec::new();
            let candidates: Vec<usize> = (0..self.state.len())
                .rev()
                .filter(|&t| self.state[t] == State::NotStarted)
                .collect();
            let to_start = self.advance(candidates, &mut rows);
            self.engine.store.record_task_runs(&rows).await?;
            for s in to_start {
                self.spawn(s);
            }
        }
        let deadline = self.wf.timeout.map(|limit| {
            let started = self
                .exec
                .started_at
                .as_deref()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                .unwrap_or_else(|| self.engine.clock.now());
            let elapsed = self.engine.clock.now().duration_since(started);
            let left =
                std::time::Duration::try_from(elapsed).map_or(limit, |e| limit.saturating_sub(e));
            (tokio::time::Instant::now() + left, limit)
        });
        let started = Instant::now();
        let mut timed_out = false;
        while !self.inflight.is_empty() || self.inline.is_some() {
            let sleep = async {
                match deadline {
                    Some((at, _)) if !timed_out => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                joined = self.inflight.join_next_with_id(), if !self.inflight.is_empty() => {
                    let finished = match joined {
                        Some(Ok((id, f))) => { self.inflight_ids.remove(&id); f }
                        Some(Err(e)) => {
                            let t = self.inflight_ids.remove(&e.id()).expect("every spawned task is known");
                            self.panicked(t, &e.to_string())
                        }
                        None => continue,
                    };
                    self.on_finished(finished).await?;
                }
                ran = async { self.inline.as_mut().expect("guarded").1.catch().await }, if self.inline.is_some() => {
                    let (t, _) = self.inline.take().expect("guarded");
                    let finished = ran.unwrap_or_else(|why| self.panicked(t, &why));
                    self.on_finished(finished).await?;
                }
                () = self.cancel.cancelled(), if !self.cancel.is_cancelled() => {}
                () = sleep => {
                    timed_out = true;
                    let limit = deadline.map(|(_, l)| l).unwrap_or_default();
                    self.failure.get_or_insert_with(|| format!("the execution timed out after {}", human(limit)));
                    self.cancel.cancel();
                }
            }
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "execution loop ended"
        );
        self.finish(timed_out).await
    }

    async fn finish(mut self, timed_out: bool) -> Result<ExecutionRecord, EngineError> {
        let now = self.now();
        let cancelled = self.cancel.is_cancelled() && !timed_out;
        let waiting: Vec<String> = (0..self.state.len())
            .filter(|&t| self.state[t] == State::NotStarted)
            .map(|t| self.wf.tasks[t].name.clone())
            .collect();
        let (status, output, error) = if cancelled {
            (ExecStatus::Cancelled, None, Some("cancelled".to_string()))
        } else if let Some(f) = self.failure.take() {
            (ExecStatus::Failed, None, Some(f))
        } else if !waiting.is_empty()
            && self.state.iter().all(|s| *s != State::Running)
            && self.waiting_is_stuck(&waiting)
        {
            (
                ExecStatus::Failed,
                None,
                Some(format!("tasks never became ready: {}", waiting.join(", "))),
            )
        } else {
            let ctx = scope::context(self.base(), &now, Extra::default());
            let mut out = Map::new();
            let mut err = None;
            for (k, v) in &self.wf.output {
                match v.render(&ctx) {
                    Ok(val) => {
                        out.insert(k.clone(), val);
                    }
                    Err(e) => {
                        let path = if e.path.is_empty() {
                            String::new()
                        } else {
                            format!(".{}", e.path)
                        };
                        err = Some(format!("output.{k}{path}: {}", e.error));
                        break;
                    }
                }
            }
            match err {
                Some(e) => (ExecStatus::Failed, None, Some(e)),
                None => (ExecStatus::Succeeded, Some(Value::Object(out)), None),
            }
        };
        let output = output.map(|o| self.redactor.redact(&o));
        let error = error.map(|e| self.redactor.redact_str(&e));
        self.engine
            .store
            .finish_execution(
                &self.exec.id,
                status,
                output.as_ref(),
                error.as_deref(),
                &now,
            )
            .await
            .map_err(|e: StoreError| EngineError::Store(e))?;
        tracing::info!(status = %status, "execution finished");
        Ok(self.engine.store.execution(&self.exec.id).await?)
    }

    /// Tasks left unstarted when nothing runs are stuck unless they were never reached
    /// because the execution failed or was cancelled (handled before this is asked).
    fn waiting_is_stuck(&self, waiting: &[String]) -> bool {
        waiting.iter().any(|name| {
            let t = self
                .wf
                .tasks
                .get_index_of(name)
                .expect("a task of this workflow");
            matches!(self.readiness(t), Readiness::Wait | Readiness::Start)
        })
    }
}

#[cfg(test)]
mod handoff_tests {
    use super::*;
    use crate::store::TriggerEvent;

    fn sized(bytes: usize) -> Handoff {
        let mut input = Map::new();
        input.insert("data".into(), Value::String("x".repeat(bytes)));
        Handoff {
            input,
            ..Handoff::default()
        }
    }

    #[test]
    fn hand_offs_are_bounded_by_count_bytes_and_age() {
        let mut h = Handoffs::default();
        let t0 = Instant::now();
        for i in 0..MAX_HANDOFFS + 10 {
            h.insert(format!("e{i}"), sized(10), t0);
        }
        assert_eq!(h.kept.len(), MAX_HANDOFFS);
        assert!(!h.kept.contains_key("e9") && h.kept.contains_key("e10"));
        // Large ones push the oldest out.
        for i in 0..8 {
            h.insert(format!("big{i}"), sized(MAX_HANDOFF_BYTES / 4), t0);
        }
        assert!(h.bytes <= MAX_HANDOFF_BYTES, "{}", h.bytes);
        assert!(h.kept.contains_key("big7") && !h.kept.contains_key("big0"));
        assert!(!h.kept.contains_key("e10"));
        // Larger than the bound: not kept at all.
        h.insert("huge".into(), sized(MAX_HANDOFF_BYTES), t0);
        assert!(!h.kept.contains_key("huge"));
        // Too old: gone at the next insert.
        h.insert("late".into(), sized(10), t0 + HANDOFF_TTL);
        assert_eq!(h.kept.len(), 1);
        assert!(h.take("late").is_some());
        assert_eq!((h.kept.len(), h.bytes), (0, 0));
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
        async fn run(&self, _cx: ActionContext, p: EchoParams) -> Result<Value, ActionError> {
            Ok(p.value)
        }
    }

    const LOGIN: &str = r#"
name: login
input:
  user: { type: string }
  password: { type: string, secret: true }
vars:
  line: "{{ CTX.user }}:{{ CTX.password }}"
tasks:
  check:
    action: test.echo
    input:
      value: { length: "{{ CTX.password | length }}", same: "{{ CTX.line == 'ops:' ~ CTX.password }}" }
output:
  length: "{{ TASKS.check.result.length }}"
  same: "{{ TASKS.check.result.same }}"
"#;

    const BROKEN: &str = r#"
name: broken
input:
  x: { type: object, default: {} }
vars:
  deep: "{{ CTX.x.nothing.deeper }}"
tasks:
  check:
    action: test.echo
    input:
      value: 1
"#;

    fn start(record: &WorkflowRecord, input: Value) -> super::super::Start {
        super::super::Start {
            workflow: record.clone(),
            input: input.as_object().cloned().unwrap_or_default(),
            opts: StartOptions::default(),
        }
    }

    #[tokio::test]
    async fn no_hand_off_outlives_its_execution() {
        let mut registry = crate::Registry::new();
        registry.register(Echo);
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let engine = Engine::new(store, Arc::new(registry));
        let login = engine.deploy(LOGIN, None).await.unwrap();
        let broken = engine.deploy(BROKEN, None).await.unwrap();
        let event = TriggerEvent::new("w", "t", "webhook", "default");
        let creds = json!({"user": "ops", "password": "hunter22"});

        // Failed at creation (its vars cannot be computed), queued or started here.
        let id = engine
            .enqueue(&event, vec![start(&broken, json!({}))])
            .await
            .unwrap()
            .unwrap()
            .remove(0);
        let exec = engine.store().execution(&id).await.unwrap();
        assert_eq!(exec.status, ExecStatus::Failed, "{exec:?}");
        assert!(!has_handoff(&id));
        let id = engine
            .start(&broken, Map::new(), StartOptions::default())
            .await
            .unwrap();
        assert!(!has_handoff(&id));

        // Cancelled while queued.
        let id = engine
            .enqueue(&event, vec![start(&login, creds.clone())])
            .await
            .unwrap()
            .unwrap()
            .remove(0);
        assert!(has_handoff(&id));
        let exec = engine.cancel(&id).await.unwrap();
        assert_eq!(exec.status, ExecStatus::Cancelled);
        assert!(!has_handoff(&id));

        // Run here: taken. Dropped before it ran (as the bound does): rebuilt from the store
        // and the sealed copy, with the same result.
        for drop_it in [false, true] {
            let id = engine
                .enqueue(&event, vec![start(&login, creds.clone())])
                .await
                .unwrap()
                .unwrap()
                .remove(0);
            assert!(has_handoff(&id));
            if drop_it {
                forget_handoff(&id);
            }
            let exec = engine.run(&id).await.unwrap();
            assert!(!has_handoff(&id));
            assert_eq!(exec.status, ExecStatus::Succeeded, "{exec:?}");
            assert_eq!(
                exec.output.unwrap(),
                json!({"length": 8, "same": true}),
                "dropped: {drop_it}"
            );
            assert_eq!(exec.vars.unwrap()["line"], "ops:***");
        }

        // Owned and run elsewhere: nothing here takes it; the bound frees it (see above).
        let id = engine
            .start(
                &login,
                creds.as_object().cloned().unwrap(),
                StartOptions::default(),
            )
            .await
            .unwrap();
        assert!(has_handoff(&id));
        forget_handoff(&id);
        assert!(!has_handoff(&id));
    }
}
