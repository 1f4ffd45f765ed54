//! `/api/forms`: deploying form files, listing and describing forms (the same use cases as
//! `weft deploy` and `weft form list|show`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_service::forms::{
    self, FormLinkView, FormSummary, FormView, LinkChange, NewSignedLink, SignedLinkView,
    SubmissionView,
};
use weft_service::workflows::{DeployError, Diagnostic};

use crate::api::body_text;
use crate::body::Body;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// A form deploy's refusal: the diagnostics travel with it.
fn refused(e: DeployError) -> ApiError {
    match e {
        DeployError::Invalid(i) => ApiError::InvalidForm {
            diagnostics: crate::api::diagnostics_json(&i.diagnostics),
            message: i.message,
        },
        DeployError::Failed(e) => e.into(),
    }
}

/// What deploying a form answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormDeployed {
    /// The form's name.
    pub name: String,
    /// The version now latest.
    pub version: i64,
    /// False when the source equals the latest version (nothing new stored).
    pub changed: bool,
    /// Warnings.
    pub diagnostics: Vec<Diagnostic>,
}

/// List deployed forms (latest versions).
#[utoipa::path(
    get,
    path = "/api/forms",
    tag = "forms",
    responses((status = 200, description = "The forms", body = Vec<FormSummary>)),
)]
async fn list_forms(State(state): State<AppState>) -> Result<Json<Vec<FormSummary>>, ApiError> {
    Ok(Json(forms::list(state.store().as_ref()).await?))
}

/// Deploy a form file.
///
/// Stores the YAML as a new version (unless it equals the latest). A form that does not
/// validate is refused with its diagnostics (`invalid_form`) and nothing is stored.
#[utoipa::path(
    post,
    path = "/api/forms",
    tag = "forms",
    request_body(content = String, content_type = "application/yaml", description = "The form file (`form: NAME`, `fields: [...]`)"),
    responses(
        (status = 200, description = "Deployed", body = FormDeployed),
        (status = 400, description = "The body is not UTF-8", body = ErrorBody),
        (status = 422, description = "The form is invalid (`invalid_form`, with its diagnostics)", body = ErrorBody),
    ),
)]
async fn deploy_form(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<FormDeployed>, ApiError> {
    let source = body_text(&body)?;
    let done = forms::deploy(state.store().as_ref(), source, None)
        .await
        .map_err(refused)?;
    Ok(Json(FormDeployed {
        name: done.record.name,
        version: done.record.version,
        changed: !done.unchanged,
        diagnostics: done.diagnostics,
    }))
}

/// Describe one form.
///
/// Its latest version with every field: type, label, section, required, options or the
/// workflow that generates them, the condition under which it is shown.
#[utoipa::path(
    get,
    path = "/api/forms/{name}",
    tag = "forms",
    params(("name" = String, Path, description = "The form's name")),
    responses(
        (status = 200, description = "The form", body = FormView),
        (status = 404, description = "No such form", body = ErrorBody),
    ),
)]
async fn get_form(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<FormView>, ApiError> {
    Ok(Json(forms::show(state.store().as_ref(), &name).await?))
}

/// An org's link to a form.
///
/// Issued on first use: the URL to send the org's people (no weft account needed). Its
/// `state` is `active`, `disabled` or `expired`.
#[utoipa::path(
    get,
    path = "/api/forms/{name}/links/{org}",
    tag = "forms",
    params(
        ("name" = String, Path, description = "The form's name"),
        ("org" = String, Path, description = "The org (id or name)"),
    ),
    responses(
        (status = 200, description = "The link", body = FormLinkView),
        (status = 404, description = "No such form or org", body = ErrorBody),
        (status = 409, description = "The org is inactive", body = ErrorBody),
    ),
)]
async fn get_link(
    State(state): State<AppState>,
    Path((name, org)): Path<(String, String)>,
) -> Result<Json<FormLinkView>, ApiError> {
    Ok(Json(forms::link(state.engine(), &name, &org).await?))
}

/// Rotate an org's link to a form.
///
/// A new URL; the old one (and single-use links signed under it) stops working at once.
#[utoipa::path(
    post,
    path = "/api/forms/{name}/links/{org}/rotate",
    tag = "forms",
    params(
        ("name" = String, Path, description = "The form's name"),
        ("org" = String, Path, description = "The org (id or name)"),
    ),
    responses(
        (status = 200, description = "The new link", body = FormLinkView),
        (status = 404, description = "No such form or org", body = ErrorBody),
        (status = 409, description = "The org is inactive", body = ErrorBody),
    ),
)]
async fn rotate_link(
    State(state): State<AppState>,
    Path((name, org)): Path<(String, String)>,
) -> Result<Json<FormLinkView>, ApiError> {
    Ok(Json(forms::rotate(state.engine(), &name, &org).await?))
}

/// Turn an org's link on or off, or set its expiry.
///
/// `expires`: `never`, a date (the link works through that day, UTC), an RFC 3339 time, or a
/// duration from now (`30d`).
#[utoipa::path(
    patch,
    path = "/api/forms/{name}/links/{org}",
    tag = "forms",
    params(
        ("name" = String, Path, description = "The form's name"),
        ("org" = String, Path, description = "The org (id or name)"),
    ),
    request_body = LinkChange,
    responses(
        (status = 200, description = "The link", body = FormLinkView),
        (status = 404, description = "No such form or org", body = ErrorBody),
        (status = 422, description = "An unknown field or a bad expiry", body = ErrorBody),
    ),
)]
async fn change_link(
    State(state): State<AppState>,
    Path((name, org)): Path<(String, String)>,
    Body(change): Body<LinkChange>,
) -> Result<Json<FormLinkView>, ApiError> {
    Ok(Json(
        forms::change(state.engine(), &name, &org, &change).await?,
    ))
}

/// Make a signed link for an org's people: prefilled values they cannot change, optionally
/// single-use (what `form_link(…)` makes in a workflow's templates).
#[utoipa::path(
    post,
    path = "/api/forms/{name}/links/{org}/signed",
    tag = "forms",
    params(
        ("name" = String, Path, description = "The form's name"),
        ("org" = String, Path, description = "The org (id or name)"),
    ),
    request_body = NewSignedLink,
    responses(
        (status = 200, description = "The link", body = SignedLinkView),
        (status = 400, description = "A prefill too large, a bad or past expiry", body = ErrorBody),
        (status = 404, description = "No such form or org", body = ErrorBody),
        (status = 409, description = "The org is inactive", body = ErrorBody),
    ),
)]
async fn signed_link(
    State(state): State<AppState>,
    Path((name, org)): Path<(String, String)>,
    Body(new): Body<NewSignedLink>,
) -> Result<Json<SignedLinkView>, ApiError> {
    Ok(Json(
        forms::signed_link(state.engine(), &name, &org, &new, false).await?,
    ))
}

/// A preview of a form as an org's people see it (dynamic options from that org): a link
/// for an hour whose submissions are checked and go nowhere.
#[utoipa::path(
    post,
    path = "/api/forms/{name}/preview/{org}",
    tag = "forms",
    params(
        ("name" = String, Path, description = "The form's name"),
        ("org" = String, Path, description = "The org (id or name) whose context fills dynamic options"),
    ),
    responses(
        (status = 200, description = "The preview link", body = SignedLinkView),
        (status = 404, description = "No such form or org", body = ErrorBody),
    ),
)]
async fn preview_link(
    State(state): State<AppState>,
    Path((name, org)): Path<(String, String)>,
) -> Result<Json<SignedLinkView>, ApiError> {
    let none = NewSignedLink::default();
    Ok(Json(
        forms::signed_link(state.engine(), &name, &org, &none, true).await?,
    ))
}

/// Which links to list.
#[derive(Debug, serde::Deserialize, IntoParams)]
struct LinkFilter {
    /// Only this form's.
    form: Option<String>,
    /// Only this org's.
    org: Option<String>,
}

/// List the form links issued.
#[utoipa::path(
    get,
    path = "/api/form-links",
    tag = "forms",
    params(LinkFilter),
    responses((status = 200, description = "The links, by form then org", body = Vec<FormLinkView>)),
)]
async fn list_links(
    State(state): State<AppState>,
    Query(filter): Query<LinkFilter>,
) -> Result<Json<Vec<FormLinkView>>, ApiError> {
    Ok(Json(
        forms::links(
            state.engine(),
            filter.form.as_deref(),
            filter.org.as_deref(),
        )
        .await?,
    ))
}

/// Which submissions to list.
#[derive(Debug, serde::Deserialize, IntoParams)]
struct SubmissionFilter {
    /// Only this form's.
    form: Option<String>,
    /// Only this org's.
    org: Option<String>,
    /// How many, newest first (1 to 1000; default 50).
    limit: Option<i64>,
}

/// List accepted form submissions, newest first.
///
/// Each with its values (secret fields as `***`), the org whose link it came through and
/// the executions it started. Refused submissions are not stored.
#[utoipa::path(
    get,
    path = "/api/form-submissions",
    tag = "forms",
    params(SubmissionFilter),
    responses(
        (status = 200, description = "The submissions", body = Vec<SubmissionView>),
        (status = 422, description = "A limit out of range", body = ErrorBody),
    ),
)]
async fn list_submissions(
    State(state): State<AppState>,
    Query(filter): Query<SubmissionFilter>,
) -> Result<Json<Vec<SubmissionView>>, ApiError> {
    Ok(Json(
        forms::submissions(
            state.store().as_ref(),
            filter.form.as_deref(),
            filter.org.as_deref(),
            filter.limit.unwrap_or(50),
        )
        .await?,
    ))
}

/// The form routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_forms, deploy_form))
        .routes(routes!(get_form))
        .routes(routes!(get_link, change_link))
        .routes(routes!(rotate_link))
        .routes(routes!(signed_link))
        .routes(routes!(preview_link))
        .routes(routes!(list_links))
        .routes(routes!(list_submissions))
}
