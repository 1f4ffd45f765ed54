//! Organizations: creating one (its id, its parent, its tags) and the org tree's rule that
//! no org is its own ancestor.

use weft_engine::action::now_rfc3339;
use weft_engine::org::slug;
use weft_engine::store::{OrgRecord, Store, StoreError, StoreErrorKind};

use crate::ServiceError;

/// An org to create.
#[derive(Debug, Clone, Default)]
pub struct NewOrg {
    /// Display name (unique, case-insensitively).
    pub name: String,
    /// Its id; default: a slug of the name.
    pub id: Option<String>,
    /// The parent org (id or name); none: a root (the first root is the MSP).
    pub parent: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
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

/// Variable names usable in templates (`ORG.VARIABLES.name`).
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 128
}

/// Sets `org`'s own variable `key` to `value` (any JSON), sealed when `secret`.
///
/// # Errors
/// Usage (a name templates cannot read), not found (the org), store.
pub async fn set_variable(
    store: &dyn Store,
    sealer: &dyn weft_engine::secrets::SecretBox,
    org: &str,
    key: &str,
    value: &serde_json::Value,
    secret: bool,
) -> Result<OrgRecord, ServiceError> {
    if !valid_key(key) {
        return Err(ServiceError::usage(format!(
            "`{key}` is not a valid variable name: letters, digits and `_`, not starting with a digit"
        )));
    }
    let org = existing(store, org, "the variable's org").await?;
    let text = value.to_string();
    store
        .set_org_var(&weft_engine::store::OrgVar {
            org_id: org.id.clone(),
            key: key.to_string(),
            value: if secret { sealer.seal(&text) } else { text },
            secret,
        })
        .await?;
    Ok(org)
}

/// Removes `org`'s own variable `key` (an inherited one stays where it is set).
///
/// # Errors
/// Not found (the org, or no such variable of its own), store.
pub async fn unset_variable(
    store: &dyn Store,
    org: &str,
    key: &str,
) -> Result<OrgRecord, ServiceError> {
    let org = existing(store, org, "the variable's org").await?;
    if !store.delete_org_var(&org.id, key).await? {
        return Err(ServiceError::not_found(format!(
            "organization `{}` has no variable `{key}` of its own",
            org.id
        )));
    }
    Ok(org)
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
}
