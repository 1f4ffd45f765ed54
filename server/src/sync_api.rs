//! The PSA directory sync through the API: preview and apply a sync, read and change its
//! settings, exclude or approve records — what `weft sync autotask` does, through the same
//! `weft_service::sync` use cases.

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_service::sync::{
    self, ApprovedRecord, ExcludedRecord, Mode, Options, Settings, SettingsChange, SyncReport,
};

use crate::body::Body;
use crate::openapi::ErrorBody;
use crate::{ApiError, AppState};

/// Preview a PSA directory sync (changes nothing; recorded as a preview run).
///
/// The report: `kinds` per record kind (company, user, contact, configuration, location)
/// with counts (`created`, `matched`, `excluded`, `pending`, …), name lists, and `items` —
/// each record that changes as `{id, name, change}` (`create`, `pending`, `match`,
/// `exclude`, `deactivate`), the id to pass to `/api/sync/autotask/{kind}/{id}/exclude` or
/// `/create`.
#[utoipa::path(
    post,
    path = "/api/sync/autotask/preview",
    tag = "sync",
    operation_id = "syncPreview",
    request_body = Option<Options>,
    responses(
        (status = 200, description = "What an apply would do", body = SyncReport),
        (status = 404, description = "The org named does not exist", body = ErrorBody),
        (status = 409, description = "No root org, or no Autotask integration to sync with", body = ErrorBody),
        (status = 502, description = "Autotask cannot be read", body = ErrorBody),
    ),
)]
async fn preview(
    State(state): State<AppState>,
    Body(options): Body<Options>,
) -> Result<Json<SyncReport>, ApiError> {
    Ok(Json(
        sync::run(state.engine(), Mode::Preview, &options).await?,
    ))
}

/// Run a PSA directory sync.
///
/// The sync report: per kind (company, user, contact, configuration, location) the counts
/// (created, matched, updated, excluded, deactivated, skipped, unchanged, pending) and names;
/// errors (records not imported and why).
#[utoipa::path(
    post,
    path = "/api/sync/autotask/apply",
    tag = "sync",
    operation_id = "syncApply",
    request_body = Option<Options>,
    responses(
        (status = 200, description = "What the sync did", body = SyncReport),
        (status = 404, description = "The org named does not exist", body = ErrorBody),
        (status = 409, description = "No root org, or no Autotask integration to sync with", body = ErrorBody),
        (status = 502, description = "Autotask cannot be read", body = ErrorBody),
    ),
)]
async fn apply(
    State(state): State<AppState>,
    Body(options): Body<Options>,
) -> Result<Json<SyncReport>, ApiError> {
    Ok(Json(
        sync::run(state.engine(), Mode::Apply, &options).await?,
    ))
}

/// The sync settings (auto-create toggles, company types, nightly schedule).
#[utoipa::path(
    get,
    path = "/api/sync/autotask/settings",
    tag = "sync",
    operation_id = "syncSettings",
    responses((status = 200, description = "The settings", body = Settings)),
)]
async fn get_settings(State(state): State<AppState>) -> Result<Json<Settings>, ApiError> {
    Ok(Json(sync::settings(state.store().as_ref()).await?))
}

/// Change sync settings (the fields given).
///
/// The fields given replace the stored ones; `"schedule": null` switches the nightly run off.
#[utoipa::path(
    put,
    path = "/api/sync/autotask/settings",
    tag = "sync",
    operation_id = "setSyncSettings",
    request_body = SettingsChange,
    responses(
        (status = 200, description = "The settings now", body = Settings),
        (status = 422, description = "An unknown setting, a bad schedule or time zone", body = ErrorBody),
    ),
)]
async fn put_settings(
    State(state): State<AppState>,
    Body(change): Body<SettingsChange>,
) -> Result<Json<Settings>, ApiError> {
    Ok(Json(
        sync::update_settings(state.store().as_ref(), change).await?,
    ))
}

/// Exclude a company or user from the sync (remembered).
///
/// Never import or match it. A company linked to an org is refused (unlink it first).
#[utoipa::path(
    post,
    path = "/api/sync/autotask/{kind}/{id}/exclude",
    tag = "sync",
    operation_id = "syncExclude",
    params(
        ("kind" = String, Path, description = "company or user (configuration items cannot be excluded)"),
        ("id" = String, Path, description = "The Autotask id"),
    ),
    responses(
        (status = 200, description = "Excluded", body = ExcludedRecord),
        (status = 404, description = "No such record kind", body = ErrorBody),
        (status = 409, description = "The company is linked to an org", body = ErrorBody),
        (status = 422, description = "The kind cannot be excluded", body = ErrorBody),
    ),
)]
async fn exclude(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<ExcludedRecord>, ApiError> {
    let kind = sync::record_kind(&kind)?;
    Ok(Json(
        sync::exclude(state.store().as_ref(), kind, &id).await?,
    ))
}

/// Create a record at the next apply (lifts its exclusion, overrides auto-create).
#[utoipa::path(
    post,
    path = "/api/sync/autotask/{kind}/{id}/create",
    tag = "sync",
    operation_id = "syncApprove",
    params(
        ("kind" = String, Path, description = "company, user or configuration"),
        ("id" = String, Path, description = "The Autotask id"),
    ),
    responses(
        (status = 200, description = "Approved", body = ApprovedRecord),
        (status = 404, description = "No such record kind", body = ErrorBody),
    ),
)]
async fn approve(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<ApprovedRecord>, ApiError> {
    let kind = sync::record_kind(&kind)?;
    Ok(Json(
        sync::approve(state.store().as_ref(), kind, &id).await?,
    ))
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(preview))
        .routes(routes!(apply))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(exclude))
        .routes(routes!(approve))
}
