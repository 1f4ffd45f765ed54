//! Cron triggers: a [`Scheduler`] that fires every deployed workflow's enabled `type: cron`
//! triggers.
//!
//! Each pass ([`Scheduler::tick`]) reads the deployed workflows, and for every enabled cron
//! trigger finds the slots that came due since the last slot it handled (the greatest
//! `cron:<slot>` de-duplication key of its events; for a trigger that never fired, the moment
//! its workflow version was deployed). At most one slot per trigger is handled per pass:
//!
//! - `catch_up: latest` (the default): the most recent due slot fires, once; older missed
//!   slots (downtime, a disabled scheduler) are skipped.
//! - `catch_up: none`: the most recent due slot fires only while it is on time, at most
//!   [`ON_TIME`] after its scheduled instant. A slot found later than that (weft was down) is
//!   recorded as a `rejected` event, with the reason, and starts nothing; the next slot fires
//!   normally.
//!
//! Every event a slot produces (`accepted`, `filtered` by `criteria:`, `rejected`) carries the
//! key `cron:<slot>` (the slot's UTC instant, `2026-03-29T01:30:00Z`, so keys sort by time),
//! and the store keeps one event per key and trigger: however many workers run a scheduler,
//! a slot fires once. An accepted event and its executions (one per `run_for` org) are
//! committed together by [`Engine::enqueue`]; the executions then run on the workers.
//!
//! Schedules are five fields (`minute hour day-of-month month day-of-week`, with `*`, lists,
//! ranges, steps, `JAN`–`DEC`, `SUN`–`SAT` (0 or 7 is Sunday), `?` as `*`, `L` (last day of
//! the month) in day-of-month and `DAY#n` (the n-th such weekday of the month) in
//! day-of-week; when both day fields are restricted a day matching either one matches, as in
//! Vixie cron), or `@hourly`, `@daily`/`@midnight`, `@weekly`, `@monthly`,
//! `@yearly`/`@annually`. They are evaluated in the trigger's `timezone:` (UTC when absent):
//!
//! - a local time skipped by a spring-forward transition fires once, at the first instant
//!   after the gap (`30 2 * * *` in Europe/Amsterdam on 2026-03-29 fires at 03:00 CEST,
//!   01:00 UTC); several skipped times collapse into that one slot;
//! - a local time repeated by a fall-back transition fires once, at its first occurrence
//!   (`30 2 * * *` in Europe/Amsterdam on 2026-10-25 fires at 02:30 CEST, 00:30 UTC).
//!
//! `TRIGGER` in cron executions is `{type: "cron", name, schedule, timezone, scheduled_at,
//! fired_at}`: `scheduled_at` is the slot in RFC 3339 with the trigger's UTC offset,
//! `fired_at` the moment it fired (UTC).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use weft_engine::Workflow;
use weft_engine::action::Clock;
pub use weft_engine::cron::{Schedule, ScheduleError};
use weft_engine::executor::scope::{Extra, context, to_value};
use weft_engine::executor::{Engine, EngineError, Start, StartOptions};
use weft_engine::model::{CatchUp, RunFor, Trigger, TriggerKind};
use weft_engine::org::RootOrgError;
use weft_engine::store::{TriggerEvent, WorkflowRecord};

pub use tokio_util::sync::CancellationToken;

/// With `catch_up: none`, how late a slot may be found and still fire.
pub const ON_TIME: Duration = Duration::from_secs(60);

/// The org of [`RunFor::Owner`] before any org is registered (then: the root org; with
/// several root orgs the slot is rejected, naming them).
/// The org an event without one runs for (the engine's default org).
pub const OWNER_ORG: &str = "default";

/// The prefix of cron de-duplication keys.
const KEY_PREFIX: &str = "cron:";

/// The de-duplication key of a slot: `cron:2026-03-29T01:30:00Z`.
pub fn slot_key(slot: Timestamp) -> String {
    format!("{KEY_PREFIX}{}", slot.strftime("%Y-%m-%dT%H:%M:%SZ"))
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: Timestamp) -> ManualClock {
        ManualClock(Mutex::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: Timestamp) {
        *self.0.lock().expect("not poisoned") = now;
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("not poisoned");
        *t += SignedDuration::try_from(by).expect("a representable duration");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("not poisoned")
    }
}

/// One slot a [`Scheduler::tick`] handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The workflow.
    pub workflow: String,
    /// The trigger.
    pub trigger: String,
    /// The slot's instant.
    pub slot: Timestamp,
    /// The event's outcome: `accepted`, `filtered` or `rejected`.
    pub outcome: String,
    /// The executions queued (empty unless accepted).
    pub executions: Vec<String>,
}

/// A trigger's parsed schedule, or why it cannot fire.
type Parsed = Result<(Schedule, TimeZone), String>;

/// A schedule and its time zone (UTC when none is given), or why they cannot be used.
fn parse_schedule(schedule: &str, timezone: Option<&str>) -> Parsed {
    let s = Schedule::parse(schedule).map_err(|e| e.to_string())?;
    let tz = match timezone {
        Some(name) => {
            TimeZone::get(name).map_err(|e| format!("unknown time zone `{name}`: {e}"))?
        }
        None => TimeZone::UTC,
    };
    Ok((s, tz))
}

/// A cron trigger's next slot after `now`, in its time zone (`None` for other triggers, a
/// schedule that does not parse or never fires).
pub fn next_slot(trigger: &Trigger, now: Timestamp) -> Option<jiff::Zoned> {
    let TriggerKind::Cron {
        schedule, timezone, ..
    } = &trigger.kind
    else {
        return None;
    };
    let (s, tz) = parse_schedule(schedule, timezone.as_deref()).ok()?;
    s.next_after(now, &tz).map(|t| t.to_zoned(tz))
}

/// Fires cron triggers; see the [module documentation](self).
pub struct Scheduler {
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    /// Parsed schedules by (record id, trigger).
    schedules: Mutex<HashMap<(i64, String), Parsed>>,
    /// Problems already logged, so that a broken trigger is reported once, not every second.
    warned: Mutex<HashSet<String>>,
}

impl Scheduler {
    /// A scheduler for `engine`'s deployed workflows, reading the time from `clock`.
    pub fn new(engine: Arc<Engine>, clock: Arc<dyn Clock>) -> Scheduler {
        Scheduler {
            engine,
            clock,
            schedules: Mutex::default(),
            warned: Mutex::default(),
        }
    }

    fn warn_once(&self, key: String, message: &str) {
        if self
            .warned
            .lock()
            .expect("not poisoned")
            .insert(key.clone())
        {
            tracing::warn!(trigger = %key, "{message}");
        }
    }

    fn workflow(&self, record: &WorkflowRecord) -> Option<Arc<Workflow>> {
        self.engine.parsed(record).ok()
    }

    fn schedule(&self, record: &WorkflowRecord, trigger: &Trigger) -> Parsed {
        let TriggerKind::Cron {
            schedule, timezone, ..
        } = &trigger.kind
        else {
            return Err("not a cron trigger".into());
        };
        let mut cache = self.schedules.lock().expect("not poisoned");
        cache
            .entry((record.id, trigger.name.clone()))
            .or_insert_with(|| parse_schedule(schedule, timezone.as_deref()))
            .clone()
    }

    /// One pass over every deployed workflow's enabled cron triggers: handles at most one due
    /// slot per trigger and returns what it recorded (slots another scheduler handled first
    /// are not included).
    ///
    /// # Errors
    /// The store cannot list the workflows or trigger switches. A failure of one trigger is
    /// logged and the pass goes on.
    pub async fn tick(&self) -> Result<Vec<Fired>, EngineError> {
        let store = self.engine.store();
        let records = store.list_workflows().await?;
        let switches = crate::Switches::load(store.as_ref()).await?;
        let mut fired = Vec::new();
        for record in &records {
            let Some(wf) = self.workflow(record) else {
                self.warn_once(
                    format!("{} v{}", record.name, record.version),
                    "deployed workflow does not load; its cron triggers do not fire",
                );
                continue;
            };
            for trigger in &wf.triggers {
                if !matches!(trigger.kind, TriggerKind::Cron { .. }) {
                    continue;
                }
                if !switches.enabled(&wf.name, trigger) {
                    continue;
                }
                match self.trigger_tick(record, &wf, trigger).await {
                    Ok(Some(f)) => fired.push(f),
                    Ok(None) => {}
                    Err(e) => tracing::error!(
                        workflow = %wf.name,
                        trigger = %trigger.name,
                        error = %e,
                        "cron trigger failed; retrying at the next tick"
                    ),
                }
            }
        }
        Ok(fired)
    }

    /// Handles a trigger's due slot, if any.
    async fn trigger_tick(
        &self,
        record: &WorkflowRecord,
        wf: &Workflow,
        trigger: &Trigger,
    ) -> Result<Option<Fired>, EngineError> {
        let TriggerKind::Cron { catch_up, .. } = &trigger.kind else {
            return Ok(None);
        };
        let (schedule, tz) = match self.schedule(record, trigger) {
            Ok(p) => p,
            Err(e) => {
                self.warn_once(format!("{}.{}", wf.name, trigger.name), &e);
                return Ok(None);
            }
        };
        let now = self.clock.now();
        let last = self
            .engine
            .store()
            .last_dedupe_key(&wf.name, &trigger.name, KEY_PREFIX)
            .await?;
        let lower = match last
            .as_deref()
            .and_then(|k| k.strip_prefix(KEY_PREFIX)?.parse::<Timestamp>().ok())
        {
            Some(t) => t,
            // Never fired: nothing before the workflow version was deployed.
            None => match record.created_at.parse::<Timestamp>() {
                Ok(t) => t,
                Err(_) => {
                    self.warn_once(
                        format!("{}.{}", wf.name, trigger.name),
                        "the workflow's deployment time does not parse; the trigger starts now",
                    );
                    now
                }
            },
        };
        match schedule.next_after(lower, &tz) {
            Some(next) if next <= now => {}
            Some(_) => return Ok(None),
            None => {
                self.warn_once(
                    format!("{}.{}", wf.name, trigger.name),
                    "the schedule has no upcoming slot; the trigger never fires",
                );
                return Ok(None);
            }
        }
        let Some(slot) = schedule.last_at_or_before(now, &tz) else {
            return Ok(None);
        };
        let late = now.duration_since(slot);
        let on_time = SignedDuration::try_from(ON_TIME).expect("small");
        let fire = Fire {
            engine: &self.engine,
            record,
            wf,
            trigger,
            slot,
            tz: &tz,
            now,
            manual: false,
        };
        if *catch_up == CatchUp::None && late > on_time {
            let reason = format!(
                "missed: found {}s after its time (weft was not running); catch_up: none skips missed slots",
                late.as_secs()
            );
            return fire.record("rejected", reason).await;
        }
        fire.fire().await
    }

    /// Runs [`Scheduler::tick`] about once a second (just after each whole second of the
    /// clock) until `stop` is cancelled. Failures are logged and the loop goes on.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.tick().await {
                    tracing::error!(error = %e, "cron tick failed");
                }
                let into_second = u64::try_from(self.clock.now().subsec_nanosecond()).unwrap_or(0);
                let wait = Duration::from_nanos(1_000_000_000 - into_second.min(999_000_000))
                    + Duration::from_millis(5);
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        })
    }
}

/// `TRIGGER` of cron trigger `trigger` firing for `slot` (in the schedule's zone `tz`) at
/// `now`, by hand when `manual`.
fn slot_event(
    trigger: &Trigger,
    slot: Timestamp,
    tz: &TimeZone,
    now: Timestamp,
    manual: bool,
) -> Value {
    let (schedule, timezone) = match &trigger.kind {
        TriggerKind::Cron {
            schedule, timezone, ..
        } => (schedule.as_str(), timezone.as_deref()),
        _ => ("", None),
    };
    json!({
        "type": "cron",
        "name": trigger.name,
        "schedule": schedule,
        "timezone": timezone.unwrap_or("UTC"),
        "scheduled_at": slot.to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        "fired_at": now.to_string(),
        "manual": manual,
    })
}

/// `TRIGGER` of cron trigger `trigger` for `slot`, fired on schedule at `now` (what `weft
/// test` hands a case that starts from a cron slot).
///
/// # Errors
/// The trigger is not a cron trigger, or its schedule or time zone does not parse.
pub fn event(trigger: &Trigger, slot: Timestamp, now: Timestamp) -> Result<Value, String> {
    let TriggerKind::Cron {
        schedule, timezone, ..
    } = &trigger.kind
    else {
        return Err(format!("trigger `{}` is not a cron trigger", trigger.name));
    };
    let (_, tz) = parse_schedule(schedule, timezone.as_deref())?;
    Ok(slot_event(trigger, slot, &tz, now, false))
}

/// Fires a cron trigger now, outside its schedule ("run now"): the same criteria, input
/// and `run_for` as a scheduled slot, recorded as an event of its own (it does not count as
/// the schedule's slot, so the next scheduled one still fires). A disabled trigger fires too:
/// firing by hand is how one tries a trigger before enabling it.
///
/// # Errors
/// The store fails, or the trigger is not a cron trigger or its schedule does not parse.
pub async fn fire_now(
    engine: &Engine,
    record: &WorkflowRecord,
    wf: &Workflow,
    trigger: &Trigger,
) -> Result<Fired, EngineError> {
    let TriggerKind::Cron {
        schedule, timezone, ..
    } = &trigger.kind
    else {
        return Err(EngineError::Input(format!(
            "trigger `{}` is not a cron trigger",
            trigger.name
        )));
    };
    let (_, tz) = parse_schedule(schedule, timezone.as_deref()).map_err(EngineError::Input)?;
    let now = engine.now();
    let fire = Fire {
        engine,
        record,
        wf,
        trigger,
        slot: now,
        tz: &tz,
        now,
        manual: true,
    };
    Ok(fire
        .fire()
        .await?
        .unwrap_or_else(|| fire.fired("duplicate", Vec::new())))
}

/// One slot of one trigger, being fired.
struct Fire<'a> {
    engine: &'a Engine,
    record: &'a WorkflowRecord,
    wf: &'a Workflow,
    trigger: &'a Trigger,
    slot: Timestamp,
    tz: &'a TimeZone,
    now: Timestamp,
    /// Fired by hand (`POST …/fire`), not by the schedule.
    manual: bool,
}

impl Fire<'_> {
    fn event(&self, outcome: &str, reason: Option<String>) -> TriggerEvent {
        let key = if self.manual {
            format!("manual:{}", uuid::Uuid::new_v4())
        } else {
            slot_key(self.slot)
        };
        TriggerEvent {
            outcome: outcome.into(),
            reason,
            status: 0,
            dedupe_key: Some(key),
            created_at: self.now.to_string(),
            ..TriggerEvent::new(&self.wf.name, &self.trigger.name, "cron", OWNER_ORG)
        }
    }

    fn fired(&self, outcome: &str, executions: Vec<String>) -> Fired {
        Fired {
            workflow: self.wf.name.clone(),
            trigger: self.trigger.name.clone(),
            slot: self.slot,
            outcome: outcome.into(),
            executions,
        }
    }

    /// Records an event that starts nothing.
    async fn record(&self, outcome: &str, reason: String) -> Result<Option<Fired>, EngineError> {
        let ev = self.event(outcome, Some(reason.clone()));
        let recorded = self.engine.store().record_event(&ev, &[]).await?;
        Ok(recorded.map(|_| {
            tracing::info!(
                workflow = %self.wf.name,
                trigger = %self.trigger.name,
                slot = %self.slot,
                outcome,
                reason = %reason,
                "cron slot started nothing"
            );
            self.fired(outcome, Vec::new())
        }))
    }

    /// `TRIGGER` for the slot.
    fn trigger_value(&self) -> Value {
        slot_event(self.trigger, self.slot, self.tz, self.now, self.manual)
    }

    async fn fire(&self) -> Result<Option<Fired>, EngineError> {
        let event = self.trigger_value();
        let now = self.now.to_string();
        let ctx = context(&[("TRIGGER", to_value(&event))], &now, Extra::default());
        if let Some(criteria) = &self.trigger.criteria {
            match criteria.render_value(&ctx) {
                Ok(v) if v.is_true() => {}
                Ok(_) => return self.record("filtered", "criteria not met".into()).await,
                Err(e) => {
                    let reason = format!("criteria could not be evaluated: {e}");
                    return self.record("filtered", reason).await;
                }
            }
        }
        let mut input = Map::new();
        for (k, t) in &self.trigger.input {
            match t.render(&ctx) {
                Ok(v) => {
                    input.insert(k.clone(), v);
                }
                Err(e) => {
                    return self
                        .record("rejected", format!("trigger input `{k}`: {e}"))
                        .await;
                }
            }
        }
        let orgs = match &self.trigger.run_for {
            RunFor::Owner => match weft_engine::org::root_org(self.engine.store().as_ref()).await {
                Ok(o) => vec![o.id],
                Err(RootOrgError::NoOrg) => vec![OWNER_ORG.to_string()],
                Err(RootOrgError::Several(ids)) => {
                    let reason = format!(
                        "run_for: owner, but there are several root organizations ({}): list the org under run_for, or move the others below the MSP (`weft org set-parent`)",
                        ids.join(", ")
                    );
                    return self.record("rejected", reason).await;
                }
                Err(RootOrgError::Store(e)) => return Err(e.into()),
                Err(e) => return self.record("rejected", e.to_string()).await,
            },
            RunFor::Orgs(list) if list.is_empty() => {
                return self.record("rejected", "run_for lists no org".into()).await;
            }
            RunFor::Orgs(list) => list.clone(),
            RunFor::AllManaged => {
                let managed = weft_engine::org::managed_orgs(self.engine.store().as_ref()).await?;
                if managed.is_empty() {
                    let reason = crate::event::NO_MANAGED_ORGS.to_string();
                    return self.record("rejected", reason).await;
                }
                managed.into_iter().map(|o| o.id).collect()
            }
        };
        let event = crate::event::with_integration(self.trigger, &event);
        let starts = orgs
            .into_iter()
            .map(|org| Start {
                workflow: self.record.clone(),
                input: input.clone(),
                opts: StartOptions {
                    org: Some(org),
                    trigger: Some(event.clone()),
                },
            })
            .collect();
        match self
            .engine
            .enqueue(&self.event("accepted", None), starts)
            .await
        {
            Ok(Some(ids)) => {
                tracing::info!(
                    workflow = %self.wf.name,
                    trigger = %self.trigger.name,
                    slot = %self.slot,
                    executions = ?ids,
                    "cron trigger fired"
                );
                Ok(Some(self.fired("accepted", ids)))
            }
            // Another scheduler fired this slot.
            Ok(None) => Ok(None),
            Err(EngineError::Input(m)) => self.record("rejected", m).await,
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_engine::Registry;
    use weft_engine::store::{ExecStatus, Store};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// An action that answers `{"ok": true}`.
    struct Succeeds;

    impl weft_engine::Action for Succeeds {
        fn spec(&self) -> weft_engine::ActionSpec {
            weft_engine::ActionSpec {
                name: "test.ok".into(),
                description: "succeeds".into(),
                params: json!({"type": "object", "properties": {}}),
                local: false,
            }
        }

        fn call(
            &self,
            _cx: weft_engine::ActionContext,
            _params: Value,
        ) -> weft_engine::action::BoxFuture<'_, Result<Value, weft_engine::ActionError>> {
            Box::pin(async { Ok(json!({"ok": true})) })
        }
    }

    struct Env {
        engine: Arc<Engine>,
        clock: Arc<ManualClock>,
        scheduler: Scheduler,
    }

    impl Env {
        fn store(&self) -> &Arc<dyn Store> {
            self.engine.store()
        }

        /// Sets the clock and ticks once.
        async fn at(&self, t: &str) -> Vec<Fired> {
            self.clock.set(ts(t));
            self.scheduler.tick().await.unwrap()
        }

        /// The accepted events' slots (UTC keys), oldest first.
        async fn accepted(&self, wf: &str, trigger: &str) -> Vec<String> {
            let mut keys: Vec<String> = self
                .store()
                .trigger_events(wf, trigger, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.outcome == "accepted" && e.execution_id.is_some())
                .filter_map(|e| e.dedupe_key)
                .collect();
            keys.reverse();
            keys
        }

        /// Records that `trigger` last fired at `slot` (as a previous run would have).
        async fn seed(&self, wf: &str, trigger: &str, slot: &str) {
            let ev = TriggerEvent {
                status: 0,
                dedupe_key: Some(slot_key(ts(slot))),
                ..TriggerEvent::new(wf, trigger, "cron", "default")
            };
            self.store().record_event(&ev, &[]).await.unwrap().unwrap();
        }
    }

    async fn env(now: &str) -> Env {
        let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
        let mut registry = Registry::new();
        registry.register(Succeeds);
        let clock = Arc::new(ManualClock::new(ts(now)));
        let engine = Engine::with_clock(store, Arc::new(registry), clock.clone());
        let scheduler = Scheduler::new(engine.clone(), clock.clone());
        Env {
            engine,
            clock,
            scheduler,
        }
    }

    /// A workflow `wf` with one cron trigger `t`; `extra` adds trigger keys (indented 4).
    fn workflow(schedule: &str, extra: &str) -> String {
        format!(
            "name: wf\ninput:\n  day:\n    type: string\ntasks:\n  a:\n    action: test.ok\noutput:\n  day: \"{{{{ CTX.day }}}}\"\n  at: \"{{{{ TRIGGER.scheduled_at }}}}\"\ntriggers:\n  - name: t\n    type: cron\n    schedule: \"{schedule}\"\n    input:\n      day: \"{{{{ TRIGGER.scheduled_at }}}}\"\n{extra}"
        )
    }

    async fn deploy(env: &Env, source: &str) -> WorkflowRecord {
        env.engine.deploy(source, None).await.unwrap()
    }

    #[tokio::test]
    async fn firing_by_hand_runs_now_and_leaves_the_schedule_alone() {
        let env = env("2026-03-02T10:00:30Z").await;
        let record = deploy(&env, &workflow("*/5 * * * *", "    enabled: false\n")).await;
        let wf = weft_engine::load(&record.source, env.engine.registry())
            .workflow
            .unwrap();
        let fired = fire_now(&env.engine, &record, &wf, &wf.triggers[0])
            .await
            .unwrap();
        assert_eq!(
            fired.outcome, "accepted",
            "a disabled trigger fires by hand"
        );
        assert_eq!(fired.executions.len(), 1);
        let exec = env.store().execution(&fired.executions[0]).await.unwrap();
        assert_eq!(exec.trigger["manual"], true);
        assert_eq!(exec.input["day"], "2026-03-02T10:00:30+00:00");
        // The schedule is untouched: no slot counts as fired, and a later tick of the
        // (disabled) trigger still fires nothing.
        assert!(env.accepted("wf", "t").await[0].starts_with("manual:"));
        assert_eq!(
            env.store()
                .last_dedupe_key("wf", "t", KEY_PREFIX)
                .await
                .unwrap(),
            None
        );
        assert!(env.at("2026-03-02T10:05:01Z").await.is_empty());
    }

    #[test]
    fn schedules_parse() {
        assert!(Schedule::parse("*/5 * * * *").is_ok());
        assert!(Schedule::parse("0 9-17/2 * JAN-MAR MON-FRI").is_ok());
        assert!(Schedule::parse("0 0 L * *").is_ok());
        assert!(Schedule::parse("0 0 * * MON#1").is_ok());
        assert!(Schedule::parse("@annually").is_ok());
        assert!(Schedule::parse("60 * * * *").is_err());
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("*/0 * * * *").is_err());
        assert!(Schedule::parse("5-1 * * * *").is_err());
        assert!(Schedule::parse("@sometimes").is_err());
        assert_eq!(
            Schedule::parse("0 0 * * 7").unwrap(),
            Schedule::parse("0 0 * * SUN").unwrap()
        );
    }

    #[test]
    fn slots_follow_the_schedule() {
        let utc = TimeZone::UTC;
        let s = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(
            s.next_after(ts("2026-01-01T10:02:30Z"), &utc),
            Some(ts("2026-01-01T10:05:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-01-01T10:05:00Z"), &utc),
            Some(ts("2026-01-01T10:10:00Z"))
        );
        assert_eq!(
            s.last_at_or_before(ts("2026-01-01T10:05:00Z"), &utc),
            Some(ts("2026-01-01T10:05:00Z"))
        );
        // Day-of-month and day-of-week both restricted: either matches.
        let s = Schedule::parse("0 12 13 * FRI").unwrap();
        assert_eq!(
            s.next_after(ts("2026-02-01T00:00:00Z"), &utc),
            Some(ts("2026-02-06T12:00:00Z"))
        );
        // Last day of month; first Monday.
        let s = Schedule::parse("0 0 L * *").unwrap();
        assert_eq!(
            s.next_after(ts("2028-02-01T00:00:00Z"), &utc),
            Some(ts("2028-02-29T00:00:00Z"))
        );
        let s = Schedule::parse("0 8 * * MON#1").unwrap();
        assert_eq!(
            s.next_after(ts("2026-06-02T00:00:00Z"), &utc),
            Some(ts("2026-07-06T08:00:00Z"))
        );
        // Never: February 31st.
        let s = Schedule::parse("0 0 31 2 *").unwrap();
        assert_eq!(s.next_after(ts("2026-01-01T00:00:00Z"), &utc), None);
    }

    #[tokio::test]
    async fn every_five_minutes_fires_each_slot_once_and_runs() {
        let env = env("2026-05-01T09:58:00Z").await;
        deploy(&env, &workflow("*/5 * * * *", "")).await;
        env.seed("wf", "t", "2026-05-01T09:55:00Z").await;
        assert!(env.at("2026-05-01T09:59:59Z").await.is_empty());
        let mut fired = Vec::new();
        for t in [
            "2026-05-01T10:00:00Z",
            "2026-05-01T10:00:01Z",
            "2026-05-01T10:04:59Z",
            "2026-05-01T10:05:00.300Z",
            "2026-05-01T10:07:00Z",
            "2026-05-01T10:10:02Z",
            "2026-05-01T10:10:03Z",
        ] {
            fired.extend(env.at(t).await);
        }
        let slots: Vec<Timestamp> = fired.iter().map(|f| f.slot).collect();
        assert_eq!(
            slots,
            vec![
                ts("2026-05-01T10:00:00Z"),
                ts("2026-05-01T10:05:00Z"),
                ts("2026-05-01T10:10:00Z")
            ]
        );
        assert!(fired.iter().all(|f| f.executions.len() == 1));
        assert_eq!(
            env.accepted("wf", "t").await,
            vec![
                "cron:2026-05-01T10:00:00Z",
                "cron:2026-05-01T10:05:00Z",
                "cron:2026-05-01T10:10:00Z"
            ]
        );
        assert_eq!(env.store().queue_depth().await.unwrap(), 3);

        // Run the first queued execution: it sees TRIGGER.
        let id = env.engine.claim_next().await.unwrap().unwrap();
        let exec = env.engine.run(&id).await.unwrap();
        assert_eq!(exec.status, ExecStatus::Succeeded, "{exec:?}");
        let output = exec.output.unwrap();
        assert_eq!(output["at"], "2026-05-01T10:00:00+00:00", "{output}");
        assert_eq!(output["day"], "2026-05-01T10:00:00+00:00", "{output}");
        assert_eq!(exec.org, "default");
        let trigger = exec.trigger;
        assert_eq!(trigger["type"], "cron");
        assert_eq!(trigger["name"], "t");
        assert_eq!(trigger["schedule"], "*/5 * * * *");
        assert_eq!(trigger["timezone"], "UTC");
        assert_eq!(trigger["fired_at"], "2026-05-01T10:00:00Z");
    }

    #[tokio::test]
    async fn two_workers_fire_a_slot_once() {
        let env = env("2026-05-01T09:58:00Z").await;
        deploy(&env, &workflow("*/5 * * * *", "")).await;
        env.seed("wf", "t", "2026-05-01T09:55:00Z").await;
        let other = Scheduler::new(env.engine.clone(), env.clock.clone());
        env.clock.set(ts("2026-05-01T10:00:00.200Z"));
        for _ in 0..3 {
            let (a, b) = tokio::join!(env.scheduler.tick(), other.tick());
            let n = a.unwrap().len() + b.unwrap().len();
            assert!(n <= 1);
        }
        assert_eq!(
            env.accepted("wf", "t").await,
            vec!["cron:2026-05-01T10:00:00Z"]
        );
        assert_eq!(env.store().queue_depth().await.unwrap(), 1);
        // The seed and the one slot.
        assert_eq!(
            env.store()
                .trigger_events("wf", "t", 10)
                .await
                .unwrap()
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn downtime_with_catch_up_latest_fires_the_latest_slot_once() {
        let env = env("2026-05-01T02:00:00Z").await;
        deploy(&env, &workflow("0 * * * *", "    catch_up: latest\n")).await;
        env.seed("wf", "t", "2026-05-01T02:00:00Z").await;
        let fired = env.at("2026-05-01T05:17:00Z").await;
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].slot, ts("2026-05-01T05:00:00Z"));
        assert_eq!(fired[0].outcome, "accepted");
        assert!(env.at("2026-05-01T05:17:01Z").await.is_empty());
        assert!(env.at("2026-05-01T05:59:59Z").await.is_empty());
        assert_eq!(env.at("2026-05-01T06:00:00Z").await.len(), 1);
        assert_eq!(
            env.accepted("wf", "t").await,
            vec!["cron:2026-05-01T05:00:00Z", "cron:2026-05-01T06:00:00Z"]
        );
    }

    #[tokio::test]
    async fn downtime_with_catch_up_none_skips_the_missed_slots() {
        let env = env("2026-05-01T02:00:00Z").await;
        deploy(&env, &workflow("0 * * * *", "    catch_up: none\n")).await;
        env.seed("wf", "t", "2026-05-01T02:00:00Z").await;
        let fired = env.at("2026-05-01T05:17:00Z").await;
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].outcome, "rejected");
        assert!(fired[0].executions.is_empty());
        let events = env.store().trigger_events("wf", "t", 10).await.unwrap();
        assert!(
            events[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("catch_up: none"),
            "{events:?}"
        );
        assert!(env.at("2026-05-01T05:30:00Z").await.is_empty());
        assert_eq!(env.store().queue_depth().await.unwrap(), 0);
        let fired = env.at("2026-05-01T06:00:01Z").await;
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].outcome, "accepted");
        assert_eq!(
            env.accepted("wf", "t").await,
            vec!["cron:2026-05-01T06:00:00Z"]
        );
        assert_eq!(env.store().queue_depth().await.unwrap(), 1);
    }

    /// Ticks every minute from `from` to `to` and returns the accepted slots.
    /// The DST rules hold for schedules that repeat within the hour too (croner, tried in
    /// their place, differs here: see `weft_engine::cron`).
    #[test]
    fn dst_rules_hold_for_interval_schedules() {
        let ams = TimeZone::get("Europe/Amsterdam").unwrap();
        let slots = |expr: &str, from: &str, n: usize| {
            let s = Schedule::parse(expr).unwrap();
            let mut t = ts(from);
            let mut out = Vec::new();
            for _ in 0..n {
                t = s.next_after(t, &ams).unwrap();
                out.push(t);
            }
            out
        };
        // Every skipped 02:xx collapses into one slot at the end of the gap.
        assert_eq!(
            slots("0,30 2 * * *", "2026-03-28T23:00:00Z", 2),
            [ts("2026-03-29T01:00:00Z"), ts("2026-03-30T00:00:00Z")]
        );
        // Repeated 02:00 and 02:30 fire at their first occurrence only.
        assert_eq!(
            slots("*/30 * * * *", "2026-10-24T23:45:00Z", 3),
            [
                ts("2026-10-25T00:00:00Z"),
                ts("2026-10-25T00:30:00Z"),
                ts("2026-10-25T02:00:00Z")
            ]
        );
        assert_eq!(
            slots("30 * * * *", "2026-10-24T23:45:00Z", 2),
            [ts("2026-10-25T00:30:00Z"), ts("2026-10-25T02:30:00Z")]
        );
    }

    async fn sweep(env: &Env, from: &str, to: &str) -> Vec<Timestamp> {
        let mut t = ts(from);
        let end = ts(to);
        let mut out = Vec::new();
        while t <= end {
            env.clock.set(t);
            for f in env.scheduler.tick().await.unwrap() {
                assert_eq!(f.outcome, "accepted");
                out.push(f.slot);
            }
            t += SignedDuration::from_secs(60);
        }
        out
    }

    #[tokio::test]
    async fn spring_forward_fires_the_skipped_time_once_after_the_gap() {
        let env = env("2026-03-27T12:00:00Z").await;
        let tz = "    timezone: Europe/Amsterdam\n";
        deploy(&env, &workflow("30 2 * * *", tz)).await;
        env.seed("wf", "t", "2026-03-27T01:30:00Z").await;
        let slots = sweep(&env, "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z").await;
        assert_eq!(
            slots,
            vec![
                ts("2026-03-28T01:30:00Z"), // 02:30 CET
                ts("2026-03-29T01:00:00Z"), // 02:30 does not exist: 03:00 CEST
                ts("2026-03-30T00:30:00Z"), // 02:30 CEST
            ]
        );
        let events = env.store().trigger_events("wf", "t", 10).await.unwrap();
        let trigger_at = |i: usize| events[i].dedupe_key.clone().unwrap();
        assert_eq!(trigger_at(1), "cron:2026-03-29T01:00:00Z");
        // TRIGGER.scheduled_at is local.
        let id = loop {
            let id = env.engine.claim_next().await.unwrap().unwrap();
            let exec = env.engine.run(&id).await.unwrap();
            if exec.trigger["scheduled_at"] == "2026-03-29T03:00:00+02:00" {
                break id;
            }
        };
        assert!(!id.is_empty());
    }

    #[tokio::test]
    async fn fall_back_fires_a_repeated_time_once() {
        for (schedule, expected) in [
            (
                "30 2 * * *",
                [
                    "2026-10-24T00:30:00Z", // 02:30 CEST
                    "2026-10-25T00:30:00Z", // the first 02:30 (CEST); not 01:30Z (CET)
                    "2026-10-26T01:30:00Z", // 02:30 CET
                ],
            ),
            (
                "30 1 * * *",
                [
                    "2026-10-23T23:30:00Z",
                    "2026-10-24T23:30:00Z",
                    "2026-10-26T00:30:00Z",
                ],
            ),
        ] {
            let env = env("2026-10-23T12:00:00Z").await;
            let tz = "    timezone: Europe/Amsterdam\n";
            deploy(&env, &workflow(schedule, tz)).await;
            env.seed("wf", "t", "2026-10-23T12:00:00Z").await;
            let slots = sweep(&env, "2026-10-23T12:00:00Z", "2026-10-26T12:00:00Z").await;
            let expected: Vec<Timestamp> = expected.iter().map(|s| ts(s)).collect();
            assert_eq!(slots, expected, "{schedule}");
        }
        // In New York the repeated hour is 01:xx.
        let env = env("2026-10-31T12:00:00Z").await;
        deploy(
            &env,
            &workflow("30 1 * * *", "    timezone: America/New_York\n"),
        )
        .await;
        env.seed("wf", "t", "2026-10-31T12:00:00Z").await;
        let slots = sweep(&env, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z").await;
        assert_eq!(
            slots,
            vec![ts("2026-11-01T05:30:00Z"), ts("2026-11-02T06:30:00Z")]
        );
    }

    #[tokio::test]
    async fn run_for_lists_start_one_execution_per_org() {
        let env = env("2026-05-01T09:58:00Z").await;
        deploy(
            &env,
            &workflow("*/5 * * * *", "    run_for: [acme, globex]\n"),
        )
        .await;
        env.seed("wf", "t", "2026-05-01T09:55:00Z").await;
        let fired = env.at("2026-05-01T10:00:00Z").await;
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].executions.len(), 2);
        let events = env.store().trigger_events("wf", "t", 10).await.unwrap();
        assert_eq!(events.len(), 2);
        let mut orgs = Vec::new();
        for id in &fired[0].executions {
            orgs.push(env.store().execution(id).await.unwrap().org);
        }
        orgs.sort();
        assert_eq!(orgs, vec!["acme", "globex"]);
    }

    #[tokio::test]
    async fn disabled_triggers_do_not_fire() {
        let env = env("2026-05-01T09:58:00Z").await;
        deploy(&env, &workflow("*/5 * * * *", "")).await;
        env.seed("wf", "t", "2026-05-01T09:55:00Z").await;
        env.store()
            .set_trigger_enabled("wf", "t", false)
            .await
            .unwrap();
        assert!(env.at("2026-05-01T10:00:00Z").await.is_empty());
        assert_eq!(env.store().queue_depth().await.unwrap(), 0);
        env.store()
            .set_trigger_enabled("wf", "t", true)
            .await
            .unwrap();
        assert_eq!(env.at("2026-05-01T10:00:01Z").await.len(), 1);

        // Disabled in the workflow itself.
        let env = env_with_disabled().await;
        assert!(env.at("2026-05-01T10:00:00Z").await.is_empty());
    }

    async fn env_with_disabled() -> Env {
        let env = env("2026-05-01T09:58:00Z").await;
        deploy(&env, &workflow("*/5 * * * *", "    enabled: false\n")).await;
        env.seed("wf", "t", "2026-05-01T09:55:00Z").await;
        env
    }

    #[tokio::test]
    async fn all_managed_and_criteria_record_without_starting() {
        let env = env("2026-05-01T09:58:00Z").await;
        deploy(&env, &workflow("*/5 * * * *", "    run_for: all_managed\n")).await;
        env.seed("wf", "t", "2026-05-01T09:55:00Z").await;
        let fired = env.at("2026-05-01T10:00:00Z").await;
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].outcome, "rejected");
        assert!(env.at("2026-05-01T10:00:01Z").await.is_empty(), "once");

        let env = self::env("2026-05-01T09:58:00Z").await;
        let criteria =
            "    criteria: \"{{ TRIGGER.scheduled_at == '2026-05-01T10:05:00+00:00' }}\"\n";
        deploy(&env, &workflow("*/5 * * * *", criteria)).await;
        env.seed("wf", "t", "2026-05-01T09:55:00Z").await;
        let fired = env.at("2026-05-01T10:00:00Z").await;
        assert_eq!(fired[0].outcome, "filtered");
        let fired = env.at("2026-05-01T10:05:00Z").await;
        assert_eq!(fired[0].outcome, "accepted");
        assert_eq!(env.store().queue_depth().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_new_trigger_does_not_fire_slots_before_its_deployment() {
        // The store stamps deployments with the real time.
        let real = Timestamp::now();
        let env = env(&real.to_string()).await;
        let record = deploy(&env, &workflow("* * * * *", "")).await;
        let deployed: Timestamp = record.created_at.parse().unwrap();
        env.clock.set(deployed + SignedDuration::from_millis(1));
        // The minute slot before the deployment is due by the clock but predates it.
        assert!(env.scheduler.tick().await.unwrap().is_empty());
        let next = Schedule::parse("* * * * *")
            .unwrap()
            .next_after(deployed, &TimeZone::UTC)
            .unwrap();
        env.clock.set(next);
        let fired = env.scheduler.tick().await.unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].slot, next);
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(ts("2026-01-01T00:00:00Z"));
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now(), ts("2026-01-01T00:01:30Z"));
        c.set(ts("2027-01-01T00:00:00Z"));
        assert_eq!(c.now(), ts("2027-01-01T00:00:00Z"));
    }

    #[tokio::test]
    async fn spawn_stops_when_cancelled() {
        let env = env("2026-05-01T09:58:00Z").await;
        let stop = CancellationToken::new();
        let handle = env.scheduler.spawn(stop.clone());
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .unwrap()
            .unwrap();
    }
}
