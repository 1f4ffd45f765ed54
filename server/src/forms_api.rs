//! `/api/forms`: deploying form files, listing and describing forms (the same use cases as
//! `weft deploy` and `weft form list|show`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_service::forms::{self, FormSummary, FormView};
use weft_service::workflows::{DeployError, Diagnostic};

use crate::api::body_text;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// A form deploy's refusal: the diagnostics travel with it.
fn refused(e: DeployError) -> ApiError {
    match e {
        DeployError::Invalid(i) => ApiError::InvalidForm {
            message: i.message,
            diagnostics: i
                .diagnostics
                .iter()
                .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
                .collect(),
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

/// The form routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_forms, deploy_form))
        .routes(routes!(get_form))
}
