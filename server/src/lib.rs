//! weft-server: weft's HTTP face, built by [`router`] without binding a socket (`weft serve`
//! binds it and runs executions on [`Workers`]).
//!
//! - The JSON API under `/api/*` (bearer token), grouped by resource: workflows, executions,
//!   actions and triggers ([`api`]), orgs, variables and integrations ([`orgs_api`]), the
//!   Autotask company mapping ([`mapping`]), the directory sync, crates ([`crates_api`]). Each
//!   module's `routes()` declares its handlers once, with `#[utoipa::path]` and typed bodies
//!   ([`body::Body`]); [`openapi::document`] is generated from them and served at
//!   `/api/openapi.json`.
//! - Webhook triggers at `/hooks/{trigger}/{org}` and Autotask callouts at
//!   `/hooks/autotask/…`: the handlers read the request and answer; what is accepted is
//!   decided in `weft-triggers`.
//! - `/healthz`, `/readyz`, `/metrics` ([`metrics`]), the web console (`/`) and the hosted
//!   form page ([`form_page`]).
//!
//! Every use case is `weft-service`'s or `weft-triggers`': handlers only translate.

pub mod api;
pub mod autotask;
pub mod body;
mod console;
pub mod crates_api;
pub mod form_page;
mod form_routes;
mod forms_api;
mod hooks;
pub mod mapping;
pub mod metrics;
pub mod openapi;
mod ops;
pub mod orgs_api;
mod sync_api;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use weft_engine::Workflow;
use weft_engine::executor::{Engine, EngineError, EngineErrorKind};
use weft_engine::store::{Store, StoreError, StoreErrorKind, WorkflowRecord};

pub use api::trigger_type;
pub use metrics::Metrics;
pub use weft_engine::executor::{Workers, execution_json};
pub(crate) use weft_triggers::guard;
pub use weft_triggers::{Switches, constant_time_eq, random_token};

/// The setting that holds the SHA-256 (hex) of the generated API token.
const TOKEN_SETTING: &str = "api_token_sha256";

/// An API failure, answered as `{"error": {"code", "message"}}` with a matching status.
/// Messages never carry internal details: those are logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong API token or webhook secret.
    #[error("{0}")]
    Unauthorized(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// Wrong state.
    #[error("{0}")]
    Conflict(String),
    /// The body exceeds the limit (bytes).
    #[error("the request body is larger than {0} bytes")]
    TooLarge(u64),
    /// The workflow does not validate.
    #[error("{message}")]
    InvalidWorkflow {
        /// Summary.
        message: String,
        /// `weft validate --format json` entries.
        diagnostics: Vec<Value>,
    },
    /// The form file does not validate.
    #[error("{message}")]
    InvalidForm {
        /// Summary.
        message: String,
        /// `weft validate --format json` entries.
        diagnostics: Vec<Value>,
    },
    /// Inputs do not fit the workflow.
    #[error("{0}")]
    InvalidInput(String),
    /// Too many requests for a trigger.
    #[error("rate limit exceeded")]
    RateLimited,
    /// Another system (Autotask) refused or failed; the message says which and why.
    #[error("{0}")]
    Upstream(String),
    /// The database cannot be reached: nothing was accepted; the sender should retry.
    #[error("weft's database is unavailable; nothing was accepted, retry shortly")]
    Unavailable(Detail),
    /// Something failed inside; the detail is logged, not answered.
    #[error("internal error")]
    Internal(Detail),
}

/// What went wrong inside, kept with its chain of sources for the log (never answered).
#[derive(Debug)]
pub struct Detail(Box<dyn std::error::Error + Send + Sync>);

impl Detail {
    /// Keeps `e` and its sources.
    pub fn of(e: impl std::error::Error + Send + Sync + 'static) -> Detail {
        Detail(Box::new(e))
    }
}

impl From<String> for Detail {
    fn from(s: String) -> Detail {
        Detail(s.into())
    }
}

impl From<&str> for Detail {
    fn from(s: &str) -> Detail {
        Detail(s.into())
    }
}

impl std::fmt::Display for Detail {
    /// The error and each of its sources: `a: b: c`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidWorkflow { .. }
            | ApiError::InvalidForm { .. }
            | ApiError::InvalidInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::InvalidWorkflow { .. } => "invalid_workflow",
            ApiError::InvalidForm { .. } => "invalid_form",
            ApiError::InvalidInput(_) => "invalid_input",
            ApiError::RateLimited => "rate_limited",
            ApiError::Upstream(_) => "upstream",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(error = %detail, "request failed"),
            ApiError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable; answered 503");
            }
            _ => {}
        }
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        if let ApiError::InvalidWorkflow { diagnostics, .. }
        | ApiError::InvalidForm { diagnostics, .. } = &self
        {
            error["diagnostics"] = json!(diagnostics);
        }
        let mut res = (self.status(), axum::Json(json!({ "error": error }))).into_response();
        if matches!(self, ApiError::Unavailable(_)) {
            // Senders that honour it (Autotask retries on its own schedule) come back soon.
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.kind() {
            StoreErrorKind::NotFound => ApiError::NotFound(e.to_string()),
            StoreErrorKind::Conflict => ApiError::Conflict(e.to_string()),
            StoreErrorKind::Unavailable => ApiError::Unavailable(Detail::of(e)),
            _ => ApiError::Internal(Detail::of(e)),
        }
    }
}

impl From<weft_service::ServiceError> for ApiError {
    fn from(e: weft_service::ServiceError) -> Self {
        let message = e.to_string();
        match e.kind() {
            weft_service::ErrorKind::Usage => ApiError::InvalidInput(message),
            weft_service::ErrorKind::NotFound => ApiError::NotFound(message),
            weft_service::ErrorKind::Conflict => ApiError::Conflict(message),
            weft_service::ErrorKind::Upstream => ApiError::Upstream(message),
            weft_service::ErrorKind::Unavailable => ApiError::Unavailable(Detail::of(e)),
            _ => ApiError::Internal(Detail::of(e)),
        }
    }
}

impl From<weft_triggers::TriggerError> for ApiError {
    fn from(e: weft_triggers::TriggerError) -> Self {
        use weft_triggers::TriggerError as T;
        match e {
            T::BadRequest(m) => ApiError::BadRequest(m),
            T::Unauthorized(m) => ApiError::Unauthorized(m),
            T::NotFound(m) => ApiError::NotFound(m),
            T::Conflict(m) => ApiError::Conflict(m),
            T::InvalidInput(m) => ApiError::InvalidInput(m),
            T::TooLarge(n) => ApiError::TooLarge(n),
            T::RateLimited => ApiError::RateLimited,
            T::Store(s) => s.into(),
            other => ApiError::Internal(Detail::of(other)),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            // Loading an org's context is store work too: an outage is a 503, not a 500.
            EngineError::Store(s) | EngineError::Org(weft_engine::org::OrgError::Store(s)) => {
                s.into()
            }
            EngineError::Invalid { .. } => ApiError::InvalidWorkflow {
                message: e.to_string(),
                diagnostics: Vec::new(),
            },
            EngineError::Input(m) => ApiError::InvalidInput(m),
            EngineError::Conflict(m) => ApiError::Conflict(m),
            other => match other.kind() {
                EngineErrorKind::Usage => ApiError::BadRequest(other.to_string()),
                EngineErrorKind::Conflict => ApiError::Conflict(other.to_string()),
                _ => ApiError::Internal(Detail::of(other)),
            },
        }
    }
}

/// The deployed workflows' webhook triggers by trigger name (record, workflow, trigger index),
/// valid while the newest workflow version is `deploy`.
pub(crate) struct HookIndex {
    deploy: i64,
    by_name: HashMap<String, Vec<(WorkflowRecord, Arc<Workflow>, usize)>>,
    /// Deployed versions that no longer load (`name vN: why`): skipped, not fatal.
    broken: Vec<String>,
}

struct Inner {
    engine: Arc<Engine>,
    workers: Workers,
    token_sha256: [u8; 32],
    guards: guard::Guards,
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Webhook triggers by name, for the deployed versions whose ids it was built from.
    hooks: Mutex<Option<HookIndex>>,
    metrics: Arc<Metrics>,
    metrics_token_sha256: Option<[u8; 32]>,
    /// Answers of form options generators, per org, form, field and values.
    form_options: weft_service::forms::OptionsCache,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// State for `engine`: `token` is the API token; `base_url` prefixes the webhook URLs
    /// shown by the API.
    pub fn new(
        engine: Arc<Engine>,
        workers: Workers,
        token: &str,
        base_url: impl Into<String>,
    ) -> Self {
        Self::with_token_hash(engine, workers, sha256(token.as_bytes()), base_url)
    }

    /// As [`AppState::new`], with the token's SHA-256 (from [`api_token`]).
    pub fn with_token_hash(
        engine: Arc<Engine>,
        workers: Workers,
        token_sha256: [u8; 32],
        base_url: impl Into<String>,
    ) -> Self {
        // One public address, the engine's: webhook URLs and the form links templates make.
        engine.set_public_url(&base_url.into());
        AppState(Arc::new(Inner {
            engine,
            workers,
            token_sha256,
            guards: guard::Guards::default(),
            trusted_proxies: Vec::new(),
            hooks: Mutex::default(),
            metrics: Arc::new(Metrics::new()),
            metrics_token_sha256: None,
            form_options: weft_service::forms::OptionsCache::default(),
        }))
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.0).expect("AppState builders are used before the state is shared")
    }

    /// Uses `metrics` (the one installed in the engine with `Engine::with_observer`) instead
    /// of the fresh, engine-less one [`AppState::new`] creates. Call before cloning the state.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.inner_mut().metrics = metrics;
        self
    }

    /// Requires `Authorization: Bearer <token>` on `GET /metrics` (`WEFT_METRICS_TOKEN`);
    /// `None` or empty leaves it open. Call before cloning the state.
    #[must_use]
    pub fn with_metrics_token(mut self, token: Option<&str>) -> Self {
        self.inner_mut().metrics_token_sha256 = token
            .filter(|t| !t.is_empty())
            .map(|t| sha256(t.as_bytes()));
        self
    }

    /// The reverse proxies (`WEFT_TRUSTED_PROXIES`) whose `X-Forwarded-For` names a
    /// request's source, for the per-source limit of failed webhook requests. Call before
    /// cloning the state.
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> Self {
        self.inner_mut().trusted_proxies = proxies;
        self
    }

    /// Where a request came from: its peer, or — when the peer is a trusted proxy — the
    /// nearest address in `X-Forwarded-For` that is not one.
    pub(crate) fn source(
        &self,
        peer: Option<std::net::IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Option<std::net::IpAddr> {
        let trusted = &self.0.trusted_proxies;
        let peer = peer?;
        if !trusted.contains(&peer) {
            return Some(peer);
        }
        let forwarded: Vec<std::net::IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|a| !trusted.contains(a))
                .unwrap_or(peer),
        )
    }

    /// The metrics served on `GET /metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.0.engine
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        self.0.engine.store()
    }

    pub(crate) fn workers(&self) -> &Workers {
        &self.0.workers
    }

    /// The webhook triggers named `name` among the latest deployed versions. One cheap query
    /// (the newest version's id) per call; the workflows are listed and parsed again only
    /// after a deploy, by this process or another. A stored version that no longer loads
    /// (deployed by an older weft, say) is skipped and reported by [`AppState::broken`].
    pub(crate) async fn webhook_triggers(
        &self,
        name: &str,
    ) -> Result<Vec<(WorkflowRecord, Arc<Workflow>, usize)>, ApiError> {
        let deploy = self.store().last_deploy_id().await?;
        if let Some(index) = self.0.hooks.lock().expect("not poisoned").as_ref()
            && index.deploy == deploy
        {
            return Ok(index.by_name.get(name).cloned().unwrap_or_default());
        }
        let mut by_name: HashMap<String, Vec<(WorkflowRecord, Arc<Workflow>, usize)>> =
            HashMap::new();
        let mut broken = Vec::new();
        for record in self.store().list_workflows().await? {
            let wf = match self.parsed(&record) {
                Ok(wf) => wf,
                Err(e) => {
                    tracing::error!(workflow = %record.name, version = record.version, error = %e, "a deployed workflow no longer loads; its triggers are skipped");
                    broken.push(format!("{} v{}", record.name, record.version));
                    continue;
                }
            };
            for (i, t) in wf.triggers.iter().enumerate() {
                if matches!(t.kind, weft_engine::model::TriggerKind::Webhook { .. }) {
                    by_name.entry(t.name.clone()).or_default().push((
                        record.clone(),
                        wf.clone(),
                        i,
                    ));
                }
            }
        }
        let found = by_name.get(name).cloned().unwrap_or_default();
        *self.0.hooks.lock().expect("not poisoned") = Some(HookIndex {
            deploy,
            by_name,
            broken,
        });
        Ok(found)
    }

    /// The deployed workflows that no longer load (`name vN`), as of the last index.
    pub(crate) fn broken(&self) -> Vec<String> {
        self.0
            .hooks
            .lock()
            .expect("not poisoned")
            .as_ref()
            .map(|i| i.broken.clone())
            .unwrap_or_default()
    }

    /// The parsed workflow of a stored version (the engine's one cache).
    pub(crate) fn parsed(&self, record: &WorkflowRecord) -> Result<Arc<Workflow>, ApiError> {
        self.0.engine.parsed(record).map_err(|e| {
            ApiError::Internal(
                format!(
                    "deployed workflow {} v{} no longer loads: {e}",
                    record.name, record.version
                )
                .into(),
            )
        })
    }

    /// The base of the webhook URLs shown (`weft_service::triggers::hook_url`): the engine's
    /// public URL.
    pub(crate) fn base_url(&self) -> String {
        self.0.engine.public_url()
    }

    /// The answers of form options generators kept briefly.
    pub(crate) fn form_options(&self) -> &weft_service::forms::OptionsCache {
        &self.0.form_options
    }

    /// The per-process limits of webhook traffic.
    pub(crate) fn guards(&self) -> &guard::Guards {
        &self.0.guards
    }
}

/// The API token: `from_env` when given (nothing stored), else the stored one; generates and
/// stores (as a hash) a new token on first start. Returns the token's SHA-256 and the
/// token itself when it was generated now (show it once).
///
/// # Errors
/// Store failures; a corrupt stored hash.
pub async fn api_token(
    store: &dyn Store,
    from_env: Option<&str>,
) -> Result<([u8; 32], Option<String>), StoreError> {
    if let Some(t) = from_env.filter(|t| !t.is_empty()) {
        return Ok((sha256(t.as_bytes()), None));
    }
    let token = random_token("weft_");
    let (stored, created) = store
        .ensure_setting(TOKEN_SETTING, &hex::encode(sha256(token.as_bytes())))
        .await?;
    let hash: [u8; 32] = hex::decode(&stored)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("api token hash".into()))?;
    Ok((hash, created.then_some(token)))
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// The API token check: every path under `/api/` but the OpenAPI document needs it.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !path.starts_with("/api/") || path == openapi::PATH {
        return next.run(req).await;
    }
    let presented = bearer(req.headers());
    match presented {
        Some(t) if constant_time_eq(&sha256(t.as_bytes()), &state.0.token_sha256) => {
            next.run(req).await
        }
        Some(_) => ApiError::Unauthorized("invalid API token".into()).into_response(),
        None => {
            ApiError::Unauthorized("missing API token: send `Authorization: Bearer <token>`".into())
                .into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// The `Bearer` token of a request, if any.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Every route but the console's: the documented API (token-protected under `/api/`),
/// `/healthz`, `/readyz`, `/metrics`, the OpenAPI document and the webhook endpoints. The
/// OpenAPI document is generated from this one list ([`openapi::document`]).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .merge(api::routes())
        .merge(orgs_api::routes())
        .merge(mapping::routes())
        .merge(sync_api::routes())
        .merge(crates_api::routes())
        .merge(forms_api::routes());
    OpenApiRouter::with_openapi(openapi::base())
        .merge(openapi::routes())
        .merge(hooks::routes())
        .merge(form_routes::routes())
        .merge(autotask::routes())
        .merge(api)
}

/// Every route: [`routes`] (the token checked on `/api/*` but the OpenAPI document) and the
/// web console (`/`, `/console/*`). Does not bind.
pub fn router(state: AppState) -> Router {
    let (routes, _) = routes().split_for_parts();
    routes
        .merge(console::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn(trace_request))
        .with_state(state)
}

/// One span per request — method, path and a request id (the caller's `x-request-id`, else
/// a new one, echoed in the answer) — so every log line of a request, including the
/// execution ids it starts, can be told apart.
async fn trace_request(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = res.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "answered"
        );
    });
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

#[cfg(test)]
mod tests;
