//! Memory stays flat under load: a real `weft serve` queues thousands of webhook executions
//! (each with a 64 KiB body that becomes a workflow input) and a real `weft worker` on the
//! same SQLite file runs them. The server keeps nothing per execution it queued once another
//! process ran it: its resident memory after all batches is close to what it was after the
//! warm-up batch.
//!
//! The server runs with one worker, kept busy by a long `core.sleep` execution started first,
//! so every webhook execution is run by the worker process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::Bg;
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

const TOKEN: &str = "memory-test-token";
/// The size of each webhook's `data` field (a workflow input).
const BODY_BYTES: usize = 64 * 1024;
/// Webhooks posted before the first measurement.
const WARMUP: usize = 300;
/// Then this many batches of `BATCH` (each run by the worker before the next).
const BATCHES: usize = 9;
const BATCH: usize = 300;
/// Requests in flight at once.
const CONCURRENCY: usize = 4;
/// What the server may grow by between the warm-up and the end, in KiB. Keeping every
/// hand-off (the code before the bound) grows it by far more than 3,000 × 64 KiB ≈ 190 MiB.
const MAX_GROWTH_KIB: u64 = 40 * 1024;

const MEM: &str = r#"
name: mem
input:
  data: {type: string}
triggers:
  - name: mem
    type: webhook
    secret: required
    run_for: [acme]
    max_body: 256KiB
tasks:
  size:
    action: core.echo
    input:
      n: "{{ CTX.data | length }}"
output:
  n: "{{ TASKS.size.result.n }}"
"#;

const BLOCKER: &str = r#"
name: blocker
triggers:
  - name: block
    type: webhook
    secret: required
    run_for: [acme]
tasks:
  wait:
    action: core.sleep
    input:
      duration: 10m
"#;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

struct Server {
    bg: Bg,
    base: String,
    /// What it printed.
    lines: Arc<Mutex<Vec<String>>>,
}

fn serve(dir: &std::path::Path, db: &str) -> Server {
    let mut bg = Bg(Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--workflows",
        ])
        .arg(dir.join("wf"))
        .args(["--database", db])
        .env("WEFT_API_TOKEN", TOKEN)
        .env_remove("WEFT_WEBHOOK_SECRET")
        .env_remove("WEFT_DATABASE_URL")
        .env_remove("WEFT_WORKERS")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("weft serve starts"));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = bg.0.stdout.take().unwrap();
    let kept = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = tx.send(a.to_string());
            }
            kept.lock().unwrap().push(line);
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("weft serve did not start");
    Server { bg, base, lines }
}

impl Server {
    /// The webhook secret of `workflow.trigger` for `org`: from the API (one per org), else
    /// (one per trigger) as printed at startup.
    async fn secret(&self, client: &reqwest::Client, wf: &str, trigger: &str, org: &str) -> String {
        let r = client
            .get(format!(
                "{}/api/triggers/{wf}/{trigger}/secrets/{org}",
                self.base
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if r.status().is_success() {
            let v: Value = r.json().await.unwrap();
            return v["secret"].as_str().expect("a secret").to_string();
        }
        let prefix = format!("webhook {wf}.{trigger}:");
        let lines = self.lines.lock().unwrap();
        let line = lines
            .iter()
            .find(|l| l.starts_with(&prefix) && l.contains("x-weft-secret: "))
            .unwrap_or_else(|| panic!("no secret for {wf}.{trigger}: {lines:?}"));
        line.split("x-weft-secret: ")
            .nth(1)
            .unwrap()
            .split([')', ';'])
            .next()
            .unwrap()
            .to_string()
    }
}

/// Posts `n` webhooks to `url`, `CONCURRENCY` at a time; every one must be accepted.
async fn fire(client: &reqwest::Client, url: &str, secret: &str, n: usize, batch: usize) {
    let filler = Arc::new("x".repeat(BODY_BYTES));
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..CONCURRENCY {
        let (client, url, secret, filler) = (
            client.clone(),
            url.to_string(),
            secret.to_string(),
            filler.clone(),
        );
        set.spawn(async move {
            for i in (lane..n).step_by(CONCURRENCY) {
                let body = json!({"data": format!("{batch}-{i}-{filler}")});
                let r = client
                    .post(&url)
                    .header("x-weft-secret", &secret)
                    .json(&body)
                    .send()
                    .await
                    .expect("webhook answers");
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                assert_eq!(status, 202, "{text}");
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("a sender panicked");
    }
}

async fn count(pool: &sqlx::SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Waits until `n` executions of `mem` have ended.
async fn wait_ended(pool: &sqlx::SqlitePool, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = count(
            pool,
            "SELECT count(*) FROM executions WHERE workflow_name = 'mem' AND status IN ('succeeded', 'failed', 'cancelled')",
        )
        .await;
        if done as usize >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {n} executions ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_does_not_keep_what_another_process_runs() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/weft.db", dir.path().display());
    std::fs::create_dir(dir.path().join("wf")).unwrap();
    std::fs::write(dir.path().join("wf/mem.yaml"), MEM).unwrap();
    std::fs::write(dir.path().join("wf/blocker.yaml"), BLOCKER).unwrap();
    let mut server = serve(dir.path(), &db);
    let pid = server.bg.id();
    let client = reqwest::Client::new();

    let r = client
        .post(format!("{}/api/orgs", server.base))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());

    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::from_str(&db).unwrap().read_only(true))
        .await
        .unwrap();

    // The server's only worker runs this for the whole test.
    let r = client
        .post(format!("{}/hooks/block/acme", server.base))
        .header(
            "x-weft-secret",
            server.secret(&client, "blocker", "block", "acme").await,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    let blocker = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, owner): (String, Option<String>) =
            sqlx::query_as("SELECT status, owner FROM executions WHERE id = ?")
                .bind(&blocker)
                .fetch_one(&pool)
                .await
                .unwrap();
        if status == "running" && owner.is_some_and(|o| o.contains(&format!(":{pid}:"))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server never ran the blocker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut worker = Bg(Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(dir.path())
        .args(["worker", "--database", &db, "--workers", "4"])
        .env_remove("WEFT_DATABASE_URL")
        .env_remove("WEFT_WORKERS")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("weft worker starts"));
    let mut line = String::new();
    BufReader::new(worker.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("worker "), "{line}");

    let url = format!("{}/hooks/mem/acme", server.base);
    let secret = server.secret(&client, "mem", "mem", "acme").await;
    fire(&client, &url, &secret, WARMUP, 0).await;
    wait_ended(&pool, WARMUP).await;
    let before = rss_kib(pid);
    let warm = started.elapsed();
    for b in 1..=BATCHES {
        fire(&client, &url, &secret, BATCH, b).await;
        wait_ended(&pool, WARMUP + b * BATCH).await;
    }
    let total = WARMUP + BATCHES * BATCH;
    let after = rss_kib(pid);
    eprintln!(
        "server RSS: {before} KiB after {WARMUP} webhooks, {after} KiB after {total} ({:+} KiB); {:?} to warm up, {:?} in all",
        after as i64 - before as i64,
        warm,
        started.elapsed()
    );

    let succeeded = count(
        &pool,
        "SELECT count(*) FROM executions WHERE workflow_name = 'mem' AND status = 'succeeded'",
    )
    .await;
    assert_eq!(succeeded as usize, total, "every execution succeeded");
    let by_server: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM executions WHERE workflow_name = 'mem' AND owner LIKE ?",
    )
    .bind(format!("%:{pid}:%"))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(by_server, 0, "the worker process ran them all");
    let output: String = sqlx::query_scalar(
        "SELECT output FROM executions WHERE workflow_name = 'mem' ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let output: Value = serde_json::from_str(&output).unwrap();
    assert!(
        output["n"].as_u64().is_some_and(|n| n > BODY_BYTES as u64),
        "the worker saw the whole input: {output}"
    );
    assert!(
        after.saturating_sub(before) < MAX_GROWTH_KIB,
        "the server grew by {} KiB running nothing ({before} → {after} KiB)",
        after - before
    );
    drop(worker);
    let _ = server.bg.0.kill();
}
