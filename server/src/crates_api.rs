//! Crates through the API: the library with its installs, and installing a library crate
//! for an org. The use cases are `weft_service::crates`'s; these handlers only translate.

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_service::ServiceError;
use weft_service::crates::{self, CratesView, InstallReport, InstallRequest, Library};

use crate::body::Body;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// Reads the library on a blocking thread (it reads files).
async fn read_library() -> Result<Library, ApiError> {
    tokio::task::spawn_blocking(crates::library)
        .await
        .map_err(|e| ApiError::Internal(crate::Detail::of(e)))
}

/// The crate library and the installs.
///
/// Crates of the library (crates-library/ or WEFT_CRATES_DIR) with the orgs each is
/// installed for, every install, and the library's unreadable crates.
#[utoipa::path(
    get,
    path = "/api/crates",
    tag = "crates",
    responses((status = 200, description = "The library and installs.", body = CratesView)),
)]
async fn list_crates(State(state): State<AppState>) -> Result<Json<CratesView>, ApiError> {
    let lib = read_library().await?;
    Ok(Json(crates::catalog(state.store().as_ref(), &lib).await?))
}

/// Install a library crate for an organization.
///
/// Checks the org, the parameters (unknown, missing required, wrong type, not allowed) and
/// the requirements (integrations and variables the org resolves), then deploys each
/// workflow as `{workflow}--{org}` (webhook triggers `{trigger}--{org}`) with the parameters
/// as input defaults and records the install. 422 lists every problem at once.
#[utoipa::path(
    post,
    path = "/api/crates/{name}/install",
    tag = "crates",
    request_body = InstallRequest,
    params(("name" = String, Path, description = "The crate's name.")),
    responses(
        (status = 200, description = "Installed.", body = InstallReport),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No such crate in the library", body = ErrorBody),
        (status = 409, description = "Already installed for the org", body = ErrorBody),
        (status = 422, description = "Every problem: org, parameters, requirements, invalid workflows", body = ErrorBody),
    ),
)]
async fn install_crate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<InstallRequest>,
) -> Result<Json<InstallReport>, ApiError> {
    let lib = read_library().await?;
    let dir = lib.find(&name)?;
    let report = crates::install(state.engine(), req.for_crate(dir))
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(report.view()))
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_crates))
        .routes(routes!(install_crate))
}
