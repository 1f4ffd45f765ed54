//! Crates through the API (`GET /api/crates`, `POST /api/crates/{name}/install`) and the
//! install steps `weft crate` shares: the library folder, the checks (org, parameters,
//! requirements), deploying each rewritten workflow, trigger switches and the install record.
//! The manifest and the per-install rewrite are `weft_engine::bundle`'s.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use serde_json::{Map, Value, json};
use weft_engine::action::now_rfc3339;
use weft_engine::bundle::{self, CrateDir, CrateError, Given};
use weft_engine::executor::Engine;
use weft_engine::integration::Integrations;
use weft_engine::org::{OrgContext, OrgIntegrations};
use weft_engine::store::{CrateInstall, OrgRecord, StoreErrorKind};

use crate::{ApiError, AppState};

/// The library folder: `WEFT_CRATES_DIR`, else `crates-library/` in the current folder, else
/// the one in weft's source tree.
pub fn library_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WEFT_CRATES_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let here = PathBuf::from("crates-library");
    if here.is_dir() {
        return Some(here);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .join("crates-library");
    repo.is_dir().then_some(repo)
}

/// Every readable crate of the library, by name, and the problems of the others.
pub fn library() -> (Vec<CrateDir>, Vec<CrateError>) {
    let Some(dir) = library_dir() else {
        return (Vec::new(), Vec::new());
    };
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join(bundle::MANIFEST).is_file())
            .collect(),
        Err(e) => {
            return (
                Vec::new(),
                vec![CrateError {
                    file: dir.display().to_string(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read the crate library: {e}"),
                }],
            );
        }
    };
    dirs.sort();
    let (mut out, mut problems) = (Vec::new(), Vec::new());
    for d in dirs {
        match bundle::read_dir(&d) {
            Ok(c) => out.push(c),
            Err(errs) => problems.extend(errs),
        }
    }
    out.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
    (out, problems)
}

/// An install or upgrade to carry out.
pub struct Plan<'a> {
    /// The crate.
    pub dir: &'a CrateDir,
    /// Where it came from (recorded).
    pub source: String,
    /// The org (id or name).
    pub org: String,
    /// Parameters kept from the install being upgraded.
    pub stored: Map<String, Value>,
    /// Parameters given now.
    pub given: &'a [(String, Given)],
    /// Who the triggers run for (ids or names; empty: the org).
    pub run_for: Vec<String>,
    /// Enable the triggers.
    pub enabled: bool,
    /// The install being upgraded.
    pub previous: Option<CrateInstall>,
}

/// Why an install did not happen.
#[derive(Debug)]
pub enum InstallError {
    /// Things the installer must provide (unknown org, parameters, integrations,
    /// variables): every one of them.
    Missing(Vec<String>),
    /// The crate's workflows do not validate (as shipped or as rewritten).
    Invalid(Vec<CrateError>),
    /// Already installed for the org.
    Conflict(String),
    /// The store failed.
    Failed(String),
}

impl From<InstallError> for ApiError {
    fn from(e: InstallError) -> ApiError {
        match e {
            InstallError::Missing(p) => ApiError::InvalidInput(p.join("; ")),
            InstallError::Invalid(errs) => ApiError::InvalidInput(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            InstallError::Conflict(m) => ApiError::Conflict(m),
            InstallError::Failed(m) => ApiError::Internal(m),
        }
    }
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
}

/// What an install or upgrade did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The record saved.
    pub install: CrateInstall,
    /// The workflows deployed.
    pub deployed: Vec<Deployed>,
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

    /// As JSON for the API.
    pub fn to_json(&self) -> Value {
        json!({
            "install": self.install,
            "workflows": self.deployed.iter().map(|d| json!({
                "name": d.name,
                "version": d.version,
                "triggers": d.triggers.iter().map(|(t, k)| {
                    let mut v = json!({"name": t, "type": k, "enabled": self.install.enabled});
                    if k == "webhook" {
                        v["url"] = json!(self.hook_url(t));
                    }
                    v
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// (workflow, trigger) of every trigger an install deployed.
pub fn install_triggers(workflows: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for w in workflows.as_array().into_iter().flatten() {
        let Some(name) = w["name"].as_str() else {
            continue;
        };
        for t in w["triggers"].as_array().into_iter().flatten() {
            if let Some(t) = t["name"].as_str() {
                out.push((name.to_string(), t.to_string()));
            }
        }
    }
    out
}

/// The install of `crate_name` for org `org_id`, if any.
pub async fn find_install(
    engine: &Engine,
    crate_name: &str,
    org_id: &str,
) -> Result<Option<CrateInstall>, InstallError> {
    Ok(engine
        .store()
        .crate_installs(Some(org_id))
        .await
        .map_err(|e| InstallError::Failed(e.to_string()))?
        .into_iter()
        .find(|i| i.crate_name == crate_name))
}

/// A first install: refused when the crate is already installed for the org.
///
/// # Errors
/// See [`InstallError`].
pub async fn install(engine: &Engine, plan: Plan<'_>) -> Result<Report, InstallError> {
    if let Ok(org) = engine.store().org(&plan.org).await
        && let Some(i) = find_install(engine, &plan.dir.manifest.name, &org.id).await?
    {
        return Err(InstallError::Conflict(format!(
            "crate {} {} is already installed for {}: upgrade it (`weft crate upgrade {} --org {}`), or uninstall it first",
            i.crate_name, i.version, org.id, i.crate_name, org.id
        )));
    }
    apply(engine, plan).await
}

/// Checks everything, then deploys each workflow of the crate rewritten for the org, sets
/// the trigger switches and saves the install record.
///
/// # Errors
/// See [`InstallError`]; nothing is deployed unless every check passes.
pub async fn apply(engine: &Engine, plan: Plan<'_>) -> Result<Report, InstallError> {
    let store = engine.store();
    let failed = |e: &dyn std::fmt::Display| InstallError::Failed(e.to_string());
    let m = &plan.dir.manifest;
    let Checked {
        org,
        explicit,
        run_for,
    } = check(engine, &plan).await?;
    let params = bundle::effective(m, &explicit);
    let mut rewritten = Vec::new();
    let mut errors = Vec::new();
    let siblings: Vec<String> = plan
        .dir
        .workflows
        .iter()
        .map(|(_, src)| bundle::workflow_name(src))
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
        match bundle::rewrite_workflow(&shown, src, &target, engine.registry()) {
            Ok(r) => rewritten.push((file.clone(), r)),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(InstallError::Invalid(errors));
    }
    let (workflows, deployed) = deploy(engine, &plan, &rewritten).await?;
    // Workflows an upgrade dropped: their triggers go quiet.
    let mut dropped = Vec::new();
    if let Some(prev) = &plan.previous {
        for (wf, t) in install_triggers(&prev.workflows) {
            if !deployed.iter().any(|d| d.name == wf) {
                store
                    .set_trigger_enabled(&wf, &t, false)
                    .await
                    .map_err(|e| failed(&e))?;
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
    store
        .save_crate_install(&install)
        .await
        .map_err(|e| failed(&e))?;
    Ok(Report {
        install,
        deployed,
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
    let failed = |e: &dyn std::fmt::Display| InstallError::Failed(e.to_string());
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
        Err(e) => return Err(failed(&e)),
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
            Err(e) => return Err(failed(&e)),
        }
    }
    if let Some(org) = &org {
        // Requirements hold for the install's org and every org its triggers run for.
        let mut targets: BTreeSet<String> = BTreeSet::new();
        targets.insert(org.id.clone());
        targets.extend(run_for.iter().cloned());
        for target in targets {
            let ctx = OrgContext::load(store.as_ref(), engine.secrets().as_ref(), &target)
                .await
                .map_err(|e| failed(&e))?;
            let resolver = OrgIntegrations::new(&ctx, Arc::clone(engine.integrations()));
            let oref = ctx.org_ref();
            problems.extend(bundle::missing_requirements(
                m,
                &target,
                |kind| resolver.resolve(kind, &oref, None).is_ok(),
                |var| ctx.variables.contains_key(var),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(InstallError::Missing(problems));
    }
    Ok(Checked {
        org: org.expect("checked above"),
        explicit,
        run_for,
    })
}

/// Deploys the rewritten workflows and sets the switches of their triggers; returns what
/// the install record lists and what the report shows.
async fn deploy(
    engine: &Engine,
    plan: &Plan<'_>,
    rewritten: &[(String, bundle::Rewritten)],
) -> Result<(Vec<Value>, Vec<Deployed>), InstallError> {
    let store = engine.store();
    let failed = |e: &dyn std::fmt::Display| InstallError::Failed(e.to_string());
    let switches = store.trigger_switches().await.unwrap_or_default();
    let mut workflows = Vec::new();
    let mut deployed = Vec::new();
    for (file, r) in rewritten {
        let path = format!("{}/{file}", plan.source);
        let record = engine
            .deploy(&r.source, Some(&path))
            .await
            .map_err(|e| InstallError::Failed(format!("deploying {}: {e}", r.name)))?;
        for (t, _) in &r.triggers {
            // An upgrade keeps the switches of existing triggers (someone may have enabled
            // one since); new triggers get the install's state.
            let keep = plan.previous.is_some()
                && switches.iter().any(|(w, n, _)| *w == record.name && n == t);
            if !keep {
                store
                    .set_trigger_enabled(&record.name, t, plan.enabled)
                    .await
                    .map_err(|e| failed(&e))?;
            }
        }
        workflows.push(json!({
            "file": file,
            "name": record.name,
            "crate_workflow": r.original_name,
            "version": record.version,
            "triggers": r.triggers.iter().map(|(n, k)| json!({"name": n, "type": k})).collect::<Vec<_>>(),
        }));
        deployed.push(Deployed {
            name: record.name.clone(),
            version: record.version,
            triggers: r.triggers.clone(),
        });
    }
    Ok((workflows, deployed))
}

fn crate_json(c: &CrateDir, installs: &[CrateInstall]) -> Value {
    let m = &c.manifest;
    let params: Map<String, Value> = m
        .parameters
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                json!({
                    "type": p.type_name,
                    "required": p.required && p.default.is_none(),
                    "default": p.default,
                    "enum": p.allowed,
                    "description": p.description,
                    "sets": p.sets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
            )
        })
        .collect();
    json!({
        "name": m.name,
        "version": m.version.to_string(),
        "description": m.description,
        "summary": c.summary(),
        "requires": {"integrations": m.integrations, "variables": m.variables},
        "parameters": params,
        "workflows": c.workflows.iter().map(|(f, _)| f).collect::<Vec<_>>(),
        "installed": installs.iter().filter(|i| i.crate_name == m.name)
            .map(|i| json!({"org": i.org, "version": i.version, "detached": i.detached}))
            .collect::<Vec<_>>(),
    })
}

/// `GET /api/crates`: `{library: [...], installs: [...]}`.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let installs = state.store().crate_installs(None).await?;
    let (lib, problems) = tokio::task::spawn_blocking(library)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({
        "library": lib.iter().map(|c| crate_json(c, &installs)).collect::<Vec<_>>(),
        "installs": installs,
        "problems": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })))
}

/// `POST /api/crates/{name}/install` (`{org, params?, run_for?, enable?}`): installs a
/// library crate for an org. 422 lists everything missing; 409 when already installed.
pub(crate) async fn install_route(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = crate::api::body_object(&bytes)?;
    let org = match body.get("org") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err(ApiError::InvalidInput("`org` (text) is required".into())),
    };
    let given: Vec<(String, Given)> = match body.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(p)) => p
            .iter()
            .map(|(k, v)| (k.clone(), Given::Json(v.clone())))
            .collect(),
        Some(_) => return Err(ApiError::InvalidInput("`params` must be an object".into())),
    };
    let run_for: Vec<String> = match body.get("run_for") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            return Err(ApiError::InvalidInput(
                "`run_for` must be an org or a list of orgs".into(),
            ));
        }
    };
    let enable = match body.get("enable") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::InvalidInput("`enable` must be a boolean".into())),
    };
    let (lib, _) = tokio::task::spawn_blocking(library)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(dir) = lib.iter().find(|c| c.manifest.name == name) else {
        return Err(ApiError::NotFound(format!(
            "no crate `{name}` in the library"
        )));
    };
    let report = install(
        state.engine(),
        Plan {
            dir,
            source: dir.dir.display().to_string(),
            org,
            stored: Map::new(),
            given: &given,
            run_for,
            enabled: enable,
            previous: None,
        },
    )
    .await?;
    Ok(Json(report.to_json()))
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use axum::routing::{get, post};
    utoipa_axum::router::OpenApiRouter::new()
        .route("/api/crates", get(list))
        .route("/api/crates/{name}/install", post(install_route))
}
