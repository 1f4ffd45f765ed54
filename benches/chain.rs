//! A linear chain of 50 `core.noop` steps with templated routes, durable on each store
//! (a SQLite file; PostgreSQL when `--postgres URL` or `WEFT_TEST_DATABASE_URL` is given),
//! beside the cost of one bare commit measured in the same run on the same database:
//!
//! - latency: `--executions N` chains one after another (per execution, per step);
//! - throughput: `--throughput N` chains queued at once and run by `--workers 1,2,4`
//!   in-process workers (executions/s and steps/s).
//!
//! `cargo bench --bench chain` (`-- --executions 100 --throughput 200 --workers 1,2,4
//! --postgres postgres://postgres@127.0.0.1:5432/test`; `-- --database sqlite::memory:`
//! measures the engine without durable commits; `--plain` drops the routes' templates).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Map;
use weft_engine::executor::{Engine, Start, StartOptions, Workers};
use weft_engine::store::{ExecStatus, TriggerEvent};

const STEPS: usize = 50;

/// How many steps the long chain of the latency measurement has (the issue's: 300).
const LONG: usize = 300;

/// `--plain`: routes with neither a `when` nor `publish` (each step only its durable commit and
/// its no-op action), to compare with the floor without template work.
fn plain() -> bool {
    std::env::args().any(|a| a == "--plain")
}

fn chain_workflow(steps: usize) -> String {
    let plain = plain();
    let mut y = format!(
        "name: bench-chain-{steps}\ninput:\n  i: {{ type: integer, default: 0 }}\n  label: {{ type: string, default: start }}\ntasks:\n"
    );
    for n in 0..steps {
        y.push_str(&format!("  s{n}:\n    action: core.noop\n"));
        if n + 1 < steps && plain {
            y.push_str(&format!("    next: [s{}]\n", n + 1));
        } else if n + 1 < steps {
            y.push_str(&format!(
                "    next:\n      - when: \"{{{{ CTX.i < 1000 }}}}\"\n        publish: {{ i: \"{{{{ CTX.i + 1 }}}}\", label: \"step {{{{ CTX.i }}}} of {steps}\" }}\n        do: s{}\n",
                n + 1
            ));
        }
    }
    if plain {
        y.push_str("output:\n  i: \"{{ (TASKS | length) - 1 }}\"\n");
    } else {
        y.push_str("output:\n  i: \"{{ CTX.i }}\"\n  label: \"{{ CTX.label }}\"\n");
    }
    y
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn arg(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}

fn main() {
    let executions: usize = arg("--executions")
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let throughput: usize = arg("--throughput")
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let workers = common::counts("--workers", &[1, 2, 4]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if let Some(url) = arg("--database") {
            // One store given by URL (e.g. `sqlite::memory:`): latency only.
            let store = weft_engine::store::open(&url).await.expect("store");
            latency(&url, Engine::new(store, Arc::new(weft_actions::registry())), executions, None)
                .await;
            return;
        }
        println!(
            "weft chain benchmark: {STEPS} steps per execution, {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let mut kinds = vec![None];
        if let Some(pg) = common::postgres_url() {
            kinds.push(Some(pg));
        }
        for kind in &kinds {
            let s = match kind {
                None => common::sqlite().await,
                Some(pg) => common::postgres(pg).await,
            };
            let engine = Engine::new(s.store.clone(), Arc::new(weft_actions::registry()));
            let commit = latency(s.name, engine, executions, Some(&s)).await;
            if kind.is_some() && throughput > 0 {
                // The ceiling of what more workers can gain: the database's own commits from as
                // many concurrent clients, in the same run.
                let one = s.concurrent_commits(1, Duration::from_secs(3)).await;
                for &w in workers.iter().filter(|&&w| w > 1) {
                    let many = s.concurrent_commits(w, Duration::from_secs(3)).await;
                    println!(
                        "  {:<12} bare commits: 1 client {one:.0}/s, {w} clients {many:.0}/s = {:.2}x",
                        s.name,
                        many / one
                    );
                }
            }
            let mut one_worker = None;
            for &w in &workers {
                // A fresh store per worker count, so each run starts from the same size.
                let fresh = match kind {
                    None => common::sqlite().await,
                    Some(pg) => common::postgres(pg).await,
                };
                let engine = Engine::new(fresh.store.clone(), Arc::new(weft_actions::registry()));
                let (per_s, elapsed) = run_queued(&engine, throughput, w).await;
                let base = *one_worker.get_or_insert(per_s);
                println!(
                    "  {:<12} {w} worker(s): {throughput} executions in {:.2} s = {per_s:.0} executions/s ({:.2}x the first), {:.0} steps/s ({:.0} µs per step of wall time; bare commit {:.0} µs)",
                    s.name,
                    elapsed.as_secs_f64(),
                    per_s / base,
                    per_s * STEPS as f64,
                    1e6 / (per_s * STEPS as f64),
                    commit.as_secs_f64() * 1e6
                );
                fresh.close().await;
            }
            s.close().await;
        }
    });
}

/// Runs `executions` chains of `steps` steps one after another: the time of each.
async fn chains(engine: &Arc<Engine>, steps: usize, executions: usize) -> Vec<Duration> {
    let record = engine
        .deploy(&chain_workflow(steps), None)
        .await
        .expect("valid benchmark workflow");
    let mut times = Vec::with_capacity(executions);
    // The first five warm up caches and the pool.
    for n in 0..executions + 5 {
        let t = Instant::now();
        let e = engine
            .execute(&record, Default::default(), StartOptions::default())
            .await
            .expect("runs");
        if n >= 5 {
            times.push(t.elapsed());
        }
        assert_eq!(
            e.output.as_ref().and_then(|o| o["i"].as_i64()),
            Some(steps as i64 - 1),
            "{:?}",
            e.error
        );
    }
    times
}

/// Chains one after another; prints per execution and per step beside bare commits (when
/// `bare` is given). A step's cost is measured as the issue states it: the median
/// {LONG}-step chain minus the median 1-step chain, over {LONG} − 1 steps, so what an
/// execution costs once (creating, claiming, finishing it) is not counted as steps.
/// Returns the bare commit median.
async fn latency(
    name: &str,
    engine: Arc<Engine>,
    executions: usize,
    bare: Option<&common::BenchStore>,
) -> Duration {
    let mut short = chains(&engine, 1, executions).await;
    let mut per_exec = chains(&engine, STEPS, executions).await;
    let mut long = chains(&engine, LONG, executions.div_ceil(4)).await;
    let (short_med, long_med) = (median(&mut short), median(&mut long));
    let exec_med = median(&mut per_exec);
    let step = long_med.saturating_sub(short_med) / (LONG as u32 - 1);
    // The run-to-run spread of the step: quartiles of the long chains against the short median.
    let (q1, q3) = (
        pct(&long, 0.25).saturating_sub(short_med) / (LONG as u32 - 1),
        pct(&long, 0.75).saturating_sub(short_med) / (LONG as u32 - 1),
    );
    println!(
        "  {name:<12} {STEPS}-step chain ({executions}): median {exec_med:>9.2?} p95 {:>9.2?}; 1-step chain median {short_med:>9.2?}; {LONG}-step chain median {long_med:>9.2?}",
        pct(&per_exec, 0.95)
    );
    println!(
        "  {name:<12} durable step ({LONG}-step chain minus 1-step chain, per step): median {step:>9.2?} (interquartile {q1:.2?} – {q3:.2?})"
    );
    let Some(bare) = bare else {
        return Duration::ZERO;
    };
    let mut commits = bare.bare_commits(2000).await;
    let commit_med = median(&mut commits);
    println!(
        "  {name:<12} bare commit (1-row INSERT) median {commit_med:>9.2?} p95 {:>9.2?}; per step / bare commit = {:.2}x",
        pct(&commits, 0.95),
        step.as_secs_f64() / commit_med.as_secs_f64()
    );
    if let Some(mut raw) = bare.raw_commits(2000) {
        let raw_med = median(&mut raw);
        println!(
            "  {name:<12} raw commit (rusqlite, same INSERT) median {raw_med:>9.2?} p95 {:>9.2?}; per step / raw commit = {:.1}x",
            pct(&raw, 0.95),
            step.as_secs_f64() / raw_med.as_secs_f64()
        );
    }
    if let Some(mut raw) = bare.raw_step_commits(2000) {
        let raw_med = median(&mut raw);
        println!(
            "  {name:<12} a step's rows alone (rusqlite: one row brought up to date, one inserted, one transaction) median {raw_med:>9.2?} p95 {:>9.2?}; per step / these = {:.1}x",
            pct(&raw, 0.95),
            step.as_secs_f64() / raw_med.as_secs_f64()
        );
    }
    commit_med
}

/// Queues `n` chains at once and runs them with `workers` workers: executions per second.
async fn run_queued(engine: &Arc<Engine>, n: usize, workers: usize) -> (f64, Duration) {
    let record = engine
        .deploy(&chain_workflow(STEPS), None)
        .await
        .expect("valid benchmark workflow");
    let starts = (0..n)
        .map(|_| Start {
            workflow: record.clone(),
            input: Map::new(),
            opts: StartOptions::default(),
        })
        .collect();
    let event = TriggerEvent::new(&record.name, "bench", "webhook", "default");
    let ids = engine
        .enqueue(&event, starts)
        .await
        .expect("queued")
        .expect("recorded");
    let started = Instant::now();
    let pool = Workers::new(engine.clone(), workers);
    for id in &ids {
        let e = engine
            .wait_for(id, Duration::from_secs(600))
            .await
            .expect("waits")
            .expect("finishes in time");
        assert_eq!(e.status, ExecStatus::Succeeded, "{:?}", e.error);
    }
    let elapsed = started.elapsed();
    pool.shutdown(Duration::from_secs(5)).await;
    (n as f64 / elapsed.as_secs_f64(), elapsed)
}
