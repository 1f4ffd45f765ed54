//! What a crate shares between the orgs it is installed for: its forms (form names are
//! global) and the workflows their options come from. Each is deployed under its own name
//! from `crate:CRATE/FILE`: when nothing of that name is deployed, as a new version when the
//! one deployed came from this crate, not at all when it is the same; something else of that
//! name that differs is a conflict, found before anything is deployed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_engine::bundle::{self, CrateDir, Placement, Rewritten};
use weft_engine::store::{Store, StoreError, StoreErrorKind, WorkflowRecord};

use super::install::InstallError;
use crate::ServiceError;
use crate::workflows::DeployError;

/// What an install did with one of the crate's forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FormChange {
    /// It was not deployed: now it is.
    Deployed,
    /// The crate's version was deployed already: nothing changed.
    Unchanged,
    /// An earlier version of this crate's form was deployed: a new version replaced it.
    Upgraded,
}

/// A form an install deployed (or found deployed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlacedForm {
    /// The form's name (the same for every org).
    pub name: String,
    /// The crate's file.
    pub file: String,
    /// The deployed version.
    pub version: i64,
    /// What the install did with it.
    pub change: FormChange,
}

/// The latest version deployed under a name, if any.
fn latest(
    found: Result<WorkflowRecord, StoreError>,
) -> Result<Option<WorkflowRecord>, InstallError> {
    match found {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.kind() == StoreErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// How a shared file sits against what is deployed under its name.
fn place(deployed: Option<&WorkflowRecord>, source: &str, crate_name: &str) -> Placement {
    bundle::placement(
        deployed.map(|r| (r.source.as_str(), r.path.as_deref())),
        source,
        crate_name,
    )
}

/// The refusal for a shared file whose name is taken by something else.
fn taken(kind: &str, name: &str, from: Option<&str>, crate_name: &str, shown: &str) -> String {
    let from = from.map_or_else(String::new, |p| format!(" (from {p})"));
    format!(
        "{kind} `{name}` is already deployed{from} and differs from the one crate {crate_name} ships ({shown}); {kind} names are shared by every org, so installing would replace it. If the crate's {kind} may replace it, deploy it yourself (`weft deploy {shown}`) and install again; otherwise keep yours and do not install this crate"
    )
}

/// Checks the crate's forms and shared workflows against what is deployed: every conflict,
/// before anything is deployed. Answers each form's placement, in the crate's order.
pub(super) async fn check(
    store: &dyn Store,
    dir: &CrateDir,
    workflows: &[(String, Rewritten)],
) -> Result<Vec<Placement>, InstallError> {
    let crate_name = &dir.manifest.name;
    let shown = |file: &str| dir.dir.join(file).display().to_string();
    let mut conflicts = Vec::new();
    let mut placements = Vec::new();
    for f in &dir.forms {
        let deployed = latest(store.form(&f.name, None).await)?;
        let p = place(deployed.as_ref(), &f.source, crate_name);
        if let Placement::Foreign(from) = &p {
            conflicts.push(taken(
                "form",
                &f.name,
                from.as_deref(),
                crate_name,
                &shown(&f.file),
            ));
        }
        placements.push(p);
    }
    for (file, r) in workflows {
        let deployed = latest(store.workflow(&r.name, None).await)?;
        if let Placement::Foreign(from) = place(deployed.as_ref(), &r.source, crate_name) {
            conflicts.push(taken(
                "workflow",
                &r.name,
                from.as_deref(),
                crate_name,
                &shown(file),
            ));
        }
    }
    if conflicts.is_empty() {
        Ok(placements)
    } else {
        Err(ServiceError::conflict(conflicts.join("; ")).into())
    }
}

/// Deploys the crate's forms (after [`check`]).
pub(super) async fn deploy_forms(
    store: &dyn Store,
    dir: &CrateDir,
    placements: &[Placement],
) -> Result<Vec<PlacedForm>, InstallError> {
    let mut out = Vec::new();
    for (f, p) in dir.forms.iter().zip(placements) {
        let path = bundle::shipped_path(&dir.manifest.name, &f.file);
        let done = crate::forms::deploy(store, &f.source, Some(&path))
            .await
            .map_err(|e| match e {
                DeployError::Failed(e) => InstallError::Refused(e),
                // The crate was read with its forms checked: a form that no longer loads is
                // weft's problem, not the installer's.
                DeployError::Invalid(i) => InstallError::Refused(ServiceError::conflict(format!(
                    "form `{}` of crate {} did not deploy: {}",
                    f.name, dir.manifest.name, i.message
                ))),
            })?;
        let change = match (done.unchanged, p) {
            (true, _) => FormChange::Unchanged,
            (false, Placement::Upgrade) => FormChange::Upgraded,
            (false, _) => FormChange::Deployed,
        };
        out.push(PlacedForm {
            name: f.name.clone(),
            file: f.file.clone(),
            version: done.record.version,
            change,
        });
    }
    Ok(out)
}
