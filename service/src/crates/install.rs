//! Installing and upgrading a crate for an org: every check first (nothing is deployed
//! unless all pass), then the crate's forms and the workflows their options come from
//! (shared by every org), each other workflow rewritten for the org, its trigger switches and
//! the install record.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use weft_engine::action::now_rfc3339;
use weft_engine::bundle::{self, CrateDir, CrateError, Given, Version};
use weft_engine::executor::{Engine, EngineError};
use weft_engine::integration::Integrations;
use weft_engine::org::{OrgContext, OrgIntegrations};
use weft_engine::store::{CrateInstall, OrgRecord, StoreError, StoreErrorKind};

use super::install_triggers;
use super::shared::{self, PlacedForm};
use crate::{ErrorKind, ServiceError};

/// Why an install or upgrade did not happen. [`InstallError::kind`] says how callers map
/// it (and `From<InstallError> for ServiceError` turns it into one message).
#[derive(Debug)]
pub enum InstallError {
    /// Things the installer must provide (unknown org, parameters, integrations,
    /// variables): every one of them. A usage error.
    Missing(Vec<String>),
    /// The crate's workflows do not validate (as shipped or as rewritten for the org):
    /// every error. A usage error: nothing was deployed.
    Invalid(Vec<CrateError>),
    /// Any other refusal (already installed, detached…) or failure.
    Refused(ServiceError),
}

impl InstallError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            InstallError::Missing(_) | InstallError::Invalid(_) => ErrorKind::Usage,
            InstallError::Refused(e) => e.kind(),
        }
    }
}

impl std::fmt::Display for InstallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstallError::Missing(p) => f.write_str(&p.join("; ")),
            InstallError::Invalid(errs) => f.write_str(
                &errs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            InstallError::Refused(e) => e.fmt(f),
        }
    }
}

impl From<ServiceError> for InstallError {
    fn from(e: ServiceError) -> Self {
        InstallError::Refused(e)
    }
}

impl From<StoreError> for InstallError {
    fn from(e: StoreError) -> Self {
        InstallError::Refused(e.into())
    }
}

impl From<InstallError> for ServiceError {
    fn from(e: InstallError) -> Self {
        match e {
            InstallError::Refused(e) => e,
            other => ServiceError::usage(other.to_string()),
        }
    }
}

/// A first install of a crate for an org.
#[derive(Debug, Clone)]
pub struct NewInstall<'a> {
    /// The crate.
    pub dir: &'a CrateDir,
    /// Where it came from (recorded, and where an upgrade looks first).
    pub source: String,
    /// The org (id or name).
    pub org: String,
    /// Parameter values.
    pub given: Vec<(String, Given)>,
    /// Who the triggers run for (ids or names; empty: the org).
    pub run_for: Vec<String>,
    /// Enable the triggers.
    pub enabled: bool,
}

/// An install or upgrade to carry out.
struct Plan<'a> {
    dir: &'a CrateDir,
    source: String,
    org: String,
    /// Parameters kept from the install being upgraded.
    stored: Map<String, Value>,
    given: &'a [(String, Given)],
    run_for: Vec<String>,
    enabled: bool,
    /// The install being upgraded.
    previous: Option<CrateInstall>,
}

/// One workflow an install deployed.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// Its name for the install.
    pub name: String,
    /// The stored version.
    pub version: i64,
    /// (trigger, type); webhook triggers carry `--{org}`.
    pub triggers: Vec<(String, String)>,
    /// A form's options come from it: it keeps its name and serves every org.
    pub shared: bool,
}

/// What an install or upgrade did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The record saved.
    pub install: CrateInstall,
    /// The workflows deployed.
    pub deployed: Vec<Deployed>,
    /// The crate's forms, deployed or found deployed.
    pub forms: Vec<PlacedForm>,
    /// (workflow, trigger) an upgrade dropped (their triggers were disabled).
    pub dropped: Vec<(String, String)>,
}

impl Report {
    /// The URL a webhook trigger of this install answers on: `/hooks/{trigger}/{org}` with
    /// the first org it runs for (the install's org, unless `run_for` orgs were given — a
    /// webhook runs only for the org in its URL, and only for an org it runs for).
    pub fn hook_url(&self, trigger: &str) -> String {
        let org = self
            .install
            .run_for
            .as_array()
            .and_then(|l| l.first())
            .and_then(Value::as_str)
            .unwrap_or(&self.install.org);
        format!("{}/hooks/{trigger}/{org}", weft_triggers::public_url())
    }
}

/// A first install: refused when the crate is already installed for the org.
///
/// # Errors
/// See [`InstallError`]: usage (an empty org; everything missing; invalid workflows),
/// conflict (already installed for the org), store.
pub async fn install(engine: &Engine, new: NewInstall<'_>) -> Result<Report, InstallError> {
    let org = new.org.trim();
    if org.is_empty() {
        return Err(ServiceError::usage("the organization (its id or name) is required").into());
    }
    if let Ok(o) = engine.store().org(org).await
        && let Some(i) = engine
            .store()
            .crate_installs(Some(&o.id))
            .await?
            .into_iter()
            .find(|i| i.crate_name == new.dir.manifest.name)
    {
        return Err(ServiceError::conflict(format!(
            "crate {} {} is already installed for {}: upgrade it (`weft crate upgrade {} --org {}`), or uninstall it first",
            i.crate_name, i.version, o.id, i.crate_name, o.id
        ))
        .into());
    }
    apply(
        engine,
        Plan {
            dir: new.dir,
            source: new.source,
            org: org.to_string(),
            stored: Map::new(),
            given: &new.given,
            run_for: new.run_for,
            enabled: new.enabled,
            previous: None,
        },
    )
    .await
}

/// An upgrade of an install to the crate `dir`.
#[derive(Debug, Clone)]
pub struct UpgradeRequest<'a> {
    /// The install (see [`super::find_install`]).
    pub install: CrateInstall,
    /// The newer version.
    pub dir: &'a CrateDir,
    /// Where it came from (recorded).
    pub source: String,
    /// Parameters to set or change (the stored ones are kept).
    pub given: Vec<(String, Given)>,
}

/// What [`upgrade`] did.
#[derive(Debug, Clone)]
pub enum Upgraded {
    /// The install is at that version already: nothing done.
    Current(CrateInstall),
    /// The install is newer than the version offered: nothing done.
    Newer(CrateInstall),
    /// Upgraded from `from`.
    Done {
        /// The version before.
        from: String,
        /// What was deployed.
        report: Report,
    },
}

/// Refuses an upgrade of a detached install (edited locally: upgrades leave it alone).
///
/// # Errors
/// Conflict.
pub fn upgradable(install: &CrateInstall) -> Result<(), ServiceError> {
    if install.detached {
        return Err(ServiceError::conflict(format!(
            "crate {} for {} is detached (edited locally): upgrades leave it alone. Uninstall and install it again to replace it",
            install.crate_name, install.org
        )));
    }
    Ok(())
}

/// Upgrades an install to a newer version, keeping its parameters, `run_for` and switch;
/// the triggers of workflows the new version dropped are disabled.
///
/// # Errors
/// Conflict (detached; `dir` holds another crate), and as [`install`].
pub async fn upgrade(engine: &Engine, req: UpgradeRequest<'_>) -> Result<Upgraded, InstallError> {
    let install = req.install;
    upgradable(&install)?;
    let m = &req.dir.manifest;
    if m.name != install.crate_name {
        return Err(ServiceError::conflict(format!(
            "{} holds crate `{}`, not `{}`",
            req.source, m.name, install.crate_name
        ))
        .into());
    }
    match Version::parse(&install.version) {
        Some(v) if v == m.version => return Ok(Upgraded::Current(install)),
        Some(v) if v > m.version => return Ok(Upgraded::Newer(install)),
        _ => {}
    }
    let stored = install.params.as_object().cloned().unwrap_or_default();
    let run_for: Vec<String> = install
        .run_for
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let from = install.version.clone();
    let report = apply(
        engine,
        Plan {
            dir: req.dir,
            source: req.source,
            org: install.org.clone(),
            stored,
            given: &req.given,
            run_for,
            enabled: install.enabled,
            previous: Some(install),
        },
    )
    .await?;
    Ok(Upgraded::Done { from, report })
}

/// A failure inside weft while installing (a secret that cannot be opened…).
fn internal(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> InstallError {
    InstallError::Refused(ServiceError::internal(format!("{what}: {e}"), e))
}

/// Checks everything, then deploys the crate's forms and shared workflows, each other
/// workflow of the crate rewritten for the org, sets the trigger switches and saves the
/// install record.
async fn apply(engine: &Engine, plan: Plan<'_>) -> Result<Report, InstallError> {
    let store = engine.store();
    let m = &plan.dir.manifest;
    let Checked {
        org,
        explicit,
        run_for,
    } = check(engine, &plan).await?;
    let params = bundle::effective(m, &explicit);
    let mut rewritten = Vec::new();
    let mut shared_workflows = Vec::new();
    let mut errors = Vec::new();
    let shared_names = plan.dir.shared_workflows();
    let siblings: Vec<String> = plan
        .dir
        .workflows
        .iter()
        .map(|(_, src)| bundle::workflow_name(src))
        .filter(|n| !shared_names.contains(n))
        .collect();
    let target = bundle::Install {
        manifest: m,
        org: &org.id,
        params: &params,
        run_for: &run_for,
        enabled: plan.enabled,
        siblings: &siblings,
    };
    for (file, src) in &plan.dir.workflows {
        let shown = plan.dir.dir.join(file).display().to_string();
        if shared_names.contains(&bundle::workflow_name(src)) {
            match bundle::shared_workflow(file, src, m, engine.registry()) {
                Ok(r) => shared_workflows.push((file.clone(), r)),
                Err(e) => errors.extend(e.into_iter().map(|e| CrateError {
                    file: shown.clone(),
                    ..e
                })),
            }
            continue;
        }
        match bundle::rewrite_workflow(&shown, src, &target, engine.registry()) {
            Ok(r) => rewritten.push((file.clone(), r)),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(InstallError::Invalid(errors));
    }
    let placements = shared::check(store.as_ref(), plan.dir, &shared_workflows).await?;
    let forms = shared::deploy_forms(store.as_ref(), plan.dir, &placements).await?;
    let (mut workflows, mut deployed) = deploy(engine, &plan, &shared_workflows, true).await?;
    let (own, own_deployed) = deploy(engine, &plan, &rewritten, false).await?;
    workflows.extend(own);
    deployed.extend(own_deployed);
    // Workflows an upgrade dropped: their triggers go quiet.
    let mut dropped = Vec::new();
    if let Some(prev) = &plan.previous {
        for (wf, t) in install_triggers(&prev.workflows) {
            if !deployed.iter().any(|d| d.name == wf) {
                store.set_trigger_enabled(&wf, &t, false).await?;
                dropped.push((wf, t));
            }
        }
    }
    let at = now_rfc3339();
    let install = CrateInstall {
        crate_name: m.name.clone(),
        org: org.id.clone(),
        version: m.version.to_string(),
        params: Value::Object(explicit),
        run_for: json!(run_for),
        enabled: plan.enabled,
        detached: false,
        source: Some(plan.source.clone()),
        workflows: Value::Array(workflows),
        installed_at: plan
            .previous
            .as_ref()
            .map_or_else(|| at.clone(), |p| p.installed_at.clone()),
        updated_at: at,
    };
    store.save_crate_install(&install).await?;
    Ok(Report {
        install,
        deployed,
        forms,
        dropped,
    })
}

/// What the checks of an install found: the org, the parameters given explicitly and the
/// orgs its triggers run for (ids).
struct Checked {
    org: OrgRecord,
    explicit: Map<String, Value>,
    run_for: Vec<String>,
}

/// Checks an install before anything is deployed: the orgs exist, the parameters resolve,
/// and the crate's requirements hold for the org and every org its triggers run for.
async fn check(engine: &Engine, plan: &Plan<'_>) -> Result<Checked, InstallError> {
    let store = engine.store();
    let m = &plan.dir.manifest;
    let mut problems = Vec::new();
    let org = match store.org(&plan.org).await {
        Ok(r) => Some(r),
        Err(e) if e.kind() == StoreErrorKind::NotFound => {
            problems.push(format!(
                "no organization `{}` (add it with `weft org add`)",
                plan.org
            ));
            None
        }
        Err(e) => return Err(e.into()),
    };
    let explicit = match bundle::resolve_params(m, &plan.stored, plan.given) {
        Ok(p) => p,
        Err(p) => {
            problems.extend(p);
            Map::new()
        }
    };
    let mut run_for = Vec::new();
    for r in &plan.run_for {
        match store.org(r).await {
            Ok(o) => run_for.push(o.id),
            Err(e) if e.kind() == StoreErrorKind::NotFound => {
                problems.push(format!("--run-for: no organization `{r}`"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let Some(org) = org else {
        return Err(InstallError::Missing(problems));
    };
    // Requirements hold for the install's org and every org its triggers run for.
    let mut targets: BTreeSet<String> = BTreeSet::new();
    targets.insert(org.id.clone());
    targets.extend(run_for.iter().cloned());
    for target in targets {
        let ctx = OrgContext::load(store.as_ref(), engine.secrets().as_ref(), &target)
            .await
            .map_err(|e| internal(&format!("loading organization `{target}`"), e))?;
        let resolver = OrgIntegrations::new(&ctx, Arc::clone(engine.integrations()));
        let oref = ctx.org_ref();
        problems.extend(bundle::missing_requirements(
            m,
            &target,
            |kind| resolver.resolve(kind, &oref, None).is_ok(),
            |var| ctx.variables.contains_key(var),
        ));
    }
    if !problems.is_empty() {
        return Err(InstallError::Missing(problems));
    }
    Ok(Checked {
        org,
        explicit,
        run_for,
    })
}

/// A deploy that failed although the rewritten workflow validated.
fn deploy_failure(name: &str, e: EngineError) -> InstallError {
    match e {
        EngineError::Store(s) => s.into(),
        other => internal(&format!("deploying {name}"), other),
    }
}

/// Deploys the rewritten workflows (`shared`: the ones a form's options come from, recorded
/// as from `crate:CRATE/FILE`) and sets the switches of their triggers; returns what the
/// install record lists and what the report shows.
async fn deploy(
    engine: &Engine,
    plan: &Plan<'_>,
    rewritten: &[(String, bundle::Rewritten)],
    shared: bool,
) -> Result<(Vec<Value>, Vec<Deployed>), InstallError> {
    let store = engine.store();
    let switches = store.trigger_switches().await.unwrap_or_default();
    let mut workflows = Vec::new();
    let mut deployed = Vec::new();
    for (file, r) in rewritten {
        let path = if shared {
            bundle::shipped_path(&plan.dir.manifest.name, file)
        } else {
            format!("{}/{file}", plan.source)
        };
        let record = engine
            .deploy(&r.source, Some(&path))
            .await
            .map_err(|e| deploy_failure(&r.name, e))?;
        for (t, _) in &r.triggers {
            // An upgrade keeps the switches of existing triggers (someone may have enabled
            // one since); new triggers get the install's state.
            let keep = plan.previous.is_some()
                && switches.iter().any(|(w, n, _)| *w == record.name && n == t);
            if !keep {
                store
                    .set_trigger_enabled(&record.name, t, plan.enabled)
                    .await?;
            }
        }
        let mut entry = json!({
            "file": file,
            "name": record.name,
            "crate_workflow": r.original_name,
            "version": record.version,
            "triggers": r.triggers.iter().map(|(n, k)| json!({"name": n, "type": k})).collect::<Vec<_>>(),
        });
        if shared {
            entry["shared"] = json!(true);
        }
        workflows.push(entry);
        deployed.push(Deployed {
            name: record.name.clone(),
            version: record.version,
            triggers: r.triggers.clone(),
            shared,
        });
    }
    Ok((workflows, deployed))
}
