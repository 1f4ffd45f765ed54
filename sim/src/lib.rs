//! weft-sim: an in-memory simulator of the Datto Autotask PSA REST API (plus fake OpenAI,
//! chat and SMTP endpoints, see [`openai`] and [`sinks`]), so that tests and users can
//! build workflows against a PSA without touching a real tenant. It depends on no other weft
//! crate: [`Simulator`] holds the tenant ([`TenantData`]), the `server` module answers HTTP,
//! the `query` module evaluates Autotask filters and [`WebhookConfig`] sends callouts.
//!
//! Tests and users run it locally (`weft sim`, or [`Simulator::start_local`] in a test) and
//! point an Autotask client at [`RunningSim::base_url`]. It follows the behaviour recorded in
//! `shared/reference/autotask.md`:
//!
//! - Routes (any casing of `ATServicesRest` and `V1.0`, entity names case-insensitive):
//!   `GET /ATServicesRest/VersionInformation`, `GET /ATServicesRest/V1.0/ZoneInformation?user=`
//!   (no auth), `GET /V1.0/Version`, `/V1.0/ThresholdInformation`, `/V1.0/{Entity}/query`
//!   (POST body or GET `?search=`), `/query/next?paging=` (POST with the same body after a
//!   POST query; GET with `&search=` after a GET query; GET on a POST-next URL → 405),
//!   `/query/count`, `GET /{Entity}/{id}` (`{"item":…}`, `{"item":null}` when missing),
//!   `POST|PATCH|PUT /{Entity}` (`{"itemId":N}`), `DELETE /{Entity}/{id}` where allowed,
//!   parent/child routes `/{Parent}/{pid}/{Child}[/{id}]`, `entityInformation`,
//!   `entityInformation/fields`, `entityInformation/userDefinedFields`.
//! - A path that matches no route template → 404; a path that matches a template with a
//!   method the template does not allow → 405 `{"Message":"The requested resource does not
//!   support http method 'X'."}` (ASP.NET behaviour). So `POST /V1.0/Contacts` → 404 (no
//!   `/Contacts` template exists), `PATCH /V1.0/Companies/1` → 405, `DELETE /Companies/1` → 405.
//! - Auth headers `ApiIntegrationCode`, `UserName`, `Secret` (names case-insensitive):
//!   unknown user → 500, wrong secret → 401, wrong integration code → 500. Errors are
//!   `{"errors":[...]}`; business and validation errors are HTTP 500 as in the real API.
//! - `GET /V1.0/EntityInformation` lists every entity's `info`; GET URLs longer than 2,100
//!   characters → 404 (as reported against the real service).
//! - Webhook callouts: see [`WebhookConfig`] (signed `X-Hook-Signature` POSTs on API changes to
//!   Companies, Contacts, ConfigurationItems, Tickets, TicketNotes).
//! - String comparisons in filters are case-insensitive (SQL Server default collation).
//!
//! Default credentials: user [`DEFAULT_USERNAME`], secret [`DEFAULT_SECRET`], integration
//! code [`DEFAULT_INTEGRATION_CODE`].
//!
//! Failure injection per instance ([`FailureConfig`], [`Simulator::set_failures`]) and per
//! request with the header `X-Sim-Fail`, a comma-separated list of:
//! `429` (HTTP 429 + `Retry-After`), `thread` (the thread-threshold 500), `zone` (401 as when a
//! tenant moved zone), `500` (an unexpected-error 500), `latency=200ms` (added delay; `ms` or
//! `s` suffix).
//!
//! ```no_run
//! # async fn demo() {
//! let sim = weft_sim::Simulator::start_local(weft_sim::SimConfig::default()).await;
//! // sim.base_url == "http://127.0.0.1:PORT/ATServicesRest/"
//! let companies = sim.simulator.records("Companies");
//! # }
//! ```

mod data;
mod query;
mod schema;
mod server;
mod webhooks;

pub mod openai;
pub mod sinks;
pub use openai::OpenAiRule;
pub use sinks::{SinkMessage, SmtpMessage, SmtpSink};
/// The API key the fake OpenAI endpoint accepts (`Authorization: Bearer sk-weft-sim`) unless
/// changed with [`Simulator::set_openai_key`].
pub const DEFAULT_OPENAI_KEY: &str = "sk-weft-sim";

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use data::{PicklistValue, TenantData, UdfDefinition};
pub use webhooks::{WebhookConfig, WebhookDelivery};

/// Default API user name.
pub const DEFAULT_USERNAME: &str = "api@weft.test";
/// Default API secret.
pub const DEFAULT_SECRET: &str = "sim-secret";
/// Default API integration code (27 characters, like the real ones).
pub const DEFAULT_INTEGRATION_CODE: &str = "WEFTSIMINTEGRATION000000001";

/// Errors from building or starting a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The tenant data file could not be read.
    #[error("cannot read tenant data file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The tenant data is malformed or inconsistent.
    #[error("invalid tenant data: {0}")]
    Data(String),
    /// The listen address is unavailable.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
}

/// Simulator configuration.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// API user name (the `UserName` header and `zoneInformation?user=`).
    pub username: String,
    /// API secret (the `Secret` header).
    pub secret: String,
    /// API integration code (the `ApiIntegrationCode` header).
    pub integration_code: String,
    /// The tenant: picklists, UDF definitions and records. Default: the seeded MSP tenant.
    pub data: TenantData,
    /// Latency added to every request.
    pub latency: Option<Duration>,
    /// Failure injection.
    pub failures: FailureConfig,
    /// Extra generated records per entity for scale tests, e.g. `{"Contacts": 2345}`:
    /// copies of seeded records with new ids and unique names/emails.
    pub extra_records: BTreeMap<String, usize>,
    /// Outbound webhook delivery (timeouts, retries, deactivation, escaping).
    pub webhooks: WebhookConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            username: DEFAULT_USERNAME.into(),
            secret: DEFAULT_SECRET.into(),
            integration_code: DEFAULT_INTEGRATION_CODE.into(),
            data: TenantData::seeded(),
            latency: None,
            failures: FailureConfig::default(),
            extra_records: BTreeMap::new(),
            webhooks: WebhookConfig::default(),
        }
    }
}

impl SimConfig {
    /// Adds `n` generated records of `entity` (see [`SimConfig::extra_records`]).
    pub fn with_extra(mut self, entity: &str, n: usize) -> Self {
        self.extra_records.insert(entity.to_string(), n);
        self
    }
}

/// Failure injection. Counters ("first N calls") restart when set with
/// [`Simulator::set_failures`]. Only authenticated API calls count (not `VersionInformation`
/// or `ZoneInformation`).
#[derive(Debug, Clone)]
pub struct FailureConfig {
    /// Answer the first N calls with HTTP 429 and `Retry-After`.
    pub rate_limit_first: u32,
    /// Answer every Nth call (N, 2N, …) with HTTP 429 (0 = never).
    pub rate_limit_every: u32,
    /// `Retry-After` seconds on 429 answers.
    pub retry_after_secs: u64,
    /// Enforce the thread limit: more than `thread_limit` concurrent requests to the same
    /// endpoint (entity) with the same integration code → HTTP 500 "Thread Threshold Exceeded".
    pub enforce_thread_limit: bool,
    /// Concurrent threads allowed per endpoint and integration code (Autotask: 3).
    pub thread_limit: usize,
    /// Answer the first N calls with HTTP 401, as the old zone does after a tenant moved.
    pub zone_moved_first: u32,
    /// Answer the first N calls with HTTP 500 `{"errors":[…]}`.
    pub error_500_first: u32,
    /// Answer every Nth call with HTTP 500 (0 = never).
    pub error_500_every: u32,
    /// Extra latency per call (on top of [`SimConfig::latency`]).
    pub latency: Option<Duration>,
    /// Requests allowed per rolling hour (Autotask: 10,000; reported by
    /// `ThresholdInformation`). Calls beyond it get HTTP 500 "threshold exceeded" (0 = no
    /// limit).
    pub request_threshold: u64,
}

impl Default for FailureConfig {
    fn default() -> Self {
        FailureConfig {
            rate_limit_first: 0,
            rate_limit_every: 0,
            retry_after_secs: 1,
            enforce_thread_limit: false,
            thread_limit: 3,
            zone_moved_first: 0,
            error_500_first: 0,
            error_500_every: 0,
            latency: None,
            request_threshold: 10_000,
        }
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestLogEntry {
    /// The HTTP method.
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// The endpoint used for thread limiting: the canonical entity name (e.g. `Companies`),
    /// or the global route name (`ThresholdInformation`, `ZoneInformation`, …).
    pub endpoint: String,
    /// The `ApiIntegrationCode` header, when present.
    pub integration_code: Option<String>,
    /// The status the simulator answered.
    pub status: u16,
    /// Requests in flight to this endpoint with this integration code when this one arrived
    /// (including itself).
    pub in_flight: usize,
}

/// The simulator: cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<server::Shared>,
    pub(crate) fakes: Arc<sinks::Fakes>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").finish_non_exhaustive()
    }
}

impl Simulator {
    /// Builds a simulator from a configuration (validates the tenant data).
    pub fn new(config: SimConfig) -> Result<Simulator, SimError> {
        Ok(Simulator {
            inner: Arc::new(server::Shared::new(config)?),
            fakes: Arc::default(),
        })
    }

    /// Builds a simulator with default credentials from a tenant data file (JSON, the format
    /// of `sim/data/tenant.json`).
    pub fn from_data_file(path: impl AsRef<Path>) -> Result<Simulator, SimError> {
        let data = TenantData::from_file(path.as_ref())?;
        Simulator::new(SimConfig {
            data,
            ..SimConfig::default()
        })
    }

    /// The axum router serving the API. It does not bind; the zone URL it reports is derived
    /// from the request's `Host` header unless [`Simulator::set_base_url`] was called.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone()).merge(sinks::router(self.fakes.clone()))
    }

    /// Sets the root URL (e.g. `http://127.0.0.1:8765`) the simulator reports in
    /// `zoneInformation` and `nextPageUrl`s.
    pub fn set_base_url(&self, root_url: &str) {
        *self.inner.root_url.lock().unwrap() = Some(root_url.trim_end_matches('/').to_string());
    }

    /// Binds `addr` and serves until the returned [`RunningSim`] is dropped or shut down.
    pub async fn serve(self, addr: SocketAddr) -> Result<RunningSim, SimError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| SimError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let root_url = format!("http://{local}");
        self.set_base_url(&root_url);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(RunningSim {
            base_url: format!("{root_url}/ATServicesRest/"),
            root_url,
            addr: local,
            simulator: self,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Test helper: builds a simulator and serves it on `127.0.0.1:0`. Panics on failure.
    pub async fn start_local(config: SimConfig) -> RunningSim {
        Simulator::new(config)
            .expect("valid simulator config")
            .serve(([127, 0, 0, 1], 0).into())
            .await
            .expect("bind 127.0.0.1:0")
    }

    /// All records of an entity (canonical or any-case name), ordered by id, in API shape.
    pub fn records(&self, entity: &str) -> Vec<serde_json::Value> {
        self.inner.records(entity)
    }

    /// Inserts a record without validation (an `id` in the JSON is honoured, else the next
    /// id is assigned). Returns the id. Panics on an unknown entity or a non-object.
    pub fn insert(&self, entity: &str, record: serde_json::Value) -> i64 {
        self.inner.insert(entity, record)
    }

    /// Every request so far, oldest first.
    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Clears the request log and the concurrency maxima.
    pub fn clear_request_log(&self) {
        self.inner.log.lock().unwrap().clear();
        self.inner.max_conc.lock().unwrap().clear();
    }

    /// Replaces the failure configuration and restarts its counters.
    pub fn set_failures(&self, failures: FailureConfig) {
        self.inner.set_failures(failures);
    }

    /// The highest number of requests seen in flight at once for an endpoint (entity name,
    /// any case), over all integration codes.
    pub fn max_concurrency(&self, entity: &str) -> usize {
        let key = self.inner.endpoint_key(entity);
        self.inner
            .max_conc
            .lock()
            .unwrap()
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Every webhook delivery attempt so far, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.inner.webhooks.log.lock().unwrap().clone()
    }

    /// The configured credentials: (username, secret, integration code).
    pub fn credentials(&self) -> (String, String, String) {
        let c = &self.inner.config;
        (
            c.username.clone(),
            c.secret.clone(),
            c.integration_code.clone(),
        )
    }

    /// Names of the simulated entities.
    pub fn entities(&self) -> Vec<&'static str> {
        schema::specs().iter().map(|s| s.name).collect()
    }
}

/// A simulator serving on a socket. Dropping it shuts the server down gracefully.
pub struct RunningSim {
    /// The zone base URL, with trailing slash: `http://127.0.0.1:PORT/ATServicesRest/`.
    pub base_url: String,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub root_url: String,
    /// The bound socket address.
    pub addr: SocketAddr,
    /// The simulator, for inspection and mutation.
    pub simulator: Simulator,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// Stops serving and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serves until Ctrl-C.
    pub async fn run_until_ctrl_c(self) {
        let _ = tokio::signal::ctrl_c().await;
        self.shutdown().await;
    }
}

impl std::ops::Deref for RunningSim {
    type Target = Simulator;
    fn deref(&self) -> &Simulator {
        &self.simulator
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[allow(dead_code)]
type Shared<T> = Arc<Mutex<T>>;

/// The fakes of other services (OpenAI, Teams, Slack) served beside the API.
impl Simulator {
    /// Every message the Teams and Slack sinks received, oldest first.
    pub fn sink_messages(&self) -> Vec<SinkMessage> {
        self.fakes.messages.lock().unwrap().clone()
    }

    /// Forgets the sinks' messages and the fake OpenAI's requests.
    pub fn clear_sink_messages(&self) {
        self.fakes.messages.lock().unwrap().clear();
        self.fakes.openai.clear_requests();
    }

    /// Every request body the fake OpenAI endpoint accepted (after authentication).
    pub fn openai_requests(&self) -> Vec<serde_json::Value> {
        self.fakes.openai.requests()
    }

    /// Replaces the fake OpenAI's rules (see [`openai`]; [`openai::parse_rules`] reads a file).
    pub fn set_openai_rules(&self, rules: Vec<OpenAiRule>) {
        self.fakes.openai.set_rules(rules);
    }

    /// Changes the API key the fake OpenAI endpoint accepts.
    pub fn set_openai_key(&self, key: &str) {
        self.fakes.openai.set_key(key);
    }
}

impl RunningSim {
    /// The fake OpenAI API's base URL, `{root_url}/openai/v1` (the `openai` integration's
    /// `base_url`; key [`DEFAULT_OPENAI_KEY`]).
    pub fn openai_base_url(&self) -> String {
        format!("{}/openai/v1", self.root_url)
    }

    /// A Teams webhook sink URL: `{root_url}/sinks/teams/{channel}`.
    pub fn teams_url(&self, channel: &str) -> String {
        format!("{}/sinks/teams/{channel}", self.root_url)
    }

    /// A Slack webhook sink URL: `{root_url}/sinks/slack/{channel}`.
    pub fn slack_url(&self, channel: &str) -> String {
        format!("{}/sinks/slack/{channel}", self.root_url)
    }
}
