//! Execution history at scale: `--rows N` finished executions (1,000,000 by default) seeded
//! into a SQLite file in one statement (and into PostgreSQL with `--postgres URL`), then the
//! lists people open — the first page, by workflow, by org, by status, each of top-level
//! executions as the console and `GET /api/executions` ask — timed `--repeat` times each
//! (p50 and p99). The baseline in the same run is the same lists on the same rows with the
//! indexes weft had before issue 17.
//!
//! Then retention: the oldest 100,000 executions (five task runs each) are purged while a
//! probe records a step every 5 ms, and the probe's worst waits are reported beside the same
//! probe against one `DELETE` of the next 100,000 (how purge worked before issue 17).
//!
//! `cargo bench --bench history` (`-- --rows 1000000 --repeat 200 --postgres
//! postgres://postgres@127.0.0.1:5432/test`).

mod common;

use std::time::{Duration, Instant};

use weft_engine::store::{ExecStatus, ExecutionFilter, Store};

/// The schema before issue 17's history indexes (the baseline), for each backend.
const BASELINE_SQLITE: &str = "DROP INDEX executions_recent; DROP INDEX executions_by_org; \
    DROP INDEX executions_by_workflow_recent; DROP INDEX executions_by_status_recent; \
    DROP INDEX executions_by_parent; \
    CREATE INDEX executions_by_parent ON executions (parent_id); \
    CREATE INDEX executions_by_status ON executions (status, created_at); \
    CREATE INDEX executions_by_workflow ON executions (workflow_name, created_at); ANALYZE";
const BASELINE_POSTGRES: &str = "DROP INDEX executions_recent; DROP INDEX executions_by_org; \
    DROP INDEX executions_by_workflow_recent; DROP INDEX executions_by_status_recent; \
    DROP INDEX executions_by_parent; \
    CREATE INDEX executions_by_parent ON executions (parent_id); \
    CREATE INDEX executions_by_org ON executions (org, created_at); \
    CREATE INDEX executions_by_status ON executions (status, created_at); \
    CREATE INDEX executions_by_workflow ON executions (workflow_name, created_at); \
    ANALYZE executions";

const WORKFLOWS: i64 = 40;
const ORGS: i64 = 300;

fn arg(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The lists timed: a name and the filter.
fn lists() -> Vec<(&'static str, ExecutionFilter)> {
    let page = |f: ExecutionFilter| ExecutionFilter {
        top_level_only: true,
        limit: Some(50),
        ..f
    };
    vec![
        ("first page", page(ExecutionFilter::default())),
        (
            "by workflow",
            page(ExecutionFilter {
                workflow: Some("wf-7".into()),
                ..Default::default()
            }),
        ),
        (
            "by org",
            page(ExecutionFilter {
                org: Some("org-123".into()),
                ..Default::default()
            }),
        ),
        (
            "by status (failed)",
            page(ExecutionFilter {
                status: Some(ExecStatus::Failed),
                ..Default::default()
            }),
        ),
    ]
}

async fn time_lists(store: &dyn Store, repeat: usize) -> Vec<(&'static str, Duration, Duration)> {
    let mut out = Vec::new();
    for (name, filter) in lists() {
        let got = store.list_executions(&filter).await.expect("list");
        assert_eq!(got.len(), 50, "{name}: the seed fills a page");
        let mut times = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let t = Instant::now();
            let page = store.list_executions(&filter).await.expect("list");
            times.push(t.elapsed());
            std::hint::black_box(page);
        }
        times.sort();
        out.push((name, pct(&times, 0.5), pct(&times, 0.99)));
    }
    out
}

/// `n` finished executions of one deployed workflow version, spread over [`WORKFLOWS`] names
/// and [`ORGS`] orgs, one a second back from now, one in ten a sub-workflow, one in twenty
/// failed — in one statement.
fn seed_sql(n: i64, workflow_id: i64, postgres: bool) -> String {
    let text = |e: &str| {
        if postgres {
            format!("({e})::text")
        } else {
            format!("CAST({e} AS TEXT)")
        }
    };
    let time = if postgres {
        "to_char(timestamp '2026-01-01' + n * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')".to_string()
    } else {
        "strftime('%Y-%m-%dT%H:%M:%SZ', 1767225600 + n, 'unixepoch')".to_string()
    };
    let series = if postgres {
        format!("generate_series(1, {n}) AS s(n)")
    } else {
        format!(
            "(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {n}) SELECT n FROM c)"
        )
    };
    format!(
        "INSERT INTO executions (id, workflow_id, workflow_name, workflow_version, status, org, input, trigger, parent_id, created_at, started_at, finished_at) \
         SELECT 'x' || {id}, {workflow_id}, 'wf-' || {wf}, 1, \
                CASE WHEN n % 20 = 1 THEN 'failed' ELSE 'succeeded' END, \
                'org-' || {org}, '{{}}', '{{\"type\":\"manual\"}}', \
                CASE WHEN n % 10 = 0 THEN 'x' || {parent} ELSE NULL END, \
                {time}, {time}, {time} \
         FROM {series}",
        id = text("n"),
        wf = text(&format!("n % {WORKFLOWS}")),
        org = text(&format!("n % {ORGS}")),
        parent = text("n - 1"),
    )
}

async fn run(bench: common::BenchStore, rows: i64, repeat: usize) {
    let (label, url, store) = (bench.name, bench.url.as_str(), bench.store.as_ref());
    let postgres = url.starts_with("postgres");
    let wf = store
        .deploy_workflow(
            "seeded",
            "name: seeded\ntasks:\n  a:\n    action: core.noop\n",
            None,
        )
        .await
        .expect("deploy");
    let t = Instant::now();
    let sql = seed_sql(rows, wf.id, postgres);
    exec(url, &sql).await;
    println!(
        "{label}: seeded {rows} executions in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    exec(
        url,
        if postgres {
            "ANALYZE executions"
        } else {
            "ANALYZE"
        },
    )
    .await;
    let with = time_lists(store, repeat).await;
    exec(
        url,
        if postgres {
            BASELINE_POSTGRES
        } else {
            BASELINE_SQLITE
        },
    )
    .await;
    let without = time_lists(store, repeat.min(20)).await;
    println!(
        "{label}, {rows} rows, top-level executions, 50 per page ({repeat} lists each; baseline: the indexes before issue 17, {} lists each):",
        repeat.min(20)
    );
    println!(
        "  {:<20} {:>10} {:>10}   {:>14} {:>14}",
        "list", "p50", "p99", "baseline p50", "baseline p99"
    );
    for ((name, p50, p99), (_, b50, b99)) in with.iter().zip(&without) {
        println!(
            "  {name:<20} {:>8.2}ms {:>8.2}ms   {:>12.2}ms {:>12.2}ms",
            ms(*p50),
            ms(*p99),
            ms(*b50),
            ms(*b99)
        );
    }
    purge_while_running(store, url, postgres, wf.id).await;
    bench.close().await;
}

/// The time of second `n` of the seed, as `finished_at` holds it.
fn seed_time(n: i64) -> String {
    jiff::Timestamp::from_second(1_767_225_600 + n)
        .expect("in range")
        .to_string()
}

/// Purges the oldest 100,000 executions through the store (batched) and the next 100,000
/// with one statement, each while a probe records a step every 5 ms: how long each took and
/// how long the probe's writes waited.
async fn purge_while_running(store: &dyn Store, url: &str, postgres: bool, workflow_id: i64) {
    const SLICE: i64 = 100_000;
    let runs = |from: i64, to: i64| {
        let series = if postgres {
            format!("generate_series({from}, {to}) AS s(n)")
        } else {
            format!(
                "(WITH RECURSIVE c(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM c WHERE n < {to}) SELECT n FROM c)"
            )
        };
        let cast = if postgres {
            "n::text"
        } else {
            "CAST(n AS TEXT)"
        };
        let k = if postgres {
            "k::text"
        } else {
            "CAST(k AS TEXT)"
        };
        let ks = if postgres {
            "generate_series(1, 5) AS t(k)".to_string()
        } else {
            "(WITH RECURSIVE d(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM d WHERE k < 5) SELECT k FROM d)".to_string()
        };
        format!(
            "INSERT INTO task_runs (execution_id, task, item, attempt, status, seq) \
             SELECT 'x' || {cast}, 't' || {k}, -1, 1, 'succeeded', k FROM {series} CROSS JOIN {ks}"
        )
    };
    exec(url, &runs(1, 2 * SLICE)).await;
    // The probe's execution: running, so no purge touches it.
    exec(
        url,
        &format!(
            "INSERT INTO executions (id, workflow_id, workflow_name, workflow_version, status, org, input, trigger, created_at) \
             VALUES ('probe', {workflow_id}, 'seeded', 1, 'running', 'org-0', '{{}}', '{{}}', '2100-01-01T00:00:00Z')"
        ),
    )
    .await;
    for (how, batched) in [
        ("batched purge (weft)", true),
        ("one DELETE (before)", false),
    ] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let probe = {
            let stop = stop.clone();
            let mut waits = Vec::new();
            let store_probe = async move |waits: &mut Vec<Duration>| {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let row = weft_engine::store::TaskRun {
                        execution_id: "probe".into(),
                        task: format!("p{i}"),
                        item: -1,
                        attempt: 1,
                        status: weft_engine::store::TaskStatus::Succeeded,
                        seq: Some(i),
                        input: None,
                        result: None,
                        error: None,
                        routes: None,
                        publish: None,
                        reused: false,
                        started_at: None,
                        finished_at: None,
                        duration_ms: None,
                    };
                    let t = Instant::now();
                    store.record_task_runs(&[row]).await.expect("probe step");
                    waits.push(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            async move {
                store_probe(&mut waits).await;
                waits
            }
        };
        let purge = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = Instant::now();
            let n = if batched {
                store
                    .purge(
                        &seed_time(SLICE + 1),
                        &weft_engine::store::PurgeScope::default(),
                    )
                    .await
                    .expect("purge")
            } else {
                exec(
                    url,
                    &format!(
                        "DELETE FROM executions WHERE finished_at IS NOT NULL AND status IN ('succeeded', 'failed', 'cancelled') AND finished_at < '{}'",
                        seed_time(2 * SLICE + 1)
                    ),
                )
                .await;
                SLICE as u64
            };
            let took = t.elapsed();
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            (n, took)
        };
        let (mut waits, (n, took)) = tokio::join!(probe, purge);
        waits.sort();
        println!(
            "  {how:<22} {n} executions in {:>7.2} s; a step meanwhile: p50 {:>7.2}ms p99 {:>8.2}ms max {:>8.2}ms ({} steps)",
            took.as_secs_f64(),
            ms(pct(&waits, 0.5)),
            ms(pct(&waits, 0.99)),
            ms(*waits.last().expect("probed")),
            waits.len()
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs one statement on its own connection (the seed, ANALYZE, the baseline's DROP INDEX).
async fn exec(url: &str, sql: &str) {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut c).await.expect(sql);
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut c).await.expect(sql);
    }
}

fn main() {
    let rows: i64 = arg("--rows")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let repeat: usize = arg("--repeat").and_then(|n| n.parse().ok()).unwrap_or(200);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        run(common::sqlite().await, rows, repeat).await;
        if let Some(pg) = common::postgres_url() {
            run(common::postgres(&pg).await, rows, repeat).await;
        }
    });
}
