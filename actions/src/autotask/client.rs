//! The Autotask REST client: zone discovery, authentication, retries, per-endpoint
//! concurrency limits, paging, and picklists.
//!
//! Caches: discovered zones and the `entityInformation/fields` of entities (which hold the
//! picklists: queues, statuses…) are kept process-wide, keyed by [`TenantKey`] (integration
//! code, API user and base URL: two integrations on the same zone never share an entry),
//! for [`Config::cache_ttl`] (the integration setting `cache_ttl_minutes`, default
//! [`DEFAULT_CACHE_TTL`]). A tenant's zone is discovered by one caller at a time: those
//! that arrive meanwhile (a sync's record kinds, a fan-out) wait and take its answer. A
//! picklist label that is not in the cached fields
//! ([`Client::lookup`]) makes the client read them again once before failing.
//!
//! Redirects are followed only within the same origin (see [`crate::redirect`]): the
//! credentials never go to another host, and a redirect elsewhere is an error.
//!
//! Retry policy: every call, creates included, is repeated after a refusal that means
//! Autotask did nothing with it — 429 and the thread-threshold error — honouring
//! `Retry-After`. GET, query and count POSTs, PATCH, PUT and DELETE are also retried on 5xx
//! answers, timeouts and transport errors (PATCH and PUT send absolute values, so repeating
//! one leaves the record as one call would; a repeated DELETE at worst answers "not found").
//! A create (`POST /{Entity}`, `POST /{Parent}/{id}/{Child}`) is not repeated after those: a
//! lost answer could hide a created record, and the error says so and how to make the step
//! safe to repeat. Any call is repeated once after re-discovering the zone on a 401, since the
//! request was refused before doing anything.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use tracing::Instrument;
use weft_engine::ActionError;

use super::error::field;
// Where a parameter is called `field`, the helper goes by this name.
use super::error::field as field_of;
use weft_engine::integration::Integration;

use super::endpoint::endpoint;
use super::error::{AutotaskError, ErrorKind, classify, parse_retry_after};
use super::filter::Filter;
use super::limits::{self, BudgetConfig, Threshold, Urgency};
use crate::redirect::{self, FollowRedirects, Outgoing, SendError};
use weft_engine::store::LimitStore;

/// Where zone lookups go when the integration has no `discovery_url`.
pub const DEFAULT_DISCOVERY_URL: &str = "https://webservices2.autotask.net/atservicesrest/";
pub use super::limits::MAX_IN_FLIGHT;
/// How long discovered zones and entity fields (picklists) are kept when the integration
/// sets no `cache_ttl_minutes`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(15 * 60);
/// Default time limit per request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Records per query page (Autotask's maximum).
pub const PAGE_SIZE: usize = 500;

/// Client settings.
#[derive(Clone)]
pub struct Config {
    /// API user name (`UserName`).
    pub username: String,
    /// API tracking identifier (`ApiIntegrationCode`).
    pub integration_code: String,
    /// API secret (`Secret`).
    pub secret: String,
    /// A fixed zone base URL (`https://webservices15.autotask.net/ATServicesRest/`); skips
    /// discovery.
    pub zone_url: Option<String>,
    /// The zone-lookup base URL.
    pub discovery_url: String,
    /// Time limit per request.
    pub timeout: Duration,
    /// Retries of idempotent calls.
    pub max_retries: u32,
    /// First backoff delay (doubled per retry, with jitter).
    pub backoff_base: Duration,
    /// Longest single wait between retries (also caps `Retry-After`).
    pub backoff_max: Duration,
    /// How long a discovered zone and an entity's fields (its picklists) are kept before
    /// they are read again (zero: not kept).
    pub cache_ttl: Duration,
    /// The hourly request budget's settings.
    pub budget: BudgetConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("username", &self.username)
            .field("integration_code", &"***")
            .field("secret", &"***")
            .field("zone_url", &self.zone_url)
            .field("discovery_url", &self.discovery_url)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("cache_ttl", &self.cache_ttl)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Every setting (and secret) [`Config::from_integration`] reads: what an `autotask`
    /// instance may set.
    pub const SETTINGS: &'static [&'static str] = &[
        "username",
        "integration_code",
        "secret",
        "zone_url",
        "discovery_url",
        "cache_ttl_minutes",
        "timeout",
        "max_retries",
        "backoff_base_ms",
        "backoff_max",
        "request_budget",
        "budget_pace_percent",
        "budget_pace_max_delay",
        "threshold_check",
    ];

    /// Settings with defaults.
    pub fn new(username: &str, integration_code: &str, secret: &str) -> Config {
        Config {
            username: username.into(),
            integration_code: integration_code.into(),
            secret: secret.into(),
            zone_url: None,
            discovery_url: DEFAULT_DISCOVERY_URL.into(),
            timeout: DEFAULT_TIMEOUT,
            max_retries: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            cache_ttl: DEFAULT_CACHE_TTL,
            budget: BudgetConfig::default(),
        }
    }

    /// From an `autotask` integration: `username`, `integration_code`, secret `secret`;
    /// optional `zone_url`, `discovery_url`, `timeout` (`30s` or seconds), `max_retries`,
    /// `backoff_base_ms`, `backoff_max` (`60s` or seconds), `cache_ttl_minutes` (how long
    /// the discovered zone and the entities' fields and picklists are kept before being
    /// read again: a number of minutes, fractions allowed, `0` to read them every time;
    /// default 15); the hourly budget's `request_budget` (requests per rolling hour; default:
    /// what `ThresholdInformation` reports, else 10,000), `budget_pace_percent` (past it,
    /// background work is paced; default 80), `budget_pace_max_delay` (the longest pause
    /// before one background request; default `30s`) and `threshold_check` (how often
    /// `ThresholdInformation` is read; default `5m`, `0` never).
    ///
    /// # Errors
    /// A missing required key, or a malformed optional one.
    pub fn from_integration(i: &Integration) -> Result<Config, ActionError> {
        let username = i.require("username")?;
        let code = i.require("integration_code")?;
        let secret = i.secret("secret").ok_or_else(|| {
            ActionError::failed(format!(
                "the `autotask` integration `{}` has no secret `secret`",
                i.name
            ))
        })?;
        let mut c = Config::new(username, code, secret);
        c.zone_url = i.setting("zone_url").map(str::to_string);
        if let Some(d) = i.setting("discovery_url") {
            c.discovery_url = d.to_string();
        }
        let duration = |key: &str| -> Result<Option<Duration>, ActionError> {
            match i.settings.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => serde_json::from_value::<crate::params::DurationParam>(v.clone())
                    .map(|d| Some(d.0))
                    .map_err(|e| {
                        ActionError::failed(format!(
                            "the `autotask` integration `{}` has an invalid `{key}`: {e}",
                            i.name
                        ))
                    }),
            }
        };
        if let Some(t) = duration("timeout")? {
            c.timeout = t;
        }
        if let Some(t) = duration("backoff_max")? {
            c.backoff_max = t;
        }
        if let Some(n) = i.settings.get("max_retries").and_then(Value::as_u64) {
            c.max_retries = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = i.settings.get("backoff_base_ms").and_then(Value::as_u64) {
            c.backoff_base = Duration::from_millis(n);
        }
        if let Some(t) = duration("budget_pace_max_delay")? {
            c.budget.pace_max_delay = t;
        }
        if let Some(t) = duration("threshold_check")? {
            c.budget.threshold_check = t;
        }
        let whole = |key: &str, max: u64| -> Result<Option<u64>, ActionError> {
            match i.settings.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|n| *n <= max)
                    .map(Some)
                    .ok_or_else(|| {
                        ActionError::failed(format!(
                            "the `autotask` integration `{}` has an invalid `{key}` ({v}): give a whole number from 0 to {max}",
                            i.name
                        ))
                    }),
            }
        };
        c.budget.request_budget = whole("request_budget", u64::from(u32::MAX))?;
        if let Some(p) = whole("budget_pace_percent", 100)? {
            c.budget.pace_percent = u8::try_from(p).unwrap_or(100);
        }
        match i.settings.get("cache_ttl_minutes") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let minutes = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                c.cache_ttl = minutes
                    .and_then(|m| Duration::try_from_secs_f64(m * 60.0).ok())
                    .ok_or_else(|| {
                        ActionError::failed(format!(
                            "the `autotask` integration `{}` has an invalid `cache_ttl_minutes` ({v}): give a number of minutes, 0 or more",
                            i.name
                        ))
                    })?;
            }
        }
        Ok(c)
    }
}

/// An Autotask API client for one integration. Cheap to create: the HTTP connection pool,
/// the zone cache, the concurrency limits and the picklist cache are process-wide (the
/// caches and limits keyed by [`TenantKey`]).
pub struct Client {
    config: Config,
    zone: Mutex<Option<String>>,
    /// Where the thread limit's slots and the budget's counts are shared.
    limits: Arc<dyn LimitStore>,
    /// The limits' tenant at the zone it was looked up for (its keys are hashes: made once
    /// per client and zone, not per request).
    limits_tenant: Mutex<Option<(String, Arc<limits::Tenant>)>>,
    urgency: Urgency,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("urgency", &self.urgency)
            .finish_non_exhaustive()
    }
}

/// How a request is sent.
#[derive(Debug, Clone)]
struct Req {
    method: reqwest::Method,
    /// Relative to the zone base (`V1.0/Tickets/query`), or absolute (a `nextPageUrl`).
    target: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    idempotent: bool,
    /// How soon it must go (the budget paces background work).
    urgency: Urgency,
}

fn http() -> &'static reqwest::Client {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    HTTP.get_or_init(|| {
        redirect::client_builder()
            .build()
            .expect("the HTTP client starts")
    })
}

/// One Autotask tenant as one integration reaches it: the key of every process-wide cache
/// and limiter of this module.
///
/// The integration code (API tracking identifier), the API user name and the base URL (the
/// zone's, or the discovery URL for the zone lookup) together: two integrations on the same
/// zone (two tracking identifiers, or a client organization with its own Autotask) never
/// share a cached picklist or a zone. URLs and user names compare case-insensitively.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TenantKey {
    integration_code: String,
    username: String,
    base_url: String,
    /// SHA-256 of the API secret: none of the other parts is secret, so without it an
    /// integration configured with someone else's user name and code (and a wrong secret)
    /// would read their cached zone and picklists without ever authenticating.
    credential: [u8; 32],
}

impl TenantKey {
    /// The key of `config`'s tenant at `base_url`.
    pub fn new(config: &Config, base_url: &str) -> TenantKey {
        use sha2::Digest as _;
        TenantKey {
            integration_code: config.integration_code.trim().to_string(),
            username: config.username.trim().to_ascii_lowercase(),
            base_url: with_slash(base_url).to_ascii_lowercase(),
            credential: sha2::Sha256::digest(config.secret.as_bytes()).into(),
        }
    }
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKey")
            .field("integration_code", &"***")
            .field("username", &self.username)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// A cached value and when it was read.
struct Cached<V> {
    value: V,
    fetched: Instant,
    expires: Instant,
}

/// A process-wide cache of tenant data: (tenant, what) → value, each entry kept for the
/// TTL it was stored with.
struct TenantCache<V> {
    map: Mutex<HashMap<(TenantKey, String), Cached<V>>>,
}

impl<V: Clone> TenantCache<V> {
    fn new() -> Self {
        TenantCache {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The value and when it was read, unless missing, expired, or older than `ttl` (the
    /// caller's own TTL).
    fn get(&self, key: &(TenantKey, String), ttl: Duration) -> Option<(V, Instant)> {
        let mut map = self.map.lock().unwrap();
        match map.get(key) {
            Some(c) if c.expires > Instant::now() => {
                (c.fetched.elapsed() < ttl).then(|| (c.value.clone(), c.fetched))
            }
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores a value read at `fetched` for `ttl` (not at all when `ttl` is zero), dropping
    /// expired entries.
    fn put(&self, key: (TenantKey, String), value: V, fetched: Instant, ttl: Duration) {
        let mut map = self.map.lock().unwrap();
        let now = Instant::now();
        map.retain(|_, c| c.expires > now);
        let Some(expires) = fetched.checked_add(ttl).filter(|e| *e > now) else {
            return;
        };
        map.insert(
            key,
            Cached {
                value,
                fetched,
                expires,
            },
        );
    }

    fn remove(&self, key: &(TenantKey, String)) {
        self.map.lock().unwrap().remove(key);
    }
}

/// Discovered zone base URLs by (tenant at the discovery URL, "").
fn zone_cache() -> &'static TenantCache<String> {
    static CACHE: OnceLock<TenantCache<String>> = OnceLock::new();
    CACHE.get_or_init(TenantCache::new)
}

/// The lock a tenant's zone discovery holds (one discovery at a time per tenant). One per
/// configured tenant: the map grows with integrations, never with requests.
fn discovery_flight(key: &(TenantKey, String)) -> Arc<tokio::sync::Mutex<()>> {
    type Flights = Mutex<HashMap<(TenantKey, String), Arc<tokio::sync::Mutex<()>>>>;
    static FLIGHTS: OnceLock<Flights> = OnceLock::new();
    let mut map = FLIGHTS.get_or_init(Default::default).lock().unwrap();
    map.entry(key.clone()).or_default().clone()
}

/// The `fields` of `entityInformation/fields` (picklists included) by (tenant at its zone,
/// lower-case entity).
fn fields_cache() -> &'static TenantCache<Arc<Vec<Value>>> {
    static CACHE: OnceLock<TenantCache<Arc<Vec<Value>>>> = OnceLock::new();
    CACHE.get_or_init(TenantCache::new)
}

fn with_slash(url: &str) -> String {
    let t = url.trim();
    if t.ends_with('/') {
        t.to_string()
    } else {
        format!("{t}/")
    }
}

pub(crate) fn jitter(max: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(r % ms)
}

impl limits::Probe for Client {
    fn threshold(&self) -> limits::ProbeFuture<'_> {
        // One attempt: a refusal here must not hold up the request waiting on it.
        let once = Client {
            config: Config {
                max_retries: 0,
                ..self.config.clone()
            },
            zone: Mutex::new(self.zone.lock().unwrap().clone()),
            limits: self.limits.clone(),
            limits_tenant: Mutex::new(self.limits_tenant.lock().unwrap().clone()),
            urgency: Urgency::Probe,
        };
        Box::pin(async move { once.threshold_information().await })
    }
}

/// One page of a query.
struct Page {
    items: Vec<Value>,
    next: Option<String>,
}

impl Client {
    /// A client.
    pub fn new(config: Config) -> Client {
        let zone = config.zone_url.as_deref().map(with_slash);
        Client {
            config,
            zone: Mutex::new(zone),
            limits: limits::process_limits(),
            limits_tenant: Mutex::new(None),
            urgency: Urgency::Normal,
        }
    }

    /// A client for an `autotask` integration (see [`Config::from_integration`]), sharing
    /// its limits with the processes on the same database when an engine resolved it.
    ///
    /// # Errors
    /// Missing or malformed settings.
    pub fn from_integration(i: &Integration) -> Result<Client, ActionError> {
        Client::from_integration_with(i, |_| {})
    }

    /// As [`Client::from_integration`], its settings changed by `adjust` first (a connection
    /// test's shorter time limit, say).
    ///
    /// # Errors
    /// Missing or malformed settings.
    pub fn from_integration_with(
        i: &Integration,
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Client, ActionError> {
        let mut config = Config::from_integration(i)?;
        adjust(&mut config);
        let client = Client::new(config);
        Ok(match i.shared_limits() {
            Some(l) => client.sharing_limits(l.clone()),
            None => client,
        })
    }

    /// The same client, its thread limit and hourly budget shared through `limits` (the
    /// store) with every process on the same database.
    #[must_use]
    pub fn sharing_limits(mut self, limits: Arc<dyn LimitStore>) -> Client {
        self.limits = limits;
        self
    }

    /// The same client for background work (a sync, a fan-out): paced when the tenant's
    /// hourly budget runs low.
    #[must_use]
    pub fn background(mut self) -> Client {
        self.urgency = Urgency::Background;
        self
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn secrets(&self) -> [&str; 2] {
        [&self.config.secret, &self.config.integration_code]
    }

    fn discovery_base(&self) -> String {
        with_slash(&self.config.discovery_url)
    }

    /// This integration's tenant at `base_url` (the zone, or the discovery URL).
    pub fn tenant(&self, base_url: &str) -> TenantKey {
        TenantKey::new(&self.config, base_url)
    }

    /// The limits' tenant of this integration at `zone`.
    fn limits_tenant(&self, zone: &str) -> Arc<limits::Tenant> {
        let mut cached = self.limits_tenant.lock().unwrap();
        match &*cached {
            Some((z, t)) if z == zone => t.clone(),
            _ => {
                let t = limits::tenant(
                    &self.config.username,
                    &self.config.integration_code,
                    &self.config.secret,
                    zone,
                );
                *cached = Some((zone.to_string(), t.clone()));
                t
            }
        }
    }

    fn zone_key(&self) -> (TenantKey, String) {
        (self.tenant(&self.discovery_base()), String::new())
    }

    /// The zone base URL (with a trailing slash), discovering it when needed.
    ///
    /// # Errors
    /// The lookup failed.
    pub async fn zone(&self) -> Result<String, AutotaskError> {
        if let Some(z) = self.zone.lock().unwrap().clone() {
            return Ok(z);
        }
        let key = self.zone_key();
        if let Some((z, _)) = zone_cache().get(&key, self.config.cache_ttl) {
            *self.zone.lock().unwrap() = Some(z.clone());
            return Ok(z);
        }
        // One discovery per tenant at a time: callers that arrive meanwhile (a sync's record
        // kinds, a with.items fan-out) wait for it and take its answer from the cache.
        let flight = discovery_flight(&key);
        let _one = flight.lock().await;
        if let Some((z, _)) = zone_cache().get(&key, self.config.cache_ttl) {
            *self.zone.lock().unwrap() = Some(z.clone());
            return Ok(z);
        }
        let fetched = Instant::now();
        let z = self.discover().await?;
        zone_cache().put(key, z.clone(), fetched, self.config.cache_ttl);
        *self.zone.lock().unwrap() = Some(z.clone());
        Ok(z)
    }

    async fn discover(&self) -> Result<String, AutotaskError> {
        let base = self.discovery_base();
        let mut url = Url::parse(&format!("{base}v1.0/zoneInformation")).map_err(|e| {
            AutotaskError::new(
                ErrorKind::Protocol,
                format!("invalid discovery_url `{base}`: {e}"),
            )
        })?;
        url.query_pairs_mut()
            .append_pair("user", &self.config.username);
        let label = "zone discovery";
        let span = tracing::info_span!(
            "autotask.request",
            method = "GET",
            entity = "ZoneInformation",
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty
        );
        let start = Instant::now();
        let mut req = Outgoing::new(reqwest::Method::GET, url);
        req.timeout = Some(self.config.timeout);
        let resp = redirect::send(http(), req, FollowRedirects::SameOrigin)
            .instrument(span.clone())
            .await
            .map_err(|e| send_error(label, e))?;
        let status = resp.status().as_u16();
        span.record("status", status);
        span.record("duration_ms", start.elapsed().as_millis() as u64);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(classify(status, &body, label).redact(&self.secrets()));
        }
        let url = field(&body, "url").and_then(Value::as_str).ok_or_else(|| {
            AutotaskError::new(
                ErrorKind::Protocol,
                format!(
                    "zone discovery for `{}` returned no zone url",
                    self.config.username
                ),
            )
        })?;
        tracing::debug!(target: "weft::autotask", zone = url, "zone discovered");
        Ok(with_slash(url))
    }

    fn forget_zone(&self) {
        *self.zone.lock().unwrap() = None;
        zone_cache().remove(&self.zone_key());
    }

    fn headers(&self) -> Result<HeaderMap, AutotaskError> {
        let bad = |what: &str| {
            AutotaskError::new(
                ErrorKind::Auth,
                format!("the Autotask {what} contains characters not allowed in a header"),
            )
        };
        let mut h = HeaderMap::new();
        let mut code = HeaderValue::from_str(&self.config.integration_code)
            .map_err(|_| bad("integration code"))?;
        code.set_sensitive(true);
        h.insert("ApiIntegrationCode", code);
        h.insert(
            "UserName",
            HeaderValue::from_str(&self.config.username).map_err(|_| bad("user name"))?,
        );
        let mut secret = HeaderValue::from_str(&self.config.secret).map_err(|_| bad("secret"))?;
        secret.set_sensitive(true);
        h.insert("Secret", secret);
        h.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(h)
    }

    /// The absolute URL of a request, refusing absolute URLs on another origin than the zone.
    fn url(&self, zone: &str, req: &Req) -> Result<Url, AutotaskError> {
        let zone_url = Url::parse(zone).map_err(|e| {
            AutotaskError::new(
                ErrorKind::Protocol,
                format!("invalid zone url `{zone}`: {e}"),
            )
        })?;
        let mut url = if req.target.starts_with("http://") || req.target.starts_with("https://") {
            let u = Url::parse(&req.target).map_err(|e| {
                AutotaskError::new(ErrorKind::Protocol, format!("invalid next page url: {e}"))
            })?;
            if !redirect::same_origin(&u, &zone_url) {
                return Err(AutotaskError::new(
                    ErrorKind::Protocol,
                    format!(
                        "refusing to send credentials to {}://{}: it is not the zone's origin",
                        u.scheme(),
                        u.host_str().unwrap_or("?")
                    ),
                ));
            }
            u
        } else {
            zone_url
                .join(req.target.trim_start_matches('/'))
                .map_err(|e| {
                    AutotaskError::new(ErrorKind::Protocol, format!("invalid path: {e}"))
                })?
        };
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&req.query);
        }
        Ok(url)
    }

    async fn send(&self, req: Req) -> Result<Value, AutotaskError> {
        let mut rediscovered = false;
        let mut retries = 0u32;
        loop {
            let zone = self.zone().await?;
            let result = self.send_once(&zone, &req).await;
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if err.status == Some(401)
                && !rediscovered
                && self.config.zone_url.is_none()
                && !req.target.starts_with("http")
            {
                tracing::info!(target: "weft::autotask", "401 from the zone; discovering the zone again");
                rediscovered = true;
                self.forget_zone();
                continue;
            }
            let may_repeat =
                err.refused_before_processing() || (req.idempotent && err.is_retryable());
            if may_repeat && retries < self.config.max_retries {
                let backoff = self
                    .config
                    .backoff_base
                    .saturating_mul(1u32 << retries.min(16));
                let wait = match err.retry_after {
                    Some(ra) => ra + jitter(Duration::from_millis(250)),
                    None => backoff / 2 + jitter(backoff / 2 + Duration::from_millis(1)),
                }
                .min(self.config.backoff_max);
                retries += 1;
                tracing::info!(target: "weft::autotask", error_kind = ?err.kind, status = ?err.status, retry = retries, wait_ms = wait.as_millis() as u64, "retrying Autotask request");
                tokio::time::sleep(wait).await;
                continue;
            }
            if !req.idempotent && err.is_retryable() && !err.refused_before_processing() {
                let mut err = err;
                err.message = format!(
                    "{}; the create was not repeated: Autotask may have made the record before \
                     the answer was lost. Check for it before running the step again, or make \
                     the step safe to repeat (look the record up first, e.g. by a reference you \
                     set on it, and create it only when it is missing)",
                    err.message
                );
                return Err(err);
            }
            return Err(err);
        }
    }

    async fn send_once(&self, zone: &str, req: &Req) -> Result<Value, AutotaskError> {
        let url = self.url(zone, req)?;
        let label = format!("{} {}", req.method, url.path());
        let endpoint = endpoint(&req.target);
        let tenant = self.limits_tenant(zone);
        limits::admit(
            &self.limits,
            &tenant,
            &self.config.budget,
            req.urgency,
            self,
        )
        .await?;
        // Held until the answer is read; beyond the time limit the slot lapses (a process
        // that died holding it).
        let hold = self.config.timeout + Duration::from_secs(15);
        let _in_flight = limits::in_flight(&self.limits, &tenant, &endpoint, hold).await?;
        limits::spent(&self.limits, &tenant);
        let span = tracing::info_span!("autotask.request", method = %req.method, entity = %endpoint, status = tracing::field::Empty, duration_ms = tracing::field::Empty);
        let start = Instant::now();
        let out = async {
            let mut out = Outgoing::new(req.method.clone(), url);
            out.headers = self.headers()?;
            out.timeout = Some(self.config.timeout);
            out.body = req.body.as_ref().map(|b| b.to_string().into_bytes());
            // The credentials go to the zone's origin only: a redirect elsewhere is an error.
            let resp = redirect::send(http(), out, FollowRedirects::SameOrigin)
                .await
                .map_err(|e| send_error(&label, e))?;
            let status = resp.status().as_u16();
            span.record("status", status);
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
            let text = resp.text().await.map_err(|e| transport(&label, &e))?;
            let body: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            let has_errors = field(&body, "errors")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty());
            if (200..300).contains(&status) && !has_errors {
                if body.is_object() || body.is_null() {
                    return Ok(body);
                }
                return Err(AutotaskError {
                    status: Some(status),
                    ..AutotaskError::new(
                        ErrorKind::Protocol,
                        format!("Autotask {label} answered with something other than JSON"),
                    )
                });
            }
            let mut e = classify(status, &body, &label);
            if e.kind == ErrorKind::RateLimited && retry_after.is_none() {
                e.retry_after = Some(Duration::from_secs(60));
            } else {
                e.retry_after = retry_after;
            }
            Err(e)
        }
        .instrument(span.clone())
        .await;
        span.record("duration_ms", start.elapsed().as_millis() as u64);
        match &out {
            Ok(_) => tracing::debug!(target: "weft::autotask", parent: &span, "ok"),
            Err(e) => {
                tracing::warn!(target: "weft::autotask", parent: &span, error_kind = ?e.kind, status = ?e.status, error = %e.message, "Autotask request failed")
            }
        }
        out.map_err(|e| e.redact(&self.secrets()))
    }

    // -----------------------------------------------------------------------------------
    // Public calls

    /// Any request: `method` on `path` (relative to the zone, e.g. `V1.0/Tickets/1`; a
    /// leading `V1.0/` is added when missing).
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Vec<(String, String)>,
        body: Option<Value>,
    ) -> Result<Value, AutotaskError> {
        let path = path.trim_start_matches('/');
        let target = if path.len() >= 5 && path[..5].eq_ignore_ascii_case("v1.0/")
            || path.eq_ignore_ascii_case("versioninformation")
        {
            path.to_string()
        } else {
            format!("V1.0/{path}")
        };
        let idempotent =
            method != reqwest::Method::POST || target.to_ascii_lowercase().contains("/query");
        self.send(Req {
            method,
            target,
            query,
            body,
            idempotent,
            urgency: self.urgency,
        })
        .await
    }

    /// `GET /VersionInformation` (on the zone when `zone_url` is set, else on the discovery
    /// host; no credentials needed).
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn version_info(&self) -> Result<Value, AutotaskError> {
        let base = self
            .config
            .zone_url
            .as_deref()
            .map(with_slash)
            .unwrap_or_else(|| self.discovery_base());
        let url = Url::parse(&format!("{base}VersionInformation")).map_err(|e| {
            AutotaskError::new(ErrorKind::Protocol, format!("invalid url `{base}`: {e}"))
        })?;
        let mut req = Outgoing::new(reqwest::Method::GET, url);
        req.timeout = Some(self.config.timeout);
        let resp = redirect::send(http(), req, FollowRedirects::SameOrigin)
            .await
            .map_err(|e| send_error("GET VersionInformation", e))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(classify(status, &body, "GET VersionInformation"))
        }
    }

    /// The tenant's hourly usage as Autotask counts it (every integration of the database):
    /// `GET /V1.0/ThresholdInformation`. It counts as a request itself.
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn threshold_information(&self) -> Result<Threshold, AutotaskError> {
        let v = self
            .send(Req {
                method: reqwest::Method::GET,
                target: "V1.0/ThresholdInformation".into(),
                query: vec![],
                body: None,
                idempotent: true,
                urgency: Urgency::Probe,
            })
            .await?;
        let number = |k: &str| field(&v, k).and_then(Value::as_u64);
        match (
            number("externalRequestThreshold"),
            number("currentTimeframeRequestCount"),
        ) {
            (Some(limit), Some(count)) => Ok(Threshold {
                limit,
                timeframe_minutes: number("requestThresholdTimeframe").unwrap_or(60),
                count,
            }),
            _ => Err(AutotaskError::new(
                ErrorKind::Protocol,
                "Autotask ThresholdInformation answered without `externalRequestThreshold` and `currentTimeframeRequestCount`",
            )),
        }
    }

    /// One record: `GET /{path}/{id}` (path is `Tickets` or `Tickets/5/Notes`).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when there is no such record.
    pub async fn get(&self, path: &str, id: i64) -> Result<Value, AutotaskError> {
        let body = self
            .send(Req {
                method: reqwest::Method::GET,
                target: format!("V1.0/{path}/{id}"),
                query: vec![],
                body: None,
                idempotent: true,
                urgency: self.urgency,
            })
            .await?;
        match field(&body, "item") {
            Some(item) if !item.is_null() => Ok(item.clone()),
            _ => Err(AutotaskError {
                status: Some(200),
                ..AutotaskError::new(
                    ErrorKind::NotFound,
                    format!("Autotask {path} {id} not found"),
                )
            }),
        }
    }

    /// Creates a record: `POST /{path}` → the new id. Never retried (see the module docs).
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn create(&self, path: &str, fields: Value) -> Result<i64, AutotaskError> {
        let body = self
            .send(Req {
                method: reqwest::Method::POST,
                target: format!("V1.0/{path}"),
                query: vec![],
                body: Some(fields),
                idempotent: false,
                urgency: self.urgency,
            })
            .await?;
        item_id(&body, path)
    }

    /// Updates the given fields of a record: `PATCH /{path}` with `id` in the body.
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn update(&self, path: &str, id: i64, fields: Value) -> Result<i64, AutotaskError> {
        let mut fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        fields.insert("id".into(), json!(id));
        let body = self
            .send(Req {
                method: reqwest::Method::PATCH,
                target: format!("V1.0/{path}"),
                query: vec![],
                body: Some(Value::Object(fields)),
                idempotent: true,
                urgency: self.urgency,
            })
            .await?;
        item_id(&body, path).or(Ok(id))
    }

    /// Deletes a record: `DELETE /{path}/{id}`.
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn delete(&self, path: &str, id: i64) -> Result<Value, AutotaskError> {
        self.send(Req {
            method: reqwest::Method::DELETE,
            target: format!("V1.0/{path}/{id}"),
            query: vec![],
            body: None,
            idempotent: true,
            urgency: self.urgency,
        })
        .await
    }

    /// Every record of `entity` matching `filters` (all of them when empty), following
    /// `nextPageUrl` with the same body, up to `max_records`; each record once.
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn query(
        &self,
        entity: &str,
        filters: &[Filter],
        include_fields: &[String],
        max_records: Option<usize>,
    ) -> Result<Vec<Value>, AutotaskError> {
        let max = max_records.unwrap_or(usize::MAX);
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut body = query_body(filters);
        body.insert("MaxRecords".into(), json!(max.min(PAGE_SIZE)));
        if !include_fields.is_empty() {
            let mut fields: Vec<String> = include_fields.to_vec();
            if !fields.iter().any(|f| f.eq_ignore_ascii_case("id")) {
                fields.insert(0, "id".into());
            }
            body.insert("IncludeFields".into(), json!(fields));
        }
        let body = Value::Object(body);
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut target = format!("V1.0/{entity}/query");
        loop {
            let page = self.page(entity, &target, &body).await?;
            let mut added = 0;
            for item in page.items {
                let id = item.get("id").and_then(Value::as_i64);
                if id.is_none_or(|id| seen.insert(id)) {
                    out.push(item);
                    added += 1;
                    if out.len() >= max {
                        return Ok(out);
                    }
                }
            }
            match page.next {
                Some(next) if added > 0 => target = next,
                _ => return Ok(out),
            }
        }
    }

    async fn page(&self, entity: &str, target: &str, body: &Value) -> Result<Page, AutotaskError> {
        // The pages after the first are a large query's: background work near the budget.
        let urgency = if target.starts_with("http") {
            Urgency::Background
        } else {
            self.urgency
        };
        let post = Req {
            method: reqwest::Method::POST,
            target: target.to_string(),
            query: vec![],
            body: Some(body.clone()),
            idempotent: true,
            urgency,
        };
        let v = match self.send(post).await {
            // Services that expect the next page to be fetched with GET (the older
            // behaviour, and GET-started queries) answer a POST with 405.
            Err(e) if e.status == Some(405) && target.starts_with("http") => {
                self.send(Req {
                    method: reqwest::Method::GET,
                    target: target.to_string(),
                    query: vec![],
                    body: None,
                    idempotent: true,
                    urgency,
                })
                .await?
            }
            other => other?,
        };
        let items = match field(&v, "items") {
            Some(Value::Array(items)) => items.clone(),
            _ => {
                return Err(AutotaskError::new(
                    ErrorKind::Protocol,
                    format!("Autotask {entity} query answered without `items`"),
                ));
            }
        };
        let next = field(&v, "pageDetails")
            .and_then(|p| field(p, "nextPageUrl"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(Page { items, next })
    }

    /// How many records of `entity` match `filters`: `POST /{entity}/query/count`.
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn count(&self, entity: &str, filters: &[Filter]) -> Result<u64, AutotaskError> {
        let v = self
            .send(Req {
                method: reqwest::Method::POST,
                target: format!("V1.0/{entity}/query/count"),
                query: vec![],
                body: Some(Value::Object(query_body(filters))),
                idempotent: true,
                urgency: self.urgency,
            })
            .await?;
        field(&v, "queryCount")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                AutotaskError::new(
                    ErrorKind::Protocol,
                    format!("Autotask {entity} count answered without `queryCount`"),
                )
            })
    }

    /// The field descriptions of `entity` (`entityInformation/fields`), cached per tenant
    /// ([`TenantKey`]) and entity for [`Config::cache_ttl`].
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn fields(&self, entity: &str) -> Result<Arc<Vec<Value>>, AutotaskError> {
        Ok(self.cached_fields(entity, None).await?.0)
    }

    /// Reads the field descriptions of `entity` again from Autotask (replacing the cached
    /// ones), e.g. after a picklist value was added.
    ///
    /// # Errors
    /// See [`AutotaskError`].
    pub async fn refresh_fields(&self, entity: &str) -> Result<Arc<Vec<Value>>, AutotaskError> {
        Ok(self.cached_fields(entity, Some(Instant::now())).await?.0)
    }

    /// The cached fields of `entity` and when they were read; read from Autotask when
    /// missing, expired, or read before `stale_before`.
    async fn cached_fields(
        &self,
        entity: &str,
        stale_before: Option<Instant>,
    ) -> Result<(Arc<Vec<Value>>, Instant), AutotaskError> {
        let zone = self.zone().await?;
        let key = (self.tenant(&zone), entity.to_ascii_lowercase());
        if let Some((f, fetched)) = fields_cache().get(&key, self.config.cache_ttl)
            && stale_before.is_none_or(|t| fetched > t)
        {
            return Ok((f, fetched));
        }
        let fetched = Instant::now();
        let v = self
            .send(Req {
                method: reqwest::Method::GET,
                target: format!("V1.0/{entity}/entityInformation/fields"),
                query: vec![],
                body: None,
                idempotent: true,
                urgency: self.urgency,
            })
            .await?;
        let fields = Arc::new(
            field(&v, "fields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        fields_cache().put(key, fields.clone(), fetched, self.config.cache_ttl);
        Ok((fields, fetched))
    }

    /// The picklist values of `entity.field`: `[{value, label, isActive, …}]`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when the field does not exist or is not a picklist.
    pub async fn picklist(&self, entity: &str, field: &str) -> Result<Vec<Value>, AutotaskError> {
        picklist_of(&self.fields(entity).await?, entity, field)
    }

    /// The value of the picklist entry of `entity.field` labelled `label` (case-insensitive).
    /// When the cached picklist has no such label, the entity's fields are read again once
    /// (the label may have been added since) before failing.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] naming the known labels.
    pub async fn lookup(
        &self,
        entity: &str,
        field: &str,
        label: &str,
    ) -> Result<Value, AutotaskError> {
        let (fields, fetched) = self.cached_fields(entity, None).await?;
        let values = picklist_of(&fields, entity, field)?;
        if let Some(v) = value_labelled(&values, label) {
            return Ok(v);
        }
        tracing::debug!(target: "weft::autotask", entity, field, "label not in the cached picklist; reading the fields again");
        // Unless another call read them again meanwhile.
        let (fields, _) = self.cached_fields(entity, Some(fetched)).await?;
        let values = picklist_of(&fields, entity, field)?;
        value_labelled(&values, label).ok_or_else(|| {
            let known: Vec<&str> = values.iter().map(label_of).collect();
            AutotaskError::new(
                ErrorKind::NotFound,
                format!(
                    "{entity}.{field} has no value labelled `{label}` (labels: {})",
                    known.join(", ")
                ),
            )
        })
    }
}

/// The picklist values of `entity.field` in `fields`.
fn picklist_of(fields: &[Value], entity: &str, field: &str) -> Result<Vec<Value>, AutotaskError> {
    let f = fields
        .iter()
        .find(|f| {
            field_of(f, "name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(field))
        })
        .ok_or_else(|| {
            AutotaskError::new(
                ErrorKind::NotFound,
                format!("{entity} has no field `{field}`"),
            )
        })?;
    if field_of(f, "isPickList").and_then(Value::as_bool) != Some(true) {
        return Err(AutotaskError::new(
            ErrorKind::NotFound,
            format!("{entity}.{field} is not a picklist"),
        ));
    }
    Ok(field_of(f, "picklistValues")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

fn label_of(v: &Value) -> &str {
    field_of(v, "label")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The `value` of the entry labelled `label` (case-insensitive, surrounding spaces ignored).
fn value_labelled(values: &[Value], label: &str) -> Option<Value> {
    values
        .iter()
        .find(|v| label_of(v).eq_ignore_ascii_case(label.trim()))
        .and_then(|v| field_of(v, "value").cloned())
}

fn query_body(filters: &[Filter]) -> Map<String, Value> {
    let filter: Vec<Value> = if filters.is_empty() {
        vec![Filter::all().to_json()]
    } else {
        filters.iter().map(Filter::to_json).collect()
    };
    let mut m = Map::new();
    m.insert("filter".into(), Value::Array(filter));
    m
}

fn item_id(body: &Value, path: &str) -> Result<i64, AutotaskError> {
    field(body, "itemId")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            AutotaskError::new(
                ErrorKind::Protocol,
                format!("Autotask {path} answered without `itemId`"),
            )
        })
}

/// A failed [`redirect::send`]: a transport error, or a redirect to another origin (which
/// would have carried the credentials there).
fn send_error(label: &str, e: SendError) -> AutotaskError {
    match e {
        SendError::Transport(e) => transport(label, &e),
        SendError::Refused(r) => AutotaskError {
            status: Some(r.status),
            ..AutotaskError::new(
                ErrorKind::Protocol,
                r.message(
                    &format!("Autotask {label}"),
                    Some("weft sends the Autotask credentials only to the zone's origin"),
                ),
            )
        },
    }
}

fn transport(label: &str, e: &reqwest::Error) -> AutotaskError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Transport
    };
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        // The error's own text without the URL (the URL holds no secret, but keep it short).
        e.without_url_ref().to_string()
    };
    AutotaskError::new(kind, format!("Autotask {label} {what}"))
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = format!("failed: {self}");
        let mut src = std::error::Error::source(self);
        while let Some(e) = src {
            s.push_str(&format!(": {e}"));
            src = e.source();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_urls_end_with_a_slash() {
        assert_eq!(
            with_slash("http://x/ATServicesRest"),
            "http://x/ATServicesRest/"
        );
    }

    #[test]
    fn next_page_urls_must_stay_on_the_zone_origin() {
        let c = Client::new(Config::new("u", "c", "s"));
        let req = |t: &str| Req {
            method: reqwest::Method::POST,
            target: t.into(),
            query: vec![],
            body: None,
            idempotent: true,
            urgency: Urgency::Normal,
        };
        let zone = "https://webservices15.autotask.net/ATServicesRest/";
        let ok = c
            .url(zone, &req("https://WEBSERVICES15.autotask.net/ATServicesRest/V1.0/Tickets/query/next?paging=x"))
            .unwrap();
        assert!(ok.as_str().contains("paging=x"));
        let err = c
            .url(
                zone,
                &req("https://evil.example/ATServicesRest/V1.0/Tickets/query/next"),
            )
            .unwrap_err();
        assert!(err.message.contains("refusing"), "{}", err.message);
        assert!(
            c.url(zone, &req("http://webservices15.autotask.net/x"))
                .is_err()
        );
        assert_eq!(
            c.url(zone, &req("V1.0/Tickets/query")).unwrap().as_str(),
            "https://webservices15.autotask.net/ATServicesRest/V1.0/Tickets/query"
        );
    }

    #[test]
    fn debug_never_shows_credentials() {
        let c = Client::new(Config::new("u@x", "CODE-123456", "topsecret"));
        let d = format!("{c:?}");
        assert!(
            !d.contains("topsecret") && !d.contains("CODE-123456"),
            "{d}"
        );
    }
}
