//! Running one task: delay, input rendering, items, retries, timeouts, cancellation.
//!
//! Attempts that are not the task's outcome (a failed attempt that will be retried, each
//! item of a with.items task) are written to the store here; the outcome itself is written
//! by the conductor together with the routes it follows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Engine;
use super::redact::Redactor;
use super::scope::{self, Extra};
use crate::action::{ActionContext, ActionError, ActionErrorKind, OrgRef};
use crate::model::{Task, Templated, WithItems, Workflow};
use crate::store::{TaskRun, TaskStatus};

/// How long a cancelled or timed-out action may take to stop before it is abandoned.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// An item of a with.items task that already finished (reused by resume or rerun).
#[derive(Debug, Clone)]
pub(crate) struct ItemOutcome {
    pub status: TaskStatus,
    pub result: Value,
    pub error: Option<Value>,
}

/// How the attempts of a task (or item) ended: the deciding attempt and when it started.
pub(crate) struct Attempted {
    pub status: TaskStatus,
    pub result: Value,
    pub error: Option<ActionError>,
    pub attempt: i64,
    pub started_at: String,
    pub started: Instant,
}

/// Everything a spawned task needs.
#[derive(Clone)]
pub(crate) struct Job {
    pub engine: Arc<Engine>,
    pub wf: Arc<Workflow>,
    pub index: usize,
    pub exec_id: String,
    pub org: OrgRef,
    pub integrations: Arc<dyn crate::integration::Integrations>,
    /// The trigger's `integration:` (the task's own wins).
    pub trigger_integration: Option<crate::model::IntegrationOverride>,
    pub base: Vec<(&'static str, minijinja::Value)>,
    pub redactor: Redactor,
    pub cancel: CancellationToken,
    pub first_attempt: u32,
    pub done_items: BTreeMap<usize, ItemOutcome>,
}

/// How a task ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub index: usize,
    pub status: TaskStatus,
    pub result: Value,
    pub error: Option<ActionError>,
    /// Rendered input, secrets masked.
    pub input: Option<Value>,
    /// The attempt that decided the outcome (0 for a with.items task).
    pub attempt: i64,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: i64,
}

impl Job {
    fn task(&self) -> &Task {
        &self.wf.tasks[self.index]
    }

    fn now(&self) -> String {
        self.engine.clock.now().to_string()
    }

    fn render_ctx(&self, extra: Extra<'_>) -> minijinja::Value {
        scope::context(&self.base, &self.now(), extra)
    }

    fn render_input(&self, item: Option<&Value>) -> Result<Value, ActionError> {
        let ctx = self.render_ctx(Extra {
            item,
            ..Extra::default()
        });
        let mut out = serde_json::Map::new();
        for (k, v) in &self.task().input {
            let rendered = v.render(&ctx).map_err(|e| {
                let field = if e.path.is_empty() {
                    format!("input.{k}")
                } else {
                    format!("input.{k}.{}", e.path)
                };
                ActionError {
                    kind: ActionErrorKind::InvalidParams,
                    message: format!("task `{}`: {field}: {}", self.task().name, e.error),
                    data: None,
                }
            })?;
            out.insert(k.clone(), rendered);
        }
        Ok(Value::Object(out))
    }

    /// `run_as_org`: the task runs in a child org's context (its ORG, variables and
    /// integrations). Only an org below the execution's org may be named.
    async fn switch_org(
        &mut self,
        target: &Templated,
        item: Option<&Value>,
    ) -> Result<(), ActionError> {
        let ctx = self.render_ctx(Extra {
            item,
            ..Extra::default()
        });
        let name = match target.render(&ctx) {
            Ok(Value::String(s)) => s,
            Ok(Value::Number(n)) => n.to_string(),
            Ok(other) => {
                return Err(ActionError::failed(format!(
                    "task `{}`: run_as_org must name an organization, got {other}",
                    self.task().name
                )));
            }
            Err(e) => {
                return Err(ActionError::failed(format!(
                    "task `{}`: run_as_org: {}",
                    self.task().name,
                    e.error
                )));
            }
        };
        let org = self
            .engine
            .org_context(Some(&name))
            .await
            .map_err(|e| ActionError::failed(format!("run_as_org `{name}`: {e}")))?;
        if !org.registered {
            return Err(ActionError::failed(format!(
                "task `{}`: run_as_org: no organization `{name}`",
                self.task().name
            )));
        }
        if org.org.id != self.org.id && !org.is_below(&self.org.id) {
            return Err(ActionError::failed(format!(
                "task `{}`: run_as_org: `{}` is not below `{}`; a task may only run as one of its org's child organizations",
                self.task().name,
                org.org.id,
                self.org.id
            )));
        }
        self.redactor.add_org(&org);
        self.integrations = Arc::new(self.engine.org_integrations(&org));
        self.org = org.org_ref();
        if let Some(slot) = self.base.iter_mut().find(|(n, _)| *n == "ORG") {
            slot.1 = org.template_value();
        }
        Ok(())
    }

    /// Runs the task to its outcome.
    pub async fn run(mut self) -> Finished {
        let started = Instant::now();
        let started_at = self.now();
        let wf = self.wf.clone();
        let task = &wf.tasks[self.index];
        // A with.items task decides its org per item (it may name the item's org).
        if let Some(target) = &task.run_as_org
            && task.with.is_none()
            && let Err(e) = self.switch_org(target, None).await
        {
            return self.finish(
                Attempted {
                    status: TaskStatus::Failed,
                    result: Value::Null,
                    error: Some(e),
                    attempt: 1,
                    started,
                    started_at,
                },
                None,
            );
        }
        if let Some(delay) = task.delay
            && !self.sleep(delay).await
        {
            return self.finish(
                Attempted {
                    status: TaskStatus::Cancelled,
                    result: Value::Null,
                    error: Some(cancelled()),
                    attempt: 1,
                    started,
                    started_at,
                },
                None,
            );
        }
        match &task.with {
            Some(with) => self.run_items(with, started, started_at).await,
            None => {
                let input = match self.render_input(None) {
                    Ok(i) => i,
                    Err(e) => {
                        return self.finish(
                            Attempted {
                                status: TaskStatus::Failed,
                                result: Value::Null,
                                error: Some(e),
                                attempt: i64::from(self.first_attempt),
                                started,
                                started_at,
                            },
                            None,
                        );
                    }
                };
                let stored = self.stored_input(&input);
                let a = self.attempts(&input, &stored, None).await;
                // The outcome row is the deciding attempt's row: its own start and duration.
                self.finish(a, Some(stored))
            }
        }
    }

    /// The task's outcome row: how it ended (the deciding attempt, or the whole task when it
    /// ended before or outside any attempt) and its stored input, timed until now.
    fn finish(&self, ended: Attempted, input: Option<Value>) -> Finished {
        Finished {
            index: self.index,
            status: ended.status,
            result: ended.result,
            error: ended.error,
            input,
            attempt: ended.attempt,
            started_at: ended.started_at,
            finished_at: self.now(),
            duration_ms: ended.started.elapsed().as_millis() as i64,
        }
    }

    fn stored_input(&self, input: &Value) -> Value {
        match self.engine.registry.get(&self.task().action.value) {
            Some(spec) => self.redactor.params(&spec.params, input),
            None => self.redactor.redact(input),
        }
    }

    /// Waits, unless cancelled first (then false).
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.cancel.cancelled() => false,
        }
    }

    /// One call of the action, bounded by the task's timeout and the execution's cancel.
    async fn call(
        &self,
        input: &Value,
        item: Option<usize>,
        attempt: u32,
    ) -> Result<Value, ActionError> {
        let task = self.task();
        let Some(action) = self.engine.registry.action(&task.action.value) else {
            return Err(ActionError::failed(format!(
                "action `{}` is registered for validation only and cannot run here",
                task.action.value
            )));
        };
        let attempt_cancel = self.cancel.child_token();
        let cx = ActionContext {
            execution_id: self.exec_id.clone(),
            task: task.name.clone(),
            item_index: item,
            attempt,
            org: self.org.clone(),
            cancel: attempt_cancel.clone(),
            clock: self.engine.clock.clone(),
            workflows: self.engine.sub_workflows(),
            integrations: self.integrations.clone(),
            integration_override: task
                .integration
                .clone()
                .or_else(|| self.trigger_integration.clone()),
        };
        let mut call = action.call(cx, input.clone());
        let deadline = async {
            match task.timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        // On a timeout or a cancel the action is told to stop and given a moment to wind
        // down (a sub-workflow marks itself cancelled), rather than dropped mid-write.
        let outcome = tokio::select! {
            r = &mut call => r,
            () = deadline => {
                attempt_cancel.cancel();
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut call).await;
                let limit = task.timeout.unwrap_or_default();
                Err(ActionError {
                    kind: ActionErrorKind::Timeout,
                    message: format!("task `{}` timed out after {}", task.name, human(limit)),
                    data: None,
                })
            }
            () = self.cancel.cancelled() => {
                attempt_cancel.cancel();
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut call).await;
                Err(cancelled())
            }
        };
        attempt_cancel.cancel();
        if self.cancel.is_cancelled()
            && outcome
                .as_ref()
                .is_err_and(|e| e.kind != ActionErrorKind::Timeout)
        {
            return Err(cancelled());
        }
        outcome.map_err(|e| ActionError {
            message: self.redactor.redact_str(&e.message),
            data: e.data.map(|d| self.redactor.redact(&d)),
            ..e
        })
    }

    /// Attempts with retries. Returns the status, result, error and deciding attempt.
    async fn attempts(&self, input: &Value, stored: &Value, item: Option<usize>) -> Attempted {
        let task = self.task();
        let mut attempt = self.first_attempt;
        let mut retries_left = task.retry.as_ref().map_or(0, |r| r.count);
        let mut delay = task.retry.as_ref().map_or(Duration::ZERO, |r| r.delay);
        loop {
            let attempt_started = Instant::now();
            let attempt_started_at = self.now();
            let done = |status, result, error| Attempted {
                status,
                result,
                error,
                attempt: i64::from(attempt),
                started_at: attempt_started_at.clone(),
                started: attempt_started,
            };
            match self.call(input, item, attempt).await {
                Ok(v) => return done(TaskStatus::Succeeded, self.redactor.redact(&v), None),
                Err(e) if e.kind == ActionErrorKind::Cancelled => {
                    return done(TaskStatus::Cancelled, Value::Null, Some(e));
                }
                Err(e) => {
                    let retry = retries_left > 0
                        && e.kind != ActionErrorKind::InvalidParams
                        && self.retry_when(&e);
                    if !retry {
                        return done(TaskStatus::Failed, Value::Null, Some(e));
                    }
                    // This attempt is history.
                    let failed = TaskRun {
                        execution_id: self.exec_id.clone(),
                        task: task.name.clone(),
                        item: item.map_or(-1, |i| i as i64),
                        attempt: i64::from(attempt),
                        status: TaskStatus::Failed,
                        seq: None,
                        input: Some(stored.clone()),
                        result: None,
                        error: Some(e.to_json()),
                        routes: None,
                        publish: None,
                        reused: false,
                        started_at: Some(attempt_started_at.clone()),
                        finished_at: Some(self.now()),
                        duration_ms: Some(attempt_started.elapsed().as_millis() as i64),
                    };
                    let next = TaskRun {
                        attempt: i64::from(attempt) + 1,
                        status: TaskStatus::Running,
                        error: None,
                        finished_at: None,
                        duration_ms: None,
                        ..failed.clone()
                    };
                    if let Err(err) = self.engine.store.record_task_runs(&[failed]).await {
                        tracing::warn!(error = %err, "cannot record a failed attempt");
                    }
                    tracing::info!(task = %task.name, attempt, error = %e.message, "retrying after {}", human(delay));
                    if !self.sleep(delay).await {
                        return done(TaskStatus::Cancelled, Value::Null, Some(cancelled()));
                    }
                    // The next attempt is running from now.
                    let next = TaskRun {
                        started_at: Some(self.now()),
                        ..next
                    };
                    if let Err(err) = self.engine.store.record_task_runs(&[next]).await {
                        tracing::warn!(error = %err, "cannot record a retry");
                    }
                    let retry = task
                        .retry
                        .as_ref()
                        .expect("retrying implies a retry policy");
                    let next_delay = delay.mul_f64(retry.backoff);
                    delay = retry.max_delay.map_or(next_delay, |m| next_delay.min(m));
                    retries_left -= 1;
                    attempt += 1;
                }
            }
        }
    }

    /// Does `retry.when` allow another attempt after this error?
    fn retry_when(&self, e: &ActionError) -> bool {
        let Some(when) = self.task().retry.as_ref().and_then(|r| r.when.as_ref()) else {
            return true;
        };
        let err = e.to_json();
        let ctx = self.render_ctx(Extra {
            result: Some(&err),
            status: Some("failed"),
            item: None,
        });
        match when.render_value(&ctx) {
            Ok(v) => v.is_true(),
            Err(render) => {
                tracing::warn!(task = %self.task().name, error = %render, "retry.when failed to render; not retrying");
                false
            }
        }
    }

    async fn run_items(self, with: &WithItems, started: Instant, started_at: String) -> Finished {
        let ctx = self.render_ctx(Extra::default());
        let items = match render_items(&with.items, &ctx) {
            Ok(items) => items,
            Err(message) => {
                let e = ActionError {
                    kind: ActionErrorKind::InvalidParams,
                    message: format!("task `{}`: with.items: {message}", self.task().name),
                    data: None,
                };
                return self.finish(
                    Attempted {
                        status: TaskStatus::Failed,
                        result: Value::Null,
                        error: Some(e),
                        attempt: 0,
                        started,
                        started_at,
                    },
                    None,
                );
            }
        };
        let job = Arc::new(self);
        let limit = with.concurrency.unwrap_or(WithItems::DEFAULT_CONCURRENCY) as usize;
        let permits = Arc::new(Semaphore::new(limit.max(1)));
        let mut set = JoinSet::new();
        let mut outcomes: BTreeMap<usize, ItemOutcome> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(done) = job
                .done_items
                .get(&i)
                .filter(|d| d.status == TaskStatus::Succeeded)
            {
                outcomes.insert(i, done.clone());
                continue;
            }
            let (job, permits, item) = (job.clone(), permits.clone(), item.clone());
            set.spawn(async move {
                let _permit = permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                let outcome = job.run_item(i, &item).await;
                (i, outcome)
            });
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, o)) => {
                    outcomes.insert(i, o);
                }
                Err(e) => tracing::error!(error = %e, "an item panicked"),
            }
        }
        let results: Vec<Value> = (0..items.len())
            .map(|i| outcomes.get(&i).map_or(Value::Null, |o| o.result.clone()))
            .collect();
        let failed: Vec<usize> = (0..items.len())
            .filter(|i| {
                outcomes
                    .get(i)
                    .is_none_or(|o| o.status != TaskStatus::Succeeded)
            })
            .collect();
        let cancelled_any = outcomes.values().any(|o| o.status == TaskStatus::Cancelled);
        let job =
            Arc::try_unwrap(job).unwrap_or_else(|_| unreachable!("every item task has finished"));
        if cancelled_any && job.cancel.is_cancelled() {
            return job.finish(
                Attempted {
                    status: TaskStatus::Cancelled,
                    result: Value::Array(results),
                    error: Some(cancelled()),
                    attempt: 0,
                    started,
                    started_at,
                },
                None,
            );
        }
        if failed.is_empty() {
            return job.finish(
                Attempted {
                    status: TaskStatus::Succeeded,
                    result: Value::Array(results),
                    error: None,
                    attempt: 0,
                    started,
                    started_at,
                },
                None,
            );
        }
        let first = failed
            .first()
            .and_then(|i| outcomes.get(i))
            .and_then(|o| o.error.clone())
            .and_then(|e| e.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let errors: Vec<Value> = failed
            .iter()
            .map(|i| json!({"item": i, "error": outcomes.get(i).and_then(|o| o.error.clone())}))
            .collect();
        let e = ActionError::failed(format!(
            "{} of {} items failed; first: {first}",
            failed.len(),
            items.len()
        ))
        .with_data(json!({"failed_items": failed, "errors": errors}));
        job.finish(
            Attempted {
                status: TaskStatus::Failed,
                result: Value::Array(results),
                error: Some(e),
                attempt: 0,
                started,
                started_at,
            },
            None,
        )
    }

    async fn run_item(&self, i: usize, item: &Value) -> ItemOutcome {
        let switched = match &self.task().run_as_org {
            Some(target) => {
                let mut own = self.clone();
                own.switch_org(target, Some(item)).await.map(|()| Some(own))
            }
            None => Ok(None),
        };
        let job = match &switched {
            Ok(Some(own)) => own,
            _ => self,
        };
        let prepared = match &switched {
            Ok(_) => job.render_input(Some(item)),
            Err(e) => Err(e.clone()),
        };
        let (input, stored, a) = match prepared {
            Ok(input) => {
                let stored = job.stored_input(&input);
                let a = job.attempts(&input, &stored, Some(i)).await;
                (Some(input), Some(stored), a)
            }
            Err(e) => (
                None,
                None,
                Attempted {
                    status: TaskStatus::Failed,
                    result: Value::Null,
                    error: Some(e),
                    attempt: i64::from(self.first_attempt),
                    started_at: self.now(),
                    started: Instant::now(),
                },
            ),
        };
        let (status, result, error, attempt) = (a.status, a.result, a.error, a.attempt);
        let (started, started_at) = (a.started, a.started_at);
        drop(input);
        let error = error.map(|e| job.redactor.redact(&e.to_json()));
        let row = TaskRun {
            execution_id: self.exec_id.clone(),
            task: self.task().name.clone(),
            item: i as i64,
            attempt,
            status,
            seq: None,
            input: stored,
            result: Some(result.clone()),
            error: error.clone(),
            routes: None,
            publish: None,
            reused: false,
            started_at: Some(started_at),
            finished_at: Some(self.now()),
            duration_ms: Some(started.elapsed().as_millis() as i64),
        };
        if let Err(e) = self.engine.store.record_task_runs(&[row]).await {
            tracing::warn!(error = %e, "cannot record an item");
        }
        ItemOutcome {
            status,
            result,
            error,
        }
    }
}

fn render_items(items: &Templated, ctx: &minijinja::Value) -> Result<Vec<Value>, String> {
    match items.render(ctx).map_err(|e| e.to_string())? {
        Value::Array(v) => Ok(v),
        Value::Null => Ok(Vec::new()),
        other => Err(format!(
            "must give a list, got {}",
            match other {
                Value::Object(_) => "a mapping (use `| dict2items` or `.values()`)".to_string(),
                v => v.to_string(),
            }
        )),
    }
}

pub(crate) fn cancelled() -> ActionError {
    ActionError {
        kind: ActionErrorKind::Cancelled,
        message: "cancelled".into(),
        data: None,
    }
}

/// `1.5s`, `2m`, `250ms`.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
