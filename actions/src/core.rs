//! `core.*`: control-flow and testing actions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use weft_engine::Registry;

use crate::spec;

/// `core.noop` takes no parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoopParams {}

/// `core.echo` returns its input unchanged (any parameters).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoParams {
    /// Anything: the task's result is exactly its input.
    #[serde(flatten)]
    pub values: BTreeMap<String, serde_json::Value>,
}

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

/// Parameters of `core.sleep`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepParams {
    /// How long to wait: `500ms`, `30s`, `5m`, or a number of seconds.
    pub duration: serde_json::Value,
}

/// Parameters of `core.mock`: stands in for a real action while a workflow is built or tested.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MockParams {
    /// The result the task returns.
    #[serde(default)]
    pub result: serde_json::Value,
    /// When set, the task fails with this message instead.
    #[serde(default)]
    pub error: Option<String>,
    /// Wait this long first (`200ms`, `2s`), to imitate a slow call.
    #[serde(default)]
    pub delay: Option<String>,
}

/// Parameters of `core.workflow`: run another workflow as a sub-workflow.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowParams {
    /// Name of the workflow to run (deployed, or in the same folder as the parent's file).
    pub workflow: String,
    /// The sub-workflow's inputs.
    #[serde(default)]
    pub input: BTreeMap<String, serde_json::Value>,
}

pub(crate) fn register(r: &mut Registry) {
    r.register_spec(spec::<NoopParams>(
        "core.noop",
        "Does nothing and succeeds; a start, end or junction point.",
    ));
    r.register_spec(spec::<EchoParams>(
        "core.echo",
        "Returns its input as its result.",
    ));
    r.register_spec(spec::<FailParams>(
        "core.fail",
        "Fails with the given message.",
    ));
    r.register_spec(spec::<SleepParams>(
        "core.sleep",
        "Waits for a duration, then succeeds.",
    ));
    r.register_spec(spec::<MockParams>(
        "core.mock",
        "Returns a configured result (or error) without touching any real system.",
    ));
    r.register_spec(spec::<WorkflowParams>(
        "core.workflow",
        "Runs another workflow; its output is this task's result.",
    ));
}
