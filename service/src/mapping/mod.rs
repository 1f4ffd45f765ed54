//! Org mapping: which weft org each Autotask company belongs to (what Rewst calls
//! "Organization Mapping"). [`suggest`] pairs orgs and companies whose names are identical,
//! ignoring case and runs of whitespace (`exact: false` when only that made them equal);
//! [`apply`] stores the pairs; [`set`]/[`unset`] map by hand; [`exclude`]/[`include`]
//! remember companies that are never suggested nor created; [`create_unmatched`] creates an
//! org (a child of the root org) for every company neither mapped, matched nor excluded.
//! Linking and excluding follow `weft_engine::org::{link_external, exclude_external}`: a
//! company linked to another org is refused, never moved. Called by `weft mapping` and the
//! API (`/api/mapping/autotask…`).

mod companies;
mod pair;

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use weft_engine::action::now_rfc3339;
use weft_engine::executor::Engine;
use weft_engine::org::{RootOrgError, root_org, slug};
use weft_engine::store::{OrgMapping, OrgRecord, Store, StoreError, StoreErrorKind};

pub use companies::{client, companies, parse_filter};
pub use pair::pair;

use crate::{ErrorKind, ServiceError};

/// The mapping kind (and integration kind) of Autotask companies.
pub const KIND: &str = "autotask";

/// The company fields read (and kept as attributes of the orgs created from companies).
pub const COMPANY_FIELDS: &[&str] = &[
    "id",
    "companyName",
    "companyType",
    "isActive",
    "phone",
    "address1",
    "city",
    "state",
    "postalCode",
    "webAddress",
];

/// An Autotask company as mapping sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Company {
    /// Its id.
    pub id: i64,
    /// `companyName`.
    pub name: String,
    /// `companyType` (picklist value).
    pub company_type: Option<i64>,
    /// Its label (`Customer` …), when known.
    pub company_type_label: Option<String>,
    /// `isActive`.
    pub active: bool,
    /// The fields read ([`COMPANY_FIELDS`]).
    #[serde(skip)]
    pub fields: Value,
}

/// An org, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgBrief {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

impl From<&OrgRecord> for OrgBrief {
    fn from(o: &OrgRecord) -> Self {
        OrgBrief {
            id: o.id.clone(),
            name: o.name.clone(),
        }
    }
}

/// An org and the company of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Match {
    /// The org.
    pub org: OrgBrief,
    /// The company.
    pub company: Company,
    /// False when the names are equal only once case and whitespace are ignored.
    pub exact: bool,
}

/// A stored mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Mapped {
    /// The org.
    pub org: OrgBrief,
    /// The company id.
    pub company_id: i64,
    /// The company name when it was mapped.
    pub company_name: Option<String>,
}

/// An excluded company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Excluded {
    /// Its id.
    pub company_id: i64,
    /// Its name when excluded.
    pub company_name: Option<String>,
}

/// What [`suggest`] found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Suggestions {
    /// Unmapped orgs and unmapped companies of the same name.
    pub matched: Vec<Match>,
    /// Orgs neither mapped nor matched.
    pub unmatched_orgs: Vec<OrgBrief>,
    /// Companies (of the filter) neither mapped, matched nor excluded.
    pub unmatched_companies: Vec<Company>,
    /// Excluded companies (all of them, whatever the filter).
    pub excluded: Vec<Excluded>,
    /// Mappings already stored.
    pub already_mapped: Vec<Mapped>,
}

/// Which companies to consider.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CompanyFilter {
    /// A `companyType` picklist value (`1`) or label (`Customer`).
    pub company_type: Option<String>,
    /// Extra conditions `op:field:value` (`eq:city:Denver`, `exist:webAddress`,
    /// `in:ownerResourceID:1,2`).
    pub filters: Vec<String>,
    /// Also inactive companies (default: active only).
    pub include_inactive: bool,
    /// The org whose Autotask integration is used (default: the root org).
    pub org: Option<String>,
}

/// A company type in a request: a `companyType` picklist value (`1`) or label (`Customer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CompanyType {
    /// A picklist value.
    Value(i64),
    /// A label, or a value written as text.
    Label(String),
}

/// The companies a request considers (`POST …/apply`; all fields optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct FilterRequest {
    /// A `companyType` value or label.
    pub company_type: Option<CompanyType>,
    /// Extra conditions `op:field:value`.
    pub filters: Vec<String>,
    /// Also inactive companies (default: active only).
    pub include_inactive: bool,
    /// The org whose Autotask integration is used (default: the root org).
    pub org: Option<String>,
}

impl From<FilterRequest> for CompanyFilter {
    fn from(r: FilterRequest) -> Self {
        CompanyFilter {
            company_type: r.company_type.map(|t| match t {
                CompanyType::Value(v) => v.to_string(),
                CompanyType::Label(l) => l,
            }),
            filters: r.filters,
            include_inactive: r.include_inactive,
            org: r.org,
        }
    }
}

/// `POST …/create-unmatched`: the companies to consider, and whether to store nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CreateUnmatchedRequest {
    /// The companies considered.
    #[serde(flatten)]
    pub filter: FilterRequest,
    /// Show what would be created; store nothing.
    pub dry_run: bool,
}

/// A company named in a request: `{"company_id": N}` (an integer, or one written as text).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyRef {
    /// The Autotask company id.
    #[serde(deserialize_with = "company_id")]
    pub company_id: i64,
}

fn company_id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Int(i64),
        Text(String),
    }
    match Id::deserialize(d) {
        Ok(Id::Int(n)) => Some(n),
        Ok(Id::Text(s)) => s.trim().parse().ok(),
        Err(_) => None,
    }
    .ok_or_else(|| serde::de::Error::custom("`company_id` must be an integer"))
}

/// A company not mapped by [`apply`], and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotApplied {
    /// The org it matched.
    pub org: String,
    /// The company.
    pub company_id: i64,
    /// Why it was not stored.
    pub error: String,
}

/// What [`apply`] stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Applied {
    /// The mappings stored.
    pub mapped: Vec<Match>,
    /// Matches not stored, and why.
    pub failed: Vec<NotApplied>,
}

/// An org created from a company.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Created {
    /// The new org.
    pub org: OrgBrief,
    /// Its company.
    pub company: Company,
}

/// A company [`create_unmatched`] skipped, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Skipped {
    /// The company.
    pub company_id: i64,
    /// Why no org was created.
    pub error: String,
}

/// What [`create_unmatched`] did (or would do, in a dry run).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreatedOrgs {
    /// True when nothing was stored.
    pub dry_run: bool,
    /// The parent of the new orgs.
    pub parent: Option<String>,
    /// Orgs created, each mapped to its company.
    pub created: Vec<Created>,
    /// Companies skipped, and why.
    pub failed: Vec<Skipped>,
    /// How many name matches wait for `apply` (their companies get no new org).
    pub pending_matches: usize,
    /// How many excluded companies were skipped.
    pub excluded: usize,
}

/// What [`unset`] did: `{org, mapped: false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Unmapped {
    /// The org, now without a company.
    pub org: OrgBrief,
    /// Always false.
    pub mapped: bool,
}

/// What [`include`] did: `{company_id, excluded: false}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Included {
    /// The company.
    pub company_id: i64,
    /// Always false.
    pub excluded: bool,
}

/// The mapping as stored, with the unmatched companies when Autotask can be read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    /// Stored mappings.
    pub matched: Vec<Mapped>,
    /// Orgs without a mapping.
    pub unmatched_orgs: Vec<OrgBrief>,
    /// Companies (of the filter) neither mapped nor excluded; `null` when Autotask could
    /// not be read (see `companies_error`).
    pub unmatched_companies: Option<Vec<Company>>,
    /// Why the companies could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companies_error: Option<String>,
    /// Excluded companies.
    pub excluded: Vec<Excluded>,
}

/// The org `org`, or not found naming it.
async fn org_record(store: &dyn Store, org: &str) -> Result<OrgRecord, ServiceError> {
    store.org(org).await.map_err(|e| match e.kind() {
        StoreErrorKind::NotFound => ServiceError::not_found(format!("no organization `{org}`")),
        _ => e.into(),
    })
}

/// Suggests mappings: reads the companies `filter` selects and pairs them with the
/// registered orgs by name. Stores nothing.
///
/// # Errors
/// Usage (filters, company type), not found (the integration org), conflict (no Autotask
/// integration, several root orgs), upstream (Autotask failed), store.
pub async fn suggest(engine: &Engine, filter: &CompanyFilter) -> Result<Suggestions, ServiceError> {
    let client = client(engine, filter.org.as_deref()).await?;
    let companies = companies(&client, filter).await?;
    let store = engine.store();
    let orgs = store.list_orgs().await?;
    let mappings = store.mappings(KIND).await?;
    let exclusions = store.exclusions(KIND).await?;
    Ok(pair(&orgs, companies, &mappings, &exclusions))
}

/// Stores the matches of `suggestions`.
///
/// # Errors
/// Store failures other than conflicts (those are reported in [`Applied::failed`]).
pub async fn apply(store: &dyn Store, suggestions: &Suggestions) -> Result<Applied, ServiceError> {
    let mut out = Applied::default();
    for m in &suggestions.matched {
        let mapping = OrgMapping {
            org_id: m.org.id.clone(),
            kind: KIND.into(),
            external_id: m.company.id.to_string(),
            external_name: Some(m.company.name.clone()),
            created_at: now_rfc3339(),
        };
        match store.set_mapping(&mapping).await {
            Ok(()) => out.mapped.push(m.clone()),
            Err(e) if e.kind() == StoreErrorKind::Conflict => out.failed.push(NotApplied {
                org: m.org.id.clone(),
                company_id: m.company.id,
                error: e.to_string(),
            }),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The org new client orgs are created under: the root org; with several roots, the one
/// `filter.org` names.
async fn parent_of_new_orgs(
    store: &dyn Store,
    filter: &CompanyFilter,
) -> Result<OrgRecord, ServiceError> {
    match root_org(store).await {
        Ok(r) => Ok(r),
        // Several roots: `--org` naming one of them says which is the MSP.
        Err(RootOrgError::Several(ids)) if filter.org.as_ref().is_some_and(|o| ids.contains(o)) => {
            Ok(store.org(filter.org.as_deref().unwrap_or_default()).await?)
        }
        Err(RootOrgError::NoOrg) => Err(ServiceError::conflict(
            "there is no root organization (the MSP) to create client orgs under; create it first",
        )),
        Err(e) => Err(companies::root_error(e)),
    }
}

/// The org made from company `c` below `parent`: id a slug of its name (`-ID` appended when
/// taken), attributes its fields.
fn org_of(c: &Company, id: String, parent: &str) -> OrgRecord {
    let mut attributes = Map::new();
    for f in COMPANY_FIELDS {
        if let Some(v) = c.fields.get(*f).filter(|v| !v.is_null()) {
            attributes.insert((*f).to_string(), v.clone());
        }
    }
    OrgRecord {
        id,
        name: c.name.trim().to_string(),
        parent_id: Some(parent.to_string()),
        tags: Vec::new(),
        attributes: Value::Object(attributes),
        active: c.active,
        created_at: now_rfc3339(),
        updated_at: now_rfc3339(),
    }
}

/// Creates an org (a child of the root org, id = slug of the company name, attributes = the
/// company's fields) and its mapping for every company `filter` selects that is neither
/// mapped, matched by name nor excluded. With several root orgs, `filter.org` must name the
/// one to create under. Companies that cannot get an org are reported in
/// [`CreatedOrgs::failed`].
///
/// # Errors
/// Conflict: no root org, or several and `filter.org` names none of them; see [`suggest`].
pub async fn create_unmatched(
    engine: &Engine,
    filter: &CompanyFilter,
    dry_run: bool,
) -> Result<CreatedOrgs, ServiceError> {
    let store = engine.store().as_ref();
    let root = parent_of_new_orgs(store, filter).await?;
    let s = suggest(engine, filter).await?;
    let mut out = CreatedOrgs {
        dry_run,
        parent: Some(root.id.clone()),
        pending_matches: s.matched.len(),
        excluded: s.excluded.len(),
        ..CreatedOrgs::default()
    };
    let mut ids: HashSet<String> = store.list_orgs().await?.into_iter().map(|o| o.id).collect();
    for c in s.unmatched_companies {
        let base = slug(c.name.trim());
        if base.is_empty() {
            out.failed.push(Skipped {
                company_id: c.id,
                error: "the company has no usable name".into(),
            });
            continue;
        }
        let id = if ids.contains(&base) {
            format!("{base}-{}", c.id)
        } else {
            base
        };
        let org = org_of(&c, id.clone(), &root.id);
        if !dry_run {
            if let Err(e) = store.save_org(&org).await {
                if e.kind() == StoreErrorKind::Conflict {
                    out.failed.push(Skipped {
                        company_id: c.id,
                        error: e.to_string(),
                    });
                    continue;
                }
                return Err(e.into());
            }
            store
                .set_mapping(&OrgMapping {
                    org_id: id.clone(),
                    kind: KIND.into(),
                    external_id: c.id.to_string(),
                    external_name: Some(c.name.clone()),
                    created_at: now_rfc3339(),
                })
                .await?;
        }
        ids.insert(id);
        out.created.push(Created {
            org: (&org).into(),
            company: c,
        });
    }
    Ok(out)
}

/// Maps `org` to company `company_id` by hand (the company must exist; its name is kept).
/// Lifts an exclusion of the company. `via` names the org whose Autotask integration reads
/// the company (default: the root org).
///
/// # Errors
/// Not found: no such org or company; conflict: the company is linked to another org (it is
/// never moved), no Autotask integration; upstream: Autotask failed.
pub async fn set(
    engine: &Engine,
    org: &str,
    company_id: i64,
    via: Option<&str>,
) -> Result<Mapped, ServiceError> {
    let store = engine.store().as_ref();
    let record = org_record(store, org).await?;
    let client = client(engine, via).await?;
    let name = companies::company_name(&client, company_id).await?;
    weft_engine::org::link_external(
        store,
        &record.id,
        KIND,
        &company_id.to_string(),
        name.clone(),
    )
    .await?;
    Ok(Mapped {
        org: (&record).into(),
        company_id,
        company_name: name,
    })
}

/// Unmaps `org`.
///
/// # Errors
/// Not found: no such org, or it is not mapped.
pub async fn unset(store: &dyn Store, org: &str) -> Result<Unmapped, ServiceError> {
    let record = org_record(store, org).await?;
    if !store.delete_mapping(&record.id, KIND).await? {
        return Err(ServiceError::not_found(format!(
            "organization `{}` is not mapped to an Autotask company",
            record.id
        )));
    }
    Ok(Unmapped {
        org: (&record).into(),
        mapped: false,
    })
}

/// Excludes a company from suggestions and creation (remembered). Its name is read from
/// Autotask.
///
/// # Errors
/// Conflict: the company is linked to an org (unlink it first); not found: Autotask says it
/// does not exist; upstream: Autotask failed.
pub async fn exclude(
    engine: &Engine,
    company_id: i64,
    via: Option<&str>,
) -> Result<Excluded, ServiceError> {
    let store = engine.store().as_ref();
    let client = client(engine, via).await?;
    let name = companies::company_name(&client, company_id).await?;
    weft_engine::org::exclude_external(store, KIND, &company_id.to_string(), name.as_deref())
        .await?;
    Ok(Excluded {
        company_id,
        company_name: name,
    })
}

/// Lifts an exclusion.
///
/// # Errors
/// Not found: the company is not excluded.
pub async fn include(store: &dyn Store, company_id: i64) -> Result<Included, ServiceError> {
    if !store.unexclude(KIND, &company_id.to_string()).await? {
        return Err(ServiceError::not_found(format!(
            "company {company_id} is not excluded"
        )));
    }
    Ok(Included {
        company_id,
        excluded: false,
    })
}

/// Lists the stored mapping, with the companies of `filter` neither mapped nor excluded when
/// Autotask can be read (else `unmatched_companies` is `None` and `companies_error` says why).
///
/// # Errors
/// Usage: bad filters or company type; store failures.
pub async fn list(engine: &Engine, filter: &CompanyFilter) -> Result<Listing, ServiceError> {
    let store = engine.store();
    let orgs = store.list_orgs().await?;
    let mappings = store.mappings(KIND).await?;
    let exclusions = store.exclusions(KIND).await?;
    let read = async {
        let client = client(engine, filter.org.as_deref()).await?;
        companies(&client, filter).await
    };
    let (unmatched_companies, companies_error) = match read.await {
        Ok(c) => (Some(pair::unclaimed(c, &mappings, &exclusions)), None),
        Err(e) if e.kind() == ErrorKind::Usage => return Err(e),
        Err(e) => (None, Some(e.to_string())),
    };
    let s = pair(&orgs, Vec::new(), &mappings, &exclusions);
    Ok(Listing {
        matched: s.already_mapped,
        unmatched_orgs: s.unmatched_orgs,
        unmatched_companies,
        companies_error,
        excluded: s.excluded,
    })
}

/// The org mapped to Autotask company `company_id`, if any.
///
/// # Errors
/// Store failures.
pub async fn org_of_company(
    store: &dyn Store,
    company_id: i64,
) -> Result<Option<String>, StoreError> {
    let id = company_id.to_string();
    Ok(store
        .mappings(KIND)
        .await?
        .into_iter()
        .find(|m| m.external_id == id)
        .map(|m| m.org_id))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_read_as_before() {
        let r: CompanyRef = serde_json::from_value(json!({"company_id": "174"})).unwrap();
        assert_eq!(r.company_id, 174);
        let r: CompanyRef = serde_json::from_value(json!({"company_id": 7})).unwrap();
        assert_eq!(r.company_id, 7);
        assert!(serde_json::from_value::<CompanyRef>(json!({"company_id": "x"})).is_err());
        assert!(serde_json::from_value::<CompanyRef>(json!({"company_id": 1, "o": 2})).is_err());
        assert!(serde_json::from_value::<CompanyRef>(json!({})).is_err());
        let c: CreateUnmatchedRequest =
            serde_json::from_value(json!({"company_type": 8, "dry_run": true})).unwrap();
        assert!(c.dry_run);
        assert_eq!(
            CompanyFilter::from(c.filter).company_type.as_deref(),
            Some("8")
        );
        let c: CreateUnmatchedRequest =
            serde_json::from_value(json!({"company_type": "Customer", "extra": 1})).unwrap();
        assert_eq!(
            CompanyFilter::from(c.filter).company_type.as_deref(),
            Some("Customer")
        );
        let a: FilterRequest = serde_json::from_value(json!({})).unwrap();
        assert!(!a.include_inactive && a.filters.is_empty());
    }

    #[test]
    fn answers_keep_their_shapes() {
        let l = Listing {
            matched: vec![],
            unmatched_orgs: vec![],
            unmatched_companies: None,
            companies_error: None,
            excluded: vec![],
        };
        assert_eq!(
            serde_json::to_value(&l).unwrap(),
            json!({"matched": [], "unmatched_orgs": [], "unmatched_companies": null, "excluded": []})
        );
        let a = Applied {
            mapped: vec![],
            failed: vec![NotApplied {
                org: "a".into(),
                company_id: 1,
                error: "taken".into(),
            }],
        };
        assert_eq!(
            serde_json::to_string(&a.failed[0]).unwrap(),
            r#"{"org":"a","company_id":1,"error":"taken"}"#
        );
        let u = Unmapped {
            org: OrgBrief {
                id: "a".into(),
                name: "A".into(),
            },
            mapped: false,
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"org": {"id": "a", "name": "A"}, "mapped": false})
        );
    }
}
