//! Org mapping: which weft org each Autotask company belongs to (what Rewst calls
//! "Organization Mapping"). [`suggest`] pairs orgs and companies whose names are identical,
//! ignoring case and runs of whitespace (`exact: false` when only that made them equal);
//! [`apply`] stores the pairs; [`create_unmatched`] creates an org (a child of the root org)
//! for every company neither mapped, matched nor excluded. Exclusions are remembered: an
//! excluded company is never suggested nor created. Shared by `weft mapping` and the API
//! (`/api/mapping/autotask…`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use weft_actions::autotask::{AutotaskError, Client, ErrorKind, FieldOp, Filter, FilterInput};
use weft_engine::action::now_rfc3339;
use weft_engine::executor::Engine;
use weft_engine::org::{RootOrgError, name_key, root_org, slug};
use weft_engine::store::{OrgMapping, OrgRecord, Store, StoreError, StoreErrorKind};

use crate::{ApiError, AppState};

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

/// A mapping operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// Bad arguments (an unknown company type, a malformed filter).
    #[error("{0}")]
    Usage(String),
    /// No such org or company.
    #[error("{0}")]
    NotFound(String),
    /// The company is mapped to another org, the org is not mapped …
    #[error("{0}")]
    Conflict(String),
    /// No Autotask integration to read companies with.
    #[error("{0}")]
    NoIntegration(String),
    /// Autotask answered with an error or could not be reached.
    #[error("Autotask: {0}")]
    Autotask(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for MappingError {
    fn from(e: StoreError) -> Self {
        match e.kind() {
            StoreErrorKind::NotFound => MappingError::NotFound(e.to_string()),
            StoreErrorKind::Conflict => MappingError::Conflict(e.to_string()),
            _ => MappingError::Store(e),
        }
    }
}

impl From<AutotaskError> for MappingError {
    fn from(e: AutotaskError) -> Self {
        match e.kind {
            ErrorKind::NotFound => MappingError::NotFound(e.message),
            _ => MappingError::Autotask(e.message),
        }
    }
}

impl MappingError {
    /// True for usage errors (CLI exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, MappingError::Usage(_))
    }
}

impl IntoResponse for MappingError {
    fn into_response(self) -> Response {
        match self {
            MappingError::Usage(m) => ApiError::BadRequest(m).into_response(),
            MappingError::NotFound(m) => ApiError::NotFound(m).into_response(),
            MappingError::Conflict(m) | MappingError::NoIntegration(m) => {
                ApiError::Conflict(m).into_response()
            }
            MappingError::Store(e) => ApiError::from(e).into_response(),
            MappingError::Autotask(m) => (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": {"code": "autotask", "message": format!("Autotask: {m}")}})),
            )
                .into_response(),
        }
    }
}

/// An Autotask company as mapping sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

impl Company {
    fn from_record(v: &Value, labels: &BTreeMap<i64, String>) -> Option<Company> {
        let id = as_i64(v.get("id")?)?;
        let company_type = v.get("companyType").and_then(as_i64);
        Some(Company {
            id,
            name: v
                .get("companyName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            company_type,
            company_type_label: company_type.and_then(|t| labels.get(&t).cloned()),
            active: v.get("isActive").and_then(Value::as_bool).unwrap_or(true),
            fields: v.clone(),
        })
    }
}

/// An org, briefly.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// The org.
    pub org: OrgBrief,
    /// The company.
    pub company: Company,
    /// False when the names are equal only once case and whitespace are ignored.
    pub exact: bool,
}

/// A stored mapping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mapped {
    /// The org.
    pub org: OrgBrief,
    /// The company id.
    pub company_id: i64,
    /// The company name when it was mapped.
    pub company_name: Option<String>,
}

/// An excluded company.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Excluded {
    /// Its id.
    pub company_id: i64,
    /// Its name when excluded.
    pub company_name: Option<String>,
}

/// What [`suggest`] found.
#[derive(Debug, Clone, Default, Serialize)]
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
#[derive(Debug, Clone, Default, Serialize)]
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

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses one `op:field[:value]` condition. Values that read as JSON numbers or booleans
/// are sent as such; `in`/`notIn` take a comma-separated list.
///
/// # Errors
/// A malformed condition, an unknown operator.
pub fn parse_filter(text: &str) -> Result<Filter, MappingError> {
    let bad = |why: &str| {
        MappingError::Usage(format!(
            "invalid filter `{text}`: {why} (write op:field:value, e.g. eq:city:Denver)"
        ))
    };
    let mut parts = text.splitn(3, ':');
    let op = parts.next().unwrap_or_default().trim();
    let field = parts.next().map(str::trim).unwrap_or_default();
    if op.is_empty() || field.is_empty() {
        return Err(bad("an operator and a field are required"));
    }
    let scalar = |s: &str| -> Value {
        match serde_json::from_str::<Value>(s.trim()) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
            _ => Value::String(s.to_string()),
        }
    };
    let value = parts.next().map(|v| {
        if op.eq_ignore_ascii_case("in") || op.eq_ignore_ascii_case("notIn") {
            Value::Array(v.split(',').map(|x| scalar(x.trim())).collect())
        } else {
            scalar(v)
        }
    });
    let input = FilterInput {
        op: op.to_string(),
        field: Some(field.to_string()),
        value,
        udf: None,
        items: None,
    };
    weft_actions::autotask::parse_filters(std::slice::from_ref(&input))
        .map_err(|e| bad(&e.message))?
        .pop()
        .ok_or_else(|| bad("empty"))
}

/// The org whose Autotask integration mapping uses: `org`, else the root org (see
/// [`root_org`]); `None` when no org is registered. Several root orgs and no `org` is an
/// error naming them.
async fn integration_org(
    store: &dyn Store,
    org: Option<&str>,
) -> Result<Option<OrgRecord>, MappingError> {
    if let Some(o) = org {
        return match store.org(o).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == StoreErrorKind::NotFound => {
                Err(MappingError::NotFound(format!("no organization `{o}`")))
            }
            Err(e) => Err(e.into()),
        };
    }
    match root_org(store).await {
        Ok(r) => Ok(Some(r)),
        Err(RootOrgError::NoOrg) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl From<RootOrgError> for MappingError {
    fn from(e: RootOrgError) -> Self {
        match e {
            RootOrgError::Store(e) => e.into(),
            other => MappingError::Conflict(other.to_string()),
        }
    }
}

/// The Autotask client of `org` (see [`CompanyFilter::org`]).
///
/// # Errors
/// No Autotask integration for it; its settings are incomplete.
pub async fn client(engine: &Engine, org: Option<&str>) -> Result<Client, MappingError> {
    let store = engine.store().as_ref();
    // With no org yet, an unregistered `default` resolves to the `--integrations` instances.
    let org_id = integration_org(store, org)
        .await?
        .map_or_else(|| "default".to_string(), |o| o.id);
    let integration = engine
        .integration_for(&org_id, KIND, None)
        .await
        .map_err(|e| {
            MappingError::NoIntegration(format!(
                "{e} (mapping reads companies with the root org's Autotask integration, or `--integrations`)"
            ))
        })?;
    Client::from_integration(&integration).map_err(|e| MappingError::NoIntegration(e.message))
}

/// `companyType` picklist: value → label.
async fn type_labels(client: &Client) -> Result<BTreeMap<i64, String>, MappingError> {
    Ok(client
        .picklist("Companies", "companyType")
        .await?
        .iter()
        .filter_map(|p| {
            Some((
                as_i64(p.get("value")?)?,
                p.get("label")?.as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Resolves a company type (value or label) against the picklist.
fn company_type(text: &str, labels: &BTreeMap<i64, String>) -> Result<i64, MappingError> {
    let t = text.trim();
    let found = match t.parse::<i64>() {
        Ok(n) => labels.contains_key(&n).then_some(n),
        Err(_) => labels
            .iter()
            .find(|(_, l)| l.eq_ignore_ascii_case(t))
            .map(|(v, _)| *v),
    };
    found.ok_or_else(|| {
        let known: Vec<String> = labels.iter().map(|(v, l)| format!("{v}={l}")).collect();
        MappingError::Usage(format!(
            "unknown company type `{t}` (known: {})",
            known.join(", ")
        ))
    })
}

/// The companies `filter` selects (one paged query, only [`COMPANY_FIELDS`]).
///
/// # Errors
/// Bad filters or company types; Autotask failures.
pub async fn companies(
    client: &Client,
    filter: &CompanyFilter,
) -> Result<Vec<Company>, MappingError> {
    let mut filters = filter
        .filters
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut labels = type_labels(client).await?;
    if let Some(t) = &filter.company_type {
        // A type added in Autotask since the picklist was cached: read it again once.
        if company_type(t, &labels).is_err() {
            client.refresh_fields("Companies").await?;
            labels = type_labels(client).await?;
        }
        filters.push(Filter::field(
            "companyType",
            FieldOp::Eq,
            company_type(t, &labels)?,
        ));
    }
    if !filter.include_inactive {
        filters.push(Filter::field("isActive", FieldOp::Eq, true));
    }
    if filters.is_empty() {
        filters.push(Filter::all());
    }
    let fields: Vec<String> = COMPANY_FIELDS.iter().map(|f| f.to_string()).collect();
    let mut out: Vec<Company> = client
        .query("Companies", &filters, &fields, None)
        .await?
        .iter()
        .filter_map(|v| Company::from_record(v, &labels))
        .collect();
    out.sort_by(|a, b| {
        name_key(&a.name)
            .cmp(&name_key(&b.name))
            .then(a.id.cmp(&b.id))
    });
    Ok(out)
}

/// Pairs orgs and companies (pure: what [`suggest`] does once everything is read).
pub fn pair(
    orgs: &[OrgRecord],
    companies: Vec<Company>,
    mappings: &[OrgMapping],
    exclusions: &[(String, Option<String>)],
) -> Suggestions {
    let mapped_orgs: HashSet<&str> = mappings.iter().map(|m| m.org_id.as_str()).collect();
    let mapped_companies: HashSet<&str> = mappings.iter().map(|m| m.external_id.as_str()).collect();
    let excluded_ids: HashSet<&str> = exclusions.iter().map(|(id, _)| id.as_str()).collect();
    let by_id: HashMap<&str, &OrgRecord> = orgs.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut candidates: Vec<Company> = companies
        .into_iter()
        .filter(|c| {
            let id = c.id.to_string();
            !mapped_companies.contains(id.as_str()) && !excluded_ids.contains(id.as_str())
        })
        .collect();
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_key.entry(name_key(&c.name)).or_default().push(i);
    }
    let mut taken: HashSet<usize> = HashSet::new();
    let mut matched_idx: Vec<(OrgBrief, usize, bool)> = Vec::new();
    let mut unmatched_orgs = Vec::new();
    for o in orgs
        .iter()
        .filter(|o| o.active && !mapped_orgs.contains(o.id.as_str()))
    {
        let same: Vec<usize> = by_key
            .get(&name_key(&o.name))
            .map(|v| v.iter().copied().filter(|i| !taken.contains(i)).collect())
            .unwrap_or_default();
        // Several companies of that name: only an exact one decides.
        let pick = match same.as_slice() {
            [one] => Some(*one),
            [] => None,
            many => {
                let exact: Vec<usize> = many
                    .iter()
                    .copied()
                    .filter(|i| candidates[*i].name == o.name)
                    .collect();
                (exact.len() == 1).then(|| exact[0])
            }
        };
        match pick {
            Some(i) => {
                taken.insert(i);
                matched_idx.push((o.into(), i, candidates[i].name == o.name));
            }
            None => unmatched_orgs.push(o.into()),
        }
    }
    let mut slots: Vec<Option<Company>> = candidates.drain(..).map(Some).collect();
    // In the companies' order (by name).
    matched_idx.sort_by_key(|(_, i, _)| *i);
    let matched = matched_idx
        .into_iter()
        .map(|(org, i, exact)| Match {
            org,
            company: slots[i].take().expect("taken once"),
            exact,
        })
        .collect();
    let unmatched_companies = slots.into_iter().flatten().collect();
    let already_mapped = mappings
        .iter()
        .map(|m| Mapped {
            org: by_id.get(m.org_id.as_str()).map_or_else(
                || OrgBrief {
                    id: m.org_id.clone(),
                    name: m.org_id.clone(),
                },
                |o| OrgBrief::from(*o),
            ),
            company_id: m.external_id.parse().unwrap_or_default(),
            company_name: m.external_name.clone(),
        })
        .collect();
    let excluded = exclusions
        .iter()
        .map(|(id, name)| Excluded {
            company_id: id.parse().unwrap_or_default(),
            company_name: name.clone(),
        })
        .collect();
    Suggestions {
        matched,
        unmatched_orgs,
        unmatched_companies,
        excluded,
        already_mapped,
    }
}

/// Suggests mappings: reads the companies `filter` selects and pairs them with the
/// registered orgs by name.
///
/// # Errors
/// See [`MappingError`].
pub async fn suggest(engine: &Engine, filter: &CompanyFilter) -> Result<Suggestions, MappingError> {
    let client = client(engine, filter.org.as_deref()).await?;
    let companies = companies(&client, filter).await?;
    let store = engine.store();
    let orgs = store.list_orgs().await?;
    let mappings = store.mappings(KIND).await?;
    let exclusions = store.exclusions(KIND).await?;
    Ok(pair(&orgs, companies, &mappings, &exclusions))
}

/// What [`apply`] stored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    /// The mappings stored.
    pub mapped: Vec<Match>,
    /// Matches not stored, and why.
    pub failed: Vec<Value>,
}

/// Stores the matches of `suggestions`.
///
/// # Errors
/// Store failures other than conflicts (those are reported in [`Applied::failed`]).
pub async fn apply(store: &dyn Store, suggestions: &Suggestions) -> Result<Applied, MappingError> {
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
            Err(e) if e.kind() == StoreErrorKind::Conflict => out.failed.push(json!({
                "org": m.org.id, "company_id": m.company.id, "error": e.to_string(),
            })),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// An org created from a company.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    /// The new org.
    pub org: OrgBrief,
    /// Its company.
    pub company: Company,
}

/// What [`create_unmatched`] did (or would do, in a dry run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreatedOrgs {
    /// True when nothing was stored.
    pub dry_run: bool,
    /// The parent of the new orgs.
    pub parent: Option<String>,
    /// Orgs created, each mapped to its company.
    pub created: Vec<Created>,
    /// Companies skipped, and why.
    pub failed: Vec<Value>,
    /// How many name matches wait for `apply` (their companies get no new org).
    pub pending_matches: usize,
    /// How many excluded companies were skipped.
    pub excluded: usize,
}

/// Creates an org (a child of the root org, id = slug of the company name, attributes = the
/// company's fields) and its mapping for every company `filter` selects that is neither
/// mapped, matched by name nor excluded. With several root orgs, `filter.org` must name the
/// one to create under.
///
/// # Errors
/// No root org, or several and `filter.org` names none of them; see [`suggest`].
pub async fn create_unmatched(
    engine: &Engine,
    filter: &CompanyFilter,
    dry_run: bool,
) -> Result<CreatedOrgs, MappingError> {
    let store = engine.store().as_ref();
    let root = match root_org(store).await {
        Ok(r) => r,
        // Several roots: `--org` naming one of them says which is the MSP.
        Err(RootOrgError::Several(ids)) if filter.org.as_ref().is_some_and(|o| ids.contains(o)) => {
            store.org(filter.org.as_deref().unwrap_or_default()).await?
        }
        Err(RootOrgError::NoOrg) => {
            return Err(MappingError::Conflict(
                "there is no root organization (the MSP) to create client orgs under; create it first"
                    .into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
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
        let name = c.name.trim().to_string();
        let base = slug(&name);
        if base.is_empty() {
            out.failed
                .push(json!({"company_id": c.id, "error": "the company has no usable name"}));
            continue;
        }
        let id = if ids.contains(&base) {
            format!("{base}-{}", c.id)
        } else {
            base
        };
        let mut attributes = Map::new();
        for f in COMPANY_FIELDS {
            if let Some(v) = c.fields.get(*f).filter(|v| !v.is_null()) {
                attributes.insert((*f).to_string(), v.clone());
            }
        }
        let org = OrgRecord {
            id: id.clone(),
            name,
            parent_id: Some(root.id.clone()),
            tags: Vec::new(),
            attributes: Value::Object(attributes),
            active: c.active,
            created_at: now_rfc3339(),
            updated_at: now_rfc3339(),
        };
        if !dry_run {
            if let Err(e) = store.save_org(&org).await {
                if e.kind() == StoreErrorKind::Conflict {
                    out.failed
                        .push(json!({"company_id": c.id, "error": e.to_string()}));
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
/// Lifts an exclusion of the company.
///
/// # Errors
/// No such org or company; the company is mapped to another org.
pub async fn set(
    engine: &Engine,
    org: &str,
    company_id: i64,
    via: Option<&str>,
) -> Result<Mapped, MappingError> {
    let store = engine.store().as_ref();
    let record = store.org(org).await.map_err(|e| match e.kind() {
        StoreErrorKind::NotFound => MappingError::NotFound(format!("no organization `{org}`")),
        _ => e.into(),
    })?;
    let client = client(engine, via).await?;
    let company = client
        .get("Companies", company_id)
        .await
        .map_err(|e| match e.kind {
            ErrorKind::NotFound => {
                MappingError::NotFound(format!("there is no Autotask company {company_id}"))
            }
            _ => e.into(),
        })?;
    let name = company
        .get("companyName")
        .and_then(Value::as_str)
        .map(str::to_string);
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
/// No such org; it is not mapped.
pub async fn unset(store: &dyn Store, org: &str) -> Result<OrgBrief, MappingError> {
    let record = store.org(org).await.map_err(|e| match e.kind() {
        StoreErrorKind::NotFound => MappingError::NotFound(format!("no organization `{org}`")),
        _ => e.into(),
    })?;
    if !store.delete_mapping(&record.id, KIND).await? {
        return Err(MappingError::NotFound(format!(
            "organization `{}` is not mapped to an Autotask company",
            record.id
        )));
    }
    Ok((&record).into())
}

/// Excludes a company from suggestions and creation (remembered). Its name is read from
/// Autotask when it can be.
///
/// # Errors
/// The company is mapped to an org; Autotask says it does not exist.
pub async fn exclude(
    engine: &Engine,
    company_id: i64,
    via: Option<&str>,
) -> Result<Excluded, MappingError> {
    let store = engine.store().as_ref();
    let client = client(engine, via).await?;
    let name = match client.get("Companies", company_id).await {
        Ok(c) => c
            .get("companyName")
            .and_then(Value::as_str)
            .map(str::to_string),
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(MappingError::NotFound(format!(
                "there is no Autotask company {company_id}"
            )));
        }
        Err(e) => return Err(e.into()),
    };
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
/// The company is not excluded.
pub async fn include(store: &dyn Store, company_id: i64) -> Result<(), MappingError> {
    if !store.unexclude(KIND, &company_id.to_string()).await? {
        return Err(MappingError::NotFound(format!(
            "company {company_id} is not excluded"
        )));
    }
    Ok(())
}

/// The mapping as stored, with the unmatched companies when Autotask can be read.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// Stored mappings.
    pub matched: Vec<Mapped>,
    /// Orgs without a mapping.
    pub unmatched_orgs: Vec<OrgBrief>,
    /// Companies (of the filter) neither mapped nor excluded; `None` when Autotask could
    /// not be read (see `companies_error`).
    pub unmatched_companies: Option<Vec<Company>>,
    /// Why the companies could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub companies_error: Option<String>,
    /// Excluded companies.
    pub excluded: Vec<Excluded>,
}

/// Lists the stored mapping.
///
/// # Errors
/// Store failures; bad filters.
pub async fn list(engine: &Engine, filter: &CompanyFilter) -> Result<Listing, MappingError> {
    let store = engine.store();
    let orgs = store.list_orgs().await?;
    let mappings = store.mappings(KIND).await?;
    let exclusions = store.exclusions(KIND).await?;
    let read = async {
        let client = client(engine, filter.org.as_deref()).await?;
        companies(&client, filter).await
    };
    let (companies, companies_error) = match read.await {
        Ok(c) => (Some(c), None),
        Err(e @ MappingError::Usage(_)) => return Err(e),
        Err(e) => (None, Some(e.to_string())),
    };
    let mapped_companies: HashSet<&str> = mappings.iter().map(|m| m.external_id.as_str()).collect();
    let excluded_ids: HashSet<&str> = exclusions.iter().map(|(id, _)| id.as_str()).collect();
    let unmatched_companies = companies.map(|cs| {
        cs.into_iter()
            .filter(|c| {
                let id = c.id.to_string();
                !mapped_companies.contains(id.as_str()) && !excluded_ids.contains(id.as_str())
            })
            .collect()
    });
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

// --- HTTP handlers -------------------------------------------------------------------------

fn filter_from_query(params: &[(String, String)]) -> Result<CompanyFilter, MappingError> {
    let mut f = CompanyFilter::default();
    for (k, v) in params {
        match k.as_str() {
            "company_type" if !v.is_empty() => f.company_type = Some(v.clone()),
            "company_type" => {}
            "filter" if !v.is_empty() => f.filters.push(v.clone()),
            "filter" => {}
            "include_inactive" => f.include_inactive = matches!(v.as_str(), "true" | "1" | ""),
            "org" if !v.is_empty() => f.org = Some(v.clone()),
            "org" => {}
            other => {
                return Err(MappingError::Usage(format!(
                    "unknown query parameter `{other}` (company_type, filter, include_inactive, org)"
                )));
            }
        }
    }
    Ok(f)
}

/// The body as an object (see [`crate::api::body_object`]: an empty body is `{}`).
fn object(body: &[u8]) -> Result<Map<String, Value>, MappingError> {
    crate::api::body_object(body).map_err(|e| MappingError::Usage(e.to_string()))
}

fn filter_from_body(body: &[u8], shape: &str) -> Result<CompanyFilterLoose, MappingError> {
    serde_json::from_value(Value::Object(object(body)?))
        .map_err(|e| MappingError::Usage(format!("the body must be {shape}: {e}")))
}

fn engine(state: &AppState) -> &Arc<Engine> {
    state.engine()
}

/// `GET /api/mapping/autotask`.
pub(crate) async fn list_handler(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let run = async {
        let f = filter_from_query(&params)?;
        list(engine(&state), &f).await
    };
    match run.await {
        Ok(l) => Json(l).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/mapping/autotask/suggestions`.
pub(crate) async fn suggestions_handler(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let run = async {
        let f = filter_from_query(&params)?;
        suggest(engine(&state), &f).await
    };
    match run.await {
        Ok(s) => Json(s).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/mapping/autotask/apply`.
pub(crate) async fn apply_handler(State(state): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let f = filter_from_body(&body, "{company_type?, filters?, include_inactive?, org?}")?
            .into_filter();
        let s = suggest(engine(&state), &f).await?;
        apply(state.store().as_ref(), &s).await
    };
    match run.await {
        Ok(a) => Json(a).into_response(),
        Err(e) => e.into_response(),
    }
}

fn company_id_of(body: &[u8]) -> Result<i64, MappingError> {
    const SHAPE: &str = "the body must be {\"company_id\": N}";
    let b = object(body)?;
    if let Some(k) = b.keys().find(|k| *k != "company_id") {
        return Err(MappingError::Usage(format!("unknown field `{k}`: {SHAPE}")));
    }
    let id = b
        .get("company_id")
        .ok_or_else(|| MappingError::Usage(format!("`company_id` is required: {SHAPE}")))?;
    as_i64(id).ok_or_else(|| MappingError::Usage("`company_id` must be an integer".into()))
}

/// `PUT /api/mapping/autotask/{org}` with `{company_id}`.
pub(crate) async fn set_handler(
    State(state): State<AppState>,
    Path(org): Path<String>,
    body: Bytes,
) -> Response {
    let run = async {
        let id = company_id_of(&body)?;
        set(engine(&state), &org, id, None).await
    };
    match run.await {
        Ok(m) => Json(m).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /api/mapping/autotask/{org}`.
pub(crate) async fn unset_handler(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Response {
    match unset(state.store().as_ref(), &org).await {
        Ok(o) => Json(json!({"org": o, "mapped": false})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/mapping/autotask/exclusions` with `{company_id}`.
pub(crate) async fn exclude_handler(State(state): State<AppState>, body: Bytes) -> Response {
    let run = async {
        let id = company_id_of(&body)?;
        exclude(engine(&state), id, None).await
    };
    match run.await {
        Ok(x) => (StatusCode::CREATED, Json(x)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /api/mapping/autotask/exclusions/{company_id}`.
pub(crate) async fn include_handler(
    State(state): State<AppState>,
    Path(company_id): Path<String>,
) -> Response {
    let run = async {
        let id = company_id
            .trim()
            .parse::<i64>()
            .map_err(|_| MappingError::Usage(format!("`{company_id}` is not a company id")))?;
        include(state.store().as_ref(), id).await?;
        Ok::<_, MappingError>(id)
    };
    match run.await {
        Ok(id) => Json(json!({"company_id": id, "excluded": false})).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompanyFilterLoose {
    company_type: Option<Value>,
    filters: Vec<String>,
    include_inactive: bool,
    org: Option<String>,
    dry_run: bool,
}

impl CompanyFilterLoose {
    fn into_filter(self) -> CompanyFilter {
        CompanyFilter {
            company_type: self.company_type.map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            }),
            filters: self.filters,
            include_inactive: self.include_inactive,
            org: self.org,
        }
    }
}

/// `POST /api/mapping/autotask/create-unmatched`.
pub(crate) async fn create_unmatched_handler(
    State(state): State<AppState>,
    body: Bytes,
) -> Response {
    let run = async {
        let b = filter_from_body(
            &body,
            "{company_type?, filters?, include_inactive?, org?, dry_run?}",
        )?;
        let dry_run = b.dry_run;
        let f = b.into_filter();
        create_unmatched(engine(&state), &f, dry_run).await
    };
    match run.await {
        Ok(c) => Json(c).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use axum::routing::{delete, get, post, put};
    utoipa_axum::router::OpenApiRouter::new()
        .route("/api/mapping/autotask", get(list_handler))
        .route(
            "/api/mapping/autotask/suggestions",
            get(suggestions_handler),
        )
        .route("/api/mapping/autotask/apply", post(apply_handler))
        .route(
            "/api/mapping/autotask/create-unmatched",
            post(create_unmatched_handler),
        )
        .route("/api/mapping/autotask/exclusions", post(exclude_handler))
        .route(
            "/api/mapping/autotask/exclusions/{company_id}",
            delete(include_handler),
        )
        .route(
            "/api/mapping/autotask/{org}",
            put(set_handler).delete(unset_handler),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str, name: &str, parent: Option<&str>) -> OrgRecord {
        OrgRecord {
            id: id.into(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            tags: vec![],
            attributes: json!({}),
            active: true,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn company(id: i64, name: &str) -> Company {
        Company {
            id,
            name: name.into(),
            company_type: Some(1),
            company_type_label: Some("Customer".into()),
            active: true,
            fields: json!({"id": id, "companyName": name}),
        }
    }

    #[test]
    fn pairs_by_name_ignoring_case_and_whitespace_and_skips_mapped_and_excluded() {
        let orgs = vec![
            org("msp", "MSP", None),
            org("acme", "Acme Dental", Some("msp")),
            org("summit", "  summit  LAW group ", Some("msp")),
            org("mapped", "Mapped Co", Some("msp")),
            org("lonely", "Nobody Inc", Some("msp")),
        ];
        let companies = vec![
            company(1, "Acme Dental"),
            company(2, "Summit Law Group"),
            company(3, "Mapped Co"),
            company(4, "Excluded Co"),
            company(5, "Free Co"),
        ];
        let mappings = vec![OrgMapping {
            org_id: "mapped".into(),
            kind: KIND.into(),
            external_id: "3".into(),
            external_name: Some("Mapped Co".into()),
            created_at: String::new(),
        }];
        let s = pair(&orgs, companies, &mappings, &[("4".into(), None)]);
        let m: Vec<(&str, i64, bool)> = s
            .matched
            .iter()
            .map(|m| (m.org.id.as_str(), m.company.id, m.exact))
            .collect();
        assert_eq!(m, vec![("acme", 1, true), ("summit", 2, false)]);
        let uo: Vec<&str> = s.unmatched_orgs.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(uo, vec!["msp", "lonely"]);
        let uc: Vec<i64> = s.unmatched_companies.iter().map(|c| c.id).collect();
        assert_eq!(uc, vec![5]);
        assert_eq!(s.excluded[0].company_id, 4);
        assert_eq!(s.already_mapped[0].company_id, 3);
    }

    #[test]
    fn ambiguous_names_match_only_exactly() {
        let orgs = vec![org("a", "Acme", None)];
        let s = pair(
            &orgs,
            vec![company(1, "ACME"), company(2, "acme")],
            &[],
            &[],
        );
        assert!(s.matched.is_empty());
        let s = pair(
            &orgs,
            vec![company(1, "ACME"), company(2, "Acme")],
            &[],
            &[],
        );
        assert_eq!(s.matched[0].company.id, 2);
        assert!(s.matched[0].exact);
    }

    #[test]
    fn filters_parse() {
        assert_eq!(
            parse_filter("eq:city:Denver").unwrap(),
            Filter::field("city", FieldOp::Eq, "Denver")
        );
        assert_eq!(
            parse_filter("gt:id:10").unwrap(),
            Filter::field("id", FieldOp::Gt, 10)
        );
        assert!(matches!(
            parse_filter("in:ownerResourceID:1,2").unwrap(),
            Filter::Field {
                op: FieldOp::In,
                ..
            }
        ));
        assert!(parse_filter("exist:webAddress").is_ok());
        assert!(parse_filter("bogus:city:x").unwrap_err().is_usage());
        assert!(parse_filter("eq").unwrap_err().is_usage());
    }
}
