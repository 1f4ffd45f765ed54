//! Reading Autotask companies for the mapping: the client of the integration org, the
//! `op:field:value` filters, company types by value or label.

use std::collections::BTreeMap;

use serde_json::Value;
use weft_actions::autotask::{AutotaskError, Client, ErrorKind, FieldOp, Filter, FilterInput};
use weft_engine::executor::Engine;
use weft_engine::org::{RootOrgError, name_key, root_org};
use weft_engine::store::{OrgRecord, Store, StoreErrorKind};

use super::{COMPANY_FIELDS, Company, CompanyFilter, KIND};
use crate::ServiceError;

/// An Autotask failure: a company that does not exist is not found, anything else upstream.
pub(super) fn autotask_error(e: AutotaskError) -> ServiceError {
    match e.kind {
        ErrorKind::NotFound => ServiceError::not_found(e.message),
        _ => ServiceError::upstream(format!("Autotask: {}", e.message), e),
    }
}

/// No single root org: a store failure stays one, the rest is a conflict naming the fix.
pub(super) fn root_error(e: RootOrgError) -> ServiceError {
    match e {
        RootOrgError::Store(e) => e.into(),
        other => ServiceError::conflict(other.to_string()),
    }
}

pub(super) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
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

/// Parses one `op:field[:value]` condition. Values that read as JSON numbers or booleans
/// are sent as such; `in`/`notIn` take a comma-separated list.
///
/// # Errors
/// Usage: a malformed condition, an unknown operator.
pub fn parse_filter(text: &str) -> Result<Filter, ServiceError> {
    let bad = |why: &str| {
        ServiceError::usage(format!(
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
/// [`root_org`]); `None` when no org is registered. Several root orgs and no `org` is a
/// conflict naming them.
async fn integration_org(
    store: &dyn Store,
    org: Option<&str>,
) -> Result<Option<OrgRecord>, ServiceError> {
    if let Some(o) = org {
        return match store.org(o).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == StoreErrorKind::NotFound => {
                Err(ServiceError::not_found(format!("no organization `{o}`")))
            }
            Err(e) => Err(e.into()),
        };
    }
    match root_org(store).await {
        Ok(r) => Ok(Some(r)),
        Err(RootOrgError::NoOrg) => Ok(None),
        Err(e) => Err(root_error(e)),
    }
}

/// The Autotask client of `org` (see [`CompanyFilter::org`]).
///
/// # Errors
/// Conflict: no Autotask integration for it, or its settings are incomplete; not found: no
/// such org.
pub async fn client(engine: &Engine, org: Option<&str>) -> Result<Client, ServiceError> {
    let store = engine.store().as_ref();
    // With no org yet, an unregistered `default` resolves to the `--integrations` instances.
    let org_id = integration_org(store, org)
        .await?
        .map_or_else(|| "default".to_string(), |o| o.id);
    let integration = engine
        .integration_for(&org_id, KIND, None)
        .await
        .map_err(|e| {
            ServiceError::conflict(format!(
                "{e} (mapping reads companies with the root org's Autotask integration, or `--integrations`)"
            ))
        })?;
    Client::from_integration(&integration).map_err(|e| ServiceError::conflict(e.message))
}

/// `companyType` picklist: value → label.
async fn type_labels(client: &Client) -> Result<BTreeMap<i64, String>, ServiceError> {
    Ok(client
        .picklist("Companies", "companyType")
        .await
        .map_err(autotask_error)?
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
fn company_type(text: &str, labels: &BTreeMap<i64, String>) -> Result<i64, ServiceError> {
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
        ServiceError::usage(format!(
            "unknown company type `{t}` (known: {})",
            known.join(", ")
        ))
    })
}

/// The companies `filter` selects (one paged query, only [`COMPANY_FIELDS`]), by name.
///
/// # Errors
/// Usage: bad filters or company types; upstream: Autotask failures.
pub async fn companies(
    client: &Client,
    filter: &CompanyFilter,
) -> Result<Vec<Company>, ServiceError> {
    let mut filters = filter
        .filters
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut labels = type_labels(client).await?;
    if let Some(t) = &filter.company_type {
        // A type added in Autotask since the picklist was cached: read it again once.
        if company_type(t, &labels).is_err() {
            client
                .refresh_fields("Companies")
                .await
                .map_err(autotask_error)?;
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
        .await
        .map_err(autotask_error)?
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

/// The name of Autotask company `company_id` (`None` when it has none).
///
/// # Errors
/// Not found: there is no such company; upstream: Autotask failures.
pub(super) async fn company_name(
    client: &Client,
    company_id: i64,
) -> Result<Option<String>, ServiceError> {
    match client.get("Companies", company_id).await {
        Ok(c) => Ok(c
            .get("companyName")
            .and_then(Value::as_str)
            .map(str::to_string)),
        Err(e) if e.kind == ErrorKind::NotFound => Err(ServiceError::not_found(format!(
            "there is no Autotask company {company_id}"
        ))),
        Err(e) => Err(autotask_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let usage = |t: &str| parse_filter(t).unwrap_err().kind() == crate::ErrorKind::Usage;
        assert!(usage("bogus:city:x"));
        assert!(usage("eq"));
    }

    #[test]
    fn company_types_resolve_by_value_or_label() {
        let labels: BTreeMap<i64, String> =
            [(1, "Customer".to_string()), (3, "Prospect".to_string())].into();
        assert_eq!(company_type("customer", &labels).unwrap(), 1);
        assert_eq!(company_type(" 3 ", &labels).unwrap(), 3);
        let e = company_type("Martian", &labels).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Usage);
        assert!(e.to_string().contains("1=Customer"), "{e}");
    }
}
