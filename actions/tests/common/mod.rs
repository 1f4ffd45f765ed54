//! What the action test files share: a task context with given integrations (the
//! simulator's tenant, for the Autotask ones) and calling an action by name.
#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use weft_engine::action::{BoxFuture, OrgRef, SubWorkflows, SystemClock};
use weft_engine::integration::{Integration, StaticIntegrations};
use weft_engine::{ActionContext, ActionError};
use weft_sim::RunningSim;

/// Runs no sub-workflow.
pub struct NoWorkflows;

impl SubWorkflows for NoWorkflows {
    fn run_child<'a>(
        &'a self,
        _parent: &'a ActionContext,
        _workflow: &'a str,
        _input: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async { Err(ActionError::failed("no sub-workflows here")) })
    }
}

/// An integration pointing at the simulator's discovery URL, with fast retries.
pub fn sim_integration(sim: &RunningSim) -> Integration {
    let (user, secret, code) = sim.credentials();
    Integration::new("autotask", "default")
        .with_setting("username", user)
        .with_setting("integration_code", code)
        .with_setting("discovery_url", sim.base_url.trim_end_matches('/'))
        .with_setting("backoff_base_ms", 20)
        .with_setting("max_retries", 8)
        .with_secret("secret", secret)
}

/// A task's context whose integration is `integration`.
pub fn context(integration: Integration) -> ActionContext {
    context_with(vec![integration])
}

/// A task's context with these integration instances.
pub fn context_with(integrations: Vec<Integration>) -> ActionContext {
    ActionContext {
        execution_id: "exec-autotask".into(),
        task: "task".into(),
        item_index: None,
        attempt: 1,
        org: OrgRef {
            id: "org-1".into(),
            name: "Test MSP".into(),
        },
        cancel: CancellationToken::new(),
        clock: Arc::new(SystemClock),
        workflows: Arc::new(NoWorkflows),
        integrations: Arc::new(StaticIntegrations::new(integrations)),
        integration_override: None,
    }
}

/// Calls the registered action `name` with `params`.
pub async fn call(cx: &ActionContext, name: &str, params: Value) -> Result<Value, ActionError> {
    let r = weft_actions::registry();
    let action = r
        .action(name)
        .unwrap_or_else(|| panic!("{name} is registered"));
    action.call(cx.clone(), params).await
}
