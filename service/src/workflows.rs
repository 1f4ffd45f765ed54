//! Workflow use cases: deploying, validating and listing workflows.
//!
//! Deploying is one rule for `weft deploy`, `weft serve --workflows` and `POST /api/workflows`:
//! an invalid workflow is refused with its diagnostics and nothing is stored; a valid one is
//! stored as a new version (or left as is when it equals the latest), and the secrets its
//! webhook triggers still miss are issued for the orgs they run for — answered once, here
//! (later: `weft trigger secret`, `GET /api/triggers/{workflow}/{trigger}/secrets/{org}`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_engine::Workflow;
use weft_engine::executor::Engine;
use weft_engine::registry::Registry;
use weft_engine::store::{Store, WorkflowRecord};
use weft_triggers::webhook_access;

/// A webhook secret issued by a deploy (shown once).
pub use weft_triggers::webhook_access::IssuedSecret;

use crate::ServiceError;

/// A validation finding, as `weft validate --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Diagnostic {
    /// The file (`request` for the API).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// `error` or `warning`.
    pub severity: String,
    /// A stable code, e.g. `route.unknown_task`.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// Is it an error (not a warning)?
    pub fn is_error(&self) -> bool {
        self.severity == "error"
    }
}

/// The findings of `loaded`, located in `file`.
fn diagnostics(loaded: &weft_engine::Loaded, file: &str) -> Vec<Diagnostic> {
    located(&loaded.diagnostics, file)
}

/// Engine findings located in `file`.
pub(crate) fn located(found: &[weft_engine::Diagnostic], file: &str) -> Vec<Diagnostic> {
    found
        .iter()
        .map(|d| Diagnostic {
            file: file.to_string(),
            line: d.span.line,
            column: d.span.column,
            severity: if d.is_error() { "error" } else { "warning" }.into(),
            code: d.code.to_string(),
            message: d.message.clone(),
            help: d.help.clone(),
        })
        .collect()
}

/// Validates a workflow's YAML without deploying it: every finding (empty when valid).
pub fn validate(registry: &Registry, source: &str, file: &str) -> Vec<Diagnostic> {
    diagnostics(&weft_engine::load(source, registry), file)
}

/// A deployed workflow (its latest version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowSummary {
    /// Its name.
    pub name: String,
    /// Deployed version, from 1.
    pub version: i64,
    /// The file it was deployed from, if any.
    pub path: Option<String>,
    /// When this version was deployed.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<WorkflowRecord> for WorkflowSummary {
    fn from(r: WorkflowRecord) -> Self {
        WorkflowSummary {
            name: r.name,
            version: r.version,
            path: r.path,
            created_at: r.created_at,
        }
    }
}

/// The deployed workflows (latest versions).
///
/// # Errors
/// Store failures.
pub async fn list(store: &dyn Store) -> Result<Vec<WorkflowSummary>, ServiceError> {
    Ok(store
        .list_workflows()
        .await?
        .into_iter()
        .map(WorkflowSummary::from)
        .collect())
}

/// The latest deployed version of `name`.
///
/// # Errors
/// Not found: it is not deployed; store failures.
pub async fn latest(store: &dyn Store, name: &str) -> Result<WorkflowRecord, ServiceError> {
    store.workflow(name, None).await.map_err(|e| {
        if crate::triggers::is_not_found(&e) {
            ServiceError::not_found(format!(
                "no workflow named `{name}` is deployed (weft deploy FILE)"
            ))
        } else {
            e.into()
        }
    })
}

/// A workflow refused by [`deploy`]: it does not validate.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// `the workflow is invalid: N error(s)`.
    pub message: String,
    /// Every finding.
    pub diagnostics: Vec<Diagnostic>,
}

/// Why [`deploy`] did not deploy.
#[derive(Debug)]
pub enum DeployError {
    /// The workflow does not validate; nothing was stored.
    Invalid(Invalid),
    /// Storing it or issuing its secrets failed.
    Failed(ServiceError),
}

impl From<ServiceError> for DeployError {
    fn from(e: ServiceError) -> Self {
        DeployError::Failed(e)
    }
}

impl std::fmt::Display for DeployError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeployError::Invalid(i) => f.write_str(&i.message),
            DeployError::Failed(e) => e.fmt(f),
        }
    }
}

/// What [`deploy`] did.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The stored version (the latest when the source is unchanged).
    pub record: WorkflowRecord,
    /// It, parsed.
    pub workflow: Arc<Workflow>,
    /// The warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// The source equals the latest version's: nothing new was stored.
    pub unchanged: bool,
    /// The webhook secrets issued now (shown once).
    pub secrets_issued: Vec<IssuedSecret>,
}

/// Deploys a workflow's YAML (`path`: the file it comes from, for the record and the
/// diagnostics; none: `request`). See the [module documentation](self).
///
/// # Errors
/// [`DeployError::Invalid`] with the diagnostics; store and key failures.
pub async fn deploy(
    engine: &Engine,
    source: &str,
    path: Option<&str>,
) -> Result<Deployment, DeployError> {
    let loaded = weft_engine::load(source, engine.registry());
    let diagnostics = diagnostics(&loaded, path.unwrap_or("request"));
    let Some(wf) = loaded.workflow else {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        return Err(DeployError::Invalid(Invalid {
            message: format!("the workflow is invalid: {errors} error(s)"),
            diagnostics,
        }));
    };
    let before = match engine.store().workflow(&wf.name, None).await {
        Ok(r) => Some(r.id),
        Err(e) if crate::triggers::is_not_found(&e) => None,
        Err(e) => return Err(ServiceError::from(e).into()),
    };
    let record = engine
        .deploy(source, path)
        .await
        .map_err(ServiceError::from)?;
    let secrets_issued = webhook_access::issue_missing(engine, &wf)
        .await
        .map_err(ServiceError::from)?;
    Ok(Deployment {
        unchanged: before == Some(record.id),
        record,
        workflow: Arc::new(wf),
        diagnostics,
        secrets_issued,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const CRON: &str = "name: nightly\ntriggers:\n  - name: tick\n    type: cron\n    schedule: \"30 2 * * *\"\n    timezone: America/Chicago\n  - name: hook\n    type: webhook\n    secret: none\ntasks:\n  a:\n    action: core.noop\n";

    async fn engine() -> Arc<Engine> {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        Engine::new(store, Arc::new(weft_actions::registry()))
    }

    #[tokio::test]
    async fn an_invalid_workflow_is_refused_with_its_diagnostics_and_nothing_is_stored() {
        let engine = engine().await;
        let bad =
            "name: broken\ntasks:\n  a:\n    action: core.noop\n    next:\n      - do: nowhere\n";
        let Err(DeployError::Invalid(invalid)) = deploy(&engine, bad, None).await else {
            panic!("deployed an invalid workflow");
        };
        assert_eq!(invalid.message, "the workflow is invalid: 1 error(s)");
        assert_eq!(invalid.diagnostics[0].code, "route.unknown_task");
        assert_eq!(invalid.diagnostics[0].file, "request");
        assert!(list(engine.store().as_ref()).await.unwrap().is_empty());
        let e = latest(engine.store().as_ref(), "broken").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_workflow_is_deployed_once_and_its_triggers_switched_and_fired() {
        use crate::triggers;
        let engine = engine().await;
        let first = deploy(&engine, CRON, Some("n.yaml")).await.unwrap();
        assert!(!first.unchanged);
        let again = deploy(&engine, CRON, Some("n.yaml")).await.unwrap();
        assert!(again.unchanged);
        assert_eq!(again.record.version, 1);

        let listed = triggers::list(&engine, "http://x").await.unwrap();
        let tick = listed.iter().find(|t| t.name == "tick").unwrap();
        assert_eq!((tick.kind.as_str(), tick.enabled), ("cron", true));
        assert_eq!(tick.timezone.as_deref(), Some("America/Chicago"));
        assert!(tick.next_at.as_ref().is_some_and(Option::is_some));
        let hook = listed.iter().find(|t| t.name == "hook").unwrap();
        assert_eq!(hook.url.as_deref(), Some("http://x/hooks/hook/{org}"));
        let json = serde_json::to_value(hook).unwrap();
        assert!(json.get("next_at").is_none() && json.get("next_local").is_none());

        let off = triggers::switch(&engine, "nightly", "tick", false, "")
            .await
            .unwrap();
        assert!(!off.enabled);
        let e = triggers::switch(&engine, "nightly", "tock", true, "")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("(it has: tick, hook)"), "{e}");

        let e = triggers::fire(&engine, "nightly", "hook")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let fired = triggers::fire(&engine, "nightly", "tick").await.unwrap();
        assert_eq!(fired.executions.len(), 1, "{fired:?}");
        let events = triggers::events(&engine, "nightly", "tick", 0)
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        let e = triggers::secret(&engine, "nightly", "hook", "acme", "")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(triggers::parse_grace("soon").is_err());
    }
}
