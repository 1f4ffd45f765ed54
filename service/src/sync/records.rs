//! A reviewer's decisions about single PSA records, remembered across runs: exclude or
//! include a company or resource, approve a record for creation at the next apply, match a
//! company to an org or a resource to a weft user by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weft_engine::store::{OrgRecord, Store};

use super::settings::{json_setting, set_json_setting};
use super::{EXCLUDE_COMPANY, EXCLUDE_USER, LOCAL_USERS, Result, SOURCE};
use crate::ServiceError;

/// The setting holding the approvals ([`Approvals`]).
pub(super) const APPROVED_KEY: &str = "sync.autotask.approved";
const USER_MATCHES_KEY: &str = "sync.autotask.user_matches";

/// Records to create at the next apply whatever the auto-create toggles say (by kind).
pub(super) type Approvals = BTreeMap<String, Vec<String>>;

/// What excluding a record answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExcludedRecord {
    /// `company` or `user`.
    pub kind: String,
    /// The Autotask id.
    pub id: String,
    /// Always true.
    pub excluded: bool,
}

/// What approving a record answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovedRecord {
    /// `company`, `user` or `configuration`.
    pub kind: String,
    /// The Autotask id.
    pub id: String,
    /// Always true.
    pub create_at_next_apply: bool,
}

/// One excluded company or resource.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Exclusion {
    /// `company` or `user`.
    pub kind: String,
    /// The Autotask id.
    pub external_id: String,
    /// Its name when it was known at exclusion.
    pub name: Option<String>,
}

/// The record kind a reviewer names (`company`, `companies`, `user`, `users`,
/// `configuration`, `configurations`).
///
/// # Errors
/// Not found: any other kind.
pub fn record_kind(kind: &str) -> Result<&'static str> {
    match kind {
        "company" | "companies" => Ok("company"),
        "user" | "users" => Ok("user"),
        "configuration" | "configurations" => Ok("configuration"),
        other => Err(ServiceError::not_found(format!(
            "no record kind `{other}` (company, user, configuration)"
        ))),
    }
}

/// The exclusion kind of a record kind (`company`, `user`).
pub fn exclusion_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "company" => Some(EXCLUDE_COMPANY),
        "user" => Some(EXCLUDE_USER),
        _ => None,
    }
}

fn excludable(kind: &str) -> Result<&'static str> {
    exclusion_kind(kind).ok_or_else(|| {
        ServiceError::usage(format!(
            "only companies and users can be excluded, not `{kind}`"
        ))
    })
}

/// Marks a company, user or configuration item to be created at the next apply (and lifts its
/// exclusion).
///
/// # Errors
/// Store failures.
pub async fn approve(store: &dyn Store, kind: &str, external_id: &str) -> Result<ApprovedRecord> {
    if let Some(ex) = exclusion_kind(kind) {
        store.unexclude(ex, external_id).await?;
    }
    let mut approved: Approvals = json_setting(store, APPROVED_KEY).await?;
    let list = approved.entry(kind.to_string()).or_default();
    if !list.iter().any(|x| x == external_id) {
        list.push(external_id.to_string());
    }
    set_json_setting(store, APPROVED_KEY, &approved).await?;
    Ok(ApprovedRecord {
        kind: kind.to_string(),
        id: external_id.to_string(),
        create_at_next_apply: true,
    })
}

/// Manual user matches: resource id → weft user record id.
///
/// # Errors
/// Store failures.
pub async fn user_matches(store: &dyn Store) -> Result<BTreeMap<String, String>> {
    json_setting(store, USER_MATCHES_KEY).await
}

/// Matches a resource to a weft user record (directory source `weft`, kind `user`) by hand.
///
/// # Errors
/// Not found: the user record does not exist. Store failures.
pub async fn match_user(store: &dyn Store, resource_id: &str, user_id: &str) -> Result<()> {
    let users = store.directory(LOCAL_USERS, "user", None).await?;
    if !users.iter().any(|u| u.external_id == user_id) {
        return Err(ServiceError::not_found(format!(
            "no weft user record `{user_id}` (directory source `{LOCAL_USERS}`, kind `user`)"
        )));
    }
    store.unexclude(EXCLUDE_USER, resource_id).await?;
    let mut m = user_matches(store).await?;
    m.insert(resource_id.to_string(), user_id.to_string());
    set_json_setting(store, USER_MATCHES_KEY, &m).await
}

/// Matches a company to an org by hand (replacing the org's previous link and lifting the
/// company's exclusion) — by the same rule as `weft mapping set`
/// ([`weft_engine::org::link_external`]): a company linked to another org is refused.
///
/// # Errors
/// Not found: the org. Conflict: the company is linked to another org. Store failures.
pub async fn match_company(store: &dyn Store, company_id: &str, org: &str) -> Result<OrgRecord> {
    let org = store.org(org).await?;
    let name = store
        .directory(SOURCE, "company", None)
        .await?
        .into_iter()
        .find(|d| d.external_id == company_id)
        .map(|d| d.name);
    weft_engine::org::link_external(store, &org.id, SOURCE, company_id, name).await?;
    Ok(org)
}

/// Excludes a company or user from matching and creation (remembered across runs). A
/// company linked to an org is refused, as `weft mapping exclude` refuses it
/// ([`weft_engine::org::exclude_external`]): unlink it first.
///
/// # Errors
/// Usage: a kind that cannot be excluded. Conflict: a linked company. Store failures.
pub async fn exclude(store: &dyn Store, kind: &str, external_id: &str) -> Result<ExcludedRecord> {
    let ex = excludable(kind)?;
    let known = store
        .directory(SOURCE, kind, None)
        .await?
        .into_iter()
        .find(|d| d.external_id == external_id);
    let name = known.as_ref().map(|d| d.name.as_str());
    if kind == "company" {
        weft_engine::org::exclude_external(store, ex, external_id, name).await?;
    } else {
        store.exclude(ex, external_id, name).await?;
        let mut m = user_matches(store).await?;
        if m.remove(external_id).is_some() {
            set_json_setting(store, USER_MATCHES_KEY, &m).await?;
        }
    }
    Ok(ExcludedRecord {
        kind: kind.to_string(),
        id: external_id.to_string(),
        excluded: true,
    })
}

/// Lifts an exclusion: the record is matched or created by the usual rules again. False
/// when it was not excluded.
///
/// # Errors
/// Usage: a kind that cannot be excluded. Store failures.
pub async fn include(store: &dyn Store, kind: &str, external_id: &str) -> Result<bool> {
    let ex = excludable(kind)?;
    Ok(store.unexclude(ex, external_id).await?)
}

/// The excluded companies, then the excluded resources.
///
/// # Errors
/// Store failures.
pub async fn excluded(store: &dyn Store) -> Result<Vec<Exclusion>> {
    let mut rows = Vec::new();
    for (kind, ex) in [("company", EXCLUDE_COMPANY), ("user", EXCLUDE_USER)] {
        for (id, name) in store.exclusions(ex).await? {
            rows.push(Exclusion {
                kind: kind.to_string(),
                external_id: id,
                name,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::orgs::{NewOrg, create};

    #[tokio::test]
    async fn a_linked_company_is_neither_excluded_nor_moved() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let store = store.as_ref();
        for (name, parent) in [("MSP", None), ("Acme", Some("msp")), ("Beta", Some("msp"))] {
            let org = NewOrg {
                name: name.into(),
                parent: parent.map(str::to_string),
                ..NewOrg::default()
            };
            create(store, org).await.unwrap();
        }
        assert_eq!(
            match_company(store, "174", "acme").await.unwrap().id,
            "acme"
        );
        let e = exclude(store, "company", "174").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("`acme`"), "{e}");
        let e = match_company(store, "174", "beta").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(excluded(store).await.unwrap().is_empty());
        let e = match_company(store, "175", "nowhere").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn exclusions_approvals_and_user_matches_are_remembered() {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let store = store.as_ref();
        let e = exclude(store, "configuration", "9").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert_eq!(record_kind("users").unwrap(), "user");
        assert_eq!(
            record_kind("widget").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        exclude(store, "user", "77").await.unwrap();
        let rows = excluded(store).await.unwrap();
        assert_eq!(
            (rows[0].kind.as_str(), rows[0].external_id.as_str()),
            ("user", "77")
        );
        approve(store, "user", "77").await.unwrap();
        assert!(
            excluded(store).await.unwrap().is_empty(),
            "approving includes"
        );
        assert!(!include(store, "user", "77").await.unwrap());
        let e = match_user(store, "77", "u1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(user_matches(store).await.unwrap().is_empty());
    }
}
