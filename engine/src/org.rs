//! Organizations as executions see them: the org, its ancestors, the variables it inherits
//! (nearest wins, secrets opened in memory only), its mappings and the integration instances
//! it can use. Loaded once per execution (and per `run_as_org` task) from the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::action::{ActionError, OrgRef, now_rfc3339};
use crate::integration::{Integration, Integrations};
use crate::secrets::{SecretBox, SecretError};
use crate::store::{IntegrationRecord, OrgRecord, Store, StoreError, StoreErrorKind};

/// Loading an org failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrgError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret cannot be opened.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A stored value is not what weft wrote.
    #[error("organization `{org}`: {what}")]
    Corrupt {
        /// The org.
        org: String,
        /// What is wrong.
        what: String,
    },
}

/// The id an org gets from its name: lower case, runs of other characters as one `-`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The key org and company names are compared by (name matching in `weft mapping` and the
/// PSA sync): lower case, whitespace runs as one space, trimmed.
pub fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A variable as an org sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedVar {
    /// The value (a secret one opened).
    pub value: Value,
    /// Secret variables are redacted wherever weft stores or shows data.
    pub secret: bool,
    /// The org that set it (the org itself or an ancestor).
    pub from_org: String,
}

/// An org with everything it inherits.
#[derive(Debug, Clone)]
pub struct OrgContext {
    /// The org (a bare record when the org is not registered).
    pub org: OrgRecord,
    /// Its ancestors, parent first.
    pub ancestors: Vec<OrgRecord>,
    /// Variables, nearest definition wins, by key.
    pub variables: IndexMap<String, ResolvedVar>,
    /// External ids per integration kind (`autotask` → company id).
    pub mapping: BTreeMap<String, String>,
    /// Integration instances usable here: the org's own first, then each ancestor's.
    pub integrations: Vec<(String, Integration)>,
    /// Whether the org exists in the store.
    pub registered: bool,
    /// The org's active directory records from the PSA sync, per kind (`contact`,
    /// `configuration`, `location`): each record's data with `id` and `name`.
    pub directory: BTreeMap<String, Vec<Value>>,
    /// `ORG.FORMS`: the deployed forms, the org's standing links, and what `form_link()`
    /// signs with (set by [`crate::executor::Engine::org_context`], which knows the public
    /// URL).
    pub forms: Option<Arc<crate::form_link::OrgForms>>,
}

/// The directory kinds templates see, and their names under `ORG`.
const DIRECTORY_KINDS: &[(&str, &str)] = &[
    ("contact", "CONTACTS"),
    ("configuration", "CONFIGURATIONS"),
    ("location", "LOCATIONS"),
];

fn bare(id: &str) -> OrgRecord {
    OrgRecord {
        id: id.to_string(),
        name: id.to_string(),
        parent_id: None,
        tags: Vec::new(),
        attributes: json!({}),
        active: true,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// Opens a stored integration instance.
///
/// # Errors
/// Its secrets cannot be opened.
pub fn open_integration(
    record: &IntegrationRecord,
    secrets: &dyn SecretBox,
) -> Result<Integration, OrgError> {
    let mut i = Integration::new(record.kind.clone(), record.name.clone());
    if let Some(settings) = record.settings.as_object() {
        for (k, v) in settings {
            i = i.with_setting(k, v.clone());
        }
    }
    if let Some(sealed) = &record.secrets {
        let plain = secrets.open(sealed)?;
        let map: BTreeMap<String, String> =
            serde_json::from_str(&plain).map_err(|e| OrgError::Corrupt {
                org: record.org_id.clone(),
                what: format!("integration {}/{} secrets: {e}", record.kind, record.name),
            })?;
        for (k, v) in map {
            i = i.with_secret(&k, v);
        }
    }
    Ok(i)
}

/// Seals an integration's secret settings into the stored form.
pub fn seal_secrets(secrets: &BTreeMap<String, String>, sealer: &dyn SecretBox) -> Option<String> {
    (!secrets.is_empty())
        .then(|| sealer.seal(&serde_json::to_string(secrets).expect("strings serialize")))
}

impl OrgContext {
    /// Loads `org` (id or name) with its ancestors, variables, mapping and integrations. An
    /// org the store does not know gives a bare context (only its id), so workflows run
    /// before any org is registered keep working.
    ///
    /// # Errors
    /// Store failures; secrets that cannot be opened.
    pub async fn load(
        store: &dyn Store,
        secrets: &dyn SecretBox,
        org: &str,
    ) -> Result<OrgContext, OrgError> {
        let record = match store.org(org).await {
            Ok(r) => r,
            Err(e) if e.kind() == StoreErrorKind::NotFound => {
                return Ok(OrgContext {
                    org: bare(org),
                    ancestors: Vec::new(),
                    variables: IndexMap::new(),
                    mapping: BTreeMap::new(),
                    integrations: Vec::new(),
                    registered: false,
                    directory: BTreeMap::new(),
                    forms: None,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut ancestors = Vec::new();
        let mut next = record.parent_id.clone();
        while let Some(id) = next {
            if ancestors.len() > 64 || ancestors.iter().any(|a: &OrgRecord| a.id == id) {
                return Err(OrgError::Corrupt {
                    org: record.id.clone(),
                    what: "its parents form a cycle".into(),
                });
            }
            let parent = store.org(&id).await?;
            next = parent.parent_id.clone();
            ancestors.push(parent);
        }
        let mut variables = IndexMap::new();
        let mut integrations = Vec::new();
        // Root first, so nearer orgs overwrite.
        for o in ancestors.iter().rev().chain(std::iter::once(&record)) {
            for v in store.org_vars(&o.id).await? {
                let text = if v.secret {
                    secrets.open(&v.value)?
                } else {
                    v.value.clone()
                };
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                variables.insert(
                    v.key.clone(),
                    ResolvedVar {
                        value,
                        secret: v.secret,
                        from_org: o.id.clone(),
                    },
                );
            }
        }
        for o in std::iter::once(&record).chain(ancestors.iter()) {
            for i in store.integrations(Some(&o.id)).await? {
                integrations.push((o.id.clone(), open_integration(&i, secrets)?));
            }
        }
        let mapping = store
            .org_mappings(&record.id)
            .await?
            .into_iter()
            .map(|m| (m.kind, m.external_id))
            .collect();
        let mut directory = BTreeMap::new();
        for (kind, _) in DIRECTORY_KINDS {
            let records: Vec<Value> = store
                .directory("autotask", kind, Some(&record.id))
                .await?
                .into_iter()
                .filter(|r| r.active)
                .map(|r| {
                    let mut data = r.data.as_object().cloned().unwrap_or_default();
                    data.entry("id").or_insert_with(|| {
                        r.external_id
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or(Value::String(r.external_id.clone()))
                    });
                    data.entry("name").or_insert(Value::String(r.name));
                    Value::Object(data)
                })
                .collect();
            directory.insert((*kind).to_string(), records);
        }
        Ok(OrgContext {
            org: record,
            ancestors,
            variables,
            mapping,
            integrations,
            registered: true,
            directory,
            forms: None,
        })
    }

    /// Who actions see.
    pub fn org_ref(&self) -> OrgRef {
        OrgRef {
            id: self.org.id.clone(),
            name: self.org.name.clone(),
        }
    }

    /// Is `ancestor` (an id) this org's parent, grandparent …?
    pub fn is_below(&self, ancestor: &str) -> bool {
        self.ancestors.iter().any(|a| a.id == ancestor)
    }

    /// Every secret value this org can reach (secret variables, integration secrets), for
    /// redaction.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .integrations
            .iter()
            .flat_map(|(_, i)| i.secret_values().map(str::to_string))
            .collect();
        for v in self.variables.values().filter(|v| v.secret) {
            match &v.value {
                Value::String(s) => out.push(s.clone()),
                other => out.push(other.to_string()),
            }
        }
        out
    }

    /// `ORG` in templates: `id`, `name`, `parent`, `TAGS`, `VARIABLES`, `MAPPING`,
    /// `ATTRIBUTES`, `CONTACTS`, `CONFIGURATIONS`, `LOCATIONS`, `FORMS`, and `HAS_TAG(t)`.
    pub fn template_value(&self) -> minijinja::Value {
        let vars: Map<String, Value> = self
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        let mapping: Map<String, Value> = self
            .mapping
            .iter()
            .map(|(k, v)| {
                // Autotask ids are numbers; keep them numbers in templates.
                let value = v
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(v.clone()));
                (k.clone(), value)
            })
            .collect();
        let data = json!({
            "id": self.org.id,
            "name": self.org.name,
            "parent": self.org.parent_id,
            "TAGS": self.org.tags,
            "VARIABLES": vars,
            "MAPPING": mapping,
            "ATTRIBUTES": self.org.attributes,
        });
        let mut map: BTreeMap<String, minijinja::Value> = data
            .as_object()
            .expect("an object")
            .iter()
            .map(|(k, v)| (k.clone(), crate::executor::scope::to_value(v)))
            .collect();
        for (kind, name) in DIRECTORY_KINDS {
            let records = self.directory.get(*kind).cloned().unwrap_or_default();
            map.insert(
                (*name).to_string(),
                crate::executor::scope::to_value(&Value::Array(records)),
            );
        }
        map.insert(
            "FORMS".into(),
            match &self.forms {
                Some(forms) => minijinja::Value::from_dyn_object(forms.clone()),
                None => minijinja::Value::from(BTreeMap::<String, minijinja::Value>::new()),
            },
        );
        let tags = self.org.tags.clone();
        map.insert(
            "HAS_TAG".into(),
            minijinja::Value::from_function(move |tag: String| {
                tags.iter().any(|t| t.eq_ignore_ascii_case(&tag))
            }),
        );
        minijinja::Value::from(map)
    }
}

/// Integration resolution for one org: the named instance (a task's or trigger's
/// `integration:`) or the default of its kind, looked up in the org, then each ancestor
/// nearest first, then the instances configured for every org (`--integrations`).
pub struct OrgIntegrations {
    org: OrgRef,
    chain: Vec<(String, Integration)>,
    fallback: Arc<dyn Integrations>,
    limits: Option<Arc<dyn crate::store::LimitStore>>,
}

impl OrgIntegrations {
    /// For `ctx`, falling back to `fallback`.
    pub fn new(ctx: &OrgContext, fallback: Arc<dyn Integrations>) -> OrgIntegrations {
        OrgIntegrations {
            org: ctx.org_ref(),
            chain: ctx.integrations.clone(),
            fallback,
            limits: None,
        }
    }

    /// The instances it resolves share their API limits through `limits` (the store) with
    /// every process on the same database.
    #[must_use]
    pub fn sharing_limits(mut self, limits: Arc<dyn crate::store::LimitStore>) -> Self {
        self.limits = Some(limits);
        self
    }

    fn shared(&self, i: Integration) -> Integration {
        match &self.limits {
            Some(l) => i.sharing_limits(l.clone()),
            None => i,
        }
    }
}

impl Integrations for OrgIntegrations {
    fn resolve(
        &self,
        kind: &str,
        org: &OrgRef,
        instance: Option<&str>,
    ) -> Result<Integration, ActionError> {
        let of_kind = || self.chain.iter().filter(|(_, i)| i.kind == kind);
        let found = match instance {
            Some(name) => of_kind().find(|(_, i)| i.name == name),
            None => {
                // The nearest org that has any instance of the kind decides.
                let nearest = of_kind().next().map(|(o, _)| o.clone());
                nearest.and_then(|o| {
                    let own: Vec<&(String, Integration)> =
                        of_kind().filter(|(x, _)| *x == o).collect();
                    own.iter()
                        .find(|(_, i)| i.name == "default")
                        .or(if own.len() == 1 { own.first() } else { None })
                        .copied()
                })
            }
        };
        if let Some((_, i)) = found {
            return Ok(self.shared(i.clone()));
        }
        let _ = org;
        self.fallback.resolve(kind, &self.org, instance).map(|i| self.shared(i)).map_err(|e| {
            if self.chain.is_empty() {
                e
            } else {
                let what = instance
                    .map(|n| format!("`{kind}` integration `{n}`"))
                    .unwrap_or_else(|| format!("default `{kind}` integration"));
                ActionError::failed(format!(
                    "no {what} for organization `{}` or its parents (add one with `weft integration add {kind} --org {}`)",
                    self.org.name, self.org.id
                ))
            }
        })
    }

    fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .chain
            .iter()
            .flat_map(|(_, i)| i.secret_values().map(str::to_string))
            .collect();
        out.extend(self.fallback.secret_values());
        out
    }
}

/// The root orgs (no parent), by name: normally one, the MSP.
///
/// # Errors
/// Store failures.
pub async fn root_orgs(store: &dyn Store) -> Result<Vec<OrgRecord>, StoreError> {
    // `list_orgs` lists parents first: the roots lead.
    Ok(store
        .list_orgs()
        .await?
        .into_iter()
        .take_while(|o| o.parent_id.is_none())
        .collect())
}

/// Why there is no single root org (the MSP).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootOrgError {
    /// No org is registered.
    #[error("no organization yet: add the MSP's root organization first (`weft org add NAME`)")]
    NoOrg,
    /// Several orgs have no parent: which one is the MSP is the user's choice.
    #[error(
        "several root organizations ({}): name the one to use with --org, or move the others below it (`weft org set-parent`)",
        .0.join(", ")
    )]
    Several(Vec<String>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The root org (the MSP): the single org without a parent. Every operation that needs
/// "the MSP" without being told an org (sync, mapping, creating client orgs) uses this rule.
///
/// # Errors
/// [`RootOrgError::NoOrg`] before any org is registered; [`RootOrgError::Several`] naming
/// the roots when there are several (the caller then needs `--org`); store failures.
pub async fn root_org(store: &dyn Store) -> Result<OrgRecord, RootOrgError> {
    let mut roots = root_orgs(store).await?;
    match roots.len() {
        0 => Err(RootOrgError::NoOrg),
        1 => Ok(roots.remove(0)),
        _ => Err(RootOrgError::Several(
            roots.into_iter().map(|o| o.id).collect(),
        )),
    }
}

/// The org a trigger's `run_for: owner` means: the org workflows are deployed in, which is
/// the root org (the MSP) as [`root_org`] decides it. `None` before any org is registered
/// and also when there are several root orgs: then no org is the owner (not the first by
/// name), so nothing runs for an org merely because of how it sorts.
///
/// # Errors
/// Store failures.
pub async fn owner_org(store: &dyn Store) -> Result<Option<OrgRecord>, StoreError> {
    match root_org(store).await {
        Ok(o) => Ok(Some(o)),
        Err(RootOrgError::NoOrg | RootOrgError::Several(_)) => Ok(None),
        Err(RootOrgError::Store(e)) => Err(e),
    }
}

/// Links `org` to the external record `external_id` of `kind` (an Autotask company) — the one
/// rule every caller follows (`weft mapping set`, `weft sync autotask match`, their API
/// routes and the console). A record linked to another org is refused, not moved: moving it
/// would send every event about that company to another client, so it must be unlinked
/// first, on purpose. Linking lifts the record's exclusion.
///
/// # Errors
/// [`StoreError::Conflict`] naming the org that holds the record and how to proceed; store
/// failures.
pub async fn link_external(
    store: &dyn Store,
    org: &str,
    kind: &str,
    external_id: &str,
    external_name: Option<String>,
) -> Result<(), StoreError> {
    if let Some(holder) = linked_org(store, kind, external_id).await?
        && holder != org
    {
        return Err(StoreError::Conflict(format!(
            "{kind} record {external_id} is linked to organization `{holder}`: unlink it first (`weft mapping unset {holder}`), then link it to `{org}`"
        )));
    }
    store
        .set_mapping(&crate::store::OrgMapping {
            org_id: org.to_string(),
            kind: kind.to_string(),
            external_id: external_id.to_string(),
            external_name,
            created_at: now_rfc3339(),
        })
        .await?;
    store.unexclude(kind, external_id).await?;
    Ok(())
}

/// Excludes the external record `external_id` of `kind` from suggestions, matching and
/// creation (remembered) — refused while an org is linked to it, by every caller alike.
///
/// # Errors
/// [`StoreError::Conflict`] naming the linked org; store failures.
pub async fn exclude_external(
    store: &dyn Store,
    kind: &str,
    external_id: &str,
    name: Option<&str>,
) -> Result<(), StoreError> {
    if let Some(holder) = linked_org(store, kind, external_id).await? {
        return Err(StoreError::Conflict(format!(
            "{kind} record {external_id} is linked to organization `{holder}`: unlink it first (`weft mapping unset {holder}`) to exclude it"
        )));
    }
    store.exclude(kind, external_id, name).await
}

/// The org linked to the external record `external_id` of `kind`, if any.
async fn linked_org(
    store: &dyn Store,
    kind: &str,
    external_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(store
        .mappings(kind)
        .await?
        .into_iter()
        .find(|m| m.external_id == external_id)
        .map(|m| m.org_id))
}

/// Every managed org (every active org with a parent): what `run_for: all_managed` runs for.
///
/// # Errors
/// Store failures.
pub async fn managed_orgs(store: &dyn Store) -> Result<Vec<OrgRecord>, StoreError> {
    Ok(store
        .list_orgs()
        .await?
        .into_iter()
        .filter(|o| o.parent_id.is_some() && o.active)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::KeyBox;
    use crate::store::OrgVar;

    fn org(id: &str, parent: Option<&str>, tags: &[&str]) -> OrgRecord {
        OrgRecord {
            id: id.into(),
            name: format!("{id} Inc"),
            parent_id: parent.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            attributes: json!({"city": "Leeds"}),
            active: true,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn names_match_ignoring_case_and_spacing() {
        assert_eq!(name_key("  SUMMIT  law\tGroup "), "summit law group");
        assert_eq!(
            name_key("  SUMMIT  law\tGroup "),
            name_key("Summit Law Group")
        );
        assert_ne!(name_key("Acme Dental"), name_key("Acme Dental LLC"));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("  Acme Dental, LLC "), "acme-dental-llc");
        assert_eq!(slug("Müller & Söhne"), "müller-söhne");
    }

    #[tokio::test]
    async fn the_root_org_is_the_single_org_without_a_parent() {
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let store = store.as_ref();
        assert!(matches!(root_org(store).await, Err(RootOrgError::NoOrg)));
        assert!(owner_org(store).await.unwrap().is_none());

        store.save_org(&org("msp", None, &[])).await.unwrap();
        store
            .save_org(&org("acme", Some("msp"), &[]))
            .await
            .unwrap();
        assert_eq!(root_org(store).await.unwrap().id, "msp");
        assert_eq!(owner_org(store).await.unwrap().unwrap().id, "msp");

        // A second root: no org is "the MSP" any more; the error names both and says how
        // to choose.
        store.save_org(&org("other-msp", None, &[])).await.unwrap();
        let err = root_org(store).await.unwrap_err();
        assert!(
            matches!(&err, RootOrgError::Several(ids) if ids.len() == 2),
            "{err:?}"
        );
        let msg = err.to_string();
        for want in ["msp", "other-msp", "--org"] {
            assert!(msg.contains(want), "{want:?} missing in {msg}");
        }
        assert!(owner_org(store).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn variables_inherit_three_levels_nearest_wins_and_secrets_open_in_memory() {
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let key = KeyBox::from_text("k");
        store.save_org(&org("msp", None, &[])).await.unwrap();
        store
            .save_org(&org("acme", Some("msp"), &["vip"]))
            .await
            .unwrap();
        store
            .save_org(&org("acme-east", Some("acme"), &[]))
            .await
            .unwrap();
        let set = |o: &str, k: &str, v: Value, secret: bool| {
            let text = v.to_string();
            OrgVar {
                org_id: o.into(),
                key: k.into(),
                value: if secret { key.seal(&text) } else { text },
                secret,
            }
        };
        store
            .set_org_var(&set("msp", "queue", json!(5), false))
            .await
            .unwrap();
        store
            .set_org_var(&set("msp", "tz", json!("UTC"), false))
            .await
            .unwrap();
        store
            .set_org_var(&set("acme", "queue", json!(8), false))
            .await
            .unwrap();
        store
            .set_org_var(&set("acme", "api_key", json!("hunter2"), true))
            .await
            .unwrap();
        store
            .set_org_var(&set("acme-east", "tz", json!("America/New_York"), false))
            .await
            .unwrap();
        let ctx = OrgContext::load(store.as_ref(), &key, "acme-east")
            .await
            .unwrap();
        assert_eq!(
            ctx.variables["queue"].value,
            json!(8),
            "the parent overrides the root"
        );
        assert_eq!(ctx.variables["queue"].from_org, "acme");
        assert_eq!(
            ctx.variables["tz"].value,
            json!("America/New_York"),
            "own wins"
        );
        assert_eq!(ctx.variables["api_key"].value, json!("hunter2"));
        assert!(ctx.secret_values().contains(&"hunter2".to_string()));
        assert!(ctx.is_below("msp") && ctx.is_below("acme") && !ctx.is_below("acme-east"));
        let root = OrgContext::load(store.as_ref(), &key, "msp").await.unwrap();
        assert_eq!(root.variables["queue"].value, json!(5));
        assert!(!root.variables.contains_key("api_key"), "never upwards");

        let contact = |id: &str, active| crate::store::DirectoryRecord {
            source: "autotask".into(),
            kind: "contact".into(),
            external_id: id.into(),
            org_id: Some("acme".into()),
            name: format!("Person {id}"),
            data: json!({"email": format!("p{id}@acme.test")}),
            active,
            state: "created".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        store
            .save_directory(&[contact("30", true), contact("31", false)])
            .await
            .unwrap();
        let acme = OrgContext::load(store.as_ref(), &key, "acme")
            .await
            .unwrap();
        let env = minijinja::Environment::new();
        let contacts = env
            .render_str(
                "{{ ORG.CONTACTS | length }} {{ ORG.CONTACTS[0].id }} {{ ORG.CONTACTS[0].email }} {{ ORG.LOCATIONS | length }}",
                minijinja::context! { ORG => acme.template_value() },
            )
            .unwrap();
        assert_eq!(contacts, "1 30 p30@acme.test 0", "active records only");
        let out = env
            .render_str(
                "{{ ORG.name }} {{ ORG.VARIABLES.queue }} {{ ORG.HAS_TAG('VIP') }} {{ ORG.HAS_TAG('x') }} {{ ORG.ATTRIBUTES.city }}",
                minijinja::context! { ORG => acme.template_value() },
            )
            .unwrap();
        assert_eq!(out, "acme Inc 8 True False Leeds");
        let unknown = OrgContext::load(store.as_ref(), &key, "nobody")
            .await
            .unwrap();
        assert!(!unknown.registered);
        assert_eq!(unknown.org.id, "nobody");
        assert_eq!(managed_orgs(store.as_ref()).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn integrations_resolve_override_own_then_nearest_parent_then_fallback() {
        use crate::integration::StaticIntegrations;
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let key = KeyBox::from_text("k");
        store.save_org(&org("msp", None, &[])).await.unwrap();
        store
            .save_org(&org("acme", Some("msp"), &[]))
            .await
            .unwrap();
        store
            .save_org(&org("acme-east", Some("acme"), &[]))
            .await
            .unwrap();
        let add = |o: &str, kind: &str, name: &str, user: &str| IntegrationRecord {
            org_id: o.into(),
            kind: kind.into(),
            name: name.into(),
            settings: json!({"username": user}),
            secrets: seal_secrets(
                &BTreeMap::from([("secret".to_string(), format!("s-{user}"))]),
                &key,
            ),
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        store
            .save_integration(&add("msp", "autotask", "default", "root"))
            .await
            .unwrap();
        store
            .save_integration(&add("msp", "autotask", "second", "root2"))
            .await
            .unwrap();
        store
            .save_integration(&add("acme", "autotask", "default", "acme"))
            .await
            .unwrap();
        let fallback = Arc::new(StaticIntegrations::new(vec![
            Integration::new("teams", "default").with_setting("url", "http://x"),
        ]));
        let user = |org: &str, kind: &str, inst: Option<&str>| {
            let store = store.clone();
            let key = &key;
            let fallback = fallback.clone();
            let org = org.to_string();
            let kind = kind.to_string();
            let inst = inst.map(str::to_string);
            async move {
                let ctx = OrgContext::load(store.as_ref(), key, &org).await.unwrap();
                let r = OrgIntegrations::new(&ctx, fallback);
                r.resolve(&kind, &ctx.org_ref(), inst.as_deref())
                    .map(|i| {
                        i.setting("username")
                            .or(i.setting("url"))
                            .unwrap_or("")
                            .to_string()
                    })
                    .map_err(|e| e.message)
            }
        };
        assert_eq!(
            user("acme", "autotask", None).await.unwrap(),
            "acme",
            "own default"
        );
        assert_eq!(
            user("acme-east", "autotask", None).await.unwrap(),
            "acme",
            "nearest parent"
        );
        assert_eq!(user("msp", "autotask", None).await.unwrap(), "root");
        assert_eq!(
            user("acme-east", "autotask", Some("second")).await.unwrap(),
            "root2",
            "an override names an instance anywhere up the tree"
        );
        assert_eq!(
            user("acme", "teams", None).await.unwrap(),
            "http://x",
            "the file"
        );
        let err = user("acme-east", "slack", None).await.unwrap_err();
        assert!(err.contains("acme-east") && err.contains("slack"), "{err}");
        let ctx = OrgContext::load(store.as_ref(), &key, "acme")
            .await
            .unwrap();
        assert!(ctx.secret_values().contains(&"s-acme".to_string()));
        assert!(ctx.secret_values().contains(&"s-root".to_string()));
    }
}
