//! `/api/mapping/autotask…`: which weft org each Autotask company belongs to. The use cases
//! (suggestions by identical names, apply, set/unset, exclusions, create-unmatched) live in
//! [`weft_service::mapping`]; these handlers only read the request and answer the result.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_service::mapping::{
    self, Applied, CompanyFilter, CompanyRef, CreateUnmatchedRequest, CreatedOrgs, Excluded,
    FilterRequest, Included, Listing, Mapped, Suggestions, Unmapped,
};

use crate::body::Body;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// Used by the Autotask callouts: the org a company is mapped to.
pub(crate) use weft_service::mapping::org_of_company;

/// The companies a `GET` considers (query parameters).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct FilterQuery {
    /// Only companies of this type: a `companyType` picklist value (`1`) or label
    /// (`Customer`, `Lead`, `Prospect`, `Dead`, `Cancelation`, `Vendor`, `Partner`).
    company_type: Option<String>,
    /// An extra condition `op:field:value` (`eq:city:Denver`, `exist:webAddress`,
    /// `in:ownerResourceID:1,2`); repeatable.
    #[param(style = Form, explode)]
    filter: Vec<String>,
    /// Also inactive companies (default: active only).
    include_inactive: Option<bool>,
    /// The org whose Autotask integration reads the companies (default: the root org).
    org: Option<String>,
}

impl FilterQuery {
    /// Reads the query (`filter` repeats; `include_inactive` alone means true). Unknown
    /// parameters are refused.
    fn parse(params: &[(String, String)]) -> Result<FilterQuery, ApiError> {
        let mut q = FilterQuery::default();
        for (k, v) in params {
            match k.as_str() {
                "company_type" if !v.is_empty() => q.company_type = Some(v.clone()),
                "filter" if !v.is_empty() => q.filter.push(v.clone()),
                "include_inactive" => {
                    q.include_inactive = Some(matches!(v.as_str(), "true" | "1" | ""));
                }
                "org" if !v.is_empty() => q.org = Some(v.clone()),
                "company_type" | "filter" | "org" => {}
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown query parameter `{other}` (company_type, filter, include_inactive, org)"
                    )));
                }
            }
        }
        Ok(q)
    }
}

impl From<FilterQuery> for CompanyFilter {
    fn from(q: FilterQuery) -> Self {
        CompanyFilter {
            company_type: q.company_type,
            filters: q.filter,
            include_inactive: q.include_inactive.unwrap_or(false),
            org: q.org,
        }
    }
}

/// The org ↔ Autotask company mapping.
///
/// Mapped orgs (`matched`), `unmatched_orgs`, `unmatched_companies` (companies of the filter
/// neither mapped nor excluded; `null` with `companies_error` when Autotask cannot be read)
/// and `excluded` companies.
#[utoipa::path(
    get,
    path = "/api/mapping/autotask",
    tag = "mapping",
    operation_id = "listMapping",
    params(FilterQuery),
    responses(
        (status = 200, description = "The mapping", body = Listing),
        (status = 400, description = "An unknown query parameter", body = ErrorBody),
        (status = 422, description = "A malformed filter or an unknown company type", body = ErrorBody),
    ),
)]
async fn list_mapping(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Listing>, ApiError> {
    let filter = FilterQuery::parse(&params)?.into();
    Ok(Json(mapping::list(state.engine(), &filter).await?))
}

/// Suggest mappings by identical names.
///
/// Pairs unmapped orgs with unmapped, non-excluded companies whose names are equal once case
/// and whitespace runs are ignored (`exact: false` when only that made them equal). Stores
/// nothing.
#[utoipa::path(
    get,
    path = "/api/mapping/autotask/suggestions",
    tag = "mapping",
    operation_id = "suggestMapping",
    params(FilterQuery),
    responses(
        (status = 200, description = "The suggestions", body = Suggestions),
        (status = 400, description = "An unknown query parameter", body = ErrorBody),
        (status = 404, description = "The `org` does not exist", body = ErrorBody),
        (status = 409, description = "No Autotask integration, or several root orgs", body = ErrorBody),
        (status = 422, description = "A malformed filter or an unknown company type", body = ErrorBody),
        (status = 502, description = "Autotask answered with an error or could not be reached", body = ErrorBody),
    ),
)]
async fn suggest_mapping(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Suggestions>, ApiError> {
    let filter = FilterQuery::parse(&params)?.into();
    Ok(Json(mapping::suggest(state.engine(), &filter).await?))
}

/// Store the suggested mappings.
///
/// Computes the suggestions for the filter in the body (optional) and stores each match;
/// matches that could not be stored are listed in `failed`.
#[utoipa::path(
    post,
    path = "/api/mapping/autotask/apply",
    tag = "mapping",
    operation_id = "applyMapping",
    request_body(content = FilterRequest, description = "Optional: the companies considered"),
    responses(
        (status = 200, description = "What was stored", body = Applied),
        (status = 404, description = "The `org` does not exist", body = ErrorBody),
        (status = 409, description = "No Autotask integration, or several root orgs", body = ErrorBody),
        (status = 422, description = "A malformed filter or an unknown company type", body = ErrorBody),
        (status = 502, description = "Autotask answered with an error or could not be reached", body = ErrorBody),
    ),
)]
async fn apply_mapping(
    State(state): State<AppState>,
    Body(req): Body<FilterRequest>,
) -> Result<Json<Applied>, ApiError> {
    let filter = req.into();
    let s = mapping::suggest(state.engine(), &filter).await?;
    Ok(Json(mapping::apply(state.store().as_ref(), &s).await?))
}

/// Create orgs for unmatched companies.
///
/// Creates an org below the root org (id: a slug of the company name; attributes: the
/// company's fields) and its mapping for every company of the filter that is neither mapped,
/// matched by name nor excluded. `dry_run` shows what would be created.
#[utoipa::path(
    post,
    path = "/api/mapping/autotask/create-unmatched",
    tag = "mapping",
    operation_id = "createUnmatchedOrgs",
    request_body(content = CreateUnmatchedRequest, description = "Optional: the companies considered, `dry_run`"),
    responses(
        (status = 200, description = "What was created (or would be)", body = CreatedOrgs),
        (status = 404, description = "The `org` does not exist", body = ErrorBody),
        (status = 409, description = "No root org, no Autotask integration, or several root orgs", body = ErrorBody),
        (status = 422, description = "A malformed filter or an unknown company type", body = ErrorBody),
        (status = 502, description = "Autotask answered with an error or could not be reached", body = ErrorBody),
    ),
)]
async fn create_unmatched_orgs(
    State(state): State<AppState>,
    Body(req): Body<CreateUnmatchedRequest>,
) -> Result<Json<CreatedOrgs>, ApiError> {
    let filter = req.filter.into();
    Ok(Json(
        mapping::create_unmatched(state.engine(), &filter, req.dry_run).await?,
    ))
}

/// Exclude a company.
///
/// The company is never suggested nor given an org (remembered). Refused while it is mapped.
#[utoipa::path(
    post,
    path = "/api/mapping/autotask/exclusions",
    tag = "mapping",
    operation_id = "excludeCompany",
    request_body = CompanyRef,
    responses(
        (status = 201, description = "Excluded", body = Excluded),
        (status = 404, description = "There is no such Autotask company", body = ErrorBody),
        (status = 409, description = "The company is mapped to an org, or no Autotask integration", body = ErrorBody),
        (status = 422, description = "`company_id` is missing or not an integer", body = ErrorBody),
        (status = 502, description = "Autotask answered with an error or could not be reached", body = ErrorBody),
    ),
)]
async fn exclude_company(
    State(state): State<AppState>,
    Body(req): Body<CompanyRef>,
) -> Result<(StatusCode, Json<Excluded>), ApiError> {
    let x = mapping::exclude(state.engine(), req.company_id, None).await?;
    Ok((StatusCode::CREATED, Json(x)))
}

/// Lift a company's exclusion.
///
/// The company may be suggested and given an org again.
#[utoipa::path(
    delete,
    path = "/api/mapping/autotask/exclusions/{company_id}",
    tag = "mapping",
    operation_id = "includeCompany",
    params(("company_id" = i64, Path, description = "The Autotask company id.")),
    responses(
        (status = 200, description = "`{company_id, excluded: false}`", body = Included),
        (status = 400, description = "Not a company id", body = ErrorBody),
        (status = 404, description = "The company is not excluded", body = ErrorBody),
    ),
)]
async fn include_company(
    State(state): State<AppState>,
    Path(company_id): Path<String>,
) -> Result<Json<Included>, ApiError> {
    let id = company_id
        .trim()
        .parse::<i64>()
        .map_err(|_| ApiError::BadRequest(format!("`{company_id}` is not a company id")))?;
    Ok(Json(mapping::include(state.store().as_ref(), id).await?))
}

/// Map an org to a company by hand.
///
/// The company must exist in Autotask (its name is kept); a company mapped to another org is
/// a conflict. Lifts the company's exclusion.
#[utoipa::path(
    put,
    path = "/api/mapping/autotask/{org}",
    tag = "mapping",
    operation_id = "setMapping",
    params(("org" = String, Path, description = "The org (id or name).")),
    request_body = CompanyRef,
    responses(
        (status = 200, description = "`{org, company_id, company_name}`", body = Mapped),
        (status = 404, description = "No such org or Autotask company", body = ErrorBody),
        (status = 409, description = "The company is mapped to another org, or no Autotask integration", body = ErrorBody),
        (status = 422, description = "`company_id` is missing or not an integer", body = ErrorBody),
        (status = 502, description = "Autotask answered with an error or could not be reached", body = ErrorBody),
    ),
)]
async fn set_mapping(
    State(state): State<AppState>,
    Path(org): Path<String>,
    Body(req): Body<CompanyRef>,
) -> Result<Json<Mapped>, ApiError> {
    Ok(Json(
        mapping::set(state.engine(), &org, req.company_id, None).await?,
    ))
}

/// Remove an org's mapping.
///
/// The org keeps running; Autotask events of its company run for the owner org again.
#[utoipa::path(
    delete,
    path = "/api/mapping/autotask/{org}",
    tag = "mapping",
    operation_id = "unsetMapping",
    params(("org" = String, Path, description = "The org (id or name).")),
    responses(
        (status = 200, description = "`{org, mapped: false}`", body = Unmapped),
        (status = 404, description = "No such org, or it is not mapped", body = ErrorBody),
    ),
)]
async fn unset_mapping(
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<Json<Unmapped>, ApiError> {
    Ok(Json(mapping::unset(state.store().as_ref(), &org).await?))
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mapping))
        .routes(routes!(suggest_mapping))
        .routes(routes!(apply_mapping))
        .routes(routes!(create_unmatched_orgs))
        .routes(routes!(exclude_company))
        .routes(routes!(include_company))
        .routes(routes!(set_mapping, unset_mapping))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn mapping_query_reads_repeated_filters_and_refuses_unknown_parameters() {
        let f: CompanyFilter = FilterQuery::parse(&pairs(&[
            ("company_type", "Customer"),
            ("filter", "eq:city:Denver"),
            ("filter", "exist:webAddress"),
            ("include_inactive", ""),
            ("org", ""),
        ]))
        .unwrap()
        .into();
        assert_eq!(f.company_type.as_deref(), Some("Customer"));
        assert_eq!(f.filters, vec!["eq:city:Denver", "exist:webAddress"]);
        assert!(f.include_inactive);
        assert_eq!(f.org, None);
        let e = FilterQuery::parse(&pairs(&[("nope", "1")])).unwrap_err();
        assert_eq!(e.code(), "bad_request");
    }
}
