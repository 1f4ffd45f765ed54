//! Several `weft worker` processes on one PostgreSQL database (`WEFT_TEST_DATABASE_URL`, a
//! schema per test): queued executions are each run exactly once, spread over the workers,
//! and a worker killed mid-step loses nothing — another takes the execution over once the
//! lease lapses and finishes it. Skipped (saying so) without the URL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Map;
use weft_engine::executor::{Engine, Start, StartOptions};
use weft_engine::store::{ExecStatus, ExecutionFilter, Store, TriggerEvent};

/// A PostgreSQL schema of its own, an engine on it (the test's producer) and its URL for
/// the `weft` processes.
struct Cluster {
    url: String,
    engine: Arc<Engine>,
    dir: tempfile::TempDir,
}

async fn cluster() -> Option<Cluster> {
    let (url, store) = crate::support::pg_schema().await?;
    let engine = Engine::new(store, Arc::new(weft_actions::registry()));
    Some(Cluster {
        url,
        engine,
        dir: tempfile::tempdir().unwrap(),
    })
}

/// A `weft worker` process, killed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Cluster {
    /// Starts `weft worker` with `n` slots and a lease of `lease` seconds; waits until it runs.
    fn worker(&self, n: usize, lease: u64) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .current_dir(self.dir.path())
            .args(["worker", "--database", &self.url])
            .args(["--workers", &n.to_string(), "--lease", &lease.to_string()])
            .env("WEFT_SECRET_KEY", "cluster-test-key")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("weft worker starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("worker "), "weft worker said: {line:?}");
        std::thread::spawn(move || for _ in out.lines() {});
        Worker(child)
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    /// Queues `n` executions of `source`'s workflow, in events of 100.
    async fn queue(&self, source: &str, n: usize) -> Vec<String> {
        let record = self.engine.deploy(source, None).await.unwrap();
        let mut ids = Vec::new();
        while ids.len() < n {
            let starts = (0..(n - ids.len()).min(100))
                .map(|_| Start {
                    workflow: record.clone(),
                    input: Map::new(),
                    opts: StartOptions::default(),
                })
                .collect();
            let event = TriggerEvent::new(&record.name, "load", "webhook", "default");
            ids.extend(self.engine.enqueue(&event, starts).await.unwrap().unwrap());
        }
        ids
    }

    /// Waits until `n` executions of `workflow` succeeded (panics on a failed one).
    async fn all_succeed(&self, workflow: &str, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let list = self
                .store()
                .list_executions(&ExecutionFilter {
                    workflow: Some(workflow.into()),
                    limit: Some(5000),
                    ..ExecutionFilter::default()
                })
                .await
                .unwrap();
            if let Some(f) = list.iter().find(|e| e.status == ExecStatus::Failed) {
                panic!("execution failed: {f:#?}");
            }
            let done = list
                .iter()
                .filter(|e| e.status == ExecStatus::Succeeded)
                .count();
            if done == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{done} of {n} executions succeeded in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

const STEPS: &str = "name: steps\ntasks:\n  one:\n    action: core.echo\n    input: {text: one}\n    next: [{do: two}]\n  two:\n    action: core.echo\n    input: {text: two}\n    next: [{do: three}]\n  three:\n    action: core.echo\n    input: {text: three}\n";

/// 1,000 executions of three steps over `workers` processes: every step runs once, and
/// every process did some of the work.
async fn thousand_executions_over(workers: usize) {
    let Some(c) = cluster().await else { return };
    let procs: Vec<Worker> = (0..workers).map(|_| c.worker(4, 30)).collect();
    let started = Instant::now();
    let ids = c.queue(STEPS, 1000).await;
    c.all_succeed("steps", 1000, Duration::from_secs(240)).await;
    eprintln!(
        "{workers} workers: 1000 executions in {:?}",
        started.elapsed()
    );
    let mut owners = std::collections::HashMap::<String, usize>::new();
    for id in &ids {
        let exec = c.store().execution(id).await.unwrap();
        *owners.entry(exec.owner.unwrap_or_default()).or_default() += 1;
        let runs = c.store().task_runs(id).await.unwrap();
        for task in ["one", "two", "three"] {
            let attempts: Vec<_> = runs.iter().filter(|r| r.task == task).collect();
            assert_eq!(attempts.len(), 1, "{id} {task}: {attempts:#?}");
            assert_eq!(attempts[0].attempt, 1);
        }
    }
    assert_eq!(
        owners.len(),
        workers,
        "every worker ran some executions: {owners:?}"
    );
    drop(procs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_run_each_step_once() {
    thousand_executions_over(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_worker_processes_run_each_step_once() {
    thousand_executions_over(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_step_is_taken_over_after_its_lease() {
    let Some(c) = cluster().await else { return };
    let src = "name: slow\ntasks:\n  wait:\n    action: core.sleep\n    input: {duration: 3s}\n    next: [{do: after}]\n  after:\n    action: core.echo\n    input: {text: done}\n";
    let mut first = c.worker(1, 2);
    let ids = c.queue(src, 1).await;
    let id = &ids[0];
    // Wait until the first worker is inside the step.
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        let runs = c.store().task_runs(id).await.unwrap();
        if runs.iter().any(|r| r.task == "wait") {
            break c.store().execution(id).await.unwrap().owner.unwrap();
        }
        assert!(Instant::now() < deadline, "the step never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The first worker's lease before anyone else could take the execution: its renewals
    // only ever push it later, so no other worker may start the step again before it.
    let held = c.store().execution(id).await.unwrap();
    assert_eq!(held.owner.as_deref(), Some(holder.as_str()), "{held:#?}");
    let lease_until = held
        .lease_until_ms
        .expect("a running execution has a lease");
    // A second worker, started while the first is alive, so it does not adopt at once: it
    // must wait for the lease.
    let _second = c.worker(1, 2);
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    c.all_succeed("slow", 1, Duration::from_secs(60)).await;
    let exec = c.store().execution(id).await.unwrap();
    assert_ne!(exec.owner.as_deref(), Some(holder.as_str()), "taken over");
    let runs = c.store().task_runs(id).await.unwrap();
    // The step started again only once the first worker's lease had lapsed (250 ms of clock
    // slack). Measured against the lease itself, not the kill: under load the first worker's
    // last renewal before the kill may come late, leaving well under the 2 s lease to wait.
    let restarted = runs
        .iter()
        .filter(|r| r.task == "wait")
        .filter_map(|r| r.started_at.as_deref()?.parse::<jiff::Timestamp>().ok())
        .max()
        .unwrap()
        .as_millisecond();
    assert!(
        restarted >= lease_until - 250,
        "taken over {} ms before the first worker's lease lapsed: {runs:#?}",
        lease_until - restarted
    );
    let after: Vec<_> = runs.iter().filter(|r| r.task == "after").collect();
    assert_eq!(after.len(), 1, "{runs:#?}");
    assert!(
        runs.iter()
            .any(|r| r.task == "wait" && r.status == weft_engine::store::TaskStatus::Succeeded),
        "{runs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_holds_across_worker_processes() {
    let Some(c) = cluster().await else { return };
    let src = "name: limited\nconcurrency: {limit: 2}\ntasks:\n  hold:\n    action: core.sleep\n    input: {duration: 300ms}\n";
    let _procs: Vec<Worker> = (0..3).map(|_| c.worker(4, 30)).collect();
    c.queue(src, 12).await;
    // Sample the running executions of the workflow while the three processes drain it.
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = c
            .store()
            .list_executions(&ExecutionFilter {
                workflow: Some("limited".into()),
                status: Some(ExecStatus::Running),
                limit: Some(100),
                ..ExecutionFilter::default()
            })
            .await
            .unwrap()
            .len();
        peak = peak.max(running);
        assert!(running <= 2, "{running} running at once with a limit of 2");
        let done = c
            .store()
            .list_executions(&ExecutionFilter {
                workflow: Some("limited".into()),
                status: Some(ExecStatus::Succeeded),
                limit: Some(100),
                ..ExecutionFilter::default()
            })
            .await
            .unwrap()
            .len();
        if done == 12 {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of 12 finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(peak, 2, "the limit is used, not just respected");
}

/// `weft serve` on the cluster's database with `dir`'s workflows; killed when dropped.
fn serve(c: &Cluster, dir: &std::path::Path) -> Worker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--workflows", "."])
        .args(["--database", &c.url])
        .env("WEFT_SECRET_KEY", "cluster-test-key")
        .env("WEFT_API_TOKEN", "cluster-token")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("weft serve starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "weft serve ended");
        if line.starts_with("listening on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in out.lines() {});
    Worker(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_fire_each_cron_slot_once() {
    let Some(c) = cluster().await else { return };
    let src = "name: every-minute\ntriggers:\n  - name: tick\n    type: cron\n    schedule: \"* * * * *\"\ntasks:\n  hello:\n    action: core.echo\n    input: {text: \"{{ TRIGGER.scheduled_at }}\"}\n";
    std::fs::write(c.dir.path().join("tick.yaml"), src).unwrap();
    let _servers: Vec<Worker> = (0..3).map(|_| serve(&c, c.dir.path())).collect();
    // The next minute's slot (up to 60 s away), then a few seconds for stragglers.
    let deadline = Instant::now() + Duration::from_secs(75);
    let accepted = loop {
        let events = c
            .store()
            .trigger_events("every-minute", "tick", 100)
            .await
            .unwrap();
        let accepted: Vec<_> = events
            .into_iter()
            .filter(|e| e.outcome == "accepted")
            .collect();
        if !accepted.is_empty() {
            break accepted;
        }
        assert!(Instant::now() < deadline, "no slot fired within 75 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = c
        .store()
        .trigger_events("every-minute", "tick", 100)
        .await
        .unwrap();
    let slots: std::collections::HashSet<_> = events
        .iter()
        .filter(|e| e.outcome == "accepted")
        .filter_map(|e| e.dedupe_key.clone())
        .collect();
    let accepted_now = events.iter().filter(|e| e.outcome == "accepted").count();
    assert_eq!(
        accepted_now,
        slots.len(),
        "one accepted event per slot: {events:#?}"
    );
    assert!(slots.contains(accepted[0].dedupe_key.as_ref().unwrap()));
    c.all_succeed("every-minute", slots.len(), Duration::from_secs(30))
        .await;
    let executions = c
        .store()
        .list_executions(&ExecutionFilter {
            workflow: Some("every-minute".into()),
            limit: Some(100),
            ..ExecutionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        executions.len(),
        slots.len(),
        "one execution per slot across three servers"
    );
}
