//! Retention: finished executions (and the trigger events of the same age) are deleted once older than a period — the installation's
//! default, or an org's own, set with the org variable `retention` (inherited down the tree
//! like any variable: `"365d"` on a client whose records must be kept a year, `"forever"` to
//! keep everything of it; a secret variable of that name is ignored).

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::executor::{Engine, EngineError};
use crate::store::PurgeScope;

/// The org variable that sets an org's retention period.
pub const RETENTION_VAR: &str = "retention";

/// What one purge deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// The org whose own period applied; `None` for the default.
    pub org: Option<String>,
    /// Executions that finished before this were deleted.
    pub before: Timestamp,
    /// How many.
    pub count: u64,
    /// How many trigger events (webhook requests, cron slots, Autotask callouts) recorded
    /// before the same instant were deleted with them.
    pub events: u64,
}

/// Deletes what `scope` holds from before `before`: finished executions and trigger events.
/// Returns how many of each.
///
/// # Errors
/// Store failures.
pub async fn purge(
    engine: &Engine,
    before: Timestamp,
    scope: &PurgeScope,
) -> Result<(u64, u64), EngineError> {
    let before = before.to_string();
    let count = engine.store().purge(&before, scope).await?;
    let events = engine.store().purge_trigger_events(&before, scope).await?;
    Ok((count, events))
}

/// An org's period from its `retention` variable: `Some(None)` keeps everything.
fn org_period(value: &serde_json::Value) -> Option<Option<Duration>> {
    let text = match value {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => format!("{n}d"),
        _ => return None,
    };
    match text.as_str() {
        "forever" | "keep" | "never" => Some(None),
        t => crate::model::parse_duration(t).map(Some),
    }
}

fn cutoff(now: Timestamp, period: Duration) -> Option<Timestamp> {
    now.checked_sub(SignedDuration::try_from(period).ok()?).ok()
}

/// Deletes the finished executions past their retention: each org with a `retention`
/// variable by its own period (a value that does not read as one keeps everything and is
/// logged), the others by `default` (none: kept).
///
/// # Errors
/// Store failures.
pub async fn apply(engine: &Engine, default: Option<Duration>) -> Result<Vec<Purged>, EngineError> {
    let now = engine.now();
    let store = engine.store();
    let orgs = store.list_orgs().await?;
    // Each org's own `retention` (one read of its variables), then inheritance in memory:
    // loading every org's whole context would read its ancestors, integrations and secrets.
    let mut set_here: HashMap<&str, serde_json::Value> = HashMap::new();
    for org in &orgs {
        if let Some(v) = store
            .org_vars(&org.id)
            .await?
            .into_iter()
            .find(|v| v.key == RETENTION_VAR && !v.secret)
        {
            let value =
                serde_json::from_str(&v.value).unwrap_or(serde_json::Value::String(v.value));
            set_here.insert(org.id.as_str(), value);
        }
    }
    let parent_of: HashMap<&str, Option<&str>> = orgs
        .iter()
        .map(|o| (o.id.as_str(), o.parent_id.as_deref()))
        .collect();
    let inherited = |org: &str| {
        let mut at = Some(org);
        // Bounded: a cycle in a corrupt tree must not hang the job.
        for _ in 0..=orgs.len() {
            let o = at?;
            if let Some(v) = set_here.get(o) {
                return Some(v);
            }
            at = parent_of.get(o).copied().flatten();
        }
        None
    };
    let mut done = Vec::new();
    let mut own = Vec::new();
    for org in &orgs {
        let Some(value) = inherited(&org.id) else {
            continue;
        };
        own.push(org.id.clone());
        match org_period(value) {
            Some(Some(period)) => {
                let Some(before) = cutoff(now, period) else {
                    continue;
                };
                let scope = PurgeScope {
                    only: Some(org.id.clone()),
                    ..PurgeScope::default()
                };
                let (count, events) = purge(engine, before, &scope).await?;
                done.push(Purged {
                    org: Some(org.id.clone()),
                    before,
                    count,
                    events,
                });
            }
            Some(None) => {}
            None => tracing::warn!(
                org = %org.id,
                value = %value,
                "the org's `retention` is not a period (like 90d) or `forever`; its executions are kept"
            ),
        }
    }
    if let Some(before) = default.and_then(|d| cutoff(now, d)) {
        let scope = PurgeScope {
            only: None,
            except: own,
        };
        let (count, events) = purge(engine, before, &scope).await?;
        done.push(Purged {
            org: None,
            before,
            count,
            events,
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn periods_read_from_variables() {
        assert_eq!(
            org_period(&json!("90d")),
            Some(Some(Duration::from_secs(90 * 86400)))
        );
        assert_eq!(
            org_period(&json!(30)),
            Some(Some(Duration::from_secs(30 * 86400)))
        );
        assert_eq!(org_period(&json!("forever")), Some(None));
        assert_eq!(org_period(&json!("soon")), None);
        assert_eq!(org_period(&json!({"d": 1})), None);
    }
}
