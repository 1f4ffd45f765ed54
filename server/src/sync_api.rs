//! The PSA directory sync through the API: preview and apply a sync, read and change its
//! settings, exclude, include or approve records — what `weft sync autotask` does.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use weft_actions::autotask::sync::{self, Mode, Options, Settings};

use crate::api::body_object as body;
use crate::{ApiError, AppState};

fn sync_error(e: sync::SyncError) -> ApiError {
    ApiError::Conflict(e.0)
}

fn text(m: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ApiError::BadRequest(format!("`{key}` must be text"))),
    }
}

async fn run(state: &AppState, bytes: &Bytes, mode: Mode) -> Result<Json<Value>, ApiError> {
    let b = body(bytes)?;
    let org = text(&b, "org")?;
    let options = Options {
        integration: text(&b, "integration")?,
    };
    let report = sync::run(state.engine(), org.as_deref(), mode, &options)
        .await
        .map_err(sync_error)?;
    Ok(Json(
        serde_json::to_value(report).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

/// `POST /api/sync/autotask/preview` (`{org?, integration?}`): what a sync would do.
pub(crate) async fn preview(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    run(&state, &bytes, Mode::Preview).await
}

/// `POST /api/sync/autotask/apply` (`{org?, integration?}`): runs the sync.
pub(crate) async fn apply(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    run(&state, &bytes, Mode::Apply).await
}

/// `GET /api/sync/autotask/settings`.
pub(crate) async fn get_settings(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = sync::settings(state.store().as_ref())
        .await
        .map_err(sync_error)?;
    Ok(Json(json!(s)))
}

/// `PUT /api/sync/autotask/settings`: the fields given replace the stored ones.
pub(crate) async fn put_settings(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let store = state.store().as_ref();
    let current = sync::settings(store).await.map_err(sync_error)?;
    let mut merged = json!(current);
    for (k, v) in body(&bytes)? {
        if merged.get(&k).is_none() {
            return Err(ApiError::InvalidInput(format!(
                "unknown sync setting `{k}` (auto_create_clients, auto_create_users, auto_create_configurations, company_types, schedule, timezone)"
            )));
        }
        merged[k] = v;
    }
    let s: Settings = serde_json::from_value(merged)
        .map_err(|e| ApiError::InvalidInput(format!("invalid sync settings: {e}")))?;
    if let Some(schedule) = &s.schedule
        && let Err(e) = weft_engine::cron::Schedule::parse(schedule)
    {
        return Err(ApiError::InvalidInput(e.to_string()));
    }
    if jiff::tz::TimeZone::get(&s.timezone).is_err() {
        return Err(ApiError::InvalidInput(format!(
            "unknown time zone `{}`",
            s.timezone
        )));
    }
    sync::save_settings(store, &s).await.map_err(sync_error)?;
    Ok(Json(json!(s)))
}

fn kind(k: &str) -> Result<&'static str, ApiError> {
    match k {
        "company" | "companies" => Ok("company"),
        "user" | "users" => Ok("user"),
        "configuration" | "configurations" => Ok("configuration"),
        other => Err(ApiError::NotFound(format!(
            "no record kind `{other}` (company, user, configuration)"
        ))),
    }
}

/// `POST /api/sync/autotask/{kind}/{id}/exclude`: never import or match it.
pub(crate) async fn exclude(
    State(state): State<AppState>,
    Path((k, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let k = kind(&k)?;
    if sync::exclusion_kind(k).is_none() {
        return Err(ApiError::InvalidInput(format!(
            "{k} records cannot be excluded"
        )));
    }
    sync::exclude(state.store().as_ref(), k, &id)
        .await
        .map_err(sync_error)?;
    Ok(Json(json!({"kind": k, "id": id, "excluded": true})))
}

/// `POST /api/sync/autotask/{kind}/{id}/create`: create it at the next apply (lifts an
/// exclusion; overrides the auto-create toggles).
pub(crate) async fn approve(
    State(state): State<AppState>,
    Path((k, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let k = kind(&k)?;
    sync::approve(state.store().as_ref(), k, &id)
        .await
        .map_err(sync_error)?;
    Ok(Json(
        json!({"kind": k, "id": id, "create_at_next_apply": true}),
    ))
}

/// The routes this module answers. Each handler is declared once, here, with its
/// `#[utoipa::path]`; the OpenAPI document is generated from them.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use axum::routing::{get, post};
    utoipa_axum::router::OpenApiRouter::new()
        .route("/api/sync/autotask/preview", post(preview))
        .route("/api/sync/autotask/apply", post(apply))
        .route(
            "/api/sync/autotask/settings",
            get(get_settings).put(put_settings),
        )
        .route("/api/sync/autotask/{kind}/{id}/exclude", post(exclude))
        .route("/api/sync/autotask/{kind}/{id}/create", post(approve))
}
