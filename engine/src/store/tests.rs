//! The store suite: every backend must pass it. SQLite always runs; other backends join when
//! their URL is available (PostgreSQL: `WEFT_TEST_DATABASE_URL`, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`; each test works in a schema of its own, dropped
//! when it passes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;

use super::*;

/// A SQLite file (the backend as weft runs it: pool and step writer), in a folder kept for
/// the test's life.
async fn sqlite() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    open(&format!("sqlite://{}", dir.join("weft.db").display()))
        .await
        .expect("a SQLite file opens")
}

/// The PostgreSQL URL to test against, or `None` (saying so) when there is none.
fn pg_url() -> Option<String> {
    match std::env::var("WEFT_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            crate::testing::skip_for_missing_service("skipped: WEFT_TEST_DATABASE_URL not set");
            None
        }
    }
}

/// A PostgreSQL store in a fresh schema of the test database.
struct TestPg {
    url: String,
    schema: String,
    store: Arc<dyn Store>,
}

impl TestPg {
    async fn new() -> Option<TestPg> {
        let url = pg_url()?;
        let schema = format!("weft_t_{}", uuid::Uuid::new_v4().simple());
        let store = Arc::new(
            PostgresStore::open_in_schema(&url, &schema)
                .await
                .expect("the test database opens"),
        );
        Some(TestPg { url, schema, store })
    }

    /// Another handle on the same schema, with its own pool: as another process would.
    async fn another(&self) -> Arc<dyn Store> {
        Arc::new(
            PostgresStore::open_in_schema(&self.url, &self.schema)
                .await
                .expect("the test database opens"),
        )
    }

    /// Drops the schema (only reached when the test passed: a failed one leaves its data).
    async fn drop_schema(self) {
        drop(self.store);
        let mut conn = sqlx::PgConnection::connect(&self.url)
            .await
            .expect("the test database opens");
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .execute(&mut conn)
            .await
            .expect("the test schema drops");
    }
}

fn run(exec: &str, task: &str, item: i64, attempt: i64, status: TaskStatus) -> TaskRun {
    TaskRun {
        execution_id: exec.into(),
        task: task.into(),
        item,
        attempt,
        status,
        seq: None,
        input: None,
        result: None,
        error: None,
        routes: None,
        publish: None,
        reused: false,
        started_at: Some("2026-01-01T00:00:00Z".into()),
        finished_at: None,
        duration_ms: None,
    }
}

async fn new_execution(store: &dyn Store, id: &str, parent: Option<&str>) -> NewExecution {
    let wf = store
        .deploy_workflow("wf", "name: wf\n", None)
        .await
        .unwrap();
    let e = NewExecution {
        id: id.into(),
        workflow: wf,
        org: "msp".into(),
        input: json!({"a": 1}),
        vars: json!({"v": 2}),
        trigger: json!({"type": "manual"}),
        parent_id: parent.map(str::to_string),
        parent_task: parent.map(|_| "call".to_string()),
        rerun_of: None,
        owner: Some("host:1".into()),
        lease_until_ms: Some(1_000),
        error: None,
        concurrency_key: None,
        concurrency_limit: None,
        sealed: Some("opaque sealed text".into()),
        created_at: jiff::Timestamp::now().to_string(),
    };
    store
        .create_execution(&e, &[run(id, "a", -1, 1, TaskStatus::Running)])
        .await
        .unwrap();
    e
}

async fn deploy_keeps_versions_and_skips_identical_sources(store: Arc<dyn Store>) {
    let v1 = store
        .deploy_workflow("w", "name: w\n", Some("w.yaml"))
        .await
        .unwrap();
    let same = store
        .deploy_workflow("w", "name: w\n", Some("w.yaml"))
        .await
        .unwrap();
    let v2 = store
        .deploy_workflow("w", "name: w\ndescription: x\n", None)
        .await
        .unwrap();
    assert_eq!((v1.version, same.version, v2.version), (1, 1, 2));
    assert_eq!(store.workflow("w", None).await.unwrap().version, 2);
    assert_eq!(
        store.workflow("w", Some(1)).await.unwrap().source,
        "name: w\n"
    );
    assert_eq!(store.list_workflows().await.unwrap().len(), 1);
    assert_eq!(store.last_deploy_id().await.unwrap(), v2.id);
    let other = store.deploy_workflow("a", "name: a\n", None).await.unwrap();
    assert_eq!(store.last_deploy_id().await.unwrap(), other.id);
    store.deploy_workflow("a", "name: a\n", None).await.unwrap();
    assert_eq!(
        store.last_deploy_id().await.unwrap(),
        other.id,
        "an unchanged deploy adds nothing"
    );
    assert_eq!(
        store.workflow("nope", None).await.unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
}

async fn task_runs_upsert_and_never_go_back_to_running(store: Arc<dyn Store>) {
    new_execution(&*store, "e1", None).await;
    let mut done = run("e1", "a", -1, 1, TaskStatus::Succeeded);
    done.seq = Some(1);
    done.result = Some(json!({"x": [1, 2]}));
    done.routes = Some(vec![0]);
    done.publish = Some(vec![("k".into(), json!("v"))]);
    done.started_at = None;
    let next = run("e1", "b", -1, 1, TaskStatus::Running);
    store.record_task_runs(&[done.clone(), next]).await.unwrap();
    // A late "running" write for a finished row changes nothing.
    store
        .record_task_runs(&[run("e1", "a", -1, 1, TaskStatus::Running)])
        .await
        .unwrap();
    let runs = store.task_runs("e1").await.unwrap();
    assert_eq!(runs.len(), 2);
    let a = runs.iter().find(|r| r.task == "a").unwrap();
    assert_eq!(a.status, TaskStatus::Succeeded);
    assert_eq!(a.result, Some(json!({"x": [1, 2]})));
    assert_eq!(a.publish, Some(vec![("k".to_string(), json!("v"))]));
    assert_eq!(
        a.started_at.as_deref(),
        Some("2026-01-01T00:00:00Z"),
        "start time is kept"
    );
    assert!(a.is_outcome());
}

/// Outcomes recorded at once by many executions share commits; one that cannot be stored
/// (its execution does not exist) fails alone; every stored one is read back at once.
async fn step_writes_arriving_together_commit_together(store: Arc<dyn Store>) {
    for i in 0..20 {
        new_execution(&*store, &format!("g{i}"), None).await;
    }
    let writes = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut done = run(&format!("g{i}"), "a", -1, 1, TaskStatus::Succeeded);
            done.seq = Some(1);
            store.record_task_runs(&[done]).await
        })
    });
    let orphan = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .record_task_runs(&[run("nobody", "a", -1, 1, TaskStatus::Succeeded)])
                .await
        })
    };
    for w in writes.collect::<Vec<_>>() {
        w.await.unwrap().expect("stored");
    }
    assert!(
        orphan.await.unwrap().is_err(),
        "a task run of no execution is refused"
    );
    for i in 0..20 {
        let runs = store.task_runs(&format!("g{i}")).await.unwrap();
        assert_eq!(runs.len(), 1, "g{i}");
        assert_eq!(runs[0].status, TaskStatus::Succeeded);
    }
    store
        .finish_execution(
            "g3",
            ExecStatus::Succeeded,
            Some(&json!({"n": 3})),
            None,
            "2026-01-01T00:00:09Z",
        )
        .await
        .unwrap();
    let e = store.execution("g3").await.unwrap();
    assert_eq!(
        (e.status, e.output),
        (ExecStatus::Succeeded, Some(json!({"n": 3})))
    );
}

/// A purge larger than one batch deletes everything old (and only that), batch after batch.
async fn purge_goes_batch_by_batch(store: Arc<dyn Store>) {
    let n = usize::try_from(PURGE_BATCH).unwrap() * 2 + 7;
    for i in 0..n {
        let id = format!("old{i}");
        new_execution(&*store, &id, None).await;
        store
            .finish_execution(
                &id,
                ExecStatus::Succeeded,
                None,
                None,
                "2026-01-01T00:00:00Z",
            )
            .await
            .unwrap();
    }
    new_execution(&*store, "new", None).await;
    store
        .finish_execution(
            "new",
            ExecStatus::Succeeded,
            None,
            None,
            "2026-06-01T00:00:00Z",
        )
        .await
        .unwrap();
    let gone = store
        .purge("2026-03-01T00:00:00Z", &PurgeScope::default())
        .await
        .unwrap();
    assert_eq!(gone, n as u64);
    assert!(store.execution("old0").await.is_err());
    assert!(
        store.task_runs("old3").await.unwrap().is_empty(),
        "task runs go too"
    );
    assert!(store.execution("new").await.is_ok());
}

async fn claims_respect_leases(store: Arc<dyn Store>) {
    new_execution(&*store, "e2", None).await;
    assert!(
        !store
            .claim_execution("e2", "other:2", 9_000, 500, None)
            .await
            .unwrap(),
        "lease still held"
    );
    assert!(
        store
            .claim_execution("e2", "other:2", 9_000, 500, Some("host:1"))
            .await
            .unwrap(),
        "owner known dead"
    );
    assert_eq!(
        store.renew_leases("host:1", 20_000).await.unwrap(),
        0,
        "the old owner lost it"
    );
    assert_eq!(store.renew_leases("other:2", 20_000).await.unwrap(), 1);
    assert!(
        store
            .claim_execution("e2", "third:3", 30_000, 25_000, None)
            .await
            .unwrap(),
        "lease expired"
    );
}

async fn cancel_reaches_children_and_finished_ones_refuse(store: Arc<dyn Store>) {
    new_execution(&*store, "p", None).await;
    new_execution(&*store, "c", Some("p")).await;
    store.request_cancel("p").await.unwrap();
    assert!(store.execution("p").await.unwrap().cancel_requested);
    assert!(store.execution("c").await.unwrap().cancel_requested);
    store
        .finish_execution(
            "c",
            ExecStatus::Cancelled,
            None,
            Some("cancelled"),
            "2026-01-02T00:00:00Z",
        )
        .await
        .unwrap();
    assert_eq!(
        store.request_cancel("c").await.unwrap_err().kind(),
        StoreErrorKind::Conflict
    );
    assert_eq!(store.children("p").await.unwrap().len(), 1);
}

async fn list_filter_and_purge(store: Arc<dyn Store>) {
    new_execution(&*store, "old", None).await;
    new_execution(&*store, "new", None).await;
    store
        .finish_execution(
            "old",
            ExecStatus::Succeeded,
            Some(&json!({"ok": true})),
            None,
            "2020-01-01T00:00:00Z",
        )
        .await
        .unwrap();
    let ok = store
        .list_executions(&ExecutionFilter {
            status: Some(ExecStatus::Succeeded),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].output, Some(json!({"ok": true})));
    let all = store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert!(all.len() >= 2);
    let page = |offset| ExecutionFilter {
        limit: Some(1),
        offset: Some(offset),
        ..Default::default()
    };
    let second = store.list_executions(&page(1)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].id, all[1].id,
        "pages follow the newest-first order"
    );
    let by_org = store
        .list_executions(&ExecutionFilter {
            org: Some("nobody".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_org.is_empty());
    let since = |at: &str| ExecutionFilter {
        created_after: Some(at.into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_executions(&since("2000-01-01T00:00:00Z"))
            .await
            .unwrap()
            .len(),
        all.len()
    );
    assert!(
        store
            .list_executions(&since("2999-01-01T00:00:00Z"))
            .await
            .unwrap()
            .is_empty(),
        "created_after filters by creation time"
    );
    assert_eq!(
        store.execution("new").await.unwrap().sealed.as_deref(),
        Some("opaque sealed text"),
        "the sealed secrets are kept as given"
    );
    assert_eq!(
        store.execution("ol").await.unwrap().id,
        "old",
        "prefix lookup"
    );
    // Scoped: another org's executions only, then everyone's but msp's: nothing of msp goes.
    let elsewhere = PurgeScope {
        only: Some("elsewhere".into()),
        ..PurgeScope::default()
    };
    assert_eq!(
        store
            .purge("2021-01-01T00:00:00Z", &elsewhere)
            .await
            .unwrap(),
        0
    );
    let keep_msp = PurgeScope {
        except: vec!["msp".into()],
        ..PurgeScope::default()
    };
    assert_eq!(
        store
            .purge("2021-01-01T00:00:00Z", &keep_msp)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge("2021-01-01T00:00:00Z", &PurgeScope::default())
            .await
            .unwrap(),
        1
    );
    assert!(
        store.task_runs("old").await.unwrap().is_empty(),
        "task runs go with their execution"
    );
    assert_eq!(store.unfinished_executions().await.unwrap().len(), 1);
}

fn queued(wf: &WorkflowRecord, id: &str, created_at: &str) -> NewExecution {
    NewExecution {
        id: id.into(),
        workflow: wf.clone(),
        org: "acme".into(),
        input: json!({}),
        vars: json!({}),
        trigger: json!({"type": "webhook"}),
        parent_id: None,
        parent_task: None,
        rerun_of: None,
        owner: None,
        lease_until_ms: None,
        error: None,
        concurrency_key: None,
        concurrency_limit: None,
        sealed: None,
        created_at: created_at.into(),
    }
}

async fn events_start_queued_executions_once_per_dedupe_key(store: Arc<dyn Store>) {
    let wf = store
        .deploy_workflow("wf", "name: wf\n", None)
        .await
        .unwrap();
    let mut slot = TriggerEvent::new("wf", "nightly", "cron", "acme");
    slot.dedupe_key = Some("cron:2026-01-01T02:00:00Z".into());
    let first = store
        .record_event(&slot, &[queued(&wf, "q1", "2026-01-01T02:00:00Z")])
        .await
        .unwrap();
    assert!(first.is_some());
    let again = store
        .record_event(&slot, &[queued(&wf, "q2", "2026-01-01T02:00:00Z")])
        .await
        .unwrap();
    assert_eq!(again, None, "the same slot fires once");
    assert!(
        store.execution("q2").await.is_err(),
        "a duplicate event creates no execution"
    );
    let q1 = store.execution("q1").await.unwrap();
    assert_eq!(q1.status, ExecStatus::Pending);
    assert_eq!(q1.owner, None);
    // Another trigger may use the same key.
    let mut other = slot.clone();
    other.trigger = "other".into();
    assert!(store.record_event(&other, &[]).await.unwrap().is_some());

    let mut later = slot.clone();
    later.dedupe_key = Some("cron:2026-01-01T03:00:00Z".into());
    store.record_event(&later, &[]).await.unwrap();
    assert_eq!(
        store
            .last_dedupe_key("wf", "nightly", "cron:")
            .await
            .unwrap()
            .as_deref(),
        Some("cron:2026-01-01T03:00:00Z")
    );
    assert_eq!(
        store.last_dedupe_key("wf", "x", "cron:").await.unwrap(),
        None
    );

    let mut rejected = TriggerEvent::new("wf", "hook", "webhook", "acme");
    rejected.outcome = "rejected".into();
    rejected.status = 401;
    rejected.reason = Some("wrong webhook secret".into());
    store.record_event(&rejected, &[]).await.unwrap();
    store
        .record_event(
            &TriggerEvent::new("wf", "hook", "webhook", "acme"),
            &[queued(&wf, "q3", "2026-01-01T04:00:00Z")],
        )
        .await
        .unwrap();
    let list = store.trigger_events("wf", "hook", 10).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].execution_id.as_deref(), Some("q3"), "newest first");
    assert_eq!(list[1].status, 401);
    assert_eq!(list[1].outcome, "rejected");

    // An execution that failed before starting is stored failed, not queued.
    let mut bad = queued(&wf, "q4", "2026-01-01T05:00:00Z");
    bad.error = Some("vars.x: undefined".into());
    store
        .record_event(&TriggerEvent::new("wf", "hook", "webhook", "acme"), &[bad])
        .await
        .unwrap();
    let q4 = store.execution("q4").await.unwrap();
    assert_eq!(q4.status, ExecStatus::Failed);
    assert!(q4.finished_at.is_some());
}

async fn workers_claim_queued_executions_once_oldest_first(store: Arc<dyn Store>) {
    let wf = store
        .deploy_workflow("wf", "name: wf\n", None)
        .await
        .unwrap();
    let ev = TriggerEvent::new("wf", "hook", "webhook", "acme");
    store
        .record_event(
            &ev,
            &[
                queued(&wf, "b", "2026-01-01T00:00:02Z"),
                queued(&wf, "a", "2026-01-01T00:00:01Z"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    let first = store.claim_next("w1", 5_000, 1_000).await.unwrap();
    assert_eq!(first.as_deref(), Some("a"));
    let second = store.claim_next("w2", 5_000, 1_000).await.unwrap();
    assert_eq!(second.as_deref(), Some("b"));
    assert_eq!(store.claim_next("w3", 5_000, 1_000).await.unwrap(), None);
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    let a = store.execution("a").await.unwrap();
    assert_eq!(
        (a.status, a.owner.as_deref()),
        (ExecStatus::Running, Some("w1"))
    );
    assert!(a.started_at.is_some());
    // w1 stops renewing: after its lease another worker takes the execution over.
    store.renew_leases("w2", 50_000).await.unwrap();
    assert_eq!(
        store
            .claim_next("w3", 60_000, 6_000)
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
    assert_eq!(store.claim_next("w4", 60_000, 6_000).await.unwrap(), None);
}

/// A queued execution of `wf` in concurrency group `key` with `limit`.
fn limited(wf: &WorkflowRecord, id: &str, created_at: &str, key: &str, limit: i64) -> NewExecution {
    NewExecution {
        concurrency_key: Some(key.into()),
        concurrency_limit: Some(limit),
        ..queued(wf, id, created_at)
    }
}

async fn finish(store: &dyn Store, id: &str) {
    store
        .finish_execution(
            id,
            ExecStatus::Succeeded,
            None,
            None,
            "2026-01-01T01:00:00Z",
        )
        .await
        .unwrap();
}

async fn concurrency_groups_run_at_most_their_limit(store: Arc<dyn Store>) {
    let v1 = store
        .deploy_workflow("lim", "name: lim\n", None)
        .await
        .unwrap();
    // Limits are per workflow name: a second version shares the groups of the first.
    let v2 = store
        .deploy_workflow("lim", "name: lim\ndescription: v2\n", None)
        .await
        .unwrap();
    let other = store
        .deploy_workflow("free", "name: free\n", None)
        .await
        .unwrap();
    let t = |s: u32| format!("2026-01-01T00:00:{s:02}Z");
    store
        .record_event(
            &TriggerEvent::new("lim", "hook", "webhook", "acme"),
            &[
                limited(&v1, "a1", &t(1), "acme", 2),
                limited(&v2, "a2", &t(2), "acme", 2),
                limited(&v1, "a3", &t(3), "acme", 2),
                limited(&v2, "a4", &t(4), "acme", 2),
                limited(&v1, "a5", &t(5), "acme", 2),
                limited(&v1, "b1", &t(6), "beta", 2),
                limited(&v1, "b2", &t(7), "beta", 2),
                queued(&other, "f1", &t(8)),
            ],
        )
        .await
        .unwrap();
    let claim = || async { store.claim_next("w", 1_000_000, 1_000).await.unwrap() };
    // Oldest first, two of acme's group, then the other group and the unlimited one.
    assert_eq!(claim().await.as_deref(), Some("a1"));
    assert_eq!(claim().await.as_deref(), Some("a2"));
    assert_eq!(claim().await.as_deref(), Some("b1"), "acme's group is full");
    assert_eq!(claim().await.as_deref(), Some("b2"));
    assert_eq!(claim().await.as_deref(), Some("f1"));
    assert_eq!(claim().await, None, "both groups are full");
    assert_eq!(store.queue_depth().await.unwrap(), 3);
    // A claim by id keeps to the limit too.
    assert!(
        !store
            .claim_execution("a3", "w", 1_000_000, 1_000, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.execution("a3").await.unwrap().status,
        ExecStatus::Pending
    );

    finish(&*store, "a2").await;
    assert_eq!(
        claim().await.as_deref(),
        Some("a3"),
        "a freed slot goes to the oldest"
    );
    assert_eq!(claim().await, None);
    // A slot of another group, or of an unlimited workflow, frees nothing for acme.
    finish(&*store, "b1").await;
    finish(&*store, "f1").await;
    assert_eq!(claim().await, None);
    finish(&*store, "a1").await;
    assert!(
        store
            .claim_execution("a4", "x", 1_000_000, 1_000, None)
            .await
            .unwrap(),
        "a claim by id takes a free slot"
    );
    assert_eq!(claim().await, None);
    finish(&*store, "a3").await;
    assert_eq!(claim().await.as_deref(), Some("a5"));
    assert_eq!(store.queue_depth().await.unwrap(), 0);

    // A held execution (created with an owner under a limit) waits pending for its owner,
    // which no queue claim takes while its lease lasts.
    let held = NewExecution {
        owner: Some("host:1".into()),
        lease_until_ms: Some(5_000),
        ..limited(&v1, "h1", &t(9), "beta", 1)
    };
    store.create_execution(&held, &[]).await.unwrap();
    let h1 = store.execution("h1").await.unwrap();
    assert_eq!(h1.status, ExecStatus::Pending);
    assert_eq!(h1.started_at, None);
    assert_eq!(
        (h1.concurrency_key.as_deref(), h1.concurrency_limit),
        (Some("beta"), Some(1))
    );
    finish(&*store, "b2").await;
    assert_eq!(claim().await, None, "held by its owner");
    assert!(
        store
            .claim_execution("h1", "host:1", 5_000, 1_000, None)
            .await
            .unwrap()
    );
    // Expired leases of running ones are still taken over (the count does not change).
    assert_eq!(
        store
            .claim_next("w2", 1_000_000, 2_000_000)
            .await
            .unwrap()
            .as_deref(),
        Some("a4")
    );
}

async fn trigger_switches_and_autotask_webhooks_are_kept(store: Arc<dyn Store>) {
    assert!(store.trigger_switches().await.unwrap().is_empty());
    store
        .set_trigger_enabled("wf", "hook", false)
        .await
        .unwrap();
    store.set_trigger_enabled("wf", "hook", true).await.unwrap();
    store
        .set_trigger_enabled("wf", "cron", false)
        .await
        .unwrap();
    let mut switches = store.trigger_switches().await.unwrap();
    switches.sort();
    assert_eq!(
        switches,
        vec![
            ("wf".to_string(), "cron".to_string(), false),
            ("wf".to_string(), "hook".to_string(), true)
        ]
    );
    let mut w = AutotaskWebhook {
        workflow: "wf".into(),
        trigger: "tickets".into(),
        org: "msp".into(),
        integration: Some("second".into()),
        entity: "TicketWebhooks".into(),
        webhook_id: 7,
        guid: Some("g-1".into()),
        secret: "s3cret".into(),
        url: "http://127.0.0.1/hooks/autotask/wf/tickets".into(),
        config_hash: "h1".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    store.save_autotask_webhook(&w).await.unwrap();
    w.webhook_id = 8;
    w.config_hash = "h2".into();
    store.save_autotask_webhook(&w).await.unwrap();
    let all = store.autotask_webhooks().await.unwrap();
    assert_eq!(all, vec![w.clone()]);
    assert!(!serde_json::to_string(&all).unwrap().contains("s3cret"));
    store
        .delete_autotask_webhook("wf", "tickets", "msp")
        .await
        .unwrap();
    assert!(store.autotask_webhooks().await.unwrap().is_empty());
}

fn org(id: &str, parent: Option<&str>) -> OrgRecord {
    OrgRecord {
        id: id.into(),
        name: id.to_uppercase(),
        parent_id: parent.map(str::to_string),
        tags: vec!["t".into()],
        attributes: json!({}),
        active: true,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

async fn orgs_form_a_tree_with_variables_integrations_and_mappings(store: Arc<dyn Store>) {
    store.save_org(&org("msp", None)).await.unwrap();
    store.save_org(&org("zeta", Some("msp"))).await.unwrap();
    store.save_org(&org("acme", Some("msp"))).await.unwrap();
    store
        .save_org(&org("acme-east", Some("acme")))
        .await
        .unwrap();
    let ids: Vec<String> = store
        .list_orgs()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(
        ids,
        ["msp", "acme", "zeta", "acme-east"],
        "parents first, then by name"
    );
    assert_eq!(
        store.org("Acme").await.unwrap().id,
        "acme",
        "by name, any case"
    );
    assert_eq!(
        store.org("acme-east").await.unwrap().parent_id.as_deref(),
        Some("acme")
    );
    let mut dup = org("other", Some("msp"));
    dup.name = "acme".into();
    assert_eq!(
        store.save_org(&dup).await.unwrap_err().kind(),
        StoreErrorKind::Conflict
    );
    assert_eq!(
        store
            .save_org(&org("orphan", Some("nope")))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::NotFound
    );

    let var = |key: &str, value: &str, secret| OrgVar {
        org_id: "acme".into(),
        key: key.into(),
        value: value.into(),
        secret,
    };
    store.set_org_var(&var("queue", "5", false)).await.unwrap();
    store
        .set_org_var(&var("api_key", "v1:sealed", true))
        .await
        .unwrap();
    store.set_org_var(&var("queue", "6", false)).await.unwrap();
    let vars = store.org_vars("acme").await.unwrap();
    assert_eq!(vars.len(), 2);
    assert_eq!(
        (vars[1].key.as_str(), vars[1].value.as_str()),
        ("queue", "6")
    );
    assert!(vars[0].secret);
    assert!(!serde_json::to_string(&vars).unwrap().contains("sealed"));
    assert!(store.delete_org_var("acme", "queue").await.unwrap());
    assert!(!store.delete_org_var("acme", "queue").await.unwrap());

    let integration = IntegrationRecord {
        org_id: "acme".into(),
        kind: "autotask".into(),
        name: "default".into(),
        settings: json!({"username": "u"}),
        secrets: Some("v1:x".into()),
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    store.save_integration(&integration).await.unwrap();
    assert_eq!(
        store.integrations(Some("acme")).await.unwrap(),
        vec![integration.clone()]
    );
    assert_eq!(store.integrations(None).await.unwrap().len(), 1);

    let mapping = |org: &str, ext: &str| OrgMapping {
        org_id: org.into(),
        kind: "autotask".into(),
        external_id: ext.into(),
        external_name: Some("Acme".into()),
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    store.set_mapping(&mapping("acme", "174")).await.unwrap();
    assert_eq!(
        store
            .set_mapping(&mapping("zeta", "174"))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::Conflict,
        "one company, one org"
    );
    store.set_mapping(&mapping("acme", "175")).await.unwrap();
    assert_eq!(
        store.mappings("autotask").await.unwrap()[0].external_id,
        "175"
    );
    let of_acme = store.org_mappings("acme").await.unwrap();
    assert_eq!(of_acme.len(), 1);
    assert_eq!(
        (of_acme[0].kind.as_str(), of_acme[0].external_id.as_str()),
        ("autotask", "175")
    );
    assert!(store.org_mappings("zeta").await.unwrap().is_empty());
    store
        .exclude("autotask", "999", Some("Old Co"))
        .await
        .unwrap();
    assert_eq!(
        store.exclusions("autotask").await.unwrap(),
        vec![("999".to_string(), Some("Old Co".to_string()))]
    );
    assert!(store.unexclude("autotask", "999").await.unwrap());

    assert_eq!(
        store.delete_org("acme").await.unwrap_err().kind(),
        StoreErrorKind::Conflict,
        "it has a child"
    );
    store.delete_org("acme-east").await.unwrap();
    store.delete_org("acme").await.unwrap();
    assert!(
        store.integrations(Some("acme")).await.unwrap().is_empty(),
        "cascade"
    );
    assert!(store.mappings("autotask").await.unwrap().is_empty());
}

async fn shared_slots_are_held_until_freed_or_lapsed_and_counts_add_up(store: Arc<dyn Store>) {
    let key = "autotask:slots:t1:ticketnotes";
    let mut taken = Vec::new();
    for holder in ["a", "b", "c"] {
        taken.push(
            store
                .take_slot(key, 3, holder, 1_000, 61_000)
                .await
                .unwrap(),
        );
    }
    assert_eq!(taken, [Some(0), Some(1), Some(2)]);
    assert_eq!(
        store.take_slot(key, 3, "d", 1_000, 61_000).await.unwrap(),
        None,
        "a fourth holder waits while three hold the slots"
    );
    // Another key (another endpoint or tenant) has its own slots.
    assert_eq!(
        store
            .take_slot("autotask:slots:t1:tickets", 3, "d", 1_000, 61_000)
            .await
            .unwrap(),
        Some(0)
    );
    // Freeing by someone else's name frees nothing; by the holder's, the slot.
    store.free_slot(key, 1, "a").await.unwrap();
    assert_eq!(
        store.take_slot(key, 3, "d", 2_000, 62_000).await.unwrap(),
        None
    );
    store.free_slot(key, 1, "b").await.unwrap();
    assert_eq!(
        store.take_slot(key, 3, "d", 2_000, 62_000).await.unwrap(),
        Some(1)
    );
    // A holder that died (its time ended) loses its slot to the next caller.
    assert_eq!(
        store.take_slot(key, 3, "e", 61_000, 121_000).await.unwrap(),
        Some(0)
    );
    // "b" took slot 1 and lost it to "d": b's late free must not release d's slot.
    store.free_slot(key, 1, "b").await.unwrap();
    assert_eq!(
        store.take_slot(key, 3, "f", 61_500, 121_000).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        store.take_slot(key, 3, "g", 61_500, 121_000).await.unwrap(),
        None
    );

    let budget = "autotask:budget:t1";
    store.add_count(budget, 100, 5, Some(40)).await.unwrap();
    store.add_count(budget, 100, 2, None).await.unwrap();
    store.add_count(budget, 130, 1, Some(70)).await.unwrap();
    store
        .add_count("autotask:budget:t2", 130, 50, Some(70))
        .await
        .unwrap();
    assert_eq!(store.count_since(budget, 100).await.unwrap(), 8);
    assert_eq!(store.count_since(budget, 101).await.unwrap(), 1);
    // Minutes older than `forget_before` are gone.
    store.add_count(budget, 200, 1, Some(150)).await.unwrap();
    assert_eq!(store.count_since(budget, 0).await.unwrap(), 1);
    assert_eq!(
        store.count_since("autotask:budget:none", 0).await.unwrap(),
        0
    );
}

async fn configuration_changes_move_the_generation(store: Arc<dyn Store>) {
    let mut last = store.config_generation().await.unwrap();
    let mut moved = |now: i64, what: &str| {
        assert!(
            now > last,
            "{what} did not move the configuration generation"
        );
        last = now;
    };
    store.save_org(&org("msp", None)).await.unwrap();
    moved(store.config_generation().await.unwrap(), "an org");
    store
        .set_org_var(&OrgVar {
            org_id: "msp".into(),
            key: "k".into(),
            value: "1".into(),
            secret: false,
        })
        .await
        .unwrap();
    moved(store.config_generation().await.unwrap(), "a variable");
    store.delete_org_var("msp", "k").await.unwrap();
    moved(
        store.config_generation().await.unwrap(),
        "a deleted variable",
    );
    store
        .set_mapping(&OrgMapping {
            org_id: "msp".into(),
            kind: "autotask.company".into(),
            external_id: "42".into(),
            external_name: Some("MSP".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
        })
        .await
        .unwrap();
    moved(store.config_generation().await.unwrap(), "a mapping");
    store
        .save_directory(&[DirectoryRecord {
            source: "autotask".into(),
            kind: "contact".into(),
            external_id: "1".into(),
            org_id: Some("msp".into()),
            name: "N".into(),
            data: json!({}),
            active: true,
            state: "created".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }])
        .await
        .unwrap();
    moved(
        store.config_generation().await.unwrap(),
        "a directory record",
    );
    store
        .set_trigger_enabled("wf", "hook", false)
        .await
        .unwrap();
    moved(store.config_generation().await.unwrap(), "a trigger switch");
    // What executions do is not configuration.
    new_execution(store.as_ref(), "e1", None).await;
    assert_eq!(store.config_generation().await.unwrap(), last);
}

async fn directory_records_and_sync_runs_are_kept(store: Arc<dyn Store>) {
    let rec = |id: &str, name: &str, active| DirectoryRecord {
        source: "autotask".into(),
        kind: "contact".into(),
        external_id: id.into(),
        org_id: None,
        name: name.into(),
        data: json!({"email": format!("{id}@x.test")}),
        active,
        state: "created".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    };
    let many: Vec<DirectoryRecord> = (0..1200).map(|i| rec(&i.to_string(), "N", true)).collect();
    store.save_directory(&many).await.unwrap();
    store
        .save_directory(&[rec("7", "Renamed", false)])
        .await
        .unwrap();
    let all = store.directory("autotask", "contact", None).await.unwrap();
    assert_eq!(all.len(), 1200);
    let seven = all.iter().find(|r| r.external_id == "7").unwrap();
    assert_eq!((seven.name.as_str(), seven.active), ("Renamed", false));
    let id = store
        .start_sync_run("autotask", "msp", "apply")
        .await
        .unwrap();
    store
        .finish_sync_run(id, &json!({"contact": {"created": 1200}}), &json!([]))
        .await
        .unwrap();
    let runs = store.sync_runs(5).await.unwrap();
    assert_eq!(runs[0].counts["contact"]["created"], 1200);
    assert!(runs[0].finished_at.is_some());
}

async fn settings_and_trigger_secrets_are_kept_once(store: Arc<dyn Store>) {
    assert_eq!(
        store.ensure_setting("k", "a").await.unwrap(),
        ("a".to_string(), true)
    );
    assert_eq!(
        store.ensure_setting("k", "b").await.unwrap(),
        ("a".to_string(), false)
    );
    // Webhook secrets: one per (trigger, org), kept once, rotated with or without grace.
    assert_eq!(
        store.webhook_secret("wf", "hook", "acme").await.unwrap(),
        None
    );
    let (first, created) = store
        .ensure_webhook_secret("wf", "hook", "acme", "sealed-1")
        .await
        .unwrap();
    assert!(created);
    assert_eq!(first.secret, "sealed-1");
    let (again, created) = store
        .ensure_webhook_secret("wf", "hook", "acme", "sealed-2")
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.secret, "sealed-1");
    let (beta, _) = store
        .ensure_webhook_secret("wf", "hook", "beta", "sealed-b")
        .await
        .unwrap();
    assert_eq!(beta.secret, "sealed-b", "each org has its own");
    let graced = store
        .rotate_webhook_secret(
            "wf",
            "hook",
            "acme",
            "sealed-3",
            Some("2030-01-01T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(graced.secret, "sealed-3");
    assert_eq!(graced.previous.as_deref(), Some("sealed-1"));
    assert_eq!(
        graced.previous_until.as_deref(),
        Some("2030-01-01T00:00:00Z")
    );
    assert!(graced.rotated_at.is_some());
    let at_once = store
        .rotate_webhook_secret("wf", "hook", "acme", "sealed-4", None)
        .await
        .unwrap();
    assert_eq!(
        (at_once.secret.as_str(), at_once.previous),
        ("sealed-4", None)
    );
    let fresh = store
        .rotate_webhook_secret("wf", "hook", "gamma", "sealed-g", None)
        .await
        .unwrap();
    assert_eq!(
        fresh.secret, "sealed-g",
        "rotating an unissued secret issues one"
    );
    assert_eq!(
        store
            .webhook_secret("wf", "hook", "beta")
            .await
            .unwrap()
            .unwrap()
            .secret,
        "sealed-b"
    );
}

async fn old_trigger_events_are_purged_but_the_last_slot_is_kept(store: Arc<dyn Store>) {
    let event = |trigger: &str, org: &str, key: Option<&str>, at: &str| TriggerEvent {
        dedupe_key: key.map(str::to_string),
        created_at: at.into(),
        ..TriggerEvent::new("wf", trigger, "webhook", org)
    };
    for e in [
        event("hook", "acme", None, "2020-01-01T00:00:00Z"),
        event("hook", "beta", None, "2020-01-01T00:00:00Z"),
        event("hook", "acme", None, "2030-01-01T00:00:00Z"),
        event(
            "tick",
            "acme",
            Some("cron:2020-01-01T00:00:00Z"),
            "2020-01-01T00:00:00Z",
        ),
        event(
            "tick",
            "acme",
            Some("cron:2020-01-02T00:00:00Z"),
            "2020-01-02T00:00:00Z",
        ),
        // Recorded last but an older slot: the newest *slot* is what the scheduler reads.
        event(
            "tick",
            "acme",
            Some("cron:2019-12-31T00:00:00Z"),
            "2020-01-03T00:00:00Z",
        ),
    ] {
        store.record_event(&e, &[]).await.unwrap();
    }
    let only_beta = PurgeScope {
        only: Some("beta".into()),
        except: Vec::new(),
    };
    assert_eq!(
        store
            .purge_trigger_events("2025-01-01T00:00:00Z", &only_beta)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .purge_trigger_events("2025-01-01T00:00:00Z", &PurgeScope::default())
            .await
            .unwrap(),
        3,
        "the old webhook event and the older cron slots; the newest slot stays"
    );
    assert_eq!(
        store.trigger_events("wf", "hook", 10).await.unwrap().len(),
        1
    );
    assert_eq!(
        store
            .last_dedupe_key("wf", "tick", "cron:")
            .await
            .unwrap()
            .as_deref(),
        Some("cron:2020-01-02T00:00:00Z")
    );
}

async fn crate_installs_are_saved_listed_and_deleted(store: Arc<dyn Store>) {
    let mut install = CrateInstall {
        crate_name: "hello".into(),
        org: "acme".into(),
        version: "1.0.0".into(),
        params: json!({"greeting": "Hi"}),
        run_for: json!([]),
        enabled: false,
        detached: false,
        source: Some("/lib/hello".into()),
        workflows: json!([{"file": "hello.yaml", "name": "hello--acme"}]),
        installed_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    };
    store.save_crate_install(&install).await.unwrap();
    let mut other = install.clone();
    other.org = "beta".into();
    store.save_crate_install(&other).await.unwrap();
    install.version = "1.1.0".into();
    install.detached = true;
    install.updated_at = "2026-02-01T00:00:00Z".into();
    store.save_crate_install(&install).await.unwrap();
    let all = store.crate_installs(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], install, "replaced in place, installed_at kept");
    assert_eq!(store.crate_installs(Some("beta")).await.unwrap(), [other]);
    assert!(store.delete_crate_install("hello", "acme").await.unwrap());
    assert!(!store.delete_crate_install("hello", "acme").await.unwrap());
    assert_eq!(store.crate_installs(None).await.unwrap().len(), 1);
}

async fn forms_keep_versions_apart_from_workflows(store: Arc<dyn Store>) {
    let wf = store
        .deploy_workflow("new-user", "name: new-user\n", None)
        .await
        .unwrap();
    let v1 = store
        .deploy_form("new-user", "form: new-user\n", Some("forms/new-user.yaml"))
        .await
        .unwrap();
    let same = store
        .deploy_form("new-user", "form: new-user\n", None)
        .await
        .unwrap();
    let v2 = store
        .deploy_form("new-user", "form: new-user\ntitle: x\n", None)
        .await
        .unwrap();
    assert_eq!((v1.version, same.version, v2.version), (1, 1, 2));
    assert_eq!(v1.path.as_deref(), Some("forms/new-user.yaml"));
    assert_eq!(store.form("new-user", None).await.unwrap().version, 2);
    assert_eq!(
        store.form("new-user", Some(1)).await.unwrap().source,
        "form: new-user\n"
    );
    store
        .deploy_form("access", "form: access\n", None)
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_forms()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["access", "new-user"]);
    // A form of the same name is not a workflow version, and does not count as a deploy the
    // webhook index must notice.
    assert_eq!(store.workflow("new-user", None).await.unwrap().version, 1);
    assert_eq!(store.last_deploy_id().await.unwrap(), wf.id);
    assert_eq!(
        store.form("nope", None).await.unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
}

async fn form_links_are_issued_once_rotated_and_switched(store: Arc<dyn Store>) {
    assert!(store.form_link("new-user", "acme").await.unwrap().is_none());
    let (first, issued) = store
        .ensure_form_link("new-user", "acme", "h1", "sealed-1")
        .await
        .unwrap();
    assert!(issued);
    let (again, issued) = store
        .ensure_form_link("new-user", "acme", "h-other", "sealed-other")
        .await
        .unwrap();
    assert!(!issued);
    assert_eq!(again, first, "an issued link is kept");
    assert_eq!((first.generation, first.enabled), (1, true));
    assert_eq!(
        store.form_link_by_hash("h1").await.unwrap().map(|l| l.org),
        Some("acme".to_string())
    );

    let rotated = store
        .rotate_form_link("new-user", "acme", "h2", "sealed-2")
        .await
        .unwrap();
    assert_eq!(
        (rotated.generation, rotated.token.as_str()),
        (2, "sealed-2")
    );
    assert!(rotated.rotated_at.is_some());
    assert!(
        store.form_link_by_hash("h1").await.unwrap().is_none(),
        "the old token is gone"
    );

    let off = store
        .set_form_link("new-user", "acme", false, Some("2027-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        (off.enabled, off.expires_at.as_deref()),
        (false, Some("2027-01-01T00:00:00Z"))
    );
    let on = store
        .set_form_link("new-user", "acme", true, None)
        .await
        .unwrap();
    assert_eq!((on.enabled, on.expires_at), (true, None));
    assert_eq!(
        store
            .set_form_link("new-user", "globex", true, None)
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::NotFound
    );

    store
        .ensure_form_link("access", "acme", "h3", "s3")
        .await
        .unwrap();
    store
        .ensure_form_link("new-user", "globex", "h4", "s4")
        .await
        .unwrap();
    let pairs = |links: Vec<FormLinkRecord>| -> Vec<(String, String)> {
        links.into_iter().map(|l| (l.form, l.org)).collect()
    };
    assert_eq!(pairs(store.form_links(None, None).await.unwrap()).len(), 3);
    assert_eq!(
        pairs(store.form_links(Some("new-user"), None).await.unwrap()),
        [
            ("new-user".to_string(), "acme".to_string()),
            ("new-user".to_string(), "globex".to_string())
        ]
    );
    assert_eq!(
        pairs(store.form_links(None, Some("acme")).await.unwrap()),
        [
            ("access".to_string(), "acme".to_string()),
            ("new-user".to_string(), "acme".to_string())
        ]
    );
    // A token hash belongs to one link only.
    assert!(
        store
            .ensure_form_link("other", "acme", "h3", "s")
            .await
            .is_err()
    );
}

async fn form_submissions_are_kept_newest_first(store: Arc<dyn Store>) {
    let sub = |id: &str, form: &str, org: &str, at: &str| FormSubmission {
        id: id.into(),
        form: form.into(),
        form_version: 1,
        org: org.into(),
        link: "standing".into(),
        values: serde_json::json!({"first_name": "Ada", "temp_password": "***"}),
        execution_ids: Vec::new(),
        submitted_at: at.into(),
    };
    store
        .save_form_submission(&sub("s1", "new-user", "acme", "2026-12-06T10:00:00Z"))
        .await
        .unwrap();
    store
        .save_form_submission(&sub("s2", "new-user", "globex", "2026-12-06T11:00:00Z"))
        .await
        .unwrap();
    store
        .save_form_submission(&sub("s3", "offboard", "acme", "2026-12-06T12:00:00Z"))
        .await
        .unwrap();
    let mut with_execs = sub("s1", "new-user", "acme", "2026-12-06T10:00:00Z");
    with_execs.execution_ids = vec!["e1".into(), "e2".into()];
    store.save_form_submission(&with_execs).await.unwrap();
    let ids = |subs: Vec<FormSubmission>| subs.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.form_submissions(None, None, 10).await.unwrap()),
        ["s3", "s2", "s1"]
    );
    assert_eq!(
        ids(store
            .form_submissions(Some("new-user"), None, 10)
            .await
            .unwrap()),
        ["s2", "s1"]
    );
    assert_eq!(
        ids(store.form_submissions(None, Some("acme"), 1).await.unwrap()),
        ["s3"]
    );
    let s1 = store
        .form_submissions(Some("new-user"), Some("acme"), 10)
        .await
        .unwrap();
    assert_eq!(s1[0].execution_ids, ["e1", "e2"]);
    assert_eq!(s1[0].values["temp_password"], "***");

    // A single-use link is used up by its first submission; signed links may be reused.
    let mut once = sub("s4", "offboard", "acme", "2026-12-06T13:00:00Z");
    once.link = "single_use:n1".into();
    store.save_form_submission(&once).await.unwrap();
    once.execution_ids = vec!["e4".into()];
    store.save_form_submission(&once).await.unwrap();
    let mut twice = sub("s5", "offboard", "acme", "2026-12-06T13:00:01Z");
    twice.link = "single_use:n1".into();
    let e = store.save_form_submission(&twice).await.unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Conflict, "{e}");
    let used = store
        .form_submission_by_link("single_use:n1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (used.id.as_str(), &used.execution_ids),
        ("s4", &vec!["e4".to_string()])
    );
    for id in ["s6", "s7"] {
        let mut signed = sub(id, "offboard", "acme", "2026-12-06T14:00:00Z");
        signed.link = "signed:same".into();
        store.save_form_submission(&signed).await.unwrap();
    }
    assert!(
        store
            .form_submission_by_link("single_use:n2")
            .await
            .unwrap()
            .is_none()
    );
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_suite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::sqlite().await).await;
                }
            )*
        }

        mod postgres_suite {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(pg) = super::TestPg::new().await else {
                        return;
                    };
                    super::$name(pg.store.clone()).await;
                    pg.drop_schema().await;
                }
            )*
        }
    };
}

suite!(
    shared_slots_are_held_until_freed_or_lapsed_and_counts_add_up,
    configuration_changes_move_the_generation,
    concurrency_groups_run_at_most_their_limit,
    orgs_form_a_tree_with_variables_integrations_and_mappings,
    directory_records_and_sync_runs_are_kept,
    events_start_queued_executions_once_per_dedupe_key,
    workers_claim_queued_executions_once_oldest_first,
    trigger_switches_and_autotask_webhooks_are_kept,
    deploy_keeps_versions_and_skips_identical_sources,
    forms_keep_versions_apart_from_workflows,
    form_links_are_issued_once_rotated_and_switched,
    form_submissions_are_kept_newest_first,
    task_runs_upsert_and_never_go_back_to_running,
    step_writes_arriving_together_commit_together,
    purge_goes_batch_by_batch,
    claims_respect_leases,
    cancel_reaches_children_and_finished_ones_refuse,
    list_filter_and_purge,
    settings_and_trigger_secrets_are_kept_once,
    old_trigger_events_are_purged_but_the_last_slot_is_kept,
    crate_installs_are_saved_listed_and_deleted,
);

#[tokio::test]
async fn unsupported_urls_are_refused_without_leaking_passwords() {
    let err = open("mysql://root:hunter2@localhost/db")
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Config);
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn a_file_database_is_created_with_its_folder() {
    let dir = std::env::temp_dir().join(format!("weft-store-{}", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}/sub/weft.db", dir.display());
    let store = open(&url).await.unwrap();
    store.deploy_workflow("w", "name: w\n", None).await.unwrap();
    assert!(dir.join("sub/weft.db").exists());
    drop(store);
    let again = open(&url).await.unwrap();
    assert_eq!(
        again.workflow("w", None).await.unwrap().version,
        1,
        "data survives reopening"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn shown_urls_lose_their_password() {
    assert_eq!(
        redact_url("postgres://u:p@ss@db.example:5432/weft?options[search_path]=a@b"),
        "postgres://u@db.example:5432/weft?options[search_path]=a@b"
    );
    assert_eq!(redact_url("postgres://db/weft"), "postgres://db/weft");
    assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
}

/// The error and every error below it, as shown.
fn error_chain(e: &StoreError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[tokio::test]
async fn an_unreachable_postgres_fails_fast_without_leaking_its_password() {
    let started = Instant::now();
    let err = open("postgres://u:hunter2@127.0.0.1:1/x")
        .await
        .err()
        .unwrap();
    // Nothing answers there: unavailable (a caller may retry), not a refused statement.
    assert_eq!(err.kind(), StoreErrorKind::Unavailable);
    let shown = error_chain(&err);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(started.elapsed() < Duration::from_secs(10), "{shown}");
}

#[tokio::test]
async fn a_postgres_url_picks_its_schema_through_the_search_path() {
    let Some(url) = pg_url() else {
        return;
    };
    let schema = format!("weft_t_{}", uuid::Uuid::new_v4().simple());
    let sep = if url.contains('?') { '&' } else { '?' };
    let with_schema = format!(
        "{}{sep}options[search_path]={schema}",
        url.replacen("postgres://", "postgresql://", 1)
    );
    let missing = open(&with_schema).await.err().unwrap();
    assert_eq!(missing.kind(), StoreErrorKind::Config, "{missing}");

    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let store = open(&with_schema).await.unwrap();
    store.deploy_workflow("w", "name: w\n", None).await.unwrap();
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {schema}.workflows"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 1, "the workflow is in the URL's schema");
    drop(store);
    assert_eq!(
        PostgresStore::open_in_schema(&url, "Bad; DROP")
            .await
            .err()
            .unwrap()
            .kind(),
        StoreErrorKind::Config
    );
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_workers_of_separate_processes_claim_each_execution_once() {
    let Some(pg) = TestPg::new().await else {
        return;
    };
    let wf = pg
        .store
        .deploy_workflow("wf", "name: wf\n", None)
        .await
        .unwrap();
    let executions: Vec<NewExecution> = (0..200)
        .map(|i| queued(&wf, &format!("x{i:03}"), "2026-01-01T00:00:00Z"))
        .collect();
    pg.store
        .record_event(
            &TriggerEvent::new("wf", "hook", "webhook", "acme"),
            &executions,
        )
        .await
        .unwrap();
    let mut workers = Vec::new();
    for w in 0..4 {
        let store = pg.another().await;
        workers.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut claimed = Vec::new();
            while let Some(id) = store.claim_next(&owner, 1_000_000, 1_000).await.unwrap() {
                claimed.push(id);
            }
            (owner, claimed)
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for worker in workers {
        let (owner, claimed) = worker.await.unwrap();
        eprintln!("{owner} claimed {}", claimed.len());
        for id in claimed {
            assert_eq!(
                pg.store.execution(&id).await.unwrap().owner.as_deref(),
                Some(owner.as_str()),
                "{id} is held by who claimed it"
            );
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(seen.len(), 200, "every execution was claimed");
    assert_eq!(pg.store.queue_depth().await.unwrap(), 0);
    pg.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_workers_of_separate_processes_keep_a_concurrency_limit() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let Some(pg) = TestPg::new().await else {
        return;
    };
    let wf = pg
        .store
        .deploy_workflow("lim", "name: lim\n", None)
        .await
        .unwrap();
    let executions: Vec<NewExecution> = (0..40)
        .map(|i| limited(&wf, &format!("x{i:03}"), "2026-01-01T00:00:00Z", "acme", 2))
        .collect();
    pg.store
        .record_event(
            &TriggerEvent::new("lim", "hook", "webhook", "acme"),
            &executions,
        )
        .await
        .unwrap();
    let running = |store: Arc<dyn Store>| async move {
        store
            .list_executions(&ExecutionFilter {
                status: Some(ExecStatus::Running),
                workflow: Some("lim".into()),
                ..ExecutionFilter::default()
            })
            .await
            .unwrap()
            .len()
    };
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (store, peak, done) = (pg.another().await, peak.clone(), done.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(running(store.clone()).await, Ordering::SeqCst);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            samples
        })
    };
    let mut workers = Vec::new();
    for w in 0..4 {
        let (store, peak) = (pg.another().await, peak.clone());
        workers.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut claimed = Vec::new();
            let mut idle = 0;
            // Claimers keep trying while others hold the slots; they stop once the queue
            // stays empty.
            while idle < 200 {
                match store.claim_next(&owner, 1_000_000, 1_000).await.unwrap() {
                    Some(id) => {
                        idle = 0;
                        peak.fetch_max(running(store.clone()).await, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(3)).await;
                        store
                            .finish_execution(
                                &id,
                                ExecStatus::Succeeded,
                                None,
                                None,
                                "2026-01-01T00:00:01Z",
                            )
                            .await
                            .unwrap();
                        claimed.push(id);
                    }
                    None => {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }
            (owner, claimed)
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for worker in workers {
        let (owner, claimed) = worker.await.unwrap();
        eprintln!("{owner} claimed {}", claimed.len());
        for id in claimed {
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await.unwrap();
    let peak = peak.load(Ordering::SeqCst);
    eprintln!("peak {peak} running over {samples} samples");
    assert!(peak <= 2, "{peak} executions of the group ran at once");
    assert_eq!(peak, 2, "the limit was used");
    assert_eq!(seen.len(), 40, "every execution was claimed");
    assert_eq!(pg.store.queue_depth().await.unwrap(), 0);
    pg.drop_schema().await;
}

#[tokio::test]
async fn postgres_wakes_idle_workers_when_a_limited_execution_ends() {
    let Some(pg) = TestPg::new().await else {
        return;
    };
    let other = pg.another().await;
    let wf = other
        .deploy_workflow("lim", "name: lim\n", None)
        .await
        .unwrap();
    other
        .record_event(
            &TriggerEvent::new("lim", "hook", "webhook", "acme"),
            &[
                limited(&wf, "first", "2026-01-01T00:00:00Z", "", 1),
                limited(&wf, "second", "2026-01-01T00:00:01Z", "", 1),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        other
            .claim_next("o", 1_000_000, 1_000)
            .await
            .unwrap()
            .as_deref(),
        Some("first")
    );
    assert_eq!(
        pg.store.claim_next("w", 1_000_000, 1_000).await.unwrap(),
        None
    );
    // The first wait starts listening (and may return at once for what was announced).
    pg.store.wait_for_work(Duration::from_secs(5)).await;
    let finish = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        super::tests::finish(&*other, "first").await;
    });
    let started = Instant::now();
    pg.store.wait_for_work(Duration::from_secs(30)).await;
    let waited = started.elapsed();
    finish.await.unwrap();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "not woken by the freed slot ({waited:?})"
    );
    assert_eq!(
        pg.store
            .claim_next("w", 1_000_000, 1_000)
            .await
            .unwrap()
            .as_deref(),
        Some("second")
    );
    pg.drop_schema().await;
}

#[tokio::test]
async fn postgres_wakes_idle_workers_when_another_process_queues_work() {
    let Some(pg) = TestPg::new().await else {
        return;
    };
    let other = pg.another().await;
    let wf = other
        .deploy_workflow("wf", "name: wf\n", None)
        .await
        .unwrap();
    // The first wait starts listening, and returns once it listens.
    pg.store.wait_for_work(Duration::from_secs(5)).await;
    let queue = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        other
            .record_event(
                &TriggerEvent::new("wf", "hook", "webhook", "acme"),
                &[queued(&wf, "woken", "2026-01-01T00:00:00Z")],
            )
            .await
            .unwrap();
    });
    let started = Instant::now();
    pg.store.wait_for_work(Duration::from_secs(30)).await;
    let waited = started.elapsed();
    queue.await.unwrap();
    assert!(
        waited >= Duration::from_millis(250),
        "woke before anything was queued ({waited:?})"
    );
    assert!(
        waited < Duration::from_secs(5),
        "not woken by the queued work ({waited:?})"
    );
    assert_eq!(
        pg.store
            .claim_next("w", 1_000_000, 1_000)
            .await
            .unwrap()
            .as_deref(),
        Some("woken")
    );
    pg.drop_schema().await;
}

#[tokio::test]
async fn postgres_stores_messages_with_nul_characters() {
    let Some(pg) = TestPg::new().await else {
        return;
    };
    new_execution(&*pg.store, "nul", None).await;
    pg.store
        .finish_execution(
            "nul",
            ExecStatus::Failed,
            None,
            Some("bad\0byte"),
            "2026-01-01T00:00:00Z",
        )
        .await
        .unwrap();
    assert_eq!(
        pg.store.execution("nul").await.unwrap().error.as_deref(),
        Some("bad\u{FFFD}byte")
    );
    pg.drop_schema().await;
}

#[tokio::test]
async fn sqlite_waits_for_work_by_sleeping() {
    let store = sqlite().await;
    let started = Instant::now();
    store.wait_for_work(Duration::from_millis(50)).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
}

/// The step writer under contention: steps of many executions while the pool writes too
/// (each side meets the other's write lock) — every write ends, none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_writes_finish_while_the_pool_writes_too() {
    let store = sqlite().await;
    for i in 0..8 {
        new_execution(&*store, &format!("c{i}"), None).await;
    }
    let stepping = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..150 {
                let mut r = run(
                    &format!("c{i}"),
                    &format!("t{n}"),
                    -1,
                    1,
                    TaskStatus::Succeeded,
                );
                r.seq = Some(n);
                store.record_task_runs(&[r]).await.expect("stored");
            }
        })
    });
    let pool = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..300 {
                store
                    .set_setting("contended", &n.to_string())
                    .await
                    .expect("set");
            }
        })
    };
    let all = async {
        for s in stepping.collect::<Vec<_>>() {
            s.await.unwrap();
        }
        pool.await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("no write waits forever");
    for i in 0..8 {
        assert_eq!(store.task_runs(&format!("c{i}")).await.unwrap().len(), 151);
    }
}

/// The migration that rebuilds `task_runs` in its key's order keeps every row as it was
/// (run here once more over a store that has rows, as it runs over an older database).
#[tokio::test]
async fn rebuilding_task_runs_in_key_order_keeps_every_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("weft.db");
    let store = open(&format!("sqlite://{}", path.display())).await.unwrap();
    new_execution(store.as_ref(), "e1", None).await;
    let mut done = run("e1", "a", -1, 1, TaskStatus::Succeeded);
    done.seq = Some(1);
    done.result = Some(json!({"x": [1, 2]}));
    done.publish = Some(vec![("k".into(), json!("v"))]);
    let rows = [done, run("e1", "b", -1, 1, TaskStatus::Running)];
    store.record_task_runs(&rows).await.unwrap();
    let before = store.task_runs("e1").await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!(
        "../../migrations/sqlite/0015_task_runs_clustered.sql"
    ))
    .unwrap();
    drop(conn);
    let store = open(&format!("sqlite://{}", path.display())).await.unwrap();
    let after = store.task_runs("e1").await.unwrap();
    assert_eq!(
        serde_json::to_value(&after).unwrap(),
        serde_json::to_value(&before).unwrap()
    );
    assert_eq!(after.len(), 2);
}

/// Under steady writes the WAL does not grow without bound: checkpoints start it over once it
/// passes its limit, even though commits never pause for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_wal_stays_bounded_under_steady_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("weft.db");
    let store = open(&format!("sqlite://{}", path.display())).await.unwrap();
    new_execution(store.as_ref(), "e1", None).await;
    let before = store.task_runs("e1").await.unwrap().len();
    let wal = dir.path().join("weft.db-wal");
    let mut largest = 0;
    // Each row overflows onto pages of its own: ≈ 4 WAL frames (16 KiB) a commit, 160 MiB in
    // all were nothing ever to start the WAL over (it starts over past 64 MiB).
    for i in 0..10_000 {
        let mut row = run("e1", &format!("t{i}"), -1, 1, TaskStatus::Succeeded);
        row.seq = Some(i);
        row.result = Some(json!("x".repeat(3000)));
        store.record_task_runs(&[row]).await.unwrap();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert_eq!(store.task_runs("e1").await.unwrap().len(), before + 10_000);
    assert!(largest < 100 << 20, "the WAL grew to {} MiB", largest >> 20);
}
