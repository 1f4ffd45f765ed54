//! The executor: runs workflows as DAGs on tokio, persisting every step.
//!
//! Each execution is driven by a conductor ([`conductor`]) that owns its state in memory,
//! spawns task attempts as tokio tasks (so parallel branches really run in parallel) and
//! commits each finished step — the task's outcome, the routes that fired, what they
//! published, the tasks it starts or skips — in one store write before following the
//! routes. A killed process loses nothing committed: [`Engine::resume_orphans`] replays the
//! committed outcomes and runs again only what was in flight.

mod conductor;
pub mod observe;
mod org_cache;
pub mod redact;
pub mod scope;
mod task;
mod workers;

use org_cache::OrgCache;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use workers::Workers;

#[doc(hidden)]
pub use conductor::pending_handoffs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::action::{
    ActionContext, ActionError, ActionErrorKind, BoxFuture, Clock, SubWorkflows, SystemClock,
};
use crate::integration::{Integrations, StaticIntegrations};
use crate::model::{InputType, Workflow};
use crate::registry::Registry;
use crate::store::{
    ExecStatus, ExecutionRecord, Store, StoreError, TaskRun, TaskStatus, TriggerEvent,
    WorkflowRecord,
};
use crate::suggest::did_you_mean;

/// An executor failure (not a task failure: those are part of the execution's outcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workflow does not validate.
    #[error("workflow `{name}` is invalid: {summary}")]
    Invalid {
        /// The workflow.
        name: String,
        /// The first errors, one per line.
        summary: String,
    },
    /// The inputs do not fit the workflow's declared inputs.
    #[error("{0}")]
    Input(String),
    /// The operation does not apply.
    #[error("{0}")]
    Conflict(String),
    /// The execution's organization cannot be loaded.
    #[error(transparent)]
    Org(#[from] crate::org::OrgError),
}

/// Classification of [`EngineError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineErrorKind {
    /// Storage.
    Store,
    /// The user's workflow or input (exit code 2 in the CLI).
    Usage,
    /// Wrong state.
    Conflict,
}

impl EngineError {
    /// The kind.
    pub fn kind(&self) -> EngineErrorKind {
        match self {
            EngineError::Store(e) if e.kind() == crate::store::StoreErrorKind::NotFound => {
                EngineErrorKind::Usage
            }
            EngineError::Store(_) | EngineError::Org(_) => EngineErrorKind::Store,
            EngineError::Invalid { .. } | EngineError::Input(_) => EngineErrorKind::Usage,
            EngineError::Conflict(_) => EngineErrorKind::Conflict,
        }
    }
}

/// Options for starting an execution.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The org (default: `default`).
    pub org: Option<String>,
    /// The event (`TRIGGER`): `{type, body, headers, params}`.
    pub trigger: Option<Value>,
}

/// One execution a trigger event starts.
#[derive(Debug, Clone)]
pub struct Start {
    /// The workflow version to run.
    pub workflow: WorkflowRecord,
    /// Its inputs (defaults are applied).
    pub input: Map<String, Value>,
    /// Org and event.
    pub opts: StartOptions,
}

/// How a rerun repeats an earlier execution.
#[derive(Debug, Clone, Default)]
pub struct RerunOptions {
    /// Reuse the results of every task not downstream of this one, and run from it.
    pub from: Option<String>,
    /// Reuse successful items of failed with.items tasks; run only the failed items.
    pub failed_items: bool,
}

pub(crate) struct Running {
    cancel: CancellationToken,
}

/// Whether an execution about to run may start.
enum Slot {
    /// Start (or resume) it, as just read from the store.
    Ready(Box<ExecutionRecord>),
    /// It ended while waiting (cancelled).
    Ended(Box<ExecutionRecord>),
    /// Another worker took it while it waited for a slot.
    RunElsewhere,
}

/// Where people reach an installation nobody configured: `weft serve`'s default address.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Runs workflows against a store and a registry of actions.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) integrations: Arc<dyn Integrations>,
    pub(crate) observer: Arc<dyn observe::Observer>,
    pub(crate) secrets: Arc<dyn crate::secrets::SecretBox>,
    pub(crate) owner: String,
    pub(crate) lease: Duration,
    /// Where people reach this installation: the base of form links templates make.
    public_url: std::sync::RwLock<String>,
    /// Stored versions by row id, parsed once: the workflow, or why it no longer loads.
    parsed: Mutex<HashMap<i64, Result<Arc<Workflow>, String>>>,
    /// Org contexts as loaded, by the name or id asked for (each tenant its own entry), valid
    /// while the store's configuration generation stays where it was when they were loaded.
    orgs: Mutex<OrgCache>,
    running: Mutex<HashMap<String, Running>>,
    /// Woken once per execution this process queues.
    pub(crate) queued: tokio::sync::Notify,
    /// Interrupted executions this process took over, run before the store's queue.
    adopted: Mutex<std::collections::VecDeque<String>>,
    /// Executions that ended in this process, for waiters.
    finished: tokio::sync::broadcast::Sender<ExecutionRecord>,
    watcher_started: std::sync::atomic::AtomicBool,
    /// Runs sub-workflows for actions; built once (it is handed to every action call).
    children: Arc<dyn SubWorkflows>,
    me: Weak<Engine>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// `host:pid:random` — who holds an execution's lease.
fn owner_id() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Is the process named in an owner id gone? Only answerable for owners on this host.
fn owner_is_dead(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (_, pid, host) = (parts.next(), parts.next(), parts.next());
    let this_host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    match (host, pid.and_then(|p| p.parse::<u32>().ok())) {
        (Some(h), Some(pid)) if h == this_host => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

pub(crate) fn now_ms(clock: &dyn Clock) -> i64 {
    clock.now().as_millisecond()
}

impl Engine {
    /// An engine with the wall clock.
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>) -> Arc<Engine> {
        Engine::with_clock(store, registry, Arc::new(SystemClock))
    }

    /// The time on the engine's clock.
    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// An engine with a given clock (tests).
    pub fn with_clock(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Engine> {
        Arc::new_cyclic(|me| Engine {
            store,
            registry,
            clock,
            integrations: Arc::new(StaticIntegrations::default()),
            observer: Arc::new(observe::NoObserver),
            // Until a key is configured, secrets live as long as the process.
            secrets: Arc::new(crate::secrets::KeyBox::new(crate::secrets::random_key())),
            owner: owner_id(),
            lease: Duration::from_secs(30),
            public_url: std::sync::RwLock::new(DEFAULT_PUBLIC_URL.into()),
            parsed: Mutex::default(),
            orgs: Mutex::default(),
            running: Mutex::default(),
            queued: tokio::sync::Notify::new(),
            adopted: Mutex::default(),
            finished: tokio::sync::broadcast::channel(256).0,
            watcher_started: std::sync::atomic::AtomicBool::new(false),
            children: Arc::new(Children { engine: me.clone() }),
            me: me.clone(),
        })
    }

    /// An engine alone on its store (`weft test`'s scratch store): it neither renews leases
    /// nor looks for cancel requests from other processes, which would otherwise wake a
    /// paused clock every quarter second of virtual time.
    #[must_use]
    pub fn alone(self: Arc<Self>) -> Arc<Engine> {
        self.watcher_started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// Sets where integration instances come from (before running anything).
    #[must_use]
    pub fn with_integrations(self: Arc<Self>, integrations: Arc<dyn Integrations>) -> Arc<Engine> {
        let engine = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("with_integrations is called on a fresh engine"));
        Arc::new_cyclic(|me| Engine {
            integrations,
            children: Arc::new(Children { engine: me.clone() }),
            me: me.clone(),
            ..engine
        })
    }

    /// Sets who is told about executions and tasks as they end (before running anything).
    #[must_use]
    pub fn with_observer(self: Arc<Self>, observer: Arc<dyn observe::Observer>) -> Arc<Engine> {
        let engine = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("with_observer is called on a fresh engine"));
        Arc::new_cyclic(|me| Engine {
            observer,
            children: Arc::new(Children { engine: me.clone() }),
            me: me.clone(),
            ..engine
        })
    }

    /// Sets the key secret values are sealed with at rest (before running anything).
    #[must_use]
    pub fn with_secrets(
        self: Arc<Self>,
        secrets: Arc<dyn crate::secrets::SecretBox>,
    ) -> Arc<Engine> {
        let engine = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("with_secrets is called on a fresh engine"));
        Arc::new_cyclic(|me| Engine {
            secrets,
            children: Arc::new(Children { engine: me.clone() }),
            me: me.clone(),
            ..engine
        })
    }

    /// Sets how long this process holds an execution without renewing it (renewed at a third
    /// of it); after it, another process may take the execution over. Before running anything.
    #[must_use]
    pub fn with_lease(self: Arc<Self>, lease: Duration) -> Arc<Engine> {
        let engine = Arc::try_unwrap(self)
            .unwrap_or_else(|_| panic!("with_lease is called on a fresh engine"));
        Arc::new_cyclic(|me| Engine {
            lease: lease.max(Duration::from_secs(1)),
            children: Arc::new(Children { engine: me.clone() }),
            me: me.clone(),
            ..engine
        })
    }

    /// Sets where people reach this installation (`weft serve`'s address or
    /// `--public-url`): form links made in templates start with it.
    pub fn set_public_url(&self, url: &str) {
        let url = url.trim_end_matches('/').to_string();
        *self
            .public_url
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = url;
        // Contexts carry form links made with the old address.
        lock(&self.orgs).clear();
    }

    /// Where people reach this installation.
    pub fn public_url(&self) -> String {
        self.public_url
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// This process's owner id (`host:pid:random`), as leases record it.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Seals and opens secret values (org variables, integration secrets).
    pub fn secrets(&self) -> &Arc<dyn crate::secrets::SecretBox> {
        &self.secrets
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Where integration instances come from.
    pub fn integrations(&self) -> &Arc<dyn Integrations> {
        &self.integrations
    }

    /// Validates a workflow and stores it as a new version (unless unchanged).
    ///
    /// # Errors
    /// [`EngineError::Invalid`] with the first errors when it does not validate.
    pub async fn deploy(
        &self,
        source: &str,
        path: Option<&str>,
    ) -> Result<WorkflowRecord, EngineError> {
        let loaded = crate::load(source, &self.registry);
        let Some(wf) = loaded.workflow else {
            let name = path.unwrap_or("workflow").to_string();
            return Err(invalid(name, &loaded.diagnostics));
        };
        let record = self.store.deploy_workflow(&wf.name, source, path).await?;
        self.parsed
            .lock()
            .expect("not poisoned")
            .insert(record.id, Ok(Arc::new(wf)));
        Ok(record)
    }

    /// The parsed workflow of a stored version (parsed once per process).
    pub(crate) async fn workflow(
        &self,
        id: i64,
    ) -> Result<(WorkflowRecord, Arc<Workflow>), EngineError> {
        let record = self.store.workflow_by_id(id).await?;
        let wf = self.parsed(&record)?;
        Ok((record, wf))
    }

    /// A stored workflow version, parsed once per process (versions never change): the one
    /// cache every caller — executions, triggers, the API, forms — reads through.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] when the stored source no longer loads (with its diagnostics).
    pub fn parsed(&self, record: &WorkflowRecord) -> Result<Arc<Workflow>, EngineError> {
        let known = self
            .parsed
            .lock()
            .expect("not poisoned")
            .get(&record.id)
            .cloned();
        let parsed = known.unwrap_or_else(|| {
            let loaded = crate::load(&record.source, &self.registry);
            let parsed = loaded.workflow.map(Arc::new).ok_or_else(|| {
                match invalid(record.name.clone(), &loaded.diagnostics) {
                    EngineError::Invalid { summary, .. } => summary,
                    other => other.to_string(),
                }
            });
            self.parsed
                .lock()
                .expect("not poisoned")
                .insert(record.id, parsed.clone());
            parsed
        });
        parsed.map_err(|summary| EngineError::Invalid {
            name: record.name.clone(),
            summary,
        })
    }

    /// Creates an execution of a deployed workflow; run it with [`Engine::run`].
    ///
    /// # Errors
    /// Inputs that do not fit the workflow; store failures.
    pub async fn start(
        &self,
        workflow: &WorkflowRecord,
        input: Map<String, Value>,
        opts: StartOptions,
    ) -> Result<String, EngineError> {
        let (record, wf) = self.workflow(workflow.id).await?;
        let input = prepare_input(&wf, input)?;
        conductor::create(self, &record, &wf, input, opts, None).await
    }

    /// Starts and runs an execution to its end.
    ///
    /// # Errors
    /// As [`Engine::start`] and [`Engine::run`].
    pub async fn execute(
        &self,
        workflow: &WorkflowRecord,
        input: Map<String, Value>,
        opts: StartOptions,
    ) -> Result<ExecutionRecord, EngineError> {
        let id = self.start(workflow, input, opts).await?;
        self.run(&id).await
    }

    /// Runs (or resumes) an execution this engine holds until it ends.
    ///
    /// An execution under a concurrency limit is created pending: this waits until its group
    /// has room (in this process or any other sharing the store), then runs it. Should another
    /// worker take it meanwhile (its lease lapsed), this waits for it to end there.
    ///
    /// # Errors
    /// Store failures; an execution held by another live process.
    pub async fn run(&self, id: &str) -> Result<ExecutionRecord, EngineError> {
        let cancel = CancellationToken::new();
        self.run_with(id, cancel).await
    }

    pub(crate) async fn run_with(
        &self,
        id: &str,
        cancel: CancellationToken,
    ) -> Result<ExecutionRecord, EngineError> {
        let me = self
            .me
            .upgrade()
            .expect("the engine is alive while it runs");
        self.ensure_watcher();
        // In the map while it waits for a slot too: the watcher renews its lease (so no other
        // worker takes it) and passes on cancel requests.
        self.running.lock().expect("not poisoned").insert(
            id.to_string(),
            Running {
                cancel: cancel.clone(),
            },
        );
        let result = match self.wait_for_slot(id, &cancel).await {
            Ok(Slot::Ready(exec)) => {
                let started = std::time::Instant::now();
                let result = conductor::drive(me, *exec, cancel).await;
                if let Ok(exec) = &result
                    && exec.status.is_final()
                {
                    self.observer.execution_finished(
                        &exec.workflow_name,
                        exec.status,
                        started.elapsed(),
                    );
                }
                result
            }
            Ok(Slot::Ended(exec)) => Ok(*exec),
            Ok(Slot::RunElsewhere) => {
                self.running.lock().expect("not poisoned").remove(id);
                conductor::forget_handoff(id);
                return self.wait_until_final(id).await;
            }
            Err(e) => Err(e),
        };
        self.running.lock().expect("not poisoned").remove(id);
        if let Ok(exec) = &result
            && exec.status.is_final()
        {
            if self.finished.receiver_count() > 0 {
                let _ = self.finished.send(exec.clone());
            }
            // Its slot is free: a queued execution of its group may start now.
            if exec.concurrency_limit.is_some() {
                self.queued.notify_one();
            }
        }
        result
    }

    /// For a pending execution under a concurrency limit: waits until its group has room and
    /// claims it. Anything else is ready at once (`drive` claims or resumes it as before); the
    /// record read here is handed to `drive`, which does not read it again.
    async fn wait_for_slot(
        &self,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<Slot, EngineError> {
        // Subscribed before looking, so an execution that ends meanwhile still wakes us.
        let mut ended = self.finished.subscribe();
        let mut waited = false;
        loop {
            let exec = self.store.execution(id).await?;
            if exec.status.is_final() {
                conductor::forget_handoff(&exec.id);
                return Ok(Slot::Ended(Box::new(exec)));
            }
            if exec.status != ExecStatus::Pending || exec.concurrency_limit.is_none() {
                // Seen pending and now running without our claim: another worker took it
                // (even one of this process, which shares our owner id).
                return Ok(if waited {
                    Slot::RunElsewhere
                } else {
                    Slot::Ready(Box::new(exec))
                });
            }
            if cancel.is_cancelled() || exec.cancel_requested {
                // Nothing ran: it ends here, as cancelled.
                let now = self.clock.now().to_string();
                self.store
                    .finish_execution(
                        &exec.id,
                        ExecStatus::Cancelled,
                        None,
                        Some("cancelled"),
                        &now,
                    )
                    .await?;
                conductor::forget_handoff(&exec.id);
                return Ok(Slot::Ended(Box::new(self.store.execution(&exec.id).await?)));
            }
            if self.claim(&exec).await? {
                // Claimed: its owner and status changed.
                return Ok(Slot::Ready(Box::new(self.store.execution(id).await?)));
            }
            waited = true;
            // Slots freed in this process are announced at once; those freed by other
            // processes are seen by polling.
            tokio::select! {
                _ = ended.recv() => {}
                () = tokio::time::sleep(workers::POLL) => {}
                () = cancel.cancelled() => {}
            }
        }
    }

    /// Waits for an execution run by another worker to end.
    async fn wait_until_final(&self, id: &str) -> Result<ExecutionRecord, EngineError> {
        loop {
            if let Some(exec) = self.wait_for(id, Duration::from_secs(3600)).await? {
                return Ok(exec);
            }
        }
    }

    /// Records a trigger event and queues the executions it starts, in one commit; a worker
    /// of any process sharing the store runs them. Returns their ids, or `None` when the
    /// event's de-duplication key was seen before (nothing is started).
    ///
    /// # Errors
    /// Inputs that do not fit a workflow (nothing is stored); store failures.
    pub async fn enqueue(
        &self,
        event: &TriggerEvent,
        starts: Vec<Start>,
    ) -> Result<Option<Vec<String>>, EngineError> {
        let mut prepared = Vec::with_capacity(starts.len());
        for s in starts {
            let (record, wf) = self.workflow(s.workflow.id).await?;
            let input = prepare_input(&wf, s.input)?;
            let org = self.org_context(s.opts.org.as_deref()).await?;
            prepared.push((record, wf, input, s.opts, org));
        }
        let news: Vec<_> = prepared
            .into_iter()
            .map(|(record, wf, input, opts, org)| {
                conductor::build(
                    self,
                    conductor::Launch {
                        record: &record,
                        wf: &wf,
                        input,
                        opts,
                        org_ctx: org,
                        rerun_of: None,
                        parent: None,
                        owned: false,
                    },
                )
            })
            .collect();
        let ids: Vec<String> = news.iter().map(|n| n.id.clone()).collect();
        match self.store.record_event(event, &news).await {
            Ok(Some(_)) => {
                for _ in &ids {
                    self.queued.notify_one();
                }
                Ok(Some(ids))
            }
            Ok(None) => {
                ids.iter().for_each(|id| conductor::forget_handoff(id));
                Ok(None)
            }
            Err(e) => {
                ids.iter().for_each(|id| conductor::forget_handoff(id));
                Err(e.into())
            }
        }
    }

    /// The organization context of `org` (`default` when none): registered orgs bring their
    /// variables, mappings and integrations; others only their name.
    ///
    /// # Errors
    /// Store failures; secrets that cannot be opened.
    pub async fn org_context(
        &self,
        org: Option<&str>,
    ) -> Result<Arc<crate::org::OrgContext>, EngineError> {
        let name = org.unwrap_or("default");
        let generation = self.store.config_generation().await?;
        if let Some(ctx) = lock(&self.orgs).get(name, generation) {
            return Ok(ctx);
        }
        let mut ctx =
            crate::org::OrgContext::load(self.store.as_ref(), self.secrets.as_ref(), name).await?;
        let forms = if ctx.registered {
            crate::form_link::OrgForms::load(
                self.store.as_ref(),
                self.secrets.clone(),
                &self.public_url(),
                &ctx.org.id,
            )
            .await?
        } else {
            crate::form_link::OrgForms::none(&ctx.org.id, self.secrets.clone())
        };
        ctx.forms = Some(Arc::new(forms));
        let ctx = Arc::new(ctx);
        // Only registered orgs are kept: a name that is no org (which a caller may spell any
        // way) costs one lookup and takes no room.
        if ctx.registered {
            lock(&self.orgs).put(name, generation, ctx.clone());
        }
        Ok(ctx)
    }

    /// How `ctx`'s tasks find their integrations: the org's, its parents', then
    /// `--integrations`; each sharing its API limits through the store with every process on
    /// the same database.
    pub fn org_integrations(&self, ctx: &crate::org::OrgContext) -> crate::org::OrgIntegrations {
        crate::org::OrgIntegrations::new(ctx, self.integrations.clone())
            .sharing_limits(self.store.clone())
    }

    /// The integration instance of `kind` a task in `org` would use (the named `instance`,
    /// else the default), found the way tasks find it: the org, its parents, then the
    /// instances configured for every org.
    ///
    /// # Errors
    /// [`EngineError::Input`] naming the org and the kind when there is none; store failures.
    pub async fn integration_for(
        &self,
        org: &str,
        kind: &str,
        instance: Option<&str>,
    ) -> Result<crate::integration::Integration, EngineError> {
        let ctx = self.org_context(Some(org)).await?;
        self.org_integrations(&ctx)
            .resolve(kind, &ctx.org_ref(), instance)
            .map_err(|e| EngineError::Input(e.message))
    }

    /// The next execution for this process to run: one it adopted after a crash, else the
    /// oldest queued one (or one whose owner's lease expired), now held by this engine.
    ///
    /// # Errors
    /// Store failures.
    pub async fn claim_next(&self) -> Result<Option<String>, EngineError> {
        if let Some(id) = self.adopted.lock().expect("not poisoned").pop_front() {
            return Ok(Some(id));
        }
        let now = now_ms(&*self.clock);
        let until = now + self.lease.as_millis() as i64;
        Ok(self.store.claim_next(&self.owner, until, now).await?)
    }

    /// Takes over the executions of dead processes (on this host, or whose lease expired):
    /// their sub-workflow copies are cancelled (the parent re-runs them), the rest wait for
    /// this process's workers ahead of the queue. Returns how many were adopted.
    ///
    /// # Errors
    /// Store failures.
    pub async fn adopt_orphans(&self) -> Result<usize, EngineError> {
        let now = now_ms(&*self.clock);
        let mut adopted = 0;
        for exec in self.store.unfinished_executions().await? {
            // Queued executions (no owner) are the workers' to run, not orphans.
            let orphaned = exec.owner.as_deref().is_some_and(owner_is_dead)
                || (exec.owner.is_some() && exec.lease_until_ms.is_none_or(|l| l < now));
            if !orphaned || !self.claim(&exec).await? {
                continue;
            }
            if exec.parent_id.is_some() {
                // The parent's task re-runs its sub-workflow; this copy is superseded.
                self.supersede(&exec.id).await?;
                continue;
            }
            tracing::info!(execution_id = %exec.id, workflow = %exec.workflow_name, "resuming interrupted execution");
            self.adopted
                .lock()
                .expect("not poisoned")
                .push_back(exec.id.clone());
            self.queued.notify_one();
            adopted += 1;
        }
        Ok(adopted)
    }

    async fn supersede(&self, id: &str) -> Result<(), EngineError> {
        let now = self.clock.now().to_string();
        self.store
            .finish_execution(
                id,
                ExecStatus::Cancelled,
                None,
                Some("superseded: the parent execution was resumed"),
                &now,
            )
            .await?;
        Ok(())
    }

    /// Waits up to `timeout` for an execution to end, wherever it runs; `None` if it has not.
    ///
    /// # Errors
    /// Unknown executions; store failures.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<ExecutionRecord>, EngineError> {
        let mut ended = self.finished.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let exec = self.store.execution(id).await?;
            if exec.status.is_final() {
                return Ok(Some(exec));
            }
            // Executions run by other processes are only seen by polling.
            let poll = tokio::time::Instant::now() + Duration::from_millis(500);
            let until = poll.min(deadline);
            loop {
                match tokio::time::timeout_at(until, ended.recv()).await {
                    Ok(Ok(e)) if e.id == id => return Ok(Some(e)),
                    Ok(Ok(_)) => continue,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) | Err(_) => break,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let exec = self.store.execution(id).await?;
                return Ok(exec.status.is_final().then_some(exec));
            }
        }
    }

    /// Resumes every unfinished top-level execution whose owner is gone (killed process,
    /// expired lease), oldest first, and runs each to its end.
    ///
    /// # Errors
    /// Store failures.
    pub async fn resume_orphans(&self) -> Result<Vec<ExecutionRecord>, EngineError> {
        self.adopt_orphans().await?;
        let mut done = Vec::new();
        loop {
            let next = self.adopted.lock().expect("not poisoned").pop_front();
            let Some(id) = next else { break };
            done.push(self.run(&id).await?);
        }
        Ok(done)
    }

    /// Takes an execution over: free, held by a dead process of this host, or with an
    /// expired lease. False when a live process holds it.
    pub(crate) async fn claim(&self, exec: &ExecutionRecord) -> Result<bool, EngineError> {
        let now = now_ms(&*self.clock);
        let stale = exec.owner.as_deref().filter(|o| owner_is_dead(o));
        let until = now + self.lease.as_millis() as i64;
        Ok(self
            .store
            .claim_execution(&exec.id, &self.owner, until, now, stale)
            .await?)
    }

    /// Asks an execution (and its sub-workflows) to stop; the process running it stops its
    /// tasks and marks it cancelled. An execution nobody runs is cancelled at once.
    ///
    /// # Errors
    /// Unknown or finished executions.
    pub async fn cancel(&self, id: &str) -> Result<ExecutionRecord, EngineError> {
        let exec = self.store.execution(id).await?;
        self.store
            .request_cancel(&exec.id)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) => EngineError::Conflict(m),
                other => EngineError::Store(other),
            })?;
        if let Some(r) = self.running.lock().expect("not poisoned").get(&exec.id) {
            r.cancel.cancel();
        }
        let orphaned = exec.owner.as_deref().is_none_or(owner_is_dead)
            || exec.lease_until_ms.is_none_or(|l| l < now_ms(&*self.clock));
        if orphaned
            && !self
                .running
                .lock()
                .expect("not poisoned")
                .contains_key(&exec.id)
        {
            let now = self.clock.now().to_string();
            let mut stack = vec![exec.id.clone()];
            while let Some(id) = stack.pop() {
                stack.extend(
                    self.store
                        .children(&id)
                        .await?
                        .into_iter()
                        .filter(|c| !c.status.is_final())
                        .map(|c| c.id),
                );
                // Its tasks were running in the dead process: they end with it.
                let ended: Vec<TaskRun> = self
                    .store
                    .task_runs(&id)
                    .await?
                    .into_iter()
                    .filter(|r| r.status == TaskStatus::Running)
                    .map(|r| TaskRun {
                        status: TaskStatus::Cancelled,
                        finished_at: Some(now.clone()),
                        error: Some(
                            serde_json::json!({"message": "cancelled", "kind": "cancelled"}),
                        ),
                        ..r
                    })
                    .collect();
                self.store.record_task_runs(&ended).await?;
                self.store
                    .finish_execution(&id, ExecStatus::Cancelled, None, Some("cancelled"), &now)
                    .await?;
                conductor::forget_handoff(&id);
            }
        }
        Ok(self.store.execution(&exec.id).await?)
    }

    /// Creates a new execution that repeats `id`: whole, from a task, or only failed items.
    /// Returns the new execution's id; run it with [`Engine::run`].
    ///
    /// # Errors
    /// Unknown executions or tasks.
    pub async fn rerun(&self, id: &str, opts: RerunOptions) -> Result<String, EngineError> {
        let old = self.store.execution(id).await?;
        let (record, wf) = self.workflow(old.workflow_id).await?;
        if let Some(from) = &opts.from
            && !wf.tasks.contains_key(from)
        {
            let hint = did_you_mean(from, wf.tasks.keys().map(String::as_str)).unwrap_or_default();
            return Err(EngineError::Input(format!(
                "workflow `{}` has no task `{from}` {hint}",
                wf.name
            )));
        }
        if !old.status.is_final() {
            return Err(EngineError::Conflict(format!(
                "execution {} is still {}; cancel it first",
                old.id, old.status
            )));
        }
        if let Some((name, _)) = wf.input.iter().find(|(_, p)| p.secret) {
            return Err(EngineError::Input(format!(
                "cannot rerun: input `{name}` is secret and secrets are never stored; run the workflow again with its inputs"
            )));
        }
        let runs = self.store.task_runs(&old.id).await?;
        let reuse = conductor::reusable(&wf, &runs, &opts);
        let input = old.input.as_object().cloned().unwrap_or_default();
        let opts_start = StartOptions {
            org: Some(old.org.clone()),
            trigger: Some(old.trigger.clone()),
        };
        conductor::create(
            self,
            &record,
            &wf,
            input,
            opts_start,
            Some((old.id.clone(), reuse)),
        )
        .await
    }

    /// One background task per engine: renews leases and notices cancel requests made by
    /// other processes (one query each per tick, whatever the number of executions).
    fn ensure_watcher(&self) {
        use std::sync::atomic::Ordering;
        if self.watcher_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.me.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut ticks: u64 = 0;
            loop {
                tick.tick().await;
                let Some(engine) = me.upgrade() else { break };
                ticks += 1;
                if engine.running.lock().expect("not poisoned").is_empty() {
                    continue;
                }
                if let Ok(ids) = engine.store.cancel_requests(&engine.owner).await {
                    let running = engine.running.lock().expect("not poisoned");
                    for id in ids {
                        if let Some(r) = running.get(&id) {
                            r.cancel.cancel();
                        }
                    }
                }
                // Renew at a third of the lease.
                if ticks.is_multiple_of((engine.lease.as_millis() as u64 / 750).max(1)) {
                    let until = now_ms(&*engine.clock) + engine.lease.as_millis() as i64;
                    if let Err(e) = engine.store.renew_leases(&engine.owner, until).await {
                        tracing::warn!(error = %e, "cannot renew execution leases");
                    }
                }
            }
        });
    }

    pub(crate) fn sub_workflows(&self) -> Arc<dyn SubWorkflows> {
        self.children.clone()
    }
}

fn invalid(name: String, diagnostics: &[crate::Diagnostic]) -> EngineError {
    let summary = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .take(5)
        .map(|d| {
            format!(
                "line {}:{}: {} [{}]",
                d.span.line, d.span.column, d.message, d.code
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    EngineError::Invalid { name, summary }
}

/// Applies defaults and checks required inputs, types and allowed values.
///
/// # Errors
/// Every problem, in one message.
pub fn prepare_input(
    wf: &Workflow,
    mut given: Map<String, Value>,
) -> Result<Map<String, Value>, EngineError> {
    let mut problems = Vec::new();
    for key in given.keys() {
        if !wf.input.contains_key(key) {
            let hint = did_you_mean(key, wf.input.keys().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            problems.push(format!("`{key}` is not an input of `{}`{hint}", wf.name));
        }
    }
    let mut out = Map::new();
    for (name, param) in &wf.input {
        match given.remove(name).or_else(|| param.default.clone()) {
            Some(v) => {
                if !v.is_null() && !param.ty.accepts(&v) {
                    // A secret input's value is never echoed (errors are shown and stored).
                    let got = if param.secret {
                        "(secret value hidden)".to_string()
                    } else {
                        short(&v)
                    };
                    problems.push(format!(
                        "input `{name}` must be {}, got {got}",
                        param.ty.name(),
                    ));
                } else if let Some(allowed) = &param.allowed
                    && !allowed.contains(&v)
                {
                    let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                    problems.push(format!("input `{name}` must be one of {}", list.join(", ")));
                }
                out.insert(name.clone(), v);
            }
            None if param.required => problems.push(format!("input `{name}` is required")),
            None => {
                out.insert(name.clone(), Value::Null);
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(EngineError::Input(problems.join("; ")))
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}

/// Turns a `--input key=value` string into the input's declared type (JSON for non-strings).
pub fn coerce_input(wf: &Workflow, key: &str, raw: &str) -> Value {
    match wf.input.get(key).map(|p| p.ty) {
        Some(InputType::String) => Value::String(raw.to_string()),
        _ => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())),
    }
}

/// Runs sub-workflows for `core.workflow`.
struct Children {
    engine: Weak<Engine>,
}

/// How deep sub-workflows may nest (a workflow calling a workflow … this many levels).
pub const MAX_NESTING: usize = 16;

impl SubWorkflows for Children {
    fn run_child<'a>(
        &'a self,
        parent: &'a ActionContext,
        workflow: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let engine = self
                .engine
                .upgrade()
                .ok_or_else(|| ActionError::failed("the engine is shutting down"))?;
            let record =
                engine
                    .store
                    .workflow(workflow, None)
                    .await
                    .map_err(|e| match e.kind() {
                        crate::store::StoreErrorKind::NotFound => ActionError::failed(format!(
                            "no workflow named `{workflow}` is deployed"
                        )),
                        _ => ActionError::failed(format!("cannot load workflow `{workflow}`: {e}")),
                    })?;
            let (record, wf) = engine
                .workflow(record.id)
                .await
                .map_err(|e| ActionError::failed(e.to_string()))?;
            let input = prepare_input(&wf, input.as_object().cloned().unwrap_or_default())
                .map_err(|e| ActionError::failed(format!("sub-workflow `{workflow}`: {e}")))?;
            // A workflow that calls itself (directly or through others) would nest without
            // end, each level a new execution: the nesting is counted and bounded.
            let depth = engine
                .store
                .execution(&parent.execution_id)
                .await
                .map_err(|e| {
                    ActionError::failed(format!("cannot read the calling execution: {e}"))
                })?
                .trigger
                .get("depth")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                + 1;
            if depth > MAX_NESTING as u64 {
                return Err(ActionError::failed(format!(
                    "sub-workflow `{workflow}` would be nested {depth} deep (at most {MAX_NESTING}): does a workflow call itself, directly or through others?"
                )));
            }
            let opts = StartOptions {
                org: Some(parent.org.id.clone()),
                trigger: Some(
                    serde_json::json!({"type": "workflow", "parent_execution": parent.execution_id, "parent_task": parent.task, "depth": depth}),
                ),
            };
            let id = conductor::create_child(&engine, &record, &wf, input, opts, parent)
                .await
                .map_err(|e| ActionError::failed(e.to_string()))?;
            // The child runs as its own task: if the parent stops waiting (timeout, cancel),
            // the child still sees the cancel and records how it ended.
            let child = {
                let (engine, id, cancel) =
                    (engine.clone(), id.clone(), parent.cancel.child_token());
                tokio::spawn(async move { engine.run_with(&id, cancel).await })
            };
            let exec = child
                .await
                .map_err(|e| {
                    ActionError::failed(format!("sub-workflow `{workflow}` panicked: {e}"))
                })?
                .map_err(|e| ActionError::failed(e.to_string()))?;
            let data = serde_json::json!({"execution_id": exec.id, "workflow": workflow});
            match exec.status {
                ExecStatus::Succeeded => Ok(exec.output.unwrap_or(Value::Null)),
                ExecStatus::Cancelled => Err(ActionError {
                    kind: ActionErrorKind::Cancelled,
                    message: format!("sub-workflow `{workflow}` was cancelled"),
                    data: Some(data),
                }),
                _ => Err(ActionError::failed(format!(
                    "sub-workflow `{workflow}` failed: {}",
                    exec.error.unwrap_or_default()
                ))
                .with_data(data)),
            }
        })
    }
}

/// Task runs of an execution grouped for display: outcome rows per task in run order.
pub fn outcomes(runs: &[TaskRun]) -> Vec<&TaskRun> {
    let mut v: Vec<&TaskRun> = runs
        .iter()
        .filter(|r| r.is_outcome() || (r.item == -1 && r.status == TaskStatus::Running))
        .collect();
    v.sort_by_key(|r| (r.seq.unwrap_or(i64::MAX), r.started_at.clone()));
    v
}

/// Per task: its outcome (or running) row, how many attempts it made, how many items it had.
pub fn task_summaries(runs: &[TaskRun]) -> Vec<(&TaskRun, i64, usize)> {
    let mut attempts: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    let mut items: std::collections::BTreeMap<&str, std::collections::BTreeSet<i64>> =
        std::collections::BTreeMap::new();
    for r in runs {
        if r.item == -1 {
            let a = attempts.entry(&r.task).or_default();
            *a = (*a).max(r.attempt.max(1));
        } else {
            items.entry(&r.task).or_default().insert(r.item);
        }
    }
    outcomes(runs)
        .into_iter()
        .map(|r| {
            (
                r,
                attempts.get(r.task.as_str()).copied().unwrap_or(1),
                items.get(r.task.as_str()).map_or(0, |s| s.len()),
            )
        })
        .collect()
}

/// The `--json` shape of `weft run` and `weft executions show` (and `GET /api/executions/{id}`).
pub fn execution_json(exec: &ExecutionRecord, runs: &[TaskRun]) -> Value {
    let tasks: Vec<Value> = task_summaries(runs)
        .into_iter()
        .map(|(r, attempts, items)| {
            let mut t = serde_json::json!({
                "name": r.task,
                "status": r.status,
                "attempts": attempts,
                "result": r.result,
                "error": r.error,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "duration_ms": r.duration_ms,
                "reused": r.reused,
            });
            if items > 0 {
                t["items"] = serde_json::json!(items);
            }
            t
        })
        .collect();
    serde_json::json!({
        "id": exec.id,
        "workflow": exec.workflow_name,
        "version": exec.workflow_version,
        "status": exec.status,
        "org": exec.org,
        "input": exec.input,
        "output": exec.output,
        "error": exec.error,
        // The event that started it (secret headers were never kept).
        "trigger": exec.trigger,
        "parent_id": exec.parent_id,
        "rerun_of": exec.rerun_of,
        "created_at": exec.created_at,
        "started_at": exec.started_at,
        "finished_at": exec.finished_at,
        // The process that holds (or, once ended, ran) it.
        "owner": exec.owner,
        // Its concurrency group, when its workflow has a limit (a queued one waits for it).
        "concurrency": exec.concurrency_limit.map(|limit| serde_json::json!({
            "limit": limit,
            "key": exec.concurrency_key,
        })),
        "tasks": tasks,
    })
}
