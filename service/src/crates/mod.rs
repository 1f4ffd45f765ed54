//! Crates: packaged workflows installed once per organization. The library folder and
//! finding a crate in it, the installs of an org, installing (checks of the org, the
//! parameters and the requirements; deploying each workflow rewritten for the org with the
//! parameters as input defaults, `sets:` parameters in their triggers and sub-workflow calls
//! renamed; the crate's forms and the workflows their options come from, shared by every
//! org; trigger switches; the install record), upgrading, detaching and uninstalling.
//! The manifest and the per-install rewrite are `weft_engine::bundle`'s; where a crate comes
//! from besides the library (a folder, an archive) is the caller's.

mod install;
mod shared;
mod views;

use std::path::{Path, PathBuf};

use weft_engine::bundle::{self, CrateDir, CrateError};
use weft_engine::store::{CrateInstall, Store, StoreErrorKind};

use crate::ServiceError;

pub use install::{
    Deployed, InstallError, NewInstall, Report, UpgradeRequest, Upgraded, install, upgradable,
    upgrade,
};
pub use shared::{FormChange, PlacedForm};
pub use views::{
    CrateFormView, CrateView, CratesView, DeployedView, InstallReport, InstallRequest, InstallView,
    InstalledFor, OneOrMany, ParameterView, Requires, TriggerView,
};

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

/// The crates of the library and the problems of the unreadable ones.
#[derive(Debug, Clone, Default)]
pub struct Library {
    /// Every readable crate, by name.
    pub crates: Vec<CrateDir>,
    /// Why the others cannot be read.
    pub problems: Vec<CrateError>,
}

/// Reads the library (blocking file reads: async callers run it on a blocking thread).
pub fn library() -> Library {
    let Some(dir) = library_dir() else {
        return Library::default();
    };
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join(bundle::MANIFEST).is_file())
            .collect(),
        Err(e) => {
            return Library {
                crates: Vec::new(),
                problems: vec![CrateError {
                    file: dir.display().to_string(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read the crate library: {e}"),
                }],
            };
        }
    };
    dirs.sort();
    let mut lib = Library::default();
    for d in dirs {
        match bundle::read_dir(&d) {
            Ok(c) => lib.crates.push(c),
            Err(errs) => lib.problems.extend(errs),
        }
    }
    lib.crates
        .sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
    lib
}

impl Library {
    /// The crate named `name` (its manifest's name, or its folder's).
    ///
    /// # Errors
    /// Not found, with the closest name.
    pub fn find(&self, name: &str) -> Result<&CrateDir, ServiceError> {
        if let Some(c) = self
            .crates
            .iter()
            .find(|c| c.manifest.name == name || c.dir.file_name().is_some_and(|n| n == name))
        {
            return Ok(c);
        }
        if library_dir().is_none() {
            return Err(ServiceError::not_found(format!(
                "no crate `{name}`: there is no crate library (a crates-library/ folder, or set WEFT_CRATES_DIR)"
            )));
        }
        let hint = weft_engine::suggest::did_you_mean(
            name,
            self.crates.iter().map(|c| c.manifest.name.as_str()),
        )
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
        Err(ServiceError::not_found(format!(
            "no crate `{name}` in the library{hint}"
        )))
    }
}

/// The installs, of the org `org` (id or name) or of every org.
///
/// # Errors
/// Not found (the org), store.
pub async fn installs(
    store: &dyn Store,
    org: Option<&str>,
) -> Result<Vec<CrateInstall>, ServiceError> {
    let org_id = match org {
        Some(o) => Some(store.org(o).await?.id),
        None => None,
    };
    Ok(store.crate_installs(org_id.as_deref()).await?)
}

/// The library with the installs, as `GET /api/crates` answers it.
///
/// # Errors
/// Store.
pub async fn catalog(store: &dyn Store, lib: &Library) -> Result<CratesView, ServiceError> {
    let installs = store.crate_installs(None).await?;
    Ok(CratesView::new(lib, installs))
}

/// The install of crate `name` for org `org` (id or name).
///
/// # Errors
/// Usage (no such org), not found (not installed for it), store.
pub async fn find_install(
    store: &dyn Store,
    name: &str,
    org: &str,
) -> Result<CrateInstall, ServiceError> {
    let org_id = match store.org(org).await {
        Ok(r) => r.id,
        Err(e) if e.kind() == StoreErrorKind::NotFound => {
            return Err(ServiceError::usage(format!(
                "no organization `{org}` (add it with `weft org add`)"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    store
        .crate_installs(Some(&org_id))
        .await?
        .into_iter()
        .find(|i| i.crate_name == name)
        .ok_or_else(|| {
            ServiceError::not_found(format!("crate `{name}` is not installed for {org_id}"))
        })
}

/// (workflow, trigger) of every trigger an install deployed.
pub fn install_triggers(workflows: &serde_json::Value) -> Vec<(String, String)> {
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

/// What [`detach`] did.
#[derive(Debug, Clone)]
pub struct Detached {
    /// The install, detached.
    pub install: CrateInstall,
    /// It was detached already (nothing changed).
    pub already: bool,
}

/// Marks an install as edited locally: upgrades leave it alone.
///
/// # Errors
/// As [`find_install`].
pub async fn detach(store: &dyn Store, name: &str, org: &str) -> Result<Detached, ServiceError> {
    let mut install = find_install(store, name, org).await?;
    if install.detached {
        return Ok(Detached {
            install,
            already: true,
        });
    }
    install.detached = true;
    install.updated_at = weft_engine::action::now_rfc3339();
    store.save_crate_install(&install).await?;
    Ok(Detached {
        install,
        already: false,
    })
}

/// What [`uninstall`] did.
#[derive(Debug, Clone)]
pub struct Uninstalled {
    /// The install removed.
    pub install: CrateInstall,
    /// How many triggers were disabled.
    pub disabled: usize,
}

/// Turns an install's triggers off and forgets the install (its workflow versions stay for
/// history; its forms and the workflows their options come from stay deployed: other orgs
/// may use them).
///
/// # Errors
/// As [`find_install`].
pub async fn uninstall(
    store: &dyn Store,
    name: &str,
    org: &str,
) -> Result<Uninstalled, ServiceError> {
    let install = find_install(store, name, org).await?;
    let mut disabled = 0;
    for (wf, trigger) in install_triggers(&install.workflows) {
        store.set_trigger_enabled(&wf, &trigger, false).await?;
        disabled += 1;
    }
    store
        .delete_crate_install(&install.crate_name, &install.org)
        .await?;
    Ok(Uninstalled { install, disabled })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use weft_engine::bundle::Given;
    use weft_engine::executor::Engine;

    use super::*;
    use crate::ErrorKind;

    /// The library of weft's sources (the tests do not set `WEFT_CRATES_DIR`).
    fn repo_library() -> Library {
        let lib = library();
        assert!(
            lib.crates
                .iter()
                .any(|c| c.manifest.name == "hello-webhook"),
            "the repo's crates-library/ is read"
        );
        lib
    }

    #[test]
    fn an_unknown_crate_is_not_found_with_the_closest_name() {
        let lib = repo_library();
        assert!(lib.find("hello-webhook").is_ok());
        let e = lib.find("hello-webhok").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "no crate `hello-webhok` in the library (did you mean `hello-webhook`?)"
        );
    }

    #[test]
    fn the_catalog_shows_parameters_in_file_order_with_nulls() {
        let lib = repo_library();
        let v = serde_json::to_value(CratesView::new(&lib, Vec::new())).unwrap();
        let hello = v["library"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "hello-webhook")
            .unwrap();
        assert_eq!(
            hello["parameters"]["greeting"],
            json!({"type": "string", "required": false, "default": "Hello", "enum": null,
                   "description": "The word the answer starts with", "sets": []})
        );
        assert_eq!(hello["workflows"], json!(["hello.yaml"]));
        assert_eq!(hello["forms"], json!([]));
        let new_user = v["library"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "new-user-request-form-link")
            .unwrap();
        assert_eq!(
            new_user["forms"][0]["name"], "new-user-request",
            "{new_user}"
        );
        assert_eq!(hello["installed"], json!([]));
        assert_eq!(v["installs"], json!([]));
    }

    const INTAKE_MANIFEST: &str = "name: intake\nversion: 1.0.0\ndescription: Intake\nworkflows: [go.yaml, people.yaml]\nforms: [intake-form.yaml]\n";
    const INTAKE_GO: &str = "name: go\ntriggers:\n  - name: submitted\n    type: form\n    form: intake\ntasks:\n  a:\n    action: core.noop\n";
    const INTAKE_PEOPLE: &str =
        "name: intake-people\ntasks:\n  a:\n    action: core.noop\noutput:\n  options: []\n";
    const INTAKE_FORM: &str = "form: intake\ntitle: Intake\nfields:\n  - name: who\n    type: select\n    options_from: {workflow: intake-people}\n";

    /// A crate folder shipping the form `intake` (`form` is its text) and its options
    /// workflow.
    fn intake_crate(version: &str, form: &str) -> (tempfile::TempDir, CrateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = INTAKE_MANIFEST.replace("1.0.0", version);
        for (name, text) in [
            ("crate.yaml", manifest.as_str()),
            ("go.yaml", INTAKE_GO),
            ("people.yaml", INTAKE_PEOPLE),
            ("intake-form.yaml", form),
        ] {
            std::fs::write(tmp.path().join(name), text).unwrap();
        }
        let dir = bundle::read_dir(tmp.path()).unwrap();
        (tmp, dir)
    }

    async fn engine_with_orgs(names: &[&str]) -> Arc<Engine> {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let engine = Engine::new(store.clone(), Arc::new(weft_actions::registry()));
        for name in names {
            crate::orgs::create(
                store.as_ref(),
                crate::orgs::NewOrg {
                    name: (*name).into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        }
        engine
    }

    fn new_install<'a>(dir: &'a CrateDir, org: &str) -> NewInstall<'a> {
        NewInstall {
            dir,
            source: "lib".into(),
            org: org.into(),
            given: Vec::new(),
            run_for: Vec::new(),
            enabled: true,
        }
    }

    #[tokio::test]
    async fn a_crates_forms_are_deployed_once_for_every_org_and_upgraded_by_it() {
        let engine = engine_with_orgs(&["Acme", "Beta"]).await;
        let store = engine.store().clone();
        let (_tmp, dir) = intake_crate("1.0.0", INTAKE_FORM);
        let first = install(&engine, new_install(&dir, "acme")).await.unwrap();
        assert_eq!(
            first.forms,
            vec![PlacedForm {
                name: "intake".into(),
                file: "intake-form.yaml".into(),
                version: 1,
                change: FormChange::Deployed,
            }]
        );
        let form = store.form("intake", None).await.unwrap();
        assert_eq!(form.path.as_deref(), Some("crate:intake/intake-form.yaml"));
        assert_eq!(form.source, INTAKE_FORM);
        let names: Vec<(&str, bool)> = first
            .deployed
            .iter()
            .map(|d| (d.name.as_str(), d.shared))
            .collect();
        assert_eq!(
            names,
            [("intake-people", true), ("go--acme", false)],
            "the options workflow keeps the name the form knows it by"
        );
        let people = store.workflow("intake-people", None).await.unwrap();
        assert_eq!(people.path.as_deref(), Some("crate:intake/people.yaml"));
        let view = serde_json::to_value(first.view()).unwrap();
        assert_eq!(view["forms"][0]["change"], "deployed", "{view}");
        assert_eq!(view["workflows"][0]["shared"], true, "{view}");

        // Another org: the same form and options workflow, nothing new deployed.
        let second = install(&engine, new_install(&dir, "beta")).await.unwrap();
        assert_eq!(second.forms[0].change, FormChange::Unchanged);
        assert_eq!(second.forms[0].version, 1);
        assert_eq!(second.deployed[0].version, people.version);
        assert!(store.workflow("go--beta", None).await.is_ok());

        // A newer version of the crate brings a new version of its form.
        let changed = INTAKE_FORM.replace("title: Intake", "title: Intake (v2)");
        let (_tmp2, newer) = intake_crate("1.1.0", &changed);
        let current = find_install(store.as_ref(), "intake", "acme")
            .await
            .unwrap();
        let Upgraded::Done { report, .. } = upgrade(
            &engine,
            UpgradeRequest {
                install: current,
                dir: &newer,
                source: "lib".into(),
                given: Vec::new(),
            },
        )
        .await
        .unwrap() else {
            panic!("not upgraded")
        };
        assert_eq!(report.forms[0].change, FormChange::Upgraded);
        assert_eq!(report.forms[0].version, 2);

        // Uninstalling leaves the form: other orgs use it.
        uninstall(store.as_ref(), "intake", "acme").await.unwrap();
        uninstall(store.as_ref(), "intake", "beta").await.unwrap();
        assert_eq!(store.form("intake", None).await.unwrap().version, 2);
    }

    #[tokio::test]
    async fn a_form_deployed_from_elsewhere_is_not_replaced_and_nothing_is_deployed() {
        let engine = engine_with_orgs(&["Acme"]).await;
        let store = engine.store().clone();
        let mine = INTAKE_FORM.replace("title: Intake", "title: Our own intake");
        crate::forms::deploy(store.as_ref(), &mine, Some("forms/intake.yaml"))
            .await
            .unwrap();
        let (_tmp, dir) = intake_crate("1.0.0", INTAKE_FORM);
        let e = install(&engine, new_install(&dir, "acme"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "form `intake` is already deployed (from forms/intake.yaml) and differs from the one crate intake ships"
            ),
            "{text}"
        );
        assert!(text.contains("deploy it yourself (`weft deploy "), "{text}");
        assert_eq!(store.form("intake", None).await.unwrap().source, mine);
        assert!(store.workflow("intake-people", None).await.is_err());
        assert!(store.workflow("go--acme", None).await.is_err());
        assert!(store.crate_installs(None).await.unwrap().is_empty());

        // The same text deployed by hand is the crate's form: nothing to replace.
        crate::forms::deploy(store.as_ref(), INTAKE_FORM, Some("forms/intake.yaml"))
            .await
            .unwrap();
        let r = install(&engine, new_install(&dir, "acme")).await.unwrap();
        assert_eq!(r.forms[0].change, FormChange::Unchanged);
    }

    #[tokio::test]
    async fn install_checks_everything_then_refuses_a_second_install() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let engine = Engine::new(store.clone(), Arc::new(weft_actions::registry()));
        crate::orgs::create(
            store.as_ref(),
            crate::orgs::NewOrg {
                name: "Acme".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let lib = repo_library();
        let dir = lib.find("hello-webhook").unwrap();
        let new = |org: &str, given: Vec<(String, Given)>| NewInstall {
            dir,
            source: "lib".into(),
            org: org.into(),
            given,
            run_for: vec!["nowhere".into()],
            enabled: false,
        };
        let e = install(
            &engine,
            new(
                "nobody",
                vec![("gretting".into(), Given::Json(json!("Hi")))],
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        let InstallError::Missing(problems) = &e else {
            panic!("{e}")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(ServiceError::from(e).kind(), ErrorKind::Usage);
        let e = install(&engine, new("  ", Vec::new())).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);

        let ok = NewInstall {
            run_for: Vec::new(),
            ..new(
                " acme ",
                vec![("greeting".into(), Given::Text("Yo".into()))],
            )
        };
        let report = install(&engine, ok.clone()).await.unwrap();
        assert_eq!(report.install.org, "acme");
        assert_eq!(report.install.params, json!({"greeting": "Yo"}));
        let view = serde_json::to_value(report.view()).unwrap();
        assert_eq!(view["workflows"][0]["name"], "hello-webhook--acme");
        assert!(
            view["workflows"][0]["triggers"][0]["url"]
                .as_str()
                .unwrap()
                .ends_with("/hooks/hello--acme/acme"),
            "{view}"
        );
        let e = install(&engine, ok).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("already installed for acme"), "{e}");

        let d = detach(store.as_ref(), "hello-webhook", "acme")
            .await
            .unwrap();
        assert!(!d.already && d.install.detached);
        let e = upgradable(&d.install).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let u = uninstall(store.as_ref(), "hello-webhook", "acme")
            .await
            .unwrap();
        assert_eq!(u.disabled, 1);
        let e = find_install(store.as_ref(), "hello-webhook", "acme")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
