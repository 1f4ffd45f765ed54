//! `core.*`: control-flow and testing actions.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use weft_engine::{ActionContext, ActionError, Registry, TypedAction};

use crate::cancelled;
use crate::params::{DurationParam, format_duration};

pub(crate) fn register(r: &mut Registry) {
    r.register(Noop);
    r.register(Echo);
    r.register(Fail);
    r.register(Sleep);
    r.register(Mock);
    r.register(RunWorkflow);
}

/// Waits `d`, or fails with [`ActionErrorKind::Cancelled`](weft_engine::ActionErrorKind)
/// as soon as the execution is cancelled.
async fn wait(cx: &ActionContext, d: std::time::Duration, action: &str) -> Result<(), ActionError> {
    tokio::select! {
        biased;
        () = cx.cancel.cancelled() => Err(cancelled(format!("{action} cancelled while waiting"))),
        () = tokio::time::sleep(d) => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// core.noop

/// `core.noop` takes no parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoopParams {}

/// `core.noop`: does nothing; the result is `null`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

impl TypedAction for Noop {
    const NAME: &'static str = "core.noop";
    const LOCAL: bool = true;
    const DESCRIPTION: &'static str = "Does nothing and succeeds; a start, end or junction point.";
    type Params = NoopParams;

    async fn run(&self, _cx: ActionContext, _params: NoopParams) -> Result<Value, ActionError> {
        Ok(Value::Null)
    }
}

// ---------------------------------------------------------------------------------------------
// core.echo

/// `core.echo` returns its input unchanged (any parameters).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct EchoParams {
    /// Anything: the task's result is exactly its input.
    pub values: Map<String, Value>,
}

/// `core.echo`: the result is the task's input object.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl TypedAction for Echo {
    const NAME: &'static str = "core.echo";
    const LOCAL: bool = true;
    const DESCRIPTION: &'static str = "Returns its input as its result.";
    type Params = EchoParams;

    async fn run(&self, _cx: ActionContext, params: EchoParams) -> Result<Value, ActionError> {
        Ok(Value::Object(params.values))
    }
}

// ---------------------------------------------------------------------------------------------
// core.fail

/// Parameters of `core.fail`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailParams {
    /// The error message the task fails with.
    #[serde(default = "default_fail_message")]
    pub message: String,
}

fn default_fail_message() -> String {
    "failed by core.fail".into()
}

/// `core.fail`: always fails, with `message`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fail;

impl TypedAction for Fail {
    const NAME: &'static str = "core.fail";
    const LOCAL: bool = true;
    const DESCRIPTION: &'static str = "Fails with the given message.";
    type Params = FailParams;

    async fn run(&self, _cx: ActionContext, params: FailParams) -> Result<Value, ActionError> {
        Err(ActionError::failed(params.message))
    }
}

// ---------------------------------------------------------------------------------------------
// core.sleep

/// Parameters of `core.sleep`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepParams {
    /// How long to wait: `500ms`, `30s`, `5m`, `1h30m`, or a number of seconds.
    pub duration: DurationParam,
}

/// `core.sleep`: waits, then returns `{"slept_ms": N}`; cancellable.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

impl TypedAction for Sleep {
    const NAME: &'static str = "core.sleep";
    const LOCAL: bool = true;
    const DESCRIPTION: &'static str = "Waits for a duration, then succeeds.";
    type Params = SleepParams;

    async fn run(&self, cx: ActionContext, params: SleepParams) -> Result<Value, ActionError> {
        let d = params.duration.0;
        wait(&cx, d, Self::NAME).await.map_err(|mut e| {
            e.message = format!("core.sleep {} cancelled", format_duration(d));
            e
        })?;
        Ok(json!({ "slept_ms": u64::try_from(d.as_millis()).unwrap_or(u64::MAX) }))
    }
}

// ---------------------------------------------------------------------------------------------
// core.mock

/// Parameters of `core.mock`: stands in for a real action while a workflow is built or tested.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MockParams {
    /// The result the task returns.
    #[serde(default)]
    pub result: Value,
    /// When set, the task fails with this message instead.
    pub error: Option<String>,
    /// Wait this long first (`200ms`, `2s`, or a number of seconds), to imitate a slow call.
    pub delay: Option<DurationParam>,
}

/// `core.mock`: optionally waits, then returns `result` or fails with `error`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mock;

impl TypedAction for Mock {
    const NAME: &'static str = "core.mock";
    const LOCAL: bool = true;
    const DESCRIPTION: &'static str =
        "Returns a configured result (or error) without touching any real system.";
    type Params = MockParams;

    async fn run(&self, cx: ActionContext, params: MockParams) -> Result<Value, ActionError> {
        if let Some(delay) = params.delay {
            wait(&cx, delay.0, Self::NAME).await?;
        }
        match params.error {
            Some(message) => Err(ActionError::failed(message)),
            None => Ok(params.result),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// core.workflow

/// Parameters of `core.workflow`: run another workflow as a sub-workflow.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowParams {
    /// Name of the workflow to run (deployed, or in the same folder as the parent's file).
    pub workflow: String,
    /// The sub-workflow's inputs.
    #[serde(default)]
    pub input: Map<String, Value>,
}

/// `core.workflow`: runs a child workflow through [`ActionContext::workflows`]; its output
/// is the result, its error the task's error.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunWorkflow;

impl TypedAction for RunWorkflow {
    const NAME: &'static str = "core.workflow";
    const LOCAL: bool = true;
    const DESCRIPTION: &'static str = "Runs another workflow; its output is this task's result.";
    type Params = WorkflowParams;

    async fn run(&self, cx: ActionContext, params: WorkflowParams) -> Result<Value, ActionError> {
        cx.workflows
            .run_child(&cx, &params.workflow, Value::Object(params.input))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use serde_json::json;
    use weft_engine::ActionErrorKind;
    use weft_engine::action::{BoxFuture, SubWorkflows};

    use super::*;
    use crate::test_support::{context, context_with};

    async fn call(name: &str, params: Value) -> Result<Value, ActionError> {
        call_in(context(), name, params).await
    }

    async fn call_in(cx: ActionContext, name: &str, params: Value) -> Result<Value, ActionError> {
        let action = crate::registry().action(name).expect("registered");
        action.call(cx, params).await
    }

    #[tokio::test]
    async fn noop_returns_null_and_takes_no_parameters() {
        assert_eq!(call("core.noop", json!({})).await.unwrap(), Value::Null);
        let err = call("core.noop", json!({"x": 1})).await.unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams);
        assert!(err.message.contains("core.noop"), "{}", err.message);
    }

    #[tokio::test]
    async fn echo_returns_its_input_unchanged() {
        let input = json!({"z": 1, "a": [true, null, {"b": "c"}], "m": 1.5});
        let out = call("core.echo", input.clone()).await.unwrap();
        assert_eq!(out, input);
        // Key order is kept too.
        assert_eq!(out.to_string(), input.to_string());
        assert_eq!(call("core.echo", json!({})).await.unwrap(), json!({}));
    }

    #[tokio::test]
    async fn fail_fails_with_its_message() {
        let err = call("core.fail", json!({"message": "boom"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::Failed);
        assert_eq!(err.message, "boom");
        let err = call("core.fail", json!({})).await.unwrap_err();
        assert_eq!(err.message, "failed by core.fail");
    }

    #[tokio::test]
    async fn sleep_waits_and_reports_how_long() {
        let start = Instant::now();
        let out = call("core.sleep", json!({"duration": "50ms"}))
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(out, json!({"slept_ms": 50}));
        let out = call("core.sleep", json!({"duration": 0})).await.unwrap();
        assert_eq!(out, json!({"slept_ms": 0}));
        let out = call("core.sleep", json!({"duration": 0.02})).await.unwrap();
        assert_eq!(out, json!({"slept_ms": 20}));
    }

    #[tokio::test]
    async fn sleep_rejects_a_bad_duration() {
        let err = call("core.sleep", json!({"duration": "5 minutes"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams);
        assert!(err.message.contains("5 minutes"), "{}", err.message);
        let err = call("core.sleep", json!({})).await.unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams);
        assert!(err.message.contains("duration"), "{}", err.message);
    }

    #[tokio::test]
    async fn sleep_stops_early_when_cancelled() {
        let cx = context();
        let cancel = cx.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            cancel.cancel();
        });
        let start = Instant::now();
        let err = call_in(cx, "core.sleep", json!({"duration": "30s"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::Cancelled);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(err.message.contains("cancelled"), "{}", err.message);
    }

    #[tokio::test]
    async fn mock_returns_its_result_or_error() {
        let out = call("core.mock", json!({"result": {"id": 7}}))
            .await
            .unwrap();
        assert_eq!(out, json!({"id": 7}));
        assert_eq!(call("core.mock", json!({})).await.unwrap(), Value::Null);
        let err = call("core.mock", json!({"result": 1, "error": "API down"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::Failed);
        assert_eq!(err.message, "API down");
    }

    #[tokio::test]
    async fn mock_delay_waits_and_is_cancellable() {
        let start = Instant::now();
        let out = call("core.mock", json!({"result": "ok", "delay": "40ms"}))
            .await
            .unwrap();
        assert_eq!(out, json!("ok"));
        assert!(start.elapsed() >= Duration::from_millis(40));

        let cx = context();
        cx.cancel.cancel();
        let start = Instant::now();
        let err = call_in(cx, "core.mock", json!({"result": "ok", "delay": "30s"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::Cancelled);
        assert!(start.elapsed() < Duration::from_secs(5));

        let err = call("core.mock", json!({"delay": "soon"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams);
    }

    /// Records each call and answers with a canned output.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<(String, String, Value)>>,
    }

    impl SubWorkflows for Recorder {
        fn run_child<'a>(
            &'a self,
            parent: &'a ActionContext,
            workflow: &'a str,
            input: Value,
        ) -> BoxFuture<'a, Result<Value, ActionError>> {
            Box::pin(async move {
                self.calls.lock().unwrap().push((
                    parent.execution_id.clone(),
                    workflow.to_string(),
                    input.clone(),
                ));
                if workflow == "broken" {
                    return Err(ActionError::failed("child failed").with_data(json!({"task": "x"})));
                }
                Ok(json!({"child_output": input}))
            })
        }
    }

    #[tokio::test]
    async fn workflow_runs_the_child_through_the_seam() {
        let rec = Arc::new(Recorder::default());
        let cx = context_with(rec.clone());
        let out = call_in(
            cx.clone(),
            "core.workflow",
            json!({"workflow": "notify-teams", "input": {"text": "hi", "n": 2}}),
        )
        .await
        .unwrap();
        assert_eq!(out, json!({"child_output": {"text": "hi", "n": 2}}));

        // Input defaults to an empty object.
        call_in(cx.clone(), "core.workflow", json!({"workflow": "other"}))
            .await
            .unwrap();

        // The child's error is the task's error.
        let err = call_in(cx.clone(), "core.workflow", json!({"workflow": "broken"}))
            .await
            .unwrap_err();
        assert_eq!(err.message, "child failed");
        assert_eq!(err.data, Some(json!({"task": "x"})));

        let calls = rec.calls.lock().unwrap();
        assert_eq!(
            *calls,
            vec![
                (
                    cx.execution_id.clone(),
                    "notify-teams".to_string(),
                    json!({"text": "hi", "n": 2})
                ),
                (cx.execution_id.clone(), "other".to_string(), json!({})),
                (cx.execution_id.clone(), "broken".to_string(), json!({})),
            ]
        );
    }

    #[tokio::test]
    async fn workflow_needs_a_name() {
        let err = call("core.workflow", json!({"input": {}}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ActionErrorKind::InvalidParams);
        assert!(err.message.contains("workflow"), "{}", err.message);
    }
}
