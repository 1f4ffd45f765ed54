//! Organizations: creating one (its id, its parent, its tags), changing, listing, showing
//! and deleting it, and the org tree's rule that no org is its own ancestor.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use weft_engine::action::now_rfc3339;
use weft_engine::org::slug;
use weft_engine::secrets::SecretBox;
use weft_engine::store::{OrgMapping, OrgRecord, Store, StoreError, StoreErrorKind};

use crate::ServiceError;
use crate::integrations::{self, IntegrationView, KINDS};
use crate::variables::{OrgVariable, variables_of};
pub use crate::variables::{set_variable, unset_variable, valid_key};

/// An org to create (`POST /api/orgs`, `weft org add`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct NewOrg {
    /// Display name (unique, case-insensitively).
    pub name: String,
    /// The id to use instead of a slug of the name.
    #[serde(default)]
    pub id: Option<String>,
    /// The parent's id or name; omitted: a root (the first root is the MSP).
    #[serde(default)]
    pub parent: Option<String>,
    /// Tags (trimmed, duplicates dropped case-insensitively).
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
}

/// Reads `null` as the type's default (an absent field is `#[serde(default)]`).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads a present field as `Some` (so `null` is `Some(None)` and absent, by
/// `#[serde(default)]`, is `None`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The Autotask company an org is mapped to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompanyRef {
    /// The company id.
    pub id: String,
    /// Its name, when known.
    #[schema(required = true)]
    pub name: Option<String>,
}

/// An organization as listed and answered (`GET /api/orgs`, `weft org list --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Org)]
pub struct OrgView {
    /// Stable id (a slug of the name at creation).
    pub id: String,
    /// Display name, unique case-insensitively.
    pub name: String,
    /// The parent org; null for a root (the MSP).
    #[schema(required = true)]
    pub parent_id: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Fields the PSA sync keeps.
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// False once its PSA company was deactivated or deleted.
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// The Autotask company it is mapped to (null: none).
    #[schema(required = true)]
    pub autotask_company: Option<CompanyRef>,
}

impl OrgView {
    /// `org` with the Autotask company `mapping` links it to, if any.
    pub fn new(org: &OrgRecord, mapping: Option<&OrgMapping>) -> OrgView {
        OrgView {
            id: org.id.clone(),
            name: org.name.clone(),
            parent_id: org.parent_id.clone(),
            tags: org.tags.clone(),
            attributes: org.attributes.clone(),
            active: org.active,
            created_at: org.created_at.clone(),
            updated_at: org.updated_at.clone(),
            autotask_company: mapping.map(|m| CompanyRef {
                id: m.external_id.clone(),
                name: m.external_name.clone(),
            }),
        }
    }

    /// `org` with its Autotask company, read from the store.
    ///
    /// # Errors
    /// Store failures.
    pub async fn read(store: &dyn Store, org: &OrgRecord) -> Result<OrgView, ServiceError> {
        let mapping = store
            .mappings("autotask")
            .await?
            .into_iter()
            .find(|m| m.org_id == org.id);
        Ok(OrgView::new(org, mapping.as_ref()))
    }
}

/// An org named in another's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgRef {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// An org linked to an external record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgLink {
    /// The org.
    pub org_id: String,
    /// The integration kind (`autotask`).
    pub kind: String,
    /// The external id (the company id).
    pub external_id: String,
    /// The external name, when known.
    #[schema(required = true)]
    pub external_name: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<OrgMapping> for OrgLink {
    fn from(m: OrgMapping) -> Self {
        OrgLink {
            org_id: m.org_id,
            kind: m.kind,
            external_id: m.external_id,
            external_name: m.external_name,
            created_at: m.created_at,
        }
    }
}

/// One org with what it inherits (`GET /api/orgs/{org}`, `weft org show --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgDetail {
    /// The org's fields and Autotask company.
    #[serde(flatten)]
    pub org: OrgView,
    /// Its parents, parent first.
    pub ancestors: Vec<OrgRef>,
    /// Its variables, own and inherited (nearest wins; secret values `***`).
    pub variables: Vec<OrgVariable>,
    /// Its integration instances, own first, then each ancestor's (secrets by name only).
    pub integrations: Vec<IntegrationView>,
    /// Its links per integration kind.
    pub mapping: BTreeMap<String, OrgLink>,
}

/// What to change in an org (`PATCH /api/orgs/{org}`); absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    /// The new name (unique, case-insensitively).
    #[serde(default)]
    pub name: Option<String>,
    /// The new parent (id or name; not the org or one below it); null makes it a root.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub parent: Option<Option<String>>,
    /// Replaces the tags (trimmed, duplicates dropped case-insensitively).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Replaces the attributes.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    /// Active or not (inactive orgs are not run for and refuse webhooks).
    #[serde(default)]
    pub active: Option<bool>,
}

/// What [`create`] did.
#[derive(Debug, Clone)]
pub struct CreatedOrg {
    /// The stored org.
    pub org: OrgRecord,
    /// Its parent, when it has one.
    pub parent: Option<OrgRecord>,
    /// The roots that existed before, when the new org is a root too (a client usually
    /// belongs below the MSP: callers warn).
    pub other_roots: Vec<OrgRecord>,
}

/// Creates an org: a name; an id that is a slug (`acme-dental`), given or made from the name
/// and not taken; an existing parent; tags trimmed and de-duplicated.
///
/// # Errors
/// Usage (empty name, bad id), not found (the parent), conflict (the id is taken), store.
pub async fn create(store: &dyn Store, new: NewOrg) -> Result<CreatedOrg, ServiceError> {
    let name = new.name.trim().to_string();
    if name.is_empty() {
        return Err(ServiceError::usage("the name is empty"));
    }
    let id = match new.id {
        Some(id) if id.is_empty() || slug(&id) != id => {
            return Err(ServiceError::usage(format!(
                "the id must be lower case letters, digits and single dashes (like `{}`)",
                slug(&id)
            )));
        }
        Some(id) => id,
        None => slug(&name),
    };
    if id.is_empty() {
        return Err(ServiceError::usage(format!(
            "cannot make an id from the name `{name}`: choose one"
        )));
    }
    match store.org(&id).await {
        Ok(existing) if existing.id == id => {
            return Err(ServiceError::conflict(format!(
                "an organization with id `{id}` already exists ({}); choose another id",
                existing.name
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == StoreErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let parent = match new.parent {
        Some(p) => Some(existing(store, &p, "the parent").await?),
        None => None,
    };
    let other_roots = match parent {
        Some(_) => Vec::new(),
        None => weft_engine::org::root_orgs(store).await?,
    };
    let org = OrgRecord {
        id,
        name,
        parent_id: parent.as_ref().map(|p| p.id.clone()),
        tags: clean_tags(new.tags),
        attributes: serde_json::json!({}),
        active: true,
        created_at: now_rfc3339(),
        updated_at: now_rfc3339(),
    };
    store.save_org(&org).await?;
    Ok(CreatedOrg {
        org,
        parent,
        other_roots,
    })
}

/// The org `org` (id or name) that a request refers to as `what` (`the parent`).
///
/// # Errors
/// Not found, naming `what`; store.
pub async fn existing(store: &dyn Store, org: &str, what: &str) -> Result<OrgRecord, ServiceError> {
    store.org(org).await.map_err(|e| match e.kind() {
        StoreErrorKind::NotFound => {
            ServiceError::not_found(format!("{what}, organization `{org}`, does not exist"))
        }
        _ => e.into(),
    })
}

/// The org and its ancestors, the org first, then its parent, grandparent …
///
/// # Errors
/// Store failures (not found: the org); a cycle is reported as corrupt data.
pub async fn org_chain(store: &dyn Store, org: &str) -> Result<Vec<OrgRecord>, StoreError> {
    let first = store.org(org).await?;
    let mut next = first.parent_id.clone();
    let mut chain = vec![first];
    while let Some(id) = next {
        if chain.len() > 64 || chain.iter().any(|o| o.id == id) {
            return Err(StoreError::Corrupt(format!(
                "the parents of organization `{}` form a cycle",
                chain[0].id
            )));
        }
        let parent = store.org(&id).await?;
        next = parent.parent_id.clone();
        chain.push(parent);
    }
    Ok(chain)
}

/// Would making `parent` the parent of `org` create a cycle (is `parent` `org` or below it)?
///
/// # Errors
/// Store failures.
pub async fn would_cycle(store: &dyn Store, org: &str, parent: &str) -> Result<bool, StoreError> {
    Ok(org_chain(store, parent).await?.iter().any(|o| o.id == org))
}

/// What [`update`] did.
#[derive(Debug, Clone)]
pub struct UpdatedOrg {
    /// The org as stored.
    pub org: OrgRecord,
    /// Its new parent, when the change set one.
    pub parent: Option<OrgRecord>,
}

/// Changes an org: a name that is not empty (and not another org's); a parent that exists
/// and is neither the org nor below it (else a conflict), or none (a root); tags trimmed and
/// de-duplicated; attributes; active.
///
/// # Errors
/// Usage (an empty name), not found (the org, the parent), conflict (a cycle, a taken
/// name), store.
pub async fn update(
    store: &dyn Store,
    org: &str,
    patch: OrgPatch,
) -> Result<UpdatedOrg, ServiceError> {
    let mut record = store.org(org).await?;
    let mut new_parent = None;
    if let Some(name) = patch.name {
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(ServiceError::usage("the name cannot be empty"));
        }
        record.name = name;
    }
    if let Some(parent) = patch.parent {
        record.parent_id = match parent {
            None => None,
            Some(p) => {
                let parent = existing(store, &p, "the parent").await?;
                if would_cycle(store, &record.id, &parent.id).await? {
                    return Err(ServiceError::conflict(format!(
                        "`{}` cannot be the parent of `{}`: it is the organization itself or one below it",
                        parent.id, record.id
                    )));
                }
                let id = parent.id.clone();
                new_parent = Some(parent);
                Some(id)
            }
        };
    }
    if let Some(tags) = patch.tags {
        record.tags = clean_tags(tags);
    }
    if let Some(attributes) = patch.attributes {
        record.attributes = Value::Object(attributes);
    }
    if let Some(active) = patch.active {
        record.active = active;
    }
    record.updated_at = now_rfc3339();
    store.save_org(&record).await?;
    Ok(UpdatedOrg {
        org: record,
        parent: new_parent,
    })
}

/// Moves `org` below `parent` (id or name), or makes it a root (`None`): [`update`]'s rule.
///
/// # Errors
/// As [`update`].
pub async fn set_parent(
    store: &dyn Store,
    org: &str,
    parent: Option<&str>,
) -> Result<UpdatedOrg, ServiceError> {
    let patch = OrgPatch {
        parent: Some(parent.map(str::to_string)),
        ..OrgPatch::default()
    };
    update(store, org, patch).await
}

/// Removes the tags `remove` (trimmed, case-insensitively), then adds `add`: the tags
/// [`update`] stores ([`clean_tags`]).
///
/// # Errors
/// As [`update`].
pub async fn retag(
    store: &dyn Store,
    org: &str,
    add: Vec<String>,
    remove: &[String],
) -> Result<UpdatedOrg, ServiceError> {
    let record = store.org(org).await?;
    let kept = record
        .tags
        .into_iter()
        .filter(|t| !remove.iter().any(|r| r.trim().eq_ignore_ascii_case(t)));
    let patch = OrgPatch {
        tags: Some(clean_tags(kept.chain(add))),
        ..OrgPatch::default()
    };
    update(store, &record.id, patch).await
}

/// Deletes an org with its variables, integrations and mappings; refused (conflict) while it
/// has child organizations or pending or running executions.
///
/// # Errors
/// Not found (the org), conflict (as above), store.
pub async fn remove(store: &dyn Store, org: &str) -> Result<OrgRecord, ServiceError> {
    let record = store.org(org).await?;
    store.delete_org(&record.id).await?;
    Ok(record)
}

/// Every org, parents first, each with its Autotask company.
///
/// # Errors
/// Store failures.
pub async fn list(store: &dyn Store) -> Result<Vec<OrgView>, ServiceError> {
    let mapping: HashMap<String, OrgMapping> = store
        .mappings("autotask")
        .await?
        .into_iter()
        .map(|m| (m.org_id.clone(), m))
        .collect();
    Ok(store
        .list_orgs()
        .await?
        .iter()
        .map(|o| OrgView::new(o, mapping.get(&o.id)))
        .collect())
}

/// One org (id or name) with its Autotask company, its parents, its variables (own and
/// inherited, secrets `***`), its integrations (own then inherited, secrets by name only)
/// and its links.
///
/// # Errors
/// Not found (the org), store.
pub async fn detail(
    store: &dyn Store,
    secrets: &dyn SecretBox,
    org: &str,
) -> Result<OrgDetail, ServiceError> {
    let chain = org_chain(store, org).await?;
    let mut mapping = BTreeMap::new();
    for kind in KINDS {
        if let Some(m) = store
            .mappings(kind)
            .await?
            .into_iter()
            .find(|m| m.org_id == chain[0].id)
        {
            mapping.insert(kind.to_string(), m);
        }
    }
    let view = OrgView::new(&chain[0], mapping.get("autotask"));
    let variables = variables_of(store, &chain).await?;
    let mut integrations = Vec::new();
    for (depth, o) in chain.iter().enumerate() {
        for i in store.integrations(Some(&o.id)).await? {
            let mut view = integrations::view(&i, secrets);
            view.inherited = Some(depth > 0);
            integrations.push(view);
        }
    }
    Ok(OrgDetail {
        org: view,
        ancestors: chain[1..]
            .iter()
            .map(|o| OrgRef {
                id: o.id.clone(),
                name: o.name.clone(),
            })
            .collect(),
        variables,
        integrations,
        mapping: mapping
            .into_iter()
            .map(|(k, m)| (k, OrgLink::from(m)))
            .collect(),
    })
}

/// Tags trimmed, empty ones dropped, duplicates (case-insensitively) removed.
pub fn clean_tags<I: IntoIterator<Item = String>>(tags: I) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_string();
        if !t.is_empty() && !out.iter().any(|x| x.eq_ignore_ascii_case(&t)) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[tokio::test]
    async fn an_org_is_created_once_below_an_existing_parent() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let store = store.as_ref();
        let msp = create(
            store,
            NewOrg {
                name: "BrightPath IT".into(),
                ..NewOrg::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(msp.org.id, "brightpath-it");
        assert!(msp.other_roots.is_empty());
        let acme = NewOrg {
            name: " Acme Dental ".into(),
            parent: Some("brightpath-it".into()),
            tags: vec!["vip".into(), " VIP ".into(), String::new()],
            ..NewOrg::default()
        };
        let created = create(store, acme.clone()).await.unwrap();
        assert_eq!(
            (created.org.id.as_str(), created.org.tags.clone()),
            ("acme-dental", vec!["vip".to_string()])
        );
        let kind = |r: Result<CreatedOrg, ServiceError>| r.unwrap_err().kind();
        assert_eq!(kind(create(store, acme).await), ErrorKind::Conflict);
        let orphan = NewOrg {
            name: "X".into(),
            parent: Some("nowhere".into()),
            ..NewOrg::default()
        };
        assert_eq!(kind(create(store, orphan).await), ErrorKind::NotFound);
        let bad = NewOrg {
            name: "Y".into(),
            id: Some("Not A Slug".into()),
            ..NewOrg::default()
        };
        assert_eq!(kind(create(store, bad).await), ErrorKind::Usage);
        let blank = NewOrg {
            name: "  ".into(),
            ..NewOrg::default()
        };
        assert_eq!(kind(create(store, blank).await), ErrorKind::Usage);
        assert!(
            would_cycle(store, "brightpath-it", "acme-dental")
                .await
                .unwrap()
        );
        assert!(
            !would_cycle(store, "acme-dental", "brightpath-it")
                .await
                .unwrap()
        );
    }

    async fn tree() -> std::sync::Arc<dyn Store> {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        for (name, parent) in [
            ("Msp", None),
            ("Acme", Some("msp")),
            ("Acme East", Some("acme")),
        ] {
            let new = NewOrg {
                name: name.into(),
                parent: parent.map(str::to_string),
                tags: vec!["vip".into()],
                ..NewOrg::default()
            };
            create(store.as_ref(), new).await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn an_org_is_renamed_moved_retagged_and_deactivated_by_one_rule() {
        let store = tree().await;
        let store = store.as_ref();
        let kind = |r: Result<UpdatedOrg, ServiceError>| r.unwrap_err().kind();
        // A cycle is a conflict, whoever asks; so is the org itself.
        let e = set_parent(store, "msp", Some("acme-east"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("one below it"), "{e}");
        assert_eq!(
            kind(set_parent(store, "acme", Some("Acme")).await),
            ErrorKind::Conflict
        );
        let e = set_parent(store, "acme", Some("nowhere"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("the parent"), "{e}");
        assert_eq!(
            kind(set_parent(store, "nowhere", None).await),
            ErrorKind::NotFound
        );
        let moved = set_parent(store, "acme-east", Some("Msp")).await.unwrap();
        assert_eq!(moved.org.parent_id.as_deref(), Some("msp"));
        assert_eq!(moved.parent.map(|p| p.id), Some("msp".to_string()));
        let root = set_parent(store, "acme-east", None).await.unwrap();
        assert_eq!((root.org.parent_id, root.parent), (None, None));

        let tagged = retag(
            store,
            "acme",
            vec![" gold ".into(), "GOLD".into()],
            &["VIP ".into()],
        )
        .await
        .unwrap();
        assert_eq!(tagged.org.tags, vec!["gold".to_string()]);

        let blank = OrgPatch {
            name: Some("  ".into()),
            ..OrgPatch::default()
        };
        assert_eq!(kind(update(store, "acme", blank).await), ErrorKind::Usage);
        let taken = OrgPatch {
            name: Some("Msp".into()),
            ..OrgPatch::default()
        };
        assert_eq!(
            kind(update(store, "acme", taken).await),
            ErrorKind::Conflict
        );
        let mut attributes = Map::new();
        attributes.insert("city".into(), Value::String("Lyon".into()));
        let patch = OrgPatch {
            name: Some(" Acme Dental ".into()),
            active: Some(false),
            attributes: Some(attributes),
            tags: Some(vec!["a".into(), "A".into(), " ".into()]),
            ..OrgPatch::default()
        };
        let done = update(store, "acme", patch).await.unwrap().org;
        assert_eq!(
            (done.name.as_str(), done.active, done.tags.clone()),
            ("Acme Dental", false, vec!["a".to_string()])
        );
        assert_eq!(done.attributes["city"], "Lyon");
        assert_eq!(store.org("acme").await.unwrap(), done);
    }

    #[test]
    fn a_patch_tells_null_from_absent_and_refuses_unknown_fields() {
        let p: OrgPatch = serde_json::from_str(r#"{"parent": null}"#).unwrap();
        assert_eq!(p.parent, Some(None));
        let p: OrgPatch = serde_json::from_str(r#"{"parent": "msp"}"#).unwrap();
        assert_eq!(p.parent, Some(Some("msp".into())));
        let p: OrgPatch = serde_json::from_str("{}").unwrap();
        assert_eq!(p.parent, None);
        assert!(serde_json::from_str::<OrgPatch>(r#"{"id": "x"}"#).is_err());
        let n: NewOrg = serde_json::from_str(r#"{"name": "A", "tags": null}"#).unwrap();
        assert!(n.tags.is_empty());
    }

    #[tokio::test]
    async fn an_org_with_children_is_not_deleted_and_listing_shows_parents_first() {
        let store = tree().await;
        let store = store.as_ref();
        let e = remove(store, "acme").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("child"), "{e}");
        assert_eq!(
            remove(store, "nowhere").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let listed = list(store).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["msp", "acme", "acme-east"]);
        assert_eq!(listed[0].autotask_company, None);
        let json = serde_json::to_value(&listed[0]).unwrap();
        assert!(json["autotask_company"].is_null() && json["parent_id"].is_null());

        let sealer = weft_engine::secrets::KeyBox::new([9; 32]);
        crate::variables::set_variable(
            store,
            &sealer,
            "msp",
            "tz",
            &serde_json::json!("UTC"),
            false,
        )
        .await
        .unwrap();
        let shown = detail(store, &sealer, "Acme East").await.unwrap();
        let ancestors: Vec<&str> = shown.ancestors.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ancestors, ["acme", "msp"]);
        assert_eq!(shown.variables[0].from_org, "msp");
        let json = serde_json::to_value(&shown).unwrap();
        assert_eq!(json["id"], "acme-east");
        assert!(json["mapping"].as_object().unwrap().is_empty());

        assert_eq!(remove(store, "acme-east").await.unwrap().id, "acme-east");
        assert_eq!(remove(store, "Acme").await.unwrap().id, "acme");
    }
}
