//! The actions a case runs with: each registered action stands behind a double that answers
//! from the case's mocks, runs the real action when the case may (a local action, or one the
//! case allows), and otherwise fails the call and the case. Every call is written down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use weft_engine::action::BoxFuture;
use weft_engine::store::Store;
use weft_engine::{Action, ActionContext, ActionError, ActionErrorKind, ActionSpec, Registry};

use super::file::{Mock, MockTarget, Reply, Step, When};
use super::held_store::holding;

/// One call an action received in a case.
#[derive(Debug, Clone)]
pub struct Call {
    /// The execution (the case's, or a sub-workflow's).
    pub execution_id: String,
    /// The workflow of that execution.
    pub workflow: String,
    /// The calling task.
    pub task: String,
    /// The `with.items` index.
    pub item: Option<usize>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The action.
    pub action: String,
    /// The rendered input, as the action received it.
    pub input: Value,
}

/// The mocks of one case and what its actions were asked.
pub struct CaseActions {
    mocks: Vec<Mock>,
    allow: Vec<String>,
    store: Arc<dyn Store>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// Why the case fails whatever it expects (an unmocked call).
    problems: Vec<String>,
    /// Calls answered so far per (mock, execution, task, item): which answer comes next.
    answered: HashMap<(usize, String, String, Option<usize>), usize>,
    workflows: HashMap<String, String>,
}

impl CaseActions {
    /// The actions of a case with `mocks` (first match wins) that may call `allow`ed actions
    /// for real; `store` names the workflow of each execution.
    pub fn new(mocks: Vec<Mock>, allow: Vec<String>, store: Arc<dyn Store>) -> Arc<CaseActions> {
        Arc::new(CaseActions {
            mocks,
            allow,
            store,
            state: Mutex::default(),
        })
    }

    /// Every call, in the order they were made.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Why the case fails whatever it expects.
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn allowed(&self, action: &str) -> bool {
        self.allow.iter().any(|pattern| glob(pattern, action))
    }

    async fn workflow_of(&self, execution_id: &str) -> String {
        if let Some(w) = self.lock().workflows.get(execution_id) {
            return w.clone();
        }
        let name = self
            .store
            .execution(execution_id)
            .await
            .map(|e| e.workflow_name)
            .unwrap_or_default();
        self.lock()
            .workflows
            .insert(execution_id.to_string(), name.clone());
        name
    }

    /// The first mock for this call, by its index.
    fn find(&self, call: &Call) -> Result<Option<usize>, String> {
        for (i, m) in self.mocks.iter().enumerate() {
            let aimed = match &m.target {
                MockTarget::Task(t) => *t == call.task,
                MockTarget::Action(a) => *a == call.action,
            };
            if !aimed || m.workflow.as_ref().is_some_and(|w| *w != call.workflow) {
                continue;
            }
            if matches(m.when.as_ref(), call)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// The mock's next answer for this call.
    fn answer(&self, index: usize, call: &Call) -> (Reply, Step) {
        let mock = &self.mocks[index];
        let reply = call
            .item
            .and_then(|i| mock.items.get(i))
            .unwrap_or(&mock.reply)
            .clone();
        let mut state = self.lock();
        let n = state
            .answered
            .entry((
                index,
                call.execution_id.clone(),
                call.task.clone(),
                call.item,
            ))
            .or_insert(0);
        let step = reply
            .steps
            .get(*n)
            .or(reply.steps.last())
            .cloned()
            .unwrap_or(Step::Result(Value::Null));
        *n += 1;
        (reply, step)
    }
}

/// `core.*` matches `core.echo`; `*` matches everything; anything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn matches(when: Option<&When>, call: &Call) -> Result<bool, String> {
    match when {
        None => Ok(true),
        Some(When::Subset(want)) => Ok(super::expect::includes(&call.input, want)),
        Some(When::Template(t)) => {
            let ctx = json!({
                "input": call.input,
                "task": call.task,
                "item": call.item,
                "attempt": call.attempt,
            });
            weft_engine::template::eval_condition(t, &ctx)
                .map_err(|e| format!("the mock condition `{t}` cannot be evaluated: {e}"))
        }
    }
}

/// What the real action would refuse before running: a missing required parameter, or one
/// it does not take.
fn params_problem(spec: &ActionSpec, input: &Value) -> Option<String> {
    let given = input.as_object()?;
    if let Some(missing) = spec
        .required_params()
        .into_iter()
        .find(|p| !given.contains_key(*p))
    {
        return Some(format!(
            "invalid parameters for {}: missing field `{missing}`",
            spec.name
        ));
    }
    if !spec.allows_extra_params() {
        let known = spec.param_names();
        if let Some(extra) = given.keys().find(|k| !known.contains(&k.as_str())) {
            return Some(format!(
                "invalid parameters for {}: unknown field `{extra}`",
                spec.name
            ));
        }
    }
    None
}

/// Which case is running: its mocks answer.
pub type Current = Arc<dyn Fn() -> Option<Arc<CaseActions>> + Send + Sync>;

/// Stands in for one registered action.
struct Double {
    spec: ActionSpec,
    real: Option<Arc<dyn Action>>,
    current: Current,
}

impl Action for Double {
    fn spec(&self) -> ActionSpec {
        self.spec.clone()
    }

    fn call(&self, cx: ActionContext, params: Value) -> BoxFuture<'_, Result<Value, ActionError>> {
        Box::pin(async move {
            let Some(case) = (self.current)() else {
                return Err(ActionError::failed("no test case is running"));
            };
            let workflow = case.workflow_of(&cx.execution_id).await;
            let call = Call {
                execution_id: cx.execution_id.clone(),
                workflow,
                task: cx.task.clone(),
                item: cx.item_index,
                attempt: cx.attempt,
                action: self.spec.name.clone(),
                input: params.clone(),
            };
            case.lock().calls.push(call.clone());
            let found = match case.find(&call) {
                Ok(found) => found,
                Err(why) => {
                    case.lock().problems.push(why.clone());
                    return Err(ActionError::failed(why));
                }
            };
            let Some(index) = found else {
                return self.unmocked(&case, cx, params, &call).await;
            };
            if let Some(why) = params_problem(&self.spec, &params) {
                return Err(ActionError {
                    kind: ActionErrorKind::InvalidParams,
                    message: why,
                    data: None,
                });
            }
            let (reply, step) = case.answer(index, &call);
            if let Some(delay) = reply.delay {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cx.cancel.cancelled() => {
                        return Err(ActionError {
                            kind: ActionErrorKind::Cancelled,
                            message: "cancelled".into(),
                            data: None,
                        });
                    }
                }
            }
            match step {
                Step::Result(v) => Ok(v),
                Step::Error { message, data } => Err(ActionError {
                    kind: ActionErrorKind::Failed,
                    message,
                    data,
                }),
            }
        })
    }
}

impl Double {
    async fn unmocked(
        &self,
        case: &CaseActions,
        cx: ActionContext,
        params: Value,
        call: &Call,
    ) -> Result<Value, ActionError> {
        let name = &self.spec.name;
        let real = self
            .real
            .as_ref()
            .filter(|_| self.spec.local || case.allowed(name));
        match real {
            // A local action's own waits (core.sleep) are on the paused clock; a real call
            // elsewhere takes real time, which must not let the clock jump past a timeout.
            Some(real) if self.spec.local => real.call(cx, params).await,
            Some(real) => holding(real.call(cx, params)).await,
            None => {
                let why = if self.real.is_none() && case.allowed(name) {
                    format!(
                        "task `{}` calls `{name}`, which cannot run here; mock it: `mocks: {{{}: {{result: …}}}}`",
                        call.task, call.task
                    )
                } else {
                    format!(
                        "task `{}` calls `{name}`, which this case does not mock: add `mocks: {{{}: {{result: …}}}}`, or let it run for real with `allow: [{name}]`",
                        call.task, call.task
                    )
                };
                case.lock().problems.push(why.clone());
                Err(ActionError::failed(why))
            }
        }
    }
}

/// `real` with every action behind a double answering from the `current` case.
pub fn registry(
    real: &Registry,
    current: impl Fn() -> Option<Arc<CaseActions>> + Send + Sync + 'static,
) -> Registry {
    let current: Current = Arc::new(current);
    let mut doubles = Registry::new();
    for spec in real.specs() {
        doubles.register(Double {
            spec: spec.clone(),
            real: real.action(&spec.name),
            current: current.clone(),
        });
    }
    doubles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_patterns_are_prefixes_or_names() {
        assert!(glob("core.*", "core.echo"));
        assert!(glob("*", "http.request"));
        assert!(glob("http.request", "http.request"));
        assert!(!glob("core.*", "autotask.tickets.get"));
        assert!(!glob("http.request", "http.requests"));
    }

    #[test]
    fn the_real_actions_refusals_are_kept() {
        let spec = ActionSpec {
            name: "x.y".into(),
            description: String::new(),
            params: json!({"type": "object", "properties": {"a": {}}, "required": ["a"], "additionalProperties": false}),
            local: false,
        };
        assert_eq!(params_problem(&spec, &json!({"a": 1})), None);
        assert!(
            params_problem(&spec, &json!({}))
                .unwrap()
                .contains("missing field `a`")
        );
        assert!(
            params_problem(&spec, &json!({"a": 1, "b": 2}))
                .unwrap()
                .contains("unknown field `b`")
        );
    }
}
