//! The nightly run of `weft serve`: the sync applied for the root org at each slot of the
//! configured schedule.

use std::sync::Arc;

use weft_engine::executor::Engine;
use weft_engine::org::root_org;
use weft_engine::store::OrgRecord;

use super::settings::{Settings, settings};
use super::{Mode, Options, initialized_key, run};

/// Whether `--org`'s integration resolves (the nightly run only runs when it does).
pub async fn has_integration(engine: &Engine, org: &OrgRecord) -> bool {
    engine
        .integration_for(&org.id, "autotask", None)
        .await
        .is_ok()
}

/// The nightly run: at each slot of the configured schedule, applies the sync for the root
/// org when an Autotask integration resolves for it. Settings are re-read every minute, so
/// a changed schedule takes effect without a restart. Each slot runs once across processes
/// sharing the database. Never returns; abort the task to stop it.
pub async fn nightly(engine: Arc<Engine>) {
    let mut last = jiff::Timestamp::now();
    loop {
        let store = engine.store().as_ref();
        let wait = match settings(store).await {
            Ok(s) => match next_slot(&s, last) {
                Some(slot) => {
                    let now = jiff::Timestamp::now();
                    if slot <= now {
                        last = slot;
                        run_slot(&engine, slot).await;
                        std::time::Duration::from_secs(1)
                    } else {
                        let d = (slot - now).get_seconds().clamp(1, 60);
                        std::time::Duration::from_secs(u64::try_from(d).unwrap_or(60))
                    }
                }
                None => std::time::Duration::from_secs(60),
            },
            Err(e) => {
                tracing::error!(error = %e, "autotask sync: cannot read the settings");
                std::time::Duration::from_secs(60)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// The first slot of the schedule after `after` (`None` when off or invalid).
pub fn next_slot(s: &Settings, after: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let expr = s.schedule.as_deref()?;
    let schedule = weft_engine::cron::Schedule::parse(expr).ok()?;
    let tz = jiff::tz::TimeZone::get(&s.timezone).ok()?;
    schedule.next_after(after, &tz)
}

async fn run_slot(engine: &Arc<Engine>, slot: jiff::Timestamp) {
    let store = engine.store().as_ref();
    let root = match root_org(store).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "autotask sync: no scheduled run");
            return;
        }
    };
    // The first sync is a person's decision (preview, then apply): the schedule only keeps
    // an initialized directory current.
    match store.get_setting(&initialized_key(&root.id)).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::info!(
                "autotask sync: skipped until the first `weft sync autotask --apply` has run"
            );
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "autotask sync: store failure");
            return;
        }
    }
    if !has_integration(engine, &root).await {
        tracing::debug!("autotask sync: no Autotask integration for the root org");
        return;
    }
    // One process per slot (processes sharing the database).
    match store
        .ensure_setting(&format!("sync.autotask.slot.{}.{slot}", root.id), "")
        .await
    {
        Ok((_, true)) => {}
        Ok((_, false)) => return,
        Err(e) => {
            tracing::error!(error = %e, "autotask sync: store failure");
            return;
        }
    }
    let options = Options {
        org: Some(root.id.clone()),
        integration: None,
    };
    match run(engine, Mode::Apply, &options).await {
        Ok(report) => {
            let c = report.counts();
            tracing::info!(run = report.run_id, counts = %c, errors = report.errors.len(), "autotask nightly sync done");
        }
        Err(e) => tracing::error!(error = %e, "autotask nightly sync failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_nightly_at_two_utc_and_off_means_none() {
        let s = Settings::default();
        let after: jiff::Timestamp = "2026-11-23T18:00:00Z".parse().unwrap();
        assert_eq!(
            next_slot(&s, after).unwrap().to_string(),
            "2026-11-24T02:00:00Z"
        );
        let london = Settings {
            schedule: Some("30 1 * * *".into()),
            timezone: "Europe/London".into(),
            ..Settings::default()
        };
        let summer: jiff::Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            next_slot(&london, summer).unwrap().to_string(),
            "2026-07-02T00:30:00Z"
        );
        let off = Settings {
            schedule: None,
            ..Settings::default()
        };
        assert!(next_slot(&off, after).is_none());
    }
}
