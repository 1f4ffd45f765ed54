//! Webhook load test: the real HTTP server (axum on 127.0.0.1, an ephemeral port) with its
//! workers and a SQLite file store, driven by a client in the same process.
//!
//! - Burst: `--burst N` requests from 64 concurrent connections as fast as they are
//!   answered: webhooks accepted per second (each 202 is sent after the event and its queued
//!   execution are committed), then how long the workers take to complete them all.
//! - Open loop at offered rates (`--rates 100,250,500,1000`, `--seconds S` each): a request
//!   is sent every 1/rate s whatever the answers; latency from sending the request to the
//!   execution's `finished_at` in the store, p50/p95/p99.
//!
//! Nothing may be lost: every 202 must have its execution, succeeded, at the end.
//!
//! `cargo bench --bench webhooks` (`-- --workers 8 --burst 5000 --rates 100,500,1000
//! --seconds 5`). `--workers 1,2,4` repeats the whole run per worker count; with
//! `--postgres URL` (or `WEFT_TEST_DATABASE_URL`) each run is made on SQLite and then on a
//! fresh PostgreSQL schema.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_engine::executor::{Engine, Workers};
use weft_engine::store::{ExecStatus, ExecutionFilter};
use weft_server::AppState;

const WORKFLOW: &str = r#"
name: bench-hook
input:
  n: {type: integer, default: 0}
triggers:
  - name: load
    type: webhook
    secret: required
    run_for: all_managed
tasks:
  first:
    action: core.noop
    next:
      - publish: {doubled: "{{ CTX.n * 2 }}"}
        do: second
  second:
    action: core.echo
    input: {text: "n={{ CTX.n }} doubled={{ CTX.doubled }}"}
output:
  text: "{{ TASKS.second.result.text }}"
"#;

struct Opts {
    workers: Vec<usize>,
    burst: usize,
    /// Other deployed workflows (each with a webhook trigger of its own), as many crate
    /// installs across clients would add.
    extra_workflows: usize,
    rates: Vec<u32>,
    seconds: u64,
}

fn opts() -> Opts {
    let mut o = Opts {
        workers: common::counts("--workers", &[8]),
        burst: 5000,
        extra_workflows: 0,
        rates: vec![100, 250, 500, 1000],
        seconds: 5,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let next = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--burst" => o.burst = next.parse().expect("--burst N"),
            "--seconds" => o.seconds = next.parse().expect("--seconds S"),
            "--extra-workflows" => o.extra_workflows = next.parse().expect("--extra-workflows N"),
            "--rates" => {
                o.rates = next
                    .split(',')
                    .map(|r| r.trim().parse().expect("--rates 100,500"))
                    .collect()
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Bench {
    engine: Arc<Engine>,
    url: String,
    secret: String,
    client: reqwest::Client,
}

impl Bench {
    async fn post(&self, n: usize) -> Result<String, String> {
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-weft-secret", &self.secret)
            .body(format!("{{\"n\": {n}}}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
        if status.as_u16() != 202 {
            return Err(format!("{status}: {body}"));
        }
        Ok(body["id"].as_str().expect("an id").to_string())
    }

    /// Waits until every execution is final; returns when the last one finished.
    async fn drain(&self, ids: &[String]) -> Instant {
        loop {
            let depth = self.engine.store().queue_depth().await.expect("depth");
            let running = self
                .engine
                .store()
                .list_executions(&ExecutionFilter {
                    status: Some(ExecStatus::Running),
                    limit: Some(1),
                    ..Default::default()
                })
                .await
                .expect("list");
            if depth == 0 && running.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let done = Instant::now();
        let mut lost = 0;
        for id in ids {
            match self.engine.store().execution(id).await {
                Ok(e) if e.status == ExecStatus::Succeeded => {}
                _ => lost += 1,
            }
        }
        assert_eq!(lost, 0, "every accepted webhook has a succeeded execution");
        done
    }
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let postgres = common::postgres_url();
        for &w in &o.workers {
            run(&o, common::sqlite().await, w).await;
            if let Some(pg) = &postgres {
                run(&o, common::postgres(pg).await, w).await;
            }
        }
    });
}

async fn run(o: &Opts, s: common::BenchStore, n_workers: usize) {
    let engine = Engine::new(s.store.clone(), Arc::new(weft_actions::registry()));
    engine.deploy(WORKFLOW, None).await.expect("deploys");
    for n in 0..o.extra_workflows {
        let other = format!(
            "name: other-{n}\ntriggers:\n  - name: other-hook-{n}\n    type: webhook\ntasks:\n  a:\n    action: core.noop\n    input: {{}}\n  b:\n    action: core.echo\n    input: {{text: \"padding so the source is the size of a real workflow: {}\"}}\n",
            "x".repeat(2000)
        );
        engine.deploy(&other, None).await.expect("deploys");
    }
    // The webhook runs for a registered client org, with that org's own secret.
    let now = jiff::Timestamp::now().to_string();
    for (id, parent) in [("msp", None), ("acme", Some("msp"))] {
        s.store
            .save_org(&weft_engine::store::OrgRecord {
                id: id.into(),
                name: id.into(),
                parent_id: parent.map(str::to_string),
                tags: Vec::new(),
                attributes: serde_json::json!({}),
                active: true,
                created_at: now.clone(),
                updated_at: now.clone(),
            })
            .await
            .expect("org");
    }
    let wf = weft_engine::load(WORKFLOW, engine.registry())
        .workflow
        .expect("loads");
    let secret = weft_triggers::webhook_access::secret(&engine, &wf.name, &wf.triggers[0], "acme")
        .await
        .expect("secret")
        .secret;
    let workers = Workers::new(engine.clone(), n_workers);
    let state = AppState::new(
        engine.clone(),
        workers.clone(),
        "bench-token",
        "http://127.0.0.1",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, weft_server::router(state))
            .await
            .expect("serves")
    });
    let bench = Arc::new(Bench {
        engine: engine.clone(),
        url: format!("http://{addr}/hooks/load/acme"),
        secret,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client"),
    });
    println!(
        "webhook load test: {n_workers} workers, {} store, {} other workflows deployed, {} cores",
        s.name,
        o.extra_workflows,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Warm up connections, caches and the database file.
    let warm: Vec<String> = {
        let mut v = Vec::new();
        for n in 0..200 {
            v.push(bench.post(n).await.expect("accepted"));
        }
        v
    };
    bench.drain(&warm).await;

    // Burst.
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..64 {
        let (bench, next, total) = (bench.clone(), next.clone(), o.burst);
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    break ids;
                }
                ids.push(bench.post(n).await.expect("accepted"));
            }
        }));
    }
    let mut ids = Vec::new();
    for c in clients {
        ids.extend(c.await.expect("client"));
    }
    let accepted = start.elapsed();
    let done = bench.drain(&ids).await;
    let completed = done.duration_since(start);
    println!(
        "burst {}: accepted {:.0}/s ({:.2} s), all completed {:.0}/s ({:.2} s), none lost",
        ids.len(),
        ids.len() as f64 / accepted.as_secs_f64(),
        accepted.as_secs_f64(),
        ids.len() as f64 / completed.as_secs_f64(),
        completed.as_secs_f64()
    );

    // Open loop at offered rates.
    println!(
        "{:>8} {:>10} {:>12} {:>9} {:>9} {:>9}  (request sent → execution finished, ms)",
        "offered", "accepted", "completed/s", "p50", "p95", "p99"
    );
    for rate in &o.rates {
        let total = (*rate as u64 * o.seconds) as usize;
        let interval = Duration::from_secs_f64(1.0 / f64::from(*rate));
        let start = Instant::now();
        let wall0 = jiff::Timestamp::now();
        let mut handles = Vec::with_capacity(total);
        for n in 0..total {
            let due = start + interval.mul_f64(n as f64);
            tokio::time::sleep_until(due.into()).await;
            let bench = bench.clone();
            handles.push(tokio::spawn(async move {
                let sent = Instant::now();
                let id = bench.post(n).await.expect("accepted");
                (sent, id)
            }));
        }
        let mut sent = Vec::with_capacity(total);
        for h in handles {
            sent.push(h.await.expect("request"));
        }
        let ids: Vec<String> = sent.iter().map(|(_, id)| id.clone()).collect();
        let done = bench.drain(&ids).await;
        let mut lat = Vec::with_capacity(total);
        for (at, id) in &sent {
            let e = bench.engine.store().execution(id).await.expect("stored");
            let finished: jiff::Timestamp =
                e.finished_at.expect("finished").parse().expect("timestamp");
            let since_start = finished.duration_since(wall0).as_secs_f64();
            let sent_at = at.duration_since(start).as_secs_f64();
            lat.push((since_start - sent_at) * 1000.0);
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "{:>6}/s {:>10} {:>12.0} {:>9.1} {:>9.1} {:>9.1}",
            rate,
            total,
            total as f64 / done.duration_since(start).as_secs_f64(),
            pct(&lat, 0.5),
            pct(&lat, 0.95),
            pct(&lat, 0.99)
        );
    }
    workers.shutdown(Duration::from_secs(5)).await;
    s.close().await;
}
