//! What webhook traffic may cost, per process: strangers must not be able to grow storage or
//! memory, nor lock a real sender out.
//!
//! - A trigger's `rate_limit` is a token bucket per (workflow, trigger, org), taken only by
//!   requests that passed authentication: wrong secrets cannot spend a sender's budget.
//! - Failed requests (bad path, unknown trigger or org, wrong secret…) are limited per
//!   source address; a source over its budget is answered 429 before any lookup.
//! - Rejected requests are recorded as trigger events only as a sample: at most
//!   [`SAMPLED_REJECTIONS`] per trigger per minute (every one is counted in `/metrics`).
//!
//! Every map here is bounded: buckets exist only for authenticated (trigger, org) pairs and
//! deployed triggers, and the per-source map holds at most [`MAX_SOURCES`] addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Rejected events recorded per trigger per minute.
pub const SAMPLED_REJECTIONS: u32 = 10;
/// Failed requests a source may make in a burst…
pub const SOURCE_FAILURE_BURST: f64 = 30.0;
/// …and per second after it.
pub const SOURCE_FAILURES_PER_SEC: f64 = 0.5;
/// Sources tracked at once.
pub const MAX_SOURCES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, capacity: f64, per_sec: f64, now: Instant) {
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * per_sec).min(capacity);
        self.last = now;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The limits of one server process.
#[derive(Debug, Default)]
pub struct Guards {
    rates: Mutex<HashMap<(String, String, String), Bucket>>,
    sources: Mutex<HashMap<IpAddr, Bucket>>,
    samples: Mutex<HashMap<(String, String), (u64, u32)>>,
}

impl Guards {
    /// Takes one request from the bucket of an authenticated (workflow, trigger, org):
    /// `rate` per second, bursts of `rate`. False when it is empty.
    pub fn take_rate(&self, workflow: &str, trigger: &str, org: &str, rate: u32) -> bool {
        let rate = f64::from(rate.max(1));
        let now = Instant::now();
        let mut rates = lock(&self.rates);
        let b = rates
            .entry((workflow.to_string(), trigger.to_string(), org.to_string()))
            .or_insert_with(|| Bucket::full(rate, now));
        b.refill(rate, rate, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether `source` may still fail (it has failure budget left).
    pub fn source_allowed(&self, source: Option<IpAddr>) -> bool {
        let Some(ip) = source else { return true };
        let now = Instant::now();
        let mut sources = lock(&self.sources);
        match sources.get_mut(&ip) {
            None => true,
            Some(b) => {
                b.refill(SOURCE_FAILURE_BURST, SOURCE_FAILURES_PER_SEC, now);
                b.tokens >= 1.0
            }
        }
    }

    /// Counts a failed request of `source` against its budget.
    pub fn source_failed(&self, source: Option<IpAddr>) {
        let Some(ip) = source else { return };
        let now = Instant::now();
        let mut sources = lock(&self.sources);
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            // Forget the sources that have recovered their whole budget; if every one is
            // still spending, the new one goes untracked rather than growing the map.
            sources.retain(|_, b| {
                b.refill(SOURCE_FAILURE_BURST, SOURCE_FAILURES_PER_SEC, now);
                b.tokens < SOURCE_FAILURE_BURST
            });
            if sources.len() >= MAX_SOURCES {
                return;
            }
        }
        let b = sources
            .entry(ip)
            .or_insert_with(|| Bucket::full(SOURCE_FAILURE_BURST, now));
        b.refill(SOURCE_FAILURE_BURST, SOURCE_FAILURES_PER_SEC, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }

    /// Whether a rejection of a deployed trigger is recorded as an event: the first
    /// [`SAMPLED_REJECTIONS`] of each minute are.
    pub fn sample_rejection(&self, workflow: &str, trigger: &str, unix_secs: u64) -> bool {
        let minute = unix_secs / 60;
        let mut samples = lock(&self.samples);
        let slot = samples
            .entry((workflow.to_string(), trigger.to_string()))
            .or_insert((minute, 0));
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += 1;
        slot.1 <= SAMPLED_REJECTIONS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_buckets_are_per_org() {
        let g = Guards::default();
        assert!(g.take_rate("wf", "t", "acme", 1));
        assert!(!g.take_rate("wf", "t", "acme", 1));
        assert!(
            g.take_rate("wf", "t", "beta", 1),
            "another org's budget is its own"
        );
    }

    #[test]
    fn a_failing_source_is_limited_and_others_are_not() {
        let g = Guards::default();
        let bad = Some("10.0.0.1".parse().unwrap());
        let good = Some("10.0.0.2".parse().unwrap());
        for _ in 0..SOURCE_FAILURE_BURST as usize {
            assert!(g.source_allowed(bad));
            g.source_failed(bad);
        }
        assert!(!g.source_allowed(bad));
        assert!(g.source_allowed(good));
        assert!(g.source_allowed(None), "unknown sources are not limited");
    }

    #[test]
    fn the_source_map_stays_bounded() {
        let g = Guards::default();
        for i in 0..(MAX_SOURCES as u32 + 500) {
            g.source_failed(Some(IpAddr::from(i.to_be_bytes())));
        }
        assert!(lock(&g.sources).len() <= MAX_SOURCES);
    }

    #[test]
    fn rejections_are_sampled_per_minute() {
        let g = Guards::default();
        let kept = (0..100)
            .filter(|_| g.sample_rejection("wf", "t", 120))
            .count();
        assert_eq!(kept, SAMPLED_REJECTIONS as usize);
        assert!(g.sample_rejection("wf", "t", 180), "a new minute");
        assert!(g.sample_rejection("wf", "other", 120));
    }
}
