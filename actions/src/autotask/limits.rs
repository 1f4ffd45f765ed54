//! Autotask's limits, held for every process on one database:
//!
//! - **Requests in flight.** Autotask allows 3 concurrent requests per integration and
//!   endpoint ([`super::endpoint`]). A request first waits for one of this process's 3 permits
//!   of its endpoint, then takes one of the 3 numbered slots the store keeps for the endpoint
//!   ([`LimitStore::take_slot`]), so `weft serve`, `weft worker`s and a CLI sync on the same
//!   database send 3 together, not 3 each. A slot is held until the request ends, or until its
//!   time limit plus a margin when the process dies holding it.
//! - **The hourly request budget.** Autotask allows about 10,000 requests per rolling hour
//!   per database, shared by every integration, adds latency near it and suspends the API
//!   over it. weft counts its own requests per tenant and minute in the store (every process),
//!   reads `ThresholdInformation` (which counts everyone's) every few minutes, and takes the
//!   larger estimate. Past `budget_pace_percent` of the budget, background work (a sync, the
//!   pages of a large query after the first, `with.items` fan-out) is spaced out so what is
//!   left lasts the hour; at the budget, every request fails with an error naming it.
//!
//! Without a store (a client made outside an engine), the same rules hold within the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use weft_engine::store::{LimitStore, StoreError};

use super::error::{AutotaskError, ErrorKind};

/// Requests in flight per integration and endpoint (Autotask's thread limit), across every
/// process on one database.
pub const MAX_IN_FLIGHT: usize = 3;
/// Requests per rolling hour when neither the integration (`request_budget`) nor Autotask's
/// `ThresholdInformation` says otherwise.
pub const DEFAULT_REQUEST_BUDGET: u64 = 10_000;
/// The share of the budget past which background work is paced (`budget_pace_percent`).
pub const DEFAULT_PACE_PERCENT: u8 = 80;
/// The longest pause pacing puts before one background request (`budget_pace_max_delay`).
pub const DEFAULT_PACE_MAX_DELAY: Duration = Duration::from_secs(30);
/// How often `ThresholdInformation` is read (`threshold_check`); four times as often once
/// pacing started.
pub const DEFAULT_THRESHOLD_CHECK: Duration = Duration::from_secs(5 * 60);

/// How long this process trusts its reading of the store's count before reading it again.
const SHARED_COUNT_FRESH: Duration = Duration::from_secs(5);
/// How recent a `ThresholdInformation` reading must be to fail a request on it.
const OBSERVED_FRESH: Duration = Duration::from_secs(30);
/// The rolling window Autotask counts in, in minutes.
const WINDOW_MINUTES: i64 = 60;

/// How soon a request must go: background work yields to people and triggers near the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// A workflow step, a CLI call: sent as soon as a slot is free.
    Normal,
    /// A sync, later query pages, `with.items` fan-out: paced past the budget's threshold.
    Background,
    /// `ThresholdInformation` itself: never waits on the budget it measures.
    Probe,
}

/// The budget settings of an integration.
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    /// Requests per rolling hour; `None`: what `ThresholdInformation` reports, else
    /// [`DEFAULT_REQUEST_BUDGET`].
    pub request_budget: Option<u64>,
    /// Percent of the budget past which background requests are paced.
    pub pace_percent: u8,
    /// The longest pause before one background request.
    pub pace_max_delay: Duration,
    /// How often `ThresholdInformation` is read (zero: never).
    pub threshold_check: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            request_budget: None,
            pace_percent: DEFAULT_PACE_PERCENT,
            pace_max_delay: DEFAULT_PACE_MAX_DELAY,
            threshold_check: DEFAULT_THRESHOLD_CHECK,
        }
    }
}

/// What `ThresholdInformation` answered.
#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    /// `externalRequestThreshold`.
    pub limit: u64,
    /// `requestThresholdTimeframe` (minutes).
    pub timeframe_minutes: u64,
    /// `currentTimeframeRequestCount`.
    pub count: u64,
}

/// A tenant's usage as this process last estimated it (for `/metrics` and the console).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantUsage {
    /// The API user the tenant is reached as.
    pub tenant: String,
    /// Requests in the rolling hour, estimated.
    pub used: u64,
    /// Requests allowed per hour.
    pub budget: u64,
    /// Requests this process sent.
    pub sent: u64,
    /// Background requests this process paced.
    pub paced: u64,
    /// Requests in flight from this process, by endpoint.
    pub in_flight: BTreeMap<String, usize>,
}

// ---------------------------------------------------------------------------------------
// Limits within one process (a client made outside an engine)

/// A [`LimitStore`] that lives in this process: what a client uses when its integration was
/// not resolved by an engine (so no other process can share its limits).
#[derive(Default)]
struct ProcessLimits {
    slots: Mutex<HashMap<(String, u32), (String, i64)>>,
    counts: Mutex<HashMap<String, BTreeMap<i64, i64>>>,
}

#[async_trait]
impl LimitStore for ProcessLimits {
    async fn take_slot(
        &self,
        key: &str,
        limit: u32,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<u32>, StoreError> {
        let mut slots = self.slots.lock().unwrap();
        for slot in 0..limit {
            let k = (key.to_string(), slot);
            if slots.get(&k).is_none_or(|(_, until)| *until <= now_ms) {
                slots.insert(k, (holder.to_string(), until_ms));
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    async fn free_slot(&self, key: &str, slot: u32, holder: &str) -> Result<(), StoreError> {
        let mut slots = self.slots.lock().unwrap();
        let k = (key.to_string(), slot);
        if slots.get(&k).is_some_and(|(h, _)| h == holder) {
            slots.remove(&k);
        }
        Ok(())
    }

    async fn add_count(
        &self,
        key: &str,
        minute: i64,
        n: i64,
        forget_before: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut counts = self.counts.lock().unwrap();
        let minutes = counts.entry(key.to_string()).or_default();
        *minutes.entry(minute).or_default() += n;
        if let Some(before) = forget_before {
            minutes.retain(|m, _| *m >= before);
        }
        Ok(())
    }

    async fn count_since(&self, key: &str, from_minute: i64) -> Result<i64, StoreError> {
        let counts = self.counts.lock().unwrap();
        Ok(counts
            .get(key)
            .map_or(0, |m| m.range(from_minute..).map(|(_, n)| n).sum()))
    }
}

/// The limits of clients whose integration shares none.
pub(crate) fn process_limits() -> Arc<dyn LimitStore> {
    static LIMITS: OnceLock<Arc<ProcessLimits>> = OnceLock::new();
    LIMITS.get_or_init(Default::default).clone()
}

// ---------------------------------------------------------------------------------------
// Requests in flight

/// This process's name on the slots it holds: unique per process start.
fn process_holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// How many endpoints a map keeps before it forgets the idle ones: an `autotask.request`
/// path names its endpoint, so the names are the caller's, and must not grow a map without
/// bound.
const KEEP_ENDPOINTS: usize = 256;

/// Forgets `map`'s idle entries once it holds more than [`KEEP_ENDPOINTS`].
fn forget_idle<V>(map: &mut HashMap<String, V>, idle: impl Fn(&V) -> bool) {
    if map.len() > KEEP_ENDPOINTS {
        map.retain(|_, v| !idle(v));
    }
}

/// The local permits of (limits key, lower-case endpoint): one semaphore per configured
/// tenant and endpoint, never per request.
fn local_permits(key: &str) -> Arc<Semaphore> {
    type Semaphores = Mutex<HashMap<String, Arc<Semaphore>>>;
    static SEMS: OnceLock<Semaphores> = OnceLock::new();
    let mut map = SEMS.get_or_init(Default::default).lock().unwrap();
    forget_idle(&mut *map, |sem| Arc::strong_count(sem) == 1);
    map.entry(key.to_string())
        .or_insert_with(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT)))
        .clone()
}

/// A request's right to be in flight: a local permit and a slot in the store. Gives the slot
/// back when dropped (a cancelled request too).
pub(crate) struct InFlight {
    _local: OwnedSemaphorePermit,
    slot: Option<(Arc<dyn LimitStore>, String, u32, String)>,
    gauge: Arc<AtomicUsize>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
        if let Some((store, key, slot, holder)) = self.slot.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            // Otherwise the slot lapses at its time limit.
            rt.spawn(async move {
                if let Err(e) = store.free_slot(&key, slot, &holder).await {
                    tracing::warn!(target: "weft::autotask", error = %e, "could not give back an Autotask request slot; it lapses at its time limit");
                }
            });
        }
    }
}

/// Waits for a place among the 3 requests in flight to `endpoint` of the tenant `slots_key`
/// names, across every process sharing `store`, holding it for at most `hold`.
pub(crate) async fn in_flight(
    store: &Arc<dyn LimitStore>,
    tenant: &Tenant,
    endpoint: &str,
    hold: Duration,
) -> Result<InFlight, AutotaskError> {
    let key = endpoint_key(&tenant.slots_key, endpoint);
    let local = local_permits(&key)
        .acquire_owned()
        .await
        .map_err(|_| AutotaskError::new(ErrorKind::Protocol, "concurrency limiter closed"))?;
    let holder = format!("{}:{}", process_holder(), uuid::Uuid::new_v4().simple());
    let mut wait = Duration::from_millis(10);
    let slot = loop {
        let now = now_ms();
        let until = now + i64::try_from(hold.as_millis()).unwrap_or(i64::MAX / 2);
        match store
            .take_slot(&key, MAX_IN_FLIGHT as u32, &holder, now, until)
            .await
        {
            Ok(Some(slot)) => break Some(slot),
            Ok(None) => {
                tokio::time::sleep(wait + super::client::jitter(wait)).await;
                wait = (wait * 3 / 2).min(Duration::from_millis(250));
            }
            Err(e) => {
                // The database is away: this process's own 3 still hold.
                tracing::warn!(target: "weft::autotask", error = %e, "the shared Autotask request slots cannot be read; limiting this process only");
                break None;
            }
        }
    };
    let gauge = tenant.gauge(endpoint);
    gauge.fetch_add(1, Ordering::Relaxed);
    Ok(InFlight {
        _local: local,
        slot: slot.map(|s| (store.clone(), key, s, holder)),
        gauge,
    })
}

// ---------------------------------------------------------------------------------------
// The hourly budget

/// One tenant as the limits see it: the keys of its slots and budget in the store, and this
/// process's state of its budget.
pub(crate) struct Tenant {
    /// Who, for people (the API user).
    label: String,
    /// A digest of the API secret (see [`credential`]).
    credential: String,
    slots_key: String,
    budget_key: String,
    budget: tokio::sync::Mutex<BudgetState>,
    in_flight: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    used: AtomicU64,
    limit: AtomicU64,
    sent: AtomicU64,
    paced: AtomicU64,
    /// Requests this process sent since the last `ThresholdInformation` reading.
    since_observed: AtomicU64,
    /// Requests this process sent since the store's count was last read.
    since_shared: AtomicU64,
    /// The minute this process last forgot old counts in.
    pruned: std::sync::atomic::AtomicI64,
}

#[derive(Default)]
struct BudgetState {
    /// The last `ThresholdInformation` reading, and when.
    observed: Option<(Threshold, Instant)>,
    /// When `ThresholdInformation` was last asked (answered or not).
    probed: Option<Instant>,
    /// weft's requests in the rolling hour, every process (the store), and when read.
    shared: Option<(u64, Instant)>,
}

impl BudgetState {
    fn limit(&self, config: &BudgetConfig) -> u64 {
        config
            .request_budget
            .or(self.observed.map(|(t, _)| t.limit).filter(|l| *l > 0))
            .unwrap_or(DEFAULT_REQUEST_BUDGET)
    }
}

impl Tenant {
    /// Requests in the rolling hour: the larger of Autotask's count (everyone's, as last
    /// read) and weft's (every process's), each with what this process sent since.
    fn used(&self, st: &BudgetState) -> u64 {
        let observed = st.observed.map_or(0, |(t, _)| {
            t.count + self.since_observed.load(Ordering::Relaxed)
        });
        let shared = st.shared.map_or(0, |(n, _)| n) + self.since_shared.load(Ordering::Relaxed);
        observed.max(shared)
    }

    /// One more request, in this process's counters.
    fn count_one(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.since_observed.fetch_add(1, Ordering::Relaxed);
        self.since_shared.fetch_add(1, Ordering::Relaxed);
        self.used.fetch_add(1, Ordering::Relaxed);
    }

    fn gauge(&self, endpoint: &str) -> Arc<AtomicUsize> {
        let mut map = self.in_flight.lock().unwrap();
        forget_idle(&mut *map, |g| {
            Arc::strong_count(g) == 1 && g.load(Ordering::Relaxed) == 0
        });
        map.entry(endpoint.to_string()).or_default().clone()
    }

    fn usage(&self) -> TenantUsage {
        TenantUsage {
            tenant: self.label.clone(),
            used: self.used.load(Ordering::Relaxed),
            budget: self.limit.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            paced: self.paced.load(Ordering::Relaxed),
            in_flight: self
                .in_flight
                .lock()
                .unwrap()
                .iter()
                .map(|(e, n)| (e.clone(), n.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

fn tenants() -> &'static Mutex<HashMap<String, Arc<Tenant>>> {
    static TENANTS: OnceLock<Mutex<HashMap<String, Arc<Tenant>>>> = OnceLock::new();
    TENANTS.get_or_init(Default::default)
}

fn short_hash(parts: &[&str]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.trim().to_ascii_lowercase().as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..12])
}

/// A short digest of an API secret: none of a tenant's other parts is secret, so without it
/// an integration configured with someone else's user name and code (and a wrong secret)
/// would share — and could spend — their slots and budget.
fn credential(secret: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(secret.as_bytes())[..12])
}

fn slots_prefix(username: &str, integration_code: &str, zone: &str, credential: &str) -> String {
    format!(
        "autotask:slots:{}",
        short_hash(&[integration_code, username, zone, credential])
    )
}

fn endpoint_key(prefix: &str, endpoint: &str) -> String {
    format!("{prefix}:{}", endpoint.to_ascii_lowercase())
}

/// The store key of the slots an integration (API user, integration code, secret) has for
/// `endpoint` at `zone`: the integration code and secret show only as part of a hash.
pub fn slot_key(
    username: &str,
    integration_code: &str,
    secret: &str,
    zone: &str,
    endpoint: &str,
) -> String {
    endpoint_key(
        &slots_prefix(username, integration_code, zone, &credential(secret)),
        endpoint,
    )
}

/// The tenant of an API user at a zone, reached with an integration code: its slots are the
/// integration code's (Autotask's thread limit is per integration), its budget the
/// database's (every integration of the user's database).
pub(crate) fn tenant(
    username: &str,
    integration_code: &str,
    secret: &str,
    zone: &str,
) -> Arc<Tenant> {
    let credential = credential(secret);
    let budget_key = format!(
        "autotask:budget:{}",
        short_hash(&[username, zone, &credential])
    );
    let slots_key = slots_prefix(username, integration_code, zone, &credential);
    let mut map = tenants().lock().unwrap();
    map.entry(slots_key.clone())
        .or_insert_with(|| {
            Arc::new(Tenant {
                label: username.trim().to_string(),
                credential,
                slots_key,
                budget_key,
                budget: Default::default(),
                in_flight: Default::default(),
                used: AtomicU64::new(0),
                limit: AtomicU64::new(DEFAULT_REQUEST_BUDGET),
                sent: AtomicU64::new(0),
                paced: AtomicU64::new(0),
                since_observed: AtomicU64::new(0),
                since_shared: AtomicU64::new(0),
                pruned: std::sync::atomic::AtomicI64::new(0),
            })
        })
        .clone()
}

/// Every tenant (API user) this process has sent requests to, with its usage; one entry per
/// API user (its integration codes and zones together).
pub fn usage() -> Vec<TenantUsage> {
    merged(tenants().lock().unwrap().values())
}

/// The usage of the API user `username` reached with `secret`, when this process has sent
/// it requests: another integration naming the same user (with another secret) is not it.
pub fn usage_of(username: &str, secret: &str) -> Option<TenantUsage> {
    let credential = credential(secret);
    let map = tenants().lock().unwrap();
    let mine = map
        .values()
        .filter(|t| t.credential == credential && t.label.eq_ignore_ascii_case(username.trim()));
    merged(mine).into_iter().next()
}

/// `tenants`' usage, one entry per API user.
fn merged<'a>(tenants: impl Iterator<Item = &'a Arc<Tenant>>) -> Vec<TenantUsage> {
    let mut by_user: BTreeMap<String, TenantUsage> = BTreeMap::new();
    for u in tenants.map(|t| t.usage()) {
        match by_user.get_mut(&u.tenant) {
            None => {
                by_user.insert(u.tenant.clone(), u);
            }
            Some(m) => {
                m.used = m.used.max(u.used);
                m.budget = m.budget.max(u.budget);
                m.sent += u.sent;
                m.paced += u.paced;
                for (e, n) in u.in_flight {
                    *m.in_flight.entry(e).or_default() += n;
                }
            }
        }
    }
    by_user.into_values().collect()
}

/// What reads `ThresholdInformation` for [`admit`].
pub(crate) trait Probe {
    /// `GET /V1.0/ThresholdInformation` (boxed: the read is itself a request, which passes
    /// through [`admit`]).
    fn threshold(&self) -> ProbeFuture<'_>;
}

/// What [`Probe::threshold`] returns.
pub(crate) type ProbeFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Threshold, AutotaskError>> + Send + 'a>,
>;

fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

/// Lets a request go under the tenant's hourly budget: reads the shared count and
/// `ThresholdInformation` when they are stale, paces background work past the threshold,
/// and refuses every request once the budget is used up.
pub(crate) async fn admit(
    store: &Arc<dyn LimitStore>,
    tenant: &Tenant,
    config: &BudgetConfig,
    urgency: Urgency,
    probe: &impl Probe,
) -> Result<(), AutotaskError> {
    if urgency == Urgency::Probe {
        tenant.count_one();
        return Ok(());
    }
    let mut st = tenant.budget.lock().await;
    let mut probed_for_refusal = false;
    loop {
        if st
            .shared
            .is_none_or(|(_, at)| at.elapsed() >= SHARED_COUNT_FRESH)
        {
            let from = minute_of(now_ms()) - WINDOW_MINUTES + 1;
            match store.count_since(&tenant.budget_key, from).await {
                Ok(n) => {
                    st.shared = Some((u64::try_from(n).unwrap_or(0), Instant::now()));
                    tenant.since_shared.store(0, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(target: "weft::autotask", error = %e, "the shared Autotask request count cannot be read");
                }
            }
        }
        let limit = st.limit(config);
        let pace_from = limit.saturating_mul(u64::from(config.pace_percent.min(100))) / 100;
        let check_every = if tenant.used(&st) >= pace_from {
            config.threshold_check / 4
        } else {
            config.threshold_check
        };
        let due = !config.threshold_check.is_zero()
            && st.probed.is_none_or(|at| at.elapsed() >= check_every);
        let used = tenant.used(&st);
        let stale_refusal = used >= limit
            && !probed_for_refusal
            && !config.threshold_check.is_zero()
            && st
                .observed
                .is_none_or(|(_, at)| at.elapsed() >= OBSERVED_FRESH);
        if due || stale_refusal {
            probed_for_refusal = stale_refusal;
            st.probed = Some(Instant::now());
            match probe.threshold().await {
                Ok(t) => {
                    st.observed = Some((t, Instant::now()));
                    tenant.since_observed.store(0, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(target: "weft::autotask", error = %e, "ThresholdInformation could not be read; counting weft's own requests");
                }
            }
            continue;
        }
        let limit = st.limit(config);
        tenant.used.store(used, Ordering::Relaxed);
        tenant.limit.store(limit, Ordering::Relaxed);
        if used >= limit {
            return Err(AutotaskError::new(
                ErrorKind::BudgetExhausted,
                format!(
                    "the Autotask API's hourly request budget of `{}`'s database is used up: {used} of {limit} requests in the last hour (Autotask suspends API access beyond it). \
                     weft sends no more requests until older ones leave the rolling hour; spread out syncs, polling and large fan-outs, or lower `budget_pace_percent` so background work slows down sooner",
                    tenant.label
                ),
            ));
        }
        // Counted as it is let through, so the requests admitted together cannot overrun
        // what is left between them.
        tenant.count_one();
        if urgency == Urgency::Background && used >= pace_from {
            // Spread what is left over the hour it has to last.
            let left = limit - used;
            let delay = (Duration::from_secs(3600) / u32::try_from(left).unwrap_or(u32::MAX))
                .min(config.pace_max_delay);
            drop(st);
            tenant.paced.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "weft::autotask", used, limit, delay_ms = delay.as_millis() as u64, "pacing background Autotask work near the hourly budget");
            tokio::time::sleep(delay).await;
        }
        return Ok(());
    }
}

/// Counts a request that was sent in the store's budget of the tenant (the process's own
/// counters moved when it was admitted).
pub(crate) fn spent(store: &Arc<dyn LimitStore>, tenant: &Tenant) {
    let (store, key) = (store.clone(), tenant.budget_key.clone());
    let minute = minute_of(now_ms());
    // Old minutes are forgotten by the first request of each minute (of this process).
    let forget = (tenant.pruned.swap(minute, Ordering::Relaxed) != minute)
        .then_some(minute - 2 * WINDOW_MINUTES);
    // Spawned: a cancelled request was still sent, and still counts.
    tokio::spawn(async move {
        if let Err(e) = store.add_count(&key, minute, 1, forget).await {
            tracing::warn!(target: "weft::autotask", error = %e, "an Autotask request could not be counted in the shared budget");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An integration that names another org's API user (with another secret) shares none
    /// of its limits, and is not shown its usage.
    #[test]
    fn a_tenant_is_its_user_and_its_secret() {
        let mine = tenant("api@acme.example", "CODE", "right", "https://z1/");
        let theirs = tenant("api@acme.example", "CODE", "wrong", "https://z1/");
        assert_ne!(mine.slots_key, theirs.slots_key);
        assert_ne!(mine.budget_key, theirs.budget_key);
        assert!(Arc::ptr_eq(
            &mine,
            &tenant("API@acme.example", "CODE", "right", "https://z1/")
        ));
        assert!(usage_of("api@acme.example", "right").is_some());
        assert!(usage_of("api@acme.example", "never-used").is_none());
    }

    /// Endpoint names come from request paths: idle ones are forgotten past a bound.
    #[test]
    fn idle_endpoints_do_not_accumulate() {
        let t = tenant("bound@acme.example", "CODE", "s", "https://z2/");
        for i in 0..(KEEP_ENDPOINTS * 4) {
            drop(t.gauge(&format!("Entity{i}")));
        }
        assert!(t.in_flight.lock().unwrap().len() <= KEEP_ENDPOINTS + 1);
        let busy = t.gauge("Busy");
        busy.fetch_add(1, Ordering::Relaxed);
        for i in 0..(KEEP_ENDPOINTS * 2) {
            drop(t.gauge(&format!("More{i}")));
        }
        assert!(t.in_flight.lock().unwrap().contains_key("Busy"));
    }
}
