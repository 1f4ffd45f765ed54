//! What the crate use cases answer and take, as JSON (`GET /api/crates`,
//! `POST /api/crates/{name}/install`).

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use weft_engine::bundle::{CrateDir, Given};
use weft_engine::store::CrateInstall;

use super::Library;
use super::install::{NewInstall, Report};
use super::shared::PlacedForm;

/// The library and the installs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CratesView {
    /// The library's crates, by name.
    pub library: Vec<CrateView>,
    /// Every install.
    pub installs: Vec<InstallView>,
    /// The library's unreadable crates: file, line, column and what is wrong.
    pub problems: Vec<String>,
}

impl CratesView {
    /// The library with `installs`.
    pub fn new(lib: &Library, installs: Vec<CrateInstall>) -> CratesView {
        CratesView {
            library: lib
                .crates
                .iter()
                .map(|c| CrateView::new(c, &installs))
                .collect(),
            installs: installs.into_iter().map(InstallView::from).collect(),
            problems: lib.problems.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A crate of the library.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CrateView {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line.
    pub description: String,
    /// README's first paragraph.
    pub summary: Option<String>,
    /// What the installing org must resolve.
    pub requires: Requires,
    /// Its parameters, in file order.
    #[serde(serialize_with = "as_map")]
    #[schema(value_type = std::collections::BTreeMap<String, ParameterView>)]
    pub parameters: Vec<(String, ParameterView)>,
    /// Its workflow files.
    pub workflows: Vec<String>,
    /// Its forms (deployed for every org, under their own names).
    pub forms: Vec<CrateFormView>,
    /// The orgs it is installed for.
    pub installed: Vec<InstalledFor>,
}

fn as_map<S: Serializer>(v: &[(String, ParameterView)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, p)| (k, p)))
}

impl CrateView {
    /// `c` with the orgs it is installed for among `installs`.
    pub fn new(c: &CrateDir, installs: &[CrateInstall]) -> CrateView {
        let m = &c.manifest;
        CrateView {
            name: m.name.clone(),
            version: m.version.to_string(),
            description: m.description.clone(),
            summary: c.summary(),
            requires: Requires {
                integrations: m.integrations.clone(),
                variables: m.variables.clone(),
            },
            parameters: m
                .parameters
                .iter()
                .map(|(k, p)| {
                    (
                        k.clone(),
                        ParameterView {
                            type_name: p.type_name.clone(),
                            required: p.required && p.default.is_none(),
                            default: p.default.clone(),
                            allowed: p.allowed.clone(),
                            description: p.description.clone(),
                            sets: p.sets.iter().map(ToString::to_string).collect(),
                        },
                    )
                })
                .collect(),
            workflows: c.workflows.iter().map(|(f, _)| f.clone()).collect(),
            forms: c
                .forms
                .iter()
                .map(|f| CrateFormView {
                    name: f.name.clone(),
                    title: f.title.clone(),
                    file: f.file.clone(),
                })
                .collect(),
            installed: InstalledFor::of(&m.name, installs),
        }
    }
}

/// A form a crate ships.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CrateFormView {
    /// Its name (`form:`), the same for every org.
    pub name: String,
    /// Its page's heading.
    pub title: String,
    /// Its file in the crate.
    pub file: String,
}

/// What a crate's installing org must resolve.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Requires {
    /// Integration kinds.
    pub integrations: Vec<String>,
    /// Org variables.
    pub variables: Vec<String>,
}

/// A crate parameter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParameterView {
    /// `string`, `integer`, `number`, `boolean`, `object`, `array` or `cron`…
    #[serde(rename = "type")]
    pub type_name: String,
    /// Must be given (required, and no default).
    pub required: bool,
    /// The default (null: none).
    #[schema(value_type = Object)]
    pub default: Option<Value>,
    /// The allowed values (null: any).
    #[serde(rename = "enum")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub allowed: Option<Vec<Value>>,
    /// What it is for.
    pub description: Option<String>,
    /// The triggers (`workflow.trigger.field`) it sets.
    pub sets: Vec<String>,
}

/// An org a crate is installed for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstalledFor {
    /// The org's id.
    pub org: String,
    /// The installed version.
    pub version: String,
    /// Edited locally: upgrades leave it alone.
    pub detached: bool,
}

impl InstalledFor {
    /// The installs of crate `name` among `installs`.
    pub fn of(name: &str, installs: &[CrateInstall]) -> Vec<InstalledFor> {
        installs
            .iter()
            .filter(|i| i.crate_name == name)
            .map(|i| InstalledFor {
                org: i.org.clone(),
                version: i.version.clone(),
                detached: i.detached,
            })
            .collect()
    }
}

/// A crate installed for an organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstallView {
    /// The crate's name.
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// The org it was installed for.
    pub org: String,
    /// The installed version.
    pub version: String,
    /// The parameters given (defaults not included).
    #[schema(value_type = Object)]
    pub params: Value,
    /// The triggers' `run_for` orgs (empty: the install's org).
    #[schema(value_type = Vec<String>)]
    pub run_for: Value,
    /// Were its triggers enabled at install?
    pub enabled: bool,
    /// Left alone by upgrades (edited locally).
    pub detached: bool,
    /// Where it was installed from (a folder or archive).
    pub source: Option<String>,
    /// The workflows deployed: `[{file, name, crate_workflow, version, triggers: [{name, type}]}]`.
    #[schema(value_type = Vec<Object>)]
    pub workflows: Value,
    /// RFC 3339.
    pub installed_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<CrateInstall> for InstallView {
    fn from(i: CrateInstall) -> Self {
        InstallView {
            crate_name: i.crate_name,
            org: i.org,
            version: i.version,
            params: i.params,
            run_for: i.run_for,
            enabled: i.enabled,
            detached: i.detached,
            source: i.source,
            workflows: i.workflows,
            installed_at: i.installed_at,
            updated_at: i.updated_at,
        }
    }
}

/// What an install deployed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstallReport {
    /// The install record saved.
    pub install: InstallView,
    /// The workflows deployed.
    pub workflows: Vec<DeployedView>,
    /// The crate's forms: deployed, upgraded or found deployed already.
    pub forms: Vec<PlacedForm>,
}

/// A workflow an install deployed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployedView {
    /// Its name for the install (`{workflow}--{org}`).
    pub name: String,
    /// The stored version.
    pub version: i64,
    /// Its triggers.
    pub triggers: Vec<TriggerView>,
    /// A form's options come from it: it keeps its name and serves every org.
    #[serde(default)]
    pub shared: bool,
}

/// A trigger an install deployed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TriggerView {
    /// Its name (webhook triggers carry `--{org}`).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Switched on.
    pub enabled: bool,
    /// Webhook triggers: where to POST.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Report {
    /// As the API answers it.
    pub fn view(&self) -> InstallReport {
        InstallReport {
            install: self.install.clone().into(),
            workflows: self
                .deployed
                .iter()
                .map(|d| DeployedView {
                    name: d.name.clone(),
                    version: d.version,
                    triggers: d
                        .triggers
                        .iter()
                        .map(|(t, k)| TriggerView {
                            name: t.clone(),
                            kind: k.clone(),
                            enabled: self.install.enabled,
                            url: (k == "webhook").then(|| self.hook_url(t)),
                        })
                        .collect(),
                    shared: d.shared,
                })
                .collect(),
            forms: self.forms.clone(),
        }
    }
}

/// One org, or a list of them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One org (id or name).
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// An install of a library crate for an org.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct InstallRequest {
    /// The org: id or name.
    pub org: String,
    /// Parameter values (JSON, checked against the parameter types).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
    /// Who the triggers run for (default the org).
    #[serde(default)]
    pub run_for: Option<OneOrMany>,
    /// Enable the triggers (default false).
    #[serde(default)]
    pub enable: Option<bool>,
}

impl InstallRequest {
    /// The install of `dir` it asks for.
    pub fn for_crate(self, dir: &CrateDir) -> NewInstall<'_> {
        NewInstall {
            dir,
            source: dir.dir.display().to_string(),
            org: self.org,
            given: self
                .params
                .into_iter()
                .flatten()
                .map(|(k, v)| (k, Given::Json(v)))
                .collect(),
            run_for: match self.run_for {
                None => Vec::new(),
                Some(OneOrMany::One(o)) => vec![o],
                Some(OneOrMany::Many(l)) => l,
            },
            enabled: self.enable.unwrap_or(false),
        }
    }
}
