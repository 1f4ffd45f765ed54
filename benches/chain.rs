//! A linear chain of 50 `core.noop` steps with templated routes, durable on SQLite, beside
//! the cost of one bare SQLite commit measured in the same run on the same file.
//!
//! `cargo bench --bench chain` (add `-- --executions N` to change the sample size, or
//! `-- --database sqlite::memory:` to measure the engine without durable commits).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use weft_engine::executor::{Engine, StartOptions};

const STEPS: usize = 50;

fn chain_workflow() -> String {
    let mut y =
        String::from("name: bench-chain\ninput:\n  i: { type: integer, default: 0 }\ntasks:\n");
    for n in 0..STEPS {
        y.push_str(&format!("  s{n}:\n    action: core.noop\n"));
        if n + 1 < STEPS {
            y.push_str(&format!(
                "    next:\n      - when: \"{{{{ CTX.i < 1000 }}}}\"\n        publish: {{ i: \"{{{{ CTX.i + 1 }}}}\", label: \"step {{{{ CTX.i }}}} of {STEPS}\" }}\n        do: s{}\n",
                n + 1
            ));
        }
    }
    y.push_str("output:\n  i: \"{{ CTX.i }}\"\n  label: \"{{ CTX.label }}\"\n");
    y
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn bare_commits(url: &str, n: usize) -> Vec<Duration> {
    let options: SqliteConnectOptions = url.parse().expect("valid URL");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal),
        )
        .await
        .expect("opens");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("creates");
    let payload = "x".repeat(200);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        sqlx::query("INSERT INTO bench_commit (payload) VALUES (?)")
            .bind(&payload)
            .execute(&pool)
            .await
            .expect("inserts");
        times.push(t.elapsed());
    }
    times
}

fn main() {
    let executions: usize = std::env::args()
        .skip_while(|a| a != "--executions")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    // `--database sqlite::memory:` measures the engine without durable commits.
    let database: Option<String> = std::env::args().skip_while(|a| a != "--database").nth(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("weft-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}/weft.db", dir.display());
        let store = weft_engine::store::open(database.as_deref().unwrap_or(&url)).await.expect("store");
        let engine = Engine::new(store, Arc::new(weft_actions::registry()));
        let record = engine.deploy(&chain_workflow(), None).await.expect("valid benchmark workflow");

        // Warm up caches, the pool and the WAL.
        for _ in 0..5 {
            let e = engine.execute(&record, Default::default(), StartOptions::default()).await.expect("runs");
            assert_eq!(e.status, weft_engine::store::ExecStatus::Succeeded, "{:?}", e.error);
        }
        let mut per_exec = Vec::with_capacity(executions);
        for _ in 0..executions {
            let t = Instant::now();
            let e = engine.execute(&record, Default::default(), StartOptions::default()).await.expect("runs");
            per_exec.push(t.elapsed());
            assert_eq!(e.output.as_ref().and_then(|o| o["i"].as_i64()), Some(STEPS as i64 - 1));
        }
        let mut commits = bare_commits(&url, 2000).await;

        let exec_med = median(&mut per_exec);
        let commit_med = median(&mut commits);
        let step = exec_med / STEPS as u32;
        let store_name = database.as_deref().unwrap_or("SQLite file, WAL, synchronous=NORMAL");
        println!("weft chain benchmark: {STEPS} steps per execution, {executions} executions, store: {store_name}");
        println!("  execution  median {:>9.2?}  p95 {:>9.2?}", exec_med, pct(&per_exec, 0.95));
        println!("  per step   median {:>9.2?}", step);
        println!("  bare SQLite commit (1-row INSERT, same file)  median {:>9.2?}  p95 {:>9.2?}", commit_med, pct(&commits, 0.95));
        println!("  per step / bare commit = {:.2}x", step.as_secs_f64() / commit_med.as_secs_f64());
        let _ = std::fs::remove_dir_all(&dir);
    });
}
