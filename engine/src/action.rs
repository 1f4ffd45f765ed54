//! The seam between the engine and the actions it runs.
//!
//! An action is a small type: its parameters are a serde struct whose doc comments become
//! the JSON Schema, and [`TypedAction::run`] does the work. The engine renders the task's
//! input, deserializes it into the parameters (a mismatch is a clear task failure), and calls
//! the action with an [`ActionContext`] carrying the org, the cancellation token, the clock
//! and a way to run sub-workflows.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::registry::ActionSpec;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an action failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    /// Classification.
    pub kind: ActionErrorKind,
    /// What went wrong, for people (never contains secrets).
    pub message: String,
    /// Structured details (an HTTP status and body, an API's error list…).
    pub data: Option<Value>,
}

/// Kinds of action failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionErrorKind {
    /// The rendered input does not fit the action's parameters.
    InvalidParams,
    /// The action ran and failed.
    Failed,
    /// The attempt exceeded its time limit.
    Timeout,
    /// The execution was cancelled.
    Cancelled,
}

impl ActionError {
    /// A plain failure.
    pub fn failed(message: impl Into<String>) -> Self {
        ActionError {
            kind: ActionErrorKind::Failed,
            message: message.into(),
            data: None,
        }
    }

    /// A failure with structured details.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The error as the JSON stored for the task (`TASKS.<name>.error`).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({ "message": self.message, "kind": format!("{:?}", self.kind).to_lowercase() });
        if let Some(d) = &self.data {
            v["data"] = d.clone();
        }
        v
    }
}

/// The organization a task runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRef {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// Runs a workflow as a child of the current execution (what `core.workflow` calls).
pub trait SubWorkflows: Send + Sync {
    /// Runs `workflow` with `input` and returns its output, or its error.
    fn run_child<'a>(
        &'a self,
        parent: &'a ActionContext,
        workflow: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ActionError>>;
}

/// The source of "now", replaceable in tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> jiff::Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// The wall-clock time as RFC 3339 text (`2025-01-31T09:30:00.123456789Z`), the form weft
/// stores timestamps in. Code with an engine at hand uses its [`Clock`] instead, so that tests
/// can move time.
pub fn now_rfc3339() -> String {
    SystemClock.now().to_string()
}

/// What an action gets besides its parameters.
#[derive(Clone)]
pub struct ActionContext {
    /// The execution's id.
    pub execution_id: String,
    /// The task's name.
    pub task: String,
    /// The `with.items` index, when the task loops.
    pub item_index: Option<usize>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The organization the task runs for.
    pub org: OrgRef,
    /// Cancelled when the execution is cancelled or the attempt times out.
    pub cancel: CancellationToken,
    /// The execution's clock.
    pub clock: Arc<dyn Clock>,
    /// Runs sub-workflows.
    pub workflows: Arc<dyn SubWorkflows>,
    /// Where integration instances come from.
    pub integrations: Arc<dyn crate::integration::Integrations>,
    /// The task's (or trigger's) `integration:` override.
    pub integration_override: Option<crate::model::IntegrationOverride>,
}

impl ActionContext {
    /// The integration instance of `kind` this task uses (its override, else the org's default).
    ///
    /// # Errors
    /// No such instance; the message names the org and the kind.
    pub fn integration(&self, kind: &str) -> Result<crate::integration::Integration, ActionError> {
        use crate::model::IntegrationOverride as O;
        let instance = match &self.integration_override {
            Some(O::Instance(name)) => Some(name.as_str()),
            Some(O::PerKind(map)) => map.get(kind).map(String::as_str),
            None => None,
        };
        self.integrations.resolve(kind, &self.org, instance)
    }
}

impl std::fmt::Debug for ActionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionContext")
            .field("execution_id", &self.execution_id)
            .field("task", &self.task)
            .field("item_index", &self.item_index)
            .field("attempt", &self.attempt)
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

/// An action the engine can call, object-safe.
pub trait Action: Send + Sync + 'static {
    /// Name, description and parameter schema.
    fn spec(&self) -> ActionSpec;
    /// Runs the action with rendered JSON parameters.
    fn call(&self, cx: ActionContext, params: Value) -> BoxFuture<'_, Result<Value, ActionError>>;
}

/// An action with typed parameters; implement this, the engine does the rest.
pub trait TypedAction: Send + Sync + 'static {
    /// Registered name, e.g. `core.echo`.
    const NAME: &'static str;
    /// One-line summary for `weft actions list`.
    const DESCRIPTION: &'static str;
    /// The action reaches nothing outside weft (see [`ActionSpec::local`]).
    const LOCAL: bool = false;
    /// The parameters; doc comments become the schema.
    type Params: DeserializeOwned + JsonSchema + Send;
    /// Does the work.
    fn run(
        &self,
        cx: ActionContext,
        params: Self::Params,
    ) -> impl Future<Output = Result<Value, ActionError>> + Send;
}

/// The JSON Schema of a parameter type, as stored in an [`ActionSpec`].
pub fn params_schema<P: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<P>();
    serde_json::to_value(schema).expect("schemas serialize")
}

impl<T: TypedAction> Action for T {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: T::NAME.to_string(),
            description: T::DESCRIPTION.to_string(),
            params: params_schema::<T::Params>(),
            local: T::LOCAL,
        }
    }

    fn call(&self, cx: ActionContext, params: Value) -> BoxFuture<'_, Result<Value, ActionError>> {
        Box::pin(async move {
            let params: T::Params = serde_json::from_value(params).map_err(|e| ActionError {
                kind: ActionErrorKind::InvalidParams,
                message: format!("invalid parameters for {}: {e}", T::NAME),
                data: None,
            })?;
            self.run(cx, params).await
        })
    }
}
