//! Helpers for the unit tests: an [`ActionContext`] with the system clock and a
//! sub-workflow runner that echoes its input.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use weft_engine::ActionContext;
use weft_engine::ActionError;
use weft_engine::action::{BoxFuture, OrgRef, SubWorkflows, SystemClock};

/// Runs no workflow: answers `{"workflow": name, "input": input}`.
pub struct EchoWorkflows;

impl SubWorkflows for EchoWorkflows {
    fn run_child<'a>(
        &'a self,
        _parent: &'a ActionContext,
        workflow: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move { Ok(json!({ "workflow": workflow, "input": input })) })
    }
}

/// A context for one test call.
pub fn context() -> ActionContext {
    context_with(Arc::new(EchoWorkflows))
}

/// A context whose sub-workflows go to `workflows`.
pub fn context_with(workflows: Arc<dyn SubWorkflows>) -> ActionContext {
    ActionContext {
        execution_id: "exec-test".into(),
        task: "task".into(),
        item_index: None,
        attempt: 1,
        org: OrgRef {
            id: "org-1".into(),
            name: "Test MSP".into(),
        },
        cancel: CancellationToken::new(),
        clock: Arc::new(SystemClock),
        workflows,
        integrations: Arc::new(weft_engine::integration::StaticIntegrations::default()),
        integration_override: None,
    }
}
