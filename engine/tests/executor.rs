//! The executor against an in-memory store, with small test actions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use weft_engine::Registry;
use weft_engine::action::{ActionContext, ActionError, TypedAction};
use weft_engine::executor::{Engine, RerunOptions, StartOptions};
use weft_engine::store::{ExecStatus, TaskRun, TaskStatus};

/// Counts calls per task name.
#[derive(Clone, Default)]
struct Count(Arc<Mutex<HashMap<String, usize>>>);

#[derive(Deserialize, JsonSchema)]
struct CountParams {
    /// Returned as `value`.
    #[serde(default)]
    value: Value,
    /// Fail while the call number is at most this.
    #[serde(default)]
    fail_first: usize,
    /// Sleep this many milliseconds first.
    #[serde(default)]
    sleep_ms: u64,
}

impl TypedAction for Count {
    const NAME: &'static str = "test.count";
    const DESCRIPTION: &'static str = "counts calls";
    type Params = CountParams;
    async fn run(&self, cx: ActionContext, p: CountParams) -> Result<Value, ActionError> {
        let n = {
            let mut m = self.0.lock().unwrap();
            let key = match cx.item_index {
                Some(i) => format!("{}[{i}]", cx.task),
                None => cx.task.clone(),
            };
            let c = m.entry(key).or_default();
            *c += 1;
            *c
        };
        if p.sleep_ms > 0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(p.sleep_ms)) => {}
                () = cx.cancel.cancelled() => return Err(ActionError { kind: weft_engine::ActionErrorKind::Cancelled, message: "cancelled".into(), data: None }),
            }
        }
        if n <= p.fail_first {
            return Err(ActionError::failed(format!("call {n} fails")));
        }
        Ok(json!({"value": p.value, "call": n}))
    }
}

impl Count {
    fn calls(&self, task: &str) -> usize {
        self.0.lock().unwrap().get(task).copied().unwrap_or(0)
    }
}

async fn engine() -> (Arc<Engine>, Count) {
    let count = Count::default();
    let mut registry = Registry::new();
    registry.register(count.clone());
    let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
    (Engine::new(store, Arc::new(registry)), count)
}

async fn run(engine: &Engine, src: &str, input: Value) -> weft_engine::store::ExecutionRecord {
    let record = engine.deploy(src, None).await.unwrap();
    engine
        .execute(
            &record,
            input.as_object().cloned().unwrap_or_default(),
            StartOptions::default(),
        )
        .await
        .unwrap()
}

fn status_of(runs: &[TaskRun], task: &str) -> Option<TaskStatus> {
    runs.iter()
        .find(|r| r.task == task && r.is_outcome())
        .map(|r| r.status)
}

#[tokio::test]
async fn skips_propagate_and_a_join_of_skipped_branches_is_skipped() {
    let (engine, count) = engine().await;
    let exec = run(
        &engine,
        r#"
name: skips
tasks:
  start:
    action: test.count
    next:
      - when: "{{ false }}"
        do: left
      - do: right
  left:
    action: test.count
    next: [left2]
  left2:
    action: test.count
    next: [after_left]
  after_left:
    action: test.count
  right:
    action: test.count
"#,
        json!({}),
    )
    .await;
    assert_eq!(exec.status, ExecStatus::Succeeded, "{:?}", exec.error);
    let runs = engine.store().task_runs(&exec.id).await.unwrap();
    for t in ["left", "left2", "after_left"] {
        assert_eq!(status_of(&runs, t), Some(TaskStatus::Skipped), "{t}");
        assert_eq!(count.calls(t), 0);
    }
    assert_eq!(count.calls("right"), 1);
}

#[tokio::test]
async fn join_n_runs_once_when_n_routes_fired() {
    let (engine, count) = engine().await;
    let exec = run(
        &engine,
        r#"
name: join-n
tasks:
  start:
    action: test.count
    next: [a, b, c]
  a: { action: test.count, next: [two] }
  b: { action: test.count, input: { sleep_ms: 50 }, next: [two] }
  c: { action: test.count, input: { sleep_ms: 100 }, next: [two] }
  two:
    join: 2
    action: test.count
"#,
        json!({}),
    )
    .await;
    assert_eq!(exec.status, ExecStatus::Succeeded, "{:?}", exec.error);
    assert_eq!(count.calls("two"), 1);
}

/// `join: 2` where only one route can fire ends the same way whichever branch finishes
/// first: the join is partially satisfied and unreachable (Orquesta's rule), never skipped
/// because the silent branches happened to finish before the one that fires.
#[tokio::test]
async fn an_unreachable_join_n_ends_alike_whatever_order_branches_finish_in() {
    for (fires_ms, silent_ms) in [(0, 60), (60, 0)] {
        let (engine, count) = engine().await;
        let src = format!(
            r#"
name: join-order
tasks:
  start:
    action: test.count
    next: [a, b, c]
  a:
    action: test.count
    input: {{ sleep_ms: {fires_ms} }}
    next: [two]
  b:
    action: test.count
    input: {{ sleep_ms: {silent_ms} }}
    next:
      - when: "{{{{ false }}}}"
        do: two
  c:
    action: test.count
    input: {{ sleep_ms: {silent_ms} }}
    next:
      - when: "{{{{ false }}}}"
        do: two
  two:
    join: 2
    action: test.count
"#
        );
        let exec = run(&engine, &src, json!({})).await;
        assert_eq!(
            exec.status,
            ExecStatus::Failed,
            "firing branch after {fires_ms} ms"
        );
        assert!(exec.error.unwrap().contains("unreachable"));
        assert_eq!(count.calls("two"), 0);
    }
}

#[tokio::test]
async fn a_partially_satisfied_join_fails_naming_the_missing_branch() {
    let (engine, _) = engine().await;
    let exec = run(
        &engine,
        r#"
name: unreachable
input:
  go_left: { type: boolean, default: false }
tasks:
  start:
    action: test.count
    next: [left_gate, right]
  left_gate:
    action: test.count
    next:
      - when: "{{ CTX.go_left }}"
        do: end
  right:
    action: test.count
    next: [end]
  end:
    join: all
    action: test.count
"#,
        json!({}),
    )
    .await;
    assert_eq!(exec.status, ExecStatus::Failed);
    let err = exec.error.unwrap();
    assert!(
        err.contains("`end`") && err.contains("`left_gate`") && err.contains("unreachable"),
        "{err}"
    );
}

#[tokio::test]
async fn committed_steps_are_not_run_again_when_an_execution_is_driven_after_a_crash() {
    let (engine, count) = engine().await;
    let record = engine
        .deploy(
            r#"
name: resume
tasks:
  a:
    action: test.count
    next:
      - publish: { from_a: "{{ RESULT.value }}" }
        do: b
  b:
    action: test.count
    input: { value: "{{ CTX.from_a }}-b" }
output:
  b: "{{ TASKS.b.result.value }}"
"#,
            None,
        )
        .await
        .unwrap();
    let id = engine
        .start(&record, Default::default(), StartOptions::default())
        .await
        .unwrap();
    // What a process that died after committing `a` leaves behind.
    let now = jiff::Timestamp::now().to_string();
    let a_done = TaskRun {
        execution_id: id.clone(),
        task: "a".into(),
        item: -1,
        attempt: 1,
        status: TaskStatus::Succeeded,
        seq: Some(1),
        input: Some(json!({})),
        result: Some(json!({"value": "from-before-the-crash"})),
        error: None,
        routes: Some(vec![0]),
        publish: Some(vec![("from_a".into(), json!("from-before-the-crash"))]),
        reused: false,
        started_at: Some(now.clone()),
        finished_at: Some(now.clone()),
        duration_ms: Some(1),
    };
    let b_running = TaskRun {
        task: "b".into(),
        status: TaskStatus::Running,
        seq: None,
        result: None,
        routes: None,
        publish: None,
        ..a_done.clone()
    };
    engine
        .store()
        .record_task_runs(&[a_done, b_running])
        .await
        .unwrap();
    let exec = engine.run(&id).await.unwrap();
    assert_eq!(exec.status, ExecStatus::Succeeded, "{:?}", exec.error);
    assert_eq!(
        count.calls("a"),
        0,
        "a was committed: it must not run again"
    );
    assert_eq!(count.calls("b"), 1);
    assert_eq!(exec.output, Some(json!({"b": "from-before-the-crash-b"})));
}

#[tokio::test]
async fn retries_then_succeeds_and_records_every_attempt() {
    let (engine, count) = engine().await;
    let exec = run(
        &engine,
        r#"
name: retry
tasks:
  flaky:
    action: test.count
    input: { fail_first: 2 }
    retry: { count: 3, delay: 10ms, backoff: 2.0 }
"#,
        json!({}),
    )
    .await;
    assert_eq!(exec.status, ExecStatus::Succeeded, "{:?}", exec.error);
    assert_eq!(count.calls("flaky"), 3);
    let runs = engine.store().task_runs(&exec.id).await.unwrap();
    let attempts: Vec<(i64, TaskStatus)> = runs
        .iter()
        .filter(|r| r.task == "flaky")
        .map(|r| (r.attempt, r.status))
        .collect();
    assert_eq!(
        attempts,
        vec![
            (1, TaskStatus::Failed),
            (2, TaskStatus::Failed),
            (3, TaskStatus::Succeeded)
        ]
    );
}

#[tokio::test]
async fn rerun_of_failed_items_runs_only_those() {
    let (engine, count) = engine().await;
    let src = r#"
name: items
input:
  bad: { type: array, default: [1, 3] }
tasks:
  each:
    action: test.count
    with: { items: [0, 1, 2, 3, 4], concurrency: 2 }
    input:
      value: "{{ item() }}"
      fail_first: "{{ 1 if item() in CTX.bad else 0 }}"
output:
  values: "{{ TASKS.each.result | map(attribute='value') | list }}"
"#;
    let exec = run(&engine, src, json!({})).await;
    assert_eq!(exec.status, ExecStatus::Failed);
    assert!(
        exec.error
            .as_deref()
            .unwrap()
            .contains("2 of 5 items failed"),
        "{:?}",
        exec.error
    );
    let again = engine
        .rerun(
            &exec.id,
            RerunOptions {
                from: None,
                failed_items: true,
            },
        )
        .await
        .unwrap();
    let again = engine.run(&again).await.unwrap();
    assert_eq!(again.status, ExecStatus::Succeeded, "{:?}", again.error);
    assert_eq!(again.output, Some(json!({"values": [0, 1, 2, 3, 4]})));
    for (i, calls) in [(0, 1), (1, 2), (2, 1), (3, 2), (4, 1)] {
        assert_eq!(count.calls(&format!("each[{i}]")), calls, "item {i}");
    }
}

#[tokio::test]
async fn cancel_stops_running_tasks() {
    let (engine, _) = engine().await;
    let record = engine
        .deploy(
            "name: slow\ntasks:\n  wait:\n    action: test.count\n    input: { sleep_ms: 10000 }\n",
            None,
        )
        .await
        .unwrap();
    let id = engine
        .start(&record, Default::default(), StartOptions::default())
        .await
        .unwrap();
    let runner = {
        let engine = engine.clone();
        let id = id.clone();
        tokio::spawn(async move { engine.run(&id).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    engine.cancel(&id).await.unwrap();
    let exec = runner.await.unwrap().unwrap();
    assert_eq!(exec.status, ExecStatus::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn concurrency_of_items_is_never_exceeded() {
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    #[derive(Clone)]
    struct Gauge;
    #[derive(Deserialize, JsonSchema)]
    struct NoParams {}
    impl TypedAction for Gauge {
        const NAME: &'static str = "test.gauge";
        const DESCRIPTION: &'static str = "tracks concurrency";
        type Params = NoParams;
        async fn run(&self, _cx: ActionContext, _p: NoParams) -> Result<Value, ActionError> {
            let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            RUNNING.fetch_sub(1, Ordering::SeqCst);
            Ok(Value::Null)
        }
    }
    let mut registry = Registry::new();
    registry.register(Gauge);
    let store = weft_engine::store::open("sqlite::memory:").await.unwrap();
    let engine = Engine::new(store, Arc::new(registry));
    let exec = run(&engine, "name: gauge\ntasks:\n  g:\n    action: test.gauge\n    with: { items: \"{{ range(12) | list }}\", concurrency: 3 }\n", json!({})).await;
    assert_eq!(exec.status, ExecStatus::Succeeded, "{:?}", exec.error);
    assert_eq!(PEAK.load(Ordering::SeqCst), 3);
}

/// Samples every 20 ms how many executions of `workflow` run per concurrency key, until
/// `stop`; returns the highest count of any group.
fn sample_running(
    engine: Arc<Engine>,
    workflow: &'static str,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut peak = 0;
        while !stop.is_cancelled() {
            let running = engine
                .store()
                .list_executions(&weft_engine::store::ExecutionFilter {
                    status: Some(ExecStatus::Running),
                    workflow: Some(workflow.into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut groups: HashMap<Option<String>, usize> = HashMap::new();
            for e in running {
                *groups.entry(e.concurrency_key).or_default() += 1;
            }
            peak = groups.values().copied().max().unwrap_or(0).max(peak);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    })
}

const LIMITED: &str = r#"
name: limited
input:
  site: {type: string, default: main}
concurrency:
  limit: 2
tasks:
  work:
    action: test.count
    input:
      sleep_ms: 200
"#;

async fn wait_all_final(
    engine: &Engine,
    ids: &[String],
) -> Vec<weft_engine::store::ExecutionRecord> {
    let mut out = Vec::new();
    for id in ids {
        let exec = engine
            .wait_for(id, Duration::from_secs(20))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} did not end"));
        out.push(exec);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_keep_a_workflow_under_its_concurrency_limit() {
    let (engine, count) = engine().await;
    let record = engine.deploy(LIMITED, None).await.unwrap();
    let starts: Vec<_> = (0..6)
        .map(|_| weft_engine::executor::Start {
            workflow: record.clone(),
            input: serde_json::Map::new(),
            opts: StartOptions::default(),
        })
        .collect();
    let event = weft_engine::store::TriggerEvent::new("limited", "hook", "webhook", "default");
    let ids = engine.enqueue(&event, starts).await.unwrap().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let sampler = sample_running(engine.clone(), "limited", stop.clone());
    let started = std::time::Instant::now();
    let workers = weft_engine::executor::Workers::new(engine.clone(), 6);
    let done = wait_all_final(&engine, &ids).await;
    let elapsed = started.elapsed();
    stop.cancel();
    let peak = sampler.await.unwrap();
    assert!(workers.shutdown(Duration::from_secs(5)).await);
    assert!(peak <= 2, "{peak} ran at once");
    assert_eq!(peak, 2, "two ran side by side");
    for e in &done {
        assert_eq!(e.status, ExecStatus::Succeeded, "{:?}", e.error);
        assert_eq!(
            (e.concurrency_key.as_deref(), e.concurrency_limit),
            (Some(""), Some(2))
        );
    }
    assert_eq!(count.calls("work"), 6);
    // Three rounds of two: the queue is woken as slots free, not left to the poll.
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_runs_wait_for_a_slot_of_their_key() {
    let (engine, count) = engine().await;
    let src = LIMITED.replace(
        "  limit: 2\n",
        "  limit: 1\n  key: \"{{ CTX.site }}-{{ ORG.id }}\"\n",
    );
    let record = engine.deploy(&src, None).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let sampler = sample_running(engine.clone(), "limited", stop.clone());
    let runs: Vec<_> = ["a", "a", "a", "b", "b"]
        .into_iter()
        .map(|site| {
            let (engine, record) = (engine.clone(), record.clone());
            tokio::spawn(async move {
                let input = json!({"site": site}).as_object().cloned().unwrap();
                engine
                    .execute(&record, input, StartOptions::default())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut done = Vec::new();
    for r in runs {
        done.push(r.await.unwrap());
    }
    stop.cancel();
    assert!(sampler.await.unwrap() <= 1, "two of one key ran at once");
    for e in &done {
        assert_eq!(e.status, ExecStatus::Succeeded, "{:?}", e.error);
    }
    let keys: Vec<_> = done
        .iter()
        .map(|e| e.concurrency_key.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "a-default",
            "a-default",
            "a-default",
            "b-default",
            "b-default"
        ]
    );
    assert_eq!(count.calls("work"), 5);
}

#[tokio::test]
async fn a_concurrency_key_that_cannot_render_fails_the_execution_at_creation() {
    let (engine, count) = engine().await;
    let src = LIMITED.replace(
        "  limit: 2\n",
        "  limit: 2\n  key: \"{{ CTX.site.nope.deeper }}\"\n",
    );
    let exec = run(&engine, &src, json!({})).await;
    assert_eq!(exec.status, ExecStatus::Failed);
    let error = exec.error.unwrap_or_default();
    assert!(error.starts_with("concurrency.key:"), "{error}");
    assert_eq!(count.calls("work"), 0);
}
