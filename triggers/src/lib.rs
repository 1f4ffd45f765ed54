//! weft-triggers: what starts executions, without any HTTP framework.
//!
//! - [`autotask`] registers the Autotask webhooks of `autotask.*` triggers, keeps them in
//!   step, and accepts their signed callouts (which org, which event).
//! - [`webhook`] holds what a generic webhook request must be (secret, rate limit, body,
//!   criteria) and the `TRIGGER` event it makes.
//! - [`cron`] schedules cron triggers: each slot fires once across workers, with catch-up.
//! - [`webhook_access`] decides whether a webhook request is accepted for an org: the org
//!   binding (registered, active, entitled by `run_for`), per-(trigger, org) secrets and
//!   their rotation; [`guard`] holds the per-trigger and per-source limits.
//! - [`event`] turns an accepted event into workflow inputs and one start per org.
//! - [`form`]: the tokens of form links and how a request finds its link.
//! - [`Switches`]: triggers turned on or off by an operator.
//!
//! The HTTP server (`weft-server`) answers requests by calling these functions; executions
//! themselves run in `weft-engine`'s executor.

pub mod autotask;
pub mod cron;
mod error;
pub mod event;
pub mod guard;
pub mod webhook;
pub mod webhook_access;

use std::collections::HashMap;

use weft_engine::store::{Store, StoreError};

pub use error::TriggerError;

/// The trigger switches set through the API (`POST /api/triggers/{wf}/{t}/enable|disable`).
#[derive(Debug, Default)]
pub struct Switches(HashMap<(String, String), bool>);

impl Switches {
    /// The switches as stored now.
    ///
    /// # Errors
    /// Store failures.
    pub async fn load(store: &dyn Store) -> Result<Switches, StoreError> {
        Ok(Switches(
            store
                .trigger_switches()
                .await?
                .into_iter()
                .map(|(w, t, on)| ((w, t), on))
                .collect(),
        ))
    }

    /// Is a trigger on: its switch if any, else its `enabled:`.
    pub fn enabled(&self, workflow: &str, trigger: &weft_engine::model::Trigger) -> bool {
        self.0
            .get(&(workflow.to_string(), trigger.name.clone()))
            .copied()
            .unwrap_or(trigger.enabled)
    }
}

/// The public base of webhook URLs in messages: `WEFT_PUBLIC_URL`, else `weft serve`'s
/// default address.
pub fn public_url() -> String {
    std::env::var("WEFT_PUBLIC_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into())
}

/// A random token: `prefix` and 256 bits of hex.
pub fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares without leaking where the inputs differ (lengths may leak).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
