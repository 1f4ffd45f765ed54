//! The directory sync with Autotask (what Passportal does with a PSA): Companies become orgs,
//! Resources become users, Contacts, Configuration Items and Company Locations are kept in
//! weft's directory, each linked to the org of its company. `weft sync autotask …` and
//! `/api/sync/autotask/*` both call this module.
//!
//! - Companies match orgs through an existing mapping, else by identical name (case and
//!   whitespace aside); company 0 (the MSP's own) matches the synced root org. The first
//!   apply creates every company the preview lists (a child org of the synced org) unless it
//!   is excluded; later runs create new companies only when auto-create clients is on (else
//!   they wait as `pending` in the directory). The same goes for users (auto-create users)
//!   and configuration items (auto-create configurations); contacts and locations of synced
//!   companies are always imported.
//! - Exclusions (`autotask` for companies, `autotask.resource` for users) are remembered.
//! - Records deactivated in (or gone from) the PSA are marked inactive, never deleted; the org
//!   of a deactivated company becomes inactive.
//! - A run with no PSA change changes nothing: records are saved only when their data
//!   changed.
//! - Every run (preview or apply) is recorded with its counts and errors.
//!
//! The submodules: [`settings`] (toggles and schedule), [`records`] (exclude, include,
//! approve, match by hand), the planners (`companies`, `users`, `linked` for contacts,
//! configuration items and locations) gathered by `plan`, the [`report`] a run answers, and
//! [`nightly`] (the scheduled run of `weft serve`).

mod companies;
mod linked;
pub mod nightly;
mod plan;
pub mod records;
pub mod report;
pub mod settings;
mod users;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use weft_actions::autotask::Client;
use weft_engine::executor::{Engine, EngineError};
use weft_engine::org::{RootOrgError, root_org};
use weft_engine::store::{OrgRecord, StoreErrorKind};

use crate::ServiceError;

pub use nightly::{has_integration, next_slot, nightly};
pub use records::{
    ApprovedRecord, ExcludedRecord, Exclusion, approve, exclude, excluded, exclusion_kind, include,
    match_company, match_user, record_kind, user_matches,
};
pub use report::{KindReport, PreviewItem, SyncReport};
pub use settings::{Settings, SettingsChange, save_settings, settings, update_settings};

/// The directory source and mapping kind of this sync.
pub const SOURCE: &str = "autotask";
/// Exclusion kind of companies (the same kind as org mappings).
pub const EXCLUDE_COMPANY: &str = "autotask";
/// Exclusion kind of resources (users).
pub const EXCLUDE_USER: &str = "autotask.resource";
/// The directory source of weft's own user records, which resources match by name.
pub const LOCAL_USERS: &str = "weft";
/// The entity kinds, in report order.
pub const KINDS: [&str; 5] = ["company", "user", "contact", "configuration", "location"];

/// The setting that marks an org's first apply as done.
fn initialized_key(org: &str) -> String {
    format!("sync.autotask.initialized.{org}")
}

/// Result alias of the sync.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Preview (plan and report, change nothing) or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plan and report only (the run is recorded as a preview).
    Preview,
    /// Plan and perform.
    Apply,
}

impl Mode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Preview => "preview",
            Mode::Apply => "apply",
        }
    }
}

/// What to sync: `{org?, integration?}` (the API's request body; the CLI's `--org` and
/// `--integration`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct Options {
    /// The org whose Autotask integration is synced (default: the root org).
    #[serde(default, deserialize_with = "text")]
    pub org: Option<String>,
    /// An integration instance name instead of the org's default.
    #[serde(default, deserialize_with = "text")]
    pub integration: Option<String>,
}

/// Text, also given as a number (`"org": 42`), or null.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| match t {
        Text::Text(s) => s,
        Text::Number(n) => n.to_string(),
    }))
}

/// Runs the sync for `options.org` (default: the root org) with the org's Autotask
/// integration.
///
/// # Errors
/// Not found: the org named. Conflict: no root org (or several), no Autotask integration or
/// one missing its settings. Upstream: the PSA cannot be read. Store failures. Failures
/// after the run started are recorded in the run.
pub async fn run(engine: &Engine, mode: Mode, options: &Options) -> Result<SyncReport> {
    run_watched(engine, mode, options, None).await
}

/// Told how a run gets on, for a person watching it (the CLI's progress).
pub trait Progress: Send + Sync {
    /// Every record of `kind` (an Autotask entity) was read: `records` of them.
    fn read(&self, kind: &str, records: usize);
}

/// As [`run`], telling `progress` how it gets on.
///
/// # Errors
/// As [`run`].
pub async fn run_watched(
    engine: &Engine,
    mode: Mode,
    options: &Options,
    progress: Option<&dyn Progress>,
) -> Result<SyncReport> {
    let store = engine.store().as_ref();
    let org = synced_org(engine, options.org.as_deref()).await?;
    let integration = engine
        .integration_for(&org.id, "autotask", options.integration.as_deref())
        .await
        .map_err(engine_error)?;
    // A sync is background work: paced when the tenant's hourly budget runs low.
    let client = Client::from_integration(&integration)
        .map_err(|e| {
            ServiceError::conflict(format!(
                "the Autotask integration `{}` cannot be used: {}",
                integration.name, e.message
            ))
        })?
        .background();
    let run_id = store.start_sync_run(SOURCE, &org.id, mode.as_str()).await?;
    match plan::sync(store, &client, &org, mode, run_id, progress).await {
        Ok(report) => {
            store
                .finish_sync_run(run_id, &report.counts(), &json!(report.errors))
                .await?;
            Ok(report)
        }
        Err(e) => {
            store
                .finish_sync_run(run_id, &json!({}), &json!([{"error": e.to_string()}]))
                .await?;
            Err(e)
        }
    }
}

/// The org a run syncs: the one named, else the root org.
async fn synced_org(engine: &Engine, org: Option<&str>) -> Result<OrgRecord> {
    let store = engine.store().as_ref();
    match org {
        Some(o) => store.org(o).await.map_err(|e| match e.kind() {
            StoreErrorKind::NotFound => ServiceError::not_found(format!("no organization `{o}`")),
            _ => e.into(),
        }),
        None => root_org(store).await.map_err(root_error),
    }
}

/// No single root org is a state to fix (add one, or name one with `--org`).
pub(crate) fn root_error(e: RootOrgError) -> ServiceError {
    match e {
        RootOrgError::Store(s) => s.into(),
        other => ServiceError::conflict(other.to_string()),
    }
}

/// No integration to sync with is a state to fix (add one).
fn engine_error(e: EngineError) -> ServiceError {
    match e {
        EngineError::Store(s) => s.into(),
        other => ServiceError::conflict(other.to_string()),
    }
}
