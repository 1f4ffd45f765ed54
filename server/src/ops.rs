//! Operations endpoints: liveness, readiness and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::ErrorBody;
use crate::{ApiError, AppState, bearer, constant_time_eq, metrics, sha256};

/// What `/healthz` and `/readyz` answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive), `ready` (the database answers) or `unavailable`.
    pub status: &'static str,
    /// `/readyz`: deployed workflow versions that no longer load (their triggers are skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_workflow_count: Option<usize>,
    /// `/readyz` with the API token: which (`name vN: why`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_workflows: Option<Vec<String>>,
}

impl Health {
    fn status(status: &'static str) -> Health {
        Health {
            status,
            invalid_workflow_count: None,
            invalid_workflows: None,
        }
    }
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    security(()),
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Health)),
)]
async fn healthz() -> Json<Health> {
    Json(Health::status("ok"))
}

/// Readiness: the database answers.
///
/// `invalid_workflow_count` counts deployed workflow
/// versions that no longer load (their triggers are skipped); with the API token
/// (`Authorization: Bearer`), `invalid_workflows` names them (`name vN`). Costs one light
/// query unless a deploy happened since.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    security((), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "`{\"status\": \"unavailable\"}`", body = Health),
    ),
)]
async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.webhook_triggers("").await {
        Ok(_) => {
            let broken = state.broken();
            let authorized = bearer(&headers)
                .is_some_and(|t| constant_time_eq(&sha256(t.as_bytes()), &state.0.token_sha256));
            Json(Health {
                status: "ready",
                invalid_workflow_count: Some(broken.len()),
                invalid_workflows: authorized.then_some(broken),
            })
            .into_response()
        }
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health::status("unavailable")),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics.
///
/// Executions, tasks, webhook rejections, queue depth; behind `WEFT_METRICS_TOKEN` when the
/// server sets one.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    security((), ("metricsToken" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        (status = 401, description = "`WEFT_METRICS_TOKEN` is set and the token is missing or wrong", body = ErrorBody),
    ),
)]
async fn metrics_text(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.0.metrics_token_sha256 {
        match bearer(&headers) {
            Some(t) if constant_time_eq(&sha256(t.as_bytes()), expected) => {}
            Some(_) => {
                return ApiError::Unauthorized("invalid metrics token".into()).into_response();
            }
            None => {
                return ApiError::Unauthorized(
                    "missing metrics token: send `Authorization: Bearer <token>`".into(),
                )
                .into_response();
            }
        }
    }
    let queue_depth = match state.store().queue_depth().await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = ?e, "cannot read the queue depth for /metrics");
            None
        }
    };
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.0.metrics.render(queue_depth),
    )
        .into_response()
}

/// The operations routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}
